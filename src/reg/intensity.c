/* Intensity handling before registration: the range of each image (over every rank's share),
 * scaling to [0, 1] from min/max or from quantiles (winsorizing), and histogram matching. Every
 * statistic that crosses ranks is an exact sum (counts, or sums added in rank order), so N
 * ranks give one process's bits. */
#include "reg/reg_internal.h"
#include "core/err.h"
#include "core/comm_internal.h"
#include "core/volume_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The planes of v this rank holds: its share when the inputs are sharded over `shared`. */
static void held_planes(const ffdp_volume *v, const ffdp_comm *shared, int64_t *z0, int64_t *z1) {
  *z0 = 0, *z1 = v->dim[2];
  if (shared) ffdp_comm_share(shared, v->dim[2], z0, z1);
}

/* The intensity range of v (of every rank's share when sharded; known: this rank's, as its
 * load found it, or NULL); constant or non-finite images are errors, the same on every rank. */
static ffdp_status intensity_range(const ffdp_volume *v, const char *what, const ffdp_comm *shared,
                                   const ffdp_value_range *known, double *lo, double *hi, ffdp_error *err) {
  int64_t z0, z1;
  held_planes(v, shared, &z0, &z1);
  const int64_t P = v->dim[0] * v->dim[1];
  double bad = known ? (double)known->nonfinite : (double)ffdp_floats_range(v->data + z0 * P, (z1 - z0) * P, lo, hi);
  if (known) *lo = known->lo, *hi = known->hi;
  const ffdp_comm *c = ffdp_comm_or_single(shared);
  c->sum(c, &bad, 1); /* integer-valued: exact */
  *lo = -c->max(c, -*lo), *hi = c->max(c, *hi);
  if (bad)
    return ffdp_fail(err, FFDP_ERR_NUMERIC, "the %s image contains %.0f NaN/Inf voxels; clean it first", what, bad);
  if (!(*hi > *lo)) return ffdp_fail(err, FFDP_ERR_INVALID, "the %s image is constant (all voxels %g)", what, *lo);
  return FFDP_OK;
}

/* Quantiles q[k] (k < nq) of the intensities of v above `above` (every rank's share), out[k],
 * from a histogram of QB bins over [a, b] summed over the ranks (counts: exact in double, so
 * every rank and every rank count gets the same), interpolated linearly within the bin. Also
 * the number of bins holding any voxel. 0 when out of memory. */
enum { QB = 4096 };
static int shared_quantiles(const ffdp_volume *v, const ffdp_comm *shared, double a, double b, double above, int nq,
                            const double *q, double *out, int *occupied) {
  int64_t z0, z1;
  held_planes(v, shared, &z0, &z1);
  const int64_t P = v->dim[0] * v->dim[1], n = (z1 - z0) * P;
  const float *d = v->data + z0 * P;
  const double w = (b - a) / QB;
  double *h = calloc(QB, sizeof *h);
  if (!h) return 0;
  int ok = 1;
#pragma omp parallel
  {
    double *mine = calloc(QB, sizeof *mine);
    if (!mine) {
#pragma omp atomic write
      ok = 0;
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      if (!mine || !(d[i] > above)) continue;
      int k = (int)((d[i] - a) / w);
      mine[k < 0 ? 0 : k >= QB ? QB - 1 : k] += 1;
    }
#pragma omp critical(ffdp_quantile_hist)
    for (int k = 0; mine && k < QB; k++) h[k] += mine[k];
    free(mine);
  }
  const ffdp_comm *c = ffdp_comm_or_single(shared);
  double okd = ok;
  c->sum(c, &okd, 1); /* every rank takes the same branch */
  if (okd < ffdp_comm_size(c)) {
    free(h);
    return 0;
  }
  c->sum(c, h, QB);
  double total = 0;
  for (int k = 0; k < QB; k++) total += h[k];
  for (int j = 0; j < nq; j++) { /* the first bin whose cumulative count reaches q·total */
    const double want = q[j] * total;
    double cum = 0;
    int k = 0;
    while (k < QB - 1 && cum + h[k] < want) cum += h[k++];
    const double f = h[k] > 0 ? (want - cum) / h[k] : 0;
    out[j] = a + (k + (f < 0 ? 0 : f > 1 ? 1 : f)) * w;
  }
  if (occupied) {
    *occupied = 0;
    for (int k = 0; k < QB; k++) *occupied += h[k] > 0;
  }
  free(h);
  return 1;
}

/* Winsorizing: the quantiles q replace [lo, hi] (a degenerate range keeps min and max). */
static void intensity_quantiles(const ffdp_volume *v, const ffdp_comm *shared, const double q[2], double *lo, double *hi) {
  double at[2];
  if (shared_quantiles(v, shared, *lo, *hi, -INFINITY, 2, q, at, NULL) && at[1] > at[0]) *lo = at[0], *hi = at[1];
}

/* lo + x·scale is where x in [0,1] came from; the same float arithmetic for the copy and the
 * in-place form, so that a caller who normalizes its images gets the same registration. */
static void scale_into(const float *src, float *d, int64_t n, double lo, double hi, int clip) {
  const float a = (float)lo, s = (float)(1.0 / (hi - lo));
  if (clip) { /* winsorized: what lies beyond the quantiles becomes 0 or 1 */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) d[i] = fminf(fmaxf((src[i] - a) * s, 0.f), 1.f);
    return;
  }
#pragma omp parallel for schedule(static) /* the first touch of new pages, on every thread */
  for (int64_t i = 0; i < n; i++) d[i] = (src[i] - a) * s;
}

/* Quantiles other than {0, 1}: winsorizing asked for (invalid ones are refused first). */
static int winsorizing(const double *q) { return q && (q[0] > 0 || q[1] < 1); }

static ffdp_status check_quantiles(const double *q, ffdp_error *err) {
  if (q && !(q[0] >= 0 && q[0] < q[1] && q[1] <= 1))
    return ffdp_fail(err, FFDP_ERR_INVALID, "winsorizing quantiles must satisfy 0 <= lower < upper <= 1 (got %g, %g)", q[0],
                     q[1]);
  return FFDP_OK;
}

static ffdp_status normalize_share(ffdp_volume *v, const ffdp_comm *shared, const double *q, const char *what,
                                   const ffdp_value_range *known, double *lo, double *hi, ffdp_error *err) {
  double a, b;
  if (v->ncomp != 1) return ffdp_fail(err, FFDP_ERR_INVALID, "the %s image must be scalar", what ? what : "");
  ffdp_status st = check_quantiles(q, err);
  if (st || (st = intensity_range(v, what ? what : "", shared, known, &a, &b, err))) return st;
  if (winsorizing(q)) intensity_quantiles(v, shared, q, &a, &b);
  int64_t z0, z1;
  held_planes(v, shared, &z0, &z1);
  const int64_t P = v->dim[0] * v->dim[1];
  scale_into(v->data + z0 * P, v->data + z0 * P, (z1 - z0) * P, a, b, winsorizing(q));
  if (lo) *lo = a;
  if (hi) *hi = b;
  return FFDP_OK;
}

ffdp_status ffdp_volume_normalize(ffdp_volume *v, const char *what, double *lo, double *hi, ffdp_error *err) {
  return normalize_share(v, NULL, NULL, what, NULL, lo, hi, err);
}

ffdp_status ffdp_volume_normalize_share(ffdp_volume *v, const ffdp_comm *comm, const char *what, double *lo, double *hi,
                                        ffdp_error *err) {
  return normalize_share(v, comm, NULL, what, NULL, lo, hi, err);
}

ffdp_status ffdp_volume_normalize_quantiles(ffdp_volume *v, const ffdp_comm *comm, const double q[2], const char *what,
                                            double *lo, double *hi, ffdp_error *err) {
  return reg_normalize_loaded(v, comm, q, what, NULL, lo, hi, err);
}

ffdp_status reg_normalize_loaded(ffdp_volume *v, const ffdp_comm *comm, const double q[2], const char *what,
                                 const ffdp_value_range *loaded, double *lo, double *hi, ffdp_error *err) {
  return normalize_share(v, comm, q, what, loaded, lo, hi, err);
}

ffdp_status reg_intensity_range_loaded(const ffdp_volume *v, const ffdp_comm *comm, const char *what,
                                       const ffdp_value_range *loaded, double *lo, double *hi, ffdp_error *err) {
  if (v->ncomp != 1) return ffdp_fail(err, FFDP_ERR_INVALID, "the %s image must be scalar", what ? what : "");
  return intensity_range(v, what ? what : "", comm, loaded, lo, hi, err);
}

ffdp_status ffdp_volume_intensity_range(const ffdp_volume *v, const ffdp_comm *comm, const char *what, double *lo,
                                        double *hi, ffdp_error *err) {
  return reg_intensity_range_loaded(v, comm, what, NULL, lo, hi, err);
}

void ffdp_volume_scale_planes(ffdp_volume *v, int64_t z0, int64_t z1, double lo, double hi) {
  const int64_t P = v->dim[0] * v->dim[1] * v->ncomp;
  if (z0 < 0) z0 = 0;
  if (z1 > v->dim[2]) z1 = v->dim[2];
  if (z1 > z0) scale_into(v->data + z0 * P, v->data + z0 * P, (z1 - z0) * P, lo, hi, 0);
}

/* Copy scaled to [0,1] (the rank's share of planes when sharded: the rest stays unmapped);
 * constant or non-finite images are errors. */
ffdp_status reg_normalized_copy(const ffdp_volume *v, const ffdp_comm *shared, const double *q, const char *what,
                                ffdp_volume **out, ffdp_error *err) {
  double lo, hi;
  ffdp_status st = check_quantiles(q, err);
  if (st || (st = intensity_range(v, what, shared, NULL, &lo, &hi, err))) return st;
  if (winsorizing(q)) intensity_quantiles(v, shared, q, &lo, &hi);
  if ((st = ffdp_volume_create(v->dim, 1, v->vox2world, out, err))) return st;
  int64_t z0, z1;
  held_planes(v, shared, &z0, &z1);
  const int64_t P = v->dim[0] * v->dim[1];
  scale_into(v->data + z0 * P, (*out)->data + z0 * P, (z1 - z0) * P, lo, hi, winsorizing(q));
  return FFDP_OK;
}


/* Histogram matching as ITK's filter does it for antsRegistration (--use-histogram-matching):
 * NM match points at the quantiles k/(NM+1) of each image's voxels above its mean, plus its
 * mean and maximum as the ends; moving intensities are mapped piecewise linearly from its
 * points to the fixed image's, extrapolated with the end segments' slopes. */
enum { HM_POINTS = 12 };
ffdp_status ffdp_volume_match_histogram(ffdp_volume *moving, const ffdp_volume *fixed, const ffdp_comm *comm, ffdp_error *err) {
  const ffdp_volume *img[2] = {moving, fixed};
  double pts[2][HM_POINTS + 2];
  double q[HM_POINTS];
  for (int k = 0; k < HM_POINTS; k++) q[k] = (k + 1.0) / (HM_POINTS + 1.0);
  for (int s = 0; s < 2; s++) {
    if (img[s]->ncomp != 1) return ffdp_fail(err, FFDP_ERR_INVALID, "histogram matching needs scalar images");
    double lo, hi;
    int used = 0;
    ffdp_status st = intensity_range(img[s], s ? "fixed" : "moving", comm, NULL, &lo, &hi, err);
    if (st) return st;
    int64_t z0, z1;
    held_planes(img[s], comm, &z0, &z1);
    const int64_t P = img[s]->dim[0] * img[s]->dim[1];
    /* the mean, the same bits for any split: each plane summed in order, the planes' sums
     * (one rank each, zeros elsewhere: exact) added in z order */
    const int64_t nz = img[s]->dim[2];
    const ffdp_comm *c = ffdp_comm_or_single(comm);
    double *ps = calloc((size_t)nz, sizeof *ps), mean = 0, have = ps != NULL;
    c->sum(c, &have, 1); /* every rank stops, or none: no rank waits in the sum below */
    if (have < ffdp_comm_size(c)) {
      free(ps);
      return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory matching histograms");
    }
#pragma omp parallel for schedule(static)
    for (int64_t z = z0; z < z1; z++) {
      double t = 0;
      for (int64_t i = 0; i < P; i++) t += img[s]->data[z * P + i];
      ps[z] = t;
    }
    c->sum(c, ps, (int)nz);
    for (int64_t z = 0; z < nz; z++) mean += ps[z];
    mean /= (double)(P * nz);
    free(ps);
    if (!shared_quantiles(img[s], comm, lo, hi, mean, HM_POINTS, q, pts[s] + 1, &used))
      return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory matching histograms");
    if (used < 2)
      return ffdp_fail(err, FFDP_ERR_INVALID, "cannot match histograms: the %s image has too few distinct intensities "
                       "above its mean", s ? "fixed" : "moving");
    pts[s][0] = mean, pts[s][HM_POINTS + 1] = hi;
  }
  const double *src = pts[0], *ref = pts[1];
  for (int k = 1; k < HM_POINTS + 2; k++) /* a flat stretch of the moving histogram: keep the map monotone */
    if (!(src[k] > src[k - 1])) return ffdp_fail(err, FFDP_ERR_INVALID, "cannot match histograms: the moving image has "
                                                 "too few distinct intensities above its mean");
  int64_t z0, z1;
  held_planes(moving, comm, &z0, &z1);
  const int64_t P = moving->dim[0] * moving->dim[1], n = (z1 - z0) * P;
  float *d = moving->data + z0 * P;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const double x = d[i];
    int k = 1; /* the segment [src[k-1], src[k]] holding x; the end segments extend outward */
    while (k < HM_POINTS + 1 && x > src[k]) k++;
    d[i] = (float)(ref[k - 1] + (x - src[k - 1]) * (ref[k] - ref[k - 1]) / (src[k] - src[k - 1]));
  }
  return FFDP_OK;
}
