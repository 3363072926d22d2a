/*
 * Unit tests for config/config: the example files load, defaults and the
 * environment overrides apply, the policy version follows the file's bytes,
 * and a table of broken files each fails with the documented
 * "FILE:LINE:COLUMN: KEY: reason" message at the right line.
 *
 * Each YAML snippet is written to a temporary file (mkstemp under $TMPDIR or
 * /tmp) because config_load() takes a path. The examples are found under
 * VS_SOURCE_ROOT, which the build sets to the source tree (or the environment
 * variable of the same name, or the working directory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/config/config.h"
#include "../../src/util/err.h"

#ifndef VS_SOURCE_ROOT
#define VS_SOURCE_ROOT "."
#endif

/* Lines 1-2 and 3-5 of most snippets: a simulator and a one-option menu. */
#define SIM "telesign:\n  provider: simulator\n"
#define MENU                                                                  \
  "menu:\n  options:\n    - {digit: '1', name: Sales, dial: 15555550101}\n"

#define SECRET "SuperSecretKey+abc/123=="

struct tmpfile {
  char path[512];
};

static void write_file(struct tmpfile *t, const char *data, size_t len)
{
  const char *dir = getenv("TMPDIR");
  FILE *f;
  int fd;

  if (!dir || !*dir)
    dir = "/tmp";
  snprintf(t->path, sizeof(t->path), "%s/test_config_XXXXXX", dir);
  fd = mkstemp(t->path);
  assert_true(fd >= 0);
  f = fdopen(fd, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void write_text(struct tmpfile *t, const char *yaml)
{
  write_file(t, yaml, strlen(yaml));
}

static void clear_env(void)
{
  unsetenv("TELESIGN_CUSTOMER_ID");
  unsetenv("TELESIGN_API_KEY");
}

/* Loads a snippet that must be valid; the caller frees the result. */
static struct config *load_ok(const char *yaml)
{
  struct tmpfile t;
  struct config *cfg = NULL;
  char err[1024] = "";
  int rc;

  write_text(&t, yaml);
  rc = config_load(t.path, &cfg, err, sizeof(err));
  unlink(t.path);
  if (rc)
    print_error("unexpected failure: %s\n", err);
  assert_int_equal(rc, 0);
  assert_non_null(cfg);
  return cfg;
}

/*
 * Loads a snippet that must fail, into `err` with the path replaced by
 * "FILE" so that expectations can be written literally. Checks that *out is
 * left alone.
 */
static int load_fail(const char *yaml, char *err, size_t errlen)
{
  struct tmpfile t;
  struct config *untouched = (struct config *)&t;
  struct config *cfg = untouched;
  char raw[1024] = "";
  size_t plen;
  int rc;

  write_text(&t, yaml);
  rc = config_load(t.path, &cfg, raw, sizeof(raw));
  unlink(t.path);
  assert_true(rc < 0);
  assert_ptr_equal(cfg, untouched);
  plen = strlen(t.path);
  assert_memory_equal(raw, t.path, plen);
  snprintf(err, errlen, "FILE%s", raw + plen);
  return rc;
}

/* ---- the examples ---------------------------------------------------- */

static void example_path(char *out, size_t outlen, const char *name)
{
  const char *root = getenv("VS_SOURCE_ROOT");

  snprintf(out, outlen, "%s/examples/%s",
           root && *root ? root : VS_SOURCE_ROOT, name);
}

static void test_demo_example_loads(void **state)
{
  struct config *cfg = NULL;
  char path[1024];
  char err[1024] = "";

  (void)state;
  clear_env();
  example_path(path, sizeof(path), "demo.yaml");
  if (config_load(path, &cfg, err, sizeof(err)))
    print_error("%s (is VS_SOURCE_ROOT the source tree?)\n", err);
  assert_non_null(cfg);
  assert_int_equal(cfg->telesign.provider, PROVIDER_SIMULATOR);
  assert_string_equal(cfg->server.listen, "127.0.0.1:8080");
  assert_string_equal(cfg->store.path, "./var/voice-and-score.db");
  assert_int_equal(cfg->screening.block_at, 600);
  /* The demo's comment promises that 15555550450 (score 450) is
   * challenged. */
  assert_int_equal(cfg->screening.challenge_at, 400);
  assert_int_equal(cfg->screening.decide_by, DECIDE_BY_SCORE);
  assert_int_equal(cfg->screening.mode, MODE_ENFORCE);
  assert_true(450 >= cfg->screening.challenge_at &&
              450 < cfg->screening.block_at);
  assert_int_equal(cfg->menu.options_count, 3);
  assert_string_equal(cfg->menu.options[0].name, "Sales");
  assert_string_equal(cfg->menu.options[0].dial, "15555550101");
  assert_string_equal(cfg->menu.options[1].name, "Support");
  assert_string_equal(cfg->menu.options[1].dial, "15555550102");
  assert_string_equal(cfg->menu.options[2].name, "Billing");
  assert_string_equal(cfg->menu.options[2].dial, "15555550103");
  assert_string_equal(cfg->menu.greeting,
                      "Thank you for calling. For Sales, press 1. For "
                      "Support, press 2. For Billing, press 3.");
  assert_string_equal(cfg->path, path);
  config_free(cfg);
}

static void test_production_example_loads(void **state)
{
  struct config *cfg = NULL;
  char path[1024];
  char err[1024] = "";

  (void)state;
  example_path(path, sizeof(path), "voice-and-score.yaml");

  /* Credentials are meant to come from the environment. */
  clear_env();
  assert_int_equal(config_load(path, &cfg, err, sizeof(err)), VS_ERR_INVAL);
  assert_null(cfg);
  if (!strstr(err, "no credentials are set"))
    print_error("%s (is VS_SOURCE_ROOT the source tree?)\n", err);
  assert_non_null(strstr(err, "no credentials are set"));

  setenv("TELESIGN_CUSTOMER_ID", "FFFFFFFF-EEEE-DDDD-1234-AB1234567890", 1);
  setenv("TELESIGN_API_KEY", SECRET, 1);
  assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
  clear_env();
  assert_int_equal(cfg->telesign.provider, PROVIDER_TELESIGN);
  assert_int_equal(cfg->telesign.score_api, SCORE_API_INTELLIGENCE);
  assert_int_equal(cfg->telesign.auth, AUTH_HMAC);
  assert_string_equal(cfg->telesign.customer_id,
                      "FFFFFFFF-EEEE-DDDD-1234-AB1234567890");
  assert_string_equal(cfg->telesign.api_key, SECRET);
  assert_string_equal(cfg->server.listen, "127.0.0.1:8080");
  /* The file writes out every screening key with its default. */
  assert_int_equal(cfg->screening.mode, MODE_ENFORCE);
  assert_string_equal(cfg->screening.default_country, "1");
  assert_int_equal(cfg->screening.anonymous, VERDICT_CHALLENGE);
  assert_int_equal(cfg->screening.decide_by, DECIDE_BY_SCORE);
  assert_int_equal(cfg->screening.block_at, 680);
  assert_int_equal(cfg->screening.challenge_at, 250);
  assert_int_equal(cfg->screening.on_score_error, VERDICT_CHALLENGE);
  assert_int_equal(cfg->screening.score_cache_ttl_s, 2592000);
  assert_int_equal(cfg->screening.max_numbers, 131072);
  assert_int_equal(cfg->screening.block_action, BLOCK_ACTION_MESSAGE);
  assert_string_equal(cfg->screening.block_audio_url, "");
  assert_int_equal(cfg->screening.velocity.window_s, 600);
  assert_int_equal(cfg->screening.velocity.max_calls, 1);
  assert_int_equal(cfg->screening.velocity.action, VERDICT_CHALLENGE);
  assert_string_equal(cfg->screening.challenge.message,
                      "To be connected, press {digit}.");
  assert_string_equal(cfg->screening.challenge.retry_message,
                      "That was not the right key.");
  assert_int_equal(cfg->screening.challenge.attempts, 2);
  assert_int_equal(cfg->screening.challenge.pass_ttl_s, 2592000);
  assert_int_equal(cfg->screening.challenge.fail_block_after, 1);
  assert_int_equal(cfg->screening.challenge.fail_block_ttl_s, 604800);
  assert_int_equal(cfg->menu.options_count, 3);
  assert_non_null(config_menu_option(cfg, '3'));
  config_free(cfg);
}

/* ---- defaults, values, environment ------------------------------------ */

static void test_defaults(void **state)
{
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok(SIM MENU);
  assert_string_equal(cfg->server.listen, "127.0.0.1:8080");
  assert_string_equal(cfg->server.webhook_path, "/telesign/voice");
  assert_int_equal(cfg->server.max_body, 65536);
  assert_int_equal(cfg->server.max_connections, 1024);
  assert_int_equal(cfg->server.idle_timeout_s, 30);
  assert_int_equal(cfg->telesign.provider, PROVIDER_SIMULATOR);
  assert_string_equal(cfg->telesign.customer_id, "");
  assert_string_equal(cfg->telesign.api_key, "");
  assert_int_equal(cfg->telesign.score_api, SCORE_API_INTELLIGENCE);
  assert_string_equal(cfg->telesign.score_url,
                      CONFIG_DEFAULT_INTELLIGENCE_URL);
  assert_int_equal(cfg->telesign.auth, AUTH_HMAC);
  assert_int_equal(cfg->telesign.timeout_ms, 1500);
  assert_string_equal(cfg->telesign.virtual_number, "");
  assert_string_equal(cfg->telesign.account_lifecycle_event, "transact");
  assert_string_equal(cfg->telesign.ca_file, "");
  assert_int_equal(cfg->telesign.max_connections, 64);
  assert_int_equal(cfg->screening.mode, MODE_ENFORCE);
  assert_string_equal(cfg->screening.default_country, "1");
  assert_int_equal(cfg->screening.anonymous, VERDICT_CHALLENGE);
  assert_int_equal(cfg->screening.decide_by, DECIDE_BY_SCORE);
  /* The balanced preset's values. */
  assert_int_equal(cfg->screening.preset, PRESET_BALANCED);
  assert_int_equal(cfg->screening.block_at, 680);
  assert_int_equal(cfg->screening.challenge_at, 250);
  assert_int_equal(cfg->screening.on_score_error, VERDICT_CHALLENGE);
  assert_int_equal(cfg->screening.score_cache_ttl_s, 2592000);
  assert_int_equal(cfg->screening.block_action, BLOCK_ACTION_MESSAGE);
  assert_string_equal(cfg->screening.block_message,
                      "We are unable to take your call.");
  assert_string_equal(cfg->screening.block_audio_url, "");
  assert_int_equal(cfg->screening.velocity.window_s, 600);
  assert_int_equal(cfg->screening.velocity.max_calls, 1);
  assert_int_equal(cfg->screening.velocity.action, VERDICT_CHALLENGE);
  assert_string_equal(cfg->screening.challenge.message,
                      "To be connected, press {digit}.");
  assert_string_equal(cfg->screening.challenge.retry_message,
                      "That was not the right key.");
  assert_int_equal(cfg->screening.challenge.attempts, 2);
  assert_int_equal(cfg->screening.challenge.pass_ttl_s, 2592000);
  assert_int_equal(cfg->screening.challenge.fail_block_after, 1);
  assert_int_equal(cfg->screening.challenge.fail_block_ttl_s, 604800);
  assert_string_equal(cfg->menu.greeting,
                      "Thank you for calling. For Sales, press 1.");
  assert_string_equal(cfg->menu.language, "en-US");
  assert_int_equal(cfg->menu.attempts, 3);
  assert_int_equal(cfg->menu.caller_id, CALLER_ID_VIRTUAL);
  assert_string_equal(cfg->menu.invalid_message,
                      "That is not a valid choice.");
  assert_string_equal(cfg->menu.goodbye_message, "Goodbye.");
  assert_string_equal(
      cfg->menu.unavailable_message,
      "No one is available to take your call. Please try again later.");
  assert_string_equal(cfg->store.path, "./var/voice-and-score.db");
  assert_string_equal(cfg->log.level, "info");
  config_free(cfg);
}

static void test_explicit_values(void **state)
{
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok("server:\n"
                "  listen: '[::1]:0'\n"
                "  webhook_path: /hooks/voice\n"
                "  max_body: 1024\n"
                "  max_connections: 100000\n"
                "  idle_timeout_s: 3600\n"
                "telesign:\n"
                "  provider: telesign\n"
                "  customer_id: cust-1\n"
                "  api_key: " SECRET "\n"
                "  score_api: legacy\n"
                "  auth: basic\n"
                "  timeout_ms: 100\n"
                "  virtual_number: '15555550100'\n"
                "  account_lifecycle_event: sign-in\n"
                "  ca_file: /etc/ssl/my ca.pem\n"
                "  max_connections: 10000\n"
                "screening:\n"
                "  mode: shadow\n"
                "  default_country: '44'\n"
                "  anonymous: block\n"
                "  decide_by: recommendation\n"
                "  block_at: 0\n"
                "  challenge_at: 0\n"
                "  on_score_error: block\n"
                "  score_cache_ttl_s: 0\n"
                "  block_action: play\n"
                "  block_message: Go away.\n"
                "  block_audio_url: https://cdn.example.com/sit.wav\n"
                "  velocity:\n"
                "    window_s: 86400\n"
                "    max_calls: 0\n"
                "    action: block\n"
                "  challenge:\n"
                "    message: 'Press {digit} now: {digit'\n"
                "    retry_message: Wrong.\n"
                "    attempts: 5\n"
                "    pass_ttl_s: 60\n"
                "    fail_block_after: 0\n"
                "    fail_block_ttl_s: 31536000\n"
                "menu:\n"
                "  greeting: Hello.\n"
                "  language: fr-FR\n"
                "  attempts: 10\n"
                "  caller_id: caller\n"
                "  invalid_message: No.\n"
                "  goodbye_message: Bye.\n"
                "  unavailable_message: Nobody.\n"
                "  options:\n"
                "    - {digit: '#', name: Front desk, dial: '44207946000'}\n"
                "store:\n"
                "  path: /tmp/calls.db\n"
                "log:\n"
                "  level: debug\n");
  assert_string_equal(cfg->server.listen, "[::1]:0");
  assert_string_equal(cfg->server.webhook_path, "/hooks/voice");
  assert_int_equal(cfg->server.max_body, 1024);
  assert_int_equal(cfg->server.max_connections, 100000);
  assert_int_equal(cfg->server.idle_timeout_s, 3600);
  assert_int_equal(cfg->telesign.provider, PROVIDER_TELESIGN);
  assert_string_equal(cfg->telesign.customer_id, "cust-1");
  assert_string_equal(cfg->telesign.api_key, SECRET);
  assert_int_equal(cfg->telesign.score_api, SCORE_API_LEGACY);
  /* An explicit score_api without score_url picks that API's default. */
  assert_string_equal(cfg->telesign.score_url, CONFIG_DEFAULT_LEGACY_URL);
  assert_int_equal(cfg->telesign.auth, AUTH_BASIC);
  assert_int_equal(cfg->telesign.timeout_ms, 100);
  assert_string_equal(cfg->telesign.virtual_number, "15555550100");
  assert_string_equal(cfg->telesign.account_lifecycle_event, "sign-in");
  assert_string_equal(cfg->telesign.ca_file, "/etc/ssl/my ca.pem");
  assert_int_equal(cfg->telesign.max_connections, 10000);
  assert_int_equal(cfg->screening.mode, MODE_SHADOW);
  assert_string_equal(cfg->screening.default_country, "44");
  assert_int_equal(cfg->screening.anonymous, VERDICT_BLOCK);
  assert_int_equal(cfg->screening.decide_by, DECIDE_BY_RECOMMENDATION);
  /* 0 written in the file is kept, not mistaken for "absent". */
  assert_int_equal(cfg->screening.block_at, 0);
  assert_int_equal(cfg->screening.challenge_at, 0);
  assert_int_equal(cfg->screening.on_score_error, VERDICT_BLOCK);
  assert_int_equal(cfg->screening.score_cache_ttl_s, 0);
  assert_int_equal(cfg->screening.block_action, BLOCK_ACTION_PLAY);
  assert_string_equal(cfg->screening.block_message, "Go away.");
  assert_string_equal(cfg->screening.block_audio_url,
                      "https://cdn.example.com/sit.wav");
  assert_int_equal(cfg->screening.velocity.window_s, 86400);
  assert_int_equal(cfg->screening.velocity.max_calls, 0);
  assert_int_equal(cfg->screening.velocity.action, VERDICT_BLOCK);
  /* Only the exact "{digit}" counts; "{digit" is left alone. */
  assert_string_equal(cfg->screening.challenge.message,
                      "Press {digit} now: {digit");
  assert_string_equal(cfg->screening.challenge.retry_message, "Wrong.");
  assert_int_equal(cfg->screening.challenge.attempts, 5);
  assert_int_equal(cfg->screening.challenge.pass_ttl_s, 60);
  assert_int_equal(cfg->screening.challenge.fail_block_after, 0);
  assert_int_equal(cfg->screening.challenge.fail_block_ttl_s, 31536000);
  assert_string_equal(cfg->menu.greeting, "Hello.");
  assert_string_equal(cfg->menu.language, "fr-FR");
  assert_int_equal(cfg->menu.attempts, 10);
  assert_int_equal(cfg->menu.caller_id, CALLER_ID_CALLER);
  assert_string_equal(cfg->menu.invalid_message, "No.");
  assert_string_equal(cfg->menu.goodbye_message, "Bye.");
  assert_string_equal(cfg->menu.unavailable_message, "Nobody.");
  assert_int_equal(cfg->menu.options_count, 1);
  assert_string_equal(cfg->menu.options[0].digit, "#");
  assert_string_equal(cfg->menu.options[0].name, "Front desk");
  assert_string_equal(cfg->menu.options[0].dial, "44207946000");
  assert_string_equal(cfg->store.path, "/tmp/calls.db");
  assert_string_equal(cfg->log.level, "debug");
  config_free(cfg);
}

static void test_listen_forms(void **state)
{
  static const char *const good[] = {
      "0.0.0.0:8080", "127.0.0.1:0",          "localhost:65535",
      "[::]:443",     "voice.example.com:80", "[2001:db8::1]:8443",
  };
  char yaml[512];

  (void)state;
  clear_env();
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    struct config *cfg;

    snprintf(yaml, sizeof(yaml), SIM MENU "server: {listen: '%s'}\n", good[i]);
    cfg = load_ok(yaml);
    assert_string_equal(cfg->server.listen, good[i]);
    config_free(cfg);
  }
}

/* Each verdict, written where a verdict is taken, is the one loaded. */
static void test_screening_verdicts(void **state)
{
  static const struct {
    const char *name;
    enum config_verdict v;
  } verdicts[] = {
      {"allow", VERDICT_ALLOW},
      {"challenge", VERDICT_CHALLENGE},
      {"block", VERDICT_BLOCK},
  };
  char yaml[512];

  (void)state;
  clear_env();
  for (size_t i = 0; i < sizeof(verdicts) / sizeof(verdicts[0]); i++) {
    const char *n = verdicts[i].name;
    struct config *cfg;

    snprintf(yaml, sizeof(yaml),
             SIM MENU "screening:\n  anonymous: %s\n  on_score_error: %s\n"
                      "  velocity: {action: %s}\n",
             n, n, n);
    cfg = load_ok(yaml);
    assert_int_equal(cfg->screening.anonymous, verdicts[i].v);
    assert_int_equal(cfg->screening.on_score_error, verdicts[i].v);
    assert_int_equal(cfg->screening.velocity.action, verdicts[i].v);
    config_free(cfg);
  }
  {
    struct config *cfg =
        load_ok(SIM MENU "screening: {block_action: hangup}\n");

    assert_int_equal(cfg->screening.block_action, BLOCK_ACTION_HANGUP);
    config_free(cfg);
  }
}

/*
 * The nested sections: a key set in one leaves its siblings at their
 * defaults, empty sections are fine, and flow and block style load alike.
 */
/* A file from before the challenge band: no challenge_at, a low block_at. */
/* A preset sets the keys the file leaves out, and only those. */
static void test_presets(void **state)
{
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok(SIM MENU "screening: {preset: open}\n");
  assert_int_equal(cfg->screening.preset, PRESET_OPEN);
  assert_int_equal(cfg->screening.block_at, 800);
  assert_int_equal(cfg->screening.challenge_at, 650);
  assert_int_equal(cfg->screening.anonymous, VERDICT_ALLOW);
  assert_int_equal(cfg->screening.on_score_error, VERDICT_ALLOW);
  assert_int_equal(cfg->screening.velocity.max_calls, 3);
  assert_int_equal(cfg->screening.challenge.fail_block_after, 3);
  config_free(cfg);

  cfg = load_ok(SIM MENU "screening:\n  preset: strict\n  block_at: 700\n"
                         "  velocity: {action: challenge}\n");
  assert_int_equal(cfg->screening.block_at, 700); /* the file's own */
  assert_int_equal(cfg->screening.challenge_at, 0);
  assert_int_equal(cfg->screening.velocity.max_calls, 2);
  assert_int_equal(cfg->screening.velocity.action, VERDICT_CHALLENGE);
  assert_int_equal(cfg->screening.challenge.fail_block_after, 2);
  config_free(cfg);

  /* balanced is the defaults. */
  cfg = load_ok(SIM MENU "screening: {preset: balanced}\n");
  assert_int_equal(cfg->screening.block_at, 680);
  assert_int_equal(cfg->screening.velocity.max_calls, 1);
  config_free(cfg);
}

static void test_challenge_at_follows_block_at(void **state)
{
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok(SIM MENU "screening:\n  block_at: 200\n");
  assert_int_equal(cfg->screening.block_at, 200);
  assert_int_equal(cfg->screening.challenge_at, 200);
  config_free(cfg);
}

static void test_webhook_section(void **state)
{
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok(SIM MENU);
  assert_int_equal(cfg->webhook.verify, VERIFY_LOG);
  assert_string_equal(cfg->webhook.token, "");
  config_free(cfg);
  cfg = load_ok(SIM MENU "webhook:\n  verify: off\n"
                         "  token: abcdefghijklmnop_-09\n");
  assert_int_equal(cfg->webhook.verify, VERIFY_OFF);
  assert_string_equal(cfg->webhook.token, "abcdefghijklmnop_-09");
  config_free(cfg);
}

static void test_screening_nested(void **state)
{
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok(SIM MENU "screening:\n"
                         "  velocity: {max_calls: 30}\n"
                         "  challenge:\n"
                         "    attempts: 1\n");
  assert_int_equal(cfg->screening.velocity.window_s, 600);
  assert_int_equal(cfg->screening.velocity.max_calls, 30);
  assert_int_equal(cfg->screening.velocity.action, VERDICT_CHALLENGE);
  assert_string_equal(cfg->screening.challenge.message,
                      "To be connected, press {digit}.");
  assert_string_equal(cfg->screening.challenge.retry_message,
                      "That was not the right key.");
  assert_int_equal(cfg->screening.challenge.attempts, 1);
  assert_int_equal(cfg->screening.challenge.pass_ttl_s, 2592000);
  assert_int_equal(cfg->screening.challenge.fail_block_after, 1);
  assert_int_equal(cfg->screening.challenge.fail_block_ttl_s, 604800);
  /* Top-level screening keys are untouched by the nested ones. */
  assert_int_equal(cfg->screening.block_at, 680);
  assert_int_equal(cfg->screening.challenge_at, 250);
  config_free(cfg);

  cfg = load_ok(SIM MENU "screening: {velocity: {}, challenge: {}}\n");
  assert_int_equal(cfg->screening.velocity.window_s, 600);
  assert_int_equal(cfg->screening.velocity.max_calls, 1);
  assert_int_equal(cfg->screening.velocity.action, VERDICT_CHALLENGE);
  assert_int_equal(cfg->screening.challenge.attempts, 2);
  assert_string_equal(cfg->screening.challenge.message,
                      "To be connected, press {digit}.");
  config_free(cfg);

  /* challenge_at may equal block_at (no challenge band), either way set. */
  cfg = load_ok(SIM MENU "screening: {block_at: 200}\n");
  assert_int_equal(cfg->screening.block_at, 200);
  assert_int_equal(cfg->screening.challenge_at, 200);
  config_free(cfg);
  cfg = load_ok(SIM MENU "screening: {block_at: 1000, challenge_at: 1000}\n");
  assert_int_equal(cfg->screening.challenge_at, 1000);
  config_free(cfg);

  /* Country codes of one to three digits. */
  cfg = load_ok(SIM MENU "screening: {default_country: 1}\n");
  assert_string_equal(cfg->screening.default_country, "1");
  config_free(cfg);
  cfg = load_ok(SIM MENU "screening: {default_country: 353}\n");
  assert_string_equal(cfg->screening.default_country, "353");
  config_free(cfg);
}

/* ---- the policy version ------------------------------------------------ */

static void load_version(const char *data, size_t len, char out[17])
{
  struct tmpfile t;
  struct config *cfg = NULL;
  char err[1024] = "";
  int rc;

  write_file(&t, data, len);
  rc = config_load(t.path, &cfg, err, sizeof(err));
  unlink(t.path);
  if (rc)
    print_error("unexpected failure: %s\n", err);
  assert_int_equal(rc, 0);
  memcpy(out, cfg->policy_version, 17);
  config_free(cfg);
}

static void test_policy_version(void **state)
{
  const char *yaml = SIM MENU;
  size_t len = strlen(yaml);
  char copy[256];
  char a[17];
  char b[17];
  char c[17];

  (void)state;
  clear_env();
  load_version(yaml, len, a);
  /* 16 lowercase hex digits, NUL-terminated. */
  assert_int_equal(strlen(a), 16);
  assert_int_equal(strspn(a, "0123456789abcdef"), 16);
  /* 64-bit FNV-1a of exactly these bytes (computed independently). */
  assert_string_equal(a, "c4d1be4c476dd7b3");

  /* An identical file, elsewhere, has the same version. */
  load_version(yaml, len, b);
  assert_string_equal(a, b);

  /* One byte changed changes it: a value's, or one that means nothing to
   * YAML (the indentation of a flow mapping). */
  assert_true(len + 4 < sizeof(copy));
  memcpy(copy, yaml, len + 1);
  copy[len - 3] = '2'; /* the dial number's second-last digit */
  load_version(copy, len, c);
  assert_string_not_equal(a, c);
  assert_int_equal(strlen(c), 16);
  assert_int_equal(strspn(c, "0123456789abcdef"), 16);
  memcpy(copy, yaml, len + 1);
  copy[strlen(yaml) - strlen("'1', name: Sales, dial: 15555550101}\n") - 1] =
      '\t'; /* the space after "digit:" */
  load_version(copy, len, c);
  assert_string_not_equal(a, c);

  /* Bytes after the YAML (a comment, no newline) count too. */
  memcpy(copy, yaml, len);
  memcpy(copy + len, "# x", 4);
  load_version(copy, len + 3, c);
  assert_string_not_equal(a, c);
}

static void test_env_overrides(void **state)
{
  const char *yaml = "telesign:\n"
                     "  customer_id: from-file\n"
                     "  api_key: file-key-123\n" MENU;
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok(yaml);
  assert_string_equal(cfg->telesign.customer_id, "from-file");
  assert_string_equal(cfg->telesign.api_key, "file-key-123");
  config_free(cfg);

  setenv("TELESIGN_CUSTOMER_ID", "from-env", 1);
  setenv("TELESIGN_API_KEY", "env-key-456", 1);
  cfg = load_ok(yaml);
  assert_string_equal(cfg->telesign.customer_id, "from-env");
  assert_string_equal(cfg->telesign.api_key, "env-key-456");
  config_free(cfg);

  /* Empty variables are treated as unset. */
  setenv("TELESIGN_CUSTOMER_ID", "", 1);
  setenv("TELESIGN_API_KEY", "", 1);
  cfg = load_ok(yaml);
  assert_string_equal(cfg->telesign.customer_id, "from-file");
  assert_string_equal(cfg->telesign.api_key, "file-key-123");
  config_free(cfg);

  /* The environment alone is enough for provider telesign. */
  setenv("TELESIGN_CUSTOMER_ID", "only-env", 1);
  setenv("TELESIGN_API_KEY", "only-env-key", 1);
  cfg = load_ok(MENU);
  assert_int_equal(cfg->telesign.provider, PROVIDER_TELESIGN);
  assert_string_equal(cfg->telesign.customer_id, "only-env");
  assert_string_equal(cfg->telesign.api_key, "only-env-key");
  config_free(cfg);
  clear_env();
}

static void test_default_greeting(void **state)
{
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok(SIM "menu:\n"
                    "  options:\n"
                    "    - {digit: '0', name: Operator, dial: 15555550100}\n"
                    "    - {digit: '*', name: Sales, dial: 15555550101}\n"
                    "    - {digit: '#', name: Support, dial: 15555550102}\n");
  assert_string_equal(cfg->menu.greeting,
                      "Thank you for calling. For Operator, press 0. For "
                      "Sales, press star. For Support, press pound.");
  config_free(cfg);
}

static void test_lookups(void **state)
{
  struct config *cfg;

  (void)state;
  clear_env();
  cfg = load_ok(SIM "menu:\n"
                    "  options:\n"
                    "    - {digit: 1, name: Sales, dial: 15555550101}\n"
                    "    - {digit: '#', name: Support, dial: 15555550102}\n");
  assert_string_equal(config_menu_option(cfg, '1')->name, "Sales");
  assert_string_equal(config_menu_option(cfg, '#')->name, "Support");
  assert_null(config_menu_option(cfg, '2'));
  assert_null(config_menu_option(cfg, '\0'));
  assert_null(config_menu_option(NULL, '1'));
  assert_string_equal(config_provider_name(PROVIDER_TELESIGN), "telesign");
  assert_string_equal(config_provider_name(PROVIDER_SIMULATOR), "simulator");
  config_free(cfg);
  config_free(NULL);
}

/* ---- the table of broken files --------------------------------------- */

struct err_case {
  const char *yaml;
  unsigned line; /* 0: the message must have no position */
  unsigned col;  /* 0: not checked */
  const char *want;
};

static char long_message[1100];

static const struct err_case err_cases[] = {
    /* Types, keys and enums, reported from libcyaml's backtrace. */
    {SIM "  timeout_ms: fast\n" MENU, 3, 15,
     "telesign.timeout_ms: expected a whole number, not 'fast'"},
    {SIM MENU "screening:\n  blok_at: 600\n", 7, 3,
     "screening.blok_at: unknown key (did you mean 'block_at'?)"},
    {SIM MENU "srever:\n  listen: 127.0.0.1:8080\n", 6, 1,
     "srever: unknown key (did you mean 'server'?)"},
    {SIM MENU "store:\n  file: x.db\n", 7, 3,
     "store.file: unknown key (expected one of: driver, path, url, "
     "retention_days, commit_wait_ms, answer_log_mib)"},
    {SIM "menu:\n  options:\n    - digit: '1'\n      name: Sales\n"
         "      dial: 15555550101\n      dail: 1\n",
     8, 7, "menu.options[0].dail: unknown key (did you mean 'dial'?)"},
    {"telesign:\n  provider: simulater\n" MENU, 2, 13,
     "telesign.provider: 'simulater' is not one of: telesign, simulator"},
    {SIM MENU "screening:\n  on_score_error: maybe\n", 7, 19,
     "screening.on_score_error: 'maybe' is not one of: allow, challenge, "
     "block"},
    {SIM "  auth: 1\n" MENU, 3, 9,
     "telesign.auth: '1' is not one of: hmac, basic"},
    {SIM MENU "server:\n  listen: [127.0.0.1]\n", 7, 11,
     "server.listen: expected a text value, found a list"},
    {SIM MENU "server: 8080\n", 6, 9,
     "server: expected a mapping of keys, found a single value"},
    {SIM MENU "screening:\n  block_at: 1\n  block_at: 2\n", 8, 3,
     "screening.block_at: duplicate key (it is already set on line 7)"},
    {SIM "menu:\n  options:\n    - {digit: '1', name: Sales}\n", 5, 7,
     "menu.options[0]: missing required key 'dial'"},
    {"- server\n", 1, 1,
     "top level: expected a mapping of keys, found a list"},
    {SIM MENU "log: {level: [[[[[[[[[[info]]]]]]]]]]}\n", 6, 20,
     "log.level[0][0][0][0][0][0]: nested too deeply"},
    /* Syntax, read by libyaml before libcyaml. */
    {SIM MENU "server:\n  listen: a: b\n", 7, 12,
     "invalid YAML: mapping values are not allowed"},
    {SIM MENU "server:\n\tlisten: x\n", 7, 1,
     "invalid YAML: found character that cannot start any token"},
    {SIM MENU "---\nlog: {level: info}\n", 6, 1,
     "only one YAML document is allowed"},
    {SIM MENU "server: &s {listen: '0.0.0.0:1'}\nlog: *s\n", 7, 6,
     "log: aliases (*name) are not supported"},
    /* Numbers. */
    {SIM MENU "screening:\n  block_at: 0600\n", 7, 13,
     "screening.block_at: '0600' is not a plain decimal number"},
    {SIM "  timeout_ms: 1e3\n" MENU, 3, 15,
     "telesign.timeout_ms: '1e3' is not a plain decimal number"},
    {SIM MENU "server:\n  max_body: 512\n", 7, 13,
     "server.max_body: must be between 1024 and 16777216, not 512"},
    {SIM MENU "server:\n  max_body: 16777217\n", 7, 13,
     "server.max_body: must be between 1024 and 16777216, not 16777217"},
    {SIM MENU "server:\n  max_connections: 0\n", 7, 20,
     "server.max_connections: must be between 1 and 100000, not 0"},
    {SIM MENU "server:\n  idle_timeout_s: 3601\n", 7, 19,
     "server.idle_timeout_s: must be between 1 and 3600, not 3601"},
    {SIM "  timeout_ms: 99\n" MENU, 3, 15,
     "telesign.timeout_ms: must be between 100 and 10000, not 99"},
    {SIM "  timeout_ms: 10001\n" MENU, 3, 15,
     "telesign.timeout_ms: must be between 100 and 10000, not 10001"},
    {SIM "  max_connections: 10001\n" MENU, 3, 20,
     "telesign.max_connections: must be between 1 and 10000, not 10001"},
    {SIM MENU "store:\n  answer_log_mib: 1025\n", 7, 19,
     "store.answer_log_mib: must be between 0 and 1024, not 1025"},
    {SIM MENU "screening:\n  block_at: 1001\n", 7, 13,
     "screening.block_at: must be between 0 and 1000, not 1001"},
    {SIM "menu:\n  attempts: 0\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 15555550101}\n",
     4, 13, "menu.attempts: must be between 1 and 10, not 0"},
    {SIM "menu:\n  attempts: 11\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 15555550101}\n",
     4, 13, "menu.attempts: must be between 1 and 10, not 11"},
    /* server.listen and webhook_path. */
    {SIM MENU "server:\n  listen: localhost\n", 7, 11,
     "server.listen: 'localhost': expected host:port"},
    {SIM MENU "server:\n  listen: 127.0.0.1:65536\n", 7, 11,
     "server.listen: '127.0.0.1:65536': the port must be a number from 0 to "
     "65535"},
    {SIM MENU "server:\n  listen: 127.0.0.1:http\n", 7, 11,
     "the port must be a number from 0 to 65535"},
    {SIM MENU "server:\n  listen: '::1:8080'\n", 7, 11,
     "an IPv6 address must be in brackets"},
    {SIM MENU "server:\n  listen: '[::g]:8080'\n", 7, 11,
     "the IPv6 address is not valid"},
    {SIM MENU "server:\n  listen: 300.1.1.1:80\n", 7, 11,
     "the IPv4 address is not valid"},
    {SIM MENU "server:\n  listen: ':8080'\n", 7, 11, "the host is missing"},
    {SIM MENU "server:\n  listen: bad_host:80\n", 7, 11,
     "the host is not a valid name or address"},
    {SIM MENU "server:\n  webhook_path: telesign/voice\n", 7, 17,
     "server.webhook_path: 'telesign/voice' must start with '/'"},
    {SIM MENU "server:\n  webhook_path: /health\n", 7, 17,
     "server.webhook_path: '/health' is taken by the health check"},
    {SIM MENU "server:\n  webhook_path: /tele sign\n", 7, 17,
     "server.webhook_path: must not contain spaces or control characters"},
    /* telesign. */
    {SIM "  score_url: ftp://example.com/score\n" MENU, 3, 14,
     "telesign.score_url: 'ftp://example.com/score' must start with "
     "https:// or http://"},
    {SIM "  score_url: https:///score\n" MENU, 3, 14,
     "telesign.score_url: 'https:///score' has no host"},
    {SIM "  account_lifecycle_event: login\n" MENU, 3, 28,
     "telesign.account_lifecycle_event: 'login' is not one of: create, "
     "sign-in, transact, update, delete"},
    {SIM "  virtual_number: '1234567'\n" MENU, 3, 19,
     "telesign.virtual_number: '1234567' must be empty or 8 to 15 digits"},
    {SIM "  virtual_number: '+15555550100'\n" MENU, 3, 19,
     "telesign.virtual_number: '+15555550100' must be empty or 8 to 15"},
    {SIM "  customer_id: 'a:b'\n" MENU, 3, 16,
     "telesign.customer_id: must not contain ':'"},
    /* The menu. */
    {SIM "menu:\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 15555550101}\n"
         "    - {digit: '2', name: Support, dial: 15555550102}\n"
         "    - {digit: '1', name: Billing, dial: 15555550103}\n",
     7, 15, "menu.options[2].digit: '1' is already used by menu.options[0]"},
    {SIM "menu:\n  options:\n"
         "    - {digit: '12', name: Sales, dial: 15555550101}\n",
     5, 15, "menu.options[0].digit: '12' must be exactly one of 0-9, * or #"},
    {SIM "menu:\n  options:\n"
         "    - {digit: 'A', name: Sales, dial: 15555550101}\n",
     5, 15, "menu.options[0].digit: 'A' must be exactly one of 0-9, * or #"},
    {SIM "menu:\n  options:\n"
         "    - digit: #\n      name: Sales\n      dial: 15555550101\n",
     5, 13, "menu.options[0].digit: '' must be exactly one of"},
    {SIM "menu:\n  options:\n"
         "    - {digit: '1', name: '', dial: 15555550101}\n",
     5, 26, "menu.options[0].name: must not be empty"},
    {SIM "menu:\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 15555550101}\n"
         "    - {digit: '2', name: Support, dial: '+15555550102'}\n",
     6, 41,
     "menu.options[1].dial: '+15555550102' must be 8 to 15 digits with the "
     "country code"},
    {SIM "menu:\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 1234567}\n",
     5, 39, "menu.options[0].dial: '1234567' must be 8 to 15 digits"},
    {SIM "menu:\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 1234567890123456}\n",
     5, 39, "menu.options[0].dial: '1234567890123456' must be 8 to 15"},
    {SIM "menu:\n  options: []\n", 4, 12,
     "menu.options: at least one option is required"},
    {SIM "menu:\n  language: en-US\n", 0, 0,
     "FILE: menu.options: at least one option is required"},
    {"", 0, 0, "FILE: menu.options: at least one option is required"},
    {SIM "menu:\n  options:\n"
         "    - {digit: '0', name: a, dial: 15555550100}\n"
         "    - {digit: '1', name: b, dial: 15555550101}\n"
         "    - {digit: '2', name: c, dial: 15555550102}\n"
         "    - {digit: '3', name: d, dial: 15555550103}\n"
         "    - {digit: '4', name: e, dial: 15555550104}\n"
         "    - {digit: '5', name: f, dial: 15555550105}\n"
         "    - {digit: '6', name: g, dial: 15555550106}\n"
         "    - {digit: '7', name: h, dial: 15555550107}\n"
         "    - {digit: '8', name: i, dial: 15555550108}\n"
         "    - {digit: '9', name: j, dial: 15555550109}\n"
         "    - {digit: '*', name: k, dial: 15555550110}\n"
         "    - {digit: '#', name: l, dial: 15555550111}\n"
         "    - {digit: '1', name: m, dial: 15555550112}\n",
     5, 5, "menu.options: too many entries (at most 12)"},
    {SIM "menu:\n  language: ''\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 15555550101}\n",
     4, 13, "menu.language: must not be empty"},
    {SIM "menu:\n  language: en US\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 15555550101}\n",
     4, 13, "menu.language: must not contain spaces"},
    {SIM "menu:\n  greeting: ''\n  options:\n"
         "    - {digit: '1', name: Sales, dial: 15555550101}\n",
     4, 13, "menu.greeting: must not be empty"},
    {SIM MENU "screening:\n  block_message: \"a\\u0007b\"\n", 7, 18,
     "screening.block_message: must not contain control characters"},
    /* long_message is filled in by the test before the table is used. */
    {NULL, 7, 18,
     "screening.block_message: is 1001 bytes long, more than the 1000 "
     "allowed"},
    {SIM MENU "log:\n  level: verbose\n", 7, 10,
     "log.level: 'verbose' is not one of: error, warn, info, debug"},
    {SIM MENU "store:\n  path: ''\n", 7, 9, "store.path: must not be empty"},
    /* Screening: the enums. */
    {SIM MENU "screening:\n  mode: dry-run\n", 7, 9,
     "screening.mode: 'dry-run' is not one of: enforce, shadow"},
    {SIM MENU "screening:\n  anonymous: maybe\n", 7, 14,
     "screening.anonymous: 'maybe' is not one of: allow, challenge, block"},
    {SIM MENU "screening:\n  decide_by: risk\n", 7, 14,
     "screening.decide_by: 'risk' is not one of: score, recommendation"},
    {SIM MENU "screening:\n  block_action: beep\n", 7, 17,
     "screening.block_action: 'beep' is not one of: message, hangup, play"},
    {SIM MENU "screening:\n  on_score_error: 1\n", 7, 19,
     "screening.on_score_error: '1' is not one of: allow, challenge, block"},
    /* Screening: default_country. */
    {SIM MENU "screening:\n  default_country: '044'\n", 7, 20,
     "screening.default_country: '044' is not a country code: 1 to 3 digits, "
     "not starting with 0 and without '+' (such as 1 or 44)"},
    {SIM MENU "screening:\n  default_country: '+44'\n", 7, 20,
     "screening.default_country: '+44' is not a country code"},
    {SIM MENU "screening:\n  default_country: 1234\n", 7, 20,
     "screening.default_country: '1234' is not a country code"},
    {SIM MENU "screening:\n  default_country: ''\n", 7, 20,
     "screening.default_country: must not be empty"},
    {SIM MENU "screening:\n  default_country: 12345678901234567\n", 7, 20,
     "screening.default_country: is 17 bytes long, more than the 16 allowed"},
    /* Direct TLS needs both files. */
    {SIM MENU "server:\n  tls_cert: /etc/ssl/cert.pem\n", 7, 13,
     "server.tls_cert: tls_cert and tls_key go together"},
    /* The webhook section. */
    {SIM MENU "webhook:\n  verify: enforce\n", 7, 11,
     "webhook.verify: enforce needs telesign.api_key (or TELESIGN_API_KEY) "
     "to check signatures with"},
    {SIM MENU "webhook:\n  verify: sometimes\n", 7, 11,
     "webhook.verify: 'sometimes' is not one of: log, off, enforce"},
    {SIM MENU "webhook:\n  token: short\n", 7, 10,
     "webhook.token: must be 16 to 128 letters, digits, '-' or '_'"},
    {SIM MENU "webhook:\n  token: \"has a slash/0123456789\"\n", 7, 10,
     "webhook.token:"},
    /* Screening: the thresholds. */
    {SIM MENU "screening:\n  block_at: 600\n  challenge_at: 700\n", 8, 17,
     "screening.challenge_at: challenge_at (700) must not be above block_at "
     "(600)"},
    {SIM MENU "screening:\n  challenge_at: 700\n", 7, 17,
     "screening.challenge_at: challenge_at (700) must not be above block_at "
     "(680)"},
    {SIM MENU "screening:\n  challenge_at: 401\n  block_at: 400\n", 7, 17,
     "screening.challenge_at: challenge_at (401) must not be above block_at "
     "(400)"},
    {SIM MENU "screening:\n  challenge_at: 1001\n", 7, 17,
     "screening.challenge_at: must be between 0 and 1000, not 1001"},
    {SIM MENU "screening:\n  challenge_at: -1\n", 7, 17,
     "screening.challenge_at: expected a whole number, not '-1'"},
    {SIM MENU "screening:\n  score_cache_ttl_s: 31536001\n", 7, 22,
     "screening.score_cache_ttl_s: must be between 0 and 31536000, not "
     "31536001"},
    /* Screening: what a blocked caller gets. */
    {SIM MENU "screening:\n  block_action: play\n", 7, 17,
     "screening.block_action: play needs screening.block_audio_url, the "
     "https:// URL of the audio to play"},
    {SIM MENU "screening:\n  block_action: play\n  block_audio_url: ''\n", 8,
     20,
     "screening.block_audio_url: must not be empty when block_action is "
     "play"},
    {SIM MENU "screening:\n  block_action: play\n"
              "  block_audio_url: http://cdn.example.com/sit.wav\n",
     8, 20,
     "screening.block_audio_url: 'http://cdn.example.com/sit.wav' must start "
     "with https://"},
    {SIM MENU "screening:\n  block_audio_url: sit.wav\n", 7, 20,
     "screening.block_audio_url: 'sit.wav' must start with https://"},
    {SIM MENU "screening:\n  block_audio_url: https:///sit.wav\n", 7, 20,
     "screening.block_audio_url: 'https:///sit.wav' has no host after the "
     "scheme"},
    {SIM MENU "screening:\n  block_audio_url: 'https://x/a b.wav'\n", 7, 20,
     "screening.block_audio_url: must not contain spaces"},
    {SIM MENU "screening:\n  max_numbers: 1023\n", 7, 16,
     "screening.max_numbers: must be between 1024 and 16777216, not 1023"},
    /* Screening: velocity. */
    {SIM MENU "screening:\n  velocity:\n    window_s: 0\n", 8, 15,
     "screening.velocity.window_s: must be between 1 and 86400, not 0"},
    {SIM MENU "screening:\n  velocity:\n    window_s: 86401\n", 8, 15,
     "screening.velocity.window_s: must be between 1 and 86400, not 86401"},
    {SIM MENU "screening:\n  velocity:\n    max_calls: 31\n", 8, 16,
     "screening.velocity.max_calls: must be between 0 and 30, not 31"},
    {SIM MENU "screening:\n  velocity:\n    max_calls: 05\n", 8, 16,
     "screening.velocity.max_calls: '05' is not a plain decimal number"},
    {SIM MENU "screening:\n  velocity:\n    max_calls: many\n", 8, 16,
     "screening.velocity.max_calls: expected a whole number, not 'many'"},
    {SIM MENU "screening:\n  velocity:\n    action: deny\n", 8, 13,
     "screening.velocity.action: 'deny' is not one of: allow, challenge, "
     "block"},
    {SIM MENU "screening:\n  velocity:\n    window_s: 60\n    windows: 60\n",
     9, 5,
     "screening.velocity.windows: unknown key (did you mean 'window_s'?)"},
    {SIM MENU "screening:\n  velocity:\n    limit: 3\n", 8, 5,
     "screening.velocity.limit: unknown key (expected one of: window_s, "
     "max_calls, action)"},
    {SIM MENU "screening:\n  velocity:\n    max_calls: 1\n"
              "    max_calls: 2\n",
     9, 5,
     "screening.velocity.max_calls: duplicate key (it is already set on line "
     "8)"},
    {SIM MENU "screening:\n  velocity: 5\n", 7, 13,
     "screening.velocity: expected a mapping of keys, found a single value"},
    {SIM MENU "screening:\n  velocity:\n", 7, 12,
     "screening.velocity: expected a mapping of keys, found a single value "
     "(a section with no keys must be removed or written {})"},
    /* A velocity key one level too high is not silently taken. */
    {SIM MENU "screening:\n  max_calls: 3\n", 7, 3,
     "screening.max_calls: unknown key (expected one of: preset, mode, "
     "default_country, anonymous, decide_by, block_at, challenge_at, "
     "on_score_error, score_cache_ttl_s, max_numbers, block_action, "
     "block_message, block_audio_url, velocity, challenge)"},
    /* Screening: challenge. */
    {SIM MENU "screening:\n  challenge:\n    message: Press one.\n", 8, 14,
     "screening.challenge.message: must contain {digit}, where the key to "
     "press is spoken"},
    {SIM MENU "screening:\n  challenge:\n    message: Press {DIGIT}.\n", 8, 14,
     "screening.challenge.message: must contain {digit}"},
    {SIM MENU "screening:\n  challenge:\n"
              "    message: 'Press {digit}, I said {digit}.'\n",
     8, 14,
     "screening.challenge.message: contains {digit} 2 times; it must appear "
     "exactly once"},
    {SIM MENU "screening:\n  challenge:\n    message: ''\n", 8, 14,
     "screening.challenge.message: must not be empty"},
    {SIM MENU "screening:\n  challenge:\n    retry_message: ''\n", 8, 20,
     "screening.challenge.retry_message: must not be empty"},
    {SIM MENU "screening:\n  challenge:\n    retry_message: \"a\\u0001\"\n", 8,
     20,
     "screening.challenge.retry_message: must not contain control "
     "characters"},
    {SIM MENU "screening:\n  challenge:\n    attempts: 0\n", 8, 15,
     "screening.challenge.attempts: must be between 1 and 5, not 0"},
    {SIM MENU "screening:\n  challenge:\n    attempts: 6\n", 8, 15,
     "screening.challenge.attempts: must be between 1 and 5, not 6"},
    {SIM MENU "screening:\n  challenge:\n    pass_ttl_s: 59\n", 8, 17,
     "screening.challenge.pass_ttl_s: must be between 60 and 31536000, not "
     "59"},
    {SIM MENU "screening:\n  challenge:\n    pass_ttl_s: 31536001\n", 8, 17,
     "screening.challenge.pass_ttl_s: must be between 60 and 31536000, not "
     "31536001"},
    {SIM MENU "screening:\n  challenge:\n    fail_block_after: 101\n", 8, 23,
     "screening.challenge.fail_block_after: must be between 0 and 100, not "
     "101"},
    {SIM MENU "screening:\n  challenge:\n    fail_block_ttl_s: 59\n", 8, 23,
     "screening.challenge.fail_block_ttl_s: must be between 60 and 31536000, "
     "not 59"},
    {SIM MENU "screening:\n  challenge:\n    fail_block_ttl_s: 31536001\n", 8,
     23,
     "screening.challenge.fail_block_ttl_s: must be between 60 and "
     "31536000, not 31536001"},
    {SIM MENU "screening:\n  challenge: {mesage: 'Press {digit}.'}\n", 7, 15,
     "screening.challenge.mesage: unknown key (did you mean 'message'?)"},
    {SIM MENU "screening:\n  challenge:\n    tries: 3\n", 8, 5,
     "screening.challenge.tries: unknown key (expected one of: message, "
     "retry_message, attempts, pass_ttl_s, fail_block_after, "
     "fail_block_ttl_s)"},
    {SIM MENU "screening:\n  challenge: [attempts]\n", 7, 14,
     "screening.challenge: expected a mapping of keys, found a list"},
    /* Credentials. */
    {MENU, 0, 0,
     "FILE: telesign.provider is telesign but no credentials are set: put "
     "telesign.customer_id and telesign.api_key in the file or set "
     "TELESIGN_CUSTOMER_ID and TELESIGN_API_KEY (or use provider: simulator "
     "to try the server without a TeleSign account)"},
    {"telesign:\n  provider: telesign\n  customer_id: abc\n" MENU, 0, 0,
     "FILE: telesign.provider is telesign but no credentials are set"},
    {"telesign:\n  api_key: " SECRET "\n" MENU, 0, 0,
     "FILE: telesign.provider is telesign but no credentials are set"},
};

/*
 * Checks the "FILE:LINE:COLUMN: " or "FILE: " prefix and the reason, and
 * says what is wrong, so that one run lists every failing case.
 */
static bool message_ok(const char *err, size_t i, const struct err_case *c)
{
  char prefix[64];

  if (c->line == 0)
    snprintf(prefix, sizeof(prefix), "FILE: ");
  else if (c->col)
    snprintf(prefix, sizeof(prefix), "FILE:%u:%u: ", c->line, c->col);
  else
    snprintf(prefix, sizeof(prefix), "FILE:%u:", c->line);
  if (strncmp(err, prefix, strlen(prefix)) != 0) {
    print_error("case %zu: want prefix '%s' in '%s'\n", i, prefix, err);
    return false;
  }
  if (!strstr(err, c->want)) {
    print_error("case %zu: want '%s' in '%s'\n", i, c->want, err);
    return false;
  }
  /* One line, for logs and terminals. */
  if (strchr(err, '\n')) {
    print_error("case %zu: more than one line: '%s'\n", i, err);
    return false;
  }
  return true;
}

static void test_error_table(void **state)
{
  char yaml[2048];
  unsigned failed = 0;

  (void)state;
  clear_env();
  memset(long_message, 'x', 1001);
  long_message[1001] = '\0';
  for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
    const struct err_case *c = &err_cases[i];
    const char *text = c->yaml;
    char err[1024];

    if (!text) {
      snprintf(yaml, sizeof(yaml),
               SIM MENU "screening:\n  block_message: %s\n", long_message);
      text = yaml;
    }
    if (load_fail(text, err, sizeof(err)) != VS_ERR_INVAL) {
      print_error("case %zu: wrong code for '%s'\n", i, err);
      failed++;
      continue;
    }
    /* TEST_CONFIG_VERBOSE=1 shows every message, to proofread them. */
    if (getenv("TEST_CONFIG_VERBOSE"))
      print_message("case %zu: %s\n", i, err);
    if (!message_ok(err, i, c))
      failed++;
  }
  assert_int_equal(failed, 0);
}

/* ---- files that cannot be read --------------------------------------- */

static void test_missing_file(void **state)
{
  struct config *cfg = NULL;
  char err[512];

  (void)state;
  assert_int_equal(
      config_load("/nonexistent/voice.yaml", &cfg, err, sizeof(err)),
      VS_ERR_IO);
  assert_null(cfg);
  assert_string_equal(err, "/nonexistent/voice.yaml: cannot read: No such "
                           "file or directory");
}

static void test_directory(void **state)
{
  struct config *cfg = NULL;
  char err[512];

  (void)state;
  assert_int_equal(config_load("/", &cfg, err, sizeof(err)), VS_ERR_IO);
  assert_null(cfg);
  assert_string_equal(err, "/: cannot read: Is a directory");
}

/* A file of exactly 1 MiB loads; one byte more is refused. */
static void test_size_limit(void **state)
{
  const char *body = SIM MENU;
  size_t size = 1024 * 1024;
  struct tmpfile t;
  struct config *cfg = NULL;
  char *data = malloc(size + 1);
  char err[512];

  (void)state;
  clear_env();
  assert_non_null(data);
  memset(data, '#', size + 1);
  memcpy(data, body, strlen(body));
  data[size - 1] = '\n';
  write_file(&t, data, size);
  assert_int_equal(config_load(t.path, &cfg, err, sizeof(err)), 0);
  config_free(cfg);
  cfg = NULL;
  unlink(t.path);

  data[size - 1] = '#';
  data[size] = '\n';
  write_file(&t, data, size + 1);
  assert_int_equal(config_load(t.path, &cfg, err, sizeof(err)), VS_ERR_LIMIT);
  assert_null(cfg);
  assert_non_null(strstr(err, "over 1 MiB"));
  unlink(t.path);
  free(data);
}

/* ---- the API key stays secret ------------------------------------------ */

static void test_api_key_never_in_messages(void **state)
{
  static const char *const files[] = {
      /* The key is wrong in itself. */
      "telesign:\n  customer_id: c\n  api_key: 'Super Secret Key'\n" MENU,
      /* The key is fine and something else is wrong. */
      "telesign:\n  customer_id: c\n  api_key: " SECRET
      "\n  timeout_ms: 5\n" MENU,
      /* The key was pasted into a field that quotes its value back. */
      "telesign:\n  customer_id: c\n  api_key: " SECRET
      "\n  timeout_ms: " SECRET "\n" MENU,
      "telesign:\n  customer_id: c\n  api_key: " SECRET "\n  auth: " SECRET
      "\n" MENU,
      "telesign:\n  customer_id: c\n  api_key: " SECRET "\n" MENU
      "server:\n  listen: " SECRET "\n",
      /* A syntax error on the key's own line. */
      "telesign:\n  customer_id: c\n  api_key: " SECRET ": x\n" MENU,
  };
  char err[1024];

  (void)state;
  clear_env();
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    load_fail(files[i], err, sizeof(err));
    assert_null(strstr(err, "Super Secret"));
    assert_null(strstr(err, "SuperSecret"));
  }

  /* A key from the environment, wrong in itself or pasted elsewhere. */
  setenv("TELESIGN_CUSTOMER_ID", "c", 1);
  setenv("TELESIGN_API_KEY", "Env Secret Key", 1);
  load_fail(MENU, err, sizeof(err));
  assert_non_null(strstr(err, "TELESIGN_API_KEY: must not contain spaces"));
  assert_null(strstr(err, "Env Secret"));
  setenv("TELESIGN_API_KEY", SECRET, 1);
  load_fail("telesign:\n  timeout_ms: " SECRET "\n" MENU, err, sizeof(err));
  assert_null(strstr(err, "SuperSecret"));
  clear_env();
}

/* Messages are cut, never overflow, and a missing buffer is fine. */
static void test_small_error_buffer(void **state)
{
  struct tmpfile t;
  struct config *cfg = NULL;
  char err[16];

  (void)state;
  clear_env();
  write_text(&t, SIM MENU "server:\n  max_body: 1\n");
  memset(err, 'z', sizeof(err));
  assert_int_equal(config_load(t.path, &cfg, err, 8), VS_ERR_INVAL);
  assert_int_equal(strlen(err), 7);
  assert_int_equal(err[8], 'z');
  assert_int_equal(config_load(t.path, &cfg, NULL, 0), VS_ERR_INVAL);
  assert_int_equal(config_load(t.path, &cfg, err, 0), VS_ERR_INVAL);
  assert_null(cfg);
  unlink(t.path);
  assert_int_equal(config_load(NULL, &cfg, err, sizeof(err)), VS_ERR_INVAL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_demo_example_loads),
      cmocka_unit_test(test_production_example_loads),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_presets),
      cmocka_unit_test(test_challenge_at_follows_block_at),
      cmocka_unit_test(test_webhook_section),
      cmocka_unit_test(test_explicit_values),
      cmocka_unit_test(test_listen_forms),
      cmocka_unit_test(test_screening_verdicts),
      cmocka_unit_test(test_screening_nested),
      cmocka_unit_test(test_policy_version),
      cmocka_unit_test(test_env_overrides),
      cmocka_unit_test(test_default_greeting),
      cmocka_unit_test(test_lookups),
      cmocka_unit_test(test_error_table),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_directory),
      cmocka_unit_test(test_size_limit),
      cmocka_unit_test(test_api_key_never_in_messages),
      cmocka_unit_test(test_small_error_buffer),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
