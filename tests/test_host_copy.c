/* The threaded host copy of the staged device copies (src/reg/host_copy.c) against memcpy:
 * alignments of source and destination within 16 bytes, lengths from none through a thread's
 * megabyte and across several with tails, and a guard of bytes on either side of the
 * destination. */
#include "check.h"
#include "reg/reg_internal.h"
#include <string.h>

int main(void) {
  const size_t cap = (size_t)5 << 20, lens[] = {0, 1, 15, 63, 64, 65, 4099, ((size_t)1 << 20) - 3, (size_t)1 << 20,
                                                ((size_t)1 << 20) + 17, ((size_t)3 << 20) + 4321};
  unsigned char *src = malloc(cap + 64), *dst = malloc(cap + 96), *want = malloc(cap + 96);
  if (!src || !dst || !want) return 1;
  for (size_t i = 0; i < cap + 64; i++) src[i] = (unsigned char)(i * 131u + (i >> 11));
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
    for (int so = 0; so < 16; so += 5)
      for (int dof = 0; dof < 16; dof += 3) {
        const size_t n = lens[k];
        memset(dst, 0xA5, cap + 96), memset(want, 0xA5, cap + 96);
        memcpy(want + 32 + dof, src + so, n);
        reg_host_copy(dst + 32 + dof, src + so, n);
        CHECK(memcmp(dst, want, cap + 96) == 0, "%zu bytes, source offset %d, destination offset %d", n, so, dof);
      }
  free(src), free(dst), free(want);
  return check_done("test_host_copy");
}
