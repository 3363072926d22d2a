/*
 * The SQLite backend (see store_backend.h and store_sqlite.h).
 *
 * Durability. The database runs in WAL mode with synchronous=NORMAL: a
 * commit appends to the write-ahead log without an fsync, and the log is
 * synced at checkpoints, which a thread of their own runs
 * (sqlite_checkpoint.h) so that no commit waits for one. A power cut can
 * lose the last batches but never corrupts the file, which is the right
 * trade for call records written at tens of thousands per second; the
 * store's group commit already makes each transaction cover a whole batch.
 *
 * Tables. `calls` holds the call records; `lists` the allow and block
 * entries and `numbers` what is known of each caller number (both since
 * schema version 2). Lists and numbers are small and read whole at start;
 * calls grow with traffic and are only ever read through an index: by
 * caller through calls_by_caller (version 4) and by reference through
 * calls_by_ref (version 5) and calls_by_ref_recent (version 6), which the
 * worker keeps up in bulk between batches (sqlite_call_index.h).
 *
 * Schema. The version of the schema is kept in a one-row table,
 * schema_version, and the migrations below are applied in order, all in one
 * transaction, by open(): a later change adds an entry to `migrations` and
 * never edits an old one. A read-only open refuses a database whose version
 * is not the one this program knows, rather than guess at its columns.
 *
 * Every statement that carries a value is prepared with placeholders; SQL
 * text is only ever built from the constant fragments in this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "../util/err.h"
#include "../util/log.h"
#include "sqlite_call_index.h"
#include "sqlite_checkpoint.h"
#include "call.h"
#include "records.h"
#include "store_schema.h"
#include "store_sqlite.h"

#define SQLITE_BUSY_MS  5000 /* how long a connection waits for a lock */
#define SQLITE_ERR_SIZE 256  /* one sentence of error in a handle */
#define SQLITE_DIR_MODE 0750 /* the records hold phone numbers */
#define SQLITE_DB_MODE  0640
/*
 * WAL bytes kept on disk when the WAL starts over: as much as the backstop
 * lets it reach (SQLITE_CHECKPOINT_BACKSTOP frames of a 4 KiB page and its
 * 24-byte header, after the 32-byte file header), so that it is reused,
 * never cut back and grown again. Under a sustained load the WAL starts
 * over every second or two at 85-150 MB; cutting it back to 64 MiB each
 * time stalled the commit that did it, and with it every answer waiting
 * for that commit: the cache-hit benchmark's p99 was 4.2-11.8 ms in
 * alternating runs against 3.5-3.8 ms without the cut.
 */
#define SQLITE_WAL_LIMIT                                                      \
  ((long long)SQLITE_CHECKPOINT_BACKSTOP * (4096 + 24) + 32)

/*
 * The columns of `calls` after the reference as migration 1 made them,
 * which migration 5 makes again when it rebuilds the table.
 */
#define CALLS_V1_FIELDS                                                       \
  " caller_raw TEXT NOT NULL DEFAULT '',"                                     \
  " caller TEXT NOT NULL DEFAULT '',"                                         \
  " to_number TEXT NOT NULL DEFAULT '',"                                      \
  " started_ms INTEGER NOT NULL DEFAULT 0,"                                   \
  " updated_ms INTEGER NOT NULL DEFAULT 0,"                                   \
  " step TEXT NOT NULL DEFAULT 'new',"                                        \
  " attempts INTEGER NOT NULL DEFAULT 0,"                                     \
  " decision TEXT NOT NULL DEFAULT 'none',"                                   \
  " reason TEXT NOT NULL DEFAULT '',"                                         \
  " score INTEGER,"                                                           \
  " risk_level TEXT NOT NULL DEFAULT '',"                                     \
  " recommendation TEXT NOT NULL DEFAULT '',"                                 \
  " phone_type TEXT NOT NULL DEFAULT '',"                                     \
  " score_ref TEXT NOT NULL DEFAULT '',"                                      \
  " score_error TEXT NOT NULL DEFAULT '',"                                    \
  " score_ms INTEGER,"                                                        \
  " digits TEXT NOT NULL DEFAULT '',"                                         \
  " department TEXT NOT NULL DEFAULT '',"                                     \
  " dialled TEXT NOT NULL DEFAULT '',"                                        \
  " dial_status TEXT NOT NULL DEFAULT '',"                                    \
  " status TEXT NOT NULL DEFAULT '',"                                         \
  " duration_s INTEGER,"                                                      \
  " ended_ms INTEGER"

/*
 * The schema, one migration per entry. Text columns are NOT NULL with ''
 * for "unset", as in struct call; the integer columns whose struct value
 * means "none" (-1, or 0 for ended_ms) are NULL instead, so that queries
 * and aggregates over the table see no made-up numbers. The indexes carry
 * started_ms after their key so that "newest first" needs no sort.
 */
static const char *const migrations[] = {
    /* 1: the call records. */
    "CREATE TABLE calls (" /* the reference was the key until 5 */
    " ref TEXT PRIMARY KEY NOT NULL," CALLS_V1_FIELDS ");"
    "CREATE INDEX calls_started_ms ON calls (started_ms);"
    "CREATE INDEX calls_caller ON calls (caller, started_ms);"
    "CREATE INDEX calls_decision ON calls (decision, started_ms);",

    /*
     * 2: the screening pipeline. New columns of calls come with defaults,
     * so that the rows written by version 1 read back as records that
     * were never screened. velocity_count is NOT NULL: 0 calls in the
     * window is what a version-1 row means, not "unknown". Table lists
     * holds both kinds; numbers holds what a challenge or a Score lookup
     * taught us about a caller. Their timestamps whose 0 means "none"
     * (expires_ms, pass_expires_ms, last_failure_ms, score_fetched_ms)
     * are NULL instead, like ended_ms. Velocity is rebuilt from calls by
     * started_ms (index calls_started_ms) and per caller by calls_caller
     * (caller, started_ms), which migration 1 already created.
     */
    "ALTER TABLE calls ADD COLUMN trace TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE calls ADD COLUMN policy_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE calls ADD COLUMN shadow INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN velocity_count INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN score_source TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE calls ADD COLUMN challenge_digit TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE calls ADD COLUMN challenge_tries INTEGER NOT NULL "
    "DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN challenge_result TEXT NOT NULL "
    "DEFAULT '';"
    "CREATE TABLE lists ("
    " kind TEXT NOT NULL CHECK (kind IN ('allow', 'block')),"
    " entry TEXT NOT NULL,"
    " note TEXT NOT NULL DEFAULT '',"
    " source TEXT NOT NULL DEFAULT '',"
    " created_ms INTEGER NOT NULL DEFAULT 0,"
    " expires_ms INTEGER,"
    " PRIMARY KEY (kind, entry)) WITHOUT ROWID;"
    "CREATE INDEX lists_expires_ms ON lists (expires_ms)"
    " WHERE expires_ms IS NOT NULL;"
    "CREATE TABLE numbers ("
    " number TEXT PRIMARY KEY NOT NULL,"
    " pass_expires_ms INTEGER,"
    " challenge_failures INTEGER NOT NULL DEFAULT 0,"
    " last_failure_ms INTEGER,"
    " score_fetched_ms INTEGER,"
    " score INTEGER,"
    " risk_level TEXT NOT NULL DEFAULT '',"
    " recommendation TEXT NOT NULL DEFAULT '',"
    " phone_type TEXT NOT NULL DEFAULT '',"
    " score_ref TEXT NOT NULL DEFAULT '');",

    /*
     * 3: the shared schema, identical in PostgreSQL (store_postgres.c),
     * where several server instances decide calls from one database.
     * number_calls holds one row per call of a number, for velocity
     * counted in the database; a number's claim (claim_until_ms, claim_by)
     * says which instance is looking its score up, so that the others
     * wait for that one lookup. A single SQLite server keeps both in
     * memory and leaves them empty.
     */
    "ALTER TABLE numbers ADD COLUMN claim_until_ms INTEGER;"
    "ALTER TABLE numbers ADD COLUMN claim_by TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE number_calls ("
    " number TEXT NOT NULL,"
    " started_ms INTEGER NOT NULL);"
    "CREATE INDEX number_calls_number ON number_calls (number, started_ms);"
    "CREATE INDEX number_calls_started_ms ON number_calls (started_ms);",

    /*
     * 4: calls by caller, kept up in bulk (sqlite_call_index.h) instead
     * of by index calls_caller, which put every new call on a random page.
     * calls_by_caller holds (caller, started_ms, rowid) of every call up
     * to caller_index.through; the calls after it are pending. An entry
     * never changes, since a call's caller and start do not
     * (CALL_UPSERT_SET); forget and the purge delete entries with their
     * calls. No trigger: one on calls made SQLite keep a statement
     * journal for every upsert, which cost 10-15% of cache-hit
     * incoming_call throughput. The columns are named apart from those of
     * calls so that a join needs no prefixes.
     */
    "CREATE TABLE calls_by_caller ("
    " number TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL,"
    " call INTEGER NOT NULL,"
    " PRIMARY KEY (number, at_ms, call)) WITHOUT ROWID;"
    "CREATE TABLE caller_index ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " through INTEGER NOT NULL);"
    "INSERT INTO calls_by_caller (number, at_ms, call)"
    " SELECT caller, started_ms, rowid FROM calls ORDER BY 1, 2, 3;"
    "INSERT INTO caller_index (id, through)"
    " SELECT 1, IFNULL(MAX(rowid), 0) FROM calls;"
    "DROP INDEX calls_caller;",

    /*
     * 5: calls by reference, kept up in bulk like calls by caller, and the
     * INTEGER PRIMARY KEY that both indexes name calls by. The table is
     * rebuilt, since SQLite cannot drop the unique index of a primary key
     * (7.8 s for a million calls, docs/deployment.md); the ids are the old
     * rowids, which calls_by_caller holds. A reference stays unique
     * because the worker, the one writer, looks a call up before it
     * inserts one (sqlite_call_index_find). caller_index becomes
     * call_index: its `through` covers both indexes.
     */
    "CREATE TABLE calls_new ("
    " id INTEGER PRIMARY KEY,"
    " ref TEXT NOT NULL," CALLS_V1_FIELDS ","
    " trace TEXT NOT NULL DEFAULT '',"
    " policy_version TEXT NOT NULL DEFAULT '',"
    " shadow INTEGER NOT NULL DEFAULT 0,"
    " velocity_count INTEGER NOT NULL DEFAULT 0,"
    " score_source TEXT NOT NULL DEFAULT '',"
    " challenge_digit TEXT NOT NULL DEFAULT '',"
    " challenge_tries INTEGER NOT NULL DEFAULT 0,"
    " challenge_result TEXT NOT NULL DEFAULT '');"
    "INSERT INTO calls_new (id, " CALL_COLUMNS ")"
    " SELECT rowid, " CALL_COLUMNS " FROM calls ORDER BY rowid;"
    "DROP TABLE calls;"
    "ALTER TABLE calls_new RENAME TO calls;"
    "CREATE INDEX calls_started_ms ON calls (started_ms);"
    "CREATE INDEX calls_decision ON calls (decision, started_ms);"
    "ALTER TABLE caller_index RENAME TO call_index;"
    "CREATE TABLE calls_by_ref ("
    " ref TEXT PRIMARY KEY NOT NULL,"
    " call INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO calls_by_ref (ref, call)"
    " SELECT ref, id FROM calls"
    " WHERE id <= (SELECT through FROM call_index) ORDER BY ref;",

    /*
     * 6: a recent level of calls by reference. With a random key, a pass's
     * entries land one to a page once the index has many more pages than a
     * pass has calls, and each costs a page written (bench/README.md).
     * Past a million calls the passes write calls_by_ref_recent, kept
     * small, and its entries are merged in key order into calls_by_ref,
     * several to a page, when it reaches a sixteenth of the calls
     * (sqlite_call_index.h).
     */
    "CREATE TABLE calls_by_ref_recent ("
    " ref TEXT PRIMARY KEY NOT NULL,"
    " call INTEGER NOT NULL) WITHOUT ROWID;",

    /*
     * 7: calls_decision without the allowed calls. An entry of the index
     * lands at the end of its decision's range, and every range but the
     * last is in the middle of the index, where a full page is split by
     * rebalancing it with its siblings rather than by starting a new one:
     * the index cost a quarter of the worker's time in each batch's
     * inserts and of the pages its commit wrote, at cache-hit
     * incoming_call (bench/README.md). Allowed calls are most of a line's
     * calls, and a list of them reads calls_started_ms instead, where
     * nearly every row it passes is one; the rarer decisions, which a
     * list would otherwise look for among all calls, keep their index
     * (the list statements, W_RARE).
     */
    "DROP INDEX calls_decision;"
    "CREATE INDEX calls_decision ON calls (decision, started_ms)"
    " WHERE decision <> 'allow';",

    /*
     * 9: the answer log's mark (answer_log.h). db_id tells the log which
     * database it was written for; `through` is the newest of its records
     * committed here, written by each batch that commits.
     */
    "CREATE TABLE answer_log ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " db_id INTEGER NOT NULL,"
    " through INTEGER NOT NULL);"
    "INSERT INTO answer_log (id, db_id, through) VALUES (1, random(), 0);"};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char sql_bootstrap[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " version INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 0);";

static const char sql_version_get[] =
    "SELECT version FROM schema_version WHERE id = 1";
static const char sql_version_set[] =
    "UPDATE schema_version SET version = ?1 WHERE id = 1";

/*
 * The call's id (?33) is the one sqlite_call_index_find gave, or NULL for
 * a new call, which SQLite then numbers.
 */
#define UPSERT_ID (COL_COUNT + 1)
static const char sql_upsert[] =
    "INSERT INTO calls (id, " CALL_COLUMNS ") VALUES (?33, ?1, ?2, ?3, ?4, "
    "?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
    "?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32) "
    "ON CONFLICT (id) DO UPDATE SET " CALL_UPSERT_SET;

static const char sql_select[] =
    "SELECT " CALL_COLUMNS " FROM calls WHERE id = ?1";

static const char sql_log_mark[] =
    "SELECT db_id, through FROM answer_log WHERE id = 1";
static const char sql_log_through[] =
    "UPDATE answer_log SET through = ?1 WHERE id = 1";

/*
 * list_calls() has one statement per combination of filters and order,
 * each a constant, so that SQLite plans every one with the index that fits
 * instead of a catch-all "(?1 IS NULL OR caller = ?1)" that defeats them.
 * The id breaks ties between calls started in the same millisecond, in the
 * direction of the order, so oldest first is exactly newest first reversed.
 * The limit applies to the order asked for: oldest first with a limit gives
 * the oldest matching calls (the next page starts after the last one).
 */
enum {
  LIST_SINCE = 1,
  LIST_CALLER = 2,
  LIST_DECISION = 4,
  LIST_OLDEST = 8,
  LIST_RARE = 16, /* with LIST_DECISION, without LIST_CALLER: not "allow" */
  LIST_VARIANTS = 32
};

#define LIST_FROM   "SELECT " CALL_COLUMNS " FROM calls"
#define LIST_NEWEST " ORDER BY started_ms DESC, id DESC LIMIT :limit"
#define LIST_OLD    " ORDER BY started_ms ASC, id ASC LIMIT :limit"
#define W_SINCE     "started_ms >= :since"
#define W_DECISION  "decision = :decision"
/* The condition of the partial index calls_decision (migration 7), which
 * SQLite uses only when the statement's text implies it. */
#define W_RARE W_DECISION " AND decision <> 'allow'"

/*
 * A caller's calls (migration 4): those up to call_index.through from
 * calls_by_caller, in its order, with started_ms from the index so that
 * the merge below needs no sort of them, then the pending ones after it,
 * few enough to sort. SQLite merges the two in `order`, which names the
 * id `rid` (a 33rd column, which nothing reads). The extra conditions,
 * `b_where` on the first and `c_where` on the second, start with AND.
 */
#define CALLER_THROUGH "(SELECT through FROM call_index)"
#define BY_CALLER(b_where, c_where, order)                                    \
  "SELECT " CALL_COLUMNS_BEFORE_STARTED                                       \
  "b.at_ms AS started_ms, " CALL_COLUMNS_AFTER_STARTED                        \
  ", b.call AS rid FROM calls_by_caller b CROSS JOIN calls c "                \
  "ON c.id = b.call WHERE b.number = :caller AND c.caller = b.number "        \
  "AND c.started_ms = b.at_ms AND b.call <= " CALLER_THROUGH b_where          \
  " UNION ALL SELECT " CALL_COLUMNS ", id AS rid FROM calls c "               \
  "WHERE c.id > " CALLER_THROUGH " AND c.caller = :caller" c_where order
#define RID_NEWEST " ORDER BY started_ms DESC, rid DESC LIMIT :limit"
#define RID_OLD    " ORDER BY started_ms ASC, rid ASC LIMIT :limit"
#define B_SINCE    " AND b.at_ms >= :since"
#define C_SINCE    " AND c.started_ms >= :since"
#define C_DECISION " AND c.decision = :decision"

/*
 * The eight filters, in the bit order of LIST_SINCE..LIST_DECISION, with
 * `w_decision` as the decision's condition. A caller's calls are few
 * enough to filter by decision as they are read.
 */
#define LIST_FILTERS(order, rid_order, w_decision)                            \
  LIST_FROM order, LIST_FROM " WHERE " W_SINCE order,                         \
      BY_CALLER("", "", rid_order), BY_CALLER(B_SINCE, C_SINCE, rid_order),   \
      LIST_FROM " WHERE " w_decision order,                                   \
      LIST_FROM " WHERE " W_SINCE " AND " w_decision order,                   \
      BY_CALLER(C_DECISION, C_DECISION, rid_order),                           \
      BY_CALLER(B_SINCE C_DECISION, C_SINCE C_DECISION, rid_order)

static const char *const sql_list[LIST_VARIANTS] = {
    LIST_FILTERS(LIST_NEWEST, RID_NEWEST, W_DECISION),
    LIST_FILTERS(LIST_OLD, RID_OLD, W_DECISION),
    LIST_FILTERS(LIST_NEWEST, RID_NEWEST, W_RARE),
    LIST_FILTERS(LIST_OLD, RID_OLD, W_RARE)};

/* The SQL of the screening state (schema version 2). */

static const char sql_list_upsert[] =
    "INSERT INTO lists (" LIST_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT (kind, entry) DO UPDATE SET " LIST_UPSERT_SET;

static const char sql_list_delete[] =
    "DELETE FROM lists WHERE kind = ?1 AND entry = ?2";

/* "Expired" is expires_ms <= now: an entry is gone at its expiry time. */
static const char sql_list_prune[] =
    "DELETE FROM lists WHERE expires_ms <= :now";

static const char sql_list_live[] =
    "SELECT " LIST_COLUMNS " FROM lists WHERE expires_ms IS NULL OR "
    "expires_ms > :now ORDER BY kind, entry";

/* For the tools: expired entries included. 'allow' sorts before 'block'. */
static const char sql_list_all[] =
    "SELECT " LIST_COLUMNS " FROM lists ORDER BY kind, entry";
static const char sql_list_kind[] =
    "SELECT " LIST_COLUMNS " FROM lists WHERE kind = ?1 ORDER BY entry";

static const char sql_number_upsert[] =
    "INSERT INTO numbers (" NUMBER_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, "
    "?6, ?7, ?8, ?9, ?10) ON CONFLICT (number) DO UPDATE "
    "SET " NUMBER_UPSERT_SET;

/*
 * A record is worth keeping with a pass that expires after now, a failed
 * challenge, a score fetched at or after :since, or a live claim. The NULLs of
 * "none" make a comparison NULL, so each is folded to false: the prune below
 * is then exactly the complement of the select, with no row in neither.
 */
#define NUMBER_KEEP                                                           \
  "(IFNULL(pass_expires_ms > :now, 0) OR challenge_failures > 0 OR "          \
  "IFNULL(score_fetched_ms >= :since, 0) OR "                                 \
  "IFNULL(claim_until_ms > :now, 0))"

static const char sql_number_prune[] =
    "DELETE FROM numbers WHERE NOT " NUMBER_KEEP;

static const char sql_number_live[] =
    "SELECT " NUMBER_COLUMNS " FROM numbers WHERE " NUMBER_KEEP
    " ORDER BY number";

/*
 * Calls with no caller ("" when the number was unscorable) count towards
 * no one's velocity, so they are not read. Newest first with the limit, so
 * that a limit drops the oldest (see load_state in store_backend.h).
 */
static const char sql_recent[] =
    "SELECT caller, started_ms FROM calls WHERE started_ms >= :since AND "
    "caller <> '' ORDER BY started_ms DESC, id DESC LIMIT :limit";

/* The statements of forget and of one step of the purge. */
#define FORGET_STMTS 6
#define PURGE_STMTS  4

/*
 * One connection. Touched by one thread at a time (see store_backend.h):
 * the store's worker for a read-write handle, the tool's thread for a
 * read-only one.
 */
struct sqlite_backend {
  sqlite3 *db;
  int readonly;
  /* Runs the WAL checkpoints of `db` off the worker; NULL when read-only
   * or in memory. */
  struct sqlite_checkpointer *checkpointer;
  /* Keeps calls_by_caller and calls_by_ref up; NULL when read-only. */
  struct sqlite_call_index *index;
  sqlite3_stmt *begin; /* NULL in a read-only handle, like the next four */
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  sqlite3_stmt *upsert;
  sqlite3_stmt *select;
  sqlite3_stmt *list_upsert;
  sqlite3_stmt *list_delete;
  sqlite3_stmt *number_upsert;
  sqlite3_stmt *log_through;
  sqlite3_stmt *list[LIST_VARIANTS]; /* prepared on first use, as below */
  /* Used at start and on reload, or by the list tools only. */
  sqlite3_stmt *list_prune;
  sqlite3_stmt *list_live;
  sqlite3_stmt *number_prune;
  sqlite3_stmt *number_live;
  sqlite3_stmt *recent;
  sqlite3_stmt *list_all;
  sqlite3_stmt *list_kind;
  /* forget and the retention purge, prepared on first use. */
  sqlite3_stmt *forget[FORGET_STMTS];
  sqlite3_stmt *purge[PURGE_STMTS];
  char err[SQLITE_ERR_SIZE];
};

/* ---- errors ---------------------------------------------------------- */

static int sqlite_code(int rc)
{
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return VS_ERR_BUSY;
  case SQLITE_NOMEM:
    return VS_ERR_NOMEM;
  default:
    return VS_ERR_IO;
  }
}

/* Keeps "what: SQLite's reason" in the handle and returns the vs_err. */
static int sqlite_fail(struct sqlite_backend *b, int rc, const char *what)
{
  snprintf(b->err, sizeof(b->err), "%s: %s", what, sqlite3_errmsg(b->db));
  return sqlite_code(rc);
}

static int backend_fail(struct sqlite_backend *b, int code, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));

static int backend_fail(struct sqlite_backend *b, int code, const char *fmt,
                        ...)
{
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(b->err, sizeof(b->err), fmt, ap);
  va_end(ap);
  return code;
}

/* ---- opening --------------------------------------------------------- */

/*
 * Creates the directory that holds `path` when it is missing. One level is
 * enough: the default path is var/calls.db under the working directory,
 * and deeper trees are the administrator's to create.
 */
static int make_parent_dir(const char *path, char *err, size_t errlen)
{
  const char *slash = strrchr(path, '/');
  char dir[PATH_MAX];
  size_t len;

  if (!slash || slash == path)
    return VS_OK;
  len = (size_t)(slash - path);
  if (len >= sizeof(dir))
    return vs_fail(err, errlen, VS_ERR_INVAL, "store path is too long: %s",
                   path);
  memcpy(dir, path, len);
  dir[len] = '\0';
  if (mkdir(dir, SQLITE_DIR_MODE) == 0 || errno == EEXIST)
    return VS_OK;
  return vs_fail(err, errlen, VS_ERR_IO, "cannot create directory %s: %s", dir,
                 strerror(errno));
}

/*
 * Creates the database file with our mode before SQLite does, since SQLite
 * would make it world-readable (0644) and the records hold callers' phone
 * numbers. The -wal and -shm files inherit the mode of the database.
 */
static int create_file(const char *path, char *err, size_t errlen)
{
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, SQLITE_DB_MODE);

  if (fd >= 0) {
    close(fd);
    return VS_OK;
  }
  if (errno == EEXIST)
    return VS_OK;
  return vs_fail(err, errlen, VS_ERR_IO, "cannot create %s: %s", path,
                 strerror(errno));
}

/* Finalizes whatever was prepared and closes the connection. */
static void backend_free(struct sqlite_backend *b)
{
  sqlite_checkpointer_stop(b->checkpointer);
  sqlite_call_index_destroy(b->index);
  sqlite3_finalize(b->begin);
  sqlite3_finalize(b->commit);
  sqlite3_finalize(b->rollback);
  sqlite3_finalize(b->upsert);
  sqlite3_finalize(b->select);
  sqlite3_finalize(b->list_upsert);
  sqlite3_finalize(b->list_delete);
  sqlite3_finalize(b->number_upsert);
  sqlite3_finalize(b->log_through);
  for (int i = 0; i < LIST_VARIANTS; i++)
    sqlite3_finalize(b->list[i]);
  sqlite3_finalize(b->list_prune);
  sqlite3_finalize(b->list_live);
  sqlite3_finalize(b->number_prune);
  sqlite3_finalize(b->number_live);
  sqlite3_finalize(b->recent);
  sqlite3_finalize(b->list_all);
  sqlite3_finalize(b->list_kind);
  for (int i = 0; i < FORGET_STMTS; i++)
    sqlite3_finalize(b->forget[i]);
  for (int i = 0; i < PURGE_STMTS; i++)
    sqlite3_finalize(b->purge[i]);
  sqlite3_close_v2(b->db);
  free(b);
}

/*
 * SQLite counts its allocations behind a global mutex, taken on every
 * allocation and free: about 0.2-0.3 us of the store worker's 6 us of
 * user time per cache-hit call (bench/README.md). Nothing here reads the
 * counts. The setting takes only before SQLite initialises, at the
 * process's first connection, and is harmlessly refused after; no other
 * thread uses SQLite before the first store is open.
 */
static pthread_once_t sqlite_config_once = PTHREAD_ONCE_INIT;

static void sqlite_config(void)
{
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/*
 * Allocates a handle and opens its connection with `flags` (read-write or
 * read-only). SQLITE_OPEN_NOMUTEX: one thread uses a connection at a time,
 * so SQLite's per-connection mutex would only cost time.
 */
static int backend_new(const char *path, int flags,
                       struct sqlite_backend **out, char *err, size_t errlen)
{
  struct sqlite_backend *b = calloc(1, sizeof(*b));
  int rc;

  if (!b)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory opening %s",
                   path);
  pthread_once(&sqlite_config_once, sqlite_config);
  rc = sqlite3_open_v2(path, &b->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    vs_fail(err, errlen, sqlite_code(rc), "cannot open %s: %s", path,
            b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc));
    goto fail_free_backend;
  }
  sqlite3_busy_timeout(b->db, SQLITE_BUSY_MS);
  *out = b;
  return VS_OK;

fail_free_backend:
  backend_free(b);
  return sqlite_code(rc);
}

static int exec_sql(struct sqlite_backend *b, const char *sql,
                    const char *what, const char *path, char *err,
                    size_t errlen)
{
  int rc = sqlite3_exec(b->db, sql, NULL, NULL, NULL);

  if (rc == SQLITE_OK)
    return VS_OK;
  return vs_fail(err, errlen, sqlite_code(rc), "%s %s: %s", what, path,
                 sqlite3_errmsg(b->db));
}

static int prepare(struct sqlite_backend *b, const char *sql, unsigned flags,
                   sqlite3_stmt **out)
{
  return sqlite3_prepare_v3(b->db, sql, -1, flags, out, NULL);
}

/* Reads schema_version; its absence is the caller's to interpret. */
static int read_version(struct sqlite_backend *b, int64_t *version)
{
  sqlite3_stmt *s = NULL;
  int rc = prepare(b, sql_version_get, 0, &s);

  if (rc == SQLITE_OK) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      *version = sqlite3_column_int64(s, 0);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      *version = 0;
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(s);
  return rc;
}

static int journal_mode_cb(void *arg, int ncols, char **values, char **names)
{
  char *mode = arg;

  (void)names;
  if (ncols > 0 && values[0])
    call_set(mode, 16, values[0]);
  return 0;
}

/*
 * WAL lets readers (the calls tool) run beside the writer. busy_timeout is
 * set by backend_new(): it covers a second process holding the write lock
 * for a moment. foreign_keys costs nothing today and keeps later migrations
 * honest.
 *
 * The -wal and -shm files are kept when the server closes the database
 * (PERSIST_WAL): a reader that may read them but not write the directory
 * (an operator in the file's group) cannot create them, so without them it
 * could read the records only while the server runs. journal_size_limit
 * bounds what a burst leaves of the WAL on disk (SQLITE_WAL_LIMIT).
 */
static int set_pragmas(struct sqlite_backend *b, const char *path, char *err,
                       size_t errlen)
{
  char mode[16] = "";
  char limit[64];
  int persist = 1;
  int rc;

  rc = sqlite3_exec(b->db, "PRAGMA journal_mode=WAL", journal_mode_cb, mode,
                    NULL);
  if (rc != SQLITE_OK)
    return vs_fail(err, errlen, sqlite_code(rc),
                   "cannot switch %s to WAL mode: %s", path,
                   sqlite3_errmsg(b->db));
  if (strcmp(mode, "wal") != 0)
    log_warn("sqlite database is not in WAL mode, readers will block "
             "writes|path=%s journal_mode=%s",
             path, mode);
  sqlite3_file_control(b->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  snprintf(limit, sizeof(limit), "PRAGMA journal_size_limit=%lld",
           SQLITE_WAL_LIMIT);
  rc = exec_sql(b, limit, "cannot configure", path, err, errlen);
  if (rc)
    return rc;
  rc = exec_sql(b, "PRAGMA synchronous=NORMAL", "cannot configure", path, err,
                errlen);
  if (rc)
    return rc;
  return exec_sql(b, "PRAGMA foreign_keys=ON", "cannot configure", path, err,
                  errlen);
}

/*
 * Brings the schema to SCHEMA_VERSION in one transaction, so that a crash
 * or a second process mid-migration leaves the previous version intact.
 */
static int migrate(struct sqlite_backend *b, const char *path, char *err,
                   size_t errlen)
{
  sqlite3_stmt *set = NULL;
  int64_t version = 0;
  int rc;

  rc = exec_sql(b, "BEGIN IMMEDIATE", "cannot lock", path, err, errlen);
  if (rc)
    return rc;
  rc = exec_sql(b, sql_bootstrap, "cannot create the schema of", path, err,
                errlen);
  if (rc)
    goto fail_rollback;
  rc = read_version(b, &version);
  if (rc != SQLITE_OK) {
    rc = vs_fail(err, errlen, sqlite_code(rc),
                 "cannot read the schema version of %s: %s", path,
                 sqlite3_errmsg(b->db));
    goto fail_rollback;
  }
  if (version < 0 || version > SCHEMA_VERSION) {
    rc = vs_fail(err, errlen, VS_ERR_PROTO,
                 "%s has schema version %lld but this program knows only "
                 "up to %d: use a newer voice-and-score",
                 path, (long long)version, SCHEMA_VERSION);
    goto fail_rollback;
  }
  for (int64_t v = version; v < SCHEMA_VERSION; v++) {
    rc = sqlite3_exec(b->db, migrations[v], NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
      rc = vs_fail(err, errlen, sqlite_code(rc),
                   "migration %lld of %s failed: %s", (long long)v + 1, path,
                   sqlite3_errmsg(b->db));
      goto fail_rollback;
    }
  }
  if (version < SCHEMA_VERSION) {
    rc = prepare(b, sql_version_set, 0, &set);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_int(set, 1, SCHEMA_VERSION);
    if (rc == SQLITE_OK && sqlite3_step(set) != SQLITE_DONE)
      rc = SQLITE_ERROR;
    if (rc != SQLITE_OK) {
      rc = vs_fail(err, errlen, sqlite_code(rc),
                   "cannot record the schema version of %s: %s", path,
                   sqlite3_errmsg(b->db));
      goto fail_finalize_set;
    }
    sqlite3_finalize(set);
  }
  rc = exec_sql(b, "COMMIT", "cannot commit the schema of", path, err, errlen);
  if (rc)
    goto fail_rollback;
  if (version < SCHEMA_VERSION)
    log_info("store schema migrated|path=%s from=%lld to=%d", path,
             (long long)version, SCHEMA_VERSION);
  return VS_OK;

fail_finalize_set:
  sqlite3_finalize(set);
fail_rollback:
  if (!sqlite3_get_autocommit(b->db))
    sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

/*
 * Prepares the statements of the worker once; they are reset and reused
 * for every batch. The column and parameter counts are checked against
 * enum col so that an edit to one list and not the other fails at open
 * instead of writing fields into the wrong columns.
 */
static int prepare_rw(struct sqlite_backend *b, const char *path, char *err,
                      size_t errlen)
{
  const unsigned keep = SQLITE_PREPARE_PERSISTENT;
  int rc;

  rc = prepare(b, "BEGIN IMMEDIATE", keep, &b->begin);
  if (rc == SQLITE_OK)
    rc = prepare(b, "COMMIT", keep, &b->commit);
  if (rc == SQLITE_OK)
    rc = prepare(b, "ROLLBACK", keep, &b->rollback);
  if (rc == SQLITE_OK)
    rc = prepare(b, sql_upsert, keep, &b->upsert);
  if (rc == SQLITE_OK)
    rc = prepare(b, sql_select, keep, &b->select);
  if (rc == SQLITE_OK)
    rc = prepare(b, sql_list_upsert, keep, &b->list_upsert);
  if (rc == SQLITE_OK)
    rc = prepare(b, sql_list_delete, keep, &b->list_delete);
  if (rc == SQLITE_OK)
    rc = prepare(b, sql_number_upsert, keep, &b->number_upsert);
  if (rc == SQLITE_OK)
    rc = prepare(b, sql_log_through, keep, &b->log_through);
  if (rc != SQLITE_OK)
    return vs_fail(err, errlen, sqlite_code(rc),
                   "cannot prepare the statements of %s: %s", path,
                   sqlite3_errmsg(b->db));
  if (sqlite3_bind_parameter_count(b->upsert) != UPSERT_ID ||
      sqlite3_column_count(b->select) != COL_COUNT)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "internal error: the SQL of the calls table does not "
                   "match its %d fields",
                   COL_COUNT);
  if (sqlite3_bind_parameter_count(b->list_upsert) != LCOL_COUNT ||
      sqlite3_bind_parameter_count(b->number_upsert) != NCOL_COUNT)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "internal error: the SQL of the lists or numbers table "
                   "does not match its fields");
  return VS_OK;
}

static int sqlite_open(const char *path, void **handle, char *err,
                       size_t errlen)
{
  struct sqlite_backend *b;
  int rc;

  if (!path || !*path)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store path is empty");
  if (strcmp(path, ":memory:") != 0) {
    rc = make_parent_dir(path, err, errlen);
    if (rc)
      return rc;
    rc = create_file(path, err, errlen);
    if (rc)
      return rc;
  }
  rc = backend_new(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &b, err,
                   errlen);
  if (rc)
    return rc;
  rc = set_pragmas(b, path, err, errlen);
  if (rc)
    goto fail_free_backend;
  rc = migrate(b, path, err, errlen);
  if (rc)
    goto fail_free_backend;
  rc = prepare_rw(b, path, err, errlen);
  if (rc)
    goto fail_free_backend;
  if (sqlite_call_index_create(b->db, NULL, &b->index) != VS_OK) {
    rc = vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory");
    goto fail_free_backend;
  }
  if (strcmp(path, ":memory:") != 0) {
    rc = sqlite_checkpointer_start(b->db, path, &b->checkpointer, err, errlen);
    if (rc)
      goto fail_free_backend;
  }
  *handle = b;
  return VS_OK;

fail_free_backend:
  backend_free(b);
  return rc;
}

/*
 * Opens without SQLITE_OPEN_CREATE and sets no pragma that writes: the
 * journal mode is a property of the file, already WAL, so this connection
 * reads beside a running server without taking its write lock.
 */
static int sqlite_open_readonly(const char *path, void **handle, char *err,
                                size_t errlen)
{
  struct sqlite_backend *b;
  struct stat sb;
  int64_t version = 0;
  int rc;

  if (!path || !*path)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store path is empty");
  if (stat(path, &sb) < 0) {
    if (errno == ENOENT)
      return vs_fail(err, errlen, VS_ERR_NOTFOUND,
                     "no call records yet: %s does not exist", path);
    return vs_fail(err, errlen, VS_ERR_IO, "cannot read %s: %s", path,
                   strerror(errno));
  }
  rc = backend_new(path, SQLITE_OPEN_READONLY, &b, err, errlen);
  if (rc)
    return rc;
  b->readonly = 1;
  rc = read_version(b, &version);
  if (rc != SQLITE_OK) {
    rc = vs_fail(err, errlen, sqlite_code(rc),
                 "cannot read the schema version of %s: %s", path,
                 sqlite3_errmsg(b->db));
    goto fail_free_backend;
  }
  if (version != SCHEMA_VERSION) {
    rc = vs_fail(err, errlen, VS_ERR_PROTO,
                 "%s has schema version %lld but this program reads "
                 "version %d: run the matching voice-and-score",
                 path, (long long)version, SCHEMA_VERSION);
    goto fail_free_backend;
  }
  *handle = b;
  return VS_OK;

fail_free_backend:
  backend_free(b);
  return rc;
}

static void sqlite_close(void *handle)
{
  if (handle)
    backend_free(handle);
}

/* ---- transactions ---------------------------------------------------- */

/* Steps a statement without results and resets it for the next use. */
static int run_stmt(struct sqlite_backend *b, sqlite3_stmt *s,
                    const char *what)
{
  int rc = sqlite3_step(s);
  int ret = VS_OK;

  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    ret = sqlite_fail(b, rc, what);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return ret;
}

static int sqlite_begin(void *handle)
{
  struct sqlite_backend *b = handle;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  /* A transaction left open by a rollback that failed would make every
   * later BEGIN fail; try once more to close it so the worker recovers. */
  if (!sqlite3_get_autocommit(b->db)) {
    sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite_call_index_rolled_back(b->index);
  }
  return run_stmt(b, b->begin, "cannot begin a transaction");
}

static int sqlite_commit(void *handle)
{
  struct sqlite_backend *b = handle;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  return run_stmt(b, b->commit, "cannot commit");
}

/*
 * SQLite rolls back by itself on some errors (a full disk, an I/O error),
 * after which ROLLBACK would fail with "no transaction is active": the
 * autocommit flag says whether there is anything left to undo.
 */
static int sqlite_rollback(void *handle)
{
  struct sqlite_backend *b = handle;

  if (b->readonly)
    return VS_OK;
  /* Even when SQLite already rolled back: the calls are gone either way. */
  sqlite_call_index_rolled_back(b->index);
  if (sqlite3_get_autocommit(b->db))
    return VS_OK;
  return run_stmt(b, b->rollback, "cannot roll back");
}

/* ---- records --------------------------------------------------------- */

static int bind_text(sqlite3_stmt *s, int col, const char *p, size_t size)
{
  /* strnlen: a field the caller forgot to terminate is cut, not overrun. */
  return sqlite3_bind_text(s, col + 1, p, (int)strnlen(p, size),
                           SQLITE_STATIC);
}

/* Binds `v`, or NULL when it holds the field's "none" value. */
static int bind_opt(sqlite3_stmt *s, int col, int64_t v, int64_t none)
{
  if (v == none)
    return sqlite3_bind_null(s, col + 1);
  return sqlite3_bind_int64(s, col + 1, v);
}

static int bind_call(sqlite3_stmt *s, const struct call *c)
{
  const char *base = (const char *)c;
  int rc = SQLITE_OK;

  for (size_t i = 0; rc == SQLITE_OK && i < CALL_TEXT_COLS; i++)
    rc = bind_text(s, call_text_cols[i].col, base + call_text_cols[i].off,
                   call_text_cols[i].size);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(s, COL_STEP + 1, call_step_name(c->step), -1,
                           SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(s, COL_DECISION + 1,
                           call_decision_name(c->decision), -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, COL_STARTED_MS + 1, c->started_ms);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, COL_UPDATED_MS + 1, c->updated_ms);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, COL_ATTEMPTS + 1, c->attempts);
  if (rc == SQLITE_OK)
    rc = bind_opt(s, COL_SCORE, c->score, -1);
  if (rc == SQLITE_OK)
    rc = bind_opt(s, COL_SCORE_MS, c->score_ms, -1);
  if (rc == SQLITE_OK)
    rc = bind_opt(s, COL_DURATION_S, c->duration_s, -1);
  if (rc == SQLITE_OK)
    rc = bind_opt(s, COL_ENDED_MS, c->ended_ms, 0);
  /* A flag: any non-zero is stored as 1, so SQL can test shadow = 1. */
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int(s, COL_SHADOW + 1, c->shadow != 0);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, COL_VELOCITY_COUNT + 1, c->velocity_count);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, COL_CHALLENGE_TRIES + 1, c->challenge_tries);
  return rc;
}

static int64_t column_clamp(sqlite3_stmt *s, int col, int64_t lo, int64_t hi,
                            int64_t if_null)
{
  int64_t v;

  if (sqlite3_column_type(s, col) == SQLITE_NULL)
    return if_null;
  v = sqlite3_column_int64(s, col);
  return v < lo ? lo : v > hi ? hi : v;
}

/*
 * Fills *out from the current row of `s` (a SELECT of CALL_COLUMNS). A row
 * whose step or decision this program does not know is refused rather
 * than turned into a plausible wrong state.
 */
static int row_to_call(struct sqlite_backend *b, sqlite3_stmt *s,
                       struct call *out)
{
  char *base = (char *)out;
  const char *step;
  const char *decision;
  int step_v;
  int decision_v;

  call_init(out, "");
  for (size_t i = 0; i < CALL_TEXT_COLS; i++)
    call_set(base + call_text_cols[i].off, call_text_cols[i].size,
             (const char *)sqlite3_column_text(s, call_text_cols[i].col));
  out->started_ms = sqlite3_column_int64(s, COL_STARTED_MS);
  out->updated_ms = sqlite3_column_int64(s, COL_UPDATED_MS);
  out->attempts = (uint32_t)column_clamp(s, COL_ATTEMPTS, 0, UINT32_MAX, 0);
  out->score = (int32_t)column_clamp(s, COL_SCORE, INT32_MIN, INT32_MAX, -1);
  out->score_ms =
      (int32_t)column_clamp(s, COL_SCORE_MS, INT32_MIN, INT32_MAX, -1);
  out->duration_s =
      (int32_t)column_clamp(s, COL_DURATION_S, INT32_MIN, INT32_MAX, -1);
  out->ended_ms = column_clamp(s, COL_ENDED_MS, INT64_MIN, INT64_MAX, 0);
  out->shadow = sqlite3_column_int64(s, COL_SHADOW) != 0;
  out->velocity_count =
      (int32_t)column_clamp(s, COL_VELOCITY_COUNT, INT32_MIN, INT32_MAX, 0);
  out->challenge_tries =
      (uint32_t)column_clamp(s, COL_CHALLENGE_TRIES, 0, UINT32_MAX, 0);
  step = (const char *)sqlite3_column_text(s, COL_STEP);
  step_v = step ? call_step_parse(step) : -1;
  if (step_v < 0)
    return backend_fail(b, VS_ERR_PROTO, "call %s has an unknown step '%s'",
                        out->ref, step ? step : "");
  out->step = (enum call_step)step_v;
  decision = (const char *)sqlite3_column_text(s, COL_DECISION);
  decision_v = decision ? call_decision_parse(decision) : -1;
  if (decision_v < 0)
    return backend_fail(b, VS_ERR_PROTO,
                        "call %s has an unknown decision '%s'", out->ref,
                        decision ? decision : "");
  out->decision = (enum call_decision)decision_v;
  return VS_OK;
}

static int sqlite_save_call(void *handle, const struct call *call)
{
  struct sqlite_backend *b = handle;
  int64_t id;
  int rc;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  rc =
      sqlite_call_index_find(b->index, call->ref, &id, b->err, sizeof(b->err));
  if (rc)
    return rc;
  rc = bind_call(b->upsert, call);
  if (rc == SQLITE_OK)
    rc = id ? sqlite3_bind_int64(b->upsert, UPSERT_ID, id)
            : sqlite3_bind_null(b->upsert, UPSERT_ID);
  if (rc != SQLITE_OK) {
    rc = sqlite_fail(b, rc, "cannot bind a call record");
    sqlite3_clear_bindings(b->upsert);
    return rc;
  }
  rc = run_stmt(b, b->upsert, "cannot save a call record");
  if (rc == VS_OK && !id)
    sqlite_call_index_added(b->index, call->ref,
                            sqlite3_last_insert_rowid(b->db));
  return rc;
}

static int sqlite_log_mark(void *handle, uint64_t *db_id, uint64_t *through)
{
  struct sqlite_backend *b = handle;
  sqlite3_stmt *s;
  int rc = prepare(b, sql_log_mark, 0, &s);

  if (rc == SQLITE_OK)
    rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) {
    *db_id = (uint64_t)sqlite3_column_int64(s, 0);
    *through = (uint64_t)sqlite3_column_int64(s, 1);
  }
  if (rc == SQLITE_ROW)
    rc = VS_OK;
  else if (rc == SQLITE_DONE)
    rc = backend_fail(b, VS_ERR_PROTO, "the answer log's mark is missing");
  else
    rc = sqlite_fail(b, rc, "cannot read the answer log's mark");
  sqlite3_finalize(s);
  return rc;
}

static int sqlite_set_log_through(void *handle, uint64_t through)
{
  struct sqlite_backend *b = handle;
  int rc = sqlite3_bind_int64(b->log_through, 1, (sqlite3_int64)through);

  if (rc != SQLITE_OK)
    return sqlite_fail(b, rc, "cannot bind the answer log's mark");
  return run_stmt(b, b->log_through, "cannot write the answer log's mark");
}

static int sqlite_load_call(void *handle, const char *ref, struct call *out)
{
  struct sqlite_backend *b = handle;
  int64_t id;
  int ret;
  int rc;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  ret = sqlite_call_index_find(b->index, ref, &id, b->err, sizeof(b->err));
  if (ret)
    return ret;
  if (!id)
    return VS_ERR_NOTFOUND;
  rc = sqlite3_bind_int64(b->select, 1, id);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(b->select);
  if (rc == SQLITE_ROW)
    ret = row_to_call(b, b->select, out);
  else if (rc == SQLITE_DONE)
    ret = VS_ERR_NOTFOUND;
  else
    ret = sqlite_fail(b, rc, "cannot load a call record");
  sqlite3_reset(b->select);
  sqlite3_clear_bindings(b->select);
  return ret;
}

static int bind_named_text(sqlite3_stmt *s, const char *name, const char *v)
{
  int i = sqlite3_bind_parameter_index(s, name);

  return i ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : SQLITE_OK;
}

static int bind_named_int(sqlite3_stmt *s, const char *name, int64_t v)
{
  int i = sqlite3_bind_parameter_index(s, name);

  return i ? sqlite3_bind_int64(s, i, v) : SQLITE_OK;
}

static int sqlite_list_calls(void *handle, const struct store_query *q,
                             store_row_cb cb, void *arg)
{
  struct sqlite_backend *b = handle;
  unsigned variant = 0;
  sqlite3_stmt *s;
  struct call call;
  int ret = VS_OK;
  int rc;

  if (q->since_ms)
    variant |= LIST_SINCE;
  if (q->caller)
    variant |= LIST_CALLER;
  if (q->decision) {
    variant |= LIST_DECISION;
    /* Only where the statement differs: a caller's lists filter as they
     * read. */
    if (!q->caller &&
        strcmp(q->decision, call_decision_name(CALL_DECISION_ALLOW)) != 0)
      variant |= LIST_RARE;
  }
  if (q->oldest_first)
    variant |= LIST_OLDEST;
  if (!b->list[variant]) {
    rc = prepare(b, sql_list[variant], SQLITE_PREPARE_PERSISTENT,
                 &b->list[variant]);
    if (rc != SQLITE_OK)
      return sqlite_fail(b, rc, "cannot prepare the list of calls");
  }
  s = b->list[variant];
  rc = bind_named_int(s, ":limit", q->limit ? (int64_t)q->limit : -1);
  if (rc == SQLITE_OK)
    rc = bind_named_int(s, ":since", q->since_ms);
  if (rc == SQLITE_OK && q->caller)
    rc = bind_named_text(s, ":caller", q->caller);
  if (rc == SQLITE_OK && q->decision)
    rc = bind_named_text(s, ":decision", q->decision);
  if (rc != SQLITE_OK) {
    ret = sqlite_fail(b, rc, "cannot bind the list of calls");
    goto reset;
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ret = row_to_call(b, s, &call);
    if (ret || cb(arg, &call))
      goto reset;
  }
  if (rc != SQLITE_DONE)
    ret = sqlite_fail(b, rc, "cannot list calls");

reset:
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return ret;
}

/* ---- lists and numbers ---------------------------------------------- */

/*
 * Prepares a statement that only some handles need (the state load, the
 * list tools) on its first use, and keeps it for the next.
 */
static int lazy_prepare(struct sqlite_backend *b, const char *sql,
                        sqlite3_stmt **s, const char *what)
{
  int rc;

  if (*s)
    return VS_OK;
  rc = prepare(b, sql, SQLITE_PREPARE_PERSISTENT, s);
  if (rc != SQLITE_OK)
    return sqlite_fail(b, rc, what);
  return VS_OK;
}

static int bind_list_entry(sqlite3_stmt *s, const struct list_entry *e)
{
  int rc = sqlite3_bind_text(s, LCOL_KIND + 1, list_kind_name(e->kind), -1,
                             SQLITE_STATIC);

  if (rc == SQLITE_OK)
    rc = bind_text(s, LCOL_ENTRY, e->entry, sizeof(e->entry));
  if (rc == SQLITE_OK)
    rc = bind_text(s, LCOL_NOTE, e->note, sizeof(e->note));
  if (rc == SQLITE_OK)
    rc = bind_text(s, LCOL_SOURCE, e->source, sizeof(e->source));
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, LCOL_CREATED_MS + 1, e->created_ms);
  if (rc == SQLITE_OK)
    rc = bind_opt(s, LCOL_EXPIRES_MS, e->expires_ms, 0);
  return rc;
}

/* Fills *out from a row of LIST_COLUMNS; an unknown kind is refused. */
static int row_to_list_entry(struct sqlite_backend *b, sqlite3_stmt *s,
                             struct list_entry *out)
{
  const char *kind = (const char *)sqlite3_column_text(s, LCOL_KIND);
  int kind_v = list_kind_parse(kind);

  memset(out, 0, sizeof(*out));
  call_set(out->entry, sizeof(out->entry),
           (const char *)sqlite3_column_text(s, LCOL_ENTRY));
  call_set(out->note, sizeof(out->note),
           (const char *)sqlite3_column_text(s, LCOL_NOTE));
  call_set(out->source, sizeof(out->source),
           (const char *)sqlite3_column_text(s, LCOL_SOURCE));
  out->created_ms = sqlite3_column_int64(s, LCOL_CREATED_MS);
  out->expires_ms = column_clamp(s, LCOL_EXPIRES_MS, INT64_MIN, INT64_MAX, 0);
  if (kind_v < 0)
    return backend_fail(b, VS_ERR_PROTO,
                        "list entry %s has an unknown kind '%s'", out->entry,
                        kind ? kind : "");
  out->kind = (enum list_kind)kind_v;
  return VS_OK;
}

static int bind_number(sqlite3_stmt *s, const struct number_record *r)
{
  int rc = bind_text(s, NCOL_NUMBER, r->number, sizeof(r->number));

  if (rc == SQLITE_OK)
    rc = bind_opt(s, NCOL_PASS_EXPIRES_MS, r->pass_expires_ms, 0);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(s, NCOL_CHALLENGE_FAILURES + 1,
                            r->challenge_failures);
  if (rc == SQLITE_OK)
    rc = bind_opt(s, NCOL_LAST_FAILURE_MS, r->last_failure_ms, 0);
  if (rc == SQLITE_OK)
    rc = bind_opt(s, NCOL_SCORE_FETCHED_MS, r->score_fetched_ms, 0);
  if (rc == SQLITE_OK)
    rc = bind_opt(s, NCOL_SCORE, r->score, -1);
  if (rc == SQLITE_OK)
    rc = bind_text(s, NCOL_RISK_LEVEL, r->risk_level, sizeof(r->risk_level));
  if (rc == SQLITE_OK)
    rc = bind_text(s, NCOL_RECOMMENDATION, r->recommendation,
                   sizeof(r->recommendation));
  if (rc == SQLITE_OK)
    rc = bind_text(s, NCOL_PHONE_TYPE, r->phone_type, sizeof(r->phone_type));
  if (rc == SQLITE_OK)
    rc = bind_text(s, NCOL_SCORE_REF, r->score_ref, sizeof(r->score_ref));
  return rc;
}

static void row_to_number(sqlite3_stmt *s, struct number_record *out)
{
  number_record_init(out, (const char *)sqlite3_column_text(s, NCOL_NUMBER));
  out->pass_expires_ms =
      column_clamp(s, NCOL_PASS_EXPIRES_MS, INT64_MIN, INT64_MAX, 0);
  out->challenge_failures =
      (uint32_t)column_clamp(s, NCOL_CHALLENGE_FAILURES, 0, UINT32_MAX, 0);
  out->last_failure_ms =
      column_clamp(s, NCOL_LAST_FAILURE_MS, INT64_MIN, INT64_MAX, 0);
  out->score_fetched_ms =
      column_clamp(s, NCOL_SCORE_FETCHED_MS, INT64_MIN, INT64_MAX, 0);
  out->score = (int32_t)column_clamp(s, NCOL_SCORE, INT32_MIN, INT32_MAX, -1);
  call_set(out->risk_level, sizeof(out->risk_level),
           (const char *)sqlite3_column_text(s, NCOL_RISK_LEVEL));
  call_set(out->recommendation, sizeof(out->recommendation),
           (const char *)sqlite3_column_text(s, NCOL_RECOMMENDATION));
  call_set(out->phone_type, sizeof(out->phone_type),
           (const char *)sqlite3_column_text(s, NCOL_PHONE_TYPE));
  call_set(out->score_ref, sizeof(out->score_ref),
           (const char *)sqlite3_column_text(s, NCOL_SCORE_REF));
}

static int sqlite_save_list(void *handle, const struct list_entry *e)
{
  struct sqlite_backend *b = handle;
  int rc;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  rc = bind_list_entry(b->list_upsert, e);
  if (rc != SQLITE_OK) {
    rc = sqlite_fail(b, rc, "cannot bind a list entry");
    sqlite3_clear_bindings(b->list_upsert);
    return rc;
  }
  return run_stmt(b, b->list_upsert, "cannot save a list entry");
}

static int sqlite_delete_list(void *handle, enum list_kind kind,
                              const char *entry)
{
  struct sqlite_backend *b = handle;
  sqlite3_stmt *s = b->list_delete;
  int rc;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  rc = sqlite3_bind_text(s, 1, list_kind_name(kind), -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(s, 2, entry, (int)strnlen(entry, LIST_ENTRY_SIZE),
                           SQLITE_STATIC);
  if (rc != SQLITE_OK) {
    rc = sqlite_fail(b, rc, "cannot bind a list entry");
    sqlite3_clear_bindings(s);
    return rc;
  }
  rc = run_stmt(b, s, "cannot delete a list entry");
  if (rc == VS_OK && sqlite3_changes(b->db) == 0)
    return backend_fail(b, VS_ERR_NOTFOUND, "no %s list entry '%.*s'",
                        list_kind_name(kind), LIST_ENTRY_SIZE, entry);
  return rc;
}

static int sqlite_save_number(void *handle, const struct number_record *r)
{
  struct sqlite_backend *b = handle;
  int rc;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  rc = bind_number(b->number_upsert, r);
  if (rc != SQLITE_OK) {
    rc = sqlite_fail(b, rc, "cannot bind a number record");
    sqlite3_clear_bindings(b->number_upsert);
    return rc;
  }
  return run_stmt(b, b->number_upsert, "cannot save a number record");
}

/* Binds :now and :since where a statement has them. */
static int bind_state(sqlite3_stmt *s, int64_t now_ms, int64_t since_ms)
{
  int rc = bind_named_int(s, ":now", now_ms);

  if (rc == SQLITE_OK)
    rc = bind_named_int(s, ":since", since_ms);
  return rc;
}

/* Runs a prune (a DELETE with :now and :since) and resets it. */
static int run_prune(struct sqlite_backend *b, sqlite3_stmt *s, int64_t now_ms,
                     int64_t since_ms, const char *what)
{
  int rc = bind_state(s, now_ms, since_ms);

  if (rc != SQLITE_OK) {
    rc = sqlite_fail(b, rc, what);
    sqlite3_clear_bindings(s);
    return rc;
  }
  return run_stmt(b, s, what);
}

/*
 * The three reads of load_state(), each to the end of its rows or to the
 * first error, a sink's included. The statement is reset either way.
 */
static int read_live_lists(struct sqlite_backend *b, int64_t now_ms,
                           const struct store_state_sink *sink)
{
  sqlite3_stmt *s = b->list_live;
  struct list_entry e;
  int ret = VS_OK;
  int rc = bind_state(s, now_ms, 0);

  if (rc != SQLITE_OK) {
    ret = sqlite_fail(b, rc, "cannot bind the read of the lists");
    goto reset;
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ret = row_to_list_entry(b, s, &e);
    if (ret == VS_OK)
      ret = sink->list(sink->arg, &e);
    if (ret)
      goto reset;
  }
  if (rc != SQLITE_DONE)
    ret = sqlite_fail(b, rc, "cannot read the lists");

reset:
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return ret;
}

static int read_live_numbers(struct sqlite_backend *b,
                             const struct store_state_query *q,
                             const struct store_state_sink *sink)
{
  sqlite3_stmt *s = b->number_live;
  struct number_record r;
  int ret = VS_OK;
  int rc = bind_state(s, q->now_ms, q->score_since_ms);

  if (rc != SQLITE_OK) {
    ret = sqlite_fail(b, rc, "cannot bind the read of the numbers");
    goto reset;
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    row_to_number(s, &r);
    ret = sink->number(sink->arg, &r);
    if (ret)
      goto reset;
  }
  if (rc != SQLITE_DONE)
    ret = sqlite_fail(b, rc, "cannot read the numbers");

reset:
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return ret;
}

static int read_recent(struct sqlite_backend *b,
                       const struct store_state_query *q,
                       const struct store_state_sink *sink)
{
  sqlite3_stmt *s = b->recent;
  char caller[CALL_NUMBER_SIZE];
  int ret = VS_OK;
  int rc;

  if (q->max_recent == 0)
    return VS_OK;
  rc = bind_named_int(s, ":since", q->recent_since_ms);
  if (rc == SQLITE_OK)
    rc = bind_named_int(s, ":limit",
                        q->max_recent > INT64_MAX ? INT64_MAX
                                                  : (int64_t)q->max_recent);
  if (rc != SQLITE_OK) {
    ret = sqlite_fail(b, rc, "cannot bind the read of recent calls");
    goto reset;
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    call_set(caller, sizeof(caller), (const char *)sqlite3_column_text(s, 0));
    ret = sink->recent(sink->arg, caller, sqlite3_column_int64(s, 1));
    if (ret)
      goto reset;
  }
  if (rc != SQLITE_DONE)
    ret = sqlite_fail(b, rc, "cannot read recent calls");

reset:
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return ret;
}

static int sqlite_load_state(void *handle, const struct store_state_query *q,
                             const struct store_state_sink *sink)
{
  struct sqlite_backend *b = handle;
  int rc;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  rc = lazy_prepare(b, sql_list_prune, &b->list_prune,
                    "cannot prepare the pruning of the lists");
  if (rc == VS_OK)
    rc = lazy_prepare(b, sql_number_prune, &b->number_prune,
                      "cannot prepare the pruning of the numbers");
  if (rc == VS_OK)
    rc = lazy_prepare(b, sql_list_live, &b->list_live,
                      "cannot prepare the read of the lists");
  if (rc == VS_OK)
    rc = lazy_prepare(b, sql_number_live, &b->number_live,
                      "cannot prepare the read of the numbers");
  if (rc == VS_OK)
    rc = lazy_prepare(b, sql_recent, &b->recent,
                      "cannot prepare the read of recent calls");
  /* Pruned first, so that the reads return only what is left. */
  if (rc == VS_OK)
    rc = run_prune(b, b->list_prune, q->now_ms, 0,
                   "cannot delete expired list entries");
  if (rc == VS_OK && q->prune_numbers)
    rc = run_prune(b, b->number_prune, q->now_ms, q->score_since_ms,
                   "cannot delete stale number records");
  if (rc == VS_OK)
    rc = read_live_lists(b, q->now_ms, sink);
  if (rc == VS_OK && !q->lists_only)
    rc = read_live_numbers(b, q, sink);
  if (rc == VS_OK && !q->lists_only)
    rc = read_recent(b, q, sink);
  return rc;
}

static int sqlite_read_lists(void *handle, int kind, store_list_cb cb,
                             void *arg)
{
  struct sqlite_backend *b = handle;
  struct list_entry e;
  sqlite3_stmt *s;
  int ret = VS_OK;
  int rc;

  if (kind < 0) {
    ret = lazy_prepare(b, sql_list_all, &b->list_all,
                       "cannot prepare the read of the lists");
    s = b->list_all;
  } else {
    ret = lazy_prepare(b, sql_list_kind, &b->list_kind,
                       "cannot prepare the read of a list");
    s = b->list_kind;
  }
  if (ret)
    return ret;
  if (kind >= 0) {
    rc = sqlite3_bind_text(s, 1, list_kind_name((enum list_kind)kind), -1,
                           SQLITE_STATIC);
    if (rc != SQLITE_OK) {
      ret = sqlite_fail(b, rc, "cannot bind the read of a list");
      goto reset;
    }
  }
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ret = row_to_list_entry(b, s, &e);
    if (ret || cb(arg, &e))
      goto reset;
  }
  if (rc != SQLITE_DONE)
    ret = sqlite_fail(b, rc, "cannot read the lists");

reset:
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return ret;
}

static const char *sqlite_errmsg(void *handle)
{
  struct sqlite_backend *b = handle;

  return b->err[0] ? b->err : "no error";
}

/* ---- forget and retention ------------------------------------------ */

/*
 * The caller's calls, found as a list of them finds them (BY_CALLER):
 * first their entries by reference, then the calls, then the entries by
 * caller that found them. The caller is checked again on the row, so that
 * an entry naming another call cannot delete it.
 */
#define FORGET_CALLS                                                          \
  "SELECT call FROM calls_by_caller WHERE number = ?1 UNION ALL SELECT id "   \
  "FROM calls WHERE id > " CALLER_THROUGH " AND caller = ?1"
static const char *const sql_forget[FORGET_STMTS] = {
    "DELETE FROM calls_by_ref WHERE ref IN (SELECT ref FROM calls WHERE id "
    "IN (" FORGET_CALLS ") AND caller = ?1)",
    "DELETE FROM calls_by_ref_recent WHERE ref IN (SELECT ref FROM calls "
    "WHERE id IN (" FORGET_CALLS ") AND caller = ?1)",
    "DELETE FROM calls WHERE id IN (" FORGET_CALLS ") AND caller = ?1",
    "DELETE FROM calls_by_caller WHERE number = ?1",
    "DELETE FROM lists WHERE entry = ?1",
    "DELETE FROM numbers WHERE number = ?1",
};

static int sqlite_forget_number(void *handle, const char *number,
                                struct store_forget_counts *out)
{
  struct sqlite_backend *b = handle;
  uint64_t *counts[FORGET_STMTS] = {
      NULL, NULL, &out->calls, NULL, &out->list_entries, &out->numbers};
  int rc = VS_OK;

  memset(out, 0, sizeof(*out));
  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  for (int i = 0; rc == VS_OK && i < FORGET_STMTS; i++) {
    rc = lazy_prepare(b, sql_forget[i], &b->forget[i],
                      "cannot prepare forgetting a number");
    if (rc == VS_OK &&
        sqlite3_bind_text(b->forget[i], 1, number,
                          (int)strnlen(number, CALL_NUMBER_SIZE),
                          SQLITE_STATIC) != SQLITE_OK)
      rc = backend_fail(b, VS_ERR_INVAL, "cannot bind a number");
    if (rc == VS_OK)
      rc = run_stmt(b, b->forget[i], "cannot forget a number");
    if (rc == VS_OK && counts[i])
      *counts[i] = (uint64_t)sqlite3_changes(b->db);
  }
  if (rc == VS_OK)
    rc = sqlite_call_index_deleted(b->index, b->err, sizeof(b->err));
  return rc;
}

/*
 * The index entries of the calls the purge deletes next, then the calls.
 * The oldest first, so that a purge cut short by `max` resumes in order;
 * the id breaks ties of started_ms, so that all four select the same
 * calls.
 */
#define PURGE_NEXT                                                            \
  "FROM calls WHERE started_ms < ?1 ORDER BY started_ms, id LIMIT ?2"
static const char *const sql_purge[PURGE_STMTS] = {
    "DELETE FROM calls_by_caller WHERE (number, at_ms, call) IN (SELECT "
    "caller, started_ms, id " PURGE_NEXT ")",
    "DELETE FROM calls_by_ref WHERE ref IN (SELECT ref " PURGE_NEXT ")",
    "DELETE FROM calls_by_ref_recent WHERE ref IN (SELECT ref " PURGE_NEXT ")",
    "DELETE FROM calls WHERE id IN (SELECT id " PURGE_NEXT ")"};

static int sqlite_purge_calls(void *handle, int64_t before_ms, unsigned max,
                              uint64_t *deleted)
{
  struct sqlite_backend *b = handle;
  int rc = VS_OK;

  *deleted = 0;
  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  for (int i = 0; rc == VS_OK && i < PURGE_STMTS; i++) {
    rc = lazy_prepare(b, sql_purge[i], &b->purge[i],
                      "cannot prepare the purge");
    if (rc == VS_OK &&
        (sqlite3_bind_int64(b->purge[i], 1, before_ms) != SQLITE_OK ||
         sqlite3_bind_int64(b->purge[i], 2, max) != SQLITE_OK))
      rc = backend_fail(b, VS_ERR_INVAL, "cannot bind the purge");
    if (rc == VS_OK)
      rc = run_stmt(b, b->purge[i], "cannot delete old call records");
  }
  if (rc == VS_OK)
    *deleted = (uint64_t)sqlite3_changes(b->db);
  if (rc == VS_OK && *deleted)
    rc = sqlite_call_index_deleted(b->index, b->err, sizeof(b->err));
  return rc;
}

static int sqlite_maintain(void *handle, int64_t now_ms, int *due)
{
  struct sqlite_backend *b = handle;

  *due = 0;
  if (b->readonly)
    return VS_OK;
  return sqlite_call_index_step(b->index, now_ms, due, b->err, sizeof(b->err));
}

const struct store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .shared = 0,
    .open = sqlite_open,
    .open_readonly = sqlite_open_readonly,
    .close = sqlite_close,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .save_call = sqlite_save_call,
    .load_call = sqlite_load_call,
    .log_mark = sqlite_log_mark,
    .set_log_through = sqlite_set_log_through,
    .list_calls = sqlite_list_calls,
    .save_list = sqlite_save_list,
    .save_number = sqlite_save_number,
    .delete_list = sqlite_delete_list,
    .load_state = sqlite_load_state,
    .read_lists = sqlite_read_lists,
    .forget_number = sqlite_forget_number,
    .purge_calls = sqlite_purge_calls,
    .visit_number = NULL,
    .maintain = sqlite_maintain,
    .errmsg = sqlite_errmsg,
};
