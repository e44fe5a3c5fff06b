/* cli/heap.c: with mimalloc, the segment serving a thread's small
 * allocations is marked for transparent huge pages once the thread calls
 * mt_heap_huge_pages (not before: mimalloc does not do it by default);
 * with MIMALLOC_LARGE_OS_PAGES set, or without mimalloc, nothing is
 * marked.  After mt_heap_setup, a new thread's first segment is one
 * mapping, committed whole, not pieces committed as it grows.  Built with
 * the command's malloc (tests/CMakeLists.txt). */
#include <stdlib.h>

#include <glib.h>

#include "heap.h"
#include "smaps.h"

#ifdef MAILTAP_MIMALLOC
static gpointer opted_out(gpointer unused)
{
    void *p = calloc(1, 64);
    bool other = !mapping_huge(p); /* a segment of this thread's, not the first's */
    mt_heap_huge_pages();
    bool huge = mapping_huge(p);
    (void)unused;
    free(p);
    return GINT_TO_POINTER(other ? (huge ? 2 : 1) : 0);
}
#endif

#ifdef MAILTAP_MIMALLOC
/* The mapping around a fresh allocation of a new thread, as that thread
 * sees it once it has asked for huge pages. */
static gpointer segment_span(gpointer unused)
{
    (void)unused;
    void *p = calloc(1, 64);
    mt_heap_huge_pages();
    uintptr_t lo = 0, hi = 0;
    g_assert_true(mapping_bounds(p, &lo, &hi));
    free(p);
    return GSIZE_TO_POINTER(hi - lo);
}
#endif

/* In a process of its own (g_test_trap_subprocess): a thread that ends
 * leaves its segment to the next one, and mt_heap_setup gives the main
 * thread huge pages, which /heap/huge-pages must not find. */
static void test_heap_setup(void)
{
#ifdef MAILTAP_MIMALLOC
    if (g_getenv("MIMALLOC_EAGER_COMMIT_DELAY")) {
        g_test_skip("MIMALLOC_EAGER_COMMIT_DELAY is set");
        return;
    }
#endif
    if (!g_test_subprocess()) {
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
        g_test_trap_assert_passed();
        return;
    }
#ifdef MAILTAP_MIMALLOC
    mt_heap_setup();
    GThread *t = g_thread_new("setup", segment_span, NULL);
    gsize span = GPOINTER_TO_SIZE(g_thread_join(t));
    /* committed in pieces, the mapping is the first piece: under 32 MiB */
    g_assert_cmpuint(span, >=, (gsize)32 << 20);
#else
    mt_heap_setup(); /* nothing to do, and nothing breaks */
#endif
}

static void test_heap_huge(void)
{
    if (g_getenv("MIMALLOC_LARGE_OS_PAGES")) {
        /* mimalloc read it when it started: its segments are as it says */
        g_test_skip("MIMALLOC_LARGE_OS_PAGES is set");
        return;
    }
    void *p = calloc(1, 64);
    g_assert_nonnull(p);
    g_assert_false(mapping_huge(p));
    mt_heap_huge_pages();
#ifdef MAILTAP_MIMALLOC
    g_assert_true(mapping_huge(p));
    /* told not to: another thread's segment stays as it is */
    g_setenv("MIMALLOC_LARGE_OS_PAGES", "0", TRUE);
    GThread *t = g_thread_new("heap", opted_out, NULL);
    int r = GPOINTER_TO_INT(g_thread_join(t));
    if (r == 0)
        g_test_message("the second thread's allocation was in the first segment: not checked");
    else
        g_assert_cmpint(r, ==, 1);
#else
    g_assert_false(mapping_huge(p));
#endif
    free(p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/heap/setup", test_heap_setup);
    g_test_add_func("/heap/huge-pages", test_heap_huge);
    return g_test_run();
}
