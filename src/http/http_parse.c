/*
 * The HTTP/1.1 request parser (see http_parse.h).
 */
#include <string.h>
#include <strings.h>

#include "../util/err.h"
#include "http_parse.h"

/* The bytes a token (a method, a header name) may hold: RFC 9110's tchar. */
static int is_tchar(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

long http_head_length(const char *data, size_t len, size_t max)
{
  size_t n = len < max ? len : max;
  const char *end = memmem(data, n, "\r\n\r\n", 4);

  if (end)
    return (long)(end - data) + 4;
  if (len < max)
    return 0;
  /* Full and still no blank line: blame the request line if even that has
   * not ended, else the header fields. */
  return memchr(data, '\n', n) ? -431 : -414;
}

static int hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/*
 * Percent-decodes `s` in place (and '+' as a space when `plus`). A '%' not
 * followed by two hex digits is kept as it is, as libmicrohttpd did; a
 * decoded NUL is refused, since every consumer reads C strings.
 */
static int decode(char *s, int plus)
{
  char *w = s;

  for (char *r = s; *r; r++) {
    int hi, lo;

    if (*r == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
      if (!hi && !lo)
        return -400;
      *w++ = (char)(hi * 16 + lo);
      r += 2;
    } else {
      *w++ = plus && *r == '+' ? ' ' : *r;
    }
  }
  *w = '\0';
  return 0;
}

/* Splits the query "a=1&b=2" into decoded parameters. */
static int parse_query(char *q, struct http_head *out)
{
  while (q && *q) {
    char *amp = strchr(q, '&');
    char *eq;

    if (amp)
      *amp = '\0';
    if (*q) {
      if (out->nparams == HTTP_MAX_PARAMS)
        return -414;
      eq = strchr(q, '=');
      if (eq)
        *eq = '\0';
      if (decode(q, 1) || (eq && decode(eq + 1, 1)))
        return -400;
      out->params[out->nparams++] = (struct http_field){q, eq ? eq + 1 : ""};
    }
    q = amp ? amp + 1 : NULL;
  }
  return 0;
}

static int parse_request_line(char *line, struct http_head *out)
{
  char *sp1 = strchr(line, ' ');
  char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  char *target, *query;

  if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1)
    return -400;
  *sp1 = *sp2 = '\0';
  for (const char *p = line; *p; p++)
    if (!is_tchar((unsigned char)*p))
      return -400;
  target = sp1 + 1;
  for (const char *p = target; *p; p++)
    if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
      return -400;
  if (strncmp(sp2 + 1, "HTTP/", 5) != 0)
    return -400;
  if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
    out->minor = 1;
  else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
    out->minor = 0;
  else
    return -505;
  /* Origin-form ("/path?query") is what clients send a server; the
   * absolute form ("http://host/path") is for proxies, but RFC 9112 3.2.2
   * has servers accept it too: its path is used. "*" (OPTIONS) is not
   * served. */
  if (strncasecmp(target, "http://", 7) == 0 ||
      strncasecmp(target, "https://", 8) == 0) {
    char *path = strchr(strchr(target, ':') + 3, '/');

    if (!path)
      return -400; /* an authority with no path: nothing of ours */
    target = path;
  }
  if (target[0] != '/')
    return -400;
  query = strchr(target, '?');
  if (query)
    *query++ = '\0';
  out->method = line;
  out->path = target;
  if (decode(target, 0))
    return -400;
  return parse_query(query, out);
}

/* Trims optional white space (SP, HTAB) from both ends of `s` in place. */
static char *trim(char *s)
{
  size_t n;

  while (*s == ' ' || *s == '\t')
    s++;
  n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  return s;
}

static int parse_field(char *line, struct http_head *out)
{
  char *colon = strchr(line, ':');
  char *value;

  if (!colon || colon == line)
    return -400; /* also a folded line, which starts with a space */
  *colon = '\0';
  for (const char *p = line; *p; p++)
    if (!is_tchar((unsigned char)*p))
      return -400;
  value = trim(colon + 1);
  for (const char *p = value; *p; p++)
    if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
      return -400;
  if (out->nheaders == HTTP_MAX_HEADERS)
    return -431;
  out->headers[out->nheaders++] = (struct http_field){line, value};
  return 0;
}

const char *http_field_get(const struct http_field *f, unsigned n,
                           const char *name)
{
  for (unsigned i = 0; i < n; i++)
    if (strcasecmp(f[i].name, name) == 0)
      return f[i].value;
  return NULL;
}

int http_has_token(const char *v, const char *token)
{
  size_t n = strlen(token);

  while (v && *v) {
    while (*v == ' ' || *v == '\t' || *v == ',')
      v++;
    if (strncasecmp(v, token, n) == 0 &&
        (!v[n] || v[n] == ',' || v[n] == ' ' || v[n] == '\t'))
      return 1;
    v = strchr(v, ',');
  }
  return 0;
}

int64_t http_content_length(const char *v)
{
  size_t digits = strspn(v, "0123456789");
  int64_t n = 0;

  if (!digits || v[digits] || digits > 18)
    return -1;
  for (; *v; v++)
    n = n * 10 + (*v - '0');
  return n;
}

/* Reads the fields that frame the body and the connection. */
static int interpret(struct http_head *out)
{
  const char *te = NULL, *expect = NULL, *conn = NULL;
  int host = 0;

  out->content_length = -1;
  for (unsigned i = 0; i < out->nheaders; i++) {
    const char *name = out->headers[i].name;
    const char *v = out->headers[i].value;

    if (strcasecmp(name, "Content-Length") == 0) {
      if (out->content_length >= 0 ||
          (out->content_length = http_content_length(v)) < 0)
        return -400;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
      if (te)
        return -400;
      te = v;
    } else if (strcasecmp(name, "Expect") == 0) {
      expect = v;
    } else if (strcasecmp(name, "Connection") == 0) {
      conn = v;
    } else if (strcasecmp(name, "Host") == 0) {
      host++;
    }
  }
  if (te) {
    if (out->content_length >= 0 || out->minor == 0)
      return -400;
    if (strcasecmp(te, "chunked") != 0)
      return -501;
    out->chunked = 1;
  }
  if (out->minor == 1 && host != 1)
    return -400; /* RFC 9112 3.2: exactly one Host */
  if (expect) {
    if (strcasecmp(expect, "100-continue") != 0)
      return -417;
    out->expect_continue = out->minor == 1;
  }
  out->keep_alive = out->minor == 1 ? !http_has_token(conn, "close")
                                    : http_has_token(conn, "keep-alive");
  return 0;
}

int http_parse_head(char *head, size_t len, struct http_head *out)
{
  char *line = head;
  char *end = head + len;
  int first = 1;

  memset(out, 0, sizeof(*out));
  if (memchr(head, '\0', len))
    return -400;
  for (;;) {
    char *cr = memchr(line, '\r', (size_t)(end - line));
    int rc;

    if (!cr || cr + 1 >= end || cr[1] != '\n')
      return -400; /* a bare CR, or a line not ended by CRLF */
    *cr = '\0';
    if (memchr(line, '\n', (size_t)(cr - line)))
      return -400; /* a bare LF inside a line */
    if (first && !*line)
      return -400; /* RFC 9112 2.2 lets a server skip a leading empty line;
                    * no client of ours sends one */
    if (!*line)
      break;
    rc = first ? parse_request_line(line, out) : parse_field(line, out);
    if (rc)
      return rc;
    first = 0;
    line = cr + 2;
  }
  return interpret(out);
}

enum {
  CH_SIZE,    /* reading the hex size */
  CH_EXT,     /* skipping a chunk extension up to CR */
  CH_SIZE_LF, /* the LF after the size line */
  CH_DATA,    /* chunk data */
  CH_DATA_CR, /* the CRLF after the data */
  CH_DATA_LF,
  CH_TRAILER, /* a trailer line (or the final empty one) */
  CH_TRAILER_LF
};

/* Caps on what a chunked body may spend on framing rather than data. */
#define CHUNK_LINE_MAX    256
#define CHUNK_TRAILER_MAX 4096

int http_chunked_feed(struct http_chunked *st, const char *in, size_t len,
                      struct buf *body, size_t *used)
{
  size_t i = 0;
  int rc = 0;

  while (i < len && !rc) {
    unsigned char c = (unsigned char)in[i];
    int h;

    switch (st->state) {
    case CH_SIZE:
      if ((h = hexval((char)c)) >= 0) {
        if (st->left >> 59)
          return -413;
        st->left = st->left * 16 + (uint64_t)h;
        st->has_digit = 1;
      } else if (c == '\r' || c == ';' || c == ' ' || c == '\t') {
        if (!st->has_digit)
          return -400;
        st->state = c == '\r' ? CH_SIZE_LF : CH_EXT;
      } else {
        return -400;
      }
      if (++st->line > CHUNK_LINE_MAX)
        return -400;
      i++;
      break;
    case CH_EXT:
      if (c == '\r')
        st->state = CH_SIZE_LF;
      else if (c == '\n' || ++st->line > CHUNK_LINE_MAX)
        return -400;
      i++;
      break;
    case CH_SIZE_LF:
      if (c != '\n')
        return -400;
      i++;
      st->line = 0;
      st->has_digit = 0;
      st->state = st->left ? CH_DATA : CH_TRAILER;
      break;
    case CH_DATA: {
      size_t n = len - i < st->left ? len - i : (size_t)st->left;

      if (buf_append(body, in + i, n))
        return -413;
      i += n;
      st->left -= n;
      if (!st->left)
        st->state = CH_DATA_CR;
      break;
    }
    case CH_DATA_CR:
    case CH_DATA_LF:
      if (c != (st->state == CH_DATA_CR ? '\r' : '\n'))
        return -400;
      st->state = st->state == CH_DATA_CR ? CH_DATA_LF : CH_SIZE;
      i++;
      break;
    case CH_TRAILER:
      if (c == '\r') {
        st->state = CH_TRAILER_LF;
      } else if (c == '\n' || ++st->trailer > CHUNK_TRAILER_MAX) {
        return -400;
      } else {
        st->line++;
      }
      i++;
      break;
    case CH_TRAILER_LF:
      if (c != '\n')
        return -400;
      i++;
      /* Trailer fields are read and dropped: nothing of ours uses them. */
      if (!st->line)
        rc = 1;
      st->line = 0;
      st->state = CH_TRAILER;
      break;
    }
  }
  *used = i;
  return rc;
}
