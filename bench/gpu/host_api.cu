// Host-side cost of the CUDA runtime calls that ffdp's launch paths make before and around
// each kernel: what a coarse level's iteration (~30 launches of a few microseconds of work
// each) pays on the CPU. Each row: the mean over many calls, in microseconds of host time.
// Build: nvcc -O2 -arch=sm_90 -o host_api bench/gpu/host_api.cu; run: ./host_api, or
// ./host_api pool MAX_MB (a pool of its own, 0: no maximum) for the first allocation alone.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

namespace {

__global__ void empty_kernel(float *p) {
  if (p && threadIdx.x == 1024) p[0] = 0.f;  // never true: the launch is what is timed
}

// A kernel with a large shared-memory opt-in, as the LNCC and blur tiles have.
__global__ void smem_kernel(float *p) {
  extern __shared__ float sh[];
  sh[threadIdx.x] = (float)threadIdx.x;
  __syncthreads();
  if (p && sh[(threadIdx.x + 1) % blockDim.x] < 0.f) p[0] = 1.f;
}

double now_us() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec * 1e-3;
}

int check(cudaError_t e, const char *what) {
  if (e == cudaSuccess) return 0;
  fprintf(stderr, "host_api: %s: %s\n", what, cudaGetErrorString(e));
  exit(1);
}

template <class F>
void row(const char *what, int n, F f) {
  for (int i = 0; i < n / 10 + 1; i++) f();  // warm-up
  check(cudaDeviceSynchronize(), what);
  const double t0 = now_us();
  for (int i = 0; i < n; i++) f();
  const double t1 = now_us();
  check(cudaDeviceSynchronize(), what);
  printf("%-64s %8.2f us\n", what, (t1 - t0) / n);
}

}  // namespace

// The process's first stream-ordered allocation from a pool of its own (cudaMemPoolCreate, with a
// maximum size when max_mb > 0) instead of the device's default pool: what a pool made at
// start-up would cost.
int first_from_own_pool(long long max_mb) {
  check(cudaFree(nullptr), "context");
  cudaMemPoolProps props = {};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = 0;
  props.maxSize = max_mb > 0 ? (size_t)max_mb << 20 : 0;
  cudaMemPool_t pool;
  const double t0 = now_us();
  check(cudaMemPoolCreate(&pool, &props), "pool create");
  const double t1 = now_us();
  check(cudaDeviceSetMemPool(0, pool), "set pool");
  void *p = nullptr;
  const double t2 = now_us();
  check(cudaMallocAsync(&p, 1 << 20, nullptr), "first cudaMallocAsync");
  const double t3 = now_us();
  check(cudaFreeAsync(p, nullptr), "free");
  check(cudaStreamSynchronize(nullptr), "sync");
  printf("own pool (max %lld MB): create %.2f us, first cudaMallocAsync %.2f us\n", max_mb, t1 - t0, t3 - t2);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 2 && !strcmp(argv[1], "pool")) return first_from_own_pool(atoll(argv[2]));
  cudaDeviceProp prop;
  check(cudaGetDeviceProperties(&prop, 0), "properties");
  printf("device: %s\n", prop.name);
  {  // the process's first stream-ordered allocation (the default pool's first memory), then the next
    void *p = nullptr, *q = nullptr;
    check(cudaFree(nullptr), "context");
    const double tm = now_us();
    check(cudaMalloc(&q, 1 << 20), "first cudaMalloc");  // as ffdp: plain allocations come first
    printf("%-64s %8.2f us\n", "first cudaMalloc of the process (1 MB)", now_us() - tm);
    double t0 = now_us();
    check(cudaMallocAsync(&p, 1 << 20, nullptr), "first cudaMallocAsync");
    double t1 = now_us();
    check(cudaFreeAsync(p, nullptr), "free");
    check(cudaStreamSynchronize(nullptr), "sync");
    double t2 = now_us();
    check(cudaMallocAsync(&p, 1 << 20, nullptr), "second cudaMallocAsync");
    double t3 = now_us();
    check(cudaFreeAsync(p, nullptr), "free");
    check(cudaStreamSynchronize(nullptr), "sync");
    printf("%-64s %8.2f us (free + sync %.2f us, the next %.2f us)\n", "first cudaMallocAsync of the process (1 MB)", t1 - t0,
           t2 - t1, t3 - t2);
    check(cudaFree(q), "free");
  }
  float *d = nullptr, *h = nullptr;
  check(cudaMalloc(&d, 1 << 20), "malloc");
  check(cudaMallocHost(&h, 1 << 20), "malloc host");
  const int smem = 138 * 1024;
  check(cudaFuncSetAttribute(smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem), "attribute");
  const int N = 20000;
  row("empty launch (queued, no wait)", N, [&] { empty_kernel<<<1, 32>>>(d); });
  row("empty launch + cudaGetLastError", N, [&] {
    empty_kernel<<<1, 32>>>(d);
    cudaGetLastError();
  });
  row("launch with 138 KB dynamic shared memory", N, [&] { smem_kernel<<<1, 256, smem>>>(d); });
  row("cudaFuncSetAttribute(max dynamic shared memory)", N,
      [&] { cudaFuncSetAttribute(smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem); });
  row("cudaOccupancyMaxActiveBlocksPerMultiprocessor (138 KB)", N, [&] {
    int b = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, smem_kernel, 256, smem);
  });
  row("cudaGetDevice + cudaDeviceGetAttribute (SM count)", N, [&] {
    int dev = 0, v = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev);
  });
  row("getenv (an unset variable)", N, [&] {
    volatile const char *e = getenv("FFDP_HOST_API_UNSET");
    (void)e;
  });
  row("cudaMallocAsync + cudaFreeAsync (1 KB, default pool)", N, [&] {
    void *p = nullptr;
    cudaMallocAsync(&p, 1024, nullptr);
    cudaFreeAsync(p, nullptr);
  });
  row("cudaMemsetAsync (1 KB)", N, [&] { cudaMemsetAsync(d, 0, 1024, nullptr); });
  cudaEvent_t ev;
  check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "event");
  row("cudaEventRecord", N, [&] { cudaEventRecord(ev, nullptr); });
  row("cudaMemcpyAsync 8 B D2H pinned (queued)", N, [&] { cudaMemcpyAsync(h, d, 8, cudaMemcpyDeviceToHost, nullptr); });
  const int M = 5000;
  row("empty launch + cudaStreamSynchronize (round trip)", M, [&] {
    empty_kernel<<<1, 32>>>(d);
    cudaStreamSynchronize(nullptr);
  });
  row("cudaMemcpy 8 B D2H pageable (round trip)", M, [&] {
    double v;
    cudaMemcpy(&v, d, 8, cudaMemcpyDeviceToHost);
  });
  row("cudaMemcpyAsync 8 B pinned + cudaStreamSynchronize", M, [&] {
    cudaMemcpyAsync(h, d, 8, cudaMemcpyDeviceToHost, nullptr);
    cudaStreamSynchronize(nullptr);
  });
  row("cudaMemcpy 1.5 KB D2H pageable (round trip)", M, [&] { cudaMemcpy(h + 4096, d, 1536, cudaMemcpyDeviceToHost); });
  row("5 empty launches + cudaMemcpy 8 B pageable", M, [&] {
    for (int k = 0; k < 5; k++) empty_kernel<<<1, 32>>>(d);
    double v;
    cudaMemcpy(&v, d, 8, cudaMemcpyDeviceToHost);
  });
  row("5 empty launches + 2 x cudaMemcpy 8 B pageable", M, [&] {
    double v;
    for (int k = 0; k < 3; k++) empty_kernel<<<1, 32>>>(d);
    cudaMemcpy(&v, d, 8, cudaMemcpyDeviceToHost);
    for (int k = 0; k < 2; k++) empty_kernel<<<1, 32>>>(d);
    cudaMemcpy(&v, d, 8, cudaMemcpyDeviceToHost);
  });
  // GPU-side gap between back-to-back small kernels, queued ahead (no host in the way)
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  for (int rep = 0; rep < 2; rep++) {
    cudaEventRecord(a, nullptr);
    for (int i = 0; i < 2000; i++) empty_kernel<<<132, 128>>>(d);
    cudaEventRecord(b, nullptr);
    check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    if (rep) printf("%-64s %8.2f us\n", "GPU time per queued empty kernel (132 blocks)", ms * 1e3 / 2000);
  }
  // The same 2000 kernels as one CUDA graph (what a captured iteration would pay)
  cudaStream_t cs;
  check(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking), "stream");
  cudaGraph_t g;
  cudaGraphExec_t ge;
  check(cudaStreamBeginCapture(cs, cudaStreamCaptureModeThreadLocal), "capture");
  for (int i = 0; i < 30; i++) empty_kernel<<<132, 128, 0, cs>>>(d);
  check(cudaStreamEndCapture(cs, &g), "end capture");
  check(cudaGraphInstantiate(&ge, g, 0), "instantiate");
  for (int rep = 0; rep < 2; rep++) {
    const double t0 = now_us();
    cudaEventRecord(a, cs);
    for (int i = 0; i < 200; i++) cudaGraphLaunch(ge, cs);
    cudaEventRecord(b, cs);
    const double t1 = now_us();
    check(cudaEventSynchronize(b), "sync");
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    if (rep)
      printf("%-64s %8.2f us (host %.2f us a launch)\n", "GPU time per empty kernel in a 30-kernel graph", ms * 1e3 / 6000,
             (t1 - t0) / 200);
  }
  printf("host_api: done\n");
  return 0;
}
