/* Small helpers every command uses: errors, time, output directories and their free space. */
#include "cli/cli.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

int cli_error(const ffdp_error *err) {
  fprintf(stderr, "ffdp: error: %s\n", err->msg[0] ? err->msg : ffdp_status_name(err->code));
  return 1;
}

int cli_errorf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("ffdp: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

double cli_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

void cli_dir_of(const char *path, char dir[4096]) {
  snprintf(dir, 4096, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) slash[slash == dir] = 0;
  else snprintf(dir, 4096, ".");
}

int cli_check_space(const char *path, double need, double hard, const char *hint, int verbose) {
  char dir[4096];
  cli_dir_of(path, dir);
  double avail;
  const char *fake = getenv("FFDP_TEST_DISK_FREE_MB");
  struct statvfs sv;
  if (fake) avail = atof(fake) * 1e6;
  else if (statvfs(dir, &sv) == 0) avail = (double)sv.f_bavail * (double)sv.f_frsize;
  else return 0; /* cannot tell: the writes will report a full disk themselves */
  if (need <= avail) return 0;
  char a[32], b[32];
  const double sz[2] = {hard > avail ? hard : need, avail};
  char *txt[2] = {a, b};
  for (int k = 0; k < 2; k++)
    snprintf(txt[k], 32, sz[k] >= 1e9 ? "%.3g GB" : "%.3g MB", sz[k] >= 1e9 ? sz[k] / 1e9 : sz[k] / 1e6);
  if (hard > avail)
    return cli_errorf("the outputs need %s (uncompressed) but %s has %s free; free space, write elsewhere, or %s", a, dir,
                      b, hint);
  if (verbose >= 0)
    fprintf(stderr, "ffdp: warning: the outputs take up to %s uncompressed and %s has %s free; they fit only if "
            "compression saves the difference\n", a, dir, b);
  return 0;
}

double cli_mem_available(void) {
  const char *fake = getenv("FFDP_TEST_MEM_AVAILABLE_MB");
  if (fake) return atof(fake) * 1e6;
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  double kb = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
  fclose(f);
  return kb > 0 ? kb * 1024.0 : -1;
}

int64_t cli_piece_planes(int64_t plane_voxels, int64_t planes, int cheap) {
  if (!cheap || planes < 1) return planes > 0 ? planes : 1;
  const char *test = getenv("FFDP_TEST_PIECE_PLANES"); /* tests: pieces on small images */
  const int64_t p = test && *test ? atoll(test) : ((int64_t)64 << 20) / (plane_voxels > 0 ? plane_voxels : 1);
  return p < 1 ? 1 : p;
}
