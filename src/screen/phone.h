/*
 * Caller-number normaliser: turns whatever arrives in an event's `from`
 * field (or a number typed into configuration) into the digits-only E.164
 * form that TeleSign Score wants, e.g. "15555550123", or says why it
 * cannot, so that the caller can be routed to the "unscorable" policy.
 *
 * The output is canonical: feeding a normalised number back in, with the
 * same default country, returns PHONE_OK and the same digits. Because the
 * digits-only form has no '+', anything that would be read differently the
 * second time is rejected instead (see phone_normalise).
 *
 * Nothing here allocates or keeps state; buffers belong to the caller.
 */
#ifndef VS_SCREEN_PHONE_H
#define VS_SCREEN_PHONE_H

/* E.164 allows at most 15 digits, country code included. */
#define PHONE_MAX_DIGITS 15

/* Fewer digits than this cannot be a complete international number. */
#define PHONE_MIN_DIGITS 8

/*
 * Output buffer size: 15 digits, the NUL and one spare byte. A 16-byte
 * buffer is exactly enough in theory, and was the one that overflowed in a
 * fuzz trial, so the spare byte stays.
 */
#define PHONE_BUF_SIZE 17

/* Inputs longer than this are rejected without being scanned. */
#define PHONE_MAX_INPUT 64

enum phone_result {
  PHONE_OK = 0,
  PHONE_EMPTY,     /* NULL, blank, or no digits at all */
  PHONE_ANONYMOUS, /* a withheld-number marker such as "anonymous" */
  PHONE_INVALID,   /* a character or shape that cannot be a number */
  PHONE_TOO_SHORT, /* fewer than PHONE_MIN_DIGITS digits */
  PHONE_TOO_LONG   /* more than PHONE_MAX_DIGITS, or a huge input */
};

/*
 * Returns a static, never-freed short name of `r` for decision reasons and
 * logs: "ok", "empty", "anonymous", "invalid", "too_short", "too_long".
 */
const char *phone_result_name(enum phone_result r);

/*
 * Returns 1 when `cc` is usable as a default country code (one to three
 * digits, not starting with 0), else 0, so that configuration can reject a
 * bad value up front instead of every call failing later.
 */
int phone_country_code_valid(const char *cc);

/*
 * Normalises the NUL-terminated `raw` (borrowed, may be NULL) into the
 * caller's `out`, which is always NUL-terminated and left empty unless the
 * result is PHONE_OK. `default_country` (borrowed) is the country code
 * assumed for national numbers; NULL means "1" (NANP). The rules, in order:
 *
 *  1. NULL -> PHONE_EMPTY; more than PHONE_MAX_INPUT bytes -> PHONE_TOO_LONG.
 *  2. Surrounding white space is trimmed; nothing left -> PHONE_EMPTY. The
 *     words anonymous, restricted, private, unknown, unavailable and
 *     withheld (any case) -> PHONE_ANONYMOUS.
 *  3. '+', space, tab, '-', '.', '(' and ')' are dropped; any other
 *     non-digit -> PHONE_INVALID; no digit at all -> PHONE_EMPTY. The
 *     number counts as "written with '+'" when a '+' precedes its first
 *     digit.
 *  4. Without a '+', a leading international prefix is dropped: "011"
 *     (only with the NANP default, since elsewhere 011... is a national
 *     number such as Sheffield's 0114) or "00".
 *  5. Without a '+' or international prefix: with the NANP default, ten
 *     digits starting 2-9 get a "1" in front; with another default, a
 *     single leading trunk '0' is replaced by the country code
 *     ("020 7946 0000" with "44" -> "442079460000").
 *  6. Fewer than PHONE_MIN_DIGITS digits -> PHONE_TOO_SHORT; more than
 *     PHONE_MAX_DIGITS -> PHONE_TOO_LONG.
 *  7. A result starting with '0' (no country code does) -> PHONE_INVALID;
 *     so is, with the NANP default, a ten-digit result starting 2-9 that
 *     came from a '+' or international prefix: as bare digits it would be
 *     read back as a US number, and guessing either way could score the
 *     wrong subscriber.
 *  8. An eleven-digit result starting with country code 1 (NANP, with any
 *     default) whose area code or exchange (the digits after the "1" and
 *     after "1NPA") starts with 0 or 1 -> PHONE_INVALID, as no NANP number
 *     does: "+1 111 555 1234" and "1 212 155 1234" are refused.
 *
 * An invalid `default_country` (see phone_country_code_valid) gives
 * PHONE_INVALID for every input.
 */
enum phone_result phone_normalise(const char *raw, const char *default_country,
                                  char out[PHONE_BUF_SIZE]);

/*
 * The character classes the normaliser reads numbers with, shared so that
 * list entries (screen/lists.c) are read exactly as callers are: C-locale
 * white space, ASCII digits, and the separators dropped from inside a
 * number (space, tab, '-', '.', '(' and ')').
 */
int phone_is_space(char c);
/*
 * The length of the international dialling prefix the `n` digits at `d`
 * start with: 3 for "011" (NANP's, only when `nanp`), 2 for "00", else 0.
 */
size_t phone_international_prefix(const char *d, size_t n, int nanp);
int phone_is_digit(char c);
int phone_is_separator(char c);

#endif
