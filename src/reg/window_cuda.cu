// Sampled-image windows on the device (see window_cuda.h).
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"
#include "reg/window_cuda.h"

extern "C" void reg_window_reach(const ffdp_warp *w, const ffdp_slab *store, double bound, int64_t mnz, int64_t *a,
                                 int64_t *b) {
  double lo = INFINITY, hi = -INFINITY; // z of B·p + c is affine in p: its extremes are at corners
  for (int k = 0; k < 8; k++) {
    const double x = (k & 1) ? (double)(store->nx - 1) : 0.0, y = (k & 2) ? (double)(store->ny - 1) : 0.0,
                 z = (k & 4) ? (double)(store->zhi - 1) : (double)store->zlo;
    const double q = w->B[2][0] * x + w->B[2][1] * y + w->B[2][2] * z + w->B[2][3];
    lo = q < lo ? q : lo, hi = q > hi ? q : hi;
  }
  const double r = bound * sqrt(w->S[2][0] * w->S[2][0] + w->S[2][1] * w->S[2][1] + w->S[2][2] * w->S[2][2]);
  // taps floor(q) and floor(q) + 1; padding modes that clamp read the edge planes instead
  double first = floor(lo - r), last = floor(hi + r) + 1;
  first = first < 0 ? 0 : first > (double)(mnz - 1) ? (double)(mnz - 1) : first;
  last = last > (double)(mnz - 1) ? (double)(mnz - 1) : last < first ? first : last;
  *a = (int64_t)first, *b = (int64_t)last + 1;
}

namespace {

int fetch(reg_window *W, const ffdp_volume *img, int64_t a, int64_t b) {
  const int64_t *d = ffdp_volume_dim(img);
  const int64_t margin = (b - a) / 8 > 4 ? (b - a) / 8 : 4; // so that a growing warp rarely refetches
  a = a - margin > 0 ? a - margin : 0;
  b = b + margin < d[2] ? b + margin : d[2];
  const size_t P = (size_t)d[0] * d[1], bytes = (size_t)(b - a) * P * sizeof(float);
  float *dev = nullptr;
  int rc = (int)cudaMalloc((void **)&dev, bytes);
  if (!rc) rc = (int)cudaMemcpy(dev, ffdp_volume_cdata(img) + (size_t)a * P, bytes, cudaMemcpyHostToDevice);
  if (rc) {
    if (dev) cudaFree(dev);
    return rc;
  }
  if (W->dev && !W->whole) cudaFree(W->dev);
  W->dev = dev, W->whole = 0;
  W->ms = ffdp_slab_whole(d[0], d[1], d[2]);
  W->ms.z0 = W->ms.zlo = a, W->ms.z1 = W->ms.zhi = b;
  W->bytes += (double)bytes, W->fetches++;
  reg_trace("window: planes [%lld, %lld) of %lld fetched (%.1f MB)", (long long)a, (long long)b, (long long)d[2],
            bytes / 1e6);
  return 0;
}

}  // namespace

extern "C" int reg_window_bound(const ffdp_slab *store, const float *u, float *scratch, double *bound) {
  return ffdp_cuda_maxnorm3(ffdp_slab_stored(store), u, scratch, bound, nullptr);
}

extern "C" int reg_window_open(reg_window *W, const ffdp_volume *img, const ffdp_warp *w, const ffdp_slab *store,
                               double bound, const float *whole_dev) {
  memset(W, 0, sizeof *W);
  const int64_t *d = ffdp_volume_dim(img);
  if (whole_dev) {
    W->dev = (float *)whole_dev, W->whole = 1;
    W->ms = ffdp_slab_whole(d[0], d[1], d[2]);
    return 0;
  }
  int64_t a, b;
  reg_window_reach(w, store, bound, d[2], &a, &b);
  return fetch(W, img, a, b);
}

extern "C" int reg_window_follow(reg_window *W, const ffdp_volume *img, const ffdp_warp *w, const ffdp_slab *store,
                                 const float *u, float *scratch) {
  if (W->whole) return 0;
  double bound = 0;
  int rc = reg_window_bound(store, u, scratch, &bound);
  if (rc) return rc;
  int64_t a, b;
  reg_window_reach(w, store, bound, ffdp_volume_dim(img)[2], &a, &b);
  return a < W->ms.zlo || b > W->ms.zhi ? fetch(W, img, a, b) : 0;
}

extern "C" void reg_window_close(reg_window *W) {
  if (W->dev && !W->whole) cudaFree(W->dev);
  memset(W, 0, sizeof *W);
}
