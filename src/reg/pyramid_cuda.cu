// Pyramid levels built on the GPU: the same smoothing and resampling as level.c's host path
// (Gaussian of sigma, then the downsampler's own Gaussian of shrink/3 and a linear, border-
// clamped resample onto the shrunken grid), on the device, which takes milliseconds where
// the host takes tens to hundreds. The level comes back to the host, where the stages expect it.
#include <cuda_runtime.h>
#include "core/err.h"
#include "core/volume_internal.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"

extern "C" int reg_cuda_pyramid_fits(int64_t n) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  /* two copies of the source planes; leave most of the device to the stages */
  return 2.0 * (double)n * sizeof(float) < 0.25 * (double)free_b;
}

// The same steps and slabs as reg_shrink_smooth_planes (level.c), with the device operators.
extern "C" ffdp_status reg_cuda_shrink_smooth_planes(const int64_t dim[3], ffdp_mat4 vox2world, const float *src, int64_t a,
                                                     int64_t b, int shrink, double sigma, const int64_t ldim[3],
                                                     ffdp_mat4 lvox2world, int64_t k0, int64_t k1, float *out,
                                                     ffdp_error *err) {
  if (k1 <= k0) return FFDP_OK;
  const long long P = dim[0] * dim[1], n = (b - a) * P, lP = ldim[0] * ldim[1], no = (k1 - k0) * lP;
  int64_t za, zb;
  reg_resampled_planes(dim[2], shrink, k0, k1, &za, &zb);
  const int64_t r2 = shrink > 1 ? ffdp_blur_radius(shrink / 3.0) : 0;
  const int64_t m0 = za - r2 > a ? za - r2 : a, m1 = zb + r2 < b ? zb + r2 : b;
  float *d0 = nullptr, *d1 = nullptr, *o = nullptr;
  cudaError_t e = cudaMalloc((void **)&d0, 2 * n * sizeof(float) + no * sizeof(float));
  if (!e) {
    d1 = d0 + n, o = d1 + n;
    e = cudaMemcpy(d0, src, n * sizeof(float), cudaMemcpyHostToDevice);
  }
  float *cur = d0, *other = d1; /* the smoothed planes so far (from clo on), and a free buffer */
  int64_t clo = a;
  int rc = (int)e;
  if (!rc && sigma > 0) {
    const double sg[3] = {sigma, sigma, sigma};
    const ffdp_slab s = reg_planes_slab(dim, a, b, shrink > 1 ? m0 : k0, shrink > 1 ? m1 : k1);
    rc = ffdp_cuda_blur(&s, cur, 1, sg, other, cur, nullptr); /* cur is dead after the first pass */
    float *t = cur;
    cur = other, other = t;
  }
  if (!rc && shrink > 1) {
    const double sd[3] = {shrink / 3.0, shrink / 3.0, shrink / 3.0}; /* as ffdp_volume_downsample */
    const ffdp_slab s = reg_planes_slab(dim, m0, m1, za, zb);
    rc = ffdp_cuda_blur(&s, cur + (m0 - clo) * P, 1, sd, other, cur + (m0 - clo) * P, nullptr);
    cur = other, clo = m0;
    ffdp_warp w;
    ffdp_warp_fold(ffdp_mat4_identity(), lvox2world, vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &w);
    ffdp_slab fs = ffdp_slab_whole(ldim[0], ldim[1], ldim[2]);
    const ffdp_slab ms = reg_planes_slab(dim, za, zb, za, zb);
    fs.zlo = fs.z0 = k0, fs.zhi = fs.z1 = k1;
    if (!rc) rc = ffdp_cuda_sample_fwd(&w, &fs, nullptr, &ms, cur + (za - clo) * P, 1, o, nullptr);
    cur = o, clo = k0;
  }
  if (!rc) rc = (int)cudaMemcpy(out, cur + (k0 - clo) * P, no * sizeof(float), cudaMemcpyDeviceToHost);
  cudaFree(d0);
  if (rc)
    return ffdp_fail(err, FFDP_ERR_IO, "CUDA error building a pyramid level: %s", cudaGetErrorString((cudaError_t)rc));
  return FFDP_OK;
}
