/* Collecting one message's bytes; see message.h. */
#include "message.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "grow.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BUF_MAP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define BUF_MAP 0
#endif
#endif
#ifndef BUF_MAP
#define BUF_MAP 1
#endif

bool mt_buf_mapped(size_t cap)
{
    return BUF_MAP && cap > MT_BUF_MAP_MIN;
}

static size_t page_size(void)
{
    static size_t pg;
    if (!pg)
        pg = (size_t)sysconf(_SC_PAGESIZE);
    return pg;
}

static size_t page_round(size_t n)
{
    size_t pg = page_size();
    return (n + pg - 1) / pg * pg;
}

/* A mapped buffer's length: its pages, and for one of MT_BUF_HUGE_MIN
 * bytes or more whole huge pages.  The kernel places an anonymous mapping
 * on a huge-page boundary only when its length is a multiple of the huge
 * page (Linux 6.7 and later); a 3.25 MiB one (the --workers ring's slots,
 * a decoded attachment) started anywhere, and only the huge pages that
 * fell wholly inside it could be huge: the rest came in 4 KiB at a time,
 * a trap each. */
static size_t map_len(size_t cap)
{
    const size_t huge = 2u * 1024 * 1024;
    if (cap >= MT_BUF_HUGE_MIN)
        return (cap + huge - 1) / huge * huge;
    return page_round(cap);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* A huge page: the unit a large buffer's pages are kept in between
 * buffers (the extent pool below). */
#define EXT ((size_t)2 * 1024 * 1024)

static bool ext_aligned(const void *p)
{
    return ((uintptr_t)p & (EXT - 1)) == 0;
}

/* A mapping of MT_BUF_HUGE_MIN or more: transparent huge pages where the
 * kernel allows them (its mode "madvise" or "always"); it may refuse. */
static void buf_huge(void *p, size_t cap)
{
    if (cap >= MT_BUF_HUGE_MIN)
        (void)madvise(p, map_len(cap), MADV_HUGEPAGE);
}

/* The extent pool (message.h, MT_BUF_POOL_EXTENTS): the 2 MiB extents of
 * freed large buffers whose pages are in, each left mapped where it was,
 * for the next large buffer to take by moving its page tables (mremap),
 * where new pages would be cleared by the kernel first.  One for the
 * process, so that what is kept and what is in use together stay under
 * the most that was in use at once, whatever thread frees or makes a
 * buffer; the lock is taken a few times per large message. */
static struct {
    GMutex lock;
    uint8_t *ext[MT_BUF_POOL_EXTENTS];
    unsigned n;
} ext_pool;

/* The mapping at dst, EXT bytes, after a move into it failed: the kernel
 * may have unmapped it first.  A fresh mapping where it is gone; where it
 * is still there, the kernel says so (EEXIST), or, before Linux 4.17,
 * which takes MAP_FIXED_NOREPLACE for a hint, maps elsewhere. */
static void ext_remap(uint8_t *dst)
{
    void *q = mmap(dst, EXT, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (q == MAP_FAILED) {
        if (errno != EEXIST)
            g_error("mailtap: cannot map a message buffer's extent");
        return;
    }
    if (q != dst) {
        munmap(q, EXT);
        return;
    }
    (void)madvise(dst, EXT, MADV_HUGEPAGE);
}

/* Moves the extent at src (EXT bytes, 2 MiB aligned) to dst, over what
 * was mapped there; false, src left as it was, if the kernel refuses. */
static bool ext_move(uint8_t *src, uint8_t *dst)
{
    if (mremap(src, EXT, EXT, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != MAP_FAILED)
        return true;
    ext_remap(dst);
    return false;
}

/* A kept extent moved to dst (2 MiB aligned, inside a buffer's mapping,
 * nothing written there yet), its pages in; false when none is kept. */
static bool ext_take(uint8_t *dst)
{
    for (;;) {
        g_mutex_lock(&ext_pool.lock);
        uint8_t *src = ext_pool.n > 0 ? ext_pool.ext[--ext_pool.n] : NULL;
        g_mutex_unlock(&ext_pool.lock);
        if (!src)
            return false;
        if (ext_move(src, dst))
            return true;
        munmap(src, EXT);
    }
}

/* Keeps the extent at p in the pool if it has room. */
static bool ext_keep(uint8_t *p)
{
    g_mutex_lock(&ext_pool.lock);
    bool room = ext_pool.n < MT_BUF_POOL_EXTENTS;
    if (room)
        ext_pool.ext[ext_pool.n++] = p;
    g_mutex_unlock(&ext_pool.lock);
    return room;
}

/* Kept extents moved into p's extents from offset e (on a boundary,
 * nothing written there yet) while there are any, up to lim; returns where
 * they end. */
static size_t ext_take_from(uint8_t *p, size_t e, size_t lim)
{
    while (e < lim && ext_take(p + e))
        e += EXT;
    return e;
}

/* Unmaps len bytes at p (a 2 MiB aligned part of a large buffer),
 * keeping in the pool the extents whose pages are in while it has
 * room. */
static void ext_release(uint8_t *p, size_t len)
{
    size_t from = 0; /* the start of what is still to unmap */
    for (size_t off = 0; off + EXT <= len; off += EXT) {
        unsigned char in = 0;
        if (mincore(p + off, 1, &in) != 0 || !(in & 1))
            continue;
        if (!ext_keep(p + off))
            break;
        if (off > from)
            munmap(p + from, off - from);
        from = off + EXT;
    }
    if (len > from)
        munmap(p + from, len - from);
}

unsigned mt_buf_kept(void)
{
    g_mutex_lock(&ext_pool.lock);
    unsigned n = ext_pool.n;
    g_mutex_unlock(&ext_pool.lock);
    return n;
}

void mt_buf_drop_kept(void)
{
    g_mutex_lock(&ext_pool.lock);
    while (ext_pool.n > 0)
        munmap(ext_pool.ext[--ext_pool.n], EXT);
    g_mutex_unlock(&ext_pool.lock);
}

/* Cleared once a kernel before 5.14 says it does not know
 * MADV_POPULATE_WRITE: the pages then come in by faults, as before. */
static int populate_known = 1;

/* Asks for the pages of p[start, end) (page aligned); a refusal leaves
 * them to come in by faults. */
static void populate(uint8_t *p, size_t start, size_t end)
{
    if (end <= start || !__atomic_load_n(&populate_known, __ATOMIC_RELAXED))
        return;
    if (madvise(p + start, end - start, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        __atomic_store_n(&populate_known, 0, __ATOMIC_RELAXED);
}

size_t mt_buf_populate(uint8_t *p, size_t cap, size_t from, size_t to)
{
    if (!mt_buf_mapped(cap))
        return from;
    size_t pg = page_size();
    size_t start = from / pg * pg;
    size_t end = page_round(to);
    if (end > page_round(cap))
        end = page_round(cap);
    if (end <= start)
        return from;
    if (cap >= MT_BUF_HUGE_MIN && ext_aligned(p)) {
        /* whole extents not begun yet, from the first boundary at or
         * past from (not start: from rounded down to a page may fall on
         * the boundary of an extent that holds bytes), kept ones first */
        size_t first = (from + EXT - 1) / EXT * EXT;
        populate(p, start, MIN(first, end));
        size_t e = ext_take_from(p, first, end);
        if (e < end)
            populate(p, e, end);
        else if (e > first)
            end = e; /* the last extent taken is in to its end */
    } else {
        populate(p, start, end);
    }
    return end < cap ? end : cap;
}

size_t mt_buf_take_kept(uint8_t *p, size_t cap, size_t from)
{
    if (!mt_buf_mapped(cap) || cap < MT_BUF_HUGE_MIN || !ext_aligned(p) || from % EXT)
        return from;
    size_t e = ext_take_from(p, from, map_len(cap));
    return e < cap ? e : cap;
}

/* A mapping for cap bytes (mt_buf_mapped), or NULL if the kernel refuses;
 * one of MT_BUF_HUGE_MIN or more starts on a huge-page boundary, where the
 * kernel (before Linux 6.7) may not have put it. */
static uint8_t *buf_map(size_t cap)
{
    size_t len = map_len(cap);
    int prot = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
    uint8_t *p = mmap(NULL, len, prot, flags, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (cap >= MT_BUF_HUGE_MIN && !ext_aligned(p)) {
        /* 2 MiB more, trimmed to the boundary; where the address space
         * has no room for that (RLIMIT_AS), the first mapping stays, its
         * extents not kept when freed (buf_unmap) */
        uint8_t *q = mmap(NULL, len + EXT, prot, flags, -1, 0);
        if (q != MAP_FAILED) {
            munmap(p, len);
            size_t head = (EXT - ((uintptr_t)q & (EXT - 1))) & (EXT - 1);
            if (head)
                munmap(q, head);
            munmap(q + head + len, EXT - head);
            p = q + head;
        }
    }
    buf_huge(p, cap);
    return p;
}

/* A large buffer's unmapping: its extents back to the pool (those with
 * pages in) where it starts on a huge-page boundary. */
static void buf_unmap(uint8_t *p, size_t cap)
{
    if (cap >= MT_BUF_HUGE_MIN && ext_aligned(p))
        ext_release(p, map_len(cap));
    else
        munmap(p, map_len(cap));
}

/* mt_buf_resize into a mapping (new_cap mapped), or NULL, p untouched,
 * if the kernel refuses it. */
static uint8_t *buf_try_resize(uint8_t *p, size_t old_cap, size_t len, size_t new_cap)
{
    bool old_map = p && mt_buf_mapped(old_cap);
    if (old_map && old_cap < MT_BUF_HUGE_MIN && new_cap < MT_BUF_HUGE_MIN) {
        void *q = mremap(p, map_len(old_cap), map_len(new_cap), MREMAP_MAYMOVE);
        return q == MAP_FAILED ? NULL : q;
    }
    uint8_t *q = buf_map(new_cap);
    if (!q || !p)
        return q;
    if (old_map && old_cap >= MT_BUF_HUGE_MIN && new_cap >= MT_BUF_HUGE_MIN && ext_aligned(p)) {
        /* huge to huge: the extents' page tables move, their bytes stay
         * (one mremap of the whole would need it to be one mapping, and
         * extents taken from the pool are mappings of their own) */
        size_t n = MIN(map_len(old_cap), map_len(new_cap));
        size_t kept = MIN(len, new_cap);
        for (size_t off = 0; off < n; off += EXT) {
            if (ext_move(p + off, q + off))
                continue;
            /* refused: this extent's bytes are copied instead */
            if (off < kept)
                memcpy(q + off, p + off, MIN(EXT, kept - off));
            munmap(p + off, EXT);
        }
        if (map_len(old_cap) > n)
            ext_release(p + n, map_len(old_cap) - n);
        return q;
    }
    /* copy what is kept, into pages asked for at once rather than a trap
     * each */
    (void)mt_buf_populate(q, new_cap, 0, MIN(len, new_cap));
    memcpy(q, p, MIN(len, new_cap));
    mt_buf_free(p, old_cap);
    return q;
}

uint8_t *mt_buf_resize(uint8_t *p, size_t old_cap, size_t len, size_t new_cap)
{
    if (mt_buf_mapped(new_cap)) {
        uint8_t *q = buf_try_resize(p, old_cap, len, new_cap);
        if (!q)
            g_error("mailtap: cannot map a message buffer of %zu bytes", new_cap);
        return q;
    }
    if (!mt_buf_mapped(old_cap))
        return g_realloc(p, new_cap);
    /* from a mapping to the heap */
    uint8_t *q = g_malloc(new_cap);
    memcpy(q, p, MIN(len, new_cap));
    mt_buf_free(p, old_cap);
    return q;
}

/* A new buffer is one resized from nothing: g_malloc, or a mapping (and
 * the same error if the kernel refuses it). */
uint8_t *mt_buf_alloc(size_t cap)
{
    return mt_buf_resize(NULL, 0, 0, cap);
}

void mt_buf_free(uint8_t *p, size_t cap)
{
    if (!p)
        return;
    if (mt_buf_mapped(cap))
        buf_unmap(p, cap);
    else
        g_free(p);
}

void mt_bufpool_put(struct mt_bufpool *bp, uint8_t *data, size_t cap)
{
    if (cap <= MT_MSGBUF_KEEP && bp->nsmall < MT_BUFPOOL_SMALL &&
        bp->small_bytes + cap <= MT_BUFPOOL_BYTES) {
        bp->small[bp->nsmall] = data;
        bp->small_cap[bp->nsmall] = cap;
        bp->nsmall++;
        bp->small_bytes += cap;
    } else {
        mt_buf_free(data, cap);
    }
}

/* Take the kept small buffer i out of the pool. */
static uint8_t *take_small(struct mt_bufpool *bp, unsigned i, size_t *cap)
{
    uint8_t *b = bp->small[i];
    *cap = bp->small_cap[i];
    bp->small_bytes -= *cap;
    bp->nsmall--;
    bp->small[i] = bp->small[bp->nsmall];
    bp->small_cap[i] = bp->small_cap[bp->nsmall];
    return b;
}

/* A kept buffer larger than have with room for need bytes, or NULL;
 * *cap is its size. */
static uint8_t *bufpool_take(struct mt_bufpool *bp, size_t need, size_t have, size_t *cap)
{
    for (unsigned i = bp->nsmall; i-- > 0;)
        if (bp->small_cap[i] >= need && bp->small_cap[i] > have)
            return take_small(bp, i, cap);
    return NULL;
}

void mt_bufpool_free(struct mt_bufpool *bp)
{
    for (unsigned i = 0; i < bp->nsmall; i++)
        mt_buf_free(bp->small[i], bp->small_cap[i]);
    bp->nsmall = 0;
    bp->small_bytes = 0;
}

void mt_msgbuf_init(struct mt_msgbuf *m, uint64_t max, struct mt_bufpool *pool)
{
    memset(m, 0, sizeof(*m));
    m->max = max;
    m->pool = pool;
}

void mt_msgbuf_free(struct mt_msgbuf *m)
{
    mt_buf_free(m->data, m->cap);
    m->data = NULL;
    m->len = m->cap = m->ready = 0;
    m->active = false;
}

void mt_msgbuf_begin(struct mt_msgbuf *m)
{
    m->len = 0;
    m->total = 0;
    m->expect = 0;
    m->truncated = false;
    m->gap = false;
    m->midline = false;
    m->dstate = MT_DOT_BOL;
    m->dprev = '\n';
    m->bare_dots = 0;
    m->active = true;
    m->hashing = false;
    m->hashed = false;
}

void mt_msgbuf_expect(struct mt_msgbuf *m, uint64_t size)
{
    m->expect = MIN(size, m->max);
}

/* From here on the hash follows the appends: what is kept so far goes in
 * first, the bytes past the cap then go only into the hash. */
static void start_hashing(struct mt_msgbuf *m)
{
    mt_sha256_init(&m->sha);
    mt_sha256_update(&m->sha, m->data, m->len);
    m->hashing = true;
}

void mt_msgbuf_hash_now(struct mt_msgbuf *m)
{
    if (m->hashed)
        return;
    mt_msgbuf_sha256_hex(m, m->hex);
    m->hashed = true;
}

bool mt_msgbuf_hash_pending(const struct mt_msgbuf *m)
{
    return !m->hashed && !m->hashing;
}

void mt_msgbuf_sha256_hex(struct mt_msgbuf *m, char out[65])
{
    if (m->hashed)
        memcpy(out, m->hex, sizeof m->hex);
    else if (m->hashing)
        mt_sha256_final_hex(&m->sha, out);
    else
        mt_sha256_hex(m->data, m->len, out);
}

void mt_msgbuf_append(struct mt_msgbuf *m, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    m->total += n;
    size_t keep = n;
    if ((uint64_t)keep > m->max - m->len) { /* len <= max always */
        keep = (size_t)(m->max - m->len);
        m->truncated = true;
        if (!m->hashing)
            start_hashing(m);
    }
    if (m->hashing)
        mt_sha256_update(&m->sha, p, n);
    if (keep == 0)
        return;
    if (keep > m->cap - m->len) {
        /* never past the cap: len + keep <= max */
        size_t max = (uint64_t)m->max < SIZE_MAX ? (size_t)m->max : SIZE_MAX;
        size_t grown = mt_grow_cap(m->cap, MT_MSGBUF_FIRST, m->len + keep, max);
        /* into a mapping: at once to the size announced (expect <= max),
         * in huge pages from its start, not doubled there by mremap */
        bool announced = m->expect > grown && mt_buf_mapped(grown);
        size_t cap = announced ? (size_t)m->expect : grown;
        size_t kept;
        uint8_t *b = m->pool && !announced ? bufpool_take(m->pool, m->len + keep, m->cap, &kept)
                                           : NULL;
        if (b) {
            /* a kept buffer, its pages already in: no growing */
            if (m->len)
                memcpy(b, m->data, m->len);
            mt_buf_free(m->data, m->cap);
            m->data = b;
            m->cap = kept;
            m->ready = m->len;
        } else {
            if (!m->data)
                m->ready = 0;
            /* a mapping grown in place (mremap) keeps its pages; what a
             * heap buffer's bytes were copied to is in up to len */
            else if (!mt_buf_mapped(m->cap))
                m->ready = m->len;
            uint8_t *q = NULL;
            if (announced) {
                /* a size the kernel will not map (an address-space limit,
                 * strict overcommit) is dropped: the message grows as if
                 * nothing had been announced */
                q = buf_try_resize(m->data, m->cap, m->len, cap);
                if (!q) {
                    m->expect = 0;
                    cap = grown;
                }
            }
            m->data = q ? q : mt_buf_resize(m->data, m->cap, m->len, cap);
            m->cap = cap;
        }
    }
    if (m->len + keep > m->ready)
        m->ready = mt_buf_populate(m->data, m->cap, m->ready, m->len + keep + MT_BUF_AHEAD);
    memcpy(m->data + m->len, p, keep);
    m->len += keep;
}

bool mt_msgbuf_dotline(struct mt_msgbuf *m, const uint8_t *line, size_t n,
                       const uint8_t *eol, size_t eol_len, bool partial)
{
    bool at_start = !m->midline;
    m->midline = partial;
    if (at_start && !partial && n == 1 && line[0] == '.')
        return true;
    if (at_start && n > 0 && line[0] == '.') {
        line++;
        n--;
    }
    mt_msgbuf_append(m, line, n);
    mt_msgbuf_append(m, eol, eol_len);
    return false;
}

/* The end of the run of body bytes that starts at p[i] in the middle of a
 * line: the first '.' that begins a line, or n.  Only dots are searched
 * for (base64 has none), not every line end. */
static size_t dot_run_end(const uint8_t *p, size_t i, size_t n)
{
    size_t j = i;
    for (;;) {
        const uint8_t *dot = memchr(p + j, '.', n - j);
        if (!dot)
            return n;
        size_t d = (size_t)(dot - p);
        if (d > i && p[d - 1] == '\n')
            return d;
        j = d + 1;
    }
}

/* crlf_dots: the same, where a line starts only after CRLF (prev: the
 * byte before p[i]); also stops at a dot after a bare LF (*bare set), which
 * the caller keeps as the message's own but watches for a "." line. */
static size_t dot_run_end_crlf(const uint8_t *p, size_t i, size_t n, uint8_t prev, bool *bare)
{
    size_t j = i;
    for (;;) {
        const uint8_t *dot = memchr(p + j, '.', n - j);
        if (!dot)
            return n;
        size_t d = (size_t)(dot - p);
        if (d > i && p[d - 1] == '\n') {
            *bare = (d - 1 > i ? p[d - 2] : prev) != '\r';
            return d;
        }
        j = d + 1;
    }
}

/* crlf_dots: a "." line next to a bare LF ends here, its LF the message's
 * own; counted in bare_dots for the caller to report. */
static void dot_bare_line(struct mt_msgbuf *m, uint8_t next)
{
    static const uint8_t lf = '\n';
    m->bare_dots++;
    mt_msgbuf_append(m, &lf, 1);
    m->dstate = next;
}

size_t mt_msgbuf_dotbody(struct mt_msgbuf *m, const uint8_t *p, size_t n, bool *done)
{
    static const uint8_t cr = '\r';
    size_t i = 0;
    *done = false;
    while (i < n) {
        switch (m->dstate) {
        case MT_DOT_MID: {
            /* whole lines at once, up to a dot that starts a line: one
             * append (copy and hash) per run instead of one per line */
            bool bare = false;
            size_t end = m->crlf_dots ? dot_run_end_crlf(p, i, n, m->dprev, &bare)
                                      : dot_run_end(p, i, n);
            mt_msgbuf_append(m, p + i, end - i);
            if (end < n && bare) { /* a dot after a bare LF: the message's own */
                mt_msgbuf_append(m, p + end, 1);
                m->dstate = MT_DOT_BDOT;
                i = end + 1;
            } else if (end < n) { /* p[end] is a line's first byte, a dot */
                m->dstate = MT_DOT_DOT;
                i = end + 1;
            } else {
                uint8_t before = n - 1 > i ? p[n - 2] : m->dprev;
                if (p[n - 1] != '\n')
                    m->dstate = MT_DOT_MID;
                else if (!m->crlf_dots || before == '\r')
                    m->dstate = MT_DOT_BOL;
                else
                    m->dstate = MT_DOT_BLF;
                m->dprev = p[n - 1];
                i = n;
            }
            break;
        }
        case MT_DOT_BLF: /* crlf_dots, after a bare LF */
            if (p[i] == '.') {
                mt_msgbuf_append(m, p + i, 1);
                m->dstate = MT_DOT_BDOT;
                i++;
            } else {
                m->dstate = MT_DOT_MID;
                m->dprev = '\n';
            }
            break;
        case MT_DOT_BDOT: /* crlf_dots, a dot after a bare LF, kept */
            if (p[i] == '\n') { /* "\n.\n" */
                dot_bare_line(m, MT_DOT_BLF);
                i++;
            } else if (p[i] == '\r') {
                m->dstate = MT_DOT_BDOTCR;
                i++;
            } else {
                m->dstate = MT_DOT_MID;
                m->dprev = '.';
            }
            break;
        case MT_DOT_BDOTCR: /* crlf_dots, "\n.\r" kept so far but the CR */
            mt_msgbuf_append(m, &cr, 1);
            if (p[i] == '\n') { /* "\n.\r\n" */
                dot_bare_line(m, MT_DOT_BOL);
                i++;
            } else {
                m->dstate = MT_DOT_MID;
                m->dprev = '\r';
            }
            break;
        case MT_DOT_BOL:
            if (p[i] == '.') { /* stuffing dot or terminator: not part of the message */
                m->dstate = MT_DOT_DOT;
                i++;
            } else {
                m->dstate = MT_DOT_MID;
                m->dprev = '\n';
            }
            break;
        case MT_DOT_DOT:
            if (p[i] == '\r') {
                m->dstate = MT_DOT_DOTCR;
                i++;
            } else if (p[i] == '\n' && m->crlf_dots) {
                /* "\r\n.\n": the dot starts a line that goes on (stuffing) */
                dot_bare_line(m, MT_DOT_BLF);
                i++;
            } else if (p[i] == '\n') { /* ".\n": tolerated terminator */
                m->dstate = MT_DOT_BOL;
                *done = true;
                return i + 1;
            } else {
                m->dstate = MT_DOT_MID; /* the dot was stuffing */
                m->dprev = '.';
            }
            break;
        case MT_DOT_DOTCR:
            if (p[i] == '\n') {
                m->dstate = MT_DOT_BOL;
                *done = true;
                return i + 1;
            }
            mt_msgbuf_append(m, &cr, 1); /* ".\r" then more: the dot was stuffing */
            m->dstate = MT_DOT_MID;
            m->dprev = '\r';
            break;
        }
    }
    return n;
}
