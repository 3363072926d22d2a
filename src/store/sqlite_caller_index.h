/*
 * The SQLite store's index of calls by caller, kept up in bulk.
 *
 * An index of calls on (caller, started_ms) written by every commit puts
 * each new call on a random page of the index, since consecutive calls
 * come from unrelated numbers: one page written to the WAL and later
 * copied back by the checkpointer for every call recorded. With that
 * index dropped, cache-hit incoming_call went from 24,000 to 34,000
 * requests/s and the checkpoint thread from 22% of a core to 7%
 * (bench/README.md).
 *
 * So calls_by_caller indexes the calls up to a rowid, caller_index.through;
 * the calls after it are pending, and this module moves them into the
 * index a few hundred at a time, sorted by caller, so that a page of the
 * index is written once for all the calls a pass brings to it. Queries by
 * caller read the index and the pending calls (store_sqlite.c), so the
 * index is never stale, only partly pending. An entry never changes, since
 * a call's caller and start are fixed by its first record
 * (CALL_UPSERT_SET); forget and the purge delete entries with their calls.
 * The schema is migration 4 in store_sqlite.c.
 *
 * Entries name calls by rowid, which no INTEGER PRIMARY KEY of `calls`
 * pins down. VACUUM and VACUUM INTO (the backups of docs/deployment.md)
 * kept rowids in SQLite 3.40 when tried by hand, but SQLite does not
 * promise it, so a list checks an entry's caller and start against the
 * call it names, and forget the caller. Rebuilding `calls` with such a key
 * took 14 s for a million calls; it is left for the rebuild that the index by
 * reference needs (bench/README.md), so that an upgrade pays for one.
 *
 * Threads: one at a time, the one that owns the writer connection (the
 * store's worker).
 */
#ifndef VS_STORE_SQLITE_CALLER_INDEX_H
#define VS_STORE_SQLITE_CALLER_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Calls saved since the last pass that start a new pass at once. */
#define CALLER_INDEX_PASS_SAVES 32768
/* Otherwise a pass starts this long after the last, if anything was saved. */
#define CALLER_INDEX_PASS_MS 1000
/*
 * Calls one pass takes (the rest wait for the next), at 16 bytes each:
 * sorting them holds the worker for about 2 ms once a pass.
 */
#define CALLER_INDEX_PASS_MAX 32768
/*
 * Calls one step moves into the index, in a transaction of its own, well
 * under a millisecond; reading the pass, a step reads four times as many.
 */
#define CALLER_INDEX_CHUNK 256

struct sqlite_caller_index;

/*
 * A new index keeper for `db`, the writer connection, which stays the
 * caller's and must outlive it. Statements are prepared on first use.
 * Returns VS_OK or VS_ERR_NOMEM.
 */
int sqlite_caller_index_create(sqlite3 *db, struct sqlite_caller_index **out);

/* Frees `ci` and its statements; NULL is a no-op. Not in a transaction. */
void sqlite_caller_index_destroy(struct sqlite_caller_index *ci);

/* Counts a saved call towards the next pass. */
void sqlite_caller_index_saved(struct sqlite_caller_index *ci);

/*
 * Outside any transaction: starts a pass when one is due (see above) and
 * does its next step: reads the next pending calls, or moves the next
 * CALLER_INDEX_CHUNK of them, sorted by caller, in a transaction of its
 * own; the last step of a pass also moves caller_index.through past the
 * pass's calls. `now_ms` is a monotonic clock. Returns VS_OK, or a vs_err
 * code with the reason in `err`; after an error the pass is abandoned
 * and the next one starts over from caller_index.through, so nothing is
 * lost.
 */
int sqlite_caller_index_step(struct sqlite_caller_index *ci, int64_t now_ms,
                             char *err, size_t errlen);

/*
 * In the transaction that deleted calls, after the deletes: abandons the
 * pass in progress and lowers caller_index.through to the newest call
 * left. A deleted newest call lets SQLite give its rowid to the next
 * call, which must then be pending, and the pass would take it for one it
 * had read. Returns VS_OK, or a vs_err code with the reason in `err`,
 * which fails the transaction.
 */
int sqlite_caller_index_deleted(struct sqlite_caller_index *ci, char *err,
                                size_t errlen);

#endif
