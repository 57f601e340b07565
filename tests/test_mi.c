/* Mattes MI (B-spline, Gaussian and box-for-fixed windows): value vs a naive dense-histogram
 * reference (kernels evaluated over every bin),
 * gradient vs central finite differences, histogram reductions split across slabs. */
#include "check.h"
#include "ops/ops.h"

static double bspl(double d) {
  d = fabs(d);
  return d < 1 ? 2.0 / 3 - d * d + d * d * d / 2 : d < 2 ? (2 - d) * (2 - d) * (2 - d) / 6 : 0;
}

/* Dense weights over all bins: the obvious (and slow) definition. fixed: the fixed image's
 * window (MATTES: 1 in the bin nearest eta, 0 elsewhere). */
static void dense_weights(ffdp_parzen_kind kind, int fixed, int B, double v, double lo, double hi, double *w) {
  int pad = kind == FFDP_PARZEN_GAUSS ? 3 : 2;
  double eta = pad + (v - lo) / (hi - lo) * (B - 1 - 2 * pad);
  eta = fmin(fmax(eta, pad), B - 1 - pad);
  double s = 0;
  for (int j = 0; j < B; j++) {
    double d = j - eta;
    if (kind == FFDP_PARZEN_MATTES && fixed) w[j] = fabs(d) < 0.5 || d == 0.5;  /* round half up */
    else w[j] = kind != FFDP_PARZEN_GAUSS ? bspl(d) : (fabs(d) < 3 ? exp(-0.5 * d * d) - exp(-4.5) : 0);
    s += w[j];
  }
  for (int j = 0; j < B; j++) w[j] /= s;
}

static double naive_mi(const ffdp_mi_params *p, const double *F, const double *M, const uint8_t *mask, int64_t n) {
  int B = p->bins;
  double *h = calloc(B * B, sizeof(double)), wf[256], wm[256], cnt = 0;
  for (int64_t i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    dense_weights(p->kind, 1, B, F[i], p->fmin, p->fmax, wf);
    dense_weights(p->kind, 0, B, M[i], p->mmin, p->mmax, wm);
    for (int a = 0; a < B; a++)
      for (int b = 0; b < B; b++) h[a * B + b] += wf[a] * wm[b];
    cnt++;
  }
  double pf[256] = {0}, pm[256] = {0}, mi = 0;
  for (int a = 0; a < B; a++)
    for (int b = 0; b < B; b++) pf[a] += h[a * B + b] / cnt, pm[b] += h[a * B + b] / cnt;
  for (int a = 0; a < B; a++)
    for (int b = 0; b < B; b++) {
      double pij = h[a * B + b] / cnt;
      if (pij > 0) mi += pij * log(pij / (pf[a] * pm[b]));
    }
  free(h);
  return -mi;
}

static void run(ffdp_parzen_kind kind, int bins, int use_mask, rng_t *r) {
  const int64_t nx = 7, ny = 6, nz = 5, n = nx * ny * nz;
  double *F = malloc(n * sizeof(double)), *M = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double));
  uint8_t *mask = malloc(n);
  for (int64_t i = 0; i < n; i++) {
    F[i] = rng_nz(r, 0, 100);
    /* a non-monotonic relation (different "contrast") plus noise */
    M[i] = 50 + 40 * sin(F[i] / 20) + rng_range(r, -5, 5);
    mask[i] = rng_uniform(r) > 0.25;
  }
  /* Include a few voxels outside the moving range to exercise clamping. */
  ffdp_mi_params p = {bins, kind, 0, 100, 15, 85};
  const uint8_t *mk = use_mask ? mask : NULL;
  ffdp_slab s = ffdp_slab_whole(nx, ny, nz);
  double L = ffdp_mi_f64(&p, &s, F, M, mk, g), ref = naive_mi(&p, F, M, mk, n);
  CHECK(check_close(L, ref, 1e-11, 1e-13), "kind %d bins %d: MI loss %.12g vs naive %.12g", kind, bins, L, ref);
  CHECK(L < -0.1, "expected dependent images, loss %g", L);
  const double h = 1e-5;
  int clamped = 0;
  for (int64_t k = 0; k < n; k++) {
    double keep = M[k];
    if (keep < p.mmin + 2 * h || keep > p.mmax - 2 * h) clamped++;
    M[k] = keep + h;
    double lp = naive_mi(&p, F, M, mk, n);
    M[k] = keep - h;
    double lm = naive_mi(&p, F, M, mk, n);
    M[k] = keep;
    double fd = (lp - lm) / (2 * h);
    CHECK(check_close(g[k], fd, 1e-4, 1e-9), "kind %d bins %d mask %d: dM[%lld] %.9g vs fd %.9g", kind, bins, use_mask,
          (long long)k, g[k], fd);
  }
  CHECK(clamped > 0, "no voxel exercised the clamped range");
  /* Histogram accumulated over two slabs equals the whole. */
  double *h1 = calloc(bins * bins, sizeof(double)), *h2 = calloc(bins * bins, sizeof(double));
  ffdp_mi_hist_f64(&p, &s, F, M, mk, h1);
  ffdp_slab a = s, b = s;
  a.z1 = a.zhi = 2, b.z0 = b.zlo = 2;
  ffdp_mi_hist_f64(&p, &a, F, M, mk, h2);
  ffdp_mi_hist_f64(&p, &b, F + 2 * nx * ny, M + 2 * nx * ny, mk ? mk + 2 * nx * ny : NULL, h2);
  double e = 0;
  for (int k = 0; k < bins * bins; k++) e = fmax(e, fabs(h1[k] - h2[k]));
  CHECK(e < 1e-12, "slab histogram differs by %g", e);
  free(F), free(M), free(g), free(mask), free(h1), free(h2);
}

int main(void) {
  rng_t r = {99};
  run(FFDP_PARZEN_BSPLINE, 32, 0, &r);
  run(FFDP_PARZEN_BSPLINE, 16, 1, &r);
  run(FFDP_PARZEN_GAUSS, 32, 0, &r);
  run(FFDP_PARZEN_GAUSS, 24, 1, &r);
  run(FFDP_PARZEN_MATTES, 32, 0, &r);
  run(FFDP_PARZEN_MATTES, 20, 1, &r);
  return check_done("test_mi");
}
