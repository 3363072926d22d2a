/*
 * TeleSign request authentication: the "TSA" HMAC-SHA256 Authorization
 * header for our REST calls, the Basic alternative, the Date and nonce
 * values those headers need, and the signature TeleSign puts on the
 * callbacks it sends us.
 *
 * The string-to-sign is built exactly as TeleSign's Python and Java SDKs
 * build it, because the SDK unit-test vectors are the only ground truth
 * available without a live account:
 *
 *   method \n content_type \n date \n x-ts-auth-method:HMAC-SHA256 \n
 *   x-ts-nonce:<nonce> [\n body] \n resource
 *
 * with the body line present only when both the content type and the body
 * are non-empty. The HMAC key is the API key run through the lenient base64
 * decoder (util/base64.h), as the SDKs do.
 *
 * Every function writes into a caller-owned buffer whose size it checks.
 * The one-shot functions keep no state and are safe to call from any
 * thread; their decoded key material lives only on the stack of the call
 * and is wiped before returning. A struct tsauth_key holds a decoded key
 * ready for HMAC, so that a server signing every request decodes the key
 * and runs HMAC's key schedule once rather than per request (a third of
 * the cost of a signature).
 */
#ifndef VS_TELESIGN_TSAUTH_H
#define VS_TELESIGN_TSAUTH_H

#include <stddef.h>
#include <time.h>

/* Longest customer id accepted; TeleSign's are 36-character UUIDs. */
#define TSAUTH_MAX_CUSTOMER_ID 128

/* Longest API key accepted, in base64 characters (real ones are 88). */
#define TSAUTH_MAX_API_KEY 512

/* Longest request body that can be signed. */
#define TSAUTH_MAX_BODY (64 * 1024)

/*
 * Big enough for any Authorization value produced here given the limits
 * above: "Basic " plus the base64 of "<customer id>:<api key>" (at most
 * 6 + 856 + 1 bytes) is the longest; "TSA <id>:<44 chars>" needs at most
 * 178.
 */
#define TSAUTH_HEADER_SIZE 1024

/* "Mon, 06 Jan 2025 15:04:05 GMT" plus the NUL. */
#define TSAUTH_DATE_SIZE 30

/* A UUID string, 36 characters plus the NUL. */
#define TSAUTH_NONCE_SIZE 37

/* The base64 of a SHA-256 HMAC, 44 characters plus the NUL. */
#define TSAUTH_SIGNATURE_SIZE 45

/*
 * One request to sign. All pointers are borrowed from the caller for the
 * duration of the call only. `content_type` may be NULL, meaning the empty
 * string (what the SDKs use for GET and DELETE); `body` may be NULL when
 * `body_len` is 0. `resource` is the URL path alone, starting with '/',
 * without host or query. `date` and `nonce` must be the exact strings that
 * will be sent in the Date and x-ts-nonce headers.
 */
struct tsauth_request {
  const char *method;
  const char *content_type;
  const char *resource;
  const void *body;
  size_t body_len;
  const char *date;
  const char *nonce;
};

/*
 * A decoded API key, keyed for HMAC-SHA256. Opaque; it may be used by one
 * thread at a time (the server's loop thread).
 */
struct tsauth_key;

/*
 * Decodes `api_key` (borrowed) with the lenient base64 decoder and keys an
 * HMAC with it. On success *out is a new key the caller frees with
 * tsauth_key_destroy. Returns 0; VS_ERR_INVAL for a missing key, one with
 * control characters or one that decodes to nothing; VS_ERR_LIMIT beyond
 * TSAUTH_MAX_API_KEY; VS_ERR_NOMEM; or VS_ERR_PROTO when GnuTLS fails.
 */
int tsauth_key_create(const char *api_key, struct tsauth_key **out);

/* Wipes and frees `key`; NULL is accepted. */
void tsauth_key_destroy(struct tsauth_key *key);

/*
 * tsauth_hmac_authorization with a key made by tsauth_key_create: the same
 * inputs (borrowed), output and returns.
 */
int tsauth_key_authorization(const struct tsauth_key *key,
                             const char *customer_id,
                             const struct tsauth_request *r, char *out,
                             size_t outsize);

/*
 * tsauth_callback_signature with a key made by tsauth_key_create: the same
 * inputs (borrowed), output and returns.
 */
int tsauth_key_callback_signature(const struct tsauth_key *key,
                                  const void *body, size_t len, char *out,
                                  size_t outsize);

/*
 * Writes "TSA <customer_id>:<signature>" into the caller's `out` of
 * `outsize` bytes (TSAUTH_HEADER_SIZE is always enough), NUL-terminated.
 * The inputs are borrowed. Returns 0; VS_ERR_INVAL when a field is missing,
 * contains a CR, LF or other control character (they would end up in HTTP
 * headers), the customer id contains ':' or the key decodes to nothing;
 * VS_ERR_LIMIT when a limit above is exceeded or `out` is too small;
 * VS_ERR_NOMEM; or VS_ERR_PROTO when GnuTLS fails. On error `out` holds an
 * empty string if `outsize` is at least 1.
 */
int tsauth_hmac_authorization(const char *customer_id, const char *api_key,
                              const struct tsauth_request *r, char *out,
                              size_t outsize);

/*
 * Writes "Basic base64(<customer_id>:<api_key>)" into the caller's `out`,
 * with the API key used verbatim (not decoded), as TeleSign documents.
 * Same inputs, returns and limits as tsauth_hmac_authorization.
 */
int tsauth_basic_authorization(const char *customer_id, const char *api_key,
                               char *out, size_t outsize);

/*
 * Writes the RFC 1123 GMT form of `t`, e.g. "Mon, 06 Jan 2025 15:04:05 GMT",
 * into the caller's `out` (TSAUTH_DATE_SIZE bytes suffice). Day and month
 * names are spelled here rather than by strftime so that the locale cannot
 * change them. Returns 0, VS_ERR_LIMIT when `out` is too small, or
 * VS_ERR_INVAL when `t` is not representable with a four-digit year.
 */
int tsauth_date_from_time(time_t t, char *out, size_t outsize);

/* As tsauth_date_from_time for the current time; VS_ERR_IO if it fails. */
int tsauth_date_now(char *out, size_t outsize);

/*
 * Writes a random version 4 UUID in lower case, e.g.
 * "7c9e6679-7425-40de-944b-e07fc1f90ae7", into the caller's `out`
 * (TSAUTH_NONCE_SIZE bytes suffice), from GnuTLS's nonce generator
 * (gnutls_rnd, GNUTLS_RND_NONCE). Returns 0, VS_ERR_LIMIT when `out` is too
 * small, or VS_ERR_IO when the generator fails. Any thread may call it.
 */
int tsauth_nonce(char *out, size_t outsize);

/*
 * Computes TeleSign's callback signature, base64(HMAC-SHA256(decoded
 * api_key, body)), over the `len` raw body bytes exactly as received, into
 * the caller's `out` (TSAUTH_SIGNATURE_SIZE bytes suffice). `body` may be
 * NULL when `len` is 0. Returns 0, VS_ERR_INVAL for a missing or undecodable
 * key, VS_ERR_LIMIT when the key is too long or `out` too small, or
 * VS_ERR_PROTO when GnuTLS fails. The body is not copied, so its size is
 * bounded only by whoever read it.
 */
int tsauth_callback_signature(const char *api_key, const void *body,
                              size_t len, char *out, size_t outsize);

/*
 * Returns 1 when the NUL-terminated strings `a` and `b` are equal and 0
 * otherwise (also when either is NULL). The time taken depends only on the
 * two lengths, never on where the contents differ, so that a signature
 * received from the network can be checked against the expected one
 * without leaking how many leading characters were right.
 */
int tsauth_equal_constant_time(const char *a, const char *b);

/*
 * Checks a TeleSign callback's signature (reference section 2): the body's
 * HMAC-SHA256 under `key` (from tsauth_key_create, borrowed), from
 * `authorization` ("TSA <customer_id>:<base64 signature>", whose customer
 * id must be ours) or, when that is absent, `x_ts_authorization` (the
 * signature after its last ':', or the whole value). Either header may be
 * NULL; a NULL `key` verifies nothing (VS_ERR_INVAL). The signature is
 * compared in constant time. Returns 0 when it matches, VS_ERR_NOTFOUND
 * when neither header is present, VS_ERR_PROTO for a header that is not
 * of that form, VS_ERR_INVAL for another customer id or a wrong signature;
 * `why` (whylen bytes) gets a short reason for logs, never a secret.
 */
int tsauth_callback_verify(const char *customer_id,
                           const struct tsauth_key *key,
                           const char *authorization,
                           const char *x_ts_authorization, const void *body,
                           size_t len, char *why, size_t whylen);

#endif
