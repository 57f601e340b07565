#include "ffdp/geometry.h"
#include <math.h>

ffdp_mat4 ffdp_mat4_identity(void) {
  ffdp_mat4 r = {{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}};
  return r;
}

ffdp_mat4 ffdp_mat4_mul(ffdp_mat4 a, ffdp_mat4 b) {
  ffdp_mat4 r;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      double s = 0;
      for (int k = 0; k < 4; k++) s += a.m[i][k] * b.m[k][j];
      r.m[i][j] = s;
    }
  return r;
}

double ffdp_mat4_det3(ffdp_mat4 a) {
  const double(*m)[4] = a.m;
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
         m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

int ffdp_mat4_inverse(ffdp_mat4 a, ffdp_mat4 *inv) {
  double det = ffdp_mat4_det3(a);
  double scale = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) scale = fmax(scale, fabs(a.m[i][j]));
  /* Relative test: a 0.001 mm voxel is fine, a rank-deficient matrix is not. */
  if (!(scale > 0) || !isfinite(det) || fabs(det) <= 1e-12 * scale * scale * scale) return 0;
  const double(*m)[4] = a.m;
  ffdp_mat4 r = ffdp_mat4_identity();
  r.m[0][0] = (m[1][1] * m[2][2] - m[1][2] * m[2][1]) / det;
  r.m[0][1] = (m[0][2] * m[2][1] - m[0][1] * m[2][2]) / det;
  r.m[0][2] = (m[0][1] * m[1][2] - m[0][2] * m[1][1]) / det;
  r.m[1][0] = (m[1][2] * m[2][0] - m[1][0] * m[2][2]) / det;
  r.m[1][1] = (m[0][0] * m[2][2] - m[0][2] * m[2][0]) / det;
  r.m[1][2] = (m[0][2] * m[1][0] - m[0][0] * m[1][2]) / det;
  r.m[2][0] = (m[1][0] * m[2][1] - m[1][1] * m[2][0]) / det;
  r.m[2][1] = (m[0][1] * m[2][0] - m[0][0] * m[2][1]) / det;
  r.m[2][2] = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) / det;
  for (int i = 0; i < 3; i++)
    r.m[i][3] = -(r.m[i][0] * m[0][3] + r.m[i][1] * m[1][3] + r.m[i][2] * m[2][3]);
  *inv = r;
  return 1;
}

void ffdp_mat4_apply(ffdp_mat4 a, const double in[3], double out[3]) {
  double t[3];
  for (int i = 0; i < 3; i++)
    t[i] = a.m[i][0] * in[0] + a.m[i][1] * in[1] + a.m[i][2] * in[2] + a.m[i][3];
  out[0] = t[0], out[1] = t[1], out[2] = t[2];
}

void ffdp_mat4_apply_vec(ffdp_mat4 a, const double in[3], double out[3]) {
  double t[3];
  for (int i = 0; i < 3; i++) t[i] = a.m[i][0] * in[0] + a.m[i][1] * in[1] + a.m[i][2] * in[2];
  out[0] = t[0], out[1] = t[1], out[2] = t[2];
}

double ffdp_vox_to_norm(double p, long long n) { return n > 1 ? 2.0 * p / (double)(n - 1) - 1.0 : 0.0; }
double ffdp_norm_to_vox(double s, long long n) { return n > 1 ? (s + 1.0) * 0.5 * (double)(n - 1) : 0.0; }
