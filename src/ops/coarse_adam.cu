// Adam with its moments on the coarse grid (points at voxels 2i, 2j, 2k; the CPU operator and
// its reasons: src/reg/coarse_moments.c). Three launches: the smoothed gradient restricted to
// the coarse points of the slab's coarse planes (into a transient), every owned voxel's step
// from the means of the coarse moments and its own gradient (a block's coarse points worked
// out once into shared memory: CoarseTile, the block marching a chunk of planes), the coarse
// moments' update. The per-thread bodies live in coarse_adam.cuh, which a host test runs
// against the CPU operator.
// The restriction stays one thread a point: its 27 gathers at a 24-byte stride come from L1
// (H100 256^3 0.095 ms, 80 % of copy), where staging a block's fine voxels in shared memory
// first took 0.312 ms (index work per staged value; NOTES run 164).
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

// One thread per owned voxel (x, y) of plane z0 + blockIdx.z, the block's coarse points worked
// out first into its tile (CoarseTile); zero steps when the gradient vanished. The march's
// predecessor, kept as the bench's A/B (FFDP_COARSE_TILE=plane).
constexpr int SX = 32, SY = 8;
template <typename S>
__global__ void __launch_bounds__(SX *SY)
    coarse_step_kernel(Coarse c, float *__restrict__ d, const S *__restrict__ m, const S *__restrict__ v,
                       const float *__restrict__ tb, const float *__restrict__ inv_dev, AdamConst k) {
  __shared__ CoarseTile<SX, SY> tile;
  static_assert(CoarseTile<SX, SY>::NP <= SX * SY, "one tile point a thread");
  const long long bx = (long long)blockIdx.x * SX, by = (long long)blockIdx.y * SY;
  const long long x = bx + threadIdx.x, y = by + threadIdx.y, z = c.z0 + blockIdx.z;
  const float inv = *inv_dev;
  if (inv != 0.f) coarse_tile_point(c, m, v, tb, k, bx >> 1, by >> 1, z, threadIdx.y * SX + threadIdx.x, tile);
  __syncthreads();
  if (x >= c.nx || y >= c.ny || z >= c.z1) return;
  float *at = d + 3 * (((z - c.zlo) * c.ny + y) * c.nx + x);
  coarse_step_tile(tile, at, inv, k, bx >> 1, by >> 1, x, y, z, at);
}

// The same, each block marching a chunk of `per` planes: each coarse plane worked out once a
// block (not once for each of the up to three fine planes that read it), while the plane
// before it steps (coarse_tile_ahead), and one barrier a plane instead of two.
template <typename S>
__global__ void __launch_bounds__(SX *SY)
    coarse_step_march_kernel(Coarse c, float *__restrict__ d, const S *__restrict__ m, const S *__restrict__ v,
                             const float *__restrict__ tb, const float *__restrict__ inv_dev, AdamConst k, long long per) {
  __shared__ CoarseTile<SX, SY> tile;
  static_assert(CoarseTile<SX, SY>::NP <= SX * SY, "one tile point a thread");
  const long long bx = (long long)blockIdx.x * SX, by = (long long)blockIdx.y * SY;
  const long long x = bx + threadIdx.x, y = by + threadIdx.y;
  const int p = threadIdx.y * SX + threadIdx.x;
  const bool in = x < c.nx && y < c.ny;
  const ChunkPlanes ch = chunk_planes(c.z0, c.z1, per, blockIdx.z);
  const float inv = *inv_dev;
  if (ch.za >= ch.zb) return;  // uniform over the block
  if (inv != 0.f) coarse_tile_point(c, m, v, tb, k, bx >> 1, by >> 1, ch.za, p, tile);
  __syncthreads();
  float *at = d + 3 * (((ch.za - c.zlo) * c.ny + y) * c.nx + x);
  for (long long z = ch.za; z < ch.zb; z++, at += 3 * c.ny * c.nx) {
    if (inv != 0.f) coarse_tile_ahead(c, m, v, tb, k, bx >> 1, by >> 1, z, ch.zb, p, tile);
    if (in) coarse_step_tile(tile, at, inv, k, bx >> 1, by >> 1, x, y, z, at);
    __syncthreads();  // the plane read ahead is in; the slot just read may be refilled
  }
}

// The coarse moments' update, grid-stride; left alone when the gradient vanished.
template <typename S>
__global__ void coarse_update_kernel(long long n, const float *__restrict__ tb, S *__restrict__ m, S *__restrict__ v,
                                     const float *__restrict__ inv_dev) {
  if (*inv_dev == 0.f) return;
  for (long long J = blockIdx.x * (long long)blockDim.x + threadIdx.x; J < n; J += (long long)gridDim.x * blockDim.x)
    coarse_update_value(tb, m, v, J);
}

const dim3 kBlock(32, 8);

template <typename S>
void launch_update(const Coarse &c, float *tb, void *m, void *v, const float *inv_dev, cudaStream_t st) {
  const long long n = 3 * c.lx * c.ly * (c.k1 - c.k0);
  const long long nb = (n + 255) / 256 < 8192 ? (n + 255) / 256 : 8192;
  coarse_update_kernel<S><<<(unsigned)nb, 256, 0, st>>>(n, tb, (S *)m, (S *)v, inv_dev);
}

bool shape_ok(const ffdp_slab *s) {
  return !(s->ny > 8 * 65535LL || s->z1 - s->z0 > 65535 || s->nx > (1LL << 31) - 64);
}

}  // namespace

extern "C" int ffdp_cuda_coarse_restrict(const ffdp_slab *s, const float *d, float *tb, const float *inv_dev, void *stream) {
  if (s->z1 <= s->z0) return 0;
  if (!shape_ok(s)) return (int)cudaErrorInvalidValue;
  const Coarse c = coarse_of(s->nx, s->ny, s->nz, s->zlo, s->z0, s->z1);
  const dim3 gc((unsigned)((c.lx + 31) / 32), (unsigned)((c.ly + 7) / 8), (unsigned)(c.k1 - c.k0));
  coarse_restrict_kernel<<<gc, kBlock, 0, (cudaStream_t)stream>>>(c, d, tb, inv_dev);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_coarse_update(const ffdp_slab *s, void *m, void *v, int bf16_state, float *tb, const float *inv_dev,
                                       void *stream) {
  if (s->z1 <= s->z0) return 0;
  const Coarse c = coarse_of(s->nx, s->ny, s->nz, s->zlo, s->z0, s->z1);
  if (bf16_state) launch_update<__nv_bfloat16>(c, tb, m, v, inv_dev, (cudaStream_t)stream);
  else launch_update<float>(c, tb, m, v, inv_dev, (cudaStream_t)stream);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_coarse_adam(const ffdp_slab *s, float *d, void *m, void *v, int bf16_state, float *tb,
                                     const float *inv_dev, int t, double step, void *stream) {
  if (s->z1 <= s->z0) return 0;
  if (!shape_ok(s)) return (int)cudaErrorInvalidValue;
  cudaStream_t st = (cudaStream_t)stream;
  int rc = ffdp_cuda_coarse_restrict(s, d, tb, inv_dev, stream);
  if (rc) return rc;
  const Coarse c = coarse_of(s->nx, s->ny, s->nz, s->zlo, s->z0, s->z1);
  const AdamConst k = adam_const(t, step);
  const long long nzo = c.z1 - c.z0;
  if (coarse_tile_by_plane()) {
    const dim3 gs((unsigned)((c.nx + SX - 1) / SX), (unsigned)((c.ny + SY - 1) / SY), (unsigned)nzo);
    if (bf16_state)
      coarse_step_kernel<__nv_bfloat16><<<gs, dim3(SX, SY), 0, st>>>(c, d, (const __nv_bfloat16 *)m,
                                                                    (const __nv_bfloat16 *)v, tb, inv_dev, k);
    else
      coarse_step_kernel<float><<<gs, dim3(SX, SY), 0, st>>>(c, d, (const float *)m, (const float *)v, tb, inv_dev, k);
  } else {
    const long long chunks = coarse_march_chunks(nzo), per = (nzo + chunks - 1) / chunks;
    const dim3 gs((unsigned)((c.nx + SX - 1) / SX), (unsigned)((c.ny + SY - 1) / SY), (unsigned)((nzo + per - 1) / per));
    if (bf16_state)
      coarse_step_march_kernel<__nv_bfloat16><<<gs, dim3(SX, SY), 0, st>>>(c, d, (const __nv_bfloat16 *)m,
                                                                          (const __nv_bfloat16 *)v, tb, inv_dev, k, per);
    else
      coarse_step_march_kernel<float><<<gs, dim3(SX, SY), 0, st>>>(c, d, (const float *)m, (const float *)v, tb, inv_dev,
                                                                  k, per);
  }
  if ((rc = (int)cudaGetLastError())) return rc;
  return ffdp_cuda_coarse_update(s, m, v, bf16_state, tb, inv_dev, stream);
}
