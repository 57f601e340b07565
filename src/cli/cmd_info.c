/* ffdp info FILE...: what a user checks before registering. */
#include "cli/cli.h"
#include "io/nifti_common.h"
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

/* Statistics gathered piece by piece (so that a gigavoxel image or warp is never held whole). */
typedef struct {
  double vmin, vmax;     /* images: the intensity range over finite values */
  double sum, mx;        /* fields: sum and largest of |u| */
  int64_t at, bad, fold; /* voxel of the largest |u|; non-finite voxels; folded voxels */
} info_stats;

/* A field's planes [z0, z1) (u whole-grid, those planes and their neighbours read): lengths of
 * the displacements and whether x -> x + u(x) folds (det(I + du/dx) <= 0; an affine applied
 * after it, as in ANTs' chains, scales every determinant by the same positive factor). */
static void field_piece(const ffdp_volume *u, int64_t z0, int64_t z1, info_stats *t) {
  const int64_t P = ffdp_volume_dim(u)[0] * ffdp_volume_dim(u)[1];
  const float *d = ffdp_volume_cdata(u);
  double sum = 0, mx = t->mx;
  int64_t at = t->at, bad = 0;
#pragma omp parallel
  {
    double lmx = -1;
    int64_t lat = 0;
#pragma omp for reduction(+ : sum, bad) schedule(static)
    for (int64_t i = z0 * P; i < z1 * P; i++) {
      const double a = d[3 * i], b = d[3 * i + 1], c = d[3 * i + 2], l = sqrt(a * a + b * b + c * c);
      if (!isfinite(l)) bad++;
      else sum += l;
      if (l > lmx) lmx = l, lat = i; /* the first of equal lengths in this thread's (ordered) run */
    }
#pragma omp critical
    if (lmx > mx || (lmx == mx && lat < at)) mx = lmx, at = lat;
  }
  t->sum += sum, t->bad += bad, t->mx = mx, t->at = at;
  t->fold += ffdp_folding_count(u, ffdp_mat4_identity(), z0, z1);
}

static int info_one(const char *path) {
  ffdp_error err = {0};
  int64_t d[3];
  ffdp_mat4 w;
  int field = 0;
  if (ffdp_volume_probe(path, d, &w, &err)) {
    ffdp_error ferr = {0};
    if (err.code != FFDP_ERR_UNSUPPORTED || ffdp_field_probe(path, d, &w, &ferr)) return cli_error(&err);
    field = 1;
  }
  /* ~64 M voxels at a time where planes read cheaply; another .nii.gz would inflate from its
   * start for every piece, so it is read whole */
  const int64_t P = d[0] * d[1], nz = d[2], piece = cli_piece_planes(P, nz, ffdp_path_planes_cheap(path));
  info_stats t = {INFINITY, -INFINITY, 0, -1, 0, 0, 0};
  int dtype = FFDP_DT_FLOAT32;
  for (int64_t z0 = 0; z0 < nz; z0 += piece) {
    const int64_t z1 = z0 + piece < nz ? z0 + piece : nz;
    ffdp_volume *v = NULL;
    ffdp_status st = field ? ffdp_field_load_share(path, 1, z0 > 0 ? z0 - 1 : 0, z1 < nz ? z1 + 1 : nz, &v, &err)
                           : ffdp_volume_load_planes(path, z0, z1, &v, &err);
    if (st) return cli_error(&err);
    dtype = ffdp_volume_source_dtype(v);
    if (field) {
      field_piece(v, z0, z1, &t);
    } else {
      double lo, hi;
      t.bad += ffdp_volume_range(v, &lo, &hi);
      t.vmin = fmin(t.vmin, lo), t.vmax = fmax(t.vmax, hi);
    }
    ffdp_volume_free(v);
  }
  double sp[3], lo[3] = {INFINITY, INFINITY, INFINITY}, hi[3] = {-INFINITY, -INFINITY, -INFINITY};
  for (int a = 0; a < 3; a++) sp[a] = sqrt(w.m[0][a] * w.m[0][a] + w.m[1][a] * w.m[1][a] + w.m[2][a] * w.m[2][a]);
  for (int k = 0; k < 8; k++) { /* world bounding box of the voxel centres */
    double p[3] = {(k & 1) ? d[0] - 1 : 0, (k & 2) ? d[1] - 1 : 0, (k & 4) ? d[2] - 1 : 0}, x[3];
    ffdp_mat4_apply(w, p, x);
    for (int a = 0; a < 3; a++) lo[a] = fmin(lo[a], x[a]), hi[a] = fmax(hi[a], x[a]);
  }
  char code[4];
  orientation_code(w, code);
  const int64_t n = d[0] * d[1] * d[2];
  printf("%s\n", path);
  printf("  shape        %lld x %lld x %lld  (%lld voxels)\n", (long long)d[0], (long long)d[1], (long long)d[2], (long long)n);
  printf("  type         %s\n", dtype_name(dtype));
  printf("  spacing      %.4g x %.4g x %.4g mm\n", sp[0], sp[1], sp[2]);
  printf("  orientation  %s (voxel axes point to)\n", code);
  printf("  vox->world   [% .4f % .4f % .4f % .3f]\n", w.m[0][0], w.m[0][1], w.m[0][2], w.m[0][3]);
  printf("               [% .4f % .4f % .4f % .3f]\n", w.m[1][0], w.m[1][1], w.m[1][2], w.m[1][3]);
  printf("               [% .4f % .4f % .4f % .3f]\n", w.m[2][0], w.m[2][1], w.m[2][2], w.m[2][3]);
  printf("  world bbox   x [%.2f, %.2f]  y [%.2f, %.2f]  z [%.2f, %.2f] mm (RAS)\n", lo[0], hi[0], lo[1], hi[1],
         lo[2], hi[2]);
  if (field) {
    const int64_t x = t.at % d[0], y = t.at / d[0] % d[1], z = t.at / P;
    printf("  field        displacement (ITK/ANTs vector image; LPS on disk)\n");
    printf("  |u|          mean %.4g mm, largest %.4g mm at voxel (%lld, %lld, %lld)", n ? t.sum / (double)n : 0.0,
           t.mx > 0 ? t.mx : 0.0, (long long)x, (long long)y, (long long)z);
  } else {
    printf("  intensity    [%g, %g]", t.vmin, t.vmax);
  }
  if (t.bad) printf("  (%lld non-finite voxels!)", (long long)t.bad);
  printf("\n");
  if (field) printf("  folding      %.6g %% of voxels (det(I + du/dx) <= 0)\n", n ? 100.0 * (double)t.fold / (double)n : 0.0);
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
