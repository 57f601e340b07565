/* Device-resident deformable helpers shared by the CUDA greedy and SyN stages. Fields are
 * 3-vectors on slab s of comm's ranks (NULL: one process), in world mm. */
#ifndef FFDP_REG_STEP_CUDA_H
#define FFDP_REG_STEP_CUDA_H
#include "ffdp/comm.h"
#include "ffdp/register.h"
#include "ops/ops.h"
#include "ops/code16.h"
#ifdef __cplusplus
extern "C" {
#endif
/* A CUDA failure (rc) on one rank becomes an error every rank agrees on, so that none is left
 * waiting in the next exchange: 0, or -1 with err set on every rank. One process: rc as it is. */
int reg_cuda_agreed(const ffdp_comm *c, int rc, ffdp_error *err);
/* Adam moments of one field (3n values each), stored as float or, with bf16, as bfloat16. */
typedef struct reg_cuda_adam {
  void *m, *v;
  int bf16;
  int coarse; /* on the slab's coarse grid (ffdp_cuda_coarse_adam): the gradient is smoothed two
                 planes past the owned ones, which the halo must allow (reg_deformable_halo),
                 and the ring holds the step's transient (reg_layout_* size it for both) */
} reg_cuda_adam;
/* As reg_field_step, in two fields: *gu (consumed; its owned planes hold the gradient, the
 * halo is filled here) and *u. The gradient is smoothed in place (ring: ring_planes planes of
 * the slab's plane size, reg_step_ring_floats), the new warp is made in its memory and smoothed
 * out of place into *u's (the two pointers trade places only where the warp is not smoothed):
 * on return *u is the updated field (halo valid) and *gu scratch.
 * scratch holds REG_RED_FLOATS floats; *moved = 0 if the gradient vanished on every rank (the
 * update is then zero). With mx_host (pinned host memory) and one process nothing waits:
 * *moved is 1 and *mx_host receives the gradient's largest norm once the stream gets there
 * (0: vanished). spare (one process; null: none): a field of gu's size that the gradient is
 * smoothed into out of place instead (reg_layout_spare), the same bits. Returns 0, a CUDA
 * error code, or -1 for an error agreed by every rank (err set). */
int reg_cuda_field_step(const ffdp_comm *comm, const ffdp_slab *s, float **u, float **gu, float *ring, long long ring_planes,
                        float *spare, reg_cuda_adam adam, int t, const ffdp_warp *cw, double step, double grad_sigma,
                        double warp_sigma, float *scratch, float *mx_host, int *moved, ffdp_error *err);
/* A scalar level image the deformable stages sample, on the device: floats, or 16-bit codes
 * (--image-precision u16, code16.h) that the samplers decode as they read. */
typedef struct reg_dev_image {
  const void *d;
  int coded;
  ffdp_code16 k;
} reg_dev_image;
/* Bytes per voxel of a level image on the device. */
static inline int reg_image_bytes(int coded) { return coded ? 2 : 4; }
/* ffdp_cuda_sample_fwd / _bwd (no affine gradient) of a level image, whichever its storage. */
int reg_cuda_sample_image_fwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                              reg_dev_image im, float *out);
int reg_cuda_sample_image_bwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                              reg_dev_image im, const float *gout, float *gu);
/* The backward of an image into gu, 3 floats per stored voxel of s, whose last third holds the
 * incoming per-voxel gradient (gu + 2 * stored voxels): the deformable levels keep the
 * metric's gradient there instead of in a buffer of its own. Planes go in chunks that
 * overwrite only values already read; side (side_floats >= one plane) takes a copy of the
 * last. */
int reg_cuda_sample_bwd_shared(const ffdp_warp *w, const ffdp_slab *s, const float *u, const ffdp_slab *ms,
                               reg_dev_image im, float *gu, float *side, long long side_floats);
/* End of a CUDA level on comm's ranks: rc (0, a CUDA error, or -1 for an error already agreed
 * in err) and st become one status every rank agrees on; the level is reported (as
 * reg_level_done). */
ffdp_status reg_cuda_level_end(const ffdp_comm *comm, int rc, ffdp_status st, const ffdp_reg_options *opt, int si, int lv,
                               const double *hist, int it, double t_start, double lt0, int64_t n, int conv,
                               ffdp_stage_summary *sum, ffdp_error *err);
/* A finished level's fields (nf fields of 3 components on the device) back to the host: the
 * owned planes straight into full[k] (whole level grid) when keep is NULL, else every stored
 * plane into one new block *keep, field after field (for the gather). 0 or a CUDA error. */
int reg_cuda_fields_down(const ffdp_slab *s, int nf, float *const dev[], float *const full[], float **keep);
/* Field v (host, 3 components in world mm, on its own grid; NULL for zeros) onto the stored
 * planes of slab s of grid, in dev: copied when the grids match, else resampled on the device
 * (linear, border-clamped, as reg_field_to_grid) from a copy uploaded to scratch (capacity
 * scratch_floats). Returns 0, a CUDA error, or -1 when scratch is too small (the caller
 * resamples on the host instead). */
int reg_cuda_field_onto(const ffdp_volume *v, const ffdp_volume *grid, const ffdp_slab *s, float *dev, float *scratch,
                        long long scratch_floats);
/* A level's field kept on the device for the next level of the same stage (one process): the
 * 3-component field of a whole level grid (dim, vox2world), instead of a download and an
 * upload through pageable host memory (1.5 GB each way between the last two levels of a
 * gigavoxel image). dev is NULL when none is kept. */
typedef struct reg_dev_field {
  float *dev;
  int64_t dim[3];
  ffdp_mat4 vox2world;
} reg_dev_field;
/* Keep the owned planes of u (slab s = the whole grid) in a new allocation: 1 when kept, 0 when
 * the device has no room for it (the caller downloads as before). */
int reg_dev_field_keep(reg_dev_field *f, const ffdp_volume *grid, const ffdp_slab *s, const float *u);
/* Before allocating `need` bytes for the next level: when the kept field leaves too little room,
 * it moves to a new host volume (*host) and the device copy is freed. FFDP_OK or an error. */
ffdp_status reg_dev_field_make_room(reg_dev_field *f, size_t need, ffdp_volume **host, ffdp_error *err);
/* The kept field onto the stored planes of slab s of grid, in dev (as reg_cuda_field_onto), then
 * freed. 0 or a CUDA error. */
int reg_dev_field_onto(reg_dev_field *f, const ffdp_volume *grid, const ffdp_slab *s, float *dev);
void reg_dev_field_free(reg_dev_field *f);
/* The same, falling back to the host resampler when scratch is too small; 0 or a CUDA error
 * (host allocation failures are reported as cudaErrorMemoryAllocation). */
int reg_cuda_field_upload(const ffdp_volume *v, const ffdp_volume *grid, const ffdp_slab *s, float *dev, float *scratch,
                          long long scratch_floats);
/* out = T·d + U∘(p + S·d), vox the voxel-space composition warp (B = identity). */
int reg_cuda_compose_fields(const ffdp_slab *s, const ffdp_warp *vox, const float *U, const float *d, const double T[3][3],
                            float *out);
/* w = inverse displacement of v (damped fixed point, as reg_invert_field). */
int reg_cuda_invert_field(const ffdp_slab *s, const ffdp_warp *vox, const float *v, int iters, float *w, float *tmp);
/* Loss of (A, B) over the whole grid of comm's ranks and its gradient w.r.t. B on the owned
 * planes of s, as reg_metric_ranks: mask (device, s's stored planes, or NULL) picks the voxels
 * scored, ntot is how many the whole grid scores (reg_cuda_mask_scored). A and B must hold
 * s's halo. Returns 0, a CUDA error, or -1 (err set, agreed by every rank). */
int reg_cuda_metric(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, int64_t ntot, const float *A,
                    const float *B, const uint8_t *mask, float *g, double *loss, ffdp_error *err);
/* The same with the gradient w.r.t. A as well (gA; NULL: as reg_cuda_metric): one fused pass
 * for CC, two calls otherwise (every metric is symmetric). */
int reg_cuda_metric2(const ffdp_comm *comm, const ffdp_metric_spec *m, const ffdp_slab *s, int64_t ntot, const float *A,
                     const float *B, const uint8_t *mask, float *gA, float *gB, double *loss, ffdp_error *err);
/* One process, CC: reg_cuda_metric2's kernels queued with the loss left in flight in pend
 * (ops_cuda.h: ffdp_cuda_pending_finish gives the same loss). Returns 0 or a CUDA error. */
int reg_cuda_cc2_begin(const ffdp_metric_spec *m, const ffdp_slab *s, int64_t ntot, const float *A, const float *B,
                       const uint8_t *mask, float *gA, float *gB, struct ffdp_cuda_pending *pend);
/* A CUDA level's loss read back while its step runs (one process, CC): the metric's kernels
 * are queued with the loss in flight (pend, for reg_cuda_cc2_begin), the step is queued, and
 * only then does the host wait for the loss; the previous step is waited for through an event
 * recorded after it instead of the whole stream. The same kernels in the same order: the same
 * bits. pend stays NULL (the waits as before) unless eligible and FFDP_ASYNC_LOSS is not "0",
 * or when its buffers cannot be made. */
typedef struct reg_cuda_deferred_loss {
  struct ffdp_cuda_pending *pend;
  void *stepped; /* cudaEvent_t */
} reg_cuda_deferred_loss;
void reg_cuda_deferred_open(reg_cuda_deferred_loss *d, int eligible);
/* The previous step done: its event (deferred) or the whole stream. 0 or a CUDA error. */
int reg_cuda_deferred_wait_step(const reg_cuda_deferred_loss *d);
/* After the iteration's step is queued: the event recorded and the loss the step started from
 * into *loss. rc: the iteration's status so far; returns it, or the first error of these. */
int reg_cuda_deferred_after_step(reg_cuda_deferred_loss *d, int rc, double *loss);
/* A loss still in flight (an early exit) waited for before its buffers go, then all freed;
 * returns rc or the first error. */
int reg_cuda_deferred_close(reg_cuda_deferred_loss *d, int rc);
#ifdef __cplusplus
}
#endif
#endif
