/* OME-Zarr and plane-range I/O: round trips through every compressor with odd sizes, chunks
 * that do not divide the shape and oblique geometry; plane ranges equal to slices of the whole
 * (Zarr, .nii, .nii.gz) with the matrix placing them right; a store as other tools write it
 * (5D tczyx, "." separators, micrometres, zlib chunks, big-endian); and broken stores, each a
 * clear error: a missing chunk, a corrupt chunk, inconsistent metadata, an unsupported dtype. */
#include "check.h"
#include "ffdp/ffdp.h"
#include "test_geometry.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static ffdp_volume *make(rng_t *r, const int64_t dim[3], int integer) {
  const double sp[3] = {0.7, 1.1, 1.3}, org[3] = {-12.5, 3.25, 40};
  ffdp_volume *v;
  ffdp_volume_create(dim, 1, test_oblique(0.3, -0.2, 0.1, sp, org), &v, NULL);
  float *d = ffdp_volume_data(v);
  for (int64_t i = 0; i < ffdp_volume_nvox(v); i++) d[i] = integer ? (float)nearbyint(rng_range(r, -300, 300)) : (float)rng_range(r, -5, 5);
  return v;
}

static int same_matrix(ffdp_mat4 a, ffdp_mat4 b, double tol) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (fabs(a.m[i][j] - b.m[i][j]) > tol) return 0;
  return 1;
}

/* planes [z0, z1) of w equal those of v, and w's voxel 0 sits where v's (0, 0, z0) does */
static void check_planes(const ffdp_volume *v, const ffdp_volume *w, int64_t z0, int64_t z1, const char *what) {
  const int64_t *d = ffdp_volume_dim(v), *e = ffdp_volume_dim(w), P = d[0] * d[1];
  CHECK(e[0] == d[0] && e[1] == d[1] && e[2] == z1 - z0, "%s: planes read with shape %lldx%lldx%lld", what,
        (long long)e[0], (long long)e[1], (long long)e[2]);
  if (e[2] != z1 - z0) return;
  int64_t bad = 0;
  for (int64_t i = 0; i < P * (z1 - z0); i++) bad += ffdp_volume_cdata(v)[z0 * P + i] != ffdp_volume_cdata(w)[i];
  CHECK(bad == 0, "%s: %lld plane values differ", what, (long long)bad);
  double p0[3] = {0, 0, (double)z0}, q0[3] = {0, 0, 0}, a[3], b[3];
  ffdp_mat4_apply(ffdp_volume_vox2world(v), p0, a);
  ffdp_mat4_apply(ffdp_volume_vox2world(w), q0, b);
  CHECK(fabs(a[0] - b[0]) + fabs(a[1] - b[1]) + fabs(a[2] - b[2]) < 1e-9, "%s: plane %lld placed at a different world point",
        what, (long long)z0);
}

static void round_trips(rng_t *r) {
  const int64_t dim[3] = {37, 29, 23};
  ffdp_volume *v = make(r, dim, 0), *vi = make(r, dim, 1);
  const ffdp_zarr_codec codecs[4] = {FFDP_ZARR_RAW, FFDP_ZARR_ZSTD, FFDP_ZARR_BLOSC_ZSTD, FFDP_ZARR_BLOSC_LZ4};
  for (int c = 0; c < 4; c++) {
    ffdp_zarr_options o = {{16, 8, 5}, codecs[c], 3};
    char path[64];
    snprintf(path, sizeof path, "rt_codec%d.zarr", c);
    ffdp_error err = {0};
    ffdp_volume *w = NULL;
    CHECK(ffdp_volume_save_zarr(v, path, FFDP_DT_FLOAT32, &o, &err) == FFDP_OK, "save %s: %s", path, err.msg);
    CHECK(ffdp_path_is_zarr(path), "%s not recognised as a store", path);
    CHECK(ffdp_volume_load(path, &w, &err) == FFDP_OK, "load %s: %s", path, err.msg);
    if (!w) continue;
    check_planes(v, w, 0, dim[2], path);
    CHECK(same_matrix(ffdp_volume_vox2world(v), ffdp_volume_vox2world(w), 0), "%s: geometry not kept exactly", path);
    CHECK(ffdp_volume_source_dtype(w) == FFDP_DT_FLOAT32, "%s: type %d", path, ffdp_volume_source_dtype(w));
    ffdp_volume_free(w);
    /* plane ranges: inside one chunk row, across rows, the last planes */
    const int64_t rg[3][2] = {{6, 9}, {3, 17}, {20, 23}};
    for (int k = 0; k < 3; k++) {
      CHECK(ffdp_volume_load_planes(path, rg[k][0], rg[k][1], &w, &err) == FFDP_OK, "planes %s: %s", path, err.msg);
      if (w) check_planes(v, w, rg[k][0], rg[k][1], path);
      ffdp_volume_free(w);
      w = NULL;
    }
    /* a rank's share: the whole grid with planes [6, 17) (across chunk rows) read, the rest zero */
    CHECK(ffdp_volume_load_share(path, 6, 17, &w, &err) == FFDP_OK, "share %s: %s", path, err.msg);
    if (w) {
      const int64_t P = dim[0] * dim[1];
      int bad = ffdp_volume_dim(w)[2] != dim[2];
      for (int64_t z = 0; !bad && z < dim[2]; z++)
        for (int64_t i = 0; i < P; i++)
          bad += ffdp_volume_cdata(w)[z * P + i] != (z >= 6 && z < 17 ? ffdp_volume_cdata(v)[z * P + i] : 0.f);
      CHECK(bad == 0, "%s: the share differs in %d values", path, bad);
      CHECK(same_matrix(ffdp_volume_vox2world(v), ffdp_volume_vox2world(w), 0), "%s: share geometry", path);
    }
    ffdp_volume_free(w);
    w = NULL;
    /* rewriting replaces the store */
    CHECK(ffdp_volume_save_zarr(vi, path, FFDP_DT_INT16, &o, &err) == FFDP_OK, "resave %s: %s", path, err.msg);
    CHECK(ffdp_volume_load(path, &w, &err) == FFDP_OK, "reload %s: %s", path, err.msg);
    if (w) check_planes(vi, w, 0, dim[2], "int16 rewrite");
    CHECK(w && ffdp_volume_source_dtype(w) == FFDP_DT_INT16, "rewrite type");
    ffdp_volume_free(w);
  }
  /* NIfTI plane ranges: positional reads (.nii) and a streamed skip (.nii.gz) */
  const char *nii[2] = {"planes.nii", "planes.nii.gz"};
  for (int k = 0; k < 2; k++) {
    ffdp_error err = {0};
    ffdp_volume *w = NULL, *whole = NULL; /* NIfTI stores the matrix in float: compare with the file */
    CHECK(ffdp_volume_save(v, nii[k], FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err) == FFDP_OK, "save %s", nii[k]);
    CHECK(ffdp_volume_load(nii[k], &whole, &err) == FFDP_OK, "load %s", nii[k]);
    CHECK(ffdp_volume_load_planes(nii[k], 11, 19, &w, &err) == FFDP_OK, "planes %s: %s", nii[k], err.msg);
    if (w && whole) check_planes(whole, w, 11, 19, nii[k]);
    ffdp_volume_free(w);
    ffdp_volume_free(whole);
    w = NULL;
    CHECK(ffdp_volume_load_planes(nii[k], 5, 30, &w, &err) != FFDP_OK && strstr(err.msg, "outside"), "range past the end: %s", err.msg);
  }
  /* vector fields are not written as Zarr; an existing non-store path is never replaced */
  ffdp_volume *f;
  ffdp_volume_create(dim, 3, ffdp_mat4_identity(), &f, NULL);
  ffdp_error err = {0};
  CHECK(ffdp_volume_save_zarr(f, "field.zarr", FFDP_DT_FLOAT32, NULL, &err) != FFDP_OK && strstr(err.msg, "NIfTI"), "field: %s", err.msg);
  ffdp_volume_free(f);
  mkdir("notastore.zarr", 0777);
  FILE *keep = fopen("notastore.zarr/precious.txt", "w");
  if (keep) fclose(keep);
  CHECK(ffdp_volume_save_zarr(v, "notastore.zarr", FFDP_DT_FLOAT32, NULL, &err) != FFDP_OK && strstr(err.msg, "refusing"),
        "replaced a directory that is not a store: %s", err.msg);
  CHECK(access("notastore.zarr/precious.txt", F_OK) == 0, "the directory's content was touched");
  ffdp_volume_free(v);
  ffdp_volume_free(vi);
}

static void put(const char *path, const void *buf, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(buf, 1, n, f);
    fclose(f);
  }
}

/* A 1x1x6x5x4 (tczyx) big-endian int16 store with "." keys, zlib chunks of 4x3x4 (zyx) and
 * micrometre axes, as other writers produce it. Value at (x, y, z) = 100 z + 10 y + x - 50. */
static void foreign_store(void) {
  mkdir("foreign.zarr", 0777);
  mkdir("foreign.zarr/s0", 0777);
  const char *attrs =
      "{\"multiscales\":[{\"version\":\"0.4\",\"axes\":[{\"name\":\"t\",\"type\":\"time\"},{\"name\":\"c\",\"type\":\"channel\"},"
      "{\"name\":\"z\",\"type\":\"space\",\"unit\":\"micrometer\"},{\"name\":\"y\",\"type\":\"space\",\"unit\":\"micrometer\"},"
      "{\"name\":\"x\",\"type\":\"space\",\"unit\":\"micrometer\"}],\"datasets\":[{\"path\":\"s0\",\"coordinateTransformations\":"
      "[{\"type\":\"scale\",\"scale\":[1,1,4,2,0.5]}]}],\"coordinateTransformations\":[{\"type\":\"translation\","
      "\"translation\":[0,0,1000,-500,250]}]}]}";
  const char *arr =
      "{\"zarr_format\":2,\"shape\":[1,1,6,5,4],\"chunks\":[1,1,4,3,4],\"dtype\":\">i2\",\"compressor\":{\"id\":\"zlib\","
      "\"level\":1},\"fill_value\":0,\"order\":\"C\",\"filters\":null}";
  put("foreign.zarr/.zgroup", "{\"zarr_format\":2}", 17);
  put("foreign.zarr/.zattrs", attrs, strlen(attrs));
  put("foreign.zarr/s0/.zarray", arr, strlen(arr));
  for (int cz = 0; cz < 2; cz++)
    for (int cy = 0; cy < 2; cy++) {
      unsigned char raw[4 * 3 * 4 * 2], comp[256];
      for (int z = 0; z < 4; z++)
        for (int y = 0; y < 3; y++)
          for (int x = 0; x < 4; x++) {
            int gz = cz * 4 + z, gy = cy * 3 + y, i = (z * 3 + y) * 4 + x;
            int16_t val = (gz < 6 && gy < 5) ? (int16_t)(100 * gz + 10 * gy + x - 50) : 0;
            raw[2 * i] = (unsigned char)((uint16_t)val >> 8), raw[2 * i + 1] = (unsigned char)(val & 0xff);
          }
      uLongf n = sizeof comp;
      compress2(comp, &n, raw, sizeof raw, 1);
      char p[64];
      snprintf(p, sizeof p, "foreign.zarr/s0/0.0.%d.%d.0", cz, cy);
      put(p, comp, n);
    }
  ffdp_volume *v = NULL;
  ffdp_error err = {0};
  CHECK(ffdp_volume_load("foreign.zarr", &v, &err) == FFDP_OK, "foreign store: %s", err.msg);
  if (!v) return;
  const int64_t *d = ffdp_volume_dim(v);
  CHECK(d[0] == 4 && d[1] == 5 && d[2] == 6, "foreign shape %lldx%lldx%lld", (long long)d[0], (long long)d[1], (long long)d[2]);
  int bad = 0;
  for (int z = 0; z < 6; z++)
    for (int y = 0; y < 5; y++)
      for (int x = 0; x < 4; x++) bad += ffdp_volume_cdata(v)[(z * 5 + y) * 4 + x] != 100 * z + 10 * y + x - 50;
  CHECK(bad == 0, "foreign store: %d values wrong", bad);
  ffdp_mat4 w = ffdp_volume_vox2world(v);
  CHECK(check_close(w.m[0][0], 0.5e-3, 1e-12, 0) && check_close(w.m[1][1], 2e-3, 1e-12, 0) && check_close(w.m[2][2], 4e-3, 1e-12, 0) &&
            check_close(w.m[0][3], 0.25, 1e-12, 0) && check_close(w.m[1][3], -0.5, 1e-12, 0) && check_close(w.m[2][3], 1.0, 1e-12, 0),
        "foreign geometry: spacing %g %g %g mm, origin %g %g %g mm", w.m[0][0], w.m[1][1], w.m[2][2], w.m[0][3], w.m[1][3], w.m[2][3]);
  ffdp_volume_free(v);
}

static void expect_error(const char *path, const char *needle, const char *what) {
  ffdp_volume *v = NULL;
  ffdp_error err = {0};
  ffdp_status st = ffdp_volume_load(path, &v, &err);
  CHECK(st != FFDP_OK && strstr(err.msg, needle) && !strchr(err.msg, '\n'), "%s: status %d, message '%s'", what, st, err.msg);
  ffdp_volume_free(v);
}

static void broken_stores(rng_t *r) {
  const int64_t dim[3] = {9, 8, 7};
  ffdp_volume *v = make(r, dim, 0);
  ffdp_zarr_options o = {{4, 4, 4}, FFDP_ZARR_ZSTD, 3};
  ffdp_error err = {0};
  const char *names[4] = {"missing.zarr", "corrupt.zarr", "badmeta.zarr", "dtype.zarr"};
  for (int k = 0; k < 4; k++) CHECK(ffdp_volume_save_zarr(v, names[k], FFDP_DT_FLOAT32, &o, &err) == FFDP_OK, "save %s", names[k]);
  unlink("missing.zarr/0/1/0/2");
  expect_error("missing.zarr", "missing", "missing chunk");
  ffdp_volume *w = NULL;
  CHECK(ffdp_volume_load_planes("missing.zarr", 0, 4, &w, &err) == FFDP_OK, "planes away from the missing chunk: %s", err.msg);
  ffdp_volume_free(w);
  put("corrupt.zarr/0/0/1/1", "garbage!", 8);
  expect_error("corrupt.zarr", "corrupt", "corrupt chunk");
  const char *bad = "{\"zarr_format\":2,\"shape\":[7,8],\"chunks\":[4,4],\"dtype\":\"<f4\",\"compressor\":null,\"fill_value\":0,\"order\":\"C\"}";
  put("badmeta.zarr/0/.zarray", bad, strlen(bad));
  expect_error("badmeta.zarr", "shape", "two-dimensional array");
  const char *i8 = "{\"zarr_format\":2,\"shape\":[7,8,9],\"chunks\":[4,4,4],\"dtype\":\"<i8\",\"compressor\":null,\"fill_value\":0,\"order\":\"C\"}";
  put("dtype.zarr/0/.zarray", i8, strlen(i8));
  expect_error("dtype.zarr", "64-bit", "int64 dtype");
  expect_error("nonexistent.zarr", "no such", "absent store");
  ffdp_volume_free(v);
}

/* The plane writer on a .zarr path: planes handed over 1, 40 and 29 at a time (a partial
 * chunk row, a whole row straight from the caller, the short last row) read back exactly,
 * with the geometry; nothing is left by an abort, an incomplete close is an error. */
static void plane_writer_store(rng_t *r) {
  const int64_t dim[3] = {13, 7, 70}, P = dim[0] * dim[1];
  ffdp_volume *v = make(r, dim, 0), *w = NULL;
  ffdp_error err = {0};
  ffdp_plane_writer *pw = NULL;
  const int64_t parts[3] = {1, 40, 29};
  system("rm -rf pw_store.zarr");
  CHECK(!ffdp_plane_writer_open("pw_store.zarr", dim, ffdp_volume_vox2world(v), FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &pw, &err),
        "open: %s", err.msg);
  for (int k = 0, z = 0; pw && k < 3; z += (int)parts[k++])
    CHECK(!ffdp_plane_writer_put(pw, ffdp_volume_cdata(v) + z * P, parts[k], &err), "put: %s", err.msg);
  CHECK(access("pw_store.zarr", F_OK) != 0, "the store exists before close");
  CHECK(!ffdp_plane_writer_close(pw, &err), "close: %s", err.msg);
  CHECK(!ffdp_volume_load("pw_store.zarr", &w, &err), "load: %s", err.msg);
  if (w) check_planes(v, w, 0, dim[2], "plane-written store");
  CHECK(w && same_matrix(ffdp_volume_vox2world(v), ffdp_volume_vox2world(w), 1e-12), "plane-written store: geometry lost");
  ffdp_volume_free(w);
  pw = NULL;
  CHECK(!ffdp_plane_writer_open("pw_abort.zarr", dim, ffdp_volume_vox2world(v), FFDP_DT_INT16, FFDP_NIFTI_AUTO, &pw, &err),
        "open: %s", err.msg);
  if (pw) ffdp_plane_writer_put(pw, ffdp_volume_cdata(v), 3, &err), ffdp_plane_writer_abort(pw);
  pw = NULL;
  CHECK(!ffdp_plane_writer_open("pw_short.zarr", dim, ffdp_volume_vox2world(v), FFDP_DT_INT16, FFDP_NIFTI_AUTO, &pw, &err),
        "open: %s", err.msg);
  if (pw) ffdp_plane_writer_put(pw, ffdp_volume_cdata(v), 65, &err);
  CHECK(pw && ffdp_plane_writer_close(pw, &err) == FFDP_ERR_INVALID && strstr(err.msg, "65 of 70"),
        "an incomplete store was accepted: %s", err.msg);
  struct stat sb;
  CHECK(stat("pw_abort.zarr", &sb) != 0 && stat("pw_short.zarr", &sb) != 0, "an aborted or incomplete store was left behind");
  ffdp_volume_free(v);
  system("rm -rf pw_store.zarr pw_abort.zarr* pw_short.zarr*");
}

int main(void) {
  rng_t r = {0x5eedULL};
  plane_writer_store(&r);
  round_trips(&r);
  foreign_store();
  broken_stores(&r);
  return check_done("test_zarr");
}
