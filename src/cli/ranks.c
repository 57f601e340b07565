/* Commands started by an MPI launcher (mpirun / srun with PMIx) run on every rank, each doing
 * its share; without one they run as the one-rank case of the same code. What the commands
 * share about that: starting MPI, silencing the ranks that do not speak for the job, and
 * checking that every rank sees the directory the outputs go to. */
#include "cli/cli.h"
#include "core/err.h"
#ifdef FFDP_HAVE_MPI
#include "ffdp/comm_mpi.h"
#include <mpi.h>
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int launched_by_mpi(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK") || getenv("PMI_SIZE");
}

int cli_run_ranked(cli_ranked_main run, int argc, char **argv) {
  if (!launched_by_mpi()) return run(argc, argv, NULL);
#ifdef FFDP_HAVE_MPI
  ffdp_comm *comm = NULL;
  ffdp_error err = {0};
  int provided = 0, rc;
  MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
  if (ffdp_comm_mpi_create(MPI_COMM_WORLD, &comm, &err)) {
    rc = cli_error(&err);
  } else {
    if (ffdp_comm_rank(comm) != 0) { /* rank 0 speaks for the job; every failure is agreed */
      FILE *o = freopen("/dev/null", "w", stdout), *e = freopen("/dev/null", "w", stderr);
      (void)o, (void)e;
    }
    rc = run(argc, argv, comm);
  }
  ffdp_comm_free(comm);
  MPI_Finalize();
  return rc;
#else
  return cli_errorf("this ffdp was built without MPI and cannot run under an MPI launcher; run it directly");
#endif
}

ffdp_status cli_outputs_visible(const ffdp_comm *comm, const char *path, ffdp_error *err) {
  if (ffdp_comm_size(comm) < 2) return FFDP_OK;
  char dir[4096], probe[4200];
  cli_dir_of(path, dir);
  long pid = ffdp_comm_rank(comm) == 0 ? (long)getpid() : 0;
#ifdef FFDP_HAVE_MPI
  MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
#endif
  snprintf(probe, sizeof probe, "%s/.ffdp-probe-%ld", dir, pid);
  ffdp_status st = FFDP_OK;
  if (ffdp_comm_rank(comm) == 0) {
    FILE *f = fopen(probe, "w");
    if (!f || fclose(f) != 0) st = ffdp_fail(err, FFDP_ERR_IO, "cannot write into '%s': %s", dir, strerror(errno));
  }
  if (!(st = ffdp_comm_agree(comm, st, err)) && ffdp_comm_rank(comm) != 0 && access(probe, F_OK) != 0)
    st = ffdp_fail(err, FFDP_ERR_IO,
                   "does not see '%s' as rank 0 does (every rank writes its part of the outputs: ranks on several "
                   "hosts need a shared file system there); write the outputs to one with -o", dir);
  st = ffdp_comm_agree(comm, st, err);
  if (ffdp_comm_rank(comm) == 0) unlink(probe);
  return st;
}
