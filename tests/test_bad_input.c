/* Bad input: every case gets the right error code and a one-line message naming the file,
 * and no partial output is left. The files stay in bad_inputs/ for cli_bad_input.sh. */
#include "check.h"
#include <stdarg.h>
#include "ffdp/ffdp.h"
#include <dirent.h>
#include <math.h>
#include <nifti2_io.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_ "bad_inputs/"

static nifti_image *small_image(int64_t nt, int64_t nu) {
  int64_t dims[8] = {nu > 1 ? 5 : nt > 1 ? 4 : 3, 4, 4, 4, nt, nu, 1, 1};
  nifti_image *n = nifti_make_new_nim(dims, DT_FLOAT32, 1);
  n->sform_code = 1;
  memset(n->sto_xyz.m, 0, sizeof n->sto_xyz.m);
  for (int i = 0; i < 4; i++) n->sto_xyz.m[i][i] = 1;
  return n;
}

static void write_nim(nifti_image *n, const char *path) {
  nifti_set_filenames(n, path, 0, 1);
  nifti_image_write(n);
  nifti_image_free(n);
}

static void truncate_file(const char *src, const char *dst, double frac) {
  FILE *f = fopen(src, "rb");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *buf = malloc(n);
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  f = fopen(dst, "wb");
  fwrite(buf, 1, (size_t)(got * frac), f);
  fclose(f);
  free(buf);
}

static void header_only(int version, const char *path) {
  int64_t hd[8] = {3, 2048, 2048, 1024, 1, 1, 1, 1};
  nifti_image *n = nifti_make_new_nim(hd, DT_UINT8, 0);
  n->nifti_type = version == 2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
  union {
    nifti_1_header h1;
    nifti_2_header h2;
  } h;
  size_t size = version == 2 ? sizeof h.h2 : sizeof h.h1;
  if (version == 2) nifti_convert_nim2n2hdr(n, &h.h2);
  else nifti_convert_nim2n1hdr(n, &h.h1);
  nifti_image_free(n);
  FILE *f = fopen(path, "wb");
  fwrite(&h, size, 1, f);
  fwrite("\0\0\0\0", 4, 1, f);
  fclose(f);
}

static void expect_load(const char *path, ffdp_status want, const char *what) {
  ffdp_volume *v = (ffdp_volume *)1;
  ffdp_error err = {0};
  ffdp_status s = ffdp_volume_load(path, &v, &err);
  CHECK(s == want, "%s: got status %d (%s), want %d", what, s, err.msg, want);
  if (want == FFDP_OK) {
    if (s == FFDP_OK) ffdp_volume_free(v);
    return;
  }
  CHECK(v == NULL, "%s: output handle not cleared", what);
  CHECK(strstr(err.msg, path) != NULL && strchr(err.msg, '\n') == NULL, "%s: message should be one line naming the file: '%s'", what, err.msg);
  if (s == want) printf("  ok  %-28s -> %s\n", what, err.msg);
}

static int count_entries(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  if (d) closedir(d);
  return n;
}

/* ffdp_volume_range (what refuses NaN/Inf images before a registration) against a plain loop:
 * non-finite values at every position of short volumes (vector lanes and tails), negative
 * zero, the largest finite floats, and one-voxel volumes with no finite value. */
/* ffdp_volume_range against a plain loop over the finite values (what names the case). */
static void range_agrees(const ffdp_volume *v, const char *what, ...) {
  const float *d = ffdp_volume_cdata(v);
  const int64_t n = ffdp_volume_nvox(v);
  int64_t bad = 0;
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(d[i])) {
      bad++;
      continue;
    }
    lo = d[i] < lo ? d[i] : lo, hi = d[i] > hi ? d[i] : hi;
  }
  double glo, ghi;
  const int64_t gbad = ffdp_volume_range(v, &glo, &ghi);
  if (gbad == bad && glo == lo && ghi == hi) return;
  char name[200];
  va_list ap;
  va_start(ap, what);
  vsnprintf(name, sizeof name, what, ap);
  va_end(ap);
  CHECK(0, "%s: %lld [%g, %g], want %lld [%g, %g]", name, (long long)gbad, glo, ghi, (long long)bad, lo, hi);
}

static void range_checks(void) {
  const float odd[] = {NAN, INFINITY, -INFINITY, -0.0f, 3.402823466e38f, -3.402823466e38f, 1e-45f};
  for (int64_t n = 1; n <= 67; n += 3)
    for (int64_t at = 0; at < n; at += 5)
      for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
        const int64_t dim[3] = {n, 1, 1};
        ffdp_volume *v = NULL;
        ffdp_error err;
        if (ffdp_volume_create(dim, 1, ffdp_mat4_identity(), &v, &err)) {
          CHECK(0, "%s", err.msg);
          return;
        }
        float *d = ffdp_volume_data(v);
        for (int64_t i = 0; i < n; i++) d[i] = (float)((i * 37) % 11) - 4.5f;
        d[at] = odd[k];
        range_agrees(v, "n %lld, value %g at %lld", (long long)n, odd[k], (long long)at);
        ffdp_volume_free(v);
      }
  /* across the range pass's chunks of 2^14 values: non-finite values at chunk edges, alone or
   * with others, and an image of nothing but NaN */
  const int64_t n = 3 * 16384 + 77, at[] = {0, 16383, 16384, 32767, n - 1};
  ffdp_volume *v = NULL;
  const int64_t dim[3] = {n, 1, 1};
  if (ffdp_volume_create(dim, 1, ffdp_mat4_identity(), &v, NULL)) return;
  float *d = ffdp_volume_data(v);
  for (int k = -1; k < 12; k++) {
    for (int64_t i = 0; i < n; i++) d[i] = k == 11 ? NAN : (float)((i * 7919) % 2003) - 1000.5f;
    if (k >= 0 && k < 5) d[at[k]] = odd[k % 3];
    if (k >= 5 && k < 10) d[at[k - 5]] = odd[1], d[at[(k - 4) % 5]] = odd[2], d[at[(k - 3) % 5]] = odd[0];
    if (k == 10) d[at[1]] = 4e37f, d[at[3]] = -4e37f;
    range_agrees(v, "chunks, case %d", k);
  }
  ffdp_volume_free(v);
}

int main(void) {
  range_checks();
  mkdir("bad_inputs", 0755);
  nifti_set_debug_level(0);
  /* a good file to damage */
  nifti_image *good = small_image(1, 1);
  for (int i = 0; i < 64; i++) ((float *)good->data)[i] = (float)(i * 37 % 11);
  write_nim(good, DIR_ "good.nii.gz");
  int64_t bigdims[8] = {3, 64, 64, 64, 1, 1, 1, 1};
  nifti_image *big = nifti_make_new_nim(bigdims, DT_FLOAT32, 1);
  for (int64_t i = 0; i < big->nvox; i++) ((float *)big->data)[i] = (float)((i * 7919) % 1000);
  write_nim(big, DIR_ "big.nii.gz");
  truncate_file(DIR_ "big.nii.gz", DIR_ "truncated.nii.gz", 0.5);
  big = nifti_make_new_nim(bigdims, DT_FLOAT32, 1);
  write_nim(big, DIR_ "big.nii");
  truncate_file(DIR_ "big.nii", DIR_ "truncated.nii", 0.7);
  FILE *f = fopen(DIR_ "corrupt.nii.gz", "wb");
  for (int i = 0; i < 4096; i++) fputc((i * 131 + 7) & 255, f);
  fclose(f);
  f = fopen(DIR_ "text.nii.gz.txt", "w");
  fputs("#Insight Transform File V1.0\nTransform: Euler3DTransform_double_3_3\n", f);
  fclose(f);
  f = fopen(DIR_ "text.nii", "w");
  fputs("this is not an image\n", f);
  fclose(f);
  nifti_image *n = small_image(1, 1);
  n->dx = n->pixdim[1] = 0;
  write_nim(n, DIR_ "zero_spacing.nii");
  n = small_image(1, 1);
  n->dz = n->pixdim[3] = NAN;
  write_nim(n, DIR_ "nan_spacing.nii");
  n = small_image(1, 1);
  n->sto_xyz.m[0][1] = 0, n->sto_xyz.m[1][1] = 0, n->sto_xyz.m[2][1] = 0; /* second axis collapses */
  write_nim(n, DIR_ "singular.nii");
  write_nim(small_image(3, 1), DIR_ "four_d.nii.gz");
  write_nim(small_image(1, 3), DIR_ "five_d.nii.gz");
  /* Headers claiming 2048 x 2048 x 1024 voxels (over 2^31) with no data behind them: NIfTI-1
   * cannot hold that; NIfTI-2 can, and is refused as truncated before any allocation. */
  header_only(1, DIR_ "huge_nifti1.nii");
  header_only(2, DIR_ "huge_nifti2.nii");

  /* loadable but unusable for registration (exercised by cli_register.sh) */
  n = small_image(1, 1);
  for (int i = 0; i < 64; i++) ((float *)n->data)[i] = (float)(i % 7);
  ((float *)n->data)[9] = NAN;
  write_nim(n, DIR_ "nan_values.nii.gz");
  write_nim(small_image(1, 1), DIR_ "constant.nii.gz");
  n = small_image(1, 1);
  for (int i = 0; i < 64; i++) ((float *)n->data)[i] = (float)(i % 5);
  n->sto_xyz.m[0][3] = 5000; /* five metres away from good.nii.gz */
  write_nim(n, DIR_ "far_away.nii.gz");

  expect_load(DIR_ "good.nii.gz", FFDP_OK, "good file (control)");
  expect_load(DIR_ "missing.nii.gz", FFDP_ERR_IO, "missing file");
  expect_load(DIR_ "truncated.nii.gz", FFDP_ERR_FORMAT, "truncated .nii.gz");
  expect_load(DIR_ "truncated.nii", FFDP_ERR_FORMAT, "truncated .nii");
  expect_load(DIR_ "corrupt.nii.gz", FFDP_ERR_FORMAT, "corrupt .nii.gz");
  expect_load(DIR_ "text.nii", FFDP_ERR_FORMAT, "not a NIfTI file");
  expect_load(DIR_ "zero_spacing.nii", FFDP_ERR_INVALID, "zero spacing");
  expect_load(DIR_ "nan_spacing.nii", FFDP_ERR_INVALID, "NaN spacing");
  expect_load(DIR_ "singular.nii", FFDP_ERR_INVALID, "singular orientation");
  expect_load(DIR_ "four_d.nii.gz", FFDP_ERR_UNSUPPORTED, "4D where 3D expected");
  expect_load(DIR_ "five_d.nii.gz", FFDP_ERR_UNSUPPORTED, "5D where 3D expected");
  expect_load(DIR_ "huge_nifti1.nii", FFDP_ERR_UNSUPPORTED, "NIfTI-1 over 2^31 voxels");
  expect_load(DIR_ "huge_nifti2.nii", FFDP_ERR_FORMAT, "NIfTI-2 over 2^31, no data");

  /* Output errors. */
  ffdp_volume *v;
  ffdp_error err;
  ffdp_volume_load(DIR_ "big.nii.gz", &v, &err);
  f = fopen(DIR_ "plainfile", "w");
  fclose(f);
  CHECK(ffdp_volume_save(v, DIR_ "plainfile/out.nii.gz", FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err) == FFDP_ERR_IO,
        "writing below a regular file should be an I/O error: %s", err.msg);
  CHECK(strstr(err.msg, "plainfile/out.nii.gz") != NULL, "message should name the output: %s", err.msg);
  CHECK(ffdp_volume_save(v, DIR_ "noext.img", FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err) == FFDP_ERR_INVALID,
        "unknown output extension accepted");
  /* Interrupted write: a file-size limit makes the data write fail part-way, as a full
   * disk would. Nothing may be left under the final name or as a temporary. */
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 100000;
  setrlimit(RLIMIT_FSIZE, &lim);
  ffdp_status s = ffdp_volume_save(v, DIR_ "interrupted.nii", FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err);
  setrlimit(RLIMIT_FSIZE, &old);
  CHECK(s == FFDP_ERR_IO, "interrupted write returned %d: %s", s, err.msg);
  CHECK(access(DIR_ "interrupted.nii", F_OK) != 0, "a partial output file was left behind");
  CHECK(count_entries("bad_inputs", "interrupted.nii") == 0, "a temporary file was left behind");
  printf("  ok  %-28s -> %s\n", "interrupted write", err.msg);
  /* and the same write without the limit succeeds and replaces nothing half-way */
  CHECK(ffdp_volume_save(v, DIR_ "interrupted.nii", FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err) == FFDP_OK, "%s", err.msg);
  unlink(DIR_ "interrupted.nii");
  ffdp_volume_free(v);
  return check_done("test_bad_input");
}
