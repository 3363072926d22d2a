/*
 * Hashing for the in-memory tables keyed by caller numbers.
 *
 * Callers choose their caller ID, so a table with a fixed hash could be
 * flooded with numbers crafted to share one bucket, turning each lookup on
 * the loop thread into a walk of the whole table. Every table therefore
 * draws its own random seed, and keys are mixed with it.
 */
#ifndef VS_UTIL_HASH_H
#define VS_UTIL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64's finaliser: every input bit reaches every output bit. */
uint64_t hash_mix64(uint64_t x);

/* `len` bytes at `p` mixed with a table's `seed`, eight at a time. */
uint64_t hash_bytes(uint64_t seed, const void *p, size_t len);

/*
 * A random seed for one table, from getrandom(); if the kernel cannot give
 * one, the clock and `salt` (the table's address) still make it vary.
 */
uint64_t hash_seed(const void *salt);

#endif
