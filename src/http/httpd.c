/*
 * An HTTP server in the loop (see httpd.h).
 *
 * libmicrohttpd calls on_request() several times per request: once when the
 * headers are in, once per piece of body, and once more when the body is
 * complete. The answer is queued on one of the later calls, never the
 * first: answering on the first call makes MHD close the connection after
 * every request (stack reference, gotcha 1).
 *
 * A request's memory is shared by two owners: MHD, until it reports the
 * request completed, and the handler, until it has answered. It is freed
 * when the last of them lets go, so that neither a client that goes away
 * nor a shutdown can leave the other with a dangling pointer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../loop/loop.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/log.h"
#include "httpd.h"

#define MAX_HEADERS 4

/* One HTTP request. Loop thread only; see the ownership note above. */
struct httpd_request {
  struct httpd *h;
  struct MHD_Connection *conn; /* NULL once MHD has finished with it */
  const char *method;          /* MHD's, valid while conn is */
  const char *path;
  struct buf body;
  int64_t received_ms;
  int refs;
  int suspended;
  int in_handler;            /* the handler is running right now */
  int answered;              /* httpd_respond() or a shutdown has */
  struct MHD_Response *resp; /* the answer, until queued */
  unsigned status;
  const char *hname[MAX_HEADERS], *hvalue[MAX_HEADERS];
  unsigned nheaders;
  struct httpd_request *prev, *next; /* the server's suspended requests */
};

struct httpd {
  struct loop *loop;
  httpd_handler handler;
  void *arg;
  size_t max_body;
  struct MHD_Daemon *daemon;
  struct loop_io io;       /* MHD's epoll fd */
  struct loop_timer timer; /* MHD's own timeouts (idle connections) */
  struct loop_hook hook;
  struct loop_task run_task; /* runs MHD after a resume */
  struct httpd_request *suspended;
  size_t live;
  int closing; /* httpd_destroy has begun: no new request reaches handler */
  uint16_t port;
  char *tls_cert; /* PEM held for MHD's lifetime, or NULL */
  char *tls_key;  /* wiped before it is freed */
};

/*
 * Memory MHD gives each connection for its request line, headers and
 * buffers (bodies go to our own capped buffer). TeleSign's requests carry
 * a few hundred bytes of headers, and at 2,000 connections MHD's default
 * of 32 KiB each was 64 MiB of the server's memory; 8 KiB holds any sane
 * request and refuses larger header blocks with 431.
 */
#define CONNECTION_MEMORY (8 * 1024)

/* ---- request lifetime ------------------------------------------------ */

static void request_unref(struct httpd_request *rq)
{
  if (--rq->refs > 0)
    return;
  if (rq->resp)
    MHD_destroy_response(rq->resp);
  buf_free(&rq->body);
  free(rq);
}

static void unlink_suspended(struct httpd_request *rq)
{
  struct httpd *h = rq->h;

  if (rq->prev)
    rq->prev->next = rq->next;
  else
    h->suspended = rq->next;
  if (rq->next)
    rq->next->prev = rq->prev;
  rq->prev = rq->next = NULL;
  rq->suspended = 0;
}

static void on_run_task(struct loop_task *t);

/* Hands the prepared answer to MHD; returns MHD's verdict. */
static enum MHD_Result queue_answer(struct httpd_request *rq)
{
  enum MHD_Result ret;

  if (!rq->resp)
    return MHD_NO; /* out of memory: MHD closes the connection */
  ret = MHD_queue_response(rq->conn, rq->status, rq->resp);
  MHD_destroy_response(rq->resp);
  rq->resp = NULL;
  return ret;
}

/* Makes the answer ready and, when the request is suspended, wakes it. */
static void set_answer(struct httpd_request *rq, unsigned status,
                       struct MHD_Response *resp)
{
  rq->answered = 1;
  rq->status = status;
  if (resp) {
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (unsigned i = 0; i < rq->nheaders; i++)
      MHD_add_response_header(resp, rq->hname[i], rq->hvalue[i]);
  }
  rq->resp = resp;
  if (rq->conn && rq->suspended) {
    unlink_suspended(rq);
    MHD_resume_connection(rq->conn);
    /* Without a thread of its own, MHD does not wake itself up for a
     * resumed connection: it is picked up by the next MHD_run(). */
    loop_defer(rq->h->loop, &rq->h->run_task, on_run_task, rq->h);
  }
}

void httpd_add_header(struct httpd_request *rq, const char *name,
                      const char *value)
{
  if (rq->nheaders < MAX_HEADERS) {
    rq->hname[rq->nheaders] = name;
    rq->hvalue[rq->nheaders++] = value;
  }
}

/* The common end of every answer: `resp` may be NULL (out of memory). */
static void respond_with(struct httpd_request *rq, unsigned status,
                         const char *content_type, struct MHD_Response *resp)
{
  if (rq->answered) { /* a shutdown answered already */
    if (resp)
      MHD_destroy_response(resp);
    request_unref(rq);
    return;
  }
  if (resp && content_type)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  set_answer(rq, status, resp);
  request_unref(rq); /* the handler's reference */
}

void httpd_respond(struct httpd_request *rq, unsigned status,
                   const char *content_type, char *body, size_t len)
{
  struct MHD_Response *resp = NULL;

  if (body || !len) {
    resp = MHD_create_response_from_buffer(len, body ? body : (char *)"",
                                           body ? MHD_RESPMEM_MUST_FREE
                                                : MHD_RESPMEM_PERSISTENT);
    if (!resp)
      free(body);
  }
  respond_with(rq, status, content_type, resp);
}

void httpd_respond_static(struct httpd_request *rq, unsigned status,
                          const char *content_type, const void *body,
                          size_t len)
{
  respond_with(rq, status, content_type,
               MHD_create_response_from_buffer(len, (void *)body,
                                               MHD_RESPMEM_PERSISTENT));
}

void httpd_respond_error(struct httpd_request *rq, unsigned status,
                         const char *why)
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
    httpd_respond(rq, status, NULL, NULL, 1);
    return;
  }
  httpd_respond(rq, status, "application/json", b.data, b.len);
}

/* ---- reading --------------------------------------------------------- */

const char *httpd_method(const struct httpd_request *rq)
{
  return rq->method;
}

const char *httpd_path(const struct httpd_request *rq)
{
  return rq->path;
}

const char *httpd_header(const struct httpd_request *rq, const char *name)
{
  return rq->conn
             ? MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name)
             : NULL;
}

const char *httpd_query(const struct httpd_request *rq, const char *name)
{
  return rq->conn ? MHD_lookup_connection_value(rq->conn,
                                                MHD_GET_ARGUMENT_KIND, name)
                  : NULL;
}

const char *httpd_body(const struct httpd_request *rq, size_t *len)
{
  if (len)
    *len = rq->body.len;
  return rq->body.data ? rq->body.data : "";
}

void *httpd_request_owner(const struct httpd_request *rq)
{
  return rq->conn && !rq->answered ? rq->h->arg : NULL;
}

int64_t httpd_received_ms(const struct httpd_request *rq)
{
  return rq->received_ms;
}

/* ---- the access handler ---------------------------------------------- */

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
  struct httpd *h = cls;
  struct httpd_request *rq = *con_cls;

  (void)conn;
  if (!rq)
    return;
  if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
    log_debug("request ended early|code=%d", (int)toe);
  if (rq->suspended)
    unlink_suspended(rq);
  rq->conn = NULL;
  h->live--;
  *con_cls = NULL;
  request_unref(rq);
}

/* Answers a request before its body is read (the handler never sees it). */
static enum MHD_Result refuse(struct httpd_request *rq, unsigned status,
                              const char *why)
{
  rq->refs++; /* httpd_respond_error drops a handler's reference */
  rq->in_handler = 1;
  httpd_respond_error(rq, status, why);
  rq->in_handler = 0;
  return queue_answer(rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
  struct httpd *h = cls;
  struct httpd_request *rq = *con_cls;
  const char *clen;
  char *end;

  (void)version;
  if (!rq) {
    rq = calloc(1, sizeof(*rq));
    if (!rq)
      return MHD_NO;
    rq->h = h;
    rq->conn = conn;
    rq->method = method;
    rq->path = url;
    rq->refs = 1; /* MHD's reference, dropped in on_completed */
    buf_init(&rq->body, h->max_body);
    *con_cls = rq;
    h->live++;
    /* Refuse an announced oversize body before reading any of it. */
    clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen && strtoull(clen, &end, 10) > h->max_body)
      return refuse(rq, MHD_HTTP_CONTENT_TOO_LARGE,
                    "request body is too large");
    return MHD_YES;
  }
  if (rq->answered) {
    *upload_data_size = 0; /* the rest of a refused body is dropped */
    return rq->resp ? queue_answer(rq) : MHD_YES;
  }
  if (*upload_data_size) {
    size_t n = *upload_data_size;

    *upload_data_size = 0;
    if (buf_append(&rq->body, upload_data, n))
      return refuse(rq, MHD_HTTP_CONTENT_TOO_LARGE,
                    "request body is too large");
    return MHD_YES;
  }
  /* A request that completes while the daemon stops would be suspended
   * after the last pass that answers suspended requests, and MHD aborts if
   * stopped with one (gotcha 2). */
  if (h->closing)
    return refuse(rq, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
  rq->received_ms = loop_now_ms(h->loop);
  rq->refs++; /* the handler's reference, dropped by httpd_respond */
  rq->in_handler = 1;
  h->handler(h->arg, rq);
  rq->in_handler = 0;
  if (rq->answered)
    return queue_answer(rq);
  MHD_suspend_connection(conn);
  rq->suspended = 1;
  rq->next = h->suspended;
  if (rq->next)
    rq->next->prev = rq;
  h->suspended = rq;
  return MHD_YES;
}

/* ---- running MHD in the loop ------------------------------------------ */

static void on_mhd_ready(struct loop_io *io, uint32_t events)
{
  struct httpd *h = io->data;

  (void)events;
  MHD_run(h->daemon);
}

static void on_mhd_timer(struct loop_timer *t)
{
  struct httpd *h = t->data;

  MHD_run(h->daemon);
}

static void on_run_task(struct loop_task *t)
{
  struct httpd *h = t->data;

  MHD_run(h->daemon);
}

/*
 * Before the loop sleeps, ask MHD when it next needs to run (idle-connection
 * timeouts) and arm our timer for then.
 */
static void before_sleep(struct loop_hook *hook)
{
  struct httpd *h = hook->data;
  MHD_UNSIGNED_LONG_LONG ms;

  if (h->daemon && MHD_get_timeout(h->daemon, &ms) == MHD_YES)
    loop_timer_start(h->loop, &h->timer, loop_now_ms(h->loop) + (int64_t)ms,
                     on_mhd_timer, h);
  else
    loop_timer_stop(h->loop, &h->timer);
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
static int parse_listen(const char *name, const char *listen,
                        struct sockaddr_storage *ss, int *is_v6, char *err,
                        size_t errlen)
{
  struct addrinfo hints = {0};
  struct addrinfo *ai = NULL;
  char host[256];
  const char *colon = strrchr(listen, ':');
  const char *hs = listen;
  size_t hlen;
  int rc;

  if (!colon)
    return vs_fail(err, errlen, VS_ERR_INVAL, "%s '%s' is not host:port", name,
                   listen);
  hlen = (size_t)(colon - listen);
  if (hlen && hs[0] == '[' && hs[hlen - 1] == ']') {
    hs++;
    hlen -= 2;
  }
  if (hlen >= sizeof(host))
    return vs_fail(err, errlen, VS_ERR_INVAL, "%s host too long", name);
  memcpy(host, hs, hlen);
  host[hlen] = '\0';
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, &ai);
  if (rc)
    return vs_fail(err, errlen, VS_ERR_INVAL, "cannot resolve %s '%s': %s",
                   name, listen, gai_strerror(rc));
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

/*
 * Checks that the PEM files hold a certificate and its key, so that a bad
 * file is refused with GnuTLS's reason rather than MHD's bare refusal.
 */
static int check_tls_pair(const struct httpd_options *opt, const char *cert,
                          const char *key, char *err, size_t errlen)
{
  gnutls_certificate_credentials_t cred;
  gnutls_datum_t c = {(unsigned char *)cert, (unsigned)strlen(cert)};
  gnutls_datum_t k = {(unsigned char *)key, (unsigned)strlen(key)};
  int rc = gnutls_certificate_allocate_credentials(&cred);

  if (rc == GNUTLS_E_SUCCESS) {
    rc =
        gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
  }
  if (rc < 0)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "%s and %s are not a usable certificate and key: %s",
                   opt->tls_cert, opt->tls_key, gnutls_strerror(rc));
  return VS_OK;
}

static void free_secret(char *s)
{
  if (s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

int httpd_create(struct loop *loop, const struct httpd_options *opt,
                 httpd_handler handler, void *arg, struct httpd **out,
                 char *err, size_t errlen)
{
  const union MHD_DaemonInfo *info;
  struct sockaddr_storage ss;
  struct httpd *h;
  unsigned flags =
      MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  int is_v6 = 0;
  int rc;

  rc = parse_listen(opt->name, opt->listen, &ss, &is_v6, err, errlen);
  if (rc)
    return rc;
  if (is_v6)
    flags |= MHD_USE_IPv6;
  h = calloc(1, sizeof(*h));
  if (!h)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory");
  h->loop = loop;
  h->handler = handler;
  h->arg = arg;
  h->max_body = opt->max_body;
  if (opt->tls_cert && opt->tls_cert[0]) {
    rc = read_pem(opt->tls_cert, &h->tls_cert, err, errlen);
    if (!rc)
      rc = read_pem(opt->tls_key, &h->tls_key, err, errlen);
    if (!rc)
      rc = check_tls_pair(opt, h->tls_cert, h->tls_key, err, errlen);
    if (rc)
      goto fail_free;
    flags |= MHD_USE_TLS;
  }
  /* Without TLS the option list ends before the two HTTPS options. */
  errno = 0;
  h->daemon = MHD_start_daemon(
      flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
      h, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
      h, MHD_OPTION_CONNECTION_LIMIT, opt->max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, opt->idle_timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
      h->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, h->tls_cert,
      MHD_OPTION_HTTPS_MEM_KEY, h->tls_key, MHD_OPTION_END);
  if (!h->daemon) {
    rc =
        vs_fail(err, errlen, VS_ERR_IO, "cannot listen on %s: %s", opt->listen,
                errno ? strerror(errno) : "libmicrohttpd refused");
    goto fail_free;
  }
  info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
  h->port = info ? info->port : 0;
  info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
  if (!info ||
      loop_io_start(loop, &h->io, info->epoll_fd, EPOLLIN, on_mhd_ready, h)) {
    rc = vs_fail(err, errlen, VS_ERR_IO, "cannot watch the HTTP daemon");
    goto fail_stop;
  }
  loop_hook_add(loop, &h->hook, before_sleep, h);
  *out = h;
  return VS_OK;
fail_stop:
  MHD_stop_daemon(h->daemon);
fail_free:
  free_secret(h->tls_key);
  free(h->tls_cert);
  free(h);
  return rc;
}

void httpd_set_max_body(struct httpd *h, size_t max_body)
{
  h->max_body = max_body;
}

uint16_t httpd_port(const struct httpd *h)
{
  return h->port;
}

void httpd_quiesce(struct httpd *h)
{
  MHD_socket fd = MHD_quiesce_daemon(h->daemon);

  if (fd != MHD_INVALID_SOCKET)
    close(fd);
}

size_t httpd_live_requests(const struct httpd *h)
{
  return h->live;
}

void httpd_destroy(struct httpd *h)
{
  static const char busy[] = "{\"error\":\"shutting down\"}";

  if (!h)
    return;
  h->closing = 1;
  /* MHD aborts if stopped with suspended connections (gotcha 2): answer
   * whatever is still waiting, then let MHD send it. The handler keeps its
   * reference and lets go when it answers in turn. */
  while (h->suspended) {
    struct httpd_request *rq = h->suspended;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof(busy) - 1, (void *)busy, MHD_RESPMEM_PERSISTENT);

    if (resp)
      MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                              "application/json");
    set_answer(rq, MHD_HTTP_SERVICE_UNAVAILABLE, resp);
  }
  MHD_run(h->daemon);
  loop_defer_cancel(h->loop, &h->run_task);
  loop_hook_remove(h->loop, &h->hook);
  loop_timer_stop(h->loop, &h->timer);
  loop_io_stop(h->loop, &h->io);
  MHD_stop_daemon(h->daemon);
  free_secret(h->tls_key);
  free(h->tls_cert);
  free(h);
}
