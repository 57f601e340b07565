/* CUDA operators: same semantics and slab layout as the CPU operators in ops.h; pointers
 * are device pointers, work is queued on `stream` (a cudaStream_t passed as void*). */
#ifndef FFDP_OPS_CUDA_H
#define FFDP_OPS_CUDA_H
#include "ops/ops.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Returns 0 on success or a CUDA error code. */
int ffdp_cuda_sample_fwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                         const float *M, int ncomp, float *out, void *stream);
/* gB_dev: 12 doubles on the device, overwritten (may be NULL); gu may be NULL. */
int ffdp_cuda_sample_bwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                         const float *M, int ncomp, const float *gout, float *gu, double *gB_dev, void *stream);

#ifdef __cplusplus
}
#endif
#endif
