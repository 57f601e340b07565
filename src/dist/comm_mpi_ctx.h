/* The state behind an MPI ffdp_comm, shared by its CPU (comm_mpi.c) and GPU (comm_gpu.c) parts. */
#ifndef FFDP_COMM_MPI_CTX_H
#define FFDP_COMM_MPI_CTX_H
#include <mpi.h>
#include "core/comm_internal.h"

typedef struct mpi_gpu mpi_gpu; /* device transport: NCCL communicator or host staging */

/* What this rank sent in halo exchanges and gathers, and the wall time they took: the
 * communication share of a run. Sub-communicators add to their root's. */
typedef struct {
  double bytes, seconds;             /* halos and gathers */
  double image_bytes, image_seconds; /* image planes received from other ranks (planes, ring) */
} mpi_traffic;

typedef struct {
  MPI_Comm comm;
  int owns;     /* a communicator made by first(): freed with the handle */
  mpi_gpu *gpu; /* set by gpu_setup (CUDA builds), inherited by first() */
  mpi_traffic *traffic, own_traffic; /* traffic points at the root's own_traffic */
} mpi_ctx;

#ifdef FFDP_HAVE_CUDA
ffdp_status ffdp_mpi_gpu_setup(const ffdp_comm *c, int dev, ffdp_error *err);
ffdp_status ffdp_mpi_gpu_halo(const ffdp_comm *c, const ffdp_slab *s, float *data, int ncomp, ffdp_error *err);
const char *ffdp_mpi_gpu_transport(const ffdp_comm *c);
/* Collective over the parent's ranks: the device transport of the first-n sub-communicator
 * (child is NULL on the ranks left out). */
void ffdp_mpi_gpu_split(const mpi_ctx *parent, int n, int rank, mpi_ctx *child);
void ffdp_mpi_gpu_free(mpi_gpu *g);
#endif
#endif
