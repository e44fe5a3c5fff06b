/* Base64 (RFC 4648 section 4) decoding and encoding.
 *
 * Decoding is on the hot path (SASL steps, and every base64 MIME body), so
 * it works a quantum of four characters at a time through four 256-entry
 * tables that hold each character's 6 bits already shifted into place: one
 * OR of four loads gives the 24 decoded bits.  An invalid character sets
 * B64_BAD, which survives the ORs, so one test per quantum (or per run of
 * quanta) finds it.  The tables are built by the preprocessor: no run-time
 * initialisation, nothing shared to race on. */
#include "b64.h"

/* 6-bit value of an ASCII character, -1 if it is not in the alphabet. */
#define B64_VAL(c)                                                                                 \
    ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                        \
     : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                   \
     : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                   \
     : (c) == '+'               ? 62                                                               \
     : (c) == '/'               ? 63                                                               \
                                : -1)

/* Above the 24 data bits: kept by the ORs, never a data bit. */
#define B64_BAD 0x01000000u

#define B64_D(c, shift) (B64_VAL(c) < 0 ? B64_BAD : (uint32_t)B64_VAL(c) << (shift))
#define B64_D0(c) B64_D(c, 18)
#define B64_D1(c) B64_D(c, 12)
#define B64_D2(c) B64_D(c, 6)
#define B64_D3(c) B64_D(c, 0)

#define B64_ROW(M, b)                                                                              \
    M((b) + 0), M((b) + 1), M((b) + 2), M((b) + 3), M((b) + 4), M((b) + 5), M((b) + 6),            \
        M((b) + 7), M((b) + 8), M((b) + 9), M((b) + 10), M((b) + 11), M((b) + 12), M((b) + 13),    \
        M((b) + 14), M((b) + 15)
#define B64_TABLE(M)                                                                               \
    {                                                                                              \
        B64_ROW(M, 0), B64_ROW(M, 16), B64_ROW(M, 32), B64_ROW(M, 48), B64_ROW(M, 64),             \
            B64_ROW(M, 80), B64_ROW(M, 96), B64_ROW(M, 112), B64_ROW(M, 128), B64_ROW(M, 144),     \
            B64_ROW(M, 160), B64_ROW(M, 176), B64_ROW(M, 192), B64_ROW(M, 208), B64_ROW(M, 224),   \
            B64_ROW(M, 240)                                                                        \
    }

static const uint32_t b64_d0[256] = B64_TABLE(B64_D0);
static const uint32_t b64_d1[256] = B64_TABLE(B64_D1);
static const uint32_t b64_d2[256] = B64_TABLE(B64_D2);
static const uint32_t b64_d3[256] = B64_TABLE(B64_D3);

/* Character classes for the lenient decoder: 0..63 data, or one of these. */
#define B64_C_SPACE 0x40u /* skipped silently */
#define B64_C_PAD 0x41u   /* '=': ends the current quantum */
#define B64_C_BAD 0x80u   /* counted, skipped */
#define B64_CLASS(c)                                                                               \
    (B64_VAL(c) >= 0 ? (uint8_t)B64_VAL(c)                                                         \
     : (c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n' || (c) == '\v' || (c) == '\f'       \
         ? B64_C_SPACE                                                                             \
     : (c) == '=' ? B64_C_PAD                                                                      \
                  : B64_C_BAD)
static const uint8_t b64_class[256] = B64_TABLE(B64_CLASS);

static const char b64_alphabet[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static inline uint32_t b64_quad(const unsigned char *p)
{
    return b64_d0[p[0]] | b64_d1[p[1]] | b64_d2[p[2]] | b64_d3[p[3]];
}

static inline void b64_put3(uint8_t *o, uint32_t x)
{
    o[0] = (uint8_t)(x >> 16);
    o[1] = (uint8_t)(x >> 8);
    o[2] = (uint8_t)x;
}

ssize_t mt_b64_decode(const char *in, size_t n, uint8_t *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t m = n;
    unsigned pad = 0;

    /* Up to two '=' at the very end; when present the text is a whole
     * number of quanta.  A '=' anywhere else fails the table lookup. */
    while (pad < 2 && m > 0 && p[m - 1] == '=') {
        m--;
        pad++;
    }
    if (pad > 0 && n % 4 != 0)
        return -1;
    if (m % 4 == 1)
        return -1; /* 6 bits cannot make a byte */

    size_t quads = m / 4;
    uint8_t *o = out;
    uint32_t acc = 0;

    /* Two quanta per turn; the invalid-character test is deferred to the
     * end of the run (the output is discarded if it fails). */
    for (; quads >= 2; quads -= 2, p += 8, o += 6) {
        uint32_t x = b64_quad(p);
        uint32_t y = b64_quad(p + 4);
        acc |= x | y;
        b64_put3(o, x);
        b64_put3(o + 3, y);
    }
    if (quads) {
        uint32_t x = b64_quad(p);
        acc |= x;
        b64_put3(o, x);
        p += 4;
        o += 3;
    }

    /* The final 2 or 3 characters give 1 or 2 bytes.  Leftover low bits
     * that are not zero are tolerated (RFC 4648 3.5 lets decoders accept
     * them, and some SASL clients produce them). */
    switch (m % 4) {
    case 2: {
        uint32_t x = b64_d0[p[0]] | b64_d1[p[1]];
        acc |= x;
        o[0] = (uint8_t)(x >> 16);
        o += 1;
        break;
    }
    case 3: {
        uint32_t x = b64_d0[p[0]] | b64_d1[p[1]] | b64_d2[p[2]];
        acc |= x;
        o[0] = (uint8_t)(x >> 16);
        o[1] = (uint8_t)(x >> 8);
        o += 2;
        break;
    }
    default:
        break;
    }
    if (acc & B64_BAD)
        return -1;
    return (ssize_t)(o - out);
}

size_t mt_b64_decode_lenient(const char *in, size_t n, uint8_t *out, size_t *bad)
{
    const unsigned char *p = (const unsigned char *)in;
    const unsigned char *end = p + n;
    uint8_t *o = out;
    size_t nbad = 0;
    uint32_t bits = 0; /* the current quantum, 6 bits per character */
    unsigned have = 0; /* characters in it */

    while (p < end) {
        /* Fast path: a whole clean quantum at a quantum boundary, which is
         * nearly every quantum of a MIME body (76-character lines). */
        if (have == 0) {
            while ((size_t)(end - p) >= 4) {
                uint32_t x = b64_quad(p);
                if (x & B64_BAD)
                    break;
                b64_put3(o, x);
                o += 3;
                p += 4;
            }
            if (p == end)
                break;
        }
        uint8_t c = b64_class[*p++];
        if (c < 64) {
            bits = bits << 6 | c;
            if (++have == 4) {
                b64_put3(o, bits);
                o += 3;
                bits = 0;
                have = 0;
            }
        } else if (c == B64_C_PAD) {
            /* Flush what the quantum holds, so that concatenated padded
             * chunks ("Zg==Zm8=") decode as each one would. */
            if (have == 2) {
                *o++ = (uint8_t)(bits >> 4);
            } else if (have == 3) {
                *o++ = (uint8_t)(bits >> 10);
                *o++ = (uint8_t)(bits >> 2);
            } else if (have == 1) {
                nbad++;
            }
            bits = 0;
            have = 0;
        } else if (c == B64_C_BAD) {
            nbad++;
        }
    }
    /* Unpadded end of input. */
    if (have == 2) {
        *o++ = (uint8_t)(bits >> 4);
    } else if (have == 3) {
        *o++ = (uint8_t)(bits >> 10);
        *o++ = (uint8_t)(bits >> 2);
    } else if (have == 1) {
        nbad++;
    }
    if (bad)
        *bad = nbad;
    return (size_t)(o - out);
}

size_t mt_b64_encode(const uint8_t *in, size_t n, char *out)
{
    char *o = out;
    size_t i = 0;

    for (; n - i >= 3; i += 3) {
        uint32_t x = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        o[0] = b64_alphabet[x >> 18];
        o[1] = b64_alphabet[(x >> 12) & 63];
        o[2] = b64_alphabet[(x >> 6) & 63];
        o[3] = b64_alphabet[x & 63];
        o += 4;
    }
    if (n - i == 1) {
        uint32_t x = (uint32_t)in[i] << 16;
        o[0] = b64_alphabet[x >> 18];
        o[1] = b64_alphabet[(x >> 12) & 63];
        o[2] = '=';
        o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        uint32_t x = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        o[0] = b64_alphabet[x >> 18];
        o[1] = b64_alphabet[(x >> 12) & 63];
        o[2] = b64_alphabet[(x >> 6) & 63];
        o[3] = '=';
        o += 4;
    }
    *o = '\0';
    return (size_t)(o - out);
}
