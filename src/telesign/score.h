/*
 * The Score client: looks a caller's number up in TeleSign's Score API (or
 * in the built-in simulator) without blocking the loop.
 *
 * Two layers, each usable alone:
 *  - the format (score_format.c): building a request for either endpoint
 *    style and either auth scheme, and parsing a response defensively. Pure
 *    functions, unit-tested against TeleSign's documented vectors.
 *  - the client (score.c): a libcurl multi handle driven by the loop's
 *    epoll and timers, with one keep-alive connection pool for the life of
 *    the process and a hard deadline (telesign.timeout_ms) per lookup.
 *
 * The client and every lookup belong to the loop thread.
 */
#ifndef VS_TELESIGN_SCORE_H
#define VS_TELESIGN_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "../http/http_parse.h"
#include "../util/buf.h"
#include "../util/histogram.h"

/* Why a lookup produced no usable result. */
enum score_failure {
  SCORE_OK = 0,
  SCORE_FAIL_TIMEOUT,   /* no complete answer within timeout_ms */
  SCORE_FAIL_CONNECT,   /* DNS, TCP or TLS failure */
  SCORE_FAIL_HTTP,      /* an HTTP status other than 2xx */
  SCORE_FAIL_PARSE,     /* a body that is not the JSON object we expect */
  SCORE_FAIL_STATUS,    /* status.code other than 300 or 301 */
  SCORE_FAIL_NO_SCORE,  /* a successful answer without risk.score */
  SCORE_FAIL_TOO_LARGE, /* a body over the response ceiling */
  SCORE_FAIL_INTERNAL,  /* out of memory or a curl setup error */
  SCORE_FAIL_CANCELLED, /* the client was destroyed first */
  SCORE_FAIL_BREAKER    /* skipped: the circuit breaker is open */
};

/* Short, stable name of a failure ("timeout", "http", ...), for reasons. */
const char *score_failure_name(enum score_failure f);

/* What one lookup found. Every TeleSign field is optional. */
struct score_result {
  enum score_failure failure;
  char error[64];          /* e.g. "http_503", "status_501", "timeout" */
  int http_status;         /* 0 when no HTTP answer arrived */
  int status_code;         /* status.code, 0 when absent */
  int32_t score;           /* risk.score 0..1000, -1 when absent */
  char level[16];          /* risk.level */
  char recommendation[16]; /* risk.recommendation */
  char phone_type[24];     /* phone_type.description */
  char phone_type_code[8]; /* phone_type.code */
  char ref[65];            /* TeleSign's reference_id */
  int32_t elapsed_ms;      /* time the lookup took */
};

/* ---- format -------------------------------------------------------- */

#define SCORE_MAX_RESPONSE (256 * 1024) /* bytes accepted from the API */

/* A request ready to send; all strings are owned by the struct. */
struct score_request {
  char url[1024];
  char host[256];     /* the URL's authority, for the Host header */
  char target[1024];  /* the URL's path and query: the request line's */
  char resource[512]; /* the URL's path, which TSA signing covers */
  char body[256];
  char content_type[48];
  char authorization[512];
  char date[40];  /* empty for Basic */
  char nonce[40]; /* empty for Basic */
};

/*
 * Builds the request for `number` (digits only) from the telesign section
 * of `cfg`. `key` (borrowed) is cfg's API key from tsauth_key_create, or
 * NULL to decode it for this request alone. `date` and `nonce` may be NULL
 * (the current date and a fresh UUID are used) or fixed values for tests.
 * Returns 0 or VS_ERR_INVAL / VS_ERR_LIMIT with the reason in `err`.
 */
struct tsauth_key;
int score_request_build(const struct config *cfg, const struct tsauth_key *key,
                        const char *number, const char *date,
                        const char *nonce, struct score_request *req,
                        char *err, size_t errlen);

/*
 * Parses an HTTP answer (`http_status` and the body) into `res`, setting
 * res->failure when it is not a usable result. Accepts numbers written as
 * strings and ignores unknown fields. Never fails on input: any bytes give a
 * result.
 */
void score_response_parse(int http_status, const char *body, size_t len,
                          struct score_result *res);

/*
 * Writes `req` as the bytes of an HTTP/1.1 POST into `out[0..size)`, with
 * its headers and body. Returns the length, or VS_ERR_LIMIT when it does
 * not fit (nothing useful is left in `out` then).
 */
long score_request_wire(const struct score_request *req, char *out,
                        size_t size);

/* A response's status line and header fields, at most. */
#define SCORE_HEAD_MAX (16 * 1024)

/* What score_http_feed() and score_http_eof() return. */
enum {
  SCORE_HTTP_MORE = 0,       /* the response goes on */
  SCORE_HTTP_DONE = 1,       /* complete: status, keep_alive and the body */
  SCORE_HTTP_BAD = -1,       /* not an HTTP/1.x response we can read */
  SCORE_HTTP_TOO_LARGE = -2, /* the head or the body is over its ceiling */
  SCORE_HTTP_SHORT = -3      /* the connection ended before the response */
};

/*
 * An HTTP/1.x response being read, a piece at a time as it arrives; after
 * RFC 9112, as strict about framing as the request parser (http_parse.h):
 * one Content-Length, no Content-Length beside Transfer-Encoding, "chunked"
 * the only coding. Interim (1xx) responses are skipped. Zero it, or
 * score_http_init() it, to begin; score_http_free() frees its head.
 * Whoever reads the connection owns it.
 */
struct score_http {
  int state;
  int status;     /* once the head is read */
  int keep_alive; /* the connection may carry another request */
  int error;      /* the error that ended the read, once one did */
  uint64_t left;  /* body bytes still due, when framed by Content-Length */
  struct http_chunked chunked;
  struct buf head; /* the head so far; SCORE_HEAD_MAX at most */
};

void score_http_init(struct score_http *h);
/* Ready for the next answer on the same connection; keeps the memory. */
void score_http_reset(struct score_http *h);
void score_http_free(struct score_http *h);

/*
 * Feeds the next `len` bytes of the connection; the body, decoded, goes
 * to `body`, whose ceiling gives SCORE_HTTP_TOO_LARGE. Bytes past a
 * complete response (which no request asked for) end the keep-alive.
 * Returns SCORE_HTTP_MORE, SCORE_HTTP_DONE or an error; after DONE or an
 * error, further calls return the same.
 */
int score_http_feed(struct score_http *h, const char *in, size_t len,
                    struct buf *body);

/*
 * The connection ended: SCORE_HTTP_DONE when that completes the response
 * (a body that runs to the close, or one already complete), otherwise
 * SCORE_HTTP_SHORT, or the error already met.
 */
int score_http_eof(struct score_http *h);

/* ---- simulator ------------------------------------------------------- */

/*
 * The simulator's deterministic answer: the score is the number's last three
 * digits (15555550999 scores 999), with the level and recommendation of
 * TeleSign's example decision matrix.
 */
void score_simulate(const char *number, struct score_result *res);

/* ---- client ------------------------------------------------------- */

struct loop;
struct score_client;

/*
 * `res` is borrowed until the callback returns. Called exactly once per
 * successful score_lookup(), on the loop thread, never from inside
 * score_lookup() itself.
 */
typedef void (*score_cb)(void *arg, const struct score_result *res);

/*
 * Creates a client for `cfg` (borrowed: it must outlive the client) on
 * `loop`. Returns 0 or a negative vs_err code with the reason in `err`.
 */
int score_client_create(struct loop *loop, const struct config *cfg,
                        struct score_client **out, char *err, size_t errlen);

/*
 * Switches to a new config (a reload): later lookups use its endpoint,
 * credentials and timeout; lookups in flight finish as they started. The
 * pool size stays as it was at creation.
 */
void score_client_set_config(struct score_client *sc,
                             const struct config *cfg);

/*
 * The first step of a shutdown: completes every lookup still in flight
 * with SCORE_FAIL_CANCELLED (their callbacks run before it returns), stops
 * the Score thread and closes the pool. From then on score_lookup refuses
 * with VS_ERR_CANCELLED, so that a request arriving while the server stops
 * gets its on_score_error answer at once. NULL, or a closed client, is a
 * no-op.
 */
void score_client_close(struct score_client *sc);

/* Closes the client if it is not yet, and frees it. NULL is a no-op. */
void score_client_destroy(struct score_client *sc);

/*
 * Starts a lookup of `number` (digits-only E.164). Returns 0, after which
 * `cb` will be called exactly once, or VS_ERR_NOMEM / VS_ERR_INVAL /
 * VS_ERR_CANCELLED (the client is closed), after which it will not.
 */
int score_lookup(struct score_client *sc, const char *number, score_cb cb,
                 void *arg);

/*
 * 1 while the circuit breaker is open (lookups skipped after
 * telesign.breaker_failures failures in a row, for breaker_cooldown_s).
 */
int score_breaker_open(const struct score_client *sc);

/* What /metrics reports of the client; counters since start. */
struct score_stats {
  uint64_t outcomes[SCORE_FAIL_BREAKER + 1]; /* by enum score_failure */
  struct histogram latency;                  /* lookups sent, ms */
};

/* Borrowed; valid as long as the client. */
const struct score_stats *score_client_stats(const struct score_client *sc);

/* Lookups in flight, and TCP connections the pool has opened in total. */
size_t score_inflight(const struct score_client *sc);
uint64_t score_connections_opened(const struct score_client *sc);

#endif
