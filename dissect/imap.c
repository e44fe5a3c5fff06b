/* IMAP4rev1/rev2 (RFC 3501, RFC 9051) with LITERAL+/- (RFC 7888), SASL-IR
 * (RFC 4959), IDLE (RFC 2177), COMPRESS=DEFLATE (RFC 4978), ID (RFC 2971),
 * STARTTLS and AUTHENTICATE.
 *
 * Each direction runs through its own tokenizer (imap_tok.c), which hands
 * out tokens and marks the end of each logical line (a command or a
 * response, literals included).  Commands are reported when their logical
 * line is complete and wait, keyed by tag, for their tagged response;
 * several may be in flight.
 *
 * Reply events (what "code" and "tag" hold):
 *   tagged status       tag = the command's tag, code "OK" / "NO" / "BAD"
 *   untagged status     tag "*", code "OK" / "NO" / "BAD" / "PREAUTH" / "BYE"
 *   other untagged data tag "*", code "*" ("* 3 EXISTS", "* 1 FETCH (...)",
 *                       "* CAPABILITY ...")
 *   continuation        tag "+", code "+"
 * and lines[0] is the logical line as sent (short printable literals
 * inline after CRLF, message literals left out: the "{n}" stays).
 *
 * Messages: every body section in a FETCH response (BODY[...], BINARY[...],
 * RFC822, RFC822.HEADER, RFC822.TEXT) becomes a message event so that its
 * bytes are hashed; only a whole message (BODY[], BINARY[] or RFC822 with
 * no partial origin) is complete=true, other sections and partial fetches
 * are complete=false with section saying which part it is.  The events
 * follow the response's reply event, so that a UID given after the body
 * in the same response is known.  APPEND literals are messages too. */
#include <stdio.h>
#include <string.h>

#define ZLIB_CONST
#include <glib.h>
#include <zlib.h>

#include "ascii.h"
#include "caps.h"
#include "imap_tok.h"
#include "sasl.h"
#include "session.h"

#define IMAP_INFLATE_BUF 16384u

/* Commands, as data. */
enum imap_cmd {
    C_OTHER = 0, C_LOGIN, C_AUTHENTICATE, C_SELECT, C_EXAMINE, C_FETCH, C_APPEND, C_IDLE,
    C_STARTTLS, C_COMPRESS, C_LOGOUT, C_CAPABILITY, C_SEARCH, C_STORE, C_COPY, C_MOVE,
    C_EXPUNGE, C_LIST, C_ID, C_NAMESPACE, C_CLOSE, C_UNSELECT, C_NOOP, C_STATUS, C_ENABLE,
    C_UID,
};

static const struct {
    const char *name;
    enum imap_cmd cmd;
} imap_cmds[] = {
    { "LOGIN", C_LOGIN },       { "AUTHENTICATE", C_AUTHENTICATE }, { "SELECT", C_SELECT },
    { "EXAMINE", C_EXAMINE },   { "FETCH", C_FETCH },               { "APPEND", C_APPEND },
    { "IDLE", C_IDLE },         { "STARTTLS", C_STARTTLS },         { "COMPRESS", C_COMPRESS },
    { "LOGOUT", C_LOGOUT },     { "CAPABILITY", C_CAPABILITY },     { "SEARCH", C_SEARCH },
    { "STORE", C_STORE },       { "COPY", C_COPY },                 { "MOVE", C_MOVE },
    { "EXPUNGE", C_EXPUNGE },   { "LIST", C_LIST },                 { "ID", C_ID },
    { "NAMESPACE", C_NAMESPACE }, { "CLOSE", C_CLOSE },             { "UNSELECT", C_UNSELECT },
    { "NOOP", C_NOOP },         { "STATUS", C_STATUS },             { "ENABLE", C_ENABLE },
    { "UID", C_UID },           { NULL, C_OTHER },
};

/* Client-side states; imap_cstate() is the only place they change. */
enum imap_cstate {
    CS_COMMAND = 0, /* reading tagged commands */
    CS_AUTH,        /* AUTHENTICATE sent: one-word lines are SASL responses, "*" cancels */
    CS_IDLE,        /* IDLE sent: "DONE" ends it (RFC 2177 3) */
    CS_STOP,        /* STARTTLS accepted or the stream is lost: nothing more is parsed */
};

struct pend {
    char tag[MT_CAP_IMAP_TAG];
    char verb[24];
    enum imap_cmd cmd;
    uint64_t pkt;
    char *mailbox;     /* SELECT / EXAMINE */
    char *user, *pass; /* LOGIN */
};

/* The client's logical line being read. */
struct cline {
    GString *tag;
    enum imap_cmd cmd;
    bool uid;          /* UID FETCH / UID STORE ... */
    unsigned argbase;  /* index of the first argument */
    unsigned ntok;     /* top-level items seen */
    GString *args[MT_CAP_IMAP_ARGS];
    unsigned nargs;
    bool append_lit;   /* an APPEND message literal is streaming into amsg */
};

/* A FETCH body held until its response ends. */
struct held {
    struct mt_msgbuf mb;
    char *section;
    bool complete;
};

/* The server's logical line being read. */
struct sline {
    GString *tag, *w1, *w2, *text;
    bool fetch;            /* "* n FETCH (" */
    bool capability;       /* "* CAPABILITY ...", known from its second word */
    bool want_name;        /* FETCH: next depth-1 item is a name */
    GString *item;         /* FETCH: the current item name */
    GString *uid;          /* FETCH: UID n */
    bool body_on;          /* FETCH: a body literal is streaming into fmsg */
    GString *section;
    struct mt_caps_builder caps; /* "* CAPABILITY ..." */
    struct held *held;     /* MT_CAP_IMAP_HELD of them while any is held, or NULL */
    unsigned nheld;
};

struct imap {
    struct mt_sess *s;
    struct imap_tok *tok[2];
    enum imap_cstate cstate;
    bool stop[2];          /* this direction is no longer parsed */
    bool z_ended[2];       /* ... because its deflate stream ended (Z_STREAM_END) */
    bool resync[2];        /* after a gap: lines are dropped until one looks right */
    bool skip_line[2];     /* resync: the current logical line is being dropped */
    bool line_ok[2];       /* resync: the current logical line looked right */
    GQueue pending;        /* struct pend* */
    struct cline cl;
    struct sline sl;
    char *selected;        /* the selected mailbox */
    uint64_t exists;
    bool exists_seen;
    uint64_t nmsg;
    struct mt_msgbuf fmsg; /* FETCH body being read */
    struct mt_msgbuf amsg; /* APPEND message being read */
    bool append_ready;     /* amsg holds a complete literal not yet reported */
    bool append_capped;    /* ... longer than literal_max: bytes past it never seen */
    char *append_box, *append_flags;
    /* AUTHENTICATE */
    struct mt_sasl *sasl;
    char auth_tag[MT_CAP_IMAP_TAG];
    /* COMPRESS=DEFLATE */
    bool z_start;          /* the tagged OK was just seen: the rest is deflated */
    bool z_on;
    z_stream z[2];
};

static void imap_cstate(struct imap *im, enum imap_cstate st)
{
    im->cstate = st;
}

/* ---- small helpers ---- */

static enum imap_cmd lookup_cmd(const uint8_t *p, size_t n)
{
    if (n == 0)
        return C_OTHER;
    uint8_t c0 = (uint8_t)g_ascii_toupper((char)p[0]);
    for (int i = 0; imap_cmds[i].name; i++) {
        if ((uint8_t)imap_cmds[i].name[0] != c0) /* the names are upper case */
            continue;
        if (mt_eq_ci(p, n, imap_cmds[i].name))
            return imap_cmds[i].cmd;
    }
    return C_OTHER;
}

/* p[0..n) (not NUL-terminated) into dst, truncated to cap - 1 bytes. */
static void copy_bytes(char *dst, size_t cap, const uint8_t *p, size_t n)
{
    size_t k = MIN(n, cap - 1);
    memcpy(dst, p, k);
    dst[k] = 0;
}

/* Whether g is s, ASCII letters in any case (ascii.h: the IMAP server
 * tokens ask tens of thousands of times a second). */
static inline bool eq_ci(const GString *g, const char *s)
{
    return g && mt_eq_ci(g->str, g->len, s);
}

/* g_string_truncate(g, 0) without the call: every IMAP line empties a
 * dozen strings (1 % of the reading thread's time on mixed-250M).  An
 * empty one is left alone: its buffer, a cache line elsewhere, already
 * ends at 0. */
static inline void gclear(GString *g)
{
    if (g->len) {
        g->len = 0;
        g->str[0] = '\0';
    }
}

/* g to p[0..min(n, cap)), copied in place when it fits (it nearly always
 * does: the strings keep their buffers from line to line). */
static inline void gset(GString *g, const uint8_t *p, size_t n, size_t cap)
{
    n = MIN(n, cap);
    if (G_LIKELY(n < g->allocated_len)) {
        if (n)
            memcpy(g->str, p, n);
        g->str[n] = '\0';
        g->len = n;
        return;
    }
    gclear(g);
    g_string_append_len(g, (const char *)p, (gssize)n);
}

static void gadd(GString *g, const uint8_t *p, size_t n, size_t cap)
{
    if (g->len >= cap)
        return;
    g_string_append_len(g, (const char *)p, (gssize)MIN(n, cap - g->len));
}

static bool is_number(const GString *g)
{
    if (!g || g->len == 0 || g->len > 19)
        return false;
    for (size_t i = 0; i < g->len; i++)
        if (!g_ascii_isdigit(g->str[i]))
            return false;
    return true;
}

static const char *status_code(const GString *g)
{
    static const char *const codes[] = { "OK", "NO", "BAD", "PREAUTH", "BYE", NULL };
    for (int i = 0; codes[i]; i++)
        if (eq_ci(g, codes[i]))
            return codes[i];
    return NULL;
}

static void pend_free(gpointer p)
{
    struct pend *pd = p;
    if (!pd)
        return;
    g_free(pd->mailbox);
    g_free(pd->user);
    g_free(pd->pass);
    g_free(pd);
}

static struct pend *pend_take(struct imap *im, const char *tag)
{
    for (GList *l = im->pending.head; l; l = l->next) {
        struct pend *pd = l->data;
        if (strcmp(pd->tag, tag) == 0) {
            g_queue_delete_link(&im->pending, l);
            return pd;
        }
    }
    return NULL;
}

/* ---- messages ---- */

static void emit_message(struct imap *im, struct mt_msgbuf *mb, enum mt_msg_source src,
                         const char *mailbox, const char *uid, const char *flags,
                         const char *section, bool complete)
{
    struct mt_message meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = ++im->nmsg;
    meta.source = src;
    meta.mailbox = mailbox;
    meta.uid = uid;
    meta.flags = flags;
    meta.section = section;
    /* truncated alone (past message_max) is complete, as in SMTP and POP3:
     * every byte was seen and hashed; a literal past literal_max is not */
    meta.complete = complete && !mb->gap;
    mt_sess_message(im->s, mb, &meta);
}

/* A whole message, not a part or a partial fetch (RFC 9051 6.4.5). */
static bool full_section(const char *sec)
{
    return g_ascii_strcasecmp(sec, "BODY[]") == 0 || g_ascii_strcasecmp(sec, "BINARY[]") == 0 ||
           g_ascii_strcasecmp(sec, "RFC822") == 0;
}

static bool body_item(const GString *g)
{
    return mt_prefix_ci(g->str, g->len, "BODY[") || mt_prefix_ci(g->str, g->len, "BINARY[") ||
           eq_ci(g, "RFC822") || eq_ci(g, "RFC822.HEADER") || eq_ci(g, "RFC822.TEXT");
}

static void held_emit(struct imap *im, struct held *h, const char *uid)
{
    if (!h->complete && h->mb.gap && full_section(h->section))
        mt_sess_anomaly(im->s, MT_S2C, MT_AN_MESSAGE_INCOMPLETE, "%s", h->section);
    emit_message(im, &h->mb, MT_SRC_FETCH, im->selected, uid, NULL, h->section, h->complete);
    if (!im->fmsg.data) {
        /* the buffer goes back to the next FETCH body (mt_sess_message
         * already dropped it if large) instead of growing a new one */
        im->fmsg.data = h->mb.data;
        im->fmsg.cap = h->mb.cap;
        h->mb.data = NULL;
    }
    mt_msgbuf_free(&h->mb);
    g_free(h->section);
    h->section = NULL;
}

/* Emits the oldest held body now (its UID, if sent later, is not known). */
static void held_flush_oldest(struct imap *im)
{
    struct sline *sl = &im->sl;
    if (sl->nheld == 0)
        return;
    held_emit(im, &sl->held[0], sl->uid->len ? sl->uid->str : NULL);
    memmove(&sl->held[0], &sl->held[1], (sl->nheld - 1) * sizeof(sl->held[0]));
    sl->nheld--;
}

/* Gives the held bodies' array back once none is held: it is 2 KiB, and
 * 100,000 open sessions must fit (docs/caps.md). */
static void held_drop_array(struct sline *sl)
{
    if (sl->nheld == 0) {
        g_free(sl->held);
        sl->held = NULL;
    }
}

/* size: the literal's, a hint for the buffer (mt_msgbuf_expect), or 0 */
static void body_begin(struct imap *im, uint64_t size)
{
    struct sline *sl = &im->sl;
    uint64_t heldbytes = 0;
    for (unsigned i = 0; i < sl->nheld; i++)
        heldbytes += sl->held[i].mb.len;
    if (sl->nheld == MT_CAP_IMAP_HELD || heldbytes >= mt_sess_limits(im->s)->message_max)
        held_flush_oldest(im);
    mt_msgbuf_begin(&im->fmsg);
    mt_msgbuf_expect(&im->fmsg, size);
    g_string_assign(sl->section, sl->item->str);
    sl->body_on = true;
}

static void body_end(struct imap *im, unsigned flags)
{
    struct sline *sl = &im->sl;
    sl->body_on = false;
    if (flags & IMAP_TOK_GAP)
        im->fmsg.gap = true;
    if (flags & IMAP_TOK_CAPPED)
        im->fmsg.truncated = true;
    if (sl->nheld == MT_CAP_IMAP_HELD)
        held_flush_oldest(im);
    if (!sl->held)
        sl->held = g_new0(struct held, MT_CAP_IMAP_HELD);
    struct held *h = &sl->held[sl->nheld++];
    h->mb = im->fmsg; /* the buffer moves to the held entry */
    h->section = g_strdup(sl->section->str);
    h->complete = full_section(h->section) && !im->fmsg.gap && !(flags & IMAP_TOK_CAPPED);
    mt_msgbuf_init(&im->fmsg, mt_sess_limits(im->s)->message_max, mt_sess_msgpool(im->s));
}

static void append_emit(struct imap *im)
{
    if (!im->append_ready)
        return;
    im->append_ready = false;
    emit_message(im, &im->amsg, MT_SRC_APPEND, im->append_box, NULL, im->append_flags, NULL,
                 !im->append_capped);
}

/* ---- credentials ---- */

static void auth_finish(struct imap *im, enum mt_auth_result res)
{
    if (!im->sasl)
        return;
    struct mt_credential c;
    memset(&c, 0, sizeof(c));
    mt_sasl_finish(im->sasl, &c);
    c.result = res;
    mt_sess_credential(im->s, &c);
    mt_credential_clear(&c);
    mt_sasl_free(im->sasl);
    im->sasl = NULL;
    im->auth_tag[0] = 0;
}

/* LOGIN user password (RFC 9051 6.2.3): as the server received them
 * (atoms, unescaped quoted strings or literals). */
static void cred_login(struct imap *im, const struct pend *pd, enum mt_auth_result res)
{
    struct mt_credential c;
    memset(&c, 0, sizeof(c));
    c.mechanism = g_strdup("IMAP LOGIN");
    c.username = g_strdup(pd->user);
    c.password = g_strdup(pd->pass);
    c.result = res;
    mt_sess_credential(im->s, &c);
    mt_credential_clear(&c);
}

/* ---- capabilities ---- */

/* "[CAPABILITY a b c] text" in a status response (RFC 9051 7.1). */
static void text_caps(struct imap *im, const GString *text)
{
    static const char pre[] = "[CAPABILITY ";
    size_t k = sizeof(pre) - 1;
    if (text->len <= k || !mt_prefix_ci(text->str, text->len, pre))
        return;
    const char *end = memchr(text->str + k, ']', text->len - k);
    if (!end)
        return;
    struct mt_caps_builder caps = { 0 };
    const char *p = text->str + k;
    while (p < end && caps.n < MT_CAP_IMAP_CAPS) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *we = sp ? sp : end;
        if (we > p)
            mt_caps_add(&caps, p, (size_t)(we - p));
        p = we + 1;
    }
    mt_sess_set_capabilities(im->s, mt_caps_finish(&caps));
}

/* ---- events ---- */

/* tag, verb ("UID FETCH" as one) and argument of a command's display copy */
static void emit_command(struct imap *im, const uint8_t *d, size_t n, bool uid, const char *note,
                         bool auth_data, bool secret)
{
    struct mt_event ev = { .type = MT_EV_COMMAND };
    ev.u.cmd.line = (struct mt_bytes){ d, n };
    if (auth_data) {
        ev.u.cmd.arg = (struct mt_bytes){ d, n };
    } else {
        const uint8_t *sp = memchr(d, ' ', n);
        size_t tn = sp ? (size_t)(sp - d) : n;
        ev.u.cmd.tag = (struct mt_bytes){ d, tn };
        size_t vs = sp ? tn + 1 : n, ve = vs;
        for (int words = uid ? 2 : 1; words > 0; words--) {
            while (ve < n && d[ve] != ' ')
                ve++;
            if (words > 1 && ve < n)
                ve++;
        }
        ev.u.cmd.verb = (struct mt_bytes){ d + vs, ve - vs };
        if (ve < n)
            ev.u.cmd.arg = (struct mt_bytes){ d + ve + 1, n - ve - 1 };
    }
    ev.u.cmd.note = note;
    ev.u.cmd.auth_data = auth_data;
    ev.u.cmd.secret = secret;
    mt_sess_emit(im->s, &ev);
}

static void emit_reply(struct imap *im, const GString *tag, const char *code,
                       const struct pend *pd, const char *note)
{
    size_t dn;
    const uint8_t *d = imap_tok_display(im->tok[MT_S2C], &dn);
    struct mt_bytes line = { d, dn };
    struct mt_event ev = { .type = MT_EV_REPLY };
    ev.u.reply.tag = (struct mt_bytes){ (const uint8_t *)tag->str, tag->len };
    ev.u.reply.code = code;
    ev.u.reply.lines = &line;
    ev.u.reply.nlines = 1;
    ev.u.reply.note = note;
    if (pd) {
        ev.u.reply.cmd_pkt = pd->pkt;
        ev.u.reply.cmd_verb = (struct mt_bytes){ (const uint8_t *)pd->verb, strlen(pd->verb) };
    }
    mt_sess_emit(im->s, &ev);
}

/* ---- client side ---- */

static void cline_reset(struct cline *cl)
{
    gclear(cl->tag);
    cl->cmd = C_OTHER;
    cl->uid = false;
    cl->argbase = 2;
    cl->ntok = 0;
    /* only args[0..nargs) are ever written (client_token) */
    for (unsigned i = 0; i < cl->nargs; i++)
        gclear(cl->args[i]);
    cl->nargs = 0;
    cl->append_lit = false;
}

static const char *arg_str(const struct cline *cl, unsigned i)
{
    return i < cl->nargs ? cl->args[i]->str : NULL;
}

/* Argument i as a C string of its own (a NUL in a literal as U+FFFD), or NULL. */
static char *arg_dup(const struct cline *cl, unsigned i)
{
    return i < cl->nargs ? mt_strndup_text(cl->args[i]->str, cl->args[i]->len) : NULL;
}

static void push_pending(struct imap *im, struct pend *pd)
{
    if (g_queue_get_length(&im->pending) >= mt_sess_limits(im->s)->pending_max) {
        mt_sess_anomaly(im->s, MT_C2S, MT_AN_PENDING_OVERFLOW, "more than %u commands pending",
                        mt_sess_limits(im->s)->pending_max);
        pend_free(g_queue_pop_head(&im->pending));
    }
    g_queue_push_tail(&im->pending, pd);
}

/* A client line while AUTHENTICATE is in progress: a SASL response. */
static void client_sasl_line(struct imap *im, const uint8_t *d, size_t n)
{
    if (n == 1 && d[0] == '*') { /* RFC 9051 6.2.2: the client cancels */
        if (im->sasl)
            mt_sasl_cancel(im->sasl);
        emit_command(im, d, n, false, "cancelled", true, false);
        return;
    }
    char *note = NULL;
    if (im->sasl)
        note = mt_sasl_step(im->sasl, MT_C2S, (const char *)d, n, mt_sess_anomaly_cb, im->s);
    emit_command(im, d, n, false, note, true, true);
    g_free(note);
}

static void client_eol(struct imap *im, unsigned flags)
{
    struct cline *cl = &im->cl;
    size_t dn;
    const uint8_t *d = imap_tok_display(im->tok[MT_C2S], &dn);

    if (im->cstate == CS_AUTH && cl->ntok <= 1 && cl->nargs == 0 &&
        !memchr(d, ' ', dn)) {
        client_sasl_line(im, d, dn);
        return;
    }
    if (im->cstate == CS_IDLE && cl->ntok == 1 && eq_ci(cl->tag, "DONE")) {
        /* RFC 2177 3: not a tagged command; the IDLE's tagged OK follows */
        struct mt_event ev = { .type = MT_EV_COMMAND };
        ev.u.cmd.line = (struct mt_bytes){ d, dn };
        ev.u.cmd.verb = (struct mt_bytes){ d, dn };
        mt_sess_emit(im->s, &ev);
        imap_cstate(im, CS_COMMAND);
        return;
    }
    if (cl->ntok == 0)
        return; /* an empty line */
    if (cl->ntok < 2)
        mt_sess_anomaly(im->s, MT_C2S, MT_AN_IMAP_SYNTAX, "command without a name");

    struct pend *pd = g_new0(struct pend, 1);
    g_strlcpy(pd->tag, cl->tag->str, sizeof(pd->tag));
    pd->cmd = cl->cmd;
    pd->pkt = mt_sess_pkt(im->s);
    {
        /* the verb as sent, "UID FETCH" for UID commands */
        const uint8_t *sp = memchr(d, ' ', dn);
        size_t vs = sp ? (size_t)(sp - d) + 1 : dn, ve = vs;
        for (int w = cl->uid ? 2 : 1; w > 0; w--) {
            while (ve < dn && d[ve] != ' ')
                ve++;
            if (w > 1 && ve < dn)
                ve++;
        }
        copy_bytes(pd->verb, sizeof(pd->verb), d + vs, ve - vs);
    }

    char *note = NULL;
    bool secret = false;
    switch (cl->cmd) {
    case C_LOGIN:
        pd->user = arg_dup(cl, 0);
        pd->pass = arg_dup(cl, 1);
        secret = true;
        break;
    case C_AUTHENTICATE: {
        const char *mech = arg_str(cl, 0);
        if (im->sasl)
            auth_finish(im, MT_AUTH_UNKNOWN);
        if (!mech)
            break;
        im->sasl = mt_sasl_new(mech, strlen(mech));
        g_strlcpy(im->auth_tag, pd->tag, sizeof(im->auth_tag));
        const char *ir = arg_str(cl, 1);
        if (ir) { /* SASL-IR (RFC 4959 3) */
            note = mt_sasl_step(im->sasl, MT_C2S, ir, strlen(ir), mt_sess_anomaly_cb, im->s);
            secret = true;
        }
        break;
    }
    case C_SELECT:
    case C_EXAMINE:
        pd->mailbox = g_strdup(arg_str(cl, 0));
        im->exists_seen = false;
        break;
    default:
        break;
    }
    emit_command(im, d, dn, cl->uid, note, false, secret);
    g_free(note);
    if (cl->cmd == C_AUTHENTICATE && im->sasl)
        imap_cstate(im, CS_AUTH);
    else if (cl->cmd == C_IDLE)
        imap_cstate(im, CS_IDLE);
    push_pending(im, pd);
    if (cl->cmd == C_APPEND) {
        if (flags & IMAP_TOK_GAP)
            im->amsg.gap = true;
        append_emit(im);
    }
}

/* An APPEND's message literal of size bytes starts at argument a; the
 * flags list is the last list argument before it. */
static void append_start(struct imap *im, unsigned a, uint64_t size)
{
    struct cline *cl = &im->cl;
    append_emit(im); /* MULTIAPPEND (RFC 3502): the previous message */
    g_free(im->append_box);
    im->append_box = g_strdup(arg_str(cl, 0));
    g_free(im->append_flags);
    im->append_flags = NULL;
    for (unsigned i = 1; i < a && i < cl->nargs; i++) {
        const GString *g = cl->args[i];
        if (g->len >= 2 && g->str[0] == '(' && g->str[g->len - 1] == ')') {
            g_free(im->append_flags);
            im->append_flags = g_strndup(g->str + 1, g->len - 2);
        }
    }
    mt_msgbuf_begin(&im->amsg);
    mt_msgbuf_expect(&im->amsg, size);
    cl->append_lit = true;
}

static void client_token(void *ud, const struct imap_token *t)
{
    struct imap *im = ud;
    struct cline *cl = &im->cl;

    if (t->type == IMAP_TOK_EOL) {
        if (!im->skip_line[MT_C2S] &&
            !(im->resync[MT_C2S] && !im->line_ok[MT_C2S] && im->cstate == CS_COMMAND)) {
            im->resync[MT_C2S] = false;
            client_eol(im, t->flags);
        }
        im->skip_line[MT_C2S] = im->line_ok[MT_C2S] = false;
        cline_reset(cl);
        return;
    }
    if (im->skip_line[MT_C2S])
        return;
    if (im->resync[MT_C2S] && !im->line_ok[MT_C2S] && im->cstate == CS_COMMAND &&
        t->index >= 1) {
        /* after a gap: only a line naming a known command is taken */
        if (t->index == 1 && t->type == IMAP_TOK_ATOM && lookup_cmd(t->p, t->n) != C_OTHER) {
            im->line_ok[MT_C2S] = true;
        } else {
            im->skip_line[MT_C2S] = true;
            return;
        }
    }
    if (t->index + 1 > cl->ntok)
        cl->ntok = t->index + 1;
    if (t->index == 0) {
        if (t->type == IMAP_TOK_ATOM || t->type == IMAP_TOK_QUOTED)
            gset(cl->tag, t->p, t->n, MT_CAP_IMAP_TAG - 1);
        return;
    }
    if (t->index == 1) {
        if (t->type == IMAP_TOK_ATOM) {
            cl->cmd = lookup_cmd(t->p, t->n);
            if (cl->cmd == C_UID) {
                cl->uid = true;
                cl->argbase = 3;
            }
        }
        return;
    }
    if (cl->uid && t->index == 2) {
        if (t->type == IMAP_TOK_ATOM)
            cl->cmd = lookup_cmd(t->p, t->n);
        return;
    }
    if (t->index < cl->argbase)
        return;
    unsigned a = t->index - cl->argbase;

    if (cl->cmd == C_APPEND && a >= 1 && t->depth == 0) {
        switch (t->type) {
        case IMAP_TOK_LITERAL:
            append_start(im, a, t->size);
            return;
        case IMAP_TOK_LITERAL_DATA:
            if (cl->append_lit)
                mt_msgbuf_append(&im->amsg, t->p, t->n);
            return;
        case IMAP_TOK_LITERAL_END:
            if (cl->append_lit) {
                cl->append_lit = false;
                if (t->flags & IMAP_TOK_REFUSED)
                    return; /* the server said NO before the message was sent */
                if (t->flags & IMAP_TOK_GAP)
                    im->amsg.gap = true;
                im->append_capped = (t->flags & IMAP_TOK_CAPPED) != 0;
                if (im->append_capped)
                    im->amsg.truncated = true;
                im->append_ready = true;
            }
            return;
        default:
            break;
        }
    }
    if (a >= MT_CAP_IMAP_ARGS)
        return;
    if (a + 1 > cl->nargs)
        cl->nargs = a + 1;
    GString *g = cl->args[a];
    switch (t->type) {
    case IMAP_TOK_ATOM:
    case IMAP_TOK_QUOTED:
    case IMAP_TOK_TEXT:
        if (t->depth == 0) {
            gset(g, t->p, t->n, MT_CAP_IMAP_ARG_BYTES);
            break;
        }
        if (g->len && g->str[g->len - 1] != '(')
            gadd(g, (const uint8_t *)" ", 1, MT_CAP_IMAP_ARG_BYTES);
        gadd(g, t->p, t->n, MT_CAP_IMAP_ARG_BYTES);
        break;
    case IMAP_TOK_LPAREN:
        if (g->len && g->str[g->len - 1] != '(')
            gadd(g, (const uint8_t *)" ", 1, MT_CAP_IMAP_ARG_BYTES);
        gadd(g, (const uint8_t *)"(", 1, MT_CAP_IMAP_ARG_BYTES);
        break;
    case IMAP_TOK_RPAREN:
        gadd(g, (const uint8_t *)")", 1, MT_CAP_IMAP_ARG_BYTES);
        break;
    case IMAP_TOK_LITERAL:
        if (t->depth == 0)
            gclear(g);
        break;
    case IMAP_TOK_LITERAL_DATA:
        gadd(g, t->p, t->n, MT_CAP_IMAP_ARG_BYTES);
        break;
    default:
        break;
    }
}

/* ---- server side ---- */

static void sline_reset(struct sline *sl)
{
    gclear(sl->tag);
    gclear(sl->w1);
    gclear(sl->w2);
    gclear(sl->text);
    gclear(sl->item);
    gclear(sl->uid);
    gclear(sl->section);
    sl->fetch = false;
    sl->capability = false;
    sl->want_name = true;
    sl->body_on = false;
    if (sl->caps.n)
        mt_caps_discard(&sl->caps);
}

/* A tagged response: the command it ends, and what that changes. */
static void server_tagged(struct imap *im, const char *code, bool ok)
{
    struct sline *sl = &im->sl;
    /* a synchronising literal the server refused will not be sent */
    if (!ok && imap_tok_awaiting_literal(im->tok[MT_C2S]) &&
        g_strcmp0(im->cl.tag->str, sl->tag->str) == 0)
        imap_tok_cancel_literal(im->tok[MT_C2S]);

    struct pend *pd = pend_take(im, sl->tag->str);
    if (!pd)
        mt_sess_anomaly(im->s, MT_S2C, MT_AN_UNMATCHED_REPLY, "tag %.*s",
                        (int)MIN(sl->tag->len, 40), sl->tag->str);
    char *note = NULL;
    if (pd && (pd->cmd == C_SELECT || pd->cmd == C_EXAMINE) && ok && im->exists_seen)
        note = g_strdup_printf("%s: %llu messages", pd->mailbox ? pd->mailbox : "",
                               (unsigned long long)im->exists);
    emit_reply(im, sl->tag, code, pd, note);
    g_free(note);
    text_caps(im, sl->text);
    if (!pd)
        return;

    enum mt_auth_result res = ok ? MT_AUTH_SUCCESS : MT_AUTH_FAILURE;
    switch (pd->cmd) {
    case C_LOGIN:
        cred_login(im, pd, res);
        break;
    case C_AUTHENTICATE:
        if (strcmp(im->auth_tag, pd->tag) == 0) {
            if (im->cstate == CS_AUTH)
                imap_cstate(im, CS_COMMAND);
            auth_finish(im, res);
        }
        break;
    case C_SELECT:
    case C_EXAMINE:
        /* RFC 9051 6.3.2: a failed SELECT leaves no mailbox selected */
        g_free(im->selected);
        im->selected = ok ? g_strdup(pd->mailbox) : NULL;
        break;
    case C_CLOSE:
    case C_UNSELECT:
        if (ok) {
            g_free(im->selected);
            im->selected = NULL;
        }
        break;
    case C_IDLE:
        if (im->cstate == CS_IDLE)
            imap_cstate(im, CS_COMMAND);
        break;
    case C_STARTTLS:
        if (ok) {
            imap_cstate(im, CS_STOP);
            im->stop[MT_C2S] = im->stop[MT_S2C] = true;
            imap_tok_pause(im->tok[MT_S2C]);
            mt_sess_start_tls(im->s);
        }
        break;
    case C_COMPRESS:
        /* RFC 4978 3: compression starts right after the OK's CRLF */
        if (ok && !im->z_on) {
            im->z_start = true;
            imap_tok_pause(im->tok[MT_S2C]);
        }
        break;
    default:
        break;
    }
    pend_free(pd);
}

static void server_eol(struct imap *im, unsigned flags)
{
    struct sline *sl = &im->sl;
    const struct pend *only = g_queue_get_length(&im->pending) == 1
                                  ? g_queue_peek_head(&im->pending)
                                  : NULL;

    if (sl->tag->len == 0)
        return; /* an empty line */
    if (eq_ci(sl->tag, "+")) {
        /* a continuation: a SASL challenge, or go-ahead for a literal or IDLE */
        char *note = NULL;
        if (im->cstate == CS_AUTH && im->sasl && !imap_tok_awaiting_literal(im->tok[MT_C2S]))
            note = mt_sasl_step(im->sasl, MT_S2C, sl->text->str, sl->text->len,
                                mt_sess_anomaly_cb, im->s);
        emit_reply(im, sl->tag, "+", only, note);
        g_free(note);
        return;
    }
    if (eq_ci(sl->tag, "*")) {
        const char *code = status_code(sl->w1);
        if (!code && is_number(sl->w1) && eq_ci(sl->w2, "EXISTS")) {
            im->exists = g_ascii_strtoull(sl->w1->str, NULL, 10);
            im->exists_seen = true;
        }
        emit_reply(im, sl->tag, code ? code : "*", only, NULL);
        if (code)
            text_caps(im, sl->text);
        if (eq_ci(sl->w1, "CAPABILITY") && sl->caps.n)
            mt_sess_set_capabilities(im->s, mt_caps_finish(&sl->caps));
        const char *uid = sl->uid->len ? sl->uid->str : NULL;
        if (sl->body_on) { /* cut by a gap inside the literal */
            body_end(im, flags | IMAP_TOK_GAP);
        }
        for (unsigned i = 0; i < sl->nheld; i++)
            held_emit(im, &sl->held[i], uid);
        sl->nheld = 0;
        held_drop_array(sl);
        return;
    }
    const char *code = status_code(sl->w1);
    if (!code || strcmp(code, "PREAUTH") == 0 || strcmp(code, "BYE") == 0) {
        mt_sess_anomaly(im->s, MT_S2C, MT_AN_IMAP_SYNTAX, "tagged response %.*s",
                        (int)MIN(sl->w1->len, 20), sl->w1->str);
        code = "BAD";
    }
    server_tagged(im, code, strcmp(code, "OK") == 0);
}

/* Items of "* n FETCH (name value name value ...)" (RFC 9051 7.5.2). */
static void fetch_token(struct imap *im, const struct imap_token *t)
{
    struct sline *sl = &im->sl;
    switch (t->type) {
    case IMAP_TOK_LPAREN:
        if (t->depth == 1)
            sl->want_name = true;
        return;
    case IMAP_TOK_RPAREN:
        if (t->depth == 2) /* a list value ended */
            sl->want_name = true;
        return;
    case IMAP_TOK_ATOM:
    case IMAP_TOK_QUOTED:
        if (t->depth != 1)
            return;
        if (sl->want_name && t->type == IMAP_TOK_ATOM) {
            gset(sl->item, t->p, t->n, 256);
            sl->want_name = false;
            return;
        }
        if (eq_ci(sl->item, "UID") && t->type == IMAP_TOK_ATOM) {
            gset(sl->uid, t->p, t->n, 32);
        } else if (t->type == IMAP_TOK_QUOTED && body_item(sl->item)) {
            body_begin(im, 0);
            mt_msgbuf_append(&im->fmsg, t->p, t->n);
            body_end(im, 0);
        }
        sl->want_name = true;
        return;
    case IMAP_TOK_LITERAL:
        if (t->depth == 1 && body_item(sl->item) && !sl->want_name)
            body_begin(im, t->size);
        return;
    case IMAP_TOK_LITERAL_DATA:
        if (t->depth == 1 && sl->body_on)
            mt_msgbuf_append(&im->fmsg, t->p, t->n);
        return;
    case IMAP_TOK_LITERAL_END:
        if (t->depth != 1)
            return;
        if (sl->body_on)
            body_end(im, t->flags);
        sl->want_name = true;
        return;
    default:
        return;
    }
}

static void server_token(void *ud, const struct imap_token *t)
{
    struct imap *im = ud;
    struct sline *sl = &im->sl;

    if (t->type == IMAP_TOK_EOL) {
        if (!im->skip_line[MT_S2C]) {
            if (im->line_ok[MT_S2C])
                im->resync[MT_S2C] = false;
            if (!im->resync[MT_S2C])
                server_eol(im, t->flags);
        }
        im->skip_line[MT_S2C] = im->line_ok[MT_S2C] = false;
        sline_reset(sl);
        return;
    }
    if (im->skip_line[MT_S2C])
        return;
    if (im->resync[MT_S2C] && !im->line_ok[MT_S2C]) {
        /* after a gap: only "*", "+" or a pending command's tag starts a response */
        bool ok = false;
        if (t->index == 0 && t->type == IMAP_TOK_ATOM) {
            char tag[MT_CAP_IMAP_TAG];
            copy_bytes(tag, sizeof(tag), t->p, t->n);
            ok = strcmp(tag, "*") == 0 || strcmp(tag, "+") == 0;
            for (GList *l = im->pending.head; l && !ok; l = l->next)
                ok = strcmp(((struct pend *)l->data)->tag, tag) == 0;
        }
        if (!ok) {
            im->skip_line[MT_S2C] = true;
            return;
        }
        im->line_ok[MT_S2C] = true;
    }
    if (t->type == IMAP_TOK_TEXT) {
        gset(sl->text, t->p, t->n, 4096);
        return;
    }
    if (t->index == 0) {
        if (t->type == IMAP_TOK_ATOM)
            gset(sl->tag, t->p, t->n, MT_CAP_IMAP_TAG - 1);
        return;
    }
    if (t->depth == 0 && t->type == IMAP_TOK_ATOM && t->index == 1) {
        gset(sl->w1, t->p, t->n, 64);
        sl->capability = eq_ci(sl->tag, "*") && eq_ci(sl->w1, "CAPABILITY");
        return;
    }
    if (t->depth == 0 && t->type == IMAP_TOK_ATOM && sl->capability) {
        if (sl->caps.n < MT_CAP_IMAP_CAPS)
            mt_caps_add(&sl->caps, t->p, t->n);
        return;
    }
    if (t->depth == 0 && t->type == IMAP_TOK_ATOM && t->index == 2) {
        gset(sl->w2, t->p, t->n, 64);
        sl->fetch = eq_ci(sl->tag, "*") && is_number(sl->w1) && eq_ci(sl->w2, "FETCH");
        return;
    }
    if (sl->fetch && t->index == 3)
        fetch_token(im, t);
}

/* ---- bytes in: plain or deflated ---- */

static void inflate_bytes(struct imap *im, enum mt_dir dir, const uint8_t *p, size_t n);

static void feed(struct imap *im, enum mt_dir dir, const uint8_t *p, size_t n)
{
    while (n > 0 && !im->stop[dir]) {
        size_t k = imap_tok_feed(im->tok[dir], p, n);
        p += k;
        n -= k;
        if (im->z_start) {
            /* the rest of both directions is raw deflate (RFC 4978 3, RFC 1951) */
            im->z_start = false;
            if (!mt_sess_inflate_take(im->s)) {
                /* zlib holds about 78 KiB per session: inflate_max bounds
                 * what many compressed sessions at once can take */
                mt_sess_anomaly(im->s, dir, MT_AN_COMPRESS_LIMIT,
                                "%u sessions are inflating already: the rest of this one "
                                "is not decoded", mt_sess_limits(im->s)->inflate_max);
                im->stop[0] = im->stop[1] = true;
                return;
            }
            bool ok = true;
            for (int d = 0; d < 2; d++) {
                memset(&im->z[d], 0, sizeof(im->z[d]));
                if (inflateInit2(&im->z[d], -15) != Z_OK)
                    ok = false;
            }
            im->z_on = true;
            if (!ok) {
                mt_sess_anomaly(im->s, dir, MT_AN_DECOMPRESS_ERROR, "inflateInit2 failed");
                im->stop[0] = im->stop[1] = true;
                return;
            }
            if (n)
                inflate_bytes(im, dir, p, n);
            return;
        }
    }
}

static void inflate_bytes(struct imap *im, enum mt_dir dir, const uint8_t *p, size_t n)
{
    z_stream *z = &im->z[dir];
    uint8_t out[IMAP_INFLATE_BUF];
    uint64_t produced = 0;
    uint64_t cap = (uint64_t)n * MT_CAP_IMAP_INFLATE_RATIO + IMAP_INFLATE_BUF;
    z->next_in = p;
    z->avail_in = (uInt)n;
    while (!im->stop[dir]) {
        z->next_out = out;
        z->avail_out = sizeof(out);
        int rc = inflate(z, Z_SYNC_FLUSH);
        size_t got = sizeof(out) - z->avail_out;
        produced += got;
        if (produced > cap) {
            mt_sess_anomaly(im->s, dir, MT_AN_DECOMPRESS_ERROR,
                            "more than %u:1 expansion", MT_CAP_IMAP_INFLATE_RATIO);
            im->stop[0] = im->stop[1] = true;
            return;
        }
        /* what inflated before an error is good data */
        if (got)
            feed(im, dir, out, got);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
            mt_sess_anomaly(im->s, dir, MT_AN_DECOMPRESS_ERROR, "inflate: %s",
                            z->msg ? z->msg : "error");
            im->stop[0] = im->stop[1] = true;
            return;
        }
        if (rc == Z_STREAM_END) {
            im->stop[dir] = true; /* the deflate stream was closed */
            im->z_ended[dir] = z->avail_in == 0; /* the anomaly is still to come */
            if (z->avail_in > 0) /* RFC 4978 has no way back to plain text */
                mt_sess_anomaly(im->s, dir, MT_AN_DECOMPRESS_ERROR,
                                "deflate stream ended; %u bytes after it not decoded",
                                (unsigned)z->avail_in);
            return;
        }
        if (rc == Z_BUF_ERROR || (z->avail_in == 0 && z->avail_out != 0))
            return;
    }
}

/* ---- dissector entry points ---- */

static void *imap_create(struct mt_sess *s)
{
    struct imap *im = g_new0(struct imap, 1);
    const struct mt_limits *lim = mt_sess_limits(s);
    im->s = s;
    for (int d = 0; d < 2; d++) {
        struct imap_tok_cfg cfg = {
            .server = d == MT_S2C,
            .line_max = lim->line_max,
            .literal_max = lim->literal_max,
            .nest_max = lim->imap_nest_max,
            .display_max = lim->line_max,
            .cb = d == MT_S2C ? server_token : client_token,
            .ud = im,
            .anomaly = mt_sess_anomaly_cb,
            .anomaly_ud = s,
        };
        im->tok[d] = imap_tok_new(&cfg);
    }
    g_queue_init(&im->pending);
    im->cl.tag = mt_sess_string(s);
    for (unsigned i = 0; i < MT_CAP_IMAP_ARGS; i++)
        im->cl.args[i] = mt_sess_string(s);
    cline_reset(&im->cl);
    im->sl.tag = mt_sess_string(s);
    im->sl.w1 = mt_sess_string(s);
    im->sl.w2 = mt_sess_string(s);
    im->sl.text = mt_sess_string(s);
    im->sl.item = mt_sess_string(s);
    im->sl.uid = mt_sess_string(s);
    im->sl.section = mt_sess_string(s);
    sline_reset(&im->sl);
    mt_msgbuf_init(&im->fmsg, lim->message_max, mt_sess_msgpool(s));
    mt_msgbuf_init(&im->amsg, lim->message_max, mt_sess_msgpool(s));
    return im;
}

static void imap_data(void *st, struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n)
{
    struct imap *im = st;
    if (im->stop[dir]) {
        if (im->z_ended[dir] && n > 0) { /* once: later bytes go unread too */
            im->z_ended[dir] = false;
            mt_sess_anomaly(im->s, dir, MT_AN_DECOMPRESS_ERROR,
                            "deflate stream ended; bytes after it not decoded");
        }
        return;
    }
    if (im->z_on)
        inflate_bytes(im, dir, p, n);
    else
        feed(im, dir, p, n);
}

static void imap_gap(void *st, struct mt_sess *s, enum mt_dir dir, uint64_t len)
{
    struct imap *im = st;
    if (im->stop[dir])
        return;
    if (im->z_on) {
        /* a deflate stream cannot be resumed after lost bytes */
        mt_sess_anomaly(im->s, dir, MT_AN_DECOMPRESS_ERROR, "gap in a compressed stream");
        im->stop[dir] = true;
        return;
    }
    if (!imap_tok_gap(im->tok[dir], len) || !imap_tok_in_line(im->tok[dir]))
        im->resync[dir] = true;
}

static void imap_end(void *st, struct mt_sess *s)
{
    struct imap *im = st;
    /* logical lines cut off by the end: finish them as after a gap */
    for (int d = 0; d < 2; d++)
        if (!im->stop[d] && imap_tok_in_line(im->tok[d]))
            imap_tok_gap(im->tok[d], UINT64_MAX);
    append_emit(im);
    struct pend *pd;
    while ((pd = g_queue_pop_head(&im->pending))) {
        if (pd->cmd == C_LOGIN)
            cred_login(im, pd, MT_AUTH_UNKNOWN);
        pend_free(pd);
    }
    if (im->sasl)
        auth_finish(im, MT_AUTH_UNKNOWN);
}

static void imap_destroy(void *st)
{
    struct imap *im = st;
    for (int d = 0; d < 2; d++) {
        imap_tok_free(im->tok[d]);
        if (im->z_on)
            inflateEnd(&im->z[d]);
    }
    if (im->z_on)
        mt_sess_inflate_give(im->s);
    g_queue_clear_full(&im->pending, pend_free);
    mt_sess_string_give(im->s, im->cl.tag);
    for (unsigned i = 0; i < MT_CAP_IMAP_ARGS; i++)
        mt_sess_string_give(im->s, im->cl.args[i]);
    struct sline *sl = &im->sl;
    for (unsigned i = 0; i < sl->nheld; i++) {
        mt_msgbuf_free(&sl->held[i].mb);
        g_free(sl->held[i].section);
    }
    g_free(sl->held);
    mt_caps_discard(&sl->caps);
    mt_sess_string_give(im->s, sl->tag);
    mt_sess_string_give(im->s, sl->w1);
    mt_sess_string_give(im->s, sl->w2);
    mt_sess_string_give(im->s, sl->text);
    mt_sess_string_give(im->s, sl->item);
    mt_sess_string_give(im->s, sl->uid);
    mt_sess_string_give(im->s, sl->section);
    mt_msgbuf_free(&im->fmsg);
    mt_msgbuf_free(&im->amsg);
    g_free(im->selected);
    g_free(im->append_box);
    g_free(im->append_flags);
    if (im->sasl)
        mt_sasl_free(im->sasl);
    g_free(im);
}

const struct mt_dissector mt_imap_dissector = {
    .name = "imap",
    .proto = MT_PROTO_IMAP,
    .create = imap_create,
    .data = imap_data,
    .gap = imap_gap,
    .end = imap_end,
    .destroy = imap_destroy,
};
