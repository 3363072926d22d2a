/*
 * The SQLite store's bulk-kept index of calls by caller (see
 * sqlite_caller_index.h).
 */
#include <stdlib.h>
#include <string.h>

#include "../util/err.h"
#include "call.h"
#include "sqlite_caller_index.h"

static const char sql_through[] = "SELECT through FROM caller_index";

/* The calls after ?1, oldest first, with their callers. */
static const char sql_pending[] =
    "SELECT rowid, caller FROM calls WHERE rowid > ?1 ORDER BY rowid "
    "LIMIT ?2";

/*
 * Takes the call's caller and start from the table, since a pass keeps
 * only a sort key of each. A call deleted meanwhile inserts nothing;
 * OR IGNORE makes the entries of an abandoned pass harmless.
 */
static const char sql_insert[] =
    "INSERT OR IGNORE INTO calls_by_caller (number, at_ms, call) "
    "SELECT caller, started_ms, rowid FROM calls WHERE rowid = ?1";

static const char sql_done[] = "UPDATE caller_index SET through = ?1";

/* After deletes; IFNULL: with no calls left the next rowid is 1. */
static const char sql_lower[] =
    "UPDATE caller_index SET through = (SELECT IFNULL(MAX(rowid), 0) FROM "
    "calls) WHERE through > (SELECT IFNULL(MAX(rowid), 0) FROM calls)";

/*
 * A call of the pass and where its caller sorts: the digits as a number,
 * under their count, which orders numbers of one length as the index
 * does. Only locality depends on the key, so a caller it cannot hold
 * (empty, not digits, too long) simply sorts last.
 */
struct pass_row {
  uint64_t key;
  int64_t call;
};

enum pass_phase { PASS_IDLE, PASS_READING, PASS_WRITING };

/*
 * The writer connection's statements and the pass in progress. Reading,
 * each step appends the next calls after `last` (at first
 * caller_index.through) to rows[0..n); writing, each step moves
 * rows[next..] (sorted by key) into the index.
 */
struct sqlite_caller_index {
  sqlite3 *db;
  sqlite3_stmt *through;
  sqlite3_stmt *pending;
  sqlite3_stmt *insert;
  sqlite3_stmt *done;
  sqlite3_stmt *lower;
  sqlite3_stmt *begin;
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  struct pass_row *rows; /* CALLER_INDEX_PASS_MAX of them, on first use */
  enum pass_phase phase;
  size_t n;
  size_t next;
  int64_t last;    /* the newest call read */
  uint64_t saves;  /* since the last pass started */
  int64_t pass_ms; /* when it started */
};

int sqlite_caller_index_create(sqlite3 *db, struct sqlite_caller_index **out)
{
  struct sqlite_caller_index *ci = calloc(1, sizeof(*ci));

  if (!ci)
    return VS_ERR_NOMEM;
  ci->db = db;
  *out = ci;
  return VS_OK;
}

void sqlite_caller_index_destroy(struct sqlite_caller_index *ci)
{
  if (!ci)
    return;
  sqlite3_finalize(ci->through);
  sqlite3_finalize(ci->pending);
  sqlite3_finalize(ci->insert);
  sqlite3_finalize(ci->done);
  sqlite3_finalize(ci->lower);
  sqlite3_finalize(ci->begin);
  sqlite3_finalize(ci->commit);
  sqlite3_finalize(ci->rollback);
  free(ci->rows);
  free(ci);
}

void sqlite_caller_index_saved(struct sqlite_caller_index *ci)
{
  ci->saves++;
}

/* Prepares `sql` into *s unless it already is. */
static int prepared(struct sqlite_caller_index *ci, const char *sql,
                    sqlite3_stmt **s)
{
  if (*s)
    return SQLITE_OK;
  return sqlite3_prepare_v3(ci->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s,
                            NULL);
}

/* Steps `s` to its end and resets it; SQLITE_OK or SQLite's error. */
static int run(sqlite3_stmt *s)
{
  int rc = sqlite3_step(s);

  sqlite3_reset(s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static uint64_t sort_key(const unsigned char *caller)
{
  uint64_t v = 0;
  size_t len = 0;

  for (; caller && caller[len]; len++) {
    if (caller[len] < '0' || caller[len] > '9' || len == 17)
      return UINT64_MAX;
    v = v * 10 + (uint64_t)(caller[len] - '0');
  }
  /* 17 digits fit in 57 bits, under a count of at most 17 in the top 7. */
  return len ? (uint64_t)len << 57 | v : UINT64_MAX;
}

static int by_key(const void *a, const void *b)
{
  const struct pass_row *x = a, *y = b;

  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return (x->call > y->call) - (x->call < y->call);
}

/* Drops the pass in progress; its calls stay pending. */
static void pass_abandon(struct sqlite_caller_index *ci)
{
  ci->phase = PASS_IDLE;
}

int sqlite_caller_index_deleted(struct sqlite_caller_index *ci, char *err,
                                size_t errlen)
{
  int rc;

  pass_abandon(ci);
  rc = prepared(ci, sql_lower, &ci->lower);
  if (rc == SQLITE_OK)
    rc = run(ci->lower);
  if (rc == SQLITE_OK)
    return VS_OK;
  return vs_fail(err, errlen, rc == SQLITE_NOMEM ? VS_ERR_NOMEM : VS_ERR_IO,
                 "cannot keep the index of calls by caller: %s",
                 sqlite3_errmsg(ci->db));
}

/* Where the pass starts: the last call indexed. */
static int pass_begin(struct sqlite_caller_index *ci)
{
  int rc = prepared(ci, sql_through, &ci->through);

  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(ci->through);
  if (rc == SQLITE_ROW) {
    ci->last = sqlite3_column_int64(ci->through, 0);
    rc = SQLITE_OK;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_CORRUPT; /* migration 4 inserts the row */
  }
  sqlite3_reset(ci->through);
  return rc;
}

/*
 * Appends the next CALLER_INDEX_CHUNK * 4 pending calls; once there are
 * no more, or the pass is full, sorts them and turns to writing.
 */
static int pass_read(struct sqlite_caller_index *ci)
{
  size_t want = CALLER_INDEX_CHUNK * 4;
  size_t got = 0;
  int rc;

  if (want > CALLER_INDEX_PASS_MAX - ci->n)
    want = CALLER_INDEX_PASS_MAX - ci->n;
  rc = prepared(ci, sql_pending, &ci->pending);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_int64(ci->pending, 1, ci->last);
  sqlite3_bind_int64(ci->pending, 2, (sqlite3_int64)want);
  while ((rc = sqlite3_step(ci->pending)) == SQLITE_ROW) {
    struct pass_row *r = &ci->rows[ci->n++];

    r->call = sqlite3_column_int64(ci->pending, 0);
    r->key = sort_key(sqlite3_column_text(ci->pending, 1));
    ci->last = r->call;
    got++;
  }
  sqlite3_reset(ci->pending);
  if (rc != SQLITE_DONE)
    return rc;
  if (got == want && ci->n < CALLER_INDEX_PASS_MAX)
    return SQLITE_OK;
  qsort(ci->rows, ci->n, sizeof(*ci->rows), by_key);
  ci->next = 0;
  ci->phase = ci->n ? PASS_WRITING : PASS_IDLE;
  return SQLITE_OK;
}

/*
 * Moves the next CALLER_INDEX_CHUNK calls of the pass in a transaction of
 * its own; the last chunk also moves caller_index.through up to `last`.
 * Without deletes since the pass began (sqlite_caller_index_deleted) no
 * call at or below `last` was added meanwhile, so all of them are in the
 * pass.
 */
static int pass_write(struct sqlite_caller_index *ci)
{
  size_t end = ci->next + CALLER_INDEX_CHUNK;
  int rc;

  if (end > ci->n)
    end = ci->n;
  rc = prepared(ci, sql_insert, &ci->insert);
  if (rc == SQLITE_OK)
    rc = prepared(ci, sql_done, &ci->done);
  if (rc == SQLITE_OK)
    rc = prepared(ci, "BEGIN IMMEDIATE", &ci->begin);
  if (rc == SQLITE_OK)
    rc = prepared(ci, "COMMIT", &ci->commit);
  if (rc == SQLITE_OK)
    rc = prepared(ci, "ROLLBACK", &ci->rollback);
  if (rc == SQLITE_OK)
    rc = run(ci->begin);
  if (rc != SQLITE_OK)
    return rc;
  for (size_t i = ci->next; rc == SQLITE_OK && i < end; i++) {
    sqlite3_bind_int64(ci->insert, 1, ci->rows[i].call);
    rc = run(ci->insert);
  }
  if (rc == SQLITE_OK && end == ci->n) {
    sqlite3_bind_int64(ci->done, 1, ci->last);
    rc = run(ci->done);
  }
  if (rc == SQLITE_OK)
    rc = run(ci->commit);
  if (rc != SQLITE_OK) {
    if (!sqlite3_get_autocommit(ci->db))
      run(ci->rollback);
    return rc;
  }
  ci->next = end;
  if (end == ci->n)
    ci->phase = PASS_IDLE;
  return SQLITE_OK;
}

int sqlite_caller_index_step(struct sqlite_caller_index *ci, int64_t now_ms,
                             char *err, size_t errlen)
{
  int rc;

  if (ci->phase == PASS_IDLE) {
    if (!ci->saves || (ci->saves < CALLER_INDEX_PASS_SAVES &&
                       now_ms - ci->pass_ms < CALLER_INDEX_PASS_MS))
      return VS_OK;
    if (!ci->rows) {
      ci->rows = malloc(CALLER_INDEX_PASS_MAX * sizeof(*ci->rows));
      if (!ci->rows)
        return vs_fail(err, errlen, VS_ERR_NOMEM,
                       "cannot index calls by caller: out of memory");
    }
    ci->saves = 0;
    ci->pass_ms = now_ms;
    ci->n = 0;
    rc = pass_begin(ci);
    if (rc != SQLITE_OK)
      goto fail;
    ci->phase = PASS_READING;
  }
  rc = ci->phase == PASS_READING ? pass_read(ci) : pass_write(ci);
  if (rc == SQLITE_OK)
    return VS_OK;
fail:
  /* The calls stay pending; the next pass, a second on, takes them. */
  pass_abandon(ci);
  ci->saves = 1;
  ci->pass_ms = now_ms;
  return vs_fail(err, errlen, rc == SQLITE_NOMEM ? VS_ERR_NOMEM : VS_ERR_IO,
                 "cannot index calls by caller: %s", sqlite3_errmsg(ci->db));
}
