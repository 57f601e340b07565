/* Warp composition out = U(B·p + S·v) + T·v vs a naive reference; gradients w.r.t. v and U by
 * central finite differences (float64). */
#include "check.h"
#include "ops/ops.h"
#include "test_geometry.h"
#include <string.h>

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

/* The float composition (out = U(q) + T·v) and the inversion's damped step in place, in one
 * pass (ffdp_compose_damped), against the 3-channel sampler followed by those sums in a
 * separate pass, bit for bit: a grid wide enough for the four-voxel path, displacements up to
 * several voxels (taps at the border, the last voxel), signed zeros, a slab of planes stored
 * alone; the damped step also in float64. */
static void check_one_pass(void) {
  const int64_t d[3] = {37, 23, 19}, n = d[0] * d[1] * d[2];
  rng_t r = {777};
  float *U = malloc(3 * n * sizeof(float)), *w = malloc(3 * n * sizeof(float)), *c = malloc(3 * n * sizeof(float));
  float *ref = malloc(3 * n * sizeof(float)), *smp = malloc(3 * n * sizeof(float));
  double *U64 = malloc(3 * n * sizeof(double)), *w64 = malloc(3 * n * sizeof(double)), *c64 = malloc(3 * n * sizeof(double));
  double *ref64 = malloc(3 * n * sizeof(double));
  for (int64_t i = 0; i < 3 * n; i++) U[i] = (float)rng_range(&r, -3, 3), w[i] = (float)rng_range(&r, -4, 4);
  for (int64_t i = 0; i < 3 * n; i += 17) w[i] = -0.f; /* signed zeros go through as in two passes */
  for (int64_t i = 0; i < 3 * n; i += 3 * 29) w[i] = w[i + 1] = w[i + 2] = -0.f;
  for (int64_t i = 0; i < 3 * n; i++) U64[i] = U[i], w64[i] = w[i];
  const double sp[3] = {1.1, 0.9, 1.3}, org[3] = {2, -1, 0.5};
  const ffdp_mat4 W = test_oblique(0.1, -0.05, 0.2, sp, org);
  ffdp_mat4 winv;
  ffdp_mat4_inverse(W, &winv);
  ffdp_warp wp;
  memset(&wp, 0, sizeof wp);
  for (int a = 0; a < 3; a++) {
    wp.B[a][a] = 1;
    for (int b = 0; b < 3; b++) wp.S[a][b] = winv.m[a][b];
  }
  wp.interp = FFDP_INTERP_LINEAR, wp.pad = FFDP_PAD_BORDER;
  const double Z[3][3] = {{0}}, T[3][3] = {{0.9, 0.1, -0.05}, {0.02, 1.1, 0.1}, {-0.1, 0.03, 0.95}};
  const ffdp_slab us = ffdp_slab_whole(d[0], d[1], d[2]);
  ffdp_slab fs[2] = {us, us};
  fs[1].z0 = fs[1].zlo = 5, fs[1].z1 = fs[1].zhi = 12; /* a slab of planes, stored alone */
  for (int k = 0; k < 2; k++) {
    const int64_t off = 3 * fs[k].zlo * d[0] * d[1], m = 3 * (fs[k].zhi - fs[k].zlo) * d[0] * d[1];
    const float *v = w + off;
    ffdp_sample_fwd_f32(&wp, &fs[k], v, &us, U, 3, smp);
    for (int64_t i = 0; i < m; i += 3) /* compose_fwd's second pass */
      for (int a = 0; a < 3; a++) ref[i + a] = smp[i + a] + (float)(T[a][0] * v[i] + T[a][1] * v[i + 1] + T[a][2] * v[i + 2]);
    ffdp_compose_fwd_f32(&wp, T, &fs[k], v, &us, U, c);
    CHECK(!memcmp(c, ref, m * sizeof(float)), "composition (slab %d) differs from the sampler + linear term", k);
    for (int64_t i = 0; i < m; i += 3) /* T = 0, then the inversion's update */
      for (int a = 0; a < 3; a++) {
        const float ca = smp[i + a] + (float)(Z[a][0] * v[i] + Z[a][1] * v[i + 1] + Z[a][2] * v[i + 2]);
        ref[i + a] = v[i + a] - 0.5f * (v[i + a] + ca);
      }
    memcpy(c, v, m * sizeof(float));
    ffdp_compose_damped_f32(&wp, &fs[k], c, &us, U);
    CHECK(!memcmp(c, ref, m * sizeof(float)), "damped step (float, slab %d) differs from the two passes", k);
    memcpy(ref64, w64 + off, m * sizeof(double));
    ffdp_compose_fwd_f64(&wp, Z, &fs[k], ref64, &us, U64, c64);
    for (int64_t i = 0; i < m; i++) ref64[i] -= 0.5 * (ref64[i] + c64[i]);
    memcpy(c64, w64 + off, m * sizeof(double));
    ffdp_compose_damped_f64(&wp, &fs[k], c64, &us, U64);
    CHECK(!memcmp(c64, ref64, m * sizeof(double)), "damped step (double, slab %d) differs from the two passes", k);
  }
  free(U), free(w), free(c), free(ref), free(smp), free(U64), free(w64), free(c64), free(ref64);
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
  check_one_pass();
  return check_done("test_compose");
}
