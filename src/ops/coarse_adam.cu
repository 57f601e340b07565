// Adam with its moments on the coarse grid (points at voxels 2i, 2j, 2k; the CPU operator and
// its reasons: src/reg/coarse_moments.c). Three launches: the smoothed gradient restricted to
// the coarse points of the slab's coarse planes (into a transient), every owned voxel's step
// from the means of the coarse moments and its own gradient, the coarse moments' update.
#include <cuda_bf16.h>
#include "ops/adam_step.cuh"
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

struct Coarse {
  long long nx, ny, nz, zlo, z0, z1, lx, ly, k0, k1;
};

constexpr float kClamp = 3.0f;  // REG_COARSE_CLAMP (reg/reg_internal.h): the CPU operator's bound

// 1: one thread per coarse point (i, j) of plane k0 + blockIdx.z: the normalized gradient
// restricted to it (tent weights 1-2-1 over the voxels around (2i, 2j, 2k) inside the grid,
// renormalized) into the transient tb. Rounded as the CPU operator rounds (no fused
// multiply-adds anywhere here): given the same gradient, the same bits.
__global__ void coarse_restrict_kernel(Coarse c, const float *__restrict__ d, float *__restrict__ tb,
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
        const float w = __fmul_rn(wzy, dx ? 1.f : 2.f);
#pragma unroll
        for (int q = 0; q < 3; q++) acc[q] = __fadd_rn(acc[q], __fmul_rn(w, row[3 * X + q]));
        wsum = __fadd_rn(wsum, w);
      }
    }
  }
  const long long J = 3 * (((k - c.k0) * c.ly + j) * c.lx + i);
#pragma unroll
  for (int q = 0; q < 3; q++) tb[J + q] = __fmul_rn(__fdiv_rn(acc[q], wsum), inv);
}

// 2: every owned voxel's step from the means over its 1, 2, 4 or 8 coarse points of m (as it
// was) and of sqrt(vhat) (as the update will make it), and its own gradient, clamped, in place
// of the gradient; zero when the gradient vanished.
template <typename S>
__global__ void coarse_step_kernel(Coarse c, float *__restrict__ d, const S *__restrict__ m, const S *__restrict__ v,
                                   const float *__restrict__ tb, const float *__restrict__ inv_dev, AdamConst k) {
  const long long x = blockIdx.x * (long long)blockDim.x + threadIdx.x, y = blockIdx.y * (long long)blockDim.y + threadIdx.y;
  const long long z = c.z0 + blockIdx.z;
  if (x >= c.nx || y >= c.ny || z >= c.z1) return;
  float *out = d + 3 * (((z - c.zlo) * c.ny + y) * c.nx + x);
  const float inv = *inv_dev;
  if (inv == 0.f) {
    out[0] = out[1] = out[2] = 0.f;
    return;
  }
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  const long long ix = x >> 1, jy = y >> 1, kz = z >> 1;
  const int ni = 1 + (int)(x & 1), nj = 1 + (int)(y & 1), nk = 1 + (int)(z & 1);
  // columns over z and y first, then x: the CPU operator's order
  float sm[3] = {0.f, 0.f, 0.f}, sv[3] = {0.f, 0.f, 0.f};
  for (int a = 0; a < ni; a++) {
    float cm[3] = {0.f, 0.f, 0.f}, cv[3] = {0.f, 0.f, 0.f};
    for (int q = 0; q < nk; q++)
      for (int b = 0; b < nj; b++) {
        const long long J = 3 * (((kz + q - c.k0) * c.ly + jy + b) * c.lx + ix + a);
#pragma unroll
        for (int e = 0; e < 3; e++) {
          const float g = tb[J + e];
          const float vh = __fmul_rn(__fadd_rn(__fmul_rn(b2, load_state(v, J + e)), __fmul_rn(__fmul_rn(1.f - b2, g), g)), k.rc2);
          cm[e] = __fadd_rn(cm[e], load_state(m, J + e)), cv[e] = __fadd_rn(cv[e], __fsqrt_rn(vh));
        }
      }
#pragma unroll
    for (int e = 0; e < 3; e++) sm[e] = a ? __fadd_rn(sm[e], cm[e]) : cm[e], sv[e] = a ? __fadd_rn(sv[e], cv[e]) : cv[e];
  }
  const float w1 = 1.f / (float)(nk * nj), w = ni == 2 ? w1 / 2 : w1;  // powers of two: exact
#pragma unroll
  for (int e = 0; e < 3; e++) {
    const float M = __fmul_rn(sm[e], w), V = __fmul_rn(sv[e], w), g = __fmul_rn(out[e], inv);
    const float r = __fdiv_rn(__fmul_rn(__fadd_rn(__fmul_rn(b1, M), __fmul_rn(1.f - b1, g)), k.rc1), __fadd_rn(V, eps));
    out[e] = __fmul_rn(-k.step, r > kClamp ? kClamp : r < -kClamp ? -kClamp : r);
  }
}

// 3: the coarse moments take the restricted gradient (left alone when it vanished).
template <typename S>
__global__ void coarse_update_kernel(long long n, const float *__restrict__ tb, S *__restrict__ m, S *__restrict__ v,
                                     const float *__restrict__ inv_dev) {
  if (*inv_dev == 0.f) return;
  const float b1 = 0.9f, b2 = 0.999f;
  for (long long J = blockIdx.x * (long long)blockDim.x + threadIdx.x; J < n; J += (long long)gridDim.x * blockDim.x) {
    const float g = tb[J];
    store_state(m, J, __fadd_rn(__fmul_rn(b1, load_state(m, J)), __fmul_rn(1.f - b1, g)));
    store_state(v, J, __fadd_rn(__fmul_rn(b2, load_state(v, J)), __fmul_rn(__fmul_rn(1.f - b2, g), g)));
  }
}

template <typename S>
int launch(const ffdp_slab *s, float *d, void *m, void *v, float *tb, const float *inv_dev, int t, double step,
           cudaStream_t st) {
  Coarse c = {s->nx, s->ny, s->nz, s->zlo, s->z0, s->z1, s->nx / 2 + 1, s->ny / 2 + 1, s->z0 / 2, s->z1 / 2 + 1};
  const dim3 block(32, 8);
  const dim3 gc((unsigned)((c.lx + 31) / 32), (unsigned)((c.ly + 7) / 8), (unsigned)(c.k1 - c.k0));
  coarse_restrict_kernel<<<gc, block, 0, st>>>(c, d, tb, inv_dev);
  const dim3 gs((unsigned)((c.nx + 31) / 32), (unsigned)((c.ny + 7) / 8), (unsigned)(c.z1 - c.z0));
  coarse_step_kernel<S><<<gs, block, 0, st>>>(c, d, (const S *)m, (const S *)v, tb, inv_dev, adam_const(t, step));
  const long long n = 3 * c.lx * c.ly * (c.k1 - c.k0);
  const long long nb = (n + 255) / 256 < 8192 ? (n + 255) / 256 : 8192;
  coarse_update_kernel<S><<<(unsigned)nb, 256, 0, st>>>(n, tb, (S *)m, (S *)v, inv_dev);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int ffdp_cuda_coarse_adam(const ffdp_slab *s, float *d, void *m, void *v, int bf16_state, float *tb,
                                     const float *inv_dev, int t, double step, void *stream) {
  if (s->z1 <= s->z0) return 0;
  if (s->ny > 8 * 65535LL || s->z1 - s->z0 > 65535 || s->nx > (1LL << 31) - 64) return (int)cudaErrorInvalidValue;
  return bf16_state ? launch<__nv_bfloat16>(s, d, m, v, tb, inv_dev, t, step, (cudaStream_t)stream)
                    : launch<float>(s, d, m, v, tb, inv_dev, t, step, (cudaStream_t)stream);
}
