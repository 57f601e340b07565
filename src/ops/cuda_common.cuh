// Shared helpers for the CUDA operators.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace ffdp_cuda {

inline int blocks_for(long long n, int block, int cap = 65535 * 8) {
  long long b = (n + block - 1) / block;
  return (int)(b < 1 ? 1 : b > cap ? cap : b);
}

// Block-wide sum of a double (blockDim.x a multiple of 32, at most 1024); result in thread 0.
__device__ inline double block_sum(double v) {
  __shared__ double sh[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  double s = 0.0;
  if (threadIdx.x == 0)
    for (int k = 0; k < (int)(blockDim.x >> 5); k++) s += sh[k];
  return s;
}

// Squared norm of a 3-vector with its multiply-adds spelled out: the max-norm kernel and the
// blur's fused epilogue must give the same bits.
__device__ __forceinline__ float norm2(float a, float b, float c) { return fmaf(c, c, fmaf(b, b, a * a)); }

}  // namespace ffdp_cuda
