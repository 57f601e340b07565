/* ffdp error reporting: every fallible call returns an ffdp_status and, when the caller
 * passes an ffdp_error, fills it with a one-line message naming the problem. No global
 * "last error" exists, so concurrent callers never see each other's messages. */
#ifndef FFDP_ERROR_H
#define FFDP_ERROR_H
#ifdef __cplusplus
extern "C" {
#endif

typedef enum ffdp_status {
  FFDP_OK = 0,
  FFDP_ERR_IO = 1,          /* file missing, unreadable, unwritable */
  FFDP_ERR_FORMAT = 2,      /* corrupt, truncated or unsupported file content */
  FFDP_ERR_INVALID = 3,     /* invalid argument or geometry (zero spacing, singular matrix, ...) */
  FFDP_ERR_NOMEM = 4,       /* allocation failed */
  FFDP_ERR_UNSUPPORTED = 5, /* valid but not supported (4D where 3D expected, ...) */
  FFDP_ERR_NUMERIC = 6      /* NaN/Inf in inputs or a diverging optimisation */
} ffdp_status;

#define FFDP_ERROR_MSG_MAX 512

typedef struct ffdp_error {
  ffdp_status code;
  char msg[FFDP_ERROR_MSG_MAX];
} ffdp_error;

/* Short name of a status code ("I/O error", ...). Never NULL. */
const char *ffdp_status_name(ffdp_status s);

#ifdef __cplusplus
}
#endif
#endif
