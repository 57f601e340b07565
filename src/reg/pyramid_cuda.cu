// Pyramid levels built on the GPU: the same smoothing and resampling as level.c's host path
// (Gaussian of sigma, then the downsampler's own Gaussian of shrink/3 and a linear, border-
// clamped resample onto the shrunken grid), on the device, which takes milliseconds where
// the host takes tens to hundreds. The level comes back to the host, where the stages expect it.
// The source planes stay on the device between builds (reg_dev_planes) when there is room:
// uploading them was most of every build of a large image. From shrink 8 on, the downsampler's
// Gaussian is evaluated only at the points the resample reads (reg_resample_points, blur_at.cu):
// the same values, a fraction of the work (1008^3, shrink 32: 72 -> 8 ms an image).
#include <cuda_runtime.h>
#include <stdlib.h>
#include "core/err.h"
#include "core/volume_internal.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"

extern "C" int reg_cuda_pyramid_fits(int64_t n) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  /* two working copies of the source planes; leave most of the device to the stages */
  return 2.0 * (double)n * sizeof(float) < 0.25 * (double)free_b;
}

extern "C" void reg_cuda_pyramid_drop_level(reg_pyramid *p) {
  for (int k = 0; p && k < 2; k++) {
    if (p->lvd[k].d) cudaFree(p->lvd[k].d);
    p->lvd[k].d = nullptr, p->lvd[k].of = nullptr;
  }
}

extern "C" void reg_cuda_pyramid_trim(reg_pyramid *p, double need) {
  if (!p || (!p->dev[0].d && !p->dev[1].d && !p->lvd[0].d && !p->lvd[1].d)) return;
  size_t free_b = 0, total_b = 0;
  if (need >= 0 && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && (double)free_b > need + (512 << 20)) return;
  reg_cuda_pyramid_drop_level(p);
  if (!p->dev[0].d && !p->dev[1].d) return;
  for (int k = 0; k < 2; k++) {
    if (p->dev[k].d) cudaFree(p->dev[k].d);
    p->dev[k] = reg_dev_planes{nullptr, 0, 0};
  }
  reg_trace("pyramid: device copies of the source planes released");
}

extern "C" int reg_cuda_level_take(const reg_level *L, int64_t fz0, int64_t fz1, float **F, float **M) {
  *F = *M = nullptr;
  reg_pyramid *p = L->pyr;
  if (!p || p->coded || p->sharded || !reg_keep_level()) return 0;
  const ffdp_volume *img[2] = {L->F, L->M};
  const int64_t z0[2] = {fz0, 0}, z1[2] = {fz1, L->M->dim[2]};
  int src[2] = {0, 0}; /* 1: the kept source planes; 0: the last level built */
  for (int k = 0; k < 2; k++) {
    const bool whole = z0[k] == 0 && z1[k] == img[k]->dim[2];
    if (img[k] == (k ? p->M : p->F) && p->dev[k].d && p->dev[k].a == z0[k] && p->dev[k].b == z1[k]) src[k] = 1;
    else if (!(whole && p->lvd[k].d && p->lvd[k].of == img[k])) return 0;
  }
  for (int k = 0; k < 2; k++) {
    float **to = k ? M : F;
    if (src[k]) *to = p->dev[k].d, p->dev[k] = reg_dev_planes{nullptr, 0, 0};
    else *to = p->lvd[k].d, p->lvd[k].d = nullptr, p->lvd[k].of = nullptr;
  }
  return 1;
}

extern "C" int reg_cuda_level_upload(const reg_level *L, int moving, int64_t z0, int64_t z1, float *dst) {
  const ffdp_volume *v = moving ? L->M : L->F;
  const long long P = v->dim[0] * v->dim[1];
  const size_t bytes = (size_t)((z1 - z0) * P) * sizeof(float);
  const reg_pyramid *p = L->pyr;
  const reg_dev_planes *k = p ? &p->dev[moving] : nullptr;
  if (k && k->d && v == (moving ? p->M : p->F) && k->a <= z0 && z1 <= k->b) /* the source itself, still here */
    return (int)cudaMemcpy(dst, k->d + (z0 - k->a) * P, bytes, cudaMemcpyDeviceToDevice);
  return reg_cuda_copy_up(dst, v->data + z0 * P, bytes);
}

extern "C" int reg_cuda_level_upload16(const reg_level *L, int moving, int64_t z0, int64_t z1, uint16_t *dst,
                                       float *scratch, long long scratch_floats) {
  const ffdp_volume *v = moving ? L->M : L->F;
  const ffdp_code16 k = L->pyr->codes[moving];
  const long long P = v->dim[0] * v->dim[1], n = (z1 - z0) * P;
  const reg_pyramid *p = L->pyr;
  const reg_dev_planes *kp = &p->dev[moving];
  if (kp->d && v == (moving ? p->M : p->F) && kp->a <= z0 && z1 <= kp->b) /* the source itself, still here */
    return ffdp_cuda_encode16(n, kp->d + (z0 - kp->a) * P, k, dst, nullptr);
  if (scratch_floats < 1) return (int)cudaErrorInvalidValue;
  int rc = 0; /* floats up through the scratch in pieces, encoded there */
  for (long long i = 0; i < n && !rc; i += scratch_floats) {
    const long long m = n - i < scratch_floats ? n - i : scratch_floats;
    rc = (int)cudaMemcpy(scratch, v->data + z0 * P + i, (size_t)m * sizeof(float), cudaMemcpyHostToDevice);
    if (!rc) rc = ffdp_cuda_encode16(m, scratch, k, dst + i, nullptr);
  }
  return rc;
}

extern "C" void reg_cuda_level_release(void **block, float *taken[2]) {
  if (*block) cudaFree(*block);
  for (int k = 0; k < 2; k++)
    if (taken[k]) cudaFree(taken[k]);
  *block = nullptr, taken[0] = taken[1] = nullptr;
}

extern "C" double reg_cuda_pyramid_kept(const reg_pyramid *p) {
  double b = 0;
  for (int k = 0; p && k < 2; k++) {
    if (p->dev[k].d) {
      const ffdp_volume *v = k ? p->M : p->F;
      b += (double)(p->dev[k].b - p->dev[k].a) * (double)(v->dim[0] * v->dim[1]) * sizeof(float);
    }
    if (p->lvd[k].d && p->lvd[k].of) b += (double)ffdp_volume_nvox(p->lvd[k].of) * sizeof(float);
  }
  return b;
}

namespace {
// Source planes [a, b) on the device: the kept copy when it covers them; else uploaded into a
// new kept copy when it and the other image's can stay beside two working copies in half the
// free memory; else nullptr (the caller uploads into its working memory).
float *kept_source(reg_dev_planes *keep, const float *src, int64_t a, int64_t b, long long P, int *rc) {
  *rc = 0;
  if (!keep) return nullptr;
  if (keep->d && keep->a <= a && b <= keep->b) return keep->d + (a - keep->a) * P;
  const double held = keep->d ? (double)(keep->b - keep->a) * P * sizeof(float) : 0.0;
  if (keep->d) cudaFree(keep->d);
  *keep = reg_dev_planes{nullptr, 0, 0};
  size_t free_b = 0, total_b = 0;
  const double bytes = (double)(b - a) * P * sizeof(float);
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess || 4.0 * bytes > 0.5 * ((double)free_b + held)) return nullptr;
  float *d = nullptr;
  if (cudaMalloc((void **)&d, (size_t)bytes) != cudaSuccess) {
    cudaGetLastError(); /* not kept: the build uploads into its working memory */
    return nullptr;
  }
  *rc = reg_cuda_copy_up(d, src, (size_t)bytes);
  if (*rc) {
    cudaFree(d);
    return nullptr;
  }
  *keep = reg_dev_planes{d, a, b};
  return d;
}
}  // namespace

// The same steps and slabs as reg_shrink_smooth_planes (level.c), with the device operators.
extern "C" ffdp_status reg_cuda_shrink_smooth_planes(const int64_t dim[3], ffdp_mat4 vox2world, const float *src, int64_t a,
                                                     int64_t b, int shrink, double sigma, const int64_t ldim[3],
                                                     ffdp_mat4 lvox2world, int64_t k0, int64_t k1, float *out,
                                                     reg_dev_planes *keep, float **keep_out, ffdp_error *err) {
  if (keep_out) *keep_out = nullptr;
  if (k1 <= k0) return FFDP_OK;
  const long long P = dim[0] * dim[1], n = (b - a) * P, lP = ldim[0] * ldim[1], no = (k1 - k0) * lP;
  int64_t za, zb;
  reg_resampled_planes(dim[2], shrink, k0, k1, &za, &zb);
  const int64_t r2 = shrink > 1 ? ffdp_blur_radius(shrink / 3.0) : 0;
  const int64_t m0 = za - r2 > a ? za - r2 : a, m1 = zb + r2 < b ? zb + r2 : b;
  int rc = 0;
  /* FFDP_TRACE: the build's parts, each waited for (the waits only when tracing) */
  static const bool tracing = getenv("FFDP_TRACE") != nullptr;
  double tk[8] = {0};
  int nk = 0;
  auto mark = [&]() {
    if (!tracing) return;
    cudaDeviceSynchronize();
    tk[nk++] = reg_now();
  };
  mark();
  const float *kept = kept_source(keep, src, a, b, P, &rc);
  mark();
  /* the downsampler's Gaussian only where the resample reads it (blur_at.cu): its points, the
   * passes' scratch and the point lists after the level's buffers */
  const double sd[3] = {shrink / 3.0, shrink / 3.0, shrink / 3.0}; /* as ffdp_volume_downsample */
  const ffdp_slab ssd = reg_planes_slab(dim, m0, m1, za, zb);
  reg_points pts;
  const bool at = reg_resample_points(dim, vox2world, ldim, lvox2world, shrink, k0, k1, za, zb, &pts);
  const long long at_scr = at ? ffdp_cuda_blur1_at_scratch(&ssd, sd, pts.nx, pts.ny, pts.zs[0], pts.zs[pts.nz - 1]) : 0;
  const long long at_list = at ? 2 * (long long)pts.nz + pts.nx + pts.ny : 0; /* in floats */
  const long long base = (2 * n + no + 1) / 2 * 2;                                                   /* 8-byte aligned */
  float *w[2] = {nullptr, nullptr}, *o = nullptr;
  if (!rc) rc = (int)cudaMalloc((void **)&w[0], (size_t)(base + at_list + at_scr) * sizeof(float));
  long long *dzs = nullptr;
  int *dxs = nullptr, *dys = nullptr;
  if (!rc) {
    w[1] = w[0] + n, o = w[1] + n;
    if (!kept) rc = reg_cuda_copy_up(w[0], src, n * sizeof(float));
  }
  /* the level kept for the stage that runs it: a buffer of its own, where it is small beside
   * what the device has free (the stage's buffers come next) */
  float *ko = nullptr;
  size_t free_b = 0, total_b = 0;
  if (!rc && keep_out && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess && 16.0 * no * sizeof(float) < (double)free_b &&
      cudaMalloc((void **)&ko, (size_t)no * sizeof(float)) != cudaSuccess)
    ko = nullptr, cudaGetLastError();
  if (ko) o = ko;
  if (!rc && at) {
    dzs = (long long *)(w[0] + base), dxs = (int *)(dzs + pts.nz), dys = dxs + pts.nx;
    rc = (int)cudaMemcpy(dzs, pts.zs, pts.nz * sizeof(long long), cudaMemcpyHostToDevice);
    if (!rc) rc = (int)cudaMemcpy(dxs, pts.xs, pts.nx * sizeof(int), cudaMemcpyHostToDevice);
    if (!rc) rc = (int)cudaMemcpy(dys, pts.ys, pts.ny * sizeof(int), cudaMemcpyHostToDevice);
  }
  mark();
  /* cur: the smoothed planes so far (from clo on). A pass writes the working buffer cur is not
   * in and may scratch cur itself (dead after its first pass), never the kept source. */
  const float *cur = kept ? kept : w[0];
  int in_w = kept ? -1 : 0; /* which working buffer cur is in */
  int64_t clo = a;
  auto pass = [&](const ffdp_slab &sl, const double sg[3], int64_t from) {
    const int dst = in_w == 0 ? 1 : 0;
    float *tmp = in_w >= 0 ? w[in_w] + (from - clo) * P : w[1 - dst];
    rc = ffdp_cuda_blur(&sl, cur + (from - clo) * P, 1, sg, w[dst], tmp, nullptr);
    cur = w[dst], in_w = dst, clo = from;
  };
  if (!rc && sigma > 0) {
    const double sg[3] = {sigma, sigma, sigma};
    pass(reg_planes_slab(dim, a, b, shrink > 1 ? m0 : k0, shrink > 1 ? m1 : k1), sg, a);
  }
  mark();
  if (!rc && shrink > 1) {
    if (at) { /* into the working buffer cur is not in, read by the resample at the points only */
      const int dst = in_w == 0 ? 1 : 0;
      rc = ffdp_cuda_blur1_at(&ssd, cur + (m0 - clo) * P, sd, dxs, pts.nx, dys, pts.ny, dzs, pts.nz, pts.zs[0],
                              pts.zs[pts.nz - 1], w[dst], (float *)(dys + pts.ny), nullptr);
      cur = w[dst], in_w = dst, clo = m0;
    } else
      pass(ssd, sd, m0);
    ffdp_warp wp;
    ffdp_warp_fold(ffdp_mat4_identity(), lvox2world, vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &wp);
    ffdp_slab fs = ffdp_slab_whole(ldim[0], ldim[1], ldim[2]);
    const ffdp_slab ms = reg_planes_slab(dim, za, zb, za, zb);
    fs.zlo = fs.z0 = k0, fs.zhi = fs.z1 = k1;
    mark();
    if (!rc) rc = ffdp_cuda_sample_fwd(&wp, &fs, nullptr, &ms, cur + (za - clo) * P, 1, o, nullptr);
    cur = o, clo = k0;
  } else
    mark();
  mark();
  if (!rc && ko && cur != ko) rc = (int)cudaMemcpy(ko, cur + (k0 - clo) * P, no * sizeof(float), cudaMemcpyDeviceToDevice);
  if (!rc) rc = reg_cuda_copy_down(out, cur + (k0 - clo) * P, no * sizeof(float));
  mark();
  cudaFree(w[0]);
  if (ko && !rc) *keep_out = ko;
  else if (ko) cudaFree(ko);
  free(pts.zs);
  mark();
  if (tracing && nk == 8)
    reg_trace("level image (shrink %d, sigma %g, %lld source planes): source %s %.1f ms, buffers %.1f, "
              "smoothing %.1f + %.1f%s, resampling %.1f, download %.1f, freeing %.1f",
              shrink, sigma, (long long)(b - a), kept ? "kept on the device (uploaded when new)" : "uploaded",
              1e3 * (tk[1] - tk[0]), 1e3 * (tk[2] - tk[1]), 1e3 * (tk[3] - tk[2]), 1e3 * (tk[4] - tk[3]),
              at ? " (at the resampled points)" : "", 1e3 * (tk[5] - tk[4]), 1e3 * (tk[6] - tk[5]), 1e3 * (tk[7] - tk[6]));
  if (rc)
    return ffdp_fail(err, FFDP_ERR_IO, "CUDA error building a pyramid level: %s", cudaGetErrorString((cudaError_t)rc));
  return FFDP_OK;
}
