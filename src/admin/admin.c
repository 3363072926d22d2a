/* The admin listener (see admin.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../http/httpd.h"
#include "../http/webhook.h"
#include "../loop/loop.h"
#include "../screen/screening.h"
#include "../store/store.h"
#include "../telesign/score.h"
#include "../telesign/tsauth.h"
#include "../util/buf.h"
#include "../util/err.h"
#include "admin.h"
#include "api.h"
#include "assets.h"
#include "metrics.h"

/* The API's bodies are list entries: a few hundred bytes. */
#define ADMIN_MAX_BODY        (16 * 1024)
#define ADMIN_MAX_CONNECTIONS 64
#define ADMIN_IDLE_TIMEOUT_S  30
#define METRICS_MAX           (256 * 1024)

/* Loop thread only. */
struct admin {
  struct api_context api;
  struct admin_sources src;
  struct httpd *httpd;
  int64_t start_time_s;
};

/*
 * With admin.token set, the request must carry it as a bearer token. The
 * comparison takes the same time wherever the first difference is.
 */
static int authorised(const struct admin *a, const struct httpd_request *rq)
{
  const char *token = a->api.cfg->admin.token;
  const char *auth = httpd_header(rq, "Authorization");

  if (!token[0])
    return 1;
  if (!auth || strncmp(auth, "Bearer ", 7) != 0)
    return 0;
  return tsauth_equal_constant_time(auth + 7, token);
}

static void respond_metrics(struct admin *a, struct httpd_request *rq)
{
  struct metrics_snapshot m = {
      .start_time_s = a->start_time_s,
      .webhook = webhook_stats(a->src.webhook),
      .requests_in_flight = webhook_live_requests(a->src.webhook),
      .score = score_client_stats(a->src.scores),
      .breaker_open = score_breaker_open(a->src.scores),
      .screening = screening_stats(a->src.screening),
      .store_queue_depth = store_queue_depth(a->src.store),
      .store_healthy = store_healthy(a->src.store),
  };
  struct buf b;

  store_stats_get(a->src.store, &m.store);
  buf_init(&b, METRICS_MAX);
  if (metrics_render(&m, &b)) {
    buf_free(&b);
    httpd_respond_error(rq, HTTP_INTERNAL_SERVER_ERROR,
                        "the metrics did not fit in memory");
    return;
  }
  httpd_respond(rq, HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                b.data, b.len);
}

/* The dashboard's files; "/" is index.html. */
static const struct admin_asset *asset_of(const char *path)
{
  if (strcmp(path, "/") == 0)
    path = "/index.html";
  for (const struct admin_asset *as = admin_assets; as->path; as++)
    if (strcmp(as->path, path) == 0)
      return as;
  return NULL;
}

static void on_request(void *arg, struct httpd_request *rq)
{
  struct admin *a = arg;
  const char *path = httpd_path(rq);
  int get = strcmp(httpd_method(rq), "GET") == 0;
  const struct admin_asset *as;

  if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/metrics") == 0) {
    if (!authorised(a, rq)) {
      httpd_add_header(rq, "WWW-Authenticate",
                       "Bearer realm=\"voice-and-score\"");
      httpd_respond_error(rq, HTTP_UNAUTHORIZED,
                          "a bearer token (admin.token) is required");
    } else if (path[1] == 'm') {
      if (get)
        respond_metrics(a, rq);
      else
        httpd_respond_error(rq, HTTP_METHOD_NOT_ALLOWED, "use GET");
    } else {
      api_handle(&a->api, rq);
    }
    return;
  }
  as = get ? asset_of(path) : NULL;
  if (as)
    httpd_respond_static(rq, HTTP_OK, as->content_type, as->data, as->len);
  else
    httpd_respond_error(rq, HTTP_NOT_FOUND, "no such path");
}

int admin_create(struct loop *loop, const struct config *cfg,
                 const struct admin_sources *src, struct admin **out,
                 char *err, size_t errlen)
{
  struct httpd_options opt = {
      .name = "admin.listen",
      .listen = cfg->admin.listen,
      .max_body = ADMIN_MAX_BODY,
      .max_connections = ADMIN_MAX_CONNECTIONS,
      .idle_timeout_s = ADMIN_IDLE_TIMEOUT_S,
  };
  struct admin *a = calloc(1, sizeof(*a));
  int rc;

  if (!a)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory");
  a->api.loop = loop;
  a->api.cfg = cfg;
  a->api.store = src->store;
  a->api.screening = src->screening;
  a->src = *src;
  a->start_time_s = (int64_t)time(NULL);
  rc = httpd_create(loop, &opt, on_request, a, &a->httpd, err, errlen);
  if (rc) {
    free(a);
    return rc;
  }
  *out = a;
  return VS_OK;
}

void admin_set_config(struct admin *a, const struct config *cfg)
{
  a->api.cfg = cfg;
}

uint16_t admin_port(const struct admin *a)
{
  return httpd_port(a->httpd);
}

void admin_destroy(struct admin *a)
{
  if (!a)
    return;
  httpd_destroy(a->httpd);
  free(a);
}
