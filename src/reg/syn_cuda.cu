// The SyN stage on a CUDA device: the iteration of syn.c with both fields, both midpoint
// images and all optimiser state on the GPU, and the final inversions and compositions
// there too. Levels are built on the host and uploaded.
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/err.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"
#include "reg/dev_layout.h"
#include "reg/step_cuda.h"

#define SYN_INVERT_ITERS 50

namespace {

struct SynBufs {
  float *F, *M, *vf, *vm, *gu, *tmp, *gm, *gf, *red;
  reg_cuda_adam af, am;
  void *block = nullptr;
};

cudaError_t alloc_syn(SynBufs &b, long long n, long long nm, int bf16, size_t *bytes) {
  reg_layout L;
  reg_layout_syn(n, nm, bf16, &L);
  *bytes = L.total;
  cudaError_t e = cudaMalloc(&b.block, L.total);
  if (e) return e;
  char *p = (char *)b.block;
  b.F = (float *)(p + L.off[SY_F]), b.M = (float *)(p + L.off[SY_M]);
  b.vf = (float *)(p + L.off[SY_VF]), b.vm = (float *)(p + L.off[SY_VM]);
  b.gu = (float *)(p + L.off[SY_GU]), b.tmp = (float *)(p + L.off[SY_TMP]);
  b.gm = (float *)(p + L.off[SY_GM]), b.gf = (float *)(p + L.off[SY_GF]);
  b.af = {p + L.off[SY_AFM], p + L.off[SY_AFV], bf16};
  b.am = {p + L.off[SY_AMM], p + L.off[SY_AMV], bf16};
  b.red = (float *)(p + L.off[SY_RED]);
  return cudaMemsetAsync(b.block, 0, L.total);
}

// Host field onto a grid (resampled if needed) and up to the device.
ffdp_status upload_field(ffdp_volume **v, const ffdp_volume *grid, float *dst, ffdp_error *err) {
  ffdp_status st = reg_field_to_grid(v, grid, err);
  if (st) return st;
  cudaError_t e = cudaMemcpy(dst, (*v)->data, ffdp_volume_nvox(grid) * 3 * sizeof(float), cudaMemcpyHostToDevice);
  if (e) return ffdp_fail(err, FFDP_ERR_IO, "CUDA error uploading a field: %s", cudaGetErrorString(e));
  return FFDP_OK;
}

}  // namespace

extern "C" ffdp_status reg_syn_stage_cuda(const ffdp_volume *F, const ffdp_volume *M, const ffdp_reg_options *opt, int si,
                                          ffdp_mat4 aff, ffdp_volume **u_out, ffdp_volume **uinv_out,
                                          ffdp_stage_summary *sum, double t_start, ffdp_error *err) {
  const ffdp_stage_spec *S = &opt->stages[si];
  if (opt->fixed_mask || opt->moving_mask)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "masks are not supported on the CUDA device yet; use --device cpu");
  *u_out = *uinv_out = NULL;
  ffdp_volume *vf = NULL, *vm = NULL;
  double t0 = reg_now(), base = reg_cuda_used_bytes();
  sum->kind = S->kind;
  sum->iterations = 0;
  sum->device_peak_bytes = 0;
  ffdp_status st = FFDP_OK;
  int rc = 0;
  SynBufs b;
  for (int lv = 0; lv < S->nlevels && !st && !rc; lv++) {
    reg_level L;
    if ((st = reg_level_build(F, M, NULL, NULL, S->shrink[lv], S->smooth[lv], &L, err))) break;
    const long long n = ffdp_volume_nvox(L.F), nm = ffdp_volume_nvox(L.M);
    size_t need = 0;
    cudaError_t ce = alloc_syn(b, n, nm, opt->state_precision == FFDP_STATE_BF16, &need);
    if (ce) {
      st = ffdp_fail(err, FFDP_ERR_NOMEM, "CUDA SyN level %d: cannot allocate %.1f MB on the device (%s)", lv + 1,
                     need / 1e6, cudaGetErrorString(ce));
      reg_level_free(&L);
      break;
    }
    rc = (int)cudaMemcpy(b.F, L.F->data, n * 4, cudaMemcpyHostToDevice);
    if (!rc) rc = (int)cudaMemcpy(b.M, L.M->data, nm * 4, cudaMemcpyHostToDevice);
    if (!st) st = upload_field(&vf, L.F, b.vf, err);
    if (!st) st = upload_field(&vm, L.F, b.vm, err);
    const double h = reg_level_step_mm(&L);
    ffdp_warp wfix, wmov, cfix, cmov;
    reg_syn_warps(&L, aff, &wfix, &wmov, &cfix, &cmov);
    double *hist = (double *)malloc((size_t)(S->iters[lv] + 1) * sizeof(double)), lt0 = reg_now();
    int it = 0, conv = 0;
    for (; !st && it < S->iters[lv] && !conv && !rc; it++) {
      double loss = 0, lf = 0;
      int mv1 = 1, mv2 = 1;
      float *fmid = b.gu, *mmid = b.gu + n; /* the gradient field is free until the backward */
      rc = ffdp_cuda_sample_fwd(&wfix, &L.fs, b.vf, &L.fs, b.F, 1, fmid, nullptr);
      if (!rc) rc = ffdp_cuda_sample_fwd(&wmov, &L.fs, b.vm, &L.ms, b.M, 1, mmid, nullptr);
      if (!rc) rc = reg_cuda_metric(&S->metric, &L.fs, fmid, mmid, b.gm, &loss);
      if (!rc) rc = reg_cuda_metric(&S->metric, &L.fs, mmid, fmid, b.gf, &lf);
      if (!rc && !isfinite(loss)) {
        st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
        break;
      }
      hist[it] = loss;
      if (!rc) rc = ffdp_cuda_sample_bwd(&wmov, &L.fs, b.vm, &L.ms, b.M, 1, b.gm, b.gu, nullptr, nullptr);
      if (!rc)
        rc = reg_cuda_field_step(&L.fs, b.vm, b.gu, b.tmp, b.am, it + 1, &cmov, 0.5 * S->lr * h, S->grad_sigma,
                                 S->warp_sigma, b.red, &mv1);
      if (!rc) rc = ffdp_cuda_sample_bwd(&wfix, &L.fs, b.vf, &L.fs, b.F, 1, b.gf, b.gu, nullptr, nullptr);
      if (!rc)
        rc = reg_cuda_field_step(&L.fs, b.vf, b.gu, b.tmp, b.af, it + 1, &cfix, 0.5 * S->lr * h, S->grad_sigma,
                                 S->warp_sigma, b.red, &mv2);
      conv = !(mv1 || mv2) || reg_converged(hist, it + 1, S->window, S->tol);
      if (it == 0) {
        double used = reg_cuda_used_bytes() - base;
        sum->device_peak_bytes = used > sum->device_peak_bytes ? used : sum->device_peak_bytes;
      }
      reg_report(opt, si, lv, it + 1, loss, t_start, lt0, n, 0, conv);
    }
    if (!rc && !st) {
      cudaMemcpy(vf->data, b.vf, 3 * n * 4, cudaMemcpyDeviceToHost);
      rc = (int)cudaMemcpy(vm->data, b.vm, 3 * n * 4, cudaMemcpyDeviceToHost);
    }
    sum->final_loss = it > 0 ? hist[it - 1] : 0;
    sum->iterations += it;
    if (!st && !rc) reg_report(opt, si, lv, it, sum->final_loss, t_start, lt0, n, 1, conv);
    free(hist);
    cudaFree(b.block);
    b.block = nullptr;
    reg_level_free(&L);
  }
  /* composite transforms at full resolution, on the device */
  ffdp_volume *u = NULL, *ui = NULL;
  if (!st && !rc) {
    const long long n = ffdp_volume_nvox(F);
    reg_layout FL;
    reg_layout_syn_final(n, &FL);
    char *blk = nullptr;
    if (cudaMalloc((void **)&blk, FL.total) != cudaSuccess) {
      st = ffdp_fail(err, FFDP_ERR_NOMEM, "CUDA SyN: cannot allocate %.1f MB for the final composition", FL.total / 1e6);
    } else {
      float *dvf = (float *)(blk + FL.off[SF_VF]), *dvm = (float *)(blk + FL.off[SF_VM]), *w = (float *)(blk + FL.off[SF_W]),
            *tmp = (float *)(blk + FL.off[SF_TMP]), *out = (float *)(blk + FL.off[SF_OUT]), *aux = out;
      if (!st) st = upload_field(&vf, F, dvf, err);
      if (!st) st = upload_field(&vm, F, dvm, err);
      if (!st) st = ffdp_volume_create(F->dim, 3, F->vox2world, &u, err);
      if (!st) st = ffdp_volume_create(F->dim, 3, F->vox2world, &ui, err);
      ffdp_slab fs = ffdp_slab_whole(F->dim[0], F->dim[1], F->dim[2]);
      ffdp_warp vox;
      reg_compose_warp(F->vox2world, ffdp_mat4_identity(), &vox);
      double A[3][3], Ai[3][3];
      const double I[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
      ffdp_mat4 ainv;
      ffdp_mat4_inverse(aff, &ainv);
      for (int a = 0; a < 3; a++)
        for (int c = 0; c < 3; c++) A[a][c] = aff.m[a][c], Ai[a][c] = ainv.m[a][c];
      if (!st) {
        rc = reg_cuda_invert_field(&fs, &vox, dvf, SYN_INVERT_ITERS, w, tmp);          /* w = inv(v_f) */
        if (!rc) rc = reg_cuda_compose_fields(&fs, &vox, dvm, w, A, out);              /* u = A w + v_m∘(id+w) */
        if (!rc) rc = (int)cudaMemcpy(u->data, out, 3 * n * 4, cudaMemcpyDeviceToHost);
        if (!rc) rc = ffdp_cuda_linmap3(n, aux, 0.0, dvm, Ai, nullptr);               /* A^-1 v_m */
        if (!rc) rc = reg_cuda_invert_field(&fs, &vox, aux, SYN_INVERT_ITERS, w, tmp); /* r */
        if (!rc) rc = reg_cuda_compose_fields(&fs, &vox, dvf, w, I, out); /* r + v_f∘(id+r); aux is dead */
        if (!rc) rc = (int)cudaMemcpy(ui->data, out, 3 * n * 4, cudaMemcpyDeviceToHost);
      }
      cudaFree(blk);
    }
  }
  if (b.block) cudaFree(b.block);
  ffdp_volume_free(vf), ffdp_volume_free(vm);
  if (rc && !st) st = ffdp_fail(err, FFDP_ERR_IO, "CUDA error in SyN stage %d: %s", si + 1, cudaGetErrorString((cudaError_t)rc));
  if (st) {
    ffdp_volume_free(u), ffdp_volume_free(ui);
    return st;
  }
  *u_out = u, *uinv_out = ui;
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
