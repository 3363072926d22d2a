/*
 * The call flow (see callflow.h). Each event is handled in three moves:
 * find the call's record (from the store's memory, or loaded from the
 * database), advance it, then save it and answer. Only incoming_call may
 * need the Score API; every other event needs at most a store load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../ivr/ivr.h"
#include "../loop/loop.h"
#include "../screen/phone.h"
#include "../screen/screening.h"
#include "../store/store.h"
#include "../util/err.h"
#include "../util/log.h"
#include "callflow.h"

struct flow {
  const struct config *cfg;
  struct loop *loop;
  struct store *store;
  struct screening *screening;
  size_t pending;
  /* Events waiting on the store with a deadline (a reply waiting for its
   * record's commit, an incoming_call's duplicate check on a shared
   * store), oldest first: every wait is store.commit_wait_ms long, so the
   * order of arrival is the order of the deadlines and one timer serves
   * them all. */
  struct pending *wait_head, *wait_tail;
  struct loop_timer wait_timer;
  uint64_t early_replies; /* answered before the commit, since start */
};

/*
 * An event waiting for a lookup, a load or a commit. Owns a copy of the
 * event, the record being built and, while its commit is awaited, the
 * reply; freed once the reply has been handed over.
 */
struct pending {
  struct flow *flow;
  struct voice_event ev;
  struct call call;
  struct flow_reply reply;
  flow_reply_cb cb;
  void *arg;
  /* While waiting on the store with a deadline: */
  int64_t deadline_ms;               /* loop_now_ms() to give up waiting */
  struct pending *wprev, *wnext;     /* the flow's wait list */
  void (*expire)(struct pending *p); /* what giving up does */
  int replied; /* answered already; the store's callback frees */
};

/*
 * A uniformly random digit for a challenge. Bytes of 250 and above are
 * drawn again so that no digit is likelier than another; if the kernel's
 * generator fails, a clock-derived digit still varies between calls.
 */
static char random_digit(void)
{
  unsigned char b;

  for (int i = 0; i < 16; i++)
    if (getrandom(&b, 1, 0) == 1 && b < 250)
      return (char)('0' + b % 10);
  return (char)('0' + (unsigned)(time(NULL) % 10));
}

void flow_reply_clear(struct flow_reply *r)
{
  free(r->body);
  r->body = NULL;
}

int flow_create(const struct config *cfg, struct loop *loop,
                struct store *store, struct screening *screening,
                struct flow **out)
{
  struct flow *f = calloc(1, sizeof(*f));

  if (!f)
    return VS_ERR_NOMEM;
  f->cfg = cfg;
  f->loop = loop;
  f->store = store;
  f->screening = screening;
  *out = f;
  return VS_OK;
}

void flow_set_config(struct flow *f, const struct config *cfg)
{
  f->cfg = cfg;
}

void flow_destroy(struct flow *f)
{
  if (!f)
    return;
  loop_timer_stop(f->loop, &f->wait_timer);
  free(f);
}

size_t flow_pending(const struct flow *f)
{
  return f->pending;
}

/* ---- answering ------------------------------------------------------- */

/*
 * Renders an action into the reply. Out of memory is the one failure, and
 * a constant hangup is the answer that still ends the call cleanly.
 */
static void reply_action(struct flow_reply *r, const struct voice_action *a)
{
  static const char hangup[] =
      "{\"jsonrpc\":\"2.0\",\"method\":\"hangup\",\"params\":{}}";

  r->http_status = 200;
  r->body = voice_action_render(a);
  if (!r->body)
    r->body = strdup(hangup);
}

static void reply_empty(struct flow_reply *r)
{
  r->http_status = 200;
  r->body = strdup("{}");
}

/* Saves the record; a failed save is logged, and the caller still answered. */
static void save(struct flow *f, struct call *c)
{
  int rc;

  c->updated_ms = loop_wall_ms(f->loop);
  rc = store_call_save(f->store, c);
  if (rc)
    log_error("call record not saved|ref=%s error=\"%s\"", c->ref,
              vs_strerror(rc));
}

static struct pending *pending_new(struct flow *f,
                                   const struct voice_event *ev,
                                   flow_reply_cb cb, void *arg);
static void finish_pending(struct pending *p, struct flow_reply *r);

static void wait_unlink(struct flow *f, struct pending *p)
{
  if (p->wprev)
    p->wprev->wnext = p->wnext;
  else
    f->wait_head = p->wnext;
  if (p->wnext)
    p->wnext->wprev = p->wprev;
  else
    f->wait_tail = p->wprev;
  p->wprev = p->wnext = NULL;
}

static void on_wait_timer(struct loop_timer *t);

/* Puts `p` on the wait list: `expire` runs if the store is not done by
 * store.commit_wait_ms from now. */
static void wait_add(struct flow *f, struct pending *p,
                     void (*expire)(struct pending *p))
{
  p->deadline_ms = loop_now_ms(f->loop) + f->cfg->store.commit_wait_ms;
  p->expire = expire;
  p->wprev = f->wait_tail;
  if (f->wait_tail)
    f->wait_tail->wnext = p;
  else
    f->wait_head = p;
  f->wait_tail = p;
  if (!f->wait_timer.active)
    loop_timer_start(f->loop, &f->wait_timer, p->deadline_ms, on_wait_timer,
                     f);
}

/* The store answered `p` in time: off the wait list. */
static void wait_done(struct flow *f, struct pending *p)
{
  wait_unlink(f, p);
  if (!f->wait_head)
    loop_timer_stop(f->loop, &f->wait_timer);
}

/* Hands the reply over now; the commit's callback will free `p`. */
static void reply_early(struct pending *p)
{
  struct flow *f = p->flow;
  struct flow_reply r = p->reply;

  p->reply.body = NULL;
  p->replied = 1;
  f->pending--;
  f->early_replies++;
  p->cb(p->arg, &r);
}

/*
 * The store took longer than store.commit_wait_ms: go on without it, since
 * a caller must not wait on a stalled disk or database (the store reports
 * itself, and a record is still written when the store comes back).
 */
static void on_wait_timer(struct loop_timer *t)
{
  struct flow *f = t->data;
  int64_t now = loop_now_ms(f->loop);
  unsigned n = 0;

  while (f->wait_head && f->wait_head->deadline_ms <= now) {
    struct pending *p = f->wait_head;

    wait_unlink(f, p);
    p->expire(p);
    n++;
  }
  if (n)
    log_warn("went on without the store (store slow)|events=%u "
             "answered_before_commit=%llu",
             n, (unsigned long long)f->early_replies);
  if (f->wait_head)
    loop_timer_start(f->loop, &f->wait_timer, f->wait_head->deadline_ms,
                     on_wait_timer, f);
}

static void on_committed(void *arg, int rc)
{
  struct pending *p = arg;
  struct flow *f = p->flow;

  if (rc)
    log_error("call record not committed|ref=%s error=\"%s\"", p->call.ref,
              vs_strerror(rc));
  if (p->replied) {
    free(p);
    return;
  }
  wait_done(f, p);
  finish_pending(p, &p->reply);
}

/*
 * Saves `c` with a copy in the store's answer log, which keeps it from
 * being lost with the process from here on, so that its answer needs no
 * wait (docs/architecture.md, durability). Returns 0 when that is done,
 * or when the store refused the write (logged: the caller is answered at
 * once all the same); -1 when the log cannot take the record and the
 * answer must wait for its commit instead.
 */
static int save_logged(struct flow *f, struct call *c)
{
  int rc;

  c->updated_ms = loop_wall_ms(f->loop);
  rc = store_call_save_logged(f->store, c);
  if (rc == VS_ERR_LIMIT)
    return -1;
  if (rc)
    log_error("call record not saved|ref=%s error=\"%s\"", c->ref,
              vs_strerror(rc));
  return 0;
}

/*
 * Saves `c` and holds the reply `p->reply` back until the record is
 * committed, at most store.commit_wait_ms: save_logged() could not keep
 * the record safe. When the store cannot take the write, the caller is
 * answered at once all the same: returns 0 when `p` now belongs to the
 * commit, -1 when the caller must hand the reply over itself.
 */
static int wait_commit(struct flow *f, struct pending *p, struct call *c)
{
  uint32_t wait_ms = f->cfg->store.commit_wait_ms;
  int rc;

  p->call = *c;
  rc = store_call_commit(f->store, c, on_committed, p);
  if (rc) {
    log_error("call record not saved|ref=%s error=\"%s\"", c->ref,
              vs_strerror(rc));
    return -1;
  }
  if (!wait_ms)
    reply_early(p);
  else
    wait_add(f, p, reply_early);
  return 0;
}

/* The record of a decision, then its answer: save_logged(), or else
 * wait_commit(), whose returns these are. */
static int commit_then_reply(struct flow *f, struct pending *p, struct call *c)
{
  return save_logged(f, c) == 0 ? -1 : wait_commit(f, p, c);
}

/*
 * For an answer given at once: the record goes to the answer log, or else
 * `*now` moves into a new pending that waits for the record's commit.
 * Returns FLOW_PENDING, or FLOW_DONE with the reply still in `*now` when
 * it need not or cannot wait (logged, out of memory, store full).
 */
static enum flow_status commit_now(struct flow *f, struct call *c,
                                   struct flow_reply *now, flow_reply_cb cb,
                                   void *arg)
{
  struct pending *p;

  if (save_logged(f, c) == 0)
    return FLOW_DONE;
  if (!f->cfg->store.commit_wait_ms)
    goto save_only;
  p = pending_new(f, NULL, cb, arg);
  if (!p)
    goto save_only;
  p->reply = *now;
  if (wait_commit(f, p, c)) {
    free(p);
    return FLOW_DONE;
  }
  now->body = NULL;
  f->pending++;
  return FLOW_PENDING;
save_only:
  save(f, c);
  return FLOW_DONE;
}

static struct pending *pending_new(struct flow *f,
                                   const struct voice_event *ev,
                                   flow_reply_cb cb, void *arg)
{
  struct pending *p = calloc(1, sizeof(*p));

  if (!p)
    return NULL;
  p->flow = f;
  if (ev)
    p->ev = *ev;
  p->cb = cb;
  p->arg = arg;
  return p;
}

static void finish_pending(struct pending *p, struct flow_reply *r)
{
  struct flow *f = p->flow;

  f->pending--;
  p->cb(p->arg, r);
  free(p);
}

/* ---- incoming_call --------------------------------------------------- */

/* The first answer to a decided call; the caller records it. */
static void screened(struct flow *f, struct call *c, struct flow_reply *r)
{
  struct ivr_answer ans;

  /* Only a challenge needs a digit, and drawing one costs a system call. */
  ivr_start(f->cfg, c,
            c->decision == CALL_DECISION_CHALLENGE ? random_digit() : '0',
            &ans);
  log_info("call screened|ref=%s caller=%s decision=%s reason=%s%s score=%d "
           "source=%s",
           c->ref, c->caller[0] ? c->caller : "-",
           call_decision_name(c->decision), c->reason,
           c->shadow ? " shadow=1" : "", c->score,
           c->score_source[0] ? c->score_source : "-");
  reply_action(r, &ans.action);
}

static void on_decided(void *arg, struct call *c)
{
  struct pending *p = arg;

  screened(p->flow, c, &p->reply);
  if (commit_then_reply(p->flow, p, c))
    finish_pending(p, &p->reply);
}

/* The first answer again, to an incoming_call delivered twice. */
static void answer_again(struct flow *f, const struct call *known,
                         struct flow_reply *r)
{
  struct ivr_answer ans;
  struct call c = *known;

  ivr_start(f->cfg, &c,
            c.challenge_digit[0] ? c.challenge_digit[0] : random_digit(),
            &ans);
  reply_action(r, &ans.action);
}

static enum flow_status screen_new(struct flow *f,
                                   const struct voice_event *ev,
                                   int64_t started_ms, struct flow_reply *now,
                                   flow_reply_cb cb, void *arg);

/* Screens the incoming_call of `p` as a new call, and lets `p` go. */
static void screen_pending(struct pending *p)
{
  struct flow_reply now = {0};

  p->flow->pending--;
  if (screen_new(p->flow, &p->ev, 0, &now, p->cb, p->arg) == FLOW_DONE)
    p->cb(p->arg, &now);
}

/*
 * The duplicate check took longer than store.commit_wait_ms (the database
 * is slow or gone): screen the call as new rather than keep the caller
 * waiting; the load's late answer only frees `p`.
 */
static void on_incoming_expired(struct pending *p)
{
  p->replied = 1;
  screen_pending(p);
}

/* Shared store: the incoming_call's record, if a first delivery made one. */
static void on_incoming_loaded(void *arg, int rc, const struct call *known)
{
  struct pending *p = arg;

  if (p->replied) {
    free(p);
    return;
  }
  wait_done(p->flow, p);
  if (rc == VS_OK && known->decision != CALL_DECISION_NONE) {
    answer_again(p->flow, known, &p->reply);
    finish_pending(p, &p->reply);
    return;
  }
  screen_pending(p);
  free(p);
}

static enum flow_status on_incoming(struct flow *f,
                                    const struct voice_event *ev,
                                    struct flow_reply *now, flow_reply_cb cb,
                                    void *arg)
{
  const struct call *known = store_call_find(f->store, ev->ref);
  struct pending *p;

  /* TeleSign may deliver an event twice; the decision already made stands,
   * with the same challenge digit, and no second lookup is paid for. A
   * shared store keeps no call in memory: the database says. */
  if (known && known->decision != CALL_DECISION_NONE) {
    answer_again(f, known, now);
    return FLOW_DONE;
  }
  if (store_shared(f->store) && f->cfg->store.commit_wait_ms) {
    p = pending_new(f, ev, cb, arg);
    if (p &&
        store_call_load(f->store, ev->ref, on_incoming_loaded, p) == VS_OK) {
      f->pending++;
      wait_add(f, p, on_incoming_expired);
      return FLOW_PENDING;
    }
    free(p);
  }
  /* A second delivery while the first is still being screened: the call
   * started when the first arrived, as its record keeps (CALL_UPSERT_SET). */
  return screen_new(f, ev, known ? known->started_ms : 0, now, cb, arg);
}

/* Screens a call seen for the first time; started_ms 0 means now. */
static enum flow_status screen_new(struct flow *f,
                                   const struct voice_event *ev,
                                   int64_t started_ms, struct flow_reply *now,
                                   flow_reply_cb cb, void *arg)
{
  struct pending *p;
  struct call c;

  call_init(&c, ev->ref);
  c.started_ms = started_ms ? started_ms : loop_wall_ms(f->loop);
  CALL_SET(c.caller_raw, ev->from);
  CALL_SET(c.to, ev->to);
  if (screening_decide(f->screening, &c)) {
    screened(f, &c, now);
    return commit_now(f, &c, now, cb, arg);
  }
  p = pending_new(f, ev, cb, arg);
  if (!p) {
    struct voice_action hangup = {.kind = VOICE_ACTION_HANGUP};

    log_error("out of memory screening a call|ref=%s", ev->ref);
    reply_action(now, &hangup);
    return FLOW_DONE;
  }
  p->call = c;
  f->pending++;
  screening_lookup(f->screening, &p->call, on_decided, p);
  return FLOW_PENDING;
}

/* ---- later events ---------------------------------------------------- */

/*
 * Advances a known call for `ev` and answers in `r`. `c` is a copy the
 * function may change, and the caller saves it. Returns 1 when the event
 * completed the screening decision (a challenge passed or failed), whose
 * answer must wait for the record's commit, 0 otherwise.
 */
static int advance(struct flow *f, const struct voice_event *ev,
                   struct call *c, struct flow_reply *r)
{
  struct ivr_answer ans;

  switch (ev->type) {
  case VOICE_EVENT_SPEAK_COMPLETED:
  case VOICE_EVENT_PLAY_COMPLETED:
    ivr_on_prompt_done(f->cfg, c, ev,
                       c->step == CALL_STEP_CHALLENGE ? random_digit() : '0',
                       &ans);
    if (ans.outcome == IVR_OUTCOME_CHALLENGE_PASSED)
      screening_challenge_passed(f->screening, c);
    else if (ans.outcome == IVR_OUTCOME_CHALLENGE_FAILED)
      screening_challenge_failed(f->screening, c);
    if (ans.outcome != IVR_OUTCOME_NONE)
      log_info("challenge %s|ref=%s caller=%s tries=%u", c->challenge_result,
               c->ref, c->caller[0] ? c->caller : "-", c->challenge_tries);
    break;
  case VOICE_EVENT_DIAL_COMPLETED:
    ivr_on_dial_done(f->cfg, c, ev, &ans);
    break;
  case VOICE_EVENT_CALL_COMPLETED:
    CALL_SET(c->status, ev->status[0] ? ev->status : "completed");
    c->duration_s = ev->duration_s;
    c->ended_ms = loop_wall_ms(f->loop);
    c->step = CALL_STEP_ENDED;
    log_info("call completed|ref=%s status=%s duration_s=%d", c->ref,
             c->status, c->duration_s);
    reply_empty(r);
    return 0;
  default:
    ivr_hangup(c, &ans);
    break;
  }
  log_debug("call advanced|ref=%s event=%s step=%s", c->ref, ev->name,
            call_step_name(c->step));
  reply_action(r, &ans.action);
  return ans.outcome != IVR_OUTCOME_NONE;
}

/*
 * An event for a call we have no record of: hang up, except call_completed,
 * whose record is kept anyway so that calls we never screened (the server
 * was down, or the event went to another URL) still show in the call list.
 */
static void unknown_call(struct flow *f, const struct voice_event *ev,
                         struct flow_reply *r)
{
  struct voice_action hangup = {.kind = VOICE_ACTION_HANGUP};
  struct call c;

  log_warn("event for an unknown call|ref=%s event=%s", ev->ref, ev->name);
  if (ev->type != VOICE_EVENT_CALL_COMPLETED) {
    reply_action(r, &hangup);
    return;
  }
  call_init(&c, ev->ref);
  c.started_ms = loop_wall_ms(f->loop);
  CALL_SET(c.caller_raw, ev->from);
  CALL_SET(c.to, ev->to);
  phone_normalise(ev->from, f->cfg->screening.default_country, c.caller);
  CALL_SET(c.reason, "unknown_call");
  advance(f, ev, &c, r);
}

static void on_loaded(void *arg, int rc, const struct call *loaded)
{
  struct pending *p = arg;
  struct call c;

  if (rc != VS_OK) {
    if (rc != VS_ERR_NOTFOUND)
      log_error("call record not loaded|ref=%s error=\"%s\"", p->ev.ref,
                vs_strerror(rc));
    unknown_call(p->flow, &p->ev, &p->reply);
  } else {
    c = *loaded;
    /* On a shared store the next event of the call may reach another
     * instance, which must read this state: answer once it is committed. */
    if (!advance(p->flow, &p->ev, &c, &p->reply) &&
        !store_shared(p->flow->store))
      save(p->flow, &c);
    else if (commit_then_reply(p->flow, p, &c) == 0)
      return;
  }
  finish_pending(p, &p->reply);
}

enum flow_status flow_handle(struct flow *f, const struct voice_event *ev,
                             struct flow_reply *now, flow_reply_cb cb,
                             void *arg)
{
  const struct call *known;
  struct pending *p;
  struct call c;

  now->http_status = 200;
  now->body = NULL;
  if (ev->type == VOICE_EVENT_INCOMING_CALL)
    return on_incoming(f, ev, now, cb, arg);

  known = store_call_find(f->store, ev->ref);
  if (known) {
    c = *known;
    if (advance(f, ev, &c, now))
      return commit_now(f, &c, now, cb, arg);
    save(f, &c);
    return FLOW_DONE;
  }
  p = pending_new(f, ev, cb, arg);
  if (p && store_call_load(f->store, ev->ref, on_loaded, p) == VS_OK) {
    f->pending++;
    return FLOW_PENDING;
  }
  free(p);
  unknown_call(f, ev, now);
  return FLOW_DONE;
}
