/* Collecting one message's bytes: a copy up to the in-memory cap, and the
 * size and SHA-256 of all of them.  Dot-unstuffing (SMTP DATA, POP3 RETR
 * and TOP) is done here, once for both protocols. */
#ifndef MT_MESSAGE_H
#define MT_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

/* A message buffer up to this size stays with its session for the next
 * message; a larger one is freed once its message is reported. */
#define MT_MSGBUF_KEEP (1024 * 1024)

/* A message buffer's first allocation; it doubles from there.  Most
 * messages of short sessions are under 512 bytes, and with 100,000
 * sessions in the middle of one each, a larger start is what the peak
 * RSS is made of (docs/caps.md). */
#define MT_MSGBUF_FIRST 512

/* Buffers kept for reuse between messages (one pool per engine), so that
 * a message does not grow a new buffer by copying reallocations and
 * faulting its pages in again: when messages are analyzed on another
 * thread (defer.h), their buffers come back here once it is done with
 * them, up to MT_BUFPOOL_SMALL of MT_MSGBUF_KEEP or less and
 * MT_BUFPOOL_BYTES of them in all, for the next messages of any session.
 * A larger one is freed (its huge-page extents, if it has them, go to
 * the extent pool, MT_BUF_POOL_EXTENTS): the largest was kept whole
 * until 2026-12-07, and while it sat idle it was a whole large message
 * more in peak RSS; a large message's buffer is now made at once to the
 * size its protocol announced (mt_msgbuf_expect), which took more off
 * the run than the reuse had (bench/README.md). */
#define MT_BUFPOOL_SMALL 16
#define MT_BUFPOOL_BYTES (1024 * 1024)

/* Message buffers (and decoded parts, mime_int.h) are allocated, resized
 * and freed only through these, with their exact capacity.  One of more
 * than MT_BUF_MAP_MIN bytes is mapped from the kernel and unmapped when
 * freed, never kept in a malloc heap: the command's allocator (mimalloc,
 * see README) keeps freed memory for reuse, and peak RSS would then
 * follow the high-water mark of the large messages in flight on every
 * thread (docs/caps.md).  Under the sanitizers they are plain g_malloc, so
 * that overruns are still seen. */
#define MT_BUF_MAP_MIN (64 * 1024)
/* A mapped buffer's pages cost a trap each when first written, and on a
 * virtual machine a trap can cost more than clearing the page: the copy
 * of the benchmark's 5 MB messages into their buffers, with its faults,
 * was 40 % of the reading thread's samples on one host (bench/README.md).
 * So a mapped message buffer asks the kernel for its pages MT_BUF_AHEAD
 * bytes at a time before they are written (MADV_POPULATE_WRITE), and one
 * of MT_BUF_HUGE_MIN bytes or more asks for transparent huge pages
 * (MADV_HUGEPAGE: one trap and one 2 MiB page for 512 small ones).  The
 * pages in beyond the bytes written are at most MT_BUF_AHEAD, or up to the
 * end of the last huge page, and never past the buffer's capacity
 * (docs/caps.md). */
#define MT_BUF_AHEAD (256 * 1024)
#define MT_BUF_HUGE_MIN (2 * 1024 * 1024)
/* The 2 MiB extents of a freed buffer of MT_BUF_HUGE_MIN bytes or more
 * whose pages are in are kept, up to this many for the process (one pool
 * under a lock), and the next large buffer takes them by moving their
 * page tables (mremap) instead of asking for new pages: the kernel
 * clears a new page before handing it out, and that clearing was 8 to
 * 10 % of the default mode's samples on the benchmark's mixed capture
 * (bench/README.md).  They count in RSS while kept, but only pages that
 * were in use before: a buffer takes the kept ones before new ones, so
 * the pages in use and kept together never pass the most that was in use
 * at once. */
#define MT_BUF_POOL_EXTENTS 8
/* Whether a buffer of cap bytes is a mapping of its own (not under the
 * sanitizers). */
bool mt_buf_mapped(size_t cap);
uint8_t *mt_buf_alloc(size_t cap);
/* p (old_cap bytes, or NULL) with room for new_cap; its first len bytes
 * kept. */
uint8_t *mt_buf_resize(uint8_t *p, size_t old_cap, size_t len, size_t new_cap);
void mt_buf_free(uint8_t *p, size_t cap);
/* Brings in the pages of p[from, to) of a buffer of cap bytes, if it is
 * mapped, before they are written (nothing is written from from on):
 * whole extents not begun yet from the kept ones first, then new pages.
 * Returns how far they now are in (to rounded up to a page, or the end of
 * the last kept extent taken; at most cap), or from when nothing was
 * asked.  Pages the kernel refuses come in by faults. */
size_t mt_buf_populate(uint8_t *p, size_t cap, size_t from, size_t to);

/* Moves kept extents (MT_BUF_POOL_EXTENTS) into p, a buffer of cap bytes,
 * from its offset from (a multiple of MT_BUF_HUGE_MIN, nothing written
 * there yet) on while there are any: pages already in memory, so none is
 * cleared for it and none is added to what the process holds.  Returns
 * how far p's pages are now in (at most cap), or from. */
size_t mt_buf_take_kept(uint8_t *p, size_t cap, size_t from);

/* How many extents are kept now; and unmapping them all. */
unsigned mt_buf_kept(void);
void mt_buf_drop_kept(void);

struct mt_bufpool {
    uint8_t *small[MT_BUFPOOL_SMALL];
    size_t small_cap[MT_BUFPOOL_SMALL];
    unsigned nsmall;
    size_t small_bytes;
};

/* Keeps data (cap bytes, from mt_buf_alloc) while it is small enough and
 * there is room, or frees it. */
void mt_bufpool_put(struct mt_bufpool *bp, uint8_t *data, size_t cap);
void mt_bufpool_free(struct mt_bufpool *bp);

struct mt_msgbuf {
    uint8_t *data;
    size_t len, cap;
    size_t ready;       /* data's pages are in up to here (mt_buf_populate) */
    uint64_t max;       /* bytes kept in memory */
    uint64_t total;     /* bytes seen */
    uint64_t expect;    /* the size announced for the message (mt_msgbuf_expect), or 0 */
    bool truncated;     /* total > max */
    bool gap;           /* bytes were lost inside the message */
    bool active;
    bool midline;       /* dotline: the last piece did not end its line */
    uint8_t dstate;     /* dotbody: MT_DOT_* */
    uint8_t dprev;      /* dotbody: the body byte before the next one */
    bool crlf_dots;     /* dotbody: only CRLF starts a line (SMTP, RFC 5321) */
    uint32_t bare_dots; /* dotbody, crlf_dots: dot lines after a bare LF seen */
    /* The SHA-256 of all bytes seen.  While everything is kept, the kept
     * bytes are hashed once, at the end (mt_msgbuf_sha256_hex), wherever
     * the message is analyzed; past the cap, sha follows the appends. */
    bool hashing;       /* sha holds every byte seen so far */
    bool hashed;        /* hex is the final hash (mt_msgbuf_hash_now) */
    struct mt_sha256 sha;
    char hex[65];
    struct mt_bufpool *pool; /* where a larger buffer may be taken from, or NULL */
};

/* max: bytes kept in memory; pool (or NULL): a growing buffer takes the
 * pool's when that is large enough. */
void mt_msgbuf_init(struct mt_msgbuf *m, uint64_t max, struct mt_bufpool *pool);
void mt_msgbuf_free(struct mt_msgbuf *m);
/* Starts a new message (drops any previous content). */
void mt_msgbuf_begin(struct mt_msgbuf *m);
/* The size the protocol announced for the message just begun (SMTP's
 * SIZE=, an IMAP literal, POP3's octets), a hint only.  Once the message
 * outgrows the heap (MT_BUF_MAP_MIN), its mapping is made that large (at
 * most max) at once, where it would double its way there by mremap: each
 * step moves the pages and flushes the TLB of every core the process runs
 * on, and the small pages of the first steps stayed small.  On the
 * benchmark's captures this took a fifth to a third off the run
 * (bench/README.md).  A wrong size costs address space, not memory: pages
 * come in as the bytes are written (MT_BUF_AHEAD, or to the end of the
 * huge page), and a message larger than announced grows on from there.
 * A size the kernel will not map (an address-space limit, strict
 * overcommit) is dropped, and the message grows as if unannounced. */
void mt_msgbuf_expect(struct mt_msgbuf *m, uint64_t size);
void mt_msgbuf_append(struct mt_msgbuf *m, const uint8_t *p, size_t n);
/* The SHA-256 of every byte appended since begin (also those past the
 * cap), as 64 hex digits; once per message, at its end. */
void mt_msgbuf_sha256_hex(struct mt_msgbuf *m, char out[65]);
/* Computes that hash now, at the message's end, for a later
 * mt_msgbuf_sha256_hex to copy: the reading thread does it when the
 * message thread is behind (cli/pipeline.c). */
void mt_msgbuf_hash_now(struct mt_msgbuf *m);
/* True when the hash is that of the kept bytes and not computed yet: the
 * caller may compute it from data[0..len) itself (as mt_msg_report_run
 * does, beside the parts'). */
bool mt_msgbuf_hash_pending(const struct mt_msgbuf *m);

/* A line of a dot-stuffed body (RFC 5321 4.5.2, RFC 1939 3), without its
 * end-of-line (a framer item).  Returns true if it is the terminating "."
 * line; otherwise appends the line (with one leading dot removed when it
 * starts a line) and eol.  partial: the line goes on in the next call. */
bool mt_msgbuf_dotline(struct mt_msgbuf *m, const uint8_t *line, size_t n,
                       const uint8_t *eol, size_t eol_len, bool partial);

/* States of mt_msgbuf_dotbody. */
enum { MT_DOT_BOL = 0, MT_DOT_MID, MT_DOT_DOT, MT_DOT_DOTCR, MT_DOT_BLF, MT_DOT_BDOT, MT_DOT_BDOTCR };

/* The fast path for a dot-stuffed body: consumes raw stream bytes in bulk
 * (no line framing), removing the stuffing dot at the start of lines and
 * stopping after the terminating "." line (CRLF.CRLF, also with bare LF).
 * With m->crlf_dots (SMTP), a line starts only after CRLF, as RFC 5321
 * 2.3.8 and 4.1.1.4 have it: only CRLF.CRLF ends the body and a dot after
 * a bare LF is the message's own; a "." line next to a bare LF ("\n.\n",
 * "\n.\r\n", "\r\n.\n": what SMTP smuggling sends) is counted in
 * m->bare_dots for the caller to report.
 * Returns the bytes consumed; *done is set when the body ended (the bytes
 * after the terminator are not consumed).  The state survives between
 * calls, so the body may be cut anywhere. */
size_t mt_msgbuf_dotbody(struct mt_msgbuf *m, const uint8_t *p, size_t n, bool *done);
/* After a gap inside a body: the next bytes are not known to start a line. */
static inline void mt_msgbuf_dotgap(struct mt_msgbuf *m) { m->dstate = MT_DOT_MID; m->dprev = 0; m->gap = true; }

#endif
