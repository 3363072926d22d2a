/*
 * The IVR: the spoken menu as a state machine over a call record.
 *
 * Each function takes the call's current record, advances it (step,
 * attempts, digits, department...) and fills in the action to answer
 * TeleSign with. Nothing here does I/O, so every transition is a unit test
 * away; the call flow loads and saves the record around these calls.
 *
 * The flow, with menu.attempts = 3:
 *
 *   allowed  -> speak greeting, collect 1 digit              [menu]
 *   challenged -> "to be connected, press D", collect 1      [challenge]
 *   challenge + D        -> the menu (and a pass for the number)
 *   challenge + other    -> retry with a new D, until challenge.attempts,
 *                           then the block answer
 *   (in shadow mode every caller is treated as allowed)
 *   menu + known digit   -> dial the department             [dialling]
 *   menu + no digit      -> greeting again, until attempts, then goodbye
 *   menu + unknown digit -> "not a valid choice" + greeting, same limit
 *   dialling + dial_completed not answered -> "no one is available"
 *   blocked  -> block_action: speak block_message or play
 *               block_audio_url [blocking], or hang up at once [hungup]
 *   blocking/goodbye/unavailable + speak_completed -> hangup [hungup]
 *   anything else -> hangup
 *
 * An ivr_answer is filled by the caller's thread and borrows strings from
 * the config and the call record: both must outlive its rendering.
 */
#ifndef VS_IVR_IVR_H
#define VS_IVR_IVR_H

#include "../config/config.h"
#include "../store/call.h"
#include "../telesign/voice.h"

/* What a transition means for the screening state, beyond the call. */
enum ivr_outcome {
  IVR_OUTCOME_NONE = 0,
  IVR_OUTCOME_CHALLENGE_PASSED,
  IVR_OUTCOME_CHALLENGE_FAILED
};

struct ivr_answer {
  struct voice_action action;
  enum ivr_outcome outcome;
  char text[2100]; /* storage for composed messages */
};

/*
 * First answer for a call whose decision has been made: the menu, the
 * challenge or the block answer. `digit` ('0'..'9') is the one to ask for
 * if a challenge prompt is spoken; the caller draws it at random, which
 * keeps this module free of I/O. The score is never spoken.
 */
void ivr_start(const struct config *cfg, struct call *call, char digit,
               struct ivr_answer *ans);

/*
 * speak_completed or play_completed, with the digits TeleSign collected.
 * `digit` as for ivr_start(), for a challenge retry.
 */
void ivr_on_prompt_done(const struct config *cfg, struct call *call,
                        const struct voice_event *ev, char digit,
                        struct ivr_answer *ans);

/* dial_completed. */
void ivr_on_dial_done(const struct config *cfg, struct call *call,
                      const struct voice_event *ev, struct ivr_answer *ans);

/* Any event with no transition: hang up. */
void ivr_hangup(struct call *call, struct ivr_answer *ans);

#endif
