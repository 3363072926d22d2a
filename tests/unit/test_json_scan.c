/*
 * Tests of the small JSON reader (src/util/json_scan.c): which texts it
 * accepts, the values it reads, and its limits. fuzz_json checks it
 * against jansson on generated texts; these are the cases worth naming.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/util/err.h"
#include "../../src/util/json_scan.h"

static struct json_scan js; /* 14 KiB: not on cmocka's stack */

static int scan(const char *text)
{
  return json_scan_parse(&js, text, strlen(text));
}

/* Texts jansson refuses, and so must the reader. */
static void test_rejects(void **state)
{
  static const char *const bad[] = {
      "",
      " ",
      "{",
      "}",
      "[1,]",
      "{\"a\":1,}",
      "{\"a\"}",
      "{\"a\" 1}",
      "{a:1}",
      "{'a':1}",
      "[1 2]",
      "01",
      "-",
      "1.",
      ".5",
      "1e",
      "1e+",
      "+1",
      "0x10",
      "NaN",
      "Infinity",
      "tru",
      "nul",
      "truee",
      "[true]x",
      "\"abc",
      "\"a\\x\"",
      "\"\\u12\"",
      "\"\\u00zz\"",
      "\"\\u0000\"",
      "\"\\ud800\"",
      "\"\\udc00\"",
      "\"\\ud800\\u0041\"",
      "\"\t\"",
      "\"\x01\"",
      "\"\xc3\"",
      "\"\xc0\x80\"",
      "\"\xed\xa0\x80\"",
      "\"\xf4\x90\x80\x80\"",
      "\"\xff\"",
      "99999999999999999999",
      "-9223372036854775809",
      "1e999",
      "{\"a\":1}{",
      "[][]",
  };

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (scan(bad[i]) != VS_ERR_INVAL) {
      print_error("accepted: '%s'\n", bad[i]);
      fail();
    }
    assert_int_equal(js.count, 0);
  }
  /* A NUL byte anywhere, even after a complete value. */
  assert_int_equal(json_scan_parse(&js, "null\0", 5), VS_ERR_INVAL);
  assert_int_equal(json_scan_parse(&js, NULL, 0), VS_ERR_INVAL);
}

/* Values of every kind, and where they are. */
static void test_values(void **state)
{
  char out[64];
  int a, b;

  (void)state;
  assert_int_equal(scan(" {\"a\": [1, -2.5e1, true, false, null],"
                        " \"b\": {\"c\": \"x\\\"y\\u00e9\\ud83d\\ude00\"},"
                        " \"n\": -9223372036854775808, \"e\": 1e-400} "),
                   VS_OK);
  assert_int_equal(js.nodes[0].kind, JSON_SCAN_OBJECT);
  a = json_scan_member(&js, 0, "a");
  assert_int_equal(js.nodes[a].kind, JSON_SCAN_ARRAY);
  assert_int_equal(js.nodes[a + 1].kind, JSON_SCAN_INTEGER);
  assert_int_equal(js.nodes[a + 1].integer, 1);
  assert_int_equal(js.nodes[a + 2].kind, JSON_SCAN_REAL);
  assert_true(js.nodes[a + 2].real == -25.0);
  assert_int_equal(js.nodes[a + 3].kind, JSON_SCAN_TRUE);
  assert_int_equal(js.nodes[a + 4].kind, JSON_SCAN_FALSE);
  assert_int_equal(js.nodes[a + 5].kind, JSON_SCAN_NULL);
  assert_int_equal(js.nodes[a + 5].parent, a);
  b = json_scan_member(&js, 0, "b");
  assert_int_equal(
      json_scan_string(&js, json_scan_member(&js, b, "c"), out, sizeof(out)),
      9);
  assert_string_equal(out, "x\"y\xc3\xa9\xf0\x9f\x98\x80");
  assert_int_equal(js.nodes[json_scan_member(&js, 0, "n")].integer,
                   -9223372036854775807LL - 1);
  assert_int_equal(js.nodes[json_scan_member(&js, 0, "e")].kind,
                   JSON_SCAN_REAL);
  /* Not there, or not an object to look in. */
  assert_int_equal(json_scan_member(&js, 0, "z"), -1);
  assert_int_equal(json_scan_member(&js, a, "a"), -1);
  assert_int_equal(json_scan_member(&js, -1, "a"), -1);
  assert_int_equal(json_scan_string(&js, a, out, sizeof(out)), -1);
  /* A scalar is a document too. */
  assert_int_equal(scan("\"only\""), VS_OK);
  assert_int_equal(js.nodes[0].kind, JSON_SCAN_STRING);
}

/* The last of two members with one name wins, escaped names match. */
static void test_names(void **state)
{
  char out[8];

  (void)state;
  assert_int_equal(scan("{\"k\":\"first\",\"\\u006b\":\"second\","
                        "\"\\\\u006b\":\"third\"}"),
                   VS_OK);
  assert_int_equal(
      json_scan_string(&js, json_scan_member(&js, 0, "k"), out, sizeof(out)),
      6);
  assert_string_equal(out, "second");
  /* "\\u006b" is a backslash and "u006b", not "k". */
  assert_int_equal(json_scan_string(&js, json_scan_member(&js, 0, "\\u006b"),
                                    out, sizeof(out)),
                   5);
  assert_string_equal(out, "third");
  /* Cut to fit, the full length still returned. */
  assert_int_equal(scan("\"abcdefghij\""), VS_OK);
  assert_int_equal(json_scan_string(&js, 0, out, 4), 10);
  assert_string_equal(out, "abc");
}

/* Past its limits the reader says so, rather than calling it invalid. */
static void test_limits(void **state)
{
  static char text[8192];
  size_t n = 0;

  (void)state;
  /* Deeper than the index reaches: checked, not recorded. */
  assert_int_equal(scan("{\"a\":{\"b\":{\"c\":[1,2,{\"d\":5}]}}}"), VS_OK);
  assert_int_equal(js.count, 3);
  /* Too many values in the indexed levels. */
  n += (size_t)snprintf(text + n, sizeof(text) - n, "[");
  for (int i = 0; i < JSON_SCAN_MAX_NODES; i++)
    n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%d", i ? "," : "", i);
  snprintf(text + n, sizeof(text) - n, "]");
  assert_int_equal(scan(text), VS_ERR_LIMIT);
  assert_int_equal(js.count, 0);
  /* Nested past JSON_SCAN_MAX_DEPTH (the root is depth 0): one level more
   * than the deepest allowed. */
  memset(text, '[', JSON_SCAN_MAX_DEPTH + 2);
  memset(text + JSON_SCAN_MAX_DEPTH + 2, ']', JSON_SCAN_MAX_DEPTH + 2);
  text[2 * (JSON_SCAN_MAX_DEPTH + 2)] = '\0';
  assert_int_equal(scan(text), VS_ERR_LIMIT);
  text[2 * (JSON_SCAN_MAX_DEPTH + 2) - 1] = '\0';
  assert_int_equal(scan(text + 1), VS_OK);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rejects),
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_limits),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
