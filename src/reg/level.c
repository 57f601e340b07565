/* Pyramid levels and the metric/mask plumbing shared by all stages. */
#include "reg/reg_internal.h"
#include "core/err.h"
#include "ops/kernels1d.h"
#include <math.h>
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

double reg_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

static ffdp_status shrink_smooth(const ffdp_volume *v, int shrink, double sigma, ffdp_volume **out, ffdp_error *err) {
  const double s[3] = {sigma, sigma, sigma};
  ffdp_volume *sm = NULL;
  ffdp_status st;
  if (sigma > 0) {
    if ((st = ffdp_volume_smooth(v, s, &sm, err))) return st;
    v = sm;
  }
  const int f[3] = {shrink, shrink, shrink};
  if (shrink > 1) st = ffdp_volume_downsample(v, f, out, err);
  else st = ffdp_volume_clone(v, out, err);
  ffdp_volume_free(sm);
  return st;
}

void reg_pyramid_free(reg_pyramid *p) {
  for (int k = 0; k < p->n; k++) ffdp_volume_free(p->lv[k].F), ffdp_volume_free(p->lv[k].M);
  p->n = 0;
}

/* The images of level (shrink, sigma): the originals, a cached pair, or a new pair that the
 * pyramid keeps (or the level owns when the pyramid is full). */
static ffdp_status level_images(reg_pyramid *pyr, int shrink, double sigma, reg_level *L, ffdp_error *err) {
  if (shrink <= 1 && !(sigma > 0)) {
    L->F = (ffdp_volume *)pyr->F, L->M = (ffdp_volume *)pyr->M; /* lent, never written */
    return FFDP_OK;
  }
  for (int k = 0; k < pyr->n; k++)
    if (pyr->lv[k].shrink == shrink && pyr->lv[k].sigma == sigma) {
      L->F = pyr->lv[k].F, L->M = pyr->lv[k].M;
      return FFDP_OK;
    }
  const double t0 = reg_now();
  ffdp_status st;
  int on_gpu = 0;
#ifdef FFDP_HAVE_CUDA
  on_gpu = pyr->device == 1 && reg_cuda_pyramid_fits(pyr->F) && reg_cuda_pyramid_fits(pyr->M);
  if (on_gpu) {
    if (!(st = reg_cuda_shrink_smooth(pyr->F, shrink, sigma, &L->F, err)))
      st = reg_cuda_shrink_smooth(pyr->M, shrink, sigma, &L->M, err);
  } else
#endif
  if (!(st = shrink_smooth(pyr->F, shrink, sigma, &L->F, err)))
    st = shrink_smooth(pyr->M, shrink, sigma, &L->M, err);
  if (st) {
    ffdp_volume_free(L->F), ffdp_volume_free(L->M);
    L->F = L->M = NULL;
    return st;
  }
  reg_trace("level build (shrink %d, sigma %g, %s): %.1f ms", shrink, sigma, on_gpu ? "GPU" : "CPU",
            1e3 * (reg_now() - t0));
  if (pyr->n < REG_PYRAMID_MAX) {
    pyr->lv[pyr->n].shrink = shrink, pyr->lv[pyr->n].sigma = sigma;
    pyr->lv[pyr->n].F = L->F, pyr->lv[pyr->n].M = L->M;
    pyr->n++;
  } else {
    L->owns_images = 1;
  }
  return FFDP_OK;
}

ffdp_status reg_level_build(reg_pyramid *pyr, const ffdp_volume *fmask, const ffdp_volume *mmask, int shrink,
                            double sigma, reg_level *L, ffdp_error *err) {
  memset(L, 0, sizeof *L);
  ffdp_status st;
  if ((st = level_images(pyr, shrink, sigma, L, err))) return st;
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
  if (L->owns_images) ffdp_volume_free(L->F), ffdp_volume_free(L->M);
  ffdp_volume_free(L->mmask);
  free(L->fmask);
  memset(L, 0, sizeof *L);
}

const uint8_t *reg_effective_mask(const reg_level *L, const ffdp_warp *w, const float *u, uint8_t **buf, float **fbuf) {
  if (!L->mmask) return L->fmask;
  int64_t n = ffdp_slab_stored(&L->fs);
  if (!*buf) *buf = malloc((size_t)n);
  if (!*fbuf) *fbuf = malloc((size_t)n * sizeof(float));
  ffdp_warp wn = *w;
  wn.interp = FFDP_INTERP_NEAREST;
  wn.pad = FFDP_PAD_ZERO;
  ffdp_sample_fwd_f32(&wn, &L->fs, u, &L->ms, L->mmask->data, 1, *fbuf);
  for (int64_t i = 0; i < n; i++) (*buf)[i] = (*fbuf)[i] > 0.5f && (!L->fmask || L->fmask[i]);
  return *buf;
}

double reg_metric_pair(const ffdp_metric_spec *m, const ffdp_slab *s, const float *A, const float *B, const uint8_t *mask,
                       float *g) {
  return reg_metric_ranks(NULL, m, s, A, B, mask, g);
}

double reg_metric_ranks(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, const float *A,
                        const float *B, const uint8_t *mask, float *g) {
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
    ffdp_lncc_planes_f32(&p, s, A, B, mask, norm, g, part);
    if (!c->fold(c, s, part, 1, tot, NULL)) loss = tot[0];
    break;
  }
  case FFDP_METRIC_MI: { /* images are normalized to [0,1]: one range for both */
    ffdp_mi_params p = {m->bins, FFDP_PARZEN_BSPLINE, 0.0, 1.0, 0.0, 1.0};
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
