/* See file_sync.h. */
#define _GNU_SOURCE /* sync_file_range */
#include "io/file_sync.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int turned_off(const char *name) {
  const char *e = getenv(name);
  return e && !strcmp(e, "0");
}

void ffdp_file_writeback(int fd, size_t n, size_t *pending) {
  *pending += n;
  if (fd < 0 || *pending < FFDP_WRITEBACK_BYTES) return;
  *pending = 0;
#ifdef __linux__
  /* the whole file (offset 0, length 0): pages already under write-out are skipped */
  if (!turned_off("FFDP_WRITEBACK")) (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
}

int ffdp_file_sync(int fd) { return turned_off("FFDP_FSYNC") ? 0 : fsync(fd); }
