/*
 * A growing byte buffer with a ceiling, after curl's dynbuf.
 *
 * Every buffer that holds data read from the network or a file is given its
 * maximum size when it is initialised; an append that would pass it fails
 * with VS_ERR_LIMIT and leaves the buffer unchanged. The contents are always
 * NUL-terminated (the terminator is not counted in `len`), so a buffer of
 * text can be handed to string functions directly.
 *
 * A buf is owned by whoever initialised it and is touched by one thread.
 */
#ifndef VS_UTIL_BUF_H
#define VS_UTIL_BUF_H

#include <stddef.h>

struct buf {
  char *data; /* NULL until the first append */
  size_t len;
  size_t cap;
  size_t max; /* ceiling on len */
};

/* Prepares an empty buffer that will never hold more than `max` bytes. */
void buf_init(struct buf *b, size_t max);

/* Appends `n` bytes; returns 0, VS_ERR_LIMIT or VS_ERR_NOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Appends a printf-formatted string; same returns as buf_append. */
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Empties the buffer but keeps its memory. */
void buf_reset(struct buf *b);

/*
 * Hands the contents to the caller, who frees them with free(); the buffer
 * is left empty. Returns NULL if nothing was ever appended.
 */
char *buf_detach(struct buf *b);

/* Frees the contents; the buffer may be reused after buf_init. */
void buf_free(struct buf *b);

#endif
