/*
 * Logging to stderr, one line per message, in logfmt:
 *
 *   ts=2026-12-01T08:00:00.123Z level=info msg="listening" addr=0.0.0.0:8080
 *
 * or, with log.format: json, one JSON object per line with the same keys.
 * The message is a printf format whose result is written as the msg value;
 * callers add key=value pairs themselves in the text after a `|`:
 * log_info("call decided|ref=%s decision=%s", ...) becomes
 * msg="call decided" ref=... decision=.... A value with spaces is written
 * in double quotes, with \" and \\ for quotes and backslashes.
 *
 * Phone numbers: with masking on (log.mask_numbers, the default), the
 * values of the keys that carry a caller's number (caller, number, from,
 * to, dialled, entry) keep only their last four digits, the others
 * written as '*'. Secrets (API keys, signatures) must never be passed
 * here; the modules that hold them only ever log that they are set.
 *
 * The settings are process-wide, set by the loop thread at start and on a
 * reload; writing is safe from any thread (one fputs per line).
 */
#ifndef VS_UTIL_LOG_H
#define VS_UTIL_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the most verbose level that is written (default LOG_INFO). */
void log_set_level(enum log_level level);

/* JSON lines instead of logfmt (log.format: json). */
void log_set_json(int on);

/* Masks phone numbers in the keys listed above (log.mask_numbers). */
void log_set_mask_numbers(int on);

/*
 * Starts each line with its syslog priority, "<3>" to "<7>", which
 * journald strips and keeps as the priority (so journalctl -p works):
 * for when stderr is the journal (JOURNAL_STREAM is set).
 */
void log_set_journal(int on);

/* Parses "error", "warn", "info" or "debug"; returns -1 if unknown. */
int log_level_parse(const char *s);

void log_write(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_DEBUG, __VA_ARGS__)

#endif
