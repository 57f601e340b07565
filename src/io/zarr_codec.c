/* Chunk compressors of Zarr v2 stores, through their Debian libraries: zstd (libzstd), blosc
 * (libblosc, with its zstd or lz4 inner codec) and gzip/zlib (zlib, read only). Each call is
 * self-contained (no global library state), so chunks compress on many threads at once. */
#include "io/zarr_internal.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef FFDP_HAVE_ZSTD
#include <zstd.h>
#endif
#ifdef FFDP_HAVE_BLOSC
#include <blosc.h>
#endif

const char *zarr_codec_name(zarr_codec c) {
  switch (c) {
  case ZARR_NONE: return "none";
  case ZARR_ZSTD: return "zstd";
  case ZARR_BLOSC: return "blosc";
  case ZARR_GZIP: return "gzip";
  case ZARR_ZLIB: return "zlib";
  }
  return "?";
}

int zarr_codec_available(zarr_codec c) {
  switch (c) {
#ifdef FFDP_HAVE_ZSTD
  case ZARR_ZSTD: return 1;
#endif
#ifdef FFDP_HAVE_BLOSC
  case ZARR_BLOSC: return 1;
#endif
  case ZARR_NONE: case ZARR_GZIP: case ZARR_ZLIB: return 1;
  default: return 0;
  }
}

static int inflate_all(const void *src, size_t n, void *dst, size_t want) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 15 + 32) != Z_OK) return 0; /* +32: gzip or zlib header, detected */
  z.next_in = (Bytef *)src, z.avail_in = (uInt)n;
  z.next_out = dst, z.avail_out = (uInt)want;
  int r = inflate(&z, Z_FINISH);
  size_t got = want - z.avail_out;
  inflateEnd(&z);
  return r == Z_STREAM_END && got == want;
}

int zarr_decompress(const zarr_array *a, const void *src, size_t n, void *dst, size_t want) {
  switch (a->codec) {
  case ZARR_NONE:
    if (n != want) return 0;
    memcpy(dst, src, want);
    return 1;
  case ZARR_GZIP:
  case ZARR_ZLIB: return inflate_all(src, n, dst, want);
#ifdef FFDP_HAVE_ZSTD
  case ZARR_ZSTD: {
    unsigned long long fs = ZSTD_getFrameContentSize(src, n);
    if (fs != ZSTD_CONTENTSIZE_UNKNOWN && fs != want) return 0;
    size_t r = ZSTD_decompress(dst, want, src, n);
    return !ZSTD_isError(r) && r == want;
  }
#endif
#ifdef FFDP_HAVE_BLOSC
  case ZARR_BLOSC: {
    size_t nb = 0, cb = 0, bs = 0;
    if (n < 16) return 0;
    blosc_cbuffer_sizes(src, &nb, &cb, &bs);
    if (nb != want || cb > n) return 0;
    return blosc_decompress_ctx(src, dst, want, 1) == (int)want;
  }
#endif
  default: return 0;
  }
}

size_t zarr_compress_bound(const zarr_array *a, size_t n) {
  switch (a->codec) {
#ifdef FFDP_HAVE_ZSTD
  case ZARR_ZSTD: return ZSTD_compressBound(n);
#endif
#ifdef FFDP_HAVE_BLOSC
  case ZARR_BLOSC: return n + BLOSC_MAX_OVERHEAD;
#endif
  default: return n;
  }
}

size_t zarr_compress(const zarr_array *a, const void *src, size_t n, void *dst, size_t cap) {
  switch (a->codec) {
  case ZARR_NONE:
    if (cap < n) return 0;
    memcpy(dst, src, n);
    return n;
#ifdef FFDP_HAVE_ZSTD
  case ZARR_ZSTD: {
    size_t r = ZSTD_compress(dst, cap, src, n, a->level);
    return ZSTD_isError(r) ? 0 : r;
  }
#endif
#ifdef FFDP_HAVE_BLOSC
  case ZARR_BLOSC: {
    int r = blosc_compress_ctx(a->level, a->shuffle, (size_t)a->itemsize, n, src, dst, cap, a->cname, 0, 1);
    return r > 0 ? (size_t)r : 0;
  }
#endif
  default: return 0;
  }
}
