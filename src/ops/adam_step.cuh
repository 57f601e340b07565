// One element of the normalized Adam step, shared by the standalone step (field_step.cu) and
// the step fused into the composition (sample.cu), so that both give the same bits.
// Moments are stored as S (float, or bf16 to halve the optimiser state); arithmetic is fp32.
#pragma once
#include <cuda_bf16.h>

namespace ffdp_cuda {

__host__ __device__ __forceinline__ float load_state(const float *p, long long i) { return p[i]; }
__host__ __device__ __forceinline__ float load_state(const __nv_bfloat16 *p, long long i) { return __bfloat162float(p[i]); }
__host__ __device__ __forceinline__ void store_state(float *p, long long i, float v) { p[i] = v; }
__host__ __device__ __forceinline__ void store_state(__nv_bfloat16 *p, long long i, float v) { p[i] = __float2bfloat16_rn(v); }

struct AdamConst {
  float rc1, rc2, step;  // reciprocals of the bias corrections 1 - b1^t, 1 - b2^t; the step
};

// d = -step · mhat / (sqrt(vhat) + eps) for g = raw · inv_mx, updating m[i], v[i]. The fused
// multiply-adds are spelled out: the two callers must not contract differently.
template <typename S>
__device__ __forceinline__ float adam_elem(float raw, float inv_mx, S *__restrict__ m, S *__restrict__ v, long long i,
                                           AdamConst k) {
  const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  const float g = raw * inv_mx;
  const float mi = fmaf(b1, load_state(m, i), (1.f - b1) * g), vi = fmaf(b2, load_state(v, i), (1.f - b2) * g * g);
  store_state(m, i, mi), store_state(v, i, vi);
  // bias corrections by reciprocal (formed in double on the host): one IEEE division per
  // value instead of three — each is a dozen instructions in a kernel bound by issue
  return -k.step * (mi * k.rc1) / (sqrtf(vi * k.rc2) + eps);
}

inline AdamConst adam_const(int t, double step) {
  AdamConst k = {(float)(1 / (1 - pow(0.9, t))), (float)(1 / (1 - pow(0.999, t))), (float)step};
  return k;
}

}  // namespace ffdp_cuda
