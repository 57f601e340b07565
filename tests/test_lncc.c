/* LNCC: loss vs a naive triple-loop reference (zero padding, explicit window sums), gradient
 * vs central finite differences of that reference, slabs with halo vs the whole volume. */
#include "check.h"
#include "ops/ops.h"
#include <string.h>

static int64_t NX = 9, NY = 8, NZ = 7;

static double win_weight(const ffdp_lncc_params *p, int d) {
  int r = (p->window - 1) / 2;
  if (p->kind == FFDP_WINDOW_BOX) return 1.0 / p->window;
  double sig = r / 2.0 > 0.5 ? r / 2.0 : 0.5, s = 0;
  for (int e = -r; e <= r; e++) s += exp(-0.5 * e * e / (sig * sig));
  return exp(-0.5 * d * d / (sig * sig)) / s;
}

static double naive(const ffdp_lncc_params *p, const double *F, const double *M, const uint8_t *mask) {
  int r = (p->window - 1) / 2;
  double L = 0, cnt = 0;
  for (int64_t z = 0; z < NZ; z++)
    for (int64_t y = 0; y < NY; y++)
      for (int64_t x = 0; x < NX; x++) {
        double m[5] = {0};
        for (int dz = -r; dz <= r; dz++)
          for (int dy = -r; dy <= r; dy++)
            for (int dx = -r; dx <= r; dx++) {
              int64_t a = x + dx, b = y + dy, c = z + dz;
              if (a < 0 || b < 0 || c < 0 || a >= NX || b >= NY || c >= NZ) continue;
              double w = win_weight(p, dx) * win_weight(p, dy) * win_weight(p, dz);
              double f = F[(c * NY + b) * NX + a], mv = M[(c * NY + b) * NX + a];
              m[0] += w * f, m[1] += w * mv, m[2] += w * f * f, m[3] += w * mv * mv, m[4] += w * f * mv;
            }
        double cov = m[4] - m[0] * m[1], vf = fmax(m[2] - m[0] * m[0], 0), vm = fmax(m[3] - m[1] * m[1], 0);
        int64_t i = (z * NY + y) * NX + x;
        double wk = mask ? mask[i] != 0 : 1;
        L -= wk * cov * cov / (vf * vm + p->eps);
        cnt += wk;
      }
  return L / cnt;
}

static void run(ffdp_lncc_params p, int use_mask, rng_t *r) {
  const int64_t n = NX * NY * NZ;
  double *F = malloc(n * sizeof(double)), *M = malloc(n * sizeof(double)), *g = malloc(n * sizeof(double));
  uint8_t *mask = malloc(n);
  for (int64_t i = 0; i < n; i++) {
    F[i] = rng_nz(r, 0.1, 1);
    M[i] = 0.6 * F[i] + 0.4 * rng_nz(r, 0.1, 1); /* correlated, so cc is far from 0 */
    mask[i] = rng_uniform(r) > 0.2;
  }
  const uint8_t *mk = use_mask ? mask : NULL;
  ffdp_slab s = ffdp_slab_whole(NX, NY, NZ);
  double norm = 1.0 / (double)ffdp_mask_count(&s, mk);
  double L = ffdp_lncc_f64(&p, &s, F, M, mk, norm, g), ref = naive(&p, F, M, mk);
  CHECK(check_close(L, ref, 1e-12, 1e-14), "k=%d kind=%d loss %.12g vs naive %.12g", p.window, p.kind, L, ref);
  CHECK(L < -0.05, "expected substantial correlation, loss %g", L);
  double Lf = ffdp_lncc_f64(&p, &s, F, M, mk, norm, NULL);
  CHECK(Lf == L, "forward-only loss %g differs from forward+backward %g", Lf, L);
  const double h = 1e-6;
  for (int64_t k = 0; k < n; k++) {
    double keep = M[k];
    M[k] = keep + h;
    double lp = naive(&p, F, M, mk);
    M[k] = keep - h;
    double lm = naive(&p, F, M, mk);
    M[k] = keep;
    double fd = (lp - lm) / (2 * h);
    CHECK(check_close(g[k], fd, 1e-4, 1e-8), "k=%d kind=%d mask=%d dM[%lld] %.9g vs fd %.9g", p.window, p.kind, use_mask,
          (long long)k, g[k], fd);
  }
  /* Slabs with the declared halo reproduce the whole-volume loss and gradient. */
  const int64_t halo = ffdp_lncc_halo(&p), P = NX * NY;
  double Ls = 0;
  for (int64_t z0 = 0; z0 < NZ; z0 += 3) {
    ffdp_slab sl = s;
    sl.z0 = z0, sl.z1 = z0 + 3 < NZ ? z0 + 3 : NZ;
    sl.zlo = sl.z0 - halo < 0 ? 0 : sl.z0 - halo, sl.zhi = sl.z1 + halo > NZ ? NZ : sl.z1 + halo;
    double *gs = calloc((sl.zhi - sl.zlo) * P, sizeof(double));
    Ls += ffdp_lncc_f64(&p, &sl, F + sl.zlo * P, M + sl.zlo * P, mk ? mk + sl.zlo * P : NULL, norm, gs);
    for (int64_t k = (sl.z0 - sl.zlo) * P; k < (sl.z1 - sl.zlo) * P; k++)
      CHECK(check_close(gs[k], g[sl.zlo * P + k], 1e-12, 1e-15), "slab gradient differs at %lld", (long long)k);
    free(gs);
  }
  CHECK(check_close(Ls, L, 1e-12, 1e-15), "slab loss sum %.12g vs %.12g", Ls, L);
  /* float32 agrees with float64 */
  float *Ff = malloc(n * sizeof(float)), *Mf = malloc(n * sizeof(float)), *gf = malloc(n * sizeof(float));
  for (int64_t i = 0; i < n; i++) Ff[i] = (float)F[i], Mf[i] = (float)M[i];
  double L32 = ffdp_lncc_f32(&p, &s, Ff, Mf, mk, norm, gf);
  CHECK(check_close(L32, L, 1e-4, 1e-6), "f32 loss %g vs f64 %g", L32, L);
  double gmax = 0, emax = 0;
  for (int64_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i])), emax = fmax(emax, fabs(gf[i] - g[i]));
  CHECK(emax <= 1e-3 * gmax, "f32 gradient error %g (max |g| %g)", emax, gmax);
  /* both gradients in one pass (SyN): the bits of two calls, the second with F and M swapped */
  {
    const int64_t nzo = s.z1 - s.z0;
    double *pa = calloc((size_t)nzo, sizeof(double)), *pb = calloc((size_t)nzo, sizeof(double));
    float *gM1 = malloc(n * sizeof(float)), *gF1 = malloc(n * sizeof(float)), *gM2 = malloc(n * sizeof(float)),
          *gF2 = malloc(n * sizeof(float));
    ffdp_lncc_planes_f32(&p, &s, Ff, Mf, mk, norm, gM1, pa);
    ffdp_lncc_planes_f32(&p, &s, Mf, Ff, mk, norm, gF1, pb);
    ffdp_lncc_planes2_f32(&p, &s, Ff, Mf, mk, norm, gF2, gM2, pb);
    int same = !memcmp(pa, pb, (size_t)nzo * sizeof(double));
    same &= !memcmp(gM1, gM2, (size_t)n * sizeof(float)) && !memcmp(gF1, gF2, (size_t)n * sizeof(float));
    CHECK(same, "k=%d kind=%d mask=%d: the two-gradient pass differs from two calls", p.window, p.kind, use_mask);
    free(pa), free(pb), free(gM1), free(gF1), free(gM2), free(gF2);
  }
  free(F), free(M), free(g), free(mask), free(Ff), free(Mf), free(gf);
}

int main(void) {
  rng_t r = {4242};
  ffdp_lncc_params p = {3, FFDP_WINDOW_BOX, 1e-5};
  run(p, 0, &r);
  run(p, 1, &r);
  p.window = 5;
  run(p, 0, &r);
  p.kind = FFDP_WINDOW_GAUSS;
  run(p, 1, &r);
  p.window = 7;
  run(p, 0, &r);
  return check_done("test_lncc");
}
