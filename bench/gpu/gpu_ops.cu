// Checks every CUDA operator against its CPU operator and times it (llm.c style: one
// program, reference next to kernel). Prints a table: minimal bytes per voxel, median time,
// achieved GB/s and the fraction of the device-to-device copy bandwidth measured in the
// same run, relative error vs CPU, and device memory the op allocates beyond its inputs.
// usage: gpu_ops [N]   (cube side, default 256)
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <algorithm>
#include <string>
#include <vector>
#include "ops/ops.h"
#include "ops/ops_cuda.h"
#include "ops/code16.h"
#include "reg/reg_internal.h"

#define CK(x)                                                                                    \
  do {                                                                                           \
    cudaError_t e_ = (cudaError_t)(x);                                                           \
    if (e_) {                                                                                    \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));        \
      exit(1);                                                                                   \
    }                                                                                            \
  } while (0)

static unsigned long long rng = 0x1234567ULL;
static float urand(float lo, float hi) {
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  double u = (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
  float v = lo + (hi - lo) * (float)u;
  return v == 0.f ? 1e-3f : v;
}

static double rel_err(const float *a, const float *b, long long n) {  // ||a-b|| / ||b||, NaN fails
  double num = 0, den = 0;
  for (long long i = 0; i < n; i++) {
    if (!isfinite(a[i])) return INFINITY;
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

static long long count_differing(const float *a, const float *b, long long n) {  // bit patterns
  long long d = 0;
  for (long long i = 0; i < n; i++) d += memcmp(a + i, b + i, 4) != 0;
  return d;
}

static double rel_err_d(const double *a, const double *b, long long n) {
  double num = 0, den = 0;
  for (long long i = 0; i < n; i++) {
    if (!isfinite(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}

template <class Fn>
static float median_ms(Fn fn, int reps = 20) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  if (const char *e = getenv("GPU_OPS_REPS"))  // fewer calls under a profiler (ncu)
    if (atoi(e) > 0) reps = atoi(e);
  for (int i = 0; i < (reps < 3 ? 1 : 3); i++) fn();
  CK(cudaDeviceSynchronize());
  std::vector<float> t;
  for (int i = 0; i < reps; i++) {
    CK(cudaEventRecord(a));
    fn();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

static size_t pool_high_and_reset() {
  cudaMemPool_t pool;
  int dev;
  cudaGetDevice(&dev);
  cudaDeviceGetDefaultMemPool(&pool, dev);
  unsigned long long high = 0, zero = 0;
  cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high);
  cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero);
  return (size_t)high;
}

struct Row {
  std::string name;  // owned: labels are often built in a loop's local buffer
  double bpv, ms, err, extra_mb;
};
static std::vector<Row> rows;

int main(int argc, char **argv) {
  const long long N = argc > 1 ? atoll(argv[1]) : 256, n = N * N * N;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  // what the registration's device selection does; FFDP_POOL_DEFAULT=1 leaves the pool as is
  const char *pd = getenv("FFDP_POOL_DEFAULT");
  if (!(pd && atoi(pd))) CK(ffdp_cuda_ops_setup(0));
  printf("device: %s, %d SMs, L2 %d MB; volume %lld^3 = %.1f M voxels\n", prop.name, prop.multiProcessorCount,
         prop.l2CacheSize >> 20, N, n / 1e6);
  // copy bandwidth: bytes read + bytes written over time
  float *ca, *cb;
  const size_t cbytes = (size_t)1 << 30;
  CK(cudaMalloc(&ca, cbytes));
  CK(cudaMalloc(&cb, cbytes));
  CK(cudaMemset(ca, 1, cbytes));
  float copy_ms = median_ms([&] { cudaMemcpyAsync(cb, ca, cbytes, cudaMemcpyDeviceToDevice); });
  const double copy_gbs = 2.0 * cbytes / (copy_ms * 1e6);
  printf("device-to-device copy: %.0f GB/s\n", copy_gbs);
  CK(cudaFree(ca));
  CK(cudaFree(cb));

  // host data: fixed F, moving M (same size, slightly different geometry), displacement u
  std::vector<float> F(n), M(n), u(3 * n), g(n);
  for (long long i = 0; i < n; i++) F[i] = urand(0.05f, 1.f), g[i] = urand(-1.f, 1.f);
  for (long long i = 0; i < n; i++) M[i] = 0.5f * F[i] + 0.5f * urand(0.05f, 1.f);
  // a smooth displacement (what registration produces: gathers stay coherent), +-2 voxels,
  // plus a little noise so no two voxels share a fractional offset
  for (long long z = 0; z < N; z++)
    for (long long y = 0; y < N; y++)
      for (long long x = 0; x < N; x++) {
        long long i = (z * N + y) * N + x;
        u[3 * i] = 2.f * sinf(0.05f * y + 0.3f) + urand(-0.01f, 0.01f);
        u[3 * i + 1] = 1.5f * cosf(0.04f * z) + urand(-0.01f, 0.01f);
        u[3 * i + 2] = 1.8f * sinf(0.03f * x + 0.07f * y) + urand(-0.01f, 0.01f);
      }
  float *dF, *dM, *du, *dg, *dout, *dgu, *dtmp;
  CK(cudaMalloc(&dF, n * 4));
  CK(cudaMalloc(&dM, n * 4));
  CK(cudaMalloc(&du, 3 * n * 4));
  CK(cudaMalloc(&dg, n * 4));
  CK(cudaMalloc(&dout, 3 * n * 4));
  CK(cudaMalloc(&dgu, 3 * n * 4));
  CK(cudaMalloc(&dtmp, 3 * n * 4));
  CK(cudaMemcpy(dF, F.data(), n * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dM, M.data(), n * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(du, u.data(), 3 * n * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dg, g.data(), n * 4, cudaMemcpyHostToDevice));
  ffdp_slab s = ffdp_slab_whole(N, N, N);
  std::vector<float> ref(3 * n), got(3 * n);
  auto poison = [&](float *d, long long cnt) { CK(cudaMemset(d, 0xff, cnt * 4)); };  // NaN pattern

  // --- sampler: oblique affine (small rotation, 0.9 scale), displacement in mm, 1 mm voxels
  ffdp_warp w;
  memset(&w, 0, sizeof w);
  const double th = 0.1, c = cos(th), sn = sin(th), sc = 0.95;
  double cx = N / 2.0;
  w.B[0][0] = sc * c, w.B[0][1] = -sc * sn, w.B[1][0] = sc * sn, w.B[1][1] = sc * c, w.B[2][2] = sc;
  for (int a = 0; a < 3; a++) {
    w.B[a][3] = cx - (w.B[a][0] + w.B[a][1] + w.B[a][2]) * cx + 0.3 * (a + 1);
    w.S[a][a] = 1.0;
  }
  w.interp = FFDP_INTERP_LINEAR, w.pad = FFDP_PAD_ZERO;
  ffdp_sample_fwd_f32(&w, &s, u.data(), &s, M.data(), 1, ref.data());
  poison(dout, n);
  CK(ffdp_cuda_sample_fwd(&w, &s, du, &s, dM, 1, dout, 0));
  CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
  double e_fwd = rel_err(got.data(), ref.data(), n);
  pool_high_and_reset();
  float t_fwd = median_ms([&] { ffdp_cuda_sample_fwd(&w, &s, du, &s, dM, 1, dout, 0); });
  rows.push_back({"sample fwd (affine+u)", 20, t_fwd, e_fwd, pool_high_and_reset() / 1e6});
  // the samplers with FFDP_SAMPLE_PF=0 (no kernel loads the displacement a step ahead) against
  // the default: values differing in `cnt` floats at `dst`, and the time
  // (env_ab: the same for any variable, e.g. FFDP_SAMPLE_ZB, the z-blocks of the launch grid)
  auto env_ab = [&](const char *var, const char *name, const char *val, double bytes, float *dst, long long cnt,
                    auto fn) {
    std::vector<float> a(cnt), b(cnt);
    CK(fn());
    CK(cudaMemcpy(a.data(), dst, cnt * 4, cudaMemcpyDeviceToHost));
    setenv(var, val, 1);
    poison(dst, cnt);
    CK(fn());
    CK(cudaMemcpy(b.data(), dst, cnt * 4, cudaMemcpyDeviceToHost));
    double diff = 0;
    for (long long i = 0; i < cnt; i++) diff += memcmp(&a[i], &b[i], 4) != 0;
    float t = median_ms([&] { fn(); });
    unsetenv(var);
    rows.push_back({name, bytes, t, diff, 0.0});
  };
  auto pf_ab = [&](const char *name, const char *val, double bytes, float *dst, long long cnt, auto fn) {
    env_ab("FFDP_SAMPLE_PF", name, val, bytes, dst, cnt, fn);
  };
  pf_ab("sample fwd, u not loaded ahead (FFDP_SAMPLE_PF=0; vs default: values differing)", "0", 20, dout, n,
        [&] { return ffdp_cuda_sample_fwd(&w, &s, du, &s, dM, 1, dout, 0); });
  double gB[3][4], *dgB;
  CK(cudaMalloc(&dgB, 12 * sizeof(double)));
  ffdp_sample_bwd_f32(&w, &s, u.data(), &s, M.data(), 1, g.data(), ref.data(), gB, NULL);
  poison(dgu, 3 * n);
  CK(ffdp_cuda_sample_bwd(&w, &s, du, &s, dM, 1, dg, dgu, dgB, 0));
  double gBd[12];
  CK(cudaMemcpy(got.data(), dgu, 3 * n * 4, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(gBd, dgB, sizeof gBd, cudaMemcpyDeviceToHost));
  double e_bwd = rel_err(got.data(), ref.data(), 3 * n), nb = 0, db = 0;
  for (int k = 0; k < 12; k++) nb += (gBd[k] - gB[k / 4][k % 4]) * (gBd[k] - gB[k / 4][k % 4]), db += gB[k / 4][k % 4] * gB[k / 4][k % 4];
  double e_gB = sqrt(nb / db);
  float t_bwd = median_ms([&] { ffdp_cuda_sample_bwd(&w, &s, du, &s, dM, 1, dg, dgu, dgB, 0); });
  rows.push_back({"sample bwd (du, dA)", 32, t_bwd, fmax(e_bwd, e_gB), pool_high_and_reset() / 1e6});
  {  // the deformable stages' backward: du only (no affine gradient)
    poison(dgu, 3 * n);
    CK(ffdp_cuda_sample_bwd(&w, &s, du, &s, dM, 1, dg, dgu, NULL, 0));
    CK(cudaMemcpy(got.data(), dgu, 3 * n * 4, cudaMemcpyDeviceToHost));
    double e = rel_err(got.data(), ref.data(), 3 * n);
    float t = median_ms([&] { ffdp_cuda_sample_bwd(&w, &s, du, &s, dM, 1, dg, dgu, NULL, 0); });
    rows.push_back({"sample bwd (du only)", 32, t, e, pool_high_and_reset() / 1e6});
  }
  pf_ab("sample bwd (du, dA), u not loaded ahead (FFDP_SAMPLE_PF=0; values differing)", "0", 32, dgu, 3 * n,
        [&] { return ffdp_cuda_sample_bwd(&w, &s, du, &s, dM, 1, dg, dgu, dgB, 0); });
  pf_ab("sample bwd (du only), u not loaded ahead (FFDP_SAMPLE_PF=0; values differing)", "0", 32, dgu, 3 * n,
        [&] { return ffdp_cuda_sample_bwd(&w, &s, du, &s, dM, 1, dg, dgu, NULL, 0); });
  for (const char *zb : {"16", "64"}) {  // z-blocks of the grid (default 32): march length vs threads
    char nm[2][96];
    snprintf(nm[0], sizeof nm[0], "sample fwd, %s z-blocks (FFDP_SAMPLE_ZB; values differing)", zb);
    snprintf(nm[1], sizeof nm[1], "sample bwd (du only), %s z-blocks (values differing)", zb);
    env_ab("FFDP_SAMPLE_ZB", nm[0], zb, 20, dout, n, [&] { return ffdp_cuda_sample_fwd(&w, &s, du, &s, dM, 1, dout, 0); });
    env_ab("FFDP_SAMPLE_ZB", nm[1], zb, 32, dgu, 3 * n,
           [&] { return ffdp_cuda_sample_bwd(&w, &s, du, &s, dM, 1, dg, dgu, NULL, 0); });
  }
  {  // affine gradient per plane (what ranks fold in plane order), on a slab with halos
    ffdp_slab sl = s;
    sl.z0 = N / 3, sl.z1 = 2 * N / 3, sl.zlo = sl.z0 - 4, sl.zhi = sl.z1 + 4;
    const long long P = (long long)N * N, np = sl.z1 - sl.z0;
    std::vector<double> pref(np * 12), pgot(np * 12);
    ffdp_sample_bwd_planes_f32(&w, &sl, u.data() + 3 * sl.zlo * P, &s, M.data(), 1, g.data() + sl.zlo * P, NULL,
                               pref.data(), NULL);
    double *dpl;
    CK(cudaMalloc(&dpl, np * 12 * sizeof(double)));
    CK(ffdp_cuda_sample_bwd_planes(&w, &sl, du + 3 * sl.zlo * P, &s, dM, 1, dg + sl.zlo * P, NULL, dpl, 0));
    CK(cudaMemcpy(pgot.data(), dpl, np * 12 * sizeof(double), cudaMemcpyDeviceToHost));
    double e_pl = rel_err_d(pgot.data(), pref.data(), np * 12);
    rows.push_back({"sample bwd dA per plane, slab (check only)", 0, 0, e_pl, pool_high_and_reset() / 1e6});
    CK(cudaFree(dpl));
  }
  {  // what the linear stages run: no displacement, no du, the affine gradient per plane (8 B per
     // voxel: the incoming gradient and the image, read once each)
    std::vector<double> pref(N * 12), pgot(N * 12);
    ffdp_sample_bwd_planes_f32(&w, &s, NULL, &s, M.data(), 1, g.data(), NULL, pref.data(), NULL);
    double *dpl;
    CK(cudaMalloc(&dpl, N * 12 * sizeof(double)));
    CK(ffdp_cuda_sample_bwd_planes(&w, &s, NULL, &s, dM, 1, dg, NULL, dpl, 0));
    CK(cudaMemcpy(pgot.data(), dpl, N * 12 * sizeof(double), cudaMemcpyDeviceToHost));
    const double e = rel_err_d(pgot.data(), pref.data(), N * 12);
    pool_high_and_reset();
    const float t = median_ms([&] { ffdp_cuda_sample_bwd_planes(&w, &s, NULL, &s, dM, 1, dg, NULL, dpl, 0); });
    rows.push_back({"sample bwd, linear stage (dA per plane; no u, no du)", 8, t, e, pool_high_and_reset() / 1e6});
    CK(cudaFree(dpl));
  }

  // --- images as 16-bit codes (--image-precision u16): the device's codes and decoded values
  // against the host's (bits; error = values differing), and the samplers reading codes against
  // the CPU sampler reading the decoded image (fwd 18 B per voxel: u 12, codes 2, out 4; bwd
  // 30: u, codes, incoming gradient, du)
  {
    const ffdp_code16 k = ffdp_code16_for_range(0.0, 1.0);
    std::vector<uint16_t> qh(n), qd(n);
    std::vector<float> Md(n), gd(n);
    ffdp_code16_encode_f32(M.data(), n, k, qh.data());
    ffdp_code16_round_f32(M.data(), n, k, Md.data());
    uint16_t *dq;
    CK(cudaMalloc(&dq, n * 2));
    CK(ffdp_cuda_encode16(n, dM, k, dq, 0));
    CK(cudaMemcpy(qd.data(), dq, n * 2, cudaMemcpyDeviceToHost));
    double diff = 0;
    for (long long i = 0; i < n; i++) diff += qd[i] != qh[i];
    float t = median_ms([&] { ffdp_cuda_encode16(n, dM, k, dq, 0); });
    rows.push_back({"encode 16-bit codes (vs host: codes differing)", 6, t, diff, pool_high_and_reset() / 1e6});
    poison(dout, n);
    CK(ffdp_cuda_decode16(n, dq, k, dout, 0));
    CK(cudaMemcpy(gd.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    diff = 0;
    for (long long i = 0; i < n; i++) diff += memcmp(&gd[i], &Md[i], 4) != 0;
    t = median_ms([&] { ffdp_cuda_decode16(n, dq, k, dout, 0); });
    rows.push_back({"decode 16-bit codes (vs host: values differing)", 6, t, diff, pool_high_and_reset() / 1e6});
    {  // unaligned starts (1, 3) and aligned ones (4, 8) with a tail of three: both kernels' shares
      const long long m = n - 9;
      const long long at[2][2] = {{1, 3}, {4, 8}};  // image offset, code offset
      std::vector<uint16_t> q2(m);
      std::vector<float> f2(m);
      diff = 0;
      for (auto &o : at) {
        CK(ffdp_cuda_encode16(m, dM + o[0], k, dq + o[1], 0));
        CK(cudaMemcpy(q2.data(), dq + o[1], m * 2, cudaMemcpyDeviceToHost));
        for (long long i = 0; i < m; i++) diff += q2[i] != qh[i + o[0]];
        poison(dout, n);
        CK(ffdp_cuda_decode16(m, dq + o[1], k, dout + o[0], 0));
        CK(cudaMemcpy(f2.data(), dout + o[0], m * 4, cudaMemcpyDeviceToHost));
        for (long long i = 0; i < m; i++) diff += memcmp(&f2[i], &Md[i + o[0]], 4) != 0;
      }
      CK(ffdp_cuda_encode16(n, dM, k, dq, 0));  // the whole image's codes again, for the rows below
      rows.push_back({"encode/decode 16-bit codes, unaligned and with tails (check only: values differing)", 6, 0.0, diff,
                      0.0});
    }
    ffdp_sample_fwd_f32(&w, &s, u.data(), &s, Md.data(), 1, ref.data());
    poison(dout, n);
    CK(ffdp_cuda_sample_fwd_u16(&w, &s, du, &s, dq, k, dout, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    double e = rel_err(got.data(), ref.data(), n);
    t = median_ms([&] { ffdp_cuda_sample_fwd_u16(&w, &s, du, &s, dq, k, dout, 0); });
    rows.push_back({"sample fwd, image as 16-bit codes (vs CPU on the decoded image)", 18, t, e, pool_high_and_reset() / 1e6});
    ffdp_sample_bwd_f32(&w, &s, u.data(), &s, Md.data(), 1, g.data(), ref.data(), NULL, NULL);
    poison(dgu, 3 * n);
    CK(ffdp_cuda_sample_bwd_u16(&w, &s, du, &s, dq, k, dg, dgu, 0));
    CK(cudaMemcpy(got.data(), dgu, 3 * n * 4, cudaMemcpyDeviceToHost));
    e = rel_err(got.data(), ref.data(), 3 * n);
    t = median_ms([&] { ffdp_cuda_sample_bwd_u16(&w, &s, du, &s, dq, k, dg, dgu, 0); });
    rows.push_back({"sample bwd (du only), image as 16-bit codes (vs CPU)", 30, t, e, pool_high_and_reset() / 1e6});
    pf_ab("sample fwd, 16-bit codes, u not loaded ahead (values differing)", "0", 18, dout, n,
          [&] { return ffdp_cuda_sample_fwd_u16(&w, &s, du, &s, dq, k, dout, 0); });
    pf_ab("sample bwd (du only), 16-bit codes, u not loaded ahead (FFDP_SAMPLE_PF=0; values differing)", "0", 30, dgu,
          3 * n,
          [&] { return ffdp_cuda_sample_bwd_u16(&w, &s, du, &s, dq, k, dg, dgu, 0); });
    CK(cudaFree(dq));
  }

  // --- warp composition (fused): out = u∘(B p + S u) + T·u, border padding, u composed with itself
  {
    ffdp_warp cw = w;
    cw.pad = FFDP_PAD_BORDER;
    const double T[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    ffdp_compose_fwd_f32(&cw, T, &s, u.data(), &s, u.data(), ref.data());
    poison(dgu, 3 * n);
    CK(ffdp_cuda_compose_fwd(&cw, T, &s, du, &s, du, dgu, 0));
    CK(cudaMemcpy(got.data(), dgu, 3 * n * 4, cudaMemcpyDeviceToHost));
    double e_cmp = rel_err(got.data(), ref.data(), 3 * n);
    pool_high_and_reset();
    float t_cmp = median_ms([&] { ffdp_cuda_compose_fwd(&cw, T, &s, du, &s, du, dgu, 0); });
    rows.push_back({"compose fwd (u∘φ + u)", 36, t_cmp, e_cmp, pool_high_and_reset() / 1e6});
    pf_ab("compose fwd, u not loaded ahead (values differing)", "0", 36, dgu, 3 * n,
          [&] { return ffdp_cuda_compose_fwd(&cw, T, &s, du, &s, du, dgu, 0); });
    for (const char *zb : {"16", "32"}) {
      char nm[96];
      snprintf(nm, sizeof nm, "compose fwd, %s z-blocks (FFDP_SAMPLE_ZB; values differing)", zb);
      env_ab("FFDP_SAMPLE_ZB", nm, zb, 36, dgu, 3 * n, [&] { return ffdp_cuda_compose_fwd(&cw, T, &s, du, &s, du, dgu, 0); });
    }
  }

  // --- MSE
  double lc = ffdp_mse_f32(&s, F.data(), M.data(), NULL, 1.0 / n, ref.data()), lg;
  poison(dout, n);
  CK(ffdp_cuda_mse(&s, dF, dM, NULL, 1.0 / n, dout, &lg, 0));
  CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
  double e_mse = fmax(rel_err(got.data(), ref.data(), n), fabs(lg - lc) / fabs(lc));
  pool_high_and_reset();
  float t_mse = median_ms([&] { ffdp_cuda_mse(&s, dF, dM, NULL, 1.0 / n, dout, &lg, 0); });
  rows.push_back({"mse fwd+bwd", 12, t_mse, e_mse, pool_high_and_reset() / 1e6});

  // --- LNCC box/gauss
  // Box windows take lncc_box.cu's kernel; rows 2, 4 and 5 measure lncc.cu's march kernel on
  // box windows (FFDP_LNCC_KERNEL=march): k = 7 and 9 with its z running sums, and row 2 with
  // its rings (FFDP_LNCC_RS=0). Gaussian windows always take the march kernel.
  const int wins[5] = {5, 9, 5, 7, 9};
  const ffdp_window_kind kinds[5] = {FFDP_WINDOW_BOX, FFDP_WINDOW_BOX, FFDP_WINDOW_GAUSS, FFDP_WINDOW_BOX, FFDP_WINDOW_BOX};
  const char *lnames[5] = {"lncc k=5 box fwd+bwd", "lncc k=9 box fwd+bwd, march kernel, rings (FFDP_LNCC_RS=0)",
                           "lncc k=5 gauss fwd+bwd", "lncc k=7 box fwd+bwd, march kernel, z running sums",
                           "lncc k=9 box fwd+bwd, march kernel, z running sums"};
  for (int v = 0; v < 5; v++) {
    if (v == 1) setenv("FFDP_LNCC_RS", "0", 1);
    if (v == 1 || v >= 3) setenv("FFDP_LNCC_KERNEL", "march", 1);
    ffdp_lncc_params lp = {wins[v], kinds[v], 1e-5};
    lc = ffdp_lncc_f32(&lp, &s, F.data(), M.data(), NULL, 1.0 / n, ref.data());
    poison(dout, n);
    CK(ffdp_cuda_lncc(&lp, &s, dF, dM, NULL, 1.0 / n, dout, &lg, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    double e = fmax(rel_err(got.data(), ref.data(), n), fabs(lg - lc) / fabs(lc));
    pool_high_and_reset();
    float t = median_ms([&] { ffdp_cuda_lncc(&lp, &s, dF, dM, NULL, 1.0 / n, dout, &lg, 0); });
    rows.push_back({lnames[v], 12, t, e, pool_high_and_reset() / 1e6});
    unsetenv("FFDP_LNCC_RS");
    unsetenv("FFDP_LNCC_KERNEL");
  }
  // the march kernel's z-chunks: 4b14786's rule (four blocks per SM, FFDP_LNCC_ZCHUNK=old)
  // against the waves rule; a plane's sums do not depend on where its chunk starts, so the
  // same gradient bits
  setenv("FFDP_LNCC_KERNEL", "march", 1);
  for (int v : {0, 4}) {
    ffdp_lncc_params lp = {wins[v], kinds[v], 1e-5};
    std::vector<float> a(n);
    CK(ffdp_cuda_lncc(&lp, &s, dF, dM, NULL, 1.0 / n, dout, &lg, 0));
    CK(cudaMemcpy(a.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    setenv("FFDP_LNCC_ZCHUNK", "old", 1);
    poison(dout, n);
    CK(ffdp_cuda_lncc(&lp, &s, dF, dM, NULL, 1.0 / n, dout, &lg, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    double diff = 0;
    for (long long i = 0; i < n; i++) diff += memcmp(&a[i], &got[i], 4) != 0;
    pool_high_and_reset();
    float t = median_ms([&] { ffdp_cuda_lncc(&lp, &s, dF, dM, NULL, 1.0 / n, dout, &lg, 0); });
    unsetenv("FFDP_LNCC_ZCHUNK");
    rows.push_back({v ? "lncc k=9 box, march kernel, z running sums, old z-chunks (FFDP_LNCC_ZCHUNK=old; vs waves: values differing)"
                      : "lncc k=5 box, march kernel, old z-chunks (FFDP_LNCC_ZCHUNK=old; vs waves: values differing)",
                    12, t, diff, pool_high_and_reset() / 1e6});
  }
  unsetenv("FFDP_LNCC_KERNEL");
  {  // both gradients in one pass (SyN): against the CPU operator called twice, F and M swapped
    ffdp_lncc_params lp = {5, FFDP_WINDOW_BOX, 1e-5};
    std::vector<float> refF(n), gotF(n);
    lc = ffdp_lncc_f32(&lp, &s, F.data(), M.data(), NULL, 1.0 / n, ref.data());
    ffdp_lncc_f32(&lp, &s, M.data(), F.data(), NULL, 1.0 / n, refF.data());
    float *dgF;
    CK(cudaMalloc(&dgF, n * 4));
    poison(dout, n), poison(dgF, n);
    CK(ffdp_cuda_lncc2(&lp, &s, dF, dM, NULL, 1.0 / n, dgF, dout, &lg, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(gotF.data(), dgF, n * 4, cudaMemcpyDeviceToHost));
    double e = fmax(fmax(rel_err(got.data(), ref.data(), n), rel_err(gotF.data(), refF.data(), n)), fabs(lg - lc) / fabs(lc));
    pool_high_and_reset();
    float t = median_ms([&] { ffdp_cuda_lncc2(&lp, &s, dF, dM, NULL, 1.0 / n, dgF, dout, &lg, 0); });
    rows.push_back({"lncc k=5 box fwd + both grads", 16, t, e, pool_high_and_reset() / 1e6});
    CK(cudaFree(dgF));
  }
  {  // box windows: the lean kernel (lncc_box.cu, default) and lncc.cu's march kernel
     // (FFDP_LNCC_KERNEL=march), each against the CPU, k = 3, 5, 7, 9, gM alone and both gradients
    std::vector<float> refF(n), gotF(n);
    float *dgF;
    CK(cudaMalloc(&dgF, n * 4));
    for (int k : {5, 3, 7, 9}) {
      ffdp_lncc_params lp = {k, FFDP_WINDOW_BOX, 1e-5};
      lc = ffdp_lncc_f32(&lp, &s, F.data(), M.data(), NULL, 1.0 / n, ref.data());
      ffdp_lncc_f32(&lp, &s, M.data(), F.data(), NULL, 1.0 / n, refF.data());
      for (const char *kern : {"lean", "march"}) {
        if (!strcmp(kern, "march")) setenv("FFDP_LNCC_KERNEL", "march", 1);
        for (int both = 0; both < 2; both++) {
          poison(dout, n), poison(dgF, n);
          CK(ffdp_cuda_lncc2(&lp, &s, dF, dM, NULL, 1.0 / n, both ? dgF : NULL, dout, &lg, 0));
          CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
          double e = fmax(rel_err(got.data(), ref.data(), n), fabs(lg - lc) / fabs(lc));
          if (both) {
            CK(cudaMemcpy(gotF.data(), dgF, n * 4, cudaMemcpyDeviceToHost));
            e = fmax(e, rel_err(gotF.data(), refF.data(), n));
          }
          float t = median_ms([&] { ffdp_cuda_lncc2(&lp, &s, dF, dM, NULL, 1.0 / n, both ? dgF : NULL, dout, &lg, 0); });
          char nm[128];
          snprintf(nm, sizeof nm, "lncc k=%d box %s, %s kernel%s", k, both ? "fwd + both grads" : "fwd+bwd", kern,
                   strcmp(kern, "march") ? "" : " (FFDP_LNCC_KERNEL=march)");
          rows.push_back({nm, both ? 16.0 : 12.0, t, e, 0.0});
        }
        unsetenv("FFDP_LNCC_KERNEL");
      }
    }
    CK(cudaFree(dgF));
  }

  {  // the lean box kernel on grids its tiles do not divide, thinner than its z-window, with a
     // mask: 203x117x37, 19x23x5 (one partial tile, 5 planes for a 9-plane window) and 33x17x12,
     // k = 3 .. 9, both gradients, against the CPU
    double worst = 0;
    for (int g = 0; g < 3; g++) {
      const long long gx = g == 0 ? 203 : g == 1 ? 19 : 33, gy = g == 0 ? 117 : g == 1 ? 23 : 17,
                      gz = g == 0 ? 37 : g == 1 ? 5 : 12, gn = gx * gy * gz;
      const ffdp_slab gsl = ffdp_slab_whole(gx, gy, gz);
      std::vector<float> gf(gn), gm(gn), rM(gn), rF(gn), oM(gn), oF(gn);
      std::vector<uint8_t> gk(gn);
      for (long long i = 0; i < gn; i++) gf[i] = urand(0.f, 1.f), gm[i] = urand(0.f, 1.f), gk[i] = urand(0.f, 1.f) < 0.9f;
      float *d[4];
      uint8_t *dk;
      for (auto &p : d) CK(cudaMalloc(&p, gn * 4));
      CK(cudaMalloc(&dk, gn));
      CK(cudaMemcpy(d[0], gf.data(), gn * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(d[1], gm.data(), gn * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(dk, gk.data(), gn, cudaMemcpyHostToDevice));
      for (int k : {3, 5, 7, 9}) {
        ffdp_lncc_params lp = {k, FFDP_WINDOW_BOX, 1e-5};
        const double lr = ffdp_lncc_f32(&lp, &gsl, gf.data(), gm.data(), gk.data(), 1.0 / gn, rM.data());
        ffdp_lncc_f32(&lp, &gsl, gm.data(), gf.data(), gk.data(), 1.0 / gn, rF.data());
        poison(d[2], gn), poison(d[3], gn);
        double lgot;
        CK(ffdp_cuda_lncc2(&lp, &gsl, d[0], d[1], dk, 1.0 / gn, d[3], d[2], &lgot, 0));
        CK(cudaMemcpy(oM.data(), d[2], gn * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(oF.data(), d[3], gn * 4, cudaMemcpyDeviceToHost));
        worst = fmax(worst, fmax(fmax(rel_err(oM.data(), rM.data(), gn), rel_err(oF.data(), rF.data(), gn)),
                                 fabs(lgot - lr) / fabs(lr)));
      }
      for (auto p : d) CK(cudaFree(p));
      CK(cudaFree(dk));
    }
    rows.push_back({"lncc box k=3..9, mask, both grads, grids 203x117x37, 19x23x5, 33x17x12 (check only)", 16, 0.0, worst, 0.0});
  }
  {  // every compiled radius, both gradient variants and a mask (check only): k = 3 box and
     // k = 7 Gaussian with both gradients, k = 9 with gM only, all under a random mask
    std::vector<uint8_t> mk(n);
    for (long long i = 0; i < n; i++) mk[i] = urand(0.f, 1.f) < 0.8f;
    uint8_t *dmk;
    float *dgF;
    CK(cudaMalloc(&dmk, n));
    CK(cudaMalloc(&dgF, n * 4));
    CK(cudaMemcpy(dmk, mk.data(), n, cudaMemcpyHostToDevice));
    const int kw[4] = {3, 7, 9, 9};
    const ffdp_window_kind kk[4] = {FFDP_WINDOW_BOX, FFDP_WINDOW_GAUSS, FFDP_WINDOW_BOX, FFDP_WINDOW_BOX};
    const char *kn[4] = {"lncc k=3 box, mask, both grads (check only)", "lncc k=7 gauss, mask, both grads (check only)",
                         "lncc k=9 box, mask (check only)",
                         "lncc k=9 box, march kernel, running sums, mask, both grads (check only)"};
    std::vector<float> refF(n), gotF(n);
    for (int v = 0; v < 4; v++) {
      ffdp_lncc_params lp = {kw[v], kk[v], 1e-5};
      const bool both = v != 2;
      if (v == 3) setenv("FFDP_LNCC_KERNEL", "march", 1);  // the march kernel's running sums under a mask
      lc = ffdp_lncc_f32(&lp, &s, F.data(), M.data(), mk.data(), 1.0 / n, ref.data());
      if (both) ffdp_lncc_f32(&lp, &s, M.data(), F.data(), mk.data(), 1.0 / n, refF.data());
      poison(dout, n), poison(dgF, n);
      CK(ffdp_cuda_lncc2(&lp, &s, dF, dM, dmk, 1.0 / n, both ? dgF : NULL, dout, &lg, 0));
      CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
      double e = fmax(rel_err(got.data(), ref.data(), n), fabs(lg - lc) / fabs(lc));
      if (both) {
        CK(cudaMemcpy(gotF.data(), dgF, n * 4, cudaMemcpyDeviceToHost));
        e = fmax(e, rel_err(gotF.data(), refF.data(), n));
      }
      rows.push_back({kn[v], 12, 0.0, e, 0.0});
      unsetenv("FFDP_LNCC_KERNEL");
    }
    CK(cudaFree(dmk));
    CK(cudaFree(dgF));
  }

  // --- MI (B-spline, Gaussian, box for the fixed image; 32 bins): checked against the CPU, then timed
  auto mi_row = [&](const char *name, ffdp_parzen_kind kind, const float *hF, const float *hM, const float *gF,
                    const float *gM) {
    ffdp_mi_params mp = {32, kind, 0.0, 1.0, 0.0, 1.0};
    lc = ffdp_mi_f32(&mp, &s, hF, hM, NULL, ref.data());
    poison(dout, n);
    CK(ffdp_cuda_mi(&mp, &s, gF, gM, NULL, dout, &lg, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    double e = fmax(rel_err(got.data(), ref.data(), n), fabs(lg - lc) / fabs(lc));
    pool_high_and_reset();
    float t = median_ms([&] { ffdp_cuda_mi(&mp, &s, gF, gM, NULL, dout, &lg, 0); });
    rows.push_back({name, 20, t, e, pool_high_and_reset() / 1e6});
  };
  mi_row("mi 32 bspline fwd+bwd", FFDP_PARZEN_BSPLINE, F.data(), M.data(), dF, dM);
  mi_row("mi 32 gauss fwd+bwd", FFDP_PARZEN_GAUSS, F.data(), M.data(), dF, dM);
  mi_row("mi 32 mattes (box for the fixed image) fwd+bwd", FFDP_PARZEN_MATTES, F.data(), M.data(), dF, dM);
  {  // MSE and MI under a random mask (check only): what the stages run with -x
    std::vector<uint8_t> mk(n);
    for (long long i = 0; i < n; i++) mk[i] = urand(0.f, 1.f) < 0.7f;
    long long cnt = 0;
    for (long long i = 0; i < n; i++) cnt += mk[i];
    uint8_t *dmk;
    CK(cudaMalloc(&dmk, n));
    CK(cudaMemcpy(dmk, mk.data(), n, cudaMemcpyHostToDevice));
    lc = ffdp_mse_f32(&s, F.data(), M.data(), mk.data(), 1.0 / cnt, ref.data());
    poison(dout, n);
    CK(ffdp_cuda_mse(&s, dF, dM, dmk, 1.0 / cnt, dout, &lg, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    rows.push_back({"mse, mask (check only)", 12, 0.0, fmax(rel_err(got.data(), ref.data(), n), fabs(lg - lc) / fabs(lc)), 0.0});
    ffdp_mi_params mp = {32, FFDP_PARZEN_BSPLINE, 0.0, 1.0, 0.0, 1.0};
    lc = ffdp_mi_f32(&mp, &s, F.data(), M.data(), mk.data(), ref.data());
    poison(dout, n);
    CK(ffdp_cuda_mi(&mp, &s, dF, dM, dmk, dout, &lg, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    rows.push_back({"mi 32 bspline, mask (check only)", 20, 0.0, fmax(rel_err(got.data(), ref.data(), n), fabs(lg - lc) / fabs(lc)), 0.0});
    mp.kind = FFDP_PARZEN_MATTES;
    lc = ffdp_mi_f32(&mp, &s, F.data(), M.data(), mk.data(), ref.data());
    poison(dout, n);
    CK(ffdp_cuda_mi(&mp, &s, dF, dM, dmk, dout, &lg, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    rows.push_back({"mi 32 mattes, mask (check only)", 20, 0.0, fmax(rel_err(got.data(), ref.data(), n), fabs(lg - lc) / fabs(lc)), 0.0});
    CK(cudaFree(dmk));
  }
  // --- MI on a head-like volume: zero background outside a centred ellipsoid (about half the
  // box, as in a head scan), where every voxel lands in the same bins: what stresses the
  // shared-memory histogram's atomics, which uniform random data never does
  {
    std::vector<float> Fb(F), Mb(M);
    for (long long z = 0; z < N; z++)
      for (long long y = 0; y < N; y++)
        for (long long x = 0; x < N; x++) {
          const double a = (x - 0.5 * N) / (0.5 * N), b = (y - 0.5 * N) / (0.5 * N), c = (z - 0.5 * N) / (0.5 * N);
          if (a * a + b * b + c * c > 0.95) Fb[(z * N + y) * N + x] = 0.f, Mb[(z * N + y) * N + x] = 0.f;
        }
    float *dFb, *dMb;
    CK(cudaMalloc(&dFb, n * 4));
    CK(cudaMalloc(&dMb, n * 4));
    CK(cudaMemcpy(dFb, Fb.data(), n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dMb, Mb.data(), n * 4, cudaMemcpyHostToDevice));
    mi_row("mi 32 bspline, 50 % background", FFDP_PARZEN_BSPLINE, Fb.data(), Mb.data(), dFb, dMb);
    mi_row("mi 32 mattes, 50 % background", FFDP_PARZEN_MATTES, Fb.data(), Mb.data(), dFb, dMb);
    // the default against an alternative chosen by an environment variable: the lane-private
    // histogram (default up to 40 bins) against the shared bins with warp groups
    // (FFDP_MI_HIST=groups), four voxels per thread and step against one (FFDP_MI_UNROLL=1).
    // The same integers, so the same histogram, loss and gradient
    auto mi_ab = [&](const char *name, const char *var, const char *val, ffdp_parzen_kind kind, const float *gF,
                     const float *gM) {
      ffdp_mi_params mp = {32, kind, 0.0, 1.0, 0.0, 1.0};
      std::vector<float> a(n);
      double la, lb, ha[32 * 32], hb[32 * 32];
      CK(ffdp_cuda_mi(&mp, &s, gF, gM, NULL, dout, &la, 0));
      CK(ffdp_cuda_mi_hist(&mp, &s, gF, gM, NULL, ha, 0));
      CK(cudaMemcpy(a.data(), dout, n * 4, cudaMemcpyDeviceToHost));
      setenv(var, val, 1);
      poison(dout, n);
      CK(ffdp_cuda_mi(&mp, &s, gF, gM, NULL, dout, &lb, 0));
      CK(ffdp_cuda_mi_hist(&mp, &s, gF, gM, NULL, hb, 0));
      CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
      double diff = la != lb;
      for (int k = 0; k < 32 * 32; k++) diff += ha[k] != hb[k];
      for (long long i = 0; i < n; i++) diff += memcmp(&a[i], &got[i], 4) != 0;
      pool_high_and_reset();
      float t = median_ms([&] { ffdp_cuda_mi(&mp, &s, gF, gM, NULL, dout, &lb, 0); });
      unsetenv(var);
      rows.push_back({name, 20, t, diff, pool_high_and_reset() / 1e6});
    };
    const char *H = "FFDP_MI_HIST", *U = "FFDP_MI_UNROLL";
    mi_ab("mi 32 bspline, warp-group histogram (FFDP_MI_HIST=groups; vs lanes: values differing)", H, "groups",
          FFDP_PARZEN_BSPLINE, dF, dM);
    mi_ab("mi 32 bspline, 50 % background, warp-group histogram (vs lanes: values differing)", H, "groups",
          FFDP_PARZEN_BSPLINE, dFb, dMb);
    mi_ab("mi 32 gauss, warp-group histogram (vs lanes: values differing)", H, "groups", FFDP_PARZEN_GAUSS, dF, dM);
    mi_ab("mi 32 mattes, 50 % background, warp-group histogram (vs lanes: values differing)", H, "groups",
          FFDP_PARZEN_MATTES, dFb, dMb);
    const char *T = "FFDP_MI_TABLE";
    mi_ab("mi 32 bspline, gradient table in 8 lane copies (FFDP_MI_TABLE=copies; values differing)", T, "copies",
          FFDP_PARZEN_BSPLINE, dF, dM);
    mi_ab("mi 32 bspline, 50 % background, 8 table copies (values differing)", T, "copies", FFDP_PARZEN_BSPLINE, dFb,
          dMb);
    mi_ab("mi 32 gauss, 8 table copies (values differing)", T, "copies", FFDP_PARZEN_GAUSS, dF, dM);
    mi_ab("mi 32 bspline, one voxel per thread (FFDP_MI_UNROLL=1; values differing)", U, "1", FFDP_PARZEN_BSPLINE, dF,
          dM);
    mi_ab("mi 32 gauss, four voxels per thread (FFDP_MI_UNROLL=4; values differing)", U, "4", FFDP_PARZEN_GAUSS, dF, dM);
    mi_ab("mi 32 gauss, tap distances from int conversions (FFDP_MI_TAPDIST=conv; values differing)", "FFDP_MI_TAPDIST",
          "conv", FFDP_PARZEN_GAUSS, dF, dM);
    CK(cudaFree(dFb));
    CK(cudaFree(dMb));
  }

  // --- blur of a vector field, sigma 1.5 voxels
  const double sig[3] = {1.5, 1.5, 1.5};
  ffdp_blur_f32(&s, u.data(), 3, sig, ref.data());
  poison(dout, 3 * n);
  CK(ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0));
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(got.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
  double e_blur = rel_err(got.data(), ref.data(), 3 * n);
  pool_high_and_reset();
  float t_blur = median_ms([&] { ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0); });
  rows.push_back({"blur vec3 sigma=1.5", 24, t_blur, e_blur, pool_high_and_reset() / 1e6});
  // the input may serve as the scratch (the registration stages rely on it)
  CK(cudaMemcpy(dtmp, du, 3 * n * 4, cudaMemcpyDeviceToDevice));
  poison(dout, 3 * n);
  CK(ffdp_cuda_blur(&s, dtmp, 3, sig, dout, dtmp, 0));
  CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(got.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
  rows.push_back({"blur vec3, input as scratch", 24, t_blur, rel_err(got.data(), ref.data(), 3 * n), 0.0});
  // the one-pass kernel and the two-pass kernels (blur_split.cu; the default for planes of
  // 128^2 and more) must give the same bits, with and without the largest norm; both timed.
  // Two passes move 48 bytes per voxel, the table counts the 24 the operator needs.
  {
    std::vector<float> a(3 * n), b(3 * n);
    float *sc1, *sc2, *tmp2;
    CK(cudaMalloc(&sc1, 1026 * 4));
    CK(cudaMalloc(&sc2, 1026 * 4));
    CK(cudaMalloc(&tmp2, 3 * n * 4));
    setenv("FFDP_BLUR_SPLIT", "0", 1);
    poison(dout, 3 * n);
    CK(ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0));
    CK(ffdp_cuda_blur_maxnorm3(&s, du, sig, dgu, dtmp, sc1, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(a.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    float t1 = median_ms([&] { ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0); });
    setenv("FFDP_BLUR_SPLIT", "1", 1);
    setenv("FFDP_BLUR_FUSED", "off", 1);  // the two passes, not the y-blocked one pass
    poison(dout, 3 * n);
    CK(ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0));
    CK(cudaMemcpy(tmp2, du, 3 * n * 4, cudaMemcpyDeviceToDevice));  // the input as the scratch
    CK(ffdp_cuda_blur_maxnorm3(&s, tmp2, sig, dgu, tmp2, sc2, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(b.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    float s1[2], s2[2];
    CK(cudaMemcpy(s1, sc1 + 1024, 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(s2, sc2 + 1024, 8, cudaMemcpyDeviceToHost));
    bool same = !memcmp(a.data(), b.data(), 3 * n * 4) && !memcmp(s1, s2, 8) && s1[0] > 0.f;
    CK(cudaMemcpy(b.data(), dgu, 3 * n * 4, cudaMemcpyDeviceToHost));
    same = same && !memcmp(a.data(), b.data(), 3 * n * 4);
    float t2 = median_ms([&] { ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0); });
    unsetenv("FFDP_BLUR_SPLIT");
    unsetenv("FFDP_BLUR_FUSED");
    rows.push_back({"blur vec3 one-pass kernel (blur.cu; vs two-pass: bits)", 24, t1, same ? 0.0 : 1.0, 0.0});
    rows.push_back({"blur vec3 two-pass kernels (xy; z in place; FFDP_BLUR_FUSED=off)", 24, t2, same ? 0.0 : 1.0, 0.0});
    // the default for wide planes: one pass with y-blocked rows and z rings (blur_split.cu
    // blur_xyz3), against the two passes: the same sums in the same order
    poison(dout, 3 * n);
    CK(ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0));
    CK(cudaMemcpy(b.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    double ndiff = 0;
    for (long long i = 0; i < 3 * n; i++) ndiff += memcmp(&a[i], &b[i], 4) != 0;
    rows.push_back({"blur vec3 one pass, y-blocked rows (default; vs two-pass: values differing)", 24,
                    median_ms([&] { ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0); }), ndiff, 0.0});
    // the y-blocked kernel's variants against its default, plain and with the largest norm
    {
      auto yb = [&] { return ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0); };
      auto ybn = [&] { return ffdp_cuda_blur_maxnorm3(&s, du, sig, dout, dtmp, sc2, 0); };
      env_ab("FFDP_BLUR_XYZ", "blur vec3 y-blocked, one block an SM (FFDP_BLUR_XYZ=one; values differing)", "one", 24, dout,
             3 * n, yb);
      env_ab("FFDP_BLUR_XYZ", "blur vec3 + largest norm, 16-row tiles, one block an SM (FFDP_BLUR_XYZ=one; values differing)",
             "one", 24, dout, 3 * n, ybn);
      // radius 4 (sigma 1.2) against the CPU, and its one-block A/B
      const double s12[3] = {1.2, 1.2, 1.2};
      ffdp_blur_f32(&s, u.data(), 3, s12, ref.data());
      poison(dout, 3 * n);
      CK(ffdp_cuda_blur(&s, du, 3, s12, dout, dtmp, 0));
      CK(cudaMemcpy(got.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
      auto yb4 = [&] { return ffdp_cuda_blur(&s, du, 3, s12, dout, dtmp, 0); };
      rows.push_back({"blur vec3 sigma=1.2 (radius 4)", 24, median_ms([&] { yb4(); }), rel_err(got.data(), ref.data(), 3 * n),
                      0.0});
      env_ab("FFDP_BLUR_XYZ", "blur vec3 sigma=1.2, one block an SM (FFDP_BLUR_XYZ=one; values differing)", "one", 24, dout,
             3 * n, yb4);
    }
    // the one-pass kernel's switches against the one-pass kernel (values differing)
    auto one_pass = [&] { return ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0); };
    setenv("FFDP_BLUR_SPLIT", "0", 1);
    env_ab("FFDP_BLUR_ZCHUNK", "blur vec3 one-pass, z-chunks of 64 (FFDP_BLUR_ZCHUNK=fixed; values differing)", "fixed",
           24, dout, 3 * n, one_pass);
    env_ab("FFDP_BLUR_RING", "blur vec3 one-pass, ring shifted (FFDP_BLUR_RING=shift; values differing)", "shift", 24,
           dout, 3 * n, one_pass);
    setenv("FFDP_BLUR_SPLIT", "1", 1);
    // scalar images (the pyramid's smoothing): the y-blocked one pass on 96-voxel rows (planes
    // widened to the rule's least under FFDP_BLUR_SPLIT=1), against blur.cu's one-pass kernel
    ffdp_blur_f32(&s, F.data(), 1, sig, ref.data());
    poison(dout, n);
    CK(ffdp_cuda_blur(&s, dF, 1, sig, dout, dtmp, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    const double e1 = rel_err(got.data(), ref.data(), n);
    auto scalar = [&] { return ffdp_cuda_blur(&s, dF, 1, sig, dout, dtmp, 0); };
    rows.push_back({"blur scalar sigma=1.5 (y-blocked one pass)", 8, median_ms([&] { scalar(); }), e1, 0.0});
    env_ab("FFDP_BLUR_SPLIT", "blur scalar, blur.cu's one-pass kernel (FFDP_BLUR_SPLIT=0; vs default: values differing)", "0",
           8, dout, n, scalar);
    {  // radii 1-4 of the new path against the CPU (sigma 0.4 .. 1.2)
      double worst = 0;
      setenv("FFDP_BLUR_SPLIT", "1", 1);  // env_ab above unset it
      for (double sgm : {0.4, 0.7, 1.0, 1.2}) {
        const double sg3[3] = {sgm, sgm, sgm};
        ffdp_blur_f32(&s, F.data(), 1, sg3, ref.data());
        poison(dout, n);
        CK(ffdp_cuda_blur(&s, dF, 1, sg3, dout, dtmp, 0));
        CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
        const double e = rel_err(got.data(), ref.data(), n);
        worst = e > worst ? e : worst;
      }
      rows.push_back({"blur scalar sigma 0.4, 0.7, 1.0, 1.2 (radii 1-4; check only)", 8, 0.0, worst, 0.0});
    }
    setenv("FFDP_BLUR_SPLIT", "0", 1);  // the switches of blur.cu's kernel
    env_ab("FFDP_BLUR_RING", "blur scalar, blur.cu's kernel, ring shifted (FFDP_BLUR_RING=shift; values differing)", "shift",
           8, dout, n, scalar);
    env_ab("FFDP_BLUR_ZCHUNK", "blur scalar, blur.cu's kernel, z-chunks of 64 (FFDP_BLUR_ZCHUNK=fixed; values differing)",
           "fixed", 8, dout, n, scalar);
    unsetenv("FFDP_BLUR_SPLIT");
    CK(cudaFree(sc1));
    CK(cudaFree(sc2));
    CK(cudaFree(tmp2));
  }

  // --- the pyramid's smoothing at the points its resample reads (blur_at.cu): the points of a
  // shrink-f resample (indices f i + f/2 - 1 and f i + f/2 of every axis) on the planes past
  // the first few (a slab whose stored planes start inside the image), against ffdp_cuda_blur
  // at every point, bit for bit, for the radii of each of its paths (shrink 4: radius 4, the
  // one pass; 8: radius 8, blur.cu's kernel; 16, 32: one pass an axis); timed at shrink 32
  {
    const long long P = N * N, zlo = 3;
    ffdp_slab sl = ffdp_slab_whole(N, N, N);
    sl.zlo = zlo, sl.z0 = zlo + 2;  // planes [3, N) stored, [5, N) owned
    std::vector<float> whole(n), part(n);
    long long worst = 0;
    float t_at = 0, t_whole = 0;
    for (int f : {4, 8, 16, 32}) {
      const double sg3[3] = {f / 3.0, f / 3.0, f / 3.0};
      std::vector<int> xs;
      std::vector<long long> zs;
      for (long long i = 0; f * i + f / 2 < N; i++) xs.push_back((int)(f * i + f / 2 - 1)), xs.push_back((int)(f * i + f / 2));
      for (int x : xs)
        if (x >= sl.z0) zs.push_back(x);
      int *dxs;
      long long *dzs;
      float *scr;
      const long long ns = ffdp_cuda_blur1_at_scratch(&sl, sg3, (int)xs.size(), (int)xs.size(), zs.front(), zs.back());
      CK(cudaMalloc(&dxs, xs.size() * sizeof(int)));
      CK(cudaMalloc(&dzs, zs.size() * sizeof(long long)));
      CK(cudaMalloc(&scr, ns * sizeof(float)));
      CK(cudaMemcpy(dxs, xs.data(), xs.size() * sizeof(int), cudaMemcpyHostToDevice));
      CK(cudaMemcpy(dzs, zs.data(), zs.size() * sizeof(long long), cudaMemcpyHostToDevice));
      const float *in = dF + zlo * P;  // the stored planes of the slab
      auto full = [&] { return ffdp_cuda_blur(&sl, in, 1, sg3, dout, dtmp, 0); };
      auto at = [&] {
        return ffdp_cuda_blur1_at(&sl, in, sg3, dxs, (int)xs.size(), dxs, (int)xs.size(), dzs, (int)zs.size(), zs.front(),
                                  zs.back(), dgu, scr, 0);
      };
      poison(dout, n), poison(dgu, n);
      CK(full());
      CK(at());
      CK(cudaMemcpy(whole.data(), dout, n * 4, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(part.data(), dgu, n * 4, cudaMemcpyDeviceToHost));
      long long nd = 0;
      for (long long z : zs)
        for (int y : xs)
          for (int x : xs) {
            const long long i = (z - zlo) * P + (long long)y * N + x;
            nd += memcmp(&whole[i], &part[i], 4) != 0;
          }
      worst = nd > worst ? nd : worst;
      if (f == 32) t_at = median_ms([&] { at(); }), t_whole = median_ms([&] { full(); });
      CK(cudaFree(dxs));
      CK(cudaFree(dzs));
      CK(cudaFree(scr));
    }
    rows.push_back({"blur scalar at a shrink-32 resample's points (blur_at.cu; vs whole, shrinks 4-32: values differing)",
                    8, t_at, (double)worst, 0.0});
    rows.push_back({"blur scalar sigma 10.7 whole (radius 32; what the shrink-32 level smoothed)", 8, t_whole, 0.0, 0.0});
  }

  // --- in place through a ring of xy planes (the deformable step's smoothing: no scratch
  // field): the same bits as the out-of-place blur, for several ring sizes; with the largest
  // norm, the same bits as the fused blur + norm
  {
    const long long P = (long long)N * N, q_least = 2 * 5 + 10;  // radius 5 at sigma 1.5
    std::vector<float> a(3 * n), b(3 * n);
    float *ring, *work, *sc1, *sc2;
    CK(cudaMalloc(&ring, 3 * n * 4));
    CK(cudaMalloc(&work, 3 * n * 4));
    CK(cudaMalloc(&sc1, 1026 * 4));
    CK(cudaMalloc(&sc2, 1026 * 4));
    CK(ffdp_cuda_blur_maxnorm3(&s, du, sig, dout, dtmp, sc1, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(a.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    float s1[2], s2[2];
    CK(cudaMemcpy(s1, sc1 + 1024, 8, cudaMemcpyDeviceToHost));
    for (long long q0 : {20LL, 32LL, 48LL, 64LL, 128LL, N}) {
      const long long q = q0 < q_least ? q_least : q0 > N ? N : q0;
      const bool norm = q0 == 32;  // one of them also checks the largest norm
      CK(cudaMemcpy(work, du, 3 * n * 4, cudaMemcpyDeviceToDevice));
      poison(ring, 3 * n);
      CK(ffdp_cuda_blur_inplace3(&s, work, 1.5, ring, q, norm ? sc2 : nullptr, 0));
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(b.data(), work, 3 * n * 4, cudaMemcpyDeviceToHost));
      bool same = !memcmp(a.data(), b.data(), 3 * n * 4);
      if (norm) {
        CK(cudaMemcpy(s2, sc2 + 1024, 8, cudaMemcpyDeviceToHost));
        same = same && !memcmp(s1, s2, 8) && s1[0] > 0.f;
      }
      float t = median_ms([&] { ffdp_cuda_blur_inplace3(&s, work, 1.5, ring, q, norm ? sc2 : nullptr, 0); });
      char name[96];
      snprintf(name, sizeof name, "blur vec3 in place, ring %lld planes (%.0f MB)%s (vs out of place: bits)", q,
               q * 12.0 * P / 1048576.0, norm ? " + largest norm" : "");
      rows.push_back({name, 24, t, same ? 0.0 : 1.0, 0.0});
    }
    // the two passes through the ring (FFDP_BLUR_INPLACE=ring: the path where the one-pass
    // kernel's grid would not be resident), against the same out-of-place bits
    setenv("FFDP_BLUR_INPLACE", "ring", 1);
    for (int norm = 0; norm < 2; norm++) {
      const long long q = 32 < N ? 32 : N;
      CK(cudaMemcpy(work, du, 3 * n * 4, cudaMemcpyDeviceToDevice));
      CK(ffdp_cuda_blur_inplace3(&s, work, 1.5, ring, q, norm ? sc2 : nullptr, 0));
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(b.data(), work, 3 * n * 4, cudaMemcpyDeviceToHost));
      bool same = !memcmp(a.data(), b.data(), 3 * n * 4);
      if (norm) {
        CK(cudaMemcpy(s2, sc2 + 1024, 8, cudaMemcpyDeviceToHost));
        same = same && !memcmp(s1, s2, 8);
      }
      float t = median_ms([&] { ffdp_cuda_blur_inplace3(&s, work, 1.5, ring, q, norm ? sc2 : nullptr, 0); });
      rows.push_back({norm ? "blur vec3 in place, two passes through a 32-plane ring + largest norm (FFDP_BLUR_INPLACE=ring; bits)"
                           : "blur vec3 in place, two passes through a 32-plane ring (FFDP_BLUR_INPLACE=ring; bits)",
                      24, t, same ? 0.0 : 1.0, 0.0});
    }
    unsetenv("FFDP_BLUR_INPLACE");
    // sigma 4 (radius 12) in place against the CPU operator
    const double big[3] = {4.0, 4.0, 4.0};
    ffdp_blur_f32(&s, u.data(), 3, big, ref.data());
    CK(cudaMemcpy(work, du, 3 * n * 4, cudaMemcpyDeviceToDevice));
    const long long q12 = 48 < N ? 48 : N;
    CK(ffdp_cuda_blur_inplace3(&s, work, 4.0, ring, q12, nullptr, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(got.data(), work, 3 * n * 4, cudaMemcpyDeviceToHost));
    float t = median_ms([&] { ffdp_cuda_blur_inplace3(&s, work, 4.0, ring, q12, nullptr, 0); });
    rows.push_back({"blur vec3 sigma=4 in place (ring 48 planes)", 24, t, rel_err(got.data(), ref.data(), 3 * n), 0.0});
    // sigma 6 (radius 18, past the ring kernels): out of place through a whole-slab ring, then
    // back, with the largest norm against a separate pass over the result
    const double huge6[3] = {6.0, 6.0, 6.0};
    ffdp_blur_f32(&s, u.data(), 3, huge6, ref.data());
    CK(cudaMemcpy(work, du, 3 * n * 4, cudaMemcpyDeviceToDevice));
    CK(ffdp_cuda_blur_inplace3(&s, work, 6.0, ring, N, sc2, 0));
    CK(ffdp_cuda_maxnorm3_dev(n, work, sc1, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(got.data(), work, 3 * n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(s1, sc1 + 1024, 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(s2, sc2 + 1024, 8, cudaMemcpyDeviceToHost));
    rows.push_back({"blur vec3 sigma=6 in place, radius 18 + largest norm (check only)", 24, 0.0,
                    memcmp(s1, s2, 8) ? 1.0 : rel_err(got.data(), ref.data(), 3 * n), 0.0});
    for (float *p : {ring, work, sc1, sc2}) CK(cudaFree(p));
  }

  // --- in place on planes of more tiles than the resident slots (bands of tile rows, each band's
  // rows above it saved first): the same bits as out of place and as the ring, on a whole volume
  // and on a slab with halo planes, with the largest norm; then the time on a larger one (its
  // bytes scaled to this table's voxel count)
  {
    struct Wide { long long nx, ny, nz, z0, z1, zlo, zhi; bool timed; };
    const Wide cases[] = {{640, 520, 24, 0, 24, 0, 24, false}, {600, 560, 30, 8, 22, 2, 28, false},
                          {768, 768, 64, 0, 64, 0, 64, true}};
    for (const Wide &c : cases) {
      ffdp_slab ws = {c.nx, c.ny, c.nz, c.z0, c.z1, c.zlo, c.zhi};
      const long long P3 = 3 * c.nx * c.ny, ns = c.zhi - c.zlo, nv = ns * P3, q = 20;
      std::vector<float> hv(nv), wref(nv), wgot(nv);  // not the table's ref/got: other sizes
      for (long long i = 0; i < nv; i++) hv[i] = urand(-1.f, 1.f);
      float *src, *dst, *tmp, *work, *ring, *sc1, *sc2;
      for (float **b : {&src, &dst, &tmp, &work}) CK(cudaMalloc(b, nv * 4));
      CK(cudaMalloc(&ring, q * P3 * 4));
      CK(cudaMalloc(&sc1, 1026 * 4));
      CK(cudaMalloc(&sc2, 1026 * 4));
      CK(cudaMemcpy(src, hv.data(), nv * 4, cudaMemcpyHostToDevice));
      CK(ffdp_cuda_blur_maxnorm3(&ws, src, sig, dst, tmp, sc1, 0));  // out of place: the reference bits
      CK(cudaDeviceSynchronize());
      CK(cudaMemcpy(wref.data(), dst, nv * 4, cudaMemcpyDeviceToHost));
      float m1[2];
      CK(cudaMemcpy(m1, sc1 + 1024, 8, cudaMemcpyDeviceToHost));
      const long long own0 = (c.z0 - c.zlo) * P3, own = (c.z1 - c.z0) * P3;
      for (const char *path : {"bands", "ring"}) {
        setenv("FFDP_BLUR_INPLACE", strcmp(path, "ring") ? "one" : "ring", 1);  // "one": the bands or an error
        CK(cudaMemcpy(work, src, nv * 4, cudaMemcpyDeviceToDevice));
        CK(ffdp_cuda_blur_inplace3(&ws, work, 1.5, ring, q, sc2, 0));
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(wgot.data(), work, nv * 4, cudaMemcpyDeviceToHost));
        float m2[2];
        CK(cudaMemcpy(m2, sc2 + 1024, 8, cudaMemcpyDeviceToHost));
        // owned planes: the out-of-place bits; halo planes: the input's still
        bool same = !memcmp(wgot.data() + own0, wref.data() + own0, own * 4) && !memcmp(m1, m2, 8) && m1[0] > 0.f &&
                    !memcmp(wgot.data(), hv.data(), own0 * 4) &&
                    !memcmp(wgot.data() + own0 + own, hv.data() + own0 + own, (nv - own0 - own) * 4);
        float t = c.timed ? median_ms([&] { ffdp_cuda_blur_inplace3(&ws, work, 1.5, ring, q, nullptr, 0); }) : 0.f;
        unsetenv("FFDP_BLUR_INPLACE");
        char nm[160];
        snprintf(nm, sizeof nm, "blur vec3 in place, %lldx%lldx%lld%s, %s (vs out of place, with the largest norm: bits)", c.nx, c.ny,
                 c.nz, c.zlo < c.z0 ? " slab with halo" : "", strcmp(path, "ring") ? "bands of tile rows" : "ring 20 planes");
        rows.push_back({nm, 24.0 * (double)(c.z1 - c.z0) * c.nx * c.ny / (double)n, t, same ? 0.0 : 1.0, 0.0});
      }
      if (c.timed) {
        float t = median_ms([&] { ffdp_cuda_blur(&ws, src, 3, sig, dst, tmp, 0); });
        char nm[128];
        snprintf(nm, sizeof nm, "blur vec3 out of place, %lldx%lldx%lld (timing only)", c.nx, c.ny, c.nz);
        rows.push_back({nm, 24.0 * (double)(c.z1 - c.z0) * c.nx * c.ny / (double)n, t, 0.0, 0.0});
      }
      for (float *b : {src, dst, tmp, work, ring, sc1, sc2}) CK(cudaFree(b));
    }
  }

  // --- the deformable update's fused passes against the separate ones (GPU vs GPU: the same
  // bits are required, so the error column is 0 or 1): blur + largest norm, Adam + composition
  {
    float *sc1, *sc2, *m1, *v1, *m2, *v2, *d1, *o2;
    CK(cudaMalloc(&sc1, 1026 * 4));
    CK(cudaMalloc(&sc2, 1026 * 4));
    for (float **b : {&m1, &v1, &m2, &v2, &d1, &o2}) CK(cudaMalloc(b, 3 * n * 4));
    CK(ffdp_cuda_blur(&s, du, 3, sig, dout, dtmp, 0));
    CK(ffdp_cuda_maxnorm3_dev(n, dout, sc1, 0));
    poison(o2, 3 * n);
    CK(ffdp_cuda_blur_maxnorm3(&s, du, sig, o2, dtmp, sc2, 0));
    std::vector<float> a(3 * n), b(3 * n);
    float s1[2], s2[2];
    CK(cudaMemcpy(a.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(b.data(), o2, 3 * n * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(s1, sc1 + 1024, 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(s2, sc2 + 1024, 8, cudaMemcpyDeviceToHost));
    double e = memcmp(a.data(), b.data(), 3 * n * 4) || memcmp(s1, s2, 8) || !(s1[0] > 0.f) ? 1.0 : 0.0;
    pool_high_and_reset();
    float t = median_ms([&] { ffdp_cuda_blur_maxnorm3(&s, du, sig, o2, dtmp, sc2, 0); });
    rows.push_back({"blur vec3 + largest norm (fused; vs blur, maxnorm)", 24, t, e, pool_high_and_reset() / 1e6});
    t = median_ms([&] { ffdp_cuda_maxnorm3_dev(n, dout, sc1, 0); });
    rows.push_back({"largest norm alone (the pass saved)", 12, t, 0.0, 0.0});
    if (n >= 203 * 117 * 37) {  // the one-pass kernel's largest-norm epilogue on tiles cut by the grid's edges (203 x 117
       // planes: the wide-plane path; 19 x 23: blur.cu's), radii 5 and 2, against the CPU
      double worst = 0;
      for (int g = 0; g < 4; g++) {
        const long long gx = g < 2 ? 203 : 19, gy = g < 2 ? 117 : 23, gz = 37, gn = gx * gy * gz;
        const double gs = g % 2 ? 0.6 : 1.5, gsig[3] = {gs, gs, gs};
        const ffdp_slab gsl = ffdp_slab_whole(gx, gy, gz);
        std::vector<float> gin(3 * gn), gref(3 * gn), ggot(3 * gn);
        for (auto &x : gin) x = urand(-1.f, 1.f);
        ffdp_blur_f32(&gsl, gin.data(), 3, gsig, gref.data());
        double most = 0;
        for (long long i = 0; i < gn; i++)
          most = fmax(most, sqrt((double)gref[3 * i] * gref[3 * i] + (double)gref[3 * i + 1] * gref[3 * i + 1] +
                                 (double)gref[3 * i + 2] * gref[3 * i + 2]));
        CK(cudaMemcpy(m1, gin.data(), 3 * gn * 4, cudaMemcpyHostToDevice));
        poison(o2, 3 * gn);
        CK(ffdp_cuda_blur_maxnorm3(&gsl, m1, gsig, o2, nullptr, sc2, 0));
        CK(cudaDeviceSynchronize());
        CK(cudaMemcpy(ggot.data(), o2, 3 * gn * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(s2, sc2 + 1024, 8, cudaMemcpyDeviceToHost));
        worst = fmax(worst, fmax(rel_err(ggot.data(), gref.data(), 3 * gn), fabs(s2[0] - most) / most));
        worst = fmax(worst, fabs(s2[1] * most - 1.0));
      }
      rows.push_back({"blur vec3 + largest norm, grids 203x117x37 and 19x23x37, radii 5 and 2 (check only)", 24, 0.0,
                      worst, 0.0});
    }
    // Adam (fp32 moments, step 3) then compose with T = I, against the fused pass
    for (long long i = 0; i < 3 * n; i++) a[i] = urand(-0.1f, 0.1f), b[i] = urand(0.f, 0.01f);
    CK(cudaMemcpy(m1, a.data(), 3 * n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(v1, b.data(), 3 * n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(m2, m1, 3 * n * 4, cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(v2, v1, 3 * n * 4, cudaMemcpyDeviceToDevice));
    CK(cudaMemcpy(d1, dout, 3 * n * 4, cudaMemcpyDeviceToDevice));
    ffdp_warp cw = w;
    cw.pad = FFDP_PAD_BORDER;
    const double T[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    CK(ffdp_cuda_adam_step_dev(3 * n, d1, m1, v1, 0, sc1 + 1025, 3, 0.25, 0));
    CK(ffdp_cuda_compose_fwd(&cw, T, &s, d1, &s, du, dtmp, 0));
    poison(o2, 3 * n);
    CK(ffdp_cuda_compose_adam(&cw, &s, dout, m2, v2, 0, sc1 + 1025, 3, 0.25, du, o2, 0));
    CK(cudaDeviceSynchronize());
    e = 0.0;
    const float *pairs[3][2] = {{dtmp, o2}, {m1, m2}, {v1, v2}};
    for (auto &pr : pairs) {
      CK(cudaMemcpy(a.data(), pr[0], 3 * n * 4, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(b.data(), pr[1], 3 * n * 4, cudaMemcpyDeviceToHost));
      if (memcmp(a.data(), b.data(), 3 * n * 4)) e = 1.0;
    }
    pool_high_and_reset();
    t = median_ms([&] { ffdp_cuda_compose_adam(&cw, &s, dout, m2, v2, 0, sc1 + 1025, 3, 0.25, du, o2, 0); });
    rows.push_back({"adam step + compose (fused; vs the two passes)", 84, t, e, pool_high_and_reset() / 1e6});
    t = median_ms([&] { ffdp_cuda_adam_step_dev(3 * n, d1, m1, v1, 0, sc1 + 1025, 3, 0.25, 0); });
    rows.push_back({"adam step alone (separate: + compose fwd)", 72, t, 0.0, 0.0});
    // in place of the gradient (the step makes the new warp in the gradient's memory)
    CK(cudaMemcpy(m2, a.data(), 3 * n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(v2, b.data(), 3 * n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(d1, dout, 3 * n * 4, cudaMemcpyDeviceToDevice));
    CK(ffdp_cuda_compose_adam(&cw, &s, d1, m2, v2, 0, sc1 + 1025, 3, 0.25, du, d1, 0));
    CK(cudaMemcpy(m1, a.data(), 3 * n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(v1, b.data(), 3 * n * 4, cudaMemcpyHostToDevice));
    CK(ffdp_cuda_compose_adam(&cw, &s, dout, m1, v1, 0, sc1 + 1025, 3, 0.25, du, o2, 0));
    CK(cudaDeviceSynchronize());
    {
      std::vector<float> x(3 * n), y(3 * n);
      CK(cudaMemcpy(x.data(), d1, 3 * n * 4, cudaMemcpyDeviceToHost));
      CK(cudaMemcpy(y.data(), o2, 3 * n * 4, cudaMemcpyDeviceToHost));
      e = memcmp(x.data(), y.data(), 3 * n * 4) ? 1.0 : 0.0;
    }
    t = median_ms([&] { ffdp_cuda_compose_adam(&cw, &s, d1, m2, v2, 0, sc1 + 1025, 3, 0.25, du, d1, 0); });
    rows.push_back({"adam step + compose, out = gradient (vs out of place: bits)", 84, t, e, 0.0});
    // Adam with the moments on the coarse grid (--state-resolution half): two steps against the
    // CPU operator, which rounds alike (error 0 expected); bytes: the gradient read, the step
    // written, both moments read and written and the transient at 1/8 of the voxels
    {
      const long long nc = reg_moment_values(&s, 1);
      float *cm, *cv, *cd, *ct;
      CK(cudaMalloc(&cm, nc * 4));
      CK(cudaMalloc(&cv, nc * 4));
      CK(cudaMalloc(&ct, nc * 4));
      CK(cudaMalloc(&cd, 3 * n * 4));
      CK(cudaMemset(cm, 0, nc * 4));
      CK(cudaMemset(cv, 0, nc * 4));
      std::vector<float> hm(nc, 0.f), hv(nc, 0.f), ht(nc), hd(3 * n), gd(3 * n), gm(nc);
      reg_moments mo = {hm.data(), hv.data(), 0, 1, ht.data()};
      float inv = 0.f;
      CK(cudaMemcpy(&inv, sc1 + 1025, 4, cudaMemcpyDeviceToHost));
      for (int step = 1; step <= 2; step++) {
        CK(cudaMemcpy(cd, dout, 3 * n * 4, cudaMemcpyDeviceToDevice));
        CK(ffdp_cuda_coarse_adam(&s, cd, cm, cv, 0, ct, sc1 + 1025, step, 0.25, 0));
        CK(cudaMemcpy(hd.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
        if (reg_coarse_adam(&s, hd.data(), &mo, step, 0.25, inv)) fprintf(stderr, "coarse adam: no host memory\n"), exit(1);
      }
      CK(cudaMemcpy(gd.data(), cd, 3 * n * 4, cudaMemcpyDeviceToHost));
      e = rel_err(gd.data(), hd.data(), 3 * n);
      CK(cudaMemcpy(gm.data(), cm, nc * 4, cudaMemcpyDeviceToHost));
      e = std::max(e, rel_err(gm.data(), hm.data(), nc));
      CK(cudaMemcpy(gm.data(), cv, nc * 4, cudaMemcpyDeviceToHost));
      e = std::max(e, rel_err(gm.data(), hv.data(), nc));
      pool_high_and_reset();
      t = median_ms([&] { ffdp_cuda_coarse_adam(&s, cd, cm, cv, 0, ct, sc1 + 1025, 3, 0.25, 0); });
      rows.push_back({"coarse adam step (moments at half resolution; vs CPU)", 30, t, e, pool_high_and_reset() / 1e6});
      // its three launches apart: the restriction (the gradient read, the transient written at
      // 1/8 of the voxels) and the moments' update (transient, m, v read, m, v written: 20 B a
      // coarse value); the step is the rest
      {
        auto restrict_fn = [&] { return ffdp_cuda_coarse_restrict(&s, dout, ct, sc1 + 1025, 0); };
        CK(restrict_fn());
        t = median_ms([&] { restrict_fn(); });
        rows.push_back({"coarse restriction alone", 12 + 1.5, t, 0.0, 0.0});
        t = median_ms([&] { ffdp_cuda_coarse_update(&s, cm, cv, 0, ct, sc1 + 1025, 0); });
        rows.push_back({"coarse moments' update alone", 20.0 * nc / n, t, 0.0, 0.0});
      }
      // the coarse step inside the composition (one process's path) against the step, then the
      // composition: output and moments the same bits; bytes: the gradient read, the warp
      // gathered, the result written (the moments at 1/8 of the voxels and the restriction's
      // reads ride along)
      {
        float *cm2, *cv2, *o1, *o2c;
        CK(cudaMalloc(&cm2, nc * 4));
        CK(cudaMalloc(&cv2, nc * 4));
        CK(cudaMalloc(&o1, 3 * n * 4));
        CK(cudaMalloc(&o2c, 3 * n * 4));
        CK(cudaMemcpy(cm2, cm, nc * 4, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(cv2, cv, nc * 4, cudaMemcpyDeviceToDevice));
        CK(cudaMemcpy(cd, dout, 3 * n * 4, cudaMemcpyDeviceToDevice));
        CK(ffdp_cuda_coarse_adam(&s, cd, cm, cv, 0, ct, sc1 + 1025, 4, 0.25, 0));
        CK(ffdp_cuda_compose_fwd(&cw, T, &s, cd, &s, du, o1, 0));
        poison(o2c, 3 * n);
        CK(ffdp_cuda_compose_coarse_adam(&cw, &s, dout, cm2, cv2, 0, ct, sc1 + 1025, 4, 0.25, du, o2c, 0));
        CK(cudaDeviceSynchronize());
        double same = 1;
        const float *pairs[3][2] = {{o1, o2c}, {cm, cm2}, {cv, cv2}};
        const long long cnt[3] = {3 * n, nc, nc};
        for (int q = 0; q < 3; q++) {
          std::vector<float> x(cnt[q]), y(cnt[q]);
          CK(cudaMemcpy(x.data(), pairs[q][0], cnt[q] * 4, cudaMemcpyDeviceToHost));
          CK(cudaMemcpy(y.data(), pairs[q][1], cnt[q] * 4, cudaMemcpyDeviceToHost));
          if (memcmp(x.data(), y.data(), cnt[q] * 4)) same = 0;
        }
        pool_high_and_reset();
        t = median_ms([&] { ffdp_cuda_compose_coarse_adam(&cw, &s, dout, cm2, cv2, 0, ct, sc1 + 1025, 5, 0.25, du, o2c, 0); });
        rows.push_back({"coarse adam step + compose (fused; vs the two passes: bits)", 40, t, same ? 0.0 : 1.0,
                        pool_high_and_reset() / 1e6});
        t = median_ms([&] {
          ffdp_cuda_coarse_adam(&s, cd, cm, cv, 0, ct, sc1 + 1025, 5, 0.25, 0);
          ffdp_cuda_compose_fwd(&cw, T, &s, cd, &s, du, o1, 0);
        });
        rows.push_back({"coarse adam step, then compose (the two passes)", 64, t, 0.0, 0.0});
        // the launch's A/B switch (FFDP_COARSE_TILE=plane: a block a plane, not a march) on both
        // paths, from the same moments: step (or composition) and moments against the default's
        // (error: values differing), then the time
        auto coarse_ab = [&](const char *name, const char *var, const char *val, bool fused, double bytes) {
          float *bm, *bv;
          CK(cudaMalloc(&bm, nc * 4));
          CK(cudaMalloc(&bv, nc * 4));
          CK(cudaMemcpy(bm, cm2, nc * 4, cudaMemcpyDeviceToDevice));
          CK(cudaMemcpy(bv, cv2, nc * 4, cudaMemcpyDeviceToDevice));
          float *res = fused ? o2c : cd;
          auto once = [&](int step) {
            if (fused) return ffdp_cuda_compose_coarse_adam(&cw, &s, dout, cm2, cv2, 0, ct, sc1 + 1025, step, 0.25, du, o2c, 0);
            CK(cudaMemcpy(cd, dout, 3 * n * 4, cudaMemcpyDeviceToDevice));
            return ffdp_cuda_coarse_adam(&s, cd, cm2, cv2, 0, ct, sc1 + 1025, step, 0.25, 0);
          };
          std::vector<float> a[3], b[3];
          const float *bufs[3] = {res, cm2, cv2};
          const long long cnt[3] = {3 * n, nc, nc};
          for (int pass = 0; pass < 2; pass++) {
            CK(cudaMemcpy(cm2, bm, nc * 4, cudaMemcpyDeviceToDevice));
            CK(cudaMemcpy(cv2, bv, nc * 4, cudaMemcpyDeviceToDevice));
            if (pass) setenv(var, val, 1);
            poison(res, 3 * n);
            CK(once(6));
            for (int q = 0; q < 3; q++) {
              (pass ? b : a)[q].resize(cnt[q]);
              CK(cudaMemcpy((pass ? b : a)[q].data(), bufs[q], cnt[q] * 4, cudaMemcpyDeviceToHost));
            }
          }
          double diff = 0;
          for (int q = 0; q < 3; q++) diff += (double)count_differing(a[q].data(), b[q].data(), cnt[q]);
          const float tt = fused ? median_ms([&] { once(7); }) : median_ms([&] { ffdp_cuda_coarse_adam(&s, cd, cm2, cv2, 0, ct, sc1 + 1025, 7, 0.25, 0); });
          unsetenv(var);
          rows.push_back({name, bytes, tt, diff, 0.0});
          CK(cudaFree(bm));
          CK(cudaFree(bv));
        };
        coarse_ab("coarse adam step, a block a plane (FFDP_COARSE_TILE=plane; vs march: values differing)",
                  "FFDP_COARSE_TILE", "plane", false, 30);
        coarse_ab("coarse adam step + compose, a block a plane (FFDP_COARSE_TILE=plane; values differing)",
                  "FFDP_COARSE_TILE", "plane", true, 40);
        for (float *b : {cm2, cv2, o1, o2c}) CK(cudaFree(b));
      }
      for (float *b : {cm, cv, cd, ct}) CK(cudaFree(b));
    }
    for (float *b : {sc1, sc2, m1, v1, m2, v2, d1, o2}) CK(cudaFree(b));
  }

  // --- slabs: the distributed layer calls LNCC and blur on a shard with halos (zlo < z0,
  // z1 < zhi); only owned planes are compared (the loss is the shard's part of the sum)
  {
    const long long P = N * N, h = 6, z0 = N / 3, z1 = 2 * N / 3;
    ffdp_slab ss = {N, N, N, z0, z1, z0 - h, z1 + h};
    const long long own = (z1 - z0) * P;
    ffdp_lncc_params lp = {5, FFDP_WINDOW_BOX, 1e-5};
    std::vector<float> gref(n, 0.f);
    double lcs = ffdp_lncc_f32(&lp, &ss, F.data() + ss.zlo * P, M.data() + ss.zlo * P, NULL, 1.0 / n, gref.data());
    poison(dout, n);
    double lgs;
    CK(ffdp_cuda_lncc(&lp, &ss, dF + ss.zlo * P, dM + ss.zlo * P, NULL, 1.0 / n, dout, &lgs, 0));
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    const long long off = (z0 - ss.zlo) * P;
    double e = fmax(rel_err(got.data() + off, gref.data() + off, own), fabs(lgs - lcs) / fabs(lcs));
    rows.push_back({"lncc k=5 box, slab with halo", 12, 0.0, e, 0.0});
    for (const char *kern : {"lean", "march"}) {  // k = 9 on a shard whose halo is exactly the 2r = 8 planes it needs
      if (!strcmp(kern, "march")) setenv("FFDP_LNCC_KERNEL", "march", 1);
      const long long h9 = 8;
      ffdp_slab s9 = {N, N, N, z0, z1, z0 - h9, z1 + h9};
      ffdp_lncc_params l9 = {9, FFDP_WINDOW_BOX, 1e-5};
      std::vector<float> g9(n, 0.f);
      const double lc9 = ffdp_lncc_f32(&l9, &s9, F.data() + s9.zlo * P, M.data() + s9.zlo * P, NULL, 1.0 / n, g9.data());
      poison(dout, n);
      double lg9;
      CK(ffdp_cuda_lncc(&l9, &s9, dF + s9.zlo * P, dM + s9.zlo * P, NULL, 1.0 / n, dout, &lg9, 0));
      CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
      const long long o9 = (z0 - s9.zlo) * P;
      rows.push_back({strcmp(kern, "march") ? "lncc k=9 box, slab with halo" : "lncc k=9 box, march kernel running sums, slab with halo",
                      12, 0.0, fmax(rel_err(got.data() + o9, g9.data() + o9, own), fabs(lg9 - lc9) / fabs(lc9)), 0.0});
      // what ranks rely on: the slab's owned planes bit for bit the whole volume's (both
      // gradients, k = 5 and 9; the loss is a sum over blocks and may differ in its last bits)
      for (int k : {5, 9}) {
        const long long hk = k - 1;
        ffdp_slab sk = {N, N, N, z0, z1, z0 - hk, z1 + hk};
        ffdp_lncc_params lk = {k, FFDP_WINDOW_BOX, 1e-5};
        std::vector<float> whole(2 * n), part(2 * n);
        float *dgF;
        CK(cudaMalloc(&dgF, n * 4));
        double l;
        CK(ffdp_cuda_lncc2(&lk, &s, dF, dM, NULL, 1.0 / n, dgF, dout, &l, 0));
        CK(cudaMemcpy(whole.data(), dout, n * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(whole.data() + n, dgF, n * 4, cudaMemcpyDeviceToHost));
        poison(dout, n), poison(dgF, n);
        CK(ffdp_cuda_lncc2(&lk, &sk, dF + sk.zlo * P, dM + sk.zlo * P, NULL, 1.0 / n, dgF + sk.zlo * P, dout + sk.zlo * P, &l, 0));
        CK(cudaMemcpy(part.data(), dout, n * 4, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(part.data() + n, dgF, n * 4, cudaMemcpyDeviceToHost));
        CK(cudaFree(dgF));
        double diff = 0;
        for (long long i = z0 * P; i < z1 * P; i++)
          diff += (memcmp(&whole[i], &part[i], 4) != 0) + (memcmp(&whole[n + i], &part[n + i], 4) != 0);
        char nm[128];
        snprintf(nm, sizeof nm, "lncc k=%d box, both grads, %sslab vs whole volume (values differing)", k,
                 strcmp(kern, "march") ? "" : "march kernel, ");
        rows.push_back({nm, 16, 0.0, diff, 0.0});
      }
      unsetenv("FFDP_LNCC_KERNEL");
    }
    const double sg[3] = {1.2, 1.5, 2.0};
    ffdp_blur_f32(&ss, u.data() + 3 * ss.zlo * P, 3, sg, ref.data());
    poison(dout, 3 * n);
    CK(ffdp_cuda_blur(&ss, du + 3 * ss.zlo * P, 3, sg, dout, dtmp, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(got.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    rows.push_back({"blur vec3, slab with halo", 24, 0.0, rel_err(got.data() + 3 * off, ref.data() + 3 * off, 3 * own), 0.0});
    {  // scalar on the slab (isotropic: the y-blocked one pass, forced where planes are narrow)
      setenv("FFDP_BLUR_SPLIT", "1", 1);
      ffdp_blur_f32(&ss, F.data() + ss.zlo * P, 1, sig, ref.data());
      poison(dout, n);
      CK(ffdp_cuda_blur(&ss, dF + ss.zlo * P, 1, sig, dout, dtmp, 0));
      CK(cudaDeviceSynchronize());
      unsetenv("FFDP_BLUR_SPLIT");
      CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
      rows.push_back({"blur scalar (y-blocked one pass), slab with halo", 8, 0.0, rel_err(got.data() + off, ref.data() + off, own), 0.0});
    }
    setenv("FFDP_BLUR_SPLIT", "1", 1);  // isotropic: the two-pass kernels, z-chunks and all
    setenv("FFDP_BLUR_FUSED", "off", 1);
    ffdp_blur_f32(&ss, u.data() + 3 * ss.zlo * P, 3, sig, ref.data());
    poison(dout, 3 * n);
    CK(ffdp_cuda_blur(&ss, du + 3 * ss.zlo * P, 3, sig, dout, dtmp, 0));
    CK(cudaDeviceSynchronize());
    unsetenv("FFDP_BLUR_FUSED");
    unsetenv("FFDP_BLUR_SPLIT");
    CK(cudaMemcpy(got.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    rows.push_back({"blur vec3 two-pass, slab with halo", 24, 0.0,
                    rel_err(got.data() + 3 * off, ref.data() + 3 * off, 3 * own), 0.0});
    {  // the y-blocked one pass (the default for wide planes) on the slab
      setenv("FFDP_BLUR_SPLIT", "1", 1);
      poison(dout, 3 * n);
      CK(ffdp_cuda_blur(&ss, du + 3 * ss.zlo * P, 3, sig, dout, dtmp, 0));
      CK(cudaDeviceSynchronize());
      unsetenv("FFDP_BLUR_SPLIT");
      CK(cudaMemcpy(got.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
      rows.push_back({"blur vec3 one pass, y-blocked rows, slab with halo", 24, 0.0,
                      rel_err(got.data() + 3 * off, ref.data() + 3 * off, 3 * own), 0.0});
    }
    // in place on the slab (halo planes read, not written), a ring of 20 planes: several chunks
    {
      const long long ns = ss.zhi - ss.zlo;
      float *ring;
      CK(cudaMalloc(&ring, 3 * 20 * P * 4));
      for (const char *path : {"default path", "ring"}) {  // FFDP_BLUR_INPLACE=ring: the two passes
        if (!strcmp(path, "ring")) setenv("FFDP_BLUR_INPLACE", "ring", 1);
        CK(cudaMemcpy(dout, du + 3 * ss.zlo * P, 3 * ns * P * 4, cudaMemcpyDeviceToDevice));
        CK(ffdp_cuda_blur_inplace3(&ss, dout, 1.5, ring, 20 < ns ? 20 : ns, nullptr, 0));
        CK(cudaDeviceSynchronize());
        unsetenv("FFDP_BLUR_INPLACE");
        CK(cudaMemcpy(got.data(), dout, 3 * ns * P * 4, cudaMemcpyDeviceToHost));
        double e = rel_err(got.data() + 3 * off, ref.data() + 3 * off, 3 * own);
        // the halo planes are the input's still
        if (memcmp(got.data(), u.data() + 3 * ss.zlo * P, 3 * off * 4) ||
            memcmp(got.data() + 3 * (off + own), u.data() + 3 * (ss.zlo * P + off + own), 3 * (ns * P - off - own) * 4))
          e = 1.0;
        char nm[96];
        snprintf(nm, sizeof nm, "blur vec3 in place, slab with halo, ring 20 planes (%s)", path);
        rows.push_back({nm, 24, 0.0, e, 0.0});
      }
      CK(cudaFree(ring));
    }
    // radius 12 (sigma 4, ANTs-style smoothing): the two-pass kernels against the CPU, their
    // largest norm against a separate pass over their output, and the three-pass path timed
    const double big[3] = {4.0, 4.0, 4.0};
    ffdp_slab s12 = ffdp_slab_whole(N, N, N);
    ffdp_blur_f32(&s12, u.data(), 3, big, ref.data());
    float *sc;
    CK(cudaMalloc(&sc, 2 * 1026 * 4));
    poison(dout, 3 * n);
    CK(ffdp_cuda_blur(&s12, du, 3, big, dout, dtmp, 0));
    CK(ffdp_cuda_maxnorm3_dev(n, dout, sc, 0));
    CK(ffdp_cuda_blur_maxnorm3(&s12, du, big, dgu, dtmp, sc + 1026, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(got.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    std::vector<float> g2(3 * n);
    CK(cudaMemcpy(g2.data(), dgu, 3 * n * 4, cudaMemcpyDeviceToHost));
    float m1[2], m2[2];
    CK(cudaMemcpy(m1, sc + 1024, 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(m2, sc + 1026 + 1024, 8, cudaMemcpyDeviceToHost));
    const bool norm_same = !memcmp(got.data(), g2.data(), 3 * n * 4) && !memcmp(m1, m2, 8) && m1[0] > 0.f;
    float t12 = median_ms([&] { ffdp_cuda_blur(&s12, du, 3, big, dout, dtmp, 0); });
    rows.push_back({"blur vec3 sigma=4 (radius 12, two-pass)", 24, t12, rel_err(got.data(), ref.data(), 3 * n), 0.0});
    rows.push_back({"blur vec3 sigma=4 + largest norm (vs separate: bits)", 24, 0.0, norm_same ? 0.0 : 1.0, 0.0});
    setenv("FFDP_BLUR_SPLIT", "0", 1);
    poison(dout, 3 * n);
    CK(ffdp_cuda_blur(&s12, du, 3, big, dout, dtmp, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(got.data(), dout, 3 * n * 4, cudaMemcpyDeviceToHost));
    t12 = median_ms([&] { ffdp_cuda_blur(&s12, du, 3, big, dout, dtmp, 0); });
    unsetenv("FFDP_BLUR_SPLIT");
    rows.push_back({"blur vec3 sigma=4 (three passes)", 24, t12, rel_err(got.data(), ref.data(), 3 * n), 0.0});
    CK(cudaFree(sc));
    const double huge[3] = {21.0, 21.0, 21.0};  // radius 63: rings past 48 KB of shared memory
    ffdp_blur_f32(&s12, F.data(), 1, huge, ref.data());
    poison(dout, n);
    CK(ffdp_cuda_blur(&s12, dF, 1, huge, dout, dtmp, 0));
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(got.data(), dout, n * 4, cudaMemcpyDeviceToHost));
    rows.push_back({"blur scalar sigma=21 (radius 63, check only)", 4, 0.0, rel_err(got.data(), ref.data(), n), 0.0});
  }

  printf("\n| kernel | min bytes/voxel | median ms | GB/s | %% of copy | rel err vs CPU | extra MB |\n");
  printf("|---|---|---|---|---|---|---|\n");
  int bad = 0;
  for (auto &r : rows) {
    double gbs = r.ms > 0 ? r.bpv * n / (r.ms * 1e6) : 0;  // ms = 0: a check-only row
    printf("| %s | %.0f | %.3f | %.0f | %.1f %% | %.2e | %.1f |\n", r.name.c_str(), r.bpv, r.ms, gbs, 100 * gbs / copy_gbs, r.err,
           r.extra_mb);
    bad += !(r.err < 1e-4);
  }
  printf("\n%s\n", bad ? "CHECK FAILED: some kernel disagrees with its CPU operator" : "all kernels agree with the CPU operators");
  return bad ? 1 : 0;
}
