/* Transform chains as antsApplyTransforms reads them: `-t T1 -t T2 ... -t Tn` maps a
 * reference point x into the input image at Tn(...T2(T1(x))). So `-t 1Warp -t 0GenericAffine`
 * displaces the fixed-space point by the warp (defined on the fixed grid) and then maps it
 * to moving space with the affine, as ANTs does. The chain is folded into one world
 * displacement per reference voxel and handed to the sampler. */
#include "reg/chain.h"
#include "core/err.h"
#include "ops/cpu_common.h"
#include <stdlib.h>

#define REAL float
#define SUFFIX chain
#include "ops/interp_impl.h"
#undef REAL
#undef SUFFIX

/* Field value (3 comps) at world point X, trilinear with border clamping. */
static void field_at(const ffdp_volume *u, ffdp_mat4 winv, const double X[3], double out[3]) {
  double q[3];
  ffdp_mat4_apply(winv, X, q);
  ffdp_slab s = ffdp_slab_whole(u->dim[0], u->dim[1], u->dim[2]);
  axis_taps_chain ax = axis_linear_chain(q[0], u->dim[0], FFDP_PAD_BORDER);
  axis_taps_chain ay = axis_linear_chain(q[1], u->dim[1], FFDP_PAD_BORDER);
  axis_taps_chain az = axis_linear_chain(q[2], u->dim[2], FFDP_PAD_BORDER);
  for (int c = 0; c < 3; c++) {
    float v[8];
    corners_chain(u->data, &s, 3, c, &ax, &ay, &az, v);
    out[c] = trilinear_chain(v, ax.f, ay.f, az.f, NULL);
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
        ffdp_mat4_apply(vox2world, p, X);
        Y[0] = X[0], Y[1] = X[1], Y[2] = X[2];
        for (int k = 0; k < n; k++) {
          if (items[k].field) {
            double d[3];
            field_at(items[k].field, winv[k], Y, d);
            for (int a = 0; a < 3; a++) Y[a] += d[a];
          } else {
            ffdp_mat4_apply(items[k].affine, Y, Y);
          }
        }
        float *o = disp + 3 * (((z - z0) * ny + y) * nx + x);
        for (int a = 0; a < 3; a++) o[a] = (float)(Y[a] - X[a]);
      }
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
  ffdp_volume blk = {{dim[0], dim[1], z1 - z0}, 3, disp, vox2world, FFDP_DT_FLOAT32};
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
  const int64_t P = dim[0] * dim[1] > 0 ? dim[0] * dim[1] : 1, b = (int64_t)(32 << 20) / P; /* ~32 M voxels */
  return b < 1 ? 1 : b > dim[2] ? (dim[2] > 0 ? dim[2] : 1) : b;
}
