/* Pyramid and resampling: level geometry keeps world positions; a world-linear intensity
 * survives downsampling in the interior; resampling onto a rotated grid matches the
 * analytic value; upsampling a constant displacement field keeps it constant. */
#include "check.h"
#include "ffdp/ffdp.h"
#include "test_geometry.h"

static double ramp(const double X[3]) { return 3 + 0.5 * X[0] - 0.25 * X[1] + 0.125 * X[2]; }

int main(void) {
  ffdp_error err;
  const int64_t dim[3] = {41, 36, 30};
  const double sp[3] = {1.0, 0.9, 1.2}, org[3] = {-20, -15, -18};
  ffdp_mat4 W = test_oblique(0.1, 0.2, -0.1, sp, org);
  ffdp_volume *v;
  CHECK(ffdp_volume_create(dim, 1, W, &v, &err) == FFDP_OK, "create: %s", err.msg);
  float *d = ffdp_volume_data(v);
  for (int64_t k = 0; k < dim[2]; k++)
    for (int64_t j = 0; j < dim[1]; j++)
      for (int64_t i = 0; i < dim[0]; i++) {
        double p[3] = {i, j, k}, X[3];
        ffdp_mat4_apply(W, p, X);
        d[(k * dim[1] + j) * dim[0] + i] = (float)ramp(X);
      }
  /* level grid: voxel p' sits at old voxel f p' + (f-1)/2 */
  const int f[3] = {2, 3, 2};
  int64_t d2[3];
  ffdp_mat4 W2;
  ffdp_shrink_grid(dim, W, f, d2, &W2);
  CHECK(d2[0] == 20 && d2[1] == 12 && d2[2] == 15, "shrunk dims %lld %lld %lld", (long long)d2[0], (long long)d2[1], (long long)d2[2]);
  double p2[3] = {3, 4, 5}, p1[3] = {3 * 2 + 0.5, 4 * 3 + 1, 5 * 2 + 0.5}, X1[3], X2[3];
  ffdp_mat4_apply(W2, p2, X2);
  ffdp_mat4_apply(W, p1, X1);
  for (int a = 0; a < 3; a++) CHECK(fabs(X1[a] - X2[a]) < 1e-12, "level voxel maps to a different world point");
  ffdp_volume *lo;
  CHECK(ffdp_volume_downsample(v, f, &lo, &err) == FFDP_OK, "downsample: %s", err.msg);
  const float *l = ffdp_volume_cdata(lo);
  double e = 0;
  for (int64_t k = 3; k < d2[2] - 3; k++) /* interior: away from zero-padded borders */
    for (int64_t j = 3; j < d2[1] - 3; j++)
      for (int64_t i = 3; i < d2[0] - 3; i++) {
        double p[3] = {i, j, k}, X[3];
        ffdp_mat4_apply(W2, p, X);
        e = fmax(e, fabs(l[(k * d2[1] + j) * d2[0] + i] - ramp(X)));
      }
  CHECK(e < 1e-3, "downsampled ramp error %g", e);
  /* resample onto a rotated, finer grid */
  const double sp3[3] = {0.7, 0.7, 0.7}, org3[3] = {-8, -6, -7};
  ffdp_mat4 W3 = test_oblique(-0.3, 0.05, 0.4, sp3, org3);
  const int64_t d3[3] = {17, 15, 16};
  ffdp_volume *rs;
  CHECK(ffdp_volume_resample(v, d3, W3, 0, 1, &rs, &err) == FFDP_OK, "resample: %s", err.msg);
  e = 0;
  const float *rd = ffdp_volume_cdata(rs);
  for (int64_t k = 0; k < d3[2]; k++)
    for (int64_t j = 0; j < d3[1]; j++)
      for (int64_t i = 0; i < d3[0]; i++) {
        double p[3] = {i, j, k}, X[3];
        ffdp_mat4_apply(W3, p, X);
        e = fmax(e, fabs(rd[(k * d3[1] + j) * d3[0] + i] - ramp(X)));
      }
  CHECK(e < 1e-4, "resampled ramp error %g", e);
  /* a constant vector field upsampled with border padding stays constant everywhere */
  ffdp_volume *u, *uu;
  ffdp_volume_create(d2, 3, W2, &u, &err);
  float *ud = ffdp_volume_data(u);
  for (int64_t i = 0; i < ffdp_volume_nvox(u); i++) ud[3 * i] = 1.5f, ud[3 * i + 1] = -2.0f, ud[3 * i + 2] = 0.25f;
  CHECK(ffdp_volume_resample(u, dim, W, 0, 1, &uu, &err) == FFDP_OK, "upsample: %s", err.msg);
  const float *uud = ffdp_volume_cdata(uu);
  e = 0;
  for (int64_t i = 0; i < ffdp_volume_nvox(uu); i++)
    e = fmax(e, fabs(uud[3 * i] - 1.5) + fabs(uud[3 * i + 1] + 2.0) + fabs(uud[3 * i + 2] - 0.25));
  CHECK(e < 1e-6, "upsampled constant field error %g", e);
  ffdp_volume_free(v), ffdp_volume_free(lo), ffdp_volume_free(rs), ffdp_volume_free(u), ffdp_volume_free(uu);
  return check_done("test_pyramid");
}
