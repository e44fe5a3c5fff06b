/* The message buffer: what is kept under the in-memory cap, the size and
 * SHA-256 of every byte seen (also those past the cap, whose hash is
 * computed differently from the kept ones'), dot-unstuffing of a body cut
 * into pieces anywhere, the pool of buffers kept for reuse, a buffer made
 * at the size its message announced, and how a mapped buffer's pages are
 * brought in. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib.h>

#include "hash.h"
#include "smaps.h"
#include "traps.h"
#include "message.h"

/* A message appended in pieces of the given sizes (0 ends the list), under
 * the cap max. */
static const struct {
    const char *name;
    size_t len;
    uint64_t max;
    size_t pieces[6];
} appends[] = {
    { "empty", 0, 100, { 0 } },
    { "one piece under the cap", 50, 100, { 50, 0 } },
    { "exactly the cap", 100, 100, { 60, 40, 0 } },
    { "one byte past the cap", 101, 100, { 60, 41, 0 } },
    { "cap reached mid-piece, more after", 300, 100, { 70, 70, 60, 100, 0 } },
    { "cap reached at a piece's end, more after", 250, 100, { 100, 150, 0 } },
    { "cap of zero", 40, 0, { 10, 30, 0 } },
    { "grows past several doublings", 20000, 1 << 20, { 1, 4095, 4097, 11807, 0 } },
};

/* early: the hash is computed as soon as the message ends
 * (mt_msgbuf_hash_now, as the reading thread does when the message thread
 * is behind), then read. */
static void check_append(size_t t, bool early)
{
    g_test_message("%s%s", appends[t].name, early ? ", hashed at once" : "");
    size_t len = appends[t].len;
    uint64_t max = appends[t].max;
    uint8_t *src = g_malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        src[i] = (uint8_t)(i * 7 + (i >> 8));
    struct mt_msgbuf m;
    mt_msgbuf_init(&m, max, NULL);
    mt_msgbuf_begin(&m);
    size_t off = 0;
    for (int k = 0; appends[t].pieces[k]; k++) {
        mt_msgbuf_append(&m, src + off, appends[t].pieces[k]);
        off += appends[t].pieces[k];
    }
    g_assert_cmpuint(off, ==, len);
    size_t kept = len < max ? len : (size_t)max;
    g_assert_cmpuint(m.total, ==, len);
    g_assert_cmpuint(m.len, ==, kept);
    g_assert_true(m.truncated == (len > max));
    if (kept)
        g_assert_cmpmem(m.data, m.len, src, kept);
    char want[65], got[65];
    mt_sha256_hex(src, len, want); /* of all bytes, not only the kept ones */
    if (early) {
        mt_msgbuf_hash_now(&m);
        mt_msgbuf_hash_now(&m); /* once only */
    }
    mt_msgbuf_sha256_hex(&m, got);
    g_assert_cmpstr(got, ==, want);

    /* the buffer is reused for the next message: nothing carries over */
    mt_msgbuf_begin(&m);
    mt_msgbuf_append(&m, (const uint8_t *)"abc", 3);
    if (early)
        mt_msgbuf_hash_now(&m);
    mt_sha256_hex("abc", 3, want);
    mt_msgbuf_sha256_hex(&m, got);
    g_assert_cmpstr(got, ==, want);
    g_assert_true(m.truncated == (max < 3));
    mt_msgbuf_free(&m);
    g_free(src);
}

static void test_append(void)
{
    for (size_t t = 0; t < G_N_ELEMENTS(appends); t++) {
        check_append(t, false);
        check_append(t, true);
    }
}

/* A dot-stuffed body, what it becomes, and what follows the terminator;
 * crlf: as SMTP reads it (m->crlf_dots: a line starts only after CRLF),
 * with bare: the "." lines next to a bare LF it counts.  Without crlf
 * (POP3), a bare LF starts a line and ".\n" ends the body. */
static const struct {
    bool crlf;
    const char *wire, *body, *rest;
    unsigned bare;
} dots[] = {
    { false, "a\r\n.\r\n", "a\r\n", "", 0 },
    { false, "..x\r\n.\r\nNEXT", ".x\r\n", "NEXT", 0 },
    { false, "a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n", "", 0 },
    { false, "a\n.\n", "a\n", "", 0 },
    { false, "a\n..b\n.\n", "a\n.b\n", "", 0 },
    { false, ".\r\n", "", "", 0 },
    { false, "x.y\r\n.\r\n", "x.y\r\n", "", 0 },
    { false, "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", "", 0 },
    { true, "a\r\n.\r\n", "a\r\n", "", 0 },
    { true, "..x\r\n.\r\nNEXT", ".x\r\n", "NEXT", 0 },
    { true, "a\r\n..\r\nb\r\n.\r\nQUIT\r\n", "a\r\n.\r\nb\r\n", "QUIT\r\n", 0 },
    { true, ".\r\n", "", "", 0 },
    { true, "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", "", 0 },
    /* a dot after a bare LF is the message's own: not stuffing, no end */
    { true, "a\n..b\r\n.\r\n", "a\n..b\r\n", "", 0 },
    { true, "a\nb.\n.c\r\n.\r\n", "a\nb.\n.c\r\n", "", 0 },
    /* SMTP smuggling: the "." lines a lenient server ends DATA at */
    { true, "a\n.\nMAIL FROM:<x>\r\n.\r\nQUIT\r\n", "a\n.\nMAIL FROM:<x>\r\n", "QUIT\r\n", 1 },
    { true, "a\n.\r\nMAIL\r\n.\r\n", "a\n.\r\nMAIL\r\n", "", 1 },
    { true, "a\r\n.\nMAIL\r\n.\r\n", "a\r\n\nMAIL\r\n", "", 1 },
    { true, "\n.\n\n.\r\n\r\n.\n\r\n.\r\n", "\n.\n\n.\r\n\r\n\n\r\n", "", 3 },
    { true, "a\r\n.\n.\n.\r\n..\r\n.\r\n", "a\r\n\n.\n.\r\n.\r\n", "", 3 },
    { true, "\n.x\n.\rx\r\n.\r\n", "\n.x\n.\rx\r\n", "", 0 },
};

static void test_dotbody(void)
{
    for (size_t t = 0; t < G_N_ELEMENTS(dots); t++) {
        const char *wire = dots[t].wire;
        size_t n = strlen(wire);
        /* every way of cutting the wire bytes in two */
        for (size_t cut = 0; cut <= n; cut++) {
            g_test_message("case %zu cut at %zu", t, cut);
            struct mt_msgbuf m;
            mt_msgbuf_init(&m, 1000, NULL);
            m.crlf_dots = dots[t].crlf;
            mt_msgbuf_begin(&m);
            bool done = false;
            size_t used = mt_msgbuf_dotbody(&m, (const uint8_t *)wire, cut, &done);
            if (!done)
                used += mt_msgbuf_dotbody(&m, (const uint8_t *)wire + cut, n - cut, &done);
            g_assert_true(done);
            g_assert_cmpstr(wire + used, ==, dots[t].rest);
            g_assert_cmpmem(m.data, m.len, dots[t].body, strlen(dots[t].body));
            g_assert_cmpuint(m.bare_dots, ==, dots[t].bare);
            char want[65], got[65];
            mt_sha256_hex(dots[t].body, strlen(dots[t].body), want);
            mt_msgbuf_sha256_hex(&m, got);
            g_assert_cmpstr(got, ==, want);
            mt_msgbuf_free(&m);
        }
    }
}

/* The buffer pool: what it keeps (small ones up to a count and a byte
 * total; big ones never), and what a growing message takes from it. */
static void test_bufpool(void)
{
    struct mt_bufpool bp;
    memset(&bp, 0, sizeof(bp));
    size_t big = 2 * MT_MSGBUF_KEEP;

    /* big ones are freed at once (ASan: no leak), a small one is kept */
    mt_bufpool_put(&bp, mt_buf_alloc(big), big);
    mt_bufpool_put(&bp, mt_buf_alloc(MT_MSGBUF_KEEP + 1), MT_MSGBUF_KEEP + 1);
    g_assert_cmpuint(bp.nsmall, ==, 0);
    g_assert_cmpuint(bp.small_bytes, ==, 0);
    mt_bufpool_put(&bp, mt_buf_alloc(MT_MSGBUF_KEEP), MT_MSGBUF_KEEP);
    g_assert_cmpuint(bp.nsmall, ==, 1);
    mt_bufpool_free(&bp);

    /* small ones: up to MT_BUFPOOL_SMALL, and MT_BUFPOOL_BYTES in all */
    for (int i = 0; i < MT_BUFPOOL_SMALL + 4; i++)
        mt_bufpool_put(&bp, mt_buf_alloc(4096), 4096);
    g_assert_cmpuint(bp.nsmall, ==, MIN(MT_BUFPOOL_SMALL, MT_BUFPOOL_BYTES / 4096));
    g_assert_cmpuint(bp.small_bytes, ==, bp.nsmall * 4096u);
    mt_bufpool_free(&bp);
    mt_bufpool_put(&bp, mt_buf_alloc(MT_BUFPOOL_BYTES), MT_BUFPOOL_BYTES);
    mt_bufpool_put(&bp, mt_buf_alloc(4096), 4096); /* over the byte total: freed */
    g_assert_cmpuint(bp.nsmall, ==, 1);
    g_assert_cmpuint(bp.small_bytes, ==, MT_BUFPOOL_BYTES);

    mt_bufpool_free(&bp);
    g_assert_cmpuint(bp.nsmall, ==, 0);
    g_assert_cmpuint(bp.small_bytes, ==, 0);

    /* a growing message takes a kept buffer large enough, pages and all */
    mt_bufpool_put(&bp, mt_buf_alloc(16384), 16384);
    struct mt_msgbuf m;
    mt_msgbuf_init(&m, 1 << 20, &bp);
    mt_msgbuf_begin(&m);
    uint8_t chunk[10000];
    memset(chunk, 'x', sizeof(chunk));
    mt_msgbuf_append(&m, chunk, sizeof(chunk));
    g_assert_cmpuint(m.cap, ==, 16384);
    g_assert_cmpuint(bp.nsmall, ==, 0);
    g_assert_cmpmem(m.data, m.len, chunk, sizeof(chunk));
    mt_msgbuf_free(&m);
    mt_bufpool_free(&bp);
}

/* mt_buf_resize keeps the first len bytes across every kind of change:
 * heap to heap, heap to mapping, mapping to mapping (mremap), mapping back
 * to the heap, growing and shrinking, and a NULL start. */
static void test_buf_resize(void)
{
    static const struct {
        size_t from, to;
    } rows[] = {
        { 0, 100 },
        { 100, 4096 },
        { 4096, MT_BUF_MAP_MIN },               /* at the threshold: still the heap */
        { MT_BUF_MAP_MIN, MT_BUF_MAP_MIN + 1 }, /* just past it: mapped */
        { 4096, 3 * MT_BUF_MAP_MIN },
        { 3 * MT_BUF_MAP_MIN, 9 * MT_BUF_MAP_MIN + 123 },
        { 9 * MT_BUF_MAP_MIN + 123, 2 * MT_BUF_MAP_MIN },
        { 2 * MT_BUF_MAP_MIN, 5000 },
        { 5000, 300 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        size_t from = rows[i].from, to = rows[i].to;
        uint8_t *p = from ? mt_buf_alloc(from) : NULL;
        for (size_t k = 0; k < from; k++)
            p[k] = (uint8_t)(k * 7 + i);
        size_t len = MIN(from, to);
        uint8_t *q = mt_buf_resize(p, from, len, to);
        g_assert_nonnull(q);
        for (size_t k = 0; k < len; k++)
            if (q[k] != (uint8_t)(k * 7 + i))
                g_error("row %zu (%zu -> %zu): byte %zu lost", i, from, to, k);
        memset(q, 0x5a, to); /* every byte of the new capacity is writable */
        mt_buf_free(q, to);
    }
    mt_buf_free(NULL, 0);
    mt_buf_free(NULL, 10 * MT_BUF_MAP_MIN);
}

/* A mapped message buffer's pages are asked for ahead of the bytes written
 * (MT_BUF_AHEAD, never past the capacity), and one of MT_BUF_HUGE_MIN or
 * more is marked for huge pages: appended in packet-sized pieces, as the
 * reading thread does. */
static void test_buf_pages(void)
{
    if (!mt_buf_mapped(MT_BUF_MAP_MIN + 1)) {
        g_test_skip("message buffers are plain heap memory under the sanitizers");
        return;
    }
    bool thp = g_file_test("/sys/kernel/mm/transparent_hugepage/enabled", G_FILE_TEST_EXISTS);
    static const struct {
        const char *name;
        size_t len;
        size_t cap;   /* what it grows to by doubling from 512 */
        bool huge;
    } rows[] = {
        { "just mapped", 70 * 1024, 128 * 1024, false },
        { "ahead cut at the capacity", 300 * 1024, 512 * 1024, false },
        { "a huge capacity", 1100 * 1024, 2048 * 1024, true },
        { "just under a huge capacity", 1000 * 1024, 1024 * 1024, false },
        { "several huge pages", 5 * 1024 * 1024 + 77, 8 * 1024 * 1024, true },
    };
    uint8_t piece[1460];
    memset(piece, 'm', sizeof(piece));
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_test_message("%s", rows[i].name);
        struct mt_msgbuf m;
        mt_msgbuf_init(&m, 64u << 20, NULL);
        mt_msgbuf_begin(&m);
        size_t pg = (size_t)sysconf(_SC_PAGESIZE), hole = 0, asked = 0;
        for (size_t done = 0; done < rows[i].len;) {
            size_t n = MIN(sizeof(piece), rows[i].len - done), before = m.ready;
            mt_msgbuf_append(&m, piece, n);
            done += n;
            if (!mt_buf_mapped(m.cap))
                continue;
            /* asked for before they are written, MT_BUF_AHEAD at a time,
             * never past the capacity */
            g_assert_cmpuint(m.ready, >=, m.len);
            g_assert_cmpuint(m.ready, <=, m.cap);
            if (m.ready != before) {
                asked++;
                g_assert_cmpuint(m.ready, >=, MIN(m.cap, (m.len + MT_BUF_AHEAD) / pg * pg));
                /* or to the end of the huge page: one kept from an
                 * earlier buffer comes in whole (MT_BUF_POOL_EXTENTS) */
                size_t most = m.len + MT_BUF_AHEAD + pg;
                if (m.cap >= MT_BUF_HUGE_MIN)
                    most = (m.len + MT_BUF_AHEAD + MT_BUF_HUGE_MIN - 1) / MT_BUF_HUGE_MIN *
                           MT_BUF_HUGE_MIN;
                g_assert_cmpuint(m.ready, <=, most);
            }
        }
        g_assert_cmpuint(m.len, ==, rows[i].len);
        g_assert_cmpuint(m.cap, ==, rows[i].cap);
        /* one call per MT_BUF_AHEAD, not one per piece */
        g_assert_cmpuint(asked, >=, 1);
        g_assert_cmpuint(asked, <=, rows[i].len / MT_BUF_AHEAD + 8);
        if (some_page(m.data, m.ready, false, &hole))
            g_error("%s: the page at %zu of %zu is not in", rows[i].name, hole, m.ready);
        if (!rows[i].huge && m.ready + 2 * pg <= m.cap &&
            some_page(m.data + m.ready + pg, pg, true, &hole))
            g_error("%s: a page beyond what was asked for is in", rows[i].name);
        if (thp)
            g_assert_cmpint(mapping_huge(m.data), ==, rows[i].huge);
        mt_msgbuf_free(&m);
    }
}

/* The size a message announced (mt_msgbuf_expect): once the message
 * outgrows the heap, its mapping is made that large at once and never
 * moves (no mremap on the way); a message that stays small stays on the
 * heap whatever it announced; the cap bounds the announcement; a message
 * larger than announced grows on by doubling. */
static void test_expect(void)
{
    if (!mt_buf_mapped(MT_BUF_MAP_MIN + 1)) {
        g_test_skip("message buffers are plain heap memory under the sanitizers");
        return;
    }
    static const struct {
        const char *name;
        uint64_t expect, max;
        size_t len;
        size_t cap;   /* the buffer's capacity at the end */
        bool stays;   /* mapped once, at cap, and never moved */
    } rows[] = {
        { "announced and sent", 5 * 1024 * 1024 + 77, 64u << 20, 5 * 1024 * 1024 + 77,
          5 * 1024 * 1024 + 77, true },
        { "announced more than sent", 5u << 20, 64u << 20, 300 * 1024, 5u << 20, true },
        { "announced past the cap", 100u << 20, 8u << 20, 8u << 20, 8u << 20, true },
        { "small: on the heap whatever it announced", 5u << 20, 64u << 20, 10000, 16384,
          false },
        { "announced less than sent: doubles on", 200 * 1024, 64u << 20, 300 * 1024,
          400 * 1024, false },
        { "announced less than the heap holds", 1000, 64u << 20, 100 * 1024, 128 * 1024,
          false },
        { "nothing announced: doubles", 0, 64u << 20, 5 * 1024 * 1024 + 77, 8u << 20,
          false },
    };
    uint8_t piece[1460];
    memset(piece, 'e', sizeof(piece));
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        g_test_message("%s", rows[i].name);
        struct mt_msgbuf m;
        mt_msgbuf_init(&m, rows[i].max, NULL);
        mt_msgbuf_begin(&m);
        mt_msgbuf_expect(&m, rows[i].expect);
        const uint8_t *first_map = NULL;
        size_t first_cap = 0;
        for (size_t done = 0; done < rows[i].len;) {
            size_t n = MIN(sizeof(piece), rows[i].len - done);
            mt_msgbuf_append(&m, piece, n);
            done += n;
            if (!first_map && mt_buf_mapped(m.cap)) {
                first_map = m.data;
                first_cap = m.cap;
            }
        }
        g_assert_cmpuint(m.len, ==, MIN(rows[i].len, rows[i].max));
        g_assert_cmpuint(m.cap, ==, rows[i].cap);
        if (rows[i].stays) {
            g_assert_true(first_map == m.data);
            g_assert_cmpuint(first_cap, ==, rows[i].cap);
        }
        mt_msgbuf_free(&m);
        /* begin forgets the announcement */
        mt_msgbuf_init(&m, rows[i].max, NULL);
        mt_msgbuf_expect(&m, rows[i].expect);
        mt_msgbuf_begin(&m);
        g_assert_cmpuint(m.expect, ==, 0);
        mt_msgbuf_free(&m);
    }
}

/* An announced size the kernel will not map (here an address-space limit
 * just above what the process uses; strict overcommit does the same) is
 * dropped, and the message grows as if nothing had been announced,
 * where the mapping's failure used to end the run. */
static void test_expect_refused(void)
{
    if (!mt_buf_mapped(MT_BUF_MAP_MIN + 1)) {
        g_test_skip("message buffers are plain heap memory under the sanitizers");
        return;
    }
    struct rlimit old;
    g_assert_cmpint(getrlimit(RLIMIT_AS, &old), ==, 0);
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    g_assert_nonnull(f);
    g_assert_cmpint(fscanf(f, "%lu", &pages), ==, 1);
    fclose(f);
    struct rlimit low = old;
    low.rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (32u << 20);
    if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < low.rlim_cur) {
        g_test_skip("the address-space limit is already lower");
        return;
    }
    uint8_t piece[1460];
    memset(piece, 'r', sizeof(piece));
    struct mt_msgbuf m;
    mt_msgbuf_init(&m, 1u << 30, NULL);
    mt_msgbuf_begin(&m);
    mt_msgbuf_expect(&m, 512u << 20); /* more than the limit leaves */
    g_assert_cmpint(setrlimit(RLIMIT_AS, &low), ==, 0);
    size_t len = 300 * 1024;
    for (size_t done = 0; done < len; done += sizeof(piece))
        mt_msgbuf_append(&m, piece, MIN(sizeof(piece), len - done));
    g_assert_cmpint(setrlimit(RLIMIT_AS, &old), ==, 0);
    g_assert_cmpuint(m.len, ==, len);
    g_assert_cmpuint(m.cap, ==, 512 * 1024);
    g_assert_cmpuint(m.expect, ==, 0);
    for (size_t i = 0; i < len; i++)
        if (m.data[i] != 'r')
            g_error("byte %zu lost", i);
    mt_msgbuf_free(&m);
}

/* Pages are asked for at once where a buffer is about to be written whole:
 * a heap buffer's bytes copied into a new mapping (mt_buf_resize), and a
 * mapping of MT_BUF_HUGE_MIN or more starts on a huge-page boundary, so
 * that all of it can be huge pages, also where the kernel would not place
 * it so (before Linux 6.7). */
static void test_buf_traps(void)
{
    if (!mt_buf_mapped(MT_BUF_MAP_MIN + 1)) {
        g_test_skip("message buffers are plain heap memory under the sanitizers");
        return;
    }
    const size_t huge = 2u * 1024 * 1024;
    int fd = traps_open();
    if (fd < 0) {
        g_test_message("no page-faults counter here (perf_event_paranoid): traps not counted");
    } else {
        /* 60 KiB of the heap copied into a mapping of 128 KiB: 15 pages
         * trapped one by one without the madvise, none with it */
        size_t len = MT_BUF_MAP_MIN - 4096, cap = 2 * MT_BUF_MAP_MIN;
        uint8_t *p = mt_buf_alloc(len);
        memset(p, 'h', len);
        uint64_t t0 = traps_read(fd);
        uint8_t *q = mt_buf_resize(p, len, len, cap);
        uint64_t t1 = traps_read(fd);
        g_assert_cmpuint(t1 - t0, <=, 2);
        g_assert_cmpint(q[len - 1], ==, 'h');
        mt_buf_free(q, cap);
        close(fd);
    }
    static const size_t caps[] = { 2 * 1024 * 1024, 3407872, 5 * 1024 * 1024 + 77 };
    for (size_t i = 0; i < G_N_ELEMENTS(caps); i++) {
        uint8_t *b = mt_buf_alloc(caps[i]);
        g_assert_cmpuint((uintptr_t)b % huge, ==, 0);
        memset(b, 'x', caps[i]); /* all of it is writable */
        mt_buf_free(b, caps[i]);
    }
    /* and through mremap */
    uint8_t *b = mt_buf_resize(NULL, 0, 0, 3407872);
    b = mt_buf_resize(b, 3407872, 3407872, 5 * 1024 * 1024 + 77);
    g_assert_cmpuint((uintptr_t)b % huge, ==, 0);
    memset(b, 'y', 5 * 1024 * 1024 + 77);
    mt_buf_free(b, 5 * 1024 * 1024 + 77);
}

/* The extents of a freed buffer of MT_BUF_HUGE_MIN or more whose pages are
 * in are kept (MT_BUF_POOL_EXTENTS) and moved into the next large buffer:
 * its bytes there are still the old buffer's, where a new page would be
 * zeros.  Each step on from the pool the one before left. */
static void test_buf_kept(void)
{
    if (!mt_buf_mapped(MT_BUF_MAP_MIN + 1)) {
        g_test_skip("message buffers are plain heap memory under the sanitizers");
        return;
    }
    const size_t ext = MT_BUF_HUGE_MIN;
    mt_buf_drop_kept();
    g_assert_cmpuint(mt_buf_kept(), ==, 0);

    g_test_message("a freed buffer's extents whose pages are in");
    size_t cap = 3 * ext - 100; /* the last extent not wholly used: kept too */
    uint8_t *b = mt_buf_alloc(cap);
    g_assert_cmpuint(mt_buf_populate(b, cap, 0, cap), ==, cap);
    memset(b, 'a', cap);
    mt_buf_free(b, cap);
    g_assert_cmpuint(mt_buf_kept(), ==, 3);

    g_test_message("taken by the next large buffer, before new pages");
    cap = 4 * ext;
    b = mt_buf_alloc(cap);
    g_assert_cmpuint(mt_buf_populate(b, cap, 0, 100), ==, ext);
    g_assert_cmpuint(mt_buf_kept(), ==, 2);
    g_assert_cmpuint(mt_buf_populate(b, cap, ext, cap), ==, cap);
    g_assert_cmpuint(mt_buf_kept(), ==, 0);
    for (size_t off = 0; off < 3 * ext; off += ext)
        g_assert_cmpint(b[off], ==, 'a');
    g_assert_cmpint(b[3 * ext], ==, 0); /* a new page */

    g_test_message("grown over extents from the pool: the bytes stay");
    for (size_t i = 0; i < cap; i++)
        b[i] = (uint8_t)(i * 7 + i / 4096);
    uint8_t *g = mt_buf_resize(b, cap, cap, 6 * ext + 5);
    g_assert_cmpuint((uintptr_t)g % ext, ==, 0);
    for (size_t i = 0; i < cap; i++)
        if (g[i] != (uint8_t)(i * 7 + i / 4096))
            g_error("byte %zu changed in growing", i);
    memset(g + cap, 'g', 2 * ext + 5);

    g_test_message("shrunk: the extents past the new size go to the pool");
    uint8_t *s2 = mt_buf_resize(g, 6 * ext + 5, ext + 3, 2 * ext);
    g_assert_cmpuint(mt_buf_kept(), ==, 5); /* of 7, all written */
    for (size_t i = 0; i < ext + 3; i++)
        if (s2[i] != (uint8_t)(i * 7 + i / 4096))
            g_error("byte %zu changed in shrinking", i);
    mt_buf_free(s2, 2 * ext);
    g_assert_cmpuint(mt_buf_kept(), ==, 7);

    g_test_message("no more than MT_BUF_POOL_EXTENTS");
    cap = (MT_BUF_POOL_EXTENTS + 3) * ext;
    b = mt_buf_alloc(cap);
    (void)mt_buf_populate(b, cap, 0, cap);
    g_assert_cmpuint(mt_buf_kept(), ==, 0);
    mt_buf_free(b, cap);
    g_assert_cmpuint(mt_buf_kept(), ==, MT_BUF_POOL_EXTENTS);

    g_test_message("pages never in are not kept");
    mt_buf_drop_kept();
    cap = 2 * ext;
    b = mt_buf_alloc(cap);
    mt_buf_free(b, cap);
    g_assert_cmpuint(mt_buf_kept(), ==, 0);

    g_test_message("mt_buf_take_kept: only what is kept, no new pages");
    b = mt_buf_alloc(cap);
    (void)mt_buf_populate(b, cap, 0, cap);
    memset(b, 'c', cap);
    mt_buf_free(b, cap);
    g_assert_cmpuint(mt_buf_kept(), ==, 2);
    cap = 5 * ext;
    b = mt_buf_alloc(cap);
    g_assert_cmpuint(mt_buf_take_kept(b, cap, ext / 2), ==, ext / 2); /* not on an extent */
    g_assert_cmpuint(mt_buf_take_kept(b, cap, ext), ==, 3 * ext);
    g_assert_cmpuint(mt_buf_kept(), ==, 0);
    g_assert_cmpint(b[ext], ==, 'c');
    g_assert_cmpint(b[2 * ext + 17], ==, 'c');
    g_assert_cmpuint(mt_buf_take_kept(b, cap, 3 * ext), ==, 3 * ext);
    mt_buf_free(b, cap);
    g_assert_cmpuint(mt_buf_kept(), ==, 2);
    mt_buf_drop_kept();
}

/* mt_buf_populate takes kept extents only from the first extent boundary
 * at or past where the bytes end: asked for from just past a boundary
 * (a page-rounded start would fall on it), that extent keeps its bytes.
 * And it says no more is in than is: a fresh extent's pages are in up to
 * what was asked, not to its end. */
static void test_buf_kept_boundary(void)
{
    if (!mt_buf_mapped(MT_BUF_MAP_MIN + 1)) {
        g_test_skip("message buffers are plain heap memory under the sanitizers");
        return;
    }
    const size_t ext = MT_BUF_HUGE_MIN, cap = 2 * ext;
    static const size_t ends[] = { 1, 1519, 4095, 4096, 4097 };
    for (size_t i = 0; i < G_N_ELEMENTS(ends); i++) {
        size_t w = ext + ends[i];
        mt_buf_drop_kept();
        uint8_t *v = mt_buf_alloc(cap);
        (void)mt_buf_populate(v, cap, 0, w); /* new pages: nothing kept */
        memset(v, 'v', w);
        uint8_t *k = mt_buf_alloc(cap); /* then two kept */
        (void)mt_buf_populate(k, cap, 0, cap);
        mt_buf_free(k, cap);
        g_assert_cmpuint(mt_buf_kept(), ==, 2);
        (void)mt_buf_populate(v, cap, w, w + 4096);
        g_assert_cmpuint(mt_buf_kept(), ==, 2); /* no extent of v was begun */
        for (size_t j = 0; j < w; j++)
            if (v[j] != 'v')
                g_error("bytes to %zu: byte %zu was replaced", w, j);
        mt_buf_free(v, cap);
    }
    mt_buf_drop_kept();
    uint8_t *f = mt_buf_alloc(cap);
    g_assert_cmpuint(mt_buf_populate(f, cap, 100 * 1024, 300 * 1024), ==, 300 * 1024);
    mt_buf_free(f, cap);
    mt_buf_drop_kept();
}

/* Buffers made, grown, shrunk, filled and freed in a random order (a fixed
 * seed), several alive at once and on two threads sharing the extent
 * pool: each keeps the bytes written to it, so no extent is ever in two
 * buffers at once or taken while written, and the pool never holds more
 * than MT_BUF_POOL_EXTENTS. */
struct churn_buf {
    uint8_t *p;
    size_t cap, len;
    uint8_t tag;
};

static uint8_t churn_byte(uint8_t tag, size_t i)
{
    return (uint8_t)(tag + i * 31 + (i >> 12));
}

static void churn_check(const struct churn_buf *b)
{
    for (size_t i = 0; i < b->len; i += 509)
        if (b->p[i] != churn_byte(b->tag, i))
            g_error("buffer %u: byte %zu of %zu changed", b->tag, i, b->len);
    if (b->len && b->p[b->len - 1] != churn_byte(b->tag, b->len - 1))
        g_error("buffer %u: its last byte changed", b->tag);
}

static void churn_fill(struct churn_buf *b, size_t to)
{
    size_t ready = mt_buf_populate(b->p, b->cap, b->len, to);
    g_assert_cmpuint(ready, <=, b->cap);
    for (size_t i = b->len; i < to; i++)
        b->p[i] = churn_byte(b->tag, i);
    b->len = to;
}

static gpointer churn(gpointer data)
{
    GRand *r = g_rand_new_with_seed(GPOINTER_TO_UINT(data));
    const size_t mib = 1024 * 1024;
    struct churn_buf bufs[5];
    memset(bufs, 0, sizeof(bufs));
    for (int step = 0; step < 400; step++) {
        struct churn_buf *b = &bufs[g_rand_int_range(r, 0, G_N_ELEMENTS(bufs))];
        size_t cap = (size_t)g_rand_int_range(r, 1, 13 * 8) * mib / 8 +
                     (size_t)g_rand_int_range(r, 0, 4096);
        switch (g_rand_int_range(r, 0, 4)) {
        case 0: /* a new buffer, or the old one freed first */
            mt_buf_free(b->p, b->cap);
            b->p = mt_buf_alloc(cap);
            b->cap = cap;
            b->len = 0;
            b->tag = (uint8_t)g_rand_int(r);
            break;
        case 1: /* resized, its bytes up to the new size kept */
            if (!b->p)
                break;
            b->p = mt_buf_resize(b->p, b->cap, b->len, cap);
            b->cap = cap;
            b->len = MIN(b->len, cap);
            churn_check(b);
            break;
        case 2: /* written further */
            if (b->p)
                churn_fill(b, b->len + (size_t)g_rand_int_range(r, 0, (int)(b->cap - b->len) + 1));
            break;
        default: /* freed */
            mt_buf_free(b->p, b->cap);
            memset(b, 0, sizeof(*b));
            break;
        }
        for (size_t k = 0; k < G_N_ELEMENTS(bufs); k++)
            if (bufs[k].p)
                churn_check(&bufs[k]);
        g_assert_cmpuint(mt_buf_kept(), <=, MT_BUF_POOL_EXTENTS);
    }
    for (size_t k = 0; k < G_N_ELEMENTS(bufs); k++)
        mt_buf_free(bufs[k].p, bufs[k].cap);
    g_rand_free(r);
    return NULL;
}

static void test_buf_churn(void)
{
    if (!mt_buf_mapped(MT_BUF_MAP_MIN + 1)) {
        g_test_skip("message buffers are plain heap memory under the sanitizers");
        return;
    }
    /* one seed in eight found the extent taken over bytes (fixed since),
     * so many seeds: 16 on one thread, then 8 pairs on two */
    mt_buf_drop_kept();
    for (unsigned seed = 1; seed <= 16; seed++)
        churn(GUINT_TO_POINTER(seed));
    for (unsigned seed = 17; seed <= 32; seed += 2) {
        GThread *t = g_thread_new("churn", churn, GUINT_TO_POINTER(seed));
        churn(GUINT_TO_POINTER(seed + 1));
        g_thread_join(t);
    }
    mt_buf_drop_kept();
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/message/append", test_append);
    g_test_add_func("/message/dotbody", test_dotbody);
    g_test_add_func("/message/bufpool", test_bufpool);
    g_test_add_func("/message/buf-resize", test_buf_resize);
    g_test_add_func("/message/buf-pages", test_buf_pages);
    g_test_add_func("/message/expect", test_expect);
    g_test_add_func("/message/expect-refused", test_expect_refused);
    g_test_add_func("/message/buf-traps", test_buf_traps);
    g_test_add_func("/message/buf-kept", test_buf_kept);
    g_test_add_func("/message/buf-kept-boundary", test_buf_kept_boundary);
    g_test_add_func("/message/buf-churn", test_buf_churn);
    return g_test_run();
}
