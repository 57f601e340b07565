/* ffdp info FILE...: what a user checks before registering. */
#include "cli/cli.h"
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <string.h>

static const char *dtype_name(int dt) {
  switch (dt) {
  case FFDP_DT_UINT8: return "uint8";
  case FFDP_DT_INT8: return "int8";
  case FFDP_DT_INT16: return "int16";
  case FFDP_DT_UINT16: return "uint16";
  case FFDP_DT_INT32: return "int32";
  case FFDP_DT_UINT32: return "uint32";
  case FFDP_DT_FLOAT32: return "float32";
  case FFDP_DT_FLOAT64: return "float64";
  case 1024: return "int64";
  }
  return "other";
}

/* Three-letter orientation code: the world direction (R/L, A/P, S/I) each voxel axis points to,
 * from the library's reading of the matrix. */
static void orientation_code(ffdp_mat4 w, char code[4]) {
  nifti_dmat44 m;
  memcpy(m.m, w.m, sizeof m.m);
  int c[3];
  nifti_dmat44_to_orientation(m, &c[0], &c[1], &c[2]);
  for (int a = 0; a < 3; a++) {
    switch (c[a]) {
    case NIFTI_L2R: code[a] = 'R'; break;
    case NIFTI_R2L: code[a] = 'L'; break;
    case NIFTI_P2A: code[a] = 'A'; break;
    case NIFTI_A2P: code[a] = 'P'; break;
    case NIFTI_I2S: code[a] = 'S'; break;
    case NIFTI_S2I: code[a] = 'I'; break;
    default: code[a] = '?';
    }
  }
  code[3] = 0;
}

/* What a displacement field (an ANTs/ITK warp) holds: its displacement lengths and whether
 * x -> x + u(x) folds anywhere (det(I + du/dx) <= 0; an affine applied after it, as in
 * ANTs' chains, scales every determinant by the same positive factor). */
static void field_summary(const ffdp_volume *u) {
  const float *d = ffdp_volume_cdata(u);
  const int64_t n = ffdp_volume_nvox(u);
  double sum = 0, mx = 0;
  int64_t at = 0, bad = 0;
#pragma omp parallel
  {
    double lmx = 0;
    int64_t lat = 0;
#pragma omp for reduction(+ : sum, bad) schedule(static)
    for (int64_t i = 0; i < n; i++) {
      const double a = d[3 * i], b = d[3 * i + 1], c = d[3 * i + 2], l = sqrt(a * a + b * b + c * c);
      if (!isfinite(l)) bad++;
      else sum += l;
      if (l > lmx || (l == lmx && i < lat)) lmx = l, lat = i;
    }
#pragma omp critical
    if (lmx > mx || (lmx == mx && lat < at)) mx = lmx, at = lat;
  }
  const int64_t *dim = ffdp_volume_dim(u), x = at % dim[0], y = at / dim[0] % dim[1], z = at / (dim[0] * dim[1]);
  printf("  field        displacement (ITK/ANTs vector image; LPS on disk)\n");
  printf("  |u|          mean %.4g mm, largest %.4g mm at voxel (%lld, %lld, %lld)", n ? sum / (double)n : 0.0, mx,
         (long long)x, (long long)y, (long long)z);
  if (bad) printf("  (%lld non-finite voxels!)", (long long)bad);
  printf("\n");
  const double fold = ffdp_folding_fraction(u, ffdp_mat4_identity());
  printf("  folding      %.6g %% of voxels (det(I + du/dx) <= 0)\n", 100 * fold);
}

static int info_one(const char *path) {
  ffdp_error err = {0};
  ffdp_volume *v;
  int field = 0;
  if (ffdp_volume_load(path, &v, &err)) {
    int64_t fd[3];
    ffdp_mat4 fw;
    ffdp_error ferr = {0};
    if (err.code != FFDP_ERR_UNSUPPORTED || ffdp_field_probe(path, fd, &fw, &ferr)) return cli_error(&err);
    if (ffdp_field_load(path, 1, &v, &err)) return cli_error(&err);
    field = 1;
  }
  const int64_t *d = ffdp_volume_dim(v);
  ffdp_mat4 w = ffdp_volume_vox2world(v);
  double sp[3], lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  ffdp_volume_spacing(v, sp);
  for (int k = 0; k < 8; k++) { /* world bounding box of the voxel centres */
    double p[3] = {(k & 1) ? d[0] - 1 : 0, (k & 2) ? d[1] - 1 : 0, (k & 4) ? d[2] - 1 : 0}, x[3];
    ffdp_mat4_apply(w, p, x);
    for (int a = 0; a < 3; a++) lo[a] = fmin(lo[a], x[a]), hi[a] = fmax(hi[a], x[a]);
  }
  double vmin = 0, vmax = 0;
  int64_t bad = field ? 0 : ffdp_volume_range(v, &vmin, &vmax);
  char code[4];
  orientation_code(w, code);
  printf("%s\n", path);
  printf("  shape        %lld x %lld x %lld  (%lld voxels)\n", (long long)d[0], (long long)d[1], (long long)d[2],
         (long long)ffdp_volume_nvox(v));
  printf("  type         %s\n", dtype_name(ffdp_volume_source_dtype(v)));
  printf("  spacing      %.4g x %.4g x %.4g mm\n", sp[0], sp[1], sp[2]);
  printf("  orientation  %s (voxel axes point to)\n", code);
  printf("  vox->world   [% .4f % .4f % .4f % .3f]\n", w.m[0][0], w.m[0][1], w.m[0][2], w.m[0][3]);
  printf("               [% .4f % .4f % .4f % .3f]\n", w.m[1][0], w.m[1][1], w.m[1][2], w.m[1][3]);
  printf("               [% .4f % .4f % .4f % .3f]\n", w.m[2][0], w.m[2][1], w.m[2][2], w.m[2][3]);
  printf("  world bbox   x [%.2f, %.2f]  y [%.2f, %.2f]  z [%.2f, %.2f] mm (RAS)\n", lo[0], hi[0], lo[1], hi[1],
         lo[2], hi[2]);
  if (field) {
    field_summary(v);
  } else {
    printf("  intensity    [%g, %g]", vmin, vmax);
    if (bad) printf("  (%lld non-finite voxels!)", (long long)bad);
    printf("\n");
  }
  ffdp_volume_free(v);
  return 0;
}

int ffdp_cmd_info(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    printf("usage: ffdp info FILE.nii[.gz] [FILE...]\n\n"
           "Prints shape, on-disk type, spacing, orientation code, voxel-to-world matrix,\n"
           "world bounding box (RAS mm) and intensity range of each image. For a displacement\n"
           "field (a warp ffdp register, ANTs or ITK wrote) the mean and largest displacement and\n"
           "the fraction of voxels where x -> x + u(x) folds take the intensity's place.\n\n"
           "examples:\n"
           "  ffdp info ../shared/data/brain/*.nii.gz\n"
           "  ffdp info out/sub_1Warp.nii.gz\n");
    return argc < 2 ? 2 : 0;
  }
  int rc = 0;
  for (int i = 1; i < argc; i++) rc |= info_one(argv[i]);
  return rc;
}
