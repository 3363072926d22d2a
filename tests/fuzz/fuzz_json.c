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

/* jansson's type for each kind the reader gives a value. */
static json_type jansson_type(enum json_scan_kind k)
{
  switch (k) {
  case JSON_SCAN_NULL:
    return JSON_NULL;
  case JSON_SCAN_FALSE:
    return JSON_FALSE;
  case JSON_SCAN_TRUE:
    return JSON_TRUE;
  case JSON_SCAN_INTEGER:
    return JSON_INTEGER;
  case JSON_SCAN_REAL:
    return JSON_REAL;
  case JSON_SCAN_STRING:
    return JSON_STRING;
  case JSON_SCAN_ARRAY:
    return JSON_ARRAY;
  case JSON_SCAN_OBJECT:
    break;
  }
  return JSON_OBJECT;
}

/* The value at `node` and jansson's `v` must be of one type, and the same
 * value when it is a scalar. */
static void same_scalar(const struct json_scan *js, int node, json_t *v)
{
  const struct json_scan_node *n = &js->nodes[node];
  static char buf[65536];
  long len;

  if (json_typeof(v) != jansson_type(n->kind))
    __builtin_trap();
  if (n->kind == JSON_SCAN_STRING) {
    len = json_scan_string(js, node, buf, sizeof(buf));
    if ((size_t)len != json_string_length(v) ||
        ((size_t)len < sizeof(buf) &&
         memcmp(buf, json_string_value(v), (size_t)len) != 0))
      __builtin_trap();
  } else if ((n->kind == JSON_SCAN_INTEGER &&
              json_integer_value(v) != n->integer) ||
             (n->kind == JSON_SCAN_REAL && json_real_value(v) != n->real)) {
    __builtin_trap();
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
