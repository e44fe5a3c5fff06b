/* SASL decoding: one table row per exchange (RFC examples where the RFCs
 * give them), NTLM messages built here from readable fields, and the
 * malformed input that must raise an anomaly without harm.  Also the small
 * helpers that go with it: APOP, the digests, the name tables. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>
#include <nettle/hmac.h>
#include <nettle/md4.h>

#include "anomaly.h"
#include "b64.h"
#include "event.h"
#include "hash.h"
#include "caps.h"
#include "sasl.h"

/* ---- harness ---- */

struct rec {
    unsigned n[MT_AN__COUNT];
};

static void assert_printable(const char *s)
{
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            g_error("non-printable byte 0x%02x in \"%s\"", (unsigned char)*p, s);
    }
}

static void rec_cb(void *ud, enum mt_anomaly a, const char *detail)
{
    struct rec *r = ud;

    g_assert_cmpint(a, <, MT_AN__COUNT);
    r->n[a]++;
    if (detail) {
        assert_printable(detail);
        g_assert_cmpuint(strlen(detail), <=, MT_CAP_ANOMALY_DETAIL);
    }
}

static char *b64_of(const void *p, size_t n)
{
    char *s = g_malloc((n + 2) / 3 * 4 + 1);

    mt_b64_encode(p, n, s);
    return s;
}

/* Feeds one step given as decoded bytes. */
static char *step_bytes(struct mt_sasl *s, enum mt_dir dir, const void *p, size_t n, struct rec *r)
{
    char *b64 = b64_of(p, n);
    char *note = mt_sasl_step(s, dir, b64, strlen(b64), rec_cb, r);

    g_free(b64);
    if (note)
        assert_printable(note);
    return note;
}

/* A step as the test tables write it: either the decoded text (which may
 * hold NUL, hence the length) or Base64 exactly as on the wire. */
struct step {
    enum mt_dir dir;
    const char *b64;
    const char *text;
    size_t len;
    const char *note; /* expected; NO_NOTE: mt_sasl_step returns NULL */
};

static const char NO_NOTE[] = "(no note)";

#define C(s, note)                                                                                 \
    {                                                                                              \
        MT_C2S, NULL, s, sizeof(s) - 1, note                                                       \
    }
#define S(s, note)                                                                                 \
    {                                                                                              \
        MT_S2C, NULL, s, sizeof(s) - 1, note                                                       \
    }
#define CB64(b, note)                                                                              \
    {                                                                                              \
        MT_C2S, b, NULL, 0, note                                                                   \
    }
#define SB64(b, note)                                                                              \
    {                                                                                              \
        MT_S2C, b, NULL, 0, note                                                                   \
    }

/* What the credential must hold, every field (NULL: must be absent). */
struct want {
    const char *mechanism, *username, *password, *authzid, *token, *hash, *challenge, *response,
        *domain, *workstation;
};

struct sasl_case {
    const char *name;
    const char *mech;
    struct step steps[8];
    struct want want;
    unsigned b64_invalid, sasl_invalid;
};

static void check_cred(const struct mt_credential *c, const struct want *w)
{
    g_assert_cmpstr(c->mechanism, ==, w->mechanism);
    g_assert_cmpstr(c->username, ==, w->username);
    g_assert_cmpstr(c->password, ==, w->password);
    g_assert_cmpstr(c->authzid, ==, w->authzid);
    g_assert_cmpstr(c->token, ==, w->token);
    g_assert_cmpstr(c->hash, ==, w->hash);
    g_assert_cmpstr(c->challenge, ==, w->challenge);
    g_assert_cmpstr(c->response, ==, w->response);
    g_assert_cmpstr(c->domain, ==, w->domain);
    g_assert_cmpstr(c->workstation, ==, w->workstation);
}

static void run_case(const struct sasl_case *tc)
{
    struct rec r = {0};
    struct mt_sasl *s = mt_sasl_new(tc->mech, strlen(tc->mech));
    struct mt_credential cred = {0};
    unsigned nsteps = 0;

    g_test_message("case %s", tc->name);
    for (const struct step *st = tc->steps; st->b64 || st->text; st++, nsteps++) {
        char *note;
        if (st->b64) {
            note = mt_sasl_step(s, st->dir, st->b64, strlen(st->b64), rec_cb, &r);
            if (note)
                assert_printable(note);
        } else {
            note = step_bytes(s, st->dir, st->text, st->len, &r);
        }
        if (st->note == NO_NOTE)
            g_assert_null(note);
        else
            g_assert_cmpstr(note, ==, st->note);
        g_free(note);
    }
    g_assert_cmpuint(mt_sasl_steps(s), ==, nsteps);
    mt_sasl_finish(s, &cred);
    mt_sasl_free(s);

    check_cred(&cred, &tc->want);
    g_assert_cmpuint(r.n[MT_AN_B64_INVALID], ==, tc->b64_invalid);
    g_assert_cmpuint(r.n[MT_AN_SASL_INVALID], ==, tc->sasl_invalid);
    g_assert_cmpuint(r.n[MT_AN_AUTH_TOO_LONG], ==, 0);
    mt_credential_clear(&cred);
    g_assert_null(cred.mechanism);
}

/* ---- the exchanges ---- */

#define RFC2195_CHAL "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+"
#define RFC2195_RESP "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"
/* hashcat's example for CRAM-MD5 (mode 10200); the password is "hashcat". */
#define HASHCAT_CHAL "PG5vLXJlcGx5QGhhc2hjYXQubmV0Pg=="
#define HASHCAT_RESP "dXNlciA0NGVhZmQyMmZlNzY2NzBmNmIyODc5MDgxYTdmNWY3MQ=="

#define GOOGLE_TOKEN "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
#define RFC7628_TOKEN "vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg=="
#define RFC7628_ERROR                                                                              \
    "{\"status\":\"invalid_token\",\"scope\":\"example_scope\","                                   \
    "\"openid-configuration\":\"https://example.com/.well-known/openid-configuration\"}"

static const struct sasl_case cases[] = {
    {
        .name = "plain/rfc4616-initial-response",
        .mech = "PLAIN",
        .steps = {C("\0tim\0tanstaaftanstaaf",
                    "authzid=\"\" user=\"tim\" password=\"tanstaaftanstaaf\"")},
        .want = {.mechanism = "PLAIN", .username = "tim", .password = "tanstaaftanstaaf"},
    },
    {
        /* RFC 4616 4: authzid Ursel, authcid Kurt, after an empty challenge. */
        .name = "plain/rfc4616-authzid-after-empty-challenge",
        .mech = "plain",
        .steps = {S("", NO_NOTE), C("Ursel\0Kurt\0xipj3plmq",
                                    "authzid=\"Ursel\" user=\"Kurt\" password=\"xipj3plmq\"")},
        .want =
            {.mechanism = "PLAIN", .username = "Kurt", .password = "xipj3plmq", .authzid = "Ursel"},
    },
    {
        .name = "plain/one-nul-only",
        .mech = "PLAIN",
        .steps = {C("tim\0nopass", "PLAIN: malformed: \"tim\\x00nopass\"")},
        .want = {.mechanism = "PLAIN"},
        .sasl_invalid = 1,
    },
    {
        .name = "plain/empty-initial-response",
        .mech = "PLAIN",
        .steps = {CB64("=", "(empty)")},
        .want = {.mechanism = "PLAIN"},
    },
    {
        .name = "plain/invalid-base64",
        .mech = "PLAIN",
        .steps = {CB64("AHRpbQB0YW5z!GFhZg==", "(invalid Base64, nothing decoded)")},
        .want = {.mechanism = "PLAIN"},
        .b64_invalid = 1,
    },
    {
        .name = "login/prompts",
        .mech = "LOGIN",
        .steps = {S("Username:", "Username:"), C("alice", "user=\"alice\""),
                  S("Password:", "Password:"), C("s3cret", "password=\"s3cret\"")},
        .want = {.mechanism = "LOGIN", .username = "alice", .password = "s3cret"},
    },
    {
        /* AUTH LOGIN <b64 user>: the server asks only for the password. */
        .name = "login/initial-response",
        .mech = "login",
        .steps = {C("alice", "user=\"alice\""), S("Password:", "Password:"),
                  C("s3cret", "password=\"s3cret\"")},
        .want = {.mechanism = "LOGIN", .username = "alice", .password = "s3cret"},
    },
    {
        /* Undecodable response: reported, noted, and the exchange goes on. */
        .name = "login/invalid-base64-then-retry",
        .mech = "LOGIN",
        .steps = {SB64("VXNlcm5hbWU6", "Username:"),
                  CB64("Ym9i!", "(invalid Base64, nothing decoded)"),
                  SB64("VXNlcm5hbWU6", "Username:"), CB64("Ym9i", "user=\"bob\""),
                  SB64("UGFzc3dvcmQ6", "Password:"), CB64("aHVudGVyMg==", "password=\"hunter2\"")},
        .want = {.mechanism = "LOGIN", .username = "bob", .password = "hunter2"},
        .b64_invalid = 1,
    },
    {
        /* Terminal escapes and quotes in a value are escaped in the note,
         * kept as sent in the credential. */
        .name = "login/escaped-note",
        .mech = "LOGIN",
        .steps = {S("Username:", "Username:"),
                  C("\x1b[31mevil\"\\", "user=\"\\x1b[31mevil\\\"\\\\\""),
                  S("Password:", "Password:"), CB64("=", "password=\"\"")},
        .want = {.mechanism = "LOGIN", .username = "\x1b[31mevil\"\\", .password = ""},
    },
    {
        .name = "cram-md5/rfc2195",
        .mech = "CRAM-MD5",
        .steps = {SB64(RFC2195_CHAL, "<1896.697170952@postoffice.reston.mci.net>"),
                  CB64(RFC2195_RESP, "user=\"tim\" digest=\"b913a602c7eda7a495b4e6e7334d3890\"")},
        .want = {.mechanism = "CRAM-MD5",
                 .username = "tim",
                 .hash = "$cram_md5$" RFC2195_CHAL "$" RFC2195_RESP,
                 .challenge = "<1896.697170952@postoffice.reston.mci.net>",
                 .response = "b913a602c7eda7a495b4e6e7334d3890"},
    },
    {
        /* The output must be hashcat's own example line, byte for byte. */
        .name = "cram-md5/hashcat-example",
        .mech = "cram-md5",
        .steps = {SB64(HASHCAT_CHAL, "<no-reply@hashcat.net>"),
                  CB64(HASHCAT_RESP, "user=\"user\" digest=\"44eafd22fe76670f6b2879081a7f5f71\"")},
        .want = {.mechanism = "CRAM-MD5",
                 .username = "user",
                 .hash = "$cram_md5$" HASHCAT_CHAL "$" HASHCAT_RESP,
                 .challenge = "<no-reply@hashcat.net>",
                 .response = "44eafd22fe76670f6b2879081a7f5f71"},
    },
    {
        /* Picked up mid-exchange: no challenge, so no crackable line. */
        .name = "cram-md5/no-challenge-seen",
        .mech = "CRAM-MD5",
        .steps = {CB64(RFC2195_RESP, "user=\"tim\" digest=\"b913a602c7eda7a495b4e6e7334d3890\"")},
        .want = {.mechanism = "CRAM-MD5",
                 .username = "tim",
                 .response = "b913a602c7eda7a495b4e6e7334d3890"},
    },
    {
        .name = "cram-md5/response-without-digest",
        .mech = "CRAM-MD5",
        .steps = {SB64(RFC2195_CHAL, "<1896.697170952@postoffice.reston.mci.net>"),
                  C("tim", "CRAM-MD5: malformed: \"tim\"")},
        .want = {.mechanism = "CRAM-MD5",
                 .challenge = "<1896.697170952@postoffice.reston.mci.net>"},
        .sasl_invalid = 1,
    },
    {
        /* Google's documented example. */
        .name = "xoauth2/initial-response",
        .mech = "XOAUTH2",
        .steps = {C("user=someuser@example.com\001auth=Bearer " GOOGLE_TOKEN "\001\001",
                    "user=\"someuser@example.com\" token=\"" GOOGLE_TOKEN "\"")},
        .want = {.mechanism = "XOAUTH2", .username = "someuser@example.com", .token = GOOGLE_TOKEN},
    },
    {
        /* Expired token: the server's JSON error, the client's empty reply. */
        .name = "xoauth2/error-challenge",
        .mech = "XOAUTH2",
        .steps =
            {C("user=someuser@example.com\001auth=Bearer " GOOGLE_TOKEN "\001\001",
               "user=\"someuser@example.com\" token=\"" GOOGLE_TOKEN "\""),
             S("{\"status\":\"400\",\"schemes\":\"Bearer\",\"scope\":\"https://mail.google.com/\"}",
               "{\"status\":\"400\",\"schemes\":\"Bearer\",\"scope\":\"https://mail.google.com/"
               "\"}"),
             C("", "(empty)")},
        .want = {.mechanism = "XOAUTH2", .username = "someuser@example.com", .token = GOOGLE_TOKEN},
    },
    {
        .name = "xoauth2/garbage",
        .mech = "XOAUTH2",
        .steps = {C("hello", "hello")},
        .want = {.mechanism = "XOAUTH2"},
        .sasl_invalid = 1,
    },
    {
        /* RFC 7628 4.1. */
        .name = "oauthbearer/rfc7628-success",
        .mech = "OAUTHBEARER",
        .steps = {C("n,a=user@example.com,\001host=server.example.com\001port=143\001"
                    "auth=Bearer " RFC7628_TOKEN "\001\001",
                    "user=\"user@example.com\" host=\"server.example.com\" port=\"143\" "
                    "token=\"" RFC7628_TOKEN "\"")},
        .want = {.mechanism = "OAUTHBEARER",
                 .username = "user@example.com",
                 .token = RFC7628_TOKEN},
    },
    {
        /* RFC 7628 4.3: failure, the error JSON, the ^A dummy response. */
        .name = "oauthbearer/rfc7628-failure",
        .mech = "OAUTHBEARER",
        .steps = {C("n,a=user@example.com,\001host=server.example.com\001port=143\001"
                    "auth=Bearer " RFC7628_TOKEN "\001\001",
                    "user=\"user@example.com\" host=\"server.example.com\" port=\"143\" "
                    "token=\"" RFC7628_TOKEN "\""),
                  S(RFC7628_ERROR, RFC7628_ERROR), C("\001", "\\x01")},
        .want = {.mechanism = "OAUTHBEARER",
                 .username = "user@example.com",
                 .token = RFC7628_TOKEN},
    },
    {
        /* RFC 5801 saslname escapes; no authzid in the GS2 header at all. */
        .name = "oauthbearer/saslname-escapes",
        .mech = "OAUTHBEARER",
        .steps = {C("n,a=us=2Cer=3D,\001auth=Bearer tok\001\001", "user=\"us,er=\" token=\"tok\"")},
        .want = {.mechanism = "OAUTHBEARER", .username = "us,er=", .token = "tok"},
    },
    {
        .name = "oauthbearer/no-authzid",
        .mech = "OAUTHBEARER",
        .steps = {C("n,,\001auth=Bearer tok\001\001", "token=\"tok\"")},
        .want = {.mechanism = "OAUTHBEARER", .token = "tok"},
    },
    {
        .name = "oauthbearer/no-gs2-header",
        .mech = "OAUTHBEARER",
        .steps = {C("auth=Bearer tok\001\001", "auth=Bearer tok\\x01\\x01")},
        .want = {.mechanism = "OAUTHBEARER"},
        .sasl_invalid = 1,
    },
    {
        /* Never interpreted: the steps are kept as they were on the wire. */
        .name = "unknown/raw-steps",
        .mech = "x-foo",
        .steps = {CB64("Zm9v", "foo"), SB64("YmFy", "bar"),
                  CB64("!!", "(invalid Base64, nothing decoded)"), CB64("=", "(empty)"),
                  SB64("AAE=", "\\x00\\x01")},
        .want = {.mechanism = "X-FOO", .response = "C:Zm9v S:YmFy C:!! C:= S:AAE="},
        .b64_invalid = 1,
    },
};

static void test_cases(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
        run_case(&cases[i]);
}

/* The lines above must be crackable: recompute CRAM-MD5 digests from the
 * hash lines with the known passwords. */
static void check_cram_line(const char *line, const char *password)
{
    char **f = g_strsplit(line, "$", -1);
    uint8_t chal[256], resp[256], mac[MD5_DIGEST_SIZE];
    struct hmac_md5_ctx ctx;
    char hex[33];

    g_assert_cmpuint(g_strv_length(f), ==, 4);
    g_assert_cmpstr(f[1], ==, "cram_md5");
    ssize_t cn = mt_b64_decode(f[2], strlen(f[2]), chal);
    ssize_t rn = mt_b64_decode(f[3], strlen(f[3]), resp);
    g_assert_cmpint(cn, >, 0);
    g_assert_cmpint(rn, >, 33);

    hmac_md5_set_key(&ctx, strlen(password), (const uint8_t *)password);
    hmac_md5_update(&ctx, (size_t)cn, chal);
    hmac_md5_digest(&ctx, sizeof mac, mac);
    for (size_t i = 0; i < sizeof mac; i++)
        g_snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    g_assert_cmpmem(resp + rn - 32, 32, hex, 32);
    g_strfreev(f);
}

static void test_cram_crackable(void)
{
    check_cram_line(cases[9].want.hash, "tanstaaftanstaaf");
    check_cram_line(cases[10].want.hash, "hashcat");
}

/* ---- NTLM: messages built from fields (MS-NLMP 2.2.1) ---- */

static void put16(GByteArray *m, size_t off, uint16_t v)
{
    m->data[off] = (uint8_t)v;
    m->data[off + 1] = (uint8_t)(v >> 8);
}

static void put32(GByteArray *m, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        m->data[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static GByteArray *ntlm_header(uint32_t type, size_t fixed)
{
    GByteArray *m = g_byte_array_new();

    g_byte_array_set_size(m, (guint)fixed);
    memset(m->data, 0, fixed);
    memcpy(m->data, "NTLMSSP", 8);
    put32(m, 8, type);
    return m;
}

/* Appends a payload and points the security buffer at `at` to it. */
static void ntlm_payload(GByteArray *m, size_t at, const void *p, size_t n)
{
    put16(m, at, (uint16_t)n);
    put16(m, at + 2, (uint16_t)n);
    put32(m, at + 4, m->len);
    g_byte_array_append(m, p, (guint)n);
}

static void ntlm_string(GByteArray *m, size_t at, const char *s, bool unicode)
{
    if (!unicode) {
        ntlm_payload(m, at, s, strlen(s));
        return;
    }
    glong n = 0;
    gunichar2 *u = g_utf8_to_utf16(s, -1, NULL, &n, NULL);
    GByteArray *le = g_byte_array_new();
    for (glong i = 0; i < n; i++) {
        uint8_t b[2] = {(uint8_t)u[i], (uint8_t)(u[i] >> 8)};
        g_byte_array_append(le, b, 2);
    }
    ntlm_payload(m, at, le->data, le->len);
    g_byte_array_unref(le);
    g_free(u);
}

#define NTLM_UNICODE 0x00000001u
#define NTLM_OEM 0x00000002u
#define NTLM_NTLM 0x00000200u
#define NTLM_ESS 0x00080000u

static GByteArray *ntlm_type1(uint32_t flags)
{
    GByteArray *m = ntlm_header(1, 32);

    put32(m, 12, flags);
    return m;
}

static GByteArray *ntlm_type2(const uint8_t chal[8], uint32_t flags)
{
    GByteArray *m = ntlm_header(2, 48);

    put32(m, 16, 48); /* empty target name */
    put32(m, 20, flags);
    memcpy(m->data + 24, chal, 8);
    put32(m, 44, 48); /* empty target info */
    return m;
}

struct ntlm3 {
    const char *user, *domain, *workstation;
    bool unicode;
    const uint8_t *lm, *nt;
    size_t lm_n, nt_n;
    bool old_header; /* stop at 52 bytes: no session key, no flags */
};

/* The layout Windows uses: 64-byte header with flags at 60, then domain,
 * user, workstation, LM response, NT response. */
static GByteArray *ntlm_type3(const struct ntlm3 *f)
{
    GByteArray *m = ntlm_header(3, f->old_header ? 52 : 64);

    if (!f->old_header) {
        put32(m, 60, NTLM_NTLM | (f->unicode ? NTLM_UNICODE : NTLM_OEM));
        put32(m, 56, 64); /* empty session key */
    }
    ntlm_string(m, 28, f->domain, f->unicode);
    ntlm_string(m, 36, f->user, f->unicode);
    ntlm_string(m, 44, f->workstation, f->unicode);
    ntlm_payload(m, 12, f->lm, f->lm_n);
    ntlm_payload(m, 20, f->nt, f->nt_n);
    return m;
}

static char *ntlm_step(struct mt_sasl *s, enum mt_dir dir, GByteArray *m, struct rec *r)
{
    char *note = step_bytes(s, dir, m->data, m->len, r);

    g_byte_array_unref(m);
    return note;
}

static const uint8_t server_chal[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};

/* hex of NTLMv2's HMAC-MD5 over UTF-16LE strings, as MS-NLMP 3.3.2 defines. */
static void hmac_md5_utf16(const uint8_t *key, size_t keylen, const char *text, const uint8_t *more,
                           size_t more_n, uint8_t out[16])
{
    struct hmac_md5_ctx ctx;
    glong n = 0;
    gunichar2 *u = g_utf8_to_utf16(text, -1, NULL, &n, NULL);

    hmac_md5_set_key(&ctx, keylen, key);
    for (glong i = 0; i < n; i++) {
        uint8_t b[2] = {(uint8_t)u[i], (uint8_t)(u[i] >> 8)};
        hmac_md5_update(&ctx, 2, b);
    }
    if (more_n)
        hmac_md5_update(&ctx, more_n, more);
    hmac_md5_digest(&ctx, 16, out);
    g_free(u);
}

/* The NTLMv2 NTProofStr of password for user/domain, challenge and blob. */
static void ntproof(const char *password, const char *user, const char *domain,
                    const uint8_t chal[8], const uint8_t *blob, size_t blob_n, uint8_t out[16])
{
    struct md4_ctx md4;
    uint8_t nthash[16], v2key[16];
    glong n = 0;
    gunichar2 *u = g_utf8_to_utf16(password, -1, NULL, &n, NULL);

    md4_init(&md4);
    for (glong i = 0; i < n; i++) {
        uint8_t b[2] = {(uint8_t)u[i], (uint8_t)(u[i] >> 8)};
        md4_update(&md4, 2, b);
    }
    md4_digest(&md4, 16, nthash);
    g_free(u);

    char *upper = g_utf8_strup(user, -1);
    char *ud = g_strconcat(upper, domain, NULL);
    hmac_md5_utf16(nthash, 16, ud, NULL, 0, v2key);
    g_free(ud);
    g_free(upper);

    uint8_t *msg = g_malloc(8 + blob_n);
    memcpy(msg, chal, 8);
    memcpy(msg + 8, blob, blob_n);
    hmac_md5_utf16(v2key, 16, "", msg, 8 + blob_n, out);
    g_free(msg);
}

static char *hex_of(const uint8_t *p, size_t n)
{
    char *s = g_malloc(2 * n + 1);

    for (size_t i = 0; i < n; i++)
        g_snprintf(s + 2 * i, 3, "%02x", p[i]);
    s[2 * n] = '\0';
    return s;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;

    g_assert_cmpuint(n, <=, cap);
    for (size_t i = 0; i < n; i++)
        out[i] =
            (uint8_t)(g_ascii_xdigit_value(hex[2 * i]) << 4 | g_ascii_xdigit_value(hex[2 * i + 1]));
    return n;
}

static void test_ntlm_v2(void)
{
    /* NTLMv2 blob (MS-NLMP 2.2.2.7): version 1.1, reserved, timestamp,
     * client challenge, reserved, no AV pairs. */
    static const uint8_t blob[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
                                   0x3e, 0xd5, 0xde, 0xb1, 0x9d, 0x01, 0xc1, 0xc2, 0xc3, 0xc4,
                                   0xc5, 0xc6, 0xc7, 0xc8, 0x00, 0x00, 0x00, 0x00};
    uint8_t nt[16 + sizeof blob], lm[24] = {0};
    struct rec r = {0};
    struct mt_credential cred = {0};
    char *note;

    ntproof("Passw0rd!", "J\xc3\xbcrgen", "CORP", server_chal, blob, sizeof blob, nt);
    memcpy(nt + 16, blob, sizeof blob);

    struct mt_sasl *s = mt_sasl_new("NTLM", 4);
    note = ntlm_step(s, MT_C2S, ntlm_type1(NTLM_UNICODE | NTLM_NTLM | NTLM_ESS), &r);
    g_assert_cmpstr(note, ==, "NTLM type 1 (negotiate) flags=0x00080201");
    g_free(note);
    note = ntlm_step(s, MT_S2C, ntlm_type2(server_chal, NTLM_UNICODE | NTLM_NTLM), &r);
    g_assert_cmpstr(note, ==,
                    "NTLM type 2 (challenge) challenge=0102030405060708 flags=0x00000201");
    g_free(note);
    struct ntlm3 f = {.user = "J\xc3\xbcrgen",
                      .domain = "CORP",
                      .workstation = "WS01",
                      .unicode = true,
                      .lm = lm,
                      .nt = nt,
                      .lm_n = sizeof lm,
                      .nt_n = sizeof nt};
    note = ntlm_step(s, MT_C2S, ntlm_type3(&f), &r);
    g_assert_cmpstr(note, ==,
                    "NTLM type 3: user=\"J\\xc3\\xbcrgen\" domain=\"CORP\" workstation=\"WS01\" "
                    "NTLMv2");
    g_free(note);
    mt_sasl_finish(s, &cred);
    mt_sasl_free(s);

    for (unsigned a = 0; a < MT_AN__COUNT; a++)
        g_assert_cmpuint(r.n[a], ==, 0);
    g_assert_cmpstr(cred.mechanism, ==, "NTLM");
    g_assert_cmpstr(cred.username, ==, "J\xc3\xbcrgen");
    g_assert_cmpstr(cred.domain, ==, "CORP");
    g_assert_cmpstr(cred.workstation, ==, "WS01");
    g_assert_cmpstr(cred.challenge, ==, "0102030405060708");
    g_assert_null(cred.password);

    /* hashcat 5600: user::domain:challenge:NTProofStr:blob */
    char *proof = hex_of(nt, 16);
    const char *blob_hex = "0101000000000000"
                           "00803ed5deb19d01"
                           "c1c2c3c4c5c6c7c8"
                           "00000000";
    char *want = g_strconcat("J\xc3\xbcrgen::CORP:0102030405060708:", proof, ":", blob_hex, NULL);
    char *want_resp = g_strconcat(proof, blob_hex, NULL);
    g_assert_cmpstr(cred.hash, ==, want);
    g_assert_cmpstr(cred.response, ==, want_resp);
    g_free(want_resp);
    g_free(want);
    g_free(proof);

    /* And the line cracks: recompute NTProofStr from its own fields. */
    char **fld = g_strsplit(cred.hash, ":", -1);
    g_assert_cmpuint(g_strv_length(fld), ==, 6);
    uint8_t chal[8], lblob[64], again[16];
    g_assert_cmpuint(unhex(fld[3], chal, sizeof chal), ==, 8);
    size_t bn = unhex(fld[5], lblob, sizeof lblob);
    ntproof("Passw0rd!", fld[0], fld[2], chal, lblob, bn, again);
    g_assert_cmpmem(again, 16, nt, 16);
    g_strfreev(fld);
    mt_credential_clear(&cred);
}

static void test_ntlm_v1(void)
{
    /* NTLMv1 with OEM strings: a type 2 without NEGOTIATE_UNICODE. */
    static const uint8_t lm[24] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                   0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
                                   0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33};
    static const uint8_t nt[24] = {0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1, 0xa1,
                                   0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2, 0xb2,
                                   0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3};
    struct rec r = {0};
    struct mt_credential cred = {0};
    struct mt_sasl *s = mt_sasl_new("NTLM", 4);
    char *note;

    note = ntlm_step(s, MT_S2C, ntlm_type2(server_chal, NTLM_OEM | NTLM_NTLM), &r);
    g_free(note);
    struct ntlm3 f = {.user = "bob",
                      .domain = "LEGACY",
                      .workstation = "OLDBOX",
                      .unicode = false,
                      .lm = lm,
                      .nt = nt,
                      .lm_n = sizeof lm,
                      .nt_n = sizeof nt};
    note = ntlm_step(s, MT_C2S, ntlm_type3(&f), &r);
    g_assert_cmpstr(note, ==,
                    "NTLM type 3: user=\"bob\" domain=\"LEGACY\" workstation=\"OLDBOX\" NTLMv1");
    g_free(note);
    mt_sasl_finish(s, &cred);
    mt_sasl_free(s);

    g_assert_cmpuint(r.n[MT_AN_SASL_INVALID], ==, 0);
    g_assert_cmpstr(cred.username, ==, "bob");
    g_assert_cmpstr(cred.domain, ==, "LEGACY");
    g_assert_cmpstr(cred.workstation, ==, "OLDBOX");
    /* hashcat 5500: user::domain:LM response:NT response:challenge */
    g_assert_cmpstr(cred.hash, ==,
                    "bob::LEGACY:"
                    "111111111111111122222222222222223333333333333333:"
                    "a1a1a1a1a1a1a1a1b2b2b2b2b2b2b2b2c3c3c3c3c3c3c3c3:"
                    "0102030405060708");
    g_assert_cmpstr(cred.response, ==, "a1a1a1a1a1a1a1a1b2b2b2b2b2b2b2b2c3c3c3c3c3c3c3c3");
    mt_credential_clear(&cred);
}

/* A NUL in a name (OEM or UTF-16) becomes U+FFFD: what follows it is kept. */
static void test_ntlm_nul(void)
{
    static const uint8_t lm[24], nt[24] = {1};
    for (int unicode = 0; unicode < 2; unicode++) {
        struct rec r = {0};
        struct mt_credential cred = {0};
        struct mt_sasl *s = mt_sasl_new("NTLM", 4);
        g_free(ntlm_step(s, MT_S2C,
                         ntlm_type2(server_chal, NTLM_NTLM | (unicode ? NTLM_UNICODE : NTLM_OEM)),
                         &r));
        GByteArray *m = ntlm_header(3, 64);
        put32(m, 60, NTLM_NTLM | (unicode ? NTLM_UNICODE : NTLM_OEM));
        put32(m, 56, 64);
        static const uint8_t dom_oem[] = {'D', 0, 'X'}, user_oem[] = {'b', 'o', 0, 'b'};
        static const uint8_t dom_u16[] = {'D', 0, 0, 0, 'X', 0}, user_u16[] = {'b', 0, 'o', 0, 0, 0, 'b', 0};
        if (unicode) {
            ntlm_payload(m, 28, dom_u16, sizeof dom_u16);
            ntlm_payload(m, 36, user_u16, sizeof user_u16);
        } else {
            ntlm_payload(m, 28, dom_oem, sizeof dom_oem);
            ntlm_payload(m, 36, user_oem, sizeof user_oem);
        }
        ntlm_payload(m, 44, "W", 1 + unicode); /* "W" or "W\0" as UTF-16 */
        ntlm_payload(m, 12, lm, sizeof lm);
        ntlm_payload(m, 20, nt, sizeof nt);
        char *note = ntlm_step(s, MT_C2S, m, &r);
        /* the note quotes bytes beyond ASCII as \\xNN */
        g_assert_cmpstr(note, ==,
                        "NTLM type 3: user=\"bo\\xef\\xbf\\xbdb\" domain=\"D\\xef\\xbf\\xbdX\" "
                        "workstation=\"W\" NTLMv1");
        g_free(note);
        mt_sasl_finish(s, &cred);
        mt_sasl_free(s);
        g_assert_cmpstr(cred.username, ==, "bo\xef\xbf\xbd" "b");
        g_assert_cmpstr(cred.domain, ==, "D\xef\xbf\xbd" "X");
        g_assert_cmpstr(cred.workstation, ==, "W");
        mt_credential_clear(&cred);
    }
}

static const uint8_t v2_nt[40] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9,
                                  0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0x01, 0x01, 0x00, 0x00};
static const uint8_t v2_lm[24];

static GByteArray *valid_type3(void)
{
    struct ntlm3 f = {.user = "alice",
                      .domain = "CORP",
                      .workstation = "WS01",
                      .unicode = true,
                      .lm = v2_lm,
                      .nt = v2_nt,
                      .lm_n = sizeof v2_lm,
                      .nt_n = sizeof v2_nt};

    return ntlm_type3(&f);
}

/* Captured after the challenge: the user is known, the line is not. */
static void test_ntlm_no_challenge(void)
{
    struct rec r = {0};
    struct mt_credential cred = {0};
    struct mt_sasl *s = mt_sasl_new("NTLM", 4);
    char *note = ntlm_step(s, MT_C2S, valid_type3(), &r);

    g_assert_cmpstr(note, ==,
                    "NTLM type 3: user=\"alice\" domain=\"CORP\" workstation=\"WS01\" NTLMv2 "
                    "(no server challenge seen)");
    g_free(note);
    mt_sasl_finish(s, &cred);
    mt_sasl_free(s);
    g_assert_cmpstr(cred.username, ==, "alice");
    g_assert_null(cred.hash);
    g_assert_null(cred.challenge);
    g_assert_cmpuint(r.n[MT_AN_SASL_INVALID], ==, 0);
    mt_credential_clear(&cred);
}

/* A type 3 without the flags field: the string encoding comes from the
 * type 2, or is UTF-16 when the challenge was not seen. */
static void test_ntlm_old_header(void)
{
    static const struct {
        bool have_type2;
        uint32_t type2_flags;
        bool unicode;
    } rows[] = {
        {false, 0, true},
        {true, NTLM_OEM | NTLM_NTLM, false},
        {true, NTLM_UNICODE | NTLM_NTLM, true},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        struct rec r = {0};
        struct mt_credential cred = {0};
        struct mt_sasl *s = mt_sasl_new("NTLM", 4);
        struct ntlm3 f = {.user = "alice",
                          .domain = "CORP",
                          .workstation = "WS01",
                          .unicode = rows[i].unicode,
                          .lm = v2_lm,
                          .nt = v2_nt,
                          .lm_n = sizeof v2_lm,
                          .nt_n = sizeof v2_nt,
                          .old_header = true};

        if (rows[i].have_type2)
            g_free(ntlm_step(s, MT_S2C, ntlm_type2(server_chal, rows[i].type2_flags), &r));
        g_free(ntlm_step(s, MT_C2S, ntlm_type3(&f), &r));
        mt_sasl_finish(s, &cred);
        mt_sasl_free(s);
        g_assert_cmpuint(r.n[MT_AN_SASL_INVALID], ==, 0);
        g_assert_cmpstr(cred.username, ==, "alice");
        g_assert_cmpstr(cred.domain, ==, "CORP");
        g_assert_cmpstr(cred.workstation, ==, "WS01");
        if (rows[i].have_type2)
            g_assert_true(g_str_has_prefix(cred.hash, "alice::CORP:0102030405060708:a0a1a2a3"));
        mt_credential_clear(&cred);
    }
}

/* Malformed messages: each raises sasl_invalid once and teaches nothing. */
enum bad_patch { BAD_NONE, BAD_USER_OFF, BAD_USER_LEN, BAD_OVERFLOW, BAD_ODD_UTF16, BAD_TYPE };

static const struct {
    const char *name;
    enum mt_dir dir;
    const char *bytes; /* used when patch is BAD_NONE */
    size_t len;
    enum bad_patch patch;
    const char *note;
} ntlm_bad[] = {
    {"garbage", MT_C2S, "hello world", 11, BAD_NONE, "NTLM: malformed (no NTLMSSP signature)"},
    {"bad signature", MT_C2S, "NTLMSSX\0\3\0\0\0", 12, BAD_NONE,
     "NTLM: malformed (no NTLMSSP signature)"},
    {"signature only", MT_C2S, "NTLMSSP\0", 8, BAD_NONE, "NTLM: malformed (no NTLMSSP signature)"},
    {"type 1 without flags", MT_C2S, "NTLMSSP\0\1\0\0\0", 12, BAD_NONE,
     "NTLM: malformed (type 1 message too short)"},
    {"short type 2", MT_S2C, "NTLMSSP\0\2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1\2\3", 27,
     BAD_NONE, "NTLM: malformed (type 2 message too short)"},
    {"short type 3", MT_C2S, "NTLMSSP\0\3\0\0\0", 12, BAD_NONE,
     "NTLM: malformed (type 3 message too short)"},
    {"user offset past the end", MT_C2S, NULL, 0, BAD_USER_OFF,
     "NTLM: malformed (type 3 field outside the message)"},
    {"user length past the end", MT_C2S, NULL, 0, BAD_USER_LEN,
     "NTLM: malformed (type 3 field outside the message)"},
    {"offset + length wraps", MT_C2S, NULL, 0, BAD_OVERFLOW,
     "NTLM: malformed (type 3 field outside the message)"},
    {"odd UTF-16 length", MT_C2S, NULL, 0, BAD_ODD_UTF16,
     "NTLM: malformed (odd length of a UTF-16 string)"},
    {"unknown type", MT_C2S, NULL, 0, BAD_TYPE, "NTLM: malformed (unknown NTLM message type)"},
};

static void test_ntlm_malformed(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(ntlm_bad); i++) {
        struct rec r = {0};
        struct mt_credential cred = {0};
        struct mt_sasl *s = mt_sasl_new("NTLM", 4);
        GByteArray *m;

        g_test_message("ntlm malformed: %s", ntlm_bad[i].name);
        if (ntlm_bad[i].patch == BAD_NONE) {
            m = g_byte_array_new();
            g_byte_array_append(m, (const guint8 *)ntlm_bad[i].bytes, (guint)ntlm_bad[i].len);
        } else {
            m = valid_type3();
        }
        switch (ntlm_bad[i].patch) {
        case BAD_USER_OFF:
            put32(m, 36 + 4, m->len + 1);
            break;
        case BAD_USER_LEN:
            put16(m, 36, 0xffff);
            break;
        case BAD_OVERFLOW:
            put16(m, 36, 0xffff);
            put32(m, 36 + 4, 0xffffffffu);
            break;
        case BAD_ODD_UTF16:
            put16(m, 36, 9);
            break;
        case BAD_TYPE:
            put32(m, 8, 7);
            break;
        case BAD_NONE:
        default:
            break;
        }
        char *note = ntlm_step(s, ntlm_bad[i].dir, m, &r);
        g_assert_cmpstr(note, ==, ntlm_bad[i].note);
        g_free(note);
        mt_sasl_finish(s, &cred);
        mt_sasl_free(s);
        g_assert_cmpuint(r.n[MT_AN_SASL_INVALID], ==, 1);
        g_assert_cmpuint(r.n[MT_AN_B64_INVALID], ==, 0);
        g_assert_null(cred.username);
        g_assert_null(cred.hash);
        mt_credential_clear(&cred);
    }
}

/* Every strict prefix of a valid type 3 cuts a field: each must be
 * reported, and none read past its end (ASan watches). */
static void test_ntlm_truncated(void)
{
    GByteArray *full = valid_type3();
    GByteArray *t2 = ntlm_type2(server_chal, NTLM_UNICODE);

    for (guint len = 1; len < full->len; len++) {
        struct rec r = {0};
        struct mt_credential cred = {0};
        struct mt_sasl *s = mt_sasl_new("NTLM", 4);

        g_free(step_bytes(s, MT_S2C, t2->data, t2->len, &r));
        char *note = step_bytes(s, MT_C2S, full->data, len, &r);
        g_assert_nonnull(note);
        g_free(note);
        g_assert_cmpuint(r.n[MT_AN_SASL_INVALID], ==, 1);
        mt_sasl_finish(s, &cred);
        mt_sasl_free(s);
        g_assert_null(cred.username);
        g_assert_null(cred.hash);
        mt_credential_clear(&cred);
    }
    g_byte_array_unref(t2);
    g_byte_array_unref(full);
}

/* Random corruption of a valid exchange: never a crash, always a printable
 * note.  (The fuzz harness goes further; this keeps the unit honest.) */
static void test_ntlm_mutations(void)
{
    GRand *rnd = g_rand_new_with_seed(7628);
    GByteArray *t2 = ntlm_type2(server_chal, NTLM_UNICODE);
    GByteArray *t3 = valid_type3();

    for (int iter = 0; iter < 3000; iter++) {
        struct rec r = {0};
        struct mt_credential cred = {0};
        struct mt_sasl *s = mt_sasl_new("NTLM", 4);
        GByteArray *src = iter % 4 == 0 ? t2 : t3;
        guint len = (guint)g_rand_int_range(rnd, 0, (gint32)src->len + 1);
        uint8_t *m = g_memdup2(src->data, src->len);

        for (int k = g_rand_int_range(rnd, 1, 6); k > 0; k--)
            m[g_rand_int_range(rnd, 0, (gint32)src->len)] = (uint8_t)g_rand_int_range(rnd, 0, 256);
        g_free(step_bytes(s, MT_S2C, t2->data, t2->len, &r));
        g_free(step_bytes(s, iter % 4 == 0 ? MT_S2C : MT_C2S, m, len, &r));
        mt_sasl_finish(s, &cred);
        mt_sasl_free(s);
        mt_credential_clear(&cred);
        g_free(m);
    }
    g_byte_array_unref(t2);
    g_byte_array_unref(t3);
    g_rand_free(rnd);
}

/* ---- caps ---- */

static void test_steps_cap(void)
{
    struct rec r = {0};
    struct mt_sasl *s = mt_sasl_new("LOGIN", 5);
    unsigned total = MT_DEF_AUTH_STEPS_MAX + 4;

    for (unsigned i = 0; i < total; i++) {
        char *note = mt_sasl_step(s, MT_S2C, "VXNlcm5hbWU6", 12, rec_cb, &r);
        if (i < MT_DEF_AUTH_STEPS_MAX)
            g_assert_cmpstr(note, ==, "Username:");
        else
            g_assert_null(note);
        g_free(note);
    }
    g_assert_cmpuint(mt_sasl_steps(s), ==, total);
    g_assert_cmpuint(r.n[MT_AN_AUTH_TOO_LONG], ==, 1);
    mt_sasl_free(s);
}

/* Unknown mechanism: the kept steps stop at a few KB, however long the
 * lines; a cancel is recorded. */
static void test_unknown_caps(void)
{
    struct rec r = {0};
    struct mt_credential cred = {0};
    struct mt_sasl *s = mt_sasl_new("GSSAPI", 6);
    char *big = g_strnfill(8000, 'A'); /* 6000 zero bytes */

    for (int i = 0; i < 4; i++) {
        char *note = mt_sasl_step(s, i % 2 ? MT_S2C : MT_C2S, big, 8000, rec_cb, &r);
        g_assert_nonnull(note);
        g_assert_cmpuint(strlen(note), <=, 4 * 512 + 3); /* the note is capped too */
        g_assert_true(g_str_has_suffix(note, "..."));
        g_free(note);
    }
    mt_sasl_finish(s, &cred);
    mt_sasl_free(s);
    g_assert_cmpstr(cred.mechanism, ==, "GSSAPI");
    g_assert_nonnull(cred.response);
    g_assert_cmpuint(strlen(cred.response), <=, 4096);
    g_assert_cmpuint(strlen(cred.response), >=, 4000);
    g_assert_true(g_str_has_prefix(cred.response, "C:AAAA"));
    g_assert_true(g_str_has_suffix(cred.response, " ..."));
    mt_credential_clear(&cred);
    g_free(big);

    s = mt_sasl_new("X-TOKEN", 7);
    g_free(mt_sasl_step(s, MT_C2S, "Zm9v", 4, rec_cb, &r));
    mt_sasl_cancel(s);
    mt_sasl_finish(s, &cred);
    mt_sasl_free(s);
    g_assert_cmpstr(cred.response, ==, "C:Zm9v C:*");
    g_assert_cmpuint(r.n[MT_AN_B64_INVALID], ==, 0);
    mt_credential_clear(&cred);
}

/* A mechanism name is kept whatever it holds, cut to a sane length. */
static void test_mech_name(void)
{
    struct mt_credential cred = {0};
    char *longname = g_strnfill(500, 'x');
    struct mt_sasl *s = mt_sasl_new(longname, 500);

    mt_sasl_finish(s, &cred);
    mt_sasl_free(s);
    g_assert_cmpuint(strlen(cred.mechanism), ==, 64);
    g_assert_true(cred.mechanism[0] == 'X');
    g_assert_null(cred.response);
    mt_credential_clear(&cred);
    g_free(longname);

    /* Not NUL-terminated: only mech_len bytes are read. */
    s = mt_sasl_new("PLAINXYZ", 5);
    mt_sasl_finish(s, &cred);
    mt_sasl_free(s);
    g_assert_cmpstr(cred.mechanism, ==, "PLAIN");
    mt_credential_clear(&cred);
}

/* ---- APOP, digests, name tables ---- */

static void test_apop(void)
{
    /* RFC 1939 7: the secret is "tanstaaf". */
    static const char ts[] = "<1896.697170952@dbc.mtview.ca.us>";
    char md5[33];
    char *salted = g_strconcat(ts, "tanstaaf", NULL);

    mt_md5_hex(salted, strlen(salted), md5);
    g_assert_cmpstr(md5, ==, "c4c9334bac560ecc979e58001b3e22fb");
    g_free(salted);

    char *line = mt_apop_hash(ts, "C4C9334BAC560ECC979E58001B3E22FB");
    g_assert_cmpstr(line, ==, "c4c9334bac560ecc979e58001b3e22fb:<1896.697170952@dbc.mtview.ca.us>");
    g_free(line);
    g_assert_null(mt_apop_hash(ts, "c4c9334bac560ecc979e58001b3e22f"));
    g_assert_null(mt_apop_hash(ts, "zzc9334bac560ecc979e58001b3e22fb"));
    g_assert_null(mt_apop_hash(NULL, "c4c9334bac560ecc979e58001b3e22fb"));
}

static void test_digests(void)
{
    static const struct {
        const char *in;
        const char *md5, *sha256;
    } rows[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e",
         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72",
         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        char md5[33], sha[65];
        mt_md5_hex(rows[i].in, strlen(rows[i].in), md5);
        mt_sha256_hex(rows[i].in, strlen(rows[i].in), sha);
        g_assert_cmpstr(md5, ==, rows[i].md5);
        g_assert_cmpstr(sha, ==, rows[i].sha256);
    }
    /* Incremental: one byte at a time gives the same digest. */
    struct mt_sha256 h;
    char sha[65];
    mt_sha256_init(&h);
    for (const char *p = "abc"; *p; p++)
        mt_sha256_update(&h, p, 1);
    mt_sha256_final_hex(&h, sha);
    g_assert_cmpstr(sha, ==, rows[1].sha256);
}

static void test_names(void)
{
    static const struct {
        enum mt_anomaly a;
        const char *name;
    } an[] = {
        {MT_AN_GAP, "gap"},
        {MT_AN_B64_INVALID, "b64_invalid"},
        {MT_AN_SASL_INVALID, "sasl_invalid"},
        {MT_AN_AUTH_TOO_LONG, "auth_too_long"},
        {MT_AN_PROTOCOL_VIOLATION, "protocol_violation"},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(an); i++)
        g_assert_cmpstr(mt_anomaly_name(an[i].a), ==, an[i].name);
    for (unsigned a = 0; a < MT_AN__COUNT; a++) {
        g_assert_nonnull(mt_anomaly_name(a));
        g_assert_nonnull(mt_anomaly_desc(a));
        g_assert_cmpstr(mt_anomaly_desc(a), !=, "unknown anomaly");
    }
    g_assert_cmpstr(mt_anomaly_desc(MT_AN_B64_INVALID), ==, "Base64 that does not decode");

    g_assert_cmpstr(mt_proto_name(MT_PROTO_UNKNOWN), ==, "tcp");
    g_assert_cmpstr(mt_proto_name(MT_PROTO_SMTP), ==, "smtp");
    g_assert_cmpstr(mt_proto_name(MT_PROTO_POP3), ==, "pop3");
    g_assert_cmpstr(mt_proto_name(MT_PROTO_IMAP), ==, "imap");
    g_assert_cmpstr(mt_proto_name(MT_PROTO_TLS), ==, "tls");
    g_assert_cmpstr(mt_auth_result_name(MT_AUTH_UNKNOWN), ==, "unknown");
    g_assert_cmpstr(mt_auth_result_name(MT_AUTH_SUCCESS), ==, "success");
    g_assert_cmpstr(mt_auth_result_name(MT_AUTH_FAILURE), ==, "failure");

    static const char *const src[] = {"DATA", "BDAT", "RETR", "TOP", "FETCH", "APPEND"};
    for (unsigned i = 0; i < G_N_ELEMENTS(src); i++)
        g_assert_cmpstr(mt_msg_source_name((enum mt_msg_source)i), ==, src[i]);

    char buf[46];
    struct mt_endpoint v4 = {.family = 4, .addr = {192, 0, 2, 1}, .port = 25};
    struct mt_endpoint v6 = {.family = 6, .addr = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
    g_assert_cmpstr(mt_endpoint_ip(&v4, buf, sizeof buf), ==, "192.0.2.1");
    g_assert_cmpstr(mt_endpoint_ip(&v6, buf, sizeof buf), ==, "2001:db8::1");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sasl/cases", test_cases);
    g_test_add_func("/sasl/cram_md5_crackable", test_cram_crackable);
    g_test_add_func("/sasl/ntlm_v2", test_ntlm_v2);
    g_test_add_func("/sasl/ntlm_v1", test_ntlm_v1);
    g_test_add_func("/sasl/ntlm_nul", test_ntlm_nul);
    g_test_add_func("/sasl/ntlm_no_challenge", test_ntlm_no_challenge);
    g_test_add_func("/sasl/ntlm_old_header", test_ntlm_old_header);
    g_test_add_func("/sasl/ntlm_malformed", test_ntlm_malformed);
    g_test_add_func("/sasl/ntlm_truncated", test_ntlm_truncated);
    g_test_add_func("/sasl/ntlm_mutations", test_ntlm_mutations);
    g_test_add_func("/sasl/steps_cap", test_steps_cap);
    g_test_add_func("/sasl/unknown_caps", test_unknown_caps);
    g_test_add_func("/sasl/mech_name", test_mech_name);
    g_test_add_func("/sasl/apop", test_apop);
    g_test_add_func("/hash/digests", test_digests);
    g_test_add_func("/anomaly/names", test_names);
    return g_test_run();
}
