/*
 * The HTTP/1.1 request parser: a request's head (request line and header
 * fields) and a chunked body, after RFC 9112. Pure functions over caller
 * buffers, so that the fuzzer and the unit tests drive exactly what the
 * server runs.
 *
 * It is strict where leniency lets two parsers disagree about where a
 * request ends (request smuggling): lines end in CRLF, no space before a
 * header's colon, no folded lines, one Content-Length, no Content-Length
 * beside Transfer-Encoding, and "chunked" as the only transfer coding.
 *
 * Errors are HTTP statuses, returned negated, so that the server answers
 * each with the status that names it: 400 (malformed), 413 (body too
 * large), 414 (request line too long), 417 (unknown expectation), 431
 * (header fields too large or too many), 501 (transfer coding), 505
 * (version). Nothing here allocates.
 */
#ifndef VS_HTTP_HTTP_PARSE_H
#define VS_HTTP_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "../util/buf.h"

#define HTTP_MAX_HEADERS 48
#define HTTP_MAX_PARAMS  32

struct http_field {
  const char *name;
  const char *value;
};

/*
 * A parsed head. Its strings point into the buffer given to
 * http_parse_head(), which the parse rewrites in place; they are valid as
 * long as that buffer is.
 */
struct http_head {
  const char *method;
  const char *path; /* percent-decoded, without the query */
  int minor;        /* HTTP/1.minor: 0 or 1 */
  struct http_field headers[HTTP_MAX_HEADERS];
  unsigned nheaders;
  struct http_field params[HTTP_MAX_PARAMS]; /* the query, decoded */
  unsigned nparams;
  int64_t content_length; /* -1 when absent */
  int chunked;
  int keep_alive; /* the client allows another request on the connection */
  int expect_continue;
};

/*
 * Finds the end of a head in `data[0..len)`: returns the head's length
 * including its final blank line, 0 when more bytes are needed, or a
 * negated status (414, 431) when `max` bytes hold no complete head.
 */
long http_head_length(const char *data, size_t len, size_t max);

/*
 * Parses a complete head of `len` bytes (as measured by
 * http_head_length) in place; `head` must be writable and followed by a
 * NUL at head[len]. Returns 0 or a negated status.
 */
int http_parse_head(char *head, size_t len, struct http_head *out);

/* A header's value by case-insensitive name, or NULL. */
const char *http_field_get(const struct http_field *f, unsigned n,
                           const char *name);

/*
 * Does the comma-separated list `v` (a Connection header's value, or NULL)
 * hold `token`, in any case? Requests and the Score client's answers both
 * ask it.
 */
int http_has_token(const char *v, const char *token);

/* A Content-Length value: its number, or -1 unless it is 1 to 18 digits. */
int64_t http_content_length(const char *v);

/* The state of a chunked body being decoded; zero it to begin. */
struct http_chunked {
  int state;
  uint64_t left;  /* bytes left in the current chunk */
  size_t line;    /* bytes of the current size or trailer line */
  size_t trailer; /* bytes of trailer fields so far */
  int has_digit;
};

/*
 * Decodes `in[0..len)` of a chunked body, appending the data to `body`
 * (whose ceiling gives 413). Returns 1 when the body ended (bytes after
 * it are the next request's and are not consumed), 0 when more is needed,
 * or a negated status; on 1 or 0 `*used` is set to the bytes consumed (all
 * of them on 0), on an error it is left as it was.
 */
int http_chunked_feed(struct http_chunked *st, const char *in, size_t len,
                      struct buf *body, size_t *used);

#endif
