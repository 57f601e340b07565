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

/* Collective: 1 on every rank iff every rank can bring its kept planes onto slab s of grid
 * without anyone else's. */
static int covered_everywhere(const reg_handover *h, const ffdp_comm *c, const ffdp_volume *grid, const ffdp_slab *s,
                              int all_active) {
  const int mine = h->all_active && all_active && h->part[0] &&
                   reg_slab_covers(h->grid_vox2world, h->nz, h->s.zlo, h->s.zhi, grid, s);
  return c->max(c, mine ? 0.0 : 1.0) == 0.0; /* every rank, or none */
}

/* Collective: the whole kept fields replace full[0..nf) on every rank (to_root: on rank 0, the
 * others' become NULL); h cleared. */
static ffdp_status gather(reg_handover *h, const ffdp_comm *c, ffdp_volume **full, int to_root, ffdp_error *err) {
  const int64_t dim[3] = {h->s.nx, h->s.ny, h->nz};
  ffdp_volume *whole[2] = {NULL, NULL};
  ffdp_status st = FFDP_OK;
  const int receives = !to_root || c->rank == 0;
  for (int k = 0; k < h->nf && !st && receives; k++) st = ffdp_volume_create(dim, 3, h->grid_vox2world, &whole[k], err);
  if (!(st = c->agree(c, st, err)))
    for (int k = 0; k < h->nf && !st; k++) {
      const float *mine = h->part[k] ? ffdp_volume_cdata(h->part[k]) : NULL;
      float *into = whole[k] ? ffdp_volume_data(whole[k]) : NULL;
      st = to_root ? c->gather_root(c, &h->s, mine, 3, into, err) : c->gather(c, &h->s, mine, 3, into, err);
    }
  if ((st = c->agree(c, st, err))) {
    for (int k = 0; k < h->nf; k++) ffdp_volume_free(whole[k]);
    return st;
  }
  for (int k = 0; k < h->nf; k++) ffdp_volume_free(full[k]), full[k] = whole[k];
  reg_handover_clear(h);
  return FFDP_OK;
}

ffdp_status reg_handover_next(reg_handover *h, const ffdp_comm *comm, const ffdp_volume *grid, int nact, int64_t halo,
                              int nf, ffdp_volume **full, const ffdp_volume **prev, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  for (int k = 0; k < nf; k++) prev[k] = full[k];
  if (!h->held) return FFDP_OK;
  const int64_t *d = grid->dim;
  const ffdp_slab s = c->rank < nact ? ffdp_slab_split(d[0], d[1], d[2], c->rank, nact, halo) : ffdp_slab_whole(d[0], d[1], d[2]);
  if (covered_everywhere(h, c, grid, &s, nact == c->size)) {
    for (int k = 0; k < nf; k++) prev[k] = h->part[k];
    reg_trace("level %lldx%lldx%lld: fields carried on each rank's slab", (long long)d[0], (long long)d[1], (long long)d[2]);
    return FFDP_OK;
  }
  ffdp_status st = gather(h, c, full, 0, err);
  for (int k = 0; k < nf; k++) prev[k] = full[k];
  reg_trace("level %lldx%lldx%lld: fields gathered", (long long)d[0], (long long)d[1], (long long)d[2]);
  return st;
}

ffdp_status reg_handover_finish(reg_handover *h, const ffdp_comm *comm, ffdp_volume **full, int to_root, ffdp_error *err) {
  ffdp_status st = h->held ? gather(h, ffdp_comm_or_single(comm), full, to_root, err) : FFDP_OK;
  reg_handover_clear(h);
  return st;
}

ffdp_status reg_handover_share(reg_handover *h, const ffdp_comm *comm, const ffdp_volume *grid, ffdp_volume **u,
                               ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  const int64_t *d = grid->dim;
  ffdp_status st = FFDP_OK;
  if (!h->held) {
    reg_handover_clear(h);
    return reg_field_to_grid(u, grid, err);
  }
  const ffdp_slab s = ffdp_slab_split(d[0], d[1], d[2], c->rank, c->size, 0); /* = ffdp_comm_share */
  const ffdp_volume *from = h->part[0];
  if (!covered_everywhere(h, c, grid, &s, 1)) {
    st = gather(h, c, u, 0, err); /* the whole last-level field on every rank */
    from = *u;
    reg_trace("final field: gathered for the shares");
  }
  ffdp_volume *out = NULL;
  if (!st) st = ffdp_volume_create(d, 3, grid->vox2world, &out, err); /* pages of other planes never touched */
  if ((st = c->agree(c, st, err))) {
    reg_handover_clear(h);
    return st;
  }
  if (s.z1 > s.z0) reg_field_onto_slab(from, grid, &s, out->data + s.zlo * ffdp_slab_plane(&s) * 3);
  reg_handover_clear(h);
  ffdp_volume_free(*u);
  *u = out;
  return FFDP_OK;
}
