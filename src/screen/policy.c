/*
 * The screening pipeline (see policy.h). Each step appends its outcome to
 * the trace, whether it decides or not, so that a call's record shows why
 * every earlier step let it through.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../store/call.h"
#include "policy.h"

static const char *const verdict_names[] = {"allow", "challenge", "block"};

static const char *const step_names[] = {
    "normalise", "allowlist", "blocklist",  "velocity",
    "pass",      "score",     "score_error"};

const char *policy_verdict_name(enum config_verdict v)
{
  return (size_t)v < sizeof(verdict_names) / sizeof(verdict_names[0])
             ? verdict_names[v]
             : "unknown";
}

const char *policy_step_name(enum policy_step s)
{
  return (size_t)s < sizeof(step_names) / sizeof(step_names[0]) ? step_names[s]
                                                                : "unknown";
}

/*
 * Records a step's outcome "name:detail": appended to the trace (cut when
 * full) and kept as the reason, so that the step that decides leaves its
 * own outcome there.
 */
/*
 * Sets the verdict's reason to "step:detail" and appends it to the trace.
 * Built by hand: this runs six times per call, and formatting with
 * snprintf was a visible share of a cache-hit call's instructions. Step
 * names are far shorter than the reason.
 */
static void note_text(struct policy_verdict *out, enum policy_step step,
                      const char *detail)
{
  const char *name = policy_step_name(step);
  size_t nlen = strlen(name);
  size_t dlen = strlen(detail);
  size_t len = strlen(out->trace);
  size_t rlen;

  if (dlen > sizeof(out->reason) - nlen - 2)
    dlen = sizeof(out->reason) - nlen - 2;
  memcpy(out->reason, name, nlen);
  out->reason[nlen] = ':';
  memcpy(out->reason + nlen + 1, detail, dlen);
  rlen = nlen + 1 + dlen;
  out->reason[rlen] = '\0';
  if (len && len < sizeof(out->trace) - 1)
    out->trace[len++] = ' ';
  if (rlen > sizeof(out->trace) - 1 - len)
    rlen = sizeof(out->trace) - 1 - len;
  memcpy(out->trace + len, out->reason, rlen);
  out->trace[len + rlen] = '\0';
}

/* note_text with a detail formatted by printf's rules. */
static void note(struct policy_verdict *out, enum policy_step step,
                 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void note(struct policy_verdict *out, enum policy_step step,
                 const char *fmt, ...)
{
  char detail[sizeof(out->reason)];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  note_text(out, step, detail);
}

/* Ends the pipeline at `step`, whose note() is the reason. */
static void decide(struct policy_verdict *out, enum policy_step step,
                   enum config_verdict v)
{
  out->needs_score = 0;
  out->verdict = v;
  out->step = step;
}

/* The verdict TeleSign's recommendation maps to; -1 if unknown. */
static int from_recommendation(const char *r)
{
  if (strcmp(r, "allow") == 0)
    return VERDICT_ALLOW;
  if (strcmp(r, "flag") == 0)
    return VERDICT_CHALLENGE;
  if (strcmp(r, "block") == 0)
    return VERDICT_BLOCK;
  return -1;
}

static void decide_on_score(const struct config *cfg,
                            const struct score_result *res,
                            struct policy_verdict *out)
{
  uint32_t block_at = cfg->screening.block_at;
  uint32_t challenge_at = cfg->screening.challenge_at;
  int v;

  if (res->failure != SCORE_OK) {
    note_text(out, POLICY_STEP_SCORE_ERROR,
              res->error[0] ? res->error : score_failure_name(res->failure));
    decide(out, POLICY_STEP_SCORE_ERROR, cfg->screening.on_score_error);
    return;
  }
  if (cfg->screening.decide_by == DECIDE_BY_RECOMMENDATION) {
    v = from_recommendation(res->recommendation);
    if (v < 0) {
      /* An answer without a usable recommendation is a failed lookup for
       * this policy, not a reason to let the caller in. */
      note(out, POLICY_STEP_SCORE_ERROR, "recommendation_%s",
           res->recommendation[0] ? res->recommendation : "missing");
      decide(out, POLICY_STEP_SCORE_ERROR, cfg->screening.on_score_error);
      return;
    }
    note(out, POLICY_STEP_SCORE, "recommendation=%s", res->recommendation);
    decide(out, POLICY_STEP_SCORE, (enum config_verdict)v);
    return;
  }
  if ((uint32_t)res->score >= block_at) {
    note(out, POLICY_STEP_SCORE, "%d>=%u", res->score, block_at);
    decide(out, POLICY_STEP_SCORE, VERDICT_BLOCK);
  } else if ((uint32_t)res->score >= challenge_at) {
    note(out, POLICY_STEP_SCORE, "%d>=%u", res->score, challenge_at);
    decide(out, POLICY_STEP_SCORE, VERDICT_CHALLENGE);
  } else {
    note(out, POLICY_STEP_SCORE, "%d<%u", res->score, challenge_at);
    decide(out, POLICY_STEP_SCORE, VERDICT_ALLOW);
  }
}

void policy_decide(const struct config *cfg, const struct policy_inputs *in,
                   struct policy_verdict *out)
{
  const struct config *c = cfg;
  char velocity_reason[sizeof(out->reason)];
  int over = 0;

  memset(out, 0, sizeof(*out));
  if (in->phone != PHONE_OK) {
    note_text(out, POLICY_STEP_NORMALISE, phone_result_name(in->phone));
    decide(out, POLICY_STEP_NORMALISE, c->screening.anonymous);
    return;
  }
  note_text(out, POLICY_STEP_NORMALISE, "ok");
  if (in->allow) {
    note(out, POLICY_STEP_ALLOWLIST, "+%s", in->allow->entry);
    decide(out, POLICY_STEP_ALLOWLIST, VERDICT_ALLOW);
    return;
  }
  note_text(out, POLICY_STEP_ALLOWLIST, "-");
  if (in->block) {
    note(out, POLICY_STEP_BLOCKLIST, "+%s", in->block->entry);
    decide(out, POLICY_STEP_BLOCKLIST, VERDICT_BLOCK);
    return;
  }
  note_text(out, POLICY_STEP_BLOCKLIST, "-");
  if (c->screening.velocity.max_calls) {
    note(out, POLICY_STEP_VELOCITY, "%u/%us", in->velocity_count,
         c->screening.velocity.window_s);
    if (in->velocity_count > c->screening.velocity.max_calls) {
      if (c->screening.velocity.action == VERDICT_BLOCK) {
        decide(out, POLICY_STEP_VELOCITY, VERDICT_BLOCK);
        return;
      }
      /* A milder velocity action is a floor, not the verdict: a number
       * that redials must never get less than its score would give it,
       * so the score still decides when it is the more severe. */
      over = 1;
      memcpy(velocity_reason, out->reason, sizeof(velocity_reason));
    }
  }
  if (!over) {
    if (in->has_pass) {
      note_text(out, POLICY_STEP_PASS, "valid");
      decide(out, POLICY_STEP_PASS, VERDICT_ALLOW);
      return;
    }
    note_text(out, POLICY_STEP_PASS, "-");
  }
  if (!in->score) {
    out->needs_score = 1;
    out->reason[0] = '\0'; /* nothing decided yet */
    return;
  }
  decide_on_score(c, in->score, out);
  if (over && c->screening.velocity.action > out->verdict) {
    out->verdict = c->screening.velocity.action;
    out->step = POLICY_STEP_VELOCITY;
    memcpy(out->reason, velocity_reason, sizeof(out->reason));
  }
}

/* The detail of the trace entry for `step` ("allowlist:+1555*" gives
 * "+1555*"), copied into `out`; 0 when the step is not in the trace. */
static int trace_detail(const char *trace, enum policy_step step, char *out,
                        size_t size)
{
  const char *name = policy_step_name(step);
  size_t len = strlen(name);

  for (const char *p = trace; p && *p; p = strchr(p, ' '), p = p ? p + 1 : p)
    if (strncmp(p, name, len) == 0 && p[len] == ':') {
      size_t n = strcspn(p + len + 1, " ");

      snprintf(out, size, "%.*s", (int)n, p + len + 1);
      return 1;
    }
  return 0;
}

static int replay_entry(const char *trace, enum policy_step step,
                        enum list_kind kind, struct list_entry *e)
{
  char detail[64];

  if (!trace_detail(trace, step, detail, sizeof(detail)) || detail[0] != '+')
    return 0;
  memset(e, 0, sizeof(*e));
  e->kind = kind;
  call_set(e->entry, sizeof(e->entry), detail + 1);
  return 1;
}

int policy_inputs_from_call(const struct call *c, struct policy_replay *store,
                            struct policy_inputs *in)
{
  char detail[64];

  if (c->decision == CALL_DECISION_NONE || !c->trace[0])
    return -1;
  memset(in, 0, sizeof(*in));
  in->number = c->caller;
  in->phone = PHONE_OK;
  if (trace_detail(c->trace, POLICY_STEP_NORMALISE, detail, sizeof(detail)) &&
      strcmp(detail, "ok") != 0) {
    in->phone = PHONE_INVALID;
    for (int r = PHONE_OK; r <= PHONE_TOO_LONG; r++)
      if (strcmp(detail, phone_result_name((enum phone_result)r)) == 0)
        in->phone = (enum phone_result)r;
  }
  if (replay_entry(c->trace, POLICY_STEP_ALLOWLIST, LIST_ALLOW, &store->allow))
    in->allow = &store->allow;
  if (replay_entry(c->trace, POLICY_STEP_BLOCKLIST, LIST_BLOCK, &store->block))
    in->block = &store->block;
  in->velocity_count = c->velocity_count > 0 ? (unsigned)c->velocity_count : 0;
  in->has_pass =
      trace_detail(c->trace, POLICY_STEP_PASS, detail, sizeof(detail)) &&
      strcmp(detail, "valid") == 0;
  if (c->score_source[0]) {
    struct score_result *r = &store->score;

    memset(r, 0, sizeof(*r));
    r->score = c->score;
    snprintf(r->level, sizeof(r->level), "%s", c->risk_level);
    snprintf(r->recommendation, sizeof(r->recommendation), "%s",
             c->recommendation);
    snprintf(r->error, sizeof(r->error), "%s", c->score_error);
    /* The kind of a stored failure no longer matters: only on_score_error
     * and the recorded reason text do. */
    r->failure = c->score_error[0] ? SCORE_FAIL_INTERNAL : SCORE_OK;
    in->score = r;
  }
  return 0;
}
