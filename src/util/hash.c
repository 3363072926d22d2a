#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

#include "hash.h"

uint64_t hash_mix64(uint64_t x)
{
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t hash_bytes(uint64_t seed, const void *p, size_t len)
{
  const unsigned char *s = p;
  uint64_t h = seed ^ ((uint64_t)len * 0x9e3779b97f4a7c15ULL);
  uint64_t w;

  while (len >= 8) {
    memcpy(&w, s, 8);
    h = hash_mix64(h ^ w);
    s += 8;
    len -= 8;
  }
  w = 0;
  memcpy(&w, s, len);
  return hash_mix64(h ^ w);
}

uint64_t hash_seed(const void *salt)
{
  uint64_t seed = 0;

  if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
    seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)salt;
  return hash_mix64(seed);
}
