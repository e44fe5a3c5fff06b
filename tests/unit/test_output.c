/* Pure functions of the output layer: terminal escaping, JSON strings,
 * time format, redaction, and safe extraction names. */
#include <string.h>

#include <glib.h>

#include "output.h"

static const struct {
    const char *in;
    size_t n;
    const char *out;
} text_rows[] = {
    { "EHLO x", 6, "EHLO x" },
    { "a\x1b[31mred", 9, "a\\x1b[31mred" },            /* ANSI escape */
    { "tab\there", 8, "tab\\there" },
    { "nul\0x", 5, "nul\\x00x" },
    { "bare\rcr", 7, "bare\\rcr" },
    { "\xe4\xb8\xad\xe6\x96\x87", 6, "\xe4\xb8\xad\xe6\x96\x87" }, /* UTF-8 kept */
    { "bad\xff\xfe", 5, "bad\\xff\\xfe" },              /* invalid UTF-8 */
    { "\xc2\x9b" "2J", 4, "\\u{009b}2J" },             /* C1 CSI */
    { "rtl\xe2\x80\xae", 6, "rtl\\u{202e}" },           /* bidi override */
    { "back\\slash", 10, "back\\slash" },              /* IMAP flags: \Seen */
    { "\xe4\xb8", 2, "\\xe4\\xb8" },                    /* cut character */
};

static void test_text(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(text_rows); i++) {
        GString *g = g_string_new(NULL);
        mt_esc_text(g, text_rows[i].in, text_rows[i].n);
        g_assert_cmpstr(g->str, ==, text_rows[i].out);
        g_string_free(g, TRUE);
    }
}

static const struct {
    const char *in;
    size_t n;
    const char *out;
    gboolean clean;
} json_rows[] = {
    { "plain", 5, "\"plain\"", TRUE },
    { "q\"b\\", 4, "\"q\\\"b\\\\\"", TRUE },
    { "c\x01\n", 3, "\"c\\u0001\\n\"", TRUE },
    { "\xe4\xb8\xad", 3, "\"\xe4\xb8\xad\"", TRUE },
    { "x\xffy", 3, "\"x\xef\xbf\xbdy\"", FALSE },
    { "n\0", 2, "\"n\\u0000\"", TRUE },
    { "nel\xc2\x85x", 6, "\"nel\\u0085x\"", TRUE },       /* C1: Python's splitlines splits on it */
};

static void test_json(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(json_rows); i++) {
        GString *g = g_string_new(NULL);
        gboolean clean = mt_esc_json(g, json_rows[i].in, json_rows[i].n);
        g_assert_cmpstr(g->str, ==, json_rows[i].out);
        g_assert_cmpint(clean, ==, json_rows[i].clean);
        g_assert_true(g_utf8_validate(g->str, (gssize)g->len, NULL));
        g_string_free(g, TRUE);
    }
}

static void test_time(void)
{
    GString *g = g_string_new(NULL);
    mt_fmt_time(g, 1700000000123456LL);
    g_assert_cmpstr(g->str, ==, "2023-11-14T22:13:20.123456Z");
    g_string_free(g, TRUE);
}

static void test_redact(void)
{
    char *r = mt_redact_note("authzid=\"\" user=\"al\" password=\"s\\\"ec\" token=\"t\"");
    g_assert_cmpstr(r, ==, "authzid=\"\" user=\"al\" password=\"****\" token=\"****\"");
    g_free(r);
}

static const struct {
    const char *in;
    const char *out;
} name_rows[] = {
    { "report.pdf", "report.pdf" },
    { "../../etc/passwd", "passwd" },
    { "/abs/path/x.txt", "x.txt" },
    { "..\\..\\win.ini", "win.ini" },
    { "..", "unnamed" },
    { ".hidden", "hidden" },
    { "", "unnamed" },
    { "a\x1b[2Jb", "a_[2Jb" },
    { "tab\tname", "tab_name" },
    { "CON", "_CON" },
    { "nul.txt", "_nul.txt" },
    { "what?.txt", "what_.txt" },
    { "\xe6\x8a\xa5\xe5\x91\x8a.docx", "\xe6\x8a\xa5\xe5\x91\x8a.docx" },
    { "bad\xff.bin", "bad_.bin" },
    { "evil\xe2\x80\xaegpj.exe", "evil_gpj.exe" },
};

static void test_names(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(name_rows); i++) {
        char *s = mt_safe_filename(name_rows[i].in);
        g_assert_cmpstr(s, ==, name_rows[i].out);
        g_free(s);
    }
    /* 10,000 characters are capped, at a character boundary */
    GString *big = g_string_new(NULL);
    for (int i = 0; i < 5000; i++)
        g_string_append(big, "\xe4\xb8\xad");
    char *s = mt_safe_filename(big->str);
    g_assert_cmpuint(strlen(s), <=, 200);
    g_assert_true(g_utf8_validate(s, -1, NULL));
    g_free(s);
    g_string_free(big, TRUE);
    s = mt_safe_filename(NULL);
    g_assert_cmpstr(s, ==, "unnamed");
    g_free(s);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/output/text-escape", test_text);
    g_test_add_func("/output/json-escape", test_json);
    g_test_add_func("/output/time", test_time);
    g_test_add_func("/output/redact", test_redact);
    g_test_add_func("/output/safe-names", test_names);
    return g_test_run();
}
