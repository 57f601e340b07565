// The coarse-moment kernels' per-thread bodies (src/ops/coarse_adam.cuh) run on the host,
// thread by thread in the kernels' launch order, against the CPU operator
// (reg_coarse_adam): the same bits for the step and both moments, fp32 and bf16 moments, whole
// grids with odd and even sides and slabs with halos; the step in the kernels' block-tiled forms
// (CoarseTile: the step's own 32 x 8 blocks and the composition's 32 x 4, a block a plane and
// blocks marching chunks of planes), gradient in and step out elsewhere. What a GPU would add (scheduling) cannot
// change a thread's arithmetic; this checks the indexing and the rounding without one.
#include <string.h>
#include <vector>
#include "ops/coarse_adam.cuh"
#include "reg/reg_internal.h"
#include "check.h"

using namespace ffdp_cuda;

static rng_t rng = {2024u};
static float frand() { return (float)rng_range(&rng, -1, 1); }

// A tile as a block starts it: NaN, so that a read of a point never filled shows.
template <int TX, int TY>
static void nan_tile(CoarseTile<TX, TY> &t) {
  for (int e = 0; e < 3; e++)
    for (int p = 0; p < CoarseTile<TX, TY>::NP; p++) t.m[e][p] = t.s[e][p] = NAN;
}

// The block-tiled step (CoarseTile) as the kernels run it: each TX x TY block of a plane fills
// its tile (points never filled stay NaN, so a read of one shows), then steps its voxels.
template <int TX, int TY, typename S>
static void tile_steps(const ffdp_slab &s, const Coarse &c, const float *gin, float *gout, const S *m, const S *v,
                       const float *tb, float inv, AdamConst k) {
  for (long long z = c.z0; z < c.z1; z++)
    for (long long by = 0; by < c.ny; by += TY)
      for (long long bx = 0; bx < c.nx; bx += TX) {
        CoarseTile<TX, TY> t;
        nan_tile(t);
        if (inv != 0.f)
          for (int p = 0; p < TX * TY; p++) coarse_tile_point(c, m, v, tb, k, bx >> 1, by >> 1, z, p, t);
        for (long long y = by; y < by + TY && y < c.ny; y++)
          for (long long x = bx; x < bx + TX && x < c.nx; x++) {
            const long long o = 3 * (((z - s.zlo) * s.ny + y) * s.nx + x);
            coarse_step_tile(t, gin + o, inv, k, bx >> 1, by >> 1, x, y, z, gout + o);
          }
      }
}

// The marching kernels' form: each TX x TY block of a chunk of `per` planes starts its tile with
// the chunk's first plane, then per plane reads the next coarse plane ahead and steps. The read
// ahead runs first here, so that a slot it wrongly shared with the plane's step would show as
// other bits; the tile is NaN when a block starts.
template <int TX, int TY, typename S>
static void march_steps(const ffdp_slab &s, const Coarse &c, const float *gin, float *gout, const S *m, const S *v,
                        const float *tb, float inv, AdamConst k, long long per) {
  for (long long ch = 0; c.z0 + ch * per < c.z1; ch++) {
    const ChunkPlanes cp = chunk_planes(c.z0, c.z1, per, ch);
    for (long long by = 0; by < c.ny; by += TY)
      for (long long bx = 0; bx < c.nx; bx += TX) {
        CoarseTile<TX, TY> t;
        nan_tile(t);
        if (inv != 0.f)
          for (int p = 0; p < TX * TY; p++) coarse_tile_point(c, m, v, tb, k, bx >> 1, by >> 1, cp.za, p, t);
        for (long long z = cp.za; z < cp.zb; z++) {
          if (inv != 0.f)
            for (int p = 0; p < TX * TY; p++) coarse_tile_ahead(c, m, v, tb, k, bx >> 1, by >> 1, z, cp.zb, p, t);
          for (long long y = by; y < by + TY && y < c.ny; y++)
            for (long long x = bx; x < bx + TX && x < c.nx; x++) {
              const long long o = 3 * (((z - s.zlo) * s.ny + y) * s.nx + x);
              coarse_step_tile(t, gin + o, inv, k, bx >> 1, by >> 1, x, y, z, gout + o);
            }
        }
      }
  }
}

// One slab: `steps` steps of the CPU operator and of the kernel bodies from the same inputs.
template <typename S>
static void check_slab(const ffdp_slab &s, int bf16, int steps) {
  const long long P = s.nx * s.ny, stored = P * (s.zhi - s.zlo), nc = reg_moment_values(&s, 1);
  reg_moments mo;
  reg_moments_alloc(&mo, 1, nc, bf16, 1);
  std::vector<S> m(nc), v(nc);
  memset(m.data(), 0, nc * sizeof(S)), memset(v.data(), 0, nc * sizeof(S));
  std::vector<float> tb(nc), d(3 * stored), dc(3 * stored), dk(3 * stored);
  const Coarse c = coarse_of(s.nx, s.ny, s.nz, s.zlo, s.z0, s.z1);
  int same_d = 1, same_m = 1;
  for (int t = 1; t <= steps; t++) {
    for (auto &x : d) x = frand();
    dc = d, dk = d;
    const float inv = 0.5f + 0.25f * t;
    CHECK(reg_coarse_adam(&s, dc.data(), &mo, t, 0.3, inv) == 0, "out of memory");
    const AdamConst k = adam_const(t, 0.3);
    for (long long kk = c.k0; kk < c.k1; kk++)  // launch 1
      for (long long j = 0; j < c.ly; j++)
        for (long long i = 0; i < c.lx; i++) coarse_restrict_point(c, dk.data(), tb.data(), inv, i, j, kk);
    // launch 2 in the kernels' tiled forms, the gradient in and the step out elsewhere: the
    // step's own launch (32 x 8 blocks) and the composition's (32 x 4)
    std::vector<float> d8(3 * stored, 0.f), d4(3 * stored, 0.f);
    tile_steps<32, 8>(s, c, dk.data(), d8.data(), m.data(), v.data(), tb.data(), inv, k);
    tile_steps<32, 4>(s, c, dk.data(), d4.data(), m.data(), v.data(), tb.data(), inv, k);
    // and marching chunks of planes, both block shapes (the launches take 32 chunks; here chunks
    // of 1, 2, 3 and 8 planes, so that chunks start on odd planes as well as even ones)
    for (long long per : {1, 2, 3, 8}) {
      std::vector<float> e8(3 * stored, 0.f), e4(3 * stored, 0.f);
      march_steps<32, 8>(s, c, dk.data(), e8.data(), m.data(), v.data(), tb.data(), inv, k, per);
      march_steps<32, 4>(s, c, dk.data(), e4.data(), m.data(), v.data(), tb.data(), inv, k, per);
      const long long own = 3 * (s.z0 - s.zlo) * P, n = 3 * (s.z1 - s.z0) * P;
      same_d &= !memcmp(e8.data() + own, dc.data() + own, n * sizeof(float)) &&
                !memcmp(e4.data() + own, dc.data() + own, n * sizeof(float));
    }
    for (long long J = 0; J < nc; J++) coarse_update_value(tb.data(), m.data(), v.data(), J);  // launch 3
    const long long own = 3 * (s.z0 - s.zlo) * P, n = 3 * (s.z1 - s.z0) * P;
    same_d &= !memcmp(d8.data() + own, dc.data() + own, n * sizeof(float)) &&
              !memcmp(d4.data() + own, dc.data() + own, n * sizeof(float));
    same_m &= !memcmp(mo.m, m.data(), nc * sizeof(S)) && !memcmp(mo.v, v.data(), nc * sizeof(S));
  }
  printf("%lldx%lldx%lld planes [%lld, %lld) stored [%lld, %lld), %s moments: step %s, moments %s\n", (long long)s.nx,
         (long long)s.ny, (long long)s.nz, (long long)s.z0, (long long)s.z1, (long long)s.zlo, (long long)s.zhi,
         bf16 ? "bf16" : "fp32", same_d ? "same bits" : "DIFFER", same_m ? "same bits" : "DIFFER");
  CHECK(same_d && same_m, "kernel bodies vs the CPU operator");
  free(mo.m);
}

int main() {
  const long long grids[][3] = {{9, 8, 11}, {12, 7, 10}, {7, 5, 1}, {33, 17, 20}, {70, 13, 12}};
  for (auto &g : grids) {
    const ffdp_slab w = ffdp_slab_whole(g[0], g[1], g[2]);
    check_slab<float>(w, 0, 3);
    check_slab<__nv_bfloat16>(w, 1, 3);
    if (g[2] >= 10)
      for (int r = 0; r < 2; r++) { /* the two slabs of two ranks, halo 3 */
        const ffdp_slab s = ffdp_slab_split(g[0], g[1], g[2], r, 2, 3);
        check_slab<float>(s, 0, 2);
        check_slab<__nv_bfloat16>(s, 1, 2);
      }
  }
  return check_done("test_coarse_adam_host");
}
