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
#endif
