/*
 * The TeleSign Voice API codec: webhook events in, JSON-RPC actions out.
 *
 * Parsing copies what we use into a fixed-size struct, so an event owns no
 * memory and the raw body may be freed at once. Field formats follow
 * ../shared/reference/telesign-api.md section 1; where that reference is
 * unsure (types of optional fields), the parser accepts both strings and
 * integers and ignores what it does not know.
 *
 * Pure functions with no state: any thread may call them.
 */
#ifndef VS_TELESIGN_VOICE_H
#define VS_TELESIGN_VOICE_H

#include <stddef.h>
#include <stdint.h>

enum voice_event_type {
  VOICE_EVENT_OTHER = 0, /* a valid envelope with an event we do not act on */
  VOICE_EVENT_INCOMING_CALL,
  VOICE_EVENT_SPEAK_COMPLETED,
  VOICE_EVENT_PLAY_COMPLETED,
  VOICE_EVENT_DIAL_COMPLETED,
  VOICE_EVENT_CALL_LEG_COMPLETED,
  VOICE_EVENT_CALL_COMPLETED
};

#define VOICE_REF_SIZE    65
#define VOICE_NUMBER_SIZE 65

struct voice_event {
  enum voice_event_type type;
  char name[48];                /* the event name as sent */
  char ref[VOICE_REF_SIZE];     /* reference_id, 1..64 chars */
  char from[VOICE_NUMBER_SIZE]; /* data.from as sent ("" if absent) */
  char to[VOICE_NUMBER_SIZE];   /* data.to as sent ("" if absent) */
  int has_digits;               /* data.collected_digits was present */
  char digits[33];              /* data.collected_digits */
  char status[32];              /* data.status ("" if absent) */
  int32_t duration_s;           /* data.duration, or -1 */
};

/*
 * Parses one event body of `len` bytes (not necessarily NUL-terminated).
 * Returns 0, or VS_ERR_INVAL with a one-line reason in `err` suitable for a
 * 400 answer ("invalid JSON at line 1 column 12: ...", "reference_id is
 * missing", ...). Duplicate keys are refused: an event must not mean two
 * things.
 */
int voice_event_parse(const char *body, size_t len, struct voice_event *ev,
                      char *err, size_t errlen);

enum voice_action_kind {
  VOICE_ACTION_HANGUP = 0,
  VOICE_ACTION_SPEAK,
  VOICE_ACTION_PLAY,
  VOICE_ACTION_DIAL
};

/*
 * An action to answer with. Strings are borrowed for the duration of
 * voice_action_render().
 */
struct voice_action {
  enum voice_action_kind kind;
  const char *message;   /* speak: text to say */
  const char *language;  /* speak: e.g. "en-US" */
  const char *url;       /* play: audio URL */
  unsigned collect_max;  /* speak/play: digits to collect, 0 = none */
  const char *to;        /* dial: number to call */
  const char *caller_id; /* dial: caller_id_number */
};

/*
 * Renders `a` as one JSON-RPC object ({"jsonrpc":"2.0","method":...}).
 * Returns a malloc'd NUL-terminated string the caller frees, or NULL when
 * out of memory.
 */
char *voice_action_render(const struct voice_action *a);

/* The method name of an action kind ("hangup", "speak", ...). */
const char *voice_action_method(enum voice_action_kind k);

/*
 * An action as read back from a server (the `call` command plays TeleSign's
 * part and needs to understand what it was told).
 */
struct voice_action_parsed {
  enum voice_action_kind kind;
  char message[1024];
  char language[16];
  char url[512];
  unsigned collect_max;
  char to[VOICE_NUMBER_SIZE];
  char caller_id[VOICE_NUMBER_SIZE];
};

/*
 * Parses an action body. An empty object `{}` (the answer to
 * call_completed) is VS_ERR_NOTFOUND; anything else that is not a known
 * action is VS_ERR_PROTO with the reason in `err`.
 */
int voice_action_parse(const char *body, size_t len,
                       struct voice_action_parsed *out, char *err,
                       size_t errlen);

#endif
