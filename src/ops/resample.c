/* Volume-level resampling, smoothing and the pyramid, built on the slab operators. */
#include "core/err.h"
#include "core/volume_internal.h"
#include "ops/ops.h"

static ffdp_slab whole(const ffdp_volume *v) { return ffdp_slab_whole(v->dim[0], v->dim[1], v->dim[2]); }

ffdp_status ffdp_volume_resample(const ffdp_volume *v, const int64_t dim[3], ffdp_mat4 vox2world, int interp,
                                 int border, ffdp_volume **out, ffdp_error *err) {
  ffdp_status s = ffdp_volume_create(dim, v->ncomp, vox2world, out, err);
  if (s) return s;
  ffdp_warp w;
  ffdp_warp_fold(ffdp_mat4_identity(), vox2world, v->vox2world, interp ? FFDP_INTERP_NEAREST : FFDP_INTERP_LINEAR,
                 border ? FFDP_PAD_BORDER : FFDP_PAD_ZERO, &w);
  ffdp_slab fs = whole(*out), ms = whole(v);
  ffdp_sample_fwd_f32(&w, &fs, NULL, &ms, v->data, v->ncomp, (*out)->data);
  return FFDP_OK;
}

void ffdp_shrink_grid(const int64_t dim[3], ffdp_mat4 vox2world, const int factor[3], int64_t dim_out[3],
                      ffdp_mat4 *vox2world_out) {
  ffdp_mat4 s = ffdp_mat4_identity();
  for (int a = 0; a < 3; a++) {
    int f = factor[a] > 0 ? factor[a] : 1;
    dim_out[a] = dim[a] / f > 0 ? dim[a] / f : 1;
    s.m[a][a] = f;
    s.m[a][3] = 0.5 * (f - 1);
  }
  *vox2world_out = ffdp_mat4_mul(vox2world, s);
}

ffdp_status ffdp_volume_smooth(const ffdp_volume *v, const double sigma[3], ffdp_volume **out, ffdp_error *err) {
  ffdp_status s = ffdp_volume_create(v->dim, v->ncomp, v->vox2world, out, err);
  if (s) return s;
  ffdp_slab sl = whole(v);
  ffdp_blur_f32(&sl, v->data, v->ncomp, sigma, (*out)->data);
  return FFDP_OK;
}

ffdp_status ffdp_volume_downsample(const ffdp_volume *v, const int factor[3], ffdp_volume **out, ffdp_error *err) {
  double sigma[3];
  for (int a = 0; a < 3; a++) sigma[a] = factor[a] > 1 ? factor[a] / 3.0 : 0.0;
  ffdp_volume *sm;
  ffdp_status s = ffdp_volume_smooth(v, sigma, &sm, err);
  if (s) return s;
  int64_t d[3];
  ffdp_mat4 w;
  ffdp_shrink_grid(v->dim, v->vox2world, factor, d, &w);
  s = ffdp_volume_resample(sm, d, w, 0, 1, out, err);
  ffdp_volume_free(sm);
  return s;
}
