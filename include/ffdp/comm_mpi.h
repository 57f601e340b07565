/* MPI transport for ffdp_comm (library ffdp_dist): halos with MPI_Sendrecv, reductions added in
 * rank order so results are the same bits for a given rank count, collective error agreement
 * so that a failing rank stops every rank with its message instead of leaving them waiting. */
#ifndef FFDP_COMM_MPI_H
#define FFDP_COMM_MPI_H
#include <mpi.h>
#include "ffdp/comm.h"
#include "ffdp/error.h"
#ifdef __cplusplus
extern "C" {
#endif

/* Wraps (does not duplicate or free) `comm`; free the result with ffdp_comm_free. */
ffdp_status ffdp_comm_mpi_create(MPI_Comm comm, ffdp_comm **out, ffdp_error *err);

#ifdef __cplusplus
}
#endif
#endif
