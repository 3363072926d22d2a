/*
 * The screening service (see screening.h): the policy's inputs, the Score
 * cache and shared lookups, and the challenge bookkeeping.
 *
 * Two ways to keep a caller's state, chosen by the store:
 *
 *   - alone (SQLite): every number's velocity ring, pass, failures and
 *     cached score live in memory (numbers.c), written through to the
 *     store and read back at start;
 *   - shared (PostgreSQL, several instances): the database is the only
 *     copy. Each call's state comes from one store visit (velocity counted
 *     in SQL, the record read, the lookup claimed) and each change is an
 *     atomic update; memory holds only the lists, refreshed every
 *     SCREENING_REFRESH_MS, and the lookups in flight on this instance.
 *
 * In both, calls from one number on this instance share a lookup in
 * flight. In shared mode a call whose number another instance has claimed
 * polls the number's record every SCREENING_POLL_MS until the score
 * appears, the claim goes (it then claims and looks up itself) or its own
 * telesign.timeout_ms deadline passes (it is then decided as a lookup that
 * timed out: screening.on_score_error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../loop/loop.h"
#include "../store/store.h"
#include "../telesign/score.h"
#include "../util/err.h"
#include "../util/log.h"
#include "lists.h"
#include "numbers.h"
#include "policy.h"
#include "screening.h"

/* Shared mode: how often the lists are read again from the database,
 * which bounds how stale another instance's list edit is here. */
#define SCREENING_REFRESH_MS 1000
/* Shared mode: number records with nothing worth keeping are deleted by
 * one list refresh this often. */
#define SCREENING_PRUNE_MS (3600 * 1000)
/* Shared mode: a call waiting for another instance's lookup looks again
 * this often. */
#define SCREENING_POLL_MS 50
/* Shared mode: a claim outlives the lookup's deadline by this much, so
 * that a claimant that died frees the number soon after. */
#define SCREENING_CLAIM_MARGIN_MS 500

/* A call waiting for its number's lookup. */
struct waiter {
  struct call *call;
  screening_cb cb;
  void *arg;
  struct waiter *next;
};

/* One Score lookup in flight, shared by every call from its number. */
struct inflight {
  struct screening *s;
  char number[CALL_NUMBER_SIZE];
  char claim[STORE_CLAIM_SIZE]; /* shared mode: the claim it ends, or "" */
  struct waiter *waiters;       /* the first is the call that started it */
  struct waiter **tail;
  struct inflight *prev, *next;
};

/*
 * Shared mode: a call between screening_lookup() and its decision, while
 * the store visits its number (and polls it). Owns nothing of the call,
 * which the caller keeps alive until `cb`. Freed when decided, or, when
 * its deadline decided it with a visit still out, when that visit is back.
 */
struct visit {
  struct screening *s;
  struct call *call;
  screening_cb cb;
  void *arg;
  struct loop_timer timer; /* the next poll, or the deadline */
  int64_t deadline_ms;     /* on loop_now_ms()'s clock */
  int has_pass;            /* from the first visit */
  int visited;             /* the first visit answered */
  int outstanding;         /* a store visit is in flight */
  int refused;             /* the store refused the last visit */
  int decided;             /* `cb` has run */
  struct visit *prev, *next;
};

struct screening {
  const struct config *cfg;
  struct loop *loop;
  struct store *store;
  struct score_client *scores;
  struct numlist *lists;
  struct numbers *numbers;
  struct inflight *inflight;
  size_t ninflight;
  /* a load in progress */
  screening_loaded_cb loaded_cb;
  void *loaded_arg;
  int load_numbers;
  struct screening_stats stats;
  /* Shared mode only. */
  int shared;
  char instance[48];         /* this server's name in claims */
  struct visit *visits;      /* calls being visited or polling */
  struct loop_timer refresh; /* the next read of the lists */
  int refresh_armed;         /* the periodic read has started */
  int refreshing;            /* a read of the lists is out */
  uint64_t lists_gen;        /* bumped by every local list edit */
  uint64_t refresh_gen;      /* lists_gen when the read went out */
  int64_t pruned_ms;         /* wall clock of the last prune */
  int refresh_failing;       /* the last read failed (logged once) */
};

int screening_create(const struct config *cfg, struct loop *loop,
                     struct store *store, struct score_client *scores,
                     struct screening **out)
{
  struct screening *s = calloc(1, sizeof(*s));

  if (!s)
    return VS_ERR_NOMEM;
  s->cfg = cfg;
  s->loop = loop;
  s->store = store;
  s->scores = scores;
  s->lists = numlist_create();
  s->numbers = numbers_create(cfg->screening.max_numbers);
  if (!s->lists || !s->numbers) {
    screening_destroy(s);
    return VS_ERR_NOMEM;
  }
  s->shared = store && store_shared(store);
  if (s->shared) {
    uint32_t r = 0;
    char host[24] = "";

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
      r = (uint32_t)loop_wall_ms(loop);
    gethostname(host, sizeof(host) - 1);
    snprintf(s->instance, sizeof(s->instance), "%s-%ld-%08x", host,
             (long)getpid(), r);
  }
  *out = s;
  return VS_OK;
}

void screening_destroy(struct screening *s)
{
  if (!s)
    return;
  loop_timer_stop(s->loop, &s->refresh);
  /* The store is closed first, so no visit is still out: what is left
   * waits on a poll timer, and its call goes with the server. */
  while (s->visits) {
    struct visit *v = s->visits;

    s->visits = v->next;
    loop_timer_stop(s->loop, &v->timer);
    free(v);
  }
  numlist_destroy(s->lists);
  numbers_destroy(s->numbers);
  free(s);
}

void screening_set_config(struct screening *s, const struct config *cfg)
{
  s->cfg = cfg;
}

size_t screening_inflight(const struct screening *s)
{
  return s->ninflight;
}

/* ---- loading --------------------------------------------------------- */

static void on_state(void *arg, int rc, const struct store_state *st)
{
  struct screening *s = arg;
  struct numlist *lists = NULL;
  screening_loaded_cb cb = s->loaded_cb;

  s->loaded_cb = NULL;
  if (rc)
    goto done;
  rc = VS_ERR_NOMEM;
  lists = numlist_create();
  if (!lists)
    goto done;
  for (size_t i = 0; i < st->nlists; i++)
    if (numlist_put(lists, &st->lists[i]) == VS_ERR_NOMEM)
      goto done;
  for (size_t i = 0; s->load_numbers && i < st->nnumbers; i++)
    if (numbers_load_record(s->numbers, &st->numbers[i]))
      goto done;
  for (size_t i = 0; s->load_numbers && i < st->nrecent; i++)
    if (st->recent[i].caller[0] &&
        numbers_load_call(s->numbers, st->recent[i].caller,
                          st->recent[i].started_ms))
      goto done;
  numlist_destroy(s->lists);
  s->lists = lists;
  lists = NULL;
  rc = VS_OK;
  log_info("screening state loaded|list_entries=%zu numbers=%zu",
           numlist_count(s->lists), numbers_count(s->numbers));
done:
  numlist_destroy(lists);
  cb(s->loaded_arg, rc);
}

/* The oldest score still fresh under the config's cache TTL. */
static int64_t score_since(const struct screening *s, int64_t now)
{
  return now - (int64_t)s->cfg->screening.score_cache_ttl_s * 1000;
}

static void refresh_lists(struct loop_timer *t);

/*
 * Shared mode: the periodic read of the lists is back. A local edit made
 * since it went out is not in it, so such an answer is dropped (the next
 * one, a second later, has the edit); otherwise it replaces the lists.
 */
static void on_refresh(void *arg, int rc, const struct store_state *st)
{
  struct screening *s = arg;
  struct numlist *lists;

  s->refreshing = 0;
  if (rc) {
    if (!s->refresh_failing)
      log_warn("lists not read from the store; the last ones stay|"
               "error=\"%s\"",
               vs_strerror(rc));
    s->refresh_failing = 1;
    return;
  }
  if (s->refresh_failing)
    log_info("lists read from the store again");
  s->refresh_failing = 0;
  if (s->refresh_gen != s->lists_gen)
    return;
  lists = numlist_create();
  for (size_t i = 0; lists && i < st->nlists; i++)
    if (numlist_put(lists, &st->lists[i]) == VS_ERR_NOMEM) {
      numlist_destroy(lists);
      lists = NULL;
    }
  if (!lists) {
    log_warn("out of memory reading the lists; the last ones stay");
    return;
  }
  numlist_destroy(s->lists);
  s->lists = lists;
}

/*
 * Shared mode: reads the lists every SCREENING_REFRESH_MS (one read out
 * at a time), so that every instance sees another's edits within about a
 * second; once an hour the read also prunes the number records.
 */
static void refresh_lists(struct loop_timer *t)
{
  struct screening *s = t->data;
  int64_t now = loop_wall_ms(s->loop);
  int64_t prune = 0;

  loop_timer_start(s->loop, &s->refresh,
                   loop_now_ms(s->loop) + SCREENING_REFRESH_MS, refresh_lists,
                   s);
  if (s->refreshing)
    return;
  if (now - s->pruned_ms >= SCREENING_PRUNE_MS) {
    prune = score_since(s, now);
    s->pruned_ms = now;
  }
  s->refresh_gen = s->lists_gen;
  if (store_lists_load(s->store, now, prune, on_refresh, s) == VS_OK)
    s->refreshing = 1;
}

int screening_load(struct screening *s, int with_numbers,
                   screening_loaded_cb cb, void *arg)
{
  const struct config *cfg = s->cfg;
  int64_t now = loop_wall_ms(s->loop);
  int rc;

  if (s->loaded_cb)
    return VS_ERR_BUSY;
  s->loaded_cb = cb;
  s->loaded_arg = arg;
  s->load_numbers = with_numbers && !s->shared;
  if (s->shared) {
    /* The database holds every number: only the lists come to memory,
     * and from the first load on they are read again periodically. */
    rc = store_lists_load(s->store, now,
                          with_numbers ? score_since(s, now) : 0, on_state, s);
    if (rc == VS_OK && !s->refresh_armed) {
      s->refresh_armed = 1;
      s->pruned_ms = now;
      loop_timer_start(s->loop, &s->refresh,
                       loop_now_ms(s->loop) + SCREENING_REFRESH_MS,
                       refresh_lists, s);
    }
  } else {
    /* The calls of the velocity window are read back only when velocity
     * is on: after a burst they are many (48 bytes each, up to the
     * store's bound of 192 MiB), and nothing else uses them. A reload
     * that turns velocity on counts from then, as the shared mode does. */
    rc = store_state_load(
        s->store, now, score_since(s, now),
        with_numbers && cfg->screening.velocity.max_calls
            ? now - (int64_t)cfg->screening.velocity.window_s * 1000
            : now,
        on_state, s);
  }
  if (rc)
    s->loaded_cb = NULL;
  return rc;
}

/* ---- deciding -------------------------------------------------------- */

static void apply(struct screening *s, struct call *c,
                  const struct policy_verdict *v)
{
  static const enum call_decision of_verdict[] = {
      [VERDICT_ALLOW] = CALL_DECISION_ALLOW,
      [VERDICT_CHALLENGE] = CALL_DECISION_CHALLENGE,
      [VERDICT_BLOCK] = CALL_DECISION_BLOCK};

  s->stats.decided[v->verdict][v->step]++;
  c->decision = of_verdict[v->verdict];
  CALL_SET(c->reason, v->reason);
  CALL_SET(c->trace, v->trace);
}

static void copy_score(struct call *c, const struct score_result *res,
                       const char *source)
{
  c->score = res->score;
  c->score_ms = res->elapsed_ms;
  CALL_SET(c->risk_level, res->level);
  CALL_SET(c->recommendation, res->recommendation);
  CALL_SET(c->phone_type, res->phone_type);
  CALL_SET(c->score_ref, res->ref);
  CALL_SET(c->score_error, res->error);
  CALL_SET(c->score_source, source);
}

/*
 * The inputs of a call that got as far as the score step: steps 1-5 did
 * not decide, so no list entry matched and there was no pass.
 */
static void scored_inputs(const struct call *c, const struct score_result *r,
                          struct policy_inputs *in)
{
  memset(in, 0, sizeof(*in));
  in->phone = PHONE_OK;
  in->number = c->caller;
  in->velocity_count = (unsigned)c->velocity_count;
  in->score = r;
}

static void decide_scored(struct screening *s, struct call *c,
                          const struct score_result *res, const char *source)
{
  struct policy_inputs in;
  struct policy_verdict v;

  copy_score(c, res, source);
  scored_inputs(c, res, &in);
  policy_decide(s->cfg, &in, &v);
  apply(s, c, &v);
}

/* Copies a lookup's result into the score fields of a number record. */
static void record_score(struct number_record *r,
                         const struct score_result *res, int64_t now)
{
  r->score_fetched_ms = now;
  r->score = res->score;
  CALL_SET(r->risk_level, res->level);
  CALL_SET(r->recommendation, res->recommendation);
  CALL_SET(r->phone_type, res->phone_type);
  CALL_SET(r->score_ref, res->ref);
}

/*
 * Shared mode: a lookup ended. Its score goes to the database (which ends
 * the claim, so that the instances polling the number find it); a failed
 * lookup only gives the claim up, so that the next call may try again.
 */
static void share_score(struct screening *s, const struct inflight *inf,
                        const struct score_result *res)
{
  struct store_number_update u = {.change = STORE_NUMBER_RELEASE};
  int cache = res->failure == SCORE_OK && s->cfg->screening.score_cache_ttl_s;

  if (!cache && !inf->claim[0])
    return;
  number_record_init(&u.rec, inf->number);
  CALL_SET(u.claim, inf->claim);
  if (cache) {
    u.change = STORE_NUMBER_SCORE;
    record_score(&u.rec, res, loop_wall_ms(s->loop));
  }
  if (store_number_update(s->store, &u, NULL, NULL))
    log_warn("score not cached in the store|number=%s", inf->number);
}

static void on_score(void *arg, const struct score_result *res)
{
  struct inflight *inf = arg;
  struct screening *s = inf->s;
  struct number_state *ns = numbers_get(s->numbers, inf->number, 1);
  const char *source = "api";

  if (ns && ns->inflight == inf)
    ns->inflight = NULL;
  if (s->shared) {
    share_score(s, inf, res);
  } else if (ns && res->failure == SCORE_OK &&
             s->cfg->screening.score_cache_ttl_s) {
    record_score(&ns->rec, res, loop_wall_ms(s->loop));
    if (store_number_save(s->store, &ns->rec))
      log_warn("score not cached in the store|number=%s", inf->number);
  }
  if (inf->prev)
    inf->prev->next = inf->next;
  else
    s->inflight = inf->next;
  if (inf->next)
    inf->next->prev = inf->prev;
  s->ninflight--;
  while (inf->waiters) {
    struct waiter *w = inf->waiters;

    inf->waiters = w->next;
    decide_scored(s, w->call, res, source);
    source = "shared"; /* later calls rode on the first one's lookup */
    w->cb(w->arg, w->call);
    free(w);
  }
  free(inf);
}

/*
 * Joins the lookup in flight for the number, or starts one; a new one
 * ends `claim` (shared mode, NULL otherwise) when it is done.
 */
static int look_up(struct screening *s, struct number_state *ns,
                   struct call *c, const char *claim, screening_cb cb,
                   void *arg)
{
  struct waiter *w = calloc(1, sizeof(*w));
  struct inflight *inf = ns ? ns->inflight : NULL;

  if (!w)
    return VS_ERR_NOMEM;
  w->call = c;
  w->cb = cb;
  w->arg = arg;
  if (inf) {
    *inf->tail = w;
    inf->tail = &w->next;
    return VS_OK;
  }
  inf = calloc(1, sizeof(*inf));
  if (!inf) {
    free(w);
    return VS_ERR_NOMEM;
  }
  inf->s = s;
  CALL_SET(inf->number, c->caller);
  CALL_SET(inf->claim, claim ? claim : "");
  inf->waiters = w;
  inf->tail = &w->next;
  if (score_lookup(s->scores, c->caller, on_score, inf)) {
    free(inf);
    free(w);
    return VS_ERR_NOMEM;
  }
  inf->next = s->inflight;
  if (inf->next)
    inf->next->prev = inf;
  s->inflight = inf;
  s->ninflight++;
  if (ns)
    ns->inflight = inf;
  return VS_OK;
}

/* A cached Score result, as the lookup that fetched it returned it. */
static int cached_score(const struct screening *s,
                        const struct number_record *r, int64_t now,
                        struct score_result *res)
{
  int64_t ttl_ms = (int64_t)s->cfg->screening.score_cache_ttl_s * 1000;

  if (!ttl_ms || !r->score_fetched_ms || now - r->score_fetched_ms >= ttl_ms)
    return 0;
  memset(res, 0, sizeof(*res));
  res->failure = SCORE_OK;
  res->http_status = 200;
  res->score = r->score;
  CALL_SET(res->level, r->risk_level);
  CALL_SET(res->recommendation, r->recommendation);
  CALL_SET(res->phone_type, r->phone_type);
  CALL_SET(res->ref, r->score_ref);
  res->elapsed_ms = 0;
  return 1;
}

int screening_decide(struct screening *s, struct call *c)
{
  const struct config *cfg = s->cfg;
  struct number_state *ns = NULL;
  struct policy_inputs in = {0};
  struct policy_verdict v;
  struct score_result res;
  int64_t now = loop_wall_ms(s->loop);

  CALL_SET(c->policy_version, cfg->policy_version);
  in.phone = phone_normalise(c->caller_raw, cfg->screening.default_country,
                             c->caller);
  in.number = c->caller;
  c->velocity_count = 0;
  /* Shared: the number's state is in the database (screening_lookup). */
  if (in.phone == PHONE_OK && s->shared)
    return 0;
  if (in.phone == PHONE_OK) {
    in.allow = numlist_match(s->lists, LIST_ALLOW, c->caller, now);
    in.block = numlist_match(s->lists, LIST_BLOCK, c->caller, now);
    ns = numbers_get(s->numbers, c->caller, 1);
    if (ns) {
      c->velocity_count = (int32_t)numbers_record_call(
          ns, now, (int64_t)cfg->screening.velocity.window_s * 1000);
      in.has_pass = ns->rec.pass_expires_ms > now;
    }
    in.velocity_count = (unsigned)c->velocity_count;
  }
  policy_decide(cfg, &in, &v);
  if (!v.needs_score) {
    apply(s, c, &v);
    return 1;
  }
  if (ns && cached_score(s, &ns->rec, now, &res)) {
    s->stats.cache_hits++;
    decide_scored(s, c, &res, "cache");
    return 1;
  }
  return 0;
}

/*
 * Decides `c` on everything the pipeline reads: the lists now, the
 * velocity already in c->velocity_count, the pass, and `res` (a lookup's
 * result, or a failure standing for one).
 */
static void full_inputs(struct screening *s, const struct call *c,
                        int has_pass, struct policy_inputs *in)
{
  int64_t now = loop_wall_ms(s->loop);

  memset(in, 0, sizeof(*in));
  in->phone = PHONE_OK;
  in->number = c->caller;
  in->allow = numlist_match(s->lists, LIST_ALLOW, c->caller, now);
  in->block = numlist_match(s->lists, LIST_BLOCK, c->caller, now);
  in->velocity_count = (unsigned)c->velocity_count;
  in->has_pass = has_pass;
}

static void decide_full(struct screening *s, struct call *c, int has_pass,
                        const struct score_result *res, const char *source)
{
  struct policy_inputs in;
  struct policy_verdict v;

  full_inputs(s, c, has_pass, &in);
  in.score = res;
  copy_score(c, res, source);
  policy_decide(s->cfg, &in, &v);
  apply(s, c, &v);
}

/* A failure standing for a lookup that did not happen. */
static void failed_lookup(struct score_result *res, enum score_failure f,
                          const char *error)
{
  memset(res, 0, sizeof(*res));
  res->failure = f;
  res->score = -1;
  CALL_SET(res->error, error);
}

/* ---- shared mode: the number's state from the database -------------- */

static void visit_unlink(struct screening *s, struct visit *v)
{
  if (v->prev)
    v->prev->next = v->next;
  else
    s->visits = v->next;
  if (v->next)
    v->next->prev = v->prev;
  v->prev = v->next = NULL;
}

/* Hands the call back; `v` is freed unless a visit of it is still out. */
static void visit_done(struct visit *v)
{
  struct screening *s = v->s;

  loop_timer_stop(s->loop, &v->timer);
  visit_unlink(s, v);
  v->decided = 1;
  v->cb(v->arg, v->call);
  if (!v->outstanding)
    free(v);
}

/*
 * Decides without a score: the lists still apply; then the answer of a
 * lookup that failed with `error` (screening.on_score_error), since the
 * store did not answer or the other instance's lookup did not end in time.
 */
static void visit_unscored(struct visit *v, enum score_failure f,
                           const char *error)
{
  struct score_result res;

  failed_lookup(&res, f, error);
  decide_full(v->s, v->call, v->has_pass, &res, "");
  visit_done(v);
}

/* Gives the call to a lookup (joined or started); `v` is done with. */
static void visit_look_up(struct visit *v, const char *claim)
{
  struct screening *s = v->s;
  struct number_state *ns = numbers_get(s->numbers, v->call->caller, 1);

  loop_timer_stop(s->loop, &v->timer);
  visit_unlink(s, v);
  if (look_up(s, ns, v->call, claim, v->cb, v->arg) == VS_OK) {
    free(v);
    return;
  }
  s->visits = v; /* back on the list for visit_unscored to take off */
  v->prev = NULL;
  v->next = NULL;
  visit_unscored(v, SCORE_FAIL_INTERNAL, "internal");
}

static void on_visit(void *arg, int rc, const struct store_visit *sv);
static void visit_timer(struct loop_timer *t);

/* Asks the store for the number's state: counting the call on the first. */
static void visit_send(struct visit *v)
{
  struct screening *s = v->s;
  const struct config *cfg = s->cfg;
  int64_t now = loop_wall_ms(s->loop);
  uint32_t ttl_s = cfg->screening.score_cache_ttl_s;
  struct store_visit_query q = {
      .number = v->call->caller,
      .now_ms = now,
      .window_ms = !v->visited && cfg->screening.velocity.max_calls
                       ? (int64_t)cfg->screening.velocity.window_s * 1000
                       : 0,
      .score_since_ms = ttl_s ? score_since(s, now) : INT64_MAX,
      .claim_ms =
          ttl_s ? (int64_t)cfg->telesign.timeout_ms + SCREENING_CLAIM_MARGIN_MS
                : 0,
      .instance = s->instance,
  };

  loop_timer_start(s->loop, &v->timer, v->deadline_ms, visit_timer, v);
  if (store_visit_number(s->store, &q, on_visit, v) == VS_OK) {
    v->outstanding = 1;
    return;
  }
  /* The store cannot take it (queue full, closing): decide at once, from
   * the loop, through the timer. */
  v->refused = 1;
  loop_timer_start(s->loop, &v->timer, loop_now_ms(s->loop), visit_timer, v);
}

/*
 * The deadline, or the time for the next poll. A visit still out at the
 * deadline means the store is not answering: decided without a score.
 */
static void visit_timer(struct loop_timer *t)
{
  struct visit *v = t->data;

  if (v->outstanding || v->refused ||
      loop_now_ms(v->s->loop) >= v->deadline_ms) {
    visit_unscored(v, SCORE_FAIL_TIMEOUT,
                   v->visited ? "timeout" : "store_unavailable");
    return;
  }
  visit_send(v);
}

/*
 * The store's answer: the first decides with the velocity, the pass and a
 * cached score, or claims the lookup; a poll finds the other instance's
 * score, or the claim gone (and takes it), or schedules the next poll.
 */
static void on_visit(void *arg, int rc, const struct store_visit *sv)
{
  struct visit *v = arg;
  struct screening *s = v->s;
  struct number_state *ns;
  struct score_result res;
  int first = !v->visited;

  v->outstanding = 0;
  if (v->decided) {
    free(v);
    return;
  }
  if (rc) {
    visit_unscored(v, SCORE_FAIL_INTERNAL, "store_unavailable");
    return;
  }
  v->visited = 1;
  if (first) {
    struct policy_inputs in;
    struct policy_verdict pv;

    v->call->velocity_count = (int32_t)sv->velocity_count;
    v->has_pass = sv->rec.pass_expires_ms > loop_wall_ms(s->loop);
    full_inputs(s, v->call, v->has_pass, &in);
    policy_decide(s->cfg, &in, &pv);
    if (!pv.needs_score) {
      apply(s, v->call, &pv);
      visit_done(v);
      return;
    }
  }
  if (sv->has_score &&
      cached_score(s, &sv->rec, loop_wall_ms(s->loop), &res)) {
    if (first)
      s->stats.cache_hits++;
    decide_scored(s, v->call, &res, first ? "cache" : "shared");
    visit_done(v);
    return;
  }
  ns = numbers_get(s->numbers, v->call->caller, 0);
  if (sv->claimed || !s->cfg->screening.score_cache_ttl_s ||
      (ns && ns->inflight)) {
    visit_look_up(v, sv->claimed ? sv->claim : NULL);
    return;
  }
  /* Another instance is looking the number up: look again shortly. */
  loop_timer_start(s->loop, &v->timer,
                   loop_now_ms(s->loop) + SCREENING_POLL_MS < v->deadline_ms
                       ? loop_now_ms(s->loop) + SCREENING_POLL_MS
                       : v->deadline_ms,
                   visit_timer, v);
}

/* Shared mode's screening_lookup(); VS_ERR_NOMEM is the only failure. */
static int visit_start(struct screening *s, struct call *c, screening_cb cb,
                       void *arg)
{
  struct visit *v = calloc(1, sizeof(*v));

  if (!v)
    return VS_ERR_NOMEM;
  v->s = s;
  v->call = c;
  v->cb = cb;
  v->arg = arg;
  v->deadline_ms = loop_now_ms(s->loop) + s->cfg->telesign.timeout_ms;
  v->next = s->visits;
  if (v->next)
    v->next->prev = v;
  s->visits = v;
  visit_send(v);
  return VS_OK;
}

/* Completes a call that could get no lookup, from the loop as promised. */
struct unlooked {
  struct loop_task task;
  struct screening *s;
  struct call *call;
  screening_cb cb;
  void *arg;
};

static void on_unlooked(struct loop_task *t)
{
  struct unlooked *u = t->data;

  u->cb(u->arg, u->call);
  free(u);
}

void screening_lookup(struct screening *s, struct call *c, screening_cb cb,
                      void *arg)
{
  struct number_state *ns = numbers_get(s->numbers, c->caller, 0);
  struct score_result res;
  struct unlooked *u;

  if (s->shared && visit_start(s, c, cb, arg) == VS_OK)
    return;
  if (!s->shared && look_up(s, ns, c, NULL, cb, arg) == VS_OK)
    return;
  /* Without memory for a lookup the caller is treated as a failed lookup
   * would be: the configured on_score_error answer (after the lists, which
   * a shared store's caller has not been through yet). */
  failed_lookup(&res, SCORE_FAIL_INTERNAL, "internal");
  decide_full(s, c, 0, &res, "");
  u = calloc(1, sizeof(*u));
  if (!u) {
    /* Not even that: answer now rather than never. */
    cb(arg, c);
    return;
  }
  u->s = s;
  u->call = c;
  u->cb = cb;
  u->arg = arg;
  loop_defer(s->loop, &u->task, on_unlooked, u);
}

/* ---- challenges ------------------------------------------------------ */

void screening_challenge_passed(struct screening *s, const struct call *c)
{
  struct number_state *ns;

  s->stats.challenges_passed++;
  if (!c->caller[0])
    return; /* an unscorable caller has no number to remember */
  if (s->shared) {
    struct store_number_update u = {.change = STORE_NUMBER_PASS};

    number_record_init(&u.rec, c->caller);
    u.rec.pass_expires_ms =
        loop_wall_ms(s->loop) +
        (int64_t)s->cfg->screening.challenge.pass_ttl_s * 1000;
    if (store_number_update(s->store, &u, NULL, NULL))
      log_warn("challenge pass not saved|number=%s", c->caller);
    return;
  }
  ns = numbers_get(s->numbers, c->caller, 1);
  if (!ns)
    return;
  ns->rec.pass_expires_ms =
      loop_wall_ms(s->loop) +
      (int64_t)s->cfg->screening.challenge.pass_ttl_s * 1000;
  ns->rec.challenge_failures = 0;
  if (store_number_save(s->store, &ns->rec))
    log_warn("challenge pass not saved|number=%s", c->caller);
}

int screening_list_put(struct screening *s, const struct list_entry *e)
{
  int rc = numlist_put(s->lists, e);

  s->lists_gen++;
  return rc ? rc : store_list_save(s->store, e);
}

int screening_list_remove(struct screening *s, enum list_kind kind,
                          const char *entry)
{
  int rc = numlist_remove(s->lists, kind, entry);

  s->lists_gen++;
  if (store_list_delete(s->store, kind, entry))
    log_warn("list removal not saved|kind=%s entry=%s", list_kind_name(kind),
             entry);
  return rc;
}

int screening_forget(struct screening *s, const char *number,
                     store_forget_cb cb, void *arg)
{
  struct number_state *ns = numbers_get(s->numbers, number, 0);

  if (ns) {
    /* A lookup in flight stays shared; everything remembered goes. */
    number_record_init(&ns->rec, number);
    numbers_forget_calls(ns);
  }
  numlist_remove(s->lists, LIST_ALLOW, number);
  numlist_remove(s->lists, LIST_BLOCK, number);
  s->lists_gen++;
  return store_forget(s->store, number, cb, arg);
}

void screening_lists_each(struct screening *s,
                          int (*cb)(void *arg, const struct list_entry *e),
                          void *arg)
{
  numlist_each(s->lists, loop_wall_ms(s->loop), cb, arg);
}

const struct screening_stats *screening_stats(const struct screening *s)
{
  return &s->stats;
}

/* The block list entry of a number that failed too many challenges. */
static void failure_block(const struct screening *s, const char *number,
                          int64_t now, struct list_entry *e)
{
  memset(e, 0, sizeof(*e));
  e->kind = LIST_BLOCK;
  CALL_SET(e->entry, number);
  CALL_SET(e->source, "challenge");
  e->created_ms = now;
  e->expires_ms =
      now + (int64_t)s->cfg->screening.challenge.fail_block_ttl_s * 1000;
}

static void log_blocklisted(const struct screening *s, const char *number)
{
  log_info("number blocklisted after failed challenges|number=%s "
           "expires_s=%u",
           number, s->cfg->screening.challenge.fail_block_ttl_s);
}

/*
 * Shared mode: the database counted the failure; the entry it may have
 * added takes effect here at once (the other instances read it with
 * their next refresh of the lists). The update was queued before the
 * call's record, so this runs before the answer the record holds back.
 */
static void on_failure_counted(void *arg, int rc,
                               const struct list_entry *blocked)
{
  struct screening *s = arg;

  if (rc)
    log_warn("challenge failure not saved|error=\"%s\"", vs_strerror(rc));
  if (!blocked)
    return;
  if (numlist_put(s->lists, blocked))
    log_warn("blocklist entry not applied|number=%s", blocked->entry);
  s->lists_gen++;
  log_blocklisted(s, blocked->entry);
}

int screening_challenge_failed(struct screening *s, const struct call *c)
{
  const struct config *cfg = s->cfg;
  struct number_state *ns;
  struct list_entry e;
  int64_t now = loop_wall_ms(s->loop);

  s->stats.challenges_failed++;
  if (!c->caller[0])
    return 0;
  if (s->shared) {
    struct store_number_update u = {.change = STORE_NUMBER_FAIL};

    number_record_init(&u.rec, c->caller);
    u.rec.last_failure_ms = now;
    u.block_after = cfg->screening.challenge.fail_block_after;
    failure_block(s, c->caller, now, &u.block);
    if (store_number_update(s->store, &u, on_failure_counted, s))
      log_warn("challenge failure not saved|number=%s", c->caller);
    return 0;
  }
  ns = numbers_get(s->numbers, c->caller, 1);
  if (!ns)
    return 0;
  ns->rec.challenge_failures++;
  ns->rec.last_failure_ms = now;
  if (!cfg->screening.challenge.fail_block_after ||
      ns->rec.challenge_failures < cfg->screening.challenge.fail_block_after) {
    if (store_number_save(s->store, &ns->rec))
      log_warn("challenge failure not saved|number=%s", c->caller);
    return 0;
  }
  /* Blocklisted for a while; the count starts again once it expires. */
  failure_block(s, c->caller, now, &e);
  list_entry_note_failures(&e, ns->rec.challenge_failures);
  ns->rec.challenge_failures = 0;
  if (numlist_put(s->lists, &e) || store_list_save(s->store, &e) ||
      store_number_save(s->store, &ns->rec))
    log_warn("blocklist entry not saved|number=%s", c->caller);
  log_blocklisted(s, c->caller);
  return 1;
}
