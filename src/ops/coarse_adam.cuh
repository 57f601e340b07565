// The per-thread bodies of the coarse-moment kernels (coarse_adam.cu), compiled for the device
// and for the host: tests/test_coarse_adam_host.cu runs them on the CPU, thread by thread, and
// compares with the CPU operator (reg/coarse_moments.c) bit for bit, so the kernels' indexing
// and rounding are checked on a machine without a GPU. Every operation is rounded once, in the
// CPU operator's order (no fused multiply-adds: the host build takes -ffp-contract=off).
#pragma once
#include <cuda_bf16.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops/adam_step.cuh"

namespace ffdp_cuda {

struct Coarse {
  long long nx, ny, nz, zlo, z0, z1, lx, ly, k0, k1;
};

constexpr float kCoarseClamp = 3.0f;  // REG_COARSE_CLAMP (reg/reg_internal.h): the CPU operator's bound

__host__ __device__ __forceinline__ float c_add(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
__host__ __device__ __forceinline__ float c_mul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ __forceinline__ float c_div(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
__host__ __device__ __forceinline__ float c_sqrt(float a) {
#ifdef __CUDA_ARCH__
  return __fsqrt_rn(a);
#else
  return sqrtf(a);
#endif
}

inline Coarse coarse_of(long long nx, long long ny, long long nz, long long zlo, long long z0, long long z1) {
  Coarse c = {nx, ny, nz, zlo, z0, z1, nx / 2 + 1, ny / 2 + 1, z0 / 2, z1 / 2 + 1};
  return c;
}

// 1: coarse point (i, j, k): the normalized gradient restricted to it (tent weights 1-2-1 over
// the voxels around (2i, 2j, 2k) inside the grid, renormalized) into the transient tb.
__host__ __device__ inline void coarse_restrict_point(const Coarse &c, const float *d, float *tb, float inv, long long i,
                                                      long long j, long long k) {
  float acc[3] = {0.f, 0.f, 0.f}, wsum = 0.f;
  for (int dz = -1; dz <= 1; dz++) {
    const long long Z = 2 * k + dz;
    if (Z < 0 || Z >= c.nz) continue;
    for (int dy = -1; dy <= 1; dy++) {
      const long long Y = 2 * j + dy;
      if (Y < 0 || Y >= c.ny) continue;
      const float wzy = (float)((dz ? 1 : 2) * (dy ? 1 : 2));
      const float *row = d + 3 * ((Z - c.zlo) * c.ny + Y) * c.nx;
      for (int dx = -1; dx <= 1; dx++) {
        const long long X = 2 * i + dx;
        if (X < 0 || X >= c.nx) continue;
        const float w = c_mul(wzy, dx ? 1.f : 2.f);
        for (int q = 0; q < 3; q++) acc[q] = c_add(acc[q], c_mul(w, row[3 * X + q]));
        wsum = c_add(wsum, w);
      }
    }
  }
  const long long J = 3 * (((k - c.k0) * c.ly + j) * c.lx + i);
  for (int q = 0; q < 3; q++) tb[J + q] = c_mul(c_div(acc[q], wsum), inv);
}

// 2: owned voxel (x, y, z): its step from the means over its 1, 2, 4 or 8 coarse points of m
// (as it was) and of sqrt(vhat) (as the update will make it), and its own gradient, clamped.
// A block at a time: a block of TX x TY fine voxels (first column and row even) reads,
// at fine plane z, the coarse points i0 .. i0 + TX/2, j0 .. j0 + TY/2 of planes z/2 and (z odd)
// z/2 + 1. Each point's m and sqrt(vhat) are worked out once into the block's tile (one thread a
// point) instead of by each of the up to 27 voxels that read it (a square root and nine loads
// each: what bound the per-voxel step). The same expressions, so the same bits.
// The tile holds two coarse planes, plane K in slot K & 1: a block marching its fine planes in
// order works out each coarse plane once (for an even plane z, plane z/2 + 1 goes into the slot
// that z's step does not read, ready for z + 1), instead of once for each of the up to three
// fine planes that read it.
template <int TX, int TY>
struct CoarseTile {
  static constexpr int CX = TX / 2 + 1, CY = TY / 2 + 1, PP = CX * CY, NP = 2 * PP;
  float m[3][NP], s[3][NP];  // component-major: a thread's point, consecutive words
};

// Point p (< PP) of coarse plane K into its slot (nothing for p past the plane's points or
// outside the coarse grid).
template <typename S, int TX, int TY>
__host__ __device__ inline void coarse_tile_fill(const Coarse &c, const S *m, const S *v, const float *tb, AdamConst k,
                                                 long long i0, long long j0, long long K, int p, CoarseTile<TX, TY> &t) {
  using T = CoarseTile<TX, TY>;
  const float b2 = 0.999f;
  const int a = p % T::CX, b = p / T::CX;
  const long long i = i0 + a, j = j0 + b;
  if (p >= T::PP || i >= c.lx || j >= c.ly || K < c.k0 || K >= c.k1) return;
  const long long J = 3 * (((K - c.k0) * c.ly + j) * c.lx + i);
  const int P = (int)(K & 1) * T::PP + p;
  for (int e = 0; e < 3; e++) {
    const float gt = tb[J + e];
    const float vh = c_mul(c_add(c_mul(b2, load_state(v, J + e)), c_mul(c_mul(1.f - b2, gt), gt)), k.rc2);
    t.m[e][P] = load_state(m, J + e), t.s[e][P] = c_sqrt(vh);
  }
}

// Every point fine plane z reads, one per thread p (< NP): plane z/2, and z/2 + 1 for odd z.
template <typename S, int TX, int TY>
__host__ __device__ inline void coarse_tile_point(const Coarse &c, const S *m, const S *v, const float *tb, AdamConst k,
                                                  long long i0, long long j0, long long z, int p, CoarseTile<TX, TY> &t) {
  using T = CoarseTile<TX, TY>;
  const int q = p / T::PP;
  if (q > (int)(z & 1)) return;
  coarse_tile_fill(c, m, v, tb, k, i0, j0, (z >> 1) + q, p - q * T::PP, t);
}

// A march from fine plane za starts with coarse_tile_point(za). During fine plane z of a march
// ending before zb: the coarse plane z + 1 adds (thread p < PP), into the slot z does not read.
template <typename S, int TX, int TY>
__host__ __device__ inline void coarse_tile_ahead(const Coarse &c, const S *m, const S *v, const float *tb, AdamConst k,
                                                  long long i0, long long j0, long long z, long long zb, int p,
                                                  CoarseTile<TX, TY> &t) {
  if (!(z & 1) && z + 1 < zb) coarse_tile_fill(c, m, v, tb, k, i0, j0, (z >> 1) + 1, p, t);
}

// Phase 2: the step of voxel (x, y, z) of the block whose tile starts at (i0, j0), from its
// gradient g into out (which may be g).
template <int TX, int TY>
__host__ __device__ inline void coarse_step_tile(const CoarseTile<TX, TY> &t, const float *g, float inv, AdamConst k,
                                                 long long i0, long long j0, long long x, long long y, long long z,
                                                 float *out) {
  using T = CoarseTile<TX, TY>;
  if (inv == 0.f) {
    out[0] = out[1] = out[2] = 0.f;
    return;
  }
  const float b1 = 0.9f, eps = 1e-8f;
  const int ix = (int)((x >> 1) - i0), jy = (int)((y >> 1) - j0);
  const int ni = 1 + (int)(x & 1), nj = 1 + (int)(y & 1), nk = 1 + (int)(z & 1);
  // columns over z and y first, then x: the CPU operator's order
  float sm[3] = {0.f, 0.f, 0.f}, sv[3] = {0.f, 0.f, 0.f};
  for (int a = 0; a < ni; a++) {
    float cm[3] = {0.f, 0.f, 0.f}, cv[3] = {0.f, 0.f, 0.f};
    for (int q = 0; q < nk; q++)
      for (int b = 0; b < nj; b++) {
        const int P = ((int)(((z >> 1) + q) & 1) * T::CY + jy + b) * T::CX + ix + a;
        for (int e = 0; e < 3; e++) cm[e] = c_add(cm[e], t.m[e][P]), cv[e] = c_add(cv[e], t.s[e][P]);
      }
    for (int e = 0; e < 3; e++) sm[e] = a ? c_add(sm[e], cm[e]) : cm[e], sv[e] = a ? c_add(sv[e], cv[e]) : cv[e];
  }
  const float w1 = 1.f / (float)(nk * nj), w = ni == 2 ? w1 / 2 : w1;  // powers of two: exact
  float r[3];
  for (int e = 0; e < 3; e++) {
    const float M = c_mul(sm[e], w), V = c_mul(sv[e], w), ge = c_mul(g[e], inv);
    r[e] = c_div(c_mul(c_add(c_mul(b1, M), c_mul(1.f - b1, ge)), k.rc1), c_add(V, eps));
  }
  for (int e = 0; e < 3; e++)
    out[e] = c_mul(-k.step, r[e] > kCoarseClamp ? kCoarseClamp : r[e] < -kCoarseClamp ? -kCoarseClamp : r[e]);
}

// The host's launch choices for the marching kernels: the chunks a slab's planes go in (32, as
// the sampler's z-blocks; 16 and 64 ran the same, H100 256^3, NOTES run 164), and the bench's
// A/B switch FFDP_COARSE_TILE=plane: a block a plane (coarse_tile_point for each), the march's
// predecessor.
inline bool coarse_tile_by_plane() {
  const char *e = getenv("FFDP_COARSE_TILE");
  return e && !strcmp(e, "plane");
}
inline long long coarse_march_chunks(long long nzo) { return nzo < 32 ? (nzo > 0 ? nzo : 1) : 32; }

// A block's march: fine planes [za, zb) of a chunk of `per` planes (chunk blockIdx.z).
struct ChunkPlanes {
  long long za, zb;
};
__host__ __device__ inline ChunkPlanes chunk_planes(long long z0, long long z1, long long per, long long chunk) {
  const long long a = z0 + chunk * per, b = a + per < z1 ? a + per : z1;
  return ChunkPlanes{a, b};
}

// 3: coarse value J: the moments take the restricted gradient.
template <typename S>
__host__ __device__ inline void coarse_update_value(const float *tb, S *m, S *v, long long J) {
  const float b1 = 0.9f, b2 = 0.999f, g = tb[J];
  store_state(m, J, c_add(c_mul(b1, load_state(m, J)), c_mul(1.f - b1, g)));
  store_state(v, J, c_add(c_mul(b2, load_state(v, J)), c_mul(c_mul(1.f - b2, g), g)));
}

}  // namespace ffdp_cuda
