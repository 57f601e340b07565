/* Two-pass CUDA blur of 3-vector fields (blur_split.cu), chosen by blur.cu for wide planes. */
#ifndef FFDP_BLUR_SPLIT_H
#define FFDP_BLUR_SPLIT_H
#include <cuda_runtime.h>
#include "ops/ops.h"

#define BLUR_SPLIT_MAXR 16 /* sigma up to 5.3 voxels */

/* Whether this file's kernels serve this call: isotropic radius 1..16 with three components
 * (blur_split3) or 1..5 with one (blur_split1), and planes wide enough for one z-pass thread per
 * column. Depends on the plane size only, never on the slab's z extent, so every rank of a run
 * takes the same path. */
int blur_split_wanted(const ffdp_slab *s, const int r[3], int ncomp);

/* out = blur(in) on the owned planes (its halo planes are overwritten with xy-filtered values);
 * w: the x, y and z taps (2r + 1 each); side: scratch of the slab's size (may be in, which is
 * dead after the xy pass), NULL for one z-chunk; maxsq: when non-NULL, atomicMax of the bits
 * of the largest squared norm of the owned output. Same bits as the one-pass kernel. */
int blur_split3(const ffdp_slab *s, int r, const float w[3][2 * BLUR_SPLIT_MAXR + 1], const float *in, float *out,
                float *side, unsigned *maxsq, cudaStream_t st);
/* out = blur(in) of a scalar image on the owned planes, radius 1-5, out of place (in and out
 * distinct; nothing else written). Same bits as blur.cu's one-pass kernel. */
int blur_split1(const ffdp_slab *s, int r, const float w[3][2 * BLUR_SPLIT_MAXR + 1], const float *in, float *out,
                cudaStream_t st);
/* blur(field) on the owned planes, in place: radii 1-5 on volumes that fill the GPU by the
 * one-pass kernel (ring holds its z-chunk boundary planes and block counters; a cooperative
 * launch), otherwise xy-filtered planes go through `ring`; ring_planes planes of the slab's plane
 * size (at least 2r + 1, or every plane of [z0 - r, z1 + r) that is stored); the halo planes of
 * field are read, not written. Same bits as blur_split3 either way (FFDP_BLUR_INPLACE=ring forces
 * the ring). */
int blur_split3_ring(const ffdp_slab *s, int r, const float w[3][2 * BLUR_SPLIT_MAXR + 1], float *field, float *ring,
                     long long ring_planes, unsigned *maxsq, cudaStream_t st);
#endif
