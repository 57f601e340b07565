/* A level image sampled by ranks that each hold only their own planes of it (issue 5: the
 * moving image is distributed too). A rank's sample points q = B·p + c + S·u(p) can land in
 * any rank's planes; two ways to serve them (ffdp_image_exchange):
 *   window: fetch the planes the points can reach (z of B·p + c at the slab's corners, widened
 *           by |S row z|·max|u|, plus a margin) from the ranks that hold them; refetch only when
 *           the reach outgrows the window. Bytes scale with the slab's surface and the warp.
 *   ring:   every rank's planes visit every rank once per sampling; each adds its part of the
 *           trilinear sums (ffdp_sample_part). Bytes scale with the volume: the baseline.
 * Both give the bits of sampling the whole image. The planes a rank holds are its even share
 * of the image's planes (ffdp_slab_split without halo); until pyramids are built from slabs
 * they are read from the rank's copy of the whole level image, and nothing else of it is. */
#ifndef FFDP_REG_IMAGE_SHARE_H
#define FFDP_REG_IMAGE_SHARE_H
#include "ffdp/register.h"
#include "reg/reg_internal.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct reg_share {
  const ffdp_comm *c;
  ffdp_image_exchange mode;    /* LOCAL also with one rank */
  const ffdp_volume *img;      /* the level image: planes own.zlo..zhi are read */
  ffdp_slab own;               /* the planes this rank holds (z0 = zlo, z1 = zhi) */
  float *win;                  /* window: planes ws.zlo..zhi */
  ffdp_slab ws;
  float *shard[2];             /* ring: the visiting shard and the next one */
  double bytes, seconds;       /* image traffic of this share (received from other ranks) */
} reg_share;

/* Planes [*a, *b) of an image of mnz planes that trilinear (or nearer) taps of the sample
 * points of store's planes reach when |u| <= bound (mm). */
void reg_window_reach(const ffdp_warp *w, const ffdp_slab *store, double bound, int64_t mnz, int64_t *a, int64_t *b);
/* [a, b) widened by the margin a window is fetched with (so that a growing warp rarely
 * refetches), within [0, mnz). */
void reg_window_margin(int64_t mnz, int64_t *a, int64_t *b);

/* Not collective; mode is LOCAL whatever is asked when c has one rank. */
void reg_share_open(reg_share *sh, const ffdp_comm *c, const ffdp_volume *img, ffdp_image_exchange mode);
/* Window and local modes: *M and *ms to sample img at store's points under w with the warp u
 * (3 components over store's planes; NULL for none). Collective in window mode: fetches when
 * any rank's reach outgrew its window (the others receive nothing). */
ffdp_status reg_share_window(reg_share *sh, const ffdp_warp *w, const ffdp_slab *store, const float *u, const float **M,
                             ffdp_slab *ms, ffdp_error *err);
/* Window mode on ranks, collective: planes [a, b) of the image into *buf (allocated here,
 * (b - a) planes; NULL when !need) from the ranks that hold them; every rank calls it, those
 * that need nothing with need = 0. */
ffdp_status reg_share_fetch(reg_share *sh, int need, int64_t a, int64_t b, float **buf, ffdp_error *err);
/* The same, but only the planes of [a, b) that other ranks hold: those below this rank's own
 * planes into *below (n_below planes) and those above into *above (allocated here, NULL when
 * none); the part in the rank's own planes is for the caller to read in place. */
ffdp_status reg_share_fetch_remote(reg_share *sh, int need, int64_t a, int64_t b, float **below, int64_t *n_below,
                                   float **above, int64_t *n_above, ffdp_error *err);
/* Ring mode: out = img(q(p)) and dq = its gradient w.r.t. q (3 per voxel; NULL to skip) on
 * store's owned planes, as every rank's planes visit once. Collective. */
ffdp_status reg_share_ring(reg_share *sh, const ffdp_warp *w, const ffdp_slab *store, const float *u, float *out,
                           float *dq, ffdp_error *err);
/* Add this share's traffic to a stage summary and free its buffers. */
void reg_share_close(reg_share *sh, ffdp_stage_summary *sum);
/* The exchange a stage on c uses (LOCAL for one rank). */
ffdp_image_exchange reg_share_mode(const ffdp_reg_options *opt, const ffdp_comm *c);

#ifdef __cplusplus
}
#endif
#endif
