/*
 * Score request building and response parsing (see score.h). Formats are
 * those of ../shared/reference/telesign-api.md sections 3 and 4.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* Copies `n` bytes of `p` as a string into `out[0..size)`. */
static int copy_part(char *out, size_t size, const char *p, size_t n)
{
  if (n >= size)
    return VS_ERR_LIMIT;
  memcpy(out, p, n);
  out[n] = '\0';
  return VS_OK;
}

/*
 * Splits an http(s) URL into what a request needs: the authority (without
 * any user information) for the Host header, the path and query for the
 * request line, and the path alone, which TSA signing covers.
 */
static int url_parts(const char *url, struct score_request *req)
{
  const char *p = strstr(url, "://");
  const char *host, *at, *target;
  size_t n;
  int rc;

  if (!p)
    return VS_ERR_INVAL;
  host = p + 3;
  n = strcspn(host, "/?#");
  at = memrchr(host, '@', n);
  if (at) {
    n -= (size_t)(at + 1 - host);
    host = at + 1;
  }
  if (!n)
    return VS_ERR_INVAL;
  rc = copy_part(req->host, sizeof(req->host), host, n);
  target = host + n;
  if (rc == VS_OK && *target == '/')
    rc = copy_part(req->target, sizeof(req->target), target,
                   strcspn(target, "#"));
  else if (rc == VS_OK)
    /* "https://host?q" asks for "/?q". */
    rc = snprintf(req->target, sizeof(req->target), "/%.*s",
                  (int)strcspn(target, "#"), target) < (int)sizeof(req->target)
             ? VS_OK
             : VS_ERR_LIMIT;
  if (rc == VS_OK)
    rc = copy_part(req->resource, sizeof(req->resource), req->target,
                   strcspn(req->target, "?"));
  return rc;
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
  rc = url_parts(req->url, req);
  if (rc)
    return vs_fail(err, errlen, rc, "%s: '%s'",
                   rc == VS_ERR_LIMIT ? "score URL is too long"
                                      : "score URL has no host",
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

/* ---- HTTP on the wire ------------------------------------------------- */

/* Appends the strings of a NULL-ended list to `out` at `*at`. */
static int put(char *out, size_t size, size_t *at, const char *const *parts)
{
  for (; *parts; parts++) {
    size_t n = strlen(*parts);

    if (n >= size - *at)
      return VS_ERR_LIMIT;
    memcpy(out + *at, *parts, n);
    *at += n;
  }
  out[*at] = '\0';
  return VS_OK;
}

/*
 * Written with plain copies: curl built the same head with its printf
 * engine, a call per header line, and that was about half of the 97,000
 * instructions its multi interface spent on each lookup (bench/README.md).
 */
long score_request_wire(const struct score_request *req, char *out,
                        size_t size)
{
  char length[24];
  size_t at = 0;
  int hmac = req->nonce[0] != '\0';
  int rc;

  if (!size)
    return VS_ERR_LIMIT;
  snprintf(length, sizeof(length), "%zu", strlen(req->body));
  rc = put(out, size, &at,
           (const char *const[]){
               "POST ", req->target, " HTTP/1.1\r\nHost: ", req->host,
               "\r\nUser-Agent: voice-and-score/" VS_VERSION
               "\r\nAccept: application/json"
               "\r\nContent-Type: ",
               req->content_type, "\r\nContent-Length: ", length,
               "\r\nAuthorization: ", req->authorization, "\r\n", NULL});
  if (rc == VS_OK && req->date[0])
    rc = put(out, size, &at,
             (const char *const[]){"Date: ", req->date, "\r\n", NULL});
  if (rc == VS_OK && hmac)
    rc = put(out, size, &at,
             (const char *const[]){"x-ts-auth-method: HMAC-SHA256\r\n"
                                   "x-ts-nonce: ",
                                   req->nonce, "\r\n", NULL});
  if (rc == VS_OK)
    rc = put(out, size, &at, (const char *const[]){"\r\n", req->body, NULL});
  return rc == VS_OK ? (long)at : rc;
}

enum { SH_HEAD, SH_LENGTH, SH_CHUNKED, SH_TO_CLOSE, SH_DONE, SH_FAILED };

void score_http_init(struct score_http *h)
{
  memset(h, 0, sizeof(*h));
  buf_init(&h->head, SCORE_HEAD_MAX);
}

void score_http_reset(struct score_http *h)
{
  struct buf head = h->head;

  buf_reset(&head);
  memset(h, 0, sizeof(*h));
  h->head = head;
}

void score_http_free(struct score_http *h)
{
  buf_free(&h->head);
}

/*
 * Reads the complete head in h->head (NUL-terminated, its blank line
 * included) and sets the state the body is read in. A field line is
 * "name: value"; lines end in CRLF, as in requests (http_parse.c).
 */
static int read_head(struct score_http *h)
{
  char *line = h->head.data;
  char *eol = strstr(line, "\r\n");
  int64_t length = -1;
  int chunked = 0, close = 0, keep = 0, minor;

  if (memchr(line, '\0', h->head.len))
    return SCORE_HTTP_BAD; /* the string functions below would stop at it */
  if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ' || strspn(line + 9, "0123456789") != 3 ||
      (line[12] != ' ' && line[12] != '\r'))
    return SCORE_HTTP_BAD;
  minor = line[7] - '0';
  h->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  /* No status is under 100, and no request of ours asks to switch. */
  if (h->status < 100 || h->status == 101)
    return SCORE_HTTP_BAD;
  for (line = eol + 2; (eol = strstr(line, "\r\n")) && eol != line;
       line = eol + 2) {
    char *colon = memchr(line, ':', (size_t)(eol - line));
    char *v;

    *eol = '\0';
    if (!colon || colon == line ||
        strcspn(line, " \t") < (size_t)(colon - line))
      return SCORE_HTTP_BAD;
    *colon = '\0';
    v = colon + 1 + strspn(colon + 1, " \t");
    for (char *end = eol; end > v && (end[-1] == ' ' || end[-1] == '\t');)
      *--end = '\0';
    if (strcasecmp(line, "Content-Length") == 0) {
      int64_t n = http_content_length(v);

      if (n < 0 || (length >= 0 && n != length))
        return SCORE_HTTP_BAD;
      length = n;
    } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
      if (strcasecmp(v, "chunked") != 0 || chunked)
        return SCORE_HTTP_BAD;
      chunked = 1;
    } else if (strcasecmp(line, "Connection") == 0) {
      close |= http_has_token(v, "close");
      keep |= http_has_token(v, "keep-alive");
    }
  }
  if (chunked && length >= 0)
    return SCORE_HTTP_BAD;
  h->keep_alive = minor == 1 ? !close : keep && !close;
  if (h->status == 204 || h->status == 304 || length == 0) {
    h->state = SH_DONE;
  } else if (chunked) {
    h->state = SH_CHUNKED;
  } else if (length > 0) {
    h->state = SH_LENGTH;
    h->left = (uint64_t)length;
  } else {
    h->state = SH_TO_CLOSE; /* the body runs to the end of the connection */
    h->keep_alive = 0;
  }
  return SCORE_HTTP_MORE;
}

/* Ends the read with `rc`, an error, kept for the calls that follow. */
static int http_failed(struct score_http *h, int rc)
{
  h->state = SH_FAILED;
  h->error = rc;
  return rc;
}

int score_http_feed(struct score_http *h, const char *in, size_t len,
                    struct buf *body)
{
  while (len) {
    size_t used = len;
    int rc = 0;

    switch (h->state) {
    case SH_HEAD: {
      size_t from = h->head.len > 3 ? h->head.len - 3 : 0;
      size_t take = h->head.max - h->head.len;
      const char *end;

      if (take > len)
        take = len;
      if (!take || buf_append(&h->head, in, take))
        return http_failed(h, SCORE_HTTP_TOO_LARGE);
      end = memmem(h->head.data + from, h->head.len - from, "\r\n\r\n", 4);
      if (!end) {
        if (take < len)
          return http_failed(h, SCORE_HTTP_TOO_LARGE);
        break;
      }
      /* What follows the blank line is the body's: give it back. */
      used = take - (h->head.len - (size_t)(end + 4 - h->head.data));
      h->head.len = (size_t)(end + 4 - h->head.data);
      h->head.data[h->head.len] = '\0';
      rc = read_head(h);
      if (rc == SCORE_HTTP_MORE && h->status >= 100 && h->status < 200) {
        /* Interim: the real response follows it. */
        buf_reset(&h->head);
        h->state = SH_HEAD;
      } else if (rc == SCORE_HTTP_MORE && h->state == SH_LENGTH &&
                 h->left > body->max - body->len) {
        rc = SCORE_HTTP_TOO_LARGE; /* announced: no need to wait for it */
      }
      break;
    }
    case SH_LENGTH:
      used = len < h->left ? len : (size_t)h->left;
      if (buf_append(body, in, used))
        return http_failed(h, SCORE_HTTP_TOO_LARGE);
      h->left -= used;
      if (!h->left)
        h->state = SH_DONE;
      break;
    case SH_CHUNKED:
      rc = http_chunked_feed(&h->chunked, in, len, body, &used);
      if (rc == 1)
        h->state = SH_DONE;
      rc = rc == -413 ? SCORE_HTTP_TOO_LARGE : rc < 0 ? SCORE_HTTP_BAD : 0;
      break;
    case SH_TO_CLOSE:
      if (buf_append(body, in, len))
        return http_failed(h, SCORE_HTTP_TOO_LARGE);
      break;
    case SH_DONE:
      h->keep_alive = 0; /* bytes nobody asked for */
      return SCORE_HTTP_DONE;
    default:
      return h->error;
    }
    if (rc < 0)
      return http_failed(h, rc);
    in += used;
    len -= used;
  }
  return h->state == SH_DONE     ? SCORE_HTTP_DONE
         : h->state == SH_FAILED ? h->error
                                 : SCORE_HTTP_MORE;
}

int score_http_eof(struct score_http *h)
{
  if (h->state == SH_TO_CLOSE)
    h->state = SH_DONE;
  if (h->state == SH_DONE) {
    h->keep_alive = 0;
    return SCORE_HTTP_DONE;
  }
  return h->state == SH_FAILED ? h->error : http_failed(h, SCORE_HTTP_SHORT);
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
