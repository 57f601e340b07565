/* What a rank carries from one pyramid level to the next (handover.c). */
#ifndef FFDP_REG_HANDOVER_H
#define FFDP_REG_HANDOVER_H
#include "reg/reg_internal.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct reg_handover {
  int held;                /* a level has been kept */
  int nf;                  /* fields (1: greedy, 2: SyN) */
  ffdp_volume *part[2];    /* this rank's stored planes of each, as volumes (NULL: idle rank) */
  ffdp_slab s;             /* their slab of the previous level's grid */
  int64_t nz;              /* planes of that grid */
  ffdp_mat4 grid_vox2world;
  int all_active;          /* every rank took part in that level */
} reg_handover;

/* Keep this rank's stored planes (nf fields of 3 components, one after the other; NULL on an
 * idle rank) of slab s of grid. */
ffdp_status reg_handover_keep(reg_handover *h, int nf, const float *stored, const ffdp_slab *s, const ffdp_volume *grid,
                              int all_active, ffdp_error *err);
/* Collective: 1 on every rank iff every rank can bring its kept planes onto slab s of grid
 * (the next level) without anyone else's. */
int reg_handover_local(const reg_handover *h, const ffdp_comm *comm, const ffdp_volume *grid, const ffdp_slab *s,
                       int all_active);
/* Collective: the whole kept fields on every rank (full[0..nf)), h cleared. */
ffdp_status reg_handover_gather(reg_handover *h, const ffdp_comm *comm, ffdp_volume **full, ffdp_error *err);
void reg_handover_clear(reg_handover *h);

#ifdef __cplusplus
}
#endif
#endif
