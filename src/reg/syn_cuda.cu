// The SyN stage on CUDA devices: the iteration of syn.c with both fields, both midpoint
// images and all optimiser state on the GPU, and the final inversions and compositions
// there too. Over several ranks each holds its slab of both fields (halos through
// comm->halo_dev) and the whole level images, which it samples. Levels are built on the host
// and uploaded.
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/comm_internal.h"
#include "core/err.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"
#include "reg/dev_layout.h"
#include "reg/handover.h"
#include "reg/step_cuda.h"
#include "reg/image_share.h"
#include "reg/mask_cuda.h"
#include "reg/phase_clock.cuh"
#include "reg/window_cuda.h"

#define SYN_INVERT_ITERS 50

namespace {

struct SynBufs {
  void *F, *M; /* floats, or 16-bit codes (coded levels) */
  float *vf, *vm, *gu, *gm, *gf, *ring, *red;
  float *spare; /* the smoothed gradient's own field (reg_layout_spare), or null: smoothed in place */
  long long ring_planes, ring_floats;
  bool shared; /* the fixed side's metric gradient in gu's last third (reg_cuda_sample_bwd_shared) */
  reg_cuda_adam af, am;
  void *block = nullptr;
  float *taken[2] = {nullptr, nullptr}; /* the images, taken from the pyramid (reg_cuda_level_take) */
};

// The level's layout, the spare field decided as the planner does (dev_layout.h); apart: the
// images taken from the pyramid, outside the block.
void syn_layout(const ffdp_slab &s, int ranks, double grad_sigma, double budget, long long n, long long nf, long long nm,
                int bf16, long long nmom, int coarse, int masks, long long nmask, long long ring, bool apart,
                reg_layout *L) {
  reg_layout_syn(n, nf, nm, bf16, nmom, coarse, masks, nmask, ring, L);
  reg_layout_spare(L, s.nx, s.ny, ranks, n, grad_sigma, budget);
  if (apart) reg_layout_images_apart(L, SY_VF);
}

cudaError_t alloc_syn(reg_pyramid *pyr, SynBufs &b, reg_layout &L, const ffdp_slab &s, int ranks, double grad_sigma,
                      double budget, long long n, long long nf, long long nm, int bf16, long long nmom, int coarse,
                      int masks, long long nmask, long long plane, long long ring, size_t *bytes) {
  const bool apart = b.taken[0] != nullptr;
  syn_layout(s, ranks, grad_sigma, budget, n, nf, nm, bf16, nmom, coarse, masks, nmask, ring, apart, &L);
  b.ring_planes = ring / (3 * plane), b.ring_floats = ring, b.shared = reg_grad_shared(n);
  *bytes = L.total;
  reg_cuda_pyramid_trim(pyr, (double)(L.total + REG_OP_SCRATCH_BYTES)); /* kept source planes give way */
  cudaError_t e = cudaMalloc(&b.block, L.total);
  if (e) return e;
  char *p = (char *)b.block;
  b.F = apart ? (void *)b.taken[0] : p + L.off[SY_F], b.M = apart ? (void *)b.taken[1] : p + L.off[SY_M];
  b.vf = (float *)(p + L.off[SY_VF]), b.vm = (float *)(p + L.off[SY_VM]);
  b.gu = (float *)(p + L.off[SY_GU]), b.gm = (float *)(p + L.off[SY_GM]), b.gf = (float *)(p + L.off[SY_GF]);
  b.ring = (float *)(p + L.off[SY_RING]);
  b.af = {p + L.off[SY_AFM], p + L.off[SY_AFV], bf16, coarse};
  b.am = {p + L.off[SY_AMM], p + L.off[SY_AMV], bf16, coarse};
  b.red = (float *)(p + L.off[SY_RED]);
  b.spare = L.spare >= 0 ? (float *)(p + L.off[L.spare]) : nullptr;
  return cudaMemsetAsync(b.block, 0, L.total);
}

// inv(v) into w as reg_cuda_invert_field, with v itself holding the iteration's constant -v/2
// (scaled in place by a power of two, and back when restore is set: the same values for every
// normal float) instead of a scratch field.
int invert_in_place(const ffdp_slab &fs, const ffdp_warp *vox, float *v, int iters, float *w, int restore) {
  const long long n = ffdp_slab_stored(&fs);
  const double H[3][3] = {{0.5, 0, 0}, {0, 0.5, 0}, {0, 0, 0.5}};
  int rc = (int)cudaMemsetAsync(w, 0, 3 * n * sizeof(float), nullptr);
  if (!rc) rc = ffdp_cuda_axpby(3 * n, w, 0.0, v, -1.0, nullptr); /* w = -v */
  if (!rc) rc = ffdp_cuda_axpby(3 * n, v, 0.0, v, -0.5, nullptr); /* v = -v/2, in place */
  for (int it = 0; it < iters && !rc; it++) rc = reg_cuda_compose_fields(&fs, vox, v, w, H, w);
  if (!rc && restore) rc = ffdp_cuda_axpby(3 * n, v, 0.0, v, -2.0, nullptr);
  return rc;
}

// The two composite transforms at full resolution from the half-way fields on the device:
//   u = A·w + v_m∘(id + w), w = inv(v_f);   u_inv = r + v_f∘(id + r), r = inv(A^-1·v_m).
// On the planes of slab fs of F's grid (the whole grid for one process): dvf and dvm hold
// its stored planes, which must cover what the owned planes' points reach (see
// syn_final_halo); w, tmp and out are scratch fields of the same layout. The owned planes of
// both results come back into *u and *ui (whole-grid host fields, created here).
// With spare (a fifth field: fp32 moments on every voxel leave two more) the second transform
// is made while the first comes down to the host.
// With tmp and out NULL (the Adam moments on the coarse grid leave no fields to borrow) the
// same transforms in three fields: the inversions keep their constant in the inverted field
// (invert_in_place), the compositions write in place of w (each voxel reads w at itself
// only), and A^-1·v_m is made in place of v_m, which is not read again.
ffdp_status syn_final(const ffdp_volume *F, const ffdp_slab &fs, ffdp_mat4 aff, float *dvf, float *dvm, float *w,
                      float *tmp, float *out, float *spare, int whole, ffdp_volume **u, ffdp_volume **ui,
                      ffdp_error *err) {
  const long long P = F->dim[0] * F->dim[1], own = (fs.z0 - fs.zlo) * P * 3, n = (fs.z1 - fs.z0) * P;
  const long long ns = ffdp_slab_stored(&fs);
  // whole: every plane will arrive (mapped now, off the critical path of the gather); else
  // only this rank's, and the others' pages are never touched
  ffdp_status st = whole ? reg_field_create_mapped(F, u, err) : ffdp_volume_create(F->dim, 3, F->vox2world, u, err);
  if (!st) st = whole ? reg_field_create_mapped(F, ui, err) : ffdp_volume_create(F->dim, 3, F->vox2world, ui, err);
  if (st) {
    ffdp_volume_free(*u), ffdp_volume_free(*ui);
    *u = *ui = nullptr;
    return st;
  }
  ffdp_warp vox;
  reg_compose_warp(F->vox2world, ffdp_mat4_identity(), &vox);
  double A[3][3], Ai[3][3];
  const double I[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  ffdp_mat4 ainv;
  ffdp_mat4_inverse(aff, &ainv);
  for (int a = 0; a < 3; a++)
    for (int k = 0; k < 3; k++) A[a][k] = aff.m[a][k], Ai[a][k] = ainv.m[a][k];
  double t0 = reg_now();
  if (!tmp) {
    int rc = invert_in_place(fs, &vox, dvf, SYN_INVERT_ITERS, w, 1);             /* w = inv(v_f) */
    if (!rc) rc = reg_cuda_compose_fields(&fs, &vox, dvm, w, A, w);               /* u = A w + v_m∘(id+w) */
    if (!rc) rc = reg_cuda_copy_down((*u)->data + fs.z0 * P * 3, w + own, (size_t)(3 * n * 4));
    if (!rc) rc = ffdp_cuda_linmap3(ns, dvm, 0.0, dvm, Ai, nullptr);             /* A^-1 v_m, in place */
    if (!rc) rc = invert_in_place(fs, &vox, dvm, SYN_INVERT_ITERS, w, 0);         /* r */
    if (!rc) rc = reg_cuda_compose_fields(&fs, &vox, dvf, w, I, w);               /* r + v_f∘(id+r) */
    if (!rc) rc = reg_cuda_copy_down((*ui)->data + fs.z0 * P * 3, w + own, (size_t)(3 * n * 4));
    reg_trace("SyN final in three fields: %.1f ms", 1e3 * (reg_now() - t0));
    if (!rc) return FFDP_OK;
    ffdp_volume_free(*u), ffdp_volume_free(*ui);
    *u = *ui = nullptr;
    return ffdp_fail(err, FFDP_ERR_IO, "CUDA error composing the SyN transforms: %s", cudaGetErrorString((cudaError_t)rc));
  }
  float *aux = spare ? spare : out;
  int rc = reg_cuda_invert_field(&fs, &vox, dvf, SYN_INVERT_ITERS, w, tmp);     /* w = inv(v_f) */
  if (!rc) rc = reg_cuda_compose_fields(&fs, &vox, dvm, w, A, out);             /* u = A w + v_m∘(id+w) */
  if (spare && !rc) {
    /* a fifth field: the second transform is queued first and made while u comes down (a
     * pageable copy on a stream of its own, which holds this thread), into aux, not out */
    cudaStream_t cs = nullptr;
    cudaEvent_t made = nullptr;
    rc = (int)cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking);
    if (!rc) rc = (int)cudaEventCreateWithFlags(&made, cudaEventDisableTiming);
    if (!rc) rc = (int)cudaEventRecord(made, nullptr);
    if (!rc) rc = (int)cudaMemsetAsync(aux, 0, 3 * ns * 4, nullptr);
    if (!rc) rc = ffdp_cuda_linmap3(ns, aux, 0.0, dvm, Ai, nullptr);             /* A^-1 v_m */
    if (!rc) rc = reg_cuda_invert_field(&fs, &vox, aux, SYN_INVERT_ITERS, w, tmp); /* r; aux is read once */
    if (!rc) rc = reg_cuda_compose_fields(&fs, &vox, dvf, w, I, aux);            /* r + v_f∘(id+r) */
    if (!rc) rc = (int)cudaStreamWaitEvent(cs, made, 0);
    if (!rc) rc = (int)cudaMemcpyAsync((*u)->data + fs.z0 * P * 3, out + own, 3 * n * 4, cudaMemcpyDeviceToHost, cs);
    if (!rc) rc = (int)cudaStreamSynchronize(cs);
    reg_trace("SyN final: u down while u_inv is made %.1f ms", 1e3 * (reg_now() - t0));
    if (!rc) rc = reg_cuda_copy_down((*ui)->data + fs.z0 * P * 3, aux + own, (size_t)(3 * n * 4));
    if (made) cudaEventDestroy(made);
    if (cs) cudaStreamDestroy(cs);
    if (!rc) return FFDP_OK;
    ffdp_volume_free(*u), ffdp_volume_free(*ui);
    *u = *ui = nullptr;
    return ffdp_fail(err, FFDP_ERR_IO, "CUDA error composing the SyN transforms: %s", cudaGetErrorString((cudaError_t)rc));
  }
  if (!rc) rc = (int)cudaDeviceSynchronize();
  reg_trace("SyN final: first inversion + composition %.1f ms", 1e3 * (reg_now() - t0));
  t0 = reg_now();
  if (!rc) rc = reg_cuda_copy_down((*u)->data + fs.z0 * P * 3, out + own, (size_t)(3 * n * 4));
  reg_trace("SyN final: download %.1f ms", 1e3 * (reg_now() - t0));
  if (!rc) rc = (int)cudaMemset(aux, 0, 3 * ns * 4);
  if (!rc) rc = ffdp_cuda_linmap3(ns, aux, 0.0, dvm, Ai, nullptr);             /* A^-1 v_m */
  if (!rc) rc = reg_cuda_invert_field(&fs, &vox, aux, SYN_INVERT_ITERS, w, tmp); /* r */
  if (!rc) rc = reg_cuda_compose_fields(&fs, &vox, dvf, w, I, out);            /* r + v_f∘(id+r); aux is dead */
  if (!rc) rc = reg_cuda_copy_down((*ui)->data + fs.z0 * P * 3, out + own, (size_t)(3 * n * 4));
  if (!rc) return FFDP_OK;
  ffdp_volume_free(*u), ffdp_volume_free(*ui);
  *u = *ui = nullptr;
  return ffdp_fail(err, FFDP_ERR_IO, "CUDA error composing the SyN transforms: %s", cudaGetErrorString((cudaError_t)rc));
}

ffdp_slab grid_slab(const ffdp_volume *F) { return ffdp_slab_whole(F->dim[0], F->dim[1], F->dim[2]); }

// The planes this rank composes for the final transforms: its share of F's grid, stored with
// the planes that the points of those planes reach through the inversions and compositions.
// Every iterate of inv(v) stays within max|v| (w <- w/2 - v/2∘(id + w) from w = -v, trilinear
// values being averages), so the halo is that bound in planes (v_f and A^-1·v_m), plus two.
// Every rank holds both whole fields here, so the bound is the same on all of them.
ffdp_slab syn_final_slab(const ffdp_comm *c, const ffdp_volume *F, ffdp_mat4 aff, const ffdp_volume *vf,
                         const ffdp_volume *vm) {
  if (c->size < 2) return grid_slab(F);
  ffdp_warp vox;
  reg_compose_warp(F->vox2world, ffdp_mat4_identity(), &vox);
  ffdp_mat4 ainv;
  ffdp_mat4_inverse(aff, &ainv);
  double I[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}, Ai[3][3];
  for (int a = 0; a < 3; a++)
    for (int k = 0; k < 3; k++) Ai[a][k] = ainv.m[a][k];
  const double bf = reg_field_max_norm(vf, I), bm = reg_field_max_norm(vm, Ai), b = bf > bm ? bf : bm;
  const double *S2 = vox.S[2];
  const int64_t halo = (int64_t)ceil(b * sqrt(S2[0] * S2[0] + S2[1] * S2[1] + S2[2] * S2[2])) + 2;
  return ffdp_slab_split(F->dim[0], F->dim[1], F->dim[2], c->rank, c->size, halo);
}

// Every rank's planes of both transforms onto every rank (the result every rank returns).
ffdp_status syn_final_gather(const ffdp_comm *c, const ffdp_volume *F, const ffdp_slab &fs, ffdp_volume *u,
                             ffdp_volume *ui, int to_root, ffdp_error *err) {
  const long long P = F->dim[0] * F->dim[1], n = (fs.z1 - fs.z0) * P * 3;
  ffdp_slab own = fs;
  own.zlo = fs.z0, own.zhi = fs.z1;
  float *mine = (float *)malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  ffdp_status st = c->agree(c, mine ? FFDP_OK : ffdp_fail(err, FFDP_ERR_NOMEM, "no memory to gather the SyN transforms"), err);
  ffdp_volume *both[2] = {u, ui};
  for (int k = 0; k < 2 && !st; k++) { /* MPI wants distinct send and receive buffers */
    memcpy(mine, both[k]->data + fs.z0 * P * 3, (size_t)n * sizeof(float));
    st = to_root ? c->gather_root(c, &own, mine, 3, both[k]->data, err) : c->gather(c, &own, mine, 3, both[k]->data, err);
  }
  free(mine);
  return st;
}

// Where a level's fields come from and go to.
struct SynFields {
  const ffdp_volume *vf_prev, *vm_prev; // the previous level's fields (host), or NULL
  ffdp_volume *vf_new, *vm_new;         // one process: this level's fields on the host (made here)...
  reg_dev_field *carry;                 // ...or both kept on the device ([2]; NULL: ranks)
  int keep_next;                        // ...when another level of this stage follows
  const ffdp_volume *final_grid;        // one process, last level on this grid: compose here...
  ffdp_volume *u, *ui;                  // ...the full-resolution transforms, in the level's memory
};

// One level on the active ranks c: both fields brought from the previous level on the device;
// the updated owned planes go into *v_slab (v_f then v_m, stored planes each, for the gather),
// or, when v_slab is NULL (one process), stay on the device for the next level (io->carry), or
// go into new host fields io->vf_new / vm_new, or become io->u / io->ui.
ffdp_status syn_level(const ffdp_comm *c, const reg_level *L, const ffdp_reg_options *opt, int si, int lv, ffdp_mat4 aff,
                      SynFields *io, int64_t halo, double base, ffdp_stage_summary *sum, double t_start,
                      ffdp_slab *slab_out, float **v_slab, ffdp_error *err) {
  const ffdp_stage_spec *S = &opt->stages[si];
  const int64_t nx = L->F->dim[0], ny = L->F->dim[1], nz = L->F->dim[2], P = nx * ny, ntot = P * nz;
  const ffdp_slab s = c->size > 1 ? ffdp_slab_split(nx, ny, nz, c->rank, c->size, halo) : L->fs;
  ffdp_slab store = s; /* midpoint images on every stored plane: no exchange for them */
  store.z0 = s.zlo, store.z1 = s.zhi;
  /* ranks hold only the planes of both images their points reach (windows, below) */
  const int win = c->size > 1;
  const long long n = ffdp_slab_stored(&s), nm = win ? 0 : ffdp_volume_nvox(L->M), nf = win ? 0 : ntot;
  const double t_in = reg_now();
  SynBufs b;
  reg_layout lay;
  reg_window WF, WM;
  memset(&WF, 0, sizeof WF), memset(&WM, 0, sizeof WM);
  size_t need = 0;
  double *hist = (double *)malloc((size_t)(S->iters[lv] + 1) * sizeof(double));
  const int coded = L->pyr->coded; /* the images as 16-bit codes (--image-precision u16) */
  const int masks = (L->fmask ? REG_HAS_FIXED_MASK : 0) | (L->mmask ? REG_HAS_MOVING_MASK : 0) | (coded ? REG_CODED_IMAGES : 0);
  const int bf16 = opt->state_precision == FFDP_STATE_BF16, coarse = opt->state_resolution == FFDP_STATE_HALF;
  const long long nmom = reg_moment_values(&s, coarse); /* values of each moment */
  reg_dev_field *carry = io->carry;
  const long long ring = reg_step_ring_floats(nx, ny, s.zhi - s.zlo, S->grad_sigma);
  ffdp_volume *spilled[2] = {nullptr, nullptr}; /* kept fields moved to the host for want of room */
  /* the images the pyramid holds on the device for this level become the level's own */
  const bool took = hist && !coded && !win && reg_cuda_level_take(L, 0, nz, &b.taken[0], &b.taken[1]);
  if (carry && (carry[0].dev || carry[1].dev)) {
    reg_layout next;
    syn_layout(s, c->size, S->grad_sigma, opt->device_budget, n, nf, nm, bf16, nmom, coarse, masks,
               ffdp_volume_nvox(L->M), ring, took, &next);
    reg_cuda_pyramid_trim(L->pyr, (double)(next.total + REG_OP_SCRATCH_BYTES));
    for (int k = 0; k < 2; k++)
      if (reg_dev_field_make_room(&carry[k], next.total, &spilled[k], err)) {
        ffdp_volume_free(spilled[0]);
        reg_cuda_level_release(&b.block, b.taken);
        free(hist);
        return err->code;
      }
  }
  cudaError_t ce = hist ? alloc_syn(L->pyr, b, lay, s, c->size, S->grad_sigma, opt->device_budget, n, nf, nm, bf16,
                                  nmom, coarse, masks, ffdp_volume_nvox(L->M), P, ring, &need)
                        : cudaErrorMemoryAllocation;
  ffdp_status st = FFDP_OK;
  if (ce)
    st = ffdp_fail(err, FFDP_ERR_NOMEM, "CUDA SyN level %d: cannot allocate %.1f MB on the device (%s)", lv + 1,
                   need / 1e6, cudaGetErrorString(ce));
  int rc = 0;
  /* sampled: whole; coded: encoded on the device, the floats coming up through gu (free
   * until the loop) */
  if (!st && !win && !took)
    rc = coded ? reg_cuda_level_upload16(L, 0, 0, nz, (uint16_t *)b.F, b.gu, 3 * n)
               : reg_cuda_level_upload(L, 0, 0, nz, (float *)b.F);
  if (!st && !rc && !win && !took)
    rc = coded ? reg_cuda_level_upload16(L, 1, 0, L->M->dim[2], (uint16_t *)b.M, b.gu, 3 * n)
               : reg_cuda_level_upload(L, 1, 0, L->M->dim[2], (float *)b.M);
  if (L->F == L->pyr->F) reg_cuda_pyramid_trim(L->pyr, -1); /* full resolution: no more builds for now */
  /* gu is free until the loop: scratch for the previous level's fields */
  const ffdp_volume *from[2] = {spilled[0] ? spilled[0] : io->vf_prev, spilled[1] ? spilled[1] : io->vm_prev};
  float *to[2] = {b.vf, b.vm}, *scr[2] = {b.gu, b.gu};
  for (int k = 0; k < 2 && !st && !rc; k++)
    rc = carry && carry[k].dev ? reg_dev_field_onto(&carry[k], L->F, &s, to[k])
                               : reg_cuda_field_upload(from[k], L->F, &s, to[k], scr[k], 3 * n);
  ffdp_volume_free(spilled[0]), ffdp_volume_free(spilled[1]);
  ffdp_warp wfix, wmov, cfix, cmov;
  reg_syn_warps(L, aff, &wfix, &wmov, &cfix, &cmov);
  double bf = 0, bm = 0;
  if (!st && !rc && win) rc = reg_window_bound(&store, b.vf, b.red, &bf);
  if (!st && !rc && win) rc = reg_window_bound(&store, b.vm, b.red, &bm);
  reg_share shf, shm; /* where the windows' planes come from (image_share.h) */
  reg_share_open(&shf, c, L->F, reg_share_mode(opt, c)), reg_share_open(&shm, c, L->M, reg_share_mode(opt, c));
  const ffdp_code16 *kf = coded ? &L->pyr->codes[0] : nullptr, *km = coded ? &L->pyr->codes[1] : nullptr;
  rc = reg_window_open(&WF, &shf, &wfix, &store, bf, win ? nullptr : b.F, kf, st ? (int)cudaErrorMemoryAllocation : rc, err);
  rc = reg_window_open(&WM, &shm, &wmov, &store, bm, win ? nullptr : b.M, km, st ? (int)cudaErrorMemoryAllocation : rc, err);
  reg_cuda_mask mk;
  memset(&mk, 0, sizeof mk);
  if (!st && !rc) rc = reg_cuda_mask_open(&mk, &lay, b.block, L, &s, c, 0, err);
  if (rc < 0 && !st) st = err->code;
  if (!st && rc) st = ffdp_fail(err, FFDP_ERR_IO, "CUDA error uploading SyN level %d: %s", lv + 1, cudaGetErrorString((cudaError_t)rc));
  if ((st = c->agree(c, st, err))) {
    reg_window_close(&WF), reg_window_close(&WM), reg_share_close(&shf, nullptr), reg_share_close(&shm, nullptr);
    reg_cuda_level_release(&b.block, b.taken);
    free(hist);
    return st;
  }
  reg_trace("SyN level %d: device buffers + upload %.1f ms", lv + 1, 1e3 * (reg_now() - t_in));
  const double h = reg_level_step_mm(L);
  float *mxh = nullptr; /* the last steps' gradient norms, learned without waiting (one process) */
  if (c->size == 1 && cudaMallocHost((void **)&mxh, 2 * sizeof(float))) mxh = nullptr, cudaGetLastError();
  /* one process, CC: the loss read back while the step runs, so the GPU always has the next
   * kernels queued instead of idling through a round trip to the host (step_cuda.h) */
  reg_cuda_deferred_loss dl;
  reg_cuda_deferred_open(&dl, mxh && S->metric.kind == FFDP_METRIC_CC && !st && !rc);
  reg_phase_clock pc;
  reg_phase_clock_open(&pc, 6, S->iters[lv]);
  double lt0 = reg_now();
  int it = 0, conv = 0;
  for (; it < S->iters[lv] && !conv && !rc; it++) {
    if ((st = c->agree(c, reg_injected_failure(c, si, lv, it + 1, err), err))) break;
    double loss = 0;
    int mv1 = 1, mv2 = 1;
    reg_phase_clock_mark(&pc, it, 0);
    /* the gradient field is free until the backward; a shared metric gradient follows it
     * (gu trades places with a field every step) */
    float *fmid = b.gu, *mmid = b.gu + n, *gf = b.shared ? b.gu + 2 * n : b.gf;
    const uint8_t *mask = nullptr;
    int64_t scored = ntot;
    rc = reg_cuda_mask_scored(&mk, c, &wmov, &s, b.vm, b.gu + 2 * n, &mask, &scored, err);
    if (!rc) rc = reg_cuda_sample_image_fwd(&wfix, &store, b.vf, &WF.ms, reg_window_image(&WF), fmid);
    if (!rc) rc = reg_cuda_sample_image_fwd(&wmov, &store, b.vm, &WM.ms, reg_window_image(&WM), mmid);
    reg_phase_clock_mark(&pc, it, 1);
    if (!rc)
      rc = dl.pend ? reg_cuda_cc2_begin(&S->metric, &s, scored, fmid, mmid, mask, gf, b.gm, dl.pend)
                : reg_cuda_metric2(c, &S->metric, &s, scored, fmid, mmid, mask, gf, b.gm, &loss, err);
    if (rc < 0) break;
    if (!rc && mxh && it > 0 &&
        !(rc = reg_cuda_deferred_wait_step(&dl)) && !(mxh[0] > 0) &&
        !(mxh[1] > 0)) {
      conv = 1; /* both gradients of the previous step had vanished: that step was the last */
      break;
    }
    if (!rc && !dl.pend && !isfinite(loss)) {
      st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
      break;
    }
    if (!dl.pend) hist[it] = loss;
    reg_phase_clock_mark(&pc, it, 2);
    /* the fixed side first: its incoming gradient may sit in gu's last third, which the
     * moving side's backward would overwrite (the two steps are independent) */
    if (!rc)
      rc = b.shared ? reg_cuda_sample_bwd_shared(&wfix, &s, b.vf, &WF.ms, reg_window_image(&WF), b.gu, b.ring, b.ring_floats)
                    : reg_cuda_sample_image_bwd(&wfix, &s, b.vf, &WF.ms, reg_window_image(&WF), gf, b.gu);
    reg_phase_clock_mark(&pc, it, 3);
    if (!rc)
      rc = reg_cuda_field_step(c, &s, &b.vf, &b.gu, b.ring, b.ring_planes, b.spare, b.af, it + 1, &cfix, 0.5 * S->lr * h,
                               S->grad_sigma, S->warp_sigma, b.red, mxh ? mxh + 1 : nullptr, &mv2, err);
    reg_phase_clock_mark(&pc, it, 4);
    if (!rc) rc = reg_cuda_sample_image_bwd(&wmov, &s, b.vm, &WM.ms, reg_window_image(&WM), b.gm, b.gu);
    reg_phase_clock_mark(&pc, it, 5);
    if (!rc)
      rc = reg_cuda_field_step(c, &s, &b.vm, &b.gu, b.ring, b.ring_planes, b.spare, b.am, it + 1, &cmov, 0.5 * S->lr * h,
                               S->grad_sigma, S->warp_sigma, b.red, mxh, &mv1, err);
    rc = reg_window_follow(&WM, &shm, &wmov, &store, b.vm, b.red, rc, err);
    rc = reg_window_follow(&WF, &shf, &wfix, &store, b.vf, b.red, rc, err);
    reg_phase_clock_mark(&pc, it, 6);
    if (dl.pend) { /* the step is queued: now the loss it started from (an error stops the level
                 * as before; the step then taken is not kept) */
      rc = reg_cuda_deferred_after_step(&dl, rc, &loss);
      if (!rc && !isfinite(loss)) {
        st = ffdp_fail(err, FFDP_ERR_NUMERIC, "stage %d level %d: the loss became %g", si + 1, lv + 1, loss);
        break;
      }
      hist[it] = loss;
    }
    conv = !(mv1 || mv2) || reg_converged(hist, it + 1, S->window, S->tol);
    if (it == 0) {
      double used = reg_cuda_used_bytes() - base;
      sum->device_peak_bytes = used > sum->device_peak_bytes ? used : sum->device_peak_bytes;
    }
    reg_report(opt, si, lv, it + 1, loss, t_start, lt0, ntot, 0, conv);
  }
  rc = reg_cuda_deferred_close(&dl, rc); /* a loss still in flight is waited for first */
  if (mxh) cudaFreeHost(mxh);
  const double t_it = reg_now();
  {
    static const char *const phase_names[6] = {"mask + samplers", "metric", "fixed backward", "fixed step",
                                               "moving backward", "moving step"};
    char what[32];
    snprintf(what, sizeof what, "SyN level %d", lv + 1);
    reg_phase_clock_close(&pc, what, phase_names);
  }
  reg_trace("SyN level %d: %d iterations %.1f ms (%.3f ms each)", lv + 1, it, 1e3 * (t_it - lt0),
            it ? 1e3 * (t_it - lt0) / it : 0.0);
  if (win)
    reg_trace("SyN level %d: windows of %lld fixed / %lld moving planes (of %lld / %lld), %d + %d fetches, %.1f MB "
              "(whole images %.1f MB)", lv + 1, (long long)(WF.ms.zhi - WF.ms.zlo), (long long)(WM.ms.zhi - WM.ms.zlo),
              (long long)nz, (long long)L->M->dim[2], WF.fetches, WM.fetches, (WF.bytes + WM.bytes) / 1e6,
              (ntot + ffdp_volume_nvox(L->M)) * (coded ? 2e-6 : 4e-6));
  sum->window_bytes += WF.bytes + WM.bytes;
  reg_window_close(&WF), reg_window_close(&WM), reg_share_close(&shf, sum), reg_share_close(&shm, sum);
  float *keep = nullptr, *dev[2] = {b.vf, b.vm}, *full[2] = {nullptr, nullptr};
  int kept = 0;
  if (!st && !rc && !io->final_grid && io->keep_next && carry) {
    kept = reg_dev_field_keep(&carry[0], L->F, &s, b.vf) && reg_dev_field_keep(&carry[1], L->F, &s, b.vm);
    if (!kept) reg_dev_field_free(&carry[0]), reg_dev_field_free(&carry[1]); /* both or neither */
    else reg_trace("SyN level %d: fields kept on the device for the next level", lv + 1);
  }
  if (!st && !rc && !io->final_grid && !kept && !v_slab) { /* one process: host fields for the next level */
    st = reg_field_create_mapped(L->F, &io->vf_new, err);
    if (!st) st = reg_field_create_mapped(L->F, &io->vm_new, err);
    if (!st) full[0] = io->vf_new->data, full[1] = io->vm_new->data;
  }
  if (!st && !rc && io->final_grid) {
    /* the gradient field and the Adam moments are free now: each side's two moments span a
     * field's bytes (fp32: the first alone, so the fixed side's second is a spare field; bf16:
     * both, laid out one after the other) */
    st = syn_final(io->final_grid, grid_slab(io->final_grid), aff, b.vf, b.vm, b.gu, coarse ? nullptr : (float *)b.af.m,
                   coarse ? nullptr : (float *)b.am.m, coarse || bf16 ? nullptr : (float *)b.af.v, 1, &io->u, &io->ui,
                   err);
    reg_trace("SyN final inversions and compositions in the last level's memory: %.1f ms", 1e3 * (reg_now() - t_it));
  } else if (!st && !rc && !kept) {
    rc = reg_cuda_fields_down(&s, 2, dev, full, v_slab ? &keep : nullptr);
    reg_trace("SyN level %d: download %.1f ms", lv + 1, 1e3 * (reg_now() - t_it));
  }
  st = reg_cuda_level_end(c, rc, st, opt, si, lv, hist, it, t_start, lt0, ntot, conv, sum, err);
  free(hist);
  reg_cuda_level_release(&b.block, b.taken);
  if (st) {
    free(keep);
    return st;
  }
  *slab_out = s;
  if (v_slab) *v_slab = keep;
  return FFDP_OK;
}

}  // namespace

extern "C" ffdp_status reg_syn_stage_cuda(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                                          ffdp_mat4 aff, ffdp_volume **u_out, ffdp_volume **uinv_out,
                                          ffdp_stage_summary *sum, double t_start, ffdp_error *err) {
  const ffdp_volume *F = pyr->F;
  const ffdp_stage_spec *S = &opt->stages[si];
  const ffdp_comm *c = ffdp_comm_or_single(opt->comm);
  *u_out = *uinv_out = NULL;
  ffdp_volume *vf = NULL, *vm = NULL;
  double t0 = reg_now(), base = reg_cuda_used_bytes() - reg_cuda_pyramid_kept(pyr);
  sum->kind = S->kind;
  sum->iterations = 0;
  sum->device_peak_bytes = 0, sum->window_bytes = 0;
  ffdp_status st = FFDP_OK;
  int rc = 0;
  const int coarse = opt->state_resolution == FFDP_STATE_HALF;
  const int64_t halo = reg_deformable_halo(S, coarse);
  ffdp_volume *u = NULL, *ui = NULL;
  reg_handover ho; /* ranks: each one's planes of both fields of the last level, when not gathered */
  memset(&ho, 0, sizeof ho);
  reg_dev_field carry[2]; /* one process: both fields of a level kept on the device for the next */
  memset(carry, 0, sizeof carry);
  const char *kf = getenv("FFDP_KEEP_FIELD"); /* 0: every level's fields through the host (comparisons) */
  const int keep_fields = c->size == 1 && !(kf && !strcmp(kf, "0"));
  for (int lv = 0; lv < S->nlevels && !st; lv++) {
    reg_level L;
    st = reg_level_build(pyr, opt->fixed_mask, opt->moving_mask, S->shrink[lv], S->smooth[lv], &L, err);
    const int final_here = !st && c->size == 1 && lv == S->nlevels - 1 && L.F->dim[0] == F->dim[0] &&
                           L.F->dim[1] == F->dim[1] && L.F->dim[2] == F->dim[2];
    if ((st = c->agree(c, st, err))) {
      if (L.F || L.M) reg_level_free(&L);
      break;
    }
    const int nact = reg_level_ranks(c->size, L.F->dim[2], halo); /* thin levels: fewer ranks */
    if (!st) st = reg_level_ready(&L, nact, halo, reg_share_mode(opt, c), 1, err); /* sharded inputs: the planes it reads */
    ffdp_volume *both[2] = {vf, vm};
    const ffdp_volume *prev[2] = {NULL, NULL}; /* ranks: own planes carried over, or the gathered fields */
    if (!st) st = reg_handover_next(&ho, c, L.F, nact, halo, 2, both, prev, err);
    vf = both[0], vm = both[1];
    ffdp_comm *sub = st ? nullptr : nact == c->size ? (ffdp_comm *)c : c->first(c, nact);
    ffdp_slab s = L.fs;
    float *vs = nullptr;
    SynFields io = {prev[0], prev[1], NULL, NULL, keep_fields ? carry : NULL, lv < S->nlevels - 1, final_here ? F : NULL,
                    NULL, NULL};
    if (sub) st = syn_level(sub, &L, opt, si, lv, aff, &io, halo, base, sum, t_start, &s, c->size > 1 ? &vs : nullptr, err);
    u = io.u, ui = io.ui;
    if (sub && sub != c) ffdp_comm_free(sub);
    if (c->size > 1) {
      if (!(st = c->agree(c, st, err))) {
        reg_level_account(c, sum);
        st = c->agree(c, reg_handover_keep(&ho, 2, vs, &s, L.F, nact == c->size, err), err);
      }
    } else {
      ffdp_volume_free(vf), ffdp_volume_free(vm);
      vf = io.vf_new, vm = io.vm_new; /* NULL when kept on the device */
    }
    free(vs);
    reg_level_free(&L);
  }
  reg_dev_field_free(&carry[0]), reg_dev_field_free(&carry[1]); /* only after a failure is one still held */
  ffdp_volume *both[2] = {vf, vm};
  if (!st) st = reg_handover_finish(&ho, c, both, 0, err); /* the whole fields on every rank, for the final step */
  vf = both[0], vm = both[1];
  reg_handover_clear(&ho);
  /* composite transforms at full resolution, unless the last level already made them: each
   * rank makes its own planes (with the halo their points reach) and the ranks gather them */
  const double t_fin = reg_now();
  if (!st && !rc && !u) {
    if (!(st = reg_field_to_grid(&vf, F, err))) st = reg_field_to_grid(&vm, F, err);
    const ffdp_slab fs = st ? grid_slab(F) : syn_final_slab(c, F, aff, vf, vm);
    const long long P = F->dim[0] * F->dim[1], ns = ffdp_slab_stored(&fs);
    reg_layout FL;
    reg_layout_syn_final(ns, coarse, &FL);
    reg_cuda_pyramid_trim(pyr, (double)FL.total);
    char *blk = nullptr;
    if (!st && cudaMalloc((void **)&blk, FL.total) != cudaSuccess)
      st = ffdp_fail(err, FFDP_ERR_NOMEM, "CUDA SyN: cannot allocate %.1f MB for the final composition", FL.total / 1e6);
    if (!st) {
      float *dvf = (float *)(blk + FL.off[SF_VF]), *dvm = (float *)(blk + FL.off[SF_VM]), *w = (float *)(blk + FL.off[SF_W]),
            *tmp = coarse ? nullptr : (float *)(blk + FL.off[SF_TMP]), *out = coarse ? nullptr : (float *)(blk + FL.off[SF_OUT]);
      cudaError_t e = (cudaError_t)reg_cuda_copy_up(dvf, vf->data + fs.zlo * P * 3, ns * 3 * sizeof(float));
      if (!e) e = (cudaError_t)reg_cuda_copy_up(dvm, vm->data + fs.zlo * P * 3, ns * 3 * sizeof(float));
      if (e) st = ffdp_fail(err, FFDP_ERR_IO, "CUDA error uploading the SyN fields: %s", cudaGetErrorString(e));
      if (!st) st = syn_final(F, fs, aff, dvf, dvm, w, tmp, out, nullptr, !reg_result_shares(opt, si, c), &u, &ui, err);
      reg_trace("SyN final on planes [%lld, %lld) stored [%lld, %lld): %.1f ms", (long long)fs.z0, (long long)fs.z1,
                (long long)fs.zlo, (long long)fs.zhi, 1e3 * (reg_now() - t_fin));
    }
    if (blk) cudaFree(blk);
    const int to_root = reg_result_to_root(opt, si, c);
    /* with result_shares each rank keeps the planes it made: its share (fs owns exactly those) */
    if (c->size > 1 && !(st = c->agree(c, st, err)) && !reg_result_shares(opt, si, c))
      st = syn_final_gather(c, F, fs, u, ui, to_root, err);
    if (!st && to_root && c->rank != 0) { /* rank 0 alone receives the result */
      ffdp_volume_free(u), ffdp_volume_free(ui);
      u = ui = nullptr;
    }
  }
  reg_trace("SyN final inversions and compositions (with transfers): %.1f ms", 1e3 * (reg_now() - t_fin));
  ffdp_volume_free(vf), ffdp_volume_free(vm);
  if (c->size > 1) st = c->agree(c, st, err);
  if (st) {
    ffdp_volume_free(u), ffdp_volume_free(ui);
    return st;
  }
  *u_out = u, *uinv_out = ui;
  sum->seconds = reg_now() - t0;
  return FFDP_OK;
}
