/* Symmetric deformable stage (SyN-style). Two post-affine fields on the fixed grid meet at
 * the midpoint:  loss = C( F(x + v_f(x)),  M(A·x + t + v_m(x)) ),
 * each updated like the greedy stage (Adam on the smoothed, normalized gradient, compositive
 * update, warp smoothing). The fixed->moving transform is then
 *   phi(x) = A·x + t + u(x),  u = A·w + v_m∘(id + w),  w = inverse of v_f,
 * and the inverse (moving->fixed, ANTs' InverseWarp on the fixed grid) is
 *   z -> z + r(z) + v_f(z + r(z)),  r = inverse of A^-1·v_m,  z = A^-1 (y - t). */
#include "reg/reg_internal.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SYN_INVERT_ITERS 50

ffdp_status reg_syn_stage(const ffdp_volume *F, const ffdp_volume *M, const ffdp_reg_options *opt, int si,
                          ffdp_mat4 aff, ffdp_volume **u_out, ffdp_volume **uinv_out, ffdp_stage_summary *sum,
                          double t_start, ffdp_error *err) {
  const ffdp_stage_spec *S = &opt->stages[si];
  ffdp_volume *vf = NULL, *vm = NULL;
  *u_out = *uinv_out = NULL;
  double t0 = reg_now();
  sum->kind = S->kind;
  sum->iterations = 0;
  ffdp_status st = FFDP_OK;
  for (int lv = 0; lv < S->nlevels && !st; lv++) {
    reg_level L;
    if ((st = reg_level_build(F, M, opt->fixed_mask, opt->moving_mask, S->shrink[lv], S->smooth[lv], &L, err))) break;
    const int64_t n = ffdp_volume_nvox(L.F);
    if (!st) st = reg_field_to_grid(&vf, L.F, err); /* carry both fields onto this level's grid */
    if (!st) st = reg_field_to_grid(&vm, L.F, err);
    float *buf = st ? NULL : calloc((size_t)n * 25, sizeof(float));
    if (!st && !buf) st = ffdp_fail(err, FFDP_ERR_NOMEM, "SyN level %d: cannot allocate %.1f MB", lv + 1, n * 100 / 1e6);
    if (st) {
      reg_level_free(&L);
      break;
    }
    /* scalars: F_mid, M_mid, dL/dF_mid, dL/dM_mid; fields: gradient, d, tmp, Adam moments of both */
    float *fmid = buf, *mmid = buf + n, *gf = buf + 2 * n, *gmv = buf + 3 * n, *gu = buf + 4 * n, *d = buf + 7 * n,
          *tmp = buf + 10 * n, *af_m = buf + 13 * n, *af_v = buf + 16 * n, *am_m = buf + 19 * n, *am_v = buf + 22 * n;
    double *hist = malloc((size_t)(S->iters[lv] + 1) * sizeof(double));
    uint8_t *mbuf = NULL;
    float *fbuf = NULL;
    const double h = reg_level_step_mm(&L);
    ffdp_warp wfix, wmov, cfix, cmov;
    reg_syn_warps(&L, aff, &wfix, &wmov, &cfix, &cmov);
    double lt0 = reg_now();
    int it = 0, conv = 0;
    for (; it < S->iters[lv] && !conv; it++) {
      const uint8_t *mask = reg_effective_mask(&L, &wmov, vm->data, &mbuf, &fbuf);
      ffdp_sample_fwd_f32(&wfix, &L.fs, vf->data, &L.fs, L.F->data, 1, fmid);
      ffdp_sample_fwd_f32(&wmov, &L.fs, vm->data, &L.ms, L.M->data, 1, mmid);
      double loss = reg_metric_pair(&S->metric, &L.fs, fmid, mmid, mask, gmv);
      reg_metric_pair(&S->metric, &L.fs, mmid, fmid, mask, gf); /* every metric is symmetric */
      if (!isfinite(loss)) {
        st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
        break;
      }
      hist[it] = loss;
      ffdp_sample_bwd_f32(&wmov, &L.fs, vm->data, &L.ms, L.M->data, 1, gmv, gu, NULL, NULL);
      int r1 = reg_field_step(NULL, &L.fs, vm->data, gu, am_m, am_v, it + 1, &cmov, 0.5 * S->lr * h, S->grad_sigma,
                              S->warp_sigma, d, tmp, err);
      ffdp_sample_bwd_f32(&wfix, &L.fs, vf->data, &L.fs, L.F->data, 1, gf, gu, NULL, NULL);
      int r2 = r1 < 0 ? -1
                      : reg_field_step(NULL, &L.fs, vf->data, gu, af_m, af_v, it + 1, &cfix, 0.5 * S->lr * h,
                                       S->grad_sigma, S->warp_sigma, d, tmp, err);
      if (r1 < 0 || r2 < 0) {
        st = err ? err->code : FFDP_ERR_IO;
        break;
      }
      const int moved = r1 + r2;
      conv = !moved || reg_converged(hist, it + 1, S->window, S->tol);
      reg_report(opt, si, lv, it + 1, loss, t_start, lt0, n, 0, conv);
    }
    sum->final_loss = it > 0 ? hist[it - 1] : 0;
    sum->iterations += it;
    if (!st) reg_report(opt, si, lv, it, sum->final_loss, t_start, lt0, n, 1, conv);
    free(buf), free(hist), free(mbuf), free(fbuf);
    reg_level_free(&L);
  }
  /* full-resolution fields, then the two composite transforms */
  if (!st) st = reg_field_to_grid(&vf, F, err);
  if (!st) st = reg_field_to_grid(&vm, F, err);
  ffdp_volume *w = NULL, *r = NULL, *ainv_vm = NULL, *u = NULL, *ui = NULL;
  if (!st) st = reg_invert_field(vf, SYN_INVERT_ITERS, &w, err);
  if (!st) st = ffdp_volume_create(F->dim, 3, F->vox2world, &u, err);
  if (!st) {
    double A[3][3];
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) A[a][b] = aff.m[a][b];
    reg_compose_fields(vm, w->data, A, u->data); /* u = A·w + v_m∘(id + w) */
    st = ffdp_volume_clone(vm, &ainv_vm, err);
  }
  if (!st) {
    ffdp_mat4 ainv;
    ffdp_mat4_inverse(aff, &ainv);
    const int64_t n = ffdp_volume_nvox(vm);
    float *p = ainv_vm->data;
    for (int64_t i = 0; i < n; i++) {
      double x[3] = {p[3 * i], p[3 * i + 1], p[3 * i + 2]}, y[3];
      ffdp_mat4_apply_vec(ainv, x, y);
      for (int a = 0; a < 3; a++) p[3 * i + a] = (float)y[a];
    }
    st = reg_invert_field(ainv_vm, SYN_INVERT_ITERS, &r, err);
  }
  if (!st) st = ffdp_volume_create(F->dim, 3, F->vox2world, &ui, err);
  if (!st) {
    const double I[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    reg_compose_fields(vf, r->data, I, ui->data); /* r + v_f∘(id + r) */
  }
  ffdp_volume_free(vf), ffdp_volume_free(vm), ffdp_volume_free(w), ffdp_volume_free(r), ffdp_volume_free(ainv_vm);
  if (st) {
    ffdp_volume_free(u), ffdp_volume_free(ui);
    return st;
  }
  *u_out = u, *uinv_out = ui;
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
