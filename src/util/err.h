/*
 * Error codes shared by every module.
 *
 * Functions return 0 on success or one of the negative codes below. When a
 * caller needs a human-readable reason, the function also takes a
 * caller-owned buffer (`char *err, size_t errlen`) that it fills with one
 * sentence; nothing is ever kept in global state.
 */
#ifndef VS_UTIL_ERR_H
#define VS_UTIL_ERR_H

enum vs_err {
  VS_OK = 0,
  VS_ERR_NOMEM = -1,     /* an allocation failed */
  VS_ERR_INVAL = -2,     /* the input is not what the function accepts */
  VS_ERR_IO = -3,        /* a system call or the disk failed */
  VS_ERR_LIMIT = -4,     /* a size or count ceiling was reached */
  VS_ERR_NOTFOUND = -5,  /* the thing asked for does not exist */
  VS_ERR_TIMEOUT = -6,   /* a deadline passed */
  VS_ERR_CANCELLED = -7, /* the operation was cancelled by a shutdown */
  VS_ERR_PROTO = -8,     /* a peer spoke a format we do not understand */
  VS_ERR_BUSY = -9       /* the resource is shutting down or saturated */
};

/* Returns a static, never-freed description of `code`. */
const char *vs_strerror(int code);

/*
 * Writes a printf-style message into `err` (of `errlen` bytes, may be 0) and
 * returns `code`, so that error paths can read
 * `return vs_fail(err, errlen, VS_ERR_INVAL, "bad port '%s'", s);`.
 */
int vs_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
