/* Shared pieces of the NIfTI reader and writer (both built on the reference NIfTI C library). */
#ifndef FFDP_IO_NIFTI_COMMON_H
#define FFDP_IO_NIFTI_COMMON_H
#include <nifti2_io.h>
#include "ffdp/volume.h"

/* NIfTI-1 stores dims as int16 and many readers count voxels in a signed 32-bit int. */
#define FFDP_NIFTI1_MAX_DIM 32767
#define FFDP_NIFTI1_MAX_VOX 2147483647LL

int ffdp_path_is_gz(const char *path);
int ffdp_path_is_nifti(const char *path);
/* 1 when any planes of the image (or field) at path can be read without the data before them:
 * .nii (positional), OME-Zarr (chunks), a .nii.gz of ffdp's indexed members; 0 for another
 * .nii.gz, which inflates from its start for every read. */
int ffdp_path_planes_cheap(const char *path);
/* The header bytes for a volume of dim (a 3-vector field, 5D, when as_field) with the 4-byte
 * "no extension" flag after them, NIfTI-2 when asked for or when NIfTI-1 cannot hold it;
 * *nbyper: bytes per stored value of dtype. */
ffdp_status ffdp_nifti_make_header(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, int dtype,
                                   ffdp_nifti_version ver, int as_field, unsigned char hdr[544], size_t *hdr_size,
                                   int *nbyper, ffdp_error *err);
#endif
