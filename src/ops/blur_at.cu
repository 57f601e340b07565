// The scalar Gaussian of ffdp_cuda_blur evaluated only at the points a later read needs: a
// grid of chosen columns x rows x planes. A pyramid level of shrink s resamples its smoothed
// source at two points per level voxel and axis, so computing the smoothing everywhere
// (what ffdp_cuda_blur does) does s/2 times the work per axis that the level reads; at the
// coarse levels of a gigavoxel image (s = 16, 32; radii 16, 32) that was most of a build.
//
// Three passes into compact arrays: x at the chosen columns of every row of the planes the z
// taps reach, then y at the chosen rows, then z at the chosen planes, written into `out` at
// the points' places in ffdp_cuda_blur's layout (nothing else of out is touched). Each value is
// ffdp_cuda_blur's: x, then y, then z, each a sum from tap 0 up of float weights times values,
// taps outside the image or the readable planes left out (ffdp_cuda_blur adds them as zeros:
// the same sums). gpu_ops compares the two bit for bit.
#include "ops/cuda_common.cuh"
#include "ops/kernels1d.h"
#include "ops/ops_cuda.h"

namespace {

constexpr int AT_MAXR = FFDP_MAX_RADIUS;

struct AtTaps {
  float w[3][2 * AT_MAXR + 1];
  int r[3];
};

// X[p][y][j] = Σd w[d] in(xs[j] + d - r, y, plane pa + p)
__global__ void blur_at_x(AtTaps t, int nx, int ny, long long P, const float *__restrict__ in, const int *__restrict__ xs,
                          int nxs, float *__restrict__ X) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= nxs) return;
  const int y = blockIdx.y, r = t.r[0], x = xs[j];
  const float *row = in + (long long)blockIdx.z * P + (long long)y * nx;
  const int lo = x - r < 0 ? r - x : 0, hi = x + r >= nx ? nx - 1 - x + r : 2 * r;
  float s = 0.f;
  for (int d = lo; d <= hi; d++) s += t.w[0][d] * __ldg(row + x + d - r);
  X[((long long)blockIdx.z * ny + y) * nxs + j] = s;
}

// Y[p][k][j] = Σd w[d] X[p][ys[k] + d - r][j]
__global__ void blur_at_y(AtTaps t, int ny, const float *__restrict__ X, const int *__restrict__ ys, int nys, int nxs,
                          float *__restrict__ Y) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= nxs) return;
  const int k = blockIdx.y, r = t.r[1], y = ys[k];
  const float *col = X + (long long)blockIdx.z * ny * nxs + j;
  const int lo = y - r < 0 ? r - y : 0, hi = y + r >= ny ? ny - 1 - y + r : 2 * r;
  float s = 0.f;
  for (int d = lo; d <= hi; d++) s += t.w[1][d] * col[(long long)(y + d - r) * nxs];
  Y[((long long)blockIdx.z * nys + k) * nxs + j] = s;
}

// out at (xs[j], ys[k], zs[q]) = Σd w[d] Y[zs[q] + d - r - pa][k][j], planes in [pa, pb)
__global__ void blur_at_z(AtTaps t, int nx, long long P, long long zlo, long long pa, long long pb,
                          const float *__restrict__ Y, const int *__restrict__ xs, const int *__restrict__ ys, int nys,
                          const long long *__restrict__ zs, int nxs, float *__restrict__ out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= nxs) return;
  const int k = blockIdx.y, r = t.r[2];
  const long long z = zs[blockIdx.z];
  const long long lo = z - r < pa ? pa - (z - r) : 0, hi = z + r >= pb ? pb - 1 - z + r : 2 * r;
  const long long step = (long long)nys * nxs;
  const float *col = Y + (long long)k * nxs + j;
  float s = 0.f;
  for (long long d = lo; d <= hi; d++) s += t.w[2][d] * col[(z + d - r - pa) * step];
  out[(z - zlo) * P + (long long)ys[k] * nx + xs[j]] = s;
}

}  // namespace

extern "C" long long ffdp_cuda_blur1_at_scratch(const ffdp_slab *s, const double sigma[3], int nxs, int nys,
                                                long long zfirst, long long zlast) {
  const long long rz = ffdp_blur_radius(sigma[2]);
  const long long zs0 = s->zlo > 0 ? s->zlo : 0, zs1 = s->zhi < s->nz ? s->zhi : s->nz;
  const long long pa = zfirst - rz > zs0 ? zfirst - rz : zs0, pb = zlast + rz + 1 < zs1 ? zlast + rz + 1 : zs1;
  return pb > pa ? (pb - pa) * ((long long)s->ny * nxs + (long long)nys * nxs) : 0;
}

extern "C" int ffdp_cuda_blur1_at(const ffdp_slab *s, const float *in, const double sigma[3], const int *xs, int nxs,
                                  const int *ys, int nys, const long long *zs, int nzs, long long zfirst,
                                  long long zlast, float *out, float *scratch, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (nxs < 1 || nys < 1 || nzs < 1) return 0;
  if (nys > 65535 || nzs > 65535 || s->ny > 65535) return (int)cudaErrorInvalidValue;
  AtTaps t;
  for (int a = 0; a < 3; a++) {
    double w[2 * FFDP_MAX_RADIUS + 1];
    t.r[a] = ffdp_gauss_weights(sigma[a], w);  // ffdp_cuda_blur's float weights of the same doubles
    for (int d = 0; d <= 2 * t.r[a]; d++) t.w[a][d] = (float)w[d];
  }
  const long long zs0 = s->zlo > 0 ? s->zlo : 0, zs1 = s->zhi < s->nz ? s->zhi : s->nz;
  const long long pa = zfirst - t.r[2] > zs0 ? zfirst - t.r[2] : zs0;
  const long long pb = zlast + t.r[2] + 1 < zs1 ? zlast + t.r[2] + 1 : zs1;
  if (pb <= pa || pb - pa > 65535) return (int)cudaErrorInvalidValue;
  const long long P = s->nx * s->ny;
  float *X = scratch, *Y = scratch + (pb - pa) * s->ny * nxs;
  const int tb = 128;
  const unsigned gx = (unsigned)((nxs + tb - 1) / tb);
  blur_at_x<<<dim3(gx, (unsigned)s->ny, (unsigned)(pb - pa)), tb, 0, st>>>(t, (int)s->nx, (int)s->ny, P,
                                                                          in + (pa - s->zlo) * P, xs, nxs, X);
  blur_at_y<<<dim3(gx, (unsigned)nys, (unsigned)(pb - pa)), tb, 0, st>>>(t, (int)s->ny, X, ys, nys, nxs, Y);
  blur_at_z<<<dim3(gx, (unsigned)nys, (unsigned)nzs), tb, 0, st>>>(t, (int)s->nx, P, s->zlo, pa, pb, Y, xs, ys, nys, zs,
                                                                   nxs, out);
  return (int)cudaGetLastError();
}
