/*
 * The allow and block lists in memory (see lists.h).
 *
 * Four chained hash tables: per kind, one for exact entries and one for
 * prefixes, each keyed by the entry's digits. At most 15 digits pack into
 * one 64-bit integer that is different for every digit string, so a probe
 * compares integers, never strings, and numlist_match is one probe per
 * prefix length whatever the size of the list.
 *
 * Entries live in their own nodes, so a growing table moves pointers and
 * never the entries that numlist_match hands out. A match prunes the
 * expired entry it meets, which frees it: a pointer from an earlier match
 * is good only until the next put, remove or match.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../util/err.h"
#include "../util/hash.h"
#include "lists.h"
#include "phone.h"

#define TABLE_MIN_BUCKETS 16

/* Durations end up as expires_ms = now + seconds * 1000, which must fit. */
#define DURATION_MAX_S (INT64_MAX / 1000)

struct lnode {
  struct lnode *next;
  uint64_t key; /* pack_digits() of the entry without its '*' */
  struct list_entry e;
};

struct ltable {
  struct lnode **buckets;
  size_t nbuckets; /* a power of two, or 0 before the first put */
  size_t count;
};

struct numlist {
  struct ltable tables[2][2]; /* [kind][0 exact, 1 prefix] */
  uint64_t seed;
};

/*
 * The first `len` bytes of `s`, 1 to 15 digits, as one integer. The length
 * goes into the top byte so that "1" and "01" differ: 10^15 < 2^50.
 */
static int pack_digits(const char *s, size_t len, uint64_t *key)
{
  uint64_t v = 0;
  size_t i;

  if (len == 0 || len > PHONE_MAX_DIGITS)
    return -1;
  for (i = 0; i < len; i++) {
    if (!phone_is_digit(s[i]))
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *key = v | ((uint64_t)len << 56);
  return 0;
}

static int kind_valid(enum list_kind kind)
{
  return kind == LIST_ALLOW || kind == LIST_BLOCK;
}

/* Splits an entry's text into its table (exact or prefix) and key. */
static int parse_entry(const char *entry, uint64_t *key, int *prefix)
{
  size_t len;

  if (!entry)
    return -1;
  /* Text that fills the field without a NUL is not an entry. */
  len = strnlen(entry, LIST_ENTRY_SIZE);
  if (len == LIST_ENTRY_SIZE)
    return -1;
  *prefix = len > 0 && entry[len - 1] == '*';
  return pack_digits(entry, len - (size_t)*prefix, key);
}

static size_t bucket_of(uint64_t seed, uint64_t key, size_t nbuckets)
{
  return (size_t)(hash_mix64(key ^ seed) & (uint64_t)(nbuckets - 1));
}

/* The link that points at `key`'s node, or at the NULL ending its chain. */
static struct lnode **table_slot(const struct ltable *t, uint64_t seed,
                                 uint64_t key)
{
  struct lnode **p;

  if (!t->nbuckets)
    return NULL;
  p = &t->buckets[bucket_of(seed, key, t->nbuckets)];
  while (*p && (*p)->key != key)
    p = &(*p)->next;
  return p;
}

static int table_grow(struct ltable *t, uint64_t seed)
{
  size_t n = t->nbuckets ? t->nbuckets * 2 : TABLE_MIN_BUCKETS;
  struct lnode **b;
  size_t i;

  if (n < t->nbuckets || n > SIZE_MAX / sizeof(*b))
    return VS_ERR_NOMEM;
  b = calloc(n, sizeof(*b));
  if (!b)
    return VS_ERR_NOMEM;
  for (i = 0; i < t->nbuckets; i++) {
    struct lnode *node = t->buckets[i];

    while (node) {
      struct lnode *next = node->next;
      size_t j = bucket_of(seed, node->key, n);

      node->next = b[j];
      b[j] = node;
      node = next;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
  return 0;
}

static void table_free(struct ltable *t)
{
  size_t i;

  for (i = 0; i < t->nbuckets; i++) {
    struct lnode *node = t->buckets[i];

    while (node) {
      struct lnode *next = node->next;

      free(node);
      node = next;
    }
  }
  free(t->buckets);
  t->buckets = NULL;
  t->nbuckets = 0;
  t->count = 0;
}

static void table_unlink(struct ltable *t, struct lnode **slot)
{
  struct lnode *node = *slot;

  *slot = node->next;
  free(node);
  t->count--;
}

/* Copies an entry, cutting text fields that arrive without their NUL. */
static void copy_entry(struct list_entry *dst, const struct list_entry *src)
{
  *dst = *src;
  dst->note[sizeof(dst->note) - 1] = '\0';
  dst->source[sizeof(dst->source) - 1] = '\0';
}

static int expired(const struct list_entry *e, int64_t now_ms)
{
  return e->expires_ms != 0 && e->expires_ms <= now_ms;
}

struct numlist *numlist_create(void)
{
  struct numlist *l = calloc(1, sizeof(*l));

  if (!l)
    return NULL;
  l->seed = hash_seed(l);
  return l;
}

void numlist_destroy(struct numlist *l)
{
  int k;
  int p;

  if (!l)
    return;
  for (k = 0; k < 2; k++)
    for (p = 0; p < 2; p++)
      table_free(&l->tables[k][p]);
  free(l);
}

int numlist_put(struct numlist *l, const struct list_entry *e)
{
  struct ltable *t;
  struct lnode **slot;
  struct lnode *node;
  uint64_t key;
  int prefix;
  size_t b;

  if (!l || !e || !kind_valid(e->kind) || parse_entry(e->entry, &key, &prefix))
    return VS_ERR_INVAL;
  t = &l->tables[e->kind][prefix];
  slot = table_slot(t, l->seed, key);
  if (slot && *slot) {
    copy_entry(&(*slot)->e, e);
    return 0;
  }
  /*
   * Chains work at any load, so once there are buckets a failed growth
   * only costs speed; the entry still goes in.
   */
  if (t->count >= t->nbuckets && table_grow(t, l->seed) && !t->nbuckets)
    return VS_ERR_NOMEM;
  node = malloc(sizeof(*node));
  if (!node)
    return VS_ERR_NOMEM;
  node->key = key;
  copy_entry(&node->e, e);
  b = bucket_of(l->seed, key, t->nbuckets);
  node->next = t->buckets[b];
  t->buckets[b] = node;
  t->count++;
  return 0;
}

int numlist_remove(struct numlist *l, enum list_kind kind, const char *entry)
{
  struct ltable *t;
  struct lnode **slot;
  uint64_t key;
  int prefix;

  if (!l || !kind_valid(kind) || parse_entry(entry, &key, &prefix))
    return VS_ERR_NOTFOUND;
  t = &l->tables[kind][prefix];
  slot = table_slot(t, l->seed, key);
  if (!slot || !*slot)
    return VS_ERR_NOTFOUND;
  table_unlink(t, slot);
  return 0;
}

/* The live entry under `key`; an expired one is dropped on the way. */
static const struct list_entry *lookup(struct ltable *t, uint64_t seed,
                                       uint64_t key, int64_t now_ms)
{
  struct lnode **slot;

  if (!t->count)
    return NULL;
  slot = table_slot(t, seed, key);
  if (!slot || !*slot)
    return NULL;
  if (expired(&(*slot)->e, now_ms)) {
    table_unlink(t, slot);
    return NULL;
  }
  return &(*slot)->e;
}

const struct list_entry *numlist_match(struct numlist *l, enum list_kind kind,
                                       const char *number, int64_t now_ms)
{
  uint64_t keys[PHONE_MAX_DIGITS + 1]; /* keys[k]: the first k digits */
  const struct list_entry *e;
  uint64_t v = 0;
  size_t len;
  size_t k;

  if (!l || !number || !kind_valid(kind))
    return NULL;
  len = strnlen(number, PHONE_MAX_DIGITS + 1);
  if (len == 0 || len > PHONE_MAX_DIGITS)
    return NULL;
  for (k = 0; k < len; k++) {
    if (!phone_is_digit(number[k]))
      return NULL;
    v = v * 10 + (uint64_t)(number[k] - '0');
    keys[k + 1] = v | ((uint64_t)(k + 1) << 56);
  }

  e = lookup(&l->tables[kind][0], l->seed, keys[len], now_ms);
  if (e)
    return e;
  /* A prefix as long as the number is the number: prefixes stop short. */
  for (k = len - 1; k >= 1; k--) {
    e = lookup(&l->tables[kind][1], l->seed, keys[k], now_ms);
    if (e)
      return e;
  }
  return NULL;
}

size_t numlist_count(const struct numlist *l)
{
  if (!l)
    return 0;
  return l->tables[0][0].count + l->tables[0][1].count +
         l->tables[1][0].count + l->tables[1][1].count;
}

void numlist_each(const struct numlist *l, int64_t now_ms, numlist_each_cb cb,
                  void *arg)
{
  for (size_t t = 0; t < 4; t++) {
    const struct ltable *tb = &l->tables[t / 2][t % 2];

    for (size_t b = 0; b < tb->nbuckets; b++)
      for (const struct lnode *n = tb->buckets[b]; n; n = n->next)
        if ((!n->e.expires_ms || n->e.expires_ms > now_ms) && cb(arg, &n->e))
          return;
  }
}

/*
 * A prefix goes through the normaliser's rules 3 to 5 by hand, as
 * phone_normalise() wants a whole number: formatting dropped, 00 or 011
 * dropped, and only the NANP default's "1" added. A trunk '0' is not
 * replaced by the country code, since "0*" cannot say how many digits of
 * the national number follow; and a prefix left starting with '0' is
 * refused, as no normalised number starts with one and it would never
 * match.
 *
 * Unlike a full number, a normalised prefix is not always read back as
 * itself: with the NANP default "4420*" means "14420*". Written with a
 * '+' in front it always is, so anything that re-reads stored entries as
 * input must add one (or take them as normalised and only numlist_put
 * them, which checks their shape).
 */
static int normalise_prefix(const char *p, size_t plen, const char *cc,
                            char *out, char *err, size_t errlen)
{
  char d[PHONE_MAX_INPUT + 2]; /* every byte a digit, plus the "1" */
  size_t n = 0;
  size_t skip = 0;
  size_t i;
  int nanp;
  int plus = 0;
  int international = 0;

  if (!phone_country_code_valid(cc))
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "default country '%s' is not a country code", cc);
  nanp = strcmp(cc, "1") == 0;
  for (i = 0; i < plen; i++) {
    char c = p[i];

    if (phone_is_digit(c))
      d[n++] = c;
    else if (c == '+')
      plus |= (n == 0);
    else if (!phone_is_separator(c))
      return vs_fail(err, errlen, VS_ERR_INVAL,
                     "prefix '%.*s*' may only hold digits before its '*'",
                     (int)plen, p);
  }
  if (!n)
    return vs_fail(err, errlen, VS_ERR_INVAL, "prefix '%.*s*' has no digits",
                   (int)plen, p);

  if (!plus) {
    skip = phone_international_prefix(d, n, nanp);
    if (skip) {
      memmove(d, d + skip, n - skip);
      n -= skip;
      international = 1;
    }
  }
  if (!n)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "prefix '%.*s*' has no digits after the international "
                   "prefix",
                   (int)plen, p);
  if (d[0] == '0')
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "prefix '%.*s*' starts with 0, which no number does; "
                   "write it with its country code",
                   (int)plen, p);
  /* "555*" with the NANP default is area code 555. */
  if (!plus && !international && nanp && d[0] >= '2') {
    memmove(d + 1, d, n);
    d[0] = '1';
    n++;
  }
  if (n > PHONE_MAX_DIGITS)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "prefix '%.*s*' has more than %d digits", (int)plen, p,
                   PHONE_MAX_DIGITS);

  /* n <= 15, so the digits, '*' and NUL fit in LIST_ENTRY_SIZE. */
  memcpy(out, d, n);
  out[n] = '*';
  out[n + 1] = '\0';
  return 0;
}

int list_entry_normalise(const char *raw, const char *default_country,
                         char *out, char *err, size_t errlen)
{
  char num[PHONE_BUF_SIZE];
  enum phone_result r;
  size_t len;
  size_t start;
  size_t end;

  if (err && errlen)
    err[0] = '\0';
  if (!out)
    return vs_fail(err, errlen, VS_ERR_INVAL, "no room for the entry");
  out[0] = '\0';
  if (!raw)
    return vs_fail(err, errlen, VS_ERR_INVAL, "the entry is empty");
  len = strnlen(raw, PHONE_MAX_INPUT + 1);
  if (len > PHONE_MAX_INPUT)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "the entry is longer than %d bytes", PHONE_MAX_INPUT);
  start = 0;
  end = len;
  while (start < end && phone_is_space(raw[start]))
    start++;
  while (end > start && phone_is_space(raw[end - 1]))
    end--;
  if (start == end)
    return vs_fail(err, errlen, VS_ERR_INVAL, "the entry is empty");

  if (raw[end - 1] == '*')
    return normalise_prefix(raw + start, end - 1 - start,
                            default_country ? default_country : "1", out, err,
                            errlen);

  r = phone_normalise(raw, default_country, num);
  if (r != PHONE_OK)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "'%.*s' is not a usable phone number (%s)",
                   (int)(end - start), raw + start, phone_result_name(r));
  /* At most 15 digits and the NUL: inside LIST_ENTRY_SIZE. */
  memcpy(out, num, strlen(num) + 1);
  return 0;
}

int list_parse_duration(const char *s, int64_t *seconds)
{
  int64_t v = 0;
  int64_t unit;
  size_t i;

  /* A leading digit shuts out "", "-5", "+5" and " 5" in one test. */
  if (!s || !seconds || !phone_is_digit(s[0]))
    return VS_ERR_INVAL;
  for (i = 0; phone_is_digit(s[i]); i++) {
    int64_t digit = s[i] - '0';

    if (v > (DURATION_MAX_S - digit) / 10)
      return VS_ERR_INVAL;
    v = v * 10 + digit;
  }
  switch (s[i]) {
  case '\0':
  case 's':
    unit = 1;
    break;
  case 'm':
    unit = 60;
    break;
  case 'h':
    unit = 3600;
    break;
  case 'd':
    unit = 86400;
    break;
  default:
    return VS_ERR_INVAL;
  }
  if (s[i] && s[i + 1])
    return VS_ERR_INVAL;
  if (v > DURATION_MAX_S / unit)
    return VS_ERR_INVAL;
  *seconds = v * unit;
  return 0;
}
