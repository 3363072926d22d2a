/*
 * The allow and block lists, in memory: exact numbers and prefixes, each
 * with an optional expiry.
 *
 * An entry is a normalised number ("15555550123") or a prefix written with
 * a trailing '*' ("1555555*"). A number matches the most specific entry:
 * an exact entry beats any prefix, and a longer prefix beats a shorter one.
 * Expired entries never match (they are pruned as they are met).
 *
 * Matching costs one hash lookup per possible prefix length (at most 15),
 * so it does not grow with the size of the list.
 *
 * A numlist belongs to the thread that created it (the loop thread in the
 * server); it is a cache of the store's `lists` table, which is the source
 * of truth and the place CLI edits go.
 */
#ifndef VS_SCREEN_LISTS_H
#define VS_SCREEN_LISTS_H

#include <stddef.h>
#include <stdint.h>

#include "../store/records.h"

/*
 * Normalises a list entry as callers are normalised: "+1 (555) 555-*"
 * becomes "1555555*". `default_country` as for phone_normalise(). A prefix
 * must keep at least one digit. Returns 0 with the entry in `out`
 * (LIST_ENTRY_SIZE bytes), or VS_ERR_INVAL with the reason in `err`.
 */
int list_entry_normalise(const char *raw, const char *default_country,
                         char *out, char *err, size_t errlen);

/*
 * Parses a duration such as "30d", "12h", "90m", "45s" or a bare number of
 * seconds into seconds. Returns 0 or VS_ERR_INVAL.
 */
int list_parse_duration(const char *s, int64_t *seconds);

struct numlist;

/* Creates an empty list set (both kinds); returns NULL when out of memory. */
struct numlist *numlist_create(void);
void numlist_destroy(struct numlist *l);

/*
 * Adds or replaces the entry (same kind and entry text). The struct is
 * copied. Returns 0, VS_ERR_INVAL for a malformed entry, or VS_ERR_NOMEM.
 */
int numlist_put(struct numlist *l, const struct list_entry *e);

/* Removes an entry; returns 0 or VS_ERR_NOTFOUND. */
int numlist_remove(struct numlist *l, enum list_kind kind, const char *entry);

/*
 * The most specific unexpired entry of `kind` matching `number` at
 * `now_ms`, or NULL. Borrowed until the next change to the list.
 */
const struct list_entry *numlist_match(struct numlist *l, enum list_kind kind,
                                       const char *number, int64_t now_ms);

/* Entries of both kinds, expired ones included until pruned. */
size_t numlist_count(const struct numlist *l);

/*
 * Calls `cb` with each entry unexpired at `now_ms`, in no particular
 * order, until it returns non-zero. The entry is borrowed for the call;
 * `cb` must not change the list.
 */
typedef int (*numlist_each_cb)(void *arg, const struct list_entry *e);
void numlist_each(const struct numlist *l, int64_t now_ms, numlist_each_cb cb,
                  void *arg);

#endif
