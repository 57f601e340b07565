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
/* Collective, at the start of a level of grid on the first nact of comm's ranks (deformable
 * halo `halo`): prev[k] = what this rank resamples field k from — its own kept planes when
 * every rank's are enough, else the whole field, gathered now into full[k] (replacing it).
 * Without a kept level, prev[k] = full[k]. */
ffdp_status reg_handover_next(reg_handover *h, const ffdp_comm *comm, const ffdp_volume *grid, int nact, int64_t halo,
                              int nf, ffdp_volume **full, const ffdp_volume **prev, ffdp_error *err);
/* Collective, at the end of a stage: the whole fields into full[k] (replacing them) if planes
 * are still kept — on every rank, or with to_root on rank 0 only (the others' full[k] become
 * NULL); h cleared either way. */
ffdp_status reg_handover_finish(reg_handover *h, const ffdp_comm *comm, ffdp_volume **full, int to_root, ffdp_error *err);
/* Collective, at the end of the last stage with result_shares: *u (replaced) becomes a field on
 * grid with this rank's share of its planes (ffdp_comm_share) resampled from the kept planes
 * (gathered first only when some rank's are not enough); the other planes are left untouched,
 * so they take no memory. Without kept planes, *u is the whole field on every rank, brought
 * onto grid. h cleared either way. */
ffdp_status reg_handover_share(reg_handover *h, const ffdp_comm *comm, const ffdp_volume *grid, ffdp_volume **u,
                               ffdp_error *err);
void reg_handover_clear(reg_handover *h);

#ifdef __cplusplus
}
#endif
#endif
