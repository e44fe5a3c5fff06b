/* SMTP (RFC 5321) with PIPELINING (RFC 2920), CHUNKING/BDAT (RFC 3030),
 * STARTTLS (RFC 3207) and AUTH (RFC 4954).
 *
 * The client's and the server's byte streams are framed into lines
 * separately.  Commands wait in a queue for their replies (pipelining);
 * the envelope is applied when a command is seen and undone when its reply
 * rejects it, so that a one-sided capture still yields an envelope and a
 * rejected command never leaks into the next transaction. */
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "ascii.h"
#include "caps.h"
#include "framer.h"
#include "sasl.h"
#include "session.h"

/* Commands, as data (tcpdump's struct tok, Zeek's SMTP_cmd.def). */
enum smtp_cmd {
    C_OTHER = 0, C_HELO, C_EHLO, C_MAIL, C_RCPT, C_DATA, C_BDAT, C_RSET, C_AUTH,
    C_STARTTLS, C_QUIT, C_NOOP, C_VRFY, C_EXPN, C_HELP,
    C_DATA_END, /* pseudo-command: the end of a DATA body, answered by the server */
};

static const struct {
    const char *name;
    enum smtp_cmd cmd;
} smtp_cmds[] = {
    { "HELO", C_HELO }, { "EHLO", C_EHLO }, { "LHLO", C_EHLO }, { "MAIL", C_MAIL },
    { "RCPT", C_RCPT }, { "DATA", C_DATA }, { "BDAT", C_BDAT }, { "RSET", C_RSET },
    { "AUTH", C_AUTH }, { "STARTTLS", C_STARTTLS }, { "QUIT", C_QUIT }, { "NOOP", C_NOOP },
    { "VRFY", C_VRFY }, { "EXPN", C_EXPN }, { "HELP", C_HELP }, { NULL, C_OTHER },
};

/* Client-side states; smtp_cstate() is the only place they change. */
enum smtp_cstate {
    CS_COMMAND = 0, /* reading command lines */
    CS_DATA_WAIT,   /* DATA sent, its reply not seen: client bytes are held */
    CS_DATA,        /* 354 seen: reading the message up to CRLF.CRLF */
    CS_BDAT,        /* reading a BDAT chunk's counted bytes */
    CS_AUTH,        /* AUTH in progress: client lines are SASL responses */
    CS_TLS,         /* STARTTLS accepted: nothing more is parsed */
};

struct pend {
    enum smtp_cmd cmd;
    char verb[16];
    uint64_t pkt;
    char *addr;      /* MAIL/RCPT: the address */
    char *params;    /* MAIL/RCPT: ESMTP parameters */
    bool last;       /* BDAT ... LAST */
    bool holds;      /* BDAT LAST whose message waits for this reply (sm->bmsg) */
};

/* The envelope of the transaction: what accepted commands built. */
struct envelope {
    char *mail_from;
    char *mail_params;
    GPtrArray *rcpts;       /* char* */
    GPtrArray *rcpt_params; /* char* or NULL, parallel to rcpts */
};

struct smtp {
    struct mt_sess *s;
    struct mt_framer fr[2];
    enum smtp_cstate cstate;
    GQueue pending;       /* struct pend* */
    struct mt_lines reply;
    bool reply_open;      /* a multi-line reply is being collected */
    char reply_code[4];
    bool greeted;
    bool server_resync;   /* after a server-side gap */
    /* DATA held while its reply is awaited */
    GByteArray *held;
    bool replies_seen;    /* the server's side is being captured */
    bool client_resync;   /* after a client-side gap */
    uint32_t rcpt_count;  /* RCPT commands in this transaction */
    /* the transaction, as the server's replies confirmed it */
    struct envelope env;
    struct mt_msgbuf msg;
    /* pipelined BDAT LAST messages whose MAIL/RCPT replies are still to
     * come, oldest first: each is reported at the reply to its LAST chunk
     * (the pending entries with holds, in the same order), when its
     * envelope is known; bmsg[nheld] is the spare that msg swaps with */
    struct mt_msgbuf bmsg[MT_CAP_SMTP_HELD_MSGS + 1];
    unsigned nheld;
    uint64_t nmsg;
    bool bdat_last;
    /* AUTH */
    struct mt_sasl *sasl;
    char *sasl_mech;
};

static void smtp_cstate(struct smtp *sm, enum smtp_cstate st)
{
    sm->cstate = st;
}

static void pend_free(gpointer p)
{
    struct pend *pd = p;
    g_free(pd->addr);
    g_free(pd->params);
    g_free(pd);
}

static void env_init(struct envelope *e)
{
    e->mail_from = NULL;
    e->mail_params = NULL;
    e->rcpts = g_ptr_array_new_with_free_func(g_free);
    e->rcpt_params = g_ptr_array_new_with_free_func(g_free);
}

static void env_clear(struct envelope *e)
{
    g_free(e->mail_from);
    e->mail_from = NULL;
    g_free(e->mail_params);
    e->mail_params = NULL;
    g_ptr_array_set_size(e->rcpts, 0);
    g_ptr_array_set_size(e->rcpt_params, 0);
}

static void env_free(struct envelope *e)
{
    g_free(e->mail_from);
    g_free(e->mail_params);
    g_ptr_array_free(e->rcpts, TRUE);
    g_ptr_array_free(e->rcpt_params, TRUE);
}

/* The message size the client announced with MAIL FROM (RFC 1870's
 * SIZE=n among the ESMTP parameters), or 0: a hint for the message
 * buffer (mt_msgbuf_expect). */
static uint64_t env_size(const struct envelope *e)
{
    const char *p = e->mail_params;
    while (p && *p) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > 5 && mt_eq_ci(p, 5, "SIZE=")) {
            uint64_t v;
            bool overflow;
            return mt_ascii_u64(p + 5, n - 5, &v, &overflow) == n - 5 && !overflow ? v : 0;
        }
        p += n;
    }
    return 0;
}

/* A message body starts: its buffer, with the size announced. */
static void msg_begin(struct smtp *sm)
{
    mt_msgbuf_begin(&sm->msg);
    mt_msgbuf_expect(&sm->msg, env_size(&sm->env));
}

/* What an accepted command does to the envelope (RFC 5321 4.1.1, 4.1.4):
 * MAIL starts a transaction, RCPT adds a recipient, RSET/HELO/EHLO and the
 * end of a message end it. */
static void env_apply(struct envelope *e, const struct pend *pd, uint32_t rcpt_max)
{
    switch (pd->cmd) {
    case C_MAIL:
        env_clear(e);
        e->mail_from = g_strdup(pd->addr);
        e->mail_params = g_strdup(pd->params);
        break;
    case C_RCPT:
        if (pd->addr && e->rcpts->len < rcpt_max) {
            g_ptr_array_add(e->rcpts, g_strdup(pd->addr));
            g_ptr_array_add(e->rcpt_params, g_strdup(pd->params));
        }
        break;
    case C_RSET:
    case C_HELO:
    case C_EHLO:
    case C_DATA_END:
        env_clear(e);
        break;
    case C_BDAT:
        if (pd->last)
            env_clear(e);
        break;
    default:
        break;
    }
}

static void *smtp_create(struct mt_sess *s)
{
    struct smtp *sm = g_new0(struct smtp, 1);
    const struct mt_limits *lim = mt_sess_limits(s);
    sm->s = s;
    mt_framer_init(&sm->fr[0], lim->line_max);
    mt_framer_init(&sm->fr[1], lim->line_max);
    g_queue_init(&sm->pending);
    mt_lines_init(&sm->reply, lim->reply_lines_max);
    env_init(&sm->env);
    mt_msgbuf_init(&sm->msg, lim->message_max, mt_sess_msgpool(s));
    /* only CRLF.CRLF ends DATA (RFC 5321 4.1.1.4) */
    sm->msg.crlf_dots = true;
    for (unsigned i = 0; i <= MT_CAP_SMTP_HELD_MSGS; i++) {
        mt_msgbuf_init(&sm->bmsg[i], lim->message_max, mt_sess_msgpool(s));
        sm->bmsg[i].crlf_dots = true; /* they swap places with msg */
    }
    return sm;
}


/* ---- small helpers ---- */

static enum smtp_cmd lookup_cmd(const uint8_t *p, size_t n)
{
    for (int i = 0; smtp_cmds[i].name; i++) {
        if (mt_eq_ci(p, n, smtp_cmds[i].name))
            return smtp_cmds[i].cmd;
    }
    return C_OTHER;
}

/* The address inside MAIL FROM:<a> / RCPT TO:<a>; *params gets the ESMTP
 * parameters after it ("SIZE=454 BODY=8BITMIME", RFC 5321 4.1.2), or NULL. */
static char *params_after(const uint8_t *p, size_t i, size_t n)
{
    while (i < n && p[i] == ' ')
        i++;
    size_t e = n;
    while (e > i && p[e - 1] == ' ')
        e--;
    return e > i ? mt_strndup_text(p + i, e - i) : NULL;
}

static char *path_arg(const uint8_t *p, size_t n, char **params)
{
    *params = NULL;
    const uint8_t *colon = memchr(p, ':', n);
    if (!colon)
        return NULL;
    size_t i = (size_t)(colon - p) + 1;
    while (i < n && p[i] == ' ')
        i++;
    size_t start = i;
    if (i < n && p[i] == '<') {
        const uint8_t *gt = memchr(p + i, '>', n - i);
        size_t end = gt ? (size_t)(gt - p) + 1 : n;
        *params = params_after(p, end, n);
        return mt_strndup_text(p + start, end - start);
    }
    while (i < n && p[i] != ' ')
        i++;
    *params = params_after(p, i, n);
    return mt_strndup_text(p + start, i - start);
}

static void emit_held(struct smtp *sm, bool replied);

static struct pend *push_pending(struct smtp *sm, enum smtp_cmd cmd, const uint8_t *verb,
                                 size_t vn, char *addr, bool last)
{
    if (g_queue_get_length(&sm->pending) >= mt_sess_limits(sm->s)->pending_max) {
        mt_sess_anomaly(sm->s, MT_C2S, MT_AN_PENDING_OVERFLOW, "more than %u commands pending",
                        mt_sess_limits(sm->s)->pending_max);
        struct pend *head = g_queue_peek_head(&sm->pending);
        if (head->holds && sm->nheld > 0)
            emit_held(sm, false); /* its reply can no longer be told */
        pend_free(g_queue_pop_head(&sm->pending));
    }
    struct pend *pd = g_new0(struct pend, 1);
    pd->cmd = cmd;
    /* verb is not NUL-terminated (g_strlcpy would read on to a NUL) */
    size_t k = MIN(vn, sizeof(pd->verb) - 1);
    memcpy(pd->verb, verb, k);
    pd->verb[k] = 0;
    pd->pkt = mt_sess_pkt(sm->s);
    pd->addr = addr;
    pd->last = last;
    g_queue_push_tail(&sm->pending, pd);
    return pd;
}

/* ---- messages ---- */

/* Reports mb: with the envelope the server confirmed, plus the commands
 * whose replies have not been seen yet (pipelining, or a capture of the
 * client's side only), taken as accepted, up to the message's own LAST
 * chunk: the tail of the pending commands, or for the oldest held message
 * the first entry marked holds (held and replied: none, sm->env is all). */
static void emit_buf(struct smtp *sm, struct mt_msgbuf *mb, enum mt_msg_source src, bool complete,
                     bool held, bool replied)
{
    struct envelope env;
    env_init(&env);
    env.mail_from = g_strdup(sm->env.mail_from);
    env.mail_params = g_strdup(sm->env.mail_params);
    for (guint i = 0; i < sm->env.rcpts->len; i++) {
        g_ptr_array_add(env.rcpts, g_strdup(g_ptr_array_index(sm->env.rcpts, i)));
        g_ptr_array_add(env.rcpt_params, g_strdup(g_ptr_array_index(sm->env.rcpt_params, i)));
    }
    uint32_t rmax = mt_sess_limits(sm->s)->rcpt_max;
    for (GList *l = replied ? NULL : sm->pending.head; l; l = l->next) {
        const struct pend *pd = l->data;
        if (held ? pd->holds : (pd->cmd == C_BDAT && pd->last && l->next == NULL))
            break; /* this message's own LAST chunk */
        env_apply(&env, pd, rmax);
    }
    struct mt_message meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = ++sm->nmsg;
    meta.source = src;
    meta.mail_from = env.mail_from;
    meta.mail_params = env.mail_params;
    g_ptr_array_add(env.rcpts, NULL);
    g_ptr_array_add(env.rcpt_params, NULL);
    meta.rcpt_to = (const char *const *)env.rcpts->pdata;
    meta.rcpt_params = (const char *const *)env.rcpt_params->pdata;
    meta.nrcpt = env.rcpts->len - 1;
    meta.complete = complete && !mb->gap;
    if (!meta.complete)
        mt_sess_anomaly(sm->s, MT_C2S, MT_AN_MESSAGE_INCOMPLETE, NULL);
    mt_sess_message(sm->s, mb, &meta);
    env_free(&env);
}

static void emit_message(struct smtp *sm, enum mt_msg_source src, bool complete)
{
    while (sm->nheld > 0)
        emit_held(sm, false); /* messages are reported in the order they ended */
    emit_buf(sm, &sm->msg, src, complete, false, false);
}

/* The oldest held BDAT message, with what is known of its envelope now:
 * replied, at the reply to its LAST chunk (already taken off the pending
 * commands); otherwise early (its replies are late or never come). */
static void emit_held(struct smtp *sm, bool replied)
{
    emit_buf(sm, &sm->bmsg[0], MT_SRC_BDAT, true, true, replied);
    if (!replied) {
        for (GList *l = sm->pending.head; l; l = l->next) {
            struct pend *pd = l->data;
            if (pd->holds) { /* its entry: the next held message has the next one */
                pd->holds = false;
                break;
            }
        }
    }
    struct mt_msgbuf spare = sm->bmsg[0];
    memmove(&sm->bmsg[0], &sm->bmsg[1], sm->nheld * sizeof(sm->bmsg[0]));
    sm->bmsg[sm->nheld] = spare;
    sm->nheld--;
}

/* The LAST chunk's bytes ended.  Pipelined (RFC 3030 4.2), its MAIL and
 * RCPT commands may still await their replies, and one of them may reject
 * a recipient: when the server's side is captured, the message waits for
 * the reply to the LAST chunk, which comes after theirs. */
static void bdat_done(struct smtp *sm)
{
    bool wait = false;
    if (sm->replies_seen && sm->pending.tail) {
        struct pend *last = sm->pending.tail->data;
        for (GList *l = sm->pending.head; l && l != sm->pending.tail && !wait; l = l->next) {
            enum smtp_cmd c = ((struct pend *)l->data)->cmd;
            wait = c == C_MAIL || c == C_RCPT;
        }
        wait = wait && last->cmd == C_BDAT && last->last;
        if (wait) {
            if (sm->nheld == MT_CAP_SMTP_HELD_MSGS)
                emit_held(sm, false);
            struct mt_msgbuf tmp = sm->bmsg[sm->nheld]; /* swap: msg takes the spare */
            sm->bmsg[sm->nheld++] = sm->msg;
            sm->msg = tmp;
            last->holds = true;
            return;
        }
    }
    emit_message(sm, MT_SRC_BDAT, true);
}

/* ---- AUTH ---- */

static void auth_finish(struct smtp *sm, enum mt_auth_result res)
{
    if (!sm->sasl)
        return;
    struct mt_credential c;
    memset(&c, 0, sizeof(c));
    mt_sasl_finish(sm->sasl, &c);
    c.result = res;
    mt_sess_credential(sm->s, &c);
    mt_credential_clear(&c);
    mt_sasl_free(sm->sasl);
    sm->sasl = NULL;
}

/* ---- client side ---- */

static void client_command(struct smtp *sm, const struct mt_item *it)
{
    const uint8_t *p = it->p;
    size_t n = it->n;
    const uint8_t *sp = memchr(p, ' ', n);
    size_t vn = sp ? (size_t)(sp - p) : n;
    const uint8_t *arg = sp ? sp + 1 : p + n;
    size_t an = sp ? n - vn - 1 : 0;
    enum smtp_cmd cmd = lookup_cmd(p, vn);
    char *note = NULL;
    bool secret = false;
    char *addr = NULL, *params = NULL;
    bool last = false;

    if (sm->msg.active && sm->msg.total > 0 && cmd != C_BDAT && cmd != C_OTHER) {
        /* BDAT chunks without LAST, then another command: that message
         * will not be finished (a gap ate its end) */
        emit_message(sm, MT_SRC_BDAT, false);
    }
    if (sm->client_resync) {
        /* after a gap: a line that does not start with a command is the
         * tail of one we lost */
        sm->client_resync = false;
        if (cmd == C_OTHER)
            return;
    }
    mt_sess_line_anomalies(sm->s, MT_C2S, it->flags);
    switch (cmd) {
    case C_HELO:
    case C_EHLO:
        addr = mt_strndup_text(arg, an); /* the name, kept if accepted */
        break;
    case C_MAIL:
        addr = path_arg(arg, an, &params);
        sm->rcpt_count = 0;
        break;
    case C_RCPT:
        if (++sm->rcpt_count > mt_sess_limits(sm->s)->rcpt_max) {
            mt_sess_anomaly(sm->s, MT_C2S, MT_AN_RCPT_OVERFLOW, "more than %u recipients",
                            mt_sess_limits(sm->s)->rcpt_max);
            break;
        }
        addr = path_arg(arg, an, &params);
        break;
    case C_AUTH: {
        const uint8_t *msp = memchr(arg, ' ', an);
        size_t mn = msp ? (size_t)(msp - arg) : an;
        if (sm->sasl)
            auth_finish(sm, MT_AUTH_UNKNOWN);
        sm->sasl = mt_sasl_new((const char *)arg, mn);
        if (msp) {
            note = mt_sasl_step(sm->sasl, MT_C2S, (const char *)msp + 1, an - mn - 1,
                                mt_sess_anomaly_cb, sm->s);
            secret = true;
        }
        break;
    }
    case C_BDAT: {
        /* BDAT chunk-size [LAST] (RFC 3030 2) */
        /* any size a 64-bit count holds is a size; the framer and the
         * message caps bound what is kept of it */
        uint64_t size;
        bool overflow;
        size_t i = mt_ascii_u64(arg, an, &size, &overflow);
        bool ok = i > 0 && !overflow;
        if (i < an && arg[i] != ' ')
            ok = false;
        while (i < an && arg[i] == ' ')
            i++;
        if (i < an) {
            if (mt_eq_ci(arg + i, an - i, "LAST"))
                last = true;
            else
                ok = false;
        }
        mt_sess_command(sm->s, p, n, NULL, false, false);
        push_pending(sm, cmd, p, vn, NULL, last);
        if (!ok) {
            mt_sess_anomaly(sm->s, MT_C2S, MT_AN_BDAT_INVALID, "BDAT %.*s", (int)MIN(an, 40),
                            (const char *)arg);
            return;
        }
        if (!sm->msg.active)
            msg_begin(sm);
        sm->bdat_last = last;
        if (size == 0) {
            if (last)
                bdat_done(sm);
            return;
        }
        mt_framer_raw(&sm->fr[MT_C2S], size);
        smtp_cstate(sm, CS_BDAT);
        return;
    }
    default:
        break;
    }
    mt_sess_command(sm->s, p, n, note, false, secret);
    g_free(note);
    push_pending(sm, cmd, p, vn, addr, last)->params = params;
    if (cmd == C_DATA) {
        if (sm->replies_seen) {
            smtp_cstate(sm, CS_DATA_WAIT);
        } else {
            /* only the client's side is captured: no 354 will be seen */
            msg_begin(sm);
            smtp_cstate(sm, CS_DATA);
        }
    } else if (cmd == C_AUTH) {
        smtp_cstate(sm, CS_AUTH);
    }
}

static void client_command(struct smtp *sm, const struct mt_item *it);

/* The client went on with commands while an AUTH exchange was open (the
 * server's answer was lost, or never came): the exchange ends with an
 * unknown result, its command stops waiting for a reply, and the line is
 * taken as the command it is. */
static void auth_abandon(struct smtp *sm, const struct mt_item *it)
{
    for (GList *l = sm->pending.head; l; l = l->next)
        if (((struct pend *)l->data)->cmd == C_AUTH) {
            pend_free(l->data);
            g_queue_delete_link(&sm->pending, l);
            break;
        }
    auth_finish(sm, MT_AUTH_UNKNOWN);
    smtp_cstate(sm, CS_COMMAND);
    client_command(sm, it);
}

static void client_auth_line(struct smtp *sm, const struct mt_item *it)
{
    /* Base64 has no space or colon: "MAIL FROM:<...>" after AUTH means the
     * server's answer was lost; end the exchange and go on with commands */
    const uint8_t *sp = memchr(it->p, ' ', it->n);
    if (sp || memchr(it->p, ':', it->n)) {
        size_t vn = sp ? (size_t)(sp - it->p) : it->n;
        const uint8_t *colon = memchr(it->p, ':', vn);
        if (colon)
            vn = (size_t)(colon - it->p);
        if (lookup_cmd(it->p, vn) != C_OTHER) {
            mt_sess_anomaly(sm->s, MT_C2S, MT_AN_PROTOCOL_VIOLATION,
                            "command inside an AUTH exchange");
            auth_abandon(sm, it);
            return;
        }
    }
    /* "QUIT" is also four Base64 characters, but no mechanism mailtap knows
     * sends a 3-byte response ending in 0x13: the client gave up waiting */
    if (mt_eq_ci(it->p, it->n, "QUIT") && sm->sasl &&
        mt_sasl_steps(sm->sasl) >= 2) {
        auth_abandon(sm, it);
        return;
    }
    mt_sess_line_anomalies(sm->s, MT_C2S, it->flags);
    if (it->n == 1 && it->p[0] == '*') {
        if (sm->sasl)
            mt_sasl_cancel(sm->sasl);
        mt_sess_command(sm->s, it->p, it->n, "cancelled", true, false);
        return;
    }
    char *note = NULL;
    if (sm->sasl)
        note = mt_sasl_step(sm->sasl, MT_C2S, (const char *)it->p, it->n, mt_sess_anomaly_cb,
                            sm->s);
    mt_sess_command(sm->s, it->p, it->n, note, true, true);
    g_free(note);
}

static void client_bytes(struct smtp *sm, const uint8_t *p, size_t n);

static void client_item(struct smtp *sm, const struct mt_item *it)
{
    switch (sm->cstate) {
    case CS_COMMAND:
        if (it->kind == MT_ITEM_LINE)
            client_command(sm, it);
        break;
    case CS_AUTH:
        if (it->kind == MT_ITEM_LINE)
            client_auth_line(sm, it);
        break;
    case CS_DATA: /* handled in bulk by client_bytes */
        break;
    case CS_BDAT:
        if (it->kind == MT_ITEM_RAW)
            mt_msgbuf_append(&sm->msg, it->p, it->n);
        if (sm->fr[MT_C2S].raw_left == 0) {
            smtp_cstate(sm, CS_COMMAND);
            if (sm->bdat_last)
                bdat_done(sm);
        }
        break;
    case CS_DATA_WAIT: /* handled in client_bytes */
    case CS_TLS:
        break;
    }
}

/* The wait for the reply to DATA is over: the body follows (accepted) or
 * not (rejected), and what the client sent meanwhile is replayed as such. */
static void data_decided(struct smtp *sm, bool accepted)
{
    GByteArray *held = sm->held;
    sm->held = NULL;
    if (accepted) {
        msg_begin(sm);
        smtp_cstate(sm, CS_DATA);
    } else {
        smtp_cstate(sm, CS_COMMAND); /* rejected DATA: no message follows */
    }
    if (held) {
        client_bytes(sm, held->data, held->len);
        g_byte_array_free(held, TRUE);
    }
}

static void client_bytes(struct smtp *sm, const uint8_t *p, size_t n)
{
    struct mt_framer *f = &sm->fr[MT_C2S];
    if (sm->cstate == CS_DATA_WAIT) {
        /* the client sends the body only after 354; hold what comes early */
        if (!sm->held)
            sm->held = g_byte_array_new();
        if (n <= MT_CAP_SMTP_HELD_BYTES - sm->held->len) {
            g_byte_array_append(sm->held, p, (guint)n);
            return;
        }
        /* far more than a command's worth: the 354 was not captured */
        data_decided(sm, true);
        client_bytes(sm, p, n);
        return;
    }
    if (sm->cstate == CS_DATA) {
        /* the body in bulk, not line by line */
        bool done;
        size_t used = mt_msgbuf_dotbody(&sm->msg, p, n, &done);
        for (; sm->msg.bare_dots > 0; sm->msg.bare_dots--)
            mt_sess_anomaly(sm->s, MT_C2S, MT_AN_BARE_LF_DOT, NULL);
        if (!done)
            return;
        smtp_cstate(sm, CS_COMMAND);
        emit_message(sm, MT_SRC_DATA, true);
        /* the reply to the end of the body comes as to a command */
        push_pending(sm, C_DATA_END, (const uint8_t *)".", 1, NULL, false);
        p += used;
        n -= used;
    }
    struct mt_item it;
    mt_framer_input(f, p, n);
    while (sm->cstate != CS_TLS && mt_framer_next(f, &it)) {
        client_item(sm, &it);
        if (sm->cstate == CS_DATA || sm->cstate == CS_DATA_WAIT) {
            /* the rest of this input is a body (in bulk) or held until
             * the reply to DATA: not lines */
            size_t rest = f->in_len - f->in_off;
            const uint8_t *rp = f->in + f->in_off;
            f->in_off = f->in_len;
            if (rest)
                client_bytes(sm, rp, rest);
            return;
        }
    }
}

/* ---- server side ---- */

static bool is_code(const uint8_t *p, size_t n)
{
    return n >= 3 && g_ascii_isdigit(p[0]) && g_ascii_isdigit(p[1]) && g_ascii_isdigit(p[2]) &&
           (n == 3 || p[3] == ' ' || p[3] == '-');
}

static char **ehlo_capabilities(struct mt_lines *l)
{
    const struct mt_bytes *v = mt_lines_view(l);
    struct mt_caps_builder caps = { 0 };
    for (size_t i = 1; i < l->n; i++)
        if (v[i].n > 4)
            mt_caps_add(&caps, v[i].p + 4, v[i].n - 4);
    return mt_caps_finish(&caps);
}

/* A complete reply: match it to its command and act on it. */
static void server_reply(struct smtp *sm)
{
    sm->replies_seen = true;
    const char *code = sm->reply_code;
    bool positive = code[0] == '2' || code[0] == '3';
    struct pend *pd = NULL;
    char *note = NULL;
    bool intermediate = false;

    if (sm->cstate == CS_AUTH && code[0] == '3' && code[1] == '3' && code[2] == '4') {
        /* 334: a SASL challenge, the AUTH command is still pending */
        intermediate = true;
        pd = g_queue_peek_head(&sm->pending);
        const struct mt_bytes *v = mt_lines_view(&sm->reply);
        if (sm->sasl && sm->reply.n > 0) {
            size_t tn = v[0].n > 4 ? v[0].n - 4 : 0;
            note = mt_sasl_step(sm->sasl, MT_S2C, (const char *)v[0].p + 4, tn,
                                mt_sess_anomaly_cb, sm->s);
        }
    } else if (!sm->greeted && (g_queue_is_empty(&sm->pending) || strcmp(code, "220") == 0)) {
        /* the banner: the server's first reply, also when the client
         * spoke before it (RFC 5321 3.1; PIPE_CONNECT) */
        sm->greeted = true;
    } else {
        if (strcmp(code, "354") == 0) {
            /* 354 only ever answers DATA: replies before it were lost or
             * merged; realign on the DATA */
            struct pend *head = g_queue_peek_head(&sm->pending);
            bool has_data = false;
            for (GList *l = sm->pending.head; l; l = l->next)
                has_data |= ((struct pend *)l->data)->cmd == C_DATA;
            if (head && head->cmd != C_DATA && has_data) {
                mt_sess_anomaly(sm->s, MT_S2C, MT_AN_UNMATCHED_REPLY,
                                "replies missing before 354");
                while (((struct pend *)g_queue_peek_head(&sm->pending))->cmd != C_DATA)
                    pend_free(g_queue_pop_head(&sm->pending));
            }
        }
        pd = g_queue_pop_head(&sm->pending);
        if (!pd && strcmp(code, "421") != 0)
            mt_sess_anomaly(sm->s, MT_S2C, MT_AN_UNMATCHED_REPLY, "reply %s", code);
        sm->greeted = true;
    }

    struct mt_event ev = { .type = MT_EV_REPLY };
    ev.u.reply.code = code;
    ev.u.reply.lines = mt_lines_view(&sm->reply);
    ev.u.reply.nlines = sm->reply.n;
    ev.u.reply.note = note;
    if (pd) {
        ev.u.reply.cmd_pkt = pd->pkt;
        ev.u.reply.cmd_verb = (struct mt_bytes){ (const uint8_t *)pd->verb, strlen(pd->verb) };
    }
    if (sm->reply.dropped)
        mt_sess_anomaly(sm->s, MT_S2C, MT_AN_REPLY_TOO_LONG, "%llu lines dropped",
                        (unsigned long long)sm->reply.dropped);
    mt_sess_emit(sm->s, &ev);
    g_free(note);
    if (intermediate || !pd)
        return;

    if (pd->holds && sm->nheld > 0)
        emit_held(sm, true); /* every reply before this one is in sm->env */
    if (positive || pd->cmd == C_DATA_END || (pd->cmd == C_BDAT && pd->last))
        env_apply(&sm->env, pd, mt_sess_limits(sm->s)->rcpt_max);
    switch (pd->cmd) {
    case C_EHLO:
        if (positive)
            mt_sess_set_capabilities(sm->s, ehlo_capabilities(&sm->reply));
        /* fall through */
    case C_HELO:
        if (positive && pd->addr)
            mt_sess_set_client_name(sm->s, (const uint8_t *)pd->addr, strlen(pd->addr));
        break;
    case C_DATA:
        if (sm->cstate == CS_DATA_WAIT)
            data_decided(sm, strcmp(code, "354") == 0);
        break;
    case C_AUTH:
        if (sm->cstate == CS_AUTH)
            smtp_cstate(sm, CS_COMMAND);
        /* RFC 4954 6: 235 is success; 4xx/5xx failure (501 cancelled, 535
         * bad credentials, 454 temporary); anything else (221 after a QUIT
         * the server answered instead) says nothing */
        auth_finish(sm, strcmp(code, "235") == 0                 ? MT_AUTH_SUCCESS
                        : (code[0] == '4' || code[0] == '5') ? MT_AUTH_FAILURE
                                                             : MT_AUTH_UNKNOWN);
        break;
    case C_STARTTLS:
        if (code[0] == '2') {
            smtp_cstate(sm, CS_TLS);
            mt_sess_start_tls(sm->s);
        }
        break;
    default:
        break;
    }
    pend_free(pd);
}

static void server_bytes(struct smtp *sm, const uint8_t *p, size_t n)
{
    struct mt_framer *f = &sm->fr[MT_S2C];
    struct mt_item it;
    mt_framer_input(f, p, n);
    while (sm->cstate != CS_TLS && mt_framer_next(f, &it)) {
        if (sm->server_resync && !is_code(it.p, it.n))
            continue; /* the tail of a reply cut by the gap */
        mt_sess_line_anomalies(sm->s, MT_S2C, it.flags);
        if (!is_code(it.p, it.n)) {
            mt_sess_anomaly(sm->s, MT_S2C, MT_AN_PROTOCOL_VIOLATION, "reply without a code");
            if (!sm->reply_open)
                continue;
        } else if (!sm->reply_open) {
            memcpy(sm->reply_code, it.p, 3);
            sm->reply_code[3] = 0;
        }
        sm->server_resync = false;
        mt_lines_add(&sm->reply, it.p, it.n);
        sm->reply_open = true;
        if (is_code(it.p, it.n) && (it.n == 3 || it.p[3] == ' ')) {
            server_reply(sm);
            mt_lines_clear(&sm->reply);
            sm->reply_open = false;
        }
    }
}

/* ---- dissector entry points ---- */

static void smtp_data(void *st, struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n)
{
    struct smtp *sm = st;
    if (sm->cstate == CS_TLS)
        return;
    if (dir == MT_C2S)
        client_bytes(sm, p, n);
    else
        server_bytes(sm, p, n);
}

static void smtp_gap(void *st, struct mt_sess *s, enum mt_dir dir, uint64_t len)
{
    struct smtp *sm = st;
    struct mt_framer *f = &sm->fr[dir];
    if (dir == MT_S2C) {
        mt_framer_reset(f);
        mt_lines_clear(&sm->reply);
        sm->reply_open = false;
        sm->server_resync = true;
        return;
    }
    switch (sm->cstate) {
    case CS_BDAT:
        sm->msg.gap = true;
        if (len < f->raw_left) {
            f->raw_left -= len;
            return;
        }
        f->raw_left = 0;
        smtp_cstate(sm, CS_COMMAND);
        if (sm->bdat_last)
            emit_message(sm, MT_SRC_BDAT, false);
        mt_framer_reset(f);
        sm->client_resync = true;
        return;
    case CS_DATA:
        mt_msgbuf_dotgap(&sm->msg); /* keep looking for the end of the body */
        mt_framer_reset(f);
        return;
    default:
        mt_framer_reset(f);
        sm->client_resync = true;
        return;
    }
}

static void smtp_end(void *st, struct mt_sess *s)
{
    struct smtp *sm = st;
    if (sm->cstate == CS_DATA_WAIT && sm->held)
        data_decided(sm, true); /* the reply to DATA never came: assume accepted */
    if (sm->cstate == CS_DATA || (sm->cstate == CS_BDAT && sm->msg.active) ||
        (sm->cstate == CS_COMMAND && sm->msg.active && sm->msg.total > 0))
        emit_message(sm, sm->cstate == CS_DATA ? MT_SRC_DATA : MT_SRC_BDAT, false);
    while (sm->nheld > 0)
        emit_held(sm, false); /* their replies never came */
    if (sm->sasl)
        auth_finish(sm, MT_AUTH_UNKNOWN);
}

static void smtp_destroy(void *st)
{
    struct smtp *sm = st;
    mt_framer_free(&sm->fr[0]);
    mt_framer_free(&sm->fr[1]);
    g_queue_clear_full(&sm->pending, pend_free);
    mt_lines_free(&sm->reply);
    if (sm->held)
        g_byte_array_free(sm->held, TRUE);
    env_free(&sm->env);
    mt_msgbuf_free(&sm->msg);
    for (unsigned i = 0; i <= MT_CAP_SMTP_HELD_MSGS; i++)
        mt_msgbuf_free(&sm->bmsg[i]);
    if (sm->sasl)
        mt_sasl_free(sm->sasl);
    g_free(sm->sasl_mech);
    g_free(sm);
}

const struct mt_dissector mt_smtp_dissector = {
    .name = "smtp",
    .proto = MT_PROTO_SMTP,
    .create = smtp_create,
    .data = smtp_data,
    .gap = smtp_gap,
    .end = smtp_end,
    .destroy = smtp_destroy,
};
