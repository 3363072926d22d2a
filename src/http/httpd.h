/*
 * An HTTP/1.1 server run inside our loop, with no thread of its own: its
 * listening socket and connections are watched by the loop's epoll, and
 * HTTPS is GnuTLS on the same non-blocking sockets. Requests are parsed by
 * http_parse.c.
 *
 * Both listeners are one of these: the webhook (TeleSign's events, public)
 * and the admin listener (API, dashboard, metrics). Each gives a handler,
 * called once per request when its body is complete, which answers with
 * httpd_respond() exactly once: at once, or later (after a Score lookup or
 * a store query), in which case the connection waits meanwhile and no
 * thread waits on it.
 *
 * Limits while reading: the body is capped at max_body (413, refused before
 * reading when Content-Length announces more), the request line and
 * headers at 8 KiB (414/431), connections by max_connections and idle
 * time by idle_timeout_s.
 *
 * The server and its requests belong to the loop thread.
 */
#ifndef VS_HTTP_HTTPD_H
#define VS_HTTP_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct httpd;
struct httpd_request;

/* The statuses our handlers answer with. */
enum httpd_status {
  HTTP_OK = 200,
  HTTP_CREATED = 201,
  HTTP_NO_CONTENT = 204,
  HTTP_BAD_REQUEST = 400,
  HTTP_UNAUTHORIZED = 401,
  HTTP_NOT_FOUND = 404,
  HTTP_METHOD_NOT_ALLOWED = 405,
  HTTP_INTERNAL_SERVER_ERROR = 500,
  HTTP_SERVICE_UNAVAILABLE = 503
};

struct httpd_options {
  const char *name;   /* the config key of listen, for messages */
  const char *listen; /* "host:port", host may be "[v6]" or empty */
  size_t max_body;    /* bytes */
  unsigned max_connections;
  unsigned idle_timeout_s;
  const char *tls_cert; /* PEM file paths; NULL or "" = plain HTTP */
  const char *tls_key;
};

/*
 * Called on the loop thread when a request is complete. The request stays
 * valid until httpd_respond() has been called on it, which the handler
 * must do exactly once, during the call or after it returns.
 */
typedef void (*httpd_handler)(void *arg, struct httpd_request *rq);

/*
 * Starts listening. `opt`'s strings are read during the call only;
 * `loop` and `arg` are borrowed and must outlive the server. Returns 0 or
 * a negative vs_err code with the reason in `err`.
 */
int httpd_create(struct loop *loop, const struct httpd_options *opt,
                 httpd_handler handler, void *arg, struct httpd **out,
                 char *err, size_t errlen);

/* The body limit for requests from now on (a reload). */
void httpd_set_max_body(struct httpd *h, size_t max_body);

/* The port actually bound (useful with port 0). */
uint16_t httpd_port(const struct httpd *h);

/* Stops accepting connections; requests received are still answered. */
void httpd_quiesce(struct httpd *h);

/* Requests received and not yet fully answered. */
size_t httpd_live_requests(const struct httpd *h);

/*
 * Stops the server and frees it. A request still waiting for its answer
 * is answered 503 first, as far as its socket takes it; the handler's later
 * httpd_respond() on it then only frees what it passes.
 * NULL is a no-op.
 */
void httpd_destroy(struct httpd *h);

/* ---- reading a request (borrowed strings, valid until answered) ------ */

const char *httpd_method(const struct httpd_request *rq);
const char *httpd_path(const struct httpd_request *rq); /* decoded */
/* A request header or query parameter (decoded), or NULL. */
const char *httpd_header(const struct httpd_request *rq, const char *name);
const char *httpd_query(const struct httpd_request *rq, const char *name);
/* The body, NUL-terminated ("" when there was none). */
const char *httpd_body(const struct httpd_request *rq, size_t *len);
/*
 * The `arg` the server was created with, or NULL when the request can no
 * longer be answered (the client went away, or the server shut down and
 * answered it). A late handler uses it to reach its own state safely: the
 * server, and so the handler's state, may be gone by then. NULL still
 * requires httpd_respond(), which then only frees.
 */
void *httpd_request_owner(const struct httpd_request *rq);

/* Monotonic ms (the loop's clock) when the request was complete. */
int64_t httpd_received_ms(const struct httpd_request *rq);

/* ---- answering -------------------------------------------------------- */

/*
 * Adds a header to the coming answer. `name` and `value` must stay valid
 * until httpd_respond() (string literals, or the handler's own). At most
 * four; more are ignored.
 */
void httpd_add_header(struct httpd_request *rq, const char *name,
                      const char *value);

/*
 * Answers `rq` with `status` and `body` of `len` bytes (malloc'd;
 * ownership passes, even on failure; NULL with len 0 for none) of
 * `content_type`. Every answer carries Cache-Control: no-store. A NULL
 * body with a non-zero `len` means the caller ran out of memory: the
 * connection is closed. After this call `rq` may no longer be used.
 */
void httpd_respond(struct httpd_request *rq, unsigned status,
                   const char *content_type, char *body, size_t len);

/* Answers {"error": "<why>"} (JSON-escaped) with `status`. */
void httpd_respond_error(struct httpd_request *rq, unsigned status,
                         const char *why);

/*
 * Answers a static body (not copied, never freed: a literal or an
 * embedded asset) of `content_type`.
 */
void httpd_respond_static(struct httpd_request *rq, unsigned status,
                          const char *content_type, const void *body,
                          size_t len);

#endif
