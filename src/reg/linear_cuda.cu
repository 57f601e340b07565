// Linear-stage evaluation on the CUDA device: the level's images stay resident; each
// iteration runs the affine-only sampler, the metric with its gradient and the sampler
// backward whose affine-gradient reduction is deterministic. Over several ranks each takes a
// slab of the level (the warped image is computed on its stored planes, so only the loss and
// the 12 gradient sums cross ranks).
#include <cuda_runtime.h>
#include <stdlib.h>
#include "core/comm_internal.h"
#include "core/err.h"
#include "ops/ops_cuda.h"
#include "reg/dev_layout.h"
#include "reg/mask_cuda.h"
#include "reg/reg_internal.h"
#include "reg/step_cuda.h"

namespace {

struct CudaEval {
  reg_linear_eval base;
  const reg_level *L;
  const ffdp_comm *comm;
  ffdp_slab s;
  float *F, *M, *moved, *g;
  double *gB;   /* per owned plane, on the device */
  double *part; /* the same on the host */
  reg_cuda_mask mask;
  void *block;
  int split; /* FFDP_TRACE: the next call's steps each waited for and timed (the first call) */
};

double cuda_run(reg_linear_eval *self, const ffdp_metric_spec *m, const ffdp_warp *w, double gB[3][4], int *rc) {
  CudaEval *e = (CudaEval *)self;
  const reg_level *L = e->L;
  const ffdp_comm *c = ffdp_comm_or_single(e->comm);
  ffdp_slab store = e->s;
  store.z0 = store.zlo, store.z1 = store.zhi;
  double loss = 0;
  ffdp_error &err = self->err;
  const uint8_t *mask = nullptr;
  int64_t scored = ffdp_volume_nvox(L->F);
  /* a level's first call, traced: where a first use costs (each step waited for, so the
   * trace's times are the steps' own; the values are the same) */
  double tt[6];
  int nt = 0;
  const int split = e->split > 0;
  auto mark = [&] {
    if (split) cudaDeviceSynchronize(), tt[nt++] = reg_now();
  };
  mark();
  int r = reg_cuda_mask_scored(&e->mask, c, w, &e->s, nullptr, e->g, &mask, &scored, &err); /* g: free until the metric */
  mark();
  if (!r) r = ffdp_cuda_sample_fwd(w, &store, nullptr, &L->ms, e->M, 1, e->moved, nullptr);
  mark();
  if (!r) r = reg_cuda_metric(c, m, &e->s, scored, e->F, e->moved, mask, e->g, &loss, &err);
  mark();
  const long long nzo = e->s.z1 - e->s.z0;
  if (!r) r = ffdp_cuda_sample_bwd_planes(w, &e->s, nullptr, &L->ms, e->M, 1, e->g, nullptr, e->gB, nullptr);
  mark();
  if (!r) r = (int)cudaMemcpy(e->part, e->gB, nzo * 12 * sizeof(double), cudaMemcpyDeviceToHost);
  mark();
  if (split) {
    e->split--;
    reg_trace("linear evaluation: mask %.3f, sampler %.3f, metric %.3f, backward %.3f, gradient copy %.3f ms",
              1e3 * (tt[1] - tt[0]), 1e3 * (tt[2] - tt[1]), 1e3 * (tt[3] - tt[2]), 1e3 * (tt[4] - tt[3]),
              1e3 * (tt[5] - tt[4]));
  }
  if (c->size > 1 && r >= 0) { /* every rank learns of a failure before the fold */
    ffdp_status st = r ? ffdp_fail(&err, FFDP_ERR_IO, "CUDA error: %s", cudaGetErrorString((cudaError_t)r)) : FFDP_OK;
    r = c->agree(c, st, &err) ? -1 : 0;
  }
  /* planes added in global order: the same bits on any number of ranks */
  if (!r && c->fold(c, &e->s, e->part, 12, &gB[0][0], &err)) r = -1;
  if (r > 0) ffdp_fail(&err, FFDP_ERR_IO, "CUDA error: %s", cudaGetErrorString((cudaError_t)r));
  if (self->device_bytes == 0) self->device_bytes = reg_cuda_used_bytes();
  *rc = r;
  return loss;
}

void cuda_release(reg_linear_eval *self) {
  CudaEval *e = (CudaEval *)self;
  cudaFree(e->block);
  free(e->part);
  free(e);
}

}  // namespace

extern "C" reg_linear_eval *reg_linear_eval_cuda(const reg_level *L, const ffdp_comm *comm, const ffdp_metric_spec *m,
                                                 ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  int64_t halo = 0;
  if (m->kind == FFDP_METRIC_CC) {
    ffdp_lncc_params p = {m->window, FFDP_WINDOW_BOX, 1e-5};
    halo = ffdp_lncc_halo(&p);
  }
  const ffdp_slab s =
      c->size > 1 ? ffdp_slab_split(L->F->dim[0], L->F->dim[1], L->F->dim[2], c->rank, c->size, halo) : L->fs;
  const long long n = ffdp_slab_stored(&s), nm = ffdp_volume_nvox(L->M);
  reg_layout lay;
  reg_layout_linear(n, s.z1 - s.z0, nm, (L->fmask ? REG_HAS_FIXED_MASK : 0) | (L->mmask ? REG_HAS_MOVING_MASK : 0), &lay);
  /* the level's device copies are for the deformable stages (reg_cuda_level_take); a linear
   * level is small and uploads its images, so they go now rather than sit beside its buffers */
  reg_cuda_pyramid_drop_level(L->pyr);
  reg_cuda_pyramid_trim(L->pyr, (double)(lay.total + REG_OP_SCRATCH_BYTES)); /* kept source planes give way */
  CudaEval *e = (CudaEval *)calloc(1, sizeof *e);
  if (e) e->part = (double *)malloc((size_t)(s.z1 - s.z0 + 1) * 12 * sizeof(double));
  cudaError_t ce = e && e->part ? cudaMalloc(&e->block, lay.total) : cudaErrorMemoryAllocation;
  if (ce) {
    ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate %.1f MB on the CUDA device: %s", lay.total / 1e6,
              cudaGetErrorString(ce));
  } else {
    char *p = (char *)e->block;
    e->F = (float *)(p + lay.off[LI_F]), e->M = (float *)(p + lay.off[LI_M]);
    e->moved = (float *)(p + lay.off[LI_MOVED]), e->g = (float *)(p + lay.off[LI_G]);
    e->gB = (double *)(p + lay.off[LI_GB]);
    ce = (cudaError_t)reg_cuda_level_upload(L, 0, s.zlo, s.zhi, e->F);
    if (!ce) ce = (cudaError_t)reg_cuda_level_upload(L, 1, 0, L->M->dim[2], e->M);
    if (ce) ffdp_fail(err, FFDP_ERR_IO, "CUDA error uploading a level: %s", cudaGetErrorString(ce));
  }
  /* collective (the fixed mask's count): every rank takes part, a failure anywhere fails all */
  reg_cuda_mask mk;
  int mrc = reg_cuda_mask_open(&mk, &lay, e ? e->block : nullptr, L, &s, comm, (int)ce, err);
  if (mrc > 0 && !ce) ffdp_fail(err, FFDP_ERR_IO, "CUDA error uploading a level's masks: %s", cudaGetErrorString((cudaError_t)mrc));
  if (mrc || ce) {
    if (e) cudaFree(e->block), free(e->part);
    free(e);
    return nullptr;
  }
  e->mask = mk;
  e->split = getenv("FFDP_TRACE") ? 1 : 0;
  e->base.run = cuda_run;
  e->base.release = cuda_release;
  e->L = L, e->comm = comm, e->s = s;
  return &e->base;
}
