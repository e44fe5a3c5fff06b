/* mt_grow_cap (dissect/grow.h): the doubling rule shared by the framer, the
 * reply lines, the message buffer and the IMAP tokenizer. */
#include <glib.h>
#include <stdint.h>

#include "grow.h"

static void test_table(void)
{
    static const struct {
        size_t cap, first, need, max, want;
    } t[] = {
        { 0, 64, 1, SIZE_MAX, 64 },          /* empty: the first size */
        { 0, 64, 64, SIZE_MAX, 64 },         /* exactly fits */
        { 0, 64, 65, SIZE_MAX, 128 },        /* one past: doubled */
        { 0, 256, 5000, SIZE_MAX, 8192 },    /* doubled several times */
        { 128, 64, 129, SIZE_MAX, 256 },     /* grows from what it has, not from first */
        { 128, 64, 100, SIZE_MAX, 128 },     /* already enough: unchanged */
        { 0, 256, 300, 400, 400 },           /* doubling would pass the cap: the cap */
        { 256, 256, 1000, 1000, 1000 },      /* the cap exactly */
        { 0, 256, 2000, 1000, 1000 },        /* need past the cap: the cap (callers cut first) */
        { 0, 64, 0, SIZE_MAX, 64 },          /* nothing needed: still the first size */
        { SIZE_MAX / 2 + 1, 64, SIZE_MAX - 3, SIZE_MAX, SIZE_MAX - 3 }, /* no wrap */
        { 3, 64, SIZE_MAX / 2 + 7, SIZE_MAX, (SIZE_MAX / 4 + 1) * 3 }, /* no wrap from small: 3 << 62 */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        size_t got = mt_grow_cap(t[i].cap, t[i].first, t[i].need, t[i].max);
        if (got != t[i].want)
            g_error("row %zu: mt_grow_cap(%zu, %zu, %zu, %zu) = %zu, want %zu", i, t[i].cap,
                    t[i].first, t[i].need, t[i].max, got, t[i].want);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/grow/table", test_table);
    return g_test_run();
}
