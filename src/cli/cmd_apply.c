/* ffdp apply: antsApplyTransforms-style transform chains. */
#include "cli/cli.h"
#include "core/err.h"
#include "io/nifti_common.h"
#include "reg/chain.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void usage(FILE *f) {
  fprintf(f,
    "usage: ffdp apply -i INPUT -r REFERENCE -o OUTPUT -t T1 [-t T2 ...] [-n linear|nearest|label]\n\n"
    "Resamples INPUT onto the grid of REFERENCE through a chain of transforms, listed as for\n"
    "antsApplyTransforms: a reference point x is mapped to Tn(...T2(T1(x))).\n"
    "Each T is an ITK affine text file (*.txt; '[file.txt,1]' uses its inverse) or an ANTs/ITK\n"
    "displacement field (*.nii[.gz], vector image in LPS). -n label resamples segmentations\n"
    "(the label with the largest interpolated weight). antsApplyTransforms' spellings and switches\n"
    "are taken too (-n Linear|NearestNeighbor|GenericLabel, -d 3, -e 0, -f 0, -v, --float), so its\n"
    "command lines run unchanged. -v 1 prints a summary line. OUTPUT may be .nii, .nii.gz or .zarr.\n\n"
    "Under an MPI launcher every rank resamples its share of the REFERENCE planes, reading only the\n"
    "planes of each field and of INPUT that its points reach, and the ranks write OUTPUT together\n"
    "(on several hosts its directory must be on a file system they all see): no rank holds a whole\n"
    "gigavoxel warp or image. The file is the one a single process writes. Large outputs are made\n"
    "in pieces of ~64 M voxels, each reading only what it reaches, when the warps and INPUT are .nii,\n"
    "OME-Zarr or .nii.gz written by ffdp (other .nii.gz files stream from their start: gunzip them,\n"
    "or 'ffdp convert' images, first).\n\n"
    "examples:\n"
    "  ffdp apply -i moving.nii.gz -r fixed.nii.gz -t out/m_1Warp.nii.gz -t out/m_0GenericAffine.txt -o warped.nii.gz\n"
    "  ffdp apply -i fixed.nii.gz -r moving.nii.gz -t [out/m_0GenericAffine.txt,1] -t out/m_1InverseWarp.nii.gz \\\n"
    "             -o fixed_in_moving.nii.gz\n"
    "  mpirun -np 8 ffdp apply -i labels.zarr -r fixed.zarr -t out/m_1Warp.nii.gz -t out/m_0GenericAffine.txt \\\n"
    "             -n GenericLabel -o labels_in_fixed.zarr -v 1\n");
}

/* "[name,1]" / "name,1" / "name": the file and whether its inverse is meant. */
static void split_transform(const char *t, char name[4096], int *inverse) {
  snprintf(name, 4096, "%s", t[0] == '[' ? t + 1 : t);
  char *close = strchr(name, ']');
  if (close) *close = 0;
  char *comma = strchr(name, ',');
  *inverse = 0;
  if (comma) *inverse = atoi(comma + 1), *comma = 0;
}

static int is_nifti_name(const char *name) {
  size_t l = strlen(name);
  return (l > 4 && !strcmp(name + l - 4, ".nii")) || (l > 7 && !strcmp(name + l - 7, ".nii.gz"));
}

typedef struct {
  const char *in, *refp, *outp, *tr[FFDP_MAX_CHAIN];
  int nt, interp, verbose;
} apply_args;

/* 0 when parsed; else the exit status (help printed: 0 is returned through *done). */
static int parse(int argc, char **argv, apply_args *a, int *done) {
  memset(a, 0, sizeof *a);
  *done = 0;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
      usage(stdout);
      *done = 1;
      return 0;
    }
    if (!v) return cli_errorf("option %s needs a value (see 'ffdp apply --help')", o);
    i++;
    if (!strcmp(o, "-i") || !strcmp(o, "--input")) a->in = v;
    else if (!strcmp(o, "-r") || !strcmp(o, "--reference")) a->refp = v;
    else if (!strcmp(o, "-o") || !strcmp(o, "--output")) a->outp = v;
    else if (!strcmp(o, "-t") || !strcmp(o, "--transform")) {
      if (a->nt == FFDP_MAX_CHAIN) return cli_errorf("at most %d transforms", FFDP_MAX_CHAIN);
      a->tr[a->nt++] = v;
    } else if (!strcmp(o, "-n") || !strcmp(o, "--interpolation")) {
      if (!strcasecmp(v, "linear")) a->interp = 0;
      else if (!strcasecmp(v, "nearest") || !strcasecmp(v, "NearestNeighbor")) a->interp = 1;
      else if (!strcasecmp(v, "label") || !strncasecmp(v, "GenericLabel", 12) || !strncasecmp(v, "MultiLabel", 10)) a->interp = 2;
      else return cli_errorf("unknown interpolation '%s' (linear, nearest, label; ANTs' Linear, NearestNeighbor, GenericLabel)", v);
    } else if (!strcmp(o, "-d") || !strcmp(o, "--dimensionality")) { /* antsApplyTransforms switches */
      if (strcmp(v, "3")) return cli_errorf("--dimensionality %s: ffdp resamples 3D images only", v);
    } else if (!strcmp(o, "-e") || !strcmp(o, "--input-image-type")) {
      if (strcmp(v, "0") && strcasecmp(v, "scalar"))
        return cli_errorf("--input-image-type %s: ffdp apply resamples scalar images (0)", v);
    } else if (!strcmp(o, "-f") || !strcmp(o, "--default-value")) {
      char *e;
      if (strtod(v, &e) != 0 || *e) return cli_errorf("--default-value %s: points outside the input get 0 in ffdp", v);
    } else if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) {
      if (strcmp(v, "0") && strcmp(v, "1")) return cli_errorf("%s takes 0 or 1, not '%s'", o, v);
      a->verbose = v[0] == '1';
    } else if (!strcmp(o, "--float")) {
      if (strcmp(v, "0") && strcmp(v, "1")) return cli_errorf("%s takes 0 or 1, not '%s'", o, v);
    } else {
      return cli_errorf("unknown option '%s' (see 'ffdp apply --help')", o);
    }
  }
  if (!a->in || !a->refp || !a->outp)
    return cli_errorf("-i INPUT, -r REFERENCE and -o OUTPUT are required (see 'ffdp apply --help')");
  return 0;
}

/* What one rank reads and resamples: the chain (its fields loaded for the piece of output
 * planes in hand), the input's reached planes, and the reference grid. */
typedef struct {
  const apply_args *a;
  char names[FFDP_MAX_CHAIN][4096];
  ffdp_chain_item items[FFDP_MAX_CHAIN];
  ffdp_volume *fields[FFDP_MAX_CHAIN], *I;
  int64_t rdim[3];
  ffdp_mat4 ref;
  double field_planes, input_planes; /* planes read (summed over pieces), for the summary */
  int64_t field_nz, input_nz;        /* planes of all the fields together, of the input */
} apply_job;

static void free_reach(apply_job *j) {
  for (int k = 0; k < j->a->nt; k++) ffdp_volume_free(j->fields[k]), j->fields[k] = NULL, j->items[k].field = NULL;
  ffdp_volume_free(j->I), j->I = NULL;
}

/* The fields' and the input's planes that output planes [c0, c1) reach, read in chain order:
 * each field's reach is found through the fields before it (ffdp_chain_reach). */
static ffdp_status load_reach(apply_job *j, int64_t c0, int64_t c1, ffdp_error *err) {
  free_reach(j);
  ffdp_status st = FFDP_OK;
  for (int k = 0; !st && k < j->a->nt; k++) {
    if (!is_nifti_name(j->names[k])) continue;
    int64_t fd[3], f0 = 0, f1 = 0;
    ffdp_mat4 fw, finv;
    double lo, hi;
    if ((st = ffdp_field_probe(j->names[k], fd, &fw, err))) break;
    ffdp_mat4_inverse(fw, &finv);
    ffdp_chain_reach(j->items, k, j->rdim, j->ref, c0, c1, finv, &lo, &hi);
    ffdp_chain_planes(lo, hi, fd[2], &f0, &f1);
    if (!(st = ffdp_field_load_share(j->names[k], 1, f0, f1, &j->fields[k], err)))
      j->items[k].field = j->fields[k], j->field_planes += (double)(f1 - f0);
  }
  int64_t idim[3], i0 = 0, i1 = 0;
  ffdp_mat4 iw, iinv;
  double lo, hi;
  if (!st && !(st = ffdp_volume_probe(j->a->in, idim, &iw, err))) {
    ffdp_mat4_inverse(iw, &iinv);
    ffdp_chain_reach(j->items, j->a->nt, j->rdim, j->ref, c0, c1, iinv, &lo, &hi);
    ffdp_chain_planes(lo, hi, idim[2], &i0, &i1);
    if (c1 == c0) i1 = i0; /* an empty share reads nothing */
    if (!(st = ffdp_volume_load_share(j->a->in, i0, i1, &j->I, err)))
      j->input_planes += (double)(i1 - i0), j->input_nz = idim[2];
  }
  return st;
}

/* Output planes per piece: a share whose sources all read planes cheaply (.nii, Zarr, ffdp's
 * indexed .nii.gz) is done ~64 M output voxels at a time, so that one process holds only a
 * piece's reach of a gigavoxel warp; another .nii.gz would be inflated from its start for every
 * piece, so its share is one piece. */
static int64_t piece_planes(const apply_job *j, int64_t planes) {
  int cheap = ffdp_path_planes_cheap(j->a->in);
  for (int k = 0; cheap && k < j->a->nt; k++) cheap = !is_nifti_name(j->names[k]) || ffdp_path_planes_cheap(j->names[k]);
  return cli_piece_planes(j->rdim[0] * j->rdim[1], planes, cheap);
}

/* Every rank resamples its share of the reference planes, piece by piece (piece_planes), each
 * piece through load_reach, and the ranks write one file together: no rank, and no single
 * process, holds a whole warp or input unless its points reach all of it. One process is the
 * one-rank case. */
static int run_apply(int argc, char **argv, const ffdp_comm *comm) {
  apply_args a;
  int help = 0, prc = parse(argc, argv, &a, &help);
  if (prc || help) return prc;
  const double t0 = cli_now();
  ffdp_error err = {0};
  apply_job *j = calloc(1, sizeof *j);
  if (!j) return cli_errorf("out of memory");
  j->a = &a;
  int64_t z0 = 0, z1 = 0;
  int space = 0; /* rank 0 refused the output for its disk (message printed) */
  ffdp_status st = ffdp_volume_probe(a.refp, j->rdim, &j->ref, &err);
  if (!st) ffdp_comm_share(comm, j->rdim[2], &z0, &z1);
  for (int k = 0; !st && k < a.nt; k++) { /* headers and affines first: a bad file stops before any data is read */
    int inverse;
    split_transform(a.tr[k], j->names[k], &inverse);
    if (is_nifti_name(j->names[k])) {
      int64_t fd[3];
      ffdp_mat4 fw;
      if (inverse)
        st = ffdp_fail(&err, FFDP_ERR_UNSUPPORTED,
                       "'%s': inverting a displacement field is not supported; use the inverse warp file", j->names[k]);
      else if (!(st = ffdp_field_probe(j->names[k], fd, &fw, &err)))
        j->field_nz += fd[2];
    } else {
      st = ffdp_affine_load_itk(j->names[k], &j->items[k].affine, &err);
      if (!st && inverse) ffdp_mat4_inverse(j->items[k].affine, &j->items[k].affine);
    }
  }
  /* ranks write one file together: each must see where rank 0 writes it */
  st = st ? ffdp_comm_agree(comm, st, &err) : cli_outputs_visible(comm, a.outp, &err);
  if (st) goto done;
  const int64_t piece = piece_planes(j, z1 - z0);
  int64_t c1 = z0 + piece < z1 ? z0 + piece : z1;
  if ((st = ffdp_comm_agree(comm, load_reach(j, z0, c1, &err), &err))) goto done;
  const double t_load = cli_now() - t0, t1 = cli_now();
  const int dtype = a.interp ? ffdp_volume_source_dtype(j->I) : FFDP_DT_FLOAT32;
  /* an output that cannot fit on its disk is refused before resampling (rank 0 checks for all:
   * the ranks write one file); a compressed one only warns */
  int nbyper = 0, swapsize = 0;
  nifti_datatype_sizes(dtype, &nbyper, &swapsize);
  const double need = (double)j->rdim[0] * j->rdim[1] * j->rdim[2] * (nbyper > 0 ? nbyper : 4) + 544;
  const size_t ol = strlen(a.outp);
  const int plain = ol > 4 && !strcmp(a.outp + ol - 4, ".nii");
  if (ffdp_comm_rank(comm) == 0) space = cli_check_space(a.outp, need, plain ? need : 0, "write .nii.gz", 0);
  if ((st = ffdp_comm_agree(comm, space ? ffdp_fail(&err, FFDP_ERR_IO, "rank 0 cannot write the output") : FFDP_OK, &err))) {
    if (space) st = FFDP_OK; /* rank 0 has printed its own line */
    goto done;
  }
  /* the output a block at a time (neither it nor the folded displacement ever exists whole) */
  const int64_t P = j->rdim[0] * j->rdim[1], block = ffdp_chain_block_planes(j->rdim);
  float *buf = malloc((size_t)(block * P) * 4 * sizeof(float)); /* output block, then 3 floats of scratch */
  ffdp_plane_writer *w = NULL;
  if ((st = ffdp_plane_writer_open_shared(a.outp, j->rdim, j->ref, (ffdp_dtype)dtype, FFDP_NIFTI_AUTO, comm, &w, &err))) {
    free(buf);
    goto done;
  }
  if (!buf) st = ffdp_fail(&err, FFDP_ERR_NOMEM, "out of memory writing '%s'", a.outp);
  int pieces = 1;
  for (int64_t c0 = z0; !st && c0 < z1; c0 = c1, c1 = c0 + piece < z1 ? c0 + piece : z1) {
    if (c0 > z0 && (st = load_reach(j, c0, c1, &err))) break;
    pieces += c0 > z0;
    for (int64_t z = c0; !st && z < c1; z += block) {
      const int64_t e = z + block < c1 ? z + block : c1;
      st = ffdp_chain_apply_planes(j->items, a.nt, j->I, j->rdim, j->ref, a.interp, z, e, buf, buf + block * P, &err);
      if (!st) st = ffdp_plane_writer_put(w, buf, e - z, &err);
    }
  }
  free(buf);
  if (st) { /* collective either way: the others learn it */
    ffdp_plane_writer_abort(w);
    st = ffdp_comm_agree(comm, st, &err);
  } else {
    st = ffdp_plane_writer_close(w, &err);
  }
  if (!st && a.verbose) { /* rank 0 speaks; the others print nothing */
    printf("ffdp apply: %s -> %s on %lldx%lldx%lld through %d transform%s: first piece read in %.2f s, "
           "resampled and written in %.2f s", a.in, a.outp, (long long)j->rdim[0], (long long)j->rdim[1],
           (long long)j->rdim[2], a.nt, a.nt == 1 ? "" : "s", t_load, cli_now() - t1);
    printf("; %s%d piece%s, reading %.0f%% of the input's planes", ffdp_comm_size(comm) > 1 ? "rank 0: " : "", pieces,
           pieces == 1 ? "" : "s", j->input_nz ? 100.0 * j->input_planes / (double)j->input_nz : 0.0);
    if (j->field_nz) printf(" and %.0f%% of the fields'", 100.0 * j->field_planes / (double)j->field_nz);
    printf("\n");
  }
done:
  if (j) free_reach(j);
  free(j);
  return space ? 1 : st ? cli_error(&err) : 0;
}

int ffdp_cmd_apply(int argc, char **argv) { return cli_run_ranked(run_apply, argc, argv); }
