// CUDA implicit composite sampler: out(p) = M(B·[p;1] + S·u(p)). The identity grid is the
// thread index; each thread reads u once and the 8 moving taps, writes one output. The
// backward fuses dL/du with the block-level reduction of the affine gradient.
#include <cuda_runtime.h>
#include <type_traits>
#include <stdlib.h>
#include <string.h>
#include "ops/adam_step.cuh"
#include "ops/cuda_common.cuh"
#include "ops/coarse_adam.cuh"
#include "ops/code16.h"
#include "ops/ops_cuda.h"

using namespace ffdp_cuda;

namespace {

struct DevWarp {
  double B[3][4];
  double S[3][3];
  int interp, pad;
};

struct Taps {
  int i0, i1;
  float f, gmask;
  bool v0, v1;
};

// Coordinates in double, as on the CPU (interp_impl.h): float loses precision on large grids
// and CPU and GPU must agree on which side of a knot a point lies.
__device__ __forceinline__ Taps axis_linear(double q, int n, int pad) {
  Taps a;
  a.gmask = 1.f;
  if (pad == FFDP_PAD_BORDER) {
    if (!(q >= 0.0)) q = 0.0, a.gmask = 0.f;
    if (q > (double)(n - 1)) q = (double)(n - 1), a.gmask = 0.f;
    a.i0 = min((int)floor(q), n - 1);
    a.i1 = min(a.i0 + 1, n - 1);
    a.f = (float)(q - (double)a.i0);
    a.v0 = a.v1 = true;
  } else {
    double fl = floor(q);
    if (!(fl >= -2.0 && fl <= (double)n + 1.0)) {
      a.i0 = -2, a.i1 = -1, a.f = 0.f, a.v0 = a.v1 = false;
      return a;
    }
    a.i0 = (int)fl;
    a.i1 = a.i0 + 1;
    a.f = (float)(q - fl);
    a.v0 = a.i0 >= 0 && a.i0 < n;
    a.v1 = a.i1 >= 0 && a.i1 < n;
  }
  return a;
}

// Summed in the CPU's order (interp_impl.h), so that both put a point on the same side of a
// knot, where the trilinear gradient jumps: adding B's translation before its z term failed the
// linear stage's check at 100^3 and 200^3 (bench/gpu/NOTES.md runs 136-137).
__device__ __forceinline__ void warp_point(const DevWarp &w, int x, int y, int z, const float *u, double q[3]) {
#pragma unroll
  for (int i = 0; i < 3; i++) {
    double s = w.B[i][0] * x + w.B[i][1] * y + w.B[i][2] * z + w.B[i][3];
    if (u) s += w.S[i][0] * (double)u[0] + w.S[i][1] * (double)u[1] + w.S[i][2] * (double)u[2];
    q[i] = s;
  }
}

// A tap of the image: a float as stored, or a 16-bit code decoded (code16.h: the floats a CPU
// sampler reads from a decoded copy).
__device__ __forceinline__ float tap(const float *p, ffdp_code16) { return __ldg(p); }
__device__ __forceinline__ float tap(const uint16_t *p, ffdp_code16 k) { return ffdp_code16_decode(__ldg(p), k); }

// Nearest neighbour: channels c0..c0+nc-1 at q (zero gradient).
template <typename T>
__device__ __forceinline__ void lookup_nearest(const T *__restrict__ M, long long mzlo, int mx, int my, int mz,
                                               int ncomp, int c0, int nc, const DevWarp &w, const double q[3],
                                               float *val, ffdp_code16 k16) {
  bool inside = q[0] > -2.0 && q[0] < mx + 2.0 && q[1] > -2.0 && q[1] < my + 2.0 && q[2] > -2.0 && q[2] < mz + 2.0;
  double qc[3] = {fmin(fmax(q[0], -4.0), mx + 4.0), fmin(fmax(q[1], -4.0), my + 4.0), fmin(fmax(q[2], -4.0), mz + 4.0)};
  int ix = (int)floor(qc[0] + 0.5), iy = (int)floor(qc[1] + 0.5), iz = (int)floor(qc[2] + 0.5);
  bool zero = false;
  if (w.pad == FFDP_PAD_BORDER)
    ix = min(max(ix, 0), mx - 1), iy = min(max(iy, 0), my - 1), iz = min(max(iz, 0), mz - 1);
  else
    zero = !inside || ix < 0 || ix >= mx || iy < 0 || iy >= my || iz < 0 || iz >= mz;
  const T *p = M + (((long long)iz - mzlo) * my + iy) * mx * ncomp + (long long)ix * ncomp + c0;
  for (int c = 0; c < nc; c++) val[c] = zero ? 0.f : tap(p + c, k16);
}

// Trilinear: the NC channels at q and, with GRAD, each channel's gradient w.r.t. q. The taps
// are found once for every channel. Addresses: one 64-bit corner pointer and 32-bit steps to
// the other seven (the host checks that a moving plane of NC channels fits 31 bits) — the
// 64-bit offset per tap cost more instructions than everything else in the sampler (ncu, H200,
// run 91). A tap outside the image is never loaded, whatever its address.
template <int NC, bool GRAD, typename T = float>
__device__ __forceinline__ void lookup_linear(const T *__restrict__ M, long long mzlo, int mx, int my, int mz,
                                              int pad, const double q[3], float *val, float (*g)[3],
                                              ffdp_code16 k16 = ffdp_code16{0.f, 1.f}) {
  const Taps ax = axis_linear(q[0], mx, pad), ay = axis_linear(q[1], my, pad), az = axis_linear(q[2], mz, pad);
  const int sy = mx * NC, sz = my * sy;
  const T *p0 = M + ((long long)az.i0 - mzlo) * sz + (ay.i0 * sy + ax.i0 * NC);
  // an opaque corner pointer: otherwise the compiler folds it back into a 64-bit index that it
  // re-extends, shifts and adds to M for every tap (five instructions a tap instead of one; SASS)
  asm("" : "+l"(p0));
  const int dx = (ax.i1 - ax.i0) * NC, dy = (ay.i1 - ay.i0) * sy, dz = (az.i1 - az.i0) * sz;
  const bool vx[2] = {ax.v0, ax.v1}, vy[2] = {ay.v0, ay.v1}, vz[2] = {az.v0, az.v1};
  int off[8];
  bool ok[8];
#pragma unroll
  for (int k = 0; k < 8; k++) {
    const int bx = k & 1, by = (k >> 1) & 1, bz = k >> 2;
    ok[k] = vx[bx] && vy[by] && vz[bz];
    off[k] = (bx ? dx : 0) + (by ? dy : 0) + (bz ? dz : 0);
  }
  const float fx = ax.f, fy = ay.f, fz = az.f, gx = 1.f - fx, gy = 1.f - fy, gz = 1.f - fz;
  // every tap inside and the corners a voxel, row and plane apart (the common case): the loads
  // need no predicates and take their x step as an immediate offset from four row pointers.
  // H100 256^3 (NOTES run 120): forward 0.163 -> 0.161 ms, 16-bit codes forward 0.186 -> 0.170
  // and backward 0.259 -> 0.244; but the float backward kernels slowed (du only 0.219 -> 0.223,
  // (du, dA) 0.258 -> 0.290, linear stage 0.189 -> 0.210: more instructions), so they keep the
  // predicated taps alone.
  constexpr bool kInner = !GRAD || !std::is_same<T, float>::value;
  const bool inner = kInner && ok[0] && ok[7] && dx == NC && dy == sy && dz == sz;
#pragma unroll
  for (int c = 0; c < NC; c++) {
    float v[8];
    if (inner) {
      const T *r0 = p0 + c, *r1 = r0 + sy, *r2 = r0 + sz, *r3 = r2 + sy;
      v[0] = tap(r0, k16), v[1] = tap(r0 + NC, k16), v[2] = tap(r1, k16), v[3] = tap(r1 + NC, k16);
      v[4] = tap(r2, k16), v[5] = tap(r2 + NC, k16), v[6] = tap(r3, k16), v[7] = tap(r3 + NC, k16);
    } else {
#pragma unroll
      for (int k = 0; k < 8; k++) v[k] = ok[k] ? tap(p0 + (off[k] + c), k16) : 0.f;
    }
    float x00 = gx * v[0] + fx * v[1], x10 = gx * v[2] + fx * v[3];
    float x01 = gx * v[4] + fx * v[5], x11 = gx * v[6] + fx * v[7];
    float y0 = gy * x00 + fy * x10, y1 = gy * x01 + fy * x11;
    if (GRAD) {
      g[c][0] = ax.gmask * (gz * (gy * (v[1] - v[0]) + fy * (v[3] - v[2])) + fz * (gy * (v[5] - v[4]) + fy * (v[7] - v[6])));
      g[c][1] = ay.gmask * (gz * (x10 - x00) + fz * (x11 - x01));
      g[c][2] = az.gmask * (y1 - y0);
    }
    val[c] = gz * y0 + fz * y1;
  }
}

template <int NC, typename T = float>
__device__ __forceinline__ void lookup(const T *__restrict__ M, long long mzlo, int mx, int my, int mz,
                                       const DevWarp &w, const double q[3], float *val,
                                       ffdp_code16 k16 = ffdp_code16{0.f, 1.f}) {
  if (w.interp == FFDP_INTERP_NEAREST)
    lookup_nearest(M, mzlo, mx, my, mz, NC, 0, NC, w, q, val, k16);
  else
    lookup_linear<NC, false>(M, mzlo, mx, my, mz, w.pad, q, val, nullptr, k16);
}

// Optional linear term of the composition out = U(q) + T·v (T applied to the field read at p).
struct AddLin {
  float t[9];
  int on;
};

struct Geo {
  int nx, ny, nz;
  long long z0, z1, zlo;
  int mx, my, mz;
  long long mzlo;
};

// Launch shape: x across a warp-wide row, y over 4 rows per block, z grid-strided so that a
// block's partial affine gradient covers many voxels. 32 z-blocks rather than 16: H100 256^3
// fwd 0.167 -> 0.163 ms, bwd 0.226 -> 0.219, compose 0.300 -> 0.285; 4 and 8 were slower; at
// 192^3 all within the spread (NOTES run 110).
constexpr int BX = 32, BY = 4, MAXZB = 32;

// The displacement along a thread's z-march. PF: the next step's u is loaded while this step's
// is used, so its latency hides behind this step's taps instead of starting each step.
template <bool PF>
struct UMarch {
  float next[3] = {0.f, 0.f, 0.f};
  __device__ __forceinline__ static void load(const float *u, long long i, float *v) {
    v[0] = __ldg(u + 3 * i), v[1] = __ldg(u + 3 * i + 1), v[2] = __ldg(u + 3 * i + 2);
  }
  // i: the first voxel; any: whether the march has a step at all
  __device__ __forceinline__ UMarch(const float *u, long long i, bool any) {
    if (PF && u && any) load(u, i, next);
  }
  // uu = u at voxel i; more: whether a step at i + istep follows
  __device__ __forceinline__ void step(const float *u, long long i, long long istep, bool more, float *uu) {
    if (PF) {
      uu[0] = next[0], uu[1] = next[1], uu[2] = next[2];
      if (u && more) load(u, i + istep, next);
    } else if (u) {
      load(u, i, uu);
    }
  }
};

// A thread's (x, y): 32-wide pieces of rows in 32x4 blocks, or with PM a block's 128 threads on
// 128 consecutive voxels of the plane index y nx + x (plane_map): no idle lanes at a row's end
// and a warp's accesses one contiguous run across rows, while each thread still marches z,
// keeping its image gathers near each other (which the index map of run 170 lost).
template <bool PM>
__device__ __forceinline__ bool thread_xy(const Geo &g, int &x, int &y) {
  if (PM) {  // planes under 2^31 voxels (plane_grid): 32-bit division, once a thread
    const unsigned p = blockIdx.x * blockDim.x + threadIdx.x, n = (unsigned)g.nx;
    if (p >= n * (unsigned)g.ny) return false;
    y = (int)(p / n), x = (int)(p - (unsigned)y * n);
    return true;
  }
  x = blockIdx.x * BX + threadIdx.x, y = blockIdx.y * BY + threadIdx.y;
  return x < g.nx && y < g.ny;
}

// NC <= 3 (images and displacement fields). Two planes per step with all loads issued first
// was slower (fwd 0.207 -> 0.266 ms at 256^3, H200: more registers, fewer warps in flight).
// PF (UMarch): H100 256^3 0.192 -> 0.168 ms (58 -> 67 % of copy), the same values
// (bench/gpu/NOTES.md run 109). FFDP_SAMPLE_PF=0: without (the bench's A/B).
template <int NC, typename T = float, bool PF = true, bool PM = false>
__device__ __forceinline__ void sample_fwd_body(const DevWarp &w, const Geo &g, const float *__restrict__ u,
                                                const T *__restrict__ M, const AddLin &lin, float *__restrict__ out,
                                                ffdp_code16 k16) {
  int x, y;
  if (!thread_xy<PM>(g, x, y)) return;
  // the voxel index steps by whole planes: no 64-bit index product per voxel
  const long long istep = (long long)gridDim.z * g.ny * g.nx;
  long long i = ((g.z0 + blockIdx.z - g.zlo) * g.ny + y) * (long long)g.nx + x;
  UMarch<PF> um(u, i, g.z0 + blockIdx.z < g.z1);
  for (long long z = g.z0 + blockIdx.z; z < g.z1; z += gridDim.z, i += istep) {
    float uu[3], val[3];
    double q[3];
    um.step(u, i, istep, z + gridDim.z < g.z1, uu);
    warp_point(w, x, y, (int)z, u ? uu : nullptr, q);
    lookup<NC>(M, g.mzlo, g.mx, g.my, g.mz, w, q, val, k16);
    if (NC == 3 && lin.on)
#pragma unroll
      for (int c = 0; c < 3; c++) val[c] += lin.t[3 * c] * uu[0] + lin.t[3 * c + 1] * uu[1] + lin.t[3 * c + 2] * uu[2];
#pragma unroll
    for (int c = 0; c < NC; c++) out[i * NC + c] = val[c];
  }
}

// Bounded to 12 blocks of 128 an SM (40 registers, no spill for floats; 16 bytes for the 16-bit
// codes) where unbounded it took 56 and ran 9: H100 256^3 0.160 -> 0.153 ms (69.5 -> 73.1 % of
// copy), codes 0.170 -> 0.167; 10 blocks (45 registers) 0.157 (NOTES run 149). A bound of 8 had
// let it take 64 registers (8 blocks) and was slower (runs 120, 122).
template <int NC, typename T = float, bool PF = true, bool PM = false>
__global__ void __launch_bounds__(BX *BY, 12)
    sample_fwd_kernel(DevWarp w, Geo g, const float *__restrict__ u, const T *__restrict__ M, AddLin lin,
                      float *__restrict__ out, ffdp_code16 k16 = ffdp_code16{0.f, 1.f}) {
  sample_fwd_body<NC, T, PF, PM>(w, g, u, M, lin, out, k16);
}

// Fields (the composition): bounded to 10 blocks of 128 threads per SM (48 registers, 8 bytes
// spilled), where unbounded it takes 72 (7 blocks): H100 256^3 compose 0.286 -> 0.274 ms at 8
// blocks (64 registers; NOTES runs 120, 122), 0.261 -> 0.247 at 10 (run 150). Its own entry
// point, since the bound of 8 given to the scalar kernel slowed that one (0.161 -> 0.175 ms in
// the same run); the scalar kernel has its own bound (above).
template <bool PF = true, bool PM = false>
__global__ void __launch_bounds__(BX *BY, 10) sample_fwd3_kernel(DevWarp w, Geo g, const float *__restrict__ u,
                                                                const float *__restrict__ M, AddLin lin,
                                                                float *__restrict__ out) {
  sample_fwd_body<3, float, PF, PM>(w, g, u, M, lin, out, ffdp_code16{0.f, 1.f});
}

// The deformable update's step and composition in one pass: per voxel, the optimiser's step d
// of the smoothed gradient (never stored), then out = d + U(B·p + S·d): the same arithmetic as
// the step's own kernel followed by compose with T = I. out may be grad (the deformable step
// makes the new warp in the gradient's memory): each voxel reads grad at itself only, before
// writing, so neither is __restrict__ and grad is read through the coherent path. Step: the
// Adam step on every voxel (AdamFull; compose_step_body) or from the moments on the coarse grid
// (AdamCoarse; compose_coarse_kernel); the moments m, v come as the kernel's own __restrict__
// parameters.
struct AdamFull {  // moments per voxel (adam_step.cuh)
  AdamConst k;
  template <typename S>
  __device__ __forceinline__ void operator()(const float *grad, S *m, S *v, float inv, long long i, int, int, long long,
                                             float *d) const {
#pragma unroll
    for (int c = 0; c < 3; c++) d[c] = inv == 0.f ? 0.f : adam_elem(grad[3 * i + c], inv, m, v, 3 * i + c, k);
  }
};
struct AdamCoarse {  // moments on the coarse grid (coarse_adam.cuh): restricted before, updated after
  Coarse c;
  const float *tb;
  AdamConst k;
};

template <typename Step, typename S>
__device__ __forceinline__ void compose_step_body(const DevWarp &w, const Geo &g, const float *grad, const Step &step,
                                                  S *__restrict__ m, S *__restrict__ v, const float *__restrict__ inv_dev,
                                                  const float *__restrict__ U, float *out) {
  const int x = blockIdx.x * BX + threadIdx.x, y = blockIdx.y * BY + threadIdx.y;
  if (x >= g.nx || y >= g.ny) return;
  const float inv = *inv_dev;
  // the voxel index steps by whole planes: no 64-bit index product per voxel
  const long long istep = (long long)gridDim.z * g.ny * g.nx;
  long long i = ((g.z0 + blockIdx.z - g.zlo) * g.ny + y) * (long long)g.nx + x;
  for (long long z = g.z0 + blockIdx.z; z < g.z1; z += gridDim.z, i += istep) {
    float d[3], val[3];
    double q[3];
    step(grad, m, v, inv, i, x, y, z, d);
    warp_point(w, x, y, (int)z, d, q);
    lookup<3>(U, g.mzlo, g.mx, g.my, g.mz, w, q, val);
#pragma unroll
    for (int c = 0; c < 3; c++) out[i * 3 + c] = val[c] + d[c];
  }
}

// One voxel of the coarse step inside the composition: its step from the block's tile, then
// out = d + U(q(p)) with q(p) = B p + S d.
__device__ __forceinline__ void coarse_compose_voxel(const DevWarp &w, const Geo &g, const float *grad, AdamConst k,
                                                     const CoarseTile<BX, BY> &tile, float inv, int bx, int by, int x,
                                                     int y, long long z, long long i, const float *__restrict__ U,
                                                     float *out) {
  float gv[3], d[3], val[3];
  double q[3];
#pragma unroll
  for (int e = 0; e < 3; e++) gv[e] = grad[3 * i + e];
  coarse_step_tile(tile, gv, inv, k, bx >> 1, by >> 1, x, y, z, d);
  warp_point(w, x, y, (int)z, d, q);
  lookup<3>(U, g.mzlo, g.mx, g.my, g.mz, w, q, val);
#pragma unroll
  for (int c = 0; c < 3; c++) out[i * 3 + c] = val[c] + d[c];
}

// The two steps' entry points: moments on the coarse grid unbounded (72 registers, 7 blocks of
// 128 an SM; the march below bounded to 10); moments on every voxel bounded to 10 blocks (48
// registers, no spill): H100 256^3 Adam + composition 0.628 -> 0.623 ms (75.4 % of copy; 0.627
// at 8 blocks, NOTES run 151).
// The coarse step's points come from the block's tile (CoarseTile: each point's square root
// once a block and plane, not once a voxel), so the block marches its planes in step. This
// kernel works out every point a plane reads for that plane (two barriers a plane): the march
// below replaced it, and it stays as the bench's A/B (FFDP_COARSE_TILE=plane).
template <typename S>
__global__ void compose_coarse_kernel(DevWarp w, Geo g, const float *grad, AdamCoarse step, const S *__restrict__ m,
                                      const S *__restrict__ v, const float *__restrict__ inv_dev,
                                      const float *__restrict__ U, float *out) {
  __shared__ CoarseTile<BX, BY> tile;
  static_assert(CoarseTile<BX, BY>::NP <= BX * BY, "one tile point a thread");
  const int bx = blockIdx.x * BX, by = blockIdx.y * BY, x = bx + threadIdx.x, y = by + threadIdx.y;
  const bool in = x < g.nx && y < g.ny;
  const int p = threadIdx.y * BX + threadIdx.x;
  const float inv = *inv_dev;
  const long long istep = (long long)gridDim.z * g.ny * g.nx;
  long long i = ((g.z0 + blockIdx.z - g.zlo) * g.ny + y) * (long long)g.nx + x;
  for (long long z = g.z0 + blockIdx.z; z < g.z1; z += gridDim.z, i += istep) {
    if (inv != 0.f) coarse_tile_point(step.c, m, v, step.tb, step.k, bx >> 1, by >> 1, z, p, tile);
    __syncthreads();
    if (in) coarse_compose_voxel(w, g, grad, step.k, tile, inv, bx, by, x, y, z, i, U, out);
    __syncthreads();  // the tile is rewritten for the next plane
  }
}

// The same, each block marching a chunk of `per` consecutive planes: each coarse plane worked
// out once a block (not once for each of the up to three fine planes that read it), while the
// plane before it steps (coarse_tile_ahead), one barrier a plane instead of two. Bounded to 10
// blocks an SM (48 registers, no spill; unbounded it takes 72: 7 blocks). H100 256^3, with the
// restriction and the update (NOTES runs 164-165): 0.667-0.669 ms a block a plane -> march
// 0.594-0.595 -> bounded 0.555-0.557 (33.6 -> 40.5 % of copy; 8 blocks, 64 registers: 0.577).
template <typename S>
__global__ void __launch_bounds__(BX *BY, 10)
    compose_coarse_march_kernel(DevWarp w, Geo g, const float *grad, AdamCoarse step, const S *__restrict__ m,
                                const S *__restrict__ v, const float *__restrict__ inv_dev, const float *__restrict__ U,
                                float *out, long long per) {
  __shared__ CoarseTile<BX, BY> tile;
  static_assert(CoarseTile<BX, BY>::NP <= BX * BY, "one tile point a thread");
  const int bx = blockIdx.x * BX, by = blockIdx.y * BY, x = bx + threadIdx.x, y = by + threadIdx.y;
  const bool in = x < g.nx && y < g.ny;
  const int p = threadIdx.y * BX + threadIdx.x;
  const float inv = *inv_dev;
  const ChunkPlanes ch = chunk_planes(g.z0, g.z1, per, blockIdx.z);
  if (ch.za >= ch.zb) return;  // uniform over the block
  if (inv != 0.f) coarse_tile_point(step.c, m, v, step.tb, step.k, bx >> 1, by >> 1, ch.za, p, tile);
  __syncthreads();
  const long long istep = (long long)g.ny * g.nx;
  long long i = ((ch.za - g.zlo) * g.ny + y) * (long long)g.nx + x;
  for (long long z = ch.za; z < ch.zb; z++, i += istep) {
    if (inv != 0.f) coarse_tile_ahead(step.c, m, v, step.tb, step.k, bx >> 1, by >> 1, z, ch.zb, p, tile);
    if (in) coarse_compose_voxel(w, g, grad, step.k, tile, inv, bx, by, x, y, z, i, U, out);
    __syncthreads();  // the plane read ahead is in; the slot just read may be refilled
  }
}

template <typename S>
__global__ void __launch_bounds__(BX *BY, 10)
    compose_adam_kernel(DevWarp w, Geo g, const float *grad, AdamFull step, S *__restrict__ m, S *__restrict__ v,
                        const float *__restrict__ inv_dev, const float *__restrict__ U, float *out) {
  compose_step_body(w, g, grad, step, m, v, inv_dev, U, out);
}

// The fused Adam + composition with threads mapped to runs of 32 voxels of the stored index
// instead of 32-voxel pieces of rows, for rows that are not a multiple of 32 voxels: a warp's
// 3-vector accesses then start on a 128-byte line and no lanes idle past a row's end. H100 run 170
// (step_parts): 0.349 -> 0.277 ms at 182x218x182, 0.378 -> 0.310 at 200-voxel rows, 0.326 ->
// 0.269 at 176; but 0.279 -> 0.295 at 192 and 0.372 -> 0.392 at 256 (whole rows: the index
// arithmetic is then pure cost). The samplers and compose_fwd took 7-40 % longer on it at every
// row length (their z-march keeps the image gathers local), so only this kernel uses it, and
// only for such rows with fp32 moments (FFDP_COMPOSE_MAP=rows|linear forces either; the same
// bits). Each thread strides by the grid's threads (a multiple of 32 voxels); (x, y, z) come
// from the index by a double-precision quotient, corrected.
struct LinIdx {
  long long P, i0, i1, zlo;
  double invP, invX;
  int nx;
  __device__ __forceinline__ explicit LinIdx(const Geo &g)
      : P((long long)g.nx * g.ny), i0((g.z0 - g.zlo) * P), i1((g.z1 - g.zlo) * P), zlo(g.zlo),
        invP(1.0 / (double)P), invX(1.0 / (double)g.nx), nx(g.nx) {}
  // the thread's first index: the warp's run starts on a multiple of 32 (lanes below i0 skip)
  __device__ __forceinline__ long long first() const {
    return (i0 & ~31LL) + (long long)blockIdx.x * blockDim.x + threadIdx.x;
  }
  __device__ __forceinline__ void at(long long i, int &x, int &y, int &z) const {
    long long zz = (long long)((double)i * invP);
    if (zz * P > i) zz--;
    else if ((zz + 1) * P <= i) zz++;
    const long long rem = i - zz * P;
    int yy = (int)((double)rem * invX);
    if ((long long)yy * nx > rem) yy--;
    else if ((long long)(yy + 1) * nx <= rem) yy++;
    x = (int)(rem - (long long)yy * nx), y = yy, z = (int)(zlo + zz);
  }
};

// Index-map launches: 128 threads a block, at most four rounds of minb blocks on every SM (each
// thread then takes a few voxels, so the per-thread setup is amortized); n owned voxels, plus
// the run before the first that the 32-voxel alignment adds.
dim3 lin_grid(long long n, int minb) {
  const long long want = (n + 32 + 127) / 128, most = 4LL * minb * device_sms();
  return dim3((unsigned)(want < most ? want : most));
}

template <typename S>
__global__ void __launch_bounds__(128, 10)
    compose_adam_lin_kernel(DevWarp w, Geo g, const float *grad, AdamFull step, S *__restrict__ m, S *__restrict__ v,
                            const float *__restrict__ inv_dev, const float *__restrict__ U, float *out) {
  const LinIdx L(g);
  const long long stride = (long long)gridDim.x * blockDim.x;
  const float inv = *inv_dev;
  for (long long i = L.first(); i < L.i1; i += stride) {
    if (i < L.i0) continue;
    int x, y, z;
    L.at(i, x, y, z);
    float d[3], val[3];
    double q[3];
    step(grad, m, v, inv, i, x, y, z, d);
    warp_point(w, x, y, z, d, q);
    lookup<3>(U, g.mzlo, g.mx, g.my, g.mz, w, q, val);
#pragma unroll
    for (int c = 0; c < 3; c++) out[i * 3 + c] = val[c] + d[c];
  }
}

// One voxel of the backward pass: gq = sum_c gout_c dM_c/dq at the warped point (zero for
// nearest neighbour) and, when gu is given, dL/du = S^T gq at voxel i.
template <int NC, typename T>
__device__ __forceinline__ void bwd_voxel(const DevWarp &w, const Geo &g, int x, int y, int z, const float *uu,
                                          const T *__restrict__ M, const float *__restrict__ gout,
                                          float *__restrict__ gu, long long i, const ffdp_code16 &k16, float gq[3]) {
  double q[3];
  gq[0] = gq[1] = gq[2] = 0.f;
  warp_point(w, x, y, z, uu, q);
  if (w.interp != FFDP_INTERP_NEAREST) {
    float d[NC][3], val[NC];
    lookup_linear<NC, true>(M, g.mzlo, g.mx, g.my, g.mz, w.pad, q, val, d, k16);
#pragma unroll
    for (int c = 0; c < NC; c++) {
      const float gc = gout[i * NC + c];
      gq[0] += gc * d[c][0], gq[1] += gc * d[c][1], gq[2] += gc * d[c][2];
    }
  }
  if (gu)
#pragma unroll
    for (int a = 0; a < 3; a++) gu[3 * i + a] = (float)(w.S[0][a] * gq[0] + w.S[1][a] * gq[1] + w.S[2][a] * gq[2]);
}

// The block's sums of acc[12] into partial[b * bs + k * ks], in a fixed order (warp shuffles,
// then the warps in order): deterministic. Every thread of the block must call it.
__device__ __forceinline__ void block_partial12(const double acc[12], double *partial, long long b, long long bs,
                                                long long ks) {
  __shared__ double sh[BX * BY / 32][12];
  const int t = threadIdx.y * BX + threadIdx.x, lane = t & 31, wid = t >> 5;
#pragma unroll
  for (int k = 0; k < 12; k++) {
    double v = acc[k];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) sh[wid][k] = v;
  }
  __syncthreads();
  if (t < 12) {
    double s = 0.0;
    for (int k = 0; k < BX * BY / 32; k++) s += sh[k][t];
    partial[b * bs + t * ks] = s;
  }
}

// dL/du per voxel; the affine gradient is reduced per block (block_partial12) into
// partial[12][block], summed afterwards in a fixed order (reduce12_kernel): deterministic.
// AFF: with the affine gradient. Without it (the deformable stages) the accumulators are not
// compiled in. With it, the six accumulators fit 56 registers for images (nine blocks of 128
// threads per SM, the gather's latency hidden as in the du-only kernel); the du-only bounds
// keep the registers it took unbounded (56 and 48: 9 and 10 blocks per SM).
// PF (UMarch) as in the forward kernel: H100 256^3 du only 0.256 -> 0.226 ms (70 -> 79 % of
// copy), (du, dA) 0.313 -> 0.280, the same values (bench/gpu/NOTES.md run 110).
template <int NC, bool AFF, typename T = float, bool PF = true, bool PM = false>
__global__ void __launch_bounds__(BX *BY, AFF ? (NC > 1 ? 6 : 9) : (NC > 1 ? 9 : 10))
    sample_bwd_kernel(DevWarp w, Geo g, const float *__restrict__ u, const T *__restrict__ M,
                      const float *__restrict__ gout, float *__restrict__ gu, double *partial,
                      ffdp_code16 k16 = ffdp_code16{0.f, 1.f}) {
  // A thread's x and y are fixed, so sum_z gq p^T needs only sum gq and sum gq z per thread:
  // six accumulators instead of twelve (the x and y columns are x·s0 and y·s0 at the end)
  // a thread's own sums in float (its march is nz / gridDim.z voxels: 8 at 256^3), the block's
  // and the grid's in double: 12 registers fewer, so 9 blocks per SM fit without spills. H100
  // 256^3 (du, dA) 0.258 -> 0.250 ms (69 -> 71 % of copy; 0.258 with float sums at 8 blocks),
  // error against the CPU 1.4e-7 -> 1.7e-7 (NOTES run 128)
  float s0[3] = {0.f, 0.f, 0.f}, sz[3] = {0.f, 0.f, 0.f};
  int x = 0, y = 0;
  if (thread_xy<PM>(g, x, y)) {
    const long long istep = (long long)gridDim.z * g.ny * g.nx;
    long long i = ((g.z0 + blockIdx.z - g.zlo) * g.ny + y) * (long long)g.nx + x;
    UMarch<PF> um(u, i, g.z0 + blockIdx.z < g.z1);
    for (long long z = g.z0 + blockIdx.z; z < g.z1; z += gridDim.z, i += istep) {
      float uu[3], gq[3];
      um.step(u, i, istep, z + gridDim.z < g.z1, uu);
      bwd_voxel<NC>(w, g, x, y, (int)z, u ? uu : nullptr, M, gout, gu, i, k16, gq);
      if constexpr (AFF)
#pragma unroll
        for (int a = 0; a < 3; a++) s0[a] += gq[a], sz[a] += gq[a] * (float)z;
    }
  }
  if constexpr (AFF) {  // the block's partial affine gradient
    double acc[12];
#pragma unroll
    for (int a = 0; a < 3; a++)
      acc[4 * a] = (double)x * s0[a], acc[4 * a + 1] = (double)y * s0[a], acc[4 * a + 2] = sz[a], acc[4 * a + 3] = s0[a];
    // entry-major (partial[k][block]): reduce12_kernel reads each entry's partials coalesced
    const long long nb = (long long)gridDim.x * gridDim.y * gridDim.z;
    block_partial12(acc, partial, ((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x, 1, nb);
  }
}

// The affine gradient per plane (the linear stages, and what ranks fold in plane order): one
// block row per plane (blockIdx.z), its threads marching y, so that a plane's sum depends on
// the plane alone, whatever slab it sits in. With x and z fixed per thread, sum_y gq p^T needs
// sum gq and sum gq y (the x and z columns are x·s0 and z·s0). The former launch — the z-march
// kernel with one plane per block row, one voxel per thread — ran at 11 % of copy on an H100
// (256^3, 8 B/voxel: 0.391 ms; NOTES run 110): a block reduction per 128 voxels.
// A thread's own sums (16 rows) in float, the block's in double; WITHU false: the linear stages'
// instance (no displacement read, no dL/du written), its branches and local copy of u compiled
// out. H100 256^3: 0.188 -> 0.183 ms (float sums, 8 rows), 0.184 -> 0.174 (no u), -> 0.164 ms
// (16 rows a thread: half the block reductions); error against the CPU 1.4e-7 -> 1.6e-7
// (NOTES runs 151-152).
template <int NC, bool WITHU, typename T = float>
__global__ void __launch_bounds__(BX *BY, NC > 1 ? 6 : 8)
    sample_bwd_planes_kernel(DevWarp w, Geo g, const float *__restrict__ u, const T *__restrict__ M,
                             const float *__restrict__ gout, float *__restrict__ gu, double *partial,
                             ffdp_code16 k16 = ffdp_code16{0.f, 1.f}) {
  if (!WITHU) u = nullptr, gu = nullptr;
  float s0[3] = {0.f, 0.f, 0.f}, sy[3] = {0.f, 0.f, 0.f};
  const int x = blockIdx.x * BX + threadIdx.x;
  const long long z = g.z0 + blockIdx.z;
  if (x < g.nx)
    for (int y = blockIdx.y * BY + threadIdx.y; y < g.ny; y += gridDim.y * BY) {
      const long long i = ((z - g.zlo) * g.ny + y) * (long long)g.nx + x;
      float uu[3], gq[3];
      if (u) UMarch<false>::load(u, i, uu);
      bwd_voxel<NC>(w, g, x, y, (int)z, u ? uu : nullptr, M, gout, gu, i, k16, gq);
#pragma unroll
      for (int a = 0; a < 3; a++) s0[a] += gq[a], sy[a] += gq[a] * (float)y;
    }
  double acc[12];
#pragma unroll
  for (int a = 0; a < 3; a++)
    acc[4 * a] = (double)x * s0[a], acc[4 * a + 1] = sy[a], acc[4 * a + 2] = (double)z * s0[a], acc[4 * a + 3] = s0[a];
  block_partial12(acc, partial, ((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x, 12, 1);
}

// One block per entry (partials entry-major), threads striding over the blocks' partials, then
// the warps' sums in order: a fixed pattern, deterministic. The former single block with a warp
// per entry looped 512 times a lane over 256^3's 16384 partials: H100 256^3 (du, dA) 0.307 ->
// 0.263 ms (58 -> 68 % of copy), the reduction itself 4.8 us (NOTES run 119).
constexpr int R12 = 1024;
__global__ void __launch_bounds__(R12) reduce12_kernel(const double *partial, long long nblocks, double *out) {
  __shared__ double ws[R12 / 32];
  const int t = threadIdx.x, lane = t & 31;
  const double *p = partial + blockIdx.x * nblocks;
  double s = 0.0;
  for (long long b = t; b < nblocks; b += R12) s += p[b];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if (lane == 0) ws[t >> 5] = s;
  __syncthreads();
  if (t < 32) {
    s = ws[t];
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if (t == 0) out[blockIdx.x] = s;
  }
}

DevWarp to_dev(const ffdp_warp *w) {
  DevWarp d;
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 4; j++) d.B[i][j] = w->B[i][j];
    for (int j = 0; j < 3; j++) d.S[i][j] = w->S[i][j];
  }
  d.interp = w->interp;
  d.pad = w->pad;
  return d;
}

Geo to_geo(const ffdp_slab *fs, const ffdp_slab *ms) {
  Geo g = {(int)fs->nx, (int)fs->ny, (int)fs->nz, fs->z0, fs->z1, fs->zlo, (int)ms->nx, (int)ms->ny, (int)ms->nz, ms->zlo};
  return g;
}

// FFDP_SAMPLE_ZB: another z-block count (the bench's A/B of march length against threads).
// The composition takes 64: H100 256^3 0.274 -> 0.263 ms in run 122, 5 % in runs 112 and 117;
// H200 within +-2 % (run 111). The other kernels keep 32 (64 measured slower or equal).
constexpr int MAXZB3 = 64;
dim3 grid_for(const ffdp_slab *fs, long long most = MAXZB) {
  if (const char *e = getenv("FFDP_SAMPLE_ZB"))
    if (atoi(e) > 0) most = atoi(e);
  long long nzo = fs->z1 - fs->z0, zb = nzo < most ? nzo : most;
  return dim3((unsigned)((fs->nx + BX - 1) / BX), (unsigned)((fs->ny + BY - 1) / BY), (unsigned)(zb > 0 ? zb : 1));
}

// sample_bwd_planes_kernel's grid: a block row per owned plane, about 16 rows per thread.
// From the plane's size alone, so that every slab sums a plane the same way.
dim3 planes_grid_for(const ffdp_slab *fs) {
  const long long yb = (fs->ny + 16 * BY - 1) / (16 * BY);
  return dim3((unsigned)((fs->nx + BX - 1) / BX), (unsigned)yb, (unsigned)(fs->z1 - fs->z0));
}

// Per-plane affine gradient: with one plane per block row (grid.z = planes), plane z's sum
// is its blocks' partials added in block order, one warp per entry: the same bits for that
// plane whatever slab it sits in (planes_grid_for).
__global__ void reduce12_planes_kernel(const double *partial, long long nxy, double *out) {
  const int k = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const long long z = blockIdx.x;
  double s = 0.0;
  for (long long b = lane; b < nxy; b += 32) s += partial[(z * nxy + b) * 12 + k];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if (lane == 0) out[z * 12 + k] = s;
}

// Channels the kernels are compiled for (1-3), and lookup_linear's 32-bit in-plane offsets: a
// corner may sit a row and a voxel past the plane (the zero-padding sentinel is n + 1), and its
// steps add another plane, row and voxel.
// FFDP_SAMPLE_PF=0: no kernel loads the displacement ahead (the bench's A/B rows; unset, all do)
bool no_prefetch() {
  const char *e = getenv("FFDP_SAMPLE_PF");
  return e && !strcmp(e, "0");
}
bool bwd_prefetch() { return !no_prefetch(); }
// Rows of nx values that are not multiples of 32 (not whole 128-byte lines of floats): where
// the fused step's index map and the samplers' plane map beat 32-wide pieces of rows (H100 runs
// 170-173); at whole-line rows the rows stay ahead.
bool rows_split_lines(long long nx) { return nx % 32 != 0; }

// A map forced by environment variable var: 0 for "rows", 1 for alt, -1 when not forced.
int forced_map(const char *var, const char *alt) {
  const char *e = getenv(var);
  return !e ? -1 : !strcmp(e, "rows") ? 0 : !strcmp(e, alt) ? 1 : -1;
}

// The fused Adam + composition on the index map where rows split lines and the moments are fp32
// (compose_adam_lin_kernel; with bf16 moments the index map lost: the medium SyN's finest
// iteration 1.85 ms against 1.79-1.80 on rows, H100 run 172); FFDP_COMPOSE_MAP=rows|linear
// forces either way
bool compose_on_index(long long nx, bool bf16_state) {
  const int f = forced_map("FFDP_COMPOSE_MAP", "linear");
  return f >= 0 ? f == 1 : !bf16_state && rows_split_lines(nx);
}

bool shape_ok(const ffdp_slab *ms, int ncomp) {
  return ncomp >= 1 && ncomp <= 3 && ((long long)ms->nx * ms->ny + 2 * ms->nx + 2) * ncomp < (1LL << 31);
}

template <bool PF>
void fwd_kernels(dim3 grid, cudaStream_t st, const DevWarp &d, const Geo &g, const float *u, const float *M, int ncomp,
                 const AddLin &lin, float *out) {
  const dim3 block(BX, BY);
  if (ncomp == 1) sample_fwd_kernel<1, float, PF><<<grid, block, 0, st>>>(d, g, u, M, lin, out);
  if (ncomp == 2) sample_fwd_kernel<2, float, PF><<<grid, block, 0, st>>>(d, g, u, M, lin, out);
  if (ncomp == 3) sample_fwd3_kernel<PF><<<grid, block, 0, st>>>(d, g, u, M, lin, out);
}

// The samplers' forward (compose_fwd too) and du-only backward on the plane map (thread_xy: the
// same z-blocks, 128 consecutive plane voxels a block) where rows split lines, as the fused
// step's index map (compose_on_index). H100 (bench/gpu/NOTES.md run
// 173), plane against rows, the same values: 200^3 sample fwd 0.087 -> 0.079 ms (62 -> 68 % of
// copy), du 0.116 -> 0.111, compose_fwd 0.134 -> 0.126; 182x218x182 0.0705 -> 0.0690, 0.1013 ->
// 0.0978, 0.1181 -> 0.1151. At 256^3 rows stay ahead (plane: 71.6 / 80.9 / 78.6 % against rows'
// 73.7 / 81.9 / 81.8 % in run 171). FFDP_SAMPLE_MAP=rows|plane forces either (planes of 2^31
// voxels or more always take rows: the map's 32-bit plane index).
bool plane_map(const ffdp_slab *fs) {
  if ((long long)fs->nx * fs->ny >= (1LL << 31)) return false;
  const int f = forced_map("FFDP_SAMPLE_MAP", "plane");
  return f >= 0 ? f == 1 : rows_split_lines(fs->nx);
}
dim3 plane_grid(const ffdp_slab *fs, dim3 rows) {
  return dim3((unsigned)(((long long)fs->nx * fs->ny + BX * BY - 1) / (BX * BY)), 1, rows.z);
}

int launch_fwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms, const float *M, int ncomp,
               const AddLin &lin, float *out, cudaStream_t st) {
  if (fs->z1 <= fs->z0) return 0;
  if (!shape_ok(ms, ncomp)) return (int)cudaErrorInvalidValue;
  const DevWarp d = to_dev(w);
  const Geo g = to_geo(fs, ms);
  const dim3 grid = grid_for(fs, ncomp == 3 ? MAXZB3 : MAXZB);
  if (plane_map(fs) && !no_prefetch()) {
    const dim3 pg = plane_grid(fs, grid);
    if (ncomp == 1) sample_fwd_kernel<1, float, true, true><<<pg, BX * BY, 0, st>>>(d, g, u, M, lin, out);
    if (ncomp == 2) sample_fwd_kernel<2, float, true, true><<<pg, BX * BY, 0, st>>>(d, g, u, M, lin, out);
    if (ncomp == 3) sample_fwd3_kernel<true, true><<<pg, BX * BY, 0, st>>>(d, g, u, M, lin, out);
    return (int)cudaGetLastError();
  }
  if (no_prefetch())
    fwd_kernels<false>(grid, st, d, g, u, M, ncomp, lin, out);
  else
    fwd_kernels<true>(grid, st, d, g, u, M, ncomp, lin, out);
  return (int)cudaGetLastError();
}

template <bool AFF, bool PF>
void bwd_kernels(dim3 grid, cudaStream_t st, const DevWarp &d, const Geo &g, const float *u, const float *M, int ncomp,
                 const float *gout, float *gu, double *part) {
  const dim3 block(BX, BY);
  if (ncomp == 1) sample_bwd_kernel<1, AFF, float, PF><<<grid, block, 0, st>>>(d, g, u, M, gout, gu, part);
  if (ncomp == 2) sample_bwd_kernel<2, AFF, float, PF><<<grid, block, 0, st>>>(d, g, u, M, gout, gu, part);
  if (ncomp == 3) sample_bwd_kernel<3, AFF, float, PF><<<grid, block, 0, st>>>(d, g, u, M, gout, gu, part);
}

template <bool AFF>
void launch_bwd(dim3 grid, cudaStream_t st, const DevWarp &d, const Geo &g, const float *u, const float *M, int ncomp,
                const float *gout, float *gu, double *part) {
  if (bwd_prefetch())
    bwd_kernels<AFF, true>(grid, st, d, g, u, M, ncomp, gout, gu, part);
  else
    bwd_kernels<AFF, false>(grid, st, d, g, u, M, ncomp, gout, gu, part);
}

}  // namespace

extern "C" int ffdp_cuda_sample_fwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                    const float *M, int ncomp, float *out, void *stream) {
  AddLin none = {{0}, 0};
  return launch_fwd(w, fs, u, ms, M, ncomp, none, out, (cudaStream_t)stream);
}

extern "C" int ffdp_cuda_compose_fwd(const ffdp_warp *w, const double T[3][3], const ffdp_slab *fs, const float *v,
                                     const ffdp_slab *us, const float *U, float *out, void *stream) {
  AddLin lin;
  lin.on = 1;
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) lin.t[3 * a + b] = (float)T[a][b];
  return launch_fwd(w, fs, v, us, U, 3, lin, out, (cudaStream_t)stream);
}

extern "C" int ffdp_cuda_compose_adam(const ffdp_warp *w, const ffdp_slab *fs, const float *grad, void *m, void *v,
                                      int bf16_state, const float *inv_dev, int t, double step, const float *U,
                                      float *out, void *stream) {
  if (fs->z1 <= fs->z0) return 0;
  if (!shape_ok(fs, 3)) return (int)cudaErrorInvalidValue;
  const AdamConst k = adam_const(t, step);
  cudaStream_t st = (cudaStream_t)stream;
  const DevWarp d = to_dev(w);
  const Geo g = to_geo(fs, fs);
  if (compose_on_index(fs->nx, bf16_state != 0)) {
    const dim3 lg = lin_grid((long long)(fs->z1 - fs->z0) * fs->nx * fs->ny, 10);
    if (bf16_state)
      compose_adam_lin_kernel<<<lg, 128, 0, st>>>(d, g, grad, AdamFull{k}, (__nv_bfloat16 *)m, (__nv_bfloat16 *)v, inv_dev,
                                                  U, out);
    else
      compose_adam_lin_kernel<<<lg, 128, 0, st>>>(d, g, grad, AdamFull{k}, (float *)m, (float *)v, inv_dev, U, out);
    return (int)cudaGetLastError();
  }
  const dim3 grid = grid_for(fs), block(BX, BY);
  if (bf16_state)
    compose_adam_kernel<<<grid, block, 0, st>>>(d, g, grad, AdamFull{k}, (__nv_bfloat16 *)m, (__nv_bfloat16 *)v, inv_dev, U,
                                                out);
  else
    compose_adam_kernel<<<grid, block, 0, st>>>(d, g, grad, AdamFull{k}, (float *)m, (float *)v, inv_dev, U, out);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_compose_coarse_adam(const ffdp_warp *w, const ffdp_slab *fs, const float *grad, void *m, void *v,
                                             int bf16_state, float *tb, const float *inv_dev, int t, double step,
                                             const float *U, float *out, void *stream) {
  if (fs->z1 <= fs->z0) return 0;
  if (!shape_ok(fs, 3)) return (int)cudaErrorInvalidValue;
  int rc = ffdp_cuda_coarse_restrict(fs, grad, tb, inv_dev, stream);
  if (rc) return rc;
  cudaStream_t st = (cudaStream_t)stream;
  const AdamConst k = adam_const(t, step);
  const DevWarp d = to_dev(w);
  const Geo g = to_geo(fs, fs);
  const Coarse c = coarse_of(fs->nx, fs->ny, fs->nz, fs->zlo, fs->z0, fs->z1);
  const dim3 block(BX, BY);
  const AdamCoarse ac{c, tb, k};
  if (coarse_tile_by_plane()) {
    const dim3 grid = grid_for(fs);
    if (bf16_state)
      compose_coarse_kernel<<<grid, block, 0, st>>>(d, g, grad, ac, (const __nv_bfloat16 *)m, (const __nv_bfloat16 *)v,
                                                  inv_dev, U, out);
    else
      compose_coarse_kernel<<<grid, block, 0, st>>>(d, g, grad, ac, (const float *)m, (const float *)v, inv_dev, U, out);
  } else {
    const long long nzo = fs->z1 - fs->z0, chunks = coarse_march_chunks(nzo), per = (nzo + chunks - 1) / chunks;
    dim3 grid = grid_for(fs);
    grid.z = (unsigned)((nzo + per - 1) / per);
    if (bf16_state)
      compose_coarse_march_kernel<<<grid, block, 0, st>>>(d, g, grad, ac, (const __nv_bfloat16 *)m,
                                                        (const __nv_bfloat16 *)v, inv_dev, U, out, per);
    else
      compose_coarse_march_kernel<<<grid, block, 0, st>>>(d, g, grad, ac, (const float *)m, (const float *)v, inv_dev, U,
                                                        out, per);
  }
  if ((rc = (int)cudaGetLastError())) return rc;
  return ffdp_cuda_coarse_update(fs, m, v, bf16_state, tb, inv_dev, stream);
}

extern "C" int ffdp_cuda_sample_bwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                    const float *M, int ncomp, const float *gout, float *gu, double *gB_dev,
                                    void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (fs->z1 <= fs->z0) {
    if (gB_dev) cudaMemsetAsync(gB_dev, 0, 12 * sizeof(double), st);
    return (int)cudaGetLastError();
  }
  if (!shape_ok(ms, ncomp)) return (int)cudaErrorInvalidValue;
  dim3 grid = grid_for(fs);
  const long long nb = (long long)grid.x * grid.y * grid.z;
  double *part = nullptr;
  if (gB_dev) {
    cudaError_t e = cudaMallocAsync((void **)&part, nb * 12 * sizeof(double), st);
    if (e) return (int)e;
  }
  if (!part && plane_map(fs) && bwd_prefetch()) {
    const dim3 pg = plane_grid(fs, grid);
    const DevWarp d = to_dev(w);
    const Geo g = to_geo(fs, ms);
    if (ncomp == 1) sample_bwd_kernel<1, false, float, true, true><<<pg, BX * BY, 0, st>>>(d, g, u, M, gout, gu, nullptr);
    if (ncomp == 2) sample_bwd_kernel<2, false, float, true, true><<<pg, BX * BY, 0, st>>>(d, g, u, M, gout, gu, nullptr);
    if (ncomp == 3) sample_bwd_kernel<3, false, float, true, true><<<pg, BX * BY, 0, st>>>(d, g, u, M, gout, gu, nullptr);
    return (int)cudaGetLastError();
  }
  if (part)
    launch_bwd<true>(grid, st, to_dev(w), to_geo(fs, ms), u, M, ncomp, gout, gu, part);
  else
    launch_bwd<false>(grid, st, to_dev(w), to_geo(fs, ms), u, M, ncomp, gout, gu, nullptr);
  if (gB_dev) {
    reduce12_kernel<<<12, R12, 0, st>>>(part, nb, gB_dev);
    cudaFreeAsync(part, st);
  }
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_sample_bwd_planes(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                           const float *M, int ncomp, const float *gout, float *gu, double *planes_dev,
                                           void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (fs->z1 <= fs->z0) return 0;
  if (!shape_ok(ms, ncomp)) return (int)cudaErrorInvalidValue;
  const dim3 grid = planes_grid_for(fs), block(BX, BY);
  const long long nxy = (long long)grid.x * grid.y;
  double *part = nullptr;
  cudaError_t e = cudaMallocAsync((void **)&part, nxy * grid.z * 12 * sizeof(double), st);
  if (e) return (int)e;
  const DevWarp d = to_dev(w);
  const Geo g = to_geo(fs, ms);
  if (!u && !gu && ncomp == 1)
    sample_bwd_planes_kernel<1, false><<<grid, block, 0, st>>>(d, g, u, M, gout, gu, part);
  else if (ncomp == 1)
    sample_bwd_planes_kernel<1, true><<<grid, block, 0, st>>>(d, g, u, M, gout, gu, part);
  if (ncomp == 2) sample_bwd_planes_kernel<2, true><<<grid, block, 0, st>>>(d, g, u, M, gout, gu, part);
  if (ncomp == 3) sample_bwd_planes_kernel<3, true><<<grid, block, 0, st>>>(d, g, u, M, gout, gu, part);
  reduce12_planes_kernel<<<grid.z, 12 * 32, 0, st>>>(part, nxy, planes_dev);
  cudaFreeAsync(part, st);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_sample_fwd_u16(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                        const uint16_t *M, ffdp_code16 k, float *out, void *stream) {
  if (fs->z1 <= fs->z0) return 0;
  if (!shape_ok(ms, 1)) return (int)cudaErrorInvalidValue;
  const AddLin none = {{0}, 0};
  if (no_prefetch())
    sample_fwd_kernel<1, uint16_t, false><<<grid_for(fs), dim3(BX, BY), 0, (cudaStream_t)stream>>>(
        to_dev(w), to_geo(fs, ms), u, M, none, out, k);
  else
    sample_fwd_kernel<1, uint16_t><<<grid_for(fs), dim3(BX, BY), 0, (cudaStream_t)stream>>>(to_dev(w), to_geo(fs, ms),
                                                                                            u, M, none, out, k);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_sample_bwd_u16(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                        const uint16_t *M, ffdp_code16 k, const float *gout, float *gu, void *stream) {
  if (fs->z1 <= fs->z0) return 0;
  if (!shape_ok(ms, 1)) return (int)cudaErrorInvalidValue;
  if (!bwd_prefetch())
    sample_bwd_kernel<1, false, uint16_t, false><<<grid_for(fs), dim3(BX, BY), 0, (cudaStream_t)stream>>>(
        to_dev(w), to_geo(fs, ms), u, M, gout, gu, nullptr, k);
  else
    sample_bwd_kernel<1, false, uint16_t><<<grid_for(fs), dim3(BX, BY), 0, (cudaStream_t)stream>>>(
        to_dev(w), to_geo(fs, ms), u, M, gout, gu, nullptr, k);
  return (int)cudaGetLastError();
}
