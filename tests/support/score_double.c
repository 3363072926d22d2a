/*
 * score-double: a strict stand-in for the TeleSign Score API, used by the
 * end-to-end tests.
 *
 * It is a real HTTP server on 127.0.0.1 that answers the two documented
 * Score endpoints (POST /intelligence/phone and POST .../v1/score/<digits>)
 * in TeleSign's response format, and verifies the caller's authentication
 * (TSA HMAC-SHA256 or Basic) the way TeleSign's SDKs build it. The tests
 * drive it through a small unauthenticated control API (POST /_control,
 * GET /_stats) to make it misbehave and to see what the product sent.
 *
 * The signature check is written here on purpose, independently of the
 * product's own signing code, so that a shared misunderstanding cannot make
 * both sides agree on a wrong string to sign. `--self-test` checks it
 * against the worked examples of the reference document.
 *
 * Every connection gets its own thread (MHD_USE_THREAD_PER_CONNECTION), so a
 * deliberately slow or hanging answer on one connection never delays the
 * others. All shared state sits behind one mutex.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>

#define MAX_BODY      65536  /* larger request bodies get 413 */
#define NONCE_BUCKETS 131072 /* power of two, > MAX_NONCES */
#define MAX_NONCE_LEN 64
#define MIN_NONCE_LEN 8
#define NUM_SLOTS     16384 /* power of two, > MAX_NUMBERS * 1.5 */
#define MAX_KEY_LEN   1024  /* api key as given on the command line */
#define FIELD_LEN     256   /* decoded form values and recorded headers */
#define PATH_LEN      1024
#define HANG_MS       30000
#define SLEEP_STEP_MS 10
#define MAX_DELAY_MS  600000

/* These two bounds can be lowered at build time to test eviction and the
   full maps without sending 100k requests. */
#ifndef MAX_NONCES
#define MAX_NONCES 100000 /* nonces remembered for replay detection */
#endif
#ifndef MAX_NUMBERS
#define MAX_NUMBERS 10000 /* entries in by_number and in the overrides */
#endif
_Static_assert(MAX_NONCES < NONCE_BUCKETS, "nonce table too small");
_Static_assert(MAX_NUMBERS <= NUM_SLOTS / 3 * 2, "number table too small");

/* The made-up credentials of section 4.4 of the reference, so that a test
   that does not care about credentials can start the double bare. */
#define DEFAULT_CUSTOMER_ID "0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D"
#define DEFAULT_API_KEY     "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

#define FORM_CT "application/x-www-form-urlencoded"
#define JSON_CT "application/json"

enum auth_mode { AUTH_ANY, AUTH_HMAC, AUTH_BASIC, AUTH_NONE };
static const char *const auth_names[] = {"any", "hmac", "basic", "none"};

enum mode {
  MODE_OK,
  MODE_HTTP_ERROR,
  MODE_GARBAGE,
  MODE_TRUNCATED,
  MODE_SHORT_READ,
  MODE_STATUS_ERROR,
  MODE_HANG,
  MODE_EMPTY,
  MODE_HUGE,
  MODE_DRIP,
  MODE_CHUNKED,
  MODE_CLOSE,
  MODE_COUNT
};
static const char *const mode_names[MODE_COUNT] = {
    "ok",   "http_error", "garbage", "truncated", "short_read", "status_error",
    "hang", "empty",      "huge",    "drip",      "chunked",    "close"};

/* Bytes of the answer in mode huge: past what any client should keep. */
#define HUGE_BODY (1024 * 1024)

/* Authentication failure reasons, with the TeleSign error code each one is
   reported with (section 3.5 of the reference). */
enum reason {
  R_MISSING_AUTH,
  R_MALFORMED_AUTH,
  R_SCHEME,
  R_CUSTOMER,
  R_SIGNATURE,
  R_API_KEY,
  R_MISSING_DATE,
  R_BAD_DATE,
  R_DATE_SKEW,
  R_AUTH_METHOD,
  R_BAD_NONCE,
  R_NONCE_REUSED,
  R_COUNT,
  R_NONE = -1
};
static const struct {
  const char *name;
  int code;
  const char *desc;
} reasons[R_COUNT] = {
    {"missing_authorization", -30004, "Missing Authorization header."},
    {"malformed_authorization", -30005, "Malformed Authorization header."},
    {"scheme_not_allowed", -30005, "Authorization scheme not accepted."},
    {"invalid_customer_id", -30000, "Invalid Customer ID."},
    {"invalid_signature", -30006, "Invalid Signature."},
    {"invalid_api_key", -30015, "Invalid API key."},
    {"missing_date", -30007, "Missing Date or x-ts-date header."},
    {"invalid_date", -30009, "Date header is not RFC 1123 formatted."},
    {"date_out_of_tolerance", -30010, "Date header outside of tolerance."},
    {"invalid_auth_method", -30008, "Invalid x-ts-auth-method header."},
    {"invalid_nonce", -30011, "Nonce too long or too short."},
    {"nonce_reused", -30012, "Nonce reused within the tolerance window."},
};

struct config {
  unsigned port;
  const char *customer_id;
  const char *api_key;
  unsigned char key[MAX_KEY_LEN];
  size_t key_len;
  enum auth_mode auth;
  long max_skew;
};

/* A tiny open-addressing map from a digit string to a count or a score.
   Entries are never removed one by one, only all at once on reset, so plain
   linear probing without tombstones is enough. */
struct numslot {
  char key[16];
  long val;
  bool used;
};
struct nummap {
  struct numslot slot[NUM_SLOTS];
  size_t count;
};

/* The remembered nonces: a ring of MAX_NONCES nodes (the oldest is evicted
   when it is full) indexed by a chained hash table. */
struct nonce_node {
  char s[MAX_NONCE_LEN + 1];
  uint32_t hash;
  int32_t next;
};
struct nonceset {
  struct nonce_node *node;
  int32_t *bucket;
  size_t count;
  size_t head;
};

/* What the most recent Score request looked like, for the tests to check
   the product's request format. */
struct last {
  bool seen;
  char method[16];
  char path[PATH_LEN];
  char content_type[FIELD_LEN];
  char body[MAX_BODY];
  size_t body_len;
  char scheme[8];
  char phone[FIELD_LEN];
  char event[FIELD_LEN];
  char date[FIELD_LEN];
  char nonce[FIELD_LEN];
  char auth_method[FIELD_LEN];
  char user_agent[FIELD_LEN];
  const char *result;
  unsigned http_status;
};

struct state {
  pthread_mutex_t lock;
  enum mode mode;
  long delay_ms;
  unsigned http_status;
  bool score_as_string;
  struct nummap overrides;
  struct nummap by_number;
  struct nonceset nonces;
  struct last last;
  uint64_t requests;
  uint64_t accepted;
  uint64_t scored;
  uint64_t bad_requests;
  uint64_t too_large;
  uint64_t auth_failures;
  uint64_t failures[R_COUNT];
  uint64_t connections;
  /* Client ports seen on Score requests: the number of distinct ones is
     how many connections the client under test opened for its lookups
     (control and stats requests are not counted). Bounded. */
  uint16_t score_ports[4096];
  size_t score_ports_count;
  uint64_t open_connections;
  uint64_t by_number_dropped;
  uint64_t seq;
};

enum route {
  ROUTE_NONE,
  ROUTE_SCORE_BODY,
  ROUTE_SCORE_PATH,
  ROUTE_CONTROL,
  ROUTE_STATS
};

/* Per-request context, kept in MHD's con_cls between callback calls. */
struct req {
  enum route route;
  char *body;
  size_t len;
  size_t cap;
  bool too_big;
  bool answered;
};

static struct config cfg;
static struct state *st;
static atomic_bool stopping;

/* ---- small helpers ---------------------------------------------------- */

static void copy_field(char *dst, size_t cap, const char *src)
{
  size_t n;

  if (!src)
    src = "";
  n = strlen(src);
  if (n >= cap)
    n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Sleeps up to ms milliseconds in small steps, returning early once the
   server is shutting down so that MHD_stop_daemon() can join the thread. */
static void nap(long ms)
{
  while (ms > 0 && !atomic_load(&stopping)) {
    long step = ms < SLEEP_STEP_MS ? ms : SLEEP_STEP_MS;
    struct timespec ts = {0, step * 1000000L};

    nanosleep(&ts, NULL);
    ms -= step;
  }
}

static bool all_digits(const char *s, size_t min, size_t max)
{
  size_t n = 0;

  for (; s[n]; n++) {
    if (s[n] < '0' || s[n] > '9')
      return false;
  }
  return n >= min && n <= max;
}

static uint32_t hash_str(const char *s)
{
  uint32_t h = 2166136261u;

  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Builds a JSON string from bytes that may not be valid UTF-8 (headers and
   bodies are whatever the client sent): bytes jansson refuses are shown as
   '?' rather than dropping the whole value. */
static json_t *jstr(const char *s, size_t n)
{
  json_t *j = json_stringn(s, n);
  char *copy;
  size_t i;

  if (j)
    return j;
  copy = malloc(n + 1);
  if (!copy)
    return NULL;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];

    copy[i] = c >= 0x80 ? '?' : (char)c;
  }
  copy[n] = '\0';
  j = json_stringn(copy, n);
  free(copy);
  return j;
}

static json_t *jcstr(const char *s)
{
  return jstr(s, strlen(s));
}

/* ---- base64 ----------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Writes the base64 of in[0..n) plus a terminator; out needs
   4 * ((n + 2) / 3) + 1 bytes. */
static void b64_encode(const unsigned char *in, size_t n, char *out)
{
  size_t i;
  char *o = out;

  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

    *o++ = b64_alphabet[v >> 18 & 63];
    *o++ = b64_alphabet[v >> 12 & 63];
    *o++ = b64_alphabet[v >> 6 & 63];
    *o++ = b64_alphabet[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16;

    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    *o++ = b64_alphabet[v >> 18 & 63];
    *o++ = b64_alphabet[v >> 12 & 63];
    *o++ = i + 1 < n ? b64_alphabet[v >> 6 & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
}

/*
 * Decodes base64 the way Python's b64decode(validate=False) and Java's
 * parseBase64 do for API keys: characters outside the alphabet are skipped
 * (TeleSign's test keys contain '-'), and a '=' after at least two data
 * characters of a group ends the input. In strict mode (used for the Basic
 * header, which the client builds itself) any character outside the
 * alphabet, a bad length or misplaced padding is an error instead.
 */
static bool b64_decode(const char *in, bool strict, unsigned char *out,
                       size_t cap, size_t *out_len)
{
  uint32_t acc = 0;
  size_t quad = 0;
  size_t n = 0;
  size_t len = strlen(in);
  size_t i;

  if (strict && (len == 0 || len % 4))
    return false;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    int v = b64_value(c);

    if (c == '=') {
      if (quad >= 2)
        break;
      if (strict)
        return false;
      continue;
    }
    if (v < 0) {
      if (strict)
        return false;
      continue;
    }
    acc = acc << 6 | (uint32_t)v;
    if (++quad == 4) {
      if (n + 3 > cap)
        return false;
      out[n++] = (unsigned char)(acc >> 16);
      out[n++] = (unsigned char)(acc >> 8);
      out[n++] = (unsigned char)acc;
      acc = 0;
      quad = 0;
    }
  }
  if (strict && i < len) {
    /* Only one or two '=' may follow, and they must end the input. */
    size_t pads = len - i;

    if (pads > 2 || quad + pads != 4 || (pads == 2 && in[i + 1] != '='))
      return false;
  }
  if (quad == 1)
    return false;
  if (quad == 2) {
    if (n + 1 > cap)
      return false;
    out[n++] = (unsigned char)(acc >> 4);
  } else if (quad == 3) {
    if (n + 2 > cap)
      return false;
    out[n++] = (unsigned char)(acc >> 10);
    out[n++] = (unsigned char)(acc >> 2);
  }
  *out_len = n;
  return true;
}

/* Compares without an early exit, so that the time taken does not reveal
   how much of a guessed secret was right. The length is not secret. */
static bool ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
  const unsigned char *x = a;
  const unsigned char *y = b;
  unsigned char diff = 0;
  size_t i;

  if (alen != blen)
    return false;
  for (i = 0; i < alen; i++)
    diff |= x[i] ^ y[i];
  return diff == 0;
}

/* ---- dates ------------------------------------------------------------ */

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int two_digits(const char *s)
{
  if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
    return -1;
  return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
 * Parses exactly the RFC 1123 form the SDKs send ("Mon, 06 Jan 2025
 * 15:04:05 GMT"). Other RFC 822 spellings (numeric zones, one-digit days)
 * are refused on purpose: the product should send what the SDKs send, and a
 * wrong weekday is caught too.
 */
static bool parse_http_date(const char *s, time_t *out)
{
  struct tm tm;
  struct tm check;
  int day, mon, year, hh, mm, ss;
  time_t t;

  if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
      s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
      s[25] != ' ' || strcmp(s + 26, "GMT"))
    return false;
  day = two_digits(s + 5);
  year = two_digits(s + 12);
  if (year < 0 || two_digits(s + 14) < 0)
    return false;
  year = year * 100 + two_digits(s + 14);
  hh = two_digits(s + 17);
  mm = two_digits(s + 20);
  ss = two_digits(s + 23);
  for (mon = 0; mon < 12; mon++) {
    if (!strncmp(s + 8, months[mon], 3))
      break;
  }
  if (mon == 12 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 ||
      mm > 59 || ss < 0 || ss > 60 || year < 1970)
    return false;
  memset(&tm, 0, sizeof(tm));
  tm.tm_year = year - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = day;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  t = timegm(&tm);
  if (t == (time_t)-1 || !gmtime_r(&t, &check))
    return false;
  /* timegm() normalises 31 Feb into March; refuse such dates. */
  if (check.tm_mday != day && ss != 60)
    return false;
  if (strncmp(s, wdays[check.tm_wday], 3))
    return false;
  *out = t;
  return true;
}

static void rfc3339_now(char *out, size_t cap)
{
  struct timespec ts;
  struct tm tm;
  char base[32];

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, cap, "%s.%06dZ", base, (int)(ts.tv_nsec / 1000));
}

/* ---- the number maps and the nonce set (caller holds st->lock) -------- */

static struct numslot *nummap_find(struct nummap *m, const char *key,
                                   bool create)
{
  size_t i = hash_str(key) & (NUM_SLOTS - 1);

  while (m->slot[i].used) {
    if (!strcmp(m->slot[i].key, key))
      return &m->slot[i];
    i = (i + 1) & (NUM_SLOTS - 1);
  }
  if (!create || m->count >= MAX_NUMBERS || strlen(key) >= 16)
    return NULL;
  m->slot[i].used = true;
  copy_field(m->slot[i].key, sizeof(m->slot[i].key), key);
  m->slot[i].val = 0;
  m->count++;
  return &m->slot[i];
}

static void nummap_clear(struct nummap *m)
{
  memset(m->slot, 0, sizeof(m->slot));
  m->count = 0;
}

static int nonceset_init(struct nonceset *s)
{
  size_t i;

  s->node = calloc(MAX_NONCES, sizeof(*s->node));
  s->bucket = malloc(NONCE_BUCKETS * sizeof(*s->bucket));
  if (!s->node || !s->bucket)
    return -1;
  for (i = 0; i < NONCE_BUCKETS; i++)
    s->bucket[i] = -1;
  s->count = 0;
  s->head = 0;
  return 0;
}

static void nonceset_clear(struct nonceset *s)
{
  size_t i;

  for (i = 0; i < NONCE_BUCKETS; i++)
    s->bucket[i] = -1;
  s->count = 0;
  s->head = 0;
}

static void nonceset_free(struct nonceset *s)
{
  free(s->node);
  free(s->bucket);
}

/* Returns false if the nonce was seen before; otherwise remembers it,
   forgetting the oldest one when the set is full. */
static bool nonceset_add(struct nonceset *s, const char *nonce)
{
  uint32_t h = hash_str(nonce);
  int32_t *link = &s->bucket[h & (NONCE_BUCKETS - 1)];
  int32_t i;
  struct nonce_node *n;

  for (i = *link; i >= 0; i = s->node[i].next) {
    if (s->node[i].hash == h && !strcmp(s->node[i].s, nonce))
      return false;
  }
  n = &s->node[s->head];
  if (s->count == MAX_NONCES) {
    int32_t *p = &s->bucket[n->hash & (NONCE_BUCKETS - 1)];

    while (*p != (int32_t)s->head)
      p = &s->node[*p].next;
    *p = n->next;
  } else
    s->count++;
  copy_field(n->s, sizeof(n->s), nonce);
  n->hash = h;
  n->next = *link;
  *link = (int32_t)s->head;
  s->head = (s->head + 1) % MAX_NONCES;
  return true;
}

/* ---- authentication ---------------------------------------------------- */

struct authin {
  const char *method;
  const char *resource;
  const char *content_type;
  const char *authorization;
  const char *date;
  const char *x_ts_date;
  const char *auth_method;
  const char *nonce;
  const char *body;
  size_t body_len;
};

/*
 * Computes the TSA signature as the SDKs do (section 4.2 of the reference):
 * METHOD, Content-Type, Date, x-ts-auth-method, [x-ts-date,] x-ts-nonce,
 * [body,] resource, joined by LF. The body line is present only when both
 * the content type and the body are non-empty. The x-ts-date line is the
 * legacy variant of ts-auth.cpp, where the Date line is usually empty.
 * out needs 45 bytes.
 */
static int tsa_sign(const struct authin *a, const unsigned char *key,
                    size_t key_len, char *out)
{
  const char *ct = a->content_type ? a->content_type : "";
  const char *date = a->date ? a->date : "";
  bool with_body = *ct && a->body_len;
  size_t cap = strlen(a->method) + strlen(ct) + strlen(date) +
               strlen(a->nonce) + strlen(a->resource) + a->body_len + 128;
  unsigned char mac[32];
  char *s;
  size_t n = 0;
  int rc = -1;

  if (a->x_ts_date)
    cap += strlen(a->x_ts_date);
  s = malloc(cap);
  if (!s)
    goto cleanup;
  n += (size_t)snprintf(s + n, cap - n,
                        "%s\n%s\n%s\nx-ts-auth-method:"
                        "HMAC-SHA256\n",
                        a->method, ct, date);
  if (a->x_ts_date)
    n += (size_t)snprintf(s + n, cap - n, "x-ts-date:%s\n", a->x_ts_date);
  n += (size_t)snprintf(s + n, cap - n, "x-ts-nonce:%s\n", a->nonce);
  if (with_body) {
    memcpy(s + n, a->body, a->body_len);
    n += a->body_len;
    s[n++] = '\n';
  }
  n += (size_t)snprintf(s + n, cap - n, "%s", a->resource);
  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_len, s, n, mac) < 0)
    goto cleanup;
  b64_encode(mac, sizeof(mac), out);
  rc = 0;

cleanup:
  free(s);
  return rc;
}

static enum reason check_basic(const char *token)
{
  unsigned char dec[2 * MAX_KEY_LEN];
  size_t n;
  unsigned char *colon;
  size_t cid_len = strlen(cfg.customer_id);

  if (!b64_decode(token, true, dec, sizeof(dec), &n))
    return R_MALFORMED_AUTH;
  colon = memchr(dec, ':', n);
  if (!colon)
    return R_MALFORMED_AUTH;
  if ((size_t)(colon - dec) != cid_len ||
      memcmp(dec, cfg.customer_id, cid_len))
    return R_CUSTOMER;
  /* The api key is used verbatim in Basic auth, not decoded. */
  if (!ct_equal(colon + 1, n - cid_len - 1, cfg.api_key, strlen(cfg.api_key)))
    return R_API_KEY;
  return R_NONE;
}

static enum reason check_tsa(const struct authin *a, bool *need_nonce)
{
  const char *cred = a->authorization + 4;
  const char *colon = strrchr(cred, ':');
  const char *date = a->x_ts_date ? a->x_ts_date : a->date;
  char expect[48];
  time_t t;
  time_t now = time(NULL);
  size_t nlen;

  if (!colon || colon == cred || !colon[1])
    return R_MALFORMED_AUTH;
  if ((size_t)(colon - cred) != strlen(cfg.customer_id) ||
      strncmp(cred, cfg.customer_id, (size_t)(colon - cred)))
    return R_CUSTOMER;
  if (!a->auth_method || strcasecmp(a->auth_method, "HMAC-SHA256"))
    return R_AUTH_METHOD;
  if (!date || !*date)
    return R_MISSING_DATE;
  if (!parse_http_date(date, &t))
    return R_BAD_DATE;
  nlen = a->nonce ? strlen(a->nonce) : 0;
  if (nlen < MIN_NONCE_LEN || nlen > MAX_NONCE_LEN)
    return R_BAD_NONCE;
  if ((t > now ? t - now : now - t) > cfg.max_skew)
    return R_DATE_SKEW;
  if (tsa_sign(a, cfg.key, cfg.key_len, expect))
    return R_SIGNATURE;
  if (!ct_equal(colon + 1, strlen(colon + 1), expect, strlen(expect)))
    return R_SIGNATURE;
  /* Replay is checked by the caller under the lock, and only for requests
     that are otherwise valid, so bad attempts cannot burn nonces. */
  *need_nonce = true;
  return R_NONE;
}

/* Returns R_NONE when the request may proceed. scheme gets "TSA", "Basic"
   or "" for the stats. */
static enum reason check_auth(const struct authin *a, bool *need_nonce,
                              char *scheme, size_t scheme_cap)
{
  const char *h = a->authorization;

  *need_nonce = false;
  copy_field(scheme, scheme_cap, "");
  if (h && !strncasecmp(h, "TSA ", 4))
    copy_field(scheme, scheme_cap, "TSA");
  else if (h && !strncasecmp(h, "Basic ", 6))
    copy_field(scheme, scheme_cap, "Basic");
  if (cfg.auth == AUTH_NONE)
    return R_NONE;
  if (!h || !*h)
    return R_MISSING_AUTH;
  if (!*scheme)
    return R_MALFORMED_AUTH;
  if (*scheme == 'T') {
    if (cfg.auth == AUTH_BASIC)
      return R_SCHEME;
    return check_tsa(a, need_nonce);
  }
  if (cfg.auth == AUTH_HMAC)
    return R_SCHEME;
  return check_basic(h + 6);
}

/* ---- request parsing --------------------------------------------------- */

struct score_in {
  char phone[FIELD_LEN];
  char event[FIELD_LEN];
  char external_id[FIELD_LEN];
  bool has_external_id;
  bool risk_insights;
  int err_code;
  const char *err_desc;
};

/* Percent-decodes a form component ('+' is a space). Returns -1 on a bad
   escape, -2 when the result does not fit. */
static int form_decode(const char *s, size_t n, char *out, size_t cap)
{
  size_t i;
  size_t o = 0;

  for (i = 0; i < n; i++) {
    char c = s[i];

    if (c == '%') {
      int hi, lo;

      if (n - i < 3)
        return -1;
      hi = isxdigit((unsigned char)s[i + 1]) ? s[i + 1] : -1;
      lo = isxdigit((unsigned char)s[i + 2]) ? s[i + 2] : -1;
      if (hi < 0 || lo < 0)
        return -1;
      hi = isdigit(hi) ? hi - '0' : (tolower(hi) - 'a' + 10);
      lo = isdigit(lo) ? lo - '0' : (tolower(lo) - 'a' + 10);
      c = (char)(hi << 4 | lo);
      i += 2;
    } else if (c == '+')
      c = ' ';
    if (o + 1 >= cap)
      return -2;
    out[o++] = c;
  }
  out[o] = '\0';
  return 0;
}

/* Keeps the first error only; always returns false. */
static bool set_err(struct score_in *in, int code, const char *desc)
{
  if (!in->err_code) {
    in->err_code = code;
    in->err_desc = desc;
  }
  return false;
}

static bool valid_event(const char *ev)
{
  static const char *const events[] = {"create", "sign-in", "transact",
                                       "update", "delete"};
  size_t i;

  for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
    if (!strcmp(ev, events[i]))
      return true;
  }
  return false;
}

static bool form_ct(const char *ct)
{
  size_t n = strlen(FORM_CT);

  if (!ct || strncasecmp(ct, FORM_CT, n))
    return false;
  return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/*
 * Parses the form body (field order does not matter, unknown optional
 * fields are ignored, a repeated known field is refused) and validates the
 * number and lifecycle event. path_phone is the number from a /v1/score/
 * path, or NULL for /intelligence/phone where it is a form field.
 */
static bool parse_score(const char *ct, const char *body, size_t len,
                        const char *path_phone, struct score_in *in)
{
  bool have_phone = false;
  bool have_event = false;
  size_t pos = 0;

  /* The whole body is parsed even after an error, so that the stats show
     what the client sent; the first error found is the one reported. */
  memset(in, 0, sizeof(*in));
  if (!form_ct(ct))
    set_err(in, -40001, "Content-Type must be " FORM_CT ".");
  while (pos < len) {
    const char *seg = body + pos;
    const char *amp = memchr(seg, '&', len - pos);
    size_t seglen = amp ? (size_t)(amp - seg) : len - pos;
    const char *eq = memchr(seg, '=', seglen);
    size_t klen = eq ? (size_t)(eq - seg) : seglen;
    const char *val = eq ? eq + 1 : seg + seglen;
    size_t vlen = seglen - klen - (eq ? 1 : 0);
    char key[FIELD_LEN];
    char value[FIELD_LEN];
    int drc;

    pos += seglen + 1;
    if (!seglen)
      continue;
    drc = form_decode(val, vlen, value, sizeof(value));
    if (form_decode(seg, klen, key, sizeof(key)) || drc == -1) {
      set_err(in, -40001, "Malformed form body.");
      continue;
    }
    if (!strcmp(key, "phone_number") && !path_phone) {
      if (have_phone)
        set_err(in, -40001, "Duplicate parameter phone_number.");
      else if (drc)
        set_err(in, 11000, "Invalid phone_number.");
      else
        copy_field(in->phone, sizeof(in->phone), value);
      have_phone = true;
    } else if (!strcmp(key, "account_lifecycle_event")) {
      if (have_event)
        set_err(in, -40001, "Duplicate parameter account_lifecycle_event.");
      else if (drc)
        set_err(in, 11003, "Invalid account_lifecycle_event.");
      else
        copy_field(in->event, sizeof(in->event), value);
      have_event = true;
    } else if (!strcmp(key, "external_id")) {
      if (drc)
        set_err(in, -40001, "Invalid external_id.");
      in->has_external_id = true;
      copy_field(in->external_id, sizeof(in->external_id), value);
    } else if (!strcmp(key, "request_risk_insights"))
      in->risk_insights = !drc && !strcmp(value, "true");
  }
  if (path_phone)
    copy_field(in->phone, sizeof(in->phone), path_phone);
  if (in->err_code)
    return false;
  if (!in->phone[0])
    return set_err(in, 12000, "Missing required parameter phone_number.");
  if (!all_digits(in->phone, 8, 15))
    return set_err(in, 11000, "Invalid phone_number.");
  if (!in->event[0])
    return set_err(in, 12003,
                   "Missing required parameter account_lifecycle_event.");
  if (!valid_event(in->event))
    return set_err(in, 11003, "Invalid account_lifecycle_event.");
  return true;
}

/* ---- response bodies --------------------------------------------------- */

static void new_reference_id(char *out, uint64_t seq)
{
  unsigned char rnd[8] = {0};

  /* Random half for realism, sequence half so it is unique for certain. */
  gnutls_rnd(GNUTLS_RND_NONCE, rnd, sizeof(rnd));
  snprintf(out, 33, "%02X%02X%02X%02X%02X%02X%02X%02X%016" PRIX64, rnd[0],
           rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], seq);
}

static char *dump(json_t *j)
{
  char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;

  json_decref(j);
  return s;
}

static json_t *status_obj(int code, const char *desc)
{
  char now[64];

  rfc3339_now(now, sizeof(now));
  return json_pack("{s:i, s:s, s:s}", "code", code, "description", desc,
                   "updated_on", now);
}

/* A TeleSign-shaped error body: status 500 "Transaction not attempted" for
   request errors, 501 "Not authorized" for authentication errors. */
static char *error_body(const char *ref, bool auth, int code, const char *desc)
{
  return dump(json_pack(
      "{s:s, s:n, s:o, s:[{s:i, s:s}]}", "reference_id", ref, "external_id",
      "status",
      status_obj(auth ? 501 : 500,
                 auth ? "Not authorized" : "Transaction not attempted"),
      "errors", "code", code, "description", desc));
}

/* The length of the country code at the start of an E.164 number, from a
   short table of common codes; anything else is taken as three digits. */
static size_t country_code_len(const char *d)
{
  static const char *const two[] = {
      "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41",
      "43", "44", "45", "46", "47", "48", "49", "51", "52", "53", "54",
      "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
      "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};
  size_t i;

  if (d[0] == '1' || d[0] == '7')
    return 1;
  for (i = 0; i < sizeof(two) / sizeof(two[0]); i++) {
    if (!strncmp(d, two[i], 2))
      return 2;
  }
  return 3;
}

static json_t *cleansing_obj(const char *cc, const char *national)
{
  int len = (int)strlen(national);

  return json_pack("{s:s, s:s, s:i, s:i, s:i}", "country_code", cc,
                   "phone_number", national, "cleansed_code", 100,
                   "min_length", len, "max_length", len);
}

static json_t *location_obj(const char *cc)
{
  if (!strcmp(cc, "1"))
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:{s:f, s:f},"
        " s:{s:s, s:s, s:s}}",
        "city", "Chicago", "state", "IL", "zip", "60611", "metro_code", "1600",
        "county", "Cook", "country", "name", "United States", "iso2", "US",
        "iso3", "USA", "coordinates", "latitude", 41.87, "longitude", -87.71,
        "time_zone", "name", "America/Chicago", "utc_offset_min", "-6",
        "utc_offset_max", "-6");
  return json_pack("{s:n, s:n, s:n, s:n, s:n, s:{s:s, s:s, s:s}, s:{s:n, s:n},"
                   " s:{s:n, s:n, s:n}}",
                   "city", "state", "zip", "metro_code", "county", "country",
                   "name", "Unknown", "iso2", "ZZ", "iso3", "ZZZ",
                   "coordinates", "latitude", "longitude", "time_zone", "name",
                   "utc_offset_min", "utc_offset_max");
}

static void risk_band(long score, const char **level, const char **rec)
{
  /* TeleSign's example decision matrix (section 3.4 of the reference). */
  if (score <= 200) {
    *level = "very low";
    *rec = "allow";
  } else if (score <= 400) {
    *level = "low";
    *rec = "allow";
  } else if (score <= 600) {
    *level = "medium";
    *rec = "flag";
  } else if (score <= 800) {
    *level = "high";
    *rec = "block";
  } else {
    *level = "very high";
    *rec = "block";
  }
}

static char *score_body(const char *ref, const struct score_in *in, long score,
                        bool as_string)
{
  char cc[4];
  char score_text[24];
  const char *national;
  const char *level;
  const char *rec;
  size_t cclen = country_code_len(in->phone);
  json_t *root;
  json_t *risk;

  memcpy(cc, in->phone, cclen);
  cc[cclen] = '\0';
  national = in->phone + cclen;
  risk_band(score, &level, &rec);
  snprintf(score_text, sizeof(score_text), "%ld", score);
  risk = json_pack("{s:s, s:s, s:o}", "level", level, "recommendation", rec,
                   "score",
                   as_string ? json_string(score_text) : json_integer(score));
  root = json_pack(
      "{s:s, s:o, s:o, s:[], s:{s:{s:s, s:s, s:s}, s:{s:o, s:o}},"
      " s:{s:s, s:s}, s:o, s:{s:s}, s:{s:b, s:i, s:s}, s:o}",
      "reference_id", ref, "external_id",
      in->has_external_id ? jcstr(in->external_id) : json_null(), "status",
      status_obj(300, "Transaction successfully completed"), "errors",
      "numbering", "original", "complete_phone_number", in->phone,
      "country_code", cc, "phone_number", national, "cleansing", "call",
      cleansing_obj(cc, national), "sms", cleansing_obj(cc, national),
      "phone_type", "code", "2", "description", "MOBILE", "location",
      location_obj(cc), "carrier", "name", "Example Wireless", "blocklisting",
      "blocked", 0, "block_code", 0, "block_description", "Not blocked",
      "risk", risk);
  if (root && in->risk_insights)
    json_object_set_new(root, "risk_insights",
                        json_pack("{s:i, s:[i], s:[], s:[], s:[], s:[], s:[]}",
                                  "status", 800, "category", 10010, "a2p",
                                  "p2p", "number_type", "ip", "email"));
  return dump(root);
}

/* ---- sending ----------------------------------------------------------- */

static enum MHD_Result send_buf(struct MHD_Connection *c, unsigned status,
                                const char *ctype, const char *data,
                                size_t len)
{
  struct MHD_Response *resp;
  enum MHD_Result ret = MHD_NO;

  resp = MHD_create_response_from_buffer(len, (void *)data,
                                         MHD_RESPMEM_MUST_COPY);
  if (!resp)
    return MHD_NO;
  if (ctype && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                       ctype) == MHD_NO)
    goto cleanup;
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
      MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST") == MHD_NO)
    goto cleanup;
  ret = MHD_queue_response(c, status, resp);

cleanup:
  MHD_destroy_response(resp);
  return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status,
                                 char *owned)
{
  enum MHD_Result ret;

  if (!owned)
    return MHD_NO;
  ret = send_buf(c, status, JSON_CT, owned, strlen(owned));
  free(owned);
  return ret;
}

struct partial {
  char *data;
  size_t limit;
};

static ssize_t partial_read(void *cls, uint64_t pos, char *buf, size_t max)
{
  struct partial *p = cls;
  size_t n;

  /* Ending with an error makes MHD close the connection short of the
     announced Content-Length. */
  if (pos >= p->limit)
    return MHD_CONTENT_READER_END_WITH_ERROR;
  n = p->limit - (size_t)pos;
  if (n > max)
    n = max;
  memcpy(buf, p->data + pos, n);
  return (ssize_t)n;
}

static void partial_free(void *cls)
{
  struct partial *p = cls;

  free(p->data);
  free(p);
}

/* Announces the full length but sends only the first half, then closes. */
static enum MHD_Result send_short_read(struct MHD_Connection *c, char *owned)
{
  struct partial *p;
  struct MHD_Response *resp;
  enum MHD_Result ret = MHD_NO;
  size_t len;

  if (!owned)
    return MHD_NO;
  p = malloc(sizeof(*p));
  if (!p) {
    free(owned);
    return MHD_NO;
  }
  len = strlen(owned);
  p->data = owned;
  p->limit = len / 2;
  resp = MHD_create_response_from_callback(len, 4096, partial_read, p,
                                           partial_free);
  if (!resp) {
    partial_free(p);
    return MHD_NO;
  }
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_CT) ==
      MHD_YES)
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return ret;
}

/*
 * Mode drip: a 200 whose body never ends, one space every 100 ms (JSON
 * allows white space before the value), so that only a client's own
 * deadline ends the transfer. Stops when the double is stopped.
 */
static ssize_t drip_read(void *cls, uint64_t pos, char *buf, size_t max)
{
  (void)cls;
  (void)pos;
  if (max == 0 || atomic_load(&stopping))
    return MHD_CONTENT_READER_END_OF_STREAM;
  nap(100);
  buf[0] = ' ';
  return 1;
}

static enum MHD_Result send_drip(struct MHD_Connection *c)
{
  struct MHD_Response *resp;
  enum MHD_Result ret = MHD_NO;

  resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, drip_read,
                                           NULL, NULL);
  if (!resp)
    return MHD_NO;
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_CT) ==
      MHD_YES)
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return ret;
}

/*
 * Mode chunked: the normal answer with no Content-Length, so that it goes
 * out chunked, in pieces of at most 7 bytes.
 */
static ssize_t chunk_read(void *cls, uint64_t pos, char *buf, size_t max)
{
  const char *body = cls;
  size_t len = strlen(body);
  size_t n;

  if (pos >= len)
    return MHD_CONTENT_READER_END_OF_STREAM;
  n = len - (size_t)pos;
  if (n > 7)
    n = 7;
  if (n > max)
    n = max;
  memcpy(buf, body + pos, n);
  return (ssize_t)n;
}

/* Mode chunked (see chunk_read), or close: the normal answer, after which
 * the double closes the connection, as it says in a Connection header. */
static enum MHD_Result send_framed(struct MHD_Connection *c, char *owned,
                                   int chunked)
{
  struct MHD_Response *resp;
  enum MHD_Result ret = MHD_NO;

  if (!owned)
    return MHD_NO;
  if (chunked)
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, chunk_read,
                                             owned, free);
  else
    resp = MHD_create_response_from_buffer(strlen(owned), owned,
                                           MHD_RESPMEM_MUST_FREE);
  if (!resp) {
    free(owned);
    return MHD_NO;
  }
  if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_CT) ==
          MHD_YES &&
      (chunked || MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
                                          "close") == MHD_YES))
    ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* ---- the Score endpoints ----------------------------------------------- */

static const char *header(struct MHD_Connection *c, const char *name)
{
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Finds the number in ".../v1/score/<n>"; NULL when the path is not a
   Score path of that form. */
static const char *score_path_number(const char *url)
{
  const char *p = NULL;
  const char *q = url;

  while ((q = strstr(q, "/v1/score/"))) {
    p = q;
    q++;
  }
  if (!p || strchr(p + 10, '/'))
    return NULL;
  return p + 10;
}

static bool ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s);
  size_t m = strlen(suffix);

  return n >= m && !strcmp(s + n - m, suffix);
}

static enum route route_of(const char *url)
{
  if (!strcmp(url, "/_control"))
    return ROUTE_CONTROL;
  if (!strcmp(url, "/_stats"))
    return ROUTE_STATS;
  if (ends_with(url, "/intelligence/phone"))
    return ROUTE_SCORE_BODY;
  if (score_path_number(url))
    return ROUTE_SCORE_PATH;
  return ROUTE_NONE;
}

static void record_last(struct MHD_Connection *c, const char *url,
                        const char *method, const struct req *r,
                        const char *scheme, const struct score_in *in)
{
  struct last *l = &st->last;
  const char *date = header(c, "x-ts-date");

  l->seen = true;
  copy_field(l->method, sizeof(l->method), method);
  copy_field(l->path, sizeof(l->path), url);
  copy_field(l->content_type, sizeof(l->content_type),
             header(c, MHD_HTTP_HEADER_CONTENT_TYPE));
  l->body_len = r->len < sizeof(l->body) ? r->len : sizeof(l->body);
  if (l->body_len)
    memcpy(l->body, r->body, l->body_len);
  copy_field(l->scheme, sizeof(l->scheme), scheme);
  copy_field(l->phone, sizeof(l->phone), in ? in->phone : "");
  copy_field(l->event, sizeof(l->event), in ? in->event : "");
  copy_field(l->date, sizeof(l->date),
             date ? date : header(c, MHD_HTTP_HEADER_DATE));
  copy_field(l->nonce, sizeof(l->nonce), header(c, "x-ts-nonce"));
  copy_field(l->auth_method, sizeof(l->auth_method),
             header(c, "x-ts-auth-method"));
  copy_field(l->user_agent, sizeof(l->user_agent),
             header(c, MHD_HTTP_HEADER_USER_AGENT));
}

/* What one request was decided to get, copied out of the shared state so
   that the answer can be produced without holding the lock. */
struct plan {
  unsigned status;
  enum reason reason;
  enum mode mode;
  long delay_ms;
  unsigned http_status;
  bool as_string;
  long score;
  char ref[33];
};

static enum MHD_Result answer_score(struct MHD_Connection *c,
                                    const struct plan *p,
                                    const struct score_in *in)
{
  static const char garbage[] = "<html>not json</html>";
  char *body;

  nap(p->delay_ms);
  if (p->status == MHD_HTTP_CONTENT_TOO_LARGE)
    return send_json(
        c, p->status,
        error_body(p->ref, false, -40001, "Request body too large."));
  if (p->status == MHD_HTTP_UNAUTHORIZED)
    return send_json(c, p->status,
                     error_body(p->ref, true, reasons[p->reason].code,
                                reasons[p->reason].desc));
  if (p->status == MHD_HTTP_BAD_REQUEST)
    return send_json(c, p->status,
                     error_body(p->ref, false, in->err_code, in->err_desc));
  switch (p->mode) {
  case MODE_HTTP_ERROR:
    if (p->http_status == 429)
      body = error_body(p->ref, false, 10019, "Rate limit exceeded.");
    else
      body = error_body(p->ref, false, -90001,
                        "System unavailable, please try again later.");
    return send_json(c, p->http_status, body);
  case MODE_GARBAGE:
    return send_buf(c, MHD_HTTP_OK, "text/html", garbage, sizeof(garbage) - 1);
  case MODE_EMPTY:
    return send_buf(c, MHD_HTTP_OK, JSON_CT, "{}", 2);
  case MODE_HUGE: {
    /* Valid JSON, a megabyte of it: a string of spaces in a field. */
    char *huge = malloc(HUGE_BODY);
    enum MHD_Result ret;
    int n;

    if (!huge)
      return MHD_NO;
    n = snprintf(huge, HUGE_BODY, "{\"padding\":\"");
    memset(huge + n, ' ', HUGE_BODY - (size_t)n - 3);
    memcpy(huge + HUGE_BODY - 3, "\"}", 2);
    huge[HUGE_BODY - 1] = '\0';
    ret = send_buf(c, MHD_HTTP_OK, JSON_CT, huge, HUGE_BODY - 1);
    free(huge);
    return ret;
  }
  case MODE_STATUS_ERROR:
    return send_json(c, MHD_HTTP_OK,
                     error_body(p->ref, true, -30006, "Invalid Signature."));
  case MODE_TRUNCATED: {
    enum MHD_Result ret;

    body = score_body(p->ref, in, p->score, p->as_string);
    if (!body)
      return MHD_NO;
    ret = send_buf(c, MHD_HTTP_OK, JSON_CT, body, strlen(body) / 2);
    free(body);
    return ret;
  }
  case MODE_DRIP:
    return send_drip(c);
  case MODE_CHUNKED:
  case MODE_CLOSE:
    return send_framed(c, score_body(p->ref, in, p->score, p->as_string),
                       p->mode == MODE_CHUNKED);
  case MODE_SHORT_READ:
    return send_short_read(c, score_body(p->ref, in, p->score, p->as_string));
  case MODE_HANG:
    /* An answer that finally comes after the hang is a normal one. */
    nap(HANG_MS);
    return send_json(c, MHD_HTTP_OK,
                     score_body(p->ref, in, p->score, p->as_string));
  case MODE_OK:
  default:
    return send_json(c, MHD_HTTP_OK,
                     score_body(p->ref, in, p->score, p->as_string));
  }
}

/* Records the client port of a Score request; caller holds st->lock. */
static void note_score_port(struct MHD_Connection *c)
{
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = ci ? ci->client_addr : NULL;
  uint16_t port;

  if (!sa || sa->sa_family != AF_INET)
    return;
  port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
  for (size_t i = 0; i < st->score_ports_count; i++)
    if (st->score_ports[i] == port)
      return;
  if (st->score_ports_count < sizeof(st->score_ports) / sizeof(uint16_t))
    st->score_ports[st->score_ports_count++] = port;
}

static enum MHD_Result handle_score(struct MHD_Connection *c, const char *url,
                                    const char *method, struct req *r)
{
  struct authin a;
  struct score_in in;
  struct plan p;
  char scheme[8];
  bool need_nonce = false;
  bool valid = false;
  bool is_post = !strcmp(method, "POST");
  const char *path_phone = NULL;
  struct numslot *slot;

  memset(&p, 0, sizeof(p));
  memset(&in, 0, sizeof(in));
  memset(&a, 0, sizeof(a));
  p.reason = R_NONE;
  a.method = method;
  a.resource = url;
  a.content_type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
  a.authorization = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
  a.date = header(c, MHD_HTTP_HEADER_DATE);
  a.x_ts_date = header(c, "x-ts-date");
  a.auth_method = header(c, "x-ts-auth-method");
  a.nonce = header(c, "x-ts-nonce");
  a.body = r->body ? r->body : "";
  a.body_len = r->len;
  if (r->route == ROUTE_SCORE_PATH)
    path_phone = score_path_number(url);

  /* The body is parsed even for requests that fail earlier checks, so that
     the stats show what was sent. */
  valid = parse_score(a.content_type, a.body, a.body_len, path_phone, &in);
  copy_field(scheme, sizeof(scheme), "");
  if (r->too_big) {
    p.status = MHD_HTTP_CONTENT_TOO_LARGE;
    valid = false;
  } else if ((p.reason = check_auth(&a, &need_nonce, scheme,
                                    sizeof(scheme))) != R_NONE) {
    p.status = MHD_HTTP_UNAUTHORIZED;
    valid = false;
  } else if (!is_post) {
    p.status = MHD_HTTP_METHOD_NOT_ALLOWED;
    valid = false;
  } else
    p.status = valid ? MHD_HTTP_OK : MHD_HTTP_BAD_REQUEST;

  pthread_mutex_lock(&st->lock);
  if (need_nonce && !nonceset_add(&st->nonces, a.nonce)) {
    p.reason = R_NONCE_REUSED;
    p.status = MHD_HTTP_UNAUTHORIZED;
    valid = false;
  }
  st->requests++;
  note_score_port(c);
  new_reference_id(p.ref, ++st->seq);
  record_last(c, url, method, r, scheme, &in);
  p.delay_ms = st->delay_ms;
  p.mode = st->mode;
  p.http_status = st->http_status;
  p.as_string = st->score_as_string;
  if (p.status == MHD_HTTP_CONTENT_TOO_LARGE) {
    st->too_large++;
    st->last.result = "too_large";
  } else if (p.reason != R_NONE) {
    st->auth_failures++;
    st->failures[p.reason]++;
    st->last.result = reasons[p.reason].name;
  } else if (!valid) {
    st->bad_requests++;
    st->last.result = "bad_request";
  } else {
    st->accepted++;
    st->last.result = mode_names[p.mode];
    if (p.mode == MODE_OK)
      st->scored++;
    slot = nummap_find(&st->by_number, in.phone, true);
    if (slot)
      slot->val++;
    else
      st->by_number_dropped++;
    slot = nummap_find(&st->overrides, in.phone, false);
    p.score = slot ? slot->val : atol(in.phone + strlen(in.phone) - 3);
  }
  st->last.http_status = p.status;
  pthread_mutex_unlock(&st->lock);

  if (p.status == MHD_HTTP_METHOD_NOT_ALLOWED)
    return send_json(c, p.status,
                     error_body(p.ref, false, -40005, "Method not allowed."));
  return answer_score(c, &p, &in);
}

/* ---- the control API --------------------------------------------------- */

static void reset_locked(void)
{
  st->mode = MODE_OK;
  st->delay_ms = 0;
  st->http_status = 500;
  st->score_as_string = false;
  nummap_clear(&st->overrides);
  nummap_clear(&st->by_number);
  nonceset_clear(&st->nonces);
  memset(&st->last, 0, sizeof(st->last));
  st->requests = 0;
  st->accepted = 0;
  st->scored = 0;
  st->bad_requests = 0;
  st->too_large = 0;
  st->auth_failures = 0;
  memset(st->failures, 0, sizeof(st->failures));
  st->connections = 0;
  st->score_ports_count = 0;
  st->by_number_dropped = 0;
}

static enum MHD_Result control_error(struct MHD_Connection *c, const char *msg)
{
  return send_json(c, MHD_HTTP_BAD_REQUEST,
                   dump(json_pack("{s:s}", "error", msg)));
}

/* Validates everything first and then applies it in one locked section,
   so a bad key leaves the state untouched and no request sees a half
   applied change. */
static enum MHD_Result handle_control(struct MHD_Connection *c,
                                      const char *method, struct req *r)
{
  json_t *root;
  json_t *v;
  json_t *scores = NULL;
  const char *key;
  json_error_t jerr;
  int mode = -1;
  long delay = -1;
  long status = -1;
  int as_string = -1;
  bool reset = false;
  size_t fresh = 0;
  enum MHD_Result ret;

  if (strcmp(method, "POST"))
    return send_json(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                     dump(json_pack("{s:s}", "error", "use POST")));
  if (r->too_big)
    return send_json(c, MHD_HTTP_CONTENT_TOO_LARGE,
                     dump(json_pack("{s:s}", "error", "body too large")));
  root = json_loadb(r->body ? r->body : "", r->len, 0, &jerr);
  if (!json_is_object(root)) {
    json_decref(root);
    return control_error(c, "body must be a JSON object");
  }
  json_object_foreach(root, key, v)
  {
    if (!strcmp(key, "mode")) {
      const char *m = json_string_value(v);

      for (mode = 0; m && mode < MODE_COUNT; mode++) {
        if (!strcmp(m, mode_names[mode]))
          break;
      }
      if (!m || mode == MODE_COUNT)
        goto bad_mode;
    } else if (!strcmp(key, "delay_ms")) {
      if (!json_is_integer(v) || json_integer_value(v) < 0 ||
          json_integer_value(v) > MAX_DELAY_MS)
        goto bad_value;
      delay = (long)json_integer_value(v);
    } else if (!strcmp(key, "http_status")) {
      if (!json_is_integer(v) || json_integer_value(v) < 200 ||
          json_integer_value(v) > 599)
        goto bad_value;
      status = (long)json_integer_value(v);
    } else if (!strcmp(key, "score_as_string")) {
      if (!json_is_boolean(v))
        goto bad_value;
      as_string = json_is_true(v);
    } else if (!strcmp(key, "reset")) {
      if (!json_is_boolean(v))
        goto bad_value;
      reset = json_is_true(v);
    } else if (!strcmp(key, "scores")) {
      const char *num;
      json_t *s;

      if (!json_is_object(v))
        goto bad_value;
      json_object_foreach(v, num, s)
      {
        if (!all_digits(num, 8, 15) || !json_is_integer(s) ||
            json_integer_value(s) < 0 || json_integer_value(s) > 1000)
          goto bad_value;
      }
      scores = v;
    } else {
      ret = control_error(c, "unknown key");
      goto cleanup;
    }
  }

  pthread_mutex_lock(&st->lock);
  if (scores) {
    const char *num;
    json_t *s;

    json_object_foreach(scores, num, s)
    {
      if (reset || !nummap_find(&st->overrides, num, false))
        fresh++;
    }
    if ((reset ? 0 : st->overrides.count) + fresh > MAX_NUMBERS) {
      pthread_mutex_unlock(&st->lock);
      ret = control_error(c, "too many score overrides");
      goto cleanup;
    }
  }
  if (reset)
    reset_locked();
  if (mode >= 0)
    st->mode = (enum mode)mode;
  if (delay >= 0)
    st->delay_ms = delay;
  if (status >= 0)
    st->http_status = (unsigned)status;
  if (as_string >= 0)
    st->score_as_string = as_string;
  if (scores) {
    const char *num;
    json_t *s;

    json_object_foreach(scores, num, s)
    {
      struct numslot *slot = nummap_find(&st->overrides, num, true);

      if (slot)
        slot->val = (long)json_integer_value(s);
    }
  }
  pthread_mutex_unlock(&st->lock);
  ret = send_buf(c, MHD_HTTP_OK, JSON_CT, "{}", 2);
  goto cleanup;

bad_mode:
  ret = control_error(c, "unknown mode");
  goto cleanup;
bad_value:
  ret = control_error(c, "bad value");

cleanup:
  json_decref(root);
  return ret;
}

static json_t *last_obj(const struct last *l)
{
  json_t *o = json_object();

  if (!o)
    return NULL;
  json_object_set_new(o, "method", jcstr(l->method));
  json_object_set_new(o, "path", jcstr(l->path));
  json_object_set_new(o, "content_type", jcstr(l->content_type));
  json_object_set_new(o, "body", jstr(l->body, l->body_len));
  json_object_set_new(o, "authorization_scheme", jcstr(l->scheme));
  json_object_set_new(o, "phone_number", jcstr(l->phone));
  json_object_set_new(o, "account_lifecycle_event", jcstr(l->event));
  json_object_set_new(o, "date", jcstr(l->date));
  json_object_set_new(o, "nonce", jcstr(l->nonce));
  json_object_set_new(o, "auth_method", jcstr(l->auth_method));
  json_object_set_new(o, "user_agent", jcstr(l->user_agent));
  json_object_set_new(o, "result", jcstr(l->result ? l->result : ""));
  json_object_set_new(o, "http_status", json_integer(l->http_status));
  return o;
}

static enum MHD_Result handle_stats(struct MHD_Connection *c,
                                    const char *method)
{
  json_t *root;
  json_t *reasons_obj;
  json_t *numbers;
  size_t i;

  if (strcmp(method, "GET"))
    return send_json(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                     dump(json_pack("{s:s}", "error", "use GET")));
  reasons_obj = json_object();
  numbers = json_object();
  pthread_mutex_lock(&st->lock);
  for (i = 0; reasons_obj && i < R_COUNT; i++)
    json_object_set_new(reasons_obj, reasons[i].name,
                        json_integer((json_int_t)st->failures[i]));
  for (i = 0; numbers && i < NUM_SLOTS; i++) {
    if (st->by_number.slot[i].used)
      json_object_set_new(numbers, st->by_number.slot[i].key,
                          json_integer(st->by_number.slot[i].val));
  }
  root = json_pack(
      "{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:s,"
      " s:I, s:i, s:b, s:s, s:o, s:o}",
      "requests", (json_int_t)st->requests, "accepted",
      (json_int_t)st->accepted, "scored", (json_int_t)st->scored,
      "bad_requests", (json_int_t)st->bad_requests, "too_large",
      (json_int_t)st->too_large, "auth_failures",
      (json_int_t)st->auth_failures, "failures_by_reason", reasons_obj,
      "connections", (json_int_t)st->connections, "score_connections",
      (json_int_t)st->score_ports_count, "open_connections",
      (json_int_t)st->open_connections, "nonces", (json_int_t)st->nonces.count,
      "by_number_dropped", (json_int_t)st->by_number_dropped, "mode",
      mode_names[st->mode], "delay_ms", (json_int_t)st->delay_ms,
      "http_status", (int)st->http_status, "score_as_string",
      st->score_as_string, "auth", auth_names[cfg.auth], "last",
      last_obj(&st->last), "by_number", numbers);
  pthread_mutex_unlock(&st->lock);
  return send_json(c, MHD_HTTP_OK, dump(root));
}

/* ---- MHD callbacks ----------------------------------------------------- */

static enum MHD_Result dispatch(struct MHD_Connection *c, const char *url,
                                const char *method, struct req *r)
{
  r->answered = true;
  switch (r->route) {
  case ROUTE_SCORE_BODY:
  case ROUTE_SCORE_PATH:
    return handle_score(c, url, method, r);
  case ROUTE_CONTROL:
    return handle_control(c, method, r);
  case ROUTE_STATS:
    return handle_stats(c, method);
  case ROUTE_NONE:
  default:
    return send_json(c, MHD_HTTP_NOT_FOUND,
                     error_body("00000000000000000000000000000000", false,
                                -40004, "Resource not found."));
  }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  struct req *r = *con_cls;

  (void)cls;
  (void)version;
  if (!r) {
    const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);

    r = calloc(1, sizeof(*r));
    if (!r)
      return MHD_NO;
    *con_cls = r;
    r->route = route_of(url);
    /* Refuse an announced oversize body before reading it; MHD then
       closes the connection instead of reading the rest. */
    if (cl && strtoull(cl, NULL, 10) > MAX_BODY) {
      r->too_big = true;
      return dispatch(c, url, method, r);
    }
    return MHD_YES;
  }
  if (*upload_size) {
    if (!r->answered && !r->too_big) {
      if (*upload_size > MAX_BODY - r->len) {
        r->too_big = true;
      } else {
        if (r->len + *upload_size > r->cap) {
          size_t cap = r->cap ? r->cap : 1024;
          char *p;

          while (cap < r->len + *upload_size)
            cap *= 2;
          p = realloc(r->body, cap);
          if (!p)
            return MHD_NO;
          r->body = p;
          r->cap = cap;
        }
        memcpy(r->body + r->len, upload, *upload_size);
        r->len += *upload_size;
      }
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->answered)
    return MHD_YES;
  return dispatch(c, url, method, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
  struct req *r = *con_cls;

  (void)cls;
  (void)c;
  (void)toe;
  if (r) {
    free(r->body);
    free(r);
    *con_cls = NULL;
  }
}

static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
  (void)cls;
  (void)c;
  (void)socket_context;
  pthread_mutex_lock(&st->lock);
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    st->connections++;
    st->open_connections++;
  } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && st->open_connections)
    st->open_connections--;
  pthread_mutex_unlock(&st->lock);
}

/* Keeps the URL exactly as sent: the TSA resource is the raw path, and a
   percent-encoded number must not turn into a valid one here. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
  (void)cls;
  (void)c;
  return strlen(s);
}

/* ---- self-test and main ------------------------------------------------ */

static int self_test(void)
{
  static const struct {
    const char *key;
    const char *method;
    const char *ct;
    const char *date;
    const char *x_ts_date;
    const char *nonce;
    const char *resource;
    const char *body;
    const char *expect;
  } v[] = {
      {DEFAULT_API_KEY, "POST", FORM_CT, "Mon, 06 Jan 2025 15:04:05 GMT", NULL,
       "7c9e6679-7425-40de-944b-e07fc1f90ae7", "/v1/score/15555550123",
       "account_lifecycle_event=transact",
       "MO1/CS1zZONUz/aNH8HOQUOijyHU+UaNEoRXVnW3/1A="},
      {DEFAULT_API_KEY, "POST", FORM_CT, "Mon, 06 Jan 2025 15:04:05 GMT", NULL,
       "7c9e6679-7425-40de-944b-e07fc1f90ae7", "/intelligence/phone",
       "phone_number=15555550123&account_lifecycle_event=transact",
       "5PzxecFS+U3mZDuT/k84ZdOZjAUzkKibGPiotOSAl5I="},
      {DEFAULT_API_KEY, "POST", FORM_CT, "", "Mon, 06 Jan 2025 15:04:05 GMT",
       "7c9e6679-7425-40de-944b-e07fc1f90ae7", "/v1/score/15555550123",
       "account_lifecycle_event=transact",
       "1GNmJC++3md72wwLzWLv1o2FJEiD/LMfzyTqQum/TXM="},
      {"EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8"
       "kunZ2zU1YWaUw/0wV6xfw==",
       "POST", FORM_CT, "Wed, 14 Dec 2016 18:20:12 GMT", NULL,
       "A1592C6F-E384-4CDB-BC42-C3AB970369E9", "/v1/resource", "test=param",
       "2xVlmbrxLjYrrPun3G3WMNG6Jon4yKcTeOoK9DjXJ/Q="},
      {"EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8"
       "kunZ2zU1YWaUw/0wV6xfw==",
       "POST", FORM_CT, "Wed, 14 Dec 2016 18:20:12 GMT", NULL,
       "A1592C6F-E384-4CDB-BC42-C3AB970369E9", "/v1/resource", "test=%CF%BF",
       "h8d4I0RTxErbxYXuzCOtNqb/f0w3Ck8e5SEkGNj01+8="},
      {"EXAMPLE----TE8sTgg45yusumoN6BYsBVkh+yRJ5czgsnCehZaOYldPJdmFh6NeX8"
       "kunZ2zU1YWaUw/0wV6xfw==",
       "GET", "", "Wed, 14 Dec 2016 18:20:12 GMT", NULL,
       "A1592C6F-E384-4CDB-BC42-C3AB970369E9", "/v1/resource", "",
       "aUm7I+9GKl3ww7PNeeJntCT0iS7b+EmRKEE4LnRzChQ="},
  };
  unsigned char key[MAX_KEY_LEN];
  size_t key_len;
  size_t i;
  int failed = 0;
  time_t t;

  for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    struct authin a;
    char got[48];

    memset(&a, 0, sizeof(a));
    a.method = v[i].method;
    a.content_type = v[i].ct;
    a.date = v[i].date;
    a.x_ts_date = v[i].x_ts_date;
    a.nonce = v[i].nonce;
    a.resource = v[i].resource;
    a.body = v[i].body;
    a.body_len = strlen(v[i].body);
    if (!b64_decode(v[i].key, false, key, sizeof(key), &key_len) ||
        tsa_sign(&a, key, key_len, got) || strcmp(got, v[i].expect)) {
      fprintf(stderr, "self-test: vector %zu failed\n", i);
      failed = 1;
    }
  }
  if (!parse_http_date("Mon, 06 Jan 2025 15:04:05 GMT", &t) ||
      t != 1736175845 ||
      parse_http_date("Tue, 06 Jan 2025 15:04:05 GMT", &t) ||
      parse_http_date("Mon, 6 Jan 2025 15:04:05 GMT", &t) ||
      parse_http_date("Sat, 31 Feb 2025 15:04:05 GMT", &t)) {
    fprintf(stderr, "self-test: date parsing failed\n");
    failed = 1;
  }
  puts(failed ? "self-test failed" : "self-test ok");
  return failed;
}

static void usage(FILE *f)
{
  fputs("usage: score-double [--port N] [--customer-id ID] [--api-key KEY]\n"
        "                    [--auth hmac|basic|any|none]"
        " [--max-date-skew S]\n"
        "       score-double --self-test\n",
        f);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
  char *end;
  long v;

  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    return false;
  *out = v;
  return true;
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
      {"port", required_argument, NULL, 'p'},
      {"customer-id", required_argument, NULL, 'c'},
      {"api-key", required_argument, NULL, 'k'},
      {"auth", required_argument, NULL, 'a'},
      {"max-date-skew", required_argument, NULL, 's'},
      {"self-test", no_argument, NULL, 'T'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct MHD_Daemon *d = NULL;
  const union MHD_DaemonInfo *info;
  struct sockaddr_in sa;
  sigset_t sigs;
  int sig;
  int opt;
  long v;
  int rc = 1;

  cfg.customer_id = DEFAULT_CUSTOMER_ID;
  cfg.api_key = DEFAULT_API_KEY;
  cfg.auth = AUTH_ANY;
  cfg.max_skew = 900;
  while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (opt) {
    case 'p':
      if (!parse_long(optarg, 0, 65535, &v))
        goto bad_usage;
      cfg.port = (unsigned)v;
      break;
    case 'c':
      cfg.customer_id = optarg;
      break;
    case 'k':
      cfg.api_key = optarg;
      break;
    case 'a':
      for (v = 0; v < 4; v++) {
        if (!strcmp(optarg, auth_names[v]))
          break;
      }
      if (v == 4)
        goto bad_usage;
      cfg.auth = (enum auth_mode)v;
      break;
    case 's':
      if (!parse_long(optarg, 0, 10L * 365 * 86400, &v))
        goto bad_usage;
      cfg.max_skew = v;
      break;
    case 'T':
      return self_test();
    case 'h':
      usage(stdout);
      return 0;
    default:
      goto bad_usage;
    }
  }
  if (optind != argc)
    goto bad_usage;
  if (!*cfg.customer_id || strlen(cfg.api_key) >= MAX_KEY_LEN ||
      !b64_decode(cfg.api_key, false, cfg.key, sizeof(cfg.key),
                  &cfg.key_len) ||
      !cfg.key_len) {
    fprintf(stderr, "score-double: bad --customer-id or --api-key\n");
    return 2;
  }

  st = calloc(1, sizeof(*st));
  if (!st) {
    fprintf(stderr, "score-double: out of memory\n");
    goto cleanup;
  }
  pthread_mutex_init(&st->lock, NULL);
  if (nonceset_init(&st->nonces)) {
    fprintf(stderr, "score-double: out of memory\n");
    goto cleanup;
  }
  st->http_status = 500;

  /* Block the stop signals in every thread (MHD's threads inherit the mask)
     so that the main thread alone receives them in sigwait(). */
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)cfg.port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_ERROR_LOG,
      (uint16_t)cfg.port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
      MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
      MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_END);
  if (!d) {
    fprintf(stderr, "score-double: cannot listen on 127.0.0.1:%u\n", cfg.port);
    goto cleanup;
  }
  info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  if (!info || !info->port) {
    fprintf(stderr, "score-double: cannot read the bound port\n");
    goto cleanup;
  }
  printf("listening %u\n", (unsigned)info->port);
  fflush(stdout);

  for (;;) {
    if (sigwait(&sigs, &sig) == 0 && (sig == SIGINT || sig == SIGTERM))
      break;
  }
  rc = 0;

cleanup:
  atomic_store(&stopping, true);
  if (d)
    MHD_stop_daemon(d);
  if (st) {
    nonceset_free(&st->nonces);
    pthread_mutex_destroy(&st->lock);
    free(st);
  }
  return rc;

bad_usage:
  usage(stderr);
  return 2;
}
