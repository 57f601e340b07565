/* Transform chains (ffdp apply). */
#ifndef FFDP_REG_CHAIN_H
#define FFDP_REG_CHAIN_H
#include "core/volume_internal.h"
#include "ffdp/register.h"

#define FFDP_MAX_CHAIN 16
typedef struct ffdp_chain_item {
  ffdp_mat4 affine;          /* used when field == NULL */
  const ffdp_volume *field;  /* displacement in RAS mm on its own grid: x -> x + field(x) */
} ffdp_chain_item;

/* Planes [z0, z1) of the resampled image into out ((z1 - z0) planes); disp: scratch of 3 floats
 * per voxel of those planes. A large output is produced a block of planes at a time. */
ffdp_status ffdp_chain_apply_planes(const ffdp_chain_item *items, int n, const ffdp_volume *input,
                                    const int64_t dim[3], ffdp_mat4 vox2world, int interp, int64_t z0, int64_t z1,
                                    float *out, float *disp, ffdp_error *err);
/* Planes per block for a grid of dim: about 32 M voxels (128 MB of output, 384 MB of scratch). */
int64_t ffdp_chain_block_planes(const int64_t dim[3]);
ffdp_status ffdp_chain_apply(const ffdp_chain_item *items, int n, const ffdp_volume *input, const int64_t dim[3],
                             ffdp_mat4 vox2world, int interp, ffdp_volume **out, ffdp_error *err);
#endif
