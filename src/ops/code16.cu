// 16-bit image codes on the device (code16.h): the host's functions, run per value, so that an
// image encoded here and one encoded on the host hold the same codes.
#include "ops/code16.h"
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

constexpr int kThreads = 256;

__global__ void encode16_kernel(long long n, const float *__restrict__ src, ffdp_code16 k, uint16_t *__restrict__ dst) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = ffdp_code16_encode(__ldg(src + i), k);
}

__global__ void decode16_kernel(long long n, const uint16_t *__restrict__ src, ffdp_code16 k, float *__restrict__ dst) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride)
    dst[i] = ffdp_code16_decode(__ldg(src + i), k);
}

}  // namespace

extern "C" int ffdp_cuda_encode16(long long n, const float *src, ffdp_code16 k, uint16_t *dst, void *stream) {
  if (n <= 0) return 0;
  encode16_kernel<<<blocks_for(n, kThreads), kThreads, 0, (cudaStream_t)stream>>>(n, src, k, dst);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_decode16(long long n, const uint16_t *src, ffdp_code16 k, float *dst, void *stream) {
  if (n <= 0) return 0;
  decode16_kernel<<<blocks_for(n, kThreads), kThreads, 0, (cudaStream_t)stream>>>(n, src, k, dst);
  return (int)cudaGetLastError();
}
