/* OME-Zarr entry points behind ffdp_volume_load/probe/load_planes (zarr.c). */
#ifndef FFDP_IO_ZARR_H
#define FFDP_IO_ZARR_H
#include "ffdp/comm.h"
#include "ffdp/volume.h"

ffdp_status ffdp_zarr_probe(const char *path, int64_t dim[3], ffdp_mat4 *w, ffdp_error *err);
/* z1 < 0: to the last plane */
ffdp_status ffdp_zarr_load_planes(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err);
/* A store written by planes in z order (chunk rows as they complete, each row's chunks in
 * parallel), appearing at path only when close finds every plane written. */
typedef struct ffdp_zarr_writer ffdp_zarr_writer;
ffdp_status ffdp_zarr_writer_open(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                                  const ffdp_zarr_options *opt, ffdp_zarr_writer **out, ffdp_error *err);
/* The same written by ranks together (collective open and close; abort is collective too):
 * each puts its share of the planes (ffdp_comm_share) in z order and writes the chunk rows
 * that start in it; the planes of a row that starts in an earlier rank's share go to that rank
 * at close. One rank (or NULL): ffdp_zarr_writer_open. */
ffdp_status ffdp_zarr_writer_open_shared(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                                         const ffdp_zarr_options *opt, const ffdp_comm *comm, ffdp_zarr_writer **out,
                                         ffdp_error *err);
ffdp_status ffdp_zarr_writer_put(ffdp_zarr_writer *w, const float *planes, int64_t nplanes, ffdp_error *err);
ffdp_status ffdp_zarr_writer_close(ffdp_zarr_writer *w, ffdp_error *err);
void ffdp_zarr_writer_abort(ffdp_zarr_writer *w);
#endif
