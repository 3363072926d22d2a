/*
 * The screening service: runs the policy (policy.h) for a call, gathering
 * its inputs from the lists, the per-number memory and the Score API, and
 * keeps that state up to date as calls are decided and challenges are
 * passed or failed.
 *
 * Score lookups go through a cache (screening.score_cache_ttl_s): a number
 * is looked up at most once per TTL, and calls from the same number that
 * arrive while its lookup is in flight wait for that one lookup instead of
 * starting their own. Failed lookups are not cached.
 *
 * With a store of its own (SQLite), state lives in memory on the loop
 * thread and is written through to the store (lists, number records);
 * screening_load() reads it back at start. With a store shared by several
 * instances (store_shared(), PostgreSQL), the database is the state: each
 * call's velocity, pass and cached score come from one atomic store visit,
 * only one instance looks a number up per cache TTL (the others poll the
 * number's record for its score), challenge outcomes are atomic updates,
 * and the lists are read again every second (an edit made on another
 * instance applies here within about a second; one made here, at once).
 * Loop thread only.
 */
#ifndef VS_SCREEN_SCREENING_H
#define VS_SCREEN_SCREENING_H

#include <stdint.h>

#include "../config/config.h"
#include "../store/records.h"
#include "../store/store.h"
#include "../store/call.h"

struct loop;
struct store;
struct score_client;
struct screening;

/*
 * Creates the service. `cfg` is borrowed (see screening_set_config);
 * `store` and `scores` are borrowed and must outlive it. Returns 0 or
 * VS_ERR_NOMEM.
 */
int screening_create(const struct config *cfg, struct loop *loop,
                     struct store *store, struct score_client *scores,
                     struct screening **out);

/*
 * Frees the service. Lookups still in flight must have completed (the
 * score client completes them when it is destroyed, so destroy it first).
 */
void screening_destroy(struct screening *s);

/*
 * Reads the lists from the store and replaces those in memory, then calls
 * `cb` (rc 0 or a vs_err code). With `with_numbers` (at start) it also
 * reads the number records and rebuilds velocity from recent calls; a
 * reload (SIGHUP) reads only the lists, since memory is ahead of the
 * database for numbers. A shared store reads only the lists either way
 * (the first load starts their periodic refresh, and prunes the number
 * records). Returns 0, or an error after which `cb` is not called.
 */
typedef void (*screening_loaded_cb)(void *arg, int rc);
int screening_load(struct screening *s, int with_numbers,
                   screening_loaded_cb cb, void *arg);

/* Switches to a new config (after a reload); `cfg` is borrowed. */
void screening_set_config(struct screening *s, const struct config *cfg);

/*
 * Decides `c`, a new call whose caller_raw is set: normalises the caller
 * into c->caller, runs the pipeline and fills decision, reason, trace,
 * velocity_count, the score fields and policy_version. Returns 1 when that
 * is done, or 0 when the pipeline needs the Score API, or (shared store)
 * the number's state from the database: the caller then hands a copy of
 * `c` that lives until the callback to screening_lookup().
 * Deciding at once costs no allocation, which keeps the common paths
 * (cached scores, lists, passes) cheap.
 */
int screening_decide(struct screening *s, struct call *c);

/*
 * Looks the number of `c` (as left by screening_decide returning 0) up,
 * sharing a lookup in flight for the same number, and calls `cb` once from
 * the loop with `c` decided. Never fails: without memory for a lookup the
 * call is decided at once as a failed lookup would be, and `cb` is still
 * called from the loop.
 */
typedef void (*screening_cb)(void *arg, struct call *c);
void screening_lookup(struct screening *s, struct call *c, screening_cb cb,
                      void *arg);

/*
 * A challenge outcome for the call's number: passing grants a pass for
 * challenge.pass_ttl_s and clears its failures; failing counts one more
 * failure and, at challenge.fail_block_after, blocklists the number for
 * challenge.fail_block_ttl_s. Returns 1 when the failure blocklisted it
 * (a shared store counts in the database and returns 0: the entry applies
 * here once the store has added it, before the call's committed answer).
 */
void screening_challenge_passed(struct screening *s, const struct call *c);
int screening_challenge_failed(struct screening *s, const struct call *c);

/* Lookups in flight (each may serve several calls). */
size_t screening_inflight(const struct screening *s);

/*
 * List edits made while the server runs (the admin API): the entry takes
 * effect for the next call and is queued for the store. `e` is copied.
 * put returns 0, VS_ERR_INVAL, VS_ERR_NOMEM or the store's VS_ERR_BUSY;
 * remove returns 0 or VS_ERR_NOTFOUND (also queued when only the
 * database may hold it).
 */
int screening_list_put(struct screening *s, const struct list_entry *e);
int screening_list_remove(struct screening *s, enum list_kind kind,
                          const char *entry);

/*
 * `voice-and-score forget`: drops what memory holds of `number` (its
 * pass, failures, cached score, velocity, exact list entries) and has the
 * store delete its call records, list entries and record; `cb` as for
 * store_forget(). Returns 0 or the store's error (memory is cleared
 * either way).
 */
int screening_forget(struct screening *s, const char *number,
                     store_forget_cb cb, void *arg);

/* The unexpired entries, as numlist_each() gives them. */
void screening_lists_each(struct screening *s,
                          int (*cb)(void *arg, const struct list_entry *e),
                          void *arg);

/* What /metrics reports of screening; counters since start. */
struct screening_stats {
  uint64_t decided[3][7]; /* by enum config_verdict, enum policy_step */
  uint64_t cache_hits;    /* decisions on a cached score */
  uint64_t challenges_passed, challenges_failed;
};

/* Borrowed; valid as long as `s`. */
const struct screening_stats *screening_stats(const struct screening *s);

#endif
