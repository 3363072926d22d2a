#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "tsauth.h"
#include "../util/base64.h"
#include "../util/err.h"

/* A SHA-256 digest. */
#define DIGEST_LEN 32

/* Room for any key that TSAUTH_MAX_API_KEY base64 characters decode to. */
#define KEY_MAX BASE64_DECODED_MAX(TSAUTH_MAX_API_KEY)

static const char *const day_names[] = {"Sun", "Mon", "Tue", "Wed",
                                        "Thu", "Fri", "Sat"};

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr",
                                          "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec"};

/* Leaves an empty string in `out` so that no error path returns garbage. */
static void clear_out(char *out, size_t outsize)
{
  if (out && outsize)
    out[0] = '\0';
}

/*
 * Checks that `s` is present, at most `max` bytes long and free of control
 * characters. Every string checked here ends up in an HTTP header line or
 * in a line of the string-to-sign, so a CR or LF would either inject a
 * header or silently change what is signed.
 */
static int check_text(const char *s, size_t max, int allow_empty)
{
  size_t n;
  size_t i;

  if (!s)
    return VS_ERR_INVAL;
  n = strnlen(s, max + 1);
  if (n > max)
    return VS_ERR_LIMIT;
  if (!n && !allow_empty)
    return VS_ERR_INVAL;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];

    if (c < 0x20 || c == 0x7f)
      return VS_ERR_INVAL;
  }
  return VS_OK;
}

/*
 * A customer id is also the left part of "id:key" in Basic and of
 * "TSA id:signature", so a ':' in it would make both ambiguous.
 */
static int check_customer_id(const char *customer_id)
{
  int rc = check_text(customer_id, TSAUTH_MAX_CUSTOMER_ID, 0);

  if (rc)
    return rc;
  if (strchr(customer_id, ':'))
    return VS_ERR_INVAL;
  return VS_OK;
}

/*
 * Decodes `api_key` into the caller's `key` of KEY_MAX bytes. The caller
 * wipes `key` afterwards whatever this returns, because a failed decode may
 * still have written part of the key.
 */
static int decode_key(const char *api_key, unsigned char *key, size_t *keylen)
{
  int rc = check_text(api_key, TSAUTH_MAX_API_KEY, 0);

  *keylen = 0;
  if (rc)
    return rc;
  rc = base64_decode_lenient(api_key, strlen(api_key), key, KEY_MAX, keylen);
  if (rc)
    return rc;
  /* An HMAC with an empty key "works" but proves nothing. */
  if (!*keylen)
    return VS_ERR_INVAL;
  return VS_OK;
}

struct tsauth_key {
  /* Keyed once; every signature works on a copy, so this stays pristine. */
  gnutls_hmac_hd_t hmac;
};

int tsauth_key_create(const char *api_key, struct tsauth_key **out)
{
  unsigned char raw[KEY_MAX];
  size_t rawlen = 0;
  struct tsauth_key *key = NULL;
  int rc;

  *out = NULL;
  rc = decode_key(api_key, raw, &rawlen);
  if (rc)
    goto out;
  rc = VS_ERR_NOMEM;
  key = calloc(1, sizeof(*key));
  if (!key)
    goto out;
  rc = VS_ERR_PROTO;
  if (gnutls_hmac_init(&key->hmac, GNUTLS_MAC_SHA256, raw, rawlen) < 0) {
    free(key);
    goto out;
  }
  *out = key;
  rc = VS_OK;

out:
  explicit_bzero(raw, sizeof(raw));
  return rc;
}

void tsauth_key_destroy(struct tsauth_key *key)
{
  unsigned char digest[DIGEST_LEN];

  if (!key)
    return;
  /* gnutls_hmac_deinit wipes the keyed state as it frees it. */
  gnutls_hmac_deinit(key->hmac, digest);
  explicit_bzero(digest, sizeof(digest));
  free(key);
}

/* One piece of a message being signed. */
struct piece {
  const void *data;
  size_t len;
};

/*
 * Bytes of the pieces gathered before each gnutls_hmac call: a call costs
 * about a thousand instructions whatever its length, so the short lines of
 * a string-to-sign are copied together first (a whole Score request fits).
 */
#define GATHER 1024

/*
 * Writes base64(HMAC-SHA256(key, the pieces concatenated)) into `out`. The
 * digest is wiped because, for a callback, it is exactly the value an
 * attacker would want; the gathered bytes are not secret.
 */
static int hmac_base64(const struct tsauth_key *key, const struct piece *p,
                       size_t n, char *out, size_t outsize)
{
  unsigned char digest[DIGEST_LEN];
  unsigned char gather[GATHER];
  size_t used = 0;
  gnutls_hmac_hd_t h = gnutls_hmac_copy(key->hmac);
  int rc = VS_ERR_PROTO;

  if (!h)
    return VS_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    if (used + p[i].len > sizeof(gather)) {
      if (gnutls_hmac(h, gather, used) < 0)
        goto out;
      used = 0;
    }
    if (p[i].len > sizeof(gather)) {
      if (gnutls_hmac(h, p[i].data, p[i].len) < 0)
        goto out;
    } else if (p[i].len) {
      memcpy(gather + used, p[i].data, p[i].len);
      used += p[i].len;
    }
  }
  if (used && gnutls_hmac(h, gather, used) < 0)
    goto out;
  rc = VS_OK;

out:
  gnutls_hmac_deinit(h, digest);
  if (!rc) {
    rc = base64_encode(digest, sizeof(digest), out, outsize);
    if (rc > 0)
      rc = VS_OK;
  }
  explicit_bzero(digest, sizeof(digest));
  return rc;
}

/*
 * Validates every field of `r` before anything is signed: each text field
 * has a cap, and the body TSAUTH_MAX_BODY.
 */
static int check_request(const struct tsauth_request *r)
{
  int rc;

  if (!r)
    return VS_ERR_INVAL;
  rc = check_text(r->method, 16, 0);
  if (!rc)
    rc = check_text(r->content_type ? r->content_type : "", 256, 1);
  if (!rc)
    rc = check_text(r->date, 64, 0);
  if (!rc)
    rc = check_text(r->nonce, 128, 0);
  if (!rc)
    rc = check_text(r->resource, 512, 0);
  if (rc)
    return rc;
  if (r->resource[0] != '/')
    return VS_ERR_INVAL;
  if (r->body_len && !r->body)
    return VS_ERR_INVAL;
  if (r->body_len > TSAUTH_MAX_BODY)
    return VS_ERR_LIMIT;
  return VS_OK;
}

/* A NUL-terminated string as a piece. */
static struct piece text(const char *s)
{
  return (struct piece){s, strlen(s)};
}

int tsauth_key_authorization(const struct tsauth_key *key,
                             const char *customer_id,
                             const struct tsauth_request *r, char *out,
                             size_t outsize)
{
  static const char nl[] = "\n";
  char sig[TSAUTH_SIGNATURE_SIZE];
  struct piece p[11];
  const char *ct;
  size_t n = 0;
  size_t idlen;
  int rc;

  clear_out(out, outsize);
  rc = key ? check_customer_id(customer_id) : VS_ERR_INVAL;
  if (!rc)
    rc = check_request(r);
  if (rc)
    return rc;
  /* Fail before doing any work when the result cannot fit. */
  idlen = strlen(customer_id);
  if (!out || outsize < 4 + idlen + 1 + TSAUTH_SIGNATURE_SIZE)
    return VS_ERR_LIMIT;

  ct = r->content_type ? r->content_type : "";
  p[n++] = text(r->method);
  p[n++] = text(nl);
  p[n++] = text(ct);
  p[n++] = text(nl);
  p[n++] = text(r->date);
  p[n++] = text("\nx-ts-auth-method:HMAC-SHA256\nx-ts-nonce:");
  p[n++] = text(r->nonce);
  /*
   * The Python, Java, Ruby and C# SDKs sign the body only when there is a
   * content type as well; Node differs, but the published vectors follow
   * the majority.
   */
  if (ct[0] && r->body_len) {
    p[n++] = text(nl);
    p[n++] = (struct piece){r->body, r->body_len};
  }
  p[n++] = text(nl);
  p[n++] = text(r->resource);
  rc = hmac_base64(key, p, n, sig, sizeof(sig));
  if (!rc) {
    /* The size check above leaves room for all of it. */
    memcpy(out, "TSA ", 4);
    memcpy(out + 4, customer_id, idlen);
    out[4 + idlen] = ':';
    memcpy(out + 5 + idlen, sig, strlen(sig) + 1);
  }
  explicit_bzero(sig, sizeof(sig));
  return rc;
}

int tsauth_hmac_authorization(const char *customer_id, const char *api_key,
                              const struct tsauth_request *r, char *out,
                              size_t outsize)
{
  struct tsauth_key *key;
  int rc;

  clear_out(out, outsize);
  rc = check_customer_id(customer_id);
  if (!rc)
    rc = check_request(r);
  if (!rc)
    rc = tsauth_key_create(api_key, &key);
  if (rc)
    return rc;
  rc = tsauth_key_authorization(key, customer_id, r, out, outsize);
  tsauth_key_destroy(key);
  return rc;
}

int tsauth_basic_authorization(const char *customer_id, const char *api_key,
                               char *out, size_t outsize)
{
  static const char prefix[] = "Basic ";
  char cred[TSAUTH_MAX_CUSTOMER_ID + 1 + TSAUTH_MAX_API_KEY + 1];
  size_t idlen;
  size_t keylen;
  int rc;

  clear_out(out, outsize);
  rc = check_customer_id(customer_id);
  if (!rc)
    rc = check_text(api_key, TSAUTH_MAX_API_KEY, 0);
  if (rc)
    return rc;
  idlen = strlen(customer_id);
  keylen = strlen(api_key);
  if (!out ||
      outsize < sizeof(prefix) - 1 + BASE64_ENCODED_SIZE(idlen + 1 + keylen))
    return VS_ERR_LIMIT;

  /* The limits checked above guarantee that `cred` is big enough. */
  memcpy(cred, customer_id, idlen);
  cred[idlen] = ':';
  memcpy(cred + idlen + 1, api_key, keylen);
  memcpy(out, prefix, sizeof(prefix) - 1);
  rc = base64_encode(cred, idlen + 1 + keylen, out + sizeof(prefix) - 1,
                     outsize - (sizeof(prefix) - 1));
  if (rc < 0)
    clear_out(out, outsize);
  else
    rc = VS_OK;
  explicit_bzero(cred, sizeof(cred));
  return rc;
}

/* Writes `v` (0..99) as two digits, without a NUL. */
static void two_digits(char *out, int v)
{
  out[0] = (char)('0' + v / 10);
  out[1] = (char)('0' + v % 10);
}

int tsauth_date_from_time(time_t t, char *out, size_t outsize)
{
  struct tm tm;

  clear_out(out, outsize);
  if (!out || outsize < TSAUTH_DATE_SIZE)
    return VS_ERR_LIMIT;
  if (!gmtime_r(&t, &tm))
    return VS_ERR_INVAL;
  /* RFC 1123 dates have exactly four year digits. */
  if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900 || tm.tm_wday < 0 ||
      tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
    return VS_ERR_INVAL;
  /* Written by hand: snprintf was most of the cost of a request's date. */
  memcpy(out, day_names[tm.tm_wday], 3);
  memcpy(out + 3, ", ", 2);
  two_digits(out + 5, tm.tm_mday);
  out[7] = ' ';
  memcpy(out + 8, month_names[tm.tm_mon], 3);
  out[11] = ' ';
  two_digits(out + 12, (tm.tm_year + 1900) / 100);
  two_digits(out + 14, (tm.tm_year + 1900) % 100);
  out[16] = ' ';
  two_digits(out + 17, tm.tm_hour);
  out[19] = ':';
  two_digits(out + 20, tm.tm_min);
  out[22] = ':';
  two_digits(out + 23, tm.tm_sec);
  memcpy(out + 25, " GMT", 5);
  return VS_OK;
}

int tsauth_date_now(char *out, size_t outsize)
{
  time_t t = time(NULL);

  if (t == (time_t)-1) {
    clear_out(out, outsize);
    return VS_ERR_IO;
  }
  return tsauth_date_from_time(t, out, outsize);
}

int tsauth_nonce(char *out, size_t outsize)
{
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  size_t o = 0;
  size_t i;
  int rc;

  clear_out(out, outsize);
  if (!out || outsize < TSAUTH_NONCE_SIZE)
    return VS_ERR_LIMIT;
  /*
   * A nonce must be unpredictable and never repeat, which is what GnuTLS's
   * NONCE level gives: a per-thread generator seeded from the kernel, so
   * a lookup makes no system call for it (getrandom was one of the ten
   * or so system calls a lookup made).
   */
  if (gnutls_rnd(GNUTLS_RND_NONCE, b, sizeof(b)) < 0) {
    rc = VS_ERR_IO;
    goto out;
  }
  /* RFC 4122 section 4.4: version 4 in the high nibble, variant 10xx. */
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  for (i = 0; i < sizeof(b); i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = hex[b[i] >> 4];
    out[o++] = hex[b[i] & 0x0f];
  }
  out[o] = '\0';
  rc = VS_OK;

out:
  explicit_bzero(b, sizeof(b));
  return rc;
}

int tsauth_key_callback_signature(const struct tsauth_key *key,
                                  const void *body, size_t len, char *out,
                                  size_t outsize)
{
  struct piece p = {body, len};

  clear_out(out, outsize);
  if (!key || (len && !body))
    return VS_ERR_INVAL;
  if (!out || outsize < TSAUTH_SIGNATURE_SIZE)
    return VS_ERR_LIMIT;
  return hmac_base64(key, &p, 1, out, outsize);
}

int tsauth_callback_signature(const char *api_key, const void *body,
                              size_t len, char *out, size_t outsize)
{
  struct tsauth_key *key;
  int rc;

  clear_out(out, outsize);
  if (len && !body)
    return VS_ERR_INVAL;
  if (!out || outsize < TSAUTH_SIGNATURE_SIZE)
    return VS_ERR_LIMIT;
  rc = tsauth_key_create(api_key, &key);
  if (rc)
    return rc;
  rc = tsauth_key_callback_signature(key, body, len, out, outsize);
  tsauth_key_destroy(key);
  return rc;
}

int tsauth_equal_constant_time(const char *a, const char *b)
{
  size_t la;
  size_t lb;
  size_t n;
  size_t i;
  /*
   * volatile keeps the compiler from turning the accumulation into an
   * early exit once a difference has been seen.
   */
  volatile unsigned char diff;

  if (!a || !b)
    return 0;
  la = strlen(a);
  lb = strlen(b);
  diff = (unsigned char)(la != lb);
  n = la > lb ? la : lb;
  /*
   * Walk the longer length in full, reading a zero past the end of the
   * shorter string, so the work depends on the lengths alone.
   */
  for (i = 0; i < n; i++) {
    unsigned char ca = i < la ? (unsigned char)a[i] : 0;
    unsigned char cb = i < lb ? (unsigned char)b[i] : 0;

    diff |= (unsigned char)(ca ^ cb);
  }
  return diff == 0;
}

int tsauth_callback_verify(const char *customer_id,
                           const struct tsauth_key *key,
                           const char *authorization,
                           const char *x_ts_authorization, const void *body,
                           size_t len, char *why, size_t whylen)
{
  char expected[TSAUTH_SIGNATURE_SIZE];
  const char *sig;
  const char *colon;
  size_t cid_len;
  int rc;

  if (authorization && *authorization) {
    /* The scheme name is case-insensitive in HTTP. */
    if (strncasecmp(authorization, "TSA ", 4) != 0)
      return vs_fail(why, whylen, VS_ERR_PROTO,
                     "Authorization is not a TSA signature");
    colon = strrchr(authorization + 4, ':');
    if (!colon)
      return vs_fail(why, whylen, VS_ERR_PROTO,
                     "Authorization has no customer id");
    cid_len = (size_t)(colon - (authorization + 4));
    if (cid_len != strlen(customer_id) ||
        strncmp(authorization + 4, customer_id, cid_len) != 0)
      return vs_fail(why, whylen, VS_ERR_INVAL,
                     "signed for another customer id");
    sig = colon + 1;
  } else if (x_ts_authorization && *x_ts_authorization) {
    colon = strrchr(x_ts_authorization, ':');
    sig = colon ? colon + 1 : x_ts_authorization;
  } else {
    return vs_fail(why, whylen, VS_ERR_NOTFOUND, "unsigned");
  }
  rc = tsauth_key_callback_signature(key, body, len, expected,
                                     sizeof(expected));
  if (rc)
    return vs_fail(why, whylen, rc, "cannot compute the signature");
  rc = tsauth_equal_constant_time(sig, expected);
  explicit_bzero(expected, sizeof(expected));
  if (!rc)
    return vs_fail(why, whylen, VS_ERR_INVAL, "signature does not match");
  return VS_OK;
}
