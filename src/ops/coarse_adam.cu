// Adam with its moments on the coarse grid (points at voxels 2i, 2j, 2k; the CPU operator and
// its reasons: src/reg/coarse_moments.c). Three launches: the smoothed gradient restricted to
// the coarse points of the slab's coarse planes (into a transient), every owned voxel's step
// from the means of the coarse moments and its own gradient, the coarse moments' update. The
// per-thread bodies live in coarse_adam.cuh, which a host test runs against the CPU operator.
#include <cuda_bf16.h>
#include "ops/coarse_adam.cuh"
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

// One thread per coarse point (i, j) of plane k0 + blockIdx.z; nothing when the gradient
// vanished (inv == 0).
__global__ void coarse_restrict_kernel(Coarse c, const float *__restrict__ d, float *__restrict__ tb,
                                       const float *__restrict__ inv_dev) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x, j = blockIdx.y * (long long)blockDim.y + threadIdx.y;
  const long long k = c.k0 + blockIdx.z;
  if (i >= c.lx || j >= c.ly || k >= c.k1) return;
  const float inv = *inv_dev;
  if (inv == 0.f) return;
  coarse_restrict_point(c, d, tb, inv, i, j, k);
}

// One thread per owned voxel (x, y) of plane z0 + blockIdx.z; zero steps when the gradient
// vanished.
template <typename S>
__global__ void coarse_step_kernel(Coarse c, float *__restrict__ d, const S *__restrict__ m, const S *__restrict__ v,
                                   const float *__restrict__ tb, const float *__restrict__ inv_dev, AdamConst k) {
  const long long x = blockIdx.x * (long long)blockDim.x + threadIdx.x, y = blockIdx.y * (long long)blockDim.y + threadIdx.y;
  const long long z = c.z0 + blockIdx.z;
  if (x >= c.nx || y >= c.ny || z >= c.z1) return;
  coarse_step_voxel(c, d, m, v, tb, *inv_dev, k, x, y, z);
}

// The coarse moments' update, grid-stride; left alone when the gradient vanished.
template <typename S>
__global__ void coarse_update_kernel(long long n, const float *__restrict__ tb, S *__restrict__ m, S *__restrict__ v,
                                     const float *__restrict__ inv_dev) {
  if (*inv_dev == 0.f) return;
  for (long long J = blockIdx.x * (long long)blockDim.x + threadIdx.x; J < n; J += (long long)gridDim.x * blockDim.x)
    coarse_update_value(tb, m, v, J);
}

template <typename S>
int launch(const ffdp_slab *s, float *d, void *m, void *v, float *tb, const float *inv_dev, int t, double step,
           cudaStream_t st) {
  const Coarse c = coarse_of(s->nx, s->ny, s->nz, s->zlo, s->z0, s->z1);
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
