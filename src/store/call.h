/*
 * The call record: everything we know about one call, keyed by TeleSign's
 * reference_id. It is both the per-call state that the IVR advances from
 * event to event and the row that `voice-and-score calls` shows, so one
 * struct travels from the call flow to the store and back.
 *
 * Fields are fixed-size, NUL-terminated arrays so that a record can be
 * copied by value between the loop thread and the store worker with no
 * ownership questions. Text longer than a field is cut at the field's size
 * (the limits are above anything TeleSign documents).
 */
#ifndef VS_STORE_CALL_H
#define VS_STORE_CALL_H

#include <stddef.h>
#include <stdint.h>

#define CALL_REF_SIZE    65 /* reference_id: opaque, up to 64 chars */
#define CALL_NUMBER_SIZE 33 /* phone numbers as digits */
#define CALL_RAW_SIZE    65 /* caller ID exactly as delivered */

/* Where the call is in our conversation with TeleSign. */
enum call_step {
  CALL_STEP_NEW = 0,     /* incoming_call seen, no answer sent yet */
  CALL_STEP_MENU,        /* menu spoken, waiting for a digit */
  CALL_STEP_BLOCKING,    /* block message spoken, hang up next */
  CALL_STEP_GOODBYE,     /* goodbye spoken, hang up next */
  CALL_STEP_DIALLING,    /* dial sent, waiting for dial_completed */
  CALL_STEP_CONNECTED,   /* department answered */
  CALL_STEP_UNAVAILABLE, /* "no one is available" spoken, hang up next */
  CALL_STEP_HUNGUP,      /* we sent hangup */
  CALL_STEP_ENDED,       /* call_completed received */
  CALL_STEP_CHALLENGE    /* "press D" spoken, waiting for the digit */
};

/* The screening pipeline's verdict for the call. */
enum call_decision {
  CALL_DECISION_NONE = 0, /* not decided yet */
  CALL_DECISION_ALLOW,
  CALL_DECISION_BLOCK,
  CALL_DECISION_CHALLENGE
};

struct call {
  char ref[CALL_REF_SIZE];
  char caller_raw[CALL_RAW_SIZE]; /* data.from as received */
  char caller[CALL_NUMBER_SIZE];  /* normalised digits; "" if unscorable */
  char to[CALL_NUMBER_SIZE];      /* data.to: our virtual number */
  int64_t started_ms;             /* Unix ms when incoming_call arrived */
  int64_t updated_ms;             /* Unix ms of the last change */
  enum call_step step;
  uint32_t attempts; /* menu prompts spoken so far */
  enum call_decision decision;
  char reason[96];                /* the deciding step, "score:742>=600" */
  char trace[256];                /* every step evaluated, in order */
  char policy_version[17];        /* config that decided (hash) */
  int shadow;                     /* decided in shadow mode: menu given */
  int32_t velocity_count;         /* calls in the window, this one too */
  char score_source[8];           /* "api", "cache" or "" (no score) */
  char challenge_digit[2];        /* the digit asked for, "" if none */
  uint32_t challenge_tries;       /* challenge prompts spoken */
  char challenge_result[8];       /* "passed", "failed" or "" */
  int32_t score;                  /* 0..1000, or -1 when none */
  char risk_level[16];            /* TeleSign risk.level */
  char recommendation[16];        /* TeleSign risk.recommendation */
  char phone_type[24];            /* TeleSign phone_type.description */
  char score_ref[CALL_REF_SIZE];  /* TeleSign reference_id of the lookup */
  char score_error[64];           /* "" or why the lookup failed */
  int32_t score_ms;               /* lookup latency, -1 when none */
  char digits[33];                /* every digit pressed, in order */
  char department[64];            /* name of the department dialled */
  char dialled[CALL_NUMBER_SIZE]; /* number dialled */
  char dial_status[32];           /* dial_completed data.status */
  char status[32];                /* call_completed data.status */
  int32_t duration_s;             /* call_completed data.duration, or -1 */
  int64_t ended_ms;               /* Unix ms of call_completed, or 0 */
};

/* Prepares an empty record for `ref` (score and duration set to -1). */
void call_init(struct call *c, const char *ref);

/* Copies `src` into the fixed field `dst` of `size` bytes, cutting it. */
void call_set(char *dst, size_t size, const char *src);
#define CALL_SET(field, src) call_set((field), sizeof(field), (src))

/* Short names used in records and the CLI: "menu", "allow", ... */
const char *call_step_name(enum call_step s);
const char *call_decision_name(enum call_decision d);
/* Inverse of the two above; return -1 for an unknown name. */
int call_step_parse(const char *s);
int call_decision_parse(const char *s);

#endif
