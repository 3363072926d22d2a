#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static enum log_level log_max = LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
  log_max = level;
}

int log_level_parse(const char *s)
{
  for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
    if (strcmp(s, level_names[i]) == 0)
      return (int)i;
  return -1;
}

/*
 * Formats the whole line into one buffer and writes it with a single call,
 * so lines from the loop and the store worker never interleave. Lines longer
 * than the buffer are cut, which is better than a second write.
 */
void log_write(enum log_level level, const char *fmt, ...)
{
  char text[1024];
  char line[1400];
  struct timespec ts;
  struct tm tm;
  char *fields;
  va_list ap;
  int n;

  if (level > log_max)
    return;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  fields = strchr(text, '|');
  if (fields)
    *fields++ = '\0';
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = snprintf(line, sizeof(line),
               "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
               tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
               tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, level_names[level],
               text);
  if (n < 0)
    return;
  if ((size_t)n >= sizeof(line) - 2)
    n = (int)sizeof(line) - 2;
  if (fields && *fields)
    n += snprintf(line + n, sizeof(line) - (size_t)n - 1, " %s", fields);
  if ((size_t)n >= sizeof(line) - 1)
    n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  line[n] = '\0';
  fputs(line, stderr);
}
