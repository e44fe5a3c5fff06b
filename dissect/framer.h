/* The line/literal framer shared by smtp.c, pop3.c and imap.c (tcpdump's
 * txtproto, curl's pingpong): fed whatever bytes arrived, it yields
 * complete lines (zero-copy where the line lies inside the input) and, in
 * raw mode, counted byte runs (BDAT chunks, IMAP literals).  A partial
 * line is kept between inputs, never more than line_max bytes: a longer
 * line is handed out truncated (MT_LINE_TRUNCATED) and the rest is skipped
 * up to the next LF. */
#ifndef MT_FRAMER_H
#define MT_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mt_item_kind { MT_ITEM_LINE = 1, MT_ITEM_RAW };

#define MT_LINE_BARE_LF   0x01u /* ended by LF alone */
#define MT_LINE_TRUNCATED 0x02u /* longer than line_max: p holds the first line_max bytes */
#define MT_LINE_NUL       0x04u /* holds a NUL byte */
#define MT_LINE_BARE_CR   0x08u /* holds a CR not followed by LF */
#define MT_LINE_PARTIAL   0x10u /* chunked mode: a piece of a long line, more follows */

struct mt_item {
    enum mt_item_kind kind;
    const uint8_t *p; /* line without its end-of-line, or raw bytes */
    size_t n;
    const uint8_t *eol; /* the end-of-line bytes as sent ("\r\n" or "\n"), lines only */
    size_t eol_len;
    unsigned flags;
};

struct mt_framer {
    uint8_t *buf;          /* partial line carried over from earlier input */
    size_t len, cap;
    const uint8_t *in;     /* current input, not owned */
    size_t in_len, in_off;
    uint64_t raw_left;     /* > 0: that many bytes are handed out raw */
    uint32_t line_max;
    bool skipping;         /* dropping the tail of an overlong line */
    bool chunked;          /* message bodies: overlong lines come in pieces, none dropped */
};

void mt_framer_init(struct mt_framer *f, uint32_t line_max);
void mt_framer_free(struct mt_framer *f);

/* Starts consuming a new input; the previous one must be exhausted. */
void mt_framer_input(struct mt_framer *f, const uint8_t *p, size_t n);

/* Next line or raw run from the input; false when the input is used up
 * (a partial line has then been saved).  The item is valid until the next
 * call. */
bool mt_framer_next(struct mt_framer *f, struct mt_item *it);

/* The next n bytes (from wherever they arrive) are raw. */
void mt_framer_raw(struct mt_framer *f, uint64_t n);

/* Message-body mode (SMTP DATA, POP3 RETR): a line longer than line_max
 * is handed out in pieces flagged MT_LINE_PARTIAL instead of truncated. */
static inline void mt_framer_chunked(struct mt_framer *f, bool on) { f->chunked = on; }

/* Forgets the partial line and any raw count: after a gap. */
void mt_framer_reset(struct mt_framer *f);

#endif

#ifndef MT_LINES_DEFINED
#define MT_LINES_DEFINED
#include "event.h"
/* A multi-line reply being collected: copies of the lines, capped in
 * count (the caller raises reply_too_long when mt_lines_add says no). */
struct mt_lines {
    uint8_t *buf;
    size_t len, cap;
    struct mt_bytes *v;  /* pointers fixed up by mt_lines_view */
    size_t *off;
    size_t n, vcap;
    uint32_t max;
    uint64_t dropped;    /* lines past the cap */
};
void mt_lines_init(struct mt_lines *l, uint32_t max);
void mt_lines_free(struct mt_lines *l);
void mt_lines_clear(struct mt_lines *l);
/* false when the count cap is reached (the line is dropped). */
bool mt_lines_add(struct mt_lines *l, const uint8_t *p, size_t n);
/* The lines as mt_bytes, valid until the next add or clear. */
const struct mt_bytes *mt_lines_view(struct mt_lines *l);
#endif
