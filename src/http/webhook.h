/*
 * The public listener: TeleSign's webhook (POST server.webhook_path, or
 * server.webhook_path/<webhook.token>) and GET /health on server.listen,
 * served by an httpd (httpd.h) in the loop. A request whose answer needs a
 * Score lookup or a store load is suspended and answered when the call
 * flow is done, so no thread waits on any request.
 *
 * Limits: server.max_body, server.max_connections and
 * server.idle_timeout_s, applied by httpd.
 *
 * The webhook and its requests belong to the loop thread.
 */
#ifndef VS_HTTP_WEBHOOK_H
#define VS_HTTP_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../telesign/voice.h"
#include "../util/histogram.h"

struct loop;
struct flow;
struct store;
struct webhook;

/*
 * Starts listening on cfg->server.listen. Every argument is borrowed and
 * must outlive the webhook. Returns 0 or a negative vs_err code with the
 * reason in `err` (address in use, bad address...).
 */
int webhook_create(struct loop *loop, const struct config *cfg,
                   struct flow *flow, struct store *store,
                   struct webhook **out, char *err, size_t errlen);

/*
 * Switches to a new config (a reload): the webhook path, body limit and
 * /health take it from the next request. The listening address, the
 * connection limit and the idle timeout stay as they were at start.
 */
void webhook_set_config(struct webhook *w, const struct config *cfg);

/*
 * With `on`, an event's X-Simulated-Time header (Unix ms) sets the wall
 * clock before the event is handled: serve --simulated-clock, for the
 * traffic simulator only, since anyone who can post events then sets the
 * time every rule sees.
 */
void webhook_set_simulated_clock(struct webhook *w, int on);

/* What /metrics reports of the webhook; counters since start. */
struct webhook_stats {
  uint64_t answers[3]; /* answers by status class: 2xx, 4xx, 5xx */
  uint64_t unverified; /* events whose signature did not check out */
  uint64_t events[VOICE_EVENT_CALL_COMPLETED + 1]; /* by voice_event_type */
  struct histogram duration; /* complete request to answer, ms */
};

/* Borrowed; valid as long as the webhook. */
const struct webhook_stats *webhook_stats(const struct webhook *w);

/* The port actually bound (useful with port 0). */
uint16_t webhook_port(const struct webhook *w);

/*
 * Stops accepting connections; requests already received are still
 * answered. Part of a graceful shutdown.
 */
void webhook_quiesce(struct webhook *w);

/* Requests received and not yet fully answered. */
size_t webhook_live_requests(const struct webhook *w);

/*
 * Stops the daemon and frees the webhook. A request still waiting for the
 * call flow is answered 503 first, since MHD cannot stop with suspended
 * connections. NULL is a no-op.
 */
void webhook_destroy(struct webhook *w);

#endif
