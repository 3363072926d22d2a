/*
 * The HTTP front (see webhook.h).
 *
 * libmicrohttpd calls on_request() several times per request: once when the
 * headers are in, once per piece of body, and once more when the body is
 * complete. The answer is queued on one of the later calls, never the
 * first: answering on the first call makes MHD close the connection after
 * every request (stack reference, gotcha 1).
 *
 * A request's memory is shared by two owners: MHD, until it reports the
 * request completed, and the call flow, while an answer is pending. It is
 * freed when the last of them lets go, so that neither a client that goes
 * away nor a shutdown can leave the other with a dangling pointer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../flow/callflow.h"
#include "../loop/loop.h"
#include "../store/store.h"
#include "../telesign/tsauth.h"
#include "../telesign/voice.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/log.h"
#include "webhook.h"

enum route { ROUTE_EVENT, ROUTE_HEALTH, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD };

/* One HTTP request. Loop thread only; see the ownership note above. */
struct request {
  struct webhook *w;
  struct MHD_Connection *conn; /* NULL once MHD has finished with it */
  enum route route;
  struct buf body;
  int refs;
  int suspended;
  int has_reply;
  struct flow_reply reply;
  struct request *prev, *next; /* the webhook's list of suspended requests */
};

struct webhook {
  struct loop *loop;
  const struct config *cfg;
  struct flow *flow;
  struct store *store;
  struct MHD_Daemon *daemon;
  struct loop_io io;       /* MHD's epoll fd */
  struct loop_timer timer; /* MHD's own timeouts (idle connections) */
  struct loop_hook hook;
  struct loop_task run_task; /* runs MHD after a resume */
  struct request *suspended;
  size_t live;
  uint16_t port;
  char *tls_cert;            /* PEM held for MHD's lifetime, or NULL */
  char *tls_key;             /* wiped before it is freed */
  uint64_t unverified;       /* events whose signature did not check out */
  int64_t unverified_log_ms; /* when that was last logged */
};

/* Unverified events served under webhook.verify: log are logged at most
 * this often, with their count, so an unsigned feed does not flood logs. */
#define UNVERIFIED_LOG_EVERY_MS 60000

static const char json_type[] = "application/json";

/*
 * Memory MHD gives each connection for its request line, headers and
 * buffers (bodies go to our own capped buffer). TeleSign's requests carry
 * a few hundred bytes of headers, and at 2,000 connections MHD's default
 * of 32 KiB each was 64 MiB of the server's memory; 8 KiB holds any sane
 * request and refuses larger header blocks with 431.
 */
#define CONNECTION_MEMORY (8 * 1024)

/* ---- answering ------------------------------------------------------- */

/*
 * Queues `body` (malloc'd; ownership passes to MHD, even on failure) as the
 * answer. Returns MHD's verdict, which the access handler passes on.
 */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status,
                               char *body)
{
  struct MHD_Response *resp;
  enum MHD_Result ret;

  if (!body)
    return MHD_NO; /* out of memory: MHD closes the connection */
  resp = MHD_create_response_from_buffer(strlen(body), body,
                                         MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, json_type);
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
  ret = MHD_queue_response(conn, status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* Answers {"error": "<why>"} with `status`. */
static enum MHD_Result respond_error(struct MHD_Connection *conn,
                                     unsigned status, const char *why)
{
  struct buf b;
  char esc[600];
  size_t j = 0;

  /* The reason comes from our own messages and jansson's, which may quote
   * bytes of the request: escape what could break the JSON string and
   * replace controls and non-ASCII bytes, which may not be valid UTF-8. */
  for (size_t i = 0; why[i] && j + 2 < sizeof(esc); i++) {
    unsigned char ch = (unsigned char)why[i];

    if (ch == '"' || ch == '\\')
      esc[j++] = '\\';
    esc[j++] = ch < 0x20 ? ' ' : ch >= 0x80 ? '?' : (char)ch;
  }
  esc[j] = '\0';
  buf_init(&b, sizeof(esc) + 32);
  if (buf_printf(&b, "{\"error\":\"%s\"}", esc)) {
    buf_free(&b);
    return MHD_NO;
  }
  return respond(conn, status, buf_detach(&b));
}

static enum MHD_Result respond_health(struct webhook *w,
                                      struct MHD_Connection *conn)
{
  int ok = store_healthy(w->store);
  char *body = NULL;

  if (asprintf(&body,
               "{\"status\":\"%s\",\"version\":\"%s\",\"store\":\"%s\","
               "\"provider\":\"%s\"}",
               ok ? "ok" : "degraded", VS_VERSION, ok ? "ok" : "error",
               config_provider_name(w->cfg->telesign.provider)) < 0)
    body = NULL;
  return respond(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

/* ---- request lifetime ------------------------------------------------ */

static void request_unref(struct request *rq)
{
  if (--rq->refs > 0)
    return;
  flow_reply_clear(&rq->reply);
  buf_free(&rq->body);
  free(rq);
}

static void unlink_suspended(struct request *rq)
{
  struct webhook *w = rq->w;

  if (rq->prev)
    rq->prev->next = rq->next;
  else
    w->suspended = rq->next;
  if (rq->next)
    rq->next->prev = rq->prev;
  rq->prev = rq->next = NULL;
  rq->suspended = 0;
}

static void on_run_task(struct loop_task *t);

/* The call flow's late answer: keep it and wake the connection. */
static void on_flow_reply(void *arg, struct flow_reply *reply)
{
  struct request *rq = arg;

  /* A shutdown may have answered 503 already; this answer then goes
   * nowhere and only its memory needs care. */
  flow_reply_clear(&rq->reply);
  rq->reply = *reply;
  rq->has_reply = 1;
  if (rq->conn && rq->suspended) {
    unlink_suspended(rq);
    MHD_resume_connection(rq->conn);
    /* Without a thread of its own, MHD does not wake itself up for a
     * resumed connection: it is picked up by the next MHD_run(). */
    loop_defer(rq->w->loop, &rq->w->run_task, on_run_task, rq->w);
  }
  request_unref(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
  struct webhook *w = cls;
  struct request *rq = *con_cls;

  (void)conn;
  if (!rq)
    return;
  if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
    log_debug("request ended early|code=%d", (int)toe);
  if (rq->suspended)
    unlink_suspended(rq);
  rq->conn = NULL;
  w->live--;
  *con_cls = NULL;
  request_unref(rq);
}

/* ---- the access handler ---------------------------------------------- */

/*
 * The webhook's own path: webhook_path, or webhook_path/<token> when a
 * secret token is set (then the bare path is not found, like any other).
 * The token is compared in constant time, as any secret is.
 */
static int is_webhook_path(const struct webhook *w, const char *url)
{
  const char *path = w->cfg->server.webhook_path;
  const char *token = w->cfg->webhook.token;
  size_t n = strlen(path);

  if (strncmp(url, path, n) != 0)
    return 0;
  if (!token[0])
    return url[n] == '\0';
  return url[n] == '/' && tsauth_equal_constant_time(url + n + 1, token);
}

static enum route route_of(const struct webhook *w, const char *url,
                           const char *method)
{
  if (is_webhook_path(w, url))
    return strcmp(method, MHD_HTTP_METHOD_POST) == 0 ? ROUTE_EVENT
                                                     : ROUTE_BAD_METHOD;
  if (strcmp(url, "/health") == 0 && strcmp(method, MHD_HTTP_METHOD_GET) == 0)
    return ROUTE_HEALTH;
  return ROUTE_NOT_FOUND;
}

/*
 * Checks TeleSign's signature over the raw body, before any parsing.
 * Returns 1 when the event may be served (verified, or verify is log or
 * off), 0 when it must be refused with 401.
 */
static int event_verified(struct request *rq)
{
  struct webhook *w = rq->w;
  const struct config *cfg = w->cfg;
  int64_t now = loop_now_ms(w->loop);
  char why[96];

  if (cfg->webhook.verify == VERIFY_OFF || !cfg->telesign.api_key[0])
    return 1;
  if (tsauth_callback_verify(
          cfg->telesign.customer_id, cfg->telesign.api_key,
          MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                      MHD_HTTP_HEADER_AUTHORIZATION),
          MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                      "X-TS-Authorization"),
          rq->body.data, rq->body.len, why, sizeof(why)) == VS_OK)
    return 1;
  w->unverified++;
  if (cfg->webhook.verify == VERIFY_ENFORCE) {
    log_warn("event refused: signature not verified|reason=\"%s\"", why);
    return 0;
  }
  if (now - w->unverified_log_ms >= UNVERIFIED_LOG_EVERY_MS ||
      w->unverified == 1) {
    log_warn("event served without a verified signature (webhook.verify: "
             "log)|reason=\"%s\" unverified_total=%llu",
             why, (unsigned long long)w->unverified);
    w->unverified_log_ms = now;
  }
  return 1;
}

/* Parses a finished event body and asks the call flow for the answer. */
static enum MHD_Result handle_event(struct request *rq)
{
  struct webhook *w = rq->w;
  struct voice_event ev;
  struct flow_reply now;
  char err[256];

  if (!event_verified(rq))
    return respond_error(rq->conn, MHD_HTTP_UNAUTHORIZED,
                         "signature not verified");
  if (voice_event_parse(rq->body.data ? rq->body.data : "", rq->body.len, &ev,
                        err, sizeof(err))) {
    log_warn("malformed event refused|reason=\"%s\"", err);
    return respond_error(rq->conn, MHD_HTTP_BAD_REQUEST, err);
  }
  log_debug("event|ref=%s event=%s", ev.ref, ev.name);
  rq->refs++; /* the call flow's reference, dropped in on_flow_reply */
  if (flow_handle(w->flow, &ev, &now, on_flow_reply, rq) == FLOW_DONE) {
    rq->refs--;
    return respond(rq->conn, now.http_status, now.body);
  }
  if (rq->has_reply) /* cannot happen by flow's contract; stay safe */
    return MHD_YES;
  MHD_suspend_connection(rq->conn);
  rq->suspended = 1;
  rq->next = w->suspended;
  if (rq->next)
    rq->next->prev = rq;
  w->suspended = rq;
  return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
  struct webhook *w = cls;
  struct request *rq = *con_cls;
  const char *clen;
  char *end;

  (void)version;
  if (!rq) {
    rq = calloc(1, sizeof(*rq));
    if (!rq)
      return MHD_NO;
    rq->w = w;
    rq->conn = conn;
    rq->refs = 1; /* MHD's reference, dropped in on_completed */
    rq->route = route_of(w, url, method);
    buf_init(&rq->body, w->cfg->server.max_body);
    *con_cls = rq;
    w->live++;
    /* Refuse an announced oversize body before reading any of it. */
    clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (rq->route == ROUTE_EVENT && clen &&
        strtoull(clen, &end, 10) > w->cfg->server.max_body)
      return respond_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                           "request body is too large");
    return MHD_YES;
  }
  if (rq->has_reply) {
    char *body = rq->reply.body;

    rq->has_reply = 0;
    rq->reply.body = NULL;
    return respond(conn, rq->reply.http_status, body);
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;

    *upload_data_size = 0;
    if (rq->route != ROUTE_EVENT)
      return MHD_YES; /* a body nobody asked for is read and dropped */
    if (buf_append(&rq->body, upload_data, n))
      return respond_error(conn, MHD_HTTP_CONTENT_TOO_LARGE,
                           "request body is too large");
    return MHD_YES;
  }
  switch (rq->route) {
  case ROUTE_EVENT:
    return handle_event(rq);
  case ROUTE_HEALTH:
    return respond_health(w, conn);
  case ROUTE_BAD_METHOD:
    return respond_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                         "use POST for events");
  case ROUTE_NOT_FOUND:
    break;
  }
  return respond_error(conn, MHD_HTTP_NOT_FOUND, "no such path");
}

/* ---- running MHD in the loop ------------------------------------------ */

static void run_mhd(struct webhook *w)
{
  MHD_run(w->daemon);
}

static void on_mhd_ready(struct loop_io *io, uint32_t events)
{
  (void)events;
  run_mhd(io->data);
}

static void on_mhd_timer(struct loop_timer *t)
{
  run_mhd(t->data);
}

static void on_run_task(struct loop_task *t)
{
  run_mhd(t->data);
}

/*
 * Before the loop sleeps, ask MHD when it next needs to run (idle-connection
 * timeouts) and arm our timer for then.
 */
static void before_sleep(struct loop_hook *h)
{
  struct webhook *w = h->data;
  MHD_UNSIGNED_LONG_LONG ms;

  if (w->daemon && MHD_get_timeout(w->daemon, &ms) == MHD_YES)
    loop_timer_start(w->loop, &w->timer, loop_now_ms(w->loop) + (int64_t)ms,
                     on_mhd_timer, w);
  else
    loop_timer_stop(w->loop, &w->timer);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  char msg[512];
  size_t n;

  (void)cls;
  vsnprintf(msg, sizeof(msg), fmt, ap);
  n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  log_warn("http: %s", msg);
}

/*
 * Resolves "host:port" (host may be "[v6]") into a socket address. Numeric
 * hosts are used as they are; names go through getaddrinfo once, at start.
 */
static int parse_listen(const char *listen, struct sockaddr_storage *ss,
                        int *is_v6, char *err, size_t errlen)
{
  struct addrinfo hints = {0};
  struct addrinfo *ai = NULL;
  char host[256];
  const char *colon = strrchr(listen, ':');
  const char *h = listen;
  size_t hlen;
  int rc;

  if (!colon)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "server.listen '%s' is not host:port", listen);
  hlen = (size_t)(colon - listen);
  if (hlen && h[0] == '[' && h[hlen - 1] == ']') {
    h++;
    hlen -= 2;
  }
  if (hlen >= sizeof(host))
    return vs_fail(err, errlen, VS_ERR_INVAL, "server.listen host too long");
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &ai);
  if (rc)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "cannot resolve server.listen '%s': %s", listen,
                   gai_strerror(rc));
  memcpy(ss, ai->ai_addr, ai->ai_addrlen);
  *is_v6 = ai->ai_family == AF_INET6;
  freeaddrinfo(ai);
  return VS_OK;
}

/* Reads a PEM file of at most 1 MiB into a new NUL-terminated string. */
static int read_pem(const char *path, char **out, char *err, size_t errlen)
{
  struct buf b;
  char chunk[4096];
  FILE *f = fopen(path, "rb");
  size_t n;
  int rc = VS_OK;

  if (!f)
    return vs_fail(err, errlen, VS_ERR_IO, "cannot read %s: %s", path,
                   strerror(errno));
  buf_init(&b, 1024 * 1024);
  while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    rc = buf_append(&b, chunk, n);
  if (!rc && ferror(f))
    rc = VS_ERR_IO;
  fclose(f);
  explicit_bzero(chunk, sizeof(chunk));
  if (rc || !b.data) {
    if (b.data)
      explicit_bzero(b.data, b.len);
    buf_free(&b);
    return vs_fail(
        err, errlen, rc ? rc : VS_ERR_INVAL, "cannot read %s: %s", path,
        rc == VS_ERR_LIMIT ? "larger than 1 MiB" : "empty or unreadable");
  }
  *out = buf_detach(&b);
  return VS_OK;
}

static void free_secret(char *s)
{
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

int webhook_create(struct loop *loop, const struct config *cfg,
                   struct flow *flow, struct store *store,
                   struct webhook **out, char *err, size_t errlen)
{
  const union MHD_DaemonInfo *info;
  struct sockaddr_storage ss;
  struct webhook *w;
  unsigned flags =
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  int is_v6 = 0;
  int rc;

  rc = parse_listen(cfg->server.listen, &ss, &is_v6, err, errlen);
  if (rc)
    return rc;
  if (is_v6)
    flags |= MHD_USE_IPv6;
  w = calloc(1, sizeof(*w));
  if (!w)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory");
  w->loop = loop;
  w->cfg = cfg;
  w->flow = flow;
  w->store = store;
  if (cfg->server.tls_cert[0]) {
    rc = read_pem(cfg->server.tls_cert, &w->tls_cert, err, errlen);
    if (!rc)
      rc = read_pem(cfg->server.tls_key, &w->tls_key, err, errlen);
    if (rc)
      goto fail_free;
    flags |= MHD_USE_TLS;
  }
  /* Without TLS the option list ends before the two HTTPS options. */
  w->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, w, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
      w, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
      w, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->server.max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->server.idle_timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
      MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U,
      w->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, w->tls_cert,
      MHD_OPTION_HTTPS_MEM_KEY, w->tls_key, MHD_OPTION_END);
  if (!w->daemon) {
    rc = vs_fail(err, errlen, VS_ERR_IO, "cannot listen on %s: %s",
                 cfg->server.listen,
                 errno ? strerror(errno) : "libmicrohttpd refused");
    goto fail_free;
  }
  info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_BIND_PORT);
  w->port = info ? info->port : 0;
  info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  if (!info ||
      loop_io_start(loop, &w->io, info->epoll_fd, EPOLLIN, on_mhd_ready, w)) {
    rc = vs_fail(err, errlen, VS_ERR_IO, "cannot watch the HTTP daemon");
    goto fail_stop;
  }
  loop_hook_add(loop, &w->hook, before_sleep, w);
  *out = w;
  return VS_OK;
fail_stop:
  MHD_stop_daemon(w->daemon);
fail_free:
  free_secret(w->tls_key);
  free(w->tls_cert);
  free(w);
  return rc;
}

void webhook_set_config(struct webhook *w, const struct config *cfg)
{
  w->cfg = cfg;
}

uint16_t webhook_port(const struct webhook *w)
{
  return w->port;
}

void webhook_quiesce(struct webhook *w)
{
  MHD_socket fd = MHD_quiesce_daemon(w->daemon);

  if (fd != MHD_INVALID_SOCKET)
    close(fd);
}

size_t webhook_live_requests(const struct webhook *w)
{
  return w->live;
}

void webhook_destroy(struct webhook *w)
{
  if (!w)
    return;
  /* MHD aborts if stopped with suspended connections (gotcha 2): answer
   * whatever is still waiting, then let MHD send it. */
  while (w->suspended) {
    struct request *rq = w->suspended;

    unlink_suspended(rq);
    rq->reply.http_status = MHD_HTTP_SERVICE_UNAVAILABLE;
    rq->reply.body = strdup("{\"error\":\"shutting down\"}");
    rq->has_reply = 1;
    MHD_resume_connection(rq->conn);
  }
  MHD_run(w->daemon);
  loop_defer_cancel(w->loop, &w->run_task);
  loop_hook_remove(w->loop, &w->hook);
  loop_timer_stop(w->loop, &w->timer);
  loop_io_stop(w->loop, &w->io);
  MHD_stop_daemon(w->daemon);
  free_secret(w->tls_key);
  free(w->tls_cert);
  free(w);
}
