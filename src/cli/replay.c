/*
 * `voice-and-score replay --config NEW.yaml [--since 7d]`: re-decides the
 * stored calls under another policy, from the inputs each call recorded
 * (list match, velocity, pass, Score result), with no new lookup, and
 * prints how many decisions would change, which way, and for which
 * numbers. This is how a threshold is tried before it is deployed.
 */
#include <stdio.h>
#include <string.h>

#include "../config/config.h"
#include "../screen/policy.h"
#include "../store/store.h"
#include "commands.h"

#define SHOW_NUMBERS 20

static const char replay_usage[] =
    "usage: voice-and-score replay --config NEW.yaml [--since DURATION]\n"
    "\n"
    "Re-decides the calls recorded in NEW.yaml's store (default: the last\n"
    "7 days) under NEW.yaml's screening policy, from the inputs each call\n"
    "recorded; no Score lookup is made. Calls the new policy would need a\n"
    "score for, but which were decided without one, are counted apart.\n";

/* Verdicts as call decisions, for comparison with the stored ones. */
static const enum call_decision of_verdict[] = {
    [VERDICT_ALLOW] = CALL_DECISION_ALLOW,
    [VERDICT_CHALLENGE] = CALL_DECISION_CHALLENGE,
    [VERDICT_BLOCK] = CALL_DECISION_BLOCK};

struct replay {
  const struct config *cfg;
  unsigned calls, changed, unknown, undecided;
  unsigned moves[4][4]; /* [from][to] by enum call_decision */
  unsigned shown;
};

static int replay_row(void *arg, const struct call *c)
{
  struct replay *r = arg;
  struct policy_replay storage;
  struct policy_inputs in;
  struct policy_verdict v;
  enum call_decision now;

  if (policy_inputs_from_call(c, &storage, &in)) {
    r->undecided++;
    return 0;
  }
  r->calls++;
  policy_decide(r->cfg, &in, &v);
  if (v.needs_score) {
    r->unknown++;
    return 0;
  }
  now = of_verdict[v.verdict];
  if (now == c->decision)
    return 0;
  r->changed++;
  r->moves[c->decision][now]++;
  if (r->shown++ < SHOW_NUMBERS)
    printf("  %-15s %-9s -> %-9s  was %s, now %s\n",
           c->caller[0] ? c->caller : "(unscorable)",
           call_decision_name(c->decision), call_decision_name(now), c->reason,
           v.reason);
  return 0;
}

int cmd_replay(int argc, char **argv)
{
  struct store_query q = {.oldest_first = 1};
  struct replay r = {0};
  struct config *cfg;
  const char *path = NULL, *since;
  char err[512];
  int status;

  status = cli_history_args(argc, argv, replay_usage, "7d", &path, &since,
                            &q.since_ms);
  if (status >= 0)
    return status;
  status = 1;
  cfg = cli_load_config_as(path, 0);
  if (!cfg)
    return path ? 1 : EXIT_USAGE;
  r.cfg = cfg;
  printf("replaying calls of the last %s under %s (policy %s)\n", since,
         cfg->path, cfg->policy_version);
  if (store_calls_list(cfg->store.location, &q, replay_row, &r, err,
                       sizeof(err))) {
    fprintf(stderr, "voice-and-score: %s\n", err);
    goto out;
  }
  if (r.shown > SHOW_NUMBERS)
    printf("  ... and %u more\n", r.shown - SHOW_NUMBERS);
  printf("%u calls replayed, %u would change, %u unchanged, %u need a "
         "lookup they did not have\n",
         r.calls, r.changed, r.calls - r.changed - r.unknown, r.unknown);
  for (int from = 1; from < 4; from++)
    for (int to = 1; to < 4; to++)
      if (r.moves[from][to])
        printf("  %s -> %s: %u\n",
               call_decision_name((enum call_decision)from),
               call_decision_name((enum call_decision)to), r.moves[from][to]);
  status = 0;
out:
  config_free(cfg);
  return status;
}
