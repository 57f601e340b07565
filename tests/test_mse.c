/* MSE: value vs direct sum, gradient vs finite differences, mask, slab sums. */
#include "check.h"
#include "ops/ops.h"

int main(void) {
  rng_t r = {777};
  const int64_t nx = 5, ny = 4, nz = 6, n = nx * ny * nz;
  double *F = malloc(n * sizeof(double)), *M = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double));
  uint8_t *mask = malloc(n);
  for (int64_t i = 0; i < n; i++) F[i] = rng_nz(&r, -1, 1), M[i] = rng_nz(&r, -1, 1), mask[i] = rng_uniform(&r) > 0.3;
  ffdp_slab s = ffdp_slab_whole(nx, ny, nz);
  for (int m = 0; m < 2; m++) {
    const uint8_t *mk = m ? mask : NULL;
    double cnt = (double)ffdp_mask_count(&s, mk), ref = 0;
    for (int64_t i = 0; i < n; i++) ref += (mk ? mk[i] : 1) * (F[i] - M[i]) * (F[i] - M[i]);
    ref /= cnt;
    double L = ffdp_mse_f64(&s, F, M, mk, 1 / cnt, g);
    CHECK(check_close(L, ref, 1e-12, 0), "mse %g vs %g", L, ref);
    for (int64_t k = 0; k < n; k++) {
      const double h = 1e-6, keep = M[k];
      M[k] = keep + h;
      double lp = ffdp_mse_f64(&s, F, M, mk, 1 / cnt, NULL);
      M[k] = keep - h;
      double lm = ffdp_mse_f64(&s, F, M, mk, 1 / cnt, NULL);
      M[k] = keep;
      CHECK(check_close(g[k], (lp - lm) / (2 * h), 1e-4, 1e-9), "dM[%lld] %g vs %g", (long long)k, g[k], (lp - lm) / (2 * h));
    }
  }
  free(F), free(M), free(g), free(mask);
  return check_done("test_mse");
}
