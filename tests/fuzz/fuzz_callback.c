/*
 * libFuzzer target for the callback signature check: the first line of
 * the input is taken as the Authorization header, the second as
 * X-TS-Authorization, the rest as the body. Any bytes must give one of the
 * documented results, with a reason, and never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/telesign/tsauth.h"
#include "../../src/util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Cuts the next line off `*p` (of `*left` bytes) into a new string. */
static char *take_line(const uint8_t **p, size_t *left)
{
  const uint8_t *nl = memchr(*p, '\n', *left);
  size_t n = nl ? (size_t)(nl - *p) : *left;
  char *s = malloc(n + 1);

  if (!s)
    return NULL;
  memcpy(s, *p, n);
  s[n] = '\0';
  *p += nl ? n + 1 : n;
  *left -= nl ? n + 1 : n;
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* Keyed once, as the server does; each input checks against it. */
  static struct tsauth_key *key;
  const uint8_t *p = data;
  size_t left = size;
  char *auth = take_line(&p, &left);
  char *xts = take_line(&p, &left);
  char why[96];
  int rc;

  if (!key &&
      tsauth_key_create("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &key))
    __builtin_trap();
  if (auth && xts) {
    why[0] = '\0';
    rc = tsauth_callback_verify("0A1B2C3D-4E5F-6A7B-8C9D-0E1F2A3B4C5D", key,
                                auth[0] ? auth : NULL, xts[0] ? xts : NULL, p,
                                left, why, sizeof(why));
    if (rc != VS_OK && rc != VS_ERR_NOTFOUND && rc != VS_ERR_PROTO &&
        rc != VS_ERR_INVAL)
      __builtin_trap();
    if (rc != VS_OK && !why[0])
      __builtin_trap();
  }
  free(auth);
  free(xts);
  return 0;
}
