/*
 * The answer log (see answer_log.h): a ring of chunks in a mapped file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/err.h"
#include "../util/hash.h"
#include "answer_log.h"
#include "store_schema.h"

#define LOG_MAGIC      "VSANSLOG"
#define LOG_VERSION    1u
#define LOG_HEADER     4096
#define LOG_MAX_CHUNKS (1u << 16) /* 4 GiB: a ceiling, far past any use */

/* The file's first bytes; the rest of its first page is zero. */
struct log_header {
  char magic[8];
  uint32_t version;
  uint32_t chunk; /* ANSWER_LOG_CHUNK when written */
  uint64_t db_id;
  uint64_t nchunks;
};

/*
 * An entry: this, then `len` bytes of a packed call (store_schema.h), then
 * zeros to the next multiple of 8. `check` covers the other two fields and
 * the record, keyed by the database's identity.
 */
struct entry_head {
  uint64_t seq;
  uint64_t len;
  uint64_t check;
};

#define ENTRY_ALIGN(n) (((n) + 7) & ~(size_t)7)

/* One entry found by a replay. */
struct found {
  uint64_t seq;
  const unsigned char *rec;
  size_t len;
};

/*
 * The log. Open, replay, start and close: the thread that opens the
 * store, alone. Appends: the loop thread only, which alone touches the
 * fields under "Loop thread"; `through` is written by the worker and read
 * by the loop.
 */
struct answer_log {
  int fd;
  uint64_t db_id;
  struct call_layout layout;
  size_t nchunks; /* what this run writes */

  /* The previous run's entries, mapped read-only from open to start
   * (NULL when there were none). */
  const unsigned char *old;
  size_t old_len;
  size_t old_chunks;

  /* Loop thread. */
  unsigned char *map; /* this run's ring, from answer_log_start() */
  size_t map_len;
  uint64_t next_seq;
  size_t chunk;       /* being written */
  size_t off;         /* in it */
  uint64_t *last_seq; /* per chunk, its newest entry's */

  atomic_uint_fast64_t through; /* newest committed */
};

static uint64_t entry_check(uint64_t db_id, uint64_t seq, uint64_t len,
                            const unsigned char *rec)
{
  return hash_mix64(hash_bytes(db_id ^ seq, rec, (size_t)len) ^ len);
}

/* The previous run's ring, when its header is ours and for this database. */
static int map_old(struct answer_log *log, off_t size)
{
  struct log_header h;
  ssize_t n = pread(log->fd, &h, sizeof(h), 0);
  void *m;

  if (n != (ssize_t)sizeof(h) || memcmp(h.magic, LOG_MAGIC, 8) ||
      h.version != LOG_VERSION || h.chunk != ANSWER_LOG_CHUNK ||
      h.db_id != log->db_id || h.nchunks < 2 || h.nchunks > LOG_MAX_CHUNKS ||
      (uint64_t)size < LOG_HEADER + h.nchunks * ANSWER_LOG_CHUNK)
    return VS_OK; /* nothing of ours to replay */
  m = mmap(NULL, LOG_HEADER + h.nchunks * ANSWER_LOG_CHUNK, PROT_READ,
           MAP_SHARED, log->fd, 0);
  if (m == MAP_FAILED)
    return VS_ERR_IO;
  log->old = m;
  log->old_chunks = h.nchunks;
  log->old_len = LOG_HEADER + h.nchunks * ANSWER_LOG_CHUNK;
  return VS_OK;
}

int answer_log_open(const char *path, size_t bytes, uint64_t db_id,
                    struct answer_log **out, char *err, size_t errlen)
{
  struct answer_log *log;
  struct stat sb;
  size_t nchunks;
  int rc;

  if (!path || !out || bytes < ANSWER_LOG_MIN_BYTES)
    return vs_fail(err, errlen, VS_ERR_INVAL,
                   "answer log: a path and at least %d bytes are needed",
                   ANSWER_LOG_MIN_BYTES);
  nchunks = (bytes - LOG_HEADER) / ANSWER_LOG_CHUNK;
  if (nchunks > LOG_MAX_CHUNKS)
    nchunks = LOG_MAX_CHUNKS;
  log = calloc(1, sizeof(*log));
  if (!log)
    return vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory for %s", path);
  log->last_seq = calloc(nchunks, sizeof(*log->last_seq));
  if (!log->last_seq) {
    rc = vs_fail(err, errlen, VS_ERR_NOMEM, "out of memory for %s", path);
    goto fail_free;
  }
  log->db_id = db_id;
  log->nchunks = nchunks;
  call_layout_init(&log->layout);
  log->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (log->fd < 0) {
    rc = vs_fail(err, errlen, VS_ERR_IO, "cannot open %s: %s", path,
                 strerror(errno));
    goto fail_free;
  }
  /* Two servers on one database would each replay the other's answers. */
  if (flock(log->fd, LOCK_EX | LOCK_NB)) {
    rc = vs_fail(err, errlen, errno == EWOULDBLOCK ? VS_ERR_BUSY : VS_ERR_IO,
                 "cannot lock %s: %s", path,
                 errno == EWOULDBLOCK ? "another server is using this database"
                                      : strerror(errno));
    goto fail_close;
  }
  if (fstat(log->fd, &sb) || map_old(log, sb.st_size)) {
    rc = vs_fail(err, errlen, VS_ERR_IO, "cannot read %s: %s", path,
                 strerror(errno));
    goto fail_close;
  }
  *out = log;
  return VS_OK;

fail_close:
  close(log->fd);
fail_free:
  free(log->last_seq);
  free(log);
  return rc;
}

static int by_seq(const void *a, const void *b)
{
  uint64_t x = ((const struct found *)a)->seq;
  uint64_t y = ((const struct found *)b)->seq;

  return (x > y) - (x < y);
}

/*
 * The entries of one chunk past `through`, added to `f` (room for every
 * entry the chunk can hold); raises *last to the newest sequence number
 * seen. A chunk's entries run from its start to the first that does not
 * check: what follows is older, or was never answered.
 */
static size_t chunk_entries(const struct answer_log *log,
                            const unsigned char *chunk, uint64_t through,
                            struct found *f, uint64_t *last)
{
  size_t off = 0;
  size_t n = 0;

  while (off + sizeof(struct entry_head) <= ANSWER_LOG_CHUNK) {
    struct entry_head h;
    const unsigned char *rec = chunk + off + sizeof(h);

    memcpy(&h, chunk + off, sizeof(h));
    if (!h.len || h.len > ANSWER_LOG_CHUNK - off - sizeof(h) ||
        h.check != entry_check(log->db_id, h.seq, h.len, rec) ||
        !call_packed_valid(&log->layout, rec, (size_t)h.len))
      break;
    if (h.seq > *last)
      *last = h.seq;
    if (h.seq > through)
      f[n++] = (struct found){h.seq, rec, (size_t)h.len};
    off += ENTRY_ALIGN(sizeof(h) + (size_t)h.len);
  }
  return n;
}

int answer_log_replay(struct answer_log *log, uint64_t through,
                      answer_log_replay_cb cb, void *arg, uint64_t *last)
{
  /* The smallest entry is a header and a packed call of empty texts. */
  size_t per_chunk =
      ANSWER_LOG_CHUNK /
      ENTRY_ALIGN(sizeof(struct entry_head) + log->layout.plain_bytes + 1);
  struct found *f;
  size_t n = 0;
  int rc = VS_OK;

  *last = through;
  if (!log->old)
    return VS_OK;
  f = malloc(per_chunk * log->old_chunks * sizeof(*f));
  if (!f)
    return VS_ERR_NOMEM;
  for (size_t c = 0; c < log->old_chunks; c++)
    n += chunk_entries(log, log->old + LOG_HEADER + c * ANSWER_LOG_CHUNK,
                       through, f + n, last);
  qsort(f, n, sizeof(*f), by_seq);
  for (size_t i = 0; i < n && rc == VS_OK; i++) {
    struct call c;

    call_unpack(&log->layout, f[i].rec, &c);
    rc = cb(arg, &c);
  }
  free(f);
  return rc;
}

/*
 * The previous run's entries are all committed now (the store replayed
 * them first), so the file starts over empty at this run's size, its
 * blocks reserved so that a full disk is an error here rather than a
 * fault in the loop thread's copy later.
 */
static int start_ring(struct answer_log *log)
{
  struct log_header h = {.version = LOG_VERSION,
                         .chunk = ANSWER_LOG_CHUNK,
                         .db_id = log->db_id,
                         .nchunks = log->nchunks};
  size_t len = LOG_HEADER + log->nchunks * ANSWER_LOG_CHUNK;
  void *m;

  if (log->old) {
    munmap((void *)log->old, log->old_len);
    log->old = NULL;
  }
  memcpy(h.magic, LOG_MAGIC, 8);
  if (ftruncate(log->fd, 0) || ftruncate(log->fd, (off_t)len))
    return VS_ERR_IO;
  /* It returns the error instead of setting errno. */
  errno = posix_fallocate(log->fd, 0, (off_t)len);
  if (errno || pwrite(log->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
    return VS_ERR_IO;
  m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd, 0);
  if (m == MAP_FAILED)
    return VS_ERR_IO;
  log->map = m;
  log->map_len = len;
  return VS_OK;
}

int answer_log_start(struct answer_log *log, uint64_t last, char *err,
                     size_t errlen)
{
  if (start_ring(log))
    return vs_fail(err, errlen, VS_ERR_IO,
                   "cannot make the answer log of %zu KiB: %s",
                   (LOG_HEADER + log->nchunks * ANSWER_LOG_CHUNK) / 1024,
                   strerror(errno));
  log->next_seq = last + 1;
  atomic_store(&log->through, last);
  return VS_OK;
}

int answer_log_append(struct answer_log *log, const struct call *c,
                      uint64_t *seq)
{
  size_t len = call_packed_size(&log->layout, c);
  size_t need = ENTRY_ALIGN(sizeof(struct entry_head) + len);
  struct entry_head h;
  unsigned char *at;

  if (need > ANSWER_LOG_CHUNK || !c->ref[0])
    return VS_ERR_INVAL;
  if (log->off + need > ANSWER_LOG_CHUNK) {
    size_t next = (log->chunk + 1) % log->nchunks;

    if (log->last_seq[next] >
        atomic_load_explicit(&log->through, memory_order_acquire))
      return VS_ERR_BUSY;
    log->chunk = next;
    log->off = 0;
  }
  at = log->map + LOG_HEADER + log->chunk * ANSWER_LOG_CHUNK + log->off;
  call_pack(&log->layout, c, at + sizeof(h));
  h.seq = log->next_seq++;
  h.len = len;
  h.check = entry_check(log->db_id, h.seq, h.len, at + sizeof(h));
  memcpy(at, &h, sizeof(h));
  log->last_seq[log->chunk] = h.seq;
  log->off += need;
  *seq = h.seq;
  return VS_OK;
}

void answer_log_through(struct answer_log *log, uint64_t seq)
{
  atomic_store_explicit(&log->through, seq, memory_order_release);
}

uint64_t answer_log_committed(const struct answer_log *log)
{
  return atomic_load_explicit(&log->through, memory_order_acquire);
}

void answer_log_close(struct answer_log *log)
{
  if (!log)
    return;
  if (log->old)
    munmap((void *)log->old, log->old_len);
  if (log->map)
    munmap(log->map, log->map_len);
  close(log->fd); /* and the lock with it */
  free(log->last_seq);
  free(log);
}
