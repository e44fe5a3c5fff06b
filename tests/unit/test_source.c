/* capture/source.c: which files get libpcap's large stdio buffer, and
 * files read no further than a size given when opened.
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
#include "caps.h"

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

#define REC_BYTES (16 + 1000)

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
    uint8_t rec[REC_BYTES];
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

/* Records read from path opened with upto, after the file has grown by
 * grow more records; *rc is what the run returned. */
static uint64_t records_upto(const char *path, uint64_t upto, unsigned grow, int *rc)
{
    char err[256];
    struct mt_source *s = NULL;
    g_assert_cmpint(mt_source_open_file_upto(&s, path, upto, err, sizeof err), ==, MT_CAP_OK);
    /* another program writing the file goes on after it was opened */
    FILE *f = fopen(path, "ab");
    g_assert_nonnull(f);
    uint8_t rec[REC_BYTES] = { 0 };
    for (unsigned i = 0; i < grow; i++) {
        put32(rec + 8, 1000, false);
        put32(rec + 12, 1000, false);
        g_assert_cmpuint(fwrite(rec, 1, sizeof rec, f), ==, sizeof rec);
    }
    fclose(f);
    struct mt_limits lim;
    mt_limits_default(&lim);
    struct mt_decoder *d = mt_decoder_new(&lim);
    uint64_t num = 0;
    *rc = mt_source_run(s, d, &num, 0, NULL, NULL, NULL, NULL, err, sizeof err);
    mt_decoder_free(d);
    mt_source_close(s);
    return num;
}

/* Read no further than upto, or without one than the file's size when
 * opened, whichever way the file is read, however far it has grown since:
 * what lets the threads of --workers, each opening the file itself, stop
 * at the same record, and one thread read either format alike. */
static void test_upto(void)
{
    const uint64_t whole = (FILE_BYTES - 24 + REC_BYTES - 1) / REC_BYTES;
    static const struct {
        const char *what;
        bool swapped, no_window;
        uint64_t upto_records; /* 0: MT_SOURCE_WHOLE */
        unsigned cut;          /* bytes of one more record within upto */
        unsigned grow;         /* records written after the file was opened */
        uint64_t want_extra;   /* records read beyond upto_records (or the whole file) */
        int want_rc;
    } t[] = {
        { "window, at a record's end", false, false, 5, 0, 0, 0, MT_CAP_OK },
        { "window, the file grown since", false, false, 5, 0, 3, 0, MT_CAP_OK },
        { "window, a record cut", false, false, 5, 100, 3, 0, MT_CAP_ERR_READ },
        { "libpcap (other byte order)", true, false, 5, 0, 0, 0, MT_CAP_OK },
        { "libpcap, the file grown since", false, true, 5, 0, 3, 0, MT_CAP_OK },
        { "libpcap, a record cut", false, true, 5, 100, 3, 0, MT_CAP_ERR_READ },
        { "libpcap, the whole file as it was", false, true, 0, 0, 3, 0, MT_CAP_OK },
        { "window, the whole file as it was", false, false, 0, 0, 3, 0, MT_CAP_OK },
        { "libpcap, upto past the end", true, false, 100000, 0, 0, 0, MT_CAP_OK },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(t); i++) {
        char *path = make_file(t[i].swapped);
        if (t[i].no_window)
            g_setenv("MAILTAP_NO_MMAP", "1", TRUE);
        uint64_t upto = t[i].upto_records ? 24 + t[i].upto_records * REC_BYTES + t[i].cut
                                          : MT_SOURCE_WHOLE;
        /* (records grown onto a file in the other byte order would be
         * nonsense: none are) */
        int rc = -99;
        uint64_t n = records_upto(path, upto, t[i].swapped ? 0 : t[i].grow, &rc);
        g_unsetenv("MAILTAP_NO_MMAP");
        g_unlink(path);
        g_free(path);
        uint64_t base = t[i].upto_records && t[i].upto_records < whole ? t[i].upto_records
                                                                      : whole;
        if (n != base + t[i].want_extra || rc != t[i].want_rc)
            g_error("%s: %" G_GUINT64_FORMAT " records, exit %d; want %" G_GUINT64_FORMAT
                    ", %d", t[i].what, n, rc, base + t[i].want_extra, t[i].want_rc);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/source/stdio-buffer", test_table);
    g_test_add_func("/source/upto", test_upto);
    return g_test_run();
}
