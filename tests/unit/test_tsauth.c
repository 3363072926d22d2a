/*
 * Unit tests for telesign/tsauth against every vector in the TeleSign API
 * reference (telesign-api.md, sections 2 and 4): the worked examples,
 * TeleSign's SDK unit-test vectors, both Basic headers and both callback
 * signatures, plus buffer limits, input validation, the date and nonce
 * formats and the constant-time comparison.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <gnutls/crypto.h>

#include "../../src/telesign/tsauth.h"
#include "../../src/util/base64.h"
#include "../../src/util/err.h"

#define EX_CUSTOMER "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"
#define EX_KEY      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define EX_DATE     "Mon, 06 Jan 2025 15:04:05 GMT"
#define EX_NONCE    "7c9e6679-7425-40de-944b-e07fc1f90ae7"

#define SDK_CUSTOMER "FFFFFFFF-EEEE-DDDD-1234-AB1234567890"
#define SDK_KEY                                                               \
  "EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2zU1" \
  "YWaUw/0wV6xfw=="
#define SDK_DATE  "Wed, 14 Dec 2016 18:20:12 GMT"
#define SDK_NONCE "A1592C6F-E384-4CDB-BC42-C3AB970369E9"

#define FORM "application/x-www-form-urlencoded"

struct hmac_case {
  const char *name;
  const char *customer;
  const char *key;
  struct tsauth_request req;
  const char *expected; /* the whole Authorization value */
};

#define BODY(s) s, sizeof(s) - 1

static const struct hmac_case hmac_cases[] = {
    {"worked example, legacy /v1/score",
     EX_CUSTOMER,
     EX_KEY,
     {"POST", FORM, "/v1/score/15555550123",
      BODY("account_lifecycle_event=transact"), EX_DATE, EX_NONCE},
     "TSA " EX_CUSTOMER ":MO1/CS1zZONUz/aNH8HOQUOijyHU+UaNEoRXVnW3/1A="},
    {"worked example, cloud /intelligence/phone",
     EX_CUSTOMER,
     EX_KEY,
     {"POST", FORM, "/intelligence/phone",
      BODY("phone_number=15555550123&account_lifecycle_event=transact"),
      EX_DATE, EX_NONCE},
     "TSA " EX_CUSTOMER ":5PzxecFS+U3mZDuT/k84ZdOZjAUzkKibGPiotOSAl5I="},
    {"SDK POST test=param",
     SDK_CUSTOMER,
     SDK_KEY,
     {"POST", FORM, "/v1/resource", BODY("test=param"), SDK_DATE, SDK_NONCE},
     "TSA " SDK_CUSTOMER ":2xVlmbrxLjYrrPun3G3WMNG6Jon4yKcTeOoK9DjXJ/Q="},
    {"SDK POST unicode body",
     SDK_CUSTOMER,
     SDK_KEY,
     {"POST", FORM, "/v1/resource", BODY("test=%CF%BF"), SDK_DATE, SDK_NONCE},
     "TSA " SDK_CUSTOMER ":h8d4I0RTxErbxYXuzCOtNqb/f0w3Ck8e5SEkGNj01+8="},
    {"SDK GET, empty content type",
     SDK_CUSTOMER,
     SDK_KEY,
     {"GET", "", "/v1/resource", NULL, 0, SDK_DATE, SDK_NONCE},
     "TSA " SDK_CUSTOMER ":aUm7I+9GKl3ww7PNeeJntCT0iS7b+EmRKEE4LnRzChQ="},
    /* A NULL content type means the empty string. */
    {"SDK GET, NULL content type",
     SDK_CUSTOMER,
     SDK_KEY,
     {"GET", NULL, "/v1/resource", NULL, 0, SDK_DATE, SDK_NONCE},
     "TSA " SDK_CUSTOMER ":aUm7I+9GKl3ww7PNeeJntCT0iS7b+EmRKEE4LnRzChQ="},
    /* Without a content type the body is not signed (Python/Java rule). */
    {"SDK GET, body ignored without content type",
     SDK_CUSTOMER,
     SDK_KEY,
     {"GET", "", "/v1/resource", BODY("ignored=1"), SDK_DATE, SDK_NONCE},
     "TSA " SDK_CUSTOMER ":aUm7I+9GKl3ww7PNeeJntCT0iS7b+EmRKEE4LnRzChQ="},
};

static void test_hmac_vectors(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(hmac_cases) / sizeof(hmac_cases[0]); i++) {
    const struct hmac_case *c = &hmac_cases[i];
    char out[TSAUTH_HEADER_SIZE];
    int rc;

    rc = tsauth_hmac_authorization(c->customer, c->key, &c->req, out,
                                   sizeof(out));
    if (rc != 0 || strcmp(out, c->expected) != 0) {
      print_error("case \"%s\": got %d \"%s\", want \"%s\"\n", c->name, rc,
                  out, c->expected);
      fail();
    }
  }
}

/* A key made once signs every vector as the one-shot function does, and
 * signing leaves it intact for the next request (twice each). */
static void test_hmac_vectors_with_key(void **state)
{
  (void)state;
  for (size_t i = 0; i < sizeof(hmac_cases) / sizeof(hmac_cases[0]); i++) {
    const struct hmac_case *c = &hmac_cases[i];
    struct tsauth_key *key;
    char out[TSAUTH_HEADER_SIZE];

    assert_int_equal(tsauth_key_create(c->key, &key), VS_OK);
    for (int round = 0; round < 2; round++) {
      assert_int_equal(tsauth_key_authorization(key, c->customer, &c->req, out,
                                                sizeof(out)),
                       VS_OK);
      assert_string_equal(out, c->expected);
    }
    assert_int_equal(
        tsauth_key_authorization(NULL, c->customer, &c->req, out, sizeof(out)),
        VS_ERR_INVAL);
    assert_string_equal(out, "");
    tsauth_key_destroy(key);
  }
  /* A key that decodes to nothing is refused at creation. */
  {
    struct tsauth_key *key = (struct tsauth_key *)1;

    assert_int_equal(tsauth_key_create("====", &key), VS_ERR_INVAL);
    assert_null(key);
    assert_int_equal(tsauth_key_create(NULL, &key), VS_ERR_INVAL);
  }
}

static void test_hmac_output_size(void **state)
{
  const struct hmac_case *c = &hmac_cases[0];
  size_t need = strlen(c->expected) + 1;
  char out[TSAUTH_HEADER_SIZE];

  (void)state;
  assert_int_equal(
      tsauth_hmac_authorization(c->customer, c->key, &c->req, out, need), 0);
  assert_string_equal(out, c->expected);
  memset(out, 'x', sizeof(out));
  assert_int_equal(
      tsauth_hmac_authorization(c->customer, c->key, &c->req, out, need - 1),
      VS_ERR_LIMIT);
  assert_string_equal(out, "");
  assert_int_equal(
      tsauth_hmac_authorization(c->customer, c->key, &c->req, out, 0),
      VS_ERR_LIMIT);
  assert_int_equal(
      tsauth_hmac_authorization(c->customer, c->key, &c->req, NULL, 100),
      VS_ERR_LIMIT);
}

/* Each case changes one field of the worked example to something bad. */
struct bad_case {
  const char *name;
  const char *customer;
  const char *key;
  const char *method;
  const char *resource;
  const char *date;
  const char *nonce;
  const char *content_type;
  int expected;
};

static const struct bad_case bad_cases[] = {
    {"NULL customer", NULL, EX_KEY, "POST", "/r", EX_DATE, EX_NONCE, FORM,
     VS_ERR_INVAL},
    {"empty customer", "", EX_KEY, "POST", "/r", EX_DATE, EX_NONCE, FORM,
     VS_ERR_INVAL},
    {"customer with colon", "a:b", EX_KEY, "POST", "/r", EX_DATE, EX_NONCE,
     FORM, VS_ERR_INVAL},
    {"customer with CRLF", "a\r\nX-Evil: 1", EX_KEY, "POST", "/r", EX_DATE,
     EX_NONCE, FORM, VS_ERR_INVAL},
    {"NULL key", EX_CUSTOMER, NULL, "POST", "/r", EX_DATE, EX_NONCE, FORM,
     VS_ERR_INVAL},
    {"empty key", EX_CUSTOMER, "", "POST", "/r", EX_DATE, EX_NONCE, FORM,
     VS_ERR_INVAL},
    {"key decoding to nothing", EX_CUSTOMER, "----", "POST", "/r", EX_DATE,
     EX_NONCE, FORM, VS_ERR_INVAL},
    {"key with bad padding", EX_CUSTOMER, "QUI", "POST", "/r", EX_DATE,
     EX_NONCE, FORM, VS_ERR_INVAL},
    {"NULL method", EX_CUSTOMER, EX_KEY, NULL, "/r", EX_DATE, EX_NONCE, FORM,
     VS_ERR_INVAL},
    {"empty method", EX_CUSTOMER, EX_KEY, "", "/r", EX_DATE, EX_NONCE, FORM,
     VS_ERR_INVAL},
    {"resource without slash", EX_CUSTOMER, EX_KEY, "POST", "v1/score",
     EX_DATE, EX_NONCE, FORM, VS_ERR_INVAL},
    {"resource with LF", EX_CUSTOMER, EX_KEY, "POST", "/a\nb", EX_DATE,
     EX_NONCE, FORM, VS_ERR_INVAL},
    {"NULL date", EX_CUSTOMER, EX_KEY, "POST", "/r", NULL, EX_NONCE, FORM,
     VS_ERR_INVAL},
    {"empty nonce", EX_CUSTOMER, EX_KEY, "POST", "/r", EX_DATE, "", FORM,
     VS_ERR_INVAL},
    {"content type with CR", EX_CUSTOMER, EX_KEY, "POST", "/r", EX_DATE,
     EX_NONCE, "text/plain\r", VS_ERR_INVAL},
};

static void test_hmac_bad_input(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
    const struct bad_case *c = &bad_cases[i];
    struct tsauth_request r = {c->method, c->content_type, c->resource, "a=b",
                               3,         c->date,         c->nonce};
    char out[TSAUTH_HEADER_SIZE] = "junk";
    int rc;

    rc = tsauth_hmac_authorization(c->customer, c->key, &r, out, sizeof(out));
    if (rc != c->expected || out[0] != '\0') {
      print_error("case \"%s\": got %d, want %d\n", c->name, rc, c->expected);
      fail();
    }
  }
  {
    char out[TSAUTH_HEADER_SIZE];
    struct tsauth_request r = {"POST", FORM, "/r", NULL, 3, EX_DATE, EX_NONCE};

    /* A length without a body is a caller bug, not a crash. */
    assert_int_equal(
        tsauth_hmac_authorization(EX_CUSTOMER, EX_KEY, &r, out, sizeof(out)),
        VS_ERR_INVAL);
    assert_int_equal(
        tsauth_hmac_authorization(EX_CUSTOMER, EX_KEY, NULL, out, sizeof(out)),
        VS_ERR_INVAL);
  }
}

static void test_hmac_limits(void **state)
{
  static char body[TSAUTH_MAX_BODY + 1];
  char customer[TSAUTH_MAX_CUSTOMER_ID + 2];
  char key[TSAUTH_MAX_API_KEY + 2];
  char out[TSAUTH_HEADER_SIZE];
  struct tsauth_request r = {"POST",           FORM,    "/v1/resource", body,
                             sizeof(body) - 1, EX_DATE, EX_NONCE};

  (void)state;
  memset(body, 'a', sizeof(body));
  /* The largest body signs; one byte more is refused. */
  assert_int_equal(
      tsauth_hmac_authorization(EX_CUSTOMER, EX_KEY, &r, out, sizeof(out)), 0);
  r.body_len = sizeof(body);
  assert_int_equal(
      tsauth_hmac_authorization(EX_CUSTOMER, EX_KEY, &r, out, sizeof(out)),
      VS_ERR_LIMIT);
  r.body_len = 3;

  /* The longest customer id fits TSAUTH_HEADER_SIZE; a longer one is out. */
  memset(customer, 'C', sizeof(customer));
  customer[TSAUTH_MAX_CUSTOMER_ID] = '\0';
  assert_int_equal(
      tsauth_hmac_authorization(customer, EX_KEY, &r, out, sizeof(out)), 0);
  assert_int_equal(strlen(out), 4 + TSAUTH_MAX_CUSTOMER_ID + 1 + 44);
  customer[TSAUTH_MAX_CUSTOMER_ID] = 'C';
  customer[TSAUTH_MAX_CUSTOMER_ID + 1] = '\0';
  assert_int_equal(
      tsauth_hmac_authorization(customer, EX_KEY, &r, out, sizeof(out)),
      VS_ERR_LIMIT);

  /* Likewise for the key, in Basic where it is copied verbatim. */
  customer[TSAUTH_MAX_CUSTOMER_ID] = '\0';
  memset(key, 'K', sizeof(key));
  key[TSAUTH_MAX_API_KEY] = '\0';
  assert_int_equal(tsauth_basic_authorization(customer, key, out, sizeof(out)),
                   0);
  assert_true(strlen(out) < TSAUTH_HEADER_SIZE);
  assert_int_equal(
      tsauth_hmac_authorization(customer, key, &r, out, sizeof(out)), 0);
  key[TSAUTH_MAX_API_KEY] = 'K';
  key[TSAUTH_MAX_API_KEY + 1] = '\0';
  assert_int_equal(tsauth_basic_authorization(customer, key, out, sizeof(out)),
                   VS_ERR_LIMIT);
  assert_int_equal(
      tsauth_hmac_authorization(customer, key, &r, out, sizeof(out)),
      VS_ERR_LIMIT);
}

struct basic_case {
  const char *customer;
  const char *key;
  const char *expected;
};

static const struct basic_case basic_cases[] = {
    {SDK_CUSTOMER, SDK_KEY,
     "Basic "
     "RkZGRkZGRkYtRUVFRS1ERERELTEyMzQtQUIxMjM0NTY3ODkwOkVYQU1QTEUtLS0tVEU4c1"
     "RnZzQ1eXVzdW1vTjZCWXNCVmtoK3lSSjVjemdzbkNlaFphT1lsZFBKZG1GaDZOZVg4a3Vu"
     "WjJ6VTFZV2FVdy8wd1Y2eGZ3PT0="},
    {EX_CUSTOMER, EX_KEY,
     "Basic "
     "MEExQjJDM0QtNEU1Ri02QTdCLThDOUQtMEUxRjJBM0I0QzVEOkFBRUNBd1FGQmdjSUNRb0"
     "xEQTBPRHhBUkVoTVVGUllYR0JrYUd4d2RIaDg9"},
};

static void test_basic(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(basic_cases) / sizeof(basic_cases[0]); i++) {
    const struct basic_case *c = &basic_cases[i];
    size_t need = strlen(c->expected) + 1;
    char out[TSAUTH_HEADER_SIZE];

    assert_int_equal(
        tsauth_basic_authorization(c->customer, c->key, out, sizeof(out)), 0);
    assert_string_equal(out, c->expected);
    assert_int_equal(
        tsauth_basic_authorization(c->customer, c->key, out, need), 0);
    assert_string_equal(out, c->expected);
    assert_int_equal(
        tsauth_basic_authorization(c->customer, c->key, out, need - 1),
        VS_ERR_LIMIT);
    assert_string_equal(out, "");
  }
  {
    char out[TSAUTH_HEADER_SIZE];

    assert_int_equal(tsauth_basic_authorization(NULL, EX_KEY, out, 100),
                     VS_ERR_INVAL);
    assert_int_equal(tsauth_basic_authorization("a:b", EX_KEY, out, 100),
                     VS_ERR_INVAL);
    assert_int_equal(tsauth_basic_authorization(EX_CUSTOMER, "", out, 100),
                     VS_ERR_INVAL);
    assert_int_equal(
        tsauth_basic_authorization(EX_CUSTOMER, "k\r\n", out, 100),
        VS_ERR_INVAL);
    assert_int_equal(tsauth_basic_authorization(EX_CUSTOMER, EX_KEY, NULL, 0),
                     VS_ERR_LIMIT);
  }
}

struct callback_case {
  const char *key;
  const char *body;
  const char *expected;
};

static const struct callback_case callback_cases[] = {
    {EX_KEY,
     "{\"event\":\"incoming_call\",\"reference_id\":"
     "\"0123456789ABCDEF0123456789ABCDEF\",\"data\":{\"to\":\"15555550100\","
     "\"from\":\"15555550123\"}}",
     "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY="},
    {SDK_KEY, "{'test': 123}", "B97g3N9lPdVaptvifxRau7bzVAC5hhRBZ6HKXABN744="},
};

static void test_callback_signature(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(callback_cases) / sizeof(callback_cases[0]); i++) {
    const struct callback_case *c = &callback_cases[i];
    char out[TSAUTH_SIGNATURE_SIZE];
    char header[TSAUTH_HEADER_SIZE];

    assert_int_equal(tsauth_callback_signature(
                         c->key, c->body, strlen(c->body), out, sizeof(out)),
                     0);
    assert_string_equal(out, c->expected);
    assert_true(tsauth_equal_constant_time(out, c->expected));
    if (i == 0) {
      /* The worked example also gives the whole header TeleSign sends. */
      snprintf(header, sizeof(header), "TSA %s:%s", EX_CUSTOMER, out);
      assert_string_equal(header,
                          "TSA " EX_CUSTOMER
                          ":bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=");
    }
    assert_int_equal(tsauth_callback_signature(c->key, c->body,
                                               strlen(c->body), out,
                                               sizeof(out) - 1),
                     VS_ERR_LIMIT);
    assert_string_equal(out, "");
  }
  {
    char out[TSAUTH_SIGNATURE_SIZE];

    /* An empty body is signable; a NULL one with a length is not. */
    assert_int_equal(
        tsauth_callback_signature(EX_KEY, NULL, 0, out, sizeof(out)), 0);
    assert_int_equal(strlen(out), 44);
    assert_int_equal(
        tsauth_callback_signature(EX_KEY, NULL, 1, out, sizeof(out)),
        VS_ERR_INVAL);
    assert_int_equal(tsauth_callback_signature(NULL, "x", 1, out, sizeof(out)),
                     VS_ERR_INVAL);
    assert_int_equal(tsauth_callback_signature("QQ", "x", 1, out, sizeof(out)),
                     VS_ERR_INVAL);
  }
}

struct date_case {
  time_t t;
  const char *expected;
};

static const struct date_case date_cases[] = {
    {1736175845, "Mon, 06 Jan 2025 15:04:05 GMT"},
    {1481739612, "Wed, 14 Dec 2016 18:20:12 GMT"},
    {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
    {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
    {1735689599, "Tue, 31 Dec 2024 23:59:59 GMT"},
    {1719792000, "Mon, 01 Jul 2024 00:00:00 GMT"},
    {1730419200, "Fri, 01 Nov 2024 00:00:00 GMT"},
    {1725667200, "Sat, 07 Sep 2024 00:00:00 GMT"},
    {1725753600, "Sun, 08 Sep 2024 00:00:00 GMT"},
};

static void test_date(void **state)
{
  char out[TSAUTH_DATE_SIZE];
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(date_cases) / sizeof(date_cases[0]); i++) {
    assert_int_equal(tsauth_date_from_time(date_cases[i].t, out, sizeof(out)),
                     0);
    assert_string_equal(out, date_cases[i].expected);
  }
  assert_int_equal(tsauth_date_from_time(0, out, sizeof(out) - 1),
                   VS_ERR_LIMIT);
  assert_string_equal(out, "");
  assert_int_equal(tsauth_date_now(out, sizeof(out) - 1), VS_ERR_LIMIT);

  /* The shape of the current date: "Ddd, DD Mmm YYYY HH:MM:SS GMT". */
  assert_int_equal(tsauth_date_now(out, sizeof(out)), 0);
  assert_int_equal(strlen(out), TSAUTH_DATE_SIZE - 1);
  {
    const char *shape = "Aaa, 00 Aaa 0000 00:00:00 GMT";

    for (i = 0; shape[i]; i++) {
      char s = shape[i];
      char c = out[i];

      if (s == 'A')
        assert_true(c >= 'A' && c <= 'Z');
      else if (s == 'a')
        assert_true(c >= 'a' && c <= 'z');
      else if (s == '0')
        assert_true(c >= '0' && c <= '9');
      else
        assert_int_equal(c, s);
    }
  }
}

static int is_hex_lower(char c)
{
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_nonce(void **state)
{
  enum { COUNT = 64 };
  char seen[COUNT][TSAUTH_NONCE_SIZE];
  char small[TSAUTH_NONCE_SIZE - 1];
  size_t i;
  size_t j;

  (void)state;
  for (i = 0; i < COUNT; i++) {
    char *n = seen[i];

    assert_int_equal(tsauth_nonce(n, TSAUTH_NONCE_SIZE), 0);
    assert_int_equal(strlen(n), 36);
    for (j = 0; j < 36; j++) {
      if (j == 8 || j == 13 || j == 18 || j == 23)
        assert_int_equal(n[j], '-');
      else
        assert_true(is_hex_lower(n[j]));
    }
    /* Version 4, RFC 4122 variant. */
    assert_int_equal(n[14], '4');
    assert_true(n[19] == '8' || n[19] == '9' || n[19] == 'a' || n[19] == 'b');
    for (j = 0; j < i; j++)
      assert_string_not_equal(seen[j], n);
  }
  assert_int_equal(tsauth_nonce(small, sizeof(small)), VS_ERR_LIMIT);
  assert_string_equal(small, "");
  assert_int_equal(tsauth_nonce(NULL, 0), VS_ERR_LIMIT);
}

struct equal_case {
  const char *a;
  const char *b;
  int expected;
};

static const struct equal_case equal_cases[] = {
    {"", "", 1},
    {"abc", "abc", 1},
    {"bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=",
     "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=", 1},
    {"abc", "abd", 0},
    {"abc", "xbc", 0},
    {"abc", "ab", 0},
    {"ab", "abc", 0},
    {"", "a", 0},
    {"a", "", 0},
    {"abc", "ABC", 0},
    {NULL, "a", 0},
    {"a", NULL, 0},
    {NULL, NULL, 0},
};

static void test_equal_constant_time(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(equal_cases) / sizeof(equal_cases[0]); i++)
    assert_int_equal(
        tsauth_equal_constant_time(equal_cases[i].a, equal_cases[i].b),
        equal_cases[i].expected);
}

/*
 * Bodies on both sides of the 1 KiB that signing gathers before hashing:
 * every length must sign as one HMAC over the whole body does, computed
 * here by GnuTLS in one call from the key's raw bytes.
 */
static void test_signature_any_length(void **state)
{
  static const char key_b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  static const size_t lengths[] = {0, 1, 1023, 1024, 1025, 2048, 5000};
  static char body[5000];
  unsigned char raw[32];
  size_t rawlen = 0;
  struct tsauth_key *key;

  (void)state;
  for (size_t i = 0; i < sizeof(body); i++)
    body[i] = (char)('a' + i % 26);
  assert_int_equal(base64_decode_lenient(key_b64, strlen(key_b64), raw,
                                         sizeof(raw), &rawlen),
                   0);
  assert_int_equal(tsauth_key_create(key_b64, &key), VS_OK);
  for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
    unsigned char digest[32];
    char want[TSAUTH_SIGNATURE_SIZE];
    char got[TSAUTH_SIGNATURE_SIZE];

    assert_int_equal(gnutls_hmac_fast(GNUTLS_MAC_SHA256, raw, rawlen, body,
                                      lengths[i], digest),
                     0);
    assert_true(base64_encode(digest, sizeof(digest), want, sizeof(want)) > 0);
    assert_int_equal(
        tsauth_key_callback_signature(key, body, lengths[i], got, sizeof(got)),
        VS_OK);
    if (strcmp(got, want) != 0)
      fail_msg("length %zu: got %s, want %s", lengths[i], got, want);
  }
  tsauth_key_destroy(key);
}

/* tsauth_callback_verify, on the reference's worked example (section 2). */
static void test_callback_verify(void **state)
{
  static const char cid[] = "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D";
  static const char key[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  static const char body[] =
      "{\"event\":\"incoming_call\",\"reference_id\":"
      "\"0123456789ABCDEF0123456789ABCDEF\",\"data\":{\"to\":\"15555550100\","
      "\"from\":\"15555550123\"}}";
  static const char sig[] = "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=";
  static const struct {
    const char *authorization;
    const char *x_ts;
    int rc;
  } cases[] = {
      {"TSA 0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D:"
       "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=",
       NULL, VS_OK},
      {"tsa 0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D:"
       "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=",
       NULL, VS_OK},
      {NULL, "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=", VS_OK},
      {"", "TSA x:bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=", VS_OK},
      {NULL, NULL, VS_ERR_NOTFOUND},
      {"", "", VS_ERR_NOTFOUND},
      {"Basic dXNlcjpwYXNz", NULL, VS_ERR_PROTO},
      {"TSA no-colon", NULL, VS_ERR_PROTO},
      {"TSA someone-else:"
       "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBY=",
       NULL, VS_ERR_INVAL},
      {"TSA 0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D:"
       "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DBZ=",
       NULL, VS_ERR_INVAL},
      {NULL, "bU7IjfjzF12NxO23vkDOhEADI3lxtGWPDb37TR16DB", VS_ERR_INVAL},
  };
  struct tsauth_key *k;
  char why[96];

  (void)state;
  assert_int_equal(tsauth_key_create(key, &k), VS_OK);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int rc;

    why[0] = '\0'; /* a success writes no reason */
    rc = tsauth_callback_verify(cid, k, cases[i].authorization, cases[i].x_ts,
                                body, strlen(body), why, sizeof(why));

    if (rc != cases[i].rc)
      fail_msg("case %zu: got %d (%s), want %d", i, rc, why, cases[i].rc);
    assert_null(strstr(why, key)); /* never the secret */
  }
  /* One byte of the body changed: no longer the signed body. */
  assert_int_equal(tsauth_callback_verify(cid, k, NULL, sig, body,
                                          strlen(body) - 1, why, sizeof(why)),
                   VS_ERR_INVAL);
  /* The key signs any number of bodies: the first check left it intact. */
  assert_int_equal(tsauth_callback_verify(cid, k, NULL, sig, body,
                                          strlen(body), why, sizeof(why)),
                   VS_OK);
  tsauth_key_destroy(k);
  /* Without a key nothing verifies. */
  assert_int_equal(tsauth_callback_verify(cid, NULL, NULL, sig, body,
                                          strlen(body), why, sizeof(why)),
                   VS_ERR_INVAL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hmac_vectors),
      cmocka_unit_test(test_hmac_vectors_with_key),
      cmocka_unit_test(test_signature_any_length),
      cmocka_unit_test(test_hmac_output_size),
      cmocka_unit_test(test_hmac_bad_input),
      cmocka_unit_test(test_hmac_limits),
      cmocka_unit_test(test_basic),
      cmocka_unit_test(test_callback_signature),
      cmocka_unit_test(test_date),
      cmocka_unit_test(test_nonce),
      cmocka_unit_test(test_equal_constant_time),
      cmocka_unit_test(test_callback_verify),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
