// CUDA Gaussian blur of a 3-vector field for planes wide enough to fill the GPU (and of scalar
// images, radii 1-5, by the same one pass: blur_split1): out of place,
// one pass with y-blocked rows and z register rings (blur_xyz3, radii 1-5, below); otherwise
// (in place through a ring, radii 6-16) two passes with one thread per value
// of a plane: an xy pass (in -> out, every plane the z taps read) and a z pass that marches each
// value's column along z in place on out.
//
// Why two passes beat the one-pass kernel of blur.cu although they move 48 instead of 24 bytes
// per voxel: the one-pass kernel keeps a z ring per column in registers, so it runs one or two
// 512-thread blocks per SM with two barriers per plane and is bound by issue and shared-memory
// latency (21 % of copy bandwidth at 256^3 on an H200). Here the xy pass has no ring (several
// blocks per SM, each plane independent) and the z pass no apron (a private register ring of
// one component, loads issued D planes ahead, coalesced). Radii up to 16 (sigma 5.3) fit, where
// the one-pass kernel stops at 8 and the three-pass fallback reads and writes the field thrice.
//
// The arithmetic is the one-pass kernel's, tap for tap (x, then y, then z, each a sum from
// tap 0 up, zero padding as the CPU operator), so either path gives the same bits and the
// choice between them (by plane size alone, the same on every rank) changes no result.
//
// In place along z: a column belongs to one thread, which reads its planes R + D ahead of the
// plane it writes. When the owned planes are split into z-chunks (to have enough threads), a
// chunk also reads R planes on either side that neighbouring chunks overwrite, so those
// boundary zones are copied into `side` (the caller's scratch) before the z pass.
//
// In place (blur_split3_ring), radii 1-5 on volumes that fill the GPU: the one-pass kernel
// itself, writing the field it reads, its blocks kept in step by counters (InPlaceGeo below;
// H100 256^3 0.445 -> 0.26 ms through the default ring, NOTES runs 153-156). Otherwise, and where
// its grid would not be resident:
// in place through a ring: the xy pass writes its planes into a ring of Q
// planes instead of a second field, and the z pass reads the ring and writes the field. The
// owned planes go in chunks of Q - 2R: the xy planes of a chunk (and the R after it) are made
// before its z pass overwrites the field there, and a plane of the field is read by the xy
// pass only, before any chunk writes it. So the deformable step needs no scratch field for
// its smoothing, only Q planes; a chunk's ring, made just before it is read, can stay in L2.
#include "ops/blur_split.h"
#include "ops/cuda_common.cuh"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

using namespace ffdp_cuda;

namespace {

constexpr int XTX = 32, XTY = 32, XNT = 3 * XTX * 4;  // tile of 32 x 32 voxels, 384 threads
constexpr int XBY = XTY / 4;                           // rows per thread in the y filter
constexpr int XG = 4;                                  // outputs per item in the x filter
constexpr int XPB = 4;                                  // planes per block
constexpr int ZNT = 384, ZD = 4;                        // z pass: threads per block (whole voxels), prefetch depth

struct XYGeo {
  int nx, ny;
  long long zlo, zfirst, zend;  // planes [zfirst, zend) are filtered (all readable)
  long long oq;                 // > 0: plane t goes to slot (t - zlo) mod oq of a ring
  int xpb;                      // planes per block
  float wx[2 * BLUR_SPLIT_MAXR + 1], wy[2 * BLUR_SPLIT_MAXR + 1];
};

struct ZGeo {
  long long P, zlo, zs0, zs1, z0, z1;  // readable [zs0, zs1), owned [z0, z1)
  int zchunk;
  long long oq;  // > 0: read plane t from slot (t - zlo) mod oq of the ring `side`
  float wz[2 * BLUR_SPLIT_MAXR + 1];
};

// One barrier a plane in the one-pass kernel out of place (blur_xyz3, IP = 0) instead of two: the
// staged rows and the x-filtered rows double-buffered by plane parity, so that a plane's x filter
// needs no barrier before it. The same arithmetic: the same bits. H100 (bench/gpu/NOTES.md run
// 191), ms: 256^3 0.198 -> 0.187 (70 -> 74 % of copy), with the largest norm 0.269 -> 0.244,
// 182x218x182 0.101 -> 0.095. In place keeps two barriers (there the buffers spill). 0: two
// barriers everywhere (the bench's A/B).
#ifndef FFDP_BLUR_1BAR
#define FFDP_BLUR_1BAR 1
#endif

// The xy kernel's shared rows: the staged apron (AW values a row) and the x-filtered rows (XW),
// stored with row strides AS and XS padded to 3 mod 4. The x filter's items run eight lanes per
// (row, component) over every 12th value, i.e. all eight banks of one residue mod 4; with strides
// of 3 mod 4 the four (row, component) pairs of a warp fall in four different residues, where
// unpadded AW = 126 (R = 5) and XW = 96 put two of them in the same banks (2 wavefronts per
// load and store; H100 256³ two-pass 0.380 → 0.371 ms, ring 0.361 → 0.355, run 112).
// TY: the tile's rows (the one-pass kernel below takes 16). NC = 1: scalar images, 96 voxels a
// tile row (the same 96 floats as 32 vectors), whose x items are four consecutive outputs read
// with float4 loads (x_filter_item4): strides a multiple of 4, eight lanes reading 128
// consecutive bytes, so no bank is shared.
template <int R, int TY = XTY, int NC = 3>
struct XyShape {
  static constexpr int TXV = XTX * 3 / NC;  // voxels a tile row
  static constexpr int AW = (TXV + 2 * R) * NC, AH = TY + 2 * R, XW = XTX * 3;
  static constexpr int AS = NC == 3 ? AW + (7 - AW % 4) % 4 : (AW + 3) / 4 * 4, XS = NC == 3 ? XW + (7 - XW % 4) % 4 : XW;
  static constexpr int bytes = (AS + XS) * AH * (int)sizeof(float);
  static_assert(NC == 3 || (NC == 1 && XW - XG + (XG + 2 * R + 3) / 4 * 4 <= AS), "a scalar item's last float4 in the row");
};

// A/B switches, off: one barrier in place too (FFDP_BLUR_1BAR_IP=1) on 12-row tiles of three
// rows a thread for radii >= 3 (FFDP_BLUR_IP_FYT=12), whose 33-value ring leaves ptxas less to
// spill than the 16-row tiles' 44 (radius 5: 8 bytes stored / 96 loaded against 36 / 368). Still
// slower than the two barriers (H100, bench/gpu/NOTES.md run 194: in place 256^3 0.234 -> 0.382
// ms, 182x218x182 0.129 -> 0.159). Off, the PTX is the same as without them.
#ifndef FFDP_BLUR_1BAR_IP
#define FFDP_BLUR_1BAR_IP 0
#endif
#ifndef FFDP_BLUR_IP_FYT
#define FFDP_BLUR_IP_FYT 16
#endif

// Shared memory of the one-pass kernel (blur_xyz3) on shape S: out of place (IP = 0) its staged
// and x-filtered rows double-buffered by plane parity (FFDP_BLUR_1BAR; in place with the switch
// above).
template <class S, int IP>
constexpr int fused_smem() {
  return S::bytes * (FFDP_BLUR_1BAR && (IP == 0 || (IP == 1 && FFDP_BLUR_1BAR_IP)) ? 2 : 1);
}

// The x filter of one item: XG outputs of one (row, component) at a (staged values) -> o, from
// XG + 2R values held in registers.
template <int R>
__device__ __forceinline__ void x_filter_item(const float *a, float *o, const float *wx) {
  float w[XG + 2 * R];
#pragma unroll
  for (int d = 0; d < XG + 2 * R; d++) w[d] = a[d * 3];
#pragma unroll
  for (int q = 0; q < XG; q++) {
    float sum = 0.f;
#pragma unroll
    for (int d = 0; d <= 2 * R; d++) sum += wx[d] * w[q + d];
    o[q * 3] = sum;
  }
}

// x_filter_item with each staged value loaded once and added at once into the XG sums it
// belongs to (each sum still runs from tap 0 up: the same bits), so that XG sums and one value
// are live instead of XG + 2R values: what the one-pass kernel's two-block bound has to hold
// besides its ring.
template <int R>
__device__ __forceinline__ void x_filter_item_stream(const float *a, float *o, const float *wx) {
  float sum[XG];
#pragma unroll
  for (int q = 0; q < XG; q++) sum[q] = 0.f;
#pragma unroll
  for (int d = 0; d < XG + 2 * R; d++) {
    const float w = a[d * 3];
#pragma unroll
    for (int q = 0; q < XG; q++)
      if (d - q >= 0 && d - q <= 2 * R) sum[q] += wx[d - q] * w;
  }
#pragma unroll
  for (int q = 0; q < XG; q++) o[q * 3] = sum[q];
}

// x_filter_item_stream for scalar images (XyShape's NC = 1): XG consecutive outputs from
// float4 loads of the staged row (a and o 16-byte aligned), each sum from tap 0 up as there.
template <int R>
__device__ __forceinline__ void x_filter_item4(const float *a, float *o, const float *wx) {
  constexpr int NV = (XG + 2 * R + 3) / 4 * 4;
  float sum[XG];
#pragma unroll
  for (int q = 0; q < XG; q++) sum[q] = 0.f;
#pragma unroll
  for (int b = 0; b < NV; b += 4) {
    const float4 t = *reinterpret_cast<const float4 *>(a + b);
    const float w4[4] = {t.x, t.y, t.z, t.w};
#pragma unroll
    for (int e = 0; e < 4; e++)
#pragma unroll
      for (int q = 0; q < XG; q++)
        if (b + e - q >= 0 && b + e - q <= 2 * R) sum[q] += wx[b + e - q] * w4[e];
  }
  *reinterpret_cast<float4 *>(o) = make_float4(sum[0], sum[1], sum[2], sum[3]);
}

// Item e of the x filter of a staged apron (S::AH rows of S::AW values): its offsets in the
// staged rows and in the x-filtered rows. Vectors: a (row, component, four outputs); scalars:
// a (row, four outputs).
template <typename S, int NC = 3>
__device__ __forceinline__ void x_item_offsets(int e, int *a, int *o) {
  constexpr int NG = XTX / XG;
  if (NC == 1) {
    const int j = e / (3 * NG), q0 = (e - j * (3 * NG)) * XG;
    *a = j * S::AS + q0;
    *o = j * S::XS + q0;
    return;
  }
  const int j = e / (3 * NG), rem = e - j * (3 * NG), c = rem / NG, q0 = (rem - c * NG) * XG;
  *a = j * S::AS + q0 * 3 + c;
  *o = j * S::XS + q0 * 3 + c;
}

// Bit l: staged value l of a thread (every NRG-th row of an apron column from row ys; sread: the
// column lies in the image) lies in the image.
template <int LR, int NRG>
__device__ __forceinline__ unsigned staged_rows_mask(bool sread, int ys, int ny) {
  unsigned m = 0;
#pragma unroll
  for (int l = 0; l < LR; l++) {
    const int y = ys + l * NRG;
    if (sread && y >= 0 && y < ny) m |= 1u << l;
  }
  return m;
}

// Bit q: output row y + q of a thread's column (kin: the column lies in the image) lies in the image.
template <int NQ>
__device__ __forceinline__ unsigned out_rows_mask(bool kin, int y, int ny) {
  unsigned m = 0;
#pragma unroll
  for (int q = 0; q < NQ; q++)
    if (kin && y + q < ny) m |= 1u << q;
  return m;
}

// One block: a 32 x 32 voxel tile of XPB consecutive planes. The tile and its apron are staged
// in shared memory, filtered along x (four outputs per item) and then along y (eight rows per
// thread from 8 + 2R loads). The next plane's apron is loaded into registers while this one is
// filtered. Staging: each thread owns one column of the apron and every NRG-th row of it, so
// its loads differ only by whole rows and need no per-value offsets kept in registers.
// The index work is done once, not every plane, as in blur_xyz3 (masks, x items, a ring slot
// counter instead of a 64-bit modulo; H100 256^3 in place, ring 32 planes + largest norm: 0.537
// -> 0.484 ms, NOTES run 144).
template <int R>
__global__ void __launch_bounds__(XNT, R <= 5 ? 3 : R <= 8 ? 2 : 1)
    blur_xy3(XYGeo g, const float *__restrict__ in, float *__restrict__ out) {
  using S = XyShape<R>;
  constexpr int AW = S::AW, AH = S::AH, XW = S::XW, AS = S::AS, XS = S::XS;
  constexpr int SC = (AW + 31) / 32 * 32, NRG = XNT / SC, LR = (AH + NRG - 1) / NRG;
  extern __shared__ float xy_smem[];  // more than the 48 KB of static shared memory for R > 8
  float *s_in = xy_smem, *s_x = xy_smem + AS * AH;
  const int tid = threadIdx.x;
  const int x0 = blockIdx.x * XTX, y0 = blockIdx.y * XTY;
  const long long row = (long long)g.nx * 3, plane = row * g.ny;
  const int sk = tid % SC, sr = tid / SC;  // staging column and first row
  const long long gk = (long long)(x0 - R) * 3 + sk;
  const bool scol = sk < AW && sr < NRG, sread = scol && gk >= 0 && gk < row;
  const int ys = y0 - R + sr, off0 = (int)(ys * row + gk), step = (int)(NRG * row);  // in-plane offsets
  const long long zb0 = g.zfirst + (long long)blockIdx.z * g.xpb;
  const long long zb1 = zb0 + g.xpb < g.zend ? zb0 + g.xpb : g.zend;
  float v[LR];
  const unsigned lmask = staged_rows_mask<LR, NRG>(sread, ys, g.ny);
  auto fetch = [&](long long t) {
    const float *q = in + (t - g.zlo) * plane + off0;
#pragma unroll
    for (int l = 0; l < LR; l++, q += step) v[l] = (lmask >> l) & 1u ? __ldg(q) : 0.f;
  };
  // y filter: column k of the tile row (x, c), rows jq*XBY ...
  const int k = tid % XW, jq = tid / XW;
  const bool kin = (long long)x0 * 3 + k < row;
  // this thread's x items and output rows in the image
  constexpr int NXI = AH * 3 * (XTX / XG), NI = (NXI + XNT - 1) / XNT;
  int xa[NI], xo[NI];
#pragma unroll
  for (int i = 0; i < NI; i++) {
    xa[i] = xo[i] = 0;
    if (tid + i * XNT < NXI) x_item_offsets<S>(tid + i * XNT, &xa[i], &xo[i]);
  }
  const unsigned smask = out_rows_mask<XBY>(kin, y0 + jq * XBY, g.ny);
  const long long dofs = (long long)x0 * 3 + k + (long long)(y0 + jq * XBY) * row;
  const int row32 = (int)row;
  long long slot = g.oq ? (zb0 - g.zlo) % g.oq : zb0 - g.zlo;  // of plane t in out
  fetch(zb0);
  for (long long t = zb0; t < zb1; t++) {
#pragma unroll
    for (int l = 0; l < LR; l++)
      if (scol && sr + l * NRG < AH) s_in[(sr + l * NRG) * AS + sk] = v[l];
    __syncthreads();
    if (t + 1 < zb1) fetch(t + 1);
#pragma unroll
    for (int i = 0; i < NI; i++)
      if (i + 1 < NI || tid + i * XNT < NXI) x_filter_item<R>(s_in + xa[i], s_x + xo[i], g.wx);
    __syncthreads();
    float c[XBY + 2 * R];
#pragma unroll
    for (int d = 0; d < XBY + 2 * R; d++) c[d] = s_x[(jq * XBY + d) * XS + k];
    float *dq = out + slot * plane + dofs;
#pragma unroll
    for (int q = 0; q < XBY; q++, dq += row32) {
      float sum = 0.f;
#pragma unroll
      for (int d = 0; d <= 2 * R; d++) sum += g.wy[d] * c[q + d];
      if ((smask >> q) & 1u) *dq = sum;
    }
    slot = slot + 1 == g.oq ? 0 : slot + 1;
    // the next plane's staging writes s_in (last read before the second barrier) and s_x (read
    // just above, before that plane's first barrier)
  }
}

// One thread per value (column and component) of a z-chunk: a ring of K + D planes in registers,
// slots fixed at compile time by unrolling the march by the ring length. A block's ZNT values are
// whole voxels (ZNT is a multiple of 3), so the largest norm is formed from the three components
// through shared memory, with the same norm2 as everywhere else.
// The ring's planes and the outputs by stepped pointers, not a 64-bit index a value and plane;
// three blocks an SM where the ring fits (56 registers).
template <int R>
__global__ void __launch_bounds__(ZNT, R <= 8 ? 3 : 1) blur_z3(ZGeo g, float *out, const float *side, unsigned *maxsq) {
  constexpr int K = 2 * R + 1, KR = K + ZD;
  const long long P3 = 3 * g.P, v = (long long)blockIdx.x * ZNT + threadIdx.x;
  const bool act = v < P3;
  const long long c0 = g.z0 + (long long)blockIdx.y * g.zchunk;
  const long long c1 = c0 + g.zchunk < g.z1 ? c0 + g.zchunk : g.z1;
  float ring[KR], most = 0.f;
  __shared__ float zs[2][ZNT];
  // ring of xy planes (oq > 0): the slot of the next plane loaded, planes coming in order
  long long rq = g.oq ? ((c0 - R - g.zlo) % g.oq + g.oq) % g.oq : 0;
  const float *rp = side + rq * P3 + v;  // plane rq of the ring, this thread's value
  auto load = [&](long long t, int slot) {
    const bool rd = act && t >= g.zs0 && t < g.zs1;
    if (g.oq) {
      ring[slot] = rd ? *rp : 0.f;
      if (++rq == g.oq) rq = 0, rp = side + v;
      else rp += P3;
      return;
    }
    // planes another chunk overwrites come from their copies in side
    const float *src = (t < c0 || t >= c1) && t >= g.z0 && t < g.z1 ? side : out;
    ring[slot] = rd ? src[(t - g.zlo) * P3 + v] : 0.f;
  };
  // slot of plane t: (t - (c0 - R)) mod KR; the ring starts with planes c0 - R .. c0 + R + D - 1
#pragma unroll
  for (int s = 0; s < KR - 1; s++) load(c0 - R + s, s);
  const long long n = c1 - c0;
  float *op = out + (c0 - g.zlo) * P3 + v;  // the output plane o
  for (long long jb = 0; jb < n; jb += KR) {
#pragma unroll
    for (int ph = 0; ph < KR; ph++) {
      const long long j = jb + ph, o = c0 + j;
      if (j >= n) break;
      load(o + R + ZD, (ph + KR - 1) % KR);  // the slot of plane o - R - 1, no longer needed
      float sum = 0.f;
#pragma unroll
      for (int d = 0; d < K; d++) sum += g.wz[d] * ring[(ph + d) % KR];
      if (act) *op = sum;
      op += P3;
      if (maxsq) {  // double-buffered: a plane's values are read before the next plane's barrier
        float *b = zs[j & 1];
        b[threadIdx.x] = act ? sum : 0.f;
        __syncthreads();
        if (threadIdx.x < ZNT / 3) most = fmaxf(most, norm2(b[3 * threadIdx.x], b[3 * threadIdx.x + 1], b[3 * threadIdx.x + 2]));
      }
    }
  }
  if (maxsq) {  // squares are non-negative: their float order is their bits' order
    __shared__ float wmax[ZNT / 32];
    for (int o = 16; o > 0; o >>= 1) most = fmaxf(most, __shfl_down_sync(0xffffffffu, most, o));
    if ((threadIdx.x & 31) == 0) wmax[threadIdx.x >> 5] = most;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int k = 1; k < ZNT / 32; k++) most = fmaxf(most, wmax[k]);
      atomicMax(maxsq, __float_as_uint(most));
    }
  }
}

// One pass with rows blocked in y, out of place (blur_split3's default for radii 1-5, with or
// without the largest norm; FFDP_BLUR_FUSED=off takes the two passes): the xy kernel's staging and x filter on
// a 32 x FYT tile, then each thread y-filters FYB rows of one (x, component) column from FYB + 2R
// loads and keeps them in a register ring of K planes per row for the z taps, marching a
// z-chunk. One read and one write of the field, and (FYB + 2R) / FYB shared loads per y output
// where the one-pass kernel of blur.cu takes 2R + 1. Every sum in the two-pass kernels' order:
// the same bits. H100, vec3 sigma 1.5: 256^3 0.368 -> 0.297 ms (36 -> 45 % of copy), 192^3 0.180
// -> 0.161; 8-row tiles with two rows a thread (80 registers, two blocks per SM) 0.340 / 0.180
// (NOTES run 116). Not for the in-place smoothing: a block's z-chunk would overwrite planes whose
// xy aprons neighbouring tiles have yet to read.
struct FusedGeo {
  int nx, ny;
  long long zlo, zs0, zs1, z0, z1;  // readable [zs0, zs1), owned [z0, z1)
  int zchunk;
  float wx[2 * BLUR_SPLIT_MAXR + 1], wy[2 * BLUR_SPLIT_MAXR + 1], wz[2 * BLUR_SPLIT_MAXR + 1];
};

// The one-pass kernel in place (IP; blur_split3_ring's path where its grid is co-resident): the
// field is read and written through `field` (plain loads, no restrict: other blocks write it
// during the kernel). A block writes output plane p only after its eight xy neighbours have
// staged plane p (each publishes the planes it has read in `done`, one counter a block, with a
// release store every third plane; the writer polls with acquire loads, every third or fourth
// plane when nobody lags). Its register ring holds the xy-filtered planes its z taps need, so
// nothing it reads later is written. Planes of the neighbouring z-chunks come from `side`, copied before the
// kernel (2R planes an inner chunk boundary). The launch is cooperative, so every block is
// resident and a poll always ends.
// Planes of more tiles than the resident slots go in bands of tile rows, one launch each (z in one
// chunk): a band's first tile row reads the R rows above it from `above`, the original values of
// the previous band's last R rows saved before that band ran (R rows a stored plane, plane t at
// above + (t - zlo) R rows); the rows below are still the original field's.
struct InPlaceGeo {
  float *field;
  const float *side;  // boundary b (1 .. nch - 1): planes [b - R, b + R) at side + (b - 1) * 2R planes
  unsigned *done;     // planes staged, per block (blockIdx order), zeroed before the launch
  const float *above; // bands after the first: the saved rows above the band, else null
  int ty0;            // the band's first tile row
};

// A/B switches of the bench builds (NVCCFLAGS): how the counters are stored and read, the most
// planes between two counter stores, and the pause of a poll that found a neighbour behind.
// FFDP_AB_SYNC 1 (default): the one-wave launch (IP 1) stores its counters relaxed every plane
// and polls them relaxed; bands of tile rows (IP 2) and FFDP_AB_SYNC 0 keep release stores every
// third plane and acquire polls (sessions 30-38). Relaxed accesses suffice because the only
// hazard is write-after-read: nobody reads a location of the field after it is written in the
// kernel, and a block overwrites plane p only once its neighbours have staged it. A block stores
// its counter after the barrier that follows its staged values landing in shared memory (its
// loads of those planes have returned their data), and a writer issues its stores after the
// barrier that follows seeing the counter. Release/acquire order the same pair at a price: each
// release waits for the block's output stores in flight. H100 (bench/gpu/NOTES.md runs 186-189),
// in place, ms: 182x218x182 0.134-0.138 -> 0.128-0.130, 256^3 0.247-0.249 -> 0.234-0.237, the
// same bits; but the bands (768x768x64, 1024x1024x48) 0.844-0.857 / 1.114-1.125 -> 0.874-0.881 /
// 1.162-1.176 with relaxed stores every plane or every third, so they keep the old scheme.
// Reading the neighbours' counters a plane ahead (cp.async into shared memory, looked at after
// the x filter) was slower (0.153-0.155 / 0.286-0.298): the extra code spilled at the two-block
// bound.
#ifndef FFDP_AB_SYNC
#define FFDP_AB_SYNC 1
#endif
// the most planes between two counter stores: relaxed / release
#ifndef FFDP_AB_PUB
#define FFDP_AB_PUB 1
#endif
#ifndef FFDP_AB_PUB_RELEASE
#define FFDP_AB_PUB_RELEASE 3
#endif
// Each block's counter on a memory line of its own (CSTRIDE unsigneds apart, from a 128-byte
// boundary): with relaxed stores every plane, counters 4 bytes apart made the in-place blur two
// to three times slower (run 187: 182x218x182 0.133 -> 0.217-0.229 ms); 16, 32 and 128 bytes
// apart ran 0.131, 0.129-0.130 and 0.1285 ms (run 188).
#ifndef FFDP_AB_CSTRIDE
#define FFDP_AB_CSTRIDE 32
#endif
constexpr int CSTRIDE = FFDP_AB_CSTRIDE;
constexpr long long CSLACK = 32;  // floats the 128-byte alignment of the counters may skip
// The counters in the ring's floats from f on, at the first 128-byte boundary.
inline unsigned *counters_at(float *f) {
  return reinterpret_cast<unsigned *>(((uintptr_t)f + 127) & ~(uintptr_t)127);
}
#ifndef FFDP_AB_SLEEP
#define FFDP_AB_SLEEP 64
#endif
__device__ __forceinline__ void store_release(unsigned *p, unsigned v) {
  asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned load_acquire(const unsigned *p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}
__device__ __forceinline__ void store_relaxed(unsigned *p, unsigned v) {
  asm volatile("st.relaxed.gpu.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ unsigned load_relaxed(const unsigned *p) {
  unsigned v;
  asm volatile("ld.relaxed.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Lanes 0-8 of the first warp: until each of the block's (up to) eight xy neighbours has staged
// `need` planes; *allowed = the fewest any has staged (at most nt). RELAXED: see FFDP_AB_SYNC.
template <bool RELAXED>
__device__ __forceinline__ void wait_neighbours(const unsigned *done, int lane, unsigned need, unsigned nt, int *allowed) {
  const int nbx = (int)blockIdx.x + lane % 3 - 1, nby = (int)blockIdx.y + lane / 3 - 1;
  unsigned got = 0xffffffffu;
  if (lane < 9 && lane != 4 && nbx >= 0 && nbx < (int)gridDim.x && nby >= 0 && nby < (int)gridDim.y) {
    const unsigned *c = done + ((blockIdx.z * gridDim.y + nby) * gridDim.x + nbx) * CSTRIDE;
    while ((got = RELAXED ? load_relaxed(c) : load_acquire(c)) < need)
      if (FFDP_AB_SLEEP) __nanosleep(FFDP_AB_SLEEP);  // spinning loads would take L2 bandwidth from the field's
  }
  for (int o = 16; o > 0; o >>= 1) got = min(got, __shfl_down_sync(0xffffffffu, got, o));
  if (lane == 0) *allowed = (int)min(got, nt);
}

// FYT / FYB row groups of 96 columns: XNT threads, OCC blocks an SM.
// MX: also the largest squared norm of the output (maxsq, as blur_z3): a plane's outputs go to
// shared memory (double-buffered by plane parity) and whole voxels are read back after the next
// plane's first barrier, since a voxel's three components belong to threads of different warps.
// What does not change from plane to plane is worked out once — which staged values and outputs
// lie in the image (bit masks), each thread's x-filter items, the outputs' offsets — and the
// staged loads step a pointer by rows (the per-plane index work had been a quarter of the
// instructions: 178 -> 130 M at 256^3, NOTES run 141).
// Two blocks an SM (80 registers) where one had run at 104-128: 12 warps could not hide the
// filters' dependent multiply-adds (H100 256^3: 0.294 -> 0.247 ms, run 142); with the largest
// norm, 12-row tiles of three rows a thread (ring 33 values instead of 44: 0.320 -> 0.296).
// Plane counters and pointers in 32 bits relative to the block's first plane, so that the bound
// spills less (radius 5: 64 -> 12 bytes; with the norm 12 -> 0): 0.249 -> 0.222 ms, run 146.
// The x and y sums streamed (x_filter_item_stream; y straight into the ring): 5 live values in
// the filters instead of 14, no spill at radius 5: 0.209 -> 0.200 ms (64 -> 67 % of copy), with
// the norm 0.278 -> 0.268, the same bits (run 151). Items of eight x outputs (strides padded to
// 3 mod 8, 28 % fewer shared wavefronts) measured the same, 0.195 both (run 152): not kept.
// The first plane a z-chunk's block reads (its owned planes' first less R).
template <int R>
__device__ __forceinline__ long long tfirst_of(const FusedGeo &g, unsigned cz) {
  return g.z0 + (long long)cz * g.zchunk - R;
}

template <int R, bool MX, int OCC, int FYT, int FYB, int IP, int NC = 3>
__global__ void __launch_bounds__(XNT, OCC)
    blur_xyz3(FusedGeo g, const float *__restrict__ in, float *__restrict__ out, unsigned *maxsq, InPlaceGeo ip) {
  static_assert(XTX * 3 * (FYT / FYB) == XNT && FYT % FYB == 0, "one y task per thread");
  static_assert(NC == 3 || (NC == 1 && !MX && !IP), "scalar images: out of place, no norm");
  using S = XyShape<R, FYT, NC>;
  constexpr int AW = S::AW, AH = S::AH, XW = S::XW, AS = S::AS, XS = S::XS, K = 2 * R + 1;
  constexpr int SC = (AW + 31) / 32 * 32, NRG = XNT / SC, LR = (AH + NRG - 1) / NRG;
  extern __shared__ float xy_smem[];
  // ONE (out of place): s_in and s_x each two buffers, plane tr's at parity tr & 1
  constexpr bool ONE = FFDP_BLUR_1BAR && (IP == 0 || (IP == 1 && FFDP_BLUR_1BAR_IP));
  float *s_in = xy_smem, *s_x = xy_smem + (ONE ? 2 : 1) * AS * AH;
  const int tid = threadIdx.x;
  const int x0 = blockIdx.x * S::TXV, y0 = (IP == 2 ? blockIdx.y + ip.ty0 : blockIdx.y) * FYT;
  const long long row = (long long)g.nx * NC, plane = row * g.ny;
  const int sk = tid % SC, sr = tid / SC;
  const long long gk = (long long)(x0 - R) * NC + sk;
  const bool scol = sk < AW && sr < NRG, sread = scol && gk >= 0 && gk < row;
  const int ys = y0 - R + sr, off0 = (int)(ys * row + gk), step = (int)(NRG * row);
  const long long za = g.z0 + (long long)blockIdx.z * g.zchunk;
  const long long zb = za + g.zchunk < g.z1 ? za + g.zchunk : g.z1;
  float v[LR];
  // the masks written out here, not through staged_rows_mask / out_rows_mask: through them the
  // compiler emits other mask tests for this kernel (run 144; the same speed within the spread in
  // run 145's A/B), and this is the code runs 143-147 measured
  unsigned lmask = 0;  // bit l: staged value l of this thread lies in the image
#pragma unroll
  for (int l = 0; l < LR; l++) {
    const int y = ys + l * NRG;
    if (sread && y >= 0 && y < g.ny) lmask |= 1u << l;
  }
  // IP, a band's first tile row: staged values l < LA with sr + l NRG < R come from the saved rows
  // above the band (s_above: their plane tfirst; worked out per fetch, not kept in registers)
  constexpr int LA = (R + NRG - 1) / NRG < LR ? (R + NRG - 1) / NRG : LR;
  __shared__ const float *s_above;
  if (IP == 2 && tid == 0) s_above = ip.above ? ip.above + (tfirst_of<R>(g, blockIdx.z) - g.zlo) * R * row : nullptr;
  // planes counted from the block's first, tr = t - (za - R): 32-bit counters and pointers stepped
  // by planes (the 64-bit plane arithmetic held registers the two-block bound spilled)
  const long long tfirst = za - R;
  const int nt = (int)(zb + R - tfirst), plane32 = (int)plane;
  const int rin0 = (int)(max(g.zs0, tfirst) - tfirst), rin1 = (int)(min(g.zs1, zb + R) - tfirst);
  // IP: the R planes before and after the chunk, owned by its neighbours in z, come from their
  // copies in ip.side: inp starts there (not the first chunk) and is reset at planes R and
  // nt - R (pointers reset, not kept: registers are what the two-block bound lacks)
  const float *inp = !IP ? in + (tfirst - g.zlo) * plane + off0
                         : blockIdx.z > 0 ? ip.side + (long long)(blockIdx.z - 1) * 2 * R * plane + off0
                                          : ip.field + (tfirst - g.zlo) * plane + off0;  // plane tr's staging column, stepped
  // the block's plane bases the resets take, in shared memory (held in registers, they spill)
  __shared__ const float *s_reset[IP ? 2 : 1];
  if (IP && tid == 0) {
    s_reset[0] = ip.field + (za - g.zlo) * plane;
    s_reset[1] = ip.side + ((long long)blockIdx.z * 2 * R + R) * plane;
  }
  auto fetch = [&](int tr) {  // plane tr into v; inp at plane tr
    const unsigned m = tr >= rin0 && tr < rin1 ? lmask : 0u;
    if (IP) {
      if (tr == R && blockIdx.z > 0) inp = s_reset[0] + off0;
      if (tr == nt - R && blockIdx.z + 1 < gridDim.z) inp = s_reset[1] + off0;
    }
    const float *q = inp;
    if (IP) {
#pragma unroll
      for (int l = 0; l < LR; l++, q += step) v[l] = (m >> l) & 1u ? *q : 0.f;
      if (IP == 2 && blockIdx.y == 0 && s_above) {  // uniform over the block
        // staged row sr + l NRG of the rows above: off0 less the offset of the band's row R above
        const int srr = tid / SC, r32 = g.nx * 3;
        const float *a = s_above + (long long)tr * (R * r32) + (off0 - (ip.ty0 * FYT - R) * r32);
#pragma unroll
        for (int l = 0; l < LA; l++)
          if (srr + l * NRG < R && (m >> l) & 1u) v[l] = a[l * NRG * r32];
      }
    } else {
#pragma unroll
      for (int l = 0; l < LR; l++, q += step) v[l] = (m >> l) & 1u ? __ldg(q) : 0.f;
    }
  };
  const int k = tid % XW, jq = tid / XW;
  const bool kin = (long long)x0 * NC + k < row;
  // the x filter's items of this thread (one or two) and the outputs' rows in the image
  constexpr int NXI = AH * 3 * (XTX / XG);
  static_assert(NXI >= XNT && NXI <= 2 * XNT, "one or two x items a thread");
  // item tid + XNT is item tid's XJ rows further down: its offsets need no registers of their own
  constexpr int XJ = XNT / (3 * (XTX / XG));
  static_assert(XNT % (3 * (XTX / XG)) == 0, "the second x item a whole number of rows below the first");
  int xa0, xo0;
  x_item_offsets<S, NC>(tid, &xa0, &xo0);
  const bool x2 = tid + XNT < NXI;
  unsigned smask = 0;
#pragma unroll
  for (int q = 0; q < FYB; q++)
    if (kin && y0 + jq * FYB + q < g.ny) smask |= 1u << q;
  const long long dofs = (long long)x0 * NC + k + (long long)(y0 + jq * FYB) * row;
  const int row32 = (int)row;
  float ring[FYB][K];
#pragma unroll
  for (int q = 0; q < FYB; q++)
#pragma unroll
    for (int d = 0; d < K; d++) ring[q][d] = 0.f;
  // MX: the outputs of plane parity b, FYB rows of XNT values; `most` is this thread's largest
  __shared__ float mz[MX ? 2 : 1][MX ? FYB * XNT : 1];
  float most = 0.f;
  auto norms_of = [&](int b) {  // the FYT x XTX voxels of a plane, from the values its threads wrote
    for (int e = tid; e < FYT * XTX; e += XNT) {
      const int yy = e / XTX, x = e - yy * XTX, q = yy % FYB, base = q * XNT + (yy / FYB) * XW + 3 * x;
      most = fmaxf(most, norm2(mz[b][base], mz[b][base + 1], mz[b][base + 2]));
    }
  };
  float *outp = (IP ? ip.field : out) + (tfirst - R - g.zlo) * plane + dofs;  // output plane tr - R, stepped
  // IP: planes [0, s_allowed) are staged by every neighbour (in shared memory, not a register)
  __shared__ int s_allowed;
  constexpr bool RELAXED = FFDP_AB_SYNC && IP == 1;
  constexpr int PUB0 = RELAXED ? FFDP_AB_PUB : FFDP_AB_PUB_RELEASE, PUB = PUB0 < R + 1 ? PUB0 : R + 1;
  if (IP && tid == 0) s_allowed = 0;
  // the y sums of plane tr straight into the ring (slot ph; the ring holds planes tr - 2R .. tr),
  // each x-filtered row of sx loaded once and added into the FYB sums it belongs to, tap 0 first
  auto y_sums = [&](const float *sx, int ph) {
#pragma unroll
    for (int q = 0; q < FYB; q++) ring[q][ph] = 0.f;
#pragma unroll
    for (int d = 0; d < FYB + 2 * R; d++) {
      const float c = sx[(jq * FYB + d) * XS + k];
#pragma unroll
      for (int q = 0; q < FYB; q++)
        if (d - q >= 0 && d - q <= 2 * R) ring[q][ph] += g.wy[d - q] * c;
    }
  };
  // the z sums of output plane tr - R (owned from tr = 2R on), stored; MX: kept for the norms
  auto z_out = [&](int tr, int ph) {
    const bool emit = tr >= 2 * R;
    float *dq = outp;
    outp += plane32;
#pragma unroll
    for (int q = 0; q < FYB; q++, dq += row32) {
      float z = 0.f;
      if (emit) {
#pragma unroll
        for (int d = 0; d < K; d++) z += g.wz[d] * ring[q][(ph + 1 + d) % K];
        if ((smask >> q) & 1u) *dq = z;
      }
      if (MX) mz[tr & 1][q * XNT + tid] = emit && (smask >> q) & 1u ? z : 0.f;
    }
  };
  auto plane_step = [&](int tr, int ph) {
#pragma unroll
    for (int l = 0; l < LR; l++)
      if (scol && sr + l * NRG < AH) s_in[(sr + l * NRG) * AS + sk] = v[l];
    __syncthreads();
    // plane tr is read: published every PUB planes (and the last). Release stores every third
    // plane, since one waits for the warp's stores and loads in flight (one a plane: 0.30 ms at
    // 256^3; every third: 0.27; none, racy: 0.22; NOTES run 155); relaxed ones every plane. A
    // neighbour sees at most PUB - 1 planes too few, which the R planes between staging and
    // writing absorb while PUB <= R + 1
    if (IP && tid == 0 && ((tr + 1) % PUB == 0 || tr + 1 == nt)) {
      unsigned *c = ip.done + ((blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * CSTRIDE;
      if (RELAXED) store_relaxed(c, (unsigned)tr + 1);
      else store_release(c, (unsigned)tr + 1);
    }
    if (MX && tr > 0) norms_of((tr - 1) & 1);  // the previous plane's outputs
    inp += plane32;
    if (tr + 1 < nt) fetch(tr + 1);
    if constexpr (NC == 1) {
      x_filter_item4<R>(s_in + xa0, s_x + xo0, g.wx);
      if (x2) x_filter_item4<R>(s_in + xa0 + XJ * AS, s_x + xo0 + XJ * XS, g.wx);
    } else {
      x_filter_item_stream<R>(s_in + xa0, s_x + xo0, g.wx);
      if (x2) x_filter_item_stream<R>(s_in + xa0 + XJ * AS, s_x + xo0 + XJ * XS, g.wx);
    }
    // IP: whether to wait before writing, decided before the barrier: thread 0 rewrites s_allowed
    // after it (a thread reading it later could skip a barrier the others wait at)
    const bool wait = IP && tr >= 2 * R && tr - R >= s_allowed;
    __syncthreads();
    y_sums(s_x, ph);
    if (wait) {  // uniform: wait until the neighbours have read plane tr - R
      if (tid < 32) wait_neighbours<RELAXED>(ip.done, tid, (unsigned)(tr - R + 1), (unsigned)nt, &s_allowed);
      __syncthreads();
    }
    z_out(tr, ph);
  };
  // Out of place (ONE): one barrier a plane. On entry plane tr is in s_in[tr & 1] (staged
  // before the previous barrier) and v holds plane tr + 1's loads, which go to s_in[(tr + 1) & 1]
  // (last read by plane tr - 1's x filter, before that barrier); then plane tr + 2 is loaded, as
  // the two-barrier step loads its next plane before its x filter. The x filter writes
  // s_x[tr & 1], last read before the previous barrier too; after this plane's barrier s_x[tr & 1]
  // is complete and plane tr + 1 staged. In place the two barriers stay: there the double buffers'
  // code spilled at the two-block bound (radius 5: 36 bytes, 93 reloads; 0.23 -> 0.43 ms at 256^3,
  // NOTES run 191); FFDP_BLUR_1BAR_IP builds it in place too (the counters published after the
  // barrier, planes [0, tr + 2) staged), for the A/B only.
  auto stage = [&](float *dst) {  // v (a plane's staged values) into a buffer of s_in
#pragma unroll
    for (int l = 0; l < LR; l++)
      if (scol && sr + l * NRG < AH) dst[(sr + l * NRG) * AS + sk] = v[l];
  };
  auto plane_step1 = [&](int tr, int ph, int cur) {  // cur = tr & 1, known at compile time
    if (tr + 1 < nt) {
      stage(s_in + (cur ^ 1) * (AS * AH));
      inp += plane32;
      if (tr + 2 < nt) fetch(tr + 2);
    }
    const float *si = s_in + cur * (AS * AH);
    float *sx = s_x + cur * (XS * AH);
    // (the two-barrier step's x filter, written out again: through a shared lambda taking the
    // buffers as arguments the compiler emitted other code for these instances)
    if constexpr (NC == 1) {
      x_filter_item4<R>(si + xa0, sx + xo0, g.wx);
      if (x2) x_filter_item4<R>(si + xa0 + XJ * AS, sx + xo0 + XJ * XS, g.wx);
    } else {
      x_filter_item_stream<R>(si + xa0, sx + xo0, g.wx);
      if (x2) x_filter_item_stream<R>(si + xa0 + XJ * AS, sx + xo0 + XJ * XS, g.wx);
    }
    const bool wait = IP && tr >= 2 * R && tr - R >= s_allowed;
    __syncthreads();
    {  // planes [0, tr + 2) staged
      const int np = min(tr + 2, nt);
      if (IP && tid == 0 && (np % PUB == 0 || np == nt)) {
        unsigned *c = ip.done + ((blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * CSTRIDE;
        if (RELAXED) store_relaxed(c, (unsigned)np);
        else store_release(c, (unsigned)np);
      }
    }
    if (MX && tr > 0) norms_of((tr - 1) & 1);  // the previous plane's outputs
    y_sums(sx, ph);
    if (wait) {
      if (tid < 32) wait_neighbours<RELAXED>(ip.done, tid, (unsigned)(tr - R + 1), (unsigned)nt, &s_allowed);
      __syncthreads();
    }
    z_out(tr, ph);
  };
  if constexpr (ONE) {
    fetch(0);
    stage(s_in);
    if (nt > 1) {
      inp += plane32;
      fetch(1);
    }
    __syncthreads();
    if (IP && tid == 0 && (1 % PUB == 0 || nt == 1)) {
      unsigned *c = ip.done + ((blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x) * CSTRIDE;
      if (RELAXED) store_relaxed(c, 1u);
      else store_release(c, 1u);
    }
    // 2K planes a round: the ring slot and the buffers' parity both known at compile time
    for (int t0 = 0; t0 < nt; t0 += 2 * K) {
#pragma unroll
      for (int ph = 0; ph < 2 * K; ph++) {
        if (t0 + ph >= nt) break;  // uniform over the block
        plane_step1(t0 + ph, ph % K, ph & 1);
      }
    }
  } else {
    fetch(0);
    for (int t0 = 0; t0 < nt; t0 += K) {
#pragma unroll
      for (int ph = 0; ph < K; ph++) {
        if (t0 + ph >= nt) break;  // uniform over the block
        plane_step(t0 + ph, ph);
      }
    }
  }
  if (MX) {  // the last plane's norms, then the block's largest (squares: float order is bit order)
    __syncthreads();
    norms_of((nt - 1) & 1);
    __shared__ float wmax[XNT / 32];
    for (int o = 16; o > 0; o >>= 1) most = fmaxf(most, __shfl_down_sync(0xffffffffu, most, o));
    if ((tid & 31) == 0) wmax[tid >> 5] = most;
    __syncthreads();
    if (tid == 0) {
      for (int k = 1; k < XNT / 32; k++) most = fmaxf(most, wmax[k]);
      atomicMax(maxsq, __float_as_uint(most));
    }
  }
}

template <int R, bool MX, int OCC, int FYT, int FYB, int NC = 3>
int run_fused_as(const ffdp_slab *s, const FusedGeo &g0, unsigned *maxsq, int sms, const float *in, float *out,
                 cudaStream_t st) {
  FusedGeo fg = g0;
  auto kern = blur_xyz3<R, MX, OCC, FYT, FYB, 0, NC>;
  using S = XyShape<R, FYT, NC>;
  constexpr int smem = fused_smem<S, 0>();
  // past 48 KB with the static arrays (MX: the outputs of two planes) the launch needs the opt-in
  // (one block an SM with the norm: 47 KB dynamic + 12 KB static)
  constexpr int stat = (MX ? 2 * FYB * XNT : 0) * (int)sizeof(float) + 256;
  if (smem + stat > 48 * 1024) cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  int per_sm = 1;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, XNT, smem) != cudaSuccess || per_sm < 1) per_sm = 1;
  const long long tiles = (long long)((s->nx + S::TXV - 1) / S::TXV) * ((s->ny + FYT - 1) / FYT), nzo = s->z1 - s->z0;
  fg.zchunk = zchunk_by_waves(nzo, tiles, sms * per_sm, 2 * R);
  const dim3 grid((unsigned)((s->nx + S::TXV - 1) / S::TXV), (unsigned)((s->ny + FYT - 1) / FYT),
                  (unsigned)((nzo + fg.zchunk - 1) / fg.zchunk));
  kern<<<grid, XNT, smem, st>>>(fg, in, out, maxsq, InPlaceGeo{nullptr, nullptr, nullptr, nullptr, 0});
  return (int)cudaGetLastError();
}

// Boundary zones of the in-place kernel: for inner chunk boundary b = z0 + (j + 1) zchunk
// (blockIdx.y = j), the readable planes of [b - R, b + R) -> side + 2R j planes.
__global__ void copy_zones_packed(long long P3, long long zlo, long long zs0, long long zs1, long long z0, int zchunk, int R,
                                  const float *field, float *side) {
  const long long b = z0 + (long long)(blockIdx.y + 1) * zchunk;
  const long long t0 = b - R > zs0 ? b - R : zs0, t1 = b + R < zs1 ? b + R : zs1;
  const float *src = field + (t0 - zlo) * P3;
  float *dst = side + ((long long)blockIdx.y * 2 * R + (t0 - (b - R))) * P3;
  const long long e = (t1 - t0) * P3;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < e; i += (long long)gridDim.x * blockDim.x)
    dst[i] = src[i];
}

// atomicMax of the bits of the largest squared norm of n 3-vectors (norm2 as the kernels' epilogue:
// the same bits whichever pass finds it)
__global__ void max_norm_bits(const float *__restrict__ v, long long n, unsigned *maxsq) {
  float most = 0.f;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    most = fmaxf(most, norm2(v[3 * i], v[3 * i + 1], v[3 * i + 2]));
  for (int o = 16; o > 0; o >>= 1) most = fmaxf(most, __shfl_down_sync(0xffffffffu, most, o));
  if ((threadIdx.x & 31) == 0) atomicMax(maxsq, __float_as_uint(most));
}

// The largest norm of the owned planes of a blurred field, as max_norm_bits.
inline int norm_pass(const ffdp_slab *s, const float *field, unsigned *maxsq, int sms, cudaStream_t st) {
  const long long n = (s->z1 - s->z0) * s->nx * s->ny;
  max_norm_bits<<<blocks_for(n, 256, 8 * sms), 256, 0, st>>>(field + (s->z0 - s->zlo) * 3 * s->nx * s->ny, n, maxsq);
  return (int)cudaGetLastError();
}

// The one-pass kernel in place on planes of more tiles than the resident slots: bands of as many
// whole tile rows as the slots hold, one cooperative launch each with z in one chunk. Before band
// k runs, the original values of its last R rows (every stored plane) are saved for band k + 1,
// in the half of the ring that band k - 1's rows no longer need. Returns 1 where it does not
// apply (then nothing was written), an error if a launch fails after the first band.
template <int R, int FYT, int FYB>
int run_inplace_bands(const ffdp_slab *s, const FusedGeo &g0, float *field, float *ring, long long q, unsigned *maxsq,
                      int sms, cudaStream_t st) {
  FusedGeo fg = g0;
  auto kern = blur_xyz3<R, false, 2, FYT, FYB, 2>;
  constexpr int smem = fused_smem<XyShape<R, FYT>, 2>();
  int per_sm = 0;
  if (smem > 48 * 1024 && cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess)
    return 1;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, XNT, smem) != cudaSuccess || per_sm < 1) return 1;
  const long long tx = (s->nx + XTX - 1) / XTX, ty = (s->ny + FYT - 1) / FYT, slots = (long long)sms * per_sm;
  const long long rpb = slots / tx, row = 3 * s->nx, P3 = row * s->ny, ns = s->zhi - s->zlo, nzo = s->z1 - s->z0;
  const long long saved = R * row * ns;  // floats of one band's saved rows
  if (rpb < 1 || rpb * tx < sms || 2 * saved + CSLACK + rpb * tx * CSTRIDE > q * P3 || (long long)FYT * rpb < R) return 1;
  fg.zchunk = (int)nzo;
  unsigned *done = counters_at(ring + 2 * saved);
  const float *in = nullptr;
  float *out = nullptr;
  unsigned *none = nullptr;
  for (long long k = 0, ty0 = 0; ty0 < ty; k++, ty0 += rpb) {
    const long long rows = ty0 + rpb < ty ? rpb : ty - ty0, yend = (ty0 + rows) * FYT;
    int rc = 0;
    if (ty0 + rows < ty)  // the next band's rows above it, before this band overwrites them
      rc = (int)cudaMemcpy2DAsync(ring + (k % 2) * saved, R * row * sizeof(float), field + (yend - R) * row,
                                  P3 * sizeof(float), R * row * sizeof(float), ns, cudaMemcpyDeviceToDevice, st);
    InPlaceGeo ip = {field, nullptr, done, k > 0 ? ring + ((k - 1) % 2) * saved : nullptr, (int)ty0};
    if (!rc) rc = (int)cudaMemsetAsync(done, 0, (size_t)(rows * tx) * CSTRIDE * sizeof(unsigned), st);
    if (rc) return rc;
    void *args[] = {&fg, &in, &out, &none, &ip};
    rc = (int)cudaLaunchCooperativeKernel((const void *)kern, dim3((unsigned)tx, (unsigned)rows, 1), dim3(XNT), args,
                                          (size_t)smem, st);
    if (rc) {
      if (k == 0 && rc == (int)cudaErrorCooperativeLaunchTooLarge) {  // nothing written yet: the two passes
        cudaGetLastError();
        return 1;
      }
      return rc;
    }
  }
  return maxsq ? norm_pass(s, field, maxsq, sms, st) : (int)cudaGetLastError();
}

// The one-pass kernel in place (see InPlaceGeo), its z-chunks taking as many of the resident
// block slots as they can (bands, above, where the tiles alone are more than the slots): returns
// 1 (and launches nothing) where it does not apply — a ring too small for the boundary zones and
// counters, a grid under one block an SM, or no cooperative launch.
// The largest norm, when asked, is a pass of its own over the owned planes (12 bytes a voxel):
// in the kernel's epilogue it costs registers the two-block bound does not have (16-row tiles
// spill 48 bytes, and 12-row tiles leave too few blocks to split z: NOTES run 153).
template <int R, int FYT, int FYB>
int run_inplace_as(const ffdp_slab *s, const FusedGeo &g0, float *field, float *ring, long long q, unsigned *maxsq,
                   int sms, cudaStream_t st) {
  FusedGeo fg = g0;
  auto kern = blur_xyz3<R, false, 2, FYT, FYB, 1>;
  constexpr int smem = fused_smem<XyShape<R, FYT>, 1>();
  int dev = 0, coop = 0, per_sm = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev) != cudaSuccess ||
      !coop)
    return 1;
  if (smem > 48 * 1024 && cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, smem) != cudaSuccess)
    return 1;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, XNT, smem) != cudaSuccess || per_sm < 1) return 1;
  const long long tx = (s->nx + XTX - 1) / XTX, ty = (s->ny + FYT - 1) / FYT, tiles = tx * ty, slots = (long long)sms * per_sm;
  const long long nzo = s->z1 - s->z0, P3 = 3 * s->nx * s->ny;
  if (nzo < 1) return 1;
  if (tiles > slots) return run_inplace_bands<R, FYT, FYB>(s, g0, field, ring, q, maxsq, sms, st);
  // the most chunks that stay resident, each at least 4R planes long (else a third of a block's
  // planes would be the 2R before its first output), whose zones and a plane of counters fit the
  // ring: one wave, each block marching zchunk + 2R planes
  long long best = 0;
  for (long long nch = 1; nch <= nzo && tiles * nch <= slots; nch++) {
    const long long zc = (nzo + nch - 1) / nch;
    if ((nzo + zc - 1) / zc != nch || (nch > 1 && zc < 4 * R) || (nch - 1) * 2 * R + 1 > q || tiles * nch * CSTRIDE + CSLACK > P3) continue;
    if (!best || zc < best) best = zc;
  }
  if (!best) return 1;
  const long long nch = (nzo + best - 1) / best;
  if (tiles * nch < sms) return 1;  // small volumes (the coarse levels): SMs would idle; the two passes
  fg.zchunk = (int)best;
  const long long zs0 = s->zlo > 0 ? s->zlo : 0, zs1 = s->zhi < s->nz ? s->zhi : s->nz;
  if (nch > 1)
    copy_zones_packed<<<dim3((unsigned)blocks_for(2 * R * P3, 256, 4 * sms), (unsigned)(nch - 1)), 256, 0, st>>>(
        P3, s->zlo, zs0, zs1, s->z0, fg.zchunk, R, field, ring);
  InPlaceGeo ip = {field, ring, counters_at(ring + (nch - 1) * 2 * R * P3), nullptr, 0};
  const dim3 grid((unsigned)tx, (unsigned)ty, (unsigned)nch);
  int rc = (int)cudaGetLastError();
  if (!rc) rc = (int)cudaMemsetAsync(ip.done, 0, (size_t)tiles * nch * CSTRIDE * sizeof(unsigned), st);
  if (rc) return rc;
  const float *in = nullptr;
  float *out = nullptr;
  unsigned *none = nullptr;
  void *args[] = {&fg, &in, &out, &none, &ip};
  rc = (int)cudaLaunchCooperativeKernel((const void *)kern, grid, dim3(XNT), args, (size_t)smem, st);
  if (rc == (int)cudaErrorCooperativeLaunchTooLarge) {  // fewer slots than the occupancy query said
    cudaGetLastError();
    return 1;
  }
  return !rc && maxsq ? norm_pass(s, field, maxsq, sms, st) : rc;
}

template <int R>
int run_inplace(const ffdp_slab *s, const float wgt[3][2 * BLUR_SPLIT_MAXR + 1], float *field, float *ring, long long q,
                unsigned *maxsq, int sms, cudaStream_t st) {
  FusedGeo fg = {(int)s->nx, (int)s->ny, s->zlo, s->zlo > 0 ? s->zlo : 0, s->zhi < s->nz ? s->zhi : s->nz, s->z0, s->z1, 0,
                 {0}, {0}, {0}};
  for (int d = 0; d <= 2 * R; d++) fg.wx[d] = wgt[0][d], fg.wy[d] = wgt[1][d], fg.wz[d] = wgt[2][d];
  constexpr int FT = R >= 3 ? FFDP_BLUR_IP_FYT : 16;  // 12-row tiles: two x items a thread need R >= 3
  return run_inplace_as<R, FT, FT / 4>(s, fg, field, ring, q, maxsq, sms, st);
}

template <int R>
int run_fused(const ffdp_slab *s, const float wgt[3][2 * BLUR_SPLIT_MAXR + 1], const float *in, float *out,
              unsigned *maxsq, int sms, cudaStream_t st) {
  FusedGeo fg = {(int)s->nx, (int)s->ny, s->zlo, s->zlo > 0 ? s->zlo : 0, s->zhi < s->nz ? s->zhi : s->nz, s->z0, s->z1, 0,
                 {0}, {0}, {0}};
  for (int d = 0; d <= 2 * R; d++) fg.wx[d] = wgt[0][d], fg.wy[d] = wgt[1][d], fg.wz[d] = wgt[2][d];
  /* FFDP_BLUR_XYZ=one: 16-row tiles at one block an SM (the A/B of the occupancy) */
  const char *e = getenv("FFDP_BLUR_XYZ");
  if (e && !strcmp(e, "one"))
    return maxsq ? run_fused_as<R, true, 1, 16, 4>(s, fg, maxsq, sms, in, out, st)
                 : run_fused_as<R, false, 1, 16, 4>(s, fg, maxsq, sms, in, out, st);
  if (!maxsq) return run_fused_as<R, false, 2, 16, 4>(s, fg, maxsq, sms, in, out, st);
  /* 12-row tiles need R >= 3 for two x items a thread at most */
  if constexpr (R >= 3) return run_fused_as<R, true, 2, 12, 3>(s, fg, maxsq, sms, in, out, st);
  else return run_fused_as<R, true, 2, 16, 4>(s, fg, maxsq, sms, in, out, st);
}

// Scalar images (the pyramid's smoothing; blur.cu's one-pass kernel before): the vectors' one
// pass on 96 x 16 voxel tiles, two blocks an SM, the same sums in the same order. 96 x 8 tiles
// (more tiles, fewer z-chunks re-reading 2R planes) were slower: H100 256^3 sigma 1.5 0.084 ->
// 0.118 ms (NOTES run 163).
template <int R>
int run_fused1(const ffdp_slab *s, const float wgt[3][2 * BLUR_SPLIT_MAXR + 1], const float *in, float *out, int sms,
               cudaStream_t st) {
  FusedGeo fg = {(int)s->nx, (int)s->ny, s->zlo, s->zlo > 0 ? s->zlo : 0, s->zhi < s->nz ? s->zhi : s->nz, s->z0, s->z1, 0,
                 {0}, {0}, {0}};
  for (int d = 0; d <= 2 * R; d++) fg.wx[d] = wgt[0][d], fg.wy[d] = wgt[1][d], fg.wz[d] = wgt[2][d];
  return run_fused_as<R, false, 2, 16, 4, 1>(s, fg, nullptr, sms, in, out, st);
}

// Boundary zones: planes [b - R, b + R) of every inner chunk boundary b, out -> side.
__global__ void copy_zones(long long P3, long long zlo, long long z0, long long z1, int zchunk, int R, const float *out,
                           float *side) {
  const long long b = z0 + (long long)(blockIdx.y + 1) * zchunk;
  const long long t0 = b - R > z0 ? b - R : z0, t1 = b + R < z1 ? b + R : z1;
  const long long a = (t0 - zlo) * P3, e = (t1 - zlo) * P3;
  for (long long i = a + (long long)blockIdx.x * blockDim.x + threadIdx.x; i < e; i += (long long)gridDim.x * blockDim.x)
    side[i] = out[i];
}

template <int R>
void launch_xy(dim3 grid, const XYGeo &g, const float *in, float *out, cudaStream_t st) {
  constexpr int smem = XyShape<R>::bytes;
  if (smem > 48 * 1024) cudaFuncSetAttribute(blur_xy3<R>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  blur_xy3<R><<<grid, XNT, smem, st>>>(g, in, out);
}

template <int R>
int run(const ffdp_slab *s, const float wgt[3][2 * BLUR_SPLIT_MAXR + 1], const float *in, float *out, float *side,
        unsigned *maxsq, int sms, cudaStream_t st) {
  const long long zs0 = s->zlo > 0 ? s->zlo : 0, zs1 = s->zhi < s->nz ? s->zhi : s->nz;
  const long long za = s->z0 - R > zs0 ? s->z0 - R : zs0, zb = s->z1 + R < zs1 ? s->z1 + R : zs1;
  XYGeo xg = {(int)s->nx, (int)s->ny, s->zlo, za, zb, 0, XPB, {0}, {0}};
  ZGeo zg = {s->nx * s->ny, s->zlo, zs0, zs1, s->z0, s->z1, 0, 0, {0}};
  for (int d = 0; d <= 2 * R; d++) xg.wx[d] = wgt[0][d], xg.wy[d] = wgt[1][d], zg.wz[d] = wgt[2][d];
  const dim3 gxy((unsigned)((s->nx + XTX - 1) / XTX), (unsigned)((s->ny + XTY - 1) / XTY),
                 (unsigned)((zb - za + XPB - 1) / XPB));
  launch_xy<R>(gxy, xg, in, out, st);
  // enough columns for about two threads per core slot of every SM; chunks at least 4R long
  const long long nzo = s->z1 - s->z0, want = 2LL * sms * 1024, P3 = 3 * zg.P;
  long long nch = side ? (want + P3 - 1) / P3 : 1;
  if (nch > nzo / (4 * R)) nch = nzo / (4 * R);
  if (nch < 1) nch = 1;
  zg.zchunk = (int)((nzo + nch - 1) / nch);
  nch = (nzo + zg.zchunk - 1) / zg.zchunk;
  if (nch > 1)
    copy_zones<<<dim3((unsigned)blocks_for(2 * R * 3 * zg.P, 256, 4 * sms), (unsigned)(nch - 1)), 256, 0, st>>>(
        3 * zg.P, s->zlo, s->z0, s->z1, zg.zchunk, R, out, side);
  blur_z3<R><<<dim3((unsigned)((P3 + ZNT - 1) / ZNT), (unsigned)nch), ZNT, 0, st>>>(zg, out, side, maxsq);
  return (int)cudaGetLastError();
}

// In place through a ring of q planes (see the top of the file): chunks of q - 2R owned planes,
// each preceded by the xy pass of the planes it is the first to need.
template <int R>
int run_ring(const ffdp_slab *s, const float wgt[3][2 * BLUR_SPLIT_MAXR + 1], float *field, float *ring, long long q,
             unsigned *maxsq, int sms, cudaStream_t st) {
  const long long zs0 = s->zlo > 0 ? s->zlo : 0, zs1 = s->zhi < s->nz ? s->zhi : s->nz;
  const long long za = s->z0 - R > zs0 ? s->z0 - R : zs0, zb = s->z1 + R < zs1 ? s->z1 + R : zs1;
  const long long chunk = zb - za <= q ? s->z1 - s->z0 : q - 2 * R;  // a ring that holds every plane never wraps
  if (chunk < 1) return (int)cudaErrorInvalidValue;
  XYGeo xg = {(int)s->nx, (int)s->ny, s->zlo, 0, 0, q, XPB, {0}, {0}};
  ZGeo zg = {s->nx * s->ny, s->zlo, zs0, zs1, 0, 0, 0, q, {0}};
  for (int d = 0; d <= 2 * R; d++) xg.wx[d] = wgt[0][d], xg.wy[d] = wgt[1][d], zg.wz[d] = wgt[2][d];
  const long long P3 = 3 * zg.P, want = 2LL * sms * 1024;
  long long made = za;  // xy planes [za, made) are in the ring
  for (long long a = s->z0; a < s->z1; a += chunk) {
    const long long b = a + chunk < s->z1 ? a + chunk : s->z1, need = b + R < zb ? b + R : zb;
    if (need > made) {
      // a short chunk takes fewer planes per block, so that its grid still fills the GPU
      const long long tiles = (long long)((s->nx + XTX - 1) / XTX) * ((s->ny + XTY - 1) / XTY);
      xg.zfirst = made, xg.zend = need;
      xg.xpb = tiles * ((need - made + XPB - 1) / XPB) >= 3LL * sms ? XPB : tiles * ((need - made + 1) / 2) >= 3LL * sms ? 2 : 1;
      const dim3 gxy((unsigned)((s->nx + XTX - 1) / XTX), (unsigned)((s->ny + XTY - 1) / XTY),
                     (unsigned)((need - made + xg.xpb - 1) / xg.xpb));
      launch_xy<R>(gxy, xg, field, ring, st);
      made = need;
    }
    // z sub-chunks read the ring only, so any split is safe: enough threads, each at least 2R long
    long long nch = (want + P3 - 1) / P3, lim = (b - a) / (2 * R);
    if (nch > lim) nch = lim;
    if (nch < 1) nch = 1;
    zg.z0 = a, zg.z1 = b, zg.zchunk = (int)((b - a + nch - 1) / nch);
    nch = (b - a + zg.zchunk - 1) / zg.zchunk;
    blur_z3<R><<<dim3((unsigned)((P3 + ZNT - 1) / ZNT), (unsigned)nch), ZNT, 0, st>>>(zg, field, ring, maxsq);
  }
  return (int)cudaGetLastError();
}

}  // namespace

// The kernels address a plane of the field with 32-bit offsets (rows, planes and in-plane
// positions as int): a plane of 3 nx ny values must stay under 2^31.
static bool plane_fits(const ffdp_slab *s) { return 3 * s->nx * s->ny < (1LL << 31); }

int blur_split_wanted(const ffdp_slab *s, const int r[3], int ncomp) {
  /* one thread per column in the z pass, so the planes must be wide enough to fill the GPU with
   * a few chunks. Vec3 sigma 1.5, two passes against the one-pass kernel at its best (z-chunks
   * by waves, unrolled ring): H100 192^3 0.184 vs 0.197 ms, 256^3 0.379 vs 0.363 (NOTES run
   * 110); H200 128^3 0.067 vs 0.073, 192^3 0.172 vs 0.193, 256^3 0.360 vs 0.358 (run 111).
   * Smaller planes (the coarse levels) keep the one-pass kernel. */
  /* scalars: the one pass only (radii 1-5; FFDP_BLUR_FUSED=off keeps blur.cu's kernel for them) */
  if (ncomp == 1) {
    const char *fe = getenv("FFDP_BLUR_FUSED");
    if (r[0] > 5 || (fe && !strcmp(fe, "off"))) return 0;
  } else if (ncomp != 3)
    return 0;
  return r[0] == r[1] && r[1] == r[2] && r[0] >= 1 && r[0] <= BLUR_SPLIT_MAXR && s->nx * s->ny >= 128 * 128 && plane_fits(s);
}

int blur_split1(const ffdp_slab *s, int r, const float w[3][2 * BLUR_SPLIT_MAXR + 1], const float *in, float *out,
                cudaStream_t st) {
  if (!plane_fits(s)) return (int)cudaErrorInvalidValue;
  if (s->z1 <= s->z0) return 0;
  const int sms = device_sms();
  switch (r) {
  case 1: return run_fused1<1>(s, w, in, out, sms, st);
  case 2: return run_fused1<2>(s, w, in, out, sms, st);
  case 3: return run_fused1<3>(s, w, in, out, sms, st);
  case 4: return run_fused1<4>(s, w, in, out, sms, st);
  case 5: return run_fused1<5>(s, w, in, out, sms, st);
  default: return (int)cudaErrorInvalidValue;
  }
}

int blur_split3(const ffdp_slab *s, int r, const float w[3][2 * BLUR_SPLIT_MAXR + 1], const float *in, float *out,
                float *side, unsigned *maxsq, cudaStream_t st) {
  if (!plane_fits(s)) return (int)cudaErrorInvalidValue;
  const int sms = device_sms();
  const char *fe = getenv("FFDP_BLUR_FUSED");
  if (!(fe && !strcmp(fe, "off")) && s->z1 > s->z0) switch (r) {  // measured at radius 5; 6-8 keep two passes
#define FUSED_CASE(k) \
  case k: return run_fused<k>(s, w, in, out, maxsq, sms, st);
      FUSED_CASE(1) FUSED_CASE(2) FUSED_CASE(3) FUSED_CASE(4) FUSED_CASE(5)
#undef FUSED_CASE
      default: break;
    }
  switch (r) {
  case 1: return run<1>(s, w, in, out, side, maxsq, sms, st);
  case 2: return run<2>(s, w, in, out, side, maxsq, sms, st);
  case 3: return run<3>(s, w, in, out, side, maxsq, sms, st);
  case 4: return run<4>(s, w, in, out, side, maxsq, sms, st);
  case 5: return run<5>(s, w, in, out, side, maxsq, sms, st);
  case 6: return run<6>(s, w, in, out, side, maxsq, sms, st);
  case 7: return run<7>(s, w, in, out, side, maxsq, sms, st);
  case 8: return run<8>(s, w, in, out, side, maxsq, sms, st);
  case 9: return run<9>(s, w, in, out, side, maxsq, sms, st);
  case 10: return run<10>(s, w, in, out, side, maxsq, sms, st);
  case 11: return run<11>(s, w, in, out, side, maxsq, sms, st);
  case 12: return run<12>(s, w, in, out, side, maxsq, sms, st);
  case 13: return run<13>(s, w, in, out, side, maxsq, sms, st);
  case 14: return run<14>(s, w, in, out, side, maxsq, sms, st);
  case 15: return run<15>(s, w, in, out, side, maxsq, sms, st);
  case 16: return run<16>(s, w, in, out, side, maxsq, sms, st);
  default: return (int)cudaErrorInvalidValue;
  }
}

int blur_split3_ring(const ffdp_slab *s, int r, const float w[3][2 * BLUR_SPLIT_MAXR + 1], float *field, float *ring,
                     long long ring_planes, unsigned *maxsq, cudaStream_t st) {
  if (!plane_fits(s)) return (int)cudaErrorInvalidValue;
  const int sms = device_sms();
  /* the one-pass kernel in place where its grid is resident (FFDP_BLUR_INPLACE=ring: the two
   * passes through the ring, the A/B; =one: that kernel or an error, the checks); the same bits
   * either way */
  const char *e = getenv("FFDP_BLUR_INPLACE");
  if (!(e && !strcmp(e, "ring")) && s->z1 > s->z0 && r >= 1 && r <= 5) {
    int rc = 1;
    switch (r) {
#define INPLACE_CASE(k) \
  case k: rc = run_inplace<k>(s, w, field, ring, ring_planes, maxsq, sms, st); break;
      INPLACE_CASE(1) INPLACE_CASE(2) INPLACE_CASE(3) INPLACE_CASE(4) INPLACE_CASE(5)
#undef INPLACE_CASE
    }
    if (rc != 1) return rc;
    if (e && !strcmp(e, "one")) return (int)cudaErrorNotSupported;
  }
  switch (r) {
#define RING_CASE(k) \
  case k: return run_ring<k>(s, w, field, ring, ring_planes, maxsq, sms, st);
  RING_CASE(1) RING_CASE(2) RING_CASE(3) RING_CASE(4) RING_CASE(5) RING_CASE(6) RING_CASE(7) RING_CASE(8)
  RING_CASE(9) RING_CASE(10) RING_CASE(11) RING_CASE(12) RING_CASE(13) RING_CASE(14) RING_CASE(15) RING_CASE(16)
#undef RING_CASE
  default: return (int)cudaErrorInvalidValue;
  }
}
