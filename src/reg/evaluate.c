/* Applying a result to images and scoring it (NCC, folding). */
#include "reg/reg_internal.h"
#include "core/err.h"
#include "core/comm_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

ffdp_status ffdp_warp_image_planes(const ffdp_volume *moving, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_mat4 affine,
                                   const ffdp_volume *u, int interp, int64_t z0, int64_t z1, float *out, ffdp_error *err) {
  if (z0 < 0 || z1 > dim[2] || z0 > z1)
    return ffdp_fail(err, FFDP_ERR_INVALID, "planes [%lld, %lld) of a grid of %lld", (long long)z0, (long long)z1,
                     (long long)dim[2]);
  if (u && (u->ncomp != 3 || u->dim[0] != dim[0] || u->dim[1] != dim[1] || u->dim[2] != dim[2]))
    return ffdp_fail(err, FFDP_ERR_INVALID, "the displacement field is not on the output grid");
  ffdp_warp w;
  if (!ffdp_warp_fold(affine, vox2world, moving->vox2world, interp == 1 ? FFDP_INTERP_NEAREST : FFDP_INTERP_LINEAR,
                      FFDP_PAD_ZERO, &w))
    return ffdp_fail(err, FFDP_ERR_INVALID, "moving image orientation is singular");
  ffdp_slab fs = ffdp_slab_whole(dim[0], dim[1], dim[2]), ms = ffdp_slab_whole(moving->dim[0], moving->dim[1], moving->dim[2]);
  fs.z0 = fs.zlo = z0, fs.z1 = fs.zhi = z1; /* the output holds just these planes */
  const float *ud = u ? u->data + z0 * dim[0] * dim[1] * 3 : NULL;
  if (interp == 2) ffdp_sample_labels_f32(&w, &fs, ud, &ms, moving->data, out);
  else ffdp_sample_fwd_f32(&w, &fs, ud, &ms, moving->data, moving->ncomp, out);
  return FFDP_OK;
}

ffdp_status ffdp_warp_image(const ffdp_volume *moving, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_mat4 affine,
                            const ffdp_volume *u, int interp, ffdp_volume **out, ffdp_error *err) {
  ffdp_volume *ur = NULL;
  ffdp_status st;
  if (u && (u->dim[0] != dim[0] || u->dim[1] != dim[1] || u->dim[2] != dim[2] ||
            memcmp(&u->vox2world, &vox2world, sizeof vox2world) != 0)) {
    if ((st = ffdp_volume_resample(u, dim, vox2world, 0, 1, &ur, err))) return st;
    u = ur;
  }
  if ((st = ffdp_volume_create(dim, moving->ncomp, vox2world, out, err))) {
    ffdp_volume_free(ur);
    return st;
  }
  st = ffdp_warp_image_planes(moving, dim, vox2world, affine, u, interp, 0, dim[2], (*out)->data, err);
  ffdp_volume_free(ur);
  if (st) {
    ffdp_volume_free(*out);
    *out = NULL;
    return st;
  }
  (*out)->source_dtype = moving->source_dtype;
  return FFDP_OK;
}

/* The five sums over chunks of NCC_CHUNK values from the start, each chunk's added in order:
 * the same bits for any thread count (an OpenMP reduction adds the threads' parts in an order
 * of its own: the reported NCC had differed in its 13th digit between 1 and 2 threads). */
enum { NCC_CHUNK = 16384 };

static void ncc_chunk(const float *a, const float *b, int64_t n, double o[5]) {
  double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
  for (int64_t i = 0; i < n; i++) {
    const double x = a[i], y = b[i];
    sa += x, sb += y, saa += x * x, sbb += y * y, sab += x * y;
  }
  o[0] = sa, o[1] = sb, o[2] = saa, o[3] = sbb, o[4] = sab;
}

void ffdp_ncc_add(ffdp_ncc_sums *s, const float *a, const float *b, int64_t n) {
  if (n <= 0) return;
  const int64_t nc = (n + NCC_CHUNK - 1) / NCC_CHUNK;
  /* the chunks' sums, made in parallel where there is room for them, else one at a time
   * below: the same sums added in the same order either way */
  double *part = nc > 1 ? malloc((size_t)nc * 5 * sizeof(double)) : NULL;
  if (part) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nc; c++) {
      const int64_t i0 = c * NCC_CHUNK;
      ncc_chunk(a + i0, b + i0, n - i0 < NCC_CHUNK ? n - i0 : NCC_CHUNK, part + 5 * c);
    }
  }
  for (int64_t c = 0; c < nc; c++) {
    double one[5];
    const int64_t i0 = c * NCC_CHUNK;
    const double *p = part ? part + 5 * c : one;
    if (!part) ncc_chunk(a + i0, b + i0, n - i0 < NCC_CHUNK ? n - i0 : NCC_CHUNK, one);
    s->sa += p[0], s->sb += p[1], s->saa += p[2], s->sbb += p[3], s->sab += p[4];
  }
  s->n += (double)n;
  free(part);
}

double ffdp_ncc_value(const ffdp_ncc_sums *s) {
  const double c = s->n;
  if (c < 2) return 0;
  double cov = s->sab / c - s->sa / c * s->sb / c, va = s->saa / c - s->sa * s->sa / (c * c),
         vb = s->sbb / c - s->sb * s->sb / (c * c);
  return va > 0 && vb > 0 ? cov / sqrt(va * vb) : 0;
}

double ffdp_global_ncc(const ffdp_volume *a, const ffdp_volume *b) {
  ffdp_ncc_sums s = {0};
  ffdp_ncc_add(&s, a->data, b->data, ffdp_volume_nvox(a));
  return ffdp_ncc_value(&s);
}

/* Whether det(A + du/dp · Wf^-1) <= 0 at one voxel, from the two samples of each axis's
 * difference (lo, hi: component 0 of the voxels either side, or the voxel itself at an edge)
 * and its scale (1/2 central, 1 one-sided, 0 on an axis of one voxel). Every voxel takes these
 * same operations in this order, so the count is the same however the loops around it run. */
static inline int64_t folded_at(const float *xl, const float *xh, double hx, const float *yl, const float *yh, double hy,
                                const float *zl, const float *zh, double hz, const double A[3][3], const double W[3][3]) {
  double du[3][3]; /* du[a][k] = d u_a / d p_k (voxel) */
  for (int a = 0; a < 3; a++) {
    du[a][0] = (double)(xh[a] - xl[a]) * hx;
    du[a][1] = (double)(yh[a] - yl[a]) * hy;
    du[a][2] = (double)(zh[a] - zl[a]) * hz;
  }
  double J[3][3]; /* A + du/dx, du/dx = du/dp · Wf^-1 */
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) {
      double s = A[a][b];
      for (int k = 0; k < 3; k++) s += du[a][k] * W[k][b];
      J[a][b] = s;
    }
  const double det = J[0][0] * (J[1][1] * J[2][2] - J[1][2] * J[2][1]) - J[0][1] * (J[1][0] * J[2][2] - J[1][2] * J[2][0]) +
                     J[0][2] * (J[1][0] * J[2][1] - J[1][1] * J[2][0]);
  return !(det > 0);
}

/* The neighbours of index c on an axis of d voxels, in units of that axis's stride, and the
 * difference's scale: central inside, one-sided at an edge, none on an axis of one voxel.
 * x / 2 and x * 0.5 are the same number (a power of two): no division per voxel. */
static inline void axis_step(int64_t c, int64_t d, int64_t *lo, int64_t *hi, double *h) {
  *lo = c > 0 ? -1 : 0, *hi = c < d - 1 ? 1 : 0;
  const int n = (c < d - 1) + (c > 0);
  *h = n == 2 ? 0.5 : n == 1 ? 1.0 : 0.0;
}

/* Rows are the unit of work: a row's y and z neighbours are fixed, and its inner voxels take
 * central x differences without a test, a loop the compiler vectorizes (1008^3 on 16 cores: 2.29 s
 * with per-voxel edge tests and index work, 0.82 s by rows; bench/gpu/NOTES.md run 190). */
int64_t ffdp_folding_count(const ffdp_volume *u, ffdp_mat4 affine, int64_t z0, int64_t z1) {
  const int64_t nx = u->dim[0], ny = u->dim[1], nz = u->dim[2], R = 3 * nx, P = R * ny;
  if (z0 < 0) z0 = 0;
  if (z1 > nz) z1 = nz;
  if (z1 <= z0 || nx < 1 || ny < 1) return 0;
  ffdp_mat4 winv;
  ffdp_mat4_inverse(u->vox2world, &winv);
  double A[3][3], W[3][3];
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) A[a][b] = affine.m[a][b], W[a][b] = winv.m[a][b];
  const float *const d = u->data;
  int64_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad)
  for (int64_t row = z0 * ny; row < z1 * ny; row++) {
    const int64_t z = row / ny, y = row - z * ny;
    int64_t ylo, yhi, zlo, zhi;
    double hy, hz;
    axis_step(y, ny, &ylo, &yhi, &hy);
    axis_step(z, nz, &zlo, &zhi, &hz);
    const float *r = d + z * P + y * R; /* this row; the neighbours' rows below */
    const float *yl = r + ylo * R, *yh = r + yhi * R, *zl = r + zlo * P, *zh = r + zhi * P;
    int64_t n = 0;
    for (int64_t x = 0; x < nx; x++) {
      if (x == 1 && nx > 2) { /* the inner voxels: central x differences */
        for (; x < nx - 1; x++) {
          const int64_t o = 3 * x;
          n += folded_at(r + o - 3, r + o + 3, 0.5, yl + o, yh + o, hy, zl + o, zh + o, hz, A, W);
        }
      }
      int64_t xlo, xhi;
      double hx;
      axis_step(x, nx, &xlo, &xhi, &hx);
      const int64_t o = 3 * x;
      n += folded_at(r + o + 3 * xlo, r + o + 3 * xhi, hx, yl + o, yh + o, hy, zl + o, zh + o, hz, A, W);
    }
    bad += n;
  }
  return bad;
}

double ffdp_folding_fraction(const ffdp_volume *u, ffdp_mat4 affine) {
  return (double)ffdp_folding_count(u, affine, 0, u->dim[2]) / (double)ffdp_volume_nvox(u);
}

ffdp_status ffdp_folding_fraction_shared(ffdp_volume *u, ffdp_mat4 affine, const ffdp_comm *comm, double *fraction,
                                         ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  *fraction = 0;
  if (u->ncomp != 3) return ffdp_fail(err, FFDP_ERR_INVALID, "the folding of a field needs 3 components");
  int64_t z0, z1;
  ffdp_comm_share(comm, u->dim[2], &z0, &z1);
  /* the neighbours' edge planes, for the central differences across the share's ends (two
   * collective fetches: below, then above; a rank without planes asks for none) */
  const int64_t nz = u->dim[2], P3 = u->dim[0] * u->dim[1] * 3;
  float *edge = malloc((size_t)P3 * sizeof(float));
  ffdp_status st = c->agree(c, edge ? FFDP_OK : ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory for the folding check"), err);
  for (int side = 0; side < 2 && !st; side++) {
    const int64_t want = side == 0 ? z0 - 1 : z1, take = z1 > z0 && want >= 0 && want < nz;
    st = c->planes(c, P3, z0, z1, u->data + z0 * P3, want, want + take, edge, err);
    if (!st && take) memcpy(u->data + want * P3, edge, (size_t)P3 * sizeof(float));
  }
  free(edge);
  if ((st = c->agree(c, st, err))) return st;
  double bad = (double)ffdp_folding_count(u, affine, z0, z1); /* counts: the sum is exact */
  c->sum(c, &bad, 1);
  *fraction = bad / (double)ffdp_volume_nvox(u);
  return FFDP_OK;
}

void ffdp_ncc_sums_reduce(ffdp_ncc_sums *s, const ffdp_comm *comm) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  double v[6] = {s->n, s->sa, s->sb, s->saa, s->sbb, s->sab};
  c->sum(c, v, 6);
  s->n = v[0], s->sa = v[1], s->sb = v[2], s->saa = v[3], s->sbb = v[4], s->sab = v[5];
}
