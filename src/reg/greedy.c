/* Greedy deformable stage with compositive updates (FireANTs/ANTs style):
 *   g  = smooth(dL/du, grad_sigma), normalized by its largest vector norm
 *   d  = -lr·h · Adam(g)                      (h = smallest voxel size, mm)
 *   u <- smooth(d + u∘(x + A^-1·d), warp_sigma)
 * so that phi_new = phi∘(x + A^-1 d) exactly before smoothing. */
#include "reg/reg_internal.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Adam on a field, in place: g holds the normalized gradient and receives the update d. */
static void field_adam(float *g, float *m, float *v, int64_t n, int t, double step) {
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  const float c1 = (float)(1 - pow(b1, t)), c2 = (float)(1 - pow(b2, t)), s = (float)step;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    g[i] = -s * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
  }
}

static double max_norm3(const float *g, int64_t n) {
  double mx = 0;
#pragma omp parallel for reduction(max : mx)
  for (int64_t i = 0; i < n; i++) {
    double s = (double)g[3 * i] * g[3 * i] + (double)g[3 * i + 1] * g[3 * i + 1] + (double)g[3 * i + 2] * g[3 * i + 2];
    mx = s > mx ? s : mx;
  }
  return sqrt(mx);
}

static void scale(float *g, int64_t n, float s) {
#pragma omp parallel for
  for (int64_t i = 0; i < n; i++) g[i] *= s;
}

int reg_field_step(const ffdp_slab *s, float *u, const float *gu, float *am, float *av, int t, const ffdp_warp *cw,
                   double step, double grad_sigma, double warp_sigma, float *d, float *tmp) {
  const int64_t n = ffdp_slab_stored(s);
  const double gs[3] = {grad_sigma, grad_sigma, grad_sigma}, ws[3] = {warp_sigma, warp_sigma, warp_sigma};
  const double T[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  ffdp_blur_f32(s, gu, 3, gs, d);
  double mx = max_norm3(d, n);
  if (!(mx > 0)) return 0;
  scale(d, 3 * n, (float)(1.0 / mx));
  field_adam(d, am, av, 3 * n, t, step);
  ffdp_compose_fwd_f32(cw, T, s, d, s, u, tmp);
  if (warp_sigma > 0) ffdp_blur_f32(s, tmp, 3, ws, u);
  else memcpy(u, tmp, (size_t)n * 3 * sizeof(float));
  return 1;
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

ffdp_status reg_greedy_stage(const ffdp_volume *F, const ffdp_volume *M, const ffdp_reg_options *opt, int si,
                             ffdp_mat4 aff, ffdp_volume **u_io, ffdp_stage_summary *sum, double t_start, ffdp_error *err) {
  const ffdp_stage_spec *S = &opt->stages[si];
  ffdp_volume *u = *u_io;
  *u_io = NULL;
  double t0 = reg_now();
  sum->kind = S->kind;
  sum->iterations = 0;
  ffdp_status st = FFDP_OK;
  for (int lv = 0; lv < S->nlevels && !st; lv++) {
    reg_level L;
    if ((st = reg_level_build(F, M, opt->fixed_mask, opt->moving_mask, S->shrink[lv], S->smooth[lv], &L, err))) break;
    const int64_t n = ffdp_volume_nvox(L.F);
    st = reg_field_to_grid(&u, L.F, err); /* carry the displacement (world mm) onto this level */
    ffdp_volume *ul = u;
    u = NULL;
    float *buf = st ? NULL : calloc((size_t)n * 17, sizeof(float));
    if (!st && !buf) st = ffdp_fail(err, FFDP_ERR_NOMEM, "greedy level %d: cannot allocate %.1f MB", lv + 1, n * 68 / 1e6);
    if (st) {
      ffdp_volume_free(ul);
      reg_level_free(&L);
      break;
    }
    float *moved = buf, *gm = buf + n, *gu = buf + 2 * n, *d = buf + 5 * n, *am = buf + 8 * n, *av = buf + 11 * n,
          *tmp = buf + 14 * n;
    double *hist = malloc((size_t)(S->iters[lv] + 1) * sizeof(double));
    uint8_t *mbuf = NULL;
    float *fbuf = NULL;
    const double h = reg_level_step_mm(&L);
    ffdp_warp cw, w; /* compose: fixed voxel p + Wf^-1·A^-1·d(p); border-clamped fields */
    reg_compose_warp(L.F->vox2world, aff, &cw);
    ffdp_warp_fold(aff, L.F->vox2world, L.M->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
    double lt0 = reg_now();
    int it = 0, conv = 0;
    for (; it < S->iters[lv] && !conv; it++) {
      const uint8_t *mask = reg_effective_mask(&L, &w, ul->data, &mbuf, &fbuf);
      ffdp_sample_fwd_f32(&w, &L.fs, ul->data, &L.ms, L.M->data, 1, moved);
      double loss = reg_metric(&S->metric, &L, moved, mask, gm);
      if (!isfinite(loss)) {
        st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
        break;
      }
      hist[it] = loss;
      ffdp_sample_bwd_f32(&w, &L.fs, ul->data, &L.ms, L.M->data, 1, gm, gu, NULL, NULL);
      if (!reg_field_step(&L.fs, ul->data, gu, am, av, it + 1, &cw, S->lr * h, S->grad_sigma, S->warp_sigma, d, tmp)) {
        conv = 1;
        break;
      }
      conv = reg_converged(hist, it + 1, S->window, S->tol);
      reg_report(opt, si, lv, it + 1, loss, t_start, lt0, n, 0, conv);
    }
    sum->final_loss = it > 0 ? hist[it - 1] : 0;
    sum->iterations += it;
    if (!st) reg_report(opt, si, lv, it, sum->final_loss, t_start, lt0, n, 1, conv);
    free(buf), free(hist), free(mbuf), free(fbuf);
    reg_level_free(&L);
    u = ul;
  }
  if (st) {
    ffdp_volume_free(u);
    return st;
  }
  if (u && (st = reg_field_to_grid(&u, F, err))) return st; /* final field at full resolution */
  *u_io = u;
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
