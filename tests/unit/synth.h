/* Test helper: a TCP session made of synthetic packets, fed straight into
 * the engine, with every event recorded.  Used by the dissector tests to
 * split a dialogue at every byte position without pcap files. */
#ifndef MT_TEST_SYNTH_H
#define MT_TEST_SYNTH_H

#include <string.h>

#include <glib.h>

#include "defer.h"
#include "engine.h"
#include "mime.h"

/* What a test wants to know about the events. */
struct rec {
    GPtrArray *lines; /* one summary string per event */
    GPtrArray *msgs;  /* raw bytes of each message (GBytes) */
    GPtrArray *msg_meta; /* "from=... rcpt=a,b complete=1 source=DATA" */
    GPtrArray *creds; /* "MECH user=... pass=... result=..." */
    GString *anomalies; /* names, space separated */
    int tls;
    char *helo; /* the session's client name at its end, or NULL */
};

static inline void rec_init(struct rec *r)
{
    r->lines = g_ptr_array_new_with_free_func(g_free);
    r->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    r->msg_meta = g_ptr_array_new_with_free_func(g_free);
    r->creds = g_ptr_array_new_with_free_func(g_free);
    r->anomalies = g_string_new(NULL);
    r->tls = 0;
    r->helo = NULL;
}

static inline void rec_free(struct rec *r)
{
    g_ptr_array_free(r->lines, TRUE);
    g_ptr_array_free(r->msgs, TRUE);
    g_ptr_array_free(r->msg_meta, TRUE);
    g_ptr_array_free(r->creds, TRUE);
    g_string_free(r->anomalies, TRUE);
    g_free(r->helo);
}

static inline void rec_sink(void *ud, struct mt_event *ev)
{
    struct rec *r = ud;
    switch (ev->type) {
    case MT_EV_COMMAND:
        g_ptr_array_add(r->lines, g_strdup_printf("C %.*s", (int)ev->u.cmd.line.n,
                                                  (const char *)ev->u.cmd.line.p));
        break;
    case MT_EV_REPLY:
        g_ptr_array_add(r->lines,
                        g_strdup_printf("S %s for %.*s", ev->u.reply.code,
                                        (int)ev->u.reply.cmd_verb.n,
                                        (const char *)ev->u.reply.cmd_verb.p));
        break;
    case MT_EV_MESSAGE: {
        const struct mt_message *m = ev->u.msg;
        g_ptr_array_add(r->msgs, g_bytes_new(m->raw, m->raw_len));
        GString *s = g_string_new(NULL);
        g_string_append_printf(s, "source=%s from=%s rcpt=", mt_msg_source_name(m->source),
                               m->mail_from ? m->mail_from : "-");
        for (size_t i = 0; i < m->nrcpt; i++)
            g_string_append_printf(s, "%s%s", i ? "," : "", m->rcpt_to[i]);
        g_string_append_printf(s, " complete=%d", m->complete);
        g_ptr_array_add(r->msg_meta, g_string_free(s, FALSE));
        break;
    }
    case MT_EV_CREDENTIAL: {
        const struct mt_credential *c = ev->u.cred;
        g_ptr_array_add(r->creds, g_strdup_printf("%s user=%s pass=%s result=%s",
                                                  c->mechanism ? c->mechanism : "-",
                                                  c->username ? c->username : "-",
                                                  c->password ? c->password : "-",
                                                  mt_auth_result_name(c->result)));
        break;
    }
    case MT_EV_ANOMALY:
        g_string_append_printf(r->anomalies, "%s ", mt_anomaly_name(ev->u.anomaly.kind));
        break;
    case MT_EV_TLS:
        r->tls++;
        break;
    case MT_EV_SESSION_END:
        g_free(r->helo);
        r->helo = ev->sess && ev->sess->client_name ? g_strdup(ev->sess->client_name) : NULL;
        break;
    default:
        break;
    }
}

/* One step of a dialogue: who sends what. */
struct step {
    enum mt_dir dir;
    const char *data;
    size_t n; /* data's length, if it holds a NUL (0: up to the NUL) */
};

static inline size_t step_len(const struct step *st)
{
    return st->n ? st->n : strlen(st->data);
}

struct synth {
    struct mt_engine *e;
    uint32_t seq[2];
    uint64_t num;
    int64_t ts;
    uint16_t server_port; /* 0: 2525 */
    uint16_t client_port; /* 0: 40000 */
};

static inline void synth_pkt(struct synth *s, enum mt_dir dir, uint8_t flags, const void *p,
                             uint32_t n)
{
    struct mt_packet pk;
    memset(&pk, 0, sizeof(pk));
    struct mt_endpoint cl = { .family = 4, .addr = { 192, 0, 2, 1 },
                              .port = s->client_port ? s->client_port : 40000 };
    struct mt_endpoint sv = { .family = 4, .addr = { 192, 0, 2, 25 },
                              .port = s->server_port ? s->server_port : 2525 };
    pk.src = dir == MT_C2S ? cl : sv;
    pk.dst = dir == MT_C2S ? sv : cl;
    pk.seq = s->seq[dir];
    pk.ack = s->seq[!dir];
    pk.flags = flags;
    pk.payload = p;
    pk.len = n;
    pk.num = ++s->num;
    pk.ts_us = (s->ts += 1000);
    mt_engine_packet(s->e, &pk);
    s->seq[dir] += n + ((flags & (MT_TH_SYN | MT_TH_FIN)) ? 1 : 0);
}

/* Runs the dialogue; the client's bytes of step `split_step` (or every
 * step if split_step < 0) are sent as segments of at most `seg` bytes
 * (0: one segment per step), or cut once at byte `cut` when cut > 0.
 * defer (or NULL): the engine hands its finished messages to it
 * (mt_engine_set_defer), with defer_ud. */
static inline void synth_run_defer(struct rec *r, const struct step *steps, int split_step,
                                   size_t cut, size_t seg, mt_defer_fn defer, void *defer_ud)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    mt_mime_global_init();
    struct synth s = { .e = mt_engine_new(&lim, rec_sink, r), .seq = { 1000, 5000 } };
    if (defer)
        mt_engine_set_defer(s.e, defer, defer_ud);
    synth_pkt(&s, MT_C2S, MT_TH_SYN, NULL, 0);
    s.seq[MT_S2C] = 5000;
    synth_pkt(&s, MT_S2C, MT_TH_SYN | MT_TH_ACK, NULL, 0);
    for (int i = 0; steps[i].data; i++) {
        const char *d = steps[i].data;
        size_t n = step_len(&steps[i]);
        bool split = split_step < 0 || split_step == i;
        if (split && cut > 0 && cut < n) {
            synth_pkt(&s, steps[i].dir, MT_TH_ACK, d, (uint32_t)cut);
            synth_pkt(&s, steps[i].dir, MT_TH_ACK, d + cut, (uint32_t)(n - cut));
        } else if (split && seg > 0) {
            for (size_t o = 0; o < n; o += seg)
                synth_pkt(&s, steps[i].dir, MT_TH_ACK, d + o, (uint32_t)MIN(seg, n - o));
        } else {
            synth_pkt(&s, steps[i].dir, MT_TH_ACK, d, (uint32_t)n);
        }
    }
    synth_pkt(&s, MT_C2S, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    synth_pkt(&s, MT_S2C, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    mt_engine_finish(s.e);
    mt_engine_free(s.e);
}

static inline void synth_run(struct rec *r, const struct step *steps, int split_step, size_t cut,
                             size_t seg)
{
    synth_run_defer(r, steps, split_step, cut, seg, NULL, NULL);
}

#endif
