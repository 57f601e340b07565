/* Capacity on one GPU: the largest deformable (greedy) problem that fits, found with the memory
 * planner and then run, for fp32 and bf16 optimiser state. Synthetic pair generated in memory
 * (an analytic pattern and the same pattern under a known smooth displacement), so no
 * multi-gigabyte file is needed. Prints one JSON object per run: size, planned and measured
 * peak device memory, bytes per voxel, time per full-resolution iteration, NCC before/after.
 *   usage: ffdp_capacity [margin_fraction=0.01] [fp32|bf16|both] [max_side] [full|half] [fp32|u16]
 * (half: the Adam moments on the coarse grid, --state-resolution half; u16: the images as 16-bit
 * codes, --image-precision u16)
 */
#include "ffdp/ffdp.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double PI = 3.14159265358979323846;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Brain-sized blob with internal texture, in voxel units of an N-cube. */
static float pattern(double x, double y, double z, double N) {
  const double c = 0.5 * (N - 1), r = 0.42 * N;
  double dx = (x - c) / r, dy = (y - c) / (0.85 * r), dz = (z - c) / (0.75 * r), q = dx * dx + dy * dy + dz * dz;
  if (q >= 1.0) return 0.f;
  const double k = 2 * PI / (N / 8.0);
  /* three scales: coarse shape, 24-voxel folds and 10-voxel grain, so that every pyramid level
   * (and a 5-voxel LNCC window at full resolution) has structure to align */
  const double k24 = 2 * PI / 24.0, k10 = 2 * PI / 10.0;
  double t = 0.5 + 0.15 * sin(k * x) * sin(0.8 * k * y + 0.3) + 0.1 * cos(0.6 * k * (y + z)) +
             0.12 * sin(k24 * x + 0.7 * sin(k24 * z)) * cos(k24 * y) + 0.08 * sin(k10 * (x + 0.6 * y)) * sin(k10 * (z - 0.3 * x));
  return (float)(t * (1.0 - q * q));
}

static void displacement(double x, double y, double z, double N, double d[3]) {
  const double k = 2 * PI / N, a = 0.012 * N; /* about 3 % of the side: several voxels */
  d[0] = a * sin(k * y + 0.4) * cos(k * z);
  d[1] = a * sin(k * z + 1.1) * cos(0.7 * k * x);
  d[2] = a * sin(k * x + 2.0) * cos(k * y);
}

typedef struct {
  double t_last, iters_last; /* the finest level's time and iterations */
} timing;

static void on_progress(void *ctx, const ffdp_progress *p) {
  timing *t = ctx;
  if (p->level_done && p->level == p->nlevels - 1) t->t_last = p->level_elapsed_s, t->iters_last = p->iter;
}

static int run(int64_t N, int bf16, int half, int u16, double plan_peak) {
  const int64_t dim[3] = {N, N, N};
  ffdp_mat4 w = ffdp_mat4_identity();
  ffdp_volume *F = NULL, *M = NULL;
  ffdp_error err = {0};
  double t0 = now();
  if (ffdp_volume_create(dim, 1, w, &F, &err) || ffdp_volume_create(dim, 1, w, &M, &err)) {
    fprintf(stderr, "capacity: %s\n", err.msg);
    return 1;
  }
  float *f = ffdp_volume_data(F), *m = ffdp_volume_data(M);
#pragma omp parallel for schedule(static)
  for (int64_t z = 0; z < N; z++)
    for (int64_t y = 0; y < N; y++)
      for (int64_t x = 0; x < N; x++) {
        double d[3];
        displacement(x, y, z, N, d);
        f[(z * N + y) * N + x] = pattern(x, y, z, N);
        m[(z * N + y) * N + x] = pattern(x - d[0], y - d[1], z - d[2], N);
      }
  double t_gen = now() - t0, ncc0 = ffdp_global_ncc(F, M);
  ffdp_reg_options opt;
  memset(&opt, 0, sizeof opt);
  opt.nstages = 1;
  opt.stages[0] = ffdp_stage_default(FFDP_STAGE_GREEDY);
  opt.stages[0].iters[0] = 40, opt.stages[0].iters[1] = 20, opt.stages[0].iters[2] = 5;
  opt.stages[0].tol = 0; /* fixed iteration counts: timing, not convergence */
  opt.device = 1;
  opt.state_precision = bf16 ? FFDP_STATE_BF16 : FFDP_STATE_F32;
  opt.state_resolution = half ? FFDP_STATE_HALF : FFDP_STATE_FULL;
  opt.image_precision = u16 ? FFDP_IMAGE_U16 : FFDP_IMAGE_F32;
  timing tm = {0};
  opt.progress = on_progress, opt.progress_ctx = &tm;
  ffdp_reg_result *res = NULL;
  double t1 = now();
  ffdp_status st = ffdp_register(F, M, &opt, &res, &err);
  double t_reg = now() - t1;
  if (st) {
    printf("{\"side\": %lld, \"state\": \"%s\", \"error\": \"%s\"}\n", (long long)N, bf16 ? "bf16" : "fp32", err.msg);
    ffdp_volume_free(F), ffdp_volume_free(M);
    return 1;
  }
  ffdp_stage_summary s = ffdp_reg_result_stage(res, 0);
  ffdp_volume *W = NULL;
  double ncc1 = NAN;
  if (!ffdp_warp_image(M, dim, w, ffdp_reg_result_affine(res), ffdp_reg_result_warp(res), 0, &W, &err))
    ncc1 = ffdp_global_ncc(F, W);
  const double nv = (double)N * N * N;
  printf("{\"side\": %lld, \"voxels\": %.0f, \"state\": \"%s%s\", \"planned_peak_gb\": %.3f, \"measured_peak_gb\": %.3f, "
         "\"planned_bytes_per_voxel\": %.1f, \"measured_bytes_per_voxel\": %.1f, \"full_res_s_per_iter\": %.3f, "
         "\"registration_s\": %.1f, \"generate_s\": %.1f, \"ncc_before\": %.4f, \"ncc_after\": %.4f}\n",
         (long long)N, nv, bf16 ? "bf16" : "fp32", half ? (u16 ? " half u16" : " half") : u16 ? " u16" : "", plan_peak / 1e9, s.device_peak_bytes / 1e9, plan_peak / nv,
         s.device_peak_bytes / nv, tm.iters_last > 0 ? tm.t_last / tm.iters_last : NAN, t_reg, t_gen, ncc0, ncc1);
  fflush(stdout);
  ffdp_volume_free(W);
  ffdp_reg_result_free(res);
  ffdp_volume_free(F), ffdp_volume_free(M);
  return 0;
}

int main(int argc, char **argv) {
  const double margin = argc > 1 ? atof(argv[1]) : 0.01;
  const char *which = argc > 2 ? argv[2] : "both";
  const int64_t max_side = argc > 3 ? atoll(argv[3]) : 4096;
  const int half = argc > 4 && !strcmp(argv[4], "half"), u16 = argc > 5 && !strcmp(argv[5], "u16");
  ffdp_error err = {0};
  double free_b, total_b;
  if (ffdp_cuda_memory(&free_b, &total_b, &err)) {
    fprintf(stderr, "capacity: %s\n", err.msg);
    return 1;
  }
  int rc = 0;
  for (int bf16 = 0; bf16 < 2; bf16++) {
    if ((bf16 && !strcmp(which, "fp32")) || (!bf16 && !strcmp(which, "bf16"))) continue;
    ffdp_reg_options opt;
    memset(&opt, 0, sizeof opt);
    opt.nstages = 1;
    opt.stages[0] = ffdp_stage_default(FFDP_STAGE_GREEDY);
    opt.state_precision = bf16 ? FFDP_STATE_BF16 : FFDP_STATE_F32;
    opt.state_resolution = half ? FFDP_STATE_HALF : FFDP_STATE_FULL;
    opt.image_precision = u16 ? FFDP_IMAGE_U16 : FFDP_IMAGE_F32;
    int64_t best = 0;
    double best_peak = 0;
    ffdp_cuda_memory(&free_b, &total_b, &err);
    for (int64_t N = 64; N <= max_side; N += 16) { /* largest cube whose plan fits, with a margin */
      const int64_t d[3] = {N, N, N};
      ffdp_plan p;
      if (ffdp_reg_plan(d, ffdp_mat4_identity(), d, ffdp_mat4_identity(), &opt, &p, &err)) break;
      if (p.peak_bytes > (1.0 - margin) * free_b) break;
      best = N, best_peak = p.peak_bytes;
    }
    fprintf(stderr, "capacity: %s state: largest cube %lld^3 (plan %.2f GB of %.2f GB free)\n", bf16 ? "bf16" : "fp32",
            (long long)best, best_peak / 1e9, free_b / 1e9);
    rc |= run(best, bf16, half, u16, best_peak);
  }
  return rc;
}
