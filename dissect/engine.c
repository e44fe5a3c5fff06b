/* Wiring of reassembly to sessions; see engine.h. */
#include "session_int.h"

static void on_open(void *ud, struct mt_flow *f, const struct mt_packet *pk)
{
    f->user = mt_sess_new(ud, f, pk);
}

static void on_data(void *ud, struct mt_flow *f, enum mt_dir dir, const uint8_t *p, size_t n,
                    const struct mt_packet *pk)
{
    mt_sess_data(f->user, dir, p, n, pk);
}

static void on_gap(void *ud, struct mt_flow *f, enum mt_dir dir, uint64_t off, uint64_t len,
                   const struct mt_packet *pk)
{
    mt_sess_gap(f->user, dir, off, len, pk);
}

static void on_anomaly(void *ud, struct mt_flow *f, enum mt_dir dir, enum mt_anomaly a,
                       const char *detail, const struct mt_packet *pk)
{
    mt_sess_reasm_anomaly(f->user, dir, a, detail, pk);
}

static void on_close(void *ud, struct mt_flow *f, enum mt_close_reason why,
                     const struct mt_packet *pk)
{
    mt_sess_close(f->user, why, pk);
    f->user = NULL;
}

static const struct mt_reasm_ops engine_ops = {
    .open = on_open,
    .data = on_data,
    .gap = on_gap,
    .anomaly = on_anomaly,
    .close = on_close,
};

struct mt_engine *mt_engine_new(const struct mt_limits *lim, mt_sink_fn sink, void *ud)
{
    struct mt_engine *e = g_new0(struct mt_engine, 1);
    e->lim = *lim;
    e->sink = sink;
    e->sink_ud = ud;
    e->reasm = mt_reasm_new(lim, &engine_ops, e);
    return e;
}

void mt_engine_free(struct mt_engine *e)
{
    if (!e)
        return;
    mt_reasm_free(e->reasm);
    mt_bufpool_free(&e->msgpool);
    for (unsigned i = 0; i < e->nstrings; i++)
        g_string_free(e->strings[i], TRUE);
    g_free(e);
}

void mt_engine_set_stream_hook(struct mt_engine *e, mt_stream_fn fn, void *ud)
{
    e->stream_fn = fn;
    e->stream_ud = ud;
}

void mt_engine_packet(void *engine, const struct mt_packet *pk)
{
    struct mt_engine *e = engine;
    e->last_ts = pk->ts_us;
    mt_reasm_packet(e->reasm, pk);
}

void mt_engine_clock(struct mt_engine *e, const struct mt_packet *pk)
{
    e->last_ts = pk->ts_us;
    mt_reasm_clock(e->reasm, pk->ts_us);
}

void mt_engine_window(void *engine, const uint8_t *lo, const uint8_t *hi)
{
    struct mt_engine *e = engine;
    mt_reasm_pin(e->reasm, lo, hi);
}

void mt_engine_expire(struct mt_engine *e, int64_t now_us)
{
    mt_reasm_expire(e->reasm, now_us);
}

void mt_engine_finish(struct mt_engine *e)
{
    mt_reasm_flush(e->reasm);
}

const struct mt_reasm_stats *mt_engine_reasm_stats(const struct mt_engine *e)
{
    return mt_reasm_stats(e->reasm);
}
