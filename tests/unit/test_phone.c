/*
 * Unit tests for screen/phone: one table row per rule of phone_normalise
 * (see phone.h), every result at least once, and a pass that feeds each
 * successful output back in to check that it normalises to itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../../src/screen/phone.h"

struct phone_case {
  const char *raw;
  const char *cc; /* default country, NULL for the NANP default */
  enum phone_result result;
  const char *out; /* expected output when result is PHONE_OK */
};

/* 65 digits: one byte over the input ceiling. */
#define LONG65                                                                \
  "12345678901234567890123456789012345678901234567890123456789012345"

/* 64 bytes: at the ceiling, mostly spaces, so it is scanned. */
#define SPACED64                                                              \
  "                                                    15555550123 "

static const struct phone_case cases[] = {
    /* Empty and blank. */
    {NULL, NULL, PHONE_EMPTY, ""},
    {"", NULL, PHONE_EMPTY, ""},
    {"   ", NULL, PHONE_EMPTY, ""},
    {" \t\r\n ", "44", PHONE_EMPTY, ""},
    {"+", NULL, PHONE_EMPTY, ""},
    {"( ) - .", NULL, PHONE_EMPTY, ""},
    /* Withheld-number markers, any case, surrounding space trimmed. */
    {"anonymous", NULL, PHONE_ANONYMOUS, ""},
    {"Anonymous", NULL, PHONE_ANONYMOUS, ""},
    {"  RESTRICTED ", NULL, PHONE_ANONYMOUS, ""},
    {"private", "44", PHONE_ANONYMOUS, ""},
    {"Unknown", NULL, PHONE_ANONYMOUS, ""},
    {"unavailable", NULL, PHONE_ANONYMOUS, ""},
    {"\tWithheld\n", NULL, PHONE_ANONYMOUS, ""},
    {"anonymous caller", NULL, PHONE_INVALID, ""},
    {"anon", NULL, PHONE_INVALID, ""},
    /* Separators are dropped; anything else is invalid. */
    {"15555550123", NULL, PHONE_OK, "15555550123"},
    {"+1 (555) 555-0123", NULL, PHONE_OK, "15555550123"},
    {"1.555.555.0123", NULL, PHONE_OK, "15555550123"},
    /* A '+' after the first digit is dropped but does not count. */
    {"1+555 555 0123", NULL, PHONE_OK, "15555550123"},
    {"5+555550123", NULL, PHONE_OK, "15555550123"},
    {"\t+1\t555 5550123\t", NULL, PHONE_OK, "15555550123"},
    {"+44 20 7946 0000", NULL, PHONE_OK, "442079460000"},
    {"1555555O123", NULL, PHONE_INVALID, ""},
    {"555-0123 ext 4", NULL, PHONE_INVALID, ""},
    {"+1/555/555/0123", NULL, PHONE_INVALID, ""},
    {"sip:15555550123@example.com", NULL, PHONE_INVALID, ""},
    {"1555\n5550123", NULL, PHONE_INVALID, ""},
    {"\xef\xbc\x91\x35\x35\x35", NULL, PHONE_INVALID, ""},
    /* Over 64 bytes is refused before scanning, even if it is junk. */
    {LONG65, NULL, PHONE_TOO_LONG, ""},
    {LONG65 "x", NULL, PHONE_TOO_LONG, ""},
    {SPACED64, NULL, PHONE_OK, "15555550123"},
    /* International prefixes, only without '+'. */
    {"011 44 20 7946 0000", NULL, PHONE_OK, "442079460000"},
    {"0044 20 7946 0000", NULL, PHONE_OK, "442079460000"},
    {"00 44 20 7946 0000", "44", PHONE_OK, "442079460000"},
    {"011 1 555 555 0123", NULL, PHONE_OK, "15555550123"},
    {"+0044 20 7946 0000", NULL, PHONE_INVALID, ""},
    /* With a non-NANP default, 011 is a national number (Sheffield). */
    {"0114 496 0000", "44", PHONE_OK, "441144960000"},
    /* NANP: ten digits starting 2-9 gain the country code. */
    {"5555550123", NULL, PHONE_OK, "15555550123"},
    {"(212) 555-0123", "1", PHONE_OK, "12125550123"},
    {"2125550123", NULL, PHONE_OK, "12125550123"},
    {"1234567890", NULL, PHONE_OK, "1234567890"},
    {"0125550123", NULL, PHONE_INVALID, ""},
    /* ... but not when written with '+' or a prefix: ambiguous. */
    {"+2125550123", NULL, PHONE_INVALID, ""},
    {"011 49 30 123456", NULL, PHONE_INVALID, ""},
    {"+2125550123", "44", PHONE_OK, "2125550123"},
    {"+49 30 1234567", NULL, PHONE_OK, "49301234567"},
    /* Other defaults: a single trunk '0' becomes the country code. */
    {"020 7946 0000", "44", PHONE_OK, "442079460000"},
    {"07700 900123", "44", PHONE_OK, "447700900123"},
    {"030 1234567", "49", PHONE_OK, "49301234567"},
    {"0612345678", "33", PHONE_OK, "33612345678"},
    {"02 9374 4000", "61", PHONE_OK, "61293744000"},
    {"5555550123", "44", PHONE_OK, "5555550123"},
    {"020 7946 0000", NULL, PHONE_INVALID, ""},
    {"000 1234 5678", "44", PHONE_INVALID, ""},
    {"00011234567890", NULL, PHONE_INVALID, ""},
    /*
     * Country code 1 with eleven digits is a NANP number, whatever the
     * default: area code and exchange must start 2-9. No earlier row
     * conflicts (every one of them has a 2-9 area code and exchange);
     * ten digits after a leading 1, or twelve and more, are not NANP
     * shapes and keep the rules above ("1234567890", "123456789012345").
     */
    {"+1 111 555 1234", NULL, PHONE_INVALID, ""},
    {"1 212 155 1234", NULL, PHONE_INVALID, ""},
    {"+1 012 555 1234", NULL, PHONE_INVALID, ""},
    {"+1 212 055 1234", "44", PHONE_INVALID, ""},
    {"2121551234", NULL, PHONE_INVALID, ""},
    {"011 1 111 555 1234", NULL, PHONE_INVALID, ""},
    {"001 212 155 1234", "44", PHONE_INVALID, ""},
    {"1 555 1234567", NULL, PHONE_INVALID, ""},
    {"+1 200 200 0000", NULL, PHONE_OK, "12002000000"},
    {"+1 999 999 9999", "44", PHONE_OK, "19999999999"},
    {"1 212 255 1234", "49", PHONE_OK, "12122551234"},
    /* Length limits, counted after the rules above. */
    {"5550123", NULL, PHONE_TOO_SHORT, ""},
    {"1234567", "44", PHONE_TOO_SHORT, ""},
    {"+1234567", NULL, PHONE_TOO_SHORT, ""},
    {"00 1234567", "44", PHONE_TOO_SHORT, ""},
    {"012345", "44", PHONE_TOO_SHORT, ""},
    {"0123456", "44", PHONE_OK, "44123456"},
    {"12345678", NULL, PHONE_OK, "12345678"},
    {"123456789012345", NULL, PHONE_OK, "123456789012345"},
    {"1234567890123456", NULL, PHONE_TOO_LONG, ""},
    {"+1 234 567 890 123 456", "44", PHONE_TOO_LONG, ""},
    {"0 1234 5678 9012 3456", "44", PHONE_TOO_LONG, ""},
    {"0 2345 6789 0123 45", "999", PHONE_TOO_LONG, ""},
    {"0 2345 6789 0123", "999", PHONE_OK, "999234567890123"},
    /* An unusable default country fails every input. */
    {"15555550123", "", PHONE_INVALID, ""},
    {"15555550123", "0", PHONE_INVALID, ""},
    {"15555550123", "1234", PHONE_INVALID, ""},
    {"15555550123", "+1", PHONE_INVALID, ""},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void test_table(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < NCASES; i++) {
    const struct phone_case *c = &cases[i];
    char out[PHONE_BUF_SIZE];
    enum phone_result r;

    memset(out, 'x', sizeof(out));
    r = phone_normalise(c->raw, c->cc, out);
    if (r != c->result || strcmp(out, c->out) != 0) {
      print_error("case %zu: \"%s\" (%s): got %s \"%s\", want %s \"%s\"\n", i,
                  c->raw ? c->raw : "(null)", c->cc ? c->cc : "default",
                  phone_result_name(r), out, phone_result_name(c->result),
                  c->out);
      fail();
    }
  }
}

/* Every successful output, normalised again, must come back unchanged. */
static void test_idempotent(void **state)
{
  size_t i;
  size_t ok = 0;

  (void)state;
  for (i = 0; i < NCASES; i++) {
    const struct phone_case *c = &cases[i];
    char once[PHONE_BUF_SIZE];
    char twice[PHONE_BUF_SIZE];

    if (phone_normalise(c->raw, c->cc, once) != PHONE_OK)
      continue;
    ok++;
    assert_int_equal(phone_normalise(once, c->cc, twice), PHONE_OK);
    assert_string_equal(once, twice);
  }
  assert_true(ok >= 10);
}

/* The table must exercise every result at least once. */
static void test_every_result_covered(void **state)
{
  int seen[PHONE_TOO_LONG + 1] = {0};
  size_t i;
  int r;

  (void)state;
  for (i = 0; i < NCASES; i++)
    seen[cases[i].result]++;
  for (r = PHONE_OK; r <= PHONE_TOO_LONG; r++)
    assert_true(seen[r] > 0);
  assert_true(NCASES >= 30);
}

static void test_result_names(void **state)
{
  (void)state;
  assert_string_equal(phone_result_name(PHONE_OK), "ok");
  assert_string_equal(phone_result_name(PHONE_EMPTY), "empty");
  assert_string_equal(phone_result_name(PHONE_ANONYMOUS), "anonymous");
  assert_string_equal(phone_result_name(PHONE_INVALID), "invalid");
  assert_string_equal(phone_result_name(PHONE_TOO_SHORT), "too_short");
  assert_string_equal(phone_result_name(PHONE_TOO_LONG), "too_long");
  assert_string_equal(phone_result_name((enum phone_result)42),
                      "unknown_result");
}

static void test_country_code_valid(void **state)
{
  (void)state;
  assert_true(phone_country_code_valid("1"));
  assert_true(phone_country_code_valid("44"));
  assert_true(phone_country_code_valid("999"));
  assert_false(phone_country_code_valid(NULL));
  assert_false(phone_country_code_valid(""));
  assert_false(phone_country_code_valid("0"));
  assert_false(phone_country_code_valid("04"));
  assert_false(phone_country_code_valid("1234"));
  assert_false(phone_country_code_valid("4a"));
  assert_false(phone_country_code_valid("+1"));
}

/* The output buffer is never written past PHONE_MAX_DIGITS + 1 bytes. */
static void test_output_bounds(void **state)
{
  char out[PHONE_BUF_SIZE + 8];

  (void)state;
  memset(out, '#', sizeof(out));
  assert_int_equal(phone_normalise("123456789012345", NULL, out), PHONE_OK);
  assert_int_equal(strlen(out), PHONE_MAX_DIGITS);
  assert_int_equal(out[PHONE_BUF_SIZE - 1], '#');
  memset(out, '#', sizeof(out));
  assert_int_equal(phone_normalise(LONG65, NULL, out), PHONE_TOO_LONG);
  assert_int_equal(out[0], '\0');
  assert_int_equal(out[1], '#');
  assert_int_equal(phone_normalise("15555550123", NULL, NULL), PHONE_INVALID);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_idempotent),
      cmocka_unit_test(test_every_result_covered),
      cmocka_unit_test(test_result_names),
      cmocka_unit_test(test_country_code_valid),
      cmocka_unit_test(test_output_bounds),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
