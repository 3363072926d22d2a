/*
 * The store: where call records (and the per-call IVR state they carry)
 * live, behind an interface that a second backend can implement.
 *
 * Threads. The loop thread owns the struct store and calls every function
 * below except store_calls_list(). The backend (SQLite today) runs on one
 * worker thread that the store starts; the loop never touches the disk.
 * Writes are queued and committed by the worker in batches (one
 * transaction per batch, so records at full rate cost one fsync per batch,
 * not per call); results of loads come back to the loop through an eventfd.
 *
 * Live calls. Calls in progress are also kept in memory on the loop thread,
 * so that the events of a call normally find their state without a round
 * trip to the worker. A backend shared by several instances (a later
 * PostgreSQL one) would turn that cache off: it is an optimisation of the
 * single-instance backend, never the source of truth. The database is: a
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

struct loop;
struct store;

struct store_options {
  const char *path;   /* SQLite file; its directory is created if missing */
  unsigned cache_max; /* live calls kept in memory; 0 = default 65536 */
  unsigned queue_max; /* queued operations before saves fail; 0 = 65536 */
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
 * A call whose step is CALL_STEP_ENDED leaves the in-memory cache once
 * written. Returns 0, VS_ERR_NOMEM, or VS_ERR_BUSY (queue full: the write is
 * dropped and counted, and the store reports itself unhealthy).
 */
int store_call_save(struct store *st, const struct call *call);

/* 1 while the last batch committed, 0 after a database error. */
int store_healthy(const struct store *st);

/* Operations queued and not yet committed. */
size_t store_queue_depth(const struct store *st);

/* ---- for tools: synchronous, any thread but the loop's --------------- */

struct store_query {
  unsigned limit;       /* most recent first; 0 = no limit */
  int64_t since_ms;     /* only calls started at or after; 0 = all */
  const char *caller;   /* exact normalised number, or NULL */
  const char *decision; /* "allow", "block", or NULL */
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

#endif
