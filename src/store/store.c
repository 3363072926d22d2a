/*
 * The store (see store.h), on top of a backend (store_backend.h).
 *
 * Two threads meet here. The loop thread calls the public functions and
 * owns the cache of live calls; the worker thread owns the backend handle
 * and does all the I/O. They share one bounded FIFO of operations and one
 * list of completed loads, both under `lock`. Operations are writes (of a
 * call, a list entry, a list delete or a number record) and loads (of a
 * call, or of the whole screening state); they all share the one queue, so
 * that every kind is ordered with every other.
 *
 * Group commit. The worker takes everything queued at once and runs it as
 * one batch in one transaction: at a high call rate the queue fills while
 * the previous batch commits, so the cost of a commit is shared by every
 * record that arrived meanwhile, and at a low rate a batch is one record
 * and is written at once. No timer is involved.
 *
 * A failed batch (begin, a write, or the commit) is rolled back whole: its
 * saves are lost and logged (but those of the answer log, which the next
 * batch runs again, STORE_RETRY_MS), its loads complete with the error, the
 * store reports itself unhealthy until a batch commits again, and the worker
 * goes on with the next batch. Retrying the same batch would block every later
 * record behind a disk that may stay broken.
 *
 * The list tools at the end of the file run on the caller's thread with a
 * connection of their own; they share nothing with a store.
 *
 * Bounds. `held` counts every operation admitted and not finished (a save
 * until its batch is done, a load until its callback has run) and never
 * passes queue_max; the cache never holds more than cache_max records. At
 * the ceiling saves fail with VS_ERR_BUSY instead of waiting: the loop must
 * never block on the disk.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../loop/loop.h"
#include "../util/err.h"
#include "../util/hash.h"
#include "../util/log.h"
#include "../util/thread.h"
#include "answer_log.h"
#include "call.h"
#include "records.h"
#include "store.h"
#include "store_backend.h"
#include "store_postgres.h"
#include "store_schema.h"
#include "store_sqlite.h"

/*
 * Memory bounds (a cached call is packed to 250-400 bytes, a queued one
 * is a 1 KiB struct call): 16,384 live calls in memory
 * (a call not resident is loaded from the database on its next event, so
 * the bound costs a load, never an answer) and 32,768 queued writes, which
 * at 10,000 calls/s is over three seconds of a stalled disk.
 */
#define STORE_DEFAULT_CACHE 16384
#define STORE_DEFAULT_QUEUE 32768
#define STORE_MAX_BUCKETS   (1u << 20) /* past this, chains grow instead */
#define STORE_LOG_EVERY_MS  1000       /* at most one line per second */
#define STORE_WHY_SIZE      256

/*
 * Recent calls a state load returns at most. Velocity needs no more than
 * NUMBERS_VELOCITY_RING (32) calls for each of the numbers the screening
 * module keeps (100,000 by default), and a window at a high call rate
 * could otherwise hold far more rows than memory: past the ceiling the
 * oldest calls are left out (and logged), which undercounts only numbers
 * that called long ago in the window. 48 bytes each: 192 MiB at most.
 */
#define STORE_STATE_MAX_RECENT (4u << 20)

enum store_op_kind {
  STORE_OP_SAVE,        /* a call record */
  STORE_OP_LOAD,        /* a call record */
  STORE_OP_LIST_SAVE,   /* upsert of a list entry */
  STORE_OP_LIST_DELETE, /* removal of a list entry (kind, entry) */
  STORE_OP_NUMBER_SAVE, /* upsert of a number record */
  STORE_OP_STATE,       /* store_state_load() */
  STORE_OP_CALLS,       /* store_calls_query() */
  STORE_OP_STATS,       /* store_call_stats() */
  STORE_OP_FORGET,      /* store_forget() */
  STORE_OP_PURGE,       /* store_purge() */
  STORE_OP_VISIT,       /* store_visit_number() */
  STORE_OP_UPDATE       /* store_number_update(), a write */
};

/*
 * Times a batch runs when it conflicts with another instance's (a
 * deadlock the database broke by aborting ours): the conflict is gone once
 * the other batch commits, so a second try normally succeeds.
 */
#define STORE_BATCH_TRIES 3

/*
 * While a shared backend's batches fail, the worker tries an empty
 * transaction this often when nothing else is queued, so that the store
 * reconnects (and /health recovers) without waiting for traffic.
 */
#define STORE_PROBE_MS 250

/*
 * A batch that fails to commit keeps the call records of the answer log
 * it held (their answers went out already, on the log's word) and runs
 * them again at the head of the next batch, or this long after the
 * failure when nothing else comes (a full disk that frees again).
 */
#define STORE_RETRY_MS 250

/*
 * An answer goes out before its record's commit only while the store
 * keeps up: while what the worker has yet to commit was handed to it less
 * than this long ago. Past it answers wait for their commit again (their
 * records still go to the answer log, save_call), and the loop, idle
 * meanwhile, leaves the cores to the worker. The shorter the bound, the
 * shorter each wait: on two cores shared with the load the worker falls
 * behind by turns even on a new database, and with 20 ms every wait was
 * one of 20 ms or more, cache-hit p99 11.4-13.3 ms, against 6.0-6.3 with
 * 5 ms and 4.7-4.8 with 2, at 5-7% less throughput; on a database of 2.8
 * million calls, which the worker cannot keep up with, p99 went from 23
 * to 6.1-8.3 ms and throughput up 6% (bench/README.md). Without a bound
 * the backlog grows until the answer log is full and every answer waits
 * behind all of it (p99 190 ms). Before the index steps were bounded
 * (sqlite_call_index.h), 5 ms cost a third of the throughput.
 */
#define STORE_LAG_MS 2
/* Hand-overs remembered for that (one per loop iteration with a record);
 * with every one of them uncommitted the store is behind. */
#define STORE_LAG_RING 256

/* Call records a purge batch deletes at most. */
#define STORE_PURGE_BATCH 5000

/* A calls query: the question (with copies of its strings), then the
 * answer. */
struct calls_query {
  struct store_query q;
  char caller[CALL_NUMBER_SIZE];
  char decision[16];
  unsigned offset;
  unsigned page; /* rows asked for; q.limit is offset + page + 1 */
  unsigned seen; /* rows passed so far */
  struct call *rows;
  size_t nrows;
  int more;
};

/* The answer of a state load, grown by the worker as rows arrive. */
struct state_buf {
  struct list_entry *lists;
  size_t nlists, lists_cap;
  struct number_record *numbers;
  size_t nnumbers, numbers_cap;
  struct store_recent_call *recent;
  size_t nrecent, recent_cap;
  int failed;    /* a row could not be kept: out of memory */
  int truncated; /* calls older than the last one kept were left out */
};

/*
 * One operation. The loop thread creates it. While queued and in a batch
 * it belongs to the worker, which frees a write when its batch is done and
 * moves a load to the completion list; from there the loop thread runs the
 * load's callback and frees it. A load answered from the cache never
 * leaves the loop thread.
 */
struct store_op {
  struct store_op *next;
  enum store_op_kind kind;
  int rc;                  /* loads: the result */
  int from_cache;          /* call load: answered from the cache, not the DB */
  uint64_t cache_gen;      /* call load: st->cache_gen when it was issued */
  store_load_cb cb;        /* call load */
  store_state_cb state_cb; /* state load */
  store_saved_cb saved_cb; /* call save: when committed, or NULL */
  store_calls_cb calls_cb; /* calls query */
  store_stats_cb stats_cb; /* call stats */
  store_forget_cb forget_cb; /* forget */
  store_visit_cb visit_cb;   /* visit */
  store_update_cb update_cb; /* number update: when applied, or NULL */
  void *arg;
  uint64_t log_seq; /* the answer log's newest entry when it was issued */
  int logged;       /* call save: its record is in the answer log */
  char ref[CALL_REF_SIZE]; /* call load: the record asked for */
  union {
    struct call call;            /* call save: the record; load: answer */
    struct list_entry list;      /* list save; delete: kind and entry */
    struct number_record number; /* number save */
    struct {
      struct store_state_query q;
      struct state_buf buf;
    } state; /* state load: the question, then the answer */
    struct {
      char number[CALL_NUMBER_SIZE];
      struct store_forget_counts counts;
    } forget;
    struct {
      int64_t before_ms;
      uint64_t deleted; /* by this batch */
      uint64_t total;   /* by the batches before it */
    } purge;
    struct {
      struct store_visit_query q; /* its strings point at the two below */
      char number[CALL_NUMBER_SIZE];
      char instance[STORE_CLAIM_SIZE];
      struct store_visit out;
    } visit;
    struct {
      struct store_number_update u;
      struct list_entry entry; /* what a FAIL blocklisted */
      int blocked;
    } update;
    struct calls_query *calls;      /* calls query, malloc'd */
    struct store_call_stats *stats; /* call stats, malloc'd */
  };
};

/*
 * A live call in memory: in one hash chain and in the list ordered by last
 * update, so that both lookup and eviction are O(1). Loop thread only.
 */
struct cache_entry {
  struct cache_entry *chain; /* next entry of the same bucket */
  struct cache_entry *newer; /* towards st->newest */
  struct cache_entry *older; /* towards st->oldest */
  uint64_t hash;
  size_t size;            /* bytes of `packed` */
  unsigned char packed[]; /* the call, by call_pack (store_schema.h) */
};

/*
 * The store. Each group of fields says which thread may touch it; the
 * atomics at the end are the only fields read without `lock` by a thread
 * that does not write them.
 */
struct store {
  /* Set by store_open(), then read-only for both threads. */
  struct loop *loop;
  const struct store_backend_ops *ops;
  void *handle; /* used by the worker only (see store_backend.h) */
  size_t queue_max;
  size_t cache_max;
  int shared;
  pthread_t worker;
  struct call_layout layout; /* how cached calls are packed */
  struct answer_log *log;    /* NULL without one; see answer_log.h */

  /* Loop thread only. */
  struct cache_entry **buckets; /* NULL for a shared backend */
  size_t bucket_mask;
  size_t cache_count;
  struct cache_entry *newest;
  struct cache_entry *oldest;
  uint64_t hash_seed;
  uint64_t cache_gen;          /* bumped whenever an entry leaves the cache */
  struct call found;           /* what store_call_find last returned */
  struct store_op *ready_head; /* loads answered from the cache */
  struct store_op *ready_tail;
  struct loop_task ready_task;
  struct loop_async async;
  /* Operations issued during this loop iteration, handed to the worker in
   * one go before the loop sleeps: one lock and at most one wake-up per
   * iteration instead of per operation (Redis's beforeSleep batching). */
  struct store_op *local_head;
  struct store_op *local_tail;
  struct loop_hook flush_hook;
  int closing;
  int64_t drop_log_ms;
  uint64_t drops_unlogged;
  uint64_t log_seq; /* the answer log's newest entry */
  /* The newest log entry of each hand-over to the worker not yet known
   * committed and when it was handed over, oldest first (store_behind). */
  struct {
    uint64_t seq;
    int64_t ms;
  } lag[STORE_LAG_RING];
  size_t lag_head;
  size_t lag_count;

  /* Under `lock`, both threads. */
  pthread_mutex_t lock;
  pthread_cond_t wake; /* the queue became non-empty, or stopping */
  struct store_op *queue_head;
  struct store_op *queue_tail;
  struct store_op *done_head; /* completed loads for the loop */
  struct store_op *done_tail;
  uint64_t drop_gen; /* bumped by every dropped save */
  int stopping;

  /* Worker only. */
  struct store_op *retry_head; /* kept from a failed batch, in order */
  struct store_op *retry_tail;
  int failing;
  int64_t fail_log_ms;
  uint64_t fails_unlogged;
  int64_t maintain_log_ms;

  /* Atomics. */
  atomic_size_t depth;  /* queued or in a batch: loop adds, worker takes */
  atomic_size_t held;   /* see the bounds above: loop adds, both take */
  atomic_int healthy;   /* worker: the last batch committed */
  atomic_int saturated; /* written under lock: a save was dropped since the
                           last batch that committed after it */
  struct {
    _Atomic uint64_t batches, failed, saved, lost, loaded, dropped, evicted,
        log_waits, max_batch;
  } stats;
};

static int64_t monotonic_ms(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stat_add(_Atomic uint64_t *counter, uint64_t n)
{
  atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static void stat_max(_Atomic uint64_t *counter, uint64_t n)
{
  uint64_t cur = atomic_load_explicit(counter, memory_order_relaxed);

  while (n > cur &&
         !atomic_compare_exchange_weak_explicit(
             counter, &cur, n, memory_order_relaxed, memory_order_relaxed))
    ;
}

/* ---- the cache (loop thread) ----------------------------------------- */

/* A reference's hash, with the store's random seed (util/hash.h). */
static uint64_t ref_hash(uint64_t seed, const char *ref)
{
  return hash_bytes(seed, ref, strnlen(ref, CALL_REF_SIZE));
}

/* The link that points at the entry for `ref`, or at the chain's end. */
static struct cache_entry **cache_slot(struct store *st, const char *ref,
                                       uint64_t hash)
{
  struct cache_entry **pp = &st->buckets[hash & st->bucket_mask];

  for (; *pp; pp = &(*pp)->chain)
    if ((*pp)->hash == hash &&
        strcmp(call_packed_ref(&st->layout, (*pp)->packed), ref) == 0)
      break;
  return pp;
}

static struct cache_entry *cache_find(struct store *st, const char *ref)
{
  return *cache_slot(st, ref, ref_hash(st->hash_seed, ref));
}

static void lru_unlink(struct store *st, struct cache_entry *e)
{
  if (e->newer)
    e->newer->older = e->older;
  else
    st->newest = e->older;
  if (e->older)
    e->older->newer = e->newer;
  else
    st->oldest = e->newer;
  e->newer = NULL;
  e->older = NULL;
}

static void lru_push(struct store *st, struct cache_entry *e)
{
  e->older = st->newest;
  e->newer = NULL;
  if (st->newest)
    st->newest->newer = e;
  else
    st->oldest = e;
  st->newest = e;
}

/* Takes `e` out of its chain and the list; the caller frees or reuses it. */
static void cache_unlink(struct store *st, struct cache_entry *e)
{
  struct cache_entry **pp =
      cache_slot(st, call_packed_ref(&st->layout, e->packed), e->hash);

  *pp = e->chain;
  e->chain = NULL;
  lru_unlink(st, e);
  st->cache_count--;
  st->cache_gen++;
}

/*
 * Makes `c` the cached state of its call and the most recently updated.
 * When the cache is full the least recently updated entry is evicted and
 * its memory reused. Returns 0 or VS_ERR_NOMEM; a record missing from the
 * cache only costs a load later, so callers may ignore the failure (an
 * older entry of the call is then dropped rather than left stale).
 */
static int cache_put(struct store *st, const struct call *c)
{
  uint64_t hash = ref_hash(st->hash_seed, c->ref);
  size_t size = call_packed_size(&st->layout, c);
  struct cache_entry **slot = cache_slot(st, c->ref, hash);
  struct cache_entry *e = *slot;
  struct cache_entry *sized;

  if (e) {
    /* Updated in place; records grow as the call goes on. */
    lru_unlink(st, e);
    if (e->size != size) {
      sized = realloc(e, sizeof(*e) + size);
      if (!sized) {
        *slot = e->chain;
        st->cache_count--;
        st->cache_gen++;
        free(e);
        return VS_ERR_NOMEM;
      }
      e = *slot = sized;
    }
  } else {
    if (st->cache_count >= st->cache_max) {
      e = st->oldest;
      cache_unlink(st, e);
      stat_add(&st->stats.evicted, 1);
    }
    sized = realloc(e, sizeof(*e) + size);
    if (!sized) {
      free(e);
      return VS_ERR_NOMEM;
    }
    e = sized;
    e->hash = hash;
    e->chain = st->buckets[hash & st->bucket_mask];
    st->buckets[hash & st->bucket_mask] = e;
    st->cache_count++;
  }
  e->size = size;
  call_pack(&st->layout, c, e->packed);
  lru_push(st, e);
  return VS_OK;
}

static void cache_remove(struct store *st, const char *ref)
{
  struct cache_entry *e = cache_find(st, ref);

  if (!e)
    return;
  cache_unlink(st, e);
  free(e);
}

static void cache_free(struct store *st)
{
  struct cache_entry *e = st->newest;

  while (e) {
    struct cache_entry *older = e->older;

    free(e);
    e = older;
  }
  st->newest = NULL;
  st->oldest = NULL;
  st->cache_count = 0;
}

/*
 * A loaded record enters the cache only if it cannot be older than what
 * the loop already knows: the call must still be absent and no entry may
 * have left the cache since the load was issued (a save issued after the
 * load, then evicted, would otherwise be replaced by the older record).
 * The check is conservative; a record it skips costs one more load.
 */
static void cache_loaded(struct store *st, const struct store_op *op)
{
  if (st->shared || st->closing || op->from_cache ||
      op->cache_gen != st->cache_gen || op->call.step == CALL_STEP_ENDED)
    return;
  if (cache_find(st, op->call.ref))
    return;
  cache_put(st, &op->call);
}

/* ---- completions (loop thread) --------------------------------------- */

static void state_buf_free(struct state_buf *buf)
{
  free(buf->lists);
  free(buf->numbers);
  free(buf->recent);
  memset(buf, 0, sizeof(*buf));
}

/* Runs a state load's callback with a view of its arrays. */
static void store_deliver_state(struct store_op *op)
{
  struct state_buf *buf = &op->state.buf;
  struct store_state state = {
      .lists = buf->lists,
      .nlists = buf->nlists,
      .numbers = buf->numbers,
      .nnumbers = buf->nnumbers,
      .recent = buf->recent,
      .nrecent = buf->nrecent,
  };

  op->state_cb(op->arg, op->rc, op->rc == VS_OK ? &state : NULL);
  state_buf_free(buf);
}

/*
 * Runs the callbacks of a detached list of loads and frees them. The slot
 * of each is given back before its callback, so that a callback may issue
 * the next load even with a queue_max of one.
 */
static void store_purge_done(struct store *st, struct store_op *op);

static void store_deliver(struct store *st, struct store_op *op)
{
  while (op) {
    struct store_op *next = op->next;

    if (op->kind == STORE_OP_SAVE) {
      op->saved_cb(op->arg, op->rc);
    } else if (op->kind == STORE_OP_UPDATE) {
      op->update_cb(op->arg, op->rc,
                    op->rc == VS_OK && op->update.blocked ? &op->update.entry
                                                          : NULL);
    } else if (op->kind == STORE_OP_VISIT) {
      /* A server closing its store must not start lookups on the answer. */
      if (st->closing && op->rc == VS_OK)
        op->rc = VS_ERR_BUSY;
      atomic_fetch_sub(&st->held, 1);
      op->visit_cb(op->arg, op->rc, op->rc ? NULL : &op->visit.out);
    } else if (op->kind == STORE_OP_FORGET) {
      atomic_fetch_sub(&st->held, 1);
      op->forget_cb(op->arg, op->rc, op->rc ? NULL : &op->forget.counts);
    } else if (op->kind == STORE_OP_PURGE) {
      atomic_fetch_sub(&st->held, 1);
      store_purge_done(st, op);
    } else if (op->kind == STORE_OP_STATE) {
      atomic_fetch_sub(&st->held, 1);
      store_deliver_state(op);
    } else if (op->kind == STORE_OP_CALLS) {
      struct calls_query *cq = op->calls;

      atomic_fetch_sub(&st->held, 1);
      op->calls_cb(op->arg, op->rc, op->rc ? NULL : cq->rows,
                   op->rc ? 0 : cq->nrows, op->rc ? 0 : cq->more);
      free(cq->rows);
      free(cq);
    } else if (op->kind == STORE_OP_STATS) {
      atomic_fetch_sub(&st->held, 1);
      op->stats_cb(op->arg, op->rc, op->rc ? NULL : op->stats);
      free(op->stats);
    } else {
      if (op->rc == VS_OK)
        cache_loaded(st, op);
      atomic_fetch_sub(&st->held, 1);
      op->cb(op->arg, op->rc, op->rc == VS_OK ? &op->call : NULL);
    }
    free(op);
    op = next;
  }
}

/* The worker's wake-up, on the loop thread: runs the completed loads. */
static void store_async_cb(struct loop_async *a)
{
  struct store *st = a->data;
  struct store_op *done;

  pthread_mutex_lock(&st->lock);
  done = st->done_head;
  st->done_head = NULL;
  st->done_tail = NULL;
  pthread_mutex_unlock(&st->lock);
  store_deliver(st, done);
}

/* The deferred answers of loads found in the cache. */
static void store_ready_cb(struct loop_task *task)
{
  struct store *st = task->data;
  struct store_op *ready = st->ready_head;

  st->ready_head = NULL;
  st->ready_tail = NULL;
  store_deliver(st, ready);
}

/* ---- the worker ------------------------------------------------------ */

/* Worker: logs a failed batch, at most once a second while failing. */
static void store_log_failure(struct store *st, int rc, const char *why,
                              size_t ops, size_t saves, size_t kept)
{
  int64_t now = monotonic_ms();

  st->fails_unlogged++;
  if (!st->failing || now - st->fail_log_ms >= STORE_LOG_EVERY_MS) {
    log_error("store batch rolled back, records %s|backend=%s "
              "error=\"%s\" code=\"%s\" ops=%zu saves_lost=%zu "
              "saves_kept=%zu failed_batches=%llu",
              saves > kept ? "lost" : "kept for the next batch", st->ops->name,
              why, vs_strerror(rc), ops, saves - kept, kept,
              (unsigned long long)st->fails_unlogged);
    st->fail_log_ms = now;
    st->fails_unlogged = 0;
  }
  st->failing = 1;
}

/*
 * Doubles a full array of *cap elements of `size` bytes. Returns the new
 * array, or NULL with the old one left as it was.
 */
static void *grow(void *arr, size_t *cap, size_t size)
{
  size_t want = *cap ? *cap * 2 : 64;
  void *bigger;

  if (want > SIZE_MAX / size)
    return NULL;
  bigger = realloc(arr, want * size);
  if (bigger)
    *cap = want;
  return bigger;
}

static int state_add_list(void *arg, const struct list_entry *e)
{
  struct state_buf *buf = arg;

  if (buf->nlists == buf->lists_cap) {
    struct list_entry *bigger =
        grow(buf->lists, &buf->lists_cap, sizeof(*bigger));

    if (!bigger) {
      buf->failed = 1;
      return VS_ERR_NOMEM;
    }
    buf->lists = bigger;
  }
  buf->lists[buf->nlists++] = *e;
  return VS_OK;
}

static int state_add_number(void *arg, const struct number_record *r)
{
  struct state_buf *buf = arg;

  if (buf->nnumbers == buf->numbers_cap) {
    struct number_record *bigger =
        grow(buf->numbers, &buf->numbers_cap, sizeof(*bigger));

    if (!bigger) {
      buf->failed = 1;
      return VS_ERR_NOMEM;
    }
    buf->numbers = bigger;
  }
  buf->numbers[buf->nnumbers++] = *r;
  return VS_OK;
}

/*
 * Calls arrive newest first; one past the ceiling is asked for only to
 * learn whether any were left out.
 */
static int state_add_recent(void *arg, const char *caller, int64_t started_ms)
{
  struct state_buf *buf = arg;
  struct store_recent_call *r;

  if (buf->nrecent >= STORE_STATE_MAX_RECENT) {
    buf->truncated = 1;
    return VS_OK;
  }
  if (buf->nrecent == buf->recent_cap) {
    r = grow(buf->recent, &buf->recent_cap, sizeof(*r));
    if (!r) {
      buf->failed = 1;
      return VS_ERR_NOMEM;
    }
    buf->recent = r;
  }
  r = &buf->recent[buf->nrecent++];
  call_set(r->caller, sizeof(r->caller), caller);
  r->started_ms = started_ms;
  return VS_OK;
}

/*
 * Runs a state load in the batch's transaction and leaves its answer in
 * op->rc. Returns what fails the batch: only the database failing, not a
 * row we cannot read or memory we cannot get for this one load (its
 * prunes are then still worth committing: they are right whatever reads
 * them).
 */
static int store_read_state(struct store *st, struct store_op *op)
{
  struct state_buf *buf = &op->state.buf;
  const struct store_state_sink sink = {state_add_list, state_add_number,
                                        state_add_recent, buf};
  int rc;

  rc = st->ops->load_state(st->handle, &op->state.q, &sink);
  if (buf->failed || rc == VS_ERR_PROTO) {
    if (rc == VS_ERR_PROTO)
      log_error("store cannot read the screening state|backend=%s "
                "error=\"%s\"",
                st->ops->name, st->ops->errmsg(st->handle));
    op->rc = buf->failed ? VS_ERR_NOMEM : rc;
    state_buf_free(buf);
    return VS_OK;
  }
  op->rc = rc;
  if (rc != VS_OK) {
    state_buf_free(buf);
    return rc;
  }
  /* Oldest first, as velocity counters are rebuilt. */
  for (size_t i = 0, j = buf->nrecent; i + 1 < j; i++, j--) {
    struct store_recent_call t = buf->recent[i];

    buf->recent[i] = buf->recent[j - 1];
    buf->recent[j - 1] = t;
  }
  if (buf->truncated)
    log_warn("store state load left out older recent calls|kept=%zu "
             "oldest_kept_ms=%lld",
             buf->nrecent, (long long)buf->recent[0].started_ms);
  return VS_OK;
}

/* Runs one write; an absent entry is a delete already done. */
static int store_write(struct store *st, struct store_op *op)
{
  const struct store_backend_ops *ops = st->ops;
  int rc;

  switch (op->kind) {
  case STORE_OP_SAVE:
    return ops->save_call(st->handle, &op->call);
  case STORE_OP_LIST_SAVE:
    return ops->save_list(st->handle, &op->list);
  case STORE_OP_LIST_DELETE:
    rc = ops->delete_list(st->handle, op->list.kind, op->list.entry);
    return rc == VS_ERR_NOTFOUND ? VS_OK : rc;
  case STORE_OP_NUMBER_SAVE:
    return ops->save_number(st->handle, &op->number);
  case STORE_OP_UPDATE:
    return op->rc = ops->update_number(st->handle, &op->update.u,
                                       &op->update.entry, &op->update.blocked);
  default:
    return VS_ERR_INVAL;
  }
}

static int is_write(const struct store_op *op)
{
  return op->kind == STORE_OP_SAVE || op->kind == STORE_OP_LIST_SAVE ||
         op->kind == STORE_OP_LIST_DELETE ||
         op->kind == STORE_OP_NUMBER_SAVE || op->kind == STORE_OP_UPDATE;
}

/* A write whose issuer waits for its batch: delivered like a load. */
static int has_callback(const struct store_op *op)
{
  return op->kind == STORE_OP_UPDATE ? op->update_cb != NULL
                                     : op->saved_cb != NULL;
}

/* ---- admin queries (worker) ------------------------------------------ */

/* Keeps the rows of the page asked for, and notes whether more follow. */
static int calls_row(void *arg, const struct call *c)
{
  struct calls_query *cq = arg;

  if (cq->seen++ < cq->offset)
    return 0;
  if (cq->nrows == cq->page) {
    cq->more = 1; /* the one extra row asked for */
    return 1;
  }
  cq->rows[cq->nrows++] = *c;
  return 0;
}

static int store_read_calls(struct store *st, struct store_op *op)
{
  struct calls_query *cq = op->calls;

  cq->rows = malloc(sizeof(*cq->rows) * cq->page);
  if (!cq->rows)
    return VS_ERR_NOMEM;
  return st->ops->list_calls(st->handle, &cq->q, calls_row, cq);
}

/* Counts one call into the stats. */
static int stats_row(void *arg, const struct call *c)
{
  struct store_call_stats *s = arg;
  const char *colon = strchr(c->reason, ':');
  size_t hour = (size_t)((c->started_ms - s->since_ms) / 3600000);
  size_t n = colon ? (size_t)(colon - c->reason) : strlen(c->reason);
  unsigned d = (unsigned)c->decision < 4 ? (unsigned)c->decision : 0;

  s->total++;
  s->by_decision[d]++;
  if (hour < s->hours)
    s->hourly[hour][d]++;
  if (c->score >= 0)
    s->score_buckets[c->score >= 900 ? 9 : c->score / 100]++;
  if (strcmp(c->challenge_result, "passed") == 0)
    s->challenges_passed++;
  else if (strcmp(c->challenge_result, "failed") == 0)
    s->challenges_failed++;
  if (!n || n >= sizeof(s->steps[0].name))
    return 0;
  for (size_t i = 0; i < STORE_STATS_STEPS; i++) {
    if (!s->steps[i].name[0])
      memcpy(s->steps[i].name, c->reason, n);
    if (strncmp(s->steps[i].name, c->reason, n) == 0 && !s->steps[i].name[n]) {
      s->steps[i].count++;
      break;
    }
  }
  return 0;
}

static int store_read_stats(struct store *st, struct store_op *op)
{
  struct store_query q = {.since_ms = op->stats->since_ms, .oldest_first = 1};

  return st->ops->list_calls(st->handle, &q, stats_row, op->stats);
}

/* What one run of a batch's operations did, for the counters. */
struct batch_counts {
  size_t n;      /* operations */
  size_t saves;  /* writes among them */
  size_t loaded; /* reads answered by the database */
};

/*
 * Runs every operation of a batch in the open transaction, in queue order,
 * so that a load sees every save issued before it, and counts the reads
 * into c->loaded. Returns what fails the batch: the first error of the
 * database (after which nothing more is run), not an answer such as "no
 * such call".
 */
static int run_ops(struct store *st, struct store_op *batch,
                   struct batch_counts *c)
{
  const struct store_backend_ops *ops = st->ops;
  struct store_op *op;
  int rc = VS_OK;

  c->loaded = 0;
  for (op = batch; op; op = op->next) {
    if (is_write(op)) {
      if (rc == VS_OK)
        rc = store_write(st, op);
    } else if (rc != VS_OK) {
      continue;
    } else if (op->kind == STORE_OP_STATE) {
      rc = store_read_state(st, op);
      c->loaded++;
    } else if (op->kind == STORE_OP_FORGET) {
      rc = op->rc = ops->forget_number(st->handle, op->forget.number,
                                       &op->forget.counts);
    } else if (op->kind == STORE_OP_PURGE) {
      rc = op->rc = ops->purge_calls(st->handle, op->purge.before_ms,
                                     STORE_PURGE_BATCH, &op->purge.deleted);
    } else if (op->kind == STORE_OP_VISIT) {
      rc = op->rc =
          ops->visit_number(st->handle, &op->visit.q, &op->visit.out);
      c->loaded++;
    } else if (op->kind == STORE_OP_CALLS || op->kind == STORE_OP_STATS) {
      op->rc = op->kind == STORE_OP_CALLS ? store_read_calls(st, op)
                                          : store_read_stats(st, op);
      c->loaded++;
      /* Running out of memory fails only the query. */
      if (op->rc != VS_OK && op->rc != VS_ERR_NOMEM)
        rc = op->rc;
    } else {
      op->rc = ops->load_call(st->handle, op->ref, &op->call);
      c->loaded++;
      /* A missing or unreadable record is that load's answer; anything
       * else is the database failing, and fails the batch. */
      if (op->rc != VS_OK && op->rc != VS_ERR_NOTFOUND &&
          op->rc != VS_ERR_PROTO)
        rc = op->rc;
    }
  }
  return rc;
}

/*
 * A shared backend's batch first locks the number rows its visits and
 * updates touch, all at once in one order (lock_numbers): without it, two
 * instances' batches that visit the same numbers in different orders
 * deadlock, and the database breaks the tie only after a second. Out of
 * memory for the list only skips the pre-locking (the retry remains).
 */
static int lock_numbers(struct store *st, struct store_op *batch, size_t n)
{
  const char **numbers;
  size_t k = 0;
  int rc;

  if (!st->ops->lock_numbers)
    return VS_OK;
  numbers = malloc(n * sizeof(*numbers));
  if (!numbers)
    return VS_OK;
  for (struct store_op *op = batch; op; op = op->next)
    if (op->kind == STORE_OP_VISIT)
      numbers[k++] = op->visit.number;
    else if (op->kind == STORE_OP_UPDATE)
      numbers[k++] = op->update.u.rec.number;
  rc = st->ops->lock_numbers(st->handle, numbers, k);
  free(numbers);
  return rc;
}

/* Forgets what a rolled-back run of the batch had read, before a retry. */
static void batch_reset(struct store_op *batch)
{
  for (struct store_op *op = batch; op; op = op->next) {
    if (op->kind == STORE_OP_STATE) {
      state_buf_free(&op->state.buf);
    } else if (op->kind == STORE_OP_CALLS) {
      free(op->calls->rows);
      op->calls->rows = NULL;
      op->calls->nrows = 0;
      op->calls->seen = 0;
      op->calls->more = 0;
    } else if (op->kind == STORE_OP_STATS) {
      struct store_call_stats *s = op->stats;
      int64_t since = s->since_ms;
      int64_t now = s->now_ms;
      size_t hours = s->hours;

      memset(s, 0, sizeof(*s));
      s->since_ms = since;
      s->now_ms = now;
      s->hours = hours;
    }
  }
}

/*
 * Runs one batch in one transaction (see run_ops). A batch that a shared
 * backend says conflicted with another instance's is rolled back and run
 * again, at most STORE_BATCH_TRIES times. `drop_gen` is the count of
 * dropped saves when the batch was taken: a commit clears the saturated
 * flag only if no save was dropped since, since only then does it prove
 * the store keeps up again. A batch that fails keeps its records of the
 * answer log for the next (STORE_RETRY_MS) when the database could not
 * write them now, unless it is the `final` one, at shutdown; they are
 * then lost to this run, but still in the log for the next start.
 */
static void store_run_batch(struct store *st, struct store_op *batch,
                            uint64_t drop_gen, int final)
{
  const struct store_backend_ops *ops = st->ops;
  struct store_op *loads = NULL; /* the batch's loads, in order */
  struct store_op *last = NULL;
  struct store_op *op;
  struct store_op *next;
  struct batch_counts c = {0};
  char why[STORE_WHY_SIZE] = "";
  uint64_t log_seq = 0;
  /* The mark the database holds: the log is told each one committed. */
  uint64_t through = st->log ? answer_log_committed(st->log) : 0;
  size_t kept = 0;
  int keep;
  int rc;

  for (op = batch; op; op = op->next) {
    c.n++;
    c.saves += (size_t)is_write(op);
    log_seq = op->log_seq; /* issued in order: the last is the newest */
  }
  for (int attempt = 1;; attempt++) {
    rc = ops->begin(st->handle);
    if (rc == VS_OK)
      rc = lock_numbers(st, batch, c.n);
    if (rc == VS_OK)
      rc = run_ops(st, batch, &c);
    /* Every log entry issued before the batch's last operation is either
     * in it or in a batch before it: the log need not replay them. */
    if (rc == VS_OK && log_seq > through)
      rc = ops->set_log_through(st->handle, log_seq);
    if (rc == VS_OK)
      rc = ops->commit(st->handle);
    if (rc == VS_OK || attempt == STORE_BATCH_TRIES || !ops->retryable ||
        !ops->retryable(st->handle))
      break;
    log_warn("store batch conflicted with another instance, run again|"
             "backend=%s error=\"%s\" attempt=%d",
             ops->name, ops->errmsg(st->handle), attempt);
    ops->rollback(st->handle);
    batch_reset(batch);
  }
  if (rc != VS_OK) {
    /* Copied first: the rollback may overwrite the handle's message. */
    call_set(why, sizeof(why), ops->errmsg(st->handle));
    if (ops->rollback(st->handle) != VS_OK)
      log_error("store rollback failed|backend=%s error=\"%s\"", ops->name,
                ops->errmsg(st->handle));
  } else {
    if (log_seq > through)
      answer_log_through(st->log, log_seq);
    if (st->failing) {
      log_info("store writing again|backend=%s", ops->name);
      st->failing = 0;
    }
  }

  /* A refusal of the record itself (VS_ERR_INVAL, PROTO) would fail
   * every batch it is kept in. */
  keep =
      !final && (rc == VS_ERR_IO || rc == VS_ERR_BUSY || rc == VS_ERR_NOMEM);
  for (op = batch; op; op = next) {
    next = op->next;
    if (keep && op->logged) {
      op->next = NULL;
      if (st->retry_tail)
        st->retry_tail->next = op;
      else
        st->retry_head = op;
      st->retry_tail = op;
      kept++;
      continue;
    }
    if (is_write(op) && !has_callback(op)) {
      free(op);
      continue;
    }
    /* A save whose issuer waits for its commit goes back like a load,
     * with the batch's result (its queue slot is given back below). */
    /* Nothing read in a batch that failed is delivered: it may be a state
     * the database no longer holds. */
    if (rc != VS_OK) {
      op->rc = rc;
      if (op->kind == STORE_OP_STATE)
        state_buf_free(&op->state.buf);
    }
    op->next = NULL;
    if (last)
      last->next = op;
    else
      loads = op;
    last = op;
  }

  if (rc != VS_OK)
    store_log_failure(st, rc, why, c.n, c.saves, kept);
  stat_add(&st->stats.batches, 1);
  stat_add(rc == VS_OK ? &st->stats.saved : &st->stats.lost, c.saves - kept);
  stat_add(&st->stats.failed, rc != VS_OK);
  stat_add(&st->stats.loaded, c.loaded);
  stat_max(&st->stats.max_batch, c.n);
  atomic_store(&st->healthy, rc == VS_OK);

  pthread_mutex_lock(&st->lock);
  if (loads) {
    if (st->done_tail)
      st->done_tail->next = loads;
    else
      st->done_head = loads;
    st->done_tail = last;
  }
  if (rc == VS_OK && st->drop_gen == drop_gen)
    atomic_store(&st->saturated, 0);
  pthread_mutex_unlock(&st->lock);

  /* Last, so that whoever sees the depth fall also sees the counters. The
   * records kept keep their slots. */
  atomic_fetch_sub(&st->held, c.saves - kept);
  atomic_fetch_sub(&st->depth, c.n - kept);
  if (loads)
    loop_async_send(&st->async);
}

/*
 * Worker, while a shared backend's batches fail and nothing is queued: an
 * empty transaction, which makes the backend connect again (within its
 * backoff). Its success is a batch that committed, for store_healthy().
 */
static void store_probe(struct store *st)
{
  const struct store_backend_ops *ops = st->ops;
  int rc = ops->begin(st->handle);

  if (rc == VS_OK)
    rc = ops->commit(st->handle);
  if (rc != VS_OK) {
    ops->rollback(st->handle);
    return;
  }
  log_info("store writing again|backend=%s", ops->name);
  st->failing = 0;
  atomic_store(&st->healthy, 1);
}

/*
 * Waits on `wake` under `lock` for at most `ms`; 1 when the time ran out.
 * `wake` runs on CLOCK_MONOTONIC (see store_open_backend).
 */
static int wait_ms(struct store *st, int64_t ms)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += (time_t)(ms / 1000);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return pthread_cond_timedwait(&st->wake, &st->lock, &ts) == ETIMEDOUT;
}

/* Worker: 1 when a batch waits for it, or the store is stopping. */
static int store_batch_waits(struct store *st)
{
  int waits;

  pthread_mutex_lock(&st->lock);
  waits = st->queue_head || st->stopping;
  pthread_mutex_unlock(&st->lock);
  return waits;
}

/*
 * Worker, after a batch: the backend's upkeep (store_backend.h), a step at
 * a time for as long as more is owed and no batch waits, so that a batch
 * arriving meanwhile waits for one step at most, unless the upkeep is far
 * behind. It loses nothing when it fails and retries on its own at the
 * next batch, so a failure is only said, at most once per
 * STORE_LOG_EVERY_MS.
 */
static void store_maintain(struct store *st)
{
  int64_t now;
  int due;

  if (!st->ops->maintain)
    return;
  do {
    now = monotonic_ms();
    due = 0;
    if (st->ops->maintain(st->handle, now, &due) != VS_OK) {
      if (now - st->maintain_log_ms >= STORE_LOG_EVERY_MS) {
        log_warn("store upkeep failed, retrying|backend=%s error=\"%s\"",
                 st->ops->name, st->ops->errmsg(st->handle));
        st->maintain_log_ms = now;
      }
      return;
    }
  } while (due == 2 || (due == 1 && !store_batch_waits(st)));
}

/*
 * The worker: sleeps until something is queued, takes all of it, runs it.
 * On stop it keeps taking batches until the queue is empty, so nothing
 * queued before store_close() is lost. While a shared backend is failing
 * it wakes every STORE_PROBE_MS to probe the database (store_probe).
 */
static void *store_worker(void *arg)
{
  struct store *st = arg;

  for (;;) {
    struct store_op *batch;
    uint64_t drop_gen;
    int probe = 0;
    int retry = 0;
    int stopping;

    pthread_mutex_lock(&st->lock);
    while (!st->queue_head && !st->stopping && !probe && !retry) {
      if (st->retry_head)
        retry = wait_ms(st, STORE_RETRY_MS);
      else if (st->shared && st->failing)
        probe = wait_ms(st, STORE_PROBE_MS) && !st->queue_head;
      else
        pthread_cond_wait(&st->wake, &st->lock);
    }
    if (probe && !st->stopping) {
      pthread_mutex_unlock(&st->lock);
      store_probe(st);
      continue;
    }
    batch = st->queue_head;
    st->queue_head = NULL;
    st->queue_tail = NULL;
    drop_gen = st->drop_gen;
    stopping = st->stopping;
    pthread_mutex_unlock(&st->lock);
    /* What a failed batch kept goes first: it was issued before. */
    if (st->retry_head) {
      st->retry_tail->next = batch;
      batch = st->retry_head;
      st->retry_head = NULL;
      st->retry_tail = NULL;
    }
    if (!batch)
      break;
    store_run_batch(st, batch, drop_gen, stopping);
    store_maintain(st);
  }
  return NULL;
}

/* ---- the loop side --------------------------------------------------- */

/* Hands `op` to the worker; from here it belongs to the worker. */
static void store_push(struct store *st, struct store_op *op)
{
  op->next = NULL;
  op->log_seq = st->log_seq;
  if (st->local_tail)
    st->local_tail->next = op;
  else
    st->local_head = op;
  st->local_tail = op;
  atomic_fetch_add(&st->depth, 1);
}

/* Hands this iteration's operations to the worker, in order. */
static void store_flush(struct store *st)
{
  if (!st->local_head)
    return;
  if (st->log && st->lag_count < STORE_LAG_RING &&
      (!st->lag_count ||
       st->lag[(st->lag_head + st->lag_count - 1) % STORE_LAG_RING].seq <
           st->log_seq)) {
    size_t i = (st->lag_head + st->lag_count++) % STORE_LAG_RING;

    st->lag[i].seq = st->log_seq;
    st->lag[i].ms = loop_now_ms(st->loop);
  }
  pthread_mutex_lock(&st->lock);
  if (st->queue_tail) {
    st->queue_tail->next = st->local_head;
  } else {
    /* The worker only sleeps on an empty queue. */
    st->queue_head = st->local_head;
    pthread_cond_signal(&st->wake);
  }
  st->queue_tail = st->local_tail;
  pthread_mutex_unlock(&st->lock);
  st->local_head = NULL;
  st->local_tail = NULL;
}

static void store_flush_hook(struct loop_hook *h)
{
  store_flush(h->data);
}

/* Counts and, at most once a second, logs a save refused at the ceiling. */
static void store_drop(struct store *st)
{
  int64_t now = loop_now_ms(st->loop);

  pthread_mutex_lock(&st->lock);
  st->drop_gen++;
  atomic_store(&st->saturated, 1);
  pthread_mutex_unlock(&st->lock);
  stat_add(&st->stats.dropped, 1);
  st->drops_unlogged++;
  if (now - st->drop_log_ms >= STORE_LOG_EVERY_MS) {
    log_error("store queue full, records dropped|dropped=%llu "
              "queue_max=%zu",
              (unsigned long long)st->drops_unlogged, st->queue_max);
    st->drop_log_ms = now;
    st->drops_unlogged = 0;
  }
}

/*
 * Takes one slot of queue_max for an operation the loop thread is about to
 * create. Only this thread adds to `held` (the worker only gives slots
 * back), so checking and then adding cannot overshoot the ceiling.
 */
static int store_admit(struct store *st)
{
  if (st->closing || atomic_load(&st->held) >= st->queue_max)
    return VS_ERR_BUSY;
  atomic_fetch_add(&st->held, 1);
  return VS_OK;
}

/*
 * Admits and allocates a write of `kind` for the caller to fill and push.
 * A write refused at the ceiling is dropped and counted; one refused
 * because the store is closing is not a drop.
 */
static int store_new_write(struct store *st, enum store_op_kind kind,
                           struct store_op **out)
{
  struct store_op *op;

  if (st->closing)
    return VS_ERR_BUSY;
  if (store_admit(st)) {
    store_drop(st);
    return VS_ERR_BUSY;
  }
  op = malloc(sizeof(*op));
  if (!op) {
    atomic_fetch_sub(&st->held, 1);
    return VS_ERR_NOMEM;
  }
  op->kind = kind;
  op->logged = 0;
  op->saved_cb = NULL;
  op->update_cb = NULL;
  *out = op;
  return VS_OK;
}

/*
 * 1 when the worker has log entries to commit that it was handed more
 * than STORE_LAG_MS ago while its batches commit. While they fail, the
 * failed batches keep the log's records for later, and an answer held
 * back would only be late.
 */
static int store_behind(struct store *st)
{
  uint64_t through = answer_log_committed(st->log);

  while (st->lag_count && st->lag[st->lag_head].seq <= through) {
    st->lag_head = (st->lag_head + 1) % STORE_LAG_RING;
    st->lag_count--;
  }
  if (!st->lag_count || !atomic_load(&st->healthy))
    return 0;
  return st->lag_count == STORE_LAG_RING ||
         loop_now_ms(st->loop) - st->lag[st->lag_head].ms > STORE_LAG_MS;
}

/* 1 when `call` is a record the store can write. */
static int call_valid(const struct call *call)
{
  return call && call->ref[0] && memchr(call->ref, '\0', CALL_REF_SIZE) &&
         call_step_parse(call_step_name(call->step)) >= 0 &&
         call_decision_parse(call_decision_name(call->decision)) >= 0;
}

/*
 * Copies `call` to the answer log, when there is one with room and the
 * queue can take its save; the save pushed next carries its sequence
 * number. VS_OK, or VS_ERR_LIMIT with nothing done.
 */
static int log_record(struct store *st, const struct call *call)
{
  uint64_t seq;

  if (!st->log || atomic_load(&st->held) >= st->queue_max ||
      answer_log_append(st->log, call, &seq))
    return VS_ERR_LIMIT;
  st->log_seq = seq;
  return VS_OK;
}

/*
 * store_call_save(), store_call_commit() and store_call_save_logged():
 * `cb` NULL but for the second, `logged` set for the third.
 */
static int save_call(struct store *st, const struct call *call,
                     store_saved_cb cb, void *arg, int logged)
{
  struct store_op *op;
  int rc;

  if (!call_valid(call))
    return VS_ERR_INVAL;
  if (st->closing)
    return VS_ERR_BUSY;
  if (logged) {
    /* Refused before anything is done: the caller waits for the commit
     * instead, with the record's first save. */
    if (!st->log || atomic_load(&st->held) >= st->queue_max)
      return VS_ERR_LIMIT;
    if (store_behind(st) || log_record(st, call)) {
      stat_add(&st->stats.log_waits, 1);
      return VS_ERR_LIMIT;
    }
  } else if (log_record(st, call) == VS_OK) {
    /*
     * Any other save goes to the answer log all the same while it has
     * room, so that a batch that fails keeps it for the next one like a
     * logged save: a commit waited for because the store is behind (only
     * its answer waits), and a plain save (an event that decides nothing,
     * or a decision with store.commit_wait_ms 0). Saved without the log,
     * it was lost with the batch (test_disk_full_then_free with a short
     * STORE_LAG_MS, test_disk_full_while_behind).
     */
    logged = 1;
  }
  rc = store_new_write(st, STORE_OP_SAVE, &op);
  if (rc == VS_OK) {
    op->call = *call;
    op->logged = logged;
    op->saved_cb = cb;
    op->arg = arg;
    op->rc = VS_OK;
    store_push(st, op);
  }
  /*
   * The cache follows the call even when the write was refused: the call
   * goes on, and its next event must find the state the loop decided, not
   * an older one. Only persistence suffers, which the error and the health
   * flag report.
   */
  if (!st->shared) {
    if (call->step == CALL_STEP_ENDED)
      cache_remove(st, call->ref);
    else
      cache_put(st, call);
  }
  return rc;
}

int store_call_save(struct store *st, const struct call *call)
{
  return save_call(st, call, NULL, NULL, 0);
}

int store_call_commit(struct store *st, const struct call *call,
                      store_saved_cb cb, void *arg)
{
  return cb ? save_call(st, call, cb, arg, 0) : VS_ERR_INVAL;
}

int store_call_save_logged(struct store *st, const struct call *call)
{
  return save_call(st, call, NULL, NULL, 1);
}

int store_call_load(struct store *st, const char *ref, store_load_cb cb,
                    void *arg)
{
  struct cache_entry *e = NULL;
  struct store_op *op;

  if (!ref || !*ref || !cb)
    return VS_ERR_INVAL;
  if (store_admit(st))
    return VS_ERR_BUSY;
  op = malloc(sizeof(*op));
  if (!op) {
    atomic_fetch_sub(&st->held, 1);
    return VS_ERR_NOMEM;
  }
  op->kind = STORE_OP_LOAD;
  op->logged = 0;
  op->rc = VS_OK;
  op->from_cache = 0;
  op->cache_gen = st->cache_gen;
  op->cb = cb;
  op->arg = arg;
  CALL_SET(op->ref, ref);
  if (!st->shared)
    e = cache_find(st, op->ref);
  if (!e) {
    store_push(st, op);
    return VS_OK;
  }
  /*
   * Resident: the cache holds the newest state (also of a write the queue
   * refused), so answer from it, from the loop, as a copy taken now.
   */
  call_unpack(&st->layout, e->packed, &op->call);
  op->from_cache = 1;
  op->next = NULL;
  if (st->ready_tail)
    st->ready_tail->next = op;
  else
    st->ready_head = op;
  st->ready_tail = op;
  loop_defer(st->loop, &st->ready_task, store_ready_cb, st);
  return VS_OK;
}

/* A key that is set and fits its field (a longer one would be cut into
 * another key). */
static int key_valid(const char *key, size_t size)
{
  return key && key[0] && memchr(key, '\0', size);
}

static int kind_valid(int kind)
{
  return kind == LIST_ALLOW || kind == LIST_BLOCK;
}

int store_list_save(struct store *st, const struct list_entry *e)
{
  struct store_op *op;
  int rc;

  if (!e || !kind_valid((int)e->kind) ||
      !key_valid(e->entry, sizeof(e->entry)))
    return VS_ERR_INVAL;
  rc = store_new_write(st, STORE_OP_LIST_SAVE, &op);
  if (rc)
    return rc;
  op->list = *e;
  store_push(st, op);
  return VS_OK;
}

int store_list_delete(struct store *st, enum list_kind kind, const char *entry)
{
  struct store_op *op;
  int rc;

  if (!kind_valid((int)kind) || !key_valid(entry, LIST_ENTRY_SIZE))
    return VS_ERR_INVAL;
  rc = store_new_write(st, STORE_OP_LIST_DELETE, &op);
  if (rc)
    return rc;
  memset(&op->list, 0, sizeof(op->list));
  op->list.kind = kind;
  CALL_SET(op->list.entry, entry);
  store_push(st, op);
  return VS_OK;
}

int store_number_save(struct store *st, const struct number_record *r)
{
  struct store_op *op;
  int rc;

  if (!r || !key_valid(r->number, sizeof(r->number)))
    return VS_ERR_INVAL;
  rc = store_new_write(st, STORE_OP_NUMBER_SAVE, &op);
  if (rc)
    return rc;
  op->number = *r;
  store_push(st, op);
  return VS_OK;
}

static struct store_op *store_new_read(struct store *st,
                                       enum store_op_kind kind, void *arg);

/* Queues a state load of `q` (copied); see the two functions below. */
static int state_load(struct store *st, const struct store_state_query *q,
                      store_state_cb cb, void *arg)
{
  struct store_op *op;

  if (!cb)
    return VS_ERR_INVAL;
  if (store_admit(st))
    return VS_ERR_BUSY;
  op = calloc(1, sizeof(*op));
  if (!op) {
    atomic_fetch_sub(&st->held, 1);
    return VS_ERR_NOMEM;
  }
  op->kind = STORE_OP_STATE;
  op->rc = VS_OK;
  op->state_cb = cb;
  op->arg = arg;
  op->state.q = *q;
  store_push(st, op);
  return VS_OK;
}

int store_state_load(struct store *st, int64_t now_ms, int64_t score_since_ms,
                     int64_t recent_since_ms, store_state_cb cb, void *arg)
{
  const struct store_state_query q = {
      .now_ms = now_ms,
      .score_since_ms = score_since_ms,
      .recent_since_ms = recent_since_ms,
      .max_recent = STORE_STATE_MAX_RECENT + 1,
      .prune_numbers = 1,
  };

  return state_load(st, &q, cb, arg);
}

int store_lists_load(struct store *st, int64_t now_ms, int64_t prune_since_ms,
                     store_state_cb cb, void *arg)
{
  const struct store_state_query q = {
      .now_ms = now_ms,
      .score_since_ms = prune_since_ms,
      .lists_only = 1,
      .prune_numbers = prune_since_ms != 0,
  };

  return state_load(st, &q, cb, arg);
}

int store_shared(const struct store *st)
{
  return st->shared;
}

int store_visit_number(struct store *st, const struct store_visit_query *q,
                       store_visit_cb cb, void *arg)
{
  struct store_op *op;

  if (!cb || !q || !st->ops->visit_number ||
      !key_valid(q->number, CALL_NUMBER_SIZE))
    return VS_ERR_INVAL;
  op = store_new_read(st, STORE_OP_VISIT, arg);
  if (!op)
    return VS_ERR_BUSY;
  op->visit.q = *q;
  CALL_SET(op->visit.number, q->number);
  call_set(op->visit.instance, sizeof(op->visit.instance),
           q->instance ? q->instance : "");
  op->visit.q.number = op->visit.number;
  op->visit.q.instance = op->visit.instance;
  op->visit_cb = cb;
  store_push(st, op);
  return VS_OK;
}

int store_number_update(struct store *st, const struct store_number_update *u,
                        store_update_cb cb, void *arg)
{
  struct store_op *op;
  int rc;

  if (!u || !st->ops->update_number ||
      !key_valid(u->rec.number, sizeof(u->rec.number)))
    return VS_ERR_INVAL;
  rc = store_new_write(st, STORE_OP_UPDATE, &op);
  if (rc)
    return rc;
  memset(&op->update, 0, sizeof(op->update));
  op->update.u = *u;
  op->update_cb = cb;
  op->arg = arg;
  op->rc = VS_OK;
  store_push(st, op);
  return VS_OK;
}

/* Queues a read for the worker: `op` is the caller's until pushed. */
static struct store_op *store_new_read(struct store *st,
                                       enum store_op_kind kind, void *arg)
{
  struct store_op *op;

  if (store_admit(st))
    return NULL;
  op = calloc(1, sizeof(*op));
  if (!op) {
    atomic_fetch_sub(&st->held, 1);
    return NULL;
  }
  op->kind = kind;
  op->rc = VS_OK;
  op->arg = arg;
  return op;
}

/* Gives back a read that was never pushed. */
static void store_drop_read(struct store *st, struct store_op *op)
{
  atomic_fetch_sub(&st->held, 1);
  free(op);
}

int store_forget(struct store *st, const char *number, store_forget_cb cb,
                 void *arg)
{
  struct store_op *op;

  if (!cb || !number || !*number || strlen(number) >= CALL_NUMBER_SIZE)
    return VS_ERR_INVAL;
  op = store_new_read(st, STORE_OP_FORGET, arg);
  if (!op)
    return VS_ERR_BUSY;
  CALL_SET(op->forget.number, number);
  op->forget_cb = cb;
  store_push(st, op);
  return VS_OK;
}

/* Queues the purge's next batch, which has deleted `total` so far. */
static int store_purge_from(struct store *st, int64_t before_ms,
                            uint64_t total)
{
  struct store_op *op = store_new_read(st, STORE_OP_PURGE, NULL);

  if (!op)
    return VS_ERR_BUSY;
  op->purge.before_ms = before_ms;
  op->purge.total = total;
  store_push(st, op);
  return VS_OK;
}

int store_purge(struct store *st, int64_t before_ms)
{
  return store_purge_from(st, before_ms, 0);
}

/* A purge batch is back: go on while batches come back full. */
static void store_purge_done(struct store *st, struct store_op *op)
{
  uint64_t total = op->purge.total + op->purge.deleted;

  if (op->rc == VS_OK && op->purge.deleted == STORE_PURGE_BATCH &&
      store_purge_from(st, op->purge.before_ms, total) == VS_OK)
    return;
  if (op->rc)
    log_error("old call records not deleted|error=\"%s\"",
              vs_strerror(op->rc));
  else if (total)
    log_info("old call records deleted (store.retention_days)|calls=%llu",
             (unsigned long long)total);
}

int store_calls_query(struct store *st, const struct store_query *q,
                      unsigned offset, store_calls_cb cb, void *arg)
{
  struct calls_query *cq;
  struct store_op *op;

  if (!cb || q->limit < 1 || q->limit > STORE_PAGE_MAX || offset > 1000000 ||
      q->oldest_first)
    return VS_ERR_INVAL;
  if (q->decision && call_decision_parse(q->decision) < 0)
    return VS_ERR_INVAL;
  op = store_new_read(st, STORE_OP_CALLS, arg);
  if (!op)
    return VS_ERR_BUSY;
  cq = calloc(1, sizeof(*cq));
  if (!cq) {
    store_drop_read(st, op);
    return VS_ERR_NOMEM;
  }
  cq->q = *q;
  cq->page = q->limit;
  cq->offset = offset;
  cq->q.limit = offset + q->limit + 1;
  if (q->caller) {
    CALL_SET(cq->caller, q->caller);
    cq->q.caller = cq->caller;
  }
  if (q->decision) {
    CALL_SET(cq->decision, q->decision);
    cq->q.decision = cq->decision;
  }
  op->calls = cq;
  op->calls_cb = cb;
  store_push(st, op);
  return VS_OK;
}

int store_call_stats(struct store *st, int64_t since_ms, int64_t now_ms,
                     store_stats_cb cb, void *arg)
{
  const int64_t hour = 3600000;
  struct store_call_stats *s;
  struct store_op *op;

  if (!cb || now_ms < since_ms)
    return VS_ERR_INVAL;
  op = store_new_read(st, STORE_OP_STATS, arg);
  if (!op)
    return VS_ERR_BUSY;
  s = calloc(1, sizeof(*s));
  if (!s) {
    store_drop_read(st, op);
    return VS_ERR_NOMEM;
  }
  if (since_ms < now_ms - (STORE_STATS_HOURS - 1) * hour)
    since_ms = now_ms - (STORE_STATS_HOURS - 1) * hour;
  s->since_ms = since_ms - since_ms % hour;
  s->now_ms = now_ms;
  s->hours = (size_t)((now_ms - s->since_ms) / hour) + 1;
  op->stats = s;
  op->stats_cb = cb;
  store_push(st, op);
  return VS_OK;
}

const struct call *store_call_find(struct store *st, const char *ref)
{
  char key[CALL_REF_SIZE];
  struct cache_entry *e;

  if (st->shared || !ref)
    return NULL;
  /* Cut as saved records are, so a long ref finds its record. */
  CALL_SET(key, ref);
  e = cache_find(st, key);
  if (!e)
    return NULL;
  call_unpack(&st->layout, e->packed, &st->found);
  return &st->found;
}

int store_healthy(const struct store *st)
{
  return atomic_load(&st->healthy) && !atomic_load(&st->saturated);
}

size_t store_queue_depth(const struct store *st)
{
  return atomic_load(&st->depth);
}

void store_stats_get(const struct store *st, struct store_stats *out)
{
  out->batches = atomic_load(&st->stats.batches);
  out->failed = atomic_load(&st->stats.failed);
  out->saved = atomic_load(&st->stats.saved);
  out->lost = atomic_load(&st->stats.lost);
  out->loaded = atomic_load(&st->stats.loaded);
  out->dropped = atomic_load(&st->stats.dropped);
  out->evicted = atomic_load(&st->stats.evicted);
  out->log_waits = atomic_load(&st->stats.log_waits);
  out->max_batch = atomic_load(&st->stats.max_batch);
}

/* ---- opening and closing --------------------------------------------- */

/* What a replay of the answer log did. */
struct replay {
  const struct store_backend_ops *ops;
  void *handle;
  uint64_t calls;
};

static int replay_call(void *arg, const struct call *c)
{
  struct replay *r = arg;

  if (!call_valid(c))
    return VS_OK; /* damaged beyond the checksum's notice: not ours */
  r->calls++;
  return r->ops->save_call(r->handle, c);
}

/* 1 when the database at `path` keeps an answer log beside it. */
static int has_answer_log(const struct store_backend_ops *ops,
                          const char *path)
{
  return !ops->shared && ops->log_mark && path &&
         strcmp(path, ":memory:") != 0;
}

/*
 * Opens the answer log of the database at `path` (`handle`, this
 * thread's) and writes into the database, in one transaction with the
 * mark, the records the log holds past the mark: calls a process answered
 * and was killed before committing. On success *log is the open and
 * locked log, the caller's to start or close, and *last its newest
 * sequence number. When another process (a running server) holds the
 * log: VS_ERR_BUSY with the reason, or with `skip_if_held` set VS_OK and
 * *log NULL, since that process has replayed it.
 */
static int replay_answer_log(const struct store_backend_ops *ops, void *handle,
                             const char *path, size_t bytes, int skip_if_held,
                             struct answer_log **log, uint64_t *last,
                             char *err, size_t errlen)
{
  struct replay r = {ops, handle, 0};
  struct answer_log *l;
  char file[4096];
  uint64_t db_id;
  uint64_t through;
  int rc;

  if ((size_t)snprintf(file, sizeof(file), "%s-answers", path) >= sizeof(file))
    return vs_fail(err, errlen, VS_ERR_INVAL, "store path too long: %s", path);
  rc = ops->log_mark(handle, &db_id, &through);
  if (rc)
    return vs_fail(err, errlen, rc, "%s: %s", path, ops->errmsg(handle));
  rc = answer_log_open(file, bytes, db_id, &l, err, errlen);
  if (rc == VS_ERR_BUSY && skip_if_held) {
    *log = NULL;
    return VS_OK;
  }
  if (rc)
    return rc;
  rc = ops->begin(handle);
  if (rc == VS_OK)
    rc = answer_log_replay(l, through, replay_call, &r, last);
  if (rc == VS_OK && *last > through)
    rc = ops->set_log_through(handle, *last);
  if (rc == VS_OK)
    rc = ops->commit(handle);
  if (rc) {
    vs_fail(err, errlen, rc,
            "cannot write the answered calls of %s into %s: %s", file, path,
            ops->errmsg(handle));
    ops->rollback(handle);
    answer_log_close(l);
    return rc;
  }
  if (r.calls)
    log_warn("store wrote the calls answered before the server stopped "
             "without writing them|calls=%llu log=%s",
             (unsigned long long)r.calls, file);
  *log = l;
  return VS_OK;
}

/* The store's answer log, replayed, then started for this run. Runs
 * before the worker starts, so the handle is this thread's. */
static int open_answer_log(struct store *st, const char *path, size_t bytes,
                           char *err, size_t errlen)
{
  uint64_t last;
  int rc = replay_answer_log(st->ops, st->handle, path, bytes, 0, &st->log,
                             &last, err, errlen);

  if (rc)
    return rc;
  st->log_seq = last;
  return answer_log_start(st->log, last, err, errlen);
}

int store_open_backend(struct loop *loop, const struct store_options *opt,
                       const struct store_backend_ops *ops, void *handle,
                       struct store **out, char *err, size_t errlen)
{
  pthread_condattr_t attr;
  struct store *st;
  size_t buckets = 1;
  int rc;

  if (!ops)
    return vs_fail(err, errlen, VS_ERR_INVAL, "no store backend");
  if (!loop || !opt || !out) {
    rc = vs_fail(err, errlen, VS_ERR_INVAL, "store_open: missing argument");
    goto fail_close_handle;
  }
  st = calloc(1, sizeof(*st));
  if (!st) {
    rc = vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory for the store");
    goto fail_close_handle;
  }
  st->loop = loop;
  st->ops = ops;
  st->handle = handle;
  st->shared = ops->shared;
  st->queue_max = opt->queue_max ? opt->queue_max : STORE_DEFAULT_QUEUE;
  st->cache_max = opt->cache_max ? opt->cache_max : STORE_DEFAULT_CACHE;
  call_layout_init(&st->layout);
  if (!st->shared) {
    while (buckets < st->cache_max && buckets < STORE_MAX_BUCKETS)
      buckets <<= 1;
    st->buckets = calloc(buckets, sizeof(*st->buckets));
    if (!st->buckets) {
      rc = vs_fail(err, errlen, VS_ERR_NOMEM,
                   "out of memory for a cache of %zu calls", st->cache_max);
      goto fail_free_store;
    }
    st->bucket_mask = buckets - 1;
  }
  st->hash_seed = hash_seed(st);
  st->drop_log_ms = loop_now_ms(loop) - STORE_LOG_EVERY_MS;
  atomic_init(&st->depth, 0);
  atomic_init(&st->held, 0);
  atomic_init(&st->healthy, 1);
  atomic_init(&st->saturated, 0);
  if (pthread_mutex_init(&st->lock, NULL)) {
    rc = vs_fail(err, errlen, VS_ERR_NOMEM, "cannot create the store lock");
    goto fail_free_buckets;
  }
  if (pthread_condattr_init(&attr) ||
      pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) ||
      pthread_cond_init(&st->wake, &attr)) {
    rc = vs_fail(err, errlen, VS_ERR_NOMEM,
                 "cannot create the store condition");
    goto fail_destroy_lock;
  }
  pthread_condattr_destroy(&attr);
  if (opt->answer_log_bytes && has_answer_log(ops, opt->path)) {
    rc = open_answer_log(st, opt->path, opt->answer_log_bytes, err, errlen);
    if (rc)
      goto fail_close_log;
  }
  rc = loop_async_init(loop, &st->async, store_async_cb, st);
  if (rc) {
    vs_fail(err, errlen, rc, "cannot create the store wake-up: %s",
            vs_strerror(rc));
    goto fail_close_log;
  }
  rc = thread_start(&st->worker, store_worker, st, "vs-store");
  if (rc) {
    rc = vs_fail(err, errlen, VS_ERR_IO, "cannot start the store worker: %s",
                 strerror(rc));
    goto fail_close_async;
  }
  loop_hook_add(loop, &st->flush_hook, store_flush_hook, st);
  *out = st;
  return VS_OK;

fail_close_async:
  loop_async_close(loop, &st->async);
fail_close_log:
  answer_log_close(st->log);
  pthread_cond_destroy(&st->wake);
fail_destroy_lock:
  pthread_mutex_destroy(&st->lock);
fail_free_buckets:
  free(st->buckets);
fail_free_store:
  free(st);
fail_close_handle:
  ops->close(handle);
  return rc;
}

int store_location_is_url(const char *location)
{
  return location && (strncmp(location, "postgresql://", 13) == 0 ||
                      strncmp(location, "postgres://", 11) == 0);
}

/* The backend a location names: a URL is PostgreSQL, anything else a file. */
static const struct store_backend_ops *backend_of(const char *location)
{
  return store_location_is_url(location) ? &store_postgres_ops
                                         : &store_sqlite_ops;
}

/*
 * A URL's password is the userinfo after its ':' (user:secret@host) and
 * any password= parameter of its query string; both become "***".
 */
const char *store_location_safe(const char *location, char *buf, size_t size)
{
  const char *p = location ? location : "";
  const char *colon = NULL;
  const char *at = NULL;
  int url = store_location_is_url(p);
  size_t n = 0;

  if (!size)
    return buf;
  if (url) {
    const char *host = strstr(p, "://") + 3;
    const char *end = host + strcspn(host, "/?");

    for (const char *c = host; c < end; c++)
      if (*c == '@')
        at = c;
    if (at)
      colon = memchr(host, ':', (size_t)(at - host));
  }
  while (*p && n + 1 < size) {
    const char *skip_to = NULL;
    const char *put = NULL;

    if (colon && p == colon + 1) {
      put = "***";
      skip_to = at;
    } else if (url && strncmp(p, "password=", 9) == 0 &&
               (p[-1] == '?' || p[-1] == '&')) {
      put = "password=***";
      skip_to = p + strcspn(p, "&");
    }
    if (!put) {
      buf[n++] = *p++;
      continue;
    }
    for (; *put && n + 1 < size; put++)
      buf[n++] = *put;
    p = skip_to;
  }
  buf[n] = '\0';
  return buf;
}

int store_open(struct loop *loop, const struct store_options *opt,
               struct store **out, char *err, size_t errlen)
{
  const struct store_backend_ops *ops;
  void *handle;
  int rc;

  if (!loop || !opt || !out || !opt->path || !*opt->path)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store path is not set");
  ops = backend_of(opt->path);
  rc = ops->open(opt->path, &handle, err, errlen);
  if (rc)
    return rc;
  return store_open_backend(loop, opt, ops, handle, out, err, errlen);
}

void store_close(struct store *st)
{
  struct store_op *done;
  struct store_op *ready;

  if (!st)
    return;
  /* From here saves and loads are refused, also from the callbacks below. */
  st->closing = 1;
  store_flush(st);
  loop_hook_remove(st->loop, &st->flush_hook);
  pthread_mutex_lock(&st->lock);
  st->stopping = 1;
  pthread_cond_signal(&st->wake);
  pthread_mutex_unlock(&st->lock);
  pthread_join(st->worker, NULL);

  /* The worker is gone: every field is this thread's now. */
  loop_defer_cancel(st->loop, &st->ready_task);
  ready = st->ready_head;
  done = st->done_head;
  st->ready_head = NULL;
  st->ready_tail = NULL;
  st->done_head = NULL;
  st->done_tail = NULL;
  store_deliver(st, ready);
  store_deliver(st, done);

  loop_async_close(st->loop, &st->async);
  st->ops->close(st->handle);
  answer_log_close(st->log);
  cache_free(st);
  pthread_cond_destroy(&st->wake);
  pthread_mutex_destroy(&st->lock);
  free(st->buckets);
  free(st);
}

/* ---- tools ----------------------------------------------------------- */

int store_calls_list(const char *path, const struct store_query *q,
                     store_row_cb cb, void *arg, char *err, size_t errlen)
{
  static const struct store_query everything = {0};
  const struct store_backend_ops *ops = backend_of(path);
  void *handle;
  int rc;

  if (!path || !*path)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store path is not set");
  if (!cb)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store_calls_list: no callback");
  if (!q)
    q = &everything;
  if (q->decision && call_decision_parse(q->decision) < 0)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "unknown decision '%s': use allow, block, challenge or "
                   "none",
                   q->decision);
  rc = ops->open_readonly(path, &handle, err, errlen);
  if (rc)
    return rc;
  rc = ops->list_calls(handle, q, cb, arg);
  if (rc)
    vs_fail(err, errlen, rc, "%s", ops->errmsg(handle));
  ops->close(handle);
  return rc;
}

/*
 * The list tools open the database read-write, creating and migrating it
 * if needed, with the same backend open() as a server: a first `list add`
 * may come before the first `serve`. A running server holds its write lock
 * only for the length of a batch, which the busy timeout waits out.
 */
static int tool_open(const char *path, void **handle, char *err, size_t errlen)
{
  if (!path || !*path)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store path is not set");
  return backend_of(path)->open(path, handle, err, errlen);
}

int store_lists_put(const char *path, const struct list_entry *entries,
                    size_t n, char *err, size_t errlen)
{
  const struct store_backend_ops *ops = backend_of(path);
  void *handle;
  int rc;

  if (n && !entries)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store_lists_put: no entries");
  /* All checked first: one bad entry must not leave the others half in. */
  for (size_t i = 0; i < n; i++) {
    const struct list_entry *e = &entries[i];

    if (!kind_valid((int)e->kind))
      return vs_fail(err, errlen, VS_ERR_INVAL,
                     "list entry %zu has an unknown kind %d", i + 1,
                     (int)e->kind);
    if (!key_valid(e->entry, sizeof(e->entry)))
      return vs_fail(err, errlen, VS_ERR_INVAL,
                     "list entry %zu is empty or longer than %d characters",
                     i + 1, LIST_ENTRY_SIZE - 1);
  }
  rc = tool_open(path, &handle, err, errlen);
  if (rc)
    return rc;
  rc = ops->begin(handle);
  if (rc)
    goto fail_rollback;
  for (size_t i = 0; i < n; i++) {
    rc = ops->save_list(handle, &entries[i]);
    if (rc)
      goto fail_rollback;
  }
  rc = ops->commit(handle);
  if (rc)
    goto fail_rollback;
  ops->close(handle);
  return VS_OK;

fail_rollback:
  /* The message first: the rollback may replace it. */
  vs_fail(err, errlen, rc, "%s", ops->errmsg(handle));
  ops->rollback(handle);
  ops->close(handle);
  return rc;
}

int store_lists_delete(const char *path, enum list_kind kind,
                       const char *entry, char *err, size_t errlen)
{
  const struct store_backend_ops *ops = backend_of(path);
  void *handle;
  int rc;

  if (!kind_valid((int)kind))
    return vs_fail(err, errlen, VS_ERR_INVAL, "unknown list kind %d",
                   (int)kind);
  if (!key_valid(entry, LIST_ENTRY_SIZE))
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "list entry is empty or longer than %d characters",
                   LIST_ENTRY_SIZE - 1);
  rc = tool_open(path, &handle, err, errlen);
  if (rc)
    return rc;
  /* One statement: its own transaction. */
  rc = ops->delete_list(handle, kind, entry);
  if (rc)
    vs_fail(err, errlen, rc, "%s", ops->errmsg(handle));
  ops->close(handle);
  return rc;
}

int store_migrate(const char *path, char *err, size_t errlen)
{
  void *handle;
  int rc = tool_open(path, &handle, err, errlen);

  if (!rc)
    backend_of(path)->close(handle);
  return rc;
}

int store_forget_offline(const char *path, const char *number,
                         struct store_forget_counts *out, char *err,
                         size_t errlen)
{
  const struct store_backend_ops *ops = backend_of(path);
  struct answer_log *log = NULL;
  void *handle;
  int rc;

  if (!key_valid(number, CALL_NUMBER_SIZE))
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "the number is empty or too "
                   "long");
  rc = tool_open(path, &handle, err, errlen);
  if (rc)
    return rc;
  /* Calls answered by a server killed before it wrote them would come
   * back at its next start: they are written first, to be forgotten too.
   * The log stays locked until the forget has committed. */
  if (has_answer_log(ops, path)) {
    uint64_t last;

    rc = replay_answer_log(ops, handle, path, ANSWER_LOG_MIN_BYTES, 1, &log,
                           &last, err, errlen);
    if (rc)
      goto out;
  }
  rc = ops->begin(handle);
  if (!rc)
    rc = ops->forget_number(handle, number, out);
  if (!rc)
    rc = ops->commit(handle);
  if (rc) {
    vs_fail(err, errlen, rc, "%s", ops->errmsg(handle));
    ops->rollback(handle);
  }
out:
  answer_log_close(log);
  ops->close(handle);
  return rc;
}

int store_lists_read(const char *path, int kind, store_list_cb cb, void *arg,
                     char *err, size_t errlen)
{
  const struct store_backend_ops *ops = backend_of(path);
  void *handle;
  int rc;

  if (kind >= 0 && !kind_valid(kind))
    return vs_fail(err, errlen, VS_ERR_INVAL, "unknown list kind %d", kind);
  if (!cb)
    return vs_fail(err, errlen, VS_ERR_INVAL, "store_lists_read: no callback");
  rc = tool_open(path, &handle, err, errlen);
  if (rc)
    return rc;
  rc = ops->read_lists(handle, kind, cb, arg);
  if (rc)
    vs_fail(err, errlen, rc, "%s", ops->errmsg(handle));
  ops->close(handle);
  return rc;
}
