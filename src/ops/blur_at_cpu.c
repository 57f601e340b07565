/* CPU operator of blur_at.cu: ffdp_blur_f32 of a scalar image at the points of a grid only.
 * Each value is ffdp_blur_f32's, operation for operation: x as filter_line_x (the centre tap,
 * then for each distance the tap after and the tap before), y as filter_line_y (taps in order
 * from zero), z as ffdp_blur's z pass (the centre plane, then each distance's two planes added
 * before the weight); no contraction into FMA (the build's -ffp-contract=off), so the same
 * roundings. A pyramid level of shrink s reads two points per level voxel and axis: the passes
 * here do about 2/s of the x pass's work and far less of the others'. */
#include "ops/cpu_common.h"

int ffdp_blur1_at_f32(const ffdp_slab *s, const float *in, const double sigma[3], const int *xs, int nxs, const int *ys,
                      int nys, const int64_t *zs, int nzs, float *out) {
  if (nxs < 1 || nys < 1 || nzs < 1) return 0;
  double w[3][2 * FFDP_MAX_RADIUS + 1];
  int r[3];
  float wf[3][2 * FFDP_MAX_RADIUS + 1];
  for (int a = 0; a < 3; a++) {
    r[a] = ffdp_gauss_weights(sigma[a], w[a]);
    for (int d = 0; d <= 2 * r[a]; d++) wf[a][d] = (float)w[a][d];
  }
  const int64_t nx = s->nx, ny = s->ny, nz = s->nz, P = nx * ny;
  /* the planes the z taps of the points reach (ffdp_blur reads them from in, zero outside the
   * image) */
  const int64_t pa = zs[0] - r[2] > 0 ? zs[0] - r[2] : 0, pb = zs[nzs - 1] + r[2] + 1 < nz ? zs[nzs - 1] + r[2] + 1 : nz;
  const int64_t np = pb - pa;
  /* x sums, y sums, a row of zeros (the planes outside the image) and a row per thread */
  const int nth = omp_get_max_threads();
  float *X = malloc((size_t)(np * ny * nxs + np * nys * nxs + (int64_t)(1 + nth) * nxs) * sizeof(float));
  if (!X) return -1;
  float *Y = X + np * ny * nxs, *zero = Y + np * nys * nxs, *rows = zero + nxs;
  memset(zero, 0, (size_t)nxs * sizeof(float));
  const int rx = r[0], ry = r[1], rz = r[2];
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t p = 0; p < np; p++)
    for (int64_t y = 0; y < ny; y++) {
      const float *row = in + (pa + p - s->zlo) * P + y * nx;
      float *xo = X + (p * ny + y) * nxs;
      for (int j = 0; j < nxs; j++) xo[j] = wf[0][rx] * row[xs[j]];
      for (int d = 1; d <= rx && d < nx; d++) {
        const float wp = wf[0][rx + d], wm = wf[0][rx - d];
        for (int j = 0; j < nxs; j++) {
          const int64_t x = xs[j];
          if (x + d < nx) xo[j] += wp * row[x + d];
          if (x - d >= 0) xo[j] += wm * row[x - d];
        }
      }
    }
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t p = 0; p < np; p++)
    for (int k = 0; k < nys; k++) {
      const int64_t y = ys[k], lo = y - ry < 0 ? -y : -ry, hi = y + ry >= ny ? ny - 1 - y : ry;
      float *yo = Y + (p * nys + k) * nxs;
      for (int j = 0; j < nxs; j++) yo[j] = 0;
      for (int64_t d = lo; d <= hi; d++) {
        const float *xi = X + (p * ny + y + d) * nxs, wd = wf[1][d + ry];
        for (int j = 0; j < nxs; j++) yo[j] += wd * xi[j];
      }
    }
#pragma omp parallel for collapse(2) schedule(static)
  for (int q = 0; q < nzs; q++)
    for (int k = 0; k < nys; k++) {
      const int64_t z = zs[q];
      float *v = rows + (int64_t)omp_get_thread_num() * nxs;
      const float *mid = Y + ((z - pa) * nys + k) * nxs;
      for (int j = 0; j < nxs; j++) v[j] = wf[2][rz] * mid[j];
      for (int d = 1; d <= rz; d++) {
        /* planes outside the image are ffdp_blur's zero planes */
        const float *a = z - d >= 0 ? Y + ((z - d - pa) * nys + k) * nxs : zero;
        const float *b = z + d < nz ? Y + ((z + d - pa) * nys + k) * nxs : zero;
        const float wd = wf[2][rz + d];
        for (int j = 0; j < nxs; j++) v[j] += wd * (a[j] + b[j]);
      }
      float *dst = out + (z - s->zlo) * P + (int64_t)ys[k] * nx;
      for (int j = 0; j < nxs; j++) dst[xs[j]] = v[j];
    }
  free(X);
  return 0;
}
