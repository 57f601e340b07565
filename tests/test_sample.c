/* Sampler: forward vs a naive world-space reference; gradients w.r.t. u, the affine and
 * the moving image vs central finite differences of the naive reference (float64). */
#include "check.h"
#include "ops/ops.h"
#include "test_geometry.h"
#include <string.h>

typedef struct {
  int64_t fd[3], md[3];
  ffdp_mat4 wf, wm, aff;
  double *M, *u, *g;
} problem;

/* Obviously-right trilinear: explicit corner loop with (1-|d|) weights. */
static double naive_lookup(const problem *P, const double *M, const double q_in[3], ffdp_pad pad, ffdp_interp interp) {
  double q[3];
  for (int a = 0; a < 3; a++) {
    q[a] = q_in[a];
    if (pad == FFDP_PAD_BORDER) q[a] = fmin(fmax(q[a], 0.0), (double)(P->md[a] - 1));
  }
  if (interp == FFDP_INTERP_NEAREST) {
    int64_t i[3];
    for (int a = 0; a < 3; a++) {
      i[a] = (int64_t)floor(q[a] + 0.5);
      if (i[a] < 0 || i[a] >= P->md[a]) return 0;
    }
    return M[(i[2] * P->md[1] + i[1]) * P->md[0] + i[0]];
  }
  double s = 0;
  int64_t b[3] = {(int64_t)floor(q[0]), (int64_t)floor(q[1]), (int64_t)floor(q[2])};
  for (int64_t k = b[2]; k <= b[2] + 1; k++)
    for (int64_t j = b[1]; j <= b[1] + 1; j++)
      for (int64_t i = b[0]; i <= b[0] + 1; i++) {
        double w = (1 - fabs(q[0] - i)) * (1 - fabs(q[1] - j)) * (1 - fabs(q[2] - k));
        int64_t ii = i, jj = j, kk = k;
        if (pad == FFDP_PAD_BORDER) { /* corner beyond the last voxel has weight 0 anyway */
          ii = ii >= P->md[0] ? P->md[0] - 1 : ii, jj = jj >= P->md[1] ? P->md[1] - 1 : jj, kk = kk >= P->md[2] ? P->md[2] - 1 : kk;
        }
        if (ii < 0 || jj < 0 || kk < 0 || ii >= P->md[0] || jj >= P->md[1] || kk >= P->md[2]) continue;
        s += w * M[(kk * P->md[1] + jj) * P->md[0] + ii];
      }
  return s;
}

/* Moving voxel coordinate of fixed voxel p, computed the long way through world space. */
static void naive_q(const problem *P, ffdp_mat4 aff, const double *u, int64_t x, int64_t y, int64_t z, double q[3]) {
  double p[3] = {(double)x, (double)y, (double)z}, X[3], Y[3];
  ffdp_mat4_apply(P->wf, p, X);
  ffdp_mat4_apply(aff, X, Y);
  if (u)
    for (int a = 0; a < 3; a++) Y[a] += u[a];
  ffdp_mat4 minv;
  ffdp_mat4_inverse(P->wm, &minv);
  ffdp_mat4_apply(minv, Y, q);
}

static double naive_loss(const problem *P, ffdp_mat4 aff, const double *u, const double *M, ffdp_pad pad) {
  double L = 0;
  for (int64_t z = 0; z < P->fd[2]; z++)
    for (int64_t y = 0; y < P->fd[1]; y++)
      for (int64_t x = 0; x < P->fd[0]; x++) {
        int64_t i = (z * P->fd[1] + y) * P->fd[0] + x;
        double q[3];
        naive_q(P, aff, u + 3 * i, x, y, z, q);
        L += P->g[i] * naive_lookup(P, M, q, pad, FFDP_INTERP_LINEAR);
      }
  return L;
}

static void setup(problem *P, rng_t *r) {
  const int64_t fd[3] = {7, 6, 5}, md[3] = {9, 8, 7};
  memcpy(P->fd, fd, sizeof fd), memcpy(P->md, md, sizeof md);
  const double spf[3] = {1.0, 1.1, 0.9}, orgf[3] = {-3, -2.5, -2};
  const double spm[3] = {0.88, 0.88, 0.95}, orgm[3] = {-3.5, -3, -3.2};
  P->wf = test_oblique(0.1, -0.2, 0.15, spf, orgf);
  P->wm = test_oblique(-0.3, 0.1, 0.25, spm, orgm);
  P->aff = test_oblique(0.05, 0.03, -0.04, (double[3]){1.05, 0.97, 1.02}, (double[3]){0.3, -0.2, 0.1});
  P->aff.m[0][1] += 0.03; /* a little shear: a genuinely affine map */
  int64_t nf = fd[0] * fd[1] * fd[2], nm = md[0] * md[1] * md[2];
  P->M = malloc(nm * sizeof(double));
  P->u = malloc(3 * nf * sizeof(double));
  P->g = malloc(nf * sizeof(double));
  for (int64_t i = 0; i < nm; i++) P->M[i] = rng_nz(r, -1, 2);
  for (int64_t i = 0; i < 3 * nf; i++) P->u[i] = rng_nz(r, -1.5, 1.5);
  for (int64_t i = 0; i < nf; i++) P->g[i] = rng_nz(r, -1, 1);
}

static void test_forward(problem *P, ffdp_pad pad, ffdp_interp interp) {
  ffdp_warp w;
  ffdp_warp_fold(P->aff, P->wf, P->wm, interp, pad, &w);
  ffdp_slab fs = ffdp_slab_whole(P->fd[0], P->fd[1], P->fd[2]), ms = ffdp_slab_whole(P->md[0], P->md[1], P->md[2]);
  int64_t nf = P->fd[0] * P->fd[1] * P->fd[2], nm = P->md[0] * P->md[1] * P->md[2];
  double *out = malloc(nf * sizeof(double));
  float *Mf = malloc(nm * sizeof(float)), *uf = malloc(3 * nf * sizeof(float)), *outf = malloc(nf * sizeof(float));
  for (int64_t i = 0; i < nm; i++) Mf[i] = (float)P->M[i];
  for (int64_t i = 0; i < 3 * nf; i++) uf[i] = (float)P->u[i];
  ffdp_sample_fwd_f64(&w, &fs, P->u, &ms, P->M, 1, out);
  ffdp_sample_fwd_f32(&w, &fs, uf, &ms, Mf, 1, outf);
  double e64 = 0, e32 = 0;
  int inside = 0, outside = 0, near_tie = 0;
  for (int64_t z = 0; z < P->fd[2]; z++)
    for (int64_t y = 0; y < P->fd[1]; y++)
      for (int64_t x = 0; x < P->fd[0]; x++) {
        int64_t i = (z * P->fd[1] + y) * P->fd[0] + x;
        double q[3];
        naive_q(P, P->aff, P->u + 3 * i, x, y, z, q);
        int in = 1;
        for (int a = 0; a < 3; a++) {
          in &= q[a] >= 0 && q[a] <= P->md[a] - 1;
          if (interp == FFDP_INTERP_NEAREST && fabs(q[a] - floor(q[a]) - 0.5) < 1e-4) near_tie = 1;
        }
        inside += in, outside += !in;
        double ref = naive_lookup(P, P->M, q, pad, interp);
        e64 = fmax(e64, fabs(out[i] - ref));
        if (!near_tie) e32 = fmax(e32, fabs(outf[i] - ref));
        near_tie = 0;
      }
  CHECK(inside > nf / 3 && outside > 0, "test geometry should sample inside and outside (%d in, %d out)", inside, outside);
  CHECK(e64 < 1e-12, "f64 forward error %g (pad %d interp %d)", e64, pad, interp);
  CHECK(e32 < 2e-5, "f32 forward error %g (pad %d interp %d)", e32, pad, interp);
  free(out), free(Mf), free(uf), free(outf);
}

static void test_gradients(problem *P, ffdp_pad pad) {
  ffdp_warp w;
  ffdp_warp_fold(P->aff, P->wf, P->wm, FFDP_INTERP_LINEAR, pad, &w);
  ffdp_slab fs = ffdp_slab_whole(P->fd[0], P->fd[1], P->fd[2]), ms = ffdp_slab_whole(P->md[0], P->md[1], P->md[2]);
  int64_t nf = P->fd[0] * P->fd[1] * P->fd[2], nm = P->md[0] * P->md[1] * P->md[2];
  double *gu = malloc(3 * nf * sizeof(double)), *gM = calloc(nm, sizeof(double)), gB[3][4], gA[3][4];
  ffdp_sample_bwd_f64(&w, &fs, P->u, &ms, P->M, 1, P->g, gu, gB, gM);
  ffdp_warp_affine_grad(gB, P->wf, P->wm, gA);
  const double h = 1e-6;
  double worst = 0;
  for (int64_t k = 0; k < 3 * nf; k++) { /* every displacement component */
    double keep = P->u[k];
    P->u[k] = keep + h;
    double lp = naive_loss(P, P->aff, P->u, P->M, pad);
    P->u[k] = keep - h;
    double lm = naive_loss(P, P->aff, P->u, P->M, pad);
    P->u[k] = keep;
    double fd = (lp - lm) / (2 * h);
    if (!check_close(gu[k], fd, 1e-4, 1e-7)) worst = fmax(worst, fabs(gu[k] - fd));
    CHECK(check_close(gu[k], fd, 1e-4, 1e-7), "du[%lld]: analytic %.9g vs fd %.9g (pad %d)", (long long)k, gu[k], fd, pad);
  }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) {
      ffdp_mat4 ap = P->aff, am = P->aff;
      ap.m[i][j] += h, am.m[i][j] -= h;
      double fd = (naive_loss(P, ap, P->u, P->M, pad) - naive_loss(P, am, P->u, P->M, pad)) / (2 * h);
      CHECK(check_close(gA[i][j], fd, 1e-4, 1e-7), "dA[%d][%d]: analytic %.9g vs fd %.9g (pad %d)", i, j, gA[i][j], fd, pad);
    }
  for (int64_t k = 0; k < nm; k++) {
    double keep = P->M[k];
    P->M[k] = keep + h;
    double lp = naive_loss(P, P->aff, P->u, P->M, pad);
    P->M[k] = keep - h;
    double lm = naive_loss(P, P->aff, P->u, P->M, pad);
    P->M[k] = keep;
    double fd = (lp - lm) / (2 * h);
    CHECK(check_close(gM[k], fd, 1e-4, 1e-7), "dM[%lld]: analytic %.9g vs fd %.9g (pad %d)", (long long)k, gM[k], fd, pad);
  }
  /* The affine-only path (u == NULL) must equal u == 0. */
  double *zero = calloc(3 * nf, sizeof(double)), gB0[3][4], gB1[3][4];
  ffdp_sample_bwd_f64(&w, &fs, NULL, &ms, P->M, 1, P->g, NULL, gB0, NULL);
  ffdp_sample_bwd_f64(&w, &fs, zero, &ms, P->M, 1, P->g, NULL, gB1, NULL);
  CHECK(memcmp(gB0, gB1, sizeof gB0) == 0, "affine-only gradient differs from u=0");
  free(zero), free(gu), free(gM);
}

/* Slab semantics: sampling the owned planes of a slab equals the same planes of the whole. */
static void test_slab(problem *P) {
  ffdp_warp w;
  ffdp_warp_fold(P->aff, P->wf, P->wm, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
  ffdp_slab whole = ffdp_slab_whole(P->fd[0], P->fd[1], P->fd[2]), ms = ffdp_slab_whole(P->md[0], P->md[1], P->md[2]);
  int64_t nf = P->fd[0] * P->fd[1] * P->fd[2], pl = P->fd[0] * P->fd[1];
  double *ref = malloc(nf * sizeof(double)), gBw[3][4], gBs[3][4] = {{0}};
  ffdp_sample_fwd_f64(&w, &whole, P->u, &ms, P->M, 1, ref);
  ffdp_sample_bwd_f64(&w, &whole, P->u, &ms, P->M, 1, P->g, NULL, gBw, NULL);
  for (int64_t z0 = 0; z0 < P->fd[2]; z0 += 2) {
    ffdp_slab s = whole;
    s.z0 = z0, s.z1 = z0 + 2 < P->fd[2] ? z0 + 2 : P->fd[2];
    s.zlo = s.z0 > 0 ? s.z0 - 1 : 0, s.zhi = s.z1 < P->fd[2] ? s.z1 + 1 : s.z1; /* a 1-plane halo */
    int64_t n = (s.zhi - s.zlo) * pl;
    double *out = calloc(n, sizeof(double)), gB[3][4];
    ffdp_sample_fwd_f64(&w, &s, P->u + 3 * s.zlo * pl, &ms, P->M, 1, out);
    for (int64_t k = (s.z0 - s.zlo) * pl; k < (s.z1 - s.zlo) * pl; k++)
      CHECK(out[k] == ref[s.zlo * pl + k], "slab %lld voxel %lld differs", (long long)z0, (long long)k);
    ffdp_sample_bwd_f64(&w, &s, P->u + 3 * s.zlo * pl, &ms, P->M, 1, P->g + s.zlo * pl, NULL, gB, NULL);
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 4; b++) gBs[a][b] += gB[a][b];
    free(out);
  }
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 4; b++)
      CHECK(check_close(gBs[a][b], gBw[a][b], 1e-12, 1e-12), "slab-summed gB[%d][%d] %g vs %g", a, b, gBs[a][b], gBw[a][b]);
  free(ref);
}

/* Ring shards: the parts of M's plane shards, visited in any order, add up to the whole
 * sample and to its u-gradient bit for bit (the moving-image ring of the ranks relies on it). */
static void test_ring_parts(problem *P, ffdp_pad pad, ffdp_interp interp) {
  ffdp_warp w;
  ffdp_warp_fold(P->aff, P->wf, P->wm, interp, pad, &w);
  ffdp_slab fs = ffdp_slab_whole(P->fd[0], P->fd[1], P->fd[2]), ms = ffdp_slab_whole(P->md[0], P->md[1], P->md[2]);
  const int64_t nf = P->fd[0] * P->fd[1] * P->fd[2], nm = P->md[0] * P->md[1] * P->md[2], pl = P->md[0] * P->md[1];
  float *M = malloc(nm * sizeof(float)), *u = malloc(3 * nf * sizeof(float)), *g = malloc(nf * sizeof(float));
  float *ref = malloc(nf * sizeof(float)), *gref = malloc(3 * nf * sizeof(float));
  float *out = calloc(nf, sizeof(float)), *dq = calloc(3 * nf, sizeof(float)), *gu = malloc(3 * nf * sizeof(float));
  for (int64_t i = 0; i < nm; i++) M[i] = (float)P->M[i];
  for (int64_t i = 0; i < 3 * nf; i++) u[i] = (float)(2.5 * P->u[i]); /* taps reach across every shard */
  for (int64_t i = 0; i < nf; i++) g[i] = (float)P->g[i];
  ffdp_sample_fwd_f32(&w, &fs, u, &ms, M, 1, ref);
  ffdp_sample_bwd_f32(&w, &fs, u, &ms, M, 1, g, gref, NULL, NULL);
  const int nsh = 3;
  for (int k = nsh - 1; k >= 0; k--) { /* the last shard first: order must not matter */
    ffdp_slab sh = ffdp_slab_split(P->md[0], P->md[1], P->md[2], k, nsh, 0);
    ffdp_sample_part_f32(&w, &fs, u, &sh, M + sh.zlo * pl, out, dq);
  }
  ffdp_sample_bwd_dq_f32(&w, &fs, u, &ms, g, dq, gu);
  int bad = 0, badg = 0;
  for (int64_t i = 0; i < nf; i++) bad += memcmp(&out[i], &ref[i], sizeof(float)) != 0;
  for (int64_t i = 0; i < 3 * nf; i++) badg += memcmp(&gu[i], &gref[i], sizeof(float)) != 0;
  CHECK(bad == 0, "ring parts: %d of %lld samples differ from the whole (pad %d interp %d)", bad, (long long)nf, pad,
        interp);
  CHECK(badg == 0, "ring parts: %d gradient values differ from the whole (pad %d interp %d)", badg, pad, interp);
  free(M), free(u), free(g), free(ref), free(gref), free(out), free(dq), free(gu);
}

/* Labels: argmax over labels of the trilinearly interpolated indicator, by brute force. */
static void test_labels(problem *P, rng_t *r) {
  int64_t nf = P->fd[0] * P->fd[1] * P->fd[2], nm = P->md[0] * P->md[1] * P->md[2];
  double *L = malloc(nm * sizeof(double)), *ind = malloc(nm * sizeof(double)), *out = malloc(nf * sizeof(double));
  for (int64_t i = 0; i < nm; i++) L[i] = (double)(int)rng_range(r, 0, 5); /* labels 0..4 */
  ffdp_warp w;
  ffdp_warp_fold(P->aff, P->wf, P->wm, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
  ffdp_slab fs = ffdp_slab_whole(P->fd[0], P->fd[1], P->fd[2]), ms = ffdp_slab_whole(P->md[0], P->md[1], P->md[2]);
  ffdp_sample_labels_f64(&w, &fs, P->u, &ms, L, out);
  int bad = 0;
  for (int64_t z = 0; z < P->fd[2]; z++)
    for (int64_t y = 0; y < P->fd[1]; y++)
      for (int64_t x = 0; x < P->fd[0]; x++) {
        int64_t i = (z * P->fd[1] + y) * P->fd[0] + x;
        double q[3], best = -1, bestw = -1, wsum = 0;
        naive_q(P, P->aff, P->u + 3 * i, x, y, z, q);
        for (int lab = 1; lab < 5; lab++) {
          for (int64_t k = 0; k < nm; k++) ind[k] = L[k] == lab;
          double wl = naive_lookup(P, ind, q, FFDP_PAD_ZERO, FFDP_INTERP_LINEAR);
          wsum += wl;
          if (wl > bestw + 1e-12) bestw = wl, best = lab;
        }
        if (1 - wsum > bestw + 1e-12) best = 0; /* background (label 0 and outside) */
        bad += out[i] != best;
      }
  CHECK(bad == 0, "%d label voxels differ from per-label interpolation", bad);
  free(L), free(ind), free(out);
}

int main(void) {
  rng_t r = {0x9e3779b97f4a7c15ULL};
  problem P;
  setup(&P, &r);
  for (int pad = 0; pad < 2; pad++) {
    test_forward(&P, (ffdp_pad)pad, FFDP_INTERP_LINEAR);
    test_forward(&P, (ffdp_pad)pad, FFDP_INTERP_NEAREST);
    test_gradients(&P, (ffdp_pad)pad);
    test_ring_parts(&P, (ffdp_pad)pad, FFDP_INTERP_LINEAR);
    test_ring_parts(&P, (ffdp_pad)pad, FFDP_INTERP_NEAREST);
  }
  test_slab(&P);
  test_labels(&P, &r);
  free(P.M), free(P.u), free(P.g);
  return check_done("test_sample");
}
