/*
 * Faults of the server's own environment, each with its own server:
 *
 * - The disk fills up under a running server, then frees up again. A full
 *   disk is made by lowering the server's file-size limit from outside
 *   (prlimit), which fails every write that would grow a file exactly as
 *   a full file system does (EFBIG instead of ENOSPC), with no privileges
 *   and nothing mounted. Calls must still be answered by the policy,
 *   /health must say degraded, and once the limit is lifted the store
 *   must write again by itself.
 * - SIGTERM under load: every call in flight is answered, every answered
 *   call has its record, and the server exits 0.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "harness.h"

/* After the telesign section up to the store's path, for every
 * configuration; then STORE_REST or more of the store section first. */
#define CONFIG_REST_HEAD                                                      \
  "screening:\n"                                                              \
  "  velocity: {max_calls: 0}\n"                                              \
  "menu:\n"                                                                   \
  "  greeting: \"Hello.\"\n"                                                  \
  "  options:\n"                                                              \
  "    - {digit: \"1\", name: Sales, dial: \"15555550101\"}\n"                \
  "store:\n"                                                                  \
  "  path: \"{DIR}/calls.db\"\n"
#define STORE_REST                                                            \
  "admin:\n"                                                                  \
  "  listen: \"\"\n"
#define CONFIG_REST CONFIG_REST_HEAD STORE_REST
#define SIMULATOR                                                             \
  "server:\n"                                                                 \
  "  listen: \"127.0.0.1:0\"\n"                                               \
  "telesign:\n"                                                               \
  "  provider: simulator\n"

static const char config[] = SIMULATOR CONFIG_REST;
/* Answers that never wait for a commit. */
static const char config_no_wait[] =
    SIMULATOR CONFIG_REST_HEAD "  commit_wait_ms: 0\n" STORE_REST;

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

/* Places calls REF<from>..REF<to-1>; each must get the menu. */
static void place(const struct proc *srv, const char *ref, int from, int to)
{
  char body[256];

  for (int i = from; i < to; i++) {
    char *resp = NULL;

    snprintf(body, sizeof(body),
             "{\"event\":\"incoming_call\",\"reference_id\":\"%s%d\","
             "\"data\":{\"from\":\"15555%03d%03d\",\"to\":\"15555550100\"}}",
             ref, i, 500 + i / 100, 100 + i % 100);
    assert_int_equal(post_event(srv, body, &resp), 200);
    if (!json_has(resp, "params.tts.message", "Hello."))
      fail_msg("call %s%d was not given the menu: %s", ref, i, resp);
    free(resp);
  }
}

/* Call records whose reference starts with `prefix` (a word). */
static long records(const char *prefix)
{
  char sql[128];

  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM calls WHERE ref LIKE '%s%%'", prefix);
  return harness_db_count(sql);
}

/* Waits (bounded) until /health answers `status`. */
static void wait_health(const struct proc *srv, long status)
{
  long got = 0;

  for (int i = 0; i < 500; i++) {
    got = http_request(srv, "GET", "/health", NULL, 0, NULL);
    if (got == status)
      return;
    sleep_ms(20);
  }
  fail_msg("/health answered %ld, not %ld", got, status);
}

static void set_file_limit(const struct proc *srv, rlim_t bytes)
{
  struct rlimit lim = {bytes, RLIM_INFINITY};

  assert_int_equal(prlimit(srv->pid, RLIMIT_FSIZE, &lim, NULL), 0);
}

static void test_disk_full_then_free(void **state)
{
  struct proc *srv = server_start(config, NULL);
  char *body = NULL;

  (void)state;
  assert_non_null(srv);
  place(srv, "BEFORE", 0, 20);
  wait_health(srv, 200);

  /* Full: no file may grow. Callers are answered all the same (their
   * records are in the answer log), and the failure shows in /health. */
  set_file_limit(srv, 1);
  place(srv, "FULL", 0, 200);
  wait_health(srv, 503);
  assert_int_equal(http_request(srv, "GET", "/health", NULL, 0, &body), 503);
  assert_true(json_has(body, "status", "degraded"));
  assert_true(json_has(body, "store", "error"));
  free(body);

  /* Room again: the store writes by itself, and says so, and the records
   * of the calls answered meanwhile are written too. */
  set_file_limit(srv, RLIM_INFINITY);
  place(srv, "AFTER", 0, 20);
  wait_health(srv, 200);
  assert_true(server_log_has(srv, "store writing again"));
  assert_int_equal(proc_stop(srv), 0);

  assert_int_equal(records("BEFORE"), 20);
  assert_int_equal(records("FULL"), 200);
  assert_int_equal(records("AFTER"), 20);
  assert_int_equal(
      harness_db_count("SELECT count(*) FROM pragma_integrity_check "
                       "WHERE integrity_check = 'ok'"),
      1);
  harness_cleanup();
}

/*
 * The answers of calls that come while the store is behind wait for their
 * commits, and their records must outlive a batch that then fails: the
 * database is locked (the worker waits for it), calls come and wait, the
 * disk fills, the lock goes, the batch fails, the disk frees, and every
 * record is written. A save that waited used to bypass the answer log, and
 * the failed batch lost it.
 */
static void disk_full_while_behind(const char *yaml)
{
  struct proc *srv = server_start(yaml, NULL);

  assert_non_null(srv);
  place(srv, "EARLY", 0, 5);
  wait_health(srv, 200);
  harness_db_lock();
  place(srv, "BEHIND", 0, 1);
  sleep_ms(50); /* older than the store's bound (STORE_LAG_MS) */
  place(srv, "WAITED", 0, 3);
  set_file_limit(srv, 1);
  harness_db_unlock();
  wait_health(srv, 503);
  set_file_limit(srv, RLIM_INFINITY);
  wait_health(srv, 200);
  assert_true(server_log_has(srv, "store writing again"));
  assert_int_equal(proc_stop(srv), 0);
  assert_int_equal(records("BEHIND"), 1);
  assert_int_equal(records("WAITED"), 3);
  harness_cleanup();
}

static void test_disk_full_while_behind(void **state)
{
  (void)state;
  disk_full_while_behind(config);
}

/*
 * The same with answers that never wait: the records of the calls
 * answered while the store is behind are plain saves, which used to
 * bypass the answer log too.
 */
static void test_disk_full_while_behind_no_wait(void **state)
{
  (void)state;
  disk_full_while_behind(config_no_wait);
}

#define TERM_THREADS 8

struct term_caller {
  const struct proc *srv;
  int id;
  atomic_int answered; /* calls answered 200, in order */
  atomic_int refused;  /* 503s and closed connections, once stopping */
};

static void *call_until_refused(void *arg)
{
  struct term_caller *c = arg;
  char body[256];

  for (int i = 0;; i++) {
    snprintf(body, sizeof(body),
             "{\"event\":\"incoming_call\",\"reference_id\":\"T%d-%d\","
             "\"data\":{\"from\":\"1555%d%06d\",\"to\":\"15555550100\"}}",
             c->id, i, c->id, i);
    if (post_event(c->srv, body, NULL) != 200) {
      c->refused++;
      return NULL;
    }
    c->answered = i + 1;
  }
}

static void test_sigterm_under_load(void **state)
{
  struct proc *srv = server_start(config, NULL);
  struct term_caller c[TERM_THREADS];
  pthread_t t[TERM_THREADS];
  char sql[160];
  long answered = 0;
  pid_t pid;

  (void)state;
  assert_non_null(srv);
  pid = srv->pid;
  for (int i = 0; i < TERM_THREADS; i++) {
    c[i] = (struct term_caller){.srv = srv, .id = i};
    assert_int_equal(pthread_create(&t[i], NULL, call_until_refused, &c[i]),
                     0);
  }
  while (c[0].answered < 200)
    sleep_ms(5);
  assert_int_equal(kill(pid, SIGTERM), 0);
  for (int i = 0; i < TERM_THREADS; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(proc_stop(srv), 0); /* a clean exit, status 0 */
  for (int i = 0; i < TERM_THREADS; i++) {
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM calls WHERE ref LIKE 'T%d-%%' AND "
             "decision != 'none'",
             i);
    /* Every answered call is recorded; one in flight at the signal may be
     * too, if its answer was sent as the connection closed. */
    if (harness_db_count(sql) < c[i].answered)
      fail_msg("caller %d: %ld records for %d answered calls", i,
               harness_db_count(sql), (int)c[i].answered);
    answered += c[i].answered;
  }
  print_message("# %ld calls answered before and during the shutdown\n",
                answered);
  harness_cleanup();
}

/* The server of the two tests below: every call looks its caller up on a
 * Score double, whose delay each test sets. */
#define CUSTOMER "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"
#define API_KEY  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
static const char slow_config[] =
    "server:\n"
    "  listen: \"127.0.0.1:0\"\n"
    "telesign:\n"
    "  provider: telesign\n"
    "  customer_id: \"" CUSTOMER "\"\n"
    "  api_key: \"" API_KEY "\"\n"
    "  auth: basic\n"
    "  score_url: \"{SCORE_URL}/intelligence/phone\"\n"
    "  timeout_ms: 1000\n" CONFIG_REST;

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
  (void)p;
  (void)arg;
  return size * n;
}

/* Like call_until_refused, but every call on one kept-alive connection,
 * so that calls keep arriving after the server has stopped accepting. */
static void *call_keepalive(void *arg)
{
  struct term_caller *c = arg;
  struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: "
                                                   "application/json");
  CURL *e = curl_easy_init();
  char url[64];
  char body[256];
  long status = 0;

  snprintf(url, sizeof(url), "http://127.0.0.1:%d/telesign/voice",
           c->srv->port);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  for (int i = 0;; i++) {
    snprintf(body, sizeof(body),
             "{\"event\":\"incoming_call\",\"reference_id\":\"K%d-%d\","
             "\"data\":{\"from\":\"1555%d%06d\",\"to\":\"15555550100\"}}",
             c->id, i, c->id, i);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
    if (curl_easy_perform(e) != CURLE_OK ||
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
        status != 200) {
      c->refused++;
      break;
    }
    c->answered = i + 1;
  }
  curl_easy_cleanup(e);
  curl_slist_free_all(hdr);
  return NULL;
}

/*
 * SIGTERM while callers wait on a slow Score API, each on a connection it
 * keeps alive: their next calls arrive at every step of the shutdown,
 * after the Score client is closed and while the HTTP daemon stops. Such
 * a call once reached the freed Score client (test_sigterm_pipelined
 * makes that case certain), and one that completed during the daemon's
 * last pass was left suspended when MHD stopped, which aborts: where the
 * calls fall is timing, and without the fix this test failed in three
 * runs of four. The server must exit with status 0.
 */
static void test_sigterm_keepalive(void **state)
{
  struct proc *dbl = double_start("none", CUSTOMER, API_KEY);
  struct proc *srv;
  struct term_caller c[TERM_THREADS];
  pthread_t t[TERM_THREADS];
  long answered = 0;

  (void)state;
  assert_non_null(dbl);
  double_control(dbl, "{\"delay_ms\":1000}");
  srv = server_start(slow_config, dbl);
  assert_non_null(srv);
  for (int i = 0; i < TERM_THREADS; i++) {
    c[i] = (struct term_caller){.srv = srv, .id = i};
    assert_int_equal(pthread_create(&t[i], NULL, call_keepalive, &c[i]), 0);
  }
  while (c[TERM_THREADS - 1].answered < 2)
    sleep_ms(5);
  assert_int_equal(proc_stop(srv), 0);
  for (int i = 0; i < TERM_THREADS; i++) {
    pthread_join(t[i], NULL);
    answered += c[i].answered;
  }
  print_message("# %ld calls answered before and during the shutdown\n",
                answered);
  proc_stop(dbl);
  harness_cleanup();
}

/*
 * The same, deterministically: five calls pipelined on one connection
 * against a Score API slower than the lookup deadline. MHD reads each only
 * once the one before is answered, so with one a second the shutdown's
 * grace period (the deadline plus 2 s) ends with one in flight, which is
 * cancelled, and the next arrives at a Score client already closed. It
 * once found that client freed (AddressSanitizer: heap-use-after-free).
 * Every call must be answered and the server must exit with status 0.
 */
static void test_sigterm_pipelined(void **state)
{
  enum { CALLS = 5 };
  struct proc *dbl = double_start("none", CUSTOMER, API_KEY);
  struct proc *srv;
  struct sockaddr_in addr = {.sin_family = AF_INET};
  struct timeval tv = {10, 0};
  char req[CALLS * 400];
  char resp[16384];
  size_t len = 0, got = 0;
  ssize_t n;
  int fd, answered = 0;
  time_t t0 = time(NULL);

  (void)state;
  assert_non_null(dbl);
  double_control(dbl, "{\"delay_ms\":5000}");
  srv = server_start(slow_config, dbl);
  assert_non_null(srv);
  for (int i = 0; i < CALLS; i++) {
    char body[200];
    int blen = snprintf(body, sizeof(body),
                        "{\"event\":\"incoming_call\",\"reference_id\":"
                        "\"P%d\",\"data\":{\"from\":\"1555520%04d\","
                        "\"to\":\"15555550100\"}}",
                        i, i);

    len += (size_t)snprintf(req + len, sizeof(req) - len,
                            "POST /telesign/voice HTTP/1.1\r\n"
                            "Host: 127.0.0.1\r\n"
                            "Content-Type: application/json\r\n"
                            "Content-Length: %d\r\n\r\n%s",
                            blen, body);
  }
  fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  addr.sin_port = htons((uint16_t)srv->port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
                   0);
  assert_int_equal(write(fd, req, len), (ssize_t)len);
  while (double_stat(dbl, "requests") < 1)
    sleep_ms(5);
  assert_int_equal(kill(srv->pid, SIGTERM), 0);
  while (got < sizeof(resp) - 1 &&
         (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
    got += (size_t)n;
  resp[got] = '\0';
  close(fd);
  for (const char *p = resp; (p = strstr(p, "HTTP/1.1 200 ")); p++)
    answered++;
  print_message("# %d pipelined calls answered in %ld s\n", answered,
                (long)(time(NULL) - t0));
  assert_int_equal(proc_stop(srv), 0);
  if (answered != CALLS)
    fail_msg("%d of %d pipelined calls answered 200:\n%s", answered, CALLS,
             resp);
  proc_stop(dbl);
  harness_cleanup();
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_disk_full_then_free),
      cmocka_unit_test(test_disk_full_while_behind),
      cmocka_unit_test(test_disk_full_while_behind_no_wait),
      cmocka_unit_test(test_sigterm_under_load),
      cmocka_unit_test(test_sigterm_keepalive),
      cmocka_unit_test(test_sigterm_pipelined),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
