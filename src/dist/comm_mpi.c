/* ffdp_comm over MPI (see ffdp/comm_mpi.h). */
#include "ffdp/comm_mpi.h"
#include "core/comm_internal.h"
#include "core/err.h"
#include "dist/comm_mpi_ctx.h"
#include "dist/dist.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static MPI_Comm C(const ffdp_comm *c) { return ((const mpi_ctx *)c->ctx)->comm; }

/* Rank order, whatever MPI's reduction tree (ffdp_sum_ordered_n). The only sums left here are
 * integer-valued counts and rank 0's iteration account, exact in any order. */
static void mpi_sum(const ffdp_comm *c, double *v, int n) { ffdp_sum_ordered_n(C(c), v, n); }

static double mpi_max(const ffdp_comm *c, double v) {
  double m;
  MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, C(c));
  return m;
}

static ffdp_status mpi_fold(const ffdp_comm *c, const ffdp_slab *s, const double *part, int width, double *out,
                            ffdp_error *e) {
  int64_t mine[2] = {s->z0, s->z1 - s->z0};
  int64_t *all = malloc((size_t)c->size * 2 * sizeof(int64_t));
  int *cnt = malloc((size_t)c->size * sizeof(int)), *dsp = malloc((size_t)c->size * sizeof(int));
  double *planes = malloc((size_t)(s->nz > 0 ? s->nz : 1) * width * sizeof(double));
  int ok = all && cnt && dsp && planes, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, C(c)); /* nobody enters a collective alone */
  ok = all_ok;
  if (ok) MPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, C(c));
  MPI_Datatype row;
  MPI_Type_contiguous(width, MPI_DOUBLE, &row);
  MPI_Type_commit(&row);
  for (int r = 0; ok && r < c->size; r++) cnt[r] = (int)all[2 * r + 1], dsp[r] = (int)all[2 * r];
  if (ok) MPI_Allgatherv(part, (int)(s->z1 - s->z0), row, planes, cnt, dsp, row, C(c));
  MPI_Type_free(&row);
  if (ok) ffdp_fold_planes(planes, s->nz, width, out);
  free(all), free(cnt), free(dsp), free(planes);
  return ok ? FFDP_OK : ffdp_fail(e, FFDP_ERR_NOMEM, "out of memory adding per-plane sums");
}

static void count(const ffdp_comm *c, double bytes, double t0) {
  mpi_traffic *t = ((mpi_ctx *)c->ctx)->traffic;
  t->bytes += bytes, t->seconds += MPI_Wtime() - t0;
}

static ffdp_status mpi_halo(const ffdp_comm *c, const ffdp_slab *s, float *d, int nc, ffdp_error *e) {
  const double t0 = MPI_Wtime();
  ffdp_status st = ffdp_halo_exchange(C(c), s, d, nc, e);
  /* what we send equals what our neighbours store as halo: counted as the halo we receive */
  count(c, 4.0 * (double)((s->zhi - s->zlo - (s->z1 - s->z0)) * s->nx * s->ny * nc), t0);
  return st;
}

static void mpi_traffic_get(const ffdp_comm *c, double *bytes, double *seconds) {
  const mpi_traffic *t = ((const mpi_ctx *)c->ctx)->traffic;
  *bytes = t->bytes, *seconds = t->seconds;
}

/* Owned planes of every rank into full: on every rank (Allgatherv) or on rank 0 (Gatherv). */
static ffdp_status gather_planes(const ffdp_comm *c, const ffdp_slab *s, const float *d, int nc, float *full, int to_root,
                                 ffdp_error *e) {
  const double t0 = MPI_Wtime();
  const int64_t plane = s->nx * s->ny * nc;
  int64_t mine[2] = {s->z0, s->z1 - s->z0}, *all = malloc((size_t)c->size * 2 * sizeof(int64_t));
  int *cnt = malloc((size_t)c->size * sizeof(int)), *dsp = malloc((size_t)c->size * sizeof(int));
  int ok = all && cnt && dsp;
  if (ok) MPI_Allgather(mine, 2, MPI_INT64_T, all, 2, MPI_INT64_T, C(c));
  /* counts are in planes of a derived type so that volumes over 2^31 floats still gather */
  MPI_Datatype pl;
  MPI_Type_contiguous((int)plane, MPI_FLOAT, &pl);
  MPI_Type_commit(&pl);
  for (int r = 0; ok && r < c->size; r++) cnt[r] = (int)all[2 * r + 1], dsp[r] = (int)all[2 * r];
  const float *part = d ? d + (s->z0 - s->zlo) * plane : NULL;
  if (ok && to_root) MPI_Gatherv(part, (int)(s->z1 - s->z0), pl, full, cnt, dsp, pl, 0, C(c));
  else if (ok) MPI_Allgatherv(part, (int)(s->z1 - s->z0), pl, full, cnt, dsp, pl, C(c));
  MPI_Type_free(&pl);
  free(all), free(cnt), free(dsp);
  /* our planes to every other rank, or to rank 0 */
  count(c, 4.0 * (double)((s->z1 - s->z0) * plane) * (to_root ? (c->rank != 0) : c->size - 1), t0);
  return ok ? FFDP_OK : ffdp_fail(e, FFDP_ERR_NOMEM, "out of memory gathering a field");
}

static ffdp_status mpi_gather(const ffdp_comm *c, const ffdp_slab *s, const float *d, int nc, float *full,
                              ffdp_error *e) {
  return gather_planes(c, s, d, nc, full, 0, e);
}

static ffdp_status mpi_gather_root(const ffdp_comm *c, const ffdp_slab *s, const float *d, int nc, float *full,
                                   ffdp_error *e) {
  return gather_planes(c, s, d, nc, full, 1, e);
}

static void count_image(const ffdp_comm *c, double bytes, double t0) {
  mpi_traffic *t = ((mpi_ctx *)c->ctx)->traffic;
  t->image_bytes += bytes, t->image_seconds += MPI_Wtime() - t0;
}

static void mpi_image_traffic_get(const ffdp_comm *c, double *bytes, double *seconds) {
  const mpi_traffic *t = ((const mpi_ctx *)c->ctx)->traffic;
  *bytes = t->image_bytes, *seconds = t->image_seconds;
}

static int64_t overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1) {
  const int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
  return hi > lo ? hi - lo : 0;
}

/* Every rank learns every rank's held and wanted ranges, so the counts of one all-to-all (in
 * planes of a derived type: volumes over 2^31 floats) and the coverage check are the same
 * computation everywhere: a bad request fails on every rank without a second collective. */
static ffdp_status mpi_planes(const ffdp_comm *c, int64_t plane, int64_t own_lo, int64_t own_hi, const float *own,
                              int64_t want_lo, int64_t want_hi, float *want, ffdp_error *e) {
  const double t0 = MPI_Wtime();
  const int n = c->size;
  if (want_hi < want_lo) want_hi = want_lo;
  int64_t mine[4] = {own_lo, own_hi, want_lo, want_hi}, *all = malloc((size_t)n * 4 * sizeof(int64_t));
  int *sc = malloc((size_t)n * 4 * sizeof(int)), ok = all && sc, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, C(c));
  if (!all_ok) {
    free(all), free(sc);
    return ffdp_fail(e, FFDP_ERR_NOMEM, "out of memory exchanging image planes");
  }
  MPI_Allgather(mine, 4, MPI_INT64_T, all, 4, MPI_INT64_T, C(c));
  int bad = -1;
  for (int r = 0; r < n && bad < 0; r++) { /* rank r's wanted planes: held by exactly one rank each */
    int64_t got = 0;
    for (int k = 0; k < n; k++) got += overlap(all[4 * k], all[4 * k + 1], all[4 * r + 2], all[4 * r + 3]);
    if (got != all[4 * r + 3] - all[4 * r + 2]) bad = r;
  }
  if (bad >= 0) {
    ffdp_fail(e, FFDP_ERR_INVALID, "rank %d wants image planes [%lld, %lld) that the ranks do not hold once each", bad,
              (long long)all[4 * bad + 2], (long long)all[4 * bad + 3]);
    free(all), free(sc);
    return FFDP_ERR_INVALID;
  }
  int *scnt = sc, *sdsp = sc + n, *rcnt = sc + 2 * n, *rdsp = sc + 3 * n;
  double got = 0;
  for (int r = 0; r < n; r++) {
    const int64_t *o = all + 4 * r;
    scnt[r] = (int)overlap(own_lo, own_hi, o[2], o[3]);
    sdsp[r] = scnt[r] ? (int)((o[2] > own_lo ? o[2] : own_lo) - own_lo) : 0;
    rcnt[r] = (int)overlap(o[0], o[1], want_lo, want_hi);
    rdsp[r] = rcnt[r] ? (int)((o[0] > want_lo ? o[0] : want_lo) - want_lo) : 0;
    if (r != c->rank) got += (double)rcnt[r];
  }
  MPI_Datatype pl;
  MPI_Type_contiguous((int)plane, MPI_FLOAT, &pl);
  MPI_Type_commit(&pl);
  MPI_Alltoallv(own, scnt, sdsp, pl, want, rcnt, rdsp, pl, C(c));
  MPI_Type_free(&pl);
  free(all), free(sc);
  count_image(c, 4.0 * got * (double)plane, t0);
  return FFDP_OK;
}

typedef struct {
  MPI_Request r[2];
  MPI_Datatype pl;
  double bytes;
} ring_req;

static ffdp_status mpi_ring_start(const ffdp_comm *c, int64_t plane, const float *send, int64_t nsend, float *recv,
                                  int64_t nrecv, void **req, ffdp_error *e) {
  (void)e;
  ring_req *q = malloc(sizeof *q);
  *req = q;
  if (!q) { /* no handle: the turn completes here, blocking, so that no rank waits in vain */
    const double t0 = MPI_Wtime();
    MPI_Datatype pl;
    MPI_Type_contiguous((int)plane, MPI_FLOAT, &pl);
    MPI_Type_commit(&pl);
    MPI_Sendrecv(send, (int)nsend, pl, (c->rank + 1) % c->size, 7, recv, (int)nrecv, pl,
                 (c->rank + c->size - 1) % c->size, 7, C(c), MPI_STATUS_IGNORE);
    MPI_Type_free(&pl);
    count_image(c, 4.0 * (double)(nrecv * plane), t0);
    return FFDP_OK;
  }
  MPI_Type_contiguous((int)plane, MPI_FLOAT, &q->pl);
  MPI_Type_commit(&q->pl);
  MPI_Irecv(recv, (int)nrecv, q->pl, (c->rank + c->size - 1) % c->size, 7, C(c), &q->r[0]);
  MPI_Isend(send, (int)nsend, q->pl, (c->rank + 1) % c->size, 7, C(c), &q->r[1]);
  q->bytes = 4.0 * (double)(nrecv * plane);
  return FFDP_OK;
}

static ffdp_status mpi_ring_wait(const ffdp_comm *c, void *req, ffdp_error *e) {
  (void)e;
  ring_req *q = req;
  if (!q) return FFDP_OK; /* its start completed the turn */
  const double t0 = MPI_Wtime();
  MPI_Waitall(2, q->r, MPI_STATUSES_IGNORE);
  MPI_Type_free(&q->pl);
  count_image(c, q->bytes, t0);
  free(q);
  return FFDP_OK;
}

static ffdp_status mpi_agree(const ffdp_comm *c, ffdp_status st, ffdp_error *e) {
  int mine[2] = {st ? c->rank : c->size, (int)st}, first[2];
  MPI_Allreduce(mine, first, 1, MPI_2INT, MPI_MINLOC, C(c));
  if (first[0] >= c->size) return FFDP_OK;
  char msg[FFDP_ERROR_MSG_MAX] = "";
  if (c->rank == first[0] && e) snprintf(msg, sizeof msg, "%s", e->msg);
  MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first[0], C(c));
  const int code = first[1];
  if (c->rank == first[0]) return (ffdp_status)code; /* its own message stands */
  return ffdp_fail(e, (ffdp_status)code, "rank %d: %s", first[0], msg);
}

static void mpi_release(ffdp_comm *c) {
  if (!c) return;
  mpi_ctx *x = c->ctx;
#ifdef FFDP_HAVE_CUDA
  ffdp_mpi_gpu_free(x->gpu);
#endif
  if (x->owns) MPI_Comm_free(&x->comm);
  free(x);
  free(c);
}

static ffdp_comm *make(MPI_Comm comm, int owns);

static ffdp_comm *mpi_first(const ffdp_comm *c, int n) {
  MPI_Comm sub;
  MPI_Comm_split(C(c), c->rank < n ? 0 : MPI_UNDEFINED, c->rank, &sub);
  ffdp_comm *out = sub == MPI_COMM_NULL ? NULL : make(sub, 1);
  if (out) ((mpi_ctx *)out->ctx)->traffic = ((mpi_ctx *)c->ctx)->traffic;
#ifdef FFDP_HAVE_CUDA
  ffdp_mpi_gpu_split(c->ctx, n, c->rank, out ? out->ctx : NULL);
#endif
  return out;
}

static ffdp_comm *make(MPI_Comm comm, int owns) {
  ffdp_comm *c = calloc(1, sizeof *c);
  mpi_ctx *x = calloc(1, sizeof *x);
  if (!c || !x) {
    free(c), free(x);
    return NULL;
  }
  x->comm = comm, x->owns = owns, x->traffic = &x->own_traffic;
  MPI_Comm_rank(comm, &c->rank);
  MPI_Comm_size(comm, &c->size);
  MPI_Comm node; /* the ranks sharing this host, for the choice of GPU */
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &c->local_rank);
  MPI_Comm_size(node, &c->local_size);
  MPI_Comm_free(&node);
  c->ctx = x;
  c->sum = mpi_sum, c->max = mpi_max, c->fold = mpi_fold, c->halo = mpi_halo, c->gather = mpi_gather, c->agree = mpi_agree;
  c->gather_root = mpi_gather_root;
  c->first = mpi_first, c->release = mpi_release, c->traffic = mpi_traffic_get;
  c->planes = mpi_planes, c->ring_start = mpi_ring_start, c->ring_wait = mpi_ring_wait;
  c->image_traffic = mpi_image_traffic_get;
#ifdef FFDP_HAVE_CUDA
  c->gpu_setup = ffdp_mpi_gpu_setup, c->halo_dev = ffdp_mpi_gpu_halo, c->gpu_transport = ffdp_mpi_gpu_transport;
#endif
  return c;
}

ffdp_status ffdp_comm_mpi_create(MPI_Comm comm, ffdp_comm **out, ffdp_error *err) {
  *out = make(comm, 0);
  return *out ? FFDP_OK : ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory creating a communicator");
}
