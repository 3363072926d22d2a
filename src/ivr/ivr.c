#include <stdio.h>
#include <string.h>

#include "ivr.h"

static void speak(const struct config *cfg, struct ivr_answer *ans,
                  const char *message, unsigned collect)
{
  memset(&ans->action, 0, sizeof(ans->action));
  ans->outcome = IVR_OUTCOME_NONE;
  ans->action.kind = VOICE_ACTION_SPEAK;
  ans->action.message = message;
  ans->action.language = cfg->menu.language;
  ans->action.collect_max = collect;
}

void ivr_hangup(struct call *call, struct ivr_answer *ans)
{
  memset(&ans->action, 0, sizeof(ans->action));
  ans->outcome = IVR_OUTCOME_NONE;
  ans->action.kind = VOICE_ACTION_HANGUP;
  call->step = CALL_STEP_HUNGUP;
}

/* Speaks the greeting, optionally after a short preface, as one prompt. */
static void menu_prompt(const struct config *cfg, struct call *call,
                        struct ivr_answer *ans, const char *preface)
{
  const char *msg = cfg->menu.greeting;

  if (preface) {
    snprintf(ans->text, sizeof(ans->text), "%s %s", preface,
             cfg->menu.greeting);
    msg = ans->text;
  }
  speak(cfg, ans, msg, 1);
  call->attempts++;
  call->step = CALL_STEP_MENU;
}

/* The block answer chosen by screening.block_action. */
static void block_answer(const struct config *cfg, struct call *call,
                         struct ivr_answer *ans)
{
  switch (cfg->screening.block_action) {
  case BLOCK_ACTION_HANGUP:
    ivr_hangup(call, ans);
    return;
  case BLOCK_ACTION_PLAY:
    memset(&ans->action, 0, sizeof(ans->action));
    ans->outcome = IVR_OUTCOME_NONE;
    ans->action.kind = VOICE_ACTION_PLAY;
    ans->action.url = cfg->screening.block_audio_url;
    break;
  case BLOCK_ACTION_MESSAGE:
    speak(cfg, ans, cfg->screening.block_message, 0);
    break;
  }
  call->step = CALL_STEP_BLOCKING;
}

/*
 * Speaks the challenge for `digit`, after `preface` when retrying. The
 * message's "{digit}" placeholder (the config guarantees exactly one) is
 * replaced by the digit.
 */
static void challenge_prompt(const struct config *cfg, struct call *call,
                             char digit, const char *preface,
                             struct ivr_answer *ans)
{
  const char *msg = cfg->screening.challenge.message;
  const char *at = strstr(msg, "{digit}");
  int n = at ? (int)(at - msg) : (int)strlen(msg);

  snprintf(ans->text, sizeof(ans->text), "%s%s%.*s%c%s",
           preface ? preface : "", preface ? " " : "", n, msg, digit,
           at ? at + 7 : "");
  speak(cfg, ans, ans->text, 1);
  call->challenge_digit[0] = digit;
  call->challenge_digit[1] = '\0';
  call->challenge_tries++;
  call->step = CALL_STEP_CHALLENGE;
}

void ivr_start(const struct config *cfg, struct call *call, char digit,
               struct ivr_answer *ans)
{
  enum call_decision d = call->decision;

  /* Shadow mode records the decision and lets everyone in. */
  call->shadow = cfg->screening.mode == MODE_SHADOW;
  if (call->shadow)
    d = CALL_DECISION_ALLOW;
  switch (d) {
  case CALL_DECISION_ALLOW:
  case CALL_DECISION_NONE:
    call->attempts = 0;
    menu_prompt(cfg, call, ans, NULL);
    return;
  case CALL_DECISION_CHALLENGE:
    call->challenge_tries = 0;
    challenge_prompt(cfg, call, digit, NULL, ans);
    return;
  case CALL_DECISION_BLOCK:
    break;
  }
  block_answer(cfg, call, ans);
}

/* The caller answered the challenge prompt (or let it time out). */
static void on_challenge_digit(const struct config *cfg, struct call *call,
                               const struct voice_event *ev, char digit,
                               struct ivr_answer *ans)
{
  size_t n = strlen(call->digits);

  if (ev->digits[0] && n + 1 < sizeof(call->digits)) {
    call->digits[n] = ev->digits[0];
    call->digits[n + 1] = '\0';
  }
  if (ev->digits[0] && ev->digits[0] == call->challenge_digit[0]) {
    CALL_SET(call->challenge_result, "passed");
    call->attempts = 0;
    menu_prompt(cfg, call, ans, NULL);
    ans->outcome = IVR_OUTCOME_CHALLENGE_PASSED;
    return;
  }
  if (call->challenge_tries < cfg->screening.challenge.attempts) {
    challenge_prompt(cfg, call, digit, cfg->screening.challenge.retry_message,
                     ans);
    return;
  }
  CALL_SET(call->challenge_result, "failed");
  block_answer(cfg, call, ans);
  ans->outcome = IVR_OUTCOME_CHALLENGE_FAILED;
}

/* Number shown to the department: ours, or the caller's when asked for. */
static const char *dial_caller_id(const struct config *cfg,
                                  const struct call *call)
{
  if (cfg->menu.caller_id == CALLER_ID_CALLER && call->caller[0])
    return call->caller;
  return cfg->telesign.virtual_number[0] ? cfg->telesign.virtual_number
                                         : call->to;
}

static void on_menu_digit(const struct config *cfg, struct call *call,
                          const struct voice_event *ev, struct ivr_answer *ans)
{
  const struct config_menu_option *opt = NULL;
  const char *preface = NULL;
  size_t n = strlen(call->digits);

  if (ev->digits[0]) {
    if (n + 1 < sizeof(call->digits)) {
      call->digits[n] = ev->digits[0];
      call->digits[n + 1] = '\0';
    }
    opt = config_menu_option(cfg, ev->digits[0]);
    if (!opt)
      preface = cfg->menu.invalid_message;
  }
  if (opt) {
    memset(&ans->action, 0, sizeof(ans->action));
    ans->outcome = IVR_OUTCOME_NONE;
    ans->action.kind = VOICE_ACTION_DIAL;
    ans->action.to = opt->dial;
    ans->action.caller_id = dial_caller_id(cfg, call);
    CALL_SET(call->department, opt->name);
    CALL_SET(call->dialled, opt->dial);
    call->step = CALL_STEP_DIALLING;
    return;
  }
  if (call->attempts < cfg->menu.attempts) {
    menu_prompt(cfg, call, ans, preface);
    return;
  }
  if (preface) {
    snprintf(ans->text, sizeof(ans->text), "%s %s", preface,
             cfg->menu.goodbye_message);
    speak(cfg, ans, ans->text, 0);
  } else {
    speak(cfg, ans, cfg->menu.goodbye_message, 0);
  }
  call->step = CALL_STEP_GOODBYE;
}

void ivr_on_prompt_done(const struct config *cfg, struct call *call,
                        const struct voice_event *ev, char digit,
                        struct ivr_answer *ans)
{
  if (call->step == CALL_STEP_MENU)
    on_menu_digit(cfg, call, ev, ans);
  else if (call->step == CALL_STEP_CHALLENGE)
    on_challenge_digit(cfg, call, ev, digit, ans);
  else
    ivr_hangup(call, ans);
}

/*
 * A dial that was answered has done its job. What TeleSign does with the
 * answer to an answered dial_completed is not documented; its own IVR demo
 * answers hangup there, and so do we (see docs/architecture.md, open
 * questions).
 */
void ivr_on_dial_done(const struct config *cfg, struct call *call,
                      const struct voice_event *ev, struct ivr_answer *ans)
{
  CALL_SET(call->dial_status, ev->status);
  if (call->step != CALL_STEP_DIALLING) {
    ivr_hangup(call, ans);
    return;
  }
  if (strcmp(ev->status, "answered") == 0) {
    ivr_hangup(call, ans);
    call->step = CALL_STEP_CONNECTED;
    return;
  }
  speak(cfg, ans, cfg->menu.unavailable_message, 0);
  call->step = CALL_STEP_UNAVAILABLE;
}
