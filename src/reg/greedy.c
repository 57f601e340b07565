/* Greedy deformable stage with compositive updates (FireANTs/ANTs style):
 *   g  = smooth(dL/du, grad_sigma), normalized by its largest vector norm
 *   d  = -lr·h · Adam(g)                      (h = smallest voxel size, mm)
 *   u <- smooth(d + u∘(x + A^-1·d), warp_sigma)
 * so that phi_new = phi∘(x + A^-1 d) exactly before smoothing.
 * Distributed over the ranks of opt->comm: each rank owns a slab of the level's fixed grid and
 * stores a halo as wide as the widest operator needs; one process is the one-rank case. */
#include "reg/reg_internal.h"
#include "reg/image_share.h"
#include "reg/handover.h"
#include "core/comm_internal.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Adam on a field, in place: g holds the normalized gradient and receives the update d. */
/* The gradient scaled by `scale` (1 / its largest norm) on the way in: one pass over the
 * gradient and both moments (the scaling used to be a pass of its own; same bits). With bf16
 * moments the step uses the moments before rounding, as the GPU's does. */
static void field_adam(float *g, const reg_moments *mo, int64_t off, int64_t n, int t, double step, float scale) {
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  const float c1 = (float)(1 - pow(b1, t)), c2 = (float)(1 - pow(b2, t)), s = (float)step;
  if (mo->bf16) {
    uint16_t *m = (uint16_t *)mo->m + off, *v = (uint16_t *)mo->v + off;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const float gi = g[i] * scale;
      const float mi = b1 * reg_from_bf16(m[i]) + (1 - b1) * gi, vi = b2 * reg_from_bf16(v[i]) + (1 - b2) * gi * gi;
      m[i] = reg_to_bf16(mi), v[i] = reg_to_bf16(vi);
      g[i] = -s * (mi / c1) / (sqrtf(vi / c2) + eps);
    }
    return;
  }
  float *m = (float *)mo->m + off, *v = (float *)mo->v + off;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i] * scale;
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    g[i] = -s * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
  }
}

void reg_moments_alloc(reg_moments *mo, int fields, int64_t n3, int bf16, int coarse) {
  const size_t es = bf16 ? 2 : 4, moments = (size_t)n3 * 2 * (size_t)fields * es; /* a multiple of 4 bytes */
  char *p = calloc(moments + (coarse ? (size_t)n3 * sizeof(float) : 0), 1);
  for (int k = 0; k < fields; k++) {
    mo[k].m = p ? p + (size_t)(2 * k) * (size_t)n3 * es : NULL;
    mo[k].v = p ? p + (size_t)(2 * k + 1) * (size_t)n3 * es : NULL;
    mo[k].bf16 = bf16, mo[k].coarse = coarse;
    mo[k].t = p && coarse ? (float *)(p + moments) : NULL;
  }
}

/* Largest |z shift| (voxels) that S applies to the 3-vectors d. */
static double max_zshift(const double S[3][3], const float *d, int64_t n) {
  double mx = 0;
#pragma omp parallel for reduction(max : mx)
  for (int64_t i = 0; i < n; i++) {
    double z = fabs(S[2][0] * d[3 * i] + S[2][1] * d[3 * i + 1] + S[2][2] * d[3 * i + 2]);
    mx = z > mx ? z : mx;
  }
  return mx;
}

int reg_field_step(const ffdp_comm *comm, const ffdp_slab *s, float *u, float *gu, const reg_moments *mo, int t,
                   const ffdp_warp *cw, double step, double grad_sigma, double warp_sigma, float *tmp, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  const int64_t P = ffdp_slab_plane(s), own = (s->z0 - s->zlo) * P * 3, n = (s->z1 - s->z0) * P;
  const double gs[3] = {grad_sigma, grad_sigma, grad_sigma}, ws[3] = {warp_sigma, warp_sigma, warp_sigma};
  const double T[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  float *d = tmp; /* the update; gu, once smoothed into it, takes the composition */
  ffdp_status st = c->halo(c, s, gu, 3, err);
  if ((st = c->agree(c, st, err))) return -1;
  ffdp_slab ext = *s; /* the coarse step reads the smoothed gradient two planes past the owned */
  if (mo->coarse) reg_coarse_extend(s, &ext);
  ffdp_blur_f32(&ext, gu, 3, gs, d);
  double mx = c->max(c, reg_max_norm3(d + own, n));
  const int moved = mx > 0;
  if (moved && mo->coarse) {
    st = reg_coarse_adam(s, d, mo, t, step, (float)(1.0 / mx))
             ? ffdp_fail(err, FFDP_ERR_NOMEM, "the coarse Adam step: out of memory")
             : FFDP_OK;
    if ((st = c->agree(c, st, err))) return -1;
  } else if (moved) {
    field_adam(d + own, mo, own, 3 * n, t, step, (float)(1.0 / mx));
  } else { /* a vanished gradient: a zero update (the warp is still smoothed), then the level stops */
    memset(d + own, 0, (size_t)n * 3 * sizeof(float));
  }
  if (c->size > 1) { /* u is read at p + S d: those planes must be stored */
    const double reach = c->max(c, max_zshift(cw->S, d + own, n)) + 1;
    const int64_t below = s->z0 > 0 ? s->z0 - s->zlo : INT64_MAX, above = s->z1 < s->nz ? s->zhi - s->z1 : INT64_MAX;
    const double have = c->max(c, -(double)(below < above ? below : above)); /* -min over ranks */
    if (reach > -have) {
      ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "an update reached %.1f planes, past the %g-plane halo; use fewer ranks",
                reach, -have);
      return -1;
    }
  }
  ffdp_compose_fwd_f32(cw, T, s, d, s, u, gu);
  if (warp_sigma > 0) {
    st = c->halo(c, s, gu, 3, err);
    if ((st = c->agree(c, st, err))) return -1;
    ffdp_blur_f32(s, gu, 3, ws, u);
  } else {
    memcpy(u + own, gu + own, (size_t)n * 3 * sizeof(float));
  }
  st = c->halo(c, s, u, 3, err);
  return c->agree(c, st, err) ? -1 : moved;
}

void reg_compose_warp(ffdp_mat4 fixed_vox2world, ffdp_mat4 aff, ffdp_warp *cw) {
  ffdp_mat4 wfinv, ainv;
  ffdp_mat4_inverse(fixed_vox2world, &wfinv);
  ffdp_mat4_inverse(aff, &ainv);
  ffdp_mat4 sm = ffdp_mat4_mul(wfinv, ainv);
  memset(cw, 0, sizeof *cw);
  for (int a = 0; a < 3; a++) {
    cw->B[a][a] = 1;
    for (int b = 0; b < 3; b++) cw->S[a][b] = sm.m[a][b];
  }
  cw->interp = FFDP_INTERP_LINEAR, cw->pad = FFDP_PAD_BORDER;
}

/* Planes of halo a deformable level needs: the metric's window, both smoothings, and room for
 * the composition's lookups (normalized Adam steps stay well under 3 voxels). */
int64_t reg_deformable_halo(const ffdp_stage_spec *S, int coarse_state) {
  int64_t h = 4;
  if (S->metric.kind == FFDP_METRIC_CC) {
    ffdp_lncc_params p = {S->metric.window, FFDP_WINDOW_BOX, 1e-5};
    h = ffdp_lncc_halo(&p) > h ? ffdp_lncc_halo(&p) : h;
  }
  /* moments on the coarse grid: the gradient is smoothed two planes past the owned ones */
  const int64_t g = ffdp_blur_radius(S->grad_sigma) + (coarse_state ? 2 : 0), w = ffdp_blur_radius(S->warp_sigma);
  h = g > h ? g : h;
  return w > h ? w : h;
}

int reg_result_to_root(const ffdp_reg_options *opt, int si, const ffdp_comm *comm) {
  return opt->result_on_root && !opt->result_shares && si == opt->nstages - 1 && ffdp_comm_or_single(comm)->size > 1;
}

int reg_result_shares(const ffdp_reg_options *opt, int si, const ffdp_comm *comm) {
  return opt->result_shares && si == opt->nstages - 1 && ffdp_comm_or_single(comm)->size > 1;
}

/* Ranks that can take a level: each must own at least `halo` planes (a thinner slab could not
 * serve its neighbours' halos), so coarse levels gather onto fewer ranks. */
int reg_level_ranks(int size, int64_t nz, int64_t halo) {
  int64_t n = halo > 0 ? nz / halo : size;
  if (n < 1) n = 1;
  return (int)(n < size ? n : size);
}

/* One level on the active ranks: the previous level's field (prev: the whole field, this rank's
 * kept planes, or NULL) in; the updated stored planes out in *u_slab_out (the caller keeps them
 * or gathers). */
static ffdp_status greedy_level(const ffdp_comm *c, const reg_level *L, const ffdp_reg_options *opt, int si, int lv,
                                ffdp_mat4 aff, const ffdp_volume *prev, int64_t halo, ffdp_stage_summary *sum,
                                double t_start, ffdp_slab *slab_out, float **u_slab_out, ffdp_error *err) {
  const ffdp_stage_spec *S = &opt->stages[si];
  const int64_t nx = L->F->dim[0], ny = L->F->dim[1], nz = L->F->dim[2], P = nx * ny;
  const ffdp_slab s = c->size > 1 ? ffdp_slab_split(nx, ny, nz, c->rank, c->size, halo) : L->fs;
  ffdp_slab store = s; /* the warped image is computed on every stored plane: no exchange */
  store.z0 = s.zlo, store.z1 = s.zhi;
  const int64_t n = ffdp_slab_stored(&s), ntot = nx * ny * nz;
  /* the warp, its gradient and a scratch field (which also holds the warped image and the
   * metric's gradient until the step), and the Adam moments: 36 B per stored voxel and 12 or
   * 24 B of moments (1/8 of that on the coarse grid, with a transient) */
  float *buf = calloc((size_t)n * 9, sizeof(float));
  reg_moments mo;
  const int coarse = opt->state_resolution == FFDP_STATE_HALF;
  const int64_t nm = reg_moment_values(&s, coarse);
  reg_moments_alloc(&mo, 1, nm, opt->state_precision == FFDP_STATE_BF16, coarse);
  double *hist = malloc((size_t)(S->iters[lv] + 1) * sizeof(double));
  ffdp_status st = FFDP_OK;
  if (!buf || !mo.m || !hist)
    st = ffdp_fail(err, FFDP_ERR_NOMEM, "greedy level %d: cannot allocate %.1f MB", lv + 1,
                   (n * 36.0 + nm * (mo.bf16 ? 4 : 8) + (coarse ? nm * 4.0 : 0)) / 1e6);
  if ((st = c->agree(c, st, err))) {
    free(buf), free(mo.m), free(hist);
    return st;
  }
  float *u = buf, *gu = buf + 3 * n, *tmp = buf + 6 * n, *moved = tmp, *gm = tmp + n;
  reg_field_onto_slab(prev, L->F, &s, u);
  const float *F = L->F->data + s.zlo * P;
  uint8_t *mbuf = NULL;
  float *fbuf = NULL;
  const double h = reg_level_step_mm(L);
  ffdp_warp cw, w; /* compose: fixed voxel p + Wf^-1·A^-1·d(p); border-clamped fields */
  reg_compose_warp(L->F->vox2world, aff, &cw);
  ffdp_warp_fold(aff, L->F->vox2world, L->M->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
  reg_share sh; /* the moving image's planes this rank's points reach (image_share.h) */
  reg_share_open(&sh, c, L->M, reg_share_mode(opt, c));
  double lt0 = reg_now();
  int it = 0, conv = 0;
  for (; it < S->iters[lv] && !conv; it++) {
    if ((st = c->agree(c, reg_injected_failure(c, si, lv, it + 1, err), err))) break;
    const uint8_t *mask = NULL;
    if ((st = c->agree(c, reg_effective_mask(L, &s, &w, u, &mask, &mbuf, &fbuf, err), err))) break;
    const float *M = NULL;
    ffdp_slab ms;
    if (sh.mode == FFDP_EXCHANGE_RING) /* image gradient at q into gu; the chain rule below */
      st = reg_share_ring(&sh, &w, &store, u, moved, gu, err);
    else if (!(st = reg_share_window(&sh, &w, &store, u, &M, &ms, err)))
      ffdp_sample_fwd_f32(&w, &store, u, &ms, M, 1, moved);
    if (st) break;
    double loss = reg_metric_ranks(c, &S->metric, &s, F, moved, mask, gm);
    if (!isfinite(loss)) {
      st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
      break;
    }
    hist[it] = loss;
    if (sh.mode == FFDP_EXCHANGE_RING) ffdp_sample_bwd_dq_f32(&w, &s, u, &L->ms, gm, gu, gu);
    else ffdp_sample_bwd_f32(&w, &s, u, &ms, M, 1, gm, gu, NULL, NULL);
    int r = reg_field_step(c, &s, u, gu, &mo, it + 1, &cw, S->lr * h, S->grad_sigma, S->warp_sigma, tmp, err);
    if (r < 0) {
      st = err ? err->code : FFDP_ERR_IO;
      break;
    }
    conv = !r || reg_converged(hist, it + 1, S->window, S->tol);
    reg_report(opt, si, lv, it + 1, loss, t_start, lt0, ntot, 0, conv);
  }
  reg_level_done(opt, si, lv, hist, it, st, t_start, lt0, ntot, conv, sum);
  reg_share_close(&sh, sum);
  free(hist), free(mbuf), free(fbuf), free(mo.m);
  if (st) {
    free(buf);
    return st;
  }
  float *keep = realloc(buf, (size_t)n * 3 * sizeof(float)); /* the warp leads the buffer: keep only it */
  *slab_out = s, *u_slab_out = keep ? keep : buf;
  return FFDP_OK;
}

ffdp_status reg_greedy_stage(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                             ffdp_mat4 aff, ffdp_volume **u_io, ffdp_stage_summary *sum, double t_start, ffdp_error *err) {
  const ffdp_volume *F = pyr->F;
  const ffdp_stage_spec *S = &opt->stages[si];
  const ffdp_comm *c = ffdp_comm_or_single(opt->comm);
  ffdp_volume *u = *u_io;
  *u_io = NULL;
  double t0 = reg_now();
  sum->kind = S->kind;
  sum->iterations = 0;
  ffdp_status st = FFDP_OK;
  const int64_t halo = reg_deformable_halo(S, opt->state_resolution == FFDP_STATE_HALF);
  const int to_root = reg_result_to_root(opt, si, c);
  reg_handover ho; /* each rank's planes of the last level, when the next needs no others' */
  memset(&ho, 0, sizeof ho);
  for (int lv = 0; lv < S->nlevels && !st; lv++) {
    reg_level L;
    st = reg_level_build(pyr, opt->fixed_mask, opt->moving_mask, S->shrink[lv], S->smooth[lv], &L, err);
    if ((st = c->agree(c, st, err))) {
      if (L.F || L.M) reg_level_free(&L);
      break;
    }
    /* coarse levels whose slabs would be thinner than the halo run on fewer ranks */
    const int nact = reg_level_ranks(c->size, L.F->dim[2], halo);
    if (!st) st = reg_level_ready(&L, nact, halo, reg_share_mode(opt, c), 0, err); /* sharded inputs: the planes it reads */
    if (!st) st = c->agree(c, reg_level_decoded(&L, err), err); /* 16-bit images: the values the codes give */
    const ffdp_volume *prev = NULL; /* own planes carried over, or the gathered field (world mm) */
    if (!st) st = reg_handover_next(&ho, c, L.F, nact, halo, 1, &u, &prev, err);
    ffdp_comm *sub = st ? NULL : nact == c->size ? (ffdp_comm *)c : c->first(c, nact);
    ffdp_slab s = L.fs;
    float *us = NULL;
    if (sub) st = greedy_level(sub, &L, opt, si, lv, aff, prev, halo, sum, t_start, &s, &us, err);
    if (sub && sub != c) ffdp_comm_free(sub);
    if (!(st = c->agree(c, st, err))) {
      reg_level_account(c, sum);
      st = c->agree(c, reg_handover_keep(&ho, 1, us, &s, L.F, nact == c->size, err), err);
    }
    free(us);
    reg_level_free(&L);
  }
  if (!st && reg_result_shares(opt, si, c)) st = reg_handover_share(&ho, c, F, &u, err); /* each rank its planes */
  else if (!st) st = reg_handover_finish(&ho, c, &u, to_root, err); /* the whole field, on rank 0 or every rank */
  reg_handover_clear(&ho);
  if (!st && !(to_root && c->rank != 0)) st = reg_field_to_grid(&u, F, err); /* final field at full resolution */
  if (st) {
    ffdp_volume_free(u);
    return st;
  }
  *u_io = u;
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
