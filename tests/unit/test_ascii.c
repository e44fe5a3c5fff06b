/* The protocol-word comparisons (dissect/ascii.h) against GLib's
 * g_ascii_strncasecmp, which the dissectors called before: the same answer
 * on every row, and on every pair of short byte strings over an alphabet
 * that has both cases, a NUL and bytes past ASCII.  And the decimal sizes
 * the protocols give (mt_ascii_u64). */
#include <string.h>

#include <glib.h>

#include "ascii.h"

struct row {
    const char *p;
    size_t n;
    const char *s;
    bool eq, prefix;
};

#define R(lit, s, eq, prefix) { lit, sizeof(lit) - 1, s, eq, prefix }

static const struct row rows[] = {
    R("USER", "USER", true, true),
    R("user", "USER", true, true),
    R("uSeR", "user", true, true),
    R("USE", "USER", false, false),          /* shorter */
    R("USERS", "USER", false, true),         /* longer: a prefix, not the word */
    R("", "", true, true),
    R("", "A", false, false),
    R("A", "", false, true),                 /* everything starts with "" */
    R("US\0R", "USER", false, false),        /* a NUL is a byte like any other */
    R("QUIT\0", "QUIT", false, true),
    R("\xc0", "\xe0", false, false),         /* only A-Z fold */
    R("[capability ", "[CAPABILITY ", true, true),
    R("@", "`", false, false),               /* the bytes around A-Z and a-z */
    R("[", "{", false, false),
    R("Z", "z", true, true),
};

static void test_rows(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        const struct row *r = &rows[i];
        if (mt_eq_ci(r->p, r->n, r->s) != r->eq)
            g_error("row %zu: mt_eq_ci(\"%s\", %zu, \"%s\") != %d", i, r->p, r->n, r->s, r->eq);
        if (mt_prefix_ci(r->p, r->n, r->s) != r->prefix)
            g_error("row %zu: mt_prefix_ci(\"%s\", %zu, \"%s\") != %d", i, r->p, r->n, r->s,
                    r->prefix);
    }
}

/* What the dissectors wrote before: n == strlen(s) && g_ascii_strncasecmp
 * (the word), n >= strlen(s) && g_ascii_strncasecmp (the prefix). */
static void test_against_glib(void)
{
    static const char alpha[] = { 'a', 'A', 'z', 'Z', 'q', 'Q', '@', '[', '`', '{', '\0', '\xc1' };
    GRand *r = g_rand_new_with_seed(2047);
    for (int t = 0; t < 200000; t++) {
        char p[6], s[6];
        size_t n = (size_t)g_rand_int_range(r, 0, 6);
        size_t k = (size_t)g_rand_int_range(r, 0, 6);
        for (size_t i = 0; i < n; i++)
            p[i] = alpha[g_rand_int_range(r, 0, sizeof alpha)];
        for (size_t i = 0; i < k; i++)
            s[i] = alpha[g_rand_int_range(r, 0, sizeof alpha - 2)] /* no NUL, s is a C string */;
        s[k] = '\0';
        if (g_rand_boolean(r)) /* often a case variant of p itself */
            for (size_t i = 0; i < MIN(n, k); i++)
                s[i] = p[i] && p[i] != '\xc1' ? (char)(g_rand_boolean(r) ? g_ascii_toupper(p[i])
                                                                           : g_ascii_tolower(p[i]))
                                              : 'q';
        bool eq = n == k && g_ascii_strncasecmp(p, s, k) == 0;
        bool pre = n >= k && g_ascii_strncasecmp(p, s, k) == 0;
        g_assert_cmpint(mt_eq_ci(p, n, s), ==, eq);
        g_assert_cmpint(mt_prefix_ci(p, n, s), ==, pre);
    }
    g_rand_free(r);
}

/* mt_ascii_u64: every digit consumed, the value, and the overflow past
 * UINT64_MAX, exactly at its edge. */
static const struct {
    const char *s;
    size_t digits;
    uint64_t v; /* when not overflowing */
    bool overflow;
} numbers[] = {
    { "", 0, 0, false },
    { "x1", 0, 0, false },
    { "0", 1, 0, false },
    { "5309661", 7, 5309661, false },
    { "300000 octets", 6, 300000, false },
    { "007}", 3, 7, false },
    { "18446744073709551615", 20, UINT64_MAX, false },
    { "18446744073709551616", 20, 0, true },
    { "99999999999999999999999", 23, 0, true },
    { "99999999999999999999999x5", 23, 0, true },
};

static void test_u64(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(numbers); i++) {
        uint64_t v = 1;
        bool overflow = !numbers[i].overflow;
        const char *s = numbers[i].s;
        g_assert_cmpuint(mt_ascii_u64(s, strlen(s), &v, &overflow), ==, numbers[i].digits);
        g_assert_cmpint(overflow, ==, numbers[i].overflow);
        if (!overflow)
            g_assert_cmpuint(v, ==, numbers[i].v);
    }
    /* n bounds the digits */
    uint64_t v;
    bool overflow;
    g_assert_cmpuint(mt_ascii_u64("12345", 3, &v, &overflow), ==, 3);
    g_assert_cmpuint(v, ==, 123);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/ascii/rows", test_rows);
    g_test_add_func("/ascii/against glib", test_against_glib);
    g_test_add_func("/ascii/u64", test_u64);
    return g_test_run();
}
