/* Internal pieces of the registration pipeline. */
#ifndef FFDP_REG_INTERNAL_H
#define FFDP_REG_INTERNAL_H
#include "core/volume_internal.h"
#include "ffdp/register.h"
#include "ops/ops.h"

/* One pyramid level of the (normalized) fixed and moving images. */
typedef struct reg_level {
  ffdp_volume *F, *M;
  uint8_t *fmask;       /* fixed mask on the level grid, or NULL */
  ffdp_volume *mmask;   /* moving mask on the moving level grid (float 0/1), or NULL */
  ffdp_slab fs, ms;
} reg_level;

ffdp_status reg_level_build(const ffdp_volume *F, const ffdp_volume *M, const ffdp_volume *fmask,
                            const ffdp_volume *mmask, int shrink, double sigma, reg_level *L, ffdp_error *err);
void reg_level_free(reg_level *L);

/* Loss and gradient w.r.t. the moved image (g may be NULL). Images are normalized to [0,1]. */
double reg_metric(const ffdp_metric_spec *m, const reg_level *L, const float *moved, const uint8_t *mask, float *g);

/* Mask of voxels to score: fixed mask AND moving mask carried through the current warp.
 * Returns NULL (all voxels) when neither mask is given; *buf is scratch owned by caller. */
const uint8_t *reg_effective_mask(const reg_level *L, const ffdp_warp *w, const float *u, uint8_t **buf, float **fbuf);

/* Adam on a small parameter vector. */
typedef struct reg_adam {
  int n, t;
  double m[16], v[16];
} reg_adam;
void reg_adam_step(reg_adam *a, double *theta, const double *g, double lr);

/* Convergence over a window of losses: relative slope > -tol. */
int reg_converged(const double *hist, int n, int window, double tol);

ffdp_status reg_moments_init(const ffdp_volume *F, const ffdp_volume *M, ffdp_mat4 *aff, ffdp_error *err);
ffdp_status reg_linear_stage(const ffdp_volume *F, const ffdp_volume *M, const ffdp_reg_options *opt, int si,
                             ffdp_mat4 *aff, ffdp_stage_summary *sum, double t_start, ffdp_error *err);
ffdp_status reg_greedy_stage(const ffdp_volume *F, const ffdp_volume *M, const ffdp_reg_options *opt, int si,
                             ffdp_mat4 aff, ffdp_volume **u, ffdp_stage_summary *sum, double t_start, ffdp_error *err);
double reg_now(void);
/* Fraction of fixed-grid voxels that the affine maps inside the moving image. */
double reg_overlap(const ffdp_volume *F, const ffdp_volume *M, ffdp_mat4 aff);
#endif
