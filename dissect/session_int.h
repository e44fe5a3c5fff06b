/* Private to session.c and engine.c. */
#ifndef MT_SESSION_INT_H
#define MT_SESSION_INT_H

#include <glib.h>

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
    struct mt_bufpool msgpool; /* a big message buffer kept for the next one */
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
};

struct mt_sess *mt_sess_new(struct mt_engine *e, struct mt_flow *f, const struct mt_packet *pk);
void mt_sess_data(struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n,
                  const struct mt_packet *pk);
void mt_sess_gap(struct mt_sess *s, enum mt_dir dir, uint64_t off, uint64_t len,
                 const struct mt_packet *pk);
void mt_sess_close(struct mt_sess *s, enum mt_close_reason why, const struct mt_packet *pk);
void mt_sess_reasm_anomaly(struct mt_sess *s, enum mt_dir dir, enum mt_anomaly a,
                           const char *detail, const struct mt_packet *pk);

#endif
