/*
 * The columns both backends (store_sqlite.c, store_postgres.c) read and
 * write, in one place, so that the two schemas cannot drift apart: the
 * tables and columns are the same in SQLite and PostgreSQL, only the SQL
 * dialect of each statement differs.
 *
 * Each enum gives a table's columns in the order of its *_COLUMNS list;
 * every statement of a backend that reads or writes whole rows uses that
 * list, so a column index is the same in every one of them. Immutable;
 * any thread.
 */
#ifndef VS_STORE_STORE_SCHEMA_H
#define VS_STORE_STORE_SCHEMA_H

#include <stddef.h>

/* Columns of `calls`, in the order of CALL_COLUMNS. */
enum col {
  COL_REF,
  COL_CALLER_RAW,
  COL_CALLER,
  COL_TO,
  COL_STARTED_MS,
  COL_UPDATED_MS,
  COL_STEP,
  COL_ATTEMPTS,
  COL_DECISION,
  COL_REASON,
  COL_SCORE,
  COL_RISK_LEVEL,
  COL_RECOMMENDATION,
  COL_PHONE_TYPE,
  COL_SCORE_REF,
  COL_SCORE_ERROR,
  COL_SCORE_MS,
  COL_DIGITS,
  COL_DEPARTMENT,
  COL_DIALLED,
  COL_DIAL_STATUS,
  COL_STATUS,
  COL_DURATION_S,
  COL_ENDED_MS,
  /* Added by migration 2, hence at the end. */
  COL_TRACE,
  COL_POLICY_VERSION,
  COL_SHADOW,
  COL_VELOCITY_COUNT,
  COL_SCORE_SOURCE,
  COL_CHALLENGE_DIGIT,
  COL_CHALLENGE_TRIES,
  COL_CHALLENGE_RESULT,
  COL_COUNT
};

/*
 * The columns of struct call in COL_ order. The two halves around
 * started_ms let a query take it from another table (store_sqlite.c
 * lists a caller's calls in the order of calls_by_caller).
 */
#define CALL_COLUMNS_BEFORE_STARTED "ref, caller_raw, caller, to_number, "
#define CALL_COLUMNS                                                          \
  CALL_COLUMNS_BEFORE_STARTED "started_ms, " CALL_COLUMNS_AFTER_STARTED
#define CALL_COLUMNS_AFTER_STARTED                                            \
  "updated_ms, step, "                                                        \
  "attempts, decision, reason, score, risk_level, recommendation, "           \
  "phone_type, score_ref, score_error, score_ms, digits, department, "        \
  "dialled, dial_status, status, duration_s, ended_ms, trace, "               \
  "policy_version, shadow, velocity_count, score_source, challenge_digit, "   \
  "challenge_tries, challenge_result"

/*
 * What an upsert of a whole row sets when the key exists, from the row
 * offered (the same SQL in both dialects): every column but the call's
 * identity, the ref, the caller (raw and normalised), the number called
 * and the start, which the call's first record fixes. SQLite's indexes of
 * calls by caller and by reference (sqlite_call_index.h) rely on it:
 * an entry's caller, start and reference never change.
 */
#define CALL_UPSERT_SET                                                       \
  "updated_ms = excluded.updated_ms, step = excluded.step, "                  \
  "attempts = excluded.attempts, decision = excluded.decision, "              \
  "reason = excluded.reason, score = excluded.score, "                        \
  "risk_level = excluded.risk_level, "                                        \
  "recommendation = excluded.recommendation, "                                \
  "phone_type = excluded.phone_type, score_ref = excluded.score_ref, "        \
  "score_error = excluded.score_error, score_ms = excluded.score_ms, "        \
  "digits = excluded.digits, department = excluded.department, "              \
  "dialled = excluded.dialled, dial_status = excluded.dial_status, "          \
  "status = excluded.status, duration_s = excluded.duration_s, "              \
  "ended_ms = excluded.ended_ms, trace = excluded.trace, "                    \
  "policy_version = excluded.policy_version, shadow = excluded.shadow, "      \
  "velocity_count = excluded.velocity_count, "                                \
  "score_source = excluded.score_source, "                                    \
  "challenge_digit = excluded.challenge_digit, "                              \
  "challenge_tries = excluded.challenge_tries, "                              \
  "challenge_result = excluded.challenge_result"

#define LIST_UPSERT_SET                                                       \
  "note = excluded.note, source = excluded.source, "                          \
  "created_ms = excluded.created_ms, expires_ms = excluded.expires_ms"

#define NUMBER_UPSERT_SET                                                     \
  "pass_expires_ms = excluded.pass_expires_ms, "                              \
  "challenge_failures = excluded.challenge_failures, "                        \
  "last_failure_ms = excluded.last_failure_ms, "                              \
  "score_fetched_ms = excluded.score_fetched_ms, "                            \
  "score = excluded.score, risk_level = excluded.risk_level, "                \
  "recommendation = excluded.recommendation, "                                \
  "phone_type = excluded.phone_type, score_ref = excluded.score_ref"

/*
 * The eight statements of a call list, one per combination of the three
 * filters (the bit order of since = 1, caller = 2, decision = 4), each a
 * constant so that the database plans each with the index that fits:
 * `from` the SELECT, `since`, `caller`, `decision` the three conditions
 * in the backend's placeholder syntax, `order` the ORDER BY and LIMIT.
 */
#define CALL_LIST_VARIANTS(from, since, caller, decision, order)              \
  from order, from " WHERE " since order, from " WHERE " caller order,        \
      from " WHERE " since " AND " caller order,                              \
      from " WHERE " decision order,                                          \
      from " WHERE " since " AND " decision order,                            \
      from " WHERE " caller " AND " decision order,                           \
      from " WHERE " since " AND " caller " AND " decision order

/* The text fields of struct call that map to a column one for one. */
struct text_col {
  int col;
  size_t off;
  size_t size;
};

/* The other twelve columns: step, decision and ten integers, by name. */
#define CALL_TEXT_COLS 20
extern const struct text_col call_text_cols[CALL_TEXT_COLS];

/*
 * Where struct call keeps what is not text: the byte ranges around its
 * text fields (numbers, enums and padding), in address order. Built once
 * by call_layout_init from call_text_cols; read-only after, any thread.
 */
struct call;
struct call_layout {
  struct {
    size_t off;
    size_t len;
  } plain[CALL_TEXT_COLS + 1];
  size_t nplain;
  size_t plain_bytes;
};

void call_layout_init(struct call_layout *l);

/*
 * A call packed for keeping in memory: its plain bytes as they are, then
 * each text field's characters and NUL in call_text_cols order (ref
 * first). Most of a struct call's 1,040 bytes are unused room in its text
 * arrays; packed, a record is usually a third of that.
 *
 * call_packed_size gives the bytes call_pack writes for `c` into the
 * caller's `out`; call_unpack rebuilds the call into the caller's `c`
 * from what call_pack wrote; call_packed_ref points at the ref inside a
 * packed call. Inputs are borrowed.
 */
size_t call_packed_size(const struct call_layout *l, const struct call *c);
void call_pack(const struct call_layout *l, const struct call *c,
               unsigned char *out);
void call_unpack(const struct call_layout *l, const unsigned char *in,
                 struct call *c);
const char *call_packed_ref(const struct call_layout *l,
                            const unsigned char *in);

/*
 * 1 when the `len` bytes at `in` are exactly one packed call whose every
 * text field fits its array and whose ref is not empty, so that
 * call_unpack() may read them; 0 otherwise. For packed calls read back
 * from a file (answer_log.c), which a crash or a disk may have damaged.
 */
int call_packed_valid(const struct call_layout *l, const unsigned char *in,
                      size_t len);

/* Columns of `lists`, in this order in every statement. */
enum {
  LCOL_KIND,
  LCOL_ENTRY,
  LCOL_NOTE,
  LCOL_SOURCE,
  LCOL_CREATED_MS,
  LCOL_EXPIRES_MS,
  LCOL_COUNT
};

#define LIST_COLUMNS "kind, entry, note, source, created_ms, expires_ms"

/* Columns of `numbers` that struct number_record holds, in this order. */
enum {
  NCOL_NUMBER,
  NCOL_PASS_EXPIRES_MS,
  NCOL_CHALLENGE_FAILURES,
  NCOL_LAST_FAILURE_MS,
  NCOL_SCORE_FETCHED_MS,
  NCOL_SCORE,
  NCOL_RISK_LEVEL,
  NCOL_RECOMMENDATION,
  NCOL_PHONE_TYPE,
  NCOL_SCORE_REF,
  NCOL_COUNT
};

#define NUMBER_COLUMNS                                                        \
  "number, pass_expires_ms, challenge_failures, last_failure_ms, "            \
  "score_fetched_ms, score, risk_level, recommendation, phone_type, "         \
  "score_ref"

/*
 * Velocity windows are at most a day (screening.velocity.window_s), so a
 * row of number_calls older than this counts for no one and is pruned.
 */
#define STORE_VELOCITY_KEEP_MS (86400LL * 1000)

#endif
