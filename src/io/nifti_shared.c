/* NIfTI files written by ranks together (see nifti_shared.h). Every step that another rank
 * depends on (the file existing, every member's size, every copy done) ends in an agreement,
 * so a rank that fails stops the others instead of leaving them waiting or a file half made. */
#define _GNU_SOURCE /* copy_file_range */
#include "io/nifti_shared.h"
#include "io/nifti_common.h"
#include "io/convert.h"
#include "io/gzip_parallel.h"
#include "io/file_sync.h"
#include "core/comm_internal.h"
#include "core/err.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ffdp_shared_nifti {
  const ffdp_comm *c;
  char path[4096], tmp[4160], part[4200]; /* the target, the file being assembled, this rank's members */
  int gz, fd, dtype, nbyper, nseg, ok, err_no;
  int64_t P, nz, z0, z1;
  unsigned char hdr[544];
  size_t hdr_size;
  off_t cursor;          /* .nii: where the next value goes */
  FILE *pf;              /* .nii.gz: this rank's part file... */
  ffdp_gzip_writer *g;   /* ...the member being deflated into it */
  long seg_start;
  int comp;
  double seg_len[3];     /* bytes of each of this rank's members */
  unsigned char *buf;    /* converted values */
  size_t cap;
  size_t wb_pending;     /* .nii: bytes since the last write-out start (file_sync.h) */
};

static void fail_io(ffdp_shared_nifti *s) {
  if (s->ok) s->err_no = errno ? errno : EIO;
  s->ok = 0;
}

static int pwrite_all(int fd, const unsigned char *p, size_t n, off_t at) {
  while (n > 0) {
    ssize_t k = pwrite(fd, p, n, at);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return 0;
    p += k, n -= (size_t)k, at += k;
  }
  return 1;
}

static ffdp_status io_error(ffdp_shared_nifti *s, ffdp_error *err) {
  return ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s': %s", s->path, strerror(s->err_no ? s->err_no : EIO));
}

ffdp_status ffdp_shared_nifti_open(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, int dtype,
                                   ffdp_nifti_version ver, int as_field, const ffdp_comm *comm, int64_t z0, int64_t z1,
                                   ffdp_shared_nifti **out, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  *out = NULL;
  ffdp_shared_nifti *s = calloc(1, sizeof *s);
  if (s) s->fd = -1; /* nothing open yet (0 is stdin) */
  ffdp_status st = s ? FFDP_OK : ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory opening '%s'", path);
  if (!st && strlen(path) >= sizeof s->path) st = ffdp_fail(err, FFDP_ERR_INVALID, "output path too long: '%s'", path);
  if (!st)
    st = ffdp_nifti_make_header(path, dim, vox2world, dtype, ver, as_field, s->hdr, &s->hdr_size, &s->nbyper, err);
  /* one name for every rank: rank 0's process id */
  double pid = c->rank == 0 ? (double)getpid() : 0.0;
  c->sum(c, &pid, 1);
  if (!st) {
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->tmp, sizeof s->tmp, "%s.tmp-%.0f", path, pid);
    snprintf(s->part, sizeof s->part, "%s.part%d", s->tmp, c->rank);
    s->c = c, s->gz = ffdp_path_is_gz(path), s->fd = -1, s->dtype = dtype, s->nseg = as_field ? 3 : 1, s->ok = 1;
    s->P = dim[0] * dim[1], s->nz = dim[2], s->z0 = z0, s->z1 = z1;
    if (s->gz) { /* members go to a part file of this rank's own */
      if (!(s->pf = fopen(s->part, "wb"))) st = ffdp_fail(err, FFDP_ERR_IO, "cannot write '%s': %s", s->part, strerror(errno));
    } else if (c->rank == 0) { /* the whole file, sized, before the others open it */
      const off_t total = (off_t)s->hdr_size + (off_t)(s->nseg * s->nz * s->P) * s->nbyper;
      s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (s->fd < 0 || !pwrite_all(s->fd, s->hdr, s->hdr_size, 0) || ftruncate(s->fd, total) != 0)
        st = ffdp_fail(err, FFDP_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
  }
  if (!(st = c->agree(c, st, err)) && s->fd < 0 && !s->gz && (s->fd = open(s->tmp, O_WRONLY)) < 0)
    st = ffdp_fail(err, FFDP_ERR_IO, "cannot open '%s' for writing: %s", s->tmp, strerror(errno));
  if ((st = c->agree(c, st, err))) {
    if (s) {
      if (s->fd >= 0) close(s->fd);
      if (s->pf) fclose(s->pf), unlink(s->part);
      if (c->rank == 0 && s->tmp[0]) unlink(s->tmp);
      free(s);
    }
    return st;
  }
  *out = s;
  return FFDP_OK;
}

void ffdp_shared_nifti_begin(ffdp_shared_nifti *s, int comp) {
  s->comp = comp;
  s->cursor = (off_t)s->hdr_size + (off_t)((comp * s->nz + s->z0) * s->P) * s->nbyper;
  if (!s->gz || !s->ok || s->z1 <= s->z0) return; /* no planes: no member */
  s->seg_start = ftell(s->pf);
  /* the single writer's levels */
  if (!(s->g = ffdp_gzip_open(s->pf, s->nseg == 3 ? ffdp_gz_field_level() : FFDP_GZ_IMAGE_LEVEL))) errno = ENOMEM, fail_io(s);
}

int ffdp_shared_nifti_put(ffdp_shared_nifti *s, const float *vals, int64_t n) {
  const int64_t chunk = 1 << 22;
  for (int64_t i0 = 0; s->ok && i0 < n; i0 += chunk) {
    const int64_t m = n - i0 < chunk ? n - i0 : chunk;
    const size_t bytes = (size_t)m * (size_t)s->nbyper;
    if (s->cap < bytes) {
      free(s->buf);
      s->cap = 0;
      if (!(s->buf = malloc(bytes))) {
        errno = ENOMEM, fail_io(s);
        break;
      }
      s->cap = bytes;
    }
#pragma omp parallel for schedule(static) if (m >= 65536)
    for (int64_t i = 0; i < m; i++) ffdp_store_value(vals[i0 + i], s->dtype, s->buf, i);
    if (s->gz ? !ffdp_gzip_write(s->g, s->buf, bytes) : !pwrite_all(s->fd, s->buf, bytes, s->cursor)) fail_io(s);
    else if (!s->gz) ffdp_file_writeback(s->fd, bytes, &s->wb_pending);
    s->cursor += (off_t)bytes;
  }
  return s->ok;
}

void ffdp_shared_nifti_end(ffdp_shared_nifti *s) {
  if (!s->g) return;
  if (!ffdp_gzip_close(s->g)) fail_io(s);
  s->g = NULL;
  if (s->ok && fflush(s->pf) != 0) fail_io(s);
  s->seg_len[s->comp] = (double)(ftell(s->pf) - s->seg_start);
}

/* len bytes of the part file from `from` into fd at `to`. */
static int copy_range(int src, off_t from, int fd, off_t to, size_t len) {
  while (len > 0) { /* the kernel copies (or shares the blocks) where it can */
    ssize_t k = copy_file_range(src, &from, fd, &to, len, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    len -= (size_t)k;
  }
  unsigned char *b = len ? malloc(1 << 22) : NULL;
  if (len && !b) return 0;
  while (len > 0) {
    ssize_t k = pread(src, b, len < (1u << 22) ? len : (1u << 22), from);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0 || !pwrite_all(fd, b, (size_t)k, to)) break;
    len -= (size_t)k, from += k, to += k;
  }
  free(b);
  return len == 0;
}

/* .nii.gz: the header as the first member (rank 0), then every rank's members copied in
 * order: segment by segment, rank by rank. */
static ffdp_status assemble(ffdp_shared_nifti *s, ffdp_error *err) {
  const ffdp_comm *c = s->c;
  const int n = c->size * s->nseg + 1;
  double *len = calloc((size_t)n, sizeof *len);
  ffdp_status st = c->agree(c, len ? FFDP_OK : ffdp_fail(err, FFDP_ERR_NOMEM, "out of memory writing '%s'", s->path), err);
  if (st) {
    free(len);
    return st;
  }
  if (c->rank == 0) {
    FILE *f = fopen(s->tmp, "wb");
    ffdp_gzip_writer *g = f ? ffdp_gzip_open(f, s->nseg == 3 ? ffdp_gz_field_level() : FFDP_GZ_IMAGE_LEVEL) : NULL;
    int ok = g && ffdp_gzip_write(g, s->hdr, s->hdr_size);
    ok = (g && ffdp_gzip_close(g)) && ok;
    len[0] = f ? (double)ftell(f) : 0;
    ok = f && fflush(f) == 0 && ok;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) st = ffdp_fail(err, FFDP_ERR_IO, "cannot write '%s': %s", s->path, strerror(errno ? errno : EIO));
  }
  for (int k = 0; k < s->nseg; k++) len[1 + k * c->size + c->rank] = s->seg_len[k];
  c->sum(c, len, n); /* byte counts: exact in doubles */
  if ((st = c->agree(c, st, err))) {
    free(len);
    return st;
  }
  int fd = open(s->tmp, O_WRONLY), src = open(s->part, O_RDONLY), ok = fd >= 0 && src >= 0;
  double at = 0, from = 0;
  size_t pending = 0;
  for (int i = 0; i < n; i++) { /* entry 1 + k * size + r: rank r's member of segment k */
    if (ok && i > 0 && (i - 1) % c->size == c->rank && len[i] > 0) {
      ok = copy_range(src, (off_t)from, fd, (off_t)at, (size_t)len[i]);
      if (ok) ffdp_file_writeback(fd, (size_t)len[i], &pending);
      from += len[i];
    }
    at += len[i];
  }
  if (ok && ffdp_file_sync(fd) != 0) ok = 0;
  if (!ok) st = ffdp_fail(err, FFDP_ERR_IO, "failed writing '%s': %s", s->path, strerror(errno ? errno : EIO));
  if (fd >= 0) close(fd);
  if (src >= 0) close(src);
  free(len);
  return c->agree(c, st, err);
}

ffdp_status ffdp_shared_nifti_close(ffdp_shared_nifti *s, int ok, ffdp_error *err) {
  const ffdp_comm *c = s->c;
  if (s->g) ffdp_shared_nifti_end(s);
  if (!ok && s->ok) s->ok = 0, s->err_no = ECANCELED;
  if (s->fd >= 0) {
    if (s->ok && ffdp_file_sync(s->fd) != 0) fail_io(s);
    if (close(s->fd) != 0) fail_io(s);
  }
  if (s->pf && fclose(s->pf) != 0) fail_io(s);
  s->pf = NULL, s->fd = -1;
  ffdp_status st = s->ok ? FFDP_OK : !ok ? ffdp_fail(err, FFDP_ERR_IO, "'%s' was not completed", s->path) : io_error(s, err);
  st = c->agree(c, st, err);
  if (!st && s->gz) st = assemble(s, err);
  if (s->gz) unlink(s->part);
  if (c->rank == 0) { /* in place, or gone */
    if (!st && rename(s->tmp, s->path) != 0) st = ffdp_fail(err, FFDP_ERR_IO, "cannot move '%s' into place: %s", s->path, strerror(errno));
    if (st) unlink(s->tmp);
  }
  st = c->agree(c, st, err);
  free(s->buf), free(s);
  return st;
}
