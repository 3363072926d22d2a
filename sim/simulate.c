/*
 * voice-and-score-sim: the screening-efficacy traffic simulator.
 *
 * It draws a run of days of inbound calls from the seeded model (model.h),
 * then, for each policy (the baseline first), starts real voice-and-score
 * servers on fresh stores with that policy, which run for the whole run
 * while the simulated clock goes through the days (so cached scores,
 * passes and block list entries carry over from day to day as in
 * production), starts a Score API double that answers from the model
 * (score_model.h), plays every call through the server's webhook over
 * HTTP as TeleSign would, with each caller keying what the model says, and
 * counts what the server did to each class of caller, over the whole run
 * and on its last day. It decides nothing itself: every verdict is the
 * server's.
 *
 * Determinism: calls are sent in the run's order with at most
 * --concurrency in flight, never two of one number at once, and a server
 * gets a call only once the one before it is past screening (struct
 * shard); every event carries the call's simulated time (X-Simulated-Time,
 * for serve --simulated-clock); a caller's keys come from a PRNG seeded
 * per call and a lookup's answer from (seed, number, n-th lookup). So a
 * seed gives the same figures on every run, ring times aside, even where a
 * repeat call lands at the end of a cache, pass or block list TTL.
 *
 * See sim/README.md for the options and docs/screening-efficacy.md for
 * the model.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "../src/telesign/voice.h"
#include "model.h"
#include "score_model.h"

#define MAX_POLICIES   32
#define MAX_TURNS      40
#define ANSWER_MAX     16384
#define START_WAIT_MS  15000
#define STOP_WAIT_MS   20000
#define BASELINE       "baseline"

/* The menu every policy's server gets: three departments. */
#define GREETING                                                              \
  "Thank you for calling. For Sales, press 1. For Support, press 2. For "     \
  "Billing, press 3."
#define MENU_OPTIONS 3

/* The seed's policy: block at 600, one lookup per call, nothing else. */
static const char baseline_yaml[] = "screening:\n"
                                    "  block_at: 600\n"
                                    "  challenge_at: 600\n"
                                    "  score_cache_ttl_s: 0\n"
                                    "  anonymous: allow\n"
                                    "  on_score_error: allow\n"
                                    "  velocity:\n"
                                    "    max_calls: 0\n";

static const char usage[] =
    "usage: voice-and-score-sim [options]\n"
    "\n"
    "Plays a seeded run of days of inbound calls through real\n"
    "voice-and-score servers once per policy (the baseline always first)\n"
    "and prints, per policy, what the servers did to each class of caller,\n"
    "over the whole run and on its last day.\n"
    "\n"
    "Policies:\n"
    "  --policy NAME=FILE   a YAML file holding one `screening:` mapping\n"
    "                       (repeatable)\n"
    "  --preset NAME        screening: {preset: NAME} (repeatable)\n"
    "\n"
    "Run:\n"
    "  --seed N             the model's seed (default 1)\n"
    "  --days N             days in the run (default 35)\n"
    "  --calls N            calls a day (default 10000)\n"
    "  --server PATH        the voice-and-score binary (default $VS_BIN, or\n"
    "                       the one next to this program)\n"
    "  --concurrency N      calls in flight at once, in all (default 256)\n"
    "  --shards N           servers per policy, each with its own store and\n"
    "                       clock, callers split between them by number\n"
    "                       (default 128; see sim/README.md)\n"
    "  --jobs N             policies played at once (default 2)\n"
    "  --json FILE          write the figures and every call's outcome\n"
    "  --keep DIR           keep each policy's configs, stores and logs in\n"
    "                       DIR/NAME/shard-NN\n"
    "  --score-api API      intelligence (default) or legacy\n"
    "  --timeout-ms N       telesign.timeout_ms (default 1500)\n"
    "  --breaker-failures N telesign.breaker_failures (default 0: off, as\n"
    "                       the breaker follows real time and arrival order)\n"
    "  --clock MODE         auto (default), simulated (serve\n"
    "                       --simulated-clock) or real\n"
    "  --start DATE         the run's first simulated day, YYYY-MM-DD\n"
    "                       (default 2035-01-01)\n"
    "  --dump FILE          write the run's calls as CSV and run nothing\n"
    "  --quiet              no progress on stderr\n"
    "\n"
    "Model (defaults in docs/screening-efficacy.md):\n"
    "  --mix L,R,S,F        shares of legit, robocall, spoofed and fraud\n"
    "                       calls (default 0.60,0.30,0.06,0.04)\n"
    "  --score-failure-rate P   --score-hang-share P\n"
    "  --score-latency-ms MS    --score-latency-sigma S   --score-noise SD\n"
    "  --legit-customers N  --legit-days-per-week D  --legit-rate-shape K\n"
    "  --legit-churn P\n"
    "  --legit-callback P   --legit-redial P   --legit-anonymous P\n"
    "  --legit-international P  --legit-mid P  --legit-solve P\n"
    "  --robo-campaign-calls N  --robo-calls-per-number N  --robo-redial P\n"
    "  --robo-fresh P       --robo-anonymous P  --robo-prefix-reuse P\n"
    "  --bot-solve P\n"
    "  --spoof-campaign-calls N --spoof-customer P\n"
    "  --fraud-calls N      --fraud-high P      --fraud-anonymous P\n"
    "  --fraud-solve P\n";

struct policy {
  char name[64];
  char *yaml; /* the screening section, appended to the config */
};

struct options {
  uint64_t seed;
  struct sim_params params;
  const char *server;
  unsigned concurrency;
  unsigned shards;
  unsigned jobs;
  const char *json_path;
  const char *keep;
  const char *score_api;
  unsigned timeout_ms;
  unsigned breaker_failures;
  int clock; /* -1 auto, 0 real, 1 simulated */
  int64_t start_ms;
  const char *dump;
  int quiet;
  struct policy policies[MAX_POLICIES];
  unsigned npolicies;
};

enum outcome {
  OUT_NONE = 0,
  OUT_ALLOWED, /* the menu, no challenge */
  OUT_PASSED,  /* challenged, passed, the menu */
  OUT_FAILED,  /* challenged, failed: kept out */
  OUT_BLOCKED, /* kept out without a challenge */
  OUT_ERROR    /* the conversation broke (HTTP error, bad answer) */
};

static const char *const outcome_names[] = {
    "none", "allowed", "challenge_passed", "challenge_failed", "blocked",
    "error"};

struct result {
  uint8_t outcome;
  uint8_t tries;    /* challenge prompts heard */
  uint16_t lookups; /* Score requests the double received for the call */
  float ring_ms;    /* incoming_call sent -> its answer */
  char error[80];
};

/* Per class: how the policy treated its calls. */
struct tally {
  unsigned calls, allowed, passed, failed, blocked, errors;
};

/* The figures' inputs over a span of days: the whole run, or its last. */
struct span {
  uint32_t first_day, last_day; /* 0-based, inclusive */
  uint32_t calls;
  uint64_t lookups; /* Score requests made for the span's calls */
  struct tally by[SIM_NCLASS];
  double ring_p50, ring_p99;
};

struct run {
  const struct policy *pol;
  int ok;           /* every server ran and stopped cleanly */
  char why[512];    /* when not */
  struct result *res;
  struct span all, last;
  struct score_model_stats lookups;
  double seconds;
  int simulated_clock;
  char dir[PATH_MAX]; /* the policy's directory (shard-NN inside) */
};

/* snprintf that says whether all of it fitted (0) or not (-1); cut text
 * is still NUL-terminated. */
static int fmt(char *out, size_t size, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static int fmt(char *out, size_t size, const char *f, ...)
{
  va_list ap;
  int n;

  va_start(ap, f);
  n = vsnprintf(out, size, f, ap);
  va_end(ap);
  return n < 0 || (size_t)n >= size ? -1 : 0;
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
  (void)sig;
  interrupted = 1;
}

static int64_t mono_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

/* ---- options --------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
  char *end;
  unsigned long long v;

  if (!*s || *s == '-')
    return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno || *end)
    return -1;
  *out = v;
  return 0;
}

static int parse_uint(const char *s, unsigned min, unsigned max,
                      unsigned *out)
{
  uint64_t v;

  if (parse_u64(s, &v) || v < min || v > max)
    return -1;
  *out = (unsigned)v;
  return 0;
}

static int parse_double(const char *s, double *out)
{
  char *end;

  errno = 0;
  *out = strtod(s, &end);
  return errno || end == s || *end || !isfinite(*out) ? -1 : 0;
}

static char *read_text(const char *path)
{
  FILE *f = fopen(path, "r");
  char *out = NULL;
  size_t n = 0;
  size_t cap = 0;
  char chunk[4096];
  size_t got;

  if (!f)
    return NULL;
  while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    if (n + got + 1 > cap) {
      char *p;

      cap = (n + got + 1) * 2;
      p = realloc(out, cap);
      if (!p) {
        free(out);
        fclose(f);
        return NULL;
      }
      out = p;
    }
    memcpy(out + n, chunk, got);
    n += got;
  }
  fclose(f);
  if (!out)
    out = calloc(1, 1);
  else
    out[n] = '\0';
  return out;
}

static int valid_name(const char *s)
{
  if (!*s || strlen(s) >= 64)
    return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
      return 0;
  return 1;
}

/*
 * A policy file must be one top-level `screening:` mapping (comments and
 * blank lines aside), since it is spliced into a config the simulator
 * writes around it.
 */
static int check_policy_text(const char *text, const char *path)
{
  int screening = 0;

  for (const char *l = text; *l;) {
    size_t n = strcspn(l, "\n");

    if (n && l[0] != ' ' && l[0] != '\t' && l[0] != '#' && l[0] != '\r') {
      if (strncmp(l, "screening:", 10) != 0 || screening) {
        fprintf(stderr,
                "voice-and-score-sim: %s: only one top-level `screening:` "
                "mapping is allowed, found: %.*s\n",
                path, (int)n, l);
        return -1;
      }
      screening = 1;
    }
    l += n + (l[n] == '\n');
  }
  if (!screening) {
    fprintf(stderr, "voice-and-score-sim: %s has no `screening:` mapping\n",
            path);
    return -1;
  }
  return 0;
}

static int add_policy(struct options *o, const char *name, char *yaml)
{
  if (!valid_name(name) || strcmp(name, BASELINE) == 0) {
    fprintf(stderr,
            "voice-and-score-sim: policy name '%s' must be 1-63 of "
            "A-Za-z0-9._- and not '%s'\n",
            name, BASELINE);
    free(yaml);
    return -1;
  }
  for (unsigned i = 0; i < o->npolicies; i++)
    if (strcmp(o->policies[i].name, name) == 0) {
      fprintf(stderr, "voice-and-score-sim: policy '%s' given twice\n", name);
      free(yaml);
      return -1;
    }
  if (o->npolicies == MAX_POLICIES) {
    fprintf(stderr, "voice-and-score-sim: at most %d policies\n",
            MAX_POLICIES - 1);
    free(yaml);
    return -1;
  }
  fmt(o->policies[o->npolicies].name, 64, "%s", name);
  o->policies[o->npolicies].yaml = yaml;
  o->npolicies++;
  return 0;
}

static int parse_mix(const char *s, double mix[SIM_NCLASS])
{
  char *copy = strdup(s);
  char *save = NULL;
  int i = 0;

  if (!copy)
    return -1;
  for (char *tok = strtok_r(copy, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    int cls = i;

    if (eq) {
      *eq = '\0';
      cls = sim_class_parse(tok);
      tok = eq + 1;
    }
    if (cls < 0 || cls >= SIM_NCLASS || parse_double(tok, &mix[cls])) {
      free(copy);
      return -1;
    }
    i++;
  }
  free(copy);
  return i == SIM_NCLASS ? 0 : -1;
}

/* The voice-and-score binary: $VS_BIN, or next to (or above) this one. */
static const char *find_server(void)
{
  static char path[PATH_MAX];
  char self[PATH_MAX];
  const char *env = getenv("VS_BIN");
  ssize_t n;
  char *slash;

  if (env && *env)
    return env;
  n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0)
    return "voice-and-score";
  self[n] = '\0';
  slash = strrchr(self, '/');
  if (!slash)
    return "voice-and-score";
  *slash = '\0';
  fmt(path, sizeof(path), "%s/voice-and-score", self);
  if (access(path, X_OK) == 0)
    return path;
  fmt(path, sizeof(path), "%s/../voice-and-score", self);
  if (access(path, X_OK) == 0)
    return path;
  return "voice-and-score";
}

static int64_t parse_date(const char *s)
{
  struct tm tm = {0};
  char *end = strptime(s, "%Y-%m-%d", &tm);

  if (!end || *end)
    return -1;
  return (int64_t)timegm(&tm) * 1000;
}

enum {
  OPT_SEED = 256,
  OPT_CALLS,
  OPT_POLICY,
  OPT_PRESET,
  OPT_SERVER,
  OPT_CONCURRENCY,
  OPT_JSON,
  OPT_KEEP,
  OPT_SCORE_API,
  OPT_TIMEOUT,
  OPT_BREAKER,
  OPT_CLOCK,
  OPT_START,
  OPT_DUMP,
  OPT_QUIET,
  OPT_MIX,
  OPT_SHARDS,
  OPT_JOBS,
  OPT_DAYS,
  OPT_CUSTOMERS,
  OPT_HELP,
  OPT_MODEL /* model parameters follow */
};

/* Model parameters settable from the command line. */
static const struct {
  const char *name;
  size_t off;
  int is_prob;
} model_opts[] = {
#define MO(n, f, p) {n, offsetof(struct sim_params, f), p}
    MO("score-failure-rate", score_failure_rate, 1),
    MO("score-hang-share", score_hang_share, 1),
    MO("score-latency-ms", score_latency_ms, 0),
    MO("score-latency-sigma", score_latency_sigma, 0),
    MO("score-noise", score_noise, 0),
    MO("legit-days-per-week", legit_days_per_week, 0),
    MO("legit-rate-shape", legit_rate_shape, 0),
    MO("legit-churn", legit_churn, 1),
    MO("legit-callback", legit_callback, 1),
    MO("legit-callback-more", legit_callback_more, 1),
    MO("legit-callback-gap-min", legit_callback_gap_min, 0),
    MO("legit-redial", legit_redial, 1),
    MO("legit-anonymous", legit_anonymous, 1),
    MO("legit-international", legit_international, 1),
    MO("legit-mid", legit_mid, 1),
    MO("legit-solve", legit_solve, 1),
    MO("robo-campaign-calls", robo_campaign_calls, 0),
    MO("robo-calls-per-number", robo_calls_per_number, 0),
    MO("robo-redial", robo_redial, 1),
    MO("robo-fresh", robo_fresh, 1),
    MO("robo-anonymous", robo_anonymous, 1),
    MO("robo-prefix-reuse", robo_prefix_reuse, 1),
    MO("bot-solve", bot_solve, 1),
    MO("spoof-campaign-calls", spoof_campaign_calls, 0),
    MO("spoof-customer", spoof_customer, 1),
    MO("fraud-calls", fraud_calls, 0),
    MO("fraud-high", fraud_high, 1),
    MO("fraud-two-numbers", fraud_two_numbers, 1),
    MO("fraud-anonymous", fraud_anonymous, 1),
    MO("fraud-solve", fraud_solve, 1),
#undef MO
};
#define NMODEL (sizeof(model_opts) / sizeof(model_opts[0]))

static int parse_options(int argc, char **argv, struct options *o)
{
  enum { NFIXED = 20 };
  static struct option opts[NFIXED + NMODEL + 2] = {
      {"seed", required_argument, 0, OPT_SEED},
      {"calls", required_argument, 0, OPT_CALLS},
      {"policy", required_argument, 0, OPT_POLICY},
      {"preset", required_argument, 0, OPT_PRESET},
      {"server", required_argument, 0, OPT_SERVER},
      {"concurrency", required_argument, 0, OPT_CONCURRENCY},
      {"json", required_argument, 0, OPT_JSON},
      {"keep", required_argument, 0, OPT_KEEP},
      {"score-api", required_argument, 0, OPT_SCORE_API},
      {"timeout-ms", required_argument, 0, OPT_TIMEOUT},
      {"breaker-failures", required_argument, 0, OPT_BREAKER},
      {"clock", required_argument, 0, OPT_CLOCK},
      {"start", required_argument, 0, OPT_START},
      {"dump", required_argument, 0, OPT_DUMP},
      {"quiet", no_argument, 0, OPT_QUIET},
      {"mix", required_argument, 0, OPT_MIX},
      {"shards", required_argument, 0, OPT_SHARDS},
      {"jobs", required_argument, 0, OPT_JOBS},
      {"days", required_argument, 0, OPT_DAYS},
      {"legit-customers", required_argument, 0, OPT_CUSTOMERS},
  };
  int c;

  opts[NFIXED + NMODEL] = (struct option){"help", no_argument, 0, OPT_HELP};
  for (size_t i = 0; i < NMODEL; i++)
    opts[NFIXED + i] = (struct option){model_opts[i].name, required_argument,
                                       0, OPT_MODEL + (int)i};
  /* getopt_long wants a terminating zero entry: the array has one more. */

  memset(o, 0, sizeof(*o));
  o->seed = 1;
  sim_params_default(&o->params);
  o->concurrency = 256;
  o->shards = 128;
  o->jobs = 2;
  o->score_api = "intelligence";
  o->timeout_ms = 1500;
  o->clock = -1;
  o->start_ms = parse_date("2035-01-01");
  o->npolicies = 1; /* the baseline */
  fmt(o->policies[0].name, 64, "%s", BASELINE);
  o->policies[0].yaml = strdup(baseline_yaml);

  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    unsigned u;

    switch (c) {
    case OPT_SEED:
      if (parse_u64(optarg, &o->seed))
        goto bad;
      break;
    case OPT_CALLS:
      if (parse_uint(optarg, 1, 1000000, &u))
        goto bad;
      o->params.calls = u;
      break;
    case OPT_DAYS:
      if (parse_uint(optarg, 1, SIM_MAX_DAYS, &u))
        goto bad;
      o->params.days = u;
      break;
    case OPT_CUSTOMERS:
      if (parse_uint(optarg, 0, 10000000, &u))
        goto bad;
      o->params.legit_customers = u;
      break;
    case OPT_POLICY: {
      char *eq = strchr(optarg, '=');
      char name[64];
      char *text;

      if (!eq || eq == optarg || (size_t)(eq - optarg) >= sizeof(name)) {
        fprintf(stderr, "voice-and-score-sim: --policy wants NAME=FILE\n");
        return -1;
      }
      fmt(name, sizeof(name), "%.*s", (int)(eq - optarg), optarg);
      text = read_text(eq + 1);
      if (!text) {
        fprintf(stderr, "voice-and-score-sim: cannot read %s: %s\n", eq + 1,
                strerror(errno));
        return -1;
      }
      if (check_policy_text(text, eq + 1)) {
        free(text);
        return -1;
      }
      if (add_policy(o, name, text))
        return -1;
      break;
    }
    case OPT_PRESET: {
      char *text = NULL;

      if (!valid_name(optarg) ||
          asprintf(&text, "screening:\n  preset: %s\n", optarg) < 0) {
        fprintf(stderr, "voice-and-score-sim: bad preset name '%s'\n",
                optarg);
        return -1;
      }
      if (add_policy(o, optarg, text))
        return -1;
      break;
    }
    case OPT_SERVER:
      o->server = optarg;
      break;
    case OPT_CONCURRENCY:
      if (parse_uint(optarg, 1, 1000, &o->concurrency))
        goto bad;
      break;
    case OPT_JOBS:
      if (parse_uint(optarg, 1, MAX_POLICIES, &o->jobs))
        goto bad;
      break;
    case OPT_SHARDS:
      if (parse_uint(optarg, 1, 256, &o->shards))
        goto bad;
      break;
    case OPT_JSON:
      o->json_path = optarg;
      break;
    case OPT_KEEP:
      o->keep = optarg;
      break;
    case OPT_SCORE_API:
      if (strcmp(optarg, "intelligence") && strcmp(optarg, "legacy"))
        goto bad;
      o->score_api = optarg;
      break;
    case OPT_TIMEOUT:
      if (parse_uint(optarg, 100, 10000, &o->timeout_ms))
        goto bad;
      break;
    case OPT_BREAKER:
      if (parse_uint(optarg, 0, 1000, &o->breaker_failures))
        goto bad;
      break;
    case OPT_CLOCK:
      if (strcmp(optarg, "auto") == 0)
        o->clock = -1;
      else if (strcmp(optarg, "real") == 0)
        o->clock = 0;
      else if (strcmp(optarg, "simulated") == 0)
        o->clock = 1;
      else
        goto bad;
      break;
    case OPT_START:
      o->start_ms = parse_date(optarg);
      if (o->start_ms < 0)
        goto bad;
      break;
    case OPT_DUMP:
      o->dump = optarg;
      break;
    case OPT_QUIET:
      o->quiet = 1;
      break;
    case OPT_MIX:
      if (parse_mix(optarg, o->params.mix))
        goto bad;
      break;
    case OPT_HELP:
      fputs(usage, stdout);
      exit(0);
    default:
      if (c >= OPT_MODEL && c < OPT_MODEL + (int)NMODEL) {
        double *f = (double *)((char *)&o->params + model_opts[c - OPT_MODEL].off);

        if (parse_double(optarg, f))
          goto bad;
        break;
      }
      fputs(usage, stderr);
      return -1;
    }
  }
  if (optind != argc) {
    fputs(usage, stderr);
    return -1;
  }
  if (!o->server)
    o->server = find_server();
  if (o->shards > o->concurrency)
    o->shards = o->concurrency;
  return 0;
bad:
  fprintf(stderr, "voice-and-score-sim: bad option value '%s' (see --help)\n",
          optarg);
  return -1;
}

/* ---- the server ------------------------------------------------------ */

struct server {
  pid_t pid;
  char url[256];
  char log[PATH_MAX];
};

/* Runs `argv`, stdout and stderr to `log` (or a pipe read into `out`). */
static pid_t spawn(char *const argv[], const char *log)
{
  pid_t pid = fork();

  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    signal(SIGINT, SIG_IGN); /* we stop it ourselves, cleanly */
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

/* Does this server have serve --simulated-clock? */
static int server_has_simulated_clock(const char *bin)
{
  char log[] = "/tmp/vs-sim-help-XXXXXX";
  int fd = mkstemp(log);
  char *argv[] = {(char *)bin, "serve", "--help", NULL};
  char *text;
  int status;
  int found;
  pid_t pid;

  if (fd < 0)
    return 0;
  close(fd);
  pid = spawn(argv, log);
  if (pid < 0 || waitpid(pid, &status, 0) != pid) {
    unlink(log);
    return 0;
  }
  text = read_text(log);
  unlink(log);
  found = text && strstr(text, "--simulated-clock") != NULL;
  free(text);
  return found;
}

static int write_config(const char *path, const struct options *o,
                        const struct policy *pol, const char *dir,
                        unsigned score_port, unsigned inflight)
{
  FILE *f = fopen(path, "w");
  int legacy = strcmp(o->score_api, "legacy") == 0;

  if (!f)
    return -1;
  fprintf(f,
          "# Written by voice-and-score-sim for policy %s (seed %" PRIu64
          ").\n"
          "server:\n"
          "  listen: \"127.0.0.1:0\"\n"
          "  max_connections: %u\n"
          "webhook:\n"
          "  verify: \"off\"\n"
          "telesign:\n"
          "  provider: telesign\n"
          "  customer_id: \"0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D\"\n"
          "  api_key: \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n"
          "  score_api: %s\n"
          "  score_url: \"http://127.0.0.1:%u%s\"\n"
          "  timeout_ms: %u\n"
          "  virtual_number: \"" SIM_BUSINESS "\"\n"
          "  max_connections: %u\n"
          "  breaker_failures: %u\n"
          "menu:\n"
          "  greeting: \"" GREETING "\"\n"
          "  options:\n"
          "    - {digit: \"1\", name: Sales, dial: \"15555550101\"}\n"
          "    - {digit: \"2\", name: Support, dial: \"15555550102\"}\n"
          "    - {digit: \"3\", name: Billing, dial: \"15555550103\"}\n"
          "admin:\n"
          "  listen: \"\"\n"
          "store:\n"
          "  path: \"%s/calls.db\"\n"
          "log:\n"
          "  level: info\n"
          "%s",
          pol->name, o->seed, inflight * 2 + 64,
          legacy ? "legacy" : "intelligence", score_port,
          legacy ? "/v1/score" : "/intelligence/phone", o->timeout_ms,
          inflight, o->breaker_failures, dir, pol->yaml);
  if (pol->yaml[0] && pol->yaml[strlen(pol->yaml) - 1] != '\n')
    fputc('\n', f);
  return fclose(f) ? -1 : 0;
}

/* The last `max` bytes of a file, for error messages. */
static void tail_of(const char *path, char *out, size_t max)
{
  char *text = read_text(path);
  size_t n;

  out[0] = '\0';
  if (!text)
    return;
  n = strlen(text);
  fmt(out, max, "%s", n > max - 1 ? text + n - (max - 1) : text);
  free(text);
}

static int server_spawn(struct server *s, const char *bin, const char *config,
                        const char *dir, int simulated, char *why,
                        size_t whylen)
{
  char *argv[6];
  int i = 0;

  fmt(s->log, sizeof(s->log), "%s/server.log", dir);
  argv[i++] = (char *)bin;
  argv[i++] = "serve";
  argv[i++] = "--config";
  argv[i++] = (char *)config;
  if (simulated)
    argv[i++] = "--simulated-clock";
  argv[i] = NULL;
  s->pid = spawn(argv, s->log);
  if (s->pid < 0) {
    fmt(why, whylen, "cannot start %s: %s", bin, strerror(errno));
    return -1;
  }
  return 0;
}

/* Waits for the server's "listening" log line and reads its URL. */
static int server_wait_listening(struct server *s, char *why, size_t whylen)
{
  for (int waited = 0; waited < START_WAIT_MS; waited += 10) {
    char *log = read_text(s->log);
    char *at = log ? strstr(log, "msg=\"listening\"") : NULL;
    int status;

    if (at && (at = strstr(at, "url=")) != NULL) {
      size_t n = strcspn(at + 4, " \n");

      fmt(s->url, sizeof(s->url), "%.*s", (int)n, at + 4);
      free(log);
      return 0;
    }
    free(log);
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      char tail[400];

      tail_of(s->log, tail, sizeof(tail));
      fmt(why, whylen, "the server exited before listening: %s", tail);
      s->pid = -1;
      return -1;
    }
    sleep_ms(10);
  }
  fmt(why, whylen, "the server did not listen within %d ms", START_WAIT_MS);
  return -1;
}

/* SIGTERM, then waits for exit 0. */
static int server_stop(struct server *s, char *why, size_t whylen)
{
  int status;

  if (s->pid <= 0)
    return -1;
  kill(s->pid, SIGTERM);
  for (int waited = 0; waited < STOP_WAIT_MS; waited += 10) {
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      s->pid = -1;
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
      fmt(why, whylen, "the server stopped with %s %d",
               WIFEXITED(status) ? "status" : "signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      return -1;
    }
    sleep_ms(10);
  }
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  s->pid = -1;
  fmt(why, whylen, "the server did not stop within %d ms of SIGTERM",
           STOP_WAIT_MS);
  return -1;
}

/* ---- playing calls --------------------------------------------------- */

struct slot;

/*
 * One server of a policy: a share of the callers (split by number), its
 * own store, and its own clock, which follows its calls' simulated times.
 * Calls reach it strictly in the run's order, at most `inflight` at once
 * and never two of one number at once, and a call's incoming_call only
 * once the call before it is past screening (decided, and its challenge
 * over): so its clock never has to go backwards, every decision sees its
 * call's own time, and so does everything the server stamps while
 * screening (a cached score's time, a pass, a failed challenge and the
 * block list entry it makes), which the clock would otherwise already
 * have moved past, to a later call's time, by the time the lookup or the
 * challenge ends.
 */
struct shard {
  struct server srv;
  char dir[PATH_MAX];
  uint32_t *calls; /* indices into the run, in order */
  uint32_t n, next;
  unsigned inflight;
  struct slot *screening; /* the call not past screening yet, or NULL */
};

struct slot {
  CURL *easy;
  struct curl_slist *hdr;
  struct sim_caller caller;
  const struct sim_call *call;
  struct shard *shard;
  struct result *res;
  char ref[40];
  char answer[ANSWER_MAX];
  size_t len;
  int overflow;
  int turns;
  int incoming;  /* the request in flight is incoming_call */
  int completed; /* call_completed was sent */
  int menu, challenged, connected;
  int64_t sent_ns;
  struct slot *next_free;
};

struct player {
  const struct options *o;
  const struct sim_traffic *t;
  struct score_model *dbl; /* told which call of a number is in flight */
  struct result *res;
  struct shard *shards;
  unsigned nshards;
  unsigned per_shard; /* calls in flight per server */
  CURLM *multi;
  struct slot *slots;
  struct slot *free_slots;
  uint8_t *busy; /* per number: a call of it is in flight */
  unsigned inflight;
  uint32_t done;
};

/* Which server a call goes to: by its number, so that everything the
 * server remembers about a number is in one place. */
static unsigned shard_of(const struct sim_traffic *t, const struct sim_call *c,
                         unsigned nshards)
{
  if (c->number >= 0)
    return (unsigned)(sim_hash_str(t->numbers[c->number].digits) % nshards);
  return c->index % nshards;
}

static void ref_of(const struct sim_traffic *t, uint32_t index, char out[40])
{
  fmt(out, 40, "SIM%08" PRIX64 "%08" PRIX32, t->seed & 0xFFFFFFFFu, index);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *userp)
{
  struct slot *s = userp;
  size_t n = size * nmemb;

  if (s->len + n >= sizeof(s->answer)) {
    s->overflow = 1;
    return 0;
  }
  memcpy(s->answer + s->len, p, n);
  s->len += n;
  s->answer[s->len] = '\0';
  return n;
}

static void fail_call(struct slot *s, const char *f, ...)
    __attribute__((format(printf, 2, 3)));

static void fail_call(struct slot *s, const char *f, ...)
{
  va_list ap;

  if (s->res->outcome == OUT_ERROR)
    return;
  s->res->outcome = OUT_ERROR;
  va_start(ap, f);
  vsnprintf(s->res->error, sizeof(s->res->error), f, ap);
  va_end(ap);
}

/* Posts one event of the slot's call; `data` is the JSON of data. */
static int post(struct player *pl, struct slot *s, const char *event,
                const char *data)
{
  char body[1024];
  char hdr[64];
  int64_t sim = pl->o->start_ms + s->call->t_ms;

  fmt(body, sizeof(body),
      "{\"event\":\"%s\",\"reference_id\":\"%s\",\"data\":%s}", event, s->ref,
      data);
  curl_slist_free_all(s->hdr);
  s->hdr = curl_slist_append(NULL, "Content-Type: application/json");
  /* Every event of a call carries the call's arrival time: the
   * conversation takes no simulated time, so that a call's later events
   * never move its server's clock past the next call's arrival. */
  fmt(hdr, sizeof(hdr), "X-Simulated-Time: %" PRId64, sim);
  s->hdr = curl_slist_append(s->hdr, hdr);
  s->hdr = curl_slist_append(s->hdr, "Expect:");
  s->len = 0;
  s->overflow = 0;
  s->answer[0] = '\0';
  s->incoming = strcmp(event, "incoming_call") == 0;
  s->completed = strcmp(event, "call_completed") == 0;
  curl_easy_setopt(s->easy, CURLOPT_URL, s->shard->srv.url);
  curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdr);
  curl_easy_setopt(s->easy, CURLOPT_COPYPOSTFIELDS, body);
  curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
  curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, 30000L);
  s->sent_ns = mono_ns();
  if (curl_multi_add_handle(pl->multi, s->easy) != CURLM_OK) {
    fail_call(s, "curl_multi_add_handle failed");
    return -1;
  }
  return 0;
}

/* The key a challenge prompt asks for: "press D" with exactly one D. */
static char asked_digit(const char *message)
{
  const char *p = strstr(message, "press ");

  if (!p || p[6] < '0' || p[6] > '9')
    return 0;
  return strstr(p + 7, "press ") ? 0 : p[6];
}

/* The call is past screening: its server may have the next call. */
static void screened(struct slot *s)
{
  if (s->shard && s->shard->screening == s)
    s->shard->screening = NULL;
}

static void finish(struct player *pl, struct slot *s)
{
  struct result *r = s->res;

  screened(s);
  if (r->outcome != OUT_ERROR)
    r->outcome = s->menu         ? (s->challenged ? OUT_PASSED : OUT_ALLOWED)
                 : s->challenged ? OUT_FAILED
                                 : OUT_BLOCKED;
  if (s->call->number >= 0) {
    pl->busy[s->call->number] = 0;
    score_model_call_end(pl->dbl, s->call->number);
  }
  s->shard->inflight--;
  s->call = NULL;
  s->shard = NULL;
  s->next_free = pl->free_slots;
  pl->free_slots = s;
  pl->inflight--;
  pl->done++;
}

static void send_completed(struct player *pl, struct slot *s)
{
  char data[256];

  fmt(data, sizeof(data),
      "{\"duration\":%d,\"status\":\"hangup\",\"to\":\"" SIM_BUSINESS
      "\",\"from\":\"%s\",\"direction\":\"inbound\"}",
      sim_caller_duration(&s->caller, s->connected), s->call->from);
  if (post(pl, s, "call_completed", data))
    finish(pl, s);
}

/* An answer arrived: understand it and send what TeleSign would next. */
static void on_answer(struct player *pl, struct slot *s, CURLcode cc)
{
  struct voice_action_parsed a;
  char err[256];
  char data[256];
  long status = 0;
  int rc;

  curl_multi_remove_handle(pl->multi, s->easy);
  if (s->incoming)
    s->res->ring_ms = (float)((double)(mono_ns() - s->sent_ns) / 1e6);
  if (cc != CURLE_OK) {
    fail_call(s, "HTTP: %s", curl_easy_strerror(cc));
    finish(pl, s);
    return;
  }
  curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    fail_call(s, "HTTP %ld", status);
    finish(pl, s);
    return;
  }
  if (s->completed) {
    finish(pl, s);
    return;
  }
  rc = voice_action_parse(s->answer, s->len, &a, err, sizeof(err));
  if (rc) {
    fail_call(s, "bad answer: %s", err);
    send_completed(pl, s);
    return;
  }
  if (++s->turns > MAX_TURNS) {
    fail_call(s, "more than %d turns", MAX_TURNS);
    send_completed(pl, s);
    return;
  }
  switch (a.kind) {
  case VOICE_ACTION_HANGUP:
    screened(s);
    send_completed(pl, s);
    return;
  case VOICE_ACTION_DIAL: {
    screened(s);
    const char *st = sim_caller_dial_status(&s->caller);

    s->connected = strcmp(st, "answered") == 0;
    fmt(data, sizeof(data),
        "{\"to\":\"%s\",\"from\":\"%s\",\"status\":\"%s\"}", a.to,
        a.caller_id, st);
    if (post(pl, s, "dial_completed", data))
      finish(pl, s);
    return;
  }
  case VOICE_ACTION_SPEAK:
  case VOICE_ACTION_PLAY: {
    char key[2] = {0, 0};
    const char *msg = a.kind == VOICE_ACTION_SPEAK ? a.message : "";
    char d;

    if (a.collect_max && (d = asked_digit(msg)) != 0 && !s->menu &&
        !strstr(msg, GREETING)) {
      s->challenged = 1;
      s->res->tries++;
      key[0] = sim_caller_challenge(&s->caller, d);
    } else {
      /* The menu, the block message or anything after: decided. */
      screened(s);
      if (a.collect_max && strstr(msg, GREETING)) {
        s->menu = 1;
        key[0] = sim_caller_menu(&s->caller, MENU_OPTIONS);
      } else if (a.collect_max) {
        fail_call(s, "a prompt the simulator does not know: %.40s", msg);
      }
    }
    fmt(data, sizeof(data), "{\"status\":\"%s\",\"collected_digits\":\"%s\"}",
        a.kind == VOICE_ACTION_PLAY ? "play_successful" : "speak_successful",
        key);
    if (post(pl, s,
             a.kind == VOICE_ACTION_PLAY ? "play_completed"
                                         : "speak_completed",
             data))
      finish(pl, s);
    return;
  }
  }
}

/*
 * Starts calls while there is room: each server's calls in the run's
 * order, never two of one number at once (a call waits for its number's
 * earlier call to end, and so do the calls behind it on that server).
 */
static void fill(struct player *pl)
{
  for (unsigned k = 0; k < pl->nshards && pl->free_slots && !interrupted;
       k++) {
    struct shard *sh = &pl->shards[k];

    while (sh->next < sh->n && sh->inflight < pl->per_shard &&
           pl->free_slots && !sh->screening) {
      const struct sim_call *c = &pl->t->calls[sh->calls[sh->next]];
      struct slot *s;
      char data[160];

      if (c->number >= 0 && pl->busy[c->number])
        break;
      s = pl->free_slots;
      pl->free_slots = s->next_free;
      pl->inflight++;
      sh->inflight++;
      sh->next++;
      if (c->number >= 0) {
        pl->busy[c->number] = 1;
        /* Before its incoming_call: the lookup it may cause is its own. */
        score_model_call_begin(pl->dbl, c->number, c->index);
      }
      s->call = c;
      s->shard = sh;
      sh->screening = s;
      s->res = &pl->res[c->index];
      memset(s->res, 0, sizeof(*s->res));
      s->turns = s->menu = s->challenged = s->connected = 0;
      sim_caller_init(&s->caller, pl->t, c);
      ref_of(pl->t, c->index, s->ref);
      fmt(data, sizeof(data), "{\"to\":\"" SIM_BUSINESS "\",\"from\":\"%s\"}",
          c->from);
      if (post(pl, s, "incoming_call", data))
        finish(pl, s);
    }
  }
}

static int play(struct player *pl, int progress)
{
  const struct sim_traffic *t = pl->t;
  unsigned nslots = pl->per_shard * pl->nshards;
  int64_t last = mono_ns();
  int rc = 0;

  pl->multi = curl_multi_init();
  pl->slots = calloc(nslots, sizeof(*pl->slots));
  pl->busy = calloc(t->nnumbers ? t->nnumbers : 1, 1);
  if (!pl->multi || !pl->slots || !pl->busy) {
    rc = -1;
    goto out;
  }
  curl_multi_setopt(pl->multi, CURLMOPT_MAXCONNECTS, (long)nslots + 8);
  for (unsigned i = 0; i < nslots; i++) {
    pl->slots[i].easy = curl_easy_init();
    if (!pl->slots[i].easy) {
      rc = -1;
      goto out;
    }
    pl->slots[i].next_free = pl->free_slots;
    pl->free_slots = &pl->slots[i];
  }
  while (pl->done < t->ncalls && !(interrupted && pl->inflight == 0)) {
    CURLMsg *m;
    int running;
    int q;

    fill(pl);
    curl_multi_perform(pl->multi, &running);
    while ((m = curl_multi_info_read(pl->multi, &q)) != NULL) {
      struct slot *s;

      if (m->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
      on_answer(pl, s, m->data.result);
    }
    fill(pl);
    if (pl->inflight)
      curl_multi_poll(pl->multi, NULL, 0, 100, NULL);
    if (progress && mono_ns() - last > 5000000000LL) {
      last = mono_ns();
      fprintf(stderr, "  ... %u/%u calls\n", pl->done, t->ncalls);
    }
  }
  if (interrupted)
    rc = -1;
out:
  if (pl->slots) {
    for (unsigned i = 0; i < nslots; i++) {
      if (pl->slots[i].easy) {
        curl_multi_remove_handle(pl->multi, pl->slots[i].easy);
        curl_easy_cleanup(pl->slots[i].easy);
      }
      curl_slist_free_all(pl->slots[i].hdr);
    }
  }
  free(pl->slots);
  free(pl->busy);
  if (pl->multi)
    curl_multi_cleanup(pl->multi);
  return rc;
}

/* ---- counting -------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
  float x = *(const float *)a;
  float y = *(const float *)b;

  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted values. */
static double percentile(const float *v, size_t n, double p)
{
  size_t k;

  if (!n)
    return 0;
  k = (size_t)ceil(p * (double)n);
  if (k < 1)
    k = 1;
  return v[k - 1];
}

/* Counts the calls of days first..last (0-based, inclusive). */
static void count_span(struct span *sp, const struct run *r,
                       const struct sim_traffic *t, uint32_t first,
                       uint32_t last)
{
  uint32_t from = first * t->calls_per_day;
  uint32_t to = (last + 1) * t->calls_per_day;
  float *ring = malloc(sizeof(*ring) * (to > from ? to - from : 1));
  size_t n = 0;

  memset(sp, 0, sizeof(*sp));
  sp->first_day = first;
  sp->last_day = last;
  for (uint32_t i = from; i < to && i < t->ncalls; i++) {
    const struct result *x = &r->res[i];
    struct tally *c = &sp->by[t->calls[i].cls];

    sp->calls++;
    sp->lookups += x->lookups;
    c->calls++;
    switch (x->outcome) {
    case OUT_ALLOWED:
      c->allowed++;
      break;
    case OUT_PASSED:
      c->passed++;
      break;
    case OUT_FAILED:
      c->failed++;
      break;
    case OUT_BLOCKED:
      c->blocked++;
      break;
    default:
      c->errors++;
      break;
    }
    if (ring && x->outcome != OUT_ERROR && x->outcome != OUT_NONE)
      ring[n++] = x->ring_ms;
  }
  if (ring) {
    qsort(ring, n, sizeof(*ring), cmp_float);
    sp->ring_p50 = percentile(ring, n, 0.50);
    sp->ring_p99 = percentile(ring, n, 0.99);
  }
  free(ring);
}

static void count(struct run *r, const struct sim_traffic *t)
{
  count_span(&r->all, r, t, 0, t->days - 1);
  /* The whole run's lookups are every request the double had, so that a
   * lookup no call owned (none should be) still counts. */
  r->all.lookups = r->lookups.requests;
  count_span(&r->last, r, t, t->days - 1, t->days - 1);
}

static double pct(unsigned part, unsigned whole)
{
  return whole ? 100.0 * part / whole : 0;
}

struct figures {
  double robo_out, spoof_out, fraud_out, legit_menu, legit_challenged,
      legit_out, lookups_per_call;
  unsigned errors;
};

static void figures_of(const struct span *sp, struct figures *f)
{
  const struct tally *by = sp->by;
  const struct tally *l = &by[SIM_LEGIT];
  unsigned errors = 0;

  for (int i = 0; i < SIM_NCLASS; i++)
    errors += by[i].errors;
  f->robo_out = pct(by[SIM_ROBOCALL].blocked + by[SIM_ROBOCALL].failed,
                    by[SIM_ROBOCALL].calls);
  f->spoof_out = pct(by[SIM_SPOOFED].blocked + by[SIM_SPOOFED].failed,
                     by[SIM_SPOOFED].calls);
  f->fraud_out =
      pct(by[SIM_FRAUD].blocked + by[SIM_FRAUD].failed, by[SIM_FRAUD].calls);
  f->legit_menu = pct(l->allowed + l->passed, l->calls);
  f->legit_challenged = pct(l->passed, l->allowed + l->passed);
  f->legit_out = pct(l->blocked + l->failed, l->calls);
  f->lookups_per_call = sp->calls ? (double)sp->lookups / sp->calls : 0;
  f->errors = errors;
}

/* "1-7" for days 0..6, "7" for day 6 alone. */
static void days_label(const struct span *sp, char out[16])
{
  if (sp->first_day == sp->last_day)
    fmt(out, 16, "%u", sp->last_day + 1);
  else
    fmt(out, 16, "%u-%u", sp->first_day + 1, sp->last_day + 1);
}

static void print_header(void)
{
  printf("%-16s %7s %9s %10s %10s %11s %11s %10s %12s %11s %11s\n", "POLICY",
         "DAYS", "ROBO_OUT%", "SPOOF_OUT%", "FRAUD_OUT%", "LEGIT_MENU%",
         "LEGIT_CHAL%", "LEGIT_OUT%", "LOOKUPS/CALL", "RING_P50_MS",
         "RING_P99_MS");
}

static void print_span(const struct run *r, const struct span *sp)
{
  struct figures f;
  char days[16];

  figures_of(sp, &f);
  days_label(sp, days);
  printf("%-16s %7s %9.2f %10.2f %10.2f %11.2f %11.2f %10.2f %12.3f %11.1f "
         "%11.1f%s\n",
         r->pol->name, days, f.robo_out, f.spoof_out, f.fraud_out,
         f.legit_menu, f.legit_challenged, f.legit_out, f.lookups_per_call,
         sp->ring_p50, sp->ring_p99, f.errors ? "  (errors!)" : "");
}

/* The whole run, and its last day when the run has more than one. */
static void print_row(const struct run *r, const struct sim_traffic *t)
{
  if (!r->ok) {
    printf("%-16s  failed: %s\n", r->pol->name, r->why);
    return;
  }
  print_span(r, &r->all);
  if (t->days > 1)
    print_span(r, &r->last);
}

/* ---- files ----------------------------------------------------------- */

static int make_dir(const char *path)
{
  return mkdir(path, 0750) == 0 || errno == EEXIST ? 0 : -1;
}

/* Empties a policy's directory of what an earlier run left there. */
static void clear_dir(const char *dir)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[PATH_MAX];

  if (!d)
    return;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    fmt(path, sizeof(path), "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
}

static int write_dump(const char *path, const struct sim_traffic *t)
{
  FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;

  if (!f)
    return -1;
  fprintf(f, "index,day,time,class,actor,from,number,line,base\n");
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];
    const struct sim_number *n = c->number >= 0 ? &t->numbers[c->number] : NULL;
    int64_t in_day = c->t_ms % SIM_DAY_MS;
    int64_t s = in_day / 1000;

    fprintf(f, "%u,%u,%02d:%02d:%02d.%03d,%s,%u,\"%s\",%s,%s,%d\n", c->index,
            (unsigned)c->day + 1, (int)(s / 3600), (int)(s / 60 % 60),
            (int)(s % 60), (int)(in_day % 1000),
            sim_class_name((enum sim_class)c->cls), c->actor, c->from,
            n ? n->digits : "", n ? sim_line_name((enum sim_line)n->line) : "",
            n ? n->base : -1);
  }
  return f == stdout ? fflush(f) : fclose(f);
}

static json_t *params_json(const struct sim_params *p)
{
  json_t *o = json_object();
  json_t *mix = json_object();

  for (int i = 0; i < SIM_NCLASS; i++)
    json_object_set_new(mix, sim_class_name((enum sim_class)i),
                        json_real(p->mix[i]));
  json_object_set_new(o, "calls", json_integer(p->calls));
  json_object_set_new(o, "days", json_integer(p->days));
  json_object_set_new(o, "legit-customers", json_integer(p->legit_customers));
  json_object_set_new(o, "mix", mix);
  for (size_t i = 0; i < NMODEL; i++)
    json_object_set_new(
        o, model_opts[i].name,
        json_real(*(const double *)((const char *)p + model_opts[i].off)));
  return o;
}

static json_t *figures_json(const struct span *sp)
{
  struct figures f;

  figures_of(sp, &f);
  return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:i}",
                   "robocalls_kept_out_pct", f.robo_out,
                   "spoofed_kept_out_pct", f.spoof_out, "fraud_kept_out_pct",
                   f.fraud_out, "legit_menu_pct", f.legit_menu,
                   "legit_menu_challenged_pct", f.legit_challenged,
                   "legit_kept_out_pct", f.legit_out, "lookups_per_call",
                   f.lookups_per_call, "ring_p50_ms", sp->ring_p50,
                   "ring_p99_ms", sp->ring_p99, "errors", (int)f.errors);
}

static json_t *classes_json(const struct span *sp)
{
  json_t *classes = json_object();

  for (int i = 0; i < SIM_NCLASS; i++) {
    const struct tally *c = &sp->by[i];

    json_object_set_new(classes, sim_class_name((enum sim_class)i),
                        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "calls",
                                  c->calls, "allowed", c->allowed,
                                  "challenge_passed", c->passed,
                                  "challenge_failed", c->failed, "blocked",
                                  c->blocked, "errors", c->errors));
  }
  return classes;
}

static json_t *run_json(const struct run *r, const struct sim_traffic *t,
                        const struct options *opt)
{
  json_t *o = json_object();
  json_t *calls = json_array();

  json_object_set_new(o, "name", json_string(r->pol->name));
  json_object_set_new(o, "screening", json_string(r->pol->yaml));
  json_object_set_new(o, "ok", json_boolean(r->ok));
  if (!r->ok) {
    json_object_set_new(o, "error", json_string(r->why));
    json_decref(calls);
    return o;
  }
  if (opt->keep)
    json_object_set_new(o, "dir", json_string(r->dir));
  json_object_set_new(o, "shards", json_integer(opt->shards));
  json_object_set_new(o, "simulated_clock", json_boolean(r->simulated_clock));
  json_object_set_new(o, "seconds", json_real(r->seconds));
  json_object_set_new(o, "figures", figures_json(&r->all));
  json_object_set_new(o, "lookups",
                      json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                                "requests", (json_int_t)r->lookups.requests,
                                "ok", (json_int_t)r->lookups.ok, "unavailable",
                                (json_int_t)r->lookups.unavailable, "hung",
                                (json_int_t)r->lookups.hung, "unknown",
                                (json_int_t)r->lookups.unknown, "bad",
                                (json_int_t)r->lookups.bad, "stray",
                                (json_int_t)r->lookups.stray));
  json_object_set_new(o, "classes", classes_json(&r->all));
  json_object_set_new(
      o, "last_day",
      json_pack("{s:i, s:i, s:I, s:o, s:o}", "day", (int)r->last.last_day + 1,
                "calls", (int)r->last.calls, "lookups",
                (json_int_t)r->last.lookups, "figures", figures_json(&r->last),
                "classes", classes_json(&r->last)));
  for (uint32_t i = 0; i < t->ncalls; i++) {
    const struct sim_call *c = &t->calls[i];
    const struct result *x = &r->res[i];
    char ref[40];
    json_t *e;

    ref_of(t, c->index, ref);
    e = json_pack("{s:s, s:i, s:s, s:i, s:s, s:s, s:I, s:s, s:i, s:f}",
                  "ref", ref, "index", (int)c->index, "class",
                  sim_class_name((enum sim_class)c->cls), "actor",
                  (int)c->actor, "from", c->from, "number",
                  c->number >= 0 ? t->numbers[c->number].digits : "", "t_ms",
                  (json_int_t)c->t_ms, "outcome",
                  outcome_names[x->outcome], "tries", (int)x->tries,
                  "ring_ms", (double)x->ring_ms);
    if (e) {
      json_object_set_new(e, "day", json_integer(c->day + 1));
      json_object_set_new(e, "lookups", json_integer(x->lookups));
      json_object_set_new(e, "shard",
                          json_integer(shard_of(t, c, opt->shards)));
    }
    if (e && x->error[0])
      json_object_set_new(e, "error", json_string(x->error));
    json_array_append_new(calls, e);
  }
  json_object_set_new(o, "calls", calls);
  return o;
}

/* ---- main ------------------------------------------------------------ */

static void run_policy(const struct options *o, const struct sim_traffic *t,
                       struct run *r, const char *base, int simulated)
{
  struct player pl = {.o = o, .t = t, .res = r->res};
  struct score_model *dbl = NULL;
  unsigned nshards = o->shards;
  struct shard *shards = calloc(nshards, sizeof(*shards));
  int64_t t0 = mono_ns();
  char why[512];
  unsigned started = 0;

  r->ok = 0;
  r->simulated_clock = simulated;
  fmt(r->dir, sizeof(r->dir), "%s/%s", base, r->pol->name);
  if (!shards) {
    fmt(r->why, sizeof(r->why), "out of memory");
    return;
  }
  if (make_dir(r->dir)) {
    fmt(r->why, sizeof(r->why), "cannot create %s: %s", r->dir,
        strerror(errno));
    goto out;
  }
  pl.shards = shards;
  pl.nshards = nshards;
  pl.per_shard = o->concurrency / nshards ? o->concurrency / nshards : 1;
  for (unsigned k = 0; k < nshards; k++) {
    shards[k].srv.pid = -1;
    shards[k].calls = malloc(sizeof(uint32_t) * (t->ncalls ? t->ncalls : 1));
    if (!shards[k].calls) {
      fmt(r->why, sizeof(r->why), "out of memory");
      goto out;
    }
  }
  for (uint32_t i = 0; i < t->ncalls; i++) {
    struct shard *sh = &shards[shard_of(t, &t->calls[i], nshards)];

    sh->calls[sh->n++] = i;
  }
  if (score_model_start(t, o->timeout_ms + 1000, &dbl)) {
    fmt(r->why, sizeof(r->why), "cannot start the Score double");
    goto out;
  }
  pl.dbl = dbl;
  /* Every server is started before any waits to be listening. */
  for (unsigned k = 0; k < nshards; k++) {
    struct shard *sh = &shards[k];
    char config[PATH_MAX + 16];

    fmt(sh->dir, sizeof(sh->dir), "%s/shard-%02u", r->dir, k);
    if (make_dir(sh->dir)) {
      fmt(r->why, sizeof(r->why), "cannot create %s: %s", sh->dir,
          strerror(errno));
      goto out;
    }
    clear_dir(sh->dir);
    fmt(config, sizeof(config), "%s/config.yaml", sh->dir);
    if (write_config(config, o, r->pol, sh->dir, score_model_port(dbl),
                     pl.per_shard)) {
      fmt(r->why, sizeof(r->why), "cannot write %s", config);
      goto out;
    }
    if (server_spawn(&sh->srv, o->server, config, sh->dir, simulated,
                     r->why, sizeof(r->why)))
      goto out;
    started++;
  }
  for (unsigned k = 0; k < nshards; k++)
    if (server_wait_listening(&shards[k].srv, r->why, sizeof(r->why)))
      goto out;
  if (!o->quiet)
    fprintf(stderr, "policy %s: %u servers (%s ...), %u calls in flight each\n",
            r->pol->name, nshards, shards[0].srv.url, pl.per_shard);
  if (play(&pl, !o->quiet)) {
    fmt(r->why, sizeof(r->why), "%s",
        interrupted ? "interrupted" : "out of memory playing the calls");
    goto out;
  }
  r->ok = 1;
out:
  /* SIGTERM to all, then each must exit 0. */
  for (unsigned k = 0; k < started; k++)
    if (shards[k].srv.pid > 0)
      kill(shards[k].srv.pid, SIGTERM);
  for (unsigned k = 0; k < started; k++)
    if (server_stop(&shards[k].srv, why, sizeof(why)) && r->ok) {
      r->ok = 0;
      fmt(r->why, sizeof(r->why), "server %u: %s", k, why);
    }
  if (r->ok) {
    score_model_stats(dbl, &r->lookups);
    for (uint32_t i = 0; i < t->ncalls; i++)
      r->res[i].lookups = (uint16_t)score_model_lookups_of_call(dbl, i);
    count(r, t);
  }
  score_model_stop(dbl);
  for (unsigned k = 0; k < nshards; k++)
    free(shards[k].calls);
  free(shards);
  r->seconds = (double)(mono_ns() - t0) / 1e9;
  if (!o->quiet)
    fprintf(stderr, "policy %s: %s in %.1f s\n", r->pol->name,
            r->ok ? "done" : r->why, r->seconds);
}

/* Policies run --jobs at a time, each in its own thread. */
struct jobs {
  const struct options *o;
  const struct sim_traffic *t;
  struct run *runs;
  const char *base;
  int simulated;
  pthread_mutex_t lock;
  unsigned next;
};

static void *job_thread(void *arg)
{
  struct jobs *j = arg;

  for (;;) {
    unsigned i;

    pthread_mutex_lock(&j->lock);
    i = j->next++;
    pthread_mutex_unlock(&j->lock);
    if (i >= j->o->npolicies || interrupted)
      return NULL;
    run_policy(j->o, j->t, &j->runs[i], j->base, j->simulated);
  }
}

/* Removes the temporary tree: base/POLICY/shard-NN/files. */
static void remove_tree(const char *base, const struct options *o)
{
  char dir[PATH_MAX];
  char sub[PATH_MAX];

  for (unsigned i = 0; i < o->npolicies; i++) {
    fmt(dir, sizeof(dir), "%s/%s", base, o->policies[i].name);
    for (unsigned k = 0; k < o->shards; k++) {
      fmt(sub, sizeof(sub), "%s/shard-%02u", dir, k);
      clear_dir(sub);
      rmdir(sub);
    }
    clear_dir(dir);
    rmdir(dir);
  }
  rmdir(base);
}

int main(int argc, char **argv)
{
  struct options o;
  struct sim_traffic *t = NULL;
  struct run runs[MAX_POLICIES];
  char base[PATH_MAX];
  char err[256];
  int simulated;
  int status = 0;
  int64_t t0 = mono_ns();

  if (parse_options(argc, argv, &o))
    return 2;
  if (sim_generate(&o.params, o.seed, &t, err, sizeof(err))) {
    fprintf(stderr, "voice-and-score-sim: %s\n", err);
    return 2;
  }
  if (o.dump) {
    status = write_dump(o.dump, t) ? 1 : 0;
    sim_traffic_free(t);
    return status;
  }
  if (o.clock < 0)
    o.clock = server_has_simulated_clock(o.server);
  simulated = o.clock;
  if (!o.quiet) {
    fprintf(stderr,
            "model: seed %" PRIu64 ", %u days of %u calls, %u calls: %u legit "
            "(%u customers called, of a base of %u; %u customers in all), %u "
            "robocall (%u campaigns), %u spoofed (%u campaigns), %u fraud "
            "(%u fraudsters); %u numbers; digest %016" PRIx64 "\n",
            o.seed, t->days, t->calls_per_day, t->ncalls,
            t->class_calls[SIM_LEGIT], t->actors[SIM_LEGIT], t->base,
            t->customers, t->class_calls[SIM_ROBOCALL],
            t->actors[SIM_ROBOCALL], t->class_calls[SIM_SPOOFED],
            t->actors[SIM_SPOOFED], t->class_calls[SIM_FRAUD],
            t->actors[SIM_FRAUD], t->nnumbers, sim_traffic_digest(t));
    fprintf(stderr, "server: %s, clock %s\n", o.server,
            simulated ? "simulated"
                      : "real (this server has no "
                        "--simulated-clock: time-based rules "
                        "see the run compressed)");
  }
  if (o.keep) {
    if (make_dir(o.keep)) {
      fprintf(stderr, "voice-and-score-sim: cannot create %s: %s\n", o.keep,
              strerror(errno));
      return 2;
    }
    fmt(base, sizeof(base), "%s", o.keep);
  } else {
    const char *tmp = getenv("TMPDIR");

    fmt(base, sizeof(base), "%s/vs-sim-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base)) {
      fprintf(stderr, "voice-and-score-sim: mkdtemp: %s\n", strerror(errno));
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, on_sigint);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return 2;

  memset(runs, 0, sizeof(runs));
  for (unsigned i = 0; i < o.npolicies; i++) {
    runs[i].pol = &o.policies[i];
    runs[i].res = calloc(t->ncalls, sizeof(*runs[i].res));
    if (!runs[i].res) {
      fprintf(stderr, "voice-and-score-sim: out of memory\n");
      return 2;
    }
  }
  {
    struct jobs j = {.o = &o, .t = t, .runs = runs, .base = base,
                     .simulated = simulated};
    unsigned n = o.jobs < o.npolicies ? o.jobs : o.npolicies;
    pthread_t th[MAX_POLICIES];

    pthread_mutex_init(&j.lock, NULL);
    for (unsigned i = 1; i < n; i++)
      if (pthread_create(&th[i], NULL, job_thread, &j))
        n = i;
    job_thread(&j);
    for (unsigned i = 1; i < n; i++)
      pthread_join(th[i], NULL);
    pthread_mutex_destroy(&j.lock);
  }
  for (unsigned i = 0; i < o.npolicies; i++)
    if (!runs[i].ok)
      status = 1;

  printf("seed %" PRIu64 ", %u day%s of %u calls, %u calls (legit %u, "
         "robocall %u, spoofed %u, fraud %u), clock %s\n",
         o.seed, t->days, t->days == 1 ? "" : "s", t->calls_per_day, t->ncalls,
         t->class_calls[SIM_LEGIT], t->class_calls[SIM_ROBOCALL],
         t->class_calls[SIM_SPOOFED], t->class_calls[SIM_FRAUD],
         simulated ? "simulated" : "real");
  print_header();
  for (unsigned i = 0; i < o.npolicies; i++) {
    if (!runs[i].pol)
      continue;
    print_row(&runs[i], t);
    if (runs[i].ok) {
      struct figures f;

      figures_of(&runs[i].all, &f);
      if (f.errors) {
        status = 1;
        for (uint32_t k = 0; k < t->ncalls; k++)
          if (runs[i].res[k].outcome == OUT_ERROR) {
            fprintf(stderr, "policy %s: %u calls broke; the first, %u: %s\n",
                    runs[i].pol->name, f.errors, k, runs[i].res[k].error);
            break;
          }
      }
      if (runs[i].lookups.unknown || runs[i].lookups.bad ||
          runs[i].lookups.stray)
        fprintf(stderr,
                "policy %s: the Score double saw %" PRIu64
                " unknown numbers, %" PRIu64 " bad requests and %" PRIu64
                " lookups of a number with no call in flight\n",
                runs[i].pol->name, runs[i].lookups.unknown,
                runs[i].lookups.bad, runs[i].lookups.stray);
    }
  }
  fflush(stdout);

  if (o.json_path) {
    json_t *root = json_object();
    json_t *pols = json_array();

    json_object_set_new(root, "seed", json_integer((json_int_t)o.seed));
    json_object_set_new(root, "days", json_integer(t->days));
    json_object_set_new(root, "calls_per_day", json_integer(t->calls_per_day));
    json_object_set_new(root, "calls", json_integer(t->ncalls));
    json_object_set_new(root, "customer_base", json_integer(t->base));
    json_object_set_new(root, "start_ms", json_integer(o.start_ms));
    json_object_set_new(root, "digest",
                        json_sprintf("%016" PRIx64, sim_traffic_digest(t)));
    json_object_set_new(root, "simulated_clock", json_boolean(simulated));
    json_object_set_new(root, "model", params_json(&o.params));
    for (unsigned i = 0; i < o.npolicies; i++) {
      if (!runs[i].pol)
        continue;
      json_array_append_new(pols, run_json(&runs[i], t, &o));
    }
    json_object_set_new(root, "policies", pols);
    if (json_dump_file(root, o.json_path, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) {
      fprintf(stderr, "voice-and-score-sim: cannot write %s\n", o.json_path);
      status = 1;
    }
    json_decref(root);
  }
  if (!o.keep)
    remove_tree(base, &o);
  for (unsigned i = 0; i < o.npolicies; i++) {
    free(runs[i].res);
    free(o.policies[i].yaml);
  }
  sim_traffic_free(t);
  curl_global_cleanup();
  if (!o.quiet)
    fprintf(stderr, "total %.1f s\n", (double)(mono_ns() - t0) / 1e9);
  return status;
}
