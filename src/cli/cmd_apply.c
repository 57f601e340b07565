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
    "gigavoxel warp or image. The file is the one a single process writes.\n\n"
    "examples:\n"
    "  ffdp apply -i moving.nii.gz -r fixed.nii.gz -t out/m_1Warp.nii.gz -t out/m_0GenericAffine.txt -o warped.nii.gz\n"
    "  ffdp apply -i fixed.nii.gz -r moving.nii.gz -t [out/m_0GenericAffine.txt,1] -t out/m_1InverseWarp.nii.gz \\\n"
    "             -o fixed_in_moving.nii.gz\n"
    "  mpirun -np 8 ffdp apply -i labels.zarr -r fixed.zarr -t out/m_1Warp.nii.gz -t out/m_0GenericAffine.txt \\\n"
    "             -n GenericLabel -o labels_in_fixed.zarr -v 1\n");
}

/* The output resampled a block of planes at a time over this rank's planes [z0, z1) and written
 * by every rank together (one process: the whole grid): neither it nor the folded displacement
 * ever exists whole (at a gigavoxel, 16 B per voxel of host memory less). */
static ffdp_status write_blocks(const ffdp_chain_item *items, int nt, const ffdp_volume *I, const int64_t dim[3],
                                ffdp_mat4 ref, int interp, ffdp_dtype dtype, const char *path, int64_t z0, int64_t z1,
                                const ffdp_comm *comm, ffdp_error *err) {
  const int64_t P = dim[0] * dim[1], block = ffdp_chain_block_planes(dim);
  float *buf = malloc((size_t)(block * P) * 4 * sizeof(float)); /* output block, then 3 floats of scratch */
  ffdp_plane_writer *w = NULL;
  ffdp_status st = ffdp_plane_writer_open_shared(path, dim, ref, dtype, FFDP_NIFTI_AUTO, comm, &w, err);
  if (st) {
    free(buf);
    return st;
  }
  if (!buf) st = ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory writing '%s'", path);
  for (int64_t z = z0; !st && z < z1; z += block) {
    const int64_t e = z + block < z1 ? z + block : z1;
    st = ffdp_chain_apply_planes(items, nt, I, dim, ref, interp, z, e, buf, buf + block * P, err);
    if (!st) st = ffdp_plane_writer_put(w, buf, e - z, err);
  }
  free(buf);
  if (st) { /* collective either way: the others learn it */
    ffdp_plane_writer_abort(w);
    return ffdp_comm_agree(comm, st, err);
  }
  return ffdp_plane_writer_close(w, err);
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

/* Every rank resamples its share of the reference planes: each field of the chain, and the
 * input, are read only for the planes those points reach (found by walking the chain over the
 * share, the fields read so far in hand), so no rank holds a whole warp or input unless its
 * points reach all of it. One process is the one-rank case: the reach of the whole grid. */
static int run_apply(int argc, char **argv, const ffdp_comm *comm) {
  apply_args a;
  int help = 0, prc = parse(argc, argv, &a, &help);
  if (prc || help) return prc;
  const double t0 = cli_now();
  ffdp_error err = {0};
  ffdp_volume *I = NULL, *fields[FFDP_MAX_CHAIN] = {0};
  int64_t rdim[3], z0 = 0, z1 = 0, in_planes[2] = {0, 0};
  ffdp_mat4 ref; /* the reference grid: only its header is read */
  ffdp_chain_item items[FFDP_MAX_CHAIN];
  double field_planes = 0; /* fraction of the fields' planes this rank read, summed, for the summary */
  int nfields = 0, space = 0; /* space: rank 0 refused the output for its disk (message printed) */
  ffdp_status st = ffdp_volume_probe(a.refp, rdim, &ref, &err);
  if (!st) ffdp_comm_share(comm, rdim[2], &z0, &z1);
  char names[FFDP_MAX_CHAIN][4096];
  int inverse[FFDP_MAX_CHAIN];
  for (int k = 0; !st && k < a.nt; k++) { /* headers and affines first: a bad file stops before any data is read */
    split_transform(a.tr[k], names[k], &inverse[k]);
    items[k].field = NULL;
    if (is_nifti_name(names[k])) {
      int64_t fd[3];
      ffdp_mat4 fw;
      if (inverse[k])
        st = ffdp_fail(&err, FFDP_ERR_UNSUPPORTED,
                       "'%s': inverting a displacement field is not supported; use the inverse warp file", names[k]);
      else
        st = ffdp_field_probe(names[k], fd, &fw, &err);
    } else {
      st = ffdp_affine_load_itk(names[k], &items[k].affine, &err);
      if (!st && inverse[k]) ffdp_mat4_inverse(items[k].affine, &items[k].affine);
    }
  }
  /* ranks write one file together: each must see where rank 0 writes it */
  st = st ? ffdp_comm_agree(comm, st, &err) : cli_outputs_visible(comm, a.outp, &err);
  if (st) goto done;
  for (int k = 0; !st && k < a.nt; k++) { /* each field: the planes this rank's points reach */
    if (!is_nifti_name(names[k])) continue;
    int64_t fd[3], f0 = 0, f1 = 0;
    ffdp_mat4 fw, finv;
    if ((st = ffdp_field_probe(names[k], fd, &fw, &err))) break;
    double lo, hi;
    ffdp_mat4_inverse(fw, &finv);
    ffdp_chain_reach(items, k, rdim, ref, z0, z1, finv, &lo, &hi);
    ffdp_chain_planes(lo, hi, fd[2], &f0, &f1);
    if ((st = ffdp_field_load_share(names[k], 1, f0, f1, &fields[k], &err))) break;
    items[k].field = fields[k];
    field_planes += (double)(f1 - f0) / (double)fd[2], nfields++;
  }
  if (!st) { /* the input: the planes the whole chain reaches */
    int64_t idim[3];
    ffdp_mat4 iw, iinv;
    double lo, hi;
    if (!(st = ffdp_volume_probe(a.in, idim, &iw, &err))) {
      ffdp_mat4_inverse(iw, &iinv);
      ffdp_chain_reach(items, a.nt, rdim, ref, z0, z1, iinv, &lo, &hi);
      ffdp_chain_planes(lo, hi, idim[2], &in_planes[0], &in_planes[1]);
      if (z1 == z0) in_planes[1] = in_planes[0]; /* an empty share reads nothing */
      st = ffdp_volume_load_share(a.in, in_planes[0], in_planes[1], &I, &err);
    }
  }
  if ((st = ffdp_comm_agree(comm, st, &err))) goto done;
  const double t_load = cli_now() - t0, t1 = cli_now();
  int dtype = a.interp ? ffdp_volume_source_dtype(I) : FFDP_DT_FLOAT32;
  /* an output that cannot fit on its disk is refused before resampling (rank 0 checks for all:
   * the ranks write one file); a compressed one only warns */
  int nbyper = 0, swapsize = 0;
  nifti_datatype_sizes(dtype, &nbyper, &swapsize);
  const double need = (double)rdim[0] * rdim[1] * rdim[2] * (nbyper > 0 ? nbyper : 4) + 544;
  const size_t ol = strlen(a.outp);
  const int plain = ol > 4 && !strcmp(a.outp + ol - 4, ".nii");
  if (ffdp_comm_rank(comm) == 0) space = cli_check_space(a.outp, need, plain ? need : 0, "write .nii.gz", 0);
  if ((st = ffdp_comm_agree(comm, space ? ffdp_fail(&err, FFDP_ERR_IO, "rank 0 cannot write the output") : FFDP_OK, &err))) {
    if (space) st = FFDP_OK, space = 1; /* rank 0 has printed its own line */
    goto done;
  }
  st = write_blocks(items, a.nt, I, rdim, ref, a.interp, (ffdp_dtype)dtype, a.outp, z0, z1, comm, &err);
  if (!st && a.verbose && ffdp_comm_rank(comm) == 0) {
    const int64_t *id = ffdp_volume_dim(I);
    printf("ffdp apply: %s (%lldx%lldx%lld) -> %s on %lldx%lldx%lld through %d transform%s: read %.2f s, "
           "resampled and written %.2f s", a.in, (long long)id[0], (long long)id[1], (long long)id[2], a.outp,
           (long long)rdim[0], (long long)rdim[1], (long long)rdim[2], a.nt, a.nt == 1 ? "" : "s", t_load, cli_now() - t1);
    if (ffdp_comm_size(comm) > 1)
      printf("; %d ranks, rank 0 read input planes [%lld, %lld) and %.0f%% of the fields' planes", ffdp_comm_size(comm),
             (long long)in_planes[0], (long long)in_planes[1], nfields ? 100.0 * field_planes / nfields : 0.0);
    printf("\n");
  }
done:
  for (int k = 0; k < a.nt; k++) ffdp_volume_free(fields[k]);
  ffdp_volume_free(I);
  return space ? 1 : st ? cli_error(&err) : 0;
}

int ffdp_cmd_apply(int argc, char **argv) { return cli_run_ranked(run_apply, argc, argv); }
