/* The outputs of `ffdp register`, written by every rank for its own planes: Warped (the moving
 * image on the fixed grid, in its own intensities), the affine, the warps, and the scores
 * printed with them (global NCC, folding). One process is the one-rank case of the same code.
 * No rank ever holds a whole output: each warps its share of the fixed planes from the moving
 * planes those points reach, and the files are written by all ranks together (.nii by
 * positional writes, .nii.gz as one gzip member per rank, .zarr by chunk rows). */
#include "cli/cli.h"
#include "cli/register_outputs.h"
#include "core/err.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Back from [0, 1] to the image's own intensities (rounded for integer types), as the
 * normalization x -> (x - lo) / (hi - lo) came, on planes [z0, z1). */
static void restore_planes(ffdp_volume *v, int64_t z0, int64_t z1, double lo, double hi) {
  const int64_t *d = ffdp_volume_dim(v), P = d[0] * d[1];
  float *p = ffdp_volume_data(v) + z0 * P;
  const int dt = ffdp_volume_source_dtype(v);
  const int integral = dt != FFDP_DT_FLOAT32 && dt != FFDP_DT_FLOAT64;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < (z1 - z0) * P; i++) {
    double x = p[i] * (hi - lo) + lo;
    p[i] = (float)(integral ? nearbyint(x) : x);
  }
}

/* Planes [*mz0, *mz1) of the moving grid (mdim, mw) that trilinear samples at x -> A·x + u(x)
 * can touch for x on fixed planes [z0, z1) (fixed grid fdim, fw): the box's corners mapped by
 * the affine (the extremes of a linear map lie at corners) widened by the largest displacement
 * on those planes, plus a plane for interpolation and one for rounding. */
static void moving_reach(const int64_t fdim[3], ffdp_mat4 fw, ffdp_mat4 A, const ffdp_volume *u, int64_t z0, int64_t z1,
                         const int64_t mdim[3], ffdp_mat4 mw, int64_t *mz0, int64_t *mz1) {
  ffdp_mat4 minv, T;
  ffdp_mat4_inverse(mw, &minv);
  T = ffdp_mat4_mul(minv, ffdp_mat4_mul(A, fw));
  double lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < 8; k++) {
    const double p[3] = {k & 1 ? (double)fdim[0] - 1 : 0, k & 2 ? (double)fdim[1] - 1 : 0, k & 4 ? (double)(z1 - 1) : (double)z0};
    const double q = T.m[2][0] * p[0] + T.m[2][1] * p[1] + T.m[2][2] * p[2] + T.m[2][3];
    lo = q < lo ? q : lo, hi = q > hi ? q : hi;
  }
  double umax = 0;
  if (u) {
    const int64_t P = fdim[0] * fdim[1];
    const float *d = ffdp_volume_cdata(u) + 3 * z0 * P;
#pragma omp parallel for reduction(max : umax)
    for (int64_t i = 0; i < (z1 - z0) * P; i++) {
      const double n = sqrt((double)d[3 * i] * d[3 * i] + (double)d[3 * i + 1] * d[3 * i + 1] + (double)d[3 * i + 2] * d[3 * i + 2]);
      umax = n > umax ? n : umax;
    }
  }
  const double dz = umax * sqrt(minv.m[2][0] * minv.m[2][0] + minv.m[2][1] * minv.m[2][1] + minv.m[2][2] * minv.m[2][2]);
  double a = floor(lo - dz) - 2, b = ceil(hi + dz) + 3;
  a = a < 0 ? 0 : a > (double)mdim[2] ? (double)mdim[2] : a;
  b = b < 0 ? 0 : b > (double)mdim[2] ? (double)mdim[2] : b;
  *mz0 = (int64_t)a, *mz1 = (int64_t)b;
  if (*mz1 <= *mz0) { /* every point lies outside: one plane at the near end, sampled as padding */
    *mz0 = *mz0 >= mdim[2] ? mdim[2] - 1 : *mz0;
    *mz1 = *mz0 + 1;
  }
}

/* Warped for planes [z0, z1), a block at a time, written by every rank together; the NCC sums
 * against the fixed planes F (this rank's planes, in order) on the way. */
static ffdp_status write_warped(const reg_outputs *o, const ffdp_volume *M, const float *F, const ffdp_volume *u,
                                int64_t z0, int64_t z1, ffdp_ncc_sums *sums, ffdp_error *err) {
  const int64_t *dim = o->fdim, P = dim[0] * dim[1];
  const int64_t block = P > 0 && (int64_t)(64 << 20) / P > 1 ? (int64_t)(64 << 20) / P : 1; /* ~256 MB of floats */
  const int64_t nb = block < z1 - z0 ? block : z1 - z0;
  float *buf = malloc((size_t)(nb > 0 ? nb : 1) * (size_t)P * sizeof(float));
  ffdp_plane_writer *w = NULL;
  ffdp_status st = ffdp_plane_writer_open_shared(o->warped, dim, o->fw, FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, o->comm, &w, err);
  if (st) {
    free(buf);
    return st;
  }
  if (!buf) st = ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory writing '%s'", o->warped);
  for (int64_t z = z0; !st && z < z1; z += block) {
    const int64_t e = z + block < z1 ? z + block : z1;
    st = ffdp_warp_image_planes(M, dim, o->fw, o->A, u, 0, z, e, buf, err);
    if (!st) ffdp_ncc_add(sums, F + (z - z0) * P, buf, (e - z) * P);
    if (!st) st = ffdp_plane_writer_put(w, buf, e - z, err);
  }
  free(buf);
  if (st) { /* collective either way: the others learn it */
    ffdp_plane_writer_abort(w);
    return ffdp_comm_agree(o->comm, st, err);
  }
  return ffdp_plane_writer_close(w, err);
}

/* The affine, the warp and the inverse warp (rank 0 the affine, every rank its planes of the
 * fields). Collective. */
static ffdp_status write_transforms(const reg_outputs *o, const ffdp_volume *u, const ffdp_volume *ui, ffdp_error *err) {
  const ffdp_comm *c = o->comm;
  ffdp_status st = ffdp_comm_rank(c) == 0 ? ffdp_affine_save_itk(o->A, o->affine_txt, err) : FFDP_OK;
  if ((st = ffdp_comm_agree(c, st, err))) return st;
  if (u && (st = ffdp_warp_save_ants_shared(u, o->A, o->warp, c, err))) return st;
  if (ui && (st = ffdp_inverse_warp_save_ants_shared(ui, o->inverse, c, err))) return st;
  return FFDP_OK;
}

/* One process: the transforms written by a thread of their own (and its own OpenMP team, as
 * large as the main one) while folding and Warped are computed. H100 machine, 16 cores
 * (bench/gpu/NOTES.md runs 180-181): the outputs of the 0.5 mm SyN preset 0.84-0.96 -> 0.81-0.82 s
 * (teams of 4 and 8 threads: 0.71-0.96), medium 0.19-0.22 -> 0.15-0.18 s. */
typedef struct {
  const reg_outputs *o;
  const ffdp_volume *u, *ui;
  ffdp_status st;
  ffdp_error err;
  double seconds;
} transforms_job;

static void *transforms_main(void *arg) {
  transforms_job *j = arg;
  const double t0 = cli_now();
  j->st = write_transforms(j->o, j->u, j->ui, &j->err);
  j->seconds = cli_now() - t0;
  return NULL;
}

/* The folding fraction and Warped (with the global NCC) of this rank's planes [z0, z1). */
static ffdp_status fold_and_warped(reg_outputs *o, ffdp_volume **F, ffdp_volume **M, const ffdp_volume *u, int64_t z0,
                                   int64_t z1, ffdp_error *err) {
  const ffdp_comm *c = o->comm;
  const double t0 = cli_now();
  o->fold = 0;
  /* the warp's planes outside the share are the result's to fill: the neighbours' edge planes */
  ffdp_status st = u ? ffdp_folding_fraction_shared((ffdp_volume *)u, o->A, c, &o->fold, err) : FFDP_OK;
  if (st) return st;
  o->t_fold = cli_now() - t0;

  /* Warped is the moving image in its own intensities: normalize-then-restore reproduces them
   * through the same float steps whichever way the planes arrive, so every file is the same
   * for any rank count. The fixed planes for the NCC are the normalized ones. */
  const int whole_moving = !o->sharded && !o->remapped;
  ffdp_volume *Fp = NULL, *Mr = NULL;
  const float *Fd = NULL;
  if (o->remapped) { /* winsorized / matched: read the fixed planes again and scale by min/max */
    ffdp_volume_free(*F), *F = NULL;
    if (z1 > z0 && !(st = ffdp_volume_load_planes(o->fixed, z0, z1, &Fp, err)))
      ffdp_volume_scale_planes(Fp, 0, z1 - z0, o->flo, o->fhi), Fd = ffdp_volume_cdata(Fp);
  } else {
    Fd = ffdp_volume_cdata(*F) + z0 * o->fdim[0] * o->fdim[1];
  }
  if (!st && whole_moving) {
    restore_planes(*M, 0, ffdp_volume_dim(*M)[2], o->mlo, o->mhi);
  } else if (!st) { /* the moving planes this rank's points reach, on the moving image's own grid */
    const int64_t *md = ffdp_volume_dim(*M);
    const int64_t mdim[3] = {md[0], md[1], md[2]};
    const ffdp_mat4 mw = ffdp_volume_vox2world(*M);
    ffdp_volume_free(*M), *M = NULL;
    int64_t mz0 = 0, mz1 = 0;
    if (z1 > z0) moving_reach(o->fdim, o->fw, o->A, u, z0, z1, mdim, mw, &mz0, &mz1);
    if (z1 > z0 && !(st = ffdp_volume_load_share(o->moving, mz0, mz1, &Mr, err))) {
      ffdp_volume_scale_planes(Mr, mz0, mz1, o->mlo, o->mhi);
      restore_planes(Mr, mz0, mz1, o->mlo, o->mhi);
    }
  }
  if ((st = ffdp_comm_agree(c, st, err))) {
    ffdp_volume_free(Fp), ffdp_volume_free(Mr);
    return st;
  }
  const double t1 = cli_now();
  ffdp_ncc_sums sums = {0};
  st = write_warped(o, Mr ? Mr : *M, Fd, u, z0, z1, &sums, err);
  ffdp_volume_free(Fp), ffdp_volume_free(Mr);
  if (st) return st;
  ffdp_ncc_sums_reduce(&sums, c);
  o->ncc = ffdp_ncc_value(&sums);
  o->t_warped = cli_now() - t1;
  return FFDP_OK;
}

ffdp_status reg_write_outputs(reg_outputs *o, ffdp_volume **F, ffdp_volume **M, ffdp_error *err) {
  const ffdp_comm *c = o->comm;
  const ffdp_volume *u = ffdp_reg_result_warp(o->res), *ui = ffdp_reg_result_inverse_warp(o->res);
  int64_t z0, z1;
  ffdp_comm_share(c, o->fdim[2], &z0, &z1);
  if (u) { /* the result must hold exactly these planes */
    int64_t r0, r1;
    ffdp_reg_result_planes(o->res, &r0, &r1);
    if (r0 > z0 || r1 < z1)
      return ffdp_comm_agree(c, ffdp_fail(err, FFDP_ERR_INVALID, "the warp holds planes [%lld, %lld), not this rank's share",
                                          (long long)r0, (long long)r1), err);
  }
  o->t_fold = o->t_warped = o->t_transforms = o->t_transforms_all = 0;
  /* one process: the transforms made meanwhile (ranks write them together afterwards: their
   * writers agree collectively, which two threads of a rank must not do at once) */
  transforms_job tj = {o, u, ui, FFDP_OK, {0}, 0};
  pthread_t thr;
  const char *ov = getenv("FFDP_OUTPUTS_OVERLAP"); /* "0": one after the other, as ranks do */
  const int overlap = ffdp_comm_size(c) < 2 && !(ov && !strcmp(ov, "0")) && pthread_create(&thr, NULL, transforms_main, &tj) == 0;
  ffdp_status st = fold_and_warped(o, F, M, u, z0, z1, err);
  if (overlap) {
    const double tw = cli_now();
    pthread_join(thr, NULL);
    o->t_transforms = cli_now() - tw, o->t_transforms_all = tj.seconds;
    if (st && !tj.st) { /* Warped failed: the transforms go too, as they would not have been written */
      unlink(o->affine_txt);
      if (u) unlink(o->warp);
      if (ui) unlink(o->inverse);
    }
    if (!st && tj.st) *err = tj.err, st = tj.st;
    return st;
  }
  if (st) return st;
  const double t2 = cli_now();
  st = write_transforms(o, u, ui, err);
  o->t_transforms = o->t_transforms_all = cli_now() - t2;
  return st;
}
