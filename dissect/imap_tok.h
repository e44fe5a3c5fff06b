/* The IMAP tokenizer (RFC 9051 4, RFC 3501 4, RFC 7888 literals, RFC 3516
 * binary literals), one per direction.  Fed whatever bytes arrived, it
 * frames them with the shared framer (lines, and literals in raw mode so
 * that a literal's bytes are never read as syntax) and hands out tokens
 * one at a time through a callback; a logical line (a command or a
 * response, with all its literals) ends with IMAP_TOK_EOL.
 *
 * Caps: lines at line_max (line_too_long), literal contents handed out up
 * to literal_max bytes (literal_too_large; the rest is skipped, never
 * stored), parenthesised lists nested up to nest_max (imap_nesting; deeper
 * tokens are dropped), the display copy of a logical line at display_max.
 * Nothing is allocated from a size the input declares. */
#ifndef MT_IMAP_TOK_H
#define MT_IMAP_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomaly.h"

enum imap_tok_type {
    IMAP_TOK_ATOM = 1,     /* atom, number, NIL, flag, "BODY[1.2]<0>", "[CODE ...]" */
    IMAP_TOK_QUOTED,       /* quoted string, unescaped (\" and \\) */
    IMAP_TOK_LPAREN,
    IMAP_TOK_RPAREN,
    IMAP_TOK_LITERAL,      /* {n}, {n+}, {n-} or ~{n}: size and flags; data follows */
    IMAP_TOK_LITERAL_DATA, /* a piece of the literal's bytes (the first literal_max) */
    IMAP_TOK_LITERAL_END,  /* all n bytes went by (or a gap ended the literal) */
    IMAP_TOK_TEXT,         /* server side: resp-text after OK/NO/BAD/PREAUTH/BYE or "+" */
    IMAP_TOK_EOL,          /* the logical line is complete */
};

#define IMAP_TOK_NONSYNC  0x01u /* {n+} (RFC 7888 LITERAL+) or {n-} (LITERAL-) */
#define IMAP_TOK_BINARY   0x02u /* ~{n} (RFC 3516) */
#define IMAP_TOK_CAPPED   0x04u /* literal longer than literal_max: bytes past it skipped */
#define IMAP_TOK_GAP      0x08u /* LITERAL_END / EOL: bytes were lost in the stream */
#define IMAP_TOK_UNCLOSED 0x10u /* QUOTED: no closing quote before the end of the line */
#define IMAP_TOK_REFUSED  0x20u /* LITERAL_END: imap_tok_cancel_literal(), no bytes came */

struct imap_token {
    enum imap_tok_type type;
    const uint8_t *p;      /* bytes (valid during the callback only), or NULL */
    size_t n;
    unsigned index;        /* position among the top-level items of the logical line */
    unsigned depth;        /* parenthesis depth (0 = top level); LPAREN: depth inside */
    uint64_t size;         /* LITERAL: declared size; LITERAL_END: bytes that went by */
    unsigned flags;
};

typedef void (*imap_tok_cb)(void *ud, const struct imap_token *t);

struct imap_tok_cfg {
    bool server;           /* responses: resp-text after a status word is TEXT */
    uint32_t line_max;
    uint64_t literal_max;
    uint32_t nest_max;
    uint32_t display_max;  /* bytes of the logical line kept for display */
    imap_tok_cb cb;
    void *ud;
    mt_anomaly_cb anomaly;
    void *anomaly_ud;
};

struct imap_tok;

struct imap_tok *imap_tok_new(const struct imap_tok_cfg *cfg);
void imap_tok_free(struct imap_tok *t);

/* Consumes p[0..n) and returns how many bytes were used: all of them,
 * unless a callback called imap_tok_pause() (then the bytes after the
 * item being processed are left to the caller: COMPRESS, STARTTLS). */
size_t imap_tok_feed(struct imap_tok *t, const uint8_t *p, size_t n);

/* From inside a callback: stop imap_tok_feed after the current item. */
void imap_tok_pause(struct imap_tok *t);

/* len bytes are missing here.  Inside a literal they are counted against
 * it (the LITERAL_END then carries IMAP_TOK_GAP); otherwise the logical
 * line in progress is ended (EOL with IMAP_TOK_GAP) and input resumes at
 * the next line.  Returns true if the gap fell inside a literal. */
bool imap_tok_gap(struct imap_tok *t, uint64_t len);

/* The logical line is waiting for a synchronising literal's bytes, none
 * of which came yet (the sender waits for "+"). */
bool imap_tok_awaiting_literal(const struct imap_tok *t);

/* The server refused the synchronising literal (tagged NO/BAD instead of
 * "+"): its bytes will not come.  Ends the logical line (EOL). */
void imap_tok_cancel_literal(struct imap_tok *t);

/* The logical line so far, as sent: line text, and each literal preceded
 * by CRLF when it is at most 256 printable bytes (larger or binary
 * literals are left out: the "{n}" stays).  Capped at display_max. */
const uint8_t *imap_tok_display(const struct imap_tok *t, size_t *n);

/* Bytes of the logical line in progress (0 between lines). */
bool imap_tok_in_line(const struct imap_tok *t);

#endif
