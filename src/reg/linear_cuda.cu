// Linear-stage evaluation on the CUDA device: the level's images stay resident; each
// iteration runs the affine-only sampler, the metric with its gradient and the sampler
// backward whose affine-gradient reduction is deterministic.
#include <cuda_runtime.h>
#include <stdlib.h>
#include "core/err.h"
#include "ops/ops_cuda.h"
#include "reg/dev_layout.h"
#include "reg/reg_internal.h"

namespace {

struct CudaEval {
  reg_linear_eval base;
  const reg_level *L;
  float *F, *M, *moved, *g;
  double *gB;
  void *block;
};

double cuda_run(reg_linear_eval *self, const ffdp_metric_spec *m, const ffdp_warp *w, double gB[3][4], int *rc) {
  CudaEval *e = (CudaEval *)self;
  const reg_level *L = e->L;
  const ffdp_slab *s = &L->fs;
  const double norm = 1.0 / (double)(s->nx * s->ny * (s->z1 - s->z0));
  double loss = 0;
  int r = ffdp_cuda_sample_fwd(w, s, nullptr, &L->ms, e->M, 1, e->moved, nullptr);
  if (!r) {
    if (m->kind == FFDP_METRIC_CC) {
      ffdp_lncc_params p = {m->window, FFDP_WINDOW_BOX, 1e-5};
      r = ffdp_cuda_lncc(&p, s, e->F, e->moved, nullptr, norm, e->g, &loss, nullptr);
    } else if (m->kind == FFDP_METRIC_MSE) {
      r = ffdp_cuda_mse(s, e->F, e->moved, nullptr, norm, e->g, &loss, nullptr);
    } else {
      ffdp_mi_params p = {m->bins, FFDP_PARZEN_BSPLINE, 0.0, 1.0, 0.0, 1.0};
      r = ffdp_cuda_mi(&p, s, e->F, e->moved, nullptr, e->g, &loss, nullptr);
    }
  }
  if (!r) r = ffdp_cuda_sample_bwd(w, s, nullptr, &L->ms, e->M, 1, e->g, nullptr, e->gB, nullptr);
  if (!r) r = (int)cudaMemcpy(gB, e->gB, 12 * sizeof(double), cudaMemcpyDeviceToHost);
  if (self->device_bytes == 0) self->device_bytes = reg_cuda_used_bytes();
  *rc = r;
  return loss;
}

void cuda_release(reg_linear_eval *self) {
  CudaEval *e = (CudaEval *)self;
  cudaFree(e->block);
  free(e);
}

}  // namespace

extern "C" reg_linear_eval *reg_linear_eval_cuda(const reg_level *L, ffdp_error *err) {
  if (L->fmask || L->mmask) {
    ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "masks are not supported on the CUDA device yet; use --device cpu");
    return nullptr;
  }
  const long long n = ffdp_volume_nvox(L->F), nm = ffdp_volume_nvox(L->M);
  reg_layout lay;
  reg_layout_linear(n, nm, &lay);
  CudaEval *e = (CudaEval *)calloc(1, sizeof *e);
  cudaError_t ce = e ? cudaMalloc(&e->block, lay.total) : cudaErrorMemoryAllocation;
  if (ce) {
    free(e);
    ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate %.1f MB on the CUDA device: %s", lay.total / 1e6,
              cudaGetErrorString(ce));
    return nullptr;
  }
  char *p = (char *)e->block;
  e->F = (float *)(p + lay.off[LI_F]), e->M = (float *)(p + lay.off[LI_M]);
  e->moved = (float *)(p + lay.off[LI_MOVED]), e->g = (float *)(p + lay.off[LI_G]);
  e->gB = (double *)(p + lay.off[LI_GB]);
  ce = cudaMemcpy(e->F, L->F->data, n * sizeof(float), cudaMemcpyHostToDevice);
  if (!ce) ce = cudaMemcpy(e->M, L->M->data, nm * sizeof(float), cudaMemcpyHostToDevice);
  if (ce) {
    cudaFree(e->block);
    free(e);
    ffdp_fail(err, FFDP_ERR_IO, "CUDA error uploading a level: %s", cudaGetErrorString(ce));
    return nullptr;
  }
  e->base.run = cuda_run;
  e->base.release = cuda_release;
  e->L = L;
  return &e->base;
}
