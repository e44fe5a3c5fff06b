/* TCP reassembly through the engine, with synthetic packets: wraparound,
 * out of order, overlaps, late retransmissions, gaps. */
#include <stdio.h>

#include "synth.h"

struct count {
    int sessions;
    GString *c2s;
    char anomalies[512];
    uint64_t gap_len;
};

static void count_sink(void *ud, struct mt_event *ev)
{
    struct count *c = ud;
    if (ev->type == MT_EV_SESSION_END) {
        c->sessions++;
        c->gap_len += ev->sess->gap_bytes;
    }
    if (ev->type == MT_EV_ANOMALY) {
        size_t n = strlen(c->anomalies);
        snprintf(c->anomalies + n, sizeof(c->anomalies) - n, "%s ",
                 mt_anomaly_name(ev->u.anomaly.kind));
    }
}

static void stream_sink(void *ud, const struct mt_session_info *s, enum mt_dir dir,
                        const uint8_t *p, size_t n)
{
    struct count *c = ud;
    if (dir == MT_C2S)
        g_string_append_len(c->c2s, (const char *)p, (gssize)n);
}

struct seg {
    enum mt_dir dir;
    uint8_t flags;
    uint32_t off; /* relative to the ISN + 1 */
    const char *data;
};

/* Plays segments with the given ISNs; returns what came out. */
static void play(struct count *c, uint32_t isn_c, uint32_t isn_s, const struct seg *segs)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    memset(c, 0, sizeof(*c));
    c->c2s = g_string_new(NULL);
    struct mt_engine *e = mt_engine_new(&lim, count_sink, c);
    mt_engine_set_stream_hook(e, stream_sink, c);
    uint64_t num = 0;
    for (int i = 0; segs[i].flags || segs[i].data; i++) {
        struct mt_packet pk;
        memset(&pk, 0, sizeof(pk));
        struct mt_endpoint cl = { .family = 4, .addr = { 192, 0, 2, 1 }, .port = 40000 };
        struct mt_endpoint sv = { .family = 4, .addr = { 192, 0, 2, 25 }, .port = 25 };
        enum mt_dir d = segs[i].dir;
        pk.src = d == MT_C2S ? cl : sv;
        pk.dst = d == MT_C2S ? sv : cl;
        uint32_t isn = d == MT_C2S ? isn_c : isn_s;
        pk.flags = segs[i].flags;
        pk.seq = (pk.flags & MT_TH_SYN) ? isn : isn + 1 + segs[i].off;
        pk.ack = (d == MT_C2S ? isn_s : isn_c) + 1;
        pk.payload = (const uint8_t *)segs[i].data;
        pk.len = segs[i].data ? (uint32_t)strlen(segs[i].data) : 0;
        pk.num = ++num;
        pk.ts_us = 1000000 + (int64_t)num;
        mt_engine_packet(e, &pk);
    }
    mt_engine_finish(e);
    mt_engine_free(e);
}

#define SYN(d) { d, MT_TH_SYN | ((d) == MT_S2C ? MT_TH_ACK : 0), 0, NULL }
#define DATA(d, off, s) { d, MT_TH_ACK | MT_TH_PSH, off, s }
#define FIN(d, off) { d, MT_TH_FIN | MT_TH_ACK, off, NULL }
#define END { 0, 0, 0, NULL }

static const struct {
    const char *name;
    uint32_t isn_c;
    struct seg segs[16];
    const char *c2s;
    int sessions;
    const char *anomaly;  /* must appear (NULL: none at all) */
    uint64_t gap;
} rows[] = {
    { "in order", 1000,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 0, "EHLO a\r\n"), DATA(MT_C2S, 8, "QUIT\r\n"),
        FIN(MT_C2S, 14), FIN(MT_S2C, 0), END },
      "EHLO a\r\nQUIT\r\n", 1, NULL, 0 },
    { "sequence numbers wrap", 0xfffffffa,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 0, "EHLO a\r\n"), DATA(MT_C2S, 8, "QUIT\r\n"),
        FIN(MT_C2S, 14), FIN(MT_S2C, 0), END },
      "EHLO a\r\nQUIT\r\n", 1, NULL, 0 },
    { "out of order across the wrap", 0xfffffff0,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 8, "QUIT\r\n"), DATA(MT_C2S, 0, "EHLO a\r\n"),
        FIN(MT_C2S, 14), FIN(MT_S2C, 0), END },
      "EHLO a\r\nQUIT\r\n", 1, NULL, 0 },
    { "overlap with the same bytes", 1000,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 0, "EHLO a\r\n"), DATA(MT_C2S, 4, " a\r\nQUI"),
        DATA(MT_C2S, 11, "T\r\n"), FIN(MT_C2S, 14), FIN(MT_S2C, 0), END },
      "EHLO a\r\nQUIT\r\n", 1, NULL, 0 },
    { "overlap with other bytes: the first copy wins", 1000,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 0, "EHLO a\r\n"), DATA(MT_C2S, 0, "EHLO b\r\n"),
        DATA(MT_C2S, 8, "QUIT\r\n"), FIN(MT_C2S, 14), FIN(MT_S2C, 0), END },
      "EHLO a\r\nQUIT\r\n", 1, "overlap_conflict", 0 },
    { "buffered overlap with other bytes", 1000,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 8, "QUIT\r\n"), DATA(MT_C2S, 8, "XXXX\r\n"),
        DATA(MT_C2S, 0, "EHLO a\r\n"), FIN(MT_C2S, 14), FIN(MT_S2C, 0), END },
      "EHLO a\r\nQUIT\r\n", 1, "overlap_conflict", 0 },
    { "late retransmission after the close opens no session", 1000,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 0, "EHLO a\r\n"), DATA(MT_C2S, 8, "QUIT\r\n"),
        FIN(MT_C2S, 14), FIN(MT_S2C, 0), DATA(MT_C2S, 8, "QUIT\r\n"), END },
      "EHLO a\r\nQUIT\r\n", 1, NULL, 0 },
    { "a lost segment is a gap at its offset", 1000,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 0, "EHLO a\r\n"), DATA(MT_C2S, 14, "NOOP\r\n"),
        FIN(MT_C2S, 20), FIN(MT_S2C, 0), END },
      "EHLO a\r\nNOOP\r\n", 1, "gap", 6 },
    { "keep-alive (one old byte) is not a conflict", 1000,
      { SYN(MT_C2S), SYN(MT_S2C), DATA(MT_C2S, 0, "EHLO a\r\n"), DATA(MT_C2S, 7, "x"),
        DATA(MT_C2S, 8, "QUIT\r\n"), FIN(MT_C2S, 14), FIN(MT_S2C, 0), END },
      "EHLO a\r\nQUIT\r\n", 1, NULL, 0 },
    { "no handshake: picked up mid-stream", 1000,
      { DATA(MT_C2S, 100, "RCPT TO:<b@x>\r\n"), DATA(MT_S2C, 50, "250 ok\r\n"),
        DATA(MT_C2S, 115, "QUIT\r\n"), END },
      "RCPT TO:<b@x>\r\nQUIT\r\n", 1, NULL, 0 },
};

static void test_row(gconstpointer data)
{
    size_t i = GPOINTER_TO_SIZE(data);
    struct count c;
    play(&c, rows[i].isn_c, 7000, rows[i].segs);
    g_assert_cmpstr(c.c2s->str, ==, rows[i].c2s);
    g_assert_cmpint(c.sessions, ==, rows[i].sessions);
    if (rows[i].anomaly)
        g_assert_nonnull(strstr(c.anomalies, rows[i].anomaly));
    else
        g_assert_cmpstr(c.anomalies, ==, "");
    g_assert_cmpuint(c.gap_len, ==, rows[i].gap);
    g_string_free(c.c2s, TRUE);
}

/* The retransmission check remembers the last unacked_max delivered bytes
 * that are not acknowledged (a ring buffer): a retransmission that alters
 * a byte in that window is a conflict, one that alters an older byte is
 * not noticed.  Random segment sizes, acknowledgements and retransmissions
 * against a model of the window.
 *
 * The same with the new bytes sent from a pinned region (mt_engine_window,
 * as a capture file's window), which the history refers to instead
 * of copying: PIN_MOVING reuses a small region, scribbled over after each
 * unpinning, as the next window (a reference not copied in time would make
 * the comparisons wrong); PIN_WHOLE pins all the bytes at once and sends
 * them a byte at a time, past MT_CAP_HIST_REFS references. */
static uint32_t conflicts_seen;

static void conflict_sink(void *ud, struct mt_event *ev)
{
    (void)ud;
    if (ev->type == MT_EV_SESSION_END)
        conflicts_seen = ev->sess->anomalies[MT_AN_OVERLAP_CONFLICT];
}

static void send_seg(struct mt_engine *e, enum mt_dir d, uint32_t seq, uint32_t ack,
                     const uint8_t *p, uint32_t n, uint8_t flags, uint64_t *num)
{
    struct mt_packet pk;
    memset(&pk, 0, sizeof(pk));
    struct mt_endpoint cl = { .family = 4, .addr = { 192, 0, 2, 1 }, .port = 40000 };
    struct mt_endpoint sv = { .family = 4, .addr = { 192, 0, 2, 25 }, .port = 25 };
    pk.src = d == MT_C2S ? cl : sv;
    pk.dst = d == MT_C2S ? sv : cl;
    pk.flags = flags;
    pk.seq = seq;
    pk.ack = ack;
    pk.payload = p;
    pk.len = n;
    pk.num = ++*num;
    pk.ts_us = 1000000 + (int64_t)*num;
    mt_engine_packet(e, &pk);
}

enum pin_mode { PIN_NONE, PIN_MOVING, PIN_WHOLE };

/* A region standing for the capture's window: bytes are placed in it until
 * it is full, then it is unpinned, overwritten and pinned again. */
struct pinwin {
    struct mt_engine *e;
    uint8_t buf[512];
    size_t used;
    unsigned moves;
};

static const uint8_t *pin_place(struct pinwin *w, const uint8_t *p, uint32_t n)
{
    if (w->used + n > sizeof(w->buf)) {
        mt_engine_window(w->e, NULL, NULL);
        memset(w->buf, '#', sizeof(w->buf)); /* what an unmapped page would read as */
        mt_engine_window(w->e, w->buf, w->buf + sizeof(w->buf));
        w->used = 0;
        w->moves++;
    }
    uint8_t *at = w->buf + w->used;
    memcpy(at, p, n);
    w->used += n;
    return at;
}

static void history_rounds(enum pin_mode mode)
{
    enum { CAP = 100, TOTAL = 20000 };
    static uint8_t data[TOTAL];
    static struct pinwin win;
    unsigned moves = 0;
    for (int round = 0; round < 20; round++) {
        GRand *rnd = g_rand_new_with_seed(1000 + (guint32)round);
        /* isn near the wrap in some rounds */
        uint32_t isn = round % 2 ? 0xffffff00u : 1000, isn_s = 7000;
        for (size_t i = 0; i < TOTAL; i++) /* a body line that never ends */
            data[i] = (uint8_t)('a' + g_rand_int_range(rnd, 0, 26));
        struct mt_limits lim;
        mt_limits_default(&lim);
        lim.unacked_max = CAP;
        struct mt_engine *e = mt_engine_new(&lim, conflict_sink, NULL);
        memset(&win, 0, sizeof(win));
        win.e = e;
        if (mode == PIN_MOVING)
            mt_engine_window(e, win.buf, win.buf + sizeof(win.buf));
        if (mode == PIN_WHOLE)
            mt_engine_window(e, data, data + TOTAL);
        uint64_t num = 0;
        send_seg(e, MT_C2S, isn, 0, NULL, 0, MT_TH_SYN, &num);
        send_seg(e, MT_S2C, isn_s, isn + 1, NULL, 0, MT_TH_SYN | MT_TH_ACK, &num);
        uint32_t next = 0, acked = 0, expect = 0;
        while (next < TOTAL - 300) {
            int what = g_rand_int_range(rnd, 0, 10);
            if (what < 5) { /* new bytes */
                uint32_t n = (uint32_t)g_rand_int_range(rnd, 1, what == 0 ? 250 : 60);
                const uint8_t *p = data + next;
                if (mode == PIN_WHOLE)
                    n = 1;
                if (mode == PIN_MOVING)
                    p = pin_place(&win, p, n);
                send_seg(e, MT_C2S, isn + 1 + next, isn_s + 1, p, n, MT_TH_ACK | MT_TH_PSH,
                         &num);
                next += n;
            } else if (what < 7) { /* the server acknowledges some of them */
                acked += (uint32_t)g_rand_int_range(rnd, 0, (gint32)(next - acked) + 1);
                send_seg(e, MT_S2C, isn_s + 1, isn + 1 + acked, NULL, 0, MT_TH_ACK, &num);
            } else if (next >= 2) { /* a retransmission, maybe with one byte changed */
                uint32_t a = (uint32_t)g_rand_int_range(rnd, 0, (gint32)next - 1);
                uint32_t n = (uint32_t)g_rand_int_range(rnd, 2, (gint32)MIN(next - a, 150u) + 1);
                uint8_t buf[160];
                memcpy(buf, data + a, n);
                if (what != 9) {
                    uint32_t x = a + (uint32_t)g_rand_int_range(rnd, 0, (gint32)n);
                    buf[x - a] ^= 0x20;
                    uint32_t lo = MAX(acked, next > CAP ? next - CAP : 0);
                    if (x >= lo)
                        expect++;
                }
                /* from the pinned region too, at times */
                const uint8_t *p = mode == PIN_MOVING && round % 2 ? pin_place(&win, buf, n) : buf;
                send_seg(e, MT_C2S, isn + 1 + a, isn_s + 1, p, n, MT_TH_ACK | MT_TH_PSH, &num);
            }
        }
        conflicts_seen = 0;
        if (mode != PIN_NONE)
            mt_engine_window(e, NULL, NULL);
        mt_engine_finish(e);
        mt_engine_free(e);
        g_assert_cmpuint(conflicts_seen, ==, expect);
        g_rand_free(rnd);
        moves += win.moves;
    }
    if (mode == PIN_MOVING)
        g_assert_cmpuint(moves, >, 500); /* the region was reused again and again */
}

/* Bytes in a pinned window are not copied into the history until the
 * window goes (and then only what is still unacknowledged), nor when they
 * are acknowledged first; other bytes are copied as they come. */
static void test_history_copies(void)
{
    static uint8_t win[4096];
    memset(win, 'x', sizeof(win));
    for (int pinned = 0; pinned < 2; pinned++) {
        struct mt_limits lim;
        mt_limits_default(&lim);
        struct mt_engine *e = mt_engine_new(&lim, conflict_sink, NULL);
        const struct mt_reasm_stats *st = mt_engine_reasm_stats(e);
        if (pinned)
            mt_engine_window(e, win, win + sizeof(win));
        uint64_t num = 0;
        uint32_t isn = 1000, isn_s = 7000;
        send_seg(e, MT_C2S, isn, 0, NULL, 0, MT_TH_SYN, &num);
        send_seg(e, MT_S2C, isn_s, isn + 1, NULL, 0, MT_TH_SYN | MT_TH_ACK, &num);
        for (uint32_t i = 0; i < 10; i++) /* 10 x 100 bytes */
            send_seg(e, MT_C2S, isn + 1 + 100 * i, isn_s + 1, win + 100 * i, 100,
                     MT_TH_ACK | MT_TH_PSH, &num);
        g_assert_cmpuint(st->hist_copied, ==, pinned ? 0 : 1000);
        /* 600 acknowledged: 400 remain */
        send_seg(e, MT_S2C, isn_s + 1, isn + 1 + 600, NULL, 0, MT_TH_ACK, &num);
        if (pinned) {
            mt_engine_window(e, NULL, NULL);
            g_assert_cmpuint(st->hist_copied, ==, 400);
            memset(win, 'y', sizeof(win)); /* the window's bytes are gone */
        }
        /* a faithful retransmission of bytes 500..699 (100 of them still
         * remembered): no conflict */
        uint8_t same[200];
        memset(same, 'x', sizeof(same));
        send_seg(e, MT_C2S, isn + 1 + 500, isn_s + 1, same, 200, MT_TH_ACK | MT_TH_PSH, &num);
        conflicts_seen = 99;
        mt_engine_finish(e);
        g_assert_cmpuint(conflicts_seen, ==, 0);
        mt_engine_free(e);
    }
}

/* Past MT_CAP_HIST_REFS references they are copied early, and the
 * history still holds every byte: an altered retransmission of the first
 * one is a conflict after the window is gone. */
static void test_history_refs_cap(void)
{
    enum { N = MT_CAP_HIST_REFS + 10 };
    static uint8_t win[N];
    memset(win, 'x', sizeof(win));
    struct mt_limits lim;
    mt_limits_default(&lim);
    g_assert_cmpuint(lim.unacked_max, >=, N);
    struct mt_engine *e = mt_engine_new(&lim, conflict_sink, NULL);
    const struct mt_reasm_stats *st = mt_engine_reasm_stats(e);
    mt_engine_window(e, win, win + sizeof(win));
    uint64_t num = 0;
    uint32_t isn = 1000, isn_s = 7000;
    send_seg(e, MT_C2S, isn, 0, NULL, 0, MT_TH_SYN, &num);
    send_seg(e, MT_S2C, isn_s, isn + 1, NULL, 0, MT_TH_SYN | MT_TH_ACK, &num);
    for (uint32_t i = 0; i < N; i++)
        send_seg(e, MT_C2S, isn + 1 + i, isn_s + 1, win + i, 1, MT_TH_ACK | MT_TH_PSH, &num);
    g_assert_cmpuint(st->hist_copied, ==, MT_CAP_HIST_REFS);
    mt_engine_window(e, NULL, NULL);
    g_assert_cmpuint(st->hist_copied, ==, N);
    memset(win, 'y', sizeof(win));
    send_seg(e, MT_C2S, isn + 1, isn_s + 1, (const uint8_t *)"z", 1, MT_TH_ACK | MT_TH_PSH, &num);
    conflicts_seen = 99;
    mt_engine_finish(e);
    g_assert_cmpuint(conflicts_seen, ==, 1);
    mt_engine_free(e);
}

static void test_history_ring(void)
{
    history_rounds(PIN_NONE);
}

static void test_history_pinned(void)
{
    history_rounds(PIN_MOVING);
}

static void test_history_pinned_many(void)
{
    history_rounds(PIN_WHOLE);
}

/* One whole connection from client port cport: handshake, "QUIT", both
 * FINs; the client's data starts at isn + 1. */
static void conn(struct synth *s, uint16_t cport, uint32_t isn)
{
    s->server_port = 25;
    s->client_port = cport;
    s->seq[MT_C2S] = isn;
    s->seq[MT_S2C] = isn + 50000;
    synth_pkt(s, MT_C2S, MT_TH_SYN, NULL, 0);
    synth_pkt(s, MT_S2C, MT_TH_SYN | MT_TH_ACK, NULL, 0);
    synth_pkt(s, MT_C2S, MT_TH_ACK | MT_TH_PSH, "QUIT\r\n", 6);
    synth_pkt(s, MT_C2S, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    synth_pkt(s, MT_S2C, MT_TH_FIN | MT_TH_ACK, NULL, 0);
}

/* A late copy of the "QUIT" of the connection conn(cport, isn) made. */
static void late_quit(struct synth *s, uint16_t cport, uint32_t isn)
{
    s->client_port = cport;
    s->seq[MT_C2S] = isn + 1;
    synth_pkt(s, MT_C2S, MT_TH_ACK | MT_TH_PSH, "QUIT\r\n", 6);
}

/* The remembered closed flows are kept in the order of closing: a 4-tuple
 * closed again replaces its entry wherever it is in that order (first,
 * middle, last), and entries age out from the oldest.  While remembered,
 * a late segment opens no session; once aged out (120 s), it does. */
static void test_closed_order(void)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    struct count c;
    memset(&c, 0, sizeof(c));
    struct mt_engine *e = mt_engine_new(&lim, count_sink, &c);
    struct synth s = { .e = e };
    const uint32_t again = 900000; /* the second connection's ISN: past the first's end */
    for (uint16_t p = 40001; p <= 40004; p++)
        conn(&s, p, 1000);
    conn(&s, 40002, again); /* replaces the second of four */
    conn(&s, 40001, again); /* the first */
    conn(&s, 40001, again + 1000000); /* the last */
    conn(&s, 40004, again); /* the last but one is now 40004's first */
    for (uint16_t p = 40001; p <= 40004; p++) /* all remembered: no session */
        late_quit(&s, p, p == 40001 ? again + 1000000 : p == 40003 ? 1000 : again);
    g_assert_cmpint(c.sessions, ==, 8); /* each ended at its close */

    /* 121 s later, one more close ages all of them out, oldest first */
    s.ts += 121 * G_USEC_PER_SEC;
    conn(&s, 40009, 1000);
    for (uint16_t p = 40001; p <= 40004; p++)
        late_quit(&s, p, p == 40001 ? again + 1000000 : p == 40003 ? 1000 : again);
    mt_engine_finish(e);
    g_assert_cmpint(c.sessions, ==, 8 + 1 + 4);
    mt_engine_free(e);
}

/* The client bytes each session of test_many_flows got, by client port. */
static GString *many_got[65536];
static int many_sessions;

static void many_stream(void *ud, const struct mt_session_info *si, enum mt_dir dir,
                        const uint8_t *p, size_t n)
{
    (void)ud;
    if (dir == MT_C2S)
        g_string_append_len(many_got[si->client.port], (const char *)p, (gssize)n);
}

static void many_sink(void *ud, struct mt_event *ev)
{
    (void)ud;
    if (ev->type == MT_EV_SESSION_END)
        many_sessions++;
}

/* Thousands of flows open at once, their packets interleaved at random,
 * closed in a random order in two waves: the flow table grows, moves
 * entries back as flows leave it and shrinks, and every packet still
 * reaches its own flow (each session gets exactly the bytes its client
 * sent). */
/* Idle expiry goes by a clock that one damaged timestamp does not move: a
 * packet of another flow stamped an hour ahead (or back), between two
 * segments of a session, closes nothing; two packets an hour ahead (a
 * capture merged from two periods) do expire the session. */
static void time_packet(struct mt_engine *e, int flow, int64_t ts, uint8_t flags, uint32_t seq,
                        const char *data, uint64_t *num)
{
    struct mt_packet pk;
    memset(&pk, 0, sizeof(pk));
    struct mt_endpoint cl = { .family = 4, .addr = { 192, 0, 2, (uint8_t)(1 + flow) }, .port = 40000 };
    struct mt_endpoint sv = { .family = 4, .addr = { 192, 0, 2, 25 }, .port = 25 };
    pk.src = cl;
    pk.dst = sv;
    pk.flags = flags;
    pk.seq = seq;
    pk.payload = (const uint8_t *)data;
    pk.len = data ? (uint32_t)strlen(data) : 0;
    pk.num = ++*num;
    pk.ts_us = ts;
    mt_engine_packet(e, &pk);
}

/* clock_only: the other flows' packets are another shard's (--workers):
 * only their time reaches this engine (mt_engine_clock), which must then
 * expire its own flow exactly as when it saw them whole. */
#define CLOCK_T0 ((int64_t)1700000000 * G_USEC_PER_SEC)

/* An engine with the default limits (lim) counting into c, with flow 0
 * opened at CLOCK_T0 and its first line sent (packets 1 and 2). */
static struct mt_engine *clock_engine(struct count *c, struct mt_limits *lim, uint64_t *num)
{
    mt_limits_default(lim);
    memset(c, 0, sizeof(*c));
    c->c2s = g_string_new(NULL);
    struct mt_engine *e = mt_engine_new(lim, count_sink, c);
    mt_engine_set_stream_hook(e, stream_sink, c);
    *num = 0;
    time_packet(e, 0, CLOCK_T0, MT_TH_SYN, 999, NULL, num);
    time_packet(e, 0, CLOCK_T0 + 10, MT_TH_ACK | MT_TH_PSH, 1000, "EHLO a\r\n", num);
    return e;
}

/* Another shard's packet at time ts: only its time reaches e. */
static void clock_tick(struct mt_engine *e, uint64_t *num, int64_t ts)
{
    struct mt_packet pk = { .num = ++*num, .ts_us = ts };
    mt_engine_clock(e, &pk);
}

static void check_clock_as(int64_t stray, int nstray, bool expires, bool clock_only)
{
    struct mt_limits lim;
    struct count c;
    uint64_t num;
    struct mt_engine *e = clock_engine(&c, &lim, &num);
    for (int i = 0; i < nstray; i++) { /* another flow's packets */
        if (clock_only)
            clock_tick(e, &num, CLOCK_T0 + stray + i);
        else
            time_packet(e, 1 + i, CLOCK_T0 + stray + i, MT_TH_SYN, 5000, NULL, &num);
    }
    time_packet(e, 0, CLOCK_T0 + (expires ? stray + nstray : 20), MT_TH_ACK | MT_TH_PSH, 1008,
                "QUIT\r\n", &num);
    mt_engine_finish(e);
    mt_engine_free(e);
    if (expires) {
        g_assert_nonnull(strstr(c.anomalies, "flow_idle"));
    } else {
        g_assert_null(strstr(c.anomalies, "flow_idle"));
        g_assert_cmpstr(c.c2s->str, ==, "EHLO a\r\nQUIT\r\n");
        g_assert_cmpint(c.sessions, ==, 1 + (clock_only ? 0 : nstray));
    }
    g_string_free(c.c2s, TRUE);
}

static void check_clock(int64_t stray, int nstray, bool expires)
{
    check_clock_as(stray, nstray, expires, false);
    check_clock_as(stray, nstray, expires, true);
}

/* Another shard's packets, 100 s apart, carry the time past the idle
 * timeout: this engine's quiet flow expires idle then (flow_idle), as it
 * would in one engine, not only at the end of the capture. */
static void test_clock_other_shard_idles(void)
{
    struct mt_limits lim;
    struct count c;
    uint64_t num;
    struct mt_engine *e = clock_engine(&c, &lim, &num);
    int64_t step = (int64_t)100 * G_USEC_PER_SEC;
    for (int i = 1; i * step <= (int64_t)(lim.idle_timeout + 200) * G_USEC_PER_SEC; i++)
        clock_tick(e, &num, CLOCK_T0 + i * step);
    g_assert_nonnull(strstr(c.anomalies, "flow_idle")); /* before the end */
    g_assert_cmpint(c.sessions, ==, 1);
    mt_engine_finish(e);
    mt_engine_free(e);
    g_string_free(c.c2s, TRUE);
}

static void test_clock_stray_ahead(void) { check_clock((int64_t)3600 * G_USEC_PER_SEC, 1, false); }
static void test_clock_stray_behind(void) { check_clock(-(int64_t)3600 * G_USEC_PER_SEC, 1, false); }
static void test_clock_leap_confirmed(void) { check_clock((int64_t)3600 * G_USEC_PER_SEC, 2, true); }

static void test_many_flows(void)
{
    enum { N = 3000, BASE = 20000 };
    struct mt_limits lim;
    mt_limits_default(&lim);
    struct synth s = { .e = mt_engine_new(&lim, many_sink, NULL) };
    mt_engine_set_stream_hook(s.e, many_stream, NULL);
    many_sessions = 0;
    static uint32_t seq[N][2];
    static int order[N];
    GRand *rnd = g_rand_new_with_seed(7);
    for (int i = 0; i < N; i++) {
        many_got[BASE + i] = g_string_new(NULL);
        seq[i][MT_C2S] = (uint32_t)g_rand_int(rnd);
        seq[i][MT_S2C] = (uint32_t)g_rand_int(rnd);
        order[i] = i;
    }
    /* phase: 0 handshake, 1 and 2 data, 3 closing; the first half (in a
     * shuffled order) closes at phase 3 of the first round, the rest after
     * more data */
    for (int round = 0; round < 2; round++) {
        for (int phase = 0; phase < 4; phase++) {
            for (int i = N - 1; i > 0; i--) { /* shuffle */
                int j = g_rand_int_range(rnd, 0, i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
            for (int k = 0; k < N; k++) {
                int i = order[k];
                bool first_half = i < N / 2;
                if (round == 1 && first_half)
                    continue; /* closed already */
                if (round == 1 && phase == 0)
                    continue; /* no new handshake */
                if (round == 0 && phase == 3 && !first_half)
                    continue; /* closes in the second round */
                s.client_port = (uint16_t)(BASE + i);
                s.seq[MT_C2S] = seq[i][MT_C2S];
                s.seq[MT_S2C] = seq[i][MT_S2C];
                if (phase == 0) {
                    synth_pkt(&s, MT_C2S, MT_TH_SYN, NULL, 0);
                    synth_pkt(&s, MT_S2C, MT_TH_SYN | MT_TH_ACK, NULL, 0);
                } else if (phase < 3) {
                    char line[32];
                    int n = g_snprintf(line, sizeof(line), "NOOP %d.%d.%d\r\n", i, round, phase);
                    synth_pkt(&s, MT_C2S, MT_TH_ACK | MT_TH_PSH, line, (uint32_t)n);
                } else {
                    synth_pkt(&s, MT_C2S, MT_TH_FIN | MT_TH_ACK, NULL, 0);
                    synth_pkt(&s, MT_S2C, MT_TH_FIN | MT_TH_ACK, NULL, 0);
                }
                seq[i][MT_C2S] = s.seq[MT_C2S];
                seq[i][MT_S2C] = s.seq[MT_S2C];
            }
        }
        if (round == 0)
            g_assert_cmpint(many_sessions, ==, N / 2); /* the first half ended at its FINs */
    }
    mt_engine_finish(s.e);
    mt_engine_free(s.e);
    g_assert_cmpint(many_sessions, ==, N);
    for (int i = 0; i < N; i++) {
        char want[128];
        if (i < N / 2)
            g_snprintf(want, sizeof(want), "NOOP %d.0.1\r\nNOOP %d.0.2\r\n", i, i);
        else
            g_snprintf(want, sizeof(want),
                       "NOOP %d.0.1\r\nNOOP %d.0.2\r\nNOOP %d.1.1\r\nNOOP %d.1.2\r\n", i, i,
                       i, i);
        g_assert_cmpstr(many_got[BASE + i]->str, ==, want);
        g_string_free(many_got[BASE + i], TRUE);
        many_got[BASE + i] = NULL;
    }
    g_rand_free(rnd);
}

/* A gap empties the history (what came before it cannot be compared with
 * anything after): a large ring is given back then, as when everything is
 * acknowledged, not kept by a flow that may stay idle for long. */
static void test_history_gap_releases(void)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    lim.ooo_max = 4096; /* the gap: out-of-order bytes past it */
    struct synth s = { .e = mt_engine_new(&lim, many_sink, NULL), .seq = { 1000, 5000 } };
    const struct mt_reasm_stats *st = mt_engine_reasm_stats(s.e);
    static char line[1000];
    memset(line, 'a', sizeof(line) - 2);
    memcpy(line + sizeof(line) - 2, "\r\n", 2);
    synth_pkt(&s, MT_C2S, MT_TH_SYN, NULL, 0);
    synth_pkt(&s, MT_S2C, MT_TH_SYN | MT_TH_ACK, NULL, 0);
    for (int i = 0; i < 100; i++) /* 100,000 bytes the server never acknowledges */
        synth_pkt(&s, MT_C2S, MT_TH_ACK | MT_TH_PSH, line, sizeof(line));
    g_assert_cmpuint(st->hist_held, >=, 100000);
    s.seq[MT_C2S] += 10; /* ten bytes lost, then more than ooo_max after them */
    for (int i = 0; i < 5; i++)
        synth_pkt(&s, MT_C2S, MT_TH_ACK | MT_TH_PSH, line, sizeof(line));
    g_assert_cmpuint(st->gaps, ==, 1);
    g_assert_cmpuint(st->hist_held, <=, 8192); /* only what followed the gap */
    mt_engine_finish(s.e);
    g_assert_cmpuint(st->hist_held, ==, 0);
    mt_engine_free(s.e);
}

/* Out-of-order segments against a model: a stream cut into segments of 2
 * to 300 bytes, plus as many again at random places and lengths (up to
 * 600, so that one spans several buffered segments and the holes between
 * them), some with other bytes, all played in a random order.  The model
 * keeps the first copy of each byte; the engine must deliver exactly that,
 * and report overlap_conflict exactly when a later copy differed. */
static void test_ooo_model(void)
{
    enum { N = 6000, MAXSEG = 400 };
    GRand *rnd = g_rand_new_with_seed(11);
    int conflicts = 0;
    for (int round = 0; round < 60; round++) {
        char stream[N + 1], have[N + 1];
        bool set[N];
        for (int i = 0; i < N; i++)
            stream[i] = (char)('a' + g_rand_int_range(rnd, 0, 26));
        stream[N] = 0;
        struct seg segs[MAXSEG + 8];
        char *bufs[MAXSEG];
        int n = 0;
        for (int off = 0; off < N && n < MAXSEG / 2;) {
            int len = MIN(g_rand_int_range(rnd, 2, 301), N - off);
            if (N - off - len == 1)
                len++; /* no one-byte segment: it may be a keep-alive */
            bufs[n] = g_strndup(stream + off, (gsize)len);
            segs[n] = (struct seg)DATA(MT_C2S, (uint32_t)off, bufs[n]);
            n++;
            off += len;
        }
        int parts = n;
        bool differ = round % 2 == 1; /* odd rounds: some copies differ */
        while (n < 2 * parts) {
            int off = g_rand_int_range(rnd, 0, N - 1);
            int len = MIN(g_rand_int_range(rnd, 2, 601), N - off);
            bufs[n] = g_strndup(stream + off, (gsize)len);
            if (differ && g_rand_int_range(rnd, 0, 8) == 0)
                bufs[n][g_rand_int_range(rnd, 0, len)] = 'Z';
            segs[n] = (struct seg)DATA(MT_C2S, (uint32_t)off, bufs[n]);
            n++;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = g_rand_int_range(rnd, 0, i + 1);
            struct seg t = segs[i];
            segs[i] = segs[j];
            segs[j] = t;
        }
        /* the model: first copy wins */
        bool conflict = false;
        memset(set, 0, sizeof(set));
        for (int i = 0; i < n; i++) {
            const char *d = segs[i].data;
            for (size_t k = 0; d[k]; k++) {
                uint32_t at = segs[i].off + (uint32_t)k;
                if (!set[at]) {
                    set[at] = true;
                    have[at] = d[k];
                } else if (have[at] != d[k]) {
                    conflict = true;
                }
            }
        }
        have[N] = 0;
        conflicts += conflict;
        /* SYNs first, then the shuffled data, then the FINs */
        memmove(segs + 2, segs, (size_t)n * sizeof(*segs));
        segs[0] = (struct seg)SYN(MT_C2S);
        segs[1] = (struct seg)SYN(MT_S2C);
        segs[n + 2] = (struct seg)FIN(MT_C2S, N);
        segs[n + 3] = (struct seg)FIN(MT_S2C, 0);
        segs[n + 4] = (struct seg)END;
        struct count c;
        play(&c, g_rand_int(rnd), 7000, segs);
        g_assert_cmpint(c.sessions, ==, 1);
        g_assert_cmpuint(c.c2s->len, ==, N);
        g_assert_cmpstr(c.c2s->str, ==, have);
        g_assert_cmpint(strstr(c.anomalies, "overlap_conflict") != NULL, ==, conflict);
        g_assert_null(strstr(c.anomalies, "gap"));
        g_assert_null(strstr(c.anomalies, "ooo_overflow"));
        g_string_free(c.c2s, TRUE);
        for (int i = 0; i < 2 * parts; i++)
            g_free(bufs[i]);
    }
    g_assert_cmpint(conflicts, >, 5);  /* the odd rounds' copies did differ */
    g_assert_cmpint(conflicts, <=, 30); /* and the even rounds' did not */
    g_rand_free(rnd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/reasm/history ring buffer", test_history_ring);
    g_test_add_func("/reasm/history referring to a pinned window", test_history_pinned);
    g_test_add_func("/reasm/history copies only what it must", test_history_copies);
    g_test_add_func("/reasm/history references past the cap", test_history_refs_cap);
    g_test_add_func("/reasm/history with more references than kept",
                    test_history_pinned_many);
    g_test_add_func("/reasm/closed flows in order", test_closed_order);
    g_test_add_func("/reasm/many flows", test_many_flows);
    g_test_add_func("/reasm/out-of-order segments against a model", test_ooo_model);
    g_test_add_func("/reasm/history given back at a gap", test_history_gap_releases);
    g_test_add_func("/reasm/clock: one packet an hour ahead expires nothing", test_clock_stray_ahead);
    g_test_add_func("/reasm/clock: one packet an hour behind expires nothing", test_clock_stray_behind);
    g_test_add_func("/reasm/clock: a leap two packets confirm expires", test_clock_leap_confirmed);
    g_test_add_func("/reasm/clock: another shard's packets expire an idle flow",
                    test_clock_other_shard_idles);
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        char *path = g_strdup_printf("/reasm/%s", rows[i].name);
        g_test_add_data_func(path, GSIZE_TO_POINTER(i), test_row);
        g_free(path);
    }
    return g_test_run();
}
