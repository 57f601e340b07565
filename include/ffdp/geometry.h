/* World geometry. Arrays are x-fastest (NIfTI i,j,k order); voxel p maps to world x = W·[p;1]
 * in RAS millimetres as NIfTI defines (sform preferred, qform fallback). */
#ifndef FFDP_GEOMETRY_H
#define FFDP_GEOMETRY_H
#ifdef __cplusplus
extern "C" {
#endif

typedef struct ffdp_mat4 {
  double m[4][4]; /* row-major; last row is 0 0 0 1 for affine maps */
} ffdp_mat4;

ffdp_mat4 ffdp_mat4_identity(void);
ffdp_mat4 ffdp_mat4_mul(ffdp_mat4 a, ffdp_mat4 b);
/* Inverse of an affine 4x4; returns 0 when the 3x3 part is singular (|det| < tiny). */
int ffdp_mat4_inverse(ffdp_mat4 a, ffdp_mat4 *inv);
double ffdp_mat4_det3(ffdp_mat4 a);
void ffdp_mat4_apply(ffdp_mat4 a, const double in[3], double out[3]);
/* Linear part only (for vectors such as displacements). */
void ffdp_mat4_apply_vec(ffdp_mat4 a, const double in[3], double out[3]);

/* Normalized coordinates ([-1,1] across voxel centres, align_corners convention) used by
 * PyTorch-style samplers; provided for interoperability with FireANTs-style grids. */
double ffdp_vox_to_norm(double p, long long n);
double ffdp_norm_to_vox(double s, long long n);

#ifdef __cplusplus
}
#endif
#endif
