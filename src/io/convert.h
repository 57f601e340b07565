/* Voxel type conversions shared by the NIfTI and Zarr readers and writers. */
#ifndef FFDP_IO_CONVERT_H
#define FFDP_IO_CONVERT_H
#include <stdint.h>

/* n values of NIfTI type dtype at src to float, times slope plus inter when slope is set and
 * not the identity; returns 0 for an unsupported type. */
int ffdp_convert_to_float(const void *src, int dtype, int64_t n, double slope, double inter, float *dst);
/* Store x as type dtype at index i of dst: integers rounded and clamped, NaN/Inf as 0. */
void ffdp_store_value(double x, int dtype, void *dst, int64_t i);
#endif
