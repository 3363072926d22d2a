/*
 * Unit tests for ivr/ivr: one table row per transition of the diagram in
 * ivr.h (start, digits, retries, invalid choices, dialling, the hang-up
 * steps), checking the whole action and every field of the call record the
 * transition is meant to change, then a walk through one complete call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/config/config.h"
#include "../../src/ivr/ivr.h"
#include "../../src/store/call.h"
#include "../../src/telesign/voice.h"

#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))

#define GREETING    "Press 1 for sales, 2 for support or 9 for the operator."
#define INVALID     "That is not a valid choice."
#define GOODBYE     "Goodbye."
#define UNAVAILABLE "No one is available to take your call."
#define BLOCKED     "We are unable to take your call."
#define LANGUAGE    "en-GB"

#define VIRTUAL "15555550000" /* telesign.virtual_number */
#define TO      "15555550100" /* data.to of the incoming call */
#define CALLER  "15555550123" /* the caller, normalised */

#define SALES    "15555550101"
#define SUPPORT  "15555550102"
#define OPERATOR "15555550109"

static struct config_menu_option options[] = {
    {"1", "Sales", SALES},
    {"2", "Support", SUPPORT},
    {"9", "Operator", OPERATOR},
};

static void make_config(struct config *cfg, uint32_t attempts,
                        enum config_caller_id caller_id,
                        const char *virtual_number)
{
  memset(cfg, 0, sizeof(*cfg));
  cfg->telesign.customer_id = "";
  cfg->telesign.api_key = "";
  cfg->telesign.score_url = "";
  cfg->telesign.virtual_number = (char *)virtual_number;
  cfg->telesign.account_lifecycle_event = "transact";
  cfg->telesign.ca_file = "";
  cfg->screening.block_at = 600;
  cfg->screening.block_message = BLOCKED;
  cfg->menu.greeting = GREETING;
  cfg->menu.language = LANGUAGE;
  cfg->menu.attempts = attempts;
  cfg->menu.caller_id = caller_id;
  cfg->menu.invalid_message = INVALID;
  cfg->menu.goodbye_message = GOODBYE;
  cfg->menu.unavailable_message = UNAVAILABLE;
  cfg->menu.options = options;
  cfg->menu.options_count = ARRAYSIZE(options);
}

/* The configured options are found by their digit (config.c). */
static void test_menu_option_lookup(void **state)
{
  struct config cfg;

  (void)state;
  make_config(&cfg, 3, CALLER_ID_VIRTUAL, VIRTUAL);
  assert_ptr_equal(config_menu_option(&cfg, '1'), &options[0]);
  assert_ptr_equal(config_menu_option(&cfg, '2'), &options[1]);
  assert_ptr_equal(config_menu_option(&cfg, '9'), &options[2]);
  assert_null(config_menu_option(&cfg, '3'));
  assert_null(config_menu_option(&cfg, '*'));
  assert_null(config_menu_option(&cfg, '\0'));
}

enum ivr_fn { FN_START, FN_PROMPT, FN_DIAL, FN_HANGUP };

struct ivr_case {
  const char *name;
  /* the configuration; zero and NULL take the defaults */
  uint32_t max_attempts;      /* 0: 3 */
  enum config_caller_id mode; /* caller_id */
  const char *virtual_number; /* NULL: VIRTUAL */
  /* the call before the transition */
  enum call_step step;
  enum call_decision decision;
  uint32_t attempts;
  const char *caller; /* NULL: CALLER */
  const char *to;     /* NULL: TO */
  const char *digits; /* NULL: "" */
  /* the event */
  enum ivr_fn fn;
  int has_digits;
  const char *ev_digits;
  const char *ev_status;
  /* the answer */
  enum voice_action_kind kind;
  const char *message; /* speak */
  unsigned collect;
  const char *dial_to;   /* dial */
  const char *caller_id; /* dial */
  /* the call after */
  enum call_step want_step;
  uint32_t want_attempts;
  const char *want_digits; /* NULL: unchanged */
  const char *department;  /* NULL: "" */
  const char *dialled;     /* NULL: "" */
  const char *dial_status; /* NULL: "" */
};

static const struct ivr_case ivr_cases[] = {
    /* ---- start ---- */
    {.name = "start allowed: the menu",
     .step = CALL_STEP_NEW,
     .decision = CALL_DECISION_ALLOW,
     .fn = FN_START,
     .kind = VOICE_ACTION_SPEAK,
     .message = GREETING,
     .collect = 1,
     .want_step = CALL_STEP_MENU,
     .want_attempts = 1},
    {.name = "start allowed resets the attempts",
     .step = CALL_STEP_NEW,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 7,
     .fn = FN_START,
     .kind = VOICE_ACTION_SPEAK,
     .message = GREETING,
     .collect = 1,
     .want_step = CALL_STEP_MENU,
     .want_attempts = 1},
    {.name = "start blocked: the block message, no collect",
     .step = CALL_STEP_NEW,
     .decision = CALL_DECISION_BLOCK,
     .fn = FN_START,
     .kind = VOICE_ACTION_SPEAK,
     .message = BLOCKED,
     .collect = 0,
     .want_step = CALL_STEP_BLOCKING,
     .want_attempts = 0},
    /* ---- menu + a configured digit ---- */
    {.name = "digit 1 dials sales from the virtual number",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "1",
     .kind = VOICE_ACTION_DIAL,
     .dial_to = SALES,
     .caller_id = VIRTUAL,
     .want_step = CALL_STEP_DIALLING,
     .want_attempts = 1,
     .want_digits = "1",
     .department = "Sales",
     .dialled = SALES},
    {.name = "digit 2 dials support",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 2,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "2",
     .kind = VOICE_ACTION_DIAL,
     .dial_to = SUPPORT,
     .caller_id = VIRTUAL,
     .want_step = CALL_STEP_DIALLING,
     .want_attempts = 2,
     .want_digits = "2",
     .department = "Support",
     .dialled = SUPPORT},
    {.name = "digit 9 dials the operator",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 3,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "9",
     .kind = VOICE_ACTION_DIAL,
     .dial_to = OPERATOR,
     .caller_id = VIRTUAL,
     .want_step = CALL_STEP_DIALLING,
     .want_attempts = 3,
     .want_digits = "9",
     .department = "Operator",
     .dialled = OPERATOR},
    {.name = "digits pressed before are kept",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 3,
     .digits = "57",
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "2",
     .kind = VOICE_ACTION_DIAL,
     .dial_to = SUPPORT,
     .caller_id = VIRTUAL,
     .want_step = CALL_STEP_DIALLING,
     .want_attempts = 3,
     .want_digits = "572",
     .department = "Support",
     .dialled = SUPPORT},
    {.name = "no virtual number: caller ID is data.to",
     .virtual_number = "",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "1",
     .kind = VOICE_ACTION_DIAL,
     .dial_to = SALES,
     .caller_id = TO,
     .want_step = CALL_STEP_DIALLING,
     .want_attempts = 1,
     .want_digits = "1",
     .department = "Sales",
     .dialled = SALES},
    {.name = "caller mode shows the caller",
     .mode = CALLER_ID_CALLER,
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "1",
     .kind = VOICE_ACTION_DIAL,
     .dial_to = SALES,
     .caller_id = CALLER,
     .want_step = CALL_STEP_DIALLING,
     .want_attempts = 1,
     .want_digits = "1",
     .department = "Sales",
     .dialled = SALES},
    {.name = "caller mode, unscorable caller: the virtual number",
     .mode = CALLER_ID_CALLER,
     .caller = "",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "2",
     .kind = VOICE_ACTION_DIAL,
     .dial_to = SUPPORT,
     .caller_id = VIRTUAL,
     .want_step = CALL_STEP_DIALLING,
     .want_attempts = 1,
     .want_digits = "2",
     .department = "Support",
     .dialled = SUPPORT},
    {.name = "caller mode, no caller, no virtual number: data.to",
     .mode = CALLER_ID_CALLER,
     .caller = "",
     .virtual_number = "",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "9",
     .kind = VOICE_ACTION_DIAL,
     .dial_to = OPERATOR,
     .caller_id = TO,
     .want_step = CALL_STEP_DIALLING,
     .want_attempts = 1,
     .want_digits = "9",
     .department = "Operator",
     .dialled = OPERATOR},
    /* ---- menu + no digit ---- */
    {.name = "no digit repeats the greeting",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_SPEAK,
     .message = GREETING,
     .collect = 1,
     .want_step = CALL_STEP_MENU,
     .want_attempts = 2,
     .want_digits = ""},
    {.name = "empty collected_digits repeats the greeting",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 2,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "",
     .kind = VOICE_ACTION_SPEAK,
     .message = GREETING,
     .collect = 1,
     .want_step = CALL_STEP_MENU,
     .want_attempts = 3,
     .want_digits = ""},
    {.name = "no digit at the limit: goodbye",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 3,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_SPEAK,
     .message = GOODBYE,
     .collect = 0,
     .want_step = CALL_STEP_GOODBYE,
     .want_attempts = 3,
     .want_digits = ""},
    {.name = "one attempt: no digit is goodbye at once",
     .max_attempts = 1,
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_SPEAK,
     .message = GOODBYE,
     .collect = 0,
     .want_step = CALL_STEP_GOODBYE,
     .want_attempts = 1,
     .want_digits = ""},
    {.name = "ten attempts: the ninth retry still prompts",
     .max_attempts = 10,
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 9,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_SPEAK,
     .message = GREETING,
     .collect = 1,
     .want_step = CALL_STEP_MENU,
     .want_attempts = 10,
     .want_digits = ""},
    /* ---- menu + an unknown digit ---- */
    {.name = "invalid digit: invalid message and greeting",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "5",
     .kind = VOICE_ACTION_SPEAK,
     .message = INVALID " " GREETING,
     .collect = 1,
     .want_step = CALL_STEP_MENU,
     .want_attempts = 2,
     .want_digits = "5"},
    {.name = "star is not an option",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 2,
     .digits = "5",
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "*",
     .kind = VOICE_ACTION_SPEAK,
     .message = INVALID " " GREETING,
     .collect = 1,
     .want_step = CALL_STEP_MENU,
     .want_attempts = 3,
     .want_digits = "5*"},
    {.name = "invalid digit at the limit: invalid message and goodbye",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 3,
     .digits = "55",
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "5",
     .kind = VOICE_ACTION_SPEAK,
     .message = INVALID " " GOODBYE,
     .collect = 0,
     .want_step = CALL_STEP_GOODBYE,
     .want_attempts = 3,
     .want_digits = "555"},
    /* ---- the steps that hang up after their prompt ---- */
    {.name = "blocking + speak_completed: hangup",
     .step = CALL_STEP_BLOCKING,
     .decision = CALL_DECISION_BLOCK,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 0,
     .want_digits = ""},
    {.name = "blocking + a menu digit still hangs up",
     .step = CALL_STEP_BLOCKING,
     .decision = CALL_DECISION_BLOCK,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "1",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 0,
     .want_digits = ""},
    {.name = "goodbye + speak_completed: hangup",
     .step = CALL_STEP_GOODBYE,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 3,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "2",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 3,
     .want_digits = ""},
    {.name = "unavailable + speak_completed: hangup",
     .step = CALL_STEP_UNAVAILABLE,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 1,
     .want_digits = ""},
    /* ---- anything else hangs up ---- */
    {.name = "new + speak_completed: hangup",
     .step = CALL_STEP_NEW,
     .decision = CALL_DECISION_ALLOW,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "1",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 0,
     .want_digits = ""},
    {.name = "dialling + speak_completed: hangup",
     .step = CALL_STEP_DIALLING,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "2",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 1,
     .want_digits = ""},
    {.name = "connected + speak_completed: hangup",
     .step = CALL_STEP_CONNECTED,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 1,
     .want_digits = ""},
    {.name = "hungup + speak_completed: hangup",
     .step = CALL_STEP_HUNGUP,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 1,
     .want_digits = ""},
    {.name = "ended + speak_completed: hangup",
     .step = CALL_STEP_ENDED,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 0,
     .ev_digits = "",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 1,
     .want_digits = ""},
    {.name = "unknown step + speak_completed: hangup",
     .step = (enum call_step)42,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_PROMPT,
     .has_digits = 1,
     .ev_digits = "1",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 1,
     .want_digits = ""},
    {.name = "ivr_hangup",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 2,
     .fn = FN_HANGUP,
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 2,
     .want_digits = ""},
    /* ---- dial_completed ---- */
    {.name = "dial answered: hangup, connected",
     .step = CALL_STEP_DIALLING,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .digits = "1",
     .fn = FN_DIAL,
     .ev_status = "answered",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_CONNECTED,
     .want_attempts = 1,
     .want_digits = "1",
     .dial_status = "answered"},
    {.name = "dial busy: unavailable message",
     .step = CALL_STEP_DIALLING,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .digits = "2",
     .fn = FN_DIAL,
     .ev_status = "busy",
     .kind = VOICE_ACTION_SPEAK,
     .message = UNAVAILABLE,
     .collect = 0,
     .want_step = CALL_STEP_UNAVAILABLE,
     .want_attempts = 1,
     .want_digits = "2",
     .dial_status = "busy"},
    {.name = "dial no-answer: unavailable message",
     .step = CALL_STEP_DIALLING,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_DIAL,
     .ev_status = "no-answer",
     .kind = VOICE_ACTION_SPEAK,
     .message = UNAVAILABLE,
     .collect = 0,
     .want_step = CALL_STEP_UNAVAILABLE,
     .want_attempts = 1,
     .want_digits = "",
     .dial_status = "no-answer"},
    {.name = "dial without a status: unavailable message",
     .step = CALL_STEP_DIALLING,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_DIAL,
     .ev_status = "",
     .kind = VOICE_ACTION_SPEAK,
     .message = UNAVAILABLE,
     .collect = 0,
     .want_step = CALL_STEP_UNAVAILABLE,
     .want_attempts = 1,
     .want_digits = "",
     .dial_status = ""},
    {.name = "dial status is case-sensitive",
     .step = CALL_STEP_DIALLING,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_DIAL,
     .ev_status = "Answered",
     .kind = VOICE_ACTION_SPEAK,
     .message = UNAVAILABLE,
     .collect = 0,
     .want_step = CALL_STEP_UNAVAILABLE,
     .want_attempts = 1,
     .want_digits = "",
     .dial_status = "Answered"},
    {.name = "dial_completed in the menu: hangup",
     .step = CALL_STEP_MENU,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_DIAL,
     .ev_status = "answered",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 1,
     .want_digits = "",
     .dial_status = "answered"},
    {.name = "dial_completed while blocking: hangup, not connected",
     .step = CALL_STEP_BLOCKING,
     .decision = CALL_DECISION_BLOCK,
     .fn = FN_DIAL,
     .ev_status = "answered",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 0,
     .want_digits = "",
     .dial_status = "answered"},
    {.name = "dial_completed when connected: hangup",
     .step = CALL_STEP_CONNECTED,
     .decision = CALL_DECISION_ALLOW,
     .attempts = 1,
     .fn = FN_DIAL,
     .ev_status = "busy",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 1,
     .want_digits = "",
     .dial_status = "busy"},
    {.name = "dial_completed when new: hangup",
     .step = CALL_STEP_NEW,
     .decision = CALL_DECISION_ALLOW,
     .fn = FN_DIAL,
     .ev_status = "busy",
     .kind = VOICE_ACTION_HANGUP,
     .want_step = CALL_STEP_HUNGUP,
     .want_attempts = 0,
     .want_digits = "",
     .dial_status = "busy"},
};

static int str_eq(const char *a, const char *b)
{
  if (!a || !b)
    return a == b;
  return strcmp(a, b) == 0;
}

static const char *show(const char *s)
{
  return s ? s : "(null)";
}

/* Runs one case; returns 0 when it behaves, else prints why and returns 1. */
static int run_case(const struct ivr_case *c)
{
  const struct voice_action *a;
  struct ivr_answer ans;
  struct voice_event ev;
  struct call call;
  struct config cfg;
  const char *want_message = NULL;
  const char *want_language = NULL;
  unsigned want_collect = 0;

  make_config(&cfg, c->max_attempts ? c->max_attempts : 3, c->mode,
              c->virtual_number ? c->virtual_number : VIRTUAL);
  call_init(&call, "9F1C2E7A4B3D4E5F8A9B0C1D2E3F4A5B");
  CALL_SET(call.caller_raw, "+1 555 555 0123");
  CALL_SET(call.caller, c->caller ? c->caller : CALLER);
  CALL_SET(call.to, c->to ? c->to : TO);
  CALL_SET(call.digits, c->digits ? c->digits : "");
  call.step = c->step;
  call.decision = c->decision;
  call.attempts = c->attempts;
  CALL_SET(call.reason, "score:123<600");
  call.score = 123;

  memset(&ev, 0, sizeof(ev));
  ev.duration_s = -1;
  snprintf(ev.ref, sizeof(ev.ref), "%s", call.ref);
  ev.has_digits = c->has_digits;
  snprintf(ev.digits, sizeof(ev.digits), "%s",
           c->ev_digits ? c->ev_digits : "");
  snprintf(ev.status, sizeof(ev.status), "%s",
           c->ev_status ? c->ev_status : "");

  memset(&ans, 'x', sizeof(ans));
  switch (c->fn) {
  case FN_START:
    ivr_start(&cfg, &call, '7', &ans);
    break;
  case FN_PROMPT:
    ev.type = VOICE_EVENT_SPEAK_COMPLETED;
    snprintf(ev.name, sizeof(ev.name), "speak_completed");
    ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
    break;
  case FN_DIAL:
    ev.type = VOICE_EVENT_DIAL_COMPLETED;
    snprintf(ev.name, sizeof(ev.name), "dial_completed");
    ivr_on_dial_done(&cfg, &call, &ev, &ans);
    break;
  case FN_HANGUP:
    ivr_hangup(&call, &ans);
    break;
  }

  a = &ans.action;
  if (c->kind == VOICE_ACTION_SPEAK) {
    want_message = c->message;
    want_language = LANGUAGE;
    want_collect = c->collect;
  }
  if (a->kind != c->kind || !str_eq(a->message, want_message) ||
      !str_eq(a->language, want_language) || a->collect_max != want_collect ||
      a->url != NULL || !str_eq(a->to, c->dial_to) ||
      !str_eq(a->caller_id, c->caller_id) || call.step != c->want_step ||
      call.attempts != c->want_attempts ||
      strcmp(call.digits,
             c->want_digits ? c->want_digits : (c->digits ? c->digits : "")) ||
      strcmp(call.department, c->department ? c->department : "") ||
      strcmp(call.dialled, c->dialled ? c->dialled : "") ||
      strcmp(call.dial_status, c->dial_status ? c->dial_status : "") ||
      /* Fields no transition touches. */
      call.decision != c->decision || strcmp(call.reason, "score:123<600") ||
      call.score != 123 || strcmp(call.caller_raw, "+1 555 555 0123")) {
    print_error("case \"%s\": kind %d message \"%s\" language \"%s\" "
                "collect %u to \"%s\" caller_id \"%s\"; step %s attempts %u "
                "digits \"%s\" department \"%s\" dialled \"%s\" "
                "dial_status \"%s\"\n",
                c->name, (int)a->kind, show(a->message), show(a->language),
                a->collect_max, show(a->to), show(a->caller_id),
                call_step_name(call.step), call.attempts, call.digits,
                call.department, call.dialled, call.dial_status);
    return 1;
  }
  return 0;
}

static void test_transitions(void **state)
{
  int failures = 0;

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(ivr_cases); i++)
    failures += run_case(&ivr_cases[i]);
  assert_int_equal(failures, 0);
}

/* A full digit record does not overflow and the dial still happens. */
static void test_digits_full(void **state)
{
  struct ivr_answer ans;
  struct voice_event ev;
  struct call call;
  struct config cfg;
  char full[sizeof(call.digits)];

  (void)state;
  make_config(&cfg, 3, CALLER_ID_VIRTUAL, VIRTUAL);
  call_init(&call, "r");
  memset(full, '5', sizeof(full) - 1);
  full[sizeof(full) - 1] = '\0';
  CALL_SET(call.digits, full);
  CALL_SET(call.to, TO);
  call.step = CALL_STEP_MENU;
  call.decision = CALL_DECISION_ALLOW;
  call.attempts = 1;
  memset(&ev, 0, sizeof(ev));
  ev.type = VOICE_EVENT_SPEAK_COMPLETED;
  ev.has_digits = 1;
  ev.digits[0] = '1';
  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  assert_int_equal(ans.action.kind, VOICE_ACTION_DIAL);
  assert_string_equal(ans.action.to, SALES);
  assert_string_equal(call.digits, full);
  assert_int_equal(call.step, CALL_STEP_DIALLING);
}

/* The longest messages config allows (1000 each) compose without a cut. */
static void test_long_messages(void **state)
{
  static char invalid[1001];
  static char greeting[1001];
  static char goodbye[1001];
  struct ivr_answer ans;
  struct voice_event ev;
  struct call call;
  struct config cfg;

  (void)state;
  memset(invalid, 'i', sizeof(invalid) - 1);
  memset(greeting, 'g', sizeof(greeting) - 1);
  memset(goodbye, 'b', sizeof(goodbye) - 1);
  make_config(&cfg, 2, CALLER_ID_VIRTUAL, VIRTUAL);
  cfg.menu.invalid_message = invalid;
  cfg.menu.greeting = greeting;
  cfg.menu.goodbye_message = goodbye;
  call_init(&call, "r");
  call.decision = CALL_DECISION_ALLOW;
  ivr_start(&cfg, &call, '7', &ans);
  assert_string_equal(ans.action.message, greeting);

  memset(&ev, 0, sizeof(ev));
  ev.has_digits = 1;
  ev.digits[0] = '7';
  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  assert_int_equal(strlen(ans.action.message), 2001);
  assert_memory_equal(ans.action.message, invalid, 1000);
  assert_int_equal(ans.action.message[1000], ' ');
  assert_string_equal(ans.action.message + 1001, greeting);

  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  assert_int_equal(call.step, CALL_STEP_GOODBYE);
  assert_int_equal(strlen(ans.action.message), 2001);
  assert_memory_equal(ans.action.message, invalid, 1000);
  assert_string_equal(ans.action.message + 1001, goodbye);
}

/* The answers render to the JSON that goes back to TeleSign. */
static void test_rendered(void **state)
{
  struct ivr_answer ans;
  struct voice_event ev;
  struct call call;
  struct config cfg;
  char *json;

  (void)state;
  make_config(&cfg, 3, CALLER_ID_VIRTUAL, VIRTUAL);
  call_init(&call, "r");
  CALL_SET(call.to, TO);
  call.decision = CALL_DECISION_ALLOW;
  ivr_start(&cfg, &call, '7', &ans);
  json = voice_action_render(&ans.action);
  assert_non_null(json);
  assert_string_equal(json, "{\"jsonrpc\":\"2.0\",\"method\":\"speak\","
                            "\"params\":{\"tts\":{\"message\":\"" GREETING
                            "\",\"language\":\"" LANGUAGE "\"},"
                            "\"collect_digits\":{\"max\":1}}}");
  free(json);

  memset(&ev, 0, sizeof(ev));
  ev.has_digits = 1;
  ev.digits[0] = '4';
  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  json = voice_action_render(&ans.action);
  assert_non_null(json);
  assert_string_equal(json, "{\"jsonrpc\":\"2.0\",\"method\":\"speak\","
                            "\"params\":{\"tts\":{\"message\":\"" INVALID
                            " " GREETING "\",\"language\":\"" LANGUAGE "\"},"
                            "\"collect_digits\":{\"max\":1}}}");
  free(json);

  ev.digits[0] = '9';
  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  json = voice_action_render(&ans.action);
  assert_non_null(json);
  assert_string_equal(json, "{\"jsonrpc\":\"2.0\",\"method\":\"dial\","
                            "\"params\":{\"to\":\"" OPERATOR "\","
                            "\"caller_id_number\":\"" VIRTUAL "\"}}");
  free(json);
}

/*
 * One call from start to end: silence, a wrong key, support, busy, the
 * apology, hangup.
 */
static void test_whole_call(void **state)
{
  struct ivr_answer ans;
  struct voice_event ev;
  struct call call;
  struct config cfg;

  (void)state;
  make_config(&cfg, 3, CALLER_ID_CALLER, VIRTUAL);
  call_init(&call, "534e1848-235f-482d-983d-e3e11a04f58a");
  CALL_SET(call.caller, CALLER);
  CALL_SET(call.to, TO);
  call.decision = CALL_DECISION_ALLOW;

  ivr_start(&cfg, &call, '7', &ans);
  assert_int_equal(ans.action.kind, VOICE_ACTION_SPEAK);
  assert_string_equal(ans.action.message, GREETING);
  assert_int_equal(call.attempts, 1);

  memset(&ev, 0, sizeof(ev));
  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  assert_int_equal(ans.action.kind, VOICE_ACTION_SPEAK);
  assert_string_equal(ans.action.message, GREETING);
  assert_int_equal(ans.action.collect_max, 1);
  assert_int_equal(call.attempts, 2);

  ev.has_digits = 1;
  snprintf(ev.digits, sizeof(ev.digits), "0");
  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  assert_string_equal(ans.action.message, INVALID " " GREETING);
  assert_int_equal(call.attempts, 3);
  assert_int_equal(call.step, CALL_STEP_MENU);

  /* The last attempt may still choose. */
  snprintf(ev.digits, sizeof(ev.digits), "2");
  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  assert_int_equal(ans.action.kind, VOICE_ACTION_DIAL);
  assert_string_equal(ans.action.to, SUPPORT);
  assert_string_equal(ans.action.caller_id, CALLER);
  assert_int_equal(call.step, CALL_STEP_DIALLING);
  assert_string_equal(call.digits, "02");
  assert_string_equal(call.department, "Support");

  memset(&ev, 0, sizeof(ev));
  snprintf(ev.status, sizeof(ev.status), "busy");
  ivr_on_dial_done(&cfg, &call, &ev, &ans);
  assert_int_equal(ans.action.kind, VOICE_ACTION_SPEAK);
  assert_string_equal(ans.action.message, UNAVAILABLE);
  assert_int_equal(ans.action.collect_max, 0);
  assert_int_equal(call.step, CALL_STEP_UNAVAILABLE);

  memset(&ev, 0, sizeof(ev));
  ivr_on_prompt_done(&cfg, &call, &ev, '7', &ans);
  assert_int_equal(ans.action.kind, VOICE_ACTION_HANGUP);
  assert_int_equal(call.step, CALL_STEP_HUNGUP);
  assert_string_equal(call.dial_status, "busy");
  assert_string_equal(call.dialled, SUPPORT);
}

/* ---- challenge, block actions and shadow mode ------------------------ */

static void challenge_config(struct config *cfg)
{
  make_config(cfg, 3, CALLER_ID_VIRTUAL, VIRTUAL);
  cfg->screening.challenge.message = "To be connected, press {digit}.";
  cfg->screening.challenge.retry_message = "That was not the right key.";
  cfg->screening.challenge.attempts = 2;
  cfg->screening.block_audio_url = "https://audio.example/sit.wav";
}

static struct voice_event keyed(const char *digits)
{
  struct voice_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.type = VOICE_EVENT_SPEAK_COMPLETED;
  ev.has_digits = 1;
  snprintf(ev.digits, sizeof(ev.digits), "%s", digits);
  return ev;
}

static void test_challenge_flow(void **state)
{
  struct config cfg;
  struct ivr_answer ans;
  struct voice_event ev;
  struct call call;

  (void)state;
  challenge_config(&cfg);
  call_init(&call, "CH");
  call.decision = CALL_DECISION_CHALLENGE;
  ivr_start(&cfg, &call, '4', &ans);
  assert_int_equal(ans.action.kind, VOICE_ACTION_SPEAK);
  assert_string_equal(ans.action.message, "To be connected, press 4.");
  assert_int_equal(ans.action.collect_max, 1);
  assert_int_equal(call.step, CALL_STEP_CHALLENGE);
  assert_string_equal(call.challenge_digit, "4");

  /* Wrong digit: a retry with a new digit. */
  ev = keyed("1");
  ivr_on_prompt_done(&cfg, &call, &ev, '8', &ans);
  assert_string_equal(ans.action.message,
                      "That was not the right key. To be connected, press 8.");
  assert_int_equal(ans.outcome, IVR_OUTCOME_NONE);
  assert_int_equal(call.challenge_tries, 2);

  /* The right one: the menu, and the pass is the caller's to grant. */
  ev = keyed("8");
  ivr_on_prompt_done(&cfg, &call, &ev, '3', &ans);
  assert_string_equal(ans.action.message, GREETING);
  assert_int_equal(ans.outcome, IVR_OUTCOME_CHALLENGE_PASSED);
  assert_string_equal(call.challenge_result, "passed");
  assert_int_equal(call.step, CALL_STEP_MENU);
  assert_string_equal(call.digits, "18");
}

static void test_challenge_failed(void **state)
{
  static const struct {
    enum config_block_action action;
    enum voice_action_kind kind;
    enum call_step step;
  } cases[] = {
      {BLOCK_ACTION_MESSAGE, VOICE_ACTION_SPEAK, CALL_STEP_BLOCKING},
      {BLOCK_ACTION_HANGUP, VOICE_ACTION_HANGUP, CALL_STEP_HUNGUP},
      {BLOCK_ACTION_PLAY, VOICE_ACTION_PLAY, CALL_STEP_BLOCKING},
  };

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(cases); i++) {
    struct config cfg;
    struct ivr_answer ans;
    struct voice_event ev = keyed("");
    struct call call;

    challenge_config(&cfg);
    cfg.screening.block_action = cases[i].action;
    call_init(&call, "CHF");
    call.decision = CALL_DECISION_CHALLENGE;
    ivr_start(&cfg, &call, '4', &ans);
    ivr_on_prompt_done(&cfg, &call, &ev, '5', &ans); /* nothing pressed */
    ivr_on_prompt_done(&cfg, &call, &ev, '6', &ans);
    assert_int_equal(ans.outcome, IVR_OUTCOME_CHALLENGE_FAILED);
    assert_int_equal(ans.action.kind, cases[i].kind);
    assert_int_equal(call.step, cases[i].step);
    assert_string_equal(call.challenge_result, "failed");
    if (cases[i].kind == VOICE_ACTION_PLAY)
      assert_string_equal(ans.action.url, "https://audio.example/sit.wav");
    if (cases[i].kind == VOICE_ACTION_SPEAK)
      assert_string_equal(ans.action.message, BLOCKED);
  }
}

static void test_shadow_mode_gives_the_menu(void **state)
{
  static const enum call_decision decisions[] = {
      CALL_DECISION_BLOCK, CALL_DECISION_CHALLENGE, CALL_DECISION_ALLOW};

  (void)state;
  for (size_t i = 0; i < ARRAYSIZE(decisions); i++) {
    struct config cfg;
    struct ivr_answer ans;
    struct call call;

    challenge_config(&cfg);
    cfg.screening.mode = MODE_SHADOW;
    call_init(&call, "SH");
    call.decision = decisions[i];
    ivr_start(&cfg, &call, '4', &ans);
    assert_string_equal(ans.action.message, GREETING);
    assert_int_equal(call.step, CALL_STEP_MENU);
    assert_int_equal(call.shadow, 1);
    assert_int_equal(call.decision, decisions[i]); /* recorded as decided */
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_challenge_flow),
      cmocka_unit_test(test_challenge_failed),
      cmocka_unit_test(test_shadow_mode_gives_the_menu),
      cmocka_unit_test(test_menu_option_lookup),
      cmocka_unit_test(test_transitions),
      cmocka_unit_test(test_digits_full),
      cmocka_unit_test(test_long_messages),
      cmocka_unit_test(test_rendered),
      cmocka_unit_test(test_whole_call),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
