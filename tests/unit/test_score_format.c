/*
 * Unit tests for the format layer of telesign/score (score_format.c):
 * requests for both endpoint styles and both auth schemes against the
 * worked example of telesign-api.md section 4.4, a table of API answers
 * covering the documented response (section 3.3) and every way one can be
 * unusable, and the simulator's bands (section 3.4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/config/config.h"
#include "../../src/telesign/score.h"
#include "../../src/util/err.h"

#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))

#define EX_CUSTOMER "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"
#define EX_KEY      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define EX_DATE     "Mon, 06 Jan 2025 15:04:05 GMT"
#define EX_NONCE    "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define EX_NUMBER   "15555550123"

#define FORM "application/x-www-form-urlencoded"

#define LEGACY_URL "https://rest-ww.telesign.com/v1/score"
#define INTEL_URL  "https://detect.telesign.com/intelligence/phone"

#define TSA_LEGACY                                                            \
  "TSA " EX_CUSTOMER ":MO1/CS1zZONUz/aNH8HOQUOijyHU+UaNEoRXVnW3/1A="
#define TSA_INTEL                                                             \
  "TSA " EX_CUSTOMER ":5PzxecFS+U3mZDuT/k84ZdOZjAUzkKibGPiotOSAl5I="
#define BASIC                                                                 \
  "Basic "                                                                    \
  "MEExQjJDM0QtNEU1Ri02QTdCLThDOUQtMEUxRjJBM0I0QzVEOkFBRUNBd1FGQmdjSUNRb0xE"  \
  "QTBPRHhBUkVoTVVGUllYR0JrYUd4d2RIaDg9"

#define LEGACY_BODY "account_lifecycle_event=transact"
#define INTEL_BODY                                                            \
  "phone_number=" EX_NUMBER "&account_lifecycle_event=transact"

/* A config with only the telesign section set, as config_load() leaves it. */
static void make_config(struct config *cfg, enum config_score_api api,
                        enum config_auth auth, const char *url,
                        const char *event)
{
  memset(cfg, 0, sizeof(*cfg));
  cfg->telesign.provider = PROVIDER_TELESIGN;
  cfg->telesign.customer_id = EX_CUSTOMER;
  cfg->telesign.api_key = EX_KEY;
  cfg->telesign.score_url = (char *)url;
  cfg->telesign.score_api = api;
  cfg->telesign.auth = auth;
  cfg->telesign.timeout_ms = 1500;
  cfg->telesign.virtual_number = "";
  cfg->telesign.account_lifecycle_event = (char *)(event ? event : "transact");
  cfg->telesign.ca_file = "";
  cfg->telesign.max_connections = 64;
}

/* ---- score_request_build ------------------------------------------------ */

struct request_case {
  const char *name;
  enum config_score_api api;
  enum config_auth auth;
  const char *score_url;
  const char *event; /* account_lifecycle_event; NULL: "transact" */
  const char *number;
  const char *url;
  const char *resource;
  const char *body;
  const char *authorization;
};

static const struct request_case request_cases[] = {
    {"legacy, HMAC (worked example)", SCORE_API_LEGACY, AUTH_HMAC, LEGACY_URL,
     NULL, EX_NUMBER, LEGACY_URL "/" EX_NUMBER, "/v1/score/" EX_NUMBER,
     LEGACY_BODY, TSA_LEGACY},
    {"intelligence, HMAC (worked example)", SCORE_API_INTELLIGENCE, AUTH_HMAC,
     INTEL_URL, NULL, EX_NUMBER, INTEL_URL, "/intelligence/phone", INTEL_BODY,
     TSA_INTEL},
    {"legacy, Basic", SCORE_API_LEGACY, AUTH_BASIC, LEGACY_URL, NULL,
     EX_NUMBER, LEGACY_URL "/" EX_NUMBER, "/v1/score/" EX_NUMBER, LEGACY_BODY,
     BASIC},
    {"intelligence, Basic", SCORE_API_INTELLIGENCE, AUTH_BASIC, INTEL_URL,
     NULL, EX_NUMBER, INTEL_URL, "/intelligence/phone", INTEL_BODY, BASIC},
    {"legacy, trailing slash on the base", SCORE_API_LEGACY, AUTH_HMAC,
     LEGACY_URL "/", NULL, EX_NUMBER, LEGACY_URL "/" EX_NUMBER,
     "/v1/score/" EX_NUMBER, LEGACY_BODY, TSA_LEGACY},
    {"legacy, several trailing slashes", SCORE_API_LEGACY, AUTH_HMAC,
     LEGACY_URL "///", NULL, EX_NUMBER, LEGACY_URL "/" EX_NUMBER,
     "/v1/score/" EX_NUMBER, LEGACY_BODY, TSA_LEGACY},
    /* The query is sent but not signed: the resource is the path alone. */
    {"intelligence, query string", SCORE_API_INTELLIGENCE, AUTH_HMAC,
     INTEL_URL "?trace=1&x=y", NULL, EX_NUMBER, INTEL_URL "?trace=1&x=y",
     "/intelligence/phone", INTEL_BODY, TSA_INTEL},
    {"intelligence, fragment", SCORE_API_INTELLIGENCE, AUTH_HMAC,
     INTEL_URL "#frag", NULL, EX_NUMBER, INTEL_URL "#frag",
     "/intelligence/phone", INTEL_BODY, TSA_INTEL},
    /* The number belongs in the path, before the query. */
    {"legacy, query string", SCORE_API_LEGACY, AUTH_HMAC,
     LEGACY_URL "?trace=1", NULL, EX_NUMBER,
     LEGACY_URL "/" EX_NUMBER "?trace=1", "/v1/score/" EX_NUMBER, LEGACY_BODY,
     TSA_LEGACY},
    {"intelligence, host with a port", SCORE_API_INTELLIGENCE, AUTH_HMAC,
     "http://127.0.0.1:8443/intelligence/phone", NULL, EX_NUMBER,
     "http://127.0.0.1:8443/intelligence/phone", "/intelligence/phone",
     INTEL_BODY, TSA_INTEL},
    {"legacy, host with a port", SCORE_API_LEGACY, AUTH_HMAC,
     "http://localhost:9000/v1/score/", NULL, EX_NUMBER,
     "http://localhost:9000/v1/score/" EX_NUMBER, "/v1/score/" EX_NUMBER,
     LEGACY_BODY, TSA_LEGACY},
    {"another lifecycle event", SCORE_API_LEGACY, AUTH_BASIC, LEGACY_URL,
     "sign-in", "447911123456", LEGACY_URL "/447911123456",
     "/v1/score/447911123456", "account_lifecycle_event=sign-in", BASIC},
    {"intelligence, another number", SCORE_API_INTELLIGENCE, AUTH_BASIC,
     INTEL_URL, "create", "15555550999", INTEL_URL, "/intelligence/phone",
     "phone_number=15555550999&account_lifecycle_event=create", BASIC},
};

static void test_request_build(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(request_cases); i++) {
    const struct request_case *c = &request_cases[i];
    int basic = c->auth == AUTH_BASIC;
    struct score_request req;
    struct config cfg;
    char err[256] = "";
    int rc;

    make_config(&cfg, c->api, c->auth, c->score_url, c->event);
    memset(&req, 'x', sizeof(req));
    rc = score_request_build(&cfg, NULL, c->number, EX_DATE, EX_NONCE, &req,
                             err, sizeof(err));
    if (rc != 0 || strcmp(req.url, c->url) ||
        strcmp(req.resource, c->resource) || strcmp(req.body, c->body) ||
        strcmp(req.content_type, FORM) ||
        strcmp(req.authorization, c->authorization) ||
        strcmp(req.date, basic ? "" : EX_DATE) ||
        strcmp(req.nonce, basic ? "" : EX_NONCE)) {
      print_error(
          "case \"%s\": rc %d (%s)\n url  \"%.1023s\"\n res  \"%.511s\""
          "\n body \"%.255s\"\n ct   \"%.47s\"\n auth \"%.511s\"\n"
          " date \"%.39s\" nonce \"%.39s\"\n",
          c->name, rc, err, req.url, req.resource, req.body, req.content_type,
          req.authorization, req.date, req.nonce);
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

/* Without a fixed date and nonce, fresh ones are made and signed. */
static void test_request_fresh_date_nonce(void **state)
{
  static const char hex[] = "0123456789abcdefABCDEF";
  struct score_request a;
  struct score_request b;
  struct config cfg;
  char err[256] = "";
  const char *sig;

  (void)state;
  make_config(&cfg, SCORE_API_INTELLIGENCE, AUTH_HMAC, INTEL_URL, NULL);
  assert_int_equal(score_request_build(&cfg, NULL, EX_NUMBER, NULL, NULL, &a,
                                       err, sizeof(err)),
                   0);
  assert_int_equal(score_request_build(&cfg, NULL, EX_NUMBER, NULL, NULL, &b,
                                       err, sizeof(err)),
                   0);
  /* "Mon, 06 Jan 2025 15:04:05 GMT" */
  assert_int_equal(strlen(a.date), 29);
  assert_int_equal(a.date[3], ',');
  assert_string_equal(a.date + 25, " GMT");
  /* A UUID, different each time. */
  assert_int_equal(strlen(a.nonce), 36);
  for (size_t i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      assert_int_equal(a.nonce[i], '-');
    else
      assert_non_null(strchr(hex, a.nonce[i]));
  }
  assert_string_not_equal(a.nonce, b.nonce);
  /* Signed with them: 44 characters of base64 after the customer id. */
  assert_memory_equal(a.authorization, "TSA " EX_CUSTOMER ":",
                      strlen("TSA " EX_CUSTOMER ":"));
  sig = a.authorization + strlen("TSA " EX_CUSTOMER ":");
  assert_int_equal(strlen(sig), 44);
  assert_int_equal(sig[43], '=');
  assert_string_not_equal(a.authorization, b.authorization);
  assert_string_equal(a.body, INTEL_BODY);
  /* Basic ignores them. */
  make_config(&cfg, SCORE_API_INTELLIGENCE, AUTH_BASIC, INTEL_URL, NULL);
  assert_int_equal(score_request_build(&cfg, NULL, EX_NUMBER, NULL, NULL, &a,
                                       err, sizeof(err)),
                   0);
  assert_string_equal(a.authorization, BASIC);
  assert_string_equal(a.date, "");
  assert_string_equal(a.nonce, "");
}

/* ---- the request on the wire ------------------------------------------ */

struct wire_case {
  const char *score_url;
  enum config_auth auth;
  const char *host;
  const char *target;
};

static const struct wire_case wire_cases[] = {
    {INTEL_URL, AUTH_HMAC, "detect.telesign.com", "/intelligence/phone"},
    {INTEL_URL "?trace=1&x=y#frag", AUTH_HMAC, "detect.telesign.com",
     "/intelligence/phone?trace=1&x=y"},
    {"http://127.0.0.1:8443/intelligence/phone", AUTH_BASIC, "127.0.0.1:8443",
     "/intelligence/phone"},
    {"https://user:secret@detect.telesign.com/intelligence/phone", AUTH_HMAC,
     "detect.telesign.com", "/intelligence/phone"},
    {"https://[::1]:8443?q=1", AUTH_HMAC, "[::1]:8443", "/?q=1"},
};

/*
 * The head names the authority without its user information, and the path
 * with its query; HMAC adds the date and the nonce it signed.
 */
static void test_request_wire(void **state)
{
  char wire[4096];
  char want[4096];

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(wire_cases); i++) {
    const struct wire_case *c = &wire_cases[i];
    struct score_request req;
    struct config cfg;
    char err[256] = "";
    long n;

    make_config(&cfg, SCORE_API_INTELLIGENCE, c->auth, c->score_url, NULL);
    assert_int_equal(score_request_build(&cfg, NULL, EX_NUMBER, EX_DATE,
                                         EX_NONCE, &req, err, sizeof(err)),
                     0);
    assert_string_equal(req.host, c->host);
    assert_string_equal(req.target, c->target);
    n = score_request_wire(&req, wire, sizeof(wire));
    snprintf(want, sizeof(want),
             "POST %s HTTP/1.1\r\nHost: %s\r\n"
             "User-Agent: voice-and-score/" VS_VERSION "\r\n"
             "Accept: application/json\r\n"
             "Content-Type: " FORM "\r\nContent-Length: %zu\r\n"
             "Authorization: %s\r\n%s%s%s%s\r\n" INTEL_BODY,
             c->target, c->host, strlen(INTEL_BODY), req.authorization,
             c->auth == AUTH_HMAC ? "Date: " EX_DATE "\r\n" : "",
             c->auth == AUTH_HMAC ? "x-ts-auth-method: HMAC-SHA256\r\n" : "",
             c->auth == AUTH_HMAC ? "x-ts-nonce: " EX_NONCE : "",
             c->auth == AUTH_HMAC ? "\r\n" : "");
    assert_string_equal(wire, want);
    assert_int_equal(n, (long)strlen(want));
    /* Too small a buffer is refused, not cut. */
    assert_int_equal(score_request_wire(&req, wire, (size_t)n), VS_ERR_LIMIT);
  }
}

/* ---- reading the answer ------------------------------------------------ */

#define OK_BODY "{\"risk\":{\"score\":7}}"

struct http_case {
  const char *name;
  const char *in;
  int eof; /* the connection ends after `in` */
  int rc;  /* score_http_feed's, then score_http_eof's when eof */
  int status;
  int keep_alive;
  const char *body;
};

static const struct http_case http_cases[] = {
    {"Content-Length",
     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
     "Content-Length: 20\r\n\r\n" OK_BODY,
     0, SCORE_HTTP_DONE, 200, 1, OK_BODY},
    {"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}", 0,
     SCORE_HTTP_DONE, 200, 1, "{}"},
    {"chunked, with an extension and a trailer",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5;x=y\r\n{\"ris\r\nf\r\nk\":{\"score\":7}}\r\n0\r\nX-T: 1\r\n\r\n",
     0, SCORE_HTTP_DONE, 200, 1, OK_BODY},
    {"Connection: close",
     "HTTP/1.1 503 Busy\r\nConnection: close\r\n"
     "Content-Length: 0\r\n\r\n",
     0, SCORE_HTTP_DONE, 503, 0, ""},
    {"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", 0,
     SCORE_HTTP_DONE, 200, 0, "{}"},
    {"HTTP/1.0 keep-alive",
     "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: "
     "2\r\n\r\n{}",
     0, SCORE_HTTP_DONE, 200, 1, "{}"},
    {"body to the close", "HTTP/1.1 200 OK\r\n\r\n" OK_BODY, 1,
     SCORE_HTTP_DONE, 200, 0, OK_BODY},
    {"an interim answer first",
     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2"
     "\r\n\r\n{}",
     0, SCORE_HTTP_DONE, 200, 1, "{}"},
    {"204 has no body", "HTTP/1.1 204 No Content\r\n\r\n", 0, SCORE_HTTP_DONE,
     204, 1, ""},
    {"bytes past the answer end the keep-alive",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1", 0,
     SCORE_HTTP_DONE, 200, 0, "{}"},
    {"the same Content-Length twice",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 0,
     SCORE_HTTP_DONE, 200, 1, "{}"},
    {"head only, then more", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 0,
     SCORE_HTTP_MORE, 200, 1, ""},
    {"cut in the body", "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{\"r", 1,
     SCORE_HTTP_SHORT, 200, 1, "{\"r"},
    {"nothing at all", "", 1, SCORE_HTTP_SHORT, 0, 0, ""},
    {"cut in the head", "HTTP/1.1 200 OK\r\nContent-Le", 1, SCORE_HTTP_SHORT,
     0, 0, ""},
    {"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", 0, SCORE_HTTP_BAD, 0, 0, ""},
    {"HTTP/2", "HTTP/2 200\r\n\r\n", 0, SCORE_HTTP_BAD, 0, 0, ""},
    {"status 000", "HTTP/1.1 000 OK\r\n\r\n", 0, SCORE_HTTP_BAD, 0, 0, ""},
    {"a two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, SCORE_HTTP_BAD, 0, 0,
     ""},
    {"two different lengths",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", 0,
     SCORE_HTTP_BAD, 200, 0, ""},
    {"length and chunked",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked"
     "\r\n\r\n",
     0, SCORE_HTTP_BAD, 200, 0, ""},
    {"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0,
     SCORE_HTTP_BAD, 200, 0, ""},
    {"a signed length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0,
     SCORE_HTTP_BAD, 200, 0, ""},
    {"space before the colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n",
     0, SCORE_HTTP_BAD, 200, 0, ""},
    {"a folded line", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0,
     SCORE_HTTP_BAD, 200, 0, ""},
    {"a NUL in the head", "HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 0,
     SCORE_HTTP_BAD, 0, 0, ""},
    {"a bad chunk size",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0,
     SCORE_HTTP_BAD, 200, 1, ""},
    {"a length over the ceiling",
     "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 0,
     SCORE_HTTP_TOO_LARGE, 200, 1, ""},
};

/* `c->in`'s length: "a NUL in the head" holds a NUL. */
static size_t case_len(const struct http_case *c)
{
  return strcmp(c->name, "a NUL in the head") == 0
             ? sizeof("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n") - 1
             : strlen(c->in);
}

/* Every case, whole and a byte at a time: where reads split the answer
 * must not matter. */
static void test_http_read(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(http_cases); i++) {
    const struct http_case *c = &http_cases[i];
    size_t len = case_len(c);

    for (size_t step = len ? len : 1; step; step = step == 1 ? 0 : 1) {
      struct score_http h;
      struct buf body;
      int rc = SCORE_HTTP_MORE;

      score_http_init(&h);
      buf_init(&body, 64);
      for (size_t at = 0; at < len; at += step)
        rc = score_http_feed(&h, c->in + at, len - at < step ? len - at : step,
                             &body);
      if (c->eof && rc == SCORE_HTTP_MORE)
        rc = score_http_eof(&h);
      if (rc != c->rc || (c->status && h.status != c->status) ||
          (rc == SCORE_HTTP_DONE && h.keep_alive != c->keep_alive) ||
          strcmp(body.data ? body.data : "", c->body)) {
        print_error("case \"%s\" in steps of %zu: rc %d status %d keep %d "
                    "body \"%s\"\n",
                    c->name, step, rc, h.status, h.keep_alive,
                    body.data ? body.data : "");
        failures++;
      }
      /* Once ended, it stays so. */
      if (rc != SCORE_HTTP_MORE && score_http_feed(&h, "x", 1, &body) != rc)
        failures++;
      score_http_free(&h);
      buf_free(&body);
    }
  }
  assert_int_equal(failures, 0);
}

/* A head over SCORE_HEAD_MAX is refused, even when it comes in one piece
 * with the start of a body. */
static void test_http_head_ceiling(void **state)
{
  size_t n = SCORE_HEAD_MAX + 64;
  char *big = malloc(n);
  struct score_http h;
  struct buf body;

  (void)state;
  assert_non_null(big);
  memset(big, 'a', n);
  memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
  score_http_init(&h);
  buf_init(&body, 64);
  assert_int_equal(score_http_feed(&h, big, n, &body), SCORE_HTTP_TOO_LARGE);
  score_http_free(&h);
  /* A small head in the same read as a body is fine. */
  score_http_init(&h);
  memcpy(big, "HTTP/1.1 200 OK\r\nContent-Length: 8000\r\n\r\n", 41);
  buf_free(&body);
  buf_init(&body, 16384);
  assert_int_equal(score_http_feed(&h, big, 41 + 8000, &body),
                   SCORE_HTTP_DONE);
  assert_int_equal(body.len, 8000);
  score_http_free(&h);
  buf_free(&body);
  free(big);
}

/* 600 digits: long enough to overflow the body or the resource. */
static char long_number[601];

struct bad_request_case {
  const char *name;
  enum config_score_api api;
  const char *score_url;
  const char *number; /* NULL: long_number */
  int rc;
  const char *msg; /* substring of err */
};

static const struct bad_request_case bad_request_cases[] = {
    {"empty number", SCORE_API_INTELLIGENCE, INTEL_URL, "", VS_ERR_INVAL,
     "is not a digits-only number"},
    {"leading +", SCORE_API_INTELLIGENCE, INTEL_URL, "+15555550123",
     VS_ERR_INVAL, "'+15555550123' is not a digits-only number"},
    {"letter", SCORE_API_LEGACY, LEGACY_URL, "1555555012a", VS_ERR_INVAL,
     "'1555555012a' is not a digits-only number"},
    {"space", SCORE_API_LEGACY, LEGACY_URL, "1555 5550123", VS_ERR_INVAL,
     "is not a digits-only number"},
    {"dash", SCORE_API_INTELLIGENCE, INTEL_URL, "1-555-555-0123", VS_ERR_INVAL,
     "is not a digits-only number"},
    {"path injection", SCORE_API_LEGACY, LEGACY_URL, "1/../../admin",
     VS_ERR_INVAL, "is not a digits-only number"},
    {"form injection", SCORE_API_INTELLIGENCE, INTEL_URL,
     "1&account_lifecycle_event=delete", VS_ERR_INVAL,
     "is not a digits-only number"},
    {"CRLF", SCORE_API_INTELLIGENCE, INTEL_URL, "1\r\n", VS_ERR_INVAL,
     "is not a digits-only number"},
    {"URL without a scheme", SCORE_API_INTELLIGENCE,
     "detect.telesign.com/intelligence/phone", EX_NUMBER, VS_ERR_INVAL,
     "score URL has no host"},
    {"number too long for the body", SCORE_API_INTELLIGENCE, INTEL_URL, NULL,
     VS_ERR_LIMIT, "too long"},
    {"number too long for the resource", SCORE_API_LEGACY, LEGACY_URL, NULL,
     VS_ERR_LIMIT, ""},
};

static void test_request_build_invalid(void **state)
{
  int failures = 0;

  (void)state;
  memset(long_number, '1', sizeof(long_number) - 1);
  for (size_t i = 0; i < ARRAYSIZE(bad_request_cases); i++) {
    const struct bad_request_case *c = &bad_request_cases[i];
    struct score_request req;
    struct config cfg;
    char err[256] = "";
    int rc;

    make_config(&cfg, c->api, AUTH_HMAC, c->score_url, NULL);
    rc = score_request_build(&cfg, NULL, c->number ? c->number : long_number,
                             EX_DATE, EX_NONCE, &req, err, sizeof(err));
    if (rc != c->rc || !strstr(err, c->msg)) {
      print_error("case \"%s\": got %d \"%s\", want %d containing \"%s\"\n",
                  c->name, rc, err, c->rc, c->msg);
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

/* ---- score_response_parse ----------------------------------------------- */

/* The documented 200 response of reference section 3.3, in full. */
#define FULL_RESPONSE                                                         \
  "{\n"                                                                       \
  "  \"reference_id\": \"F0123456789ABCDEF0123456789ABCDE\",\n"               \
  "  \"external_id\": null,\n"                                                \
  "  \"status\": { \"code\": 300, \"description\": \"Transaction "            \
  "successfully completed\",\n"                                               \
  "              \"updated_on\": \"2025-01-06T15:04:05.713254Z\" },\n"        \
  "  \"errors\": [],\n"                                                       \
  "  \"numbering\": {\n"                                                      \
  "    \"original\": { \"complete_phone_number\": \"15555550123\", "          \
  "\"country_code\": \"1\",\n"                                                \
  "                  \"phone_number\": \"5555550123\" },\n"                   \
  "    \"cleansing\": {\n"                                                    \
  "      \"call\": { \"country_code\": \"1\", \"phone_number\": "             \
  "\"5555550123\",\n"                                                         \
  "                \"cleansed_code\": 100, \"min_length\": 10, "              \
  "\"max_length\": 10 },\n"                                                   \
  "      \"sms\":  { \"country_code\": \"1\", \"phone_number\": "             \
  "\"5555550123\",\n"                                                         \
  "                \"cleansed_code\": 100, \"min_length\": 10, "              \
  "\"max_length\": 10 }\n"                                                    \
  "    }\n"                                                                   \
  "  },\n"                                                                    \
  "  \"phone_type\": { \"code\": \"2\", \"description\": \"MOBILE\" },\n"     \
  "  \"location\": {\n"                                                       \
  "    \"city\": \"Chicago\", \"state\": \"IL\", \"zip\": \"60611\", "        \
  "\"metro_code\": \"1600\",\n"                                               \
  "    \"county\": \"Cook\",\n"                                               \
  "    \"country\": { \"name\": \"United States\", \"iso2\": \"US\", "        \
  "\"iso3\": \"USA\" },\n"                                                    \
  "    \"coordinates\": { \"latitude\": 41.87, \"longitude\": -87.71 },\n"    \
  "    \"time_zone\": { \"name\": \"America/Chicago\", \"utc_offset_min\": "  \
  "\"-6\", \"utc_offset_max\": \"-6\" }\n"                                    \
  "  },\n"                                                                    \
  "  \"carrier\": { \"name\": \"Example Wireless\" },\n"                      \
  "  \"blocklisting\": { \"blocked\": false, \"block_code\": 0, "             \
  "\"block_description\": \"Not blocked\" },\n"                               \
  "  \"risk\": { \"level\": \"low\", \"recommendation\": \"allow\", "         \
  "\"score\": 120 },\n"                                                       \
  "  \"risk_insights\": { \"status\": 800, \"category\": [10010], \"a2p\": "  \
  "[], \"p2p\": [],\n"                                                        \
  "                     \"number_type\": [], \"ip\": [], \"email\": [] }\n"   \
  "}\n"

/* The smallest usable answer, with the score as given. */
#define WITH_SCORE(s) "{\"status\":{\"code\":300},\"risk\":{\"score\":" s "}}"

#define L100                                                                  \
  "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL" \
  "LLLLLLLLLLLLLLLLLLLLLLLLLLL"

struct response_case {
  const char *name;
  int http;
  const char *body;
  enum score_failure failure;
  const char *error;
  int status_code;
  int32_t score;
  const char *level;
  const char *recommendation;
  const char *phone_type;
  const char *phone_type_code;
  const char *ref;
};

static const struct response_case response_cases[] = {
    {"documented response", 200, FULL_RESPONSE, SCORE_OK, "", 300, 120, "low",
     "allow", "MOBILE", "2", "F0123456789ABCDEF0123456789ABCDE"},
    {"201 is success", 201, WITH_SCORE("5"), SCORE_OK, "", 300, 5, "", "", "",
     "", ""},
    {"score 742", 200,
     "{\"status\":{\"code\":300},\"risk\":{\"level\":\"high\","
     "\"recommendation\":\"block\",\"score\":742}}",
     SCORE_OK, "", 300, 742, "high", "block", "", "", ""},
    {"score as a string", 200, WITH_SCORE("\"742\""), SCORE_OK, "", 300, 742,
     "", "", "", "", ""},
    {"score as a real", 200, WITH_SCORE("742.0"), SCORE_OK, "", 300, 742, "",
     "", "", "", ""},
    {"score 0", 200, WITH_SCORE("0"), SCORE_OK, "", 300, 0, "", "", "", "",
     ""},
    {"score 1000", 200, WITH_SCORE("1000"), SCORE_OK, "", 300, 1000, "", "",
     "", "", ""},
    {"score -1", 200, WITH_SCORE("-1"), SCORE_FAIL_PARSE, "score_out_of_range",
     300, -1, "", "", "", "", ""},
    {"score 1001", 200, WITH_SCORE("1001"), SCORE_FAIL_PARSE,
     "score_out_of_range", 300, -1, "", "", "", "", ""},
    {"score \"1001\"", 200, WITH_SCORE("\"1001\""), SCORE_FAIL_PARSE,
     "score_out_of_range", 300, -1, "", "", "", "", ""},
    {"score huge", 200, WITH_SCORE("99999999999999"), SCORE_FAIL_PARSE,
     "score_out_of_range", 300, -1, "", "", "", "", ""},
    {"score not a number", 200, WITH_SCORE("\"high\""), SCORE_FAIL_NO_SCORE,
     "no_score", 300, -1, "", "", "", "", ""},
    {"score null", 200, WITH_SCORE("null"), SCORE_FAIL_NO_SCORE, "no_score",
     300, -1, "", "", "", "", ""},
    {"status.code as a string", 200,
     "{\"status\":{\"code\":\"300\"},\"risk\":{\"score\":10}}", SCORE_OK, "",
     300, 10, "", "", "", "", ""},
    {"status 301 (partial) is usable", 200,
     "{\"status\":{\"code\":301},\"risk\":{\"score\":10}}", SCORE_OK, "", 301,
     10, "", "", "", "", ""},
    {"status \"301\"", 200,
     "{\"status\":{\"code\":\"301\"},\"risk\":{\"score\":10}}", SCORE_OK, "",
     301, 10, "", "", "", "", ""},
    {"status 501", 200,
     "{\"reference_id\":\"R1\",\"status\":{\"code\":501,\"description\":"
     "\"Not authorized\"},\"risk\":{\"score\":10}}",
     SCORE_FAIL_STATUS, "status_501", 501, -1, "", "", "", "", "R1"},
    {"status 500", 200, "{\"status\":{\"code\":500}}", SCORE_FAIL_STATUS,
     "status_500", 500, -1, "", "", "", "", ""},
    {"status \"500\"", 200, "{\"status\":{\"code\":\"500\"}}",
     SCORE_FAIL_STATUS, "status_500", 500, -1, "", "", "", "", ""},
    {"negative status code", 200,
     "{\"status\":{\"code\":-30006},\"errors\":[{\"code\":-30006,"
     "\"description\":\"Invalid Signature.\"}]}",
     SCORE_FAIL_STATUS, "status_-30006", -30006, -1, "", "", "", "", ""},
    {"negative status code as a string", 200,
     "{\"status\":{\"code\":\"-30006\"}}", SCORE_FAIL_STATUS, "status_-30006",
     -30006, -1, "", "", "", "", ""},
    {"status 0", 200, "{\"status\":{\"code\":0},\"risk\":{\"score\":10}}",
     SCORE_FAIL_STATUS, "status_0", 0, -1, "", "", "", "", ""},
    {"no status, a score", 200, "{\"risk\":{\"score\":10}}", SCORE_OK, "", 0,
     10, "", "", "", "", ""},
    {"missing risk", 200, "{\"status\":{\"code\":300}}", SCORE_FAIL_NO_SCORE,
     "no_score", 300, -1, "", "", "", "", ""},
    {"risk without score", 200,
     "{\"status\":{\"code\":300},\"risk\":{\"level\":\"low\","
     "\"recommendation\":\"allow\"}}",
     SCORE_FAIL_NO_SCORE, "no_score", 300, -1, "low", "allow", "", "", ""},
    {"risk not an object", 200, "{\"status\":{\"code\":300},\"risk\":742}",
     SCORE_FAIL_NO_SCORE, "no_score", 300, -1, "", "", "", "", ""},
    {"empty object", 200, "{}", SCORE_FAIL_NO_SCORE, "no_score", 0, -1, "", "",
     "", "", ""},
    {"HTTP 429", 429, "{\"status\":{\"code\":10019}}", SCORE_FAIL_HTTP,
     "http_429", 0, -1, "", "", "", "", ""},
    {"HTTP 500", 500, FULL_RESPONSE, SCORE_FAIL_HTTP, "http_500", 0, -1, "",
     "", "", "", ""},
    {"HTTP 503", 503, "", SCORE_FAIL_HTTP, "http_503", 0, -1, "", "", "", "",
     ""},
    {"HTTP 401", 401, "{\"status\":{\"code\":-30006}}", SCORE_FAIL_HTTP,
     "http_401", 0, -1, "", "", "", "", ""},
    {"HTTP 301", 301, WITH_SCORE("5"), SCORE_FAIL_HTTP, "http_301", 0, -1, "",
     "", "", "", ""},
    {"HTTP 199", 199, WITH_SCORE("5"), SCORE_FAIL_HTTP, "http_199", 0, -1, "",
     "", "", "", ""},
    {"garbage", 200, "Service Unavailable", SCORE_FAIL_PARSE, "unparseable", 0,
     -1, "", "", "", "", ""},
    {"truncated", 200, "{\"status\":{\"code\":300},\"risk\":{\"score\":7",
     SCORE_FAIL_PARSE, "unparseable", 0, -1, "", "", "", "", ""},
    {"empty body", 200, "", SCORE_FAIL_PARSE, "unparseable", 0, -1, "", "", "",
     "", ""},
    {"null", 200, "null", SCORE_FAIL_PARSE, "unparseable", 0, -1, "", "", "",
     "", ""},
    {"array", 200, "[" WITH_SCORE("5") "]", SCORE_FAIL_PARSE, "unparseable", 0,
     -1, "", "", "", "", ""},
    {"empty array", 200, "[]", SCORE_FAIL_PARSE, "unparseable", 0, -1, "", "",
     "", "", ""},
    {"a number", 200, "742", SCORE_FAIL_PARSE, "unparseable", 0, -1, "", "",
     "", "", ""},
    {"a string", 200, "\"742\"", SCORE_FAIL_PARSE, "unparseable", 0, -1, "",
     "", "", "", ""},
    {"trailing garbage", 200, WITH_SCORE("5") "x", SCORE_FAIL_PARSE,
     "unparseable", 0, -1, "", "", "", "", ""},
    {"HTML", 200, "<html><body>OK</body></html>", SCORE_FAIL_PARSE,
     "unparseable", 0, -1, "", "", "", "", ""},
    {"unknown fields are ignored", 200,
     "{\"new_thing\":[1,{\"a\":null}],\"status\":{\"code\":300,\"x\":true},"
     "\"risk\":{\"score\":5,\"extra\":{\"y\":[]},\"level\":\"very low\"},"
     "\"phone_type\":{\"code\":5,\"description\":\"VOIP\",\"z\":1}}",
     SCORE_OK, "", 300, 5, "very low", "", "VOIP", "5", ""},
    {"phone_type.code as an integer", 200,
     "{\"risk\":{\"score\":5},\"phone_type\":{\"code\":2,\"description\":"
     "\"MOBILE\"}}",
     SCORE_OK, "", 0, 5, "", "", "MOBILE", "2", ""},
    {"phone_type.code as a string", 200,
     "{\"risk\":{\"score\":5},\"phone_type\":{\"code\":\"10\"}}", SCORE_OK, "",
     0, 5, "", "", "", "10", ""},
    {"reference_id kept", 200,
     "{\"reference_id\":\"534e1848-235f-482d-983d-e3e11a04f58a\","
     "\"risk\":{\"score\":5}}",
     SCORE_OK, "", 0, 5, "", "", "", "",
     "534e1848-235f-482d-983d-e3e11a04f58a"},
    {"over-long strings are cut", 200,
     "{\"reference_id\":\"" L100 "\",\"risk\":{\"score\":5,\"level\":\"" L100
     "\",\"recommendation\":\"" L100 "\"},\"phone_type\":{\"code\":\"" L100
     "\",\"description\":\"" L100 "\"}}",
     SCORE_OK, "", 0, 5, "LLLLLLLLLLLLLLL", "LLLLLLLLLLLLLLL",
     "LLLLLLLLLLLLLLLLLLLLLLL", "LLLLLLL",
     "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"},
    {"over-long status code", 200,
     "{\"status\":{\"code\":99999999999},\"risk\":{\"score\":5}}",
     SCORE_FAIL_STATUS, "status_99999999999", -1, -1, "", "", "", "", ""},
};

static void test_response_parse(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(response_cases); i++) {
    const struct response_case *c = &response_cases[i];
    size_t len = strlen(c->body);
    struct score_result res;
    char *body;

    /* An exact-size copy with no terminator, so ASan sees overreads. */
    body = malloc(len ? len : 1);
    assert_non_null(body);
    memcpy(body, c->body, len);
    /* Every field must be reset, whatever the struct held before. */
    memset(&res, 0x55, sizeof(res));
    score_response_parse(c->http, body, len, &res);
    free(body);
    if (res.failure != c->failure || strcmp(res.error, c->error) ||
        res.http_status != c->http || res.status_code != c->status_code ||
        res.score != c->score || strcmp(res.level, c->level) ||
        strcmp(res.recommendation, c->recommendation) ||
        strcmp(res.phone_type, c->phone_type) ||
        strcmp(res.phone_type_code, c->phone_type_code) ||
        strcmp(res.ref, c->ref)) {
      print_error("case \"%s\": failure %d error \"%.63s\" http %d status %d "
                  "score %d level \"%.15s\" recommendation \"%.15s\" "
                  "phone_type \"%.23s\" code \"%.7s\" ref \"%.64s\"\n",
                  c->name, (int)res.failure, res.error, res.http_status,
                  res.status_code, (int)res.score, res.level,
                  res.recommendation, res.phone_type, res.phone_type_code,
                  res.ref);
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

/* A body of NUL bytes or random binary still gives a result. */
static void test_response_parse_binary(void **state)
{
  static const char zeros[16];
  static const char binary[] = "\x7b\x22\xff\xfe\x00\x01\"risk\"";
  struct score_result res;

  (void)state;
  score_response_parse(200, zeros, sizeof(zeros), &res);
  assert_int_equal(res.failure, SCORE_FAIL_PARSE);
  assert_int_equal(res.score, -1);
  score_response_parse(200, binary, sizeof(binary) - 1, &res);
  assert_int_equal(res.failure, SCORE_FAIL_PARSE);
  /* A valid body whose `len` stops short of its end. */
  score_response_parse(200, WITH_SCORE("5"), 10, &res);
  assert_int_equal(res.failure, SCORE_FAIL_PARSE);
  assert_string_equal(res.error, "unparseable");
}

static void test_failure_names(void **state)
{
  static const struct {
    enum score_failure f;
    const char *name;
  } names[] = {
      {SCORE_OK, "ok"},
      {SCORE_FAIL_TIMEOUT, "timeout"},
      {SCORE_FAIL_CONNECT, "connect"},
      {SCORE_FAIL_HTTP, "http"},
      {SCORE_FAIL_PARSE, "parse"},
      {SCORE_FAIL_STATUS, "status"},
      {SCORE_FAIL_NO_SCORE, "no_score"},
      {SCORE_FAIL_TOO_LARGE, "too_large"},
      {SCORE_FAIL_INTERNAL, "internal"},
      {SCORE_FAIL_CANCELLED, "cancelled"},
      {SCORE_FAIL_BREAKER, "circuit_open"},
      {(enum score_failure)11, "unknown"},
      {(enum score_failure) - 1, "unknown"},
  };

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(names); i++)
    assert_string_equal(score_failure_name(names[i].f), names[i].name);
}

/* ---- score_simulate ------------------------------------------------------
 */

struct simulate_case {
  const char *number;
  int32_t score;
  const char *level;
  const char *recommendation;
};

static const struct simulate_case simulate_cases[] = {
    {"15555550999", 999, "very high", "block"},
    {"15555550123", 123, "very low", "allow"},
    {"15555550600", 600, "medium", "flag"},
    {"15555550601", 601, "high", "block"},
    {"15555550000", 0, "very low", "allow"},
    {"15555550200", 200, "very low", "allow"},
    {"15555550201", 201, "low", "allow"},
    {"15555550400", 400, "low", "allow"},
    {"15555550401", 401, "medium", "flag"},
    {"15555550800", 800, "high", "block"},
    {"15555550801", 801, "very high", "block"},
    {"442079460742", 742, "high", "block"},
};

static void test_simulate(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(simulate_cases); i++) {
    const struct simulate_case *c = &simulate_cases[i];
    struct score_result res;

    memset(&res, 0x55, sizeof(res));
    score_simulate(c->number, &res);
    if (res.failure != SCORE_OK || strcmp(res.error, "") ||
        res.http_status != 200 || res.status_code != 300 ||
        res.score != c->score || strcmp(res.level, c->level) ||
        strcmp(res.recommendation, c->recommendation) ||
        strcmp(res.phone_type, "SIMULATED") || strcmp(res.ref, "simulated")) {
      print_error("case \"%s\": failure %d score %d level \"%.15s\" "
                  "recommendation \"%.15s\"\n",
                  c->number, (int)res.failure, (int)res.score, res.level,
                  res.recommendation);
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_build),
      cmocka_unit_test(test_request_fresh_date_nonce),
      cmocka_unit_test(test_request_build_invalid),
      cmocka_unit_test(test_request_wire),
      cmocka_unit_test(test_http_read),
      cmocka_unit_test(test_http_head_ceiling),
      cmocka_unit_test(test_response_parse),
      cmocka_unit_test(test_response_parse_binary),
      cmocka_unit_test(test_failure_names),
      cmocka_unit_test(test_simulate),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
