/* Internal pieces of the registration pipeline. */
#ifndef FFDP_REG_INTERNAL_H
#define FFDP_REG_INTERNAL_H
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "core/volume_internal.h"
#include "ffdp/register.h"
#include "ffdp/comm.h"
#include "ops/ops.h"
#include "ops/code16.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Planes of an image that a rank holds when inputs are sharded (ffdp_reg_options.
 * sharded_inputs): its share [own_lo, own_hi) (ffdp_slab_split of the planes over all ranks,
 * no halo) and the planes valid here, [val_lo, val_hi) ⊇ own, grown on demand by
 * reg_planes_need. Sharded images are full-size volumes whose other planes are never
 * written: their pages are never mapped, so they cost no memory (and read as zeros). Without
 * sharding every plane is own and valid. */
typedef struct reg_planes {
  int64_t own_lo, own_hi, val_lo, val_hi;
} reg_planes;

/* One pyramid level of the (normalized) fixed and moving images. */
struct reg_pyramid;
typedef struct reg_level {
  struct reg_pyramid *pyr; /* the pyramid it came from (its device copies can be trimmed) */
  ffdp_volume *F, *M;
  uint8_t *fmask;       /* fixed mask on the level grid, or NULL */
  ffdp_volume *mmask;   /* moving mask on the moving level grid (float 0/1), or NULL */
  ffdp_slab fs, ms;
  int owns_images; /* F and M are this level's (else lent by the pyramid) */
  const ffdp_comm *c; /* every rank of the registration (sharded levels fetch planes over it) */
  int sharded;
  reg_planes *fp, *mp; /* which planes of F and M are here (the pyramid's records, or own_p) */
  reg_planes own_p[2];
  int own_pinned[2];   /* owned F and M are page-locked (reg_cuda_pin) */
} reg_level;

/* The (normalized) images of one registration and the pyramid levels built from them so far,
 * kept for later stages: rigid and affine share their levels, SyN/greedy usually reuse the
 * coarse ones, and a level at shrink 1 without smoothing is the image itself. */
#define REG_PYRAMID_MAX 16
/* Source planes [a, b) of an image kept on the device between CUDA level builds (d, or NULL):
 * each build then reads them there instead of uploading them again, which bound every build
 * of a large image (8 GB per build at 1 Gvox). */
typedef struct reg_dev_planes {
  float *d;
  int64_t a, b;
} reg_dev_planes;
typedef struct reg_pyramid {
  const ffdp_volume *F, *M;
  int device; /* 1: smooth and shrink on the CUDA device (when the images fit with room to spare) */
  const ffdp_comm *c;
  int sharded; /* F and M hold this rank's share of planes only (more than one rank) */
  reg_planes fp, mp;
  int pinned[2]; /* F's and M's own planes are page-locked (CUDA builds) */
  reg_dev_planes dev[2]; /* F's and M's source planes on the device (CUDA builds) */
  /* the last level built on the device, its images' device copies (one process): the stage
   * about to run that level takes them instead of uploading the host copies (reg_cuda_level_take) */
  struct {
    float *d;
    const ffdp_volume *of; /* the level image it copies */
  } lvd[2];
  int coded;             /* deformable levels keep their images as 16-bit codes (codes[0] F, [1] M) */
  ffdp_code16 codes[2];
  int n;
  struct {
    int shrink;
    double sigma;
    ffdp_volume *F, *M;
    reg_planes fp, mp;
    int pinned[2]; /* F, M page-locked: built on the device, copied there again by the stages */
  } lv[REG_PYRAMID_MAX];
} reg_pyramid;
/* The pyramid of F and M over comm's ranks (sharded: each holds its share of planes). */
void reg_pyramid_init(reg_pyramid *p, const ffdp_volume *F, const ffdp_volume *M, int device, const ffdp_comm *comm,
                      int sharded);
void reg_pyramid_free(reg_pyramid *p);
/* The deformable stages' images as 16-bit codes (--image-precision u16): the codes span each
 * full-resolution image's range, which bounds every level (smoothing and resampling average).
 * Collective over the pyramid's ranks (sharded: every share counts). */
ffdp_status reg_pyramid_codes(reg_pyramid *p, ffdp_error *err);
/* Planes [k0, k1) of a pyramid level (shrink, sigma) of an image with this grid, from its
 * planes [a, b) in src (every plane that the resample and both Gaussians reach): Gaussian of sigma, then the
 * downsampler's Gaussian of shrink/3 and a border-clamped linear resample onto the shrunken
 * grid, the same operators (in global plane coordinates) whatever [a, b) is, so that any
 * split of the planes gives the bits of the whole. Host (level.c) and CUDA (pyramid_cuda.cu). */
ffdp_status reg_shrink_smooth_planes(const int64_t dim[3], ffdp_mat4 vox2world, const float *src, int64_t a, int64_t b,
                                     int shrink, double sigma, const int64_t ldim[3], ffdp_mat4 lvox2world, int64_t k0,
                                     int64_t k1, float *out, ffdp_error *err);
/* The points of the smoothed source that the resample onto level planes [k0, k1) (from source
 * planes [za, zb)) reads, as a grid of columns x rows x planes (ascending), where the level's
 * grid is the source's shrunk along its own axes and those are a tenth of the plane's columns
 * and rows or fewer (shrink 8 and more): then both paths smooth only there (ffdp_blur1_at_f32, blur_at.cu), which
 * gives the same values at those points. 0: smooth everywhere (and FFDP_PYRAMID_AT=0, the
 * A/B). The lists are one allocation: free(pts->zs). */
typedef struct reg_points {
  int64_t *zs;
  int *xs, *ys;
  int nx, ny, nz;
} reg_points;
int reg_resample_points(const int64_t dim[3], ffdp_mat4 vox2world, const int64_t ldim[3], ffdp_mat4 lvox2world,
                        int shrink, int64_t k0, int64_t k1, int64_t za, int64_t zb, reg_points *pts);
/* The CUDA version; keep (or NULL) holds the source planes on the device across calls: used
 * when it covers [a, b), else replaced by an upload of [a, b) (when they fit, see
 * reg_cuda_pyramid_fits). keep_out (or NULL): the level's planes stay on the device as well, in
 * a buffer of their own returned there (NULL where it would take more than a sixteenth of the
 * free device memory). */
ffdp_status reg_cuda_shrink_smooth_planes(const int64_t dim[3], ffdp_mat4 vox2world, const float *src, int64_t a, int64_t b,
                                          int shrink, double sigma, const int64_t ldim[3], ffdp_mat4 lvox2world, int64_t k0,
                                          int64_t k1, float *out, reg_dev_planes *keep, float **keep_out, ffdp_error *err);
/* Free the pyramid's device copies of source planes and levels: always (need < 0), or when the
 * free device memory is below need bytes plus a margin (a stage about to allocate need). */
void reg_cuda_pyramid_trim(struct reg_pyramid *p, double need);
/* Free the device copies of the last level built that no stage took (before the next build,
 * and before a linear stage allocates). */
void reg_cuda_pyramid_drop_level(struct reg_pyramid *p);
/* Bytes of those copies now: a stage's device peak counts from its start without them (they
 * are the pyramid's, released before the full-resolution level). */
double reg_cuda_pyramid_kept(const struct reg_pyramid *p);
/* One process, float images: when the pyramid holds device copies of exactly what a stage
 * would upload for level L (the fixed image's planes [fz0, fz1), the moving image whole) --
 * the last level built, or the source planes at full resolution -- both are handed over in
 * *F and *M (the caller frees them with cudaFree) and the pyramid forgets them: 1. Else
 * nothing is taken: 0. Saves the copies up (and at full resolution a device copy and the
 * freeing of the kept source) without changing a value or the stage's peak memory. */
int reg_cuda_level_take(const reg_level *L, int64_t fz0, int64_t fz1, float **F, float **M);
/* Whether levels are kept on the device and taken by the stages (reg_cuda_level_take):
 * FFDP_KEEP_LEVEL=0 / 1, else REG_KEEP_LEVEL_DEFAULT (0: every level's images uploaded from the
 * host, as before; the A/B). The same files either way (bench/results/session45_h100/run202). */
#define REG_KEEP_LEVEL_DEFAULT 1
int reg_keep_level(void);
/* Free a deformable level's device block and the images it took (either may be NULL); both
 * are cleared. */
void reg_cuda_level_release(void **block, float *taken[2]);
/* Planes [z0, z1) of level L's fixed (moving = 0) or moving image into dst on the device:
 * from the pyramid's kept source planes when L is the full-resolution level and they are still
 * there, else from the host. 0 or a CUDA error. */
int reg_cuda_level_upload(const reg_level *L, int moving, int64_t z0, int64_t z1, float *dst);
/* The same as 16-bit codes (the pyramid's codes[moving]), encoded on the device: from the kept
 * source planes, or uploaded through scratch (scratch_floats floats of device memory) in pieces.
 * 0 or a CUDA error. */
int reg_cuda_level_upload16(const reg_level *L, int moving, int64_t z0, int64_t z1, uint16_t *dst, float *scratch,
                            long long scratch_floats);
/* The ten intensity moments of planes [z0, z1) of an image on the device (planes: plane z0,
 * nx x ny each), one row of `part` (host) per plane, as moments.c sums them. 0 or a CUDA error. */
int reg_cuda_plane_moments(const float *planes, int64_t nx, int64_t ny, int64_t z0, int64_t z1, double *part);
/* Source planes [lo, hi) that the resample onto level planes [k0, k1) reads (before any
 * Gaussian widens it), and a slab of dim's grid storing [lo, hi) and owning [z0, z1) ∩ that. */
void reg_resampled_planes(int64_t nz, int shrink, int64_t k0, int64_t k1, int64_t *lo, int64_t *hi);
ffdp_slab reg_planes_slab(const int64_t dim[3], int64_t lo, int64_t hi, int64_t z0, int64_t z1);
/* Whether n floats of source planes fit the device for a build (two working copies in a
 * quarter of the free memory: 1), and also to be kept there between builds, beside those of
 * the other image (2). 0: build on the host. */
int reg_cuda_pyramid_fits(int64_t n);
/* Make planes [a, b) of v valid on this rank (fetched from the ranks whose share they are);
 * collective over c, every rank with its own range (empty: none). */
ffdp_status reg_planes_need(const ffdp_comm *c, ffdp_volume *v, reg_planes *p, int64_t a, int64_t b, ffdp_error *err);
/* Both images of a level whole on every rank (linear stages and moments sample the moving
 * image anywhere; their levels are coarse). Collective; nothing to do without sharding. */
ffdp_status reg_level_whole(reg_level *L, ffdp_error *err);
/* Before a deformable level on the first nact ranks (collective over every rank): the fixed
 * planes of this rank's slab (halo included), and the planes it samples: its share of the
 * moving image (and of the fixed, sample_fixed: SyN) under the window and ring exchanges,
 * the whole image under the local one or on a single active rank. */
ffdp_status reg_level_ready(reg_level *L, int nact, int64_t halo, ffdp_image_exchange mode, int sample_fixed,
                            ffdp_error *err);

/* The level (shrink, sigma) of pyr's images, built once and then lent; masks per call. */
ffdp_status reg_level_build(reg_pyramid *pyr, const ffdp_volume *fmask, const ffdp_volume *mmask, int shrink,
                            double sigma, reg_level *L, ffdp_error *err);
void reg_level_free(reg_level *L);
/* The CPU stages' form of coded images: the level's images (every plane held) replaced by
 * decoded copies, the values the GPU's samplers decode from the codes. Nothing to do unless
 * the pyramid is coded. */
ffdp_status reg_level_decoded(reg_level *L, ffdp_error *err);

/* Loss and gradient w.r.t. the moved image (g may be NULL). Images are normalized to [0,1]. */
double reg_metric(const ffdp_metric_spec *m, const reg_level *L, const float *moved, const uint8_t *mask, float *g);

/* Mask of voxels to score on the stored planes of slab s (a rank's, or the whole level):
 * fixed mask AND moving mask carried through the current warp (u on those planes, or NULL).
 * *mask becomes NULL (all voxels) when neither mask is given; *buf, *fbuf are scratch owned by
 * the caller (allocated on first use). Every rank holds the whole moving mask. */
ffdp_status reg_effective_mask(const reg_level *L, const ffdp_slab *s, const ffdp_warp *w, const float *u,
                               const uint8_t **mask, uint8_t **buf, float **fbuf, ffdp_error *err);

/* Adam on a small parameter vector. */
typedef struct reg_adam {
  int n, t;
  double m[16], v[16];
} reg_adam;
void reg_adam_step(reg_adam *a, double *theta, const double *g, double lr);

/* Convergence over a window of losses: relative slope > -tol. */
int reg_converged(const double *hist, int n, int window, double tol);

ffdp_status reg_moments_init(reg_pyramid *pyr, ffdp_mat4 *aff, ffdp_error *err);
ffdp_status reg_linear_stage(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                             ffdp_mat4 *aff, ffdp_stage_summary *sum, double t_start, ffdp_error *err);
ffdp_status reg_greedy_stage(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                             ffdp_mat4 aff, ffdp_volume **u, ffdp_stage_summary *sum, double t_start, ffdp_error *err);
ffdp_status reg_syn_stage(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                          ffdp_mat4 aff, ffdp_volume **u, ffdp_volume **u_inv, ffdp_stage_summary *sum, double t_start,
                          ffdp_error *err);
/* The same over the ranks of comm (NULL: one process): each rank passes its slab, the loss and
 * normalization are of the whole grid, the gradient is written on the rank's owned planes. */
double reg_metric_ranks(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, const float *A,
                        const float *B, const uint8_t *mask, float *g);
/* The same with the gradient w.r.t. A too (gA; NULL: none), as the call with A and B swapped
 * gives it: both in one pass for CC. */
double reg_metric_ranks2(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, const float *A,
                         const float *B, const uint8_t *mask, float *gA, float *g);
/* A failure requested through FFDP_INJECT_FAILURE="RANK:ITERATION" (first stage, first level),
 * so that tests can check that a failing rank stops every rank. */
ffdp_status reg_injected_failure(const ffdp_comm *comm, int stage, int level, int iter, ffdp_error *err);
/* Loss of (A, B) and its gradient w.r.t. B (g may be NULL), A and B on L's fixed grid. */
double reg_metric_pair(const ffdp_metric_spec *m, const ffdp_slab *s, const float *A, const float *B, const uint8_t *mask,
                       float *g);
void reg_compose_fields(const ffdp_volume *U, const float *d, const double T[3][3], float *out);
ffdp_status reg_invert_field(const ffdp_volume *v, int iters, ffdp_volume **out, ffdp_error *err);
/* The same for planes [z0, z1) of U's / v's grid only: d, out and w hold just those planes
 * (U and v whole); the planes' values are those of the whole computation. */
void reg_compose_fields_planes(const ffdp_volume *U, const float *d, const double T[3][3], int64_t z0, int64_t z1,
                               float *out);
ffdp_status reg_invert_field_planes(const ffdp_volume *v, int iters, int64_t z0, int64_t z1, float *w, ffdp_error *err);
/* Adam moments of one field (3 values per stored voxel each), stored as float or, with bf16,
 * as bfloat16 (round to nearest even; the arithmetic stays fp32, as on the GPU). */
/* bfloat16 <-> float as CUDA's __float2bfloat16_rn / __bfloat162float: round to nearest even,
 * NaN kept quiet (the stored Adam moments with --state-precision bf16). */
static inline uint16_t reg_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}
static inline float reg_from_bf16(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
typedef struct reg_moments {
  void *m, *v;
  int bf16;
  int coarse; /* on the coarse grid of the slab (coarse_moments.c), else on its stored voxels */
  float *t;   /* coarse: the step's transient (n3 floats, shared by the fields of a level) */
} reg_moments;
/* Both moments of `fields` fields of n3 values each (reg_moment_values) in one zeroed
 * allocation, field k at k-th place, and with coarse moments the transient after them (free
 * mo[0].m); NULL m on failure. */
void reg_moments_alloc(reg_moments *mo, int fields, int64_t n3, int bf16, int coarse);
/* Moments on a grid of half the resolution (coarse_moments.c). Coarse points lie at voxels
 * (2i, 2j, 2k): reg_coarse_axis(n) of them along an axis of n voxels (one past the last voxel
 * when n is even). A slab keeps coarse planes [k0, k1) = [z0/2, z1/2 + 1). */
int64_t reg_coarse_axis(int64_t n);
void reg_coarse_planes(const ffdp_slab *s, int64_t *k0, int64_t *k1);
/* Values (3 per point) of one moment of a field on slab s: stored voxels, or coarse points. */
int64_t reg_moment_values(const ffdp_slab *s, int coarse);
/* The planes whose smoothed gradient the coarse step reads: s's owned planes and two more on
 * each side (within the grid). */
void reg_coarse_extend(const ffdp_slab *s, ffdp_slab *ext);
/* The Adam step on the coarse grid: d (stored planes of s, valid on reg_coarse_extend's planes)
 * holds the smoothed gradient, times scale its normalized form; on return its owned planes hold
 * the step (coarse_moments.c). 0, or -1 when out of memory. */
int reg_coarse_adam(const ffdp_slab *s, float *d, const reg_moments *mo, int t, double step, float scale);
/* The coarse step's bound on a voxel's |mhat / sqrt(vhat)| per component (coarse_moments.c). */
#define REG_COARSE_CLAMP 3.0f
/* One optimiser step on a displacement field u (3 comps on slab s of comm's ranks):
 *   d = -step · Adam(blur(gu, grad_sigma) / max|.|),  u <- blur(d + u∘(p + S_cw·d), warp_sigma)
 * (Adam on the coarse grid when mo->coarse: reg_coarse_adam).
 * All fields are stored over [zlo, zhi); gu's halo is filled here, u's halo is valid on return.
 * tmp is a scratch field; gu is consumed (it holds the composition before the last blur), so
 * a level needs three fields beside the moments. Returns 1 after a step, 0 when the
 * gradient vanished (the update is then zero but the warp is still smoothed: the same on
 * every device and rank count), -1 on an error agreed by every rank (err set). */
int reg_field_step(const ffdp_comm *comm, const ffdp_slab *s, float *u, float *gu, const reg_moments *mo, int t,
                   const ffdp_warp *cw, double step, double grad_sigma, double warp_sigma, float *tmp, ffdp_error *err);
/* End of a level's iterations: final loss and count into sum, and the level's report. */
void reg_level_done(const ffdp_reg_options *opt, int si, int lv, const double *hist, int it, ffdp_status st,
                    double t_start, double lt0, int64_t n, int conv, ffdp_stage_summary *sum);
/* Ranks idle at a coarse level missed its iterations: every rank takes rank 0's account. */
void reg_level_account(const ffdp_comm *comm, ffdp_stage_summary *sum);
/* Whether stage si of comm's ranks hands its final warps to rank 0 only (result_on_root, the
 * last stage, more than one rank). */
int reg_result_to_root(const ffdp_reg_options *opt, int si, const ffdp_comm *comm);
/* Whether it hands each rank only its share of their planes instead (result_shares). */
int reg_result_shares(const ffdp_reg_options *opt, int si, const ffdp_comm *comm);
/* Halo planes a deformable level needs, and how many ranks can take a level of nz planes. */
int64_t reg_deformable_halo(const ffdp_stage_spec *S, int coarse_state);
int reg_level_ranks(int size, int64_t nz, int64_t halo);
/* Compose warp for updates applied before the affine: p + Wf^-1·A^-1·d(p). */
void reg_compose_warp(ffdp_mat4 fixed_vox2world, ffdp_mat4 aff, ffdp_warp *cw);
/* One linear-stage evaluation on a level: loss, and its gradient w.r.t. the folded B. */
typedef struct reg_linear_eval {
  double (*run)(struct reg_linear_eval *self, const ffdp_metric_spec *m, const ffdp_warp *w, double gB[3][4], int *rc);
  void (*release)(struct reg_linear_eval *self);
  double device_bytes; /* device memory in use after the first evaluation (CUDA only) */
  ffdp_error err;      /* why run() set *rc (CUDA only; agreed by every rank) */
} reg_linear_eval;
/* The same on the CUDA device (level images uploaded once), over comm's ranks as the CPU
 * evaluator; NULL with err set on failure. */
reg_linear_eval *reg_linear_eval_cuda(const reg_level *L, const ffdp_comm *comm, const ffdp_metric_spec *m,
                                      ffdp_error *err);
/* Every rank computes on CUDA device local_rank % device count and its comm carries device
 * halos (NCCL or staged): collective; once per registration. */
ffdp_status reg_cuda_select(const ffdp_comm *comm, ffdp_error *err);

int reg_cuda_device_count(void);
/* Stage options with physical-size levels (level_mm) turned into shrink factors for a fixed
 * image of this voxel spacing. */
void reg_resolve_levels(const ffdp_reg_options *in, const double spacing[3], ffdp_reg_options *out);
/* Device memory in use now (total - free, bytes), for per-stage peaks. */
double reg_cuda_used_bytes(void);
/* Page-lock host memory that many copies to the device will read (1 when it is), and undo it:
 * pageable copies run at a fraction of the host link's rate. A refusal is not an error. */
int reg_cuda_pin(const void *p, size_t bytes);
void reg_cuda_unpin(const void *p);
/* Copies between the device and host memory (0 or a cudaError_t). Of REG_STAGED_COPY_MIN bytes
 * or more, with the host side pageable, they pass through a small ring of page-locked buffers
 * whose host side all threads copy (staged_copy_cuda.cu); FFDP_STAGED_COPY=0: the driver's
 * pageable copy. Both wait for the device's queued work first and return when done. */
#define REG_STAGED_COPY_MIN ((size_t)256 << 20)
int reg_cuda_copy_down(void *host, const void *dev, size_t bytes);
int reg_cuda_copy_up(void *dev, const void *host, size_t bytes);
/* memcpy split over the OpenMP team (host_copy.c). */
void reg_host_copy(void *dst, const void *src, size_t bytes);
/* Whether the staged copies are on (FFDP_STAGED_COPY not 0). */
int reg_staged_copy_on(void);
/* The greedy stage on a CUDA device (greedy_cuda.cu); same contract as reg_greedy_stage. */
ffdp_status reg_greedy_stage_cuda(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                                  ffdp_mat4 aff, ffdp_volume **u, ffdp_stage_summary *sum, double t_start, ffdp_error *err);
ffdp_status reg_syn_stage_cuda(reg_pyramid *pyr, const ffdp_reg_options *opt, int si,
                               ffdp_mat4 aff, ffdp_volume **u, ffdp_volume **u_inv, ffdp_stage_summary *sum,
                               double t_start, ffdp_error *err);
/* Progress callback for one iteration (done = 0) or the end of a level (done = 1). */
void reg_report(const ffdp_reg_options *opt, int si, int lv, int it, double loss, double t_start, double lt0, int64_t n,
                int done, int conv);
/* Make *v a 3-component field on grid's grid (world mm carries over unchanged): resampled with
 * border padding when its grid differs, zeros when *v is NULL. On failure *v is NULL. */
ffdp_status reg_field_to_grid(ffdp_volume **v, const ffdp_volume *grid, ffdp_error *err);
/* The stored planes of slab s of grid from field v (3 components, world mm, on any grid; NULL:
 * zeros) into out: the planes reg_field_to_grid would give, without the whole field. */
void reg_field_onto_slab(const ffdp_volume *v, const ffdp_volume *grid, const ffdp_slab *s, float *out);
/* Largest |T·v| over a displacement field (3 components per voxel). */
double reg_field_max_norm(const ffdp_volume *v, const double T[3][3]);
/* Largest |g_i| over n 3-vectors (g[3i..3i+2]). */
double reg_max_norm3(const float *g, int64_t n);
/* A zero 3-component field on grid's grid with its pages mapped by every thread: a GPU
 * download into fresh memory otherwise maps each page on one thread (1.7 GB/s measured for
 * 86 MB on the H100 machine, against ~10 GB/s into mapped pages). */
ffdp_status reg_field_create_mapped(const ffdp_volume *grid, ffdp_volume **v, ffdp_error *err);
/* The same prepared by another thread while the device iterates: mapping a gigavoxel field's
 * pages (12 GB) took over a second of the host's time between levels. start never fails (it
 * falls back to doing the work in finish); finish waits and hands over the field (or the
 * error) once, later calls return the same; discard frees a field nobody took (page-locked:
 * unlocked first). With FFDP_PIN_FIELD=1 and pyr (may it page-lock: one process on the GPU,
 * FFDP_PIN not 0) a field of 64 MB or more is also page-locked by that thread, and
 * reg_field_job_unpin makes it pageable again once the download is done. Off by default: at
 * 1008^3 the locking (0.4-0.7 s) stalled the device's queue about as long and the unlocking
 * took 0.2 s, more than the 0.63 s it saved the download (bench/gpu/NOTES.md run 199). */
typedef struct reg_field_job {
  const ffdp_volume *grid;
  ffdp_volume *v;
  ffdp_status st;
  ffdp_error err;
  int state; /* 0: idle, 1: thread running, 2: done */
  int pin, pinned;
  double pin_seconds; /* what page-locking took the thread */
  pthread_t thread;
} reg_field_job;
void reg_field_job_start(reg_field_job *j, const ffdp_volume *grid, const struct reg_pyramid *pyr);
/* The field pageable again (nothing when it was not page-locked); seconds it took. */
double reg_field_job_unpin(reg_field_job *j);
ffdp_status reg_field_job_finish(reg_field_job *j, ffdp_volume **v, ffdp_error *err);
void reg_field_job_discard(reg_field_job *j);
/* A rank's stored planes of a field (slab s of grid) as a volume of their own: its geometry
 * is the grid's shifted by s->zlo planes, so resampling it is resampling those planes. */
ffdp_status reg_slab_volume(const float *stored, const ffdp_slab *s, const ffdp_volume *grid, ffdp_volume **out,
                            ffdp_error *err);
/* Whether planes [have_lo, have_hi) of a previous level's grid (prev_vox2world, full_nz planes)
 * hold every plane that resampling onto the stored planes of slab s of grid reads: then a rank
 * can carry its own slab to the next level without a gather. */
int reg_slab_covers(ffdp_mat4 prev_vox2world, int64_t full_nz, int64_t have_lo, int64_t have_hi, const ffdp_volume *grid,
                    const ffdp_slab *s);
/* Smallest voxel size (mm) of a level's fixed grid: the unit of deformable step sizes. */
double reg_level_step_mm(const reg_level *L);
/* The four warps of a SyN level: fixed and moving samplers (midpoint grid = fixed level grid)
 * and the compositions for updates of the fixed-side and moving-side (post-affine) fields. */
void reg_syn_warps(const reg_level *L, ffdp_mat4 aff, ffdp_warp *wfix, ffdp_warp *wmov, ffdp_warp *cfix, ffdp_warp *cmov);
double reg_now(void);
/* With FFDP_TRACE set: one line of timing to stderr (where the host time of a run goes). */
void reg_trace(const char *fmt, ...);
/* MI's Parzen windows in the pipeline (CPU and GPU alike): a box for the fixed image and the
 * cubic B-spline for the moving one (ITK's and ANTs' Mattes estimate, ops.h FFDP_PARZEN_MATTES),
 * or with FFDP_MI_PARZEN=bspline the cubic B-spline for both (the default before session 25). */
ffdp_parzen_kind reg_mi_parzen(void);
/* Fraction of fixed-grid voxels that the affine maps inside the moving image. */
double reg_overlap(const ffdp_volume *F, const ffdp_volume *M, ffdp_mat4 aff);
#ifdef __cplusplus
}
#endif
/* ffdp_volume_normalize_quantiles and ffdp_volume_intensity_range of an image just loaded,
 * with the range its load found (ffdp_volume_load_ranged: this rank's planes) instead of a
 * pass over it (loaded NULL: the pass); the same results. */
ffdp_status reg_normalize_loaded(ffdp_volume *v, const ffdp_comm *comm, const double q[2], const char *what,
                                 const ffdp_value_range *loaded, double *lo, double *hi, ffdp_error *err);
ffdp_status reg_intensity_range_loaded(const ffdp_volume *v, const ffdp_comm *comm, const char *what,
                                       const ffdp_value_range *loaded, double *lo, double *hi, ffdp_error *err);
/* A copy of v scaled to [0,1] from its min/max or, with quantiles q (not NULL and not {0, 1}),
 * winsorized (intensity.c); sharded: this rank's planes of it. */
ffdp_status reg_normalized_copy(const ffdp_volume *v, const ffdp_comm *shared, const double *q, const char *what,
                                ffdp_volume **out, ffdp_error *err);
#endif
