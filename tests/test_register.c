/* Registration on a synthetic phantom: a known rigid+scale transform is recovered by the
 * affine pipeline (MI) to sub-voxel accuracy, greedy improves a locally deformed pair without
 * folding; bad inputs are refused with the right error. */
#include "check.h"
#include "ffdp/ffdp.h"
#include "test_geometry.h"
#include "reg/dev_layout.h"
#include <string.h>

/* A smooth, asymmetric head-like phantom: ellipsoid shells plus off-centre blobs. */
static double phantom(const double X[3]) {
  double r = sqrt(X[0] * X[0] / 900 + X[1] * X[1] / 1225 + X[2] * X[2] / 784);
  double v = 1 / (1 + exp((r - 1) * 20)) * (0.6 + 0.4 / (1 + exp((0.7 - r) * 20)));
  const double c[4][3] = {{10, 5, -3}, {-8, 12, 6}, {4, -15, 8}, {-12, -6, -9}};
  for (int k = 0; k < 4; k++) {
    double d2 = 0;
    for (int a = 0; a < 3; a++) d2 += (X[a] - c[k][a]) * (X[a] - c[k][a]);
    v += (0.3 + 0.15 * k) * exp(-d2 / (2 * (16 + 4 * k)));
  }
  return 100 * v;
}

static ffdp_volume *render(const int64_t d[3], ffdp_mat4 w, ffdp_mat4 phi) {
  ffdp_volume *v;
  ffdp_volume_create(d, 1, w, &v, NULL);
  float *p = ffdp_volume_data(v);
  for (int64_t k = 0; k < d[2]; k++)
    for (int64_t j = 0; j < d[1]; j++)
      for (int64_t i = 0; i < d[0]; i++) {
        double q[3] = {i, j, k}, X[3], Y[3];
        ffdp_mat4_apply(w, q, X);
        ffdp_mat4_apply(phi, X, Y);
        p[(k * d[1] + j) * d[0] + i] = (float)phantom(Y);
      }
  return v;
}

static ffdp_reg_options quick(const char *preset) {
  ffdp_reg_options o;
  ffdp_reg_options_preset(&o, preset, NULL);
  for (int s = 0; s < o.nstages; s++) {
    o.stages[s].nlevels = 2;
    o.stages[s].level_mm[0] = 0;
    o.stages[s].shrink[0] = 2, o.stages[s].shrink[1] = 1;
    o.stages[s].iters[0] = 150, o.stages[s].iters[1] = 80;
  }
  return o;
}

/* The deformable presets deepen their pyramid for micro-scale voxels (coarsest level near
 * 2.4 mm) and keep 4x2x1 for clinical ones; explicit levels are kept as given. */
static void preset_levels(void) {
  ffdp_reg_options o;
  ffdp_error err = {0};
  ffdp_plan plan;
  const int64_t big[3] = {1000, 1000, 1000}, clin[3] = {182, 218, 182};
  const double mm[4] = {0.15, 0.5, 1.0, 2.0};
  const int want_levels[4] = {5, 3, 3, 3};
  for (int k = 0; k < 4; k++) {
    ffdp_reg_options_preset(&o, k % 2 ? "syn" : "greedy", &err);
    ffdp_mat4 w = ffdp_mat4_identity();
    for (int a = 0; a < 3; a++) w.m[a][a] = mm[k];
    const int64_t *d = k == 0 ? big : clin;
    CHECK(!ffdp_reg_plan(d, w, d, w, &o, &plan, &err), "plan: %s", err.msg);
    int rows = 0;
    int64_t first = 0;
    for (int r = 0; r < plan.nrows; r++)
      if (plan.rows[r].stage == 2 && plan.rows[r].level >= 0) first = rows++ ? first : plan.rows[r].dim[0];
    CHECK(rows == want_levels[k], "%.2f mm voxels: %d deformable levels, want %d", mm[k], rows, want_levels[k]);
    CHECK(first == d[0] / (1 << (want_levels[k] - 1)), "%.2f mm: coarsest level %lld voxels wide", mm[k], (long long)first);
  }
  ffdp_reg_options_preset(&o, "greedy", &err); /* explicit levels stay */
  o.stages[2].auto_levels = 0;
  ffdp_mat4 w = ffdp_mat4_identity();
  for (int a = 0; a < 3; a++) w.m[a][a] = 0.15;
  CHECK(!ffdp_reg_plan(big, w, big, w, &o, &plan, &err), "plan: %s", err.msg);
  int rows = 0;
  for (int r = 0; r < plan.nrows; r++) rows += plan.rows[r].stage == 2 && plan.rows[r].level >= 0;
  CHECK(rows == 3, "explicit levels changed to %d", rows);
}

/* The automatic fit: a 1024^3 greedy registration against free memory just under each plan in
 * turn gets the savers one at a time (half, + u16, + bf16), each plan being the one
 * ffdp_reg_plan gives for those options; with room for the plan as given nothing is added, with
 * none for even the leanest step -1 and the leanest options. */
static void plan_fit_case(void) {
  ffdp_reg_options o, base;
  ffdp_error err = {0};
  const int64_t d[3] = {1024, 1024, 1024};
  ffdp_mat4 w = ffdp_mat4_identity();
  for (int a = 0; a < 3; a++) w.m[a][a] = 0.2;
  ffdp_reg_options_preset(&base, "greedy", &err);
  double peak[4];
  for (int k = 0; k < 4; k++) { /* the plans of each step, from ffdp_reg_plan itself */
    o = base;
    if (k >= 1) o.state_resolution = FFDP_STATE_HALF;
    if (k >= 2) o.image_precision = FFDP_IMAGE_U16;
    if (k >= 3) o.state_precision = FFDP_STATE_BF16;
    ffdp_plan p;
    CHECK(!ffdp_reg_plan_gpus(d, w, d, w, &o, 1, &p, &err), "plan: %s", err.msg);
    peak[k] = p.peak_bytes;
  }
  CHECK(peak[0] > peak[1] && peak[1] > peak[2] && peak[2] > peak[3], "savers do not save: %g %g %g %g", peak[0], peak[1],
        peak[2], peak[3]);
  for (int k = -1; k <= 3; k++) {
    const double free_b = k < 0 ? peak[3] - 1 : peak[k] + 1; /* room for step k, not for k - 1 */
    ffdp_plan p;
    int step = 99;
    o = base;
    CHECK(!ffdp_reg_plan_fit(d, w, d, w, &o, 1, free_b, &p, &step, &err), "fit: %s", err.msg);
    CHECK(step == k, "free %.3f GB: step %d, want %d", free_b / 1e9, step, k);
    const int last = k < 0 ? 3 : k;
    CHECK(p.peak_bytes == peak[last], "step %d: peak %g, want %g", k, p.peak_bytes, peak[last]);
    CHECK((o.state_resolution == FFDP_STATE_HALF) == (last >= 1) && (o.image_precision == FFDP_IMAGE_U16) == (last >= 2) &&
              (o.state_precision == FFDP_STATE_BF16) == (last >= 3),
          "step %d: options not those of the plan", k);
  }
}

/* The spare field (dev_layout.h: reg_layout_spare): with a device budget, one-process deformable
 * levels on planes of at least 2^17 voxels get a field of 12 B per voxel for the smoothed
 * gradient where it fits the budget with the margins; never without a budget, on smaller
 * planes, over two GPUs, or with FFDP_SPARE_FIELD=0. */
static int spare_rows(const ffdp_plan *p, double *field_bytes, int64_t *widest) {
  int k = 0;
  for (int r = 0; r < p->nrows; r++)
    for (int b = 0; b < p->rows[r].nbuf; b++)
      if (strstr(p->rows[r].buf_name[b], "spare")) {
        k++;
        if (field_bytes) *field_bytes = p->rows[r].buf_bytes[b];
        if (widest && p->rows[r].dim[0] > *widest) *widest = p->rows[r].dim[0];
      }
  return k;
}

static void plan_spare_case(void) {
  ffdp_reg_options o;
  ffdp_error err = {0};
  const int64_t d[3] = {1024, 1024, 512};
  ffdp_mat4 w = ffdp_mat4_identity();
  for (int a = 0; a < 3; a++) w.m[a][a] = 0.2;
  ffdp_reg_options_preset(&o, "greedy", &err);
  ffdp_plan p0, p1, p2;
  CHECK(!ffdp_reg_plan_gpus(d, w, d, w, &o, 1, &p0, &err), "plan: %s", err.msg);
  CHECK(spare_rows(&p0, NULL, NULL) == 0, "a spare field without a budget");
  o.device_budget = 1e12; /* room for everything */
  CHECK(!ffdp_reg_plan_gpus(d, w, d, w, &o, 1, &p1, &err), "plan: %s", err.msg);
  double fb = 0;
  int64_t widest = 0;
  const int n1 = spare_rows(&p1, &fb, &widest);
  int big = 0; /* deformable levels on planes of 2^17 voxels or more */
  for (int r = 0; r < p1.nrows; r++)
    big += p1.rows[r].level >= 0 && p1.rows[r].kind == FFDP_STAGE_GREEDY && p1.rows[r].dim[0] * p1.rows[r].dim[1] >= 1 << 17;
  CHECK(big >= 2 && n1 == big, "%d spare fields for %d large-plane levels", n1, big);
  CHECK(widest == 1024 && fb == 12.0 * 1024 * 1024 * 512, "widest spare %lld, its field %.0f bytes", (long long)widest, fb);
  const double extra = p1.peak_bytes - p0.peak_bytes;
  CHECK(extra >= fb && extra < fb + 4096, "the peak grew by %.0f bytes with a field of %.0f", extra, fb);
  /* a budget of exactly the finest level with its field, an eighth more (the previous level's
   * field) and the margin: the field there; a byte less: none there */
  for (int k = 0; k < 2; k++) {
    o.device_budget = p1.peak_bytes + fb / 8 + 512.0 * 1048576 - k;
    CHECK(!ffdp_reg_plan_gpus(d, w, d, w, &o, 1, &p2, &err), "plan: %s", err.msg);
    widest = 0;
    const int n2 = spare_rows(&p2, NULL, &widest);
    CHECK(k ? n2 == n1 - 1 && widest < 1024 && p2.peak_bytes == p0.peak_bytes : n2 == n1 && widest == 1024,
          "budget %s: %d spare fields (widest %lld), peak %.0f vs %.0f", k ? "a byte short" : "exact", n2,
          (long long)widest, p2.peak_bytes, p0.peak_bytes);
  }
  o.device_budget = 1e12;
  CHECK(!ffdp_reg_plan_gpus(d, w, d, w, &o, 2, &p2, &err), "plan: %s", err.msg);
  widest = 0;
  spare_rows(&p2, NULL, &widest);
  CHECK(widest < 1024, "a spare field on the finest level over two GPUs");
  setenv("FFDP_SPARE_FIELD", "0", 1);
  CHECK(!ffdp_reg_plan_gpus(d, w, d, w, &o, 1, &p2, &err), "plan: %s", err.msg);
  unsetenv("FFDP_SPARE_FIELD");
  CHECK(spare_rows(&p2, NULL, NULL) == 0 && p2.peak_bytes == p0.peak_bytes, "FFDP_SPARE_FIELD=0 left a spare field");
}

/* A stage that takes its images from the pyramid (reg_cuda_level_take) carves the rest of its
 * layout from a block without them: every other buffer keeps its size and its distance from
 * the others, on the same 256-byte alignment, and the total drops by the images' bytes alone
 * (so images + block = the planner's row). Greedy and SyN layouts, with masks and the spare
 * field; a first index out of range changes nothing. */
static void images_apart_case(void) {
  for (int syn = 0; syn < 2; syn++) {
    const int64_t n = 1001 * 37, nm = 977 * 41;
    reg_layout L, A;
    if (syn) reg_layout_syn(n, n, nm, 0, 3 * n, 0, REG_HAS_FIXED_MASK | REG_HAS_MOVING_MASK, nm, 3 * 1001, &L);
    else reg_layout_greedy(n, nm, 0, 3 * n, 0, REG_HAS_FIXED_MASK | REG_HAS_MOVING_MASK, nm, 3 * 1001, &L);
    reg_layout_spare(&L, 512, 512, 1, n, 1.5, 1e12);
    A = L;
    const int first = syn ? SY_VF : GR_U;
    reg_layout_images_apart(&A, first);
    const size_t images = L.off[first];
    CHECK(images >= (size_t)(n + nm) * sizeof(float) && A.total == L.total - images, "%s: total %zu -> %zu, images %zu",
          syn ? "syn" : "greedy", L.total, A.total, images);
    CHECK(A.n == L.n && A.spare == L.spare && L.spare >= first, "%s: buffers or the spare field moved", syn ? "syn" : "greedy");
    int bad = 0;
    for (int b = 0; b < L.n; b++) {
      if (b < first) bad += A.bytes[b] != 0;
      else bad += A.bytes[b] != L.bytes[b] || A.off[b] + images != L.off[b] || A.off[b] % 256 != 0 ||
                  A.off[b] + A.bytes[b] > A.total;
    }
    CHECK(!bad, "%s: %d buffers misplaced", syn ? "syn" : "greedy", bad);
    A = L;
    reg_layout_images_apart(&A, L.n);
    CHECK(A.total == L.total && A.off[1] == L.off[1], "an index past the layout changed it");
  }
}

/* Winsorizing: intensities 0..9999 (each once, shuffled) plus bright outliers. Quantiles
 * 0.01 / 0.99 land within a histogram bin of 100 and 9900 (the outliers stretch the bins to
 * 1e6 / 4096 = 244 wide), values beyond are clipped to 0 and 1, values between scale
 * linearly; {0, 1} is ffdp_volume_normalize bit for bit; bad quantiles are refused. */
static void winsorize_case(void) {
  const int64_t d[3] = {50, 40, 5}; /* 10000 voxels */
  ffdp_volume *v = NULL, *w = NULL;
  ffdp_volume_create(d, 1, ffdp_mat4_identity(), &v, NULL);
  float *x = ffdp_volume_data(v);
  for (int64_t i = 0; i < 10000; i++) x[(i * 7919) % 10000] = (float)i; /* 7919 is prime: a permutation */
  x[17] = 1e6f, x[4242] = 5e5f;                                    /* outliers replace two values */
  ffdp_volume_clone(v, &w, NULL);
  ffdp_error err;
  double lo, hi;
  const double q[2] = {0.01, 0.99}, q01[2] = {0, 1}, bad[2] = {0.5, 0.2};
  CHECK(ffdp_volume_normalize_quantiles(v, NULL, q, "test", &lo, &hi, &err) == FFDP_OK, "%s", err.msg);
  CHECK(fabs(lo - 100) < 250 && fabs(hi - 9900) < 250, "quantiles %g and %g, want ~100 and ~9900", lo, hi);
  int clipped = 0, wrong = 0;
  for (int64_t i = 0; i < 10000; i++) {
    const double orig = ffdp_volume_cdata(w)[i], want = fmin(fmax((orig - lo) / (hi - lo), 0), 1);
    clipped += x[i] == 0.f || x[i] == 1.f;
    wrong += fabs(x[i] - want) > 1e-5;
  }
  CHECK(wrong == 0 && clipped >= 150 && clipped <= 250, "winsorized values: %d wrong, %d clipped", wrong, clipped);
  ffdp_volume *a = NULL, *b = NULL;
  ffdp_volume_clone(w, &a, NULL), ffdp_volume_clone(w, &b, NULL);
  CHECK(!ffdp_volume_normalize_quantiles(a, NULL, q01, "test", NULL, NULL, &err) && !ffdp_volume_normalize(b, "test", NULL, NULL, &err) &&
            !memcmp(ffdp_volume_cdata(a), ffdp_volume_cdata(b), 10000 * sizeof(float)),
        "quantiles {0, 1} differ from min and max");
  CHECK(ffdp_volume_normalize_quantiles(w, NULL, bad, "test", NULL, NULL, &err) == FFDP_ERR_INVALID && strstr(err.msg, "lower < upper"),
        "bad quantiles accepted: %s", err.msg);
  ffdp_volume_free(v), ffdp_volume_free(w), ffdp_volume_free(a), ffdp_volume_free(b);
}

/* Histogram matching: moving = 0.3 + 0.5 fixed voxel for voxel (an affine remap: the voxels
 * above each mean are the same ones, so the map is exact to the histogram's bins), then
 * moving = sqrt(fixed) (each image's own mean selects different voxels, as in ITK: close and
 * monotone only); a moving image with too few distinct values above its mean is refused. */
static void histogram_match_case(void) {
  const int64_t d[3] = {40, 30, 20};
  ffdp_volume *F = NULL, *M = NULL;
  ffdp_volume_create(d, 1, ffdp_mat4_identity(), &F, NULL);
  ffdp_volume_create(d, 1, ffdp_mat4_identity(), &M, NULL);
  float *f = ffdp_volume_data(F), *m = ffdp_volume_data(M);
  const int64_t n = ffdp_volume_nvox(F);
  ffdp_error err;
  double mean = 0;
  for (int64_t i = 0; i < n; i++) mean += (f[i] = (float)((i * 7919) % n) / (float)n);
  mean /= (double)n;
  for (int pass = 0; pass < 2; pass++) {
    for (int64_t i = 0; i < n; i++) m[i] = pass ? sqrtf(f[i]) : 0.3f + 0.5f * f[i];
    CHECK(ffdp_volume_match_histogram(M, F, NULL, &err) == FFDP_OK, "%s", err.msg);
    double worst = 0;
    int monotone = 1;
    for (int64_t i = 0; i < n; i++) {
      if (f[i] > mean) worst = fmax(worst, fabs(m[i] - f[i]));
      for (int64_t j = i + 1; j < n && j < i + 50; j++) monotone &= (f[i] < f[j]) == (m[i] < m[j]) || f[i] == f[j];
    }
    CHECK(worst < (pass ? 0.08 : 1e-3) && monotone, "%s remap: matched moving off by %.4f above the mean (monotone %d)",
          pass ? "sqrt" : "affine", worst, monotone);
  }
  for (int64_t i = 0; i < n; i++) m[i] = i % 2 ? 1.f : 0.f; /* two values: no spread above the mean */
  CHECK(ffdp_volume_match_histogram(M, F, NULL, &err) == FFDP_ERR_INVALID && strstr(err.msg, "distinct"),
        "a two-valued moving image was matched: %s", err.msg);
  ffdp_volume_free(F), ffdp_volume_free(M);
}

int main(void) {
  winsorize_case();
  histogram_match_case();
  preset_levels();
  plan_fit_case();
  plan_spare_case();
  images_apart_case();
  ffdp_error err;
  const int64_t d[3] = {40, 44, 36};
  ffdp_mat4 wf = test_oblique(0, 0, 0, (double[3]){2, 2, 2}, (double[3]){-40, -44, -36});
  ffdp_mat4 wm = test_oblique(0.05, 0, 0, (double[3]){2.2, 1.8, 2}, (double[3]){-44, -40, -38});
  /* moving(Y) = phantom(T^-1 Y): then phi = T^-1 ... fixed(x)=phantom(x), so phi(x) = T(x). */
  ffdp_mat4 T = test_oblique(0.12, -0.08, 0.1, (double[3]){1.06, 0.96, 1.0}, (double[3]){4, -3, 2.5}), Tinv;
  ffdp_mat4_inverse(T, &Tinv);
  ffdp_volume *F = render(d, wf, ffdp_mat4_identity()), *M = render(d, wm, Tinv);
  ffdp_reg_options o = quick("affine");
  ffdp_reg_result *r;
  CHECK(ffdp_register(F, M, &o, &r, &err) == FFDP_OK, "%s", err.msg);
  ffdp_mat4 A = ffdp_reg_result_affine(r);
  double worst = 0; /* mapping error over points inside the phantom */
  for (int k = -1; k <= 1; k++)
    for (int j = -1; j <= 1; j++)
      for (int i = -1; i <= 1; i++) {
        double X[3] = {20.0 * i, 25.0 * j, 18.0 * k}, a[3], b[3];
        ffdp_mat4_apply(A, X, a);
        ffdp_mat4_apply(T, X, b);
        worst = fmax(worst, sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2])));
      }
  printf("affine recovery: worst point error %.3f mm (voxel 2 mm)\n", worst);
  CHECK(worst < 1.0, "affine recovery error %.3f mm", worst);
  ffdp_reg_result_free(r);

  /* greedy: a smooth local deformation on top of the affine */
  ffdp_volume *Md;
  ffdp_volume_create(d, 1, wm, &Md, NULL);
  {
    float *p = ffdp_volume_data(Md);
    for (int64_t k = 0; k < d[2]; k++)
      for (int64_t j = 0; j < d[1]; j++)
        for (int64_t i = 0; i < d[0]; i++) {
          double q[3] = {i, j, k}, X[3], Y[3];
          ffdp_mat4_apply(wm, q, X);
          X[0] += 3 * exp(-(X[1] * X[1] + X[2] * X[2]) / 200);
          ffdp_mat4_apply(Tinv, X, Y);
          p[(k * d[1] + j) * d[0] + i] = (float)phantom(Y);
        }
  }
  ffdp_reg_options og = quick("greedy");
  /* Identical intensities: MSE. (LNCC has little signal inside this phantom's smooth blobs;
   * it is exercised on real brains by the accuracy tier.) */
  og.stages[2].metric.kind = FFDP_METRIC_MSE;
  CHECK(ffdp_register(F, Md, &og, &r, &err) == FFDP_OK, "%s", err.msg);
  ffdp_volume *W, *Wa;
  ffdp_warp_image(Md, d, wf, ffdp_reg_result_affine(r), NULL, 0, &Wa, &err);
  ffdp_warp_image(Md, d, wf, ffdp_reg_result_affine(r), ffdp_reg_result_warp(r), 0, &W, &err);
  double ncc_a = ffdp_global_ncc(F, Wa), ncc_g = ffdp_global_ncc(F, W), fold = ffdp_folding_fraction(ffdp_reg_result_warp(r), ffdp_reg_result_affine(r));
  printf("greedy: NCC affine-only %.4f -> deformable %.4f, folding %.4f%%\n", ncc_a, ncc_g, 100 * fold);
  CHECK(ncc_g > ncc_a + 0.002 && ncc_g > 0.99, "greedy did not improve: %.4f -> %.4f", ncc_a, ncc_g);
  CHECK(fold < 0.0005, "folding %.4f%%", 100 * fold);
  ffdp_volume_free(W), ffdp_volume_free(Wa);
  ffdp_reg_result_free(r);

  /* SyN on the same pair: no folding, and the inverse undoes the forward map */
  ffdp_reg_options os = quick("syn");
  os.stages[2].metric.kind = FFDP_METRIC_MSE;
  CHECK(ffdp_register(F, Md, &os, &r, &err) == FFDP_OK, "%s", err.msg);
  {
    const ffdp_volume *u = ffdp_reg_result_warp(r), *ui = ffdp_reg_result_inverse_warp(r);
    ffdp_mat4 A = ffdp_reg_result_affine(r), Ainv;
    ffdp_mat4_inverse(A, &Ainv);
    CHECK(u && ui, "SyN must give forward and inverse fields");
    ffdp_volume *Ws;
    ffdp_warp_image(Md, d, wf, A, u, 0, &Ws, &err);
    double ncc_s = ffdp_global_ncc(F, Ws), fold_s = ffdp_folding_fraction(u, A);
    ffdp_volume_free(Ws);
    /* inverse consistency at interior voxels: phi^-1(phi(x)) = x */
    double esum = 0, emax = 0;
    int cnt = 0;
    const float *ud = ffdp_volume_cdata(u);
    for (int64_t k = 8; k < d[2] - 8; k += 3)
      for (int64_t j = 8; j < d[1] - 8; j += 3)
        for (int64_t i = 8; i < d[0] - 8; i += 3) {
          double p[3] = {i, j, k}, X[3], Y[3], Z[3], q[3];
          ffdp_mat4_apply(wf, p, X);
          ffdp_mat4_apply(A, X, Y);
          const float *uu = ud + 3 * ((k * d[1] + j) * d[0] + i);
          for (int a = 0; a < 3; a++) Y[a] += uu[a];
          ffdp_mat4_apply(Ainv, Y, Z); /* z = A^-1 (y - t); then z + u_inv(z), u_inv at nearest voxel */
          ffdp_mat4 winv;
          ffdp_mat4_inverse(wf, &winv);
          ffdp_mat4_apply(winv, Z, q);
          int64_t c[3];
          for (int a = 0; a < 3; a++) c[a] = (int64_t)floor(q[a] + 0.5), c[a] = c[a] < 0 ? 0 : c[a] >= d[a] ? d[a] - 1 : c[a];
          const float *vi = ffdp_volume_cdata(ui) + 3 * ((c[2] * d[1] + c[1]) * d[0] + c[0]);
          double e = 0;
          for (int a = 0; a < 3; a++) e += (Z[a] + vi[a] - X[a]) * (Z[a] + vi[a] - X[a]);
          esum += sqrt(e), emax = fmax(emax, sqrt(e)), cnt++;
        }
    printf("syn: NCC %.4f, folding %.4f%%, inverse consistency mean %.3f mm, max %.3f mm\n", ncc_s, 100 * fold_s, esum / cnt, emax);
    CHECK(ncc_s > 0.99 && fold_s < 0.0005, "syn NCC %.4f folding %.4f%%", ncc_s, 100 * fold_s);
    CHECK(esum / cnt < 0.3, "inverse consistency %.3f mm (voxel 2 mm; nearest-voxel lookup)", esum / cnt);
  }
  ffdp_reg_result_free(r);

  /* bf16 Adam moments (CPU): the same registration to within rounding: a different warp (the
   * moments really are stored reduced) that scores as well and does not fold */
  {
    ffdp_reg_options o32 = quick("greedy"), o16 = quick("greedy");
    o32.stages[2].metric.kind = o16.stages[2].metric.kind = FFDP_METRIC_MSE;
    o16.state_precision = FFDP_STATE_BF16;
    ffdp_reg_result *r32, *r16;
    CHECK(ffdp_register(F, Md, &o32, &r32, &err) == FFDP_OK, "%s", err.msg);
    CHECK(ffdp_register(F, Md, &o16, &r16, &err) == FFDP_OK, "bf16: %s", err.msg);
    const ffdp_volume *u32 = ffdp_reg_result_warp(r32), *u16 = ffdp_reg_result_warp(r16);
    double dmax = 0;
    for (int64_t i = 0; i < 3 * ffdp_volume_nvox(u32); i++)
      dmax = fmax(dmax, fabs(ffdp_volume_cdata(u32)[i] - ffdp_volume_cdata(u16)[i]));
    ffdp_volume *W32, *W16;
    ffdp_warp_image(Md, d, wf, ffdp_reg_result_affine(r32), u32, 0, &W32, &err);
    ffdp_warp_image(Md, d, wf, ffdp_reg_result_affine(r16), u16, 0, &W16, &err);
    const double n32 = ffdp_global_ncc(F, W32), n16 = ffdp_global_ncc(F, W16);
    const double f16 = ffdp_folding_fraction(u16, ffdp_reg_result_affine(r16));
    printf("greedy, bf16 moments: NCC %.5f (fp32 %.5f), largest warp difference %.4f mm, folding %.4f%%\n", n16, n32,
           dmax, 100 * f16);
    CHECK(dmax > 0, "bf16 moments gave the fp32 warp bit for bit: the state was not stored reduced");
    CHECK(fabs(n16 - n32) < 0.002 && f16 < 0.0005, "bf16 moments: NCC %.5f vs %.5f, folding %.4f%%", n16, n32, 100 * f16);
    ffdp_volume_free(W32), ffdp_volume_free(W16);
    /* the moments on the coarse grid (fp32, then bf16 there too): another warp that scores as
     * well and does not fold */
    for (int b = 0; b < 2; b++) {
      ffdp_reg_options oh = o32;
      oh.state_resolution = FFDP_STATE_HALF, oh.state_precision = b ? FFDP_STATE_BF16 : FFDP_STATE_F32;
      ffdp_reg_result *rh;
      CHECK(ffdp_register(F, Md, &oh, &rh, &err) == FFDP_OK, "coarse moments: %s", err.msg);
      const ffdp_volume *uh = ffdp_reg_result_warp(rh);
      double dh = 0;
      for (int64_t i = 0; i < 3 * ffdp_volume_nvox(u32); i++)
        dh = fmax(dh, fabs(ffdp_volume_cdata(u32)[i] - ffdp_volume_cdata(uh)[i]));
      ffdp_volume *WH;
      ffdp_warp_image(Md, d, wf, ffdp_reg_result_affine(rh), uh, 0, &WH, &err);
      const double nh = ffdp_global_ncc(F, WH), fh = ffdp_folding_fraction(uh, ffdp_reg_result_affine(rh));
      printf("greedy, coarse %s moments: NCC %.5f (fp32 on every voxel %.5f), largest warp difference %.4f mm, "
             "folding %.4f%%\n", b ? "bf16" : "fp32", nh, n32, dh, 100 * fh);
      CHECK(dh > 0, "coarse moments gave the full-grid warp bit for bit: the state was not coarse");
      CHECK(nh > n32 - 0.002 && fh < 0.0005, "coarse moments: NCC %.5f vs %.5f, folding %.4f%%", nh, n32, 100 * fh);
      ffdp_volume_free(WH);
      ffdp_reg_result_free(rh);
    }
    /* the images as 16-bit codes: the linear stages keep fp32 (the same affine, bit for bit),
     * the deformable stage reads the decoded images: another warp that scores as well */
    {
      ffdp_reg_options oc = o32;
      oc.image_precision = FFDP_IMAGE_U16;
      ffdp_reg_result *rc;
      CHECK(ffdp_register(F, Md, &oc, &rc, &err) == FFDP_OK, "16-bit images: %s", err.msg);
      const ffdp_volume *uc = ffdp_reg_result_warp(rc);
      ffdp_mat4 a32 = ffdp_reg_result_affine(r32), ac = ffdp_reg_result_affine(rc);
      CHECK(!memcmp(&a32, &ac, sizeof a32), "16-bit images changed the linear stages' affine");
      double dc = 0;
      for (int64_t i = 0; i < 3 * ffdp_volume_nvox(u32); i++)
        dc = fmax(dc, fabs(ffdp_volume_cdata(u32)[i] - ffdp_volume_cdata(uc)[i]));
      ffdp_volume *WC;
      ffdp_warp_image(Md, d, wf, ac, uc, 0, &WC, &err);
      const double nc = ffdp_global_ncc(F, WC), fc = ffdp_folding_fraction(uc, ac);
      printf("greedy, 16-bit images: NCC %.5f (fp32 %.5f), largest warp difference %.4f mm, folding %.4f%%\n", nc, n32,
             dc, 100 * fc);
      CHECK(dc > 0, "16-bit images gave the fp32 warp bit for bit: the images were not coded");
      CHECK(fabs(nc - n32) < 0.002 && fc < 0.0005, "16-bit images: NCC %.5f vs %.5f, folding %.4f%%", nc, n32, 100 * fc);
      ffdp_volume_free(WC);
      ffdp_reg_result_free(rc);
    }
    ffdp_reg_result_free(r32), ffdp_reg_result_free(r16);
  }

  /* masks: a fixed mask over the head and a moving mask that hides one corner of the moving
   * image must still recover the affine (the metric only sees masked voxels) */
  {
    ffdp_volume *fm, *mm;
    ffdp_volume_create(d, 1, wf, &fm, NULL);
    ffdp_volume_create(d, 1, wm, &mm, NULL);
    float *a = ffdp_volume_data(fm), *b = ffdp_volume_data(mm);
    for (int64_t k = 0; k < d[2]; k++)
      for (int64_t j = 0; j < d[1]; j++)
        for (int64_t i = 0; i < d[0]; i++) {
          int64_t v = (k * d[1] + j) * d[0] + i;
          a[v] = (i > 2 && i < d[0] - 3 && j > 2 && j < d[1] - 3 && k > 2 && k < d[2] - 3) ? 1.f : 0.f;
          b[v] = (i < d[0] / 3 && j < d[1] / 3) ? 0.f : 1.f;
        }
    ffdp_reg_options om = quick("affine");
    om.fixed_mask = fm, om.moving_mask = mm;
    CHECK(ffdp_register(F, M, &om, &r, &err) == FFDP_OK, "masked: %s", err.msg);
    ffdp_mat4 Am = ffdp_reg_result_affine(r);
    double wm_err = 0;
    for (int k = -1; k <= 1; k++)
      for (int j = -1; j <= 1; j++)
        for (int i = -1; i <= 1; i++) {
          double X[3] = {20.0 * i, 25.0 * j, 18.0 * k}, p1[3], p2[3];
          ffdp_mat4_apply(Am, X, p1);
          ffdp_mat4_apply(T, X, p2);
          wm_err = fmax(wm_err, sqrt((p1[0] - p2[0]) * (p1[0] - p2[0]) + (p1[1] - p2[1]) * (p1[1] - p2[1]) +
                                     (p1[2] - p2[2]) * (p1[2] - p2[2])));
        }
    printf("masked affine recovery: worst point error %.3f mm\n", wm_err);
    CHECK(wm_err < 1.0, "masked affine recovery error %.3f mm", wm_err);
    ffdp_reg_result_free(r);
    ffdp_volume_free(fm), ffdp_volume_free(mm);
  }

  /* bad inputs */
  ffdp_volume *bad;
  ffdp_volume_clone(M, &bad, NULL);
  ffdp_volume_data(bad)[123] = NAN;
  CHECK(ffdp_register(F, bad, &o, &r, &err) == FFDP_ERR_NUMERIC && strstr(err.msg, "NaN"), "NaN input: %s", err.msg);
  memset(ffdp_volume_data(bad), 0, ffdp_volume_nvox(bad) * sizeof(float));
  CHECK(ffdp_register(F, bad, &o, &r, &err) == FFDP_ERR_INVALID && strstr(err.msg, "constant"), "constant input: %s", err.msg);
  o.fixed_mask = bad;
  CHECK(ffdp_register(F, M, &o, &r, &err) == FFDP_ERR_INVALID && strstr(err.msg, "mask is empty"), "empty mask: %s", err.msg);
  o.fixed_mask = NULL;
  ffdp_mat4 far = wm;
  far.m[0][3] += 1000; /* one metre away */
  ffdp_volume_set_vox2world(M, far);
  o.moments = 0;
  CHECK(ffdp_register(F, M, &o, &r, &err) == FFDP_ERR_INVALID && strstr(err.msg, "overlap"), "no overlap: %s", err.msg);
  o.stages[0].metric.kind = FFDP_METRIC_CC, o.stages[0].metric.window = 4;
  CHECK(ffdp_register(F, F, &o, &r, &err) == FFDP_ERR_INVALID && strstr(err.msg, "odd"), "even CC window: %s", err.msg);
  ffdp_volume_free(bad), ffdp_volume_free(F), ffdp_volume_free(M), ffdp_volume_free(Md);
  return check_done("test_register");
}
