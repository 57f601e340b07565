/* Known-deformation recovery on real anatomy (Debian mricron-data: Colin27 ch2bet + AAL).
 * The moving image is ch2bet resampled through T(y) = A0·y + t0 + u(y), with a smooth random
 * u (peak ~5 mm) and a small affine; its labels go through the same map. Registering it back
 * must give mean AAL Dice >= the threshold, a small residual |T(phi(x)) - x| inside the
 * brain, and almost no folding. Mode "mi" first remaps the moving intensities
 * non-monotonically (a synthetic second contrast) and registers with MI throughout.
 * usage: synth_recovery cc|mi [dice_threshold] */
#include "../check.h"
#include "ffdp/ffdp.h"
#include <string.h>
#include <time.h>

#define TEMPL "/usr/share/mricron/templates/"

static ffdp_volume *random_field(const ffdp_volume *ref, double peak_mm, uint64_t seed) {
  /* white noise on an 8 mm grid, smoothed, upsampled: smooth with ~1-2 cm features */
  const int f[3] = {8, 8, 8};
  int64_t cd[3];
  ffdp_mat4 cw;
  ffdp_shrink_grid(ffdp_volume_dim(ref), ffdp_volume_vox2world(ref), f, cd, &cw);
  ffdp_volume *c, *cs, *u;
  ffdp_volume_create(cd, 3, cw, &c, NULL);
  rng_t r = {seed};
  float *d = ffdp_volume_data(c);
  for (int64_t i = 0; i < 3 * ffdp_volume_nvox(c); i++) d[i] = (float)rng_range(&r, -1, 1);
  const double s[3] = {1.0, 1.0, 1.0};
  ffdp_volume_smooth(c, s, &cs, NULL);
  ffdp_volume_resample(cs, ffdp_volume_dim(ref), ffdp_volume_vox2world(ref), 0, 1, &u, NULL);
  float *ud = ffdp_volume_data(u);
  double mx = 0;
  for (int64_t i = 0; i < ffdp_volume_nvox(u); i++)
    mx = fmax(mx, sqrt(ud[3 * i] * ud[3 * i] + ud[3 * i + 1] * ud[3 * i + 1] + ud[3 * i + 2] * ud[3 * i + 2]));
  for (int64_t i = 0; i < 3 * ffdp_volume_nvox(u); i++) ud[i] *= (float)(peak_mm / mx);
  ffdp_volume_free(c), ffdp_volume_free(cs);
  return u;
}

static double mean_dice(const ffdp_volume *a, const ffdp_volume *b, int *nlab) {
  enum { L = 256 };
  int64_t inter[L] = {0}, ca[L] = {0}, cb[L] = {0};
  const float *x = ffdp_volume_cdata(a), *y = ffdp_volume_cdata(b);
  for (int64_t i = 0; i < ffdp_volume_nvox(a); i++) {
    int p = (int)x[i], q = (int)y[i];
    if (p > 0 && p < L) ca[p]++;
    if (q > 0 && q < L) cb[q]++;
    if (p == q && p > 0 && p < L) inter[p]++;
  }
  double s = 0;
  int n = 0;
  for (int l = 1; l < L; l++)
    if (ca[l] > 0) s += 2.0 * inter[l] / (double)(ca[l] + cb[l]), n++;
  *nlab = n;
  return n ? s / n : 0;
}

int main(int argc, char **argv) {
  const int mi = argc > 1 && !strcmp(argv[1], "mi");
  const double dice_min = argc > 2 ? atof(argv[2]) : (mi ? 0.85 : 0.90);
  ffdp_error err;
  ffdp_volume *F, *lab;
  if (ffdp_volume_load(TEMPL "ch2bet.nii.gz", &F, &err) || ffdp_volume_load(TEMPL "aal.nii.gz", &lab, &err)) {
    fprintf(stderr, "%s (install Debian mricron-data: scripts/install-deps.sh)\n", err.msg);
    return 77; /* skipped */
  }
  const int64_t *dim = ffdp_volume_dim(F);
  ffdp_mat4 W = ffdp_volume_vox2world(F);
  ffdp_volume *u = random_field(F, 5.0, mi ? 7 : 3);
  ffdp_mat4 A0 = ffdp_mat4_identity(); /* ~4 degrees, 3% scale, 4 mm shift */
  double th = 0.07, c = cos(th), s = sin(th);
  A0.m[0][0] = 1.03 * c, A0.m[0][1] = -s, A0.m[1][0] = s, A0.m[1][1] = 0.98 * c;
  A0.m[0][3] = 4, A0.m[1][3] = -3, A0.m[2][3] = 2;
  /* affine about the image centre */
  double ctr[3], p0[3] = {dim[0] / 2.0, dim[1] / 2.0, dim[2] / 2.0}, Ac[3];
  ffdp_mat4_apply(W, p0, ctr);
  ffdp_mat4_apply_vec(A0, ctr, Ac);
  for (int a = 0; a < 3; a++) A0.m[a][3] += ctr[a] - Ac[a];
  ffdp_volume *M, *Ml;
  ffdp_warp_image(F, dim, W, A0, u, 0, &M, &err);
  ffdp_warp_image(lab, dim, W, A0, u, 2, &Ml, &err);
  if (mi) { /* non-monotonic remap: dark CSF becomes mid-grey, WM darker than GM */
    float *m = ffdp_volume_data(M);
    double lo, hi;
    ffdp_volume_range(M, &lo, &hi);
    for (int64_t i = 0; i < ffdp_volume_nvox(M); i++) {
      double v = (m[i] - lo) / (hi - lo);
      m[i] = v < 0.02 ? 0.0f : (float)(100 * (0.55 + 0.45 * cos(2.6 * v * 3.14159265)));
    }
  }
  ffdp_reg_options o;
  ffdp_reg_options_preset(&o, "greedy", NULL);
  if (mi) o.stages[2].metric = (ffdp_metric_spec){FFDP_METRIC_MI, 5, 32};
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ffdp_reg_result *r;
  CHECK(ffdp_register(F, M, &o, &r, &err) == FFDP_OK, "%s", err.msg);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  ffdp_mat4 A = ffdp_reg_result_affine(r);
  const ffdp_volume *ur = ffdp_reg_result_warp(r);
  ffdp_volume *Wl, *Wl_aff;
  ffdp_warp_image(Ml, dim, W, A, ur, 2, &Wl, &err);
  ffdp_warp_image(Ml, dim, W, A, NULL, 2, &Wl_aff, &err);
  int nl;
  double dice0 = mean_dice(lab, Ml, &nl), dice_aff = mean_dice(lab, Wl_aff, &nl), dice = mean_dice(lab, Wl, &nl);
  /* residual |T(phi(x)) - x| inside the brain (fixed voxels with intensity > 0) */
  const float *fd = ffdp_volume_cdata(F), *ud = ffdp_volume_cdata(u), *rd = ffdp_volume_cdata(ur);
  ffdp_mat4 Winv;
  ffdp_mat4_inverse(W, &Winv);
  double esum = 0, emax = 0, init = 0;
  int64_t cnt = 0;
  for (int64_t z = 0; z < dim[2]; z++)
    for (int64_t y = 0; y < dim[1]; y++)
      for (int64_t x = 0; x < dim[0]; x++) {
        int64_t i = (z * dim[1] + y) * dim[0] + x;
        if (!(fd[i] > 0)) continue;
        double p[3] = {x, y, z}, X[3], Y[3], q[3], Z[3];
        ffdp_mat4_apply(W, p, X);
        ffdp_mat4_apply(A, X, Y);
        for (int a = 0; a < 3; a++) Y[a] += rd[3 * i + a];
        /* T(Y) = A0 Y + t0 + u(Y): u at Y by nearest voxel (u is smooth on an 8 mm scale) */
        ffdp_mat4_apply(Winv, Y, q);
        int64_t j[3];
        for (int a = 0; a < 3; a++) {
          j[a] = (int64_t)floor(q[a] + 0.5);
          j[a] = j[a] < 0 ? 0 : j[a] >= dim[a] ? dim[a] - 1 : j[a];
        }
        int64_t k = (j[2] * dim[1] + j[1]) * dim[0] + j[0];
        ffdp_mat4_apply(A0, Y, Z);
        double e = 0, e0 = 0, Z0[3];
        ffdp_mat4_apply(A0, X, Z0);
        for (int a = 0; a < 3; a++) {
          Z[a] += ud[3 * k + a];
          Z0[a] += ud[3 * i + a];
          e += (Z[a] - X[a]) * (Z[a] - X[a]);
          e0 += (Z0[a] - X[a]) * (Z0[a] - X[a]);
        }
        esum += sqrt(e), init += sqrt(e0), emax = fmax(emax, sqrt(e)), cnt++;
      }
  double fold = ffdp_folding_fraction(ur, A);
  printf("synthetic %s recovery (ch2bet + AAL, %d labels): %.1f s registration\n", mi ? "multimodal MI" : "CC", nl, secs);
  printf("  mean Dice: before %.4f, after affine %.4f, after greedy %.4f (threshold %.2f)\n", dice0, dice_aff, dice, dice_min);
  printf("  displacement error in brain: initial %.3f mm, final mean %.3f mm, max %.3f mm\n", init / cnt, esum / cnt, emax);
  printf("  folding (det J <= 0): %.4f%% of voxels\n", 100 * fold);
  CHECK(dice >= dice_min, "mean Dice %.4f below %.2f", dice, dice_min);
  CHECK(esum / cnt < 0.5 * init / cnt, "displacement error %.3f mm not halved from %.3f mm", esum / cnt, init / cnt);
  CHECK(fold < 0.0005, "folding %.4f%% >= 0.05%%", 100 * fold);
  ffdp_reg_result_free(r);
  ffdp_volume_free(F), ffdp_volume_free(lab), ffdp_volume_free(u), ffdp_volume_free(M), ffdp_volume_free(Ml);
  ffdp_volume_free(Wl), ffdp_volume_free(Wl_aff);
  return check_done(mi ? "synth_recovery mi" : "synth_recovery cc");
}
