/* CUDA operators: same semantics and slab layout as the CPU operators in ops.h; pointers
 * are device pointers, work is queued on `stream` (a cudaStream_t passed as void*). */
#ifndef FFDP_OPS_CUDA_H
#define FFDP_OPS_CUDA_H
#include "ops/ops.h"
#include "ops/code16.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Returns 0 on success or a CUDA error code. */

/* Once per device, before the operators: keep up to 64 MiB of freed stream-ordered memory
 * mapped. The operators allocate their small per-call scratch (loss partials, histograms) with
 * cudaMallocAsync; with the pool's default release threshold (0) every synchronization hands
 * that memory back and the next call maps it again, which costs more than a small kernel. */
int ffdp_cuda_ops_setup(int device);

int ffdp_cuda_sample_fwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                         const float *M, int ncomp, float *out, void *stream);
/* gB_dev: 12 doubles on the device, overwritten (may be NULL); gu may be NULL. */
int ffdp_cuda_sample_bwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                         const float *M, int ncomp, const float *gout, float *gu, double *gB_dev, void *stream);

/* The same with the affine gradient per owned plane: planes_dev receives (z1 - z0) x 12
 * doubles, each plane's sum independent of the slab around it, so that folding them in plane
 * order gives the same bits on any number of ranks. */
int ffdp_cuda_sample_bwd_planes(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                const float *M, int ncomp, const float *gout, float *gu, double *planes_dev,
                                void *stream);

/* The samplers reading a scalar image stored as 16-bit codes (code16.h), for the deformable
 * stages (no affine gradient): the same results as the float samplers given the decoded image. */
int ffdp_cuda_sample_fwd_u16(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                             const uint16_t *M, ffdp_code16 k, float *out, void *stream);
int ffdp_cuda_sample_bwd_u16(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                             const uint16_t *M, ffdp_code16 k, const float *gout, float *gu, void *stream);
/* n values into codes and codes into values on the device: the host's codes and values. */
int ffdp_cuda_encode16(long long n, const float *src, ffdp_code16 k, uint16_t *dst, void *stream);
int ffdp_cuda_decode16(long long n, const uint16_t *src, ffdp_code16 k, float *dst, void *stream);

/* MSE: loss (times norm) to *loss (host), gradient on the device (may be NULL). */
int ffdp_cuda_mse(const ffdp_slab *s, const float *F, const float *M, const uint8_t *mask, double norm, float *gM,
                  double *loss, void *stream);

/* MI. The joint histogram is exact fixed point (identical for any launch shape or rank
 * split) and the log-ratio table is made from it on the device, so that a GPU's MI, loss and
 * gradient are the same bits whether its histogram was its own (ffdp_cuda_mi) or the sum of
 * the ranks' (ffdp_cuda_mi_hist on each rank, summed, then ffdp_cuda_mi_hist_grad).
 * loss = -MI; the gradient (norm = 1/N, N the histogram's mass) to gM if non-NULL. */
#define FFDP_CUDA_MI_MAX_BINS 64
int ffdp_cuda_mi_hist(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M, const uint8_t *mask,
                      double *hist_host, void *stream);
int ffdp_cuda_mi_hist_grad(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                           const uint8_t *mask, const double *hist_host, float *gM, double *loss, void *stream);
int ffdp_cuda_mi(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M, const uint8_t *mask,
                 float *gM, double *loss, void *stream);

/* Separable Gaussian (as ffdp_blur_f32): reads the halo, writes owned planes of out; the
 * halo planes of out and all of tmp (same layout) are scratch. tmp may be `in` itself (the
 * input is dead after the first pass), which saves a field. */
int ffdp_cuda_blur(const ffdp_slab *s, const float *in, int ncomp, const double sigma[3], float *out, float *tmp,
                   void *stream);

/* ffdp_cuda_blur of a scalar image (ncomp 1) evaluated only at the points of a grid: columns
 * xs[0..nxs) x rows ys[0..nys) x planes zs[0..nzs) (device arrays; zs ascending from zfirst to
 * zlast, within s's owned planes), with ffdp_cuda_blur's bits there; only those points of out
 * (ffdp_cuda_blur's layout) are written. scratch: ffdp_cuda_blur1_at_scratch floats. For
 * resampling onto a coarser grid, which reads a few points per coarse voxel. */
long long ffdp_cuda_blur1_at_scratch(const ffdp_slab *s, const double sigma[3], int nxs, int nys, long long zfirst,
                                     long long zlast);
int ffdp_cuda_blur1_at(const ffdp_slab *s, const float *in, const double sigma[3], const int *xs, int nxs, const int *ys,
                       int nys, const long long *zs, int nzs, long long zfirst, long long zlast, float *out,
                       float *scratch, void *stream);

/* Fused LNCC forward + backward (as ffdp_lncc_f32). loss to *loss (host). */
int ffdp_cuda_lncc(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M, const uint8_t *mask,
                   double norm, float *gM, double *loss, void *stream);
/* The same with the gradient w.r.t. F as well (gF, when non-NULL; gM then required): the loss
 * is symmetric, and one pass gives what two calls with F and M swapped would. */
int ffdp_cuda_lncc2(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M, const uint8_t *mask,
                    double norm, float *gF, float *gM, double *loss, void *stream);

/* The same with the loss left on its way to the host: the kernels and the copy of the loss's
 * per-block partials are queued on the stream behind an event and nothing waits, so the
 * caller can queue more work before it needs the loss. ffdp_cuda_pending_finish waits for that
 * copy and sums the partials in block order: the bits of ffdp_cuda_lncc2's loss. A pending
 * sum is made once for a loop of calls (its buffers grow to the largest grid) and serves one
 * call at a time. */
typedef struct ffdp_cuda_pending ffdp_cuda_pending;
int ffdp_cuda_pending_create(ffdp_cuda_pending **p);
int ffdp_cuda_pending_finish(ffdp_cuda_pending *p, double *sum);
void ffdp_cuda_pending_destroy(ffdp_cuda_pending *p);
int ffdp_cuda_lncc2_async(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M,
                          const uint8_t *mask, double norm, float *gF, float *gM, ffdp_cuda_pending *pend,
                          void *stream);

/* out = U(q(p)) + T·v(p), as ffdp_compose_fwd_f32, in one pass (v read once). out may be v
 * itself: each voxel reads v only at itself, before writing. */
int ffdp_cuda_compose_fwd(const ffdp_warp *w, const double T[3][3], const ffdp_slab *fs, const float *v,
                          const ffdp_slab *us, const float *U, float *out, void *stream);

/* Deformable-update helpers: largest |g| over n 3-vectors (scratch: 1024 floats on the
 * device), fused normalize + Adam over n values (d in, update out; moments m, v stored as
 * float, or as bf16 when bf16_state), y = a·y + b·x over n floats, and y = a·y + T·x over n
 * 3-vectors. */
int ffdp_cuda_maxnorm3(long long n, const float *g, float *scratch, double *out, void *stream);
int ffdp_cuda_adam_step(long long n, float *d, void *m, void *v, int bf16_state, double inv_mx, int t, double step,
                        void *stream);
/* The same two kept on the device (no host round trip): maxnorm3_dev leaves the largest norm
 * in scratch[1024] and its inverse (0 when the field is zero) in scratch[1025] (scratch: 1026
 * floats); adam_step_dev reads that inverse, and gives d = 0 with the moments untouched when
 * it is 0. */
int ffdp_cuda_maxnorm3_dev(long long n, const float *g, float *scratch, void *stream);
int ffdp_cuda_adam_step_dev(long long n, float *d, void *m, void *v, int bf16_state, const float *inv_dev, int t,
                            double step, void *stream);
/* The step and the composition of one deformable update in a single pass: per voxel the Adam
 * step d of the smoothed gradient `grad` (normalized by inv_dev as adam_step_dev; moments
 * updated, d never stored), then out = d + U(q(p)) with q from w and d (compose_fwd, T = I).
 * The field's halo planes around fs must be stored in U (as compose_fwd with us = fs). */
int ffdp_cuda_compose_adam(const ffdp_warp *w, const ffdp_slab *fs, const float *grad, void *m, void *v, int bf16_state,
                           const float *inv_dev, int t, double step, const float *U, float *out, void *stream);
/* Adam with its moments on the coarse grid of slab s (points at voxels (2i, 2j, 2k): nx/2 + 1
 * by ny/2 + 1 points per plane, planes [z0/2, z1/2 + 1); reg/coarse_moments.c is the CPU
 * operator, the same bits): d holds the smoothed gradient on s's stored planes, valid two
 * planes past the owned ones within the grid, normalized by *inv_dev; on return d's owned
 * planes hold the step and m, v are updated. tb: a transient of 3 floats per coarse point.
 * inv_dev == 0: d = 0, the moments untouched. */
int ffdp_cuda_coarse_adam(const ffdp_slab *s, float *d, void *m, void *v, int bf16_state, float *tb,
                          const float *inv_dev, int t, double step, void *stream);
/* Its first and last launches on their own (the restriction into tb; the moments' update from
 * tb), for ffdp_cuda_compose_coarse_adam, which takes the step in between. */
int ffdp_cuda_coarse_restrict(const ffdp_slab *s, const float *d, float *tb, const float *inv_dev, void *stream);
int ffdp_cuda_coarse_update(const ffdp_slab *s, void *m, void *v, int bf16_state, float *tb, const float *inv_dev,
                            void *stream);
/* The coarse step and the composition of one deformable update in one pass, as
 * ffdp_cuda_compose_adam does for moments on every voxel: restriction, then per voxel the step
 * of the smoothed gradient `grad` from the coarse moments (never stored) and out = d + U(q(p)),
 * then the moments' update. The same bits as ffdp_cuda_coarse_adam followed by compose_fwd
 * (T = I); out may be grad. */
int ffdp_cuda_compose_coarse_adam(const ffdp_warp *w, const ffdp_slab *fs, const float *grad, void *m, void *v,
                                  int bf16_state, float *tb, const float *inv_dev, int t, double step, const float *U,
                                  float *out, void *stream);
/* ffdp_cuda_blur of a 3-vector field that also leaves, like maxnorm3_dev, the largest norm of
 * the owned output in scratch[1024] and its inverse in scratch[1025] (computed in the blur's
 * epilogue where the fused blur runs: one pass fewer over the field). */
int ffdp_cuda_blur_maxnorm3(const ffdp_slab *s, const float *in, const double sigma[3], float *out, float *tmp,
                            float *scratch, void *stream);
/* Isotropic blur of a 3-vector field in place on the owned planes of s (its halo planes are
 * read, not written), xy-filtered planes staged in `ring` (ring_planes planes of the slab's
 * plane size, as reg_blur_ring_planes gives); with scratch, the largest norm of the
 * result as ffdp_cuda_blur_maxnorm3. The same bits as ffdp_cuda_blur. */
int ffdp_cuda_blur_inplace3(const ffdp_slab *s, float *field, double sigma, float *ring, long long ring_planes,
                            float *scratch, void *stream);
int ffdp_cuda_axpby(long long n, float *y, double a, const float *x, double b, void *stream);
int ffdp_cuda_linmap3(long long n, float *y, double a, const float *x, const double T[3][3], void *stream);

#ifdef __cplusplus
}
#endif
#endif
