/* CPU operators on a shard of the fixed grid (DESIGN.md "Operators" and "Sharding").
 *
 * Every operator is written once in <name>_impl.h and compiled for float (the production
 * path, suffix _f32) and double (suffix _f64, used by the finite-difference gradient
 * tests so they exercise the same code). Reductions go through per-plane partial sums
 * added in plane order: results do not depend on the thread count, and ranks can add
 * their planes in the same global order.
 *
 * Layout of every array on the fixed grid: planes [zlo, zhi) of an nx*ny*nz grid, x
 * fastest, `ncomp` values per voxel interleaved. Operators write only the owned planes
 * [z0, z1) of their outputs and read inputs in [zlo, zhi). */
#ifndef FFDP_OPS_H
#define FFDP_OPS_H
#include <stddef.h>
#include <stdint.h>
#include "ffdp/geometry.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct ffdp_slab {
  int64_t nx, ny, nz; /* global grid */
  int64_t z0, z1;     /* owned planes */
  int64_t zlo, zhi;   /* stored planes, halo included: zlo <= z0 < z1 <= zhi */
} ffdp_slab;

static inline ffdp_slab ffdp_slab_whole(int64_t nx, int64_t ny, int64_t nz) {
  ffdp_slab s = {nx, ny, nz, 0, nz, 0, nz};
  return s;
}
/* Rank `rank` of `nranks` owns planes [z0, z1) of an nz-plane grid (sizes differ by at most one
 * plane) and stores `halo` more planes on each side where the grid has them. */
static inline ffdp_slab ffdp_slab_split(int64_t nx, int64_t ny, int64_t nz, int rank, int nranks, int64_t halo) {
  ffdp_slab s = {nx, ny, nz, 0, 0, 0, 0};
  s.z0 = nz * rank / nranks;
  s.z1 = nz * (rank + 1) / nranks;
  s.zlo = s.z0 - halo > 0 ? s.z0 - halo : 0;
  s.zhi = s.z1 + halo < nz ? s.z1 + halo : nz;
  return s;
}
static inline int64_t ffdp_slab_plane(const ffdp_slab *s) { return s->nx * s->ny; }
static inline int64_t ffdp_slab_stored(const ffdp_slab *s) { return s->nx * s->ny * (s->zhi - s->zlo); }
/* Index of global voxel (x,y,z) in a slab array. */
static inline int64_t ffdp_slab_index(const ffdp_slab *s, int64_t x, int64_t y, int64_t z) {
  return ((z - s->zlo) * s->ny + y) * s->nx + x;
}

typedef enum { FFDP_INTERP_LINEAR = 0, FFDP_INTERP_NEAREST = 1 } ffdp_interp;
typedef enum { FFDP_PAD_ZERO = 0, FFDP_PAD_BORDER = 1 } ffdp_pad;

/* The composite warp folded into voxel units (DESIGN.md "Coordinates"): fixed voxel p is
 * read from the moving image at q = B·[p;1] + S·u(p), u in world mm. */
typedef struct ffdp_warp {
  double B[3][4];
  double S[3][3];
  ffdp_interp interp;
  ffdp_pad pad;
} ffdp_warp;

typedef enum { FFDP_WINDOW_BOX = 0, FFDP_WINDOW_GAUSS = 1 } ffdp_window_kind;
/* MI's Parzen windows. BSPLINE: the cubic B-spline for both images; GAUSS: a truncated Gaussian
 * for both; MATTES: the fixed image binned by a box (its value's nearest bin, weight 1) and the
 * moving image by the cubic B-spline, as ITK's Mattes metric (ANTs' MI): the fixed image never
 * moves, so its window need not be smooth, and each voxel adds 4 products instead of 16. */
typedef enum { FFDP_PARZEN_BSPLINE = 0, FFDP_PARZEN_GAUSS = 1, FFDP_PARZEN_MATTES = 2 } ffdp_parzen_kind;

typedef struct ffdp_lncc_params {
  int window;            /* odd window size k */
  ffdp_window_kind kind;
  double eps;            /* added to var_I*var_J */
} ffdp_lncc_params;

typedef struct ffdp_mi_params {
  int bins;              /* 32 by default */
  ffdp_parzen_kind kind;
  double fmin, fmax;     /* intensity range mapped onto the bins (global, not per shard) */
  double mmin, mmax;
} ffdp_mi_params;

/* Largest window radius ffdp supports: operators keep rings of 2r+1 planes per thread. */
#define FFDP_MAX_RADIUS 64

/* Halo (planes on each side) each operator reads. */
int64_t ffdp_lncc_halo(const ffdp_lncc_params *p); /* forward + backward: 2r */
int64_t ffdp_blur_radius(double sigma);             /* ceil(3 sigma) */

/* ffdp_blur_f32 of a scalar image evaluated only at the points of a grid: columns xs[0..nxs) x
 * rows ys[0..nys) x planes zs[0..nzs) (ascending, within s's owned planes), the same bits there;
 * only those points of out (ffdp_blur_f32's layout) are written. For resampling onto a coarser
 * grid, which reads a few points per coarse voxel (blur_at.cu is the CUDA operator). Returns 0,
 * or -1 when its scratch cannot be allocated. */
int ffdp_blur1_at_f32(const ffdp_slab *s, const float *in, const double sigma[3], const int *xs, int nxs, const int *ys,
                      int nys, const int64_t *zs, int nzs, float *out);

/* Partitions [a,b) into per-thread chunks: thread t of T gets [*lo, *hi). */
static inline void ffdp_chunk(int64_t a, int64_t b, int t, int T, int64_t *lo, int64_t *hi) {
  int64_t n = b - a;
  *lo = a + n * t / T;
  *hi = a + n * (t + 1) / T;
}

#define FFDP_OPS_DECLARE(REAL, SFX)                                                                      \
  /* out(p) = M(q(p)), ncomp channels of M; u may be NULL (affine only). mslab describes M. */           \
  void ffdp_sample_fwd_##SFX(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,\
                             const REAL *M, int ncomp, REAL *out);                                       \
  /* Backward of sample: gu(p) = S^T Σc g_c ∇M_c (world-mm gradient; NULL to skip); gB 3x4 reduced     \
   * gradient w.r.t. B (NULL to skip; overwritten); gM += scatter into M's layout (NULL to skip). */     \
  void ffdp_sample_bwd_##SFX(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms, \
                             const REAL *M, int ncomp, const REAL *gout, REAL *gu, double gB[3][4],      \
                             REAL *gM);                                                                  \
  /* The same with the affine gradient left per owned plane: part[(z - z0) * 12 + 4a + b]        \
   * (may be NULL), so that ranks can add planes in one global order. */                               \
  void ffdp_sample_bwd_planes_##SFX(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u,             \
                                    const ffdp_slab *ms, const REAL *M, int ncomp, const REAL *gout,    \
                                    REAL *gu, double *part, REAL *gM);                                   \
  /* Ring sampling (a shard of M at a time): out += the part of M(q(p)) (one channel) from taps on  \
   * the stored planes of ms, dq += that part of its gradient w.r.t. q (voxel units, 3 per voxel);  \
   * taps on other planes count as zero. Summed over shards that partition M's planes, out and dq  \
   * are bit-identical to ffdp_sample_fwd and to the gradient ffdp_sample_bwd forms. */               \
  void ffdp_sample_part_##SFX(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,\
                              const REAL *M, REAL *out, REAL *dq);                                       \
  /* gu(p) = S^T gout(p) dq(p) on the owned voxels of fs: ffdp_sample_bwd's gu from dq. */           \
  void ffdp_sample_bwd_dq_##SFX(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u, const ffdp_slab *ms,\
                                const REAL *gout, const REAL *dq, REAL *gu);                            \
  /* Label resampling: the label whose trilinear indicator weight is largest (per-label             \
   * interpolation restricted to the 8 corner labels, which is exact). */                                \
  void ffdp_sample_labels_##SFX(const ffdp_warp *w, const ffdp_slab *fs, const REAL *u,                  \
                                const ffdp_slab *ms, const REAL *M, REAL *out);                          \
  /* out(p) = U(q(p)) + T·v(p): composition of displacement fields, U (3 comps, world mm) on        \
   * grid ms, v on fs. Backward gives gv (S^T ∇U^T g + T^T g) and optionally gU (scatter, +=). */        \
  void ffdp_compose_fwd_##SFX(const ffdp_warp *w, const double T[3][3], const ffdp_slab *fs,            \
                              const REAL *v, const ffdp_slab *us, const REAL *U, REAL *out);             \
  /* d(p) <- d(p) - (d(p) + U(q(p))) / 2 in place, q(p) = B·[p;1] + S·d(p): one damped           \
   * fixed-point step of inverting x -> x + U(x) (reg_invert_field), the values compose_fwd (T = 0) \
   * and that update give in two passes, without the composed field. */                             \
  void ffdp_compose_damped_##SFX(const ffdp_warp *w, const ffdp_slab *fs, REAL *d, const ffdp_slab *us,  \
                                 const REAL *U);                                                         \
  void ffdp_compose_bwd_##SFX(const ffdp_warp *w, const double T[3][3], const ffdp_slab *fs,            \
                              const REAL *v, const ffdp_slab *us, const REAL *U, const REAL *gout,       \
                              REAL *gv, REAL *gU);                                                       \
  /* Sum over owned voxels of (F-M)^2 (mask may be NULL); gM = norm * 2 (M-F) if non-NULL. */            \
  double ffdp_mse_##SFX(const ffdp_slab *s, const REAL *F, const REAL *M, const uint8_t *mask,         \
                        double norm, REAL *gM);                                                          \
  /* Per owned plane: part[z - z0] = Σ (F-M)^2 of the plane (not yet times norm). */                  \
  void ffdp_mse_planes_##SFX(const ffdp_slab *s, const REAL *F, const REAL *M, const uint8_t *mask,    \
                             double norm, REAL *gM, double *part);                                       \
  /* LNCC: returns Σ over owned voxels of -cc (times mask); gM = norm * d/dM of that sum.            \
   * F, M, mask need halo ffdp_lncc_halo(). gM may be NULL (forward only, halo r suffices). */           \
  double ffdp_lncc_##SFX(const ffdp_lncc_params *p, const ffdp_slab *s, const REAL *F, const REAL *M,   \
                         const uint8_t *mask, double norm, REAL *gM);                                    \
  /* Per owned plane: part[z - z0] = the plane's share of the returned sum (times norm). */          \
  void ffdp_lncc_planes_##SFX(const ffdp_lncc_params *p, const ffdp_slab *s, const REAL *F,             \
                              const REAL *M, const uint8_t *mask, double norm, REAL *gM, double *part);  \
  /* Both gradients in one pass (symmetric uses such as SyN): gF the bits ffdp_lncc_planes gives   \
   * with F and M swapped, gM those it gives as called; either may be NULL. */                        \
  void ffdp_lncc_planes2_##SFX(const ffdp_lncc_params *p, const ffdp_slab *s, const REAL *F,            \
                               const REAL *M, const uint8_t *mask, double norm, REAL *gF, REAL *gM,      \
                               double *part);                                                            \
  /* MI in three steps so that the histogram can be all-reduced between them. */                         \
  void ffdp_mi_hist_##SFX(const ffdp_mi_params *p, const ffdp_slab *s, const REAL *F, const REAL *M,    \
                          const uint8_t *mask, double *hist);                                            \
  /* The histogram of each owned plane: part[(z - z0) * bins * bins + k] (overwritten). */          \
  void ffdp_mi_hist_planes_##SFX(const ffdp_mi_params *p, const ffdp_slab *s, const REAL *F,            \
                                 const REAL *M, const uint8_t *mask, double *part);                     \
  /* From a bins*bins histogram of total weight `count` -> returns MI; table = log(pij/(pi pj)). */      \
  double ffdp_mi_table_##SFX(const ffdp_mi_params *p, const double *hist, double *table);               \
  void ffdp_mi_grad_##SFX(const ffdp_mi_params *p, const ffdp_slab *s, const REAL *F, const REAL *M,    \
                          const uint8_t *mask, const double *table, double norm, REAL *gM);              \
  /* Separable Gaussian (sigma in voxels per axis, 0 = none), zero padding; reads a halo of           \
   * ffdp_blur_radius(sigma[2]) planes, writes owned planes of out (out != in). */                      \
  void ffdp_blur_##SFX(const ffdp_slab *s, const REAL *in, int ncomp, const double sigma[3], REAL *out);

FFDP_OPS_DECLARE(float, f32)
FFDP_OPS_DECLARE(double, f64)

/* Fold φ(x) = A·x + t (+ u(x)) with fixed and moving voxel-to-world matrices into the
 * voxel-space warp: B = Wm^-1·[A t]·Wf, S = linear part of Wm^-1. `aff` is a 4x4 affine.
 * Returns 0 when Wm is singular. */
int ffdp_warp_fold(ffdp_mat4 aff, ffdp_mat4 wf, ffdp_mat4 wm, ffdp_interp interp, ffdp_pad pad, ffdp_warp *w);
/* Chain rule of the fold: gradient w.r.t. B (3x4) -> gradient w.r.t. [A t] (3x4 world). */
void ffdp_warp_affine_grad(const double gB[3][4], ffdp_mat4 wf, ffdp_mat4 wm, double gA[3][4]);

/* One-rank conveniences used by the pipeline (MI in one call; counts). */
double ffdp_mi_f32(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                   const uint8_t *mask, float *gM);
double ffdp_mi_f64(const ffdp_mi_params *p, const ffdp_slab *s, const double *F, const double *M,
                   const uint8_t *mask, double *gM);
int64_t ffdp_mask_count(const ffdp_slab *s, const uint8_t *mask);
#ifdef __cplusplus
}
#endif
#endif
