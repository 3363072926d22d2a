/*
 * Checkpoints an SQLite database in WAL mode from a thread and a
 * connection of its own, so that the store worker's commits never wait
 * for a checkpoint.
 *
 * With synchronous=NORMAL a commit only appends to the WAL; the fsyncs
 * happen at checkpoints, which copy the WAL back into the database file.
 * SQLite's automatic checkpoint runs them inside the commit that crosses
 * the threshold, on the committing thread: on ext4 that stalled the
 * worker for milliseconds every few thousand calls, and every answer
 * waiting for its record to commit stalled with it (bench/README.md).
 * Here the writer's commit hook only signals this thread, which runs a
 * PASSIVE checkpoint: it copies what it can without blocking the writer.
 *
 * The WAL's size stays bounded: see SQLITE_CHECKPOINT_BACKSTOP.
 *
 * Threads: start and stop while no other thread uses the writer
 * connection (the store opens and closes it before and after its worker
 * runs); the hook then runs on the worker, the checkpoints on the
 * checkpointer's own thread.
 */
#ifndef VS_STORE_SQLITE_CHECKPOINT_H
#define VS_STORE_SQLITE_CHECKPOINT_H

#include <stddef.h>

#include <sqlite3.h>

/*
 * WAL frames (pages) past which checkpoints are asked for. SQLite's
 * automatic one runs every 1,000; at 4,000 (16 MiB) a checkpoint copies a
 * hot page once for four times as many commits, which took the thread
 * from a quarter of a core to a sixth at 30,000 cache-hit calls a second.
 * At 16,000 (64 MiB) the thread's CPU a cache-hit call went from 2.3-2.4
 * to 1.6-1.8 us on a new database (82,500-84,500 requests/s against
 * 85,700-86,400) and from 3.5-3.8 to 2.7-2.8 us on one of 2.8 million
 * calls (67,700-70,000 against 71,100-73,100), p99 and peak RSS unchanged
 * (bench/README.md). The WAL file keeps its size on disk anyway
 * (SQLITE_WAL_LIMIT in store_sqlite.c), and readers look a page up in
 * the WAL's index in memory, whatever its length.
 */
#define SQLITE_CHECKPOINT_FRAMES 16000
/*
 * The WAL only starts over once a checkpoint has copied all of it, which
 * a thread beside a writer that never pauses may not manage. At this many
 * frames (256 MiB) the writer checkpoints itself, as SQLite would, and the
 * WAL starts over at its next commit.
 */
#define SQLITE_CHECKPOINT_BACKSTOP 65536

struct sqlite_checkpointer;

/*
 * Opens a second connection to `path` and starts the thread, then takes
 * over the checkpoints of `writer` (which stays the caller's; it must
 * outlive the checkpointer). Returns VS_OK, or an error code with the
 * reason in `err`; on error `writer` keeps SQLite's automatic checkpoints.
 */
int sqlite_checkpointer_start(sqlite3 *writer, const char *path,
                              struct sqlite_checkpointer **out, char *err,
                              size_t errlen);

/*
 * Stops the thread (after the checkpoint it is running, if any), closes
 * its connection, gives `writer` back SQLite's automatic checkpoints and
 * frees `c`. NULL is a no-op.
 */
void sqlite_checkpointer_stop(struct sqlite_checkpointer *c);

/* Checkpoints run by the thread so far (for tests and the logs). */
unsigned long sqlite_checkpointer_runs(struct sqlite_checkpointer *c);

#endif
