// Checks and times the copies between the device and large pageable host memory: the driver's
// own pageable copy, ffdp's staged copy (reg_cuda_copy_up/down, staged_copy_cuda.cu), and for
// scale the copy into page-locked memory with what locking and unlocking it cost. Built with the
// library (CMake target ffdp_transfer); run as  ffdp_transfer [MB ...]  (default 300.01 4096
// 12288: a size that ends inside a piece, and the gigavoxel field's). Every staged copy is
// compared byte for byte with the source. Each time: the better of two runs.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "reg/reg_internal.h"

#define CK(x)                                                                                      \
  do {                                                                                             \
    cudaError_t e_ = (cudaError_t)(x);                                                             \
    if (e_) {                                                                                      \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));                  \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

static double now_s() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

// Pageable memory with its pages mapped (as ffdp's volumes are before a copy), in 2 MB pages
// where the kernel gives them.
static unsigned char *host_mapped(size_t bytes) {
  void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "transfer: cannot map %zu bytes\n", bytes);
    exit(1);
  }
  madvise(p, bytes, MADV_HUGEPAGE);
  return (unsigned char *)p;
}

// A pattern with no period a piece boundary could hide: word i holds a hash of i.
static void fill(unsigned char *h, size_t bytes) {
  const size_t n = bytes / 4;
  unsigned *w = (unsigned *)h;
  for (size_t i = 0; i < n; i++) w[i] = (unsigned)(i * 2654435761u) ^ (unsigned)(i >> 29);
  for (size_t i = n * 4; i < bytes; i++) h[i] = (unsigned char)i;
}

template <class F>
static double best_ms(F f) {
  double b = 1e30;
  for (int r = 0; r < 2; r++) {
    CK(cudaDeviceSynchronize());
    const double t0 = now_s();
    CK(f());
    CK(cudaDeviceSynchronize());
    const double t = 1e3 * (now_s() - t0);
    b = t < b ? t : b;
  }
  return b;
}

static void row(const char *what, size_t bytes, double ms) {
  printf("| %-44s | %9.1f | %6.1f |\n", what, ms, ms > 0 ? bytes / (ms * 1e6) : 0.0);
}

int main(int argc, char **argv) {
  double sizes[8] = {300.01, 4096, 12288};
  int ns = 3;
  if (argc > 1) {
    ns = 0;
    for (int i = 1; i < argc && ns < 8; i++) sizes[ns++] = atof(argv[i]);
  }
  cudaDeviceProp pr;
  CK(cudaGetDeviceProperties(&pr, 0));
  const char *pm = getenv("FFDP_STAGED_PIECE_MB");
  printf("device: %s; staged copies %s, pieces of %s MB\n", pr.name, reg_staged_copy_on() ? "on" : "off (FFDP_STAGED_COPY=0)",
         pm ? pm : "16");
  int bad = 0;
  for (int k = 0; k < ns; k++) {
    const size_t bytes = (size_t)(sizes[k] * (1 << 20));
    unsigned char *h = host_mapped(bytes), *g = host_mapped(bytes), *d = nullptr;
    fill(h, bytes);
    memset(g, 0, bytes);
    CK(cudaMalloc((void **)&d, bytes));
    printf("\n%.2f MB\n| %-44s | %9s | %6s |\n|---|---:|---:|\n", bytes / 1048576.0, "copy", "ms", "GB/s");
    row("up, the driver's pageable copy", bytes, best_ms([&] { return cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice); }));
    CK(cudaMemset(d, 0, bytes));
    row("up, staged", bytes, best_ms([&] { return reg_cuda_copy_up(d, h, bytes); }));
    CK(cudaMemcpy(g, d, bytes, cudaMemcpyDeviceToHost));
    const int up_ok = memcmp(g, h, bytes) == 0;
    memset(g, 0, bytes);
    row("down, the driver's pageable copy", bytes, best_ms([&] { return cudaMemcpy(g, d, bytes, cudaMemcpyDeviceToHost); }));
    memset(g, 0, bytes);
    row("down, staged", bytes, best_ms([&] { return reg_cuda_copy_down(g, d, bytes); }));
    const int down_ok = memcmp(g, h, bytes) == 0;
    double t0 = now_s();
    const int locked = reg_cuda_pin(g, bytes);
    const double lock_ms = 1e3 * (now_s() - t0);
    if (locked) {
      row("page-locking the host buffer", bytes, lock_ms);
      row("down into the page-locked buffer", bytes, best_ms([&] { return cudaMemcpy(g, d, bytes, cudaMemcpyDeviceToHost); }));
      t0 = now_s();
      reg_cuda_unpin(g);
      row("unlocking it", bytes, 1e3 * (now_s() - t0));
    }
    printf("check: staged up %s, staged down %s\n", up_ok ? "equal" : "DIFFERENT", down_ok ? "equal" : "DIFFERENT");
    bad += !up_ok + !down_ok;
    CK(cudaFree(d));
    munmap(h, bytes), munmap(g, bytes);
  }
  return bad ? 1 : 0;
}
