/* ffdp command-line subcommands. Each returns the process exit status. */
#ifndef FFDP_CLI_H
#define FFDP_CLI_H
#include "ffdp/ffdp.h"
#include <stdint.h>
#include <stdio.h>

int ffdp_cmd_info(int argc, char **argv);
int ffdp_cmd_register(int argc, char **argv);
int ffdp_cmd_apply(int argc, char **argv);
/* ffdp plan: ffdp register's options, prints the GPU memory plan from the headers only. */
int ffdp_cmd_plan(int argc, char **argv);
int ffdp_cmd_convert(int argc, char **argv);

/* Print "ffdp: <message>" on stderr and return 1 (the CLI's one-line error contract). */
int cli_error(const ffdp_error *err);
int cli_errorf(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
double cli_now(void);
/* "rigid", "affine", "greedy" or "syn". */
const char *cli_stage_name(ffdp_stage_kind k);
#define CLI_PATH_MAX 4096
/* --metric in ffdp's form (CC[w] with an odd window, MI[bins], MSE) or antsRegistration's
 * (CC[fixed,moving,1,radius], MI|Mattes[fixed,moving,1,bins,sampling,percentage],
 * MeanSquares[fixed,moving,1]): the long form's image paths go to fixed and moving (else ""),
 * a note for what ffdp ignores (the sampling) to note. 0 with a one-line reason in why. */
int cli_parse_metric(const char *v, ffdp_metric_spec *m, char fixed[CLI_PATH_MAX], char moving[CLI_PATH_MAX],
                     char *note, size_t nlen, char *why, size_t wlen);
/* What the switches of a pasted antsRegistration command set. */
typedef struct {
  char prefix[CLI_PATH_MAX], warped[CLI_PATH_MAX]; /* -o [prefix,warped,inverseWarped] */
  char notes[1024];                                /* "ffdp register: note: ..." lines */
  int no_moments;                                  /* -r [fixed,moving,2] */
  double winsorize[2];                             /* -w [lower,upper]; {0, 0}: not given */
  int histogram_match;                             /* -u 1 */
} cli_ants_opts;
/* a (with its value v) as an antsRegistration switch: 1 when taken (v consumed), 0 when a is
 * not one, -1 after printing a one-line error. */
int cli_ants_switch(const char *a, const char *v, cli_ants_opts *o);
/* Adds a note line (for what ffdp takes but does differently). */
void cli_ants_note(cli_ants_opts *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A command's body, run by every rank of an MPI launch (comm) or by one process (comm NULL). */
typedef int (*cli_ranked_main)(int argc, char **argv, const ffdp_comm *comm);
/* run on every rank when an MPI launcher started this process (MPI started and finished
 * here; ranks other than 0 print nothing), else run(argc, argv, NULL). */
int cli_run_ranked(cli_ranked_main run, int argc, char **argv);
/* Collective: every rank sees the directory of path that rank 0 sees (rank 0 leaves a probe
 * file there, the others look for it): ranks that write one file together need that. */
ffdp_status cli_outputs_visible(const ffdp_comm *comm, const char *path, ffdp_error *err);
/* The directory an output path (or prefix) writes into: "out/sub_" -> "out", "/x_" -> "/", "x_" -> ".". */
void cli_dir_of(const char *path, char dir[4096]);
/* Outputs into the directory of path that take up to `need` bytes uncompressed, `hard` of them
 * uncompressed for certain: 1 after a one-line error when `hard` cannot fit (hint: what else the
 * user can do, e.g. "use --output-format nii.gz"), a warning (verbose >= 0) when only
 * compression could make `need` fit, else 0. FFDP_TEST_DISK_FREE_MB stands in for the free
 * space in tests. */
int cli_check_space(const char *path, double need, double hard, const char *hint, int verbose);
/* Planes per piece when a command goes through an image of `planes` planes of plane_voxels
 * each a piece at a time: ~64 M voxels when its planes read cheaply (cheap), else all of them
 * (FFDP_TEST_PIECE_PLANES sets the piece in tests). */
int64_t cli_piece_planes(int64_t plane_voxels, int64_t planes, int cheap);
/* Memory the kernel says can be taken without swapping (/proc/meminfo MemAvailable), in bytes;
 * -1 when unknown. FFDP_TEST_MEM_AVAILABLE_MB stands in for it in tests. */
double cli_mem_available(void);
/* The GPU memory plan as a table (free/total 0 when no device is known). */
/* free_bytes: what the run may use (free memory, or --gpu-memory's cap limit_bytes when that is
 * less; total_bytes 0 without a GPU) */
void cli_print_plan(FILE *f, const ffdp_plan *p, double free_bytes, double total_bytes, double limit_bytes);
#endif
