/*
 * Unit tests for screen/lists: matching scenarios as tables (entries put,
 * then numbers matched in order, since a match may prune), replace and
 * remove, a 10,000-entry list, and tables for list_entry_normalise and
 * list_parse_duration.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../src/screen/lists.h"
#include "../../src/util/err.h"

#define ROWS 12

struct put_row {
  enum list_kind kind;
  const char *entry; /* NULL ends the rows */
  int64_t expires_ms;
};

struct match_row {
  enum list_kind kind;
  const char *number; /* NULL ends the rows */
  int64_t now_ms;
  const char *want; /* the entry that must match, NULL for none */
};

struct scenario {
  const char *name;
  struct put_row puts[ROWS];
  struct match_row matches[ROWS];
  size_t count_after; /* numlist_count once the matches have run */
};

static const struct scenario scenarios[] = {
    {"an exact entry beats every prefix",
     {{LIST_BLOCK, "15555550123", 0},
      {LIST_BLOCK, "1555555012*", 0},
      {LIST_BLOCK, "1555*", 0},
      {LIST_BLOCK, "1*", 0}},
     {{LIST_BLOCK, "15555550123", 1, "15555550123"},
      {LIST_BLOCK, "15555550124", 1, "1555555012*"},
      {LIST_BLOCK, "15555559999", 1, "1555*"},
      {LIST_BLOCK, "14155550000", 1, "1*"},
      {LIST_BLOCK, "442079460000", 1, NULL}},
     4},
    {"the longest prefix wins, whatever the order of puts",
     {{LIST_ALLOW, "1*", 0},
      {LIST_ALLOW, "1555555*", 0},
      {LIST_ALLOW, "155*", 0},
      {LIST_ALLOW, "1555555012*", 0},
      {LIST_ALLOW, "1555*", 0},
      {LIST_ALLOW, "15*", 0}},
     {{LIST_ALLOW, "15555550123", 1, "1555555012*"},
      {LIST_ALLOW, "15555551234", 1, "1555555*"},
      {LIST_ALLOW, "15550000000", 1, "1555*"},
      {LIST_ALLOW, "15590000000", 1, "155*"},
      {LIST_ALLOW, "15000000000", 1, "15*"},
      {LIST_ALLOW, "19999999999", 1, "1*"},
      {LIST_ALLOW, "29999999999", 1, NULL}},
     6},
    {"allow and block are independent",
     {{LIST_ALLOW, "15555550123", 0},
      {LIST_BLOCK, "1555*", 0},
      {LIST_BLOCK, "15555550199", 0}},
     {{LIST_ALLOW, "15555550123", 1, "15555550123"},
      {LIST_BLOCK, "15555550123", 1, "1555*"},
      {LIST_ALLOW, "15555550199", 1, NULL},
      {LIST_BLOCK, "15555550199", 1, "15555550199"},
      {LIST_ALLOW, "15550000000", 1, NULL},
      {LIST_BLOCK, "14155550000", 1, NULL}},
     3},
    {"expiry: at exactly now an entry is expired, and is pruned",
     {{LIST_BLOCK, "15555550123", 1000},
      {LIST_BLOCK, "1555*", 2000},
      {LIST_BLOCK, "1*", 0},
      {LIST_ALLOW, "15555550123", 1000}},
     {{LIST_BLOCK, "15555550123", 999, "15555550123"},
      {LIST_BLOCK, "15555550123", 1000, "1555*"},
      /* Pruned at 1000, so going back in time does not bring it back. */
      {LIST_BLOCK, "15555550123", 999, "1555*"},
      {LIST_BLOCK, "15555550123", 1999, "1555*"},
      {LIST_BLOCK, "15555550123", 2000, "1*"},
      /* expires_ms 0 means never, even at the end of time. */
      {LIST_BLOCK, "15555550123", INT64_MAX, "1*"},
      /* The allow entry was not met, so it is still counted. */
      {LIST_BLOCK, "19999999999", 1, "1*"}},
     2},
    {"an expired entry unmet is counted until pruned",
     {{LIST_ALLOW, "15555550123", 5}, {LIST_ALLOW, "1*", 5}},
     {{LIST_ALLOW, "15555550123", 4, "15555550123"},
      {LIST_ALLOW, "15555550124", 5, NULL}},
     1},
    {"prefixes stop one digit short of the number",
     {{LIST_BLOCK, "123456789012345*", 0},
      {LIST_BLOCK, "12345678*", 0},
      {LIST_BLOCK, "1234567890123*", 0},
      {LIST_BLOCK, "12345678901234*", 0}},
     {{LIST_BLOCK, "123456789012345", 1, "12345678901234*"},
      {LIST_BLOCK, "123456789012399", 1, "1234567890123*"},
      {LIST_BLOCK, "12345678", 1, NULL},
      {LIST_BLOCK, "123456789", 1, "12345678*"}},
     4},
    {"numbers that are not normalised never match",
     {{LIST_BLOCK, "1*", 0}, {LIST_BLOCK, "15555550123", 0}},
     {{LIST_BLOCK, "", 1, NULL},
      {LIST_BLOCK, "+15555550123", 1, NULL},
      {LIST_BLOCK, "1555555012a", 1, NULL},
      {LIST_BLOCK, "1555555 0123", 1, NULL},
      {LIST_BLOCK, "1234567890123456", 1, NULL},
      {LIST_BLOCK, "1*", 1, NULL},
      {LIST_BLOCK, "15555550123", 1, "15555550123"}},
     2},
};

#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static void put_entry(struct numlist *l, enum list_kind kind,
                      const char *entry, int64_t expires_ms, const char *note)
{
  struct list_entry e;

  memset(&e, 0, sizeof(e));
  e.kind = kind;
  snprintf(e.entry, sizeof(e.entry), "%s", entry);
  snprintf(e.note, sizeof(e.note), "%s", note);
  snprintf(e.source, sizeof(e.source), "cli");
  e.created_ms = 1;
  e.expires_ms = expires_ms;
  assert_int_equal(numlist_put(l, &e), 0);
}

static void test_scenarios(void **state)
{
  size_t i;
  size_t j;

  (void)state;
  for (i = 0; i < NSCENARIOS; i++) {
    const struct scenario *s = &scenarios[i];
    struct numlist *l = numlist_create();

    assert_non_null(l);
    for (j = 0; j < ROWS && s->puts[j].entry; j++)
      put_entry(l, s->puts[j].kind, s->puts[j].entry, s->puts[j].expires_ms,
                s->name);
    for (j = 0; j < ROWS && s->matches[j].number; j++) {
      const struct match_row *m = &s->matches[j];
      const struct list_entry *e =
          numlist_match(l, m->kind, m->number, m->now_ms);
      const char *got = e ? e->entry : NULL;

      if ((got == NULL) != (m->want == NULL) ||
          (got && strcmp(got, m->want) != 0)) {
        print_error("%s, row %zu: %s %s at %lld: got %s, want %s\n", s->name,
                    j, list_kind_name(m->kind), m->number,
                    (long long)m->now_ms, got ? got : "none",
                    m->want ? m->want : "none");
        fail();
      }
      if (e) {
        assert_int_equal(e->kind, m->kind);
        assert_string_equal(e->note, s->name);
      }
    }
    if (numlist_count(l) != s->count_after) {
      print_error("%s: count %zu, want %zu\n", s->name, numlist_count(l),
                  s->count_after);
      fail();
    }
    numlist_destroy(l);
  }
}

static void test_replace_and_remove(void **state)
{
  struct numlist *l = numlist_create();
  const struct list_entry *e;

  (void)state;
  assert_non_null(l);
  put_entry(l, LIST_BLOCK, "1555*", 0, "first");
  put_entry(l, LIST_BLOCK, "1555*", 5000, "second");
  assert_int_equal(numlist_count(l), 1);
  e = numlist_match(l, LIST_BLOCK, "15555550123", 10);
  assert_non_null(e);
  assert_string_equal(e->note, "second");
  assert_int_equal(e->expires_ms, 5000);

  /* The same digits as an exact entry, or in the other kind, are others. */
  put_entry(l, LIST_BLOCK, "1555", 0, "exact");
  put_entry(l, LIST_ALLOW, "1555*", 0, "allow");
  assert_int_equal(numlist_count(l), 3);

  assert_int_equal(numlist_remove(l, LIST_BLOCK, "15*"), VS_ERR_NOTFOUND);
  assert_int_equal(numlist_remove(l, LIST_BLOCK, "1555"), 0);
  assert_int_equal(numlist_remove(l, LIST_BLOCK, "1555"), VS_ERR_NOTFOUND);
  assert_int_equal(numlist_remove(l, LIST_BLOCK, "1555*"), 0);
  assert_int_equal(numlist_remove(l, LIST_BLOCK, "1555*"), VS_ERR_NOTFOUND);
  assert_null(numlist_match(l, LIST_BLOCK, "15555550123", 10));
  e = numlist_match(l, LIST_ALLOW, "15555550123", 10);
  assert_non_null(e);
  assert_string_equal(e->note, "allow");
  assert_int_equal(numlist_count(l), 1);

  /* An entry can come back once removed; an expired one can be removed. */
  put_entry(l, LIST_BLOCK, "1555*", 1, "again");
  assert_int_equal(numlist_count(l), 2);
  assert_int_equal(numlist_remove(l, LIST_BLOCK, "1555*"), 0);

  /* Malformed or unknown arguments are simply not found. */
  assert_int_equal(numlist_remove(l, LIST_BLOCK, NULL), VS_ERR_NOTFOUND);
  assert_int_equal(numlist_remove(l, LIST_BLOCK, "*"), VS_ERR_NOTFOUND);
  assert_int_equal(numlist_remove(l, (enum list_kind)7, "1555*"),
                   VS_ERR_NOTFOUND);
  assert_int_equal(numlist_remove(NULL, LIST_BLOCK, "1555*"), VS_ERR_NOTFOUND);
  assert_int_equal(numlist_count(l), 1);
  numlist_destroy(l);
}

static const char *const bad_entries[] = {
    "",
    "*",
    "**",
    "1555**",
    "15*55",
    "155a*",
    "+1555",
    " 1555",
    "1555 ",
    "1234567890123456",
    "1234567890123456*",
};

static void test_put_refuses_malformed(void **state)
{
  struct numlist *l = numlist_create();
  struct list_entry e;
  size_t i;

  (void)state;
  assert_non_null(l);
  for (i = 0; i < sizeof(bad_entries) / sizeof(bad_entries[0]); i++) {
    memset(&e, 0, sizeof(e));
    e.kind = LIST_BLOCK;
    snprintf(e.entry, sizeof(e.entry), "%s", bad_entries[i]);
    if (numlist_put(l, &e) != VS_ERR_INVAL) {
      print_error("entry \"%s\" was accepted\n", bad_entries[i]);
      fail();
    }
  }
  /* An entry field with no NUL in it. */
  memset(&e, 0, sizeof(e));
  e.kind = LIST_BLOCK;
  memset(e.entry, '1', sizeof(e.entry));
  assert_int_equal(numlist_put(l, &e), VS_ERR_INVAL);
  /* A kind that is neither allow nor block. */
  memset(&e, 0, sizeof(e));
  e.kind = (enum list_kind)2;
  snprintf(e.entry, sizeof(e.entry), "1555*");
  assert_int_equal(numlist_put(l, &e), VS_ERR_INVAL);
  assert_int_equal(numlist_put(l, NULL), VS_ERR_INVAL);
  assert_int_equal(numlist_put(NULL, &e), VS_ERR_INVAL);
  assert_int_equal(numlist_count(l), 0);

  /* Text fields without their NUL are cut, not read past. */
  memset(&e, 0, sizeof(e));
  e.kind = LIST_ALLOW;
  snprintf(e.entry, sizeof(e.entry), "15555550123");
  memset(e.note, 'n', sizeof(e.note));
  memset(e.source, 's', sizeof(e.source));
  assert_int_equal(numlist_put(l, &e), 0);
  {
    const struct list_entry *m =
        numlist_match(l, LIST_ALLOW, "15555550123", 0);

    assert_non_null(m);
    assert_int_equal(strlen(m->note), sizeof(m->note) - 1);
    assert_int_equal(strlen(m->source), sizeof(m->source) - 1);
  }

  assert_null(numlist_match(NULL, LIST_ALLOW, "15555550123", 0));
  assert_null(numlist_match(l, LIST_ALLOW, NULL, 0));
  assert_null(numlist_match(l, (enum list_kind) - 1, "15555550123", 0));
  assert_int_equal(numlist_count(NULL), 0);
  numlist_destroy(NULL);
  numlist_destroy(l);
}

/*
 * 10,000 exact block entries and 10,000 allow prefixes of four lengths:
 * every one is found, its neighbours are not, and removals stick.
 */
#define MANY 10000

static void test_ten_thousand(void **state)
{
  struct numlist *l = numlist_create();
  const struct list_entry *e;
  const struct list_entry *first;
  char entry[LIST_ENTRY_SIZE];
  char number[32];
  int i;

  (void)state;
  assert_non_null(l);
  put_entry(l, LIST_BLOCK, "12120000000", 0, "first");
  first = numlist_match(l, LIST_BLOCK, "12120000000", 0);
  assert_non_null(first);
  for (i = 1; i < MANY; i++) {
    snprintf(entry, sizeof(entry), "1212%07d", i);
    put_entry(l, LIST_BLOCK, entry, 0, "exact");
  }
  for (i = 0; i < MANY; i++) {
    /* "13" then 4 to 7 more digits: 13xxxx*, 13xxxxx*, ... */
    snprintf(entry, sizeof(entry), "13%0*d*", 4 + i % 4, i);
    put_entry(l, LIST_ALLOW, entry, 0, "prefix");
  }
  assert_int_equal(numlist_count(l), 2 * MANY);

  /* Entries live in their own nodes: growing the table did not move one. */
  assert_ptr_equal(numlist_match(l, LIST_BLOCK, "12120000000", 0), first);

  for (i = 0; i < MANY; i++) {
    snprintf(number, sizeof(number), "1212%07d", i);
    e = numlist_match(l, LIST_BLOCK, number, 0);
    assert_non_null(e);
    assert_string_equal(e->entry, number);
    assert_null(numlist_match(l, LIST_ALLOW, number, 0));

    snprintf(entry, sizeof(entry), "13%0*d*", 4 + i % 4, i);
    snprintf(number, sizeof(number), "13%0*d99999", 4 + i % 4, i);
    e = numlist_match(l, LIST_ALLOW, number, 0);
    assert_non_null(e);
    if (strcmp(e->entry, entry) != 0) {
      /* A shorter entry may be a prefix of a longer one's digits. */
      assert_true(strlen(e->entry) >= strlen(entry));
      assert_memory_equal(e->entry, entry, strlen(entry) - 1);
    }
  }
  assert_null(numlist_match(l, LIST_BLOCK, "12130000000", 0));

  for (i = 0; i < MANY; i += 2) {
    snprintf(entry, sizeof(entry), "1212%07d", i);
    assert_int_equal(numlist_remove(l, LIST_BLOCK, entry), 0);
  }
  assert_int_equal(numlist_count(l), 2 * MANY - MANY / 2);
  for (i = 0; i < MANY; i++) {
    snprintf(number, sizeof(number), "1212%07d", i);
    e = numlist_match(l, LIST_BLOCK, number, 0);
    if (i % 2)
      assert_non_null(e);
    else
      assert_null(e);
  }
  numlist_destroy(l);
}

struct norm_case {
  const char *raw;
  const char *cc;   /* default country, NULL for the NANP default */
  const char *want; /* NULL: refused with VS_ERR_INVAL */
};

/* 65 bytes: over the normaliser's input ceiling. */
#define LONG65                                                                \
  "1555*                                                            "

static const struct norm_case norm_cases[] = {
    /* Prefixes: formatting goes as in phone_normalise. */
    {"+1 (555) 555-*", NULL, "1555555*"},
    {"1.555.555-*", NULL, "1555555*"},
    {"  1555*  ", NULL, "1555*"},
    {"\t+1 555 *\n", NULL, "1555*"},
    {"1+555*", NULL, "1555*"},
    {"1555*", NULL, "1555*"},
    /* NANP default, no '+' or prefix, starting 2-9: an area code. */
    {"555*", NULL, "1555*"},
    {"555*", "1", "1555*"},
    {"2*", NULL, "12*"},
    {"23456789012345*", NULL, "123456789012345*"},
    /* With '+' or an international prefix the digits are taken as is. */
    {"+555*", NULL, "555*"},
    {"+44 20*", NULL, "4420*"},
    {"0044 20*", NULL, "4420*"},
    {"011 44 20*", NULL, "4420*"},
    {"00 555*", NULL, "555*"},
    /* Other defaults add nothing, and 011 is not a prefix there. */
    {"0044 20*", "44", "4420*"},
    {"44 20*", "44", "4420*"},
    {"555*", "44", "555*"},
    {"011 44*", "44", NULL},
    /* A trunk 0 is not replaced: say the country code instead. */
    {"020 7946*", "44", NULL},
    {"0*", NULL, NULL},
    /* Empty, junk, too long. */
    {"*", NULL, NULL},
    {"+*", NULL, NULL},
    {" - *", NULL, NULL},
    {"00*", NULL, NULL},
    {"011*", NULL, NULL},
    {"1555x*", NULL, NULL},
    {"15*55*", NULL, NULL},
    {"1555**", NULL, NULL},
    {"123456789012345*", NULL, "123456789012345*"},
    {"1234567890123456*", NULL, NULL},
    {"234567890123456*", NULL, NULL},
    {"1555*", "0", NULL},
    {"1555*", "+1", NULL},
    /* Full numbers: phone_normalise, which must say PHONE_OK. */
    {"15555550123", NULL, "15555550123"},
    {"+1 (555) 555-0123", NULL, "15555550123"},
    {"(555) 555-0123", NULL, "15555550123"},
    {"020 7946 0000", "44", "442079460000"},
    {"+44 20 7946 0000", NULL, "442079460000"},
    {"123456789012345", NULL, "123456789012345"},
    {"5550123", NULL, NULL},
    {"1234567890123456", NULL, NULL},
    {"anonymous", NULL, NULL},
    {"+1 111 555 1234", NULL, NULL},
    {"1 212 155 1234", NULL, NULL},
    {"1555*5550123", NULL, NULL},
    {"15555550123", "1234", NULL},
    {"", NULL, NULL},
    {"   ", NULL, NULL},
    {NULL, NULL, NULL},
    {LONG65, NULL, NULL},
};

#define NNORM (sizeof(norm_cases) / sizeof(norm_cases[0]))

static void test_normalise_table(void **state)
{
  size_t i;
  size_t refused = 0;

  (void)state;
  for (i = 0; i < NNORM; i++) {
    const struct norm_case *c = &norm_cases[i];
    char out[LIST_ENTRY_SIZE];
    char err[160];
    int rc;

    memset(out, 'x', sizeof(out));
    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    rc = list_entry_normalise(c->raw, c->cc, out, err, sizeof(err));
    if (c->want ? (rc != 0 || strcmp(out, c->want) != 0)
                : (rc != VS_ERR_INVAL || out[0] != '\0')) {
      print_error("case %zu: \"%s\" (%s): got %d \"%.*s\" (%s), want %s\n", i,
                  c->raw ? c->raw : "(null)", c->cc ? c->cc : "default", rc,
                  (int)strnlen(out, sizeof(out)), out, err,
                  c->want ? c->want : "refused");
      fail();
    }
    if (c->want) {
      /*
       * Written with '+', an entry comes back unchanged. Bare, a prefix
       * such as "4420*" would not with the NANP default ("555*" is an
       * area code there), so only full numbers, prefixes starting with
       * the 1 and other defaults are fed back bare. Either way the result
       * is something numlist_put takes.
       */
      char plus[LIST_ENTRY_SIZE + 1];
      char again[LIST_ENTRY_SIZE];
      struct numlist *l = numlist_create();
      struct list_entry e;
      int nanp = !c->cc || strcmp(c->cc, "1") == 0;

      snprintf(plus, sizeof(plus), "+%s", out);
      assert_int_equal(list_entry_normalise(plus, c->cc, again, NULL, 0), 0);
      assert_string_equal(again, out);
      if (!strchr(out, '*') || !nanp || out[0] == '1') {
        assert_int_equal(list_entry_normalise(out, c->cc, again, NULL, 0), 0);
        assert_string_equal(again, out);
      }
      assert_non_null(l);
      memset(&e, 0, sizeof(e));
      e.kind = LIST_BLOCK;
      memcpy(e.entry, out, sizeof(e.entry));
      assert_int_equal(numlist_put(l, &e), 0);
      numlist_destroy(l);
    } else {
      /* Every refusal says why. */
      assert_true(err[0] != '\0' && err[0] != 'x');
      refused++;
    }
  }
  assert_true(NNORM >= 20);
  assert_true(refused >= 10);
  /* No output buffer, no error buffer: still refused, nothing written. */
  assert_int_equal(list_entry_normalise("1555*", NULL, NULL, NULL, 0),
                   VS_ERR_INVAL);
}

struct duration_case {
  const char *s;
  int rc;
  int64_t seconds;
};

static const struct duration_case duration_cases[] = {
    {"30d", 0, 30 * 86400},
    {"12h", 0, 12 * 3600},
    {"90m", 0, 90 * 60},
    {"45s", 0, 45},
    {"45", 0, 45},
    {"0", 0, 0},
    {"0s", 0, 0},
    {"007m", 0, 420},
    /* The ceiling: seconds whose milliseconds still fit in int64_t. */
    {"9223372036854775", 0, 9223372036854775LL},
    {"9223372036854775s", 0, 9223372036854775LL},
    {"106751991167d", 0, 106751991167LL * 86400},
    {"9223372036854776", VS_ERR_INVAL, 0},
    {"106751991168d", VS_ERR_INVAL, 0},
    {"99999999999999999999999", VS_ERR_INVAL, 0},
    {"153722867280913m", VS_ERR_INVAL, 0},
    {"", VS_ERR_INVAL, 0},
    {"-5", VS_ERR_INVAL, 0},
    {"-5s", VS_ERR_INVAL, 0},
    {"+5", VS_ERR_INVAL, 0},
    {" 5", VS_ERR_INVAL, 0},
    {"5 ", VS_ERR_INVAL, 0},
    {"5 d", VS_ERR_INVAL, 0},
    {"d", VS_ERR_INVAL, 0},
    {"5dd", VS_ERR_INVAL, 0},
    {"5D", VS_ERR_INVAL, 0},
    {"5w", VS_ERR_INVAL, 0},
    {"1.5h", VS_ERR_INVAL, 0},
    {"0x10", VS_ERR_INVAL, 0},
    {"12h30m", VS_ERR_INVAL, 0},
};

static void test_duration_table(void **state)
{
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(duration_cases) / sizeof(duration_cases[0]); i++) {
    const struct duration_case *c = &duration_cases[i];
    int64_t seconds = -1;
    int rc = list_parse_duration(c->s, &seconds);

    /* A refusal leaves the output alone. */
    if (rc != c->rc || seconds != (c->rc ? -1 : c->seconds)) {
      print_error("\"%s\": got %d %lld, want %d %lld\n", c->s, rc,
                  (long long)seconds, c->rc, (long long)c->seconds);
      fail();
    }
  }
  {
    int64_t seconds = 0;

    assert_int_equal(list_parse_duration(NULL, &seconds), VS_ERR_INVAL);
    assert_int_equal(list_parse_duration("5", NULL), VS_ERR_INVAL);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scenarios),
      cmocka_unit_test(test_replace_and_remove),
      cmocka_unit_test(test_put_refuses_malformed),
      cmocka_unit_test(test_ten_thousand),
      cmocka_unit_test(test_normalise_table),
      cmocka_unit_test(test_duration_table),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
