/* Appending 423 MB to a new file on the device's ext4, in the patterns ffdp's writer could use:
 * member-sized chunks (1 MiB + 112 B: not page-aligned) by write(), by fwrite with the default
 * buffer and with an 8 MiB buffer, and page-aligned 1 MiB writes; each to a new file, closed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/tmp/wt";
  const size_t total = 423000000, chunk = (1 << 20) + 112;
  unsigned char *buf = malloc(64 << 20);
  for (size_t i = 0; i < (64u << 20); i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
  char path[512];
  for (int rep = 0; rep < 2; rep++)
    for (int mode = 0; mode < 5; mode++) {
      snprintf(path, sizeof path, "%s/t%d_%d.bin", dir, mode, rep);
      unlink(path);
      const double t0 = now();
      size_t done = 0, k = 0;
      if (mode == 0 || mode == 3) { /* write(): member chunks, or aligned 1 MiB */
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const size_t c = mode == 0 ? chunk : (1 << 20);
        while (done < total) { size_t m = total - done < c ? total - done : c; if (write(fd, buf + (k++ % 32) * (1 << 20), m) != (ssize_t)m) return 1; done += m; }
        close(fd);
      } else { /* fwrite: default buffer (1), 8 MiB buffer (2), 8 MiB buffer + rename from a temp name (4) */
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
        int fd = mode == 4 ? mkstemp(tmp) : open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        FILE *f = fdopen(fd, "wb");
        if (mode != 1) setvbuf(f, NULL, _IOFBF, 8 << 20);
        while (done < total) { size_t m = total - done < chunk ? total - done : chunk; if (fwrite(buf + (k++ % 32) * (1 << 20), 1, m, f) != m) return 1; done += m; }
        fclose(f);
        if (mode == 4) rename(tmp, path);
      }
      const double t1 = now();
      static const char *names[5] = {"write() 1 MiB + 112 B", "fwrite default buffer", "fwrite 8 MiB buffer", "write() 1 MiB aligned", "fwrite 8 MiB, temp + rename"};
      printf("%-32s %7.1f ms  %.2f GB/s\n", names[mode], 1e3 * (t1 - t0), total / (t1 - t0) / 1e9);
    }
  for (int rep = 0; rep < 2; rep++) for (int mode = 0; mode < 5; mode++) { snprintf(path, sizeof path, "%s/t%d_%d.bin", dir, mode, rep); unlink(path); }
  return 0;
}
