/* Adam moments on a grid of half the resolution (--state-resolution half).
 *
 * The step's gradient has been smoothed (grad_sigma voxels) before Adam sees it, so its
 * moments carry little detail that a grid of every second voxel per axis cannot: the moments
 * live on coarse points at voxels (2i, 2j, 2k), 1/8 of the optimiser state. The gradient is
 * restricted to the coarse points (tent weights 1-2-1 per axis, taps outside the grid dropped,
 * the weights renormalized) and Adam's moments are updated there; each voxel x then steps by
 *   -step · clamp(mhat(x) / (mean(sqrt(vhat)) + eps), ±3),  m(x) = b1 · mean(m) + (1 - b1) · g(x),
 * means over the 1, 2, 4 or 8 coarse points around x (trilinear at half-way points) of the
 * moments before the update (m) and after it (vhat), g(x) the voxel's own normalized gradient:
 * the history at half resolution, the current gradient's detail at every voxel. The clamp
 * (about Adam's own worst case, (1 - b1) / sqrt(1 - b2)) guards voxels whose gradient is much
 * larger than their coarse points' (a sign change between them). Three passes: the restriction
 * into a transient (3 floats per coarse point, shared by a level's fields), every voxel's step,
 * the coarse moments' update. Alternatives measured (DECISIONS "Adam moments on a coarse
 * grid"); the accuracy: bench/accuracy.md.
 *
 * Over ranks each rank keeps the coarse planes its owned voxels need (z0/2 .. z1/2), so the
 * plane shared by two neighbours is updated by both from the same gradient values (the
 * smoothed gradient is made two planes past the owned ones from the halo): the same bits as
 * one rank. */
#include "reg/reg_internal.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int64_t reg_coarse_axis(int64_t n) { return n / 2 + 1; }

void reg_coarse_planes(const ffdp_slab *s, int64_t *k0, int64_t *k1) {
  *k0 = s->z0 / 2;
  *k1 = s->z1 / 2 + 1;
}

int64_t reg_moment_values(const ffdp_slab *s, int coarse) {
  if (!coarse) return 3 * ffdp_slab_stored(s);
  int64_t k0, k1;
  reg_coarse_planes(s, &k0, &k1);
  return 3 * reg_coarse_axis(s->nx) * reg_coarse_axis(s->ny) * (k1 - k0);
}

void reg_coarse_extend(const ffdp_slab *s, ffdp_slab *ext) {
  *ext = *s;
  ext->z0 = s->z0 - 2 > 0 ? s->z0 - 2 : 0;
  ext->z1 = s->z1 + 2 < s->nz ? s->z1 + 2 : s->nz;
}

static inline float load_m(const reg_moments *mo, const void *p, int64_t i) {
  return mo->bf16 ? reg_from_bf16(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}
static inline void store_m(const reg_moments *mo, void *p, int64_t i, float f) {
  if (mo->bf16) ((uint16_t *)p)[i] = reg_to_bf16(f);
  else ((float *)p)[i] = f;
}

int reg_coarse_adam(const ffdp_slab *s, float *d, const reg_moments *mo, int t, double step, float scale) {
  if (s->z1 <= s->z0) return 0; /* no owned planes: nothing to step (and no planes to read) */
  const int64_t nx = s->nx, ny = s->ny, nz = s->nz, lx = reg_coarse_axis(nx), ly = reg_coarse_axis(ny);
  int64_t k0, k1;
  reg_coarse_planes(s, &k0, &k1);
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  /* the bias corrections by reciprocal, as the CUDA kernels form them */
  const float rc1 = (float)(1 / (1 - pow(0.9, t))), rc2 = (float)(1 / (1 - pow(0.999, t)));
  float *tb = mo->t;
  /* 1: the normalized gradient restricted to every coarse point of the rank's planes */
#pragma omp parallel for schedule(static)
  for (int64_t k = k0; k < k1; k++)
    for (int64_t j = 0; j < ly; j++)
      for (int64_t i = 0; i < lx; i++) {
        float acc[3] = {0, 0, 0}, wsum = 0;
        if (i >= 1 && 2 * i + 1 < nx && j >= 1 && 2 * j + 1 < ny && k >= 1 && 2 * k + 1 < nz) {
          /* inside the grid: every tap, in the same order as below (the same sums) */
          for (int dz = -1; dz <= 1; dz++)
            for (int dy = -1; dy <= 1; dy++) {
              const float wzy = (float)((dz ? 1 : 2) * (dy ? 1 : 2)), w2 = wzy * 2.f;
              const float *r = d + 3 * (((2 * k + dz - s->zlo) * ny + 2 * j + dy) * nx + 2 * i - 1);
              for (int c = 0; c < 3; c++) acc[c] += wzy * r[c], acc[c] += w2 * r[3 + c], acc[c] += wzy * r[6 + c];
            }
          wsum = 64;
        } else {
          for (int dz = -1; dz <= 1; dz++) {
            const int64_t Z = 2 * k + dz;
            if (Z < 0 || Z >= nz) continue;
            for (int dy = -1; dy <= 1; dy++) {
              const int64_t Y = 2 * j + dy;
              if (Y < 0 || Y >= ny) continue;
              const float wzy = (float)((dz ? 1 : 2) * (dy ? 1 : 2));
              const float *row = d + 3 * ((Z - s->zlo) * ny + Y) * nx;
              for (int dx = -1; dx <= 1; dx++) {
                const int64_t X = 2 * i + dx;
                if (X < 0 || X >= nx) continue;
                const float w = wzy * (dx ? 1.f : 2.f);
                acc[0] += w * row[3 * X], acc[1] += w * row[3 * X + 1], acc[2] += w * row[3 * X + 2];
                wsum += w;
              }
            }
          }
        }
        const int64_t J = 3 * (((k - k0) * ly + j) * lx + i);
        for (int c = 0; c < 3; c++) tb[J + c] = acc[c] / wsum * scale;
      }
  /* 2: every owned voxel's step from the means over its coarse points of m (as stored: what
   * the next step reads too) and of sqrt(vhat) after the update, and its own gradient, in place
   * of the gradient */
  const float st = (float)step;
  const int64_t plane = 3 * lx * ly;
  /* per thread, for m and sqrt(vhat) each: two coarse planes, the row's column sums and its
   * means at every voxel */
  const int64_t per = 2 * (2 * plane + 3 * lx + 3 * nx);
  float *all = malloc((size_t)(per * omp_get_max_threads()) * sizeof(float));
  if (!all) return -1;
#pragma omp parallel
  {
    float *mr = all + per * omp_get_thread_num(), *mc = mr + 2 * plane; /* m */
    float *vr = mc + 3 * lx, *vc = vr + 2 * plane;                     /* sqrt(vhat) */
    float *mx = vc + 3 * lx, *vx = mx + 3 * nx;                        /* means at the row's voxels */
    int64_t have = -1;                                                 /* coarse plane in mr[0], vr[0] */
#pragma omp for schedule(static)
    for (int64_t z = s->z0; z < s->z1; z++) {
      const int64_t kz = z / 2, nk = 1 + (z & 1);
      if (have != kz) { /* this thread's planes come in order: reuse the upper plane as the lower */
        int64_t from = 0;
        if (have == kz - 1 && have >= 0) {
          memmove(mr, mr + plane, (size_t)plane * sizeof(float));
          memmove(vr, vr + plane, (size_t)plane * sizeof(float));
          from = 1;
        }
        for (int64_t q = from; q < 2; q++) {
          const int64_t k = kz + q;
          if (k >= k1) break;
          for (int64_t p = 0; p < plane; p++) {
            const int64_t J = (k - k0) * plane + p;
            const float g = tb[J];
            mr[q * plane + p] = load_m(mo, mo->m, J);
            vr[q * plane + p] = sqrtf((b2 * load_m(mo, mo->v, J) + (1 - b2) * g * g) * rc2); /* sqrt(vhat) after */
          }
        }
        have = kz;
      }
      for (int64_t y = 0; y < ny; y++) {
        const int64_t jy = y / 2, nj = 1 + (y & 1);
        /* the sums over the row's coarse points in z and y first (the order
         * ffdp_cuda_coarse_adam adds in), then over x */
        for (int64_t p = 0; p < 3 * lx; p++) {
          float a = 0, b = 0;
          for (int64_t q = 0; q < nk; q++)
            for (int64_t e = 0; e < nj; e++) {
              const int64_t o = 3 * (q * ly + jy + e) * lx + p;
              a += mr[o], b += vr[o];
            }
          mc[p] = a, vc[p] = b;
        }
        float *out = d + 3 * ((z - s->zlo) * ny + y) * nx;
        const float w1 = 1.f / (float)(nk * nj), w2 = w1 / 2; /* powers of two: exact */
        /* the row's means at every voxel, then the step: a loop the compiler vectorizes */
        for (int64_t x = 0; x < nx; x += 2)
          for (int c = 0; c < 3; c++) {
            const int64_t i0 = 3 * (x / 2) + c;
            mx[3 * x + c] = mc[i0] * w1, vx[3 * x + c] = vc[i0] * w1;
            if (x + 1 < nx) mx[3 * x + 3 + c] = (mc[i0] + mc[i0 + 3]) * w2, vx[3 * x + 3 + c] = (vc[i0] + vc[i0 + 3]) * w2;
          }
        for (int64_t i = 0; i < 3 * nx; i++) {
          const float g = out[i] * scale, r = (b1 * mx[i] + (1 - b1) * g) * rc1 / (vx[i] + eps);
          out[i] = -st * (r > REG_COARSE_CLAMP ? REG_COARSE_CLAMP : r < -REG_COARSE_CLAMP ? -REG_COARSE_CLAMP : r);
        }
      }
    }
  }
  free(all);
  /* 3: the coarse moments take the restricted gradient */
  const int64_t nv = reg_moment_values(s, 1);
#pragma omp parallel for schedule(static)
  for (int64_t J = 0; J < nv; J++) {
    const float g = tb[J];
    store_m(mo, mo->m, J, b1 * load_m(mo, mo->m, J) + (1 - b1) * g);
    store_m(mo, mo->v, J, b2 * load_m(mo, mo->v, J) + (1 - b2) * g * g);
  }
  return 0;
}
