/* The device-memory plan of a registration: which buffers each stage and level allocates on
 * the GPU, how large they are, and the peak, computed from image headers before anything
 * large is loaded. ffdp_register runs the same plan and refuses a run that cannot fit. */
#ifndef FFDP_PLAN_H
#define FFDP_PLAN_H
#include "ffdp/register.h"
#ifdef __cplusplus
extern "C" {
#endif

#define FFDP_PLAN_MAX_BUFS 20
#define FFDP_PLAN_MAX_ROWS (FFDP_MAX_STAGES * (FFDP_MAX_LEVELS + 1))

typedef struct ffdp_plan_row {
  int stage;              /* 0-based stage index */
  int level;              /* 0-based level, or -1 for the stage's final full-resolution step */
  ffdp_stage_kind kind;
  int64_t dim[3];         /* fixed grid of this level */
  int ranks;              /* ranks taking part in this level (coarse levels use fewer) */
  int64_t planes;         /* planes the busiest rank stores (its slab and halos) */
  int64_t moving_voxels;  /* moving grid of this level */
  int nbuf;
  const char *buf_name[FFDP_PLAN_MAX_BUFS];
  double buf_bytes[FFDP_PLAN_MAX_BUFS];
  double scratch_bytes;   /* bound on what operators allocate for themselves (reductions) */
  double bytes;           /* all buffers (aligned) plus scratch_bytes */
  double spare_bytes;     /* of those, a field taken only because opt->device_budget leaves room
                             (the gradient smoothed out of place: a faster step, the same
                             result); 0 without a budget or where it does not fit */
} ffdp_plan_row;

typedef struct ffdp_plan {
  int gpus; /* ranks, one GPU each: every number below is per GPU, for the busiest rank */
  int nrows;
  ffdp_plan_row rows[FFDP_PLAN_MAX_ROWS];
  int peak_row;
  double peak_bytes;
  double bytes_per_voxel; /* peak / voxels of the fixed image at full resolution */
} ffdp_plan;

/* Plan for the CUDA device(s) (opt->device is not consulted): one GPU per rank of opt->comm. */
ffdp_status ffdp_reg_plan(const int64_t fixed_dim[3], ffdp_mat4 fixed_vox2world, const int64_t moving_dim[3],
                          ffdp_mat4 moving_vox2world, const ffdp_reg_options *opt, ffdp_plan *plan, ffdp_error *err);
/* The same for `gpus` ranks, one GPU each (what `mpirun -np gpus ffdp register` will need). */
ffdp_status ffdp_reg_plan_gpus(const int64_t fixed_dim[3], ffdp_mat4 fixed_vox2world, const int64_t moving_dim[3],
                               ffdp_mat4 moving_vox2world, const ffdp_reg_options *opt, int gpus, ffdp_plan *plan,
                               ffdp_error *err);

/* A plan that fits free_bytes per GPU: opt as given, or else opt with the memory savers added
 * one at a time in the order of what they save on a deformable level — the Adam moments at half
 * resolution (--state-resolution half), then the images as 16-bit codes (--image-precision u16),
 * then the moments in bf16 (--state-precision bf16) — until the plan fits. *step says which:
 * 0 as given, 1..3 that many savers added (opt and plan are the fitting ones), -1 none fits
 * (opt and plan are the leanest). Each saver measured within ±0.0003 NCC of the full state on
 * the shared pairs (bench/accuracy.md). */
ffdp_status ffdp_reg_plan_fit(const int64_t fixed_dim[3], ffdp_mat4 fixed_vox2world, const int64_t moving_dim[3],
                              ffdp_mat4 moving_vox2world, ffdp_reg_options *opt, int gpus, double free_bytes,
                              ffdp_plan *plan, int *step, ffdp_error *err);

/* Host memory a CPU registration (--device cpu) needs at least on its busiest rank, in bytes:
 * the fixed and moving images (each rank's share when sharded, else whole) and the largest
 * deformable level's buffers on the rank's own planes (greedy 36 B per voxel and 12 or 24 B of
 * Adam moments, SyN 52 B and 24 or 48 B) or SyN's final composition if larger (four fields of
 * the fixed grid, 48 B per voxel; ranks: two whole fields and their shares of two), with
 * --image-precision u16 the decoded copies of the images; halos, pyramid images, results and I/O
 * buffers not counted: a floor, for refusing runs that cannot fit before anything is loaded. */
double ffdp_reg_host_floor(const int64_t fixed_dim[3], ffdp_mat4 fixed_vox2world, const int64_t moving_dim[3],
                           ffdp_mat4 moving_vox2world, const ffdp_reg_options *opt, int ranks, int sharded);
/* Free and total memory of CUDA device 0 in bytes; FFDP_ERR_UNSUPPORTED without a device. */
ffdp_status ffdp_cuda_memory(double *free_bytes, double *total_bytes, ffdp_error *err);

#ifdef __cplusplus
}
#endif
#endif
