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

/* 32 characters at a time with AVX2, where the CPU has it: MIME bodies
 * are mostly runs of clean characters (76 to a line), and the table
 * decoder below costs about five instructions a character.  A block with
 * any character outside the alphabet (a line break, padding, junk) is left
 * to the table decoder, which handles everything as before.  mt_b64_simd
 * (tests) turns the block decoder off, to compare the two. */
bool mt_b64_simd = true;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* Decodes clean 32-character blocks from p while at least 44 characters
 * remain (so the 32-byte store stays inside out's MT_B64_DECODED_MAX,
 * since what is written never passes 3/4 of what is consumed), and the
 * line breaks that follow whole quanta; returns how many characters it
 * consumed, *o advanced by 3/4 of the alphabet characters among them. */
__attribute__((target("avx2"))) static size_t b64_blocks_avx2(const unsigned char *p, size_t n,
                                                             uint8_t **o)
{
    /* Classification by nibbles (lo & hi != 0: not in the alphabet) and
     * the offset to add by high nibble ('/' gets its own); the tables of
     * the well-known pshufb method. */
    const __m256i lut_lo = _mm256_setr_epi8(
        0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B,
        0x1A, 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B,
        0x1B, 0x1A);
    const __m256i lut_hi = _mm256_setr_epi8(
        0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        0x10, 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
        0x10, 0x10);
    const __m256i lut_roll = _mm256_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0,
                                              0, 0, 0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0,
                                              0, 0, 0, 0);
    const __m256i mask_2f = _mm256_set1_epi8(0x2f);
    const __m256i pack1 = _mm256_set1_epi32(0x01400140);
    const __m256i pack2 = _mm256_set1_epi32(0x00011000);
    const __m256i shuf = _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1, 2,
                                          1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
    const __m256i perm = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    size_t i = 0;
    uint8_t *w = *o;
    while (n - i >= 44) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(p + i));
        __m256i hi_n = _mm256_and_si256(_mm256_srli_epi32(in, 4), mask_2f);
        __m256i lo_n = _mm256_and_si256(in, mask_2f);
        __m256i lo = _mm256_shuffle_epi8(lut_lo, lo_n);
        __m256i hi = _mm256_shuffle_epi8(lut_hi, hi_n);
        unsigned k = 32; /* clean characters at the front of the block */
        if (!_mm256_testz_si256(lo, hi)) {
            __m256i bad = _mm256_cmpeq_epi8(_mm256_and_si256(lo, hi), _mm256_setzero_si256());
            k = (unsigned)__builtin_ctz(~(unsigned)_mm256_movemask_epi8(bad));
            if (k % 4)
                break; /* a quantum cut by something: the table decoder */
        }
        __m256i eq_2f = _mm256_cmpeq_epi8(in, mask_2f);
        __m256i roll = _mm256_shuffle_epi8(lut_roll, _mm256_add_epi8(eq_2f, hi_n));
        __m256i v = _mm256_add_epi8(in, roll);                  /* 6-bit values */
        __m256i v16 = _mm256_maddubs_epi16(v, pack1);           /* 12 bits a pair */
        __m256i v32 = _mm256_madd_epi16(v16, pack2);            /* 24 bits a quad */
        __m256i b = _mm256_shuffle_epi8(v32, shuf);             /* 12 bytes a lane */
        b = _mm256_permutevar8x32_epi32(b, perm);               /* 24 bytes */
        _mm256_storeu_si256((__m256i *)w, b); /* bytes past 3k/4 are overwritten later */
        w += k / 4 * 3;
        i += k;
        if (k == 32)
            continue;
        /* A line break after whole quanta (a MIME body's 76-character
         * lines) is skipped here, as the table decoder would skip it;
         * anything else (padding, junk) is left to the table decoder. */
        if (p[i] == '\r' && p[i + 1] == '\n')
            i += 2;
        else if (p[i] == '\n')
            i += 1;
        else
            break;
    }
    *o = w;
    return i;
}

#endif

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
#if defined(__x86_64__) && defined(__GNUC__)
            if (mt_b64_simd && (size_t)(end - p) >= 44 && __builtin_cpu_supports("avx2"))
                p += b64_blocks_avx2(p, (size_t)(end - p), &o);
#endif
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
