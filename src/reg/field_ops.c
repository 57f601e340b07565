/* Displacement-field algebra on one grid, built on the compose operator: composition with a
 * linear map, and inversion of x -> x + v(x) by fixed-point iteration. */
#include "reg/reg_internal.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The voxel-space warp of a displacement field U (world mm, border-padded): x + d(x) read in U's
 * voxels, and the slab of planes [z0, z1) of U's grid (stored alone) and U's whole grid. */
static void field_warp(const ffdp_volume *U, int64_t z0, int64_t z1, ffdp_warp *w, ffdp_slab *s, ffdp_slab *us) {
  *s = ffdp_slab_whole(U->dim[0], U->dim[1], U->dim[2]), *us = *s;
  s->z0 = s->zlo = z0, s->z1 = s->zhi = z1;
  ffdp_mat4 winv;
  ffdp_mat4_inverse(U->vox2world, &winv);
  memset(w, 0, sizeof *w);
  for (int a = 0; a < 3; a++) {
    w->B[a][a] = 1;
    for (int b = 0; b < 3; b++) w->S[a][b] = winv.m[a][b];
  }
  w->interp = FFDP_INTERP_LINEAR, w->pad = FFDP_PAD_BORDER;
}

/* out(x) = T·d(x) + U(x + d(x)) for x on planes [z0, z1) of U's grid; d and out hold just those
 * planes (d, U in world mm; displacement border). Each voxel's value depends only on its own d
 * and on U, so planes computed apart are the planes computed together. */
void reg_compose_fields_planes(const ffdp_volume *U, const float *d, const double T[3][3], int64_t z0, int64_t z1,
                               float *out) {
  ffdp_warp w;
  ffdp_slab s, us;
  field_warp(U, z0, z1, &w, &s, &us);
  ffdp_compose_fwd_f32(&w, T, &s, d, &us, U->data, out);
}

void reg_compose_fields(const ffdp_volume *U, const float *d, const double T[3][3], float *out) {
  reg_compose_fields_planes(U, d, T, 0, U->dim[2], out);
}

ffdp_status reg_invert_field_planes(const ffdp_volume *v, int iters, int64_t z0, int64_t z1, float *w, ffdp_error *err) {
  /* Solve w + v∘(id + w) = 0. The plain iteration w <- -v∘(id + w) contracts only while
   * |∇v| < 1; a field that does not fold can exceed that (strong local expansion), so the
   * update is damped: w <- w - (w + v∘(id + w)) / 2, which converges whenever id + v is
   * orientation preserving with moderate distortion. Pointwise in w: a rank iterates on its
   * own planes with v whole. */
  /* each step in place, in one pass (ffdp_compose_damped: the composition's values, then the
   * update, without a composed field) */
  (void)err;
  const int64_t n = (z1 - z0) * v->dim[0] * v->dim[1] * 3;
  const float *vd = v->data + z0 * v->dim[0] * v->dim[1] * 3;
  for (int64_t i = 0; i < n; i++) w[i] = -vd[i];
  ffdp_warp wp;
  ffdp_slab s, us;
  field_warp(v, z0, z1, &wp, &s, &us);
  for (int it = 0; it < iters; it++) ffdp_compose_damped_f32(&wp, &s, w, &us, v->data);
  return FFDP_OK;
}

ffdp_status reg_invert_field(const ffdp_volume *v, int iters, ffdp_volume **out, ffdp_error *err) {
  ffdp_status st = ffdp_volume_create(v->dim, 3, v->vox2world, out, err);
  if (!st && (st = reg_invert_field_planes(v, iters, 0, v->dim[2], (*out)->data, err))) ffdp_volume_free(*out), *out = NULL;
  return st;
}

double reg_max_norm3(const float *g, int64_t n) {
  double mx = 0;
#pragma omp parallel for reduction(max : mx)
  for (int64_t i = 0; i < n; i++) {
    double s = (double)g[3 * i] * g[3 * i] + (double)g[3 * i + 1] * g[3 * i + 1] + (double)g[3 * i + 2] * g[3 * i + 2];
    mx = s > mx ? s : mx;
  }
  return sqrt(mx);
}

double reg_field_max_norm(const ffdp_volume *v, const double T[3][3]) {
  const int64_t n = ffdp_volume_nvox(v);
  const float *d = v->data;
  double m = 0;
#pragma omp parallel for reduction(max : m) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int a = 0; a < 3; a++) {
      const double t = T[a][0] * d[3 * i] + T[a][1] * d[3 * i + 1] + T[a][2] * d[3 * i + 2];
      s += t * t;
    }
    m = s > m ? s : m;
  }
  return sqrt(m);
}
