/*
 * Unit tests for screen/numbers: LRU scenarios as tables of operations on
 * a small table, velocity counts as tables of call times, the ring past
 * NUMBERS_VELOCITY_RING calls, and seeding from the store.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../src/screen/numbers.h"
#include "../../src/util/err.h"

enum op {
  OP_END = 0,
  OP_CREATE,  /* numbers_get with create: must not be NULL */
  OP_TOUCH,   /* numbers_get without create: must be known (touches it) */
  OP_ABSENT,  /* numbers_get without create: must be unknown */
  OP_COUNT,   /* numbers_count must be `arg` */
  OP_LOAD,    /* numbers_load_call at `arg` ms */
  OP_RING_LEN /* the number's ncalls must be `arg` (touches it) */
};

struct lru_op {
  enum op op;
  const char *number;
  int64_t arg;
};

struct lru_scenario {
  const char *name;
  size_t max;
  struct lru_op ops[16];
};

#define A "15555550101"
#define B "15555550102"
#define C "15555550103"
#define D "15555550104"
#define E "15555550105"

static const struct lru_scenario lru_scenarios[] = {
    {"untouched, the first in is the first out",
     3,
     {{OP_CREATE, A, 0},
      {OP_CREATE, B, 0},
      {OP_CREATE, C, 0},
      {OP_COUNT, NULL, 3},
      {OP_CREATE, D, 0},
      {OP_COUNT, NULL, 3},
      {OP_ABSENT, A, 0},
      {OP_CREATE, E, 0},
      {OP_ABSENT, B, 0},
      {OP_TOUCH, C, 0},
      {OP_TOUCH, D, 0},
      {OP_TOUCH, E, 0}}},
    {"a touched entry survives, the least recently touched goes",
     3,
     {{OP_CREATE, A, 0},
      {OP_CREATE, B, 0},
      {OP_CREATE, C, 0},
      {OP_TOUCH, A, 0},
      {OP_CREATE, D, 0},
      {OP_ABSENT, B, 0},
      {OP_TOUCH, A, 0},
      {OP_TOUCH, C, 0},
      {OP_TOUCH, D, 0},
      {OP_COUNT, NULL, 3}}},
    {"a create of a known number is a touch",
     2,
     {{OP_CREATE, A, 0},
      {OP_CREATE, B, 0},
      {OP_CREATE, A, 0},
      {OP_COUNT, NULL, 2},
      {OP_CREATE, C, 0},
      {OP_ABSENT, B, 0},
      {OP_TOUCH, A, 0},
      {OP_TOUCH, C, 0}}},
    {"a lookup of an unknown number touches nothing",
     2,
     {{OP_CREATE, A, 0},
      {OP_CREATE, B, 0},
      {OP_ABSENT, C, 0},
      {OP_CREATE, C, 0},
      {OP_ABSENT, A, 0},
      {OP_COUNT, NULL, 2}}},
    {"a table of one",
     1,
     {{OP_CREATE, A, 0},
      {OP_CREATE, A, 0},
      {OP_COUNT, NULL, 1},
      {OP_CREATE, B, 0},
      {OP_ABSENT, A, 0},
      {OP_TOUCH, B, 0},
      {OP_COUNT, NULL, 1}}},
    {"loading calls touches, and an evicted number comes back empty",
     2,
     {{OP_LOAD, A, 1000},
      {OP_LOAD, A, 2000},
      {OP_LOAD, B, 1500},
      {OP_LOAD, A, 3000},
      {OP_CREATE, C, 0},
      {OP_ABSENT, B, 0},
      {OP_RING_LEN, A, 3},
      {OP_CREATE, B, 0},
      {OP_ABSENT, C, 0},
      {OP_RING_LEN, B, 0},
      {OP_COUNT, NULL, 2}}},
};

static void test_lru_scenarios(void **state)
{
  size_t i;
  size_t j;

  (void)state;
  for (i = 0; i < sizeof(lru_scenarios) / sizeof(lru_scenarios[0]); i++) {
    const struct lru_scenario *s = &lru_scenarios[i];
    struct numbers *n = numbers_create(s->max);

    assert_non_null(n);
    for (j = 0; j < 16 && s->ops[j].op != OP_END; j++) {
      const struct lru_op *o = &s->ops[j];
      struct number_state *st = NULL;
      int ok = 1;

      switch (o->op) {
      case OP_CREATE:
        st = numbers_get(n, o->number, 1);
        ok = st && strcmp(st->rec.number, o->number) == 0;
        break;
      case OP_TOUCH:
        st = numbers_get(n, o->number, 0);
        ok = st && strcmp(st->rec.number, o->number) == 0;
        break;
      case OP_ABSENT:
        ok = numbers_get(n, o->number, 0) == NULL;
        break;
      case OP_COUNT:
        ok = numbers_count(n) == (size_t)o->arg;
        break;
      case OP_LOAD:
        ok = numbers_load_call(n, o->number, o->arg) == 0;
        break;
      case OP_RING_LEN:
        st = numbers_get(n, o->number, 0);
        ok = st && st->ncalls == (unsigned)o->arg;
        break;
      case OP_END:
        break;
      }
      if (!ok) {
        print_error("%s: op %zu (%d %s %lld) failed\n", s->name, j, o->op,
                    o->number ? o->number : "", (long long)o->arg);
        fail();
      }
    }
    numbers_destroy(n);
  }
}

/* State set on a number is gone once it has been evicted. */
static void test_evicted_number_is_fresh(void **state)
{
  struct numbers *n = numbers_create(1);
  struct number_state *s;

  (void)state;
  assert_non_null(n);
  s = numbers_get(n, A, 1);
  assert_non_null(s);
  assert_int_equal(s->rec.score, -1);
  s->rec.challenge_failures = 2;
  s->rec.score = 900;
  numbers_record_call(s, 1000, 60000);
  assert_non_null(numbers_get(n, B, 1));
  s = numbers_get(n, A, 1);
  assert_non_null(s);
  assert_string_equal(s->rec.number, A);
  assert_int_equal(s->rec.challenge_failures, 0);
  assert_int_equal(s->rec.score, -1);
  assert_int_equal(s->ncalls, 0);
  assert_int_equal(s->head, 0);

  /* A key read from the very node that making room reuses. */
  s = numbers_get(n, s->rec.number + 1, 1);
  assert_non_null(s);
  assert_string_equal(s->rec.number, A + 1);
  assert_int_equal(numbers_load_call(n, s->rec.number + 1, 5), 0);
  s = numbers_get(n, A + 2, 0);
  assert_non_null(s);
  assert_int_equal(s->ncalls, 1);
  assert_int_equal(numbers_count(n), 1);
  numbers_destroy(n);
}

#define MAXCALLS 12

struct velocity_case {
  const char *name;
  int64_t window_ms;
  int64_t at[MAXCALLS];    /* call times, in order */
  unsigned want[MAXCALLS]; /* numbers_record_call after each */
  size_t ncalls;
};

static const struct velocity_case velocity_cases[] = {
    {"a call exactly one window old is out",
     1000,
     {0, 1, 2, 999, 1000, 1001, 1002, 2002},
     {1, 2, 3, 4, 4, 4, 4, 1},
     8},
    {"one millisecond inside the window is in",
     1000,
     {5000, 5999, 6998, 6999},
     {1, 2, 2, 2},
     4},
    {"calls at the same instant all count",
     1,
     {100, 100, 100, 100, 101},
     {1, 2, 3, 4, 1},
     5},
    {"a zero or negative window counts only this call",
     0,
     {100, 100, 100},
     {1, 1, 1},
     3},
    {"negative window", -5, {100, 100}, {1, 1}, 2},
    {"a call stamped after now (clock stepped back) still counts",
     100,
     {5000, 4000, 3000, 5099},
     {1, 2, 3, 2},
     4},
    {"extreme times neither overflow nor count",
     INT64_MAX,
     {INT64_MIN, INT64_MAX, INT64_MAX},
     {1, 1, 2},
     3},
    {"an old call ages out and a new one takes its place",
     600000,
     {0, 300000, 599999, 600000, 900000, 1200000},
     {1, 2, 3, 3, 3, 2},
     6},
};

static void test_velocity_edges(void **state)
{
  size_t i;
  size_t j;

  (void)state;
  for (i = 0; i < sizeof(velocity_cases) / sizeof(velocity_cases[0]); i++) {
    const struct velocity_case *c = &velocity_cases[i];
    struct numbers *n = numbers_create(4);
    struct number_state *s;

    assert_non_null(n);
    s = numbers_get(n, A, 1);
    assert_non_null(s);
    for (j = 0; j < c->ncalls; j++) {
      unsigned got = numbers_record_call(s, c->at[j], c->window_ms);

      if (got != c->want[j]) {
        print_error("%s: call %zu at %lld: got %u, want %u\n", c->name, j,
                    (long long)c->at[j], got, c->want[j]);
        fail();
      }
    }
    /* A ring only while the last call still had company in its window. */
    assert_int_equal(s->ring != NULL, c->want[c->ncalls - 1] > 1);
    numbers_destroy(n);
  }
  assert_int_equal(numbers_record_call(NULL, 0, 1000), 0);
}

/*
 * Past NUMBERS_VELOCITY_RING calls the oldest are overwritten: the count
 * stays exact for any window that holds at most that many calls, and
 * caps there otherwise.
 */
static void test_ring_wrap(void **state)
{
  struct numbers *n = numbers_create(4);
  struct number_state *s;
  unsigned got;
  int64_t t;

  (void)state;
  assert_non_null(n);
  s = numbers_get(n, A, 1);
  assert_non_null(s);

  /* 100 calls a second apart, counted over the whole day. */
  for (t = 0; t < 100; t++) {
    got = numbers_record_call(s, t * 1000, 86400000);
    assert_int_equal(got, t < NUMBERS_VELOCITY_RING
                              ? (unsigned)t + 1
                              : (unsigned)NUMBERS_VELOCITY_RING);
  }
  assert_int_equal(s->ncalls, NUMBERS_VELOCITY_RING);
  assert_int_equal(s->head, 100 % NUMBERS_VELOCITY_RING);

  /* Over 20 s, after the wrap: exactly the calls at 80 s .. 99 s, + this. */
  assert_int_equal(numbers_record_call(s, 100 * 1000, 20001), 21);
  /* The ring now holds 70 s .. 101 s; over 30.001 s, 71 s .. 101 s. */
  assert_int_equal(numbers_record_call(s, 101 * 1000, 30001), 31);

  /* Long-gone calls count for nothing, and their ring is freed. */
  assert_int_equal(numbers_record_call(s, 10000000, 1000), 1);
  assert_int_equal(s->ncalls, 1);
  assert_null(s->ring);
  for (t = 1; t < 40; t++) {
    got = numbers_record_call(s, 10000000 + t, 1000);
    assert_int_equal(got, t + 1 < NUMBERS_VELOCITY_RING
                              ? (unsigned)t + 1
                              : (unsigned)NUMBERS_VELOCITY_RING);
  }

  /* A stray head or count in the public struct stays inside the ring. */
  s->head = 1000;
  s->ncalls = 1000;
  assert_non_null(s->ring);
  assert_int_equal(numbers_record_call(s, 10000040, 1000), 32);
  assert_int_equal(s->ncalls, NUMBERS_VELOCITY_RING);
  numbers_destroy(n);
}

static void test_load_record_and_calls(void **state)
{
  struct numbers *n = numbers_create(0);
  struct number_record r;
  struct number_state *s;
  char long_number[CALL_NUMBER_SIZE + 1];

  (void)state;
  assert_non_null(n);

  /* Calls first, then the record: the ring built by the calls is kept. */
  assert_int_equal(numbers_load_call(n, A, 1000), 0);
  assert_int_equal(numbers_load_call(n, A, 2000), 0);
  assert_int_equal(numbers_load_call(n, A, 3000), 0);
  memset(&r, 0, sizeof(r));
  snprintf(r.number, sizeof(r.number), "%s", A);
  r.pass_expires_ms = 99000;
  r.challenge_failures = 1;
  r.score = 742;
  snprintf(r.risk_level, sizeof(r.risk_level), "high");
  /* A text field without its NUL is cut, not read past. */
  memset(r.score_ref, 'r', sizeof(r.score_ref));
  assert_int_equal(numbers_load_record(n, &r), 0);

  s = numbers_get(n, A, 0);
  assert_non_null(s);
  assert_int_equal(s->rec.score, 742);
  assert_int_equal(s->rec.pass_expires_ms, 99000);
  assert_int_equal(s->rec.challenge_failures, 1);
  assert_string_equal(s->rec.risk_level, "high");
  assert_int_equal(strlen(s->rec.score_ref), sizeof(s->rec.score_ref) - 1);
  assert_int_equal(s->ncalls, 3);
  /* 1000 is 3000 ms old, out of a 2500 ms window; 2000, 3000 and now in. */
  assert_int_equal(numbers_record_call(s, 4000, 2500), 3);

  /* A record then calls, for another number; loading it again replaces. */
  memset(&r, 0, sizeof(r));
  snprintf(r.number, sizeof(r.number), "%s", B);
  r.score = 10;
  assert_int_equal(numbers_load_record(n, &r), 0);
  r.score = 20;
  assert_int_equal(numbers_load_record(n, &r), 0);
  assert_int_equal(numbers_load_call(n, B, 500), 0);
  s = numbers_get(n, B, 0);
  assert_non_null(s);
  assert_int_equal(s->rec.score, 20);
  assert_int_equal(s->ncalls, 1);
  assert_int_equal(numbers_count(n), 2);

  /* A record loaded from an entry of the table itself. */
  s = numbers_get(n, A, 0);
  assert_non_null(s);
  assert_int_equal(numbers_load_record(n, &s->rec), 0);
  assert_int_equal(numbers_get(n, A, 0)->rec.score, 742);

  /* Numbers that cannot be keys. */
  memset(long_number, '1', sizeof(long_number) - 1);
  long_number[sizeof(long_number) - 1] = '\0';
  assert_int_equal(numbers_load_call(n, NULL, 1), VS_ERR_INVAL);
  assert_int_equal(numbers_load_call(n, "", 1), VS_ERR_INVAL);
  assert_int_equal(numbers_load_call(n, long_number, 1), VS_ERR_INVAL);
  long_number[CALL_NUMBER_SIZE - 1] = '\0'; /* 32 bytes: just fits */
  assert_int_equal(numbers_load_call(n, long_number, 1), 0);
  assert_int_equal(numbers_load_record(n, NULL), VS_ERR_INVAL);
  memset(&r, 0, sizeof(r));
  assert_int_equal(numbers_load_record(n, &r), VS_ERR_INVAL);
  memset(r.number, '1', sizeof(r.number));
  assert_int_equal(numbers_load_record(n, &r), VS_ERR_INVAL);
  assert_int_equal(numbers_load_record(NULL, &r), VS_ERR_INVAL);
  assert_int_equal(numbers_load_call(NULL, A, 1), VS_ERR_INVAL);
  assert_int_equal(numbers_count(n), 3);
  numbers_destroy(n);
}

/* Seeding past the ceiling keeps the most recently loaded numbers. */
static void test_load_past_max(void **state)
{
  struct numbers *n = numbers_create(100);
  char number[16];
  int i;

  (void)state;
  assert_non_null(n);
  for (i = 0; i < 250; i++) {
    snprintf(number, sizeof(number), "1212555%04d", i);
    assert_int_equal(numbers_load_call(n, number, i), 0);
  }
  assert_int_equal(numbers_count(n), 100);
  for (i = 0; i < 250; i++) {
    snprintf(number, sizeof(number), "1212555%04d", i);
    if (i < 150)
      assert_null(numbers_get(n, number, 0));
    else
      assert_non_null(numbers_get(n, number, 0));
  }
  numbers_destroy(n);
}

/* max 0 means 131072; the table holds exactly that many. */
static void test_default_max(void **state)
{
  struct numbers *n = numbers_create(0);
  struct number_state *s;
  char number[16];
  int i;

  (void)state;
  assert_non_null(n);
  for (i = 0; i <= 131072; i++) {
    snprintf(number, sizeof(number), "1212%07d", i);
    s = numbers_get(n, number, 1);
    assert_non_null(s);
    s->rec.score = i % 1000;
  }
  assert_int_equal(numbers_count(n), 131072);
  assert_null(numbers_get(n, "12120000000", 0));
  for (i = 1; i <= 131072; i += 997) {
    snprintf(number, sizeof(number), "1212%07d", i);
    s = numbers_get(n, number, 0);
    assert_non_null(s);
    assert_int_equal(s->rec.score, i % 1000);
  }
  numbers_destroy(n);
}

static void test_bad_arguments(void **state)
{
  struct numbers *n = numbers_create(2);

  (void)state;
  assert_non_null(n);
  assert_null(numbers_get(n, NULL, 1));
  assert_null(numbers_get(n, "", 1));
  assert_null(numbers_get(NULL, A, 1));
  assert_int_equal(numbers_count(n), 0);
  assert_int_equal(numbers_count(NULL), 0);
  numbers_destroy(NULL);
  numbers_destroy(n);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lru_scenarios),
      cmocka_unit_test(test_evicted_number_is_fresh),
      cmocka_unit_test(test_velocity_edges),
      cmocka_unit_test(test_ring_wrap),
      cmocka_unit_test(test_load_record_and_calls),
      cmocka_unit_test(test_load_past_max),
      cmocka_unit_test(test_default_max),
      cmocka_unit_test(test_bad_arguments),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
