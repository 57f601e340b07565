/* What storing the images in half precision would cost in accuracy: the registration is run on
 * the images as stored in fp32, fp16 and bf16 (each normalized image rounded to the format and
 * back: exactly what a kernel that keeps the images in 16 bits and computes in fp32 reads), and
 * each result is scored on the fp32 images (global NCC of fixed and warped moving), with its
 * largest warp difference from the fp32 run and its folding.
 *   usage: ffdp_image_precision FIXED MOVING [greedy|syn]   (default syn) */
#include "ffdp/ffdp.h"
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static float round_fp16(float x) { return (float)(_Float16)x; } /* IEEE binary16, nearest even */

static float round_bf16(float x) { /* bfloat16, nearest even (CUDA's __float2bfloat16_rn) */
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return x;
  u += 0x7fffu + ((u >> 16) & 1);
  u &= 0xffff0000u;
  memcpy(&x, &u, 4);
  return x;
}

static ffdp_volume *rounded(const ffdp_volume *v, float (*r)(float)) {
  ffdp_volume *c = NULL;
  if (ffdp_volume_create(ffdp_volume_dim(v), 1, ffdp_volume_vox2world(v), &c, NULL)) return NULL;
  const float *s = ffdp_volume_cdata(v);
  float *d = ffdp_volume_data(c);
  for (int64_t i = 0; i < ffdp_volume_nvox(v); i++) d[i] = r ? r(s[i]) : s[i];
  return c;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s FIXED MOVING [greedy|syn]\n", argv[0]);
    return 2;
  }
  const char *preset = argc > 3 ? argv[3] : "syn";
  ffdp_error err = {0};
  ffdp_volume *F = NULL, *M = NULL;
  double lo, hi;
  if (ffdp_volume_load(argv[1], &F, &err) || ffdp_volume_load(argv[2], &M, &err) ||
      ffdp_volume_normalize(F, "fixed", &lo, &hi, &err) || ffdp_volume_normalize(M, "moving", &lo, &hi, &err)) {
    fprintf(stderr, "ffdp_image_precision: %s\n", err.msg);
    return 1;
  }
  const char *name[3] = {"fp32", "fp16", "bf16"};
  float (*round_to[3])(float) = {NULL, round_fp16, round_bf16};
  ffdp_volume *u32 = NULL;
  printf("| images | NCC on the fp32 images | warp difference from fp32: mean / largest (mm) | folding | registration |\n");
  printf("|---|---|---|---|---|\n");
  for (int k = 0; k < 3; k++) {
    ffdp_reg_options o;
    ffdp_reg_result *res = NULL;
    ffdp_volume *Fk = rounded(F, round_to[k]), *Mk = rounded(M, round_to[k]), *W = NULL;
    if (!Fk || !Mk || ffdp_reg_options_preset(&o, preset, &err)) {
      fprintf(stderr, "ffdp_image_precision: %s\n", err.msg[0] ? err.msg : "out of memory");
      return 1;
    }
    o.inputs_normalized = 1;
    const double t0 = now();
    if (ffdp_register(Fk, Mk, &o, &res, &err)) {
      fprintf(stderr, "ffdp_image_precision: %s: %s\n", name[k], err.msg);
      return 1;
    }
    const double secs = now() - t0;
    const ffdp_volume *u = ffdp_reg_result_warp(res);
    const ffdp_mat4 A = ffdp_reg_result_affine(res);
    if (ffdp_warp_image(M, ffdp_volume_dim(F), ffdp_volume_vox2world(F), A, u, 0, &W, &err)) {
      fprintf(stderr, "ffdp_image_precision: %s\n", err.msg);
      return 1;
    }
    double dmax = 0, dsum = 0;
    if (k == 0) { /* the fp32 warp, kept to compare the others with */
      ffdp_volume_create(ffdp_volume_dim(u), 3, ffdp_volume_vox2world(u), &u32, NULL);
      memcpy(ffdp_volume_data(u32), ffdp_volume_cdata(u), (size_t)ffdp_volume_nvox(u) * 3 * sizeof(float));
    } else {
      const float *a = ffdp_volume_cdata(u32), *b = ffdp_volume_cdata(u);
      for (int64_t i = 0; i < ffdp_volume_nvox(u); i++) {
        double e = 0;
        for (int c = 0; c < 3; c++) e += ((double)a[3 * i + c] - b[3 * i + c]) * ((double)a[3 * i + c] - b[3 * i + c]);
        dsum += sqrt(e), dmax = fmax(dmax, sqrt(e));
      }
    }
    printf("| %s | %.6f | %.4f / %.3f | %.6f %% | %.1f s |\n", name[k], ffdp_global_ncc(F, W),
           dsum / (double)ffdp_volume_nvox(u), dmax,
           100 * ffdp_folding_fraction(u, A), secs);
    fflush(stdout);
    ffdp_volume_free(W), ffdp_volume_free(Fk), ffdp_volume_free(Mk);
    ffdp_reg_result_free(res);
  }
  ffdp_volume_free(u32), ffdp_volume_free(F), ffdp_volume_free(M);
  return 0;
}
