/* Transform files and conventions: the ITK affine (LPS) round trip; the ANTs warp export
 * (u' = A^-1 u, LPS) read back through an apply chain `-t warp -t affine` reproduces the
 * warped image computed directly from phi(x) = A x + t + u(x); the inverse affine of [file,1]. */
#include "check.h"
#include "ffdp/ffdp.h"
#include "reg/chain.h"
#include "test_geometry.h"
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Folding by the definition, voxel by voxel: J = A + du/dp · Wf^-1 from central differences
 * (one-sided at edges, none on an axis of one voxel); counts det J <= 0 on planes [z0, z1). */
static int64_t naive_folding(const ffdp_volume *u, ffdp_mat4 A, int64_t z0, int64_t z1) {
  const int64_t *d = ffdp_volume_dim(u);
  const float *v = ffdp_volume_cdata(u);
  ffdp_mat4 wi;
  ffdp_mat4_inverse(ffdp_volume_vox2world(u), &wi);
  int64_t bad = 0;
  for (int64_t z = z0; z < z1; z++)
    for (int64_t y = 0; y < d[1]; y++)
      for (int64_t x = 0; x < d[0]; x++) {
        const int64_t c[3] = {x, y, z};
        double du[3][3];
        for (int k = 0; k < 3; k++) {
          int64_t lo[3] = {x, y, z}, hi[3] = {x, y, z};
          if (c[k] > 0) lo[k]--;
          if (c[k] < d[k] - 1) hi[k]++;
          const double h = (double)(hi[k] - lo[k]);
          const int64_t il = (lo[2] * d[1] + lo[1]) * d[0] + lo[0], ih = (hi[2] * d[1] + hi[1]) * d[0] + hi[0];
          for (int a = 0; a < 3; a++) du[a][k] = h > 0 ? (double)(v[3 * ih + a] - v[3 * il + a]) * (1.0 / h) : 0.0;
        }
        double J[3][3];
        for (int a = 0; a < 3; a++)
          for (int b = 0; b < 3; b++) {
            double s = A.m[a][b];
            for (int k = 0; k < 3; k++) s += du[a][k] * wi.m[k][b];
            J[a][b] = s;
          }
        const double det = J[0][0] * (J[1][1] * J[2][2] - J[1][2] * J[2][1]) - J[0][1] * (J[1][0] * J[2][2] - J[1][2] * J[2][0]) +
                           J[0][2] * (J[1][0] * J[2][1] - J[1][1] * J[2][0]);
        bad += !(det > 0);
      }
  return bad;
}

/* The folding count against the definition on grids with edges everywhere (axes of one and two
 * voxels among them), an oblique grid and affine, and fields that fold in places. */
static void check_folding(void) {
  const int64_t dims[][3] = {{9, 7, 6}, {40, 31, 17}, {1, 5, 4}, {2, 1, 3}, {5, 6, 1}, {3, 2, 2}, {17, 4, 3}};
  ffdp_mat4 w = test_oblique(0.1, -0.2, 0.05, (double[3]){0.9, 1.1, 1.3}, (double[3]){-4, 2, 1});
  ffdp_mat4 A = test_oblique(-0.05, 0.1, 0.02, (double[3]){1.05, 0.97, 1.01}, (double[3]){0.5, 0.2, -0.3});
  rng_t r = {0x5eed1234abcdULL};
  ffdp_error err;
  for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
    ffdp_volume *u = NULL;
    CHECK(ffdp_volume_create(dims[t], 3, w, &u, &err) == FFDP_OK, "%s", err.msg);
    if (!u) continue;
    float *v = ffdp_volume_data(u);
    for (int64_t i = 0; i < 3 * ffdp_volume_nvox(u); i++) v[i] = (float)rng_range(&r, -0.9, 0.9);
    const int64_t nz = dims[t][2], want = naive_folding(u, A, 0, nz), got = ffdp_folding_count(u, A, 0, nz);
    CHECK(got == want, "grid %lldx%lldx%lld: %lld folded voxels, the definition says %lld", (long long)dims[t][0],
          (long long)dims[t][1], (long long)nz, (long long)got, (long long)want);
    CHECK(t != 0 || (want > 0 && want < ffdp_volume_nvox(u)), "the first field should fold in places (%lld)", (long long)want);
    if (nz > 2) /* planes of a share: their own voxels, differences across the share's ends */
      CHECK(ffdp_folding_count(u, A, 1, nz - 1) == naive_folding(u, A, 1, nz - 1), "planes [1, %lld)", (long long)nz - 1);
    ffdp_volume_free(u);
  }
  /* exact cases on an identity grid and affine: u_x = -s x gives J_xx = 1 - s at every voxel
   * (central and one-sided differences alike), so s = 1 folds all (det = 0) and s = 0.5 none */
  const int64_t d[3] = {12, 5, 4};
  ffdp_volume *u = NULL;
  CHECK(ffdp_volume_create(d, 3, ffdp_mat4_identity(), &u, &err) == FFDP_OK, "%s", err.msg);
  for (int k = 0; u && k < 2; k++) {
    const double s = k ? 0.5 : 1.0;
    float *v = ffdp_volume_data(u);
    for (int64_t i = 0; i < ffdp_volume_nvox(u); i++) v[3 * i] = (float)(-s * (double)(i % d[0])), v[3 * i + 1] = v[3 * i + 2] = 0;
    const int64_t got = ffdp_folding_count(u, ffdp_mat4_identity(), 0, d[2]);
    CHECK(got == (k ? 0 : ffdp_volume_nvox(u)), "u_x = -%g x: %lld folded voxels of %lld", s, (long long)got,
          (long long)ffdp_volume_nvox(u));
  }
  ffdp_volume_free(u);
}

/* The global NCC's sums: the same bits on 1, 2 and 3 threads, and the value of plain sums. */
static void check_ncc_threads(void) {
  const int64_t n = 100003; /* several chunks and a partial one */
  float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
  if (!a || !b) {
    CHECK(0, "out of memory");
    free(a), free(b);
    return;
  }
  rng_t r = {0x1234567ULL};
  for (int64_t i = 0; i < n; i++) a[i] = (float)rng_range(&r, 0, 1), b[i] = (float)(0.7 * a[i] + 0.3 * rng_range(&r, 0, 1));
  ffdp_ncc_sums s[3];
  memset(s, 0, sizeof s);
  const int keep = omp_get_max_threads();
  for (int t = 0; t < 3; t++) {
    omp_set_num_threads(t + 1);
    ffdp_ncc_add(&s[t], a, b, n);
    ffdp_ncc_add(&s[t], a, b, 5); /* a second call adds on */
  }
  omp_set_num_threads(keep);
  double sa = 0, sab = 0;
  for (int64_t i = 0; i < n; i++) sa += a[i], sab += (double)a[i] * b[i];
  for (int64_t i = 0; i < 5; i++) sa += a[i], sab += (double)a[i] * b[i];
  CHECK(!memcmp(&s[0], &s[1], sizeof s[0]) && !memcmp(&s[0], &s[2], sizeof s[0]), "NCC sums differ between thread counts");
  CHECK(s[0].n == (double)(n + 5) && check_close(s[0].sa, sa, 1e-12, 0) && check_close(s[0].sab, sab, 1e-12, 0),
        "NCC sums %g %g, plain sums %g %g", s[0].sa, s[0].sab, sa, sab);
  const double v = ffdp_ncc_value(&s[0]);
  CHECK(v > 0.9 && v < 1, "NCC of correlated values %g", v);
  free(a), free(b);
}

int main(void) {
  check_folding();
  check_ncc_threads();
  ffdp_error err;
  ffdp_mat4 A = test_oblique(0.1, -0.05, 0.2, (double[3]){1.1, 0.95, 1.02}, (double[3]){3.5, -2.25, 7});
  A.m[1][0] += 0.04;
  CHECK(ffdp_affine_save_itk(A, "t_affine.txt", &err) == FFDP_OK, "%s", err.msg);
  /* LPS on disk: the x,y translation signs flip, z stays */
  FILE *f = fopen("t_affine.txt", "r");
  char line[1024], keep[1024], *params = NULL;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "Parameters:", 11)) params = strcpy(keep, line);
  double p[12];
  int n = params ? sscanf(params, "Parameters: %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &p[0], &p[1], &p[2], &p[3], &p[4],
                          &p[5], &p[6], &p[7], &p[8], &p[9], &p[10], &p[11])
                 : 0;
  if (f) fclose(f);
  CHECK(n == 12 && p[9] == -3.5 && p[10] == 2.25 && p[11] == 7, "ITK translation not in LPS");
  CHECK(n == 12 && p[2] == -A.m[0][2] && p[6] == -A.m[2][0] && p[0] == A.m[0][0], "ITK matrix not D A D");
  ffdp_mat4 B;
  CHECK(ffdp_affine_load_itk("t_affine.txt", &B, &err) == FFDP_OK, "%s", err.msg);
  double e = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) e = fmax(e, fabs(A.m[i][j] - B.m[i][j]));
  CHECK(e < 1e-12, "affine round trip error %g", e);

  /* images and a smooth displacement on the fixed grid */
  const int64_t fd[3] = {24, 20, 18}, md[3] = {26, 22, 21};
  ffdp_mat4 wf = test_oblique(0, 0.1, 0, (double[3]){1, 1, 1.2}, (double[3]){-12, -10, -11});
  ffdp_mat4 wm = test_oblique(0.2, 0, -0.1, (double[3]){0.9, 1.1, 1}, (double[3]){-10, -12, -10});
  ffdp_volume *M, *u, *ref, *viafiles, *fld;
  ffdp_volume_create(md, 1, wm, &M, NULL);
  ffdp_volume_create(fd, 3, wf, &u, NULL);
  float *m = ffdp_volume_data(M), *ud = ffdp_volume_data(u);
  for (int64_t i = 0; i < ffdp_volume_nvox(M); i++) m[i] = (float)(1 + sin(0.3 * i) + 0.5 * cos(0.07 * i));
  for (int64_t z = 0; z < fd[2]; z++)
    for (int64_t y = 0; y < fd[1]; y++)
      for (int64_t x = 0; x < fd[0]; x++) {
        float *v = ud + 3 * ((z * fd[1] + y) * fd[0] + x);
        v[0] = (float)(1.5 * sin(0.3 * y)), v[1] = (float)(-1.0 * cos(0.25 * z)), v[2] = (float)(0.8 * sin(0.2 * x));
      }
  ffdp_mat4 small = test_oblique(0.05, -0.03, 0.02, (double[3]){1.02, 0.98, 1.01}, (double[3]){0.5, -0.3, 0.2});
  CHECK(ffdp_warp_image(M, fd, wf, small, u, 0, &ref, &err) == FFDP_OK, "%s", err.msg);
  ffdp_affine_save_itk(small, "t_small.txt", &err);
  CHECK(ffdp_warp_save_ants(u, small, "t_warp.nii.gz", &err) == FFDP_OK, "%s", err.msg);
  CHECK(ffdp_field_load("t_warp.nii.gz", 1, &fld, &err) == FFDP_OK, "%s", err.msg);
  ffdp_chain_item items[2];
  items[0].field = fld;
  items[1].field = NULL;
  ffdp_affine_load_itk("t_small.txt", &items[1].affine, &err);
  CHECK(ffdp_chain_apply(items, 2, M, fd, wf, 0, &viafiles, &err) == FFDP_OK, "%s", err.msg);
  e = 0;
  for (int64_t i = 0; i < ffdp_volume_nvox(ref); i++) e = fmax(e, fabs(ffdp_volume_cdata(ref)[i] - ffdp_volume_cdata(viafiles)[i]));
  CHECK(e < 1e-4, "warp+affine files do not reproduce the direct warp (max diff %g)", e);
  /* an affine followed by its inverse is the identity */
  ffdp_volume *id;
  items[0].field = NULL, items[0].affine = small;
  ffdp_mat4_inverse(small, &items[1].affine);
  ffdp_chain_apply(items, 2, M, md, wm, 0, &id, &err);
  e = 0;
  for (int64_t i = 0; i < ffdp_volume_nvox(M); i++) e = fmax(e, fabs(ffdp_volume_cdata(id)[i] - m[i]));
  CHECK(e < 1e-4, "affine then its inverse changed the image by %g", e);
  ffdp_volume_free(M), ffdp_volume_free(u), ffdp_volume_free(ref), ffdp_volume_free(viafiles), ffdp_volume_free(fld);
  ffdp_volume_free(id);
  unlink("t_affine.txt"), unlink("t_small.txt"), unlink("t_warp.nii.gz");
  return check_done("test_transforms");
}
