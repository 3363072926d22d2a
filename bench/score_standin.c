/*
 * score-standin: a fast, single-threaded stand-in for the TeleSign Score
 * API, for load benchmarks only.
 *
 *   cc -O2 -std=c17 -D_GNU_SOURCE -o score-standin bench/score_standin.c
 *   score-standin --port N [--delay-ms D] [--host 127.0.0.1]
 *
 * It answers POST .../intelligence/phone (number in the phone_number form
 * field) and POST .../v1/score/<digits> with a TeleSign-shaped 200 whose
 * risk score is the last three digits of the number, `delay_ms` after the
 * request was read, and GET /stats at once. It checks no authentication:
 * the functional test double does that; this one only has to be fast.
 *
 * Design, in the order a request meets it:
 *
 * - One epoll loop, edge-triggered sockets registered once for reading and
 *   writing, so that the loop never calls epoll_ctl() after accept. Each
 *   connection remembers whether its socket may still hold unread data.
 * - A connection's input buffer grows to one largest request (16 KiB of
 *   head, 64 KiB of body) at most, so the request being parsed always
 *   fits. Pipelined requests are parsed in a loop; a partial one waits for
 *   more bytes, its parsed head cached.
 * - Every request becomes an item in the connection's FIFO of answers, due
 *   now (stats, 404s, 405s, protocol errors) or at read time + delay (a
 *   Score route's answer to a POST, a 400 for a bad number too). HTTP/1.1
 *   answers must go out in request order, so an item is sent only once it
 *   reaches the head of its FIFO and is due.
 * - The delay is constant, so delayed items across all connections are
 *   due in the order they were made: one global FIFO of (fd, generation,
 *   deadline) and one timerfd armed for its head replace a timer heap. A
 *   connection that closes leaves its entries behind; the generation, bumped
 *   whenever the fd is reused, makes them harmless.
 * - Answers are rendered into one scratch buffer and written straight to
 *   the socket; only what the kernel refuses is copied into the
 *   connection's output buffer (1 MiB at most, then the connection is
 *   closed) to wait for EPOLLOUT.
 * - A connection with too many unsent answers stops reading, which pushes
 *   back on a client that pipelines without reading.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX  (16 * 1024) /* request line and headers, blank line too */
#define BODY_MAX  (64 * 1024)
#define IN_MIN    4096
#define IN_MAX    (HEAD_MAX + BODY_MAX) /* one whole request always fits */
#define OUT_SOFT  (256 * 1024)  /* stop parsing new requests beyond this */
#define OUT_MAX   (1024 * 1024) /* close the connection beyond this */
#define QUEUE_MAX 1024          /* unsent answers before reading pauses */
#define RESP_MAX  1024          /* longest rendered answer */
#define SCRATCH   (64 * 1024)
#define BACKLOG   4096
#define EVENTS    256
#define ACCEPTS   512 /* per wakeup, so that reads are not starved */
#define DELAY_MAX 3600000UL

enum kind { K_SCORE, K_STATS, K_ERROR };

/* Item flags. */
#define F_CLOSE      1 /* close the connection after this answer */
#define F_KEEP_ALIVE 2 /* HTTP/1.0 keep-alive: say so in the answer */
#define F_ALLOW_POST 4 /* 405: Allow: POST */
#define F_ALLOW_GET  8 /* 405: Allow: GET */

/* One answer waiting its turn. Rendered only when sent, to stay small. */
struct item {
  uint64_t due; /* CLOCK_MONOTONIC ns; 0: as soon as it is at the head */
  uint16_t status;
  uint8_t kind;
  uint8_t flags;
  int16_t score;
};

/* What the head of a request said, kept while its body arrives. */
struct req {
  size_t head_len; /* through the blank line; 0 until the head is in */
  size_t body_len;
  size_t target_off, target_len;
  int post, get;
  int http10;
  int keep_alive;
  int expect;    /* Expect: 100-continue */
  int cont_sent; /* and the 100 has gone out */
};

struct conn {
  int fd;
  uint32_t gen; /* bumped when the fd is reused; 0 is never a connection's */
  int open;
  int readable; /* the socket may hold unread bytes (edge-triggered) */
  int rdhup;    /* the peer's FIN has been seen: read to EOF */
  int eof;      /* read returned 0 */
  int stop;     /* no more requests: the last answer closes */
  char *in;
  size_t in_len, in_off, in_cap;
  size_t scan; /* where the search for the blank line resumes */
  struct req req;
  struct item *q; /* ring of answers, in request order */
  size_t q_head, q_len, q_cap;
  char *out; /* what the kernel would not take yet */
  size_t out_len, out_off, out_cap;
};

/* A delayed answer in the global FIFO. */
struct ref {
  uint64_t due;
  int fd;
  uint32_t gen;
};

static struct {
  int epfd, lfd, tfd, sfd;
  int spare; /* an fd given up to accept-and-close when out of fds */
  uint64_t delay_ns;
  struct conn **tab; /* by fd */
  size_t tab_len;
  struct ref *fifo; /* ring, capacity a power of two */
  size_t f_head, f_len, f_cap;
  uint64_t armed; /* deadline the timerfd is set for; 0: disarmed */
  unsigned long long accepted, answered, open;
  uint64_t rng;
  int stop;
} s;

static char scratch[SCRATCH];

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ns(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: reference ids need to look random, not be secret. */
static uint64_t rng_next(void)
{
  s.rng ^= s.rng >> 12;
  s.rng ^= s.rng << 25;
  s.rng ^= s.rng >> 27;
  return s.rng * 0x2545F4914F6CDD1DULL;
}

static char *put(char *d, const char *src, size_t n)
{
  memcpy(d, src, n);
  return d + n;
}

#define PUT(d, lit) put((d), (lit), sizeof(lit) - 1)

static char *put_str(char *d, const char *src)
{
  return put(d, src, strlen(src));
}

static char *put_uint(char *d, unsigned long long v)
{
  char tmp[24];
  size_t n = 0;

  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n)
    *d++ = tmp[--n];
  return d;
}

static int lower(int ch)
{
  return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* Case-insensitive comparison of a counted string with a literal. */
static int ieq(const char *p, size_t n, const char *lit)
{
  size_t i;

  if (strlen(lit) != n)
    return 0;
  for (i = 0; i < n; i++)
    if (lower((unsigned char)p[i]) != lit[i])
      return 0;
  return 1;
}

/* RFC 9110 tchar: what a method or a header name is made of. */
static int is_tchar(int ch)
{
  if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
      (ch >= 'A' && ch <= 'Z'))
    return 1;
  return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static const char *reason(unsigned status)
{
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 411:
    return "Length Required";
  case 413:
    return "Content Too Large";
  case 431:
    return "Request Header Fields Too Large";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Error";
  }
}

/* ---- the global FIFO and its timer ------------------------------------ */

static void timer_arm(uint64_t due)
{
  struct itimerspec its;

  if (due == s.armed)
    return;
  memset(&its, 0, sizeof(its));
  /* An all-zero it_value disarms, hence the 1 ns for a (theoretical) 0. */
  its.it_value.tv_sec = (time_t)(due / 1000000000u);
  its.it_value.tv_nsec = (long)(due % 1000000000u);
  if (due && !its.it_value.tv_sec && !its.it_value.tv_nsec)
    its.it_value.tv_nsec = 1;
  if (timerfd_settime(s.tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
    perror("score-standin: timerfd_settime");
    return;
  }
  s.armed = due;
}

static int fifo_push(uint64_t due, int fd, uint32_t gen)
{
  struct ref *r;

  if (s.f_len == s.f_cap) {
    size_t cap = s.f_cap ? s.f_cap * 2 : 1024;
    size_t i;

    r = malloc(cap * sizeof(*r));
    if (!r)
      return -1;
    /* Unwrap the ring into the new array, oldest first. */
    for (i = 0; i < s.f_len; i++)
      r[i] = s.fifo[(s.f_head + i) & (s.f_cap - 1)];
    free(s.fifo);
    s.fifo = r;
    s.f_head = 0;
    s.f_cap = cap;
  }
  r = &s.fifo[(s.f_head + s.f_len) & (s.f_cap - 1)];
  r->due = due;
  r->fd = fd;
  r->gen = gen;
  s.f_len++;
  if (s.f_len == 1)
    timer_arm(due);
  return 0;
}

/* ---- connections ------------------------------------------------------ */

static struct conn *conn_lookup(int fd, uint32_t gen)
{
  struct conn *c;

  if (fd < 0 || (size_t)fd >= s.tab_len)
    return NULL;
  c = s.tab[fd];
  if (!c || !c->open || c->gen != gen)
    return NULL;
  return c;
}

static size_t out_pending(const struct conn *c)
{
  return c->out_len - c->out_off;
}

/* Too much owed to this client already: parse nothing more for now. */
static int paused(const struct conn *c)
{
  return c->q_len >= QUEUE_MAX || out_pending(c) >= OUT_SOFT;
}

/*
 * Discards what the client sent but we will not read, so that close()
 * with unread bytes does not turn into a reset that can destroy the error
 * answer in flight. Bounded: this is a courtesy, not a lingering close.
 */
static void drain_socket(int fd)
{
  char sink[4096];
  int i;

  for (i = 0; i < 64; i++)
    if (recv(fd, sink, sizeof(sink), 0) <= 0)
      break;
}

static void conn_close(struct conn *c)
{
  if (!c->open)
    return;
  if (c->stop && !c->eof) {
    shutdown(c->fd, SHUT_WR);
    drain_socket(c->fd);
  }
  close(c->fd); /* also leaves the epoll set: the fd is never dup'ed */
  free(c->in);
  free(c->q);
  free(c->out);
  c->in = NULL;
  c->q = NULL;
  c->out = NULL;
  c->open = 0;
  s.open--;
}

/* Keeps `n` bytes the kernel did not take, for EPOLLOUT to send. */
static int out_keep(struct conn *c, const char *p, size_t n)
{
  size_t pend = out_pending(c);

  if (pend + n > OUT_MAX)
    return -1;
  if (c->out_off) {
    memmove(c->out, c->out + c->out_off, pend);
    c->out_off = 0;
    c->out_len = pend;
  }
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    char *q;

    while (cap < c->out_len + n)
      cap *= 2;
    q = realloc(c->out, cap);
    if (!q)
      return -1;
    c->out = q;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
  return 0;
}

/* Sends what is buffered. -1: the connection is dead. */
static int out_flush(struct conn *c)
{
  while (out_pending(c)) {
    ssize_t w = send(c->fd, c->out + c->out_off, out_pending(c), MSG_NOSIGNAL);

    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
      return -1;
    }
    c->out_off += (size_t)w;
  }
  c->out_off = 0;
  c->out_len = 0;
  /* Give back a buffer a burst made large; idle connections stay small. */
  if (c->out_cap > 64 * 1024) {
    free(c->out);
    c->out = NULL;
    c->out_cap = 0;
  }
  return 0;
}

/* Writes at once if nothing is queued before it; keeps the rest. */
static int conn_write(struct conn *c, const char *p, size_t n)
{
  if (out_pending(c))
    return out_keep(c, p, n);
  while (n) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return out_keep(c, p, n);
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int q_push(struct conn *c, const struct item *it)
{
  if (c->q_len == c->q_cap) {
    size_t cap = c->q_cap ? c->q_cap * 2 : 4;
    struct item *q = malloc(cap * sizeof(*q));
    size_t i;

    if (!q)
      return -1;
    for (i = 0; i < c->q_len; i++)
      q[i] = c->q[(c->q_head + i) % c->q_cap];
    free(c->q);
    c->q = q;
    c->q_head = 0;
    c->q_cap = cap;
  }
  c->q[(c->q_head + c->q_len) % c->q_cap] = *it;
  c->q_len++;
  if (it->due && fifo_push(it->due, c->fd, c->gen) < 0)
    return -1;
  return 0;
}

/* ---- answers ---------------------------------------------------------- */

static char *put_head(char *d, const struct item *it, size_t body_len)
{
  d = PUT(d, "HTTP/1.1 ");
  d = put_uint(d, it->status);
  *d++ = ' ';
  d = put_str(d, reason(it->status));
  d = PUT(d, "\r\nContent-Type: application/json\r\nContent-Length: ");
  d = put_uint(d, body_len);
  d = PUT(d, "\r\n");
  if (it->flags & F_CLOSE)
    d = PUT(d, "Connection: close\r\n");
  else if (it->flags & F_KEEP_ALIVE)
    d = PUT(d, "Connection: keep-alive\r\n");
  if (it->flags & F_ALLOW_POST)
    d = PUT(d, "Allow: POST\r\n");
  else if (it->flags & F_ALLOW_GET)
    d = PUT(d, "Allow: GET\r\n");
  return PUT(d, "\r\n");
}

/* TeleSign's example matrix of score bands. */
static void risk_band(int score, const char **level, const char **rec)
{
  if (score <= 200) {
    *level = "very low";
    *rec = "allow";
  } else if (score <= 400) {
    *level = "low";
    *rec = "allow";
  } else if (score <= 600) {
    *level = "medium";
    *rec = "flag";
  } else if (score <= 800) {
    *level = "high";
    *rec = "block";
  } else {
    *level = "very high";
    *rec = "block";
  }
}

/* Renders one answer into `d` (RESP_MAX bytes at least); returns length. */
static size_t render(char *d, const struct item *it)
{
  static const char hex[] = "0123456789ABCDEF";
  char body[512];
  char *b = body;
  char *start = d;
  const char *level, *rec;
  int i;

  switch (it->kind) {
  case K_SCORE: {
    uint64_t r1 = rng_next(), r2 = rng_next();

    b = PUT(b, "{\"reference_id\":\"");
    for (i = 0; i < 16; i++)
      *b++ = hex[(r1 >> (i * 4)) & 15];
    for (i = 0; i < 16; i++)
      *b++ = hex[(r2 >> (i * 4)) & 15];
    b = PUT(b, "\",\"status\":{\"code\":300,\"description\":"
               "\"Transaction successfully completed\"},"
               "\"phone_type\":{\"code\":\"2\",\"description\":\"MOBILE\"},"
               "\"risk\":{\"level\":\"");
    risk_band(it->score, &level, &rec);
    b = put_str(b, level);
    b = PUT(b, "\",\"recommendation\":\"");
    b = put_str(b, rec);
    b = PUT(b, "\",\"score\":");
    b = put_uint(b, (unsigned)it->score);
    b = PUT(b, "}}");
    break;
  }
  case K_STATS:
    b = PUT(b, "{\"connections\":");
    b = put_uint(b, s.accepted);
    b = PUT(b, ",\"requests\":");
    /* This answer counts itself, as the final line will. */
    b = put_uint(b, s.answered + 1);
    b = PUT(b, ",\"open\":");
    b = put_uint(b, s.open);
    b = PUT(b, "}");
    break;
  default:
    b = PUT(b, "{\"error\":\"");
    b = put_str(b, reason(it->status));
    b = PUT(b, "\"}");
    break;
  }
  d = put_head(d, it, (size_t)(b - body));
  d = put(d, body, (size_t)(b - body));
  return (size_t)(d - start);
}

/*
 * Sends, in order, every answer at the head of the queue that is due.
 * Returns how many were sent, or -1 if the connection must be closed.
 */
static int flush_due(struct conn *c, uint64_t now)
{
  size_t n = 0;
  int sent = 0;

  while (c->q_len) {
    const struct item *it = &c->q[c->q_head];

    if (it->due && it->due > now)
      break;
    if (SCRATCH - n < RESP_MAX) {
      if (conn_write(c, scratch, n) < 0)
        return -1;
      n = 0;
    }
    n += render(scratch + n, it);
    c->q_head = (c->q_head + 1) % c->q_cap;
    c->q_len--;
    s.answered++;
    sent++;
  }
  if (n && conn_write(c, scratch, n) < 0)
    return -1;
  return sent;
}

/* ---- requests --------------------------------------------------------- */

/* Parses a decimal Content-Length. 0 or the status to answer. */
static unsigned parse_length(const char *v, size_t n, size_t *out)
{
  size_t len = 0;
  size_t i;

  if (!n)
    return 400;
  for (i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return 400;
    if (len > BODY_MAX) /* keep going only to reject junk; no overflow */
      continue;
    len = len * 10 + (size_t)(v[i] - '0');
  }
  *out = len;
  return len > BODY_MAX ? 413 : 0;
}

/* Connection: a comma-separated list of tokens. */
static void parse_connection(struct req *r, const char *v, size_t n)
{
  size_t i = 0;

  while (i < n) {
    size_t a, b;

    while (i < n && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
      i++;
    a = i;
    while (i < n && v[i] != ',')
      i++;
    b = i;
    while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
      b--;
    if (ieq(v + a, b - a, "close"))
      r->keep_alive = 0;
    else if (ieq(v + a, b - a, "keep-alive") && r->http10)
      r->keep_alive = 1;
  }
}

/*
 * Parses the request line and headers, `len` bytes ending with the blank
 * line. Fills `r`; returns 0 or the error status to answer (and close).
 */
static unsigned parse_head(const char *p, size_t len, struct req *r)
{
  const char *end = p + len - 2; /* the blank line's CRLF */
  const char *line = p;
  const char *eol, *sp1, *sp2;
  size_t cl = 0;
  int cl_seen = 0, te_seen = 0;
  unsigned rc;

  eol = memchr(line, '\r', (size_t)(end - line));
  if (!eol || eol[1] != '\n')
    return 400;
  /* method SP request-target SP HTTP-version */
  for (sp1 = line; sp1 < eol && is_tchar((unsigned char)*sp1); sp1++)
    ;
  if (sp1 == line || sp1 == eol || *sp1 != ' ')
    return 400;
  for (sp2 = sp1 + 1; sp2<eol && * sp2> ' ' && *sp2 != 0x7f; sp2++)
    ;
  if (sp2 == sp1 + 1 || sp2 == eol || *sp2 != ' ')
    return 400;
  r->post = sp1 - line == 4 && !memcmp(line, "POST", 4);
  r->get = sp1 - line == 3 && !memcmp(line, "GET", 3);
  r->target_off = (size_t)(sp1 + 1 - p);
  r->target_len = (size_t)(sp2 - sp1 - 1);
  if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/", 5) || sp2[6] < '0' ||
      sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
    return 400;
  if (sp2[6] != '1')
    return 505;
  r->http10 = sp2[8] == '0';
  r->keep_alive = !r->http10;

  for (line = eol + 2; line < end; line = eol + 2) {
    const char *colon, *v, *ve;

    eol = memchr(line, '\r', (size_t)(end - line) + 1);
    if (!eol || eol[1] != '\n')
      return 400;
    /* Folded lines are obsolete; RFC 9112 lets a server reject them. */
    if (*line == ' ' || *line == '\t')
      return 400;
    for (colon = line; colon < eol && is_tchar((unsigned char)*colon); colon++)
      ;
    if (colon == line || colon == eol || *colon != ':')
      return 400;
    for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
      ;
    for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
      ;
    if (ieq(line, (size_t)(colon - line), "content-length")) {
      size_t n = 0;

      rc = parse_length(v, (size_t)(ve - v), &n);
      if (rc)
        return rc;
      /* Two different lengths is how request smuggling starts. */
      if (cl_seen && n != cl)
        return 400;
      cl = n;
      cl_seen = 1;
    } else if (ieq(line, (size_t)(colon - line), "transfer-encoding")) {
      te_seen = 1;
    } else if (ieq(line, (size_t)(colon - line), "connection")) {
      parse_connection(r, v, (size_t)(ve - v));
    } else if (ieq(line, (size_t)(colon - line), "expect")) {
      r->expect = ieq(v, (size_t)(ve - v), "100-continue");
    }
  }
  /* No chunked bodies here: ask for a Content-Length instead. */
  if (te_seen)
    return 411;
  r->body_len = cl;
  r->head_len = len;
  return 0;
}

/*
 * The number's last three digits, from `[+]digits` (the plus possibly
 * percent-encoded), or -1 if it is not that.
 */
static int number_score(const char *p, size_t n)
{
  int v = 0;
  size_t i = 0;

  if (n >= 3 && p[0] == '%' && p[1] == '2' && (p[2] == 'B' || p[2] == 'b'))
    i = 3;
  else if (n && p[0] == '+')
    i = 1;
  if (i == n)
    return -1;
  for (; i < n; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    v = (v * 10 + (p[i] - '0')) % 1000;
  }
  return v;
}

/* The phone_number field of an x-www-form-urlencoded body. */
static int form_score(const char *b, size_t n)
{
  static const char key[] = "phone_number=";
  size_t k = sizeof(key) - 1;
  size_t i = 0;

  while (i < n) {
    const char *amp = memchr(b + i, '&', n - i);
    size_t e = amp ? (size_t)(amp - b) : n;

    if (e - i >= k && !memcmp(b + i, key, k))
      return number_score(b + i + k, e - i - k);
    i = e + 1;
  }
  return -1;
}

static int ends_with(const char *p, size_t n, const char *lit)
{
  size_t k = strlen(lit);

  return n >= k && !memcmp(p + n - k, lit, k);
}

/* The digits after /v1/score/, up to the end of the path or a slash. */
static int path_score(const char *p, size_t n)
{
  static const char key[] = "/v1/score/";
  size_t k = sizeof(key) - 1;
  const char *at = p;

  while ((at = memmem(at, n - (size_t)(at - p), key, k)) != NULL) {
    const char *d = at + k;
    const char *e = memchr(d, '/', n - (size_t)(d - p));
    int score = number_score(d, e ? (size_t)(e - d) : n - (size_t)(d - p));

    if (score >= 0)
      return score;
    at++;
  }
  return -1;
}

/* Turns a complete request (head and body at `p`) into an answer. */
static int route(struct conn *c, const char *p, uint64_t now)
{
  const struct req *r = &c->req;
  const char *target = p + r->target_off;
  const char *body = p + r->head_len;
  size_t path_len = r->target_len;
  const char *qm;
  struct item it;
  int score;

  memset(&it, 0, sizeof(it));
  qm = memchr(target, '?', path_len);
  if (qm)
    path_len = (size_t)(qm - target);
  qm = memchr(target, '#', path_len);
  if (qm)
    path_len = (size_t)(qm - target);
  if (!r->keep_alive)
    it.flags |= F_CLOSE;
  else if (r->http10)
    it.flags |= F_KEEP_ALIVE;

  if (path_len == 6 && !memcmp(target, "/stats", 6)) {
    it.kind = r->get ? K_STATS : K_ERROR;
    it.status = r->get ? 200 : 405;
    if (!r->get)
      it.flags |= F_ALLOW_GET;
    return q_push(c, &it);
  }
  if (ends_with(target, path_len, "/intelligence/phone"))
    score = form_score(body, r->body_len);
  else if ((score = path_score(target, path_len)) < 0) {
    it.kind = K_ERROR;
    it.status = 404;
    return q_push(c, &it);
  }
  if (!r->post) {
    it.kind = K_ERROR;
    it.status = 405;
    it.flags |= F_ALLOW_POST;
    return q_push(c, &it);
  }
  /* Score answers, good or bad, are the ones the API makes us wait for. */
  it.due = s.delay_ns ? now + s.delay_ns : 0;
  if (score < 0) {
    it.kind = K_ERROR;
    it.status = 400;
  } else {
    it.kind = K_SCORE;
    it.status = 200;
    it.score = (int16_t)score;
  }
  return q_push(c, &it);
}

/* Queues an error answer that ends the connection. */
static int reject(struct conn *c, unsigned status)
{
  struct item it;

  memset(&it, 0, sizeof(it));
  it.kind = K_ERROR;
  it.status = (uint16_t)status;
  it.flags = F_CLOSE;
  c->stop = 1;
  return q_push(c, &it);
}

/*
 * Parses one request from the input buffer. Returns 1 if one was
 * consumed (or the connection rejected), 0 if more bytes are needed, -1 if
 * the connection must be closed.
 */
static int parse_one(struct conn *c, uint64_t now)
{
  struct req *r = &c->req;
  char *p = c->in + c->in_off;
  size_t avail = c->in_len - c->in_off;
  size_t total;
  unsigned rc;

  if (!r->head_len) {
    size_t from, lim;
    char *e;

    /* RFC 9112 2.2: ignore empty lines before a request line. */
    while (!c->scan && avail >= 2 && p[0] == '\r' && p[1] == '\n') {
      c->in_off += 2;
      p += 2;
      avail -= 2;
    }
    lim = avail < HEAD_MAX ? avail : HEAD_MAX;
    from = c->scan > 3 ? c->scan - 3 : 0;
    e = lim - from >= 4 ? memmem(p + from, lim - from, "\r\n\r\n", 4) : NULL;
    if (!e) {
      if (avail >= HEAD_MAX)
        return reject(c, 431) < 0 ? -1 : 1;
      c->scan = lim;
      return 0;
    }
    memset(r, 0, sizeof(*r));
    rc = parse_head(p, (size_t)(e - p) + 4, r);
    if (rc) {
      memset(r, 0, sizeof(*r));
      return reject(c, rc) < 0 ? -1 : 1;
    }
  }
  total = r->head_len + r->body_len;
  if (avail < total) {
    /*
     * The client waits for a 100 before sending the body. It must not
     * slip in ahead of answers still owed, so only on an idle connection;
     * otherwise libcurl just sends the body after its own timeout.
     */
    if (r->expect && !r->http10 && !r->cont_sent && !c->q_len &&
        !out_pending(c)) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

      if (conn_write(c, cont, sizeof(cont) - 1) < 0)
        return -1;
      r->cont_sent = 1;
    }
    return 0;
  }
  if (route(c, p, now) < 0)
    return -1;
  if (!r->keep_alive)
    c->stop = 1;
  c->in_off += total;
  c->scan = 0;
  memset(r, 0, sizeof(*r));
  return 1;
}

/* Parses what is buffered, then moves the unparsed rest to the front. */
static int process_input(struct conn *c, uint64_t now)
{
  int rc = 0;

  while (!c->stop && !paused(c) && c->in_off < c->in_len) {
    rc = parse_one(c, now);
    if (rc <= 0)
      break;
  }
  if (c->stop) /* nothing after the last request will be read */
    c->in_off = c->in_len;
  if (c->in_off) {
    memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
    c->in_len -= c->in_off;
    c->in_off = 0;
  }
  /* Once a large body has gone, an idle connection goes back to small. */
  if (!c->in_len && c->in_cap > IN_MIN) {
    free(c->in);
    c->in = NULL;
    c->in_cap = 0;
  }
  return rc < 0 ? -1 : 0;
}

/* Room to read into: grows towards IN_MAX when nearly full. */
static int in_reserve(struct conn *c)
{
  size_t cap;
  char *p;

  if (c->in && c->in_cap - c->in_len >= 1024)
    return 0;
  if (c->in && c->in_cap >= IN_MAX)
    return c->in_len < c->in_cap ? 0 : -1;
  cap = c->in_cap ? c->in_cap * 2 : IN_MIN;
  if (cap > IN_MAX)
    cap = IN_MAX;
  p = realloc(c->in, cap);
  if (!p)
    return -1;
  c->in = p;
  c->in_cap = cap;
  return 0;
}

/*
 * Does everything a connection can do now: parse, answer what is due,
 * read more. Closes it when it is finished or broken. Returns -1 if closed.
 */
static int conn_run(struct conn *c, uint64_t now)
{
  for (;;) {
    int sent;
    ssize_t n;

    if (process_input(c, now) < 0)
      goto done;
    sent = flush_due(c, now);
    if (sent < 0)
      goto done;
    if ((c->stop || c->eof) && !c->q_len && !out_pending(c))
      goto done; /* done: every answer owed is out */
    /* Answers going out may have unpaused parsing or freed a 100. */
    if (sent && c->in_len && !c->stop)
      continue;
    if (!c->readable || c->stop || c->eof || paused(c))
      return 0;
    if (in_reserve(c) < 0)
      goto done;
    n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (n > 0) {
      /*
       * A short read of a stream socket means it is drained, epoll(7)
       * says, which saves the recv() that would return EAGAIN. Not once
       * the FIN is in: then read on to see the EOF.
       */
      if ((size_t)n < c->in_cap - c->in_len && !c->rdhup)
        c->readable = 0;
      c->in_len += (size_t)n;
      now = now_ns();
    } else if (n == 0) {
      c->eof = 1;
      c->readable = 0;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c->readable = 0;
    } else if (errno != EINTR) {
      goto done;
    }
  }

done:
  conn_close(c);
  return -1;
}

static void on_conn_event(struct conn *c, uint32_t ev)
{
  if (ev & (EPOLLERR | EPOLLHUP)) {
    /* Both ways closed or reset: nothing owed can be delivered. */
    conn_close(c);
    return;
  }
  if (ev & EPOLLRDHUP)
    c->rdhup = 1;
  if (ev & (EPOLLIN | EPOLLRDHUP))
    c->readable = 1;
  if ((ev & EPOLLOUT) && out_pending(c) && out_flush(c) < 0) {
    conn_close(c);
    return;
  }
  conn_run(c, now_ns());
}

/* ---- accepting -------------------------------------------------------- */

static int tab_reserve(int fd)
{
  size_t len;
  struct conn **t;

  if ((size_t)fd < s.tab_len)
    return 0;
  len = s.tab_len ? s.tab_len : 1024;
  while (len <= (size_t)fd)
    len *= 2;
  t = realloc(s.tab, len * sizeof(*t));
  if (!t)
    return -1;
  memset(t + s.tab_len, 0, (len - s.tab_len) * sizeof(*t));
  s.tab = t;
  s.tab_len = len;
  return 0;
}

static void conn_open(int fd)
{
  struct epoll_event ev;
  struct conn *c;
  uint32_t gen;
  int one = 1;

  if (tab_reserve(fd) < 0)
    goto fail;
  c = s.tab[fd];
  if (!c) {
    c = calloc(1, sizeof(*c));
    if (!c)
      goto fail;
    s.tab[fd] = c;
  }
  gen = c->gen + 1;
  if (!gen) /* 0 tags the listening, timer and signal fds */
    gen = 1;
  memset(c, 0, sizeof(*c));
  c->fd = fd;
  c->gen = gen;
  c->open = 1;
  /* Answers are written whole; Nagle would only hold back the last. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = (uint64_t)gen << 32 | (uint32_t)fd;
  if (epoll_ctl(s.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    c->open = 0;
    goto fail;
  }
  s.accepted++;
  s.open++;
  return;

fail:
  close(fd);
}

static void on_accept(void)
{
  int i;

  for (i = 0; i < ACCEPTS; i++) {
    int fd = accept4(s.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd >= 0) {
      conn_open(fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
      continue;
    if ((errno == EMFILE || errno == ENFILE) && s.spare >= 0) {
      /*
       * Out of fds: the pending connection would make the listening
       * socket readable forever. Free the spare fd, accept and close it,
       * so that the client sees a refusal instead of a hang.
       */
      close(s.spare);
      fd = accept(s.lfd, NULL, NULL);
      if (fd >= 0)
        close(fd);
      s.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      perror("score-standin: accept");
    return;
  }
}

/* ---- timer ------------------------------------------------------------ */

static void on_timer(void)
{
  uint64_t expirations;
  uint64_t now;

  if (read(s.tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
    perror("score-standin: timerfd read");
  s.armed = 0; /* one-shot: it is disarmed now */
  now = now_ns();
  while (s.f_len) {
    struct ref r = s.fifo[s.f_head];
    struct conn *c;

    if (r.due > now)
      break;
    s.f_head = (s.f_head + 1) & (s.f_cap - 1);
    s.f_len--;
    /* Closed (or reused) since: its answers went with it. */
    c = conn_lookup(r.fd, r.gen);
    if (c)
      conn_run(c, now);
  }
  if (s.f_len)
    timer_arm(s.fifo[s.f_head].due);
}

/* ---- setup ------------------------------------------------------------ */

/*
 * Thousands of connections need thousands of fds: take the hard limit, as
 * Redis does, rather than fail at 1024 under a default ulimit.
 */
static void raise_nofile(void)
{
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
    perror("score-standin: setrlimit");
}

static int listen_on(const char *host, const char *port, unsigned *bound)
{
  struct addrinfo hints, *ai = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  int fd = -1;
  int one = 1;
  int rc;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  rc = getaddrinfo(host, port, &hints, &ai);
  if (rc) {
    fprintf(stderr, "score-standin: %s: %s\n", host, gai_strerror(rc));
    goto fail;
  }
  fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, BACKLOG) < 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
    perror("score-standin: listen");
    goto fail;
  }
  if (ss.ss_family == AF_INET6)
    *bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  else
    *bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  freeaddrinfo(ai);
  return fd;

fail:
  if (fd >= 0)
    close(fd);
  if (ai)
    freeaddrinfo(ai);
  return -1;
}

static int add_fd(int fd)
{
  struct epoll_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN;
  ev.data.u64 = (uint32_t)fd; /* generation 0: not a connection */
  return epoll_ctl(s.epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void usage(FILE *f)
{
  fputs("usage: score-standin --port N [--delay-ms D] [--host ADDR]\n"
        "  --port N      TCP port to listen on (0: any free one)\n"
        "  --delay-ms D  answer score requests D ms after reading them\n"
        "                (default 0)\n"
        "  --host ADDR   numeric address to bind (default 127.0.0.1)\n",
        f);
}

static int parse_ulong(const char *arg, unsigned long max, unsigned long *out)
{
  char *end;
  unsigned long v;

  if (!arg || *arg < '0' || *arg > '9')
    return -1;
  errno = 0;
  v = strtoul(arg, &end, 10);
  if (errno || *end || v > max)
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv)
{
  const char *host = "127.0.0.1";
  char port_str[16];
  unsigned long port = 0, delay = 0;
  int have_port = 0;
  unsigned bound = 0;
  struct epoll_event evs[EVENTS];
  sigset_t mask;
  size_t i;
  int rc = 1;
  int a;

  /* Every option takes a value: --name value. */
  for (a = 1; a < argc; a += 2) {
    const char *val = a + 1 < argc ? argv[a + 1] : NULL;

    if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[a], "--port")) {
      if (parse_ulong(val, 65535, &port) < 0)
        goto bad_usage;
      have_port = 1;
    } else if (!strcmp(argv[a], "--delay-ms")) {
      if (parse_ulong(val, DELAY_MAX, &delay) < 0)
        goto bad_usage;
    } else if (!strcmp(argv[a], "--host")) {
      if (!val || !*val)
        goto bad_usage;
      host = val;
    } else {
      goto bad_usage;
    }
  }
  if (!have_port)
    goto bad_usage;

  s.epfd = s.lfd = s.tfd = s.sfd = s.spare = -1;
  s.delay_ns = (uint64_t)delay * 1000000u;
  if (getrandom(&s.rng, sizeof(s.rng), GRND_NONBLOCK) !=
      (ssize_t)sizeof(s.rng))
    s.rng = now_ns() ^ ((uint64_t)getpid() << 32);
  s.rng |= 1; /* xorshift's one forbidden state is 0 */

  /* Signals arrive as reads on the loop, never in the middle of it. */
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
    perror("score-standin: sigprocmask");
    goto cleanup;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();

  snprintf(port_str, sizeof(port_str), "%lu", port);
  s.lfd = listen_on(host, port_str, &bound);
  if (s.lfd < 0)
    goto cleanup;
  s.epfd = epoll_create1(EPOLL_CLOEXEC);
  s.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  s.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  s.spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (s.epfd < 0 || s.tfd < 0 || s.sfd < 0 || add_fd(s.lfd) < 0 ||
      add_fd(s.tfd) < 0 || add_fd(s.sfd) < 0) {
    perror("score-standin: setup");
    goto cleanup;
  }

  printf("listening %u\n", bound);
  fflush(stdout);

  while (!s.stop) {
    int n = epoll_wait(s.epfd, evs, EVENTS, -1);
    int k;

    if (n < 0) {
      if (errno == EINTR)
        continue;
      perror("score-standin: epoll_wait");
      goto cleanup;
    }
    for (k = 0; k < n; k++) {
      uint32_t gen = (uint32_t)(evs[k].data.u64 >> 32);
      int fd = (int)(uint32_t)evs[k].data.u64;
      struct conn *c;

      if (gen) {
        /* An event for a connection closed earlier in this batch (and
           perhaps its fd reused since) finds a different generation. */
        c = conn_lookup(fd, gen);
        if (c)
          on_conn_event(c, evs[k].events);
      } else if (fd == s.lfd) {
        on_accept();
      } else if (fd == s.tfd) {
        on_timer();
      } else if (fd == s.sfd) {
        struct signalfd_siginfo si;

        if (read(s.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
          s.stop = 1;
      }
    }
  }
  rc = 0;

cleanup:
  for (i = 0; i < s.tab_len; i++) {
    if (s.tab[i]) {
      conn_close(s.tab[i]);
      free(s.tab[i]);
    }
  }
  free(s.tab);
  free(s.fifo);
  if (s.lfd >= 0)
    close(s.lfd);
  if (s.tfd >= 0)
    close(s.tfd);
  if (s.sfd >= 0)
    close(s.sfd);
  if (s.epfd >= 0)
    close(s.epfd);
  if (s.spare >= 0)
    close(s.spare);
  if (!rc) {
    printf("connections %llu requests %llu\n", s.accepted, s.answered);
    fflush(stdout);
  }
  return rc;

bad_usage:
  usage(stderr);
  return 2;
}
