/*
 * A Bloom filter of 64-bit hashes: a set that answers "certainly not in
 * it" or "maybe", in a fixed size, with no false "certainly not".
 *
 * It is blocked: a hash sets BLOOM_PROBES bits in one 64-bit word, so a
 * look-up reads one word (one cache line) rather than one per bit. The
 * word comes from the hash's low bits and the bits within it from its top
 * 36, so the hash must be well mixed throughout (util/hash's are). At 16
 * bits per member 0.4% of non-members answer "maybe" (tests/unit/
 * test_bloom.c measures it); past that the rate climbs, but a member
 * always answers "maybe". Nothing can be taken out: a caller that deletes
 * members clears the filter and adds the rest again.
 *
 * Threads: none of its own; whoever owns a filter is the only one to
 * touch it.
 */
#ifndef VS_UTIL_BLOOM_H
#define VS_UTIL_BLOOM_H

#include <stddef.h>
#include <stdint.h>

#define BLOOM_PROBES 6
/* 2^6 bits (one word) to 2^34 bits (2 GiB): the word index fits in 28 bits. */
#define BLOOM_MIN_LOG2 6
#define BLOOM_MAX_LOG2 34

struct bloom;

/*
 * A new, empty filter of 2^log2 bits, zeroed by calloc (pages untouched
 * until a bit on them is set). Returns VS_OK, VS_ERR_INVAL for a log2
 * outside [BLOOM_MIN_LOG2, BLOOM_MAX_LOG2], or VS_ERR_NOMEM; the caller
 * owns *out and frees it with bloom_destroy.
 */
int bloom_create(unsigned log2, struct bloom **out);

/* Frees `b`; NULL is a no-op. */
void bloom_destroy(struct bloom *b);

/* Adds `hash`. */
void bloom_add(struct bloom *b, uint64_t hash);

/* 0 when `hash` was certainly never added, 1 when it may have been. */
int bloom_maybe(const struct bloom *b, uint64_t hash);

/* The filter's size in bits, 2^log2. */
uint64_t bloom_bits(const struct bloom *b);

#endif
