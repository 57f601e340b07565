// Sampled-image windows on the device (see window_cuda.h).
#include <cuda_runtime.h>
#include <math.h>
#include <string.h>
#include "core/comm_internal.h"
#include "core/err.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"
#include "reg/image_share.h"
#include "reg/window_cuda.h"

namespace {

// Planes [a, b) (before the margin) onto the device: from the ranks that hold them (window mode
// on ranks: collective, need = 0 on ranks that take part without fetching) or from the rank's
// copy of the level image (local mode: no collective). 0, a CUDA error, or -1 (err set,
// agreed by every rank).
int fetch(reg_window *W, reg_share *sh, int shared, int need, int64_t a, int64_t b, ffdp_error *err) {
  const ffdp_volume *img = sh->img;
  const int64_t *d = ffdp_volume_dim(img);
  if (need) reg_window_margin(d[2], &a, &b);
  const size_t P = (size_t)d[0] * d[1], es = W->coded ? 2 : 4, bytes = need ? (size_t)(b - a) * P * es : 0;
  /* on ranks only the planes other ranks hold travel (through host memory); the rank's own
   * planes go to the device straight from where they are */
  float *below = nullptr, *above = nullptr;
  int64_t nb = 0, na = 0;
  if (shared && reg_share_fetch_remote(sh, need, a, b, &below, &nb, &above, &na, err)) return -1;
  if (!need) return 0;
  char *dev = nullptr;
  int rc = (int)cudaMalloc((void **)&dev, bytes);
  const int64_t o0 = shared ? (a > sh->own.zlo ? a : sh->own.zlo) : a, o1 = shared ? (b < sh->own.zhi ? b : sh->own.zhi) : b;
  /* the three runs of planes: from the rank below, this rank's own, from the rank above */
  const float *src[3] = {below, ffdp_volume_cdata(img) + (size_t)o0 * P, above};
  const int64_t at[3] = {a, o0, b - na}, cnt[3] = {nb, o1 > o0 ? o1 - o0 : 0, na};
  uint16_t *codes = nullptr; /* coded: the planes encoded on the host, then one copy */
  if (!rc && W->coded && !(codes = (uint16_t *)malloc(bytes))) rc = (int)cudaErrorMemoryAllocation;
  for (int r = 0; r < 3 && !rc; r++) {
    if (!cnt[r]) continue;
    const size_t off = (size_t)(at[r] - a) * P, m = (size_t)cnt[r] * P;
    if (codes) ffdp_code16_encode_f32(src[r], (int64_t)m, W->k, codes + off);
    else rc = (int)cudaMemcpy(dev + off * es, src[r], m * es, cudaMemcpyHostToDevice);
  }
  if (!rc && codes) rc = (int)cudaMemcpy(dev, codes, bytes, cudaMemcpyHostToDevice);
  free(codes), free(below), free(above);
  if (rc) {
    if (dev) cudaFree(dev);
    return rc;
  }
  if (W->dev && !W->whole) cudaFree(W->dev);
  W->dev = dev, W->whole = 0;
  W->ms = ffdp_slab_whole(d[0], d[1], d[2]);
  W->ms.z0 = W->ms.zlo = a, W->ms.z1 = W->ms.zhi = b;
  W->bytes += (double)bytes, W->fetches++;
  reg_trace("window: planes [%lld, %lld) of %lld on the device%s, %lld of them from other ranks (%.1f MB)", (long long)a,
            (long long)b, (long long)d[2], W->coded ? " (16-bit codes)" : "", (long long)(nb + na), (nb + na) * P * 4e-6);
  return 0;
}

// Whether any rank fetches (1) or not (0); -1 with every rank's err set when some rank came
// with a CUDA error (rc): one collective in the common case, a second to agree on the message.
int decide(reg_share *sh, int rc, int need, ffdp_error *err) {
  const ffdp_comm *c = sh->c;
  const double m = c->max(c, rc ? 2.0 : (double)need);
  if (m < 2) return m > 0;
  ffdp_status st = rc ? ffdp_fail(err, FFDP_ERR_IO, "CUDA error: %s", cudaGetErrorString((cudaError_t)rc)) : FFDP_OK;
  c->agree(c, st, err);
  return -1;
}

}  // namespace

extern "C" int reg_window_bound(const ffdp_slab *store, const float *u, float *scratch, double *bound) {
  return ffdp_cuda_maxnorm3(ffdp_slab_stored(store), u, scratch, bound, nullptr);
}

extern "C" int reg_window_open(reg_window *W, reg_share *sh, const ffdp_warp *w, const ffdp_slab *store, double bound,
                               const void *whole_dev, const ffdp_code16 *k, int rc, ffdp_error *err) {
  memset(W, 0, sizeof *W);
  if (k) W->coded = 1, W->k = *k;
  const int64_t *d = ffdp_volume_dim(sh->img);
  const int shared = sh->mode == FFDP_EXCHANGE_WINDOW && sh->c->size > 1;
  if (whole_dev && !rc) {
    W->dev = (void *)whole_dev, W->whole = 1;
    W->ms = ffdp_slab_whole(d[0], d[1], d[2]);
    return 0;
  }
  if (shared && decide(sh, rc, 1, err) < 0) return -1;
  if (rc) return rc;
  int64_t a, b;
  reg_window_reach(w, store, bound, d[2], &a, &b);
  return fetch(W, sh, shared, 1, a, b, err);
}

extern "C" int reg_window_follow(reg_window *W, reg_share *sh, const ffdp_warp *w, const ffdp_slab *store,
                                 const float *u, float *scratch, int rc, ffdp_error *err) {
  if (W->whole) return rc;
  const int shared = sh->mode == FFDP_EXCHANGE_WINDOW && sh->c->size > 1;
  double bound = 0;
  if (!rc) rc = reg_window_bound(store, u, scratch, &bound);
  int64_t a = 0, b = 0;
  if (!rc) reg_window_reach(w, store, bound, ffdp_volume_dim(sh->img)[2], &a, &b);
  const int need = !rc && (a < W->ms.zlo || b > W->ms.zhi);
  if (!shared) return rc ? rc : need ? fetch(W, sh, 0, 1, a, b, err) : 0;
  const int any = decide(sh, rc, need, err);
  return any < 0 ? -1 : any ? fetch(W, sh, 1, need, a, b, err) : 0;
}

extern "C" void reg_window_close(reg_window *W) {
  if (W->dev && !W->whole) cudaFree(W->dev);
  memset(W, 0, sizeof *W);
}
