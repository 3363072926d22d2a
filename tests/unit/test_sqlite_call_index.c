/*
 * Tests of the SQLite store's bulk-kept indexes of calls
 * (src/store/sqlite_call_index.c) on the real schema, migrated by the
 * backend into a database file in a fresh temporary directory, then
 * written by this test's own connection the way store_sqlite.c writes it.
 *
 * The table in memory of pending calls is made tiny here, so that the
 * calls past it (found by reading them) are reached with a handful of
 * calls, and so is the filter of indexed references, loaded two
 * references a step, so that its load and growth take a few dozen calls.
 * Passes are driven with a made-up monotonic clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../src/store/sqlite_call_index.h"
#include "../../src/store/store_sqlite.h"
#include "../../src/util/bloom.h"
#include "../../src/util/err.h"

/* A step's ceiling and the owed entries that make a step urgent, small
 * enough for the tests' batches to reach under valgrind. */
enum { STEP_MAX = 2 * CALL_INDEX_CHUNK, OWED_MAX = 4 * STEP_MAX };

static const struct sqlite_call_index_limits limits = {
    .pending_max = 3, /* calls the table in memory holds */
    .filter_load = 2, /* references a step loads into the filter */
    .filter_min_log2 = BLOOM_MIN_LOG2,
    .merge_min = 1u << 30, /* no recent level but in test_merge */
    .recent_from = 1u << 30,
    .step_max = STEP_MAX,
    .owed_max = OWED_MAX,
};

struct fixture {
  char dir[256];
  char path[320];
  sqlite3 *db;
  struct sqlite_call_index *ci;
  int64_t now_ms;  /* the pass's clock */
  int index_reads; /* look-ups that read calls_by_ref (count_reads) */
};

static void exec(sqlite3 *db, const char *sql)
{
  char *msg = NULL;

  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
    fail_msg("%s: %s", sql, msg ? msg : "?");
}

static int64_t one_int(sqlite3 *db, const char *sql)
{
  sqlite3_stmt *s;
  int64_t v = -1;

  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
  if (sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  const char *tmp = getenv("TMPDIR");
  char err[256];
  void *h;

  if (!f)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "%s/vs-index-XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(f->dir))
    return -1;
  snprintf(f->path, sizeof(f->path), "%s/calls.db", f->dir);
  if (store_sqlite_ops.open(f->path, &h, err, sizeof(err)) != VS_OK)
    return -1;
  store_sqlite_ops.close(h);
  if (sqlite3_open(f->path, &f->db) != SQLITE_OK ||
      sqlite_call_index_create(f->db, &limits, &f->ci) != VS_OK)
    return -1;
  f->now_ms = 1000000;
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  char p[400];

  sqlite_call_index_destroy(f->ci);
  sqlite3_close(f->db);
  unlink(f->path);
  snprintf(p, sizeof(p), "%s-wal", f->path);
  unlink(p);
  snprintf(p, sizeof(p), "%s-shm", f->path);
  unlink(p);
  rmdir(f->dir);
  free(f);
  return 0;
}

/* The id of call `ref`, 0 when there is none, as the worker finds it. */
static int64_t find(struct fixture *f, const char *ref)
{
  char err[256] = "";
  int64_t id = -1;

  assert_int_equal(sqlite_call_index_find(f->ci, ref, &id, err, sizeof(err)),
                   VS_OK);
  return id;
}

/* Inserts call `ref` of `caller` as the worker does; returns its id. */
static int64_t add(struct fixture *f, const char *ref, const char *caller)
{
  char sql[256];
  int64_t id;

  assert_int_equal(find(f, ref), 0);
  snprintf(sql, sizeof(sql),
           "INSERT INTO calls (ref, caller, started_ms) VALUES "
           "('%s', '%s', 1)",
           ref, caller);
  exec(f->db, sql);
  id = sqlite3_last_insert_rowid(f->db);
  sqlite_call_index_added(f->ci, ref, id);
  return id;
}

/* One step of the keeper; returns what it says is due. */
static int step(struct fixture *f)
{
  char err[256] = "";
  int due = -1;

  assert_int_equal(
      sqlite_call_index_step(f->ci, f->now_ms, &due, err, sizeof(err)), VS_OK);
  assert_true(due >= 0 && due <= 2);
  return due;
}

/* Steps passes, a second apart, until nothing is pending. */
static void index_all(struct fixture *f)
{
  for (int i = 0; i < 100 && one_int(f->db, "SELECT count(*) FROM calls "
                                            "WHERE id > (SELECT through "
                                            "FROM call_index)") > 0;
       i++) {
    f->now_ms += 1000;
    step(f);
  }
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM calls WHERE id > "
                                  "(SELECT through FROM call_index)"),
                   0);
}

/* Steps the keeper `n` times, a second apart. */
static void step_n(struct fixture *f, int n)
{
  for (int i = 0; i < n; i++) {
    f->now_ms += 1000;
    step(f);
  }
}

/* Adds calls `prefix`0 to `prefix`n-1 and indexes them. */
static void add_indexed(struct fixture *f, const char *prefix, int n)
{
  char ref[16];

  for (int i = 0; i < n; i++) {
    snprintf(ref, sizeof(ref), "%s%d", prefix, i);
    add(f, ref, "15550000001");
  }
  index_all(f);
}

/* Of calls `prefix`0 to `prefix`n-1, how many are found. */
static int found(struct fixture *f, const char *prefix, int n)
{
  char ref[16];
  int got = 0;

  for (int i = 0; i < n; i++) {
    snprintf(ref, sizeof(ref), "%s%d", prefix, i);
    got += find(f, ref) > 0;
  }
  return got;
}

/* SQLite's trace of statements that start: counts look-ups in the index. */
static int count_reads(unsigned type, void *ctx, void *stmt, void *sql)
{
  struct fixture *f = ctx;

  (void)type;
  (void)sql;
  if (strstr(sqlite3_sql(stmt), "FROM calls_by_ref b "))
    f->index_reads++;
  return 0;
}

/* How many of `n` look-ups of references never used read calls_by_ref. */
static int reads_for_new(struct fixture *f, int n)
{
  int before = f->index_reads;

  assert_int_equal(found(f, "new", n), 0);
  return f->index_reads - before;
}

/*
 * Calls past the table in memory are found by reading them; once a pass
 * has indexed the calls, they are found in calls_by_ref, and the table
 * takes new calls again.
 */
static void test_pending_past_the_table(void **state)
{
  struct fixture *f = *state;
  int64_t ids[6];
  char ref[16];

  for (int i = 0; i < 6; i++) {
    snprintf(ref, sizeof(ref), "r%d", i);
    ids[i] = add(f, ref, "15550000001");
  }
  for (int i = 0; i < 6; i++) {
    snprintf(ref, sizeof(ref), "r%d", i);
    assert_int_equal(find(f, ref), ids[i]);
  }
  assert_int_equal(find(f, "r6"), 0);

  index_all(f);
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM calls_by_ref"), 6);
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM calls_by_caller"), 6);
  ids[0] = add(f, "r6", "15550000002");
  assert_int_equal(find(f, "r6"), ids[0]);
  assert_int_equal(find(f, "r3"), ids[3]);
}

/*
 * What a rollback undid or a delete took is not found, even though the
 * table in memory had it: a new call that took its id is found under its
 * own reference only.
 */
static void test_rollback_and_delete(void **state)
{
  struct fixture *f = *state;
  char err[256] = "";
  int64_t id;

  exec(f->db, "BEGIN");
  id = add(f, "gone", "15550000001");
  exec(f->db, "ROLLBACK");
  sqlite_call_index_rolled_back(f->ci);
  assert_int_equal(find(f, "gone"), 0);
  assert_int_equal(add(f, "kept", "15550000001"), id);
  assert_int_equal(find(f, "gone"), 0);
  assert_int_equal(find(f, "kept"), id);

  index_all(f);
  exec(f->db, "DELETE FROM calls_by_ref WHERE ref = 'kept'");
  exec(f->db, "DELETE FROM calls_by_caller");
  exec(f->db, "DELETE FROM calls WHERE ref = 'kept'");
  assert_int_equal(sqlite_call_index_deleted(f->ci, err, sizeof(err)), VS_OK);
  assert_int_equal(one_int(f->db, "SELECT through FROM call_index"), 0);
  assert_int_equal(find(f, "kept"), 0);
  assert_int_equal(add(f, "again", "15550000001"), id);
  assert_int_equal(find(f, "again"), id);
  assert_int_equal(find(f, "kept"), 0);
}

/* Entries in both indexes. */
static int64_t both_entries(struct fixture *f)
{
  return one_int(f->db, "SELECT (SELECT count(*) FROM calls_by_caller) + "
                        "(SELECT count(*) FROM calls_by_ref)");
}

/*
 * Four entries are owed for each call added since the previous step, so
 * that the passes keep up with large batches. While no more than OWED_MAX
 * is owed a step moves CALL_INDEX_CHUNK entries, so that a batch arriving
 * meanwhile waits for a short step; past it a step moves what is owed, at
 * most its ceiling (STEP_MAX here). After a batch of STEP_MAX calls and a
 * second of half as many, the steps move all the entries of the first
 * batch's calls and none of the second's.
 */
static void test_steps_short_unless_far_behind(void **state)
{
  enum { N = STEP_MAX };
  struct fixture *f = *state;
  char ref[16];
  int64_t last = 0;
  int steps = 0;

  exec(f->db, "BEGIN");
  for (int i = 0; i < N; i++) {
    snprintf(ref, sizeof(ref), "b%d", i);
    last = add(f, ref, i % 2 ? "15550000001" : "15550000002");
  }
  exec(f->db, "COMMIT");
  f->now_ms += 1000;
  assert_int_equal(step(f), 1); /* read them all; 4 N owed, a chunk paid */
  assert_int_equal(both_entries(f), 0);
  assert_int_equal(step(f), 1); /* not far behind: one chunk */
  assert_int_equal(both_entries(f), CALL_INDEX_CHUNK);
  exec(f->db, "BEGIN");
  for (int i = N; i < N + N / 2; i++) {
    snprintf(ref, sizeof(ref), "b%d", i);
    add(f, ref, "15550000003");
  }
  exec(f->db, "COMMIT");
  /* 4 N - 2 chunks + 2 N owed: past OWED_MAX, so the ceiling, which
   * brings it back to OWED_MAX. */
  assert_int_equal(step(f), 1);
  assert_int_equal(both_entries(f), CALL_INDEX_CHUNK + STEP_MAX);
  assert_int_equal(one_int(f->db, "SELECT through FROM call_index"), 0);
  while (step(f) && steps < 10)
    steps++;
  assert_int_equal(steps, 0); /* the pass's last chunk */
  assert_int_equal(both_entries(f), 2 * N);
  assert_int_equal(one_int(f->db, "SELECT through FROM call_index"), last);
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM calls_by_ref"), N);
  snprintf(ref, sizeof(ref), "b%d", N - 1);
  assert_int_equal(find(f, ref), last);
  snprintf(ref, sizeof(ref), "b%d", N + N / 2 - 1);
  assert_int_equal(find(f, ref), last + N / 2);
}

/*
 * Past so many owed entries (OWED_MAX here) a step says the next one is due
 * before anything else, and stepping while it says so brings what is owed
 * back under that.
 */
static void test_far_behind_is_urgent(void **state)
{
  enum { CALLS = OWED_MAX / 4 + STEP_MAX };
  struct fixture *f = *state;
  char ref[16];
  int steps = 0;
  int due;

  exec(f->db, "BEGIN");
  for (int i = 0; i < CALLS; i++) {
    snprintf(ref, sizeof(ref), "u%d", i);
    add(f, ref, "15550000001");
  }
  exec(f->db, "COMMIT");
  f->now_ms += 1000;
  assert_int_equal(step(f), 2);
  while ((due = step(f)) == 2 && steps < 100)
    steps++;
  assert_int_equal(due, 1);
  assert_in_range(steps, 1, 99);
  index_all(f);
  assert_int_equal(both_entries(f), 2 * CALLS);
}

/*
 * `vs forget` with no server to ask deletes from a connection of its own.
 * When the newest call a pass read is deleted so, and its id goes to the
 * next call, the pass must not count that call as indexed: it has no
 * entries.
 */
static void test_newest_deleted_elsewhere(void **state)
{
  struct fixture *f = *state;
  sqlite3 *other;
  int64_t id;

  add(f, "a", "15550000001");
  id = add(f, "b", "15550000001");
  f->now_ms += 1000;
  step(f); /* reads both */
  assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
  exec(other, "DELETE FROM calls WHERE ref = 'b'");
  sqlite3_close(other);
  assert_int_equal(add(f, "c", "15550000002"), id);
  step(f); /* writes the pass */
  assert_int_equal(one_int(f->db, "SELECT through FROM call_index"), 0);
  assert_int_equal(find(f, "c"), id);
  index_all(f);
  assert_int_equal(find(f, "c"), id);
  assert_int_equal(one_int(f->db, "SELECT count(*) FROM calls_by_ref WHERE "
                                  "ref = 'c' AND call = (SELECT id FROM "
                                  "calls WHERE ref = 'c')"),
                   1);
}

/*
 * The filter of indexed references spares new calls the read of
 * calls_by_ref once it is loaded, and never hides an indexed call: not
 * before its load, not one a pass indexed during the load at a key the
 * load had passed, not while it grows and loads again.
 */
static void test_filter_of_indexed_references(void **state)
{
  struct fixture *f = *state;
  int64_t first = add(f, "", "15550000001"); /* where the load starts */

  add_indexed(f, "m", 40);
  sqlite_call_index_destroy(f->ci); /* a start */
  assert_int_equal(sqlite_call_index_create(f->db, &limits, &f->ci), VS_OK);
  sqlite3_trace_v2(f->db, SQLITE_TRACE_STMT, count_reads, f);

  assert_int_equal(reads_for_new(f, 10), 10); /* not loaded yet */
  assert_int_equal(found(f, "m", 40), 40);
  step_n(f, 10); /* the load is past the "f" references */
  assert_int_equal(found(f, "m", 40), 40);
  add_indexed(f, "f", 20);
  step_n(f, 40);
  assert_int_equal(found(f, "m", 40), 40);
  assert_int_equal(found(f, "f", 20), 20);
  assert_int_equal(find(f, ""), first);
  assert_in_range(reads_for_new(f, 200), 0, 5);

  /* Sized for 82 references (twice the 41 calls at the start), it has
   * room for 128: past them it grows, and reads the index until loaded. */
  add_indexed(f, "z", 100);
  step_n(f, 1);
  assert_int_equal(reads_for_new(f, 10), 10);
  assert_int_equal(found(f, "z", 100), 100);
  step_n(f, 200);
  assert_int_equal(found(f, "m", 40), 40);
  assert_int_equal(found(f, "f", 20), 20);
  assert_int_equal(found(f, "z", 100), 100);
  assert_in_range(reads_for_new(f, 200), 0, 5);
  sqlite3_trace_v2(f->db, 0, NULL, NULL);
}

/* Entries in calls_by_ref plus the recent level. */
static int64_t entries(struct fixture *f)
{
  return one_int(f->db, "SELECT count(*) FROM calls_by_ref") +
         one_int(f->db, "SELECT count(*) FROM calls_by_ref_recent");
}

/*
 * Merges move the recent level's entries into calls_by_ref, each once,
 * and every call is found at every step: before a merge, during one, after
 * a start in the middle of one, after calls are deleted, and through the
 * filter once it has loaded both levels.
 */
static void test_merge(void **state)
{
  static const struct sqlite_call_index_limits merging = {
      .pending_max = 3,
      .filter_load = 2,
      .filter_min_log2 = BLOOM_MIN_LOG2,
      .merge_min = 300,
      .recent_from = 0,
  };
  struct fixture *f = *state;
  char err[256] = "";

  sqlite_call_index_destroy(f->ci);
  assert_int_equal(sqlite_call_index_create(f->db, &merging, &f->ci), VS_OK);
  add_indexed(f, "a", 600);
  assert_true(one_int(f->db, "SELECT count(*) FROM calls_by_ref") >=
              CALL_INDEX_MERGE_CHUNK);
  assert_int_equal(entries(f), 600);
  assert_int_equal(found(f, "a", 600), 600);

  add_indexed(f, "b", 600); /* a merge of 256 entries a step begins */
  assert_true(one_int(f->db, "SELECT count(*) FROM calls_by_ref_recent") > 0);
  sqlite_call_index_destroy(f->ci); /* a start in the middle of it */
  assert_int_equal(sqlite_call_index_create(f->db, &merging, &f->ci), VS_OK);
  for (int i = 0; i < 4; i++) {
    step_n(f, 1);
    assert_int_equal(entries(f), 1200);
    assert_int_equal(found(f, "a", 600), 600);
    assert_int_equal(found(f, "b", 600), 600);
  }

  exec(f->db, "DELETE FROM calls_by_ref WHERE ref LIKE 'a1_'");
  exec(f->db, "DELETE FROM calls_by_ref_recent WHERE ref LIKE 'a1_'");
  exec(f->db, "DELETE FROM calls WHERE ref LIKE 'a1_'");
  assert_int_equal(sqlite_call_index_deleted(f->ci, err, sizeof(err)), VS_OK);
  step_n(f, 1200); /* the filter loads both levels */
  assert_true(one_int(f->db, "SELECT count(*) FROM calls_by_ref_recent") <
              (int64_t)merging.merge_min);
  assert_int_equal(entries(f), 1190);
  assert_int_equal(found(f, "a", 600), 590);
  assert_int_equal(found(f, "b", 600), 600);
  sqlite3_trace_v2(f->db, SQLITE_TRACE_STMT, count_reads, f);
  assert_in_range(reads_for_new(f, 200), 0, 5);
  sqlite3_trace_v2(f->db, 0, NULL, NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pending_past_the_table, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_rollback_and_delete, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_steps_short_unless_far_behind,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_far_behind_is_urgent, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_newest_deleted_elsewhere, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_filter_of_indexed_references, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
