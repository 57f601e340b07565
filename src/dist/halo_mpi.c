/* Slab decomposition and halo exchange over MPI (CPU ranks). */
#include "dist/dist.h"
#include "core/err.h"
#include <stdlib.h>

ffdp_status ffdp_halo_plan(MPI_Comm comm, const ffdp_slab *s, int64_t plane, int64_t max_count, int64_t *send_dn,
                           int64_t *send_up, ffdp_error *err) {
  int rank, n;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &n);
  const int64_t lo = s->z0 - s->zlo, hi = s->zhi - s->z1; /* halo planes below / above */
  /* What the neighbours need from us equals what they store: ask them, so uneven halos work. */
  int64_t mine[2] = {lo, hi}, below[2] = {0, 0}, above[2] = {0, 0};
  const int dn = rank > 0 ? rank - 1 : MPI_PROC_NULL, up = rank + 1 < n ? rank + 1 : MPI_PROC_NULL;
  MPI_Sendrecv(mine, 2, MPI_INT64_T, dn, 0, above, 2, MPI_INT64_T, up, 0, comm, MPI_STATUS_IGNORE);
  MPI_Sendrecv(mine, 2, MPI_INT64_T, up, 1, below, 2, MPI_INT64_T, dn, 1, comm, MPI_STATUS_IGNORE);
  const int64_t owned = s->z1 - s->z0;
  *send_up = up != MPI_PROC_NULL ? above[0] : 0, *send_dn = dn != MPI_PROC_NULL ? below[1] : 0;
  int64_t most = *send_up;
  const int64_t others[3] = {*send_dn, lo, hi};
  for (int k = 0; k < 3; k++) most = others[k] > most ? others[k] : most;
  /* Decide collectively, so that a bad slab on one rank fails every rank instead of leaving
   * its neighbours waiting in a send: the lowest failing rank is named everywhere. */
  int bad = (*send_up > owned || *send_dn > owned) ? 1 : most * plane > max_count ? 2 : 0;
  int mine_code[2] = {bad ? rank : n, bad}, first[2]; /* (lowest failing rank, its reason) */
  MPI_Allreduce(mine_code, first, 1, MPI_2INT, MPI_MINLOC, comm);
  if (first[0] < n) {
    if (first[1] == 2)
      return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "rank %d: a halo exceeds one MPI message (2^31 floats)", first[0]);
    return ffdp_fail(err, FFDP_ERR_INVALID,
                     "rank %d owns fewer planes than its neighbour's halo; use fewer ranks for this level", first[0]);
  }
  return FFDP_OK;
}

ffdp_status ffdp_halo_exchange(MPI_Comm comm, const ffdp_slab *s, float *data, int ncomp, ffdp_error *err) {
  int rank, n;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &n);
  const int64_t plane = s->nx * s->ny * ncomp, lo = s->z0 - s->zlo, hi = s->zhi - s->z1;
  const int dn = rank > 0 ? rank - 1 : MPI_PROC_NULL, up = rank + 1 < n ? rank + 1 : MPI_PROC_NULL;
  int64_t send_dn, send_up;
  ffdp_status st = ffdp_halo_plan(comm, s, plane, 2147483647LL, &send_dn, &send_up, err);
  if (st) return st;
  /* our top planes go up while the bottom halo arrives from below, then the reverse */
  MPI_Sendrecv(data + (s->z1 - send_up - s->zlo) * plane, (int)(send_up * plane), MPI_FLOAT, up, 2, data,
               (int)(lo * plane), MPI_FLOAT, dn, 2, comm, MPI_STATUS_IGNORE);
  MPI_Sendrecv(data + (s->z0 - s->zlo) * plane, (int)(send_dn * plane), MPI_FLOAT, dn, 3, data + (s->z1 - s->zlo) * plane,
               (int)(hi * plane), MPI_FLOAT, up, 3, comm, MPI_STATUS_IGNORE);
  return FFDP_OK;
}

int ffdp_sum_ordered_n(MPI_Comm comm, double *v, int n) {
  int rank, size, ok, all_ok;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  double *all = rank == 0 ? malloc((size_t)n * size * sizeof(double)) : NULL;
  ok = rank != 0 || all;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm); /* nobody enters the gather alone */
  if (!all_ok) {
    free(all);
    return -1;
  }
  MPI_Gather(v, n, MPI_DOUBLE, all, n, MPI_DOUBLE, 0, comm);
  if (rank == 0) {
    for (int k = 0; k < n; k++) {
      double s = 0;
      for (int r = 0; r < size; r++) s += all[(size_t)r * n + k];
      v[k] = s;
    }
    free(all);
  }
  MPI_Bcast(v, n, MPI_DOUBLE, 0, comm);
  return 0;
}

double ffdp_sum_ordered(MPI_Comm comm, double v) {
  ffdp_sum_ordered_n(comm, &v, 1);
  return v;
}
