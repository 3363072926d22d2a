/*
 * A validating, allocation-free JSON reader for small documents read on
 * the hot path (the Score API's answer to every lookup).
 *
 * jansson builds a tree of allocated nodes, reading the text a byte at a
 * time through a stream callback: a 238-byte Score answer cost about
 * 54,000 instructions, 13% of a whole cache-miss call (bench/README.md).
 * This reader checks the whole text against RFC 8259 as strictly as
 * jansson's defaults do (UTF-8, escapes, no \u0000, integers that fit in
 * 64 bits, nothing after the value) and records where each value of the
 * first JSON_SCAN_INDEX_DEPTH levels is, in an array the caller owns;
 * strings are decoded only when asked for.
 *
 * Duplicate member names are allowed; a lookup finds the last one, which
 * is the value jansson keeps.
 */
#ifndef VS_UTIL_JSON_SCAN_H
#define VS_UTIL_JSON_SCAN_H

#include <stddef.h>

/* Values indexed at most, and how deep they are indexed (the root is
 * depth 0, its members depth 1, theirs depth 2): deeper values are
 * checked but not recorded. */
#define JSON_SCAN_MAX_NODES   256
#define JSON_SCAN_INDEX_DEPTH 2
/* Values deeper than this (the root is depth 0) are refused. */
#define JSON_SCAN_MAX_DEPTH 64

enum json_scan_kind {
  JSON_SCAN_NULL,
  JSON_SCAN_FALSE,
  JSON_SCAN_TRUE,
  JSON_SCAN_INTEGER,
  JSON_SCAN_REAL,
  JSON_SCAN_STRING,
  JSON_SCAN_OBJECT,
  JSON_SCAN_ARRAY
};

/* One value: its kind, its text, and the member name it has, if any. */
struct json_scan_node {
  enum json_scan_kind kind;
  int parent;       /* index of the enclosing value; -1 for the root */
  const char *key;  /* member name as written, between the quotes */
  size_t key_len;   /* 0 and key NULL outside objects */
  const char *text; /* the value's text; a string's without its quotes */
  size_t text_len;
  long long integer; /* JSON_SCAN_INTEGER */
  double real;       /* JSON_SCAN_REAL */
};

/* The index of one document. Points into the text, which must outlive it. */
struct json_scan {
  struct json_scan_node nodes[JSON_SCAN_MAX_NODES];
  int count;       /* nodes[0] is the root */
  size_t error_at; /* after a failed parse: the offset where it stopped */
};

/*
 * Reads `text` (`len` bytes, need not end in a NUL). Returns VS_OK,
 * VS_ERR_INVAL for text that is not one valid JSON value, or
 * VS_ERR_LIMIT for valid-looking text with more values in the indexed
 * levels than JSON_SCAN_MAX_NODES (or nested past JSON_SCAN_MAX_DEPTH).
 */
int json_scan_parse(struct json_scan *js, const char *text, size_t len);

/* The last member named `key` of the object at `object`, or -1. */
int json_scan_member(const struct json_scan *js, int object, const char *key);

/*
 * The first member whose name repeats an earlier one of the same object,
 * or -1. Only objects whose members are indexed (above
 * JSON_SCAN_INDEX_DEPTH) are checked.
 */
int json_scan_duplicate(const struct json_scan *js);

/*
 * Writes the decoded string at `node` into `out` (`size` bytes, cut to
 * fit, always terminated). Returns its full decoded length, or -1 if
 * `node` is not a string.
 */
long json_scan_string(const struct json_scan *js, int node, char *out,
                      size_t size);

#endif
