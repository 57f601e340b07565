/* Parallel gzip writing (see gzip_parallel.h). zlib's gzwrite deflates on one core at about
 * 30-50 MB/s on float fields, which made writing the warps of a 0.5 mm registration take
 * longer than the registration itself (two 420 MB fields: ~17 s). Members are deflated by
 * libdeflate where the build has it: about 3x zlib's speed at level 1 on warps and images, the
 * same size (DECISIONS "libdeflate for writing"); zlib otherwise. */
#include "io/gzip_parallel.h"
#include "io/file_sync.h"
#ifdef FFDP_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { BLOCK = FFDP_GZ_BLOCK };

struct ffdp_gzip_writer {
  FILE *f;
  int level, nb, ok, members; /* members written so far */
  unsigned char *in;          /* nb blocks */
  size_t fill;                /* bytes in the blocks */
  size_t cap;                 /* capacity of each output buffer (member header and trailer included) */
  unsigned char **out;
  size_t *olen;
  int wb_fd;         /* >= 0: the file's write-out is started as it grows (ffdp_gzip_writeback) */
  size_t wb_pending; /* bytes appended since the last start */
#ifdef FFDP_HAVE_LIBDEFLATE
  struct libdeflate_compressor **comp; /* one per thread, made when first needed */
  int ncomp;
#endif
};

static int put_bytes(ffdp_gzip_writer *g, const void *p, size_t n) {
  if (g->ok && n && fwrite(p, 1, n, g->f) != n) g->ok = 0;
  if (g->ok && g->wb_fd >= 0) ffdp_file_writeback(g->wb_fd, n, &g->wb_pending);
  return g->ok;
}

void ffdp_gzip_writeback(ffdp_gzip_writer *g) {
  const int fd = fileno(g->f);
  g->wb_fd = fd >= 0 ? fd : -1;
}

static void le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The raw deflate stream of src into dst (room bytes): its length, or 0 on failure. */
static size_t deflate_raw(ffdp_gzip_writer *g, const unsigned char *src, size_t len, unsigned char *dst, size_t room) {
#ifdef FFDP_HAVE_LIBDEFLATE
  /* the same compressor whatever the thread count (the bytes must not depend on it): a thread
   * beyond those counted at open gets one of its own for this member */
  const int t = omp_get_thread_num();
  struct libdeflate_compressor *own = t < g->ncomp ? NULL : libdeflate_alloc_compressor(g->level);
  if (t < g->ncomp && !g->comp[t]) g->comp[t] = libdeflate_alloc_compressor(g->level);
  struct libdeflate_compressor *c = t < g->ncomp ? g->comp[t] : own;
  const size_t n = c ? libdeflate_deflate_compress(c, src, len, dst, room) : 0;
  libdeflate_free_compressor(own);
  return n; /* 0: no memory for a compressor, or no room (cannot happen: room is the bound) */
#else
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, g->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  zs.next_in = (unsigned char *)src, zs.avail_in = (uInt)len;
  zs.next_out = dst, zs.avail_out = (uInt)room;
  const int rc = deflate(&zs, Z_FINISH);
  const size_t body = room - zs.avail_out;
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? body : 0;
#endif
}

static uint32_t crc_of(const unsigned char *src, size_t len) {
#ifdef FFDP_HAVE_LIBDEFLATE
  return libdeflate_crc32(0, src, len);
#else
  return (uint32_t)crc32(0L, src, (uInt)len);
#endif
}

/* One whole member of `len` input bytes into out (header with the ffdp index field, raw deflate,
 * CRC and size); its length, or 0 on a deflate failure. */
static size_t member(ffdp_gzip_writer *g, const unsigned char *src, size_t len, unsigned char *out) {
  const size_t body = deflate_raw(g, src, len, out + FFDP_GZ_HEADER, g->cap - FFDP_GZ_HEADER - 8);
  if (!body) return 0; /* even no input deflates to a final block of a few bytes */
  const size_t total = FFDP_GZ_HEADER + body + 8;
  /* FLG = FEXTRA; XFL 4 = fastest, 2 = best; OS 3 = Unix; XLEN 12: subfield 'F','D' of 8 bytes */
  const unsigned char hdr[16] = {0x1f, 0x8b, 8, 4, 0, 0, 0, 0, g->level == 1 ? 4 : g->level == 9 ? 2 : 0, 3, 12, 0, 'F', 'D', 8, 0};
  memcpy(out, hdr, sizeof hdr);
  le32(out + 16, (uint32_t)total);
  le32(out + 20, (uint32_t)len);
  le32(out + total - 8, crc_of(src, len));
  le32(out + total - 4, (uint32_t)len);
  return total;
}

/* The batch's blocks up to byte f1 on all threads: the new bytes [f0, f1) (bytes [done, ...) of
 * a ffdp_gzip_write_fn call; none without fill) made by the thread of their block, then, when
 * deflate, each block a member of its own, appended as soon as those before it are while the
 * other threads go on deflating (the file is written during the compression, not after it).
 * Without deflate the bytes are only made, and stay pending. */
static void run_batch(ffdp_gzip_writer *g, size_t f0, size_t f1, ffdp_gzip_fill_fn fill, void *ctx, size_t done,
                      int deflate) {
  const int k = (int)((f1 + BLOCK - 1) / BLOCK);
#pragma omp parallel for ordered schedule(dynamic, 1)
  for (int i = 0; i < k; i++) {
    const size_t off = (size_t)i * BLOCK, end = f1 - off < BLOCK ? f1 : off + BLOCK, lo = off > f0 ? off : f0;
    if (fill && lo < end) fill(ctx, done + (lo - f0), end - lo, g->in + lo);
    if (deflate) g->olen[i] = member(g, g->in + off, end - off, g->out[i]);
#pragma omp ordered
    if (deflate) {
      if (!g->olen[i]) g->ok = 0;
      put_bytes(g, g->out[i], g->olen[i]);
    }
  }
  if (deflate) g->members += k, g->fill = 0;
  else g->fill = f1;
}

/* Deflate the filled blocks and append them in order. */
static int flush_blocks(ffdp_gzip_writer *g) {
  if (g->ok && g->fill) run_batch(g, g->fill, g->fill, NULL, NULL, 0, 1);
  return g->ok;
}

int ffdp_gz_field_level(void) {
  const char *e = getenv("FFDP_FIELD_GZ_LEVEL");
  return e && e[0] >= '0' && e[0] <= '9' && !e[1] ? e[0] - '0' : FFDP_GZ_FIELD_LEVEL;
}

ffdp_gzip_writer *ffdp_gzip_open(FILE *f, int level) {
  ffdp_gzip_writer *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->f = f, g->level = level < 0 ? 0 : level > 9 ? 9 : level, g->ok = 1, g->wb_fd = -1;
  int nb = 2 * omp_get_max_threads();
  g->nb = nb < 2 ? 2 : nb > 64 ? 64 : nb;
  g->cap = compressBound(BLOCK) + FFDP_GZ_HEADER + 64;
#ifdef FFDP_HAVE_LIBDEFLATE
  {
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(g->level);
    const size_t b = c ? libdeflate_deflate_compress_bound(c, BLOCK) + FFDP_GZ_HEADER + 64 : 0;
    if (b > g->cap) g->cap = b;
    libdeflate_free_compressor(c);
  }
  g->ncomp = omp_get_max_threads();
  g->comp = calloc((size_t)g->ncomp, sizeof *g->comp);
  if (!g->comp) g->ncomp = 0; /* each member then makes its own compressor */
#endif
  g->in = malloc((size_t)g->nb * BLOCK);
  g->out = calloc((size_t)g->nb, sizeof *g->out);
  g->olen = calloc((size_t)g->nb, sizeof *g->olen);
  int have = g->in && g->out && g->olen;
  for (int i = 0; have && i < g->nb; i++) have = (g->out[i] = malloc(g->cap)) != NULL;
  if (!have) {
    g->ok = 0;
    ffdp_gzip_close(g);
    return NULL;
  }
  return g;
}

int ffdp_gzip_write(ffdp_gzip_writer *g, const void *buf, size_t n) {
  const unsigned char *p = buf;
  const size_t room = (size_t)g->nb * BLOCK;
  while (n > 0 && g->ok) {
    size_t m = room - g->fill < n ? room - g->fill : n;
    memcpy(g->in + g->fill, p, m);
    g->fill += m, p += m, n -= m;
    if (g->fill == room) flush_blocks(g);
  }
  return g->ok;
}

int ffdp_gzip_write_fn(ffdp_gzip_writer *g, size_t n, ffdp_gzip_fill_fn fill, void *ctx) {
  const size_t room = (size_t)g->nb * BLOCK;
  for (size_t done = 0; n > done && g->ok;) { /* a batch that does not fill every block is deflated with the next */
    const size_t f0 = g->fill, m = room - f0 < n - done ? room - f0 : n - done;
    run_batch(g, f0, f0 + m, fill, ctx, done, f0 + m == room);
    done += m;
  }
  return g->ok;
}

int ffdp_gzip_close(ffdp_gzip_writer *g) {
  if (!g) return 0;
  if (g->ok) flush_blocks(g);
  if (g->ok && g->members == 0 && g->out) { /* no data: one empty member, so the file is a gzip file */
    g->olen[0] = member(g, g->in, 0, g->out[0]);
    if (!g->olen[0]) g->ok = 0;
    put_bytes(g, g->out[0], g->olen[0]);
  }
  const int ok = g->ok;
  for (int i = 0; g->out && i < g->nb; i++) free(g->out[i]);
#ifdef FFDP_HAVE_LIBDEFLATE
  for (int i = 0; i < g->ncomp; i++) libdeflate_free_compressor(g->comp[i]);
  free(g->comp);
#endif
  free(g->out), free(g->olen), free(g->in), free(g);
  return ok;
}
