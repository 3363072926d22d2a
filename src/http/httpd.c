/*
 * An HTTP/1.1 server in the loop (see httpd.h).
 *
 * Each connection is a loop_io watched level-triggered for what it waits
 * on: EPOLLIN while it reads (and while its request is with the handler,
 * so that nothing changes in the epoll set on the common path), EPOLLOUT
 * while an answer does not fit the socket, nothing when its input buffer
 * is full or the client has finished sending. One request per connection
 * is read at a time; a pipelined next one waits in the buffer until the
 * answer before it has been written, so answers go out in order.
 *
 * A request belongs to its connection while its head and body are read,
 * and to the handler from the moment it is handed over until
 * httpd_respond(). If the connection goes first (the client left, or the
 * server is destroyed), the request is only detached: httpd_respond()
 * frees it later and writes nothing.
 *
 * Connections not waiting on the handler are kept in order of their last
 * activity, so that the idle timeout is one timer on the oldest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../loop/loop.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/log.h"
#include "http_parse.h"
#include "httpd.h"

#define MAX_HEADERS 4

/*
 * The longest head (request line and header fields) accepted: TeleSign's
 * requests carry a few hundred bytes of headers, and 8 KiB holds any sane
 * request; longer ones are refused with 414 or 431.
 */
#define HEAD_MAX (8 * 1024)

/* A connection's input buffer: a head and what follows it. */
#define IN_MAX (16 * 1024)

/* Input buffers kept for reuse: a buffer is held only while bytes wait. */
#define SPARE_MAX 64

/* Connections accepted per wake-up, so that a burst does not starve the
 * connections already open. */
#define ACCEPT_BATCH 64

/* How long to stop accepting after running out of file descriptors. */
#define ACCEPT_PAUSE_MS 100

/*
 * Refused bodies up to this size are read and dropped so that the
 * connection can serve the next request; larger ones close it.
 */
#define DISCARD_MAX (1024 * 1024)

enum conn_state {
  C_HEAD,    /* reading a head */
  C_BODY,    /* reading the body of c->rq */
  C_DISCARD, /* dropping a refused body, then C_HEAD */
  C_WAIT,    /* c->rq is with the handler */
  C_LINGER   /* refused and half-closed: dropping input until the client
              * closes, so that our answer is not lost to a reset */
};

struct conn;

/*
 * One HTTP request. Loop thread only; owned as described at the top of the
 * file. `raw` holds the head, which `head`'s strings point into.
 */
struct httpd_request {
  struct conn *c; /* NULL once the connection has gone or a shutdown
                   * answered it: then nothing more can be answered */
  struct http_head head;
  struct buf body;
  int64_t received_ms;
  const char *hname[MAX_HEADERS], *hvalue[MAX_HEADERS];
  unsigned nheaders;
  char raw[];
};

/* One client connection. Loop thread only. */
struct conn {
  struct httpd *h;
  int fd;
  struct loop_io io;
  gnutls_session_t tls; /* NULL for plain HTTP */
  int handshaken;
  enum conn_state state;
  char *in; /* bytes received and not yet used; NULL when none */
  size_t in_len;
  struct httpd_request *rq; /* being read or with the handler */
  struct http_chunked chunk;
  uint64_t body_left; /* of a Content-Length body, or of a discard */
  char *out;          /* an answer not yet fully written */
  size_t out_len, out_off;
  int counted;     /* counted in h->live until its answer is written */
  int keep_alive;  /* another request may follow this one */
  int peer_closed; /* the client has finished sending */
  int close_after; /* close once the output is written */
  int refused;     /* close_after is a refusal: linger before closing */
  int in_service;  /* conn_service is on the stack */
  int64_t active_ms;
  struct conn *prev, *next; /* h->idle or h->waiting */
};

/* A list of connections, oldest first. */
struct conn_list {
  struct conn *head, *tail;
};

struct httpd {
  struct loop *loop;
  httpd_handler handler;
  void *arg;
  size_t max_body;
  unsigned max_connections;
  int64_t idle_ms;
  int lfd;
  struct loop_io lio;
  struct loop_timer accept_timer; /* resumes accepting after EMFILE */
  struct loop_timer idle_timer;   /* for the oldest idle connection */
  int idle_armed;
  struct conn_list idle;    /* by last activity */
  struct conn_list waiting; /* requests with the handler */
  unsigned nconns;
  size_t live;
  int closing; /* httpd_destroy has begun: no new request reaches handler */
  uint16_t port;
  gnutls_certificate_credentials_t cred; /* NULL for plain HTTP */
  gnutls_priority_t prio;
  char *spare[SPARE_MAX];
  unsigned nspare;
  time_t date_at; /* the second `date` was formatted for */
  char date[40];
};

static void conn_service(struct conn *c, int readable);
static void conn_close(struct conn *c);
static void on_conn_io(struct loop_io *io, uint32_t events);

/* ---- lists and buffers ----------------------------------------------- */

static void list_remove(struct conn_list *l, struct conn *c)
{
  if (c->prev)
    c->prev->next = c->next;
  else
    l->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    l->tail = c->prev;
  c->prev = c->next = NULL;
}

static void list_append(struct conn_list *l, struct conn *c)
{
  c->prev = l->tail;
  c->next = NULL;
  if (l->tail)
    l->tail->next = c;
  else
    l->head = c;
  l->tail = c;
}

static void on_idle_timer(struct loop_timer *t);

/* Arms the idle timer for the oldest idle connection, if it is not armed. */
static void arm_idle(struct httpd *h)
{
  if (!h->idle_armed && h->idle.head) {
    loop_timer_start(h->loop, &h->idle_timer,
                     h->idle.head->active_ms + h->idle_ms, on_idle_timer, h);
    h->idle_armed = 1;
  }
}

/* Marks activity: an idle-list `c` moves to the list's young end. */
static void touch(struct conn *c)
{
  struct httpd *h = c->h;

  if (c->state == C_WAIT)
    return;
  c->active_ms = loop_now_ms(h->loop);
  if (c != h->idle.tail) {
    list_remove(&h->idle, c);
    list_append(&h->idle, c);
  }
  arm_idle(h);
}

/* Moves `c` between the idle and waiting lists as its state changes. */
static void set_state(struct conn *c, enum conn_state s)
{
  struct httpd *h = c->h;

  if ((c->state == C_WAIT) != (s == C_WAIT)) {
    list_remove(c->state == C_WAIT ? &h->waiting : &h->idle, c);
    list_append(s == C_WAIT ? &h->waiting : &h->idle, c);
  }
  c->state = s;
  touch(c);
}

static void on_idle_timer(struct loop_timer *t)
{
  struct httpd *h = t->data;
  int64_t now = loop_now_ms(h->loop);

  h->idle_armed = 0;
  while (h->idle.head && h->idle.head->active_ms + h->idle_ms <= now) {
    log_debug("http connection idle, closed|fd=%d", h->idle.head->fd);
    conn_close(h->idle.head);
  }
  arm_idle(h);
}

static char *in_buffer(struct httpd *h)
{
  return h->nspare ? h->spare[--h->nspare] : malloc(IN_MAX);
}

/* Drops the first `n` bytes of input; an empty buffer goes back spare. */
static void consume(struct conn *c, size_t n)
{
  struct httpd *h = c->h;

  c->in_len -= n;
  if (c->in_len) {
    memmove(c->in, c->in + n, c->in_len);
    return;
  }
  if (h->nspare < SPARE_MAX)
    h->spare[h->nspare++] = c->in;
  else
    free(c->in);
  c->in = NULL;
}

/* ---- requests -------------------------------------------------------- */

static void request_free(struct httpd_request *rq)
{
  buf_free(&rq->body);
  free(rq);
}

/* The request in `c` is finished with: its connection stops counting it. */
static void uncount(struct conn *c)
{
  if (c->counted) {
    c->counted = 0;
    c->h->live--;
  }
}

/* ---- writing --------------------------------------------------------- */

/*
 * The statuses we answer with: the reason phrase, and for those the server
 * itself refuses a request with, the error the body gives.
 */
static const struct status_text {
  unsigned status;
  const char *reason;
  const char *why;
} statuses[] = {
    {100, "Continue", NULL},
    {200, "OK", NULL},
    {201, "Created", NULL},
    {204, "No Content", NULL},
    {400, "Bad Request", "malformed request"},
    {401, "Unauthorized", NULL},
    {404, "Not Found", NULL},
    {405, "Method Not Allowed", NULL},
    {413, "Content Too Large", "request body is too large"},
    {414, "URI Too Long", "request line is too long"},
    {417, "Expectation Failed", "unsupported expectation"},
    {431, "Request Header Fields Too Large",
     "request header fields are too large"},
    {500, "Internal Server Error", NULL},
    {501, "Not Implemented", "unsupported transfer coding"},
    {503, "Service Unavailable", "shutting down"},
    {505, "HTTP Version Not Supported", "unsupported HTTP version"},
};

static const struct status_text *status_text(unsigned status)
{
  static const struct status_text other = {0, "Status", "refused"};

  for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
    if (statuses[i].status == status)
      return &statuses[i];
  return &other;
}

/* The Date header's value, formatted once a second. */
static const char *http_date(struct httpd *h)
{
  time_t now = time(NULL);
  struct tm tm;

  if (now != h->date_at && gmtime_r(&now, &tm)) {
    strftime(h->date, sizeof(h->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    h->date_at = now;
  }
  return h->date;
}

/*
 * Writes out what is pending. Returns 0 (all written, or the socket is
 * full and EPOLLOUT will say when to go on) or VS_ERR_IO.
 */
static int flush(struct conn *c)
{
  while (c->out_off < c->out_len) {
    const char *p = c->out + c->out_off;
    size_t n = c->out_len - c->out_off;
    ssize_t w;

    if (c->tls) {
      /* After GNUTLS_E_AGAIN GnuTLS wants the same arguments again, which
       * these are: nothing is added to pending output. */
      w = gnutls_record_send(c->tls, p, n);
      if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
        return VS_OK;
    } else {
      w = send(c->fd, p, n, MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EINTR))
        return VS_OK;
    }
    if (w <= 0)
      return VS_ERR_IO;
    c->out_off += (size_t)w;
    touch(c);
  }
  free(c->out);
  c->out = NULL;
  c->out_len = c->out_off = 0;
  return VS_OK;
}

/*
 * Sends `head` then `body`, keeping whatever the socket does not take as
 * pending output. Plain connections try a single sendmsg first, which
 * needs no copy. Returns 0 or VS_ERR_NOMEM / VS_ERR_IO.
 */
static int send_answer(struct conn *c, const char *head, size_t hlen,
                       const char *body, size_t blen)
{
  size_t sent = 0;

  if (!c->tls) {
    struct iovec iov[2] = {{(void *)head, hlen}, {(void *)body, blen}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = blen ? 2 : 1};
    ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);

    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return VS_ERR_IO;
    sent = w > 0 ? (size_t)w : 0;
    if (sent == hlen + blen)
      return VS_OK;
  }
  c->out_len = hlen + blen - sent;
  c->out = malloc(c->out_len);
  if (!c->out)
    return VS_ERR_NOMEM;
  if (sent < hlen) {
    memcpy(c->out, head + sent, hlen - sent);
    if (blen)
      memcpy(c->out + hlen - sent, body, blen);
  } else {
    memcpy(c->out, body + (sent - hlen), c->out_len);
  }
  return flush(c);
}

/*
 * An answer's head being written into a fixed buffer: an append that does
 * not fit marks it failed, so that one check at the end covers them all.
 * It replaced a chain of snprintf calls: a cache-hit incoming_call went
 * from 98,403 to 96,567 instructions (callgrind, bench/run).
 */
struct head_buf {
  char data[1024];
  size_t len;
  int failed;
};

static void put(struct head_buf *b, const char *s)
{
  size_t n = strlen(s);

  if (n > sizeof(b->data) - b->len) {
    b->failed = 1;
    return;
  }
  memcpy(b->data + b->len, s, n);
  b->len += n;
}

static void put_uint(struct head_buf *b, size_t v)
{
  char digits[24];
  char *p = digits + sizeof(digits);

  *--p = '\0';
  do
    *--p = (char)('0' + v % 10);
  while (v /= 10);
  put(b, p);
}

static void put_field(struct head_buf *b, const char *name, const char *value)
{
  put(b, name);
  put(b, ": ");
  put(b, value);
  put(b, "\r\n");
}

/*
 * Queues an answer on `c`: the status line, our headers and `rq`'s (when
 * given), and the body (borrowed; not sent for a HEAD request).
 */
static int answer(struct conn *c, const struct httpd_request *rq,
                  unsigned status, const char *content_type, const char *body,
                  size_t len)
{
  struct head_buf b = {.len = 0};
  int close_it = c->close_after || !c->keep_alive || c->h->closing;
  int head_only = rq && strcmp(rq->head.method, "HEAD") == 0;

  put(&b, "HTTP/1.1 ");
  put_uint(&b, status);
  put(&b, " ");
  put(&b, status_text(status)->reason);
  put(&b, "\r\n");
  put_field(&b, "Date", http_date(c->h));
  put(&b, "Cache-Control: no-store\r\n");
  if (status != 204) {
    put(&b, "Content-Length: ");
    put_uint(&b, len);
    put(&b, "\r\n");
  }
  if (content_type)
    put_field(&b, "Content-Type", content_type);
  for (unsigned i = 0; rq && i < rq->nheaders; i++)
    put_field(&b, rq->hname[i], rq->hvalue[i]);
  if (close_it)
    put(&b, "Connection: close\r\n");
  else if (rq && !rq->head.minor)
    put(&b, "Connection: keep-alive\r\n");
  put(&b, "\r\n");
  if (b.failed)
    return VS_ERR_LIMIT; /* headers too long for any answer of ours */
  if (close_it)
    c->close_after = 1;
  return send_answer(c, b.data, b.len, body, head_only ? 0 : len);
}

/*
 * Refuses the request being read on `c` with `status` and closes the
 * connection after the answer, unless the refused body can be dropped.
 */
static int refuse(struct conn *c, unsigned status)
{
  const char *why = status_text(status)->why;
  char body[96];
  int n;

  log_debug("http request refused|status=%u fd=%d", status, c->fd);
  n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", why);
  /* A body announced by Content-Length can be skipped and the connection
   * kept; anything else leaves us unsure where the next request starts. A
   * client that asked "Expect: 100-continue" may now never send its body,
   * and whatever it sends next must not be taken for it. */
  if (c->rq && status == 413 && !c->rq->head.chunked &&
      !c->rq->head.expect_continue &&
      c->rq->head.content_length <= DISCARD_MAX && c->keep_alive) {
    c->body_left = (uint64_t)c->rq->head.content_length;
    set_state(c, C_DISCARD);
  } else if (status != 503) {
    c->close_after = c->refused = 1;
  }
  if (c->rq) {
    request_free(c->rq);
    c->rq = NULL;
  }
  return answer(c, NULL, status, "application/json", body, (size_t)n);
}

/* ---- reading --------------------------------------------------------- */

/*
 * Reads what the socket holds into the input buffer (on `c` in C_LINGER,
 * reads and drops it). Returns 1 when bytes came or the client finished
 * sending (peer_closed), 0 when nothing could be read now, or VS_ERR_IO.
 */
static int conn_read(struct conn *c)
{
  char sink[4096];
  char *dst;
  size_t room;
  ssize_t n;

  if (c->state == C_LINGER) {
    n = recv(c->fd, sink, sizeof(sink), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      return 0;
    if (n <= 0)
      return VS_ERR_IO; /* the end we lingered for, or an error */
    return 1;
  }
  if (!c->in && !(c->in = in_buffer(c->h)))
    return VS_ERR_IO;
  room = IN_MAX - c->in_len;
  if (!room)
    return 0;
  dst = c->in + c->in_len;
  if (c->tls) {
    n = gnutls_record_recv(c->tls, dst, room);
    if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
      n = -2;
    else if (n == GNUTLS_E_PREMATURE_TERMINATION)
      n = 0;
    else if (n < 0) {
      log_debug("http TLS read failed|fd=%d error=\"%s\"", c->fd,
                gnutls_strerror((int)n));
      n = -1;
    }
  } else {
    n = recv(c->fd, dst, room, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
      n = -2;
  }
  if (n == -2) {
    if (!c->in_len)
      consume(c, 0); /* the empty buffer goes back */
    return 0;
  }
  if (n < 0)
    return VS_ERR_IO;
  if (n == 0) {
    c->peer_closed = 1;
    if (!c->in_len)
      consume(c, 0);
  } else {
    c->in_len += (size_t)n;
  }
  touch(c);
  return 1;
}

/* ---- reading requests ------------------------------------------------ */

/* Hands the request read on `c` to the handler. */
static void dispatch(struct conn *c)
{
  struct httpd *h = c->h;
  struct httpd_request *rq = c->rq;

  if (h->closing) {
    refuse(c, 503);
    return;
  }
  set_state(c, C_WAIT);
  rq->received_ms = loop_now_ms(h->loop);
  h->handler(h->arg, rq);
}

/* Starts a request from a complete head of `len` bytes at c->in. */
static int start_request(struct conn *c, size_t len)
{
  struct httpd *h = c->h;
  struct httpd_request *rq = malloc(sizeof(*rq) + len + 1);
  int64_t clen;
  int rc;

  if (!rq)
    return VS_ERR_NOMEM;
  memset(rq, 0, sizeof(*rq));
  memcpy(rq->raw, c->in, len);
  rq->raw[len] = '\0';
  consume(c, len);
  rq->c = c;
  buf_init(&rq->body, h->max_body);
  c->rq = rq;
  c->counted = 1;
  h->live++;
  rc = http_parse_head(rq->raw, len, &rq->head);
  if (rc) {
    c->keep_alive = 0;
    return refuse(c, (unsigned)-rc);
  }
  c->keep_alive = rq->head.keep_alive;
  clen = rq->head.content_length;
  if (clen > (int64_t)h->max_body)
    return refuse(c, 413);
  if (clen <= 0 && !rq->head.chunked) {
    dispatch(c);
    return VS_OK;
  }
  c->body_left = clen > 0 ? (uint64_t)clen : 0;
  memset(&c->chunk, 0, sizeof(c->chunk));
  set_state(c, C_BODY);
  if (rq->head.expect_continue) {
    static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";

    return send_answer(c, go_on, sizeof(go_on) - 1, NULL, 0);
  }
  return VS_OK;
}

/*
 * Makes what progress the buffered input allows in the current state.
 * Returns 1 when something happened (call again), 0 when more input is
 * needed, or a negative code to close the connection.
 */
static int conn_consume(struct conn *c)
{
  size_t n = c->in_len;
  long head;
  int rc;

  if (!n)
    return 0;
  switch (c->state) {
  case C_HEAD:
    head = http_head_length(c->in, n, HEAD_MAX);
    if (!head)
      return 0;
    if (head < 0) {
      c->keep_alive = 0;
      rc = refuse(c, (unsigned)-head);
    } else {
      rc = start_request(c, (size_t)head);
    }
    return rc ? rc : 1;
  case C_BODY:
    if (c->rq->head.chunked) {
      size_t used = 0;

      rc = http_chunked_feed(&c->chunk, c->in, n, &c->rq->body, &used);
      consume(c, used);
      if (rc < 0) {
        c->keep_alive = 0;
        rc = refuse(c, (unsigned)-rc);
        return rc ? rc : 1;
      }
      if (!rc)
        return 0;
    } else {
      if (n > c->body_left)
        n = (size_t)c->body_left;
      if (buf_append(&c->rq->body, c->in, n))
        return VS_ERR_NOMEM;
      consume(c, n);
      c->body_left -= n;
      if (c->body_left)
        return 0;
    }
    dispatch(c);
    return 1;
  case C_DISCARD:
    if (n > c->body_left)
      n = (size_t)c->body_left;
    consume(c, n);
    c->body_left -= n;
    if (c->body_left)
      return 0;
    set_state(c, C_HEAD);
    return 1;
  default:
    return 0; /* C_WAIT and C_LINGER use no input */
  }
}

/* ---- a connection's life --------------------------------------------- */

/* What `c` waits for next from the socket. */
static uint32_t conn_wants(const struct conn *c)
{
  if (c->tls && !c->handshaken)
    return gnutls_record_get_direction(c->tls) ? EPOLLOUT : EPOLLIN;
  if (c->out)
    return EPOLLOUT;
  if (c->peer_closed || (c->in && c->in_len == IN_MAX))
    return 0;
  return EPOLLIN;
}

/* Answers written out and refused connections half-closed, once. */
static int start_linger(struct conn *c)
{
  if (c->tls)
    gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* best effort, never waits */
  if (shutdown(c->fd, SHUT_WR) < 0)
    return VS_ERR_IO;
  c->close_after = 0;
  if (c->rq) {
    request_free(c->rq);
    c->rq = NULL;
  }
  set_state(c, C_LINGER);
  return VS_OK;
}

/* Moves the TLS handshake on; returns 1 when done, 0 to wait, or < 0. */
static int handshake(struct conn *c)
{
  int rc = gnutls_handshake(c->tls);

  if (rc == GNUTLS_E_SUCCESS) {
    c->handshaken = 1;
    return 1;
  }
  if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED ||
      !gnutls_error_is_fatal(rc))
    return 0;
  log_debug("http TLS handshake failed|fd=%d error=\"%s\"", c->fd,
            gnutls_strerror(rc));
  return VS_ERR_PROTO;
}

/*
 * Does everything `c` can do now: writes pending output, serves the
 * buffered requests one at a time, reads (once when `readable`, or while
 * GnuTLS holds decrypted bytes), and closes it when it is done.
 */
static void conn_service(struct conn *c, int readable)
{
  int rc = VS_OK;

  c->in_service = 1;
  if (c->tls && !c->handshaken && (rc = handshake(c)) <= 0)
    goto out;
  for (;;) {
    if (c->out && (rc = flush(c)))
      goto out;
    if (c->out)
      break;
    if (c->state == C_HEAD || c->state == C_LINGER)
      uncount(c); /* its answer has been written */
    if (c->close_after) {
      rc = c->refused && !c->peer_closed ? start_linger(c) : VS_ERR_IO;
      if (rc)
        goto out;
    }
    rc = conn_consume(c);
    if (rc < 0)
      goto out;
    if (rc > 0)
      continue;
    if (c->peer_closed && c->state != C_WAIT) {
      rc = VS_ERR_IO; /* the client is done and so are we */
      goto out;
    }
    if (!readable && !(c->tls && gnutls_record_check_pending(c->tls)))
      break;
    readable = 0;
    rc = conn_read(c);
    if (rc <= 0)
      goto out;
  }
  rc = VS_OK;
out:
  c->in_service = 0;
  if (rc < 0 ||
      loop_io_start(c->h->loop, &c->io, c->fd, conn_wants(c), on_conn_io, c))
    conn_close(c);
}

static void on_conn_io(struct loop_io *io, uint32_t events)
{
  struct conn *c = io->data;

  /* An error, or a hang-up with nothing left to read: the client has
   * gone. A request with the handler is detached by conn_close. */
  if ((events & EPOLLERR) || ((events & EPOLLHUP) && !(events & EPOLLIN))) {
    conn_close(c);
    return;
  }
  conn_service(c, (events & EPOLLIN) != 0);
}

static void conn_close(struct conn *c)
{
  struct httpd *h = c->h;

  list_remove(c->state == C_WAIT ? &h->waiting : &h->idle, c);
  loop_io_stop(h->loop, &c->io);
  if (c->rq) {
    if (c->state == C_WAIT) {
      c->rq->c = NULL; /* the handler frees it when it answers */
    } else {
      request_free(c->rq);
    }
  }
  uncount(c);
  if (c->tls) {
    /* A close_notify, so that the client can tell our end from a cut;
     * best effort, as the socket is non-blocking. */
    if (c->handshaken && c->state != C_LINGER)
      gnutls_bye(c->tls, GNUTLS_SHUT_WR);
    gnutls_deinit(c->tls);
  }
  close(c->fd);
  if (c->in)
    consume(c, c->in_len);
  free(c->out);
  h->nconns--;
  free(c);
}

static int conn_open(struct httpd *h, int fd)
{
  struct conn *c = calloc(1, sizeof(*c));
  int one = 1;

  if (!c)
    return VS_ERR_NOMEM;
  c->h = h;
  c->fd = fd;
  c->keep_alive = 1;
  /* An answer is one write; Nagle would hold the next one back waiting
   * for the client's delayed ACK. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (h->cred) {
    if (gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK |
                                 GNUTLS_NO_SIGNAL) != GNUTLS_E_SUCCESS ||
        gnutls_priority_set(c->tls, h->prio) != GNUTLS_E_SUCCESS ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, h->cred) !=
            GNUTLS_E_SUCCESS) {
      if (c->tls)
        gnutls_deinit(c->tls);
      free(c);
      return VS_ERR_NOMEM;
    }
    gnutls_transport_set_int(c->tls, fd);
  }
  c->io.data = c;
  if (loop_io_start(h->loop, &c->io, fd, EPOLLIN, on_conn_io, c)) {
    if (c->tls)
      gnutls_deinit(c->tls);
    free(c);
    return VS_ERR_IO;
  }
  h->nconns++;
  c->state = C_HEAD;
  list_append(&h->idle, c);
  touch(c);
  return VS_OK;
}

/* ---- accepting ------------------------------------------------------- */

static void on_listen(struct loop_io *io, uint32_t events);

static void on_accept_timer(struct loop_timer *t)
{
  struct httpd *h = t->data;

  if (h->lfd >= 0 &&
      loop_io_start(h->loop, &h->lio, h->lfd, EPOLLIN, on_listen, h))
    log_warn("http cannot resume accepting connections");
}

static void on_listen(struct loop_io *io, uint32_t events)
{
  struct httpd *h = io->data;

  (void)events;
  for (int i = 0; i < ACCEPT_BATCH; i++) {
    int fd = accept4(h->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
        continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        /* The connection stays in the backlog; stop asking for a while
         * rather than spin on a listener that is always readable. */
        log_warn("http cannot accept a connection, pausing|error=\"%s\"",
                 strerror(errno));
        loop_io_stop(h->loop, &h->lio);
        loop_timer_start(h->loop, &h->accept_timer,
                         loop_now_ms(h->loop) + ACCEPT_PAUSE_MS,
                         on_accept_timer, h);
      }
      return;
    }
    if (h->nconns >= h->max_connections || conn_open(h, fd)) {
      log_debug("http connection refused|connections=%u", h->nconns);
      close(fd);
    }
  }
}

/* ---- answering ------------------------------------------------------- */

void httpd_add_header(struct httpd_request *rq, const char *name,
                      const char *value)
{
  if (rq->nheaders < MAX_HEADERS) {
    rq->hname[rq->nheaders] = name;
    rq->hvalue[rq->nheaders++] = value;
  }
}

/* The common end of every answer by the handler; `body` is borrowed. */
static void respond_with(struct httpd_request *rq, unsigned status,
                         const char *content_type, const char *body,
                         size_t len, int failed)
{
  struct conn *c = rq->c;

  if (!c) { /* the connection has gone, or a shutdown answered */
    request_free(rq);
    return;
  }
  c->rq = NULL;
  set_state(c, C_HEAD);
  if (failed)
    c->close_after = 1; /* out of memory: nothing sane to send */
  else if (answer(c, rq, status, content_type, body, len))
    c->close_after = 1; /* the socket failed, or no memory for the rest */
  request_free(rq);
  if (!c->in_service)
    conn_service(c, 0);
}

void httpd_respond(struct httpd_request *rq, unsigned status,
                   const char *content_type, char *body, size_t len)
{
  respond_with(rq, status, content_type, body, len, !body && len);
  free(body);
}

void httpd_respond_static(struct httpd_request *rq, unsigned status,
                          const char *content_type, const void *body,
                          size_t len)
{
  respond_with(rq, status, content_type, body, len, 0);
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

/* ---- reading a request --------------------------------------------- */

const char *httpd_method(const struct httpd_request *rq)
{
  return rq->head.method;
}

const char *httpd_path(const struct httpd_request *rq)
{
  return rq->head.path;
}

const char *httpd_header(const struct httpd_request *rq, const char *name)
{
  return http_field_get(rq->head.headers, rq->head.nheaders, name);
}

const char *httpd_query(const struct httpd_request *rq, const char *name)
{
  return http_field_get(rq->head.params, rq->head.nparams, name);
}

const char *httpd_body(const struct httpd_request *rq, size_t *len)
{
  if (len)
    *len = rq->body.len;
  return rq->body.data ? rq->body.data : "";
}

void *httpd_request_owner(const struct httpd_request *rq)
{
  return rq->c ? rq->c->h->arg : NULL;
}

int64_t httpd_received_ms(const struct httpd_request *rq)
{
  return rq->received_ms;
}

/* ---- the server ------------------------------------------------------ */

/*
 * Resolves "host:port" (host may be "[v6]") into a socket address. Numeric
 * hosts are used as they are; names go through getaddrinfo once, at start.
 */
static int parse_listen(const char *name, const char *listen,
                        struct sockaddr_storage *ss, char *err, size_t errlen)
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
 * Loads the certificate and key for HTTPS. A bad file is refused with
 * GnuTLS's reason; the key's PEM text is wiped once loaded.
 */
static int load_tls(struct httpd *h, const struct httpd_options *opt,
                    char *err, size_t errlen)
{
  char *cert = NULL, *key = NULL;
  gnutls_datum_t c, k;
  int rc = read_pem(opt->tls_cert, &cert, err, errlen);

  if (!rc)
    rc = read_pem(opt->tls_key, &key, err, errlen);
  if (rc)
    goto out;
  c = (gnutls_datum_t){(unsigned char *)cert, (unsigned)strlen(cert)};
  k = (gnutls_datum_t){(unsigned char *)key, (unsigned)strlen(key)};
  rc = gnutls_certificate_allocate_credentials(&h->cred);
  if (rc == GNUTLS_E_SUCCESS)
    rc = gnutls_certificate_set_x509_key_mem(h->cred, &c, &k,
                                             GNUTLS_X509_FMT_PEM);
  if (rc == GNUTLS_E_SUCCESS)
    rc = gnutls_priority_init(&h->prio, NULL, NULL);
  if (rc < 0)
    rc = vs_fail(err, errlen, VS_ERR_INVAL,
                 "%s and %s are not a usable certificate and key: %s",
                 opt->tls_cert, opt->tls_key, gnutls_strerror(rc));
out:
  free(cert);
  if (key) {
    explicit_bzero(key, strlen(key));
    free(key);
  }
  return rc;
}

/* Opens the listening socket on `ss`. */
static int open_listener(struct httpd *h, const struct httpd_options *opt,
                         const struct sockaddr_storage *ss, char *err,
                         size_t errlen)
{
  struct sockaddr_storage bound;
  socklen_t len = sizeof(bound);
  socklen_t slen = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
  int one = 1;

  h->lfd =
      socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (h->lfd < 0 ||
      setsockopt(h->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
      bind(h->lfd, (const struct sockaddr *)ss, slen) ||
      listen(h->lfd, SOMAXCONN) ||
      getsockname(h->lfd, (struct sockaddr *)&bound, &len))
    return vs_fail(err, errlen, VS_ERR_IO, "cannot listen on %s: %s",
                   opt->listen, strerror(errno));
  h->port = ntohs(bound.ss_family == AF_INET6
                      ? ((struct sockaddr_in6 *)&bound)->sin6_port
                      : ((struct sockaddr_in *)&bound)->sin_port);
  if (loop_io_start(h->loop, &h->lio, h->lfd, EPOLLIN, on_listen, h))
    return vs_fail(err, errlen, VS_ERR_IO, "cannot watch %s", opt->listen);
  return VS_OK;
}

int httpd_create(struct loop *loop, const struct httpd_options *opt,
                 httpd_handler handler, void *arg, struct httpd **out,
                 char *err, size_t errlen)
{
  struct sockaddr_storage ss;
  struct httpd *h;
  int rc;

  rc = parse_listen(opt->name, opt->listen, &ss, err, errlen);
  if (rc)
    return rc;
  h = calloc(1, sizeof(*h));
  if (!h)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory");
  h->loop = loop;
  h->handler = handler;
  h->arg = arg;
  h->max_body = opt->max_body;
  h->max_connections = opt->max_connections;
  h->idle_ms = (int64_t)opt->idle_timeout_s * 1000;
  h->lfd = -1;
  if (opt->tls_cert && opt->tls_cert[0]) {
    rc = load_tls(h, opt, err, errlen);
    if (rc)
      goto fail;
  }
  rc = open_listener(h, opt, &ss, err, errlen);
  if (rc)
    goto fail;
  *out = h;
  return VS_OK;
fail:
  httpd_destroy(h);
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
  loop_timer_stop(h->loop, &h->accept_timer);
  loop_io_stop(h->loop, &h->lio);
  if (h->lfd >= 0)
    close(h->lfd);
  h->lfd = -1;
}

size_t httpd_live_requests(const struct httpd *h)
{
  return h->live;
}

void httpd_destroy(struct httpd *h)
{
  if (!h)
    return;
  h->closing = 1;
  httpd_quiesce(h);
  /* Whatever still waits on the handler is answered 503 now, as far as
   * the socket takes it. The handler keeps the request and frees it when
   * it answers in turn. */
  while (h->waiting.head) {
    struct conn *c = h->waiting.head;

    c->rq->c = NULL;
    c->rq = NULL;
    set_state(c, C_HEAD);
    refuse(c, 503);
    conn_close(c);
  }
  while (h->idle.head)
    conn_close(h->idle.head);
  loop_timer_stop(h->loop, &h->idle_timer);
  while (h->nspare)
    free(h->spare[--h->nspare]);
  if (h->prio)
    gnutls_priority_deinit(h->prio);
  if (h->cred)
    gnutls_certificate_free_credentials(h->cred);
  free(h);
}
