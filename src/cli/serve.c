/*
 * `voice-and-score serve`: builds the server from its modules, runs the
 * loop, reloads on SIGHUP, and takes it down gracefully on SIGTERM or
 * SIGINT.
 *
 * Reload (SIGHUP): the file is loaded and checked again; a bad file is
 * refused with its reason and the running config kept. Reading the file is
 * the one disk access made on the loop thread: a small file, read on an
 * operator's signal, against the cost of handing the config between
 * threads. A good one replaces
 * the config in every module at once (calls in progress carry on under it
 * from their next event), then the lists are read again from the store.
 *
 * Graceful shutdown, in order:
 *   1. stop accepting connections;
 *   2. keep running until every received request is answered, which takes
 *      at most one Score deadline (telesign.timeout_ms) plus a margin;
 *   3. cancel any lookup still in flight, so its caller gets the
 *      on_score_error answer, and give MHD a moment to send it;
 *   4. stop the HTTP daemon, then flush the store.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../admin/admin.h"
#include "../config/config.h"
#include "../flow/callflow.h"
#include "../http/webhook.h"
#include "../loop/loop.h"
#include "../screen/screening.h"
#include "../store/store.h"
#include "../telesign/score.h"
#include "../util/err.h"
#include "../util/log.h"
#include "commands.h"

#define SHUTDOWN_MARGIN_MS 2000
#define FLUSH_WAIT_MS      1000

/* Everything serve builds; loop thread only. */
struct server {
  struct config *cfg;
  const char *config_path;
  struct loop *loop;
  struct store *store;
  struct score_client *scores;
  struct screening *screening;
  struct flow *flow;
  struct webhook *webhook;
  struct admin *admin; /* NULL when admin.listen is "" */
  struct loop_io signals;
  struct loop_hook drained;
  struct loop_timer grace;
  struct loop_timer retention; /* store.retention_days, hourly */
  int signal_fd;
  int stopping;
  int loaded; /* the start-up load finished */
  int load_rc;
};

static const char serve_usage[] =
    "usage: voice-and-score serve --config FILE [--simulated-clock]\n"
    "\n"
    "Runs the webhook server in the foreground, logging to stderr.\n"
    "SIGHUP reloads the configuration and the lists. SIGTERM or SIGINT\n"
    "stops it gracefully: no new connections, every received event\n"
    "answered, every call record written.\n"
    "\n"
    "  --simulated-clock  take the time from each event's X-Simulated-Time\n"
    "                     header (Unix ms): for the traffic simulator\n"
    "                     (voice-and-score-sim) only, never in production\n";

/* Parses serve's options; returns -1 to go on, or an exit status. */
static int serve_args(int argc, char **argv, const char **config,
                      int *simulated_clock)
{
  static const struct option opts[] = {
      {"config", required_argument, 0, 'c'},
      {"simulated-clock", no_argument, 0, 's'},
      {0, 0, 0, 0}};
  int c;

  if (wants_help(argc, argv)) {
    fputs(serve_usage, stdout);
    return 0;
  }
  while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
    if (c == 'c') {
      *config = optarg;
    } else if (c == 's') {
      *simulated_clock = 1;
    } else {
      fputs(serve_usage, stderr);
      return EXIT_USAGE;
    }
  }
  if (optind != argc || !*config) {
    fputs(serve_usage, stderr);
    return EXIT_USAGE;
  }
  return -1;
}

#define RETENTION_FIRST_MS 0 /* at start, then hourly */
#define RETENTION_EVERY_MS (3600 * 1000)

/* store.retention_days: deletes older call records, then again hourly. */
static void on_retention(struct loop_timer *t)
{
  struct server *s = t->data;
  uint32_t days = s->cfg->store.retention_days;

  if (days && store_purge(s->store, loop_wall_ms(s->loop) -
                                        (int64_t)days * 86400 * 1000))
    log_warn("old call records not deleted now: the store is busy");
  loop_timer_start(s->loop, t, loop_now_ms(s->loop) + RETENTION_EVERY_MS,
                   on_retention, s);
}

/* Stops the loop once nothing is left to answer (run before each sleep). */
static void check_drained(struct loop_hook *h)
{
  struct server *s = h->data;

  if (webhook_live_requests(s->webhook) == 0 && flow_pending(s->flow) == 0)
    loop_stop(s->loop);
}

static void on_grace_over(struct loop_timer *t)
{
  struct server *s = t->data;

  log_warn("shutdown grace period over|live_requests=%zu pending=%zu",
           webhook_live_requests(s->webhook), flow_pending(s->flow));
  loop_stop(s->loop);
}

static void on_lists_reloaded(void *arg, int rc)
{
  (void)arg;
  if (rc)
    log_error("lists not reloaded; the previous ones stay|error=\"%s\"",
              vs_strerror(rc));
}

/* SIGHUP: the new file, if it is valid, then the lists. */
/*
 * The keys a reload cannot apply (sockets, pools and files opened at
 * start): a change to any of them is named, so nobody believes it took.
 */
static void warn_restart_keys(const struct config *was,
                              const struct config *now)
{
  const struct {
    const char *key;
    int changed;
  } keys[] = {
      {"server.listen", strcmp(was->server.listen, now->server.listen)},
      {"server.max_connections",
       was->server.max_connections != now->server.max_connections},
      {"server.idle_timeout_s",
       was->server.idle_timeout_s != now->server.idle_timeout_s},
      {"server.tls_cert", strcmp(was->server.tls_cert, now->server.tls_cert)},
      {"server.tls_key", strcmp(was->server.tls_key, now->server.tls_key)},
      {"telesign.max_connections",
       was->telesign.max_connections != now->telesign.max_connections},
      {"store.driver", was->store.driver != now->store.driver},
      {"store.path/url", strcmp(was->store.location, now->store.location)},
      {"store.answer_log_mib",
       was->store.answer_log_mib != now->store.answer_log_mib},
      {"admin.listen", strcmp(was->admin.listen, now->admin.listen)},
      {"log.format", was->log.format != now->log.format},
  };

  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (keys[i].changed)
      log_warn("a change of this key takes effect on restart only|key=%s",
               keys[i].key);
}

static void reload(struct server *s)
{
  struct config *next;
  char err[1024];
  int rc;

  if (config_load(s->config_path, &next, err, sizeof(err))) {
    log_error("reload refused; the running configuration stays|"
              "error=\"%s\"",
              err);
    return;
  }
  warn_restart_keys(s->cfg, next);
  log_set_level((enum log_level)log_level_parse(next->log.level));
  log_set_mask_numbers(next->log.mask_numbers);
  webhook_set_config(s->webhook, next);
  if (s->admin)
    admin_set_config(s->admin, next);
  score_client_set_config(s->scores, next);
  screening_set_config(s->screening, next);
  flow_set_config(s->flow, next);
  config_free(s->cfg);
  s->cfg = next;
  log_info("configuration reloaded|policy_version=%s", next->policy_version);
  rc = screening_load(s->screening, 0, on_lists_reloaded, s);
  if (rc)
    on_lists_reloaded(s, rc);
}

static void on_signal(struct loop_io *io, uint32_t events)
{
  struct server *s = io->data;
  struct signalfd_siginfo si;

  (void)events;
  while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
    if (si.ssi_signo == SIGHUP) {
      if (!s->stopping)
        reload(s);
      continue;
    }
    if (s->stopping)
      continue;
    s->stopping = 1;
    log_info("shutting down|signal=%s", strsignal((int)si.ssi_signo));
    webhook_quiesce(s->webhook);
    loop_hook_add(s->loop, &s->drained, check_drained, s);
    loop_timer_start(s->loop, &s->grace,
                     loop_now_ms(s->loop) + s->cfg->telesign.timeout_ms +
                         SHUTDOWN_MARGIN_MS,
                     on_grace_over, s);
  }
}

static int setup_signals(struct server *s)
{
  sigset_t set;

  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
    return VS_ERR_IO;
  signal(SIGPIPE, SIG_IGN);
  /* A file-size limit (or a full quota) must fail the write, not kill the
   * server: the store reports it and calls go on. */
  signal(SIGXFSZ, SIG_IGN);
  s->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (s->signal_fd < 0)
    return VS_ERR_IO;
  return loop_io_start(s->loop, &s->signals, s->signal_fd, EPOLLIN, on_signal,
                       s);
}

/* Steps 3 and 4 of the shutdown described at the top of the file. */
static void finish(struct server *s)
{
  int64_t until;

  loop_hook_remove(s->loop, &s->drained);
  loop_timer_stop(s->loop, &s->grace);
  loop_timer_stop(s->loop, &s->retention);
  /* Closed, not destroyed: a request that arrives on an open connection
   * from now on still reaches screening, and must find a client that
   * refuses it rather than freed memory. */
  score_client_close(s->scores);
  until = loop_update_time(s->loop) + FLUSH_WAIT_MS;
  while (webhook_live_requests(s->webhook) > 0 && loop_now_ms(s->loop) < until)
    loop_run_once(s->loop, 50);
  admin_destroy(s->admin);
  s->admin = NULL;
  webhook_destroy(s->webhook);
  s->webhook = NULL;
}

static void on_loaded(void *arg, int rc)
{
  struct server *s = arg;

  s->loaded = 1;
  s->load_rc = rc;
}

/*
 * Reads the lists and caller numbers before the first call is taken, so
 * that no call is screened against empty lists. The loop runs meanwhile
 * (the store answers through it), but nothing listens yet.
 */
static int load_state(struct server *s)
{
  int rc = screening_load(s->screening, 1, on_loaded, s);

  while (rc == VS_OK && !s->loaded)
    rc = loop_run_once(s->loop, -1);
  return rc ? rc : s->load_rc;
}

static void announce(const struct server *s)
{
  const struct config *cfg = s->cfg;
  char host[256];
  char where[512]; /* store.url without its password */
  const char *colon = strrchr(cfg->server.listen, ':');
  size_t n = colon ? (size_t)(colon - cfg->server.listen) : 0;

  snprintf(host, sizeof(host), "%.*s", (int)n, cfg->server.listen);
  const char *scheme = cfg->server.tls_cert[0] ? "https" : "http";

  log_info("listening|url=%s://%s:%u%s health=%s://%s:%u/health "
           "provider=%s store=%s",
           scheme, host, webhook_port(s->webhook), cfg->server.webhook_path,
           scheme, host, webhook_port(s->webhook),
           config_provider_name(cfg->telesign.provider),
           store_location_safe(cfg->store.location, where, sizeof(where)));
  if (s->admin) {
    const char *acolon = strrchr(cfg->admin.listen, ':');

    log_info("admin listening|url=http://%.*s:%u/ token=%s",
             (int)(acolon - cfg->admin.listen), cfg->admin.listen,
             admin_port(s->admin), cfg->admin.token[0] ? "required" : "none");
  }
  if (cfg->webhook.verify == VERIFY_OFF)
    log_warn("event signatures are not checked (webhook.verify: off)");
  else if (!cfg->telesign.api_key[0])
    log_warn("event signatures cannot be checked: no telesign.api_key");
  else
    log_info("event signatures checked|webhook.verify=%s",
             cfg->webhook.verify == VERIFY_ENFORCE ? "enforce" : "log");
  if (cfg->telesign.provider == PROVIDER_SIMULATOR)
    log_warn("NOT SCORING WITH TELESIGN: provider is 'simulator', so every "
             "score is made up (a number's score is its last three "
             "digits); set telesign.provider: telesign for real screening");
  else
    log_info("scoring with TeleSign|url=%s api=%s auth=%s timeout_ms=%u",
             cfg->telesign.score_url,
             cfg->telesign.score_api == SCORE_API_LEGACY ? "legacy"
                                                         : "intelligence",
             cfg->telesign.auth == AUTH_BASIC ? "basic" : "hmac",
             cfg->telesign.timeout_ms);
}

int cmd_serve(int argc, char **argv)
{
  struct store_options sopt = {0};
  struct server s = {.signal_fd = -1};
  struct config *cfg;
  const char *path = NULL;
  char err[512];
  char where[512]; /* store.url without its password, for logs */
  int simulated_clock = 0;
  int status;

  status = serve_args(argc, argv, &path, &simulated_clock);
  if (status >= 0)
    return status;
  status = 1;
  cfg = cli_load_config(path);
  if (!cfg)
    return path ? 1 : EXIT_USAGE;
  s.cfg = cfg;
  s.config_path = path;
  log_set_level((enum log_level)log_level_parse(cfg->log.level));
  log_set_json(cfg->log.format == LOG_FORMAT_JSON);
  log_set_journal(getenv("JOURNAL_STREAM") != NULL);
  log_set_mask_numbers(cfg->log.mask_numbers);

  if (loop_create(&s.loop)) {
    log_error("cannot create the event loop");
    goto out;
  }
  sopt.path = cfg->store.location;
  sopt.answer_log_bytes = (size_t)cfg->store.answer_log_mib << 20;
  store_location_safe(cfg->store.location, where, sizeof(where));
  if (store_open(s.loop, &sopt, &s.store, err, sizeof(err))) {
    log_error("cannot open the store|path=%s error=\"%s\"", where, err);
    goto out;
  }
  if (score_client_create(s.loop, cfg, &s.scores, err, sizeof(err))) {
    log_error("cannot create the score client|error=\"%s\"", err);
    goto out;
  }
  if (screening_create(cfg, s.loop, s.store, s.scores, &s.screening) ||
      flow_create(cfg, s.loop, s.store, s.screening, &s.flow)) {
    log_error("out of memory");
    goto out;
  }
  if (load_state(&s)) {
    log_error("cannot read the lists and numbers from the store|path=%s",
              where);
    goto out;
  }
  if (webhook_create(s.loop, cfg, s.flow, s.store, &s.webhook, err,
                     sizeof(err))) {
    log_error("cannot start the HTTP server|error=\"%s\"", err);
    goto out;
  }
  if (cfg->admin.listen[0]) {
    struct admin_sources src = {s.store, s.screening, s.scores, s.webhook};

    if (admin_create(s.loop, cfg, &src, &s.admin, err, sizeof(err))) {
      log_error("cannot start the admin listener|error=\"%s\"", err);
      goto out;
    }
  }
  loop_timer_start(s.loop, &s.retention,
                   loop_now_ms(s.loop) + RETENTION_FIRST_MS, on_retention, &s);
  if (simulated_clock) {
    webhook_set_simulated_clock(s.webhook, 1);
    log_warn("simulated clock: events set the time (X-Simulated-Time); "
             "for the traffic simulator only");
  }
  if (setup_signals(&s)) {
    log_error("cannot set up signal handling");
    goto out;
  }
  announce(&s);
  if (loop_run(s.loop) == VS_OK)
    status = 0;
  finish(&s);
out:
  /* Teardown is not the reverse of construction: the store completes its
   * pending loads when closed, and those belong to the flow, so the flow
   * goes after the store. Every destructor accepts NULL. */
  admin_destroy(s.admin);
  webhook_destroy(s.webhook);
  score_client_destroy(s.scores);
  store_close(s.store);
  flow_destroy(s.flow);
  screening_destroy(s.screening);
  if (s.signal_fd >= 0) {
    loop_io_stop(s.loop, &s.signals);
    close(s.signal_fd);
  }
  loop_destroy(s.loop);
  config_free(s.cfg);
  if (status == 0)
    log_info("stopped");
  return status;
}
