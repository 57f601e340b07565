/* Distribution over MPI ranks: slabs of the fixed grid along z (DESIGN.md "Sharding").
 * Communicators are values passed in; nothing here keeps global state. */
#ifndef FFDP_DIST_H
#define FFDP_DIST_H
#include <mpi.h>
#include "ffdp/error.h"
#include "ops/ops.h"


/* Fill the halo planes of `data` (ncomp floats per voxel, laid out over [zlo, zhi)) from the
 * neighbouring ranks' owned planes. Every rank passes its own slab; a neighbour that owns fewer
 * planes than the halo is an error (gather onto fewer ranks instead). */
ffdp_status ffdp_halo_exchange(MPI_Comm comm, const ffdp_slab *s, float *data, int ncomp, ffdp_error *err);

/* Planes this rank sends down and up in a halo exchange of slab s (plane = values per plane):
 * what each neighbour stores as halo. Collective; fails on every rank, naming the lowest
 * failing one, when a neighbour's halo is wider than the owned planes or a message would
 * exceed max_count values. */
ffdp_status ffdp_halo_plan(MPI_Comm comm, const ffdp_slab *s, int64_t plane, int64_t max_count, int64_t *send_dn,
                           int64_t *send_up, ffdp_error *err);

/* Sum of one double per rank, added in rank order on every rank: the same bits for a given
 * rank count, whatever the MPI implementation's reduction order. */
double ffdp_sum_ordered(MPI_Comm comm, double v);
/* The same elementwise for v[0..n), in place; -1 (v unchanged, on every rank) if rank 0 could
 * not allocate its gather buffer. */
int ffdp_sum_ordered_n(MPI_Comm comm, double *v, int n);
#endif
