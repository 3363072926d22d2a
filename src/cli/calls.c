/*
 * `voice-and-score calls`: the recorded calls, newest first, as a table,
 * JSON or CSV. It reads the database read-only, so it can run next to a
 * live server.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../config/config.h"
#include "../screen/lists.h"
#include "../screen/phone.h"
#include "../store/store.h"
#include "../store/call_json.h"
#include "commands.h"

enum format { FORMAT_TABLE, FORMAT_JSON, FORMAT_CSV };

static const char calls_usage[] =
    "usage: voice-and-score calls --config FILE [--format table|json|csv] "
    "[--limit N]\n"
    "         [--decision allow|challenge|block] [--caller NUMBER] "
    "[--since DURATION]\n"
    "\n"
    "Lists recorded calls, newest first (default limit 50; 0 = all):\n"
    "reference_id, start time, caller, decision, score, the reason of the\n"
    "step that decided, digits pressed, department dialled, status and\n"
    "duration. JSON adds the whole decision trace and the policy version.\n"
    "--since takes a duration such as 7d or 12h.\n";

struct printer {
  enum format format;
  json_t *array;
  unsigned rows;
};

static void format_time(int64_t ms, char *out, size_t size)
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;

  if (ms <= 0 || !gmtime_r(&t, &tm)) {
    snprintf(out, size, "-");
    return;
  }
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The call's status as a user reads it: TeleSign's, or where it stands. */
static const char *status_of(const struct call *c)
{
  return c->status[0] ? c->status : call_step_name(c->step);
}

static void csv_field(const char *s, int last)
{
  if (strpbrk(s, ",\"\r\n")) {
    putchar('"');
    for (; *s; s++) {
      if (*s == '"')
        putchar('"');
      putchar(*s);
    }
    putchar('"');
  } else {
    fputs(s, stdout);
  }
  putchar(last ? '\n' : ',');
}

static const char *const columns[] = {
    "reference_id", "started", "caller",     "decision", "score",
    "reason",       "digits",  "department", "status",   "duration_s"};

static int print_row(void *arg, const struct call *c)
{
  struct printer *p = arg;
  char started[32];
  char score[16];
  char duration[16];
  const char *caller = c->caller[0] ? c->caller : c->caller_raw;

  format_time(c->started_ms, started, sizeof(started));
  snprintf(score, sizeof(score), "%d", c->score);
  snprintf(duration, sizeof(duration), "%d", c->duration_s);
  p->rows++;
  switch (p->format) {
  case FORMAT_TABLE:
    printf("%-32.32s  %-20s  %-15.15s  %-9s  %5s  %-26.26s  %-6.6s  "
           "%-12.12s  %-11.11s  %s\n",
           c->ref, started, caller[0] ? caller : "(none)",
           call_decision_name(c->decision), c->score >= 0 ? score : "-",
           c->reason, c->digits[0] ? c->digits : "-",
           c->department[0] ? c->department : "-", status_of(c),
           c->duration_s >= 0 ? duration : "-");
    break;
  case FORMAT_CSV: {
    const char *f[] = {c->ref,
                       started,
                       caller,
                       call_decision_name(c->decision),
                       c->score >= 0 ? score : "",
                       c->reason,
                       c->digits,
                       c->department,
                       status_of(c),
                       c->duration_s >= 0 ? duration : ""};

    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
      csv_field(f[i], i + 1 == sizeof(f) / sizeof(f[0]));
    break;
  }
  case FORMAT_JSON: {
    json_t *o = call_to_json(c);

    if (!o || json_array_append_new(p->array, o))
      return 1;
    break;
  }
  }
  return 0;
}

int cmd_calls(int argc, char **argv)
{
  static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                       {"format", required_argument, 0, 'f'},
                                       {"limit", required_argument, 0, 'l'},
                                       {"decision", required_argument, 0, 'd'},
                                       {"caller", required_argument, 0, 'n'},
                                       {"since", required_argument, 0, 's'},
                                       {0, 0, 0, 0}};
  char caller[PHONE_BUF_SIZE];
  const char *caller_raw = NULL;
  int64_t seconds;
  struct printer p = {.format = FORMAT_TABLE};
  struct store_query q = {.limit = 50};
  struct config *cfg;
  const char *path = NULL;
  char err[512];
  char *end;
  int status = 1;
  int c;

  if (wants_help(argc, argv)) {
    fputs(calls_usage, stdout);
    return 0;
  }
  while ((c = getopt_long(argc, argv, "c:f:l:d:n:s:", opts, NULL)) != -1) {
    switch (c) {
    case 'c':
      path = optarg;
      break;
    case 'f':
      if (strcmp(optarg, "table") == 0)
        p.format = FORMAT_TABLE;
      else if (strcmp(optarg, "json") == 0)
        p.format = FORMAT_JSON;
      else if (strcmp(optarg, "csv") == 0)
        p.format = FORMAT_CSV;
      else {
        fprintf(stderr, "--format must be table, json or csv\n");
        return EXIT_USAGE;
      }
      break;
    case 'l':
      q.limit = (unsigned)strtoul(optarg, &end, 10);
      if (*end || *optarg == '-' || !*optarg) {
        fprintf(stderr, "--limit must be a number\n");
        return EXIT_USAGE;
      }
      break;
    case 'd':
      if (call_decision_parse(optarg) <= CALL_DECISION_NONE) {
        fprintf(stderr, "--decision must be allow, challenge or block\n");
        return EXIT_USAGE;
      }
      q.decision = optarg;
      break;
    case 'n':
      caller_raw = optarg;
      break;
    case 's':
      if (list_parse_duration(optarg, &seconds)) {
        fprintf(stderr, "--since '%s' is not a duration like 7d or 12h\n",
                optarg);
        return EXIT_USAGE;
      }
      q.since_ms = ((int64_t)time(NULL) - seconds) * 1000;
      break;
    default:
      fputs(calls_usage, stderr);
      return EXIT_USAGE;
    }
  }
  if (optind != argc) {
    fputs(calls_usage, stderr);
    return EXIT_USAGE;
  }
  cfg = cli_load_config_as(path, 0);
  if (!cfg)
    return path ? 1 : EXIT_USAGE;
  if (caller_raw) {
    enum phone_result pr =
        phone_normalise(caller_raw, cfg->screening.default_country, caller);

    if (pr != PHONE_OK) {
      fprintf(stderr, "--caller '%s' is not a number: %s\n", caller_raw,
              phone_result_name(pr));
      config_free(cfg);
      return EXIT_USAGE;
    }
    q.caller = caller;
  }
  if (p.format == FORMAT_JSON && !(p.array = json_array()))
    goto out;
  if (p.format == FORMAT_TABLE)
    printf("%-32s  %-20s  %-15s  %-9s  %5s  %-26s  %-6s  %-12s  %-11s  %s\n",
           "REFERENCE_ID", "STARTED", "CALLER", "DECISION", "SCORE", "REASON",
           "DIGITS", "DEPARTMENT", "STATUS", "DURATION");
  else if (p.format == FORMAT_CSV)
    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
      csv_field(columns[i], i + 1 == sizeof(columns) / sizeof(columns[0]));
  if (store_calls_list(cfg->store.location, &q, print_row, &p, err,
                       sizeof(err))) {
    fprintf(stderr, "voice-and-score: %s\n", err);
    goto out;
  }
  if (p.format == FORMAT_JSON) {
    json_dumpf(p.array, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
  }
  status = 0;
out:
  json_decref(p.array);
  config_free(cfg);
  return status;
}
