/*
 * The screening decision: given what we know of a caller, allow (the menu)
 * or block, and say why in a short reason that is stored with the call.
 *
 * Reasons are machine-readable "step:detail" strings, for example
 * "score:742>=600", "score:123<600", "score_error:timeout->allow" or
 * "unscorable:anonymous->block". Pure functions; any thread.
 */
#ifndef VS_SCREEN_DECIDE_H
#define VS_SCREEN_DECIDE_H

#include "../config/config.h"
#include "../store/call.h"
#include "../telesign/score.h"
#include "phone.h"

struct decision {
  enum call_decision verdict;
  char reason[96];
};

/* Decides from a finished Score lookup (successful or not). */
void decide_on_score(const struct config *cfg, const struct score_result *res,
                     struct decision *out);

/* Decides for a caller whose number could not be normalised. */
void decide_unscorable(const struct config *cfg, enum phone_result why,
                       struct decision *out);

#endif
