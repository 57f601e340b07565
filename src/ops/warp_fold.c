/* Folding world-space transforms into the voxel-space warp the kernels evaluate. */
#include "ops/ops.h"

int ffdp_warp_fold(ffdp_mat4 aff, ffdp_mat4 wf, ffdp_mat4 wm, ffdp_interp interp, ffdp_pad pad, ffdp_warp *w) {
  ffdp_mat4 minv;
  if (!ffdp_mat4_inverse(wm, &minv)) return 0;
  ffdp_mat4 b = ffdp_mat4_mul(minv, ffdp_mat4_mul(aff, wf));
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 4; j++) w->B[i][j] = b.m[i][j];
    for (int j = 0; j < 3; j++) w->S[i][j] = minv.m[i][j];
  }
  w->interp = interp;
  w->pad = pad;
  return 1;
}

void ffdp_warp_affine_grad(const double gB[3][4], ffdp_mat4 wf, ffdp_mat4 wm, double gA[3][4]) {
  /* B = Minv·Aff·Wf is linear in Aff, so dL/dAff = Minv^T · dL/dB · Wf^T. */
  ffdp_mat4 minv;
  if (!ffdp_mat4_inverse(wm, &minv)) {
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++) gA[i][j] = 0;
    return;
  }
  double t[4][4] = {{0}};
  for (int a = 0; a < 3; a++) /* t = gB · Wf^T */
    for (int j = 0; j < 4; j++) {
      double s = 0;
      for (int b = 0; b < 4; b++) s += gB[a][b] * wf.m[j][b];
      t[a][j] = s;
    }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) {
      double s = 0;
      for (int a = 0; a < 3; a++) s += minv.m[a][i] * t[a][j];
      gA[i][j] = s;
    }
}
