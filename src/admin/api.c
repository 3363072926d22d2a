/*
 * The admin JSON API (see api.h and docs/admin-api.md).
 *
 * Reads of call records go to the store's worker and are answered from
 * its callback; the request is the callback's argument and nothing else
 * is, because a callback may run after the admin is gone (the store
 * completes its queue when it closes): it then only releases the request.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "../loop/loop.h"
#include "../screen/lists.h"
#include "../screen/phone.h"
#include "../screen/screening.h"
#include "../store/call_json.h"
#include "../store/store.h"
#include "../util/err.h"
#include "api.h"

#define PAGE_DEFAULT          50
#define STATS_DEFAULT_SINCE_S (24 * 3600)

static const char json_content[] = "application/json";

/* Answers `v` (a new reference, consumed) as JSON with `status`. */
static void respond_json(struct httpd_request *rq, unsigned status, json_t *v)
{
  char *body = v ? json_dumps(v, JSON_COMPACT) : NULL;

  json_decref(v);
  httpd_respond(rq, status, json_content, body, body ? strlen(body) : 1);
}

static int is_digits(const char *s)
{
  if (!*s)
    return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

/*
 * `since`: Unix ms, or a duration back from `now_ms` ("15m", "7d").
 * Returns 0 with the time in *out, or -1.
 */
static int parse_since(const char *s, int64_t now_ms, int64_t *out)
{
  int64_t seconds;

  if (is_digits(s) && strlen(s) <= 15) {
    *out = strtoll(s, NULL, 10);
    return 0;
  }
  if (is_digits(s) || list_parse_duration(s, &seconds) ||
      seconds > now_ms / 1000)
    return -1;
  *out = now_ms - seconds * 1000;
  return 0;
}

/* A non-negative integer parameter no larger than `max`; -1 if bad. */
static long parse_count(const char *s, long max)
{
  if (!is_digits(s) || strlen(s) > 9 || strtol(s, NULL, 10) > max)
    return -1;
  return strtol(s, NULL, 10);
}

/* ---- /api/calls ------------------------------------------------------ */

/* A checked integer parameter, or `def` when absent. */
static int query_int(const struct httpd_request *rq, const char *name, int def)
{
  const char *v = httpd_query(rq, name);

  return v ? atoi(v) : def;
}

static void on_calls(void *arg, int rc, const struct call *calls, size_t n,
                     int more)
{
  struct httpd_request *rq = arg;
  json_t *list;

  if (rc) {
    httpd_respond_error(rq, HTTP_SERVICE_UNAVAILABLE,
                        "the store could not be read");
    return;
  }
  list = json_array();
  for (size_t i = 0; list && i < n; i++)
    if (json_array_append_new(list, call_to_json(&calls[i]))) {
      json_decref(list);
      list = NULL;
    }
  /* limit and offset were checked when the query was made, and the
   * request still carries them (a request whose client left has no
   * parameters, but its answer goes nowhere). */
  respond_json(rq, HTTP_OK,
               list ? json_pack("{s:o, s:i, s:i, s:b}", "calls", list, "limit",
                                query_int(rq, "limit", PAGE_DEFAULT), "offset",
                                query_int(rq, "offset", 0), "more", more)
                    : NULL);
}

static void get_calls(const struct api_context *ctx, struct httpd_request *rq)
{
  const char *since = httpd_query(rq, "since");
  const char *decision = httpd_query(rq, "decision");
  const char *caller = httpd_query(rq, "caller");
  const char *limit = httpd_query(rq, "limit");
  const char *offset = httpd_query(rq, "offset");
  struct store_query q = {.limit = PAGE_DEFAULT};
  char number[CALL_NUMBER_SIZE];
  long off = 0;
  long n;
  int rc;

  if (since && parse_since(since, loop_wall_ms(ctx->loop), &q.since_ms)) {
    httpd_respond_error(rq, HTTP_BAD_REQUEST,
                        "since must be Unix ms or a duration such as 12h");
    return;
  }
  if (decision && call_decision_parse(decision) <= CALL_DECISION_NONE) {
    httpd_respond_error(rq, HTTP_BAD_REQUEST,
                        "decision must be allow, challenge or block");
    return;
  }
  q.decision = decision;
  if (caller) {
    if (phone_normalise(caller, ctx->cfg->screening.default_country, number) !=
        PHONE_OK) {
      httpd_respond_error(rq, HTTP_BAD_REQUEST,
                          "caller is not a phone number");
      return;
    }
    q.caller = number;
  }
  if (limit) {
    n = parse_count(limit, STORE_PAGE_MAX);
    if (n < 1) {
      httpd_respond_error(rq, HTTP_BAD_REQUEST,
                          "limit must be a number from 1 to 500");
      return;
    }
    q.limit = (unsigned)n;
  }
  if (offset && (off = parse_count(offset, 1000000)) < 0) {
    httpd_respond_error(rq, HTTP_BAD_REQUEST,
                        "offset must be a number from 0 to 1000000");
    return;
  }
  rc = store_calls_query(ctx->store, &q, (unsigned)off, on_calls, rq);
  if (rc)
    httpd_respond_error(rq, HTTP_SERVICE_UNAVAILABLE,
                        "the store is busy; try again");
}

/*
 * A call and its trace as steps: "normalise:ok allowlist:- score:742>=600"
 * becomes [{step, outcome, decisive}], the decisive one being the entry
 * that is the call's reason.
 */
static json_t *call_detail(const struct call *c)
{
  json_t *steps = json_array();
  char trace[sizeof(c->trace)];
  char *save = NULL;

  memcpy(trace, c->trace, sizeof(trace));
  for (char *tok = strtok_r(trace, " ", &save); steps && tok;
       tok = strtok_r(NULL, " ", &save)) {
    char *colon = strchr(tok, ':');
    int decisive = strcmp(tok, c->reason) == 0;

    if (colon)
      *colon = '\0';
    if (json_array_append_new(
            steps, json_pack("{s:s, s:s, s:b}", "step", tok, "outcome",
                             colon ? colon + 1 : "", "decisive", decisive))) {
      json_decref(steps);
      steps = NULL;
    }
  }
  return steps
             ? json_pack("{s:o, s:o}", "call", call_to_json(c), "steps", steps)
             : NULL;
}

static void on_call_loaded(void *arg, int rc, const struct call *c)
{
  struct httpd_request *rq = arg;

  if (rc == VS_ERR_NOTFOUND)
    httpd_respond_error(rq, HTTP_NOT_FOUND, "no such call");
  else if (rc)
    httpd_respond_error(rq, HTTP_SERVICE_UNAVAILABLE,
                        "the store could not be read");
  else
    respond_json(rq, HTTP_OK, call_detail(c));
}

static void get_call(const struct api_context *ctx, struct httpd_request *rq,
                     const char *ref)
{
  const struct call *c = store_call_find(ctx->store, ref);

  if (c) {
    respond_json(rq, HTTP_OK, call_detail(c));
    return;
  }
  if (!*ref || strlen(ref) >= CALL_REF_SIZE) {
    httpd_respond_error(rq, HTTP_NOT_FOUND, "no such call");
    return;
  }
  if (store_call_load(ctx->store, ref, on_call_loaded, rq))
    httpd_respond_error(rq, HTTP_SERVICE_UNAVAILABLE,
                        "the store is busy; try again");
}

/* ---- /api/stats ------------------------------------------------------ */

/* {"allow": n, "challenge": n, "block": n} of counts by call_decision. */
static json_t *by_decision(const uint64_t counts[4])
{
  return json_pack("{s:I, s:I, s:I}", "allow",
                   (json_int_t)counts[CALL_DECISION_ALLOW], "challenge",
                   (json_int_t)counts[CALL_DECISION_CHALLENGE], "block",
                   (json_int_t)counts[CALL_DECISION_BLOCK]);
}

static json_t *stats_json(const struct store_call_stats *s)
{
  json_t *by_step = json_object();
  json_t *hist = json_array();
  json_t *hourly = json_array();
  json_t *out = NULL;
  int ok = by_step && hist && hourly;

  for (size_t i = 0; ok && i < STORE_STATS_STEPS && s->steps[i].name[0]; i++)
    ok = !json_object_set_new(by_step, s->steps[i].name,
                              json_integer((json_int_t)s->steps[i].count));
  for (int i = 0; ok && i < 10; i++)
    ok = !json_array_append_new(
        hist, json_pack("{s:i, s:i, s:I}", "from", i * 100, "to",
                        i == 9 ? 1000 : i * 100 + 99, "count",
                        (json_int_t)s->score_buckets[i]));
  for (size_t h = 0; ok && h < s->hours; h++) {
    json_t *hour = by_decision(s->hourly[h]);

    ok = hour &&
         !json_object_set_new(
             hour, "hour_ms",
             json_integer((json_int_t)(s->since_ms + (int64_t)h * 3600000))) &&
         !json_array_append_new(hourly, hour);
  }
  if (ok)
    out = json_pack("{s:I, s:I, s:I, s:o, s:O, s:f, s:{s:I, s:I}, s:O, s:O}",
                    "since_ms", (json_int_t)s->since_ms, "now_ms",
                    (json_int_t)s->now_ms, "total", (json_int_t)s->total,
                    "by_decision", by_decision(s->by_decision), "by_step",
                    by_step, "block_rate",
                    s->total ? (double)s->by_decision[CALL_DECISION_BLOCK] /
                                   (double)s->total
                             : 0.0,
                    "challenges", "passed", (json_int_t)s->challenges_passed,
                    "failed", (json_int_t)s->challenges_failed,
                    "score_histogram", hist, "hourly", hourly);
  json_decref(by_step);
  json_decref(hist);
  json_decref(hourly);
  return out;
}

static void on_stats(void *arg, int rc, const struct store_call_stats *s)
{
  struct httpd_request *rq = arg;

  if (rc)
    httpd_respond_error(rq, HTTP_SERVICE_UNAVAILABLE,
                        "the store could not be read");
  else
    respond_json(rq, HTTP_OK, stats_json(s));
}

static void get_stats(const struct api_context *ctx, struct httpd_request *rq)
{
  const char *since = httpd_query(rq, "since");
  int64_t now = loop_wall_ms(ctx->loop);
  int64_t since_ms = now - (int64_t)STATS_DEFAULT_SINCE_S * 1000;

  if (since && (parse_since(since, now, &since_ms) || since_ms > now)) {
    httpd_respond_error(rq, HTTP_BAD_REQUEST,
                        "since must be Unix ms in the past or a duration "
                        "such as 12h");
    return;
  }
  if (store_call_stats(ctx->store, since_ms, now, on_stats, rq))
    httpd_respond_error(rq, HTTP_SERVICE_UNAVAILABLE,
                        "the store is busy; try again");
}

/* ---- /api/lists ------------------------------------------------------ */

struct entries {
  struct list_entry *v;
  size_t n, cap;
  int failed;
};

static int collect_entry(void *arg, const struct list_entry *e)
{
  struct entries *es = arg;

  if (es->n == es->cap) {
    size_t cap = es->cap ? es->cap * 2 : 64;
    struct list_entry *v = realloc(es->v, cap * sizeof(*v));

    if (!v) {
      es->failed = 1;
      return 1;
    }
    es->v = v;
    es->cap = cap;
  }
  es->v[es->n++] = *e;
  return 0;
}

static int by_kind_then_entry(const void *a, const void *b)
{
  const struct list_entry *x = a;
  const struct list_entry *y = b;

  if (x->kind != y->kind)
    return x->kind < y->kind ? -1 : 1;
  return strcmp(x->entry, y->entry);
}

static void get_lists(const struct api_context *ctx, struct httpd_request *rq)
{
  struct entries es = {0};
  json_t *list = json_array();

  screening_lists_each(ctx->screening, collect_entry, &es);
  if (es.n)
    qsort(es.v, es.n, sizeof(*es.v), by_kind_then_entry);
  for (size_t i = 0; list && i < es.n; i++)
    if (json_array_append_new(list, list_entry_to_json(&es.v[i]))) {
      json_decref(list);
      list = NULL;
    }
  free(es.v);
  if (es.failed) {
    json_decref(list);
    list = NULL;
  }
  respond_json(rq, HTTP_OK, list ? json_pack("{s:o}", "entries", list) : NULL);
}

static void post_list(const struct api_context *ctx, struct httpd_request *rq)
{
  struct list_entry e = {0};
  const char *kind = NULL;
  const char *entry = NULL;
  const char *note = "";
  json_int_t expires_in = 0;
  json_error_t jerr;
  size_t len;
  const char *body = httpd_body(rq, &len);
  json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  char why[160];
  int k;
  int rc;

  if (!root || json_unpack_ex(root, &jerr, 0, "{s:s, s:s, s?s, s?I}", "kind",
                              &kind, "entry", &entry, "note", &note,
                              "expires_in_s", &expires_in)) {
    snprintf(why, sizeof(why),
             "body must be {\"kind\", \"entry\", "
             "\"note\", \"expires_in_s\"}: %.100s",
             jerr.text);
    json_decref(root);
    httpd_respond_error(rq, HTTP_BAD_REQUEST, why);
    return;
  }
  k = list_kind_parse(kind);
  if (k < 0 || expires_in < 0 || expires_in > 10LL * 365 * 24 * 3600 ||
      strlen(note) >= sizeof(e.note)) {
    json_decref(root);
    httpd_respond_error(
        rq, HTTP_BAD_REQUEST,
        k < 0 ? "kind must be allow or block"
        : strlen(note) >= sizeof(e.note)
            ? "note is longer than 127 bytes"
            : "expires_in_s must be from 0 (never) to ten years");
    return;
  }
  e.kind = (enum list_kind)k;
  rc = list_entry_normalise(entry, ctx->cfg->screening.default_country,
                            e.entry, why, sizeof(why));
  CALL_SET(e.note, note);
  json_decref(root);
  if (rc) {
    httpd_respond_error(rq, HTTP_BAD_REQUEST, why);
    return;
  }
  CALL_SET(e.source, "api");
  e.created_ms = loop_wall_ms(ctx->loop);
  e.expires_ms = expires_in ? e.created_ms + expires_in * 1000 : 0;
  rc = screening_list_put(ctx->screening, &e);
  if (rc) {
    httpd_respond_error(
        rq, rc == VS_ERR_INVAL ? HTTP_BAD_REQUEST : HTTP_SERVICE_UNAVAILABLE,
        rc == VS_ERR_INVAL ? "not a valid list entry"
                           : "the entry could not be saved");
    return;
  }
  respond_json(rq, HTTP_CREATED, list_entry_to_json(&e));
}

/* DELETE /api/lists/{kind}/{entry}; `rest` is "{kind}/{entry}". */
static void delete_list(const struct api_context *ctx,
                        struct httpd_request *rq, const char *rest)
{
  const char *slash = strchr(rest, '/');
  char kind[16];
  char entry[LIST_ENTRY_SIZE];
  char why[160];
  int k = -1;

  if (slash && (size_t)(slash - rest) < sizeof(kind)) {
    memcpy(kind, rest, (size_t)(slash - rest));
    kind[slash - rest] = '\0';
    k = list_kind_parse(kind);
  }
  if (k < 0) {
    httpd_respond_error(
        rq, HTTP_NOT_FOUND,
        "use /api/lists/allow/ENTRY or /api/lists/block/ENTRY");
    return;
  }
  if (list_entry_normalise(slash + 1, ctx->cfg->screening.default_country,
                           entry, why, sizeof(why))) {
    httpd_respond_error(rq, HTTP_BAD_REQUEST, why);
    return;
  }
  if (screening_list_remove(ctx->screening, (enum list_kind)k, entry))
    httpd_respond_error(rq, HTTP_NOT_FOUND, "no such entry");
  else
    httpd_respond(rq, HTTP_NO_CONTENT, NULL, NULL, 0);
}

/* ---- /api/numbers/{number} ------------------------------------------- */

static void on_forgotten(void *arg, int rc,
                         const struct store_forget_counts *c)
{
  struct httpd_request *rq = arg;

  if (rc)
    httpd_respond_error(rq, HTTP_SERVICE_UNAVAILABLE,
                        "the store could not delete the records");
  else
    respond_json(rq, HTTP_OK,
                 json_pack("{s:I, s:I, s:I}", "calls", (json_int_t)c->calls,
                           "list_entries", (json_int_t)c->list_entries,
                           "numbers", (json_int_t)c->numbers));
}

/* DELETE: forgets a caller (voice-and-score forget). */
static void delete_number(const struct api_context *ctx,
                          struct httpd_request *rq, const char *raw)
{
  char number[CALL_NUMBER_SIZE];

  if (phone_normalise(raw, ctx->cfg->screening.default_country, number) !=
      PHONE_OK) {
    httpd_respond_error(rq, HTTP_BAD_REQUEST, "not a phone number");
    return;
  }
  if (screening_forget(ctx->screening, number, on_forgotten, rq))
    httpd_respond_error(rq, HTTP_SERVICE_UNAVAILABLE,
                        "the store is busy; try again");
}

/* ---- routing --------------------------------------------------------- */

void api_handle(const struct api_context *ctx, struct httpd_request *rq)
{
  const char *path = httpd_path(rq) + 4; /* after "/api" */
  const char *method = httpd_method(rq);
  int get = strcmp(method, "GET") == 0;

  if (strcmp(path, "/calls") == 0 && get)
    get_calls(ctx, rq);
  else if (strncmp(path, "/calls/", 7) == 0 && get)
    get_call(ctx, rq, path + 7);
  else if (strcmp(path, "/stats") == 0 && get)
    get_stats(ctx, rq);
  else if (strcmp(path, "/lists") == 0 && get)
    get_lists(ctx, rq);
  else if (strcmp(path, "/lists") == 0 && strcmp(method, "POST") == 0)
    post_list(ctx, rq);
  else if (strncmp(path, "/lists/", 7) == 0 && strcmp(method, "DELETE") == 0)
    delete_list(ctx, rq, path + 7);
  else if (strncmp(path, "/numbers/", 9) == 0 && strcmp(method, "DELETE") == 0)
    delete_number(ctx, rq, path + 9);
  else
    httpd_respond_error(rq, HTTP_NOT_FOUND, "no such API path or method");
}
