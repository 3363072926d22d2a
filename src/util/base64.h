/*
 * Base64 (RFC 4648, standard alphabet) for the TeleSign authentication code.
 *
 * Encoding is strict and always padded. Decoding is deliberately lenient in
 * exactly the way Python's base64.b64decode(s) (validate=False) is, because
 * TeleSign's SDKs decode the API key that way and their published test keys
 * contain '-' characters that a strict decoder would reject: every byte
 * outside [A-Za-z0-9+/=] is skipped, and the padding rules are Python's (see
 * base64_decode_lenient below). Reproducing Python byte for byte is what lets
 * the SDK test vectors double as our own.
 *
 * Nothing here allocates or keeps state; all buffers belong to the caller.
 */
#ifndef VS_UTIL_BASE64_H
#define VS_UTIL_BASE64_H

#include <stddef.h>

/*
 * Bytes needed to encode `n` input bytes, including the NUL terminator. The
 * argument is evaluated once; it must be small enough not to overflow
 * size_t, which every size this program handles is.
 */
#define BASE64_ENCODED_SIZE(n) ((((size_t)(n) + 2) / 3) * 4 + 1)

/*
 * An upper bound on the bytes base64_decode_lenient can produce from `n`
 * input characters, so that callers can size the output buffer.
 */
#define BASE64_DECODED_MAX(n) (((size_t)(n) / 4) * 3 + 2)

/*
 * Encodes the `n` bytes at `in` (which may be NULL when `n` is 0) into the
 * caller's `out` of `outsize` bytes, padded with '=' and NUL-terminated.
 * Returns the number of characters written, not counting the NUL, or
 * VS_ERR_LIMIT when `out` is smaller than BASE64_ENCODED_SIZE(n) or the
 * result would not fit an int, or VS_ERR_INVAL when `in` is NULL with a
 * non-zero `n`; on error `out` holds an empty string if `outsize` is at
 * least 1.
 */
int base64_encode(const void *in, size_t n, char *out, size_t outsize);

/*
 * Decodes `inlen` characters at `in` (not necessarily NUL-terminated; NUL
 * bytes are skipped like any other stray byte) into the caller's `out` of
 * `outsize` bytes and stores the number of bytes produced in `*outlen`.
 *
 * The rules are those of CPython's binascii.a2b_base64 in non-strict mode:
 * bytes outside the alphabet are ignored; an '=' only counts once at least
 * two characters of the current quantum have been seen, and when it
 * completes the quantum ("xx==" or "xxx=") decoding stops and the rest of
 * the input is ignored; a stray '=' elsewhere is skipped. Input that ends
 * part-way through a quantum ("missing padding") is rejected, as Python
 * rejects it.
 *
 * Returns 0, VS_ERR_INVAL for input Python would reject, or VS_ERR_LIMIT
 * when `out` is too small (BASE64_DECODED_MAX(inlen) is always enough). On
 * error `*outlen` is 0 and the contents of `out` are unspecified, so callers
 * holding secrets should wipe it either way.
 */
int base64_decode_lenient(const char *in, size_t inlen, unsigned char *out,
                          size_t outsize, size_t *outlen);

#endif
