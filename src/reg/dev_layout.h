/* Device buffer layouts of the CUDA stages, in one place so that the memory planner and the
 * stages cannot disagree: the planner sums these sizes, the stages carve one allocation by
 * the same offsets. Plain C (no CUDA), so a CPU-only build can still plan a GPU run. */
#ifndef FFDP_REG_DEV_LAYOUT_H
#define FFDP_REG_DEV_LAYOUT_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define REG_LAYOUT_MAX 20
/* Floats of a stage's reduction scratch: 1024 block partials and two results. */
#define REG_RED_FLOATS 1056

typedef struct reg_layout {
  int n;
  const char *name[REG_LAYOUT_MAX];
  size_t off[REG_LAYOUT_MAX], bytes[REG_LAYOUT_MAX];
  size_t total;
  int mask[3]; /* indices of the REG_MASK_* buffers below, -1 where absent */
  int spare;   /* index of the spare field (reg_layout_spare), -1 where absent */
} reg_layout;

/* Masks given to a stage (bits): their buffers follow a level layout's own. REG_CODED_IMAGES
 * (deformable layouts): the fixed and moving images as 16-bit codes (2 B per voxel). */
enum { REG_HAS_FIXED_MASK = 1, REG_HAS_MOVING_MASK = 2, REG_CODED_IMAGES = 4 };
/* The fixed mask on the slab's stored planes (1 B per voxel); the moving mask, whole, on the
 * moving level grid (float 0/1: the sampler carries it through the warp as an image); the
 * voxels scored this iteration (1 B, moving masks only: fixed AND warped moving mask). */
enum { REG_MASK_FIXED, REG_MASK_MOVING, REG_MASK_SCORED };

/* Greedy level: fixed, moving, warp u, gradient gu (also holds the warped image; smoothed in
 * place, then the composed warp, which trades places with u), the metric's gradient w.r.t.
 * the warped image, Adam moments, the smoothing ring, reduction scratch. */
enum { GR_F, GR_M, GR_U, GR_GU, GR_GM, GR_AM, GR_AV, GR_RING, GR_RED };
/* Sizes: n = stored voxels of the rank's slab of the level (the whole level on one rank),
 * nf / nm = voxels of the whole fixed / moving level image. */
/* SyN level: the two half-way fields, gu (also holds both midpoint images; trades places
 * with a field after each side's step), the metric's gradients w.r.t. both midpoint images,
 * their Adam moments, the smoothing ring. */
enum { SY_F, SY_M, SY_VF, SY_VM, SY_GU, SY_GF, SY_GM, SY_AFM, SY_AFV, SY_AMM, SY_AMV, SY_RING, SY_RED };
/* SyN at the end: both fields at full resolution, the inverse being built, its scratch, out. */
enum { SF_VF, SF_VM, SF_W, SF_TMP, SF_OUT };
/* Linear level: fixed, moving, warped, image gradient, 12 affine-gradient doubles per plane. */
enum { LI_F, LI_M, LI_MOVED, LI_G, LI_GB };

/* masks: REG_HAS_* bits (and REG_CODED_IMAGES); nmask = voxels of the whole moving level image (the mask's grid),
 * which differs from nm where ranks hold windows of the moving image. */
/* ring: floats of the smoothing ring (reg_step_ring_floats). From REG_SHARED_GRAD_MIN stored
 * voxels on, the metric's gradient that the sampler's backward consumes (greedy: w.r.t. the
 * warped image; SyN: w.r.t. the fixed side's midpoint image) lives in the last third of the
 * gradient field (reg_cuda_sample_bwd_shared) and its own buffer has no bytes: 4 B per voxel
 * less, for a few more launches per iteration, which small levels are better without. */
#define REG_SHARED_GRAD_MIN ((int64_t)1 << 20)
int reg_grad_shared(int64_t n);
/* nmom: values of each Adam moment buffer (reg_moment_values: 3 per stored voxel, or per
 * coarse point with the moments on the coarse grid, coarse set: the ring then holds at least
 * nmom floats, the coarse step's transient). */
void reg_layout_greedy(int64_t n, int64_t nm, int bf16_state, int64_t nmom, int coarse, int masks, int64_t nmask,
                       int64_t ring, reg_layout *L);
void reg_layout_syn(int64_t n, int64_t nf, int64_t nm, int bf16_state, int64_t nmom, int coarse, int masks,
                    int64_t nmask, int64_t ring, reg_layout *L);

/* The deformable step smooths its fields in place (ffdp_cuda_blur_inplace3), staging
 * xy-filtered planes in a ring of a few planes instead of a second field. Each chunk of planes
 * costs two launches and a 2r-plane z prologue, so a small ring is slower: 32 MB gives the
 * whole-field speed on the medium pair and within 7 % of it at 0.5 mm (bench/gpu/NOTES.md run
 * 98). Planes of that ring for a blur of radius r on nstored planes of nx x ny: about
 * REG_RING_BYTES (FFDP_RING_MB overrides, for comparisons), with chunks of at least max(8r, 8)
 * planes beside the 2r, never more than nstored; nstored beyond REG_RING_MAXR (the axis
 * passes, out of place); 0 for r = 0. The results do not depend on it. */
#define REG_RING_MAXR 16
#define REG_RING_BYTES ((int64_t)32 << 20)
int64_t reg_blur_ring_planes(int64_t nx, int64_t ny, int64_t nstored, int r);
/* Floats of the ring for a deformable step's smoothing in place, the gradient's (sigma in voxels;
 * the new warp is smoothed out of place: step_cuda.h); at least a plane, which the shared
 * gradient's last plane is copied into (reg_cuda_sample_bwd_shared). */
int64_t reg_step_ring_floats(int64_t nx, int64_t ny, int64_t nstored, double grad_sigma);
/* The spare field: a one-process deformable level whose planes hold at least REG_SPARE_PLANE
 * voxels smooths the gradient out of place into a field of its own, where its layout (L->total)
 * plus that field (3n floats) and an eighth of it (the previous level's field, kept on the
 * device into this level's start), REG_OP_SCRATCH_BYTES and REG_SPARE_MARGIN fit `budget` (the
 * device bytes the run may use: ffdp_reg_options.device_budget; 0: never). On such planes the
 * in-place blur runs in bands of tile rows at a third of copy bandwidth, the out-of-place one at
 * two thirds (H100, 1008x1008x128: 3.17 against 1.75 ms with the largest norm, bench/gpu/NOTES.md
 * run 194), with the same bits; smaller planes gain too little to pay 12 B per voxel. Adds the
 * buffer to L (L->spare its index) where it applies; FFDP_SPARE_FIELD=0 turns it off (the
 * planner reads it too). The planner and the stages both decide here, so they cannot differ. */
#define REG_SPARE_PLANE ((int64_t)1 << 17)
#define REG_SPARE_MARGIN ((double)(512 << 20))
void reg_layout_spare(reg_layout *L, int64_t nx, int64_t ny, int ranks, int64_t n, double grad_sigma, double budget);
/* The images (the layout's first `first` buffers) live elsewhere (reg_cuda_level_take): the
 * others move down by their bytes, which leave the total; the planner keeps counting them. */
void reg_layout_images_apart(reg_layout *L, int first);
/* three: the final in three fields (syn_cuda.cu, with the moments on the coarse grid). */
void reg_layout_syn_final(int64_t n, int three, reg_layout *L);
void reg_layout_linear(int64_t n, int64_t nplanes, int64_t nm, int masks, reg_layout *L);

/* Device memory an operator may take for itself while it runs (block partials of the
 * reductions, stream-ordered): a bound, so that the planner can add it. */
#define REG_OP_SCRATCH_BYTES ((size_t)8 << 20)

#ifdef __cplusplus
}
#endif
#endif
