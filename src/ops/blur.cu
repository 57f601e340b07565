// CUDA separable Gaussian, zero padding as the CPU operator.
// Radii up to 8 (sigma <= 2.67 voxels, every smoothing the registration stages use by default):
// one fused kernel. A block owns a 32x16 column tile and a z-range and marches along z; per
// plane it reads the tile plus an x/y apron once into shared memory, filters x then y, and
// each thread keeps the last 2r+1 xy-filtered values of its column in registers for the z
// taps: one read and one write of the field, nothing else in device memory.
// Planes of at least 128^2 (vectors, and scalars up to radius 5) go to blur_split.cu's kernels
// instead (split_path): the same bits, faster where the planes fill the GPU.
// Larger radii: one pass per axis (x and y over the planes the z pass needs, then z over the
// owned planes), three reads and writes of the field.
#include "ops/blur_split.h"
#include "ops/cuda_common.cuh"
#include "ops/kernels1d.h"
#include <stdlib.h>
#include <string.h>
#include "ops/ops_cuda.h"
#include "reg/dev_layout.h"
#include <math.h>

using namespace ffdp_cuda;

static_assert(REG_RING_MAXR == BLUR_SPLIT_MAXR, "the planner's ring radius is the ring kernels'");

namespace {

__constant__ float c_w[3][2 * FFDP_MAX_RADIUS + 1];

// out[z][y][x][c] = Σd w[d] in[(x,y,z) + d·axis] for planes z0 + blockIdx.z; one thread per
// (x, c) of a row, one block row per y: no integer division beyond the small ncomp.
template <int AXIS, int NC>
__global__ void blur_axis(int r, int nx, int ny, long long zo0, long long zin0, long long zin1, int nzg, long long zlo,
                          const float *__restrict__ in, float *__restrict__ out) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x, row = nx * NC;
  if (k >= row) return;
  const int y = blockIdx.y, x = k / NC;
  const long long z = zo0 + blockIdx.z;
  const long long base = ((z - zlo) * ny + y) * (long long)row + k;
  float s = 0.f;
  if (AXIS == 0) {
    const int lo = x - r < 0 ? -x : -r, hi = x + r >= nx ? nx - 1 - x : r;
    for (int d = lo; d <= hi; d++) s += c_w[0][d + r] * __ldg(in + base + d * NC);
  } else if (AXIS == 1) {
    const int lo = y - r < 0 ? -y : -r, hi = y + r >= ny ? ny - 1 - y : r;
    for (int d = lo; d <= hi; d++) s += c_w[1][d + r] * __ldg(in + base + (long long)d * row);
  } else {
    long long lo = z - r < 0 ? -z : -r, hi = z + r >= nzg ? nzg - 1 - z : r;
    if (z + lo < zin0) lo = zin0 - z;
    if (z + hi >= zin1) hi = zin1 - 1 - z;
    for (long long d = lo; d <= hi; d++) s += c_w[2][d + r] * __ldg(in + base + d * row * ny);
  }
  out[base] = s;
}

// y or z pass that marches along the axis: each thread owns one (x, c, other) column, reads
// every value of it once and keeps the last 2r+1 in a private shared-memory ring, so device
// memory sees one read and one write per value (the stencil version re-read 2r+1 rows or
// planes per output through L2). Positions [o0, o1) are written, [i0, i1) may be read.
constexpr int MB = 128;
__global__ void blur_march(int r, long long row, long long ncols, long long cstride, long long astride, long long o0,
                           long long o1, long long i0, long long i1, int axis_slot, const float *__restrict__ in,
                           float *__restrict__ out) {
  extern __shared__ float ring[];
  const long long col = blockIdx.x * (long long)MB + threadIdx.x;
  if (col >= ncols) return;
  // column -> base offset: k along the row (x, c), the other axis by blockIdx.y
  const long long base = col + blockIdx.y * cstride; /* col < row */
  const int K = 2 * r + 1;
  float *mine = ring + threadIdx.x;  // ring slot j at mine[j * MB]
  // Slots advance with a 32-bit counter: a 64-bit modulo per tap cost 3x the whole pass.
  // Slot of position a is (a - (o0 - r)) mod K; `head` is the slot the next read goes to.
  int head = 0;
  for (long long a = o0 - r; a < o0 + r; a++) {
    mine[head * MB] = (a >= i0 && a < i1) ? __ldg(in + base + a * astride) : 0.f;
    head = head + 1 == K ? 0 : head + 1;
  }
  for (long long a = o0; a < o1; a++) {
    const long long nxt = a + r;
    mine[head * MB] = (nxt >= i0 && nxt < i1) ? __ldg(in + base + nxt * astride) : 0.f;
    head = head + 1 == K ? 0 : head + 1;  // now the slot of position a - r, the oldest
    float acc = 0.f;
    int sl = head;
    for (int d = 0; d < K; d++) {
      acc += c_w[axis_slot][d] * mine[sl * MB];
      sl = sl + 1 == K ? 0 : sl + 1;
    }
    out[base + a * astride] = acc;
  }
}

template <int NC>
void run_axes(const ffdp_slab *s, const int r[3], long long za, long long zb, const float *in, float *out, float *tmp,
              cudaStream_t st) {
  const int row = (int)s->nx * NC;
  dim3 blk(128), gxy((row + 127) / 128, (unsigned)s->ny, (unsigned)(zb - za)), gz((row + 127) / 128, (unsigned)s->ny,
                                                                                  (unsigned)(s->z1 - s->z0));
  (void)gz;
  blur_axis<0, NC><<<gxy, blk, 0, st>>>(r[0], (int)s->nx, (int)s->ny, za, s->zlo, s->zhi, (int)s->nz, s->zlo, in, out);
  // y: columns are (x, c) of a row, one grid row per stored plane; positions y in [0, ny)
  const long long plane = (long long)row * s->ny;
  const size_t smem_y = (size_t)(2 * r[1] + 1) * MB * sizeof(float), smem_z = (size_t)(2 * r[2] + 1) * MB * sizeof(float);
  /* rings past 48 KB (radius > 23: the coarse pyramid levels of a gigavoxel image) need the
   * kernel's opt-in to more shared memory; the largest radius, 64, takes 66 KB */
  const size_t most = smem_y > smem_z ? smem_y : smem_z;
  if (most > 48 * 1024) cudaFuncSetAttribute(blur_march, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)most);
  blur_march<<<dim3((unsigned)((row + MB - 1) / MB), (unsigned)(zb - za)), MB, smem_y, st>>>(
      r[1], row, row, plane, row, 0, s->ny, 0, s->ny, 1, out + (za - s->zlo) * plane, tmp + (za - s->zlo) * plane);
  // z: columns are (x, c) of a row, one grid row per y; positions are planes relative to zlo
  blur_march<<<dim3((unsigned)((row + MB - 1) / MB), (unsigned)s->ny), MB, smem_z, st>>>(
      r[2], row, row, row, plane, s->z0 - s->zlo, s->z1 - s->zlo, za - s->zlo, zb - s->zlo, 2, tmp, out);
}

constexpr int FTX = 32, FTY = 16, FMAXR = 8;

// Taps travel with the launch (kernel parameters sit in a constant bank, like __constant__
// data, without a separate copy before every call).
struct FGeo {
  int nx, ny, nz, rx, ry, rz;
  long long zlo, zs0, zs1;  // planes readable: [zs0, zs1) (stored and inside the image)
  long long z0, z1;         // owned
  int zchunk;
  float w[3][2 * FMAXR + 1];  // x, y taps; z taps right-aligned in KMAX, zero before
};

// RI > 0: isotropic radius RI known at compile time (the stages' case: one sigma in voxels),
// so every tap loop unrolls with constant shared-memory offsets (the runtime-radius loops
// cost about 3x the instructions, which bound the kernel). RI = 0: radii from g.
// UR (isotropic only): the march unrolled by the ring length, so each plane's ring slot is a
// compile-time register and the ring is not shifted (2r·NC register moves per plane). The z
// taps are summed in the same order: same bits. H100, vec3 sigma 1.5, with waves: 256^3 0.401
// -> 0.363 ms, 192^3 0.220 -> 0.197 (NOTES run 110); FFDP_BLUR_RING=shift: without (A/B).
template <int NC, int KMAX, int RI, bool UR = false>
// Two blocks per SM where the rings fit in 64 registers without spilling (ptxas -v): the
// default sigma 1.5 (radius 5) ran at one block and 90 registers.
__global__ void __launch_bounds__(FTX *FTY, (NC == 3 && (RI >= 6 || (RI == 0 && KMAX >= 11))) ? 1 : 2)
    blur_fused(FGeo g, const float *__restrict__ in, float *__restrict__ out, unsigned *__restrict__ maxsq) {
  extern __shared__ float sm[];
  const int rx = RI ? RI : g.rx, ry = RI ? RI : g.ry, rz = RI ? RI : g.rz;
  const int AW = (FTX + 2 * rx) * NC, AH = FTY + 2 * ry, XW = FTX * NC;
  float *s_in = sm, *s_x = sm + AW * AH;
  const int tid = threadIdx.x, tx = tid % FTX, ty = tid / FTX;
  const int x0 = blockIdx.x * FTX, y0 = blockIdx.y * FTY, ox = x0 + tx, oy = y0 + ty;
  const long long za = g.z0 + (long long)blockIdx.z * g.zchunk;
  const long long zb = za + g.zchunk < g.z1 ? za + g.zchunk : g.z1;
  const long long row = (long long)g.nx * NC, plane = row * g.ny;
  const long long kx0 = (long long)(x0 - rx) * NC;  // row offset of the apron's first value
  // Each thread stages at most LMAX apron values per plane; their in-plane offsets are the
  // same for every plane (computed once). The next plane's loads are issued before this
  // plane's filtering, so their latency hides behind it (a load consumed right away stalled
  // every plane step for a full memory round trip: 4-7 us).
  constexpr int LMAX = (FTX + 2 * FMAXR) * NC * (FTY + 2 * FMAXR) / (FTX * FTY);
  // UR stages as the two-pass xy kernel does: a thread owns one column of the apron and every
  // NRG-th row of it, so its loads differ by whole rows (two offsets in registers, not LMAX)
  constexpr int AWC = (FTX + 2 * (RI ? RI : 1)) * NC, AHC = FTY + 2 * (RI ? RI : 1);
  constexpr int SC = (AWC + 31) / 32 * 32, NRG = FTX * FTY / SC, LR = (AHC + NRG - 1) / NRG;
  constexpr int NOFF = UR ? 1 : LMAX, NV = UR ? LR : LMAX;
  static_assert(!UR || (RI > 0 && NRG >= 1), "the unrolled ring is for compile-time radii");
  const int sk = tid % SC, sr = tid / SC, ys = y0 - ry + sr;
  const bool scol = UR && sk < AWC && sr < NRG, sread = scol && kx0 + sk >= 0 && kx0 + sk < row;
  const int off0 = (int)(ys * row + kx0 + sk), rstep = (int)(NRG * row);
  int off[NOFF];  // in-plane offset; -1: outside the image (zero); -2: no element
#pragma unroll
  for (int l = 0; l < NOFF; l++) {
    const int e = tid + l * FTX * FTY;
    off[l] = -2;
    if (e < AW * AH) {
      const int j = e / AW, k = e - j * AW, y = y0 - ry + j;
      const long long gk = kx0 + k;
      off[l] = y >= 0 && y < g.ny && gk >= 0 && gk < row ? (int)(y * row + gk) : -1;
    }
  }
  float v[NV];
  auto fetch = [&](long long t) {
    const bool tin = t >= g.zs0 && t < g.zs1;
    const float *base = in + (tin ? (t - g.zlo) * plane : 0);
    if (UR) {
#pragma unroll
      for (int l = 0; l < NV; l++) {
        const int y = ys + l * NRG;
        v[l] = tin && sread && y >= 0 && y < g.ny ? __ldg(base + (off0 + l * rstep)) : 0.f;
      }
    } else {
#pragma unroll
      for (int l = 0; l < NV; l++) v[l] = tin && off[l] >= 0 ? __ldg(base + off[l]) : 0.f;
    }
  };
  float ring[NC][KMAX], most = 0.f;
#pragma unroll
  for (int c = 0; c < NC; c++)
#pragma unroll
    for (int d = 0; d < KMAX; d++) ring[c][d] = 0.f;
  fetch(za - rz);
  const long long tend = zb + rz;
  // one plane step; ph >= 0: the unrolled march's ring slot of plane t (compile-time)
  auto plane_step = [&](long long t, int ph) {
    if (UR) {
#pragma unroll
      for (int l = 0; l < NV; l++)
        if (scol && sr + l * NRG < AHC) s_in[(sr + l * NRG) * AWC + sk] = v[l];
    } else {
#pragma unroll
      for (int l = 0; l < NV; l++)
        if (off[l] != -2) s_in[tid + l * FTX * FTY] = v[l];
    }
    __syncthreads();
    if (t + 1 < tend) fetch(t + 1);
    if (RI > 0) {
      // XG neighbouring outputs of one component per item, from XG + 2r values held in
      // registers: 1 + 2r/XG shared loads per output instead of 2r + 1 (ncu: half the stalls
      // waited on shared memory; 256^3, r = 5: 0.497 -> 0.463 ms)
      constexpr int XG = 2, NG = FTX / XG, RR = RI > 0 ? RI : 1; /* 4 spilled at r = 5, no faster */
      for (int e = tid; e < AH * NC * NG; e += FTX * FTY) {
        const int j = e / (NC * NG), rem = e - j * (NC * NG), c = rem / NG, q0 = (rem - c * NG) * XG;
        const float *a = s_in + j * AW + q0 * NC + c;
        float v[XG + 2 * RR];
#pragma unroll
        for (int t = 0; t < XG + 2 * RR; t++) v[t] = a[t * NC];
        float *o = s_x + j * XW + q0 * NC + c;
#pragma unroll
        for (int q = 0; q < XG; q++) {
          float sum = 0.f;
#pragma unroll
          for (int d = 0; d <= 2 * RR; d++) sum += g.w[0][d] * v[q + d];
          o[q * NC] = sum;
        }
      }
    } else {
      for (int e = tid; e < XW * AH; e += FTX * FTY) {
        const int j = e / XW, k = e - j * XW;
        const float *a = s_in + j * AW + k;
        float s = 0.f;
#pragma unroll
        for (int d = 0; d <= 2 * FMAXR; d++)
          if (d <= 2 * rx) s += g.w[0][d] * a[d * NC];
        s_x[e] = s;
      }
    }
    __syncthreads();
    const long long o = t - rz;
    const bool emit = o >= za && ox < g.nx && oy < g.ny;
    float zc[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) {
      float s = 0.f;
#pragma unroll
      for (int d = 0; d <= 2 * (RI ? RI : FMAXR); d++)
        if (RI || d <= 2 * ry) s += g.w[1][d] * s_x[(ty + d) * XW + tx * NC + c];
      if (UR) {
        ring[c][ph] = s;
      } else {
#pragma unroll
        for (int d = 0; d < KMAX - 1; d++) ring[c][d] = ring[c][d + 1];
        ring[c][KMAX - 1] = s;
      }
      zc[c] = 0.f;
      if (emit) {
        float z = 0.f;
#pragma unroll
        for (int d = 0; d < KMAX; d++) z += g.w[2][d] * ring[c][UR ? (ph + 1 + d) % KMAX : d];
        out[(o - g.zlo) * plane + oy * row + (long long)ox * NC + c] = zc[c] = z;
      }
    }
    if (NC == 3 && maxsq && emit) most = fmaxf(most, norm2(zc[0], zc[1], zc[NC - 1]));
    // the next plane writes s_in (read before the second barrier) and s_x (read above, before
    // the next plane's first barrier)
  };
  if constexpr (UR) {
    for (long long t0 = za - rz; t0 < tend; t0 += KMAX) {
#pragma unroll
      for (int ph = 0; ph < KMAX; ph++) {
        if (t0 + ph >= tend) break;  // uniform over the block
        plane_step(t0 + ph, ph);
      }
    }
  } else {
    for (long long t = za - rz; t < tend; t++) plane_step(t, 0);
  }
  if (maxsq) {  // squares are non-negative: their float order is their bits' order
    __shared__ float wmax[FTX * FTY / 32];
    for (int o = 16; o > 0; o >>= 1) most = fmaxf(most, __shfl_down_sync(0xffffffffu, most, o));
    if ((tid & 31) == 0) wmax[tid >> 5] = most;
    __syncthreads();
    if (tid == 0) {
      for (int k = 1; k < FTX * FTY / 32; k++) most = fmaxf(most, wmax[k]);
      atomicMax(maxsq, __float_as_uint(most));
    }
  }
}

// scratch[0] (as bits) -> scratch[1024] = largest norm, scratch[1025] = its inverse, in the
// double arithmetic of field_step.cu's maxnorm_final.
__global__ void maxnorm_from_bits(float *scratch) {
  const double mx = sqrt((double)__uint_as_float(*reinterpret_cast<const unsigned *>(scratch)));
  scratch[1024] = (float)mx;
  scratch[1025] = mx > 0 ? (float)(1.0 / mx) : 0.f;
}

typedef void (*FusedKernel)(FGeo, const float *, float *, unsigned *);

template <int NC>
FusedKernel fused_kernel(bool iso, int r, int kmax) {
  const char *ue = getenv("FFDP_BLUR_RING");
  if (iso && !(ue && !strcmp(ue, "shift"))) {
    switch (r) {
    case 1: return blur_fused<NC, 3, 1, true>;
    case 2: return blur_fused<NC, 5, 2, true>;
    case 3: return blur_fused<NC, 7, 3, true>;
    case 4: return blur_fused<NC, 9, 4, true>;
    case 5: return blur_fused<NC, 11, 5, true>;
    case 6: return blur_fused<NC, 13, 6, true>;
    case 7: return blur_fused<NC, 15, 7, true>;
    default: return blur_fused<NC, 17, 8, true>;
    }
  }
  if (iso) {
    switch (r) {
    case 1: return blur_fused<NC, 3, 1>;
    case 2: return blur_fused<NC, 5, 2>;
    case 3: return blur_fused<NC, 7, 3>;
    case 4: return blur_fused<NC, 9, 4>;
    case 5: return blur_fused<NC, 11, 5>;
    case 6: return blur_fused<NC, 13, 6>;
    case 7: return blur_fused<NC, 15, 7>;
    default: return blur_fused<NC, 17, 8>;
    }
  }
  return kmax == 5 ? blur_fused<NC, 5, 0> : kmax == 9 ? blur_fused<NC, 9, 0> : kmax == 11 ? blur_fused<NC, 11, 0>
                                                                                          : blur_fused<NC, 17, 0>;
}

template <int NC>
int run_fused(const ffdp_slab *s, const int r[3], const float w[3][2 * FFDP_MAX_RADIUS + 1], const float *in, float *out,
              unsigned *maxsq, cudaStream_t st) {
  const bool iso = r[0] == r[1] && r[1] == r[2] && r[0] >= 1;
  /* ring length: exactly 2r+1 for the isotropic kernels, else a bucket; z taps right-aligned */
  const int kmax = iso ? 2 * r[2] + 1 : r[2] <= 2 ? 5 : r[2] <= 4 ? 9 : r[2] <= 5 ? 11 : 17;
  const FusedKernel kern = fused_kernel<NC>(iso, r[0], kmax);
  const long long nzo = s->z1 - s->z0;
  const int tiles = (int)(((s->nx + FTX - 1) / FTX) * ((s->ny + FTY - 1) / FTY));
  const size_t smem = (size_t)((FTX + 2 * r[0]) * NC * (FTY + 2 * r[1]) + FTX * NC * (FTY + 2 * r[1])) * sizeof(float);
  /* z-chunks by waves as LNCC's (each block marches chunk + 2 rz planes): H100 vec3 sigma 1.5,
   * 256^3 0.470 -> 0.401 ms, 192^3 0.255 -> 0.220 (NOTES run 110). FFDP_BLUR_ZCHUNK=fixed: the
   * former chunks of up to 64 planes, halved while fewer than ~4 blocks per SM (the A/B). */
  int zchunk;
  const char *ze = getenv("FFDP_BLUR_ZCHUNK");
  if (ze && !strcmp(ze, "fixed")) {
    zchunk = (int)(nzo < 64 ? nzo : 64);
    while (zchunk > 16 && (long long)tiles * ((nzo + zchunk - 1) / zchunk) < 4 * 132) zchunk /= 2;
  } else {
    zchunk = zchunk_by_waves(nzo, tiles, resident_blocks(kern, FTX * FTY, smem), r[2]);
  }
  FGeo g = {(int)s->nx, (int)s->ny, (int)s->nz, r[0], r[1], r[2], s->zlo,
            s->zlo > 0 ? s->zlo : 0, s->zhi < s->nz ? s->zhi : s->nz, s->z0, s->z1, zchunk, {{0}}};
  for (int d = 0; d <= 2 * r[0]; d++) g.w[0][d] = w[0][d];
  for (int d = 0; d <= 2 * r[1]; d++) g.w[1][d] = w[1][d];
  for (int d = 0; d <= 2 * r[2]; d++) g.w[2][kmax - 1 - 2 * r[2] + d] = w[2][d];
  dim3 grid((unsigned)((s->nx + FTX - 1) / FTX), (unsigned)((s->ny + FTY - 1) / FTY), (unsigned)((nzo + zchunk - 1) / zchunk));
  kern<<<grid, FTX * FTY, smem, st>>>(g, in, out, maxsq);
  return (int)cudaGetLastError();
}

// Host side: the same normalized taps as the CPU operator (kernels1d.c), in float.
int taps(double sigma, float *w) {
  double d[2 * FFDP_MAX_RADIUS + 1];
  const int r = ffdp_gauss_weights(sigma, d);
  for (int k = 0; k <= 2 * r; k++) w[k] = (float)d[k];
  return r;
}

}  // namespace

static bool fused_fits(const int r[3], int ncomp) {
  return r[0] <= FMAXR && r[1] <= FMAXR && r[2] <= FMAXR && (ncomp == 1 || ncomp == 3);
}

/* The two-pass kernels (blur_split.cu) for wide planes; FFDP_BLUR_SPLIT=0 never takes them,
 * =1 whenever they can run (comparisons: both paths give the same bits). */
static bool split_path(const ffdp_slab *s, const int r[3], int ncomp) {
  const char *e = getenv("FFDP_BLUR_SPLIT");
  if (e && !strcmp(e, "0")) return false;
  if (e && !strcmp(e, "1")) {
    ffdp_slab wide = *s; /* narrow planes widened to the rule's least; others as they are */
    if (wide.nx * wide.ny < 128 * 128) wide.nx = wide.ny = 128;
    return blur_split_wanted(&wide, r, ncomp);
  }
  return blur_split_wanted(s, r, ncomp);
}

static int run_split(const ffdp_slab *s, const int r[3], int ncomp, const float w[3][2 * FFDP_MAX_RADIUS + 1],
                     const float *in, float *out, float *tmp, unsigned *maxsq, cudaStream_t st) {
  float t[3][2 * BLUR_SPLIT_MAXR + 1];
  for (int a = 0; a < 3; a++)
    for (int d = 0; d <= 2 * r[a]; d++) t[a][d] = w[a][d];
  return ncomp == 1 ? blur_split1(s, r[0], t, in, out, st) : blur_split3(s, r[0], t, in, out, tmp, maxsq, st);
}

extern "C" int ffdp_cuda_blur(const ffdp_slab *s, const float *in, int ncomp, const double sigma[3], float *out,
                              float *tmp, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  float w[3][2 * FFDP_MAX_RADIUS + 1];
  int r[3];
  for (int a = 0; a < 3; a++) r[a] = taps(sigma[a], w[a]);
  // planes the z pass reads: the owned ones plus r[2] on each side, within what is stored
  long long za = s->z0 - r[2] > s->zlo ? s->z0 - r[2] : s->zlo, zb = s->z1 + r[2] < s->zhi ? s->z1 + r[2] : s->zhi;
  if (s->z1 <= s->z0) return 0;
  if (split_path(s, r, ncomp)) return run_split(s, r, ncomp, w, in, out, tmp, nullptr, st);
  if (fused_fits(r, ncomp)) {
    /* the fused kernel reads `in` and writes `out` only: tmp is not touched */
    return ncomp == 3 ? run_fused<3>(s, r, w, in, out, nullptr, st) : run_fused<1>(s, r, w, in, out, nullptr, st);
  }
  cudaMemcpyToSymbolAsync(c_w, w, sizeof w, 0, cudaMemcpyHostToDevice, st);
  if (ncomp == 3) run_axes<3>(s, r, za, zb, in, out, tmp, st);
  else if (ncomp == 1) run_axes<1>(s, r, za, zb, in, out, tmp, st);
  else return (int)cudaErrorInvalidValue;
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_blur_maxnorm3(const ffdp_slab *s, const float *in, const double sigma[3], float *out, float *tmp,
                                       float *scratch, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  float w[3][2 * FFDP_MAX_RADIUS + 1];
  int r[3];
  for (int a = 0; a < 3; a++) r[a] = taps(sigma[a], w[a]);
  const long long n = (s->z1 - s->z0) * s->nx * s->ny;
  if (!fused_fits(r, 3) || n <= 0) {  // separate passes
    int rc = ffdp_cuda_blur(s, in, 3, sigma, out, tmp, stream);
    return rc ? rc : ffdp_cuda_maxnorm3_dev(n, out + (s->z0 - s->zlo) * s->nx * s->ny * 3, scratch, stream);
  }
  cudaMemsetAsync(scratch, 0, sizeof(unsigned), st);
  unsigned *bits = reinterpret_cast<unsigned *>(scratch);
  int rc = split_path(s, r, 3) ? run_split(s, r, 3, w, in, out, tmp, bits, st) : run_fused<3>(s, r, w, in, out, bits, st);
  if (rc) return rc;
  maxnorm_from_bits<<<1, 1, 0, st>>>(scratch);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_blur_inplace3(const ffdp_slab *s, float *field, double sigma, float *ring, long long ring_planes,
                                       float *scratch, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  const double sg[3] = {sigma, sigma, sigma};
  float w[3][2 * FFDP_MAX_RADIUS + 1];
  int r[3];
  for (int a = 0; a < 3; a++) r[a] = taps(sg[a], w[a]);
  const long long P = s->nx * s->ny, n = (s->z1 - s->z0) * P, own = (s->z0 - s->zlo) * P * 3;
  if (n <= 0) return 0;
  if (r[0] == 0) /* the identity: only the largest norm, when asked */
    return scratch ? ffdp_cuda_maxnorm3_dev(n, field + own, scratch, stream) : 0;
  if (r[0] > BLUR_SPLIT_MAXR) { /* out of place into a ring that holds the whole slab, then back */
    if (ring_planes < ffdp_slab_stored(s) / P) return (int)cudaErrorInvalidValue;
    int rc = scratch ? ffdp_cuda_blur_maxnorm3(s, field, sg, ring, field, scratch, stream)
                     : ffdp_cuda_blur(s, field, 3, sg, ring, field, stream);
    if (!rc) rc = (int)cudaMemcpyAsync(field + own, ring + own, 3 * n * sizeof(float), cudaMemcpyDeviceToDevice, st);
    return rc;
  }
  float t[3][2 * BLUR_SPLIT_MAXR + 1];
  for (int a = 0; a < 3; a++)
    for (int d = 0; d <= 2 * r[a]; d++) t[a][d] = w[a][d];
  unsigned *bits = scratch ? reinterpret_cast<unsigned *>(scratch) : nullptr;
  if (bits) cudaMemsetAsync(bits, 0, sizeof(unsigned), st);
  int rc = blur_split3_ring(s, r[0], t, field, ring, ring_planes, bits, st);
  if (rc || !bits) return rc;
  maxnorm_from_bits<<<1, 1, 0, st>>>(scratch);
  return (int)cudaGetLastError();
}
