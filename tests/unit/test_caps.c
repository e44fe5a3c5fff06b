/* The capability-list builder (dissect/session.c, mt_caps_*): the words
 * added come back in order, each cut at its first NUL as g_strndup cuts
 * it, in one allocation that a single g_free releases (the ASan round
 * reports a leak or a bad free otherwise), whatever the buffer had to grow
 * through.  And the engine's pool of emptied strings (mt_sess_string). */
#include <string.h>

#include <glib.h>

#include "session_int.h"

struct word {
    const char *p;
    size_t n;
};

#define W(s) { s, sizeof(s) - 1 }

static const struct {
    const char *name;
    struct word in[6];
    size_t nin;
    const char *want[6]; /* NULL-terminated */
} cases[] = {
    { "nothing added: an empty list", { { NULL, 0 } }, 0, { NULL } },
    { "one word", { W("IMAP4rev1") }, 1, { "IMAP4rev1", NULL } },
    { "words in order", { W("SIZE 33554432"), W("8BITMIME"), W("STARTTLS") }, 3,
      { "SIZE 33554432", "8BITMIME", "STARTTLS", NULL } },
    { "an empty word is kept", { W("A"), W(""), W("B") }, 3, { "A", "", "B", NULL } },
    { "cut at the first NUL", { W("AUTH\0PLAIN"), W("IDLE") }, 2, { "AUTH", "IDLE", NULL } },
    { "a NUL first: an empty word", { W("\0X"), W("Y") }, 2, { "", "Y", NULL } },
    { "only n bytes are read", { { "LITERAL+MORE", 8 } }, 1, { "LITERAL+", NULL } },
};

static void check_list(char **v, const char *const *want, const char *name)
{
    size_t i = 0;
    for (; want[i]; i++) {
        if (!v[i])
            g_error("%s: %zu words, want more", name, i);
        if (strcmp(v[i], want[i]) != 0)
            g_error("%s: word %zu is \"%s\", want \"%s\"", name, i, v[i], want[i]);
    }
    if (v[i])
        g_error("%s: more than %zu words", name, i);
}

static void test_table(void)
{
    for (size_t t = 0; t < G_N_ELEMENTS(cases); t++) {
        struct mt_caps_builder b = { 0 };
        for (size_t i = 0; i < cases[t].nin; i++)
            mt_caps_add(&b, cases[t].in[i].p, cases[t].in[i].n);
        char **v = mt_caps_finish(&b);
        check_list(v, cases[t].want, cases[t].name);
        g_assert_null(b.w); /* emptied for the next list */
        g_assert_cmpuint(b.n, ==, 0);
        g_free(v);
    }
}

/* Many words, past several doublings of the 256-byte start, and the same
 * builder used again after finish and after discard. */
static void test_growth_and_reuse(void)
{
    struct mt_caps_builder b = { 0 };
    for (int round = 0; round < 3; round++) {
        size_t count = round == 0 ? 500 : round == 1 ? 1 : 77;
        for (size_t i = 0; i < count; i++) {
            char w[32];
            int n = g_snprintf(w, sizeof w, "CAP-%zu-%d", i, round);
            mt_caps_add(&b, w, (size_t)n);
        }
        if (round == 1) { /* dropped: nothing of it may reach the next list */
            mt_caps_discard(&b);
            continue;
        }
        char **v = mt_caps_finish(&b);
        for (size_t i = 0; i < count; i++) {
            char w[32];
            g_snprintf(w, sizeof w, "CAP-%zu-%d", i, round);
            g_assert_nonnull(v[i]);
            g_assert_cmpstr(v[i], ==, w);
        }
        g_assert_null(v[count]);
        g_free(v);
    }
    mt_caps_discard(&b); /* nothing held: a no-op */
    g_assert_null(b.w);
}

static void no_sink(void *ud, struct mt_event *ev)
{
    (void)ud;
    (void)ev;
}

/* A string given back comes out again, empty; one with more room than is
 * kept, or past MT_CAP_STRING_POOL, is freed; the engine frees what it
 * holds (the ASan round reports a leak otherwise). */
static void test_string_pool(void)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    struct mt_engine *e = mt_engine_new(&lim, no_sink, NULL);
    struct mt_sess s = { .eng = e };
    GString *a = mt_sess_string(&s);
    g_assert_cmpuint(a->len, ==, 0);
    g_string_append(a, "A001");
    mt_sess_string_give(&s, a);
    g_assert_cmpuint(e->nstrings, ==, 1);
    GString *b = mt_sess_string(&s);
    g_assert_true(b == a);
    g_assert_cmpuint(b->len, ==, 0);
    g_assert_cmpstr(b->str, ==, "");
    g_assert_cmpuint(e->nstrings, ==, 0);
    g_string_set_size(b, 4000); /* grown past what is kept */
    mt_sess_string_give(&s, b);
    g_assert_cmpuint(e->nstrings, ==, 0);
    for (unsigned i = 0; i < MT_CAP_STRING_POOL + 5; i++)
        mt_sess_string_give(&s, g_string_new("x"));
    g_assert_cmpuint(e->nstrings, ==, MT_CAP_STRING_POOL);
    mt_engine_free(e);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/caps/table", test_table);
    g_test_add_func("/caps/growth and reuse", test_growth_and_reuse);
    g_test_add_func("/session/string pool", test_string_pool);
    return g_test_run();
}
