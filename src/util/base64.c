#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "base64.h"
#include "err.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/*
 * Returns the 6-bit value of `c`, or -1 for a byte outside the alphabet.
 * Range tests instead of a 256-entry table keep the code free of locale
 * and character-set assumptions beyond ASCII, which is what the wire uses.
 */
static int decode_char(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int base64_encode(const void *in, size_t n, char *out, size_t outsize)
{
  const unsigned char *p = in;
  size_t need;
  size_t i;
  size_t o = 0;

  if (!out || !outsize)
    return VS_ERR_LIMIT;
  out[0] = '\0';
  /* Refuse sizes whose encoded length would overflow size_t or int. */
  if (n > ((size_t)INT_MAX - 4) / 4 * 3)
    return VS_ERR_LIMIT;
  if (n && !in)
    return VS_ERR_INVAL;
  need = BASE64_ENCODED_SIZE(n);
  if (outsize < need)
    return VS_ERR_LIMIT;

  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];

    out[o++] = alphabet[(v >> 18) & 0x3f];
    out[o++] = alphabet[(v >> 12) & 0x3f];
    out[o++] = alphabet[(v >> 6) & 0x3f];
    out[o++] = alphabet[v & 0x3f];
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16;

    if (i + 1 < n)
      v |= (uint32_t)p[i + 1] << 8;
    out[o++] = alphabet[(v >> 18) & 0x3f];
    out[o++] = alphabet[(v >> 12) & 0x3f];
    out[o++] = (i + 1 < n) ? alphabet[(v >> 6) & 0x3f] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
  return (int)o;
}

int base64_decode_lenient(const char *in, size_t inlen, unsigned char *out,
                          size_t outsize, size_t *outlen)
{
  unsigned int quad = 0; /* characters seen of the current 4-char quantum */
  unsigned int pads = 0; /* '=' seen since the last data character */
  unsigned int left = 0; /* bits carried over to the next output byte */
  size_t o = 0;
  size_t i;
  int rc;

  if (!outlen)
    return VS_ERR_INVAL;
  *outlen = 0;
  if (inlen && !in)
    return VS_ERR_INVAL;

  for (i = 0; i < inlen; i++) {
    unsigned char c = (unsigned char)in[i];
    int v;

    if (c == '=') {
      /*
       * Python only counts padding once two data characters of the quantum
       * are present, and stops at the '=' that completes the quantum;
       * anything after it, even more data, is ignored.
       */
      if (quad >= 2 && quad + ++pads >= 4)
        goto done;
      continue;
    }
    v = decode_char(c);
    if (v < 0)
      continue;
    pads = 0;
    switch (quad) {
    case 0:
      left = (unsigned int)v;
      quad = 1;
      break;
    case 1:
      if (o >= outsize) {
        rc = VS_ERR_LIMIT;
        goto fail;
      }
      out[o++] = (unsigned char)((left << 2) | ((unsigned int)v >> 4));
      left = (unsigned int)v & 0x0f;
      quad = 2;
      break;
    case 2:
      if (o >= outsize) {
        rc = VS_ERR_LIMIT;
        goto fail;
      }
      out[o++] = (unsigned char)((left << 4) | ((unsigned int)v >> 2));
      left = (unsigned int)v & 0x03;
      quad = 3;
      break;
    default:
      if (o >= outsize) {
        rc = VS_ERR_LIMIT;
        goto fail;
      }
      out[o++] = (unsigned char)((left << 6) | (unsigned int)v);
      left = 0;
      quad = 0;
      break;
    }
  }
  /*
   * Running out of input part-way through a quantum is an error in Python
   * ("Incorrect padding", or a lone trailing character), so it is here too.
   */
  if (quad != 0) {
    rc = VS_ERR_INVAL;
    goto fail;
  }

done:
  *outlen = o;
  return VS_OK;

fail:
  *outlen = 0;
  return rc;
}
