/*
 * The PostgreSQL backend (see store_backend.h and store_postgres.h).
 *
 * Tables. The same tables and columns as the SQLite backend (the column
 * lists are shared in store_schema.h): `calls`, `lists`, `numbers` and,
 * from schema version 3, `number_calls` (velocity counted in the database)
 * and the claim columns of `numbers` (one Score lookup per number across
 * instances). Every integer column is a BIGINT, as SQLite's INTEGER is 64
 * bits. Text is sorted with COLLATE "C", which is SQLite's byte order.
 *
 * Schema. migrations[] is applied by open() in one transaction that first
 * takes a transaction-scoped advisory lock, so that instances starting
 * together migrate one after the other: the first applies, the others
 * find the schema current. A read-only open refuses another version.
 *
 * Connection. One blocking connection per handle, on the store's worker
 * thread: a statement costs a round trip on the worker, never on the
 * loop. When the connection breaks, the batch fails and begin() connects
 * again: at once for the first try (a server restarted while we were idle
 * costs nothing), then with exponential backoff from PG_BACKOFF_MIN_MS to
 * PG_BACKOFF_MAX_MS, failing fast in between so that queued work is
 * answered (with an error) instead of waiting on a dead server.
 *
 * Statements are prepared on first use on each connection and run with
 * PQexecPrepared: values are always parameters, never SQL text. Text
 * parameters are copied, cut at their field's size and made valid UTF-8
 * first, since PostgreSQL refuses a whole statement (and so the batch) for
 * one bad byte that SQLite would have stored.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "../util/err.h"
#include "../util/log.h"
#include "call.h"
#include "records.h"
#include "store_postgres.h"
#include "store_schema.h"

#define PG_ERR_SIZE       320
#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 5000
#define PG_MAX_PARAMS     COL_COUNT
#define PG_ARENA_SIZE     2048 /* text parameters of one statement */
#define PG_MIGRATE_LOCK   "7603057286436758387" /* "voice-and-score" */
#define PG_OID_INT8       20
#define PG_OID_TEXT       25

/*
 * The schema, one migration per entry, the same tables and columns as
 * store_sqlite.c's migrations (see there for why each column is what it
 * is). Never edit an entry: add one.
 */
static const char *const migrations[] = {
    /* 1: the call records. */
    "CREATE TABLE calls ("
    " ref TEXT PRIMARY KEY NOT NULL,"
    " caller_raw TEXT NOT NULL DEFAULT '',"
    " caller TEXT NOT NULL DEFAULT '',"
    " to_number TEXT NOT NULL DEFAULT '',"
    " started_ms BIGINT NOT NULL DEFAULT 0,"
    " updated_ms BIGINT NOT NULL DEFAULT 0,"
    " step TEXT NOT NULL DEFAULT 'new',"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " decision TEXT NOT NULL DEFAULT 'none',"
    " reason TEXT NOT NULL DEFAULT '',"
    " score BIGINT,"
    " risk_level TEXT NOT NULL DEFAULT '',"
    " recommendation TEXT NOT NULL DEFAULT '',"
    " phone_type TEXT NOT NULL DEFAULT '',"
    " score_ref TEXT NOT NULL DEFAULT '',"
    " score_error TEXT NOT NULL DEFAULT '',"
    " score_ms BIGINT,"
    " digits TEXT NOT NULL DEFAULT '',"
    " department TEXT NOT NULL DEFAULT '',"
    " dialled TEXT NOT NULL DEFAULT '',"
    " dial_status TEXT NOT NULL DEFAULT '',"
    " status TEXT NOT NULL DEFAULT '',"
    " duration_s BIGINT,"
    " ended_ms BIGINT);"
    "CREATE INDEX calls_started_ms ON calls (started_ms);"
    "CREATE INDEX calls_caller ON calls (caller, started_ms);"
    "CREATE INDEX calls_decision ON calls (decision, started_ms);",

    /* 2: the screening pipeline. */
    "ALTER TABLE calls ADD COLUMN trace TEXT NOT NULL DEFAULT '',"
    " ADD COLUMN policy_version TEXT NOT NULL DEFAULT '',"
    " ADD COLUMN shadow BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN velocity_count BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN score_source TEXT NOT NULL DEFAULT '',"
    " ADD COLUMN challenge_digit TEXT NOT NULL DEFAULT '',"
    " ADD COLUMN challenge_tries BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN challenge_result TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE lists ("
    " kind TEXT NOT NULL CHECK (kind IN ('allow', 'block')),"
    " entry TEXT NOT NULL,"
    " note TEXT NOT NULL DEFAULT '',"
    " source TEXT NOT NULL DEFAULT '',"
    " created_ms BIGINT NOT NULL DEFAULT 0,"
    " expires_ms BIGINT,"
    " PRIMARY KEY (kind, entry));"
    "CREATE INDEX lists_expires_ms ON lists (expires_ms)"
    " WHERE expires_ms IS NOT NULL;"
    "CREATE TABLE numbers ("
    " number TEXT PRIMARY KEY NOT NULL,"
    " pass_expires_ms BIGINT,"
    " challenge_failures BIGINT NOT NULL DEFAULT 0,"
    " last_failure_ms BIGINT,"
    " score_fetched_ms BIGINT,"
    " score BIGINT,"
    " risk_level TEXT NOT NULL DEFAULT '',"
    " recommendation TEXT NOT NULL DEFAULT '',"
    " phone_type TEXT NOT NULL DEFAULT '',"
    " score_ref TEXT NOT NULL DEFAULT '');",

    /* 3: the shared schema (velocity rows, lookup claims). */
    "ALTER TABLE numbers ADD COLUMN claim_until_ms BIGINT,"
    " ADD COLUMN claim_by TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE number_calls ("
    " number TEXT NOT NULL,"
    " started_ms BIGINT NOT NULL);"
    "CREATE INDEX number_calls_number ON number_calls (number, started_ms);"
    "CREATE INDEX number_calls_started_ms ON number_calls (started_ms);"};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- statements ------------------------------------------------------ */

enum stmt {
  S_CALL_UPSERT,
  S_CALL_SELECT,
  S_LIST_UPSERT,
  S_LIST_DELETE,
  S_NUMBER_UPSERT,
  S_LIST_PRUNE,
  S_NUMBER_PRUNE,
  S_VELOCITY_PRUNE,
  S_LIST_LIVE,
  S_NUMBER_LIVE,
  S_RECENT,
  S_LIST_ALL,
  S_LIST_KIND,
  S_FORGET_CALLS,
  S_FORGET_LISTS,
  S_FORGET_NUMBER,
  S_FORGET_VELOCITY,
  S_PURGE,
  S_VISIT_CLAIM,
  S_VISIT_COUNT,
  S_SCORE,
  S_RELEASE,
  S_PASS,
  S_FAIL,
  S_FAIL_RESET,
  S_VERSION,
  S_LOCK_NUMBERS,
  S_LIST_CALLS, /* the first of 16 variants, see list_variant() */
  S_COUNT = S_LIST_CALLS + 16
};

_Static_assert(S_COUNT <= 64, "prepared statements are one bit each");

/* A number record worth keeping; $1 now, $2 the oldest fresh score. */
#define PG_NUMBER_KEEP                                                        \
  "(COALESCE(pass_expires_ms > $1, false) OR challenge_failures > 0 OR "      \
  "COALESCE(score_fetched_ms >= $2, false) OR "                               \
  "COALESCE(claim_until_ms > $1, false))"

/*
 * A visit may claim the lookup: claims are on ($4 > 0), and the row has no
 * score fetched at or after $3 and no claim that outlives now ($2).
 */
#define PG_CLAIMABLE                                                          \
  "($4 > 0 AND NOT COALESCE(n.score_fetched_ms >= $3, false) AND "            \
  "NOT COALESCE(n.claim_until_ms > $2, false))"

/* list_calls(): the same filters and orders as store_sqlite.c's. */
#define PG_LIST_FROM   "SELECT " CALL_COLUMNS " FROM calls"
#define PG_LIST_NEWEST " ORDER BY started_ms DESC, ref DESC LIMIT $1"
#define PG_LIST_OLD    " ORDER BY started_ms ASC, ref ASC LIMIT $1"
#define PG_W_SINCE     "started_ms >= $2"
#define PG_W_CALLER    "caller = $3"
#define PG_W_DECISION  "decision = $4"
#define PG_LIST_FILTERS(o)                                                    \
  CALL_LIST_VARIANTS(PG_LIST_FROM, PG_W_SINCE, PG_W_CALLER, PG_W_DECISION, o)

static const char *const sql[S_COUNT] = {
    [S_CALL_UPSERT] =
        "INSERT INTO calls (" CALL_COLUMNS ") VALUES ($1, $2, $3, $4, $5, "
        "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, "
        "$20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32) "
        "ON CONFLICT (ref) DO UPDATE SET " CALL_UPSERT_SET,
    [S_CALL_SELECT] = "SELECT " CALL_COLUMNS " FROM calls WHERE ref = $1",
    [S_LIST_UPSERT] =
        "INSERT INTO lists (" LIST_COLUMNS ") VALUES ($1, $2, $3, $4, $5, "
        "$6) ON CONFLICT (kind, entry) DO UPDATE SET " LIST_UPSERT_SET,
    [S_LIST_DELETE] = "DELETE FROM lists WHERE kind = $1 AND entry = $2",
    [S_NUMBER_UPSERT] =
        "INSERT INTO numbers (" NUMBER_COLUMNS ") VALUES ($1, $2, $3, $4, "
        "$5, $6, $7, $8, $9, $10) ON CONFLICT (number) DO UPDATE SET "
        "" NUMBER_UPSERT_SET,
    [S_LIST_PRUNE] = "DELETE FROM lists WHERE expires_ms <= $1",
    [S_NUMBER_PRUNE] = "DELETE FROM numbers WHERE NOT " PG_NUMBER_KEEP,
    [S_VELOCITY_PRUNE] = "DELETE FROM number_calls WHERE started_ms < $1",
    [S_LIST_LIVE] = "SELECT " LIST_COLUMNS " FROM lists WHERE expires_ms IS "
                    "NULL OR expires_ms > $1 ORDER BY kind, entry "
                    "COLLATE \"C\"",
    [S_NUMBER_LIVE] =
        "SELECT " NUMBER_COLUMNS " FROM numbers WHERE " PG_NUMBER_KEEP
        " ORDER BY number COLLATE \"C\"",
    [S_RECENT] = "SELECT caller, started_ms FROM calls WHERE started_ms >= "
                 "$1 AND caller <> '' ORDER BY started_ms DESC, ref DESC "
                 "LIMIT $2",
    [S_LIST_ALL] = "SELECT " LIST_COLUMNS " FROM lists ORDER BY kind, entry "
                   "COLLATE \"C\"",
    [S_LIST_KIND] = "SELECT " LIST_COLUMNS " FROM lists WHERE kind = $1 "
                    "ORDER BY entry COLLATE \"C\"",
    [S_FORGET_CALLS] = "DELETE FROM calls WHERE caller = $1",
    [S_FORGET_LISTS] = "DELETE FROM lists WHERE entry = $1",
    [S_FORGET_NUMBER] = "DELETE FROM numbers WHERE number = $1",
    [S_FORGET_VELOCITY] = "DELETE FROM number_calls WHERE number = $1",
    [S_PURGE] = "DELETE FROM calls WHERE ref IN (SELECT ref FROM calls "
                "WHERE started_ms < $1 ORDER BY started_ms LIMIT $2)",
    /* $1 number, $2 now, $3 oldest fresh score, $4 claim_ms, $5 token. */
    [S_VISIT_CLAIM] =
        "INSERT INTO numbers AS n (number, claim_until_ms, claim_by) "
        "VALUES ($1, CASE WHEN $4::bigint > 0 THEN $2::bigint + $4 END, "
        "CASE WHEN $4 > 0 THEN $5::text ELSE '' END) "
        "ON CONFLICT (number) DO UPDATE SET "
        "claim_until_ms = CASE WHEN " PG_CLAIMABLE " THEN $2 + $4 "
        "ELSE n.claim_until_ms END, "
        "claim_by = CASE WHEN " PG_CLAIMABLE " THEN $5 ELSE n.claim_by END "
        "RETURNING " NUMBER_COLUMNS ", claim_by = $5",
    /* $1 number, $2 now, $3 window: run with the row lock held. */
    [S_VISIT_COUNT] =
        "WITH added AS (INSERT INTO number_calls (number, started_ms) "
        "VALUES ($1, $2::bigint)), gone AS (DELETE FROM number_calls WHERE "
        "number = $1 AND started_ms <= $2 - $3::bigint) "
        "SELECT count(*) + 1 FROM number_calls WHERE number = $1 AND "
        "started_ms > $2 - $3",
    [S_SCORE] =
        "INSERT INTO numbers AS n (number, score_fetched_ms, score, "
        "risk_level, recommendation, phone_type, score_ref) VALUES ($1, $2, "
        "$3, $4, $5, $6, $7) ON CONFLICT (number) DO UPDATE SET "
        "score_fetched_ms = excluded.score_fetched_ms, "
        "score = excluded.score, risk_level = excluded.risk_level, "
        "recommendation = excluded.recommendation, "
        "phone_type = excluded.phone_type, score_ref = excluded.score_ref, "
        "claim_until_ms = CASE WHEN n.claim_by = $8 THEN NULL "
        "ELSE n.claim_until_ms END, "
        "claim_by = CASE WHEN n.claim_by = $8 THEN '' ELSE n.claim_by END",
    [S_RELEASE] = "UPDATE numbers SET claim_until_ms = NULL, claim_by = '' "
                  "WHERE number = $1 AND claim_by = $2",
    [S_PASS] = "INSERT INTO numbers AS n (number, pass_expires_ms, "
               "challenge_failures) VALUES ($1, $2, 0) ON CONFLICT (number) "
               "DO UPDATE SET pass_expires_ms = excluded.pass_expires_ms, "
               "challenge_failures = 0",
    [S_FAIL] = "INSERT INTO numbers AS n (number, challenge_failures, "
               "last_failure_ms) VALUES ($1, 1, $2) ON CONFLICT (number) DO "
               "UPDATE SET challenge_failures = n.challenge_failures + 1, "
               "last_failure_ms = excluded.last_failure_ms "
               "RETURNING challenge_failures",
    [S_FAIL_RESET] =
        "UPDATE numbers SET challenge_failures = 0 WHERE number = $1",
    [S_VERSION] = "SELECT version FROM schema_version WHERE id = 1",
    /* Every row locked in one pass in byte order (a no-op update locks an
     * existing row), the same order in every instance's batches. */
    [S_LOCK_NUMBERS] =
        "INSERT INTO numbers AS n (number) SELECT k FROM (SELECT DISTINCT "
        "unnest($1::text[]) AS k) d ORDER BY k COLLATE \"C\" "
        "ON CONFLICT (number) DO UPDATE SET claim_by = n.claim_by",
    PG_LIST_FILTERS(PG_LIST_NEWEST),
    PG_LIST_FILTERS(PG_LIST_OLD),
};

/* The list variants name their four parameters' types: some are unused. */
static const unsigned list_types[4] = {PG_OID_INT8, PG_OID_INT8, PG_OID_TEXT,
                                       PG_OID_TEXT};

/*
 * One connection. Touched by one thread at a time (see store_backend.h):
 * the store's worker, or a tool's thread.
 */
struct pg_backend {
  PGconn *conn;
  char *url;         /* owned: what to connect to again */
  char *password;    /* owned: the URL's password, never logged */
  uint64_t prepared; /* bit per enum stmt prepared on `conn` */
  int readonly;
  int in_tx;           /* a BEGIN of ours is open on `conn` */
  int64_t backoff_ms;  /* 0 while connected, else the current delay */
  int64_t next_try_ms; /* no connection attempt before this */
  uint64_t claims;     /* claim tokens handed out */
  char sqlstate[6];    /* of the last failure, "" when none */
  char err[PG_ERR_SIZE];
};

static int64_t monotonic_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- errors ---------------------------------------------------------- */

/*
 * Copies `msg` into `out` on one line, with every occurrence of `secret`
 * (the URL's password, PGPASSWORD) replaced by "***": libpq does not put
 * the password in its messages, but a server or a proxy may echo a
 * connection string back, and these lines reach the logs.
 */
static void redact(char *out, size_t size, const char *msg, const char *secret)
{
  size_t slen = secret ? strlen(secret) : 0;
  size_t n = 0;

  while (*msg && n + 1 < size) {
    if (slen && strncmp(msg, secret, slen) == 0) {
      for (const char *r = "***"; *r && n + 1 < size; r++)
        out[n++] = *r;
      msg += slen;
      continue;
    }
    out[n++] = *msg == '\n' || *msg == '\r' ? ' ' : *msg;
    msg++;
  }
  while (n > 0 && out[n - 1] == ' ')
    n--;
  out[n] = '\0';
}

/* Writes "what: reason" into the handle, the secrets redacted. */
static void set_err(struct pg_backend *b, const char *what, const char *why)
{
  char line[PG_ERR_SIZE];
  char once[PG_ERR_SIZE];

  snprintf(line, sizeof(line), "%s: %s", what, why ? why : "");
  redact(once, sizeof(once), line, b->password);
  redact(b->err, sizeof(b->err), once, getenv("PGPASSWORD"));
}

/*
 * Keeps the reason of a failed statement (`res` may be NULL) and returns
 * its vs_err: a transaction conflict (SQLSTATE class 40) is VS_ERR_BUSY and
 * retryable; anything else, a broken connection included, VS_ERR_IO.
 */
static int pg_fail(struct pg_backend *b, const PGresult *res, const char *what)
{
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *why = res ? PQresultErrorMessage(res) : "";

  if (!why || !*why)
    why = b->conn ? PQerrorMessage(b->conn) : "not connected";
  set_err(b, what, why);
  call_set(b->sqlstate, sizeof(b->sqlstate), state ? state : "");
  return strncmp(b->sqlstate, "40", 2) == 0 ? VS_ERR_BUSY : VS_ERR_IO;
}

static int backend_fail(struct pg_backend *b, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int backend_fail(struct pg_backend *b, int code, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(b->err, sizeof(b->err), fmt, ap);
  va_end(ap);
  b->sqlstate[0] = '\0';
  return code;
}

/* ---- parameters ------------------------------------------------------ */

/* The parameters of one statement, and the storage they point into. */
struct pg_params {
  const char *v[PG_MAX_PARAMS];
  char num[PG_MAX_PARAMS][24];
  char arena[PG_ARENA_SIZE];
  size_t used;
  int n;
};

/* Length of the valid UTF-8 sequence at `s` (of `len` bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
  size_t need;

  if (s[0] < 0x80)
    return s[0] ? 1 : 0;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    need = 2;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    need = 3;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    need = 4;
  else
    return 0;
  if (need > len)
    return 0;
  for (size_t i = 1; i < need; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  /* Overlong three-byte forms, surrogates and past U+10FFFF. */
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
      (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
    return 0;
  return need;
}

/*
 * Adds a text parameter: `p` cut at `size` bytes (a field the caller did
 * not terminate is cut, not overrun), each byte that is not valid UTF-8
 * replaced by '?'. The arena is sized for the largest row we write.
 */
static void p_text(struct pg_params *p, const char *s, size_t size)
{
  size_t room = sizeof(p->arena) - p->used;
  size_t len = strnlen(s, size);
  char *out = p->arena + p->used;

  if (!room) {
    p->v[p->n++] = "";
    return;
  }
  if (len >= room)
    len = room - 1;
  for (size_t i = 0; i < len;) {
    size_t k = utf8_seq((const unsigned char *)s + i, len - i);

    if (!k) {
      out[i++] = '?';
      continue;
    }
    memcpy(out + i, s + i, k);
    i += k;
  }
  out[len] = '\0';
  p->used += len + 1;
  p->v[p->n++] = out;
}

/* A constant or terminated string that needs no copy. */
static void p_str(struct pg_params *p, const char *s)
{
  p->v[p->n++] = s;
}

static void p_int(struct pg_params *p, int64_t v)
{
  snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, v);
  p->v[p->n] = p->num[p->n];
  p->n++;
}

/* `v`, or NULL when it holds the field's "none" value. */
static void p_opt(struct pg_params *p, int64_t v, int64_t none)
{
  if (v == none)
    p->v[p->n++] = NULL;
  else
    p_int(p, v);
}

/* ---- running statements ---------------------------------------------- */

/*
 * Runs statement `id` with `p` (NULL: none), preparing it first if this
 * connection has not. Returns the result (the caller PQclear()s it) when
 * its status is `want`; otherwise NULL with the reason in the handle and
 * the vs_err in *rc.
 */
static PGresult *run(struct pg_backend *b, enum stmt id,
                     const struct pg_params *p, ExecStatusType want,
                     const char *what, int *rc)
{
  char name[16];
  PGresult *res;

  if (!b->conn || PQstatus(b->conn) != CONNECTION_OK) {
    *rc = backend_fail(b, VS_ERR_IO, "%s: not connected to PostgreSQL", what);
    return NULL;
  }
  snprintf(name, sizeof(name), "vs%d", (int)id);
  if (!(b->prepared & (UINT64_C(1) << id))) {
    int list = id >= S_LIST_CALLS;

    res = PQprepare(b->conn, name, sql[id], list ? 4 : 0,
                    list ? list_types : NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      *rc = pg_fail(b, res, what);
      PQclear(res);
      return NULL;
    }
    PQclear(res);
    b->prepared |= UINT64_C(1) << id;
  }
  res = PQexecPrepared(b->conn, name, p ? p->n : 0, p ? p->v : NULL, NULL,
                       NULL, 0);
  if (PQresultStatus(res) != want) {
    *rc = pg_fail(b, res, what);
    PQclear(res);
    return NULL;
  }
  *rc = VS_OK;
  return res;
}

/* run() for a statement without rows; *changed gets its row count. */
static int run_cmd(struct pg_backend *b, enum stmt id,
                   const struct pg_params *p, const char *what,
                   uint64_t *changed)
{
  int rc;
  PGresult *res = run(b, id, p, PGRES_COMMAND_OK, what, &rc);

  if (!res)
    return rc;
  if (changed)
    *changed = strtoull(PQcmdTuples(res), NULL, 10);
  PQclear(res);
  return VS_OK;
}

/* A statement with no parameters and no rows, outside the prepared set. */
static int exec_plain(struct pg_backend *b, const char *text, const char *what)
{
  PGresult *res;
  int rc = VS_OK;

  if (!b->conn || PQstatus(b->conn) != CONNECTION_OK)
    return backend_fail(b, VS_ERR_IO, "%s: not connected to PostgreSQL", what);
  res = PQexec(b->conn, text);
  if (PQresultStatus(res) != PGRES_COMMAND_OK &&
      PQresultStatus(res) != PGRES_TUPLES_OK)
    rc = pg_fail(b, res, what);
  PQclear(res);
  return rc;
}

static const char *col_text(const PGresult *res, int row, int col)
{
  return PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);
}

static int64_t col_int(const PGresult *res, int row, int col, int64_t lo,
                       int64_t hi, int64_t if_null)
{
  long long v;

  if (PQgetisnull(res, row, col))
    return if_null;
  v = strtoll(PQgetvalue(res, row, col), NULL, 10);
  return v < lo ? lo : v > hi ? hi : (int64_t)v;
}

/* ---- connecting ------------------------------------------------------- */

/*
 * The server's notices ("relation already exists, skipping" from a
 * concurrent migration) are not errors, and libpq would print them on
 * stderr, outside the log format.
 */
static void ignore_notice(void *arg, const char *message)
{
  (void)arg;
  (void)message;
}

/*
 * Opens b->conn to b->url. Keepalives find a server that vanished without
 * closing the connection (a crash, a cable), so a batch does not wait on
 * it for the kernel's default of hours; connect_timeout bounds the worker's
 * wait for a server that does not answer.
 */
static int pg_connect(struct pg_backend *b)
{
  static const char *const keys[] = {"dbname",           "application_name",
                                     "connect_timeout",  "keepalives",
                                     "keepalives_idle",  "keepalives_interval",
                                     "keepalives_count", NULL};
  const char *values[] = {b->url, "voice-and-score", "3", "1", "10", "5", "3",
                          NULL};

  if (b->conn)
    PQfinish(b->conn);
  b->prepared = 0;
  b->in_tx = 0;
  b->conn = PQconnectdbParams(keys, values, 1);
  if (!b->conn)
    return backend_fail(b, VS_ERR_NOMEM, "out of memory connecting");
  if (PQstatus(b->conn) != CONNECTION_OK) {
    set_err(b, "cannot connect to PostgreSQL", PQerrorMessage(b->conn));
    b->sqlstate[0] = '\0';
    return VS_ERR_IO;
  }
  PQsetNoticeProcessor(b->conn, ignore_notice, NULL);
  return VS_OK;
}

/*
 * Makes sure the handle is connected before a batch: a broken connection
 * is replaced at once the first time, then no sooner than the backoff
 * allows, which doubles with every failure up to PG_BACKOFF_MAX_MS.
 */
static int pg_ensure(struct pg_backend *b, int force)
{
  int64_t now = monotonic_ms();
  int rc;

  if (!force && b->conn && PQstatus(b->conn) == CONNECTION_OK)
    return VS_OK;
  if (b->backoff_ms && now < b->next_try_ms)
    return backend_fail(b, VS_ERR_IO,
                        "not connected to PostgreSQL (next attempt in "
                        "%lld ms)",
                        (long long)(b->next_try_ms - now));
  rc = pg_connect(b);
  if (rc) {
    b->backoff_ms = b->backoff_ms ? b->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
    if (b->backoff_ms > PG_BACKOFF_MAX_MS)
      b->backoff_ms = PG_BACKOFF_MAX_MS;
    b->next_try_ms = monotonic_ms() + b->backoff_ms;
    return rc;
  }
  if (b->backoff_ms)
    log_info("store connected again|backend=postgres");
  b->backoff_ms = 0;
  return VS_OK;
}

static void backend_free(struct pg_backend *b)
{
  if (b->conn)
    PQfinish(b->conn);
  if (b->password)
    memset(b->password, 0, strlen(b->password));
  free(b->password);
  free(b->url);
  free(b);
}

/*
 * A new handle for `url`: checks that libpq can read the URL, and keeps
 * its password aside (only to keep it out of messages).
 */
static int backend_new(const char *url, struct pg_backend **out, char *err,
                       size_t errlen)
{
  struct pg_backend *b;
  PQconninfoOption *opts;
  char *why = NULL;

  if (!url || !*url)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store URL is empty");
  opts = PQconninfoParse(url, &why);
  if (!opts) {
    /* libpq's reason names the bad part, never the password's value. */
    vs_fail(err, errlen, VS_ERR_INVAL, "store.url is not a PostgreSQL URL: %s",
            why ? why : "out of memory");
    PQfreemem(why);
    return VS_ERR_INVAL;
  }
  b = calloc(1, sizeof(*b));
  if (!b)
    goto fail_nomem;
  b->url = strdup(url);
  if (!b->url)
    goto fail_free_backend;
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) {
      b->password = strdup(o->val);
      if (!b->password)
        goto fail_free_backend;
    }
  PQconninfoFree(opts);
  *out = b;
  return VS_OK;

fail_free_backend:
  backend_free(b);
fail_nomem:
  PQconninfoFree(opts);
  return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory opening the store");
}

/* The database's schema version, 0 when it has none yet. */
static int read_version(struct pg_backend *b, int64_t *version)
{
  int rc;
  PGresult *res = run(b, S_VERSION, NULL, PGRES_TUPLES_OK,
                      "cannot read the schema version", &rc);

  if (!res)
    return rc;
  *version = PQntuples(res) ? col_int(res, 0, 0, INT64_MIN, INT64_MAX, 0) : 0;
  PQclear(res);
  return VS_OK;
}

/*
 * Brings the schema to SCHEMA_VERSION in one transaction, behind an
 * advisory lock that concurrent instances queue on (it ends with the
 * transaction), so that only one of them applies each migration.
 */
static int migrate(struct pg_backend *b)
{
  struct pg_params p = {0};
  int64_t version = 0;
  PGresult *res;
  int rc;

  rc = exec_plain(b, "BEGIN", "cannot begin the migration");
  if (rc)
    return rc;
  rc = exec_plain(b,
                  "SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK ");"
                  "CREATE TABLE IF NOT EXISTS schema_version ("
                  " id INTEGER PRIMARY KEY CHECK (id = 1),"
                  " version INTEGER NOT NULL);"
                  "INSERT INTO schema_version (id, version) VALUES (1, 0)"
                  " ON CONFLICT (id) DO NOTHING",
                  "cannot create the schema");
  if (rc == VS_OK)
    rc = read_version(b, &version);
  if (rc)
    goto fail_rollback;
  if (version < 0 || version > SCHEMA_VERSION) {
    rc = backend_fail(b, VS_ERR_PROTO,
                      "the database has schema version %lld but this "
                      "program knows only up to %d: use a newer "
                      "voice-and-score",
                      (long long)version, SCHEMA_VERSION);
    goto fail_rollback;
  }
  for (int64_t v = version; v < SCHEMA_VERSION; v++) {
    char what[48];

    snprintf(what, sizeof(what), "migration %lld failed", (long long)v + 1);
    rc = exec_plain(b, migrations[v], what);
    if (rc)
      goto fail_rollback;
  }
  p_int(&p, SCHEMA_VERSION);
  res = PQexecParams(b->conn,
                     "UPDATE schema_version SET version = $1 WHERE id = 1", 1,
                     NULL, p.v, NULL, NULL, 0);
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    rc = pg_fail(b, res, "cannot record the schema version");
  PQclear(res);
  if (rc == VS_OK)
    rc = exec_plain(b, "COMMIT", "cannot commit the schema");
  if (rc)
    goto fail_rollback;
  if (version < SCHEMA_VERSION)
    log_info("store schema migrated|backend=postgres from=%lld to=%d",
             (long long)version, SCHEMA_VERSION);
  return VS_OK;

fail_rollback:
  PQclear(PQexec(b->conn, "ROLLBACK"));
  return rc;
}

static int pg_open(const char *url, void **handle, char *err, size_t errlen)
{
  struct pg_backend *b;
  int rc = backend_new(url, &b, err, errlen);

  if (rc)
    return rc;
  rc = pg_connect(b);
  if (rc == VS_OK)
    rc = migrate(b);
  if (rc) {
    vs_fail(err, errlen, rc, "%s", b->err);
    backend_free(b);
    return rc;
  }
  *handle = b;
  return VS_OK;
}

/*
 * Connects without migrating and checks the version, as the SQLite
 * backend's read-only open does; the session is read-only as well.
 */
static int pg_open_readonly(const char *url, void **handle, char *err,
                            size_t errlen)
{
  struct pg_backend *b;
  int64_t version = 0;
  int rc = backend_new(url, &b, err, errlen);

  if (rc)
    return rc;
  b->readonly = 1;
  rc = pg_connect(b);
  if (rc == VS_OK)
    rc = exec_plain(b, "SET default_transaction_read_only = on",
                    "cannot make the session read-only");
  if (rc == VS_OK && read_version(b, &version) != VS_OK)
    rc = strcmp(b->sqlstate, "42P01") == 0
             ? backend_fail(b, VS_ERR_NOTFOUND,
                            "no call records yet: the database has no "
                            "voice-and-score schema")
             : VS_ERR_IO;
  if (rc == VS_OK && version != SCHEMA_VERSION)
    rc = backend_fail(b, VS_ERR_PROTO,
                      "the database has schema version %lld but this "
                      "program reads version %d: run the matching "
                      "voice-and-score",
                      (long long)version, SCHEMA_VERSION);
  if (rc) {
    vs_fail(err, errlen, rc, "%s", b->err);
    backend_free(b);
    return rc;
  }
  *handle = b;
  return VS_OK;
}

static void pg_close(void *handle)
{
  if (handle)
    backend_free(handle);
}

/* ---- transactions ---------------------------------------------------- */

/*
 * BEGIN on a live connection. A connection found broken by BEGIN itself
 * (the server restarted while we were idle) is replaced at once and BEGIN
 * tried once more, so that no batch is lost to a restart that is over.
 */
static int pg_begin(void *handle)
{
  struct pg_backend *b = handle;
  int rc;

  if (b->readonly)
    return backend_fail(b, VS_ERR_INVAL, "the handle is read-only");
  rc = pg_ensure(b, 0);
  if (rc)
    return rc;
  rc = exec_plain(b, "BEGIN", "cannot begin a transaction");
  if (rc && PQstatus(b->conn) != CONNECTION_OK) {
    rc = pg_ensure(b, 1);
    if (rc == VS_OK)
      rc = exec_plain(b, "BEGIN", "cannot begin a transaction");
  }
  b->in_tx = rc == VS_OK;
  return rc;
}

static int pg_commit(void *handle)
{
  struct pg_backend *b = handle;
  int rc = exec_plain(b, "COMMIT", "cannot commit");

  if (rc == VS_OK)
    b->in_tx = 0;
  return rc;
}

/* Nothing to undo on a broken connection: the server rolled back. */
static int pg_rollback(void *handle)
{
  struct pg_backend *b = handle;

  if (!b->in_tx)
    return VS_OK;
  b->in_tx = 0;
  if (!b->conn || PQstatus(b->conn) != CONNECTION_OK)
    return VS_OK;
  return exec_plain(b, "ROLLBACK", "cannot roll back");
}

static int pg_retryable(void *handle)
{
  const struct pg_backend *b = handle;

  return strncmp(b->sqlstate, "40", 2) == 0;
}

static const char *pg_errmsg(void *handle)
{
  const struct pg_backend *b = handle;

  return b->err[0] ? b->err : "no error";
}

/* ---- calls ----------------------------------------------------------- */

static void params_call(struct pg_params *p, const struct call *c)
{
  const char *base = (const char *)c;

/* Each value goes to its column's place: p->n is set before each add. */
#define AT(col, expr)                                                         \
  do {                                                                        \
    p->n = (col);                                                             \
    expr;                                                                     \
  } while (0)
  for (size_t i = 0; i < CALL_TEXT_COLS; i++)
    AT(call_text_cols[i].col,
       p_text(p, base + call_text_cols[i].off, call_text_cols[i].size));
  AT(COL_STEP, p_str(p, call_step_name(c->step)));
  AT(COL_DECISION, p_str(p, call_decision_name(c->decision)));
  AT(COL_STARTED_MS, p_int(p, c->started_ms));
  AT(COL_UPDATED_MS, p_int(p, c->updated_ms));
  AT(COL_ATTEMPTS, p_int(p, c->attempts));
  AT(COL_SCORE, p_opt(p, c->score, -1));
  AT(COL_SCORE_MS, p_opt(p, c->score_ms, -1));
  AT(COL_DURATION_S, p_opt(p, c->duration_s, -1));
  AT(COL_ENDED_MS, p_opt(p, c->ended_ms, 0));
  AT(COL_SHADOW, p_int(p, c->shadow != 0));
  AT(COL_VELOCITY_COUNT, p_int(p, c->velocity_count));
  AT(COL_CHALLENGE_TRIES, p_int(p, c->challenge_tries));
#undef AT
  p->n = COL_COUNT;
}

/* Fills *out from row `row` of CALL_COLUMNS; unknown names are refused. */
static int row_to_call(struct pg_backend *b, const PGresult *res, int row,
                       struct call *out)
{
  char *base = (char *)out;
  int step;
  int decision;

  call_init(out, "");
  for (size_t i = 0; i < CALL_TEXT_COLS; i++)
    call_set(base + call_text_cols[i].off, call_text_cols[i].size,
             col_text(res, row, call_text_cols[i].col));
  out->started_ms = col_int(res, row, COL_STARTED_MS, INT64_MIN, INT64_MAX, 0);
  out->updated_ms = col_int(res, row, COL_UPDATED_MS, INT64_MIN, INT64_MAX, 0);
  out->attempts = (uint32_t)col_int(res, row, COL_ATTEMPTS, 0, UINT32_MAX, 0);
  out->score = (int32_t)col_int(res, row, COL_SCORE, INT32_MIN, INT32_MAX, -1);
  out->score_ms =
      (int32_t)col_int(res, row, COL_SCORE_MS, INT32_MIN, INT32_MAX, -1);
  out->duration_s =
      (int32_t)col_int(res, row, COL_DURATION_S, INT32_MIN, INT32_MAX, -1);
  out->ended_ms = col_int(res, row, COL_ENDED_MS, INT64_MIN, INT64_MAX, 0);
  out->shadow = col_int(res, row, COL_SHADOW, INT64_MIN, INT64_MAX, 0) != 0;
  out->velocity_count =
      (int32_t)col_int(res, row, COL_VELOCITY_COUNT, INT32_MIN, INT32_MAX, 0);
  out->challenge_tries =
      (uint32_t)col_int(res, row, COL_CHALLENGE_TRIES, 0, UINT32_MAX, 0);
  step = call_step_parse(col_text(res, row, COL_STEP));
  if (step < 0)
    return backend_fail(b, VS_ERR_PROTO, "call %s has an unknown step '%s'",
                        out->ref, col_text(res, row, COL_STEP));
  out->step = (enum call_step)step;
  decision = call_decision_parse(col_text(res, row, COL_DECISION));
  if (decision < 0)
    return backend_fail(b, VS_ERR_PROTO,
                        "call %s has an unknown decision '%s'", out->ref,
                        col_text(res, row, COL_DECISION));
  out->decision = (enum call_decision)decision;
  return VS_OK;
}

static int pg_save_call(void *handle, const struct call *call)
{
  struct pg_backend *b = handle;
  struct pg_params p = {0};

  params_call(&p, call);
  return run_cmd(b, S_CALL_UPSERT, &p, "cannot save a call record", NULL);
}

static int pg_load_call(void *handle, const char *ref, struct call *out)
{
  struct pg_backend *b = handle;
  struct pg_params p = {0};
  PGresult *res;
  int rc;

  p_text(&p, ref, CALL_REF_SIZE);
  res = run(b, S_CALL_SELECT, &p, PGRES_TUPLES_OK, "cannot load a call record",
            &rc);
  if (!res)
    return rc;
  rc = PQntuples(res) ? row_to_call(b, res, 0, out) : VS_ERR_NOTFOUND;
  PQclear(res);
  return rc;
}

/*
 * The rows come in one result: list_calls() is asked for pages of at most
 * STORE_PAGE_MAX rows (plus the offset) by the admin API, and the tools
 * read their own database with their own memory, as with SQLite.
 */
static int pg_list_calls(void *handle, const struct store_query *q,
                         store_row_cb cb, void *arg)
{
  struct pg_backend *b = handle;
  struct pg_params p = {0};
  unsigned variant = 0;
  struct call call;
  PGresult *res;
  int rc;

  variant |= q->since_ms ? 1u : 0;
  variant |= q->caller ? 2u : 0;
  variant |= q->decision ? 4u : 0;
  variant |= q->oldest_first ? 8u : 0;
  p_opt(&p, q->limit, 0);
  p_int(&p, q->since_ms);
  p.v[p.n++] = q->caller;
  p.v[p.n++] = q->decision;
  res = run(b, (enum stmt)(S_LIST_CALLS + variant), &p, PGRES_TUPLES_OK,
            "cannot list calls", &rc);
  if (!res)
    return rc;
  for (int i = 0; i < PQntuples(res); i++) {
    rc = row_to_call(b, res, i, &call);
    if (rc || cb(arg, &call))
      break;
  }
  PQclear(res);
  return rc;
}

/* ---- lists and numbers ----------------------------------------------- */

static void params_list(struct pg_params *p, const struct list_entry *e)
{
  p_str(p, list_kind_name(e->kind));
  p_text(p, e->entry, sizeof(e->entry));
  p_text(p, e->note, sizeof(e->note));
  p_text(p, e->source, sizeof(e->source));
  p_int(p, e->created_ms);
  p_opt(p, e->expires_ms, 0);
}

static int row_to_list(struct pg_backend *b, const PGresult *res, int row,
                       struct list_entry *out)
{
  int kind = list_kind_parse(col_text(res, row, LCOL_KIND));

  memset(out, 0, sizeof(*out));
  call_set(out->entry, sizeof(out->entry), col_text(res, row, LCOL_ENTRY));
  call_set(out->note, sizeof(out->note), col_text(res, row, LCOL_NOTE));
  call_set(out->source, sizeof(out->source), col_text(res, row, LCOL_SOURCE));
  out->created_ms =
      col_int(res, row, LCOL_CREATED_MS, INT64_MIN, INT64_MAX, 0);
  out->expires_ms =
      col_int(res, row, LCOL_EXPIRES_MS, INT64_MIN, INT64_MAX, 0);
  if (kind < 0)
    return backend_fail(b, VS_ERR_PROTO,
                        "list entry %s has an unknown kind '%s'", out->entry,
                        col_text(res, row, LCOL_KIND));
  out->kind = (enum list_kind)kind;
  return VS_OK;
}

static void row_to_number(const PGresult *res, int row,
                          struct number_record *out)
{
  number_record_init(out, col_text(res, row, NCOL_NUMBER));
  out->pass_expires_ms =
      col_int(res, row, NCOL_PASS_EXPIRES_MS, INT64_MIN, INT64_MAX, 0);
  out->challenge_failures =
      (uint32_t)col_int(res, row, NCOL_CHALLENGE_FAILURES, 0, UINT32_MAX, 0);
  out->last_failure_ms =
      col_int(res, row, NCOL_LAST_FAILURE_MS, INT64_MIN, INT64_MAX, 0);
  out->score_fetched_ms =
      col_int(res, row, NCOL_SCORE_FETCHED_MS, INT64_MIN, INT64_MAX, 0);
  out->score =
      (int32_t)col_int(res, row, NCOL_SCORE, INT32_MIN, INT32_MAX, -1);
  call_set(out->risk_level, sizeof(out->risk_level),
           col_text(res, row, NCOL_RISK_LEVEL));
  call_set(out->recommendation, sizeof(out->recommendation),
           col_text(res, row, NCOL_RECOMMENDATION));
  call_set(out->phone_type, sizeof(out->phone_type),
           col_text(res, row, NCOL_PHONE_TYPE));
  call_set(out->score_ref, sizeof(out->score_ref),
           col_text(res, row, NCOL_SCORE_REF));
}

static int pg_save_list(void *handle, const struct list_entry *e)
{
  struct pg_params p = {0};

  params_list(&p, e);
  return run_cmd(handle, S_LIST_UPSERT, &p, "cannot save a list entry", NULL);
}

static int pg_delete_list(void *handle, enum list_kind kind, const char *entry)
{
  struct pg_backend *b = handle;
  struct pg_params p = {0};
  uint64_t n = 0;
  int rc;

  p_str(&p, list_kind_name(kind));
  p_text(&p, entry, LIST_ENTRY_SIZE);
  rc = run_cmd(b, S_LIST_DELETE, &p, "cannot delete a list entry", &n);
  if (rc == VS_OK && n == 0)
    return backend_fail(b, VS_ERR_NOTFOUND, "no %s list entry '%s'",
                        list_kind_name(kind), p.v[1]);
  return rc;
}

static int pg_save_number(void *handle, const struct number_record *r)
{
  struct pg_params p = {0};

  p_text(&p, r->number, sizeof(r->number));
  p_opt(&p, r->pass_expires_ms, 0);
  p_int(&p, r->challenge_failures);
  p_opt(&p, r->last_failure_ms, 0);
  p_opt(&p, r->score_fetched_ms, 0);
  p_opt(&p, r->score, -1);
  p_text(&p, r->risk_level, sizeof(r->risk_level));
  p_text(&p, r->recommendation, sizeof(r->recommendation));
  p_text(&p, r->phone_type, sizeof(r->phone_type));
  p_text(&p, r->score_ref, sizeof(r->score_ref));
  return run_cmd(handle, S_NUMBER_UPSERT, &p, "cannot save a number record",
                 NULL);
}

/* Runs a read of list entries, each to `cb` until it returns non-zero. */
static int read_list_rows(struct pg_backend *b, enum stmt id,
                          const struct pg_params *p,
                          int (*cb)(void *arg, const struct list_entry *e),
                          void *arg, int stop_on_nonzero)
{
  struct list_entry e;
  PGresult *res;
  int rc;

  res = run(b, id, p, PGRES_TUPLES_OK, "cannot read the lists", &rc);
  if (!res)
    return rc;
  for (int i = 0; rc == VS_OK && i < PQntuples(res); i++) {
    int r;

    rc = row_to_list(b, res, i, &e);
    if (rc)
      break;
    r = cb(arg, &e);
    if (r && stop_on_nonzero)
      break;
    rc = r;
  }
  PQclear(res);
  return rc;
}

static int pg_load_state(void *handle, const struct store_state_query *q,
                         const struct store_state_sink *sink)
{
  struct pg_backend *b = handle;
  struct pg_params now = {0};
  struct pg_params keep = {0};
  struct pg_params old = {0};
  struct pg_params recent = {0};
  PGresult *res;
  int rc;

  p_int(&now, q->now_ms);
  p_int(&keep, q->now_ms);
  p_int(&keep, q->score_since_ms);
  p_int(&old, q->now_ms - STORE_VELOCITY_KEEP_MS);
  rc = run_cmd(b, S_LIST_PRUNE, &now, "cannot delete expired list entries",
               NULL);
  if (rc == VS_OK && q->prune_numbers)
    rc = run_cmd(b, S_NUMBER_PRUNE, &keep,
                 "cannot delete stale number records", NULL);
  if (rc == VS_OK && q->prune_numbers)
    rc = run_cmd(b, S_VELOCITY_PRUNE, &old, "cannot delete old velocity rows",
                 NULL);
  if (rc == VS_OK)
    rc = read_list_rows(b, S_LIST_LIVE, &now, sink->list, sink->arg, 0);
  if (rc || q->lists_only)
    return rc;
  res = run(b, S_NUMBER_LIVE, &keep, PGRES_TUPLES_OK,
            "cannot read the numbers", &rc);
  if (!res)
    return rc;
  for (int i = 0; rc == VS_OK && i < PQntuples(res); i++) {
    struct number_record r;

    row_to_number(res, i, &r);
    rc = sink->number(sink->arg, &r);
  }
  PQclear(res);
  if (rc || q->max_recent == 0)
    return rc;
  p_int(&recent, q->recent_since_ms);
  p_int(&recent,
        q->max_recent > INT64_MAX ? INT64_MAX : (int64_t)q->max_recent);
  res = run(b, S_RECENT, &recent, PGRES_TUPLES_OK, "cannot read recent calls",
            &rc);
  if (!res)
    return rc;
  for (int i = 0; rc == VS_OK && i < PQntuples(res); i++)
    rc = sink->recent(sink->arg, col_text(res, i, 0),
                      col_int(res, i, 1, INT64_MIN, INT64_MAX, 0));
  PQclear(res);
  return rc;
}

static int pg_read_lists(void *handle, int kind, store_list_cb cb, void *arg)
{
  struct pg_params p = {0};

  if (kind >= 0)
    p_str(&p, list_kind_name((enum list_kind)kind));
  return read_list_rows(handle, kind >= 0 ? S_LIST_KIND : S_LIST_ALL,
                        kind >= 0 ? &p : NULL, cb, arg, 1);
}

/* ---- forget and retention -------------------------------------------- */

static int pg_forget_number(void *handle, const char *number,
                            struct store_forget_counts *out)
{
  static const enum stmt forget[] = {S_FORGET_CALLS, S_FORGET_LISTS,
                                     S_FORGET_NUMBER, S_FORGET_VELOCITY};
  uint64_t *counts[] = {&out->calls, &out->list_entries, &out->numbers, NULL};
  struct pg_params p = {0};
  int rc = VS_OK;

  memset(out, 0, sizeof(*out));
  p_text(&p, number, CALL_NUMBER_SIZE);
  for (size_t i = 0; rc == VS_OK && i < sizeof(forget) / sizeof(*forget); i++)
    rc = run_cmd(handle, forget[i], &p, "cannot forget a number", counts[i]);
  return rc;
}

static int pg_purge_calls(void *handle, int64_t before_ms, unsigned max,
                          uint64_t *deleted)
{
  struct pg_params p = {0};

  *deleted = 0;
  p_int(&p, before_ms);
  p_int(&p, max);
  return run_cmd(handle, S_PURGE, &p, "cannot delete old call records",
                 deleted);
}

/* ---- the shared screening state -------------------------------------- */

static int pg_visit_number(void *handle, const struct store_visit_query *q,
                           struct store_visit *out)
{
  struct pg_backend *b = handle;
  struct pg_params claim = {0};
  struct pg_params count = {0};
  PGresult *res;
  int rc;

  memset(out, 0, sizeof(*out));
  snprintf(out->claim, sizeof(out->claim), "%.40s:%" PRIu64,
           q->instance ? q->instance : "", ++b->claims);
  p_text(&claim, q->number, CALL_NUMBER_SIZE);
  p_int(&claim, q->now_ms);
  p_int(&claim, q->score_since_ms);
  p_int(&claim, q->claim_ms);
  p_str(&claim, out->claim);
  res = run(b, S_VISIT_CLAIM, &claim, PGRES_TUPLES_OK,
            "cannot read a number's state", &rc);
  if (!res)
    return rc;
  if (PQntuples(res) != 1) {
    PQclear(res);
    return backend_fail(b, VS_ERR_IO, "a number's upsert returned no row");
  }
  row_to_number(res, 0, &out->rec);
  out->claimed = strcmp(col_text(res, 0, NCOL_COUNT), "t") == 0;
  PQclear(res);
  out->has_score = out->rec.score_fetched_ms &&
                   out->rec.score_fetched_ms >= q->score_since_ms;
  if (!out->claimed)
    out->claim[0] = '\0';
  if (q->window_ms <= 0)
    return VS_OK;
  p_text(&count, q->number, CALL_NUMBER_SIZE);
  p_int(&count, q->now_ms);
  p_int(&count, q->window_ms);
  res = run(b, S_VISIT_COUNT, &count, PGRES_TUPLES_OK,
            "cannot count a number's calls", &rc);
  if (!res)
    return rc;
  out->velocity_count = (uint32_t)col_int(res, 0, 0, 0, UINT32_MAX, 0);
  PQclear(res);
  return VS_OK;
}

/*
 * The numbers as one text[] parameter, {"n1","n2",...}: numbers are
 * digits, but each element is quoted and escaped all the same.
 */
static char *array_literal(const char *const *numbers, size_t n)
{
  size_t size = 3;
  char *out;
  char *w;

  for (size_t i = 0; i < n; i++)
    size += 2 * strnlen(numbers[i], CALL_NUMBER_SIZE) + 3;
  out = malloc(size);
  if (!out)
    return NULL;
  w = out;
  *w++ = '{';
  for (size_t i = 0; i < n; i++) {
    const char *c = numbers[i];

    if (i)
      *w++ = ',';
    *w++ = '"';
    for (size_t k = 0; k < CALL_NUMBER_SIZE && c[k]; k++) {
      if (c[k] == '"' || c[k] == '\\')
        *w++ = '\\';
      *w++ = c[k];
    }
    *w++ = '"';
  }
  *w++ = '}';
  *w = '\0';
  return out;
}

static int pg_lock_numbers(void *handle, const char *const *numbers, size_t n)
{
  struct pg_params p = {0};
  char *array;
  int rc;

  if (!n)
    return VS_OK;
  array = array_literal(numbers, n);
  if (!array)
    return backend_fail(handle, VS_ERR_NOMEM,
                        "out of memory locking number rows");
  p_str(&p, array);
  rc = run_cmd(handle, S_LOCK_NUMBERS, &p, "cannot lock number rows", NULL);
  free(array);
  return rc;
}

/* STORE_NUMBER_FAIL: counts the failure, and blocklists at the limit. */
static int number_failed(struct pg_backend *b,
                         const struct store_number_update *u,
                         struct pg_params *key, struct list_entry *entry,
                         int *blocked)
{
  struct pg_params p = {0};
  uint32_t failures;
  PGresult *res;
  int rc;

  p_text(&p, u->rec.number, sizeof(u->rec.number));
  p_int(&p, u->rec.last_failure_ms);
  res = run(b, S_FAIL, &p, PGRES_TUPLES_OK, "cannot count a failure", &rc);
  if (!res)
    return rc;
  failures = (uint32_t)col_int(res, 0, 0, 0, UINT32_MAX, 0);
  PQclear(res);
  if (!u->block_after || failures < u->block_after)
    return VS_OK;
  *entry = u->block;
  list_entry_note_failures(entry, failures);
  rc = pg_save_list(b, entry);
  if (rc == VS_OK)
    rc = run_cmd(b, S_FAIL_RESET, key, "cannot reset the failures", NULL);
  *blocked = rc == VS_OK;
  return rc;
}

static int pg_update_number(void *handle, const struct store_number_update *u,
                            struct list_entry *entry, int *blocked)
{
  struct pg_backend *b = handle;
  const struct number_record *r = &u->rec;
  struct pg_params p = {0};
  struct pg_params key = {0};

  *blocked = 0;
  p_text(&key, r->number, sizeof(r->number));
  switch (u->change) {
  case STORE_NUMBER_SCORE:
    p_text(&p, r->number, sizeof(r->number));
    p_int(&p, r->score_fetched_ms);
    p_opt(&p, r->score, -1);
    p_text(&p, r->risk_level, sizeof(r->risk_level));
    p_text(&p, r->recommendation, sizeof(r->recommendation));
    p_text(&p, r->phone_type, sizeof(r->phone_type));
    p_text(&p, r->score_ref, sizeof(r->score_ref));
    p_text(&p, u->claim, sizeof(u->claim));
    return run_cmd(b, S_SCORE, &p, "cannot save a score", NULL);
  case STORE_NUMBER_RELEASE:
    p_text(&key, u->claim, sizeof(u->claim));
    return run_cmd(b, S_RELEASE, &key, "cannot release a claim", NULL);
  case STORE_NUMBER_PASS:
    p_text(&p, r->number, sizeof(r->number));
    p_int(&p, r->pass_expires_ms);
    return run_cmd(b, S_PASS, &p, "cannot save a pass", NULL);
  case STORE_NUMBER_FAIL:
    return number_failed(b, u, &key, entry, blocked);
  }
  return backend_fail(b, VS_ERR_INVAL, "unknown change of a number");
}

const struct store_backend_ops store_postgres_ops = {
    .name = "postgres",
    .shared = 1,
    .open = pg_open,
    .open_readonly = pg_open_readonly,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .save_call = pg_save_call,
    .load_call = pg_load_call,
    .list_calls = pg_list_calls,
    .save_list = pg_save_list,
    .save_number = pg_save_number,
    .delete_list = pg_delete_list,
    .load_state = pg_load_state,
    .read_lists = pg_read_lists,
    .forget_number = pg_forget_number,
    .purge_calls = pg_purge_calls,
    .visit_number = pg_visit_number,
    .lock_numbers = pg_lock_numbers,
    .update_number = pg_update_number,
    .retryable = pg_retryable,
    .maintain = NULL,
    .errmsg = pg_errmsg,
};
