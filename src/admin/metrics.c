/* The Prometheus exposition (see metrics.h). */
#include <inttypes.h>

#include "../screen/policy.h"
#include "metrics.h"

/* The # HELP and # TYPE lines of a family. */
static int family(struct buf *b, const char *name, const char *type,
                  const char *help)
{
  return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A histogram of milliseconds, exposed in seconds as Prometheus wants. */
static int histogram(struct buf *b, const char *name, const char *help,
                     const struct histogram *h)
{
  uint64_t cumulative = 0;
  int rc = family(b, name, "histogram", help);

  for (size_t i = 0; !rc && i < HISTOGRAM_BUCKETS; i++) {
    cumulative += h->counts[i];
    rc = buf_printf(b, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name,
                    histogram_bounds_ms[i] / 1000.0, cumulative);
  }
  if (!rc)
    rc = buf_printf(b,
                    "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n"
                    "%s_count %" PRIu64 "\n",
                    name, h->count, name, h->sum_ms / 1000.0, name, h->count);
  return rc;
}

static int calls(struct buf *b, const struct screening_stats *s)
{
  int rc = family(b, "vs_calls_total", "counter",
                  "Calls decided, by verdict and deciding pipeline step.");

  for (int v = VERDICT_ALLOW; !rc && v <= VERDICT_BLOCK; v++)
    for (int st = POLICY_STEP_NORMALISE; !rc && st <= POLICY_STEP_SCORE_ERROR;
         st++)
      rc = buf_printf(
          b, "vs_calls_total{decision=\"%s\",step=\"%s\"} %" PRIu64 "\n",
          policy_verdict_name((enum config_verdict)v),
          policy_step_name((enum policy_step)st), s->decided[v][st]);
  if (!rc)
    rc = family(b, "vs_challenges_total", "counter", "Challenge outcomes.");
  if (!rc)
    rc = buf_printf(b,
                    "vs_challenges_total{result=\"passed\"} %" PRIu64 "\n"
                    "vs_challenges_total{result=\"failed\"} %" PRIu64 "\n",
                    s->challenges_passed, s->challenges_failed);
  if (!rc)
    rc = family(b, "vs_score_cache_hits_total", "counter",
                "Decisions made on a cached score, with no lookup.");
  if (!rc)
    rc = buf_printf(b, "vs_score_cache_hits_total %" PRIu64 "\n",
                    s->cache_hits);
  return rc;
}

static int webhook(struct buf *b, const struct metrics_snapshot *m)
{
  static const char *const events[] = {
      [VOICE_EVENT_OTHER] = "other",
      [VOICE_EVENT_INCOMING_CALL] = "incoming_call",
      [VOICE_EVENT_SPEAK_COMPLETED] = "speak_completed",
      [VOICE_EVENT_PLAY_COMPLETED] = "play_completed",
      [VOICE_EVENT_DIAL_COMPLETED] = "dial_completed",
      [VOICE_EVENT_CALL_LEG_COMPLETED] = "call_leg_completed",
      [VOICE_EVENT_CALL_COMPLETED] = "call_completed"};
  static const char *const classes[] = {"2xx", "4xx", "5xx"};
  const struct webhook_stats *w = m->webhook;
  int rc = family(b, "vs_events_total", "counter",
                  "Webhook events accepted, by TeleSign event name.");

  for (size_t i = 0; !rc && i < sizeof(events) / sizeof(events[0]); i++)
    rc = buf_printf(b, "vs_events_total{event=\"%s\"} %" PRIu64 "\n",
                    events[i], w->events[i]);
  if (!rc)
    rc = family(b, "vs_webhook_requests_total", "counter",
                "Webhook answers by HTTP status class.");
  for (size_t i = 0; !rc && i < 3; i++)
    rc = buf_printf(b, "vs_webhook_requests_total{code=\"%s\"} %" PRIu64 "\n",
                    classes[i], w->answers[i]);
  if (!rc)
    rc = family(b, "vs_webhook_unverified_total", "counter",
                "Events whose TeleSign signature did not check out.");
  if (!rc)
    rc = buf_printf(b, "vs_webhook_unverified_total %" PRIu64 "\n",
                    w->unverified);
  if (!rc)
    rc = histogram(b, "vs_webhook_duration_seconds",
                   "Time from a complete event to its answer.", &w->duration);
  if (!rc)
    rc = family(b, "vs_requests_in_flight", "gauge",
                "Webhook requests received and not yet answered.");
  if (!rc)
    rc = buf_printf(b, "vs_requests_in_flight %zu\n", m->requests_in_flight);
  return rc;
}

static int score(struct buf *b, const struct metrics_snapshot *m)
{
  int rc = family(b, "vs_score_lookups_total", "counter",
                  "Score API lookups, by outcome (ok or why they failed).");

  for (int f = SCORE_OK; !rc && f <= SCORE_FAIL_BREAKER; f++)
    rc = buf_printf(b, "vs_score_lookups_total{outcome=\"%s\"} %" PRIu64 "\n",
                    f == SCORE_OK ? "ok"
                                  : score_failure_name((enum score_failure)f),
                    m->score->outcomes[f]);
  if (!rc)
    rc = histogram(b, "vs_score_duration_seconds", "Score API lookup latency.",
                   &m->score->latency);
  if (!rc)
    rc = family(b, "vs_score_breaker_open", "gauge",
                "1 while the circuit breaker skips Score lookups.");
  if (!rc)
    rc = buf_printf(b, "vs_score_breaker_open %d\n", m->breaker_open);
  return rc;
}

static int store(struct buf *b, const struct metrics_snapshot *m)
{
  int rc = family(b, "vs_store_queue_depth", "gauge",
                  "Store operations queued and not yet committed.");

  if (!rc)
    rc = buf_printf(b, "vs_store_queue_depth %zu\n", m->store_queue_depth);
  if (!rc)
    rc = family(b, "vs_store_errors_total", "counter",
                "Failed store batches and writes dropped at a full queue.");
  if (!rc)
    rc = buf_printf(b, "vs_store_errors_total %" PRIu64 "\n",
                    m->store.failed + m->store.dropped);
  if (!rc)
    rc = family(b, "vs_store_commit_waits_total", "counter",
                "Decisions answered after their record's commit, not at "
                "once from the answer log: the store was a few milliseconds "
                "behind or the log full.");
  if (!rc)
    rc = buf_printf(b, "vs_store_commit_waits_total %" PRIu64 "\n",
                    m->store.log_waits);
  if (!rc)
    rc = family(b, "vs_store_healthy", "gauge",
                "1 while the store's last batch committed.");
  if (!rc)
    rc = buf_printf(b, "vs_store_healthy %d\n", m->store_healthy);
  return rc;
}

int metrics_render(const struct metrics_snapshot *m, struct buf *out)
{
  int rc =
      family(out, "vs_build_info", "gauge", "The server's version; always 1.");

  if (!rc)
    rc = buf_printf(out, "vs_build_info{version=\"%s\"} 1\n", VS_VERSION);
  if (!rc)
    rc = family(out, "vs_start_time_seconds", "gauge",
                "Unix time the server started.");
  if (!rc)
    rc = buf_printf(out, "vs_start_time_seconds %" PRId64 "\n",
                    m->start_time_s);
  if (!rc)
    rc = calls(out, m->screening);
  if (!rc)
    rc = webhook(out, m);
  if (!rc)
    rc = score(out, m);
  if (!rc)
    rc = store(out, m);
  return rc;
}
