/*
 * `voice-and-score stats --config FILE [--since 7d]`: what the screening
 * did: calls, allowed / challenged / blocked counts and rates, how many
 * challenges were passed, and how many Score lookups were made against how
 * many the cache, shared lookups and the lists saved.
 */
#include <stdio.h>
#include <string.h>

#include "../config/config.h"
#include "../store/store.h"
#include "commands.h"

static const char stats_usage[] =
    "usage: voice-and-score stats --config FILE [--since DURATION]\n"
    "\n"
    "Counts the recorded calls of the last DURATION (default 7d): decisions\n"
    "and their rates, challenge pass rate, Score lookups made and saved.\n";

struct stats {
  unsigned calls, by_decision[4], shadow;
  unsigned passed, failed;
  unsigned lookups, cached, shared, no_lookup;
};

static int stats_row(void *arg, const struct call *c)
{
  struct stats *s = arg;

  if (c->decision == CALL_DECISION_NONE)
    return 0; /* a call_completed for a call we never screened */
  s->calls++;
  s->by_decision[c->decision]++;
  s->shadow += c->shadow != 0;
  s->passed += strcmp(c->challenge_result, "passed") == 0;
  s->failed += strcmp(c->challenge_result, "failed") == 0;
  if (strcmp(c->score_source, "api") == 0)
    s->lookups++;
  else if (strcmp(c->score_source, "cache") == 0)
    s->cached++;
  else if (strcmp(c->score_source, "shared") == 0)
    s->shared++;
  else
    s->no_lookup++;
  return 0;
}

static double pct(unsigned n, unsigned of)
{
  return of ? 100.0 * n / of : 0.0;
}

int cmd_stats(int argc, char **argv)
{
  struct store_query q = {0};
  struct stats s = {0};
  struct config *cfg;
  const char *path = NULL, *since;
  char err[512];
  int status;

  status = cli_history_args(argc, argv, stats_usage, "7d", &path, &since,
                            &q.since_ms);
  if (status >= 0)
    return status;
  status = 1;
  cfg = cli_load_config_as(path, 0);
  if (!cfg)
    return path ? 1 : EXIT_USAGE;
  if (store_calls_list(cfg->store.location, &q, stats_row, &s, err,
                       sizeof(err))) {
    fprintf(stderr, "voice-and-score: %s\n", err);
    goto out;
  }
  printf("calls (last %s):      %u\n", since, s.calls);
  printf("  allowed:            %u (%.1f%%)\n", s.by_decision[1],
         pct(s.by_decision[1], s.calls));
  printf("  challenged:         %u (%.1f%%)\n", s.by_decision[3],
         pct(s.by_decision[3], s.calls));
  printf("  blocked:            %u (%.1f%%)\n", s.by_decision[2],
         pct(s.by_decision[2], s.calls));
  if (s.shadow)
    printf("  in shadow mode:     %u (given the menu whatever the "
           "decision)\n",
           s.shadow);
  printf("challenges:           %u passed, %u failed (pass rate %.1f%%)\n",
         s.passed, s.failed, pct(s.passed, s.passed + s.failed));
  printf("score lookups:        %u made\n", s.lookups);
  printf("  saved by the cache: %u\n", s.cached);
  printf("  shared in flight:   %u\n", s.shared);
  printf("  not needed:         %u (lists, pass, velocity, unscorable)\n",
         s.no_lookup);
  status = 0;
out:
  config_free(cfg);
  return status;
}
