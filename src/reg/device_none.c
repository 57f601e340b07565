/* The device entry points of a build without the CUDA backend (device_cuda.cu otherwise). */
#include "ffdp/plan.h"
#include "core/err.h"

#ifndef FFDP_HAVE_CUDA
int ffdp_cuda_device_count(void) { return 0; }

ffdp_status ffdp_device_warmup(int device, const ffdp_comm *comm, ffdp_error *err) {
  (void)comm;
  if (device != 1) return FFDP_OK;
  return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "this build of ffdp has no CUDA backend; use --device cpu");
}

ffdp_status ffdp_cuda_memory(double *free_bytes, double *total_bytes, ffdp_error *err) {
  *free_bytes = *total_bytes = 0;
  return ffdp_fail(err, FFDP_ERR_UNSUPPORTED, "this build of ffdp has no CUDA backend");
}
#else
typedef int ffdp_device_none_unused; /* ISO C: a translation unit must declare something */
#endif
