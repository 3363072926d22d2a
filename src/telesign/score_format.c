/*
 * Score request building and response parsing (see score.h). Formats are
 * those of ../shared/reference/telesign-api.md sections 3 and 4.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/err.h"
#include "../util/json_scan.h"
#include "score.h"
#include "tsauth.h"

static const char *const failure_names[] = {
    "ok",       "timeout",   "connect",  "http",      "parse",       "status",
    "no_score", "too_large", "internal", "cancelled", "circuit_open"};

const char *score_failure_name(enum score_failure f)
{
  return (size_t)f < sizeof(failure_names) / sizeof(failure_names[0])
             ? failure_names[f]
             : "unknown";
}

/*
 * Finds the path of an http(s) URL: everything after the authority up to a
 * query or fragment. TSA signing covers the path alone.
 */
static int url_path(const char *url, char *out, size_t size)
{
  const char *p = strstr(url, "://");
  size_t n;

  if (!p)
    return VS_ERR_INVAL;
  p = strchr(p + 3, '/');
  if (!p)
    p = "/";
  n = strcspn(p, "?#");
  if (n >= size)
    return VS_ERR_LIMIT;
  memcpy(out, p, n);
  out[n] = '\0';
  return VS_OK;
}

int score_request_build(const struct config *cfg, const struct tsauth_key *key,
                        const char *number, const char *date,
                        const char *nonce, struct score_request *req,
                        char *err, size_t errlen)
{
  const char *base = cfg->telesign.score_url;
  struct tsauth_request tr;
  int n;
  int rc;

  memset(req, 0, sizeof(*req));
  if (strspn(number, "0123456789") != strlen(number) || !*number)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "'%s' is not a digits-only number", number);
  if (cfg->telesign.score_api == SCORE_API_LEGACY) {
    /* The number goes at the end of the path: before any query string,
     * and without doubling a trailing slash ("score//1555..."). */
    size_t pathlen = strcspn(base, "?#");
    size_t cut = pathlen;

    while (cut && base[cut - 1] == '/')
      cut--;
    n = snprintf(req->url, sizeof(req->url), "%.*s/%s%s", (int)cut, base,
                 number, base + pathlen);
    if (n < 0 || (size_t)n >= sizeof(req->url))
      return vs_fail(err, errlen, VS_ERR_LIMIT, "score URL is too long");
    n = snprintf(req->body, sizeof(req->body), "account_lifecycle_event=%s",
                 cfg->telesign.account_lifecycle_event);
  } else {
    n = snprintf(req->url, sizeof(req->url), "%s", base);
    if (n < 0 || (size_t)n >= sizeof(req->url))
      return vs_fail(err, errlen, VS_ERR_LIMIT, "score URL is too long");
    n = snprintf(req->body, sizeof(req->body),
                 "phone_number=%s&account_lifecycle_event=%s", number,
                 cfg->telesign.account_lifecycle_event);
  }
  if (n < 0 || (size_t)n >= sizeof(req->body))
    return vs_fail(err, errlen, VS_ERR_LIMIT, "score request is too long");
  rc = url_path(req->url, req->resource, sizeof(req->resource));
  if (rc)
    return vs_fail(err, errlen, rc, "%s: '%s'",
                   rc == VS_ERR_LIMIT ? "score URL path is too long"
                                      : "score URL has no path",
                   req->url);
  snprintf(req->content_type, sizeof(req->content_type),
           "application/x-www-form-urlencoded");

  if (cfg->telesign.auth == AUTH_BASIC) {
    rc = tsauth_basic_authorization(cfg->telesign.customer_id,
                                    cfg->telesign.api_key, req->authorization,
                                    sizeof(req->authorization));
    if (rc)
      return vs_fail(err, errlen, rc, "cannot build Basic authorization");
    return VS_OK;
  }
  if (date)
    snprintf(req->date, sizeof(req->date), "%s", date);
  else if (tsauth_date_now(req->date, sizeof(req->date)))
    return vs_fail(err, errlen, VS_ERR_INVAL, "cannot format the date");
  if (nonce)
    snprintf(req->nonce, sizeof(req->nonce), "%s", nonce);
  else if (tsauth_nonce(req->nonce, sizeof(req->nonce)))
    return vs_fail(err, errlen, VS_ERR_IO, "cannot make a nonce");
  tr.method = "POST";
  tr.content_type = req->content_type;
  tr.resource = req->resource;
  tr.body = req->body;
  tr.body_len = strlen(req->body);
  tr.date = req->date;
  tr.nonce = req->nonce;
  rc = key ? tsauth_key_authorization(key, cfg->telesign.customer_id, &tr,
                                      req->authorization,
                                      sizeof(req->authorization))
           : tsauth_hmac_authorization(
                 cfg->telesign.customer_id, cfg->telesign.api_key, &tr,
                 req->authorization, sizeof(req->authorization));
  if (rc)
    return vs_fail(err, errlen, rc, "cannot sign the score request");
  return VS_OK;
}

/* Long enough for any digit string strtoll() can read. */
#define LOOSE_INT_MAX 64

/*
 * Reads an integer that TeleSign may send as a JSON integer, a real with no
 * fraction, or a string of digits ("300", "-30006"). Returns 1 and sets *out
 * when the value at `node` (-1: absent) is one of those, 0 otherwise.
 */
static int loose_int(const struct json_scan *js, int node, long long *out)
{
  char s[LOOSE_INT_MAX];
  char *end;
  long len;
  long long n;

  if (node < 0)
    return 0;
  switch (js->nodes[node].kind) {
  case JSON_SCAN_INTEGER:
    *out = js->nodes[node].integer;
    return 1;
  case JSON_SCAN_REAL: {
    double d = js->nodes[node].real;

    if (d < -1e15 || d > 1e15 || d != (double)(long long)d)
      return 0;
    *out = (long long)d;
    return 1;
  }
  case JSON_SCAN_STRING:
    len = json_scan_string(js, node, s, sizeof(s));
    if (len <= 0 || len >= (long)sizeof(s))
      return 0;
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno || *end)
      return 0;
    *out = n;
    return 1;
  default:
    return 0;
  }
}

/* Copies a string member (or an integer, written in decimal) into `out`. */
static void copy_loose_text(const struct json_scan *js, int obj,
                            const char *key, char *out, size_t size)
{
  int v = json_scan_member(js, obj, key);
  long long n;

  if (v >= 0 && js->nodes[v].kind == JSON_SCAN_STRING)
    json_scan_string(js, v, out, size);
  else if (loose_int(js, v, &n))
    snprintf(out, size, "%lld", n);
  else if (size)
    out[0] = '\0';
}

static void set_failure(struct score_result *res, enum score_failure f,
                        const char *fmt, long long arg)
{
  res->failure = f;
  snprintf(res->error, sizeof(res->error), fmt, arg);
}

void score_response_parse(int http_status, const char *body, size_t len,
                          struct score_result *res)
{
  /* About 14 KiB: on the loop thread's stack, which has room to spare. */
  struct json_scan js;
  int risk, phone;
  long long n;

  res->http_status = http_status;
  res->failure = SCORE_OK;
  res->error[0] = '\0';
  res->status_code = 0;
  res->score = -1;
  res->level[0] = res->recommendation[0] = '\0';
  res->phone_type[0] = res->phone_type_code[0] = res->ref[0] = '\0';

  if (http_status < 200 || http_status > 299) {
    set_failure(res, SCORE_FAIL_HTTP, "http_%lld", http_status);
    return;
  }
  if (json_scan_parse(&js, body, len) != VS_OK ||
      js.nodes[0].kind != JSON_SCAN_OBJECT) {
    set_failure(res, SCORE_FAIL_PARSE, "unparseable", 0);
    return;
  }
  copy_loose_text(&js, 0, "reference_id", res->ref, sizeof(res->ref));
  if (loose_int(
          &js,
          json_scan_member(&js, json_scan_member(&js, 0, "status"), "code"),
          &n)) {
    res->status_code = n >= INT32_MIN && n <= INT32_MAX ? (int)n : -1;
    if (n != 300 && n != 301) {
      set_failure(res, SCORE_FAIL_STATUS, "status_%lld", n);
      return;
    }
  }
  risk = json_scan_member(&js, 0, "risk");
  phone = json_scan_member(&js, 0, "phone_type");
  copy_loose_text(&js, risk, "level", res->level, sizeof(res->level));
  copy_loose_text(&js, risk, "recommendation", res->recommendation,
                  sizeof(res->recommendation));
  copy_loose_text(&js, phone, "description", res->phone_type,
                  sizeof(res->phone_type));
  copy_loose_text(&js, phone, "code", res->phone_type_code,
                  sizeof(res->phone_type_code));
  if (!loose_int(&js, json_scan_member(&js, risk, "score"), &n)) {
    set_failure(res, SCORE_FAIL_NO_SCORE, "no_score", 0);
    return;
  }
  if (n < 0 || n > 1000) {
    set_failure(res, SCORE_FAIL_PARSE, "score_out_of_range", 0);
    return;
  }
  res->score = (int32_t)n;
}

/*
 * TeleSign's example decision matrix (reference section 3.4), which the
 * simulator follows so that its answers look like the real service's.
 */
static void band_of(int32_t score, struct score_result *res)
{
  static const struct {
    int32_t upto;
    const char *level;
    const char *recommendation;
  } bands[] = {{200, "very low", "allow"},
               {400, "low", "allow"},
               {600, "medium", "flag"},
               {800, "high", "block"},
               {1000, "very high", "block"}};

  for (size_t i = 0; i < sizeof(bands) / sizeof(bands[0]); i++) {
    if (score <= bands[i].upto) {
      snprintf(res->level, sizeof(res->level), "%s", bands[i].level);
      snprintf(res->recommendation, sizeof(res->recommendation), "%s",
               bands[i].recommendation);
      return;
    }
  }
}

void score_simulate(const char *number, struct score_result *res)
{
  size_t len = strlen(number);
  const char *tail = len > 3 ? number + len - 3 : number;

  memset(res, 0, sizeof(*res));
  res->http_status = 200;
  res->status_code = 300;
  res->score = (int32_t)strtol(tail, NULL, 10);
  band_of(res->score, res);
  snprintf(res->phone_type, sizeof(res->phone_type), "SIMULATED");
  snprintf(res->ref, sizeof(res->ref), "simulated");
}
