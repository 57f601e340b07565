/* Device-resident deformable helpers shared by the CUDA greedy and SyN stages. All return
 * 0 or a CUDA error code; fields are 3-vectors on slab s, in world mm. */
#ifndef FFDP_REG_STEP_CUDA_H
#define FFDP_REG_STEP_CUDA_H
#include "ffdp/register.h"
#include "ops/ops.h"
#ifdef __cplusplus
extern "C" {
#endif
/* Adam moments of one field (3n values each), stored as float or, with bf16, as bfloat16. */
typedef struct reg_cuda_adam {
  void *m, *v;
  int bf16;
} reg_cuda_adam;
/* As reg_field_step, in three fields: gu (consumed), tmp (scratch) and u (updated); scratch
 * holds 1024 floats; *moved = 0 if the gradient vanished. */
int reg_cuda_field_step(const ffdp_slab *s, float *u, float *gu, float *tmp, reg_cuda_adam adam, int t,
                        const ffdp_warp *cw, double step, double grad_sigma, double warp_sigma, float *scratch,
                        int *moved);
/* out = T·d + U∘(p + S·d), vox the voxel-space composition warp (B = identity). */
int reg_cuda_compose_fields(const ffdp_slab *s, const ffdp_warp *vox, const float *U, const float *d, const double T[3][3],
                            float *out);
/* w = inverse displacement of v (damped fixed point, as reg_invert_field). */
int reg_cuda_invert_field(const ffdp_slab *s, const ffdp_warp *vox, const float *v, int iters, float *w, float *tmp);
/* Loss of (A, B) and its gradient w.r.t. B, as reg_metric_pair (no masks). */
int reg_cuda_metric(const ffdp_metric_spec *m, const ffdp_slab *s, const float *A, const float *B, float *g, double *loss);
#ifdef __cplusplus
}
#endif
#endif
