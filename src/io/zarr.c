/* OME-Zarr stores (NGFF 0.4: a Zarr v2 group whose .zattrs "multiscales" names the arrays and
 * their scale/translation): reading the finest level, or only a range of z planes of it
 * (touching only the chunks those planes lie in), and writing a one-level store.
 *
 * Geometry: OME-Zarr has no rotation, so ffdp maps voxel (x, y, z) to world
 * diag(scale)·p + translation in millimetres, axes as in RAS. The writer also stores the full
 * voxel-to-world matrix under the "ffdp" attribute, which the reader prefers when present,
 * so NIfTI → Zarr → NIfTI keeps oblique and flipped geometry exactly.
 * A missing chunk file is an error (Zarr would read it as fill_value): a registration input
 * with holes is far more often an interrupted copy than an intentionally sparse store. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "io/zarr.h"
#include "io/zarr_internal.h"
#include "io/convert.h"
#include "core/err.h"
#include "core/comm_internal.h"
#include "core/volume_internal.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int file_exists(const char *dir, const char *name) {
  char p[4200];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  struct stat st;
  return stat(p, &st) == 0;
}

int ffdp_path_is_zarr(const char *path) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  if (n > 5 && strncmp(path + n - 5, ".zarr", 5) == 0) return 1;
  return is_dir(path) && (file_exists(path, ".zattrs") || file_exists(path, ".zarray"));
}

/* Whole file into a new buffer (NUL-terminated for JSON); NULL with errno set on failure. */
static char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  if (fseek(f, 0, SEEK_END) == 0) {
    long len = ftell(f);
    if (len >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)len + 1))) {
      if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
        errno = EIO;
      } else {
        buf[len] = 0;
        *n = (size_t)len;
      }
    }
  }
  fclose(f);
  return buf;
}

static cJSON *read_json(const char *dir, const char *name, const char *store, ffdp_status *st, ffdp_error *err) {
  char p[4200];
  size_t n;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  char *txt = slurp(p, &n);
  if (!txt) {
    *st = ffdp_fail(err, FFDP_ERR_IO, "'%s': cannot read %s: %s", store, name, strerror(errno));
    return NULL;
  }
  cJSON *j = cJSON_Parse(txt);
  free(txt);
  if (!j) *st = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': %s is not valid JSON", store, name);
  return j;
}

static double unit_to_mm(const char *u) {
  if (!u || !strcmp(u, "millimeter")) return 1;
  if (!strcmp(u, "micrometer")) return 1e-3;
  if (!strcmp(u, "nanometer")) return 1e-6;
  if (!strcmp(u, "centimeter")) return 10;
  if (!strcmp(u, "meter")) return 1e3;
  return 0;
}

/* Voxel types a store may hold: ffdp/NIfTI code and the Zarr dtype without its byte order. */
typedef struct {
  int dtype;
  char code[3];
} zarr_type;
static const zarr_type zarr_types[] = {{FFDP_DT_UINT8, "u1"},  {FFDP_DT_INT8, "i1"},  {FFDP_DT_UINT16, "u2"},
                                       {FFDP_DT_INT16, "i2"},  {FFDP_DT_UINT32, "u4"}, {FFDP_DT_INT32, "i4"},
                                       {FFDP_DT_FLOAT32, "f4"}, {FFDP_DT_FLOAT64, "f8"}};
static const zarr_type *type_by_code(const char *code) {
  for (size_t k = 0; k < sizeof zarr_types / sizeof zarr_types[0]; k++)
    if (!strncmp(zarr_types[k].code, code, 2)) return &zarr_types[k];
  return NULL;
}
static const zarr_type *type_by_dtype(int dtype) {
  for (size_t k = 0; k < sizeof zarr_types / sizeof zarr_types[0]; k++)
    if (zarr_types[k].dtype == dtype) return &zarr_types[k];
  return NULL;
}

/* Parse .zarray of the array in a->dir; nlead and the three spatial sizes. */
static ffdp_status parse_zarray(zarr_array *a, const char *store, ffdp_error *err) {
  ffdp_status st = FFDP_OK;
  cJSON *j = read_json(a->dir, ".zarray", store, &st, err);
  if (!j) return st;
  cJSON *fmt = cJSON_GetObjectItem(j, "zarr_format"), *shape = cJSON_GetObjectItem(j, "shape"),
        *chunks = cJSON_GetObjectItem(j, "chunks"), *dt = cJSON_GetObjectItem(j, "dtype"),
        *comp = cJSON_GetObjectItem(j, "compressor"), *order = cJSON_GetObjectItem(j, "order"),
        *fill = cJSON_GetObjectItem(j, "fill_value"), *filters = cJSON_GetObjectItem(j, "filters"),
        *sep = cJSON_GetObjectItem(j, "dimension_separator");
  int nd = cJSON_GetArraySize(shape);
  if (!cJSON_IsNumber(fmt) || fmt->valueint != 2) {
    st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': only Zarr format 2 arrays are supported", store);
    goto done;
  }
  if (!cJSON_IsArray(shape) || !cJSON_IsArray(chunks) || cJSON_GetArraySize(chunks) != nd || nd < 3 || nd > 5) {
    st = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': .zarray shape/chunks must be arrays of 3 to 5 equal-length sizes", store);
    goto done;
  }
  a->nlead = nd - 3;
  for (int d = 0; d < nd; d++) {
    cJSON *s = cJSON_GetArrayItem(shape, d), *c = cJSON_GetArrayItem(chunks, d);
    if (!cJSON_IsNumber(s) || !cJSON_IsNumber(c) || s->valuedouble < 1 || c->valuedouble < 1) {
      st = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': .zarray shape and chunks must be positive integers", store);
      goto done;
    }
    if (d < a->nlead) {
      if (s->valuedouble != 1) {
        st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': dimension %d has size %.0f; only one 3D volume (leading sizes 1) is supported",
                       store, d, s->valuedouble);
        goto done;
      }
      continue;
    }
    a->shape[nd - 1 - d] = (int64_t)s->valuedouble, a->chunk[nd - 1 - d] = (int64_t)c->valuedouble;
  }
  const char *t = cJSON_IsString(dt) ? dt->valuestring : "";
  const zarr_type *zt = strlen(t) == 3 && strchr("<>|", t[0]) ? type_by_code(t + 1) : NULL;
  if (!zt) {
    st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': dtype \"%s\" is not supported (%s)", store, t,
                   strlen(t) == 3 && strchr("iu", t[1]) && t[2] == '8' ? "64-bit integers are not" : "u1..u4, i1..i4, f4, f8");
    goto done;
  }
  a->dtype = zt->dtype, a->itemsize = zt->code[1] - '0';
  a->swap = t[0] == '>' && a->itemsize > 1;
  if (cJSON_IsString(order) && strcmp(order->valuestring, "C")) {
    st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': Fortran-ordered arrays (order \"F\") are not supported", store);
    goto done;
  }
  if (filters && !cJSON_IsNull(filters) && cJSON_GetArraySize(filters) > 0) {
    st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': arrays with filters are not supported", store);
    goto done;
  }
  a->fill = 0;
  if (cJSON_IsNumber(fill)) a->fill = fill->valuedouble;
  else if (cJSON_IsString(fill) && !strcmp(fill->valuestring, "NaN")) a->fill = NAN;
  a->sep = cJSON_IsString(sep) && !strcmp(sep->valuestring, "/") ? '/' : '.';
  a->codec = ZARR_NONE;
  if (comp && !cJSON_IsNull(comp)) {
    cJSON *id = cJSON_GetObjectItem(comp, "id");
    const char *s = cJSON_IsString(id) ? id->valuestring : "";
    a->codec = !strcmp(s, "zstd") ? ZARR_ZSTD : !strcmp(s, "blosc") ? ZARR_BLOSC : !strcmp(s, "gzip") ? ZARR_GZIP
             : !strcmp(s, "zlib") ? ZARR_ZLIB : (zarr_codec)-1;
    if ((int)a->codec < 0 || !zarr_codec_available(a->codec)) {
      st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': compressor \"%s\" is not %s", store, s,
                     (int)a->codec < 0 ? "supported (zstd, blosc, gzip, zlib, none)" : "available in this build");
      goto done;
    }
  }
done:
  cJSON_Delete(j);
  return st;
}

/* The transforms list of one multiscale entry: scale and translation, in file axis order. */
static void apply_transforms(cJSON *list, int nd, double *scale, double *trans) {
  cJSON *t;
  cJSON_ArrayForEach(t, list) {
    cJSON *type = cJSON_GetObjectItem(t, "type");
    if (!cJSON_IsString(type)) continue;
    int is_scale = !strcmp(type->valuestring, "scale"), is_tr = !strcmp(type->valuestring, "translation");
    cJSON *v = cJSON_GetObjectItem(t, is_scale ? "scale" : "translation");
    if ((!is_scale && !is_tr) || cJSON_GetArraySize(v) != nd) continue;
    for (int d = 0; d < nd; d++) {
      double x = cJSON_GetArrayItem(v, d)->valuedouble;
      if (is_scale) scale[d] *= x, trans[d] *= x;
      else trans[d] += x;
    }
  }
}

/* Open a store: a NGFF group (finest dataset of the first multiscale) or a bare array. */
static ffdp_status zarr_open(const char *path, zarr_array *a, ffdp_mat4 *w, ffdp_error *err) {
  memset(a, 0, sizeof *a);
  if (!is_dir(path)) return ffdp_fail(err, FFDP_ERR_IO, "'%s': no such Zarr store (a directory is expected)", path);
  *w = ffdp_mat4_identity();
  if (file_exists(path, ".zarray")) { /* bare array: unit spacing */
    snprintf(a->dir, sizeof a->dir, "%s", path);
    return parse_zarray(a, path, err);
  }
  ffdp_status st = FFDP_OK;
  cJSON *j = read_json(path, ".zattrs", path, &st, err);
  if (!j) return st;
  cJSON *ms = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "multiscales"), 0);
  cJSON *ds = cJSON_GetArrayItem(cJSON_GetObjectItem(ms, "datasets"), 0);
  cJSON *dpath = cJSON_GetObjectItem(ds, "path"), *axes = cJSON_GetObjectItem(ms, "axes");
  if (!cJSON_IsString(dpath)) {
    st = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': .zattrs has no multiscales[0].datasets[0].path (not an OME-Zarr image)", path);
    goto done;
  }
  snprintf(a->dir, sizeof a->dir, "%s/%s", path, dpath->valuestring);
  if ((st = parse_zarray(a, path, err))) goto done;
  const int nd = a->nlead + 3;
  double scale[5] = {1, 1, 1, 1, 1}, trans[5] = {0}, unit[5] = {1, 1, 1, 1, 1};
  if (axes && cJSON_GetArraySize(axes) != nd) {
    st = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': %d axes in .zattrs but the array has %d dimensions", path,
                   cJSON_GetArraySize(axes), nd);
    goto done;
  }
  for (int d = 0; axes && d < nd; d++) {
    cJSON *ax = cJSON_GetArrayItem(axes, d);
    cJSON *name = cJSON_IsString(ax) ? ax : cJSON_GetObjectItem(ax, "name"), *u = cJSON_GetObjectItem(ax, "unit");
    const char *want = d >= a->nlead ? (const char *[]){"z", "y", "x"}[d - a->nlead] : NULL;
    if (want && (!cJSON_IsString(name) || strcmp(name->valuestring, want))) {
      st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': the last three axes must be z, y, x (axis %d is \"%s\")", path, d,
                     cJSON_IsString(name) ? name->valuestring : "?");
      goto done;
    }
    if (want && cJSON_IsString(u) && !(unit[d] = unit_to_mm(u->valuestring))) {
      st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': unit \"%s\" of axis %s is not a length unit ffdp knows", path,
                     u->valuestring, want);
      goto done;
    }
  }
  apply_transforms(cJSON_GetObjectItem(ds, "coordinateTransformations"), nd, scale, trans);
  apply_transforms(cJSON_GetObjectItem(ms, "coordinateTransformations"), nd, scale, trans);
  for (int a3 = 0; a3 < 3; a3++) {
    const int d = nd - 1 - a3;
    w->m[a3][a3] = scale[d] * unit[d], w->m[a3][3] = trans[d] * unit[d];
  }
  cJSON *ext = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "ffdp"), "vox2world");
  if (cJSON_GetArraySize(ext) == 16) {
    for (int k = 0; k < 16; k++) w->m[k / 4][k % 4] = cJSON_GetArrayItem(ext, k)->valuedouble;
  }
  ffdp_mat4 inv;
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      if (!isfinite(w->m[r][c])) {
        st = ffdp_fail(err, FFDP_ERR_INVALID, "'%s': scale/translation contains NaN or Inf", path);
        goto done;
      }
  if (!ffdp_mat4_inverse(*w, &inv)) st = ffdp_fail(err, FFDP_ERR_INVALID, "'%s': a voxel spacing is zero", path);
done:
  cJSON_Delete(j);
  return st;
}

static void chunk_path(const zarr_array *a, int64_t cx, int64_t cy, int64_t cz, char *p, size_t n) {
  int k = snprintf(p, n, "%s/", a->dir);
  for (int d = 0; d < a->nlead; d++) k += snprintf(p + k, n - (size_t)k, "0%c", a->sep);
  snprintf(p + k, n - (size_t)k, "%lld%c%lld%c%lld", (long long)cz, a->sep, (long long)cy, a->sep, (long long)cx);
}

static void swap_bytes(unsigned char *b, int64_t n, int size) {
  for (int64_t i = 0; i < n; i++, b += size)
    for (int k = 0; k < size / 2; k++) {
      unsigned char t = b[k];
      b[k] = b[size - 1 - k], b[size - 1 - k] = t;
    }
}

/* Planes [z0, z1) of the store into v (dim x, y, z1-z0): each chunk row the range touches is
 * read once, chunks in parallel. */
static ffdp_status read_planes(const char *store, const zarr_array *a, int64_t z0, int64_t z1, ffdp_volume *v,
                               ffdp_error *err) {
  const int64_t *c = a->chunk, ncx = (a->shape[0] + c[0] - 1) / c[0], ncy = (a->shape[1] + c[1] - 1) / c[1];
  const int64_t cz0 = z0 / c[2], cz1 = (z1 - 1) / c[2] + 1, nchunks = ncx * ncy * (cz1 - cz0);
  const int64_t cvox = c[0] * c[1] * c[2];
  const size_t cbytes = (size_t)cvox * (size_t)a->itemsize;
  ffdp_status st = FFDP_OK;
#pragma omp parallel
  {
    unsigned char *raw = malloc(cbytes);
    float *vals = malloc((size_t)cvox * sizeof(float));
    if (!raw || !vals) {
#pragma omp critical(zarr_err)
      if (!st) st = ffdp_fail(err, FFDP_ERR_NOMEM, "'%s': cannot allocate a %zu-byte chunk buffer", store, cbytes);
    }
#pragma omp for schedule(dynamic)
    for (int64_t k = 0; k < nchunks; k++) {
      if (st || !raw || !vals) continue;
      const int64_t cx = k % ncx, cy = k / ncx % ncy, cz = cz0 + k / (ncx * ncy);
      char p[4600];
      chunk_path(a, cx, cy, cz, p, sizeof p);
      size_t n = 0;
      char *buf = slurp(p, &n);
      ffdp_status e = FFDP_OK;
      ffdp_error le;
      if (!buf)
        e = ffdp_fail(&le, errno == ENOENT ? FFDP_ERR_FORMAT : FFDP_ERR_IO, "'%s': chunk %s %s", store, p + strlen(a->dir) + 1,
                      errno == ENOENT ? "is missing (incomplete copy?)" : strerror(errno));
      else if (!zarr_decompress(a, buf, n, raw, cbytes))
        e = ffdp_fail(&le, FFDP_ERR_FORMAT, "'%s': chunk %s is corrupt (%s data does not decode to %zu bytes)", store,
                      p + strlen(a->dir) + 1, zarr_codec_name(a->codec), cbytes);
      free(buf);
      if (e) {
#pragma omp critical(zarr_err)
        if (!st) {
          st = e;
          if (err) *err = le;
        }
        continue;
      }
      if (a->swap) swap_bytes(raw, cvox, a->itemsize);
      ffdp_convert_to_float(raw, a->dtype, cvox, 1, 0, vals);
      /* copy the part of the chunk inside the array and the plane range */
      const int64_t x0 = cx * c[0], y0 = cy * c[1], zc0 = cz * c[2];
      const int64_t xn = x0 + c[0] > a->shape[0] ? a->shape[0] - x0 : c[0];
      const int64_t yn = y0 + c[1] > a->shape[1] ? a->shape[1] - y0 : c[1];
      const int64_t za = zc0 > z0 ? zc0 : z0, zb = zc0 + c[2] < z1 ? zc0 + c[2] : z1;
      for (int64_t z = za; z < zb; z++)
        for (int64_t y = 0; y < yn; y++)
          memcpy(v->data + ((z - z0) * v->dim[1] + y0 + y) * v->dim[0] + x0,
                 vals + ((z - zc0) * c[1] + y) * c[0], (size_t)xn * sizeof(float));
    }
    free(raw);
    free(vals);
  }
  return st;
}

ffdp_status ffdp_zarr_probe(const char *path, int64_t dim[3], ffdp_mat4 *w, ffdp_error *err) {
  zarr_array a;
  ffdp_status st = zarr_open(path, &a, w, err);
  if (!st)
    for (int d = 0; d < 3; d++) dim[d] = a.shape[d];
  return st;
}

ffdp_status ffdp_zarr_load_planes(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err) {
  *out = NULL;
  zarr_array a;
  ffdp_mat4 w;
  ffdp_status st = zarr_open(path, &a, &w, err);
  if (st) return st;
  if (z1 < 0) z1 = a.shape[2];
  if (z0 < 0 || z1 > a.shape[2] || z0 >= z1)
    return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': planes [%lld, %lld) are outside the image's %lld planes", path,
                     (long long)z0, (long long)z1, (long long)a.shape[2]);
  const int64_t dim[3] = {a.shape[0], a.shape[1], z1 - z0};
  for (int r = 0; r < 3; r++) w.m[r][3] += w.m[r][2] * (double)z0; /* plane z0 becomes voxel 0 */
  ffdp_volume *v;
  if ((st = ffdp_volume_create(dim, 1, w, &v, err))) return st;
  if ((st = read_planes(path, &a, z0, z1, v, err))) {
    ffdp_volume_free(v);
    return st;
  }
  v->source_dtype = a.dtype;
  *out = v;
  return FFDP_OK;
}

/* ---- writing ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}
static void rm_tree(const char *p) { nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int write_file(const char *path, const void *buf, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(buf, 1, n, f) == n;
  ok = (fclose(f) == 0) && ok;
  return ok;
}

static int write_json(const char *dir, const char *name, cJSON *j) {
  char p[4200], *txt = cJSON_Print(j);
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int ok = txt && write_file(p, txt, strlen(txt));
  free(txt);
  return ok;
}

/* Numbers printed with 17 significant digits: cJSON's own printing settles for 15 when they
 * are "close enough", which would lose the last bits of the geometry. */
static cJSON *num_array(const double *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int k = 0; k < n; k++) {
    char b[32];
    snprintf(b, sizeof b, "%.17g", v[k]);
    cJSON_AddItemToArray(a, cJSON_CreateRaw(b));
  }
  return a;
}

static ffdp_status write_metadata(const char *tmp, const char *path, ffdp_mat4 vox2world, const zarr_array *a,
                                  const char *dt, ffdp_error *err) {
  cJSON *g = cJSON_CreateObject(), *attrs = cJSON_CreateObject(), *arr = cJSON_CreateObject();
  cJSON_AddNumberToObject(g, "zarr_format", 2);
  /* NGFF 0.4 multiscales with one level: scale = voxel spacing (column norms), translation =
   * world position of voxel 0; the exact matrix under "ffdp" */
  double sp[3], sc[3], tr[3], m16[16];
  for (int d = 0; d < 3; d++) /* spacing: the column norms */
    sp[d] = sqrt(vox2world.m[0][d] * vox2world.m[0][d] + vox2world.m[1][d] * vox2world.m[1][d] +
                 vox2world.m[2][d] * vox2world.m[2][d]);
  for (int d = 0; d < 3; d++) sc[d] = sp[2 - d], tr[d] = vox2world.m[2 - d][3];
  for (int k = 0; k < 16; k++) m16[k] = vox2world.m[k / 4][k % 4];
  cJSON *ms = cJSON_CreateObject(), *axes = cJSON_CreateArray(), *dss = cJSON_CreateArray(), *ds = cJSON_CreateObject(),
        *cts = cJSON_CreateArray(), *s = cJSON_CreateObject(), *t = cJSON_CreateObject(), *msa = cJSON_CreateArray();
  cJSON_AddStringToObject(ms, "version", "0.4");
  const char *names[3] = {"z", "y", "x"};
  for (int d = 0; d < 3; d++) {
    cJSON *ax = cJSON_CreateObject();
    cJSON_AddStringToObject(ax, "name", names[d]);
    cJSON_AddStringToObject(ax, "type", "space");
    cJSON_AddStringToObject(ax, "unit", "millimeter");
    cJSON_AddItemToArray(axes, ax);
  }
  cJSON_AddItemToObject(ms, "axes", axes);
  cJSON_AddStringToObject(ds, "path", "0");
  cJSON_AddStringToObject(s, "type", "scale");
  cJSON_AddItemToObject(s, "scale", num_array(sc, 3));
  cJSON_AddStringToObject(t, "type", "translation");
  cJSON_AddItemToObject(t, "translation", num_array(tr, 3));
  cJSON_AddItemToArray(cts, s);
  cJSON_AddItemToArray(cts, t);
  cJSON_AddItemToObject(ds, "coordinateTransformations", cts);
  cJSON_AddItemToArray(dss, ds);
  cJSON_AddItemToObject(ms, "datasets", dss);
  cJSON_AddItemToArray(msa, ms);
  cJSON_AddItemToObject(attrs, "multiscales", msa);
  cJSON *ext = cJSON_CreateObject();
  cJSON_AddItemToObject(ext, "vox2world", num_array(m16, 16));
  cJSON_AddItemToObject(attrs, "ffdp", ext);
  /* the array */
  const double shp[3] = {(double)a->shape[2], (double)a->shape[1], (double)a->shape[0]},
               chk[3] = {(double)a->chunk[2], (double)a->chunk[1], (double)a->chunk[0]};
  cJSON_AddNumberToObject(arr, "zarr_format", 2);
  cJSON_AddItemToObject(arr, "shape", num_array(shp, 3));
  cJSON_AddItemToObject(arr, "chunks", num_array(chk, 3));
  cJSON_AddStringToObject(arr, "dtype", dt);
  if (a->codec == ZARR_NONE) {
    cJSON_AddNullToObject(arr, "compressor");
  } else {
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", zarr_codec_name(a->codec));
    if (a->codec == ZARR_BLOSC) {
      cJSON_AddStringToObject(c, "cname", a->cname);
      cJSON_AddNumberToObject(c, "clevel", a->level);
      cJSON_AddNumberToObject(c, "shuffle", a->shuffle);
      cJSON_AddNumberToObject(c, "blocksize", 0);
    } else {
      cJSON_AddNumberToObject(c, "level", a->level);
    }
    cJSON_AddItemToObject(arr, "compressor", c);
  }
  cJSON_AddNumberToObject(arr, "fill_value", 0);
  cJSON_AddStringToObject(arr, "order", "C");
  cJSON_AddNullToObject(arr, "filters");
  cJSON_AddStringToObject(arr, "dimension_separator", "/");
  char d0[4400];
  snprintf(d0, sizeof d0, "%s/0", tmp);
  int ok = write_json(tmp, ".zgroup", g) && write_json(tmp, ".zattrs", attrs) && mkdir(d0, 0777) == 0 &&
           write_json(d0, ".zarray", arr);
  cJSON_Delete(g);
  cJSON_Delete(attrs);
  cJSON_Delete(arr);
  return ok ? FFDP_OK : ffdp_fail(err, FFDP_ERR_IO, "'%s': cannot write the store's metadata: %s", path, strerror(errno));
}

/* The chunks of chunk rows [cz0, cz1) (z-chunks) from planes: plane z of the image is
 * planes[(z - pz0) * nx * ny ...]; every chunk on its own thread (convert, compress, write). */
static ffdp_status write_chunk_rows(const char *path, const float *planes, int64_t pz0, const zarr_array *a, int dtype,
                                    int64_t cz0, int64_t cz1, ffdp_error *err) {
  const int64_t *c = a->chunk, ncx = (a->shape[0] + c[0] - 1) / c[0], ncy = (a->shape[1] + c[1] - 1) / c[1];
  const int64_t cvox = c[0] * c[1] * c[2], nrow = cz1 - cz0;
  const size_t cbytes = (size_t)cvox * (size_t)a->itemsize, cap = zarr_compress_bound(a, cbytes);
  ffdp_status st = FFDP_OK;
  /* directories first (z, then z/y), serially: the chunk loop below only creates files */
  for (int64_t cz = cz0; cz < cz1 && !st; cz++)
    for (int64_t cy = -1; cy < ncy && !st; cy++) {
      char p[4600];
      if (cy < 0) snprintf(p, sizeof p, "%s/%lld", a->dir, (long long)cz);
      else snprintf(p, sizeof p, "%s/%lld/%lld", a->dir, (long long)cz, (long long)cy);
      if (mkdir(p, 0777) != 0) st = ffdp_fail(err, FFDP_ERR_IO, "'%s': cannot create %s: %s", path, p, strerror(errno));
    }
  if (st) return st;
#pragma omp parallel
  {
    unsigned char *raw = malloc(cbytes), *comp = malloc(cap);
    if (!raw || !comp) {
#pragma omp critical(zarr_err)
      if (!st) st = ffdp_fail(err, FFDP_ERR_NOMEM, "'%s': cannot allocate chunk buffers", path);
    }
#pragma omp for schedule(dynamic)
    for (int64_t k = 0; k < ncx * ncy * nrow; k++) {
      if (st || !raw || !comp) continue;
      const int64_t cx = k % ncx, cy = k / ncx % ncy, cz = cz0 + k / (ncx * ncy);
      const int64_t x0 = cx * c[0], y0 = cy * c[1], z0 = cz * c[2];
      for (int64_t z = 0; z < c[2]; z++)
        for (int64_t y = 0; y < c[1]; y++)
          for (int64_t x = 0; x < c[0]; x++) {
            const int64_t gx = x0 + x, gy = y0 + y, gz = z0 + z, i = (z * c[1] + y) * c[0] + x;
            const int in = gx < a->shape[0] && gy < a->shape[1] && gz < a->shape[2];
            ffdp_store_value(in ? planes[((gz - pz0) * a->shape[1] + gy) * a->shape[0] + gx] : 0.0, dtype, raw, i);
          }
      size_t n = zarr_compress(a, raw, cbytes, comp, cap);
      char p[4600];
      chunk_path(a, cx, cy, cz, p, sizeof p);
      if (!n || !write_file(p, comp, n)) {
#pragma omp critical(zarr_err)
        if (!st) st = ffdp_fail(err, FFDP_ERR_IO, "'%s': cannot write chunk %lld/%lld/%lld: %s", path, (long long)cz,
                                (long long)cy, (long long)cx, n ? strerror(errno) : "compression failed");
      }
    }
    free(raw);
    free(comp);
  }
  return st;
}

/* A store written chunk row by chunk row into a temporary directory beside the target, renamed
 * into place when complete (the whole-volume writer is one put of every plane). */
struct ffdp_zarr_writer {
  char *path, tmp[4200], old[4200];
  zarr_array a;
  int dtype;
  int64_t next;  /* planes received */
  float *row;    /* the planes of the chunk row being filled */
  /* ranks writing one store (shared): this rank's planes [z0, z1); the planes before head_end
   * lie in a chunk row that starts in an earlier rank's planes and go to that rank at close */
  const ffdp_comm *c;
  int64_t z0, z1, head_end;
  float *head;
};

static void zarr_writer_free(ffdp_zarr_writer *w) {
  if (!w) return;
  free(w->path), free(w->row), free(w->head), free(w);
}

static ffdp_status writer_open(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                               const ffdp_zarr_options *opt, const ffdp_comm *comm, ffdp_zarr_writer **out, ffdp_error *err) {
  *out = NULL;
  ffdp_zarr_options o = opt ? *opt : ffdp_zarr_default_options();
  ffdp_zarr_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = strdup(path))) {
    free(w);
    return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory opening '%s'", path);
  }
  zarr_array *a = &w->a;
  const zarr_type *zt = type_by_dtype((int)dtype);
  if (!zt) {
    zarr_writer_free(w);
    return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': unsupported output type %d", path, (int)dtype);
  }
  char dt[4] = {zt->code[1] == '1' ? '|' : '<', zt->code[0], zt->code[1], 0};
  a->dtype = zt->dtype, a->itemsize = zt->code[1] - '0';
  w->dtype = (int)dtype;
  for (int d = 0; d < 3; d++) {
    a->shape[d] = dim[d];
    a->chunk[d] = o.chunk[d] > 0 ? o.chunk[d] : 64;
    if (a->chunk[d] > a->shape[d]) a->chunk[d] = a->shape[d];
  }
  a->level = o.level;
  a->shuffle = 1;
  a->sep = '/';
  switch (o.codec) {
  case FFDP_ZARR_RAW: a->codec = ZARR_NONE; break;
  case FFDP_ZARR_ZSTD: a->codec = ZARR_ZSTD; break;
  case FFDP_ZARR_BLOSC_ZSTD: a->codec = ZARR_BLOSC, strcpy(a->cname, "zstd"); break;
  case FFDP_ZARR_BLOSC_LZ4: a->codec = ZARR_BLOSC, strcpy(a->cname, "lz4"); break;
  }
  ffdp_status st = FFDP_OK;
  if (!zarr_codec_available(a->codec))
    st = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': compressor %s is not available in this build", path,
                   zarr_codec_name(a->codec));
  if (st) {
    zarr_writer_free(w);
    return st;
  }
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  double pid = c->rank == 0 ? (double)getpid() : 0.0; /* ranks: one name for all, rank 0's */
  c->sum(c, &pid, 1);
  snprintf(w->tmp, sizeof w->tmp, "%.*s.tmp-%.0f", (int)n, path, pid);
  snprintf(w->old, sizeof w->old, "%.*s.old-%.0f", (int)n, path, pid);
  snprintf(a->dir, sizeof a->dir, "%s/0", w->tmp);
  w->c = c;
  w->z0 = w->head_end = 0, w->z1 = dim[2];
  if (c->size > 1) { /* this rank's share; the planes before its first chunk row go to another rank */
    ffdp_comm_share(c, dim[2], &w->z0, &w->z1);
    const int64_t cz = a->chunk[2], first = (w->z0 + cz - 1) / cz * cz;
    w->head_end = first < w->z1 ? first : w->z1;
    w->next = w->z0;
    if (w->head_end > w->z0 && !(w->head = malloc((size_t)((w->head_end - w->z0) * dim[0] * dim[1]) * sizeof(float)))) {
      zarr_writer_free(w);
      return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    if (c->rank != 0) { /* rank 0 makes the store; the others write chunks into it */
      *out = w;
      return FFDP_OK;
    }
  }
  struct stat sb;
  if (stat(path, &sb) == 0 && !(S_ISDIR(sb.st_mode) && (file_exists(path, ".zgroup") || file_exists(path, ".zarray")))) {
    zarr_writer_free(w);
    return ffdp_fail(err, FFDP_ERR_IO, "'%s' exists and is not a Zarr store; refusing to replace it", path);
  }
  rm_tree(w->tmp);
  if (mkdir(w->tmp, 0777) != 0) {
    st = ffdp_fail(err, FFDP_ERR_IO, "cannot create '%s': %s", w->tmp, strerror(errno));
    zarr_writer_free(w);
    return st;
  }
  if ((st = write_metadata(w->tmp, path, vox2world, a, dt, err))) {
    ffdp_zarr_writer_abort(w);
    return st;
  }
  *out = w;
  return FFDP_OK;
}

ffdp_status ffdp_zarr_writer_open(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                                  const ffdp_zarr_options *opt, ffdp_zarr_writer **out, ffdp_error *err) {
  return writer_open(path, dim, vox2world, dtype, opt, NULL, out, err);
}

ffdp_status ffdp_zarr_writer_open_shared(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                                         const ffdp_zarr_options *opt, const ffdp_comm *comm, ffdp_zarr_writer **out,
                                         ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  ffdp_status st = writer_open(path, dim, vox2world, dtype, opt, comm, out, err);
  if (c->size > 1 && (st = c->agree(c, st, err))) { /* the store exists for every rank, or for none */
    if (*out && c->rank == 0) rm_tree((*out)->tmp);
    zarr_writer_free(*out);
    *out = NULL;
  }
  return st;
}

ffdp_status ffdp_zarr_writer_put(ffdp_zarr_writer *w, const float *planes, int64_t nplanes, ffdp_error *err) {
  const zarr_array *a = &w->a;
  const int64_t P = a->shape[0] * a->shape[1], cz = a->chunk[2];
  if (nplanes < 0 || w->next + nplanes > w->z1)
    return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': %lld planes past the last of %lld", w->path,
                     (long long)(w->next + nplanes), (long long)w->z1);
  while (nplanes > 0) {
    if (w->next < w->head_end) { /* another rank's chunk row: kept for the exchange at close */
      const int64_t k = w->head_end - w->next < nplanes ? w->head_end - w->next : nplanes;
      memcpy(w->head + (w->next - w->z0) * P, planes, (size_t)(k * P) * sizeof(float));
      w->next += k, planes += k * P, nplanes -= k;
      continue;
    }
    const int64_t inrow = w->next % cz, row0 = w->next - inrow;
    if (inrow == 0 && nplanes >= cz) { /* whole chunk rows straight from the caller's planes */
      const int64_t rows = nplanes / cz;
      ffdp_status st = write_chunk_rows(w->path, planes, row0, a, w->dtype, row0 / cz, row0 / cz + rows, err);
      if (st) return st;
      w->next += rows * cz, planes += rows * cz * P, nplanes -= rows * cz;
      continue;
    }
    int64_t k = cz - inrow < nplanes ? cz - inrow : nplanes;
    if (!w->row && !(w->row = malloc((size_t)(P * cz) * sizeof(float)))) /* on first need: whole rows skip it */
      return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory writing '%s'", w->path);
    memcpy(w->row + inrow * P, planes, (size_t)(k * P) * sizeof(float));
    w->next += k, planes += k * P, nplanes -= k;
    if (w->next % cz == 0 || w->next == a->shape[2]) { /* the row is complete (or the image ends) */
      ffdp_status st = write_chunk_rows(w->path, w->row, row0, a, w->dtype, row0 / cz, row0 / cz + 1, err);
      if (st) return st;
    }
  }
  return FFDP_OK;
}

/* Ranks: the chunk row this rank started but could not finish gets its other planes from the
 * ranks that hold them (their heads) and is written. Collective. */
static ffdp_status finish_shared_row(ffdp_zarr_writer *w, ffdp_error *err) {
  const zarr_array *a = &w->a;
  const int64_t P = a->shape[0] * a->shape[1], cz = a->chunk[2], row0 = w->z1 / cz * cz;
  const int64_t want_hi = row0 >= w->z0 && w->z1 % cz && w->z1 < a->shape[2] ? (row0 + cz < a->shape[2] ? row0 + cz : a->shape[2]) : w->z1;
  ffdp_status st = w->c->planes(w->c, P, w->z0, w->head_end, w->head, w->z1, want_hi, w->row ? w->row + (w->z1 - row0) * P : NULL, err);
  if (!st && want_hi > w->z1) st = write_chunk_rows(w->path, w->row, row0, a, w->dtype, row0 / cz, row0 / cz + 1, err);
  return st;
}

ffdp_status ffdp_zarr_writer_close(ffdp_zarr_writer *w, ffdp_error *err) {
  if (!w) return FFDP_OK;
  ffdp_status st = FFDP_OK;
  if (w->next != w->z1)
    st = ffdp_fail(err, FFDP_ERR_INVALID, "'%s': only %lld of %lld planes were written; nothing was kept", w->path,
                   (long long)(w->next - w->z0), (long long)(w->z1 - w->z0));
  const ffdp_comm *c = w->c;
  const int shared = c && c->size > 1;
  if (shared && !(st = c->agree(c, st, err))) st = c->agree(c, finish_shared_row(w, err), err);
  if (shared && c->rank != 0) { /* rank 0 puts the store in place (or removes it) */
    ffdp_status fin = c->agree(c, FFDP_OK, err);
    zarr_writer_free(w);
    return st ? st : fin;
  }
  struct stat sb;
  if (!st) {
    int had = stat(w->path, &sb) == 0;
    if (had && rename(w->path, w->old) != 0) {
      st = ffdp_fail(err, FFDP_ERR_IO, "cannot move the old store '%s' aside: %s", w->path, strerror(errno));
    } else if (rename(w->tmp, w->path) != 0) {
      st = ffdp_fail(err, FFDP_ERR_IO, "cannot move the finished store to '%s': %s", w->path, strerror(errno));
      if (had) rename(w->old, w->path); /* put the previous store back */
    } else if (had) {
      rm_tree(w->old);
    }
  }
  if (st) rm_tree(w->tmp);
  if (shared) { /* the others hear how it ended */
    ffdp_status fin = c->agree(c, st, err);
    if (!st) st = fin;
  }
  zarr_writer_free(w);
  return st;
}

void ffdp_zarr_writer_abort(ffdp_zarr_writer *w) {
  if (!w) return;
  if (w->c && w->c->size > 1) { /* collective: the others learn it failed and nothing stays */
    ffdp_error e;
    w->next = -1;
    ffdp_zarr_writer_close(w, &e);
    return;
  }
  rm_tree(w->tmp);
  zarr_writer_free(w);
}

ffdp_status ffdp_volume_save_zarr(const ffdp_volume *v, const char *path, ffdp_dtype dtype, const ffdp_zarr_options *opt,
                                  ffdp_error *err) {
  if (v->ncomp != 1)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': only scalar images are written as Zarr (write fields as NIfTI)", path);
  ffdp_zarr_writer *w;
  ffdp_status st = ffdp_zarr_writer_open(path, v->dim, v->vox2world, dtype, opt, &w, err);
  if (st) return st;
  if ((st = ffdp_zarr_writer_put(w, v->data, v->dim[2], err))) {
    ffdp_zarr_writer_abort(w);
    return st;
  }
  return ffdp_zarr_writer_close(w, err);
}

ffdp_zarr_options ffdp_zarr_default_options(void) {
  ffdp_zarr_options o = {{64, 64, 64}, FFDP_ZARR_RAW, 0};
#if defined(FFDP_HAVE_BLOSC)
  o.codec = FFDP_ZARR_BLOSC_ZSTD, o.level = 5;
#elif defined(FFDP_HAVE_ZSTD)
  o.codec = FFDP_ZARR_ZSTD, o.level = 3;
#endif
  return o;
}
