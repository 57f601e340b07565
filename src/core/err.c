#include "core/err.h"
#include <stdarg.h>
#include <stdio.h>

ffdp_status ffdp_fail(ffdp_error *err, ffdp_status code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

void ffdp_error_clear(ffdp_error *err) {
  if (err) {
    err->code = FFDP_OK;
    err->msg[0] = '\0';
  }
}

const char *ffdp_status_name(ffdp_status s) {
  switch (s) {
  case FFDP_OK: return "ok";
  case FFDP_ERR_IO: return "I/O error";
  case FFDP_ERR_FORMAT: return "format error";
  case FFDP_ERR_INVALID: return "invalid input";
  case FFDP_ERR_NOMEM: return "out of memory";
  case FFDP_ERR_UNSUPPORTED: return "unsupported";
  case FFDP_ERR_NUMERIC: return "numerical error";
  }
  return "unknown error";
}
