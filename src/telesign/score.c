/*
 * The Score client: a pool of keep-alive connections to the Score API, on
 * a loop of its own on the Score thread.
 *
 * curl opens each connection: name resolution, TCP, a proxy's CONNECT
 * tunnel, TLS and the certificate's verification, as a CONNECT_ONLY
 * transfer on a multi handle driven by this loop (curl's
 * docs/examples/ephiperfifo.c is the model: curl tells us which sockets to
 * watch through socket_cb and when to call it back through timer_cb, and
 * we hand readiness back with curl_multi_socket_action()). Once it is
 * open, each lookup writes its request and reads its answer on it with
 * curl_easy_send() and curl_easy_recv(), which go through curl's TLS, and
 * score_http_feed() reads the answer. A whole transfer per lookup cost
 * curl's multi interface about 97,000 instructions, half of them in the
 * printf engine that builds the request's head; this way a lookup costs
 * about 4,000 (bench/README.md).
 *
 * The loop thread prepares and signs each request, queues it for the
 * Score thread, and completes the lookup when the result comes back (see
 * struct score_client). curl and its sockets were half of the loop
 * thread's time per call at 2,000 calls in flight, and with one thread
 * for both the 200 ms benchmark's p99 was 302-305 ms; on a thread of its
 * own, 245-248 ms at 12% more calls a second (bench/README.md). The stack
 * reference prefers one loop for its simpler ownership rules; the queues
 * below are the whole of what the two threads share.
 *
 * One multi handle lives as long as the client, so its connection cache
 * keeps TLS connections to TeleSign alive between calls: a new handshake per
 * lookup costs about 20 times more (stack reference, section 1.1.2).
 */
#include <curl/curl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "../loop/loop.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "../util/log.h"
#include "../util/thread.h"
#include "score.h"
#include "tsauth.h"

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

/*
 * Connections per multi handle. curl 7.88 walks every connection of a
 * multi handle to open a new one, and to find the connection of a
 * CONNECT_ONLY handle at every curl_easy_send() and curl_easy_recv()
 * (Curl_getconnectinfo). With one multi handle and a pool of 2,000
 * connections, when a whole transfer ran per lookup, the profile put a
 * third of the loop's time in that walk. Several multi handles, each with
 * at most about this many connections, keep the walks short; they all run
 * in the same loop. 32 instead of 128 made no difference at 2,000 lookups
 * in flight (bench/README.md).
 */
#define SHARD_CONNECTIONS 128

/* Bytes read from a connection at a time. */
#define READ_CHUNK 4096

/* A request's bytes: its head and body (score_request_wire). */
#define WIRE_MAX 2560

struct score_client;

/* One curl multi handle with its own connection cache and timer. */
struct shard {
  struct score_client *sc;
  CURLM *multi;
  struct loop_timer timer;
};

struct conn;

/*
 * A lookup in flight, on the client's list (loop thread). Its request
 * (url, wire) is written by the loop thread before it is queued; the
 * Score thread then owns the fields from `conn` to `res` until it queues
 * the lookup back (see struct score_client).
 */
struct lookup {
  struct score_client *sc;
  char url[sizeof(((struct score_request *)0)->url)]; /* to connect to */
  char wire[WIRE_MAX];                                /* the request as sent */
  size_t wire_len;
  struct lookup *qnext; /* in the inbox or the outbox */
  /* Score thread: */
  struct conn *conn;                    /* carrying it; NULL while waiting */
  struct lookup *io_prev, *io_next;     /* on io_active, oldest first */
  struct lookup *wait_prev, *wait_next; /* waiting for a connection */
  int waiting;
  int retried; /* sent again after a kept connection had closed */
  size_t wire_sent;
  int64_t deadline_ms;     /* telesign.timeout_ms after it arrived */
  struct buf body;         /* the response, capped at SCORE_MAX_RESPONSE */
  struct score_result res; /* set by the Score thread */
  /* Loop thread: */
  int sent; /* handed to the Score thread */
  int64_t started_ms;
  struct loop_task task; /* simulated and skipped lookups complete here */
  int skipped;           /* not sent: the breaker is open */
  int probe;             /* the one lookup let through a half-open breaker */
  char number[24];
  score_cb cb;
  void *arg;
  struct lookup *prev, *next;
};

/*
 * A socket curl asked us to watch. One that curl opened through
 * open_socket_cb (a connection's) lives until close_socket_cb; once its
 * connection is open, `conn` is set and its events go to the connection,
 * not to curl. Any other socket (the resolver's) is freed at
 * CURL_POLL_REMOVE, before curl closes it. Score thread only.
 */
struct sock {
  struct shard *sh;
  struct loop_io io;
  int fd;
  int owned;  /* opened by open_socket_cb; closed by close_socket_cb */
  int parked; /* curl removed it and no connection has it: events end the
                 watch */
  struct conn *conn; /* the open connection it carries */
};

/*
 * A connection of the pool: curl's CONNECT_ONLY handle, which stays on its
 * shard's multi handle (curl_easy_send and curl_easy_recv find the
 * connection through it), and the lookup it carries, if any. Connections
 * that carry none are on the client's idle list, watched for a close.
 * Score thread only.
 */
struct conn {
  struct score_client *sc;
  struct shard *sh;
  CURL *easy;
  uint64_t gen;      /* the io_gen its options follow */
  struct sock *sock; /* once open */
  struct lookup *lk; /* the lookup it carries, or NULL */
  unsigned served;   /* answers it has read */
  size_t got;        /* bytes of the current answer */
  struct score_http http;
  struct conn *prev, *next;           /* every connection */
  struct conn *idle_prev, *idle_next; /* idle ones, newest first */
  int idle;
  struct conn *lost_next; /* on the client's lost list */
  int lost;               /* curl closed its socket (close_socket_cb) */
};

/*
 * The client. Two threads share it, each with its own fields:
 *
 * - the loop thread (`loop`): the lookups' list, the breaker, the stats,
 *   the signing key and `cfg`;
 * - the Score thread (`io_loop`, started by score_client_create): the
 *   curl multi handles, their sockets and timers, the pool of connections
 *   and the lookups it holds (`io_active`).
 *
 * They meet only under `q_lock`: the loop thread queues prepared lookups
 * on `inbox` and wakes the Score thread (`io_wake`); the Score thread
 * queues finished ones, each with its result, on `outbox` and wakes the
 * loop (`done_wake`). A lookup belongs to the thread that last took it off
 * a queue.
 */
struct score_client {
  /* Loop thread only: */
  struct loop *loop;
  const struct config *cfg;
  struct lookup *inflight; /* doubly linked */
  size_t count;
  int closed; /* score_client_close has run */
  /* The circuit breaker (see score.h): failures in a row, the end of the
   * current open period (0 = closed) and whether a probe is in flight. */
  uint32_t failures_in_row;
  int64_t open_until_ms;
  int probing;
  struct score_stats stats;
  /* telesign.api_key keyed for TSA signing, when auth is hmac; NULL
   * otherwise (or when the key cannot be decoded: each request then fails
   * to build with the reason logged). */
  struct tsauth_key *key;

  /* Under q_lock: the two queues, the stop request, and the options the
   * Score thread's easy handles are to follow (copied from the
   * configuration, which the loop thread frees at its next reload). */
  pthread_mutex_t q_lock;
  struct lookup *inbox, *inbox_tail;
  struct lookup *outbox, *outbox_tail;
  int io_stop;
  /* A reload the Score thread has yet to take: next_ca_file is then set. */
  uint32_t next_timeout_ms;
  char *next_ca_file;
  struct loop_async io_wake;   /* on io_loop; sent by the loop thread */
  struct loop_async done_wake; /* on loop; sent by the Score thread */
  _Atomic uint64_t connections;

  /* Score thread only (and the loop thread once it has joined it): */
  struct loop *io_loop;
  pthread_t io_thread;
  struct shard *shards;
  size_t nshards;
  size_t next_shard; /* connections are dealt to the shards in turn */
  /* The lookups the Score thread holds, in the order they came, so that
   * their deadlines come in that order too: one timer, armed for the
   * oldest, stands for all of them (on_deadline). Until those sent before
   * a reload that shortened the timeout are done, the order is not that of
   * the deadlines (io_unordered). */
  struct lookup *io_active, *io_active_tail;
  struct loop_timer io_deadline;
  int io_unordered;
  uint64_t io_gen; /* reloads taken; io_timeout_ms, io_ca_file */
  uint32_t io_timeout_ms;
  char *io_ca_file; /* "" for the system bundle */
  /* Every socket we know of, by descriptor; grows with the highest fd,
   * which RLIMIT_NOFILE bounds. */
  struct sock **socks;
  size_t nsocks;
  /* The pool: at most max_conns connections, opening, busy or idle. */
  struct conn *conns;
  struct conn *idle;
  size_t nconns;
  size_t max_conns;
  /* Lookups waiting for a connection, oldest first: the pool is full. */
  struct lookup *wait_head, *wait_tail;
  /* Connections whose socket curl closed while opening another one, to
   * close once curl has returned (conns_lost). */
  struct conn *lost;
};

static void complete(struct lookup *lk, struct score_result *res);
static void io_finish(struct lookup *lk);
static void conn_opened(struct conn *c, CURLcode code);
static void conn_ready(struct conn *c, uint32_t events);
static void conn_close(struct conn *c);
static void conns_lost(struct score_client *sc);
static void idle_remove(struct score_client *sc, struct conn *c);

/* Sets `res` to a lookup that produced nothing: `failure`, named `error`. */
static void set_failure(struct score_result *res, enum score_failure failure,
                        const char *error)
{
  memset(res, 0, sizeof(*res));
  res->score = -1;
  res->failure = failure;
  snprintf(res->error, sizeof(res->error), "%s", error);
}

/* ---- curl callbacks -------------------------------------------------- */

/* curl finished opening connections, or failed to. */
static void check_done(struct shard *sh)
{
  struct conn *c;
  CURLMsg *msg;
  int left;

  while ((msg = curl_multi_info_read(sh->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
    conn_opened(c, msg->data.result);
  }
  conns_lost(sh->sc);
}

static void on_socket_ready(struct loop_io *io, uint32_t events)
{
  struct sock *s = io->data;
  struct shard *sh = s->sh;
  int flags = 0;
  int running;

  if (s->conn) {
    conn_ready(s->conn, events);
    return;
  }
  /* Removed by curl and not (yet) a connection's: nothing to hear. */
  if (s->parked) {
    loop_io_stop(sh->sc->io_loop, &s->io);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP))
    flags |= CURL_CSELECT_IN;
  if (events & EPOLLOUT)
    flags |= CURL_CSELECT_OUT;
  if (events & EPOLLERR)
    flags |= CURL_CSELECT_ERR;
  /* `s` may be freed inside this call (CURL_POLL_REMOVE). */
  curl_multi_socket_action(sh->multi, io->fd, flags, &running);
  check_done(sh);
}

static void sock_free(struct score_client *sc, struct sock *s)
{
  loop_io_stop(sc->io_loop, &s->io);
  sc->socks[s->fd] = NULL;
  free(s);
}

/* The socket known for `fd`, made (unowned) when there is none yet. */
static struct sock *sock_get(struct score_client *sc, int fd)
{
  struct sock *s;

  if (fd < 0)
    return NULL;
  if ((size_t)fd >= sc->nsocks) {
    size_t n = sc->nsocks ? sc->nsocks : 64;
    struct sock **grown;

    while (n <= (size_t)fd)
      n *= 2;
    grown = realloc(sc->socks, n * sizeof(*grown));
    if (!grown)
      return NULL;
    memset(grown + sc->nsocks, 0, (n - sc->nsocks) * sizeof(*grown));
    sc->socks = grown;
    sc->nsocks = n;
  }
  if (sc->socks[fd])
    return sc->socks[fd];
  s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  s->fd = fd;
  sc->socks[fd] = s;
  return s;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp)
{
  struct shard *sh = userp;
  struct score_client *sc = sh->sc;
  struct sock *s = socketp;
  uint32_t events = 0;

  (void)easy;
  /* An open connection's socket is watched for its lookups, not curl. */
  if (s && s->conn)
    return 0;
  if (what == CURL_POLL_REMOVE) {
    if (!s)
      return 0;
    if (!s->owned) {
      sock_free(sc, s);
      return 0;
    }
    /* The connection is open (or failed): the watch stays in the epoll
     * set for it, read interest only, so that it costs no epoll_ctl. */
    s->parked = 1;
    if (s->io.active && s->io.want != EPOLLIN &&
        loop_io_start(sc->io_loop, &s->io, fd, EPOLLIN, on_socket_ready, s))
      loop_io_stop(sc->io_loop, &s->io);
    return 0;
  }
  if (!s) {
    s = sock_get(sc, fd);
    if (!s)
      return -1;
    curl_multi_assign(sh->multi, fd, s);
  }
  s->sh = sh;
  s->parked = 0;
  if (what & CURL_POLL_IN)
    events |= EPOLLIN;
  if (what & CURL_POLL_OUT)
    events |= EPOLLOUT;
  if (loop_io_start(sc->io_loop, &s->io, fd, events, on_socket_ready, s))
    return -1;
  return 0;
}

static void on_timer(struct loop_timer *t)
{
  struct shard *sh = t->data;
  int running;

  curl_multi_socket_action(sh->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(sh);
}

/* curl asks for one absolute deadline; -1 cancels it. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
  struct shard *sh = userp;
  struct loop *loop = sh->sc->io_loop;

  (void)multi;
  if (timeout_ms < 0)
    loop_timer_stop(loop, &sh->timer);
  else
    loop_timer_start(loop, &sh->timer, loop_now_ms(loop) + timeout_ms,
                     on_timer, sh);
  return 0;
}

/* Counts the pool's new TCP connections, to show keep-alive at work, and
 * knows each socket from its start, so that its connection can take it. */
static curl_socket_t open_socket_cb(void *userp, curlsocktype purpose,
                                    struct curl_sockaddr *addr)
{
  struct score_client *sc = userp;
  struct sock *s;
  int fd;

  (void)purpose;
  fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
  if (fd < 0)
    return CURL_SOCKET_BAD;
  s = sock_get(sc, fd);
  if (!s) {
    close(fd);
    return CURL_SOCKET_BAD;
  }
  s->owned = 1;
  sc->connections++;
  return fd;
}

/*
 * curl closes a socket: one it gave up, or one of ours curl took for dead.
 * For curl, an open CONNECT_ONLY connection is idle in its cache, so
 * when it opens another connection on the same multi handle it closes
 * ours if it is readable then (an answer has arrived). That connection is
 * closed and its lookup sent again, once curl has returned.
 */
static int close_socket_cb(void *userp, curl_socket_t fd)
{
  struct score_client *sc = userp;

  if (fd >= 0 && (size_t)fd < sc->nsocks && sc->socks[fd]) {
    struct conn *c = sc->socks[fd]->conn;

    if (c && !c->lost) {
      c->lost = 1;
      c->sock = NULL;
      c->lost_next = sc->lost;
      sc->lost = c;
      idle_remove(sc, c); /* no lookup may take it meanwhile */
    }
    sock_free(sc, sc->socks[fd]);
  }
  return close(fd);
}

/* ---- circuit breaker ----------------------------------------------- */

/*
 * Whether a lookup may be sent now. Closed: yes. Open: no, until the
 * cool-down ends; then exactly one lookup goes through as a probe, and its
 * outcome closes or reopens the breaker.
 */
static int breaker_admit(struct score_client *sc, struct lookup *lk)
{
  if (!sc->open_until_ms)
    return 1;
  if (loop_now_ms(sc->loop) < sc->open_until_ms || sc->probing)
    return 0;
  sc->probing = 1;
  lk->probe = 1;
  return 1;
}

/*
 * Counts a finished lookup. An answer of any kind from the API, even one
 * without a score, shows it is alive; timeouts, connection failures, HTTP
 * errors and unreadable answers count against it.
 */
static void breaker_account(struct score_client *sc, struct lookup *lk,
                            const struct score_result *res)
{
  uint32_t limit = sc->cfg->telesign.breaker_failures;
  int failed = res->failure != SCORE_OK &&
               res->failure != SCORE_FAIL_NO_SCORE &&
               res->failure != SCORE_FAIL_CANCELLED;

  if (lk->probe)
    sc->probing = 0;
  if (!failed) {
    if (sc->open_until_ms)
      log_info("score circuit closed: the API answers again");
    sc->failures_in_row = 0;
    sc->open_until_ms = 0;
    return;
  }
  sc->failures_in_row++;
  if (!limit || (sc->failures_in_row < limit && !lk->probe))
    return;
  if (!sc->open_until_ms || lk->probe)
    log_warn("score circuit open: lookups skipped|failures_in_row=%u "
             "cooldown_s=%u last_error=%s",
             sc->failures_in_row, sc->cfg->telesign.breaker_cooldown_s,
             res->error);
  sc->open_until_ms = loop_now_ms(sc->loop) +
                      (int64_t)sc->cfg->telesign.breaker_cooldown_s * 1000;
}

const struct score_stats *score_client_stats(const struct score_client *sc)
{
  return &sc->stats;
}

int score_breaker_open(const struct score_client *sc)
{
  return sc->open_until_ms != 0;
}

/*
 * Appends `lk` to one of the two queues under q_lock, and wakes the thread
 * that empties it when it was empty: a batch costs one wake-up.
 */
static void queue_push(struct score_client *sc, struct lookup **head,
                       struct lookup **tail, struct lookup *lk,
                       struct loop_async *wake)
{
  int was_empty;

  lk->qnext = NULL;
  pthread_mutex_lock(&sc->q_lock);
  was_empty = !*head;
  if (*tail)
    (*tail)->qnext = lk;
  else
    *head = lk;
  *tail = lk;
  pthread_mutex_unlock(&sc->q_lock);
  if (was_empty)
    loop_async_send(wake);
}

static void lookup_free(struct lookup *lk)
{
  buf_free(&lk->body);
  free(lk);
}

/* Score thread: hands the lookup, its result in lk->res, to the loop
 * thread; it carries no connection and waits for none any more. */
static void io_finish(struct lookup *lk)
{
  struct score_client *sc = lk->sc;

  if (lk->io_prev)
    lk->io_prev->io_next = lk->io_next;
  else
    sc->io_active = lk->io_next;
  if (lk->io_next)
    lk->io_next->io_prev = lk->io_prev;
  else
    sc->io_active_tail = lk->io_prev;
  lk->io_prev = lk->io_next = NULL;
  queue_push(sc, &sc->outbox, &sc->outbox_tail, lk, &sc->done_wake);
}

/*
 * Unlinks the lookup, runs its callback and frees it. The callback may start
 * new lookups, so the list is consistent before it runs.
 */
static void complete(struct lookup *lk, struct score_result *res)
{
  struct score_client *sc = lk->sc;

  if (lk->prev)
    lk->prev->next = lk->next;
  else
    sc->inflight = lk->next;
  if (lk->next)
    lk->next->prev = lk->prev;
  sc->count--;
  if (lk->sent)
    breaker_account(sc, lk, res);
  res->elapsed_ms = (int32_t)(loop_update_time(sc->loop) - lk->started_ms);
  if ((unsigned)res->failure <= SCORE_FAIL_BREAKER)
    sc->stats.outcomes[res->failure]++;
  if (lk->sent)
    histogram_observe(&sc->stats.latency, res->elapsed_ms);
  lk->cb(lk->arg, res);
  lookup_free(lk);
}

static void deferred_done(struct loop_task *task)
{
  struct lookup *lk = task->data;
  struct score_result res;

  if (lk->skipped)
    set_failure(&res, SCORE_FAIL_BREAKER, "circuit_open");
  else
    score_simulate(lk->number, &res);
  complete(lk, &res);
}

/* The smallest receive buffer curl takes (set_options). */
#define CURL_RECV_BUFFER 1024L

/* ---- connections (Score thread) --------------------------------------- */

/*
 * The options of a connection's handle. They follow telesign.timeout_ms
 * and ca_file, so a reload closes the idle connections (on_io_wake) and
 * each busy one once its lookup is done (conn_done).
 */
static void set_options(struct score_client *sc, CURL *e, const char *url)
{
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)sc->io_timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)sc->io_timeout_ms);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  /* TLS's ALPN then offers http/1.1 alone, the protocol we write: curl's
   * default would accept HTTP/2 from an API that offers it. */
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  /* Through an HTTP proxy, a tunnel: the requests we write are for the
   * API itself, in origin form. */
  curl_easy_setopt(e, CURLOPT_HTTPPROXYTUNNEL, 1L);
  /* curl counts an open connection's age from its opening, not from our
   * last use, and would close it after 118 s (close_socket_cb); the server
   * closing an idle one is what ends it (conn_ready). */
  curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, LONG_MAX);
  /* curl gives every handle that connects a receive buffer of this size
   * (16 KiB by default), which it uses only for transfers of its own:
   * ours are read with curl_easy_recv into the connection's buffer, and
   * a proxy's CONNECT answer is read a byte at a time. */
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, CURL_RECV_BUFFER);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, sc);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_socket_cb);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, sc);
  /* GnuTLS libcurl rereads Debian's whole CA directory on every new
   * connection unless CAPATH is cleared (stack reference, section 1.2). */
  curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
  curl_easy_setopt(e, CURLOPT_CAINFO,
                   sc->io_ca_file[0] ? sc->io_ca_file : SYSTEM_CA_BUNDLE);
}

static void dispatch(struct score_client *sc, struct lookup *lk);

/* Closes the connections curl closed the sockets of (close_socket_cb). */
static void conns_lost(struct score_client *sc)
{
  struct conn *c;

  while ((c = sc->lost)) {
    struct lookup *lk = c->lk;

    sc->lost = c->lost_next;
    log_debug("score connection closed by curl|lookup_sent_again=%d", !!lk);
    conn_close(c);
    if (lk)
      dispatch(sc, lk);
  }
}

static void fail_lookup(struct lookup *lk, enum score_failure failure,
                        const char *error)
{
  set_failure(&lk->res, failure, error);
  io_finish(lk);
}

/* Fails `lk` for curl's `code`, as "connect:<code>" (docs/troubleshooting.md).
 */
static void fail_connect(struct lookup *lk, CURLcode code)
{
  char error[32];

  snprintf(error, sizeof(error), "connect:%d", (int)code);
  log_warn("score lookup failed|error=\"%s\"", curl_easy_strerror(code));
  fail_lookup(lk, SCORE_FAIL_CONNECT, error);
}

static void wait_push(struct score_client *sc, struct lookup *lk)
{
  lk->waiting = 1;
  lk->wait_next = NULL;
  lk->wait_prev = sc->wait_tail;
  if (sc->wait_tail)
    sc->wait_tail->wait_next = lk;
  else
    sc->wait_head = lk;
  sc->wait_tail = lk;
}

static void wait_remove(struct score_client *sc, struct lookup *lk)
{
  if (lk->wait_prev)
    lk->wait_prev->wait_next = lk->wait_next;
  else
    sc->wait_head = lk->wait_next;
  if (lk->wait_next)
    lk->wait_next->wait_prev = lk->wait_prev;
  else
    sc->wait_tail = lk->wait_prev;
  lk->wait_prev = lk->wait_next = NULL;
  lk->waiting = 0;
}

static void idle_remove(struct score_client *sc, struct conn *c)
{
  if (!c->idle)
    return;
  if (c->idle_prev)
    c->idle_prev->idle_next = c->idle_next;
  else
    sc->idle = c->idle_next;
  if (c->idle_next)
    c->idle_next->idle_prev = c->idle_prev;
  c->idle_prev = c->idle_next = NULL;
  c->idle = 0;
}

/* Watches the open connection's socket for `events` (EPOLLIN, EPOLLOUT). */
static int conn_watch(struct conn *c, uint32_t events)
{
  struct sock *s = c->sock;

  if (s->io.active && s->io.want == events)
    return VS_OK;
  return loop_io_start(c->sc->io_loop, &s->io, s->fd, events, on_socket_ready,
                       s);
}

static int conn_open(struct score_client *sc, struct lookup *lk);

/*
 * Closes `c`; the lookup it carried, if any, is the caller's to finish or
 * to send again. A place in the pool frees up, so the oldest lookup
 * waiting for one gets a new connection.
 */
static void conn_close(struct conn *c)
{
  struct score_client *sc = c->sc;

  if (c->lk)
    c->lk->conn = NULL;
  if (c->sock)
    c->sock->conn = NULL;
  for (struct conn **pp = &sc->lost; c->lost && *pp; pp = &(*pp)->lost_next)
    if (*pp == c) {
      *pp = c->lost_next;
      break;
    }
  idle_remove(sc, c);
  if (c->prev)
    c->prev->next = c->next;
  else
    sc->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  /* curl closes the socket through close_socket_cb, which frees `sock`. */
  curl_multi_remove_handle(c->sh->multi, c->easy);
  curl_easy_cleanup(c->easy);
  score_http_free(&c->http);
  sc->nconns--;
  free(c);
  if (sc->wait_head) {
    struct lookup *next = sc->wait_head;

    wait_remove(sc, next);
    if (conn_open(sc, next))
      fail_lookup(next, SCORE_FAIL_INTERNAL, "internal");
  }
}

static void conn_send(struct conn *c);

/* Starts `lk` on the open connection `c`. */
static void conn_start(struct conn *c, struct lookup *lk)
{
  c->lk = lk;
  lk->conn = c;
  lk->wire_sent = 0;
  c->got = 0;
  score_http_reset(&c->http);
  buf_reset(&lk->body);
  conn_send(c);
}

/*
 * `c` carries nothing now: the oldest waiting lookup takes it, or it
 * waits on the idle list, watched for the server closing it. A reload
 * since it opened closes it instead.
 */
static void conn_idle(struct conn *c)
{
  struct score_client *sc = c->sc;

  c->lk = NULL;
  if (c->gen != sc->io_gen || conn_watch(c, EPOLLIN)) {
    conn_close(c);
    return;
  }
  if (sc->wait_head) {
    struct lookup *lk = sc->wait_head;

    wait_remove(sc, lk);
    conn_start(c, lk);
    return;
  }
  c->idle = 1;
  c->idle_prev = NULL;
  c->idle_next = sc->idle;
  if (sc->idle)
    sc->idle->idle_prev = c;
  sc->idle = c;
}

/*
 * The answer on `c` ended with `rc` (score_http_feed's or
 * score_http_eof's), or with curl's `code` when sending or receiving
 * failed. A kept connection the server had closed before it read the
 * request fails without a byte of answer: the request goes once more, on
 * another connection, as curl did.
 */
static void conn_done(struct conn *c, int rc, CURLcode code)
{
  struct score_client *sc = c->sc;
  struct lookup *lk = c->lk;
  int keep = rc == SCORE_HTTP_DONE && c->http.keep_alive;
  size_t got = c->got;

  if (rc == SCORE_HTTP_DONE) {
    memset(&lk->res, 0, sizeof(lk->res));
    lk->res.score = -1;
    score_response_parse(c->http.status, lk->body.data ? lk->body.data : "",
                         lk->body.len, &lk->res);
    c->served++;
    c->lk = NULL;
    lk->conn = NULL;
    io_finish(lk);
    if (keep)
      conn_idle(c);
    else
      conn_close(c);
    return;
  }
  if (!got && c->served && !lk->retried &&
      (rc == SCORE_HTTP_SHORT || code != CURLE_OK)) {
    lk->retried = 1;
    conn_close(c);
    dispatch(sc, lk);
    return;
  }
  conn_close(c);
  if (rc == SCORE_HTTP_TOO_LARGE)
    fail_lookup(lk, SCORE_FAIL_TOO_LARGE, "too_large");
  else
    fail_connect(lk, code != CURLE_OK       ? code
                     : rc == SCORE_HTTP_BAD ? CURLE_WEIRD_SERVER_REPLY
                     : got                  ? CURLE_PARTIAL_FILE
                                            : CURLE_GOT_NOTHING);
}

/* Writes what is left of the request; the rest waits for EPOLLOUT. */
static void conn_send(struct conn *c)
{
  struct lookup *lk = c->lk;

  while (lk->wire_sent < lk->wire_len) {
    size_t n = 0;
    CURLcode code = curl_easy_send(c->easy, lk->wire + lk->wire_sent,
                                   lk->wire_len - lk->wire_sent, &n);

    if (code == CURLE_AGAIN) {
      if (conn_watch(c, EPOLLIN | EPOLLOUT))
        conn_done(c, SCORE_HTTP_BAD, CURLE_OUT_OF_MEMORY);
      return;
    }
    if (code != CURLE_OK) {
      conn_done(c, SCORE_HTTP_BAD, code);
      return;
    }
    lk->wire_sent += n;
  }
  if (conn_watch(c, EPOLLIN))
    conn_done(c, SCORE_HTTP_BAD, CURLE_OUT_OF_MEMORY);
}

/* Reads all there is; TLS may hold more than the socket shows. */
static void conn_recv(struct conn *c)
{
  char chunk[READ_CHUNK];

  for (;;) {
    size_t n = 0;
    CURLcode code = curl_easy_recv(c->easy, chunk, sizeof(chunk), &n);
    int rc;

    if (code == CURLE_AGAIN)
      return;
    if (code != CURLE_OK) {
      conn_done(c, SCORE_HTTP_BAD, code);
      return;
    }
    if (!n) {
      conn_done(c, score_http_eof(&c->http), CURLE_OK);
      return;
    }
    c->got += n;
    rc = score_http_feed(&c->http, chunk, n, &c->lk->body);
    if (rc != SCORE_HTTP_MORE) {
      conn_done(c, rc, CURLE_OK);
      return;
    }
  }
}

/* An event on an open connection's socket. */
static void conn_ready(struct conn *c, uint32_t events)
{
  /* Idle, it has nothing to say: the server closed it, or broke the
   * protocol. Either way it cannot carry a lookup. */
  if (!c->lk) {
    conn_close(c);
    return;
  }
  if ((events & EPOLLOUT) && c->lk->wire_sent < c->lk->wire_len) {
    conn_send(c);
    return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
    conn_recv(c);
}

/* curl opened `c` (`code` CURLE_OK) or failed to. */
static void conn_opened(struct conn *c, CURLcode code)
{
  struct score_client *sc = c->sc;
  struct lookup *lk = c->lk;
  curl_socket_t fd = CURL_SOCKET_BAD;

  if (code == CURLE_OK &&
      curl_easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
      fd >= 0 && (size_t)fd < sc->nsocks && sc->socks[fd]) {
    c->sock = sc->socks[fd];
    c->sock->conn = c;
    c->sock->sh = c->sh;
    if (lk)
      conn_send(c);
    else
      conn_idle(c);
    return;
  }
  if (code == CURLE_OK)
    code = CURLE_COULDNT_CONNECT; /* no socket of ours: not usable */
  conn_close(c);
  if (!lk)
    return;
  if (code == CURLE_OPERATION_TIMEDOUT)
    fail_lookup(lk, SCORE_FAIL_TIMEOUT, "timeout");
  else
    fail_connect(lk, code);
}

/* Opens a connection for `lk`; 0, or VS_ERR_NOMEM. */
static int conn_open(struct score_client *sc, struct lookup *lk)
{
  struct conn *c = calloc(1, sizeof(*c));

  if (!c)
    return VS_ERR_NOMEM;
  c->easy = curl_easy_init();
  if (!c->easy) {
    free(c);
    return VS_ERR_NOMEM;
  }
  c->sc = sc;
  c->gen = sc->io_gen;
  c->sh = &sc->shards[sc->next_shard++ % sc->nshards];
  score_http_init(&c->http);
  set_options(sc, c->easy, lk->url);
  curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
  if (curl_multi_add_handle(c->sh->multi, c->easy) != CURLM_OK) {
    curl_easy_cleanup(c->easy);
    free(c);
    return VS_ERR_NOMEM;
  }
  c->next = sc->conns;
  if (c->next)
    c->next->prev = c;
  sc->conns = c;
  sc->nconns++;
  c->lk = lk;
  lk->conn = c;
  return VS_OK;
}

/* Sends `lk` on an idle connection, a new one, or after those in line. */
static void dispatch(struct score_client *sc, struct lookup *lk)
{
  struct conn *c;

  while ((c = sc->idle)) {
    idle_remove(sc, c);
    if (c->gen == sc->io_gen) {
      conn_start(c, lk);
      return;
    }
    conn_close(c);
  }
  if (sc->nconns < sc->max_conns) {
    if (conn_open(sc, lk))
      fail_lookup(lk, SCORE_FAIL_INTERNAL, "internal");
    return;
  }
  wait_push(sc, lk);
}

/*
 * Ends `lk`, whose telesign.timeout_ms went by. A connection still opening
 * goes on, for the lookups after it; one that carries the request is
 * closed, since its answer could only come too late.
 */
static void expire(struct score_client *sc, struct lookup *lk)
{
  struct conn *c = lk->conn;

  if (lk->waiting)
    wait_remove(sc, lk);
  if (c && c->sock) {
    conn_close(c);
  } else if (c) {
    c->lk = NULL;
    lk->conn = NULL;
  }
  fail_lookup(lk, SCORE_FAIL_TIMEOUT, "timeout");
}

/* The earliest deadline of the lookups held; clears io_unordered once
 * they are in deadline order again. INT64_MAX when there are none. */
static int64_t next_deadline(struct score_client *sc)
{
  int64_t next = INT64_MAX;
  int sorted = 1;

  if (!sc->io_unordered)
    return sc->io_active ? sc->io_active->deadline_ms : INT64_MAX;
  for (struct lookup *lk = sc->io_active; lk; lk = lk->io_next) {
    if (lk->io_prev && lk->deadline_ms < lk->io_prev->deadline_ms)
      sorted = 0;
    if (lk->deadline_ms < next)
      next = lk->deadline_ms;
  }
  sc->io_unordered = !sorted;
  return next;
}

/*
 * Ends the lookups whose deadline has come: the oldest ones, or any while
 * io_unordered. The timer is not moved when a lookup ends early, so it may
 * fire for nothing, at most once a timeout.
 */
static void on_deadline(struct loop_timer *t)
{
  struct score_client *sc = t->data;
  int64_t now = loop_now_ms(sc->io_loop);
  int64_t next;

  for (;;) {
    struct lookup *lk = sc->io_active;

    while (sc->io_unordered && lk && lk->deadline_ms > now)
      lk = lk->io_next;
    if (!lk || lk->deadline_ms > now)
      break;
    expire(sc, lk);
  }
  next = next_deadline(sc);
  if (next != INT64_MAX)
    loop_timer_start(sc->io_loop, &sc->io_deadline, next, on_deadline, sc);
}

/* Loop thread: the signed request, as it goes on the wire. */
static int prepare_request(struct score_client *sc, struct lookup *lk)
{
  struct score_request req;
  char err[128];
  long n;
  int rc;

  rc = score_request_build(sc->cfg, sc->key, lk->number, NULL, NULL, &req, err,
                           sizeof(err));
  if (rc) {
    log_warn("cannot build score request|error=\"%s\"", err);
    return rc;
  }
  n = score_request_wire(&req, lk->wire, sizeof(lk->wire));
  if (n < 0)
    return (int)n;
  lk->wire_len = (size_t)n;
  memcpy(lk->url, req.url, strlen(req.url) + 1);
  return VS_OK;
}

int score_lookup(struct score_client *sc, const char *number, score_cb cb,
                 void *arg)
{
  struct lookup *lk;
  int rc;

  if (sc->closed)
    return VS_ERR_CANCELLED;
  if (strlen(number) >= sizeof(lk->number))
    return VS_ERR_INVAL;
  lk = calloc(1, sizeof(*lk));
  if (!lk)
    return VS_ERR_NOMEM;
  lk->sc = sc;
  lk->cb = cb;
  lk->arg = arg;
  lk->started_ms = loop_now_ms(sc->loop);
  buf_init(&lk->body, SCORE_MAX_RESPONSE);
  snprintf(lk->number, sizeof(lk->number), "%s", number);

  if (sc->cfg->telesign.provider == PROVIDER_SIMULATOR) {
    loop_defer(sc->loop, &lk->task, deferred_done, lk);
  } else if (!breaker_admit(sc, lk)) {
    lk->skipped = 1;
    loop_defer(sc->loop, &lk->task, deferred_done, lk);
  } else {
    rc = prepare_request(sc, lk);
    if (rc)
      goto fail;
    lk->sent = 1;
    queue_push(sc, &sc->inbox, &sc->inbox_tail, lk, &sc->io_wake);
  }
  lk->next = sc->inflight;
  if (lk->next)
    lk->next->prev = lk;
  sc->inflight = lk;
  sc->count++;
  return VS_OK;
fail:
  lookup_free(lk);
  return rc;
}

/* ---- the Score thread ------------------------------------------------ */

/* Score thread: fails every lookup it holds and closes the pool. */
static void io_shutdown(struct score_client *sc)
{
  while (sc->wait_head) {
    struct lookup *lk = sc->wait_head;

    wait_remove(sc, lk);
    fail_lookup(lk, SCORE_FAIL_CANCELLED, "cancelled");
  }
  while (sc->conns) {
    struct lookup *lk = sc->conns->lk;

    conn_close(sc->conns);
    if (lk)
      fail_lookup(lk, SCORE_FAIL_CANCELLED, "cancelled");
  }
  while (sc->io_active)
    fail_lookup(sc->io_active, SCORE_FAIL_CANCELLED, "cancelled");
  loop_timer_stop(sc->io_loop, &sc->io_deadline);
  loop_stop(sc->io_loop);
}

/* Score thread: starts the lookups queued since the last wake-up. */
static void on_io_wake(struct loop_async *a)
{
  struct score_client *sc = a->data;
  struct lookup *lk, *next;
  int stop, reloaded = 0;

  pthread_mutex_lock(&sc->q_lock);
  lk = sc->inbox;
  sc->inbox = sc->inbox_tail = NULL;
  stop = sc->io_stop;
  if (sc->next_ca_file) {
    free(sc->io_ca_file);
    sc->io_ca_file = sc->next_ca_file;
    sc->next_ca_file = NULL;
    sc->io_timeout_ms = sc->next_timeout_ms;
    sc->io_gen++;
    reloaded = 1;
  }
  pthread_mutex_unlock(&sc->q_lock);
  /* Idle connections follow the old options; busy ones close when their
   * lookup is done (conn_idle). */
  while (reloaded && sc->idle)
    conn_close(sc->idle);
  for (; lk; lk = next) {
    next = lk->qnext;
    lk->qnext = NULL;
    lk->io_prev = sc->io_active_tail;
    if (lk->io_prev)
      lk->io_prev->io_next = lk;
    else
      sc->io_active = lk;
    sc->io_active_tail = lk;
    if (stop) {
      fail_lookup(lk, SCORE_FAIL_CANCELLED, "cancelled");
      continue;
    }
    lk->deadline_ms = loop_now_ms(sc->io_loop) + sc->io_timeout_ms;
    if (lk->io_prev && lk->deadline_ms < lk->io_prev->deadline_ms)
      sc->io_unordered = 1;
    if (!sc->io_deadline.active ||
        lk->deadline_ms < sc->io_deadline.deadline_ms)
      loop_timer_start(sc->io_loop, &sc->io_deadline, lk->deadline_ms,
                       on_deadline, sc);
    dispatch(sc, lk);
  }
  if (stop)
    io_shutdown(sc);
}

static void *io_thread_main(void *arg)
{
  struct score_client *sc = arg;

  loop_run(sc->io_loop);
  return NULL;
}

/* Loop thread: completes the lookups the Score thread has finished. */
static void on_done_wake(struct loop_async *a)
{
  struct score_client *sc = a->data;
  struct lookup *lk, *next;

  pthread_mutex_lock(&sc->q_lock);
  lk = sc->outbox;
  sc->outbox = sc->outbox_tail = NULL;
  pthread_mutex_unlock(&sc->q_lock);
  for (; lk; lk = next) {
    next = lk->qnext;
    complete(lk, &lk->res);
  }
}

/* ---- client ---------------------------------------------------------- */

/* Keys TSA signing with `cfg`'s API key, replacing the last one. */
static void set_key(struct score_client *sc, const struct config *cfg)
{
  tsauth_key_destroy(sc->key);
  sc->key = NULL;
  if (cfg->telesign.auth == AUTH_HMAC && cfg->telesign.api_key[0])
    (void)tsauth_key_create(cfg->telesign.api_key, &sc->key);
}

/* Frees the shards' multi handles; lookups must already be complete. */
static void shards_free(struct score_client *sc)
{
  for (size_t i = 0; sc->shards && i < sc->nshards; i++) {
    loop_timer_stop(sc->io_loop, &sc->shards[i].timer);
    if (sc->shards[i].multi)
      curl_multi_cleanup(sc->shards[i].multi);
  }
  free(sc->shards);
  sc->shards = NULL;
}

int score_client_create(struct loop *loop, const struct config *cfg,
                        struct score_client **out, char *err, size_t errlen)
{
  struct score_client *sc;
  size_t pool = cfg->telesign.max_connections;

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return vs_fail(err, errlen, VS_ERR_IO, "curl_global_init failed");
  sc = calloc(1, sizeof(*sc));
  if (!sc)
    goto nomem;
  sc->loop = loop;
  sc->cfg = cfg;
  set_key(sc, cfg);
  /* The pool cap is the throughput cap: lookups beyond it wait for a
   * connection to free up (stack reference, gotcha 4). */
  sc->max_conns = pool;
  sc->nshards = (pool + SHARD_CONNECTIONS - 1) / SHARD_CONNECTIONS;
  sc->shards = calloc(sc->nshards, sizeof(*sc->shards));
  if (!sc->shards)
    goto nomem;
  for (size_t i = 0; i < sc->nshards; i++) {
    struct shard *sh = &sc->shards[i];

    sh->sc = sc;
    sh->multi = curl_multi_init();
    if (!sh->multi)
      goto nomem;
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
    /* No caps: the client counts the pool itself, and curl's cache, four
     * times the handles added by default, never closes one of ours to
     * make room. */
  }
  sc->io_timeout_ms = cfg->telesign.timeout_ms;
  sc->io_ca_file = strdup(cfg->telesign.ca_file);
  if (!sc->io_ca_file)
    goto nomem;
  if (loop_create(&sc->io_loop))
    goto nomem;
  if (loop_async_init(sc->io_loop, &sc->io_wake, on_io_wake, sc))
    goto fail_loop;
  if (loop_async_init(loop, &sc->done_wake, on_done_wake, sc))
    goto fail_io_wake;
  if (pthread_mutex_init(&sc->q_lock, NULL))
    goto fail_done_wake;
  /* From here on the Score thread owns its half of `sc`. */
  if (thread_start(&sc->io_thread, io_thread_main, sc, "vs-score"))
    goto fail_mutex;
  *out = sc;
  return VS_OK;
fail_mutex:
  pthread_mutex_destroy(&sc->q_lock);
fail_done_wake:
  loop_async_close(loop, &sc->done_wake);
fail_io_wake:
  loop_async_close(sc->io_loop, &sc->io_wake);
fail_loop:
  loop_destroy(sc->io_loop);
nomem:
  if (sc) {
    shards_free(sc);
    free(sc->io_ca_file);
    tsauth_key_destroy(sc->key);
  }
  free(sc);
  curl_global_cleanup();
  return vs_fail(err, errlen, VS_ERR_NOMEM,
                 "cannot start the score client: out of memory or threads");
}

void score_client_close(struct score_client *sc)
{
  struct score_result res;

  if (!sc || sc->closed)
    return;
  sc->closed = 1;
  if (sc->connections)
    log_info("score client closing|connections_opened=%llu",
             (unsigned long long)sc->connections);
  pthread_mutex_lock(&sc->q_lock);
  sc->io_stop = 1;
  pthread_mutex_unlock(&sc->q_lock);
  loop_async_send(&sc->io_wake);
  pthread_join(sc->io_thread, NULL);
  /* The Score thread has handed back every lookup it had, cancelled or
   * with its result; the rest (simulated, skipped) are still deferred. */
  on_done_wake(&sc->done_wake);
  while (sc->inflight) {
    set_failure(&res, SCORE_FAIL_CANCELLED, "cancelled");
    loop_defer_cancel(sc->loop, &sc->inflight->task);
    complete(sc->inflight, &res);
  }
  shards_free(sc);
  /* curl closed its connections through close_socket_cb; anything left
   * (a resolver's socket) must not outlive the client. */
  for (size_t i = 0; i < sc->nsocks; i++)
    if (sc->socks[i])
      sock_free(sc, sc->socks[i]);
}

void score_client_destroy(struct score_client *sc)
{
  if (!sc)
    return;
  score_client_close(sc);
  free(sc->socks);
  loop_async_close(sc->io_loop, &sc->io_wake);
  loop_async_close(sc->loop, &sc->done_wake);
  loop_destroy(sc->io_loop);
  pthread_mutex_destroy(&sc->q_lock);
  free(sc->io_ca_file);
  free(sc->next_ca_file);
  tsauth_key_destroy(sc->key);
  free(sc);
  curl_global_cleanup();
}

void score_client_set_config(struct score_client *sc, const struct config *cfg)
{
  char *ca_file = strdup(cfg->telesign.ca_file);

  sc->cfg = cfg;
  set_key(sc, cfg);
  if (!ca_file) {
    log_error("score client keeps its timeout and CA file: out of memory");
    return;
  }
  pthread_mutex_lock(&sc->q_lock);
  free(sc->next_ca_file);
  sc->next_ca_file = ca_file;
  sc->next_timeout_ms = cfg->telesign.timeout_ms;
  pthread_mutex_unlock(&sc->q_lock);
  loop_async_send(&sc->io_wake);
}

size_t score_inflight(const struct score_client *sc)
{
  return sc->count;
}

uint64_t score_connections_opened(const struct score_client *sc)
{
  return sc->connections;
}
