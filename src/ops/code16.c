/* 16-bit image codes on the host (code16.h). */
#include "ops/code16.h"

void ffdp_code16_encode_f32(const float *src, int64_t n, ffdp_code16 k, uint16_t *dst) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dst[i] = ffdp_code16_encode(src[i], k);
}

void ffdp_code16_round_f32(const float *src, int64_t n, ffdp_code16 k, float *dst) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) dst[i] = ffdp_code16_decode(ffdp_code16_encode(src[i], k), k);
}
