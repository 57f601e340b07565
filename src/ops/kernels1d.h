/* 1D kernels shared by operators: Gaussian smoothing taps and Parzen windows. */
#ifndef FFDP_OPS_KERNELS1D_H
#define FFDP_OPS_KERNELS1D_H
#include "ops/ops.h"
#include <math.h>
#ifdef __cplusplus
extern "C" {
#endif

/* Normalized Gaussian taps w[0..2r] for sigma (voxels); returns r = ceil(3 sigma) (capped at
 * FFDP_MAX_RADIUS). sigma <= 0 gives r = 0, w = {1}. */
int ffdp_gauss_weights(double sigma, double *w);

#define FFDP_PARZEN_MAX 8
#define FFDP_MI_MAX_BINS 256
/* Parzen window at continuous bin coordinate eta (MATTES: the moving image's, the cubic
 * B-spline): fills ffdp_parzen_taps(kind) weights for
 * bins j0.. and their derivatives w.r.t. eta; returns j0. Weights sum to 1 (B-spline by
 * partition of unity, Gaussian by explicit normalization). eta must lie in
 * [pad, bins-1-pad] with pad = ffdp_parzen_pad(kind). */
int ffdp_parzen(ffdp_parzen_kind kind, int bins, double eta, double *w, double *dw);

/* The cubic B-spline window (ffdp_parzen's FFDP_PARZEN_BSPLINE) inline: the four taps from
 * floor(eta) - 1 as polynomials in the fraction t of eta, no per-tap distance, sign or branch
 * (the MI operators call it once per voxel and image). dw = d(w)/d(eta). */
static inline int ffdp_parzen_bspline4(double eta, double *w, double *dw) {
  const double fl = floor(eta), t = eta - fl, s = 1 - t, t2 = t * t, t3 = t2 * t;
  w[0] = s * s * s / 6;
  w[1] = 2.0 / 3.0 - t2 + 0.5 * t3;
  w[2] = 1.0 / 6.0 + 0.5 * (t + t2 - t3);
  w[3] = t3 / 6;
  dw[0] = -0.5 * s * s;
  dw[1] = 1.5 * t2 - 2 * t;
  dw[2] = 0.5 + t - 1.5 * t2;
  dw[3] = 0.5 * t2;
  return (int)fl - 1;
}
/* The box window of FFDP_PARZEN_MATTES's fixed image: the bin nearest eta, weight 1 (the
 * zero-order B-spline centred on the bins, as the cubic one is). */
static inline int ffdp_parzen_box(double eta) { return (int)floor(eta + 0.5); }
/* Taps and padding of the moving image's window (MATTES: the cubic B-spline's) */
int ffdp_parzen_taps(ffdp_parzen_kind kind);
int ffdp_parzen_pad(ffdp_parzen_kind kind);
#ifdef __cplusplus
}
#endif
#endif
