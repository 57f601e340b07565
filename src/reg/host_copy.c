/* A large host-to-host copy split over the OpenMP team: one thread copies ~10 GB/s, short of
 * what the host link and memory move, so the staged device copies (staged_copy_cuda.cu) would
 * otherwise wait on it. */
#include "reg/reg_internal.h"
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* memcpy with stores that bypass the caches (x86-64; elsewhere memcpy): the destination of a
 * download is not read again soon, and ordinary stores first read each line they write (a
 * third of the memory traffic). memcpy itself streams only pieces larger than the C library's
 * threshold (a share of the last-level cache), far more than a thread's megabyte here. */
static void copy_streaming(char *d, const char *s, size_t len) {
#if defined(__SSE2__)
  size_t head = (size_t)(-(uintptr_t)d & 15);
  head = head < len ? head : len;
  memcpy(d, s, head);
  d += head, s += head, len -= head;
  const size_t nv = len / 64;
  for (size_t i = 0; i < nv; i++, d += 64, s += 64) {
    const __m128i a = _mm_loadu_si128((const __m128i *)s), b = _mm_loadu_si128((const __m128i *)(s + 16)),
                  c = _mm_loadu_si128((const __m128i *)(s + 32)), e = _mm_loadu_si128((const __m128i *)(s + 48));
    _mm_stream_si128((__m128i *)d, a), _mm_stream_si128((__m128i *)(d + 16), b);
    _mm_stream_si128((__m128i *)(d + 32), c), _mm_stream_si128((__m128i *)(d + 48), e);
  }
  _mm_sfence(); /* the streamed stores are visible before the thread leaves the team */
  memcpy(d, s, len - nv * 64);
#else
  memcpy(d, s, len);
#endif
}

void reg_host_copy(void *dst, const void *src, size_t bytes, int streaming) {
  const size_t piece = (size_t)1 << 20;
  const int64_t n = (int64_t)((bytes + piece - 1) / piece);
  char *d = dst;
  const char *s = src;
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t i = 0; i < n; i++) {
    const size_t off = (size_t)i * piece, len = bytes - off < piece ? bytes - off : piece;
    if (streaming) copy_streaming(d + off, s + off, len);
    else memcpy(d + off, s + off, len);
  }
}

int reg_staged_copy_on(void) {
  const char *e = getenv("FFDP_STAGED_COPY"); /* "0": the driver's pageable copies (comparisons) */
  return !(e && e[0] == '0');
}

int reg_pin_worth(size_t bytes) {
  return bytes >= ((size_t)64 << 20) && (bytes < REG_STAGED_COPY_MIN || !reg_staged_copy_on());
}
