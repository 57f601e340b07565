/* NIfTI writing. The header comes from the reference library (nifti_convert_nim2n*hdr); the
 * bytes go through our own checked stream so that every failure (full disk, unwritable
 * directory, gzip error) is reported, and the file appears only complete, by rename. */
#include "io/nifti_common.h"
#include "io/convert.h"
#include "io/gzip_parallel.h"
#include "io/file_sync.h"
#include "io/zarr.h"
#include "io/nifti_shared.h"
#include "core/err.h"
#include "core/volume_internal.h"
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  FILE *f;
  ffdp_gzip_writer *g; /* .nii.gz: compresses into f */
  const char *path;    /* final path, for messages */
  size_t wb_pending;   /* uncompressed files: bytes since the last write-out start (file_sync.h) */
} out_stream;

static int stream_write(out_stream *o, const void *buf, size_t n) {
  if (o->g) return ffdp_gzip_write(o->g, buf, n);
  if (fwrite(buf, 1, n, o->f) != n) return 0;
  ffdp_file_writeback(fileno(o->f), n, &o->wb_pending);
  return 1;
}

static int stream_close(out_stream *o) {
  int ok = o->g ? ffdp_gzip_close(o->g) : 1;
  ok = ok && fflush(o->f) == 0 && ffdp_file_sync(fileno(o->f)) == 0;
  return (fclose(o->f) == 0) && ok;
}

/* Fill the geometry fields of nim from the voxel-to-world matrix: sform exactly, qform as
 * the closest rigid+scale representation (both codes set, as the brief asks). */
static void set_geometry(nifti_image *nim, ffdp_mat4 w) {
  memcpy(nim->sto_xyz.m, w.m, sizeof w.m);
  nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
  nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
  double dx, dy, dz;
  nifti_dmat44_to_quatern(nim->sto_xyz, &nim->quatern_b, &nim->quatern_c, &nim->quatern_d,
                          &nim->qoffset_x, &nim->qoffset_y, &nim->qoffset_z, &dx, &dy, &dz, &nim->qfac);
  nim->dx = nim->pixdim[1] = dx;
  nim->dy = nim->pixdim[2] = dy;
  nim->dz = nim->pixdim[3] = dz;
  nim->qto_xyz = nifti_quatern_to_dmat44(nim->quatern_b, nim->quatern_c, nim->quatern_d, nim->qoffset_x,
                                         nim->qoffset_y, nim->qoffset_z, dx, dy, dz, nim->qfac);
  nim->xyz_units = NIFTI_UNITS_MM;
}

ffdp_status ffdp_nifti_make_header(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, int dtype,
                                   ffdp_nifti_version ver, int as_field, unsigned char hdr[544], size_t *hdr_size,
                                   int *nbyper, ffdp_error *err) {
  if (!ffdp_path_is_nifti(path))
    return ffdp_fail(err, FFDP_ERR_INVALID, "output '%s' must end in .nii or .nii.gz", path);
  const int64_t total = dim[0] * dim[1] * dim[2] * (as_field ? 3 : 1);
  int too_big_n1 = total > FFDP_NIFTI1_MAX_VOX;
  for (int i = 0; i < 3; i++) too_big_n1 |= dim[i] > FFDP_NIFTI1_MAX_DIM;
  if (ver == FFDP_NIFTI_1 && too_big_n1)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "'%s': %lld voxels do not fit NIfTI-1 (limit 2^31-1, 32767 per axis); write NIfTI-2",
                     path, (long long)total);
  int use_n2 = ver == FFDP_NIFTI_2 || (ver == FFDP_NIFTI_AUTO && too_big_n1), sw;
  *nbyper = 0;
  nifti_datatype_sizes(dtype, nbyper, &sw);
  if (*nbyper == 0) return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': unsupported output voxel type code %d", path, dtype);
  int64_t dims[8] = {3, dim[0], dim[1], dim[2], 1, 1, 1, 1};
  if (as_field) dims[0] = 5, dims[5] = 3;
  nifti_set_debug_level(0);
  nifti_image *nim = nifti_make_new_nim(dims, dtype, 0);
  if (!nim) return ffdp_fail(err, FFDP_ERR_NOMEM, "cannot build a NIfTI header for '%s'", path);
  set_geometry(nim, vox2world);
  if (as_field) {
    nim->intent_code = NIFTI_INTENT_VECTOR;
    snprintf(nim->intent_name, sizeof nim->intent_name, "%s", "displacement");
  }
  snprintf(nim->descrip, sizeof nim->descrip, "ffdp %s", "0.1.0");
  nim->nifti_type = use_n2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
  nim->iname_offset = use_n2 ? 544 : 352;
  memset(hdr, 0, 544); /* bytes past the header: the 4-byte "no extension" flag */
  int bad_hdr;
  if (use_n2) {
    nifti_2_header h2;
    bad_hdr = nifti_convert_nim2n2hdr(nim, &h2);
    memcpy(hdr, &h2, sizeof h2);
    *hdr_size = 544;
  } else {
    nifti_1_header h1;
    bad_hdr = nifti_convert_nim2n1hdr(nim, &h1);
    memcpy(hdr, &h1, sizeof h1);
    *hdr_size = 352;
  }
  nifti_image_free(nim);
  return bad_hdr ? ffdp_fail(err, FFDP_ERR_INVALID, "cannot encode a NIfTI header for '%s'", path) : FFDP_OK;
}

/* A temporary file next to path, as a stream (gzip at `level` for .nii.gz); *tmp names it. */
static ffdp_status open_temp(const char *path, int level, out_stream *o, char **tmp, ffdp_error *err) {
  size_t plen = strlen(path);
  *tmp = malloc(plen + 16);
  if (!*tmp) return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory");
  snprintf(*tmp, plen + 16, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(*tmp);
  if (fd < 0) {
    ffdp_status s = ffdp_fail(err, FFDP_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    free(*tmp);
    *tmp = NULL;
    return s;
  }
  fchmod(fd, 0644);
  memset(o, 0, sizeof *o);
  o->path = path;
  o->f = fdopen(fd, "wb");
  if (o->f && ffdp_path_is_gz(path) && !(o->g = ffdp_gzip_open(o->f, level))) errno = ENOMEM;
  if (o->g) ffdp_gzip_writeback(o->g);
  if (o->f && (o->g || !ffdp_path_is_gz(path))) return FFDP_OK;
  if (o->f) fclose(o->f);
  else close(fd);
  unlink(*tmp);
  free(*tmp);
  *tmp = NULL;
  return ffdp_fail(err, FFDP_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
}

/* Close the stream and, if everything was written, move the temporary file into place;
 * otherwise remove it. Frees tmp. */
static ffdp_status finish(out_stream *o, char *tmp, const char *path, int ok, ffdp_error *err) {
  int saved_errno = errno;
  if (o->f) ok = stream_close(o) && ok;
  if (ok && rename(tmp, path) != 0) {
    saved_errno = errno;
    ok = 0;
  }
  if (!ok) unlink(tmp);
  free(tmp);
  if (ok) return FFDP_OK;
  return ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s': %s", path, saved_errno ? strerror(saved_errno) : "write error");
}

/* Component c of the vector at p as a warp file stores it: mapped by T (NULL: as is). */
static inline double field_component(const float *p, const double T[3][3], int c) {
  return T ? T[c][0] * p[0] + T[c][1] * p[1] + T[c][2] * p[2] : p[c];
}

/* The data of a written volume as ffdp_gzip_write_fn makes it: v's values in file order
 * (fields planar: component slowest), each vector of a field mapped by T (NULL: identity) and
 * given the LPS signs. The data start at a multiple of the value size (hdr_size), and blocks
 * are whole multiples of it, so every range holds whole values. */
typedef struct {
  const ffdp_volume *v;
  const double (*T)[3];
  int dtype, nbyper, as_field, lps;
} file_values;

static void fill_values(void *ctx, size_t off, size_t len, unsigned char *dst) {
  const file_values *fv = ctx;
  const int64_t e0 = (int64_t)(off / (size_t)fv->nbyper), e1 = (int64_t)((off + len) / (size_t)fv->nbyper);
  if (!fv->as_field) {
    for (int64_t e = e0; e < e1; e++) ffdp_store_value(fv->v->data[e], fv->dtype, dst, e - e0);
    return;
  }
  const int64_t n = ffdp_volume_nvox(fv->v);
  for (int64_t e = e0; e < e1;) { /* component by component */
    const int64_t c = e / n, stop = (c + 1) * n < e1 ? (c + 1) * n : e1;
    const double sgn = fv->lps && c < 2 ? -1.0 : 1.0;
    const float *p = fv->v->data + 3 * (e - c * n);
    if (fv->dtype == DT_FLOAT32) { /* the fields' type, inline: ffdp_store_value's (float) of the same double */
      float *o = (float *)dst;
      for (int64_t j = e; j < stop; j++, p += 3) o[j - e0] = (float)(sgn * field_component(p, fv->T, (int)c));
    } else {
      for (int64_t j = e; j < stop; j++, p += 3) ffdp_store_value(sgn * field_component(p, fv->T, (int)c), fv->dtype, dst, j - e0);
    }
    e = stop;
  }
}

/* Header + data of v; values are converted in chunks so no second full-size copy exists (into
 * .nii.gz: by the threads that deflate them, ffdp_gzip_write_fn). Fields: each vector is
 * mapped by T (NULL: identity) before the LPS signs. */
static ffdp_status write_nifti(const ffdp_volume *v, const char *path, int dtype, ffdp_nifti_version ver,
                               int as_field, int lps, const double T[3][3], ffdp_error *err) {
  unsigned char hdr[544];
  size_t hdr_size;
  int nbyper;
  ffdp_status st = ffdp_nifti_make_header(path, v->dim, v->vox2world, dtype, ver, as_field, hdr, &hdr_size, &nbyper, err);
  out_stream o;
  char *tmp = NULL;
  if (st || (st = open_temp(path, as_field ? ffdp_gz_field_level() : FFDP_GZ_IMAGE_LEVEL, &o, &tmp, err))) return st;
  const int64_t n = ffdp_volume_nvox(v), total = n * v->ncomp, chunk = 1 << 22;
  if (o.g && hdr_size % (size_t)nbyper == 0 && FFDP_GZ_BLOCK % nbyper == 0) {
    const file_values fv = {v, T, dtype, nbyper, as_field, lps};
    int ok = stream_write(&o, hdr, hdr_size) && ffdp_gzip_write_fn(o.g, (size_t)total * nbyper, fill_values, (void *)&fv);
    return finish(&o, tmp, path, ok, err);
  }
  void *buf = malloc((size_t)chunk * nbyper);
  int ok = buf && stream_write(&o, hdr, hdr_size);
  /* Vector fields go out planar (component slowest) as ITK expects; scalars in order. */
  for (int c = 0; ok && c < (as_field ? 3 : 1); c++) {
    const double sgn = (as_field && lps && c < 2) ? -1.0 : 1.0;
    for (int64_t i0 = 0; ok && i0 < (as_field ? n : total); i0 += chunk) {
      int64_t m = (as_field ? n : total) - i0;
      if (m > chunk) m = chunk;
      /* converted on every thread: one thread took ~20 s for a gigavoxel warp, the disk ~3 */
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < m; i++) {
        const float *p = v->data + (as_field ? 3 * (i0 + i) : i0 + i);
        double x = !as_field ? p[0] : field_component(p, T, c);
        ffdp_store_value(sgn * x, dtype, buf, i);
      }
      ok = stream_write(&o, buf, (size_t)(m * nbyper));
    }
  }
  free(buf);
  return finish(&o, tmp, path, ok, err);
}

/* Planes are converted in the caller's thread into one of two block buffers and written by a
 * background thread while the caller produces the next block: warping or resampling the next
 * planes overlaps the disk (or the gzip threads) instead of waiting for them. A write failure
 * is reported by the next put or by close. */
struct ffdp_plane_writer {
  out_stream o;
  char *tmp, *path;
  int64_t dim[3], next; /* planes converted so far */
  int dtype, nbyper;
  unsigned char *blk[2];
  size_t cap[2];        /* buffer sizes */
  const unsigned char *wblk;
  size_t len;           /* the block being written in the background and its bytes */
  int cur, busy, bg_ok; /* buffer to fill next; a background write in flight and its result */
  int bg_errno;
  pthread_t thr;
  ffdp_zarr_writer *zw; /* a .zarr path: the store's own writer does the rest */
  ffdp_shared_nifti *sn; /* ranks writing one file: this rank's planes [next, z1) go there */
  int64_t z1;
};

static void *plane_writer_bg(void *arg) {
  ffdp_plane_writer *w = arg;
  w->bg_ok = stream_write(&w->o, w->wblk, w->len);
  w->bg_errno = w->bg_ok ? 0 : errno;
  return NULL;
}

/* Waits for the block in flight; 0 when it failed (errno set). */
static int plane_writer_wait(ffdp_plane_writer *w) {
  if (!w->busy) return 1;
  pthread_join(w->thr, NULL);
  w->busy = 0;
  if (!w->bg_ok) errno = w->bg_errno;
  return w->bg_ok;
}

ffdp_status ffdp_plane_writer_open(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                                   ffdp_nifti_version ver, ffdp_plane_writer **out, ffdp_error *err) {
  *out = NULL;
  for (int a = 0; a < 3; a++)
    if (dim[a] < 1) return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': dimension %d is %lld", path, a, (long long)dim[a]);
  if (ffdp_path_is_zarr(path)) { /* OME-Zarr: chunk rows written as they complete */
    ffdp_plane_writer *w = calloc(1, sizeof *w);
    if (!w) return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory opening '%s'", path);
    ffdp_status st = ffdp_zarr_writer_open(path, dim, vox2world, dtype, NULL, &w->zw, err);
    if (st) free(w);
    else *out = w;
    return st;
  }
  unsigned char hdr[544];
  size_t hdr_size;
  int nbyper;
  ffdp_status st = ffdp_nifti_make_header(path, dim, vox2world, (int)dtype, ver, 0, hdr, &hdr_size, &nbyper, err);
  if (st) return st;
  ffdp_plane_writer *w = calloc(1, sizeof *w);
  if (w) w->path = strdup(path);
  if (!w || !w->path) {
    if (w) free(w->path), free(w);
    return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory opening '%s'", path);
  }
  memcpy(w->dim, dim, sizeof w->dim);
  w->dtype = (int)dtype, w->nbyper = nbyper;
  if ((st = open_temp(w->path, FFDP_GZ_IMAGE_LEVEL, &w->o, &w->tmp, err))) { /* scalar planes */
    free(w->path), free(w);
    return st;
  }
  if (!stream_write(&w->o, hdr, hdr_size)) {
    ffdp_plane_writer_abort(w);
    return ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s': %s", path, strerror(errno));
  }
  *out = w;
  return FFDP_OK;
}

static void plane_writer_free(ffdp_plane_writer *w) {
  free(w->path), free(w->blk[0]), free(w->blk[1]), free(w);
}

ffdp_status ffdp_plane_writer_open_shared(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                                          ffdp_nifti_version ver, const ffdp_comm *comm, ffdp_plane_writer **out,
                                          ffdp_error *err) {
  *out = NULL;
  if (ffdp_comm_size(comm) < 2) return ffdp_plane_writer_open(path, dim, vox2world, dtype, ver, out, err);
  ffdp_status st = FFDP_OK;
  for (int a = 0; a < 3 && !st; a++)
    if (dim[a] < 1) st = ffdp_fail(err, FFDP_ERR_INVALID, "'%s': dimension %d is %lld", path, a, (long long)dim[a]);
  ffdp_plane_writer *w = st ? NULL : calloc(1, sizeof *w);
  if (w) w->path = strdup(path);
  if (!st && (!w || !w->path)) st = ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory opening '%s'", path);
  if ((st = ffdp_comm_agree(comm, st, err))) { /* every rank opens, or none */
    if (w) plane_writer_free(w);
    return st;
  }
  memcpy(w->dim, dim, sizeof w->dim);
  ffdp_comm_share(comm, dim[2], &w->next, &w->z1);
  st = ffdp_path_is_zarr(path) ? ffdp_zarr_writer_open_shared(path, dim, vox2world, dtype, NULL, comm, &w->zw, err)
                               : ffdp_shared_nifti_open(path, dim, vox2world, (int)dtype, ver, 0, comm, w->next, w->z1, &w->sn, err);
  if (st) {
    plane_writer_free(w);
    return st;
  }
  if (w->sn) ffdp_shared_nifti_begin(w->sn, 0);
  *out = w;
  return FFDP_OK;
}

ffdp_status ffdp_plane_writer_put(ffdp_plane_writer *w, const float *planes, int64_t nplanes, ffdp_error *err) {
  if (w->zw) return ffdp_zarr_writer_put(w->zw, planes, nplanes, err);
  const int64_t P = w->dim[0] * w->dim[1];
  if (w->sn) {
    if (nplanes < 0 || w->next + nplanes > w->z1)
      return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': plane %lld is past this rank's last (%lld)", w->path,
                       (long long)(w->next + nplanes), (long long)w->z1);
    w->next += nplanes;
    return ffdp_shared_nifti_put(w->sn, planes, nplanes * P) ? FFDP_OK
                                                              : ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s'", w->path);
  }
  if (nplanes < 0 || w->next + nplanes > w->dim[2])
    return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': %lld planes past the last of %lld", w->path,
                     (long long)(w->next + nplanes), (long long)w->dim[2]);
  if (nplanes == 0) return FFDP_OK;
  const size_t bytes = (size_t)(nplanes * P) * (size_t)w->nbyper;
  const int c = w->cur;
  if (w->cap[c] < bytes) {
    free(w->blk[c]);
    w->cap[c] = 0;
    if (!(w->blk[c] = malloc(bytes))) return ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory writing '%s'", w->path);
    w->cap[c] = bytes;
  }
  /* the buffer being filled is not the one the background thread writes */
  unsigned char *dst = w->blk[c];
#pragma omp parallel for schedule(static) if (nplanes * P >= 65536)
  for (int64_t i = 0; i < nplanes * P; i++) ffdp_store_value(planes[i], w->dtype, dst, i);
  if (!plane_writer_wait(w))
    return ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s': %s", w->path, strerror(errno));
  w->wblk = dst, w->len = bytes, w->cur = c ^ 1, w->next += nplanes;
  if (pthread_create(&w->thr, NULL, plane_writer_bg, w) == 0) {
    w->busy = 1;
  } else { /* no thread: write it here */
    plane_writer_bg(w);
    if (!w->bg_ok) return ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s': %s", w->path, strerror(w->bg_errno));
  }
  return FFDP_OK;
}


ffdp_status ffdp_plane_writer_close(ffdp_plane_writer *w, ffdp_error *err) {
  if (!w) return FFDP_OK;
  ffdp_status st;
  if (w->zw) {
    st = ffdp_zarr_writer_close(w->zw, err);
    free(w);
    return st;
  }
  if (w->sn) { /* collective */
    const int all = w->next == w->z1;
    ffdp_shared_nifti_end(w->sn);
    st = ffdp_shared_nifti_close(w->sn, all, err); /* fails on every rank unless all wrote all */
    plane_writer_free(w);
    return st;
  }
  const int written = plane_writer_wait(w);
  if (w->next != w->dim[2]) {
    st = ffdp_fail(err, FFDP_ERR_INVALID, "'%s': only %lld of %lld planes were written; nothing was kept", w->path,
                   (long long)w->next, (long long)w->dim[2]);
    ffdp_plane_writer_abort(w);
    return st;
  }
  st = written ? finish(&w->o, w->tmp, w->path, 1, err)
               : (finish(&w->o, w->tmp, w->path, 0, NULL),
                  ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s': %s", w->path, strerror(w->bg_errno)));
  plane_writer_free(w);
  return st;
}

void ffdp_plane_writer_abort(ffdp_plane_writer *w) {
  if (!w) return;
  if (w->zw) {
    ffdp_zarr_writer_abort(w->zw);
    free(w);
    return;
  }
  if (w->sn) { /* collective: the others learn it and nothing stays */
    ffdp_error e;
    ffdp_shared_nifti_close(w->sn, 0, &e);
    plane_writer_free(w);
    return;
  }
  plane_writer_wait(w);
  if (w->tmp) finish(&w->o, w->tmp, w->path, 0, NULL);
  plane_writer_free(w);
}

ffdp_status ffdp_volume_save(const ffdp_volume *v, const char *path, ffdp_dtype dtype, ffdp_nifti_version ver,
                             ffdp_error *err) {
  if (ffdp_path_is_zarr(path)) return ffdp_volume_save_zarr(v, path, dtype, NULL, err);
  if (v->ncomp == 3) return write_nifti(v, path, FFDP_DT_FLOAT32, ver, 1, 0, NULL, err);
  return write_nifti(v, path, (int)dtype, ver, 0, 0, NULL, err);
}

ffdp_status ffdp_field_save(const ffdp_volume *v, const char *path, int lps, ffdp_error *err) {
  return ffdp_field_save_mapped(v, NULL, path, lps, err);
}

ffdp_status ffdp_field_save_mapped(const ffdp_volume *v, const double T[3][3], const char *path, int lps, ffdp_error *err) {
  if (v->ncomp != 3) return ffdp_fail(err, FFDP_ERR_INVALID, "'%s': a displacement field needs 3 components", path);
  return write_nifti(v, path, FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, 1, lps, T, err);
}

ffdp_status ffdp_field_save_mapped_shared(const ffdp_volume *v, const double T[3][3], const char *path, int lps,
                                          const ffdp_comm *comm, ffdp_error *err) {
  if (ffdp_comm_size(comm) < 2) return ffdp_field_save_mapped(v, T, path, lps, err);
  ffdp_status st = v->ncomp == 3 ? FFDP_OK : ffdp_fail(err, FFDP_ERR_INVALID, "'%s': a displacement field needs 3 components", path);
  if ((st = ffdp_comm_agree(comm, st, err))) return st;
  int64_t z0, z1;
  ffdp_comm_share(comm, v->dim[2], &z0, &z1);
  ffdp_shared_nifti *sn;
  if ((st = ffdp_shared_nifti_open(path, v->dim, v->vox2world, FFDP_DT_FLOAT32, FFDP_NIFTI_AUTO, 1, comm, z0, z1, &sn, err)))
    return st;
  const int64_t P = v->dim[0] * v->dim[1], n = (z1 - z0) * P, chunk = 1 << 22;
  const float *src = v->data + 3 * z0 * P;
  float *buf = malloc((size_t)(n < chunk ? (n > 0 ? n : 1) : chunk) * sizeof(float));
  int ok = buf != NULL;
  if (!buf) errno = ENOMEM;
  /* component by component, as ITK stores vector images; each vector mapped by T, then the LPS signs */
  for (int c = 0; c < 3 && ok; c++) {
    const double sgn = lps && c < 2 ? -1.0 : 1.0;
    ffdp_shared_nifti_begin(sn, c);
    for (int64_t i0 = 0; ok && i0 < n; i0 += chunk) {
      const int64_t m = n - i0 < chunk ? n - i0 : chunk;
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < m; i++) {
        buf[i] = (float)(sgn * field_component(src + 3 * (i0 + i), T, c));
      }
      ok = ffdp_shared_nifti_put(sn, buf, m);
    }
    ffdp_shared_nifti_end(sn);
  }
  free(buf);
  return ffdp_shared_nifti_close(sn, ok, err); /* a failed put is known to sn too: close reports it */
}
