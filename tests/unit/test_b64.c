/* Base64: RFC 4648 section 10 vectors, the strict decoder's rejections,
 * the lenient decoder's skipping, and round trips against GLib. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "b64.h"

/* RFC 4648 10, plus the unpadded forms SASL clients send. */
static const struct {
    const char *plain;
    const char *b64;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    {"Username:", "VXNlcm5hbWU6"},
    {"Password:", "UGFzc3dvcmQ6"},
    {"\xff\xfe\xfd", "//79"},
    {"\xfb\xef", "++8="},
};

static void test_vectors(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(vectors); i++) {
        const char *plain = vectors[i].plain, *b64 = vectors[i].b64;
        size_t pn = strlen(plain), bn = strlen(b64);
        uint8_t out[64];
        char enc[64];

        g_test_message("vector %zu: \"%s\"", i, b64);
        g_assert_cmpint(mt_b64_decode(b64, bn, out), ==, (ssize_t)pn);
        g_assert_cmpmem(out, pn, plain, pn);

        g_assert_cmpuint(mt_b64_encode((const uint8_t *)plain, pn, enc), ==, bn);
        g_assert_cmpstr(enc, ==, b64);

        size_t bad = 99;
        g_assert_cmpuint(mt_b64_decode_lenient(b64, bn, out, &bad), ==, pn);
        g_assert_cmpmem(out, pn, plain, pn);
        g_assert_cmpuint(bad, ==, 0);
    }
}

/* Strict decoding: what decodes, and to what (NULL: must be rejected). */
static const struct {
    const char *in;
    const char *out;
} strict_rows[] = {
    {"Zg", "f"},                             /* padding optional at the end */
    {"Zm8", "fo"},                           /* ... */
    {"Zm9vYg", "foob"},                      /* ... */
    {"Zh==", "f"},                           /* non-zero trailing bits tolerated (RFC 4648 3.5) */
    {"Z", NULL},                             /* 6 bits are no byte */
    {"Zm9vY", NULL},                         /* nor are 6 more */
    {"Zg=", NULL},                           /* padding present but not a whole quantum */
    {"Zm8==", NULL},                         /* ... */
    {"Zg===", NULL},                         /* three '=' */
    {"=", NULL},                             /* "=" is the SASL empty response, not Base64 */
    {"==", NULL},       {"Zm=v", NULL},      /* '=' inside */
    {"Zg==Zg==", NULL},                      /* padding before the end */
    {"Zm9v\r\n", NULL},                      /* no line breaks */
    {"Zm 9v", NULL},                         /* no spaces */
    {" Zm9v", NULL},    {"Zm9v-_", NULL},    /* the URL-safe alphabet is not this one */
    {"@@@@", NULL},     {"Zm9vYmFy!", NULL}, /* invalid character in the tail */
};

static void test_strict(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(strict_rows); i++) {
        const char *in = strict_rows[i].in, *want = strict_rows[i].out;
        uint8_t out[64];
        ssize_t n = mt_b64_decode(in, strlen(in), out);

        g_test_message("strict %zu: \"%s\"", i, in);
        if (!want) {
            g_assert_cmpint(n, ==, -1);
        } else {
            g_assert_cmpint(n, ==, (ssize_t)strlen(want));
            g_assert_cmpmem(out, (size_t)n, want, strlen(want));
        }
    }
}

/* Every byte outside the alphabet, at every position of the first and
 * second quantum and of a 3-character tail, must fail the strict decoder:
 * checks each of the four lookup tables and the tail path. */
static void test_strict_every_byte(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned rejected = 0;

    for (unsigned c = 0; c < 256; c++) {
        bool valid = c != 0 && strchr(alphabet, (int)c) != NULL;
        for (size_t pos = 0; pos < 11; pos++) {
            char in[11];
            uint8_t out[MT_B64_DECODED_MAX(11)];
            memcpy(in, "QUJDREVGR0", 10); /* "ABCDEFG" unpadded, 10 chars */
            in[10] = 'A';
            in[pos] = (char)c;
            ssize_t n = mt_b64_decode(in, 11, out);
            if (valid) {
                g_assert_cmpint(n, ==, 8);
            } else {
                g_assert_cmpint(n, ==, -1);
                rejected++;
            }
        }
    }
    g_assert_cmpuint(rejected, ==, (256 - 64) * 11);
}

/* Lenient decoding: input, output, invalid characters counted. */
static const struct {
    const char *in;
    const char *out;
    size_t bad;
} lenient_rows[] = {
    {"Zm9v\r\nYmFy", "foobar", 0},
    {"Zm9vYmFy\r\n", "foobar", 0},
    {" Z m 9 v\tYm\nFy ", "foobar", 0},
    {"Zm9v!YmFy", "foobar", 1},
    {"Zm9v*Ym\x80"
     "Fy",
     "foobar", 2},
    {"Zg==Zm8=", "ffo", 0}, /* concatenated padded chunks */
    {"Zg==\r\n", "f", 0},
    {"Zm9vYg", "foob", 0}, /* unpadded end */
    {"Zm9vY", "foo", 1},   /* a lone trailing character is counted */
    {"!!!!", "", 4},
    {"", "", 0},
};

static void test_lenient(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(lenient_rows); i++) {
        const char *in = lenient_rows[i].in, *want = lenient_rows[i].out;
        uint8_t out[64];
        size_t bad = 99;
        size_t n = mt_b64_decode_lenient(in, strlen(in), out, &bad);

        g_test_message("lenient %zu: \"%s\"", i, in);
        g_assert_cmpmem(out, n, want, strlen(want));
        g_assert_cmpuint(bad, ==, lenient_rows[i].bad);
    }
    /* bad may be NULL */
    uint8_t out[8];
    g_assert_cmpuint(mt_b64_decode_lenient("Zm9v!", 5, out, NULL), ==, 3);
}

/* Encode/decode round trips of every length to 300 against GLib's codec,
 * with 76-character line breaks for the lenient decoder. */
static void test_roundtrip(void)
{
    GRand *r = g_rand_new_with_seed(4648);

    for (size_t len = 0; len <= 300; len++) {
        uint8_t *src = g_malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            src[i] = (uint8_t)g_rand_int_range(r, 0, 256);

        char *enc = g_malloc((len + 2) / 3 * 4 + 1);
        size_t en = mt_b64_encode(src, len, enc);
        char *genc = g_base64_encode(src, len);
        g_assert_cmpstr(enc, ==, genc);
        g_assert_cmpuint(en, ==, strlen(genc));

        uint8_t *dec = g_malloc(MT_B64_DECODED_MAX(en));
        g_assert_cmpint(mt_b64_decode(enc, en, dec), ==, (ssize_t)len);
        g_assert_cmpmem(dec, len, src, len);

        GString *wrapped = g_string_new(NULL);
        for (size_t i = 0; i < en; i += 76) {
            g_string_append_len(wrapped, enc + i, (gssize)MIN(76, en - i));
            g_string_append(wrapped, "\r\n");
        }
        uint8_t *ldec = g_malloc(MT_B64_DECODED_MAX(wrapped->len));
        size_t bad = 99;
        g_assert_cmpuint(mt_b64_decode_lenient(wrapped->str, wrapped->len, ldec, &bad), ==, len);
        g_assert_cmpmem(ldec, len, src, len);
        g_assert_cmpuint(bad, ==, 0);

        g_free(ldec);
        g_string_free(wrapped, TRUE);
        g_free(dec);
        g_free(genc);
        g_free(enc);
        g_free(src);
    }
    g_rand_free(r);
}

/* The AVX2 block decoder (where the CPU has it) against the table decoder
 * alone, on bodies shaped like MIME's (76-character lines, and others,
 * CRLF or LF) and on random mixes of the alphabet, line breaks, spaces,
 * padding and junk:
 * the same bytes and the same count of bad characters.  Every byte value
 * is also put at every position of a clean block once. */
static void decode_both(const char *in, size_t n)
{
    uint8_t *a = g_malloc(MT_B64_DECODED_MAX(n)), *b = g_malloc(MT_B64_DECODED_MAX(n));
    size_t bad_a = 0, bad_b = 0;
    mt_b64_simd = true;
    size_t na = mt_b64_decode_lenient(in, n, a, &bad_a);
    mt_b64_simd = false;
    size_t nb = mt_b64_decode_lenient(in, n, b, &bad_b);
    mt_b64_simd = true;
    g_assert_cmpmem(a, na, b, nb);
    g_assert_cmpuint(bad_a, ==, bad_b);
    g_free(a);
    g_free(b);
}

static void test_lenient_simd(void)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char other[] = "\r\n =\t*-.\x80\xff\x00_:";
    GRand *r = g_rand_new_with_seed(7);
    char buf[2048];
    for (int t = 0; t < 20000; t++) {
        size_t n = (size_t)g_rand_int_range(r, 0, (gint32)sizeof buf);
        bool lines = t % 2 == 0, crlf = t % 4 == 0;
        /* mostly MIME's 76; also other whole quanta, and lines that cut
         * a quantum, which the block decoder must leave to the tables */
        static const size_t line_lens[] = { 76, 76, 76, 64, 72, 60, 4, 8, 32, 36, 57, 33, 100 };
        size_t ll = line_lens[g_rand_int_range(r, 0, G_N_ELEMENTS(line_lens))];
        size_t period = ll + (crlf ? 2 : 1);
        int junk = g_rand_int_range(r, 0, 4); /* 0: none; else about 1 in 50^junk */
        for (size_t i = 0; i < n; i++) {
            if (lines && i % period >= ll)
                buf[i] = (crlf && i % period == ll) ? '\r' : '\n';
            else if (junk && g_rand_int_range(r, 0, junk == 1 ? 50 : junk == 2 ? 500 : 5000) == 0)
                buf[i] = other[g_rand_int_range(r, 0, (gint32)sizeof other - 1)];
            else
                buf[i] = alpha[g_rand_int_range(r, 0, 64)];
        }
        decode_both(buf, n);
    }
    /* each byte value at each position of a clean 44-character run */
    for (int c = 0; c < 256; c++)
        for (size_t pos = 0; pos < 44; pos++) {
            for (size_t i = 0; i < 44; i++)
                buf[i] = alpha[(i * 7) % 64];
            buf[pos] = (char)c;
            decode_both(buf, 44);
        }
    g_rand_free(r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/b64/vectors", test_vectors);
    g_test_add_func("/b64/strict", test_strict);
    g_test_add_func("/b64/strict_every_byte", test_strict_every_byte);
    g_test_add_func("/b64/lenient", test_lenient);
    g_test_add_func("/b64/roundtrip", test_roundtrip);
    g_test_add_func("/b64/lenient-simd", test_lenient_simd);
    return g_test_run();
}
