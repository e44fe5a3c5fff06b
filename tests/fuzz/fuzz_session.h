/* The session driver the engine harnesses share (fuzz_dissect.c,
 * fuzz_output.c): one TCP session of synthetic segments fed straight into
 * the engine, as tests/unit/synth.h does.  The input format is described
 * at the top of fuzz_dissect.c. */
#ifndef MT_FUZZ_SESSION_H
#define MT_FUZZ_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "defer.h"
#include "engine.h"
#include "mime.h"
#include "fuzz_common.h"

static const char *const greetings[] = {
    NULL,
    "220 mx.example.test ESMTP ready\r\n",
    "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n",
    "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN] ready\r\n",
};
static const uint16_t ports[] = {25, 587, 110, 143, 2525, 465, 993, 8025};

struct fz_sess {
    struct mt_engine *e;
    uint32_t seq[2];
    uint32_t isn[2];
    bool ack_isn;
    uint16_t port;
    uint64_t num;
    int64_t ts;
    const uint8_t *last[2]; /* previous segment of each direction (in the input) */
    uint32_t last_len[2], last_seq[2];
};

static void pkt(struct fz_sess *s, enum mt_dir dir, uint8_t flags, const uint8_t *p, uint32_t n,
                uint32_t seq)
{
    static const struct mt_endpoint cl = {.family = 4, .addr = {192, 0, 2, 1}, .port = 40000};
    struct mt_endpoint sv = {.family = 4, .addr = {192, 0, 2, 25}, .port = s->port};
    struct mt_packet pk;
    memset(&pk, 0, sizeof(pk));
    pk.src = dir == MT_C2S ? cl : sv;
    pk.dst = dir == MT_C2S ? sv : cl;
    pk.seq = seq;
    pk.ack = s->ack_isn ? s->isn[!dir] + 1 : s->seq[!dir];
    pk.flags = flags;
    pk.win = 65535;
    pk.payload = p;
    pk.len = n;
    pk.num = ++s->num;
    pk.ts_us = (s->ts += 1000);
    mt_engine_packet(s->e, &pk);
}

static void segment(struct fz_sess *s, enum mt_dir dir, const uint8_t *p, uint32_t n)
{
    if (n == 0)
        return;
    pkt(s, dir, MT_TH_ACK | MT_TH_PSH, p, n, s->seq[dir]);
    s->last[dir] = p;
    s->last_len[dir] = n;
    s->last_seq[dir] = s->seq[dir];
    s->seq[dir] += n;
    if (dir == MT_S2C)
        s->ack_isn = false;
}

#define PIN_STEP 512

/* The window moves on: what the history still refers to is copied, then
 * the bytes before the first one an operation may send again (the last
 * segment of each direction, operation 2) are overwritten. */
static void pin_move(struct fz_sess *s, uint8_t *win, size_t size, const uint8_t *p)
{
    mt_engine_window(s->e, NULL, NULL);
    const uint8_t *keep = p;
    for (int d = 0; d < 2; d++)
        if (s->last[d] && s->last[d] >= win && s->last[d] < keep)
            keep = s->last[d];
    memset(win, 0xA5, (size_t)(keep - win));
    mt_engine_window(s->e, keep, win + size);
}

static void fz_session_run(const uint8_t *data, size_t size, mt_sink_fn sink, void *sink_ud,
                           mt_defer_fn defer, void *defer_ud, uint8_t *win)
{
    uint8_t cfg = data[0];
    if (win) { /* data's copy, pinned */
        memcpy(win, data, size);
        data = win;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    size_t next_move = PIN_STEP;

    struct mt_limits lim;
    if (cfg & 0x20)
        fz_limits_tight(&lim);
    else
        mt_limits_default(&lim);
    mt_mime_global_init();

    struct fz_sess s;
    memset(&s, 0, sizeof(s));
    s.e = mt_engine_new(&lim, sink, sink_ud);
    if (defer)
        mt_engine_set_defer(s.e, defer, defer_ud);
    s.port = ports[(cfg >> 2) & 7];
    /* the server's ISN close to 2^32: sequence numbers wrap early */
    s.isn[0] = 1000;
    s.isn[1] = 0xffffff00u;
    s.seq[0] = s.isn[0];
    s.seq[1] = s.isn[1];
    s.ts = 1700000000000000;
    s.ack_isn = (cfg & 0x80) != 0;
    if (win)
        mt_engine_window(s.e, win, win + size);

    if (!(cfg & 0x40)) {
        pkt(&s, MT_C2S, MT_TH_SYN, NULL, 0, s.seq[0]);
        s.seq[0]++;
        pkt(&s, MT_S2C, MT_TH_SYN | MT_TH_ACK, NULL, 0, s.seq[1]);
        s.seq[1]++;
        pkt(&s, MT_C2S, MT_TH_ACK, NULL, 0, s.seq[0]);
    }
    const char *g = greetings[cfg & 3];
    if (g)
        segment(&s, MT_S2C, (const uint8_t *)g, (uint32_t)strlen(g));

    while (n > 0) {
        if (win && (size_t)(p - data) >= next_move) {
            pin_move(&s, win, size, p);
            next_move += PIN_STEP;
        }
        uint8_t c = *p++;
        n--;
        enum mt_dir dir = (c & 0x80) ? MT_S2C : MT_C2S;
        size_t len = c & 0x7f;
        if (len > 0) {
            len = len < n ? len : n;
            segment(&s, dir, p, (uint32_t)len);
            p += len;
            n -= len;
            continue;
        }
        if (n == 0)
            break;
        uint8_t x = *p++;
        n--;
        switch (x % 8) {
        case 0:
            if (n < 2) {
                n = 0;
                break;
            }
            len = (size_t)p[0] | (size_t)p[1] << 8;
            p += 2;
            n -= 2;
            len = len < n ? len : n;
            segment(&s, dir, p, (uint32_t)len);
            p += len;
            n -= len;
            break;
        case 1:
            if (n == 0)
                break;
            s.seq[dir] += ((uint32_t)*p + 1) * 16;
            p++;
            n--;
            break;
        case 2:
            if (s.last[dir])
                pkt(&s, dir, MT_TH_ACK | MT_TH_PSH, s.last[dir], s.last_len[dir], s.last_seq[dir]);
            break;
        case 3: {
            if (n == 0)
                break;
            len = *p++;
            n--;
            len = len < n ? len : n;
            if (len > 0)
                pkt(&s, dir, MT_TH_ACK | MT_TH_PSH, p, (uint32_t)len, s.seq[dir] - (uint32_t)len);
            p += len;
            n -= len;
            break;
        }
        case 4:
            pkt(&s, dir, MT_TH_FIN | MT_TH_ACK, NULL, 0, s.seq[dir]);
            s.seq[dir]++;
            break;
        case 5: pkt(&s, dir, MT_TH_RST | MT_TH_ACK, NULL, 0, s.seq[dir]); break;
        case 6: pkt(&s, dir, MT_TH_ACK, NULL, 0, s.seq[dir]); break;
        case 7:
            s.ts += (int64_t)lim.idle_timeout * 1000000 + 1;
            mt_engine_expire(s.e, s.ts);
            break;
        }
    }
    if (win)
        mt_engine_window(s.e, NULL, NULL);
    mt_engine_finish(s.e);
    mt_engine_free(s.e);
}

#endif
