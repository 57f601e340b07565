/* gzip files written and read on every OpenMP thread (gzip_parallel.c, gzip_indexed.c).
 *
 * ffdp writes .nii.gz as a series of gzip members of FFDP_GZ_BLOCK input bytes each (the last
 * shorter), deflated in parallel. Each member's header carries an extra field 'F','D' (RFC 1952
 * FEXTRA) with the member's total size and its uncompressed size, as BGZF does for bgzip's
 * blocks: a reader can hop from member to member reading 24 bytes each and inflate only the
 * members a range needs, on every thread. Every gzip reader (gzip, zlib and so ITK, FSL and the
 * NIfTI library, Python's gzip) reads the file as one stream and skips the extra field. The
 * bytes depend on the input and the level only, never on the thread count. */
#ifndef FFDP_GZIP_PARALLEL_H
#define FFDP_GZIP_PARALLEL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FFDP_GZ_BLOCK (1 << 20) /* input bytes per member */
#define FFDP_GZ_HEADER 24       /* member header: 10 bytes, XLEN, the 'FD' subfield (4 + 8 bytes) */

typedef struct ffdp_gzip_writer ffdp_gzip_writer;

/* Writes into f (which stays the caller's); level 0..9 (0: stored blocks, no compression). NULL
 * when out of memory. */
ffdp_gzip_writer *ffdp_gzip_open(FILE *f, int level);
/* The levels ffdp writes with: images at level 1 (several times faster than 6, files a little
 * larger); displacement fields at ffdp_gz_field_level(): FFDP_FIELD_GZ_LEVEL (0..9; `ffdp
 * register --field-compression` sets it) or 0, stored blocks. Float warps shrink only ~9 % at
 * level 1 (DECISIONS "Fields stored, not deflated"): on the H100 machine's 16 cores a 0.5 mm
 * SyN's two 423 MB fields took 1.19 s at level 1 and 0.52 s stored (bench/gpu/NOTES.md, session
 * 38), longer than the registration itself at level 1. */
#define FFDP_GZ_IMAGE_LEVEL 1
#define FFDP_GZ_FIELD_LEVEL 0
int ffdp_gz_field_level(void);
/* The file is an output that will be made durable (file_sync.h): its write-out is started as
 * the members are appended. Not for scratch files that are copied and removed. */
void ffdp_gzip_writeback(ffdp_gzip_writer *g);
/* 1 on success, 0 on a write or deflate failure (errno tells which for the former). */
int ffdp_gzip_write(ffdp_gzip_writer *g, const void *buf, size_t n);
/* Appends n bytes made by fill: fill(ctx, off, len, dst) writes bytes [off, off + len) of the
 * n into dst. Each block's bytes are made on the thread that then deflates them, so a
 * conversion into the file's format runs on every thread with the compression and is never
 * copied; the file's bytes are those of ffdp_gzip_write with the same bytes. fill is called
 * concurrently on disjoint ranges; a range starts at a multiple of FFDP_GZ_BLOCK in the file's
 * uncompressed bytes (or where the bytes begin) and may split a value of the caller's. */
typedef void (*ffdp_gzip_fill_fn)(void *ctx, size_t off, size_t len, unsigned char *dst);
int ffdp_gzip_write_fn(ffdp_gzip_writer *g, size_t n, ffdp_gzip_fill_fn fill, void *ctx);
/* Compresses what is left and frees g (also after a failure); returns 1 when everything reached
 * f. No data at all still makes one (empty) member. */
int ffdp_gzip_close(ffdp_gzip_writer *g);

/* The member index of a gzip file at path (its headers only are read): NULL when the file is
 * not made of indexed members throughout (any other gzip file, or a damaged one). */
typedef struct ffdp_gz_index ffdp_gz_index;
ffdp_gz_index *ffdp_gz_index_open(const char *path);
/* Uncompressed bytes [off, off + n) into dst, inflating only the members that hold them, on
 * every thread. 1 when done; 0 when a member is damaged or the range is past the end (the
 * caller then reads the stream from the start with zlib, which names the problem). */
int ffdp_gz_index_read(const ffdp_gz_index *ix, int64_t off, int64_t n, void *dst);
void ffdp_gz_index_close(ffdp_gz_index *ix);
/* The three in one call, for a single range. */
int ffdp_gz_read_range(const char *path, int64_t off, int64_t n, void *dst);
#endif
