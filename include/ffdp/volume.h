/* Volumes: a 3D grid of float32 working values (1 or 3 components per voxel, interleaved)
 * with its voxel-to-world matrix. Opaque: use the accessors. */
#ifndef FFDP_VOLUME_H
#define FFDP_VOLUME_H
#include <stdint.h>
#include "ffdp/comm.h"
#include "ffdp/error.h"
#include "ffdp/geometry.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct ffdp_volume ffdp_volume;

/* On-disk voxel types (values are the NIfTI DT_* codes). */
typedef enum ffdp_dtype {
  FFDP_DT_UINT8 = 2,
  FFDP_DT_INT16 = 4,
  FFDP_DT_INT32 = 8,
  FFDP_DT_FLOAT32 = 16,
  FFDP_DT_FLOAT64 = 64,
  FFDP_DT_INT8 = 256,
  FFDP_DT_UINT16 = 512,
  FFDP_DT_UINT32 = 768
} ffdp_dtype;

/* A new zero-filled volume; ncomp is 1 (scalar) or 3 (vector field, xyz interleaved). */
ffdp_status ffdp_volume_create(const int64_t dim[3], int ncomp, ffdp_mat4 vox2world,
                               ffdp_volume **out, ffdp_error *err);
ffdp_status ffdp_volume_clone(const ffdp_volume *v, ffdp_volume **out, ffdp_error *err);
void ffdp_volume_free(ffdp_volume *v);

const int64_t *ffdp_volume_dim(const ffdp_volume *v);
int64_t ffdp_volume_nvox(const ffdp_volume *v);
int ffdp_volume_ncomp(const ffdp_volume *v);
float *ffdp_volume_data(ffdp_volume *v);
const float *ffdp_volume_cdata(const ffdp_volume *v);
ffdp_mat4 ffdp_volume_vox2world(const ffdp_volume *v);
void ffdp_volume_set_vox2world(ffdp_volume *v, ffdp_mat4 m);
/* Voxel spacing in mm (column norms of the voxel-to-world matrix). */
void ffdp_volume_spacing(const ffdp_volume *v, double sp[3]);
/* NIfTI type code the volume was loaded from (FFDP_DT_FLOAT32 for created volumes). */
int ffdp_volume_source_dtype(const ffdp_volume *v);
/* Minimum and maximum over finite values; returns the count of non-finite values. */
int64_t ffdp_volume_range(const ffdp_volume *v, double *vmin, double *vmax);

typedef enum ffdp_nifti_version {
  FFDP_NIFTI_AUTO = 0, /* NIfTI-1 when the volume fits, NIfTI-2 otherwise */
  FFDP_NIFTI_1 = 1,
  FFDP_NIFTI_2 = 2
} ffdp_nifti_version;

/* Load a 3D NIfTI-1/2 image (.nii or .nii.gz) or OME-Zarr store (a directory named *.zarr,
 * or one holding .zattrs/.zarray) as a scalar volume. 4D/5D images whose extra dimensions
 * are all 1 are accepted; anything else is an error. */
ffdp_status ffdp_volume_load(const char *path, ffdp_volume **out, ffdp_error *err);
/* Planes [z0, z1) only (z1 < 0: to the last plane), as a volume of z1-z0 planes whose
 * voxel-to-world matrix places them where they lie in the whole image. Reads only what those
 * planes need: the chunks they touch (Zarr), a positional read (.nii), a streamed skip
 * (.nii.gz). What each rank of a distributed run calls for its slab. */
ffdp_status ffdp_volume_load_planes(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err);
/* 1 when path names an OME-Zarr store (by its .zarr suffix or its metadata files). */
int ffdp_path_is_zarr(const char *path);
/* The whole image's grid with only planes [z0, z1) read (a rank's share, ffdp_comm_share):
 * the other planes are zero and, never written, take no memory. */
ffdp_status ffdp_volume_load_share(const char *path, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err);
/* Shape and voxel-to-world matrix of a 3D image from its header alone (the checks of
 * ffdp_volume_load, no voxel data read): for planning before anything large is loaded. */
ffdp_status ffdp_volume_probe(const char *path, int64_t dim[3], ffdp_mat4 *vox2world, ffdp_error *err);
/* Load a displacement field stored as a NIfTI vector image (dim[5]==3, as ITK/ANTs write
 * it), converting from LPS (ITK) to RAS (ffdp internal) when lps != 0. */
ffdp_status ffdp_field_load(const char *path, int lps, ffdp_volume **out, ffdp_error *err);
/* The field's grid with only planes [z0, z1) read (z1 < 0: to the last plane); the other
 * planes are zero and take no memory. What a rank applying a transform reads of a field. */
ffdp_status ffdp_field_load_share(const char *path, int lps, int64_t z0, int64_t z1, ffdp_volume **out, ffdp_error *err);
/* Shape and voxel-to-world matrix of a displacement field from its header alone. */
ffdp_status ffdp_field_probe(const char *path, int64_t dim[3], ffdp_mat4 *vox2world, ffdp_error *err);
/* Write atomically (temporary file in the same directory, then rename). Integer types are
 * rounded and clamped. For 3-component volumes the file is a 5D vector image (ITK layout),
 * negating x and y when lps != 0. */
ffdp_status ffdp_volume_save(const ffdp_volume *v, const char *path, ffdp_dtype dtype,
                             ffdp_nifti_version ver, ffdp_error *err);
ffdp_status ffdp_field_save(const ffdp_volume *v, const char *path, int lps, ffdp_error *err);
/* The same with every vector mapped by the 3x3 matrix T first (NULL: as is; no copy of the
 * field is made). */
ffdp_status ffdp_field_save_mapped(const ffdp_volume *v, const double T[3][3], const char *path, int lps, ffdp_error *err);
/* Collective: the same file written by the ranks of comm together, each from its share of v's
 * planes (ffdp_comm_share; the other planes are not read), as ffdp_plane_writer_open_shared
 * does (.nii or .nii.gz). One rank (or NULL): ffdp_field_save_mapped. */
ffdp_status ffdp_field_save_mapped_shared(const ffdp_volume *v, const double T[3][3], const char *path, int lps,
                                          const ffdp_comm *comm, ffdp_error *err);

/* OME-Zarr output (NGFF 0.4, Zarr v2, one level, axes z y x in millimetres, chunk files
 * "z/y/x"); ffdp_volume_save writes one with the defaults when path is a Zarr path. Written
 * to a temporary store beside the target and renamed into place when complete. */
typedef enum ffdp_zarr_codec {
  FFDP_ZARR_RAW = 0,        /* no compressor */
  FFDP_ZARR_ZSTD = 1,       /* numcodecs "zstd" */
  FFDP_ZARR_BLOSC_ZSTD = 2, /* numcodecs "blosc", cname zstd, byte shuffle (the default) */
  FFDP_ZARR_BLOSC_LZ4 = 3   /* blosc with lz4: faster, larger */
} ffdp_zarr_codec;
typedef struct ffdp_zarr_options {
  int64_t chunk[3]; /* x, y, z; 0 = 64 */
  ffdp_zarr_codec codec;
  int level;        /* compression level */
} ffdp_zarr_options;
ffdp_zarr_options ffdp_zarr_default_options(void);
ffdp_status ffdp_volume_save_zarr(const ffdp_volume *v, const char *path, ffdp_dtype dtype,
                                  const ffdp_zarr_options *opt, ffdp_error *err);

/* Resampling onto another grid (world-aligned; no transform): trilinear (interp 0) or
 * nearest (1), border padding when border != 0 else zeros. Works for 1 or 3 components. */
ffdp_status ffdp_volume_resample(const ffdp_volume *v, const int64_t dim[3], ffdp_mat4 vox2world, int interp,
                                 int border, ffdp_volume **out, ffdp_error *err);
/* Grid of a pyramid level: dim' = max(1, floor(dim/f)), voxel p' at old voxel f·p' + (f-1)/2. */
void ffdp_shrink_grid(const int64_t dim[3], ffdp_mat4 vox2world, const int factor[3], int64_t dim_out[3],
                      ffdp_mat4 *vox2world_out);
/* Anti-aliased downsampling by integer factors (Gaussian sigma = f/3 voxels, then trilinear). */
ffdp_status ffdp_volume_downsample(const ffdp_volume *v, const int factor[3], ffdp_volume **out, ffdp_error *err);
/* Separable Gaussian smoothing, sigma in voxels per axis, zero padding. */
ffdp_status ffdp_volume_smooth(const ffdp_volume *v, const double sigma[3], ffdp_volume **out, ffdp_error *err);

/* A scalar NIfTI volume written plane by plane in z order, so that volumes larger than memory
 * can be produced: the header at open, planes as they come (converted to dtype), and the file
 * appears at path only when close finds every plane written (NIfTI-2 by itself when NIfTI-1
 * cannot hold the volume). abort (or a failed close) removes what was written. A path ending
 * in .zarr gives an OME-Zarr store (default chunks and compressor), chunk rows written as
 * their planes arrive. */
typedef struct ffdp_plane_writer ffdp_plane_writer;
ffdp_status ffdp_plane_writer_open(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                                   ffdp_nifti_version ver, ffdp_plane_writer **out, ffdp_error *err);
/* The same file written by the ranks of comm together, each putting its own share of the planes
 * (ffdp_comm_share), in z order: .nii by positional writes into one file, .nii.gz as one gzip
 * member per rank concatenated in rank order (a multi-member gzip file, which gzip, zlib, ITK,
 * FSL and nibabel read as one stream), .zarr with each rank writing the chunk rows that start in
 * its share. open, close and abort are collective (every rank calls close or abort once); the
 * file appears only when every rank has written all of its planes. Ranks on several hosts need
 * a file system they all see. One rank (or NULL): ffdp_plane_writer_open. */
ffdp_status ffdp_plane_writer_open_shared(const char *path, const int64_t dim[3], ffdp_mat4 vox2world, ffdp_dtype dtype,
                                          ffdp_nifti_version ver, const ffdp_comm *comm, ffdp_plane_writer **out,
                                          ffdp_error *err);
ffdp_status ffdp_plane_writer_put(ffdp_plane_writer *w, const float *planes, int64_t nplanes, ffdp_error *err);
ffdp_status ffdp_plane_writer_close(ffdp_plane_writer *w, ffdp_error *err);
void ffdp_plane_writer_abort(ffdp_plane_writer *w);

#ifdef __cplusplus
}
#endif
#endif
