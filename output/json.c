/* JSON Lines: one object per event.  The schema is in docs/json-schema.md;
 * field names are stable. */
#include <string.h>

#include "output_int.h"

#include "caps.h"

/* ,"k": with k a string literal.  The macros below need one: the key then
 * goes in as one copy of a length known when compiling. */
#define key(b, k) mt_buf_lit(b, ",\"" k "\":")
#define str_field(b, k, v) (key(b, k), str_value(b, k, v))
#define bytes_field(b, k, v) (key(b, k), bytes_value(b, k, v))
#define num_field(b, k, v) (key(b, k), mt_buf_u64(b, v))
#define bool_field(b, k, v) (key(b, k), mt_buf_bool(b, v))
#define endpoint(b, k, e) (key(b, k), endpoint_value(b, e))

/* ,"<k>_b64":"<Base64 of p>" */
static void b64_field(GString *b, const char *k, const void *p, size_t n)
{
    gchar *b64 = g_base64_encode(p, n);
    mt_buf_lit(b, ",\"");
    mt_buf_str(b, k);
    mt_buf_lit(b, "_b64\":\"");
    mt_buf_str(b, b64);
    mt_buf_putc(b, '"');
    g_free(b64);
}

/* A string field's value; where it was not valid UTF-8 (a password in a
 * legacy charset, a raw file name), its bytes also come Base64-encoded in
 * "<k>_b64", so nothing is lost. */
static void str_value(GString *b, const char *k, const char *v)
{
    if (!v) {
        mt_buf_lit(b, "null");
        return;
    }
    size_t n = strlen(v);
    if (!mt_esc_json(b, v, n))
        b64_field(b, k, v, n);
}

/* Network bytes: the string, and the raw bytes in Base64 if they were not
 * valid UTF-8. */
static void bytes_value(GString *b, const char *k, struct mt_bytes v)
{
    if (!mt_esc_json(b, v.p, v.n))
        b64_field(b, k, v.p, v.n);
}

static void endpoint_value(GString *b, const struct mt_endpoint *e)
{
    mt_buf_lit(b, "{\"ip\":\"");
    mt_append_ip(b, e);
    mt_buf_lit(b, "\",\"port\":");
    mt_buf_u64(b, e->port);
    mt_buf_putc(b, '}');
}

/* The fields every event but the session starts with; type is a literal. */
#define HEAD_START(type) "{\"type\":\"" type "\",\"session\":"
#define head(o, b, type, ev) head_n(o, b, HEAD_START(type), sizeof(HEAD_START(type)) - 1, ev)
static void head_n(struct mt_output *o, GString *b, const char *start, size_t n,
                   const struct mt_event *ev)
{
    mt_buf_put(b, start, n);
    mt_buf_u64(b, ev->sess->id);
    mt_buf_lit(b, ",\"ts\":\"");
    mt_fmt_time_cached(b, &o->tc, ev->ts_us);
    mt_buf_lit(b, "\",\"pkt\":");
    mt_buf_u64(b, ev->pkt);
    mt_buf_lit(b, ",\"proto\":\"");
    mt_buf_str(b, mt_proto_name(ev->proto));
    mt_buf_putc(b, '"');
}

static void session(struct mt_output *o, GString *b, const struct mt_session_info *s)
{
    mt_buf_lit(b, "{\"type\":\"session\"");
    num_field(b, "session", s->id);
    mt_buf_lit(b, ",\"proto\":\"");
    mt_buf_str(b, mt_proto_name(s->proto));
    mt_buf_putc(b, '"');
    endpoint(b, "client", &s->client);
    endpoint(b, "server", &s->server);
    key(b, "start");
    mt_buf_putc(b, '"');
    mt_fmt_time_cached(b, &o->tc, s->start_us);
    mt_buf_lit(b, "\",\"end\":\"");
    mt_fmt_time_cached(b, &o->tc, s->end_us);
    mt_buf_putc(b, '"');
    num_field(b, "c2s_bytes", s->bytes[MT_C2S]);
    num_field(b, "s2c_bytes", s->bytes[MT_S2C]);
    num_field(b, "packets", s->packets);
    bool_field(b, "handshake", s->handshake);
    bool_field(b, "closed", s->closed);
    bool_field(b, "starttls", s->starttls);
    bool_field(b, "complete", s->complete);
    mt_buf_lit(b, ",\"gaps\":[");
    for (uint32_t i = 0; s->gaps && i < s->ngaps && i < MT_CAP_GAPS_KEPT; i++) {
        if (i)
            mt_buf_putc(b, ',');
        if (s->gaps[i].dir == MT_C2S)
            mt_buf_lit(b, "{\"dir\":\"c2s\"");
        else
            mt_buf_lit(b, "{\"dir\":\"s2c\"");
        num_field(b, "offset", s->gaps[i].offset);
        num_field(b, "len", s->gaps[i].len);
        mt_buf_putc(b, '}');
    }
    mt_buf_putc(b, ']');
    num_field(b, "gap_count", s->ngaps);
    num_field(b, "gap_bytes", s->gap_bytes);
    mt_buf_lit(b, ",\"anomalies\":");
    mt_json_anomaly_counts(b, s->anomalies);
    if (s->client_name)
        str_field(b, "helo", s->client_name);
    if (s->capabilities) {
        key(b, "capabilities");
        mt_buf_putc(b, '[');
        for (int i = 0; s->capabilities[i]; i++) {
            if (i)
                mt_buf_putc(b, ',');
            mt_esc_json(b, s->capabilities[i], strlen(s->capabilities[i]));
        }
        mt_buf_putc(b, ']');
    }
    mt_buf_putc(b, '}');
}

static void credential(struct mt_output *o, GString *b, const struct mt_event *ev)
{
    const struct mt_credential *c = ev->u.cred;
    bool r = o->o.redact;
    head(o, b, "credential", ev);
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
    mt_buf_putc(b, '}');
}

/* "SIZE=454 BODY=8BITMIME SMTPUTF8" as {"SIZE":"454","BODY":"8BITMIME","SMTPUTF8":null}.
 * Keywords are case-insensitive (RFC 5321 4.1.1.11) and named once each:
 * a keyword given again ("size=1 SIZE=2", as one of our recorded clients
 * sends) keeps its first value, since an object with a name twice is one
 * that JSON readers read differently (jq keeps the last); the command
 * event has the whole line. */
void mt_json_esmtp_params(GString *b, const char *s)
{
    mt_buf_putc(b, '{');
    bool first = true;
    /* upper-cased keywords named so far */
    GHashTable *seen = s && *s ? g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)
                               : NULL;
    while (s && *s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n == 0)
            break;
        const char *eq = memchr(s, '=', n);
        size_t kn = eq ? (size_t)(eq - s) : n;
        char *k = g_ascii_strup(s, (gssize)kn);
        /* false for a keyword given again (one of the two copies is freed) */
        if (g_hash_table_add(seen, k)) {
            if (!first)
                mt_buf_putc(b, ',');
            first = false;
            mt_esc_json(b, k, kn);
            mt_buf_putc(b, ':');
            if (eq)
                mt_esc_json(b, eq + 1, n - kn - 1);
            else
                mt_buf_lit(b, "null");
        }
        s += n;
    }
    if (seen)
        g_hash_table_destroy(seen);
    mt_buf_putc(b, '}');
}

static void message(struct mt_output *o, GString *b, const struct mt_event *ev)
{
    const struct mt_message *m = ev->u.msg;
    head(o, b, "message", ev);
    num_field(b, "index", m->index);
    str_field(b, "source", mt_msg_source_name(m->source));
    if (ev->proto == MT_PROTO_SMTP) {
        str_field(b, "mail_from", m->mail_from);
        key(b, "rcpt_to");
        mt_buf_putc(b, '[');
        for (size_t i = 0; i < m->nrcpt; i++) {
            if (i)
                mt_buf_putc(b, ',');
            mt_esc_json(b, m->rcpt_to[i], strlen(m->rcpt_to[i]));
        }
        mt_buf_putc(b, ']');
        key(b, "mail_params");
        mt_json_esmtp_params(b, m->mail_params);
        key(b, "rcpt_params");
        mt_buf_putc(b, '[');
        for (size_t i = 0; i < m->nrcpt; i++) {
            if (i)
                mt_buf_putc(b, ',');
            mt_json_esmtp_params(b, m->rcpt_params ? m->rcpt_params[i] : NULL);
        }
        mt_buf_putc(b, ']');
    }
    if (m->mailbox)
        str_field(b, "mailbox", m->mailbox);
    if (m->uid)
        str_field(b, "uid", m->uid);
    if (m->flags)
        str_field(b, "flags", m->flags);
    if (m->section)
        str_field(b, "section", m->section);
    num_field(b, "size", m->size);
    mt_buf_lit(b, ",\"sha256\":\"");
    mt_buf_str(b, m->sha256);
    mt_buf_lit(b, "\",\"complete\":");
    mt_buf_bool(b, m->complete);
    bool_field(b, "truncated", m->truncated);
    const struct mt_mime_headers *h = &m->headers;
    mt_buf_lit(b, ",\"headers\":{");
    /* the names with their quotes, colon and the comma before all but the first */
    static const char *const names[] = { "\"from\":",    ",\"to\":",   ",\"cc\":",
                                         ",\"subject\":", ",\"date\":", ",\"message_id\":" };
    const char *vals[] = { h->from, h->to, h->cc, h->subject, h->date, h->message_id };
    for (int i = 0; i < 6; i++) {
        mt_buf_str(b, names[i]);
        if (vals[i])
            mt_esc_json(b, vals[i], strlen(vals[i]));
        else
            mt_buf_lit(b, "null");
    }
    mt_buf_lit(b, "},\"parts\":[");
    for (size_t i = 0; i < m->nparts; i++) {
        const struct mt_mime_part *p = &m->parts[i];
        if (i)
            mt_buf_putc(b, ',');
        mt_buf_lit(b, "{\"path\":");
        mt_esc_json(b, p->path ? p->path : "", p->path ? strlen(p->path) : 0);
        str_field(b, "content_type", p->content_type);
        str_field(b, "charset", p->charset);
        str_field(b, "encoding", p->encoding);
        str_field(b, "filename", p->filename);
        str_field(b, "disposition", p->disposition);
        num_field(b, "size", p->size);
        str_field(b, "sha256", p->is_multipart ? NULL : p->sha256);
        if (p->file)
            str_field(b, "file", p->file);
        mt_buf_putc(b, '}');
    }
    mt_buf_putc(b, ']');
    if (m->file)
        str_field(b, "file", m->file);
    mt_buf_putc(b, '}');
}

/* Appends the event's line to o->buf (output.c writes it out). */
void mt_json_event(struct mt_output *o, const struct mt_event *ev)
{
    GString *b = o->buf;
    switch (ev->type) {
    case MT_EV_SESSION_START:
        return;
    case MT_EV_SESSION_END:
        session(o, b, ev->sess);
        break;
    case MT_EV_COMMAND:
        head(o, b, "command", ev);
        if (ev->u.cmd.tag.n)
            bytes_field(b, "tag", ev->u.cmd.tag);
        bytes_field(b, "verb", ev->u.cmd.verb);
        if (o->o.redact && ev->u.cmd.secret)
            str_field(b, "arg", "****");
        else
            bytes_field(b, "arg", ev->u.cmd.arg);
        if (ev->u.cmd.auth_data)
            mt_buf_lit(b, ",\"auth_data\":true");
        if (ev->u.cmd.note) {
            if (o->o.redact) {
                char *r = mt_redact_note(ev->u.cmd.note);
                str_field(b, "decoded", r);
                g_free(r);
            } else {
                str_field(b, "decoded", ev->u.cmd.note);
            }
        }
        mt_buf_putc(b, '}');
        break;
    case MT_EV_REPLY:
        head(o, b, "reply", ev);
        if (ev->u.reply.tag.n)
            bytes_field(b, "tag", ev->u.reply.tag);
        str_field(b, "code", ev->u.reply.code);
        key(b, "lines");
        mt_buf_putc(b, '[');
        bool clean = true;
        for (size_t i = 0; i < ev->u.reply.nlines; i++) {
            if (i)
                mt_buf_putc(b, ',');
            clean &= mt_esc_json(b, ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
        }
        mt_buf_putc(b, ']');
        if (!clean) { /* the raw bytes of every line, as with verb and arg */
            mt_buf_lit(b, ",\"lines_b64\":[");
            for (size_t i = 0; i < ev->u.reply.nlines; i++) {
                gchar *b64 = g_base64_encode(ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
                if (i)
                    mt_buf_putc(b, ',');
                mt_buf_putc(b, '"');
                mt_buf_str(b, b64);
                mt_buf_putc(b, '"');
                g_free(b64);
            }
            mt_buf_putc(b, ']');
        }
        if (ev->u.reply.note)
            str_field(b, "decoded", ev->u.reply.note);
        if (ev->u.reply.cmd_pkt) {
            num_field(b, "cmd_pkt", ev->u.reply.cmd_pkt);
            bytes_field(b, "cmd_verb", ev->u.reply.cmd_verb);
        }
        mt_buf_putc(b, '}');
        break;
    case MT_EV_CREDENTIAL:
        credential(o, b, ev);
        break;
    case MT_EV_MESSAGE:
        message(o, b, ev);
        break;
    case MT_EV_ANOMALY:
        head(o, b, "anomaly", ev);
        str_field(b, "name", mt_anomaly_name(ev->u.anomaly.kind));
        str_field(b, "dir", ev->u.anomaly.dir == MT_C2S ? "c2s" : "s2c");
        str_field(b, "detail", ev->u.anomaly.detail);
        mt_buf_putc(b, '}');
        break;
    case MT_EV_TLS:
        head(o, b, "tls", ev);
        mt_buf_putc(b, '}');
        break;
    }
    mt_buf_putc(b, '\n');
}
