/* OME-Zarr (NGFF 0.4 over Zarr v2) internals shared by the store reader/writer and the
 * chunk codecs. Axis arrays are in file order reversed to ffdp's: index 0 is x (fastest). */
#ifndef FFDP_IO_ZARR_INTERNAL_H
#define FFDP_IO_ZARR_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "ffdp/volume.h"

typedef enum { ZARR_NONE, ZARR_ZSTD, ZARR_BLOSC, ZARR_GZIP, ZARR_ZLIB } zarr_codec;

typedef struct zarr_array {
  char dir[4400];     /* the array's directory (holds .zarray and the chunks) */
  int nlead;          /* leading non-spatial dimensions (t, c), each of size 1 */
  int64_t shape[3];   /* x, y, z */
  int64_t chunk[3];   /* x, y, z */
  int dtype;          /* ffdp_dtype (NIfTI code) of the stored values */
  int itemsize;       /* bytes */
  int swap;           /* stored big-endian */
  double fill;        /* fill_value (NaN allowed) */
  char sep;           /* chunk key separator: '.' or '/' */
  zarr_codec codec;
  int level, shuffle; /* compression level; blosc shuffle */
  char cname[16];     /* blosc inner codec */
} zarr_array;

const char *zarr_codec_name(zarr_codec c);
int zarr_codec_available(zarr_codec c);
/* 1 on success: exactly `want` bytes decoded. */
int zarr_decompress(const zarr_array *a, const void *src, size_t n, void *dst, size_t want);
size_t zarr_compress_bound(const zarr_array *a, size_t n);
/* Compressed size, 0 on failure. */
size_t zarr_compress(const zarr_array *a, const void *src, size_t n, void *dst, size_t cap);
#endif
