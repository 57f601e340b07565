// CUDA LNCC, forward and backward fused in one kernel (same math as lncc_impl.h).
// A block owns a TX x TY column tile and a z-range and marches along z, one plane per step.
// Each thread keeps, for its input columns, the last 2R+1 planes of raw F and M in registers
// and filters them along z first (the five moment products need no ring of their own); the
// z-filtered products then go through shared memory for the x and y filters, several outputs
// per thread (four along x, BY rows along y) so each loaded tap serves several sums.
// Moments, cc and the three G's of a plane live only in registers and one shared plane; the
// G's are filtered in x, y and finally z (a register ring per output column). Stages on different planes are pipelined so each
// step needs two barriers:
//   phase X: S1 raw plane s -> z-filtered products (zp) | S3 y-filter (xf) -> moments, cc, G
//            of plane s-1-R (gp) | S5 y-filter (gx) of G plane s-2-R -> ring -> output s-2-2R
//   phase Y: S2 x-filter zp -> xf | S4 x-filter gp -> gx
// Every buffer is written in one phase and read in the other, so none is double-buffered.
// The ring slots are compile-time because the march is unrolled by 2R+1 planes. Loss partials
// per block are summed on the host in block order (deterministic). With gF as well (the
// symmetric loss of SyN needs the gradient w.r.t. both images) two more G channels ride along.
#include "ops/cuda_common.cuh"
#include "ops/lncc_box.cuh"
#include "ops/lncc_tiles.cuh"
#include "ops/ops_cuda.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

template <int R, int TY, int NG, int BY>
struct Lay {
  static constexpr int K = 2 * R + 1;
  static constexpr int NT = TX * TY;                   // one output column per thread
  static constexpr int IW = TX + 4 * R, IH = TY + 4 * R;  // input columns (z-filtered products)
  static constexpr int MW = TX + 2 * R, MH = TY + 2 * R;  // moment / G region
  static constexpr int MWP = (MW + 3) / 4 * 4;            // x-filter outputs come in fours
  static constexpr int SPAN = (4 + 2 * R + 3) / 4 * 4;    // floats one four-output task reads
  static constexpr int IWP = MWP - 4 + SPAN;              // zp row width (padding never read into results)
  static constexpr int C = (IW * IH + NT - 1) / NT;       // input columns per thread
  static constexpr int ZP = 5 * IH * IWP, XF = 5 * IH * MWP, GP = NG * MH * MWP, GX = NG * MH * TX;
  static constexpr size_t SMEM = (size_t)(ZP + XF + GP + GX) * sizeof(float);
  static_assert(MH % BY == 0, "y filter computes BY rows per thread");
  static_assert(MW * (MH / BY) <= NT, "one y-filter task per thread at most");
  static_assert(IWP >= IW && MWP - 4 + SPAN <= IWP && TX - 4 + SPAN <= MWP, "row padding");
};

// Four outputs of a K-tap filter from SPAN consecutive floats at a 16-byte aligned address.
template <int R, int SPAN>
__device__ __forceinline__ float4 filter4(const float *src, const float *w) {
  float v[SPAN];
#pragma unroll
  for (int k = 0; k < SPAN; k += 4) {
    const float4 t = *reinterpret_cast<const float4 *>(src + k);
    v[k] = t.x, v[k + 1] = t.y, v[k + 2] = t.z, v[k + 3] = t.w;
  }
  float o[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int d = 0; d < 2 * R + 1; d++)
#pragma unroll
    for (int r = 0; r < 4; r++) o[r] += w[d] * v[r + d];
  return make_float4(o[0], o[1], o[2], o[3]);
}

// NG = 3: G channels for gM (dL/dm1, dL/dm3, dL/dm4); NG = 5: also dL/dm0, dL/dm2 for gF.
// RS (box windows): the z filter of the products is a running sum per input column (plane s
// added, plane s - K read again from memory, where L2 still holds it, and taken off) instead of
// rings of 2K raw values: C·2K registers become C·10, so the tile can be taller and the 2R
// apron costs less. The sums are integers: each value and product is rounded once to fixed
// point (2^-40; exact in double before that), and integer sums do not depend on their order, so
// a window's sum is the same wherever its z-chunk or its rank's slab starts — N ranks keep
// giving one process's bits. Magnitudes up to about 900 fit in 64 bits (the pipeline's images
// are scaled to [0, 1]).
template <int R, int TY, int NG, int BY, int MINB, bool RS>
__global__ void __launch_bounds__(TX *TY, MINB)
    lncc_kernel(Geo g, const float *__restrict__ F, const float *__restrict__ M, const uint8_t *__restrict__ mask,
                float *__restrict__ gM, float *__restrict__ gF, double *partial) {
  using L = Lay<R, TY, NG, BY>;
  constexpr int K = L::K, NT = L::NT, C = L::C;
  extern __shared__ float4 smem4[];
  float *const zp = reinterpret_cast<float *>(smem4), *const xf = zp + L::ZP, *const gp = xf + L::XF,
               *const gx = gp + L::GP;
  const int tid = threadIdx.x;
  const int x0 = blockIdx.x * TX, y0 = blockIdx.y * TY;
  const long long za = g.z0 + (long long)blockIdx.z * g.zchunk;
  const long long zb = za + g.zchunk < g.z1 ? za + g.zchunk : g.z1;
  const long long P = (long long)g.nx * g.ny;
  const bool grad = gM != nullptr;
  const float *w = g.w;  // constant-bank operands: no registers
  // S1: this thread's input columns; off = in-plane offset, -1 outside the image, -2 none
  int off[C], zo[C];
#pragma unroll
  for (int c = 0; c < C; c++) {
    const int e = tid + c * NT, i = e % L::IW, j = e / L::IW, x = x0 - 2 * R + i, y = y0 - 2 * R + j;
    off[c] = e >= L::IW * L::IH ? -2 : x >= 0 && x < g.nx && y >= 0 && y < g.ny ? y * g.nx + x : -1;
    zo[c] = j * L::IWP + i;
  }
  constexpr int CR = RS ? 1 : C, KR = RS ? 1 : K, CS = RS ? C : 1;
  float rf[CR][KR], rm[CR][KR], rb[NG][K], vf[C], vm[C], of[CS], om[CS];
  long long rs[CS][5];
#pragma unroll
  for (int c = 0; c < CR; c++)
#pragma unroll
    for (int d = 0; d < KR; d++) rf[c][d] = rm[c][d] = 0.f;
#pragma unroll
  for (int c = 0; c < CS; c++) {
    of[c] = om[c] = 0.f;
#pragma unroll
    for (int q = 0; q < 5; q++) rs[c][q] = 0;
  }
#pragma unroll
  for (int q = 0; q < NG; q++)
#pragma unroll
    for (int d = 0; d < K; d++) rb[q][d] = 0.f;
  auto fetch = [&](long long t) {
    const bool tin = t >= 0 && t < g.nz;
    const long long b = tin ? (t - g.zlo) * P : 0;
#pragma unroll
    for (int c = 0; c < C; c++) {
      const bool ok = tin && off[c] >= 0;
      vf[c] = ok ? __ldg(F + b + off[c]) : 0.f, vm[c] = ok ? __ldg(M + b + off[c]) : 0.f;
    }
  };
  // RS: plane t - K, which the running sums drop at step t (zero before the first plane added)
  const long long sbeg0 = za - 2 * R;
  auto fetch_old = [&](long long t) {
    if constexpr (RS) {
      const long long u = t - K;
      const bool tin = u >= sbeg0 && u >= 0 && u < g.nz;
      const long long b = tin ? (u - g.zlo) * P : 0;
#pragma unroll
      for (int c = 0; c < C; c++) {
        const bool ok = tin && off[c] >= 0;
        of[c] = ok ? __ldg(F + b + off[c]) : 0.f, om[c] = ok ? __ldg(M + b + off[c]) : 0.f;
      }
    }
  };
  // S3 task: column i of the moment region, rows BY jq .. BY jq + BY - 1 (tasks on the last
  // threads, which hold fewer input columns; column_task's bank-aware order); S5: output
  // column (oi, oj)
  const int t3 = NT - 1 - tid, G3 = L::MH / BY;
  int i3, jq3;
  column_task<L::MW, L::MH / BY>(t3, i3, jq3);
  const bool has3 = t3 < L::MW * G3;
  const int mx3 = x0 - R + i3;
  const int oi = tid % TX, oj = tid / TX, ox = x0 + oi, oy = y0 + oj;
  const bool ocol = ox < g.nx && oy < g.ny;
  const long long s_raw_end = zb + 2 * R, sbeg = za - 2 * R, send = zb + 2 * R + (grad ? 2 : 1);
  double acc = 0.0;
  fetch(sbeg);
  fetch_old(sbeg);

  for (long long s0 = sbeg; s0 < send; s0 += K) {
#pragma unroll
    for (int ph = 0; ph < K; ph++) {
      const long long s = s0 + ph;
      if (s >= send) break;  // uniform over the block
      // ---------------- phase X
      // S5 loads first (their latency hides behind S1 and S3): output plane o = s - 2 - 2R
      const long long q5 = s - 2 - R, o = q5 - R;
      const bool s5 = grad && q5 >= za - R && q5 < zb + R, out = s5 && ocol && o >= za && o < zb;
      const long long ko = out ? (o - g.zlo) * P + (long long)oy * g.nx + ox : 0;
      const float fo = out ? __ldg(F + ko) : 0.f, mo = out ? __ldg(M + ko) : 0.f;
      // S1: raw plane s into the ring, z-filtered products of plane s - R into zp
      if (s < s_raw_end && RS) {
        constexpr double QS = 1099511627776.0;  // 2^40
        const double wb = 1.0 / (K * QS);       // box taps, back from fixed point
        auto q = [](double x) { return __double2ll_rn(x * QS); };
#pragma unroll
        for (int c = 0; c < C; c++) {
          const double f = vf[c], m = vm[c], fo = of[c], mo = om[c];
          rs[c][0] += q(f) - q(fo), rs[c][1] += q(m) - q(mo), rs[c][2] += q(f * f) - q(fo * fo),
              rs[c][3] += q(m * m) - q(mo * mo), rs[c][4] += q(f * m) - q(fo * mo);
        }
        if (s + 1 < s_raw_end) fetch(s + 1), fetch_old(s + 1);
#pragma unroll
        for (int c = 0; c < C; c++) {
          if (off[c] == -2) continue;
          float *z = zp + zo[c];
          z[0] = (float)((double)rs[c][0] * wb), z[L::IH * L::IWP] = (float)((double)rs[c][1] * wb),
          z[2 * L::IH * L::IWP] = (float)((double)rs[c][2] * wb), z[3 * L::IH * L::IWP] = (float)((double)rs[c][3] * wb),
          z[4 * L::IH * L::IWP] = (float)((double)rs[c][4] * wb);
        }
      } else if (s < s_raw_end) {
#pragma unroll
        for (int c = 0; c < CR; c++) rf[c][ph % KR] = vf[c], rm[c][ph % KR] = vm[c];
        if (s + 1 < s_raw_end) fetch(s + 1);
#pragma unroll
        for (int c = 0; c < CR; c++) {
          if (off[c] == -2) continue;
          float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f, a4 = 0.f;
#pragma unroll
          for (int a = 0; a < KR; a++) {  // plane s - a sits in slot (ph - a) mod K, tap K-1-a
            const float f = rf[c][(ph - a + K) % K % KR], m = rm[c][(ph - a + K) % K % KR], wf = w[K - 1 - a] * f,
                        wm = w[K - 1 - a] * m;
            a0 += wf, a1 += wm, a2 += wf * f, a3 += wm * m, a4 += wf * m;
          }
          float *z = zp + zo[c];
          z[0] = a0, z[L::IH * L::IWP] = a1, z[2 * L::IH * L::IWP] = a2, z[3 * L::IH * L::IWP] = a3,
          z[4 * L::IH * L::IWP] = a4;
        }
      }
      // S3: y-filter xf into the moments of plane p = s - 1 - R, then cc and the G's
      const long long p = s - 1 - R;
      const bool s3 = p >= za - R && p < zb + R;
      if (s3 && has3) {
        float m[5][BY];
#pragma unroll
        for (int q = 0; q < 5; q++) {
          float v[BY + 2 * R];
#pragma unroll
          for (int d = 0; d < BY + 2 * R; d++) v[d] = xf[q * L::IH * L::MWP + (BY * jq3 + d) * L::MWP + i3];
#pragma unroll
          for (int r = 0; r < BY; r++) {
            float sum = 0.f;
#pragma unroll
            for (int d = 0; d < K; d++) sum += w[d] * v[r + d];
            m[q][r] = sum;
          }
        }
        const bool pin = p >= 0 && p < g.nz && mx3 >= 0 && mx3 < g.nx, own = p >= za && p < zb;
#pragma unroll
        for (int r = 0; r < BY; r++) {
          const int jr = BY * jq3 + r, my = y0 - R + jr;
          float G2 = 0.f, G4 = 0.f, G5 = 0.f, H2 = 0.f, H4 = 0.f;
          if (pin && my >= 0 && my < g.ny) {
            float cov = m[4][r] - m[0][r] * m[1][r], vF = m[2][r] - m[0][r] * m[0][r], vM = m[3][r] - m[1][r] * m[1][r];
            const bool vMpos = vM > 0.f, vFpos = vF > 0.f;
            vF = vFpos ? vF : 0.f;
            vM = vMpos ? vM : 0.f;
            const float inv = 1.f / (vF * vM + g.eps), cc = cov * cov * inv;
            const float wk = mask ? (float)(mask[(p - g.zlo) * P + (long long)my * g.nx + mx3] != 0) : 1.f;
            if (own && i3 >= R && i3 < R + TX && jr >= R && jr < R + TY) acc -= (double)(wk * cc);
            const float s_ = g.norm * wk, dcov = -s_ * 2.f * cov * inv, c2 = s_ * cc * inv;  // s cov²/den²
            const float dvM = vMpos ? c2 * vF : 0.f;
            G2 = dcov * (-m[0][r]) + dvM * (-2.f * m[1][r]);
            G4 = dvM;
            G5 = dcov;
            if (NG == 5) {
              const float dvF = vFpos ? c2 * vM : 0.f;
              H2 = dcov * (-m[1][r]) + dvF * (-2.f * m[0][r]);
              H4 = dvF;
            }
          }
          if (grad) {
            float *gq = gp + jr * L::MWP + i3;
            gq[0] = G2, gq[L::MH * L::MWP] = G4, gq[2 * L::MH * L::MWP] = G5;
            if (NG == 5) gq[3 * L::MH * L::MWP] = H2, gq[4 * L::MH * L::MWP] = H4;
          }
        }
      }
      // S5: y-filter the x-filtered G's of plane q5 into the ring; z-filter gives plane o
      if (s5) {
#pragma unroll
        for (int q = 0; q < NG; q++) {
          float sum = 0.f;
#pragma unroll
          for (int d = 0; d < K; d++) sum += w[d] * gx[q * L::MH * TX + (oj + d) * TX + oi];
          rb[q][ph] = sum;
        }
        if (out) {
          float zs[NG];
#pragma unroll
          for (int q = 0; q < NG; q++) {
            float sum = 0.f;
#pragma unroll
            for (int a = 0; a < K; a++) sum += w[K - 1 - a] * rb[q][(ph - a + K) % K];
            zs[q] = sum;
          }
          gM[ko] = zs[0] + 2.f * mo * zs[1] + fo * zs[2];  // gM = w*G2 + 2 M (w*G4) + F (w*G5)
          if (NG == 5) gF[ko] = zs[3] + 2.f * fo * zs[4] + mo * zs[2];
        }
      }
      __syncthreads();
      // ---------------- phase Y
      // S2: x-filter the z-filtered products of plane s - R (rows of the input apron), tasks in
      // quad_task's bank-aware order
      if (s >= za && s < s_raw_end) {
        constexpr int Q = L::MWP / 4;
        for (int task = tid; task < L::IH * Q; task += NT) {
          int j, k;
          quad_task<L::IH, Q>(task, j, k);
#pragma unroll
          for (int q = 0; q < 5; q++)
            *reinterpret_cast<float4 *>(xf + q * L::IH * L::MWP + j * L::MWP + k) =
                filter4<R, L::SPAN>(zp + q * L::IH * L::IWP + j * L::IWP + k, w);
        }
      }
      // S4: x-filter the G's of plane p (tasks from the last thread down: S2 has the first)
      if (grad && s3) {
        constexpr int Q = TX / 4;
        for (int task = NT - 1 - tid; task < L::MH * Q; task += NT) {
          const int j = task / Q, k = 4 * (task % Q);
#pragma unroll
          for (int q = 0; q < NG; q++)
            *reinterpret_cast<float4 *>(gx + q * L::MH * TX + j * TX + k) =
                filter4<R, L::SPAN>(gp + q * L::MH * L::MWP + j * L::MWP + k, w);
        }
      }
      __syncthreads();
    }
  }
  double s = block_sum(acc);
  if (threadIdx.x == 0) partial[((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x] = s * g.norm;
}

// z-chunk length (zchunk_by_waves): a block marches zchunk + 4R + 2 planes (ring fill and
// drain included) and the blocks run in waves of (SMs x resident blocks), so the kernel takes about
// waves * (zchunk + 4R + 2) plane steps. Chunks are split evenly and the count that minimizes
// that product is taken (at 256^3 and r = 2 on 132 SMs: one chunk of 256 planes, one wave,
// 266 steps, where halving to 32-plane chunks for four blocks per SM took 8 waves of 42).
// Measured on the H100 at 256^3 (bench/gpu/NOTES.md run 106): k = 5 box 0.612 -> 0.520 ms,
// both gradients 0.674 -> 0.582, k = 9 running sums 1.403 -> 1.066; the same gradient bits
// (a plane's sums do not depend on where its chunk starts).
// One call: the chunking for this kernel's occupancy, the launch, the loss partials summed on
// the host in block order (deterministic for a given chunking).
template <int R, int TY, int NG, int BY, int MINB, bool RS>
int launch_ng(Geo g, long long nzo, const float *F, const float *M, const uint8_t *mask, float *gM, float *gF,
              LossSink loss, cudaStream_t st) {
  using L = Lay<R, TY, NG, BY>;
  auto kern = lncc_kernel<R, TY, NG, BY, MINB, RS>;
  cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)L::SMEM);
  if (e) return (int)e;
  const unsigned gx = (unsigned)((g.nx + TX - 1) / TX), gy = (unsigned)((g.ny + TY - 1) / TY);
  g.zchunk = zchunk_by_waves(nzo, (long long)gx * gy, resident_blocks(kern, L::NT, L::SMEM), 4 * R + 2);
  if (const char *ze = getenv("FFDP_LNCC_ZCHUNK")) {  // the bench's A/B: "old" (four blocks per SM) or a length
    if (!strcmp(ze, "old")) {
      g.zchunk = (int)(nzo < 64 ? nzo : 64);
      while (g.zchunk > 16 && (long long)gx * gy * ((nzo + g.zchunk - 1) / g.zchunk) < 4 * 132) g.zchunk /= 2;
    } else if (atoi(ze) > 0) {
      g.zchunk = atoi(ze) < nzo ? atoi(ze) : (int)nzo;
    }
  }
  const dim3 grid(gx, gy, (unsigned)((nzo + g.zchunk - 1) / g.zchunk));
  const int nb = (int)(grid.x * grid.y * grid.z);
  return sum_block_partials(nb, st, loss,
                            [&](double *part) { kern<<<grid, L::NT, L::SMEM, st>>>(g, F, M, mask, gM, gF, part); });
}

template <int R, int TY, int BY, int MINB, bool RS = false>
int launch(const Geo &g, long long nzo, const float *F, const float *M, const uint8_t *mask, float *gM, float *gF,
           LossSink loss, cudaStream_t st) {
  return gF ? launch_ng<R, TY, 5, BY, MINB, RS>(g, nzo, F, M, mask, gM, gF, loss, st)
            : launch_ng<R, TY, 3, BY, MINB, RS>(g, nzo, F, M, mask, gM, nullptr, loss, st);
}

}  // namespace

namespace {

int lncc2(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M, const uint8_t *mask, double norm,
          float *gF, float *gM, LossSink loss, void *stream) {
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
  /* tile per radius: about 512 threads (one output column each, TX x TY), y-filter tasks of
   * two moment rows (four rows left half the warps idle at the barrier: 0.65 vs 0.61 ms at
   * 256^3, r = 2); r = 4 takes 8-row tiles (its register rings: 240 registers per thread).
   * Measured alternatives (H100, bench/gpu/NOTES.md, session 9): r = 2 with 8-row tiles and
   * two blocks per SM 0.88 ms, with four-row tasks 0.65 ms. Box windows of radius 3 and 4 take
   * the fixed-point running sums (no raw rings) and 16-row tiles: H200 256^3, k = 9 2.82 -> 1.39
   * ms, N GPU ranks byte-identical to one process (bench/gpu/NOTES.md run 91); FFDP_LNCC_RS=0
   * keeps the rings (the comparison the bench makes). The sums assume |values| <= ~900: the
   * pipeline hands this operator images scaled to [0, 1]. At r = 2 the sums lose to the rings
   * (0.80 vs 0.61 ms at 256^3, run 92). */
  const char *rse = getenv("FFDP_LNCC_RS");
  const bool rs = p->kind == FFDP_WINDOW_BOX && r >= 3 && !(rse && !strcmp(rse, "0"));
  const long long nzo = s->z1 - s->z0;
  if (nzo <= 0) {  // no owned planes: a zero loss, nothing in flight
    if (loss.sum) *loss.sum = 0;
    if (loss.pend) loss.pend->nb = 0;
    return 0;
  }
  // box windows (k = 3 .. 9) take lncc_box.cu's leaner kernel (H100 256^3, k = 5: 0.479 -> 0.380
  // ms); "march" keeps this file's kernel for them (the bench's A/B), and with it the tiles
  // and running sums below
  const char *ke = getenv("FFDP_LNCC_KERNEL");
  if (p->kind == FFDP_WINDOW_BOX && !(ke && !strcmp(ke, "march"))) {
    const LnccBoxGeo bg = {(int)s->nx, (int)s->ny, (int)s->nz, s->zlo, s->z0, s->z1, (float)p->eps, (float)norm};
    const int rc = lncc_box_launch(p->window, bg, F, M, mask, gM, gF, loss, st);
    if (rc != -1) return rc;
  }
  Geo g = {(int)s->nx, (int)s->ny, (int)s->nz, s->zlo, s->z0, s->z1, 0, (float)p->eps, (float)norm, {0}};
  for (int d = 0; d < p->window; d++) g.w[d] = w[d];
  switch (r) {
  case 1: return launch<1, 14, 2, 1>(g, nzo, F, M, mask, gM, gF, loss, st);
  case 2: return launch<2, 16, 2, 1>(g, nzo, F, M, mask, gM, gF, loss, st);
  case 3: return rs ? launch<3, 16, 2, 1, true>(g, nzo, F, M, mask, gM, gF, loss, st)
                    : launch<3, 14, 2, 1>(g, nzo, F, M, mask, gM, gF, loss, st);
  default: return rs ? launch<4, 16, 2, 1, true>(g, nzo, F, M, mask, gM, gF, loss, st)
                     : launch<4, 8, 4, 1>(g, nzo, F, M, mask, gM, gF, loss, st);
  }
}

}  // namespace

extern "C" int ffdp_cuda_lncc2(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M,
                               const uint8_t *mask, double norm, float *gF, float *gM, double *loss, void *stream) {
  return lncc2(p, s, F, M, mask, norm, gF, gM, LossSink{loss, nullptr}, stream);
}

extern "C" int ffdp_cuda_lncc2_async(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M,
                                     const uint8_t *mask, double norm, float *gF, float *gM, ffdp_cuda_pending *pend,
                                     void *stream) {
  return lncc2(p, s, F, M, mask, norm, gF, gM, LossSink{nullptr, pend}, stream);
}

extern "C" int ffdp_cuda_lncc(const ffdp_lncc_params *p, const ffdp_slab *s, const float *F, const float *M,
                              const uint8_t *mask, double norm, float *gM, double *loss, void *stream) {
  return ffdp_cuda_lncc2(p, s, F, M, mask, norm, nullptr, gM, loss, stream);
}

extern "C" int ffdp_cuda_pending_create(ffdp_cuda_pending **p) {
  *p = (ffdp_cuda_pending *)calloc(1, sizeof(ffdp_cuda_pending));
  if (!*p) return (int)cudaErrorMemoryAllocation;
  const cudaError_t e = cudaEventCreateWithFlags(&(*p)->copied, cudaEventDisableTiming);
  if (e) free(*p), *p = nullptr;
  return (int)e;
}

extern "C" int ffdp_cuda_pending_finish(ffdp_cuda_pending *p, double *sum) {
  *sum = 0;
  if (!p->nb) return 0;
  const int rc = (int)cudaEventSynchronize(p->copied);
  if (!rc) *sum = sum_in_block_order(p->host, p->nb);
  p->nb = 0;
  return rc;
}

extern "C" void ffdp_cuda_pending_destroy(ffdp_cuda_pending *p) {
  if (!p) return;
  cudaEventDestroy(p->copied);
  cudaFree(p->dev), cudaFreeHost(p->host);
  free(p);
}
