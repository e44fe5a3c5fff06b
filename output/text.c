/* The readable transcript: the dialogue as C:/S: lines, decoded AUTH
 * values beside their Base64, and a summary of each message.  Every byte
 * from the network goes through mt_esc_text. */
#include <string.h>

#include "output_int.h"

static void endpoints(GString *b, const struct mt_session_info *s)
{
    char ip1[64], ip2[64];
    mt_endpoint_ip(&s->client, ip1, sizeof(ip1));
    mt_endpoint_ip(&s->server, ip2, sizeof(ip2));
    if (s->client.family == 6)
        g_string_append_printf(b, "[%s]:%u -> [%s]:%u", ip1, s->client.port, ip2,
                               s->server.port);
    else
        g_string_append_printf(b, "%s:%u -> %s:%u", ip1, s->client.port, ip2, s->server.port);
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
    g_string_append(b, "    [");
    if (o->o.redact) {
        char *r = mt_redact_note(n);
        esc_str(b, r);
        g_free(r);
    } else {
        esc_str(b, n);
    }
    g_string_append_c(b, ']');
}

static void upper_proto(GString *b, enum mt_proto p)
{
    const char *n = mt_proto_name(p);
    for (; *n; n++)
        g_string_append_c(b, g_ascii_toupper(*n));
}

static void session_end(GString *b, const struct mt_session_info *s)
{
    g_string_append_printf(b, "[%llu] ", (unsigned long long)s->id);
    upper_proto(b, s->proto);
    g_string_append_c(b, ' ');
    endpoints(b, s);
    g_string_append_c(b, ' ');
    mt_fmt_time(b, s->start_us);
    g_string_append(b, " - ");
    mt_fmt_time(b, s->end_us);
    g_string_append_printf(b, " c2s %llu bytes, s2c %llu bytes, ",
                           (unsigned long long)s->bytes[MT_C2S],
                           (unsigned long long)s->bytes[MT_S2C]);
    if (s->complete)
        g_string_append(b, "complete");
    else if (s->ngaps)
        g_string_append_printf(b, "incomplete: %u gaps, %llu bytes missing", s->ngaps,
                               (unsigned long long)s->gap_bytes);
    else if (!s->handshake)
        g_string_append(b, "incomplete: picked up mid-stream");
    else
        g_string_append(b, "incomplete: not closed");
    if (s->starttls)
        g_string_append(b, ", STARTTLS");
    g_string_append_c(b, '\n');
}

static void message(GString *b, const struct mt_message *m)
{
    g_string_append_printf(b, "  == message %llu (%s, %llu bytes, sha256 %s%s%s)\n",
                           (unsigned long long)m->index, mt_msg_source_name(m->source),
                           (unsigned long long)m->size, m->sha256,
                           m->complete ? "" : ", incomplete", m->truncated ? ", truncated" : "");
    if (m->mail_from || m->nrcpt) {
        g_string_append(b, "     envelope: ");
        esc_str(b, m->mail_from ? m->mail_from : "?");
        if (m->mail_params) {
            g_string_append(b, " (");
            esc_str(b, m->mail_params);
            g_string_append_c(b, ')');
        }
        g_string_append(b, " ->");
        for (size_t i = 0; i < m->nrcpt; i++) {
            g_string_append(b, i ? ", " : " ");
            esc_str(b, m->rcpt_to[i]);
            if (m->rcpt_params && m->rcpt_params[i]) {
                g_string_append(b, " (");
                esc_str(b, m->rcpt_params[i]);
                g_string_append_c(b, ')');
            }
        }
        g_string_append_c(b, '\n');
    }
    if (m->mailbox || m->uid) {
        g_string_append(b, "     mailbox: ");
        esc_str(b, m->mailbox ? m->mailbox : "?");
        if (m->uid) {
            g_string_append(b, " uid ");
            esc_str(b, m->uid);
        }
        g_string_append_c(b, '\n');
    }
    const char *names[] = { "From", "To", "Cc", "Subject", "Date", "Message-ID" };
    const char *vals[] = { m->headers.from, m->headers.to,   m->headers.cc,
                           m->headers.subject, m->headers.date, m->headers.message_id };
    for (int i = 0; i < 6; i++)
        if (vals[i]) {
            g_string_append_printf(b, "     %s: ", names[i]);
            esc_str(b, vals[i]);
            g_string_append_c(b, '\n');
        }
    for (size_t i = 0; i < m->nparts; i++) {
        const struct mt_mime_part *p = &m->parts[i];
        g_string_append(b, "     part ");
        esc_str(b, p->path);
        g_string_append_printf(b, "%*s", (int)(2 * p->depth), "");
        g_string_append_c(b, ' ');
        esc_str(b, p->content_type ? p->content_type : "?");
        if (p->charset) {
            g_string_append(b, "; charset=");
            esc_str(b, p->charset);
        }
        if (!p->is_multipart) {
            if (p->filename) {
                g_string_append(b, " \"");
                esc_str(b, p->filename);
                g_string_append_c(b, '"');
            }
            g_string_append_printf(b, " %llu bytes", (unsigned long long)p->size);
            if (p->encoding) {
                g_string_append(b, " (");
                esc_str(b, p->encoding);
                g_string_append_c(b, ')');
            }
            g_string_append_printf(b, " sha256 %s", p->sha256);
            if (p->file) {
                g_string_append(b, " -> ");
                esc_str(b, p->file);
            }
        }
        g_string_append_c(b, '\n');
    }
    if (m->file) {
        g_string_append(b, "     saved as ");
        esc_str(b, m->file);
        g_string_append_c(b, '\n');
    }
}

void mt_text_event(struct mt_output *o, const struct mt_event *ev)
{
    GString *b = o->buf;
    switch (ev->type) {
    case MT_EV_SESSION_START:
        if (ev->sess->proto == MT_PROTO_UNKNOWN)
            return;
        g_string_append_printf(b, "[%llu] ", (unsigned long long)ev->sess->id);
        upper_proto(b, ev->sess->proto);
        g_string_append_c(b, ' ');
        endpoints(b, ev->sess);
        g_string_append_c(b, ' ');
        mt_fmt_time(b, ev->sess->start_us);
        g_string_append_c(b, '\n');
        break;
    case MT_EV_SESSION_END:
        session_end(b, ev->sess);
        break;
    case MT_EV_COMMAND:
        g_string_append(b, "  C: ");
        if (o->o.redact && ev->u.cmd.secret) {
            mt_esc_text(b, ev->u.cmd.tag.p, ev->u.cmd.tag.n);
            if (ev->u.cmd.tag.n)
                g_string_append_c(b, ' ');
            mt_esc_text(b, ev->u.cmd.verb.p, ev->u.cmd.verb.n);
            g_string_append(b, ev->u.cmd.verb.n ? " ****" : "****");
        } else {
            mt_esc_text(b, ev->u.cmd.line.p, ev->u.cmd.line.n);
        }
        note(o, b, ev->u.cmd.note);
        g_string_append_c(b, '\n');
        break;
    case MT_EV_REPLY:
        for (size_t i = 0; i < ev->u.reply.nlines; i++) {
            g_string_append(b, "  S: ");
            mt_esc_text(b, ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
            if (i == 0)
                note(o, b, ev->u.reply.note);
            g_string_append_c(b, '\n');
        }
        break;
    case MT_EV_CREDENTIAL: {
        const struct mt_credential *c = ev->u.cred;
        g_string_append(b, "  ** credential ");
        esc_str(b, c->mechanism);
        const char *keys[] = { "user", "authzid", "password", "token", "domain", "workstation",
                               "hash" };
        const char *vals[] = { c->username, c->authzid, c->password, c->token,
                               c->domain, c->workstation, c->hash };
        for (int i = 0; i < 7; i++)
            if (vals[i]) {
                bool secret = i == 2 || i == 3 || i == 6;
                g_string_append_printf(b, " %s=", keys[i]);
                if (o->o.redact && secret)
                    g_string_append(b, "****");
                else
                    esc_str(b, vals[i]);
            }
        g_string_append_printf(b, " result=%s\n", mt_auth_result_name(c->result));
        break;
    }
    case MT_EV_MESSAGE:
        message(b, ev->u.msg);
        break;
    case MT_EV_ANOMALY:
        g_string_append_printf(b, "  !! %s (%s)", mt_anomaly_name(ev->u.anomaly.kind),
                               ev->u.anomaly.dir == MT_C2S ? "c2s" : "s2c");
        if (ev->u.anomaly.detail) {
            g_string_append(b, ": ");
            esc_str(b, ev->u.anomaly.detail);
        }
        g_string_append_c(b, '\n');
        break;
    case MT_EV_TLS:
        g_string_append(b, "  -- TLS from here on: not decrypted\n");
        break;
    }
}
