#ifndef FFDP_CORE_VOLUME_INTERNAL_H
#define FFDP_CORE_VOLUME_INTERNAL_H
#include <stddef.h>
#include "ffdp/volume.h"

struct ffdp_volume {
  int64_t dim[3];
  int ncomp;
  float *data; /* dim[0]*dim[1]*dim[2]*ncomp floats, x fastest, components innermost */
  ffdp_mat4 vox2world;
  int source_dtype;
  size_t mapped; /* > 0: data is a mapping of that many bytes of its own (volume.c), else calloc's */
};
/* Smallest and largest finite value of d[0..n) (±INFINITY when none); returns the count of
 * NaN/Inf values. */
int64_t ffdp_floats_range(const float *d, int64_t n, double *vmin, double *vmax);
#endif
