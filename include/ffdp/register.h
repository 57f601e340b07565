/* Registration: moments -> rigid -> affine -> greedy or SyN (deformable), multi-scale, with
 * MSE, LNCC or Mattes MI per stage, on the CPU (OpenMP) or a CUDA device. The transform maps fixed world points x (RAS mm) to moving
 * world points: phi(x) = A·x + t + u(x), u a displacement field on the fixed grid in mm. */
#ifndef FFDP_REGISTER_H
#define FFDP_REGISTER_H
#include "ffdp/comm.h"
#include "ffdp/error.h"
#include "ffdp/volume.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef enum { FFDP_METRIC_MSE = 0, FFDP_METRIC_CC = 1, FFDP_METRIC_MI = 2 } ffdp_metric_kind;

typedef struct ffdp_metric_spec {
  ffdp_metric_kind kind;
  int window; /* CC: odd window size in voxels (ANTs radius r is window 2r+1) */
  int bins;   /* MI: histogram bins */
} ffdp_metric_spec;

typedef enum { FFDP_STAGE_RIGID = 0, FFDP_STAGE_AFFINE = 1, FFDP_STAGE_GREEDY = 2, FFDP_STAGE_SYN = 3 } ffdp_stage_kind;

#define FFDP_MAX_LEVELS 8
#define FFDP_MAX_STAGES 8

typedef struct ffdp_stage_spec {
  ffdp_stage_kind kind;
  ffdp_metric_spec metric;
  int nlevels;
  int shrink[FFDP_MAX_LEVELS];   /* integer shrink factor per level, coarse to fine */
  double smooth[FFDP_MAX_LEVELS];/* Gaussian sigma in full-resolution voxels, applied before
                                    shrinking (as ANTs' smoothing sigmas) */
  int iters[FFDP_MAX_LEVELS];
  double tol;                    /* convergence: relative loss slope over `window` iterations */
  int window;
  double lr;                     /* linear: Adam step (rad / relative units); deformable: voxels */
  double grad_sigma, warp_sigma; /* deformable: smoothing of the update and of the warp (voxels) */
  double level_mm[FFDP_MAX_LEVELS]; /* if level_mm[0] > 0: shrink factors are derived from the
                                       fixed image so level l has about level_mm[l] mm voxels */
  int auto_levels;               /* deformable stages from ffdp_stage_default: below ~1 mm voxels the
                                    pyramid deepens (shrink 2^K..1 with the coarsest level near
                                    2.4 mm, e.g. 16x8x4x2x1 at 0.15 mm); clear it to use shrink
                                    and iters exactly as given */
} ffdp_stage_spec;

/* How the deformable stages store their Adam moments; arithmetic is fp32 either way. bf16
 * halves the optimiser state (the largest part of a SyN level), CUDA device only. */
typedef enum { FFDP_STATE_F32 = 0, FFDP_STATE_BF16 = 1 } ffdp_state_precision;
/* Where the deformable stages keep their Adam moments: on every voxel (FULL), or on every
 * second voxel per axis (HALF: 1/8 of the state; each voxel's step is the mean direction of
 * the coarse points around it; accuracy cost in bench/accuracy.md). */
typedef enum { FFDP_STATE_FULL = 0, FFDP_STATE_HALF = 1 } ffdp_state_resolution;
/* How the deformable stages store the level images they sample and score: fp32, or 16-bit
 * codes over each image's intensity range (65536 levels: steps of 1.5e-5 on the pipeline's
 * [0, 1] images), which the samplers decode as they read. On a GPU the images take 2 B per
 * voxel instead of 4; the CPU reads a decoded copy (the same values, no memory saved). The
 * linear stages keep fp32. Accuracy cost in bench/accuracy.md. */
typedef enum { FFDP_IMAGE_F32 = 0, FFDP_IMAGE_U16 = 1 } ffdp_image_precision;

/* How ranks read the moving image (and, for SyN, the fixed image) at their sample points,
 * which can lie in other ranks' planes. Each rank holds its own planes of the level image and
 * either fetches the planes its points can reach from the ranks that hold them (WINDOW: bytes
 * scale with the slab's surface and the warp's reach; refetched only when the reach outgrows
 * the window), or lets every rank's planes visit it once per iteration and adds the partial
 * trilinear sums (RING: the baseline of the literature, bytes scale with the volume). LOCAL
 * reads the rank's own copy of the whole level image (no exchange). All three give the same
 * bits. One rank: nothing to exchange. */
typedef enum { FFDP_EXCHANGE_WINDOW = 0, FFDP_EXCHANGE_RING = 1, FFDP_EXCHANGE_LOCAL = 2 } ffdp_image_exchange;

/* Called once per iteration and at the end of each level. */
typedef struct ffdp_progress {
  int stage, nstages, level, nlevels, iter, max_iters;
  ffdp_stage_kind kind;
  double loss, elapsed_s, level_elapsed_s;
  int64_t level_voxels;
  int level_done, converged;
} ffdp_progress;

typedef struct ffdp_reg_options {
  int moments;                   /* centre of mass + principal axes initialisation */
  int nstages;
  ffdp_stage_spec stages[FFDP_MAX_STAGES];
  const ffdp_volume *fixed_mask; /* optional, on the fixed grid; non-zero = use */
  const ffdp_volume *moving_mask;/* optional, on the moving grid */
  int device;                    /* 0: CPU (OpenMP); 1: CUDA: one process uses
                                    device 0, ranks take their host's devices in turn */
  ffdp_state_precision state_precision; /* storage of the deformable optimiser state (Adam moments;
                                    bf16: 12 B per voxel and field less, CPU and CUDA) */
  ffdp_state_resolution state_resolution; /* HALF: the moments on a grid of half the resolution
                                    (21 of 24 B per voxel and field less in fp32) */
  ffdp_image_precision image_precision; /* deformable stages' level images: fp32 or 16-bit codes */
  int inputs_normalized;         /* fixed and moving were scaled to [0,1] by ffdp_volume_normalize:
                                    used as they are, without the normalized copies (8 bytes per
                                    voxel of host memory less; the same registration) */
  int result_on_root;            /* ranks: only rank 0 receives the final warps (the others'
                                    result has none), sparing each other rank the whole fields
                                    (12 B/voxel each) when rank 0 alone writes them */
  int result_shares;             /* ranks: each rank receives only its share of the final warps'
                                    planes (ffdp_comm_share of the fixed grid): volumes on the
                                    whole fixed grid whose other planes are zero and, never
                                    written, take no memory (as ffdp_volume_load_share gives);
                                    ffdp_reg_result_planes says which. No rank holds a whole
                                    field: what ranks writing their own planes of the outputs
                                    use. Overrides result_on_root. */
  ffdp_image_exchange image_exchange; /* ranks: how sampled images cross ranks (CPU stages and
                                    CUDA windows; the CUDA stages have no ring) */
  int sharded_inputs;            /* ranks: each rank's fixed and moving hold valid voxels only on
                                    its share of planes (ffdp_comm_share; ffdp_volume_load_share
                                    reads them so: other planes cost no memory). Pyramid levels are
                                    built from shares, planes travel from the ranks that hold them,
                                    and the result is the same as with whole images; the other
                                    planes of the inputs may be filled in on the way. */
  double winsorize[2];           /* lower and upper intensity quantiles (antsRegistration's
                                    --winsorize-image-intensities, e.g. 0.005 and 0.995): each
                                    image is scaled from these instead of its min and max and
                                    clipped to [0,1]; {0, 0} or {0, 1}: min and max */
  int histogram_match;           /* match the moving image's histogram to the fixed one's after
                                    scaling (antsRegistration's --use-histogram-matching 1; with
                                    inputs_normalized the caller does it: ffdp_volume_match_histogram) */
  double device_budget;          /* CUDA: device bytes this registration may use (what the caller
                                    found free, or allows); 0: only what its plan needs. With a
                                    budget, one-process deformable levels on large planes (from
                                    2^17 voxels a plane) keep the smoothed gradient in a field of
                                    their own where it fits (12 B per voxel more; the same result,
                                    a faster step). ffdp_reg_plan counts it the same way. */
  const ffdp_comm *comm;         /* ranks sharing this registration (NULL: this process alone);
                                    every rank passes the same images and options */
  void (*progress)(void *ctx, const ffdp_progress *p);
  void *progress_ctx;
} ffdp_reg_options;

typedef struct ffdp_stage_summary {
  ffdp_stage_kind kind;
  double seconds;
  double final_loss;
  int iterations;
  double device_peak_bytes; /* CUDA stages: peak device memory the stage used (cudaMemGetInfo), else 0 */
  double window_bytes;      /* CUDA ranks: bytes of the sampled images' windows this rank fetched */
  double exchange_bytes;    /* ranks: image bytes this rank received from other ranks (windows or ring) */
  double exchange_seconds;  /* ranks: wall time of those exchanges */
} ffdp_stage_summary;

typedef struct ffdp_reg_result ffdp_reg_result;

/* Presets: "rigid", "affine", "greedy" (rigid+affine+greedy), "syn" (rigid+affine+SyN). */
ffdp_status ffdp_reg_options_preset(ffdp_reg_options *opt, const char *name, ffdp_error *err);
ffdp_stage_spec ffdp_stage_default(ffdp_stage_kind kind);

/* Number of CUDA devices this build can use (0 in a build without the CUDA backend). */
int ffdp_cuda_device_count(void);
/* Start the runtime of `device` (1 = CUDA) now so that the first stage does not pay for it;
 * may run in another thread while images load. Nothing to do for the CPU (0). With ranks
 * (comm), each starts the GPU it will compute on: local rank modulo the host's GPU count. */
ffdp_status ffdp_device_warmup(int device, const ffdp_comm *comm, ffdp_error *err);

/* Scale a scalar image to [0,1] in place, as ffdp_register does to copies of its inputs
 * (intensity x becomes (x - lo) / (hi - lo)); *lo and *hi (either may be NULL) receive the
 * range. A constant image or one with NaN/Inf voxels is an error naming `what`. */
ffdp_status ffdp_volume_normalize(ffdp_volume *v, const char *what, double *lo, double *hi, ffdp_error *err);
/* The same for a rank's share of an image (sharded inputs): the range of every rank's share,
 * this rank's planes scaled. Collective over comm. */
ffdp_status ffdp_volume_normalize_share(ffdp_volume *v, const ffdp_comm *comm, const char *what, double *lo, double *hi,
                                        ffdp_error *err);
/* The same from the intensity quantiles q[0] and q[1] (0 <= q[0] < q[1] <= 1; {0, 1} is
 * min and max) with values outside clipped to [0,1]: ANTs' winsorizing. Quantiles come from a
 * 4096-bin histogram of every rank's share (comm; NULL: this process), interpolated within the
 * bin, so every rank agrees and N ranks give one process's bits. */
ffdp_status ffdp_volume_normalize_quantiles(ffdp_volume *v, const ffdp_comm *comm, const double q[2], const char *what,
                                            double *lo, double *hi, ffdp_error *err);

/* Collective for shares (comm; NULL: the whole of v): the smallest and largest finite
 * intensity of every rank's share of v. An image with NaN/Inf voxels is an error naming what. */
ffdp_status ffdp_volume_intensity_range(const ffdp_volume *v, const ffdp_comm *comm, const char *what, double *lo,
                                        double *hi, ffdp_error *err);
/* Scale planes [z0, z1) of v in place from [lo, hi] to [0, 1] with the float arithmetic of
 * ffdp_volume_normalize (no clipping): a block of planes scaled as the whole image would be. */
void ffdp_volume_scale_planes(ffdp_volume *v, int64_t z0, int64_t z1, double lo, double hi);

/* Histogram matching in place, as ITK's filter in antsRegistration: 12 match points at the
 * quantiles of each image's voxels above its mean, plus the mean and the maximum, moving mapped
 * piecewise linearly onto fixed. comm: the images are rank shares (sharded), every statistic
 * summed over them; NULL otherwise. */
ffdp_status ffdp_volume_match_histogram(ffdp_volume *moving, const ffdp_volume *fixed, const ffdp_comm *comm,
                                        ffdp_error *err);

ffdp_status ffdp_register(const ffdp_volume *fixed, const ffdp_volume *moving, const ffdp_reg_options *opt,
                          ffdp_reg_result **out, ffdp_error *err);
void ffdp_reg_result_free(ffdp_reg_result *r);
/* World affine (4x4) and displacement (NULL when no deformable stage ran; on the fixed grid). */
ffdp_mat4 ffdp_reg_result_affine(const ffdp_reg_result *r);
const ffdp_volume *ffdp_reg_result_warp(const ffdp_reg_result *r);
/* Inverse displacement (SyN only, else NULL), on the fixed grid in the ANTs sense: a moving
 * point y maps to fixed z + u_inv(z) with z = A^-1 (y - t). Already in ANTs form (not A^-1 u). */
const ffdp_volume *ffdp_reg_result_inverse_warp(const ffdp_reg_result *r);
/* Planes [*z0, *z1) of the fixed grid on which the warps above are valid: every plane, or
 * this rank's share with result_shares (other planes may hold anything). */
void ffdp_reg_result_planes(const ffdp_reg_result *r, int64_t *z0, int64_t *z1);
int ffdp_reg_result_nstages(const ffdp_reg_result *r);
ffdp_stage_summary ffdp_reg_result_stage(const ffdp_reg_result *r, int i);

/* Warp `moving` onto the fixed grid with phi (A, optional u on a grid of its own).
 * interp: 0 linear, 1 nearest, 2 label. */
ffdp_status ffdp_warp_image(const ffdp_volume *moving, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_mat4 affine,
                            const ffdp_volume *u, int interp, ffdp_volume **out, ffdp_error *err);

/* Planes [z0, z1) of the same into out (z1-z0 planes of dim[0]·dim[1]·ncomp floats), u (or
 * NULL) on exactly that grid: a large result warped and written a block of planes at a time. */
ffdp_status ffdp_warp_image_planes(const ffdp_volume *moving, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_mat4 affine,
                                   const ffdp_volume *u, int interp, int64_t z0, int64_t z1, float *out, ffdp_error *err);

/* Global normalized cross-correlation over all voxels of the grid (the definition the peer
 * numbers in the issues use); the sums can also be accumulated over blocks of voxels. */
double ffdp_global_ncc(const ffdp_volume *a, const ffdp_volume *b);
typedef struct ffdp_ncc_sums {
  double n, sa, sb, saa, sbb, sab;
} ffdp_ncc_sums;
void ffdp_ncc_add(ffdp_ncc_sums *s, const float *a, const float *b, int64_t n);
double ffdp_ncc_value(const ffdp_ncc_sums *s);
/* Collective: every rank's sums added, in rank order, into s on every rank (NULL: as is). */
void ffdp_ncc_sums_reduce(ffdp_ncc_sums *s, const ffdp_comm *comm);
/* Fraction of voxels whose Jacobian determinant of x -> A·x + t + u(x) is <= 0. */
double ffdp_folding_fraction(const ffdp_volume *u, ffdp_mat4 affine);
/* The count of such voxels in planes [z0, z1) (reading planes z0-1 and z1 where the grid has
 * them): the same voxels ffdp_folding_fraction counts, a block of planes at a time. */
int64_t ffdp_folding_count(const ffdp_volume *u, ffdp_mat4 affine, int64_t z0, int64_t z1);
/* Collective over comm: the folding fraction of a warp of which each rank holds its share of
 * planes (ffdp_comm_share; result_shares), the one plane each side that the differences need
 * fetched from the neighbours into u. The same number as ffdp_folding_fraction of the whole. */
ffdp_status ffdp_folding_fraction_shared(ffdp_volume *u, ffdp_mat4 affine, const ffdp_comm *comm, double *fraction,
                                         ffdp_error *err);

/* ITK/ANTs transform files. The affine file is "#Insight Transform File V1.0" with an
 * AffineTransform_double_3_3 in LPS, as ANTs writes it. The displacement field is written in
 * the ANTs convention phi(x) = A·(x + u'(x)) + t, u' = A^-1·u, in LPS. */
ffdp_status ffdp_affine_save_itk(ffdp_mat4 affine, const char *path, ffdp_error *err);
ffdp_status ffdp_affine_load_itk(const char *path, ffdp_mat4 *affine, ffdp_error *err);
ffdp_status ffdp_warp_save_ants(const ffdp_volume *u, ffdp_mat4 affine, const char *path, ffdp_error *err);
/* The inverse warp is already in the ANTs convention: written in LPS as is. */
ffdp_status ffdp_inverse_warp_save_ants(const ffdp_volume *u_inv, const char *path, ffdp_error *err);
/* Collective: both written by the ranks of comm together, each from its share of the planes
 * (result_shares), as ffdp_field_save_mapped_shared does. */
ffdp_status ffdp_warp_save_ants_shared(const ffdp_volume *u, ffdp_mat4 affine, const char *path, const ffdp_comm *comm,
                                       ffdp_error *err);
ffdp_status ffdp_inverse_warp_save_ants_shared(const ffdp_volume *u_inv, const char *path, const ffdp_comm *comm,
                                               ffdp_error *err);

#ifdef __cplusplus
}
#endif
#endif
