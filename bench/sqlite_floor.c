/*
 * The floor of SQLite's cost for a call record: how much CPU one row of
 * the shape of `calls` costs to insert, alone on a thread, with nothing
 * else on the machine's cores. The server's store worker pays this and
 * more (the index passes, the reference filter, the hand-over from the
 * loop), so it tells whether a change inside the worker can reach a
 * target, or whether the record itself has to be written differently.
 *
 *   cc -O2 -std=c17 -D_GNU_SOURCE -o sqlite-floor bench/sqlite_floor.c \
 *      -lsqlite3
 *   ./sqlite-floor COLUMNS BATCH ROWS PATH [indexed]
 *
 * COLUMNS text columns share 200 bytes (a cache-hit call's row is about
 * that size, with 32 columns besides its id); BATCH rows go in each
 * transaction (a cache-hit batch holds about 22); "indexed" adds the two
 * indexes that every call record pays at once, on a time and a decision
 * column. With COLUMNS 0 each batch is one row, a blob of BATCH records
 * of 200 bytes: what a log of packed records would pay. PATH and its WAL
 * are overwritten. Prints the process's CPU time per record.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECORD_BYTES 200
#define MAX_COLUMNS  64
#define MAX_BATCH    10000

static double cpu_seconds(void)
{
  struct timespec t;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Builds the table and the insert for COLUMNS columns into ddl and ins. */
static void build_sql(int columns, int indexed, char *ddl, char *ins,
                      size_t size)
{
  size_t d, i;

  d = (size_t)snprintf(ddl, size, "CREATE TABLE t (id INTEGER PRIMARY KEY");
  i = (size_t)snprintf(ins, size, "INSERT INTO t VALUES (NULL");
  if (!columns) {
    d += (size_t)snprintf(ddl + d, size - d, ", b BLOB");
    i += (size_t)snprintf(ins + i, size - i, ", ?1");
  }
  for (int c = 0; c < columns; c++) {
    d += (size_t)snprintf(ddl + d, size - d, ", c%d", c);
    i += (size_t)snprintf(ins + i, size - i, ", ?%d", c + 1);
  }
  d += (size_t)snprintf(ddl + d, size - d, ");");
  if (indexed)
    snprintf(ddl + d, size - d,
             "CREATE INDEX t_c0 ON t (c0);"
             "CREATE INDEX t_c1 ON t (c1, c0) WHERE c1 <> 'allow';");
  snprintf(ins + i, size - i, ")");
}

/* Runs one batch: BEGIN, BATCH rows (or one blob of them), COMMIT. */
static int run_batch(sqlite3_stmt *ins, sqlite3_stmt *begin,
                     sqlite3_stmt *commit, int columns, int batch,
                     long long *seq, const char *blob)
{
  char key[32];
  int per = columns ? RECORD_BYTES / columns : 0;

  if (sqlite3_step(begin) != SQLITE_DONE)
    return sqlite3_reset(begin);
  sqlite3_reset(begin);
  for (int r = 0; r < (columns ? batch : 1); r++) {
    if (!columns) {
      sqlite3_bind_blob(ins, 1, blob, RECORD_BYTES * batch, SQLITE_STATIC);
    } else {
      /* The first column is a time, the second a decision, the rest
       * filler: the two indexes then see what calls_started_ms and
       * calls_decision see. */
      snprintf(key, sizeof(key), "%020lld", ++*seq);
      sqlite3_bind_text(ins, 1, key, -1, SQLITE_TRANSIENT);
      for (int c = 1; c < columns; c++)
        sqlite3_bind_text(
            ins, c + 1, c == 1 ? (*seq % 5 < 3 ? "allow" : "challenge") : blob,
            c == 1 ? -1 : per, SQLITE_STATIC);
    }
    if (sqlite3_step(ins) != SQLITE_DONE)
      return sqlite3_reset(ins);
    sqlite3_reset(ins);
  }
  if (sqlite3_step(commit) != SQLITE_DONE)
    return sqlite3_reset(commit);
  sqlite3_reset(commit);
  return SQLITE_OK;
}

int main(int argc, char **argv)
{
  static char blob[RECORD_BYTES * MAX_BATCH];
  char ddl[4096], ins_sql[4096], wal[4096];
  sqlite3 *db = NULL;
  sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
  long long seq = 0, rows;
  int columns, batch, indexed, rc = 1;
  double t0;

  if (argc < 5) {
    fprintf(stderr, "usage: %s COLUMNS BATCH ROWS PATH [indexed]\n", argv[0]);
    return 2;
  }
  columns = atoi(argv[1]);
  batch = atoi(argv[2]);
  rows = atoll(argv[3]);
  if (columns < 0 || columns > MAX_COLUMNS || batch < 1 || batch > MAX_BATCH ||
      rows < batch) {
    fprintf(stderr, "sqlite-floor: COLUMNS 0-%d, BATCH 1-%d, ROWS >= BATCH\n",
            MAX_COLUMNS, MAX_BATCH);
    return 2;
  }
  /* The indexes name the first two columns, so fewer have none. */
  indexed = argc > 5 && !strcmp(argv[5], "indexed") && columns >= 2;
  memset(blob, 'a', sizeof(blob));
  build_sql(columns, indexed, ddl, ins_sql, sizeof(ddl));
  snprintf(wal, sizeof(wal), "%s-wal", argv[4]);
  remove(argv[4]);
  remove(wal);
  /* The server's settings: one thread per connection, WAL, commits not
   * synced, checkpoints off this connection (the server's run on a
   * thread of their own). */
  if (sqlite3_open_v2(argv[4], &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK ||
      sqlite3_exec(db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                   "PRAGMA wal_autocheckpoint=0;",
                   NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_exec(db, ddl, NULL, NULL, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, ins_sql, -1, &ins, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK)
    goto fail;
  t0 = cpu_seconds();
  /* Whole batches only, so that every record counted was written. */
  rows -= rows % batch;
  for (long long done = 0; done < rows; done += batch)
    if (run_batch(ins, begin, commit, columns, batch, &seq, blob) != SQLITE_OK)
      goto fail;
  printf("columns %d, %d a transaction%s: %.2f us a record\n", columns, batch,
         indexed ? ", indexed" : "", (cpu_seconds() - t0) * 1e6 / rows);
  rc = 0;
  goto out;
fail:
  fprintf(stderr, "sqlite-floor: %s: %s\n", argv[4],
          db ? sqlite3_errmsg(db) : "cannot open");
out:
  sqlite3_finalize(ins);
  sqlite3_finalize(begin);
  sqlite3_finalize(commit);
  sqlite3_close(db);
  return rc;
}
