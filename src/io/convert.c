/* Voxel type conversions shared by the NIfTI and Zarr readers and writers. Type codes are the
 * NIfTI DT_* values (ffdp_dtype uses the same numbers). */
#include "io/convert.h"
#include <math.h>
#include <nifti2_io.h>
#include <omp.h>

/* Convert n on-disk values starting at src to float, applying the NIfTI intensity scaling; on
 * every thread unless called from a parallel region (the readers' own threads). */
int ffdp_convert_to_float(const void *src, int dtype, int64_t n, double slope, double inter, float *dst) {
  int scaled = slope != 0 && isfinite(slope) && !(slope == 1 && inter == 0);
#define CONV(T)                                                                                    \
  do {                                                                                             \
    const T *s = (const T *)src;                                                                   \
    _Pragma("omp parallel for if (!omp_in_parallel())") for (int64_t i = 0; i < n; i++) dst[i] =   \
        scaled ? (float)((double)s[i] * slope + inter) : (float)s[i];                              \
  } while (0)
  switch (dtype) {
  case DT_UINT8: CONV(uint8_t); break;
  case DT_INT8: CONV(int8_t); break;
  case DT_INT16: CONV(int16_t); break;
  case DT_UINT16: CONV(uint16_t); break;
  case DT_INT32: CONV(int32_t); break;
  case DT_UINT32: CONV(uint32_t); break;
  case DT_INT64: CONV(int64_t); break;
  case DT_FLOAT32: CONV(float); break;
  case DT_FLOAT64: CONV(double); break;
  default: return 0;
  }
#undef CONV
  return 1;
}


/* Store x as type dtype at index i of dst: integers rounded and clamped, NaN/Inf as 0. */
void ffdp_store_value(double x, int dtype, void *dst, int64_t i) {
  if (dtype == DT_FLOAT32) { ((float *)dst)[i] = (float)x; return; }
  if (dtype == DT_FLOAT64) { ((double *)dst)[i] = x; return; }
  if (!isfinite(x)) x = 0;
  x = nearbyint(x);
#define CLAMP_STORE(T, lo, hi) ((T *)dst)[i] = (T)(x < (lo) ? (lo) : x > (hi) ? (hi) : x)
  switch (dtype) {
  case DT_UINT8: CLAMP_STORE(uint8_t, 0, 255); break;
  case DT_INT8: CLAMP_STORE(int8_t, -128, 127); break;
  case DT_INT16: CLAMP_STORE(int16_t, -32768, 32767); break;
  case DT_UINT16: CLAMP_STORE(uint16_t, 0, 65535); break;
  case DT_INT32: CLAMP_STORE(int32_t, -2147483648.0, 2147483647.0); break;
  case DT_UINT32: CLAMP_STORE(uint32_t, 0, 4294967295.0); break;
  }
#undef CLAMP_STORE
}

