// CUDA Mattes mutual information with implicit Parzen windows.
// Histogram: each block accumulates its voxels' outer products of (at most 6) fixed and
// moving weights (FFDP_PARZEN_MATTES: one fixed weight, the box's 1) in shared memory as
// integer fixed point (weights * 2^20; 32-bit atomics, flushed to 64-bit bins, which each
// block finally adds to the global 64-bit histogram).
// Integer sums are exact and order-free, so the histogram is bit-identical for any grid,
// block order or rank split; no float atomics storm, no N x bins block, no partials. Up to 40
// bins every lane has its own copy of the 32-bit bins in its own bank (mi_hist_lanes_kernel:
// no bank conflicts whatever the data; H100 256^3 B-spline MI 0.357 -> 0.253 ms); more bins
// take one copy per block with lanes of equal bins summed first (mi_hist_kernel).
// The B x B log-ratio table is made from the integer histogram on the device (one block, the
// CPU path's formula; no host round trip between the passes). Gradient: one pass, the table
// in shared memory as float4 rows.
#include <stdlib.h>
#include <string.h>
#include "ops/cuda_common.cuh"
#include "ops/kernels1d.h"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

// Per voxel, weights are added as 32-bit fixed point (x 2^20), the fast native shared-memory
// atomic; every kChunk voxels of a block the 32-bit bins are flushed into 64-bit ones. A bin
// gains at most kChunk * (2/3) * 2^20 < 2^32 per chunk (a weight product is at most 2/3, the
// B-spline's largest weight times the box's 1), so nothing overflows; sums stay exact and
// order-free, hence deterministic.
constexpr double kFixed = 1048576.0;  // 2^20
constexpr int kChunk = 4096;          // voxels per block between flushes

struct MiArgs {
  int bins;
  int tapconv;  // FFDP_MI_TAPDIST=conv: the Gaussian's tap distances from int-to-double conversions (the bench's A/B)
  float fmin, mmin;
  double pad, span, fscale, mscale;  // scale = span / (max - min), divided once on the host
};

// The bin coordinate is formed in double, as on the CPU: in float its ulp (~2e-6 at 30 bins)
// reaches the normalized Gaussian window's derivative as a 1e-4 relative difference.
__device__ inline double mi_eta(const MiArgs &a, float v, float vmin, double scale, float *deta) {
  double eta = a.pad + ((double)v - (double)vmin) * scale;
  *deta = (float)scale;
  if (!(eta >= a.pad)) eta = a.pad, *deta = 0.f;
  if (eta > a.pad + a.span) eta = a.pad + a.span, *deta = 0.f;
  return eta;
}

// Cubic B-spline window (4 taps from floor(eta) - 1) as polynomials in the fraction t of eta:
// no per-tap distance, sign or branch. dw = d(w)/d(eta). The CPU's ffdp_parzen_bspline4
// (kernels1d.h) in float.
__device__ __forceinline__ int bspline4(double eta, float *w, float *dw) {
  const double fl = floor(eta);
  const float t = (float)(eta - fl), s = 1.f - t, t2 = t * t, t3 = t2 * t;
  w[0] = s * s * s * (1.f / 6.f);
  w[1] = fmaf(0.5f, t3, 2.f / 3.f - t2);
  w[2] = (1.f / 6.f) + 0.5f * (t + t2 - t3);
  w[3] = t3 * (1.f / 6.f);
  dw[0] = -0.5f * s * s;
  dw[1] = fmaf(1.5f, t2, -2.f * t);
  dw[2] = fmaf(-1.5f, t2, t + 0.5f);
  dw[3] = 0.5f * t2;
  return (int)fl - 1;
}

// Normalized truncated Gaussian (6 taps), as kernels1d.c. The tap distance (j0 + a) - eta is
// formed as (fl - eta) + (a - 2): fl - eta is exact (fl <= eta < 2 fl, eta >= pad = 3), so the
// one rounding gives the same double as (double)(j0 + a) - eta without an int-to-double
// conversion per tap (64-bit conversions run at a quarter of the FP64 rate).
__device__ inline int gauss6(double eta, bool conv, float *w, float *dw) {
  const double fl = floor(eta), base = fl - eta;
  const int j0 = (int)fl - 2;
  const float floor_v = expf(-4.5f);
  float sg = 0.f, sdg = 0.f, g[6], dg[6];
#pragma unroll
  for (int a = 0; a < 6; a++) {
    float d = conv ? (float)((double)(j0 + a) - eta) : (float)(base + (double)(a - 2));
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

// NT taps: 4 is the B-spline, 6 the Gaussian (the kind is a template argument through NT).
template <int NT>
__device__ __forceinline__ int parzen(double eta, bool conv, float *w, float *dw) {
  if (NT == 4) return bspline4(eta, w, dw);
  return gauss6(eta, conv, w, dw);
}

// The fixed image's window: BOX (FFDP_PARZEN_MATTES) the bin nearest eta with weight 1 (one
// tap: NTF; the CPU's ffdp_parzen_box), else the moving image's window.
template <bool BOX, int NT>
constexpr int NTF = BOX ? 1 : NT;
template <int NT, bool BOX>
__device__ __forceinline__ int parzen_fixed(double eta, bool conv, float *w, float *dw) {
  if (BOX) {
    w[0] = 1.f, dw[0] = 0.f;
    return (int)floor(eta + 0.5);
  }
  return parzen<NT>(eta, conv, w, dw);
}

// Fixed point of a weight product a * b, given b2 = b * 2^20 (exact): adding 2^23 in the
// same fused multiply-add leaves round(a * b * 2^20) in the mantissa bits (products are
// below 2^23), one instruction instead of a multiply and a float-to-integer conversion.
__device__ __forceinline__ unsigned fixed_of(float a, float b2) {
  return __float_as_uint(fmaf(a, b2, 8388608.f)) - 0x4B000000u;
}

// Voxels of one warp often share their base bins (background, smooth regions): then the
// same shared-memory address is hit by many lanes and the atomics serialize. When a warp's
// voxels fall into at most kGroups distinct base-bin pairs, each group's products are summed
// across lanes first (redux.sync) and one lane adds them. Integer sums, so the histogram is
// the same bits either way.
constexpr int kGroups = 4;

template <int NT, bool BOX>
__global__ void __launch_bounds__(512, NT == 4 ? 4 : 3) mi_hist_kernel(MiArgs a, long long n, const float *__restrict__ F,
                                                         const float *__restrict__ M, const uint8_t *__restrict__ mask,
                                                         unsigned long long *hist) {
  extern __shared__ unsigned long long h[];  // BB 64-bit bins, then BB 32-bit bins
  const int BB = a.bins * a.bins, lane = threadIdx.x & 31;
  unsigned *h32 = (unsigned *)(h + BB);
  for (int k = threadIdx.x; k < BB; k += blockDim.x) h[k] = 0ull, h32[k] = 0u;
  __syncthreads();
  const long long stride = (long long)gridDim.x * kChunk;
  for (long long c0 = (long long)blockIdx.x * kChunk; c0 < n; c0 += stride) {
    const long long c1 = c0 + kChunk < n ? c0 + kChunk : n;
    // every lane runs every step of the chunk (warp-wide collectives below); lanes past the
    // end or outside the mask take part with no voxel
    for (long long b = c0; b < c1; b += blockDim.x) {
      const long long i = b + threadIdx.x;
      const bool on = i < c1 && (!mask || mask[i]);
      float de, wf[NT], wm[NT], dw[NT];
      int jf = 0, jm = 0;
      if (on) {
        jf = parzen_fixed<NT, BOX>(mi_eta(a, F[i], a.fmin, a.fscale, &de), a.tapconv, wf, dw);
        jm = parzen<NT>(mi_eta(a, M[i], a.mmin, a.mscale, &de), a.tapconv, wm, dw);
#pragma unroll
        for (int q = 0; q < NT; q++) wm[q] *= 1048576.f;  // 2^20: the fixed point's scale
      }
      const unsigned key = on ? (unsigned)(jf * a.bins + jm) : 0xffffffffu;
      const unsigned peers = __match_any_sync(0xffffffffu, key);
      const bool leads = on && (__ffs(peers) - 1) == lane;
      unsigned todo = __ballot_sync(0xffffffffu, leads);
      if (__popc(todo) <= kGroups) {
        while (todo) {
          const int l = __ffs(todo) - 1;
          todo &= todo - 1;
          const unsigned k = __shfl_sync(0xffffffffu, key, l);
          const bool in = key == k;
#pragma unroll
          for (int p = 0; p < NTF<BOX, NT>; p++)
#pragma unroll
            for (int q = 0; q < NT; q++) {
              const unsigned s = __reduce_add_sync(0xffffffffu, in ? fixed_of(wf[p], wm[q]) : 0u);
              if (lane == l && s) atomicAdd(&h32[k + p * a.bins + q], s);
            }
        }
      } else if (on) {
        unsigned *hb = h32 + key;  // a zero product adds nothing
#pragma unroll
        for (int p = 0; p < NTF<BOX, NT>; p++)
#pragma unroll
          for (int q = 0; q < NT; q++) atomicAdd(hb + p * a.bins + q, fixed_of(wf[p], wm[q]));
      }
    }
    __syncthreads();
    for (int k = threadIdx.x; k < BB; k += blockDim.x) h[k] += h32[k], h32[k] = 0u;
    __syncthreads();
  }
  // integer adds commute: the global histogram is the same bits whatever order blocks end in
  for (int k = threadIdx.x; k < BB; k += blockDim.x)
    if (h[k]) atomicAdd(hist + k, h[k]);
}

// Lane-private histogram for up to kLaneBins bins: 32 copies of the 32-bit bins, bin k of
// copy l at word 32 k + l, so lane l of every warp adds into bank l only. A warp's atomics never
// meet in a bank (no conflicts, whatever the data: uniform noise spreads the lanes over the
// banks by chance, background piles them onto one address), so no lane grouping is needed.
// The same integer products as mi_hist_kernel, summed in another order: the same histogram.
// A copy's bin gains at most (32 warps x kLaneV voxels) x 2^20 (a weight product is at most 1)
// < 2^32 per flush.
// U voxels per thread and step, their loads issued before any is used: one block of 1024
// threads per SM keeps only 8 KB of loads in flight with U = 1, a third of what the memory
// needs to run at full rate (bandwidth x latency / SMs).
constexpr int kLaneBins = 40, kLaneThreads = 1024, kLaneV = 128, kGradCopyThreads = 1024;

template <int NT, int U, bool BOX>
__global__ void __launch_bounds__(kLaneThreads, 1)
    mi_hist_lanes_kernel(MiArgs a, long long n, long long chunk, const float *__restrict__ F,
                         const float *__restrict__ M, const uint8_t *__restrict__ mask, unsigned long long *hist) {
  extern __shared__ unsigned long long h[];  // BB 64-bit bins, then 32 x BB 32-bit bins
  const int BB = a.bins * a.bins, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  unsigned *h32 = (unsigned *)(h + BB);
  for (int k = threadIdx.x; k < BB; k += blockDim.x) h[k] = 0ull;
  for (int k = threadIdx.x; k < 32 * BB; k += blockDim.x) h32[k] = 0u;
  __syncthreads();
  for (long long c0 = (long long)blockIdx.x * chunk; c0 < n; c0 += (long long)gridDim.x * chunk) {
    const long long c1 = c0 + chunk < n ? c0 + chunk : n;
    for (long long b = c0 + threadIdx.x; b < c1; b += U * kLaneThreads) {
      float fv[U], mv[U];
      bool on[U];
#pragma unroll
      for (int u = 0; u < U; u++) {
        const long long i = b + u * kLaneThreads;
        const bool in = i < c1;
        fv[u] = in ? F[i] : 0.f, mv[u] = in ? M[i] : 0.f, on[u] = in && (!mask || mask[i]);
      }
#pragma unroll
      for (int u = 0; u < U; u++) {
        if (!on[u]) continue;
        float de, wf[NT], wm[NT], dw[NT];
        const int jf = parzen_fixed<NT, BOX>(mi_eta(a, fv[u], a.fmin, a.fscale, &de), a.tapconv, wf, dw);
        const int jm = parzen<NT>(mi_eta(a, mv[u], a.mmin, a.mscale, &de), a.tapconv, wm, dw);
        unsigned *hb = h32 + 32 * (jf * a.bins + jm) + lane;
#pragma unroll
        for (int p = 0; p < NTF<BOX, NT>; p++)
#pragma unroll
          for (int q = 0; q < NT; q++) atomicAdd(hb + 32 * (p * a.bins + q), fixed_of(wf[p], wm[q] * 1048576.f));
      }
    }
    __syncthreads();
    // a warp per bin: lane l reads copy l (one bank each), the 32 copies summed in 64 bits
    for (int k = warp; k < BB; k += kLaneThreads / 32) {
      unsigned long long v = h32[32 * k + lane];
      h32[32 * k + lane] = 0u;
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
      if (lane == 0) h[k] += v;
    }
    __syncthreads();
  }
  for (int k = threadIdx.x; k < BB; k += blockDim.x)
    if (h[k]) atomicAdd(hist + k, h[k]);
}

// The log-ratio table from the fixed-point histogram, on the device so that no host round
// trip sits between the two passes. One block; sums of bins are integers (exact, in any
// order), the MI itself is reduced in a fixed order: the same bits for the same histogram,
// so one GPU and GPU ranks (which reduce their histograms first and upload the sum) agree.
// stats[0] = MI, stats[1] = N (the histogram's mass: the scored voxels).
__global__ void __launch_bounds__(1024) mi_table_kernel(int B, const unsigned long long *__restrict__ hist,
                                                        float4 *__restrict__ table, double *__restrict__ stats) {
  constexpr int MAXB = FFDP_CUDA_MI_MAX_BINS, PER = MAXB * MAXB / 1024;  // bins per thread
  // the bins, then (same storage) the padded float table: 64-bit shared atomics are CAS
  // loops on this GPU, so the integer sums are plain loops over the staged bins instead
  __shared__ unsigned long long h[MAXB * MAXB];
  __shared__ unsigned long long row[MAXB], col[MAXB], total;
  float *const t = reinterpret_cast<float *>(h);  // MAXB * (MAXB + 3) floats fit in h
  const int BB = B * B, tid = threadIdx.x, W = B + 3;  // rows padded with three zeros
  for (int k = tid; k < BB; k += 1024) h[k] = hist[k];
  __syncthreads();
  if (tid < 2 * B) {  // integer sums: exact
    const int r = tid % B;
    unsigned long long m = 0ull;
    for (int k = 0; k < B; k++) m += tid < B ? h[r * B + k] : h[k * B + r];
    (tid < B ? row : col)[r] = m;
  }
  __syncthreads();
  if (tid == 0) {
    unsigned long long m = 0ull;
    for (int r = 0; r < B; r++) m += row[r];
    total = m;
  }
  __syncthreads();
  const double n = (double)total / kFixed, inv = n > 0.0 ? 1.0 / (n * kFixed) : 0.0;
  double acc = 0.0, v[PER];
#pragma unroll
  for (int r = 0; r < PER; r++) {
    const int k = tid + r * 1024;
    v[r] = 0.0;
    if (k < BB && h[k]) {
      const double pij = (double)h[k] * inv, pf = (double)row[k / B] * inv, pm = (double)col[k % B] * inv;
      v[r] = log(pij / (pf * pm));
      acc += pij * v[r];
    }
  }
  __syncthreads();  // the bins are read; their storage becomes the table
  for (int k = tid; k < B * W; k += 1024) t[k] = 0.f;
  __syncthreads();
#pragma unroll
  for (int r = 0; r < PER; r++) {
    const int k = tid + r * 1024;
    if (k < BB) t[(k / B) * W + k % B] = (float)v[r];
  }
  __syncthreads();
  for (int k = tid; k < BB; k += 1024) {
    const float *q = t + (k / B) * W + k % B;
    table[k] = make_float4(q[0], q[1], q[2], q[3]);
  }
  acc = block_sum(acc);
  if (tid == 0) stats[0] = acc, stats[1] = n;
}

// Gradient pass, one voxel: the Parzen weights of both values and the table rows they select.
// The B-spline's sixteen table entries per voxel come as four float4 rows: entry (i, j) of
// the table holds T[i][j .. j+3], so each row is one 16-byte shared load (random lookups from
// the 4-byte form cost ~3.5 bank wavefronts each, 14 per voxel). CP copies of the table, entry
// e of copy c at float4 8e + c: a 16-byte load is served eight lanes at a time, and lane l
// reads copy l mod 8, which lies in banks 4c .. 4c + 3 only, so the eight never conflict
// (with one copy, random rows cost 10.2 wavefronts per warp-wide load instead of 4: ncu, H100).
template <int NT, int CP, bool BOX>
__device__ __forceinline__ float mi_grad_one(const MiArgs &a, float f, float m, const float4 *t4, float norm) {
  float def, dem, wf[NT], dwf[NT], wm[NT], dwm[NT];
  const int jf = parzen_fixed<NT, BOX>(mi_eta(a, f, a.fmin, a.fscale, &def), a.tapconv, wf, dwf);
  const int jm = parzen<NT>(mi_eta(a, m, a.mmin, a.mscale, &dem), a.tapconv, wm, dwm);
  float acc = 0.f;
  if (dem != 0.f) {
#pragma unroll
    for (int p = 0; p < NTF<BOX, NT>; p++) {
      float sa;
      if (NT == 4) {
        const float4 r = t4[((jf + p) * a.bins + jm) * CP];
        sa = r.x * dwm[0] + r.y * dwm[1] + r.z * dwm[2] + r.w * dwm[3];
      } else {  // six taps: the first four from the row's float4, two from the next
        const float4 r = t4[((jf + p) * a.bins + jm) * CP], r2 = t4[((jf + p) * a.bins + jm + 4) * CP];
        sa = r.x * dwm[0] + r.y * dwm[1] + r.z * dwm[2] + r.w * dwm[3] + r2.x * dwm[4] + r2.y * dwm[5];
      }
      acc += wf[p] * sa;
    }
  }
  return -norm * acc * dem;
}

// U voxels per thread and step, loaded before any is used (as the histogram); a block per
// resident slot, so the table is copied to shared memory once per slot rather than per 256
// voxels. CP = 8: the lane copies (one 1024-thread block per SM, 128 KB at 32 bins).
template <int NT, int U, int CP, bool BOX>
__device__ __forceinline__ void mi_grad_body(const MiArgs &a, long long n, const float *__restrict__ F,
                                             const float *__restrict__ M, const uint8_t *__restrict__ mask,
                                             const float4 *__restrict__ table, const double *__restrict__ stats,
                                             float *__restrict__ g, float4 *t4s) {
  const int BB = a.bins * a.bins;
  for (int k = threadIdx.x; k < BB * CP; k += blockDim.x) t4s[k] = table[k / CP];
  const float4 *t4 = t4s + (CP > 1 ? (threadIdx.x & 7) : 0);
  const float norm = stats[1] > 0.0 ? (float)(1.0 / stats[1]) : 0.f;
  __syncthreads();
  const long long step = (long long)gridDim.x * blockDim.x * U;
  for (long long b = blockIdx.x * (long long)blockDim.x * U + threadIdx.x; b < n; b += step) {
    float fv[U], mv[U];
    bool on[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const long long i = b + u * (long long)blockDim.x;
      const bool in = i < n;
      fv[u] = in ? F[i] : 0.f, mv[u] = in ? M[i] : 0.f, on[u] = in && (!mask || mask[i]);
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const long long i = b + u * (long long)blockDim.x;
      if (i < n) g[i] = on[u] ? mi_grad_one<NT, CP, BOX>(a, fv[u], mv[u], t4, norm) : 0.f;
    }
  }
}

template <int NT, int U, bool BOX>
__global__ void mi_grad_kernel(MiArgs a, long long n, const float *__restrict__ F, const float *__restrict__ M,
                               const uint8_t *__restrict__ mask, const float4 *__restrict__ table,
                               const double *__restrict__ stats, float *__restrict__ g) {
  extern __shared__ float4 t4s[];
  mi_grad_body<NT, U, 1, BOX>(a, n, F, M, mask, table, stats, g, t4s);
}

template <int NT, int U, bool BOX>
__global__ void __launch_bounds__(kGradCopyThreads, 1)
    mi_grad_copies_kernel(MiArgs a, long long n, const float *__restrict__ F, const float *__restrict__ M,
                          const uint8_t *__restrict__ mask, const float4 *__restrict__ table,
                          const double *__restrict__ stats, float *__restrict__ g) {
  extern __shared__ float4 t4s[];
  mi_grad_body<NT, U, 8, BOX>(a, n, F, M, mask, table, stats, g, t4s);
}

// Voxels per thread and step: 4 for the B-spline (H100 256^3: 0.256 -> 0.225 ms; 2: the same,
// 8: 0.33 ms), 1 for the Gaussian, whose six exponentials per value already keep the issue
// slots busy (0.835 ms with 1, 0.906 with 4, bench/gpu/NOTES.md runs 108-109).
// FFDP_MI_UNROLL=1|4 overrides (the bench's A/B).
int mi_unroll(int taps) {
  const char *e = getenv("FFDP_MI_UNROLL");
  const int u = e ? atoi(e) : 0;
  return u == 1 || u == 4 ? u : taps == 4 ? 4 : 1;
}

using HistKernel = void (*)(MiArgs, long long, long long, const float *, const float *, const uint8_t *,
                            unsigned long long *);
template <int NT, bool BOX>
HistKernel hist_lanes_for(int u) {
  return u == 4 ? mi_hist_lanes_kernel<NT, 4, BOX> : mi_hist_lanes_kernel<NT, 1, BOX>;
}

using GradKernel = void (*)(MiArgs, long long, const float *, const float *, const uint8_t *, const float4 *,
                            const double *, float *);
template <int NT, bool BOX>
GradKernel grad_for(int u, bool copies) {
  if (copies) return u == 4 ? mi_grad_copies_kernel<NT, 4, BOX> : mi_grad_copies_kernel<NT, 1, BOX>;
  return u == 4 ? mi_grad_kernel<NT, 4, BOX> : mi_grad_kernel<NT, 1, BOX>;
}

MiArgs args_of(const ffdp_mi_params *p) {
  MiArgs a;
  a.bins = p->bins;
  const char *te = getenv("FFDP_MI_TAPDIST");
  a.tapconv = te && !strcmp(te, "conv");
  a.fmin = (float)p->fmin, a.mmin = (float)p->mmin;
  a.pad = ffdp_parzen_pad(p->kind), a.span = p->bins - 1 - 2 * a.pad;
  const float fmax = (float)p->fmax, mmax = (float)p->mmax;
  a.fscale = fmax > a.fmin ? a.span / ((double)fmax - (double)a.fmin) : 0.0;
  a.mscale = mmax > a.mmin ? a.span / ((double)mmax - (double)a.mmin) : 0.0;
  return a;
}

}  // namespace

// Device scratch of one call: the fixed-point histogram, the table and the two stats.
struct MiScratch {
  unsigned long long *hist;
  float4 *table;  // entry (i, j): T[i][j .. j+3], zeros past the row's end
  double *stats;
};

static cudaError_t scratch_open(int BB, MiScratch *m, cudaStream_t st) {
  char *base;
  cudaError_t e = cudaMallocAsync((void **)&base, (size_t)BB * 24 + 16, st);
  if (e) return e;
  m->hist = (unsigned long long *)base;
  m->stats = (double *)(base + (size_t)BB * 8);
  m->table = (float4 *)(base + (size_t)BB * 8 + 16);
  return cudaSuccess;
}

static void launch_hist(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                        const uint8_t *mask, unsigned long long *hist, cudaStream_t st) {
  const long long P = s->nx * s->ny, off = (s->z0 - s->zlo) * P, n = (s->z1 - s->z0) * P;
  const int BB = p->bins * p->bins;
  cudaMemsetAsync(hist, 0, (size_t)BB * 8, st);
  if (n <= 0) return;
  const MiArgs a = args_of(p);
  const char *he = getenv("FFDP_MI_HIST");  // "groups": one copy per block at any bin count (the bench's A/B)
  /* the 32 copies need up to 205 KB of shared memory per block: GPUs that offer less (sm_86/89:
   * 99 KB) keep the one-copy kernel */
  const int sms = device_sms(), smem_max = device_attr(cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
  const int lane_smem = BB * 8 + 32 * BB * 4;  // the 64-bit bins, then the 32 copies
  if (p->bins <= kLaneBins && lane_smem <= smem_max && !(he && !strcmp(he, "groups"))) {
    /* one 1024-thread block per SM; chunks of at most kLaneV voxels per thread between
     * flushes, spread over every block */
    long long chunk = (n + sms - 1) / sms;
    chunk = (chunk + kLaneThreads - 1) / kLaneThreads * kLaneThreads;
    if (chunk > (long long)kLaneThreads * kLaneV) chunk = (long long)kLaneThreads * kLaneV;
    const int blocks = (int)((n + chunk - 1) / chunk < sms ? (n + chunk - 1) / chunk : sms);
    const int u = mi_unroll(ffdp_parzen_taps(p->kind));
    auto kern = p->kind == FFDP_PARZEN_BSPLINE ? hist_lanes_for<4, false>(u)
                : p->kind == FFDP_PARZEN_MATTES ? hist_lanes_for<4, true>(u)
                                                : hist_lanes_for<6, false>(u);
    cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, lane_smem);
    kern<<<blocks, kLaneThreads, lane_smem, st>>>(a, n, chunk, F + off, M + off, mask ? mask + off : nullptr, hist);
    return;
  }
  const int blocks = blocks_for(n, kChunk, 132 * (p->kind != FFDP_PARZEN_GAUSS ? 4 : 3));
  const size_t smem = (size_t)BB * 12;
  const uint8_t *mk = mask ? mask + off : nullptr;
  if (p->kind == FFDP_PARZEN_BSPLINE)
    mi_hist_kernel<4, false><<<blocks, 512, smem, st>>>(a, n, F + off, M + off, mk, hist);
  else if (p->kind == FFDP_PARZEN_MATTES)
    mi_hist_kernel<4, true><<<blocks, 512, smem, st>>>(a, n, F + off, M + off, mk, hist);
  else
    mi_hist_kernel<6, false><<<blocks, 512, smem, st>>>(a, n, F + off, M + off, mk, hist);
}

// Table from m->hist, then the gradient (if gM), then loss = -MI back to the host: one sync.
static int table_grad_loss(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                           const uint8_t *mask, const MiScratch &m, float *gM, double *loss, cudaStream_t st) {
  const long long P = s->nx * s->ny, off = (s->z0 - s->zlo) * P, n = (s->z1 - s->z0) * P;
  const int BB = p->bins * p->bins;
  mi_table_kernel<<<1, 1024, 0, st>>>(p->bins, m.hist, m.table, m.stats);
  if (gM && n > 0) {
    const MiArgs a = args_of(p);
    const int u = mi_unroll(ffdp_parzen_taps(p->kind));
    const int sms = device_sms(), smem_max = device_attr(cudaDevAttrMaxSharedMemoryPerBlockOptin, 0);
    /* the eight lane copies up to 40 bins where the GPU offers the shared memory (128 KB at 32
     * bins), only with FFDP_MI_TABLE=copies: measured on an H100 at 256^3 (NOTES run 110), same
     * bits, B-spline 0.234 -> 0.233 ms (the bank conflicts are not what it waits on), Gaussian
     * 0.814 -> 0.790; not worth 128 KB of shared memory per block by default */
    const char *te = getenv("FFDP_MI_TABLE");
    const bool copies = p->bins <= kLaneBins && BB * 16 * 8 <= smem_max && te && !strcmp(te, "copies");
    const int smem = BB * (int)sizeof(float4) * (copies ? 8 : 1);  // one copy: 64 KB at 64 bins
    const GradKernel kern = p->kind == FFDP_PARZEN_BSPLINE  ? grad_for<4, false>(u, copies)
                            : p->kind == FFDP_PARZEN_MATTES ? grad_for<4, true>(u, copies)
                                                            : grad_for<6, false>(u, copies);
    cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    const int threads = copies ? kGradCopyThreads : 256;
    int blocks = blocks_for(n, 256, 132 * 16);  // one table, U = 1: the former grid
    if (u > 1 || copies) {  // one block per resident slot (each copies the table once)
      int per_sm = 0;
      if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, threads, smem) != cudaSuccess || per_sm < 1)
        per_sm = 1;
      blocks = blocks_for(n, threads * u, sms * per_sm);
    }
    kern<<<blocks, threads, smem, st>>>(a, n, F + off, M + off, mask ? mask + off : nullptr, m.table, m.stats,
                                        gM + off);
  }
  double mi = 0.0;
  cudaMemcpyAsync(&mi, m.stats, sizeof(double), cudaMemcpyDeviceToHost, st);
  cudaFreeAsync(m.hist, st);
  cudaError_t e = cudaStreamSynchronize(st);
  if (e) return (int)e;
  *loss = -mi;
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_mi_hist(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                                 const uint8_t *mask, double *hist_host, void *stream) {
  if (p->bins < 1 || p->bins > FFDP_CUDA_MI_MAX_BINS) return (int)cudaErrorInvalidValue;
  cudaStream_t st = (cudaStream_t)stream;
  const int BB = p->bins * p->bins;
  unsigned long long *hist, fixed[FFDP_CUDA_MI_MAX_BINS * FFDP_CUDA_MI_MAX_BINS];
  cudaError_t e = cudaMallocAsync((void **)&hist, (size_t)BB * 8, st);
  if (e) return (int)e;
  launch_hist(p, s, F, M, mask, hist, st);
  cudaMemcpyAsync(fixed, hist, (size_t)BB * 8, cudaMemcpyDeviceToHost, st);
  cudaFreeAsync(hist, st);
  if ((e = cudaStreamSynchronize(st))) return (int)e;
  for (int k = 0; k < BB; k++) hist_host[k] = (double)fixed[k] / kFixed;
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_mi_hist_grad(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                                      const uint8_t *mask, const double *hist_host, float *gM, double *loss,
                                      void *stream) {
  if (p->bins < 1 || p->bins > FFDP_CUDA_MI_MAX_BINS) return (int)cudaErrorInvalidValue;
  cudaStream_t st = (cudaStream_t)stream;
  const int BB = p->bins * p->bins;
  unsigned long long fixed[FFDP_CUDA_MI_MAX_BINS * FFDP_CUDA_MI_MAX_BINS];
  for (int k = 0; k < BB; k++) {  // back to the integers the ranks' histograms were made of
    const double v = hist_host[k] * kFixed;
    if (!(v >= 0.0 && v < 1.8e19 && v == floor(v))) return (int)cudaErrorInvalidValue;
    fixed[k] = (unsigned long long)v;
  }
  MiScratch m;
  cudaError_t e = scratch_open(BB, &m, st);
  if (e) return (int)e;
  cudaMemcpyAsync(m.hist, fixed, (size_t)BB * 8, cudaMemcpyHostToDevice, st);
  return table_grad_loss(p, s, F, M, mask, m, gM, loss, st);
}

extern "C" int ffdp_cuda_mi(const ffdp_mi_params *p, const ffdp_slab *s, const float *F, const float *M,
                            const uint8_t *mask, float *gM, double *loss, void *stream) {
  if (p->bins < 1 || p->bins > FFDP_CUDA_MI_MAX_BINS) return (int)cudaErrorInvalidValue;
  cudaStream_t st = (cudaStream_t)stream;
  MiScratch m;
  cudaError_t e = scratch_open(p->bins * p->bins, &m, st);
  if (e) return (int)e;
  launch_hist(p, s, F, M, mask, m.hist, st);
  return table_grad_loss(p, s, F, M, mask, m, gM, loss, st);
}
