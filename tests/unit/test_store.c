/*
 * Tests of the store (src/store/store.c and store_sqlite.c) with a real
 * event loop and a real SQLite file in a fresh temporary directory.
 *
 * Everything asynchronous is awaited by running the loop until a condition
 * holds, for at most MAX_ITER iterations of at most ITER_MS each, so that a
 * broken store fails a test instead of hanging it. No test asserts on how
 * long anything took.
 *
 * Tests that need the worker held still at a known point wrap the SQLite
 * backend in a "gate" (see struct gate) through store_open_backend(): its
 * begin() blocks until the test opens the gate, and says when it was
 * entered, which makes batch boundaries deterministic. The queue-full test
 * instead holds SQLite's own write lock from a second connection, as a
 * second process would.
 *
 * Each test runs on one thread (the loop's); the store's worker is the only
 * other thread.
 */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../src/loop/loop.h"
#include "../../src/store/call.h"
#include "../../src/store/store.h"
#include "../../src/store/store_backend.h"
#include "../../src/store/store_sqlite.h"
#include "../../src/util/err.h"

#define MAX_ITER    3000 /* loop iterations before a wait gives up */
#define ITER_MS     10   /* longest sleep of one iteration */
#define GATE_WAIT_S 30   /* longest wait for the worker to reach the gate */
#define MANY        10000

/* One test's directory, database path and loop. Test thread only. */
struct fixture {
  char dir[256];
  char path[320]; /* dir/var/calls.db: var/ does not exist yet */
  struct loop *loop;
};

static int remove_entry(const char *path, const struct stat *sb, int type,
                        struct FTW *ftw)
{
  (void)sb;
  (void)type;
  (void)ftw;
  return remove(path);
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  const char *tmp = getenv("TMPDIR");

  if (!f)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "%s/test_store.XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(f->dir) || loop_create(&f->loop) != VS_OK) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof(f->path), "%s/var/calls.db", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;

  loop_destroy(f->loop);
  nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

/* ---- helpers --------------------------------------------------------- */

static struct store *open_store(struct fixture *f, unsigned cache_max,
                                unsigned queue_max)
{
  struct store_options opt = {f->path, cache_max, queue_max};
  struct store *st = NULL;
  char err[256] = "";
  int rc = store_open(f->loop, &opt, &st, err, sizeof(err));

  if (rc != VS_OK)
    fail_msg("store_open: %s (%s)", err, vs_strerror(rc));
  return st;
}

/* Runs the loop until the worker has finished everything queued. */
static void wait_idle(struct fixture *f, struct store *st)
{
  for (int i = 0; store_queue_depth(st) && i < MAX_ITER; i++)
    loop_run_once(f->loop, ITER_MS);
  assert_int_equal(store_queue_depth(st), 0);
}

static void run_until(struct fixture *f, const int *flag)
{
  for (int i = 0; !*flag && i < MAX_ITER; i++)
    loop_run_once(f->loop, ITER_MS);
  assert_true(*flag);
}

/*
 * A record with a value in every field, derived from `i`. Every other
 * record has the "none" values (-1, and 0 for ended_ms) that the database
 * stores as NULL; record 0 has the edge values 0 that must not be.
 */
static void make_call(struct call *c, int i)
{
  char ref[CALL_REF_SIZE];

  snprintf(ref, sizeof(ref), "ref-%06d", i);
  call_init(c, ref);
  snprintf(c->caller_raw, sizeof(c->caller_raw), "+1 (555) %07d", i);
  snprintf(c->caller, sizeof(c->caller), "1555%07d", i % 97);
  snprintf(c->to, sizeof(c->to), "1800555%04d", i % 10);
  c->started_ms = 1700000000000LL + (int64_t)i * 1000;
  c->updated_ms = c->started_ms + i % 1000;
  c->step = (enum call_step)(i % (CALL_STEP_HUNGUP + 1));
  c->attempts = (uint32_t)(i % 4);
  c->decision = (enum call_decision)(i % 3);
  snprintf(c->reason, sizeof(c->reason), "score:%d>=600", i % 1001);
  snprintf(c->risk_level, sizeof(c->risk_level), "level%d", i % 5);
  CALL_SET(c->recommendation, i % 2 ? "block" : "allow");
  CALL_SET(c->phone_type, "MOBILE");
  snprintf(c->score_ref, sizeof(c->score_ref), "SR%08X", (unsigned)i);
  snprintf(c->digits, sizeof(c->digits), "%d#", i % 10);
  CALL_SET(c->department, "Sales");
  snprintf(c->dialled, sizeof(c->dialled), "4420%06d", i % 1000);
  CALL_SET(c->dial_status, "answered");
  CALL_SET(c->status, "completed");
  if (i % 2 == 0) {
    c->score = i % 1001;
    c->score_ms = i % 3000;
    c->duration_s = i % 600;
    c->ended_ms = c->started_ms + 60000;
  } else {
    CALL_SET(c->score_error, "timeout");
  }
}

/* Fills every text field to its full size, with text SQL must not parse. */
static void make_full_call(struct call *c, const char *ref)
{
  static const char pat[] = "'\";-- DROP TABLE calls; \xc3\xa9x";
  char s[256];

  for (size_t i = 0; i < sizeof(s) - 1; i++)
    s[i] = pat[i % (sizeof(pat) - 1)];
  s[sizeof(s) - 1] = '\0';
  call_init(c, ref);
  CALL_SET(c->caller_raw, s);
  CALL_SET(c->caller, s);
  CALL_SET(c->to, s);
  CALL_SET(c->reason, s);
  CALL_SET(c->risk_level, s);
  CALL_SET(c->recommendation, s);
  CALL_SET(c->phone_type, s);
  CALL_SET(c->score_ref, s);
  CALL_SET(c->score_error, s);
  CALL_SET(c->digits, s);
  CALL_SET(c->department, s);
  CALL_SET(c->dialled, s);
  CALL_SET(c->dial_status, s);
  CALL_SET(c->status, s);
  c->started_ms = INT64_MAX;
  c->updated_ms = INT64_MIN;
  c->attempts = UINT32_MAX;
  c->step = CALL_STEP_UNAVAILABLE;
  c->decision = CALL_DECISION_BLOCK;
  c->score = INT32_MAX;
  c->score_ms = INT32_MIN;
  c->duration_s = 0;
  c->ended_ms = -5;
}

static void assert_call_equal(const struct call *a, const struct call *b)
{
  assert_string_equal(a->ref, b->ref);
  assert_string_equal(a->caller_raw, b->caller_raw);
  assert_string_equal(a->caller, b->caller);
  assert_string_equal(a->to, b->to);
  assert_true(a->started_ms == b->started_ms);
  assert_true(a->updated_ms == b->updated_ms);
  assert_int_equal(a->step, b->step);
  assert_int_equal(a->attempts, b->attempts);
  assert_int_equal(a->decision, b->decision);
  assert_string_equal(a->reason, b->reason);
  assert_true(a->score == b->score);
  assert_string_equal(a->risk_level, b->risk_level);
  assert_string_equal(a->recommendation, b->recommendation);
  assert_string_equal(a->phone_type, b->phone_type);
  assert_string_equal(a->score_ref, b->score_ref);
  assert_string_equal(a->score_error, b->score_error);
  assert_true(a->score_ms == b->score_ms);
  assert_string_equal(a->digits, b->digits);
  assert_string_equal(a->department, b->department);
  assert_string_equal(a->dialled, b->dialled);
  assert_string_equal(a->dial_status, b->dial_status);
  assert_string_equal(a->status, b->status);
  assert_true(a->duration_s == b->duration_s);
  assert_true(a->ended_ms == b->ended_ms);
}

/* The outcome of one store_call_load(). Test thread only. */
struct load_result {
  int done;
  int calls;
  int rc;
  struct call call;
  struct store *st; /* when set, the callback tries to save (see close) */
  int save_rc;
};

static void on_load(void *arg, int rc, const struct call *c)
{
  struct load_result *r = arg;

  r->calls++;
  r->done = 1;
  r->rc = rc;
  if (rc == VS_OK && c)
    r->call = *c;
  if (rc != VS_OK && c)
    r->rc = -1000; /* a record with an error breaks the contract */
  if (r->st) {
    struct call again;

    make_call(&again, 424242);
    r->save_rc = store_call_save(r->st, &again);
  }
}

/* Loads `ref` and runs the loop until the callback has run. */
static int load_sync(struct fixture *f, struct store *st, const char *ref,
                     struct call *out)
{
  struct load_result r = {0};

  assert_int_equal(store_call_load(st, ref, on_load, &r), VS_OK);
  assert_int_equal(r.calls, 0);
  run_until(f, &r.done);
  assert_int_equal(r.calls, 1);
  if (out && r.rc == VS_OK)
    *out = r.call;
  return r.rc;
}

/* Collects what store_calls_list() returns. Test thread only. */
struct list_result {
  int count;
  int stop_after; /* 0 = never */
  int64_t prev_started;
  int ordered;
  char refs[64][CALL_REF_SIZE];
};

static int on_row(void *arg, const struct call *c)
{
  struct list_result *r = arg;

  if (r->count > 0 && c->started_ms > r->prev_started)
    r->ordered = 0;
  r->prev_started = c->started_ms;
  if (r->count < 64)
    CALL_SET(r->refs[r->count], c->ref);
  r->count++;
  return r->stop_after && r->count >= r->stop_after;
}

static int list(const char *path, const struct store_query *q,
                struct list_result *r, char *err, size_t errlen)
{
  int stop = r->stop_after;

  memset(r, 0, sizeof(*r));
  r->stop_after = stop;
  r->ordered = 1;
  return store_calls_list(path, q, on_row, r, err, errlen);
}

static int count_rows(const char *path)
{
  struct list_result r = {0};
  char err[256] = "";
  int rc = list(path, NULL, &r, err, sizeof(err));

  if (rc != VS_OK)
    fail_msg("store_calls_list: %s", err);
  return r.count;
}

static sqlite3 *raw_open(const char *path)
{
  sqlite3 *db = NULL;

  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                   SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
  char *msg = NULL;

  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
    char copy[256];

    snprintf(copy, sizeof(copy), "%s", msg ? msg : "?");
    sqlite3_free(msg);
    fail_msg("%s: %s", sql, copy);
  }
}

/* The integer in column `col` of the row of `ref`, or -999 for NULL. */
static int64_t raw_column(sqlite3 *db, const char *col, const char *ref)
{
  char sql[128];
  sqlite3_stmt *s;
  int64_t v = -12345;

  /* `col` is one of this file's constants, never data. */
  snprintf(sql, sizeof(sql), "SELECT %s FROM calls WHERE ref = ?1", col);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
  sqlite3_bind_text(s, 1, ref, -1, SQLITE_STATIC);
  if (sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_type(s, 0) == SQLITE_NULL ? -999
                                                 : sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

/* ---- the gate: a backend that holds the worker still ----------------- */

/*
 * Wraps a SQLite handle. The worker calls the ops; the test thread changes
 * `closed` and `fail_commit` and waits on `begins`, all under `lock`.
 */
struct gate {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int closed;      /* begin() waits while set */
  int begins;      /* begin() calls that arrived */
  int commits;     /* commit() calls */
  int fail_commit; /* the commit (counted from 1) that fails; 0 = none */
  int injected;    /* worker only: the last failure was ours */
  void *inner;     /* the SQLite handle */
};

static int gate_begin(void *h)
{
  struct gate *g = h;

  pthread_mutex_lock(&g->lock);
  g->begins++;
  pthread_cond_broadcast(&g->cond);
  while (g->closed)
    pthread_cond_wait(&g->cond, &g->lock);
  pthread_mutex_unlock(&g->lock);
  g->injected = 0;
  return store_sqlite_ops.begin(g->inner);
}

static int gate_commit(void *h)
{
  struct gate *g = h;
  int fail;

  pthread_mutex_lock(&g->lock);
  fail = ++g->commits == g->fail_commit;
  pthread_mutex_unlock(&g->lock);
  if (fail) {
    g->injected = 1;
    return VS_ERR_IO;
  }
  return store_sqlite_ops.commit(g->inner);
}

static int gate_rollback(void *h)
{
  return store_sqlite_ops.rollback(((struct gate *)h)->inner);
}

static void gate_close(void *h)
{
  store_sqlite_ops.close(((struct gate *)h)->inner);
}

static int gate_save(void *h, const struct call *c)
{
  return store_sqlite_ops.save_call(((struct gate *)h)->inner, c);
}

static int gate_load(void *h, const char *ref, struct call *out)
{
  return store_sqlite_ops.load_call(((struct gate *)h)->inner, ref, out);
}

static const char *gate_errmsg(void *h)
{
  struct gate *g = h;

  return g->injected ? "injected commit failure"
                     : store_sqlite_ops.errmsg(g->inner);
}

static const struct store_backend_ops gate_ops = {
    .name = "gate",
    .shared = 0,
    .close = gate_close,
    .begin = gate_begin,
    .commit = gate_commit,
    .rollback = gate_rollback,
    .save_call = gate_save,
    .load_call = gate_load,
    .errmsg = gate_errmsg,
};

static const struct store_backend_ops gate_shared_ops = {
    .name = "gate-shared",
    .shared = 1,
    .close = gate_close,
    .begin = gate_begin,
    .commit = gate_commit,
    .rollback = gate_rollback,
    .save_call = gate_save,
    .load_call = gate_load,
    .errmsg = gate_errmsg,
};

static struct store *open_gated(struct fixture *f, struct gate *g,
                                const struct store_backend_ops *ops,
                                unsigned cache_max, unsigned queue_max)
{
  struct store_options opt = {f->path, cache_max, queue_max};
  struct store *st = NULL;
  char err[256] = "";
  int rc;

  memset(g, 0, sizeof(*g));
  pthread_mutex_init(&g->lock, NULL);
  pthread_cond_init(&g->cond, NULL);
  g->closed = 1;
  rc = store_sqlite_ops.open(f->path, &g->inner, err, sizeof(err));
  if (rc == VS_OK)
    rc = store_open_backend(f->loop, &opt, ops, g, &st, err, sizeof(err));
  if (rc != VS_OK)
    fail_msg("open: %s", err);
  return st;
}

static void gate_release(struct gate *g)
{
  pthread_mutex_lock(&g->lock);
  g->closed = 0;
  pthread_cond_broadcast(&g->cond);
  pthread_mutex_unlock(&g->lock);
}

/* Waits until the worker has entered begin() `n` times. */
static void gate_wait_begins(struct gate *g, int n)
{
  struct timespec deadline;
  int rc = 0;

  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += GATE_WAIT_S;
  pthread_mutex_lock(&g->lock);
  while (g->begins < n && rc == 0)
    rc = pthread_cond_timedwait(&g->cond, &g->lock, &deadline);
  pthread_mutex_unlock(&g->lock);
  assert_true(g->begins >= n);
}

static void gate_destroy(struct gate *g)
{
  pthread_cond_destroy(&g->cond);
  pthread_mutex_destroy(&g->lock);
}

/* ---- tests ----------------------------------------------------------- */

static void test_save_then_find(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  const struct call *got;
  struct call c;

  make_call(&c, 1);
  assert_int_equal(store_call_save(st, &c), VS_OK);
  got = store_call_find(st, c.ref);
  assert_non_null(got);
  assert_call_equal(got, &c);
  assert_null(store_call_find(st, "ref-unknown"));
  /* The store keeps its own copy. */
  CALL_SET(c.reason, "changed by the caller");
  assert_string_not_equal(store_call_find(st, c.ref)->reason, c.reason);
  assert_true(store_healthy(st));
  store_close(st);
  store_close(NULL);
}

static void test_persistence_roundtrip(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  char dir[340];
  struct call c;
  struct call got;
  struct stat sb;
  sqlite3 *db;

  for (int i = 0; i < 200; i++) {
    make_call(&c, i);
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  /* A later save of the same ref replaces every field. */
  make_call(&c, 3);
  c.step = CALL_STEP_CONNECTED;
  c.score = 999;
  CALL_SET(c.department, "Support");
  assert_int_equal(store_call_save(st, &c), VS_OK);
  make_full_call(&c, "ref-full");
  assert_int_equal(store_call_save(st, &c), VS_OK);
  store_close(st);

  /* The directory and file were created, and not world-readable. */
  snprintf(dir, sizeof(dir), "%s/var", f->dir);
  assert_int_equal(stat(dir, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));
  assert_int_equal(sb.st_mode & 0027, 0);
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_mode & 0137, 0);

  /* The WAL is kept for readers that cannot create it (see the backend). */
  snprintf(dir, sizeof(dir), "%s-wal", f->path);
  assert_int_equal(stat(dir, &sb), 0);
  assert_int_equal(sb.st_mode & 0137, 0);

  /* "None" values are NULL in the table; real zeroes are not. */
  db = raw_open(f->path);
  assert_true(raw_column(db, "score", "ref-000001") == -999);
  assert_true(raw_column(db, "score_ms", "ref-000001") == -999);
  assert_true(raw_column(db, "duration_s", "ref-000001") == -999);
  assert_true(raw_column(db, "ended_ms", "ref-000001") == -999);
  assert_true(raw_column(db, "score", "ref-000000") == 0);
  assert_true(raw_column(db, "score_ms", "ref-000000") == 0);
  assert_true(raw_column(db, "duration_s", "ref-000000") == 0);
  assert_true(raw_column(db, "ended_ms", "ref-000000") == 1700000060000LL);
  assert_true(raw_column(db, "score", "ref-000003") == 999);
  sqlite3_close(db);

  st = open_store(f, 0, 0);
  for (int i = 0; i < 200; i++) {
    make_call(&c, i);
    if (i == 3) {
      c.step = CALL_STEP_CONNECTED;
      c.score = 999;
      CALL_SET(c.department, "Support");
    }
    assert_null(store_call_find(st, c.ref));
    assert_int_equal(load_sync(f, st, c.ref, &got), VS_OK);
    assert_call_equal(&got, &c);
  }
  make_full_call(&c, "ref-full");
  assert_int_equal(load_sync(f, st, "ref-full", &got), VS_OK);
  assert_call_equal(&got, &c);
  assert_int_equal(count_rows(f->path), 201);
  store_close(st);
}

static void test_load_unknown_is_async(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct load_result r = {0};

  assert_int_equal(store_call_load(st, "no-such-call", on_load, &r), VS_OK);
  assert_int_equal(r.calls, 0); /* never from inside store_call_load */
  run_until(f, &r.done);
  assert_int_equal(r.rc, VS_ERR_NOTFOUND);
  for (int i = 0; i < 5; i++)
    loop_run_once(f->loop, 0);
  assert_int_equal(r.calls, 1);
  store_close(st);
}

static void test_load_cached_is_async(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct load_result r = {0};
  struct store_stats stats;
  struct call c;

  make_call(&c, 5);
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_int_equal(store_call_load(st, c.ref, on_load, &r), VS_OK);
  assert_int_equal(r.calls, 0);
  run_until(f, &r.done);
  assert_int_equal(r.rc, VS_OK);
  assert_call_equal(&r.call, &c);
  store_stats_get(st, &stats);
  assert_int_equal(stats.loaded, 0); /* answered from memory */
  store_close(st);
}

static void test_ended_leaves_cache(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct call c;
  struct call got;

  make_call(&c, 8);
  c.step = CALL_STEP_MENU;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_non_null(store_call_find(st, c.ref));
  c.step = CALL_STEP_ENDED;
  c.duration_s = 42;
  c.ended_ms = c.started_ms + 42000;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_null(store_call_find(st, c.ref));
  /* Queued behind the save, so the database already has it. */
  assert_int_equal(load_sync(f, st, c.ref, &got), VS_OK);
  assert_call_equal(&got, &c);
  /* An ended call is not put back in the cache by a load. */
  assert_null(store_call_find(st, c.ref));
  store_close(st);
}

static void test_cache_eviction(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 4, 0);
  struct store_stats stats;
  struct call c;
  struct call got;

  for (int i = 0; i < 10; i++) {
    make_call(&c, i);
    c.step = CALL_STEP_MENU;
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  for (int i = 0; i < 10; i++) {
    make_call(&c, i);
    if (i < 6)
      assert_null(store_call_find(st, c.ref));
    else
      assert_non_null(store_call_find(st, c.ref));
  }
  store_stats_get(st, &stats);
  assert_int_equal(stats.evicted, 6);

  /* Least recently updated goes first: updating 6 makes 7 the oldest. */
  make_call(&c, 6);
  c.step = CALL_STEP_DIALLING;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  make_call(&c, 10);
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_non_null(store_call_find(st, "ref-000006"));
  assert_int_equal(store_call_find(st, "ref-000006")->step,
                   CALL_STEP_DIALLING);
  assert_null(store_call_find(st, "ref-000007"));
  assert_non_null(store_call_find(st, "ref-000008"));

  /* Evicted calls are still in the database. */
  make_call(&c, 0);
  c.step = CALL_STEP_MENU;
  assert_int_equal(load_sync(f, st, "ref-000000", &got), VS_OK);
  assert_call_equal(&got, &c);
  make_call(&c, 7);
  c.step = CALL_STEP_MENU;
  assert_int_equal(load_sync(f, st, "ref-000007", &got), VS_OK);
  assert_call_equal(&got, &c);
  store_close(st);
}

static void test_loaded_record_enters_cache(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct call c;
  struct call got;

  make_call(&c, 11);
  c.step = CALL_STEP_MENU;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  store_close(st);

  st = open_store(f, 0, 0);
  assert_null(store_call_find(st, c.ref));
  assert_int_equal(load_sync(f, st, c.ref, &got), VS_OK);
  assert_non_null(store_call_find(st, c.ref));
  assert_call_equal(store_call_find(st, c.ref), &c);
  store_close(st);
}

/*
 * A load that completes after a newer save of the same call was evicted
 * must not bring its older record back into the cache.
 */
static void test_load_never_caches_older(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 1, 0);
  struct load_result r = {0};
  struct call v1;
  struct call v2;
  struct call other;

  make_call(&v1, 20);
  v1.step = CALL_STEP_MENU;
  assert_int_equal(store_call_save(st, &v1), VS_OK);
  store_close(st);

  st = open_store(f, 1, 0);
  assert_int_equal(store_call_load(st, v1.ref, on_load, &r), VS_OK);
  v2 = v1;
  v2.step = CALL_STEP_DIALLING;
  assert_int_equal(store_call_save(st, &v2), VS_OK);
  make_call(&other, 21);
  other.step = CALL_STEP_MENU;
  assert_int_equal(store_call_save(st, &other), VS_OK); /* evicts v2 */
  run_until(f, &r.done);
  assert_int_equal(r.rc, VS_OK);
  assert_int_equal(r.call.step, CALL_STEP_MENU); /* issued before v2 */
  assert_null(store_call_find(st, v1.ref));
  assert_int_equal(load_sync(f, st, v1.ref, &v1), VS_OK);
  assert_int_equal(v1.step, CALL_STEP_DIALLING);
  store_close(st);
}

static void test_save_then_load_same_batch(void **state)
{
  struct fixture *f = *state;
  struct load_result r = {0};
  struct store_stats stats;
  struct gate g;
  struct store *st = open_gated(f, &g, &gate_ops, 0, 0);
  struct call first;
  struct call c;

  make_call(&first, 30);
  assert_int_equal(store_call_save(st, &first), VS_OK);
  gate_wait_begins(&g, 1); /* batch 1 = [first], held in begin() */

  make_call(&c, 31);
  c.step = CALL_STEP_ENDED; /* not cached: the load must read the DB */
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_int_equal(store_call_load(st, c.ref, on_load, &r), VS_OK);
  assert_int_equal(store_queue_depth(st), 3);
  gate_release(&g);
  run_until(f, &r.done);
  assert_int_equal(r.rc, VS_OK);
  assert_call_equal(&r.call, &c);
  wait_idle(f, st);
  store_stats_get(st, &stats);
  assert_int_equal(stats.batches, 2);
  assert_int_equal(stats.max_batch, 2); /* batch 2 = [save, load] */
  assert_int_equal(stats.loaded, 1);
  store_close(st);
  gate_destroy(&g);
}

/*
 * The worker is held by SQLite's write lock, taken by a second connection
 * before anything is saved: the worker's BEGIN IMMEDIATE then waits in
 * SQLite's busy handler and no batch can commit. The ceiling counts
 * operations in the batch as well as in the queue, so exactly queue_max
 * saves are accepted whether or not the worker took some of them yet.
 * (The only clock involved is the store's 5 s busy timeout, which would
 * have to expire between a handful of in-memory calls.)
 */
static void test_queue_full_is_busy(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 4);
  struct store_stats stats;
  struct load_result r = {0};
  struct call c;
  sqlite3 *db = raw_open(f->path);

  raw_exec(db, "BEGIN EXCLUSIVE");
  for (int i = 0; i < 4; i++) {
    make_call(&c, 40 + i);
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  assert_true(store_healthy(st));
  make_call(&c, 44);
  assert_int_equal(store_call_save(st, &c), VS_ERR_BUSY);
  assert_false(store_healthy(st));
  assert_int_equal(store_call_load(st, "ref-000040", on_load, &r),
                   VS_ERR_BUSY);
  assert_int_equal(store_queue_depth(st), 4);
  store_stats_get(st, &stats);
  assert_int_equal(stats.dropped, 1);
  assert_int_equal(stats.failed, 0);
  /* The live state still follows the call. */
  assert_non_null(store_call_find(st, "ref-000044"));

  raw_exec(db, "COMMIT");
  sqlite3_close(db);
  wait_idle(f, st);
  store_stats_get(st, &stats);
  assert_int_equal(stats.failed, 0);
  assert_int_equal(stats.saved, 4);

  /* Healthy again once a batch issued after the drop has committed. */
  make_call(&c, 45);
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);
  assert_true(store_healthy(st));
  store_close(st);

  assert_int_equal(count_rows(f->path), 5);
  st = open_store(f, 0, 0);
  assert_int_equal(load_sync(f, st, "ref-000044", NULL), VS_ERR_NOTFOUND);
  assert_int_equal(r.calls, 0);
  store_close(st);
}

/*
 * A row this program cannot read (written by something else) fails the
 * load that meets it, not the batch: the saves beside it still commit.
 */
static void test_unreadable_row_fails_only_its_load(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct store_stats stats;
  struct list_result r = {0};
  char err[512] = "";
  struct call c;
  struct call got;
  sqlite3 *db = raw_open(f->path);

  raw_exec(db, "INSERT INTO calls (ref, step) VALUES ('ref-bad', 'bogus')");
  sqlite3_close(db);
  make_call(&c, 90);
  c.step = CALL_STEP_ENDED;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_int_equal(load_sync(f, st, "ref-bad", NULL), VS_ERR_PROTO);
  wait_idle(f, st);
  assert_true(store_healthy(st));
  store_stats_get(st, &stats);
  assert_int_equal(stats.failed, 0);
  assert_int_equal(load_sync(f, st, c.ref, &got), VS_OK);
  assert_call_equal(&got, &c);
  store_close(st);

  /* The tool says which record it could not read. */
  assert_int_equal(list(f->path, NULL, &r, err, sizeof(err)), VS_ERR_PROTO);
  assert_non_null(strstr(err, "ref-bad"));
}

static void test_close_drains_everything(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct store_stats stats;
  struct call c;
  struct call got;

  for (int i = 0; i < MANY; i++) {
    make_call(&c, i);
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  store_stats_get(st, &stats);
  print_message("      %d saves, %llu batches committed before close\n", MANY,
                (unsigned long long)stats.batches);
  store_close(st);

  assert_int_equal(count_rows(f->path), MANY);
  st = open_store(f, 0, 0);
  for (int i = 0; i < MANY; i += 997) {
    make_call(&c, i);
    assert_int_equal(load_sync(f, st, c.ref, &got), VS_OK);
    assert_call_equal(&got, &c);
  }
  make_call(&c, MANY - 1);
  assert_int_equal(load_sync(f, st, c.ref, &got), VS_OK);
  assert_call_equal(&got, &c);
  store_close(st);
}

/*
 * Group commit, deterministically: the worker is held in begin() with the
 * first save while the other 9,999 are queued, then takes them all at once.
 */
static void test_group_commit(void **state)
{
  struct fixture *f = *state;
  struct store_stats stats;
  struct gate g;
  struct store *st = open_gated(f, &g, &gate_ops, 0, 0);
  struct call c;

  make_call(&c, 0);
  assert_int_equal(store_call_save(st, &c), VS_OK);
  gate_wait_begins(&g, 1);
  for (int i = 1; i < MANY; i++) {
    make_call(&c, i);
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  assert_int_equal(store_queue_depth(st), MANY);
  gate_release(&g);
  wait_idle(f, st);
  store_stats_get(st, &stats);
  assert_int_equal(stats.saved, MANY);
  assert_int_equal(stats.batches, 2);
  assert_int_equal(stats.max_batch, MANY - 1);
  assert_int_equal(stats.failed, 0);
  store_close(st);
  gate_destroy(&g);
  assert_int_equal(count_rows(f->path), MANY);
}

static void test_failed_commit(void **state)
{
  struct fixture *f = *state;
  struct load_result r = {0};
  struct store_stats stats;
  struct gate g;
  struct store *st = open_gated(f, &g, &gate_ops, 0, 0);
  struct call p;
  struct call a;
  struct call b;

  pthread_mutex_lock(&g.lock);
  g.fail_commit = 2; /* batch 2's commit */
  pthread_mutex_unlock(&g.lock);
  make_call(&p, 50);
  p.step = CALL_STEP_MENU;
  assert_int_equal(store_call_save(st, &p), VS_OK);
  gate_wait_begins(&g, 1);
  make_call(&a, 51);
  a.step = CALL_STEP_ENDED;
  assert_int_equal(store_call_save(st, &a), VS_OK);
  assert_int_equal(store_call_load(st, a.ref, on_load, &r), VS_OK);
  gate_release(&g);

  /* Batch 2 read its own save, then failed to commit: the load fails. */
  run_until(f, &r.done);
  assert_int_equal(r.rc, VS_ERR_IO);
  wait_idle(f, st);
  assert_false(store_healthy(st));
  store_stats_get(st, &stats);
  assert_int_equal(stats.batches, 2);
  assert_int_equal(stats.failed, 1);
  assert_int_equal(stats.lost, 1);
  assert_int_equal(stats.saved, 1);

  /* The worker goes on, and health comes back with the next commit. */
  make_call(&b, 52);
  b.step = CALL_STEP_MENU;
  assert_int_equal(store_call_save(st, &b), VS_OK);
  wait_idle(f, st);
  assert_true(store_healthy(st));
  assert_int_equal(load_sync(f, st, a.ref, NULL), VS_ERR_NOTFOUND);
  store_close(st);
  gate_destroy(&g);
  assert_int_equal(count_rows(f->path), 2);
}

static void test_shared_backend_has_no_cache(void **state)
{
  struct fixture *f = *state;
  struct store_stats stats;
  struct gate g;
  struct store *st = open_gated(f, &g, &gate_shared_ops, 0, 0);
  struct call c;
  struct call got;

  gate_release(&g);
  make_call(&c, 60);
  c.step = CALL_STEP_MENU;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_null(store_call_find(st, c.ref));
  assert_int_equal(load_sync(f, st, c.ref, &got), VS_OK);
  assert_call_equal(&got, &c);
  assert_null(store_call_find(st, c.ref));
  store_stats_get(st, &stats);
  assert_int_equal(stats.loaded, 1);
  store_close(st);
  gate_destroy(&g);
}

static void test_list_filters_and_order(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct store_query q = {0};
  struct list_result r = {0};
  char err[256] = "";
  struct call c;

  /* 30 calls, started one second apart, inserted in a shuffled order. */
  for (int k = 0; k < 30; k++) {
    int i = (k * 7) % 30;

    make_call(&c, i);
    CALL_SET(c.caller, i % 3 == 0 ? "15550000003" : "15550000001");
    c.decision = i % 2 ? CALL_DECISION_BLOCK : CALL_DECISION_ALLOW;
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  wait_idle(f, st);

  /* While the server still has the database open. */
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 30);
  assert_true(r.ordered);
  assert_string_equal(r.refs[0], "ref-000029");
  assert_string_equal(r.refs[29], "ref-000000");

  q.limit = 3;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 3);
  assert_string_equal(r.refs[2], "ref-000027");

  q.limit = 0;
  q.since_ms = 1700000000000LL + 20 * 1000;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 10);
  assert_string_equal(r.refs[9], "ref-000020");

  q.since_ms = 0;
  q.caller = "15550000003";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 10);
  assert_true(r.ordered);
  assert_string_equal(r.refs[0], "ref-000027");

  q.caller = NULL;
  q.decision = "block";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 15);
  assert_string_equal(r.refs[0], "ref-000029");

  /* All three: odd multiples of 3 at or after 10 s: 15, 21, 27. */
  q.caller = "15550000003";
  q.since_ms = 1700000000000LL + 10 * 1000;
  q.limit = 2;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 2);
  assert_string_equal(r.refs[0], "ref-000027");
  assert_string_equal(r.refs[1], "ref-000021");
  q.limit = 0;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 3);

  q.decision = "maybe";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_ERR_INVAL);
  assert_non_null(strstr(err, "maybe"));

  /* A callback that returns non-zero stops the listing, without error. */
  memset(&q, 0, sizeof(q));
  r.stop_after = 4;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 4);
  store_close(st);
}

static void test_list_missing_file(void **state)
{
  struct fixture *f = *state;
  struct list_result r = {0};
  char expect[512];
  char err[512] = "";
  struct stat sb;

  snprintf(expect, sizeof(expect), "no call records yet: %s does not exist",
           f->path);
  assert_int_equal(list(f->path, NULL, &r, err, sizeof(err)), VS_ERR_NOTFOUND);
  assert_string_equal(err, expect);
  assert_int_equal(r.count, 0);
  assert_int_equal(stat(f->path, &sb), -1); /* nothing was created */
  assert_int_equal(list("", NULL, &r, err, sizeof(err)), VS_ERR_INVAL);
}

static void test_schema_versions(void **state)
{
  struct fixture *f = *state;
  struct store_options opt = {f->path, 0, 0};
  struct store *st = open_store(f, 0, 0);
  struct list_result r = {0};
  char err[512] = "";
  sqlite3 *db;
  sqlite3_stmt *s;

  store_close(st);
  st = open_store(f, 0, 0); /* an up-to-date schema is left alone */
  store_close(st);

  db = raw_open(f->path);
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT version FROM "
                                      "schema_version",
                                      -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(s, 0), 1);
  assert_int_equal(sqlite3_step(s), SQLITE_DONE);
  sqlite3_finalize(s);
  raw_exec(db, "UPDATE schema_version SET version = 99");
  sqlite3_close(db);

  st = NULL;
  assert_int_equal(store_open(f->loop, &opt, &st, err, sizeof(err)),
                   VS_ERR_PROTO);
  assert_null(st);
  assert_non_null(strstr(err, "schema version 99"));
  assert_int_equal(list(f->path, NULL, &r, err, sizeof(err)), VS_ERR_PROTO);
  assert_non_null(strstr(err, "schema version 99"));
}

static void test_close_completes_pending_loads(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct load_result unknown = {0};
  struct load_result cached = {0};
  struct call c;

  make_call(&c, 70);
  c.step = CALL_STEP_MENU;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  unknown.st = st;
  cached.st = st;
  assert_int_equal(store_call_load(st, "no-such-call", on_load, &unknown),
                   VS_OK);
  assert_int_equal(store_call_load(st, c.ref, on_load, &cached), VS_OK);
  store_close(st); /* without running the loop once */
  assert_int_equal(unknown.calls, 1);
  assert_int_equal(unknown.rc, VS_ERR_NOTFOUND);
  assert_int_equal(cached.calls, 1);
  assert_int_equal(cached.rc, VS_OK);
  assert_call_equal(&cached.call, &c);
  /* A closing store refuses new work, also from its own callbacks. */
  assert_int_equal(unknown.save_rc, VS_ERR_BUSY);
  assert_int_equal(cached.save_rc, VS_ERR_BUSY);
  assert_int_equal(count_rows(f->path), 1);
}

static void test_invalid_arguments(void **state)
{
  struct fixture *f = *state;
  struct store_options opt = {NULL, 0, 0};
  struct store *st = NULL;
  struct load_result r = {0};
  char err[512] = "";
  char path[400];
  struct call c;
  FILE *fp;

  assert_int_equal(store_open(f->loop, &opt, &st, err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_null(st);

  /* A parent that is a file: a clear error, no crash. */
  snprintf(path, sizeof(path), "%s/file", f->dir);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fclose(fp);
  snprintf(path, sizeof(path), "%s/file/sub/calls.db", f->dir);
  opt.path = path;
  assert_int_not_equal(store_open(f->loop, &opt, &st, err, sizeof(err)),
                       VS_OK);
  assert_null(st);
  assert_non_null(strstr(err, "file/sub"));

  st = open_store(f, 0, 0);
  make_call(&c, 80);
  c.ref[0] = '\0';
  assert_int_equal(store_call_save(st, &c), VS_ERR_INVAL);
  make_call(&c, 80);
  c.step = (enum call_step)99;
  assert_int_equal(store_call_save(st, &c), VS_ERR_INVAL);
  make_call(&c, 80);
  memset(c.ref, 'x', sizeof(c.ref)); /* not terminated */
  assert_int_equal(store_call_save(st, &c), VS_ERR_INVAL);
  assert_int_equal(store_call_load(st, "ref", NULL, &r), VS_ERR_INVAL);
  assert_int_equal(store_call_load(st, "", on_load, &r), VS_ERR_INVAL);
  assert_int_equal(store_call_load(st, NULL, on_load, &r), VS_ERR_INVAL);
  assert_null(store_call_find(st, NULL));
  assert_int_equal(store_queue_depth(st), 0);
  store_close(st);
  assert_int_equal(r.calls, 0);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_save_then_find, setup, teardown),
      cmocka_unit_test_setup_teardown(test_persistence_roundtrip, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_load_unknown_is_async, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_load_cached_is_async, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_ended_leaves_cache, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cache_eviction, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loaded_record_enters_cache, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_load_never_caches_older, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_save_then_load_same_batch, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_queue_full_is_busy, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_unreadable_row_fails_only_its_load,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_drains_everything, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_commit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shared_backend_has_no_cache, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_list_filters_and_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_list_missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_versions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_completes_pending_loads,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
