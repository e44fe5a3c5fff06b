#ifndef MT_B64_H
#define MT_B64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes needed to decode n characters of Base64. */
#define MT_B64_DECODED_MAX(n) (((n) / 4u + 1u) * 3u)

/* Strict RFC 4648 decoding as SASL uses it: no whitespace, padding
 * optional only at the very end.  Returns the decoded length, or -1 if
 * the input is not Base64.  out must hold MT_B64_DECODED_MAX(n) bytes. */
ssize_t mt_b64_decode(const char *in, size_t n, uint8_t *out);

/* Lenient decoding for bodies: skips whitespace and CR/LF; counts other
 * invalid characters in *bad (may be NULL) and skips them too. */
size_t mt_b64_decode_lenient(const char *in, size_t n, uint8_t *out, size_t *bad);

/* Tests only: false makes mt_b64_decode_lenient use its table decoder
 * alone (no AVX2 blocks), so that the two can be compared. */
extern bool mt_b64_simd;

/* Encodes n bytes; out must hold ((n + 2) / 3) * 4 + 1 bytes; NUL-terminated. */
size_t mt_b64_encode(const uint8_t *in, size_t n, char *out);

#endif
