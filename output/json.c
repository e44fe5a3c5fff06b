/* JSON Lines: one object per event.  The schema is in docs/json-schema.md;
 * field names are stable. */
#include <string.h>

#include "output_int.h"

static void key(GString *b, const char *k)
{
    g_string_append(b, ",\"");
    g_string_append(b, k);
    g_string_append(b, "\":");
}

/* A string field; where it was not valid UTF-8 (a password in a legacy
 * charset, a raw file name), its bytes also come Base64-encoded in
 * "<k>_b64", so nothing is lost. */
static void str_field(GString *b, const char *k, const char *v)
{
    key(b, k);
    if (!v) {
        g_string_append(b, "null");
        return;
    }
    size_t n = strlen(v);
    if (!mt_esc_json(b, v, n)) {
        gchar *b64 = g_base64_encode((const guchar *)v, n);
        g_string_append_printf(b, ",\"%s_b64\":\"%s\"", k, b64);
        g_free(b64);
    }
}

/* Network bytes: the string, and the raw bytes in Base64 if they were not
 * valid UTF-8. */
static void bytes_field(GString *b, const char *k, struct mt_bytes v)
{
    key(b, k);
    if (!mt_esc_json(b, v.p, v.n)) {
        gchar *b64 = g_base64_encode(v.p, v.n);
        g_string_append_printf(b, ",\"%s_b64\":\"%s\"", k, b64);
        g_free(b64);
    }
}

static void endpoint(GString *b, const char *k, const struct mt_endpoint *e)
{
    char ip[64];
    key(b, k);
    g_string_append(b, "{\"ip\":\"");
    g_string_append(b, mt_endpoint_ip(e, ip, sizeof(ip)));
    g_string_append(b, "\",\"port\":");
    mt_append_u64(b, e->port);
    g_string_append_c(b, '}');
}

/* "<k>":<v> with a leading comma; k is a literal without quotes. */
static void num_field(GString *b, const char *k, uint64_t v)
{
    g_string_append_c(b, ',');
    g_string_append_c(b, '"');
    g_string_append(b, k);
    g_string_append(b, "\":");
    mt_append_u64(b, v);
}

static void head(GString *b, const char *type, const struct mt_event *ev)
{
    g_string_append(b, "{\"type\":\"");
    g_string_append(b, type);
    g_string_append(b, "\",\"session\":");
    mt_append_u64(b, ev->sess->id);
    g_string_append(b, ",\"ts\":\"");
    mt_fmt_time(b, ev->ts_us);
    g_string_append(b, "\",\"pkt\":");
    mt_append_u64(b, ev->pkt);
    g_string_append(b, ",\"proto\":\"");
    g_string_append(b, mt_proto_name(ev->proto));
    g_string_append_c(b, '"');
}

static void session(GString *b, const struct mt_session_info *s)
{
    g_string_append_printf(b, "{\"type\":\"session\",\"session\":%llu,\"proto\":\"%s\"",
                           (unsigned long long)s->id, mt_proto_name(s->proto));
    endpoint(b, "client", &s->client);
    endpoint(b, "server", &s->server);
    key(b, "start");
    g_string_append_c(b, '"');
    mt_fmt_time(b, s->start_us);
    g_string_append(b, "\",\"end\":\"");
    mt_fmt_time(b, s->end_us);
    g_string_append_printf(b,
                           "\",\"c2s_bytes\":%llu,\"s2c_bytes\":%llu,\"packets\":%llu,"
                           "\"handshake\":%s,\"closed\":%s,\"starttls\":%s,\"complete\":%s",
                           (unsigned long long)s->bytes[MT_C2S],
                           (unsigned long long)s->bytes[MT_S2C], (unsigned long long)s->packets,
                           s->handshake ? "true" : "false", s->closed ? "true" : "false",
                           s->starttls ? "true" : "false", s->complete ? "true" : "false");
    g_string_append(b, ",\"gaps\":[");
    for (uint32_t i = 0; s->gaps && i < s->ngaps && i < MT_GAPS_KEPT; i++)
        g_string_append_printf(b, "%s{\"dir\":\"%s\",\"offset\":%llu,\"len\":%llu}",
                               i ? "," : "", s->gaps[i].dir == MT_C2S ? "c2s" : "s2c",
                               (unsigned long long)s->gaps[i].offset,
                               (unsigned long long)s->gaps[i].len);
    g_string_append_printf(b, "],\"gap_count\":%u,\"gap_bytes\":%llu", s->ngaps,
                           (unsigned long long)s->gap_bytes);
    g_string_append(b, ",\"anomalies\":");
    mt_json_anomaly_counts(b, s->anomalies);
    if (s->client_name)
        str_field(b, "helo", s->client_name);
    if (s->capabilities) {
        key(b, "capabilities");
        g_string_append_c(b, '[');
        for (int i = 0; s->capabilities[i]; i++) {
            if (i)
                g_string_append_c(b, ',');
            mt_esc_json(b, s->capabilities[i], strlen(s->capabilities[i]));
        }
        g_string_append_c(b, ']');
    }
    g_string_append_c(b, '}');
}

static void credential(struct mt_output *o, GString *b, const struct mt_event *ev)
{
    const struct mt_credential *c = ev->u.cred;
    bool r = o->o.redact;
    head(b, "credential", ev);
    endpoint(b, "client", &ev->sess->client);
    endpoint(b, "server", &ev->sess->server);
    str_field(b, "mechanism", c->mechanism);
    str_field(b, "username", c->username);
    str_field(b, "password", r && c->password ? "****" : c->password);
    str_field(b, "authzid", c->authzid);
    str_field(b, "token", r && c->token ? "****" : c->token);
    str_field(b, "hash", r && c->hash ? "****" : c->hash);
    str_field(b, "challenge", c->challenge);
    str_field(b, "response", r && c->response ? "****" : c->response);
    str_field(b, "domain", c->domain);
    str_field(b, "workstation", c->workstation);
    str_field(b, "result", mt_auth_result_name(c->result));
    g_string_append_c(b, '}');
}

/* "SIZE=454 BODY=8BITMIME SMTPUTF8" as {"SIZE":"454","BODY":"8BITMIME","SMTPUTF8":null}. */
static void esmtp_params(GString *b, const char *s)
{
    g_string_append_c(b, '{');
    bool first = true;
    while (s && *s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n == 0)
            break;
        const char *eq = memchr(s, '=', n);
        size_t kn = eq ? (size_t)(eq - s) : n;
        if (!first)
            g_string_append_c(b, ',');
        first = false;
        char *k = g_ascii_strup(s, (gssize)kn);
        mt_esc_json(b, k, kn);
        g_free(k);
        g_string_append_c(b, ':');
        if (eq)
            mt_esc_json(b, eq + 1, n - kn - 1);
        else
            g_string_append(b, "null");
        s += n;
    }
    g_string_append_c(b, '}');
}

static void message(GString *b, const struct mt_event *ev)
{
    const struct mt_message *m = ev->u.msg;
    head(b, "message", ev);
    num_field(b, "index", m->index);
    str_field(b, "source", mt_msg_source_name(m->source));
    if (ev->proto == MT_PROTO_SMTP) {
        str_field(b, "mail_from", m->mail_from);
        key(b, "rcpt_to");
        g_string_append_c(b, '[');
        for (size_t i = 0; i < m->nrcpt; i++) {
            if (i)
                g_string_append_c(b, ',');
            mt_esc_json(b, m->rcpt_to[i], strlen(m->rcpt_to[i]));
        }
        g_string_append_c(b, ']');
        key(b, "mail_params");
        esmtp_params(b, m->mail_params);
        key(b, "rcpt_params");
        g_string_append_c(b, '[');
        for (size_t i = 0; i < m->nrcpt; i++) {
            if (i)
                g_string_append_c(b, ',');
            esmtp_params(b, m->rcpt_params ? m->rcpt_params[i] : NULL);
        }
        g_string_append_c(b, ']');
    }
    if (m->mailbox)
        str_field(b, "mailbox", m->mailbox);
    if (m->uid)
        str_field(b, "uid", m->uid);
    if (m->flags)
        str_field(b, "flags", m->flags);
    if (m->section)
        str_field(b, "section", m->section);
    g_string_append_printf(b, ",\"size\":%llu,\"sha256\":\"%s\",\"complete\":%s,\"truncated\":%s",
                           (unsigned long long)m->size, m->sha256, m->complete ? "true" : "false",
                           m->truncated ? "true" : "false");
    const struct mt_mime_headers *h = &m->headers;
    g_string_append(b, ",\"headers\":{");
    bool first = true;
    const char *names[] = { "from", "to", "cc", "subject", "date", "message_id" };
    const char *vals[] = { h->from, h->to, h->cc, h->subject, h->date, h->message_id };
    for (int i = 0; i < 6; i++) {
        if (!first)
            g_string_append_c(b, ',');
        first = false;
        g_string_append_printf(b, "\"%s\":", names[i]);
        if (vals[i])
            mt_esc_json(b, vals[i], strlen(vals[i]));
        else
            g_string_append(b, "null");
    }
    g_string_append(b, "},\"parts\":[");
    for (size_t i = 0; i < m->nparts; i++) {
        const struct mt_mime_part *p = &m->parts[i];
        if (i)
            g_string_append_c(b, ',');
        g_string_append(b, "{\"path\":");
        mt_esc_json(b, p->path ? p->path : "", p->path ? strlen(p->path) : 0);
        str_field(b, "content_type", p->content_type);
        str_field(b, "charset", p->charset);
        str_field(b, "encoding", p->encoding);
        str_field(b, "filename", p->filename);
        str_field(b, "disposition", p->disposition);
        g_string_append_printf(b, ",\"size\":%llu", (unsigned long long)p->size);
        str_field(b, "sha256", p->is_multipart ? NULL : p->sha256);
        if (p->file)
            str_field(b, "file", p->file);
        g_string_append_c(b, '}');
    }
    g_string_append_c(b, ']');
    if (m->file)
        str_field(b, "file", m->file);
    g_string_append_c(b, '}');
}

void mt_json_event(struct mt_output *o, const struct mt_event *ev)
{
    GString *b = o->buf;
    g_string_truncate(b, 0);
    switch (ev->type) {
    case MT_EV_SESSION_START:
        return;
    case MT_EV_SESSION_END:
        session(b, ev->sess);
        break;
    case MT_EV_COMMAND:
        head(b, "command", ev);
        if (ev->u.cmd.tag.n)
            bytes_field(b, "tag", ev->u.cmd.tag);
        bytes_field(b, "verb", ev->u.cmd.verb);
        if (o->o.redact && ev->u.cmd.secret)
            str_field(b, "arg", "****");
        else
            bytes_field(b, "arg", ev->u.cmd.arg);
        if (ev->u.cmd.auth_data)
            g_string_append(b, ",\"auth_data\":true");
        if (ev->u.cmd.note) {
            if (o->o.redact) {
                char *r = mt_redact_note(ev->u.cmd.note);
                str_field(b, "decoded", r);
                g_free(r);
            } else {
                str_field(b, "decoded", ev->u.cmd.note);
            }
        }
        g_string_append_c(b, '}');
        break;
    case MT_EV_REPLY:
        head(b, "reply", ev);
        if (ev->u.reply.tag.n)
            bytes_field(b, "tag", ev->u.reply.tag);
        str_field(b, "code", ev->u.reply.code);
        key(b, "lines");
        g_string_append_c(b, '[');
        bool clean = true;
        for (size_t i = 0; i < ev->u.reply.nlines; i++) {
            if (i)
                g_string_append_c(b, ',');
            clean &= mt_esc_json(b, ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
        }
        g_string_append_c(b, ']');
        if (!clean) { /* the raw bytes of every line, as with verb and arg */
            g_string_append(b, ",\"lines_b64\":[");
            for (size_t i = 0; i < ev->u.reply.nlines; i++) {
                gchar *b64 = g_base64_encode(ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
                g_string_append_printf(b, "%s\"%s\"", i ? "," : "", b64);
                g_free(b64);
            }
            g_string_append_c(b, ']');
        }
        if (ev->u.reply.note)
            str_field(b, "decoded", ev->u.reply.note);
        if (ev->u.reply.cmd_pkt) {
            num_field(b, "cmd_pkt", ev->u.reply.cmd_pkt);
            bytes_field(b, "cmd_verb", ev->u.reply.cmd_verb);
        }
        g_string_append_c(b, '}');
        break;
    case MT_EV_CREDENTIAL:
        credential(o, b, ev);
        break;
    case MT_EV_MESSAGE:
        message(b, ev);
        break;
    case MT_EV_ANOMALY:
        head(b, "anomaly", ev);
        str_field(b, "name", mt_anomaly_name(ev->u.anomaly.kind));
        str_field(b, "dir", ev->u.anomaly.dir == MT_C2S ? "c2s" : "s2c");
        str_field(b, "detail", ev->u.anomaly.detail);
        g_string_append_c(b, '}');
        break;
    case MT_EV_TLS:
        head(b, "tls", ev);
        g_string_append_c(b, '}');
        break;
    }
    g_string_append_c(b, '\n');
    fwrite(b->str, 1, b->len, o->o.out);
}
