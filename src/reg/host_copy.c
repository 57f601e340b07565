/* A large host-to-host copy split over the OpenMP team, for the staged device copies
 * (staged_copy_cuda.cu): the driver's own staging, one thread's copies, moved 9-14 GB/s (run 200);
 * with every thread copying, the ring keeps pace with the link (52 GB/s, run 201). Copying out
 * of the ring with cache-bypassing stores changed nothing there (12 GB down 245 against 248 ms),
 * so plain memcpy. */
#include "reg/reg_internal.h"
#include <string.h>

void reg_host_copy(void *dst, const void *src, size_t bytes) {
  const size_t piece = (size_t)1 << 20;
  const int64_t n = (int64_t)((bytes + piece - 1) / piece);
  char *d = dst;
  const char *s = src;
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t i = 0; i < n; i++) {
    const size_t off = (size_t)i * piece, len = bytes - off < piece ? bytes - off : piece;
    memcpy(d + off, s + off, len);
  }
}
