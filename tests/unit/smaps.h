/* Test helper: what /proc/self/smaps and /proc/self/maps say of the
 * mapping holding p. */
#ifndef MT_TEST_SMAPS_H
#define MT_TEST_SMAPS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

#endif
