/*
 * The small JSON reader (see json_scan.h).
 *
 * One recursive-descent pass over the text, bounded by JSON_SCAN_MAX_DEPTH;
 * nothing is allocated and nothing is copied until json_scan_string().
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "json_scan.h"

/* A number's text longer than this is refused (strtod needs a copy). */
#define NUMBER_MAX 320

struct reader {
  struct json_scan *js;
  const unsigned char *p;
  const unsigned char *end;
  int limit; /* VS_ERR_LIMIT rather than VS_ERR_INVAL */
};

static int parse_value(struct reader *r, int parent, const char *key,
                       size_t key_len, int depth);

static void skip_space(struct reader *r)
{
  while (r->p < r->end &&
         (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

static int hex4(const unsigned char *p, unsigned *out)
{
  unsigned v = 0;

  for (int i = 0; i < 4; i++) {
    unsigned c = p[i], d;

    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return -1;
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

/*
 * Reads the escape after a backslash at `p` (`end` bounds it) into the
 * code point it stands for; returns the bytes it took, or 0 if it is not
 * a valid escape (a lone surrogate, \u0000: jansson refuses both).
 */
static size_t read_escape(const unsigned char *p, const unsigned char *end,
                          unsigned *cp)
{
  static const char simple[] = "\"\\/bfnrt";
  static const char value[] = "\"\\/\b\f\n\r\t";
  unsigned hi, lo;
  const char *s;

  if (p >= end)
    return 0;
  if (*p != 'u') {
    s = *p ? strchr(simple, *p) : NULL;
    if (!s)
      return 0;
    *cp = (unsigned char)value[s - simple];
    return 1;
  }
  if (end - p < 5 || hex4(p + 1, &hi))
    return 0;
  if (hi >= 0xDC00 && hi <= 0xDFFF)
    return 0;
  if (hi >= 0xD800 && hi <= 0xDBFF) {
    if (end - p < 11 || p[5] != '\\' || p[6] != 'u' || hex4(p + 7, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
      return 0;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 11;
  }
  if (hi == 0)
    return 0;
  *cp = hi;
  return 5;
}

/* The length of the UTF-8 sequence at `p`, or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
  unsigned c = p[0];
  size_t n, i;
  unsigned cp;

  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n)
    return 0;
  for (i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  /* Overlong forms, UTF-16 surrogates and past U+10FFFF. */
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
    return 0;
  return n;
}

/* Checks the string whose opening quote is at r->p; leaves r->p past it. */
static int scan_string(struct reader *r, const char **text, size_t *len)
{
  const unsigned char *start = ++r->p;

  while (r->p < r->end && *r->p != '"') {
    unsigned cp;
    size_t n;

    if (*r->p == '\\') {
      n = read_escape(r->p + 1, r->end, &cp);
      if (!n)
        return VS_ERR_INVAL;
      r->p += 1 + n;
    } else if (*r->p < 0x20) {
      return VS_ERR_INVAL;
    } else {
      n = utf8_len(r->p, r->end);
      if (!n)
        return VS_ERR_INVAL;
      r->p += n;
    }
  }
  if (r->p >= r->end)
    return VS_ERR_INVAL;
  *text = (const char *)start;
  *len = (size_t)(r->p - start);
  r->p++;
  return VS_OK;
}

static int scan_number(struct reader *r, struct json_scan_node *node)
{
  const unsigned char *start = r->p;
  char buf[NUMBER_MAX + 1];
  int real = 0;
  size_t len;
  char *stop;

  if (r->p < r->end && *r->p == '-')
    r->p++;
  if (r->p >= r->end || *r->p < '0' || *r->p > '9')
    return VS_ERR_INVAL;
  if (*r->p == '0') {
    r->p++;
  } else {
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
      r->p++;
  }
  if (r->p < r->end && *r->p == '.') {
    real = 1;
    r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
      return VS_ERR_INVAL;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
      r->p++;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    real = 1;
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
      r->p++;
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
      return VS_ERR_INVAL;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
      r->p++;
  }
  len = (size_t)(r->p - start);
  if (len > NUMBER_MAX) {
    r->limit = 1;
    return VS_ERR_LIMIT;
  }
  memcpy(buf, start, len);
  buf[len] = '\0';
  errno = 0;
  if (real) {
    /* As jansson: an overflow is an error, an underflow is not. */
    node->real = strtod(buf, &stop);
    if (errno == ERANGE && (node->real > 1.0 || node->real < -1.0))
      return VS_ERR_INVAL;
    node->kind = JSON_SCAN_REAL;
  } else {
    node->integer = strtoll(buf, &stop, 10);
    if (errno == ERANGE)
      return VS_ERR_INVAL;
    node->kind = JSON_SCAN_INTEGER;
  }
  return VS_OK;
}

static int literal(struct reader *r, const char *word)
{
  size_t n = strlen(word);

  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
    return VS_ERR_INVAL;
  r->p += n;
  return VS_OK;
}

/* Parses the members or elements of the container at `self`. */
static int parse_container(struct reader *r, int self, int object, int depth)
{
  unsigned char close = object ? '}' : ']';
  int rc;

  r->p++;
  skip_space(r);
  if (r->p < r->end && *r->p == close) {
    r->p++;
    return VS_OK;
  }
  for (;;) {
    const char *key = NULL;
    size_t key_len = 0;

    skip_space(r);
    if (object) {
      if (r->p >= r->end || *r->p != '"')
        return VS_ERR_INVAL;
      rc = scan_string(r, &key, &key_len);
      if (rc)
        return rc;
      skip_space(r);
      if (r->p >= r->end || *r->p != ':')
        return VS_ERR_INVAL;
      r->p++;
    }
    rc = parse_value(r, self, key, key_len, depth + 1);
    if (rc)
      return rc;
    skip_space(r);
    if (r->p < r->end && *r->p == ',') {
      r->p++;
      continue;
    }
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return VS_OK;
    }
    return VS_ERR_INVAL;
  }
}

/*
 * Parses one value at r->p. `parent` is the index of the value holding
 * it (-1 for the root, or when that one was not indexed).
 */
static int parse_value(struct reader *r, int parent, const char *key,
                       size_t key_len, int depth)
{
  struct json_scan_node scratch;
  struct json_scan_node *node = &scratch;
  int self = -1;
  int rc;

  if (depth > JSON_SCAN_MAX_DEPTH) {
    r->limit = 1;
    return VS_ERR_LIMIT;
  }
  if (depth <= JSON_SCAN_INDEX_DEPTH) {
    if (r->js->count >= JSON_SCAN_MAX_NODES) {
      r->limit = 1;
      return VS_ERR_LIMIT;
    }
    self = r->js->count++;
    node = &r->js->nodes[self];
  }
  memset(node, 0, sizeof(*node));
  node->parent = parent;
  node->key = key;
  node->key_len = key_len;
  skip_space(r);
  if (r->p >= r->end)
    return VS_ERR_INVAL;
  node->text = (const char *)r->p;
  switch (*r->p) {
  case '{':
  case '[':
    node->kind = *r->p == '{' ? JSON_SCAN_OBJECT : JSON_SCAN_ARRAY;
    rc = parse_container(r, self, *r->p == '{', depth);
    break;
  case '"':
    node->kind = JSON_SCAN_STRING;
    rc = scan_string(r, &node->text, &node->text_len);
    return rc;
  case 't':
    node->kind = JSON_SCAN_TRUE;
    rc = literal(r, "true");
    break;
  case 'f':
    node->kind = JSON_SCAN_FALSE;
    rc = literal(r, "false");
    break;
  case 'n':
    node->kind = JSON_SCAN_NULL;
    rc = literal(r, "null");
    break;
  default:
    rc = scan_number(r, node);
    break;
  }
  node->text_len = (size_t)((const char *)r->p - node->text);
  return rc;
}

int json_scan_parse(struct json_scan *js, const char *text, size_t len)
{
  struct reader r = {js, (const unsigned char *)text,
                     (const unsigned char *)text + len, 0};
  int rc;

  js->count = 0;
  js->error_at = 0;
  if (!text)
    return VS_ERR_INVAL;
  rc = parse_value(&r, -1, NULL, 0, 0);
  if (rc == VS_OK) {
    skip_space(&r);
    if (r.p != r.end)
      rc = VS_ERR_INVAL;
  }
  if (rc != VS_OK) {
    js->count = 0;
    js->error_at = (size_t)(r.p - (const unsigned char *)text);
    return r.limit ? VS_ERR_LIMIT : VS_ERR_INVAL;
  }
  return VS_OK;
}

/* Decodes the string text `s` (`len` bytes, already checked) into `out`. */
static size_t decode(const char *s, size_t len, char *out, size_t size)
{
  const unsigned char *p = (const unsigned char *)s;
  const unsigned char *end = p + len;
  size_t n = 0;

  while (p < end) {
    unsigned char utf8[4];
    size_t k = 0;
    unsigned cp;

    if (*p != '\\') {
      if (n + 1 < size)
        out[n] = (char)*p;
      n++;
      p++;
      continue;
    }
    p += 1 + read_escape(p + 1, end, &cp);
    if (cp < 0x80) {
      utf8[k++] = (unsigned char)cp;
    } else if (cp < 0x800) {
      utf8[k++] = (unsigned char)(0xC0 | cp >> 6);
      utf8[k++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      utf8[k++] = (unsigned char)(0xE0 | cp >> 12);
      utf8[k++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
      utf8[k++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
      utf8[k++] = (unsigned char)(0xF0 | cp >> 18);
      utf8[k++] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
      utf8[k++] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
      utf8[k++] = (unsigned char)(0x80 | (cp & 0x3F));
    }
    for (size_t i = 0; i < k; i++, n++)
      if (n + 1 < size)
        out[n] = (char)utf8[i];
  }
  if (size)
    out[n < size ? n : size - 1] = '\0';
  return n;
}

/* Member names are decoded into this much room to be compared. */
#define NAME_MAX_DECODED 128

/* Whether the member name of `n`, decoded, is `key` (`klen` bytes). */
static int name_is(const struct json_scan_node *n, const char *key,
                   size_t klen)
{
  char name[NAME_MAX_DECODED];

  if (!memchr(n->key, '\\', n->key_len))
    return n->key_len == klen && memcmp(n->key, key, klen) == 0;
  /* An escaped name, "\u0072isk" for "risk". */
  return klen < sizeof(name) &&
         decode(n->key, n->key_len, name, sizeof(name)) == klen &&
         memcmp(name, key, klen) == 0;
}

int json_scan_member(const struct json_scan *js, int object, const char *key)
{
  size_t klen = strlen(key);
  int found = -1;

  if (!js || object < 0 || object >= js->count ||
      js->nodes[object].kind != JSON_SCAN_OBJECT)
    return -1;
  for (int i = object + 1; i < js->count; i++)
    if (js->nodes[i].parent == object && name_is(&js->nodes[i], key, klen))
      found = i;
  return found;
}

/* Whether two member names decode to the same text. */
static int same_name(const struct json_scan_node *a,
                     const struct json_scan_node *b)
{
  char name[NAME_MAX_DECODED];
  size_t len;

  if (!memchr(b->key, '\\', b->key_len))
    return name_is(a, b->key, b->key_len);
  len = decode(b->key, b->key_len, name, sizeof(name));
  if (len >= sizeof(name)) /* too long to decode here: as written */
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
  return name_is(a, name, len);
}

int json_scan_duplicate(const struct json_scan *js)
{
  if (!js)
    return -1;
  for (int i = 1; i < js->count; i++) {
    const struct json_scan_node *n = &js->nodes[i];

    if (!n->key)
      continue;
    for (int j = n->parent + 1; j < i; j++)
      if (js->nodes[j].parent == n->parent && same_name(&js->nodes[j], n))
        return i;
  }
  return -1;
}

long json_scan_string(const struct json_scan *js, int node, char *out,
                      size_t size)
{
  const struct json_scan_node *n;

  if (!js || node < 0 || node >= js->count)
    return -1;
  n = &js->nodes[node];
  if (n->kind != JSON_SCAN_STRING)
    return -1;
  return (long)decode(n->text, n->text_len, out, size);
}
