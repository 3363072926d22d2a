/*
 * Unit tests for the screening policy (src/screen/policy.c): each step of
 * the pipeline, its verdict and its reason, as a table; then the trace and
 * the replay of stored inputs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../src/screen/policy.h"
#include "../../src/store/call.h"

static struct config base(void)
{
  struct config c;

  memset(&c, 0, sizeof(c));
  c.screening.anonymous = VERDICT_CHALLENGE;
  c.screening.decide_by = DECIDE_BY_SCORE;
  c.screening.block_at = 600;
  c.screening.challenge_at = 400;
  c.screening.on_score_error = VERDICT_CHALLENGE;
  c.screening.velocity.window_s = 600;
  c.screening.velocity.max_calls = 5;
  c.screening.velocity.action = VERDICT_CHALLENGE;
  return c;
}

static struct score_result scored(int score, const char *rec)
{
  struct score_result r;

  memset(&r, 0, sizeof(r));
  r.score = score;
  snprintf(r.recommendation, sizeof(r.recommendation), "%s", rec);
  return r;
}

static struct score_result failed(const char *why)
{
  struct score_result r;

  memset(&r, 0, sizeof(r));
  r.failure = SCORE_FAIL_TIMEOUT;
  r.score = -1;
  snprintf(r.error, sizeof(r.error), "%s", why);
  return r;
}

static const struct list_entry allow_entry = {LIST_ALLOW, "1555555*", "",
                                              "",         0,          0};
static const struct list_entry block_entry = {LIST_BLOCK, "1555820*", "",
                                              "",         0,          0};

struct policy_case {
  const char *name;
  enum phone_result phone;
  int allow, block, has_pass;
  unsigned velocity;
  int score; /* -2: no score yet; -3: failed lookup */
  const char *recommendation;
  int by_recommendation;
  int needs_score;
  enum config_verdict verdict;
  const char *reason;
};

static const struct policy_case cases[] = {
    {"anonymous", PHONE_ANONYMOUS, 0, 0, 0, 0, -2, "", 0, 0, VERDICT_CHALLENGE,
     "normalise:anonymous"},
    {"empty", PHONE_EMPTY, 0, 0, 0, 0, -2, "", 0, 0, VERDICT_CHALLENGE,
     "normalise:empty"},
    {"allowlist wins over everything", PHONE_OK, 1, 1, 0, 99, 999, "block", 0,
     0, VERDICT_ALLOW, "allowlist:+1555555*"},
    {"blocklist", PHONE_OK, 0, 1, 1, 1, 10, "allow", 0, 0, VERDICT_BLOCK,
     "blocklist:+1555820*"},
    {"velocity over the limit", PHONE_OK, 0, 0, 1, 6, 10, "", 0, 0,
     VERDICT_CHALLENGE, "velocity:6/600s"},
    {"velocity at the limit passes", PHONE_OK, 0, 0, 0, 5, 10, "", 0, 0,
     VERDICT_ALLOW, "score:10<400"},
    /* A challenge for redialling is a floor: the score still blocks. */
    {"velocity over with a blocking score", PHONE_OK, 0, 0, 0, 6, 742, "", 0,
     0, VERDICT_BLOCK, "score:742>=600"},
    {"velocity over needs the score", PHONE_OK, 0, 0, 1, 6, -2, "", 0, 1,
     VERDICT_ALLOW, ""},
    {"velocity over a failed lookup", PHONE_OK, 0, 0, 0, 6, -3, "", 0, 0,
     VERDICT_CHALLENGE, "score_error:timeout"},
    {"pass", PHONE_OK, 0, 0, 1, 1, 999, "", 0, 0, VERDICT_ALLOW, "pass:valid"},
    {"needs a score", PHONE_OK, 0, 0, 0, 1, -2, "", 0, 1, VERDICT_ALLOW, ""},
    {"score block", PHONE_OK, 0, 0, 0, 1, 742, "", 0, 0, VERDICT_BLOCK,
     "score:742>=600"},
    {"score at block_at", PHONE_OK, 0, 0, 0, 1, 600, "", 0, 0, VERDICT_BLOCK,
     "score:600>=600"},
    {"score challenge band", PHONE_OK, 0, 0, 0, 1, 599, "", 0, 0,
     VERDICT_CHALLENGE, "score:599>=400"},
    {"score at challenge_at", PHONE_OK, 0, 0, 0, 1, 400, "", 0, 0,
     VERDICT_CHALLENGE, "score:400>=400"},
    {"score allow", PHONE_OK, 0, 0, 0, 1, 399, "", 0, 0, VERDICT_ALLOW,
     "score:399<400"},
    {"failed lookup", PHONE_OK, 0, 0, 0, 1, -3, "", 0, 0, VERDICT_CHALLENGE,
     "score_error:timeout"},
    {"recommendation allow", PHONE_OK, 0, 0, 0, 1, 900, "allow", 1, 0,
     VERDICT_ALLOW, "score:recommendation=allow"},
    {"recommendation flag", PHONE_OK, 0, 0, 0, 1, 10, "flag", 1, 0,
     VERDICT_CHALLENGE, "score:recommendation=flag"},
    {"recommendation block", PHONE_OK, 0, 0, 0, 1, 10, "block", 1, 0,
     VERDICT_BLOCK, "score:recommendation=block"},
    {"recommendation missing", PHONE_OK, 0, 0, 0, 1, 10, "", 1, 0,
     VERDICT_CHALLENGE, "score_error:recommendation_missing"},
    {"recommendation unknown", PHONE_OK, 0, 0, 0, 1, 10, "maybe", 1, 0,
     VERDICT_CHALLENGE, "score_error:recommendation_maybe"},
};

static void test_pipeline_table(void **state)
{
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const struct policy_case *t = &cases[i];
    struct config cfg = base();
    struct policy_inputs in = {0};
    struct policy_verdict v;
    struct score_result r;

    if (t->by_recommendation)
      cfg.screening.decide_by = DECIDE_BY_RECOMMENDATION;
    in.phone = t->phone;
    in.number = "15555550123";
    in.allow = t->allow ? &allow_entry : NULL;
    in.block = t->block ? &block_entry : NULL;
    in.has_pass = t->has_pass;
    in.velocity_count = t->velocity;
    if (t->score >= 0) {
      r = scored(t->score, t->recommendation);
      in.score = &r;
    } else if (t->score == -3) {
      r = failed("timeout");
      in.score = &r;
    }
    policy_decide(&cfg, &in, &v);
    if (v.needs_score != t->needs_score ||
        (!t->needs_score && v.verdict != t->verdict) ||
        strcmp(v.reason, t->reason) != 0)
      fail_msg("%s: got needs_score=%d %s '%s', want %d %s '%s'", t->name,
               v.needs_score, policy_verdict_name(v.verdict), v.reason,
               t->needs_score, policy_verdict_name(t->verdict), t->reason);
  }
}

/* velocity.action block decides at once; allow and challenge are floors. */
static void test_velocity_action(void **state)
{
  struct config cfg = base();
  struct policy_inputs in = {
      .phone = PHONE_OK, .number = "15555550123", .velocity_count = 6};
  struct policy_verdict v;
  struct score_result r = scored(10, "");

  (void)state;
  cfg.screening.velocity.action = VERDICT_BLOCK;
  policy_decide(&cfg, &in, &v);
  assert_false(v.needs_score);
  assert_int_equal(v.verdict, VERDICT_BLOCK);
  assert_string_equal(v.reason, "velocity:6/600s");
  cfg.screening.velocity.action = VERDICT_ALLOW;
  in.score = &r;
  r = scored(450, "");
  policy_decide(&cfg, &in, &v);
  assert_int_equal(v.verdict, VERDICT_CHALLENGE);
  assert_string_equal(v.reason, "score:450>=400");
  assert_int_equal(v.step, POLICY_STEP_SCORE);
  cfg.screening.velocity.action = VERDICT_CHALLENGE;
  r = scored(10, "");
  policy_decide(&cfg, &in, &v);
  assert_int_equal(v.verdict, VERDICT_CHALLENGE);
  assert_int_equal(v.step, POLICY_STEP_VELOCITY);
  assert_string_equal(v.trace, "normalise:ok allowlist:- blocklist:- "
                               "velocity:6/600s score:10<400");
}

static void test_trace_lists_every_step(void **state)
{
  struct config cfg = base();
  struct policy_inputs in = {0};
  struct policy_verdict v;
  struct score_result r = scored(742, "block");

  (void)state;
  in.phone = PHONE_OK;
  in.number = "15555550123";
  in.velocity_count = 2;
  in.score = &r;
  policy_decide(&cfg, &in, &v);
  assert_string_equal(v.trace, "normalise:ok allowlist:- blocklist:- "
                               "velocity:2/600s pass:- score:742>=600");
  assert_int_equal(v.step, POLICY_STEP_SCORE);
  /* With velocity off its step is left out. */
  cfg.screening.velocity.max_calls = 0;
  policy_decide(&cfg, &in, &v);
  assert_string_equal(v.trace, "normalise:ok allowlist:- blocklist:- "
                               "pass:- score:742>=600");
}

/* Stored inputs give the stored decision back under the same policy. */
static void test_replay_round_trip(void **state)
{
  struct config cfg = base();
  struct policy_inputs in = {0}, back;
  struct policy_replay storage;
  struct policy_verdict v, again;
  struct score_result r = scored(450, "flag");
  struct call c;

  (void)state;
  in.phone = PHONE_OK;
  in.number = "15555550450";
  in.velocity_count = 1;
  in.score = &r;
  policy_decide(&cfg, &in, &v);
  call_init(&c, "R");
  snprintf(c.caller, sizeof(c.caller), "15555550450");
  c.decision = CALL_DECISION_CHALLENGE;
  snprintf(c.trace, sizeof(c.trace), "%s", v.trace);
  c.velocity_count = 1;
  c.score = 450;
  snprintf(c.recommendation, sizeof(c.recommendation), "flag");
  snprintf(c.score_source, sizeof(c.score_source), "api");
  assert_int_equal(policy_inputs_from_call(&c, &storage, &back), 0);
  policy_decide(&cfg, &back, &again);
  assert_string_equal(again.reason, "score:450>=400");
  /* A stricter policy moves it. */
  cfg.screening.block_at = 400;
  policy_decide(&cfg, &back, &again);
  assert_int_equal(again.verdict, VERDICT_BLOCK);

  /* A list match is replayed from the trace, with no score needed. */
  snprintf(c.trace, sizeof(c.trace),
           "normalise:ok allowlist:- blocklist:+1555820*");
  c.score_source[0] = '\0';
  assert_int_equal(policy_inputs_from_call(&c, &storage, &back), 0);
  assert_non_null(back.block);
  assert_string_equal(back.block->entry, "1555820*");
  policy_decide(&cfg, &back, &again);
  assert_string_equal(again.reason, "blocklist:+1555820*");

  /* Decided without a score, needing one now: said so. */
  snprintf(c.trace, sizeof(c.trace),
           "normalise:ok allowlist:- blocklist:- velocity:9/600s");
  c.velocity_count = 9;
  assert_int_equal(policy_inputs_from_call(&c, &storage, &back), 0);
  cfg.screening.velocity.max_calls = 20;
  policy_decide(&cfg, &back, &again);
  assert_true(again.needs_score);

  c.decision = CALL_DECISION_NONE;
  assert_int_equal(policy_inputs_from_call(&c, &storage, &back), -1);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pipeline_table),
      cmocka_unit_test(test_velocity_action),
      cmocka_unit_test(test_trace_lists_every_step),
      cmocka_unit_test(test_replay_round_trip),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
