/* Test helper: what /proc/self/smaps and /proc/self/maps say of the
 * mapping holding p, and mincore of its pages. */
#ifndef MT_TEST_SMAPS_H
#define MT_TEST_SMAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

/* Whether the mapping holding p is marked for transparent huge pages ("hg"
 * among its VmFlags in /proc/self/smaps). */
static inline bool mapping_huge(const void *p)
{
    gchar *smaps = NULL;
    g_assert_true(g_file_get_contents("/proc/self/smaps", &smaps, NULL, NULL));
    bool inside = false, huge = false;
    gchar **lines = g_strsplit(smaps, "\n", -1);
    for (gchar **l = lines; *l; l++) {
        unsigned long lo, hi;
        if (sscanf(*l, "%lx-%lx ", &lo, &hi) == 2 && strchr(*l, ' ') &&
            g_ascii_isxdigit((*l)[0])) {
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (inside && g_str_has_prefix(*l, "VmFlags:")) {
            huge = strstr(*l, " hg") != NULL;
            break;
        }
    }
    g_strfreev(lines);
    g_free(smaps);
    return huge;
}

/* The bounds of the mapping holding p, [*lo, *hi); false if none does. */
static inline bool mapping_bounds(const void *p, uintptr_t *lo_out, uintptr_t *hi_out)
{
    gchar *maps = NULL;
    g_assert_true(g_file_get_contents("/proc/self/maps", &maps, NULL, NULL));
    bool found = false;
    gchar **lines = g_strsplit(maps, "\n", -1);
    for (gchar **l = lines; *l && !found; l++) {
        unsigned long lo, hi;
        if (sscanf(*l, "%lx-%lx ", &lo, &hi) == 2 && (uintptr_t)p >= lo && (uintptr_t)p < hi) {
            *lo_out = lo;
            *hi_out = hi;
            found = true;
        }
    }
    g_strfreev(lines);
    g_free(maps);
    return found;
}

/* Whether some page of p[0, n) is in memory (in true) or is not (in
 * false), with the offset of the first such page in *at. */
static inline bool some_page(const void *p, size_t n, bool in, size_t *at)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t np = (n + pg - 1) / pg;
    unsigned char *vec = g_malloc(np ? np : 1);
    g_assert_cmpint(mincore((void *)p, n, vec), ==, 0);
    bool found = false;
    for (size_t i = 0; i < np && !found; i++)
        if ((bool)(vec[i] & 1) == in) {
            found = true;
            *at = i * pg;
        }
    g_free(vec);
    return found;
}

#endif
