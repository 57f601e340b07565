/* The planes of a sampled level image that one rank's sample points can reach, kept on its
 * GPU instead of the whole image (issue 5: "fetch only the bounding box that a rank's sample
 * points can reach"). The sample points of the rank's stored planes p are q = B·p + c + S·u(p);
 * their z in the image lies within the z-range of B·p + c over the slab's corners widened by
 * |S row z|·max|u|. The window holds that range plus a margin; after every step the rank
 * measures max|u| over its stored planes (a local reduction, no collective) and fetches a
 * wider window only when the reach has outgrown it. The samplers read the window through a
 * slab descriptor (zlo = first plane held), so a sample gives the same bits as from the
 * whole image. Planes come from the ranks that hold them (image_share.h), or with the local
 * exchange from the rank's host copy of the level image. */
#ifndef FFDP_REG_WINDOW_CUDA_H
#define FFDP_REG_WINDOW_CUDA_H
#include <stdint.h>
#include "ffdp/volume.h"
#include "ops/ops.h"
#include "reg/image_share.h"
#include "reg/step_cuda.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct reg_window {
  void *dev;           /* planes [ms.zlo, ms.zhi) of the image, on the device: floats, or codes */
  int coded;           /* 16-bit codes (code16.h) with k */
  ffdp_code16 k;
  ffdp_slab ms;        /* the image's descriptor for the samplers */
  double bytes;        /* host-to-device bytes fetched so far */
  int fetches;
  int whole;           /* the window is the whole image (dev is then not owned) */
} reg_window;

/* Window of the share's image for points whose |u| <= bound: fetched with a margin, from the
 * ranks holding the planes (window exchange on ranks: collective) or from the rank's copy of the
 * level image, and kept as 16-bit codes when k is not NULL (encoded on the host: half the
 * bytes cross to the device). whole_dev (device copy of the whole image in the same storage,
 * or NULL) is lent instead when given.
 * rc: a CUDA error this rank already has (every rank still takes part, then all fail). Returns
 * 0, a CUDA error code, or -1 with err set on every rank. */
int reg_window_open(reg_window *W, reg_share *sh, const ffdp_warp *w, const ffdp_slab *store, double bound,
                    const void *whole_dev, const ffdp_code16 *k, int rc, ffdp_error *err);
/* The window's image for the samplers. */
static inline reg_dev_image reg_window_image(const reg_window *W) {
  reg_dev_image im;
  im.d = W->dev, im.coded = W->coded, im.k = W->k;
  return im;
}
/* After a step: u (stored planes of store, 3 components) is measured (scratch: REG_RED_FLOATS
 * floats on the device) and the window widened if its reach outgrew it; collective like open. */
int reg_window_follow(reg_window *W, reg_share *sh, const ffdp_warp *w, const ffdp_slab *store, const float *u,
                      float *scratch, int rc, ffdp_error *err);
/* Largest |u| over the stored planes of store (waits for the device). */
int reg_window_bound(const ffdp_slab *store, const float *u, float *scratch, double *bound);
void reg_window_close(reg_window *W);

#ifdef __cplusplus
}
#endif
#endif
