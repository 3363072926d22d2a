/*
 * The answer log: a copy of each call record, written to a memory-mapped
 * file by the loop thread before the answer that depends on it, so that a
 * decision a caller heard survives the process being killed without the
 * answer waiting for the store's commit.
 *
 * Why a mapping. A store of the page cache survives the death of the
 * process exactly as a commit of SQLite in WAL mode with
 * synchronous=NORMAL does (neither survives a power cut), and costs a
 * copy of the record, with no system call and no wait on the disk. The
 * commit that the answer used to wait for took most of the cache-hit
 * answer's latency and left the cores idle meanwhile (bench/README.md).
 *
 * The file is a ring of fixed-size chunks after a header. Each entry has a
 * sequence number, increasing across runs, and a checksum, so that an
 * entry torn by a kill in the middle of its copy is seen as absent (and
 * it was never answered). The store writes the sequence number of the
 * newest record each batch wrote into the database, in that batch's
 * transaction (`through`); a chunk is written again only once every entry
 * in it is through. At start the entries past `through` are the records
 * the process answered and the database never got: answer_log_replay()
 * hands them back, oldest first. The header holds the database's identity,
 * so that a log never replays into a database it was not written for.
 *
 * Threads. Open, replay, start and close run on the thread that opens and
 * closes the store, with no other thread using the log; append runs on
 * the loop thread only; answer_log_through() on the store's worker only;
 * answer_log_committed() on any thread.
 */
#ifndef VS_STORE_ANSWER_LOG_H
#define VS_STORE_ANSWER_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

/* Chunk size: an entry never spans two. */
#define ANSWER_LOG_CHUNK (64 * 1024)
/* The smallest log: the header and two chunks, so that one can be written
 * while the other waits for its records to be committed. */
#define ANSWER_LOG_MIN_BYTES (4096 + 2 * ANSWER_LOG_CHUNK)

struct answer_log;

/*
 * Opens the log at `path`, creating it or resizing it to `bytes` (rounded
 * down to whole chunks, at least ANSWER_LOG_MIN_BYTES) as needed, maps it
 * and takes an exclusive lock on it, so that a second server on the same
 * database is refused. `db_id` is the database's identity: a log written
 * for another one has nothing to replay. On success *out is the caller's
 * until answer_log_close(); on failure it is untouched and `err` says why,
 * with the path.
 */
int answer_log_open(const char *path, size_t bytes, uint64_t db_id,
                    struct answer_log **out, char *err, size_t errlen);

/* A record to write again: borrowed for the call; non-zero stops. */
typedef int (*answer_log_replay_cb)(void *arg, const struct call *c);

/*
 * Calls `cb` with each entry whose sequence number is past `through`, in
 * order, and sets *last to the newest sequence number in the log (at
 * least `through`): the store writes the records and then `through` =
 * *last in one transaction, then calls answer_log_start(). Call once,
 * after open. Returns 0, VS_ERR_NOMEM, or
 * what `cb` returned.
 */
int answer_log_replay(struct answer_log *log, uint64_t through,
                      answer_log_replay_cb cb, void *arg, uint64_t *last);

/*
 * Starts this run's ring once the store has committed the replayed
 * records and `through` = `last`: the file starts over, empty, at the
 * size given to open, and appends go on from `last` + 1. Returns 0, or
 * VS_ERR_IO with the reason in `err` (a full disk, say).
 */
int answer_log_start(struct answer_log *log, uint64_t last, char *err,
                     size_t errlen);

/*
 * Copies `c` into the log and returns 0 with its sequence number in *seq.
 * VS_ERR_BUSY when the chunk it would go to still holds records not yet
 * committed (the store is far behind): nothing was written and the caller
 * must wait for the commit instead. VS_ERR_INVAL when the record cannot be
 * packed. `c` stays the caller's.
 */
int answer_log_append(struct answer_log *log, const struct call *c,
                      uint64_t *seq);

/* The store committed every record up to `seq`: their chunks may be
 * written again. */
void answer_log_through(struct answer_log *log, uint64_t seq);

/* The newest `seq` given to answer_log_through(), or the start's. */
uint64_t answer_log_committed(const struct answer_log *log);

/* Unmaps, unlocks and frees the log. NULL is a no-op. */
void answer_log_close(struct answer_log *log);

#endif
