/*
 * The store's internal backend interface: what store.c needs from a
 * database, so that SQLite (store_sqlite.c) can later be joined by a
 * backend shared by several server instances (PostgreSQL).
 *
 * A backend is a table of functions and an opaque handle per connection.
 * store.c is the only caller; nothing outside src/store includes this file
 * except the store's own tests.
 *
 * Threads. A handle is used by one thread at a time and never shared:
 *
 *   - a read-write handle (open) is opened by the thread that calls
 *     store_open() before the worker starts and closed by the thread that
 *     calls store_close() after the worker has been joined; every other op
 *     on it (begin, commit, rollback, save_call, load_call, maintain,
 *     errmsg) runs on the store's worker thread only, so a backend needs
 *     no locking of its own and the loop thread never waits on the disk;
 *   - a read-only handle (open_readonly) belongs to the tool thread that
 *     called store_calls_list(), which opens it, calls list_calls and
 *     errmsg, and closes it;
 *   - the list tools (store_lists_put, _delete, _read) open a read-write
 *     handle of their own on the calling thread, with no store and no
 *     worker, use it for begin/commit/rollback, save_list, delete_list,
 *     read_lists and errmsg, and close it. The database may meanwhile be
 *     open in a server: the backend must let the two wait for each other's
 *     transactions (SQLite: WAL and a busy timeout) rather than fail.
 *
 * Return values are 0 or a negative vs_err code (util/err.h). An op that
 * fails leaves one sentence describing why in the handle, which errmsg()
 * returns; open and open_readonly have no handle yet and fill `err`.
 */
#ifndef VS_STORE_STORE_BACKEND_H
#define VS_STORE_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"
#include "records.h"
#include "store.h"

struct loop;

/* What load_state() reads; see store_state_load() in store.h. */
struct store_state_query {
  int64_t now_ms;          /* lists and passes expire at or before this */
  int64_t score_since_ms;  /* scores fetched before this are stale */
  int64_t recent_since_ms; /* calls started at or after this */
  size_t max_recent;       /* at most this many calls, 0 = none */
  int lists_only;          /* read the lists only: no numbers, no calls */
  int prune_numbers;       /* also delete the number records with nothing
                              worth keeping and, in a shared backend, the
                              velocity rows older than
                              STORE_VELOCITY_KEEP_MS */
};

/*
 * Where load_state() delivers rows, borrowed for the call. Each callback
 * returns 0 to go on or a negative vs_err code, which stops load_state()
 * and becomes its return value (the caller knows it was its own).
 */
struct store_state_sink {
  int (*list)(void *arg, const struct list_entry *e);
  int (*number)(void *arg, const struct number_record *r);
  int (*recent)(void *arg, const char *caller, int64_t started_ms);
  void *arg;
};

struct store_backend_ops {
  const char *name; /* "sqlite", "postgres", for logs */

  /*
   * Non-zero when several server instances may use the same database at
   * once. store.c then keeps no in-memory cache at all: another instance
   * may change a record at any time, so a copy in memory could be stale
   * and only the database can answer store_call_find()'s question.
   */
  int shared;

  /*
   * Opens (creating if needed, and migrating the schema to the current
   * version) the database at `path` for reading and writing. On success
   * stores a new handle, owned by the caller until passed to close(), in
   * *handle. On failure returns a vs_err code with the reason in `err`
   * and leaves *handle untouched.
   */
  int (*open)(const char *path, void **handle, char *err, size_t errlen);

  /*
   * Opens an existing database read-only, for list_calls() while a server
   * may have it open for writing. Never creates or migrates anything; a
   * missing database is VS_ERR_NOTFOUND with a message for a person.
   * Ownership as for open().
   */
  int (*open_readonly)(const char *path, void **handle, char *err,
                       size_t errlen);

  /* Closes and frees `handle`, which must not be in a transaction. */
  void (*close)(void *handle);

  /*
   * Starts the transaction of one batch. It takes the write lock at once
   * (BEGIN IMMEDIATE in SQLite) so that a batch either gets to write all
   * of its operations or fails before doing anything.
   */
  int (*begin)(void *handle);

  /* Commits the batch's transaction. */
  int (*commit)(void *handle);

  /*
   * Undoes the batch's transaction after any failure, including a failed
   * commit. Safe to call when the database already rolled back on its
   * own; returns 0 or the error of the rollback itself, which the caller
   * can only log.
   */
  int (*rollback)(void *handle);

  /*
   * Inserts the record, or replaces every field of the record with the
   * same ref (an upsert keyed by ref) but the call's identity: caller_raw,
   * caller, to and started_ms keep the values of its first record
   * (CALL_UPSERT_SET). `call` is borrowed for the call.
   */
  int (*save_call)(void *handle, const struct call *call);

  /*
   * Reads the record of `ref` into the caller's *out. Returns 0,
   * VS_ERR_NOTFOUND when there is no such record, VS_ERR_PROTO when the
   * record cannot be read back into a struct call (neither is an error of
   * the batch: only that load fails), or another code, which fails the
   * batch. `ref` must not point into *out.
   */
  int (*load_call)(void *handle, const char *ref, struct call *out);

  /*
   * The answer log's mark (answer_log.h): the database's identity and the
   * newest sequence number of the log that it holds, read by the thread
   * that opens the store; and the mark moved to `through` in the open
   * transaction, by the worker. NULL in a backend without an answer log
   * (a shared one: its instances' logs would each replay over the
   * others' newer records).
   */
  int (*log_mark)(void *handle, uint64_t *db_id, uint64_t *through);
  int (*set_log_through)(void *handle, uint64_t through);

  /*
   * Calls `cb` with each record matching `q`, newest started_ms first
   * (oldest first with q->oldest_first; q->limit then keeps the oldest),
   * until the records run out or cb returns non-zero (which is not an
   * error). The record passed to cb is borrowed until it returns. `q` has
   * been checked by the caller (q->decision is a known name or NULL).
   */
  int (*list_calls)(void *handle, const struct store_query *q, store_row_cb cb,
                    void *arg);

  /*
   * Upserts a list entry (key: kind + entry) or a number's record (key:
   * number), replacing every field. Borrowed for the call.
   */
  int (*save_list)(void *handle, const struct list_entry *e);
  int (*save_number)(void *handle, const struct number_record *r);

  /*
   * Removes a list entry. VS_ERR_NOTFOUND when there was none, which is
   * not an error of the batch (a queued delete of an absent entry has
   * nothing left to do).
   */
  int (*delete_list)(void *handle, enum list_kind kind, const char *entry);

  /*
   * The screening state, in the caller's transaction, in this order:
   * first deletes the list entries expired at q->now_ms and the number
   * records with nothing worth keeping (no pass expiring after now, no
   * challenge failure, no score fetched at or after q->score_since_ms);
   * then passes to the sink every unexpired list entry, ordered by kind
   * then entry; every number record worth keeping, ordered by number; and
   * the caller and start of up to q->max_recent calls that have a caller
   * and started at or after q->recent_since_ms, NEWEST first, so that the
   * limit keeps the calls that matter for velocity (the store reverses
   * them). Returns 0, VS_ERR_PROTO for a row it cannot read (not an error
   * of the batch), a sink's code, or another code, which fails the batch.
   */
  int (*load_state)(void *handle, const struct store_state_query *q,
                    const struct store_state_sink *sink);

  /*
   * Calls `cb` with each list entry of `kind` (both when kind < 0),
   * expired ones included, ordered by kind then entry, until cb returns
   * non-zero (not an error). For the list tools, outside any batch.
   */
  int (*read_lists)(void *handle, int kind, store_list_cb cb, void *arg);

  /*
   * `voice-and-score forget`: deletes, in the caller's transaction, the
   * call records whose caller is `number`, the list entries whose entry
   * is exactly `number` (prefixes stay), and the number's record; the
   * counts go to *out.
   */
  int (*forget_number)(void *handle, const char *number,
                       struct store_forget_counts *out);

  /*
   * store.retention_days: deletes up to `max` call records that started
   * before `before_ms` (oldest first), in the caller's transaction;
   * *deleted is how many. The store calls it again while it deletes
   * `max`, so no single batch holds the database for long.
   */
  int (*purge_calls)(void *handle, int64_t before_ms, unsigned max,
                     uint64_t *deleted);

  /*
   * Shared backends only (NULL otherwise): the screening state of one
   * arriving call, atomically with respect to every other instance. In
   * the batch's transaction, an upsert of the number's row takes its row
   * lock (held until the batch commits, so that every instance's visits
   * of one number are serialised) and, when the row holds no score
   * fetched at or after q->score_since_ms and no unexpired claim, claims
   * the Score lookup until now_ms + claim_ms (claim_ms 0: never claims);
   * then, with the lock held, the call is recorded in number_calls and
   * the calls of the window counted (window_ms 0: neither, which is how
   * a call waiting for another instance's lookup polls). Concurrent
   * calls from one number across instances thus make one lookup per
   * cache TTL and count velocity exactly. The claim ends when
   * update_number() stores a score or releases it, or when it expires.
   * Returns 0 or a vs_err code, which fails the batch.
   */
  int (*visit_number)(void *handle, const struct store_visit_query *q,
                      struct store_visit *out);

  /*
   * Shared backends only (NULL otherwise): called at the start of a
   * batch's transaction with the numbers (`n` of them, in any order,
   * repeats allowed) whose rows the batch's visits and updates will lock.
   * It takes all those row locks at once, in one order that every
   * instance uses (creating the rows that are missing), so that two
   * instances' batches cannot deadlock on number rows; the statements
   * that follow find their locks already held.
   */
  int (*lock_numbers)(void *handle, const char *const *numbers, size_t n);

  /*
   * Shared backends only (NULL otherwise): applies `u` in the caller's
   * transaction as one atomic change of the row (SQL arithmetic under
   * the row lock, never a value read into memory and written back), and
   * says in *blocked (FAIL only, else 0) whether the number has just been
   * blocklisted with `u->block`, whose note the backend filled in.
   */
  int (*update_number)(void *handle, const struct store_number_update *u,
                       struct list_entry *entry, int *blocked);

  /*
   * Shared backends only (NULL otherwise): non-zero when the last failure
   * was a conflict with another instance's transaction (a deadlock
   * between two batches that lock the same number rows in opposite
   * orders, or a serialisation failure) that running the whole batch
   * again resolves.
   */
  int (*retryable)(void *handle);

  /*
   * Optional (NULL: nothing to do): upkeep that must not hold up a
   * batch's commit, such as SQLite's indexes of calls. The worker
   * calls it after each batch, once the batch's results are posted,
   * outside any transaction; `now_ms` is a monotonic clock. Each call
   * does a bounded step and sets *due (the worker's): 0 when no more
   * upkeep is owed, 1 when another step is owed and should run once no
   * batch waits, 2 when the upkeep is so far behind that the next step
   * should run before the next batch. Returns 0, or a vs_err code with
   * errmsg(): a failure loses nothing and fails no batch, the store only
   * logs it.
   */
  int (*maintain)(void *handle, int64_t now_ms, int *due);

  /*
   * The reason for the last failure on `handle`, as one sentence. The
   * string belongs to the handle and is valid until its next op.
   */
  const char *(*errmsg)(void *handle);
};

/*
 * Like store_open(), but on a backend handle the caller has already opened
 * (`handle` from ops->open()). This is how tests wrap a backend to inject
 * failures or hold the worker still; the server uses store_open(). The
 * store owns `handle` from the moment of the call, also when it fails (it
 * is then closed with ops->close(), unless `ops` itself is NULL). `ops`
 * must outlive the store. opt->path is not used.
 */
int store_open_backend(struct loop *loop, const struct store_options *opt,
                       const struct store_backend_ops *ops, void *handle,
                       struct store **out, char *err, size_t errlen);

#endif
