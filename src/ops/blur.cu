// CUDA separable Gaussian: one pass per axis (x and y over the planes the z pass needs, then z
// over the owned planes). Each pass is coalesced along x; taps live in constant memory.
// Three passes move 3x the minimal bytes; a fused z-streaming version is the next step.
// Zero padding as the CPU operator.
#include "ops/cuda_common.cuh"
#include "ops/kernels1d.h"
#include "ops/ops_cuda.h"
#include <math.h>

using namespace ffdp_cuda;

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
  blur_march<<<dim3((unsigned)((row + MB - 1) / MB), (unsigned)(zb - za)), MB, smem_y, st>>>(
      r[1], row, row, plane, row, 0, s->ny, 0, s->ny, 1, out + (za - s->zlo) * plane, tmp + (za - s->zlo) * plane);
  // z: columns are (x, c) of a row, one grid row per y; positions are planes relative to zlo
  blur_march<<<dim3((unsigned)((row + MB - 1) / MB), (unsigned)s->ny), MB, smem_z, st>>>(
      r[2], row, row, row, plane, s->z0 - s->zlo, s->z1 - s->zlo, za - s->zlo, zb - s->zlo, 2, tmp, out);
}

// Host side: the same normalized taps as the CPU operator (kernels1d.c), in float.
int taps(double sigma, float *w) {
  double d[2 * FFDP_MAX_RADIUS + 1];
  const int r = ffdp_gauss_weights(sigma, d);
  for (int k = 0; k <= 2 * r; k++) w[k] = (float)d[k];
  return r;
}

}  // namespace

extern "C" int ffdp_cuda_blur(const ffdp_slab *s, const float *in, int ncomp, const double sigma[3], float *out,
                              float *tmp, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  float w[3][2 * FFDP_MAX_RADIUS + 1];
  int r[3];
  for (int a = 0; a < 3; a++) r[a] = taps(sigma[a], w[a]);
  cudaMemcpyToSymbolAsync(c_w, w, sizeof w, 0, cudaMemcpyHostToDevice, st);
  // planes the z pass reads: the owned ones plus r[2] on each side, within what is stored
  long long za = s->z0 - r[2] > s->zlo ? s->z0 - r[2] : s->zlo, zb = s->z1 + r[2] < s->zhi ? s->z1 + r[2] : s->zhi;
  if (s->z1 <= s->z0) return 0;
  if (ncomp == 3) run_axes<3>(s, r, za, zb, in, out, tmp, st);
  else if (ncomp == 1) run_axes<1>(s, r, za, zb, in, out, tmp, st);
  else return (int)cudaErrorInvalidValue;
  return (int)cudaGetLastError();
}
