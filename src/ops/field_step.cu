// CUDA pieces of the deformable update (same math as reg_field_step in greedy.c):
// the largest vector norm of a field, the fused normalize + Adam step (fp32 or bf16 moments),
// and x + y.
#include <cuda_bf16.h>
#include "ops/adam_step.cuh"
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

__global__ void maxnorm_kernel(long long n, const float *__restrict__ g, float *partial) {
  float m = 0.f;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    m = fmaxf(m, norm2(g[3 * i], g[3 * i + 1], g[3 * i + 2]));
  }
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_down_sync(0xffffffffu, m, o));
  __shared__ float sh[32];
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    float r = 0.f;
    for (int k = 0; k < (int)(blockDim.x >> 5); k++) r = fmaxf(r, sh[k]);
    partial[blockIdx.x] = r;
  }
}

// d <- -step · mhat / (sqrt(vhat) + eps) with g = d / mx fed into the moments.
template <typename S>
__global__ void adam_kernel(long long n, float *__restrict__ d, S *__restrict__ m, S *__restrict__ v, float inv_mx,
                            AdamConst k) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    d[i] = adam_elem(d[i], inv_mx, m, v, i, k);
}

// The same with the normalization read on the device (from maxnorm_final): no host round
// trip. A vanished gradient (inv == 0) gives a zero update and leaves the moments alone.
template <typename S>
__global__ void adam_dev_kernel(long long n, float *__restrict__ d, S *__restrict__ m, S *__restrict__ v,
                                const float *__restrict__ inv_dev, AdamConst k) {
  const float inv_mx = *inv_dev;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    d[i] = inv_mx == 0.f ? 0.f : adam_elem(d[i], inv_mx, m, v, i, k);
}

// partial[0..nb) -> partial[1024] = largest norm, partial[1025] = its inverse (0 when none),
// in the same double arithmetic as the host path, so both give the same bits.
__global__ void maxnorm_final(int nb, float *partial) {
  __shared__ float sh[1024];
  float m = 0.f;
  for (int k = threadIdx.x; k < nb; k += blockDim.x) m = fmaxf(m, partial[k]);
  sh[threadIdx.x] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int k = 1; k < (int)blockDim.x; k++) m = fmaxf(m, sh[k]);
    const double mx = sqrt((double)m);
    partial[1024] = (float)mx;
    partial[1025] = mx > 0 ? (float)(1.0 / mx) : 0.f;
  }
}

__global__ void axpby_kernel(long long n, float *__restrict__ y, float a, const float *__restrict__ x, float b) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    y[i] = a * y[i] + b * x[i];
}

// y = a·y + T·x per 3-vector
__global__ void linmap_kernel(long long n, float *__restrict__ y, float a, const float *__restrict__ x, float t00, float t01,
                              float t02, float t10, float t11, float t12, float t20, float t21, float t22) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    float x0 = x[3 * i], x1 = x[3 * i + 1], x2 = x[3 * i + 2];
    y[3 * i] = a * y[3 * i] + t00 * x0 + t01 * x1 + t02 * x2;
    y[3 * i + 1] = a * y[3 * i + 1] + t10 * x0 + t11 * x1 + t12 * x2;
    y[3 * i + 2] = a * y[3 * i + 2] + t20 * x0 + t21 * x1 + t22 * x2;
  }
}

}  // namespace

extern "C" int ffdp_cuda_maxnorm3(long long n, const float *g, float *scratch, double *out, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const int blocks = 1024;
  maxnorm_kernel<<<blocks, 256, 0, st>>>(n, g, scratch);
  float host[1024];
  cudaError_t e = cudaGetLastError();  // the launch, then the copy back
  if (!e) e = cudaMemcpyAsync(host, scratch, sizeof host, cudaMemcpyDeviceToHost, st);
  if (!e) e = cudaStreamSynchronize(st);
  if (e) return (int)e;
  float m = 0.f;
  for (int b = 0; b < blocks; b++) m = host[b] > m ? host[b] : m;
  *out = sqrt((double)m);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_maxnorm3_dev(long long n, const float *g, float *scratch, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  maxnorm_kernel<<<1024, 256, 0, st>>>(n, g, scratch);
  maxnorm_final<<<1, 1024, 0, st>>>(1024, scratch);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_adam_step_dev(long long n, float *d, void *m, void *v, int bf16_state, const float *inv_dev, int t,
                                       double step, void *stream) {
  const AdamConst k = adam_const(t, step);
  const int nb = blocks_for(n, 256, 132 * 16);
  cudaStream_t st = (cudaStream_t)stream;
  if (bf16_state)
    adam_dev_kernel<<<nb, 256, 0, st>>>(n, d, (__nv_bfloat16 *)m, (__nv_bfloat16 *)v, inv_dev, k);
  else
    adam_dev_kernel<<<nb, 256, 0, st>>>(n, d, (float *)m, (float *)v, inv_dev, k);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_adam_step(long long n, float *d, void *m, void *v, int bf16_state, double inv_mx, int t,
                                   double step, void *stream) {
  const AdamConst k = adam_const(t, step);
  const int nb = blocks_for(n, 256, 132 * 16);
  cudaStream_t st = (cudaStream_t)stream;
  if (bf16_state)
    adam_kernel<<<nb, 256, 0, st>>>(n, d, (__nv_bfloat16 *)m, (__nv_bfloat16 *)v, (float)inv_mx, k);
  else
    adam_kernel<<<nb, 256, 0, st>>>(n, d, (float *)m, (float *)v, (float)inv_mx, k);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_axpby(long long n, float *y, double a, const float *x, double b, void *stream) {
  axpby_kernel<<<blocks_for(n, 256, 132 * 16), 256, 0, (cudaStream_t)stream>>>(n, y, (float)a, x, (float)b);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_linmap3(long long n, float *y, double a, const float *x, const double T[3][3], void *stream) {
  linmap_kernel<<<blocks_for(n, 256, 132 * 16), 256, 0, (cudaStream_t)stream>>>(
      n, y, (float)a, x, (float)T[0][0], (float)T[0][1], (float)T[0][2], (float)T[1][0], (float)T[1][1], (float)T[1][2],
      (float)T[2][0], (float)T[2][1], (float)T[2][2]);
  return (int)cudaGetLastError();
}
