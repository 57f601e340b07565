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

/* What ffdp_floats_range says of the values a load produced. */
typedef struct ffdp_value_range {
  double lo, hi;
  int64_t nonfinite;
} ffdp_value_range;
/* ffdp_volume_load and ffdp_volume_load_share that also give the range of the planes read
 * (r): uncompressed NIfTI finds it while each thread's chunk is still in its cache, which
 * saves the normalization a pass over the image; other formats take that pass here. */
ffdp_status ffdp_volume_load_ranged(const char *path, ffdp_volume **out, ffdp_value_range *r, ffdp_error *err);
ffdp_status ffdp_volume_load_share_ranged(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_value_range *r,
                                          ffdp_error *err);
#endif
