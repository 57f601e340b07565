/* ffdp apply: antsApplyTransforms-style transform chains. */
#include "cli/cli.h"
#include "core/err.h"
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
    "command lines run unchanged.\n\n"
    "example:\n"
    "  ffdp apply -i moving.nii.gz -r fixed.nii.gz -t out/m_1Warp.nii.gz -t out/m_0GenericAffine.txt -o warped.nii.gz\n");
}

/* The output resampled and written a block of planes at a time: neither it nor the folded
 * displacement ever exists whole (at a gigavoxel, 16 B per voxel of host memory less). */
static ffdp_status write_blocks(const ffdp_chain_item *items, int nt, const ffdp_volume *I, const int64_t dim[3],
                                ffdp_mat4 ref, int interp, ffdp_dtype dtype, const char *path, ffdp_error *err) {
  const int64_t P = dim[0] * dim[1], block = ffdp_chain_block_planes(dim);
  float *buf = malloc((size_t)(block * P) * 4 * sizeof(float)); /* output block, then 3 floats of scratch */
  if (!buf) return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory writing '%s'", path);
  ffdp_plane_writer *w = NULL;
  ffdp_status st = ffdp_plane_writer_open(path, dim, ref, dtype, FFDP_NIFTI_AUTO, &w, err);
  for (int64_t z = 0; !st && z < dim[2]; z += block) {
    const int64_t z1 = z + block < dim[2] ? z + block : dim[2];
    st = ffdp_chain_apply_planes(items, nt, I, dim, ref, interp, z, z1, buf, buf + block * P, err);
    if (!st) st = ffdp_plane_writer_put(w, buf, z1 - z, err);
  }
  free(buf);
  if (st && w) ffdp_plane_writer_abort(w);
  else if (!st) st = ffdp_plane_writer_close(w, err);
  return st;
}

int ffdp_cmd_apply(int argc, char **argv) {
  const char *in = NULL, *refp = NULL, *outp = NULL, *tr[FFDP_MAX_CHAIN];
  int nt = 0, interp = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    }
    if (!v) return cli_errorf("option %s needs a value (see 'ffdp apply --help')", a);
    i++;
    if (!strcmp(a, "-i") || !strcmp(a, "--input")) in = v;
    else if (!strcmp(a, "-r") || !strcmp(a, "--reference")) refp = v;
    else if (!strcmp(a, "-o") || !strcmp(a, "--output")) outp = v;
    else if (!strcmp(a, "-t") || !strcmp(a, "--transform")) {
      if (nt == FFDP_MAX_CHAIN) return cli_errorf("at most %d transforms", FFDP_MAX_CHAIN);
      tr[nt++] = v;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--interpolation")) {
      if (!strcasecmp(v, "linear")) interp = 0;
      else if (!strcasecmp(v, "nearest") || !strcasecmp(v, "NearestNeighbor")) interp = 1;
      else if (!strcasecmp(v, "label") || !strncasecmp(v, "GenericLabel", 12) || !strncasecmp(v, "MultiLabel", 10)) interp = 2;
      else return cli_errorf("unknown interpolation '%s' (linear, nearest, label; ANTs' Linear, NearestNeighbor, GenericLabel)", v);
    } else if (!strcmp(a, "-d") || !strcmp(a, "--dimensionality")) { /* antsApplyTransforms switches */
      if (strcmp(v, "3")) return cli_errorf("--dimensionality %s: ffdp resamples 3D images only", v);
    } else if (!strcmp(a, "-e") || !strcmp(a, "--input-image-type")) {
      if (strcmp(v, "0") && strcasecmp(v, "scalar"))
        return cli_errorf("--input-image-type %s: ffdp apply resamples scalar images (0)", v);
    } else if (!strcmp(a, "-f") || !strcmp(a, "--default-value")) {
      char *e;
      if (strtod(v, &e) != 0 || *e) return cli_errorf("--default-value %s: points outside the input get 0 in ffdp", v);
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose") || !strcmp(a, "--float")) {
      if (strcmp(v, "0") && strcmp(v, "1")) return cli_errorf("%s takes 0 or 1, not '%s'", a, v);
    } else {
      return cli_errorf("unknown option '%s' (see 'ffdp apply --help')", a);
    }
  }
  if (!in || !refp || !outp) return cli_errorf("-i INPUT, -r REFERENCE and -o OUTPUT are required (see 'ffdp apply --help')");
  ffdp_error err = {0};
  ffdp_volume *I = NULL, *O = NULL, *fields[FFDP_MAX_CHAIN] = {0};
  int64_t rdim[3];
  ffdp_mat4 ref; /* the reference grid: only its header is read */
  ffdp_chain_item items[FFDP_MAX_CHAIN];
  int rc = -1; /* -1: report err; 0: success; 1: already reported */
  if (ffdp_volume_load(in, &I, &err) || ffdp_volume_probe(refp, rdim, &ref, &err)) goto done;
  for (int k = 0; k < nt; k++) {
    char name[4096];
    int inverse = 0;
    snprintf(name, sizeof name, "%s", tr[k][0] == '[' ? tr[k] + 1 : tr[k]);
    char *close = strchr(name, ']');
    if (close) *close = 0;
    char *comma = strchr(name, ',');
    if (comma) inverse = atoi(comma + 1), *comma = 0;
    items[k].field = NULL;
    size_t l = strlen(name);
    if ((l > 4 && !strcmp(name + l - 4, ".nii")) || (l > 7 && !strcmp(name + l - 7, ".nii.gz"))) {
      if (inverse) {
        rc = cli_errorf("'%s': inverting a displacement field is not supported; use the inverse warp file", name);
        goto done;
      }
      if (ffdp_field_load(name, 1, &fields[k], &err)) goto done;
      items[k].field = fields[k];
    } else {
      if (ffdp_affine_load_itk(name, &items[k].affine, &err)) goto done;
      if (inverse) ffdp_mat4_inverse(items[k].affine, &items[k].affine);
    }
  }
  int dtype = interp ? ffdp_volume_source_dtype(I) : FFDP_DT_FLOAT32;
  if (ffdp_volume_ncomp(I) == 1) { /* a block of planes at a time (NIfTI or OME-Zarr) */
    if (write_blocks(items, nt, I, rdim, ref, interp, (ffdp_dtype)dtype, outp, &err)) goto done;
  } else {
    if (ffdp_chain_apply(items, nt, I, rdim, ref, interp, &O, &err)) goto done;
    if (ffdp_volume_save(O, outp, (ffdp_dtype)dtype, FFDP_NIFTI_AUTO, &err)) goto done;
  }
  rc = 0;
done:
  for (int k = 0; k < nt; k++) ffdp_volume_free(fields[k]);
  ffdp_volume_free(I), ffdp_volume_free(O);
  return rc < 0 ? cli_error(&err) : rc;
}
