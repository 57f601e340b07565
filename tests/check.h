/* Minimal test harness: CHECK records failures and keeps going; main returns check_done(). */
#ifndef FFDP_TESTS_CHECK_H
#define FFDP_TESTS_CHECK_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures = 0, check_count = 0;

#define CHECK(cond, ...)                                                                                 \
  do {                                                                                                   \
    check_count++;                                                                                       \
    if (!(cond)) {                                                                                       \
      check_failures++;                                                                                  \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                   \
      fprintf(stderr, __VA_ARGS__);                                                                      \
      fputc('\n', stderr);                                                                               \
    }                                                                                                    \
  } while (0)

/* |a-b| <= tol * max(1, |a|, |b|)... relative where values are large, absolute near zero. */
static inline int check_close(double a, double b, double rtol, double atol) {
  return fabs(a - b) <= atol + rtol * fmax(fabs(a), fabs(b));
}

static inline int check_done(const char *name) {
  printf("%s: %d checks, %d failures\n", name, check_count, check_failures);
  return check_failures ? 1 : 0;
}

/* Deterministic random numbers (xorshift64*), never exactly zero in uniform_nz. */
typedef struct { uint64_t s; } rng_t;
static inline double rng_uniform(rng_t *r) {
  r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
  return (double)((r->s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}
static inline double rng_range(rng_t *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }
/* Uniform in [lo,hi] but bounded away from zero (|x| >= 1e-3 * (hi-lo)). */
static inline double rng_nz(rng_t *r, double lo, double hi) {
  double x;
  do x = rng_range(r, lo, hi);
  while (fabs(x) < 1e-3 * (hi - lo));
  return x;
}
#endif
