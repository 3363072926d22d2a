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

#include "harness.h"

static const char config[] =
    "server:\n"
    "  listen: \"127.0.0.1:0\"\n"
    "telesign:\n"
    "  provider: simulator\n"
    "screening:\n"
    "  velocity: {max_calls: 0}\n"
    "menu:\n"
    "  greeting: \"Hello.\"\n"
    "  options:\n"
    "    - {digit: \"1\", name: Sales, dial: \"15555550101\"}\n"
    "store:\n"
    "  path: \"{DIR}/calls.db\"\n"
    "admin:\n"
    "  listen: \"\"\n";

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

  /* Full: no file may grow. Callers are answered all the same, within
   * store.commit_wait_ms, and the failure shows in /health. */
  set_file_limit(srv, 1);
  place(srv, "FULL", 0, 200);
  wait_health(srv, 503);
  assert_int_equal(http_request(srv, "GET", "/health", NULL, 0, &body), 503);
  assert_true(json_has(body, "status", "degraded"));
  assert_true(json_has(body, "store", "error"));
  free(body);

  /* Room again: the store writes by itself, and says so. */
  set_file_limit(srv, RLIM_INFINITY);
  place(srv, "AFTER", 0, 20);
  wait_health(srv, 200);
  assert_true(server_log_has(srv, "store writing again"));
  assert_int_equal(proc_stop(srv), 0);

  assert_int_equal(
      harness_db_count("SELECT count(*) FROM calls WHERE ref LIKE 'BEFORE%'"),
      20);
  assert_int_equal(
      harness_db_count("SELECT count(*) FROM calls WHERE ref LIKE 'AFTER%'"),
      20);
  assert_int_equal(
      harness_db_count("SELECT count(*) FROM pragma_integrity_check "
                       "WHERE integrity_check = 'ok'"),
      1);
  harness_cleanup();
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

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_disk_full_then_free),
      cmocka_unit_test(test_sigterm_under_load),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
