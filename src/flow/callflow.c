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
};

/*
 * An event waiting for a lookup or a load. Owns a copy of the event and
 * the record being built; freed once its reply has been handed over.
 */
struct pending {
  struct flow *flow;
  struct voice_event ev;
  struct call call;
  flow_reply_cb cb;
  void *arg;
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
                                   flow_reply_cb cb, void *arg)
{
  struct pending *p = calloc(1, sizeof(*p));

  if (!p)
    return NULL;
  p->flow = f;
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

/* The first answer to a decided call: record it and say it. */
static void screened(struct flow *f, struct call *c, struct flow_reply *r)
{
  struct ivr_answer ans;

  /* Only a challenge needs a digit, and drawing one costs a system call. */
  ivr_start(f->cfg, c,
            c->decision == CALL_DECISION_CHALLENGE ? random_digit() : '0',
            &ans);
  save(f, c);
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
  struct flow_reply r;

  screened(p->flow, c, &r);
  finish_pending(p, &r);
}

static enum flow_status on_incoming(struct flow *f,
                                    const struct voice_event *ev,
                                    struct flow_reply *now, flow_reply_cb cb,
                                    void *arg)
{
  const struct call *known = store_call_find(f->store, ev->ref);
  struct ivr_answer ans;
  struct pending *p;
  struct call c;

  /* TeleSign may deliver an event twice; the decision already made stands,
   * with the same challenge digit, and no second lookup is paid for. */
  if (known && known->decision != CALL_DECISION_NONE) {
    c = *known;
    ivr_start(f->cfg, &c,
              c.challenge_digit[0] ? c.challenge_digit[0] : random_digit(),
              &ans);
    reply_action(now, &ans.action);
    return FLOW_DONE;
  }
  call_init(&c, ev->ref);
  c.started_ms = loop_wall_ms(f->loop);
  CALL_SET(c.caller_raw, ev->from);
  CALL_SET(c.to, ev->to);
  if (screening_decide(f->screening, &c)) {
    screened(f, &c, now);
    return FLOW_DONE;
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
 * Advances a known call for `ev` and answers. `c` is a copy the function
 * may change; it is saved when the event changed anything.
 */
static void advance(struct flow *f, const struct voice_event *ev,
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
    save(f, c);
    log_info("call completed|ref=%s status=%s duration_s=%d", c->ref,
             c->status, c->duration_s);
    reply_empty(r);
    return;
  default:
    ivr_hangup(c, &ans);
    break;
  }
  save(f, c);
  log_debug("call advanced|ref=%s event=%s step=%s", c->ref, ev->name,
            call_step_name(c->step));
  reply_action(r, &ans.action);
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
  struct flow_reply r = {0};

  if (rc == VS_OK) {
    p->call = *loaded;
    advance(p->flow, &p->ev, &p->call, &r);
  } else {
    if (rc != VS_ERR_NOTFOUND)
      log_error("call record not loaded|ref=%s error=\"%s\"", p->ev.ref,
                vs_strerror(rc));
    unknown_call(p->flow, &p->ev, &r);
  }
  finish_pending(p, &r);
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
    advance(f, ev, &c, now);
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
