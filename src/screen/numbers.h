/*
 * What the screening pipeline remembers about each caller number, in
 * memory on the loop thread: its recent calls (for velocity), its
 * challenge pass and failures, and its cached Score result.
 *
 * The table is bounded: past `max_numbers` entries the least recently
 * touched one is forgotten (its persisted part, a struct number_record,
 * is in the store; only velocity history is lost, and only for a number
 * that has not called for the longest time).
 *
 * Loop thread only. Pointers returned are borrowed until the next call
 * that may add an entry (numbers_get with create, numbers_load).
 */
#ifndef VS_SCREEN_NUMBERS_H
#define VS_SCREEN_NUMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "../store/records.h"

/* Calls remembered per number; screening.velocity.max_calls stays below. */
#define NUMBERS_VELOCITY_RING 32

/*
 * Most numbers call once in a velocity window, so their history is one
 * time kept inline; the ring of NUMBERS_VELOCITY_RING times is allocated
 * only for a number that calls again inside the window, and freed once
 * every call in it has left the window. Only numbers.c touches the
 * history fields.
 */
struct number_state {
  struct number_record rec; /* the persisted part */
  int64_t last_ms;          /* Unix ms of the one call when `ring` is NULL */
  int64_t *ring;            /* or NUMBERS_VELOCITY_RING times; the table's */
  unsigned ncalls;          /* calls remembered (at most one without ring) */
  unsigned head;            /* next slot of `ring` to write */
  /* The Score lookup in flight for this number, owned by the screening
   * module, which shares it among concurrent calls; NULL when none. An
   * entry evicted meanwhile only costs a second lookup. */
  void *inflight;
};

struct numbers;

/* Returns NULL when out of memory. max_numbers 0 means 131072. */
struct numbers *numbers_create(size_t max_numbers);
void numbers_destroy(struct numbers *n);

/*
 * The state of `number`, or NULL if unknown. With `create`, an unknown
 * number gets a fresh entry (NULL only when out of memory). Either way the
 * entry becomes the most recently used.
 */
struct number_state *numbers_get(struct numbers *n, const char *number,
                                 int create);

/*
 * Records a call at `now_ms` and returns how many calls of this number,
 * this one included, started within the last `window_ms` (capped at
 * NUMBERS_VELOCITY_RING).
 */
unsigned numbers_record_call(struct number_state *s, int64_t now_ms,
                             int64_t window_ms);

/* Forgets the number's recent calls (velocity starts again from none). */
void numbers_forget_calls(struct number_state *s);

/* Seeds the table from the store at start (records and recent calls). */
int numbers_load_record(struct numbers *n, const struct number_record *r);
int numbers_load_call(struct numbers *n, const char *number,
                      int64_t started_ms);

size_t numbers_count(const struct numbers *n);

#endif
