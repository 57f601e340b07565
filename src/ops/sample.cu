// CUDA implicit composite sampler: out(p) = M(B·[p;1] + S·u(p)). The identity grid is the
// thread index; each thread reads u once and the 8 moving taps, writes one output. The
// backward fuses dL/du with the block-level reduction of the affine gradient.
#include <cuda_runtime.h>
#include "ops/adam_step.cuh"
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

__device__ __forceinline__ void warp_point(const DevWarp &w, int x, int y, int z, const float *u, double q[3]) {
#pragma unroll
  for (int i = 0; i < 3; i++) {
    double s = w.B[i][0] * x + w.B[i][1] * y + w.B[i][2] * z + w.B[i][3];
    if (u) s += w.S[i][0] * (double)u[0] + w.S[i][1] * (double)u[1] + w.S[i][2] * (double)u[2];
    q[i] = s;
  }
}

// Values of channels c0..c0+nc-1 at q (and gradients w.r.t. q of channel c0 when g != nullptr).
// The taps are found once and shared by every channel (fields have three).
__device__ __forceinline__ void lookup(const float *__restrict__ M, long long mzlo, int mx, int my, int mz, int ncomp,
                                       int c0, int nc, const DevWarp &w, const double q[3], float *val, float *g) {
  if (w.interp == FFDP_INTERP_NEAREST) {
    if (g) g[0] = g[1] = g[2] = 0.f;
    bool inside = q[0] > -2.0 && q[0] < mx + 2.0 && q[1] > -2.0 && q[1] < my + 2.0 && q[2] > -2.0 && q[2] < mz + 2.0;
    double qc[3] = {fmin(fmax(q[0], -4.0), mx + 4.0), fmin(fmax(q[1], -4.0), my + 4.0), fmin(fmax(q[2], -4.0), mz + 4.0)};
    int ix = (int)floor(qc[0] + 0.5), iy = (int)floor(qc[1] + 0.5), iz = (int)floor(qc[2] + 0.5);
    bool zero = false;
    if (w.pad == FFDP_PAD_BORDER)
      ix = min(max(ix, 0), mx - 1), iy = min(max(iy, 0), my - 1), iz = min(max(iz, 0), mz - 1);
    else
      zero = !inside || ix < 0 || ix >= mx || iy < 0 || iy >= my || iz < 0 || iz >= mz;
    const float *p = M + (((long long)iz - mzlo) * my + iy) * mx * ncomp + (long long)ix * ncomp + c0;
    for (int c = 0; c < nc; c++) val[c] = zero ? 0.f : __ldg(p + c);
    return;
  }
  Taps ax = axis_linear(q[0], mx, w.pad), ay = axis_linear(q[1], my, w.pad), az = axis_linear(q[2], mz, w.pad);
  const int xs[2] = {ax.i0, ax.i1}, ys[2] = {ay.i0, ay.i1}, zs[2] = {az.i0, az.i1};
  const bool vx[2] = {ax.v0, ax.v1}, vy[2] = {ay.v0, ay.v1}, vz[2] = {az.v0, az.v1};
  long long off[8];
  bool ok[8];
#pragma unroll
  for (int k = 0; k < 8; k++) {
    int bx = k & 1, by = (k >> 1) & 1, bz = k >> 2;
    ok[k] = vx[bx] && vy[by] && vz[bz];
    off[k] = ((((long long)zs[bz] - mzlo) * my + ys[by]) * mx + xs[bx]) * ncomp + c0;
  }
  const float fx = ax.f, fy = ay.f, fz = az.f, gx = 1.f - fx, gy = 1.f - fy, gz = 1.f - fz;
  for (int c = 0; c < nc; c++) {
    float v[8];
#pragma unroll
    for (int k = 0; k < 8; k++) v[k] = ok[k] ? __ldg(M + off[k] + c) : 0.f;
    float x00 = gx * v[0] + fx * v[1], x10 = gx * v[2] + fx * v[3];
    float x01 = gx * v[4] + fx * v[5], x11 = gx * v[6] + fx * v[7];
    float y0 = gy * x00 + fy * x10, y1 = gy * x01 + fy * x11;
    if (g && c == 0) {
      g[0] = ax.gmask * (gz * (gy * (v[1] - v[0]) + fy * (v[3] - v[2])) + fz * (gy * (v[5] - v[4]) + fy * (v[7] - v[6])));
      g[1] = ay.gmask * (gz * (x10 - x00) + fz * (x11 - x01));
      g[2] = az.gmask * (y1 - y0);
    }
    val[c] = gz * y0 + fz * y1;
  }
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
// block's partial affine gradient covers many voxels.
constexpr int BX = 32, BY = 4, MAXZB = 16;

// ncomp <= 3 (images and displacement fields).
__global__ void sample_fwd_kernel(DevWarp w, Geo g, const float *__restrict__ u, const float *__restrict__ M, int ncomp,
                                  AddLin lin, float *__restrict__ out) {
  const int x = blockIdx.x * BX + threadIdx.x, y = blockIdx.y * BY + threadIdx.y;
  if (x >= g.nx || y >= g.ny) return;
  for (long long z = g.z0 + blockIdx.z; z < g.z1; z += gridDim.z) {
    long long i = ((z - g.zlo) * g.ny + y) * (long long)g.nx + x;
    float uu[3], val[3];
    double q[3];
    if (u) uu[0] = __ldg(u + 3 * i), uu[1] = __ldg(u + 3 * i + 1), uu[2] = __ldg(u + 3 * i + 2);
    warp_point(w, x, y, (int)z, u ? uu : nullptr, q);
    lookup(M, g.mzlo, g.mx, g.my, g.mz, ncomp, 0, ncomp, w, q, val, nullptr);
    if (lin.on)
#pragma unroll
      for (int c = 0; c < 3; c++) val[c] += lin.t[3 * c] * uu[0] + lin.t[3 * c + 1] * uu[1] + lin.t[3 * c + 2] * uu[2];
    for (int c = 0; c < ncomp; c++) out[i * ncomp + c] = val[c];
  }
}

// The deformable update's step and composition in one pass: per voxel, the Adam step of the
// smoothed gradient (d, never stored), then out = d + U(B·p + S·d). Same arithmetic as
// adam_dev_kernel followed by compose with T = I.
template <typename S>
__global__ void compose_adam_kernel(DevWarp w, Geo g, const float *__restrict__ grad, S *__restrict__ m,
                                    S *__restrict__ v, const float *__restrict__ inv_dev, AdamConst k,
                                    const float *__restrict__ U, float *__restrict__ out) {
  const int x = blockIdx.x * BX + threadIdx.x, y = blockIdx.y * BY + threadIdx.y;
  if (x >= g.nx || y >= g.ny) return;
  const float inv_mx = *inv_dev;
  for (long long z = g.z0 + blockIdx.z; z < g.z1; z += gridDim.z) {
    long long i = ((z - g.zlo) * g.ny + y) * (long long)g.nx + x;
    float d[3], val[3];
    double q[3];
#pragma unroll
    for (int c = 0; c < 3; c++) d[c] = inv_mx == 0.f ? 0.f : adam_elem(__ldg(grad + 3 * i + c), inv_mx, m, v, 3 * i + c, k);
    warp_point(w, x, y, (int)z, d, q);
    lookup(U, g.mzlo, g.mx, g.my, g.mz, 3, 0, 3, w, q, val, nullptr);
#pragma unroll
    for (int c = 0; c < 3; c++) out[i * 3 + c] = val[c] + d[c];
  }
}

// dL/du per voxel; the affine gradient is reduced per block (warp shuffles, then shared
// memory) into partial[block][12], summed afterwards in block order: deterministic.
// AFF: with the affine gradient. Without it (the deformable stages) the twelve double
// accumulators are not compiled in: 126 -> fewer registers, more warps in flight.
template <bool AFF>
__global__ void sample_bwd_kernel(DevWarp w, Geo g, const float *__restrict__ u, const float *__restrict__ M, int ncomp,
                                  const float *__restrict__ gout, float *__restrict__ gu, double *partial) {
  double acc[12];
#pragma unroll
  for (int k = 0; k < 12; k++) acc[k] = 0.0;
  const int x = blockIdx.x * BX + threadIdx.x, y = blockIdx.y * BY + threadIdx.y;
  if (x < g.nx && y < g.ny) {
    for (long long z = g.z0 + blockIdx.z; z < g.z1; z += gridDim.z) {
      long long i = ((z - g.zlo) * g.ny + y) * (long long)g.nx + x;
      float uu[3], gq[3] = {0.f, 0.f, 0.f};
      double q[3];
      if (u) uu[0] = __ldg(u + 3 * i), uu[1] = __ldg(u + 3 * i + 1), uu[2] = __ldg(u + 3 * i + 2);
      warp_point(w, x, y, (int)z, u ? uu : nullptr, q);
      for (int c = 0; c < ncomp; c++) {
        float d[3], val;
        lookup(M, g.mzlo, g.mx, g.my, g.mz, ncomp, c, 1, w, q, &val, d);
        float gc = gout[i * ncomp + c];
        gq[0] += gc * d[0], gq[1] += gc * d[1], gq[2] += gc * d[2];
      }
      if (gu)
        for (int a = 0; a < 3; a++)
          gu[3 * i + a] = (float)(w.S[0][a] * gq[0] + w.S[1][a] * gq[1] + w.S[2][a] * gq[2]);
      if (AFF) {
        const double p[4] = {(double)x, (double)y, (double)z, 1.0};
#pragma unroll
        for (int a = 0; a < 3; a++)
#pragma unroll
          for (int b = 0; b < 4; b++) acc[a * 4 + b] += (double)gq[a] * p[b];
      }
    }
  }
  if (!AFF) return;
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
    const long long b = ((long long)blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
    partial[b * 12 + t] = s;
  }
}

// One warp per entry, lanes stride over blocks in a fixed pattern: deterministic.
__global__ void reduce12_kernel(const double *partial, long long nblocks, double *out) {
  const int k = threadIdx.x >> 5, lane = threadIdx.x & 31;
  double s = 0.0;
  for (long long b = lane; b < nblocks; b += 32) s += partial[b * 12 + k];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if (lane == 0) out[k] = s;
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

dim3 grid_for(const ffdp_slab *fs, int one_plane_per_block = 0) {
  long long nzo = fs->z1 - fs->z0, zb = one_plane_per_block ? nzo : nzo < MAXZB ? nzo : MAXZB;
  return dim3((unsigned)((fs->nx + BX - 1) / BX), (unsigned)((fs->ny + BY - 1) / BY), (unsigned)(zb > 0 ? zb : 1));
}

// Per-plane affine gradient: with one plane per block row (grid.z = planes), plane z's sum
// is its blocks' partials added in block order, one warp per entry: the same bits for that
// plane whatever slab it sits in.
__global__ void reduce12_planes_kernel(const double *partial, long long nxy, double *out) {
  const int k = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const long long z = blockIdx.x;
  double s = 0.0;
  for (long long b = lane; b < nxy; b += 32) s += partial[(z * nxy + b) * 12 + k];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  if (lane == 0) out[z * 12 + k] = s;
}

}  // namespace

extern "C" int ffdp_cuda_sample_fwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                    const float *M, int ncomp, float *out, void *stream) {
  if (fs->z1 <= fs->z0) return 0;
  if (ncomp < 1 || ncomp > 3) return (int)cudaErrorInvalidValue;
  AddLin none = {{0}, 0};
  sample_fwd_kernel<<<grid_for(fs), dim3(BX, BY), 0, (cudaStream_t)stream>>>(to_dev(w), to_geo(fs, ms), u, M, ncomp, none,
                                                                             out);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_compose_fwd(const ffdp_warp *w, const double T[3][3], const ffdp_slab *fs, const float *v,
                                     const ffdp_slab *us, const float *U, float *out, void *stream) {
  if (fs->z1 <= fs->z0) return 0;
  AddLin lin;
  lin.on = 1;
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 3; b++) lin.t[3 * a + b] = (float)T[a][b];
  sample_fwd_kernel<<<grid_for(fs), dim3(BX, BY), 0, (cudaStream_t)stream>>>(to_dev(w), to_geo(fs, us), v, U, 3, lin, out);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_compose_adam(const ffdp_warp *w, const ffdp_slab *fs, const float *grad, void *m, void *v,
                                      int bf16_state, const float *inv_dev, int t, double step, const float *U,
                                      float *out, void *stream) {
  if (fs->z1 <= fs->z0) return 0;
  const AdamConst k = adam_const(t, step);
  cudaStream_t st = (cudaStream_t)stream;
  if (bf16_state)
    compose_adam_kernel<<<grid_for(fs), dim3(BX, BY), 0, st>>>(to_dev(w), to_geo(fs, fs), grad, (__nv_bfloat16 *)m,
                                                               (__nv_bfloat16 *)v, inv_dev, k, U, out);
  else
    compose_adam_kernel<<<grid_for(fs), dim3(BX, BY), 0, st>>>(to_dev(w), to_geo(fs, fs), grad, (float *)m, (float *)v,
                                                               inv_dev, k, U, out);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_sample_bwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                    const float *M, int ncomp, const float *gout, float *gu, double *gB_dev,
                                    void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (fs->z1 <= fs->z0) {
    if (gB_dev) cudaMemsetAsync(gB_dev, 0, 12 * sizeof(double), st);
    return (int)cudaGetLastError();
  }
  dim3 grid = grid_for(fs);
  const long long nb = (long long)grid.x * grid.y * grid.z;
  double *part = nullptr;
  if (gB_dev) {
    cudaError_t e = cudaMallocAsync((void **)&part, nb * 12 * sizeof(double), st);
    if (e) return (int)e;
  }
  if (part)
    sample_bwd_kernel<true><<<grid, dim3(BX, BY), 0, st>>>(to_dev(w), to_geo(fs, ms), u, M, ncomp, gout, gu, part);
  else
    sample_bwd_kernel<false><<<grid, dim3(BX, BY), 0, st>>>(to_dev(w), to_geo(fs, ms), u, M, ncomp, gout, gu, nullptr);
  if (gB_dev) {
    reduce12_kernel<<<1, 12 * 32, 0, st>>>(part, nb, gB_dev);
    cudaFreeAsync(part, st);
  }
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_sample_bwd_planes(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                           const float *M, int ncomp, const float *gout, float *gu, double *planes_dev,
                                           void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (fs->z1 <= fs->z0) return 0;
  dim3 grid = grid_for(fs, 1);
  const long long nxy = (long long)grid.x * grid.y;
  double *part = nullptr;
  cudaError_t e = cudaMallocAsync((void **)&part, nxy * grid.z * 12 * sizeof(double), st);
  if (e) return (int)e;
  sample_bwd_kernel<true><<<grid, dim3(BX, BY), 0, st>>>(to_dev(w), to_geo(fs, ms), u, M, ncomp, gout, gu, part);
  reduce12_planes_kernel<<<grid.z, 12 * 32, 0, st>>>(part, nxy, planes_dev);
  cudaFreeAsync(part, st);
  return (int)cudaGetLastError();
}
