/* See heap.h.
 *
 * mimalloc 2.0 (Debian 12) serves a thread's small allocations from 32 MiB
 * segments, each a mapping of its own aligned on 32 MiB, and touches their
 * pages one by one as the heap grows: on the benchmark's 250 MB capture
 * about 3,500 page faults, a tenth of the run on a host where a fault is
 * dear (bench/README.md, "mimalloc's large OS pages").  Its own option for
 * huge pages (MIMALLOC_LARGE_OS_PAGES) is read only from the environment,
 * before main.  So the command asks for them on the segment it finds
 * around a fresh allocation.  Should the layout differ in another
 * version, the advice falls on memory of the process that is either
 * mapped (and then only eligible for huge pages) or not (ENOMEM, ignored). */
#include "heap.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#ifdef MAILTAP_MIMALLOC
#include <mimalloc.h>
#endif

#define SEGMENT ((uintptr_t)32 << 20)

void mt_heap_setup(void)
{
#ifdef MAILTAP_MIMALLOC
    /* mimalloc commits the first segment of every thread but the first a
     * piece at a time (mprotect), "eager_commit_delay", for programs with
     * many threads that allocate little.  Here the few threads allocate
     * much, and a segment committed in pieces is a mapping per piece, too
     * small for a huge page: the --workers thread then took its heap 4 KiB
     * at a time, 1,200 traps on mixed-250M (bench/README.md).  The option
     * is read whenever a segment is made, so setting it here, before any
     * thread starts, is in time. */
    if (!getenv("MIMALLOC_EAGER_COMMIT_DELAY"))
        mi_option_set(mi_option_eager_commit_delay, 0);
#endif
    mt_heap_huge_pages();
}

void mt_heap_huge_pages(void)
{
#if defined(MAILTAP_MIMALLOC) && defined(MADV_HUGEPAGE)
    if (getenv("MIMALLOC_LARGE_OS_PAGES"))
        return;
    void *p = malloc(64);
    if (!p)
        return;
    (void)madvise((void *)((uintptr_t)p & ~(SEGMENT - 1)), SEGMENT, MADV_HUGEPAGE);
    free(p);
#endif
}
