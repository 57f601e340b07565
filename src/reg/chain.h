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
/* Where the points of planes [z0, z1) of the grid (dim, vox2world) lie after the first `upto`
 * items: the least and largest z voxel coordinate under world2vox (the inverse vox2world of the
 * grid they are sampled from next: a field of the chain, or the input). Evaluates the chain as
 * ffdp_chain_apply_planes does; only those items' fields are read, so the planes they need
 * must be there. A rank loads what its planes reach of each field and of the input this way. */
void ffdp_chain_reach(const ffdp_chain_item *items, int upto, const int64_t dim[3], ffdp_mat4 vox2world, int64_t z0,
                      int64_t z1, ffdp_mat4 world2vox, double *qmin, double *qmax);
/* The planes [*a, *b) of a grid of nz planes that sampling at z coordinates [qmin, qmax] reads
 * (linear, nearest, label or border-clamped), with a plane of margin each side; at least one. */
void ffdp_chain_planes(double qmin, double qmax, int64_t nz, int64_t *a, int64_t *b);
/* Planes per block for a grid of dim: about 8 M voxels (32 MB of output, 96 MB of scratch): enough
 * work for every thread, little beside the inputs. */
int64_t ffdp_chain_block_planes(const int64_t dim[3]);
ffdp_status ffdp_chain_apply(const ffdp_chain_item *items, int n, const ffdp_volume *input, const int64_t dim[3],
                             ffdp_mat4 vox2world, int interp, ffdp_volume **out, ffdp_error *err);
#endif
