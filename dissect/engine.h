/* The engine the CLI and the Wireshark plugin share: TCP segments in,
 * events out.  capture -> reassembly -> dissect -> sink. */
#ifndef MT_ENGINE_H
#define MT_ENGINE_H

#include <stdint.h>

#include "capture.h"
#include "event.h"
#include "caps.h"
#include "reasm.h"

struct mt_engine;

struct mt_engine *mt_engine_new(const struct mt_limits *lim, mt_sink_fn sink, void *ud);
void mt_engine_free(struct mt_engine *e);

/* Optional: every in-order byte of every session (for --write-streams). */
typedef void (*mt_stream_fn)(void *ud, const struct mt_session_info *s, enum mt_dir dir,
                             const uint8_t *p, size_t n);
void mt_engine_set_stream_hook(struct mt_engine *e, mt_stream_fn fn, void *ud);

/* An mt_packet_cb: ud is the engine. */
void mt_engine_packet(void *engine, const struct mt_packet *pk);
/* A packet of a flow another engine analyzes (--workers): only its time
 * counts here, for idle expiry (mt_reasm_clock), so that every shard's
 * flows expire where they would in one engine. */
void mt_engine_clock(struct mt_engine *e, const struct mt_packet *pk);

/* An mt_window_cb: ud is the engine.  Packets whose bytes stay readable
 * (mt_source_set_window_cb) are not copied to check retransmissions
 * (mt_reasm_pin). */
void mt_engine_window(void *engine, const uint8_t *lo, const uint8_t *hi);

/* Closes flows idle at time now_us (live capture calls this on a timer). */
void mt_engine_expire(struct mt_engine *e, int64_t now_us);

/* End of input: flushes and reports every open session. */
void mt_engine_finish(struct mt_engine *e);

const struct mt_reasm_stats *mt_engine_reasm_stats(const struct mt_engine *e);

#endif
