// Box-window LNCC, forward and backward in one pass (lncc_impl.h's math): the pipeline's
// windows (k = 3 .. 9; 9 is ANTs' radius 4). Same march as lncc.cu's kernel (a block owns a 32 x TY column
// tile and a z-range; a raw F and M ring of K planes for the z sums — in shared memory, each
// thread its own columns —, x and y sums through shared memory, the G's summed back in x, y and
// a register ring in z; two barriers a plane), written
// for fewer instructions a voxel, which is what bounds that kernel (ncu: ~600 warp instructions
// a voxel-warp, 40 % of them address and control work; half the issue slots empty):
//  - box sums need no weights: every pass adds, 1/K^3 is applied once to the moments and
//    folded into the G's scale; x and y sums share the common part of neighbouring windows
//    (two outputs from K + 1 values in K adds) instead of K multiply-adds each;
//  - the x sums are (row, quad, channel) units spread over all threads, their shared-memory
//    offsets computed once before the march; only a last partial round has a branch;
//  - every global address is a 32-bit offset from the block's first plane (the launch keeps a
//    chunk and its apron under 2^31 values);
//  - the reciprocal is one MUFU instruction; per-row image tests zero a scale, not a branch.
// H100, 256^3 (bench/gpu/NOTES.md runs 129-132), against lncc.cu's kernel: k = 5 0.479 -> 0.380
// ms with gM (406 -> 358 warp instructions a voxel-warp), 0.530 -> 0.424 with both gradients;
// k = 9 1.073 -> 0.705 and 1.231 -> 0.805 (its raw ring in shared memory; k = 3 and 5 kept theirs
// in registers until taller tiles at 80 registers made the shared ring pay: see the tile shapes).
// Every sum has a fixed order given the tile layout (x, y) and the window and the parity of its
// plane (z), so a plane's values do not depend on where its z-chunk or its rank's slab starts:
// N ranks still give one process's bits.
#include "ops/cuda_common.cuh"
#include "ops/lncc_box.cuh"
#include "ops/lncc_tiles.cuh"
#include <stdlib.h>

// Tile rows by window (block threads 32 x TY; G: with both gradients) and the blocks an SM the
// register bound is set for; -D switches for the bench's A/B builds. The kernel is latency-bound
// (run 131: half the issue slots empty at 4 warps a scheduler), so with the raw ring in shared
// memory the taller tiles' 80 registers buy 24 warps an SM and a smaller apron share. H100 256^3
// (bench/gpu/NOTES.md runs 158-159), ms, gM / both gradients, against 32 x 16 with register
// rings: k = 5 32 x 24 0.363 -> 0.331-0.337 / 0.409 -> 0.396-0.403 (32 x 32 at 64 registers
// 0.330 / 0.434, 32 x 20 0.417 / 0.472, two blocks of 32 x 12 0.391 / 0.481); k = 3, two
// blocks an SM, 0.341-0.348 -> 32 x 16 0.271 / 32 x 12 0.310-0.314; k = 7 and 9 keep 32 x 16
// (32 x 20 at 96 registers was slower: k = 9 both 0.771 -> 0.973).
#ifndef FFDP_LNCC_TY3
#define FFDP_LNCC_TY3 16
#endif
#ifndef FFDP_LNCC_TY3G
#define FFDP_LNCC_TY3G 12
#endif
#ifndef FFDP_LNCC_MINB3
#define FFDP_LNCC_MINB3 2
#endif
#ifndef FFDP_LNCC_TY5
#define FFDP_LNCC_TY5 24
#endif
#ifndef FFDP_LNCC_TY5G
#define FFDP_LNCC_TY5G FFDP_LNCC_TY5
#endif
#ifndef FFDP_LNCC_MINB5
#define FFDP_LNCC_MINB5 1
#endif
// z sums in pairs (an even plane's window and the next odd plane's from their K - 1 common
// planes: half the shared loads and ~40 % of the adds of the z sums, 10 registers a thread more)
// where that does not spill: k = 7 and 9, and k = 5 without the second gradient. H100 256^3
// (run 161), ms: k = 5 gM 0.333-0.335 -> 0.323, k = 7 0.549 -> 0.518 / 0.615-0.619 -> 0.606-0.608,
// k = 9 0.675-0.678 -> 0.646 / 0.772 -> 0.715-0.716; where it spills it cost (k = 5 both
// 0.396-0.398 -> 0.429, 44 bytes; k = 3 0.276 -> 0.288-0.291, 20 bytes). -1: by window, 0: none,
// 1: every instance (the bench's A/B).
#ifndef FFDP_LNCC_ZPAIR
#define FFDP_LNCC_ZPAIR -1
#endif
#ifndef FFDP_LNCC_TY79
#define FFDP_LNCC_TY79 16
#endif

namespace ffdp_cuda {
namespace {

constexpr int BX = 32;  // tile width: one warp along x

template <int R, int TY, int NG, int BY>
struct BoxTile {
  static constexpr int K = 2 * R + 1, NT = BX * TY;
  static constexpr int IW = BX + 4 * R, IH = TY + 4 * R;  // input columns (z sums of the products)
  static constexpr int MW = BX + 2 * R, MH = TY + 2 * R;  // moment and G region
  static constexpr int MWP = (MW + 3) / 4 * 4;            // x sums come in fours
  static constexpr int SPAN = (4 + 2 * R + 3) / 4 * 4;    // floats a four-output x sum reads
  static constexpr int IWP = MWP - 4 + SPAN;
  static constexpr int C = (IW * IH + NT - 1) / NT;  // input columns a thread
  static constexpr int Q2 = MWP / 4, U2 = 5 * IH * Q2, N2 = (U2 + NT - 1) / NT;  // x-sum units of the products
  static constexpr int Q4 = BX / 4, U4 = NG * MH * Q4, N4 = (U4 + NT - 1) / NT;  // and of the G's
  static constexpr int G3 = MH / BY, T3 = MW * G3;                               // y-sum tasks
  static constexpr int ZP = 5 * IH * IWP, XF = 5 * IH * MWP, GP = NG * MH * MWP, GX = NG * MH * BX;
  // the raw F, M ring of the input columns in shared memory (K slots of IW x IH float2); each
  // thread touches only its own columns, so the ring needs no barrier
  static constexpr int NCOL = IW * IH, RR = 2 * K * NCOL;
  static constexpr size_t SMEM = (size_t)(ZP + XF + GP + GX + RR) * sizeof(float);
  static_assert(MH % BY == 0 && T3 <= NT && IWP >= IW && BY % 2 == 0, "tile shape");
};

// Four consecutive box sums of K = 2R + 1 taps from SPAN floats at a 16-byte aligned address:
// outputs 0 and 1 share taps 1 .. K-1, outputs 2 and 3 share taps 3 .. K+1.
template <int R, int SPAN>
__device__ __forceinline__ float4 box4(const float *src) {
  constexpr int K = 2 * R + 1;
  float v[SPAN];
#pragma unroll
  for (int k = 0; k < SPAN; k += 4) {
    const float4 t = *reinterpret_cast<const float4 *>(src + k);
    v[k] = t.x, v[k + 1] = t.y, v[k + 2] = t.z, v[k + 3] = t.w;
  }
  float a = v[1], b = v[3];
#pragma unroll
  for (int d = 2; d < K; d++) a += v[d], b += v[d + 2];
  return make_float4(v[0] + a, a + v[K], v[2] + b, b + v[K + 2]);
}

// Unit u of the products' x sums: channel-major, each channel's tasks in quad_task's order.
template <class L>
__device__ __forceinline__ void unit2(int u, int &src, int &dst) {
  constexpr int PQ = L::IH * L::Q2;
  const int q = u / PQ;
  int j, k;
  quad_task<L::IH, L::Q2>(u - q * PQ, j, k);
  src = q * L::IH * L::IWP + j * L::IWP + k;
  dst = q * L::IH * L::MWP + j * L::MWP + k;
}

// 1/x to about 1 ulp in one MUFU instruction (x >= eps > 0 here: no denormal or zero handling)
__device__ __forceinline__ float rcp_approx(float x) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}

template <int R, int TY, int NG, int BY>
__global__ void __launch_bounds__(BX *TY, R == 1 ? FFDP_LNCC_MINB3 : R == 2 ? FFDP_LNCC_MINB5 : 1)
    lncc_box_kernel(LnccBoxGeo g, int zchunk, const float *__restrict__ F, const float *__restrict__ M,
                    const uint8_t *__restrict__ mask, float *__restrict__ gM, float *__restrict__ gF, double *partial) {
  using L = BoxTile<R, TY, NG, BY>;
  constexpr int K = L::K, NT = L::NT, C = L::C;
  constexpr float WN = 1.f / (float)(K * K * K);  // the box weight, applied once
  extern __shared__ float4 smem4[];
  float *const zp = reinterpret_cast<float *>(smem4), *const xf = zp + L::ZP, *const gp = xf + L::XF,
               *const gx = gp + L::GP;
  const int tid = threadIdx.x;
  const int x0 = blockIdx.x * BX, y0 = blockIdx.y * TY;
  // plane indices relative to the first stored plane, in 32 bits (64-bit compares and
  // products cost two or more instructions each, and the march has many)
  const int za = (int)(g.z0 - g.zlo) + (int)blockIdx.z * zchunk, z1 = (int)(g.z1 - g.zlo);
  const int zb = za + zchunk < z1 ? za + zchunk : z1, tlo = (int)-g.zlo, thi = (int)(g.nz - g.zlo);
  const int P = g.nx * g.ny;
  const bool grad = gM != nullptr;
  // every address of the march is a 32-bit offset from the block's first plane (the launch
  // keeps (chunk + apron) planes under 2^31 values), one wide multiply-add a load instead of
  // 64-bit index arithmetic
  const int bz = za - 2 * R;
  const long long bzP = (long long)bz * P;
  const float *Fb = F + bzP, *Mb = M + bzP;
  // opaque image bases: otherwise the compiler folds F + bzP back into a 64-bit index that it
  // re-extends, shifts and adds to F for every load (six instructions a load instead of one)
  asm("" : "+l"(Fb));
  asm("" : "+l"(Mb));
  float *gMb = grad ? gM + bzP : nullptr, *gFb = gF ? gF + bzP : nullptr;
  asm("" : "+l"(gMb));  // likewise (one store a step; measured only as part of run 135's kernel)
  asm("" : "+l"(gFb));
  const uint8_t *const mb = mask ? mask + bzP : nullptr;
  // S1: this thread's input columns; off = in-plane offset, -1 outside the image, -2 none
  int off[C], zo[C];
#pragma unroll
  for (int c = 0; c < C; c++) {
    const int e = tid + c * NT, i = e % L::IW, j = e / L::IW, x = x0 - 2 * R + i, y = y0 - 2 * R + j;
    off[c] = e >= L::IW * L::IH ? -2 : x >= 0 && x < g.nx && y >= 0 && y < g.ny ? y * g.nx + x : -1;
    zo[c] = j * L::IWP + i;
  }
  // S2 and S4 units, offsets fixed for the whole march (-1: none); S4 from the last thread down
  int s2s[L::N2], s2d[L::N2], s4s[L::N4], s4d[L::N4];
#pragma unroll
  for (int it = 0; it < L::N2; it++) {
    const int u = tid + it * NT;
    s2s[it] = s2d[it] = -1;
    if (u < L::U2) unit2<L>(u, s2s[it], s2d[it]);
  }
#pragma unroll
  for (int it = 0; it < L::N4; it++) {
    const int u = NT - 1 - tid + it * NT, q = u / (L::MH * L::Q4), t = u - q * (L::MH * L::Q4), j = t / L::Q4,
              k = 4 * (t % L::Q4);
    s4s[it] = u < L::U4 ? q * L::MH * L::MWP + j * L::MWP + k : -1;
    s4d[it] = q * L::MH * BX + j * BX + k;
  }
  // nf, nm: the next plane's F and M of each column, loaded a step before they enter the ring
  float nf[C], nm[C], rb[NG][K];
  // pairs of z windows: an even plane's window sum and the next odd plane's share their K - 1
  // planes (pc), paired by the absolute plane parity so that no chunk or slab start moves a sum
  constexpr bool PAIRS = FFDP_LNCC_ZPAIR >= 0 ? FFDP_LNCC_ZPAIR == 1 : R >= 3 || (R == 2 && NG == 3);
  float pc[C][5] = {};
  const int zpar = (int)(g.zlo & 1);
  float2 *const rr = reinterpret_cast<float2 *>(gx + L::GX) + tid;  // slot k, column c at rr[k NCOL + c NT]
#pragma unroll
  for (int c = 0; c < C; c++) {
    nf[c] = nm[c] = 0.f;
#pragma unroll
    for (int d = 0; d < K; d++)
      if (tid + c * NT < L::NCOL) rr[d * L::NCOL + c * NT] = make_float2(0.f, 0.f);
  }
  // plane s - a of column c: ring slot (ph - a) mod K (compile-time after unrolling)
  auto ring = [&](int c, int k) -> float2 { return rr[k * L::NCOL + c * NT]; };
#pragma unroll
  for (int q = 0; q < NG; q++)
#pragma unroll
    for (int d = 0; d < K; d++) rb[q][d] = 0.f;
  // S3 task: moment column i3, rows BY jq3 .. BY jq3 + BY - 1, on the last threads (they hold
  // fewer input columns)
  const int t3 = NT - 1 - tid;
  int i3, jq3;
  column_task<L::MW, L::G3>(t3, i3, jq3);
  const bool has3 = t3 < L::T3;
  const int mx3 = x0 - R + i3, xo3 = BY * jq3 * L::MWP + i3;
  const bool cin3 = mx3 >= 0 && mx3 < g.nx, ccol3 = i3 >= R && i3 < R + BX;
  const int oi = tid % BX, oj = tid / BX, ox = x0 + oi, oy = y0 + oj;
  const bool ocol = ox < g.nx && oy < g.ny;
  const int s_raw_end = zb + 2 * R, sbeg = za - 2 * R, send = zb + 2 * R + (grad ? 2 : 1);
  double acc = 0.0;
  if (sbeg >= tlo && sbeg < thi)  // plane sbeg into nf, nm (offsets from bz = sbeg)
#pragma unroll
    for (int c = 0; c < C; c++)
      if (off[c] >= 0) nf[c] = __ldg(Fb + off[c]), nm[c] = __ldg(Mb + off[c]);

  for (int s0 = sbeg; s0 < send; s0 += K) {
#pragma unroll
    for (int ph = 0; ph < K; ph++) {
      const int s = s0 + ph;
      if (s >= send) break;  // uniform over the block
      // ---------------- phase X
      // S5's loads first: output plane o = s - 2 - 2R
      const int q5 = s - 2 - R, o = q5 - R;
      const bool s5 = grad && q5 >= za - R && q5 < zb + R, out = s5 && ocol && o >= za && o < zb;
      const int ko = (o - bz) * P + (oy * g.nx + ox);
      const float fo = out ? __ldg(Fb + ko) : 0.f, mo = out ? __ldg(Mb + ko) : 0.f;
      // S1: z sums of the products of plane s - R into zp (plane s goes from nf, nm into ring
      // slot ph now), then plane s + 1 into nf, nm (its slot ph + 1 holds plane s + 1 - K, which
      // has just been used for the last time)
      if (s < s_raw_end) {
#pragma unroll
        for (int c = 0; c < C; c++) {
          if (c == C - 1 && off[c] == -2) continue;  // only the last column can be missing
          const float f0 = nf[c], m0 = nm[c];
          rr[ph * L::NCOL + c * NT] = make_float2(f0, m0);
          float a0, a1, a2, a3, a4;
          if (PAIRS && ((s + zpar) & 1) == 0) {  // even plane: its K - 1 newest planes, kept for the next
            float p0 = f0, p1 = m0, p2 = f0 * f0, p3 = m0 * m0, p4 = f0 * m0;
#pragma unroll
            for (int a = 1; a < K - 1; a++) {
              const float2 v = ring(c, (ph - a + K) % K);
              p0 += v.x, p1 += v.y, p2 = fmaf(v.x, v.x, p2), p3 = fmaf(v.y, v.y, p3), p4 = fmaf(v.x, v.y, p4);
            }
            pc[c][0] = p0, pc[c][1] = p1, pc[c][2] = p2, pc[c][3] = p3, pc[c][4] = p4;
            const float2 v = ring(c, (ph + 1) % K);  // plane s - K + 1
            a0 = p0 + v.x, a1 = p1 + v.y, a2 = fmaf(v.x, v.x, p2), a3 = fmaf(v.y, v.y, p3), a4 = fmaf(v.x, v.y, p4);
          } else if (PAIRS) {  // odd plane: the previous plane's K - 1 newest and this one
            a0 = pc[c][0] + f0, a1 = pc[c][1] + m0, a2 = fmaf(f0, f0, pc[c][2]), a3 = fmaf(m0, m0, pc[c][3]),
            a4 = fmaf(f0, m0, pc[c][4]);
          } else {
            a0 = f0, a1 = m0, a2 = f0 * f0, a3 = m0 * m0, a4 = f0 * m0;
#pragma unroll
            for (int a = 1; a < K; a++) {
              const float2 v = ring(c, (ph - a + K) % K);
              a0 += v.x, a1 += v.y, a2 = fmaf(v.x, v.x, a2), a3 = fmaf(v.y, v.y, a3), a4 = fmaf(v.x, v.y, a4);
            }
          }
          float *z = zp + zo[c];
          z[0] = a0, z[L::IH * L::IWP] = a1, z[2 * L::IH * L::IWP] = a2, z[3 * L::IH * L::IWP] = a3,
          z[4 * L::IH * L::IWP] = a4;
        }
        if (s + 1 < s_raw_end) {
          const int t = s + 1, tb = (t - bz) * P;
          const bool tin = t >= tlo && t < thi;
#pragma unroll
          for (int c = 0; c < C; c++) {
            const bool ok = tin && off[c] >= 0;
            nf[c] = ok ? __ldg(Fb + (tb + off[c])) : 0.f, nm[c] = ok ? __ldg(Mb + (tb + off[c])) : 0.f;
          }
        }
      }
      // S3: y sums of xf: the moments of plane p = s - 1 - R, then cc and the G's
      const int p = s - 1 - R;
      const bool s3 = p >= za - R && p < zb + R;
      if (s3 && has3) {
        float m[5][BY];
#pragma unroll
        for (int q = 0; q < 5; q++) {
          float v[BY + 2 * R];
#pragma unroll
          for (int d = 0; d < BY + 2 * R; d++) v[d] = xf[q * L::IH * L::MWP + xo3 + d * L::MWP];
#pragma unroll
          for (int r = 0; r < BY; r += 2) {  // rows r and r + 1 share taps r + 1 .. r + K - 1
            float a = v[r + 1];
#pragma unroll
            for (int d = 2; d < K; d++) a += v[r + d];
            m[q][r] = (v[r] + a) * WN, m[q][r + 1] = (a + v[r + K]) * WN;
          }
        }
        const bool pin = p >= tlo && p < thi && cin3, own = p >= za && p < zb && ccol3;
        float ccs = 0.f;
#pragma unroll
        for (int r = 0; r < BY; r++) {
          // outside the image the scale is zero, which zeroes the G's (every term is finite:
          // eps > 0), instead of a branch a row
          const int jr = BY * jq3 + r, my = y0 - R + jr;
          const bool in = pin && my >= 0 && my < g.ny;
          const float cov = fmaf(-m[0][r], m[1][r], m[4][r]), vF0 = fmaf(-m[0][r], m[0][r], m[2][r]),
                      vM0 = fmaf(-m[1][r], m[1][r], m[3][r]);
          const bool vMpos = vM0 > 0.f, vFpos = vF0 > 0.f;
          const float vF = vFpos ? vF0 : 0.f, vM = vMpos ? vM0 : 0.f;
          const float inv = rcp_approx(fmaf(vF, vM, g.eps)), cc = cov * cov * inv;
          const float wk = !in ? 0.f : mb ? (float)(mb[(p - bz) * P + (my * g.nx + mx3)] != 0) : 1.f;
          if (own && jr >= R && jr < R + TY) ccs = fmaf(wk, cc, ccs);
          // the G filter's 1/K^3 folded into the scale (the G's are linear in it)
          const float s_ = g.norm * WN * wk, dcov = -2.f * s_ * cov * inv, c2 = s_ * cc * inv;
          const float dvM = vMpos ? c2 * vF : 0.f;
          if (grad) {
            float *gq = gp + jr * L::MWP + i3;
            gq[0] = fmaf(-dcov, m[0][r], -2.f * dvM * m[1][r]), gq[L::MH * L::MWP] = dvM, gq[2 * L::MH * L::MWP] = dcov;
            if (NG == 5) {
              const float dvF = vFpos ? c2 * vM : 0.f;
              gq[3 * L::MH * L::MWP] = fmaf(-dcov, m[1][r], -2.f * dvF * m[0][r]), gq[4 * L::MH * L::MWP] = dvF;
            }
          }
        }
        acc -= (double)ccs;
      }
      // S5: y sums of the x-summed G's of plane q5 into the ring; the z sum gives plane o
      if (s5) {
#pragma unroll
        for (int q = 0; q < NG; q++) {
          const float *gq = gx + q * L::MH * BX + oj * BX + oi;
          float sum = gq[0];
#pragma unroll
          for (int d = 1; d < K; d++) sum += gq[d * BX];
          rb[q][ph] = sum;
        }
        if (out) {
          float zs[NG];
#pragma unroll
          for (int q = 0; q < NG; q++) {
            float sum = rb[q][ph];
#pragma unroll
            for (int a = 1; a < K; a++) sum += rb[q][(ph - a + K) % K];
            zs[q] = sum;
          }
          gMb[ko] = fmaf(fo, zs[2], fmaf(2.f * mo, zs[1], zs[0]));  // gM = w*G2 + 2 M (w*G4) + F (w*G5)
          if (NG == 5) gFb[ko] = fmaf(mo, zs[2], fmaf(2.f * fo, zs[4], zs[3]));
        }
      }
      __syncthreads();
      // ---------------- phase Y
      // S2: x sums of the z-summed products of plane s - R
      if (s >= za && s < s_raw_end) {
#pragma unroll
        for (int it = 0; it < L::N2; it++)
          if ((it + 1) * NT <= L::U2 || s2s[it] >= 0)  // only the last round has missing units
            *reinterpret_cast<float4 *>(xf + s2d[it]) = box4<R, L::SPAN>(zp + s2s[it]);
      }
      // S4: x sums of the G's of plane p
      if (grad && s3) {
#pragma unroll
        for (int it = 0; it < L::N4; it++)
          if ((it + 1) * NT <= L::U4 || s4s[it] >= 0) *reinterpret_cast<float4 *>(gx + s4d[it]) = box4<R, L::SPAN>(gp + s4s[it]);
      }
      __syncthreads();
    }
  }
  const double bs = block_sum(acc);
  if (threadIdx.x == 0) partial[((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x] = bs * g.norm;
}

template <int R, int TY, int NG, int BY>
int launch_box(const LnccBoxGeo &g, const float *F, const float *M, const uint8_t *mask, float *gM, float *gF,
               LossSink loss, cudaStream_t st) {
  using L = BoxTile<R, TY, NG, BY>;
  auto kern = lncc_box_kernel<R, TY, NG, BY>;
  // the tiles are sized for Hopper's 227 KB a block (k = 5 with both gradients: 138 KB); a GPU
  // that refuses the tile's shared memory takes lncc.cu's kernel (-1) instead of failing
  if (cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)L::SMEM) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  const long long nzo = g.z1 - g.z0;
  const unsigned gxn = (unsigned)((g.nx + BX - 1) / BX), gyn = (unsigned)((g.ny + TY - 1) / TY);
  int zchunk = zchunk_by_waves(nzo, (long long)gxn * gyn, resident_blocks(kern, L::NT, L::SMEM), 4 * R + 2);
  if (const char *ze = getenv("FFDP_LNCC_ZCHUNK"))  // the bench's A/B of the chunking
    if (atoi(ze) > 0) zchunk = atoi(ze) < nzo ? atoi(ze) : (int)nzo;
  // the kernel's 32-bit offsets span a chunk and its apron
  const long long P = (long long)g.nx * g.ny, cap = 2147483647LL / P - (4 * R + 3);
  if (cap < 1) return -1;
  if (zchunk > cap) zchunk = (int)cap;
  const dim3 grid(gxn, gyn, (unsigned)((nzo + zchunk - 1) / zchunk));
  const int nb = (int)(grid.x * grid.y * grid.z);
  return sum_block_partials(nb, st, loss,
                            [&](double *part) { kern<<<grid, L::NT, L::SMEM, st>>>(g, zchunk, F, M, mask, gM, gF, part); });
}

template <int R, int TY, int TYG, int BY>
int launch_ng(const LnccBoxGeo &g, const float *F, const float *M, const uint8_t *mask, float *gM, float *gF,
              LossSink loss, cudaStream_t st) {
  return gF ? launch_box<R, TYG, 5, BY>(g, F, M, mask, gM, gF, loss, st)
            : launch_box<R, TY, 3, BY>(g, F, M, mask, gM, nullptr, loss, st);
}

}  // namespace

int lncc_box_launch(int window, const LnccBoxGeo &g, const float *F, const float *M, const uint8_t *mask, float *gM,
                    float *gF, LossSink loss, cudaStream_t st) {
  switch (window) {
  case 3: return launch_ng<1, FFDP_LNCC_TY3, FFDP_LNCC_TY3G, 2>(g, F, M, mask, gM, gF, loss, st);
  case 5: return launch_ng<2, FFDP_LNCC_TY5, FFDP_LNCC_TY5G, 2>(g, F, M, mask, gM, gF, loss, st);
  case 7: return launch_ng<3, FFDP_LNCC_TY79, FFDP_LNCC_TY79, 2>(g, F, M, mask, gM, gF, loss, st);
  case 9: return launch_ng<4, FFDP_LNCC_TY79, FFDP_LNCC_TY79, 2>(g, F, M, mask, gM, gF, loss, st);
  default: return -1;
  }
}

}  // namespace ffdp_cuda
