/* Test helper: the page faults the calling thread takes by touching memory
 * (the kernel's page-faults software event).  Unlike getrusage's minor
 * faults, it leaves out the pages a madvise(MADV_POPULATE_WRITE) brought
 * in, so a test can tell pages asked for at once from pages trapped one by
 * one. */
#ifndef MT_TEST_TRAPS_H
#define MT_TEST_TRAPS_H

#include <linux/perf_event.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A counter for the calling thread, started; -1 where the kernel does not
 * allow it (perf_event_paranoid), and the caller then skips its check. */
static inline int traps_open(void)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_PAGE_FAULTS;
    a.exclude_kernel = 1;
    a.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static inline uint64_t traps_read(int fd)
{
    uint64_t v = 0;
    if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
        return 0;
    return v;
}

#endif
