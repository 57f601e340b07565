// Shared helpers for the CUDA operators.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>

// A loss whose per-block partials are on their way to the host (ops_cuda.h): device and pinned
// buffers reused call after call (grown to the largest grid), and the event after the copy.
struct ffdp_cuda_pending {
  double *dev, *host;
  int cap, nb;
  cudaEvent_t copied;
};

namespace ffdp_cuda {

inline int blocks_for(long long n, int block, int cap = 65535 * 8) {
  long long b = (n + block - 1) / block;
  return (int)(b < 1 ? 1 : b > cap ? cap : b);
}

// Length of the z-chunks of a kernel whose blocks march along z: blocks run in waves of
// `slots` (SMs x resident blocks) and each marches its chunk plus `apron` planes (ring fill and
// drain), so the kernel takes about waves * (chunk + apron) plane steps; the chunk count that
// minimizes it (an even split; counts that give the same chunks as a smaller one are skipped).
inline int zchunk_by_waves(long long nzo, long long tiles, int slots, int apron) {
  long long best_cost = -1;
  int best = (int)nzo;
  for (long long nch = 1; nch <= nzo && nch <= 256; nch++) {
    const long long zc = (nzo + nch - 1) / nch, chunks = (nzo + zc - 1) / zc;
    if (chunks != nch) continue;
    const long long waves = (tiles * chunks + slots - 1) / slots, cost = waves * (zc + apron);
    if (best_cost < 0 || cost < best_cost) best_cost = cost, best = (int)zc;
  }
  return best;
}

// An attribute of the current device, or fallback if the runtime cannot say; its SMs (132, an
// H100's, as the fallback) for the launch rules that size grids by waves of resident blocks.
inline int device_attr(cudaDeviceAttr a, int fallback) {
  int dev = 0, v = fallback;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, a, dev) != cudaSuccess) v = fallback;
  return v;
}
inline int device_sms() { return device_attr(cudaDevAttrMultiProcessorCount, 132); }

// Blocks of nt threads and smem bytes of shared memory that kern runs at once on the current
// device (SMs x resident blocks, at least one block an SM): the `slots` of zchunk_by_waves.
template <class Kern>
int resident_blocks(Kern kern, int nt, size_t smem) {
  int per_sm = 1;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, nt, smem) != cudaSuccess || per_sm < 1) per_sm = 1;
  return device_sms() * per_sm;
}

// Where a kernel's partial losses go: summed now into *sum, or left in flight in *pend.
struct LossSink {
  double *sum;
  ffdp_cuda_pending *pend;
};

// The sum of the partials in block order: the bits are those of a given grid, whichever way
// they came.
inline double sum_in_block_order(const double *host, int nb) {
  double acc = 0;
  for (int b = 0; b < nb; b++) acc += host[b];
  return acc;
}

// Runs launch(part) with a device array of nb per-block partials, then sums them on the host
// in block order (deterministic for a given grid); returns 0 or the first CUDA error (a launch
// error before any copy). Into sink.sum: synchronizes st. Into sink.pend: the copy to pinned
// memory and an event are queued and nothing waits (ffdp_cuda_pending_finish sums).
template <class Launch>
int sum_block_partials(int nb, cudaStream_t st, LossSink sink, Launch launch) {
  if (ffdp_cuda_pending *p = sink.pend) {
    p->nb = 0;
    if (nb > p->cap) {  // grown once per level or so: synchronous allocations are fine here
      cudaFree(p->dev), cudaFreeHost(p->host);
      p->dev = p->host = nullptr, p->cap = 0;
      cudaError_t e = cudaMalloc((void **)&p->dev, nb * sizeof(double));
      if (!e) e = cudaMallocHost((void **)&p->host, nb * sizeof(double));
      if (e) return (int)e;
      p->cap = nb;
    }
    launch(p->dev);
    int rc = (int)cudaGetLastError();
    if (!rc) rc = (int)cudaMemcpyAsync(p->host, p->dev, nb * sizeof(double), cudaMemcpyDeviceToHost, st);
    if (!rc) rc = (int)cudaEventRecord(p->copied, st);
    if (!rc) p->nb = nb;
    return rc;
  }
  double *part;
  *sink.sum = 0;
  cudaError_t e = cudaMallocAsync((void **)&part, nb * sizeof(double), st);
  if (e) return (int)e;
  launch(part);
  int rc = (int)cudaGetLastError();
  double *host = (double *)malloc(nb * sizeof(double));
  if (!host) rc = rc ? rc : (int)cudaErrorMemoryAllocation;
  if (host && !rc) rc = (int)cudaMemcpyAsync(host, part, nb * sizeof(double), cudaMemcpyDeviceToHost, st);
  const int freed = (int)cudaFreeAsync(part, st), sync = (int)cudaStreamSynchronize(st);
  if (!rc) rc = sync ? sync : freed;
  if (!rc) *sink.sum = sum_in_block_order(host, nb);
  free(host);
  return rc;
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
