/* Device data across MPI ranks: halos of fields that live on the GPUs.
 * With one GPU per rank the halo planes go GPU to GPU with ncclSend/ncclRecv (slabs are
 * z-major, so every halo is one contiguous range: no packing). Where ranks share a GPU
 * (NCCL refuses that), FFDP_GPU_TRANSPORT=mpi asks for it, or the build has no NCCL, the same
 * planes travel through pinned host buffers and MPI_Sendrecv. */
#include "dist/comm_mpi_ctx.h"
#include "core/err.h"
#include "dist/dist.h"
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef FFDP_HAVE_NCCL
#include <nccl.h>
#endif

#define SPLIT_CACHE 64

struct mpi_gpu {
  int nccl; /* 1: NCCL, 0: staged through host memory */
#ifdef FFDP_HAVE_NCCL
  ncclComm_t comm;
  int owns; /* 0 for a split cached in the parent */
  struct {
    int n;
    ncclComm_t comm;
  } split[SPLIT_CACHE];
  int nsplit;
#endif
  float *host; /* staging buffer (pinned) */
  size_t host_floats;
};

static mpi_gpu *G(const ffdp_comm *c) { return ((const mpi_ctx *)c->ctx)->gpu; }
static MPI_Comm CM(const ffdp_comm *c) { return ((const mpi_ctx *)c->ctx)->comm; }

const char *ffdp_mpi_gpu_transport(const ffdp_comm *c) {
  const mpi_gpu *g = G(c);
  return !g || c->size < 2 ? "none" : g->nccl ? "nccl" : "mpi-staged";
}

/* Lowest rank whose GPU another rank also uses, or -1: NCCL needs a GPU of its own per rank. */
static int shared_gpu(MPI_Comm comm, int dev, int size) {
  struct cudaDeviceProp p;
  unsigned char mine[16] = {0}, *all = malloc((size_t)size * 16);
  if (cudaGetDeviceProperties(&p, dev) == cudaSuccess) memcpy(mine, &p.uuid, 16);
  int ok = all != NULL, all_ok = 0, first = -1;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm);
  if (!all_ok) {
    free(all);
    return 0; /* cannot tell: staging is always correct */
  }
  MPI_Allgather(mine, 16, MPI_UNSIGNED_CHAR, all, 16, MPI_UNSIGNED_CHAR, comm);
  for (int a = 0; a < size && first < 0; a++)
    for (int b = a + 1; b < size; b++)
      if (!memcmp(all + 16 * a, all + 16 * b, 16)) {
        first = a;
        break;
      }
  free(all);
  return first;
}

ffdp_status ffdp_mpi_gpu_setup(const ffdp_comm *c, int dev, ffdp_error *err) {
  mpi_ctx *x = c->ctx;
  if (x->gpu) return FFDP_OK;
  mpi_gpu *g = calloc(1, sizeof *g);
  ffdp_status st = g ? FFDP_OK : ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory setting up GPU ranks");
  if ((st = c->agree(c, st, err))) {
    free(g);
    return st;
  }
  const char *want = getenv("FFDP_GPU_TRANSPORT");
  const int shared = c->size > 1 ? shared_gpu(x->comm, dev, c->size) : -1;
#ifdef FFDP_HAVE_NCCL
  const int have_nccl = 1;
#else
  const int have_nccl = 0;
#endif
  if (want && strcmp(want, "nccl") && strcmp(want, "mpi"))
    st = ffdp_fail(err, FFDP_ERR_INVALID, "FFDP_GPU_TRANSPORT must be nccl or mpi, not '%s'", want);
  else if (want && !strcmp(want, "nccl") && !have_nccl)
    st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "FFDP_GPU_TRANSPORT=nccl, but this ffdp was built without NCCL");
  else if (want && !strcmp(want, "nccl") && shared >= 0)
    st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED,
                   "FFDP_GPU_TRANSPORT=nccl, but rank %d shares its GPU with another rank (NCCL needs one GPU per rank); "
                   "start at most as many ranks per host as it has GPUs",
                   shared);
  g->nccl = have_nccl && c->size > 1 && shared < 0 && !(want && !strcmp(want, "mpi"));
#ifdef FFDP_HAVE_NCCL
  if (!st && g->nccl) {
    ncclUniqueId id;
    ncclResult_t r = ncclSuccess;
    if (c->rank == 0) r = ncclGetUniqueId(&id);
    int bad = r != ncclSuccess, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, x->comm);
    if (any) {
      st = ffdp_fail(err, FFDP_ERR_IO, "NCCL could not start: %s", ncclGetErrorString(r));
    } else {
      MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, x->comm);
      r = ncclCommInitRank(&g->comm, c->size, id, c->rank);
      if (r != ncclSuccess) st = ffdp_fail(err, FFDP_ERR_IO, "NCCL could not connect the GPUs: %s", ncclGetErrorString(r));
      g->owns = r == ncclSuccess;
    }
  }
#endif
  if ((st = c->agree(c, st, err))) {
    ffdp_mpi_gpu_free(g);
    return st;
  }
  x->gpu = g;
  return FFDP_OK;
}

void ffdp_mpi_gpu_split(const mpi_ctx *parent, int n, int rank, mpi_ctx *child) {
  mpi_gpu *pg = parent->gpu;
  if (!pg) return; /* not on GPUs */
  mpi_gpu *g = child ? calloc(1, sizeof *g) : NULL;
  if (g) g->nccl = pg->nccl;
#ifdef FFDP_HAVE_NCCL
  if (pg->nccl) { /* one split per size, made once by every parent rank and kept */
    int k = 0;
    while (k < pg->nsplit && pg->split[k].n != n) k++;
    if (k == pg->nsplit && k < SPLIT_CACHE) {
      ncclComm_t sub = NULL;
      if (ncclCommSplit(pg->comm, rank < n ? 0 : NCCL_SPLIT_NOCOLOR, rank, &sub, NULL) != ncclSuccess) sub = NULL;
      pg->split[k].n = n, pg->split[k].comm = sub, pg->nsplit++;
    }
    if (g && k < pg->nsplit && pg->split[k].comm) g->comm = pg->split[k].comm, g->owns = 0;
    else if (g) g->nccl = 0; /* no NCCL sub-communicator: staging is always correct */
  }
#else
  (void)n, (void)rank;
#endif
  if (child) child->gpu = g;
}

void ffdp_mpi_gpu_free(mpi_gpu *g) {
  if (!g) return;
#ifdef FFDP_HAVE_NCCL
  for (int k = 0; k < g->nsplit; k++)
    if (g->split[k].comm) ncclCommDestroy(g->split[k].comm);
  if (g->owns) ncclCommDestroy(g->comm);
#endif
  if (g->host) cudaFreeHost(g->host);
  free(g);
}

static ffdp_status cuda_fail(ffdp_error *err, cudaError_t e) {
  return ffdp_fail(err, FFDP_ERR_IO, "CUDA error in a halo exchange: %s", cudaGetErrorString(e));
}

/* Halo planes through host memory: the planes each neighbour needs come down, travel with
 * MPI_Sendrecv, and the received halos go up. */
static ffdp_status staged(const ffdp_comm *c, mpi_gpu *g, const ffdp_slab *s, float *d, int64_t plane, int64_t send_dn,
                          int64_t send_up, ffdp_error *err) {
  const int64_t lo = s->z0 - s->zlo, hi = s->zhi - s->z1;
  const size_t need = (size_t)((send_dn + send_up + lo + hi) * plane);
  cudaError_t e = cudaSuccess;
  if (need > g->host_floats) {
    if (g->host) cudaFreeHost(g->host);
    g->host = NULL, g->host_floats = 0;
    e = cudaMallocHost((void **)&g->host, need * sizeof(float));
    if (!e) g->host_floats = need;
  }
  ffdp_status st = e ? ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate %.1f MB of pinned memory for halos: %s",
                                 need * 4 / 1e6, cudaGetErrorString(e))
                     : FFDP_OK;
  float *h_up = g->host, *h_dn = h_up + send_up * plane, *r_lo = h_dn + send_dn * plane, *r_hi = r_lo + lo * plane;
  if (!st && send_up) e = cudaMemcpy(h_up, d + (s->z1 - send_up - s->zlo) * plane, send_up * plane * 4, cudaMemcpyDeviceToHost);
  if (!st && !e && send_dn) e = cudaMemcpy(h_dn, d + (s->z0 - s->zlo) * plane, send_dn * plane * 4, cudaMemcpyDeviceToHost);
  if (!st && e) st = cuda_fail(err, e);
  if ((st = c->agree(c, st, err))) return st; /* nobody waits in a send for a rank that failed */
  const int dn = c->rank > 0 ? c->rank - 1 : MPI_PROC_NULL, up = c->rank + 1 < c->size ? c->rank + 1 : MPI_PROC_NULL;
  MPI_Sendrecv(h_up, (int)(send_up * plane), MPI_FLOAT, up, 4, r_lo, (int)(lo * plane), MPI_FLOAT, dn, 4, CM(c),
               MPI_STATUS_IGNORE);
  MPI_Sendrecv(h_dn, (int)(send_dn * plane), MPI_FLOAT, dn, 5, r_hi, (int)(hi * plane), MPI_FLOAT, up, 5, CM(c),
               MPI_STATUS_IGNORE);
  if (lo) e = cudaMemcpy(d, r_lo, lo * plane * 4, cudaMemcpyHostToDevice);
  if (!e && hi) e = cudaMemcpy(d + (s->z1 - s->zlo) * plane, r_hi, hi * plane * 4, cudaMemcpyHostToDevice);
  return e ? cuda_fail(err, e) : FFDP_OK;
}

static ffdp_status gpu_halo(const ffdp_comm *c, const ffdp_slab *s, float *d, int ncomp, ffdp_error *err);

ffdp_status ffdp_mpi_gpu_halo(const ffdp_comm *c, const ffdp_slab *s, float *d, int ncomp, ffdp_error *err) {
  if (c->size < 2) return FFDP_OK;
  const double t0 = MPI_Wtime();
  ffdp_status st = gpu_halo(c, s, d, ncomp, err);
  cudaDeviceSynchronize(); /* the time of the exchange, not of its queueing */
  mpi_traffic *t = ((mpi_ctx *)c->ctx)->traffic;
  t->bytes += 4.0 * (double)((s->zhi - s->zlo - (s->z1 - s->z0)) * s->nx * s->ny * ncomp);
  t->seconds += MPI_Wtime() - t0;
  return st;
}

static ffdp_status gpu_halo(const ffdp_comm *c, const ffdp_slab *s, float *d, int ncomp, ffdp_error *err) {
  mpi_gpu *g = G(c);
  ffdp_status st = g ? FFDP_OK : ffdp_fail(err, FFDP_ERR_INVALID, "internal: device halo before gpu_setup");
  if ((st = c->agree(c, st, err))) return st;
  const int64_t plane = s->nx * s->ny * ncomp;
  int64_t send_dn = 0, send_up = 0;
  /* NCCL counts are size_t; staged halos are single MPI messages */
  if ((st = ffdp_halo_plan(CM(c), s, plane, g->nccl ? INT64_MAX : 2147483647LL, &send_dn, &send_up, err))) return st;
  if (!g->nccl) return staged(c, g, s, d, plane, send_dn, send_up, err);
#ifdef FFDP_HAVE_NCCL
  const int64_t lo = s->z0 - s->zlo, hi = s->zhi - s->z1;
  const int dn = c->rank - 1, up = c->rank + 1;
  ncclResult_t r = ncclGroupStart();
  if (up < c->size) {
    if (send_up) r = r ? r : ncclSend(d + (s->z1 - send_up - s->zlo) * plane, (size_t)(send_up * plane), ncclFloat, up, g->comm, 0);
    if (hi) r = r ? r : ncclRecv(d + (s->z1 - s->zlo) * plane, (size_t)(hi * plane), ncclFloat, up, g->comm, 0);
  }
  if (dn >= 0) {
    if (send_dn) r = r ? r : ncclSend(d + (s->z0 - s->zlo) * plane, (size_t)(send_dn * plane), ncclFloat, dn, g->comm, 0);
    if (lo) r = r ? r : ncclRecv(d, (size_t)(lo * plane), ncclFloat, dn, g->comm, 0);
  }
  ncclResult_t r2 = ncclGroupEnd();
  r = r ? r : r2;
  if (r != ncclSuccess) st = ffdp_fail(err, FFDP_ERR_IO, "NCCL halo exchange failed: %s", ncclGetErrorString(r));
  return c->agree(c, st, err);
#else
  return ffdp_fail(err, FFDP_ERR_INVALID, "internal: NCCL transport in a build without NCCL");
#endif
}
