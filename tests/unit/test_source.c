/* capture/source.c: which files get libpcap's large stdio buffer.
 *
 * A classic pcap file in this machine's byte order is read through the
 * window (pread into one reused buffer); libpcap reads only its 24-byte
 * header, so a 256 KiB stdio buffer would be a 256 KiB read and 256 KiB of
 * memory for nothing.  Any other file is read by libpcap's fread, which
 * wants the large buffer.  The bytes read while the file is opened
 * (/proc/self/io, rchar) tell which one a file got. */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"

#define FILE_BYTES (1024 * 1024)
/* what a file read through the window may cost to open: its header peeked
 * at, and libpcap's header read through a default stdio buffer */
#define SMALL_READ (64 * 1024)
/* what libpcap's header read costs through the 256 KiB buffer */
#define BIG_READ (256 * 1024)

static uint64_t rchar(void)
{
    char *s = NULL;
    uint64_t n = 0;
    g_assert_true(g_file_get_contents("/proc/self/io", &s, NULL, NULL));
    const char *p = strstr(s, "rchar:");
    g_assert_nonnull(p);
    n = g_ascii_strtoull(p + 6, NULL, 10);
    g_free(s);
    return n;
}

static void put32(uint8_t *p, uint32_t v, bool swap)
{
    if (swap)
        v = GUINT32_SWAP_LE_BE(v);
    memcpy(p, &v, 4);
}

static void put16(uint8_t *p, uint16_t v, bool swap)
{
    if (swap)
        v = GUINT16_SWAP_LE_BE(v);
    memcpy(p, &v, 2);
}

/* A classic pcap file of about FILE_BYTES: Ethernet records of 1,000
 * bytes of nothing in particular (opening reads none of them). */
static char *make_file(bool swapped)
{
    GError *e = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("mt-source-XXXXXX.pcap", &path, &e);
    g_assert_no_error(e);
    GByteArray *b = g_byte_array_new();
    uint8_t h[24] = { 0 };
    put32(h, 0xa1b2c3d4, swapped);
    put16(h + 4, 2, swapped);
    put16(h + 6, 4, swapped);
    put32(h + 16, 65535, swapped);
    put32(h + 20, 1, swapped); /* Ethernet */
    g_byte_array_append(b, h, sizeof h);
    uint8_t rec[16 + 1000];
    memset(rec, 0x5a, sizeof rec);
    for (uint32_t i = 0; b->len < FILE_BYTES; i++) {
        put32(rec, i, swapped);
        put32(rec + 4, 0, swapped);
        put32(rec + 8, 1000, swapped);
        put32(rec + 12, 1000, swapped);
        g_byte_array_append(b, rec, sizeof rec);
    }
    g_assert_cmpint(write(fd, b->data, b->len), ==, (ssize_t)b->len);
    close(fd);
    g_byte_array_free(b, TRUE);
    return path;
}

/* Bytes read by opening path (and closing it). */
static uint64_t open_reads(const char *path)
{
    char err[256];
    struct mt_source *s = NULL;
    uint64_t before = rchar();
    int rc = mt_source_open_file(&s, path, err, sizeof err);
    uint64_t after = rchar();
    g_assert_cmpint(rc, ==, MT_CAP_OK);
    mt_source_close(s);
    return after - before;
}

/* Which files get the large buffer: only those libpcap reads itself.  The
 * rows that want it also show that the measure sees it. */
static void test_table(void)
{
    static const struct {
        const char *what;
        bool swapped, no_window, want_big;
    } t[] = {
        { "a file for the window", false, false, false },
        { "the same file with MAILTAP_NO_MMAP=1", false, true, true },
        { "a file in the other byte order", true, false, true },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        char *path = make_file(t[i].swapped);
        if (t[i].no_window)
            g_setenv("MAILTAP_NO_MMAP", "1", TRUE);
        else
            g_unsetenv("MAILTAP_NO_MMAP");
        uint64_t n = open_reads(path);
        g_unsetenv("MAILTAP_NO_MMAP");
        g_unlink(path);
        g_free(path);
        if (t[i].want_big ? n < BIG_READ : n >= SMALL_READ)
            g_error("%s: %" G_GUINT64_FORMAT " bytes read when opened, want %s", t[i].what, n,
                    t[i].want_big ? "at least 256 KiB" : "under 64 KiB");
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/source/stdio-buffer", test_table);
    return g_test_run();
}
