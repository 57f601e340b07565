// The greedy deformable stage on CUDA devices: the same iteration as greedy.c (sample, metric,
// sample backward, smoothed + normalized + Adam update, compositive update, warp smoothing)
// with every volume resident on the device. Over several ranks (one GPU each, or sharing
// one) each rank holds its slab of the fixed grid and the fields with their halos; halos
// cross ranks through comm->halo_dev, sums through comm->sum. Pyramid levels are built on
// the host and uploaded once per level.
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/comm_internal.h"
#include "core/err.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"
#include "reg/dev_layout.h"
#include "reg/handover.h"
#include "reg/step_cuda.h"
#include "reg/image_share.h"
#include "reg/mask_cuda.h"
#include "reg/window_cuda.h"
#include "reg/phase_clock.cuh"

namespace {

struct DevBufs {
  void *F, *M; /* floats, or 16-bit codes (coded levels) */
  float *u, *gu, *gm, *ring, *red;
  float *spare; /* the smoothed gradient's own field (reg_layout_spare), or null: smoothed in place */
  long long ring_planes, ring_floats;
  bool shared; /* the metric's gradient in gu's last third (reg_cuda_sample_bwd_shared) */
  reg_cuda_adam adam;
  void *block = nullptr;
  float *taken[2] = {nullptr, nullptr}; /* the images, taken from the pyramid (reg_cuda_level_take) */
};

// The level's layout, the spare field decided as the planner does (dev_layout.h); apart: the
// images taken from the pyramid, outside the block.
void level_layout(const ffdp_slab &s, int ranks, double grad_sigma, double budget, long long n, long long nm, int bf16,
                  long long nmom, int coarse, int masks, long long nmask, long long ring, bool apart, reg_layout *L) {
  reg_layout_greedy(n, nm, bf16, nmom, coarse, masks, nmask, ring, L);
  reg_layout_spare(L, s.nx, s.ny, ranks, n, grad_sigma, budget);
  if (apart) reg_layout_images_apart(L, GR_U);
}

cudaError_t alloc_level(reg_pyramid *pyr, DevBufs &b, reg_layout &L, const ffdp_slab &s, int ranks, double grad_sigma,
                        double budget, long long n, long long nm, int bf16, long long nmom, int coarse, int masks,
                        long long nmask, long long plane, long long ring, size_t *bytes) {
  const bool apart = b.taken[0] != nullptr;
  level_layout(s, ranks, grad_sigma, budget, n, nm, bf16, nmom, coarse, masks, nmask, ring, apart, &L);
  b.ring_planes = ring / (3 * plane), b.ring_floats = ring, b.shared = reg_grad_shared(n);
  *bytes = L.total;
  reg_cuda_pyramid_trim(pyr, (double)(L.total + REG_OP_SCRATCH_BYTES)); /* kept source planes give way */
  cudaError_t e = cudaMalloc(&b.block, L.total);
  if (e) return e;
  char *p = (char *)b.block;
  b.F = apart ? (void *)b.taken[0] : p + L.off[GR_F], b.M = apart ? (void *)b.taken[1] : p + L.off[GR_M];
  b.u = (float *)(p + L.off[GR_U]), b.gu = (float *)(p + L.off[GR_GU]), b.gm = (float *)(p + L.off[GR_GM]);
  b.ring = (float *)(p + L.off[GR_RING]);
  b.adam.m = p + L.off[GR_AM], b.adam.v = p + L.off[GR_AV], b.adam.bf16 = bf16, b.adam.coarse = coarse;
  b.red = (float *)(p + L.off[GR_RED]);
  b.spare = L.spare >= 0 ? (float *)(p + L.off[L.spare]) : nullptr;
  return cudaMemsetAsync(b.block, 0, L.total);
}

// One level on the active ranks c: u_prev (host, the previous level's grid, or NULL), or the
// previous level's field kept on the device (carry, one process), is brought onto this level
// on the device; the updated owned planes go into *u_slab (stored planes, host, for the
// gather), or are kept on the device in carry when keep_next asks and there is room, or go
// straight into the field uj prepares meanwhile (this level's grid, host) when u_slab is NULL
// (one process: nothing to gather).
ffdp_status greedy_level(const ffdp_comm *c, const reg_level *L, const ffdp_reg_options *opt, int si, int lv,
                         ffdp_mat4 aff, const ffdp_volume *u_prev, reg_field_job *uj, reg_dev_field *carry,
                         int keep_next, int64_t halo, double base, ffdp_stage_summary *sum, double t_start,
                         ffdp_slab *slab_out, float **u_slab, ffdp_error *err) {
  const ffdp_stage_spec *S = &opt->stages[si];
  const int64_t nx = L->F->dim[0], ny = L->F->dim[1], nz = L->F->dim[2], P = nx * ny, ntot = P * nz;
  const ffdp_slab s = c->size > 1 ? ffdp_slab_split(nx, ny, nz, c->rank, c->size, halo) : L->fs;
  ffdp_slab store = s; /* the warped image is computed on every stored plane: no exchange */
  store.z0 = s.zlo, store.z1 = s.zhi;
  /* ranks hold only the moving planes their points reach (a window, below); one holds it all */
  const long long n = ffdp_slab_stored(&s), nm = c->size > 1 ? 0 : ffdp_volume_nvox(L->M);
  reg_window W;
  memset(&W, 0, sizeof W);
  const double t_in = reg_now();
  DevBufs b;
  reg_layout lay;
  size_t need = 0;
  double *hist = (double *)malloc((size_t)(S->iters[lv] + 1) * sizeof(double));
  const int coded = L->pyr->coded; /* the images as 16-bit codes (--image-precision u16) */
  const int masks = (L->fmask ? REG_HAS_FIXED_MASK : 0) | (L->mmask ? REG_HAS_MOVING_MASK : 0) | (coded ? REG_CODED_IMAGES : 0);
  const int bf16 = opt->state_precision == FFDP_STATE_BF16, coarse = opt->state_resolution == FFDP_STATE_HALF;
  const long long nmom = reg_moment_values(&s, coarse); /* values of each moment */
  const long long ring = reg_step_ring_floats(s.nx, s.ny, s.zhi - s.zlo, S->grad_sigma);
  ffdp_volume *spilled = nullptr; /* the kept field, moved to the host for want of room */
  /* the images the pyramid holds on the device for this level become the level's own */
  const bool took = hist && !coded && c->size == 1 && reg_cuda_level_take(L, s.zlo, s.zhi, &b.taken[0], &b.taken[1]);
  if (carry && carry->dev) {
    reg_layout next;
    level_layout(s, c->size, S->grad_sigma, opt->device_budget, n, nm, bf16, nmom, coarse, masks, ffdp_volume_nvox(L->M),
                 ring, took, &next);
    reg_cuda_pyramid_trim(L->pyr, (double)(next.total + REG_OP_SCRATCH_BYTES));
    if (reg_dev_field_make_room(carry, next.total, &spilled, err)) {
      reg_cuda_level_release(&b.block, b.taken);
      free(hist);
      return err->code;
    }
    if (spilled) u_prev = spilled;
  }
  cudaError_t ce = hist ? alloc_level(L->pyr, b, lay, s, c->size, S->grad_sigma, opt->device_budget, n, nm, bf16, nmom,
                                    coarse, masks, ffdp_volume_nvox(L->M), P, ring, &need)
                        : cudaErrorMemoryAllocation;
  ffdp_status st = FFDP_OK;
  if (ce)
    st = ffdp_fail(err, FFDP_ERR_NOMEM, "CUDA level %d: cannot allocate %.1f MB on the device (%s)", lv + 1, need / 1e6,
                   cudaGetErrorString(ce));
  int rc = 0;
  double t1 = reg_now();
  /* coded: encoded on the device, the floats coming up through gu, free until the loop */
  if (!st && !took) rc = coded ? reg_cuda_level_upload16(L, 0, s.zlo, s.zhi, (uint16_t *)b.F, b.gu, 3 * n)
                                : reg_cuda_level_upload(L, 0, s.zlo, s.zhi, (float *)b.F);
  if (!st && !rc && nm && !took)
    rc = coded ? reg_cuda_level_upload16(L, 1, 0, L->M->dim[2], (uint16_t *)b.M, b.gu, 3 * n)
               : reg_cuda_level_upload(L, 1, 0, L->M->dim[2], (float *)b.M);
  const double t2 = reg_now();
  if (L->F == L->pyr->F) reg_cuda_pyramid_trim(L->pyr, -1); /* full resolution: no more builds for now */
  const double t3 = reg_now();
  if (!st && !rc)
    rc = carry && carry->dev ? reg_dev_field_onto(carry, L->F, &s, b.u)
                             : reg_cuda_field_upload(u_prev, L->F, &s, b.u, b.gu, 3 * n); /* gu is free until the loop */
  ffdp_volume_free(spilled);
  if (!rc) rc = (int)cudaDeviceSynchronize();
  reg_trace("greedy level %d: buffers %.1f ms, images %.1f ms%s, kept planes released %.1f ms, field %.1f ms", lv + 1,
            1e3 * (t1 - t_in), 1e3 * (t2 - t1), took ? " (the pyramid's device copies, taken)" : "", 1e3 * (t3 - t2),
            1e3 * (reg_now() - t3));
  ffdp_warp w, cw;
  ffdp_warp_fold(aff, L->F->vox2world, L->M->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
  reg_compose_warp(L->F->vox2world, aff, &cw);
  double bound = 0;
  if (!st && !rc && !nm) rc = reg_window_bound(&store, b.u, b.red, &bound);
  reg_share sh; /* where the window's planes come from (image_share.h) */
  reg_share_open(&sh, c, L->M, reg_share_mode(opt, c));
  rc = reg_window_open(&W, &sh, &w, &store, bound, nm ? b.M : nullptr, coded ? &L->pyr->codes[1] : nullptr,
                       st ? (int)cudaErrorMemoryAllocation : rc, err);
  reg_cuda_mask mk;
  memset(&mk, 0, sizeof mk);
  if (!st && !rc) rc = reg_cuda_mask_open(&mk, &lay, b.block, L, &s, c, 0, err);
  if (rc < 0 && !st) st = err->code;
  if (!st && rc) st = ffdp_fail(err, FFDP_ERR_IO, "CUDA error uploading level %d: %s", lv + 1, cudaGetErrorString((cudaError_t)rc));
  if ((st = c->agree(c, st, err))) {
    reg_window_close(&W), reg_share_close(&sh, nullptr);
    reg_cuda_level_release(&b.block, b.taken);
    free(hist);
    return st;
  }
  reg_trace("greedy level %d: device buffers + upload %.1f ms", lv + 1, 1e3 * (reg_now() - t_in));
  const double h = reg_level_step_mm(L);
  float *mxh = nullptr; /* the last step's gradient norm, learned without waiting (one process) */
  if (c->size == 1 && cudaMallocHost((void **)&mxh, sizeof(float))) mxh = nullptr, cudaGetLastError();
  /* one process, CC: the loss read back while the step runs, so the GPU always has the next
   * kernels queued instead of idling through a round trip to the host (step_cuda.h) */
  reg_cuda_deferred_loss dl;
  reg_cuda_deferred_open(&dl, mxh && S->metric.kind == FFDP_METRIC_CC && !st && !rc);
  reg_phase_clock pc;
  reg_phase_clock_open(&pc, 4, S->iters[lv]);
  double lt0 = reg_now();
  int it = 0, conv = 0;
  for (; it < S->iters[lv] && !conv && !rc; it++) {
    if ((st = c->agree(c, reg_injected_failure(c, si, lv, it + 1, err), err))) break;
    double loss = 0;
    reg_phase_clock_mark(&pc, it, 0);
    /* the gradient field is free until the backward; a shared metric gradient follows it
     * (gu and u trade places every step) */
    float *moved = b.gu, *gm = b.shared ? b.gu + 2 * n : b.gm;
    const uint8_t *mask = nullptr;
    int64_t scored = ntot;
    rc = reg_cuda_mask_scored(&mk, c, &w, &s, b.u, b.gu + n, &mask, &scored, err);
    if (!rc) rc = reg_cuda_sample_image_fwd(&w, &store, b.u, &W.ms, reg_window_image(&W), moved);
    reg_phase_clock_mark(&pc, it, 1);
    /* coded: the fixed image's values for the metric in gu's middle third (free until the
     * backward; the mask's scratch before), 6 B per voxel more per iteration */
    const float *Fv = coded ? b.gu + n : (const float *)b.F;
    if (!rc && coded) rc = ffdp_cuda_decode16(n, (const uint16_t *)b.F, L->pyr->codes[0], b.gu + n, nullptr);
    if (!rc)
      rc = dl.pend ? reg_cuda_cc2_begin(&S->metric, &s, scored, Fv, moved, mask, nullptr, gm, dl.pend)
                : reg_cuda_metric(c, &S->metric, &s, scored, Fv, moved, mask, gm, &loss, err);
    if (rc < 0) break;
    if (!rc && mxh && it > 0 &&
        !(rc = reg_cuda_deferred_wait_step(&dl)) && !(*mxh > 0)) {
      conv = 1; /* the previous step's gradient had vanished: that step was the last */
      break;
    }
    if (!rc && !dl.pend && !isfinite(loss)) {
      st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
      break;
    }
    if (!dl.pend) hist[it] = loss;
    reg_phase_clock_mark(&pc, it, 2);
    if (!rc)
      rc = b.shared ? reg_cuda_sample_bwd_shared(&w, &s, b.u, &W.ms, reg_window_image(&W), b.gu, b.ring, b.ring_floats)
                    : reg_cuda_sample_image_bwd(&w, &s, b.u, &W.ms, reg_window_image(&W), gm, b.gu);
    int moved_any = 1;
    reg_phase_clock_mark(&pc, it, 3);
    if (!rc)
      rc = reg_cuda_field_step(c, &s, &b.u, &b.gu, b.ring, b.ring_planes, b.spare, b.adam, it + 1, &cw, S->lr * h,
                               S->grad_sigma, S->warp_sigma, b.red, mxh, &moved_any, err);
    rc = reg_window_follow(&W, &sh, &w, &store, b.u, b.red, rc, err);
    reg_phase_clock_mark(&pc, it, 4);
    if (dl.pend) { /* the step is queued: now the loss it started from */
      rc = reg_cuda_deferred_after_step(&dl, rc, &loss);
      if (!rc && !isfinite(loss)) {
        st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
        break;
      }
      hist[it] = loss;
    }
    conv = !moved_any || reg_converged(hist, it + 1, S->window, S->tol);
    if (it == 0) { /* every buffer and op temporary has been allocated once by now */
      double used = reg_cuda_used_bytes() - base;
      sum->device_peak_bytes = used > sum->device_peak_bytes ? used : sum->device_peak_bytes;
    }
    reg_report(opt, si, lv, it + 1, loss, t_start, lt0, ntot, 0, conv);
  }
  rc = reg_cuda_deferred_close(&dl, rc); /* a loss still in flight is waited for first */
  if (mxh) cudaFreeHost(mxh);
  const double t_it = reg_now();
  {
    static const char *const phase_names[4] = {"mask + sampler", "metric", "backward", "step"};
    char what[32];
    snprintf(what, sizeof what, "greedy level %d", lv + 1);
    reg_phase_clock_close(&pc, what, phase_names);
  }
  reg_trace("greedy level %d: %d iterations %.1f ms (%.3f ms each)", lv + 1, it, 1e3 * (t_it - lt0),
            it ? 1e3 * (t_it - lt0) / it : 0.0);
  if (!W.whole)
    reg_trace("greedy level %d: moving window %lld of %lld planes, %d fetches, %.1f MB (whole image %.1f MB)", lv + 1,
              (long long)(W.ms.zhi - W.ms.zlo), (long long)L->M->dim[2], W.fetches, W.bytes / 1e6,
              ffdp_volume_nvox(L->M) * (coded ? 2e-6 : 4e-6));
  sum->window_bytes += W.bytes;
  reg_window_close(&W), reg_share_close(&sh, sum);
  float *keep = nullptr, *u_full = nullptr;
  if (!st && rc == 0 && keep_next && carry && reg_dev_field_keep(carry, L->F, &s, b.u)) {
    reg_trace("greedy level %d: field kept on the device for the next level", lv + 1);
    uj = nullptr; /* nothing goes to the host */
  } else if (!st && rc == 0 && uj) { /* the host field the download goes into */
    ffdp_volume *un = nullptr;
    if (!(st = reg_field_job_finish(uj, &un, err))) u_full = un->data;
    reg_trace("greedy level %d: host field ready after %.1f ms more (%s)", lv + 1, 1e3 * (reg_now() - t_it),
              uj->pinned ? "page-locked" : "pageable");
    if (uj->pinned) reg_trace("greedy level %d: host field page-locked in %.1f ms by the job's thread", lv + 1,
                              1e3 * uj->pin_seconds);
  }
  const double t_dn = reg_now();
  if (!st && rc == 0 && !(carry && carry->dev)) rc = reg_cuda_fields_down(&s, 1, &b.u, &u_full, u_slab ? &keep : nullptr);
  if (uj && uj->pinned) { /* pageable again once the download is done */
    const double t_up = reg_now(), unlock = reg_field_job_unpin(uj);
    reg_trace("greedy level %d: download %.1f ms, then pageable again in %.1f ms", lv + 1, 1e3 * (t_up - t_dn),
              1e3 * unlock);
  }
  reg_trace("greedy level %d: download %.1f ms", lv + 1, 1e3 * (reg_now() - t_it));
  st = reg_cuda_level_end(c, rc, st, opt, si, lv, hist, it, t_start, lt0, ntot, conv, sum, err);
  free(hist);
  reg_cuda_level_release(&b.block, b.taken);
  if (st) {
    free(keep);
    return st;
  }
  *slab_out = s;
  if (u_slab) *u_slab = keep;
  return FFDP_OK;
}

}  // namespace

extern "C" ffdp_status reg_greedy_stage_cuda(reg_pyramid *pyr, const ffdp_reg_options *opt,
                                             int si, ffdp_mat4 aff, ffdp_volume **u_io, ffdp_stage_summary *sum,
                                             double t_start, ffdp_error *err) {
  const ffdp_volume *F = pyr->F;
  const ffdp_stage_spec *S = &opt->stages[si];
  const ffdp_comm *c = ffdp_comm_or_single(opt->comm);
  if (S->metric.kind == FFDP_METRIC_CC && (S->metric.window < 3 || S->metric.window > 9))
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "CUDA CC supports windows 3..9 (got %d)", S->metric.window);
  if (S->metric.kind == FFDP_METRIC_MI && S->metric.bins > FFDP_CUDA_MI_MAX_BINS)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "CUDA MI supports at most %d bins", FFDP_CUDA_MI_MAX_BINS);
  ffdp_volume *u = *u_io;
  *u_io = nullptr;
  double t0 = reg_now(), base = reg_cuda_used_bytes() - reg_cuda_pyramid_kept(pyr);
  sum->device_peak_bytes = 0, sum->window_bytes = 0;
  sum->kind = S->kind;
  sum->iterations = 0;
  ffdp_status st = FFDP_OK;
  const int64_t halo = reg_deformable_halo(S, opt->state_resolution == FFDP_STATE_HALF);
  reg_handover ho; /* ranks: each one's planes of the last level, when not gathered */
  memset(&ho, 0, sizeof ho);
  reg_dev_field carry; /* one process: a level's field kept on the device for the next */
  memset(&carry, 0, sizeof carry);
  const char *kf = getenv("FFDP_KEEP_FIELD"); /* 0: every level's field through the host (comparisons) */
  const int keep_fields = c->size == 1 && !(kf && !strcmp(kf, "0"));
  for (int lv = 0; lv < S->nlevels && !st; lv++) {
    reg_level L;
    ffdp_volume *un = nullptr; /* one process: the displacement on this level's grid (host) */
    reg_field_job uj;          /* ...prepared by another thread while the device iterates */
    memset(&uj, 0, sizeof uj);
    st = reg_level_build(pyr, opt->fixed_mask, opt->moving_mask, S->shrink[lv], S->smooth[lv], &L, err);
    if ((st = c->agree(c, st, err))) {
      if (L.F || L.M) reg_level_free(&L);
      break;
    }
    const int last = lv == S->nlevels - 1;
    /* the last level's host field is mapped meanwhile; earlier ones go to the next level on
     * the device, and get a host field (made when asked for) only if that finds no room */
    if (c->size == 1 && (last || !keep_fields)) reg_field_job_start(&uj, L.F, pyr);
    else if (c->size == 1) uj.grid = L.F;
    /* coarse levels whose slabs would be thinner than the halo run on fewer ranks */
    const int nact = reg_level_ranks(c->size, L.F->dim[2], halo);
    if (!st) st = reg_level_ready(&L, nact, halo, reg_share_mode(opt, c), 0, err); /* sharded inputs: the planes it reads */
    const ffdp_volume *prev = NULL; /* ranks: own planes carried over, or the gathered field */
    if (!st) st = reg_handover_next(&ho, c, L.F, nact, halo, 1, &u, &prev, err);
    ffdp_comm *sub = st ? nullptr : nact == c->size ? (ffdp_comm *)c : c->first(c, nact);
    ffdp_slab s = L.fs;
    float *us = nullptr;
    if (sub)
      st = greedy_level(sub, &L, opt, si, lv, aff, prev, c->size == 1 ? &uj : nullptr, c->size == 1 ? &carry : nullptr,
                        keep_fields && !last, halo, base, sum, t_start, &s, c->size > 1 ? &us : nullptr, err);
    if (c->size == 1 && !st && carry.dev) reg_field_job_discard(&uj); /* idle: no host field was made */
    else if (c->size == 1 && !st) st = reg_field_job_finish(&uj, &un, err);
    if (c->size == 1 && st) reg_field_job_discard(&uj), un = nullptr;
    if (sub && sub != c) ffdp_comm_free(sub);
    if (c->size > 1) {
      if (!(st = c->agree(c, st, err))) {
        reg_level_account(c, sum);
        st = c->agree(c, reg_handover_keep(&ho, 1, us, &s, L.F, nact == c->size, err), err);
      }
    } else {
      ffdp_volume_free(u);
      u = un;
    }
    free(us);
    reg_level_free(&L);
  }
  reg_dev_field_free(&carry); /* only after a failure is one still held */
  const int to_root = reg_result_to_root(opt, si, c);
  if (!st && reg_result_shares(opt, si, c)) st = reg_handover_share(&ho, c, F, &u, err); /* each rank its planes */
  else if (!st) st = reg_handover_finish(&ho, c, &u, to_root, err); /* the whole field for the output */
  reg_handover_clear(&ho);
  if (!st && !(to_root && c->rank != 0)) st = reg_field_to_grid(&u, F, err); /* final field at full resolution */
  if (st) {
    ffdp_volume_free(u);
    return st;
  }
  *u_io = u;
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
