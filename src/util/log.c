/* Logging (see log.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"

#define LOG_TEXT_MAX 1024
#define LOG_LINE_MAX 2048

/* Set by the loop thread (at start and on reload), read by every thread
 * that logs: atomics, so that a line written during a reload sees either
 * setting, never a torn one. */
static _Atomic int log_max = LOG_INFO;
static _Atomic int log_json;
static _Atomic int log_mask = 1;
static _Atomic int log_journal;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const int syslog_priority[] = {3, 4, 6, 7}; /* err warning info debug */

/* Keys whose values are a caller's (or a department's) phone number. */
static const char *const number_keys[] = {"caller", "number",  "from",
                                          "to",     "dialled", "entry"};

void log_set_level(enum log_level level)
{
  log_max = level;
}

void log_set_json(int on)
{
  log_json = on;
}

void log_set_mask_numbers(int on)
{
  log_mask = on;
}

void log_set_journal(int on)
{
  log_journal = on;
}

int log_level_parse(const char *s)
{
  for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
    if (strcmp(s, level_names[i]) == 0)
      return (int)i;
  return -1;
}

static int is_number_key(const char *key, size_t n)
{
  for (size_t i = 0; i < sizeof(number_keys) / sizeof(number_keys[0]); i++)
    if (strlen(number_keys[i]) == n && memcmp(number_keys[i], key, n) == 0)
      return 1;
  return 0;
}

/* Every digit of `v` but the last four becomes '*'. */
static void mask_digits(char *v, size_t n)
{
  size_t digits = 0;

  for (size_t i = 0; i < n; i++)
    digits += v[i] >= '0' && v[i] <= '9';
  for (size_t i = 0; i < n && digits > 4; i++)
    if (v[i] >= '0' && v[i] <= '9') {
      v[i] = '*';
      digits--;
    }
}

/* Appends `v` (n bytes) as a JSON string body, escaping what JSON needs. */
static void json_text(struct buf *b, const char *v, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)v[i];

    if (ch == '"' || ch == '\\')
      buf_printf(b, "\\%c", ch);
    else if (ch < 0x20)
      buf_printf(b, "\\u%04x", ch);
    else
      buf_append(b, &v[i], 1);
  }
}

/* Appends `v` as a logfmt value: quoted when it has spaces or quotes. */
static void logfmt_value(struct buf *b, const char *v, size_t n)
{
  int quote =
      !n || memchr(v, ' ', n) || memchr(v, '"', n) || memchr(v, '=', n);

  if (!quote) {
    buf_append(b, v, n);
    return;
  }
  buf_append(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    if (v[i] == '"' || v[i] == '\\')
      buf_append(b, "\\", 1);
    buf_append(b, &v[i], 1);
  }
  buf_append(b, "\"", 1);
}

static void field(struct buf *b, const char *key, size_t klen, const char *v,
                  size_t vlen)
{
  if (log_json) {
    buf_append(b, ",\"", 2);
    json_text(b, key, klen);
    buf_append(b, "\":\"", 3);
    json_text(b, v, vlen);
    buf_append(b, "\"", 1);
  } else {
    buf_append(b, " ", 1);
    buf_append(b, key, klen);
    buf_append(b, "=", 1);
    logfmt_value(b, v, vlen);
  }
}

/*
 * Splits the caller's "k=v k2=\"quoted value\"" text into pairs and writes
 * each; a word without '=' is written as a value of the key "detail".
 */
static void fields(struct buf *b, char *p)
{
  while (*p) {
    char *key = p;
    char *eq;
    char *v;
    char *w;
    size_t klen;

    while (*p == ' ')
      p++;
    if (!*p)
      break;
    key = p;
    while (*p && *p != '=' && *p != ' ')
      p++;
    if (*p != '=') {
      field(b, "detail", 6, key, (size_t)(p - key));
      continue;
    }
    eq = p++;
    klen = (size_t)(eq - key);
    v = w = p;
    if (*p == '"') {
      /* A quoted value: unescape \" and \\ in place. */
      for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
          p++;
        *w++ = *p;
      }
      if (*p == '"')
        p++;
    } else {
      while (*p && *p != ' ')
        p++;
      w = p;
    }
    if (log_mask && is_number_key(key, klen))
      mask_digits(v, (size_t)(w - v));
    field(b, key, klen, v, (size_t)(w - v));
  }
}

/*
 * Formats the whole line into one buffer and writes it with a single call,
 * so lines from the loop and the store worker never interleave. A line
 * longer than the buffer is cut, which is better than a second write.
 */
void log_write(enum log_level level, const char *fmt, ...)
{
  char text[LOG_TEXT_MAX];
  char ts_text[64];
  struct timespec ts;
  struct buf b;
  struct tm tm;
  char *rest;
  va_list ap;

  if ((int)level > log_max)
    return;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  rest = strchr(text, '|');
  if (rest)
    *rest++ = '\0';
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(ts_text, sizeof(ts_text), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, ts.tv_nsec / 1000000);
  buf_init(&b, LOG_LINE_MAX);
  /* journald reads a leading <N> as the line's syslog priority. */
  if (log_journal)
    buf_printf(&b, "<%d>", syslog_priority[level]);
  if (log_json) {
    buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts_text,
               level_names[level]);
    json_text(&b, text, strlen(text));
    buf_append(&b, "\"", 1);
  } else {
    buf_printf(&b, "ts=%s level=%s msg=", ts_text, level_names[level]);
    buf_append(&b, "\"", 1);
    buf_append(&b, text, strlen(text));
    buf_append(&b, "\"", 1);
  }
  if (rest)
    fields(&b, rest);
  if (log_json)
    buf_append(&b, "}", 1);
  buf_append(&b, "\n", 1);
  if (b.data) {
    if (b.data[b.len - 1] != '\n') /* cut at the ceiling */
      b.data[b.len - 1] = '\n';
    fputs(b.data, stderr);
  }
  buf_free(&b);
}
