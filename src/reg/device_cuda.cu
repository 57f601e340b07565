// The CUDA device as the registration driver sees it: whether there is one, how much memory
// it has free, and starting its runtime ahead of time (so that start-up can overlap loading).
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>
#include "core/comm_internal.h"
#include "core/err.h"
#include "ffdp/plan.h"
#include "ops/ops_cuda.h"
#include "reg/reg_internal.h"

extern "C" double reg_cuda_used_bytes(void) {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  return (double)(total_b - free_b);
}

extern "C" int reg_cuda_pin(const void *p, size_t bytes) {
  if (!bytes) return 0;
  if (cudaHostRegister(const_cast<void *>(p), bytes, cudaHostRegisterDefault) == cudaSuccess) return 1;
  (void)cudaGetLastError(); /* a refusal (limits, unsupported) leaves the memory pageable */
  return 0;
}

extern "C" void reg_cuda_unpin(const void *p) { cudaHostUnregister(const_cast<void *>(p)); }

extern "C" int reg_cuda_device_count(void) {
  int ndev = 0;
  return cudaGetDeviceCount(&ndev) == cudaSuccess ? ndev : 0;
}

extern "C" ffdp_status ffdp_cuda_memory(double *free_bytes, double *total_bytes, ffdp_error *err) {
  size_t f = 0, t = 0;
  *free_bytes = *total_bytes = 0;
  if (reg_cuda_device_count() < 1) return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "no CUDA device is available");
  cudaError_t e = cudaMemGetInfo(&f, &t);
  if (e) return ffdp_fail(err, FFDP_ERR_IO, "cannot query the CUDA device: %s", cudaGetErrorString(e));
  *free_bytes = (double)f, *total_bytes = (double)t;
  return FFDP_OK;
}

/* The GPU of this rank: ranks of one host take its GPUs in turn (and share them when there are
 * more ranks than GPUs). */
static int rank_device(const ffdp_comm *comm) {
  const int ndev = reg_cuda_device_count();
  return ndev > 0 ? ffdp_comm_local_rank(comm) % ndev : 0;
}

extern "C" ffdp_status reg_cuda_select(const ffdp_comm *comm, ffdp_error *err) {
  const ffdp_comm *c = ffdp_comm_or_single(comm);
  const int dev = rank_device(comm);
  cudaError_t e = cudaSetDevice(dev);
  if (!e) e = (cudaError_t)ffdp_cuda_ops_setup(dev);
  ffdp_status st = e ? ffdp_fail(err, FFDP_ERR_IO, "cannot use CUDA device %d: %s", dev, cudaGetErrorString(e)) : FFDP_OK;
  if ((st = c->agree(c, st, err)) || c->size < 2) return st;
  if (!c->gpu_setup) return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "this communicator cannot carry GPU data");
  return c->gpu_setup(c, dev, err);
}

extern "C" ffdp_status ffdp_device_warmup(int device, const ffdp_comm *comm, ffdp_error *err) {
  if (device != 1) return FFDP_OK;
  if (reg_cuda_device_count() < 1)
    return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "no CUDA device is available; use --device cpu (or auto)");
  const int dev = rank_device(comm);
  const double t0 = reg_now();
  cudaError_t e = cudaSetDevice(dev);
  if (!e) e = cudaFree(nullptr); /* creates the primary context */
  if (e) return ffdp_fail(err, FFDP_ERR_IO, "cannot start the CUDA device: %s", cudaGetErrorString(e));
  const double t1 = reg_now();
  /* the stream-ordered pool's first memory mapped now, while the images load, instead of in the
   * first metric call of the first stage (the pool keeps it: ops_setup's release threshold) */
  const char *wp = getenv("FFDP_WARM_POOL");
  if (!(wp && !strcmp(wp, "0")) && !ffdp_cuda_ops_setup(dev)) {
    void *p = nullptr;
    if (cudaMallocAsync(&p, 1u << 20, nullptr) == cudaSuccess) cudaFreeAsync(p, nullptr);
    cudaStreamSynchronize(nullptr);
    cudaGetLastError(); /* a warm-up that failed costs nothing but its time */
  }
  reg_trace("device warm-up: context %.1f ms, memory pool %.1f ms", 1e3 * (t1 - t0), 1e3 * (reg_now() - t1));
  return FFDP_OK;
}

extern "C" int ffdp_cuda_device_count(void) { return reg_cuda_device_count(); }
