/*
 * Unit tests of the PostgreSQL backend (store_postgres.c) through its ops,
 * against a real PostgreSQL server that the test starts itself with
 * tests/support/pg-server (a fresh database per test) and that is removed
 * when the program exits:
 *
 *   - instances migrating one new database at once;
 *   - a call record with every field at its edges (and bytes that are not
 *     UTF-8) through save and load, and the list filters;
 *   - concurrent visits of one number from separate connections: exactly
 *     one claims the lookup, velocity counts 1..N with none lost;
 *   - concurrent challenge failures counted in SQL, blocklisting at the
 *     threshold;
 *   - the password kept out of every error and of store_location_safe();
 *   - a broken connection: fail fast within the backoff, then reconnect.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "../../src/store/call.h"
#include "../../src/store/records.h"
#include "../../src/store/store.h"
#include "../../src/store/store_backend.h"
#include "../../src/store/store_postgres.h"
#include "../../src/util/err.h"

static const struct store_backend_ops *ops = &store_postgres_ops;
static char pg_dir[128];
static char admin_url[512];
static char url[600]; /* this test's database */
static int seq;

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

  nanosleep(&ts, NULL);
}

static void pg_server(const char *what)
{
  char cmd[512];

  snprintf(cmd, sizeof(cmd), "%s/tests/support/pg-server %s %s >/dev/null",
           VS_SOURCE_ROOT, what, pg_dir);
  assert_int_equal(system(cmd), 0);
}

/* Once per program: the cluster, removed by pg-server once we exit. */
static int group_setup(void **state)
{
  char cmd[512];
  FILE *f;

  (void)state;
  snprintf(pg_dir, sizeof(pg_dir), "/tmp/vs-pg-unit-XXXXXX");
  if (!mkdtemp(pg_dir))
    return -1;
  snprintf(cmd, sizeof(cmd), "%s/tests/support/pg-server start %s %ld",
           VS_SOURCE_ROOT, pg_dir, (long)getpid());
  f = popen(cmd, "r");
  if (!f || !fgets(admin_url, sizeof(admin_url), f))
    return -1;
  pclose(f);
  admin_url[strcspn(admin_url, "\n")] = '\0';
  return strncmp(admin_url, "postgresql://", 13) == 0 ? 0 : -1;
}

static void admin_exec(const char *sql)
{
  PGconn *c = PQconnectdb(admin_url);
  PGresult *r;

  assert_int_equal(PQstatus(c), CONNECTION_OK);
  r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
}

/* A fresh database for each test, in `url`. */
static int setup(void **state)
{
  const char *slash = strrchr(admin_url, '/');
  char sql[64];

  (void)state;
  snprintf(sql, sizeof(sql), "CREATE DATABASE unit_%d", ++seq);
  admin_exec(sql);
  snprintf(url, sizeof(url), "%.*s/unit_%d", (int)(slash - admin_url),
           admin_url, seq);
  return 0;
}

static void *open_or_fail(void)
{
  char err[512] = "";
  void *h = NULL;

  if (ops->open(url, &h, err, sizeof(err)))
    fail_msg("open: %s", err);
  return h;
}

/* The first column of the first row of `sql` in the test's database. */
static long count(const char *sql)
{
  PGconn *c = PQconnectdb(url);
  PGresult *r;
  long n = -1;

  assert_int_equal(PQstatus(c), CONNECTION_OK);
  r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQresultErrorMessage(r));
  if (PQntuples(r))
    n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  PQfinish(c);
  return n;
}

/* ---- migrations ----------------------------------------------------- */

#define OPENERS 6

static void *open_thread(void *arg)
{
  int *rc = arg;
  char err[512];
  void *h = NULL;

  *rc = ops->open(url, &h, err, sizeof(err));
  if (*rc == VS_OK)
    ops->close(h);
  return NULL;
}

static void test_concurrent_migrations(void **state)
{
  pthread_t t[OPENERS];
  int rc[OPENERS];

  (void)state;
  for (int i = 0; i < OPENERS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, open_thread, &rc[i]), 0);
  for (int i = 0; i < OPENERS; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(rc[i], VS_OK);
  }
  assert_int_equal(count("SELECT version FROM schema_version"), 3);
  assert_int_equal(count("SELECT count(*) FROM schema_version"), 1);
  assert_int_equal(count("SELECT count(*) FROM information_schema.columns "
                         "WHERE table_name = 'numbers' AND "
                         "column_name IN ('claim_until_ms', 'claim_by')"),
                   2);
}

/* ---- records -------------------------------------------------------- */

static int keep_call(void *arg, const struct call *c)
{
  struct call *out = arg;

  *out = *c;
  return 1;
}

static void test_call_round_trip(void **state)
{
  struct store_query q = {.limit = 1, .caller = "15555550123"};
  struct call c;
  struct call back;
  struct call listed;
  char err[512];
  void *h = open_or_fail();

  (void)state;
  call_init(&c, "ROUND");
  /* A multi-byte character cut in half, a lone continuation byte. */
  CALL_SET(c.caller_raw, "+1 555 \xc3\xa9 \xa9 \xe2\x82");
  CALL_SET(c.caller, "15555550123");
  c.started_ms = INT64_MAX / 2;
  c.updated_ms = 1;
  c.step = CALL_STEP_CHALLENGE;
  c.decision = CALL_DECISION_CHALLENGE;
  c.attempts = UINT32_MAX;
  c.score = 1000;
  c.score_ms = -1;
  c.duration_s = 0;
  c.ended_ms = 0;
  c.shadow = 7;
  c.velocity_count = 30;
  c.challenge_tries = 2;
  memset(c.trace, 'x', sizeof(c.trace) - 1);
  CALL_SET(c.reason, "score:450>=400");
  CALL_SET(c.challenge_digit, "7");
  assert_int_equal(ops->begin(h), VS_OK);
  assert_int_equal(ops->save_call(h, &c), VS_OK);
  assert_int_equal(ops->commit(h), VS_OK);
  assert_int_equal(ops->begin(h), VS_OK);
  assert_int_equal(ops->load_call(h, "ROUND", &back), VS_OK);
  assert_int_equal(ops->load_call(h, "NONE", &listed), VS_ERR_NOTFOUND);
  assert_int_equal(ops->commit(h), VS_OK);
  assert_string_equal(back.caller_raw, "+1 555 \xc3\xa9 ? ??");
  assert_string_equal(back.trace, c.trace);
  assert_int_equal(back.started_ms, c.started_ms);
  assert_int_equal(back.step, CALL_STEP_CHALLENGE);
  assert_int_equal(back.decision, CALL_DECISION_CHALLENGE);
  assert_int_equal(back.attempts, UINT32_MAX);
  assert_int_equal(back.score, 1000);
  assert_int_equal(back.score_ms, -1);
  assert_int_equal(back.duration_s, 0);
  assert_int_equal(back.shadow, 1);
  assert_int_equal(back.velocity_count, 30);
  assert_string_equal(back.challenge_digit, "7");
  assert_int_equal(count("SELECT count(*) FROM calls WHERE score_ms IS NULL "
                         "AND ended_ms IS NULL"),
                   1);
  ops->close(h);
  /* The tools' read-only handle and the filters. */
  assert_int_equal(
      store_calls_list(url, &q, keep_call, &listed, err, sizeof(err)), VS_OK);
  assert_string_equal(listed.ref, "ROUND");
  q.decision = "allow";
  memset(&listed, 0, sizeof(listed));
  assert_int_equal(
      store_calls_list(url, &q, keep_call, &listed, err, sizeof(err)), VS_OK);
  assert_string_equal(listed.ref, "");
}

/* ---- the shared state under concurrency -------------------------------- */

#define VISITORS 8

struct visitor {
  int id;
  int64_t now;
  int rc;
  struct store_visit out;
};

/* One instance's visit, in its own connection and transaction. */
static void *visit_thread(void *arg)
{
  struct visitor *v = arg;
  char name[16];
  void *h = open_or_fail();
  struct store_visit_query q = {.number = "15555550124",
                                .now_ms = v->now,
                                .window_ms = 600000,
                                .score_since_ms = v->now - 86400000,
                                .claim_ms = 2000,
                                .instance = name};

  snprintf(name, sizeof(name), "inst%d", v->id);
  v->rc = ops->begin(h);
  if (v->rc == VS_OK)
    v->rc = ops->visit_number(h, &q, &v->out);
  /* Held a moment, so the others queue on the row lock. */
  sleep_ms(20);
  if (v->rc == VS_OK)
    v->rc = ops->commit(h);
  ops->close(h);
  return NULL;
}

static void test_concurrent_visits(void **state)
{
  struct visitor v[VISITORS];
  pthread_t t[VISITORS];
  int64_t now = 1800000000000;
  unsigned seen = 0;
  int claimed = 0;
  void *h = open_or_fail(); /* migrated before the threads start */

  (void)state;
  ops->close(h);
  for (int i = 0; i < VISITORS; i++) {
    v[i] = (struct visitor){.id = i, .now = now + i};
    assert_int_equal(pthread_create(&t[i], NULL, visit_thread, &v[i]), 0);
  }
  for (int i = 0; i < VISITORS; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(v[i].rc, VS_OK);
    claimed += v[i].out.claimed;
    assert_true(v[i].out.velocity_count >= 1 &&
                v[i].out.velocity_count <= VISITORS);
    seen |= 1u << (v[i].out.velocity_count - 1);
    assert_false(v[i].out.has_score);
  }
  assert_int_equal(claimed, 1);
  assert_int_equal(seen, (1u << VISITORS) - 1); /* 1..N, each once */
  assert_int_equal(count("SELECT count(*) FROM number_calls"), VISITORS);

  /* The claimant's score ends the claim; the next visit finds the score
   * and counts a call outside the window no more. */
  {
    struct store_number_update u = {.change = STORE_NUMBER_SCORE};
    struct store_visit_query q = {.number = "15555550124",
                                  .now_ms = now + 600000 + VISITORS,
                                  .window_ms = 600000,
                                  .score_since_ms = now,
                                  .claim_ms = 2000,
                                  .instance = "late"};
    struct store_visit out;
    struct list_entry e;
    int blocked;

    for (int i = 0; i < VISITORS; i++)
      if (v[i].out.claimed)
        CALL_SET(u.claim, v[i].out.claim);
    number_record_init(&u.rec, "15555550124");
    u.rec.score = 124;
    u.rec.score_fetched_ms = now + 100;
    CALL_SET(u.rec.risk_level, "low");
    h = open_or_fail();
    assert_int_equal(ops->begin(h), VS_OK);
    assert_int_equal(ops->update_number(h, &u, &e, &blocked), VS_OK);
    assert_int_equal(ops->visit_number(h, &q, &out), VS_OK);
    assert_int_equal(ops->commit(h), VS_OK);
    ops->close(h);
    assert_true(out.has_score);
    assert_false(out.claimed);
    assert_int_equal(out.rec.score, 124);
    assert_string_equal(out.rec.risk_level, "low");
    assert_int_equal(out.velocity_count, 1);
    assert_int_equal(count("SELECT count(*) FROM numbers WHERE claim_by = ''"),
                     1);
  }
}

#define FAILERS 6

static void *fail_thread(void *arg)
{
  int *blocked = arg;
  struct store_number_update u = {.change = STORE_NUMBER_FAIL,
                                  .block_after = 3};
  struct list_entry e;
  void *h = open_or_fail();

  number_record_init(&u.rec, "15555550450");
  u.rec.last_failure_ms = 1800000000000;
  u.block.kind = LIST_BLOCK;
  CALL_SET(u.block.entry, "15555550450");
  CALL_SET(u.block.source, "challenge");
  assert_int_equal(ops->begin(h), VS_OK);
  assert_int_equal(ops->update_number(h, &u, &e, blocked), VS_OK);
  assert_int_equal(ops->commit(h), VS_OK);
  if (*blocked)
    assert_string_equal(e.note, "failed 3 challenges");
  ops->close(h);
  return NULL;
}

/* Six failures at once, counted in SQL: the third and sixth blocklist. */
static void test_concurrent_failures(void **state)
{
  pthread_t t[FAILERS];
  int blocked[FAILERS];
  int total = 0;
  void *h = open_or_fail();

  (void)state;
  ops->close(h);
  for (int i = 0; i < FAILERS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, fail_thread, &blocked[i]), 0);
  for (int i = 0; i < FAILERS; i++) {
    pthread_join(t[i], NULL);
    total += blocked[i];
  }
  assert_int_equal(total, 2);
  assert_int_equal(count("SELECT challenge_failures FROM numbers"), 0);
  assert_int_equal(count("SELECT count(*) FROM lists WHERE kind = 'block' "
                         "AND note = 'failed 3 challenges'"),
                   1);
}

/* ---- secrets and connections ------------------------------------------ */

static void test_password_kept_secret(void **state)
{
  const char *at = strchr(url + 13, '@');
  char wrong[700];
  char err[512] = "";
  char safe[700];
  void *h = NULL;

  (void)state;
  snprintf(wrong, sizeof(wrong), "postgresql://vs:Sw0rdfish42%s", at);
  assert_int_equal(ops->open(wrong, &h, err, sizeof(err)), VS_ERR_IO);
  assert_non_null(strstr(err, "password authentication failed"));
  assert_null(strstr(err, "Sw0rdfish42"));
  store_location_safe(wrong, safe, sizeof(safe));
  assert_null(strstr(safe, "Sw0rdfish42"));
  assert_non_null(strstr(safe, "postgresql://vs:***@127.0.0.1:"));
  store_location_safe("postgres://h/db?user=a&password=Sw0rdfish42&x=1", safe,
                      sizeof(safe));
  assert_string_equal(safe, "postgres://h/db?user=a&password=***&x=1");
  store_location_safe("./var/calls.db", safe, sizeof(safe));
  assert_string_equal(safe, "./var/calls.db");
  assert_int_equal(
      ops->open("postgresql://h/db?nosuchoption=1", &h, err, sizeof(err)),
      VS_ERR_INVAL);
}

/*
 * The server goes away: the batch fails, the next begin fails at once
 * without waiting on the network (the backoff), and once the server is
 * back a begin connects again.
 */
static void test_reconnect_with_backoff(void **state)
{
  struct call c;
  int rc = VS_ERR_IO;
  void *h = open_or_fail();

  (void)state;
  call_init(&c, "BEFORE");
  assert_int_equal(ops->begin(h), VS_OK);
  assert_int_equal(ops->save_call(h, &c), VS_OK);
  assert_int_equal(ops->commit(h), VS_OK);
  pg_server("stop");
  assert_int_equal(ops->begin(h), VS_ERR_IO);
  assert_int_equal(ops->rollback(h), VS_OK);
  assert_int_equal(ops->begin(h), VS_ERR_IO);
  assert_non_null(strstr(ops->errmsg(h), "next attempt in"));
  pg_server("start");
  for (int i = 0; i < 100 && rc != VS_OK; i++) {
    rc = ops->begin(h);
    if (rc)
      sleep_ms(100);
  }
  assert_int_equal(rc, VS_OK);
  call_init(&c, "AFTER");
  assert_int_equal(ops->save_call(h, &c), VS_OK);
  assert_int_equal(ops->commit(h), VS_OK);
  ops->close(h);
  assert_int_equal(count("SELECT count(*) FROM calls"), 2);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_concurrent_migrations, setup),
      cmocka_unit_test_setup(test_call_round_trip, setup),
      cmocka_unit_test_setup(test_concurrent_visits, setup),
      cmocka_unit_test_setup(test_concurrent_failures, setup),
      cmocka_unit_test_setup(test_password_kept_secret, setup),
      cmocka_unit_test_setup(test_reconnect_with_backoff, setup),
  };

  return cmocka_run_group_tests(tests, group_setup, NULL);
}
