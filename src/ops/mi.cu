// CUDA Mattes mutual information with implicit Parzen windows.
// Histogram: each block accumulates its voxels' outer products of (at most 6) fixed and
// moving weights in shared memory as integer fixed point (weights * 2^20; 32-bit atomics,
// flushed to 64-bit bins). Integer sums are exact and order-free, so the histogram is
// bit-identical for any grid, block order or rank split; no float atomics storm, no N x bins
// block. Blocks write partial histograms that a
// second kernel sums. The B x B log-ratio table is computed on the host with the CPU code
// (ffdp_mi_table_f64), so both backends use one formula. Gradient: one pass, table in
// shared memory.
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"
#include <stdlib.h>

using namespace ffdp_cuda;

namespace {

// Per voxel, weights are added as 32-bit fixed point (x 2^20), the fast native shared-memory
// atomic; every kChunk voxels of a block the 32-bit bins are flushed into 64-bit ones. A bin
// gains at most kChunk * (4/9) * 2^20 < 2^31 per chunk (a weight product is at most 4/9),
// so nothing overflows; sums stay exact and order-free, hence deterministic.
constexpr double kFixed = 1048576.0;  // 2^20
constexpr int kChunk = 4096;          // voxels per block between flushes

// The bin coordinate is formed in double, as on the CPU: in float its ulp (~2e-6 at 30 bins)
// reaches the normalized Gaussian window's derivative as a 1e-4 relative difference.
__device__ inline double mi_eta(int kind, float v, float vmin, float vmax, int bins, float *deta) {
  const double pad = kind == FFDP_PARZEN_BSPLINE ? 2.0 : 3.0, span = bins - 1 - 2 * pad;
  double scale = vmax > vmin ? span / ((double)vmax - (double)vmin) : 0.0;
  double eta = pad + ((double)v - (double)vmin) * scale;
  *deta = (float)scale;
  if (!(eta >= pad)) eta = pad, *deta = 0.f;
  if (eta > pad + span) eta = pad + span, *deta = 0.f;
  return eta;
}

// Same windows as kernels1d.c: cubic B-spline (4 taps) or normalized truncated Gaussian (6).
__device__ inline int parzen(int kind, double eta, float *w, float *dw) {
  if (kind == FFDP_PARZEN_BSPLINE) {
    const int j0 = (int)floor(eta) - 1;
#pragma unroll
    for (int a = 0; a < 4; a++) {
      float d = (float)((double)(j0 + a) - eta), ad = fabsf(d), sg = d < 0.f ? -1.f : 1.f, dd;
      if (ad < 1.f) {
        w[a] = 2.f / 3.f - ad * ad + 0.5f * ad * ad * ad;
        dd = sg * (-2.f * ad + 1.5f * ad * ad);
      } else if (ad < 2.f) {
        float t = 2.f - ad;
        w[a] = t * t * t / 6.f;
        dd = -sg * 0.5f * t * t;
      } else {
        w[a] = 0.f, dd = 0.f;
      }
      dw[a] = -dd;
    }
    return j0;
  }
  const int j0 = (int)floor(eta) - 2;
  const float floor_v = expf(-4.5f);
  float sg = 0.f, sdg = 0.f, g[6], dg[6];
#pragma unroll
  for (int a = 0; a < 6; a++) {
    float d = (float)((double)(j0 + a) - eta);
    if (fabsf(d) < 3.f) {
      float e = expf(-0.5f * d * d);
      g[a] = e - floor_v, dg[a] = d * e;
    } else {
      g[a] = 0.f, dg[a] = 0.f;
    }
    sg += g[a], sdg += dg[a];
  }
#pragma unroll
  for (int a = 0; a < 6; a++) w[a] = g[a] / sg, dw[a] = (dg[a] - w[a] * sdg) / sg;
  return j0;
}

struct MiArgs {
  int kind, bins;
  float fmin, fmax, mmin, mmax;
};

template <int NT>
__global__ void mi_hist_kernel(MiArgs a, long long n, const float *__restrict__ F, const float *__restrict__ M,
                               const uint8_t *__restrict__ mask, unsigned long long *partial) {
  extern __shared__ unsigned long long h[];  // BB 64-bit bins, then BB 32-bit bins
  const int BB = a.bins * a.bins;
  unsigned *h32 = (unsigned *)(h + BB);
  for (int k = threadIdx.x; k < BB; k += blockDim.x) h[k] = 0ull, h32[k] = 0u;
  __syncthreads();
  const long long stride = (long long)gridDim.x * kChunk;
  for (long long c0 = (long long)blockIdx.x * kChunk; c0 < n; c0 += stride) {
    const long long c1 = c0 + kChunk < n ? c0 + kChunk : n;
    for (long long i = c0 + threadIdx.x; i < c1; i += blockDim.x) {
      if (mask && !mask[i]) continue;
      float de, wf[NT], wm[NT], dw[NT];
      int jf = parzen(a.kind, mi_eta(a.kind, F[i], a.fmin, a.fmax, a.bins, &de), wf, dw);
      int jm = parzen(a.kind, mi_eta(a.kind, M[i], a.mmin, a.mmax, a.bins, &de), wm, dw);
#pragma unroll
      for (int p = 0; p < NT; p++) {
        if (wf[p] == 0.f) continue;
#pragma unroll
        for (int q = 0; q < NT; q++) {
          float v = wf[p] * wm[q];
          if (v > 0.f) atomicAdd(&h32[(jf + p) * a.bins + jm + q], (unsigned)((double)v * kFixed + 0.5));
        }
      }
    }
    __syncthreads();
    for (int k = threadIdx.x; k < BB; k += blockDim.x) h[k] += h32[k], h32[k] = 0u;
    __syncthreads();
  }
  for (int k = threadIdx.x; k < BB; k += blockDim.x) partial[(long long)blockIdx.x * BB + k] = h[k];
}

__global__ void mi_reduce_kernel(int BB, int nblocks, const unsigned long long *partial, double *hist) {
  int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= BB) return;
  unsigned long long s = 0;
  for (int b = 0; b < nblocks; b++) s += partial[(long long)b * BB + k];
  hist[k] = (double)s / kFixed;
}

template <int NT>
__global__ void mi_grad_kernel(MiArgs a, long long n, const float *__restrict__ F, const float *__restrict__ M,
                               const uint8_t *__restrict__ mask, const float *__restrict__ table, float norm,
                               float *__restrict__ g) {
  extern __shared__ float t[];
  const int BB = a.bins * a.bins;
  for (int k = threadIdx.x; k < BB; k += blockDim.x) t[k] = table[k];
  __syncthreads();
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    if (mask && !mask[i]) {
      g[i] = 0.f;
      continue;
    }
    float def, dem, wf[NT], dwf[NT], wm[NT], dwm[NT];
    int jf = parzen(a.kind, mi_eta(a.kind, F[i], a.fmin, a.fmax, a.bins, &def), wf, dwf);
    int jm = parzen(a.kind, mi_eta(a.kind, M[i], a.mmin, a.mmax, a.bins, &dem), wm, dwm);
    float acc = 0.f;
    if (dem != 0.f) {
#pragma unroll
      for (int p = 0; p < NT; p++) {
        const float *row = t + (jf + p) * a.bins + jm;
        float sa = 0.f;
#pragma unroll
        for (int q = 0; q < NT; q++) sa += row[q] * dwm[q];
        acc += wf[p] * sa;
      }
    }
    g[i] = -norm * acc * dem;
  }
}

MiArgs args_of(const ffdp_mi_params *p) {
  MiArgs a = {(int)p->kind, p->bins, (float)p->fmin, (float)p->fmax, (float)p->mmin, (float)p->mmax};
  return a;
}

}  // namespace

extern "C" int ffdp_cuda_mi_hist(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                                 const uint8_t *mask, double *hist_host, void *stream) {
  if (p->bins > FFDP_CUDA_MI_MAX_BINS) return (int)cudaErrorInvalidValue;
  cudaStream_t st = (cudaStream_t)stream;
  const long long P = s->nx * s->ny, off = (s->z0 - s->zlo) * P, n = (s->z1 - s->z0) * P;
  const int BB = p->bins * p->bins, blocks = blocks_for(n, 512, 264);
  unsigned long long *part;
  double *hist;
  cudaError_t e = cudaMallocAsync((void **)&part, (size_t)blocks * BB * 8 + BB * 8, st);
  if (e) return (int)e;
  hist = (double *)(part + (size_t)blocks * BB);
  const size_t smem = (size_t)BB * 12;
  const MiArgs a = args_of(p);
  if (p->kind == FFDP_PARZEN_BSPLINE)
    mi_hist_kernel<4><<<blocks, 512, smem, st>>>(a, n, F + off, M + off, mask ? mask + off : nullptr, part);
  else
    mi_hist_kernel<6><<<blocks, 512, smem, st>>>(a, n, F + off, M + off, mask ? mask + off : nullptr, part);
  mi_reduce_kernel<<<(BB + 255) / 256, 256, 0, st>>>(BB, blocks, part, hist);
  cudaMemcpyAsync(hist_host, hist, BB * sizeof(double), cudaMemcpyDeviceToHost, st);
  cudaFreeAsync(part, st);
  if ((e = cudaStreamSynchronize(st))) return (int)e;
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_mi_grad(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                                 const uint8_t *mask, const double *table_host, double norm, float *gM, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const long long P = s->nx * s->ny, off = (s->z0 - s->zlo) * P, n = (s->z1 - s->z0) * P;
  const int BB = p->bins * p->bins;
  float tf[FFDP_CUDA_MI_MAX_BINS * FFDP_CUDA_MI_MAX_BINS], *table;
  for (int k = 0; k < BB; k++) tf[k] = (float)table_host[k];
  cudaError_t e = cudaMallocAsync((void **)&table, BB * sizeof(float), st);
  if (e) return (int)e;
  cudaMemcpyAsync(table, tf, BB * sizeof(float), cudaMemcpyHostToDevice, st);
  const MiArgs a = args_of(p);
  const int blocks = blocks_for(n, 256, 132 * 16);
  if (p->kind == FFDP_PARZEN_BSPLINE)
    mi_grad_kernel<4><<<blocks, 256, BB * sizeof(float), st>>>(a, n, F + off, M + off, mask ? mask + off : nullptr, table,
                                                              (float)norm, gM + off);
  else
    mi_grad_kernel<6><<<blocks, 256, BB * sizeof(float), st>>>(a, n, F + off, M + off, mask ? mask + off : nullptr, table,
                                                              (float)norm, gM + off);
  cudaFreeAsync(table, st);
  if ((e = cudaStreamSynchronize(st))) return (int)e;
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_mi(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                            const uint8_t *mask, float *gM, double *loss, void *stream) {
  const int BB = p->bins * p->bins;
  double *hist = (double *)calloc((size_t)BB * 2, sizeof(double)), *table = hist + BB, n = 0;
  int e = ffdp_cuda_mi_hist(p, s, F, M, mask, hist, stream);
  if (!e) {
    for (int k = 0; k < BB; k++) n += hist[k];
    *loss = -ffdp_mi_table_f64(p, hist, table);
    if (gM) e = ffdp_cuda_mi_grad(p, s, F, M, mask, table, n > 0 ? 1.0 / n : 0.0, gM, stream);
  }
  free(hist);
  return e;
}
