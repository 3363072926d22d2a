/*
 * Unit tests for util/bloom: its sizes, that a member always answers
 * "maybe", and how often a non-member does at the density the store's
 * filter of indexed references keeps (16 bits per member) and past it.
 * Hashes are hash_mix64 of a counter, so every run sees the same ones.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../src/util/bloom.h"
#include "../../src/util/err.h"
#include "../../src/util/hash.h"

#define NON_MEMBERS 200000

static void test_sizes(void **state)
{
  struct bloom *b = (struct bloom *)1;

  (void)state;
  assert_int_equal(bloom_create(BLOOM_MIN_LOG2 - 1, &b), VS_ERR_INVAL);
  assert_null(b);
  assert_int_equal(bloom_create(BLOOM_MAX_LOG2 + 1, &b), VS_ERR_INVAL);
  assert_int_equal(bloom_create(BLOOM_MIN_LOG2, &b), VS_OK);
  assert_int_equal(bloom_bits(b), 64);
  bloom_destroy(b);
  assert_int_equal(bloom_create(20, &b), VS_OK);
  assert_int_equal(bloom_bits(b), 1u << 20);
  bloom_destroy(b);
  bloom_destroy(NULL);
}

/* Of NON_MEMBERS hashes never added, how many answer "maybe". */
static double false_rate(const struct bloom *b, uint64_t members)
{
  uint64_t maybe = 0;

  for (uint64_t i = 0; i < NON_MEMBERS; i++)
    maybe += (uint64_t)bloom_maybe(b, hash_mix64(members + i));
  return (double)maybe / NON_MEMBERS;
}

/*
 * A filter of 2^20 bits with `members` hashes in it: every member answers
 * "maybe", and a non-member at most `most` of the time.
 */
static void check_density(uint64_t members, double most)
{
  struct bloom *b;
  double rate;

  assert_int_equal(bloom_create(20, &b), VS_OK);
  assert_false(bloom_maybe(b, hash_mix64(0)));
  for (uint64_t i = 0; i < members; i++)
    bloom_add(b, hash_mix64(i));
  for (uint64_t i = 0; i < members; i++)
    assert_true(bloom_maybe(b, hash_mix64(i)));
  rate = false_rate(b, members);
  print_message("%llu members in 2^20 bits: %.3f%% answer maybe\n",
                (unsigned long long)members, rate * 100);
  assert_true(rate <= most);
  bloom_destroy(b);
}

static void test_sixteen_bits_per_member(void **state)
{
  (void)state;
  check_density((1u << 20) / 16, 0.006);
}

/* Four times as full: worse, but still far from answering maybe always. */
static void test_four_bits_per_member(void **state)
{
  (void)state;
  check_density((1u << 20) / 4, 0.3);
}

/* An empty filter answers "certainly not" to everything. */
static void test_empty(void **state)
{
  struct bloom *b;

  (void)state;
  assert_int_equal(bloom_create(BLOOM_MIN_LOG2, &b), VS_OK);
  assert_true(false_rate(b, 0) == 0.0);
  bloom_destroy(b);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_sixteen_bits_per_member),
      cmocka_unit_test(test_four_bits_per_member),
      cmocka_unit_test(test_empty),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
