#include "cli/cli.h"
#include <stdarg.h>
#include <stdio.h>
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
