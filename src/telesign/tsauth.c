#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "tsauth.h"
#include "../util/base64.h"
#include "../util/buf.h"
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

/*
 * Writes base64(HMAC-SHA256(key, data)) into `out`. The digest is wiped
 * because, for a callback, it is exactly the value an attacker would want.
 */
static int hmac_base64(const unsigned char *key, size_t keylen,
                       const void *data, size_t len, char *out, size_t outsize)
{
  unsigned char digest[DIGEST_LEN];
  int rc;

  if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, keylen, len ? data : "", len,
                       digest) < 0) {
    rc = VS_ERR_PROTO;
    goto out;
  }
  rc = base64_encode(digest, sizeof(digest), out, outsize);
  if (rc > 0)
    rc = VS_OK;

out:
  explicit_bzero(digest, sizeof(digest));
  return rc;
}

/*
 * Validates every field of `r` before anything is built from it. The caps
 * on the text fields add up, with the fixed lines, to 1021 bytes, so the
 * 1 KiB of slack in TSAUTH_MAX_SIGN is never what refuses a request.
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

int tsauth_hmac_authorization(const char *customer_id, const char *api_key,
                              const struct tsauth_request *r, char *out,
                              size_t outsize)
{
  unsigned char key[KEY_MAX];
  size_t keylen = 0;
  char sig[TSAUTH_SIGNATURE_SIZE];
  struct buf sts;
  const char *ct;
  int n;
  int rc;

  buf_init(&sts, TSAUTH_MAX_SIGN);
  clear_out(out, outsize);
  rc = check_customer_id(customer_id);
  if (!rc)
    rc = check_request(r);
  if (rc)
    goto out;
  /* Fail before doing any work when the result cannot fit. */
  if (!out || outsize < 4 + strlen(customer_id) + 1 + TSAUTH_SIGNATURE_SIZE) {
    rc = VS_ERR_LIMIT;
    goto out;
  }
  rc = decode_key(api_key, key, &keylen);
  if (rc)
    goto out;

  ct = r->content_type ? r->content_type : "";
  rc = buf_printf(&sts,
                  "%s\n%s\n%s\nx-ts-auth-method:HMAC-SHA256\nx-ts-nonce:%s",
                  r->method, ct, r->date, r->nonce);
  /*
   * The Python, Java, Ruby and C# SDKs sign the body only when there is a
   * content type as well; Node differs, but the published vectors follow
   * the majority.
   */
  if (!rc && ct[0] && r->body_len) {
    rc = buf_append(&sts, "\n", 1);
    if (!rc)
      rc = buf_append(&sts, r->body, r->body_len);
  }
  if (!rc)
    rc = buf_printf(&sts, "\n%s", r->resource);
  if (rc)
    goto out;

  rc = hmac_base64(key, keylen, sts.data, sts.len, sig, sizeof(sig));
  if (rc)
    goto out;
  n = snprintf(out, outsize, "TSA %s:%s", customer_id, sig);
  if (n < 0 || (size_t)n >= outsize) {
    clear_out(out, outsize);
    rc = VS_ERR_LIMIT;
    goto out;
  }
  rc = VS_OK;

out:
  explicit_bzero(key, sizeof(key));
  explicit_bzero(sig, sizeof(sig));
  buf_free(&sts);
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

int tsauth_date_from_time(time_t t, char *out, size_t outsize)
{
  struct tm tm;
  int n;

  clear_out(out, outsize);
  if (!out || outsize < TSAUTH_DATE_SIZE)
    return VS_ERR_LIMIT;
  if (!gmtime_r(&t, &tm))
    return VS_ERR_INVAL;
  /* RFC 1123 dates have exactly four year digits. */
  if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900 || tm.tm_wday < 0 ||
      tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
    return VS_ERR_INVAL;
  n = snprintf(out, outsize, "%s, %02d %s %04d %02d:%02d:%02d GMT",
               day_names[tm.tm_wday], tm.tm_mday, month_names[tm.tm_mon],
               tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (n < 0 || (size_t)n >= outsize) {
    clear_out(out, outsize);
    return VS_ERR_LIMIT;
  }
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
  size_t got = 0;
  size_t o = 0;
  size_t i;
  int rc;

  clear_out(out, outsize);
  if (!out || outsize < TSAUTH_NONCE_SIZE)
    return VS_ERR_LIMIT;
  /*
   * getrandom does not return short reads of 16 bytes once the pool is
   * initialised, but a signal can still interrupt a blocking call.
   */
  while (got < sizeof(b)) {
    ssize_t r = getrandom(b + got, sizeof(b) - got, 0);

    if (r < 0) {
      if (errno == EINTR)
        continue;
      rc = VS_ERR_IO;
      goto out;
    }
    got += (size_t)r;
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

int tsauth_callback_signature(const char *api_key, const void *body,
                              size_t len, char *out, size_t outsize)
{
  unsigned char key[KEY_MAX];
  size_t keylen = 0;
  int rc;

  clear_out(out, outsize);
  if (len && !body) {
    rc = VS_ERR_INVAL;
    goto out;
  }
  if (!out || outsize < TSAUTH_SIGNATURE_SIZE) {
    rc = VS_ERR_LIMIT;
    goto out;
  }
  rc = decode_key(api_key, key, &keylen);
  if (rc)
    goto out;
  rc = hmac_base64(key, keylen, body, len, out, outsize);

out:
  explicit_bzero(key, sizeof(key));
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

int tsauth_callback_verify(const char *customer_id, const char *api_key,
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
  rc = tsauth_callback_signature(api_key, body, len, expected,
                                 sizeof(expected));
  if (rc)
    return vs_fail(why, whylen, rc, "cannot compute the signature");
  rc = tsauth_equal_constant_time(sig, expected);
  explicit_bzero(expected, sizeof(expected));
  if (!rc)
    return vs_fail(why, whylen, VS_ERR_INVAL, "signature does not match");
  return VS_OK;
}
