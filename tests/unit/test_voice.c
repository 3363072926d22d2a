/*
 * Unit tests for telesign/voice: event parsing (every event, the opaque
 * reference_id, string-or-integer numbers, collected_digits present or
 * absent, and a table of malformed bodies that must each be refused with a
 * readable reason), action rendering to exact JSON-RPC strings, and action
 * parsing, including the round trip render -> parse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/telesign/voice.h"
#include "../../src/util/err.h"

#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))

#define REF32 "9F1C2E7A4B3D4E5F8A9B0C1D2E3F4A5B"
#define UUID  "534e1848-235f-482d-983d-e3e11a04f58a"

/* 64 and 65 characters: the reference_id ceiling and one past it. */
#define REF64                                                                 \
  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define REF65 REF64 "0"

/* 47 and 48 characters: the event name ceiling and one past it. */
#define NAME47 "an_event_name_that_is_exactly_47_characters_xyz"
#define NAME48 NAME47 "z"

/* 64 and 65 digits: the from/to ceiling and one past it. */
#define NUM64                                                                 \
  "1555555012345678901234567890123456789012345678901234567890123456"
#define NUM65 NUM64 "7"

/* 32 and 33 digits: the collected_digits ceiling and one past it. */
#define DIG32 "12345678901234567890123456789012"
#define DIG33 DIG32 "3"

/* 31 and 32 characters: the status ceiling and one past it. */
#define ST31 "status_that_is_31_characters_xy"
#define ST32 ST31 "z"

/* ---- event parsing: valid bodies ---------------------------------- */

struct event_case {
  const char *name;
  const char *body;
  enum voice_event_type type;
  const char *event; /* ev.name */
  const char *ref;
  const char *from;
  const char *to;
  int has_digits;
  const char *digits;
  const char *status;
  int32_t duration_s;
};

static const struct event_case event_cases[] = {
    {"incoming_call (reference example)",
     "{\"event\":\"incoming_call\",\"reference_id\":\"" REF32 "\","
     "\"data\":{\"to\":\"15555550100\",\"from\":\"15555550123\"}}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", REF32, "15555550123",
     "15555550100", 0, "", "", -1},
    {"speak_completed with a digit",
     "{\"event\":\"speak_completed\",\"reference_id\":\"" REF32 "\","
     "\"data\":{\"status\":\"speak_successful\",\"collected_digits\":\"1\"}}",
     VOICE_EVENT_SPEAK_COMPLETED, "speak_completed", REF32, "", "", 1, "1",
     "speak_successful", -1},
    {"speak_completed, collected_digits empty",
     "{\"event\":\"speak_completed\",\"reference_id\":\"r\","
     "\"data\":{\"status\":\"speak_successful\",\"collected_digits\":\"\"}}",
     VOICE_EVENT_SPEAK_COMPLETED, "speak_completed", "r", "", "", 1, "",
     "speak_successful", -1},
    {"speak_completed, collected_digits absent",
     "{\"event\":\"speak_completed\",\"reference_id\":\"r\","
     "\"data\":{\"status\":\"speak_successful\"}}",
     VOICE_EVENT_SPEAK_COMPLETED, "speak_completed", "r", "", "", 0, "",
     "speak_successful", -1},
    {"speak_completed, collected_digits null",
     "{\"event\":\"speak_completed\",\"reference_id\":\"r\","
     "\"data\":{\"collected_digits\":null}}",
     VOICE_EVENT_SPEAK_COMPLETED, "speak_completed", "r", "", "", 0, "", "",
     -1},
    {"speak_completed, collected_digits as an integer",
     "{\"event\":\"speak_completed\",\"reference_id\":\"r\","
     "\"data\":{\"collected_digits\":12}}",
     VOICE_EVENT_SPEAK_COMPLETED, "speak_completed", "r", "", "", 1, "12", "",
     -1},
    {"speak_completed, 32 digits",
     "{\"event\":\"speak_completed\",\"reference_id\":\"r\","
     "\"data\":{\"collected_digits\":\"" DIG32 "\"}}",
     VOICE_EVENT_SPEAK_COMPLETED, "speak_completed", "r", "", "", 1, DIG32, "",
     -1},
    {"play_completed with digits",
     "{\"event\":\"play_completed\",\"reference_id\":\"r\","
     "\"data\":{\"status\":\"play_successful\",\"collected_digits\":\"#\"}}",
     VOICE_EVENT_PLAY_COMPLETED, "play_completed", "r", "", "", 1, "#",
     "play_successful", -1},
    {"play_completed, collected_digits empty",
     "{\"event\":\"play_completed\",\"reference_id\":\"r\","
     "\"data\":{\"collected_digits\":\"\"}}",
     VOICE_EVENT_PLAY_COMPLETED, "play_completed", "r", "", "", 1, "", "", -1},
    {"dial_completed answered",
     "{\"event\":\"dial_completed\",\"reference_id\":\"" REF32 "\","
     "\"data\":{\"to\":\"15555550199\",\"from\":\"15555550100\","
     "\"status\":\"answered\"}}",
     VOICE_EVENT_DIAL_COMPLETED, "dial_completed", REF32, "15555550100",
     "15555550199", 0, "", "answered", -1},
    {"call_leg_completed",
     "{\"event\":\"call_leg_completed\",\"reference_id\":\"r\","
     "\"data\":{\"to\":\"15555550199\",\"from\":\"15555550100\"}}",
     VOICE_EVENT_CALL_LEG_COMPLETED, "call_leg_completed", "r", "15555550100",
     "15555550199", 0, "", "", -1},
    {"call_completed (reference example)",
     "{\"event\":\"call_completed\",\"reference_id\":\"" REF32 "\","
     "\"data\":{\"duration\":42,"
     "\"created_on_utc\":\"2025-01-06T15:04:05.120\","
     "\"answered_on_utc\":\"2025-01-06T15:04:07.010\","
     "\"ended_on_utc\":\"2025-01-06T15:04:49.300\","
     "\"status\":\"hangup\",\"audio_recording_file_name\":null,"
     "\"to\":\"15555550100\",\"from\":\"15555550123\","
     "\"direction\":\"inbound\"}}",
     VOICE_EVENT_CALL_COMPLETED, "call_completed", REF32, "15555550123",
     "15555550100", 0, "", "hangup", 42},
    {"call_completed, zero duration",
     "{\"event\":\"call_completed\",\"reference_id\":\"r\","
     "\"data\":{\"duration\":0}}",
     VOICE_EVENT_CALL_COMPLETED, "call_completed", "r", "", "", 0, "", "", 0},
    {"call_completed, negative duration is ignored",
     "{\"event\":\"call_completed\",\"reference_id\":\"r\","
     "\"data\":{\"duration\":-5}}",
     VOICE_EVENT_CALL_COMPLETED, "call_completed", "r", "", "", 0, "", "", -1},
    {"call_completed, duration past int32 is ignored",
     "{\"event\":\"call_completed\",\"reference_id\":\"r\","
     "\"data\":{\"duration\":2147483648}}",
     VOICE_EVENT_CALL_COMPLETED, "call_completed", "r", "", "", 0, "", "", -1},
    {"call_completed, duration at int32 max",
     "{\"event\":\"call_completed\",\"reference_id\":\"r\","
     "\"data\":{\"duration\":2147483647}}",
     VOICE_EVENT_CALL_COMPLETED, "call_completed", "r", "", "", 0, "", "",
     2147483647},
    {"unknown event is kept as OTHER",
     "{\"event\":\"send_dtmf_completed\",\"reference_id\":\"r\","
     "\"data\":{\"status\":\"ok\"}}",
     VOICE_EVENT_OTHER, "send_dtmf_completed", "r", "", "", 0, "", "ok", -1},
    {"event names are case-sensitive",
     "{\"event\":\"Incoming_Call\",\"reference_id\":\"r\"}", VOICE_EVENT_OTHER,
     "Incoming_Call", "r", "", "", 0, "", "", -1},
    {"event name of 47 characters",
     "{\"event\":\"" NAME47 "\",\"reference_id\":\"r\"}", VOICE_EVENT_OTHER,
     NAME47, "r", "", "", 0, "", "", -1},
    {"reference_id as a dashed UUID",
     "{\"event\":\"incoming_call\",\"reference_id\":\"" UUID "\","
     "\"data\":{\"from\":\"15555550123\"}}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", UUID, "15555550123", "", 0,
     "", "", -1},
    {"reference_id of 64 characters",
     "{\"event\":\"incoming_call\",\"reference_id\":\"" REF64 "\"}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", REF64, "", "", 0, "", "", -1},
    {"reference_id is opaque",
     "{\"event\":\"incoming_call\",\"reference_id\":\"a b/c?d\\\"e\"}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "a b/c?d\"e", "", "", 0, "",
     "", -1},
    {"from and to as integers",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":15555550123,\"to\":15555550100}}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", "15555550123",
     "15555550100", 0, "", "", -1},
    {"from kept as sent",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":\"+1 (555) 555-0123\",\"to\":\"anonymous\"}}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", "+1 (555) 555-0123",
     "anonymous", 0, "", "", -1},
    {"from and to of 64 characters",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":\"" NUM64 "\",\"to\":\"" NUM64 "\"}}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", NUM64, NUM64, 0, "", "",
     -1},
    {"from and to null",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":null,\"to\":null}}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", "", "", 0, "", "", -1},
    {"status of 31 characters",
     "{\"event\":\"dial_completed\",\"reference_id\":\"r\","
     "\"data\":{\"status\":\"" ST31 "\"}}",
     VOICE_EVENT_DIAL_COMPLETED, "dial_completed", "r", "", "", 0, "", ST31,
     -1},
    {"no data", "{\"event\":\"incoming_call\",\"reference_id\":\"r\"}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", "", "", 0, "", "", -1},
    {"data null",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\",\"data\":null}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", "", "", 0, "", "", -1},
    {"data empty",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\",\"data\":{}}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", "", "", 0, "", "", -1},
    {"unknown members and external_id are ignored",
     "{\"external_id\":\"mine\",\"event\":\"incoming_call\",\"x\":[1,{}],"
     "\"reference_id\":\"r\",\"data\":{\"from\":\"1\",\"extra\":{\"a\":1},"
     "\"direction\":\"inbound\"}}",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", "1", "", 0, "", "", -1},
    {"unicode and escapes in strings",
     "{\"event\":\"speak_completed\",\"reference_id\":\"caf\\u00e9\","
     "\"data\":{\"status\":\"\xc3\xa9t\\u00e9\\n\"}}",
     VOICE_EVENT_SPEAK_COMPLETED, "speak_completed", "caf\xc3\xa9", "", "", 0,
     "", "\xc3\xa9t\xc3\xa9\n", -1},
    {"surrounding white space",
     " \r\n\t{\"event\":\"incoming_call\",\"reference_id\":\"r\"}\n ",
     VOICE_EVENT_INCOMING_CALL, "incoming_call", "r", "", "", 0, "", "", -1},
};

/* Returns 0 when `ev` is what `c` expects, else prints it and returns 1. */
static int check_event(const struct event_case *c,
                       const struct voice_event *ev)
{
  if (ev->type != c->type || strcmp(ev->name, c->event) ||
      strcmp(ev->ref, c->ref) || strcmp(ev->from, c->from) ||
      strcmp(ev->to, c->to) || ev->has_digits != c->has_digits ||
      strcmp(ev->digits, c->digits) || strcmp(ev->status, c->status) ||
      ev->duration_s != c->duration_s) {
    print_error("case \"%s\": got type %d name \"%s\" ref \"%s\" from \"%s\" "
                "to \"%s\" has_digits %d digits \"%s\" status \"%s\" "
                "duration %d\n",
                c->name, (int)ev->type, ev->name, ev->ref, ev->from, ev->to,
                ev->has_digits, ev->digits, ev->status, (int)ev->duration_s);
    return 1;
  }
  return 0;
}

static void test_event_parse(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(event_cases); i++) {
    const struct event_case *c = &event_cases[i];
    struct voice_event ev;
    char err[256] = "";
    int rc;

    memset(&ev, 0x55, sizeof(ev));
    rc = voice_event_parse(c->body, strlen(c->body), &ev, err, sizeof(err));
    if (rc != 0) {
      print_error("case \"%s\": rc %d (%s)\n", c->name, rc, err);
      failures++;
      continue;
    }
    failures += check_event(c, &ev);
  }
  assert_int_equal(failures, 0);
}

/* The body is bounded by `len`, not by a NUL: bytes past it are not read. */
static void test_event_parse_length(void **state)
{
  static const char json[] =
      "{\"event\":\"incoming_call\",\"reference_id\":\"r\"}";
  struct voice_event ev;
  char err[256] = "";
  char *body;
  size_t n = sizeof(json) - 1;

  (void)state;
  /* An exact-size heap copy with no terminator, so ASan sees overreads. */
  body = malloc(n);
  assert_non_null(body);
  memcpy(body, json, n);
  assert_int_equal(voice_event_parse(body, n, &ev, err, sizeof(err)), 0);
  assert_int_equal(ev.type, VOICE_EVENT_INCOMING_CALL);
  assert_string_equal(ev.ref, "r");
  free(body);

  /* Trailing garbage beyond `len` is ignored... */
  body = malloc(n + 5);
  assert_non_null(body);
  memcpy(body, json, n);
  memcpy(body + n, "xxxxx", 5);
  assert_int_equal(voice_event_parse(body, n, &ev, err, sizeof(err)), 0);
  assert_string_equal(ev.name, "incoming_call");
  /* ...but within it is an error. */
  assert_int_equal(voice_event_parse(body, n + 5, &ev, err, sizeof(err)),
                   VS_ERR_INVAL);
  assert_non_null(strstr(err, "invalid JSON"));
  /* A prefix of a valid body is not valid. */
  assert_int_equal(voice_event_parse(body, n - 1, &ev, err, sizeof(err)),
                   VS_ERR_INVAL);
  free(body);
}

/* ---- event parsing: malformed bodies -------------------------------- */

struct bad_event_case {
  const char *name;
  const char *body;
  size_t len; /* 0: strlen(body) */
  int exact;  /* 1: msg is the whole message; 0: a substring */
  const char *msg;
};

#define JSONERR "invalid JSON at line "

/* A raw NUL byte inside the reference_id string, within `len`. */
#define NULBODY "{\"event\":\"incoming_call\",\"reference_id\":\"a\0b\"}"

static const struct bad_event_case bad_event_cases[] = {
    /* Not JSON, or not an object. */
    {"empty body", "", 0, 0, JSONERR},
    {"white space only", "  \n ", 0, 0, JSONERR},
    {"garbage", "hello", 0, 0, JSONERR "1 column "},
    {"truncated", "{\"event\":\"incoming_call\",", 0, 0, JSONERR},
    {"trailing garbage",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\"} x", 0, 0, JSONERR},
    {"two objects",
     "{\"event\":\"a\",\"reference_id\":\"r\"}"
     "{\"event\":\"b\",\"reference_id\":\"r\"}",
     0, 0, JSONERR},
    {"single quotes", "{'event':'incoming_call','reference_id':'r'}", 0, 0,
     JSONERR},
    {"invalid UTF-8",
     "{\"event\":\"incoming_call\",\"reference_id\":\"\xff\"}", 0, 0, JSONERR},
    {"raw NUL byte in the body", NULBODY, sizeof(NULBODY) - 1, 0, JSONERR},
    {"null", "null", 0, 0, JSONERR},
    {"a number", "42", 0, 0, JSONERR},
    {"a string", "\"incoming_call\"", 0, 0, JSONERR},
    {"an array", "[]", 0, 1, "the event must be a JSON object"},
    {"an array of the event",
     "[{\"event\":\"incoming_call\",\"reference_id\":\"r\"}]", 0, 1,
     "the event must be a JSON object"},
    /* event */
    {"empty object", "{}", 0, 1, "event is missing or not a string"},
    {"event missing", "{\"reference_id\":\"r\"}", 0, 1,
     "event is missing or not a string"},
    {"event empty", "{\"event\":\"\",\"reference_id\":\"r\"}", 0, 1,
     "event is missing or not a string"},
    {"event null", "{\"event\":null,\"reference_id\":\"r\"}", 0, 1,
     "event is missing or not a string"},
    {"event an integer", "{\"event\":1,\"reference_id\":\"r\"}", 0, 1,
     "event is missing or not a string"},
    {"event an object", "{\"event\":{},\"reference_id\":\"r\"}", 0, 1,
     "event is missing or not a string"},
    {"event too long", "{\"event\":\"" NAME48 "\",\"reference_id\":\"r\"}", 0,
     1, "event is longer than 47 characters"},
    {"NUL inside event",
     "{\"event\":\"incoming_call\\u0000x\",\"reference_id\":\"r\"}", 0, 0,
     JSONERR},
    /* reference_id */
    {"reference_id missing", "{\"event\":\"incoming_call\"}", 0, 1,
     "reference_id is missing or not a string"},
    {"reference_id empty",
     "{\"event\":\"incoming_call\",\"reference_id\":\"\"}", 0, 1,
     "reference_id is missing or not a string"},
    {"reference_id null",
     "{\"event\":\"incoming_call\",\"reference_id\":null}", 0, 1,
     "reference_id is missing or not a string"},
    {"reference_id an integer",
     "{\"event\":\"incoming_call\",\"reference_id\":123}", 0, 1,
     "reference_id is missing or not a string"},
    {"reference_id an array",
     "{\"event\":\"incoming_call\",\"reference_id\":[\"r\"]}", 0, 1,
     "reference_id is missing or not a string"},
    {"reference_id of 65 characters",
     "{\"event\":\"incoming_call\",\"reference_id\":\"" REF65 "\"}", 0, 1,
     "reference_id is longer than 64 characters"},
    {"NUL inside reference_id",
     "{\"event\":\"incoming_call\",\"reference_id\":\"ab\\u0000cd\"}", 0, 0,
     JSONERR},
    /* data */
    {"data a string",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\",\"data\":\"x\"}", 0,
     1, "data must be an object"},
    {"data an array",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\",\"data\":[]}", 0, 1,
     "data must be an object"},
    {"data an integer",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\",\"data\":1}", 0, 1,
     "data must be an object"},
    {"data false",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\",\"data\":false}", 0,
     1, "data must be an object"},
    /* Fields of the wrong type. */
    {"from a boolean",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":true}}",
     0, 1, "data.from must be a string"},
    {"from a real",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":15555550123.5}}",
     0, 1, "data.from must be a string"},
    {"to an object",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"to\":{}}}",
     0, 1, "data.to must be a string"},
    {"status an array",
     "{\"event\":\"dial_completed\",\"reference_id\":\"r\","
     "\"data\":{\"status\":[\"answered\"]}}",
     0, 1, "data.status must be a string"},
    {"collected_digits a boolean",
     "{\"event\":\"speak_completed\",\"reference_id\":\"r\","
     "\"data\":{\"collected_digits\":false}}",
     0, 1, "data.collected_digits must be a string"},
    /* NUL bytes inside data strings. */
    {"NUL inside from",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":\"1555\\u00005550123\"}}",
     0, 0, JSONERR},
    {"NUL inside collected_digits",
     "{\"event\":\"speak_completed\",\"reference_id\":\"r\","
     "\"data\":{\"collected_digits\":\"1\\u0000\"}}",
     0, 0, JSONERR},
    /* Duplicate keys: an event must not mean two things. */
    {"duplicate event",
     "{\"event\":\"incoming_call\",\"event\":\"call_completed\","
     "\"reference_id\":\"r\"}",
     0, 0, "duplicate object key"},
    {"duplicate reference_id",
     "{\"event\":\"incoming_call\",\"reference_id\":\"a\","
     "\"reference_id\":\"b\"}",
     0, 0, "duplicate object key"},
    {"duplicate data",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\",\"data\":{},"
     "\"data\":{\"from\":\"1\"}}",
     0, 0, "duplicate object key"},
    {"duplicate key inside data",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":\"15555550123\",\"from\":\"15555550999\"}}",
     0, 0, "duplicate object key"},
    /* Over-long fields. */
    {"from of 65 characters",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"from\":\"" NUM65 "\"}}",
     0, 1, "data.from is longer than 64 characters"},
    {"to of 65 characters",
     "{\"event\":\"incoming_call\",\"reference_id\":\"r\","
     "\"data\":{\"to\":\"" NUM65 "\"}}",
     0, 1, "data.to is longer than 64 characters"},
    {"status of 32 characters",
     "{\"event\":\"dial_completed\",\"reference_id\":\"r\","
     "\"data\":{\"status\":\"" ST32 "\"}}",
     0, 1, "data.status is longer than 31 characters"},
    {"collected_digits of 33 characters",
     "{\"event\":\"speak_completed\",\"reference_id\":\"r\","
     "\"data\":{\"collected_digits\":\"" DIG33 "\"}}",
     0, 1, "data.collected_digits is longer than 32 characters"},
};

static void test_event_parse_invalid(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(bad_event_cases); i++) {
    const struct bad_event_case *c = &bad_event_cases[i];
    size_t len = c->len ? c->len : strlen(c->body);
    struct voice_event ev;
    char err[256];
    int rc;
    int ok;

    memset(err, 'x', sizeof(err));
    err[sizeof(err) - 1] = '\0';
    rc = voice_event_parse(c->body, len, &ev, err, sizeof(err));
    ok = rc == VS_ERR_INVAL &&
         (c->exact ? strcmp(err, c->msg) == 0 : strstr(err, c->msg) != NULL);
    /* A one-line reason fit for a 400 answer. */
    ok = ok && err[0] && !strchr(err, '\n') && !strchr(err, '\r');
    if (!ok) {
      print_error("case \"%s\": got %d \"%s\", want %d %s \"%s\"\n", c->name,
                  rc, err, VS_ERR_INVAL, c->exact ? "exactly" : "containing",
                  c->msg);
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

/* The reason is cut to the caller's buffer, and no buffer is fine too. */
static void test_event_parse_error_buffer(void **state)
{
  static const char body[] = "{\"event\":\"incoming_call\"}";
  struct voice_event ev;
  char err[8];

  (void)state;
  memset(err, 'x', sizeof(err));
  assert_int_equal(
      voice_event_parse(body, sizeof(body) - 1, &ev, err, sizeof(err)),
      VS_ERR_INVAL);
  assert_string_equal(err, "referen");
  assert_int_equal(voice_event_parse(body, sizeof(body) - 1, &ev, NULL, 0),
                   VS_ERR_INVAL);
  assert_int_equal(voice_event_parse("{", 1, &ev, NULL, 0), VS_ERR_INVAL);
}

/* ---- action rendering ----------------------------------------------- */

struct render_case {
  const char *name;
  struct voice_action action;
  const char *json;
};

static const struct render_case render_cases[] = {
    {"hangup",
     {VOICE_ACTION_HANGUP, NULL, NULL, NULL, 0, NULL, NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"hangup\",\"params\":{}}"},
    {"hangup ignores collect_max",
     {VOICE_ACTION_HANGUP, NULL, NULL, NULL, 3, NULL, NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"hangup\",\"params\":{}}"},
    {"speak",
     {VOICE_ACTION_SPEAK, "Hi", "en-US", NULL, 0, NULL, NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"speak\","
     "\"params\":{\"tts\":{\"message\":\"Hi\",\"language\":\"en-US\"}}}"},
    {"speak, collect 1 digit",
     {VOICE_ACTION_SPEAK, "Hi", "en-US", NULL, 1, NULL, NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"speak\","
     "\"params\":{\"tts\":{\"message\":\"Hi\",\"language\":\"en-US\"},"
     "\"collect_digits\":{\"max\":1}}}"},
    {"speak, collect 4 digits, another language",
     {VOICE_ACTION_SPEAK, "Bonjour", "fr-FR", NULL, 4, NULL, NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"speak\","
     "\"params\":{\"tts\":{\"message\":\"Bonjour\",\"language\":\"fr-FR\"},"
     "\"collect_digits\":{\"max\":4}}}"},
    {"play, collect 120 digits",
     {VOICE_ACTION_PLAY, NULL, NULL, "https://x/a.wav", 120, NULL, NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"play\","
     "\"params\":{\"url\":\"https://x/a.wav\","
     "\"collect_digits\":{\"max\":120}}}"},
    {"speak, quotes, backslash, control characters and unicode",
     {VOICE_ACTION_SPEAK, "Say \"hi\" \\ caf\xc3\xa9 \xe2\x9c\x93\n\t\x01/end",
      "en-US", NULL, 0, NULL, NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"speak\","
     "\"params\":{\"tts\":{\"message\":"
     "\"Say \\\"hi\\\" \\\\ caf\xc3\xa9 \xe2\x9c\x93\\n\\t\\u0001/end\","
     "\"language\":\"en-US\"}}}"},
    {"speak, empty message",
     {VOICE_ACTION_SPEAK, "", "en-US", NULL, 0, NULL, NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"speak\","
     "\"params\":{\"tts\":{\"message\":\"\",\"language\":\"en-US\"}}}"},
    {"play",
     {VOICE_ACTION_PLAY, NULL, NULL, "https://example.com/a.wav", 0, NULL,
      NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"play\","
     "\"params\":{\"url\":\"https://example.com/a.wav\"}}"},
    {"play, collect 1 digit",
     {VOICE_ACTION_PLAY, NULL, NULL, "https://example.com/menu.wav", 1, NULL,
      NULL},
     "{\"jsonrpc\":\"2.0\",\"method\":\"play\","
     "\"params\":{\"url\":\"https://example.com/menu.wav\","
     "\"collect_digits\":{\"max\":1}}}"},
    {"dial",
     {VOICE_ACTION_DIAL, NULL, NULL, NULL, 0, "15555550199", "15555550123"},
     "{\"jsonrpc\":\"2.0\",\"method\":\"dial\","
     "\"params\":{\"to\":\"15555550199\","
     "\"caller_id_number\":\"15555550123\"}}"},
    {"dial ignores collect_max",
     {VOICE_ACTION_DIAL, NULL, NULL, NULL, 2, "15555550199", "15555550100"},
     "{\"jsonrpc\":\"2.0\",\"method\":\"dial\","
     "\"params\":{\"to\":\"15555550199\","
     "\"caller_id_number\":\"15555550100\"}}"},
};

static void test_action_render(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(render_cases); i++) {
    const struct render_case *c = &render_cases[i];
    char *out = voice_action_render(&c->action);

    if (!out || strcmp(out, c->json) != 0) {
      print_error("case \"%s\":\n got  %s\n want %s\n", c->name,
                  out ? out : "(null)", c->json);
      failures++;
    }
    free(out);
  }
  assert_int_equal(failures, 0);
}

/* Every rendered action reads back as what was rendered. */
static void test_action_round_trip(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(render_cases); i++) {
    const struct render_case *c = &render_cases[i];
    const struct voice_action *a = &c->action;
    struct voice_action_parsed p;
    char err[256] = "";
    char *out = voice_action_render(a);
    unsigned collect;
    int rc;

    assert_non_null(out);
    rc = voice_action_parse(out, strlen(out), &p, err, sizeof(err));
    collect = (a->kind == VOICE_ACTION_SPEAK || a->kind == VOICE_ACTION_PLAY)
                  ? a->collect_max
                  : 0;
    if (rc != 0 || p.kind != a->kind ||
        strcmp(p.message, a->message ? a->message : "") ||
        strcmp(p.language, a->language ? a->language : "") ||
        strcmp(p.url, a->url ? a->url : "") || p.collect_max != collect ||
        strcmp(p.to, a->to ? a->to : "") ||
        strcmp(p.caller_id, a->caller_id ? a->caller_id : "")) {
      print_error("case \"%s\": rc %d (%s) kind %d message \"%s\" language "
                  "\"%s\" url \"%s\" collect %u to \"%s\" caller_id \"%s\"\n",
                  c->name, rc, err, (int)p.kind, p.message, p.language, p.url,
                  p.collect_max, p.to, p.caller_id);
      failures++;
    }
    free(out);
  }
  assert_int_equal(failures, 0);
}

static void test_action_method(void **state)
{
  (void)state;
  assert_string_equal(voice_action_method(VOICE_ACTION_HANGUP), "hangup");
  assert_string_equal(voice_action_method(VOICE_ACTION_SPEAK), "speak");
  assert_string_equal(voice_action_method(VOICE_ACTION_PLAY), "play");
  assert_string_equal(voice_action_method(VOICE_ACTION_DIAL), "dial");
  /* Anything else falls back to the safe answer. */
  assert_string_equal(voice_action_method((enum voice_action_kind)4),
                      "hangup");
  assert_string_equal(voice_action_method((enum voice_action_kind) - 1),
                      "hangup");
}

/* ---- action parsing --------------------------------------------------- */

struct parse_case {
  const char *name;
  const char *body;
  int rc;
  const char *msg; /* substring of err when rc is VS_ERR_PROTO */
  enum voice_action_kind kind;
  const char *message;
  const char *language;
  const char *url;
  unsigned collect_max;
  const char *to;
  const char *caller_id;
};

static const struct parse_case parse_cases[] = {
    {"speak (reference example)",
     "{\"jsonrpc\":\"2.0\",\"method\":\"speak\",\n"
     " \"params\":{\"tts\":{\"message\":\"Press 1 for support, 2 for "
     "billing.\",\"language\":\"en-US\"},\n"
     "           \"collect_digits\":{\"max\":1}}}",
     0, NULL, VOICE_ACTION_SPEAK, "Press 1 for support, 2 for billing.",
     "en-US", "", 1, "", ""},
    {"dial (reference example)",
     "{\"jsonrpc\":\"2.0\",\"method\":\"dial\",\n"
     " \"params\":{\"to\":\"15555550199\","
     "\"caller_id_number\":\"15555550123\"}}",
     0, NULL, VOICE_ACTION_DIAL, "", "", "", 0, "15555550199", "15555550123"},
    {"hangup (reference example)",
     "{\"jsonrpc\":\"2.0\",\"method\":\"hangup\",\"params\":{}}", 0, NULL,
     VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"play without jsonrpc",
     "{\"method\":\"play\",\"params\":{\"url\":\"https://x/y.wav\","
     "\"collect_digits\":{\"max\":2}}}",
     0, NULL, VOICE_ACTION_PLAY, "", "", "https://x/y.wav", 2, "", ""},
    {"empty object", "{}", VS_ERR_NOTFOUND, NULL, VOICE_ACTION_HANGUP, "", "",
     "", 0, "", ""},
    {"empty object with white space", " \n{ }\n", VS_ERR_NOTFOUND, NULL,
     VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"unknown method",
     "{\"jsonrpc\":\"2.0\",\"method\":\"transfer\",\"params\":{}}",
     VS_ERR_PROTO, "unknown method 'transfer'", VOICE_ACTION_HANGUP, "", "",
     "", 0, "", ""},
    {"method in another case",
     "{\"jsonrpc\":\"2.0\",\"method\":\"Hangup\",\"params\":{}}", VS_ERR_PROTO,
     "unknown method 'Hangup'", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"empty method", "{\"method\":\"\",\"params\":{}}", VS_ERR_PROTO,
     "unknown method ''", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"method not a string", "{\"method\":1,\"params\":{}}", VS_ERR_PROTO,
     "no method", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"no params", "{\"jsonrpc\":\"2.0\",\"method\":\"hangup\"}", VS_ERR_PROTO,
     "no method", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"params not an object", "{\"method\":\"speak\",\"params\":[]}",
     VS_ERR_PROTO, "no method", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"no method", "{\"jsonrpc\":\"2.0\",\"params\":{}}", VS_ERR_PROTO,
     "no method", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"empty array", "[]", VS_ERR_PROTO, "no method", VOICE_ACTION_HANGUP, "",
     "", "", 0, "", ""},
    {"action wrapped in an array",
     "[{\"jsonrpc\":\"2.0\",\"method\":\"hangup\",\"params\":{}}]",
     VS_ERR_PROTO, "no method", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"garbage", "OK", VS_ERR_PROTO, "not JSON", VOICE_ACTION_HANGUP, "", "",
     "", 0, "", ""},
    {"empty body", "", VS_ERR_PROTO, "not JSON", VOICE_ACTION_HANGUP, "", "",
     "", 0, "", ""},
    {"truncated", "{\"jsonrpc\":\"2.0\",\"method\":\"hang", VS_ERR_PROTO,
     "not JSON", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
    {"HTML error page", "<html><body>500</body></html>", VS_ERR_PROTO,
     "not JSON", VOICE_ACTION_HANGUP, "", "", "", 0, "", ""},
};

static void test_action_parse(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(parse_cases); i++) {
    const struct parse_case *c = &parse_cases[i];
    struct voice_action_parsed p;
    char err[256] = "";
    int rc;
    int ok;

    memset(&p, 0x55, sizeof(p));
    rc = voice_action_parse(c->body, strlen(c->body), &p, err, sizeof(err));
    ok = rc == c->rc;
    if (ok && rc == VS_ERR_PROTO)
      ok = strstr(err, c->msg) != NULL;
    if (ok && rc == 0)
      ok = p.kind == c->kind && !strcmp(p.message, c->message) &&
           !strcmp(p.language, c->language) && !strcmp(p.url, c->url) &&
           p.collect_max == c->collect_max && !strcmp(p.to, c->to) &&
           !strcmp(p.caller_id, c->caller_id);
    if (!ok) {
      print_error("case \"%s\": rc %d (want %d) err \"%s\" kind %d message "
                  "\"%s\" url \"%s\" collect %u to \"%s\"\n",
                  c->name, rc, c->rc, err, (int)p.kind,
                  rc == 0 ? p.message : "", rc == 0 ? p.url : "",
                  p.collect_max, rc == 0 ? p.to : "");
      failures++;
    }
  }
  assert_int_equal(failures, 0);
}

/* Over-long strings in an answer are cut to the parsed struct's fields. */
static void test_action_parse_long(void **state)
{
  struct voice_action_parsed p;
  char body[4096];
  char msg[2001];
  char err[64];

  (void)state;
  memset(msg, 'm', sizeof(msg) - 1);
  msg[sizeof(msg) - 1] = '\0';
  snprintf(body, sizeof(body),
           "{\"method\":\"speak\",\"params\":{\"tts\":{\"message\":\"%s\","
           "\"language\":\"%.40s\"}}}",
           msg, msg);
  assert_int_equal(
      voice_action_parse(body, strlen(body), &p, err, sizeof(err)), 0);
  assert_int_equal(p.kind, VOICE_ACTION_SPEAK);
  assert_int_equal(strlen(p.message), sizeof(p.message) - 1);
  assert_int_equal(strlen(p.language), sizeof(p.language) - 1);
  assert_int_equal(p.message[0], 'm');
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_event_parse),
      cmocka_unit_test(test_event_parse_length),
      cmocka_unit_test(test_event_parse_invalid),
      cmocka_unit_test(test_event_parse_error_buffer),
      cmocka_unit_test(test_action_render),
      cmocka_unit_test(test_action_round_trip),
      cmocka_unit_test(test_action_method),
      cmocka_unit_test(test_action_parse),
      cmocka_unit_test(test_action_parse_long),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
