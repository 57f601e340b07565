/* Symmetric deformable stage (SyN-style). Two post-affine fields on the fixed grid meet at
 * the midpoint:  loss = C( F(x + v_f(x)),  M(A·x + t + v_m(x)) ),
 * each updated like the greedy stage (Adam on the smoothed, normalized gradient, compositive
 * update, warp smoothing). The fixed->moving transform is then
 *   phi(x) = A·x + t + u(x),  u = A·w + v_m∘(id + w),  w = inverse of v_f,
 * and the inverse (moving->fixed, ANTs' InverseWarp on the fixed grid) is
 *   z -> z + r(z) + v_f(z + r(z)),  r = inverse of A^-1·v_m,  z = A^-1 (y - t). */
#include "reg/reg_internal.h"
#include "reg/image_share.h"
#include "reg/handover.h"
#include "core/comm_internal.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SYN_INVERT_ITERS 50

/* One level on the active ranks: both fields (full grid, every active rank) in; on return the
 * updated fields on the rank's slab in *v_out: v_f, then v_m at 3 * stored voxels (the caller
 * gathers and frees). */
static ffdp_status syn_level(const ffdp_comm *c, const reg_level *L, const ffdp_reg_options *opt, int si, int lv,
                             ffdp_mat4 aff, const ffdp_volume *vf_prev, const ffdp_volume *vm_prev, int64_t halo,
                             ffdp_stage_summary *sum, double t_start, ffdp_slab *slab_out, float **v_out, ffdp_error *err) {
  const ffdp_stage_spec *S = &opt->stages[si];
  const int64_t nx = L->F->dim[0], ny = L->F->dim[1], nz = L->F->dim[2], ntot = nx * ny * nz;
  const ffdp_slab s = c->size > 1 ? ffdp_slab_split(nx, ny, nz, c->rank, c->size, halo) : L->fs;
  ffdp_slab store = s; /* midpoint images on every stored plane: no exchange for them */
  store.z0 = s.zlo, store.z1 = s.zhi;
  const int64_t n = ffdp_slab_stored(&s);
  /* fields v_f, v_m, the gradient and a scratch field (which also holds F_mid, M_mid and
   * dL/dM_mid until the first step), dL/dF_mid, and the Adam moments of both fields:
   * 52 B per stored voxel and 24 or 48 B of moments (1/8 of that on the coarse grid, with a
   * transient) */
  float *buf = calloc((size_t)n * 13, sizeof(float));
  reg_moments mo[2]; /* moving side, fixed side */
  const int coarse = opt->state_resolution == FFDP_STATE_HALF;
  const int64_t nm = reg_moment_values(&s, coarse);
  reg_moments_alloc(mo, 2, nm, opt->state_precision == FFDP_STATE_BF16, coarse);
  double *hist = malloc((size_t)(S->iters[lv] + 1) * sizeof(double));
  ffdp_status st = FFDP_OK;
  if (!buf || !mo[0].m || !hist)
    st = ffdp_fail(err, FFDP_ERR_NOMEM, "SyN level %d: cannot allocate %.1f MB", lv + 1,
                   (n * 52.0 + nm * (mo[0].bf16 ? 8 : 16) + (coarse ? nm * 4.0 : 0)) / 1e6);
  if ((st = c->agree(c, st, err))) {
    free(buf), free(mo[0].m), free(hist);
    return st;
  }
  float *vf = buf, *vm = buf + 3 * n, *gu = buf + 6 * n, *tmp = buf + 9 * n, *gf = buf + 12 * n, *fmid = tmp,
        *mmid = tmp + n, *gmv = tmp + 2 * n;
  reg_field_onto_slab(vf_prev, L->F, &s, vf);
  reg_field_onto_slab(vm_prev, L->F, &s, vm);
  uint8_t *mbuf = NULL;
  float *fbuf = NULL;
  const double h = reg_level_step_mm(L);
  ffdp_warp wfix, wmov, cfix, cmov;
  reg_syn_warps(L, aff, &wfix, &wmov, &cfix, &cmov);
  /* both images are sampled away from the slab: each through its share (image_share.h); the
   * ring leaves the images' gradients at the sample points in dqf and dqm */
  reg_share shf, shm;
  const ffdp_image_exchange mode = reg_share_mode(opt, c);
  reg_share_open(&shf, c, L->F, mode);
  reg_share_open(&shm, c, L->M, mode);
  float *dq = mode == FFDP_EXCHANGE_RING ? malloc((size_t)n * 6 * sizeof(float)) : NULL;
  float *dqf = dq, *dqm = dq ? dq + 3 * n : NULL;
  if (mode == FFDP_EXCHANGE_RING && !dq)
    st = ffdp_fail(err, FFDP_ERR_NOMEM, "SyN level %d: cannot allocate %.1f MB", lv + 1, n * 24 / 1e6);
  st = c->agree(c, st, err); /* a failure skips the iterations */
  const float *Fw = NULL, *Mw = NULL;
  ffdp_slab fsw, msw;
  double lt0 = reg_now();
  int it = 0, conv = 0;
  for (; !st && it < S->iters[lv] && !conv; it++) {
    if ((st = c->agree(c, reg_injected_failure(c, si, lv, it + 1, err), err))) break;
    const uint8_t *mask = NULL;
    if ((st = c->agree(c, reg_effective_mask(L, &s, &wmov, vm, &mask, &mbuf, &fbuf, err), err))) break;
    if (mode == FFDP_EXCHANGE_RING) {
      st = reg_share_ring(&shf, &wfix, &store, vf, fmid, dqf, err);
      if (!st) st = reg_share_ring(&shm, &wmov, &store, vm, mmid, dqm, err);
    } else {
      st = reg_share_window(&shf, &wfix, &store, vf, &Fw, &fsw, err);
      if (!st) st = reg_share_window(&shm, &wmov, &store, vm, &Mw, &msw, err);
      if (!st) ffdp_sample_fwd_f32(&wfix, &store, vf, &fsw, Fw, 1, fmid);
      if (!st) ffdp_sample_fwd_f32(&wmov, &store, vm, &msw, Mw, 1, mmid);
    }
    if (st) break;
    /* every metric is symmetric: the loss with fixed and moving swapped gives gf (LNCC: one pass) */
    double loss = reg_metric_ranks2(c, &S->metric, &s, fmid, mmid, mask, gf, gmv);
    if (!isfinite(loss)) {
      st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
      break;
    }
    hist[it] = loss;
    if (dq) ffdp_sample_bwd_dq_f32(&wmov, &s, vm, &L->ms, gmv, dqm, gu);
    else ffdp_sample_bwd_f32(&wmov, &s, vm, &msw, Mw, 1, gmv, gu, NULL, NULL);
    int r1 = reg_field_step(c, &s, vm, gu, &mo[0], it + 1, &cmov, 0.5 * S->lr * h, S->grad_sigma, S->warp_sigma,
                            tmp, err);
    if (r1 >= 0 && dq) ffdp_sample_bwd_dq_f32(&wfix, &s, vf, &L->fs, gf, dqf, gu);
    else if (r1 >= 0) ffdp_sample_bwd_f32(&wfix, &s, vf, &fsw, Fw, 1, gf, gu, NULL, NULL);
    int r2 = r1 < 0 ? -1
                    : reg_field_step(c, &s, vf, gu, &mo[1], it + 1, &cfix, 0.5 * S->lr * h, S->grad_sigma,
                                     S->warp_sigma, tmp, err);
    if (r1 < 0 || r2 < 0) {
      st = err ? err->code : FFDP_ERR_IO;
      break;
    }
    const int moved = r1 + r2;
    conv = !moved || reg_converged(hist, it + 1, S->window, S->tol);
    reg_report(opt, si, lv, it + 1, loss, t_start, lt0, ntot, 0, conv);
  }
  reg_level_done(opt, si, lv, hist, it, st, t_start, lt0, ntot, conv, sum);
  reg_share_close(&shf, sum), reg_share_close(&shm, sum);
  free(hist), free(mbuf), free(fbuf), free(dq), free(mo[0].m);
  if (st) {
    free(buf);
    return st;
  }
  /* v_f and v_m lead the buffer: keep just them (shrinking cannot fail in practice; if it
   * does, the larger block still holds them) */
  float *keep = realloc(buf, (size_t)n * 6 * sizeof(float));
  *slab_out = s, *v_out = keep ? keep : buf;
  return FFDP_OK;
}

ffdp_status reg_syn_stage(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                          ffdp_mat4 aff, ffdp_volume **u_out, ffdp_volume **uinv_out, ffdp_stage_summary *sum,
                          double t_start, ffdp_error *err) {
  const ffdp_volume *F = pyr->F;
  const ffdp_stage_spec *S = &opt->stages[si];
  const ffdp_comm *c = ffdp_comm_or_single(opt->comm);
  ffdp_volume *vf = NULL, *vm = NULL;
  *u_out = *uinv_out = NULL;
  double t0 = reg_now();
  sum->kind = S->kind;
  sum->iterations = 0;
  ffdp_status st = FFDP_OK;
  const int64_t halo = reg_deformable_halo(S, opt->state_resolution == FFDP_STATE_HALF);
  const int to_root = reg_result_to_root(opt, si, c);
  reg_handover ho; /* each rank's planes of the last level, when the next needs no others' */
  memset(&ho, 0, sizeof ho);
  ffdp_volume *full[2] = {NULL, NULL}; /* v_f, v_m: whole fields, when gathered */
  for (int lv = 0; lv < S->nlevels && !st; lv++) {
    reg_level L;
    st = reg_level_build(pyr, opt->fixed_mask, opt->moving_mask, S->shrink[lv], S->smooth[lv], &L, err);
    if ((st = c->agree(c, st, err))) {
      if (L.F || L.M) reg_level_free(&L);
      break;
    }
    const int nact = reg_level_ranks(c->size, L.F->dim[2], halo); /* thin levels: fewer ranks */
    if (!st) st = reg_level_ready(&L, nact, halo, reg_share_mode(opt, c), 1, err); /* sharded inputs: the planes it reads */
    if (!st) st = c->agree(c, reg_level_decoded(&L, err), err); /* 16-bit images: the values the codes give */
    const ffdp_volume *prev[2] = {NULL, NULL}; /* own planes carried over, or the gathered fields */
    if (!st) st = reg_handover_next(&ho, c, L.F, nact, halo, 2, full, prev, err);
    ffdp_comm *sub = st ? NULL : nact == c->size ? (ffdp_comm *)c : c->first(c, nact);
    ffdp_slab s = L.fs;
    float *vs = NULL;
    if (sub) st = syn_level(sub, &L, opt, si, lv, aff, prev[0], prev[1], halo, sum, t_start, &s, &vs, err);
    if (sub && sub != c) ffdp_comm_free(sub);
    if (!(st = c->agree(c, st, err))) {
      reg_level_account(c, sum);
      st = c->agree(c, reg_handover_keep(&ho, 2, vs, &s, L.F, nact == c->size, err), err);
    }
    free(vs);
    reg_level_free(&L);
  }
  /* the last level's fields go to rank 0 alone when only it composes the result */
  if (!st) st = reg_handover_finish(&ho, c, full, to_root, err);
  reg_handover_clear(&ho);
  vf = full[0], vm = full[1];
  /* The composite transforms at full resolution are computed on every rank that receives them
   * from the gathered fields (the same result everywhere, no exchange). */
  if (to_root && c->rank != 0) { /* rank 0 alone receives the result */
    st = c->agree(c, st, err);
    ffdp_volume_free(vf), ffdp_volume_free(vm);
    if (st) return st;
    sum->seconds = reg_now() - t0;
    return FFDP_OK;
  }
  /* full-resolution fields, then the two composite transforms; with result shares each rank
   * computes only its own planes of them (every step is pointwise given the whole v_f and v_m,
   * so those planes are the whole computation's), the other planes never touched */
  int64_t z0 = 0, z1 = F->dim[2];
  if (reg_result_shares(opt, si, c)) ffdp_comm_share(c, F->dim[2], &z0, &z1);
  const int64_t P = F->dim[0] * F->dim[1], np = (z1 - z0) * P * 3;
  if (!st) st = reg_field_to_grid(&vf, F, err);
  if (!st) st = reg_field_to_grid(&vm, F, err);
  /* one inverse at a time (w, then r in its memory), each inversion step in place (no composed
   * field), A^-1·v_m made in place of v_m once u no longer needs it and freed once r is made:
   * four fields at the peak (v_f, v_m or A^-1·v_m or u_inv, w or r, u) where there were seven,
   * the same values */
  const double tf = reg_now();
  float *w = malloc((size_t)(np > 0 ? np : 1) * sizeof(float)), *r = w;
  ffdp_volume *ainv_vm = NULL, *u = NULL, *ui = NULL;
  if (!st && !w) st = ffdp_fail(err, FFDP_ERR_NOMEM, "SyN: cannot allocate the inverse field");
  if (!st) st = reg_invert_field_planes(vf, SYN_INVERT_ITERS, z0, z1, w, err);
  if (!st) st = ffdp_volume_create(F->dim, 3, F->vox2world, &u, err);
  if (!st) {
    double A[3][3];
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) A[a][b] = aff.m[a][b];
    reg_compose_fields_planes(vm, w, A, z0, z1, u->data + z0 * P * 3); /* u = A·w + v_m∘(id + w) */
    ainv_vm = vm, vm = NULL;
  }
  if (!st) {
    ffdp_mat4 ainv;
    ffdp_mat4_inverse(aff, &ainv);
    const int64_t n = ffdp_volume_nvox(ainv_vm);
    float *p = ainv_vm->data;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) {
      double x[3] = {p[3 * i], p[3 * i + 1], p[3 * i + 2]}, y[3];
      ffdp_mat4_apply_vec(ainv, x, y);
      for (int a = 0; a < 3; a++) p[3 * i + a] = (float)y[a];
    }
    st = reg_invert_field_planes(ainv_vm, SYN_INVERT_ITERS, z0, z1, r, err);
  }
  ffdp_volume_free(ainv_vm); /* r is made: A^-1·v_m is not read again, and u_inv takes its place */
  ainv_vm = NULL;
  if (!st) st = ffdp_volume_create(F->dim, 3, F->vox2world, &ui, err);
  if (!st) {
    const double I[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    reg_compose_fields_planes(vf, r, I, z0, z1, ui->data + z0 * P * 3); /* r + v_f∘(id + r) */
  }
  reg_trace("SyN final composition (two inversions of %d iterations): %.1f ms", SYN_INVERT_ITERS, 1e3 * (reg_now() - tf));
  st = c->agree(c, st, err);
  ffdp_volume_free(vf), ffdp_volume_free(vm), ffdp_volume_free(ainv_vm);
  free(w);
  if (st) {
    ffdp_volume_free(u), ffdp_volume_free(ui);
    return st;
  }
  *u_out = u, *uinv_out = ui;
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
