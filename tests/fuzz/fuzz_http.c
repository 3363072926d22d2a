/*
 * libFuzzer target for the HTTP request parser: the input is what a client
 * sends on one connection. Heads are cut off and parsed one after another
 * as the server does; a chunked body is decoded twice, in one piece and a
 * byte at a time, and both must agree. Any bytes must give a request or a
 * status of 4xx/5xx, and never a crash, a read out of bounds or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/http_parse.h"
#include "../../src/util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEAD_MAX 8192
#define BODY_MAX 4096

static void check_status(long rc)
{
  if (rc > -400 || rc < -505)
    __builtin_trap();
}

/* Decodes a chunked body; returns the status and sets *used, *len. */
static int chunked(const char *p, size_t n, size_t step, size_t *used,
                   char **out, size_t *len)
{
  struct http_chunked st = {0};
  struct buf body;
  size_t at = 0;
  int rc = 0;

  buf_init(&body, BODY_MAX);
  while (at < n && !rc) {
    size_t k = n - at < step ? n - at : step;
    size_t u = 0;

    rc = http_chunked_feed(&st, p + at, k, &body, &u);
    if (u > k || (!rc && u != k))
      __builtin_trap(); /* unfinished, it must take all it was given */
    at += u;
  }
  if (body.len > BODY_MAX)
    __builtin_trap();
  *used = at;
  *len = body.len;
  *out = buf_detach(&body);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const char *p = (const char *)data;
  size_t left = size;

  while (left) {
    long hlen = http_head_length(p, left, HEAD_MAX);
    struct http_head head;
    char *copy;
    int rc;

    if (hlen <= 0) {
      if (hlen < 0)
        check_status(hlen);
      break;
    }
    copy = malloc((size_t)hlen + 1);
    if (!copy)
      return 0;
    memcpy(copy, p, (size_t)hlen);
    copy[hlen] = '\0';
    rc = http_parse_head(copy, (size_t)hlen, &head);
    p += hlen;
    left -= (size_t)hlen;
    if (rc) {
      check_status(rc);
      free(copy);
      break;
    }
    if (!head.method[0] || head.path[0] != '/' ||
        head.nheaders > HTTP_MAX_HEADERS || head.nparams > HTTP_MAX_PARAMS ||
        head.content_length < -1 || (head.chunked && head.content_length >= 0))
      __builtin_trap();
    for (unsigned i = 0; i < head.nheaders; i++)
      if (!head.headers[i].name[0] || strlen(head.headers[i].value) > HEAD_MAX)
        __builtin_trap();
    if (head.chunked) {
      size_t u1, u2, l1, l2;
      char *b1, *b2;
      int r1 = chunked(p, left, left ? left : 1, &u1, &b1, &l1);
      int r2 = chunked(p, left, 1, &u2, &b2, &l2);

      if (r1 < 0)
        check_status(r1);
      if (r1 != r2 || (r1 >= 0 && (u1 != u2 || l1 != l2)) ||
          (r1 >= 0 && l1 && memcmp(b1, b2, l1)))
        __builtin_trap();
      free(b1);
      free(b2);
      if (r1 != 1) {
        free(copy);
        break;
      }
      p += u1;
      left -= u1;
    } else if (head.content_length > 0) {
      size_t n = (uint64_t)head.content_length < left
                     ? (size_t)head.content_length
                     : left;

      p += n;
      left -= n;
    }
    free(copy);
  }
  return 0;
}
