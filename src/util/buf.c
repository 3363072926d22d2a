#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"

void buf_init(struct buf *b, size_t max)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

#define BUF_FIRST 1024

/* Makes room for `extra` more bytes plus the terminator, doubling. */
static int buf_reserve(struct buf *b, size_t extra)
{
  size_t need;
  size_t cap;
  char *p;

  if (extra > b->max - b->len)
    return VS_ERR_LIMIT;
  need = b->len + extra + 1;
  if (need <= b->cap)
    return VS_OK;
  /* 1 KiB first: the webhook's bodies and answers, the Score API's
   * answers, are a few hundred bytes each, and growing from 64 cost four
   * reallocs a request (2% of the loop's instructions per cache hit). */
  cap = b->cap ? b->cap : BUF_FIRST;
  while (cap < need)
    cap *= 2;
  if (cap > b->max + 1)
    cap = b->max + 1;
  p = realloc(b->data, cap);
  if (!p)
    return VS_ERR_NOMEM;
  b->data = p;
  b->cap = cap;
  return VS_OK;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
  int rc = buf_reserve(b, n);

  if (rc)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return VS_OK;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
  va_list ap;
  int n;
  int rc;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    return VS_ERR_INVAL;
  rc = buf_reserve(b, (size_t)n);
  if (rc)
    return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return VS_OK;
}

void buf_reset(struct buf *b)
{
  b->len = 0;
  if (b->data)
    b->data[0] = '\0';
}

char *buf_detach(struct buf *b)
{
  char *p = b->data;

  buf_init(b, b->max);
  return p;
}

void buf_free(struct buf *b)
{
  free(b->data);
  buf_init(b, b->max);
}
