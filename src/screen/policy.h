/*
 * The screening policy: one pure function from what we know of a caller
 * to a verdict, with the reason of the step that decided and a trace of
 * every step evaluated.
 *
 * The pipeline, first decisive step wins:
 *
 *   1. normalise   an unscorable caller gets screening.anonymous
 *   2. allowlist   a matching entry allows, with no Score lookup
 *   3. blocklist   a matching entry blocks, with no Score lookup
 *   4. velocity    more than velocity.max_calls in velocity.window_s:
 *                  a velocity.action of block blocks; a milder one is a
 *                  floor the score step can only raise, and skips step 5
 *   5. pass        a valid challenge pass allows
 *   6. score       decide_by: score (block_at, challenge_at) or
 *                  recommendation (allow / flag / block)
 *   7. score_error a failed lookup gets on_score_error
 *
 * Reasons are "step:detail", e.g. "allowlist:+1555555*",
 * "velocity:6/600s", "score:742>=600", "score_error:timeout".
 *
 * The function reads only its arguments, so the server, `replay` (stored
 * inputs, another config) and a simulator all decide with the same code.
 * Any thread.
 */
#ifndef VS_SCREEN_POLICY_H
#define VS_SCREEN_POLICY_H

#include "../config/config.h"
#include "../store/records.h"
#include "../telesign/score.h"
#include "phone.h"

enum policy_step {
  POLICY_STEP_NORMALISE,
  POLICY_STEP_ALLOWLIST,
  POLICY_STEP_BLOCKLIST,
  POLICY_STEP_VELOCITY,
  POLICY_STEP_PASS,
  POLICY_STEP_SCORE,
  POLICY_STEP_SCORE_ERROR
};

/* Everything the policy reads. Pointers are borrowed; NULL = none. */
struct policy_inputs {
  enum phone_result phone;          /* PHONE_OK or why unscorable */
  const char *number;               /* normalised, when PHONE_OK */
  const struct list_entry *allow;   /* matching allowlist entry */
  const struct list_entry *block;   /* matching blocklist entry */
  unsigned velocity_count;          /* calls in the window, this one too */
  int has_pass;                     /* an unexpired challenge pass */
  const struct score_result *score; /* NULL until looked up */
};

struct policy_verdict {
  int needs_score;             /* steps 1-5 did not decide: look it up */
  enum config_verdict verdict; /* valid when !needs_score */
  enum policy_step step;       /* the deciding step */
  char reason[96];             /* the deciding step's reason */
  char trace[256];             /* all steps evaluated, space-separated */
};

/*
 * Runs the pipeline. When steps 1-5 decide nothing and `in->score` is
 * NULL, sets needs_score and stops: call again with the lookup's result.
 */
void policy_decide(const struct config *cfg, const struct policy_inputs *in,
                   struct policy_verdict *out);

struct call;

/* Storage that replayed inputs point into. */
struct policy_replay {
  struct list_entry allow;
  struct list_entry block;
  struct score_result score;
};

/*
 * Rebuilds the inputs a stored call was decided on, from what its record
 * kept: the normalisation result, the list entry that matched, the
 * velocity count, the pass and the Score result (the trace says which
 * steps saw what). `in` points into `store` and `c`. Returns 0, or -1 for
 * a call that was never decided.
 */
int policy_inputs_from_call(const struct call *c, struct policy_replay *store,
                            struct policy_inputs *in);

/* "allow", "challenge", "block". */
const char *policy_verdict_name(enum config_verdict v);
/* "normalise", "allowlist", ... */
const char *policy_step_name(enum policy_step s);

#endif
