/* A gzip writer that compresses on every OpenMP thread (gzip_parallel.c).
 *
 * One gzip member, as gzip and zlib's gzwrite make, so every reader (zlib, ITK, nibabel,
 * FSL's znzlib) takes it. The stream is cut into fixed 1 MiB blocks, each deflated on its own
 * thread (primed with the 32 KiB before it) and ended by a sync flush, so the blocks
 * concatenate into one deflate stream; the CRCs are combined. The bytes depend on the input
 * and the level only, never on the thread count. */
#ifndef FFDP_GZIP_PARALLEL_H
#define FFDP_GZIP_PARALLEL_H
#include <stddef.h>
#include <stdio.h>

typedef struct ffdp_gzip_writer ffdp_gzip_writer;

/* Writes into f (which stays the caller's); level 1..9. NULL when out of memory. */
ffdp_gzip_writer *ffdp_gzip_open(FILE *f, int level);
/* 1 on success, 0 on a write or deflate failure (errno tells which for the former). */
int ffdp_gzip_write(ffdp_gzip_writer *g, const void *buf, size_t n);
/* Compresses what is left, writes the trailer and frees g (also after a failure); returns 1
 * when the whole stream reached f. */
int ffdp_gzip_close(ffdp_gzip_writer *g);
#endif
