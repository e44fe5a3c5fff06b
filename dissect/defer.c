/* Finished messages handed over to another thread; see defer.h. */
#include "session_int.h"

#include <string.h>

struct mt_deferred {
    uint64_t key;                 /* the session's defer_key */
    bool end;                     /* the session's end, not a message */
    struct mt_limits lim;
    struct mt_session_info info;  /* a message: a snapshot without the pointers;
                                     the end: all of it, owned */
    int64_t ts;
    uint64_t pkt;
    enum mt_dir dir;
    struct mt_msgbuf mb;          /* owns its data */
    struct mt_message meta;       /* owns its strings */
};

/* What the receiving side remembers of a session until its end. */
struct dsess {
    uint64_t sent[2];                 /* anomaly events already emitted, by direction */
    uint32_t counts[MT_AN__COUNT];    /* anomalies counted in its messages */
};

struct mt_defer_state {
    GHashTable *sess; /* uint64_t key -> struct dsess */
};

void mt_engine_set_defer(struct mt_engine *e, mt_defer_fn fn, void *ud)
{
    e->defer_fn = fn;
    e->defer_ud = ud;
}

static char **strv_copy(const char *const *v, size_t n)
{
    if (!v)
        return NULL;
    char **c = g_new0(char *, n + 1);
    for (size_t i = 0; i < n; i++)
        c[i] = g_strdup(v[i]);
    return c;
}

static struct mt_deferred *deferred_new(struct mt_sess *s)
{
    struct mt_engine *e = s->eng;
    if (!s->defer_key)
        s->defer_key = ++e->defer_seq;
    struct mt_deferred *d = g_new0(struct mt_deferred, 1);
    d->key = s->defer_key;
    d->lim = e->lim;
    d->info = s->info;
    d->ts = s->cur_ts;
    d->pkt = s->cur_pkt;
    d->dir = s->cur_dir;
    return d;
}

/* Hands d to the engine's defer_fn, with the engine's pool for the
 * buffers it is done with. */
static void hand_over(struct mt_sess *s, struct mt_deferred *d)
{
    s->eng->defer_fn(s->eng->defer_ud, d, &s->eng->msgpool);
}

void mt_defer_message(struct mt_sess *s, struct mt_msgbuf *mb, const struct mt_message *meta)
{
    struct mt_deferred *d = deferred_new(s);
    /* message events use the session's numbers only */
    d->info.gaps = NULL;
    d->info.client_name = NULL;
    d->info.capabilities = NULL;
    d->mb = *mb;
    d->mb.pool = NULL;
    mb->data = NULL;
    mb->len = mb->cap = 0;
    mb->active = false;
    struct mt_message *m = &d->meta;
    m->index = meta->index;
    m->source = meta->source;
    m->complete = meta->complete;
    m->mail_from = g_strdup(meta->mail_from);
    m->mail_params = g_strdup(meta->mail_params);
    m->nrcpt = meta->nrcpt;
    m->rcpt_to = (const char *const *)strv_copy(meta->rcpt_to, meta->nrcpt);
    m->rcpt_params = (const char *const *)strv_copy(meta->rcpt_params, meta->nrcpt);
    m->mailbox = g_strdup(meta->mailbox);
    m->uid = g_strdup(meta->uid);
    m->flags = g_strdup(meta->flags);
    m->section = g_strdup(meta->section);
    hand_over(s, d);
}

void mt_defer_end(struct mt_sess *s)
{
    struct mt_deferred *d = deferred_new(s);
    d->end = true;
    /* the record's lists go with it */
    s->info.gaps = NULL;
    s->info.client_name = NULL;
    s->info.capabilities = NULL;
    hand_over(s, d);
}

uint8_t *mt_deferred_take_buffer(struct mt_deferred *d, size_t *cap)
{
    uint8_t *b = d->mb.data;
    *cap = d->mb.cap;
    d->mb.data = NULL;
    d->mb.cap = 0;
    return b;
}

void mt_deferred_hash_now(struct mt_deferred *d)
{
    if (!d->end)
        mt_msgbuf_hash_now(&d->mb);
}

void mt_deferred_prefetch(const struct mt_deferred *d)
{
    for (size_t off = 0; off < sizeof(*d); off += 64)
        __builtin_prefetch((const char *)d + off);
}

size_t mt_deferred_bytes(const struct mt_deferred *d)
{
    return sizeof(*d) + d->mb.len;
}

void mt_deferred_free(struct mt_deferred *d)
{
    if (!d)
        return;
    mt_buf_free(d->mb.data, d->mb.cap);
    struct mt_message *m = &d->meta;
    g_free((char *)m->mail_from);
    g_free((char *)m->mail_params);
    g_strfreev((char **)m->rcpt_to);
    /* rcpt_params may hold NULL entries: free each of nrcpt */
    if (m->rcpt_params) {
        for (size_t i = 0; i < m->nrcpt; i++)
            g_free((char *)m->rcpt_params[i]);
        g_free((char **)m->rcpt_params);
    }
    g_free((char *)m->mailbox);
    g_free((char *)m->uid);
    g_free((char *)m->flags);
    g_free((char *)m->section);
    if (d->end) {
        g_free(d->info.client_name);
        g_free(d->info.capabilities); /* one allocation: mt_caps_finish */
        g_free(d->info.gaps);
    }
    g_free(d);
}

struct mt_defer_state *mt_defer_state_new(void)
{
    struct mt_defer_state *st = g_new0(struct mt_defer_state, 1);
    st->sess = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    return st;
}

void mt_defer_state_free(struct mt_defer_state *st)
{
    if (!st)
        return;
    g_hash_table_destroy(st->sess);
    g_free(st);
}

struct run {
    struct mt_deferred *d;
    struct dsess *ds;
    mt_sink_fn sink;
    void *ud;
};

static void run_emit(void *ud, struct mt_event *ev)
{
    struct run *r = ud;
    ev->sess = &r->d->info;
    ev->proto = r->d->info.proto;
    ev->ts_us = r->d->ts;
    ev->pkt = r->d->pkt;
    r->sink(r->ud, ev);
}

/* As the session's own anomaly_record, with the marks and counts kept here. */
static void run_anomaly(void *ud, enum mt_anomaly a, const char *detail)
{
    struct run *r = ud;
    r->ds->counts[a]++;
    uint64_t bit = (uint64_t)1 << a;
    if (r->ds->sent[r->d->dir] & bit)
        return;
    r->ds->sent[r->d->dir] |= bit;
    struct mt_event ev = { .type = MT_EV_ANOMALY };
    ev.u.anomaly.kind = a;
    ev.u.anomaly.dir = r->d->dir;
    ev.u.anomaly.detail = detail;
    run_emit(r, &ev);
}

void mt_deferred_run(struct mt_defer_state *st, struct mt_deferred *d, mt_sink_fn sink,
                     void *ud)
{
    struct dsess *ds = g_hash_table_lookup(st->sess, &d->key);
    if (!ds) {
        uint64_t *k = g_new(uint64_t, 1);
        *k = d->key;
        ds = g_new0(struct dsess, 1);
        g_hash_table_insert(st->sess, k, ds);
    }
    struct run r = { d, ds, sink, ud };
    if (d->end) {
        for (int a = 0; a < MT_AN__COUNT; a++)
            d->info.anomalies[a] += ds->counts[a];
        g_hash_table_remove(st->sess, &d->key);
        struct mt_event ev = { .type = MT_EV_SESSION_END };
        run_emit(&r, &ev);
    } else {
        const struct mt_msg_report rep = { &d->lim, run_anomaly, run_emit, &r };
        mt_msg_report_run(&rep, &d->mb, &d->meta);
    }
}
