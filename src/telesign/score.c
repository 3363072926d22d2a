/*
 * The Score client: libcurl's multi interface driven by a loop of its own
 * on the Score thread (curl's docs/examples/ephiperfifo.c is the model).
 * curl tells us which sockets to watch through socket_cb and when to call
 * it back through timer_cb; we translate both into loop_io watchers and
 * loop_timers, and hand readiness back with curl_multi_socket_action().
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
 * Connections per multi handle. curl 7.88 finds a free connection for a
 * new transfer by walking every connection it has to that host, so with
 * one multi handle and a pool of 2,000 connections each lookup walked
 * 2,000 entries: the profile put a third of the loop's time in libcurl.
 * Several multi handles, each with its own connection cache of at most
 * this many, keep that walk short; they all run in the same loop.
 */
#define SHARD_CONNECTIONS 128

struct score_client;

/* One curl multi handle with its own connection cache and timer. */
struct shard {
  struct score_client *sc;
  CURLM *multi;
  struct loop_timer timer;
};

/* The request headers a lookup sends, at most. */
#define LOOKUP_HEADERS 7

/*
 * A lookup in flight, on the client's list (loop thread). Its request
 * (req, the headers) is written by the loop thread before it is queued;
 * the Score thread then owns sh, easy, body, too_large and res until it
 * queues the lookup back (see struct score_client).
 */
struct lookup {
  struct score_client *sc;
  struct shard *sh;  /* NULL for simulated lookups */
  CURL *easy;        /* NULL for simulated lookups */
  uint64_t easy_gen; /* the io_gen its shared options follow */
  /*
   * The request headers as curl reads them: a list whose nodes and lines
   * live here rather than in curl_slist_append's two allocations per
   * header (fourteen mallocs and frees a lookup, a visible share of the
   * loop's time at 2,000 lookups in flight). curl only reads the list, and
   * the lookup outlives its transfer. `headers` is NULL or hnode[0].
   */
  struct curl_slist *headers;
  struct curl_slist hnode[LOOKUP_HEADERS];
  size_t nheaders;
  char htext[1024]; /* the lines, each NUL-terminated */
  size_t htext_len;
  struct score_request req;
  struct lookup *qnext;             /* in the inbox or the outbox */
  struct lookup *io_prev, *io_next; /* the Score thread's io_active */
  struct score_result res;          /* set by the Score thread */
  int sent;                         /* handed to the Score thread */
  struct buf body; /* the response, capped at SCORE_MAX_RESPONSE */
  int too_large;
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
 * open_socket_cb (a pooled connection) lives until close_socket_cb: while
 * its connection waits in the pool for the next lookup it stays "parked"
 * in the epoll set, so that reusing it costs no epoll_ctl (removing and
 * re-adding it were two system calls of the dozen a lookup made). Any
 * other socket (the resolver's) is freed at CURL_POLL_REMOVE, before curl
 * closes it. Score thread only.
 */
struct sock {
  struct shard *sh;
  struct loop_io io;
  int fd;
  int owned;  /* opened by open_socket_cb; closed by close_socket_cb */
  int parked; /* curl removed it: an event now only ends its watch */
};

/*
 * The client. Two threads share it, each with its own fields:
 *
 * - the loop thread (`loop`): the lookups' list, the breaker, the stats,
 *   the signing key and `cfg`;
 * - the Score thread (`io_loop`, started by score_client_create): the
 *   curl multi handles, their sockets and timers, the kept easy handles
 *   and the lookups whose transfer is running (`io_active`).
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
  size_t next_shard;        /* lookups are dealt to the shards in turn */
  struct lookup *io_active; /* doubly linked through io_prev, io_next */
  uint64_t io_gen;          /* reloads taken; io_timeout_ms, io_ca_file */
  uint32_t io_timeout_ms;
  char *io_ca_file; /* "" for the system bundle */
  /* Every socket we know of, by descriptor; grows with the highest fd,
   * which RLIMIT_NOFILE bounds. */
  struct sock **socks;
  size_t nsocks;
  /* Finished easy handles kept for the next lookups: creating and
   * destroying one per lookup was a visible share of the loop's time at
   * thousands of lookups a second. At most the pool size are kept. */
  CURL **idle;
  size_t nidle;
  size_t max_idle;
};

static void complete(struct lookup *lk, struct score_result *res);
static void io_finish(struct lookup *lk);

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

static void check_done(struct shard *sh)
{
  struct lookup *lk;
  struct score_result *res;
  CURLMsg *msg;
  int left;
  long status = 0;

  while ((msg = curl_multi_info_read(sh->multi, &left))) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&lk);
    res = &lk->res;
    if (msg->data.result == CURLE_OK) {
      memset(res, 0, sizeof(*res));
      res->score = -1;
      curl_easy_getinfo(lk->easy, CURLINFO_RESPONSE_CODE, &status);
      score_response_parse((int)status, lk->body.data ? lk->body.data : "",
                           lk->body.len, res);
    } else if (lk->too_large) {
      set_failure(res, SCORE_FAIL_TOO_LARGE, "too_large");
    } else if (msg->data.result == CURLE_OPERATION_TIMEDOUT) {
      set_failure(res, SCORE_FAIL_TIMEOUT, "timeout");
    } else {
      set_failure(res, SCORE_FAIL_CONNECT, "");
      snprintf(res->error, sizeof(res->error), "connect:%d",
               (int)msg->data.result);
      log_warn("score lookup failed|error=\"%s\"",
               curl_easy_strerror(msg->data.result));
    }
    curl_multi_remove_handle(sh->multi, lk->easy);
    io_finish(lk);
  }
}

static void on_socket_ready(struct loop_io *io, uint32_t events)
{
  struct sock *s = io->data;
  struct shard *sh = s->sh;
  int flags = 0;
  int running;

  /* A pooled connection heard from while idle: the server closed it or
   * broke protocol. curl finds that out when it next picks the
   * connection; until then, stop hearing about it. */
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
  if (what == CURL_POLL_REMOVE) {
    if (!s)
      return 0;
    if (!s->owned) {
      sock_free(sc, s);
      return 0;
    }
    /* Idle in the pool now: keep only the read interest, which is
     * silent until the server closes it. */
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

static size_t write_cb(char *p, size_t size, size_t nmemb, void *userp)
{
  struct lookup *lk = userp;

  if (buf_append(&lk->body, p, size * nmemb)) {
    lk->too_large = 1;
    return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
  }
  return size * nmemb;
}

/* Counts the pool's new TCP connections, to show keep-alive at work, and
 * knows each socket from its start so that it can be parked. */
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

static int close_socket_cb(void *userp, curl_socket_t fd)
{
  struct score_client *sc = userp;

  if (fd >= 0 && (size_t)fd < sc->nsocks && sc->socks[fd])
    sock_free(sc, sc->socks[fd]);
  return close(fd);
}

/* ---- lookups --------------------------------------------------------- */

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

/* Score thread: gives the easy handle back (kept idle when it may be) and
 * hands the lookup, its result in lk->res, to the loop thread. */
static void io_finish(struct lookup *lk)
{
  struct score_client *sc = lk->sc;

  if (lk->easy) {
    if (sc->nidle < sc->max_idle && lk->easy_gen == sc->io_gen) {
      /* Idle, it must not point at this lookup's headers and body. */
      curl_easy_setopt(lk->easy, CURLOPT_HTTPHEADER, NULL);
      curl_easy_setopt(lk->easy, CURLOPT_POSTFIELDS, NULL);
      curl_easy_setopt(lk->easy, CURLOPT_WRITEDATA, NULL);
      curl_easy_setopt(lk->easy, CURLOPT_PRIVATE, NULL);
      sc->idle[sc->nidle++] = lk->easy;
    } else {
      curl_easy_cleanup(lk->easy);
    }
    lk->easy = NULL;
  }
  if (lk->io_prev)
    lk->io_prev->io_next = lk->io_next;
  else if (sc->io_active == lk)
    sc->io_active = lk->io_next;
  if (lk->io_next)
    lk->io_next->io_prev = lk->io_prev;
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

/* Appends "name: value" to the lookup's header list. */
static int add_header(struct lookup *lk, const char *name, const char *value)
{
  size_t n = strlen(name);
  size_t v = strlen(value);
  char *line = lk->htext + lk->htext_len;
  struct curl_slist *node;

  /* Every value is one of struct score_request's bounded fields, so
   * running out of room is a programming error, reported, not overrun. */
  if (lk->nheaders == LOOKUP_HEADERS ||
      n + 2 + v >= sizeof(lk->htext) - lk->htext_len)
    return VS_ERR_LIMIT;
  memcpy(line, name, n);
  memcpy(line + n, ": ", 2);
  memcpy(line + n + 2, value, v + 1);
  lk->htext_len += n + 2 + v + 1;
  node = &lk->hnode[lk->nheaders];
  node->data = line;
  node->next = NULL;
  if (lk->nheaders)
    lk->hnode[lk->nheaders - 1].next = node;
  lk->nheaders++;
  lk->headers = lk->hnode;
  return VS_OK;
}

/*
 * The options every lookup shares, set once per easy handle: a handle kept
 * idle keeps them, so a lookup sets only its own request (resetting and
 * setting them all again was ~5,000 instructions a lookup). They follow
 * telesign.timeout_ms and ca_file, so a reload drops the idle handles
 * (on_io_wake). Score thread.
 */
static void set_shared_options(struct score_client *sc, CURL *e)
{
  curl_easy_setopt(e, CURLOPT_USERAGENT, "voice-and-score/" VS_VERSION);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  /* Answers are about a kilobyte; curl's default 16 KiB receive buffer per
   * lookup in flight was 32 MiB at 2,000 lookups. */
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)sc->io_timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)sc->io_timeout_ms);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  /* One lookup per connection, as the pool is sized and tested: curl's
   * default would negotiate HTTP/2 over TLS when the API offers it, and
   * multiplex lookups onto a few connections whose behaviour under a cold
   * burst the stack reference measured as unpredictable (section 1.2). */
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
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

/* Loop thread: the signed request and its header list. */
static int prepare_request(struct score_client *sc, struct lookup *lk)
{
  const struct config *cfg = sc->cfg;
  char err[128];
  int rc;

  rc = score_request_build(cfg, sc->key, lk->number, NULL, NULL, &lk->req, err,
                           sizeof(err));
  if (rc) {
    log_warn("cannot build score request|error=\"%s\"", err);
    return rc;
  }
  if (add_header(lk, "Content-Type", lk->req.content_type) ||
      add_header(lk, "Authorization", lk->req.authorization) ||
      add_header(lk, "Accept", "application/json") ||
      (lk->req.date[0] && add_header(lk, "Date", lk->req.date)) ||
      (lk->req.nonce[0] &&
       (add_header(lk, "x-ts-auth-method", "HMAC-SHA256") ||
        add_header(lk, "x-ts-nonce", lk->req.nonce))) ||
      add_header(lk, "Expect", ""))
    return VS_ERR_LIMIT;
  return VS_OK;
}

/* Score thread: an easy handle for the prepared request. */
static int setup_easy(struct score_client *sc, struct lookup *lk)
{
  CURL *e;

  if (sc->nidle) {
    e = sc->idle[--sc->nidle];
  } else {
    e = curl_easy_init();
    if (e)
      set_shared_options(sc, e);
  }
  lk->easy = e;
  lk->easy_gen = sc->io_gen;
  if (!e)
    return VS_ERR_NOMEM;
  curl_easy_setopt(e, CURLOPT_URL, lk->req.url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, lk->req.body);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, lk->headers);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, lk);
  curl_easy_setopt(e, CURLOPT_PRIVATE, lk);
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
  /* Kept handles follow the old options, and so do those of transfers
   * still running, which io_finish then drops. */
  if (reloaded)
    while (sc->nidle)
      curl_easy_cleanup(sc->idle[--sc->nidle]);
  for (; lk; lk = next) {
    next = lk->qnext;
    lk->qnext = NULL;
    if (stop || setup_easy(sc, lk)) {
      set_failure(&lk->res, stop ? SCORE_FAIL_CANCELLED : SCORE_FAIL_INTERNAL,
                  stop ? "cancelled" : "internal");
      io_finish(lk);
      continue;
    }
    lk->sh = &sc->shards[sc->next_shard++ % sc->nshards];
    lk->io_next = sc->io_active;
    if (lk->io_next)
      lk->io_next->io_prev = lk;
    sc->io_active = lk;
    if (curl_multi_add_handle(lk->sh->multi, lk->easy) != CURLM_OK) {
      set_failure(&lk->res, SCORE_FAIL_INTERNAL, "internal");
      io_finish(lk);
    }
  }
  if (stop) {
    while (sc->io_active) {
      lk = sc->io_active;
      curl_multi_remove_handle(lk->sh->multi, lk->easy);
      set_failure(&lk->res, SCORE_FAIL_CANCELLED, "cancelled");
      io_finish(lk);
    }
    loop_stop(sc->io_loop);
  }
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
  sc->max_idle = pool;
  sc->idle = calloc(sc->max_idle, sizeof(*sc->idle));
  sc->nshards = (pool + SHARD_CONNECTIONS - 1) / SHARD_CONNECTIONS;
  sc->shards = calloc(sc->nshards, sizeof(*sc->shards));
  if (!sc->idle || !sc->shards)
    goto nomem;
  for (size_t i = 0; i < sc->nshards; i++) {
    struct shard *sh = &sc->shards[i];
    /* The pool is split exactly: the first (pool % nshards) shards take
     * one connection more, so that the total is the configured size. */
    long cap = (long)(pool / sc->nshards + (i < pool % sc->nshards));

    sh->sc = sc;
    sh->multi = curl_multi_init();
    if (!sh->multi)
      goto nomem;
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
    /* The pool cap is the throughput cap: lookups beyond it queue inside
     * curl until a connection frees up (stack reference, gotcha 4). */
    curl_multi_setopt(sh->multi, CURLMOPT_MAX_HOST_CONNECTIONS, cap);
    curl_multi_setopt(sh->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, cap);
    curl_multi_setopt(sh->multi, CURLMOPT_MAXCONNECTS, cap);
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
    free(sc->idle);
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
  while (sc->nidle)
    curl_easy_cleanup(sc->idle[--sc->nidle]);
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
  free(sc->idle);
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
