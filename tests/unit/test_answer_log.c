/*
 * Tests of the answer log (src/store/answer_log.c) on a real file in a
 * fresh temporary directory. A "crash" is a close without the store's
 * mark having moved: the file keeps what was appended, as it does when
 * the process is killed, since the entries are in the page cache.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/store/answer_log.h"
#include "../../src/util/err.h"

#define DB_ID 0x1234abcd5678ef00ULL

struct fixture {
  char dir[256];
  char path[320];
};

/* What a replay handed back. */
struct seen {
  int n;
  char refs[4096][CALL_REF_SIZE];
  int score[4096];
};

static int setup(void **state)
{
  struct fixture *f = calloc(1, sizeof(*f));
  const char *tmp = getenv("TMPDIR");

  if (!f)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "%s/vs-alog-XXXXXX", tmp ? tmp : "/tmp");
  if (!mkdtemp(f->dir))
    return -1;
  snprintf(f->path, sizeof(f->path), "%s/calls.db-answers", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state)
{
  struct fixture *f = *state;

  unlink(f->path);
  rmdir(f->dir);
  free(f);
  return 0;
}

static int collect(void *arg, const struct call *c)
{
  struct seen *s = arg;

  assert_true(s->n < 4096);
  memcpy(s->refs[s->n], c->ref, CALL_REF_SIZE);
  s->score[s->n] = c->score;
  s->n++;
  return VS_OK;
}

/* Opens, replays past `through` into `s` (may be NULL) and starts. */
static struct answer_log *open_log(struct fixture *f, size_t bytes,
                                   uint64_t db_id, uint64_t through,
                                   struct seen *s, uint64_t *last)
{
  struct answer_log *log = NULL;
  struct seen ignored = {0};
  char err[256] = "";
  uint64_t l = 0;

  if (answer_log_open(f->path, bytes, db_id, &log, err, sizeof(err)))
    fail_msg("open: %s", err);
  assert_int_equal(
      answer_log_replay(log, through, collect, s ? s : &ignored, &l), VS_OK);
  if (answer_log_start(log, l, err, sizeof(err)))
    fail_msg("start: %s", err);
  if (last)
    *last = l;
  return log;
}

static uint64_t append(struct answer_log *log, const char *ref, int score)
{
  struct call c;
  uint64_t seq = 0;

  call_init(&c, ref);
  c.score = score;
  snprintf(c.reason, sizeof(c.reason), "score:%d", score);
  assert_int_equal(answer_log_append(log, &c, &seq), VS_OK);
  return seq;
}

/* The entries past the mark come back in order, whole, after a crash;
 * those at or before it do not; sequence numbers go on across runs. */
static void test_replay_after_crash(void **state)
{
  struct fixture *f = *state;
  struct seen *s = calloc(1, sizeof(*s));
  struct answer_log *log =
      open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, 0, s, NULL);
  uint64_t last = 0;

  assert_int_equal(s->n, 0);
  assert_int_equal(append(log, "A1", 100), 1);
  assert_int_equal(append(log, "A2", 200), 2);
  assert_int_equal(append(log, "A3", 300), 3);
  answer_log_close(log); /* the mark is still 1 in the "database" */

  log = open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, 1, s, &last);
  assert_int_equal(s->n, 2);
  assert_string_equal(s->refs[0], "A2");
  assert_int_equal(s->score[0], 200);
  assert_string_equal(s->refs[1], "A3");
  assert_int_equal(s->score[1], 300);
  assert_int_equal(last, 3);
  assert_int_equal(append(log, "B1", 1), 4);
  answer_log_close(log);

  /* After a start the previous run's entries are gone: all committed. */
  memset(s, 0, sizeof(*s));
  log = open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, 4, s, &last);
  assert_int_equal(s->n, 0);
  assert_int_equal(last, 4);
  answer_log_close(log);
  free(s);
}

/* A log written for another database replays nothing into this one. */
static void test_other_database(void **state)
{
  struct fixture *f = *state;
  struct seen *s = calloc(1, sizeof(*s));
  struct answer_log *log =
      open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, 0, NULL, NULL);
  uint64_t last = 0;

  append(log, "X1", 1);
  answer_log_close(log);
  log = open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID + 1, 0, s, &last);
  assert_int_equal(s->n, 0);
  assert_int_equal(last, 0);
  answer_log_close(log);
  free(s);
}

/* An entry torn by a kill in mid-copy (here, one byte changed) is not
 * replayed; the entries before it are. */
static void test_torn_entry(void **state)
{
  struct fixture *f = *state;
  struct seen *s = calloc(1, sizeof(*s));
  struct answer_log *log =
      open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, 0, NULL, NULL);
  off_t end;
  int fd;

  append(log, "T1", 1);
  append(log, "T2", 2);
  answer_log_close(log);
  /* The last entry's last bytes: its final text field's NUL and the
   * padding, somewhere in the 16 bytes before the first zero run. */
  fd = open(f->path, O_RDWR);
  assert_true(fd >= 0);
  {
    unsigned char chunk[ANSWER_LOG_CHUNK];

    assert_int_equal(pread(fd, chunk, sizeof(chunk), 4096),
                     (ssize_t)sizeof(chunk));
    end = (off_t)sizeof(chunk);
    while (end > 0 && !chunk[end - 1])
      end--;
    assert_true(end > 0);
    chunk[end - 1] ^= 0x20; /* a character of T2's last non-empty text */
    assert_int_equal(pwrite(fd, &chunk[end - 1], 1, 4096 + end - 1), 1);
  }
  close(fd);
  log = open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, 0, s, NULL);
  assert_int_equal(s->n, 1);
  assert_string_equal(s->refs[0], "T1");
  answer_log_close(log);
  free(s);
}

/* A chunk is written again only once the store has committed all of it:
 * until then appends are refused, and a crash replays every entry still
 * past the mark, in order, across the wrap. */
static void test_full_ring(void **state)
{
  struct fixture *f = *state;
  struct seen *s = calloc(1, sizeof(*s));
  struct answer_log *log =
      open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, 0, NULL, NULL);
  struct call c;
  uint64_t seq = 0;
  uint64_t n = 0;
  uint64_t first_lap;
  char ref[32];

  call_init(&c, "F0");
  while (answer_log_append(log, &c, &seq) == VS_OK)
    n++;
  assert_true(n > 100); /* two chunks' worth */
  assert_int_equal(answer_log_append(log, &c, &seq), VS_ERR_BUSY);
  first_lap = n;

  /* Committed through the first half: the first chunk is free again. */
  answer_log_through(log, n / 2);
  for (int i = 0; i < 10; i++) {
    snprintf(ref, sizeof(ref), "W%d", i);
    seq = append(log, ref, i);
  }
  assert_int_equal(seq, first_lap + 10);
  answer_log_close(log);

  log = open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, first_lap, s, NULL);
  assert_int_equal(s->n, 10);
  for (int i = 0; i < 10; i++) {
    snprintf(ref, sizeof(ref), "W%d", i);
    assert_string_equal(s->refs[i], ref);
  }
  answer_log_close(log);
  free(s);
}

/* A second server on the same database is refused, with the reason. */
static void test_second_server_refused(void **state)
{
  struct fixture *f = *state;
  struct answer_log *log =
      open_log(f, ANSWER_LOG_MIN_BYTES, DB_ID, 0, NULL, NULL);
  struct answer_log *other = NULL;
  char err[256] = "";

  assert_int_equal(answer_log_open(f->path, ANSWER_LOG_MIN_BYTES, DB_ID,
                                   &other, err, sizeof(err)),
                   VS_ERR_BUSY);
  assert_null(other);
  assert_non_null(strstr(err, f->path));
  assert_non_null(strstr(err, "another server"));
  answer_log_close(log);

  assert_int_equal(answer_log_open(f->path, ANSWER_LOG_MIN_BYTES - 1, DB_ID,
                                   &other, err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_null(other);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_replay_after_crash, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_other_database, setup, teardown),
      cmocka_unit_test_setup_teardown(test_torn_entry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_ring, setup, teardown),
      cmocka_unit_test_setup_teardown(test_second_server_refused, setup,
                                      teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
