// 16-bit image codes on the device (code16.h): the host's functions, run per value, so that an
// image encoded here and one encoded on the host hold the same codes.
#include "ops/code16.h"
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

constexpr int kThreads = 256;

// Four values a thread where src and dst allow 16- and 8-byte accesses (encode: a float4 in, four
// codes out as one 8-byte store; decode: four codes in, a float4 out), one a thread for the
// rest. One value a thread moved 6 B in two narrow accesses: H100 256^3 52 % (encode) and 57 %
// (decode) of copy (NOTES run 117).
template <class Op>
__global__ void map_kernel(long long n, const typename Op::In *__restrict__ src, Op op, typename Op::Out *__restrict__ dst) {
  const long long stride = (long long)gridDim.x * blockDim.x;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = op(__ldg(src + i));
}

struct Encode1 {
  using In = float;
  using Out = uint16_t;
  ffdp_code16 k;
  __device__ Out operator()(In v) const { return ffdp_code16_encode(v, k); }
};
struct Decode1 {
  using In = uint16_t;
  using Out = float;
  ffdp_code16 k;
  __device__ Out operator()(In q) const { return ffdp_code16_decode(q, k); }
};
// Op1 on each of four values
template <class Op1, class In4, class Out4>
struct Four {
  using In = In4;
  using Out = Out4;
  ffdp_code16 k;
  __device__ Out operator()(In v) const {
    const Op1 op{k};
    return Out{op(v.x), op(v.y), op(v.z), op(v.w)};
  }
};

bool aligned(const void *a, const void *b) { return (((uintptr_t)a | (uintptr_t)b) & 15) == 0; }

// n values: the vector op on the aligned multiple of four, the scalar one on the rest
template <class Op4, class Op1>
int map_codes(long long n, const typename Op1::In *src, ffdp_code16 k, typename Op1::Out *dst, cudaStream_t st) {
  if (n <= 0) return 0;
  long long done = 0;
  if (aligned(src, dst) && n >= 4) {
    const long long n4 = n / 4;
    map_kernel<<<blocks_for(n4, kThreads), kThreads, 0, st>>>(n4, (const typename Op4::In *)src, Op4{k},
                                                               (typename Op4::Out *)dst);
    done = 4 * n4;
  }
  if (done < n) map_kernel<<<blocks_for(n - done, kThreads), kThreads, 0, st>>>(n - done, src + done, Op1{k}, dst + done);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int ffdp_cuda_encode16(long long n, const float *src, ffdp_code16 k, uint16_t *dst, void *stream) {
  return map_codes<Four<Encode1, float4, ushort4>, Encode1>(n, src, k, dst, (cudaStream_t)stream);
}

extern "C" int ffdp_cuda_decode16(long long n, const uint16_t *src, ffdp_code16 k, float *dst, void *stream) {
  return map_codes<Four<Decode1, ushort4, float4>, Decode1>(n, src, k, dst, (cudaStream_t)stream);
}
