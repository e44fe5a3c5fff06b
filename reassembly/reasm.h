/* TCP flow table and per-direction stream reassembly.  Bytes come out
 * strictly in order, through callbacks, with the timestamp and number of
 * the packet that completed them; a hole that is never filled comes out
 * as an explicit gap.  No global state: everything hangs off one table. */
#ifndef MT_REASM_H
#define MT_REASM_H

#include <stdbool.h>
#include <stdint.h>

#include "capture.h"
#include "event.h"
#include "caps.h"

struct mt_reasm;

/* One TCP connection.  side[0] is the client, side[1] the server, as far
 * as the reassembler can tell (SYN, else ports); the dissector layer may
 * swap them once on content, before any byte was delivered. */
struct mt_flow {
    uint64_t id;                  /* number of the packet that opened the flow */
    struct mt_endpoint ep[2];     /* ep[MT_C2S] client, ep[MT_S2C] server */
    bool handshake;               /* SYN or SYN/ACK seen */
    bool closed;                  /* FIN both ways or RST */
    int64_t first_us, last_us;
    uint64_t packets;
    void *user;                   /* the dissector layer's session */
};

enum mt_close_reason {
    MT_CLOSE_FIN = 0,             /* both directions finished */
    MT_CLOSE_RST,
    MT_CLOSE_IDLE,                /* idle timeout */
    MT_CLOSE_EVICT,               /* flow table full */
    MT_CLOSE_REUSE,               /* a new SYN on the same ports */
    MT_CLOSE_END,                 /* end of input */
};

struct mt_reasm_ops {
    /* A new flow: set f->user. */
    void (*open)(void *ud, struct mt_flow *f, const struct mt_packet *pk);
    /* In-order bytes of one direction. */
    void (*data)(void *ud, struct mt_flow *f, enum mt_dir dir, const uint8_t *p, size_t n,
                 const struct mt_packet *pk);
    /* len bytes missing at stream offset off of direction dir. */
    void (*gap)(void *ud, struct mt_flow *f, enum mt_dir dir, uint64_t off, uint64_t len,
                const struct mt_packet *pk);
    /* Reassembly-level anomaly (overlap_conflict, ooo_overflow, ...). */
    void (*anomaly)(void *ud, struct mt_flow *f, enum mt_dir dir, enum mt_anomaly a,
                    const char *detail, const struct mt_packet *pk);
    /* The flow is over (everything delivered): free f->user.  pk is the
     * packet that ended it, or NULL (idle, eviction, end of input). */
    void (*close)(void *ud, struct mt_flow *f, enum mt_close_reason why,
                  const struct mt_packet *pk);
};

struct mt_reasm_stats {
    uint64_t flows;               /* flows created */
    uint64_t live, live_max;
    uint64_t evicted, idled;
    uint64_t ooo_overflows;
    uint64_t gaps, gap_bytes;
    uint64_t conflicts;
    uint64_t hist_copied;         /* bytes copied into retransmission-check histories */
    uint64_t hist_held;           /* bytes of history rings the flows hold now */
    uint64_t ignored;             /* segments without a flow and without SYN or data */
};

struct mt_reasm *mt_reasm_new(const struct mt_limits *lim, const struct mt_reasm_ops *ops,
                              void *ud);
/* Frees without flushing (use mt_reasm_flush first). */
void mt_reasm_free(struct mt_reasm *r);

void mt_reasm_packet(struct mt_reasm *r, const struct mt_packet *pk);
/* A packet of another shard (--workers): its time moves this table's
 * clock, and closes the flows idle by it, as the packet would have in one
 * table holding every flow; nothing else of it is looked at. */
void mt_reasm_clock(struct mt_reasm *r, int64_t ts_us);

/* Closes flows idle for longer than the idle timeout at time now_us. */
void mt_reasm_expire(struct mt_reasm *r, int64_t now_us);

/* End of input: delivers what every flow holds (gaps included) and closes it. */
void mt_reasm_flush(struct mt_reasm *r);

/* Bytes in [lo, hi) stay readable and unchanged until the next call (a
 * capture file's window): the histories kept to check
 * retransmissions refer to delivered bytes in there instead of copying
 * them.  Each call first copies what they still refer to; (NULL, NULL)
 * before the bytes go away.  Without it every delivered byte is copied. */
void mt_reasm_pin(struct mt_reasm *r, const uint8_t *lo, const uint8_t *hi);

/* The dissector layer decided the roles are the other way round. */
void mt_reasm_swap(struct mt_reasm *r, struct mt_flow *f);

const struct mt_reasm_stats *mt_reasm_stats(const struct mt_reasm *r);

#endif
