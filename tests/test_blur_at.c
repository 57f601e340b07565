/* The smoothing at chosen points only (ffdp_blur1_at_f32) against ffdp_blur_f32 everywhere, bit
 * for bit: random images, slabs whose stored planes start and end inside the image, radii from
 * 1 past the image's width; and a pyramid level built that way (the resample's points from
 * reg_resample_points) against the level smoothed everywhere, on an oblique grid, for odd and
 * even shrinks and for a level split into pieces of planes. */
#include <string.h>
#include "check.h"
#include "reg/reg_internal.h"
#include "test_geometry.h"

static int same_bits(const float *a, const float *b) { return memcmp(a, b, sizeof *a) == 0; }

/* sorted distinct indices in [lo, hi), about a fraction q of them, always including lo and hi - 1 */
static int pick(rng_t *rg, int64_t lo, int64_t hi, double q, int64_t *out) {
  int n = 0;
  for (int64_t i = lo; i < hi; i++)
    if (i == lo || i == hi - 1 || rng_uniform(rg) < q) out[n++] = i;
  return n;
}

static void points_vs_everywhere(rng_t *rg) {
  const int64_t nx = 37, ny = 29, nz = 23, P = nx * ny;
  float *img = malloc((size_t)nz * P * sizeof(float));
  float *all = malloc((size_t)nz * P * sizeof(float)), *at = malloc((size_t)nz * P * sizeof(float));
  for (int64_t i = 0; i < nz * P; i++) img[i] = (float)rng_range(rg, -3, 5);
  const double sigmas[][3] = {{0.3, 0.3, 0.3}, {0.9, 1.7, 0.6}, {2.0, 2.0, 2.0}, {5.0, 4.0, 3.0}, {13.0, 11.0, 9.0}};
  int64_t xs64[64], ys64[64], zs[64];
  int xs[64], ys[64];
  for (size_t c = 0; c < sizeof sigmas / sizeof sigmas[0]; c++) {
    /* owned [4, 20), stored what the z taps reach: inside the image for the small radii */
    const int64_t rz = ffdp_blur_radius(sigmas[c][2]);
    ffdp_slab s = ffdp_slab_whole(nx, ny, nz);
    s.z0 = 4, s.z1 = 20, s.zlo = s.z0 - rz > 0 ? s.z0 - rz : 0, s.zhi = s.z1 + rz < nz ? s.z1 + rz : nz;
    const float *in = img + s.zlo * P;
    ffdp_blur_f32(&s, in, 1, sigmas[c], all);
    for (int64_t i = 0; i < (s.zhi - s.zlo) * P; i++) at[i] = NAN;
    const int nxs = pick(rg, 0, nx, 0.3, xs64), nys = pick(rg, 0, ny, 0.3, ys64), nzs = pick(rg, s.z0, s.z1, 0.4, zs);
    for (int k = 0; k < nxs; k++) xs[k] = (int)xs64[k];
    for (int k = 0; k < nys; k++) ys[k] = (int)ys64[k];
    CHECK(ffdp_blur1_at_f32(&s, in, sigmas[c], xs, nxs, ys, nys, zs, nzs, at) == 0, "blur1_at failed");
    int64_t diff = 0, untouched = 0, written = 0;
    for (int q = 0; q < nzs; q++)
      for (int k = 0; k < nys; k++)
        for (int j = 0; j < nxs; j++) {
          const int64_t i = (zs[q] - s.zlo) * P + ys[k] * nx + xs[j];
          diff += !same_bits(&all[i], &at[i]);
        }
    for (int64_t i = 0; i < (s.zhi - s.zlo) * P; i++) written += !isnan(at[i]);
    untouched = (s.zhi - s.zlo) * P - written;
    CHECK(diff == 0, "sigma %g: %lld of the points differ from the blur everywhere", sigmas[c][0], (long long)diff);
    CHECK(written == (int64_t)nxs * nys * nzs && untouched > 0, "sigma %g: %lld values written for %d points",
          sigmas[c][0], (long long)written, nxs * nys * nzs);
  }
  free(img), free(all), free(at);
}

/* a level's planes [k0, k1) as the pyramid builds them (reg_shrink_smooth_planes), from the
 * source planes they need */
static void level_planes(const ffdp_volume *v, int shrink, double sigma, const int64_t ld[3], ffdp_mat4 lw, int64_t k0,
                         int64_t k1, float *out) {
  ffdp_error err;
  int64_t lo, hi;
  reg_resampled_planes(v->dim[2], shrink, k0, k1, &lo, &hi);
  const int64_t r = ffdp_blur_radius(shrink / 3.0) + (sigma > 0 ? ffdp_blur_radius(sigma) : 0);
  const int64_t a = lo - r < 0 ? 0 : lo - r, b = hi + r > v->dim[2] ? v->dim[2] : hi + r, P = v->dim[0] * v->dim[1];
  CHECK(reg_shrink_smooth_planes(v->dim, v->vox2world, v->data + a * P, a, b, shrink, sigma, ld, lw, k0, k1,
                                 out + k0 * ld[0] * ld[1], &err) == FFDP_OK,
        "level build: %s", err.msg);
}

static void levels_vs_everywhere(rng_t *rg) {
  ffdp_error err;
  const int64_t dim[3] = {97, 83, 71};
  const double sp[3] = {0.8, 1.1, 1.3}, org[3] = {-30, -40, -20};
  ffdp_volume *v;
  CHECK(ffdp_volume_create(dim, 1, test_oblique(0.2, -0.1, 0.3, sp, org), &v, &err) == FFDP_OK, "create");
  for (int64_t i = 0; i < ffdp_volume_nvox(v); i++) v->data[i] = (float)rng_range(rg, 0, 100);
  const int shrinks[] = {8, 11, 13, 16, 24};
  for (size_t c = 0; c < sizeof shrinks / sizeof shrinks[0]; c++)
    for (int sg = 0; sg < 2; sg++) {
      const int f[3] = {shrinks[c], shrinks[c], shrinks[c]};
      const double sigma = sg ? 0.8 : 0;
      int64_t ld[3];
      ffdp_mat4 lw;
      ffdp_shrink_grid(dim, v->vox2world, f, ld, &lw);
      const int64_t ln = ld[0] * ld[1] * ld[2];
      float *ref = malloc(ln * sizeof(float)), *got = malloc(ln * sizeof(float));
      setenv("FFDP_PYRAMID_AT", "0", 1);
      level_planes(v, shrinks[c], sigma, ld, lw, 0, ld[2], ref);
      unsetenv("FFDP_PYRAMID_AT");
      reg_points pts;
      int64_t za, zb;
      reg_resampled_planes(dim[2], shrinks[c], 0, ld[2], &za, &zb);
      CHECK(reg_resample_points(dim, v->vox2world, ld, lw, shrinks[c], 0, ld[2], za, zb, &pts) == 1,
            "shrink %d: the points path not taken", shrinks[c]);
      if (!sg && pts.zs) { /* the points are all the resample reads: the rest of the smoothed planes NaN */
        const int64_t P = dim[0] * dim[1], r2 = ffdp_blur_radius(shrinks[c] / 3.0);
        const int64_t m0 = za - r2 > 0 ? za - r2 : 0, m1 = zb + r2 < dim[2] ? zb + r2 : dim[2];
        const double sd[3] = {shrinks[c] / 3.0, shrinks[c] / 3.0, shrinks[c] / 3.0};
        float *t2 = malloc((size_t)((m1 - m0) * P) * sizeof(float));
        for (int64_t i = 0; i < (m1 - m0) * P; i++) t2[i] = NAN;
        const ffdp_slab ss = reg_planes_slab(dim, m0, m1, za, zb), ms = reg_planes_slab(dim, za, zb, za, zb);
        CHECK(ffdp_blur1_at_f32(&ss, v->data + m0 * P, sd, pts.xs, pts.nx, pts.ys, pts.ny, pts.zs, pts.nz, t2) == 0, "blur1_at");
        ffdp_warp w;
        ffdp_warp_fold(ffdp_mat4_identity(), lw, v->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &w);
        const ffdp_slab fs = ffdp_slab_whole(ld[0], ld[1], ld[2]);
        ffdp_sample_fwd_f32(&w, &fs, NULL, &ms, t2 + (za - m0) * P, 1, got);
        int64_t diff = 0;
        for (int64_t i = 0; i < ln; i++) diff += !same_bits(&ref[i], &got[i]);
        CHECK(diff == 0, "shrink %d: %lld level values read a point not in the lists", shrinks[c], (long long)diff);
        free(t2);
      }
      free(pts.zs);
      /* whole, then in three pieces of planes (as ranks build their shares) */
      for (int pieces = 1; pieces <= 3; pieces += 2) {
        for (int64_t i = 0; i < ln; i++) got[i] = NAN;
        for (int p = 0; p < pieces; p++) level_planes(v, shrinks[c], sigma, ld, lw, ld[2] * p / pieces, ld[2] * (p + 1) / pieces, got);
        int64_t diff = 0;
        for (int64_t i = 0; i < ln; i++) diff += !same_bits(&ref[i], &got[i]);
        CHECK(diff == 0, "shrink %d sigma %g, %d pieces: %lld of %lld level values differ", shrinks[c], sigma, pieces,
              (long long)diff, (long long)ln);
      }
      free(ref), free(got);
    }
  ffdp_volume_free(v);
}

int main(void) {
  rng_t rg = {4242};
  points_vs_everywhere(&rg);
  levels_vs_everywhere(&rg);
  return check_done("test_blur_at");
}
