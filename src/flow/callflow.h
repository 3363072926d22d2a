/*
 * The call flow: what to answer to each TeleSign event.
 *
 * It ties the modules together for one event: a new caller is screened
 * (screen/screening: lists, velocity, pass, Score), the IVR advances
 * (ivr/ivr) and the call record is saved (store/store).
 * docs/architecture.md walks through one call.
 *
 * The flow, its pending operations and the call records it edits belong to
 * the loop thread.
 */
#ifndef VS_FLOW_CALLFLOW_H
#define VS_FLOW_CALLFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../telesign/voice.h"

struct loop;
struct store;
struct screening;
struct flow;

/* The HTTP answer to an event. `body` is malloc'd and owned by the struct. */
struct flow_reply {
  unsigned http_status;
  char *body;
};

/* Frees a reply's body (the struct itself is the caller's). */
void flow_reply_clear(struct flow_reply *r);

/*
 * Receives the reply of an event that could not be answered at once.
 * Ownership of reply->body passes to the callback.
 */
typedef void (*flow_reply_cb)(void *arg, struct flow_reply *reply);

/*
 * Creates the flow. `cfg` (see flow_set_config), `store` and `screening`
 * are borrowed and must outlive it. Returns 0 or VS_ERR_NOMEM.
 */
int flow_create(const struct config *cfg, struct loop *loop,
                struct store *store, struct screening *screening,
                struct flow **out);

/*
 * Switches to a new config (a reload). Calls in progress carry on with
 * it from their next event; `cfg` is borrowed.
 */
void flow_set_config(struct flow *f, const struct config *cfg);

/* Frees the flow; no operation may be pending (see flow_pending). */
void flow_destroy(struct flow *f);

enum flow_status {
  FLOW_DONE,   /* *now holds the reply */
  FLOW_PENDING /* `cb` will be called exactly once, from the loop */
};

/*
 * Handles one parsed event. Either answers at once (FLOW_DONE, reply in
 * *now, `cb` never called) or starts a Score lookup or a store load and
 * answers later through `cb` (FLOW_PENDING). Every event gets an answer:
 * internal failures become a valid hangup action rather than an error.
 */
enum flow_status flow_handle(struct flow *f, const struct voice_event *ev,
                             struct flow_reply *now, flow_reply_cb cb,
                             void *arg);

/* Events waiting for a lookup or a load. */
size_t flow_pending(const struct flow *f);

#endif
