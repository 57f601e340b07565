/* Pyramid levels and the metric/mask plumbing shared by all stages. */
#include "reg/reg_internal.h"
#include "core/err.h"
#include "ops/kernels1d.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdio.h>
#include <stdarg.h>
#include "core/comm_internal.h"

void reg_trace(const char *fmt, ...) {
  static int on = -1; /* read once: tracing is a process-wide debugging switch */
  if (on < 0) on = getenv("FFDP_TRACE") != NULL;
  if (!on) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("[trace] ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

ffdp_parzen_kind reg_mi_parzen(void) {
  const char *e = getenv("FFDP_MI_PARZEN");
  return e && !strcmp(e, "bspline") ? FFDP_PARZEN_BSPLINE : FFDP_PARZEN_MATTES;
}

double reg_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* level plane k samples z = shrink·k + (shrink - 1)/2: taps floor(z) and the next, clamped */
void reg_resampled_planes(int64_t nz, int shrink, int64_t k0, int64_t k1, int64_t *lo, int64_t *hi) {
  *lo = shrink > 1 ? shrink * k0 - 1 : k0, *hi = shrink > 1 ? shrink * k1 + 1 : k1;
  *lo = *lo < 0 ? 0 : *lo > nz ? nz : *lo;
  *hi = *hi > nz ? nz : *hi < *lo ? *lo : *hi;
}

static void level_src_planes(const int64_t dim[3], int shrink, double sigma, int64_t k0, int64_t k1, int64_t *a, int64_t *b) {
  int64_t lo, hi; /* then each Gaussian widens the range by its radius */
  reg_resampled_planes(dim[2], shrink, k0, k1, &lo, &hi);
  const int64_t r = (shrink > 1 ? ffdp_blur_radius(shrink / 3.0) : 0) + (sigma > 0 ? ffdp_blur_radius(sigma) : 0);
  *a = lo - r < 0 ? 0 : lo - r;
  *b = hi + r > dim[2] ? dim[2] : hi + r;
}

ffdp_slab reg_planes_slab(const int64_t dim[3], int64_t lo, int64_t hi, int64_t z0, int64_t z1) {
  ffdp_slab s = ffdp_slab_whole(dim[0], dim[1], dim[2]);
  s.zlo = lo, s.zhi = hi;
  s.z0 = z0 < lo ? lo : z0, s.z1 = z1 > hi ? hi : z1;
  if (s.z1 < s.z0) s.z1 = s.z0;
  return s;
}

/* Marks (in on, indices lo .. hi - 1) the source indices along one axis that the resample's
 * linear taps may read for level indices [i0, i1) at p = b i + t (off: a bound on the other
 * axes' share of p): both neighbours of each point; where p lies within 1e-3 of a whole index m
 * (odd shrinks: where float coordinates may round to either side of it) m - 1, m and m + 1;
 * and the first and last two of the range (the border clamp). Returns how many are marked. */
static int axis_points(double b, double t, double off, int64_t i0, int64_t i1, int64_t lo, int64_t hi, char *on) {
  memset(on, 0, (size_t)(hi - lo));
  const int64_t edge[4] = {lo, lo + 1, hi - 2, hi - 1};
  for (int64_t i = i0; i < i1 + 4; i++) {
    int64_t c0, c1;
    if (i < i1) {
      const double p = b * (double)i + t, f = floor(p), fr = p - f;
      if (fr < 1e-3 + off || fr > 1 - 1e-3 - off) { /* at a whole index m: m - 1, m or m, m + 1 */
        const int64_t m = (int64_t)llround(p);
        c0 = m - 1, c1 = m + 1;
      } else {
        c0 = (int64_t)f, c1 = (int64_t)f + 1;
      }
    } else {
      c0 = c1 = edge[i - i1];
    }
    for (int64_t c = c0; c <= c1; c++) on[(c < lo ? lo : c >= hi ? hi - 1 : c) - lo] = 1;
  }
  int n = 0;
  for (int64_t k = 0; k < hi - lo; k++) n += on[k];
  return n;
}

int reg_resample_points(const int64_t dim[3], ffdp_mat4 vox2world, const int64_t ldim[3], ffdp_mat4 lvox2world,
                        int shrink, int64_t k0, int64_t k1, int64_t za, int64_t zb, reg_points *pts) {
  memset(pts, 0, sizeof *pts);
  const char *e = getenv("FFDP_PYRAMID_AT");
  if ((e && e[0] == '0') || shrink < 4 || zb <= za || k1 <= k0 || dim[0] > 65535 || dim[1] > 65535 || dim[2] > 65535)
    return 0;
  ffdp_warp wp;
  if (!ffdp_warp_fold(ffdp_mat4_identity(), lvox2world, vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &wp)) return 0;
  double off[3];
  for (int a = 0; a < 3; a++) {
    off[a] = 0;
    for (int c = 0; c < 3; c++)
      if (c != a) off[a] += fabs(wp.B[a][c]) * (double)ldim[c];
    if (!(off[a] < 1e-4)) return 0; /* the level's axes are not the source's */
  }
  const int64_t most = dim[0] > dim[1] ? (dim[0] > zb - za ? dim[0] : zb - za) : (dim[1] > zb - za ? dim[1] : zb - za);
  char *on = malloc((size_t)most);
  int64_t *zs = malloc((size_t)(zb - za) * sizeof(int64_t) + (size_t)(dim[0] + dim[1]) * sizeof(int));
  if (!on || !zs) {
    free(on), free(zs);
    return 0;
  }
  int *xs = (int *)(zs + (zb - za)), *ys = xs + dim[0];
  pts->nx = axis_points(wp.B[0][0], wp.B[0][3], off[0], 0, ldim[0], 0, dim[0], on);
  for (int64_t k = 0, n = 0; k < dim[0]; k++)
    if (on[k]) xs[n++] = (int)k;
  pts->ny = axis_points(wp.B[1][1], wp.B[1][3], off[1], 0, ldim[1], 0, dim[1], on);
  for (int64_t k = 0, n = 0; k < dim[1]; k++)
    if (on[k]) ys[n++] = (int)k;
  pts->nz = axis_points(wp.B[2][2], wp.B[2][3], off[2], k0, k1, za, zb, on);
  for (int64_t k = 0, n = 0; k < zb - za; k++)
    if (on[k]) zs[n++] = za + k;
  free(on);
  pts->zs = zs, pts->xs = xs, pts->ys = ys;
  /* worth it where the rows and columns read are a tenth of the plane's or less (shrink 8 and
   * more: 1/16): at shrink 4 (1/4) the gathers of the x pass cost more than the host's vectorized
   * pass everywhere (ch2better on 2 threads: 99-115 -> 117-142 ms, shrink 16 276-281 -> 72-93) */
  if ((double)pts->nx * (double)pts->ny < 0.1 * (double)dim[0] * (double)dim[1]) return 1;
  free(zs);
  memset(pts, 0, sizeof *pts);
  return 0;
}

ffdp_status reg_shrink_smooth_planes(const int64_t dim[3], ffdp_mat4 vox2world, const float *src, int64_t a, int64_t b,
                                     int shrink, double sigma, const int64_t ldim[3], ffdp_mat4 lvox2world, int64_t k0,
                                     int64_t k1, float *out, ffdp_error *err) {
  const int64_t P = dim[0] * dim[1];
  if (k1 <= k0) return FFDP_OK;
  /* the planes each step owns: the resample reads [za, zb), the last Gaussian r2 around them */
  int64_t za, zb;
  reg_resampled_planes(dim[2], shrink, k0, k1, &za, &zb);
  const int64_t r2 = shrink > 1 ? ffdp_blur_radius(shrink / 3.0) : 0;
  const int64_t m0 = za - r2 > a ? za - r2 : a, m1 = zb + r2 < b ? zb + r2 : b;
  float *t1 = sigma > 0 ? malloc((size_t)((b - a) * P) * sizeof(float)) : NULL,
        *t2 = shrink > 1 ? malloc((size_t)((m1 - m0) * P) * sizeof(float)) : NULL;
  if ((sigma > 0 && !t1) || (shrink > 1 && !t2)) {
    free(t1), free(t2);
    return ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate %.1f MB to build a pyramid level", 2 * (b - a) * P * 4e-6);
  }
  const float *cur = src; /* planes from clo on of the image smoothed so far */
  int64_t clo = a;
  if (sigma > 0) {
    const double sg[3] = {sigma, sigma, sigma};
    const ffdp_slab s = reg_planes_slab(dim, a, b, shrink > 1 ? m0 : k0, shrink > 1 ? m1 : k1);
    ffdp_blur_f32(&s, cur, 1, sg, t1);
    cur = t1;
  }
  if (shrink > 1) {
    const double sd[3] = {shrink / 3.0, shrink / 3.0, shrink / 3.0}; /* as ffdp_volume_downsample */
    const ffdp_slab s = reg_planes_slab(dim, m0, m1, za, zb);
    reg_points pts;
    /* only where the resample reads, when that is much less (the same values there) */
    if (!reg_resample_points(dim, vox2world, ldim, lvox2world, shrink, k0, k1, za, zb, &pts) ||
        ffdp_blur1_at_f32(&s, cur + (m0 - clo) * P, sd, pts.xs, pts.nx, pts.ys, pts.ny, pts.zs, pts.nz, t2))
      ffdp_blur_f32(&s, cur + (m0 - clo) * P, 1, sd, t2);
    free(pts.zs);
    cur = t2, clo = m0;
    ffdp_warp w;
    ffdp_warp_fold(ffdp_mat4_identity(), lvox2world, vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &w);
    ffdp_slab fs = ffdp_slab_whole(ldim[0], ldim[1], ldim[2]);
    const ffdp_slab ms = reg_planes_slab(dim, za, zb, za, zb);
    fs.zlo = fs.z0 = k0, fs.zhi = fs.z1 = k1;
    ffdp_sample_fwd_f32(&w, &fs, NULL, &ms, cur + (za - clo) * P, 1, out);
  } else {
    memcpy(out, cur + (k0 - clo) * P, (size_t)((k1 - k0) * P) * sizeof(float));
  }
  free(t1), free(t2);
  return FFDP_OK;
}

#ifdef FFDP_HAVE_CUDA
/* Whether large host buffers of this pyramid may be page-locked (see reg_pyramid_init). */
static int may_pin(const reg_pyramid *pyr) {
  const char *pin = getenv("FFDP_PIN");
  return pyr->device == 1 && pyr->c->size == 1 && !(pin && pin[0] == '0');
}

/* Whether a host buffer of this size is worth page-locking for its copies: from 64 MB (below, a
 * buffer may share a page with another) up to where the staged copies take over, when on. */
static int pin_worth(size_t bytes) {
  return bytes >= ((size_t)64 << 20) && (bytes < REG_STAGED_COPY_MIN || !reg_staged_copy_on());
}
#endif

/* Undo the page-locking of a level's images (pinned: F's and M's flags). */
static void unpin_pair(const ffdp_volume *F, const ffdp_volume *M, const int pinned[2]) {
#ifdef FFDP_HAVE_CUDA
  if (pinned[0] && F) reg_cuda_unpin(F->data);
  if (pinned[1] && M) reg_cuda_unpin(M->data);
#else
  (void)F, (void)M, (void)pinned;
#endif
}

void reg_pyramid_init(reg_pyramid *p, const ffdp_volume *F, const ffdp_volume *M, int device, const ffdp_comm *comm,
                      int sharded) {
  memset(p, 0, sizeof *p);
  p->F = F, p->M = M, p->device = device, p->c = ffdp_comm_or_single(comm);
  p->sharded = sharded && p->c->size > 1;
  const ffdp_volume *v[2] = {F, M};
  reg_planes *r[2] = {&p->fp, &p->mp};
  for (int k = 0; k < 2; k++) {
    int64_t z0 = 0, z1 = v[k]->dim[2];
    if (p->sharded) ffdp_comm_share(p->c, v[k]->dim[2], &z0, &z1);
    *r[k] = (reg_planes){z0, z1, z0, z1};
  }
#ifdef FFDP_HAVE_CUDA
  /* Every GPU level build uploads source planes and the full-resolution level uploads the
   * images: page-locked, those copies run at the link's rate (a level build at 640^3 took
   * ~400 ms, mostly pageable copies). A copy that starts in a registered range must end in it
   * (CUDA refuses it otherwise), so only whole allocations of one process are registered, and
   * only large ones, whose pages (mmap'd by the C library) hold nothing else: a small buffer
   * can share its first or last page with another, and a later copy from that neighbour would
   * be refused. Ranks keep pageable images (their shares and fetched planes mix in one
   * buffer). FFDP_PIN=0 leaves them pageable (for comparison). Images of REG_STAGED_COPY_MIN
   * or more stay pageable too: their copies go through the staged ring (staged_copy_cuda.cu),
   * and locking a gigavoxel pair and unlocking it after cost more than that. */
  if (may_pin(p)) {
    const double t0 = reg_now();
    for (int k = 0; k < 2; k++) {
      const size_t bytes = (size_t)ffdp_volume_nvox(v[k]) * (size_t)v[k]->ncomp * sizeof(float);
      if (pin_worth(bytes) && !(k == 1 && v[1]->data == v[0]->data))
        p->pinned[k] = reg_cuda_pin(v[k]->data, bytes);
    }
    reg_trace("inputs page-locked (%d, %d): %.1f ms", p->pinned[0], p->pinned[1], 1e3 * (reg_now() - t0));
  }
#endif
}

void reg_pyramid_free(reg_pyramid *p) {
  const double t0 = reg_now();
  for (int k = 0; k < p->n; k++) {
    unpin_pair(p->lv[k].F, p->lv[k].M, p->lv[k].pinned);
    ffdp_volume_free(p->lv[k].F), ffdp_volume_free(p->lv[k].M);
  }
  const int nlv = p->n;
  p->n = 0;
#ifdef FFDP_HAVE_CUDA
  const double t1 = reg_now();
  reg_cuda_pyramid_trim(p, -1);
  const double t2 = reg_now();
  if (p->pinned[0]) reg_cuda_unpin(p->F->data);
  if (p->pinned[1]) reg_cuda_unpin(p->M->data);
  if (p->pinned[0] || p->pinned[1])
    reg_trace("pyramid: %d host levels freed in %.1f ms, device copies %.1f ms, inputs pageable again in %.1f ms", nlv,
              1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (reg_now() - t2));
  p->pinned[0] = p->pinned[1] = 0;
#else
  (void)t0, (void)nlv;
#endif
}

ffdp_status reg_planes_need(const ffdp_comm *c, ffdp_volume *v, reg_planes *p, int64_t a, int64_t b, ffdp_error *err) {
  const int64_t nz = v->dim[2], P = v->dim[0] * v->dim[1] * v->ncomp;
  a = a < 0 ? 0 : a, b = b > nz ? nz : b;
  int64_t lo1 = 0, hi1 = 0, lo2 = 0, hi2 = 0; /* below and above the valid planes: one range each */
  if (a < b && a < p->val_lo) lo1 = a, hi1 = p->val_lo;
  if (a < b && b > p->val_hi) lo2 = p->val_hi, hi2 = b;
  if (c->max(c, hi1 > lo1 || hi2 > lo2) <= 0) return FFDP_OK;
  const float *own = v->data + p->own_lo * P;
  ffdp_status st = c->planes(c, P, p->own_lo, p->own_hi, own, lo1, hi1, v->data + lo1 * P, err);
  if (!st) st = c->planes(c, P, p->own_lo, p->own_hi, own, lo2, hi2, v->data + lo2 * P, err);
  if (st) return st;
  if (hi1 > lo1) p->val_lo = lo1;
  if (hi2 > lo2) p->val_hi = hi2;
  if (hi1 > lo1 || hi2 > lo2)
    reg_trace("planes [%lld, %lld) of %lld valid here", (long long)p->val_lo, (long long)p->val_hi, (long long)nz);
  return FFDP_OK;
}

int reg_keep_level(void) {
  const char *e = getenv("FFDP_KEEP_LEVEL");
  return e ? e[0] != '0' : REG_KEEP_LEVEL_DEFAULT;
}

/* One image of a level: its share of the level's planes on each rank (sharded), or the whole
 * level, built from the planes its source planes reach (fetched from the ranks that hold
 * them). on_gpu: the ranks agreed to build on their devices. */
static ffdp_status level_image(reg_pyramid *pyr, ffdp_volume *src, reg_planes *sp, int shrink, double sigma,
                               int on_gpu, reg_dev_planes *keep, float **keep_out, ffdp_volume **out, reg_planes *op,
                               int *pinned, ffdp_error *err) {
  *pinned = 0;
  const ffdp_comm *c = pyr->c;
  const int f[3] = {shrink, shrink, shrink};
  int64_t d[3] = {src->dim[0], src->dim[1], src->dim[2]};
  ffdp_mat4 w2 = src->vox2world;
  if (shrink > 1) ffdp_shrink_grid(src->dim, src->vox2world, f, d, &w2);
  ffdp_status st = ffdp_volume_create(d, 1, w2, out, err);
  int64_t k0 = 0, k1 = d[2], a = 0, b = 0;
  if (pyr->sharded) {
    const ffdp_slab ls = ffdp_slab_split(d[0], d[1], d[2], c->rank, c->size, 0);
    k0 = ls.z0, k1 = ls.z1;
  }
  if (k1 > k0) level_src_planes(src->dim, shrink, sigma, k0, k1, &a, &b);
  const int64_t P = src->dim[0] * src->dim[1];
  /* sharded: the source planes beyond this rank's share come into their places in the source
   * (kept there: the next level needs mostly the same), so [a, b) is read in place either way */
  if (pyr->sharded && !(st = c->agree(c, st, err))) st = reg_planes_need(c, src, sp, a, b, err);
  const float *planes = src->data + a * P;
#ifdef FFDP_HAVE_CUDA
  if (!st && k1 > k0 && on_gpu) {
    /* the level comes from the device: its pages mapped first by all threads (a copy into
     * unmapped pageable memory faults them in one by one, ~1 GB/s), and page-locked when large
     * (one process): the copy back and the stage's copies to the device then run at the
     * link's rate */
    float *o = (*out)->data + k0 * d[0] * d[1];
    const int64_t no = (k1 - k0) * d[0] * d[1];
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < no; i += 1024) o[i] = 0.f;
    const size_t bytes = (size_t)ffdp_volume_nvox(*out) * sizeof(float);
    if (may_pin(pyr) && pin_worth(bytes)) *pinned = reg_cuda_pin((*out)->data, bytes);
  }
#endif
  if (!st && k1 > k0) {
#ifdef FFDP_HAVE_CUDA
    if (on_gpu)
      st = reg_cuda_shrink_smooth_planes(src->dim, src->vox2world, planes, a, b, shrink, sigma, d, w2, k0, k1,
                                         (*out)->data + k0 * d[0] * d[1], keep, keep_out, err);
    else
#endif
      st = reg_shrink_smooth_planes(src->dim, src->vox2world, planes, a, b, shrink, sigma, d, w2, k0, k1,
                                    (*out)->data + k0 * d[0] * d[1], err);
  }
  (void)on_gpu, (void)keep, (void)keep_out;
  if (st) {
#ifdef FFDP_HAVE_CUDA
    if (*pinned) reg_cuda_unpin((*out)->data);
#endif
    *pinned = 0;
    ffdp_volume_free(*out);
    *out = NULL;
    return st;
  }
  *op = (reg_planes){k0, k1, k0, k1};
  return FFDP_OK;
}

/* The images of level (shrink, sigma): the originals, a cached pair, or a new pair that the
 * pyramid keeps (or the level owns when the pyramid is full). */
static ffdp_status level_images(reg_pyramid *pyr, int shrink, double sigma, reg_level *L, ffdp_error *err) {
  L->c = pyr->c, L->sharded = pyr->sharded;
  if (shrink <= 1 && !(sigma > 0)) {
    L->F = (ffdp_volume *)pyr->F, L->M = (ffdp_volume *)pyr->M; /* lent; only sharded planes are added */
    L->fp = &pyr->fp, L->mp = &pyr->mp;
    return FFDP_OK;
  }
  for (int k = 0; k < pyr->n; k++)
    if (pyr->lv[k].shrink == shrink && pyr->lv[k].sigma == sigma) {
      L->F = pyr->lv[k].F, L->M = pyr->lv[k].M;
      L->fp = &pyr->lv[k].fp, L->mp = &pyr->lv[k].mp;
      return FFDP_OK;
    }
  const double t0 = reg_now();
  ffdp_status st;
  int on_gpu = 0;
#ifdef FFDP_HAVE_CUDA
  if (pyr->device == 1) { /* every rank builds on its device, or none does: the same bits */
    const int64_t nf = ffdp_volume_nvox(pyr->F) / (pyr->sharded ? pyr->c->size : 1),
                  nm = ffdp_volume_nvox(pyr->M) / (pyr->sharded ? pyr->c->size : 1);
    on_gpu = pyr->c->max(pyr->c, !(reg_cuda_pyramid_fits(nf) && reg_cuda_pyramid_fits(nm))) <= 0;
  }
#endif
  reg_planes fp, mp;
  L->M = NULL;
  const char *keep = getenv("FFDP_KEEP_SOURCE"); /* 0: upload the source planes for every build (comparisons) */
  const int k = !(keep && keep[0] == '0');
  /* one process: the new level's images also stay on the device for the stage about to run it */
  const int keep_level = on_gpu && !pyr->sharded && !pyr->coded && reg_keep_level();
  int pinned[2] = {0, 0};
#ifdef FFDP_HAVE_CUDA
  reg_cuda_pyramid_drop_level(pyr); /* the last level's copies, if no stage took them */
#endif
  if (!(st = level_image(pyr, (ffdp_volume *)pyr->F, &pyr->fp, shrink, sigma, on_gpu, k ? &pyr->dev[0] : NULL,
                         keep_level ? &pyr->lvd[0].d : NULL, &L->F, &fp, &pinned[0], err)))
    st = level_image(pyr, (ffdp_volume *)pyr->M, &pyr->mp, shrink, sigma, on_gpu, k ? &pyr->dev[1] : NULL,
                     keep_level ? &pyr->lvd[1].d : NULL, &L->M, &mp, &pinned[1], err);
#ifdef FFDP_HAVE_CUDA
  if (st || !pyr->lvd[0].d || !pyr->lvd[1].d) reg_cuda_pyramid_drop_level(pyr); /* a pair or nothing */
  pyr->lvd[0].of = pyr->lvd[0].d ? L->F : NULL, pyr->lvd[1].of = pyr->lvd[1].d ? L->M : NULL;
#endif
  if ((st = pyr->c->agree(pyr->c, st, err))) {
    unpin_pair(L->F, L->M, pinned);
    ffdp_volume_free(L->F), ffdp_volume_free(L->M);
    L->F = L->M = NULL;
    return st;
  }
  reg_trace("level build (shrink %d, sigma %g, %s%s): %.1f ms", shrink, sigma, on_gpu ? "GPU" : "CPU",
            pyr->sharded ? ", sharded" : "", 1e3 * (reg_now() - t0));
  if (pyr->n < REG_PYRAMID_MAX) {
    pyr->lv[pyr->n].shrink = shrink, pyr->lv[pyr->n].sigma = sigma;
    pyr->lv[pyr->n].F = L->F, pyr->lv[pyr->n].M = L->M;
    pyr->lv[pyr->n].fp = fp, pyr->lv[pyr->n].mp = mp;
    pyr->lv[pyr->n].pinned[0] = pinned[0], pyr->lv[pyr->n].pinned[1] = pinned[1];
    L->fp = &pyr->lv[pyr->n].fp, L->mp = &pyr->lv[pyr->n].mp;
    pyr->n++;
  } else {
    L->owns_images = 1;
    L->own_p[0] = fp, L->own_p[1] = mp;
    L->own_pinned[0] = pinned[0], L->own_pinned[1] = pinned[1];
    L->fp = &L->own_p[0], L->mp = &L->own_p[1];
  }
  return FFDP_OK;
}

ffdp_status reg_level_whole(reg_level *L, ffdp_error *err) {
  if (!L->sharded) return FFDP_OK;
  ffdp_status st = reg_planes_need(L->c, L->F, L->fp, 0, L->F->dim[2], err);
  return st ? st : reg_planes_need(L->c, L->M, L->mp, 0, L->M->dim[2], err);
}

ffdp_status reg_level_ready(reg_level *L, int nact, int64_t halo, ffdp_image_exchange mode, int sample_fixed,
                            ffdp_error *err) {
  if (!L->sharded) return FFDP_OK;
  const ffdp_comm *c = L->c;
  const int64_t *fd = L->F->dim, *md = L->M->dim;
  int64_t fa = 0, fb = 0, ma = 0, mb = 0;
  if (c->rank < nact) {
    const int whole = nact == 1 || mode == FFDP_EXCHANGE_LOCAL;
    const ffdp_slab s = ffdp_slab_split(fd[0], fd[1], fd[2], c->rank, nact, halo);
    const ffdp_slab fsh = ffdp_slab_split(fd[0], fd[1], fd[2], c->rank, nact, 0),
                    msh = ffdp_slab_split(md[0], md[1], md[2], c->rank, nact, 0);
    fa = nact == 1 ? 0 : s.zlo, fb = nact == 1 ? fd[2] : s.zhi;
    if (sample_fixed) fa = whole ? 0 : fsh.z0 < fa ? fsh.z0 : fa, fb = whole ? fd[2] : fsh.z1 > fb ? fsh.z1 : fb;
    ma = whole ? 0 : msh.z0, mb = whole ? md[2] : msh.z1;
  }
  ffdp_status st = reg_planes_need(c, L->F, L->fp, fa, fb, err);
  return st ? st : reg_planes_need(c, L->M, L->mp, ma, mb, err);
}

ffdp_status reg_level_build(reg_pyramid *pyr, const ffdp_volume *fmask, const ffdp_volume *mmask, int shrink,
                            double sigma, reg_level *L, ffdp_error *err) {
  memset(L, 0, sizeof *L);
  ffdp_status st;
  if ((st = level_images(pyr, shrink, sigma, L, err))) return st;
  L->pyr = pyr;
  L->fs = ffdp_slab_whole(L->F->dim[0], L->F->dim[1], L->F->dim[2]);
  L->ms = ffdp_slab_whole(L->M->dim[0], L->M->dim[1], L->M->dim[2]);
  if (fmask) {
    ffdp_volume *r;
    if ((st = ffdp_volume_resample(fmask, L->F->dim, L->F->vox2world, 1, 0, &r, err))) {
      reg_level_free(L);
      return st;
    }
    int64_t n = ffdp_volume_nvox(r);
    L->fmask = malloc((size_t)n);
    if (!L->fmask) {
      ffdp_volume_free(r);
      reg_level_free(L);
      return ffdp_fail(err, FFDP_ERR_NOMEM, "no memory for the fixed mask of a level (%lld voxels)", (long long)n);
    }
    for (int64_t i = 0; i < n; i++) L->fmask[i] = r->data[i] > 0.5f;
    ffdp_volume_free(r);
  }
  if (mmask) {
    if ((st = ffdp_volume_resample(mmask, L->M->dim, L->M->vox2world, 1, 0, &L->mmask, err))) {
      reg_level_free(L);
      return st;
    }
  }
  return FFDP_OK;
}

void reg_level_free(reg_level *L) {
  if (L->owns_images) {
#ifdef FFDP_HAVE_CUDA
    /* their device copies go with them: a later volume at the same address is another image */
    if (L->pyr && ((L->pyr->lvd[0].of && L->pyr->lvd[0].of == L->F) || (L->pyr->lvd[1].of && L->pyr->lvd[1].of == L->M)))
      reg_cuda_pyramid_drop_level(L->pyr);
#endif
    unpin_pair(L->F, L->M, L->own_pinned);
    ffdp_volume_free(L->F), ffdp_volume_free(L->M);
  }
  ffdp_volume_free(L->mmask);
  free(L->fmask);
  memset(L, 0, sizeof *L);
}

ffdp_status reg_pyramid_codes(reg_pyramid *p, ffdp_error *err) {
  const ffdp_volume *v[2] = {p->F, p->M};
  for (int k = 0; k < 2; k++) {
    double lo, hi;
    ffdp_status st = ffdp_volume_intensity_range(v[k], p->sharded ? p->c : NULL, k ? "moving" : "fixed", &lo, &hi, err);
    if (st) return st;
    p->codes[k] = ffdp_code16_for_range(lo, hi);
  }
  p->coded = 1;
  return FFDP_OK;
}

ffdp_status reg_level_decoded(reg_level *L, ffdp_error *err) {
  if (!L->pyr || !L->pyr->coded) return FFDP_OK;
  ffdp_volume *img[2] = {L->F, L->M}, *dec[2] = {NULL, NULL};
  const reg_planes *pl[2] = {L->fp, L->mp};
  ffdp_status st = FFDP_OK;
  for (int k = 0; k < 2 && !st; k++) {
    const int64_t P = img[k]->dim[0] * img[k]->dim[1];
    const int64_t a = L->sharded ? pl[k]->val_lo : 0, b = L->sharded ? pl[k]->val_hi : img[k]->dim[2];
    /* a level of the pyramid's is lent (later stages read it as it is): decode into a copy
     * whose planes beyond [a, b) are never written, as a share's */
    if (!L->owns_images) st = ffdp_volume_create(img[k]->dim, 1, img[k]->vox2world, &dec[k], err);
    float *to = L->owns_images ? img[k]->data : st ? NULL : dec[k]->data;
    if (to && b > a) ffdp_code16_round_f32(img[k]->data + a * P, (b - a) * P, L->pyr->codes[k], to + a * P);
  }
  if (st) {
    ffdp_volume_free(dec[0]);
    return st;
  }
  if (!L->owns_images) { /* the copies are the level's now, with planes records of their own */
    L->own_p[0] = *L->fp, L->own_p[1] = *L->mp;
    L->fp = &L->own_p[0], L->mp = &L->own_p[1];
    L->F = dec[0], L->M = dec[1];
    L->own_pinned[0] = L->own_pinned[1] = 0;
    L->owns_images = 1;
  }
  return FFDP_OK;
}

ffdp_status reg_effective_mask(const reg_level *L, const ffdp_slab *s, const ffdp_warp *w, const float *u,
                               const uint8_t **mask, uint8_t **buf, float **fbuf, ffdp_error *err) {
  const int64_t P = ffdp_slab_plane(s);
  const uint8_t *fm = L->fmask ? L->fmask + s->zlo * P : NULL;
  *mask = fm;
  if (!L->mmask) return FFDP_OK;
  int64_t n = ffdp_slab_stored(s);
  if (!*buf) *buf = malloc((size_t)n);
  if (!*fbuf) *fbuf = malloc((size_t)n * sizeof(float));
  if (!*buf || !*fbuf) return ffdp_fail(err, FFDP_ERR_NOMEM, "no memory for the moving mask on %lld voxels", (long long)n);
  ffdp_warp wn = *w;
  wn.interp = FFDP_INTERP_NEAREST;
  wn.pad = FFDP_PAD_ZERO;
  ffdp_slab store = *s;
  store.z0 = s->zlo, store.z1 = s->zhi;
  ffdp_sample_fwd_f32(&wn, &store, u, &L->ms, L->mmask->data, 1, *fbuf);
  for (int64_t i = 0; i < n; i++) (*buf)[i] = (*fbuf)[i] > 0.5f && (!fm || fm[i]);
  *mask = *buf;
  return FFDP_OK;
}

double reg_metric_pair(const ffdp_metric_spec *m, const ffdp_slab *s, const float *A, const float *B, const uint8_t *mask,
                       float *g) {
  return reg_metric_ranks(NULL, m, s, A, B, mask, g);
}

double reg_metric_ranks(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, const float *A,
                        const float *B, const uint8_t *mask, float *g) {
  return reg_metric_ranks2(comm, m, s, A, B, mask, NULL, g);
}

double reg_metric_ranks2(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, const float *A,
                         const float *B, const uint8_t *mask, float *gA, float *g) {
  if (gA && m->kind != FFDP_METRIC_CC) { /* one pass each way (LNCC forms both in one) */
    const double loss = reg_metric_ranks2(comm, m, s, A, B, mask, NULL, g);
    reg_metric_ranks2(comm, m, s, B, A, mask, NULL, gA);
    return loss;
  }
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  double cnt = (double)ffdp_mask_count(s, mask), loss = NAN; /* integer-valued: exact in any order */
  c->sum(c, &cnt, 1);                                      /* every rank normalizes by the whole grid */
  const double norm = cnt > 0 ? 1.0 / cnt : 0.0;
  const int64_t nzo = s->z1 - s->z0 > 0 ? s->z1 - s->z0 : 0;
  const int bb = m->kind == FFDP_METRIC_MI ? m->bins * m->bins : 1;
  /* Per-plane partials added in global plane order: the same bits on any number of ranks. */
  double *part = calloc((size_t)(nzo > 0 ? nzo : 1) * bb + (size_t)bb * 2, sizeof(double)), *tot = part + nzo * bb;
  ffdp_status st = part ? FFDP_OK : FFDP_ERR_NOMEM;
  if ((st = c->agree(c, st, NULL))) {
    free(part);
    return NAN; /* reported as a non-finite loss */
  }
  switch (m->kind) {
  case FFDP_METRIC_MSE:
    ffdp_mse_planes_f32(s, A, B, mask, norm, g, part);
    if (!c->fold(c, s, part, 1, tot, NULL)) loss = tot[0] * norm;
    break;
  case FFDP_METRIC_CC: {
    ffdp_lncc_params p = {m->window, FFDP_WINDOW_BOX, 1e-5};
    ffdp_lncc_planes2_f32(&p, s, A, B, mask, norm, gA, g, part);
    if (!c->fold(c, s, part, 1, tot, NULL)) loss = tot[0];
    break;
  }
  case FFDP_METRIC_MI: { /* images are normalized to [0,1]: one range for both */
    ffdp_mi_params p = {m->bins, reg_mi_parzen(), 0.0, 1.0, 0.0, 1.0};
    ffdp_mi_hist_planes_f32(&p, s, A, B, mask, part);
    if (!c->fold(c, s, part, bb, tot, NULL)) { /* the joint histogram of the whole grid */
      loss = -ffdp_mi_table_f32(&p, tot, tot + bb);
      if (g) ffdp_mi_grad_f32(&p, s, A, B, mask, tot + bb, norm, g);
    }
    break;
  }
  }
  free(part);
  return loss;
}

ffdp_status reg_injected_failure(const ffdp_comm *comm, int stage, int level, int iter, ffdp_error *err) {
  const char *e = getenv("FFDP_INJECT_FAILURE"); /* "RANK:ITERATION", for the failure tests */
  int r, i;
  if (!e || sscanf(e, "%d:%d", &r, &i) != 2 || r != ffdp_comm_rank(comm) || i != iter || stage != 0 || level != 0)
    return FFDP_OK;
  return ffdp_fail(err, FFDP_ERR_IO, "injected failure (FFDP_INJECT_FAILURE=%s) at iteration %d", e, iter);
}

double reg_metric(const ffdp_metric_spec *m, const reg_level *L, const float *moved, const uint8_t *mask, float *g) {
  return reg_metric_pair(m, &L->fs, L->F->data, moved, mask, g);
}

void reg_adam_step(reg_adam *a, double *theta, const double *g, double lr) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  a->t++;
  double c1 = 1 - pow(b1, a->t), c2 = 1 - pow(b2, a->t);
  for (int i = 0; i < a->n; i++) {
    a->m[i] = b1 * a->m[i] + (1 - b1) * g[i];
    a->v[i] = b2 * a->v[i] + (1 - b2) * g[i] * g[i];
    theta[i] -= lr * (a->m[i] / c1) / (sqrt(a->v[i] / c2) + eps);
  }
}

int reg_converged(const double *hist, int n, int window, double tol) {
  if (window < 2 || n < window) return 0;
  const double *h = hist + n - window;
  double mx = 0, my = 0, sxy = 0, sxx = 0;
  for (int i = 0; i < window; i++) mx += i, my += h[i];
  mx /= window, my /= window;
  for (int i = 0; i < window; i++) sxy += (i - mx) * (h[i] - my), sxx += (i - mx) * (i - mx);
  double slope = sxy / sxx, scale = fabs(my) > 1e-12 ? fabs(my) : 1e-12;
  return slope / scale > -tol;
}

double reg_overlap(const ffdp_volume *F, const ffdp_volume *M, ffdp_mat4 aff) {
  /* On a strided subset of the full-resolution grid (about 32 samples per axis): a pyramid
   * level could collapse a small image to a single voxel. */
  ffdp_warp w;
  ffdp_warp_fold(aff, F->vox2world, M->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
  int64_t st[3], inside = 0, total = 0;
  for (int a = 0; a < 3; a++) st[a] = F->dim[a] / 32 > 1 ? F->dim[a] / 32 : 1;
  for (int64_t z = 0; z < F->dim[2]; z += st[2])
    for (int64_t y = 0; y < F->dim[1]; y += st[1])
      for (int64_t x = 0; x < F->dim[0]; x += st[0]) {
        int ok = 1;
        for (int a = 0; a < 3; a++) {
          double q = w.B[a][0] * x + w.B[a][1] * y + w.B[a][2] * z + w.B[a][3];
          ok &= q >= 0 && q <= (double)M->dim[a] - 1;
        }
        inside += ok, total++;
      }
  return (double)inside / (double)total;
}

void reg_report(const ffdp_reg_options *opt, int si, int lv, int it, double loss, double t_start, double lt0, int64_t n,
                int done, int conv) {
  if (!opt->progress || ffdp_comm_rank(opt->comm) != 0) return; /* rank 0 speaks for all */
  const ffdp_stage_spec *S = &opt->stages[si];
  const double now = reg_now();
  ffdp_progress p = {si, opt->nstages, lv, S->nlevels, it, S->iters[lv], S->kind, loss, now - t_start, now - lt0, n, done, conv};
  opt->progress(opt->progress_ctx, &p);
}

ffdp_status reg_field_to_grid(ffdp_volume **v, const ffdp_volume *grid, ffdp_error *err) {
  if (!*v) return ffdp_volume_create(grid->dim, 3, grid->vox2world, v, err);
  if ((*v)->dim[0] == grid->dim[0] && (*v)->dim[1] == grid->dim[1] && (*v)->dim[2] == grid->dim[2]) return FFDP_OK;
  ffdp_volume *r;
  const double t0 = reg_now();
  ffdp_status st = ffdp_volume_resample(*v, grid->dim, grid->vox2world, 0, 1, &r, err);
  ffdp_volume_free(*v);
  *v = st ? NULL : r;
  reg_trace("field to grid %lldx%lldx%lld: %.1f ms", (long long)grid->dim[0], (long long)grid->dim[1],
            (long long)grid->dim[2], 1e3 * (reg_now() - t0));
  return st;
}

void reg_field_onto_slab(const ffdp_volume *v, const ffdp_volume *grid, const ffdp_slab *s, float *out) {
  const int64_t P = s->nx * s->ny, n = ffdp_slab_stored(s);
  if (!v) {
    memset(out, 0, (size_t)(3 * n) * sizeof(float));
    return;
  }
  if (v->dim[0] == grid->dim[0] && v->dim[1] == grid->dim[1] && v->dim[2] == grid->dim[2]) { /* as reg_field_to_grid */
    memcpy(out, v->data + s->zlo * P * 3, (size_t)(3 * n) * sizeof(float));
    return;
  }
  ffdp_warp w;
  ffdp_warp_fold(ffdp_mat4_identity(), grid->vox2world, v->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &w);
  ffdp_slab store = *s, ms = ffdp_slab_whole(v->dim[0], v->dim[1], v->dim[2]);
  store.z0 = s->zlo, store.z1 = s->zhi;
  ffdp_sample_fwd_f32(&w, &store, NULL, &ms, v->data, 3, out);
}

ffdp_status reg_field_create_mapped(const ffdp_volume *grid, ffdp_volume **v, ffdp_error *err) {
  ffdp_status st = ffdp_volume_create(grid->dim, 3, grid->vox2world, v, err);
  if (st) return st;
  float *d = (*v)->data;
  const int64_t n = ffdp_volume_nvox(grid) * 3;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i += 1024) d[i] = 0.f; /* one write per 4 KiB page maps it */
  return FFDP_OK;
}

static void *field_job_main(void *arg) {
  reg_field_job *j = arg;
  j->st = reg_field_create_mapped(j->grid, &j->v, &j->err);
#ifdef FFDP_HAVE_CUDA
  /* the whole allocation (volumes this large are mapped on their own: volume.c), so that every
   * copy into it starts and ends in the registered range */
  const size_t bytes = (size_t)ffdp_volume_nvox(j->grid) * 3 * sizeof(float);
  if (!j->st && j->pin && bytes >= ((size_t)64 << 20)) {
    const double t0 = reg_now();
    j->pinned = reg_cuda_pin(j->v->data, bytes);
    j->pin_seconds = reg_now() - t0;
  }
#endif
  return NULL;
}

void reg_field_job_start(reg_field_job *j, const ffdp_volume *grid, const reg_pyramid *pyr) {
  memset(j, 0, sizeof *j);
  j->grid = grid;
#ifdef FFDP_HAVE_CUDA
  const char *e = getenv("FFDP_PIN_FIELD"); /* 1: page-locked (comparisons; see reg_internal.h) */
  j->pin = pyr && may_pin(pyr) && e && e[0] == '1';
#else
  (void)pyr;
#endif
  if (pthread_create(&j->thread, NULL, field_job_main, j) == 0) j->state = 1;
}

double reg_field_job_unpin(reg_field_job *j) {
  const double t0 = reg_now();
#ifdef FFDP_HAVE_CUDA
  if (j->pinned && j->v) reg_cuda_unpin(j->v->data);
#endif
  j->pinned = 0;
  return reg_now() - t0;
}

ffdp_status reg_field_job_finish(reg_field_job *j, ffdp_volume **v, ffdp_error *err) {
  if (j->state == 1) pthread_join(j->thread, NULL);
  else if (j->state == 0 && j->grid) j->st = reg_field_create_mapped(j->grid, &j->v, &j->err);
  j->state = 2;
  *v = j->v;
  if (j->st && err) *err = j->err;
  return j->st;
}

void reg_field_job_discard(reg_field_job *j) {
  ffdp_volume *v = NULL;
  if (j->grid && j->state != 0) reg_field_job_finish(j, &v, NULL); /* idle: nothing made yet */
  reg_field_job_unpin(j);
  ffdp_volume_free(v);
  memset(j, 0, sizeof *j);
}

ffdp_status reg_slab_volume(const float *stored, const ffdp_slab *s, const ffdp_volume *grid, ffdp_volume **out,
                            ffdp_error *err) {
  const int64_t d[3] = {s->nx, s->ny, s->zhi - s->zlo};
  ffdp_mat4 shift = ffdp_mat4_identity();
  shift.m[2][3] = (double)s->zlo;
  ffdp_status st = ffdp_volume_create(d, 3, ffdp_mat4_mul(grid->vox2world, shift), out, err);
  if (!st) memcpy((*out)->data, stored, (size_t)(d[0] * d[1] * d[2] * 3) * sizeof(float));
  return st;
}

int reg_slab_covers(ffdp_mat4 prev_vox2world, int64_t full_nz, int64_t have_lo, int64_t have_hi,
                    const ffdp_volume *grid, const ffdp_slab *s) {
  ffdp_warp w; /* grid voxel -> previous-grid voxel, as the resampler computes it */
  ffdp_warp_fold(ffdp_mat4_identity(), grid->vox2world, prev_vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &w);
  double lo = INFINITY, hi = -INFINITY;
  for (int k = 0; k < 8; k++) {
    const double p[3] = {(k & 1) ? s->nx - 1 : 0, (k & 2) ? s->ny - 1 : 0, (k & 4) ? s->zhi - 1 : s->zlo};
    const double z = w.B[2][0] * p[0] + w.B[2][1] * p[1] + w.B[2][2] * p[2] + w.B[2][3];
    lo = fmin(lo, z), hi = fmax(hi, z);
  }
  /* linear taps floor(z) and floor(z) + 1, both border-clamped into the previous grid */
  const double top = (double)(full_nz - 1);
  const int64_t need_lo = (int64_t)floor(fmin(fmax(lo, 0.0), top)) - 1; /* one plane of slack for rounding */
  int64_t need_hi = (int64_t)floor(fmin(fmax(hi, 0.0), top)) + 2;
  if (need_hi > full_nz - 1) need_hi = full_nz - 1;
  return (need_lo >= have_lo || have_lo == 0) && need_hi < have_hi;
}

double reg_level_step_mm(const reg_level *L) {
  double sp[3];
  ffdp_volume_spacing(L->F, sp);
  return fmin(sp[0], fmin(sp[1], sp[2]));
}

void reg_syn_warps(const reg_level *L, ffdp_mat4 aff, ffdp_warp *wfix, ffdp_warp *wmov, ffdp_warp *cfix, ffdp_warp *cmov) {
  ffdp_warp_fold(ffdp_mat4_identity(), L->F->vox2world, L->F->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, wfix);
  ffdp_warp_fold(aff, L->F->vox2world, L->M->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, wmov);
  reg_compose_warp(L->F->vox2world, ffdp_mat4_identity(), cfix);
  reg_compose_warp(L->F->vox2world, aff, cmov);
}

void reg_level_done(const ffdp_reg_options *opt, int si, int lv, const double *hist, int it, ffdp_status st,
                    double t_start, double lt0, int64_t n, int conv, ffdp_stage_summary *sum) {
  sum->final_loss = it > 0 ? hist[it - 1] : 0;
  sum->iterations += it;
  if (!st) reg_report(opt, si, lv, it, sum->final_loss, t_start, lt0, n, 1, conv);
}

void reg_level_account(const ffdp_comm *comm, ffdp_stage_summary *sum) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  double acct[2] = {c->rank == 0 ? sum->iterations : 0, c->rank == 0 ? sum->final_loss : 0};
  c->sum(c, acct, 2); /* rank 0 took part in every level: its account stands for all */
  sum->iterations = (int)acct[0], sum->final_loss = acct[1];
}
