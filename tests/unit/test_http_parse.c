/*
 * Unit tests for http/http_parse: finding a head's end and its limits, a
 * table of heads that parse (with the fields the server reads from them)
 * and of heads refused with the status each must get, and chunked bodies
 * decoded whole and a byte at a time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/http_parse.h"
#include "../../src/util/buf.h"

#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Parses `text` as a complete head into `out`; returns the parse's result. */
static int parse(const char *text, struct http_head *out, char **keep)
{
  size_t len = strlen(text);
  char *copy = malloc(len + 1);
  long hlen;

  assert_non_null(copy);
  memcpy(copy, text, len + 1);
  hlen = http_head_length(copy, len, 8192);
  assert_int_equal(hlen, (long)len);
  *keep = copy;
  return http_parse_head(copy, len, out);
}

static void test_head_length(void **state)
{
  char big[200];

  (void)state;
  assert_int_equal(http_head_length("GET / HTTP/1.1\r\nHost: a\r\n", 25, 64),
                   0);
  assert_int_equal(
      http_head_length("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", 30, 64), 27);
  /* No blank line within the limit: the request line never ended, or the
   * header fields go on too long. */
  memset(big, 'a', sizeof(big));
  assert_int_equal(http_head_length(big, sizeof(big), 100), -414);
  memcpy(big, "GET / HTTP/1.1\r\n", 16);
  assert_int_equal(http_head_length(big, sizeof(big), 100), -431);
  /* The blank line just past the limit does not count. */
  assert_int_equal(http_head_length("GET / HTTP/1.1\r\n\r\n", 18, 17), -431);
}

struct ok_case {
  const char *text;
  const char *method, *path;
  int minor;
  int64_t content_length;
  int chunked, keep_alive, expect_continue;
  const char *header, *value; /* one field to look up, or NULL */
  const char *param, *pvalue; /* one query parameter, or NULL */
};

static const struct ok_case ok_cases[] = {
    {"POST /telesign/voice HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n",
     "POST", "/telesign/voice", 1, 42, 0, 1, 0, "content-length", "42", NULL,
     NULL},
    {"GET /api/calls?limit=10&q=a%20b+c&flag HTTP/1.1\r\nHost: a\r\n\r\n",
     "GET", "/api/calls", 1, -1, 0, 1, 0, NULL, NULL, "q", "a b c"},
    {"GET /x?flag HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/x", 1, -1, 0, 1, 0,
     NULL, NULL, "FLAG", ""},
    {"GET /a%2Fb%zz%4 HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/a/b%zz%4", 1, -1,
     0, 1, 0, NULL, NULL, NULL, NULL},
    {"GET / HTTP/1.0\r\n\r\n", "GET", "/", 0, -1, 0, 0, 0, NULL, NULL, NULL,
     NULL},
    {"POST HTTPS://a:8443/telesign/voice?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
     "POST", "/telesign/voice", 1, -1, 0, 1, 0, NULL, NULL, "x", "1"},
    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "GET", "/", 0, -1, 0,
     1, 0, NULL, NULL, NULL, NULL},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: te, close\r\n\r\n", "GET", "/",
     1, -1, 0, 0, 0, NULL, NULL, NULL, NULL},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n"
     "Expect: 100-continue\r\n\r\n",
     "POST", "/", 1, -1, 1, 1, 1, NULL, NULL, NULL, NULL},
    {"POST / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Pad: \t v \t\r\n\r\n",
     "POST", "/", 1, -1, 0, 1, 0, "x-pad", "v", NULL, NULL},
    {"POST / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n", "POST", "/", 1, -1, 0,
     1, 0, "X-EMPTY", "", NULL, NULL},
};

static void test_heads_that_parse(void **state)
{
  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(ok_cases); i++) {
    const struct ok_case *c = &ok_cases[i];
    struct http_head h;
    char *keep;
    int rc = parse(c->text, &h, &keep);

    if (rc)
      fail_msg("case %zu: refused with %d", i, -rc);
    assert_string_equal(h.method, c->method);
    assert_string_equal(h.path, c->path);
    assert_int_equal(h.minor, c->minor);
    assert_int_equal(h.content_length, c->content_length);
    assert_int_equal(h.chunked, c->chunked);
    assert_int_equal(h.keep_alive, c->keep_alive);
    assert_int_equal(h.expect_continue, c->expect_continue);
    if (c->header)
      assert_string_equal(http_field_get(h.headers, h.nheaders, c->header),
                          c->value);
    if (c->param)
      assert_string_equal(http_field_get(h.params, h.nparams, c->param),
                          c->pvalue);
    assert_null(http_field_get(h.headers, h.nheaders, "X-Absent"));
    free(keep);
  }
}

struct bad_case {
  const char *text;
  int status;
};

static const struct bad_case bad_cases[] = {
    {"GET /\r\n\r\n", 400},
    {"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
    {"GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET /a%00b HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET /?a=%00 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\n\r\n", 400}, /* no Host */
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
    {"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
    {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
     "Content-Length: 5\r\n\r\n",
     400},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
     "1234567890123456789\r\n\r\n",
     400},
    {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     501},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n",
     400},
    {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417},
};

static void test_heads_refused(void **state)
{
  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(bad_cases); i++) {
    struct http_head h;
    char *keep;
    int rc = parse(bad_cases[i].text, &h, &keep);

    if (rc != -bad_cases[i].status)
      fail_msg("case %zu: got %d, want %d", i, -rc, bad_cases[i].status);
    free(keep);
  }
}

/* More fields or parameters than fit are refused, not dropped. */
static void test_too_many(void **state)
{
  struct buf b;
  struct http_head h;

  (void)state;
  buf_init(&b, 8192);
  assert_int_equal(buf_printf(&b, "GET / HTTP/1.1\r\nHost: a\r\n"), 0);
  for (int i = 1; i < HTTP_MAX_HEADERS; i++)
    assert_int_equal(buf_printf(&b, "X-%d: v\r\n", i), 0);
  assert_int_equal(buf_printf(&b, "\r\n"), 0);
  assert_int_equal(http_parse_head(b.data, b.len, &h), 0);
  assert_int_equal(h.nheaders, HTTP_MAX_HEADERS);
  buf_reset(&b);
  assert_int_equal(buf_printf(&b, "GET / HTTP/1.1\r\nHost: a\r\n"), 0);
  for (int i = 0; i < HTTP_MAX_HEADERS; i++)
    assert_int_equal(buf_printf(&b, "X-%d: v\r\n", i), 0);
  assert_int_equal(buf_printf(&b, "\r\n"), 0);
  assert_int_equal(http_parse_head(b.data, b.len, &h), -431);
  buf_reset(&b);
  assert_int_equal(buf_printf(&b, "GET /?"), 0);
  for (int i = 0; i <= HTTP_MAX_PARAMS; i++)
    assert_int_equal(buf_printf(&b, "p%d=1&", i), 0);
  assert_int_equal(buf_printf(&b, " HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
  assert_int_equal(http_parse_head(b.data, b.len, &h), -414);
  buf_free(&b);
}

struct chunk_case {
  const char *text;
  int rc;           /* 1 ended, 0 needs more, or a negated status */
  const char *body; /* when it ended */
  size_t used;      /* when it ended */
};

static const struct chunk_case chunk_cases[] = {
    {"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT", 1, "hello world", 26},
    {"A;name=v\r\n0123456789\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n", 1, "0123456789",
     41},
    {"5\r\nhel", 0, NULL, 0},
    {"0\r\n", 0, NULL, 0},
    {"\r\n", -400, NULL, 0},
    {"g\r\n", -400, NULL, 0},
    {"5\r\nhelloX\r\n", -400, NULL, 0},
    {"5\nhello\r\n", -400, NULL, 0},
    {"0\r\nX-T: 1\n\r\n", -400, NULL, 0},
    {"21\r\n0123456789012345678901234567890123\r\n", -413, NULL, 0},
    {"FFFFFFFFFFFFFFFFF\r\n", -413, NULL, 0},
};

/* Feeds `text` in pieces of `step` bytes; returns the last result. */
static int feed(const char *text, size_t step, struct buf *body, size_t *used)
{
  struct http_chunked st = {0};
  size_t len = strlen(text), at = 0;
  int rc = 0;

  while (at < len && !rc) {
    size_t n = len - at < step ? len - at : step;
    size_t u = 0;

    rc = http_chunked_feed(&st, text + at, n, body, &u);
    at += u;
  }
  *used = at;
  return rc;
}

static void test_chunked(void **state)
{
  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(chunk_cases); i++) {
    const struct chunk_case *c = &chunk_cases[i];

    for (size_t step = 1; step <= 64; step *= 4) {
      struct buf body;
      size_t used;
      int rc;

      buf_init(&body, 32);
      rc = feed(c->text, step, &body, &used);
      if (rc != c->rc)
        fail_msg("case %zu, step %zu: got %d, want %d", i, step, rc, c->rc);
      if (rc == 1) {
        assert_string_equal(body.data, c->body);
        assert_int_equal(used, c->used);
      }
      buf_free(&body);
    }
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_head_length),
      cmocka_unit_test(test_heads_that_parse),
      cmocka_unit_test(test_heads_refused),
      cmocka_unit_test(test_too_many),
      cmocka_unit_test(test_chunked),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
