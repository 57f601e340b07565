/* CPU mi operator, float and double instances (see ops.h). */
#include "ops/cpu_common.h"

#define REAL float
#define SUFFIX f32
#include "ops/mi_impl.h"
#undef REAL
#undef SUFFIX

#define REAL double
#define SUFFIX f64
#include "ops/mi_impl.h"
#undef REAL
#undef SUFFIX

#define MI_ONE_RANK(REAL, SFX)                                                                            \
  double ffdp_mi_##SFX(const ffdp_mi_params *p, const ffdp_slab *s, const REAL *F, const REAL *M,        \
                       const uint8_t *mask, REAL *gM) {                                                   \
    double *hist = calloc((size_t)p->bins * p->bins * 2, sizeof(double)), *table = hist + p->bins * p->bins; \
    ffdp_mi_hist_##SFX(p, s, F, M, mask, hist);                                                           \
    double n = 0;                                                                                         \
    for (int k = 0; k < p->bins * p->bins; k++) n += hist[k];                                             \
    double mi = ffdp_mi_table_##SFX(p, hist, table);                                                      \
    if (gM) ffdp_mi_grad_##SFX(p, s, F, M, mask, table, n > 0 ? 1.0 / n : 0.0, gM);                       \
    free(hist);                                                                                           \
    return -mi;                                                                                           \
  }
MI_ONE_RANK(float, f32)
MI_ONE_RANK(double, f64)

int64_t ffdp_mask_count(const ffdp_slab *s, const uint8_t *mask) {
  const int64_t P = ffdp_slab_plane(s);
  if (!mask) return P * (s->z1 - s->z0);
  int64_t n = 0;
#pragma omp parallel for reduction(+ : n)
  for (int64_t k = (s->z0 - s->zlo) * P; k < (s->z1 - s->zlo) * P; k++) n += mask[k] != 0;
  return n;
}
