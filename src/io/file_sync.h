/* Output files reaching the disk while they are written.
 *
 * ffdp makes each output durable (fsync) before renaming it into place, so that a crash leaves
 * the previous file or the whole new one, never a truncated file under the final name. The
 * writers fill the page cache at ~3 GB/s, and on the H100 machine's ext4 the fsync of a 423 MB
 * field then took about as long again: the disk's work came after the writer's instead of
 * during it. So a writer starts the write-out of what it has written every
 * FFDP_WRITEBACK_BYTES (sync_file_range on Linux, which does not wait), and the final fsync
 * waits only for the tail. FFDP_WRITEBACK=0 turns the early write-out off, FFDP_FSYNC=0 the
 * fsync (both for measurements: bench/gpu/NOTES.md, session 39). */
#ifndef FFDP_IO_FILE_SYNC_H
#define FFDP_IO_FILE_SYNC_H
#include <stddef.h>

#define FFDP_WRITEBACK_BYTES ((size_t)32 << 20)

/* n more bytes were written to fd; once *pending reaches FFDP_WRITEBACK_BYTES, the file's dirty
 * pages are handed to the disk (a hint: a failure changes nothing) and *pending restarts. */
void ffdp_file_writeback(int fd, size_t n, size_t *pending);
/* fsync(fd): 0 on success, as fsync. */
int ffdp_file_sync(int fd);
#endif
