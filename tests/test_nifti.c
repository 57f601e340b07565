/* NIfTI I/O: round trips of every voxel type, .nii and .nii.gz, NIfTI-1 and NIfTI-2; sform
 * preferred over qform; qform-only and no-xform files; displacement fields in ITK layout
 * with LPS signs; known world points through the shared brains; the parallel gzip writer. */
#include "check.h"
#include "core/volume_internal.h"
#include "ffdp/ffdp.h"
#include "io/gzip_parallel.h"
#include "io/file_sync.h"
#include "test_geometry.h"
#include <nifti2_io.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <zlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static ffdp_volume *make_volume(rng_t *r, int dtype) {
  const int64_t dim[3] = {13, 7, 9};
  const double sp[3] = {0.88, 1.0, 1.25}, org[3] = {-10.5, 20.25, -3};
  ffdp_volume *v;
  ffdp_volume_create(dim, 1, test_oblique(0.2, -0.1, 0.3, sp, org), &v, NULL);
  float *d = ffdp_volume_data(v);
  double lo = dtype == FFDP_DT_UINT8 || dtype == FFDP_DT_UINT16 || dtype == FFDP_DT_UINT32 ? 0 : -100;
  for (int64_t i = 0; i < ffdp_volume_nvox(v); i++) {
    double x = rng_nz(r, lo, dtype == FFDP_DT_INT8 ? 120 : 250);
    d[i] = (dtype == FFDP_DT_FLOAT32 || dtype == FFDP_DT_FLOAT64) ? (float)x : (float)nearbyint(x);
  }
  return v;
}

static void round_trip(rng_t *r, int dtype, const char *ext, ffdp_nifti_version ver) {
  char path[256];
  snprintf(path, sizeof path, "rt_%d_%d%s", dtype, ver, ext);
  ffdp_volume *v = make_volume(r, dtype), *w = NULL;
  ffdp_error err = {0};
  CHECK(ffdp_volume_save(v, path, (ffdp_dtype)dtype, ver, &err) == FFDP_OK, "save %s: %s", path, err.msg);
  CHECK(ffdp_volume_load(path, &w, &err) == FFDP_OK, "load %s: %s", path, err.msg);
  if (!w) return;
  int nver = 0;
  void *h = nifti_read_header(path, &nver, 0);
  free(h);
  CHECK(nver == (ver == FFDP_NIFTI_2 ? 2 : 1), "%s written as NIfTI-%d", path, nver);
  CHECK(ffdp_volume_source_dtype(w) == dtype, "%s: type %d read back as %d", path, dtype, ffdp_volume_source_dtype(w));
  CHECK(memcmp(ffdp_volume_dim(v), ffdp_volume_dim(w), 3 * sizeof(int64_t)) == 0, "%s: dims differ", path);
  const float *a = ffdp_volume_cdata(v), *b = ffdp_volume_cdata(w);
  int bad = 0;
  for (int64_t i = 0; i < ffdp_volume_nvox(v); i++) bad += a[i] != b[i];
  CHECK(bad == 0, "%s: %d values changed", path, bad);
  ffdp_mat4 ma = ffdp_volume_vox2world(v), mb = ffdp_volume_vox2world(w);
  double e = 0; /* NIfTI-1 stores the sform in float32 */
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) e = fmax(e, fabs(ma.m[i][j] - mb.m[i][j]));
  CHECK(e < (ver == FFDP_NIFTI_2 ? 1e-12 : 1e-5), "%s: matrix changed by %g", path, e);
  ffdp_volume_free(v), ffdp_volume_free(w);
  unlink(path);
}

/* Files made with the reference library directly: qform only / both / neither. */
static void xform_cases(void) {
  int64_t dims[8] = {3, 5, 6, 7, 1, 1, 1, 1};
  nifti_image *n = nifti_make_new_nim(dims, DT_INT16, 1);
  n->dx = n->pixdim[1] = 1.5, n->dy = n->pixdim[2] = 2.0, n->dz = n->pixdim[3] = 2.5;
  n->qform_code = 1, n->quatern_b = 0.1, n->quatern_c = -0.2, n->quatern_d = 0.05, n->qfac = -1;
  n->qoffset_x = 10, n->qoffset_y = -20, n->qoffset_z = 30;
  n->qto_xyz = nifti_quatern_to_dmat44(n->quatern_b, n->quatern_c, n->quatern_d, n->qoffset_x, n->qoffset_y, n->qoffset_z,
                                       n->dx, n->dy, n->dz, n->qfac);
  n->sform_code = 0;
  nifti_set_filenames(n, "xf_qform.nii", 0, 1);
  nifti_image_write(n);
  ffdp_volume *v;
  ffdp_error err;
  CHECK(ffdp_volume_load("xf_qform.nii", &v, &err) == FFDP_OK, "qform-only: %s", err.msg);
  ffdp_mat4 m = ffdp_volume_vox2world(v);
  double e = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) e = fmax(e, fabs(m.m[i][j] - n->qto_xyz.m[i][j]));
  CHECK(e < 1e-5, "qform-only matrix off by %g", e);
  ffdp_volume_free(v);
  /* both set and different: sform wins */
  n->sform_code = 2;
  memset(n->sto_xyz.m, 0, sizeof n->sto_xyz.m);
  n->sto_xyz.m[0][0] = -1.5, n->sto_xyz.m[1][1] = 2.0, n->sto_xyz.m[2][2] = 2.5, n->sto_xyz.m[3][3] = 1;
  n->sto_xyz.m[0][3] = 7, n->sto_xyz.m[0][1] = 0.3;
  nifti_set_filenames(n, "xf_both.nii.gz", 0, 1);
  nifti_image_write(n);
  CHECK(ffdp_volume_load("xf_both.nii.gz", &v, &err) == FFDP_OK, "sform+qform: %s", err.msg);
  m = ffdp_volume_vox2world(v);
  CHECK(m.m[0][0] == -1.5 && fabs(m.m[0][1] - 0.3) < 1e-6 && m.m[0][3] == 7, "sform not preferred over qform");
  ffdp_volume_free(v);
  /* neither: scaled identity from pixdim */
  n->sform_code = 0, n->qform_code = 0;
  nifti_set_filenames(n, "xf_none.nii", 0, 1);
  nifti_image_write(n);
  CHECK(ffdp_volume_load("xf_none.nii", &v, &err) == FFDP_OK, "no xform: %s", err.msg);
  m = ffdp_volume_vox2world(v);
  CHECK(m.m[0][0] == 1.5 && m.m[1][1] == 2.0 && m.m[2][2] == 2.5 && m.m[0][1] == 0, "no-xform matrix is not diag(pixdim)");
  ffdp_volume_free(v);
  nifti_image_free(n);
  unlink("xf_qform.nii"), unlink("xf_both.nii.gz"), unlink("xf_none.nii");
}

static long file_size(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* The fields' gzip level: stored blocks by default (no smaller than the raw values), deflated at
 * the level FFDP_FIELD_GZ_LEVEL names (what --field-compression sets); every level reads back the
 * same values, through ffdp's reader and the NIfTI library's (zlib). */
static void field_levels_case(void) {
  const int64_t dim[3] = {24, 20, 16};
  ffdp_volume *u;
  ffdp_volume_create(dim, 3, ffdp_mat4_identity(), &u, NULL);
  float *d = ffdp_volume_data(u);
  const int64_t nv = ffdp_volume_nvox(u);
  for (int64_t i = 0; i < 3 * nv; i++) d[i] = (float)((i / 3) % 7) * 0.25f; /* compressible */
  const char *levels[3] = {NULL, "1", "9"};
  long size[3] = {0, 0, 0};
  ffdp_error err;
  for (int k = 0; k < 3; k++) {
    if (levels[k]) setenv("FFDP_FIELD_GZ_LEVEL", levels[k], 1);
    else unsetenv("FFDP_FIELD_GZ_LEVEL");
    CHECK(ffdp_field_save(u, "field_lv.nii.gz", 1, &err) == FFDP_OK, "field save at level %s: %s", levels[k] ? levels[k] : "default", err.msg);
    size[k] = file_size("field_lv.nii.gz");
    ffdp_volume *w = NULL;
    CHECK(ffdp_field_load("field_lv.nii.gz", 1, &w, &err) == FFDP_OK, "field load: %s", err.msg);
    CHECK(w && memcmp(ffdp_volume_cdata(w), d, 3 * nv * sizeof(float)) == 0, "level %s: the field read back differs",
          levels[k] ? levels[k] : "default");
    ffdp_volume_free(w);
    nifti_image *n = nifti_image_read("field_lv.nii.gz", 1);
    int64_t bad = n ? 0 : 1;
    for (int64_t i = 0; n && i < nv; i++) bad += ((const float *)n->data)[2 * nv + i] != d[3 * i + 2];
    CHECK(bad == 0, "level %s: the NIfTI library reads other values", levels[k] ? levels[k] : "default");
    if (n) nifti_image_free(n);
  }
  unsetenv("FFDP_FIELD_GZ_LEVEL");
  CHECK(size[0] >= (long)(3 * nv * sizeof(float)), "default: %ld bytes, not stored (values alone take %lld)", size[0],
        (long long)(3 * nv * sizeof(float)));
  CHECK(size[1] > 0 && size[1] < size[0] / 4, "level 1: %ld bytes against %ld stored", size[1], size[0]);
  CHECK(size[2] > 0 && size[2] <= size[1], "level 9: %ld bytes against %ld at level 1", size[2], size[1]);
  ffdp_volume_free(u);
  unlink("field_lv.nii.gz");
}

/* Files past FFDP_WRITEBACK_BYTES start their write-out while being written (file_sync.h): the
 * bytes must be those written without it (and without the fsync), in .nii.gz and .nii. */
static int same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  int same = fa && fb;
  while (same) {
    unsigned char x[65536], y[65536];
    const size_t na = fread(x, 1, sizeof x, fa), nb = fread(y, 1, sizeof y, fb);
    same = na == nb && memcmp(x, y, na) == 0;
    if (na == 0) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

static void writeback_case(void) {
  const int64_t dim[3] = {160, 160, 128}; /* 39 MB of values: past one write-out start */
  ffdp_volume *u;
  ffdp_volume_create(dim, 3, ffdp_mat4_identity(), &u, NULL);
  float *d = ffdp_volume_data(u);
  const int64_t nv = ffdp_volume_nvox(u);
  CHECK(3 * nv * (int64_t)sizeof(float) > (int64_t)FFDP_WRITEBACK_BYTES, "the field is too small for the case");
  for (int64_t i = 0; i < 3 * nv; i++) d[i] = (float)(i % 1013) * 0.01f - 5.f;
  const char *names[2][2] = {{"wb_on.nii.gz", "wb_off.nii.gz"}, {"wb_on.nii", "wb_off.nii"}};
  ffdp_error err;
  for (int k = 0; k < 2; k++) {
    for (int off = 0; off < 2; off++) {
      if (off) setenv("FFDP_WRITEBACK", "0", 1), setenv("FFDP_FSYNC", "0", 1);
      CHECK(ffdp_field_save(u, names[k][off], 1, &err) == FFDP_OK, "field save %s: %s", names[k][off], err.msg);
      unsetenv("FFDP_WRITEBACK"), unsetenv("FFDP_FSYNC");
    }
    CHECK(same_file(names[k][0], names[k][1]), "%s and %s differ: the write-out changed the bytes", names[k][0], names[k][1]);
    ffdp_volume *w = NULL;
    CHECK(ffdp_field_load(names[k][0], 1, &w, &err) == FFDP_OK, "field load %s: %s", names[k][0], err.msg);
    CHECK(w && memcmp(ffdp_volume_cdata(w), d, 3 * nv * sizeof(float)) == 0, "%s read back differs", names[k][0]);
    ffdp_volume_free(w);
    unlink(names[k][0]), unlink(names[k][1]);
  }
  ffdp_volume_free(u);
}

/* Fields: ITK layout (X Y Z 1 3, planar), LPS signs on disk, RAS interleaved in memory. */
static void field_case(rng_t *r) {
  const int64_t dim[3] = {4, 5, 3};
  const double sp[3] = {1, 1, 1}, org[3] = {0, 0, 0};
  ffdp_volume *u, *w;
  ffdp_volume_create(dim, 3, test_oblique(0, 0, 0.2, sp, org), &u, NULL);
  float *d = ffdp_volume_data(u);
  for (int64_t i = 0; i < 3 * ffdp_volume_nvox(u); i++) d[i] = (float)rng_nz(r, -3, 3);
  ffdp_error err;
  CHECK(ffdp_field_save(u, "field.nii.gz", 1, &err) == FFDP_OK, "field save: %s", err.msg);
  nifti_image *n = nifti_image_read("field.nii.gz", 1);
  CHECK(n && n->ndim == 5 && n->dim[4] == 1 && n->dim[5] == 3 && n->intent_code == NIFTI_INTENT_VECTOR,
        "field header is not an ITK vector image");
  if (n) {
    const float *f = n->data;
    int64_t nv = ffdp_volume_nvox(u), bad = 0;
    for (int64_t i = 0; i < nv; i++)
      bad += f[i] != -d[3 * i] || f[nv + i] != -d[3 * i + 1] || f[2 * nv + i] != d[3 * i + 2];
    CHECK(bad == 0, "%lld field voxels not planar LPS (x,y negated)", (long long)bad);
    nifti_image_free(n);
  }
  CHECK(ffdp_field_load("field.nii.gz", 1, &w, &err) == FFDP_OK, "field load: %s", err.msg);
  if (w) {
    CHECK(memcmp(ffdp_volume_cdata(w), d, 3 * ffdp_volume_nvox(u) * sizeof(float)) == 0, "field round trip changed values");
    ffdp_volume_free(w);
  }
  ffdp_volume *s;
  CHECK(ffdp_volume_load("field.nii.gz", &s, &err) == FFDP_ERR_UNSUPPORTED, "a field loaded as a scalar image");
  /* a share: plane 1 of 3, from each of the three planar components; the rest zero */
  CHECK(ffdp_field_save(u, "field.nii", 1, &err) == FFDP_OK, "field save: %s", err.msg);
  const char *names[2] = {"field.nii", "field.nii.gz"};
  for (int k = 0; k < 2; k++) {
    int64_t pd[3];
    ffdp_mat4 pw;
    CHECK(ffdp_field_probe(names[k], pd, &pw, &err) == FFDP_OK && pd[0] == 4 && pd[1] == 5 && pd[2] == 3,
          "%s: field probe", names[k]);
    CHECK(ffdp_volume_probe(names[k], pd, &pw, &err) == FFDP_ERR_UNSUPPORTED, "%s: a field probed as a scalar image", names[k]);
    w = NULL;
    CHECK(ffdp_field_load_share(names[k], 1, 1, 2, &w, &err) == FFDP_OK, "%s: field share: %s", names[k], err.msg);
    if (!w) continue;
    const float *e = ffdp_volume_cdata(w);
    int64_t bad = 0, P = 3 * 4 * 5;
    for (int64_t i = 0; i < 3 * ffdp_volume_nvox(u); i++) bad += e[i] != (i >= P && i < 2 * P ? d[i] : 0.0f);
    CHECK(bad == 0, "%s: %lld values of the share of plane 1 wrong", names[k], (long long)bad);
    ffdp_volume_free(w);
    CHECK(ffdp_field_load_share(names[k], 1, 2, 4, &w, &err) == FFDP_ERR_INVALID, "%s: planes past the end accepted", names[k]);
  }
  ffdp_volume_free(u);
  unlink("field.nii.gz"), unlink("field.nii");
}

/* World point (0,0,0) (MNI origin, anterior commissure) through the two MNI templates. */
static int shared_brains(void) {
  ffdp_volume *a, *b;
  ffdp_error err;
  if (access(FFDP_TEST_DATA "/brain/MNI152_T1_2mm.nii.gz", R_OK) != 0) return 0;
  CHECK(ffdp_volume_load(FFDP_TEST_DATA "/brain/MNI152_T1_2mm.nii.gz", &a, &err) == FFDP_OK, "%s", err.msg);
  CHECK(ffdp_volume_load(FFDP_TEST_DATA "/brain/MNI152_T1_1mm_brain.nii.gz", &b, &err) == FFDP_OK, "%s", err.msg);
  ffdp_mat4 ia, ib;
  ffdp_mat4_inverse(ffdp_volume_vox2world(a), &ia);
  ffdp_mat4_inverse(ffdp_volume_vox2world(b), &ib);
  const double X[3] = {0, 0, 0}, Y[3] = {-30, 20, 10};
  double pa[3], pb[3];
  ffdp_mat4_apply(ia, X, pa);
  ffdp_mat4_apply(ib, X, pb);
  CHECK(fabs(pa[0] - 45) < 1e-9 && fabs(pa[1] - 63) < 1e-9 && fabs(pa[2] - 36) < 1e-9, "origin in 2mm at %g %g %g", pa[0], pa[1], pa[2]);
  CHECK(fabs(pb[0] - 90) < 1e-9 && fabs(pb[1] - 126) < 1e-9 && fabs(pb[2] - 72) < 1e-9, "origin in 1mm at %g %g %g", pb[0], pb[1], pb[2]);
  ffdp_mat4_apply(ia, Y, pa);
  ffdp_mat4_apply(ib, Y, pb);
  /* same world point: 1 mm voxel = 2 * 2 mm voxel (shared origin, x flipped in both) */
  for (int k = 0; k < 3; k++) CHECK(fabs(pb[k] - 2 * pa[k]) < 1e-9, "axis %d: %g vs 2*%g", k, pb[k], pa[k]);
  CHECK(fabs(pa[0] - 60) < 1e-9, "x=-30 mm (left) should be voxel 60 of the LAS 2mm grid, got %g", pa[0]);
  ffdp_volume_free(a), ffdp_volume_free(b);
  return 1;
}

/* Plane by plane: a volume too wide for NIfTI-1 (40000 voxels along x) becomes NIfTI-2 by
 * itself and reads back exactly, in full and by plane ranges; a writer closed early or
 * aborted leaves no file. */
static void plane_writer_case(void) {
  const int64_t dim[3] = {40000, 3, 5}, P = dim[0] * dim[1];
  ffdp_mat4 w = ffdp_mat4_identity();
  w.m[0][0] = 0.25, w.m[0][3] = -7;
  float *plane = malloc((size_t)(2 * P) * sizeof(float));
  ffdp_error err = {0};
  const char *exts[2] = {"pw_wide.nii", "pw_wide.nii.gz"};
  for (int e = 0; e < 2; e++) {
    ffdp_plane_writer *pw = NULL;
    CHECK(!ffdp_plane_writer_open(exts[e], dim, w, FFDP_DT_INT16, FFDP_NIFTI_AUTO, &pw, &err), "open: %s", err.msg);
    if (!pw) break;
    /* one plane per call, then two at a time (2, 2, 1); the caller's buffer is refilled while
     * the previous block may still be going to disk */
    for (int64_t z = 0; z < dim[2]; z += e + 1) {
      const int64_t k = z + e + 1 <= dim[2] ? e + 1 : dim[2] - z;
      for (int64_t j = 0; j < k; j++)
        for (int64_t i = 0; i < P; i++) plane[j * P + i] = (float)((i * 7 + (z + j) * 13) % 2001 - 1000);
      CHECK(!ffdp_plane_writer_put(pw, plane, k, &err), "put: %s", err.msg);
    }
    CHECK(access(exts[e], F_OK) != 0, "%s exists before close", exts[e]);
    CHECK(!ffdp_plane_writer_close(pw, &err), "close: %s", err.msg);
    int nver = 0;
    free(nifti_read_header(exts[e], &nver, 0));
    CHECK(nver == 2, "%s written as NIfTI-%d, not NIfTI-2", exts[e], nver);
    ffdp_volume *v = NULL, *part = NULL;
    CHECK(!ffdp_volume_load(exts[e], &v, &err), "load: %s", err.msg);
    CHECK(!ffdp_volume_load_planes(exts[e], 2, 4, &part, &err), "load planes: %s", err.msg);
    ffdp_volume *share = NULL; /* a rank's share: the whole grid, planes [1, 3) read, the rest zero */
    CHECK(!ffdp_volume_load_share(exts[e], 1, 3, &share, &err), "load share: %s", err.msg);
    CHECK(share && ffdp_volume_dim(share)[2] == dim[2], "%s: the share is not on the whole grid", exts[e]);
    int bad = 0;
    for (int64_t z = 0; share && z < dim[2]; z++)
      for (int64_t i = 0; i < P; i++)
        bad += ffdp_volume_cdata(share)[z * P + i] != (z >= 1 && z < 3 ? (float)((i * 7 + z * 13) % 2001 - 1000) : 0.f);
    CHECK(bad == 0, "%s: %d values of the share differ", exts[e], bad);
    ffdp_volume_free(share), share = NULL;
    CHECK(ffdp_volume_load_share(exts[e], 3, 9, &share, &err) != FFDP_OK && !share && strstr(err.msg, "outside"),
          "%s: a share past the last plane: %s", exts[e], err.msg);
    for (int64_t z = 0; v && z < dim[2]; z++)
      for (int64_t i = 0; i < P; i++) {
        const float want = (float)((i * 7 + z * 13) % 2001 - 1000);
        bad += ffdp_volume_cdata(v)[z * P + i] != want;
        if (part && z >= 2 && z < 4) bad += ffdp_volume_cdata(part)[(z - 2) * P + i] != want;
      }
    CHECK(bad == 0, "%s: %d values differ", exts[e], bad);
    CHECK(v && fabs(ffdp_volume_vox2world(v).m[0][0] - 0.25) < 1e-12, "%s: spacing lost", exts[e]);
    ffdp_volume_free(v), ffdp_volume_free(part);
    unlink(exts[e]);
  }
  ffdp_plane_writer *pw = NULL; /* closed early: an error, and no file */
  CHECK(!ffdp_plane_writer_open("pw_short.nii", dim, w, FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &pw, &err), "%s", err.msg);
  if (pw) ffdp_plane_writer_put(pw, plane, 2, &err);
  CHECK(ffdp_plane_writer_close(pw, &err) != FFDP_OK && strstr(err.msg, "only 2 of 5"), "short close: %s", err.msg);
  CHECK(access("pw_short.nii", F_OK) != 0, "a short file was kept");
  CHECK(!ffdp_plane_writer_open("pw_abort.nii", dim, w, FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &pw, &err), "%s", err.msg);
  CHECK(pw && ffdp_plane_writer_put(pw, plane, 6, &err) != FFDP_OK, "6 planes of 5 accepted");
  ffdp_plane_writer_abort(pw);
  CHECK(access("pw_abort.nii", F_OK) != 0, "an aborted file was kept");
  free(plane);
}

static unsigned char *read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  unsigned char *d = NULL;
  long len = f && fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (d = malloc((size_t)len + 1)) && fread(d, 1, (size_t)len, f) != (size_t)len)
    free(d), d = NULL;
  if (f) fclose(f);
  *n = len > 0 ? (size_t)len : 0;
  return d;
}

/* Compress n bytes of data on `threads` threads, handing them over in pieces of `piece`. */
static int gzip_file(const char *path, const unsigned char *d, size_t n, size_t piece, int threads) {
  omp_set_num_threads(threads);
  FILE *f = fopen(path, "wb");
  ffdp_gzip_writer *g = f ? ffdp_gzip_open(f, 1) : NULL;
  int ok = g != NULL;
  for (size_t i = 0; ok && i < n; i += piece) ok = ffdp_gzip_write(g, d + i, n - i < piece ? n - i : piece);
  ok = ffdp_gzip_close(g) && ok;
  return f && fclose(f) == 0 && ok;
}

/* As gzip_file, the bytes made by ffdp_gzip_write_fn's callback in parts of the stream: a few
 * bytes handed over first (as a header), then made, handed over and made again, so that made
 * ranges start inside a batch, cross batches and end in a short last block. */
typedef struct {
  const unsigned char *d;
  size_t base;
} fill_src;

static void fill_from(void *ctx, size_t off, size_t len, unsigned char *dst) {
  const fill_src *s = ctx;
  memcpy(dst, s->d + s->base + off, len);
}

static int gzip_file_fn(const char *path, const unsigned char *d, size_t n, int threads) {
  omp_set_num_threads(threads);
  FILE *f = fopen(path, "wb");
  ffdp_gzip_writer *g = f ? ffdp_gzip_open(f, 1) : NULL;
  const size_t cut[4] = {5, 5 + 3 * (1 << 20) + 7, 5 + 3 * (1 << 20) + 7 + 777777, n};
  fill_src a = {d, cut[0]}, b = {d, cut[2]};
  int ok = g && ffdp_gzip_write(g, d, cut[0]) && ffdp_gzip_write_fn(g, cut[1] - cut[0], fill_from, &a) &&
           ffdp_gzip_write(g, d + cut[1], cut[2] - cut[1]) && ffdp_gzip_write_fn(g, cut[3] - cut[2], fill_from, &b);
  ok = ffdp_gzip_close(g) && ok;
  return f && fclose(f) == 0 && ok;
}

/* Streams across several batches (block edges, history carried over, a short last block) read
 * back by zlib exactly; the bytes do not depend on the thread count or the write pattern; an
 * empty stream is a valid gzip file; a full disk is reported. */
static void gzip_parallel_case(rng_t *r) {
  const size_t n = (size_t)21 * (1 << 20) + 12345; /* more than one batch on 1-4 threads */
  unsigned char *d = malloc(n), *back = malloc(n + 1);
  for (size_t i = 0; i < n; i++) /* smooth floats with noisy low bytes: compressible, not trivially */
    d[i] = (i & 3) == 3 ? (unsigned char)(64 + 8 * sin(i * 1e-4)) : (unsigned char)(rng_nz(r, 0, 1) * 255);
  const int max_threads = omp_get_max_threads();
  CHECK(gzip_file("gz_a.gz", d, n, n, 1), "gzip writer failed (1 thread)");
  CHECK(gzip_file("gz_b.gz", d, n, 777777, 3), "gzip writer failed (3 threads)");
  gzFile z = gzopen("gz_a.gz", "rb");
  size_t got = 0;
  int k;
  while (z && got <= n && (k = gzread(z, back + got, (unsigned)(n + 1 - got))) > 0) got += (size_t)k;
  CHECK(z && gzclose(z) == Z_OK, "zlib reports an error reading the parallel gzip stream");
  CHECK(got == n && memcmp(back, d, n) == 0, "parallel gzip round trip: %zu of %zu bytes, content %s", got, n,
        got == n && memcmp(back, d, n) == 0 ? "same" : "differs");
  size_t na, nb;
  unsigned char *a = read_file("gz_a.gz", &na), *b = read_file("gz_b.gz", &nb);
  CHECK(a && b && na == nb && memcmp(a, b, na) == 0, "gzip bytes depend on the thread count or on how the data was handed over");
  for (int t = 1; t <= 4; t += 3) {
    size_t nc;
    CHECK(gzip_file_fn("gz_c.gz", d, n, t), "gzip writer with made bytes failed (%d threads)", t);
    unsigned char *c = read_file("gz_c.gz", &nc);
    CHECK(a && c && na == nc && memcmp(a, c, na) == 0, "bytes made by the writer's threads (%d) give another file", t);
    free(c);
  }
  CHECK(gzip_file("gz_e.gz", d, 0, 1, 2), "empty gzip stream failed");
  z = gzopen("gz_e.gz", "rb");
  CHECK(z && gzread(z, back, 16) == 0 && gzclose(z) == Z_OK, "an empty parallel gzip stream does not read as empty");
  if (access("/dev/full", W_OK) == 0) CHECK(!gzip_file("/dev/full", d, n, n, 2), "a full disk was not reported");
  omp_set_num_threads(max_threads);
  unlink("gz_a.gz"), unlink("gz_b.gz"), unlink("gz_c.gz"), unlink("gz_e.gz");
  free(d), free(back), free(a), free(b);
}

/* A .nii.gz in several gzip members (bgzip and `cat a.gz b.gz` make such files) reads the same
 * as one member, whole and by planes; so does one whose gzip stream stops short (an error). */
static void multi_member_case(rng_t *r) {
  ffdp_volume *v = make_volume(r, FFDP_DT_FLOAT32), *w = NULL, *part = NULL;
  ffdp_error err = {0};
  CHECK(!ffdp_volume_save(v, "mm_plain.nii", FFDP_DT_FLOAT32, FFDP_NIFTI_1, &err), "save: %s", err.msg);
  FILE *f = fopen("mm_plain.nii", "rb");
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *raw = malloc((size_t)n);
  CHECK(fread(raw, 1, (size_t)n, f) == (size_t)n, "read back");
  fclose(f);
  const long cut[4] = {0, 1000, n / 2, n}; /* mid-header, mid-data */
  remove("mm_three.nii.gz");
  for (int k = 0; k < 3; k++) {
    gzFile g = gzopen("mm_three.nii.gz", "ab"); /* appending makes a new member */
    CHECK(g && gzwrite(g, raw + cut[k], (unsigned)(cut[k + 1] - cut[k])) == (int)(cut[k + 1] - cut[k]), "gzwrite");
    gzclose(g);
  }
  CHECK(!ffdp_volume_load("mm_three.nii.gz", &w, &err), "three members: %s", err.msg);
  const int64_t nv = ffdp_volume_nvox(v), *dim = ffdp_volume_dim(v), P = dim[0] * dim[1];
  CHECK(w && !memcmp(ffdp_volume_cdata(w), ffdp_volume_cdata(v), (size_t)nv * sizeof(float)), "three members changed values");
  CHECK(!ffdp_volume_load_planes("mm_three.nii.gz", 1, 3, &part, &err), "planes of three members: %s", err.msg);
  CHECK(part && !memcmp(ffdp_volume_cdata(part), ffdp_volume_cdata(v) + P, (size_t)(2 * P) * sizeof(float)),
        "planes 1-2 of three members changed");
  ffdp_volume *share = NULL; /* planes [1, 3) in place on the whole grid */
  CHECK(!ffdp_volume_load_share("mm_three.nii.gz", 1, 3, &share, &err), "share of three members: %s", err.msg);
  CHECK(share && !memcmp(ffdp_volume_cdata(share) + P, ffdp_volume_cdata(v) + P, (size_t)(2 * P) * sizeof(float)),
        "the share of three members changed");
  ffdp_volume_free(share);
  gzFile g = gzopen("mm_short.nii.gz", "wb");
  gzwrite(g, raw, (unsigned)(n - 64));
  gzclose(g);
  ffdp_volume *bad = NULL;
  CHECK(ffdp_volume_load("mm_short.nii.gz", &bad, &err) == FFDP_ERR_FORMAT && strstr(err.msg, "truncated"),
        "a short stream loaded (%s)", err.msg);
  ffdp_volume_free(bad), ffdp_volume_free(part), ffdp_volume_free(w), ffdp_volume_free(v);
  free(raw);
}

/* ffdp's .nii.gz is indexed (a member per MiB carrying its sizes): whole loads, plane ranges and
 * shares read only the members they need, in parallel, and give the .nii's values; a file
 * without the index (zlib's) is not taken by that path; a damaged member is an error. */
static void indexed_gzip_case(rng_t *r) {
  const int64_t dim[3] = {101, 97, 67}, P = dim[0] * dim[1]; /* 2.6 MB of floats: three members */
  ffdp_volume *v = NULL, *a = NULL, *b = NULL, *pa = NULL, *pb = NULL, *sh = NULL;
  ffdp_error err = {0};
  ffdp_mat4 w = ffdp_mat4_identity();
  CHECK(!ffdp_volume_create(dim, 1, w, &v, &err), "create");
  for (int64_t i = 0; i < ffdp_volume_nvox(v); i++) ffdp_volume_data(v)[i] = (float)rng_nz(r, -5, 5);
  CHECK(!ffdp_volume_save(v, "ix.nii.gz", FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err) &&
            !ffdp_volume_save(v, "ix.nii", FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err), "save: %s", err.msg);
  unsigned char probe[8];
  CHECK(ffdp_gz_read_range("ix.nii.gz", 1000, 8, probe) == 1, "ffdp's .nii.gz is not read as indexed");
  CHECK(ffdp_gz_read_range("mm_three.nii.gz", 0, 8, probe) == 0, "zlib's members were taken for indexed ones");
  CHECK(!ffdp_volume_load("ix.nii.gz", &a, &err) && !ffdp_volume_load("ix.nii", &b, &err), "load: %s", err.msg);
  const size_t bytes = (size_t)ffdp_volume_nvox(v) * sizeof(float);
  CHECK(a && b && !memcmp(ffdp_volume_cdata(a), ffdp_volume_cdata(b), bytes) &&
            !memcmp(ffdp_volume_cdata(a), ffdp_volume_cdata(v), bytes), "indexed .nii.gz values differ");
  CHECK(!ffdp_volume_load_planes("ix.nii.gz", 13, 50, &pa, &err) && !ffdp_volume_load_planes("ix.nii", 13, 50, &pb, &err),
        "planes: %s", err.msg);
  CHECK(pa && pb && !memcmp(ffdp_volume_cdata(pa), ffdp_volume_cdata(pb), (size_t)(37 * P) * sizeof(float)),
        "planes 13-49 of the indexed .nii.gz differ");
  CHECK(!ffdp_volume_load_share("ix.nii.gz", 40, 67, &sh, &err), "share: %s", err.msg);
  CHECK(sh && !memcmp(ffdp_volume_cdata(sh) + 40 * P, ffdp_volume_cdata(v) + 40 * P, (size_t)(27 * P) * sizeof(float)),
        "the share of the indexed .nii.gz differs");
  size_t n = 0;
  unsigned char *f = read_file("ix.nii.gz", &n);
  if (f && n > 1000) {
    f[n / 2] ^= 0x5a; /* inside the second member's deflate data */
    FILE *o = fopen("ix_bad.nii.gz", "wb");
    CHECK(o && fwrite(f, 1, n, o) == n, "write");
    if (o) fclose(o);
    ffdp_volume *bad = NULL;
    CHECK(ffdp_volume_load("ix_bad.nii.gz", &bad, &err) != FFDP_OK, "a damaged member loaded");
    ffdp_volume_free(bad);
  }
  free(f);
  unlink("ix.nii.gz"), unlink("ix.nii"), unlink("ix_bad.nii.gz");
  ffdp_volume_free(v), ffdp_volume_free(a), ffdp_volume_free(b), ffdp_volume_free(pa), ffdp_volume_free(pb),
      ffdp_volume_free(sh);
}

/* Uncompressed data larger than the readers' chunk (1 Mi voxels: several chunks and a tail, read
 * by all threads): int16 in the other byte order with a slope and intercept, as .nii and as a
 * .hdr/.img pair, and whole or by planes, against the reference library's own reading. */
static void plain_parallel_case(void) {
  const char *names[2] = {"pp_swapped.nii", "pp_pair.hdr"};
  for (int k = 0; k < 2; k++) {
    int64_t dims[8] = {3, 131, 97, 90, 1, 1, 1, 1};
    nifti_image *n = nifti_make_new_nim(dims, DT_INT16, 1);
    int16_t *d = n->data;
    for (int64_t i = 0; i < (int64_t)n->nvox; i++) d[i] = (int16_t)((i * 7919) % 60001 - 30000);
    n->scl_slope = 0.5, n->scl_inter = -3;
    if (k == 0) nifti_swap_Nbytes((size_t)n->nvox, 2, n->data); /* the data in the other byte order */
    nifti_set_filenames(n, names[k], 0, 1);
    nifti_image_write(n);
    nifti_image_free(n);
    if (k == 0) { /* and the header too (the library writes it in this machine's order) */
      FILE *f = fopen(names[k], "r+b");
      nifti_1_header h;
      int ok = f && fread(&h, sizeof h, 1, f) == 1;
      if (ok) swap_nifti_header(&h, 1);
      ok = ok && fseek(f, 0, SEEK_SET) == 0 && fwrite(&h, sizeof h, 1, f) == 1;
      if (f) fclose(f);
      CHECK(ok, "cannot rewrite the header of %s", names[k]);
    }
    nifti_image *ref = nifti_image_read(names[k], 1);
    CHECK(ref != NULL, "reference library cannot read %s", names[k]);
    if (!ref) continue;
    CHECK(ref->byteorder == (k == 0 ? 3 - nifti_short_order() : nifti_short_order()), "%s: byte order %d", names[k],
          ref->byteorder);
    const int64_t P = 131 * 97;
    for (int whole = 1; whole >= 0; whole--) {
      ffdp_volume *v = NULL;
      ffdp_error err;
      const int64_t z0 = whole ? 0 : 17, z1 = whole ? 90 : 88;
      ffdp_status st = whole ? ffdp_volume_load(names[k], &v, &err) : ffdp_volume_load_planes(names[k], z0, z1, &v, &err);
      CHECK(st == FFDP_OK, "%s: %s", names[k], err.msg);
      if (st) continue;
      const float *f = ffdp_volume_cdata(v);
      const int16_t *rd = ref->data;
      int64_t bad = 0;
      for (int64_t i = 0; i < (z1 - z0) * P; i++) {
        const int64_t j = z0 * P + i;
        bad += f[i] != (float)(rd[j] * 0.5 - 3) || rd[j] != (int16_t)((j * 7919) % 60001 - 30000);
      }
      CHECK(bad == 0, "%s (%s): %lld values differ from the reference library's or the written ones", names[k],
            whole ? "whole" : "planes", (long long)bad);
      ffdp_volume_free(v);
    }
    nifti_image_free(ref);
  }
  unlink("pp_swapped.nii"), unlink("pp_pair.hdr"), unlink("pp_pair.img");
}

/* The loaders that also give the range of what they read (the CLI's normalization takes it
 * instead of a pass): the same as ffdp_floats_range over the planes read, non-finite values
 * counted, through every reader -- .nii by every thread (values across its 1 Mi-value chunks)
 * and by one (FFDP_PARALLEL_READ=0), .nii.gz, .zarr -- whole, as a share of planes, and an
 * empty share. */
static void ranged_load_case(void) {
  const int64_t d[3] = {131, 97, 90}, P = 131 * 97, n = P * 90;
  ffdp_volume *v = NULL;
  if (ffdp_volume_create(d, 1, ffdp_mat4_identity(), &v, NULL)) return;
  float *x = ffdp_volume_data(v);
  for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 7919) % 60001) * 0.25f - 7000.f;
  const int64_t odd[] = {0, (1 << 20) - 1, 1 << 20, 17 * P + 3, n - 1};
  x[odd[0]] = NAN, x[odd[1]] = INFINITY, x[odd[2]] = -INFINITY, x[odd[3]] = 1e30f, x[odd[4]] = -2e30f;
  const char *names[] = {"rl.nii", "rl.nii.gz", "rl.zarr"};
  for (int k = 0; k < 3; k++) {
    ffdp_error err;
    CHECK(ffdp_volume_save(v, names[k], FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, &err) == FFDP_OK, "%s: %s", names[k], err.msg);
    for (int threads = 1; threads >= 0; threads--) {
      if (!threads) setenv("FFDP_PARALLEL_READ", "0", 1);
      for (int share = 0; share < 3; share++) {
        const int64_t z0 = share == 1 ? 17 : share == 2 ? 5 : 0, z1 = share == 1 ? 88 : share == 2 ? 5 : 90;
        ffdp_volume *got = NULL;
        ffdp_value_range r = {0, 0, -7};
        ffdp_status st = share ? ffdp_volume_load_share_ranged(names[k], z0, z1, &got, &r, &err)
                               : ffdp_volume_load_ranged(names[k], &got, &r, &err);
        CHECK(st == FFDP_OK, "%s: %s", names[k], err.msg);
        if (st) continue;
        double lo, hi;
        const int64_t bad = ffdp_floats_range(ffdp_volume_cdata(got) + z0 * P, (z1 - z0) * P, &lo, &hi);
        CHECK(r.nonfinite == bad && r.lo == lo && r.hi == hi && (share == 2 || bad == (share ? 2 : 3)),
              "%s (%s, %s): range [%g, %g] with %lld non-finite, want [%g, %g] with %lld", names[k],
              share == 2 ? "empty share" : share ? "share" : "whole", threads ? "threads" : "one thread", r.lo, r.hi,
              (long long)r.nonfinite, lo, hi, (long long)bad);
        ffdp_volume_free(got);
      }
      unsetenv("FFDP_PARALLEL_READ");
    }
  }
  ffdp_volume_free(v);
  unlink("rl.nii"), unlink("rl.nii.gz");
  if (system("rm -rf rl.zarr")) printf("note: rl.zarr left behind\n");
}

int main(void) {
  rng_t r = {2718281828ULL};
  plain_parallel_case();
  ranged_load_case();
  plane_writer_case();
  const int types[] = {FFDP_DT_UINT8, FFDP_DT_INT8, FFDP_DT_INT16, FFDP_DT_UINT16, FFDP_DT_INT32, FFDP_DT_UINT32,
                       FFDP_DT_FLOAT32, FFDP_DT_FLOAT64};
  for (unsigned t = 0; t < sizeof types / sizeof *types; t++)
    for (int gz = 0; gz < 2; gz++)
      for (int ver = 1; ver <= 2; ver++) round_trip(&r, types[t], gz ? ".nii.gz" : ".nii", (ffdp_nifti_version)ver);
  xform_cases();
  field_case(&r);
  field_levels_case();
  writeback_case();
  gzip_parallel_case(&r);
  multi_member_case(&r);
  indexed_gzip_case(&r);
  if (!shared_brains()) printf("note: ../shared/data not found; skipped the shared-brain geometry checks\n");
  return check_done("test_nifti");
}
