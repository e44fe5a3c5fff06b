/* Name tables for the engine's enums (anomalies from anomaly.def, and the
 * small enums of event.h), and the credential destructor. */
#include "anomaly.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include <glib.h>

#include "event.h"

static const char *const anomaly_names[MT_AN__COUNT] = {
#define MT_ANOMALY(e, name, desc) [MT_AN_##e] = name,
#include "anomaly.def"
#undef MT_ANOMALY
};

static const char *const anomaly_descs[MT_AN__COUNT] = {
#define MT_ANOMALY(e, name, desc) [MT_AN_##e] = desc,
#include "anomaly.def"
#undef MT_ANOMALY
};

const char *mt_anomaly_name(enum mt_anomaly a)
{
    return (unsigned)a < MT_AN__COUNT ? anomaly_names[a] : "unknown";
}

const char *mt_anomaly_desc(enum mt_anomaly a)
{
    return (unsigned)a < MT_AN__COUNT ? anomaly_descs[a] : "unknown anomaly";
}

const char *mt_auth_result_name(enum mt_auth_result r)
{
    switch (r) {
    case MT_AUTH_SUCCESS:
        return "success";
    case MT_AUTH_FAILURE:
        return "failure";
    case MT_AUTH_UNKNOWN:
    default:
        return "unknown";
    }
}

const char *mt_proto_name(enum mt_proto p)
{
    switch (p) {
    case MT_PROTO_SMTP:
        return "smtp";
    case MT_PROTO_POP3:
        return "pop3";
    case MT_PROTO_IMAP:
        return "imap";
    case MT_PROTO_TLS:
        return "tls";
    case MT_PROTO_UNKNOWN:
    default:
        return "tcp"; /* not recognised: shown as a plain TCP session */
    }
}

static const char *const msg_source_names[] = {
    [MT_SRC_DATA] = "DATA", [MT_SRC_BDAT] = "BDAT",   [MT_SRC_RETR] = "RETR",
    [MT_SRC_TOP] = "TOP",   [MT_SRC_FETCH] = "FETCH", [MT_SRC_APPEND] = "APPEND",
};

const char *mt_msg_source_name(enum mt_msg_source s)
{
    if ((unsigned)s < G_N_ELEMENTS(msg_source_names) && msg_source_names[s])
        return msg_source_names[s];
    return "unknown";
}

const char *mt_endpoint_ip(const struct mt_endpoint *e, char *buf, size_t len)
{
    int af = e->family == 6 ? AF_INET6 : AF_INET;

    if (len == 0)
        return buf;
    if ((e->family != 4 && e->family != 6) || len > (size_t)G_MAXINT32 ||
        !inet_ntop(af, e->addr, buf, (socklen_t)len)) {
        buf[0] = '\0';
    }
    return buf;
}

void mt_credential_clear(struct mt_credential *c)
{
    g_free(c->mechanism);
    g_free(c->username);
    g_free(c->password);
    g_free(c->authzid);
    g_free(c->token);
    g_free(c->hash);
    g_free(c->challenge);
    g_free(c->response);
    g_free(c->domain);
    g_free(c->workstation);
    memset(c, 0, sizeof *c);
}

size_t mt_utf8_cut(const void *p, size_t n, size_t max)
{
    const uint8_t *s = p;
    if (n <= max)
        return n;
    size_t k = max;
    for (int back = 0; back < 3 && k > 0 && (s[k] & 0xc0) == 0x80; back++)
        k--;
    return k;
}

char *mt_strndup_text(const void *p, size_t n)
{
    const char *s = p;
    if (!s)
        return NULL;
    if (!memchr(s, 0, n))
        return g_strndup(s, n);
    GString *g = g_string_sized_new(n + 8);
    for (size_t i = 0; i < n; i++) {
        if (s[i])
            g_string_append_c(g, s[i]);
        else
            g_string_append(g, "\xef\xbf\xbd"); /* U+FFFD */
    }
    return g_string_free(g, FALSE);
}
