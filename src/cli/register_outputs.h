/* Writing the outputs of `ffdp register` on every rank (register_outputs.c). */
#ifndef FFDP_CLI_REGISTER_OUTPUTS_H
#define FFDP_CLI_REGISTER_OUTPUTS_H
#include "ffdp/ffdp.h"

typedef struct reg_outputs {
  const ffdp_comm *comm;       /* the ranks that registered (NULL: this process) */
  const char *fixed, *moving;  /* the input paths: planes are read again where needed */
  int sharded;                 /* the ranks' images hold only their shares of planes */
  int remapped;                /* winsorized or histogram-matched: intensities not restorable */
  double flo, fhi, mlo, mhi;   /* the fixed and moving images' min and max (what they were scaled from, unless remapped) */
  const ffdp_reg_result *res;  /* warps with this rank's share of planes at least */
  ffdp_mat4 A;
  int64_t fdim[3];             /* the fixed grid */
  ffdp_mat4 fw;
  const char *warped, *affine_txt, *warp, *inverse; /* output paths */
  double ncc, fold;                                 /* out: global NCC fixed vs Warped, folding fraction */
  double t_fold, t_warped, t_transforms;            /* out: seconds, in turn (they add up to the outputs' wall time) */
  double t_transforms_all;                          /* out: the transforms' own time (one process: made while
                                                       folding and Warped are, t_transforms being what is left) */
} reg_outputs;

/* Collective: every output written, each rank its planes; F and M are this rank's normalized
 * images (whole, or shares when sharded), freed (set to NULL) where no longer needed. A failure
 * on any rank is every rank's, with its message. */
ffdp_status reg_write_outputs(reg_outputs *o, ffdp_volume **F, ffdp_volume **M, ffdp_error *err);
#endif
