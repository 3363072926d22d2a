/*
 * libFuzzer target for the Voice event parser: any bytes must give either
 * a parsed event whose strings are terminated and within their fields, or
 * VS_ERR_INVAL with a message; never a crash, a leak or an overflow.
 * The same bytes, spoken as a message, must render as valid JSON that
 * says them back (invalid UTF-8 aside, which becomes U+FFFD).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
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
  if (size < 4096) {
    char *text = malloc(size + 1);
    struct voice_action a = {
        .kind = VOICE_ACTION_SPEAK, .language = "en-US", .collect_max = 1};
    json_t *back;
    char *json;

    if (!text)
      return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    a.message = text;
    json = voice_action_render(&a);
    back = json ? json_loads(json, 0, NULL) : NULL;
    if (json && !back)
      __builtin_trap();
    if (back && strlen(text) == size &&
        json_string_value(json_object_get(
            json_object_get(json_object_get(back, "params"), "tts"),
            "message")) == NULL)
      __builtin_trap();
    json_decref(back);
    free(json);
    free(text);
  }
  return 0;
}
