// CUDA LNCC, forward and backward fused in one kernel (same math as lncc_impl.h).
// A block owns a TX x TY column tile and a z-range; it marches along z keeping, in shared
// memory, (a) a ring of 2r+1 planes of the five xy-filtered moment products over the tile
// plus an r halo, (b) a ring of 2r+1 planes of the three xy-filtered G's over the tile and
// (c) a ring of the raw F, M of the tile. Per plane it reads F and M once (with a 2r
// apron in x and y that neighbouring tiles also read, mostly from L2) and writes dL/dM once:
// no moment, G or cc volume ever exists in device memory. Loss partials per block are
// summed on the host in block order (deterministic).
#include "ops/cuda_common.cuh"
#include "ops/ops_cuda.h"
#include <math.h>
#include <stdlib.h>

using namespace ffdp_cuda;

namespace {

constexpr int TX = 32;
__constant__ float c_lw[2 * 4 + 1];

struct Geo {
  int nx, ny, nz;
  long long zlo;
  long long z0, z1;  // owned
  int zchunk;
  float eps, norm;
};

template <int R, int TY>
struct Layout {
  static constexpr int K = 2 * R + 1;
  static constexpr int IW = TX + 4 * R, IH = TY + 4 * R;  // input apron
  static constexpr int MW = TX + 2 * R, MH = TY + 2 * R;  // moment region
  static constexpr int IN = 2 * IW * IH;                  // raw F, M of the apron
  static constexpr int XF = 5 * MW * IH;                  // x-filtered products
  static constexpr int RA = K * 5 * MW * MH;              // ring of xy-filtered products
  static constexpr int GP = 3 * MW * MH;                  // G plane (unfiltered)
  static constexpr int GX = 3 * TX * MH;                  // G x-filtered
  static constexpr int RB = K * 3 * TX * TY;              // ring of xy-filtered G
  static constexpr int RC = K * 2 * TX * TY;              // ring of raw F, M of the tile
  static constexpr int TOTAL = IN + XF + RA + GP + GX + RB + RC;
};

template <int R, int TY>
__global__ void __launch_bounds__(TX *TY) lncc_kernel(Geo g, const float *__restrict__ F, const float *__restrict__ M,
                                                      const uint8_t *__restrict__ mask, float *__restrict__ gM,
                                                      double *partial) {
  using L = Layout<R, TY>;
  extern __shared__ float sm[];
  float *in = sm, *xf = in + L::IN, *ra = xf + L::XF, *gp = ra + L::RA, *gx = gp + L::GP, *rb = gx + L::GX,
        *rc = rb + L::RB;
  const int tid = threadIdx.x, nthr = TX * TY;
  const int x0 = blockIdx.x * TX, y0 = blockIdx.y * TY;
  const long long za = g.z0 + (long long)blockIdx.z * g.zchunk;
  const long long zb = za + g.zchunk < g.z1 ? za + g.zchunk : g.z1;
  const long long P = (long long)g.nx * g.ny;
  const bool grad = gM != nullptr;
  double acc = 0.0;
  auto slot = [](long long z) { return (int)(((z % L::K) + L::K) % L::K); };

  for (long long t = za - 2 * R; t < zb + 2 * R; t++) {
    // 1. raw apron of plane t (zero outside the image)
    const bool tin = t >= 0 && t < g.nz;
    for (int e = tid; e < L::IW * L::IH; e += nthr) {
      int i = e % L::IW, j = e / L::IW, x = x0 - 2 * R + i, y = y0 - 2 * R + j;
      float f = 0.f, m = 0.f;
      if (tin && x >= 0 && x < g.nx && y >= 0 && y < g.ny) {
        long long k = (t - g.zlo) * P + (long long)y * g.nx + x;
        f = __ldg(F + k), m = __ldg(M + k);
      }
      in[e] = f, in[L::IW * L::IH + e] = m;
      int ti = i - 2 * R, tj = j - 2 * R;  // keep the tile's raw values for the output step
      if (ti >= 0 && ti < TX && tj >= 0 && tj < TY) {
        float *c = rc + slot(t) * 2 * TX * TY;
        c[tj * TX + ti] = f, c[TX * TY + tj * TX + ti] = m;
      }
    }
    __syncthreads();
    // 2. x-filter the five products over all apron rows
    for (int e = tid; e < L::MW * L::IH; e += nthr) {
      int i = e % L::MW, j = e / L::MW;
      float s[5] = {0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll
      for (int d = 0; d < 2 * R + 1; d++) {
        float f = in[j * L::IW + i + d], m = in[L::IW * L::IH + j * L::IW + i + d], w = c_lw[d];
        s[0] += w * f, s[1] += w * m, s[2] += w * f * f, s[3] += w * m * m, s[4] += w * f * m;
      }
#pragma unroll
      for (int q = 0; q < 5; q++) xf[q * L::MW * L::IH + e] = s[q];
    }
    __syncthreads();
    // 3. y-filter into ring A
    {
      float *dst = ra + slot(t) * 5 * L::MW * L::MH;
      for (int e = tid; e < L::MW * L::MH; e += nthr) {
        int i = e % L::MW, j = e / L::MW;
#pragma unroll
        for (int q = 0; q < 5; q++) {
          float s = 0.f;
#pragma unroll
          for (int d = 0; d < 2 * R + 1; d++) s += c_lw[d] * xf[q * L::MW * L::IH + (j + d) * L::MW + i];
          dst[q * L::MW * L::MH + e] = s;
        }
      }
    }
    __syncthreads();
    // 4. moments, cc and G on plane p = t - R over the moment region
    const long long p = t - R;
    if (p >= za - R) {
      const bool pin = p >= 0 && p < g.nz;
      for (int e = tid; e < L::MW * L::MH; e += nthr) {
        int i = e % L::MW, j = e / L::MW, x = x0 - R + i, y = y0 - R + j;
        float G2 = 0.f, G4 = 0.f, G5 = 0.f;
        if (pin && x >= 0 && x < g.nx && y >= 0 && y < g.ny) {
          float m[5] = {0.f, 0.f, 0.f, 0.f, 0.f};
#pragma unroll
          for (int d = 0; d < 2 * R + 1; d++) {
            const float *src = ra + slot(p - R + d) * 5 * L::MW * L::MH + e;
            float w = c_lw[d];
#pragma unroll
            for (int q = 0; q < 5; q++) m[q] += w * src[q * L::MW * L::MH];
          }
          float cov = m[4] - m[0] * m[1], vF = m[2] - m[0] * m[0], vM = m[3] - m[1] * m[1];
          bool vMpos = vM > 0.f;
          vF = vF < 0.f ? 0.f : vF;
          vM = vMpos ? vM : 0.f;
          float den = vF * vM + g.eps, cc = cov * cov / den;
          float wk = mask ? (float)(mask[(p - g.zlo) * P + (long long)y * g.nx + x] != 0) : 1.f;
          bool interior = i >= R && i < R + TX && j >= R && j < R + TY;
          if (interior && p >= za && p < zb) acc -= (double)(wk * cc);
          float s_ = g.norm * wk, dcov = -s_ * 2.f * cov / den, dvM = vMpos ? s_ * cov * cov * vF / (den * den) : 0.f;
          G2 = dcov * (-m[0]) + dvM * (-2.f * m[1]);
          G4 = dvM;
          G5 = dcov;
        }
        gp[e] = G2, gp[L::MW * L::MH + e] = G4, gp[2 * L::MW * L::MH + e] = G5;
      }
      __syncthreads();
      if (grad) {
        for (int e = tid; e < TX * L::MH; e += nthr) {  // x-filter G
          int i = e % TX, j = e / TX;
#pragma unroll
          for (int q = 0; q < 3; q++) {
            float s = 0.f;
#pragma unroll
            for (int d = 0; d < 2 * R + 1; d++) s += c_lw[d] * gp[q * L::MW * L::MH + j * L::MW + i + d];
            gx[q * TX * L::MH + e] = s;
          }
        }
        __syncthreads();
        float *dst = rb + slot(p) * 3 * TX * TY;
        for (int e = tid; e < TX * TY; e += nthr) {  // y-filter G into ring B
          int i = e % TX, j = e / TX;
#pragma unroll
          for (int q = 0; q < 3; q++) {
            float s = 0.f;
#pragma unroll
            for (int d = 0; d < 2 * R + 1; d++) s += c_lw[d] * gx[q * TX * L::MH + (j + d) * TX + i];
            dst[q * TX * TY + e] = s;
          }
        }
      }
    }
    __syncthreads();
    // 5. output plane o = t - 2R: gM = w*G2 + 2 M (w*G4) + F (w*G5)
    const long long o = t - 2 * R;
    if (grad && o >= za && o < zb) {
      const float *c = rc + slot(o) * 2 * TX * TY;
      const int i = tid % TX, j = tid / TX, x = x0 + i, y = y0 + j;
      if (x < g.nx && y < g.ny) {
        float a = 0.f, b = 0.f, cc5 = 0.f;
#pragma unroll
        for (int d = 0; d < 2 * R + 1; d++) {
          const float *src = rb + slot(o - R + d) * 3 * TX * TY + tid;
          float w = c_lw[d];
          a += w * src[0], b += w * src[TX * TY], cc5 += w * src[2 * TX * TY];
        }
        gM[(o - g.zlo) * P + (long long)y * g.nx + x] = a + 2.f * c[TX * TY + tid] * b + c[tid] * cc5;
      }
    }
    // ring slots written in the next step are read in steps 4/5 of this one
    __syncthreads();
  }
  double s = block_sum(acc);
  if (threadIdx.x == 0) partial[((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x] = s * g.norm;
}

template <int R, int TY>
int launch(const Geo &g, const float *F, const float *M, const uint8_t *mask, float *gM, double *part, dim3 grid,
           cudaStream_t st) {
  const size_t smem = Layout<R, TY>::TOTAL * sizeof(float);
  cudaError_t e = cudaFuncSetAttribute(lncc_kernel<R, TY>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
  if (e) return (int)e;
  lncc_kernel<R, TY><<<grid, TX * TY, smem, st>>>(g, F, M, mask, gM, part);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int ffdp_cuda_lncc(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M,
                              const uint8_t *mask, double norm, float *gM, double *loss, void *stream) {
  const int r = (p->window - 1) / 2;
  if (p->window % 2 == 0 || r < 1 || r > 4) return (int)cudaErrorInvalidValue;
  cudaStream_t st = (cudaStream_t)stream;
  float w[9];
  if (p->kind == FFDP_WINDOW_BOX) {
    for (int d = 0; d < p->window; d++) w[d] = 1.f / p->window;
  } else {
    double sig = r / 2.0 > 0.5 ? r / 2.0 : 0.5, sum = 0, t[9];
    for (int d = -r; d <= r; d++) sum += (t[d + r] = exp(-0.5 * d * d / (sig * sig)));
    for (int d = 0; d < p->window; d++) w[d] = (float)(t[d] / sum);
  }
  cudaMemcpyToSymbolAsync(c_lw, w, p->window * sizeof(float), 0, cudaMemcpyHostToDevice, st);
  const int ty = 8; /* 32x8 tiles: <= 95 KB at r = 2, so two blocks share an SM */
  const long long nzo = s->z1 - s->z0;
  const int tiles = (int)(((s->nx + TX - 1) / TX) * ((s->ny + ty - 1) / ty));
  /* long chunks amortize the 4r planes of ring fill; keep at least ~4 blocks per SM */
  int zchunk = (int)(nzo < 64 ? nzo : 64);
  while (zchunk > 16 && (long long)tiles * ((nzo + zchunk - 1) / zchunk) < 4 * 132) zchunk /= 2;
  if (zchunk < 1) zchunk = 1;
  dim3 grid((unsigned)((s->nx + TX - 1) / TX), (unsigned)((s->ny + ty - 1) / ty), (unsigned)((nzo + zchunk - 1) / zchunk));
  Geo g = {(int)s->nx, (int)s->ny, (int)s->nz, s->zlo, s->z0, s->z1, zchunk, (float)p->eps, (float)norm};
  const int nb = (int)(grid.x * grid.y * grid.z);
  double *part;
  cudaError_t e = cudaMallocAsync((void **)&part, nb * sizeof(double), st);
  if (e) return (int)e;
  int rc;
  switch (r) {
  case 1: rc = launch<1, 8>(g, F, M, mask, gM, part, grid, st); break;
  case 2: rc = launch<2, 8>(g, F, M, mask, gM, part, grid, st); break;
  case 3: rc = launch<3, 8>(g, F, M, mask, gM, part, grid, st); break;
  default: rc = launch<4, 8>(g, F, M, mask, gM, part, grid, st); break;
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
