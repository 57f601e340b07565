// Times the deformable step's parts at a registration level's own geometry (gpu_ops times cubes):
// the smoothing of the gradient in place with its largest norm, the Adam step fused with the
// composition, the smoothing of the new warp in place, the whole reg_cuda_field_step of one
// process, and for scale a device copy and the out-of-place blur. Built with the library (CMake
// target ffdp_step_parts); run as  ffdp_step_parts NX NY NZ [sigma]  (the medium preset's finest
// SyN level is 182 218 182 with sigma 1.5). Each row: median ms of 20 calls after 3 warm-ups, the bytes the
// part must move, and that as a fraction of the copy bandwidth.
#include <cuda_runtime.h>
#include <algorithm>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>
#include "ops/ops_cuda.h"
#include "reg/dev_layout.h"
#include "reg/reg_internal.h"
#include "reg/step_cuda.h"

#define CK(x)                                                                                      \
  do {                                                                                             \
    cudaError_t e_ = (cudaError_t)(x);                                                             \
    if (e_) {                                                                                      \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));                  \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

template <class F>
static double median_ms(F f) {
  cudaEvent_t a, b;
  cudaEventCreate(&a), cudaEventCreate(&b);
  for (int i = 0; i < 3; i++) f();
  std::vector<float> t;
  for (int i = 0; i < 20; i++) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    CK(cudaEventSynchronize(b));
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  cudaEventDestroy(a), cudaEventDestroy(b);
  return t[t.size() / 2];
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: step_parts NX NY NZ [sigma]\n");
    return 2;
  }
  const long long nx = atoll(argv[1]), ny = atoll(argv[2]), nz = atoll(argv[3]), n = nx * ny * nz;
  const double sigma = argc > 4 ? atof(argv[4]) : 1.5;
  CK(cudaSetDevice(0));
  CK(ffdp_cuda_ops_setup(0));
  const ffdp_slab s = ffdp_slab_whole(nx, ny, nz);
  const long long ring = reg_step_ring_floats(nx, ny, nz, sigma), ring_planes = ring / (3 * nx * ny);
  float *u, *gu, *rg, *scr, *tmp, *out, *mxh;
  void *am, *av;
  CK(cudaMalloc(&u, 3 * n * 4));
  CK(cudaMalloc(&gu, 3 * n * 4));
  CK(cudaMalloc(&out, 3 * n * 4));
  CK(cudaMalloc(&tmp, 3 * n * 4));
  CK(cudaMalloc(&am, 3 * n * 4));
  CK(cudaMalloc(&av, 3 * n * 4));
  CK(cudaMalloc(&rg, (ring > 0 ? ring : 1) * 4));
  CK(cudaMalloc(&scr, REG_RED_FLOATS * 4));
  CK(cudaMallocHost(&mxh, 4));
  std::vector<float> h(3 * n);
  for (long long i = 0; i < 3 * n; i++) h[i] = (float)((i * 2654435761ull % 1000) * 1e-3 - 0.5);
  CK(cudaMemcpy(gu, h.data(), 3 * n * 4, cudaMemcpyHostToDevice));
  for (long long i = 0; i < 3 * n; i++) h[i] *= 0.1f;
  CK(cudaMemcpy(u, h.data(), 3 * n * 4, cudaMemcpyHostToDevice));
  CK(cudaMemset(am, 0, 3 * n * 4));
  CK(cudaMemset(av, 0, 3 * n * 4));
  ffdp_warp cw;
  reg_compose_warp(ffdp_mat4_identity(), ffdp_mat4_identity(), &cw);
  const double copy = median_ms([&] { cudaMemcpyAsync(out, gu, 3 * n * 4, cudaMemcpyDeviceToDevice); });
  const double gbs = 2.0 * 3 * n * 4 / (copy * 1e6);
  printf("grid %lldx%lldx%lld (%.2f M voxels), sigma %.2f, ring %lld planes; device copy %.0f GB/s\n", nx, ny, nz,
         n / 1e6, sigma, ring_planes, gbs);
  printf("| part | min bytes/voxel | median ms | %% of copy |\n|---|---|---|---|\n");
  auto row = [&](const char *name, double bpv, double ms) {
    printf("| %s | %.0f | %.4f | %.1f %% |\n", name, bpv, ms, 100.0 * bpv * n / (ms * 1e6) / gbs);
  };
  row("device copy of a field", 24, copy);
  const double sg[3] = {sigma, sigma, sigma};
  row("blur out of place", 24, median_ms([&] { CK(ffdp_cuda_blur(&s, gu, 3, sg, out, tmp, nullptr)); }));
  row("scalar blur out of place", 8, median_ms([&] { CK(ffdp_cuda_blur(&s, gu, 1, sg, out, tmp, nullptr)); }));
  row("blur out of place + largest norm", 24,
      median_ms([&] { CK(ffdp_cuda_blur_maxnorm3(&s, gu, sg, out, tmp, scr, nullptr)); }));
  row("blur in place + largest norm", 24,
      median_ms([&] { CK(ffdp_cuda_blur_inplace3(&s, gu, sigma, rg, ring_planes, scr, nullptr)); }));
  row("blur in place", 24, median_ms([&] { CK(ffdp_cuda_blur_inplace3(&s, u, sigma, rg, ring_planes, nullptr, nullptr)); }));
  row("Adam step + composition (into the gradient, as the step)", 84, median_ms([&] {
        CK(ffdp_cuda_compose_adam(&cw, &s, gu, am, av, 0, scr + 1025, 5, 0.1, u, gu, nullptr));
      }));
  // the SyN loop's samplers: an image at the warp, its du-only backward; the composition in place
  float *img, *gimg;
  CK(cudaMalloc(&img, n * 4));
  CK(cudaMalloc(&gimg, n * 4));
  for (long long i = 0; i < n; i++) h[i] = (float)((i * 40503ull % 977) * 1e-3);
  CK(cudaMemcpy(img, h.data(), n * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(gimg, h.data(), n * 4, cudaMemcpyHostToDevice));
  ffdp_warp sw = cw;
  sw.interp = FFDP_INTERP_LINEAR;
  row("sample an image at the warp (fwd)", 20, median_ms([&] { CK(ffdp_cuda_sample_fwd(&sw, &s, u, &s, img, 1, out, nullptr)); }));
  row("its backward, du only", 32, median_ms([&] {
        CK(ffdp_cuda_sample_bwd(&sw, &s, u, &s, img, 1, gimg, out, nullptr, nullptr));
      }));
  const double T[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  row("composition (compose_fwd)", 36, median_ms([&] { CK(ffdp_cuda_compose_fwd(&cw, T, &s, gu, &s, u, out, nullptr)); }));
  float *fu = u, *fg = gu;
  ffdp_error err;
  reg_cuda_adam ad = {am, av, 0, 0};
  {  // check: two steps from the same state, the gradient smoothed in place and into a spare
     // field (reg_layout_spare), give the same warp and moments, bit for bit
    std::vector<float> g0(3 * n), u0(3 * n), r[2][3];
    for (long long i = 0; i < 3 * n; i++) g0[i] = (float)((i * 2654435761ull % 1000) * 1e-3 - 0.5);
    for (long long i = 0; i < 3 * n; i++) u0[i] = 0.1f * g0[(i * 7) % (3 * n)];
    for (int k = 0; k < 2; k++) {
      float *a = u, *b = gu;
      CK(cudaMemset(am, 0, 3 * n * 4));
      CK(cudaMemset(av, 0, 3 * n * 4));
      CK(cudaMemcpy(a, u0.data(), 3 * n * 4, cudaMemcpyHostToDevice));
      for (int step = 1; step <= 2; step++) {
        CK(cudaMemcpy(b, g0.data(), 3 * n * 4, cudaMemcpyHostToDevice));
        int moved = 1;
        CK(reg_cuda_field_step(nullptr, &s, &a, &b, rg, ring_planes, k ? out : nullptr, ad, step, &cw, 0.1, sigma, sigma,
                               scr, mxh, &moved, &err));
      }
      const float *src[3] = {a, (const float *)am, (const float *)av};
      for (int q = 0; q < 3; q++) {
        r[k][q].resize(3 * n);
        CK(cudaMemcpy(r[k][q].data(), src[q], 3 * n * 4, cudaMemcpyDeviceToHost));
      }
    }
    long long diff = 0;
    for (int q = 0; q < 3; q++)
      for (long long i = 0; i < 3 * n; i++) diff += memcmp(&r[0][q][i], &r[1][q][i], 4) != 0;
    printf("check: two steps with the gradient smoothed in place and into a spare field: %lld values differing (warp and "
           "both moments)\n", diff);
    if (diff) return 1;
    CK(cudaMemcpy(gu, g0.data(), 3 * n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(u, u0.data(), 3 * n * 4, cudaMemcpyHostToDevice));
  }
  int t = 1;
  row("whole field step (one process)", 132, median_ms([&] {
        int moved = 1;
        CK(reg_cuda_field_step(nullptr, &s, &fu, &fg, rg, ring_planes, nullptr, ad, t++, &cw, 0.1, sigma, sigma, scr, mxh,
                               &moved, &err));
      }));
  // with a spare field (reg_layout_spare): the gradient smoothed out of place into it
  row("whole field step, gradient smoothed into a spare field", 132, median_ms([&] {
        int moved = 1;
        CK(reg_cuda_field_step(nullptr, &s, &fu, &fg, rg, ring_planes, out, ad, t++, &cw, 0.1, sigma, sigma, scr, mxh,
                               &moved, &err));
      }));
  return 0;
}
