/* Sessions: protocol detection by content, role repair for captures that
 * missed the handshake, and the reporting functions dissectors use. */
#include "session_int.h"

#include <stdio.h>
#include <string.h>

#include "ascii.h"
#include "framer.h"
#include "grow.h"
#include "mime.h"

struct mt_chunk {
    enum mt_dir dir;
    bool gap;
    uint64_t gap_len;
    uint64_t pkt;
    int64_t ts;
    size_t n;
    uint8_t data[];
};

/* Dissectors by protocol. */
static const struct mt_dissector *dissector_for(enum mt_proto p)
{
    switch (p) {
    case MT_PROTO_SMTP:
        return &mt_smtp_dissector;
    case MT_PROTO_POP3:
        return &mt_pop3_dissector;
    case MT_PROTO_IMAP:
        return &mt_imap_dissector;
    default:
        return NULL;
    }
}

const struct mt_limits *mt_sess_limits(const struct mt_sess *s) { return &s->eng->lim; }
struct mt_bufpool *mt_sess_msgpool(struct mt_sess *s) { return &s->eng->msgpool; }

bool mt_sess_inflate_take(struct mt_sess *s)
{
    if (s->eng->inflating >= s->eng->lim.inflate_max)
        return false;
    s->eng->inflating++;
    return true;
}

void mt_sess_inflate_give(struct mt_sess *s)
{
    if (s->eng->inflating > 0)
        s->eng->inflating--;
}

const struct mt_session_info *mt_sess_info(const struct mt_sess *s) { return &s->info; }
uint64_t mt_sess_pkt(const struct mt_sess *s) { return s->cur_pkt; }
int64_t mt_sess_ts(const struct mt_sess *s) { return s->cur_ts; }

static void set_current(struct mt_sess *s, enum mt_dir dir, const struct mt_packet *pk)
{
    s->cur_dir = dir;
    if (pk) {
        s->cur_pkt = pk->num;
        s->cur_ts = pk->ts_us;
    } else {
        s->cur_ts = s->flow ? s->flow->last_us : s->cur_ts;
    }
    if (s->cur_ts > s->info.end_us)
        s->info.end_us = s->cur_ts;
}

void mt_sess_emit(struct mt_sess *s, struct mt_event *ev)
{
    ev->sess = &s->info;
    ev->proto = s->info.proto;
    ev->ts_us = s->cur_ts;
    ev->pkt = s->cur_pkt;
    s->eng->sink(s->eng->sink_ud, ev);
}

static void emit_start(struct mt_sess *s)
{
    if (s->started)
        return;
    s->started = true;
    struct mt_event ev = { .type = MT_EV_SESSION_START };
    int64_t ts = s->cur_ts;
    uint64_t pkt = s->cur_pkt;
    s->cur_ts = s->info.start_us;
    mt_sess_emit(s, &ev);
    s->cur_ts = ts;
    s->cur_pkt = pkt;
}

static void anomaly_record(struct mt_sess *s, enum mt_dir dir, enum mt_anomaly a,
                           const char *detail)
{
    s->info.anomalies[a]++;
    uint64_t bit = (uint64_t)1 << a;
    if (s->anomaly_sent[dir] & bit)
        return;
    s->anomaly_sent[dir] |= bit;
    emit_start(s);
    struct mt_event ev = { .type = MT_EV_ANOMALY };
    ev.u.anomaly.kind = a;
    ev.u.anomaly.dir = dir;
    ev.u.anomaly.detail = detail;
    mt_sess_emit(s, &ev);
}

void mt_sess_anomaly(struct mt_sess *s, enum mt_dir dir, enum mt_anomaly a, const char *fmt, ...)
{
    char buf[MT_CAP_ANOMALY_DETAIL];
    buf[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
    }
    anomaly_record(s, dir, a, fmt ? buf : NULL);
}

void mt_sess_anomaly_cb(void *ud, enum mt_anomaly a, const char *detail)
{
    struct mt_sess *s = ud;
    anomaly_record(s, s->cur_dir, a, detail);
}

void mt_sess_reasm_anomaly(struct mt_sess *s, enum mt_dir dir, enum mt_anomaly a,
                           const char *detail, const struct mt_packet *pk)
{
    set_current(s, dir, pk);
    anomaly_record(s, dir, a, detail);
}

void mt_sess_line_anomalies(struct mt_sess *s, enum mt_dir dir, unsigned flags)
{
    if (flags & MT_LINE_TRUNCATED)
        mt_sess_anomaly(s, dir, MT_AN_LINE_TOO_LONG, "line longer than %u bytes",
                        s->eng->lim.line_max);
    if (flags & MT_LINE_NUL)
        mt_sess_anomaly(s, dir, MT_AN_NUL_BYTE, NULL);
    if (flags & MT_LINE_BARE_CR)
        mt_sess_anomaly(s, dir, MT_AN_BARE_CR, NULL);
    if (flags & MT_LINE_BARE_LF)
        mt_sess_anomaly(s, dir, MT_AN_BARE_LF, NULL);
}

void mt_sess_command(struct mt_sess *s, const uint8_t *p, size_t n, const char *note,
                     bool auth_data, bool secret)
{
    struct mt_event ev = { .type = MT_EV_COMMAND };
    const uint8_t *sp = memchr(p, ' ', n);
    ev.u.cmd.line = (struct mt_bytes){ p, n };
    if (auth_data) {
        ev.u.cmd.arg = (struct mt_bytes){ p, n };
    } else {
        size_t vn = sp ? (size_t)(sp - p) : n;
        ev.u.cmd.verb = (struct mt_bytes){ p, vn };
        if (sp)
            ev.u.cmd.arg = (struct mt_bytes){ sp + 1, n - vn - 1 };
    }
    ev.u.cmd.note = note;
    ev.u.cmd.auth_data = auth_data;
    ev.u.cmd.secret = secret;
    mt_sess_emit(s, &ev);
}

void mt_sess_start_tls(struct mt_sess *s)
{
    s->info.starttls = true;
    s->phase = MT_PHASE_PASSIVE;
    struct mt_event ev = { .type = MT_EV_TLS };
    mt_sess_emit(s, &ev);
}

void mt_sess_set_client_name(struct mt_sess *s, const uint8_t *p, size_t n)
{
    /* at most 255 bytes, cut before a character rather than inside one
     * (which would print as U+FFFD) */
    g_free(s->info.client_name);
    s->info.client_name = g_strndup((const char *)p, mt_utf8_cut(p, n, 255));
}

void mt_sess_set_capabilities(struct mt_sess *s, char **caps)
{
    g_free(s->info.capabilities);
    s->info.capabilities = caps;
}

void mt_caps_add(struct mt_caps_builder *b, const void *p, size_t n)
{
    const char *z = memchr(p, 0, n); /* g_strndup would stop there */
    if (z)
        n = (size_t)(z - (const char *)p);
    if (n >= b->cap - b->len) { /* room for n + 1 bytes, without overflow */
        size_t cap = mt_grow_cap(b->cap, 256, b->len + n + 1, SIZE_MAX / 2);
        b->w = g_realloc(b->w, cap);
        b->cap = cap;
    }
    memcpy(b->w + b->len, p, n);
    b->w[b->len + n] = '\0';
    b->len += n + 1;
    b->n++;
}

char **mt_caps_finish(struct mt_caps_builder *b)
{
    size_t len = b->len;
    char **v = g_malloc((b->n + 1) * sizeof(char *) + len);
    char *p = (char *)(v + b->n + 1);
    const char *end = p + len;
    size_t i = 0;
    if (len)
        memcpy(p, b->w, len);
    for (; i < b->n && p < end; i++) {
        v[i] = p;
        p += strlen(p) + 1; /* each word ends with its NUL (mt_caps_add) */
    }
    v[i] = NULL;
    mt_caps_discard(b);
    return v;
}

void mt_caps_discard(struct mt_caps_builder *b)
{
    g_free(b->w);
    memset(b, 0, sizeof *b);
}

/* A string with more room than this is freed rather than kept. */
#define STRING_KEEP 256

GString *mt_sess_string(struct mt_sess *s)
{
    struct mt_engine *e = s->eng;
    if (e->nstrings)
        return e->strings[--e->nstrings];
    return g_string_new(NULL);
}

void mt_sess_string_give(struct mt_sess *s, GString *g)
{
    struct mt_engine *e = s->eng;
    if (g->allocated_len <= STRING_KEEP && e->nstrings < MT_CAP_STRING_POOL) {
        g->len = 0;
        g->str[0] = '\0';
        e->strings[e->nstrings++] = g;
        return;
    }
    g_string_free(g, TRUE);
}

void mt_sess_credential(struct mt_sess *s, const struct mt_credential *c)
{
    struct mt_event ev = { .type = MT_EV_CREDENTIAL };
    ev.u.cred = c;
    mt_sess_emit(s, &ev);
}

void mt_msg_report_run(const struct mt_msg_report *r, struct mt_msgbuf *mb,
                       struct mt_message *meta)
{
    struct mt_mime_result mr;
    memset(&mr, 0, sizeof(mr));
    /* the message's digest beside its parts' when it is that of the kept
     * bytes, not yet computed */
    bool hash_here = mt_msgbuf_hash_pending(mb);
    mt_mime_parse_hashed(mb->data, mb->len, r->lim, &mr, r->anomaly, r->ud,
                         hash_here ? meta->sha256 : NULL);
    meta->raw = mb->data;
    meta->raw_len = mb->len;
    meta->size = mb->total;
    if (!hash_here)
        mt_msgbuf_sha256_hex(mb, meta->sha256);
    meta->truncated = mb->truncated;
    if (mb->truncated) {
        char detail[MT_CAP_ANOMALY_DETAIL];
        snprintf(detail, sizeof(detail), "message of %llu bytes, %llu kept",
                 (unsigned long long)mb->total, (unsigned long long)mb->len);
        r->anomaly(r->ud, MT_AN_MESSAGE_TRUNCATED, detail);
    }
    if (mb->gap)
        meta->complete = false;
    meta->headers = mr.headers;
    meta->parts = mr.parts;
    meta->nparts = mr.nparts;
    struct mt_event ev = { .type = MT_EV_MESSAGE };
    ev.u.msg = meta;
    r->emit(r->ud, &ev);
    g_free(meta->file);
    meta->file = NULL;
    mt_mime_result_clear(&mr);
    meta->parts = NULL;
    meta->nparts = 0;
    memset(&meta->headers, 0, sizeof(meta->headers));
}

static void sess_emit_cb(void *ud, struct mt_event *ev)
{
    mt_sess_emit(ud, ev);
}

void mt_sess_message(struct mt_sess *s, struct mt_msgbuf *mb, struct mt_message *meta)
{
    if (s->eng->defer_fn) {
        /* analyzed on the other side, in order; the start event (sent
         * when the dissector was chosen) is never among the deferred */
        emit_start(s);
        mt_defer_message(s, mb, meta);
        return;
    }
    const struct mt_msg_report r = { &s->eng->lim, mt_sess_anomaly_cb, sess_emit_cb, s };
    mt_msg_report_run(&r, mb, meta);
    mb->len = 0;
    mb->active = false;
    /* a large buffer is not kept for the session's life (message.h) */
    if (mb->cap > MT_MSGBUF_KEEP) {
        mt_buf_free(mb->data, mb->cap);
        mb->data = NULL;
        mb->cap = 0;
    }
}

/* ---- detection ---- */

struct mt_sess *mt_sess_new(struct mt_engine *e, struct mt_flow *f, const struct mt_packet *pk)
{
    struct mt_sess *s = g_new0(struct mt_sess, 1);
    s->eng = e;
    s->flow = f;
    s->info.id = f->id;
    s->info.client = f->ep[MT_C2S];
    s->info.server = f->ep[MT_S2C];
    s->info.start_us = s->info.end_us = pk->ts_us;
    s->cur_pkt = pk->num;
    s->cur_ts = pk->ts_us;
    s->chunks = g_ptr_array_new_with_free_func(g_free);
    return s;
}

/* Copies up to cap bytes of direction dir's buffered data into buf. */
static size_t gather(const struct mt_sess *s, enum mt_dir dir, char *buf, size_t cap)
{
    size_t n = 0;
    for (guint i = 0; i < s->chunks->len && n < cap; i++) {
        const struct mt_chunk *c = g_ptr_array_index(s->chunks, i);
        if (c->dir != dir)
            continue;
        if (c->gap)
            break;
        size_t k = MIN(c->n, cap - n);
        memcpy(buf + n, c->data, k);
        n += k;
    }
    return n;
}

/* Verb of a line, upper-cased into out. */
static void first_word(const char *p, size_t n, char *out, size_t cap)
{
    size_t i = 0;
    while (i < n && i + 1 < cap && p[i] != ' ' && p[i] != '\r' && p[i] != '\n') {
        out[i] = g_ascii_toupper(p[i]);
        i++;
    }
    out[i] = 0;
}

static bool in_list(const char *w, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(w, *list) == 0)
            return true;
    return false;
}

static const char *const smtp_only[] = { "EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA",
                                         "BDAT", "STARTTLS", "VRFY", "EXPN", NULL };
static const char *const pop3_only[] = { "USER", "PASS", "APOP", "CAPA", "STAT", "LIST",
                                         "RETR", "DELE", "UIDL", "TOP", "STLS", NULL };
/* commands SMTP shares with POP3 or IMAP: they alone decide nothing */
static const char *const shared_cmds[] = { "AUTH", "QUIT", "NOOP", "RSET", NULL };
static const char *const imap_cmds[] = {
    "LOGIN", "CAPABILITY", "AUTHENTICATE", "SELECT", "EXAMINE", "FETCH", "UID", "LOGOUT",
    "NOOP", "STARTTLS", "ID", "LIST", "LSUB", "STATUS", "APPEND", "IDLE", "NAMESPACE",
    "ENABLE", "SEARCH", "COMPRESS", "STORE", "COPY", "MOVE", "EXPUNGE", "CLOSE", "CREATE",
    "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "CHECK", "GETQUOTAROOT", "UNSELECT", NULL
};

/* What a client's line says about the protocol. */
static enum mt_proto client_line_proto(const char *p, size_t n)
{
    char w[16];
    first_word(p, n, w, sizeof(w));
    if (in_list(w, smtp_only))
        return MT_PROTO_SMTP;
    if (in_list(w, pop3_only))
        return MT_PROTO_POP3;
    /* IMAP: tag SP command */
    const char *sp = memchr(p, ' ', n);
    if (sp && sp > p && sp[-1] != '*' && sp[-1] != '+') {
        size_t rest = n - (size_t)(sp + 1 - p);
        first_word(sp + 1, rest, w, sizeof(w));
        if (in_list(w, imap_cmds))
            return MT_PROTO_IMAP;
    }
    return MT_PROTO_UNKNOWN;
}

static bool is_smtp_banner(const char *p, size_t n)
{
    return n >= 4 && !memcmp(p, "220", 3) && (p[3] == ' ' || p[3] == '-' || p[3] == '\r');
}

static enum mt_proto server_line_proto(const char *p, size_t n)
{
    if (mt_prefix_ci(p, n, "+OK"))
        return MT_PROTO_POP3;
    if (mt_prefix_ci(p, n, "* OK") || mt_prefix_ci(p, n, "* PREAUTH") ||
        mt_prefix_ci(p, n, "* BYE"))
        return MT_PROTO_IMAP;
    if (is_smtp_banner(p, n))
        return MT_PROTO_SMTP;
    return MT_PROTO_UNKNOWN;
}

static bool looks_tls(const char *p, size_t n)
{
    return n >= 3 && (uint8_t)p[0] == 0x16 && p[1] == 0x03 && (uint8_t)p[2] <= 0x04;
}

enum { UNDECIDED = -1 };

static bool mail_port(uint16_t p)
{
    return p == 25 || p == 110 || p == 143 || p == 465 || p == 587 || p == 993 || p == 995 ||
           p == 2525;
}

/* Decides the protocol from what is buffered; *swap: roles are reversed.
 * final: no more bytes will come. */
static int detect(struct mt_sess *s, bool final, bool *swap)
{
    char cbuf[512], sbuf[512];
    size_t cn = gather(s, MT_C2S, cbuf, sizeof(cbuf));
    size_t sn = gather(s, MT_S2C, sbuf, sizeof(sbuf));
    const char *clf = memchr(cbuf, '\n', cn), *slf = memchr(sbuf, '\n', sn);
    size_t cl = clf ? (size_t)(clf - cbuf) : cn, sl = slf ? (size_t)(slf - sbuf) : sn;
    bool cline = clf != NULL || (final && cn > 0), sline = slf != NULL || (final && sn > 0);
    *swap = false;

    uint16_t sport = s->info.server.port;
    if (sport == 465 || sport == 993 || sport == 995)
        return MT_PROTO_TLS;
    if (looks_tls(cbuf, cn) || looks_tls(sbuf, sn))
        return MT_PROTO_TLS;

    if (!s->info.handshake && !mail_port(s->info.server.port) && !mail_port(s->info.client.port)) {
        /* roles from content, where no handshake and no well-known port
         * tells them: a greeting or reply from the "client", a command
         * from the "server" */
        bool c_greets = cline && server_line_proto(cbuf, cl) != MT_PROTO_UNKNOWN;
        bool s_greets = sline && server_line_proto(sbuf, sl) != MT_PROTO_UNKNOWN;
        bool s_commands = sline && client_line_proto(sbuf, sl) != MT_PROTO_UNKNOWN;
        bool c_commands = cline && client_line_proto(cbuf, cl) != MT_PROTO_UNKNOWN;
        if ((c_greets && !s_greets) || (s_commands && !c_commands)) {
            *swap = true;
            char tmp[512];
            memcpy(tmp, cbuf, cn);
            memcpy(cbuf, sbuf, sn);
            memcpy(sbuf, tmp, cn);
            size_t t = cn;
            cn = sn;
            sn = t;
            t = cl;
            cl = sl;
            sl = t;
            bool b = cline;
            cline = sline;
            sline = b;
        }
    }

    enum mt_proto sp = sline ? server_line_proto(sbuf, sl) : MT_PROTO_UNKNOWN;
    enum mt_proto cp = cline ? client_line_proto(cbuf, cl) : MT_PROTO_UNKNOWN;
    char cw[16];
    first_word(cbuf, cl, cw, sizeof(cw));
    bool c_shared = cline && in_list(cw, shared_cmds);
    if (sp == MT_PROTO_POP3 || sp == MT_PROTO_IMAP)
        return sp;
    if (sp == MT_PROTO_SMTP) {
        /* FTP greets with 220 too: wait for the client's first command */
        if (cp == MT_PROTO_SMTP)
            return MT_PROTO_SMTP;
        if (cline)
            return c_shared ? MT_PROTO_SMTP : MT_PROTO_UNKNOWN;
        return final ? MT_PROTO_SMTP : UNDECIDED;
    }
    if (cp != MT_PROTO_UNKNOWN)
        return cp;
    /* mid-stream: SMTP replies from the server, alone, or answering a
     * command SMTP shares with POP3 and IMAP (AUTH, QUIT, NOOP, RSET:
     * neither answers with a reply code) */
    bool s_code = sline && sl >= 4 && g_ascii_isdigit(sbuf[0]) && g_ascii_isdigit(sbuf[1]) &&
                  g_ascii_isdigit(sbuf[2]) && (sbuf[3] == ' ' || sbuf[3] == '-');
    if (s_code && ((!cline && final) || c_shared))
        return MT_PROTO_SMTP;
    if (final || (cline && sline) || cn >= MT_CAP_DETECT_BYTES || sn >= MT_CAP_DETECT_BYTES) {
        /* nothing in the content decides: a command both protocols share
         * (QUIT, NOOP, RSET, AUTH) on a standard port */
        if (c_shared && !sline) {
            if (sport == 25 || sport == 587 || sport == 2525)
                return MT_PROTO_SMTP;
            if (sport == 110)
                return MT_PROTO_POP3;
        }
        return MT_PROTO_UNKNOWN;
    }
    return UNDECIDED;
}

static void feed(struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n)
{
    if (s->phase == MT_PHASE_DISSECT && s->d->data)
        s->d->data(s->dst, s, dir, p, n);
}

/* Protocol chosen: report the session and replay what was buffered. */
static void decided(struct mt_sess *s, enum mt_proto proto, bool swap)
{
    if (swap && s->eng->reasm) {
        mt_reasm_swap(s->eng->reasm, s->flow);
        struct mt_endpoint e = s->info.client;
        s->info.client = s->info.server;
        s->info.server = e;
        uint64_t b = s->info.bytes[0];
        s->info.bytes[0] = s->info.bytes[1];
        s->info.bytes[1] = b;
        for (guint i = 0; i < s->chunks->len; i++) {
            struct mt_chunk *c = g_ptr_array_index(s->chunks, i);
            c->dir = c->dir == MT_C2S ? MT_S2C : MT_C2S;
        }
        for (guint i = 0; s->info.gaps && i < s->info.ngaps && i < MT_CAP_GAPS_KEPT; i++)
            s->info.gaps[i].dir = s->info.gaps[i].dir == MT_C2S ? MT_S2C : MT_C2S;
    }
    if (swap)
        s->cur_dir = s->cur_dir == MT_C2S ? MT_S2C : MT_C2S;
    if (s->eng->stream_fn) /* the bytes held so far, under their final direction */
        for (guint i = 0; i < s->chunks->len; i++) {
            struct mt_chunk *c = g_ptr_array_index(s->chunks, i);
            if (!c->gap && c->n)
                s->eng->stream_fn(s->eng->stream_ud, &s->info, c->dir, c->data, c->n);
        }
    s->info.proto = proto;
    s->d = dissector_for(proto);
    s->phase = s->d ? MT_PHASE_DISSECT : MT_PHASE_PASSIVE;
    if (s->d)
        s->dst = s->d->create(s);
    emit_start(s);
    GPtrArray *chunks = s->chunks;
    enum mt_dir dir_now = s->cur_dir;
    s->chunks = NULL;
    for (guint i = 0; i < chunks->len; i++) {
        struct mt_chunk *c = g_ptr_array_index(chunks, i);
        s->cur_pkt = c->pkt;
        s->cur_ts = c->ts;
        s->cur_dir = c->dir;
        if (s->phase != MT_PHASE_DISSECT)
            break;
        if (c->gap)
            s->d->gap(s->dst, s, c->dir, c->gap_len);
        else
            feed(s, c->dir, c->data, c->n);
    }
    g_ptr_array_free(chunks, TRUE);
    s->cur_dir = dir_now;
}

static void buffer_chunk(struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n,
                         bool gap, uint64_t gap_len)
{
    size_t room = MT_CAP_DETECT_BYTES + 512 - s->chunk_bytes[dir];
    size_t k = MIN(n, room);
    struct mt_chunk *c = g_malloc(sizeof(*c) + k);
    c->dir = dir;
    c->gap = gap;
    c->gap_len = gap_len;
    c->pkt = s->cur_pkt;
    c->ts = s->cur_ts;
    c->n = k;
    if (k)
        memcpy(c->data, p, k);
    s->chunk_bytes[dir] += k;
    g_ptr_array_add(s->chunks, c);
    if (k < n) { /* more than the detection cap: decide now with what we have */
        bool swap;
        int pr = detect(s, true, &swap);
        decided(s, pr == UNDECIDED ? MT_PROTO_UNKNOWN : (enum mt_proto)pr, swap);
        /* the rest of this data (cur_dir is final now) */
        if (s->eng->stream_fn)
            s->eng->stream_fn(s->eng->stream_ud, &s->info, s->cur_dir, p + k, n - k);
        feed(s, s->cur_dir, p + k, n - k);
    }
}

static void try_detect(struct mt_sess *s, bool final)
{
    bool swap;
    int pr = detect(s, final, &swap);
    if (pr != UNDECIDED)
        decided(s, (enum mt_proto)pr, swap);
}

void mt_sess_data(struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n,
                  const struct mt_packet *pk)
{
    set_current(s, dir, pk);
    s->info.bytes[dir] += n;
    s->info.handshake = s->flow->handshake;
    if (s->eng->stream_fn && s->phase != MT_PHASE_DETECT)
        s->eng->stream_fn(s->eng->stream_ud, &s->info, dir, p, n);
    switch (s->phase) {
    case MT_PHASE_DETECT:
        buffer_chunk(s, dir, p, n, false, 0);
        if (s->phase == MT_PHASE_DETECT)
            try_detect(s, false);
        break;
    case MT_PHASE_DISSECT:
        feed(s, dir, p, n);
        break;
    case MT_PHASE_PASSIVE:
        break;
    }
}

void mt_sess_gap(struct mt_sess *s, enum mt_dir dir, uint64_t off, uint64_t len,
                 const struct mt_packet *pk)
{
    set_current(s, dir, pk);
    /* a hole declared in two steps (acknowledged part, then the rest) is
     * one gap */
    for (uint32_t i = s->info.ngaps; s->info.gaps && i <= MT_CAP_GAPS_KEPT && i-- > 0;) {
        struct mt_gap *g = &s->info.gaps[i];
        if (g->dir != dir)
            continue;
        if (g->offset + g->len == off) {
            g->len += len;
            s->info.gap_bytes += len;
            set_current(s, dir, pk);
            if (s->phase == MT_PHASE_DISSECT)
                s->d->gap(s->dst, s, dir, len);
            else if (s->phase == MT_PHASE_DETECT)
                buffer_chunk(s, dir, NULL, 0, true, len);
            return;
        }
        break;
    }
    if (s->info.ngaps < MT_CAP_GAPS_KEPT) {
        if (!s->info.gaps)
            s->info.gaps = g_new0(struct mt_gap, MT_CAP_GAPS_KEPT);
        struct mt_gap *g = &s->info.gaps[s->info.ngaps];
        g->dir = dir;
        g->offset = off;
        g->len = len;
    }
    s->info.ngaps++;
    s->info.gap_bytes += len;
    mt_sess_anomaly(s, dir, MT_AN_GAP, "%llu bytes missing at offset %llu",
                    (unsigned long long)len, (unsigned long long)off);
    switch (s->phase) {
    case MT_PHASE_DETECT:
        buffer_chunk(s, dir, NULL, 0, true, len);
        break;
    case MT_PHASE_DISSECT:
        s->d->gap(s->dst, s, dir, len);
        break;
    case MT_PHASE_PASSIVE:
        break;
    }
}

void mt_sess_close(struct mt_sess *s, enum mt_close_reason why, const struct mt_packet *pk)
{
    set_current(s, s->cur_dir, pk);
    if (s->phase == MT_PHASE_DETECT)
        try_detect(s, true);
    if (s->phase == MT_PHASE_DETECT) /* nothing at all was said */
        decided(s, MT_PROTO_UNKNOWN, false);
    s->info.handshake = s->flow->handshake;
    s->info.packets = s->flow->packets;
    s->info.closed = why == MT_CLOSE_FIN || why == MT_CLOSE_RST;
    s->info.complete = s->info.handshake && s->info.closed && s->info.ngaps == 0;
    if (s->info.end_us < s->flow->last_us)
        s->info.end_us = s->flow->last_us;
    s->cur_ts = s->info.end_us;
    if (s->d && s->dst) {
        if (s->phase == MT_PHASE_DISSECT)
            s->d->end(s->dst, s);
        s->d->destroy(s->dst);
        s->dst = NULL;
    }
    emit_start(s);
    if (s->defer_key) {
        /* its messages are still being analyzed on the other side: the
         * end goes after them, with their anomalies counted */
        mt_defer_end(s);
    } else {
        struct mt_event ev = { .type = MT_EV_SESSION_END };
        mt_sess_emit(s, &ev);
    }
    if (s->chunks)
        g_ptr_array_free(s->chunks, TRUE);
    g_free(s->info.client_name);
    g_free(s->info.capabilities); /* one allocation: mt_caps_finish */
    g_free(s->info.gaps);
    g_free(s);
}
