// Pyramid levels built on the GPU: the same smoothing and resampling as level.c's host path
// (Gaussian of sigma, then the downsampler's own Gaussian of shrink/3 and a linear, border-
// clamped resample onto the shrunken grid), on the device, which takes milliseconds where
// the host takes tens to hundreds. The level comes back to the host, where the stages expect it.
#include <cuda_runtime.h>
#include "core/err.h"
#include "core/volume_internal.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"

extern "C" int reg_cuda_pyramid_fits(const ffdp_volume *v) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  /* two full-resolution buffers; leave most of the device to the stages */
  return 2.0 * (double)ffdp_volume_nvox(v) * sizeof(float) < 0.25 * (double)free_b;
}

extern "C" ffdp_status reg_cuda_shrink_smooth(const ffdp_volume *v, int shrink, double sigma, ffdp_volume **out,
                                              ffdp_error *err) {
  const long long n = ffdp_volume_nvox(v);
  const int f[3] = {shrink, shrink, shrink};
  int64_t d[3] = {v->dim[0], v->dim[1], v->dim[2]};
  ffdp_mat4 w2 = v->vox2world;
  if (shrink > 1) ffdp_shrink_grid(v->dim, v->vox2world, f, d, &w2);
  ffdp_status st = ffdp_volume_create(d, 1, w2, out, err);
  if (st) return st;
  const long long no = ffdp_volume_nvox(*out);
  float *a = nullptr, *b = nullptr, *o = nullptr;
  cudaError_t e = cudaMalloc((void **)&a, 2 * n * sizeof(float) + no * sizeof(float));
  if (!e) {
    b = a + n, o = b + n;
    e = cudaMemcpy(a, v->data, n * sizeof(float), cudaMemcpyHostToDevice);
  }
  const ffdp_slab s = ffdp_slab_whole(v->dim[0], v->dim[1], v->dim[2]);
  float *cur = a, *other = b; /* the smoothed image so far, and a free buffer */
  int rc = (int)e;
  if (!rc && sigma > 0) {
    const double sg[3] = {sigma, sigma, sigma};
    rc = ffdp_cuda_blur(&s, cur, 1, sg, other, cur, nullptr); /* cur is dead after the first pass */
    float *t = cur;
    cur = other, other = t;
  }
  if (!rc && shrink > 1) {
    const double sd[3] = {shrink / 3.0, shrink / 3.0, shrink / 3.0}; /* as ffdp_volume_downsample */
    rc = ffdp_cuda_blur(&s, cur, 1, sd, other, cur, nullptr);
    float *t = cur;
    cur = other, other = t;
    ffdp_warp w;
    ffdp_warp_fold(ffdp_mat4_identity(), w2, v->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &w);
    const ffdp_slab so = ffdp_slab_whole(d[0], d[1], d[2]);
    if (!rc) rc = ffdp_cuda_sample_fwd(&w, &so, nullptr, &s, cur, 1, o, nullptr);
    cur = o;
  }
  if (!rc) rc = (int)cudaMemcpy((*out)->data, cur, no * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(a);
  if (rc) {
    ffdp_volume_free(*out);
    *out = nullptr;
    return ffdp_fail(err, FFDP_ERR_IO, "CUDA error building a pyramid level: %s", cudaGetErrorString((cudaError_t)rc));
  }
  return FFDP_OK;
}
