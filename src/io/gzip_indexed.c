/* Reading ranges of indexed gzip files (gzip_parallel.h): the members' headers give their sizes,
 * so the members before a range are skipped unread and the ones in it inflate in parallel. */
#include "io/gzip_parallel.h"
#include <fcntl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef FFDP_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

typedef struct {
  int64_t off, csize, raw0, rsize; /* file offset, member bytes, first uncompressed byte, its bytes */
} gz_member;

static uint32_t rd32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int pread_all(int fd, void *buf, size_t n, off_t at) {
  unsigned char *p = buf;
  while (n > 0) {
    ssize_t k = pread(fd, p, n, at);
    if (k <= 0) return 0;
    p += k, n -= (size_t)k, at += k;
  }
  return 1;
}

/* The members of the file, or 0 when any header lacks the index field. */
static int64_t index_members(int fd, int64_t size, gz_member **out) {
  int64_t n = 0, cap = 0, off = 0, raw = 0;
  gz_member *m = NULL;
  while (off < size) {
    unsigned char h[FFDP_GZ_HEADER];
    if (size - off < FFDP_GZ_HEADER + 8 || !pread_all(fd, h, sizeof h, (off_t)off)) break;
    const int ok = h[0] == 0x1f && h[1] == 0x8b && h[2] == 8 && h[3] == 4 && h[10] == 12 && h[11] == 0 && h[12] == 'F' &&
                   h[13] == 'D' && h[14] == 8 && h[15] == 0;
    const int64_t cs = ok ? rd32(h + 16) : 0, rs = ok ? rd32(h + 20) : 0;
    if (!ok || cs < FFDP_GZ_HEADER + 8 || off + cs > size) break;
    if (n == cap) {
      gz_member *t = realloc(m, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *m);
      if (!t) break;
      m = t;
    }
    m[n++] = (gz_member){off, cs, raw, rs};
    off += cs, raw += rs;
  }
  if (off != size || n == 0) {
    free(m);
    return 0;
  }
  *out = m;
  return n;
}

/* Inflate one member (in: its bytes) into out (its rsize bytes); CRC and size checked. */
static int inflate_member(void *dec, const unsigned char *in, int64_t cs, unsigned char *out, int64_t rs) {
#ifdef FFDP_HAVE_LIBDEFLATE
  size_t got = 0;
  return dec && libdeflate_gzip_decompress(dec, in, (size_t)cs, out, (size_t)rs, &got) == LIBDEFLATE_SUCCESS &&
         got == (size_t)rs;
#else
  (void)dec;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (inflateInit2(&zs, 16 + 15) != Z_OK) return 0; /* gzip wrapper: the CRC is checked */
  zs.next_in = (unsigned char *)in, zs.avail_in = (uInt)cs;
  zs.next_out = out, zs.avail_out = (uInt)rs;
  const int rc = inflate(&zs, Z_FINISH);
  const int ok = rc == Z_STREAM_END && zs.avail_out == 0;
  inflateEnd(&zs);
  return ok;
#endif
}

struct ffdp_gz_index {
  int fd;
  int64_t nm, raw; /* members, uncompressed bytes */
  gz_member *m;
};

ffdp_gz_index *ffdp_gz_index_open(const char *path) {
  int fd = open(path, O_RDONLY);
  struct stat sb;
  if (fd < 0) return NULL;
  gz_member *m = NULL;
  const int64_t nm = fstat(fd, &sb) == 0 ? index_members(fd, (int64_t)sb.st_size, &m) : 0;
  ffdp_gz_index *ix = nm > 0 ? malloc(sizeof *ix) : NULL;
  if (!ix) {
    free(m);
    close(fd);
    return NULL;
  }
  ix->fd = fd, ix->nm = nm, ix->m = m, ix->raw = m[nm - 1].raw0 + m[nm - 1].rsize;
  return ix;
}

void ffdp_gz_index_close(ffdp_gz_index *ix) {
  if (!ix) return;
  close(ix->fd);
  free(ix->m), free(ix);
}

int ffdp_gz_index_read(const ffdp_gz_index *ix, int64_t off, int64_t n, void *dst) {
  const gz_member *m = ix->m;
  const int fd = ix->fd;
  int64_t a = 0, b = ix->nm; /* the members overlapping [off, off + n) */
  while (a < b && m[a].raw0 + m[a].rsize <= off) a++;
  while (b > a && m[b - 1].raw0 >= off + n) b--;
  int ok = off >= 0 && n >= 0 && off + n <= ix->raw;
#pragma omp parallel if (b - a > 1)
  {
    unsigned char *in = NULL, *out = NULL;
    int64_t cin = 0, cout = 0;
#ifdef FFDP_HAVE_LIBDEFLATE
    struct libdeflate_decompressor *dec = libdeflate_alloc_decompressor();
#else
    void *dec = NULL;
#endif
#pragma omp for schedule(dynamic, 1)
    for (int64_t k = a; k < b; k++) {
      int going;
#pragma omp atomic read
      going = ok;
      if (!going) continue;
      const gz_member *g = &m[k];
      if (g->csize > cin) free(in), in = malloc((size_t)(cin = g->csize));
      if (g->rsize > cout) free(out), out = malloc((size_t)(cout = g->rsize > 0 ? g->rsize : 1));
      int good = in && out && pread_all(fd, in, (size_t)g->csize, (off_t)g->off) &&
                 inflate_member(dec, in, g->csize, out, g->rsize);
      if (good) { /* the part of this member inside the range */
        const int64_t lo = off > g->raw0 ? off : g->raw0, hi = off + n < g->raw0 + g->rsize ? off + n : g->raw0 + g->rsize;
        if (hi > lo) memcpy((unsigned char *)dst + (lo - off), out + (lo - g->raw0), (size_t)(hi - lo));
      } else {
        cin = cout = 0;
#pragma omp atomic write
        ok = 0;
      }
    }
#ifdef FFDP_HAVE_LIBDEFLATE
    if (dec) libdeflate_free_decompressor(dec);
#endif
    free(in), free(out);
  }
  return ok;
}

int ffdp_gz_read_range(const char *path, int64_t off, int64_t n, void *dst) {
  ffdp_gz_index *ix = ffdp_gz_index_open(path);
  const int ok = ix && ffdp_gz_index_read(ix, off, n, dst);
  ffdp_gz_index_close(ix);
  return ok;
}
