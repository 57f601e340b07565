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

#define REG_LAYOUT_MAX 16
/* Floats of a stage's reduction scratch: 1024 block partials and two results. */
#define REG_RED_FLOATS 1056

typedef struct reg_layout {
  int n;
  const char *name[REG_LAYOUT_MAX];
  size_t off[REG_LAYOUT_MAX], bytes[REG_LAYOUT_MAX];
  size_t total;
  int mask[3]; /* indices of the REG_MASK_* buffers below, -1 where absent */
} reg_layout;

/* Masks given to a stage (bits): their buffers follow a level layout's own. */
enum { REG_HAS_FIXED_MASK = 1, REG_HAS_MOVING_MASK = 2 };
/* The fixed mask on the slab's stored planes (1 B per voxel); the moving mask, whole, on the
 * moving level grid (float 0/1: the sampler carries it through the warp as an image); the
 * voxels scored this iteration (1 B, moving masks only: fixed AND warped moving mask). */
enum { REG_MASK_FIXED, REG_MASK_MOVING, REG_MASK_SCORED };

/* Greedy level: fixed, moving, warp u, gradient gu, scratch field tmp (also holds the warped
 * image and the image gradient), Adam moments, reduction scratch. */
enum { GR_F, GR_M, GR_U, GR_GU, GR_TMP, GR_AM, GR_AV, GR_RED };
/* Sizes: n = stored voxels of the rank's slab of the level (the whole level on one rank),
 * nf / nm = voxels of the whole fixed / moving level image. */
/* SyN level: the two half-way fields, their Adam moments, gu (also holds both midpoint
 * images), tmp (also the moving-side image gradient until the step), the fixed-side image
 * gradient. */
enum { SY_F, SY_M, SY_VF, SY_VM, SY_GU, SY_TMP, SY_GF, SY_AFM, SY_AFV, SY_AMM, SY_AMV, SY_RED };
/* SyN at the end: both fields at full resolution, the inverse being built, its scratch, out. */
enum { SF_VF, SF_VM, SF_W, SF_TMP, SF_OUT };
/* Linear level: fixed, moving, warped, image gradient, 12 affine-gradient doubles per plane. */
enum { LI_F, LI_M, LI_MOVED, LI_G, LI_GB };

/* masks: REG_HAS_* bits; nmask = voxels of the whole moving level image (the mask's grid),
 * which differs from nm where ranks hold windows of the moving image. */
void reg_layout_greedy(int64_t n, int64_t nm, int bf16_state, int masks, int64_t nmask, reg_layout *L);
void reg_layout_syn(int64_t n, int64_t nf, int64_t nm, int bf16_state, int masks, int64_t nmask, reg_layout *L);
void reg_layout_syn_final(int64_t n, reg_layout *L);
void reg_layout_linear(int64_t n, int64_t nplanes, int64_t nm, int masks, reg_layout *L);

/* Device memory an operator may take for itself while it runs (block partials of the
 * reductions, stream-ordered): a bound, so that the planner can add it. */
#define REG_OP_SCRATCH_BYTES ((size_t)8 << 20)

#ifdef __cplusplus
}
#endif
#endif
