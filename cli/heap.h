/* The command's heap in transparent huge pages, where mimalloc is its
 * malloc (CMakeLists.txt: MAILTAP_MIMALLOC). */
#ifndef MT_HEAP_H
#define MT_HEAP_H

/* Asks for transparent huge pages (MADV_HUGEPAGE) on the mimalloc segment
 * that serves the calling thread's small allocations; does nothing without
 * mimalloc, or when MIMALLOC_LARGE_OS_PAGES is set (mimalloc then does it
 * itself, or was told not to).  Called by each thread that allocates much,
 * once, early. */
void mt_heap_huge_pages(void);
/* Once, in main, before any other thread: every thread's first segment
 * committed whole (mimalloc's MIMALLOC_EAGER_COMMIT_DELAY=0, unless that is
 * set), so that mt_heap_huge_pages can give it huge pages; then
 * mt_heap_huge_pages for the calling thread. */
void mt_heap_setup(void);

#endif
