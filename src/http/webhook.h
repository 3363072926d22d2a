/*
 * The HTTP front: libmicrohttpd run inside our loop.
 *
 * It serves TeleSign's webhook (POST server.webhook_path) and GET /health
 * on server.listen. MHD runs in external-epoll mode with no thread of its
 * own: its epoll fd sits in the loop's, and MHD_run() is called when it is
 * readable or its timeout passes. A request whose answer needs a Score
 * lookup or a store load is suspended (MHD_suspend_connection) and resumed
 * when the call flow answers, so no thread waits on any request.
 *
 * Limits while reading: the body is capped at server.max_body (413), MHD
 * caps the request line and headers by its per-connection memory (431/414),
 * connections by server.max_connections and idle time by
 * server.idle_timeout_s.
 *
 * The webhook and its requests belong to the loop thread.
 */
#ifndef VS_HTTP_WEBHOOK_H
#define VS_HTTP_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"

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
