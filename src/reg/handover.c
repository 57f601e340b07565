/* Carrying deformable fields from one pyramid level to the next over ranks. Each rank keeps
 * its own stored planes; when every rank's next slab reads only planes it already holds
 * (the usual case: levels double in size, slabs keep their share, halos are wider than the
 * interpolation needs), nothing crosses ranks. Otherwise (or at the end of a stage) the
 * planes are gathered into whole fields on every rank, as before. */
#include "reg/handover.h"
#include "core/comm_internal.h"
#include "core/err.h"
#include <stdlib.h>
#include <string.h>

void reg_handover_clear(reg_handover *h) {
  for (int k = 0; k < 2; k++) ffdp_volume_free(h->part[k]);
  memset(h, 0, sizeof *h);
}

ffdp_status reg_handover_keep(reg_handover *h, int nf, const float *stored, const ffdp_slab *s, const ffdp_volume *grid,
                              int all_active, ffdp_error *err) {
  reg_handover_clear(h);
  h->nf = nf, h->s = *s, h->nz = grid->dim[2], h->all_active = all_active, h->held = 1;
  const int64_t n = ffdp_slab_stored(s);
  for (int k = 0; k < nf && stored; k++) {
    ffdp_status st = reg_slab_volume(stored + 3 * n * k, s, grid, &h->part[k], err);
    if (st) return st;
  }
  if (!stored) h->s.z0 = h->s.z1 = h->s.zlo = h->s.zhi = 0; /* an idle rank holds no planes */
  h->grid_vox2world = grid->vox2world;
  return FFDP_OK;
}

int reg_handover_local(const reg_handover *h, const ffdp_comm *comm, const ffdp_volume *grid, const ffdp_slab *s,
                       int all_active) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  if (!h->held) return 0;
  const int mine = h->all_active && all_active && h->part[0] && reg_slab_covers(h->part[0], h->s.zlo, h->nz, grid, s);
  return c->max(c, mine ? 0.0 : 1.0) == 0.0; /* every rank, or none */
}

ffdp_status reg_handover_gather(reg_handover *h, const ffdp_comm *comm, ffdp_volume **full, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  const int64_t dim[3] = {h->s.nx, h->s.ny, h->nz};
  ffdp_status st = FFDP_OK;
  for (int k = 0; k < h->nf; k++) full[k] = NULL;
  for (int k = 0; k < h->nf && !st; k++) st = ffdp_volume_create(dim, 3, h->grid_vox2world, &full[k], err);
  if ((st = c->agree(c, st, err))) goto fail;
  for (int k = 0; k < h->nf && !st; k++)
    st = c->gather(c, &h->s, h->part[k] ? ffdp_volume_cdata(h->part[k]) : NULL, 3, ffdp_volume_data(full[k]), err);
  if ((st = c->agree(c, st, err))) goto fail;
  reg_handover_clear(h);
  return FFDP_OK;
fail:
  for (int k = 0; k < h->nf; k++) ffdp_volume_free(full[k]), full[k] = NULL;
  return st;
}
