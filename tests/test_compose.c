/* Warp composition out = U(B·p + S·v) + T·v vs a naive reference; gradients w.r.t. v and U by
 * central finite differences (float64). */
#include "check.h"
#include "ops/ops.h"
#include "test_geometry.h"

static const int64_t N[3] = {6, 5, 7};

static double tri(const double *U, int c, const double q[3]) { /* zero padded, 3 components */
  double s = 0;
  for (int64_t k = (int64_t)floor(q[2]); k <= (int64_t)floor(q[2]) + 1; k++)
    for (int64_t j = (int64_t)floor(q[1]); j <= (int64_t)floor(q[1]) + 1; j++)
      for (int64_t i = (int64_t)floor(q[0]); i <= (int64_t)floor(q[0]) + 1; i++) {
        if (i < 0 || j < 0 || k < 0 || i >= N[0] || j >= N[1] || k >= N[2]) continue;
        s += (1 - fabs(q[0] - i)) * (1 - fabs(q[1] - j)) * (1 - fabs(q[2] - k)) * U[3 * ((k * N[1] + j) * N[0] + i) + c];
      }
  return s;
}

static double naive_loss(const ffdp_warp *w, const double T[3][3], const double *v, const double *U, const double *g) {
  double L = 0;
  for (int64_t z = 0; z < N[2]; z++)
    for (int64_t y = 0; y < N[1]; y++)
      for (int64_t x = 0; x < N[0]; x++) {
        int64_t i = (z * N[1] + y) * N[0] + x;
        double q[3], p[4] = {x, y, z, 1};
        for (int a = 0; a < 3; a++) {
          q[a] = 0;
          for (int b = 0; b < 4; b++) q[a] += w->B[a][b] * p[b];
          for (int b = 0; b < 3; b++) q[a] += w->S[a][b] * v[3 * i + b];
        }
        for (int c = 0; c < 3; c++) {
          double o = tri(U, c, q) + T[c][0] * v[3 * i] + T[c][1] * v[3 * i + 1] + T[c][2] * v[3 * i + 2];
          L += g[3 * i + c] * o;
        }
      }
  return L;
}

int main(void) {
  rng_t r = {12345};
  const int64_t n = N[0] * N[1] * N[2];
  double *v = malloc(3 * n * sizeof(double)), *U = malloc(3 * n * sizeof(double)), *g = malloc(3 * n * sizeof(double));
  for (int64_t i = 0; i < 3 * n; i++) v[i] = rng_nz(&r, -1, 1), U[i] = rng_nz(&r, -2, 2), g[i] = rng_nz(&r, -1, 1);
  /* u∘(A·x+v) on a grid with 1.2 mm voxels: B maps fixed voxels to U's voxels. */
  const double sp[3] = {1.2, 1.2, 1.2}, org[3] = {0, 0, 0};
  ffdp_mat4 W = test_oblique(0.2, 0.1, -0.1, sp, org);
  ffdp_mat4 A = test_oblique(0.03, -0.02, 0.05, (double[3]){1.02, 0.99, 1.01}, (double[3]){0.2, 0.1, -0.3});
  ffdp_warp w;
  ffdp_warp_fold(A, W, W, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
  double T[3][3];
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) T[a][b] = A.m[a][b];
  ffdp_slab s = ffdp_slab_whole(N[0], N[1], N[2]);
  double *out = malloc(3 * n * sizeof(double)), *gv = calloc(3 * n, sizeof(double)), *gU = calloc(3 * n, sizeof(double));
  ffdp_compose_fwd_f64(&w, T, &s, v, &s, U, out);
  double L = 0;
  for (int64_t i = 0; i < 3 * n; i++) L += g[i] * out[i];
  CHECK(check_close(L, naive_loss(&w, T, v, U, g), 1e-12, 1e-12), "forward %g vs naive %g", L, naive_loss(&w, T, v, U, g));
  ffdp_compose_bwd_f64(&w, T, &s, v, &s, U, g, gv, gU);
  const double h = 1e-6;
  for (int64_t k = 0; k < 3 * n; k++) {
    double keep = v[k];
    v[k] = keep + h;
    double lp = naive_loss(&w, T, v, U, g);
    v[k] = keep - h;
    double lm = naive_loss(&w, T, v, U, g);
    v[k] = keep;
    double fd = (lp - lm) / (2 * h);
    CHECK(check_close(gv[k], fd, 1e-4, 1e-7), "dv[%lld] %.9g vs fd %.9g", (long long)k, gv[k], fd);
    keep = U[k];
    U[k] = keep + h;
    lp = naive_loss(&w, T, v, U, g);
    U[k] = keep - h;
    lm = naive_loss(&w, T, v, U, g);
    U[k] = keep;
    fd = (lp - lm) / (2 * h);
    CHECK(check_close(gU[k], fd, 1e-4, 1e-7), "dU[%lld] %.9g vs fd %.9g", (long long)k, gU[k], fd);
  }
  free(v), free(U), free(g), free(out), free(gv), free(gU);
  return check_done("test_compose");
}
