/*
 * Per-number state in memory (see numbers.h).
 *
 * A chained hash table finds a number; every entry also sits on a doubly
 * linked list in order of use, newest first, so that touching an entry and
 * forgetting the oldest are both O(1). Once the table is full, the oldest
 * node is reused for the new number instead of being freed, so a server at
 * its ceiling stops allocating.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../util/err.h"
#include "../util/hash.h"
#include "numbers.h"

/*
 * About 280 bytes each, and 256 more for a number that calls again inside
 * its velocity window: 131,072 numbers is about 35 MiB (screening.max_numbers
 * sets it). A number forgotten here keeps its pass and cached score in
 * the database, but the server only reads those back at start, so a line
 * with more distinct callers than this per cache TTL pays some lookups
 * twice (see docs/architecture.md).
 */
#define NUMBERS_DEFAULT_MAX 131072
#define TABLE_MIN_BUCKETS   16

struct nnode {
  struct number_state st; /* first: numbers_get hands out &node->st */
  struct nnode *hnext;    /* hash chain */
  struct nnode *newer;    /* towards the most recently used */
  struct nnode *older;    /* towards the least recently used */
  uint64_t hash;
};

struct numbers {
  struct nnode **buckets;
  size_t nbuckets; /* a power of two */
  size_t count;
  size_t max;
  struct nnode *newest;
  struct nnode *oldest;
  uint64_t seed;
};

/* A usable key: 1 to CALL_NUMBER_SIZE - 1 bytes, so it fits the record. */
static size_t key_len(const char *number)
{
  size_t len;

  if (!number)
    return 0;
  len = strnlen(number, CALL_NUMBER_SIZE);
  return len < CALL_NUMBER_SIZE ? len : 0;
}

static size_t bucket_of(uint64_t hash, size_t nbuckets)
{
  return (size_t)(hash & (uint64_t)(nbuckets - 1));
}

static int table_grow(struct numbers *n)
{
  size_t nb = n->nbuckets ? n->nbuckets * 2 : TABLE_MIN_BUCKETS;
  struct nnode **b;
  struct nnode *node;

  if (nb < n->nbuckets || nb > SIZE_MAX / sizeof(*b))
    return VS_ERR_NOMEM;
  b = calloc(nb, sizeof(*b));
  if (!b)
    return VS_ERR_NOMEM;
  /* Every node is on the use list, which is quicker to walk than buckets. */
  for (node = n->newest; node; node = node->older) {
    size_t j = bucket_of(node->hash, nb);

    node->hnext = b[j];
    b[j] = node;
  }
  free(n->buckets);
  n->buckets = b;
  n->nbuckets = nb;
  return 0;
}

static struct nnode *table_find(const struct numbers *n, const char *number,
                                uint64_t hash)
{
  struct nnode *node = n->buckets[bucket_of(hash, n->nbuckets)];

  while (node &&
         (node->hash != hash || strcmp(node->st.rec.number, number) != 0))
    node = node->hnext;
  return node;
}

static void table_link(struct numbers *n, struct nnode *node)
{
  size_t b = bucket_of(node->hash, n->nbuckets);

  node->hnext = n->buckets[b];
  n->buckets[b] = node;
}

static void table_unlink(struct numbers *n, struct nnode *node)
{
  struct nnode **p = &n->buckets[bucket_of(node->hash, n->nbuckets)];

  while (*p && *p != node)
    p = &(*p)->hnext;
  if (*p)
    *p = node->hnext;
  node->hnext = NULL;
}

static void lru_unlink(struct numbers *n, struct nnode *node)
{
  if (node->newer)
    node->newer->older = node->older;
  else
    n->newest = node->older;
  if (node->older)
    node->older->newer = node->newer;
  else
    n->oldest = node->newer;
  node->newer = NULL;
  node->older = NULL;
}

static void lru_push_newest(struct numbers *n, struct nnode *node)
{
  node->newer = NULL;
  node->older = n->newest;
  if (n->newest)
    n->newest->newer = node;
  else
    n->oldest = node;
  n->newest = node;
}

static void lru_touch(struct numbers *n, struct nnode *node)
{
  if (n->newest == node)
    return;
  lru_unlink(n, node);
  lru_push_newest(n, node);
}

struct numbers *numbers_create(size_t max_numbers)
{
  struct numbers *n = calloc(1, sizeof(*n));

  if (!n)
    return NULL;
  n->max = max_numbers ? max_numbers : NUMBERS_DEFAULT_MAX;
  n->seed = hash_seed(n);
  if (table_grow(n)) {
    free(n);
    return NULL;
  }
  return n;
}

void numbers_destroy(struct numbers *n)
{
  struct nnode *node;

  if (!n)
    return;
  node = n->newest;
  while (node) {
    struct nnode *older = node->older;

    free(node->st.ring);
    free(node);
    node = older;
  }
  free(n->buckets);
  free(n);
}

/*
 * An empty number or one too long for the record gives NULL as well: it
 * cannot be stored under its own key, and cutting it could merge two
 * callers.
 */
struct number_state *numbers_get(struct numbers *n, const char *number,
                                 int create)
{
  char key[CALL_NUMBER_SIZE];
  size_t len = key_len(number);
  struct nnode *node;
  uint64_t hash;

  if (!n || !len)
    return NULL;
  /* `number` may be the record of the node that making room reuses. */
  memcpy(key, number, len + 1);
  number = key;
  hash = hash_bytes(n->seed, number, len);
  node = table_find(n, number, hash);
  if (node) {
    lru_touch(n, node);
    return &node->st;
  }
  if (!create)
    return NULL;

  if (n->count >= n->max) {
    node = n->oldest;
    lru_unlink(n, node);
    table_unlink(n, node);
    n->count--;
    free(node->st.ring);
  } else {
    /* Chains work at any load: a failed growth only costs speed. */
    if (n->count >= n->nbuckets)
      (void)table_grow(n);
    node = malloc(sizeof(*node));
    if (!node)
      return NULL;
  }
  memset(node, 0, sizeof(*node));
  number_record_init(&node->st.rec, number);
  /* The key must be exactly `number`, whatever the record init keeps. */
  memcpy(node->st.rec.number, number, len + 1);
  node->hash = hash;
  table_link(n, node);
  lru_push_newest(n, node);
  n->count++;
  return &node->st;
}

/*
 * Started within the window: less than `window_ms` before `now_ms`. A call
 * stamped after `now_ms` (the clock stepped back) counts, so that a clock
 * change cannot hide a burst. The subtraction is done unsigned because
 * t < now makes it exact where int64_t could overflow.
 */
static int within(int64_t t, int64_t now_ms, int64_t window_ms)
{
  if (t >= now_ms)
    return 1;
  return (uint64_t)now_ms - (uint64_t)t < (uint64_t)window_ms;
}

/*
 * Adds a call to the history, moving it into a ring when it is the
 * second. Returns -1 if the ring cannot be allocated: the history then
 * keeps only the newest call.
 */
static int history_push(struct number_state *s, int64_t t_ms)
{
  unsigned head;

  if (!s->ring) {
    if (s->ncalls == 0) {
      s->last_ms = t_ms;
      s->ncalls = 1;
      return 0;
    }
    s->ring = malloc(NUMBERS_VELOCITY_RING * sizeof(*s->ring));
    if (!s->ring) {
      s->last_ms = t_ms;
      return -1;
    }
    s->ring[0] = s->last_ms;
    s->head = 1;
    s->ncalls = 1;
  }
  /* The struct is public; a stray head or count must not index past it. */
  head = s->head % NUMBERS_VELOCITY_RING;
  s->ring[head] = t_ms;
  s->head = (head + 1) % NUMBERS_VELOCITY_RING;
  if (s->ncalls < NUMBERS_VELOCITY_RING)
    s->ncalls++;
  else
    s->ncalls = NUMBERS_VELOCITY_RING;
  return 0;
}

void numbers_forget_calls(struct number_state *s)
{
  if (!s)
    return;
  free(s->ring);
  s->ring = NULL;
  s->ncalls = 0;
  s->head = 0;
}

/* The history becomes this one call, kept inline. */
static void history_restart(struct number_state *s, int64_t t_ms)
{
  numbers_forget_calls(s);
  s->last_ms = t_ms;
  s->ncalls = 1;
}

unsigned numbers_record_call(struct number_state *s, int64_t now_ms,
                             int64_t window_ms)
{
  unsigned count = 0;
  unsigned k;

  if (!s)
    return 0;
  /* Without a window, or once every remembered call has left it, the
   * history is only this call. */
  if (window_ms <= 0 ||
      (!s->ring && (!s->ncalls || !within(s->last_ms, now_ms, window_ms)))) {
    history_restart(s, now_ms);
    return 1;
  }
  if (history_push(s, now_ms))
    return 2; /* no ring: the previous call, inside the window, and this */
  /* Every remembered call, newest first; old ones fall out of the count. */
  for (k = 1; k <= s->ncalls; k++) {
    unsigned i = (s->head + NUMBERS_VELOCITY_RING - k) % NUMBERS_VELOCITY_RING;

    if (within(s->ring[i], now_ms, window_ms))
      count++;
  }
  if (count == 1)
    history_restart(s, now_ms); /* the burst is over: free its ring */
  return count;
}

int numbers_load_record(struct numbers *n, const struct number_record *r)
{
  struct number_record copy;
  struct number_state *s;

  if (!n || !r || !key_len(r->number))
    return VS_ERR_INVAL;
  /* `r` may live in the node that making room reuses, as in numbers_get. */
  copy = *r;
  s = numbers_get(n, copy.number, 1);
  if (!s)
    return VS_ERR_NOMEM;
  s->rec = copy;
  s->rec.risk_level[sizeof(s->rec.risk_level) - 1] = '\0';
  s->rec.recommendation[sizeof(s->rec.recommendation) - 1] = '\0';
  s->rec.phone_type[sizeof(s->rec.phone_type) - 1] = '\0';
  s->rec.score_ref[sizeof(s->rec.score_ref) - 1] = '\0';
  return 0;
}

int numbers_load_call(struct numbers *n, const char *number,
                      int64_t started_ms)
{
  struct number_state *s;

  if (!n || !key_len(number))
    return VS_ERR_INVAL;
  s = numbers_get(n, number, 1);
  if (!s)
    return VS_ERR_NOMEM;
  return history_push(s, started_ms) ? VS_ERR_NOMEM : 0;
}

size_t numbers_count(const struct numbers *n)
{
  return n ? n->count : 0;
}
