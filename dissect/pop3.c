/* POP3 (RFC 1939) with CAPA and PIPELINING (RFC 2449), SASL AUTH
 * (RFC 5034) and STLS (RFC 2595).
 *
 * Client and server streams are framed into lines separately.  Commands
 * wait in a queue for their replies, so a pipelining client is followed;
 * whether a +OK opens a multi-line reply depends on the command it
 * answers (RFC 1939 3), which is why the queue keeps each command's kind
 * and argument.  RETR and TOP bodies go to a message buffer instead of
 * the reply event; every other multi-line reply (CAPA, LIST, UIDL, AUTH
 * without a mechanism) is reported with its lines dot-unstuffed and
 * without the terminating ".". */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "ascii.h"
#include "framer.h"
#include "sasl.h"
#include "session.h"

/* Commands, as data.  multi: when a +OK to it is followed by lines up to
 * a lone "." (RFC 1939 5-7, RFC 2449 5, RFC 5034 4). */
enum pop3_cmd {
    C_OTHER = 0, C_USER, C_PASS, C_APOP, C_AUTH, C_CAPA, C_STAT, C_LIST, C_UIDL,
    C_RETR, C_TOP, C_DELE, C_RSET, C_NOOP, C_QUIT, C_STLS,
};

enum pop3_multi { M_NEVER = 0, M_ALWAYS, M_NOARG };

static const struct {
    const char *name;
    enum pop3_cmd cmd;
    enum pop3_multi multi;
} pop3_cmds[] = {
    { "USER", C_USER, M_NEVER }, { "PASS", C_PASS, M_NEVER }, { "APOP", C_APOP, M_NEVER },
    { "AUTH", C_AUTH, M_NOARG }, { "CAPA", C_CAPA, M_ALWAYS }, { "STAT", C_STAT, M_NEVER },
    { "LIST", C_LIST, M_NOARG }, { "UIDL", C_UIDL, M_NOARG }, { "RETR", C_RETR, M_ALWAYS },
    { "TOP", C_TOP, M_ALWAYS },  { "DELE", C_DELE, M_NEVER }, { "RSET", C_RSET, M_NEVER },
    { "NOOP", C_NOOP, M_NEVER }, { "QUIT", C_QUIT, M_NEVER }, { "STLS", C_STLS, M_NEVER },
    { NULL, C_OTHER, M_NEVER },
};

/* Client-side states; pop3_cstate() is the only place they change. */
enum pop3_cstate {
    CS_COMMAND = 0, /* reading command lines */
    CS_AUTH,        /* AUTH <mech> sent: client lines are SASL responses until +OK/-ERR */
    CS_TLS,         /* STLS accepted: nothing more is parsed (both directions) */
};

/* Server-side states; pop3_sstate() is the only place they change. */
enum pop3_sstate {
    SS_STATUS = 0,  /* expecting a status line: +OK, -ERR or a "+ " continuation */
    SS_MULTI,       /* collecting a multi-line reply up to "." */
    SS_BODY,        /* RETR/TOP: message lines up to "." go to the message buffer */
    SS_RESYNC,      /* after a gap: skipping lines until one looks like a status */
};

struct pend {
    enum pop3_cmd cmd;
    enum pop3_multi multi;
    bool has_arg;
    char verb[16];
    char *arg;      /* copy of the argument (USER name, PASS word, message number ...) */
    uint64_t pkt;
};

struct pop3 {
    struct mt_sess *s;
    struct mt_framer fr[2];
    enum pop3_cstate cstate;
    enum pop3_sstate sstate;
    GQueue pending;        /* struct pend* */
    bool greeted;
    char *apop_ts;         /* "<...>" from the banner (RFC 1939 7) */
    char *user;            /* last USER argument */
    /* the multi-line reply or RETR/TOP being read, and the command it answers */
    struct mt_lines reply;
    struct pend *cur;
    struct mt_msgbuf msg;
    uint64_t nmsg;
    /* AUTH */
    struct mt_sasl *sasl;
};

static void pop3_cstate(struct pop3 *po, enum pop3_cstate st)
{
    po->cstate = st;
}

static void pop3_sstate(struct pop3 *po, enum pop3_sstate st)
{
    po->sstate = st;
    mt_framer_chunked(&po->fr[MT_S2C], st == SS_BODY);
}

static void pend_free(gpointer p)
{
    struct pend *pd = p;
    if (!pd)
        return;
    g_free(pd->arg);
    g_free(pd);
}

static void *pop3_create(struct mt_sess *s)
{
    struct pop3 *po = g_new0(struct pop3, 1);
    const struct mt_limits *lim = mt_sess_limits(s);
    po->s = s;
    mt_framer_init(&po->fr[0], lim->line_max);
    mt_framer_init(&po->fr[1], lim->line_max);
    g_queue_init(&po->pending);
    mt_lines_init(&po->reply, lim->reply_lines_max);
    mt_msgbuf_init(&po->msg, lim->message_max, mt_sess_msgpool(s));
    return po;
}

/* ---- small helpers ---- */

static int lookup_cmd(const uint8_t *p, size_t n)
{
    for (int i = 0; pop3_cmds[i].name; i++) {
        if (mt_eq_ci(p, n, pop3_cmds[i].name))
            return i;
    }
    return -1;
}

static void emit_reply(struct pop3 *po, const char *code, const struct pend *pd,
                       const char *note)
{
    struct mt_event ev = { .type = MT_EV_REPLY };
    ev.u.reply.code = code;
    ev.u.reply.lines = mt_lines_view(&po->reply);
    ev.u.reply.nlines = po->reply.n;
    ev.u.reply.note = note;
    if (pd) {
        ev.u.reply.cmd_pkt = pd->pkt;
        ev.u.reply.cmd_verb = (struct mt_bytes){ (const uint8_t *)pd->verb, strlen(pd->verb) };
    }
    if (po->reply.dropped)
        mt_sess_anomaly(po->s, MT_S2C, MT_AN_REPLY_TOO_LONG, "%llu lines dropped",
                        (unsigned long long)po->reply.dropped);
    mt_sess_emit(po->s, &ev);
    mt_lines_clear(&po->reply);
}

static void push_pending(struct pop3 *po, int idx, const uint8_t *p, size_t vn,
                         const uint8_t *arg, size_t an, bool has_arg)
{
    if (g_queue_get_length(&po->pending) >= mt_sess_limits(po->s)->pending_max) {
        mt_sess_anomaly(po->s, MT_C2S, MT_AN_PENDING_OVERFLOW, "more than %u commands pending",
                        mt_sess_limits(po->s)->pending_max);
        pend_free(g_queue_pop_head(&po->pending));
    }
    struct pend *pd = g_new0(struct pend, 1);
    pd->cmd = idx >= 0 ? pop3_cmds[idx].cmd : C_OTHER;
    pd->multi = idx >= 0 ? pop3_cmds[idx].multi : M_NEVER;
    pd->has_arg = has_arg;
    /* p is not NUL-terminated: no g_strlcpy, which reads to the NUL */
    size_t k = MIN(vn, sizeof(pd->verb) - 1);
    memcpy(pd->verb, p, k);
    pd->verb[k] = 0;
    pd->arg = mt_strndup_text(arg, an);
    pd->pkt = mt_sess_pkt(po->s);
    g_queue_push_tail(&po->pending, pd);
}

/* ---- credentials ---- */

static void auth_finish(struct pop3 *po, enum mt_auth_result res)
{
    if (!po->sasl)
        return;
    struct mt_credential c;
    memset(&c, 0, sizeof(c));
    mt_sasl_finish(po->sasl, &c);
    c.result = res;
    mt_sess_credential(po->s, &c);
    mt_credential_clear(&c);
    mt_sasl_free(po->sasl);
    po->sasl = NULL;
}

/* USER/PASS (RFC 1939 7): the name from the last USER, the password from PASS. */
static void cred_pass(struct pop3 *po, const struct pend *pd, enum mt_auth_result res)
{
    struct mt_credential c;
    memset(&c, 0, sizeof(c));
    c.mechanism = g_strdup("USER");
    c.username = g_strdup(po->user);
    c.password = g_strdup(pd->arg);
    c.result = res;
    mt_sess_credential(po->s, &c);
    mt_credential_clear(&c);
}

/* APOP name digest (RFC 1939 7); the name may hold spaces, the digest not. */
static void cred_apop(struct pop3 *po, const struct pend *pd, enum mt_auth_result res)
{
    struct mt_credential c;
    memset(&c, 0, sizeof(c));
    c.mechanism = g_strdup("APOP");
    const char *sp = strrchr(pd->arg, ' ');
    if (sp) {
        c.username = g_strndup(pd->arg, (size_t)(sp - pd->arg));
        c.response = g_strdup(sp + 1);
    } else {
        c.username = g_strdup(pd->arg);
    }
    c.challenge = g_strdup(po->apop_ts);
    if (po->apop_ts && c.response)
        c.hash = mt_apop_hash(po->apop_ts, c.response);
    c.result = res;
    mt_sess_credential(po->s, &c);
    mt_credential_clear(&c);
}

/* ---- client side ---- */

static void client_command(struct pop3 *po, const struct mt_item *it)
{
    const uint8_t *p = it->p;
    size_t n = it->n;
    const uint8_t *sp = memchr(p, ' ', n);
    size_t vn = sp ? (size_t)(sp - p) : n;
    const uint8_t *arg = sp ? sp + 1 : p + n;
    size_t an = sp ? n - vn - 1 : 0;
    int idx = lookup_cmd(p, vn);
    enum pop3_cmd cmd = idx >= 0 ? pop3_cmds[idx].cmd : C_OTHER;
    char *note = NULL;
    bool secret = false;

    switch (cmd) {
    case C_USER:
        g_free(po->user);
        po->user = mt_strndup_text(arg, an);
        break;
    case C_PASS:
    case C_APOP:
        secret = true;
        break;
    case C_AUTH:
        if (an == 0)
            break; /* lists the mechanisms (multi-line) */
        {
            const uint8_t *msp = memchr(arg, ' ', an);
            size_t mn = msp ? (size_t)(msp - arg) : an;
            if (po->sasl)
                auth_finish(po, MT_AUTH_UNKNOWN);
            po->sasl = mt_sasl_new((const char *)arg, mn);
            if (msp) { /* initial response (RFC 5034 4) */
                note = mt_sasl_step(po->sasl, MT_C2S, (const char *)msp + 1, an - mn - 1,
                                    mt_sess_anomaly_cb, po->s);
                secret = true;
            }
        }
        break;
    default:
        break;
    }
    mt_sess_command(po->s, p, n, note, false, secret);
    g_free(note);
    push_pending(po, idx, p, vn, arg, an, sp != NULL && an > 0);
    if (cmd == C_AUTH && an > 0)
        pop3_cstate(po, CS_AUTH);
}

static void client_auth_line(struct pop3 *po, const struct mt_item *it)
{
    if (it->n == 1 && it->p[0] == '*') { /* RFC 5034 4: the client cancels */
        if (po->sasl)
            mt_sasl_cancel(po->sasl);
        mt_sess_command(po->s, it->p, it->n, "cancelled", true, false);
        return;
    }
    char *note = NULL;
    if (po->sasl)
        note = mt_sasl_step(po->sasl, MT_C2S, (const char *)it->p, it->n, mt_sess_anomaly_cb,
                            po->s);
    mt_sess_command(po->s, it->p, it->n, note, true, true);
    g_free(note);
}

static void client_bytes(struct pop3 *po, const uint8_t *p, size_t n)
{
    struct mt_framer *f = &po->fr[MT_C2S];
    struct mt_item it;
    mt_framer_input(f, p, n);
    while (po->cstate != CS_TLS && mt_framer_next(f, &it)) {
        if (it.kind != MT_ITEM_LINE)
            continue;
        mt_sess_line_anomalies(po->s, MT_C2S, it.flags);
        if (po->cstate == CS_AUTH)
            client_auth_line(po, &it);
        else
            client_command(po, &it);
    }
}

/* ---- server side ---- */

/* The "<...>" timestamp of an APOP-capable banner (RFC 1939 7). */
static char *banner_timestamp(const uint8_t *p, size_t n)
{
    const uint8_t *lt = memchr(p, '<', n);
    if (!lt)
        return NULL;
    size_t rest = n - (size_t)(lt - p);
    const uint8_t *gt = memchr(lt, '>', rest);
    if (!gt)
        return NULL;
    return g_strndup((const char *)lt, (size_t)(gt - lt) + 1);
}

static char **capa_list(struct mt_lines *l)
{
    const struct mt_bytes *v = mt_lines_view(l);
    struct mt_caps_builder caps = { 0 };
    for (size_t i = 1; i < l->n; i++)
        if (v[i].n > 0)
            mt_caps_add(&caps, v[i].p, v[i].n);
    return mt_caps_finish(&caps);
}

static void emit_message(struct pop3 *po, const struct pend *pd, bool complete)
{
    struct mt_message meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = ++po->nmsg;
    meta.source = pd->cmd == C_TOP ? MT_SRC_TOP : MT_SRC_RETR;
    /* TOP msg n: the message number is the first word */
    char *num = g_strdup(pd->arg);
    char *sp = strchr(num, ' ');
    if (sp)
        *sp = 0;
    meta.uid = num;
    /* TOP yields the headers and n body lines: never the whole message */
    meta.complete = complete && pd->cmd == C_RETR;
    if (!complete)
        mt_sess_anomaly(po->s, MT_S2C, MT_AN_MESSAGE_INCOMPLETE, NULL);
    mt_sess_message(po->s, &po->msg, &meta);
    g_free(num);
}

/* The size a RETR's "+OK 5309661 octets" announces (the form of RFC 1939's
 * examples, which most servers keep), or 0: a hint for the message
 * buffer (mt_msgbuf_expect). */
static uint64_t octets(const uint8_t *p, size_t n)
{
    size_t i = 3;
    while (i < n && p[i] == ' ')
        i++;
    uint64_t v;
    bool overflow;
    size_t digits = mt_ascii_u64(p + i, n - i, &v, &overflow);
    i += digits;
    if (digits == 0 || overflow || i >= n || p[i] != ' ')
        return 0;
    return mt_prefix_ci(p + i + 1, n - i - 1, "octets") ? v : 0;
}

/* The multi-line reply in po->reply is complete. */
static void multi_done(struct pop3 *po)
{
    struct pend *pd = po->cur;
    po->cur = NULL;
    if (pd && pd->cmd == C_CAPA)
        mt_sess_set_capabilities(po->s, capa_list(&po->reply));
    emit_reply(po, "+OK", pd, NULL);
    pend_free(pd);
    pop3_sstate(po, SS_STATUS);
}

/* A status line, or a SASL continuation. */
static void server_status(struct pop3 *po, const struct mt_item *it)
{
    bool ok = mt_prefix_ci(it->p, it->n, "+OK");
    bool err = mt_prefix_ci(it->p, it->n, "-ERR");
    bool cont = !ok && it->n >= 1 && it->p[0] == '+' && (it->n == 1 || it->p[1] == ' ');

    if (!ok && !err && !cont) {
        if (po->sstate == SS_RESYNC)
            return; /* still inside whatever the gap cut */
        mt_sess_anomaly(po->s, MT_S2C, MT_AN_PROTOCOL_VIOLATION, "reply without a status");
        mt_lines_add(&po->reply, it->p, it->n);
        emit_reply(po, "", NULL, NULL);
        return;
    }
    pop3_sstate(po, SS_STATUS);
    mt_lines_add(&po->reply, it->p, it->n);

    if (cont) {
        /* "+ <b64>": a SASL challenge (RFC 5034 4); AUTH stays pending */
        struct pend *pd = g_queue_peek_head(&po->pending);
        char *note = NULL;
        if (po->sasl && po->cstate == CS_AUTH) {
            size_t tn = it->n > 2 ? it->n - 2 : 0;
            note = mt_sasl_step(po->sasl, MT_S2C, (const char *)it->p + 2, tn,
                                mt_sess_anomaly_cb, po->s);
        } else {
            mt_sess_anomaly(po->s, MT_S2C, MT_AN_PROTOCOL_VIOLATION,
                            "continuation outside AUTH");
        }
        emit_reply(po, "+", pd, note);
        g_free(note);
        return;
    }

    if (!po->greeted && g_queue_is_empty(&po->pending)) {
        /* the banner */
        po->greeted = true;
        if (ok)
            po->apop_ts = banner_timestamp(it->p, it->n);
        emit_reply(po, ok ? "+OK" : "-ERR", NULL, NULL);
        return;
    }
    po->greeted = true;

    struct pend *pd = g_queue_pop_head(&po->pending);
    if (!pd)
        mt_sess_anomaly(po->s, MT_S2C, MT_AN_UNMATCHED_REPLY, "%.*s", (int)MIN(it->n, 40),
                        (const char *)it->p);
    bool multi = ok && pd &&
                 (pd->multi == M_ALWAYS || (pd->multi == M_NOARG && !pd->has_arg));
    if (multi && (pd->cmd == C_RETR || pd->cmd == C_TOP)) {
        /* the +OK alone is the reply; the body follows, possibly in this segment */
        emit_reply(po, "+OK", pd, NULL);
        po->cur = pd;
        mt_msgbuf_begin(&po->msg);
        if (pd->cmd == C_RETR) /* TOP's octets, if any, are the whole message's */
            mt_msgbuf_expect(&po->msg, octets(it->p, it->n));
        pop3_sstate(po, SS_BODY);
        return;
    }
    if (multi) {
        po->cur = pd;
        pop3_sstate(po, SS_MULTI);
        return;
    }
    emit_reply(po, ok ? "+OK" : "-ERR", pd, NULL);
    if (!pd)
        return;
    enum mt_auth_result res = ok ? MT_AUTH_SUCCESS : MT_AUTH_FAILURE;
    switch (pd->cmd) {
    case C_PASS:
        cred_pass(po, pd, res);
        break;
    case C_APOP:
        cred_apop(po, pd, res);
        break;
    case C_AUTH:
        if (po->cstate == CS_AUTH)
            pop3_cstate(po, CS_COMMAND);
        auth_finish(po, res);
        break;
    case C_STLS:
        if (ok) {
            pop3_cstate(po, CS_TLS);
            mt_sess_start_tls(po->s);
        }
        break;
    default:
        break;
    }
    pend_free(pd);
}

/* The terminating "." of a RETR or TOP body. */
static void body_done(struct pop3 *po)
{
    struct pend *pd = po->cur;
    po->cur = NULL;
    pop3_sstate(po, SS_STATUS);
    emit_message(po, pd, !po->msg.gap);
    pend_free(pd);
}

/* The fast path for a body: the complete lines at the framer's input
 * position go to the message in bulk (mt_msgbuf_dotbody: one copy and
 * hash per run rather than per line), up to the last LF; the partial line
 * after it is left to the framer, exactly as if every line had come
 * through mt_msgbuf_dotline (the same bytes are kept: a partial line
 * still counts only once it ends, or is lost to a gap as before).
 * Returns true if the body ended; clears *lf_left when the rest of the
 * input holds no LF (the framer's pieces of a long line then need no new
 * search each). */
static bool body_bulk(struct pop3 *po, struct mt_framer *f, bool *lf_left)
{
    if (f->len != 0 || f->raw_left != 0 || f->skipping)
        return false; /* a line in progress: the framer finishes it */
    size_t rest = f->in_len - f->in_off;
    const uint8_t *rp = f->in + f->in_off;
    size_t k = rest;
    while (k > 0 && rp[k - 1] != '\n') /* the last LF: usually a line back */
        k--;
    if (k == 0) {
        *lf_left = false;
        return false;
    }
    struct mt_msgbuf *m = &po->msg;
    bool done;
    m->dstate = m->midline ? MT_DOT_MID : MT_DOT_BOL;
    f->in_off += mt_msgbuf_dotbody(m, rp, k, &done);
    m->midline = false; /* it stopped after an LF */
    return done;
}

static void server_bytes(struct pop3 *po, const uint8_t *p, size_t n)
{
    struct mt_framer *f = &po->fr[MT_S2C];
    struct mt_item it;
    bool lf_left = true;
    mt_framer_input(f, p, n);
    for (;;) {
        if (po->cstate == CS_TLS)
            break;
        if (po->sstate == SS_BODY && lf_left && body_bulk(po, f, &lf_left)) {
            body_done(po);
            continue;
        }
        if (!mt_framer_next(f, &it))
            break;
        if (it.kind != MT_ITEM_LINE)
            continue;
        switch (po->sstate) {
        case SS_BODY:
            if (mt_msgbuf_dotline(&po->msg, it.p, it.n, it.eol, it.eol_len,
                                  (it.flags & MT_LINE_PARTIAL) != 0))
                body_done(po);
            break;
        case SS_MULTI:
            mt_sess_line_anomalies(po->s, MT_S2C, it.flags);
            if (it.n == 1 && it.p[0] == '.') {
                multi_done(po);
            } else if (it.n > 0 && it.p[0] == '.') {
                mt_lines_add(&po->reply, it.p + 1, it.n - 1); /* RFC 1939 3 */
            } else {
                mt_lines_add(&po->reply, it.p, it.n);
            }
            break;
        case SS_STATUS:
        case SS_RESYNC:
            mt_sess_line_anomalies(po->s, MT_S2C, it.flags);
            server_status(po, &it);
            break;
        }
    }
}

/* ---- dissector entry points ---- */

static void pop3_data(void *st, struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n)
{
    struct pop3 *po = st;
    if (po->cstate == CS_TLS)
        return;
    if (dir == MT_C2S)
        client_bytes(po, p, n);
    else
        server_bytes(po, p, n);
}

static void pop3_gap(void *st, struct mt_sess *s, enum mt_dir dir, uint64_t len)
{
    struct pop3 *po = st;
    struct mt_framer *f = &po->fr[dir];
    mt_framer_reset(f);
    if (dir == MT_S2C && po->sstate == SS_BODY) {
        /* keep looking for the end of the body */
        po->msg.gap = true;
        po->msg.midline = true;
        return;
    }
    f->skipping = true;
    if (dir == MT_S2C && po->sstate == SS_STATUS)
        pop3_sstate(po, SS_RESYNC);
}

static void pop3_end(void *st, struct mt_sess *s)
{
    struct pop3 *po = st;
    if (po->sstate == SS_BODY && po->cur) {
        emit_message(po, po->cur, false);
    } else if (po->sstate == SS_MULTI && po->reply.n > 0) {
        emit_reply(po, "+OK", po->cur, "cut off before the terminating \".\"");
    }
    pend_free(po->cur);
    po->cur = NULL;
    /* credentials whose reply never came */
    struct pend *pd;
    while ((pd = g_queue_pop_head(&po->pending))) {
        if (pd->cmd == C_PASS)
            cred_pass(po, pd, MT_AUTH_UNKNOWN);
        else if (pd->cmd == C_APOP)
            cred_apop(po, pd, MT_AUTH_UNKNOWN);
        pend_free(pd);
    }
    if (po->sasl)
        auth_finish(po, MT_AUTH_UNKNOWN);
}

static void pop3_destroy(void *st)
{
    struct pop3 *po = st;
    mt_framer_free(&po->fr[0]);
    mt_framer_free(&po->fr[1]);
    g_queue_clear_full(&po->pending, pend_free);
    pend_free(po->cur);
    mt_lines_free(&po->reply);
    mt_msgbuf_free(&po->msg);
    if (po->sasl)
        mt_sasl_free(po->sasl);
    g_free(po->apop_ts);
    g_free(po->user);
    g_free(po);
}

const struct mt_dissector mt_pop3_dissector = {
    .name = "pop3",
    .proto = MT_PROTO_POP3,
    .create = pop3_create,
    .data = pop3_data,
    .gap = pop3_gap,
    .end = pop3_end,
    .destroy = pop3_destroy,
};
