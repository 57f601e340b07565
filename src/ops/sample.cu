// CUDA implicit composite sampler: out(p) = M(B·[p;1] + S·u(p)). The identity grid is the
// thread index; each thread reads u once and the 8 moving taps, writes one output. The
// backward fuses dL/du with the block-level reduction of the affine gradient.
#include <cuda_runtime.h>
#include "ops/ops_cuda.h"

namespace {

struct DevWarp {
  float B[3][4];
  float S[3][3];
  int interp, pad;
};

struct Taps {
  int i0, i1;
  float f, gmask;
  bool v0, v1;
};

__device__ __forceinline__ Taps axis_linear(float q, int n, int pad) {
  Taps a;
  a.gmask = 1.f;
  if (pad == FFDP_PAD_BORDER) {
    if (!(q >= 0.f)) q = 0.f, a.gmask = 0.f;
    if (q > (float)(n - 1)) q = (float)(n - 1), a.gmask = 0.f;
    a.i0 = min((int)floorf(q), n - 1);
    a.i1 = min(a.i0 + 1, n - 1);
    a.f = q - (float)a.i0;
    a.v0 = a.v1 = true;
  } else {
    float fl = floorf(q);
    if (!(fl >= -2.f && fl <= (float)n + 1.f)) {
      a.i0 = -2, a.i1 = -1, a.f = 0.f, a.v0 = a.v1 = false;
      return a;
    }
    a.i0 = (int)fl;
    a.i1 = a.i0 + 1;
    a.f = q - fl;
    a.v0 = a.i0 >= 0 && a.i0 < n;
    a.v1 = a.i1 >= 0 && a.i1 < n;
  }
  return a;
}

__device__ __forceinline__ void warp_point(const DevWarp &w, int x, int y, int z, const float *u, float q[3]) {
  for (int i = 0; i < 3; i++) {
    float s = fmaf(w.B[i][0], (float)x, fmaf(w.B[i][1], (float)y, fmaf(w.B[i][2], (float)z, w.B[i][3])));
    if (u) s += w.S[i][0] * u[0] + w.S[i][1] * u[1] + w.S[i][2] * u[2];
    q[i] = s;
  }
}

// Value (and gradient w.r.t. q when g != nullptr) of channel c at q.
__device__ __forceinline__ float lookup(const float *__restrict__ M, long long mzlo, int mx, int my, int mz, int ncomp,
                                        int c, const DevWarp &w, const float q[3], float *g) {
  if (w.interp == FFDP_INTERP_NEAREST) {
    if (g) g[0] = g[1] = g[2] = 0.f;
    int ix = (int)floorf(q[0] + 0.5f), iy = (int)floorf(q[1] + 0.5f), iz = (int)floorf(q[2] + 0.5f);
    if (w.pad == FFDP_PAD_BORDER) {
      ix = min(max(ix, 0), mx - 1), iy = min(max(iy, 0), my - 1), iz = min(max(iz, 0), mz - 1);
    } else if (!(q[0] > -2.f && q[0] < mx + 2.f && q[1] > -2.f && q[1] < my + 2.f && q[2] > -2.f && q[2] < mz + 2.f) ||
               ix < 0 || ix >= mx || iy < 0 || iy >= my || iz < 0 || iz >= mz) {
      return 0.f;
    }
    return __ldg(M + (((long long)iz - mzlo) * my + iy) * mx * ncomp + (long long)ix * ncomp + c);
  }
  Taps ax = axis_linear(q[0], mx, w.pad), ay = axis_linear(q[1], my, w.pad), az = axis_linear(q[2], mz, w.pad);
  float v[8];
  const int xs[2] = {ax.i0, ax.i1}, ys[2] = {ay.i0, ay.i1}, zs[2] = {az.i0, az.i1};
  const bool vx[2] = {ax.v0, ax.v1}, vy[2] = {ay.v0, ay.v1}, vz[2] = {az.v0, az.v1};
#pragma unroll
  for (int k = 0; k < 8; k++) {
    int bx = k & 1, by = (k >> 1) & 1, bz = k >> 2;
    v[k] = (vx[bx] && vy[by] && vz[bz])
               ? __ldg(M + ((((long long)zs[bz] - mzlo) * my + ys[by]) * mx + xs[bx]) * ncomp + c)
               : 0.f;
  }
  float fx = ax.f, fy = ay.f, fz = az.f, gx = 1.f - fx, gy = 1.f - fy, gz = 1.f - fz;
  float x00 = gx * v[0] + fx * v[1], x10 = gx * v[2] + fx * v[3];
  float x01 = gx * v[4] + fx * v[5], x11 = gx * v[6] + fx * v[7];
  float y0 = gy * x00 + fy * x10, y1 = gy * x01 + fy * x11;
  if (g) {
    g[0] = ax.gmask * (gz * (gy * (v[1] - v[0]) + fy * (v[3] - v[2])) + fz * (gy * (v[5] - v[4]) + fy * (v[7] - v[6])));
    g[1] = ay.gmask * (gz * (x10 - x00) + fz * (x11 - x01));
    g[2] = az.gmask * (y1 - y0);
  }
  return gz * y0 + fz * y1;
}

struct Geo {
  int nx, ny, nz;
  long long z0, z1, zlo;
  int mx, my, mz;
  long long mzlo;
};

__global__ void sample_fwd_kernel(DevWarp w, Geo g, const float *__restrict__ u, const float *__restrict__ M, int ncomp,
                                  float *__restrict__ out) {
  long long n = (long long)g.nx * g.ny * (g.z1 - g.z0);
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x) {
    int x = (int)(t % g.nx);
    long long r = t / g.nx;
    int y = (int)(r % g.ny);
    int z = (int)(r / g.ny + g.z0);
    long long i = ((z - g.zlo) * g.ny + y) * (long long)g.nx + x;
    float uu[3], q[3];
    if (u) uu[0] = u[3 * i], uu[1] = u[3 * i + 1], uu[2] = u[3 * i + 2];
    warp_point(w, x, y, z, u ? uu : nullptr, q);
    for (int c = 0; c < ncomp; c++) out[i * ncomp + c] = lookup(M, g.mzlo, g.mx, g.my, g.mz, ncomp, c, w, q, nullptr);
  }
}

// Affine-gradient partials are reduced per block in double (warp shuffles, then shared
// memory) and added to gB with one atomic per block and entry.
__global__ void sample_bwd_kernel(DevWarp w, Geo g, const float *__restrict__ u, const float *__restrict__ M, int ncomp,
                                  const float *__restrict__ gout, float *__restrict__ gu, double *gB) {
  double acc[12];
#pragma unroll
  for (int k = 0; k < 12; k++) acc[k] = 0.0;
  long long n = (long long)g.nx * g.ny * (g.z1 - g.z0);
  for (long long t = blockIdx.x * (long long)blockDim.x + threadIdx.x; t < n; t += (long long)gridDim.x * blockDim.x) {
    int x = (int)(t % g.nx);
    long long r = t / g.nx;
    int y = (int)(r % g.ny);
    int z = (int)(r / g.ny + g.z0);
    long long i = ((z - g.zlo) * g.ny + y) * (long long)g.nx + x;
    float uu[3], q[3], gq[3] = {0.f, 0.f, 0.f};
    if (u) uu[0] = u[3 * i], uu[1] = u[3 * i + 1], uu[2] = u[3 * i + 2];
    warp_point(w, x, y, z, u ? uu : nullptr, q);
    for (int c = 0; c < ncomp; c++) {
      float d[3];
      lookup(M, g.mzlo, g.mx, g.my, g.mz, ncomp, c, w, q, d);
      float gc = gout[i * ncomp + c];
      gq[0] += gc * d[0], gq[1] += gc * d[1], gq[2] += gc * d[2];
    }
    if (gu)
      for (int a = 0; a < 3; a++) gu[3 * i + a] = w.S[0][a] * gq[0] + w.S[1][a] * gq[1] + w.S[2][a] * gq[2];
    if (gB) {
      const float p[4] = {(float)x, (float)y, (float)z, 1.f};
#pragma unroll
      for (int a = 0; a < 3; a++)
#pragma unroll
        for (int b = 0; b < 4; b++) acc[a * 4 + b] += (double)gq[a] * p[b];
    }
  }
  if (!gB) return;
  __shared__ double sh[32][12];
  int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
#pragma unroll
  for (int k = 0; k < 12; k++) {
    double v = acc[k];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) sh[wid][k] = v;
  }
  __syncthreads();
  if (threadIdx.x < 12) {
    double s = 0.0;
    for (int k = 0; k < (int)(blockDim.x >> 5); k++) s += sh[k][threadIdx.x];
    atomicAdd(gB + threadIdx.x, s);
  }
}

DevWarp to_dev(const ffdp_warp *w) {
  DevWarp d;
  for (int i = 0; i < 3; i++) {
    for (int j = 0; j < 4; j++) d.B[i][j] = (float)w->B[i][j];
    for (int j = 0; j < 3; j++) d.S[i][j] = (float)w->S[i][j];
  }
  d.interp = w->interp;
  d.pad = w->pad;
  return d;
}

Geo to_geo(const ffdp_slab *fs, const ffdp_slab *ms) {
  Geo g = {(int)fs->nx, (int)fs->ny, (int)fs->nz, fs->z0, fs->z1, fs->zlo, (int)ms->nx, (int)ms->ny, (int)ms->nz, ms->zlo};
  return g;
}

int grid_for(long long n, int block) {
  long long b = (n + block - 1) / block;
  return (int)(b < 1 ? 1 : b > 65535LL * 8 ? 65535LL * 8 : b);
}

}  // namespace

extern "C" int ffdp_cuda_sample_fwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                    const float *M, int ncomp, float *out, void *stream) {
  long long n = fs->nx * fs->ny * (fs->z1 - fs->z0);
  if (n <= 0) return 0;
  sample_fwd_kernel<<<grid_for(n, 256), 256, 0, (cudaStream_t)stream>>>(to_dev(w), to_geo(fs, ms), u, M, ncomp, out);
  return (int)cudaGetLastError();
}

extern "C" int ffdp_cuda_sample_bwd(const ffdp_warp *w, const ffdp_slab *fs, const float *u, const ffdp_slab *ms,
                                    const float *M, int ncomp, const float *gout, float *gu, double *gB_dev,
                                    void *stream) {
  long long n = fs->nx * fs->ny * (fs->z1 - fs->z0);
  cudaStream_t st = (cudaStream_t)stream;
  if (gB_dev) cudaMemsetAsync(gB_dev, 0, 12 * sizeof(double), st);
  if (n <= 0) return (int)cudaGetLastError();
  // Fewer blocks when reducing gB, so the per-block atomics stay negligible.
  int blocks = gB_dev ? (grid_for(n, 256) < 1056 ? grid_for(n, 256) : 1056) : grid_for(n, 256);
  sample_bwd_kernel<<<blocks, 256, 0, st>>>(to_dev(w), to_geo(fs, ms), u, M, ncomp, gout, gu, gB_dev);
  return (int)cudaGetLastError();
}
