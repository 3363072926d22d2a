/*
 * The SQLite store's indexes of calls, by caller and by reference, kept
 * up in bulk.
 *
 * An index that every commit writes puts each new call on a random page
 * of it when consecutive calls have unrelated keys: one page written to
 * the WAL and later copied back by the checkpointer for every call
 * recorded. Consecutive calls come from unrelated numbers, and TeleSign's
 * references are random. With the index of calls by caller dropped,
 * cache-hit incoming_call went from 24,000 to 34,000 requests/s and the
 * checkpoint thread from 22% of a core to 7%; the index by reference then
 * cost as much again once the benchmark sent random references, and kept
 * in bulk too it went from 19,600-23,000 to 26,500-27,800 requests/s, the
 * checkpoint thread from 30% of a core to 9% (bench/README.md).
 *
 * So calls_by_caller and calls_by_ref (with calls_by_ref_recent, below)
 * index the calls up to a rowid, call_index.through; the calls after it are
 * pending, and this module moves them into both indexes some hundreds at a
 * time, sorted by key, so that a page of an index is written once for all the
 * calls a pass brings to it. Queries by caller read the index and the pending
 * calls (store_sqlite.c). A call is found by reference in the index or, when
 * pending, in a table in memory of the pending calls' references (hashed)
 * and rowids, which the worker fills as it inserts calls and reloads from
 * the database after anything that could make it wrong: a rollback, a
 * delete, a start. So an index is never stale, only partly pending.
 *
 * The index by reference has two levels once it is big. A pass brings
 * its entries to calls_by_ref about one to a page when the index has many
 * more pages than a pass has calls: on 3.7 million calls that was 2.3
 * pages written per cache-hit incoming_call against 0.8 without the
 * entries, and 28,200 requests/s against 40,600 (bench/README.md). So past
 * CALL_INDEX_RECENT_FROM calls the passes write calls_by_ref_recent, kept
 * small enough for a pass to bring many entries to each of its pages, and
 * when it holds a sixteenth of the calls it is merged, in key order and a
 * step at a time, into calls_by_ref, five or six entries to each page. A
 * look-up reads both levels; a merge step moves entries in one
 * transaction, so that each is in one level or the other. Below that size
 * a pass brings its entries several to a page of calls_by_ref already, and
 * merges would only add work (with the recent level used from the first
 * call, a new database's store worker took 1-2 us more a request).
 *
 * Most calls the worker looks up are new ones, whose reference is in
 * neither: reading calls_by_ref to be sure took a page at random of an
 * index as big as the calls, 22% of the worker's time at cache-hit
 * incoming_call. A Bloom filter of the references in both levels
 * (util/bloom.h) answers most of those in memory instead; it is loaded
 * from them a step at a time after a start, while the passes add what
 * they index, and until it holds every reference the index is read.
 *
 * An entry never changes, since a call's reference, caller and start are
 * fixed by its first record (CALL_UPSERT_SET); forget and the purge
 * delete entries with their calls. Entries name calls by `calls.id`, an
 * INTEGER PRIMARY KEY, which VACUUM keeps. The schema is migrations 4 and
 * 5 in store_sqlite.c.
 *
 * Threads: one at a time, the one that owns the writer connection (the
 * store's worker).
 */
#ifndef VS_STORE_SQLITE_CALL_INDEX_H
#define VS_STORE_SQLITE_CALL_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Calls inserted since the last pass that start a new pass at once. */
#define CALL_INDEX_PASS_SAVES 32768
/* Otherwise a pass starts this long after the last, if anything was saved. */
#define CALL_INDEX_PASS_MS 1000
/*
 * Calls one pass takes (the rest wait for the next), at about 140 bytes
 * each (two sort keys, room to sort them, and their text): sorting them
 * holds the worker for about 1.5 ms once a pass.
 */
#define CALL_INDEX_PASS_MAX 32768
/*
 * Entries one step moves into an index, in a transaction of its own, well
 * under a millisecond. Four entries are owed for every call added (two
 * indexes, and the pass reads each call too), so that the passes keep up
 * with any rate; a step pays CALL_INDEX_CHUNK of what is owed, or more
 * when it is far behind (CALL_INDEX_OWED_MAX), and says when more is due
 * (sqlite_call_index_step). Reading the pass, a step reads four times as
 * many calls.
 */
#define CALL_INDEX_CHUNK 256
/*
 * The most one step moves when the indexes are far behind, a few
 * milliseconds: a batch that arrives while the worker pays what a burst of
 * calls left owed waits for one step, not for all of it. Paying it all at once
 * after each batch (a step of four entries for each call the batch added) fed
 * on itself: a late batch is a big one, its step long, the next batch bigger,
 * and the worker's backlog went from tens of operations to 12,000 and more.
 * Steps of at most 4,096 entries took cache-hit p99 from 14.2-23.2
 * to 11.7-13.8 ms on a new database and left a database of 2.8 million calls
 * where it was (p99 19.9-28.9 ms against 22.5-26.2); steps of at most 1,024
 * did about as well on the new database (8.4-17.8 ms) and worse on the full
 * one (28.4-34.8 ms), each step being a transaction of its own
 * (bench/README.md).
 */
#define CALL_INDEX_STEP_MAX 4096
/*
 * Owed entries past which the next step is due before the next batch, so
 * that the indexes never fall further behind than this however busy the
 * worker is: about 8,000 calls, a tenth of a second at the benchmark's
 * rates, eight steps of CALL_INDEX_STEP_MAX.
 *
 * Up to it a step moves only CALL_INDEX_CHUNK entries, and the worker
 * looks for a batch between two steps (store_maintain): with steps of up
 * to CALL_INDEX_STEP_MAX at any debt, batches waited behind them, the
 * store fell behind its bound by turns (STORE_LAG_MS in store.c) and the
 * loop idled meanwhile. Short steps unless far behind took cache-hit
 * incoming_call from 77,200-79,400 to 81,500-85,600 requests/s (p99 3.9
 * ms against 4.6-4.7, the machine idle 8% against 11%) on a new database
 * and from 63,200-66,500 to 66,600-68,900 (p99 6.1-7.5 ms against
 * 6.5-8.3) on one of 2.8 million calls; short steps at any debt
 * (CALL_INDEX_STEP_MAX 256) did as well on the new database but let the
 * full one's tail reach 37 ms (bench/README.md).
 */
#define CALL_INDEX_OWED_MAX 32768
/*
 * Pending calls the table in memory holds by default, 16 bytes each in a
 * table at most half full: 4 MiB. Four passes' worth; should the passes
 * fall further behind, the calls past it are found by reading them.
 */
#define CALL_INDEX_PENDING_MAX 131072
/*
 * References a step reads into the filter while it loads: a
 * million-call database takes about a thousand steps, each well under a
 * millisecond.
 */
#define CALL_INDEX_FILTER_LOAD 1024
/*
 * Bits of filter per reference, for 0.4% of new calls to read the index
 * anyway: 2 bytes a call. Sized on a start for twice the calls indexed, at
 * least 2^CALL_INDEX_FILTER_MIN_LOG2 bits (128 KiB), it grows fourfold and
 * loads again when full, up to 2^CALL_INDEX_FILTER_MAX_LOG2 bits (16 MiB,
 * 8 million references); past that more new calls read the index (3.75%
 * of them at twice as many references), and no call is ever missed.
 */
#define CALL_INDEX_FILTER_BITS_PER_REF 16
/*
 * A merge starts when the recent level holds CALL_INDEX_MERGE_MIN entries
 * and 1/CALL_INDEX_MERGE_SHARE of the calls indexed, and moves all of it,
 * at least CALL_INDEX_MERGE_CHUNK entries a step (each step its own
 * transaction) and twice the calls added since the last step.
 */
#define CALL_INDEX_MERGE_MIN   65536
#define CALL_INDEX_MERGE_SHARE 16
#define CALL_INDEX_MERGE_CHUNK 256
/* Calls indexed from which passes write the recent level. */
#define CALL_INDEX_RECENT_FROM     (CALL_INDEX_MERGE_SHARE * CALL_INDEX_MERGE_MIN)
#define CALL_INDEX_FILTER_MIN_LOG2 20
#define CALL_INDEX_FILTER_MAX_LOG2 27

/* An index keeper's sizes: the defaults above, but in tests. */
struct sqlite_call_index_limits {
  size_t pending_max;       /* calls the table in memory holds */
  size_t filter_load;       /* references a step reads into the filter, 2+ */
  unsigned filter_min_log2; /* the smallest filter, in bits */
  size_t merge_min;         /* recent entries a merge needs at least */
  uint64_t recent_from;     /* calls indexed before the recent level is used */
  size_t step_max;          /* most entries a step far behind moves: 0 for
                             * CALL_INDEX_STEP_MAX, at least CALL_INDEX_CHUNK */
  size_t owed_max;          /* 0 for CALL_INDEX_OWED_MAX */
};

struct sqlite_call_index;

/*
 * A new index keeper for `db`, the writer connection, which stays the
 * caller's and must outlive it; `limits` (copied; NULL for the defaults)
 * sizes it. Statements are prepared on first use, the filter on the first
 * step. Returns VS_OK or VS_ERR_NOMEM.
 */
int sqlite_call_index_create(sqlite3 *db,
                             const struct sqlite_call_index_limits *limits,
                             struct sqlite_call_index **out);

/* Frees `ci` and its statements; NULL is a no-op. Not in a transaction. */
void sqlite_call_index_destroy(struct sqlite_call_index *ci);

/*
 * In the worker's transaction: sets *id to the `calls.id` of the call
 * whose reference is `ref`, or to 0 when there is none. `ref` stays the
 * caller's. Returns VS_OK, or a vs_err code with the reason in `err`.
 */
int sqlite_call_index_find(struct sqlite_call_index *ci, const char *ref,
                           int64_t *id, char *err, size_t errlen);

/*
 * In the transaction that inserted it: call `ref` is new, as `id`, and
 * counts towards the next pass. Nothing to fail: when the table in memory
 * is full, the call is found by reading it instead.
 */
void sqlite_call_index_added(struct sqlite_call_index *ci, const char *ref,
                             int64_t id);

/*
 * After the transaction that added calls was rolled back, or may have
 * been: the table in memory is reloaded before its next use.
 */
void sqlite_call_index_rolled_back(struct sqlite_call_index *ci);

/*
 * Outside any transaction: starts a pass when one is due (see above) and
 * does its next step: reads the next pending calls, or moves the next
 * entries (CALL_INDEX_CHUNK, up to the limits' step_max when far behind)
 * into an index, in a
 * transaction of its own; the last step of a pass also moves
 * call_index.through past the pass's calls, unless another connection
 * deleted the newest of them meanwhile (the pass then starts over). Then
 * it moves the next entries of a merge, when one is due or going on, in a
 * transaction of its own, and until the filter holds every indexed
 * reference it reads the next CALL_INDEX_FILTER_LOAD into it. `now_ms` is
 * a monotonic clock. Sets *due (the caller's) to 0 when nothing more is
 * owed, 1 when another step is owed and should run once no batch waits,
 * 2 when more than the limits' owed_max is owed and the next step should
 * run first. Returns VS_OK, or a vs_err code with the reason in `err`;
 * after an error the pass is abandoned and the next one starts over from
 * call_index.through, and the merge and the filter's load go on at the
 * next step, so nothing is lost.
 */
int sqlite_call_index_step(struct sqlite_call_index *ci, int64_t now_ms,
                           int *due, char *err, size_t errlen);

/*
 * In the transaction that deleted calls, after the deletes: abandons the
 * pass in progress, lowers call_index.through to the newest call left and
 * reloads the table in memory before its next use. A deleted newest call
 * lets SQLite give its id to the next call, which must then be pending,
 * and the pass would take it for one it had read. Returns VS_OK, or a
 * vs_err code with the reason in `err`, which fails the transaction.
 */
int sqlite_call_index_deleted(struct sqlite_call_index *ci, char *err,
                              size_t errlen);

#endif
