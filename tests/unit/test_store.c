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
 *
 * Times in the screening-state tests are made-up Unix ms passed to the
 * store as `now`, never read from a clock.
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
#include "../../src/store/records.h"
#include "../../src/store/store.h"
#include "../../src/store/store_backend.h"
#include "../../src/store/store_schema.h"
#include "../../src/store/store_sqlite.h"
#include "../../src/util/err.h"

#define MAX_ITER    3000 /* loop iterations before a wait gives up */
#define ITER_MS     10   /* longest sleep of one iteration */
#define GATE_WAIT_S 30   /* longest wait for the worker to reach the gate */
#define MANY        10000
#define SCHEMA      8 /* the version this program's store migrates to */
#define STATE_MAX   64

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
  c->decision = (enum call_decision)(i % 4);
  snprintf(c->reason, sizeof(c->reason), "score:%d>=600", i % 1001);
  snprintf(c->trace, sizeof(c->trace), "allow:miss,block:miss,score:%d",
           i % 1001);
  snprintf(c->policy_version, sizeof(c->policy_version), "%016llx",
           (unsigned long long)i * 0x9e3779b97f4a7c15ull);
  c->shadow = i % 2;
  c->velocity_count = i % 9;
  CALL_SET(c->score_source, i % 3 == 0 ? "api" : i % 3 == 1 ? "cache" : "");
  if (i % 4) {
    c->challenge_digit[0] = (char)('0' + i % 10);
    c->challenge_digit[1] = '\0';
    c->challenge_tries = (uint32_t)(i % 3 + 1);
    CALL_SET(c->challenge_result, i % 2 ? "passed" : "failed");
  }
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
  CALL_SET(c->trace, s);
  CALL_SET(c->policy_version, s);
  CALL_SET(c->score_source, s);
  CALL_SET(c->challenge_digit, s);
  CALL_SET(c->challenge_result, s);
  c->started_ms = INT64_MAX;
  c->updated_ms = INT64_MIN;
  c->attempts = UINT32_MAX;
  c->step = CALL_STEP_CHALLENGE;
  c->decision = CALL_DECISION_CHALLENGE;
  c->shadow = 1;
  c->velocity_count = INT32_MIN;
  c->challenge_tries = UINT32_MAX;
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
  assert_string_equal(a->trace, b->trace);
  assert_string_equal(a->policy_version, b->policy_version);
  assert_int_equal(a->shadow, b->shadow);
  assert_true(a->velocity_count == b->velocity_count);
  assert_string_equal(a->score_source, b->score_source);
  assert_string_equal(a->challenge_digit, b->challenge_digit);
  assert_int_equal(a->challenge_tries, b->challenge_tries);
  assert_string_equal(a->challenge_result, b->challenge_result);
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

/* The one integer `sql` selects. */
static int raw_int(sqlite3 *db, const char *sql)
{
  sqlite3_stmt *s;
  int n;

  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  n = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  return n;
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

static int gate_save_list(void *h, const struct list_entry *e)
{
  return store_sqlite_ops.save_list(((struct gate *)h)->inner, e);
}

static int gate_save_number(void *h, const struct number_record *r)
{
  return store_sqlite_ops.save_number(((struct gate *)h)->inner, r);
}

static int gate_delete_list(void *h, enum list_kind kind, const char *entry)
{
  return store_sqlite_ops.delete_list(((struct gate *)h)->inner, kind, entry);
}

static int gate_load_state(void *h, const struct store_state_query *q,
                           const struct store_state_sink *sink)
{
  return store_sqlite_ops.load_state(((struct gate *)h)->inner, q, sink);
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
    .save_list = gate_save_list,
    .save_number = gate_save_number,
    .delete_list = gate_delete_list,
    .load_state = gate_load_state,
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
    .save_list = gate_save_list,
    .save_number = gate_save_number,
    .delete_list = gate_delete_list,
    .load_state = gate_load_state,
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

/*
 * Waits until the worker has entered begin() `n` times. The store hands
 * operations to its worker before the loop sleeps, so one loop iteration
 * runs first.
 */
static void gate_wait_begins(struct loop *loop, struct gate *g, int n)
{
  struct timespec deadline;
  int rc = 0;

  loop_run_once(loop, 0);
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

/* ---- screening state helpers ----------------------------------------- */

/* The outcome of one store_state_load(), copied. Test thread only. */
struct state_result {
  int done;
  int calls;
  int rc;
  int null_state; /* the callback got NULL */
  size_t nlists;
  size_t nnumbers;
  size_t nrecent;
  struct list_entry lists[STATE_MAX];
  struct number_record numbers[STATE_MAX];
  struct store_recent_call recent[STATE_MAX];
};

static void on_state(void *arg, int rc, const struct store_state *s)
{
  struct state_result *r = arg;

  r->calls++;
  r->done = 1;
  r->rc = rc;
  r->null_state = s == NULL;
  if (!s)
    return;
  if (rc != VS_OK)
    r->rc = -1000; /* a state with an error breaks the contract */
  r->nlists = s->nlists;
  r->nnumbers = s->nnumbers;
  r->nrecent = s->nrecent;
  for (size_t i = 0; i < s->nlists && i < STATE_MAX; i++)
    r->lists[i] = s->lists[i];
  for (size_t i = 0; i < s->nnumbers && i < STATE_MAX; i++)
    r->numbers[i] = s->numbers[i];
  for (size_t i = 0; i < s->nrecent && i < STATE_MAX; i++)
    r->recent[i] = s->recent[i];
}

static int state_sync(struct fixture *f, struct store *st, int64_t now_ms,
                      int64_t score_since_ms, int64_t recent_since_ms,
                      struct state_result *r)
{
  memset(r, 0, sizeof(*r));
  assert_int_equal(store_state_load(st, now_ms, score_since_ms,
                                    recent_since_ms, on_state, r),
                   VS_OK);
  assert_int_equal(r->calls, 0); /* never from inside the call */
  run_until(f, &r->done);
  assert_int_equal(r->calls, 1);
  if (r->rc == VS_OK)
    assert_false(r->null_state);
  else
    assert_true(r->null_state);
  return r->rc;
}

static void make_entry(struct list_entry *e, enum list_kind kind,
                       const char *entry, int64_t expires_ms)
{
  memset(e, 0, sizeof(*e));
  e->kind = kind;
  CALL_SET(e->entry, entry);
  snprintf(e->note, sizeof(e->note), "added for %s by 'ops'; -- test", entry);
  CALL_SET(e->source, "cli");
  e->created_ms = 1700000000123LL;
  e->expires_ms = expires_ms;
}

static void assert_entry_equal(const struct list_entry *a,
                               const struct list_entry *b)
{
  assert_int_equal(a->kind, b->kind);
  assert_string_equal(a->entry, b->entry);
  assert_string_equal(a->note, b->note);
  assert_string_equal(a->source, b->source);
  assert_true(a->created_ms == b->created_ms);
  assert_true(a->expires_ms == b->expires_ms);
}

/* A record with a value in every field. */
static void make_number(struct number_record *r, const char *number)
{
  number_record_init(r, number);
  r->pass_expires_ms = 0;
  r->challenge_failures = 0;
  r->last_failure_ms = 0;
  r->score_fetched_ms = 0;
  r->score = 512;
  CALL_SET(r->risk_level, "medium-low");
  CALL_SET(r->recommendation, "allow");
  CALL_SET(r->phone_type, "FIXED_LINE");
  snprintf(r->score_ref, sizeof(r->score_ref), "SR-%s", number);
}

static void assert_number_equal(const struct number_record *a,
                                const struct number_record *b)
{
  assert_string_equal(a->number, b->number);
  assert_true(a->pass_expires_ms == b->pass_expires_ms);
  assert_int_equal(a->challenge_failures, b->challenge_failures);
  assert_true(a->last_failure_ms == b->last_failure_ms);
  assert_true(a->score_fetched_ms == b->score_fetched_ms);
  assert_true(a->score == b->score);
  assert_string_equal(a->risk_level, b->risk_level);
  assert_string_equal(a->recommendation, b->recommendation);
  assert_string_equal(a->phone_type, b->phone_type);
  assert_string_equal(a->score_ref, b->score_ref);
}

/* Rows of `table` (one of this file's constants, never data). */
static int raw_count(const char *path, const char *table)
{
  char sql[128];
  sqlite3 *db = raw_open(path);
  int n;

  snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
  n = raw_int(db, sql);
  sqlite3_close(db);
  return n;
}

/* Collects what store_lists_read() returns. Test thread only. */
struct entries_result {
  size_t count;
  size_t stop_after; /* 0 = never */
  int ordered;       /* by kind, then entry */
  struct list_entry prev;
  struct list_entry first[STATE_MAX];
};

static int on_entry(void *arg, const struct list_entry *e)
{
  struct entries_result *r = arg;

  if (r->count > 0 &&
      (e->kind < r->prev.kind ||
       (e->kind == r->prev.kind && strcmp(e->entry, r->prev.entry) <= 0)))
    r->ordered = 0;
  r->prev = *e;
  if (r->count < STATE_MAX)
    r->first[r->count] = *e;
  r->count++;
  return r->stop_after && r->count >= r->stop_after;
}

static int read_entries(const char *path, int kind, struct entries_result *r,
                        char *err, size_t errlen)
{
  size_t stop = r->stop_after;

  memset(r, 0, sizeof(*r));
  r->stop_after = stop;
  r->ordered = 1;
  return store_lists_read(path, kind, on_entry, r, err, errlen);
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

/* Fills every text field of `c` to its last byte with `fill`. */
static void fill_text(struct call *c, char fill)
{
  for (size_t i = 0; i < CALL_TEXT_COLS; i++) {
    char *t = (char *)c + call_text_cols[i].off;

    memset(t, fill + (char)i, call_text_cols[i].size - 1);
    t[call_text_cols[i].size - 1] = '\0';
  }
}

/*
 * The cache keeps calls packed: every field must come back byte for byte,
 * at every length (full text fields, empty ones) and across updates that
 * grow and shrink a cached record.
 */
static void test_cache_packs_every_field(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct call_layout layout;
  unsigned char packed[sizeof(struct call) + CALL_TEXT_COLS];
  struct call c;
  struct call back;

  /* Zeroed first, so that padding compares equal too. */
  memset(&c, 0, sizeof(c));
  make_call(&c, 31);
  call_layout_init(&layout);
  assert_true(call_packed_size(&layout, &c) < sizeof(c) / 2);
  call_pack(&layout, &c, packed);
  call_unpack(&layout, packed, &back);
  assert_memory_equal(&back, &c, sizeof(c));
  assert_string_equal(call_packed_ref(&layout, packed), c.ref);

  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_memory_equal(store_call_find(st, c.ref), &c, sizeof(c));
  /* Grown to every field's limit (the ref too: a new record), then
   * shrunk to nothing but the ref. */
  fill_text(&c, 'a');
  c.score = 999;
  c.ended_ms = 1700000000123LL;
  /* Full text fields take exactly their arrays: nothing is lost. */
  assert_int_equal(call_packed_size(&layout, &c), sizeof(c));
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_memory_equal(store_call_find(st, c.ref), &c, sizeof(c));
  CALL_SET(c.trace, "");
  CALL_SET(c.reason, "short");
  assert_int_equal(store_call_save(st, &c), VS_OK);
  /* Field by field: the bytes past the new NULs are not part of them. */
  assert_call_equal(store_call_find(st, c.ref), &c);
  store_close(st);
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
  /* A flag is 0 or 1 whatever non-zero the caller used. */
  assert_true(raw_column(db, "shadow", "ref-full") == 1);
  assert_true(raw_column(db, "shadow", "ref-000002") == 0);
  assert_true(raw_column(db, "velocity_count", "ref-000000") == 0);
  assert_true(raw_column(db, "challenge_tries", "ref-000000") == 0);
  assert_true(raw_column(db, "velocity_count", "ref-000005") == 5);
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
  gate_wait_begins(f->loop, &g, 1); /* batch 1 = [first], held in begin() */

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
  struct state_result sr = {0};
  struct number_record n;
  struct list_entry e;
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
  /* The screening writes share the ceiling, and are dropped alike. */
  make_entry(&e, LIST_BLOCK, "1444", 0);
  assert_int_equal(store_list_save(st, &e), VS_ERR_BUSY);
  assert_int_equal(store_list_delete(st, LIST_BLOCK, "1444"), VS_ERR_BUSY);
  make_number(&n, "1444");
  assert_int_equal(store_number_save(st, &n), VS_ERR_BUSY);
  assert_int_equal(store_state_load(st, 1, 1, 1, on_state, &sr), VS_ERR_BUSY);
  store_stats_get(st, &stats);
  assert_int_equal(stats.dropped, 4); /* the load is refused, not dropped */
  assert_int_equal(store_queue_depth(st), 4);

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
  assert_int_equal(sr.calls, 0);
  store_close(st);
  assert_int_equal(raw_count(f->path, "lists"), 0);
  assert_int_equal(raw_count(f->path, "numbers"), 0);
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
  print_message("# %d saves, %llu batches committed before close\n", MANY,
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
  gate_wait_begins(f->loop, &g, 1);
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
  gate_wait_begins(f->loop, &g, 1);
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
  /* b took the id that a had: saved again, a is a call of its own. */
  assert_int_equal(store_call_save(st, &a), VS_OK);
  wait_idle(f, st);
  assert_int_equal(load_sync(f, st, b.ref, &p), VS_OK);
  assert_int_equal(p.step, CALL_STEP_MENU);
  store_close(st);
  gate_destroy(&g);
  assert_int_equal(count_rows(f->path), 3);
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

/*
 * 30 calls, ref-000000 to ref-000029, started one second apart and saved
 * in a shuffled order: every third from 15550000003, the others from
 * 15550000001; the odd ones blocked, the even ones allowed.
 */
static void save_thirty(struct store *st)
{
  struct call c;

  for (int k = 0; k < 30; k++) {
    int i = (k * 7) % 30;

    make_call(&c, i);
    CALL_SET(c.caller, i % 3 == 0 ? "15550000003" : "15550000001");
    c.decision = i % 2 ? CALL_DECISION_BLOCK : CALL_DECISION_ALLOW;
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
}

static void test_list_filters_and_order(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct store_query q = {0};
  struct list_result r = {0};
  char err[256] = "";

  save_thirty(st);
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
  assert_string_equal(r.refs[14], "ref-000001");

  /* Allowed calls, which the index by decision leaves out (migration 7),
   * by time instead: the same answers, in both orders. */
  q.decision = "allow";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 15);
  assert_true(r.ordered);
  assert_string_equal(r.refs[0], "ref-000028");
  assert_string_equal(r.refs[14], "ref-000000");
  q.oldest_first = 1;
  q.since_ms = 1700000000000LL + 9 * 1000;
  q.limit = 2;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 2);
  assert_string_equal(r.refs[0], "ref-000010");
  assert_string_equal(r.refs[1], "ref-000012");
  q.decision = "block";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 2);
  assert_string_equal(r.refs[0], "ref-000009");
  assert_string_equal(r.refs[1], "ref-000011");
  q.oldest_first = 0;
  q.since_ms = 0;
  q.limit = 0;
  q.decision = "block";

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

/* What store_forget() answered, and that it did. */
struct forgot {
  int done;
  struct store_forget_counts counts;
};

static void on_forgot(void *arg, int rc, const struct store_forget_counts *c)
{
  struct forgot *out = arg;

  assert_int_equal(rc, VS_OK);
  out->counts = *c;
  out->done = 1;
}

/* The calls not yet in calls_by_caller. */
#define PENDING                                                               \
  "SELECT count(*) FROM calls WHERE rowid > (SELECT through FROM "            \
  "call_index)"

/* `n` calls of caller 15550000009, one batch each, to drive the worker. */
static void nudge(struct fixture *f, struct store *st, int from, int n)
{
  struct call c;

  for (int i = from; i < from + n; i++) {
    make_call(&c, 900 + i);
    CALL_SET(c.caller, "15550000009");
    assert_int_equal(store_call_save(st, &c), VS_OK);
    wait_idle(f, st);
  }
}

/*
 * save_thirty() in one batch, which the pass reads after the batch and,
 * after the next batch, moves into both indexes; then two nudges, which
 * stay pending. Returns a connection of the test's own to the database.
 */
static sqlite3 *index_thirty(struct fixture *f, struct store *st)
{
  sqlite3 *db;

  save_thirty(st);
  wait_idle(f, st);
  nudge(f, st, 0, 2);
  db = raw_open(f->path);
  assert_int_equal(raw_int(db, PENDING), 2);
  return db;
}

/*
 * Lists by caller merge the calls already in calls_by_caller with those
 * still pending, in one order, and forget and a changed start follow both.
 */
static void test_calls_by_caller(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct forgot fc = {0};
  struct store_query q = {0};
  struct list_result r = {0};
  char err[256] = "";
  struct call c;
  sqlite3 *db;

  /* 10 of the 30 are from ...03. */
  db = index_thirty(f, st);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_caller"), 30);

  /* Three newer calls of ...03, pending, one of them blocked. */
  for (int i = 30; i < 33; i++) {
    make_call(&c, i);
    CALL_SET(c.caller, "15550000003");
    c.decision = i == 31 ? CALL_DECISION_BLOCK : CALL_DECISION_ALLOW;
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  wait_idle(f, st);
  /* The next pass may have started (a second on, which a slow run under
   * valgrind reaches): it took the two nudges but not these three. */
  assert_true(raw_int(db, PENDING) >= 3);

  q.caller = "15550000003";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 13);
  assert_true(r.ordered);
  assert_string_equal(r.refs[0], "ref-000032");
  assert_string_equal(r.refs[3], "ref-000027");
  assert_string_equal(r.refs[12], "ref-000000");
  q.limit = 4; /* three pending, then the newest indexed */
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 4);
  assert_string_equal(r.refs[3], "ref-000027");
  q.oldest_first = 1;
  q.since_ms = 1700000000000LL + 24 * 1000;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 4);
  assert_string_equal(r.refs[0], "ref-000024");
  assert_string_equal(r.refs[1], "ref-000027");
  assert_string_equal(r.refs[2], "ref-000030");
  q.oldest_first = 0;
  q.limit = 0;
  q.since_ms = 0;
  q.decision = "block"; /* 3, 9, 15, 21, 27 indexed and 31 pending */
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 6);
  assert_string_equal(r.refs[0], "ref-000031");
  assert_string_equal(r.refs[1], "ref-000027");

  /* A call saved again keeps the caller and start of its first record,
   * so its entry in calls_by_caller stays true. */
  make_call(&c, 3);
  CALL_SET(c.caller, "15550000001");
  CALL_SET(c.caller_raw, "+1 555 000 0001");
  CALL_SET(c.to, "18005550999");
  c.started_ms = 1700000000000LL + 99 * 1000;
  c.attempts = 3;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);
  q.decision = NULL;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 13);
  assert_string_equal(r.refs[11], "ref-000003");
  store_close(st); /* so that the load below reads the database */
  st = open_store(f, 0, 0);
  assert_int_equal(load_sync(f, st, "ref-000003", &c), VS_OK);
  assert_string_equal(c.caller, "15550000003");
  assert_string_equal(c.caller_raw, "+1 (555) 0000003");
  assert_string_equal(c.to, "18005550003");
  assert_true(c.started_ms == 1700000000000LL + 3 * 1000);
  assert_int_equal(c.attempts, 3);

  /* forget takes a caller's calls from both tables. */
  assert_int_equal(store_forget(st, "15550000003", on_forgot, &fc), VS_OK);
  wait_idle(f, st);
  assert_int_equal(fc.done, 1);
  assert_int_equal(fc.counts.calls, 13);
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 0);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_caller WHERE "
                               "number = '15550000003'"),
                   0);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls WHERE "
                               "caller = '15550000003'"),
                   0);
  assert_int_equal(count_rows(f->path), 35 - 13);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_ref b WHERE "
                               "NOT EXISTS (SELECT 1 FROM calls WHERE "
                               "id = b.call)"),
                   0);

  store_close(st);

  /*
   * Forgetting the newest call, once indexed, frees its rowid for the next
   * call, which must then count as pending. A new store's first batch
   * starts a pass; the update of the call is the next batch, after which
   * the pass has moved call_index.through to the call.
   */
  st = open_store(f, 0, 0);
  make_call(&c, 40);
  CALL_SET(c.caller, "15550000007");
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);
  c.attempts++;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);
  memset(&fc, 0, sizeof(fc));
  assert_int_equal(store_forget(st, "15550000007", on_forgot, &fc), VS_OK);
  wait_idle(f, st);
  assert_int_equal(fc.counts.calls, 1);
  make_call(&c, 41);
  CALL_SET(c.caller, "15550000008");
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);
  q.caller = "15550000008";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 1);
  store_close(st);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_caller b WHERE "
                               "NOT EXISTS (SELECT 1 FROM calls WHERE "
                               "rowid = b.call AND caller = b.number)"),
                   0);
  sqlite3_close(db);
}

/* Calls that share a reference with another; none should. */
#define DUPLICATE_REFS                                                        \
  "SELECT count(*) FROM (SELECT ref FROM calls GROUP BY ref "                 \
  "HAVING count(*) > 1)"

/*
 * A call is found by reference whether calls_by_ref holds it or it is
 * pending, by the worker that wrote it and by one that starts over: saved
 * again, it is updated in place, never recorded twice.
 */
static void test_calls_by_ref(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct call c;
  sqlite3 *db;

  db = index_thirty(f, st);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_ref b CROSS "
                               "JOIN calls c ON c.id = b.call AND "
                               "c.ref = b.ref"),
                   30);

  /* ref-000005 is indexed, ref-000901 (the second nudge) pending. */
  make_call(&c, 5);
  c.attempts = 7;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  make_call(&c, 901);
  CALL_SET(c.caller, "15550000009");
  c.attempts = 8;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);
  assert_int_equal(count_rows(f->path), 32);
  store_close(st);

  /* A new worker reloads what is pending from the table. */
  st = open_store(f, 0, 0);
  make_call(&c, 901);
  CALL_SET(c.caller, "15550000009");
  c.attempts = 9;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);
  store_close(st);
  st = open_store(f, 0, 0);
  assert_int_equal(load_sync(f, st, "ref-000005", &c), VS_OK);
  assert_int_equal(c.attempts, 7);
  assert_int_equal(load_sync(f, st, "ref-000901", &c), VS_OK);
  assert_int_equal(c.attempts, 9);
  assert_int_equal(load_sync(f, st, "ref-000902", &c), VS_ERR_NOTFOUND);

  /* Once the pass has taken them, the nudges are found in the index. */
  nudge(f, st, 3, 2);
  nudge(f, st, 3, 2);
  assert_true(raw_int(db, PENDING) <= 2);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_ref WHERE "
                               "ref = 'ref-000901'"),
                   1);
  make_call(&c, 901);
  CALL_SET(c.caller, "15550000009");
  c.attempts = 10;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);
  store_close(st);
  assert_int_equal(count_rows(f->path), 34);
  assert_int_equal(raw_int(db, DUPLICATE_REFS), 0);
  assert_int_equal(raw_int(db, "SELECT attempts FROM calls WHERE "
                               "ref = 'ref-000901'"),
                   10);
  sqlite3_close(db);
}

/* Entries by reference in both levels, and those naming no call. */
#define REF_ENTRIES                                                           \
  "SELECT (SELECT count(*) FROM calls_by_ref) + (SELECT count(*) FROM "       \
  "calls_by_ref_recent)"
#define ORPHAN_REFS                                                           \
  "SELECT count(*) FROM (SELECT call FROM calls_by_ref UNION ALL SELECT "     \
  "call FROM calls_by_ref_recent) b WHERE NOT EXISTS (SELECT 1 FROM calls "   \
  "WHERE id = b.call)"

/*
 * The retention purge takes the oldest calls' index entries with them,
 * from both levels of the index by reference; forget deletes only calls
 * of the number it is given, and their entries in both levels too.
 */
static void test_purge_takes_index_entries(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct forgot fc = {0};
  struct store_query q = {.caller = "15550000003"};
  struct list_result r = {0};
  char err[256] = "";
  sqlite3 *db;

  db = index_thirty(f, st);
  /* Half of the entries in the recent level, as past
   * CALL_INDEX_RECENT_FROM calls some of them are. */
  raw_exec(db, "INSERT INTO calls_by_ref_recent SELECT ref, call FROM "
               "calls_by_ref WHERE call % 2 = 0");
  raw_exec(db, "DELETE FROM calls_by_ref WHERE call % 2 = 0");
  assert_int_equal(store_purge(st, 1700000000000LL + 10 * 1000), VS_OK);
  wait_idle(f, st);
  assert_int_equal(count_rows(f->path), 32 - 10);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_caller"), 20);
  assert_int_equal(raw_int(db, REF_ENTRIES), 20);
  assert_int_equal(raw_int(db, ORPHAN_REFS), 0);
  assert_true(raw_int(db, "SELECT count(*) FROM calls_by_ref_recent") > 0);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_caller WHERE "
                               "at_ms < 1700000010000"),
                   0);
  assert_int_equal(raw_int(db, PENDING), 2);
  sqlite3_close(db);
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 6); /* 12 to 27 */
  assert_string_equal(r.refs[5], "ref-000012");

  /* An entry naming another caller's call, as a damaged index would,
   * does not make forget delete that call. */
  db = raw_open(f->path);
  raw_exec(db, "UPDATE calls_by_caller SET call = (SELECT rowid FROM calls "
               "WHERE ref = 'ref-000013') WHERE call = (SELECT rowid FROM "
               "calls WHERE ref = 'ref-000012')");
  assert_int_equal(store_forget(st, "15550000003", on_forgot, &fc), VS_OK);
  wait_idle(f, st);
  assert_int_equal(fc.counts.calls, 5);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls WHERE "
                               "ref = 'ref-000013'"),
                   1);
  assert_int_equal(raw_int(db, REF_ENTRIES), 15);
  assert_int_equal(raw_int(db, ORPHAN_REFS), 0);
  sqlite3_close(db);
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
  assert_int_equal(sqlite3_column_int(s, 0), SCHEMA);
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
  struct state_result sr = {0};
  struct list_entry e;
  struct call c;

  make_call(&c, 70);
  c.step = CALL_STEP_MENU;
  c.started_ms = 5;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  unknown.st = st;
  cached.st = st;
  assert_int_equal(store_call_load(st, "no-such-call", on_load, &unknown),
                   VS_OK);
  assert_int_equal(store_call_load(st, c.ref, on_load, &cached), VS_OK);
  make_entry(&e, LIST_ALLOW, "1700", 0);
  assert_int_equal(store_list_save(st, &e), VS_OK);
  assert_int_equal(store_state_load(st, 1, 1, 1, on_state, &sr), VS_OK);
  store_close(st); /* without running the loop once */
  assert_int_equal(sr.calls, 1);
  assert_int_equal(sr.rc, VS_OK);
  assert_int_equal(sr.nlists, 1);
  assert_int_equal(sr.nrecent, 1);
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
  struct number_record n;
  struct list_entry e;
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

  assert_int_equal(store_list_save(st, NULL), VS_ERR_INVAL);
  make_entry(&e, (enum list_kind)2, "1555", 0);
  assert_int_equal(store_list_save(st, &e), VS_ERR_INVAL);
  make_entry(&e, LIST_ALLOW, "", 0);
  assert_int_equal(store_list_save(st, &e), VS_ERR_INVAL);
  memset(e.entry, '1', sizeof(e.entry)); /* not terminated */
  assert_int_equal(store_list_save(st, &e), VS_ERR_INVAL);
  assert_int_equal(store_list_delete(st, LIST_ALLOW, NULL), VS_ERR_INVAL);
  assert_int_equal(store_list_delete(st, LIST_ALLOW, ""), VS_ERR_INVAL);
  /* Longer than any entry: cut, it would name another entry. */
  assert_int_equal(store_list_delete(st, LIST_ALLOW, "123456789012345678"),
                   VS_ERR_INVAL);
  assert_int_equal(store_list_delete(st, (enum list_kind) - 1, "1"),
                   VS_ERR_INVAL);
  assert_int_equal(store_number_save(st, NULL), VS_ERR_INVAL);
  number_record_init(&n, "");
  assert_int_equal(store_number_save(st, &n), VS_ERR_INVAL);
  memset(n.number, '1', sizeof(n.number));
  assert_int_equal(store_number_save(st, &n), VS_ERR_INVAL);
  assert_int_equal(store_state_load(st, 1, 1, 1, NULL, NULL), VS_ERR_INVAL);

  assert_int_equal(store_queue_depth(st), 0);
  store_close(st);
  assert_int_equal(r.calls, 0);

  /* The names of the records. */
  assert_string_equal(list_kind_name(LIST_ALLOW), "allow");
  assert_string_equal(list_kind_name(LIST_BLOCK), "block");
  assert_string_equal(list_kind_name((enum list_kind)9), "unknown");
  assert_int_equal(list_kind_parse("allow"), LIST_ALLOW);
  assert_int_equal(list_kind_parse("block"), LIST_BLOCK);
  assert_int_equal(list_kind_parse("Block"), -1);
  assert_int_equal(list_kind_parse(""), -1);
  assert_int_equal(list_kind_parse(NULL), -1);
  number_record_init(&n, "15550001111");
  assert_string_equal(n.number, "15550001111");
  assert_true(n.score == -1 && n.pass_expires_ms == 0 &&
              n.challenge_failures == 0 && n.score_fetched_ms == 0 &&
              n.risk_level[0] == '\0');
  assert_int_equal(call_step_parse("challenge"), CALL_STEP_CHALLENGE);
  assert_int_equal(call_decision_parse("challenge"), CALL_DECISION_CHALLENGE);
}

/* ---- screening fields, migration, lists and numbers ------------------ */

/* Every field added by schema version 2, at its edges, through a restart. */
static void test_new_call_fields_roundtrip(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct list_result r = {0};
  char err[256] = "";
  struct call c;
  struct call got;
  sqlite3 *db;

  make_call(&c, 7);
  CALL_SET(c.trace, "allow:miss,block:miss,pass:none,velocity:3<5,"
                    "score:742>=600");
  CALL_SET(c.policy_version, "0123456789abcdef");
  c.shadow = 7; /* any non-zero is "in shadow mode" */
  c.velocity_count = -1;
  CALL_SET(c.score_source, "cache");
  CALL_SET(c.challenge_digit, "4");
  c.challenge_tries = 2;
  CALL_SET(c.challenge_result, "passed");
  c.step = CALL_STEP_CHALLENGE;
  c.decision = CALL_DECISION_CHALLENGE;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_int_equal(store_call_find(st, c.ref)->shadow, 7); /* a copy */
  store_close(st);

  c.shadow = 1;
  st = open_store(f, 0, 0);
  assert_int_equal(load_sync(f, st, c.ref, &got), VS_OK);
  assert_call_equal(&got, &c);
  store_close(st);

  /* The tool reads them too, and the names are the ones SQL sees. */
  assert_int_equal(list(f->path, NULL, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 1);
  db = raw_open(f->path);
  assert_true(raw_column(db, "velocity_count", c.ref) == -1);
  assert_true(raw_column(db, "challenge_tries", c.ref) == 2);
  assert_true(raw_column(db, "shadow", c.ref) == 1);
  assert_true(raw_column(db, "step = 'challenge'", c.ref) == 1);
  assert_true(raw_column(db, "decision = 'challenge'", c.ref) == 1);
  sqlite3_close(db);
}

/* The schema of version 1 exactly as it was released, to migrate from. */
static const char v1_schema[] =
    "CREATE TABLE schema_version ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " version INTEGER NOT NULL);"
    "INSERT INTO schema_version (id, version) VALUES (1, 1);"
    "CREATE TABLE calls ("
    " ref TEXT PRIMARY KEY NOT NULL,"
    " caller_raw TEXT NOT NULL DEFAULT '',"
    " caller TEXT NOT NULL DEFAULT '',"
    " to_number TEXT NOT NULL DEFAULT '',"
    " started_ms INTEGER NOT NULL DEFAULT 0,"
    " updated_ms INTEGER NOT NULL DEFAULT 0,"
    " step TEXT NOT NULL DEFAULT 'new',"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " decision TEXT NOT NULL DEFAULT 'none',"
    " reason TEXT NOT NULL DEFAULT '',"
    " score INTEGER,"
    " risk_level TEXT NOT NULL DEFAULT '',"
    " recommendation TEXT NOT NULL DEFAULT '',"
    " phone_type TEXT NOT NULL DEFAULT '',"
    " score_ref TEXT NOT NULL DEFAULT '',"
    " score_error TEXT NOT NULL DEFAULT '',"
    " score_ms INTEGER,"
    " digits TEXT NOT NULL DEFAULT '',"
    " department TEXT NOT NULL DEFAULT '',"
    " dialled TEXT NOT NULL DEFAULT '',"
    " dial_status TEXT NOT NULL DEFAULT '',"
    " status TEXT NOT NULL DEFAULT '',"
    " duration_s INTEGER,"
    " ended_ms INTEGER);"
    "CREATE INDEX calls_started_ms ON calls (started_ms);"
    "CREATE INDEX calls_caller ON calls (caller, started_ms);"
    "CREATE INDEX calls_decision ON calls (decision, started_ms);"
    "INSERT INTO calls VALUES ('ref-v1', '+1 (555) 000-0042', '15550000042',"
    " '18005550000', 1700000000000, 1700000001000, 'ended', 2, 'allow',"
    " 'score:120<600', 120, 'low', 'allow', 'MOBILE', 'SRV1', '', 350, '1',"
    " 'Sales', '442000000001', 'answered', 'completed', 61, 1700000062000);"
    "INSERT INTO calls (ref, caller, started_ms, step) VALUES"
    " ('ref-v1-new', '15550000043', 1700000005000, 'menu');";

static void test_migration_from_v1(void **state)
{
  struct fixture *f = *state;
  struct store_query q = {0};
  struct entries_result er = {0};
  struct state_result sr;
  struct list_result r = {0};
  struct list_entry e;
  char dir[340];
  char err[512] = "";
  struct store *st;
  struct call want;
  struct call got;
  sqlite3 *db;
  sqlite3_stmt *s;

  snprintf(dir, sizeof(dir), "%s/var", f->dir);
  assert_int_equal(mkdir(dir, 0750), 0);
  assert_int_equal(sqlite3_open_v2(f->path, &db,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                   NULL),
                   SQLITE_OK);
  raw_exec(db, "PRAGMA journal_mode=WAL");
  raw_exec(db, v1_schema);
  /* A gap in the rowids, which migration 5 must keep as ids. */
  raw_exec(db, "UPDATE calls SET rowid = rowid + 100 WHERE ref = 'ref-v1'");
  sqlite3_close(db);

  /* The read-only tool never migrates: it refuses the old version. */
  assert_int_equal(list(f->path, NULL, &r, err, sizeof(err)), VS_ERR_PROTO);
  assert_non_null(strstr(err, "schema version 1"));

  st = open_store(f, 0, 0);
  call_init(&want, "ref-v1");
  CALL_SET(want.caller_raw, "+1 (555) 000-0042");
  CALL_SET(want.caller, "15550000042");
  CALL_SET(want.to, "18005550000");
  want.started_ms = 1700000000000LL;
  want.updated_ms = 1700000001000LL;
  want.step = CALL_STEP_ENDED;
  want.attempts = 2;
  want.decision = CALL_DECISION_ALLOW;
  CALL_SET(want.reason, "score:120<600");
  want.score = 120;
  CALL_SET(want.risk_level, "low");
  CALL_SET(want.recommendation, "allow");
  CALL_SET(want.phone_type, "MOBILE");
  CALL_SET(want.score_ref, "SRV1");
  want.score_ms = 350;
  CALL_SET(want.digits, "1");
  CALL_SET(want.department, "Sales");
  CALL_SET(want.dialled, "442000000001");
  CALL_SET(want.dial_status, "answered");
  CALL_SET(want.status, "completed");
  want.duration_s = 61;
  want.ended_ms = 1700000062000LL;
  /* The fields of version 2 keep call_init()'s values: never screened. */
  assert_int_equal(load_sync(f, st, "ref-v1", &got), VS_OK);
  assert_call_equal(&got, &want);
  assert_int_equal(load_sync(f, st, "ref-v1-new", &got), VS_OK);
  assert_int_equal(got.step, CALL_STEP_MENU);
  assert_true(got.score == -1 && got.velocity_count == 0);

  /* Rewritten with the new fields, the old row takes them all. */
  want.shadow = 1;
  want.velocity_count = 3;
  CALL_SET(want.trace, "score:120<600");
  CALL_SET(want.challenge_result, "failed");
  assert_int_equal(store_call_save(st, &want), VS_OK);
  assert_int_equal(load_sync(f, st, "ref-v1", &got), VS_OK);
  assert_call_equal(&got, &want);

  /* The new tables are there and work. */
  make_entry(&e, LIST_BLOCK, "1555*", 0);
  assert_int_equal(store_list_save(st, &e), VS_OK);
  assert_int_equal(state_sync(f, st, 1, 0, 1700000000000LL, &sr), VS_OK);
  assert_int_equal(sr.nlists, 1);
  assert_int_equal(sr.nrecent, 2);
  assert_string_equal(sr.recent[0].caller, "15550000042");
  store_close(st);

  assert_int_equal(list(f->path, NULL, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 2);
  assert_int_equal(read_entries(f->path, -1, &er, err, sizeof(err)), VS_OK);
  assert_int_equal(er.count, 1);

  db = raw_open(f->path);
  assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version",
                                      -1, &s, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(s), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(s, 0), SCHEMA);
  sqlite3_finalize(s);
  /* Migration 4 indexed the rows already there by caller, in
   * calls_by_caller instead of the index calls_caller. */
  assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE "
                               "name = 'calls_caller'"),
                   0);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_caller WHERE "
                               "number = '15550000042'"),
                   1);
  /* Migration 5 kept the rowids as ids, which calls_by_caller names, and
   * indexed the calls by reference, with no unique index left on calls;
   * migration 6 added the recent level, empty. */
  assert_int_equal(raw_int(db, "SELECT id FROM calls WHERE ref = 'ref-v1'"),
                   raw_int(db, "SELECT call FROM calls_by_caller WHERE "
                               "number = '15550000042'"));
  assert_true(raw_int(db, "SELECT id FROM calls WHERE ref = 'ref-v1'") > 100);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_ref b "
                               "CROSS JOIN calls c ON c.id = b.call AND "
                               "c.ref = b.ref"),
                   2);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls_by_ref_recent"), 0);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE "
                               "tbl_name = 'calls' AND name LIKE "
                               "'sqlite_autoindex%'"),
                   0);
  /* Migration 7 left the allowed calls out of calls_decision: the old
   * row is allowed, the new one has no decision yet. */
  assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE "
                               "name = 'calls_decision' AND sql LIKE "
                               "'%WHERE decision <> ''allow'''"),
                   1);
  assert_int_equal(raw_int(db, "SELECT count(*) FROM calls INDEXED BY "
                               "calls_decision WHERE decision <> 'allow'"),
                   1);
  sqlite3_close(db);
  q.caller = "15550000042";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 1);
  q.caller = NULL;
  q.decision = "allow";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.refs[0], "ref-v1");
}

/*
 * Queued list writes: upsert, replace, delete (also of an absent entry),
 * and a state load that returns the unexpired entries in order and deletes
 * the expired ones.
 */
static void test_lists_save_delete_state(void **state)
{
  const int64_t now = 2000000000000LL;
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct entries_result er = {0};
  struct store_stats stats;
  struct state_result r;
  struct list_entry keep[3];
  struct list_entry e;
  char err[256] = "";

  make_entry(&keep[0], LIST_ALLOW, "1555*", 0);
  make_entry(&keep[1], LIST_ALLOW, "15551234567", now + 1);
  make_entry(&keep[2], LIST_BLOCK, "1888", 0);
  /* Saved out of order; the load returns them by kind, then entry. */
  assert_int_equal(store_list_save(st, &keep[2]), VS_OK);
  assert_int_equal(store_list_save(st, &keep[1]), VS_OK);
  assert_int_equal(store_list_save(st, &keep[0]), VS_OK);
  make_entry(&e, LIST_BLOCK, "1666*", now); /* expires exactly now */
  assert_int_equal(store_list_save(st, &e), VS_OK);
  make_entry(&e, LIST_BLOCK, "1777", now - 1);
  assert_int_equal(store_list_save(st, &e), VS_OK);
  make_entry(&e, LIST_ALLOW, "1999", 0);
  assert_int_equal(store_list_save(st, &e), VS_OK);
  assert_int_equal(store_list_delete(st, LIST_ALLOW, "1999"), VS_OK);
  assert_int_equal(store_list_delete(st, LIST_ALLOW, "1234"), VS_OK);
  /* The same entry in the other list is another key. */
  make_entry(&e, LIST_BLOCK, "1555*", 0);
  assert_int_equal(store_list_save(st, &e), VS_OK);
  assert_int_equal(store_list_delete(st, LIST_BLOCK, "1555*"), VS_OK);
  /* A second save of a key replaces every field. */
  make_entry(&e, LIST_BLOCK, "1888", now + 5);
  CALL_SET(e.note, "first version");
  assert_int_equal(store_list_save(st, &e), VS_OK);
  CALL_SET(keep[2].note, "replaced");
  CALL_SET(keep[2].source, "import");
  assert_int_equal(store_list_save(st, &keep[2]), VS_OK);
  wait_idle(f, st);
  assert_true(store_healthy(st));
  store_stats_get(st, &stats);
  assert_int_equal(stats.failed, 0);
  assert_int_equal(raw_count(f->path, "lists"), 5);

  assert_int_equal(state_sync(f, st, now, now, now, &r), VS_OK);
  assert_int_equal(r.nlists, 3);
  for (int i = 0; i < 3; i++)
    assert_entry_equal(&r.lists[i], &keep[i]);
  assert_int_equal(r.nnumbers, 0);
  assert_int_equal(r.nrecent, 0);
  /* The expired entries are gone from the database, not just hidden. */
  assert_int_equal(raw_count(f->path, "lists"), 3);
  store_stats_get(st, &stats);
  assert_int_equal(stats.loaded, 1);

  /* Later, one more has expired. */
  assert_int_equal(state_sync(f, st, now + 1, now, now, &r), VS_OK);
  assert_int_equal(r.nlists, 2);
  assert_string_equal(r.lists[0].entry, "1555*");
  assert_string_equal(r.lists[1].entry, "1888");
  store_close(st);

  assert_int_equal(read_entries(f->path, -1, &er, err, sizeof(err)), VS_OK);
  assert_int_equal(er.count, 2);
}

/* Which number records a state load keeps, returns and deletes. */
static void test_numbers_keep_and_prune(void **state)
{
  const int64_t now = 2000000000000LL;
  const int64_t since = now - 86400000LL;
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct number_record keep[4];
  struct number_record r;
  struct state_result sr;

  /* Kept: a pass, failures, a fresh score (at the edge), and all three. */
  make_number(&keep[0], "1001");
  keep[0].pass_expires_ms = now + 1;
  keep[0].score = -1;
  CALL_SET(keep[0].risk_level, "");
  make_number(&keep[1], "1003");
  keep[1].pass_expires_ms = now - 1000;
  keep[1].challenge_failures = 2;
  keep[1].last_failure_ms = now - 5000;
  make_number(&keep[2], "1004");
  keep[2].score_fetched_ms = since;
  keep[2].score = 0;
  make_number(&keep[3], "1009");
  keep[3].pass_expires_ms = INT64_MAX;
  keep[3].challenge_failures = UINT32_MAX;
  keep[3].last_failure_ms = now;
  keep[3].score_fetched_ms = now;
  keep[3].score = 1000;
  for (int i = 3; i >= 0; i--)
    assert_int_equal(store_number_save(st, &keep[i]), VS_OK);

  /* Pruned: a pass that expires now, a stale score, nothing at all. */
  make_number(&r, "1002");
  r.pass_expires_ms = now;
  assert_int_equal(store_number_save(st, &r), VS_OK);
  make_number(&r, "1005");
  r.score_fetched_ms = since - 1;
  assert_int_equal(store_number_save(st, &r), VS_OK);
  number_record_init(&r, "1006");
  assert_int_equal(store_number_save(st, &r), VS_OK);

  /* An upsert replaces the whole record: 1007 loses its failures. */
  make_number(&r, "1007");
  r.challenge_failures = 1;
  assert_int_equal(store_number_save(st, &r), VS_OK);
  make_number(&r, "1007");
  assert_int_equal(store_number_save(st, &r), VS_OK);
  wait_idle(f, st);
  assert_int_equal(raw_count(f->path, "numbers"), 8);

  assert_int_equal(state_sync(f, st, now, since, now, &sr), VS_OK);
  assert_int_equal(sr.nnumbers, 4);
  for (int i = 0; i < 4; i++)
    assert_number_equal(&sr.numbers[i], &keep[i]);
  assert_int_equal(raw_count(f->path, "numbers"), 4);

  /* A record without a score is never kept for its score, whatever the
   * TTL: "no score" is not "fetched at the epoch". */
  number_record_init(&r, "1010");
  assert_int_equal(store_number_save(st, &r), VS_OK);
  assert_int_equal(state_sync(f, st, now, INT64_MIN, now, &sr), VS_OK);
  assert_int_equal(sr.nnumbers, 4);
  assert_int_equal(raw_count(f->path, "numbers"), 4);

  /* Later still: the pass of 1001 and the score of 1004 have run out. */
  assert_int_equal(state_sync(f, st, now + 1, now, now, &sr), VS_OK);
  assert_int_equal(sr.nnumbers, 2);
  assert_string_equal(sr.numbers[0].number, "1003");
  assert_string_equal(sr.numbers[1].number, "1009");
  store_close(st);
  assert_int_equal(raw_count(f->path, "numbers"), 2);
}

/* Recent calls: oldest first, ties in the order written, since filter. */
static void test_state_recent_calls(void **state)
{
  const int64_t base = 1700000000000LL;
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct state_result r;
  struct call c;

  /* 20 calls one second apart, written in a shuffled order. */
  for (int k = 0; k < 20; k++) {
    int i = (k * 7) % 20;

    make_call(&c, i);
    snprintf(c.caller, sizeof(c.caller), "1555000%04d", i);
    c.started_ms = base + (int64_t)i * 1000;
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  /* Two more in the same millisecond as call 15, and one unscorable. */
  make_call(&c, 100);
  CALL_SET(c.caller, "19990000001");
  c.started_ms = base + 15000;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  make_call(&c, 101);
  CALL_SET(c.caller, "19990000002");
  c.started_ms = base + 15000;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  make_call(&c, 102);
  CALL_SET(c.caller, "");
  c.started_ms = base + 16000;
  assert_int_equal(store_call_save(st, &c), VS_OK);

  assert_int_equal(state_sync(f, st, base, base, base + 14000, &r), VS_OK);
  assert_int_equal(r.nrecent, 8); /* 14..19 and the two at 15 */
  for (size_t i = 1; i < r.nrecent; i++)
    assert_true(r.recent[i - 1].started_ms <= r.recent[i].started_ms);
  assert_string_equal(r.recent[0].caller, "15550000014");
  assert_true(r.recent[0].started_ms == base + 14000);
  assert_string_equal(r.recent[1].caller, "15550000015");
  assert_string_equal(r.recent[2].caller, "19990000001");
  assert_string_equal(r.recent[3].caller, "19990000002");
  assert_string_equal(r.recent[7].caller, "15550000019");
  assert_true(r.recent[7].started_ms == base + 19000);

  assert_int_equal(state_sync(f, st, base, base, 0, &r), VS_OK);
  assert_int_equal(r.nrecent, 22);
  assert_int_equal(state_sync(f, st, base, base, base + 20000, &r), VS_OK);
  assert_int_equal(r.nrecent, 0);
  store_close(st);
}

/*
 * Ordering across kinds: a state load queued behind writes sees them, in
 * the same batch; when that batch fails to commit, the load fails with it
 * and its prunes are undone.
 */
static void test_state_load_in_batch(void **state)
{
  const int64_t now = 2000000000000LL;
  struct fixture *f = *state;
  struct entries_result er = {0};
  struct store_stats stats;
  struct state_result r = {0};
  struct number_record n;
  struct list_entry e;
  struct gate g;
  struct store *st = open_gated(f, &g, &gate_ops, 0, 0);
  char err[256] = "";
  struct call c;

  make_entry(&e, LIST_BLOCK, "1444", now); /* expired at `now` */
  assert_int_equal(store_list_save(st, &e), VS_OK);
  gate_wait_begins(f->loop, &g, 1); /* batch 1 = [1444], held in begin() */

  make_entry(&e, LIST_ALLOW, "1555", 0);
  assert_int_equal(store_list_save(st, &e), VS_OK);
  make_number(&n, "1555");
  n.challenge_failures = 1;
  assert_int_equal(store_number_save(st, &n), VS_OK);
  make_call(&c, 1);
  c.started_ms = now;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  assert_int_equal(store_state_load(st, now, now, now, on_state, &r), VS_OK);
  gate_release(&g);
  run_until(f, &r.done);
  assert_int_equal(r.rc, VS_OK);
  assert_int_equal(r.nlists, 1);
  assert_string_equal(r.lists[0].entry, "1555");
  assert_int_equal(r.nnumbers, 1);
  assert_int_equal(r.nrecent, 1);
  wait_idle(f, st);
  store_stats_get(st, &stats);
  assert_int_equal(stats.batches, 2);
  assert_int_equal(stats.max_batch, 4);
  assert_int_equal(stats.saved, 4);
  assert_int_equal(stats.loaded, 1);

  /*
   * Batch 4 = [1333, load] fails to commit: the load gets the error and no
   * state. Batch 3 holds the worker while batch 4 is queued.
   */
  pthread_mutex_lock(&g.lock);
  g.closed = 1;
  g.fail_commit = 4;
  pthread_mutex_unlock(&g.lock);
  make_number(&n, "1666");
  n.challenge_failures = 1;
  assert_int_equal(store_number_save(st, &n), VS_OK);
  gate_wait_begins(f->loop, &g, 3);
  make_entry(&e, LIST_BLOCK, "1333", now);
  assert_int_equal(store_list_save(st, &e), VS_OK);
  memset(&r, 0, sizeof(r));
  assert_int_equal(store_state_load(st, now + 1, now, now, on_state, &r),
                   VS_OK);
  gate_release(&g);
  run_until(f, &r.done);
  assert_int_equal(r.rc, VS_ERR_IO);
  assert_true(r.null_state);
  wait_idle(f, st);
  assert_false(store_healthy(st));
  store_stats_get(st, &stats);
  assert_int_equal(stats.lost, 1);
  assert_int_equal(read_entries(f->path, -1, &er, err, sizeof(err)), VS_OK);
  assert_int_equal(er.count, 1); /* 1333 lost, and 1555 not pruned */

  /* The next one commits, prunes and is healthy again. */
  assert_int_equal(state_sync(f, st, now, now, now, &r), VS_OK);
  assert_int_equal(r.nlists, 1);
  assert_int_equal(r.nnumbers, 2);
  assert_true(store_healthy(st));
  store_close(st);
  gate_destroy(&g);
}

/* The list tools: put many, replace, read in order, delete, NOTFOUND. */
static void test_list_tools(void **state)
{
  struct fixture *f = *state;
  struct entries_result r = {0};
  struct list_entry *many = calloc(1000, sizeof(*many));
  struct list_entry e;
  char entry[LIST_ENTRY_SIZE];
  char err[512] = "";
  struct stat sb;

  assert_non_null(many);
  /* Reading creates the database (and its directory): an empty list. */
  assert_int_equal(read_entries(f->path, -1, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 0);
  assert_int_equal(stat(f->path, &sb), 0);
  assert_int_equal(sb.st_mode & 0137, 0);

  /* 1000 entries in one call, in an order unlike the one read back. */
  for (int i = 0; i < 1000; i++) {
    snprintf(entry, sizeof(entry), "1555%07d", (i * 7919) % 1000);
    make_entry(&many[i], i % 2 ? LIST_BLOCK : LIST_ALLOW, entry,
               i % 3 ? 0 : 1);
  }
  assert_int_equal(store_lists_put(f->path, many, 1000, err, sizeof(err)),
                   VS_OK);
  assert_int_equal(read_entries(f->path, -1, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 1000); /* expired ones included */
  assert_true(r.ordered);
  assert_int_equal(r.first[0].kind, LIST_ALLOW);
  assert_string_equal(r.first[0].entry, "15550000000");
  assert_true(r.prev.kind == LIST_BLOCK);
  assert_int_equal(read_entries(f->path, LIST_BLOCK, &r, err, sizeof(err)),
                   VS_OK);
  assert_int_equal(r.count, 500);
  assert_true(r.ordered);
  assert_int_equal(r.first[0].kind, LIST_BLOCK);
  assert_int_equal(r.prev.kind, LIST_BLOCK);

  /* Putting a key again replaces it. */
  e = many[1];
  CALL_SET(e.note, "moved");
  e.expires_ms = 1800000000000LL;
  assert_int_equal(store_lists_put(f->path, &e, 1, err, sizeof(err)), VS_OK);
  assert_int_equal(read_entries(f->path, LIST_BLOCK, &r, err, sizeof(err)),
                   VS_OK);
  assert_int_equal(r.count, 500);
  for (size_t i = 0; i < STATE_MAX; i++)
    if (strcmp(r.first[i].entry, e.entry) == 0)
      assert_entry_equal(&r.first[i], &e);

  /* One bad entry refuses the whole put, before anything is written. */
  make_entry(&many[999], LIST_ALLOW, "", 0);
  snprintf(many[0].entry, sizeof(many[0].entry), "19998887777");
  assert_int_equal(store_lists_put(f->path, many, 1000, err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_non_null(strstr(err, "1000"));
  many[999].kind = (enum list_kind)7;
  CALL_SET(many[999].entry, "1");
  assert_int_equal(store_lists_put(f->path, many, 1000, err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_int_equal(read_entries(f->path, -1, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 1000);

  /* Delete, then delete again. */
  assert_int_equal(
      store_lists_delete(f->path, e.kind, e.entry, err, sizeof(err)), VS_OK);
  assert_int_equal(
      store_lists_delete(f->path, e.kind, e.entry, err, sizeof(err)),
      VS_ERR_NOTFOUND);
  assert_non_null(strstr(err, e.entry));
  assert_non_null(strstr(err, "block"));
  assert_int_equal(
      store_lists_delete(f->path, LIST_ALLOW, e.entry, err, sizeof(err)),
      VS_ERR_NOTFOUND);
  assert_int_equal(read_entries(f->path, -1, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 999);

  /* A callback that returns non-zero stops the read, without error. */
  r.stop_after = 3;
  assert_int_equal(read_entries(f->path, -1, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 3);
  r.stop_after = 0;

  assert_int_equal(store_lists_put(f->path, NULL, 0, err, sizeof(err)), VS_OK);
  assert_int_equal(store_lists_put(f->path, NULL, 1, err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_int_equal(store_lists_put("", &e, 1, err, sizeof(err)), VS_ERR_INVAL);
  assert_int_equal(read_entries(f->path, 2, &r, err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_int_equal(store_lists_read(f->path, -1, NULL, NULL, err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_int_equal(
      store_lists_delete(f->path, LIST_ALLOW, "", err, sizeof(err)),
      VS_ERR_INVAL);
  assert_int_equal(store_lists_delete(f->path, LIST_ALLOW,
                                      "1234567890123456789", err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_int_equal(
      store_lists_delete(f->path, (enum list_kind)5, "1", err, sizeof(err)),
      VS_ERR_INVAL);
  free(many);
}

/*
 * The tools beside a running server: what the CLI puts the server's next
 * state load sees, and what the server writes the CLI reads.
 */
static void test_list_tools_beside_server(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct entries_result er = {0};
  struct list_entry e[2];
  struct state_result r;
  char err[512] = "";

  make_entry(&e[0], LIST_BLOCK, "1666*", 0);
  make_entry(&e[1], LIST_ALLOW, "16665550000", 0);
  assert_int_equal(store_lists_put(f->path, e, 2, err, sizeof(err)), VS_OK);
  assert_int_equal(state_sync(f, st, 1, 1, 1, &r), VS_OK);
  assert_int_equal(r.nlists, 2);
  assert_entry_equal(&r.lists[0], &e[1]);
  assert_entry_equal(&r.lists[1], &e[0]);

  assert_int_equal(store_list_delete(st, LIST_BLOCK, "1666*"), VS_OK);
  wait_idle(f, st);
  assert_int_equal(read_entries(f->path, -1, &er, err, sizeof(err)), VS_OK);
  assert_int_equal(er.count, 1);
  assert_int_equal(
      store_lists_delete(f->path, LIST_ALLOW, "16665550000", err, sizeof(err)),
      VS_OK);
  assert_int_equal(state_sync(f, st, 1, 1, 1, &r), VS_OK);
  assert_int_equal(r.nlists, 0);
  store_close(st);
}

/* store_calls_list(): oldest first (with each filter) and "challenge". */
static void test_list_oldest_first_and_challenge(void **state)
{
  struct fixture *f = *state;
  struct store *st = open_store(f, 0, 0);
  struct store_query q = {.oldest_first = 1};
  struct list_result r = {0};
  char err[256] = "";
  struct call c;

  /* 12 calls one second apart, shuffled; decisions cycle through all 4. */
  for (int k = 0; k < 12; k++) {
    int i = (k * 5) % 12;

    make_call(&c, i);
    CALL_SET(c.caller, i % 2 ? "15550000001" : "15550000002");
    c.decision = (enum call_decision)(i % 4);
    assert_int_equal(store_call_save(st, &c), VS_OK);
  }
  /* Two in the same millisecond as call 5: ties follow the order too. */
  make_call(&c, 50);
  c.started_ms = 1700000000000LL + 5000;
  assert_int_equal(store_call_save(st, &c), VS_OK);
  wait_idle(f, st);

  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 13);
  assert_string_equal(r.refs[0], "ref-000000");
  assert_string_equal(r.refs[5], "ref-000005");
  assert_string_equal(r.refs[6], "ref-000050");
  assert_string_equal(r.refs[12], "ref-000011");
  for (int i = 1; i < r.count; i++)
    assert_true(strcmp(r.refs[i - 1], r.refs[i]) != 0);
  q.oldest_first = 0;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_string_equal(r.refs[6], "ref-000050");
  assert_string_equal(r.refs[7], "ref-000005");

  /* With a limit, the oldest matching calls. */
  q.oldest_first = 1;
  q.limit = 3;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 3);
  assert_string_equal(r.refs[2], "ref-000002");

  q.limit = 0;
  q.decision = "challenge";
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 3); /* 3, 7, 11 */
  assert_string_equal(r.refs[0], "ref-000003");
  assert_string_equal(r.refs[2], "ref-000011");
  q.oldest_first = 0;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 3);
  assert_string_equal(r.refs[0], "ref-000011");

  /* Every filter at once, oldest first: odd, challenge, from 5 s: 7, 11. */
  q.oldest_first = 1;
  q.caller = "15550000001";
  q.since_ms = 1700000000000LL + 5000;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 2);
  assert_string_equal(r.refs[0], "ref-000007");
  assert_string_equal(r.refs[1], "ref-000011");
  q.limit = 1;
  assert_int_equal(list(f->path, &q, &r, err, sizeof(err)), VS_OK);
  assert_int_equal(r.count, 1);
  assert_string_equal(r.refs[0], "ref-000007");

  /* Each remaining combination, oldest first, against newest first. */
  for (unsigned m = 0; m < 8; m++) {
    struct list_result older = {0};
    struct store_query o = {0};

    o.since_ms = m & 1 ? 1700000000000LL + 4000 : 0;
    o.caller = m & 2 ? "15550000002" : NULL;
    o.decision = m & 4 ? "block" : NULL;
    assert_int_equal(list(f->path, &o, &r, err, sizeof(err)), VS_OK);
    o.oldest_first = 1;
    assert_int_equal(list(f->path, &o, &older, err, sizeof(err)), VS_OK);
    assert_int_equal(older.count, r.count);
    assert_true(r.count > 0);
    for (int i = 0; i < r.count; i++)
      assert_string_equal(older.refs[i], r.refs[r.count - 1 - i]);
  }
  store_close(st);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_save_then_find, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cache_packs_every_field, setup,
                                      teardown),
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
      cmocka_unit_test_setup_teardown(test_calls_by_caller, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls_by_ref, setup, teardown),
      cmocka_unit_test_setup_teardown(test_purge_takes_index_entries, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_list_missing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_schema_versions, setup, teardown),
      cmocka_unit_test_setup_teardown(test_close_completes_pending_loads,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
      cmocka_unit_test_setup_teardown(test_new_call_fields_roundtrip, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_migration_from_v1, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lists_save_delete_state, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_numbers_keep_and_prune, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_state_recent_calls, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_state_load_in_batch, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_list_tools, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list_tools_beside_server, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_list_oldest_first_and_challenge,
                                      setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
