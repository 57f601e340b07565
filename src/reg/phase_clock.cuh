// Where a level's iterations spend their GPU time, for tracing (FFDP_TRACE_PHASES=1): events
// recorded on the default stream between the phases of every iteration, their gaps summed when
// the level ends. The events add no waits and change no result; without the variable nothing is
// recorded. A phase's time is what the GPU took from the previous mark to its own, so launch gaps
// and the host falling behind show up in the phase they delay, and the phases add up to the
// iterations' GPU time.
#ifndef FFDP_REG_PHASE_CLOCK_CUH
#define FFDP_REG_PHASE_CLOCK_CUH
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "reg/reg_internal.h"

struct reg_phase_clock {
  int nph = 0, cap = 0, used = 0; /* phases an iteration; iterations with events; recorded */
  cudaEvent_t *ev = nullptr;      /* (nph + 1) per iteration: a mark before each phase and one after the last */
};

// On only with FFDP_TRACE_PHASES set (and not "0"); any CUDA failure turns it off quietly.
static inline void reg_phase_clock_open(reg_phase_clock *pc, int nph, int iters) {
  const char *e = getenv("FFDP_TRACE_PHASES");
  if (!e || !strcmp(e, "0") || iters <= 0) return;
  pc->ev = (cudaEvent_t *)calloc((size_t)iters * (nph + 1), sizeof(cudaEvent_t));
  if (!pc->ev) return;
  pc->nph = nph, pc->cap = iters;
  for (int i = 0; i < iters * (nph + 1); i++)
    if (cudaEventCreate(&pc->ev[i])) {
      for (int k = 0; k < i; k++) cudaEventDestroy(pc->ev[k]);
      free(pc->ev), pc->ev = nullptr, pc->cap = 0, cudaGetLastError();
      return;
    }
}

// Mark k (0..nph) of iteration it: mark k ends phase k - 1 and starts phase k.
static inline void reg_phase_clock_mark(reg_phase_clock *pc, int it, int k) {
  if (!pc->ev || it >= pc->cap) return;
  cudaEventRecord(pc->ev[it * (pc->nph + 1) + k], nullptr);
  if (k == pc->nph && it + 1 > pc->used) pc->used = it + 1;
}

// The level's phases in one trace line (ms per iteration, GPU time), then the events go.
static inline void reg_phase_clock_close(reg_phase_clock *pc, const char *what, const char *const names[]) {
  if (!pc->ev) return;
  char line[1024];
  int at = 0;
  double total = 0, ph[16] = {0};
  const int nph = pc->nph < 16 ? pc->nph : 16;
  int ok = pc->used > 0 && !cudaDeviceSynchronize();
  for (int it = 0; ok && it < pc->used; it++)
    for (int k = 0; k < nph && ok; k++) {
      float ms = 0;
      ok = !cudaEventElapsedTime(&ms, pc->ev[it * (pc->nph + 1) + k], pc->ev[it * (pc->nph + 1) + k + 1]);
      ph[k] += ms, total += ms;
    }
  if (ok) {
    for (int k = 0; k < nph && at < (int)sizeof line - 64; k++)
      at += snprintf(line + at, sizeof line - at, "%s%s %.3f", k ? ", " : "", names[k], ph[k] / pc->used);
    reg_trace("%s phases (GPU ms per iteration, %d iterations): %s; sum %.3f", what, pc->used, line, total / pc->used);
  }
  cudaGetLastError();
  for (int i = 0; i < pc->cap * (pc->nph + 1); i++) cudaEventDestroy(pc->ev[i]);
  free(pc->ev);
  pc->ev = nullptr, pc->cap = pc->used = 0;
}
#endif
