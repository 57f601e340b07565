// CUDA LNCC, forward and backward fused in one kernel (same math as lncc_impl.h).
// A block owns a TX x TY column tile and a z-range and marches along z. Per plane it reads
// F and M once (with a 2R apron in x and y that neighbouring tiles also read, mostly from
// L2), filters the five moment products in x and y through shared memory, and each thread
// keeps the z-window of its column in registers: a ring of 2R+1 planes of the five
// xy-filtered products (for the moments at plane t-R) and of the three xy-filtered G's (for
// the gradient at plane t-2R). Raw F, M of the output plane are re-read (an L2 hit). No
// moment, G or cc volume exists in device memory, and shared memory holds only one plane of
// intermediates, so several blocks share an SM. Loss partials per block are summed on the
// host in block order (deterministic). With gF as well (the symmetric loss of SyN needs the
// gradient w.r.t. both images) two more G channels ride along and one pass gives both.
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"
#include <math.h>
#include <stdlib.h>

using namespace ffdp_cuda;

namespace {

constexpr int TX = 32;

struct Geo {
  int nx, ny, nz;
  long long zlo;
  long long z0, z1;  // owned
  int zchunk;
  float eps, norm;
  float w[2 * 4 + 1];  // window taps: a kernel parameter, no copy before each call
};

template <int R, int TY, int NG>
struct Layout {
  static constexpr int K = 2 * R + 1;
  static constexpr int IW = TX + 4 * R, IH = TY + 4 * R;  // input apron
  static constexpr int MW = TX + 2 * R, MH = TY + 2 * R;  // moment region: one thread per column
  static constexpr int NT = (MW * MH + 31) / 32 * 32;     // threads
  static constexpr int IN = 2 * IW * IH;                  // raw F, M of the apron
  static constexpr int XF = 5 * MW * IH;                  // x-filtered products
  static constexpr int GP = NG * MW * MH;                 // G plane (unfiltered)
  static constexpr int GX = NG * TX * MH;                 // G x-filtered
};

// NG = 3: G channels for gM (dL/dm1, dL/dm3, dL/dm4); NG = 5: also dL/dm0, dL/dm2 for gF.
template <int R, int TY, int NG, int MINB>
__global__ void __launch_bounds__(Layout<R, TY, NG>::NT, MINB)
    lncc_kernel(Geo g, const float *__restrict__ F, const float *__restrict__ M, const uint8_t *__restrict__ mask,
                float *__restrict__ gM, float *__restrict__ gF, double *partial) {
  using L = Layout<R, TY, NG>;
  constexpr int K = L::K;
  __shared__ float in[L::IN], xf[L::XF], gp[L::GP], gx[L::GX];
  const int tid = threadIdx.x;
  const int x0 = blockIdx.x * TX, y0 = blockIdx.y * TY;
  const long long za = g.z0 + (long long)blockIdx.z * g.zchunk;
  const long long zb = za + g.zchunk < g.z1 ? za + g.zchunk : g.z1;
  const long long P = (long long)g.nx * g.ny;
  const bool grad = gM != nullptr;
  // this thread's moment column (i, j) of the MW x MH region and output column of the tile
  const int mi = tid % L::MW, mj = tid / L::MW, mx = x0 - R + mi, my = y0 - R + mj;
  const bool mcol = tid < L::MW * L::MH, min_img = mcol && mx >= 0 && mx < g.nx && my >= 0 && my < g.ny;
  const bool interior = mcol && mi >= R && mi < R + TX && mj >= R && mj < R + TY;
  const int oi = tid % TX, oj = tid / TX, ox = x0 + oi, oy = y0 + oj;
  const bool ocol = tid < TX * TY && ox < g.nx && oy < g.ny;
  const float *w = g.w;  // constant-bank operands: no registers
  float ra[5][K], rb[NG][K];  // z-rings: [d] holds plane t-2R+d (products), p-2R+d (G's)
#pragma unroll
  for (int q = 0; q < 5; q++)
#pragma unroll
    for (int d = 0; d < K; d++) ra[q][d] = 0.f;
#pragma unroll
  for (int q = 0; q < NG; q++)
#pragma unroll
    for (int d = 0; d < K; d++) rb[q][d] = 0.f;
  double acc = 0.0;
  // Apron values this thread stages per plane (at most two of F and of M), with in-plane
  // offsets fixed for the whole march; the next plane's loads are issued before this plane's
  // filtering so their latency hides behind it.
  static_assert(L::IW * L::IH <= 2 * L::NT, "apron staging assumes two values per thread");
  int off[2];  // -1: outside the image (zero); -2: no element
#pragma unroll
  for (int l = 0; l < 2; l++) {
    const int e = tid + l * L::NT, i = e % L::IW, j = e / L::IW, x = x0 - 2 * R + i, y = y0 - 2 * R + j;
    off[l] = e >= L::IW * L::IH ? -2 : x >= 0 && x < g.nx && y >= 0 && y < g.ny ? y * g.nx + x : -1;
  }
  float vf[2], vm[2];
  auto fetch = [&](long long t) {
    const bool tin = t >= 0 && t < g.nz;
    const long long b = tin ? (t - g.zlo) * P : 0;
#pragma unroll
    for (int l = 0; l < 2; l++) {
      const bool ok = tin && off[l] >= 0;
      vf[l] = ok ? __ldg(F + b + off[l]) : 0.f, vm[l] = ok ? __ldg(M + b + off[l]) : 0.f;
    }
  };
  fetch(za - 2 * R);

  for (long long t = za - 2 * R; t < zb + 2 * R; t++) {
    // 1. raw apron of plane t (zero outside the image), prefetched; then the next plane's loads
#pragma unroll
    for (int l = 0; l < 2; l++)
      if (off[l] != -2) in[tid + l * L::NT] = vf[l], in[L::IW * L::IH + tid + l * L::NT] = vm[l];
    __syncthreads();
    if (t + 1 < zb + 2 * R) fetch(t + 1);
    // raw F, M of the output plane o = t - 2R (used in step 5), loaded early for the same reason
    const long long o = t - 2 * R;
    const bool oact = grad && ocol && o >= za && o < zb;
    const long long ko = oact ? (o - g.zlo) * P + (long long)oy * g.nx + ox : 0;
    const float fo = oact ? __ldg(F + ko) : 0.f, mo = oact ? __ldg(M + ko) : 0.f;
    // 2. x-filter the five products over all apron rows
    for (int e = tid; e < L::MW * L::IH; e += L::NT) {
      int i = e % L::MW, j = e / L::MW;
      float s[5] = {0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int d = 0; d < K; d++) {
        float f = in[j * L::IW + i + d], m = in[L::IW * L::IH + j * L::IW + i + d], wf = w[d] * f, wm = w[d] * m;
        s[0] += wf, s[1] += wm, s[2] += wf * f, s[3] += wm * m, s[4] += wf * m;
      }
#pragma unroll
      for (int q = 0; q < 5; q++) xf[q * L::MW * L::IH + e] = s[q];
    }
    __syncthreads();
    // 3. y-filter this thread's column into ring A; moments, cc and G on plane p = t - R
    const long long p = t - R;
    const bool pact = p >= za - R;
    if (mcol) {
#pragma unroll
      for (int q = 0; q < 5; q++) {
        float s = 0.f;
#pragma unroll
        for (int d = 0; d < K; d++) s += w[d] * xf[q * L::MW * L::IH + (mj + d) * L::MW + mi];
#pragma unroll
        for (int d = 0; d < K - 1; d++) ra[q][d] = ra[q][d + 1];
        ra[q][K - 1] = s;
      }
      if (pact) {
        float G2 = 0.f, G4 = 0.f, G5 = 0.f, H2 = 0.f, H4 = 0.f;
        if (min_img && p >= 0 && p < g.nz) {
          float m[5];
#pragma unroll
          for (int q = 0; q < 5; q++) {
            float s = 0.f;
#pragma unroll
            for (int d = 0; d < K; d++) s += w[d] * ra[q][d];
            m[q] = s;
          }
          float cov = m[4] - m[0] * m[1], vF = m[2] - m[0] * m[0], vM = m[3] - m[1] * m[1];
          const bool vMpos = vM > 0.f, vFpos = vF > 0.f;
          vF = vFpos ? vF : 0.f;
          vM = vMpos ? vM : 0.f;
          float den = vF * vM + g.eps, cc = cov * cov / den;
          float wk = mask ? (float)(mask[(p - g.zlo) * P + (long long)my * g.nx + mx] != 0) : 1.f;
          if (interior && p >= za && p < zb) acc -= (double)(wk * cc);
          float s_ = g.norm * wk, dcov = -s_ * 2.f * cov / den, dvM = vMpos ? s_ * cov * cov * vF / (den * den) : 0.f;
          G2 = dcov * (-m[0]) + dvM * (-2.f * m[1]);
          G4 = dvM;
          G5 = dcov;
          if (NG == 5) {
            const float dvF = vFpos ? s_ * cov * cov * vM / (den * den) : 0.f;
            H2 = dcov * (-m[1]) + dvF * (-2.f * m[0]);
            H4 = dvF;
          }
        }
        gp[tid] = G2, gp[L::MW * L::MH + tid] = G4, gp[2 * L::MW * L::MH + tid] = G5;
        if (NG == 5) gp[3 * L::MW * L::MH + tid] = H2, gp[4 * L::MW * L::MH + tid] = H4;
      }
    }
    if (!grad || !pact) continue;  // uniform over the block
    __syncthreads();
    // 4. x-filter G
    for (int e = tid; e < TX * L::MH; e += L::NT) {
      int i = e % TX, j = e / TX;
#pragma unroll
      for (int q = 0; q < NG; q++) {
        float s = 0.f;
#pragma unroll
        for (int d = 0; d < K; d++) s += w[d] * gp[q * L::MW * L::MH + j * L::MW + i + d];
        gx[q * TX * L::MH + e] = s;
      }
    }
    __syncthreads();
    // 5. y-filter G into ring B; output plane o = t - 2R: gM = w*G2 + 2 M (w*G4) + F (w*G5)
    //    (and gF = w*H2 + 2 F (w*H4) + M (w*G5))
    if (tid < TX * TY) {
#pragma unroll
      for (int q = 0; q < NG; q++) {
        float s = 0.f;
#pragma unroll
        for (int d = 0; d < K; d++) s += w[d] * gx[q * TX * L::MH + (oj + d) * TX + oi];
#pragma unroll
        for (int d = 0; d < K - 1; d++) rb[q][d] = rb[q][d + 1];
        rb[q][K - 1] = s;
      }
      if (oact) {
        float a = 0.f, b = 0.f, c = 0.f;
#pragma unroll
        for (int d = 0; d < K; d++) a += w[d] * rb[0][d], b += w[d] * rb[1][d], c += w[d] * rb[2][d];
        gM[ko] = a + 2.f * mo * b + fo * c;
        if (NG == 5) {
          float d2 = 0.f, e2 = 0.f;
#pragma unroll
          for (int d = 0; d < K; d++) d2 += w[d] * rb[3][d], e2 += w[d] * rb[4][d];
          gF[ko] = d2 + 2.f * fo * e2 + mo * c;
        }
      }
    }
    // the next plane's step 1 and 2 write `in` and `xf`, last read before the barriers above
  }
  double s = block_sum(acc);
  if (threadIdx.x == 0) partial[((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x] = s * g.norm;
}

template <int R, int TY, int MINB>
int launch(const Geo &g, const float *F, const float *M, const uint8_t *mask, float *gM, float *gF, double *part,
           dim3 grid, cudaStream_t st) {
  if (gF)
    lncc_kernel<R, TY, 5, MINB><<<grid, Layout<R, TY, 5>::NT, 0, st>>>(g, F, M, mask, gM, gF, part);
  else
    lncc_kernel<R, TY, 3, MINB><<<grid, Layout<R, TY, 3>::NT, 0, st>>>(g, F, M, mask, gM, nullptr, part);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int ffdp_cuda_lncc2(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M,
                               const uint8_t *mask, double norm, float *gF, float *gM, double *loss, void *stream) {
  const int r = (p->window - 1) / 2;
  if (p->window % 2 == 0 || r < 1 || r > 4 || (gF && !gM)) return (int)cudaErrorInvalidValue;
  cudaStream_t st = (cudaStream_t)stream;
  float w[9];
  if (p->kind == FFDP_WINDOW_BOX) {
    for (int d = 0; d < p->window; d++) w[d] = 1.f / p->window;
  } else {
    double sig = r / 2.0 > 0.5 ? r / 2.0 : 0.5, sum = 0, t[9];
    for (int d = -r; d <= r; d++) sum += (t[d + r] = exp(-0.5 * d * d / (sig * sig)));
    for (int d = 0; d < p->window; d++) w[d] = (float)(t[d] / sum);
  }
  /* tile height per radius: the largest tile whose two register z-rings (8(2r+1) floats per
   * thread) compile without spills (ptxas -v); r = 4 spills ~200 bytes per thread */
  const int ty = r == 1 ? 16 : r == 2 ? 8 : 4;
  const long long nzo = s->z1 - s->z0;
  if (nzo <= 0) {
    *loss = 0;
    return 0;
  }
  const int tiles = (int)(((s->nx + TX - 1) / TX) * ((s->ny + ty - 1) / ty));
  /* long chunks amortize the 4r planes of ring fill; keep at least ~4 blocks per SM */
  int zchunk = (int)(nzo < 64 ? nzo : 64);
  while (zchunk > 16 && (long long)tiles * ((nzo + zchunk - 1) / zchunk) < 4 * 132) zchunk /= 2;
  dim3 grid((unsigned)((s->nx + TX - 1) / TX), (unsigned)((s->ny + ty - 1) / ty), (unsigned)((nzo + zchunk - 1) / zchunk));
  Geo g = {(int)s->nx, (int)s->ny, (int)s->nz, s->zlo, s->z0, s->z1, zchunk, (float)p->eps, (float)norm, {0}};
  for (int d = 0; d < p->window; d++) g.w[d] = w[d];
  const int nb = (int)(grid.x * grid.y * grid.z);
  double *part;
  cudaError_t e = cudaMallocAsync((void **)&part, nb * sizeof(double), st);
  if (e) return (int)e;
  int rc;
  switch (r) {
  case 1: rc = launch<1, 16, 1>(g, F, M, mask, gM, gF, part, grid, st); break;
  case 2: rc = launch<2, 8, 1>(g, F, M, mask, gM, gF, part, grid, st); break;
  case 3: rc = launch<3, 4, 1>(g, F, M, mask, gM, gF, part, grid, st); break;
  default: rc = launch<4, 4, 1>(g, F, M, mask, gM, gF, part, grid, st); break;
  }
  double *host = (double *)malloc(nb * sizeof(double));
  cudaMemcpyAsync(host, part, nb * sizeof(double), cudaMemcpyDeviceToHost, st);
  cudaFreeAsync(part, st);
  if (!rc) rc = (int)cudaStreamSynchronize(st);
  double sum = 0;
  for (int b = 0; b < nb; b++) sum += host[b];
  free(host);
  *loss = sum;
  return rc;
}

extern "C" int ffdp_cuda_lncc(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M,
                              const uint8_t *mask, double norm, float *gM, double *loss, void *stream) {
  return ffdp_cuda_lncc2(p, s, F, M, mask, norm, nullptr, gM, loss, stream);
}
