#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../util/buf.h"
#include "../util/err.h"
#include "../util/json_scan.h"
#include "voice.h"

static const struct {
  const char *name;
  enum voice_event_type type;
} event_names[] = {
    {"incoming_call", VOICE_EVENT_INCOMING_CALL},
    {"speak_completed", VOICE_EVENT_SPEAK_COMPLETED},
    {"play_completed", VOICE_EVENT_PLAY_COMPLETED},
    {"dial_completed", VOICE_EVENT_DIAL_COMPLETED},
    {"call_leg_completed", VOICE_EVENT_CALL_LEG_COMPLETED},
    {"call_completed", VOICE_EVENT_CALL_COMPLETED},
};

/* Appends a string literal, its length counted by the compiler. */
#define PUT(b, lit) buf_append((b), (lit), sizeof(lit) - 1)

/* Longer than any action: messages are at most 1,000 bytes, escaped. */
#define VOICE_ACTION_MAX (16 * 1024)

/*
 * The length of the valid UTF-8 sequence starting at `p` (a byte of 0x80 or
 * more), or 0 when it is not one: overlong forms, surrogates and code
 * points past U+10FFFF are refused, as RFC 3629 says.
 */
static size_t utf8_sequence(const unsigned char *p)
{
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    return (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (p[0] >= 0xe0 && p[0] <= 0xef) {
    unsigned char lo = p[0] == 0xe0 ? 0xa0 : 0x80;
    unsigned char hi = p[0] == 0xed ? 0x9f : 0xbf;

    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (p[0] >= 0xf0 && p[0] <= 0xf4) {
    unsigned char lo = p[0] == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = p[0] == 0xf4 ? 0x8f : 0xbf;

    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
                   (p[3] & 0xc0) == 0x80
               ? 4
               : 0;
  }
  return 0;
}

static const char *const action_methods[] = {"hangup", "speak", "play",
                                             "dial"};

/*
 * Copies an optional string-or-integer member of `obj` into `out`. TeleSign
 * documents these as strings, but an integer phone number is unambiguous,
 * so it is accepted rather than turned into a failed call. Returns 1 if the
 * member was present, 0 if absent or null, and VS_ERR_INVAL for any other
 * type or a value that does not fit.
 */
static int copy_text(const struct json_scan *js, int obj, const char *key,
                     char *out, size_t size, char *err, size_t errlen,
                     const char *where)
{
  int v = json_scan_member(js, obj, key);
  int n;

  out[0] = '\0';
  if (v < 0 || js->nodes[v].kind == JSON_SCAN_NULL)
    return 0;
  if (js->nodes[v].kind == JSON_SCAN_STRING) {
    /* The reader refuses \u0000, so the text has no NUL inside. */
    if ((size_t)json_scan_string(js, v, out, size) >= size)
      return vs_fail(err, errlen, VS_ERR_INVAL,
                     "%s%s is longer than %zu characters", where, key,
                     size - 1);
    return 1;
  }
  if (js->nodes[v].kind == JSON_SCAN_INTEGER) {
    n = snprintf(out, size, "%lld", js->nodes[v].integer);
    if (n < 0 || (size_t)n >= size)
      return vs_fail(err, errlen, VS_ERR_INVAL, "%s%s is too long", where,
                     key);
    return 1;
  }
  return vs_fail(err, errlen, VS_ERR_INVAL, "%s%s must be a string", where,
                 key);
}

/* A non-empty string member, or 0. */
static int nonempty_string(const struct json_scan *js, int obj,
                           const char *key)
{
  int v = json_scan_member(js, obj, key);

  return v >= 0 && js->nodes[v].kind == JSON_SCAN_STRING &&
         js->nodes[v].text_len > 0;
}

/* "invalid JSON at line L column C: why", for the byte at `at`. */
static int json_error(const char *body, size_t at, const char *why, char *err,
                      size_t errlen)
{
  size_t line = 1, col = 1;

  for (size_t i = 0; i < at; i++) {
    if (body[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  return vs_fail(err, errlen, VS_ERR_INVAL,
                 "invalid JSON at line %zu column %zu: %s", line, col, why);
}

/*
 * Parsed with json_scan rather than jansson: a tree of allocated nodes
 * per event was about a tenth of a cache-hit call's instructions
 * (bench/README.md). Every object is checked for duplicate member names
 * down to the members of `data`, the deepest the event is read.
 */
int voice_event_parse(const char *body, size_t len, struct voice_event *ev,
                      char *err, size_t errlen)
{
  /* About 14 KiB: on the loop thread's stack, which has room to spare. */
  struct json_scan js;
  const char *why = NULL;
  int data, dup, v;
  int rc;

  memset(ev, 0, sizeof(*ev));
  ev->duration_s = -1;
  rc = json_scan_parse(&js, body, len);
  if (rc == VS_ERR_LIMIT)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "the event has more than %d values or is nested deeper "
                   "than %d",
                   JSON_SCAN_MAX_NODES, JSON_SCAN_MAX_DEPTH);
  if (rc)
    return json_error(body, js.error_at,
                      js.error_at >= len ? "unexpected end of input"
                                         : "unexpected character",
                      err, errlen);
  if (js.nodes[0].kind != JSON_SCAN_OBJECT) {
    if (js.nodes[0].kind != JSON_SCAN_ARRAY)
      return json_error(body, (size_t)(js.nodes[0].text - body),
                        "'[' or '{' expected", err, errlen);
    why = "the event must be a JSON object";
    goto invalid;
  }
  dup = json_scan_duplicate(&js);
  if (dup >= 0)
    return json_error(body, (size_t)(js.nodes[dup].key - body),
                      "duplicate object key", err, errlen);
  if (!nonempty_string(&js, 0, "event")) {
    why = "event is missing or not a string";
    goto invalid;
  }
  rc = copy_text(&js, 0, "event", ev->name, sizeof(ev->name), err, errlen, "");
  if (rc < 0)
    return rc;
  for (size_t i = 0; i < sizeof(event_names) / sizeof(event_names[0]); i++)
    if (strcmp(ev->name, event_names[i].name) == 0)
      ev->type = event_names[i].type;

  if (!nonempty_string(&js, 0, "reference_id")) {
    why = "reference_id is missing or not a string";
    goto invalid;
  }
  rc = copy_text(&js, 0, "reference_id", ev->ref, sizeof(ev->ref), err, errlen,
                 "");
  if (rc < 0)
    return rc;

  data = json_scan_member(&js, 0, "data");
  if (data < 0 || js.nodes[data].kind == JSON_SCAN_NULL)
    return VS_OK;
  if (js.nodes[data].kind != JSON_SCAN_OBJECT) {
    why = "data must be an object";
    goto invalid;
  }
  if ((rc = copy_text(&js, data, "from", ev->from, sizeof(ev->from), err,
                      errlen, "data.")) < 0 ||
      (rc = copy_text(&js, data, "to", ev->to, sizeof(ev->to), err, errlen,
                      "data.")) < 0 ||
      (rc = copy_text(&js, data, "status", ev->status, sizeof(ev->status), err,
                      errlen, "data.")) < 0 ||
      (rc = copy_text(&js, data, "collected_digits", ev->digits,
                      sizeof(ev->digits), err, errlen, "data.")) < 0)
    return rc;
  ev->has_digits = rc;
  v = json_scan_member(&js, data, "duration");
  if (v >= 0 && js.nodes[v].kind == JSON_SCAN_INTEGER &&
      js.nodes[v].integer >= 0 && js.nodes[v].integer <= INT32_MAX)
    ev->duration_s = (int32_t)js.nodes[v].integer;
  return VS_OK;
invalid:
  return vs_fail(err, errlen, VS_ERR_INVAL, "%s", why);
}

const char *voice_action_method(enum voice_action_kind k)
{
  return (size_t)k < sizeof(action_methods) / sizeof(action_methods[0])
             ? action_methods[k]
             : "hangup";
}

/*
 * Appends `str` as a JSON string. Messages come from the configuration and
 * numbers from events, so the text is escaped here rather than trusted:
 * quotes, backslashes and control characters are escaped, and a byte that
 * does not belong to valid UTF-8 becomes U+FFFD, so the answer is always
 * valid JSON.
 */
static int put_string(struct buf *b, const char *str)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)(str ? str : "");
  int rc = PUT(b, "\"");

  while (!rc && *p) {
    const unsigned char *run = p;
    size_t len;

    /* Copy the longest run that needs no escaping in one append. */
    while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
      p++;
    if (p > run && (rc = buf_append(b, run, (size_t)(p - run))))
      break;
    if (!*p)
      break;
    if (*p == '"' || *p == '\\') {
      char esc[2] = {'\\', (char)*p++};

      rc = buf_append(b, esc, 2);
    } else if (*p < 0x20) {
      /* The short forms where JSON has them, as jansson writes them. */
      static const char shorts[] = "\b\t\n\f\r";
      static const char letters[] = "btnfr";
      const char *at = strchr(shorts, *p);
      char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};

      if (at) {
        esc[1] = letters[at - shorts];
        rc = buf_append(b, esc, 2);
      } else {
        rc = buf_append(b, esc, 6);
      }
      p++;
    } else if ((len = utf8_sequence(p)) != 0) {
      rc = buf_append(b, p, len);
      p += len;
    } else {
      rc = PUT(b, "\xef\xbf\xbd"); /* U+FFFD */
      p++;
    }
  }
  return rc ? rc : PUT(b, "\"");
}

/* Appends `v` in decimal. */
static int put_uint(struct buf *b, unsigned v)
{
  char digits[16];
  char *d = digits + sizeof(digits);

  /* The digits come last first. */
  do
    *--d = (char)('0' + v % 10);
  while (v /= 10);
  return buf_append(b, d, (size_t)(digits + sizeof(digits) - d));
}

/*
 * Renders the action by hand: it is on the path of every answer, where
 * building and dumping a jansson tree cost a sixth of the loop's time.
 */
char *voice_action_render(const struct voice_action *a)
{
  struct buf b;

  const char *method = voice_action_method(a->kind);
  int rc;

  buf_init(&b, VOICE_ACTION_MAX);
  rc = PUT(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"");
  if (!rc)
    rc = buf_append(&b, method, strlen(method));
  if (!rc)
    rc = PUT(&b, "\",\"params\":{");
  switch (a->kind) {
  case VOICE_ACTION_SPEAK:
    if (!rc)
      rc = PUT(&b, "\"tts\":{\"message\":");
    if (!rc)
      rc = put_string(&b, a->message);
    if (!rc)
      rc = PUT(&b, ",\"language\":");
    if (!rc)
      rc = put_string(&b, a->language);
    if (!rc)
      rc = PUT(&b, "}");
    break;
  case VOICE_ACTION_PLAY:
    if (!rc)
      rc = PUT(&b, "\"url\":");
    if (!rc)
      rc = put_string(&b, a->url);
    break;
  case VOICE_ACTION_DIAL:
    if (!rc)
      rc = PUT(&b, "\"to\":");
    if (!rc)
      rc = put_string(&b, a->to);
    if (!rc)
      rc = PUT(&b, ",\"caller_id_number\":");
    if (!rc)
      rc = put_string(&b, a->caller_id);
    break;
  case VOICE_ACTION_HANGUP:
    break;
  }
  if (!rc && a->collect_max &&
      (a->kind == VOICE_ACTION_SPEAK || a->kind == VOICE_ACTION_PLAY)) {
    rc = PUT(&b, ",\"collect_digits\":{\"max\":");
    if (!rc)
      rc = put_uint(&b, a->collect_max);
    if (!rc)
      rc = PUT(&b, "}");
  }
  if (!rc)
    rc = PUT(&b, "}}");
  if (rc) {
    buf_free(&b);
    return NULL;
  }
  return buf_detach(&b);
}

static void copy_opt(json_t *obj, const char *key, char *out, size_t size)
{
  const char *s = json_string_value(json_object_get(obj, key));

  snprintf(out, size, "%s", s ? s : "");
}

int voice_action_parse(const char *body, size_t len,
                       struct voice_action_parsed *out, char *err,
                       size_t errlen)
{
  json_error_t jerr;
  json_t *root;
  json_t *params;
  json_t *collect;
  const char *method;
  int rc = VS_ERR_PROTO;

  memset(out, 0, sizeof(*out));
  root = json_loadb(body, len, 0, &jerr);
  if (!root)
    return vs_fail(err, errlen, VS_ERR_PROTO, "answer is not JSON: %s",
                   jerr.text);
  if (json_is_object(root) && json_object_size(root) == 0) {
    rc = VS_ERR_NOTFOUND;
    goto out;
  }
  method = json_string_value(json_object_get(root, "method"));
  params = json_object_get(root, "params");
  if (!method || !json_is_object(params)) {
    vs_fail(err, errlen, rc, "answer has no method and params");
    goto out;
  }
  for (size_t i = 0; i < sizeof(action_methods) / sizeof(action_methods[0]);
       i++)
    if (strcmp(method, action_methods[i]) == 0) {
      out->kind = (enum voice_action_kind)i;
      rc = VS_OK;
    }
  if (rc) {
    vs_fail(err, errlen, rc, "unknown method '%s'", method);
    goto out;
  }
  copy_opt(json_object_get(params, "tts"), "message", out->message,
           sizeof(out->message));
  copy_opt(json_object_get(params, "tts"), "language", out->language,
           sizeof(out->language));
  copy_opt(params, "url", out->url, sizeof(out->url));
  copy_opt(params, "to", out->to, sizeof(out->to));
  copy_opt(params, "caller_id_number", out->caller_id, sizeof(out->caller_id));
  collect = json_object_get(params, "collect_digits");
  if (json_is_integer(json_object_get(collect, "max")))
    out->collect_max =
        (unsigned)json_integer_value(json_object_get(collect, "max"));
out:
  json_decref(root);
  return rc;
}
