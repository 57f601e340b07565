// CUDA MSE, forward and backward in one pass: reads F and M once, writes the gradient.
// Per-block double partials, summed on the device in a fixed order: deterministic, and only
// the loss crosses to the host.
#include <stdint.h>
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

constexpr int kBlocks = 2048, kThreads = 256;

__device__ __forceinline__ double mse_one(float f, float m, float w, float norm2, float *g, long long i) {
  const float d = m - f;
  if (g) g[i] = norm2 * w * d;
  return (double)(w * d * d);
}

// V: 16-byte loads and stores (no mask, every pointer aligned); the tail past the last whole
// four goes one by one.
template <bool V>
__global__ void __launch_bounds__(kThreads) mse_kernel(long long n, const float *__restrict__ F,
                                                       const float *__restrict__ M, const uint8_t *__restrict__ mask,
                                                       float norm2, float *__restrict__ g, double *partial) {
  double acc = 0.0;
  const long long t0 = blockIdx.x * (long long)blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
  long long tail = 0;
  if (V) {
    const long long n4 = n / 4;
    for (long long q = t0; q < n4; q += stride) {
      const float4 f = reinterpret_cast<const float4 *>(F)[q], m = reinterpret_cast<const float4 *>(M)[q];
      const float d0 = m.x - f.x, d1 = m.y - f.y, d2 = m.z - f.z, d3 = m.w - f.w;
      if (g) reinterpret_cast<float4 *>(g)[q] = make_float4(norm2 * d0, norm2 * d1, norm2 * d2, norm2 * d3);
      acc += (double)(d0 * d0), acc += (double)(d1 * d1), acc += (double)(d2 * d2), acc += (double)(d3 * d3);
    }
    tail = 4 * n4;
  }
  for (long long i = tail + t0; i < n; i += stride)
    acc += mse_one(F[i], M[i], mask ? (float)(mask[i] != 0) : 1.f, norm2, g, i);
  double s = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// One block: each thread sums a fixed stride of the partials, then a fixed tree.
__global__ void sum_partials(int nb, const double *partial, double *out) {
  double s = 0.0;
  for (int b = threadIdx.x; b < nb; b += blockDim.x) s += partial[b];
  s = block_sum(s);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

extern "C" int ffdp_cuda_mse(const ffdp_slab *s, const float *F, const float *M, const uint8_t *mask, double norm,
                             float *gM, double *loss, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const long long P = s->nx * s->ny, off = (s->z0 - s->zlo) * P, n = (s->z1 - s->z0) * P;
  const int blocks = blocks_for(n, kThreads, kBlocks);
  double *part, sum = 0.0;
  cudaError_t e = cudaMallocAsync((void **)&part, (blocks + 1) * sizeof(double), st);
  if (e) return (int)e;
  const float *f = F + off, *m = M + off;
  float *g = gM ? gM + off : nullptr;
  const bool vec = !mask && (((uintptr_t)f | (uintptr_t)m | (uintptr_t)g) & 15) == 0;
  if (vec)
    mse_kernel<true><<<blocks, kThreads, 0, st>>>(n, f, m, nullptr, (float)(2 * norm), g, part);
  else
    mse_kernel<false><<<blocks, kThreads, 0, st>>>(n, f, m, mask ? mask + off : nullptr, (float)(2 * norm), g, part);
  sum_partials<<<1, 1024, 0, st>>>(blocks, part, part + blocks);
  cudaMemcpyAsync(&sum, part + blocks, sizeof(double), cudaMemcpyDeviceToHost, st);
  cudaFreeAsync(part, st);
  if ((e = cudaStreamSynchronize(st))) return (int)e;
  *loss = sum * norm;
  return (int)cudaGetLastError();
}
