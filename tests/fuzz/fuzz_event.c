/*
 * libFuzzer target for the Voice event parser: any bytes must give either
 * a parsed event whose strings are terminated and within their fields, or
 * VS_ERR_INVAL with a message; never a crash, a leak or an overflow.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/telesign/voice.h"
#include "../../src/util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct voice_event ev;
  char err[256];
  int rc;

  rc = voice_event_parse((const char *)data, size, &ev, err, sizeof(err));
  if (rc == VS_OK) {
    if (!ev.ref[0] || !ev.name[0])
      __builtin_trap();
    if (strnlen(ev.ref, sizeof(ev.ref)) == sizeof(ev.ref) ||
        strnlen(ev.from, sizeof(ev.from)) == sizeof(ev.from) ||
        strnlen(ev.digits, sizeof(ev.digits)) == sizeof(ev.digits))
      __builtin_trap();
  } else if (rc != VS_ERR_INVAL || !err[0]) {
    __builtin_trap();
  }
  return 0;
}
