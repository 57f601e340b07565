/* Internal helpers for filling an ffdp_error. */
#ifndef FFDP_CORE_ERR_H
#define FFDP_CORE_ERR_H
#include "ffdp/error.h"
#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FFDP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FFDP_PRINTF(a, b)
#endif

/* Record code and message in err (if non-NULL) and return code, so callers can write
 * `return ffdp_fail(err, FFDP_ERR_IO, "cannot open %s", path);`. */
ffdp_status ffdp_fail(ffdp_error *err, ffdp_status code, const char *fmt, ...) FFDP_PRINTF(3, 4);
void ffdp_error_clear(ffdp_error *err);
#ifdef __cplusplus
}
#endif
#endif
