/* Rigid and affine stages: Adam on a small parameter vector theta with
 *   phi(x) = Aff0 · G(theta)(x),  G(x) = L(theta)·(x - c) + c + R·tau,
 * c the fixed image centre and R its half-extent (so translations are O(1) like the other
 * parameters). The loss gradient w.r.t. [A t] comes from the sampler backward; the chain
 * to theta uses the Jacobian of the closed-form map theta -> [A t]. */
#include "reg/reg_internal.h"
#include "core/comm_internal.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int rigid;
  ffdp_mat4 aff0;
  double c[3], R;
} linear_map;

static void rodrigues(const double w[3], double Rm[3][3]) {
  double th = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
  double K[3][3] = {{0, -w[2], w[1]}, {w[2], 0, -w[0]}, {-w[1], w[0], 0}};
  double a = th > 1e-12 ? sin(th) / th : 1 - th * th / 6, b = th > 1e-6 ? (1 - cos(th)) / (th * th) : 0.5 - th * th / 24;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      double kk = 0;
      for (int k = 0; k < 3; k++) kk += K[i][k] * K[k][j];
      Rm[i][j] = (i == j) + a * K[i][j] + b * kk;
    }
}

static ffdp_mat4 map_eval(const linear_map *m, const double *th) {
  double L[3][3];
  const double *tau;
  if (m->rigid) {
    rodrigues(th, L);
    tau = th + 3;
  } else {
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) L[i][j] = (i == j) + th[3 * i + j];
    tau = th + 9;
  }
  ffdp_mat4 g = ffdp_mat4_identity();
  for (int i = 0; i < 3; i++) {
    double s = 0;
    for (int j = 0; j < 3; j++) g.m[i][j] = L[i][j], s += L[i][j] * m->c[j];
    g.m[i][3] = m->c[i] - s + m->R * tau[i];
  }
  return ffdp_mat4_mul(m->aff0, g);
}

/* CPU evaluator: sample, metric and affine gradient on host memory, masks supported. Over
 * several ranks each takes a slab of the level (images are on every rank, so the warped image
 * is computed on the stored planes and nothing but sums crosses ranks). */
typedef struct {
  reg_linear_eval base;
  const reg_level *L;
  const ffdp_comm *comm;
  ffdp_slab s;
  float *moved, *g, *fbuf;
  double *part; /* affine gradient per owned plane */
  uint8_t *mbuf;
} cpu_eval;

static double cpu_run(reg_linear_eval *self, const ffdp_metric_spec *m, const ffdp_warp *w, double gB[3][4], int *rc) {
  cpu_eval *e = (cpu_eval *)self;
  const reg_level *L = e->L;
  const ffdp_comm *c = ffdp_comm_or_single(e->comm);
  const int64_t P = ffdp_slab_plane(&e->s);
  ffdp_slab store = e->s;
  store.z0 = store.zlo, store.z1 = store.zhi;
  const uint8_t *mask = NULL;
  if (c->agree(c, reg_effective_mask(L, &e->s, w, NULL, &mask, &e->mbuf, &e->fbuf, &self->err), &self->err)) {
    *rc = -1;
    return NAN;
  }
  ffdp_sample_fwd_f32(w, &store, NULL, &L->ms, L->M->data, 1, e->moved);
  double loss = reg_metric_ranks(c, m, &e->s, L->F->data + e->s.zlo * P, e->moved, mask, e->g);
  ffdp_sample_bwd_planes_f32(w, &e->s, NULL, &L->ms, L->M->data, 1, e->g, NULL, e->part, NULL);
  *rc = c->fold(c, &e->s, e->part, 12, &gB[0][0], NULL) ? -1 : 0; /* plane order: same bits on any split */
  return loss;
}

static void cpu_release(reg_linear_eval *self) {
  cpu_eval *e = (cpu_eval *)self;
  free(e->moved), free(e->g), free(e->mbuf), free(e->fbuf), free(e->part);
  free(e);
}

static reg_linear_eval *linear_eval_cpu(const reg_level *L, const ffdp_comm *comm, const ffdp_metric_spec *m,
                                        ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  int64_t halo = 0;
  if (m->kind == FFDP_METRIC_CC) {
    ffdp_lncc_params p = {m->window, FFDP_WINDOW_BOX, 1e-5};
    halo = ffdp_lncc_halo(&p);
  }
  const ffdp_slab s = c->size > 1 ? ffdp_slab_split(L->F->dim[0], L->F->dim[1], L->F->dim[2], c->rank, c->size, halo)
                                  : L->fs;
  const int64_t n = ffdp_slab_stored(&s) > 0 ? ffdp_slab_stored(&s) : 1;
  cpu_eval *e = calloc(1, sizeof *e);
  const int64_t nzo = s.z1 - s.z0 > 0 ? s.z1 - s.z0 : 1;
  if (e) {
    e->moved = malloc((size_t)n * sizeof(float)), e->g = malloc((size_t)n * sizeof(float));
    e->part = malloc((size_t)nzo * 12 * sizeof(double));
  }
  if (!e || !e->moved || !e->g || !e->part) {
    if (e) free(e->moved), free(e->g), free(e->part), free(e);
    ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate %.1f MB for a linear stage", n * 8 / 1e6);
    return NULL;
  }
  e->base.run = cpu_run;
  e->base.release = cpu_release;
  e->L = L, e->comm = comm, e->s = s;
  return &e->base;
}

ffdp_status reg_linear_stage(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                             ffdp_mat4 *aff, ffdp_stage_summary *sum, double t_start, ffdp_error *err) {
  const ffdp_volume *F = pyr->F;
  const ffdp_stage_spec *S = &opt->stages[si];
  linear_map map = {S->kind == FFDP_STAGE_RIGID, *aff, {0, 0, 0}, 0};
  double lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  for (int k = 0; k < 8; k++) {
    double p[3] = {(k & 1) ? F->dim[0] - 1 : 0, (k & 2) ? F->dim[1] - 1 : 0, (k & 4) ? F->dim[2] - 1 : 0}, X[3];
    ffdp_mat4_apply(F->vox2world, p, X);
    for (int a = 0; a < 3; a++) lo[a] = fmin(lo[a], X[a]), hi[a] = fmax(hi[a], X[a]);
  }
  for (int a = 0; a < 3; a++) map.c[a] = 0.5 * (lo[a] + hi[a]), map.R = fmax(map.R, 0.5 * (hi[a] - lo[a]));
  const int np = map.rigid ? 6 : 12;
  double t0 = reg_now();
#ifdef FFDP_HAVE_CUDA
  const double base = opt->device == 1 ? reg_cuda_used_bytes() - reg_cuda_pyramid_kept(pyr) : 0;
#else
  const double base = 0;
#endif
  sum->kind = S->kind;
  sum->iterations = 0;
  sum->device_peak_bytes = 0;
  for (int lv = 0; lv < S->nlevels; lv++) {
    reg_level L;
    ffdp_status st = reg_level_build(pyr, opt->fixed_mask, opt->moving_mask, S->shrink[lv], S->smooth[lv], &L, err);
    if (st) return st;
    if ((st = reg_level_whole(&L, err))) { /* the affine may sample the moving image anywhere */
      reg_level_free(&L);
      return st;
    }
    const int64_t n = ffdp_volume_nvox(L.F);
#ifdef FFDP_HAVE_CUDA
    reg_linear_eval *ev = opt->device == 1 ? reg_linear_eval_cuda(&L, opt->comm, &S->metric, err) : linear_eval_cpu(&L, opt->comm, &S->metric, err);
#else
    reg_linear_eval *ev = linear_eval_cpu(&L, opt->comm, &S->metric, err);
#endif
    const ffdp_comm *c = ffdp_comm_or_single(opt->comm);
    reg_trace("linear level %d: evaluator ready (device upload) at %.1f ms", lv + 1, 1e3 * (reg_now() - t0));
    if ((st = c->agree(c, ev ? FFDP_OK : err ? err->code : FFDP_ERR_NOMEM, err))) {
      if (ev) ev->release(ev);
      reg_level_free(&L);
      return st;
    }
    double *hist = malloc((size_t)(S->iters[lv] + 1) * sizeof(double));
    double th[12] = {0}, lt0 = reg_now(), t_first = 0, t_eval = 0;
    reg_adam adam = {np, 0, {0}, {0}};
    const double lr = S->lr / (double)(1 << lv); /* finer levels take smaller steps */
    int it = 0, conv = 0;
    for (; it < S->iters[lv] && !conv; it++) {
      map.aff0 = *aff;
      ffdp_mat4 a = map_eval(&map, th);
      ffdp_warp w;
      ffdp_warp_fold(a, L.F->vox2world, L.M->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
      double gB[3][4], gA[3][4], gth[12];
      int rc = 0;
      const double te = reg_now();
      double loss = ev->run(ev, &S->metric, &w, gB, &rc);
      if (it == 0) t_eval = reg_now() - te;
      if (rc) {
        st = ffdp_fail(err, ev->err.code ? ev->err.code : FFDP_ERR_IO, "stage %d level %d: %s", si + 1, lv + 1,
                       ev->err.msg[0] ? ev->err.msg : "device error");
        break;
      }
      if (!isfinite(loss)) {
        st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
        break;
      }
      hist[it] = loss;
      ffdp_warp_affine_grad(gB, L.F->vox2world, L.M->vox2world, gA);
      for (int k = 0; k < np; k++) { /* d[A t]/d theta_k by central differences of the closed form */
        const double h = 1e-6;
        double tp[12], tm[12];
        memcpy(tp, th, sizeof tp), memcpy(tm, th, sizeof tm);
        tp[k] += h, tm[k] -= h;
        ffdp_mat4 ap = map_eval(&map, tp), am = map_eval(&map, tm);
        double s = 0;
        for (int i = 0; i < 3; i++)
          for (int j = 0; j < 4; j++) s += gA[i][j] * (ap.m[i][j] - am.m[i][j]) / (2 * h);
        gth[k] = s;
      }
      reg_adam_step(&adam, th, gth, lr);
      conv = reg_converged(hist, it + 1, S->window, S->tol);
      reg_report(opt, si, lv, it + 1, loss, t_start, lt0, n, 0, conv);
      if (it == 0) t_first = reg_now() - lt0;
    }
    /* the first iteration apart: first-use costs (allocations, kernel attributes) show there */
    reg_trace("linear level %d: %d iterations %.1f ms (%.3f ms each; the first %.3f ms, its evaluation %.3f)", lv + 1,
              it, 1e3 * (reg_now() - lt0), it ? 1e3 * (reg_now() - lt0) / it : 0.0, 1e3 * t_first, 1e3 * t_eval);
    map.aff0 = *aff;
    *aff = map_eval(&map, th);
    sum->final_loss = it > 0 ? hist[it - 1] : 0;
    sum->iterations += it;
    if (st == FFDP_OK) reg_report(opt, si, lv, it, sum->final_loss, t_start, lt0, n, 1, conv);
    free(hist);
    if (ev->device_bytes - base > sum->device_peak_bytes) sum->device_peak_bytes = ev->device_bytes - base;
    ev->release(ev);
    reg_level_free(&L);
    if (st) return st;
  }
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
