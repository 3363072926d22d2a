/*
 * libFuzzer target for the Score response parser: any body, under any
 * HTTP status, must give a result that is either usable (a score in
 * 0..1000) or a failure with a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/telesign/score.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const int statuses[] = {200, 201, 401, 429, 500, 503};
  struct score_result res;
  int status = statuses[size % (sizeof(statuses) / sizeof(statuses[0]))];

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
