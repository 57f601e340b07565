/* One NIfTI file written by the ranks together, each rank its own planes (nifti_shared.c).
 *
 * The file is cut into segments: one per component (vector fields are stored component by
 * component, as ITK reads them), and within a segment each rank's planes in rank order. .nii:
 * every rank writes its planes at their offsets in one file (positional writes; ranks on
 * several hosts need a shared file system). .nii.gz: every rank deflates each of its segments
 * as a gzip member of its own into a part file, and the members are then copied into the file
 * in order: a gzip file of several members, which gzip, zlib (ITK, FSL, the NIfTI library) and
 * Python's gzip read as one stream, as they do pigz's and bgzip's. The file appears at its
 * path only when every rank has written everything; otherwise nothing is left behind. */
#ifndef FFDP_IO_NIFTI_SHARED_H
#define FFDP_IO_NIFTI_SHARED_H
#include "ffdp/comm.h"
#include "ffdp/volume.h"

typedef struct ffdp_shared_nifti ffdp_shared_nifti;

/* Collective. This rank will write planes [z0, z1) (its share) of a volume of dim (a 3-vector
 * field when as_field), values stored as dtype. */
ffdp_status ffdp_shared_nifti_open(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, int dtype,
                                   ffdp_nifti_version ver, int as_field, const ffdp_comm *comm, int64_t z0, int64_t z1,
                                   ffdp_shared_nifti **out, ffdp_error *err);
/* This rank's planes of component comp (0 for scalars) follow, in z order, as put calls. */
void ffdp_shared_nifti_begin(ffdp_shared_nifti *s, int comp);
/* The next n values of the segment. 0 once any write has failed (then close reports it). */
int ffdp_shared_nifti_put(ffdp_shared_nifti *s, const float *vals, int64_t n);
void ffdp_shared_nifti_end(ffdp_shared_nifti *s);
/* Collective: every rank calls it once, ok = 0 where that rank gave up; the file is kept
 * only if every rank wrote everything. Frees s. */
ffdp_status ffdp_shared_nifti_close(ffdp_shared_nifti *s, int ok, ffdp_error *err);
#endif
