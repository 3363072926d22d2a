/* A blocked Bloom filter of 64-bit hashes (see bloom.h). */
#include <stdlib.h>

#include "bloom.h"
#include "err.h"

struct bloom {
  uint64_t mask; /* words - 1, the count a power of two */
  uint64_t *words;
};

int bloom_create(unsigned log2, struct bloom **out)
{
  struct bloom *b;

  *out = NULL;
  if (log2 < BLOOM_MIN_LOG2 || log2 > BLOOM_MAX_LOG2)
    return VS_ERR_INVAL;
  b = malloc(sizeof(*b));
  if (!b)
    return VS_ERR_NOMEM;
  b->mask = ((uint64_t)1 << (log2 - 6)) - 1;
  b->words = calloc((size_t)b->mask + 1, sizeof(*b->words));
  if (!b->words) {
    free(b);
    return VS_ERR_NOMEM;
  }
  *out = b;
  return VS_OK;
}

void bloom_destroy(struct bloom *b)
{
  if (!b)
    return;
  free(b->words);
  free(b);
}

/* The hash's bits in its word: six bits of the top 36 choose each. */
static uint64_t pattern(uint64_t hash)
{
  uint64_t bits = 0;

  for (unsigned i = 1; i <= BLOOM_PROBES; i++)
    bits |= (uint64_t)1 << (hash >> (64 - 6 * i) & 63);
  return bits;
}

void bloom_add(struct bloom *b, uint64_t hash)
{
  b->words[hash & b->mask] |= pattern(hash);
}

int bloom_maybe(const struct bloom *b, uint64_t hash)
{
  uint64_t bits = pattern(hash);

  return (b->words[hash & b->mask] & bits) == bits;
}

uint64_t bloom_bits(const struct bloom *b)
{
  return (b->mask + 1) * 64;
}
