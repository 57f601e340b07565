// The intensity moments of moments.c (weighted_moments) per plane on the device, for images
// whose planes are already there (the pyramid's kept source planes): reading 8 GB on the host
// took ~0.9 s at 1 Gvox. The plane partials come back to the host and are folded in plane
// order as before, so the result does not depend on how ranks split.
#include <cuda_runtime.h>
#include "reg/reg_internal.h"

namespace {

// The host's arithmetic exactly: each row summed left to right by one thread, the rows of a
// plane added in order by another, every product and sum rounded on its own (no fused
// multiply-adds), so the device's partials are the host's bits and a registration does not
// depend on where its moments were taken.
__global__ void row_sums_kernel(long long nx, long long ny, long long nz, const float *__restrict__ planes,
                                double *__restrict__ rows) {
  const long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (r >= ny * nz) return;
  const float *row = planes + r * nx;
  double r0 = 0, rx = 0, rxx = 0;
  for (long long x = 0; x < nx; x++) {
    const double w = row[x];
    if (!(w > 0)) continue;
    const double wx = __dmul_rn(w, (double)x);
    r0 = __dadd_rn(r0, w), rx = __dadd_rn(rx, wx), rxx = __dadd_rn(rxx, __dmul_rn(wx, (double)x));
  }
  rows[3 * r] = r0, rows[3 * r + 1] = rx, rows[3 * r + 2] = rxx;
}

__global__ void plane_sums_kernel(long long ny, long long nz, long long z0, const double *__restrict__ rows,
                                  double *__restrict__ part) {
  const long long zl = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (zl >= nz) return;
  const double zz = (double)(z0 + zl);
  double s[10] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  for (long long y = 0; y < ny; y++) {
    const double *q = rows + 3 * (zl * ny + y), r0 = q[0], rx = q[1], rxx = q[2], yy = (double)y;
    s[0] = __dadd_rn(s[0], r0), s[1] = __dadd_rn(s[1], rx), s[2] = __dadd_rn(s[2], __dmul_rn(r0, yy));
    s[3] = __dadd_rn(s[3], __dmul_rn(r0, zz)), s[4] = __dadd_rn(s[4], rxx), s[5] = __dadd_rn(s[5], __dmul_rn(rx, yy));
    s[6] = __dadd_rn(s[6], __dmul_rn(rx, zz)), s[7] = __dadd_rn(s[7], __dmul_rn(__dmul_rn(r0, yy), yy));
    s[8] = __dadd_rn(s[8], __dmul_rn(__dmul_rn(r0, yy), zz)), s[9] = __dadd_rn(s[9], __dmul_rn(__dmul_rn(r0, zz), zz));
  }
  for (int k = 0; k < 10; k++) part[zl * 10 + k] = s[k];
}

}  // namespace

extern "C" int reg_cuda_plane_moments(const float *planes, int64_t nx, int64_t ny, int64_t z0, int64_t z1,
                                      double *part) {
  const long long nz = z1 - z0;
  if (nz <= 0) return 0;
  double *rows = nullptr, *d = nullptr;
  int rc = (int)cudaMalloc((void **)&rows, ((size_t)(ny * nz) * 3 + (size_t)nz * 10) * sizeof(double));
  if (!rc) {
    d = rows + (size_t)(ny * nz) * 3;
    row_sums_kernel<<<(unsigned)((ny * nz + 127) / 128), 128>>>(nx, ny, nz, planes, rows);
    plane_sums_kernel<<<(unsigned)((nz + 127) / 128), 128>>>(ny, nz, z0, rows, d);
    rc = (int)cudaGetLastError();
  }
  if (!rc) rc = (int)cudaMemcpy(part, d, (size_t)nz * 10 * sizeof(double), cudaMemcpyDeviceToHost);
  if (rows) cudaFree(rows);
  return rc;
}
