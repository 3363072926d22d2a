/*
 * The screening service (see screening.h): the policy's inputs, the Score
 * cache and shared lookups, and the challenge bookkeeping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../loop/loop.h"
#include "../store/store.h"
#include "../telesign/score.h"
#include "../util/err.h"
#include "../util/log.h"
#include "lists.h"
#include "numbers.h"
#include "policy.h"
#include "screening.h"

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
  struct waiter *waiters; /* the first is the call that started it */
  struct waiter **tail;
  struct inflight *prev, *next;
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
  s->numbers = numbers_create(0);
  if (!s->lists || !s->numbers) {
    screening_destroy(s);
    return VS_ERR_NOMEM;
  }
  *out = s;
  return VS_OK;
}

void screening_destroy(struct screening *s)
{
  if (!s)
    return;
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
  s->load_numbers = with_numbers;
  rc = store_state_load(
      s->store, now, now - (int64_t)cfg->screening.score_cache_ttl_s * 1000,
      with_numbers ? now - (int64_t)cfg->screening.velocity.window_s * 1000
                   : now,
      on_state, s);
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

static void on_score(void *arg, const struct score_result *res)
{
  struct inflight *inf = arg;
  struct screening *s = inf->s;
  struct number_state *ns = numbers_get(s->numbers, inf->number, 1);
  const char *source = "api";

  if (ns && ns->inflight == inf)
    ns->inflight = NULL;
  if (ns && res->failure == SCORE_OK && s->cfg->screening.score_cache_ttl_s) {
    struct number_record *r = &ns->rec;

    r->score_fetched_ms = loop_wall_ms(s->loop);
    r->score = res->score;
    CALL_SET(r->risk_level, res->level);
    CALL_SET(r->recommendation, res->recommendation);
    CALL_SET(r->phone_type, res->phone_type);
    CALL_SET(r->score_ref, res->ref);
    if (store_number_save(s->store, r))
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

/* Joins the lookup in flight for the number, or starts one. */
static int look_up(struct screening *s, struct number_state *ns,
                   struct call *c, screening_cb cb, void *arg)
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
                        const struct number_state *ns, int64_t now,
                        struct score_result *res)
{
  const struct number_record *r = &ns->rec;
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
  if (ns && cached_score(s, ns, now, &res)) {
    s->stats.cache_hits++;
    decide_scored(s, c, &res, "cache");
    return 1;
  }
  return 0;
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

  if (look_up(s, ns, c, cb, arg) == VS_OK)
    return;
  /* Without memory for a lookup the caller is treated as a failed lookup
   * would be: the configured on_score_error answer. */
  memset(&res, 0, sizeof(res));
  res.failure = SCORE_FAIL_INTERNAL;
  res.score = -1;
  CALL_SET(res.error, "internal");
  decide_scored(s, c, &res, "");
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

  return rc ? rc : store_list_save(s->store, e);
}

int screening_list_remove(struct screening *s, enum list_kind kind,
                          const char *entry)
{
  int rc = numlist_remove(s->lists, kind, entry);

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
    ns->ncalls = 0;
    ns->head = 0;
  }
  numlist_remove(s->lists, LIST_ALLOW, number);
  numlist_remove(s->lists, LIST_BLOCK, number);
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

int screening_challenge_failed(struct screening *s, const struct call *c)
{
  const struct config *cfg = s->cfg;
  struct number_state *ns;
  struct list_entry e = {0};
  int64_t now = loop_wall_ms(s->loop);

  s->stats.challenges_failed++;
  if (!c->caller[0])
    return 0;
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
  e.kind = LIST_BLOCK;
  CALL_SET(e.entry, c->caller);
  snprintf(e.note, sizeof(e.note), "failed %u challenges",
           ns->rec.challenge_failures);
  CALL_SET(e.source, "challenge");
  e.created_ms = now;
  e.expires_ms =
      now + (int64_t)cfg->screening.challenge.fail_block_ttl_s * 1000;
  ns->rec.challenge_failures = 0;
  if (numlist_put(s->lists, &e) || store_list_save(s->store, &e) ||
      store_number_save(s->store, &ns->rec))
    log_warn("blocklist entry not saved|number=%s", c->caller);
  log_info("number blocklisted after failed challenges|number=%s "
           "expires_s=%u",
           c->caller, cfg->screening.challenge.fail_block_ttl_s);
  return 1;
}
