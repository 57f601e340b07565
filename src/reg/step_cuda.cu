// Device versions of the shared deformable-stage helpers (greedy.c: reg_field_step;
// field_ops.c: reg_compose_fields, reg_invert_field), same math, fields resident on the GPU.
#include <cuda_runtime.h>
#include "ops/ops_cuda.h"
#include "reg/step_cuda.h"

extern "C" int reg_cuda_field_step(const ffdp_slab *s, float *u, float *gu, float *tmp, reg_cuda_adam adam, int t,
                                   const ffdp_warp *cw, double step, double grad_sigma, double warp_sigma, float *scratch,
                                   int *moved) {
  const long long n = s->nx * s->ny * (s->zhi - s->zlo);
  const double gs[3] = {grad_sigma, grad_sigma, grad_sigma}, ws[3] = {warp_sigma, warp_sigma, warp_sigma};
  const double I[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  double mx = 0;
  int rc = ffdp_cuda_blur(s, gu, 3, gs, tmp, gu, nullptr); /* gu is dead after the first pass */
  if (!rc) rc = ffdp_cuda_maxnorm3(n, tmp, scratch, &mx, nullptr);
  *moved = mx > 0;
  if (rc || !*moved) return rc;
  rc = ffdp_cuda_adam_step(3 * n, tmp, adam.m, adam.v, adam.bf16, 1.0 / mx, t, step, nullptr); /* tmp = d */
  if (!rc) rc = ffdp_cuda_compose_fwd(cw, I, s, tmp, s, u, gu, nullptr);                       /* d + u∘(p + S d) */
  if (rc) return rc;
  if (warp_sigma > 0) return ffdp_cuda_blur(s, gu, 3, ws, u, gu, nullptr);
  return (int)cudaMemcpyAsync(u, gu, 3 * n * sizeof(float), cudaMemcpyDeviceToDevice, nullptr);
}

extern "C" int reg_cuda_compose_fields(const ffdp_slab *s, const ffdp_warp *vox, const float *U, const float *d,
                                       const double T[3][3], float *out) {
  return ffdp_cuda_compose_fwd(vox, T, s, d, s, U, out, nullptr);
}

extern "C" int reg_cuda_invert_field(const ffdp_slab *s, const ffdp_warp *vox, const float *v, int iters, float *w,
                                     float *tmp) {
  const long long n = s->nx * s->ny * (s->zhi - s->zlo);
  const double Z[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
  int rc = (int)cudaMemsetAsync(w, 0, 3 * n * sizeof(float), nullptr);
  if (!rc) rc = ffdp_cuda_axpby(3 * n, w, 0.0, v, -1.0, nullptr); /* w = -v */
  for (int it = 0; it < iters && !rc; it++) {                      /* w <- w - (w + v∘(id + w)) / 2 */
    rc = reg_cuda_compose_fields(s, vox, v, w, Z, tmp);
    if (!rc) rc = ffdp_cuda_axpby(3 * n, w, 0.5, tmp, -0.5, nullptr);
  }
  return rc;
}

extern "C" int reg_cuda_metric(const ffdp_metric_spec *m, const ffdp_slab *s, const float *A, const float *B, float *g,
                               double *loss) {
  const double norm = 1.0 / (double)(s->nx * s->ny * (s->z1 - s->z0));
  if (m->kind == FFDP_METRIC_CC) {
    ffdp_lncc_params p = {m->window, FFDP_WINDOW_BOX, 1e-5};
    return ffdp_cuda_lncc(&p, s, A, B, nullptr, norm, g, loss, nullptr);
  }
  if (m->kind == FFDP_METRIC_MSE) return ffdp_cuda_mse(s, A, B, nullptr, norm, g, loss, nullptr);
  ffdp_mi_params p = {m->bins, FFDP_PARZEN_BSPLINE, 0.0, 1.0, 0.0, 1.0};
  return ffdp_cuda_mi(&p, s, A, B, nullptr, g, loss, nullptr);
}
