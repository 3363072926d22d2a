#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"

const char *vs_strerror(int code)
{
  switch (code) {
  case VS_OK:
    return "success";
  case VS_ERR_NOMEM:
    return "out of memory";
  case VS_ERR_INVAL:
    return "invalid argument";
  case VS_ERR_IO:
    return "input/output error";
  case VS_ERR_LIMIT:
    return "limit exceeded";
  case VS_ERR_NOTFOUND:
    return "not found";
  case VS_ERR_TIMEOUT:
    return "timed out";
  case VS_ERR_CANCELLED:
    return "cancelled";
  case VS_ERR_PROTO:
    return "protocol error";
  case VS_ERR_BUSY:
    return "busy";
  default:
    return "unknown error";
  }
}

int vs_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
  va_list ap;

  if (err && errlen) {
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}
