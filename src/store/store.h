/*
 * The store: where call records (and the per-call IVR state they carry)
 * live, behind an interface that a second backend can implement.
 *
 * Threads. The loop thread owns the struct store and calls every function
 * below except the tools at the end. The backend (SQLite or PostgreSQL,
 * chosen by the location: a file path or a postgresql:// URL) runs on one
 * worker thread that the store starts; the loop never touches the disk.
 * Writes are queued and committed by the worker in batches (one
 * transaction per batch, so records at full rate cost one fsync per batch,
 * not per call); results of loads come back to the loop through an eventfd.
 *
 * Live calls. Calls in progress are also kept in memory on the loop thread,
 * so that the events of a call normally find their state without a round
 * trip to the worker. A backend shared by several instances (PostgreSQL)
 * turns that cache off, since another instance may take the call's next
 * event: it is an optimisation of the single-instance backend, never the
 * source of truth. The database is: a
 * call whose state is not in memory (the server restarted mid-call, or the
 * cache evicted it) is loaded from it with store_call_load().
 *
 * Ordering. Operations reach the database in the order they were issued, so
 * a load issued after a save sees the saved record.
 *
 * Error contract (libuv's): if a function that takes a callback returns an
 * error, the callback is never called; otherwise it is called exactly once,
 * on the loop thread, never from inside the call that started it.
 */
#ifndef VS_STORE_STORE_H
#define VS_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"
#include "records.h"

struct loop;
struct store;

struct store_options {
  const char *path;   /* SQLite file (its directory is created if missing),
                         or a postgresql:// or postgres:// URL */
  unsigned cache_max; /* live calls kept in memory; 0 = default 65536 */
  unsigned queue_max; /* queued operations before saves fail; 0 = 65536 */
  size_t answer_log_bytes; /* size of the answer log beside an SQLite
                              file (store_call_save_logged); 0 = none */
};

/*
 * Opens the database (creating it and its schema if needed), starts the
 * worker and registers the store's wake-up on `loop`. Returns 0 and the new
 * store in *out, or a negative vs_err code with the reason in `err`.
 */
int store_open(struct loop *loop, const struct store_options *opt,
               struct store **out, char *err, size_t errlen);

/*
 * Writes everything still queued, stops the worker, completes any pending
 * load callbacks, closes the database and frees the store. Nothing queued
 * before the call is lost. NULL is a no-op.
 */
void store_close(struct store *st);

/*
 * Returns the in-memory state of a live call, or NULL when it is not
 * resident (which does not mean it does not exist: see store_call_load).
 * The pointer is borrowed and valid until the next call into the store;
 * copy the record to change it.
 */
const struct call *store_call_find(struct store *st, const char *ref);

/*
 * `call` is borrowed until the callback returns; NULL when rc is
 * VS_ERR_NOTFOUND (no such call) or another error.
 */
typedef void (*store_load_cb)(void *arg, int rc, const struct call *call);

/*
 * Loads the record of `ref` from the database and calls `cb`. Returns 0,
 * VS_ERR_NOMEM, or VS_ERR_BUSY when the queue is full or the store closing.
 */
int store_call_load(struct store *st, const char *ref, store_load_cb cb,
                    void *arg);

/*
 * Records the new state of a call: the in-memory copy is replaced at once
 * and the write is queued. The record is copied; `call` stays the caller's.
 * When the store has an answer log with room, the record is copied there
 * too, and a batch that fails for a passing cause (a full disk, a lock)
 * keeps the write for the next one. A call whose step is CALL_STEP_ENDED
 * leaves the in-memory cache once written. Returns 0, VS_ERR_NOMEM, or
 * VS_ERR_BUSY (queue full: the write is dropped and counted, and the store
 * reports itself unhealthy).
 */
int store_call_save(struct store *st, const struct call *call);

/* rc 0 when the record is committed, or why its batch failed. */
typedef void (*store_saved_cb)(void *arg, int rc);

/*
 * store_call_save(), then `cb` once the batch holding the write has
 * committed (rc 0: the record survives the process being killed) or failed.
 * This is how an answer is held back until the record of its decision is
 * on disk. A write that a failed batch keeps (see store_call_save) runs
 * `cb` when the next one commits, or fails for good. Returns as
 * store_call_save(); on an error `cb` is never called. Group commit keeps
 * the wait short: every save of a loop iteration shares one transaction.
 */
int store_call_commit(struct store *st, const struct call *call,
                      store_saved_cb cb, void *arg);

/*
 * store_call_save(), with the record first copied to the answer log, a
 * mapped file beside the database (src/store/answer_log.h): from the
 * return on it survives the process being killed as a commit does, so
 * the answer it decides can go out at once, with no wait for the commit.
 * Returns as store_call_save(), or VS_ERR_LIMIT when the store has no
 * answer log (a shared or in-memory database, or none configured), or is
 * behind (it has records to commit handed over more than a few
 * milliseconds ago: waiting then keeps the backlog short), or the log or
 * the queue is full: then nothing was done, and store_call_commit() is
 * the way.
 */
int store_call_save_logged(struct store *st, const struct call *call);

/* ---- screening state: lists and caller numbers ---------------------- */

/*
 * Queue an upsert of a list entry (key: kind + entry) or of a number's
 * record (key: number), or the removal of a list entry. Copied; same
 * returns and ordering as store_call_save(). These records have no
 * in-memory cache in the store: the screening module keeps its own.
 */
int store_list_save(struct store *st, const struct list_entry *e);
int store_list_delete(struct store *st, enum list_kind kind,
                      const char *entry);
int store_number_save(struct store *st, const struct number_record *r);

/*
 * Everything the screening pipeline needs at start or on reload, read in
 * one batch by the worker. Arrays are borrowed until the callback returns.
 */
struct store_state {
  const struct list_entry *lists; /* unexpired entries of both kinds */
  size_t nlists;
  const struct number_record *numbers; /* with an unexpired pass, any
                                          challenge failure, or a score
                                          fetched within the cache TTL */
  size_t nnumbers;
  const struct store_recent_call {
    char caller[CALL_NUMBER_SIZE];
    int64_t started_ms;
  } * recent; /* calls started at or after `recent_since_ms`, oldest first,
                 for rebuilding velocity counters */
  size_t nrecent;
};

typedef void (*store_state_cb)(void *arg, int rc,
                               const struct store_state *state);

/*
 * Loads the screening state as of `now_ms`: lists not expired, numbers
 * worth keeping (score fetched at or after `score_since_ms`), and calls
 * started at or after `recent_since_ms`. Callback contract as for
 * store_call_load(). Expired list entries and number records with nothing
 * left worth keeping are deleted from the database in the same batch.
 */
int store_state_load(struct store *st, int64_t now_ms, int64_t score_since_ms,
                     int64_t recent_since_ms, store_state_cb cb, void *arg);

/*
 * The lists only, as of `now_ms`, for a shared backend's periodic refresh
 * (and a reload): the state passed to `cb` has no numbers and no recent
 * calls. With `prune_since_ms` non-zero the batch also deletes the number
 * records with nothing worth keeping (no score fetched at or after it)
 * and the velocity rows too old to count. Callback contract as for
 * store_call_load().
 */
int store_lists_load(struct store *st, int64_t now_ms, int64_t prune_since_ms,
                     store_state_cb cb, void *arg);

/* ---- shared backends: per-number state in the database ---------------- */

/*
 * Non-zero when the store's database is shared by several server
 * instances (PostgreSQL): the store then keeps no live calls in memory,
 * and the screening module asks the database for each caller's state
 * with the two functions below instead of keeping it.
 */
int store_shared(const struct store *st);

/* A claim's token: the instance's name, ':' and a counter. */
#define STORE_CLAIM_SIZE 64

/*
 * The question of store_visit_number(): one call of `number` arriving at
 * now_ms. Strings are borrowed for the call (the store copies them).
 */
struct store_visit_query {
  const char *number;
  int64_t now_ms;
  int64_t window_ms;      /* velocity window; 0 = do not count calls */
  int64_t score_since_ms; /* a score fetched before this is stale */
  int64_t claim_ms;       /* how long a claimed lookup stays claimed */
  const char *instance;   /* who claims: unique per running server */
};

/* Its answer. */
struct store_visit {
  uint32_t velocity_count;      /* calls in the window, this one included */
  struct number_record rec;     /* the number's record (number_record_init'ed
                                   when it had none) */
  int has_score;                /* rec holds a score fetched >= score_since */
  int claimed;                  /* no fresh score and no live claim: this
                                   instance now owns the lookup until
                                   now_ms + claim_ms */
  char claim[STORE_CLAIM_SIZE]; /* when claimed: the claim's token, which
                                   ends it (store_number_update) */
};

/*
 * One change to a number's record that must not be a read-modify-write
 * (store_number_update()).
 */
enum store_number_change {
  STORE_NUMBER_SCORE,   /* a lookup's result: rec's score fields (and
                           score_fetched_ms); ends `claim` */
  STORE_NUMBER_RELEASE, /* a lookup that failed: ends `claim`, and only */
  STORE_NUMBER_PASS,    /* a challenge passed: rec.pass_expires_ms, and
                           the failures start again from 0 */
  STORE_NUMBER_FAIL     /* a challenge failed at rec.last_failure_ms: one
                           more failure, counted in SQL; at block_after
                           the number gets the `block` list entry and its
                           count starts again */
};

struct store_number_update {
  enum store_number_change change;
  struct number_record rec;     /* rec.number always; the rest per change */
  char claim[STORE_CLAIM_SIZE]; /* SCORE, RELEASE: from store_visit */
  uint32_t block_after;         /* FAIL: failures that blocklist; 0 never */
  struct list_entry block;      /* FAIL: the entry, its note left to the
                                   backend (list_entry_note_failures) */
};

/* `v` is borrowed until the callback returns; NULL when rc is not 0. */
typedef void (*store_visit_cb)(void *arg, int rc, const struct store_visit *v);

/*
 * Shared stores only: records one call of q->number and reads its state
 * atomically with respect to every other instance (see visit_number in
 * store_backend.h), in the worker's next batch. Callback contract as for
 * store_call_load(); VS_ERR_INVAL on a store that is not shared. A visit
 * answered while the store closes gets VS_ERR_BUSY: the server is going
 * away and must not start a lookup on its answer.
 */
int store_visit_number(struct store *st, const struct store_visit_query *q,
                       store_visit_cb cb, void *arg);

/*
 * `blocked` is the list entry a STORE_NUMBER_FAIL added (borrowed until
 * the callback returns), NULL otherwise or when rc is not 0.
 */
typedef void (*store_update_cb)(void *arg, int rc,
                                const struct list_entry *blocked);

/*
 * Shared stores only: queues `u` (copied), applied atomically in the
 * database (update_number in store_backend.h). `cb` may be NULL. Returns
 * as store_call_save(); callback contract as for store_call_load().
 */
int store_number_update(struct store *st, const struct store_number_update *u,
                        store_update_cb cb, void *arg);

/* ---- queries for the admin API (answered by the worker) ------------ */

struct store_query;

/*
 * A page of call records: `calls` (n of them, borrowed until the callback
 * returns) and `more`, non-zero when another page exists.
 */
typedef void (*store_calls_cb)(void *arg, int rc, const struct call *calls,
                               size_t n, int more);

/*
 * Reads the records matching `q` (copied, strings too), newest first,
 * skipping `offset` of them, at most q->limit (1..STORE_PAGE_MAX).
 * Callback contract as for store_call_load(); VS_ERR_INVAL for a bad
 * limit.
 */
#define STORE_PAGE_MAX 500
int store_calls_query(struct store *st, const struct store_query *q,
                      unsigned offset, store_calls_cb cb, void *arg);

/* Hours a call_stats answer covers at most (31 days). */
#define STORE_STATS_HOURS 744
#define STORE_STATS_STEPS 8

/* Counts over the calls started in [since_ms, now_ms]. */
struct store_call_stats {
  int64_t since_ms; /* rounded down to its hour */
  int64_t now_ms;
  uint64_t total;
  uint64_t by_decision[4]; /* by enum call_decision */
  struct {
    char name[16]; /* the deciding step: the reason up to its ':' */
    uint64_t count;
  } steps[STORE_STATS_STEPS];
  uint64_t challenges_passed, challenges_failed;
  uint64_t score_buckets[10];            /* 0-99, ..., 900-1000 */
  size_t hours;                          /* entries of `hourly` in use */
  uint64_t hourly[STORE_STATS_HOURS][4]; /* by hour, by enum call_decision */
};

typedef void (*store_stats_cb)(void *arg, int rc,
                               const struct store_call_stats *stats);

/*
 * Counts the calls started from `since_ms` (clamped to STORE_STATS_HOURS
 * before `now_ms`) to `now_ms`. The stats are borrowed until the callback
 * returns. Callback contract as for store_call_load().
 */
int store_call_stats(struct store *st, int64_t since_ms, int64_t now_ms,
                     store_stats_cb cb, void *arg);

/* ---- privacy and retention ----------------------------------------- */

/* What forgetting a number deleted. */
struct store_forget_counts {
  uint64_t calls, list_entries, numbers;
};

typedef void (*store_forget_cb)(void *arg, int rc,
                                const struct store_forget_counts *counts);

/*
 * Deletes the call records whose caller is `number`, the list entries
 * that are exactly `number` and the number's record, in one batch; the
 * counts are borrowed until the callback returns. Callback contract as
 * for store_call_load(). (A call of the number still in progress is
 * written again by its next event.)
 */
int store_forget(struct store *st, const char *number, store_forget_cb cb,
                 void *arg);

/*
 * Deletes the call records started before `before_ms` (store.retention_
 * days), a bounded number per batch so that calls keep being written in
 * between; logs how many once done. Returns 0 or VS_ERR_BUSY/NOMEM.
 */
int store_purge(struct store *st, int64_t before_ms);

/* 1 while the last batch committed, 0 after a database error. */
int store_healthy(const struct store *st);

/* Operations queued and not yet committed. */
size_t store_queue_depth(const struct store *st);

/*
 * Counters of a store since it was opened, for tests and for /metrics.
 * They are updated with relaxed atomics by the thread that does the work, so a
 * snapshot taken while the store is busy is consistent per counter, not across
 * counters. The evidence of group commit is `batches` (one transaction each)
 * against `saved`.
 */
struct store_stats {
  uint64_t batches;   /* transactions begun by the worker, one per batch */
  uint64_t failed;    /* of those, rolled back after an error */
  uint64_t saved;     /* records written (saves of calls, list entries
                         and numbers, list deletes) by committed batches */
  uint64_t lost;      /* records in failed batches, not written */
  uint64_t loaded;    /* loads (of a call or of the screening state)
                         answered by the database, found or not */
  uint64_t dropped;   /* saves refused with VS_ERR_BUSY */
  uint64_t evicted;   /* live calls pushed out of a full cache */
  uint64_t log_waits; /* decisions not answered on the answer log's word
                         but after their commit, the store being behind
                         or the log full (store_call_save_logged) */
  uint64_t max_batch; /* operations in the largest batch so far */
};

/* Copies the counters of `st` into the caller's *out. Any thread. */
void store_stats_get(const struct store *st, struct store_stats *out);

/* ---- for tools: synchronous, any thread but the loop's --------------- */

/*
 * The tools below and store_open() take a location: a SQLite file path,
 * or a PostgreSQL URL (postgresql://user@host:port/db; the password is
 * best left to PGPASSWORD or ~/.pgpass). store_location_safe() writes
 * into `buf` a form of `location` fit for logs, with any password in the
 * URL replaced by "***", and returns `buf`.
 */
int store_location_is_url(const char *location);
const char *store_location_safe(const char *location, char *buf, size_t size);

struct store_query {
  unsigned limit;       /* newest first (see oldest_first); 0 = none */
  int64_t since_ms;     /* only calls started at or after; 0 = all */
  const char *caller;   /* exact normalised number, or NULL */
  const char *decision; /* "allow", "block", "challenge", or NULL */
  int oldest_first;     /* replay reads history forwards */
};

/* Called once per matching record; return non-zero to stop. */
typedef int (*store_row_cb)(void *arg, const struct call *call);

/*
 * Reads call records from the database file at `path` (read-only, so it can
 * run while a server has the file open) and calls `cb` for each, newest
 * first. Returns 0 or a negative vs_err code with the reason in `err`.
 */
int store_calls_list(const char *path, const struct store_query *q,
                     store_row_cb cb, void *arg, char *err, size_t errlen);

/*
 * List management for tools (the `list` command), synchronous on the
 * calling thread with a connection of its own (SQLite's busy timeout lets
 * it wait for a running server's batch). The database is created if
 * missing. Each returns 0 or a negative vs_err code with the reason in
 * `err`; delete returns VS_ERR_NOTFOUND when there was no such entry.
 */
int store_lists_put(const char *path, const struct list_entry *entries,
                    size_t n, char *err, size_t errlen);
int store_lists_delete(const char *path, enum list_kind kind,
                       const char *entry, char *err, size_t errlen);

/* Opens (creating and migrating) the database at `path`, and closes it. */
int store_migrate(const char *path, char *err, size_t errlen);

/* store_forget() for tools, on the database at `path`, synchronously. */
int store_forget_offline(const char *path, const char *number,
                         struct store_forget_counts *out, char *err,
                         size_t errlen);

/* Called once per entry, ordered by kind then entry; non-zero stops. */
typedef int (*store_list_cb)(void *arg, const struct list_entry *e);

/* Entries of `kind` (or both when kind < 0), expired ones included. */
int store_lists_read(const char *path, int kind, store_list_cb cb, void *arg,
                     char *err, size_t errlen);

#endif
