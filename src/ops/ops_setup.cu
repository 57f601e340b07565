// Device-wide settings the operators rely on (see ffdp_cuda_ops_setup in ops_cuda.h).
#include <cuda_runtime.h>
#include <stdint.h>
#include "ops/ops_cuda.h"

extern "C" int ffdp_cuda_ops_setup(int device) {
  cudaMemPool_t pool;
  cudaError_t e = cudaDeviceGetDefaultMemPool(&pool, device);
  if (e) return (int)e;
  uint64_t keep = 64ull << 20;
  return (int)cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
}
