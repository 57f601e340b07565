/* Device-memory planner: walks the stages and levels exactly as the driver will, sizing each
 * level's buffers with the layouts the CUDA stages allocate (dev_layout.c). */
#include "ffdp/plan.h"
#include "core/err.h"
#include "reg/dev_layout.h"
#include "reg/reg_internal.h"
#include <math.h>
#include <string.h>

/* Micro-scale voxels: a deformation of a few mm spans tens of voxels, beyond what three levels
 * capture (measured on a 1008^3 pair at 0.15 mm: label Dice 0.79 with 4x2x1, 0.89 with
 * 16x8x4x2x1). K + 1 levels, the coarsest near 2.4 mm; K = 2 (the clinical 4x2x1) down to
 * ~0.8 mm voxels, so clinical runs are unchanged. */
static void deepen(ffdp_stage_spec *S, double h) {
  int K = (int)floor(log2(2.4 / h) + 0.5);
  if (K <= 2) return;
  if (K > FFDP_MAX_LEVELS - 2) K = FFDP_MAX_LEVELS - 2;
  S->nlevels = K + 1;
  for (int l = 0; l <= K; l++) {
    S->shrink[l] = 1 << (K - l), S->smooth[l] = 0;
    S->iters[l] = l == K ? 20 : l == K - 1 ? 50 : l == K - 2 ? 100 : 200; /* the finest levels cost most */
  }
}

void reg_resolve_levels(const ffdp_reg_options *in, const double spacing[3], ffdp_reg_options *out) {
  *out = *in;
  const double h = fmin(spacing[0], fmin(spacing[1], spacing[2]));
  for (int i = 0; i < out->nstages; i++)
    if (out->stages[i].auto_levels && (out->stages[i].kind == FFDP_STAGE_GREEDY || out->stages[i].kind == FFDP_STAGE_SYN))
      deepen(&out->stages[i], h);
  for (int i = 0; i < out->nstages; i++)
    for (int l = 0; l < out->stages[i].nlevels && out->stages[i].level_mm[0] > 0; l++) {
      int f = (int)floor(out->stages[i].level_mm[l] / h + 0.5);
      out->stages[i].shrink[l] = f < 1 ? 1 : f;
    }
}

static int64_t nvox(const int64_t d[3]) { return d[0] * d[1] * d[2]; }

/* The options' physical-size levels resolved against a fixed grid's spacing (column norms). */
static void resolve_for_grid(const ffdp_reg_options *opt, ffdp_mat4 w, ffdp_reg_options *out) {
  double sp[3];
  for (int a = 0; a < 3; a++) sp[a] = sqrt(w.m[0][a] * w.m[0][a] + w.m[1][a] * w.m[1][a] + w.m[2][a] * w.m[2][a]);
  reg_resolve_levels(opt, sp, out);
}

/* Ranks a level runs on and the most planes one of them stores, as the stages split it:
 * deformable levels thinner than ranks x halo gather onto fewer ranks, linear ones never
 * exchange halos and use every rank. */
static int64_t window_estimate(int64_t nvox_img, int64_t nz_img, int64_t planes, int64_t nz_fixed) {
  const int64_t w = (int64_t)ceil((double)nz_img * planes / nz_fixed * 1.25) + 8;
  return w < nz_img ? nvox_img / nz_img * w : nvox_img;
}

static int64_t busiest_planes(int64_t nz, int ranks, int64_t halo, int deformable, int *nact) {
  *nact = ranks > 1 && deformable ? reg_level_ranks(ranks, nz, halo) : ranks;
  int64_t most = 0;
  for (int r = 0; r < *nact; r++) {
    ffdp_slab s = *nact > 1 ? ffdp_slab_split(1, 1, nz, r, *nact, halo) : ffdp_slab_whole(1, 1, nz);
    most = s.zhi - s.zlo > most ? s.zhi - s.zlo : most;
  }
  return most;
}

/* Values of each Adam moment buffer on the busiest rank (reg_moment_values). */
static int64_t busiest_moments(const int64_t fd[3], int nact, int64_t halo, int coarse) {
  int64_t most = 0;
  for (int r = 0; r < nact; r++) {
    const ffdp_slab s = nact > 1 ? ffdp_slab_split(fd[0], fd[1], fd[2], r, nact, halo) : ffdp_slab_whole(fd[0], fd[1], fd[2]);
    const int64_t v = reg_moment_values(&s, coarse);
    most = v > most ? v : most;
  }
  return most;
}

static void add_row(ffdp_plan *p, int stage, int level, ffdp_stage_kind kind, const int64_t dim[3], int64_t nm,
                    int ranks, int64_t planes, const reg_layout *L) {
  ffdp_plan_row *r = &p->rows[p->nrows++];
  memset(r, 0, sizeof *r);
  r->stage = stage, r->level = level, r->kind = kind, r->moving_voxels = nm, r->ranks = ranks, r->planes = planes;
  memcpy(r->dim, dim, sizeof r->dim);
  r->nbuf = 0;
  for (int b = 0; b < L->n; b++) /* a buffer a layout leaves empty (a shared gradient) is not listed */
    if (L->bytes[b] > 0) r->buf_name[r->nbuf] = L->name[b], r->buf_bytes[r->nbuf++] = (double)L->bytes[b];
  r->scratch_bytes = (double)REG_OP_SCRATCH_BYTES;
  r->spare_bytes = L->spare >= 0 ? (double)L->bytes[L->spare] : 0;
  r->bytes = (double)L->total + r->scratch_bytes;
  if (r->bytes > p->peak_bytes) p->peak_bytes = r->bytes, p->peak_row = p->nrows - 1;
}

ffdp_status ffdp_reg_plan(const int64_t fixed_dim[3], ffdp_mat4 fixed_vox2world, const int64_t moving_dim[3],
                          ffdp_mat4 moving_vox2world, const ffdp_reg_options *opt, ffdp_plan *plan, ffdp_error *err) {
  return ffdp_reg_plan_gpus(fixed_dim, fixed_vox2world, moving_dim, moving_vox2world, opt, ffdp_comm_size(opt->comm), plan,
                            err);
}

ffdp_status ffdp_reg_plan_gpus(const int64_t fixed_dim[3], ffdp_mat4 fixed_vox2world, const int64_t moving_dim[3],
                               ffdp_mat4 moving_vox2world, const ffdp_reg_options *opt, int gpus, ffdp_plan *plan,
                               ffdp_error *err) {
  memset(plan, 0, sizeof *plan);
  if (gpus < 1 || gpus > 4096) return ffdp_fail(err, FFDP_ERR_INVALID, "%d GPUs (1..4096)", gpus);
  plan->gpus = gpus;
  if (opt->nstages < 0 || opt->nstages > FFDP_MAX_STAGES)
    return ffdp_fail(err, FFDP_ERR_INVALID, "%d stages (at most %d)", opt->nstages, FFDP_MAX_STAGES);
  for (int a = 0; a < 3; a++)
    if (fixed_dim[a] < 1 || moving_dim[a] < 1) return ffdp_fail(err, FFDP_ERR_INVALID, "image dimensions must be positive");
  ffdp_reg_options o;
  resolve_for_grid(opt, fixed_vox2world, &o);
  const int bf16 = o.state_precision == FFDP_STATE_BF16, coarse = o.state_resolution == FFDP_STATE_HALF;
  const int masks = (opt->fixed_mask ? REG_HAS_FIXED_MASK : 0) | (opt->moving_mask ? REG_HAS_MOVING_MASK : 0) |
                    (o.image_precision == FFDP_IMAGE_U16 ? REG_CODED_IMAGES : 0); /* deformable layouts only */
  for (int i = 0; i < o.nstages; i++) {
    const ffdp_stage_spec *S = &o.stages[i];
    if (S->nlevels < 1 || S->nlevels > FFDP_MAX_LEVELS)
      return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: %d levels (1..%d allowed)", i + 1, S->nlevels, FFDP_MAX_LEVELS);
    for (int l = 0; l < S->nlevels; l++) {
      const int k = S->shrink[l] < 1 ? 1 : S->shrink[l], f[3] = {k, k, k};
      int64_t fd[3] = {fixed_dim[0], fixed_dim[1], fixed_dim[2]}, md[3] = {moving_dim[0], moving_dim[1], moving_dim[2]};
      ffdp_mat4 wo;
      if (f[0] > 1) {
        ffdp_shrink_grid(fixed_dim, fixed_vox2world, f, fd, &wo);
        ffdp_shrink_grid(moving_dim, moving_vox2world, f, md, &wo);
      }
      reg_layout L;
      const int64_t nf = nvox(fd), nm = nvox(md);
      /* each rank stores its slab (with halos) of the level's fields; the images it samples whole */
      const int deformable = S->kind == FFDP_STAGE_GREEDY || S->kind == FFDP_STAGE_SYN;
      int64_t halo = 0;
      if (deformable) halo = reg_deformable_halo(S, coarse);
      else if (S->metric.kind == FFDP_METRIC_CC) {
        ffdp_lncc_params p = {S->metric.window, FFDP_WINDOW_BOX, 1e-5};
        halo = ffdp_lncc_halo(&p);
      }
      int nact;
      const int64_t planes = busiest_planes(fd[2], gpus, halo, deformable, &nact), n = fd[0] * fd[1] * planes;
      const int64_t owned = nact > 1 ? (fd[2] + nact - 1) / nact : fd[2];
      /* deformable ranks hold windows of the images they sample (window_cuda.h), sized at run
       * time from the warp; estimated here as their share of the planes, a quarter more for
       * the reach and the fetch margin, and eight planes */
      const int64_t wm = nact > 1 ? window_estimate(nm, md[2], planes, fd[2]) : nm;
      const int64_t wf = nact > 1 ? window_estimate(nf, fd[2], planes, fd[2]) : nf;
      const int64_t ring = reg_step_ring_floats(fd[0], fd[1], planes, S->grad_sigma);
      const int64_t nmom = deformable ? busiest_moments(fd, nact, halo, coarse) : 0;
      if (S->kind == FFDP_STAGE_GREEDY) reg_layout_greedy(n, wm, bf16, nmom, coarse, masks, nm, ring, &L);
      else if (S->kind == FFDP_STAGE_SYN) reg_layout_syn(n, wf, wm, bf16, nmom, coarse, masks, nm, ring, &L);
      else reg_layout_linear(n, owned, nm, masks, &L);
      if (deformable) reg_layout_spare(&L, fd[0], fd[1], nact, n, S->grad_sigma, o.device_budget);
      add_row(plan, i, l, S->kind, fd, nm, nact, planes, &L);
    }
    /* one GPU composes SyN's transforms in the last level's memory when that level is the full
     * grid; a coarser last level needs a full-grid block of its own, and ranks a block for
     * their planes with the halo the fields reach (known at run time: estimated as 1/16 of
     * the grid) */
    if (S->kind == FFDP_STAGE_SYN && (S->shrink[S->nlevels - 1] > 1 || gpus > 1)) {
      reg_layout L;
      int64_t planes = fixed_dim[2];
      if (gpus > 1) {
        const int64_t h = fixed_dim[2] / 16 + 2, p = (fixed_dim[2] + gpus - 1) / gpus + 2 * h;
        planes = p < planes ? p : planes;
      }
      reg_layout_syn_final(fixed_dim[0] * fixed_dim[1] * planes, coarse, &L);
      add_row(plan, i, -1, S->kind, fixed_dim, 0, gpus, planes, &L);
    }
  }
  plan->bytes_per_voxel = plan->peak_bytes / (double)nvox(fixed_dim);
  return FFDP_OK;
}

double ffdp_reg_host_floor(const int64_t fixed_dim[3], ffdp_mat4 fixed_vox2world, const int64_t moving_dim[3],
                           ffdp_mat4 moving_vox2world, const ffdp_reg_options *opt, int ranks, int sharded) {
  (void)moving_vox2world; /* the moving image counts by its voxels alone */
  if (ranks < 1) ranks = 1;
  ffdp_reg_options o;
  resolve_for_grid(opt, fixed_vox2world, &o);
  /* the images at full resolution: each rank's share of both (sharded inputs) or both whole */
  const double nf = (double)nvox(fixed_dim), nm = (double)nvox(moving_dim);
  double images = 4.0 * (sharded && ranks > 1 ? (nf + nm) / ranks : nf + nm);
  if (o.image_precision == FFDP_IMAGE_U16) images *= 2; /* the CPU stages read decoded copies of a level's */
  const double moments = o.state_precision == FFDP_STATE_BF16 ? 2.0 : 4.0;
  double level = 0;
  for (int i = 0; i < o.nstages; i++) {
    const ffdp_stage_spec *S = &o.stages[i];
    if (S->kind != FFDP_STAGE_GREEDY && S->kind != FFDP_STAGE_SYN) continue;
    /* per stored voxel of a level (greedy.c, syn.c): greedy 9 floats and one field's moments,
     * SyN 13 floats and two fields' */
    const int coarse = o.state_resolution == FFDP_STATE_HALF;
    const int64_t halo = reg_deformable_halo(S, coarse);
    for (int l = 0; l < S->nlevels && l < FFDP_MAX_LEVELS; l++) {
      const int k = S->shrink[l] < 1 ? 1 : S->shrink[l], f[3] = {k, k, k};
      int64_t fd[3] = {fixed_dim[0], fixed_dim[1], fixed_dim[2]};
      ffdp_mat4 wo;
      if (k > 1) ffdp_shrink_grid(fixed_dim, fixed_vox2world, f, fd, &wo);
      const int nact = ranks > 1 ? reg_level_ranks(ranks, fd[2], halo) : 1;
      const int64_t own = (fd[2] + nact - 1) / nact; /* halos not counted */
      const double owned = (double)own * (double)(fd[0] * fd[1]);
      const ffdp_slab sl = {fd[0], fd[1], fd[2], 0, own, 0, own};
      const double nv = (double)reg_moment_values(&sl, coarse), mom = nv * 2 * moments; /* m and v of a field */
      const double transient = coarse ? nv * 4 : 0; /* the coarse step's, shared by the fields */
      level = fmax(level, (S->kind == FFDP_STAGE_GREEDY ? owned * 36 + mom : owned * 52 + 2 * mom) + transient);
    }
    /* SyN's final composition (syn.c): v_f and v_m (then A^-1·v_m) whole on the fixed grid, the
     * inverse being built and u (their shares on ranks); with moments on the coarse grid it can
     * pass the largest level */
    if (S->kind == FFDP_STAGE_SYN) level = fmax(level, nf * 24 + nf * 24 / ranks);
  }
  return images + level;
}

ffdp_status ffdp_reg_plan_fit(const int64_t fixed_dim[3], ffdp_mat4 fixed_vox2world, const int64_t moving_dim[3],
                              ffdp_mat4 moving_vox2world, ffdp_reg_options *opt, int gpus, double free_bytes,
                              ffdp_plan *plan, int *step, ffdp_error *err) {
  *step = -1;
  ffdp_reg_options o = *opt;
  for (int k = 0; k <= 3; k++) {
    if (k >= 1) o.state_resolution = FFDP_STATE_HALF;
    if (k >= 2) o.image_precision = FFDP_IMAGE_U16;
    if (k >= 3) o.state_precision = FFDP_STATE_BF16;
    ffdp_status st = ffdp_reg_plan_gpus(fixed_dim, fixed_vox2world, moving_dim, moving_vox2world, &o, gpus, plan, err);
    if (st) return st;
    *opt = o;
    if (plan->peak_bytes <= free_bytes) {
      *step = k;
      return FFDP_OK;
    }
  }
  return FFDP_OK;
}
