/*
 * libFuzzer target for the Score client's two readers of an answer:
 * - the HTTP reader (score_http_feed), given the input as the bytes of a
 *   connection in pieces of a size the first byte chooses, must end in a
 *   known state with a body under its ceiling, whatever the split;
 * - the body parser (score_response_parse): any body, under any HTTP
 *   status, must give a result that is either usable (a score in 0..1000)
 *   or a failure with a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/telesign/score.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_http(const uint8_t *data, size_t size)
{
  size_t step = size ? (size_t)data[0] % 64 + 1 : 1;
  struct score_http h;
  struct buf body;
  int rc = SCORE_HTTP_MORE;

  score_http_init(&h);
  buf_init(&body, 4096);
  for (size_t at = 0; at < size; at += step)
    rc = score_http_feed(&h, (const char *)data + at,
                         size - at < step ? size - at : step, &body);
  if (rc == SCORE_HTTP_MORE)
    rc = score_http_eof(&h);
  if (rc < SCORE_HTTP_SHORT || rc > SCORE_HTTP_DONE || body.len > body.max ||
      (rc == SCORE_HTTP_DONE && (h.status < 200 || h.status > 999)) ||
      score_http_feed(&h, "x", 1, &body) != rc)
    __builtin_trap();
  score_http_free(&h);
  buf_free(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const int statuses[] = {200, 201, 401, 429, 500, 503};
  struct score_result res;
  int status = statuses[size % (sizeof(statuses) / sizeof(statuses[0]))];

  read_http(data, size);
  memset(&res, 0xa5, sizeof(res));
  score_response_parse(status, (const char *)data, size, &res);
  if (res.failure == SCORE_OK) {
    if (res.score < 0 || res.score > 1000 || status < 200 || status > 299)
      __builtin_trap();
  } else if (!res.error[0]) {
    __builtin_trap();
  }
  if (strnlen(res.level, sizeof(res.level)) == sizeof(res.level) ||
      strnlen(res.ref, sizeof(res.ref)) == sizeof(res.ref) ||
      strnlen(res.error, sizeof(res.error)) == sizeof(res.error))
    __builtin_trap();
  return 0;
}
