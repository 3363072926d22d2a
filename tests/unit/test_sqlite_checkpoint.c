/*
 * Tests of the SQLite checkpointer (src/store/sqlite_checkpoint.c) on a
 * real database file in a fresh temporary directory.
 *
 * A checkpoint shows in the database file: it copies the WAL's pages
 * into it, so the file grows past its size before the writes. Waits poll
 * for at most WAIT_MS; no test asserts on how long anything took.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../src/store/sqlite_checkpoint.h"
#include "../../src/util/err.h"

#define WAIT_MS 20000
#define BLOB    (64 * 1024) /* one row: 16 pages of 4 KiB */

struct fixture {
  char dir[256];
  char path[320];
  sqlite3 *db; /* the writer */
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  const char *tmp = getenv("TMPDIR");

  if (!f)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "%s/vs-ckpt-XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(f->dir))
    return -1;
  snprintf(f->path, sizeof(f->path), "%s/calls.db", f->dir);
  if (sqlite3_open(f->path, &f->db) != SQLITE_OK ||
      sqlite3_exec(f->db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                   "CREATE TABLE t (b BLOB);",
                   NULL, NULL, NULL) != SQLITE_OK)
    return -1;
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;
  char p[400];

  sqlite3_close(f->db);
  snprintf(p, sizeof(p), "%s-wal", f->path);
  unlink(p);
  snprintf(p, sizeof(p), "%s-shm", f->path);
  unlink(p);
  unlink(f->path);
  rmdir(f->dir);
  free(f);
  return 0;
}

static long long file_size(const char *path)
{
  struct stat sb;

  return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* Starts a checkpointer on the fixture's writer; the test stops it. */
static struct sqlite_checkpointer *start(struct fixture *f)
{
  struct sqlite_checkpointer *c = NULL;
  char err[256] = "";

  assert_int_equal(
      sqlite_checkpointer_start(f->db, f->path, &c, err, sizeof(err)), VS_OK);
  assert_non_null(c);
  return c;
}

/* Commits `rows` transactions of one BLOB-sized row each. */
static void write_rows(sqlite3 *db, int rows)
{
  sqlite3_stmt *s;

  assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (zeroblob(?))",
                                      -1, &s, NULL),
                   SQLITE_OK);
  for (int i = 0; i < rows; i++) {
    sqlite3_bind_int(s, 1, BLOB);
    assert_int_equal(sqlite3_step(s), SQLITE_DONE);
    sqlite3_reset(s);
  }
  sqlite3_finalize(s);
}

/* Waits until the thread has finished a checkpoint. */
static int checkpointed(struct sqlite_checkpointer *c)
{
  struct timespec ts = {0, 10 * 1000000L};

  for (int waited = 0; waited < WAIT_MS; waited += 10) {
    if (sqlite_checkpointer_runs(c) > 0)
      return 1;
    nanosleep(&ts, NULL);
  }
  return 0;
}

/* Frames enough for a checkpoint: the thread runs one, the writer none. */
static void test_thread_checkpoints(void **state)
{
  struct fixture *f = *state;
  struct sqlite_checkpointer *c = start(f);
  long long before;

  before = file_size(f->path);
  write_rows(f->db, SQLITE_CHECKPOINT_FRAMES / 16 + 16);
  assert_true(checkpointed(c));
  assert_true(file_size(f->path) > before);
  sqlite_checkpointer_stop(c);
}

/* Fewer frames than the threshold: nothing is checkpointed. */
static void test_below_threshold(void **state)
{
  struct fixture *f = *state;
  struct sqlite_checkpointer *c = start(f);
  long long before;

  before = file_size(f->path);
  /* SQLite's automatic checkpoint would have run at 1,000 frames. */
  write_rows(f->db, 1200 / 16);
  assert_int_equal(file_size(f->path), before);
  assert_int_equal(sqlite_checkpointer_runs(c), 0);
  sqlite_checkpointer_stop(c);
}

/* After stop the writer checkpoints itself again, as SQLite does. */
static void test_stop_gives_back_autocheckpoint(void **state)
{
  struct fixture *f = *state;
  struct sqlite_checkpointer *c = start(f);
  long long before;

  sqlite_checkpointer_stop(c);
  before = file_size(f->path);
  write_rows(f->db, 1200 / 16);
  assert_true(file_size(f->path) > before);
}

/* A database that cannot be opened again: an error naming it. */
static void test_open_fails(void **state)
{
  struct fixture *f = *state;
  struct sqlite_checkpointer *c = NULL;
  char err[512] = "";
  char missing[400];

  snprintf(missing, sizeof(missing), "%s/no/such/dir/calls.db", f->dir);
  assert_int_not_equal(
      sqlite_checkpointer_start(f->db, missing, &c, err, sizeof(err)), VS_OK);
  assert_null(c);
  assert_non_null(strstr(err, missing));
  sqlite_checkpointer_stop(NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_thread_checkpoints, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_below_threshold, setup, teardown),
      cmocka_unit_test_setup_teardown(test_stop_gives_back_autocheckpoint,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_open_fails, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
