/*
 * The simulator's Score API double: an HTTP server on 127.0.0.1, in the
 * simulator's own process (libmicrohttpd, a thread per connection), that
 * answers TeleSign's two Score endpoints from the traffic model:
 *
 *   POST .../intelligence/phone   body phone_number=<digits>&...
 *   POST .../v1/score/<digits>    (legacy)
 *
 * The n-th lookup of a number gets sim_lookup(traffic, number, n): its
 * score (in TeleSign's response format, reference section 3.3, with the
 * level and recommendation of the example decision matrix), or a failure
 * (HTTP 503, or no answer until after the server's deadline), after the
 * model's latency, really slept, so that ring times are real.
 *
 * Each lookup is also put down to the call it was made for: the simulator
 * never has two calls of one number in flight at once, and tells the
 * double which call of a number is in flight (score_model_call_begin and
 * _end), so a lookup of the number belongs to that call. That is how the
 * lookups of one day of a run are counted.
 *
 * It does not check signatures: tests/support/score_double.c is the strict
 * double; this one is about volume and the model.
 */
#ifndef VS_SIM_SCORE_MODEL_H
#define VS_SIM_SCORE_MODEL_H

#include <stdint.h>

#include "model.h"

struct score_model;

struct score_model_stats {
  uint64_t requests;    /* Score requests answered or failed on purpose */
  uint64_t ok;          /* answered with a score */
  uint64_t unavailable; /* answered 503 */
  uint64_t hung;        /* held past the deadline */
  uint64_t unknown;     /* numbers the run does not know */
  uint64_t bad;         /* requests that were not a Score lookup */
  uint64_t stray;       /* lookups of a number with no call of it in
                           flight (never, if the server only looks up
                           while deciding a call) */
};

/*
 * Starts the double on 127.0.0.1 (any free port) for `t`, which must
 * outlive it. `hang_ms` is how long a hanging lookup is held before it is
 * answered anyway (past the server's timeout). Returns 0 or -1.
 */
int score_model_start(const struct sim_traffic *t, unsigned hang_ms,
                      struct score_model **out);
unsigned score_model_port(const struct score_model *m);
void score_model_stats(struct score_model *m, struct score_model_stats *out);
/* Lookups made of the number with index n (numbers[n]) so far. */
uint32_t score_model_lookups_of(struct score_model *m, int32_t n);
/* The call with this index (t->calls[call]) of number n is in flight from
 * now on, until score_model_call_end(); n < 0 (no caller ID) is ignored. */
void score_model_call_begin(struct score_model *m, int32_t n, uint32_t call);
void score_model_call_end(struct score_model *m, int32_t n);
/* Lookups made while the call was in flight. */
uint32_t score_model_lookups_of_call(struct score_model *m, uint32_t call);
/* Stops it (cutting short any lookup being held) and frees it. */
void score_model_stop(struct score_model *m);

#endif
