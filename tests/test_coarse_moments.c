/* Adam moments on the coarse grid (src/reg/coarse_moments.c) against a naive reference in
 * double precision (restriction by explicit tent weights, prolongation by trilinear weights at
 * x/2), on grids with odd and even sizes; then the slabs of two and three "ranks" (each with
 * its own moments and a halo) must reproduce the whole grid bit for bit; then bf16 moments. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "reg/reg_internal.h"

static uint32_t rng = 12345u;
static float frand(void) {
  rng = rng * 1664525u + 1013904223u;
  return (float)((rng >> 8) / 16777216.0 * 2 - 1);
}

/* The reference step on the whole grid n: d (3 per voxel) in, moments m, v (3 per coarse
 * point, lx*ly*lz points) updated, step out: at every voxel the trilinear means of m as it
 * was (b1 of it, plus the voxel's own gradient) over sqrt(vhat) as it is, clamped. */
static void reference(const int64_t n[3], const float *d, double *m, double *v, int t, double step, double scale,
                      double *out) {
  const int64_t l[3] = {n[0] / 2 + 1, n[1] / 2 + 1, n[2] / 2 + 1};
  /* the decay rates as the float constants the step uses (1 - 0.999f is 1.3e-5 off 0.001) */
  const double b1 = 0.9f, b2 = 0.999f, a1 = 1 - 0.9f, a2 = 1 - 0.999f, eps = 1e-8;
  const double c1 = 1 - pow(0.9, t), c2 = 1 - pow(0.999, t);
  /* per coarse point: m before the update, sqrt(vhat) after it */
  double *r = malloc(sizeof(double) * 3 * l[0] * l[1] * l[2]), *q = malloc(sizeof(double) * 3 * l[0] * l[1] * l[2]);
  for (int64_t k = 0; k < l[2]; k++)
    for (int64_t j = 0; j < l[1]; j++)
      for (int64_t i = 0; i < l[0]; i++) {
        double g[3] = {0, 0, 0}, ws = 0;
        for (int64_t z = 0; z < n[2]; z++)
          for (int64_t y = 0; y < n[1]; y++)
            for (int64_t x = 0; x < n[0]; x++) {
              /* tent weight of voxel (x, y, z) for the point at (2i, 2j, 2k): 2 at it, 1 beside */
              const int64_t ax = llabs(x - 2 * i), ay = llabs(y - 2 * j), az = llabs(z - 2 * k);
              if (ax > 1 || ay > 1 || az > 1) continue;
              const double w = (2.0 - (double)ax) * (2.0 - (double)ay) * (2.0 - (double)az);
              for (int c = 0; c < 3; c++) g[c] += w * d[3 * ((z * n[1] + y) * n[0] + x) + c];
              ws += w;
            }
        const int64_t J = 3 * ((k * l[1] + j) * l[0] + i);
        for (int c = 0; c < 3; c++) {
          const double gc = g[c] / ws * scale;
          r[J + c] = m[J + c];
          m[J + c] = b1 * m[J + c] + a1 * gc;
          v[J + c] = b2 * v[J + c] + a2 * gc * gc;
          q[J + c] = sqrt(v[J + c] / c2);
        }
      }
  for (int64_t z = 0; z < n[2]; z++)
    for (int64_t y = 0; y < n[1]; y++)
      for (int64_t x = 0; x < n[0]; x++) {
        const double p[3] = {x / 2.0, y / 2.0, z / 2.0};
        const int64_t f[3] = {(int64_t)floor(p[0]), (int64_t)floor(p[1]), (int64_t)floor(p[2])};
        const double fr[3] = {p[0] - f[0], p[1] - f[1], p[2] - f[2]};
        double mo[3] = {0, 0, 0}, sv[3] = {0, 0, 0};
        for (int corner = 0; corner < 8; corner++) {
          const int a = corner & 1, b = (corner >> 1) & 1, e = corner >> 2;
          const double w = (a ? fr[0] : 1 - fr[0]) * (b ? fr[1] : 1 - fr[1]) * (e ? fr[2] : 1 - fr[2]);
          if (w == 0) continue;
          const int64_t J = 3 * (((f[2] + e) * l[1] + f[1] + b) * l[0] + f[0] + a);
          for (int c = 0; c < 3; c++) mo[c] += w * r[J + c], sv[c] += w * q[J + c];
        }
        /* the voxel's own moments: the coarse history and its current gradient */
        const int64_t I = 3 * ((z * n[1] + y) * n[0] + x);
        for (int c = 0; c < 3; c++) {
          const double g = d[I + c] * scale, r = ((b1 * mo[c] + a1 * g) / c1) / (sv[c] + eps);
          out[I + c] = -step * fmax(-REG_COARSE_CLAMP, fmin(REG_COARSE_CLAMP, r));
        }
      }
  free(r), free(q);
}

/* Largest difference over the largest reference value. */
static double max_rel(const float *a, const double *ref, int64_t n) {
  double e = 0, top = 0;
  for (int64_t i = 0; i < n; i++) e = fmax(e, fabs(a[i] - ref[i])), top = fmax(top, fabs(ref[i]));
  return top > 0 ? e / top : e;
}

static void check_grid(const int64_t n[3]) {
  const int64_t nv = n[0] * n[1] * n[2], nc = 3 * (n[0] / 2 + 1) * (n[1] / 2 + 1) * (n[2] / 2 + 1);
  const ffdp_slab whole = ffdp_slab_whole(n[0], n[1], n[2]);
  CHECK(reg_moment_values(&whole, 1) == nc, "%lldx%lldx%lld: %lld coarse values, expected %lld", (long long)n[0],
        (long long)n[1], (long long)n[2], (long long)reg_moment_values(&whole, 1), (long long)nc);
  float *d = malloc(sizeof(float) * 3 * nv), *dd = malloc(sizeof(float) * 3 * nv);
  double *mr = calloc((size_t)nc, sizeof(double)), *vr = calloc((size_t)nc, sizeof(double));
  double *ref = malloc(sizeof(double) * 3 * nv);
  reg_moments mo;
  reg_moments_alloc(&mo, 1, nc, 0, 1);
  /* errors relative to the largest value: sums of random signs come near zero */
  double worst = 0, worst_m = 0;
  for (int t = 1; t <= 4; t++) { /* a few steps: the moments carry history */
    for (int64_t i = 0; i < 3 * nv; i++) d[i] = frand();
    memcpy(dd, d, sizeof(float) * 3 * nv);
    reference(n, d, mr, vr, t, 0.7, 0.5, ref);
    CHECK(reg_coarse_adam(&whole, dd, &mo, t, 0.7, 0.5f) == 0, "out of memory");
    worst = fmax(worst, max_rel(dd, ref, 3 * nv));
    worst_m = fmax(worst_m, fmax(max_rel(mo.m, mr, nc), max_rel(mo.v, vr, nc)));
  }
  printf("%lldx%lldx%lld: step rel. error %.2e, moments %.2e\n", (long long)n[0], (long long)n[1], (long long)n[2],
         worst, worst_m);
  CHECK(worst < 1e-5 && worst_m < 1e-5, "coarse Adam vs reference: step %.2e, moments %.2e", worst, worst_m);

  /* slabs: each "rank" holds its planes with a halo of 3 (the smoothed gradient is valid two
   * planes past its own) and its own moments; the owned planes must be the whole grid's */
  for (int ranks = 2; ranks <= 3; ranks++) {
    reg_moments whole_mo, part_mo[3];
    reg_moments_alloc(&whole_mo, 1, nc, 0, 1);
    ffdp_slab sl[3];
    float *part[3];
    for (int r = 0; r < ranks; r++) {
      sl[r] = ffdp_slab_split(n[0], n[1], n[2], r, ranks, 3);
      reg_moments_alloc(&part_mo[r], 1, reg_moment_values(&sl[r], 1), 0, 1);
      part[r] = malloc(sizeof(float) * 3 * ffdp_slab_stored(&sl[r]));
    }
    int same = 1;
    for (int t = 1; t <= 3; t++) {
      for (int64_t i = 0; i < 3 * nv; i++) d[i] = frand();
      memcpy(dd, d, sizeof(float) * 3 * nv);
      reg_coarse_adam(&whole, dd, &whole_mo, t, 0.7, 0.5f);
      const int64_t P3 = 3 * n[0] * n[1];
      for (int r = 0; r < ranks; r++) {
        memcpy(part[r], d + sl[r].zlo * P3, sizeof(float) * P3 * (size_t)(sl[r].zhi - sl[r].zlo));
        reg_coarse_adam(&sl[r], part[r], &part_mo[r], t, 0.7, 0.5f);
        same &= !memcmp(part[r] + (sl[r].z0 - sl[r].zlo) * P3, dd + sl[r].z0 * P3,
                        sizeof(float) * P3 * (size_t)(sl[r].z1 - sl[r].z0));
      }
    }
    CHECK(same, "%lldx%lldx%lld on %d slabs: the owned planes differ from the whole grid's", (long long)n[0],
          (long long)n[1], (long long)n[2], ranks);
    for (int r = 0; r < ranks; r++) free(part[r]), free(part_mo[r].m);
    free(whole_mo.m);
  }

  /* bf16 moments: stored rounded (every value a bfloat16), the step within their rounding */
  reg_moments mb;
  reg_moments_alloc(&mb, 1, nc, 1, 1);
  memset(mr, 0, sizeof(double) * (size_t)nc), memset(vr, 0, sizeof(double) * (size_t)nc);
  double wb = 0;
  for (int t = 1; t <= 2; t++) { /* the second step reads the rounded moments */
    for (int64_t i = 0; i < 3 * nv; i++) d[i] = frand();
    memcpy(dd, d, sizeof(float) * 3 * nv);
    reference(n, d, mr, vr, t, 0.7, 0.5, ref);
    reg_coarse_adam(&whole, dd, &mb, t, 0.7, 0.5f);
    wb = max_rel(dd, ref, 3 * nv);
  }
  printf("  bf16 moments: step rel. error %.2e\n", wb);
  CHECK(wb > 1e-5 && wb < 1e-2, "bf16 coarse moments: step rel. error %.2e (expected bf16 rounding)", wb);
  free(mb.m);
  free(mo.m), free(d), free(dd), free(mr), free(vr), free(ref);
}

int main(void) {
  /* odd and even sides, a single plane, a side of one voxel */
  const int64_t grids[][3] = {{9, 8, 11}, {12, 7, 10}, {5, 6, 16}, {7, 5, 1}, {1, 4, 9}};
  for (int g = 0; g < 5; g++) check_grid(grids[g]);
  return check_done("test_coarse_moments");
}
