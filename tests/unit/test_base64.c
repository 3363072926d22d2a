/*
 * Unit tests for util/base64: RFC 4648 encoding vectors, round trips over
 * every short length, buffer limits, and a table of lenient-decoding cases
 * whose expected results were produced by Python 3.11's base64.b64decode
 * (validate=False), the behaviour TeleSign's SDKs rely on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../src/util/base64.h"
#include "../../src/util/err.h"

struct enc_case {
  const char *in;
  const char *out;
};

static const struct enc_case enc_cases[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    {"\xff\xfe\xfd", "//79"},
    {"\xfb\xef\xbe", "++++"},
};

static void test_encode_vectors(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(enc_cases) / sizeof(enc_cases[0]); i++) {
    char out[64];
    size_t n = strlen(enc_cases[i].in);
    int rc = base64_encode(enc_cases[i].in, n, out, sizeof(out));

    assert_int_equal(rc, (int)strlen(enc_cases[i].out));
    assert_string_equal(out, enc_cases[i].out);
    assert_int_equal(BASE64_ENCODED_SIZE(n), strlen(enc_cases[i].out) + 1);
  }
}

static void test_encode_limits(void **state)
{
  char out[9];
  int rc;

  (void)state;
  /* "foobar" needs exactly 9 bytes with the terminator. */
  rc = base64_encode("foobar", 6, out, 9);
  assert_int_equal(rc, 8);
  assert_string_equal(out, "Zm9vYmFy");
  memset(out, 'x', sizeof(out));
  rc = base64_encode("foobar", 6, out, 8);
  assert_int_equal(rc, VS_ERR_LIMIT);
  assert_string_equal(out, "");
  assert_int_equal(base64_encode("", 0, out, 0), VS_ERR_LIMIT);
  assert_int_equal(base64_encode("", 0, NULL, 4), VS_ERR_LIMIT);
  assert_int_equal(base64_encode(NULL, 0, out, 1), 0);
  assert_string_equal(out, "");
  assert_int_equal(base64_encode(NULL, 3, out, sizeof(out)), VS_ERR_INVAL);
}

static void test_round_trip(void **state)
{
  unsigned char in[96];
  unsigned char back[96];
  char enc[BASE64_ENCODED_SIZE(96)];
  size_t n;
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(in); i++)
    in[i] = (unsigned char)(i * 37 + 11);
  for (n = 0; n <= sizeof(in); n++) {
    size_t outlen = 99;
    int rc = base64_encode(in, n, enc, sizeof(enc));

    assert_true(rc >= 0);
    assert_int_equal((size_t)rc + 1, BASE64_ENCODED_SIZE(n));
    rc = base64_decode_lenient(enc, strlen(enc), back, sizeof(back), &outlen);
    assert_int_equal(rc, 0);
    assert_int_equal(outlen, n);
    assert_true(BASE64_DECODED_MAX(strlen(enc)) >= n);
    if (n)
      assert_memory_equal(back, in, n);
  }
}

/* `out` is the expected bytes in hex, or NULL when decoding must fail. */
struct dec_case {
  const char *in;
  size_t inlen; /* 0 means strlen(in) */
  const char *out;
};

static const struct dec_case dec_cases[] = {
    {"", 0, ""},
    {"QQ==", 0, "41"},
    {"QUI=", 0, "4142"},
    {"QUJD", 0, "414243"},
    {"QQ=", 0, NULL},   /* "Incorrect padding" */
    {"QQ", 0, NULL},    /* missing padding */
    {"QUI", 0, NULL},   /* missing padding */
    {"Q", 0, NULL},     /* one char more than a multiple of 4 */
    {"QUJDQ", 0, NULL}, /* likewise */
    {"Q===", 0, NULL},  /* '=' after one char does not count */
    {"QUJDQQ", 0, NULL},
    {"====", 0, ""},
    {"=QUJD", 0, "414243"},       /* leading '=' skipped */
    {"QUJD=", 0, "414243"},       /* '=' after a full quantum skipped */
    {"QU=JD", 0, "414243"},       /* a lone '=' mid-quantum skipped */
    {"Q=Q==", 0, "41"},           /* '=' after one char skipped */
    {"QQ===", 0, "41"},           /* stops at the second '=' */
    {"QUI==", 0, "4142"},         /* stops at the first '=' */
    {"QQ==QUJD", 0, "41"},        /* data after padding ignored */
    {"QUI=QUJD", 0, "4142"},      /* likewise */
    {"QQ=x=", 0, "410c"},         /* padding resumes after data */
    {"QQ=QQQQ=", 0, NULL},        /* data resets the '=' count */
    {"QQ=QQQQ==", 0, "41041041"}, /* so two more '=' are needed */
    {"Q-Q-=-=", 0, "41"},         /* '-' skipped, even between '=' */
    {"Q\nQ==", 0, "41"},          /* new lines skipped */
    {" Q U J D ", 0, "414243"},   /* spaces skipped */
    {"QQ=\0=", 5, "41"},          /* NUL skipped with an explicit length */
    {"Q\0Q==", 5, "41"},
    {"-_~!", 0, ""}, /* URL-safe characters are not data */
    {"EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8kunZ2"
     "zU1YWaUw/0wV6xfw==",
     0,
     "11700c3cb11313cb13820e39caeb2e9a837a058b0156487ec9127973382c9c27a165a3"
     "9895d3c9766161e8d797f24ba7676cd4d5859a530ff4c15eb17f"},
    {"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 0,
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
};

static void to_hex(const unsigned char *p, size_t n, char *out)
{
  static const char hex[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < n; i++) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 0x0f];
  }
  out[2 * n] = '\0';
}

static void test_decode_table(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(dec_cases) / sizeof(dec_cases[0]); i++) {
    const struct dec_case *c = &dec_cases[i];
    size_t inlen = c->inlen ? c->inlen : strlen(c->in);
    unsigned char out[128];
    char hex[2 * sizeof(out) + 1];
    size_t outlen = 12345;
    int rc = base64_decode_lenient(c->in, inlen, out, sizeof(out), &outlen);

    /* Failures are compared as the word ERR so one check covers both. */
    if (rc == 0)
      to_hex(out, outlen, hex);
    else
      strcpy(hex, rc == VS_ERR_INVAL ? "ERR" : "OTHER");
    if (strcmp(hex, c->out ? c->out : "ERR") != 0 || (rc && outlen != 0) ||
        outlen > BASE64_DECODED_MAX(inlen)) {
      print_error("case %zu: \"%s\": got %s, want %s\n", i, c->in, hex,
                  c->out ? c->out : "ERR");
      fail();
    }
  }
}

static void test_decode_limits(void **state)
{
  unsigned char out[3];
  size_t outlen = 7;

  (void)state;
  assert_int_equal(base64_decode_lenient("QUJD", 4, out, 3, &outlen), 0);
  assert_int_equal(outlen, 3);
  outlen = 7;
  assert_int_equal(base64_decode_lenient("QUJD", 4, out, 2, &outlen),
                   VS_ERR_LIMIT);
  assert_int_equal(outlen, 0);
  assert_int_equal(base64_decode_lenient("QUJDQQ==", 8, out, 3, &outlen),
                   VS_ERR_LIMIT);
  assert_int_equal(base64_decode_lenient("QQ==", 4, out, 0, &outlen),
                   VS_ERR_LIMIT);
  assert_int_equal(base64_decode_lenient("", 0, NULL, 0, &outlen), 0);
  assert_int_equal(outlen, 0);
  assert_int_equal(base64_decode_lenient(NULL, 4, out, 3, &outlen),
                   VS_ERR_INVAL);
  assert_int_equal(base64_decode_lenient("QUJD", 4, out, 3, NULL),
                   VS_ERR_INVAL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_vectors),
      cmocka_unit_test(test_encode_limits),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_decode_table),
      cmocka_unit_test(test_decode_limits),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
