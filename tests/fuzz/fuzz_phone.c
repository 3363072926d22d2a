/*
 * libFuzzer target for screen/phone.
 *
 * Each input is treated as one raw caller number and normalised with the
 * NANP default and with "44", and the invariants promised in phone.h are
 * checked; a violation traps so that libFuzzer records the input:
 *
 *  - the output is always NUL-terminated inside PHONE_BUF_SIZE bytes;
 *  - on PHONE_OK it is 8 to 15 digits and nothing else, otherwise empty;
 *  - normalising the output again gives PHONE_OK and the same digits.
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE
 *        tests/fuzz/fuzz_phone.c src/screen/phone.c
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/screen/phone.h"

/*
 * Inputs far past the 64-byte ceiling only exercise the early length test,
 * so they are cut here to keep the copy on the stack and the run fast.
 */
#define FUZZ_MAX_INPUT 256

static void check(const char *raw, const char *cc)
{
  /* One guard byte past the buffer catches a write beyond PHONE_BUF_SIZE. */
  char out[PHONE_BUF_SIZE + 1];
  char again[PHONE_BUF_SIZE + 1];
  enum phone_result r;
  size_t n;
  size_t i;

  memset(out, 'G', sizeof(out));
  r = phone_normalise(raw, cc, out);
  if (out[PHONE_BUF_SIZE] != 'G')
    __builtin_trap();
  n = strnlen(out, PHONE_BUF_SIZE);
  if (n >= PHONE_BUF_SIZE)
    __builtin_trap();
  if (r != PHONE_OK) {
    if (n != 0 || r > PHONE_TOO_LONG)
      __builtin_trap();
    return;
  }
  if (n < PHONE_MIN_DIGITS || n > PHONE_MAX_DIGITS)
    __builtin_trap();
  for (i = 0; i < n; i++)
    if (out[i] < '0' || out[i] > '9')
      __builtin_trap();

  memset(again, 'G', sizeof(again));
  if (phone_normalise(out, cc, again) != PHONE_OK)
    __builtin_trap();
  if (strcmp(out, again) != 0)
    __builtin_trap();
}

/* libFuzzer's entry point; declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char raw[FUZZ_MAX_INPUT + 1];

  if (size > FUZZ_MAX_INPUT)
    size = FUZZ_MAX_INPUT;
  if (size)
    memcpy(raw, data, size);
  raw[size] = '\0';
  check(raw, "1");
  check(raw, NULL);
  check(raw, "44");
  return 0;
}
