/* Transform chains as antsApplyTransforms reads them: `-t T1 -t T2 ... -t Tn` maps a
 * reference point x into the input image at Tn(...T2(T1(x))). So `-t 1Warp -t 0GenericAffine`
 * displaces the fixed-space point by the warp (defined on the fixed grid) and then maps it
 * to moving space with the affine, as ANTs does. The chain is folded into one world
 * displacement per reference voxel and handed to the sampler. */
#include "reg/chain.h"
#include "core/err.h"
#include "ops/cpu_common.h"
#include <math.h>
#include <stdlib.h>

#define REAL float
#define SUFFIX chain
#include "ops/interp_impl.h"
#undef REAL
#undef SUFFIX

/* ffdp_mat4_apply's arithmetic, inlined: the chain calls it several times per voxel. */
static inline void apply_pt(const ffdp_mat4 *a, const double in[3], double out[3]) {
  double t[3];
  for (int i = 0; i < 3; i++) t[i] = a->m[i][0] * in[0] + a->m[i][1] * in[1] + a->m[i][2] * in[2] + a->m[i][3];
  out[0] = t[0], out[1] = t[1], out[2] = t[2];
}

/* Field value (3 comps) at world point X, trilinear with border clamping (every tap inside). */
static inline void field_at(const ffdp_volume *u, const ffdp_mat4 *winv, const double X[3], double out[3]) {
  double q[3];
  apply_pt(winv, X, q);
  axis_taps_chain ax = axis_linear_chain(q[0], u->dim[0], FFDP_PAD_BORDER);
  axis_taps_chain ay = axis_linear_chain(q[1], u->dim[1], FFDP_PAD_BORDER);
  axis_taps_chain az = axis_linear_chain(q[2], u->dim[2], FFDP_PAD_BORDER);
  const int64_t sx = (ax.i1 - ax.i0) * 3, sy = (ay.i1 - ay.i0) * u->dim[0] * 3,
                sz = (az.i1 - az.i0) * u->dim[0] * u->dim[1] * 3;
  const float *p = u->data + ((az.i0 * u->dim[1] + ay.i0) * u->dim[0] + ax.i0) * 3;
  for (int c = 0; c < 3; c++, p++) {
    const float v[8] = {p[0], p[sx], p[sy], p[sy + sx], p[sz], p[sz + sx], p[sz + sy], p[sz + sy + sx]};
    out[c] = trilinear_chain(v, ax.f, ay.f, az.f, NULL);
  }
}

/* World point X after the first n items of the chain, into Y. */
static inline void chain_point(const ffdp_chain_item *items, int n, const ffdp_mat4 *winv, const double X[3], double Y[3]) {
  Y[0] = X[0], Y[1] = X[1], Y[2] = X[2];
  for (int k = 0; k < n; k++) {
    if (items[k].field) {
      double d[3];
      field_at(items[k].field, &winv[k], Y, d);
      for (int a = 0; a < 3; a++) Y[a] += d[a];
    } else {
      apply_pt(&items[k].affine, Y, Y);
    }
  }
}

/* The chain folded into one world displacement per voxel of planes [z0, z1) of the grid. */
static void chain_disp(const ffdp_chain_item *items, int n, const ffdp_mat4 *winv, const int64_t dim[3],
                       ffdp_mat4 vox2world, int64_t z0, int64_t z1, float *disp) {
  const int64_t nx = dim[0], ny = dim[1];
#pragma omp parallel for collapse(2)
  for (int64_t z = z0; z < z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++) {
        double p[3] = {x, y, z}, X[3], Y[3];
        apply_pt(&vox2world, p, X);
        chain_point(items, n, winv, X, Y);
        float *o = disp + 3 * (((z - z0) * ny + y) * nx + x);
        for (int a = 0; a < 3; a++) o[a] = (float)(Y[a] - X[a]);
      }
}

void ffdp_chain_reach(const ffdp_chain_item *items, int upto, const int64_t dim[3], ffdp_mat4 vox2world, int64_t z0,
                      int64_t z1, ffdp_mat4 world2vox, double *qmin, double *qmax) {
  ffdp_mat4 winv[FFDP_MAX_CHAIN];
  for (int k = 0; k < upto; k++)
    if (items[k].field) ffdp_mat4_inverse(items[k].field->vox2world, &winv[k]);
  const int64_t nx = dim[0], ny = dim[1];
  double lo = INFINITY, hi = -INFINITY;
  int bad = 0;
  /* the same arithmetic as chain_disp, point by point, keeping only the extremes */
#pragma omp parallel for collapse(2) reduction(min : lo) reduction(max : hi) reduction(| : bad)
  for (int64_t z = z0; z < z1; z++)
    for (int64_t y = 0; y < ny; y++)
      for (int64_t x = 0; x < nx; x++) {
        double p[3] = {x, y, z}, X[3], Y[3], q[3];
        apply_pt(&vox2world, p, X);
        chain_point(items, upto, winv, X, Y);
        apply_pt(&world2vox, Y, q);
        if (!isfinite(q[2])) bad = 1;
        else lo = q[2] < lo ? q[2] : lo, hi = q[2] > hi ? q[2] : hi;
      }
  if (bad) lo = -INFINITY, hi = INFINITY; /* a non-finite point: every plane */
  *qmin = lo, *qmax = hi;
}

void ffdp_chain_planes(double qmin, double qmax, int64_t nz, int64_t *a, int64_t *b) {
  if (nz < 1) {
    *a = *b = 0;
    return;
  }
  if (!(qmin <= qmax)) qmin = qmax = 0; /* no points: one plane, so the grid is never empty */
  /* interpolation reads floor(q) and the plane after; one more plane each side covers the
   * float rounding of the folded displacement the sampler is handed */
  double lo = floor(qmin) - 1, hi = floor(qmax) + 3;
  lo = lo < 0 ? 0 : lo > (double)(nz - 1) ? (double)(nz - 1) : lo;
  hi = hi > (double)nz ? (double)nz : hi < lo + 1 ? lo + 1 : hi;
  *a = (int64_t)lo, *b = (int64_t)hi;
}

ffdp_status ffdp_chain_apply_planes(const ffdp_chain_item *items, int n, const ffdp_volume *input,
                                    const int64_t dim[3], ffdp_mat4 vox2world, int interp, int64_t z0, int64_t z1,
                                    float *out, float *disp, ffdp_error *err) {
  ffdp_mat4 winv[FFDP_MAX_CHAIN];
  if (n > FFDP_MAX_CHAIN) return ffdp_fail(err, FFDP_ERR_INVALID, "at most %d transforms", FFDP_MAX_CHAIN);
  if (z0 < 0 || z1 > dim[2] || z1 < z0) return ffdp_fail(err, FFDP_ERR_INVALID, "planes [%lld, %lld) of %lld",
                                                         (long long)z0, (long long)z1, (long long)dim[2]);
  for (int k = 0; k < n; k++)
    if (items[k].field) ffdp_mat4_inverse(items[k].field->vox2world, &winv[k]);
  chain_disp(items, n, winv, dim, vox2world, z0, z1, disp);
  /* the block as a grid of its own (shifted by z0 planes), its displacement lent, not copied */
  ffdp_volume blk = {{dim[0], dim[1], z1 - z0}, 3, disp, vox2world, FFDP_DT_FLOAT32, 0};
  for (int i = 0; i < 3; i++) blk.vox2world.m[i][3] += vox2world.m[i][2] * (double)z0;
  return ffdp_warp_image_planes(input, blk.dim, blk.vox2world, ffdp_mat4_identity(), &blk, interp, 0, z1 - z0, out, err);
}

ffdp_status ffdp_chain_apply(const ffdp_chain_item *items, int n, const ffdp_volume *input, const int64_t dim[3],
                             ffdp_mat4 vox2world, int interp, ffdp_volume **out, ffdp_error *err) {
  *out = NULL;
  const int64_t P = dim[0] * dim[1] * input->ncomp, block = ffdp_chain_block_planes(dim);
  float *disp = malloc((size_t)(block * dim[0] * dim[1] * 3) * sizeof(float));
  ffdp_status st = disp ? ffdp_volume_create(dim, input->ncomp, vox2world, out, err)
                        : ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory applying transforms");
  for (int64_t z = 0; !st && z < dim[2]; z += block) {
    const int64_t z1 = z + block < dim[2] ? z + block : dim[2];
    st = ffdp_chain_apply_planes(items, n, input, dim, vox2world, interp, z, z1, (*out)->data + z * P, disp, err);
  }
  free(disp);
  if (st) ffdp_volume_free(*out), *out = NULL;
  else (*out)->source_dtype = input->source_dtype;
  return st;
}

int64_t ffdp_chain_block_planes(const int64_t dim[3]) {
  const int64_t P = dim[0] * dim[1] > 0 ? dim[0] * dim[1] : 1, b = (int64_t)(8 << 20) / P; /* ~8 M voxels */
  return b < 1 ? 1 : b > dim[2] ? (dim[2] > 0 ? dim[2] : 1) : b;
}
