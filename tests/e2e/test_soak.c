/*
 * The soak test: whole calls at a moderate, steady rate for a bounded time
 * (VS_SOAK_SECONDS, default 120) against the real server, checking that
 * its memory and its open file descriptors stay flat, so that a leak per
 * call or per connection shows long before production would.
 *
 * It runs in the plain build only: under AddressSanitizer the quarantine
 * grows the heap on purpose, which says nothing about the server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SOAK_THREADS 4
#define SOAK_CALLERS 1000 /* distinct numbers per thread */
#define WARMUP_S     20

static const char config[] =
    "server:\n"
    "  listen: \"127.0.0.1:0\"\n"
    "telesign:\n"
    "  provider: simulator\n"
    "screening:\n"
    "  velocity: {max_calls: 0}\n"
    "menu:\n"
    "  options:\n"
    "    - {digit: \"1\", name: Sales, dial: \"15555550101\"}\n"
    "store:\n"
    "  path: \"{DIR}/calls.db\"\n"
    "admin:\n"
    "  listen: \"127.0.0.1:0\"\n"
    "log:\n"
    "  level: info\n";

/* Resident memory (kB) and open descriptors of process `pid`. */
static void measure(pid_t pid, long *rss_kb, int *fds)
{
  char path[64];
  char line[256];
  FILE *f;
  DIR *d;

  *rss_kb = -1;
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  f = fopen(path, "r");
  assert_non_null(f);
  while (fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %ld kB", rss_kb) == 1)
      break;
  fclose(f);
  *fds = 0;
  snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
  d = opendir(path);
  assert_non_null(d);
  while (readdir(d))
    (*fds)++;
  closedir(d);
}

struct caller {
  const struct proc *srv;
  int id;
  volatile int stop;
  long calls;
  long failures;
};

/* One whole call: screened, menu digit, dial, completed. */
static int one_call(const struct caller *c, long n)
{
  char ref[48];
  char body[512];
  char *resp = NULL;
  int ok;

  /* A fixed population of callers, so that every per-number table the
   * server keeps reaches its steady size during the warm-up: growth after
   * it is a leak, not a cache filling. */
  snprintf(ref, sizeof(ref), "SOAK%d-%ld", c->id, n);
  snprintf(body, sizeof(body),
           "{\"event\":\"incoming_call\",\"reference_id\":\"%s\",\"data\":"
           "{\"from\":\"1555%d%06ld\",\"to\":\"15555550100\"}}",
           ref, c->id, n % SOAK_CALLERS);
  ok = post_event(c->srv, body, &resp) == 200;
  free(resp);
  resp = NULL;
  snprintf(body, sizeof(body),
           "{\"event\":\"speak_completed\",\"reference_id\":\"%s\",\"data\":"
           "{\"status\":\"speak_successful\",\"collected_digits\":\"1\"}}",
           ref);
  ok = ok && post_event(c->srv, body, NULL) == 200;
  snprintf(body, sizeof(body),
           "{\"event\":\"dial_completed\",\"reference_id\":\"%s\",\"data\":"
           "{\"status\":\"answered\"}}",
           ref);
  ok = ok && post_event(c->srv, body, NULL) == 200;
  snprintf(body, sizeof(body),
           "{\"event\":\"call_completed\",\"reference_id\":\"%s\",\"data\":"
           "{\"status\":\"hangup\",\"duration\":30}}",
           ref);
  ok = ok && post_event(c->srv, body, NULL) == 200;
  return ok;
}

static void *place_calls(void *arg)
{
  struct caller *c = arg;
  struct timespec pause = {0, 2 * 1000000L}; /* a moderate rate */

  while (!c->stop) {
    if (one_call(c, c->calls))
      c->calls++;
    else
      c->failures++;
    nanosleep(&pause, NULL);
  }
  return NULL;
}

static void test_soak_flat_memory_and_fds(void **state)
{
  const char *env = getenv("VS_SOAK_SECONDS");
  int seconds = env ? atoi(env) : 120;
  struct caller callers[SOAK_THREADS];
  pthread_t threads[SOAK_THREADS];
  struct proc *srv = server_start(config, NULL);
  long rss0, rss1;
  int fds0, fds1;
  long calls = 0;

  (void)state;
  assert_non_null(srv);
  for (int i = 0; i < SOAK_THREADS; i++) {
    callers[i] = (struct caller){.srv = srv, .id = i};
    assert_int_equal(
        pthread_create(&threads[i], NULL, place_calls, &callers[i]), 0);
  }
  /* Caches, pools and SQLite's page cache (2 MiB) fill up first. */
  sleep(WARMUP_S);
  measure(srv->pid, &rss0, &fds0);
  sleep((unsigned)(seconds > WARMUP_S ? seconds - WARMUP_S : 1));
  measure(srv->pid, &rss1, &fds1);
  for (int i = 0; i < SOAK_THREADS; i++) {
    callers[i].stop = 1;
    pthread_join(threads[i], NULL);
    assert_int_equal(callers[i].failures, 0);
    calls += callers[i].calls;
  }
  print_message("# soak: %ld calls in %d s; RSS %ld -> %ld kB, fds %d -> %d\n",
                calls, seconds, rss0, rss1, fds0, fds1);
  assert_true(calls > 100L * seconds); /* the load really ran */
  /* Flat: within 10% (and 4 MiB) of the warmed-up size; the same fds,
   * give or take the callers' few keep-alive connections. */
  assert_true(rss1 <= rss0 + rss0 / 10 + 4096);
  assert_true(fds1 <= fds0 + SOAK_THREADS);
  assert_int_equal(proc_stop(srv), 0);
  harness_cleanup();
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_soak_flat_memory_and_fds),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
