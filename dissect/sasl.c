/* SASL exchanges seen from the wire (RFC 4422), one mechanism per exchange.
 *
 * The protocol dissectors hand over each Base64 step; this module decodes
 * it, describes it in a printable note and learns the credential.  It only
 * reads what it is given: every field of a decoded message is reached
 * through a bounds-checked reader, and nothing grows past what the input
 * or the caps below allow. */
#include "sasl.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "ascii.h"
#include "b64.h"
#include "caps.h"

enum sasl_mech {
    SASL_OTHER = 0,
    SASL_PLAIN,       /* RFC 4616 */
    SASL_LOGIN,       /* draft-murchison-sasl-login */
    SASL_CRAM_MD5,    /* RFC 2195 */
    SASL_XOAUTH2,     /* Google's XOAUTH2 */
    SASL_OAUTHBEARER, /* RFC 7628 */
    SASL_NTLM,        /* MS-NLMP over SMTP/POP3/IMAP (MS-SMTPNTLM) */
};

static const struct {
    const char *name;
    enum sasl_mech mech;
} sasl_mechs[] = {
    {"PLAIN", SASL_PLAIN},
    {"LOGIN", SASL_LOGIN},
    {"CRAM-MD5", SASL_CRAM_MD5},
    {"XOAUTH2", SASL_XOAUTH2},
    {"OAUTHBEARER", SASL_OAUTHBEARER},
    {"NTLM", SASL_NTLM},
    {NULL, SASL_OTHER},
};

/* LOGIN: which value the next client response carries. */
enum sasl_login_next { LOGIN_USER = 0, LOGIN_PASS, LOGIN_DONE };

struct mt_sasl {
    enum sasl_mech mech;
    char *mech_name; /* upper case */
    unsigned steps;
    bool too_long; /* auth_too_long raised */
    struct mt_credential cred;

    enum sasl_login_next login_next;

    char *cram_chal_b64; /* CRAM-MD5 challenge, re-encoded for the hash line */

    bool ntlm_have_chal;
    uint8_t ntlm_chal[8];
    bool ntlm_have_flags;
    uint32_t ntlm_flags; /* from the type 2 message */

    GString *raw; /* unknown mechanism: "C:<b64> S:<b64> ..." */
    bool raw_full;
};

static void sasl_report(mt_anomaly_cb cb, void *ud, enum mt_anomaly a, const char *detail)
{
    if (cb)
        cb(ud, a, detail);
}

/* Appends bytes for a terminal: printable ASCII as is, the rest as \xNN,
 * and a backslash (and, inside quotes, '"') escaped so that the text reads
 * back unambiguously. */
static void sasl_esc(GString *g, const uint8_t *p, size_t n, bool quoted)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\\' || (quoted && c == '"')) {
            g_string_append_c(g, '\\');
            g_string_append_c(g, (char)c);
        } else if (c >= 0x20 && c < 0x7f) {
            g_string_append_c(g, (char)c);
        } else {
            g_string_append(g, "\\x");
            g_string_append_c(g, hex[c >> 4]);
            g_string_append_c(g, hex[c & 15]);
        }
    }
}

/* Appends ` key="value"` (without the leading space at the start). */
static void sasl_note_kv(GString *g, const char *key, const uint8_t *p, size_t n)
{
    if (g->len)
        g_string_append_c(g, ' ');
    g_string_append(g, key);
    g_string_append(g, "=\"");
    sasl_esc(g, p, n, true);
    g_string_append_c(g, '"');
}

static void sasl_note_kvs(GString *g, const char *key, const char *s)
{
    sasl_note_kv(g, key, (const uint8_t *)s, s ? strlen(s) : 0);
}

static char *sasl_note_text(const uint8_t *p, size_t n)
{
    GString *g = g_string_sized_new(n + 8);

    sasl_esc(g, p, n, false);
    return g_string_free(g, FALSE);
}

static void sasl_set(char **dst, const uint8_t *p, size_t n)
{
    g_free(*dst);
    *dst = g_strndup((const char *)p, n);
}

static char *sasl_hex(const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *s = g_malloc(2 * n + 1);

    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hex[p[i] >> 4];
        s[2 * i + 1] = hex[p[i] & 15];
    }
    s[2 * n] = '\0';
    return s;
}

static char *sasl_b64(const uint8_t *p, size_t n)
{
    char *s = g_malloc((n + 2) / 3 * 4 + 1);

    mt_b64_encode(p, n, s);
    return s;
}

static const uint8_t *sasl_memchr(const uint8_t *p, size_t n, uint8_t c)
{
    return n ? memchr(p, c, n) : NULL;
}

struct mt_sasl *mt_sasl_new(const char *mech, size_t mech_len)
{
    struct mt_sasl *s = g_new0(struct mt_sasl, 1);

    if (!mech)
        mech_len = 0;
    if (mech_len > MT_CAP_SASL_MECH_NAME)
        mech_len = MT_CAP_SASL_MECH_NAME;
    s->mech_name = g_ascii_strup(mech_len ? mech : "", (gssize)mech_len);
    for (size_t i = 0; sasl_mechs[i].name; i++) {
        if (strcmp(s->mech_name, sasl_mechs[i].name) == 0) {
            s->mech = sasl_mechs[i].mech;
            break;
        }
    }
    if (s->mech == SASL_OTHER)
        s->raw = g_string_new(NULL);
    return s;
}

/* Unknown mechanism: keeps the wire text of each step, up to the cap. */
static void sasl_raw_append(struct mt_sasl *s, enum mt_dir dir, const char *b64, size_t n)
{
    GString *g = s->raw;
    size_t before;

    if (s->raw_full)
        return;
    before = g->len;
    if (g->len)
        g_string_append_c(g, ' ');
    g_string_append(g, dir == MT_C2S ? "C:" : "S:");
    sasl_esc(g, (const uint8_t *)b64, n, false);
    if (g->len > MT_CAP_SASL_RAW) {
        /* Cut back at the cap, leaving room for the marker. */
        g_string_truncate(g, before < MT_CAP_SASL_RAW - 4 ? MT_CAP_SASL_RAW - 4 : before);
        g_string_append(g, " ...");
        s->raw_full = true;
    }
}

/* ---- PLAIN (RFC 4616 2): [authzid] NUL authcid NUL passwd ---- */

static char *sasl_plain(struct mt_sasl *s, enum mt_dir dir, const uint8_t *p, size_t n,
                        mt_anomaly_cb cb, void *ud)
{
    const uint8_t *nul1, *nul2;
    GString *g;

    if (dir == MT_S2C)
        return sasl_note_text(p, n); /* the server's challenge is empty by the RFC */

    nul1 = sasl_memchr(p, n, 0);
    nul2 = nul1 ? sasl_memchr(nul1 + 1, n - (size_t)(nul1 + 1 - p), 0) : NULL;
    if (!nul2) {
        sasl_report(cb, ud, MT_AN_SASL_INVALID, "PLAIN message without two NUL separators");
        g = g_string_new("PLAIN: malformed: \"");
        sasl_esc(g, p, n, true);
        g_string_append_c(g, '"');
        return g_string_free(g, FALSE);
    }

    size_t zlen = (size_t)(nul1 - p);
    size_t ulen = (size_t)(nul2 - nul1 - 1);
    const uint8_t *pw = nul2 + 1;
    size_t plen = n - (size_t)(pw - p);

    if (sasl_memchr(pw, plen, 0))
        sasl_report(cb, ud, MT_AN_SASL_INVALID, "NUL inside the PLAIN password");

    g_free(s->cred.authzid);
    s->cred.authzid = zlen ? g_strndup((const char *)p, zlen) : NULL;
    sasl_set(&s->cred.username, nul1 + 1, ulen);
    sasl_set(&s->cred.password, pw, plen);

    g = g_string_new(NULL);
    sasl_note_kv(g, "authzid", p, zlen);
    sasl_note_kv(g, "user", nul1 + 1, ulen);
    sasl_note_kv(g, "password", pw, plen);
    return g_string_free(g, FALSE);
}

/* ---- LOGIN: "Username:" / "Password:" prompts, one value per response ---- */

static char *sasl_login(struct mt_sasl *s, enum mt_dir dir, const uint8_t *p, size_t n)
{
    GString *g;

    if (dir == MT_S2C) {
        /* The prompt says which value comes next; clients that send the
         * user name as an initial response never see "Username:". */
        if (mt_prefix_ci(p, n, "user"))
            s->login_next = LOGIN_USER;
        else if (mt_prefix_ci(p, n, "pass"))
            s->login_next = LOGIN_PASS;
        return sasl_note_text(p, n);
    }

    g = g_string_new(NULL);
    switch (s->login_next) {
    case LOGIN_USER:
        sasl_set(&s->cred.username, p, n);
        sasl_note_kv(g, "user", p, n);
        s->login_next = LOGIN_PASS;
        break;
    case LOGIN_PASS:
        sasl_set(&s->cred.password, p, n);
        sasl_note_kv(g, "password", p, n);
        s->login_next = LOGIN_DONE;
        break;
    case LOGIN_DONE:
    default:
        sasl_note_kv(g, "data", p, n);
        break;
    }
    return g_string_free(g, FALSE);
}

/* ---- CRAM-MD5 (RFC 2195): challenge, then "user SP hex(HMAC-MD5)" ---- */

static bool sasl_is_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!g_ascii_isxdigit(p[i]))
            return false;
    }
    return true;
}

static char *sasl_cram_md5(struct mt_sasl *s, enum mt_dir dir, const uint8_t *p, size_t n,
                           mt_anomaly_cb cb, void *ud)
{
    GString *g;
    size_t sp;

    if (dir == MT_S2C) {
        sasl_set(&s->cred.challenge, p, n);
        g_free(s->cram_chal_b64);
        s->cram_chal_b64 = sasl_b64(p, n);
        return sasl_note_text(p, n);
    }

    /* The user name may hold spaces: the digest follows the last one. */
    for (sp = n; sp > 0 && p[sp - 1] != ' '; sp--)
        ;
    if (sp == 0 || n - sp != 32 || !sasl_is_hex(p + sp, 32)) {
        sasl_report(cb, ud, MT_AN_SASL_INVALID, "CRAM-MD5 response is not \"user digest\"");
        g = g_string_new("CRAM-MD5: malformed: \"");
        sasl_esc(g, p, n, true);
        g_string_append_c(g, '"');
        return g_string_free(g, FALSE);
    }
    sasl_set(&s->cred.username, p, sp - 1);
    g_free(s->cred.response);
    s->cred.response = g_ascii_strdown((const char *)p + sp, 32);

    /* hashcat mode 10200 ("CRAM-MD5"): $cram_md5$<b64 challenge>$<b64 response>.
     * (Mode 16400 is Dovecot's stored {CRAM-MD5} form, not this one.) */
    if (s->cram_chal_b64) {
        char *resp = sasl_b64(p, n);
        g_free(s->cred.hash);
        s->cred.hash = g_strconcat("$cram_md5$", s->cram_chal_b64, "$", resp, NULL);
        g_free(resp);
    }

    g = g_string_new(NULL);
    sasl_note_kv(g, "user", p, sp - 1);
    sasl_note_kvs(g, "digest", s->cred.response);
    return g_string_free(g, FALSE);
}

/* ---- XOAUTH2 and OAUTHBEARER: ^A-separated key=value pairs ---- */

/* A client response made only of ^A: the dummy reply to an error challenge
 * (RFC 7628 3.2.3), nothing to learn. */
static bool sasl_only_kvsep(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0x01)
            return false;
    }
    return true;
}

struct sasl_oauth {
    const uint8_t *user, *auth, *host, *port;
    size_t user_n, auth_n, host_n, port_n;
};

/* If the kvpair p[0..n) is key=value, points v at the value. */
static void sasl_kv_match(const uint8_t *p, size_t n, const char *key, const uint8_t **v,
                          size_t *vn)
{
    size_t kl = strlen(key);

    if (n >= kl && memcmp(p, key, kl) == 0) {
        *v = p + kl;
        *vn = n - kl;
    }
}

/* Reads the kvpairs of p[0..n), separated by ^A. */
static void sasl_oauth_kv(struct sasl_oauth *o, const uint8_t *p, size_t n)
{
    while (n > 0) {
        const uint8_t *sep = sasl_memchr(p, n, 0x01);
        size_t k = sep ? (size_t)(sep - p) : n;

        sasl_kv_match(p, k, "user=", &o->user, &o->user_n);
        sasl_kv_match(p, k, "auth=", &o->auth, &o->auth_n);
        sasl_kv_match(p, k, "host=", &o->host, &o->host_n);
        sasl_kv_match(p, k, "port=", &o->port, &o->port_n);
        if (!sep)
            break;
        n -= k + 1;
        p = sep + 1;
    }
}

/* auth=Bearer <token> (RFC 6750 2.1; the scheme is case-insensitive). */
static void sasl_oauth_token(struct mt_sasl *s, const struct sasl_oauth *o)
{
    const uint8_t *t = o->auth;
    size_t tn = o->auth_n;

    if (!t)
        return;
    if (mt_prefix_ci(t, tn, "Bearer ")) {
        t += 7;
        tn -= 7;
    }
    sasl_set(&s->cred.token, t, tn);
}

static char *sasl_xoauth2(struct mt_sasl *s, enum mt_dir dir, const uint8_t *p, size_t n,
                          mt_anomaly_cb cb, void *ud)
{
    struct sasl_oauth o = {0};
    GString *g;

    /* Server: a Base64 JSON error ({"status":"401",...}). */
    if (dir == MT_S2C || sasl_only_kvsep(p, n))
        return sasl_note_text(p, n);

    sasl_oauth_kv(&o, p, n);
    if (!o.user && !o.auth) {
        sasl_report(cb, ud, MT_AN_SASL_INVALID, "XOAUTH2 message without user= or auth=");
        return sasl_note_text(p, n);
    }
    if (o.user)
        sasl_set(&s->cred.username, o.user, o.user_n);
    sasl_oauth_token(s, &o);

    g = g_string_new(NULL);
    if (o.user)
        sasl_note_kv(g, "user", o.user, o.user_n);
    if (s->cred.token)
        sasl_note_kvs(g, "token", s->cred.token);
    return g_string_free(g, FALSE);
}

/* RFC 5801 saslname: "=2C" is ',' and "=3D" is '='. */
static char *sasl_saslname(const uint8_t *p, size_t n)
{
    GString *g = g_string_sized_new(n);

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '=' && n - i >= 3 && p[i + 1] == '2' && (p[i + 2] | 0x20) == 'c') {
            g_string_append_c(g, ',');
            i += 2;
        } else if (p[i] == '=' && n - i >= 3 && p[i + 1] == '3' && (p[i + 2] | 0x20) == 'd') {
            g_string_append_c(g, '=');
            i += 2;
        } else {
            g_string_append_c(g, (char)p[i]);
        }
    }
    return g_string_free(g, FALSE);
}

static char *sasl_oauthbearer(struct mt_sasl *s, enum mt_dir dir, const uint8_t *p, size_t n,
                              mt_anomaly_cb cb, void *ud)
{
    struct sasl_oauth o = {0};
    const uint8_t *kvsep, *c1, *c2, *a = NULL;
    size_t hn, an = 0;
    GString *g;

    if (dir == MT_S2C || sasl_only_kvsep(p, n))
        return sasl_note_text(p, n);

    /* RFC 7628 3.1: gs2-header kvsep *(kvpair kvsep) kvsep, where the
     * gs2-header (RFC 5801 4) is gs2-cb-flag "," [ "a=" saslname ] ",". */
    kvsep = sasl_memchr(p, n, 0x01);
    hn = kvsep ? (size_t)(kvsep - p) : 0;
    c1 = sasl_memchr(p, hn, ',');
    c2 = c1 ? sasl_memchr(c1 + 1, hn - (size_t)(c1 + 1 - p), ',') : NULL;
    if (!c2 || (p[0] != 'n' && p[0] != 'y' && p[0] != 'p')) {
        sasl_report(cb, ud, MT_AN_SASL_INVALID, "OAUTHBEARER message without a GS2 header");
        return sasl_note_text(p, n);
    }
    if (c2 - c1 > 3 && c1[1] == 'a' && c1[2] == '=') {
        a = c1 + 3;
        an = (size_t)(c2 - a);
    }
    sasl_oauth_kv(&o, kvsep + 1, n - hn - 1);
    if (!o.auth)
        sasl_report(cb, ud, MT_AN_SASL_INVALID, "OAUTHBEARER message without auth=");
    if (a) {
        g_free(s->cred.username);
        s->cred.username = sasl_saslname(a, an);
    }
    sasl_oauth_token(s, &o);

    g = g_string_new(NULL);
    if (a)
        sasl_note_kvs(g, "user", s->cred.username);
    if (o.host)
        sasl_note_kv(g, "host", o.host, o.host_n);
    if (o.port)
        sasl_note_kv(g, "port", o.port, o.port_n);
    if (s->cred.token)
        sasl_note_kvs(g, "token", s->cred.token);
    return g_string_free(g, FALSE);
}

/* ---- NTLM (MS-NLMP 2.2.1): negotiate, challenge, authenticate ---- */

#define NTLM_SIG "NTLMSSP"           /* with its NUL: 8 bytes */
#define NTLM_NEGOTIATE_UNICODE 0x01u /* MS-NLMP 2.2.2.5 flag A */
#define NTLM_TYPE3_MIN 52u           /* through the workstation field's security buffer */
#define NTLM_TYPE3_FLAGS_OFF 60u

/* Checked reads of the untrusted message m[0..n). */
static bool ntlm_u16(const uint8_t *m, size_t n, size_t off, uint16_t *v)
{
    if (off > n || 2 > n - off)
        return false;
    *v = (uint16_t)(m[off] | m[off + 1] << 8);
    return true;
}

static bool ntlm_u32(const uint8_t *m, size_t n, size_t off, uint32_t *v)
{
    if (off > n || 4 > n - off)
        return false;
    *v = (uint32_t)m[off] | (uint32_t)m[off + 1] << 8 | (uint32_t)m[off + 2] << 16 |
         (uint32_t)m[off + 3] << 24;
    return true;
}

/* A security buffer (MS-NLMP 2.2.2.10): length, allocated length, offset. */
struct ntlm_field {
    const uint8_t *p;
    size_t n;
    uint32_t off;
};

static bool ntlm_field(const uint8_t *m, size_t n, size_t at, struct ntlm_field *f)
{
    uint16_t len;
    uint32_t off;

    if (!ntlm_u16(m, n, at, &len) || !ntlm_u32(m, n, at + 4, &off))
        return false;
    if (off > n || len > n - off)
        return false;
    f->p = m + off;
    f->n = len;
    f->off = off;
    return true;
}

/* UTF-16LE to UTF-8; a lone surrogate, and a NUL (which would end the C
 * string), become U+FFFD. */
static char *ntlm_utf16(const uint8_t *p, size_t n)
{
    GString *g = g_string_sized_new(n);

    for (size_t i = 0; i + 1 < n; i += 2) {
        gunichar c = (gunichar)(p[i] | p[i + 1] << 8);
        if (c >= 0xd800 && c < 0xdc00 && i + 3 < n) {
            gunichar lo = (gunichar)(p[i + 2] | p[i + 3] << 8);
            if (lo >= 0xdc00 && lo < 0xe000) {
                c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                i += 2;
            }
        }
        if (c == 0 || (c >= 0xd800 && c < 0xe000))
            c = 0xfffd;
        g_string_append_unichar(g, c);
    }
    return g_string_free(g, FALSE);
}

static char *ntlm_text(const struct ntlm_field *f, bool unicode)
{
    return unicode ? ntlm_utf16(f->p, f->n) : mt_strndup_text(f->p, f->n);
}

static char *ntlm_invalid(mt_anomaly_cb cb, void *ud, const char *why)
{
    sasl_report(cb, ud, MT_AN_SASL_INVALID, why);
    return g_strdup_printf("NTLM: malformed (%s)", why);
}

static char *ntlm_type3(struct mt_sasl *s, const uint8_t *m, size_t n, mt_anomaly_cb cb, void *ud)
{
    struct ntlm_field lm, nt, dom, user, ws;
    uint32_t flags = 0;
    bool unicode;
    GString *g;

    if (n < NTLM_TYPE3_MIN)
        return ntlm_invalid(cb, ud, "type 3 message too short");
    if (!ntlm_field(m, n, 12, &lm) || !ntlm_field(m, n, 20, &nt) || !ntlm_field(m, n, 28, &dom) ||
        !ntlm_field(m, n, 36, &user) || !ntlm_field(m, n, 44, &ws))
        return ntlm_invalid(cb, ud, "type 3 field outside the message");

    /* The flags follow the session key's security buffer, unless the
     * payload already starts there (old type 3 messages stop at 52). */
    uint32_t payload = UINT32_MAX;
    const struct ntlm_field *fs[] = {&lm, &nt, &dom, &user, &ws};
    for (size_t i = 0; i < G_N_ELEMENTS(fs); i++) {
        if (fs[i]->n && fs[i]->off < payload)
            payload = fs[i]->off;
    }
    if (payload >= NTLM_TYPE3_FLAGS_OFF + 4 && ntlm_u32(m, n, NTLM_TYPE3_FLAGS_OFF, &flags))
        unicode = flags & NTLM_NEGOTIATE_UNICODE;
    else if (s->ntlm_have_flags)
        unicode = s->ntlm_flags & NTLM_NEGOTIATE_UNICODE;
    else
        unicode = true; /* what every client since Windows NT sends */

    if (unicode && (dom.n % 2 || user.n % 2 || ws.n % 2))
        return ntlm_invalid(cb, ud, "odd length of a UTF-16 string");

    g_free(s->cred.username);
    g_free(s->cred.domain);
    g_free(s->cred.workstation);
    g_free(s->cred.response);
    g_free(s->cred.hash);
    s->cred.username = ntlm_text(&user, unicode);
    s->cred.domain = ntlm_text(&dom, unicode);
    s->cred.workstation = ntlm_text(&ws, unicode);
    s->cred.response = nt.n ? sasl_hex(nt.p, nt.n) : NULL;
    s->cred.hash = NULL;

    const char *kind;
    if (nt.n > 24)
        kind = "NTLMv2";
    else if (nt.n == 24)
        kind = "NTLMv1";
    else if (nt.n == 0 && lm.n <= 1)
        kind = "anonymous";
    else
        kind = "unknown response";

    if (s->ntlm_have_chal && nt.n >= 24) {
        char *chal = sasl_hex(s->ntlm_chal, 8);
        if (nt.n > 24) {
            /* hashcat 5600: user::domain:challenge:NTProofStr:blob */
            char *proof = sasl_hex(nt.p, 16);
            char *blob = sasl_hex(nt.p + 16, nt.n - 16);
            s->cred.hash = g_strdup_printf("%s::%s:%s:%s:%s", s->cred.username, s->cred.domain,
                                           chal, proof, blob);
            g_free(proof);
            g_free(blob);
        } else {
            /* hashcat 5500: user::domain:LM response:NT response:challenge */
            char *lmh = sasl_hex(lm.p, lm.n);
            s->cred.hash = g_strdup_printf("%s::%s:%s:%s:%s", s->cred.username, s->cred.domain, lmh,
                                           s->cred.response, chal);
            g_free(lmh);
        }
        g_free(chal);
    }

    g = g_string_new(NULL);
    sasl_note_kvs(g, "user", s->cred.username);
    sasl_note_kvs(g, "domain", s->cred.domain);
    sasl_note_kvs(g, "workstation", s->cred.workstation);
    g_string_prepend(g, "NTLM type 3: ");
    g_string_append_c(g, ' ');
    g_string_append(g, kind);
    if (nt.n >= 24 && !s->ntlm_have_chal)
        g_string_append(g, " (no server challenge seen)");
    return g_string_free(g, FALSE);
}

static char *sasl_ntlm(struct mt_sasl *s, const uint8_t *m, size_t n, mt_anomaly_cb cb, void *ud)
{
    uint32_t type, flags;

    if (n < 12 || memcmp(m, NTLM_SIG, sizeof NTLM_SIG) != 0)
        return ntlm_invalid(cb, ud, "no NTLMSSP signature");
    (void)ntlm_u32(m, n, 8, &type);

    switch (type) {
    case 1:
        if (!ntlm_u32(m, n, 12, &flags))
            return ntlm_invalid(cb, ud, "type 1 message too short");
        return g_strdup_printf("NTLM type 1 (negotiate) flags=0x%08" PRIx32, flags);
    case 2: {
        /* MS-NLMP 2.2.1.2: target name at 12, flags at 20, challenge at 24. */
        if (n < 32)
            return ntlm_invalid(cb, ud, "type 2 message too short");
        (void)ntlm_u32(m, n, 20, &flags);
        memcpy(s->ntlm_chal, m + 24, 8);
        s->ntlm_have_chal = true;
        s->ntlm_flags = flags;
        s->ntlm_have_flags = true;
        g_free(s->cred.challenge);
        s->cred.challenge = sasl_hex(s->ntlm_chal, 8);
        return g_strdup_printf("NTLM type 2 (challenge) challenge=%s flags=0x%08" PRIx32,
                               s->cred.challenge, flags);
    }
    case 3:
        return ntlm_type3(s, m, n, cb, ud);
    default:
        return ntlm_invalid(cb, ud, "unknown NTLM message type");
    }
}

/* ---- any other mechanism: shown, kept raw, never interpreted ---- */

static char *sasl_other(const uint8_t *p, size_t n)
{
    GString *g = g_string_new(NULL);

    sasl_esc(g, p, n < MT_CAP_SASL_NOTE ? n : MT_CAP_SASL_NOTE, false);
    if (n > MT_CAP_SASL_NOTE)
        g_string_append(g, "...");
    return g_string_free(g, FALSE);
}

char *mt_sasl_step(struct mt_sasl *s, enum mt_dir dir, const char *b64, size_t n, mt_anomaly_cb cb,
                   void *ud)
{
    uint8_t *buf;
    ssize_t len;
    char *note;

    if (s->steps < UINT_MAX)
        s->steps++;
    if (s->steps > MT_DEF_AUTH_STEPS_MAX) {
        if (!s->too_long) {
            s->too_long = true;
            sasl_report(cb, ud, MT_AN_AUTH_TOO_LONG, NULL);
        }
        return NULL;
    }
    if (!b64)
        n = 0;
    if (s->mech == SASL_OTHER)
        sasl_raw_append(s, dir, b64, n);

    /* An empty step: "=" is the empty initial response (RFC 4954 4),
     * an empty line a bare "334 " or "+ " challenge. */
    if (n == 0 || (n == 1 && b64[0] == '=')) {
        if (dir == MT_S2C)
            return NULL;
        if (s->mech == SASL_LOGIN)
            return sasl_login(s, dir, (const uint8_t *)"", 0);
        return g_strdup("(empty)");
    }

    buf = g_malloc(MT_B64_DECODED_MAX(n));
    len = mt_b64_decode(b64, n, buf);
    if (len < 0) {
        GString *d = g_string_new("not Base64: ");
        sasl_esc(d, (const uint8_t *)b64, n < MT_CAP_SASL_DETAIL_B64 ? n : MT_CAP_SASL_DETAIL_B64,
                 false);
        if (n > MT_CAP_SASL_DETAIL_B64)
            g_string_append(d, "...");
        sasl_report(cb, ud, MT_AN_B64_INVALID, d->str);
        g_string_free(d, TRUE);
        g_free(buf);
        return g_strdup("(invalid Base64, nothing decoded)");
    }

    switch (s->mech) {
    case SASL_PLAIN:
        note = sasl_plain(s, dir, buf, (size_t)len, cb, ud);
        break;
    case SASL_LOGIN:
        note = sasl_login(s, dir, buf, (size_t)len);
        break;
    case SASL_CRAM_MD5:
        note = sasl_cram_md5(s, dir, buf, (size_t)len, cb, ud);
        break;
    case SASL_XOAUTH2:
        note = sasl_xoauth2(s, dir, buf, (size_t)len, cb, ud);
        break;
    case SASL_OAUTHBEARER:
        note = sasl_oauthbearer(s, dir, buf, (size_t)len, cb, ud);
        break;
    case SASL_NTLM:
        note = sasl_ntlm(s, buf, (size_t)len, cb, ud);
        break;
    case SASL_OTHER:
    default:
        note = sasl_other(buf, (size_t)len);
        break;
    }
    g_free(buf);
    return note;
}

void mt_sasl_cancel(struct mt_sasl *s)
{
    if (s->mech == SASL_OTHER && s->steps < MT_DEF_AUTH_STEPS_MAX)
        sasl_raw_append(s, MT_C2S, "*", 1);
}

unsigned mt_sasl_steps(const struct mt_sasl *s)
{
    return s->steps;
}

void mt_sasl_finish(struct mt_sasl *s, struct mt_credential *out)
{
    /* The learnt strings move to out; the mechanism stays known. */
    out->mechanism = g_strdup(s->mech_name);
    out->username = g_steal_pointer(&s->cred.username);
    out->password = g_steal_pointer(&s->cred.password);
    out->authzid = g_steal_pointer(&s->cred.authzid);
    out->token = g_steal_pointer(&s->cred.token);
    out->hash = g_steal_pointer(&s->cred.hash);
    out->challenge = g_steal_pointer(&s->cred.challenge);
    out->response = g_steal_pointer(&s->cred.response);
    out->domain = g_steal_pointer(&s->cred.domain);
    out->workstation = g_steal_pointer(&s->cred.workstation);
    if (s->mech == SASL_OTHER && s->raw->len)
        out->response = g_strndup(s->raw->str, s->raw->len);
}

void mt_sasl_free(struct mt_sasl *s)
{
    if (!s)
        return;
    mt_credential_clear(&s->cred);
    g_free(s->mech_name);
    g_free(s->cram_chal_b64);
    if (s->raw)
        g_string_free(s->raw, TRUE);
    g_free(s);
}

char *mt_apop_hash(const char *timestamp, const char *digest)
{
    /* RFC 1939 7: digest = MD5(timestamp || secret), so the timestamp is
     * hashcat's salt in mode 20, md5($salt.$pass). */
    if (!timestamp || !digest || strlen(digest) != 32 || !sasl_is_hex((const uint8_t *)digest, 32))
        return NULL;
    char *d = g_ascii_strdown(digest, 32);
    char *line = g_strconcat(d, ":", timestamp, NULL);
    g_free(d);
    return line;
}
