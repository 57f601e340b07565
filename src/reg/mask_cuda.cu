// Masks of the CUDA stages (mask_cuda.h): upload per level, and the scored voxels per
// evaluation when a moving mask must follow the warp.
#include <cuda_runtime.h>
#include <string.h>
#include "core/comm_internal.h"
#include "core/err.h"
#include "ops/ops_cuda.h"
#include "reg/mask_cuda.h"
#include "reg/step_cuda.h"

namespace {

// out[i] = (samp ? samp[i] > 0.5 : 1) && (fixed ? fixed[i] : 1) on the stored voxels (out may be
// NULL: count only); *count += the kept voxels of [own0, own1), the owned planes.
__global__ void combine_kernel(long long n, long long own0, long long own1, const float *__restrict__ samp,
                               const uint8_t *__restrict__ fixed, uint8_t *__restrict__ out,
                               unsigned long long *count) {
  unsigned c = 0;
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    const uint8_t k = (!samp || samp[i] > 0.5f) && (!fixed || fixed[i]);
    if (out) out[i] = k;
    c += k && i >= own0 && i < own1;
  }
  for (int o = 16; o > 0; o >>= 1) c += __shfl_down_sync(0xffffffffu, c, o);
  if ((threadIdx.x & 31) == 0 && c) atomicAdd(count, (unsigned long long)c);
}

// Runs the combination and brings the owned count to the host (waits for the stream).
int combine(const ffdp_slab *s, const float *samp, const uint8_t *fixed, uint8_t *out, double *count) {
  const long long P = s->nx * s->ny, n = ffdp_slab_stored(s);
  unsigned long long *dc = nullptr, hc = 0;
  int rc = (int)cudaMallocAsync((void **)&dc, sizeof *dc, nullptr);
  if (!rc) rc = (int)cudaMemsetAsync(dc, 0, sizeof *dc, nullptr);
  if (!rc && n > 0) {
    const long long blocks = (n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096;
    combine_kernel<<<(unsigned)blocks, 256>>>(n, (s->z0 - s->zlo) * P, (s->z1 - s->zlo) * P, samp, fixed, out, dc);
    rc = (int)cudaGetLastError();
  }
  if (!rc) rc = (int)cudaMemcpy(&hc, dc, sizeof hc, cudaMemcpyDeviceToHost);
  if (dc) cudaFreeAsync(dc, nullptr);
  *count = (double)hc;
  return rc;
}

}  // namespace

extern "C" int reg_cuda_mask_open(reg_cuda_mask *m, const reg_layout *lay, void *block, const reg_level *L,
                                  const ffdp_slab *s, const ffdp_comm *comm, int rc, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  memset(m, 0, sizeof *m);
  char *p = (char *)block;
  const long long P = s->nx * s->ny, n = ffdp_slab_stored(s);
  if (!rc && L->fmask && lay->mask[REG_MASK_FIXED] >= 0) {
    m->fixed = (uint8_t *)(p + lay->off[lay->mask[REG_MASK_FIXED]]);
    rc = reg_cuda_copy_up(m->fixed, L->fmask + s->zlo * P, (size_t)n);
    if (!rc) rc = combine(s, nullptr, m->fixed, nullptr, &m->fixed_count);
  }
  if (!rc && L->mmask && lay->mask[REG_MASK_MOVING] >= 0) {
    m->moving = (float *)(p + lay->off[lay->mask[REG_MASK_MOVING]]);
    m->scored = (uint8_t *)(p + lay->off[lay->mask[REG_MASK_SCORED]]);
    m->ms = L->ms;
    rc = reg_cuda_copy_up(m->moving, L->mmask->data, (size_t)ffdp_volume_nvox(L->mmask) * sizeof(float));
  }
  if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
  if (m->fixed) c->sum(c, &m->fixed_count, 1);
  return 0;
}

extern "C" int reg_cuda_mask_scored(const reg_cuda_mask *m, const ffdp_comm *comm, const ffdp_warp *w,
                                    const ffdp_slab *s, const float *u, float *scratch, const uint8_t **mask,
                                    int64_t *count, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  if (!m->moving) {
    *mask = m->fixed;
    *count = m->fixed ? (int64_t)m->fixed_count : s->nx * s->ny * s->nz;
    return 0;
  }
  ffdp_warp wn = *w; /* as reg_effective_mask: nearest, nothing outside the moving grid */
  wn.interp = FFDP_INTERP_NEAREST;
  wn.pad = FFDP_PAD_ZERO;
  ffdp_slab store = *s;
  store.z0 = s->zlo, store.z1 = s->zhi;
  double cnt = 0;
  int rc = ffdp_cuda_sample_fwd(&wn, &store, u, &m->ms, m->moving, 1, scratch, nullptr);
  if (!rc) rc = combine(s, scratch, m->fixed, m->scored, &cnt);
  if ((rc = reg_cuda_agreed(c, rc, err))) return rc;
  c->sum(c, &cnt, 1);
  *mask = m->scored;
  *count = (int64_t)cnt;
  return 0;
}
