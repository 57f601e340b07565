/* OME-Zarr entry points behind ffdp_volume_load/probe/load_planes (zarr.c). */
#ifndef FFDP_IO_ZARR_H
#define FFDP_IO_ZARR_H
#include "ffdp/volume.h"

ffdp_status ffdp_zarr_probe(const char *path, int64_t dim[3], ffdp_mat4 *w, ffdp_error *err);
/* z1 < 0: to the last plane */
ffdp_status ffdp_zarr_load_planes(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err);
#endif
