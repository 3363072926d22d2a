/*
 * The SQLite store's bulk-kept indexes of calls by caller and by reference
 * (see sqlite_call_index.h).
 */
#include <stdlib.h>
#include <string.h>

#include "../util/bloom.h"
#include "../util/err.h"
#include "../util/hash.h"
#include "../util/log.h"
#include "call.h"
#include "sqlite_call_index.h"

static const char sql_through[] = "SELECT through FROM call_index";

/* The calls after ?1, oldest first, with their keys. */
static const char sql_pending[] =
    "SELECT id, caller, ref, started_ms FROM calls WHERE id > ?1 ORDER BY "
    "id LIMIT ?2";

/*
 * The keys are the pass's copies, read with the calls: taking them from
 * the table again cost a read of each call's page, which the pass reaches
 * in key order, at random. That made a step of 256 reference entries take
 * 1.1 ms and one of caller entries 0.6 ms, and the store worker 19.8 us a
 * cache-hit incoming_call against 15.5 us with the copies.
 * A call deleted meanwhile abandons the pass (sqlite_call_index_deleted).
 * OR IGNORE makes the entries of an abandoned pass harmless; OR REPLACE
 * gives a reference to the newest call that had it, should a deleted one
 * have left its entry.
 */
static const char sql_insert_caller[] =
    "INSERT OR IGNORE INTO calls_by_caller (number, at_ms, call) "
    "VALUES (?1, ?2, ?3)";
static const char sql_insert_ref[] =
    "INSERT OR REPLACE INTO calls_by_ref (ref, call) VALUES (?1, ?3)";
static const char sql_insert_recent[] =
    "INSERT OR REPLACE INTO calls_by_ref_recent (ref, call) VALUES (?1, ?3)";
/* (No ?2, the start, in the second: pass_write binds both alike.) */

/*
 * The last step moves `through` to the pass's newest call, ?1, unless
 * that call is gone or is another call now (?2 is the reference the pass
 * read). A deleted newest call gives its id to the next one; the server's
 * own deletes abandon the pass (sqlite_call_index_deleted), but `vs
 * forget` without a server to ask deletes from another process, and a
 * `through` moved past the new call would count it as indexed, with no
 * entries. The pass then starts over instead.
 */
static const char sql_done[] =
    "UPDATE call_index SET through = ?1 WHERE EXISTS (SELECT 1 FROM calls "
    "WHERE id = ?1 AND ref = ?2)";

/* After deletes; IFNULL: with no calls left the next id is 1. */
static const char sql_lower[] =
    "UPDATE call_index SET through = (SELECT IFNULL(MAX(id), 0) FROM "
    "calls) WHERE through > (SELECT IFNULL(MAX(id), 0) FROM calls)";

/* Finding a call: the index, checked against the call it names; a
 * candidate of the table in memory; the pending calls past the table. */
static const char sql_by_ref[] =
    "SELECT c.id FROM calls_by_ref b CROSS JOIN calls c ON c.id = b.call "
    "WHERE b.ref = ?1 AND c.ref = b.ref";
static const char sql_by_ref_recent[] =
    "SELECT c.id FROM calls_by_ref_recent b CROSS JOIN calls c ON c.id = "
    "b.call WHERE b.ref = ?1 AND c.ref = b.ref";
static const char sql_is_ref[] =
    "SELECT id FROM calls WHERE ref = ?1 AND id = ?2";
static const char sql_scan_ref[] =
    "SELECT id FROM calls WHERE ref = ?1 AND id > ?2 LIMIT 1";
static const char sql_load[] =
    "SELECT id, ref FROM calls WHERE id > ?1 ORDER BY id";

/*
 * The filter's load: the next ?2 references from ?1 on, in key order, of
 * the recent level, then of calls_by_ref (see filter_step).
 */
static const char *const sql_filter_load[2] = {
    "SELECT ref FROM calls_by_ref_recent WHERE ref >= ?1 ORDER BY ref "
    "LIMIT ?2",
    "SELECT ref FROM calls_by_ref WHERE ref >= ?1 ORDER BY ref LIMIT ?2"};

/*
 * A merge step: the first ?1 recent entries, in key order, go to
 * calls_by_ref, then leave the recent level (up to ?1 there, the last
 * moved) in the same transaction, so that a look-up finds each in one
 * level or the other. OR REPLACE: as in sql_insert_ref.
 */
static const char sql_merge_read[] =
    "SELECT ref, call FROM calls_by_ref_recent ORDER BY ref LIMIT ?1";
static const char sql_merge_insert[] =
    "INSERT OR REPLACE INTO calls_by_ref (ref, call) VALUES (?1, ?2)";
static const char sql_merge_delete[] =
    "DELETE FROM calls_by_ref_recent WHERE ref <= ?1";
static const char sql_recent_count[] =
    "SELECT count(*) FROM calls_by_ref_recent";

/*
 * A call of the pass and where it sorts in one index. Only locality
 * depends on the key, so a key that cannot hold a caller (empty, not
 * digits, too long) simply sorts last, and a reference sorts by its first
 * eight bytes.
 */
struct pass_row {
  uint64_t key;
  int64_t call;
  int64_t at_ms; /* the call's start, in a caller's row */
  uint32_t text; /* where the caller or reference is in `text` */
  uint32_t len;
};

/* Bytes of keys one pass keeps: room for a full pass of the longest. */
#define PASS_TEXT_MAX                                                         \
  (CALL_INDEX_PASS_MAX * (CALL_REF_SIZE + CALL_NUMBER_SIZE))

enum pass_phase { PASS_IDLE, PASS_READING, PASS_WRITING };

/* A pending call in the table in memory: id 0 marks a free slot. */
struct pending_slot {
  uint64_t hash;
  int64_t id;
};

/*
 * The pending calls by reference, open-addressed with linear probing.
 * Every pending call with an id up to `covered` is in it (INT64_MAX: all
 * of them); the ones after are found by reading the table. `stale`: to
 * be reloaded before its next use.
 */
struct pending {
  struct pending_slot *slots;
  size_t mask; /* slot count - 1, the count a power of two */
  size_t count;
  size_t max;
  int64_t covered;
  int stale;
};

/*
 * The references in both levels of the index, in a Bloom filter: `ready`
 * once the load, a step at a time from `from` on, reached the end of the
 * second level; the passes add what they index meanwhile, so that it then
 * holds every reference. References no longer indexed (a deleted call, a
 * pass's step rolled back) stay in it and only cost a read of the index.
 * `refs` counts what it was given, those too; past its room it grows.
 */
struct ref_filter {
  struct bloom *bloom; /* NULL before the first step */
  uint64_t refs;
  int ready;
  int level;  /* loading the recent level (0), then calls_by_ref (1) */
  int resume; /* `from` is the last reference read, to go on from */
  char from[CALL_REF_SIZE];
  int from_len;
  int64_t since_ms; /* when it was made, for the log */
};

/*
 * The writer connection's statements, the pending calls and the pass in
 * progress. Reading, each step appends the next calls after `last` (at
 * first call_index.through) to caller_rows and ref_rows [0..n); writing,
 * each step moves the next of the 2n entries, caller_rows' then ref_rows',
 * each sorted by key, into its index.
 */
struct sqlite_call_index {
  sqlite3 *db;
  sqlite3_stmt *through;
  sqlite3_stmt *pending_calls;
  sqlite3_stmt *insert_caller;
  sqlite3_stmt *insert_ref;
  sqlite3_stmt *insert_recent;
  sqlite3_stmt *done;
  sqlite3_stmt *lower;
  sqlite3_stmt *find_ref;
  sqlite3_stmt *is_ref;
  sqlite3_stmt *scan_ref;
  sqlite3_stmt *load;
  sqlite3_stmt *filter_load[2];
  sqlite3_stmt *find_recent;
  sqlite3_stmt *merge_read;
  sqlite3_stmt *merge_insert;
  sqlite3_stmt *merge_delete;
  sqlite3_stmt *recent_count;
  sqlite3_stmt *begin;
  sqlite3_stmt *commit;
  sqlite3_stmt *rollback;
  struct sqlite_call_index_limits limits;
  uint64_t seed; /* of the references' hashes */
  struct pending pending;
  struct ref_filter filter;
  struct pass_row *caller_rows; /* CALL_INDEX_PASS_MAX of them, on first use */
  struct pass_row *ref_rows;    /* the same */
  struct pass_row *sort_tmp;    /* the same, for the sort */
  char *text;                   /* PASS_TEXT_MAX bytes of keys, the same */
  size_t text_len;
  enum pass_phase phase;
  size_t n;
  size_t next;
  int64_t last;       /* the newest call read */
  uint32_t last_text; /* its reference, in `text` */
  uint32_t last_len;
  uint64_t saves;  /* since the last pass started */
  int64_t pass_ms; /* when it started */
  size_t added;    /* calls added since the last step */
  size_t owed;     /* entries the pass in progress owes (the header) */
  size_t chunk;    /* what this step may move (see sqlite_call_index_step) */
  /* The recent level's entries, counted on the first step (-1 before)
   * and kept up; deletes make it high until a merge empties the level. */
  int64_t recent;
  int64_t merge_left;  /* entries the merge in progress still moves, or 0 */
  size_t merge_owed;   /* of them, what it owes now (merge_step) */
  int64_t merge_moved; /* and what it moved since it began, for the log */
  int64_t merge_ms;
  int pass_recent; /* this pass's entries by reference go to the recent
                    * level (limits.recent_from) */
};

int sqlite_call_index_create(sqlite3 *db,
                             const struct sqlite_call_index_limits *limits,
                             struct sqlite_call_index **out)
{
  static const struct sqlite_call_index_limits defaults = {
      CALL_INDEX_PENDING_MAX, CALL_INDEX_FILTER_LOAD,
      CALL_INDEX_FILTER_MIN_LOG2, CALL_INDEX_MERGE_MIN,
      CALL_INDEX_RECENT_FROM};
  struct sqlite_call_index *ci = calloc(1, sizeof(*ci));

  if (!ci)
    return VS_ERR_NOMEM;
  ci->db = db;
  ci->limits = limits ? *limits : defaults;
  if (ci->limits.filter_load < 2) /* one is the reference it starts from */
    ci->limits.filter_load = 2;
  ci->seed = hash_seed(ci);
  if (!ci->limits.step_max)
    ci->limits.step_max = CALL_INDEX_STEP_MAX;
  if (ci->limits.step_max < CALL_INDEX_CHUNK)
    ci->limits.step_max = CALL_INDEX_CHUNK;
  if (!ci->limits.owed_max)
    ci->limits.owed_max = CALL_INDEX_OWED_MAX;
  ci->pending.max = ci->limits.pending_max;
  ci->pending.stale = 1;
  ci->recent = -1;
  *out = ci;
  return VS_OK;
}

void sqlite_call_index_destroy(struct sqlite_call_index *ci)
{
  if (!ci)
    return;
  sqlite3_finalize(ci->through);
  sqlite3_finalize(ci->pending_calls);
  sqlite3_finalize(ci->insert_caller);
  sqlite3_finalize(ci->insert_ref);
  sqlite3_finalize(ci->insert_recent);
  sqlite3_finalize(ci->done);
  sqlite3_finalize(ci->lower);
  sqlite3_finalize(ci->find_ref);
  sqlite3_finalize(ci->is_ref);
  sqlite3_finalize(ci->scan_ref);
  sqlite3_finalize(ci->load);
  sqlite3_finalize(ci->filter_load[0]);
  sqlite3_finalize(ci->filter_load[1]);
  sqlite3_finalize(ci->find_recent);
  sqlite3_finalize(ci->merge_read);
  sqlite3_finalize(ci->merge_insert);
  sqlite3_finalize(ci->merge_delete);
  sqlite3_finalize(ci->recent_count);
  sqlite3_finalize(ci->begin);
  sqlite3_finalize(ci->commit);
  sqlite3_finalize(ci->rollback);
  free(ci->pending.slots);
  bloom_destroy(ci->filter.bloom);
  free(ci->caller_rows);
  free(ci->ref_rows);
  free(ci->sort_tmp);
  free(ci->text);
  free(ci);
}

/* Prepares `sql` into *s unless it already is. */
static int prepared(struct sqlite_call_index *ci, const char *sql,
                    sqlite3_stmt **s)
{
  if (*s)
    return SQLITE_OK;
  return sqlite3_prepare_v3(ci->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s,
                            NULL);
}

/* Steps `s` to its end and resets it; SQLITE_OK or SQLite's error. */
static int run(sqlite3_stmt *s)
{
  int rc = sqlite3_step(s);

  sqlite3_reset(s);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/*
 * Steps `s` for its first row: SQLITE_ROW with its first column in *v,
 * SQLITE_DONE with none, or SQLite's error. Resets `s` and its bindings.
 */
static int first_int(sqlite3_stmt *s, int64_t *v)
{
  int rc = sqlite3_step(s);

  if (rc == SQLITE_ROW)
    *v = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc;
}

static int index_fail(struct sqlite_call_index *ci, int rc, const char *what,
                      char *err, size_t errlen)
{
  return vs_fail(err, errlen, rc == SQLITE_NOMEM ? VS_ERR_NOMEM : VS_ERR_IO,
                 "%s: %s", what, sqlite3_errmsg(ci->db));
}

/* ---- the pending calls in memory ------------------------------------ */

/* The hash of `ref`'s `len` bytes (CALL_REF_SIZE at most, as bound). */
static uint64_t ref_hash(const struct sqlite_call_index *ci, const void *ref,
                         size_t len)
{
  return hash_bytes(ci->seed, ref, len < CALL_REF_SIZE ? len : CALL_REF_SIZE);
}

/* Puts a call in a table known to have room for it. */
static void slot_put(struct pending_slot *slots, size_t mask, uint64_t hash,
                     int64_t id)
{
  size_t i = (size_t)hash & mask;

  while (slots[i].id)
    i = (i + 1) & mask;
  slots[i].hash = hash;
  slots[i].id = id;
}

/*
 * Moves the calls with an id above `after` into a new table of `nslots`
 * slots, a power of two; the ones at or below it are dropped.
 */
static int pending_rehash(struct pending *p, size_t nslots, int64_t after)
{
  struct pending_slot *slots = calloc(nslots, sizeof(*slots));
  size_t count = 0;

  if (!slots)
    return VS_ERR_NOMEM;
  for (size_t i = 0; p->slots && i <= p->mask; i++) {
    if (p->slots[i].id > after) {
      slot_put(slots, nslots - 1, p->slots[i].hash, p->slots[i].id);
      count++;
    }
  }
  free(p->slots);
  p->slots = slots;
  p->mask = nslots - 1;
  p->count = count;
  return VS_OK;
}

/*
 * Adds a call, growing the table to keep it at most half full; at `max`
 * calls, or out of memory, the calls from this one on are left to be read.
 */
static void pending_add(struct pending *p, uint64_t hash, int64_t id)
{
  size_t nslots = p->slots ? p->mask + 1 : 0;

  if (p->covered != INT64_MAX)
    return;
  if (p->count >= p->max) {
    p->covered = id - 1;
    return;
  }
  if (2 * (p->count + 1) > nslots &&
      pending_rehash(p, nslots ? 2 * nslots : 1024, 0) != VS_OK) {
    p->covered = id - 1;
    return;
  }
  slot_put(p->slots, p->mask, hash, id);
  p->count++;
}

/* Empties the table; nothing is pending until something is added. */
static void pending_clear(struct pending *p)
{
  if (p->slots)
    memset(p->slots, 0, (p->mask + 1) * sizeof(*p->slots));
  p->count = 0;
  p->covered = INT64_MAX;
  p->stale = 0;
}

/* Reads call_index.through into *through. */
static int read_through(struct sqlite_call_index *ci, int64_t *through)
{
  int rc = prepared(ci, sql_through, &ci->through);

  if (rc == SQLITE_OK)
    rc = first_int(ci->through, through);
  if (rc == SQLITE_ROW)
    return SQLITE_OK;
  return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc; /* migration 4 adds it */
}

/* Fills the table from the pending calls, oldest first, up to `max`. */
static int pending_load(struct sqlite_call_index *ci)
{
  struct pending *p = &ci->pending;
  int64_t through = 0;
  int rc;

  pending_clear(p);
  rc = read_through(ci, &through);
  if (rc == SQLITE_OK)
    rc = prepared(ci, sql_load, &ci->load);
  if (rc != SQLITE_OK)
    goto fail;
  sqlite3_bind_int64(ci->load, 1, through);
  while (p->covered == INT64_MAX &&
         (rc = sqlite3_step(ci->load)) == SQLITE_ROW)
    pending_add(p,
                ref_hash(ci, sqlite3_column_text(ci->load, 1),
                         (size_t)sqlite3_column_bytes(ci->load, 1)),
                sqlite3_column_int64(ci->load, 0));
  sqlite3_reset(ci->load);
  if (rc == SQLITE_DONE || rc == SQLITE_ROW)
    return SQLITE_OK;
fail:
  p->stale = 1;
  return rc;
}

/*
 * Steps `sql`, one of the look-ups above, for the id of the call whose
 * reference is `ref` (?1), with `arg` as ?2 where it has one: SQLITE_ROW
 * with the id in *id, SQLITE_DONE, or SQLite's error.
 */
static int find_with(struct sqlite_call_index *ci, const char *sql,
                     sqlite3_stmt **s, const char *ref, int64_t arg,
                     int64_t *id)
{
  int rc = prepared(ci, sql, s);

  if (rc != SQLITE_OK)
    return rc;
  sqlite3_bind_text(*s, 1, ref, (int)strnlen(ref, CALL_REF_SIZE),
                    SQLITE_STATIC);
  if (sqlite3_bind_parameter_count(*s) > 1)
    sqlite3_bind_int64(*s, 2, arg);
  return first_int(*s, id);
}

/*
 * The table's candidates for `ref`, whose hash is `hash`, each checked
 * against the call it names.
 */
static int pending_find(struct sqlite_call_index *ci, const char *ref,
                        uint64_t hash, int64_t *id)
{
  struct pending *p = &ci->pending;
  int rc;

  for (size_t i = (size_t)hash & p->mask; p->slots && p->slots[i].id;
       i = (i + 1) & p->mask) {
    if (p->slots[i].hash != hash)
      continue;
    rc = find_with(ci, sql_is_ref, &ci->is_ref, ref, p->slots[i].id, id);
    if (rc != SQLITE_DONE)
      return rc; /* found, or an error; DONE: another reference's hash */
  }
  return SQLITE_DONE;
}

/* 0 when the filter is sure that `hash`'s reference is not indexed. */
static int filter_maybe(const struct ref_filter *f, uint64_t hash)
{
  return !f->ready || bloom_maybe(f->bloom, hash);
}

static void filter_add(struct ref_filter *f, uint64_t hash)
{
  if (f->bloom) {
    bloom_add(f->bloom, hash);
    f->refs++;
  }
}

int sqlite_call_index_find(struct sqlite_call_index *ci, const char *ref,
                           int64_t *id, char *err, size_t errlen)
{
  uint64_t hash = ref_hash(ci, ref, strnlen(ref, CALL_REF_SIZE));
  int rc = SQLITE_OK;

  *id = 0;
  if (ci->pending.stale)
    rc = pending_load(ci);
  if (rc == SQLITE_OK)
    rc = pending_find(ci, ref, hash, id);
  if (rc == SQLITE_DONE && filter_maybe(&ci->filter, hash)) {
    rc = find_with(ci, sql_by_ref, &ci->find_ref, ref, 0, id);
    if (rc == SQLITE_DONE)
      rc = find_with(ci, sql_by_ref_recent, &ci->find_recent, ref, 0, id);
  }
  if (rc == SQLITE_DONE && ci->pending.covered != INT64_MAX)
    rc = find_with(ci, sql_scan_ref, &ci->scan_ref, ref, ci->pending.covered,
                   id);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return VS_OK;
  *id = 0;
  return index_fail(ci, rc, "cannot look a call up by reference", err, errlen);
}

void sqlite_call_index_added(struct sqlite_call_index *ci, const char *ref,
                             int64_t id)
{
  ci->saves++;
  ci->added++;
  if (!ci->pending.stale)
    pending_add(&ci->pending, ref_hash(ci, ref, strnlen(ref, CALL_REF_SIZE)),
                id);
}

void sqlite_call_index_rolled_back(struct sqlite_call_index *ci)
{
  ci->pending.stale = 1;
}

/*
 * The pass moved call_index.through to `through`: the calls up to it are
 * found in the index now. A table that does not hold every pending call
 * is reloaded instead, to take in the ones it could not.
 */
static void pending_indexed(struct pending *p, int64_t through)
{
  size_t nslots = p->slots ? p->mask + 1 : 0;

  if (p->stale || !nslots)
    return;
  if (p->covered != INT64_MAX || pending_rehash(p, nslots, through) != VS_OK)
    p->stale = 1;
}

/* ---- the pass -------------------------------------------------------- */

static uint64_t caller_key(const unsigned char *caller)
{
  uint64_t v = 0;
  size_t len = 0;

  for (; caller && caller[len]; len++) {
    if (caller[len] < '0' || caller[len] > '9' || len == 17)
      return UINT64_MAX;
    v = v * 10 + (uint64_t)(caller[len] - '0');
  }
  /* 17 digits fit in 57 bits, under a count of at most 17 in the top 7. */
  return len ? (uint64_t)len << 57 | v : UINT64_MAX;
}

/* The first eight bytes, big-endian: the order of SQLite's BINARY. */
static uint64_t ref_key(const unsigned char *ref)
{
  uint64_t v = 0;

  for (size_t i = 0; i < 8; i++)
    v = v << 8 | (ref && *ref ? *ref++ : 0);
  return v;
}

/*
 * Sorts rows[0..n) by key, a byte at a time from the lowest (a radix sort,
 * through `tmp`, which holds n rows): 0.75 ms for a full pass where qsort
 * took 3.6, time the worker holds every answer waiting for a commit. It
 * is stable, so calls of one key stay in the order read, which is the
 * order of their ids. A byte that all keys share costs one count only.
 */
static void radix_sort(struct pass_row *rows, struct pass_row *tmp, size_t n)
{
  for (unsigned shift = 0; n && shift < 64; shift += 8) {
    size_t at[257] = {0};

    for (size_t i = 0; i < n; i++)
      at[(rows[i].key >> shift & 0xff) + 1]++;
    if (at[(rows[0].key >> shift & 0xff) + 1] == n)
      continue;
    for (size_t b = 0; b < 256; b++)
      at[b + 1] += at[b];
    for (size_t i = 0; i < n; i++)
      tmp[at[rows[i].key >> shift & 0xff]++] = rows[i];
    memcpy(rows, tmp, n * sizeof(*rows));
  }
}

/* Drops the pass in progress; its calls stay pending. */
static void pass_abandon(struct sqlite_call_index *ci)
{
  ci->phase = PASS_IDLE;
}

int sqlite_call_index_deleted(struct sqlite_call_index *ci, char *err,
                              size_t errlen)
{
  int rc;

  pass_abandon(ci);
  ci->pending.stale = 1;
  rc = prepared(ci, sql_lower, &ci->lower);
  if (rc == SQLITE_OK)
    rc = run(ci->lower);
  if (rc == SQLITE_OK)
    return VS_OK;
  return index_fail(ci, rc, "cannot keep the indexes of calls", err, errlen);
}

/* Fills `r` for `call` and appends its key's text to the pass's. */
static void pass_keep(struct sqlite_call_index *ci, struct pass_row *r,
                      int64_t call, uint64_t key, const unsigned char *text,
                      size_t len)
{
  r->key = key;
  r->call = call;
  r->text = (uint32_t)ci->text_len;
  r->len = (uint32_t)len;
  memcpy(ci->text + ci->text_len, text, len);
  ci->text_len += len;
}

/*
 * Appends the next `chunk` * 4 pending calls; once there are no
 * more, or the pass is full, sorts them and turns to writing.
 */
static int pass_read(struct sqlite_call_index *ci)
{
  size_t want = ci->chunk * 4;
  size_t got = 0;
  int full = 0;
  sqlite3_stmt *s;
  int rc;

  if (want > CALL_INDEX_PASS_MAX - ci->n)
    want = CALL_INDEX_PASS_MAX - ci->n;
  rc = prepared(ci, sql_pending, &ci->pending_calls);
  if (rc != SQLITE_OK)
    return rc;
  s = ci->pending_calls;
  sqlite3_bind_int64(s, 1, ci->last);
  sqlite3_bind_int64(s, 2, (sqlite3_int64)want);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    int64_t call = sqlite3_column_int64(s, 0);
    const unsigned char *caller = sqlite3_column_text(s, 1);
    size_t caller_len = (size_t)sqlite3_column_bytes(s, 1);
    const unsigned char *ref = sqlite3_column_text(s, 2);
    size_t ref_len = (size_t)sqlite3_column_bytes(s, 2);

    if (!caller || !ref) {
      rc = SQLITE_NOMEM;
      break;
    }
    /* Only keys longer than any record's fill it: the rest wait. */
    if (caller_len + ref_len > PASS_TEXT_MAX - ci->text_len) {
      full = 1;
      break;
    }
    pass_keep(ci, &ci->caller_rows[ci->n], call, caller_key(caller), caller,
              caller_len);
    ci->caller_rows[ci->n].at_ms = sqlite3_column_int64(s, 3);
    pass_keep(ci, &ci->ref_rows[ci->n], call, ref_key(ref), ref, ref_len);
    ci->last = call;
    ci->last_text = ci->ref_rows[ci->n].text;
    ci->last_len = ci->ref_rows[ci->n].len;
    ci->n++;
    got++;
  }
  sqlite3_reset(s);
  if (rc != SQLITE_DONE && !full)
    return rc;
  if (!full && got == want && ci->n < CALL_INDEX_PASS_MAX)
    return SQLITE_OK;
  radix_sort(ci->caller_rows, ci->sort_tmp, ci->n);
  radix_sort(ci->ref_rows, ci->sort_tmp, ci->n);
  ci->next = 0;
  ci->phase = ci->n ? PASS_WRITING : PASS_IDLE;
  return SQLITE_OK;
}

/* Prepares a step's transaction statements and begins it. */
static int step_begin(struct sqlite_call_index *ci)
{
  int rc = prepared(ci, "BEGIN IMMEDIATE", &ci->begin);

  if (rc == SQLITE_OK)
    rc = prepared(ci, "COMMIT", &ci->commit);
  if (rc == SQLITE_OK)
    rc = prepared(ci, "ROLLBACK", &ci->rollback);
  return rc == SQLITE_OK ? run(ci->begin) : rc;
}

/* Commits a step's transaction if `rc` is SQLITE_OK, else rolls it back. */
static int step_end(struct sqlite_call_index *ci, int rc)
{
  if (rc == SQLITE_OK)
    rc = run(ci->commit);
  if (rc != SQLITE_OK && !sqlite3_get_autocommit(ci->db))
    run(ci->rollback);
  return rc;
}

/*
 * Moves the next `chunk` entries of the pass in a transaction of
 * its own; the last chunk also moves call_index.through up to `last`.
 * Without deletes since the pass began (sqlite_call_index_deleted) no call
 * at or below `last` was added meanwhile, so all of them are in the pass.
 */
static int pass_write(struct sqlite_call_index *ci)
{
  size_t end = ci->next + ci->chunk;
  int moved = 0;
  int rc;

  if (end > 2 * ci->n)
    end = 2 * ci->n;
  rc = prepared(ci, sql_insert_caller, &ci->insert_caller);
  if (rc == SQLITE_OK)
    rc = ci->pass_recent ? prepared(ci, sql_insert_recent, &ci->insert_recent)
                         : prepared(ci, sql_insert_ref, &ci->insert_ref);
  if (rc == SQLITE_OK)
    rc = prepared(ci, sql_done, &ci->done);
  if (rc == SQLITE_OK)
    rc = step_begin(ci);
  if (rc != SQLITE_OK)
    return rc;
  for (size_t i = ci->next; rc == SQLITE_OK && i < end; i++) {
    const struct pass_row *r;
    sqlite3_stmt *s;

    if (i < ci->n) {
      r = &ci->caller_rows[i];
      s = ci->insert_caller;
      sqlite3_bind_int64(s, 2, r->at_ms);
    } else {
      r = &ci->ref_rows[i - ci->n];
      s = ci->pass_recent ? ci->insert_recent : ci->insert_ref;
      /* Before it commits: should the step roll back, it costs a read. */
      filter_add(&ci->filter, ref_hash(ci, ci->text + r->text, r->len));
      /* High by a rolled-back step's until a merge empties the level;
       * before the count (merge_step) the count takes these in. */
      if (ci->recent >= 0)
        ci->recent += ci->pass_recent;
    }
    sqlite3_bind_text(s, 1, ci->text + r->text, (int)r->len, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, r->call);
    rc = run(s);
  }
  if (rc == SQLITE_OK && end == 2 * ci->n) {
    sqlite3_bind_int64(ci->done, 1, ci->last);
    sqlite3_bind_text(ci->done, 2, ci->text + ci->last_text, (int)ci->last_len,
                      SQLITE_STATIC);
    rc = run(ci->done);
    moved = sqlite3_changes(ci->db) == 1;
  }
  rc = step_end(ci, rc);
  if (rc != SQLITE_OK)
    return rc;
  ci->next = end;
  if (end == 2 * ci->n) {
    ci->phase = PASS_IDLE;
    if (moved) {
      pending_indexed(&ci->pending, ci->last);
    } else {
      ci->pending.stale = 1; /* it may hold the call that took the id */
      ci->saves = 1;         /* a pass again, a second on */
    }
  }
  return SQLITE_OK;
}

/* Allocates the pass's rows on its first use. */
static int pass_alloc(struct sqlite_call_index *ci)
{
  if (!ci->caller_rows)
    ci->caller_rows = malloc(CALL_INDEX_PASS_MAX * sizeof(*ci->caller_rows));
  if (!ci->ref_rows)
    ci->ref_rows = malloc(CALL_INDEX_PASS_MAX * sizeof(*ci->ref_rows));
  if (!ci->sort_tmp)
    ci->sort_tmp = malloc(CALL_INDEX_PASS_MAX * sizeof(*ci->sort_tmp));
  if (!ci->text)
    ci->text = malloc(PASS_TEXT_MAX);
  return ci->caller_rows && ci->ref_rows && ci->sort_tmp && ci->text
             ? SQLITE_OK
             : SQLITE_NOMEM;
}

/* ---- the filter of indexed references --------------------------------- */

/*
 * The smallest filter of at least `min_log2` bits with room for `refs`,
 * at most 2^CALL_INDEX_FILTER_MAX_LOG2 bits.
 */
static unsigned filter_log2(uint64_t refs, unsigned min_log2)
{
  unsigned log2 = min_log2;

  while (log2 < CALL_INDEX_FILTER_MAX_LOG2 &&
         ((uint64_t)1 << log2) / CALL_INDEX_FILTER_BITS_PER_REF < refs)
    log2++;
  return log2;
}

/* An empty filter of 2^log2 bits, to be loaded from the index's start. */
static int filter_reset(struct ref_filter *f, unsigned log2)
{
  bloom_destroy(f->bloom);
  f->bloom = NULL;
  f->refs = 0;
  f->ready = 0;
  f->level = 0;
  f->resume = 0;
  f->from_len = 0;
  return bloom_create(log2, &f->bloom) == VS_OK ? SQLITE_OK : SQLITE_NOMEM;
}

/*
 * Outside a transaction: makes the filter on the first step, for twice the
 * calls indexed (`through` counts them and the gaps deleted ones left);
 * makes it four times as big when it is full; and while it is not ready,
 * reads the next `filter_load` references into it, the recent level's and
 * then calls_by_ref's. The read starts at the last one read (>=), so
 * that a load needs no reference outside the index to start from; that
 * one is not added again. In that order no reference escapes a merge: one
 * that leaves the recent level before the load reached it is in
 * calls_by_ref before its load starts, and one added after the filter was
 * made was added to the filter too (pass_write).
 */
static int filter_step(struct sqlite_call_index *ci, int64_t now_ms)
{
  struct ref_filter *f = &ci->filter;
  size_t want = ci->limits.filter_load;
  size_t got = 0;
  int64_t through = 0;
  sqlite3_stmt *s;
  int rc;

  if (!f->bloom) {
    rc = read_through(ci, &through);
    if (rc == SQLITE_OK)
      rc = filter_reset(
          f, filter_log2(2 * (uint64_t)through, ci->limits.filter_min_log2));
    if (rc != SQLITE_OK)
      return rc;
    f->since_ms = now_ms;
  } else if (f->refs > bloom_bits(f->bloom) / CALL_INDEX_FILTER_BITS_PER_REF &&
             bloom_bits(f->bloom) < (uint64_t)1
                                        << CALL_INDEX_FILTER_MAX_LOG2) {
    /* Four times as big, its size a power of two (bloom.h). */
    unsigned log2 = (unsigned)__builtin_ctzll(bloom_bits(f->bloom)) + 2;

    rc = filter_reset(f, log2 < CALL_INDEX_FILTER_MAX_LOG2
                             ? log2
                             : CALL_INDEX_FILTER_MAX_LOG2);
    if (rc != SQLITE_OK)
      return rc;
    f->since_ms = now_ms;
  }
  if (f->ready || f->from_len < 0)
    return SQLITE_OK;
  rc = prepared(ci, sql_filter_load[f->level], &ci->filter_load[f->level]);
  if (rc != SQLITE_OK)
    return rc;
  s = ci->filter_load[f->level];
  sqlite3_bind_text(s, 1, f->from, f->from_len, SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 2, (sqlite3_int64)want);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const unsigned char *ref = sqlite3_column_text(s, 0);
    int len = sqlite3_column_bytes(s, 0);

    if (!ref) {
      rc = SQLITE_NOMEM;
      break;
    }
    if (got++ || !f->resume || len != f->from_len ||
        memcmp(ref, f->from, (size_t)len))
      filter_add(f, ref_hash(ci, ref, (size_t)len)); /* not the one again */
    /* No call's reference is longer (call.h); should one be, the load
     * stops here, until the filter grows, and the index is read. */
    if (len >= (int)sizeof(f->from)) {
      f->from_len = -1;
      break;
    }
    memcpy(f->from, ref, (size_t)len);
    f->from_len = len;
    f->resume = 1;
  }
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW)
    return rc;
  if (rc == SQLITE_DONE && got < want) { /* the level's end */
    f->resume = 0;
    f->from_len = 0;
    f->ready = f->level++ == 1;
    if (f->ready)
      log_info("store filter of indexed references loaded|references=%llu "
               "bits=%llu ms=%lld",
               (unsigned long long)f->refs,
               (unsigned long long)bloom_bits(f->bloom),
               (long long)(now_ms - f->since_ms));
  }
  return SQLITE_OK;
}

/* ---- what a step moves -------------------------------------------------- */

/*
 * What a step that owes `owed` entries moves: `least`, unless more than
 * the limits' owed_max is owed; then what is owed, up to step_max
 * (CALL_INDEX_OWED_MAX in sqlite_call_index.h).
 */
static size_t step_size(const struct sqlite_call_index *ci, size_t owed,
                        size_t least)
{
  if (owed <= ci->limits.owed_max)
    return least;
  return owed > ci->limits.step_max ? ci->limits.step_max : owed;
}

/* Takes the `n` entries a step moved off what is owed. */
static void pay(size_t *owed, size_t n)
{
  *owed -= *owed < n ? *owed : n;
}

/* ---- the merge ------------------------------------------------------- */

/*
 * Moves the first `n` recent entries into calls_by_ref and out of the
 * recent level, in a transaction of its own; *moved is how many there
 * were (fewer than `n`: the recent level is empty now).
 */
static int merge_move(struct sqlite_call_index *ci, size_t n, size_t *moved)
{
  char last[CALL_REF_SIZE];
  int last_len = -1;
  sqlite3_stmt *s;
  int rc = prepared(ci, sql_merge_read, &ci->merge_read);

  *moved = 0;
  if (rc == SQLITE_OK)
    rc = prepared(ci, sql_merge_insert, &ci->merge_insert);
  if (rc == SQLITE_OK)
    rc = prepared(ci, sql_merge_delete, &ci->merge_delete);
  if (rc == SQLITE_OK)
    rc = step_begin(ci);
  if (rc != SQLITE_OK)
    return rc;
  s = ci->merge_read;
  sqlite3_bind_int64(s, 1, (sqlite3_int64)n);
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const unsigned char *ref = sqlite3_column_text(s, 0);
    int len = sqlite3_column_bytes(s, 0);

    /* No call's reference is longer (call.h); should one be, the step
     * fails and the entries stay where they are. */
    if (!ref || len >= (int)sizeof(last)) {
      rc = ref ? SQLITE_TOOBIG : SQLITE_NOMEM;
      break;
    }
    sqlite3_bind_text(ci->merge_insert, 1, (const char *)ref, len,
                      SQLITE_STATIC);
    sqlite3_bind_int64(ci->merge_insert, 2, sqlite3_column_int64(s, 1));
    rc = run(ci->merge_insert);
    if (rc != SQLITE_OK)
      break;
    memcpy(last, ref, (size_t)len);
    last_len = len;
    (*moved)++;
  }
  sqlite3_reset(s);
  sqlite3_clear_bindings(ci->merge_insert);
  if (rc == SQLITE_DONE)
    rc = SQLITE_OK;
  if (rc == SQLITE_OK && last_len >= 0) {
    sqlite3_bind_text(ci->merge_delete, 1, last, last_len, SQLITE_STATIC);
    rc = run(ci->merge_delete);
    sqlite3_clear_bindings(ci->merge_delete);
  }
  rc = step_end(ci, rc);
  if (rc != SQLITE_OK)
    *moved = 0;
  return rc;
}

/*
 * Outside a transaction: counts the recent level on the first step;
 * starts a merge of all of it once it holds `merge_min` entries and a
 * sixteenth (CALL_INDEX_MERGE_SHARE) of the calls indexed; and moves the
 * next entries of a merge in progress: two are owed for each call `added`
 * since the last step, so that merges outrun the passes, and a step moves
 * CALL_INDEX_MERGE_CHUNK, or what is owed up to the limits' step_max when
 * far behind (step_size).
 */
static int merge_step(struct sqlite_call_index *ci, size_t added,
                      int64_t now_ms)
{
  size_t n;
  int64_t through = 0;
  size_t moved;
  int rc;

  if (ci->recent < 0) {
    rc = prepared(ci, sql_recent_count, &ci->recent_count);
    if (rc == SQLITE_OK)
      rc = first_int(ci->recent_count, &ci->recent);
    if (rc != SQLITE_ROW)
      return rc == SQLITE_DONE ? SQLITE_CORRUPT : rc;
  }
  ci->merge_owed += added * 2;
  if (!ci->merge_left) {
    ci->merge_owed = 0; /* what the calls owe begins with the merge */
    if ((uint64_t)ci->recent < ci->limits.merge_min)
      return SQLITE_OK;
    rc = read_through(ci, &through);
    if (rc != SQLITE_OK)
      return rc;
    if (ci->recent * CALL_INDEX_MERGE_SHARE < through)
      return SQLITE_OK;
    ci->merge_left = ci->recent;
    ci->merge_moved = 0;
    ci->merge_ms = now_ms;
  }
  n = step_size(ci, ci->merge_owed, CALL_INDEX_MERGE_CHUNK);
  if ((int64_t)n > ci->merge_left)
    n = (size_t)ci->merge_left;
  rc = merge_move(ci, n, &moved);
  if (rc != SQLITE_OK)
    return rc; /* the merge goes on at the next step */
  pay(&ci->merge_owed, n);
  ci->merge_left -= (int64_t)moved;
  ci->merge_moved += (int64_t)moved;
  ci->recent -= (int64_t)moved;
  if (moved < n) { /* the recent level is empty */
    ci->merge_left = 0;
    ci->recent = 0;
  }
  if (!ci->merge_left) {
    ci->merge_owed = 0;
    log_debug("store merged the recent index by reference|entries=%lld "
              "ms=%lld",
              (long long)ci->merge_moved, (long long)(now_ms - ci->merge_ms));
  }
  return SQLITE_OK;
}

/* ---- a step ----------------------------------------------------------- */

/* The pass's next step, when one is due; SQLite's result. */
static int pass_step(struct sqlite_call_index *ci, int64_t now_ms)
{
  int rc;

  /*
   * Four entries owed for every call added since the last step (two
   * indexes, twice over), so that the pass outruns the calls coming in at
   * any rate of batches; a step moves CALL_INDEX_CHUNK, so that a quiet
   * server still catches up, and more, up to the limits' step_max, only
   * when far behind (step_size).
   */
  ci->owed += ci->added * 4;
  ci->added = 0;
  ci->chunk = step_size(ci, ci->owed, CALL_INDEX_CHUNK);
  pay(&ci->owed, ci->chunk);
  if (ci->phase == PASS_IDLE) {
    if (!ci->saves || (ci->saves < CALL_INDEX_PASS_SAVES &&
                       now_ms - ci->pass_ms < CALL_INDEX_PASS_MS)) {
      ci->owed = 0; /* what the calls owe begins with their pass */
      return SQLITE_OK;
    }
    ci->saves = 0;
    ci->pass_ms = now_ms;
    ci->n = 0;
    ci->text_len = 0;
    rc = pass_alloc(ci);
    if (rc == SQLITE_OK)
      rc = read_through(ci, &ci->last);
    if (rc != SQLITE_OK)
      goto fail;
    ci->pass_recent = (uint64_t)ci->last >= ci->limits.recent_from;
    ci->phase = PASS_READING;
  }
  rc = ci->phase == PASS_READING ? pass_read(ci) : pass_write(ci);
  if (rc == SQLITE_OK) {
    if (ci->phase == PASS_IDLE)
      ci->owed = 0;
    return rc;
  }
fail:
  /* The calls stay pending; the next pass, a second on, takes them. */
  pass_abandon(ci);
  ci->owed = 0;
  ci->saves = 1;
  ci->pass_ms = now_ms;
  return rc;
}

/* What sqlite_call_index_step() says is due after it: the header. */
static int owed_due(const struct sqlite_call_index *ci, size_t owed)
{
  return owed > ci->limits.owed_max ? 2 : owed > 0;
}

int sqlite_call_index_step(struct sqlite_call_index *ci, int64_t now_ms,
                           int *due, char *err, size_t errlen)
{
  const char *what = "cannot index calls";
  size_t added = ci->added;
  int rc = pass_step(ci, now_ms);
  int unallocated;
  int d;

  if (rc == SQLITE_OK) {
    what = "cannot merge the index of calls by reference";
    rc = merge_step(ci, added, now_ms);
  }
  if (rc == SQLITE_OK) {
    what = "cannot load the filter of indexed references";
    rc = filter_step(ci, now_ms);
  }
  d = owed_due(ci, ci->owed);
  *due = owed_due(ci, ci->merge_owed);
  if (d > *due)
    *due = d;
  if (rc == SQLITE_OK)
    return VS_OK;
  unallocated = !ci->caller_rows || !ci->ref_rows || !ci->sort_tmp ||
                !ci->text || !ci->filter.bloom;
  if (rc == SQLITE_NOMEM && unallocated)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "%s: out of memory", what);
  return index_fail(ci, rc, what, err, errlen);
}
