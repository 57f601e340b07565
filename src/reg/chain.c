/* Transform chains as antsApplyTransforms reads them: `-t T1 -t T2 ... -t Tn` maps a
 * reference point x into the input image at Tn(...T2(T1(x))). So `-t 1Warp -t 0GenericAffine`
 * displaces the fixed-space point by the warp (defined on the fixed grid) and then maps it
 * to moving space with the affine, as ANTs does. The chain is folded into one world
 * displacement per reference voxel and handed to the sampler. */
#include "reg/chain.h"
#include "core/err.h"
#include "ops/cpu_common.h"

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

ffdp_status ffdp_chain_apply(const ffdp_chain_item *items, int n, const ffdp_volume *input, const int64_t dim[3],
                             ffdp_mat4 vox2world, int interp, ffdp_volume **out, ffdp_error *err) {
  ffdp_mat4 winv[FFDP_MAX_CHAIN];
  if (n > FFDP_MAX_CHAIN) return ffdp_fail(err, FFDP_ERR_INVALID, "at most %d transforms", FFDP_MAX_CHAIN);
  for (int k = 0; k < n; k++)
    if (items[k].field) ffdp_mat4_inverse(items[k].field->vox2world, &winv[k]);
  ffdp_volume *disp;
  ffdp_status st = ffdp_volume_create(dim, 3, vox2world, &disp, err);
  if (st) return st;
  const int64_t nx = dim[0], ny = dim[1], nz = dim[2];
#pragma omp parallel for collapse(2)
  for (int64_t z = 0; z < nz; z++)
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
        float *o = disp->data + 3 * ((z * ny + y) * nx + x);
        for (int a = 0; a < 3; a++) o[a] = (float)(Y[a] - X[a]);
      }
  st = ffdp_warp_image(input, dim, vox2world, ffdp_mat4_identity(), disp, interp, out, err);
  ffdp_volume_free(disp);
  return st;
}
