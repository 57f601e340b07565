/* Gaussian blur vs a naive 3D convolution; self-adjointness; slabs with halo; vector fields. */
#include "check.h"
#include "ops/ops.h"

static double gw(double s, int d, int r) {
  if (s <= 0) return d == 0;
  double t = 0;
  for (int e = -r; e <= r; e++) t += exp(-0.5 * e * e / (s * s));
  return exp(-0.5 * d * d / (s * s)) / t;
}

int main(void) {
  rng_t rg = {31337};
  const int64_t nx = 11, ny = 9, nz = 13, n = nx * ny * nz;
  const double sig[3] = {1.3, 0.7, 1.0};
  int r[3];
  for (int a = 0; a < 3; a++) r[a] = (int)ceil(3 * sig[a]);
  for (int nc = 1; nc <= 3; nc += 2) {
    double *x = malloc(nc * n * sizeof(double)), *y = malloc(nc * n * sizeof(double)), *bx = malloc(nc * n * sizeof(double)),
           *by = malloc(nc * n * sizeof(double));
    for (int64_t i = 0; i < nc * n; i++) x[i] = rng_nz(&rg, -1, 1), y[i] = rng_nz(&rg, -1, 1);
    ffdp_slab s = ffdp_slab_whole(nx, ny, nz);
    ffdp_blur_f64(&s, x, nc, sig, bx);
    ffdp_blur_f64(&s, y, nc, sig, by);
    double e = 0;
    for (int64_t k = 0; k < nz; k++)
      for (int64_t j = 0; j < ny; j++)
        for (int64_t i = 0; i < nx; i++)
          for (int c = 0; c < nc; c++) {
            double acc = 0;
            for (int dz = -r[2]; dz <= r[2]; dz++)
              for (int dy = -r[1]; dy <= r[1]; dy++)
                for (int dx = -r[0]; dx <= r[0]; dx++) {
                  int64_t a = i + dx, b = j + dy, cc = k + dz;
                  if (a < 0 || b < 0 || cc < 0 || a >= nx || b >= ny || cc >= nz) continue;
                  acc += gw(sig[0], dx, r[0]) * gw(sig[1], dy, r[1]) * gw(sig[2], dz, r[2]) * x[((cc * ny + b) * nx + a) * nc + c];
                }
            e = fmax(e, fabs(acc - bx[((k * ny + j) * nx + i) * nc + c]));
          }
    CHECK(e < 1e-13, "ncomp %d: blur differs from naive convolution by %g", nc, e);
    double xby = 0, bxy = 0;
    for (int64_t i = 0; i < nc * n; i++) xby += x[i] * by[i], bxy += bx[i] * y[i];
    CHECK(check_close(xby, bxy, 1e-12, 1e-14), "not self-adjoint: %g vs %g", xby, bxy);
    /* slabs */
    const int64_t halo = ffdp_blur_radius(sig[2]), P = nx * ny * nc;
    for (int64_t z0 = 0; z0 < nz; z0 += 4) {
      ffdp_slab sl = s;
      sl.z0 = z0, sl.z1 = z0 + 4 < nz ? z0 + 4 : nz;
      sl.zlo = sl.z0 - halo < 0 ? 0 : sl.z0 - halo, sl.zhi = sl.z1 + halo > nz ? nz : sl.z1 + halo;
      double *o = calloc((sl.zhi - sl.zlo) * P, sizeof(double));
      ffdp_blur_f64(&sl, x + sl.zlo * P, nc, sig, o);
      double es = 0;
      for (int64_t k = (sl.z0 - sl.zlo) * P; k < (sl.z1 - sl.zlo) * P; k++) es = fmax(es, fabs(o[k] - bx[sl.zlo * P + k]));
      CHECK(es < 1e-14, "slab at %lld differs by %g", (long long)z0, es);
      free(o);
    }
    free(x), free(y), free(bx), free(by);
  }
  /* sigma 0 is the identity */
  double v[8] = {1, 2, 3, 4, 5, 6, 7, 8}, o[8];
  ffdp_slab s2 = ffdp_slab_whole(2, 2, 2);
  ffdp_blur_f64(&s2, v, 1, (double[3]){0, 0, 0}, o);
  for (int i = 0; i < 8; i++) CHECK(o[i] == v[i], "sigma 0 changed voxel %d", i);
  return check_done("test_blur");
}
