/* The readable transcript: the dialogue as C:/S: lines, decoded AUTH
 * values beside their Base64, and a summary of each message.  Every byte
 * from the network goes through mt_esc_text. */
#include <string.h>

#include "output_int.h"

/* The address as [ip]:port for IPv6, ip:port otherwise. */
static void endpoint(GString *b, const struct mt_endpoint *e, bool v6)
{
    if (v6)
        mt_buf_putc(b, '[');
    mt_append_ip(b, e);
    if (v6)
        mt_buf_putc(b, ']');
    mt_buf_putc(b, ':');
    mt_buf_u64(b, e->port);
}

static void endpoints(GString *b, const struct mt_session_info *s)
{
    bool v6 = s->client.family == 6; /* brackets on both sides, as before */
    endpoint(b, &s->client, v6);
    mt_buf_lit(b, " -> ");
    endpoint(b, &s->server, v6);
}

static void esc_str(GString *b, const char *s)
{
    if (s)
        mt_esc_text(b, s, strlen(s));
}

static void note(struct mt_output *o, GString *b, const char *n)
{
    if (!n)
        return;
    mt_buf_lit(b, "    [");
    if (o->o.redact) {
        char *r = mt_redact_note(n);
        esc_str(b, r);
        g_free(r);
    } else {
        esc_str(b, n);
    }
    mt_buf_putc(b, ']');
}

static void upper_proto(GString *b, enum mt_proto p)
{
    const char *n = mt_proto_name(p);
    for (; *n; n++)
        mt_buf_putc(b, g_ascii_toupper(*n));
}

/* "[<id>] SMTP <client> -> <server> <start>" */
static void session_head(struct mt_output *o, GString *b, const struct mt_session_info *s)
{
    mt_buf_putc(b, '[');
    mt_buf_u64(b, s->id);
    mt_buf_lit(b, "] ");
    upper_proto(b, s->proto);
    mt_buf_putc(b, ' ');
    endpoints(b, s);
    mt_buf_putc(b, ' ');
    mt_fmt_time_cached(b, &o->tc, s->start_us);
}

static void session_end(struct mt_output *o, GString *b, const struct mt_session_info *s)
{
    session_head(o, b, s);
    mt_buf_lit(b, " - ");
    mt_fmt_time_cached(b, &o->tc, s->end_us);
    mt_buf_lit(b, " c2s ");
    mt_buf_u64(b, s->bytes[MT_C2S]);
    mt_buf_lit(b, " bytes, s2c ");
    mt_buf_u64(b, s->bytes[MT_S2C]);
    mt_buf_lit(b, " bytes, ");
    if (s->complete) {
        mt_buf_lit(b, "complete");
    } else if (s->ngaps) {
        mt_buf_lit(b, "incomplete: ");
        mt_buf_u64(b, s->ngaps);
        mt_buf_lit(b, " gaps, ");
        mt_buf_u64(b, s->gap_bytes);
        mt_buf_lit(b, " bytes missing");
    } else if (!s->handshake) {
        mt_buf_lit(b, "incomplete: picked up mid-stream");
    } else {
        mt_buf_lit(b, "incomplete: not closed");
    }
    if (s->starttls)
        mt_buf_lit(b, ", STARTTLS");
    mt_buf_putc(b, '\n');
}

static void message(GString *b, const struct mt_message *m)
{
    mt_buf_lit(b, "  == message ");
    mt_buf_u64(b, m->index);
    mt_buf_lit(b, " (");
    mt_buf_str(b, mt_msg_source_name(m->source));
    mt_buf_lit(b, ", ");
    mt_buf_u64(b, m->size);
    mt_buf_lit(b, " bytes, sha256 ");
    mt_buf_str(b, m->sha256);
    if (!m->complete)
        mt_buf_lit(b, ", incomplete");
    if (m->truncated)
        mt_buf_lit(b, ", truncated");
    mt_buf_lit(b, ")\n");
    if (m->mail_from || m->nrcpt) {
        mt_buf_lit(b, "     envelope: ");
        esc_str(b, m->mail_from ? m->mail_from : "?");
        if (m->mail_params) {
            mt_buf_lit(b, " (");
            esc_str(b, m->mail_params);
            mt_buf_putc(b, ')');
        }
        mt_buf_lit(b, " ->");
        for (size_t i = 0; i < m->nrcpt; i++) {
            if (i)
                mt_buf_putc(b, ',');
            mt_buf_putc(b, ' ');
            esc_str(b, m->rcpt_to[i]);
            if (m->rcpt_params && m->rcpt_params[i]) {
                mt_buf_lit(b, " (");
                esc_str(b, m->rcpt_params[i]);
                mt_buf_putc(b, ')');
            }
        }
        mt_buf_putc(b, '\n');
    }
    if (m->mailbox || m->uid) {
        mt_buf_lit(b, "     mailbox: ");
        esc_str(b, m->mailbox ? m->mailbox : "?");
        if (m->uid) {
            mt_buf_lit(b, " uid ");
            esc_str(b, m->uid);
        }
        mt_buf_putc(b, '\n');
    }
    const char *names[] = { "From", "To", "Cc", "Subject", "Date", "Message-ID" };
    const char *vals[] = { m->headers.from, m->headers.to,   m->headers.cc,
                           m->headers.subject, m->headers.date, m->headers.message_id };
    for (int i = 0; i < 6; i++)
        if (vals[i]) {
            mt_buf_lit(b, "     ");
            mt_buf_str(b, names[i]);
            mt_buf_lit(b, ": ");
            esc_str(b, vals[i]);
            mt_buf_putc(b, '\n');
        }
    for (size_t i = 0; i < m->nparts; i++) {
        const struct mt_mime_part *p = &m->parts[i];
        mt_buf_lit(b, "     part ");
        esc_str(b, p->path);
        size_t indent = 2 * (size_t)p->depth;
        char *d = mt_buf_room(b, indent);
        memset(d, ' ', indent);
        mt_buf_end(b, d + indent);
        mt_buf_putc(b, ' ');
        esc_str(b, p->content_type ? p->content_type : "?");
        if (p->charset) {
            mt_buf_lit(b, "; charset=");
            esc_str(b, p->charset);
        }
        if (!p->is_multipart) {
            if (p->filename) {
                mt_buf_lit(b, " \"");
                esc_str(b, p->filename);
                mt_buf_putc(b, '"');
            }
            mt_buf_putc(b, ' ');
            mt_buf_u64(b, p->size);
            mt_buf_lit(b, " bytes");
            if (p->encoding) {
                mt_buf_lit(b, " (");
                esc_str(b, p->encoding);
                mt_buf_putc(b, ')');
            }
            mt_buf_lit(b, " sha256 ");
            mt_buf_str(b, p->sha256);
            if (p->file) {
                mt_buf_lit(b, " -> ");
                esc_str(b, p->file);
            }
        }
        mt_buf_putc(b, '\n');
    }
    if (m->file) {
        mt_buf_lit(b, "     saved as ");
        esc_str(b, m->file);
        mt_buf_putc(b, '\n');
    }
}

/* Appends the event's lines to o->buf (output.c writes them out). */
void mt_text_event(struct mt_output *o, const struct mt_event *ev)
{
    GString *b = o->buf;
    switch (ev->type) {
    case MT_EV_SESSION_START:
        if (ev->sess->proto == MT_PROTO_UNKNOWN)
            return;
        session_head(o, b, ev->sess);
        mt_buf_putc(b, '\n');
        break;
    case MT_EV_SESSION_END:
        session_end(o, b, ev->sess);
        break;
    case MT_EV_COMMAND:
        mt_buf_lit(b, "  C: ");
        if (o->o.redact && ev->u.cmd.secret) {
            mt_esc_text(b, ev->u.cmd.tag.p, ev->u.cmd.tag.n);
            if (ev->u.cmd.tag.n)
                mt_buf_putc(b, ' ');
            mt_esc_text(b, ev->u.cmd.verb.p, ev->u.cmd.verb.n);
            if (ev->u.cmd.verb.n)
                mt_buf_putc(b, ' ');
            mt_buf_lit(b, "****");
        } else {
            mt_esc_text(b, ev->u.cmd.line.p, ev->u.cmd.line.n);
        }
        note(o, b, ev->u.cmd.note);
        mt_buf_putc(b, '\n');
        break;
    case MT_EV_REPLY:
        for (size_t i = 0; i < ev->u.reply.nlines; i++) {
            mt_buf_lit(b, "  S: ");
            mt_esc_text(b, ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
            if (i == 0)
                note(o, b, ev->u.reply.note);
            mt_buf_putc(b, '\n');
        }
        break;
    case MT_EV_CREDENTIAL: {
        const struct mt_credential *c = ev->u.cred;
        mt_buf_lit(b, "  ** credential ");
        esc_str(b, c->mechanism);
        const char *keys[] = { "user", "authzid", "password", "token", "domain", "workstation",
                               "hash" };
        const char *vals[] = { c->username, c->authzid, c->password, c->token,
                               c->domain, c->workstation, c->hash };
        for (int i = 0; i < 7; i++)
            if (vals[i]) {
                bool secret = i == 2 || i == 3 || i == 6;
                mt_buf_putc(b, ' ');
                mt_buf_str(b, keys[i]);
                mt_buf_putc(b, '=');
                if (o->o.redact && secret)
                    mt_buf_lit(b, "****");
                else
                    esc_str(b, vals[i]);
            }
        mt_buf_lit(b, " result=");
        mt_buf_str(b, mt_auth_result_name(c->result));
        mt_buf_putc(b, '\n');
        break;
    }
    case MT_EV_MESSAGE:
        message(b, ev->u.msg);
        break;
    case MT_EV_ANOMALY:
        mt_buf_lit(b, "  !! ");
        mt_buf_str(b, mt_anomaly_name(ev->u.anomaly.kind));
        if (ev->u.anomaly.dir == MT_C2S)
            mt_buf_lit(b, " (c2s)");
        else
            mt_buf_lit(b, " (s2c)");
        if (ev->u.anomaly.detail) {
            mt_buf_lit(b, ": ");
            esc_str(b, ev->u.anomaly.detail);
        }
        mt_buf_putc(b, '\n');
        break;
    case MT_EV_TLS:
        mt_buf_lit(b, "  -- TLS from here on: not decrypted\n");
        break;
    }
}
