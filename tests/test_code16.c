/* 16-bit image codes (ops/code16.h): every code survives decode + encode, values land on the
 * nearest code, the ends and NaN clamp, and the array helpers agree with the scalar ones. */
#include "check.h"
#include "ops/code16.h"
#include <string.h>

static void check_range(double lo, double hi) {
  const ffdp_code16 k = ffdp_code16_for_range(lo, hi);
  int bad_trip = 0, bad_order = 0;
  float prev = -INFINITY;
  for (int q = 0; q < 65536; q++) {
    const float v = ffdp_code16_decode((uint16_t)q, k);
    bad_trip += ffdp_code16_encode(v, k) != q;
    bad_order += !(v > prev);
    prev = v;
  }
  CHECK(!bad_trip, "[%g, %g]: %d codes do not survive decode + encode", lo, hi, bad_trip);
  CHECK(!bad_order, "[%g, %g]: decoded values not increasing at %d codes", lo, hi, bad_order);
  CHECK(ffdp_code16_encode((float)lo, k) == 0 && ffdp_code16_encode((float)hi, k) == 65535, "[%g, %g]: the ends", lo, hi);
  CHECK(ffdp_code16_encode((float)(lo - (hi - lo)), k) == 0 && ffdp_code16_encode((float)(hi + (hi - lo)), k) == 65535,
        "[%g, %g]: values beyond the range clamp", lo, hi);
  CHECK(ffdp_code16_encode(NAN, k) == 0, "NaN codes as 0");
  /* a value rounds to a code whose value is within half a step (and float rounding) */
  double worst = 0;
  unsigned s = 12345u;
  for (int i = 0; i < 200000; i++) {
    s = s * 1664525u + 1013904223u;
    const float v = (float)(lo + (hi - lo) * (s >> 8) / 16777216.0);
    const double e = fabs((double)ffdp_code16_decode(ffdp_code16_encode(v, k), k) - v);
    worst = e > worst ? e : worst;
  }
  const double half = 0.5 * (double)k.step + 4e-7 * fmax(fabs(lo), fabs(hi));
  CHECK(worst <= half, "[%g, %g]: largest error %.3g, half a step %.3g", lo, hi, worst, half);
  printf("[%g, %g]: step %.3g, largest rounding error %.3g\n", lo, hi, (double)k.step, worst);
}

int main(void) {
  check_range(0.0, 1.0);   /* the pipeline's normalized images */
  check_range(-0.3, 1.7);  /* a histogram-matched moving image can leave [0, 1] */
  check_range(0.0, 4095.0);
  check_range(100.0, 101.0); /* far from 0 for its width: two floats per step still (not so at 1000) */
  /* the array helpers are the scalar functions (and may work in place) */
  enum { N = 1000 };
  float v[N], r[N], w[N];
  uint16_t q[N];
  for (int i = 0; i < N; i++) v[i] = (float)i / (N - 1) * 1.2f - 0.1f;
  const ffdp_code16 k = ffdp_code16_for_range(0.0, 1.0);
  ffdp_code16_encode_f32(v, N, k, q);
  ffdp_code16_round_f32(v, N, k, r);
  memcpy(w, v, sizeof w);
  ffdp_code16_round_f32(w, N, k, w);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    const float d = ffdp_code16_decode(ffdp_code16_encode(v[i], k), k);
    bad += q[i] != ffdp_code16_encode(v[i], k) || memcmp(&r[i], &d, 4) || memcmp(&w[i], &d, 4);
  }
  CHECK(!bad, "%d values differ between the array helpers and the scalar functions", bad);
  CHECK(ffdp_code16_for_range(2.0, 2.0).step == 1.f, "a degenerate range still decodes");
  return check_done("test_code16");
}
