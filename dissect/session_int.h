/* Private to session.c and engine.c. */
#ifndef MT_SESSION_INT_H
#define MT_SESSION_INT_H

#include <glib.h>

#include "defer.h"
#include "engine.h"
#include "message.h"
#include "session.h"

enum mt_phase {
    MT_PHASE_DETECT = 0, /* buffering the first bytes to recognise the protocol */
    MT_PHASE_DISSECT,    /* handing bytes to the dissector */
    MT_PHASE_PASSIVE,    /* TLS or unknown: bytes counted only */
};

struct mt_engine {
    struct mt_limits lim;
    mt_sink_fn sink;
    void *sink_ud;
    mt_stream_fn stream_fn;
    void *stream_ud;
    struct mt_reasm *reasm;
    int64_t last_ts;
    struct mt_bufpool msgpool; /* small message buffers kept for the next ones */
    mt_defer_fn defer_fn;      /* set: finished messages are handed over (defer.c) */
    void *defer_ud;
    uint64_t defer_seq;        /* last mt_sess.defer_key given */
    uint32_t inflating;        /* sessions holding zlib state (inflate_max) */
    /* emptied strings given back by closed sessions (mt_sess_string) */
    GString *strings[MT_CAP_STRING_POOL];
    unsigned nstrings;
};

struct mt_chunk; /* detection buffer entry */

struct mt_sess {
    struct mt_session_info info;
    struct mt_engine *eng;
    struct mt_flow *flow;
    enum mt_phase phase;
    const struct mt_dissector *d;
    void *dst;
    bool started;         /* session-start event sent */
    GPtrArray *chunks;    /* struct mt_chunk*, in arrival order, while detecting */
    size_t chunk_bytes[2];
    uint64_t cur_pkt;
    int64_t cur_ts;
    enum mt_dir cur_dir;
    uint64_t anomaly_sent[2]; /* bit per enum mt_anomaly: event already emitted */
    uint64_t defer_key;   /* a message was handed over: the session's key there, else 0 */
};

struct mt_sess *mt_sess_new(struct mt_engine *e, struct mt_flow *f, const struct mt_packet *pk);
void mt_sess_data(struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n,
                  const struct mt_packet *pk);
void mt_sess_gap(struct mt_sess *s, enum mt_dir dir, uint64_t off, uint64_t len,
                 const struct mt_packet *pk);
void mt_sess_close(struct mt_sess *s, enum mt_close_reason why, const struct mt_packet *pk);
void mt_sess_reasm_anomaly(struct mt_sess *s, enum mt_dir dir, enum mt_anomaly a,
                           const char *detail, const struct mt_packet *pk);

/* How a finished message is analyzed and reported, the same code on both
 * sides of a hand-over: anomaly(ud, ...) counts and reports an anomaly of
 * the message's direction, emit(ud, ev) fills in the session fields and
 * sends ev on. */
struct mt_msg_report {
    const struct mt_limits *lim;
    mt_anomaly_cb anomaly;
    void (*emit)(void *ud, struct mt_event *ev);
    void *ud;
};
/* MIME, hash and the message event; leaves mb's bytes in place. */
void mt_msg_report_run(const struct mt_msg_report *r, struct mt_msgbuf *mb,
                       struct mt_message *meta);

/* defer.c: hands a finished message (mb's buffer is taken) or the
 * session's end over to the engine's defer_fn. */
void mt_defer_message(struct mt_sess *s, struct mt_msgbuf *mb, const struct mt_message *meta);
void mt_defer_end(struct mt_sess *s);

#endif
