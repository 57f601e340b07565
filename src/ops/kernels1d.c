#include "ops/kernels1d.h"
#include <math.h>

int ffdp_gauss_weights(double sigma, double *w) {
  if (!(sigma > 0)) {
    w[0] = 1;
    return 0;
  }
  int r = (int)ceil(3 * sigma);
  if (r > FFDP_MAX_RADIUS) r = FFDP_MAX_RADIUS;
  double s = 0;
  for (int d = -r; d <= r; d++) s += (w[d + r] = exp(-0.5 * d * d / (sigma * sigma)));
  for (int d = 0; d <= 2 * r; d++) w[d] /= s;
  return r;
}

int64_t ffdp_blur_radius(double sigma) {
  if (!(sigma > 0)) return 0;
  int r = (int)ceil(3 * sigma);
  return r > FFDP_MAX_RADIUS ? FFDP_MAX_RADIUS : r;
}

int64_t ffdp_lncc_halo(const ffdp_lncc_params *p) { return p->window - 1; }

int ffdp_parzen_taps(ffdp_parzen_kind kind) { return kind == FFDP_PARZEN_GAUSS ? 6 : 4; }
int ffdp_parzen_pad(ffdp_parzen_kind kind) { return kind == FFDP_PARZEN_GAUSS ? 3 : 2; }

#define FFDP_PARZEN_SIGMA 1.0 /* Gaussian window width in bins */
#define FFDP_PARZEN_RADIUS 3.0

int ffdp_parzen(ffdp_parzen_kind kind, int bins, double eta, double *w, double *dw) {
  (void)bins;
  if (kind != FFDP_PARZEN_GAUSS) return ffdp_parzen_bspline4(eta, w, dw);
  const int j0 = (int)floor(eta) - 2;
  const int n = ffdp_parzen_taps(kind);
  /* Gaussian shifted down by its value at the truncation radius so it reaches 0 there
   * continuously, then normalized per voxel. */
  const double s2 = FFDP_PARZEN_SIGMA * FFDP_PARZEN_SIGMA;
  const double floor_v = exp(-0.5 * FFDP_PARZEN_RADIUS * FFDP_PARZEN_RADIUS / s2);
  double g[FFDP_PARZEN_MAX], dg[FFDP_PARZEN_MAX], sg = 0, sdg = 0;
  for (int a = 0; a < n; a++) {
    double d = (double)(j0 + a) - eta;
    if (fabs(d) < FFDP_PARZEN_RADIUS) {
      double e = exp(-0.5 * d * d / s2);
      g[a] = e - floor_v;
      dg[a] = d / s2 * e;
    } else {
      g[a] = dg[a] = 0;
    }
    sg += g[a];
    sdg += dg[a];
  }
  for (int a = 0; a < n; a++) {
    w[a] = g[a] / sg;
    dw[a] = (dg[a] - w[a] * sdg) / sg;
  }
  return j0;
}
