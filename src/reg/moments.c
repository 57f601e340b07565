/* Moments initialisation: match centres of mass, and try the principal-axes rotations
 * (every sign choice with det = +1) against the identity rotation, keeping the candidate
 * with the best MI at a coarse level. Sign ambiguity of the axes is resolved by the metric,
 * not by a heuristic. */
#include "reg/reg_internal.h"
#include "core/err.h"
#include "core/comm_internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Intensity-weighted centre and covariance in world mm. Sums run in voxel coordinates, one
 * row of partial sums per plane (in parallel), added in plane order so that the result does
 * not depend on the thread count; the affine map to world is applied to the moments. */
static void weighted_moments(const ffdp_volume *v, const reg_planes *vp, const reg_dev_planes *dev, const ffdp_comm *shared,
                             double c[3], double C[3][3]) {
  const int64_t nx = v->dim[0], ny = v->dim[1], nz = v->dim[2];
  ffdp_slab own = ffdp_slab_whole(nx, ny, nz); /* sharded: this rank's planes, folded over the ranks */
  own.z0 = own.zlo = vp->own_lo, own.z1 = own.zhi = vp->own_hi;
  const ffdp_comm *fc = ffdp_comm_or_single(shared);
  double *part = calloc((size_t)(own.z1 - own.z0 + 1) * 10, sizeof(double)), S[10] = {0};
  if (fc->max(fc, part == NULL) > 0) { /* no memory for 80 bytes per plane: the grid centre, unit covariance */
    free(part);
    double p[3] = {0.5 * (nx - 1), 0.5 * (ny - 1), 0.5 * (nz - 1)};
    ffdp_mat4_apply(v->vox2world, p, c);
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) C[a][b] = a == b;
    return;
  }
  int on_dev = 0; /* the planes are on the device (the pyramid kept them): sum them there */
#ifdef FFDP_HAVE_CUDA
  if (dev && dev->d && dev->a <= own.z0 && own.z1 <= dev->b)
    on_dev = !reg_cuda_plane_moments(dev->d + (own.z0 - dev->a) * nx * ny, nx, ny, own.z0, own.z1, part);
#else
  (void)dev;
#endif
  const int64_t zend = on_dev ? own.z0 : own.z1; /* no host planes left to sum */
#pragma omp parallel for schedule(static)
  for (int64_t z = own.z0; z < zend; z++) {
    double s[10] = {0};
    for (int64_t y = 0; y < ny; y++) {
      const float *row = v->data + (z * ny + y) * nx;
      double r0 = 0, rx = 0, rxx = 0;
      for (int64_t x = 0; x < nx; x++) {
        double w = row[x];
        if (!(w > 0)) continue;
        r0 += w, rx += w * (double)x, rxx += w * (double)x * (double)x;
      }
      const double yy = (double)y, zz = (double)z;
      s[0] += r0, s[1] += rx, s[2] += r0 * yy, s[3] += r0 * zz;
      s[4] += rxx, s[5] += rx * yy, s[6] += rx * zz, s[7] += r0 * yy * yy, s[8] += r0 * yy * zz, s[9] += r0 * zz * zz;
    }
    for (int k = 0; k < 10; k++) part[(z - own.z0) * 10 + k] = s[k];
  }
  if (fc->fold(fc, &own, part, 10, S, NULL)) memset(S, 0, sizeof S); /* in plane order: any split, the same bits */
  free(part);
  double m[3] = {0, 0, 0}, P[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  if (S[0] > 0) {
    for (int a = 0; a < 3; a++) m[a] = S[1 + a] / S[0];
    const double second[3][3] = {{S[4], S[5], S[6]}, {S[5], S[7], S[8]}, {S[6], S[8], S[9]}};
    for (int a = 0; a < 3; a++)
      for (int b = 0; b < 3; b++) P[a][b] = second[a][b] / S[0] - m[a] * m[b];
  }
  ffdp_mat4_apply(v->vox2world, m, c);
  for (int a = 0; a < 3; a++) /* C = A P A^T */
    for (int b = 0; b < 3; b++) {
      double t = 0;
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) t += v->vox2world.m[a][i] * P[i][j] * v->vox2world.m[b][j];
      C[a][b] = S[0] > 0 ? t : (a == b);
    }
}

/* Cyclic Jacobi for a symmetric 3x3: columns of E are eigenvectors, sorted by eigenvalue. */
static void eig3(double A_in[3][3], double E[3][3], double lam[3]) {
  double A[3][3];
  memcpy(A, A_in, sizeof A);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) E[i][j] = i == j;
  for (int sweep = 0; sweep < 50; sweep++) {
    double off = fabs(A[0][1]) + fabs(A[0][2]) + fabs(A[1][2]);
    if (off < 1e-14 * (fabs(A[0][0]) + fabs(A[1][1]) + fabs(A[2][2]))) break;
    for (int p = 0; p < 2; p++)
      for (int q = p + 1; q < 3; q++) {
        if (fabs(A[p][q]) < 1e-300) continue;
        double th = 0.5 * atan2(2 * A[p][q], A[q][q] - A[p][p]), c = cos(th), s = sin(th);
        for (int k = 0; k < 3; k++) { /* A = J^T A J */
          double akp = A[k][p], akq = A[k][q];
          A[k][p] = c * akp - s * akq, A[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; k++) {
          double apk = A[p][k], aqk = A[q][k];
          A[p][k] = c * apk - s * aqk, A[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 3; k++) {
          double ekp = E[k][p], ekq = E[k][q];
          E[k][p] = c * ekp - s * ekq, E[k][q] = s * ekp + c * ekq;
        }
      }
  }
  for (int i = 0; i < 3; i++) lam[i] = A[i][i];
  for (int i = 0; i < 3; i++) /* sort ascending */
    for (int j = i + 1; j < 3; j++)
      if (lam[j] < lam[i]) {
        double t = lam[i];
        lam[i] = lam[j], lam[j] = t;
        for (int k = 0; k < 3; k++) t = E[k][i], E[k][i] = E[k][j], E[k][j] = t;
      }
}

static ffdp_mat4 rigid_about(const double R[3][3], const double cf[3], const double cm[3]) {
  ffdp_mat4 a = ffdp_mat4_identity();
  for (int i = 0; i < 3; i++) {
    double s = 0;
    for (int j = 0; j < 3; j++) a.m[i][j] = R[i][j], s += R[i][j] * cf[j];
    a.m[i][3] = cm[i] - s;
  }
  return a;
}

ffdp_status reg_moments_init(reg_pyramid *pyr, ffdp_mat4 *aff, ffdp_error *err) {
  const ffdp_volume *F = pyr->F, *M = pyr->M;
  double cf[3], cm[3], Cf[3][3], Cm[3][3], Ef[3][3], Em[3][3], lf[3], lm[3];
  const ffdp_comm *shared = pyr->sharded ? pyr->c : NULL;
  /* Candidates are scored at a coarse level (about 4 mm voxels) with MI; built first, so that
   * on a GPU the moments read the source planes the build left there. */
  double sp[3];
  ffdp_volume_spacing(F, sp);
  int shrink = (int)floor(4.0 / fmin(sp[0], fmin(sp[1], sp[2])));
  shrink = shrink < 1 ? 1 : shrink;
  reg_level L;
  ffdp_status st = reg_level_build(pyr, NULL, NULL, shrink, 1.0, &L, err);
  if (st) return st;
  const double t0 = reg_now();
  weighted_moments(F, &pyr->fp, &pyr->dev[0], shared, cf, Cf);
  weighted_moments(M, &pyr->mp, &pyr->dev[1], shared, cm, Cm);
  reg_trace("image moments (%s): %.1f ms", pyr->dev[0].d ? "GPU" : "host", 1e3 * (reg_now() - t0));
  eig3(Cf, Ef, lf);
  eig3(Cm, Em, lm);
  if ((st = reg_level_whole(&L, err))) { /* every rank scores the candidates on the whole level */
    reg_level_free(&L);
    return st;
  }
  float *moved = malloc((size_t)ffdp_volume_nvox(L.F) * sizeof(float));
  ffdp_metric_spec mi = {FFDP_METRIC_MI, 0, 32};
  double best = INFINITY;
  ffdp_mat4 best_aff = ffdp_mat4_identity();
  for (int c = 0; c < 5; c++) {
    double R[3][3];
    if (c == 0) {
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) R[i][j] = i == j;
    } else {
      /* D = diag(s0, s1, s0*s1*det) keeps det(R) = +1 */
      double s0 = (c & 1) ? -1 : 1, s1 = (c & 2) ? -1 : 1, D[3];
      double detf = Ef[0][0] * (Ef[1][1] * Ef[2][2] - Ef[1][2] * Ef[2][1]) - Ef[0][1] * (Ef[1][0] * Ef[2][2] - Ef[1][2] * Ef[2][0]) +
                    Ef[0][2] * (Ef[1][0] * Ef[2][1] - Ef[1][1] * Ef[2][0]);
      double detm = Em[0][0] * (Em[1][1] * Em[2][2] - Em[1][2] * Em[2][1]) - Em[0][1] * (Em[1][0] * Em[2][2] - Em[1][2] * Em[2][0]) +
                    Em[0][2] * (Em[1][0] * Em[2][1] - Em[1][1] * Em[2][0]);
      D[0] = s0, D[1] = s1, D[2] = s0 * s1 * detf * detm;
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
          double s = 0;
          for (int k = 0; k < 3; k++) s += Em[i][k] * D[k] * Ef[j][k];
          R[i][j] = s;
        }
    }
    ffdp_mat4 a = rigid_about(R, cf, cm);
    ffdp_warp w;
    ffdp_warp_fold(a, L.F->vox2world, L.M->vox2world, FFDP_INTERP_LINEAR, FFDP_PAD_ZERO, &w);
    ffdp_sample_fwd_f32(&w, &L.fs, NULL, &L.ms, L.M->data, 1, moved);
    double loss = reg_metric(&mi, &L, moved, L.fmask, NULL);
    if (loss < best - 1e-9) best = loss, best_aff = a;
  }
  free(moved);
  reg_level_free(&L);
  *aff = best_aff;
  return FFDP_OK;
}
