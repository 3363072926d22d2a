/*
 * libFuzzer target for the small JSON reader (src/util/json_scan.c),
 * checked against jansson: the reader must accept exactly the texts
 * jansson accepts (but those past its own limits, which it must say, and
 * those with a NUL byte), and read the same values from them.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/util/err.h"
#include "../../src/util/json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The value at `node` and jansson's `v` must be the same scalar. */
static void same_scalar(const struct json_scan *js, int node, json_t *v)
{
  const struct json_scan_node *n = &js->nodes[node];
  static char buf[65536];
  long len;

  switch (n->kind) {
  case JSON_SCAN_STRING:
    len = json_scan_string(js, node, buf, sizeof(buf));
    if (!json_is_string(v) || (size_t)len != json_string_length(v) ||
        ((size_t)len < sizeof(buf) &&
         memcmp(buf, json_string_value(v), (size_t)len) != 0))
      __builtin_trap();
    break;
  case JSON_SCAN_INTEGER:
    if (!json_is_integer(v) || json_integer_value(v) != n->integer)
      __builtin_trap();
    break;
  case JSON_SCAN_REAL:
    if (!json_is_real(v) || json_real_value(v) != n->real)
      __builtin_trap();
    break;
  case JSON_SCAN_TRUE:
    if (!json_is_true(v))
      __builtin_trap();
    break;
  case JSON_SCAN_FALSE:
    if (!json_is_false(v))
      __builtin_trap();
    break;
  case JSON_SCAN_NULL:
    if (!json_is_null(v))
      __builtin_trap();
    break;
  case JSON_SCAN_OBJECT:
    if (!json_is_object(v))
      __builtin_trap();
    break;
  case JSON_SCAN_ARRAY:
    if (!json_is_array(v))
      __builtin_trap();
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct json_scan js;
  json_t *root = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  int rc = json_scan_parse(&js, (const char *)data, size);

  /* jansson stops reading at a NUL byte after a complete value, and
   * accepts "null\0garbage"; the reader refuses every NUL byte. */
  if (rc == VS_ERR_LIMIT || memchr(data, 0, size)) {
    json_decref(root);
    return 0;
  }
  if ((rc == VS_OK) != (root != NULL))
    __builtin_trap();
  if (rc != VS_OK)
    return 0;
  same_scalar(&js, 0, root);
  /* Every member of the root object, looked up by name as a caller
   * would, is the value jansson keeps for that name. */
  if (json_is_object(root)) {
    const char *key;
    json_t *v;

    json_object_foreach(root, key, v)
    {
      int m;

      if (strlen(key) >= 128)
        continue; /* names are compared decoded up to 127 bytes */
      m = json_scan_member(&js, 0, key);
      if (m < 0)
        __builtin_trap();
      same_scalar(&js, m, v);
    }
  }
  json_decref(root);
  return 0;
}
