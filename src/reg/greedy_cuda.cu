// The greedy deformable stage on a CUDA device: the same iteration as greedy.c (sample,
// metric, sample backward, smoothed + normalized + Adam update, compositive update, warp
// smoothing) with every volume resident on the device. Pyramid levels are built on the host
// and uploaded once per level.
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/err.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"
#include "reg/dev_layout.h"
#include "reg/step_cuda.h"

namespace {

struct DevBufs {
  float *F, *M, *u, *gu, *tmp, *red;
  reg_cuda_adam adam;
  void *block = nullptr;
};

cudaError_t alloc_level(DevBufs &b, long long n, long long nm, int bf16, size_t *bytes) {
  reg_layout L;
  reg_layout_greedy(n, nm, bf16, &L);
  *bytes = L.total;
  cudaError_t e = cudaMalloc(&b.block, L.total);
  if (e) return e;
  char *p = (char *)b.block;
  b.F = (float *)(p + L.off[GR_F]), b.M = (float *)(p + L.off[GR_M]);
  b.u = (float *)(p + L.off[GR_U]), b.gu = (float *)(p + L.off[GR_GU]), b.tmp = (float *)(p + L.off[GR_TMP]);
  b.adam.m = p + L.off[GR_AM], b.adam.v = p + L.off[GR_AV], b.adam.bf16 = bf16;
  b.red = (float *)(p + L.off[GR_RED]);
  return cudaMemsetAsync(b.block, 0, L.total);
}

}  // namespace

extern "C" ffdp_status reg_greedy_stage_cuda(const ffdp_volume *F, const ffdp_volume *M, const ffdp_reg_options *opt,
                                             int si, ffdp_mat4 aff, ffdp_volume **u_io, ffdp_stage_summary *sum,
                                             double t_start, ffdp_error *err) {
  const ffdp_stage_spec *S = &opt->stages[si];
  if (opt->fixed_mask || opt->moving_mask)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "masks are not supported on the CUDA device yet; use --device cpu");
  if (S->metric.kind == FFDP_METRIC_CC && (S->metric.window < 3 || S->metric.window > 9))
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "CUDA CC supports windows 3..9 (got %d)", S->metric.window);
  if (S->metric.kind == FFDP_METRIC_MI && S->metric.bins > FFDP_CUDA_MI_MAX_BINS)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "CUDA MI supports at most %d bins", FFDP_CUDA_MI_MAX_BINS);
  ffdp_volume *u = *u_io;
  *u_io = nullptr;
  double t0 = reg_now(), base = reg_cuda_used_bytes();
  sum->device_peak_bytes = 0;
  sum->kind = S->kind;
  sum->iterations = 0;
  ffdp_status st = FFDP_OK;
  for (int lv = 0; lv < S->nlevels && !st; lv++) {
    reg_level L;
    if ((st = reg_level_build(F, M, nullptr, nullptr, S->shrink[lv], S->smooth[lv], &L, err))) break;
    const long long n = ffdp_volume_nvox(L.F), nm = ffdp_volume_nvox(L.M);
    st = reg_field_to_grid(&u, L.F, err); /* carry the displacement (world mm) onto this level */
    ffdp_volume *ul = u;
    u = NULL;
    DevBufs b;
    size_t need = 0;
    cudaError_t ce = st ? cudaSuccess : alloc_level(b, n, nm, opt->state_precision == FFDP_STATE_BF16, &need);
    if (!st && ce)
      st = ffdp_fail(err, FFDP_ERR_NOMEM, "CUDA level %d: cannot allocate %.1f MB on the device (%s)", lv + 1, need / 1e6,
                     cudaGetErrorString(ce));
    if (st) {
      ffdp_volume_free(ul);
      reg_level_free(&L);
      break;
    }
    int rc = (int)cudaMemcpy(b.F, L.F->data, n * 4, cudaMemcpyHostToDevice);
    if (!rc) rc = (int)cudaMemcpy(b.M, L.M->data, nm * 4, cudaMemcpyHostToDevice);
    if (!rc) rc = (int)cudaMemcpy(b.u, ul->data, 3 * n * 4, cudaMemcpyHostToDevice);
    const double h = reg_level_step_mm(&L);
    ffdp_warp w, cw;
    ffdp_warp_fold(aff, L.F->vox2world, L.M->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
    reg_compose_warp(L.F->vox2world, aff, &cw);
    double *hist = (double *)malloc((size_t)(S->iters[lv] + 1) * sizeof(double));
    double lt0 = reg_now();
    int it = 0, conv = 0;
    for (; it < S->iters[lv] && !conv && !rc; it++) {
      double loss = 0;
      float *moved = b.tmp, *gm = b.tmp + n; /* the update field is free until the step */
      rc = ffdp_cuda_sample_fwd(&w, &L.fs, b.u, &L.ms, b.M, 1, moved, nullptr);
      if (!rc) rc = reg_cuda_metric(&S->metric, &L.fs, b.F, moved, gm, &loss);
      if (!rc && !isfinite(loss)) {
        st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
        break;
      }
      hist[it] = loss;
      if (!rc) rc = ffdp_cuda_sample_bwd(&w, &L.fs, b.u, &L.ms, b.M, 1, gm, b.gu, nullptr, nullptr);
      int moved_any = 1;
      if (!rc)
        rc = reg_cuda_field_step(&L.fs, b.u, b.gu, b.tmp, b.adam, it + 1, &cw, S->lr * h, S->grad_sigma, S->warp_sigma,
                                 b.red, &moved_any);
      conv = !moved_any || reg_converged(hist, it + 1, S->window, S->tol);
      if (it == 0) { /* every buffer and op temporary has been allocated once by now */
        double used = reg_cuda_used_bytes() - base;
        sum->device_peak_bytes = used > sum->device_peak_bytes ? used : sum->device_peak_bytes;
      }
      reg_report(opt, si, lv, it + 1, loss, t_start, lt0, n, 0, conv);
    }
    if (!rc) rc = (int)cudaMemcpy(ul->data, b.u, 3 * n * 4, cudaMemcpyDeviceToHost);
    if (rc && !st) st = ffdp_fail(err, FFDP_ERR_IO, "CUDA error in stage %d level %d: %s", si + 1, lv + 1,
                                  cudaGetErrorString((cudaError_t)rc));
    sum->final_loss = it > 0 ? hist[it - 1] : 0;
    sum->iterations += it;
    if (!st) reg_report(opt, si, lv, it, sum->final_loss, t_start, lt0, n, 1, conv);
    free(hist);
    cudaFree(b.block);
    reg_level_free(&L);
    u = ul;
  }
  if (st) {
    ffdp_volume_free(u);
    return st;
  }
  if (u && (st = reg_field_to_grid(&u, F, err))) return st; /* final field at full resolution */
  *u_io = u;
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
