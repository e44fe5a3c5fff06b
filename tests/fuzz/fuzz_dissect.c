/* Fuzz harness: one TCP session of synthetic segments fed straight into
 * the engine (as tests/unit/synth.h does), so the fuzzer works on the
 * protocol detector and the SMTP, POP3 and IMAP dissectors rather than on
 * packet headers.
 *
 * Input format (make_seeds.py writes seeds in it):
 *
 *   byte 0, the session:
 *     bits 0-1  a canned server greeting sent first: none, SMTP, POP3, IMAP
 *     bits 2-4  server port: 25, 587, 110, 143, 2525, 465, 993, 8025
 *     bit 5     tight caps (fz_limits_tight) instead of the defaults
 *     bit 6     no handshake: the session is picked up mid-stream
 *     bit 7     the client's first segment is not ACKed before the server's
 *               (ack numbers stay at the ISN: exercises the unacked window)
 *   then operations until the input ends; each starts with a control byte c:
 *     bit 7 of c     direction: 0 client to server, 1 server to client
 *     c & 0x7f = L   1..127: a segment of the next L bytes
 *     L = 0          an extended operation chosen by the next byte x % 8:
 *       0  a segment of N bytes, N in the next two bytes (little-endian)
 *       1  a hole: the sequence number skips (next byte + 1) * 16 bytes
 *       2  the previous segment of this direction sent again, same bytes
 *       3  a retransmission with other bytes: the next byte is a length k,
 *          then k bytes sent at (next sequence - k), overlapping what was sent
 *       4  FIN    5  RST    6  a bare ACK
 *       7  time jumps past the idle timeout and the engine expires flows
 * Data past the end of the input is cut off.
 *
 * Each input runs twice: as one thread runs it, and with the finished
 * messages handed over (defer.h) and run only after the engine's later
 * events were queued, as the two-thread pipeline runs them (after the
 * session itself may be gone), with the commands and replies read back
 * from the records the pipeline hands them over in.  The second run also
 * reads the segments from a copy of the input pinned as a capture's
 * window is (mt_engine_window), so that the retransmission check
 * refers to their bytes instead of copying them; every PIN_STEP bytes of
 * input the window moves on, and the bytes no operation reads again are
 * overwritten, as a refilled window's are.  The two event
 * streams, written out field by field, must be identical; the harness
 * aborts otherwise. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "defer.h"
#include "engine.h"
#include "mime.h"
#include "output_int.h"
#include "fuzz_common.h"
#include "fuzz_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the event streams, written out to be compared ---- */

static void put_bytes(GString *g, const void *p, size_t n)
{
    g_string_append_printf(g, "%zu:", n);
    if (n)
        g_string_append_len(g, p, (gssize)n);
    g_string_append_c(g, '|');
}

static void put_str(GString *g, const char *s)
{
    if (s)
        put_bytes(g, s, strlen(s));
    else
        g_string_append(g, "-|");
}

static void put_session(GString *g, const struct mt_session_info *si)
{
    g_string_append_printf(g, "S%llu %d %lld-%lld %llu/%llu %llu h%d c%d t%d x%d g%u/%llu ",
                           (unsigned long long)si->id, si->proto, (long long)si->start_us,
                           (long long)si->end_us, (unsigned long long)si->bytes[0],
                           (unsigned long long)si->bytes[1], (unsigned long long)si->packets,
                           si->handshake, si->complete, si->starttls, si->closed, si->ngaps,
                           (unsigned long long)si->gap_bytes);
    for (uint32_t i = 0; si->gaps && i < si->ngaps && i < MT_CAP_GAPS_KEPT; i++)
        g_string_append_printf(g, "[%d %llu %llu]", si->gaps[i].dir,
                               (unsigned long long)si->gaps[i].offset,
                               (unsigned long long)si->gaps[i].len);
    for (int a = 0; a < MT_AN__COUNT; a++)
        g_string_append_printf(g, "%u,", si->anomalies[a]);
    put_str(g, si->client_name);
    for (char **c = si->capabilities; c && *c; c++)
        put_str(g, *c);
}

static void put_event(GString *g, const struct mt_event *ev)
{
    g_string_append_printf(g, "\n%d %d %lld %llu S%llu ", ev->type, ev->proto, (long long)ev->ts_us,
                           (unsigned long long)ev->pkt, (unsigned long long)ev->sess->id);
    switch (ev->type) {
    case MT_EV_SESSION_START:
    case MT_EV_SESSION_END: put_session(g, ev->sess); break;
    case MT_EV_COMMAND:
        put_bytes(g, ev->u.cmd.tag.p, ev->u.cmd.tag.n);
        put_bytes(g, ev->u.cmd.verb.p, ev->u.cmd.verb.n);
        put_bytes(g, ev->u.cmd.arg.p, ev->u.cmd.arg.n);
        put_bytes(g, ev->u.cmd.line.p, ev->u.cmd.line.n);
        put_str(g, ev->u.cmd.note);
        g_string_append_printf(g, "a%d s%d", ev->u.cmd.auth_data, ev->u.cmd.secret);
        break;
    case MT_EV_REPLY:
        put_bytes(g, ev->u.reply.tag.p, ev->u.reply.tag.n);
        put_str(g, ev->u.reply.code);
        for (size_t i = 0; i < ev->u.reply.nlines; i++)
            put_bytes(g, ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
        put_str(g, ev->u.reply.note);
        g_string_append_printf(g, "c%llu ", (unsigned long long)ev->u.reply.cmd_pkt);
        put_bytes(g, ev->u.reply.cmd_verb.p, ev->u.reply.cmd_verb.n);
        break;
    case MT_EV_CREDENTIAL:
        put_str(g, ev->u.cred->mechanism);
        put_str(g, ev->u.cred->username);
        put_str(g, ev->u.cred->password);
        break;
    case MT_EV_MESSAGE: {
        const struct mt_message *m = ev->u.msg;
        g_string_append_printf(g, "%llu %d %llu %s c%d t%d ", (unsigned long long)m->index,
                               m->source, (unsigned long long)m->size, m->sha256, m->complete,
                               m->truncated);
        put_str(g, m->mail_from);
        put_str(g, m->mail_params);
        for (size_t i = 0; i < m->nrcpt; i++) {
            put_str(g, m->rcpt_to[i]);
            put_str(g, m->rcpt_params ? m->rcpt_params[i] : NULL);
        }
        put_str(g, m->mailbox);
        put_str(g, m->uid);
        put_str(g, m->flags);
        put_str(g, m->section);
        put_bytes(g, m->raw, m->raw_len);
        put_str(g, m->headers.from);
        put_str(g, m->headers.to);
        put_str(g, m->headers.subject);
        for (size_t i = 0; i < m->nparts; i++) {
            put_str(g, m->parts[i].path);
            put_str(g, m->parts[i].content_type);
            put_str(g, m->parts[i].filename);
            g_string_append_printf(g, "%llu %s ", (unsigned long long)m->parts[i].size,
                                   m->parts[i].sha256);
        }
        break;
    }
    case MT_EV_ANOMALY:
        g_string_append_printf(g, "%d %d ", ev->u.anomaly.kind, ev->u.anomaly.dir);
        put_str(g, ev->u.anomaly.detail);
        break;
    default: break;
    }
}

static void sink_put(void *ud, struct mt_event *ev)
{
    fz_sink(NULL, ev);
    put_event(ud, ev);
}

/* Handed-over items and the events written before each, in order, run
 * after the input is done. */
struct fz_defer {
    GString *cur;     /* events since the last item */
    GPtrArray *queue; /* GString*, struct mt_deferred*, GString*, ... */
};

/* The handed-over side also sends commands and replies through the
 * records the pipeline hands them over in (output/records.c), as
 * mailtap --json does: what comes back must be the event that went in. */
static void sink_queue(void *ud, struct mt_event *ev)
{
    struct fz_defer *q = ud;
    if (ev->type != MT_EV_COMMAND && ev->type != MT_EV_REPLY) {
        sink_put(q->cur, ev);
        return;
    }
    fz_sink(NULL, ev);
    GString *rec = g_string_new(NULL);
    mt_rec_put(rec, ev);
    struct mt_event back;
    struct mt_session_info si;
    struct mt_bytes *lines = NULL;
    size_t cap = 0;
    char kind;
    const char *pl;
    uint32_t len;
    if (mt_frame_next(rec->str, rec->len, &kind, &pl, &len) != rec->len ||
        !mt_rec_get(kind, pl, len, &back, &si, &lines, &cap)) {
        fprintf(stderr, "fuzz_dissect: a record of event type %d does not read back\n",
                ev->type);
        abort();
    }
    put_event(q->cur, &back);
    g_free(lines);
    g_string_free(rec, TRUE);
}

static void defer_put(void *ud, struct mt_deferred *d, struct mt_bufpool *pool)
{
    (void)pool;
    struct fz_defer *q = ud;
    g_ptr_array_add(q->queue, q->cur);
    g_ptr_array_add(q->queue, d);
    q->cur = g_string_new(NULL);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    GString *one = g_string_new(NULL);
    fz_session_run(data, size, sink_put, one, NULL, NULL, NULL);

    struct fz_defer q = { g_string_new(NULL), g_ptr_array_new() };
    uint8_t *win = g_malloc(size);
    fz_session_run(data, size, sink_queue, &q, defer_put, &q, win);
    g_free(win);
    /* the engine is gone: now the other side runs, in order */
    GString *two = g_string_new(NULL);
    struct mt_defer_state *st = mt_defer_state_new();
    for (guint i = 0; i < q.queue->len; i += 2) {
        GString *before = g_ptr_array_index(q.queue, i);
        g_string_append_len(two, before->str, (gssize)before->len);
        g_string_free(before, TRUE);
        struct mt_deferred *d = g_ptr_array_index(q.queue, i + 1);
        mt_deferred_run(st, d, sink_put, two);
        mt_deferred_free(d);
    }
    g_string_append_len(two, q.cur->str, (gssize)q.cur->len);
    mt_defer_state_free(st);
    if (!g_string_equal(one, two)) {
        size_t k = 0;
        while (k < one->len && k < two->len && one->str[k] == two->str[k])
            k++;
        fprintf(stderr, "fuzz_dissect: handed-over messages give other events at byte %zu:\n"
                        "one thread: %.200s\nhanded over: %.200s\n", k, one->str + k, two->str + k);
        abort();
    }
    g_string_free(one, TRUE);
    g_string_free(two, TRUE);
    g_string_free(q.cur, TRUE);
    g_ptr_array_free(q.queue, TRUE);
    return 0;
}
