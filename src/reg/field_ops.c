/* Displacement-field algebra on one grid, built on the compose operator: composition with a
 * linear map, and inversion of x -> x + v(x) by fixed-point iteration. */
#include "reg/reg_internal.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* out(x) = T·d(x) + U(x + d(x)) on the grid of U (d, U in world mm; displacement border). */
void reg_compose_fields(const ffdp_volume *U, const float *d, const double T[3][3], float *out) {
  ffdp_slab s = ffdp_slab_whole(U->dim[0], U->dim[1], U->dim[2]);
  ffdp_mat4 winv;
  ffdp_mat4_inverse(U->vox2world, &winv);
  ffdp_warp w;
  memset(&w, 0, sizeof w);
  for (int a = 0; a < 3; a++) {
    w.B[a][a] = 1;
    for (int b = 0; b < 3; b++) w.S[a][b] = winv.m[a][b];
  }
  w.interp = FFDP_INTERP_LINEAR, w.pad = FFDP_PAD_BORDER;
  ffdp_compose_fwd_f32(&w, T, &s, d, &s, U->data, out);
}

ffdp_status reg_invert_field(const ffdp_volume *v, int iters, ffdp_volume **out, ffdp_error *err) {
  /* Solve w + v∘(id + w) = 0. The plain iteration w <- -v∘(id + w) contracts only while
   * |∇v| < 1; a field that does not fold can exceed that (strong local expansion), so the
   * update is damped: w <- w - (w + v∘(id + w)) / 2, which converges whenever id + v is
   * orientation preserving with moderate distortion. */
  ffdp_status st = ffdp_volume_create(v->dim, 3, v->vox2world, out, err);
  if (st) return st;
  const int64_t n = ffdp_volume_nvox(v) * 3;
  float *w = (*out)->data, *tmp = malloc((size_t)n * sizeof(float));
  if (!tmp) {
    ffdp_volume_free(*out);
    *out = NULL;
    return ffdp_fail(err, FFDP_ERR_NOMEM, "cannot allocate a field to invert");
  }
  const double Z[3][3] = {{0}};
  for (int64_t i = 0; i < n; i++) w[i] = -v->data[i];
  for (int it = 0; it < iters; it++) {
    reg_compose_fields(v, w, Z, tmp);
#pragma omp parallel for
    for (int64_t i = 0; i < n; i++) w[i] -= 0.5f * (w[i] + tmp[i]);
  }
  free(tmp);
  return FFDP_OK;
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
