// Adam with its moments on the coarse grid (points at voxels 2i, 2j, 2k; the CPU operator and
// its reasons: src/reg/coarse_moments.c). Two launches: the restriction of the smoothed gradient
// and the moments' update at every coarse point of the slab's coarse planes, then every owned
// voxel's step, the mean Adam direction of the 1, 2, 4 or 8 coarse points around it.
#include <cuda_bf16.h>
#include "ops/adam_step.cuh"
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

struct Coarse {
  long long nx, ny, nz, zlo, z0, z1, lx, ly, k0, k1;
};

// One thread per coarse point (i, j) of plane k0 + blockIdx.z: tent weights 1-2-1 over the
// voxels around (2i, 2j, 2k) inside the grid, renormalized, then Adam's moments. inv == 0 (a
// vanished gradient) leaves them alone, as the full-grid step does. Rounded as the CPU
// operator rounds (no fused multiply-adds): given the same gradient, the same bits.
template <typename S>
__global__ void coarse_update_kernel(Coarse c, const float *__restrict__ d, S *__restrict__ m, S *__restrict__ v,
                                     const float *__restrict__ inv_dev) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x, j = blockIdx.y * (long long)blockDim.y + threadIdx.y;
  const long long k = c.k0 + blockIdx.z;
  if (i >= c.lx || j >= c.ly || k >= c.k1) return;
  const float inv = *inv_dev;
  if (inv == 0.f) return;
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
        const float w = wzy * (dx ? 1.f : 2.f);
#pragma unroll
        for (int q = 0; q < 3; q++) acc[q] = __fadd_rn(acc[q], __fmul_rn(w, row[3 * X + q]));
        wsum += w;
      }
    }
  }
  const long long J = 3 * (((k - c.k0) * c.ly + j) * c.lx + i);
  const float b1 = 0.9f, b2 = 0.999f;
#pragma unroll
  for (int q = 0; q < 3; q++) {
    const float g = __fmul_rn(__fdiv_rn(acc[q], wsum), inv);
    store_state(m, J + q, __fadd_rn(__fmul_rn(b1, load_state(m, J + q)), __fmul_rn(1.f - b1, g)));
    store_state(v, J + q, __fadd_rn(__fmul_rn(b2, load_state(v, J + q)), __fmul_rn(__fmul_rn(1.f - b2, g), g)));
  }
}

// d at every owned voxel: -step · the mean of mhat / (sqrt(vhat) + eps) over its coarse
// points (the stored moments); zero when the gradient vanished.
template <typename S>
__global__ void coarse_step_kernel(Coarse c, float *__restrict__ d, const S *__restrict__ m, const S *__restrict__ v,
                                   const float *__restrict__ inv_dev, AdamConst k) {
  const long long x = blockIdx.x * (long long)blockDim.x + threadIdx.x, y = blockIdx.y * (long long)blockDim.y + threadIdx.y;
  const long long z = c.z0 + blockIdx.z;
  if (x >= c.nx || y >= c.ny || z >= c.z1) return;
  float *out = d + 3 * (((z - c.zlo) * c.ny + y) * c.nx + x);
  if (*inv_dev == 0.f) {
    out[0] = out[1] = out[2] = 0.f;
    return;
  }
  const float eps = 1e-8f;
  const long long ix = x >> 1, jy = y >> 1, kz = z >> 1;
  const int ni = 1 + (int)(x & 1), nj = 1 + (int)(y & 1), nk = 1 + (int)(z & 1);
  // columns over y and z first, then x: the CPU operator's order
  float acc[3] = {0.f, 0.f, 0.f};
  for (int a = 0; a < ni; a++) {
    float col[3] = {0.f, 0.f, 0.f};
    for (int q = 0; q < nk; q++)
      for (int b = 0; b < nj; b++) {
        const long long J = 3 * (((kz + q - c.k0) * c.ly + jy + b) * c.lx + ix + a);
#pragma unroll
        for (int e = 0; e < 3; e++)
          col[e] = __fadd_rn(col[e], __fdiv_rn(__fmul_rn(load_state(m, J + e), k.rc1),
                                               __fadd_rn(__fsqrt_rn(__fmul_rn(load_state(v, J + e), k.rc2)), eps)));
      }
#pragma unroll
    for (int e = 0; e < 3; e++) acc[e] = a ? __fadd_rn(acc[e], col[e]) : col[e];
  }
  const float w = __fdiv_rn(-k.step / (float)(nj * nk), (float)ni);
#pragma unroll
  for (int e = 0; e < 3; e++) out[e] = __fmul_rn(w, acc[e]);
}

template <typename S>
int launch(const ffdp_slab *s, float *d, void *m, void *v, const float *inv_dev, int t, double step,
           cudaStream_t st) {
  Coarse c = {s->nx, s->ny, s->nz, s->zlo, s->z0, s->z1, s->nx / 2 + 1, s->ny / 2 + 1, s->z0 / 2, s->z1 / 2 + 1};
  const dim3 block(32, 8);
  const dim3 gc((unsigned)((c.lx + 31) / 32), (unsigned)((c.ly + 7) / 8), (unsigned)(c.k1 - c.k0));
  coarse_update_kernel<S><<<gc, block, 0, st>>>(c, d, (S *)m, (S *)v, inv_dev);
  const dim3 gs((unsigned)((c.nx + 31) / 32), (unsigned)((c.ny + 7) / 8), (unsigned)(c.z1 - c.z0));
  coarse_step_kernel<S><<<gs, block, 0, st>>>(c, d, (const S *)m, (const S *)v, inv_dev, adam_const(t, step));
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int ffdp_cuda_coarse_adam(const ffdp_slab *s, float *d, void *m, void *v, int bf16_state,
                                     const float *inv_dev, int t, double step, void *stream) {
  if (s->z1 <= s->z0) return 0;
  if (s->ny > 8 * 65535LL || s->z1 - s->z0 > 65535 || s->nx > (1LL << 31) - 64) return (int)cudaErrorInvalidValue;
  return bf16_state ? launch<__nv_bfloat16>(s, d, m, v, inv_dev, t, step, (cudaStream_t)stream)
                    : launch<float>(s, d, m, v, inv_dev, t, step, (cudaStream_t)stream);
}
