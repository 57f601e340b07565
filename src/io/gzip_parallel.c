/* Parallel gzip writing (see gzip_parallel.h). zlib's gzwrite deflates on one core at about
 * 30-50 MB/s on float fields, which made writing the warps of a 0.5 mm registration take
 * longer than the registration itself (two 420 MB fields: ~17 s). */
#include "io/gzip_parallel.h"
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { BLOCK = 1 << 20, HIST = 1 << 15 }; /* HIST: deflate's window, the priming of each block */

struct ffdp_gzip_writer {
  FILE *f;
  int level, nb, ok;
  unsigned char *in; /* HIST bytes for the history, then nb blocks */
  size_t hist, fill; /* history bytes right before the blocks; bytes in the blocks */
  size_t cap;        /* capacity of each output buffer */
  unsigned char **out;
  size_t *olen;
  unsigned long *crc;
  int *bad;
  unsigned long crc_all;
  uint64_t total;
};

static int put_bytes(ffdp_gzip_writer *g, const void *p, size_t n) {
  if (g->ok && n && fwrite(p, 1, n, g->f) != n) g->ok = 0;
  return g->ok;
}

/* Deflate the filled blocks on all threads and append them in order; `last` ends the stream. */
static int flush_blocks(ffdp_gzip_writer *g, int last) {
  int k = (int)((g->fill + BLOCK - 1) / BLOCK);
  if (last && k == 0) k = 1; /* an empty final block closes the deflate stream */
  if (!g->ok || k == 0) return g->ok;
#pragma omp parallel for schedule(dynamic, 1)
  for (int i = 0; i < k; i++) {
    const size_t off = (size_t)i * BLOCK, len = g->fill - off < BLOCK ? g->fill - off : BLOCK;
    const unsigned char *src = g->in + HIST + off;
    const size_t primed = i > 0 ? HIST : g->hist; /* a block before this one is full */
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    g->bad[i] = 1;
    if (deflateInit2(&zs, g->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) continue;
    int good = !primed || deflateSetDictionary(&zs, src - primed, (uInt)primed) == Z_OK;
    const int flush = last && i == k - 1 ? Z_FINISH : Z_SYNC_FLUSH;
    zs.next_in = (unsigned char *)src, zs.avail_in = (uInt)len;
    zs.next_out = g->out[i], zs.avail_out = (uInt)g->cap;
    const int rc = good ? deflate(&zs, flush) : Z_STREAM_ERROR;
    /* a sync flush is complete when output space is left over */
    good = good && (flush == Z_FINISH ? rc == Z_STREAM_END : rc == Z_OK && zs.avail_in == 0 && zs.avail_out > 0);
    g->olen[i] = g->cap - zs.avail_out;
    g->crc[i] = crc32(0L, src, (uInt)len);
    deflateEnd(&zs);
    g->bad[i] = !good;
  }
  for (int i = 0; i < k && g->ok; i++) {
    const size_t len = g->fill - (size_t)i * BLOCK < BLOCK ? g->fill - (size_t)i * BLOCK : BLOCK;
    if (g->bad[i]) g->ok = 0;
    put_bytes(g, g->out[i], g->olen[i]);
    g->crc_all = crc32_combine(g->crc_all, g->crc[i], (z_off_t)len);
    g->total += len;
  }
  /* the next batch is primed with the last HIST bytes written, which sit right before the blocks' end */
  const size_t h = g->hist + g->fill < HIST ? g->hist + g->fill : HIST;
  memmove(g->in + HIST - h, g->in + HIST + g->fill - h, h);
  g->hist = h, g->fill = 0;
  return g->ok;
}

ffdp_gzip_writer *ffdp_gzip_open(FILE *f, int level) {
  ffdp_gzip_writer *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->f = f, g->level = level < 1 ? 1 : level > 9 ? 9 : level, g->ok = 1;
  int nb = 2 * omp_get_max_threads();
  g->nb = nb < 2 ? 2 : nb > 64 ? 64 : nb;
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  if (deflateInit2(&zs, g->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    free(g);
    return NULL;
  }
  g->cap = deflateBound(&zs, BLOCK) + 64; /* + the sync flush's empty stored block */
  deflateEnd(&zs);
  g->in = malloc(HIST + (size_t)g->nb * BLOCK);
  g->out = calloc((size_t)g->nb, sizeof *g->out);
  g->olen = calloc((size_t)g->nb, sizeof *g->olen);
  g->crc = calloc((size_t)g->nb, sizeof *g->crc);
  g->bad = calloc((size_t)g->nb, sizeof *g->bad);
  int have = g->in && g->out && g->olen && g->crc && g->bad;
  for (int i = 0; have && i < g->nb; i++) have = (g->out[i] = malloc(g->cap)) != NULL;
  if (!have) {
    g->ok = 0;
    ffdp_gzip_close(g);
    return NULL;
  }
  /* member header: deflate, no name, no time, XFL 4 = fastest (2 = best), OS 3 = Unix */
  const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, g->level == 1 ? 4 : g->level == 9 ? 2 : 0, 3};
  put_bytes(g, hdr, sizeof hdr);
  return g;
}

int ffdp_gzip_write(ffdp_gzip_writer *g, const void *buf, size_t n) {
  const unsigned char *p = buf;
  const size_t room = (size_t)g->nb * BLOCK;
  while (n > 0 && g->ok) {
    size_t m = room - g->fill < n ? room - g->fill : n;
    memcpy(g->in + HIST + g->fill, p, m);
    g->fill += m, p += m, n -= m;
    if (g->fill == room) flush_blocks(g, 0);
  }
  return g->ok;
}

int ffdp_gzip_close(ffdp_gzip_writer *g) {
  if (!g) return 0;
  if (g->ok && flush_blocks(g, 1)) {
    unsigned char t[8];
    for (int i = 0; i < 4; i++) t[i] = (unsigned char)(g->crc_all >> (8 * i)), t[4 + i] = (unsigned char)(g->total >> (8 * i));
    put_bytes(g, t, sizeof t);
  }
  const int ok = g->ok;
  for (int i = 0; g->out && i < g->nb; i++) free(g->out[i]);
  free(g->out), free(g->olen), free(g->crc), free(g->bad), free(g->in), free(g);
  return ok;
}
