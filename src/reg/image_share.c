/* Sampled images across ranks: windows fetched from the ranks that hold the planes, or the
 * ring baseline (see image_share.h). */
#include "reg/image_share.h"
#include "core/comm_internal.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void reg_window_reach(const ffdp_warp *w, const ffdp_slab *store, double bound, int64_t mnz, int64_t *a, int64_t *b) {
  double lo = INFINITY, hi = -INFINITY; /* z of B·p + c is affine in p: its extremes are at corners */
  for (int k = 0; k < 8; k++) {
    const double x = (k & 1) ? (double)(store->nx - 1) : 0.0, y = (k & 2) ? (double)(store->ny - 1) : 0.0,
                 z = (k & 4) ? (double)(store->zhi - 1) : (double)store->zlo;
    const double q = w->B[2][0] * x + w->B[2][1] * y + w->B[2][2] * z + w->B[2][3];
    lo = q < lo ? q : lo, hi = q > hi ? q : hi;
  }
  const double r = bound * sqrt(w->S[2][0] * w->S[2][0] + w->S[2][1] * w->S[2][1] + w->S[2][2] * w->S[2][2]);
  /* taps floor(q) and floor(q) + 1; padding modes that clamp read the edge planes instead */
  double first = floor(lo - r), last = floor(hi + r) + 1;
  first = first < 0 ? 0 : first > (double)(mnz - 1) ? (double)(mnz - 1) : first;
  last = last > (double)(mnz - 1) ? (double)(mnz - 1) : last < first ? first : last;
  *a = (int64_t)first, *b = (int64_t)last + 1;
}

void reg_window_margin(int64_t mnz, int64_t *a, int64_t *b) {
  const int64_t margin = (*b - *a) / 8 > 4 ? (*b - *a) / 8 : 4;
  *a = *a - margin > 0 ? *a - margin : 0;
  *b = *b + margin < mnz ? *b + margin : mnz;
}

ffdp_image_exchange reg_share_mode(const ffdp_reg_options *opt, const ffdp_comm *c) {
  return ffdp_comm_or_single(c)->size > 1 ? opt->image_exchange : FFDP_EXCHANGE_LOCAL;
}

void reg_share_open(reg_share *sh, const ffdp_comm *c, const ffdp_volume *img, ffdp_image_exchange mode) {
  memset(sh, 0, sizeof *sh);
  sh->c = ffdp_comm_or_single(c);
  sh->img = img;
  sh->mode = sh->c->size > 1 ? mode : FFDP_EXCHANGE_LOCAL;
  sh->own = ffdp_slab_split(img->dim[0], img->dim[1], img->dim[2], sh->c->rank, sh->c->size, 0);
}

static const float *own_planes(const reg_share *sh) {
  return sh->img->data + sh->own.zlo * sh->img->dim[0] * sh->img->dim[1];
}

static void account(reg_share *sh, double b0, double s0) {
  double b, s;
  sh->c->image_traffic(sh->c, &b, &s);
  sh->bytes += b - b0, sh->seconds += s - s0;
}

ffdp_status reg_share_fetch(reg_share *sh, int need, int64_t a, int64_t b, float **buf, ffdp_error *err) {
  const ffdp_comm *c = sh->c;
  const int64_t *d = sh->img->dim, P = d[0] * d[1];
  ffdp_status st = FFDP_OK;
  *buf = NULL;
  if (need && !(*buf = malloc((size_t)((b - a) * P) * sizeof(float))))
    st = ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate a %.1f MB image window", (b - a) * P * 4e-6);
  if ((st = c->agree(c, st, err))) return st;
  double b0, s0;
  c->image_traffic(c, &b0, &s0);
  st = c->planes(c, P, sh->own.zlo, sh->own.zhi, own_planes(sh), need ? a : 0, need ? b : 0, *buf, err);
  account(sh, b0, s0);
  if (st) free(*buf), *buf = NULL;
  else if (need) reg_trace("share: planes [%lld, %lld) of %lld fetched", (long long)a, (long long)b, (long long)d[2]);
  return st;
}

ffdp_status reg_share_fetch_remote(reg_share *sh, int need, int64_t a, int64_t b, float **below, int64_t *n_below,
                                   float **above, int64_t *n_above, ffdp_error *err) {
  const ffdp_comm *c = sh->c;
  const int64_t P = sh->img->dim[0] * sh->img->dim[1];
  int64_t lo[2] = {0, 0}, hi[2] = {0, 0}; /* [a, b) below and above the own planes */
  if (need) {
    lo[0] = a, hi[0] = b < sh->own.zlo ? b : sh->own.zlo;
    lo[1] = a > sh->own.zhi ? a : sh->own.zhi, hi[1] = b;
  }
  float **buf[2] = {below, above};
  int64_t *cnt[2] = {n_below, n_above};
  ffdp_status st = FFDP_OK;
  for (int k = 0; k < 2; k++) {
    *buf[k] = NULL, *cnt[k] = hi[k] > lo[k] ? hi[k] - lo[k] : 0;
    if (*cnt[k] && !(*buf[k] = malloc((size_t)(*cnt[k] * P) * sizeof(float))))
      st = ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate a %.1f MB image window", *cnt[k] * P * 4e-6);
  }
  if (!(st = c->agree(c, st, err))) {
    double b0, s0;
    c->image_traffic(c, &b0, &s0);
    for (int k = 0; k < 2 && !st; k++) /* always both calls: they are collective */
      st = c->planes(c, P, sh->own.zlo, sh->own.zhi, own_planes(sh), *cnt[k] ? lo[k] : 0, *cnt[k] ? hi[k] : 0, *buf[k],
                     err);
    account(sh, b0, s0);
  }
  if (st) free(*below), free(*above), *below = *above = NULL;
  return st;
}

ffdp_status reg_share_window(reg_share *sh, const ffdp_warp *w, const ffdp_slab *store, const float *u, const float **M,
                             ffdp_slab *ms, ffdp_error *err) {
  const int64_t *d = sh->img->dim;
  if (sh->mode != FFDP_EXCHANGE_WINDOW) {
    *M = sh->img->data, *ms = ffdp_slab_whole(d[0], d[1], d[2]);
    return FFDP_OK;
  }
  int64_t a, b;
  reg_window_reach(w, store, u ? reg_max_norm3(u, ffdp_slab_stored(store)) : 0.0, d[2], &a, &b);
  const int need = !sh->win || a < sh->ws.zlo || b > sh->ws.zhi;
  if (sh->c->max(sh->c, need) > 0) { /* somebody fetches: every rank takes part */
    float *nw = NULL;
    if (need) reg_window_margin(d[2], &a, &b);
    ffdp_status st = reg_share_fetch(sh, need, a, b, &nw, err);
    if (st) return st;
    if (need) {
      free(sh->win);
      sh->win = nw;
      sh->ws = ffdp_slab_whole(d[0], d[1], d[2]);
      sh->ws.z0 = sh->ws.zlo = a, sh->ws.z1 = sh->ws.zhi = b;
    }
  }
  *M = sh->win, *ms = sh->ws;
  return FFDP_OK;
}

ffdp_status reg_share_ring(reg_share *sh, const ffdp_warp *w, const ffdp_slab *store, const float *u, float *out,
                           float *dq, ffdp_error *err) {
  const ffdp_comm *c = sh->c;
  const int64_t *d = sh->img->dim, P = d[0] * d[1], fP = ffdp_slab_plane(store);
  const int64_t off = (store->z0 - store->zlo) * fP, cnt = (store->z1 - store->z0) * fP;
  memset(out + off, 0, (size_t)cnt * sizeof(float));
  if (dq) memset(dq + 3 * off, 0, (size_t)cnt * 3 * sizeof(float));
  ffdp_status st = FFDP_OK;
  const int64_t most = (d[2] + c->size - 1) / c->size; /* the largest share (ffdp_slab_split) */
  if (c->size > 1 && !sh->shard[0]) {
    sh->shard[0] = malloc((size_t)(most * P) * sizeof(float));
    sh->shard[1] = malloc((size_t)(most * P) * sizeof(float));
    if (!sh->shard[0] || !sh->shard[1])
      st = ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate two %.1f MB ring shards", most * P * 4e-6);
  }
  if ((st = c->agree(c, st, err))) return st;
  /* turn k: the planes of rank (rank - k) mod size are here; the next turn's planes travel
   * while these are sampled */
  ffdp_slab vis = sh->own;
  const float *cur = own_planes(sh);
  int slot = 0;
  for (int k = 0; k < c->size; k++) {
    const int last = k == c->size - 1, from = (c->rank - k - 1 + 2 * c->size) % c->size;
    const ffdp_slab nxt = ffdp_slab_split(d[0], d[1], d[2], from, c->size, 0);
    void *req = NULL;
    if (!last) st = c->ring_start(c, P, cur, vis.zhi - vis.zlo, sh->shard[slot], nxt.zhi - nxt.zlo, &req, err);
    ffdp_sample_part_f32(w, store, u, &vis, cur, out, dq);
    if (last) break;
    double b0, s0;
    c->image_traffic(c, &b0, &s0);
    ffdp_status sw = c->ring_wait(c, req, err);
    account(sh, b0, s0);
    if ((st = c->agree(c, st ? st : sw, err))) return st;
    cur = sh->shard[slot], vis = nxt, slot ^= 1;
  }
  return FFDP_OK;
}

void reg_share_close(reg_share *sh, ffdp_stage_summary *sum) {
  if (sum) sum->exchange_bytes += sh->bytes, sum->exchange_seconds += sh->seconds;
  free(sh->win), free(sh->shard[0]), free(sh->shard[1]);
  memset(sh, 0, sizeof *sh);
}
