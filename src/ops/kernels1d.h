/* 1D kernels shared by operators: Gaussian smoothing taps and Parzen windows. */
#ifndef FFDP_OPS_KERNELS1D_H
#define FFDP_OPS_KERNELS1D_H
#include "ops/ops.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Normalized Gaussian taps w[0..2r] for sigma (voxels); returns r = ceil(3 sigma) (capped at
 * FFDP_MAX_RADIUS). sigma <= 0 gives r = 0, w = {1}. */
int ffdp_gauss_weights(double sigma, double *w);

#define FFDP_PARZEN_MAX 8
#define FFDP_MI_MAX_BINS 256
/* Parzen window at continuous bin coordinate eta: fills ffdp_parzen_taps(kind) weights for
 * bins j0.. and their derivatives w.r.t. eta; returns j0. Weights sum to 1 (B-spline by
 * partition of unity, Gaussian by explicit normalization). eta must lie in
 * [pad, bins-1-pad] with pad = ffdp_parzen_pad(kind). */
int ffdp_parzen(ffdp_parzen_kind kind, int bins, double eta, double *w, double *dw);
int ffdp_parzen_taps(ffdp_parzen_kind kind);
int ffdp_parzen_pad(ffdp_parzen_kind kind);
#ifdef __cplusplus
}
#endif
#endif
