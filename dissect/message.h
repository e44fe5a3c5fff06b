/* Collecting one message's bytes: a copy up to the in-memory cap, and the
 * size and SHA-256 of all of them.  Dot-unstuffing (SMTP DATA, POP3 RETR
 * and TOP) is done here, once for both protocols. */
#ifndef MT_MESSAGE_H
#define MT_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

struct mt_msgbuf {
    uint8_t *data;
    size_t len, cap;
    uint64_t max;       /* bytes kept in memory */
    uint64_t total;     /* bytes seen */
    bool truncated;     /* total > max */
    bool gap;           /* bytes were lost inside the message */
    bool active;
    bool midline;       /* dotline: the last piece did not end its line */
    struct mt_sha256 sha;
};

void mt_msgbuf_init(struct mt_msgbuf *m, uint64_t max);
void mt_msgbuf_free(struct mt_msgbuf *m);
/* Starts a new message (drops any previous content). */
void mt_msgbuf_begin(struct mt_msgbuf *m);
void mt_msgbuf_append(struct mt_msgbuf *m, const uint8_t *p, size_t n);

/* A line of a dot-stuffed body (RFC 5321 4.5.2, RFC 1939 3), without its
 * end-of-line (a framer item).  Returns true if it is the terminating "."
 * line; otherwise appends the line (with one leading dot removed when it
 * starts a line) and eol.  partial: the line goes on in the next call. */
bool mt_msgbuf_dotline(struct mt_msgbuf *m, const uint8_t *line, size_t n,
                       const uint8_t *eol, size_t eol_len, bool partial);

#endif
