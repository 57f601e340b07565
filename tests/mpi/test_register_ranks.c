/* A registration on N ranks against the same registration in one process, compared on every
 * rank: moments + rigid (MI) + greedy (CC) on the small brain pair, each stage alone and SyN
 * too, and rigid + greedy (MSE, CC) and SyN on random odd-sized volumes whose coarse level is too thin for every
 * rank (it gathers onto fewer), also with the Adam moments on the coarse grid. Every sum (loss, MI histogram, affine gradient) is added per
 * plane in one global order, so N ranks must reproduce one process: warp relative L2 difference
 * <= 1e-5 (in practice 0), losses to 6 digits, the same iteration counts, the affine to 1e-9.
 * Run under mpirun -np 1..4 (one rank checks the MPI path itself).
 * FFDP_TEST_DEVICE=cuda runs every registration on the GPUs (ranks take a host's GPUs in turn
 * and share them when there are more ranks): the per-rank loss sums are then added in rank
 * order rather than plane order, so N ranks match one process to the bound (warp
 * relative L2 <= 1e-5, losses to 6 digits) rather than bit for bit. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ffdp/comm_mpi.h"
#include "ffdp/ffdp.h"
#include "../check.h"

static double rel_l2(const ffdp_volume *a, const ffdp_volume *b) {
  const float *x = ffdp_volume_cdata(a), *y = ffdp_volume_cdata(b);
  const int64_t n = ffdp_volume_nvox(a) * 3;
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]), den += (double)y[i] * y[i];
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* tol_warp, tol_loss, tol_aff: what must hold (see the file comment for why they differ). */
static int on_gpu;

/* The two memory-saving options must not change the result: the ranks' warps gathered on rank
 * 0 alone (the others get none) and inputs normalized in place by the caller. */
static void check_savers(const char *what, const ffdp_volume *F, const ffdp_volume *M, ffdp_reg_options *opt,
                         const ffdp_comm *comm, const ffdp_reg_result *many) {
  ffdp_error err = {0};
  ffdp_reg_result *root = NULL, *pre = NULL;
  opt->comm = comm, opt->result_on_root = 1;
  ffdp_status st = ffdp_register(F, M, opt, &root, &err);
  opt->result_on_root = 0;
  CHECK(st == FFDP_OK, "%s, result on rank 0: %s", what, err.msg);
  const int r0 = ffdp_comm_rank(comm) == 0;
  if (!st && ffdp_reg_result_warp(many)) {
    if (r0 || ffdp_comm_size(comm) == 1) {
      CHECK(ffdp_reg_result_warp(root) && rel_l2(ffdp_reg_result_warp(root), ffdp_reg_result_warp(many)) == 0,
            "%s: rank 0's warp differs when only it receives it", what);
      CHECK(!ffdp_reg_result_inverse_warp(many) ||
                (ffdp_reg_result_inverse_warp(root) &&
                 rel_l2(ffdp_reg_result_inverse_warp(root), ffdp_reg_result_inverse_warp(many)) == 0),
            "%s: rank 0's inverse warp differs when only it receives it", what);
    } else {
      CHECK(!ffdp_reg_result_warp(root) && !ffdp_reg_result_inverse_warp(root), "%s: rank %d received a warp", what,
            ffdp_comm_rank(comm));
    }
  }
  /* each rank its share of the warps' planes: exactly those planes of the whole result */
  ffdp_reg_result *shares = NULL;
  opt->result_shares = 1;
  st = ffdp_register(F, M, opt, &shares, &err);
  opt->result_shares = 0;
  CHECK(st == FFDP_OK, "%s, result in shares: %s", what, err.msg);
  if (!st && ffdp_reg_result_warp(many)) {
    int64_t z0, z1, r0s, r1s;
    ffdp_comm_share(comm, ffdp_volume_dim(F)[2], &z0, &z1);
    ffdp_reg_result_planes(shares, &r0s, &r1s);
    CHECK(r0s == z0 && r1s == z1, "%s: rank %d holds planes [%lld, %lld), its share is [%lld, %lld)", what,
          ffdp_comm_rank(comm), (long long)r0s, (long long)r1s, (long long)z0, (long long)z1);
    const int64_t P3 = ffdp_volume_dim(F)[0] * ffdp_volume_dim(F)[1] * 3;
    for (int k = 0; k < 2; k++) {
      const ffdp_volume *a = k ? ffdp_reg_result_inverse_warp(shares) : ffdp_reg_result_warp(shares);
      const ffdp_volume *b = k ? ffdp_reg_result_inverse_warp(many) : ffdp_reg_result_warp(many);
      if (!b) continue;
      CHECK(a && !memcmp(ffdp_volume_cdata(a) + z0 * P3, ffdp_volume_cdata(b) + z0 * P3, (size_t)((z1 - z0) * P3) * sizeof(float)),
            "%s: rank %d's share of the %s differs from the whole result's planes", what, ffdp_comm_rank(comm),
            k ? "inverse warp" : "warp");
    }
  }
  ffdp_reg_result_free(shares);
  ffdp_volume *Fn = NULL, *Mn = NULL;
  ffdp_volume_clone(F, &Fn, NULL), ffdp_volume_clone(M, &Mn, NULL);
  st = ffdp_volume_normalize(Fn, "fixed", NULL, NULL, &err);
  if (!st) st = ffdp_volume_normalize(Mn, "moving", NULL, NULL, &err);
  opt->inputs_normalized = 1;
  if (!st) st = ffdp_register(Fn, Mn, opt, &pre, &err);
  opt->inputs_normalized = 0;
  CHECK(st == FFDP_OK, "%s, inputs normalized in place: %s", what, err.msg);
  if (!st) {
    CHECK(ffdp_reg_result_stage(pre, ffdp_reg_result_nstages(pre) - 1).final_loss ==
              ffdp_reg_result_stage(many, ffdp_reg_result_nstages(many) - 1).final_loss,
          "%s: the final loss changed with inputs normalized in place", what);
    CHECK(!ffdp_reg_result_warp(many) || rel_l2(ffdp_reg_result_warp(pre), ffdp_reg_result_warp(many)) == 0,
          "%s: the warp changed with inputs normalized in place", what);
  }
  ffdp_volume_free(Fn), ffdp_volume_free(Mn);
  ffdp_reg_result_free(root), ffdp_reg_result_free(pre);
}

/* Sampled images across ranks (ffdp_image_exchange): windows fetched from the ranks that hold
 * the planes (the default, in `many`), the ring of shards and each rank's own copy must give the
 * same bits; with ranks, the window must move image bytes and fewer than the ring. */
static void check_exchange(const char *what, const ffdp_volume *F, const ffdp_volume *M, ffdp_reg_options *opt,
                           const ffdp_comm *comm, const ffdp_reg_result *many) {
  const int last = ffdp_reg_result_nstages(many) - 1;
  const ffdp_stage_summary sw = ffdp_reg_result_stage(many, last);
  double per_it[3] = {sw.exchange_bytes / (sw.iterations > 0 ? sw.iterations : 1), 0, 0};
  for (int mode = FFDP_EXCHANGE_RING; mode <= FFDP_EXCHANGE_LOCAL; mode++) {
    if (on_gpu && mode == FFDP_EXCHANGE_RING) continue; /* the CUDA stages fetch windows only */
    ffdp_error err = {0};
    ffdp_reg_result *r = NULL;
    opt->comm = comm, opt->image_exchange = (ffdp_image_exchange)mode;
    ffdp_status st = ffdp_register(F, M, opt, &r, &err);
    opt->image_exchange = FFDP_EXCHANGE_WINDOW;
    const char *name = mode == FFDP_EXCHANGE_RING ? "ring" : "local";
    CHECK(st == FFDP_OK, "%s, %s exchange: %s", what, name, err.msg);
    if (st) continue;
    const ffdp_stage_summary sr = ffdp_reg_result_stage(r, last);
    CHECK(sr.final_loss == sw.final_loss && sr.iterations == sw.iterations, "%s: %s exchange changed the loss (%.9g vs %.9g)",
          what, name, sr.final_loss, sw.final_loss);
    CHECK(rel_l2(ffdp_reg_result_warp(r), ffdp_reg_result_warp(many)) == 0, "%s: %s exchange changed the warp", what, name);
    per_it[mode] = sr.exchange_bytes / (sr.iterations > 0 ? sr.iterations : 1);
    CHECK(mode != FFDP_EXCHANGE_LOCAL || sr.exchange_bytes == 0, "%s: the local exchange moved %g bytes", what,
          sr.exchange_bytes);
    ffdp_reg_result_free(r);
  }
  if (ffdp_comm_size(comm) > 1) {
    CHECK(sw.exchange_bytes > 0, "%s: %d ranks fetched no window planes from each other", what, ffdp_comm_size(comm));
    CHECK(on_gpu || per_it[0] < per_it[1], "%s: windows moved %g bytes per iteration, the ring %g", what, per_it[0],
          per_it[1]);
  }
  if (ffdp_comm_rank(comm) == 0)
    printf("%s on %d ranks: image bytes per iteration on rank 0: window %.0f, ring %.0f\n", what,
           ffdp_comm_size(comm), per_it[0], per_it[1]);
}

/* Each rank holding only its share of both images' planes (ffdp_comm_share; the other planes
 * are NaN here, so that a plane read before it was fetched shows) must give the bits of whole
 * images: pyramid levels built from shares, moments and intensity ranges folded over ranks. */
static ffdp_volume *share_of(const ffdp_volume *v, const ffdp_comm *comm) {
  ffdp_volume *s = NULL;
  if (ffdp_volume_clone(v, &s, NULL)) return NULL;
  const int64_t *d = ffdp_volume_dim(s), P = d[0] * d[1];
  int64_t z0, z1;
  ffdp_comm_share(comm, d[2], &z0, &z1);
  float *x = ffdp_volume_data(s);
  for (int64_t z = 0; z < d[2]; z++)
    if (z < z0 || z >= z1)
      for (int64_t i = 0; i < P; i++) x[z * P + i] = NAN;
  return s;
}

static void check_sharded(const char *what, const ffdp_volume *F, const ffdp_volume *M, ffdp_reg_options *opt,
                          const ffdp_comm *comm, const ffdp_reg_result *many) {
  ffdp_error err = {0};
  ffdp_reg_result *r = NULL;
  ffdp_volume *Fs = share_of(F, comm), *Ms = share_of(M, comm);
  opt->comm = comm, opt->sharded_inputs = 1;
  ffdp_status st = Fs && Ms ? ffdp_register(Fs, Ms, opt, &r, &err) : FFDP_ERR_NOMEM;
  opt->sharded_inputs = 0;
  CHECK(st == FFDP_OK, "%s, sharded inputs: %s", what, err.msg);
  if (!st) {
    for (int s = 0; s < ffdp_reg_result_nstages(many); s++) {
      const ffdp_stage_summary a = ffdp_reg_result_stage(r, s), b = ffdp_reg_result_stage(many, s);
      CHECK(a.final_loss == b.final_loss && a.iterations == b.iterations,
            "%s stage %d: sharded inputs changed the loss (%.12g vs %.12g, %d vs %d iterations)", what, s + 1,
            a.final_loss, b.final_loss, a.iterations, b.iterations);
    }
    ffdp_mat4 A = ffdp_reg_result_affine(r), B = ffdp_reg_result_affine(many);
    CHECK(!memcmp(&A, &B, sizeof A), "%s: sharded inputs changed the affine", what);
    CHECK(!ffdp_reg_result_warp(many) || rel_l2(ffdp_reg_result_warp(r), ffdp_reg_result_warp(many)) == 0,
          "%s: sharded inputs changed the warp", what);
    CHECK(!ffdp_reg_result_inverse_warp(many) ||
              rel_l2(ffdp_reg_result_inverse_warp(r), ffdp_reg_result_inverse_warp(many)) == 0,
          "%s: sharded inputs changed the inverse warp", what);
  }
  ffdp_reg_result_free(r);
  ffdp_volume_free(Fs), ffdp_volume_free(Ms);
}

static void compare(const char *what, const ffdp_volume *F, const ffdp_volume *M, ffdp_reg_options *opt,
                    const ffdp_comm *comm, double tol_warp, double tol_loss, double tol_aff, int savers, int exchange) {
  ffdp_error err = {0};
  if (on_gpu) {
    opt->device = 1;
    tol_warp = 1e-5, tol_loss = fmax(tol_loss, 1e-6), tol_aff = fmax(tol_aff, 1e-6);
  }
  ffdp_reg_result *one = NULL, *many = NULL;
  opt->comm = NULL;
  ffdp_status s1 = ffdp_register(F, M, opt, &one, &err);
  CHECK(s1 == FFDP_OK, "%s one process: %s", what, err.msg);
  opt->comm = comm;
  ffdp_status s2 = ffdp_register(F, M, opt, &many, &err);
  CHECK(s2 == FFDP_OK, "%s %d ranks: %s", what, ffdp_comm_size(comm), err.msg);
  if (s1 || s2) return;
  for (int s = 0; s < ffdp_reg_result_nstages(one); s++) {
    double a = ffdp_reg_result_stage(one, s).final_loss, b = ffdp_reg_result_stage(many, s).final_loss;
    CHECK(check_close(a, b, tol_loss, 1e-9), "%s stage %d final loss %.9g vs %.9g", what, s + 1, a, b);
    CHECK(tol_loss > 1e-6 || ffdp_reg_result_stage(one, s).iterations == ffdp_reg_result_stage(many, s).iterations,
          "%s stage %d iterations %d vs %d", what, s + 1, ffdp_reg_result_stage(one, s).iterations,
          ffdp_reg_result_stage(many, s).iterations);
  }
  ffdp_mat4 A = ffdp_reg_result_affine(one), B = ffdp_reg_result_affine(many);
  double da = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) da = fmax(da, fabs(A.m[i][j] - B.m[i][j]));
  CHECK(da <= tol_aff, "%s affine differs by %g", what, da);
  double e = ffdp_reg_result_warp(one) ? rel_l2(ffdp_reg_result_warp(many), ffdp_reg_result_warp(one)) : 0;
  CHECK(e <= tol_warp, "%s warp relative L2 difference %g", what, e);
  if (ffdp_reg_result_inverse_warp(one)) {
    double ei = rel_l2(ffdp_reg_result_inverse_warp(many), ffdp_reg_result_inverse_warp(one));
    CHECK(ei <= tol_warp, "%s inverse warp relative L2 difference %g", what, ei);
  }
  check_sharded(what, F, M, opt, comm, many);
  if (savers) check_savers(what, F, M, opt, comm, many);
  if (exchange) check_exchange(what, F, M, opt, comm, many);
  if (ffdp_comm_rank(comm) == 0)
    printf("%s on %d ranks%s%s: warp rel diff %.2e, affine %.1e, final loss %.9f\n", what, ffdp_comm_size(comm),
           on_gpu ? ", GPU halos " : "", on_gpu ? ffdp_comm_gpu_transport(comm) : "", e, da,
           ffdp_reg_result_stage(many, ffdp_reg_result_nstages(many) - 1).final_loss);
  ffdp_reg_result_free(one), ffdp_reg_result_free(many);
}

/* Smooth random volume: a few Gaussian blobs (same on every rank: fixed seed). */
static ffdp_volume *blobs(const int64_t dim[3], unsigned seed, double shift) {
  ffdp_volume *v = NULL;
  ffdp_mat4 w = ffdp_mat4_identity();
  w.m[0][0] = 1.1, w.m[1][1] = 0.9, w.m[2][2] = 1.3;
  ffdp_volume_create(dim, 1, w, &v, NULL);
  float *d = ffdp_volume_data(v);
  double c[12][4];
  for (int k = 0; k < 12; k++) {
    for (int a = 0; a < 3; a++) c[k][a] = (double)(rand_r(&seed) % 1000) / 1000.0 * (double)dim[a];
    c[k][3] = 2.0 + (double)(rand_r(&seed) % 1000) / 250.0;
  }
  for (int64_t z = 0; z < dim[2]; z++)
    for (int64_t y = 0; y < dim[1]; y++)
      for (int64_t x = 0; x < dim[0]; x++) {
        double s = 0;
        for (int k = 0; k < 12; k++) {
          double dx = x + shift * sin(0.2 * z) - c[k][0], dy = y - c[k][1], dz = z - c[k][2];
          s += exp(-(dx * dx + dy * dy + dz * dz) / (2 * c[k][3] * c[k][3]));
        }
        d[(z * dim[1] + y) * dim[0] + x] = (float)s;
      }
  return v;
}

/* 0/1 mask on the blobs' grid: a ball around the centre (half = 0) or the voxels above a
 * slanted plane (half = 1). */
static ffdp_volume *half_or_ball(const int64_t dim[3], int half) {
  ffdp_volume *v = NULL;
  ffdp_mat4 w = ffdp_mat4_identity();
  w.m[0][0] = 1.1, w.m[1][1] = 0.9, w.m[2][2] = 1.3;
  ffdp_volume_create(dim, 1, w, &v, NULL);
  float *d = ffdp_volume_data(v);
  for (int64_t z = 0; z < dim[2]; z++)
    for (int64_t y = 0; y < dim[1]; y++)
      for (int64_t x = 0; x < dim[0]; x++) {
        const double dx = x - 0.5 * dim[0], dy = y - 0.5 * dim[1], dz = z - 0.5 * dim[2];
        const int in = half ? 0.3 * x + 0.2 * y + z > 0.35 * (double)dim[2]
                            : dx * dx + dy * dy + dz * dz < 0.16 * (double)(dim[0] * dim[0]);
        d[(z * dim[1] + y) * dim[0] + x] = (float)in;
      }
  return v;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  ffdp_comm *comm = NULL;
  ffdp_error err = {0};
  if (ffdp_comm_mpi_create(MPI_COMM_WORLD, &comm, &err)) return 1;
  const char *dev = getenv("FFDP_TEST_DEVICE");
  on_gpu = dev && !strcmp(dev, "cuda");
  if (ffdp_comm_rank(comm) != 0) { /* keep the log readable: rank 0 reports, failures on any rank count */
    FILE *o = freopen("/dev/null", "w", stdout);
    (void)o;
  }
  /* random smooth volumes, odd sizes; MSE then CC, coarse level of 7 planes (thinner than the
   * halo for 2+ ranks: gathers onto fewer ranks) */
  {
    const int64_t df[3] = {29, 23, 31}, dm[3] = {27, 25, 29};
    ffdp_volume *F = blobs(df, 7u, 0.0), *M = blobs(dm, 7u, 1.5);
    if (ffdp_comm_rank(comm) == 0) { /* inputs of the failing-rank test (tests/mpi/failing_rank.sh) */
      CHECK(!ffdp_volume_save(F, "ranks_fixed.nii.gz", FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err), "%s", err.msg);
      CHECK(!ffdp_volume_save(M, "ranks_moving.nii.gz", FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err), "%s", err.msg);
    }
    ffdp_reg_options o;
    memset(&o, 0, sizeof o);
    o.nstages = 2;
    o.stages[0] = ffdp_stage_default(FFDP_STAGE_RIGID);
    o.stages[0].nlevels = 2, o.stages[0].shrink[0] = 2, o.stages[0].shrink[1] = 1, o.stages[0].level_mm[0] = 0;
    o.stages[0].iters[0] = 20, o.stages[0].iters[1] = 10;
    o.stages[1] = ffdp_stage_default(FFDP_STAGE_GREEDY);
    o.stages[1].metric.kind = FFDP_METRIC_MSE;
    o.stages[1].iters[0] = 15, o.stages[1].iters[1] = 10, o.stages[1].iters[2] = 5;
    compare("random rigid + greedy MSE", F, M, &o, comm, 1e-5, 1e-6, 1e-9, 0, 0);
    o.nstages = 1, o.stages[0] = o.stages[1], o.moments = 0;
    compare("random greedy MSE", F, M, &o, comm, 1e-5, 1e-6, 0, 0, 0);
    o.winsorize[0] = 0.02, o.winsorize[1] = 0.98; /* quantiles from every rank's histogram */
    compare("random greedy MSE, winsorized", F, M, &o, comm, 1e-5, 1e-6, 0, 0, 0);
    o.winsorize[0] = o.winsorize[1] = 0;
    o.histogram_match = 1; /* the means and histograms of every rank's share */
    compare("random greedy MSE, histogram matched", F, M, &o, comm, 1e-5, 1e-6, 0, 0, 0);
    o.histogram_match = 0;
    o.stages[0].metric.kind = FFDP_METRIC_CC, o.stages[0].metric.window = 3;
    compare("random greedy CC", F, M, &o, comm, 1e-5, 1e-6, 0, 1, 1);
    o.stages[0].kind = FFDP_STAGE_SYN;
    compare("random SyN CC", F, M, &o, comm, 1e-5, 1e-6, 0, 1, 1);
    /* moments on the coarse grid: ranks share a coarse plane at each boundary, updated by both
     * from the same values: the same bits on the CPU */
    o.state_resolution = FFDP_STATE_HALF;
    compare("random SyN CC, coarse moments", F, M, &o, comm, 0, 1e-6, 0, 0, 0);
    o.stages[0].kind = FFDP_STAGE_GREEDY, o.state_precision = FFDP_STATE_BF16;
    compare("random greedy CC, coarse bf16 moments", F, M, &o, comm, 0, 1e-6, 0, 0, 0);
    /* the images as 16-bit codes: the codes span every rank's share (sharded inputs: a
     * collective range) and each rank decodes what it holds: the same bits */
    o.image_precision = FFDP_IMAGE_U16;
    compare("random greedy CC, 16-bit images, coarse bf16 moments", F, M, &o, comm, 0, 1e-6, 0, 0, 1);
    o.stages[0].kind = FFDP_STAGE_SYN, o.state_precision = FFDP_STATE_F32, o.state_resolution = FFDP_STATE_FULL;
    compare("random SyN CC, 16-bit images", F, M, &o, comm, 0, 1e-6, 0, 0, 1);
    o.image_precision = FFDP_IMAGE_F32;
    /* masks: a fixed ball and a moving half-space that the warp carries across rank
     * boundaries; rigid MI, greedy CC, SyN CC, each as one rank */
    ffdp_volume *fm = half_or_ball(df, 0), *mm = half_or_ball(dm, 1);
    o.fixed_mask = fm, o.moving_mask = mm;
    o.nstages = 1, o.moments = 0;
    o.stages[0] = ffdp_stage_default(FFDP_STAGE_RIGID);
    o.stages[0].nlevels = 1, o.stages[0].shrink[0] = 1, o.stages[0].level_mm[0] = 0, o.stages[0].iters[0] = 15;
    compare("masked rigid MI", F, M, &o, comm, 0, 1e-6, 1e-9, 0, 0);
    o.stages[0] = ffdp_stage_default(FFDP_STAGE_GREEDY);
    o.stages[0].metric.kind = FFDP_METRIC_CC, o.stages[0].metric.window = 3;
    o.stages[0].iters[0] = 10, o.stages[0].iters[1] = 8, o.stages[0].iters[2] = 5;
    compare("masked greedy CC", F, M, &o, comm, 1e-5, 1e-6, 0, 0, 0);
    o.stages[0].kind = FFDP_STAGE_SYN;
    compare("masked SyN CC", F, M, &o, comm, 1e-5, 1e-6, 0, 0, 0);
    o.fixed_mask = o.moving_mask = NULL;
    ffdp_volume_free(fm), ffdp_volume_free(mm);
    ffdp_volume_free(F), ffdp_volume_free(M);
  }
  /* the small brain pair: moments, rigid MI, greedy CC */
  {
    ffdp_volume *F = NULL, *M = NULL;
    const char *dir = getenv("FFDP_TEST_BRAINS"); /* elsewhere than the checkout (GPU machine) */
    char pf[1024], pm[1024];
    snprintf(pf, sizeof pf, "%s/MNI152_T1_2mm.nii.gz", dir ? dir : FFDP_TEST_DATA "/brain");
    snprintf(pm, sizeof pm, "%s/T1_head_2mm.nii.gz", dir ? dir : FFDP_TEST_DATA "/brain");
    if (ffdp_volume_load(pf, &F, &err) || ffdp_volume_load(pm, &M, &err)) {
      printf("skipping the brain pair: %s\n", err.msg);
    } else {
      ffdp_reg_options o;
      ffdp_reg_options_preset(&o, "greedy", &err);
      o.nstages = 2;
      o.stages[1] = o.stages[2];
      o.stages[0].iters[0] = 40, o.stages[0].iters[1] = 20, o.stages[0].iters[2] = 10;
      o.stages[1].iters[0] = 40, o.stages[1].iters[1] = 20, o.stages[1].iters[2] = 5;
      compare("brains rigid + greedy", F, M, &o, comm, 1e-5, 1e-6, 1e-9, 0, 0);
      o.nstages = 1, o.stages[0] = o.stages[1], o.moments = 0;
      compare("brains greedy", F, M, &o, comm, 1e-5, 1e-6, 0, 0, 1);
      o.stages[0].kind = FFDP_STAGE_SYN, o.stages[0].iters[0] = 20, o.stages[0].iters[1] = 10, o.stages[0].iters[2] = 3;
      compare("brains SyN", F, M, &o, comm, 1e-5, 1e-6, 0, 0, 0);
      ffdp_reg_options_preset(&o, "rigid", &err);
      compare("brains rigid", F, M, &o, comm, 0, 1e-6, 1e-9, 0, 0);
    }
    ffdp_volume_free(F), ffdp_volume_free(M);
  }
  int rc = check_done("test_register_ranks"), any;
  MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  ffdp_comm_free(comm);
  MPI_Finalize();
  return any;
}
