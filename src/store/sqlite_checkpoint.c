/*
 * The SQLite checkpointer (see sqlite_checkpoint.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "../util/err.h"
#include "../util/log.h"
#include "../util/thread.h"
#include "sqlite_checkpoint.h"

/*
 * The writer's hook and this thread share `lock`: `wanted` says a
 * checkpoint was asked for since the last one started, `stopping` that
 * sqlite_checkpointer_stop() was called. `db` belongs to the thread.
 */
struct sqlite_checkpointer {
  sqlite3 *writer;
  sqlite3 *db;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int wanted;
  int stopping;
  atomic_ulong runs;
};

/* The checkpointer's thread: one PASSIVE checkpoint per request. */
static void *checkpoint_thread(void *arg)
{
  struct sqlite_checkpointer *c = arg;
  int logged = 0;

  for (;;) {
    int frames = 0, copied = 0, rc;

    pthread_mutex_lock(&c->lock);
    while (!c->wanted && !c->stopping)
      pthread_cond_wait(&c->wake, &c->lock);
    if (c->stopping) {
      pthread_mutex_unlock(&c->lock);
      break;
    }
    c->wanted = 0;
    pthread_mutex_unlock(&c->lock);

    rc = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE,
                                   &frames, &copied);
    atomic_fetch_add(&c->runs, 1);
    /* BUSY is another connection's checkpoint running: the next commit
     * asks again. Anything else is worth saying once per failure run. */
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && !logged) {
      log_warn("sqlite checkpoint failed, the WAL grows until one succeeds|"
               "error=\"%s\"",
               sqlite3_errmsg(c->db));
      logged = 1;
    } else if (rc == SQLITE_OK) {
      logged = 0;
    }
  }
  return NULL;
}

/*
 * Runs on the writer's thread after each of its commits, with the frames
 * now in the WAL. Past SQLITE_CHECKPOINT_FRAMES every commit asks again,
 * so the thread keeps copying until it has caught up and the WAL can
 * start over.
 */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
  struct sqlite_checkpointer *c = arg;

  if (frames >= SQLITE_CHECKPOINT_BACKSTOP) {
    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  } else if (frames >= SQLITE_CHECKPOINT_FRAMES) {
    pthread_mutex_lock(&c->lock);
    if (!c->wanted) {
      c->wanted = 1;
      pthread_cond_signal(&c->wake);
    }
    pthread_mutex_unlock(&c->lock);
  }
  return SQLITE_OK;
}

int sqlite_checkpointer_start(sqlite3 *writer, const char *path,
                              struct sqlite_checkpointer **out, char *err,
                              size_t errlen)
{
  struct sqlite_checkpointer *c = calloc(1, sizeof(*c));
  int rc;

  if (!c)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory");
  c->writer = writer;
  rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE, NULL);
  if (rc != SQLITE_OK) {
    rc = vs_fail(err, errlen, VS_ERR_IO, "cannot open %s for checkpoints: %s",
                 path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    goto fail_close;
  }
  /* A checkpoint's fsyncs follow the checkpointing connection's setting:
   * the same as the writer's. */
  rc = sqlite3_exec(c->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    rc = vs_fail(err, errlen, VS_ERR_IO, "cannot configure %s: %s", path,
                 sqlite3_errmsg(c->db));
    goto fail_close;
  }
  if (pthread_mutex_init(&c->lock, NULL)) {
    rc = vs_fail(err, errlen, VS_ERR_NOMEM, "cannot create a mutex");
    goto fail_close;
  }
  if (pthread_cond_init(&c->wake, NULL)) {
    rc = vs_fail(err, errlen, VS_ERR_NOMEM, "cannot create a condition");
    goto fail_mutex;
  }
  if (thread_start(&c->thread, checkpoint_thread, c, "vs-checkpoint")) {
    rc = vs_fail(err, errlen, VS_ERR_NOMEM,
                 "cannot start the checkpoint thread");
    goto fail_cond;
  }
  /* Replaces SQLite's automatic checkpoint, which is itself a WAL hook. */
  sqlite3_wal_hook(writer, on_wal_commit, c);
  *out = c;
  return VS_OK;

fail_cond:
  pthread_cond_destroy(&c->wake);
fail_mutex:
  pthread_mutex_destroy(&c->lock);
fail_close:
  sqlite3_close_v2(c->db);
  free(c);
  return rc;
}

void sqlite_checkpointer_stop(struct sqlite_checkpointer *c)
{
  if (!c)
    return;
  /* SQLite's default, which sqlite3_wal_hook() replaced. */
  sqlite3_wal_autocheckpoint(c->writer, 1000);
  pthread_mutex_lock(&c->lock);
  c->stopping = 1;
  pthread_cond_signal(&c->wake);
  pthread_mutex_unlock(&c->lock);
  pthread_join(c->thread, NULL);
  pthread_cond_destroy(&c->wake);
  pthread_mutex_destroy(&c->lock);
  sqlite3_close_v2(c->db);
  free(c);
}

unsigned long sqlite_checkpointer_runs(struct sqlite_checkpointer *c)
{
  return c ? atomic_load(&c->runs) : 0;
}
