/* ITK/ANTs transform files. ITK works in LPS: x_lps = D·x_ras with D = diag(-1,-1,1), so a
 * RAS affine (A, t) is written as (D A D, D t). ITK's MatrixOffsetTransform maps
 * x -> M·(x - c) + c + translation; we write c = 0. */
#include "reg/reg_internal.h"
#include "core/err.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const double D[3] = {-1, -1, 1};

ffdp_status ffdp_affine_save_itk(ffdp_mat4 a, const char *path, ffdp_error *err) {
  size_t n = strlen(path) + 16;
  char *tmp = malloc(n);
  snprintf(tmp, n, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd >= 0) fchmod(fd, 0644); /* mkstemp's 0600 would make the transform private to its writer */
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    ffdp_status s = ffdp_fail(err, FFDP_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    if (fd >= 0) close(fd), unlink(tmp);
    free(tmp);
    return s;
  }
  fprintf(f, "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\nParameters:");
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) fprintf(f, " %.17g", D[i] * a.m[i][j] * D[j]);
  for (int i = 0; i < 3; i++) fprintf(f, " %.17g", D[i] * a.m[i][3]);
  fprintf(f, "\nFixedParameters: 0 0 0\n");
  int ok = !ferror(f);
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    free(tmp);
    return ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s': %s", path, strerror(errno));
  }
  free(tmp);
  return FFDP_OK;
}

ffdp_status ffdp_affine_load_itk(const char *path, ffdp_mat4 *out, ffdp_error *err) {
  FILE *f = fopen(path, "r");
  if (!f) return ffdp_fail(err, FFDP_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  char line[4096];
  double p[12], c[3] = {0, 0, 0};
  int np = 0, nc = 0, kind_ok = 0, header = 0;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "#Insight Transform File", 23)) header = 1;
    if (!strncmp(line, "Transform:", 10))
      kind_ok = strstr(line, "AffineTransform_double_3_3") || strstr(line, "AffineTransform_float_3_3") ||
                strstr(line, "MatrixOffsetTransformBase_double_3_3") || strstr(line, "MatrixOffsetTransformBase_float_3_3");
    if (!strncmp(line, "Parameters:", 11)) {
      char *s = line + 11, *e;
      for (np = 0; np < 12; np++, s = e) {
        p[np] = strtod(s, &e);
        if (e == s) break;
      }
    }
    if (!strncmp(line, "FixedParameters:", 16)) {
      char *s = line + 16, *e;
      for (nc = 0; nc < 3; nc++, s = e) {
        c[nc] = strtod(s, &e);
        if (e == s) break;
      }
    }
  }
  fclose(f);
  if (!header || !kind_ok || np != 12 || nc != 3)
    return ffdp_fail(err, FFDP_ERR_FORMAT,
                     "'%s' is not a 3D ITK affine transform file (expected AffineTransform_double_3_3 with 12 parameters)", path);
  ffdp_mat4 a = ffdp_mat4_identity();
  for (int i = 0; i < 3; i++) {
    double off = p[9 + i] + c[i];
    for (int j = 0; j < 3; j++) off -= p[3 * i + j] * c[j];
    for (int j = 0; j < 3; j++) a.m[i][j] = D[i] * p[3 * i + j] * D[j];
    a.m[i][3] = D[i] * off;
  }
  ffdp_mat4 inv;
  if (!ffdp_mat4_inverse(a, &inv)) return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': the affine matrix is singular", path);
  *out = a;
  return FFDP_OK;
}

ffdp_status ffdp_warp_save_ants(const ffdp_volume *u, ffdp_mat4 affine, const char *path, ffdp_error *err) {
  return ffdp_warp_save_ants_shared(u, affine, path, NULL, err);
}

ffdp_status ffdp_warp_save_ants_shared(const ffdp_volume *u, ffdp_mat4 affine, const char *path, const ffdp_comm *comm,
                                       ffdp_error *err) {
  ffdp_mat4 ainv;
  if (!ffdp_mat4_inverse(affine, &ainv)) return ffdp_fail(err, FFDP_ERR_INVALID, "singular affine; cannot export the warp");
  double T[3][3]; /* ANTs applies the warp before the affine: u' = A^-1 u, mapped as it is written */
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) T[a][b] = ainv.m[a][b];
  return ffdp_field_save_mapped_shared(u, T, path, 1, comm, err);
}

ffdp_status ffdp_inverse_warp_save_ants(const ffdp_volume *u_inv, const char *path, ffdp_error *err) {
  return ffdp_field_save(u_inv, path, 1, err);
}

ffdp_status ffdp_inverse_warp_save_ants_shared(const ffdp_volume *u_inv, const char *path, const ffdp_comm *comm,
                                               ffdp_error *err) {
  return ffdp_field_save_mapped_shared(u_inv, NULL, path, 1, comm, err);
}
