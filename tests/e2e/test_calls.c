/*
 * End-to-end tests: whole calls against the real server, which scores
 * callers with the Score API test double, both started as processes and
 * spoken to over HTTP on loopback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"

#define CUSTOMER      "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"
#define API_KEY       "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define GREETING      "Press 1 for Sales, 2 for Support, 3 for Billing."
#define BLOCK_MESSAGE "We cannot take your call."

/* What a test changes in the base configuration. */
struct opts {
  const char *provider;    /* default telesign */
  const char *score_api;   /* default intelligence */
  const char *auth;        /* default hmac */
  const char *on_error;    /* default allow */
  const char *caller_id;   /* default virtual */
  const char *double_auth; /* default hmac */
  unsigned timeout_ms;     /* default 500 */
};

struct world {
  struct proc *dbl;
  struct proc *srv;
};

static char *config_text(const struct opts *o)
{
  char *s = NULL;
  const char *api = o->score_api ? o->score_api : "intelligence";

  assert_true(
      asprintf(&s,
               "server:\n"
               "  listen: \"127.0.0.1:0\"\n"
               "  max_body: 4096\n"
               "telesign:\n"
               "  provider: %s\n"
               "  customer_id: \"" CUSTOMER "\"\n"
               "  api_key: \"" API_KEY "\"\n"
               "  score_api: %s\n"
               "  score_url: \"{SCORE_URL}%s\"\n"
               "  auth: %s\n"
               "  timeout_ms: %u\n"
               "  virtual_number: \"15555550100\"\n"
               "  max_connections: 4\n"
               "screening:\n"
               "  block_at: 600\n"
               "  on_score_error: %s\n"
               "  block_message: \"" BLOCK_MESSAGE "\"\n"
               "menu:\n"
               "  greeting: \"" GREETING "\"\n"
               "  attempts: 3\n"
               "  caller_id: %s\n"
               "  options:\n"
               "    - {digit: \"1\", name: Sales, dial: \"15555550101\"}\n"
               "    - {digit: \"2\", name: Support, dial: \"15555550102\"}\n"
               "    - {digit: \"3\", name: Billing, dial: \"15555550103\"}\n"
               "store:\n"
               "  path: \"{DIR}/calls.db\"\n"
               "log:\n"
               "  level: debug\n",
               o->provider ? o->provider : "telesign", api,
               strcmp(api, "legacy") == 0 ? "/v1/score"
                                          : "/intelligence/phone",
               o->auth ? o->auth : "hmac", o->timeout_ms ? o->timeout_ms : 500,
               o->on_error ? o->on_error : "allow",
               o->caller_id ? o->caller_id : "virtual") > 0);
  return s;
}

static struct world *world_start(const struct opts *o)
{
  struct world *w = calloc(1, sizeof(*w));
  char *cfg = config_text(o);

  assert_non_null(w);
  w->dbl = double_start(o->double_auth ? o->double_auth : "hmac", CUSTOMER,
                        API_KEY);
  w->srv = server_start(cfg, w->dbl);
  free(cfg);
  if (!w->srv)
    fail_msg("server did not start:\n%s", harness_last_log());
  return w;
}

/* Stops both; the server must exit cleanly (status 0) on SIGTERM. */
static void world_stop(struct world *w)
{
  assert_int_equal(proc_stop(w->srv), 0);
  proc_stop(w->dbl);
  free(w);
  harness_cleanup();
}

static char *incoming(const struct world *w, const char *ref, const char *from)
{
  char data[200];

  snprintf(data, sizeof(data), "{\"to\":\"15555550100\",\"from\":\"%s\"}",
           from);
  return send_event(w->srv, "incoming_call", ref, data);
}

static char *pressed(const struct world *w, const char *ref,
                     const char *digits)
{
  char data[200];

  snprintf(data, sizeof(data),
           "{\"status\":\"speak_successful\",\"collected_digits\":\"%s\"}",
           digits);
  return send_event(w->srv, "speak_completed", ref, data);
}

static char *completed(const struct world *w, const char *ref)
{
  return send_event(w->srv, "call_completed", ref,
                    "{\"duration\":42,\"status\":\"hangup\","
                    "\"to\":\"15555550100\",\"from\":\"15555550123\","
                    "\"direction\":\"inbound\"}");
}

static void assert_method(char *answer, const char *method)
{
  if (!json_has(answer, "method", method))
    fail_msg("expected %s, got %s", method, answer);
  assert_true(json_has(answer, "jsonrpc", "2.0"));
  free(answer);
}

static void assert_menu(char *answer)
{
  assert_true(json_has(answer, "params.tts.message", GREETING));
  assert_int_equal(json_int(answer, "params.collect_digits.max"), 1);
  assert_method(answer, "speak");
}

/* The call's record, as `calls --format json` prints it. */
static char *record_of(const char *ref)
{
  const char *args[] = {"calls",    "--config", harness_config(),
                        "--format", "json",     "--limit",
                        "0",        NULL};
  char *out = NULL;
  char *rec = NULL;
  char buf[80];

  assert_int_equal(run_cli(&out, args), 0);
  for (int i = 0; i < 1000; i++) {
    char path[32];

    snprintf(path, sizeof(path), "%d.reference_id", i);
    json_str(out, path, buf, sizeof(buf));
    if (!buf[0])
      break;
    if (strcmp(buf, ref) == 0) {
      char *p;

      snprintf(path, sizeof(path), "%d", i);
      assert_true(asprintf(&p, "%s", path) > 0);
      rec = p;
      break;
    }
  }
  if (!rec)
    fail_msg("no record for %s in:\n%s", ref, out);
  /* Return the whole list plus the index, joined for field lookups. */
  {
    char *joined = NULL;

    assert_true(asprintf(&joined, "%s\n%s", rec, out) > 0);
    free(rec);
    free(out);
    return joined;
  }
}

/* A field of a record returned by record_of(). */
static const char *field(const char *rec, const char *name, char *buf,
                         size_t size)
{
  char path[64];
  const char *nl = strchr(rec, '\n');

  snprintf(path, sizeof(path), "%.*s.%s", (int)(nl - rec), rec, name);
  return json_str(nl + 1, path, buf, size);
}

static long field_int(const char *rec, const char *name)
{
  char path[64];
  const char *nl = strchr(rec, '\n');

  snprintf(path, sizeof(path), "%.*s.%s", (int)(nl - rec), rec, name);
  return json_int(nl + 1, path);
}

/*
 * Store writes are asynchronous; a record saved by the last answer may be
 * a batch away. Poll the CLI until the field has the value (bounded).
 */
static void assert_record(const char *ref, const char *name, const char *value)
{
  char buf[256] = "";

  for (int i = 0; i < 200; i++) {
    char *rec = record_of(ref);

    field(rec, name, buf, sizeof(buf));
    free(rec);
    if (strcmp(buf, value) == 0)
      return;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
  fail_msg("record %s: %s is '%s', expected '%s'", ref, name, buf, value);
}

/* ---- allowed callers and the menu ------------------------------------ */

static void test_routed_to_each_department(void **state)
{
  static const char *const names[] = {"Sales", "Support", "Billing"};
  struct world *w = world_start(&(struct opts){0});
  char ref[40];
  char digit[2] = "1";
  char *a;
  char buf[64];

  (void)state;
  for (int i = 0; i < 3; i++) {
    snprintf(ref, sizeof(ref), "ROUTE%d", i);
    digit[0] = (char)('1' + i);
    assert_menu(incoming(w, ref, "+1 (555) 555-0123"));
    a = pressed(w, ref, digit);
    snprintf(buf, sizeof(buf), "1555555010%d", i + 1);
    assert_true(json_has(a, "params.to", buf));
    assert_true(json_has(a, "params.caller_id_number", "15555550100"));
    assert_method(a, "dial");
    assert_method(
        send_event(w->srv, "dial_completed", ref, "{\"status\":\"answered\"}"),
        "hangup");
    a = completed(w, ref);
    assert_string_equal(a, "{}");
    free(a);
    assert_record(ref, "department", names[i]);
    assert_record(ref, "status", "hangup");
  }
  {
    char *rec = record_of("ROUTE0");

    assert_string_equal(field(rec, "caller", buf, sizeof(buf)), "15555550123");
    assert_string_equal(field(rec, "decision", buf, sizeof(buf)), "allow");
    assert_string_equal(field(rec, "reason", buf, sizeof(buf)),
                        "score:123<600");
    assert_int_equal(field_int(rec, "score"), 123);
    assert_int_equal(field_int(rec, "duration_s"), 42);
    assert_string_equal(field(rec, "digits", buf, sizeof(buf)), "1");
    free(rec);
  }
  world_stop(w);
}

static void test_caller_id_of_caller(void **state)
{
  struct world *w = world_start(&(struct opts){.caller_id = "caller"});
  char *a;

  (void)state;
  assert_menu(incoming(w, "CID1", "5555550142"));
  a = pressed(w, "CID1", "2");
  assert_true(json_has(a, "params.caller_id_number", "15555550142"));
  assert_true(json_has(a, "params.to", "15555550102"));
  assert_method(a, "dial");
  world_stop(w);
}

static void test_no_input_then_goodbye(void **state)
{
  struct world *w = world_start(&(struct opts){0});
  char *a;

  (void)state;
  assert_menu(incoming(w, "SILENT", "15555550123"));
  assert_menu(pressed(w, "SILENT", ""));
  assert_menu(pressed(w, "SILENT", ""));
  a = pressed(w, "SILENT", ""); /* third attempt used up */
  assert_int_equal(json_int(a, "params.collect_digits.max"), -12345);
  assert_true(json_has(a, "params.tts.message", "Goodbye."));
  assert_method(a, "speak");
  assert_method(pressed(w, "SILENT", ""), "hangup");
  world_stop(w);
}

static void test_invalid_digit(void **state)
{
  struct world *w = world_start(&(struct opts){0});
  char buf[512];
  char *a;

  (void)state;
  assert_menu(incoming(w, "WRONG", "15555550123"));
  a = pressed(w, "WRONG", "9");
  json_str(a, "params.tts.message", buf, sizeof(buf));
  assert_non_null(strstr(buf, "not a valid choice"));
  assert_non_null(strstr(buf, GREETING));
  assert_int_equal(json_int(a, "params.collect_digits.max"), 1);
  assert_method(a, "speak");
  /* A right digit after a wrong one still routes. */
  a = pressed(w, "WRONG", "3");
  assert_true(json_has(a, "params.to", "15555550103"));
  assert_method(a, "dial");
  assert_record("WRONG", "digits", "93");
  world_stop(w);
}

static void test_dial_not_answered(void **state)
{
  struct world *w = world_start(&(struct opts){0});
  char buf[256];
  char *a;

  (void)state;
  assert_menu(incoming(w, "BUSY", "15555550123"));
  assert_method(pressed(w, "BUSY", "1"), "dial");
  a = send_event(w->srv, "dial_completed", "BUSY", "{\"status\":\"busy\"}");
  json_str(a, "params.tts.message", buf, sizeof(buf));
  assert_non_null(strstr(buf, "No one is available"));
  assert_method(a, "speak");
  assert_method(pressed(w, "BUSY", ""), "hangup");
  assert_record("BUSY", "dial_status", "busy");
  world_stop(w);
}

/* ---- blocked callers ------------------------------------------------- */

static void test_blocked_caller(void **state)
{
  struct world *w = world_start(&(struct opts){0});
  char buf[256];
  char *a;

  (void)state;
  a = incoming(w, "BLOCKED", "15555550999");
  json_str(a, "params.tts.message", buf, sizeof(buf));
  assert_string_equal(buf, BLOCK_MESSAGE);
  assert_null(strstr(a, "999")); /* never speak the score */
  assert_int_equal(json_int(a, "params.collect_digits.max"), -12345);
  assert_method(a, "speak");
  assert_method(pressed(w, "BLOCKED", ""), "hangup");
  assert_record("BLOCKED", "decision", "block");
  assert_record("BLOCKED", "reason", "score:999>=600");
  world_stop(w);
}

static void test_threshold_edges(void **state)
{
  struct world *w = world_start(&(struct opts){0});

  (void)state;
  double_control(w->dbl, "{\"scores\":{\"15555550600\":600,"
                         "\"15555550599\":599}}");
  assert_method(incoming(w, "EDGE600", "15555550600"), "speak");
  assert_record("EDGE600", "decision", "block");
  assert_menu(incoming(w, "EDGE599", "15555550599"));
  world_stop(w);
}

/* ---- Score failures, under both on_score_error policies -------------- */

struct failure_case {
  const char *control;
  const char *reason_prefix;
};

static const struct failure_case failures[] = {
    {"{\"mode\":\"hang\"}", "score_error:timeout"},
    {"{\"mode\":\"http_error\",\"http_status\":500}", "score_error:http_500"},
    {"{\"mode\":\"http_error\",\"http_status\":503}", "score_error:http_503"},
    {"{\"mode\":\"garbage\"}", "score_error:unparseable"},
    {"{\"mode\":\"truncated\"}", "score_error:unparseable"},
    {"{\"mode\":\"status_error\"}", "score_error:status_501"},
    {"{\"mode\":\"empty\"}", "score_error:no_score"},
    {"{\"mode\":\"ok\",\"delay_ms\":2000}", "score_error:timeout"},
};

static void run_failures(const char *policy)
{
  struct world *w =
      world_start(&(struct opts){.on_error = policy, .timeout_ms = 400});
  char ref[40];
  char want[96];

  for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++) {
    time_t t0 = time(NULL);
    char *a;

    double_control(w->dbl, "{\"reset\":true}");
    double_control(w->dbl, failures[i].control);
    snprintf(ref, sizeof(ref), "FAIL%s%zu", policy, i);
    a = incoming(w, ref, "15555550123");
    /* A generous bound that only a hang would break. */
    assert_true(time(NULL) - t0 <= 3);
    if (strcmp(policy, "allow") == 0) {
      assert_menu(a);
    } else {
      assert_true(json_has(a, "params.tts.message", BLOCK_MESSAGE));
      assert_method(a, "speak");
    }
    snprintf(want, sizeof(want), "%s->%s", failures[i].reason_prefix, policy);
    assert_record(ref, "reason", want);
  }
  double_control(w->dbl, "{\"reset\":true}");
  world_stop(w);
}

static void test_score_failures_allow(void **state)
{
  (void)state;
  run_failures("allow");
}

static void test_score_failures_block(void **state)
{
  (void)state;
  run_failures("block");
}

static void test_connection_refused(void **state)
{
  struct world *w = world_start(&(struct opts){.on_error = "block"});

  (void)state;
  proc_stop(w->dbl);
  w->dbl = NULL;
  assert_method(incoming(w, "REFUSED", "15555550123"), "speak");
  assert_record("REFUSED", "decision", "block");
  assert_int_equal(proc_stop(w->srv), 0);
  free(w);
  harness_cleanup();
}

static void test_unscorable_callers(void **state)
{
  struct world *w = world_start(&(struct opts){.on_error = "block"});

  (void)state;
  assert_method(incoming(w, "ANON", "anonymous"), "speak");
  assert_record("ANON", "reason", "unscorable:anonymous->block");
  assert_method(incoming(w, "EMPTY", ""), "speak");
  assert_record("EMPTY", "reason", "unscorable:empty->block");
  assert_method(incoming(w, "LONG", "1234567890123456789"), "speak");
  assert_record("LONG", "reason", "unscorable:too_long->block");
  assert_int_equal(double_stat(w->dbl, "requests"), 0);
  world_stop(w);
}

/* ---- the Score request itself ---------------------------------------- */

static void check_request(const struct opts *o, const char *path,
                          const char *body, const char *scheme)
{
  struct world *w = world_start(o);
  char *stats;
  char buf[256];

  assert_menu(incoming(w, "REQ", "15555550123"));
  stats = double_stats(w->dbl);
  assert_int_equal(json_int(stats, "requests"), 1);
  assert_int_equal(json_int(stats, "auth_failures"), 0);
  assert_string_equal(json_str(stats, "last.path", buf, sizeof(buf)), path);
  assert_string_equal(json_str(stats, "last.body", buf, sizeof(buf)), body);
  assert_string_equal(
      json_str(stats, "last.authorization_scheme", buf, sizeof(buf)), scheme);
  free(stats);
  world_stop(w);
}

static void test_intelligence_hmac(void **state)
{
  (void)state;
  check_request(&(struct opts){0}, "/intelligence/phone",
                "phone_number=15555550123&account_lifecycle_event=transact",
                "TSA");
}

static void test_legacy_hmac(void **state)
{
  (void)state;
  check_request(&(struct opts){.score_api = "legacy"}, "/v1/score/15555550123",
                "account_lifecycle_event=transact", "TSA");
}

static void test_intelligence_basic(void **state)
{
  (void)state;
  check_request(&(struct opts){.auth = "basic", .double_auth = "basic"},
                "/intelligence/phone",
                "phone_number=15555550123&account_lifecycle_event=transact",
                "Basic");
}

/* A wrong key is refused by TeleSign (here, the double) with 401. */
static void test_wrong_credentials(void **state)
{
  struct world *w = calloc(1, sizeof(*w));
  char *cfg = config_text(&(struct opts){.on_error = "block"});

  (void)state;
  w->dbl = double_start("hmac", CUSTOMER, "c29tZSBvdGhlciBrZXk=");
  w->srv = server_start(cfg, w->dbl);
  free(cfg);
  assert_non_null(w->srv);
  assert_method(incoming(w, "BADKEY", "15555550123"), "speak");
  assert_record("BADKEY", "reason", "score_error:http_401->block");
  assert_int_equal(double_stat(w->dbl, "auth_failures"), 1);
  world_stop(w);
}

static void test_score_as_string(void **state)
{
  struct world *w = world_start(&(struct opts){0});

  (void)state;
  double_control(w->dbl, "{\"score_as_string\":true}");
  assert_method(incoming(w, "STR", "15555550777"), "speak");
  assert_record("STR", "reason", "score:777>=600");
  world_stop(w);
}

static void test_keep_alive(void **state)
{
  struct world *w = world_start(&(struct opts){0});
  char ref[32];

  (void)state;
  for (int i = 0; i < 20; i++) {
    snprintf(ref, sizeof(ref), "KA%d", i);
    assert_menu(incoming(w, ref, "15555550123"));
  }
  assert_int_equal(double_stat(w->dbl, "requests"), 20);
  /* Sequential lookups reuse one keep-alive connection. */
  assert_int_equal(double_stat(w->dbl, "score_connections"), 1);
  world_stop(w);
}

/* ---- protocol edges -------------------------------------------------- */

static void test_unknown_event_and_call(void **state)
{
  struct world *w = world_start(&(struct opts){0});

  (void)state;
  assert_menu(incoming(w, "KNOWN", "15555550123"));
  assert_method(send_event(w->srv, "record_completed", "KNOWN", NULL),
                "hangup");
  assert_method(pressed(w, "NEVER-SEEN", "1"), "hangup");
  assert_method(send_event(w->srv, "call_leg_completed", "KNOWN", NULL),
                "hangup");
  world_stop(w);
}

static void test_malformed_requests(void **state)
{
  static const char *const bad[] = {
      "{not json",
      "[]",
      "{\"event\":42,\"reference_id\":\"X\"}",
      "{\"event\":\"incoming_call\"}",
      "{\"event\":\"incoming_call\",\"reference_id\":\"\"}",
      "{\"event\":\"incoming_call\",\"reference_id\":\"X\",\"data\":[1]}",
      "{\"event\":\"incoming_call\",\"reference_id\":\"X\","
      "\"data\":{\"from\":{\"a\":1}}}",
      "{\"event\":\"incoming_call\",\"event\":\"speak_completed\","
      "\"reference_id\":\"X\"}",
      "{\"event\":\"incoming_call\",\"reference_id\":\"\xff\xfe\"}",
  };
  struct world *w = world_start(&(struct opts){0});
  char big[8192];
  char *resp = NULL;

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char why[512];

    assert_int_equal(post_event(w->srv, bad[i], &resp), 400);
    /* The answer is itself valid JSON with a reason. */
    assert_true(json_str(resp, "error", why, sizeof(why))[0] != '\0');
    free(resp);
  }
  memset(big, ' ', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  assert_int_equal(post_event(w->srv, big, NULL), 413);
  assert_int_equal(
      http_request(w->srv, "GET", "/telesign/voice", NULL, 0, NULL), 405);
  assert_int_equal(http_request(w->srv, "GET", "/nope", NULL, 0, NULL), 404);
  /* Still serving. */
  assert_int_equal(http_request(w->srv, "GET", "/health", NULL, 0, &resp),
                   200);
  free(resp);
  assert_menu(incoming(w, "AFTER", "15555550123"));
  world_stop(w);
}

static void test_health(void **state)
{
  struct world *w = world_start(&(struct opts){.provider = "simulator"});
  char *resp = NULL;

  (void)state;
  assert_int_equal(http_request(w->srv, "GET", "/health", NULL, 0, &resp),
                   200);
  assert_true(json_has(resp, "status", "ok"));
  assert_true(json_has(resp, "store", "ok"));
  assert_true(json_has(resp, "provider", "simulator"));
  assert_true(json_has(resp, "version", "0.1.0"));
  free(resp);
  world_stop(w);
}

static void test_duplicate_incoming(void **state)
{
  struct world *w = world_start(&(struct opts){0});

  (void)state;
  assert_menu(incoming(w, "DUP", "15555550123"));
  assert_menu(incoming(w, "DUP", "15555550123"));
  assert_int_equal(double_stat(w->dbl, "requests"), 1);
  world_stop(w);
}

/* ---- lifecycle ------------------------------------------------------- */

/* SIGTERM with a lookup in flight: the caller still gets an answer. */
static void test_graceful_shutdown(void **state)
{
  struct world *w = world_start(&(struct opts){.timeout_ms = 2000});
  char *resp = NULL;
  pid_t child;

  (void)state;
  double_control(w->dbl, "{\"delay_ms\":700}");
  child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    struct timespec ts = {0, 200 * 1000000L};

    nanosleep(&ts, NULL);
    kill(w->srv->pid, SIGTERM);
    _exit(0);
  }
  assert_int_equal(
      post_event(w->srv,
                 "{\"event\":\"incoming_call\",\"reference_id\":\"TERM\","
                 "\"data\":{\"from\":\"15555550123\"}}",
                 &resp),
      200);
  assert_menu(resp);
  waitpid(child, NULL, 0);
  assert_int_equal(proc_stop(w->srv), 0);
  /* The record was flushed before exit. */
  {
    char *rec = record_of("TERM");
    char buf[64];

    assert_string_equal(field(rec, "decision", buf, sizeof(buf)), "allow");
    free(rec);
  }
  proc_stop(w->dbl);
  free(w);
  harness_cleanup();
}

/* A restart between two events of a call: state comes from the database. */
static void test_restart_mid_call(void **state)
{
  struct world *w = world_start(&(struct opts){0});
  char *a;

  (void)state;
  assert_menu(incoming(w, "RESTART", "15555550123"));
  w->srv = server_restart(w->srv);
  assert_non_null(w->srv);
  a = pressed(w, "RESTART", "2");
  assert_true(json_has(a, "params.to", "15555550102"));
  assert_method(a, "dial");
  world_stop(w);
}

static void test_refuses_bad_config(void **state)
{
  const char *args[] = {"check-config", NULL, NULL};
  struct proc *srv;
  char *out = NULL;

  (void)state;
  srv = server_start(
      "telesign:\n  provider: telesign\n"
      "menu:\n  options:\n"
      "    - {digit: \"1\", name: Sales, dial: \"15555550101\"}\n",
      NULL);
  assert_null(srv);
  assert_non_null(strstr(harness_last_log(), "no credentials"));
  args[1] = harness_config();
  assert_int_equal(run_cli(&out, args), 1);
  assert_non_null(strstr(out, "no credentials"));
  free(out);
  harness_cleanup();
}

/* ---- the command line ------------------------------------------------ */

static void test_cli_call_and_calls(void **state)
{
  struct world *w = world_start(&(struct opts){.provider = "simulator"});
  char url[128];
  char *out = NULL;
  const char *call[] = {"call", "15555550123",    "--press", "1", "--url",
                        url,    "--reference-id", "CLI1",    NULL};
  const char *calls[] = {"calls", "--config", harness_config(), NULL};

  (void)state;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/telesign/voice",
           w->srv->port);
  assert_int_equal(run_cli(&out, call), 0);
  assert_non_null(strstr(out, "speak \"" GREETING "\""));
  assert_non_null(strstr(out, "presses 1"));
  assert_non_null(strstr(out, "dial 15555550101"));
  assert_non_null(strstr(out, "call CLI1 ended"));
  free(out);
  assert_record("CLI1", "status", "hangup");
  assert_int_equal(run_cli(&out, calls), 0);
  assert_non_null(strstr(out, "CLI1"));
  assert_non_null(strstr(out, "Sales"));
  assert_non_null(strstr(out, "score:123<600"));
  free(out);
  world_stop(w);
}

static void test_cli_score(void **state)
{
  struct world *w = world_start(&(struct opts){0});
  const char *args[] = {"score", "+1 555 555 0742", "--config",
                        harness_config(), NULL};
  char *out = NULL;

  (void)state;
  assert_int_equal(run_cli(&out, args), 0);
  assert_non_null(strstr(out, "score:           742"));
  assert_non_null(strstr(out, "recommendation:  block"));
  free(out);
  double_control(w->dbl, "{\"mode\":\"http_error\",\"http_status\":503}");
  assert_int_equal(run_cli(&out, args), 1);
  assert_non_null(strstr(out, "http_503"));
  free(out);
  world_stop(w);
}

/* Kills whatever a failed test left running and removes its files. */
static int teardown(void **state)
{
  (void)state;
  harness_cleanup();
  return 0;
}

#define TEST(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
  const struct CMUnitTest tests[] = {
      TEST(test_routed_to_each_department),
      TEST(test_caller_id_of_caller),
      TEST(test_no_input_then_goodbye),
      TEST(test_invalid_digit),
      TEST(test_dial_not_answered),
      TEST(test_blocked_caller),
      TEST(test_threshold_edges),
      TEST(test_score_failures_allow),
      TEST(test_score_failures_block),
      TEST(test_connection_refused),
      TEST(test_unscorable_callers),
      TEST(test_intelligence_hmac),
      TEST(test_legacy_hmac),
      TEST(test_intelligence_basic),
      TEST(test_wrong_credentials),
      TEST(test_score_as_string),
      TEST(test_keep_alive),
      TEST(test_unknown_event_and_call),
      TEST(test_malformed_requests),
      TEST(test_health),
      TEST(test_duplicate_incoming),
      TEST(test_graceful_shutdown),
      TEST(test_restart_mid_call),
      TEST(test_refuses_bad_config),
      TEST(test_cli_call_and_calls),
      TEST(test_cli_score),
  };

  /* VS_TEST_FILTER=test_name* runs a subset, for debugging. */
  if (getenv("VS_TEST_FILTER"))
    cmocka_set_test_filter(getenv("VS_TEST_FILTER"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
