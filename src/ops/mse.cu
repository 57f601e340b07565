// CUDA MSE, forward and backward in one pass: reads F and M once, writes the gradient.
// Per-block double partials, summed in block order on the host: deterministic.
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

__global__ void mse_kernel(long long n, const float *__restrict__ F, const float *__restrict__ M,
                           const uint8_t *__restrict__ mask, float norm2, float *__restrict__ g, double *partial) {
  double acc = 0.0;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    float w = mask ? (float)(mask[i] != 0) : 1.f;
    float d = M[i] - F[i];
    acc += (double)(w * d * d);
    if (g) g[i] = norm2 * w * d;
  }
  double s = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

extern "C" int ffdp_cuda_mse(const ffdp_slab *s, const float *F, const float *M, const uint8_t *mask, double norm,
                             float *gM, double *loss, void *stream) {
  const long long P = s->nx * s->ny, off = (s->z0 - s->zlo) * P, n = (s->z1 - s->z0) * P;
  const int blocks = blocks_for(n, 256, 2048);
  double *part, host[2048];
  cudaError_t e = cudaMallocAsync((void **)&part, blocks * sizeof(double), (cudaStream_t)stream);
  if (e) return (int)e;
  mse_kernel<<<blocks, 256, 0, (cudaStream_t)stream>>>(n, F + off, M + off, mask ? mask + off : nullptr, (float)(2 * norm),
                                                        gM ? gM + off : nullptr, part);
  cudaMemcpyAsync(host, part, blocks * sizeof(double), cudaMemcpyDeviceToHost, (cudaStream_t)stream);
  cudaFreeAsync(part, (cudaStream_t)stream);
  if ((e = cudaStreamSynchronize((cudaStream_t)stream))) return (int)e;
  double sum = 0;
  for (int b = 0; b < blocks; b++) sum += host[b];
  *loss = sum * norm;
  return (int)cudaGetLastError();
}
