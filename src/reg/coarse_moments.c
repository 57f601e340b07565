/* Adam moments on a grid of half the resolution (--state-resolution half).
 *
 * The step's gradient has been smoothed (grad_sigma voxels) before Adam sees it, so its
 * moments carry little detail that a grid of every second voxel per axis cannot: the moments
 * live on coarse points at voxels (2i, 2j, 2k), 1/8 of the optimiser state. Each step
 *   1. restricts the smoothed, normalized gradient to the coarse points (tent weights 1-2-1
 *      per axis, taps outside the grid dropped and the weights renormalized),
 *   2. runs Adam there (the moments updated in place),
 *   3. and gives every voxel the mean of the Adam directions mhat / (sqrt(vhat) + eps) of the
 *      coarse points around it (1, 2, 4 or 8: trilinear prolongation at half-way points).
 * Measured on the shared pairs (bench/accuracy.md): the medium pair's NCC is unchanged or
 * better, the 2 mm small pair loses ~0.0005.
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

/* bfloat16 as CUDA rounds it (round to nearest even, NaN kept quiet), and back. */
static inline float through_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x400000u;
  else u += 0x7fffu + ((u >> 16) & 1);
  u &= 0xffff0000u;
  memcpy(&f, &u, 4);
  return f;
}
static inline float load_m(const reg_moments *mo, const void *p, int64_t i) {
  if (mo->bf16) {
    const uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
  }
  return ((const float *)p)[i];
}
static inline void store_m(const reg_moments *mo, void *p, int64_t i, float f) {
  if (mo->bf16) {
    uint32_t u;
    f = through_bf16(f);
    memcpy(&u, &f, 4);
    ((uint16_t *)p)[i] = (uint16_t)(u >> 16);
  } else {
    ((float *)p)[i] = f;
  }
}

int reg_coarse_adam(const ffdp_slab *s, float *d, const reg_moments *mo, int t, double step, float scale) {
  if (s->z1 <= s->z0) return 0; /* no owned planes: nothing to step (and no planes to read) */
  const int64_t nx = s->nx, ny = s->ny, nz = s->nz, lx = reg_coarse_axis(nx), ly = reg_coarse_axis(ny);
  int64_t k0, k1;
  reg_coarse_planes(s, &k0, &k1);
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  /* the bias corrections by reciprocal, as the CUDA kernels form them */
  const float rc1 = (float)(1 / (1 - pow(0.9, t))), rc2 = (float)(1 / (1 - pow(0.999, t)));
  /* 1: restriction and Adam at every coarse point of the rank's planes */
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
        for (int c = 0; c < 3; c++) {
          const float g = acc[c] / wsum * scale;
          store_m(mo, mo->m, J + c, b1 * load_m(mo, mo->m, J + c) + (1 - b1) * g);
          store_m(mo, mo->v, J + c, b2 * load_m(mo, mo->v, J + c) + (1 - b2) * g * g);
        }
      }
  /* 2: every owned voxel takes the mean direction of its coarse points (the stored, rounded
   * moments: what the next step reads too) */
  const float st = (float)step;
  const int64_t plane = 3 * lx * ly;
  const int64_t per = 2 * plane + 3 * lx; /* per thread: directions of two coarse planes, column sums */
  float *all = malloc((size_t)(per * omp_get_max_threads()) * sizeof(float));
  if (!all) return -1;
#pragma omp parallel
  {
    float *rows = all + per * omp_get_thread_num(), *col = rows + 2 * plane;
    int64_t have = -1;                                              /* coarse plane in rows[0] */
#pragma omp for schedule(static)
    for (int64_t z = s->z0; z < s->z1; z++) {
      const int64_t kz = z / 2, nk = 1 + (z & 1);
      if (have != kz) { /* this thread's planes come in order: reuse the upper plane as the lower */
        int64_t from = 0;
        if (have == kz - 1 && have >= 0) memmove(rows, rows + plane, (size_t)plane * sizeof(float)), from = 1;
        for (int64_t q = from; q < 2; q++) {
          const int64_t k = kz + q;
          if (k >= k1) break;
          for (int64_t p = 0; p < plane; p++) {
            const int64_t J = (k - k0) * plane + p;
            rows[q * plane + p] = (load_m(mo, mo->m, J) * rc1) / (sqrtf(load_m(mo, mo->v, J) * rc2) + eps);
          }
        }
        have = kz;
      }
      for (int64_t y = 0; y < ny; y++) {
        const int64_t jy = y / 2, nj = 1 + (y & 1);
        /* the sum over the row's coarse points in y and z first (the order ffdp_cuda_coarse_adam
         * adds in), then over x */
        for (int64_t p = 0; p < 3 * lx; p++) {
          float c = 0;
          for (int64_t q = 0; q < nk; q++)
            for (int64_t b = 0; b < nj; b++) c += rows[3 * (q * ly + jy + b) * lx + p];
          col[p] = c;
        }
        float *out = d + 3 * ((z - s->zlo) * ny + y) * nx;
        const float wy = -st / (float)(nk * nj), w1 = wy, w2 = wy / 2; /* powers of two: exact */
        for (int64_t x = 0; x + 1 < nx; x += 2) {
          const float *c0 = col + 3 * (x / 2);
          out[3 * x] = w1 * c0[0], out[3 * x + 1] = w1 * c0[1], out[3 * x + 2] = w1 * c0[2];
          out[3 * x + 3] = w2 * (c0[0] + c0[3]), out[3 * x + 4] = w2 * (c0[1] + c0[4]), out[3 * x + 5] = w2 * (c0[2] + c0[5]);
        }
        if (nx & 1) {
          const float *c0 = col + 3 * (nx / 2);
          out[3 * (nx - 1)] = w1 * c0[0], out[3 * (nx - 1) + 1] = w1 * c0[1], out[3 * (nx - 1) + 2] = w1 * c0[2];
        }
      }
    }
  }
  free(all);
  return 0;
}
