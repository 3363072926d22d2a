#include <stddef.h>
#include <string.h>

#include "phone.h"

/*
 * Room for every digit of a PHONE_MAX_INPUT-byte input plus a three-digit
 * country code, so that no rule below needs to check for space before the
 * final length test.
 */
#define DIGITS_MAX (PHONE_MAX_INPUT + 4)

static const char *const anonymous_words[] = {"anonymous",   "restricted",
                                              "private",     "unknown",
                                              "unavailable", "withheld"};

const char *phone_result_name(enum phone_result r)
{
  switch (r) {
  case PHONE_OK:
    return "ok";
  case PHONE_EMPTY:
    return "empty";
  case PHONE_ANONYMOUS:
    return "anonymous";
  case PHONE_INVALID:
    return "invalid";
  case PHONE_TOO_SHORT:
    return "too_short";
  case PHONE_TOO_LONG:
    return "too_long";
  }
  return "unknown_result";
}

size_t phone_international_prefix(const char *d, size_t n, int nanp)
{
  if (nanp && n >= 3 && memcmp(d, "011", 3) == 0)
    return 3;
  if (n >= 2 && memcmp(d, "00", 2) == 0)
    return 2;
  return 0;
}

/* The C locale's white space, spelled out so no locale can widen it. */
int phone_is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

int phone_is_digit(char c)
{
  return c >= '0' && c <= '9';
}

/* Separators people and switches put inside numbers. */
int phone_is_separator(char c)
{
  return c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')';
}

static char ascii_lower(char c)
{
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Compares `n` bytes at `s` with the lower-case word `w`, ignoring case. */
static int equal_word(const char *s, size_t n, const char *w)
{
  size_t i;

  if (strlen(w) != n)
    return 0;
  for (i = 0; i < n; i++)
    if (ascii_lower(s[i]) != w[i])
      return 0;
  return 1;
}

int phone_country_code_valid(const char *cc)
{
  size_t i;

  if (!cc || cc[0] < '1' || cc[0] > '9')
    return 0;
  for (i = 1; cc[i]; i++)
    if (i >= 3 || !phone_is_digit(cc[i]))
      return 0;
  return 1;
}

enum phone_result phone_normalise(const char *raw, const char *default_country,
                                  char out[PHONE_BUF_SIZE])
{
  const char *cc = default_country ? default_country : "1";
  char d[DIGITS_MAX];
  size_t len;
  size_t start;
  size_t end;
  size_t n = 0;
  size_t skip = 0;
  size_t i;
  int nanp;
  int plus = 0;
  int international = 0;

  if (!out)
    return PHONE_INVALID;
  out[0] = '\0';
  if (!phone_country_code_valid(cc))
    return PHONE_INVALID;
  nanp = strcmp(cc, "1") == 0;
  if (!raw)
    return PHONE_EMPTY;
  /* strnlen keeps a huge or unterminated-looking input from being read. */
  len = strnlen(raw, PHONE_MAX_INPUT + 1);
  if (len > PHONE_MAX_INPUT)
    return PHONE_TOO_LONG;

  start = 0;
  end = len;
  while (start < end && phone_is_space(raw[start]))
    start++;
  while (end > start && phone_is_space(raw[end - 1]))
    end--;
  if (start == end)
    return PHONE_EMPTY;
  for (i = 0; i < sizeof(anonymous_words) / sizeof(anonymous_words[0]); i++)
    if (equal_word(raw + start, end - start, anonymous_words[i]))
      return PHONE_ANONYMOUS;

  for (i = start; i < end; i++) {
    char c = raw[i];

    if (phone_is_digit(c))
      d[n++] = c;
    else if (c == '+')
      plus |= (n == 0);
    else if (!phone_is_separator(c))
      return PHONE_INVALID;
  }
  if (!n)
    return PHONE_EMPTY;

  if (!plus) {
    skip = phone_international_prefix(d, n, nanp);
    if (skip) {
      memmove(d, d + skip, n - skip);
      n -= skip;
      international = 1;
    }
  }

  if (!plus && !international) {
    if (nanp && n == 10 && d[0] >= '2' && d[0] <= '9') {
      memmove(d + 1, d, n);
      d[0] = '1';
      n++;
    } else if (!nanp && n >= 2 && d[0] == '0' && d[1] != '0') {
      size_t cl = strlen(cc);

      /* cl <= 3 and n <= PHONE_MAX_INPUT, so this stays inside d. */
      memmove(d + cl, d + 1, n - 1);
      memcpy(d, cc, cl);
      n = n - 1 + cl;
    }
  }

  if (n < PHONE_MIN_DIGITS)
    return PHONE_TOO_SHORT;
  if (n > PHONE_MAX_DIGITS)
    return PHONE_TOO_LONG;
  /*
   * No country code starts with 0, and a leading 0 would also be taken as
   * an international or trunk prefix when the result is normalised again.
   */
  if (d[0] == '0')
    return PHONE_INVALID;
  /*
   * As bare digits this would be read back as a national NANP number and
   * gain a "1", so the canonical form cannot represent it.
   */
  if (nanp && (plus || international) && n == 10 && d[0] >= '2')
    return PHONE_INVALID;
  /*
   * Country code 1 is the NANP, whatever the default: its area code and
   * exchange never start with 0 or 1 (those are operator and trunk
   * prefixes there), so such a number is a typo or a spoofed caller ID,
   * and a Score lookup or list entry for it would be wasted.
   */
  if (n == 11 && d[0] == '1' && (d[1] < '2' || d[4] < '2'))
    return PHONE_INVALID;

  memcpy(out, d, n);
  out[n] = '\0';
  return PHONE_OK;
}
