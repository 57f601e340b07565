// Device versions of the shared deformable-stage helpers (greedy.c: reg_field_step;
// field_ops.c: reg_compose_fields, reg_invert_field), same math, fields resident on the GPU.
// Over several ranks each works on its slab; the halos cross ranks through comm->halo_dev.
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/comm_internal.h"
#include "core/err.h"
#include "ops/kernels1d.h"
#include "ops/ops_cuda.h"
#include "reg/dev_layout.h"
#include "reg/reg_internal.h"
#include "reg/step_cuda.h"

extern "C" int reg_cuda_agreed(const ffdp_comm *c, int rc, ffdp_error *err) {
  if (c->size < 2) return rc;
  ffdp_status st = rc ? ffdp_fail(err, FFDP_ERR_IO, "CUDA error: %s", cudaGetErrorString((cudaError_t)rc)) : FFDP_OK;
  return c->agree(c, st, err) ? -1 : 0;
}

extern "C" int reg_cuda_field_step(const ffdp_comm *comm, const ffdp_slab *s, float **u_io, float **gu_io, float *ring,
                                   long long ring_planes, float *spare, reg_cuda_adam adam, int t, const ffdp_warp *cw,
                                   double step, double grad_sigma, double warp_sigma, float *scratch, float *mx_host,
                                   int *moved, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  float *const u = *u_io, *const gu = *gu_io;
  const long long P = s->nx * s->ny, own = (s->z0 - s->zlo) * P * 3, n = (s->z1 - s->z0) * P;
  const double I[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  const size_t es = adam.bf16 ? 2 : 4; /* bytes per stored moment */
  /* coarse moments are stored from the slab's first coarse plane, full ones per stored voxel */
  void *am = adam.coarse ? adam.m : (char *)adam.m + own * es, *av = adam.coarse ? adam.v : (char *)adam.v + own * es;
  ffdp_slab ext = *s; /* the coarse step reads the smoothed gradient two planes past the owned */
  if (adam.coarse) reg_coarse_extend(s, &ext);
  /* the new warp is made in gu's memory (each voxel's composition reads gu at itself only),
   * and the two trade places: two fields where there were three */
  auto trade = [&]() { *u_io = gu, *gu_io = u; };
  /* Its smoothing then goes out of place into u's memory, which the composition has finished
   * reading, so nothing trades: the one-pass blur out of place takes one barrier a plane and no
   * neighbours' counters where in place it takes two and polls them (H100, bench/gpu/NOTES.md run
   * 192). gu, dead by then, is the two-pass paths' scratch. The same bits as in place. */
  auto smooth_warp = [&]() -> int {
    double w[2 * FFDP_MAX_RADIUS + 1];
    if (warp_sigma <= 0 || ffdp_gauss_weights(warp_sigma, w) == 0) { /* the identity */
      trade();
      return 0;
    }
    const double ws[3] = {warp_sigma, warp_sigma, warp_sigma};
    return ffdp_cuda_blur(s, gu, 3, ws, u, gu, nullptr);
  };
  if (c->halo_dev(c, s, gu, 3, err)) return -1;
  const char *fuse = getenv("FFDP_FUSE_STEP"); /* 0: the separate passes (comparisons) */
  /* one process: the gradient smoothed with its largest norm, in place, or out of place into
   * the spare field where the level has one (the same bits, the faster kernel on large planes);
   * returns where the smoothed gradient is */
  auto smooth_grad = [&](int *rc) -> float * {
    if (spare) {
      const double gs[3] = {grad_sigma, grad_sigma, grad_sigma};
      *rc = ffdp_cuda_blur_maxnorm3(s, gu, gs, spare, gu, scratch, nullptr);
      return spare;
    }
    *rc = ffdp_cuda_blur_inplace3(s, gu, grad_sigma, ring, ring_planes, scratch, nullptr);
    return gu;
  };
  if (mx_host && c->size == 1 && adam.coarse) {
    /* one process, coarse moments: the largest norm from the blur's epilogue, then the coarse
     * step inside the composition (d never stored; FFDP_FUSE_STEP=0: the step into the
     * gradient's memory, then the composition in place of it; the same bits) */
    int rc = 0;
    float *sg = smooth_grad(&rc);
    if (!rc) rc = (int)cudaMemcpyAsync(mx_host, scratch + 1024, sizeof(float), cudaMemcpyDeviceToHost, nullptr);
    if (!rc && !(fuse && !strcmp(fuse, "0")))
      rc = ffdp_cuda_compose_coarse_adam(cw, s, sg, am, av, adam.bf16, ring, scratch + 1025, t, step, u, gu, nullptr);
    else if (!rc) {
      rc = ffdp_cuda_coarse_adam(s, sg, am, av, adam.bf16, ring, scratch + 1025, t, step, nullptr);
      if (!rc) rc = ffdp_cuda_compose_fwd(cw, I, s, sg, s, u, gu, nullptr); /* d + u∘(p + S d), into gu */
    }
    *moved = 1;
    return rc ? rc : smooth_warp();
  }
  if (mx_host && c->size == 1 && !(fuse && !strcmp(fuse, "0"))) {
    /* one process: the largest norm comes out of the blur's epilogue and the Adam step runs
     * inside the composition, so the step d is never stored: three passes over the field
     * fewer than below, the same bits */
    int rc = 0;
    const float *sg = smooth_grad(&rc);
    if (!rc) rc = (int)cudaMemcpyAsync(mx_host, scratch + 1024, sizeof(float), cudaMemcpyDeviceToHost, nullptr);
    if (!rc)
      rc = ffdp_cuda_compose_adam(cw, s, sg, am, av, adam.bf16, scratch + 1025, t, step, u, gu, nullptr); /* d + u∘(p+Sd) */
    *moved = 1;
    return rc ? rc : smooth_warp();
  }
  int rc = ffdp_cuda_blur_inplace3(&ext, gu, grad_sigma, ring, ring_planes, nullptr, nullptr);
  float *d = gu + own; /* the step, made in place of the smoothed gradient */
  if (adam.coarse) {
    /* the largest norm over the owned planes, agreed by every rank, to the device for the
     * coarse step (which reads it as the one-process path does) */
    double mx = 0;
    if (!rc) rc = ffdp_cuda_maxnorm3(n, d, scratch, &mx, nullptr);
    if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
    mx = c->max(c, mx);
    *moved = mx > 0;
    const float inv = *moved ? (float)(1.0 / mx) : 0.f;
    rc = (int)cudaMemcpy(scratch + 1025, &inv, sizeof(float), cudaMemcpyHostToDevice);
    if (!rc) rc = ffdp_cuda_coarse_adam(s, gu, am, av, adam.bf16, ring, scratch + 1025, t, step, nullptr);
  } else if (mx_host && c->size == 1) {
    /* one process: the normalization stays on the device and the host learns whether the
     * gradient vanished after its next wait (the loss), instead of waiting here */
    if (!rc) rc = ffdp_cuda_maxnorm3_dev(n, d, scratch, nullptr);
    if (!rc) rc = ffdp_cuda_adam_step_dev(3 * n, d, am, av, adam.bf16, scratch + 1025, t, step, nullptr);
    if (!rc) rc = (int)cudaMemcpyAsync(mx_host, scratch + 1024, sizeof(float), cudaMemcpyDeviceToHost, nullptr);
    *moved = 1;
  } else {
    double mx = 0;
    if (!rc) rc = ffdp_cuda_maxnorm3(n, d, scratch, &mx, nullptr);
    if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
    mx = c->max(c, mx);
    *moved = mx > 0;
    /* a vanished gradient: a zero update (the warp is still smoothed), then the level stops */
    rc = *moved ? ffdp_cuda_adam_step(3 * n, d, am, av, adam.bf16, 1.0 / mx, t, step, nullptr)
                : (int)cudaMemsetAsync(d, 0, 3 * n * sizeof(float), nullptr);
  }
  if (c->size > 1) { /* u is read at p + S d: those planes must be stored */
    double md = 0;
    if (!rc) rc = ffdp_cuda_maxnorm3(n, d, scratch, &md, nullptr);
    if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
    const double *S2 = cw->S[2];
    const double reach = c->max(c, md * sqrt(S2[0] * S2[0] + S2[1] * S2[1] + S2[2] * S2[2])) + 1;
    const int64_t below = s->z0 > 0 ? s->z0 - s->zlo : INT64_MAX, above = s->z1 < s->nz ? s->zhi - s->z1 : INT64_MAX;
    const double have = -c->max(c, -(double)(below < above ? below : above)); /* min over ranks */
    if (reach > have) {
      ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "an update reached %.1f planes, past the %g-plane halo; use fewer ranks", reach,
                have);
      return -1;
    }
  }
  if (!rc) rc = ffdp_cuda_compose_fwd(cw, I, s, gu, s, u, gu, nullptr); /* d + u∘(p + S d), in place of d */
  if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
  if (warp_sigma > 0 && c->halo_dev(c, s, gu, 3, err)) return -1;
  rc = smooth_warp();
  if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
  return c->halo_dev(c, s, *u_io, 3, err) ? -1 : 0;
}

extern "C" int reg_cuda_sample_image_fwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                         reg_dev_image im, float *out) {
  return im.coded ? ffdp_cuda_sample_fwd_u16(w, fs, u, ms, (const uint16_t *)im.d, im.k, out, nullptr)
                  : ffdp_cuda_sample_fwd(w, fs, u, ms, (const float *)im.d, 1, out, nullptr);
}

extern "C" int reg_cuda_sample_image_bwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                         reg_dev_image im, const float *gout, float *gu) {
  return im.coded ? ffdp_cuda_sample_bwd_u16(w, fs, u, ms, (const uint16_t *)im.d, im.k, gout, gu, nullptr)
                  : ffdp_cuda_sample_bwd(w, fs, u, ms, (const float *)im.d, 1, gout, gu, nullptr, nullptr);
}

extern "C" int reg_cuda_sample_bwd_shared(const ffdp_warp *w, const ffdp_slab *s, const float *u, const ffdp_slab *ms,
                                          reg_dev_image im, float *gu, float *side, long long side_floats) {
  /* Stored plane p's voxels write gu[3 P p .. 3 P (p + 1)), which holds the incoming values of
   * planes 3p - 2ns .. 3p + 3 - 2ns: planes [pa, pb) may go together once every plane they
   * overwrite lies below pa (read already, or a halo plane nobody reads), i.e. pb <= (pa +
   * 2 ns) / 3. The gap to the top shrinks threefold per chunk; the last plane, which would
   * overwrite itself, reads a copy. */
  const long long P = s->nx * s->ny, ns = s->zhi - s->zlo, o1 = s->z1 - s->zlo;
  const float *gout = gu + 2 * ns * P;
  long long pa = s->z0 - s->zlo;
  int rc = 0;
  while (pa < o1 && !rc) {
    long long pb = (pa + 2 * ns) / 3;
    if (pb > o1) pb = o1;
    ffdp_slab c = *s;
    c.z0 = s->zlo + pa;
    if (pb > pa) {
      c.z1 = s->zlo + pb;
      rc = reg_cuda_sample_image_bwd(w, &c, u, ms, im, gout, gu);
      pa = pb;
      continue;
    }
    if ((o1 - pa) * P > side_floats) return (int)cudaErrorInvalidValue;
    rc = (int)cudaMemcpyAsync(side, gout + pa * P, (o1 - pa) * P * sizeof(float), cudaMemcpyDeviceToDevice, nullptr);
    c.z1 = s->z1;
    if (!rc) rc = reg_cuda_sample_image_bwd(w, &c, u, ms, im, side - pa * P, gu);
    pa = o1;
  }
  return rc;
}

extern "C" ffdp_status reg_cuda_level_end(const ffdp_comm *comm, int rc, ffdp_status st, const ffdp_reg_options *opt,
                                          int si, int lv, const double *hist, int it, double t_start, double lt0,
                                          int64_t n, int conv, ffdp_stage_summary *sum, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  if (rc < 0 && !st) st = err ? err->code : FFDP_ERR_IO; /* already agreed by every rank */
  if (rc > 0 && !st)
    st = ffdp_fail(err, FFDP_ERR_IO, "CUDA error in stage %d level %d: %s", si + 1, lv + 1, cudaGetErrorString((cudaError_t)rc));
  st = c->agree(c, st, err);
  reg_level_done(opt, si, lv, hist, it, st, t_start, lt0, n, conv, sum);
  return st;
}

extern "C" int reg_cuda_fields_down(const ffdp_slab *s, int nf, float *const dev[], float *const full[], float **keep) {
  const long long P = s->nx * s->ny, n = ffdp_slab_stored(s), own = (s->z0 - s->zlo) * P * 3, nown = (s->z1 - s->z0) * P;
  int rc = 0;
  if (!keep) {
    for (int k = 0; k < nf && !rc; k++)
      rc = reg_cuda_copy_down(full[k] + s->z0 * P * 3, dev[k] + own, (size_t)(3 * nown * 4));
    return rc;
  }
  *keep = (float *)malloc((size_t)n * 3 * nf * sizeof(float));
  if (!*keep) return (int)cudaErrorMemoryAllocation;
  for (int k = 0; k < nf && !rc; k++) rc = reg_cuda_copy_down(*keep + 3 * n * k, dev[k], (size_t)(3 * n * 4));
  return rc;
}

// Whether a field on a grid of dims sd and vox2world sa lies on grid itself.
static bool same_grid(const int64_t sd[3], const ffdp_mat4 &sa, const ffdp_volume *grid) {
  const int64_t *gd = ffdp_volume_dim(grid);
  const ffdp_mat4 ga = ffdp_volume_vox2world(grid);
  return sd[0] == gd[0] && sd[1] == gd[1] && sd[2] == gd[2] && !memcmp(&sa, &ga, sizeof ga);
}

// A whole field on the device (dims sd, vox2world sa) resampled onto the stored planes of slab
// s of grid, in dev: linear, border-clamped, as reg_field_to_grid.
static int resample_onto(const float *src, const int64_t sd[3], const ffdp_mat4 &sa, const ffdp_volume *grid,
                         const ffdp_slab *s, float *dev) {
  ffdp_warp w;
  ffdp_warp_fold(ffdp_mat4_identity(), ffdp_volume_vox2world(grid), sa, FFDP_INTERP_LINEAR, FFDP_PAD_BORDER, &w);
  ffdp_slab store = *s, ms = ffdp_slab_whole(sd[0], sd[1], sd[2]);
  store.z0 = s->zlo, store.z1 = s->zhi;
  return ffdp_cuda_sample_fwd(&w, &store, nullptr, &ms, src, 3, dev, nullptr);
}

extern "C" int reg_cuda_field_onto(const ffdp_volume *v, const ffdp_volume *grid, const ffdp_slab *s, float *dev,
                                   float *scratch, long long scratch_floats) {
  const long long P = s->nx * s->ny, n = ffdp_slab_stored(s);
  if (!v) return (int)cudaMemset(dev, 0, 3 * n * sizeof(float));
  const int64_t *vd = ffdp_volume_dim(v);
  const ffdp_mat4 va = ffdp_volume_vox2world(v);
  if (same_grid(vd, va, grid)) /* as they are */
    return reg_cuda_copy_up(dev, ffdp_volume_cdata(v) + s->zlo * P * 3, 3 * n * sizeof(float));
  const long long nv = ffdp_volume_nvox(v);
  if (3 * nv > scratch_floats) return -1;
  int rc = reg_cuda_copy_up(scratch, ffdp_volume_cdata(v), 3 * nv * sizeof(float));
  return rc ? rc : resample_onto(scratch, vd, va, grid, s, dev);
}

extern "C" int reg_cuda_field_upload(const ffdp_volume *v, const ffdp_volume *grid, const ffdp_slab *s, float *dev,
                                     float *scratch, long long scratch_floats) {
  int rc = reg_cuda_field_onto(v, grid, s, dev, scratch, scratch_floats);
  if (rc != -1) return rc;
  ffdp_volume *r = nullptr; /* a finer field than the level's scratch holds: resample on the host */
  if (ffdp_volume_resample(v, ffdp_volume_dim(grid), ffdp_volume_vox2world(grid), 0, 1, &r, nullptr))
    return (int)cudaErrorMemoryAllocation;
  rc = reg_cuda_field_onto(r, grid, s, dev, scratch, 0);
  ffdp_volume_free(r);
  return rc;
}

extern "C" int reg_dev_field_keep(reg_dev_field *f, const ffdp_volume *grid, const ffdp_slab *s, const float *u) {
  const int64_t *d = ffdp_volume_dim(grid);
  const size_t bytes = (size_t)(d[0] * d[1] * d[2]) * 3 * sizeof(float);
  memset(f, 0, sizeof *f);
  if (s->zlo != 0 || s->z0 != 0 || s->z1 != d[2]) return 0; /* one process only: the whole grid */
  if (cudaMalloc((void **)&f->dev, bytes)) {
    cudaGetLastError(); /* no room: not an error, the field goes through the host */
    f->dev = nullptr;
    return 0;
  }
  if (cudaMemcpy(f->dev, u, bytes, cudaMemcpyDeviceToDevice)) {
    cudaGetLastError();
    reg_dev_field_free(f);
    return 0;
  }
  for (int a = 0; a < 3; a++) f->dim[a] = d[a];
  f->vox2world = ffdp_volume_vox2world(grid);
  return 1;
}

extern "C" ffdp_status reg_dev_field_make_room(reg_dev_field *f, size_t need, ffdp_volume **host, ffdp_error *err) {
  *host = nullptr;
  if (!f->dev) return FFDP_OK;
  size_t fr = 0, tot = 0;
  if (!cudaMemGetInfo(&fr, &tot) && fr >= need + REG_OP_SCRATCH_BYTES + ((size_t)64 << 20)) return FFDP_OK;
  ffdp_status st = ffdp_volume_create(f->dim, 3, f->vox2world, host, err);
  if (!st && reg_cuda_copy_down((*host)->data, f->dev, (size_t)(f->dim[0] * f->dim[1] * f->dim[2]) * 3 * sizeof(float)))
    st = ffdp_fail(err, FFDP_ERR_IO, "CUDA error moving a field to the host: %s", cudaGetErrorString(cudaGetLastError()));
  if (st) ffdp_volume_free(*host), *host = nullptr;
  reg_dev_field_free(f);
  return st;
}

extern "C" int reg_dev_field_onto(reg_dev_field *f, const ffdp_volume *grid, const ffdp_slab *s, float *dev) {
  const int64_t P = s->nx * s->ny, n = ffdp_slab_stored(s);
  int rc = same_grid(f->dim, f->vox2world, grid)
               ? (int)cudaMemcpy(dev, f->dev + s->zlo * P * 3, 3 * n * sizeof(float), cudaMemcpyDeviceToDevice)
               : resample_onto(f->dev, f->dim, f->vox2world, grid, s, dev);
  if (!rc) rc = (int)cudaStreamSynchronize(nullptr); /* before the kept copy is freed */
  reg_dev_field_free(f);
  return rc;
}

extern "C" void reg_dev_field_free(reg_dev_field *f) {
  if (f->dev) cudaFree(f->dev);
  memset(f, 0, sizeof *f);
}

extern "C" int reg_cuda_compose_fields(const ffdp_slab *s, const ffdp_warp *vox, const float *U, const float *d,
                                       const double T[3][3], float *out) {
  return ffdp_cuda_compose_fwd(vox, T, s, d, s, U, out, nullptr);
}

extern "C" int reg_cuda_invert_field(const ffdp_slab *s, const ffdp_warp *vox, const float *v, int iters, float *w,
                                     float *tmp) {
  const long long n = s->nx * s->ny * (s->zhi - s->zlo);
  const double H[3][3] = {{0.5, 0, 0}, {0, 0.5, 0}, {0, 0, 0.5}};
  int rc = (int)cudaMemsetAsync(w, 0, 3 * n * sizeof(float), nullptr);
  if (!rc) rc = (int)cudaMemsetAsync(tmp, 0, 3 * n * sizeof(float), nullptr);
  if (!rc) rc = ffdp_cuda_axpby(3 * n, w, 0.0, v, -1.0, nullptr);   /* w = -v */
  if (!rc) rc = ffdp_cuda_axpby(3 * n, tmp, 0.0, v, -0.5, nullptr); /* tmp = -v/2 (exact) */
  /* w <- w - (w + v∘(id + w)) / 2 = w/2 + tmp∘(id + w): one composition per iteration, in
   * place (each voxel reads w only at itself) */
  for (int it = 0; it < iters && !rc; it++) rc = reg_cuda_compose_fields(s, vox, tmp, w, H, w);
  return rc;
}

/* CC's operator parameters and the loss's normalization (a mask may keep nothing) */
static ffdp_lncc_params cc_params(const ffdp_metric_spec *m) { return ffdp_lncc_params{m->window, FFDP_WINDOW_BOX, 1e-5}; }
static double per_scored(int64_t ntot) { return ntot > 0 ? 1.0 / (double)ntot : 0.0; }

extern "C" int reg_cuda_metric2(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, int64_t ntot,
                                const float *A, const float *B, const uint8_t *mask, float *gA, float *gB, double *loss,
                                ffdp_error *err) {
  if (m->kind == FFDP_METRIC_CC) { /* one pass gives both */
    const ffdp_comm *c = ffdp_comm_or_single(comm);
    const ffdp_lncc_params p = cc_params(m);
    int rc = ffdp_cuda_lncc2(&p, s, A, B, mask, per_scored(ntot), gA, gB, loss, nullptr);
    if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
    c->sum(c, loss, 1);
    return 0;
  }
  double other = 0;
  int rc = reg_cuda_metric(comm, m, s, ntot, A, B, mask, gB, loss, err);
  if (!rc && gA) rc = reg_cuda_metric(comm, m, s, ntot, B, A, mask, gA, &other, err); /* every metric is symmetric */
  return rc;
}

extern "C" int reg_cuda_cc2_begin(const ffdp_metric_spec *m, const ffdp_slab *s, int64_t ntot, const float *A,
                                  const float *B, const uint8_t *mask, float *gA, float *gB, ffdp_cuda_pending *pend) {
  const ffdp_lncc_params p = cc_params(m);
  return ffdp_cuda_lncc2_async(&p, s, A, B, mask, per_scored(ntot), gA, gB, pend, nullptr);
}

extern "C" int reg_cuda_metric(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, int64_t ntot,
                               const float *A, const float *B, const uint8_t *mask, float *g, double *loss,
                               ffdp_error *err) {
  if (m->kind == FFDP_METRIC_CC) return reg_cuda_metric2(comm, m, s, ntot, A, B, mask, nullptr, g, loss, err);
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  const double norm = per_scored(ntot);
  int rc;
  if (m->kind == FFDP_METRIC_MSE) {
    rc = ffdp_cuda_mse(s, A, B, mask, norm, g, loss, nullptr);
  } else { /* the joint histogram of the whole grid: exact fixed point, the same on any split */
    ffdp_mi_params p = {m->bins, reg_mi_parzen(), 0.0, 1.0, 0.0, 1.0};
    if (c->size == 1) return reg_cuda_agreed(c, ffdp_cuda_mi(&p, s, A, B, mask, g, loss, nullptr), err);
    const int BB = p.bins * p.bins;
    double *hist = (double *)calloc((size_t)BB, sizeof(double));
    rc = hist ? ffdp_cuda_mi_hist(&p, s, A, B, mask, hist, nullptr) : (int)cudaErrorMemoryAllocation;
    if ((rc = reg_cuda_agreed(c, rc, err))) {
      free(hist);
      return rc;
    }
    c->sum(c, hist, BB);
    rc = ffdp_cuda_mi_hist_grad(&p, s, A, B, mask, hist, g, loss, nullptr);
    free(hist);
    return reg_cuda_agreed(c, rc, err);
  }
  if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
  c->sum(c, loss, 1);
  return 0;
}

extern "C" void reg_cuda_deferred_open(reg_cuda_deferred_loss *d, int eligible) {
  d->pend = nullptr, d->stepped = nullptr;
  const char *e = getenv("FFDP_ASYNC_LOSS");
  if (!eligible || (e && !strcmp(e, "0"))) return;
  cudaEvent_t ev = nullptr;
  if (ffdp_cuda_pending_create(&d->pend) || cudaEventCreateWithFlags(&ev, cudaEventDisableTiming)) {
    ffdp_cuda_pending_destroy(d->pend), d->pend = nullptr; /* the waits as before */
    cudaGetLastError();
    return;
  }
  d->stepped = ev;
}

extern "C" int reg_cuda_deferred_wait_step(const reg_cuda_deferred_loss *d) {
  return (int)(d->pend ? cudaEventSynchronize((cudaEvent_t)d->stepped) : cudaStreamSynchronize(nullptr));
}

extern "C" int reg_cuda_deferred_after_step(reg_cuda_deferred_loss *d, int rc, double *loss) {
  if (!rc) rc = (int)cudaEventRecord((cudaEvent_t)d->stepped, nullptr);
  const int lrc = ffdp_cuda_pending_finish(d->pend, loss);
  return rc ? rc : lrc;
}

extern "C" int reg_cuda_deferred_close(reg_cuda_deferred_loss *d, int rc) {
  if (!d->pend) return rc;
  double unused;
  const int lrc = ffdp_cuda_pending_finish(d->pend, &unused);
  ffdp_cuda_pending_destroy(d->pend), cudaEventDestroy((cudaEvent_t)d->stepped);
  d->pend = nullptr, d->stepped = nullptr;
  return rc ? rc : lrc;
}
