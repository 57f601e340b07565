/* NIfTI-1/NIfTI-2 reading through the reference NIfTI C library, with the validation a
 * registration needs (3D, finite non-zero spacing, invertible orientation) done before
 * any data is read, so bad input fails fast with one line. */
#include "io/nifti_common.h"
#include "io/gzip_parallel.h"
#include "io/convert.h"
#include "io/zarr.h"
#include "core/err.h"
#include "core/volume_internal.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef FFDP_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

int ffdp_path_is_gz(const char *path) {
  size_t n = strlen(path);
  return n > 3 && strcmp(path + n - 3, ".gz") == 0;
}

int ffdp_path_is_nifti(const char *path) {
  size_t n = strlen(path);
  return (n > 4 && strcmp(path + n - 4, ".nii") == 0) || (n > 7 && strcmp(path + n - 7, ".nii.gz") == 0);
}

static ffdp_status check_readable(const char *path, ffdp_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return ffdp_fail(err, FFDP_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  fclose(f);
  return FFDP_OK;
}

/* Voxel-to-world as NIfTI defines it: sform when set, else qform, else scaled identity. */
/* The library replaces zero/NaN pixdim with 1 while converting the header, which would hide
 * a broken file; so the spacing is checked on the raw header. */
static ffdp_status raw_spacing(const char *path, double d[3], ffdp_error *err) {
  int ver = 0;
  void *h = nifti_read_header(path, &ver, 0);
  if (!h) return ffdp_fail(err, FFDP_ERR_FORMAT, "'%s' is not a readable NIfTI-1/NIfTI-2 file (bad or truncated header)", path);
  for (int i = 0; i < 3; i++)
    d[i] = ver == 2 ? ((nifti_2_header *)h)->pixdim[i + 1] : (double)((nifti_1_header *)h)->pixdim[i + 1];
  free(h);
  return FFDP_OK;
}

static ffdp_status header_geometry(const nifti_image *nim, const char *path, ffdp_mat4 *w,
                                   ffdp_error *err) {
  double d[3];
  ffdp_status st = raw_spacing(path, d, err);
  if (st) return st;
  for (int i = 0; i < 3; i++)
    if (!isfinite(d[i]) || d[i] == 0)
      return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': voxel spacing pixdim[%d] is %g (must be finite and non-zero)",
                       path, i + 1, d[i]);
  ffdp_mat4 m = ffdp_mat4_identity();
  if (nim->sform_code > 0) {
    memcpy(m.m, nim->sto_xyz.m, sizeof m.m);
  } else if (nim->qform_code > 0) {
    memcpy(m.m, nim->qto_xyz.m, sizeof m.m);
  } else {
    for (int i = 0; i < 3; i++) m.m[i][i] = fabs(d[i]);
  }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      if (!isfinite(m.m[i][j]))
        return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': orientation matrix contains NaN or Inf", path);
  ffdp_mat4 inv;
  if (!ffdp_mat4_inverse(m, &inv))
    return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': orientation matrix (%s) is singular",
                     path, nim->sform_code > 0 ? "sform" : "qform");
  *w = m;
  return FFDP_OK;
}

/* Read the header, validate it, and describe what a 3D (ncomp=1) or vector (ncomp=3) load
 * would produce. The returned nifti_image has no data yet. */
static ffdp_status open_checked(const char *path, int want_ncomp, nifti_image **out, ffdp_mat4 *w,
                                ffdp_error *err) {
  *out = NULL;
  ffdp_status s = check_readable(path, err);
  if (s) return s;
  nifti_set_debug_level(0); /* we report errors ourselves, in one line */
  nifti_image *nim = nifti_image_read(path, 0);
  if (!nim)
    return ffdp_fail(err, FFDP_ERR_FORMAT, "'%s' is not a readable NIfTI-1/NIfTI-2 file (bad or truncated header)", path);
  /* the header's own version: the library reports single-file NIfTI-2 as nifti_type 1 too */
  int ver = 0;
  free(nifti_read_header(path, &ver, 0));
  if (ver != 2 && nim->nvox > FFDP_NIFTI1_MAX_VOX) {
    s = ffdp_fail(err, FFDP_ERR_UNSUPPORTED,
                  "'%s': NIfTI-1 header claims %lld voxels (over 2^31-1); store volumes this large as NIfTI-2",
                  path, (long long)nim->nvox);
    goto fail;
  }
  for (int i = 1; i <= 3; i++)
    if (nim->dim[i] < 1) {
      s = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': dimension %d is %lld", path, i, (long long)nim->dim[i]);
      goto fail;
    }
  int64_t extra = 1;
  for (int i = 4; i <= 7 && i <= nim->dim[0]; i++) extra *= nim->dim[i] > 0 ? nim->dim[i] : 1;
  if (want_ncomp == 1 && extra != 1) {
    char dims[96] = "";
    for (int i = 1; i <= nim->dim[0] && i <= 7; i++)
      snprintf(dims + strlen(dims), sizeof dims - strlen(dims), "%s%lld", i > 1 ? "x" : "", (long long)nim->dim[i]);
    s = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s' is %lldD (%s) but a 3D image is expected; extract one volume first",
                  path, (long long)nim->dim[0], dims);
    goto fail;
  }
  if (want_ncomp == 3 && (extra != 3 || nim->dim[0] < 5 || nim->dim[5] != 3)) {
    s = ffdp_fail(err, FFDP_ERR_UNSUPPORTED,
                  "'%s' is not a 3D displacement field (expected dims X Y Z 1 3, ITK/ANTs layout)", path);
    goto fail;
  }
  int nbyper = 0, swsize = 0;
  nifti_datatype_sizes(nim->datatype, &nbyper, &swsize);
  if (nbyper == 0 || nim->datatype == DT_RGB24 || nim->datatype == DT_RGBA32 || nim->datatype == DT_COMPLEX64 ||
      nim->datatype == DT_COMPLEX128 || nim->datatype == DT_COMPLEX256 || nim->datatype == DT_FLOAT128 ||
      nim->datatype == DT_UINT64 || nim->datatype == DT_BINARY) {
    s = ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': voxel type %s is not supported (use u8/i8/i16/u16/i32/u32/i64/f32/f64)",
                  path, nifti_datatype_string(nim->datatype));
    goto fail;
  }
  if (!ffdp_path_is_gz(path)) { /* a short file is refused before anything is allocated for it */
    struct stat sb;
    const double need = (double)nim->iname_offset + (double)nim->nvox * nbyper;
    if (stat(nim->iname ? nim->iname : path, &sb) == 0 && (double)sb.st_size < need) {
      s = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': image data is truncated (%lld of %.0f bytes)", path,
                    (long long)sb.st_size, need);
      goto fail;
    }
  }
  s = header_geometry(nim, path, w, err);
  if (s) goto fail;
  *out = nim;
  return FFDP_OK;
fail:
  nifti_image_free(nim);
  return s;
}

/* Voxel data through the library's znz streams, converted chunk by chunk. Reading the
 * data ourselves (rather than nifti_image_load) matters: the library silently replaces NaN
 * and Inf with 0, which would hide exactly the inputs a registration must refuse. */
/* Chunks of converted values, in file order, handed to a sink instead of one destination. */
typedef struct {
  void (*put)(void *ctx, int64_t i0, int64_t m, const float *vals);
  void *ctx;
} value_sink;

static ffdp_status read_chunks(const nifti_image *nim, const char *path, int64_t start, int64_t n, float *dst,
                               const value_sink *sink, ffdp_value_range *r, ffdp_error *err);

/* r (or NULL): the range of the values read, from the reader where it found it, else a pass. */
static ffdp_status read_converted(const nifti_image *nim, const char *path, int64_t start, int64_t n, float *dst,
                                  ffdp_value_range *r, ffdp_error *err) {
  if (r) r->nonfinite = -1; /* not found yet */
  ffdp_status st = read_chunks(nim, path, start, n, dst, NULL, r, err);
  if (!st && r && r->nonfinite < 0) r->nonfinite = ffdp_floats_range(dst, n, &r->lo, &r->hi);
  return st;
}

#ifdef FFDP_HAVE_LIBDEFLATE
/* A .nii.gz whose data fits kFastGzMax bytes is read whole and inflated by libdeflate: 4-5x
 * zlib's gzread (2-core build machine: ch2better 0.305 -> 0.056 s, 630 vs 116 MB/s), at the
 * cost of holding the compressed file and the raw data at once — hence the bound. A rank's
 * share (part of the data) takes this path only for small files (kFastGzPart): its host
 * memory is meant to fall with the rank count. Other reads stream through zlib in 1 MiB chunks.
 * Any member libdeflate cannot take (corrupt, truncated, more data than the header says) falls
 * back to the zlib path, which names the problem. Returns 1 when it did the read, 0 to fall back. */
static const double kFastGzMax = 2147483648.0, kFastGzPart = 268435456.0; /* raw bytes: 2 GiB, 256 MiB */

static int read_gz_whole(const nifti_image *nim, const char *path, int64_t start, int64_t n, float *dst) {
  int nbyper = 0, swapsize = 0;
  nifti_datatype_sizes(nim->datatype, &nbyper, &swapsize);
  const double need_d = (double)nim->iname_offset + (double)nim->nvox * nbyper;
  if (nbyper <= 0 || need_d > (n < nim->nvox ? kFastGzPart : kFastGzMax)) return 0;
  const size_t need = (size_t)need_d;
  FILE *f = fopen(nim->iname ? nim->iname : path, "rb");
  if (!f) return 0;
  struct stat sb;
  char *in = NULL, *raw = NULL;
  int did = 0;
  if (fstat(fileno(f), &sb) == 0 && sb.st_size > 0 && (double)sb.st_size < 2 * need_d + 65536 &&
      (in = malloc((size_t)sb.st_size)) && (raw = malloc(need)) && fread(in, 1, (size_t)sb.st_size, f) == (size_t)sb.st_size) {
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    size_t ip = 0, op = 0, used_in = 0, used_out = 0;
    enum libdeflate_result r = d ? LIBDEFLATE_SUCCESS : LIBDEFLATE_BAD_DATA;
    /* one member after another (bgzip-style files have many); stop at the end of the data */
    while (r == LIBDEFLATE_SUCCESS && op < need && ip + 18 <= (size_t)sb.st_size &&
           (unsigned char)in[ip] == 0x1f && (unsigned char)in[ip + 1] == 0x8b) {
      r = libdeflate_gzip_decompress_ex(d, in + ip, (size_t)sb.st_size - ip, raw + op, need - op, &used_in, &used_out);
      ip += used_in, op += used_out;
    }
    if (d) libdeflate_free_decompressor(d);
    if (r == LIBDEFLATE_SUCCESS && op == need) {
      char *data = raw + nim->iname_offset + start * nbyper;
      if (nim->byteorder != nifti_short_order() && swapsize > 1) nifti_swap_Nbytes((size_t)n, swapsize, data);
      ffdp_convert_to_float(data, nim->datatype, n, nim->scl_slope, nim->scl_inter, dst);
      did = 1;
    }
  }
  fclose(f);
  free(in), free(raw);
  return did;
}
#endif

/* A .nii.gz that ffdp wrote (indexed gzip members, gzip_parallel.h): only the members holding
 * values [start, start + n) are read, 64 MiB of raw data at a time (each block's members inflate
 * on every thread), so a rank's share costs its own part of the file, a whole file inflates in
 * parallel, and no more than a block is staged beside the values. 1 when done, 0 to fall back
 * (another writer's file, or damage: the stream path then names the problem). */
static int read_gz_indexed(const nifti_image *nim, const char *path, int64_t start, int64_t n, float *dst,
                           const value_sink *sink) {
  int nbyper = 0, swapsize = 0;
  nifti_datatype_sizes(nim->datatype, &nbyper, &swapsize);
  if (nbyper <= 0 || n <= 0) return 0;
  ffdp_gz_index *ix = ffdp_gz_index_open(nim->iname ? nim->iname : path);
  if (!ix) return 0;
  const int64_t chunk = ((int64_t)64 << 20) / nbyper; /* values per block */
  const int64_t cn = n < chunk ? n : chunk;
  char *raw = malloc((size_t)(cn * nbyper));
  float *vals = !dst ? malloc((size_t)cn * sizeof(float)) : NULL;
  int did = raw && (dst || vals);
  for (int64_t i0 = 0; did && i0 < n; i0 += chunk) {
    const int64_t m = n - i0 < chunk ? n - i0 : chunk;
    did = ffdp_gz_index_read(ix, (int64_t)nim->iname_offset + (start + i0) * nbyper, m * nbyper, raw);
    if (!did) break;
    if (nim->byteorder != nifti_short_order() && swapsize > 1) nifti_swap_Nbytes((size_t)m, swapsize, raw);
    ffdp_convert_to_float(raw, nim->datatype, m, nim->scl_slope, nim->scl_inter, dst ? dst + i0 : vals);
    if (!dst) sink->put(sink->ctx, i0, m, vals);
  }
  ffdp_gz_index_close(ix);
  free(raw), free(vals);
  return did;
}

/* Uncompressed data straight into dst by every thread: positional reads of 1 Mi voxels, each
 * swapped and converted from the thread's own buffer. One thread reading and converting moved
 * ~3 GB/s (a 1008^3 float pair, 8 GB, loaded in 2.2-2.9 s on the H100 host: bench/gpu/NOTES.md
 * runs 199-201), well short of the page cache or a fast disk. 0: not handled (compressed, or
 * FFDP_PARALLEL_READ=0). */
static int read_plain_parallel(const nifti_image *nim, const char *path, int64_t start, int64_t n, float *dst,
                               ffdp_value_range *r, ffdp_status *st, ffdp_error *err) {
  const char *data = nim->iname ? nim->iname : path, *e = getenv("FFDP_PARALLEL_READ"); /* 0: one thread (A/B) */
  if (ffdp_path_is_gz(data) || (e && e[0] == '0')) return 0;
  const int fd = open(data, O_RDONLY);
  if (fd < 0) {
    *st = ffdp_fail(err, FFDP_ERR_IO, "'%s': cannot open the image data: %s", path, strerror(errno));
    return 1;
  }
  int nbyper = 0, swapsize = 0;
  nifti_datatype_sizes(nim->datatype, &nbyper, &swapsize);
  const int swap = nim->byteorder != nifti_short_order() && swapsize > 1;
  const int64_t chunk = 1 << 20, nch = (n + chunk - 1) / chunk;
  int failed = 0; /* 1: out of memory, 2: short read, 3: read error (errno in why) */
  int why = 0;
  double lo = INFINITY, hi = -INFINITY;
  int64_t nonfinite = 0;
#pragma omp parallel reduction(min : lo) reduction(max : hi) reduction(+ : nonfinite)
  {
    char *buf = malloc((size_t)(chunk * nbyper));
    if (!buf) {
#pragma omp critical(ffdp_read_plain_fail)
      if (!failed) failed = 1;
    }
#pragma omp for schedule(dynamic, 4)
    for (int64_t c = 0; c < nch; c++) {
      int bad;
#pragma omp atomic read
      bad = failed;
      if (bad || !buf) continue;
      const int64_t i0 = c * chunk, m = n - i0 < chunk ? n - i0 : chunk;
      const size_t want = (size_t)(m * nbyper);
      off_t at = (off_t)(nim->iname_offset + (start + i0) * nbyper);
      size_t got = 0;
      while (got < want) {
        const ssize_t r = pread(fd, buf + got, want - got, at + (off_t)got);
        if (r <= 0) {
          const int e = r < 0 ? errno : 0;
          if (r < 0 && e == EINTR) continue;
#pragma omp critical(ffdp_read_plain_fail)
          if (!failed) failed = r < 0 ? 3 : 2, why = e;
          break;
        }
        got += (size_t)r;
      }
      if (got < want) continue;
      if (swap) nifti_swap_Nbytes(m, swapsize, buf);
      /* converted in pieces, each one's range taken while it is in this thread's nearest cache
       * (a 4 MB chunk read again cost about as much as the normalization's own pass) */
      const int64_t piece = r ? 1 << 14 : m;
      for (int64_t p = 0; p < m; p += piece) {
        const int64_t k = m - p < piece ? m - p : piece;
        ffdp_convert_to_float(buf + p * nbyper, nim->datatype, k, nim->scl_slope, nim->scl_inter, dst + i0 + p);
        if (r) { /* a nested region: this thread alone */
          double l, h;
          nonfinite += ffdp_floats_range(dst + i0 + p, k, &l, &h);
          lo = l < lo ? l : lo, hi = h > hi ? h : hi;
        }
      }
    }
    free(buf);
  }
  close(fd);
  if (r && !failed) r->lo = lo, r->hi = hi, r->nonfinite = nonfinite;
  if (failed == 1) *st = ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory reading '%s'", path);
  else if (failed == 2)
    *st = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': image data is truncated or corrupt (expected %lld bytes)", path,
                    (long long)(n * nbyper));
  else if (failed == 3) *st = ffdp_fail(err, FFDP_ERR_IO, "'%s': reading the image data failed: %s", path, strerror(why));
  else *st = FFDP_OK;
  return 1;
}

/* dst: values [start, start + n) converted in place; or (dst NULL) each chunk to sink. */
static ffdp_status read_chunks(const nifti_image *nim, const char *path, int64_t start, int64_t n, float *dst,
                               const value_sink *sink, ffdp_value_range *r, ffdp_error *err) {
  ffdp_status pst;
  if (dst && read_plain_parallel(nim, path, start, n, dst, r, &pst, err)) return pst;
  if (ffdp_path_is_gz(path) && read_gz_indexed(nim, path, start, n, dst, sink)) return FFDP_OK;
#ifdef FFDP_HAVE_LIBDEFLATE
  if (dst && ffdp_path_is_gz(path) && read_gz_whole(nim, path, start, n, dst)) return FFDP_OK;
#endif
  nifti_image *tmp = NULL;
  znzFile fp = nifti_image_open(path, "rb", &tmp);
  if (tmp) nifti_image_free(tmp);
  if (znz_isnull(fp)) return ffdp_fail(err, FFDP_ERR_IO, "'%s': cannot open the image data", path);
  ffdp_status st = FFDP_OK;
  int nbyper = 0, swapsize = 0;
  nifti_datatype_sizes(nim->datatype, &nbyper, &swapsize);
  /* .nii: a positional seek; .nii.gz: zlib decompresses and discards up to the offset */
  if (znzseek(fp, (long)(nim->iname_offset + start * nbyper), SEEK_SET) < 0) {
    st = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': data offset %lld is past the end of the file", path, (long long)nim->iname_offset);
  }
  const int swap = nim->byteorder != nifti_short_order();
  const int64_t chunk = 1 << 20;
  char *buf = st ? NULL : malloc((size_t)(chunk * nbyper));
  float *vals = st || dst ? NULL : malloc((size_t)chunk * sizeof(float));
  if (!st && (!buf || (!dst && !vals))) st = ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory reading '%s'", path);
  for (int64_t i0 = 0; !st && i0 < n; i0 += chunk) {
    int64_t m = n - i0 < chunk ? n - i0 : chunk;
    size_t want = (size_t)(m * nbyper);
    if (znzread(buf, 1, want, fp) != want) {
      st = ffdp_fail(err, FFDP_ERR_FORMAT, "'%s': image data is truncated or corrupt (expected %lld bytes)", path,
                     (long long)(n * nbyper));
      break;
    }
    if (swap && swapsize > 1) nifti_swap_Nbytes(m, swapsize, buf);
    ffdp_convert_to_float(buf, nim->datatype, m, nim->scl_slope, nim->scl_inter, dst ? dst + i0 : vals);
    if (!dst) sink->put(sink->ctx, i0, m, vals);
  }
  free(buf), free(vals);
  znzclose(fp);
  return st;
}

int ffdp_path_planes_cheap(const char *path) {
  if (ffdp_path_is_zarr(path) || !ffdp_path_is_gz(path)) return 1;
  ffdp_gz_index *ix = ffdp_gz_index_open(path);
  const int indexed = ix != NULL;
  ffdp_gz_index_close(ix);
  return indexed;
}

ffdp_status ffdp_volume_load(const char *path, ffdp_volume **out, ffdp_error *err) {
  return ffdp_volume_load_planes(path, 0, -1, out, err);
}

static ffdp_status load_planes(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_value_range *r,
                               ffdp_error *err) {
  if (ffdp_path_is_zarr(path)) {
    ffdp_status zs = ffdp_zarr_load_planes(path, z0, z1, out, err);
    if (!zs && r) r->nonfinite = ffdp_volume_range(*out, &r->lo, &r->hi);
    return zs;
  }
  *out = NULL;
  nifti_image *nim;
  ffdp_mat4 w;
  ffdp_status s = open_checked(path, 1, &nim, &w, err);
  if (s) return s;
  if (z1 < 0) z1 = nim->dim[3];
  ffdp_volume *v = NULL;
  if (z0 < 0 || z1 > nim->dim[3] || z0 >= z1) {
    s = ffdp_fail(err, FFDP_ERR_INVALID, "'%s': planes [%lld, %lld) are outside the image's %lld planes", path,
                  (long long)z0, (long long)z1, (long long)nim->dim[3]);
    goto done;
  }
  const int64_t dim[3] = {nim->dim[1], nim->dim[2], z1 - z0}, plane = dim[0] * dim[1];
  for (int a = 0; a < 3; a++) w.m[a][3] += w.m[a][2] * (double)z0; /* plane z0 becomes voxel 0 */
  if ((s = ffdp_volume_create(dim, 1, w, &v, err)) ||
      (s = read_converted(nim, path, z0 * plane, dim[2] * plane, v->data, r, err)))
    goto done;
  v->source_dtype = nim->datatype;
  *out = v;
  v = NULL;
done:
  ffdp_volume_free(v);
  nifti_image_free(nim);
  return s;
}

ffdp_status ffdp_volume_load_planes(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err) {
  return load_planes(path, z0, z1, out, NULL, err);
}

ffdp_status ffdp_volume_load_ranged(const char *path, ffdp_volume **out, ffdp_value_range *r, ffdp_error *err) {
  return load_planes(path, 0, -1, out, r, err);
}

ffdp_status ffdp_volume_load_share(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err) {
  return ffdp_volume_load_share_ranged(path, z0, z1, out, NULL, err);
}

ffdp_status ffdp_volume_load_share_ranged(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_value_range *r,
                                          ffdp_error *err) {
  *out = NULL;
  if (r) r->lo = INFINITY, r->hi = -INFINITY, r->nonfinite = 0; /* an empty share */
  ffdp_mat4 w;
  ffdp_status s;
  if (ffdp_path_is_zarr(path)) { /* chunks decode into a volume of their own: copied into place */
    int64_t dim[3];
    ffdp_volume *part = NULL;
    s = ffdp_volume_probe(path, dim, &w, err);
    if (!s && z1 > z0) s = load_planes(path, z0, z1, &part, r, err);
    if (!s) s = ffdp_volume_create(dim, 1, w, out, err); /* calloc: pages stay unmapped until written */
    if (!s && part) {
      memcpy((*out)->data + z0 * dim[0] * dim[1], part->data, (size_t)ffdp_volume_nvox(part) * sizeof(float));
      (*out)->source_dtype = part->source_dtype;
    }
    ffdp_volume_free(part);
    return s;
  }
  nifti_image *nim;
  if ((s = open_checked(path, 1, &nim, &w, err))) return s;
  const int64_t dim[3] = {nim->dim[1], nim->dim[2], nim->dim[3]}, plane = dim[0] * dim[1];
  if (z0 < 0 || z1 > dim[2] || z0 > z1)
    s = ffdp_fail(err, FFDP_ERR_INVALID, "'%s': planes [%lld, %lld) are outside the image's %lld planes", path,
                  (long long)z0, (long long)z1, (long long)dim[2]);
  if (!s) s = ffdp_volume_create(dim, 1, w, out, err); /* calloc: pages stay unmapped until written */
  if (!s && z1 > z0) s = read_converted(nim, path, z0 * plane, (z1 - z0) * plane, (*out)->data + z0 * plane, r, err);
  if (!s) (*out)->source_dtype = nim->datatype;
  else ffdp_volume_free(*out), *out = NULL;
  nifti_image_free(nim);
  return s;
}

ffdp_status ffdp_volume_probe(const char *path, int64_t dim[3], ffdp_mat4 *vox2world, ffdp_error *err) {
  if (ffdp_path_is_zarr(path)) return ffdp_zarr_probe(path, dim, vox2world, err);
  nifti_image *nim;
  ffdp_status s = open_checked(path, 1, &nim, vox2world, err);
  if (s) return s;
  for (int a = 0; a < 3; a++) dim[a] = nim->dim[a + 1];
  nifti_image_free(nim);
  return FFDP_OK;
}

typedef struct {
  float *data; /* interleaved, 3 per voxel */
  int64_t n;   /* voxels per component */
  int64_t base; /* file-order index of the read's first value */
  float sgn;   /* -1: LPS x and y to RAS */
} field_dest;

static void field_put(void *ctx, int64_t i0, int64_t m, const float *vals) {
  const field_dest *f = ctx;
#pragma omp parallel for
  for (int64_t k = 0; k < m; k++) {
    const int64_t e = f->base + i0 + k, c = e / f->n, i = e - c * f->n;
    f->data[3 * i + c] = c < 2 ? f->sgn * vals[k] : vals[k];
  }
}

ffdp_status ffdp_field_probe(const char *path, int64_t dim[3], ffdp_mat4 *vox2world, ffdp_error *err) {
  nifti_image *nim;
  ffdp_status s = open_checked(path, 3, &nim, vox2world, err);
  if (s) return s;
  for (int a = 0; a < 3; a++) dim[a] = nim->dim[a + 1];
  nifti_image_free(nim);
  return FFDP_OK;
}

ffdp_status ffdp_field_load_share(const char *path, int lps, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err) {
  *out = NULL;
  nifti_image *nim;
  ffdp_mat4 w;
  ffdp_status s = open_checked(path, 3, &nim, &w, err);
  if (s) return s;
  const int64_t dim[3] = {nim->dim[1], nim->dim[2], nim->dim[3]};
  const int64_t n = dim[0] * dim[1] * dim[2], plane = dim[0] * dim[1];
  if (z1 < 0) z1 = dim[2];
  ffdp_volume *v = NULL;
  if (z0 < 0 || z1 > dim[2] || z0 > z1) {
    s = ffdp_fail(err, FFDP_ERR_INVALID, "'%s': planes [%lld, %lld) are outside the field's %lld planes", path,
                  (long long)z0, (long long)z1, (long long)dim[2]);
    goto done;
  }
  if ((s = ffdp_volume_create(dim, 3, w, &v, err))) goto done; /* calloc: unread planes take no memory */
  /* ITK stores components planar and in LPS; ffdp keeps them interleaved and in RAS: each chunk
   * goes to its place as it is read (no planar copy: 12 B per voxel less at the peak). A share
   * is three ranges of the file, one per component. */
  field_dest fd = {v->data, n, 0, lps ? -1.0f : 1.0f};
  const value_sink sink = {field_put, &fd};
  if (z0 == 0 && z1 == dim[2]) {
    s = read_chunks(nim, path, 0, n * 3, NULL, &sink, NULL, err);
  } else {
    for (int c = 0; c < 3 && !s && z1 > z0; c++) {
      fd.base = c * n + z0 * plane;
      s = read_chunks(nim, path, fd.base, (z1 - z0) * plane, NULL, &sink, NULL, err);
    }
  }
  if (s) goto done;
  v->source_dtype = nim->datatype;
  *out = v;
  v = NULL;
done:
  ffdp_volume_free(v);
  nifti_image_free(nim);
  return s;
}

ffdp_status ffdp_field_load(const char *path, int lps, ffdp_volume **out, ffdp_error *err) {
  return ffdp_field_load_share(path, lps, 0, -1, out, err);
}
