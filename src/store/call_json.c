/* Call records as JSON (see call_json.h). */
#include <stdio.h>
#include <time.h>

#include "call_json.h"

/* Unix ms as "2026-12-01T08:00:00Z", for people reading the output. */
static void iso_time(int64_t ms, char out[32])
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;

  if (ms <= 0 || !gmtime_r(&t, &tm))
    out[0] = '\0';
  else
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* An integer that a record keeps as -1 when unknown. */
static json_t *maybe(int64_t v)
{
  return v >= 0 ? json_integer(v) : json_null();
}

json_t *call_to_json(const struct call *c)
{
  char started[32];

  iso_time(c->started_ms, started);
  return json_pack(
      "{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:o, "
      "s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:i, s:s, s:I, s:s, s:s, s:s, "
      "s:s, s:s, s:s, s:o, s:I, s:s}",
      "ref", c->ref, "started", started, "started_ms",
      (json_int_t)c->started_ms, "updated_ms", (json_int_t)c->updated_ms,
      "caller", c->caller, "caller_raw", c->caller_raw, "to", c->to, "state",
      call_step_name(c->step), "decision", call_decision_name(c->decision),
      "reason", c->reason, "shadow", c->shadow, "policy_version",
      c->policy_version, "score", maybe(c->score), "risk_level", c->risk_level,
      "recommendation", c->recommendation, "phone_type", c->phone_type,
      "score_source", c->score_source, "score_ms", maybe(c->score_ms),
      "score_error", c->score_error, "score_ref", c->score_ref,
      "velocity_count", (int)c->velocity_count, "challenge_digit",
      c->challenge_digit, "challenge_tries", (json_int_t)c->challenge_tries,
      "challenge_result", c->challenge_result, "digits", c->digits,
      "department", c->department, "dialled", c->dialled, "dial_status",
      c->dial_status, "status", c->status, "duration_s", maybe(c->duration_s),
      "ended_ms", (json_int_t)c->ended_ms, "trace", c->trace);
}

json_t *list_entry_to_json(const struct list_entry *e)
{
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:I, s:I}", "kind", list_kind_name(e->kind),
      "entry", e->entry, "note", e->note, "source", e->source, "created_ms",
      (json_int_t)e->created_ms, "expires_ms", (json_int_t)e->expires_ms);
}
