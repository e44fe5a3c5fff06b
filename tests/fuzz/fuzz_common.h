/* Shared by the fuzz harnesses: a sink that reads every byte an event
 * points at (so ASan sees a dangling or short buffer in the engine's
 * events without any output being written), and the two sets of limits
 * the harnesses run under. */
#ifndef MT_FUZZ_COMMON_H
#define MT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "event.h"
#include "caps.h"

/* Accumulates into a volatile so the reads are not optimised away. */
static volatile uint8_t fz_sink_acc;

static inline void fz_touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t a = 0;
    for (size_t i = 0; b && i < n; i++)
        a ^= b[i];
    fz_sink_acc ^= a;
}

static inline void fz_touch_str(const char *s)
{
    if (s)
        fz_touch(s, strlen(s) + 1);
}

static inline void fz_touch_session(const struct mt_session_info *si)
{
    if (!si)
        return;
    fz_touch(si, sizeof(*si));
    fz_touch_str(si->client_name);
    for (char **c = si->capabilities; c && *c; c++)
        fz_touch_str(*c);
}

static inline void fz_touch_part(const struct mt_mime_part *p)
{
    fz_touch_str(p->path);
    fz_touch_str(p->content_type);
    fz_touch_str(p->charset);
    fz_touch_str(p->encoding);
    fz_touch_str(p->filename);
    fz_touch_str(p->disposition);
    fz_touch_str(p->text_utf8);
    fz_touch(p->data, p->data_len);
    fz_touch(p->sha256, sizeof(p->sha256));
}

static inline void fz_touch_headers(const struct mt_mime_headers *h)
{
    fz_touch_str(h->from);
    fz_touch_str(h->to);
    fz_touch_str(h->cc);
    fz_touch_str(h->subject);
    fz_touch_str(h->date);
    fz_touch_str(h->message_id);
}

static inline void fz_touch_cred(const struct mt_credential *c)
{
    fz_touch_str(c->mechanism);
    fz_touch_str(c->username);
    fz_touch_str(c->password);
    fz_touch_str(c->authzid);
    fz_touch_str(c->token);
    fz_touch_str(c->hash);
    fz_touch_str(c->challenge);
    fz_touch_str(c->response);
    fz_touch_str(c->domain);
    fz_touch_str(c->workstation);
}

/* An mt_sink_fn that writes nothing. */
static inline void fz_sink(void *ud, struct mt_event *ev)
{
    (void)ud;
    fz_touch_session(ev->sess);
    switch (ev->type) {
    case MT_EV_COMMAND:
        fz_touch(ev->u.cmd.tag.p, ev->u.cmd.tag.n);
        fz_touch(ev->u.cmd.verb.p, ev->u.cmd.verb.n);
        fz_touch(ev->u.cmd.arg.p, ev->u.cmd.arg.n);
        fz_touch(ev->u.cmd.line.p, ev->u.cmd.line.n);
        fz_touch_str(ev->u.cmd.note);
        break;
    case MT_EV_REPLY:
        fz_touch(ev->u.reply.tag.p, ev->u.reply.tag.n);
        fz_touch_str(ev->u.reply.code);
        for (size_t i = 0; i < ev->u.reply.nlines; i++)
            fz_touch(ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
        fz_touch_str(ev->u.reply.note);
        fz_touch(ev->u.reply.cmd_verb.p, ev->u.reply.cmd_verb.n);
        break;
    case MT_EV_CREDENTIAL: fz_touch_cred(ev->u.cred); break;
    case MT_EV_MESSAGE: {
        const struct mt_message *m = ev->u.msg;
        fz_touch_str(m->mail_from);
        for (size_t i = 0; i < m->nrcpt; i++)
            fz_touch_str(m->rcpt_to[i]);
        fz_touch_str(m->mailbox);
        fz_touch_str(m->uid);
        fz_touch_str(m->flags);
        fz_touch_str(m->section);
        fz_touch(m->sha256, sizeof(m->sha256));
        fz_touch(m->raw, m->raw_len);
        fz_touch_headers(&m->headers);
        for (size_t i = 0; i < m->nparts; i++)
            fz_touch_part(&m->parts[i]);
        break;
    }
    case MT_EV_ANOMALY:
        fz_touch_str(mt_anomaly_name(ev->u.anomaly.kind));
        fz_touch_str(ev->u.anomaly.detail);
        break;
    default: break;
    }
}

/* Small caps, so that short inputs reach every cap's code path. */
static inline void fz_limits_tight(struct mt_limits *l)
{
    mt_limits_default(l);
    l->line_max = 64;
    l->reply_lines_max = 4;
    l->pending_max = 4;
    l->literal_max = 256;
    l->message_max = 512;
    l->mime_depth_max = 3;
    l->mime_parts_max = 8;
    l->header_max = 128;
    l->ooo_max = 256;
    l->flows_max = 4;
    l->rcpt_max = 3;
    l->imap_nest_max = 4;
    l->auth_steps_max = 3;
    l->unacked_max = 256;
    l->ipfrag_max = 4;
    l->inflate_max = 1;
}

#endif
