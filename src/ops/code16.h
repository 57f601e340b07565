/* 16-bit codes of a scalar image (--image-precision u16): code q in 0..65535 stands for
 * lo + q·step with step = (hi - lo) / 65535 over the image's intensity range, 65536 evenly
 * spaced levels (the pipeline's images span [0, 1]: steps of 1.5e-5, finer than fp16's 4.9e-4
 * near 1 and bf16's 3.9e-3).
 *
 * Written once for the host and the device: the decode rounds twice (product, then sum; no
 * fused multiply-add on either side), the encode works in double with rint. So a GPU sampler
 * that decodes codes reads exactly the floats a CPU sampler reads from a decoded copy, and
 * encoding on the host or on the device gives the same codes. A range far narrower than its
 * distance from 0 (width below ~2^-7 of it) has fewer floats than codes; the registration
 * scales its images to [0, 1] first, so its ranges never are. */
#ifndef FFDP_OPS_CODE16_H
#define FFDP_OPS_CODE16_H
#include <math.h>
#include <stdint.h>
#ifdef __CUDACC__
#define FFDP_CODE16_FN __host__ __device__ static inline
#else
#define FFDP_CODE16_FN static inline
#endif
#ifdef __cplusplus
extern "C" {
#endif

typedef struct ffdp_code16 {
  float lo, step;
} ffdp_code16;

/* Codes spanning [lo, hi] (hi > lo; a degenerate range gets step 1). */
FFDP_CODE16_FN ffdp_code16 ffdp_code16_for_range(double lo, double hi) {
  ffdp_code16 k;
  k.lo = (float)lo;
  k.step = (float)((hi - lo) / 65535.0);
  if (!(k.step > 0)) k.step = 1.f;
  return k;
}

FFDP_CODE16_FN float ffdp_code16_decode(uint16_t q, ffdp_code16 k) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(__fmul_rn((float)q, k.step), k.lo);
#else
  volatile float t = (float)q * k.step; /* rounded here, whatever the compiler contracts */
  return t + k.lo;
#endif
}

/* Nearest code (ties to even); below the range or NaN -> 0, above -> 65535. */
FFDP_CODE16_FN uint16_t ffdp_code16_encode(float v, ffdp_code16 k) {
  const double t = ((double)v - (double)k.lo) / (double)k.step;
  if (!(t > 0.0)) return 0;
  if (t >= 65535.0) return 65535;
  return (uint16_t)rint(t);
}

/* Host: n values into codes, and into their decoded values (src and dst may be the same
 * array); OpenMP. */
void ffdp_code16_encode_f32(const float *src, int64_t n, ffdp_code16 k, uint16_t *dst);
void ffdp_code16_round_f32(const float *src, int64_t n, ffdp_code16 k, float *dst);

#ifdef __cplusplus
}
#endif
#endif
