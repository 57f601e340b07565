/* How the ranks of one registration talk to each other. A registration runs on the ranks of a
 * communicator, each owning a slab of the fixed grid; a single process is the one-rank case of
 * the same code (ffdp_reg_options.comm == NULL). An MPI communicator is wrapped by
 * ffdp_comm_mpi_create (ffdp/comm_mpi.h, library ffdp_dist). */
#ifndef FFDP_COMM_H
#define FFDP_COMM_H
#include "ffdp/error.h"
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct ffdp_comm ffdp_comm;

int ffdp_comm_rank(const ffdp_comm *c); /* 0 for NULL */
int ffdp_comm_size(const ffdp_comm *c); /* 1 for NULL */
/* Rank among the ranks on this host (0 for NULL): a CUDA registration computes on device
 * local_rank % device count. */
int ffdp_comm_local_rank(const ffdp_comm *c);
/* Ranks on this host, which share its memory (1 for NULL). */
int ffdp_comm_local_size(const ffdp_comm *c);
/* How GPU ranks exchange device data once a CUDA registration has started: "nccl" (one GPU
 * per rank), "mpi-staged" (through host memory: ranks share a GPU, FFDP_GPU_TRANSPORT=mpi,
 * or no NCCL in this build) or "none" (one rank, or not on GPUs). */
const char *ffdp_comm_gpu_transport(const ffdp_comm *c);
/* Bytes this rank has sent in halo exchanges and field gathers so far, and the wall time
 * spent in them (device halos included): the communication share of a run. 0 for NULL. */
void ffdp_comm_traffic(const ffdp_comm *c, double *bytes, double *seconds);
/* Bytes of sampled-image planes this rank received from other ranks so far (windows of the
 * moving image fetched from the ranks that hold them, or ring shards), and the wall time spent
 * in those exchanges. 0 for NULL. */
void ffdp_comm_image_traffic(const ffdp_comm *c, double *bytes, double *seconds);
void ffdp_comm_free(ffdp_comm *c);
/* This rank's share of an image of nz planes when inputs are sharded: planes [*z0, *z1), the
 * ranks' shares in rank order, sizes differing by at most one plane (all of them for NULL). */
void ffdp_comm_share(const ffdp_comm *c, int64_t nz, int64_t *z0, int64_t *z1);
/* Collective: FFDP_OK on every rank iff st is FFDP_OK on every rank; otherwise every rank gets
 * the lowest failing rank's code and message ("rank k: ..."). For work done outside
 * ffdp_register (loading, writing) that must not leave other ranks waiting. */
ffdp_status ffdp_comm_agree(const ffdp_comm *c, ffdp_status st, ffdp_error *err);

#ifdef __cplusplus
}
#endif
#endif
