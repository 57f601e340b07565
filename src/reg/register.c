/* The registration driver: validation, intensity normalization, moments, then each stage. */
#include "reg/reg_internal.h"
#include "ffdp/plan.h"
#include <stdio.h>
#include "core/err.h"
#include "core/comm_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ffdp_reg_result {
  ffdp_mat4 affine;
  ffdp_volume *warp, *inverse_warp;
  int64_t z0, z1; /* planes of the fixed grid the warps hold (result_shares: this rank's share) */
  int nstages;
  ffdp_stage_summary stages[FFDP_MAX_STAGES + 1];
};

ffdp_stage_spec ffdp_stage_default(ffdp_stage_kind kind) {
  ffdp_stage_spec s;
  memset(&s, 0, sizeof s);
  s.kind = kind;
  s.nlevels = 3;
  s.shrink[0] = 4, s.shrink[1] = 2, s.shrink[2] = 1;
  s.tol = 1e-6;
  s.window = 10;
  if (kind == FFDP_STAGE_GREEDY || kind == FFDP_STAGE_SYN) {
    s.metric = (ffdp_metric_spec){FFDP_METRIC_CC, 5, 32};
    s.iters[0] = 200, s.iters[1] = 100, s.iters[2] = 50;
    s.lr = 0.5;
    s.auto_levels = 1;
    s.grad_sigma = 1.5; /* chosen on the small pair: zero folding, best NCC (bench/accuracy.md) */
    s.warp_sigma = 1.5;
  } else {
    s.metric = (ffdp_metric_spec){FFDP_METRIC_MI, 5, 32};
    s.iters[0] = 200, s.iters[1] = 100, s.iters[2] = 50;
    s.lr = kind == FFDP_STAGE_RIGID ? 0.01 : 0.005;
    /* Linear stages stop at ~2 mm: finer levels cost far more and move the affine little. */
    s.level_mm[0] = 8, s.level_mm[1] = 4, s.level_mm[2] = 2;
  }
  return s;
}

ffdp_status ffdp_reg_options_preset(ffdp_reg_options *opt, const char *name, ffdp_error *err) {
  memset(opt, 0, sizeof *opt);
  opt->moments = 1;
  int n = 0;
  if (!strcmp(name, "rigid")) {
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_RIGID);
  } else if (!strcmp(name, "affine")) {
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_RIGID);
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_AFFINE);
  } else if (!strcmp(name, "greedy")) {
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_RIGID);
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_AFFINE);
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_GREEDY);
  } else if (!strcmp(name, "syn")) {
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_RIGID);
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_AFFINE);
    opt->stages[n++] = ffdp_stage_default(FFDP_STAGE_SYN);
  } else {
    return ffdp_fail(err, FFDP_ERR_INVALID, "unknown preset '%s' (rigid, affine, greedy, syn)", name);
  }
  opt->nstages = n;
  return FFDP_OK;
}

static ffdp_status check_stage(const ffdp_stage_spec *s, int i, ffdp_error *err) {
  if (s->nlevels < 1 || s->nlevels > FFDP_MAX_LEVELS)
    return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: %d levels (1..%d allowed)", i + 1, s->nlevels, FFDP_MAX_LEVELS);
  for (int l = 0; l < s->nlevels; l++) {
    if (s->shrink[l] < 1) return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: shrink factor %d at level %d", i + 1, s->shrink[l], l + 1);
    if (s->iters[l] < 0) return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: negative iteration count", i + 1);
    if (s->smooth[l] < 0) return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: negative smoothing sigma", i + 1);
  }
  if (s->metric.kind == FFDP_METRIC_CC && (s->metric.window < 1 || s->metric.window % 2 == 0 || s->metric.window > 2 * FFDP_MAX_RADIUS + 1))
    return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: CC window must be odd and 1..%d (got %d)", i + 1, 2 * FFDP_MAX_RADIUS + 1,
                     s->metric.window);
  if (s->metric.kind == FFDP_METRIC_MI && (s->metric.bins < 8 || s->metric.bins > 256))
    return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: MI bins must be 8..256 (got %d)", i + 1, s->metric.bins);
  if (!(s->lr > 0)) return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: learning rate must be positive", i + 1);
  if (s->grad_sigma < 0 || s->warp_sigma < 0) return ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: negative smoothing sigma", i + 1);
  return FFDP_OK;
}

static ffdp_status check_mask(const ffdp_volume *m, const char *what, ffdp_error *err) {
  if (!m) return FFDP_OK;
  int64_t n = ffdp_volume_nvox(m), on = 0;
  for (int64_t i = 0; i < n; i++) on += m->data[i] > 0.5f;
  if (on == 0) return ffdp_fail(err, FFDP_ERR_INVALID, "the %s mask is empty (no voxel > 0.5)", what);
  return FFDP_OK;
}

/* Refuse a GPU run that cannot fit before any work: the same plan `ffdp plan` prints. */
static ffdp_status check_fits(const ffdp_volume *F, const ffdp_volume *M, const ffdp_reg_options *opt, ffdp_error *err) {
  ffdp_plan plan;
  double free_b = 0, total_b = 0;
  ffdp_status st = ffdp_reg_plan(ffdp_volume_dim(F), ffdp_volume_vox2world(F), ffdp_volume_dim(M), ffdp_volume_vox2world(M),
                                 opt, &plan, err);
  if (st || (st = ffdp_cuda_memory(&free_b, &total_b, err))) return st;
  if (plan.peak_bytes <= free_b) return FFDP_OK;
  const ffdp_plan_row *r = &plan.rows[plan.peak_row];
  /* what the leaner choices would need: bf16 moments, coarse moments, 16-bit images, all three */
  char hint[400] = "";
  static const struct {
    ffdp_state_precision p;
    ffdp_state_resolution r;
    ffdp_image_precision i;
    const char *flag;
  } lean[4] = {{FFDP_STATE_BF16, FFDP_STATE_FULL, FFDP_IMAGE_F32, "--state-precision bf16"},
               {FFDP_STATE_F32, FFDP_STATE_HALF, FFDP_IMAGE_F32, "--state-resolution half"},
               {FFDP_STATE_F32, FFDP_STATE_HALF, FFDP_IMAGE_U16, "that and --image-precision u16"},
               {FFDP_STATE_BF16, FFDP_STATE_HALF, FFDP_IMAGE_U16, "all three"}};
  for (int k = 0; k < 4; k++) {
    ffdp_reg_options o = *opt;
    ffdp_plan p2;
    if (lean[k].p == opt->state_precision && lean[k].r == opt->state_resolution && lean[k].i == opt->image_precision) continue;
    if (lean[k].p < opt->state_precision || lean[k].r < opt->state_resolution || lean[k].i < opt->image_precision)
      continue; /* not leaner */
    o.state_precision = lean[k].p, o.state_resolution = lean[k].r, o.image_precision = lean[k].i;
    if (!ffdp_reg_plan(ffdp_volume_dim(F), ffdp_volume_vox2world(F), ffdp_volume_dim(M), ffdp_volume_vox2world(M), &o,
                       &p2, NULL))
      snprintf(hint + strlen(hint), sizeof hint - strlen(hint), "%s (needs %.2f GB), ", lean[k].flag,
               p2.peak_bytes / 1e9);
  }
  return ffdp_fail(err, FFDP_ERR_NOMEM,
                   "this registration needs %.2f GB on the GPU (stage %d, %s %lldx%lldx%lld) but %.2f GB of %.2f GB are "
                   "free; try %sa coarser finest level, or --device cpu ('ffdp plan' prints every buffer)",
                   plan.peak_bytes / 1e9, r->stage + 1, r->level < 0 ? "final composition" : "level",
                   (long long)r->dim[0], (long long)r->dim[1], (long long)r->dim[2], free_b / 1e9, total_b / 1e9, hint);
}

ffdp_status ffdp_register(const ffdp_volume *fixed, const ffdp_volume *moving, const ffdp_reg_options *opt,
                          ffdp_reg_result **out, ffdp_error *err) {
  *out = NULL;
  if (fixed->ncomp != 1 || moving->ncomp != 1) return ffdp_fail(err, FFDP_ERR_INVALID, "images must be scalar");
  if (opt->nstages < 0 || opt->nstages > FFDP_MAX_STAGES)
    return ffdp_fail(err, FFDP_ERR_INVALID, "%d stages (at most %d)", opt->nstages, FFDP_MAX_STAGES);
  ffdp_status st;
  for (int i = 0; i < opt->nstages; i++)
    if ((st = check_stage(&opt->stages[i], i, err))) return st;
  if ((st = check_mask(opt->fixed_mask, "fixed", err)) || (st = check_mask(opt->moving_mask, "moving", err))) return st;
#ifndef FFDP_HAVE_CUDA
  if (opt->device == 1) return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "this build of ffdp has no CUDA backend; use --device cpu");
#else
  if (opt->device == 1 && reg_cuda_device_count() < 1)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "no CUDA device is available; use --device cpu");
#endif
  if ((unsigned)opt->state_precision > FFDP_STATE_BF16)
    return ffdp_fail(err, FFDP_ERR_INVALID, "unknown optimiser state precision %d", (int)opt->state_precision);
  if ((unsigned)opt->state_resolution > FFDP_STATE_HALF)
    return ffdp_fail(err, FFDP_ERR_INVALID, "unknown optimiser state resolution %d", (int)opt->state_resolution);
  if ((unsigned)opt->image_precision > FFDP_IMAGE_U16)
    return ffdp_fail(err, FFDP_ERR_INVALID, "unknown image precision %d", (int)opt->image_precision);
  if ((unsigned)opt->image_exchange > FFDP_EXCHANGE_LOCAL)
    return ffdp_fail(err, FFDP_ERR_INVALID, "unknown image exchange %d", (int)opt->image_exchange);
  if (opt->image_exchange == FFDP_EXCHANGE_RING && opt->device == 1)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED,
                     "the ring image exchange runs on the CPU stages only; use window (or local) with --device cuda");
  const double tsel = reg_now();
#ifdef FFDP_HAVE_CUDA
  if (opt->device == 1 && (st = reg_cuda_select(opt->comm, err))) return st;
#endif
  /* the one-GPU plan: with ranks it over-counts (slabs are smaller), never under */
  if (opt->device == 1 && (st = ffdp_comm_agree(opt->comm, check_fits(fixed, moving, opt, err), err))) return st;
  reg_trace("device selection and memory plan: %.1f ms", 1e3 * (reg_now() - tsel));
  ffdp_volume *F = NULL, *M = NULL; /* normalized copies (NULL: the inputs already are) */
  const double tn = reg_now();
  const ffdp_comm *shared = opt->sharded_inputs && ffdp_comm_size(opt->comm) > 1 ? opt->comm : NULL;
  const double *q = opt->winsorize[0] == 0 && opt->winsorize[1] == 0 ? NULL : opt->winsorize; /* {0, 0}: unset */
  if (!opt->inputs_normalized &&
      (st = ffdp_comm_agree(opt->comm, (st = reg_normalized_copy(fixed, shared, q, "fixed", &F, err)) ? st : reg_normalized_copy(moving, shared, q, "moving", &M, err), err))) {
    ffdp_volume_free(M);
    ffdp_volume_free(F);
    return st;
  }
  if (!opt->inputs_normalized && opt->histogram_match &&
      (st = ffdp_comm_agree(opt->comm, ffdp_volume_match_histogram(M, F, shared, err), err))) {
    ffdp_volume_free(M);
    ffdp_volume_free(F);
    return st;
  }
  reg_trace("intensity normalization: %.1f ms", 1e3 * (reg_now() - tn));
  const ffdp_volume *Fn = F ? F : fixed, *Mn = M ? M : moving;
  ffdp_reg_result *r = calloc(1, sizeof *r);
  r->affine = ffdp_mat4_identity();
  double t0 = reg_now();
  reg_pyramid pyr;
  reg_pyramid_init(&pyr, Fn, Mn, opt->device, opt->comm, shared != NULL);
  if (opt->moments && (st = reg_moments_init(&pyr, &r->affine, err))) goto fail;
  reg_trace("moments: %.1f ms", 1e3 * (reg_now() - t0));
  const double tov = reg_now();
  {
    double ov = reg_overlap(Fn, Mn, r->affine); /* refuse hopeless starts before spending time */
    if (ov < 0.01) {
      st = ffdp_fail(err, FFDP_ERR_INVALID,
                     "fixed and moving images do not overlap in world space after initialisation (%.2f%% of fixed voxels "
                     "map inside the moving image); check their headers",
                     100 * ov);
      goto fail;
    }
  }
  reg_trace("overlap check: %.1f ms", 1e3 * (reg_now() - tov));
  ffdp_reg_options o; /* resolve physical-size levels against the fixed image */
  double sp[3];
  ffdp_volume_spacing(fixed, sp);
  reg_resolve_levels(opt, sp, &o);
  opt = &o;
  if (opt->image_precision == FFDP_IMAGE_U16) { /* the codes span each image's range */
    int deformable = 0;
    for (int i = 0; i < opt->nstages; i++)
      deformable |= opt->stages[i].kind == FFDP_STAGE_GREEDY || opt->stages[i].kind == FFDP_STAGE_SYN;
    if (deformable && (st = ffdp_comm_agree(opt->comm, reg_pyramid_codes(&pyr, err), err))) goto fail;
  }
  for (int i = 0; i < opt->nstages; i++) {
    const ffdp_stage_spec *s = &opt->stages[i];
    if (s->kind == FFDP_STAGE_SYN && r->warp)
      st = ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: SyN must be the first deformable stage", i + 1);
    else if (s->kind == FFDP_STAGE_SYN) {
#ifdef FFDP_HAVE_CUDA
      if (opt->device == 1)
        st = reg_syn_stage_cuda(&pyr, opt, i, r->affine, &r->warp, &r->inverse_warp, &r->stages[i], t0, err);
      else
#endif
        st = reg_syn_stage(&pyr, opt, i, r->affine, &r->warp, &r->inverse_warp, &r->stages[i], t0, err);
    }
    else if (s->kind == FFDP_STAGE_GREEDY) {
#ifdef FFDP_HAVE_CUDA
      if (opt->device == 1) st = reg_greedy_stage_cuda(&pyr, opt, i, r->affine, &r->warp, &r->stages[i], t0, err);
      else
#endif
        st = reg_greedy_stage(&pyr, opt, i, r->affine, &r->warp, &r->stages[i], t0, err);
      ffdp_volume_free(r->inverse_warp); /* a later greedy stage invalidates the SyN inverse */
      r->inverse_warp = NULL;
    } else if (r->warp)
      st = ffdp_fail(err, FFDP_ERR_INVALID, "stage %d: a linear stage cannot follow a deformable one", i + 1);
    else
      st = reg_linear_stage(&pyr, opt, i, &r->affine, &r->stages[i], t0, err);
    if (st) goto fail;
    r->nstages = i + 1;
    reg_trace("stage %d done at %.1f ms (%.1f ms in the stage)", i + 1, 1e3 * (reg_now() - t0), 1e3 * r->stages[i].seconds);
  }
  r->z0 = 0, r->z1 = fixed->dim[2];
  if (r->warp && reg_result_shares(opt, opt->nstages - 1, opt->comm)) ffdp_comm_share(opt->comm, fixed->dim[2], &r->z0, &r->z1);
  const double tf = reg_now();
  reg_pyramid_free(&pyr);
  ffdp_volume_free(F), ffdp_volume_free(M);
  reg_trace("stages done; pyramid freed in %.1f ms", 1e3 * (reg_now() - tf));
  *out = r;
  return FFDP_OK;
fail:
  reg_pyramid_free(&pyr);
  ffdp_volume_free(F), ffdp_volume_free(M);
  ffdp_reg_result_free(r);
  return st;
}

void ffdp_reg_result_free(ffdp_reg_result *r) {
  if (!r) return;
  ffdp_volume_free(r->warp);
  ffdp_volume_free(r->inverse_warp);
  free(r);
}
ffdp_mat4 ffdp_reg_result_affine(const ffdp_reg_result *r) { return r->affine; }
const ffdp_volume *ffdp_reg_result_warp(const ffdp_reg_result *r) { return r->warp; }
const ffdp_volume *ffdp_reg_result_inverse_warp(const ffdp_reg_result *r) { return r->inverse_warp; }
int ffdp_reg_result_nstages(const ffdp_reg_result *r) { return r->nstages; }
void ffdp_reg_result_planes(const ffdp_reg_result *r, int64_t *z0, int64_t *z1) { *z0 = r->z0, *z1 = r->z1; }
ffdp_stage_summary ffdp_reg_result_stage(const ffdp_reg_result *r, int i) { return r->stages[i]; }
