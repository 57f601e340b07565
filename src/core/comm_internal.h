/* The transport behind ffdp_comm: a small table of collective operations. The one-rank table
 * (comm.c) makes every operation trivial, so stage code calls them unconditionally. */
#ifndef FFDP_COMM_INTERNAL_H
#define FFDP_COMM_INTERNAL_H
#include "ffdp/comm.h"
#include "ffdp/error.h"
#include "ops/ops.h"
#ifdef __cplusplus
extern "C" {
#endif

struct ffdp_comm {
  int rank, size;
  int local_rank; /* rank among the ranks of this host: picks the rank's GPU */
  int local_size; /* ranks on this host (they share its memory) */
  void *ctx;
  /* v[0..n) summed elementwise over ranks, in rank order, result on every rank */
  void (*sum)(const ffdp_comm *c, double *v, int n);
  double (*max)(const ffdp_comm *c, double v);
  /* out[0..width) = Σ over all planes of the grid, in plane order from zero, of part (width
   * values per owned plane of s on each rank): the same bits as one process for any split */
  ffdp_status (*fold)(const ffdp_comm *c, const ffdp_slab *s, const double *part, int width, double *out,
                      ffdp_error *err);
  /* fill the halo planes of data (ncomp floats per voxel over [zlo, zhi)) from neighbours */
  ffdp_status (*halo)(const ffdp_comm *c, const ffdp_slab *s, float *data, int ncomp, ffdp_error *err);
  /* every rank's owned planes of data (slab layout) into full (nz planes) on every rank */
  ffdp_status (*gather)(const ffdp_comm *c, const ffdp_slab *s, const float *data, int ncomp, float *full,
                        ffdp_error *err);
  /* the same into full on rank 0 only (full is not touched, and may be NULL, elsewhere) */
  ffdp_status (*gather_root)(const ffdp_comm *c, const ffdp_slab *s, const float *data, int ncomp, float *full,
                             ffdp_error *err);
  /* Planes of a volume spread over the ranks (images sampled by ranks that hold only their own
   * planes): this rank holds planes [own_lo, own_hi) in own and receives [want_lo, want_hi)
   * (empty: nothing) into want, each plane from the rank that holds it. The held ranges must
   * not overlap and must cover every wanted plane (checked; an error on every rank). plane =
   * floats per plane. Collective; counted as image traffic. */
  ffdp_status (*planes)(const ffdp_comm *c, int64_t plane, int64_t own_lo, int64_t own_hi, const float *own,
                        int64_t want_lo, int64_t want_hi, float *want, ffdp_error *err);
  /* One turn of a ring, started and then completed, so that work on the planes at hand hides
   * the transfer: nsend planes to rank + 1, nrecv planes from rank - 1 (cyclic). send and recv
   * stay untouched (send may be read) until ring_wait, which every rank calls; the wait is
   * counted as image traffic (the exposed part of the exchange). *req is the handle. */
  ffdp_status (*ring_start)(const ffdp_comm *c, int64_t plane, const float *send, int64_t nsend, float *recv,
                            int64_t nrecv, void **req, ffdp_error *err);
  ffdp_status (*ring_wait)(const ffdp_comm *c, void *req, ffdp_error *err);
  /* agree on failure: returns FFDP_OK on every rank iff st == FFDP_OK on every rank; otherwise
   * every rank returns the lowest failing rank's status with its message (prefixed "rank k: ") */
  ffdp_status (*agree)(const ffdp_comm *c, ffdp_status st, ffdp_error *err);
  /* GPU ranks (CUDA builds; NULL otherwise). gpu_setup, collective and once per registration,
   * records that this rank computes on CUDA device dev and picks how device data crosses
   * ranks: NCCL when every rank has a GPU of its own, else pinned host buffers and MPI.
   * halo_dev is halo for device pointers, complete (on the default stream) when it returns. */
  ffdp_status (*gpu_setup)(const ffdp_comm *c, int dev, ffdp_error *err);
  ffdp_status (*halo_dev)(const ffdp_comm *c, const ffdp_slab *s, float *data, int ncomp, ffdp_error *err);
  const char *(*gpu_transport)(const ffdp_comm *c); /* "nccl", "mpi-staged" or "none" */
  /* bytes this rank sent in halo exchanges and gathers so far, and the wall time they took */
  void (*traffic)(const ffdp_comm *c, double *bytes, double *seconds);
  /* bytes of image planes this rank received from other ranks (planes, ring), and their time */
  void (*image_traffic)(const ffdp_comm *c, double *bytes, double *seconds);
  /* the first n ranks as a communicator (NULL on the others); collective */
  ffdp_comm *(*first)(const ffdp_comm *c, int n);
  void (*release)(ffdp_comm *c);
};

void ffdp_fold_planes(const double *part, int64_t nplanes, int width, double *out);
/* The one-process transport, used when ffdp_reg_options.comm is NULL. */
const ffdp_comm *ffdp_comm_single(void);
static inline const ffdp_comm *ffdp_comm_or_single(const ffdp_comm *c) { return c ? c : ffdp_comm_single(); }

#ifdef __cplusplus
}
#endif
#endif
