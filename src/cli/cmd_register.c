/* ffdp register: ANTs-familiar options, presets, live progress, summary and --json. */
#include "cli/cli.h"
#include "cli/register_outputs.h"
#include "core/comm_internal.h"
#include "core/err.h"
#include "io/gzip_parallel.h"
#include "io/nifti_common.h"
#include "reg/reg_internal.h"
#ifdef FFDP_HAVE_MPI
#include "ffdp/comm_mpi.h"
#endif
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f) {
  fprintf(f,
    "usage: ffdp register -f FIXED -m MOVING -o OUTPREFIX [preset | stages] [options]\n\n"
    "Registers MOVING to FIXED. Writes OUTPREFIXWarped.nii.gz, OUTPREFIX0GenericAffine.txt (ITK/ANTs\n"
    "affine, LPS) and, with a deformable stage, OUTPREFIX1Warp.nii.gz (ANTs displacement field), so that\n"
    "  ffdp apply (or antsApplyTransforms) -t OUTPREFIX1Warp.nii.gz -t OUTPREFIX0GenericAffine.txt\n"
    "reproduces the warped image.\n\n"
    "presets (default --greedy):\n"
    "  --rigid          moments + rigid (MI)\n"
    "  --affine         moments + rigid + affine (MI)\n"
    "  --greedy         moments + rigid + affine (MI) + greedy deformable (CC)\n"
    "  --syn            moments + rigid + affine (MI) + symmetric deformable (CC); also writes\n"
    "                   OUTPREFIX1InverseWarp.nii.gz (moving -> fixed, with [affine,1])\n"
    "                   (below ~0.8 mm voxels the presets' deformable pyramid deepens, coarsest level\n"
    "                   near 2.4 mm: 16x8x4x2x1 at 0.15 mm; 'ffdp plan' shows the levels)\n\n"
    "stages (replace the preset; options after a --transform apply to that stage):\n"
    "  --transform Rigid[lr] | Affine[lr] | Greedy[lr,grad_sigma,warp_sigma] | SyN[lr,grad_sigma,warp_sigma]\n"
    "  --metric CC[w] | MI[bins] | MSE     CC window w voxels (odd; ANTs radius r = window 2r+1)\n"
    "           or as antsRegistration: CC[fixed,moving,1,radius], MI[fixed,moving,1,bins,...],\n"
    "           MeanSquares[fixed,moving,1] (then -f and -m may be left out)\n"
    "  --convergence [200x100x50,1e-6,10] iterations per level, tolerance, window\n"
    "  --shrink-factors 4x2x1            per level, coarse to fine\n"
    "  --smoothing-sigmas 1x0.5x0vox     Gaussian sigma per level in voxels of the full-resolution\n"
    "                                    image, applied before shrinking (as ANTs)\n\n"
    "options:\n"
    "  -x, --masks FIXEDMASK[,MOVINGMASK]  restrict the metric to the mask(s)\n"
    "  --no-moments     start from the identity instead of centres of mass / principal axes\n"
    "  --threads N      CPU threads (default: all cores)\n"
    "  --device cpu|cuda|auto  where the stages run (default cpu); auto takes the GPU when there is\n"
    "                   one and says so when it falls back to the CPU\n"
    "  --state-precision fp32|bf16  storage of the deformable optimiser state (Adam moments; default\n"
    "                   fp32); bf16 saves 12 B per voxel and field on the GPU or the CPU ('ffdp plan'\n"
    "                   shows the effect on GPU memory)\n"
    "  --state-resolution full|half  where the Adam moments live: on every voxel (default) or on\n"
    "                   every second voxel per axis (1/8 of the state; each voxel steps along the\n"
    "                   mean Adam direction of the coarse points around it): 21 B per voxel and\n"
    "                   field less in fp32, on the GPU or the CPU (accuracy: bench/accuracy.md)\n"
    "  --image-precision fp32|u16  how the deformable stages keep the images they sample: fp32\n"
    "                   (default) or 16-bit codes over each image's intensity range (65536 levels),\n"
    "                   decoded as they are read: 2 B per voxel and image less on the GPU; the CPU\n"
    "                   reads decoded copies (same result, no memory saved; accuracy: bench/accuracy.md)\n"
    "                   When none of these three is given and a run does not fit, they are added in\n"
    "                   this order until it does, with a note: on a GPU half, u16, bf16; on the CPU\n"
    "                   half, bf16 (u16 saves no host memory)\n"
    "  --gpu-memory GB  plan for at most this much memory per GPU (default: what is free), e.g. on\n"
    "                   a GPU others share; the run is refused, or savers added, as above\n"
    "  --image-exchange window|ring|local  ranks: how sample points reach the moving image's planes\n"
    "                   on other ranks: fetch the planes they can reach from the ranks holding them\n"
    "                   (window, default), pass every rank's planes round once per iteration (ring,\n"
    "                   CPU only: the baseline), or read each rank's own copy (local); same result\n"
    "  --sharded-inputs 1|0  ranks: each rank reads only its share of both images' planes and the\n"
    "                   pyramid is built from shares (1, default: host memory per rank falls with the\n"
    "                   rank count), or every rank reads the whole images (0); same result\n"
    "  --output-format nii.gz|nii|zarr  images and fields written gzipped (default, as ANTs) or plain\n"
    "                   (much faster for large volumes, and ranks can read them by slab); zarr: Warped as\n"
    "                   an OME-Zarr store (compressed chunks, written in parallel), fields as plain .nii\n"
    "  --field-compression 0-9  gzip level of the displacement fields in .nii.gz: 0 (default) stores\n"
    "                   them in gzip's uncompressed blocks, which any reader takes (float warps shrink\n"
    "                   only ~9%% at level 1, and deflating them took longer than a GPU registration:\n"
    "                   0.5 mm SyN, two 423 MB fields, 1.19 s at level 1 against 0.52 s); 1 is the\n"
    "                   fastest compression, 9 the smallest files\n"
    "  --json FILE      write the run summary as JSON\n"
    "  antsRegistration's own switches are taken as well, so a command can be pasted:\n"
    "                   -o [prefix,warped(,inverseWarped)], -d 3, -r [fixed,moving,1|2], --verbose 0|1,\n"
    "                   -w [0.005,0.995] (winsorize), -u 1 (histogram matching), --float, -z, -n Linear,\n"
    "                   --random-seed (a note says where ffdp does something else)\n"
    "  -v, --verbose    one line per iteration;  -q, --quiet  only errors\n\n"
    "examples:\n"
    "  ffdp register -f MNI152_T1_2mm.nii.gz -m T1_head_2mm.nii.gz -o out/sub_ --greedy\n"
    "  ffdp register -f t1.nii.gz -m t2.nii.gz -o out/t2_ --affine --json out/t2.json\n"
    "  mpirun -np 4 ffdp register -f F.nii.gz -m M.nii.gz -o out/m_ --greedy   (4 CPU ranks, each a slab;\n"
    "       the same result as one process; rank 0 prints and writes)\n"
    "  ffdp register -f F.nii.gz -m M.nii.gz -o out/m_ --transform Affine[0.005] --metric MI[32] \\\n"
    "       --convergence [100x50,1e-6,10] --shrink-factors 2x1 --transform Greedy[0.5,1,0.5] --metric CC[5]\n"
    "  ffdp register -d 3 -o [out/s_,out/s_Warped.nii.gz] -w [0.005,0.995] --transform SyN[0.1,3,0] \\\n"
    "       --metric CC[F.nii.gz,M.nii.gz,1,4] --convergence [100x70x50,1e-6,10] --shrink-factors 4x2x1 \\\n"
    "       --smoothing-sigmas 2x1x0vox   (antsRegistration's spelling, images from the metric)\n");
}

static const char *exchange_name(ffdp_image_exchange x) {
  return x == FFDP_EXCHANGE_RING ? "ring" : x == FFDP_EXCHANGE_LOCAL ? "local" : "window";
}

typedef struct {
  int verbose, tty;
  int last_len;
  double level_t0;
} progress_state;


static void on_progress(void *ctx, const ffdp_progress *p) {
  progress_state *s = ctx;
  if (s->verbose < 0) return;
  double its = p->level_elapsed_s > 0 ? p->iter / p->level_elapsed_s : 0;
  char head[64];
  snprintf(head, sizeof head, "stage %d/%d %-6s level %d/%d", p->stage + 1, p->nstages, cli_stage_name(p->kind), p->level + 1,
           p->nlevels);
  if (p->level_done) {
    if (s->tty) printf("\r%*s\r", s->last_len, "");
    printf("%s  %4d it  %7.1f it/s  loss %+.6f  %6.1f s%s\n", head, p->iter, its, p->loss, p->elapsed_s,
           p->converged ? "  (converged)" : "");
    fflush(stdout);
    s->last_len = 0;
    return;
  }
  if (s->verbose > 0) {
    printf("%s  it %4d/%d  loss %+.6f  %6.2f s\n", head, p->iter, p->max_iters, p->loss, p->elapsed_s);
  } else if (s->tty) {
    int w = 24, fill = p->max_iters > 0 ? w * p->iter / p->max_iters : w;
    char bar[32];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    s->last_len = printf("\r%s [%s] %d/%d  %.1f it/s  loss %+.6f", head, bar, p->iter, p->max_iters, its, p->loss);
    fflush(stdout);
  }
}

/* "200x100x50" or "2x1x0vox" -> numbers; returns the count or -1. Split on 'x' before converting:
 * strtod alone would read "0x0" as hexadecimal. */
static int parse_list(const char *s, double *out, int max) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  size_t len = strlen(buf);
  if (len > 3 && !strcmp(buf + len - 3, "vox")) buf[len - 3] = 0;
  int n = 0;
  for (char *tok = buf, *next; tok; tok = next) {
    next = strchr(tok, 'x');
    if (next) *next++ = 0;
    char *e;
    if (n == max || !*tok) return -1;
    out[n++] = strtod(tok, &e);
    if (*e) return -1;
  }
  return n;
}

/* NAME[a,b,c] -> name and up to 3 numbers. */
static int parse_call(const char *s, char *name, size_t nlen, double *args, int *nargs) {
  const char *br = strchr(s, '[');
  size_t l = br ? (size_t)(br - s) : strlen(s);
  if (l >= nlen) return 0;
  memcpy(name, s, l);
  name[l] = 0;
  *nargs = 0;
  if (!br) return 1;
  const char *p = br + 1;
  char *e;
  while (*p && *p != ']' && *nargs < 3) {
    args[(*nargs)++] = strtod(p, &e);
    if (e == p) return 0;
    p = e;
    if (*p == ',') p++;
  }
  return *p == ']' && p[1] == 0;
}

/* Outputs that cannot fit on their disk are refused before loading anything, not after the
 * registration: the warped image (float32), the warp and, with SyN, its inverse (3 floats per
 * fixed voxel each). Uncompressed outputs must fit; compressed sizes are unknown beforehand
 * (fields rarely shrink below half), so .nii.gz only warns. */
static int check_output_space(const char *prefix, const char *ext, const char *img_ext, const int64_t fdim[3],
                              const ffdp_reg_options *opt, int verbose) {
  int deformable = 0, syn = 0;
  for (int i = 0; i < opt->nstages; i++) {
    deformable |= opt->stages[i].kind == FFDP_STAGE_GREEDY || opt->stages[i].kind == FFDP_STAGE_SYN;
    syn |= opt->stages[i].kind == FFDP_STAGE_SYN;
  }
  const double nvox = (double)fdim[0] * fdim[1] * fdim[2], need = nvox * (4 + 12 * deformable + 12 * syn) + 4096;
  /* what must fit for certain: the uncompressed outputs (zarr: the fields are plain .nii) */
  double hard = (strcmp(ext, ".nii") ? 0 : nvox * (12 * deformable + 12 * syn)) + (strcmp(img_ext, ".nii") ? 0 : nvox * 4);
  if (hard > 0) hard += 4096; /* headers and the affine */
  return cli_check_space(prefix, need, hard, "use --output-format nii.gz", verbose);
}

static int mkdirs_for(const char *prefix) {
  char d[4096];
  snprintf(d, sizeof d, "%s", prefix);
  char *slash = strrchr(d, '/');
  if (!slash) return 0;
  *slash = 0;
  for (char *p = d + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(d, 0755) && errno != EEXIST) return -1;
      *p = '/';
    }
  if (mkdir(d, 0755) && errno != EEXIST) return -1;
  struct stat sb; /* EEXIST also when a file holds the name: found here, not after the registration */
  if (stat(d, &sb) != 0) return -1;
  if (!S_ISDIR(sb.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return access(d, W_OK);
}

/* This rank's share of an image's planes (the rest never read, never mapped), or (comm NULL)
 * the whole image; r: the range of the planes read, for the normalization. */
static ffdp_status load_input(const char *path, const ffdp_comm *comm, ffdp_volume **v, ffdp_value_range *r,
                              ffdp_error *err) {
  if (!comm) return ffdp_volume_load_ranged(path, v, r, err);
  int64_t dim[3], z0, z1;
  ffdp_mat4 w;
  ffdp_status st = ffdp_volume_probe(path, dim, &w, err);
  if (st) return st;
  ffdp_comm_share(comm, dim[2], &z0, &z1);
  return ffdp_volume_load_share_ranged(path, z0, z1, v, r, err);
}

/* The GPU runtime starts (a few hundred ms) while the images load. */
typedef struct {
  int device;
  const ffdp_comm *comm; /* picks this rank's GPU */
  double seconds;
  ffdp_error err;
  ffdp_status st;
} warmup_job;

static void *warmup_main(void *arg) {
  warmup_job *j = arg;
  double t = cli_now();
  j->st = ffdp_device_warmup(j->device, j->comm, &j->err);
  j->seconds = cli_now() - t;
  return NULL;
}

static double peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

/* Writes and deletes j; 0 on success, else errno says why. */
static int write_json(const char *path, cJSON *j) {
  char *txt = cJSON_Print(j);
  FILE *f = fopen(path, "w");
  int ok = txt && f && fputs(txt, f) >= 0 && fputc('\n', f) != EOF;
  if (f) ok = (fclose(f) == 0) && ok;
  cJSON_free(txt);
  cJSON_Delete(j);
  return ok ? 0 : -1;
}

/* The GPU peak of the same registration with each optimiser state (precision x resolution),
 * with fp32 images (peak[0..3]) and 16-bit images (peak[4..7]), so that one plan shows the
 * choice; 0 where a plan fails. Only when a stage is deformable. */
static const char *const state_names[4] = {"fp32", "bf16", "coarse fp32", "coarse bf16"};
/* The largest of v over the ranks of c (collective; v itself for one process). */
static double max_over_ranks(const ffdp_comm *c, double v) { return c && c->size > 1 && c->max ? c->max(c, v) : v; }

/* The memory savers a run was given, as the options that name them (for the notes). */
static const char *saver_options(char *buf, size_t n, int half, int img16, int bf16) {
  snprintf(buf, n, "%s%s%s", half ? "--state-resolution half" : "", img16 ? " --image-precision u16" : "",
           bf16 ? " --state-precision bf16" : "");
  return buf;
}

static int plan_states(const int64_t fdim[3], ffdp_mat4 fw, const int64_t mdim[3], ffdp_mat4 mw, const ffdp_reg_options *opt,
                       int gpus, double peak[8]) {
  int deformable = 0;
  for (int s = 0; s < opt->nstages; s++)
    deformable |= opt->stages[s].kind == FFDP_STAGE_GREEDY || opt->stages[s].kind == FFDP_STAGE_SYN;
  if (!deformable) return 0;
  for (int k = 0; k < 8; k++) {
    ffdp_reg_options o = *opt;
    ffdp_plan p;
    o.device_budget = 0; /* what each state needs: no spare fields */
    o.state_precision = k & 1 ? FFDP_STATE_BF16 : FFDP_STATE_F32;
    o.state_resolution = k & 2 ? FFDP_STATE_HALF : FFDP_STATE_FULL;
    o.image_precision = k & 4 ? FFDP_IMAGE_U16 : FFDP_IMAGE_F32;
    peak[k] = ffdp_reg_plan_gpus(fdim, fw, mdim, mw, &o, gpus, &p, NULL) ? 0 : p.peak_bytes;
  }
  return 1;
}

static int write_plan_json(const char *path, const ffdp_plan *p, double free_b, double total_b, double host_floor,
                           const double *states) {
  cJSON *j = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(j, "rows");
  for (int i = 0; i < p->nrows; i++) {
    const ffdp_plan_row *r = &p->rows[i];
    cJSON *o = cJSON_CreateObject(), *b = cJSON_AddObjectToObject(o, "buffers_mb");
    cJSON_AddNumberToObject(o, "stage", r->stage + 1);
    cJSON_AddStringToObject(o, "kind", cli_stage_name(r->kind));
    cJSON_AddNumberToObject(o, "level", r->level + 1);
    double d[3] = {(double)r->dim[0], (double)r->dim[1], (double)r->dim[2]};
    cJSON_AddItemToObject(o, "grid", cJSON_CreateDoubleArray(d, 3));
    for (int k = 0; k < r->nbuf; k++) cJSON_AddNumberToObject(b, r->buf_name[k], r->buf_bytes[k] / 1e6);
    cJSON_AddNumberToObject(o, "device_mb", r->bytes / 1e6);
    if (r->spare_bytes > 0) cJSON_AddNumberToObject(o, "spare_field_mb", r->spare_bytes / 1e6); /* in device_mb */
    cJSON_AddNumberToObject(o, "ranks", r->ranks);
    cJSON_AddNumberToObject(o, "planes_stored", (double)r->planes);
    cJSON_AddItemToArray(rows, o);
  }
  cJSON_AddNumberToObject(j, "gpus", p->gpus);
  cJSON_AddNumberToObject(j, "peak_mb", p->peak_bytes / 1e6);
  cJSON_AddNumberToObject(j, "bytes_per_voxel", p->bytes_per_voxel);
  cJSON_AddNumberToObject(j, "cpu_host_floor_mb", host_floor / 1e6); /* --device cpu, per rank */
  if (states) { /* the peak with each optimiser state, with fp32 and with 16-bit images */
    cJSON *o = cJSON_AddObjectToObject(j, "peak_mb_by_state"), *c = cJSON_AddObjectToObject(j, "peak_mb_by_state_u16_images");
    for (int k = 0; k < 4; k++) cJSON_AddNumberToObject(o, state_names[k], states[k] / 1e6);
    for (int k = 0; k < 4; k++) cJSON_AddNumberToObject(c, state_names[k], states[4 + k] / 1e6);
  }
  if (total_b > 0) {
    cJSON_AddNumberToObject(j, "gpu_free_mb", free_b / 1e6);
    cJSON_AddNumberToObject(j, "gpu_total_mb", total_b / 1e6);
    cJSON_AddBoolToObject(j, "fits", p->peak_bytes <= free_b);
  }
  return write_json(path, j) ? cli_errorf("cannot write '%s': %s", path, strerror(errno)) : 0;
}

static int run_register(int argc, char **argv, int plan_only, const ffdp_comm *comm);
static int run_register_ranked(int argc, char **argv, const ffdp_comm *comm) { return run_register(argc, argv, 0, comm); }

/* ffdp plan takes a grid size in place of an image, NXxNYxNZ[@SPACING] (mm; default 1), to plan
 * hardware before the images exist: 1 when spec is one (dim and an axis-aligned vox2world set),
 * 0 when it is not, -1 (err set) for a size that cannot be a grid. */
static int parse_grid(const char *spec, int64_t dim[3], ffdp_mat4 *w, ffdp_error *err) {
  const char *p = spec;
  for (int a = 0; a < 3; a++) {
    if (*p < '0' || *p > '9') return 0;
    char *end;
    long long n = strtoll(p, &end, 10);
    if (a < 2 && *end != 'x') return 0;
    if (n < 1 || n > (1LL << 24))
      return ffdp_fail(err, FFDP_ERR_INVALID, "grid size '%s': each side must be 1 to 16777216 voxels", spec), -1;
    dim[a] = n;
    p = a < 2 ? end + 1 : end;
  }
  double sp = 1.0;
  if (*p == '@') {
    char *end;
    sp = strtod(p + 1, &end);
    if (end == p + 1 || *end || !(sp > 0) || !(sp < 1e6))
      return ffdp_fail(err, FFDP_ERR_INVALID, "grid size '%s': the spacing after '@' must be a positive number of mm", spec), -1;
  } else if (*p) {
    return 0;
  }
  *w = ffdp_mat4_identity();
  for (int a = 0; a < 3; a++) w->m[a][a] = sp;
  return 1;
}

/* An image's header, or (for plan, when no such file exists) a grid size. */
static ffdp_status probe_or_grid(const char *path, int plan_only, int64_t dim[3], ffdp_mat4 *w, ffdp_error *err) {
  if (plan_only && access(path, F_OK) != 0) {
    const int g = parse_grid(path, dim, w, err);
    if (g) return g > 0 ? FFDP_OK : err->code;
  }
  return ffdp_volume_probe(path, dim, w, err);
}

int ffdp_cmd_register(int argc, char **argv) { return cli_run_ranked(run_register_ranked, argc, argv); }
int ffdp_cmd_plan(int argc, char **argv) { return run_register(argc, argv, 1, NULL); }

/* -x FIXEDMASK[,MOVINGMASK] (ANTs also writes it in brackets; either may be left empty). */
static ffdp_status load_masks(const char *masks, ffdp_volume **fm, ffdp_volume **mm, ffdp_error *err) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", masks[0] == '[' ? masks + 1 : masks);
  char *e = strchr(buf, ']');
  if (e) *e = 0;
  char *comma = strchr(buf, ',');
  if (comma) *comma = 0;
  ffdp_status st = FFDP_OK;
  if (buf[0]) st = ffdp_volume_load(buf, fm, err);
  if (!st && comma && comma[1]) st = ffdp_volume_load(comma + 1, mm, err);
  return st;
}

/* The same path, or two names of one file. */
static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return !strcmp(a, b) || (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino);
}

/* Early exits before the images are loaded: the masks go with them. */
static int done(int rc, ffdp_volume *fm, ffdp_volume *mm) {
  ffdp_volume_free(fm), ffdp_volume_free(mm);
  return rc;
}

/* inputs of more voxels than this (both images; ~1 GB as float) have the GPU fit checked before
 * they load */
enum { FIT_BEFORE_LOAD_VOXELS = 1 << 28 };

/* Whether the registration fits every rank's GPU (the least free memory of any, or --gpu-memory):
 * as asked, or with savers added in turn (half, u16, bf16) when none was named, with a note;
 * otherwise the plan table and an error that says what to try. Needs the device started. */
static ffdp_status check_gpu_fit(const ffdp_comm *comm, ffdp_reg_options *opt, ffdp_plan *plan, const int64_t fdim[3],
                                 ffdp_mat4 fw, const int64_t mdim[3], ffdp_mat4 mw, int gpus, double gpu_mem, int lean_set,
                                 int verbose, int *half, int *img16, int *bf16, ffdp_error *err) {
  double free_b = 0, total_b = 0;
  ffdp_status fst = ffdp_cuda_memory(&free_b, &total_b, err);
  if (!fst && gpu_mem > 0 && gpu_mem < free_b) free_b = gpu_mem;
  /* too large as asked, and no saver chosen by hand: add savers until it fits (every rank the
   * same: by the least free memory of any rank's GPU) */
  const double free_min = -max_over_ranks(comm, -(fst ? 0 : free_b));
  if (!fst && free_min > 0) { /* what may be used: large planes then smooth out of place where it leaves room */
    ffdp_plan p;
    opt->device_budget = free_min;
    if (!ffdp_reg_plan_gpus(fdim, fw, mdim, mw, opt, gpus ? gpus : ffdp_comm_size(comm), &p, NULL)) *plan = p;
  }
  double leanest = 0; /* > 0: even every saver leaves this peak (the refusal says so) */
  if (!fst && plan->peak_bytes > free_min && !lean_set) {
    ffdp_reg_options o = *opt;
    ffdp_plan p;
    int step = -1;
    const double need = plan->peak_bytes;
    const ffdp_status fit = ffdp_reg_plan_fit(fdim, fw, mdim, mw, &o, gpus ? gpus : ffdp_comm_size(comm), free_min, &p,
                                              &step, NULL);
    if (!fit && step > 0) {
      *opt = o, *plan = p;
      *half = 1, *img16 = step >= 2, *bf16 = step >= 3;
      char sv[96];
      if (verbose >= 0)
        fprintf(stderr,
                "ffdp register: note: as asked the registration needs %.2f GB per GPU but %.2f GB are free: running "
                "with %s (%.2f GB; accuracy: bench/accuracy.md); give any of these options to choose yourself\n",
                need / 1e9, free_min / 1e9, saver_options(sv, sizeof sv, *half, *img16, *bf16), plan->peak_bytes / 1e9);
    } else if (!fit && step < 0) {
      leanest = p.peak_bytes;
    }
  }
  if (!fst && plan->peak_bytes > free_b) {
    cli_print_plan(stderr, plan, free_b, total_b, gpu_mem);
    char lean[160] = "try --state-precision bf16, --state-resolution half, --image-precision u16,";
    if (leanest > 0)
      snprintf(lean, sizeof lean,
               "even with --state-resolution half --image-precision u16 --state-precision bf16 it needs %.2f GB; try",
               leanest / 1e9);
    fst = ffdp_fail(err, FFDP_ERR_NOMEM,
                    "the registration needs %.2f GB on %s GPU but %.2f GB are free%s (table above); %s a coarser "
                    "finest level, more GPUs or --device cpu",
                    plan->peak_bytes / 1e9, plan->gpus > 1 ? "each" : "the", free_b / 1e9,
                    gpu_mem > 0 && free_b == gpu_mem ? " under --gpu-memory" : "", lean);
  }
  return fst;
}

static int run_register(int argc, char **argv, int plan_only, const ffdp_comm *comm) {
  const char *fixed = NULL, *moving = NULL, *prefix = NULL, *json = NULL, *masks = NULL, *preset = "greedy",
             *ext = ".nii.gz", *img_ext = ".nii.gz", /* fields, Warped */
             *field_level = NULL;                   /* --field-compression */
  char metric_fixed[CLI_PATH_MAX] = "", metric_moving[CLI_PATH_MAX] = ""; /* from ANTs-style --metric */
  cli_ants_opts ants; /* what a pasted antsRegistration command set */
  memset(&ants, 0, sizeof ants);
  int threads = 0, verbose = 0, moments = 1, custom = 0, device = 0, bf16 = 0, half = 0, gpus = 0, img16 = 0;
  double gpu_mem = 0; /* --gpu-memory: bytes per GPU this run may plan for (0: what is free) */
  int lean_set = 0; /* any of --state-precision, --state-resolution, --image-precision given: no automatic fit */
  ffdp_image_exchange exchange = FFDP_EXCHANGE_WINDOW;
  int sharded = 1;
  ffdp_reg_options opt;
  ffdp_error err = {0};
  memset(&opt, 0, sizeof opt);
  ffdp_stage_spec *cur = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                      \
  do {                                                                                    \
    if (!v) return cli_errorf("option %s needs a value (see 'ffdp register --help')", a); \
    i++;                                                                                  \
  } while (0)
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      if (plan_only)
        printf("usage: ffdp plan -f FIXED -m MOVING [preset | stages] [--state-precision bf16]\n"
               "                 [--state-resolution half] [--image-precision u16] [--gpus N]\n"
               "                 [--gpu-memory GB] [--json FILE]\n\n"
               "Prints the GPU memory each stage level of 'ffdp register' with the same options would\n"
               "allocate, the peak, and whether it fits the free memory of GPU 0 (when there is one)\n"
               "or --gpu-memory GB; when it does not and no memory saver was named, which savers\n"
               "'ffdp register' would add to make it fit.\n"
               "With --gpus N: per GPU for 'mpirun -np N ffdp register ... --device cuda' (one rank\n"
               "per GPU; the busiest rank's slab). Reads the image headers only; -f and -m may also\n"
               "be grid sizes NXxNYxNZ[@SPACING_MM] (no file needed), to plan before the images exist.\n\n"
               "examples:\n"
               "  ffdp plan -f ch2better.nii.gz -m T1_head_2mm.nii.gz --syn --state-precision bf16\n"
               "  ffdp plan -f MNI152_T1_1mm_brain.nii.gz -m t1_brain.nii.gz --syn --state-resolution half\n"
               "  ffdp plan -f big_fixed.nii -m big_moving.nii --greedy --gpus 2\n"
               "  ffdp plan -f 2400x2400x2400@0.1 -m 2400x2400x2400@0.1 --greedy --gpus 8\n"
               "  ffdp plan -f 1200x1200x1200@0.2 -m 1200x1200x1200@0.2 --greedy --gpu-memory 80\n"
               "  ffdp plan -f 1536x1536x1536@0.1 -m 1536x1536x1536@0.1 --greedy --state-resolution half \\\n"
               "            --image-precision u16          # the leanest fp32 state: 3.6 Gvox in 118 GB\n");
      else
        usage(stdout);
      return 0;
    } else if (!strcmp(a, "-f") || !strcmp(a, "--fixed")) { NEED_VALUE(); fixed = v; }
    else if (!strcmp(a, "-m") || !strcmp(a, "--moving")) { NEED_VALUE(); moving = v; }
    else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      NEED_VALUE();
      prefix = v;
      if (v[0] == '[') { /* antsRegistration: [prefix,warped,inverseWarped] */
        if (cli_ants_switch(a, v, &ants) < 0) return 1;
        prefix = ants.prefix;
      }
    }
    else if (!strcmp(a, "-x") || !strcmp(a, "--masks")) { NEED_VALUE(); masks = v; }
    else if (!strcmp(a, "--json")) { NEED_VALUE(); json = v; }
    else if (!strcmp(a, "--output-format")) {
      NEED_VALUE();
      if (strcmp(v, "nii.gz") && strcmp(v, "nii") && strcmp(v, "zarr"))
        return cli_errorf("--output-format must be nii.gz, nii or zarr, not '%s'", v);
      ext = !strcmp(v, "nii.gz") ? ".nii.gz" : ".nii"; /* the fields: NIfTI for ANTs in any case */
      img_ext = !strcmp(v, "zarr") ? ".zarr" : ext;
    }
    else if (!strcmp(a, "--field-compression")) {
      NEED_VALUE();
      if (!(v[0] >= '0' && v[0] <= '9' && !v[1]))
        return cli_errorf("--field-compression must be a gzip level from 0 (none) to 9, not '%s'", v);
      field_level = v;
    }
    else if (!strcmp(a, "--gpus") && plan_only) {
      NEED_VALUE();
      char *end;
      long g = strtol(v, &end, 10);
      if (*end || g < 1 || g > 4096) return cli_errorf("--gpus must be a whole number from 1 to 4096, not '%s'", v);
      gpus = (int)g;
    }
    else if (!strcmp(a, "--gpu-memory")) {
      NEED_VALUE();
      char *end;
      const double g = strtod(v, &end);
      if (*end || !(g > 0 && g < 1e6)) return cli_errorf("--gpu-memory takes GB per GPU (a positive number), not '%s'", v);
      gpu_mem = g * 1e9;
    }
    else if (!strcmp(a, "--threads")) {
      NEED_VALUE();
      threads = atoi(v);
      if (threads < 1) return cli_errorf("--threads needs a positive number, not '%s'", v);
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      verbose = 1;
      if (v && (!strcmp(v, "0") || !strcmp(v, "1"))) verbose = v[0] == '1' ? 1 : 0, i++; /* ANTs: --verbose 1 */
    }
    else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) verbose = -1;
    else if (!strcmp(a, "--no-moments")) moments = 0;
    else if (!strcmp(a, "--device")) {
      NEED_VALUE();
      if (!strcmp(v, "cpu")) device = 0;
      else if (!strcmp(v, "cuda")) device = 1;
      else if (!strcmp(v, "auto")) device = -1;
      else return cli_errorf("--device must be cpu, cuda or auto, not '%s'", v);
    } else if (!strcmp(a, "--image-exchange")) {
      NEED_VALUE();
      if (!strcmp(v, "window")) exchange = FFDP_EXCHANGE_WINDOW;
      else if (!strcmp(v, "ring")) exchange = FFDP_EXCHANGE_RING;
      else if (!strcmp(v, "local")) exchange = FFDP_EXCHANGE_LOCAL;
      else return cli_errorf("--image-exchange must be window, ring or local, not '%s'", v);
    } else if (!strcmp(a, "--sharded-inputs")) {
      NEED_VALUE();
      if (!strcmp(v, "1")) sharded = 1;
      else if (!strcmp(v, "0")) sharded = 0;
      else return cli_errorf("--sharded-inputs must be 1 or 0, not '%s'", v);
    } else if (!strcmp(a, "--state-precision")) {
      NEED_VALUE();
      lean_set = 1;
      if (!strcmp(v, "fp32")) bf16 = 0;
      else if (!strcmp(v, "bf16")) bf16 = 1;
      else return cli_errorf("--state-precision must be fp32 or bf16, not '%s'", v);
    } else if (!strcmp(a, "--state-resolution")) {
      NEED_VALUE();
      lean_set = 1;
      if (!strcmp(v, "full")) half = 0;
      else if (!strcmp(v, "half")) half = 1;
      else return cli_errorf("--state-resolution must be full or half, not '%s'", v);
    } else if (!strcmp(a, "--image-precision")) {
      NEED_VALUE();
      lean_set = 1;
      if (!strcmp(v, "fp32")) img16 = 0;
      else if (!strcmp(v, "u16")) img16 = 1;
      else return cli_errorf("--image-precision must be fp32 or u16, not '%s'", v);
    }
    else if (!strcmp(a, "--rigid") || !strcmp(a, "--affine") || !strcmp(a, "--greedy") || !strcmp(a, "--syn")) preset = a + 2;
    else if (!strcmp(a, "--transform") || !strcmp(a, "-t")) {
      NEED_VALUE();
      char name[32];
      double args[3];
      int na;
      if (!parse_call(v, name, sizeof name, args, &na)) return cli_errorf("cannot parse --transform '%s'", v);
      if (opt.nstages == FFDP_MAX_STAGES) return cli_errorf("at most %d stages", FFDP_MAX_STAGES);
      ffdp_stage_kind k;
      if (!strcasecmp(name, "Rigid")) k = FFDP_STAGE_RIGID;
      else if (!strcasecmp(name, "Affine")) k = FFDP_STAGE_AFFINE;
      else if (!strcasecmp(name, "Greedy")) k = FFDP_STAGE_GREEDY;
      else if (!strcasecmp(name, "SyN")) k = FFDP_STAGE_SYN;
      else return cli_errorf("unknown transform '%s' (Rigid, Affine, Greedy, SyN)", name);
      cur = &opt.stages[opt.nstages++];
      *cur = ffdp_stage_default(k);
      if (na > 0) cur->lr = args[0];
      if (na > 1) cur->grad_sigma = args[1];
      if (na > 2) cur->warp_sigma = args[2];
      if (na > 1 && k != FFDP_STAGE_GREEDY && k != FFDP_STAGE_SYN) return cli_errorf("%s takes one parameter [learning rate]", name);
      custom = 1;
    } else if (!strcmp(a, "--metric") || !strcmp(a, "--convergence") || !strcmp(a, "--shrink-factors") ||
               !strcmp(a, "--smoothing-sigmas")) {
      NEED_VALUE();
      if (!cur) return cli_errorf("%s must follow a --transform (presets use built-in schedules)", a);
      if (!strcmp(a, "--metric")) {
        char mf[CLI_PATH_MAX], mm[CLI_PATH_MAX], note[256], why[512];
        if (!cli_parse_metric(v, &cur->metric, mf, mm, note, sizeof note, why, sizeof why)) return cli_errorf("%s", why);
        if (note[0]) cli_ants_note(&ants, "%s", note);
        if (mf[0]) { /* ANTs' form names the images: every stage the same pair */
          if (!metric_fixed[0]) snprintf(metric_fixed, sizeof metric_fixed, "%s", mf), snprintf(metric_moving, sizeof metric_moving, "%s", mm);
          else if (strcmp(mf, metric_fixed) || strcmp(mm, metric_moving))
            return cli_errorf("--metric names %s and %s, an earlier one %s and %s: one image pair per registration", mf, mm,
                              metric_fixed, metric_moving);
        }
      } else if (!strcmp(a, "--convergence")) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", v[0] == '[' ? v + 1 : v);
        char *end = strchr(buf, ']');
        if (end) *end = 0;
        char *tok = strtok(buf, ",");
        double its[FFDP_MAX_LEVELS];
        int n = tok ? parse_list(tok, its, FFDP_MAX_LEVELS) : -1;
        if (n < 1) return cli_errorf("cannot parse --convergence '%s' (e.g. [200x100x50,1e-6,10])", v);
        if (cur->level_mm[0] > 0) /* physical-size levels, halving down to 2 mm */
          for (int l = 0; l < n; l++) cur->level_mm[l] = 2.0 * (double)(1 << (n - 1 - l));
        cur->nlevels = n, cur->auto_levels = 0; /* the levels as given */
        for (int l = 0; l < n; l++) cur->iters[l] = (int)its[l];
        if ((tok = strtok(NULL, ","))) cur->tol = atof(tok);
        if ((tok = strtok(NULL, ","))) cur->window = atoi(tok);
      } else {
        double vals[FFDP_MAX_LEVELS];
        int n = parse_list(v, vals, FFDP_MAX_LEVELS);
        if (n < 1)
          return cli_errorf("cannot parse %s '%s' (e.g. %s)", a, v,
                            a[2] == 's' && a[3] == 'h' ? "4x2x1" : "2x1x0vox; sigmas in mm are not supported yet");
        if (n != cur->nlevels)
          return cli_errorf("%s has %d levels but --convergence has %d; give the same number", a, n, cur->nlevels);
        for (int l = 0; l < n; l++) {
          if (a[2] == 's' && a[3] == 'h') cur->shrink[l] = (int)vals[l], cur->level_mm[0] = 0, cur->auto_levels = 0;
          else cur->smooth[l] = vals[l];
        }
      }
    } else {
      const int t = cli_ants_switch(a, v, &ants); /* a pasted antsRegistration command's switches */
      if (t < 0) return 1;
      if (t == 0) return cli_errorf("unknown option '%s' (see 'ffdp register --help')", a);
      i++;
      if (ants.no_moments) moments = 0;
    }
  }
  if (metric_fixed[0]) { /* antsRegistration takes the images from the metric */
    if (!fixed) fixed = metric_fixed;
    else if (!same_file(fixed, metric_fixed)) return cli_errorf("-f is %s but --metric names %s as the fixed image", fixed, metric_fixed);
    if (!moving) moving = metric_moving;
    else if (!same_file(moving, metric_moving))
      return cli_errorf("-m is %s but --metric names %s as the moving image", moving, metric_moving);
  }
  if (!fixed || !moving || (!prefix && !plan_only))
    return cli_errorf(plan_only ? "-f FIXED and -m MOVING are required (see 'ffdp plan --help')"
                                : "-f FIXED, -m MOVING and -o OUTPREFIX are required (or the images in an ANTs-style "
                                  "--metric CC[fixed,moving,1,4]; see 'ffdp register --help')");
  if (!custom && ffdp_reg_options_preset(&opt, preset, &err)) return cli_error(&err);
  for (int s = 0; s < opt.nstages; s++) /* a metric a stage cannot use */
    if (opt.stages[s].kind == FFDP_STAGE_GREEDY && opt.stages[s].metric.kind == FFDP_METRIC_MI && opt.stages[s].metric.bins < 8)
      return cli_errorf("stage %d: MI needs at least 8 bins", s + 1);
  /* Every kernel loaded when the warm-up thread creates the context, while the images load,
   * instead of at each kernel's first launch inside the stages (CUDA's lazy default). H100,
   * bench/gpu/NOTES.md run 173: small SyN preset 0.08-0.09 -> 0.07-0.08 s (its SyN level 1 11.1
   * -> 7.2 ms, the moments 5.3-6.4 -> 3.4-3.9), medium moments 10-11 -> 7 ms; loading took as long.
   * Set before the first CUDA call (the driver reads it once); a user's own setting wins. */
  if (device != 0 && !plan_only) setenv("CUDA_MODULE_LOADING", "EAGER", 0);
  /* read by the field writers (gzip_parallel.h), on every rank alike: each parses its arguments */
  if (field_level) setenv("FFDP_FIELD_GZ_LEVEL", field_level, 1);
  if (device == -1) {
    const char *why = ffdp_cuda_device_count() < 1 ? "no CUDA device found" : NULL;
    device = why ? 0 : 1;
    if (why && verbose >= 0) fprintf(stderr, "ffdp register: note: %s; running on the CPU\n", why);
  }
  if (exchange == FFDP_EXCHANGE_RING && device == 1 && !plan_only)
    return cli_errorf("--image-exchange ring runs on the CPU stages only; use window or local with --device cuda");
  opt.moments = moments;
  opt.device = device;
  opt.comm = comm;
  if (ffdp_comm_rank(comm) != 0) verbose = -1, json = NULL;
  if (ants.notes[0] && verbose >= 0 && !plan_only) fputs(ants.notes, stderr);
  opt.state_precision = bf16 ? FFDP_STATE_BF16 : FFDP_STATE_F32;
  opt.state_resolution = half ? FFDP_STATE_HALF : FFDP_STATE_FULL;
  opt.image_precision = img16 ? FFDP_IMAGE_U16 : FFDP_IMAGE_F32;
  if (gpu_mem > 0 && device == 0 && verbose >= 0 && !plan_only)
    fprintf(stderr, "ffdp register: note: --gpu-memory has no effect on the CPU (host memory is checked as it is)\n");
  if (img16 && device == 0 && verbose >= 0 && !plan_only) /* what it is for: GPU memory */
    fprintf(stderr, "ffdp register: note: on the CPU --image-precision u16 reads decoded copies of the images (the values "
                    "a GPU reads): the same result as on a GPU, no memory saved\n");
  opt.image_exchange = exchange;
  if (threads) omp_set_num_threads(threads);
  ffdp_plan plan;
  memset(&plan, 0, sizeof plan);
  int64_t fdim[3], mdim[3];
  int fst_space = 0;
  ffdp_mat4 fw, mw;
  /* masks first: the plan sizes their device buffers, and a missing mask stops the run before
   * the large images are read (every rank holds them whole) */
  ffdp_volume *fm = NULL, *mm = NULL;
  if (masks && ffdp_comm_agree(comm, load_masks(masks, &fm, &mm, &err), &err)) return done(cli_error(&err), fm, mm);
  opt.fixed_mask = fm, opt.moving_mask = mm;
  if (plan_only || opt.device == 1) { /* from the headers, before anything large is read */
    if (probe_or_grid(fixed, plan_only, fdim, &fw, &err) || probe_or_grid(moving, plan_only, mdim, &mw, &err) ||
        ffdp_reg_plan_gpus(fdim, fw, mdim, mw, &opt, gpus ? gpus : ffdp_comm_size(comm), &plan, &err))
      return done(cli_error(&err), fm, mm);
  }
  if (plan_only) {
    double free_b = 0, total_b = 0;
    if (ffdp_cuda_device_count() > 0 && ffdp_cuda_memory(&free_b, &total_b, &err)) return done(cli_error(&err), fm, mm);
    if (gpu_mem > 0) free_b = free_b > 0 && free_b < gpu_mem ? free_b : gpu_mem;
    if (free_b > 0) { /* the plan register would make: what is free is its budget (check_gpu_fit) */
      opt.device_budget = free_b;
      if (ffdp_reg_plan_gpus(fdim, fw, mdim, mw, &opt, gpus ? gpus : ffdp_comm_size(comm), &plan, &err))
        return done(cli_error(&err), fm, mm);
    }
    if (verbose >= 0) cli_print_plan(stdout, &plan, free_b, total_b, gpu_mem);
    const int n = gpus ? gpus : ffdp_comm_size(comm);
    if (free_b > 0 && plan.peak_bytes > free_b && !lean_set && verbose >= 0) { /* what register would do */
      ffdp_reg_options o = opt;
      ffdp_plan p;
      int step = -1;
      char sv[96];
      if (!ffdp_reg_plan_fit(fdim, fw, mdim, mw, &o, n, free_b, &p, &step, NULL)) {
        if (step > 0)
          printf("ffdp register would add %s: peak %.1f MB, fits\n", saver_options(sv, sizeof sv, 1, step >= 2, step >= 3),
                 p.peak_bytes / 1e6);
        else if (p.peak_bytes > plan.peak_bytes - 1)
          printf("no memory saver makes it fit: more GPUs (--gpus), a coarser finest level or --device cpu\n");
        else
          printf("even with every memory saver the peak is %.1f MB: more GPUs (--gpus), a coarser finest level or "
                 "--device cpu\n", p.peak_bytes / 1e6);
      }
    }
    const double host = ffdp_reg_host_floor(fdim, fw, mdim, mw, &opt, n, sharded);
    if (verbose >= 0)
      printf("on the CPU instead (--device cpu%s): at least %.1f MB of host memory%s\n", n > 1 ? ", ranks" : "",
             host / 1e6, n > 1 ? " per rank" : "");
    double states[8];
    const int have = plan_states(fdim, fw, mdim, mw, &opt, n, states);
    if (have && verbose >= 0)
      printf("peak by optimiser state: fp32 %.1f MB, bf16 %.1f MB (--state-precision bf16), coarse %.1f MB "
             "(--state-resolution half), coarse bf16 %.1f MB (both)\n",
             states[0] / 1e6, states[1] / 1e6, states[2] / 1e6, states[3] / 1e6);
    if (have && verbose >= 0)
      printf("  the same with 16-bit images (--image-precision u16): %.1f, %.1f, %.1f, %.1f MB\n", states[4] / 1e6,
             states[5] / 1e6, states[6] / 1e6, states[7] / 1e6);
    return done(json ? write_plan_json(json, &plan, free_b, total_b, host, have ? states : NULL) : 0, fm, mm);
  }
  if (ants.warped[0] && !ffdp_path_is_nifti(ants.warped) && !ffdp_path_is_zarr(ants.warped))
    return done(cli_errorf("-o: the warped image '%s' must end in .nii, .nii.gz or .zarr", ants.warped), fm, mm);
  const char *outdir_of = mkdirs_for(prefix) != 0 ? prefix : ants.warped[0] && mkdirs_for(ants.warped) != 0 ? ants.warped : NULL;
  if (outdir_of)
    return done(cli_errorf("cannot create or write the output directory of '%s': %s", outdir_of, strerror(errno)), fm, mm);
  if (cli_outputs_visible(comm, prefix, &err) || (ants.warped[0] && cli_outputs_visible(comm, ants.warped, &err)))
    return done(cli_error(&err), fm, mm);
  if (ffdp_comm_rank(comm) == 0) { /* rank 0 checks the disk for all (the ranks write into one directory) */
    if (!(plan_only || opt.device == 1) && ffdp_volume_probe(fixed, fdim, &fw, &err)) fst_space = cli_error(&err);
    else fst_space = check_output_space(prefix, ext, img_ext, fdim, &opt, verbose);
  }
  if (ffdp_comm_size(comm) > 1 &&
      ffdp_comm_agree(comm, fst_space ? ffdp_fail(&err, FFDP_ERR_IO, "rank 0 cannot write the outputs") : FFDP_OK, &err))
    return done(fst_space ? fst_space : cli_error(&err), fm, mm);
  if (fst_space) return done(fst_space, fm, mm);
  if (opt.device == 0) { /* CPU: the host memory the largest level needs at least, before anything is loaded */
    ffdp_status mst = ffdp_volume_probe(fixed, fdim, &fw, &err);
    if (!mst) mst = ffdp_volume_probe(moving, mdim, &mw, &err);
    const int share = sharded && ffdp_comm_size(comm) > 1, here = ffdp_comm_local_size(comm);
    double need = mst ? 0 : ffdp_reg_host_floor(fdim, fw, mdim, mw, &opt, ffdp_comm_size(comm), share) * here;
    const double avail = cli_mem_available();
    int leanest_short = 0; /* even both savers leave it over the available memory */
    if (!lean_set) { /* too large as asked, no saver named: the moments at half resolution, then also in bf16
                      * (16-bit images save no host memory); every rank takes the most any rank needs */
      int step = 0; /* 0 as asked, 1 half, 2 half + bf16, 3 none fits */
      if (!mst && avail > 0 && need > avail) {
        ffdp_reg_options o = opt;
        for (step = 1; step <= 2; step++) {
          o.state_resolution = FFDP_STATE_HALF;
          if (step == 2) o.state_precision = FFDP_STATE_BF16;
          if (ffdp_reg_host_floor(fdim, fw, mdim, mw, &o, ffdp_comm_size(comm), share) * here <= avail) break;
        }
      }
      leanest_short = step == 3;
      const int all = (int)max_over_ranks(comm, step);
      if (all == 1 || all == 2) { /* none fits on some rank (3): as asked, refused below */
        opt.state_resolution = FFDP_STATE_HALF, half = 1;
        if (all == 2) opt.state_precision = FFDP_STATE_BF16, bf16 = 1;
        const double was = need;
        need = ffdp_reg_host_floor(fdim, fw, mdim, mw, &opt, ffdp_comm_size(comm), share) * here;
        char sv[96];
        if (verbose >= 0)
          fprintf(stderr,
                  "ffdp register: note: as asked the registration needs at least %.3g GB of memory on this host but "
                  "%.3g GB are available: running with %s (%.3g GB; accuracy: bench/accuracy.md); give "
                  "--state-resolution or --state-precision to choose yourself\n",
                  was / 1e9, avail / 1e9, saver_options(sv, sizeof sv, half, 0, bf16), need / 1e9);
      }
    }
    if (!mst && avail > 0 && need > avail)
      mst = ffdp_fail(&err, FFDP_ERR_NOMEM,
                      "the registration needs at least %.3g GB of memory on this host (%d rank%s; the images and the "
                      "largest level's fields), but %.3g GB are available; %s ranks on more hosts (mpirun), or --device "
                      "cuda ('ffdp plan' shows both)",
                      need / 1e9, here, here == 1 ? "" : "s", avail / 1e9,
                      leanest_short ? "--state-resolution half --state-precision bf16 would still need more; try"
                                  : "try --state-precision bf16, --state-resolution half,");
    if (ffdp_comm_agree(comm, mst, &err)) return done(cli_error(&err), fm, mm);
  }

  double t0 = cli_now();
  warmup_job wj = {device, comm, 0, {0}, FFDP_OK};
  pthread_t wt;
  int warming = device == 1 && pthread_create(&wt, NULL, warmup_main, &wj) == 0;
  /* the fit is checked before loading where the inputs are large (a refusal should not wait for
   * a long load), otherwise after it, so that the device starts while the images load (0.5 mm
   * SyN preset on an H100: the load's 0.07-0.11 s had come after the device's start, 0.27-0.36 s;
   * now it is hidden under it; bench/gpu/NOTES.md run 190) */
  const int check_fit = plan.peak_bytes > 2e9 || gpu_mem > 0;
  const int fit_first = check_fit && (double)fdim[0] * fdim[1] * fdim[2] + (double)mdim[0] * mdim[1] * mdim[2] > FIT_BEFORE_LOAD_VOXELS;
  if (warming && fit_first) {
    pthread_join(wt, NULL);
    warming = 0;
    if (wj.st) return done(cli_error(&wj.err), fm, mm);
    ffdp_status fst = check_gpu_fit(comm, &opt, &plan, fdim, fw, mdim, mw, gpus, gpu_mem, lean_set, verbose, &half, &img16, &bf16, &err);
    if (ffdp_comm_agree(comm, fst, &err)) return done(cli_error(&err), fm, mm); /* every rank stops, none waits */
  }
  ffdp_volume *F = NULL, *M = NULL;
  ffdp_reg_result *res = NULL;
  int after_reg = 0; /* ranks agree once more after rank 0 has written its report (--json) */
  sharded = sharded && ffdp_comm_size(comm) > 1;
  ffdp_value_range frange, mrange; /* what the loads found: the normalization's range */
  const char *lr = getenv("FFDP_LOAD_RANGE"); /* 0: the normalization's own pass (comparisons) */
  ffdp_value_range *fr = lr && lr[0] == '0' ? NULL : &frange, *mr = fr ? &mrange : NULL;
  ffdp_status lst = load_input(fixed, sharded ? comm : NULL, &F, fr, &err);
  if (!lst) lst = load_input(moving, sharded ? comm : NULL, &M, mr, &err);
  if (warming) pthread_join(wt, NULL);
  if (!lst && wj.st) lst = wj.st, err = wj.err;
  if (ffdp_comm_agree(opt.comm, lst, &err)) goto fail; /* a rank that cannot load stops them all */
  if (warming && check_fit) { /* collective: every rank has loaded */
    lst = check_gpu_fit(comm, &opt, &plan, fdim, fw, mdim, mw, gpus, gpu_mem, lean_set, verbose, &half, &img16, &bf16, &err);
    if (ffdp_comm_agree(opt.comm, lst, &err)) goto fail;
  }
  double t_load = cli_now() - t0;
  progress_state ps = {verbose, isatty(STDOUT_FILENO), 0, 0};
  opt.progress = on_progress;
  opt.progress_ctx = &ps;
  if (verbose >= 0) {
    const int64_t *fd = ffdp_volume_dim(F), *md = ffdp_volume_dim(M);
    printf("ffdp register: fixed %s (%lldx%lldx%lld), moving %s (%lldx%lldx%lld), %d threads, loaded in %.2f s\n", fixed,
           (long long)fd[0], (long long)fd[1], (long long)fd[2], moving, (long long)md[0], (long long)md[1], (long long)md[2],
           omp_get_max_threads(), t_load);
    if (device == 1) printf("  on the CUDA device (started in %.2f s, during loading)\n", wj.seconds);
    fflush(stdout);
  }
  double t1 = cli_now();
  /* normalized in place (what ffdp_register would do to copies), so that no rank holds a second
   * copy of either image; the moving image's intensities are restored for the Warped output */
  double flo = 0, fhi = 1, mlo = 0, mhi = 1;
  /* winsorized or histogram-matched intensities cannot be restored: Warped reads the moving
   * planes again and scales them by the image's min and max, found here */
  const int remapped = ants.winsorize[1] > 0 || ants.histogram_match;
  const double q01[2] = {0, 1}, *q = ants.winsorize[1] > 0 ? ants.winsorize : q01;
  const ffdp_comm *share_comm = sharded ? comm : NULL; /* collective: the range of every rank's share */
  lst = remapped ? reg_intensity_range_loaded(F, share_comm, "fixed", fr, &flo, &fhi, &err) : FFDP_OK;
  if (!lst && remapped) lst = reg_intensity_range_loaded(M, share_comm, "moving", mr, &mlo, &mhi, &err);
  if (!lst) lst = reg_normalize_loaded(F, share_comm, q, "fixed", fr, remapped ? NULL : &flo, remapped ? NULL : &fhi, &err);
  if (!lst) lst = reg_normalize_loaded(M, share_comm, q, "moving", mr, remapped ? NULL : &mlo, remapped ? NULL : &mhi, &err);
  if (!lst && ants.histogram_match) lst = ffdp_volume_match_histogram(M, F, share_comm, &err);
  if (ffdp_comm_agree(opt.comm, lst, &err)) goto fail;
  if (getenv("FFDP_TRACE") && ffdp_comm_rank(opt.comm) == 0) /* part of the registration's time */
    fprintf(stderr, "[trace] inputs normalized in place: %.1f ms\n", 1e3 * (cli_now() - t1));
  opt.inputs_normalized = 1;
  opt.sharded_inputs = sharded;
  opt.result_shares = 1; /* each rank writes its own planes of the outputs */
  const int64_t *fdim_reg = ffdp_volume_dim(F);
  const int64_t fdim3[3] = {fdim_reg[0], fdim_reg[1], fdim_reg[2]};
  const ffdp_mat4 fw_reg = ffdp_volume_vox2world(F);
  if (ffdp_register(F, M, &opt, &res, &err)) goto fail; /* a failure is agreed by every rank */
  double t_reg = cli_now() - t1;
  ffdp_mat4 A = ffdp_reg_result_affine(res);
  const ffdp_volume *u = ffdp_reg_result_warp(res);
  char path[4200], warp_path[4200], inv_path[4200], aff_path[4200];
  if (ants.warped[0]) snprintf(path, sizeof path, "%s", ants.warped);
  else snprintf(path, sizeof path, "%sWarped%s", prefix, img_ext);
  snprintf(aff_path, sizeof aff_path, "%s0GenericAffine.txt", prefix);
  snprintf(warp_path, sizeof warp_path, "%s1Warp%s", prefix, ext);
  snprintf(inv_path, sizeof inv_path, "%s1InverseWarp%s", prefix, ext);
  reg_outputs outs = {opt.comm, fixed, moving, sharded, remapped, flo, fhi, mlo, mhi, res, A,
                      {fdim3[0], fdim3[1], fdim3[2]}, fw_reg, path, aff_path, warp_path, inv_path, 0, 0, 0, 0, 0, 0};
  if (reg_write_outputs(&outs, &F, &M, &err)) goto fail_res; /* agreed: every rank stops */
  const double ncc = outs.ncc, fold = outs.fold;
  if (getenv("FFDP_TRACE") && ffdp_comm_rank(opt.comm) == 0) /* where the time after the registration goes */
    fprintf(stderr, "[trace] outputs: folding %.1f ms, Warped (warp + NCC + write) %.1f ms, transforms %.1f ms more (%.1f ms in all)\n",
            1e3 * outs.t_fold, 1e3 * outs.t_warped, 1e3 * outs.t_transforms, 1e3 * outs.t_transforms_all);
  double rss_others = 0; /* the other ranks' largest peak */
#ifdef FFDP_HAVE_MPI
  if (ffdp_comm_size(opt.comm) > 1) {
    double mine = ffdp_comm_rank(opt.comm) ? peak_rss_mb() : 0;
    MPI_Reduce(&mine, &rss_others, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  }
#endif
  after_reg = 1;
  if (ffdp_comm_rank(opt.comm) != 0) goto done; /* rank 0 reports */
  const ffdp_volume *ui = ffdp_reg_result_inverse_warp(res);
  double t_total = cli_now() - t0, rss = peak_rss_mb(), gpu_peak = 0;
  for (int s = 0; s < ffdp_reg_result_nstages(res); s++)
    if (ffdp_reg_result_stage(res, s).device_peak_bytes > gpu_peak) gpu_peak = ffdp_reg_result_stage(res, s).device_peak_bytes;
  if (verbose >= 0) {
    printf("summary:\n");
    for (int s = 0; s < ffdp_reg_result_nstages(res); s++) {
      ffdp_stage_summary ss = ffdp_reg_result_stage(res, s);
      printf("  stage %d %-6s %5d iterations  %7.2f s  final loss %+.6f\n", s + 1, cli_stage_name(ss.kind), ss.iterations,
             ss.seconds, ss.final_loss);
    }
    const double t_out = outs.t_fold + outs.t_warped + outs.t_transforms;
    printf("  registration %.2f s (loading %.2f s, outputs %.2f s%s, total %.2f s), peak memory %.0f MB", t_reg, t_load,
           t_out, ffdp_comm_size(opt.comm) > 1 ? " by every rank" : "", t_total, rss);
    if (rss_others > 0) printf(" (other ranks at most %.0f MB)", rss_others);
    if (device == 1) printf(", peak GPU memory %.0f MB", gpu_peak / 1e6);
    printf("\n");
    if (ffdp_comm_size(opt.comm) > 1) {
      double tb, ts;
      ffdp_comm_traffic(opt.comm, &tb, &ts);
      printf("  %d ranks%s%s; rank 0 sent %.1f MB in halos and gathers, %.2f s (%.0f%% of the registration)\n",
             ffdp_comm_size(opt.comm), device == 1 ? ", GPU halos: " : "", device == 1 ? ffdp_comm_gpu_transport(opt.comm) : "",
             tb / 1e6, ts, t_reg > 0 ? 100 * ts / t_reg : 0.0);
      double xb = 0, xs = 0;
      int its = 0;
      for (int s = 0; s < ffdp_reg_result_nstages(res); s++) {
        ffdp_stage_summary ss = ffdp_reg_result_stage(res, s);
        if (ss.kind >= FFDP_STAGE_GREEDY) xb += ss.exchange_bytes, xs += ss.exchange_seconds, its += ss.iterations;
      }
      if (its > 0)
        printf("  image exchange (%s): rank 0 received %.1f MB, %.3f MB per deformable iteration, %.2f s\n",
               exchange_name(exchange), xb / 1e6, xb / 1e6 / its, xs);
    }
    printf("  global NCC fixed vs warped %.4f", ncc);
    if (u) printf(", folding (det J <= 0) %.4f%% of voxels", 100 * fold);
    if (ants.warped[0]) printf("\n  outputs: %s, ", ants.warped);
    else printf("\n  outputs: %sWarped%s, ", prefix, img_ext);
    printf("%s%s%s%s%s\n", aff_path, u ? ", " : "", u ? warp_path : "", ui ? ", " : "", ui ? inv_path : "");
  }
  if (json) {
    cJSON *j = cJSON_CreateObject(), *st = cJSON_AddArrayToObject(j, "stages");
    cJSON_AddStringToObject(j, "fixed", fixed);
    cJSON_AddStringToObject(j, "moving", moving);
    cJSON_AddNumberToObject(j, "threads", omp_get_max_threads());
    if (ants.histogram_match) cJSON_AddTrueToObject(j, "histogram_matching");
    if (ants.winsorize[1] > 0) { /* the quantiles both images were scaled from */
      cJSON *wq = cJSON_AddArrayToObject(j, "winsorize");
      cJSON_AddItemToArray(wq, cJSON_CreateNumber(ants.winsorize[0]));
      cJSON_AddItemToArray(wq, cJSON_CreateNumber(ants.winsorize[1]));
    }
    for (int s = 0; s < ffdp_reg_result_nstages(res); s++) {
      ffdp_stage_summary ss = ffdp_reg_result_stage(res, s);
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "kind", cli_stage_name(ss.kind));
      cJSON_AddNumberToObject(o, "iterations", ss.iterations);
      cJSON_AddNumberToObject(o, "seconds", ss.seconds);
      cJSON_AddNumberToObject(o, "final_loss", ss.final_loss);
      if (s < opt.nstages) { /* what was optimized, as ffdp spells it */
        const ffdp_metric_spec *ms = &opt.stages[s].metric;
        cJSON_AddStringToObject(o, "metric", ms->kind == FFDP_METRIC_CC ? "CC" : ms->kind == FFDP_METRIC_MI ? "MI" : "MSE");
        if (ms->kind == FFDP_METRIC_CC) cJSON_AddNumberToObject(o, "cc_window", ms->window);
        if (ms->kind == FFDP_METRIC_MI) {
          cJSON_AddNumberToObject(o, "mi_bins", ms->bins);
          cJSON_AddStringToObject(o, "mi_window", reg_mi_parzen() == FFDP_PARZEN_MATTES ? "mattes" : "bspline");
        }
      }
      if (device == 1) cJSON_AddNumberToObject(o, "gpu_peak_memory_mb", ss.device_peak_bytes / 1e6);
      if (device == 1 && ffdp_comm_size(opt.comm) > 1) /* rank 0's sampled-image windows */
        cJSON_AddNumberToObject(o, "window_mb_rank0", ss.window_bytes / 1e6);
      if (ffdp_comm_size(opt.comm) > 1 && ss.kind >= FFDP_STAGE_GREEDY) { /* rank 0's image planes from others */
        cJSON_AddNumberToObject(o, "exchange_mb_rank0", ss.exchange_bytes / 1e6);
        cJSON_AddNumberToObject(o, "exchange_seconds_rank0", ss.exchange_seconds);
      }
      cJSON_AddItemToArray(st, o);
    }
    cJSON_AddNumberToObject(j, "load_seconds", t_load);
    if (device == 1) cJSON_AddNumberToObject(j, "device_init_seconds", wj.seconds); /* overlapped with loading */
    cJSON_AddStringToObject(j, "device", device == 1 ? "cuda" : "cpu");
    if (device == 1 && plan.nrows > 0) { /* the plan the run was checked against (per GPU), its budget */
      cJSON_AddNumberToObject(j, "gpu_plan_peak_mb", plan.peak_bytes / 1e6);
      if (opt.device_budget > 0) cJSON_AddNumberToObject(j, "gpu_budget_mb", opt.device_budget / 1e6);
    }
    cJSON_AddNumberToObject(j, "ranks", ffdp_comm_size(opt.comm));
    if (ffdp_comm_size(opt.comm) > 1) {
      double tb, ts;
      ffdp_comm_traffic(opt.comm, &tb, &ts);
      cJSON_AddNumberToObject(j, "comm_mb_rank0", tb / 1e6);
      cJSON_AddNumberToObject(j, "comm_seconds_rank0", ts);
      cJSON_AddStringToObject(j, "image_exchange", exchange_name(exchange));
      cJSON_AddBoolToObject(j, "sharded_inputs", sharded);
    }
    if (device == 1) cJSON_AddStringToObject(j, "gpu_transport", ffdp_comm_gpu_transport(opt.comm));
    cJSON_AddStringToObject(j, "state_precision", bf16 ? "bf16" : "fp32");
    cJSON_AddStringToObject(j, "state_resolution", half ? "half" : "full");
    cJSON_AddStringToObject(j, "image_precision", img16 ? "u16" : "fp32");
    cJSON_AddNumberToObject(j, "registration_seconds", t_reg);
    cJSON_AddNumberToObject(j, "output_seconds", outs.t_fold + outs.t_warped + outs.t_transforms); /* scores + files */
    cJSON_AddNumberToObject(j, "total_seconds", t_total);
    cJSON_AddNumberToObject(j, "peak_memory_mb", rss);
    if (rss_others > 0) cJSON_AddNumberToObject(j, "peak_memory_mb_other_ranks", rss_others);
    if (device == 1) cJSON_AddNumberToObject(j, "gpu_peak_memory_mb", gpu_peak / 1e6);
    cJSON_AddNumberToObject(j, "global_ncc", ncc);
    if (u) cJSON_AddNumberToObject(j, "folding_fraction", fold);
    if (u && ffdp_path_is_gz(warp_path)) cJSON_AddNumberToObject(j, "field_gzip_level", ffdp_gz_field_level()); /* 0: stored */
    if (write_json(json, j)) {
      ffdp_fail(&err, FFDP_ERR_IO, "cannot write '%s': %s", json, strerror(errno));
      goto fail_res;
    }
  }
done:
  if (after_reg) {
    after_reg = 0;
    if (ffdp_comm_agree(opt.comm, FFDP_OK, &err)) goto fail_res;
  }
  ffdp_reg_result_free(res);
  ffdp_volume_free(F), ffdp_volume_free(M), ffdp_volume_free(fm), ffdp_volume_free(mm);
  return 0;
fail_res:
  if (after_reg) { /* rank 0 failed writing: the others are waiting to hear */
    after_reg = 0;
    ffdp_comm_agree(opt.comm, err.code ? err.code : FFDP_ERR_IO, &err);
  }
  ffdp_reg_result_free(res);
fail:
  ffdp_volume_free(F), ffdp_volume_free(M), ffdp_volume_free(fm), ffdp_volume_free(mm);
  if (verbose >= 0 && isatty(STDOUT_FILENO)) printf("\n");
  return cli_error(&err);
}
