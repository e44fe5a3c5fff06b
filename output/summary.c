/* The closing summary: what the run saw, by protocol, mechanism, source
 * and anomaly, and which caps were hit. */
#include <string.h>

#include "output_int.h"

struct mt_summary {
    uint64_t sessions[8];      /* by enum mt_proto */
    uint64_t tls_sessions;     /* implicit TLS or STARTTLS */
    uint64_t starttls;
    uint64_t incomplete, gaps, gap_bytes;
    uint64_t anomalies[MT_AN__COUNT];
    GHashTable *creds;         /* "MECH result" -> count */
    uint64_t messages[8];      /* by enum mt_msg_source */
    uint64_t attachments, attachment_bytes;
    uint64_t credentials, messages_total;
};

struct mt_summary *mt_summary_new(void)
{
    struct mt_summary *s = g_new0(struct mt_summary, 1);
    s->creds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return s;
}

void mt_summary_free(struct mt_summary *s)
{
    if (!s)
        return;
    g_hash_table_destroy(s->creds);
    g_free(s);
}

void mt_summary_merge(struct mt_summary *d, const struct mt_summary *s)
{
    for (int i = 0; i < 8; i++) {
        d->sessions[i] += s->sessions[i];
        d->messages[i] += s->messages[i];
    }
    d->tls_sessions += s->tls_sessions;
    d->starttls += s->starttls;
    d->incomplete += s->incomplete;
    d->gaps += s->gaps;
    d->gap_bytes += s->gap_bytes;
    for (int a = 0; a < MT_AN__COUNT; a++)
        d->anomalies[a] += s->anomalies[a];
    d->attachments += s->attachments;
    d->attachment_bytes += s->attachment_bytes;
    d->credentials += s->credentials;
    d->messages_total += s->messages_total;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->creds);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        gpointer old = g_hash_table_lookup(d->creds, k);
        g_hash_table_replace(d->creds, g_strdup(k),
                             GSIZE_TO_POINTER(GPOINTER_TO_SIZE(old) + GPOINTER_TO_SIZE(v)));
    }
}

void mt_summary_event(struct mt_summary *s, const struct mt_event *ev)
{
    switch (ev->type) {
    case MT_EV_SESSION_END: {
        const struct mt_session_info *si = ev->sess;
        s->sessions[si->proto < 8 ? si->proto : 0]++;
        if (si->proto == MT_PROTO_TLS || si->starttls)
            s->tls_sessions++;
        if (si->starttls)
            s->starttls++;
        if (!si->complete)
            s->incomplete++;
        s->gaps += si->ngaps;
        s->gap_bytes += si->gap_bytes;
        for (int a = 0; a < MT_AN__COUNT; a++)
            s->anomalies[a] += si->anomalies[a];
        break;
    }
    case MT_EV_CREDENTIAL: {
        const struct mt_credential *c = ev->u.cred;
        const char *mech = c->mechanism ? c->mechanism : "?";
        const char *res = mt_auth_result_name(c->result);
        size_t mn = strlen(mech), rn = strlen(res);
        char *k = g_malloc(mn + 1 + rn + 1); /* "MECH result", without printf */
        memcpy(k, mech, mn);
        k[mn] = ' ';
        memcpy(k + mn + 1, res, rn + 1);
        gpointer v = g_hash_table_lookup(s->creds, k);
        g_hash_table_replace(s->creds, k, GSIZE_TO_POINTER(GPOINTER_TO_SIZE(v) + 1));
        s->credentials++;
        break;
    }
    case MT_EV_MESSAGE: {
        const struct mt_message *m = ev->u.msg;
        s->messages[m->source < 8 ? m->source : 0]++;
        s->messages_total++;
        for (size_t i = 0; i < m->nparts; i++) {
            const struct mt_mime_part *p = &m->parts[i];
            if (!p->is_multipart && (p->filename || (p->disposition &&
                                                      !strcmp(p->disposition, "attachment")))) {
                s->attachments++;
                s->attachment_bytes += p->size;
            }
        }
        break;
    }
    default:
        break;
    }
}

/* Anomalies that mean a cap was hit. */
static bool is_cap(enum mt_anomaly a)
{
    switch (a) {
    case MT_AN_LINE_TOO_LONG: case MT_AN_REPLY_TOO_LONG: case MT_AN_PENDING_OVERFLOW:
    case MT_AN_LITERAL_TOO_LARGE: case MT_AN_MESSAGE_TRUNCATED: case MT_AN_MIME_DEPTH:
    case MT_AN_MIME_PARTS: case MT_AN_HEADER_TOO_LARGE: case MT_AN_OOO_OVERFLOW:
    case MT_AN_FLOW_EVICTED: case MT_AN_FLOW_IDLE: case MT_AN_RCPT_OVERFLOW:
    case MT_AN_IMAP_NESTING: case MT_AN_AUTH_TOO_LONG: case MT_AN_IPFRAG_OVERFLOW:
        return true;
    default:
        return false;
    }
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static GPtrArray *sorted_keys(GHashTable *h)
{
    GPtrArray *k = g_ptr_array_new();
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, h);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_ptr_array_add(k, key);
    g_ptr_array_sort(k, cmp_str);
    return k;
}

void mt_summary_print(const struct mt_summary *s, const struct mt_run_stats *rs, bool json,
                      FILE *out)
{
    GString *b = g_string_new(NULL);
    static const enum mt_proto protos[] = { MT_PROTO_SMTP, MT_PROTO_POP3, MT_PROTO_IMAP,
                                            MT_PROTO_TLS, MT_PROTO_UNKNOWN };
    static const enum mt_msg_source srcs[] = { MT_SRC_DATA, MT_SRC_BDAT, MT_SRC_RETR,
                                               MT_SRC_TOP, MT_SRC_FETCH, MT_SRC_APPEND };
    GPtrArray *ck = sorted_keys(s->creds);
    /* anomalies of sessions, and of packets that belong to none */
    uint64_t an[MT_AN__COUNT];
    memcpy(an, s->anomalies, sizeof(an));
    an[MT_AN_BAD_PACKET] += rs->bad;
    an[MT_AN_IPFRAG_INCOMPLETE] += rs->frag_incomplete;
    an[MT_AN_IPFRAG_OVERFLOW] += rs->frag_overflow;
    uint64_t nsess = 0;
    for (int i = 0; i < 5; i++)
        nsess += s->sessions[protos[i]];
    if (json) {
        g_string_append_printf(b,
                               "{\"type\":\"summary\",\"packets\":%llu,\"bytes\":%llu,"
                               "\"tcp_segments\":%llu,\"malformed\":%llu",
                               (unsigned long long)rs->packets, (unsigned long long)rs->bytes,
                               (unsigned long long)rs->tcp, (unsigned long long)rs->bad);
        if (rs->live)
            g_string_append_printf(b, ",\"received\":%llu,\"dropped\":%llu,\"if_dropped\":%llu",
                                   (unsigned long long)rs->recv, (unsigned long long)rs->drop,
                                   (unsigned long long)rs->ifdrop);
        g_string_append_printf(b, ",\"sessions\":{\"total\":%llu", (unsigned long long)nsess);
        for (int i = 0; i < 5; i++)
            g_string_append_printf(b, ",\"%s\":%llu", mt_proto_name(protos[i]),
                                   (unsigned long long)s->sessions[protos[i]]);
        g_string_append_printf(b, "},\"tls_sessions\":%llu,\"starttls\":%llu,"
                                  "\"incomplete_sessions\":%llu,\"gaps\":%llu,\"gap_bytes\":%llu",
                               (unsigned long long)s->tls_sessions,
                               (unsigned long long)s->starttls, (unsigned long long)s->incomplete,
                               (unsigned long long)s->gaps, (unsigned long long)s->gap_bytes);
        g_string_append_printf(b, ",\"credentials\":{\"total\":%llu",
                               (unsigned long long)s->credentials);
        for (guint i = 0; i < ck->len; i++) {
            const char *k = g_ptr_array_index(ck, i);
            g_string_append_c(b, ',');
            mt_esc_json(b, k, strlen(k));
            g_string_append_printf(
                b, ":%llu",
                (unsigned long long)GPOINTER_TO_SIZE(g_hash_table_lookup(s->creds, k)));
        }
        g_string_append_printf(b, "},\"messages\":{\"total\":%llu",
                               (unsigned long long)s->messages_total);
        for (int i = 0; i < 6; i++)
            g_string_append_printf(b, ",\"%s\":%llu", mt_msg_source_name(srcs[i]),
                                   (unsigned long long)s->messages[srcs[i]]);
        g_string_append_printf(b, "},\"attachments\":%llu,\"attachment_bytes\":%llu",
                               (unsigned long long)s->attachments,
                               (unsigned long long)s->attachment_bytes);
        g_string_append(b, ",\"anomalies\":{");
        bool first = true;
        for (int a = 0; a < MT_AN__COUNT; a++)
            if (an[a]) {
                g_string_append_printf(b, "%s\"%s\":%llu", first ? "" : ",",
                                       mt_anomaly_name((enum mt_anomaly)a),
                                       (unsigned long long)an[a]);
                first = false;
            }
        g_string_append(b, "},\"caps_hit\":[");
        first = true;
        for (int a = 0; a < MT_AN__COUNT; a++)
            if (an[a] && is_cap((enum mt_anomaly)a)) {
                g_string_append_printf(b, "%s\"%s\"", first ? "" : ",",
                                       mt_anomaly_name((enum mt_anomaly)a));
                first = false;
            }
        g_string_append(b, "]}\n");
    } else {
        g_string_append_printf(b, "\nSummary: %llu packets (%llu bytes, %llu TCP segments",
                               (unsigned long long)rs->packets, (unsigned long long)rs->bytes,
                               (unsigned long long)rs->tcp);
        if (rs->bad)
            g_string_append_printf(b, ", %llu malformed", (unsigned long long)rs->bad);
        g_string_append(b, ")\n");
        if (rs->live)
            g_string_append_printf(b,
                                   "  capture: %llu received, %llu dropped by the kernel, "
                                   "%llu dropped by the interface\n",
                                   (unsigned long long)rs->recv, (unsigned long long)rs->drop,
                                   (unsigned long long)rs->ifdrop);
        g_string_append_printf(b, "  sessions: %llu (", (unsigned long long)nsess);
        for (int i = 0; i < 5; i++)
            g_string_append_printf(b, "%s%s %llu", i ? ", " : "", mt_proto_name(protos[i]),
                                   (unsigned long long)s->sessions[protos[i]]);
        g_string_append_printf(b, "), %llu with TLS, %llu incomplete, %llu gaps (%llu bytes)\n",
                               (unsigned long long)s->tls_sessions,
                               (unsigned long long)s->incomplete, (unsigned long long)s->gaps,
                               (unsigned long long)s->gap_bytes);
        g_string_append_printf(b, "  credentials: %llu", (unsigned long long)s->credentials);
        for (guint i = 0; i < ck->len; i++) {
            const char *k = g_ptr_array_index(ck, i);
            g_string_append_printf(
                b, "%s", i ? ", " : " (");
            mt_esc_text(b, k, strlen(k));
            g_string_append_printf(
                b, " %llu",
                (unsigned long long)GPOINTER_TO_SIZE(g_hash_table_lookup(s->creds, k)));
        }
        g_string_append(b, ck->len ? ")\n" : "\n");
        g_string_append_printf(b, "  messages: %llu", (unsigned long long)s->messages_total);
        bool any = false;
        for (int i = 0; i < 6; i++)
            if (s->messages[srcs[i]]) {
                g_string_append_printf(b, "%s%s %llu", any ? ", " : " (",
                                       mt_msg_source_name(srcs[i]),
                                       (unsigned long long)s->messages[srcs[i]]);
                any = true;
            }
        g_string_append_printf(b, "%s, %llu attachments (%llu bytes)\n", any ? ")" : "",
                               (unsigned long long)s->attachments,
                               (unsigned long long)s->attachment_bytes);
        g_string_append(b, "  anomalies:");
        any = false;
        for (int a = 0; a < MT_AN__COUNT; a++)
            if (an[a]) {
                g_string_append_printf(b, "%s %s %llu%s", any ? "," : "",
                                       mt_anomaly_name((enum mt_anomaly)a),
                                       (unsigned long long)an[a],
                                       is_cap((enum mt_anomaly)a) ? " (cap hit)" : "");
                any = true;
            }
        g_string_append(b, any ? "\n" : " none\n");
    }
    fwrite(b->str, 1, b->len, out);
    g_ptr_array_free(ck, TRUE);
    g_string_free(b, TRUE);
}
