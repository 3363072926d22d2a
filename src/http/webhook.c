/*
 * The webhook (see webhook.h): routes requests of the public listener and
 * hands events to the call flow. The HTTP machinery is httpd.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../flow/callflow.h"
#include "../loop/loop.h"
#include "../store/store.h"
#include "../telesign/tsauth.h"
#include "../telesign/voice.h"
#include "../util/err.h"
#include "../util/histogram.h"
#include "../util/log.h"
#include "httpd.h"
#include "webhook.h"

struct webhook {
  struct loop *loop;
  const struct config *cfg;
  struct flow *flow;
  struct store *store;
  struct httpd *httpd;
  /* telesign.api_key decoded for checking signatures; NULL without one
   * (or when it cannot be decoded, which fails every check). */
  struct tsauth_key *key;
  int simulated_clock;       /* X-Simulated-Time sets the wall clock */
  int64_t unverified_log_ms; /* when an unverified event was last logged */
  struct webhook_stats stats;
};

/* Unverified events served under webhook.verify: log are logged at most
 * this often, with their count, so an unsigned feed does not flood logs. */
#define UNVERIFIED_LOG_EVERY_MS 60000

static const char json_type[] = "application/json";

/* Counts an answer by its status class (2xx, 4xx, anything else). */
static void count_answer(struct webhook *w, unsigned status)
{
  unsigned cls = status / 100;

  w->stats.answers[cls == 2 ? 0 : cls == 4 ? 1 : 2]++;
}

static void answer(struct webhook *w, struct httpd_request *rq,
                   unsigned status, char *body)
{
  count_answer(w, status);
  httpd_respond(rq, status, json_type, body, body ? strlen(body) : 1);
}

static void answer_error(struct webhook *w, struct httpd_request *rq,
                         unsigned status, const char *why)
{
  count_answer(w, status);
  httpd_respond_error(rq, status, why);
}

static void respond_health(struct webhook *w, struct httpd_request *rq)
{
  int ok = store_healthy(w->store);
  char *body = NULL;

  if (asprintf(&body,
               "{\"status\":\"%s\",\"version\":\"%s\",\"store\":\"%s\","
               "\"provider\":\"%s\"}",
               ok ? "ok" : "degraded", VS_VERSION, ok ? "ok" : "error",
               config_provider_name(w->cfg->telesign.provider)) < 0)
    body = NULL;
  httpd_respond(rq, ok ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE, json_type, body,
                body ? strlen(body) : 1);
}

/* The call flow's answer, now or later: time it and send it. */
static void send_reply(struct webhook *w, struct httpd_request *rq,
                       struct flow_reply *reply)
{
  histogram_observe(&w->stats.duration, (double)(loop_update_time(w->loop) -
                                                 httpd_received_ms(rq)));
  answer(w, rq, reply->http_status, reply->body);
  reply->body = NULL;
}

/* A late answer from the call flow for the waiting request `arg`. */
static void on_flow_reply(void *arg, struct flow_reply *reply)
{
  struct httpd_request *rq = arg;
  struct webhook *w = httpd_request_owner(rq);

  if (w)
    send_reply(w, rq, reply);
  else
    httpd_respond(rq, reply->http_status, json_type, NULL, 0);
  flow_reply_clear(reply);
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

/*
 * Checks TeleSign's signature over the raw body, before any parsing.
 * Returns 1 when the event may be served (verified, or verify is log or
 * off), 0 when it must be refused with 401.
 */
static int event_verified(struct webhook *w, struct httpd_request *rq)
{
  const struct config *cfg = w->cfg;
  int64_t now = loop_now_ms(w->loop);
  const char *body;
  size_t len;
  char why[96];

  if (cfg->webhook.verify == VERIFY_OFF || !cfg->telesign.api_key[0])
    return 1;
  body = httpd_body(rq, &len);
  if (tsauth_callback_verify(cfg->telesign.customer_id, w->key,
                             httpd_header(rq, "Authorization"),
                             httpd_header(rq, "X-TS-Authorization"), body, len,
                             why, sizeof(why)) == VS_OK)
    return 1;
  w->stats.unverified++;
  if (cfg->webhook.verify == VERIFY_ENFORCE) {
    log_warn("event refused: signature not verified|reason=\"%s\"", why);
    return 0;
  }
  if (now - w->unverified_log_ms >= UNVERIFIED_LOG_EVERY_MS ||
      w->stats.unverified == 1) {
    log_warn("event served without a verified signature (webhook.verify: "
             "log)|reason=\"%s\" unverified_total=%llu",
             why, (unsigned long long)w->stats.unverified);
    w->unverified_log_ms = now;
  }
  return 1;
}

/*
 * Under serve --simulated-clock, an event's X-Simulated-Time (Unix ms)
 * moves the wall clock forward before the event is handled.
 */
static void follow_simulated_clock(struct webhook *w, struct httpd_request *rq)
{
  const char *t = httpd_header(rq, "X-Simulated-Time");
  char *end;
  long long ms;

  if (!w->simulated_clock || !t)
    return;
  ms = strtoll(t, &end, 10);
  if (end != t && !*end && ms > 0)
    loop_set_wall_ms(w->loop, ms);
}

/* Parses a complete event body and asks the call flow for the answer. */
static void handle_event(struct webhook *w, struct httpd_request *rq)
{
  struct voice_event ev;
  struct flow_reply now;
  const char *body;
  size_t len;
  char err[256];

  if (!event_verified(w, rq)) {
    answer_error(w, rq, HTTP_UNAUTHORIZED, "signature not verified");
    return;
  }
  body = httpd_body(rq, &len);
  if (voice_event_parse(body, len, &ev, err, sizeof(err))) {
    log_warn("malformed event refused|reason=\"%s\"", err);
    answer_error(w, rq, HTTP_BAD_REQUEST, err);
    return;
  }
  follow_simulated_clock(w, rq);
  w->stats.events[ev.type]++;
  log_debug("event|ref=%s event=%s", ev.ref, ev.name);
  if (flow_handle(w->flow, &ev, &now, on_flow_reply, rq) == FLOW_DONE)
    send_reply(w, rq, &now);
}

static void on_request(void *arg, struct httpd_request *rq)
{
  struct webhook *w = arg;
  const char *path = httpd_path(rq);
  const char *method = httpd_method(rq);

  if (is_webhook_path(w, path)) {
    if (strcmp(method, "POST") == 0) {
      handle_event(w, rq);
      return;
    }
    httpd_add_header(rq, "Allow", "POST");
    answer_error(w, rq, HTTP_METHOD_NOT_ALLOWED, "use POST for events");
    return;
  }
  if (strcmp(path, "/health") == 0 && strcmp(method, "GET") == 0) {
    respond_health(w, rq);
    return;
  }
  answer_error(w, rq, HTTP_NOT_FOUND, "no such path");
}

/* Keys the signature check with `cfg`'s API key, replacing the last one. */
static void set_key(struct webhook *w, const struct config *cfg)
{
  tsauth_key_destroy(w->key);
  w->key = NULL;
  if (cfg->telesign.api_key[0] &&
      tsauth_key_create(cfg->telesign.api_key, &w->key))
    log_warn("telesign.api_key cannot be decoded: no signature will verify");
}

int webhook_create(struct loop *loop, const struct config *cfg,
                   struct flow *flow, struct store *store,
                   struct webhook **out, char *err, size_t errlen)
{
  struct httpd_options opt = {
      .name = "server.listen",
      .listen = cfg->server.listen,
      .max_body = cfg->server.max_body,
      .max_connections = (unsigned)cfg->server.max_connections,
      .idle_timeout_s = (unsigned)cfg->server.idle_timeout_s,
      .tls_cert = cfg->server.tls_cert,
      .tls_key = cfg->server.tls_key,
  };
  struct webhook *w = calloc(1, sizeof(*w));
  int rc;

  if (!w)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory");
  w->loop = loop;
  w->cfg = cfg;
  w->flow = flow;
  w->store = store;
  set_key(w, cfg);
  rc = httpd_create(loop, &opt, on_request, w, &w->httpd, err, errlen);
  if (rc) {
    tsauth_key_destroy(w->key);
    free(w);
    return rc;
  }
  *out = w;
  return VS_OK;
}

void webhook_set_config(struct webhook *w, const struct config *cfg)
{
  w->cfg = cfg;
  set_key(w, cfg);
  httpd_set_max_body(w->httpd, cfg->server.max_body);
}

void webhook_set_simulated_clock(struct webhook *w, int on)
{
  w->simulated_clock = on;
}

uint16_t webhook_port(const struct webhook *w)
{
  return httpd_port(w->httpd);
}

void webhook_quiesce(struct webhook *w)
{
  httpd_quiesce(w->httpd);
}

size_t webhook_live_requests(const struct webhook *w)
{
  return httpd_live_requests(w->httpd);
}

const struct webhook_stats *webhook_stats(const struct webhook *w)
{
  return &w->stats;
}

void webhook_destroy(struct webhook *w)
{
  if (!w)
    return;
  httpd_destroy(w->httpd);
  tsauth_key_destroy(w->key);
  free(w);
}
