/*
 * Unit tests for screen/decide: every branch of decide_on_score() and
 * decide_unscorable(), with the exact reason strings stored with a call,
 * at block_at 0, 600 and 1000 and with both on_score_error policies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../src/screen/decide.h"

#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))

#define ALLOW ON_ERROR_ALLOW
#define BLOCK ON_ERROR_BLOCK

/* 63 characters: the longest error a score_result can hold. */
#define ERR63 "status_-3000600000000000000000000000000000000000000000000000000"

static void make_config(struct config *cfg, uint32_t block_at,
                        enum config_on_error on_error)
{
  memset(cfg, 0, sizeof(*cfg));
  cfg->screening.block_at = block_at;
  cfg->screening.on_score_error = on_error;
  cfg->screening.block_message = "We are unable to take your call.";
}

struct score_case {
  uint32_t block_at;
  enum config_on_error on_error;
  enum score_failure failure;
  const char *error; /* res.error */
  int32_t score;
  enum call_decision verdict;
  const char *reason;
};

static const struct score_case score_cases[] = {
    /* The default threshold. */
    {600, ALLOW, SCORE_OK, "", 742, CALL_DECISION_BLOCK, "score:742>=600"},
    {600, ALLOW, SCORE_OK, "", 599, CALL_DECISION_ALLOW, "score:599<600"},
    {600, ALLOW, SCORE_OK, "", 600, CALL_DECISION_BLOCK, "score:600>=600"},
    {600, ALLOW, SCORE_OK, "", 601, CALL_DECISION_BLOCK, "score:601>=600"},
    {600, ALLOW, SCORE_OK, "", 123, CALL_DECISION_ALLOW, "score:123<600"},
    {600, ALLOW, SCORE_OK, "", 0, CALL_DECISION_ALLOW, "score:0<600"},
    {600, ALLOW, SCORE_OK, "", 1000, CALL_DECISION_BLOCK, "score:1000>=600"},
    /* The error policy does not touch a successful lookup. */
    {600, BLOCK, SCORE_OK, "", 599, CALL_DECISION_ALLOW, "score:599<600"},
    {600, BLOCK, SCORE_OK, "", 600, CALL_DECISION_BLOCK, "score:600>=600"},
    /* block_at 0 blocks every scored caller. */
    {0, ALLOW, SCORE_OK, "", 0, CALL_DECISION_BLOCK, "score:0>=0"},
    {0, ALLOW, SCORE_OK, "", 1, CALL_DECISION_BLOCK, "score:1>=0"},
    {0, ALLOW, SCORE_OK, "", 1000, CALL_DECISION_BLOCK, "score:1000>=0"},
    /* block_at 1000 blocks only the top score. */
    {1000, ALLOW, SCORE_OK, "", 0, CALL_DECISION_ALLOW, "score:0<1000"},
    {1000, ALLOW, SCORE_OK, "", 999, CALL_DECISION_ALLOW, "score:999<1000"},
    {1000, ALLOW, SCORE_OK, "", 1000, CALL_DECISION_BLOCK, "score:1000>=1000"},
    /* Failed lookups follow on_score_error, with the failure's detail. */
    {600, ALLOW, SCORE_FAIL_TIMEOUT, "timeout", -1, CALL_DECISION_ALLOW,
     "score_error:timeout->allow"},
    {600, BLOCK, SCORE_FAIL_TIMEOUT, "timeout", -1, CALL_DECISION_BLOCK,
     "score_error:timeout->block"},
    {600, BLOCK, SCORE_FAIL_HTTP, "http_503", -1, CALL_DECISION_BLOCK,
     "score_error:http_503->block"},
    {600, ALLOW, SCORE_FAIL_HTTP, "http_429", -1, CALL_DECISION_ALLOW,
     "score_error:http_429->allow"},
    {600, BLOCK, SCORE_FAIL_STATUS, "status_501", -1, CALL_DECISION_BLOCK,
     "score_error:status_501->block"},
    {600, ALLOW, SCORE_FAIL_STATUS, "status_-30006", -1, CALL_DECISION_ALLOW,
     "score_error:status_-30006->allow"},
    {600, ALLOW, SCORE_FAIL_NO_SCORE, "no_score", -1, CALL_DECISION_ALLOW,
     "score_error:no_score->allow"},
    {600, BLOCK, SCORE_FAIL_PARSE, "score_out_of_range", -1,
     CALL_DECISION_BLOCK, "score_error:score_out_of_range->block"},
    /* Without a detail, the failure's name. */
    {600, ALLOW, SCORE_FAIL_CONNECT, "", -1, CALL_DECISION_ALLOW,
     "score_error:connect->allow"},
    {600, BLOCK, SCORE_FAIL_TOO_LARGE, "", -1, CALL_DECISION_BLOCK,
     "score_error:too_large->block"},
    {600, ALLOW, SCORE_FAIL_INTERNAL, "", -1, CALL_DECISION_ALLOW,
     "score_error:internal->allow"},
    {600, BLOCK, SCORE_FAIL_CANCELLED, "", -1, CALL_DECISION_BLOCK,
     "score_error:cancelled->block"},
    {600, ALLOW, SCORE_FAIL_PARSE, "", -1, CALL_DECISION_ALLOW,
     "score_error:parse->allow"},
    /* A failed lookup's score, if any, is not used. */
    {600, ALLOW, SCORE_FAIL_TIMEOUT, "timeout", 999, CALL_DECISION_ALLOW,
     "score_error:timeout->allow"},
    {600, BLOCK, SCORE_FAIL_STATUS, "status_501", 10, CALL_DECISION_BLOCK,
     "score_error:status_501->block"},
    /* The threshold does not matter for errors. */
    {0, ALLOW, SCORE_FAIL_TIMEOUT, "timeout", -1, CALL_DECISION_ALLOW,
     "score_error:timeout->allow"},
    {1000, BLOCK, SCORE_FAIL_TIMEOUT, "timeout", -1, CALL_DECISION_BLOCK,
     "score_error:timeout->block"},
    /* The longest detail fits the reason whole. */
    {600, BLOCK, SCORE_FAIL_STATUS, ERR63, -1, CALL_DECISION_BLOCK,
     "score_error:" ERR63 "->block"},
};

static void test_decide_on_score(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(score_cases); i++) {
    const struct score_case *c = &score_cases[i];
    struct score_result res;
    struct decision d;
    struct config cfg;

    make_config(&cfg, c->block_at, c->on_error);
    memset(&res, 0, sizeof(res));
    res.failure = c->failure;
    snprintf(res.error, sizeof(res.error), "%s", c->error);
    res.score = c->score;
    res.status_code = c->failure == SCORE_OK ? 300 : 0;
    res.http_status = 200;
    memset(&d, 'x', sizeof(d));
    decide_on_score(&cfg, &res, &d);
    if (d.verdict != c->verdict || strcmp(d.reason, c->reason)) {
      print_error("case %zu (block_at %u, score %d, failure %d): got %d "
                  "\"%.95s\", want %d \"%s\"\n",
                  i, c->block_at, (int)c->score, (int)c->failure,
                  (int)d.verdict, d.reason, (int)c->verdict, c->reason);
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

struct unscorable_case {
  enum config_on_error on_error;
  enum phone_result why;
  enum call_decision verdict;
  const char *reason;
};

static const struct unscorable_case unscorable_cases[] = {
    {BLOCK, PHONE_ANONYMOUS, CALL_DECISION_BLOCK,
     "unscorable:anonymous->block"},
    {ALLOW, PHONE_ANONYMOUS, CALL_DECISION_ALLOW,
     "unscorable:anonymous->allow"},
    {BLOCK, PHONE_EMPTY, CALL_DECISION_BLOCK, "unscorable:empty->block"},
    {ALLOW, PHONE_EMPTY, CALL_DECISION_ALLOW, "unscorable:empty->allow"},
    {BLOCK, PHONE_INVALID, CALL_DECISION_BLOCK, "unscorable:invalid->block"},
    {ALLOW, PHONE_INVALID, CALL_DECISION_ALLOW, "unscorable:invalid->allow"},
    {BLOCK, PHONE_TOO_SHORT, CALL_DECISION_BLOCK,
     "unscorable:too_short->block"},
    {ALLOW, PHONE_TOO_SHORT, CALL_DECISION_ALLOW,
     "unscorable:too_short->allow"},
    {BLOCK, PHONE_TOO_LONG, CALL_DECISION_BLOCK, "unscorable:too_long->block"},
    {ALLOW, PHONE_TOO_LONG, CALL_DECISION_ALLOW, "unscorable:too_long->allow"},
};

static void test_decide_unscorable(void **state)
{
  static const uint32_t thresholds[] = {0, 600, 1000};
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(unscorable_cases); i++) {
    const struct unscorable_case *c = &unscorable_cases[i];

    /* The threshold plays no part. */
    for (size_t j = 0; j < ARRAYSIZE(thresholds); j++) {
      struct decision d;
      struct config cfg;

      make_config(&cfg, thresholds[j], c->on_error);
      memset(&d, 'x', sizeof(d));
      decide_unscorable(&cfg, c->why, &d);
      if (d.verdict != c->verdict || strcmp(d.reason, c->reason)) {
        print_error("case %zu (block_at %u): got %d \"%.95s\", want %d "
                    "\"%s\"\n",
                    i, thresholds[j], (int)d.verdict, d.reason,
                    (int)c->verdict, c->reason);
        failures++;
      }
    }
  }
  assert_int_equal(failures, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decide_on_score),
      cmocka_unit_test(test_decide_unscorable),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
