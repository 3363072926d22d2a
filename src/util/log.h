/*
 * Logging to stderr, one line per message, in logfmt:
 *
 *   ts=2026-12-01T08:00:00.123Z level=info msg="listening" addr=0.0.0.0:8080
 *
 * The message is a printf format whose result is written as the msg value;
 * callers add key=value pairs themselves in the text after a `|`:
 * log_info("call decided|ref=%s decision=%s", ...) becomes
 * msg="call decided" ref=... decision=.... Secrets (API keys, signatures)
 * must never be passed here; the modules that hold them only ever log that
 * they are set.
 *
 * The level is process-wide and set once at start, before threads exist;
 * writing is safe from any thread (one fputs per line).
 */
#ifndef VS_UTIL_LOG_H
#define VS_UTIL_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the most verbose level that is written (default LOG_INFO). */
void log_set_level(enum log_level level);

/* Parses "error", "warn", "info" or "debug"; returns -1 if unknown. */
int log_level_parse(const char *s);

void log_write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
