/* Masks of the CUDA stages: which voxels of a rank's slab the metric scores, on the device.
 * Same semantics as reg_effective_mask: the fixed mask AND the moving mask carried through the
 * current warp (nearest neighbour, outside = not scored), normalized by the scored voxels of
 * the whole grid. The buffers are those of the level's layout (dev_layout.h). */
#ifndef FFDP_REG_MASK_CUDA_H
#define FFDP_REG_MASK_CUDA_H
#include "ffdp/comm.h"
#include "reg/dev_layout.h"
#include "reg/reg_internal.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct reg_cuda_mask {
  uint8_t *fixed;       /* the slab's stored planes of the fixed mask, or NULL */
  float *moving;        /* the whole moving mask on the moving level grid, or NULL */
  uint8_t *scored;      /* fixed AND warped moving mask on the stored planes (moving masks) */
  ffdp_slab ms;         /* the moving level grid, whole */
  double fixed_count;   /* voxels the fixed mask keeps on the whole grid (every rank's owned) */
} reg_cuda_mask;

/* The masks level L carries, uploaded into the buffers of layout `lay` inside `block` for
 * slab s of comm's ranks (collective: the fixed mask's count is summed). No masks: every
 * pointer NULL. rc: a CUDA error this rank already has (every rank still takes part, then all
 * fail). 0, a CUDA error, or -1 (err set, agreed by every rank). */
int reg_cuda_mask_open(reg_cuda_mask *m, const reg_layout *lay, void *block, const reg_level *L, const ffdp_slab *s,
                       const ffdp_comm *comm, int rc, ffdp_error *err);

/* The voxels to score on s under warp w (with the device field u on s's stored planes, or
 * NULL) and how many the whole grid has (collective): *mask NULL and *count the grid's voxels
 * when L had no masks, the fixed mask and its count when only that one. scratch: stored-voxel
 * floats, overwritten when a moving mask is sampled. 0, a CUDA error, or -1 (agreed). */
int reg_cuda_mask_scored(const reg_cuda_mask *m, const ffdp_comm *comm, const ffdp_warp *w, const ffdp_slab *s,
                         const float *u, float *scratch, const uint8_t **mask, int64_t *count, ffdp_error *err);

#ifdef __cplusplus
}
#endif
#endif
