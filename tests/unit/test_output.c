/* Pure functions of the output layer: terminal escaping, JSON strings,
 * time format, redaction, safe extraction names; and commands and replies
 * handed over as records print as the events themselves. */
#include <string.h>

#include <glib.h>

#include "buf.h"
#include "output.h"

static const struct {
    const char *in;
    size_t n;
    const char *out;
} text_rows[] = {
    { "EHLO x", 6, "EHLO x" },
    { "a\x1b[31mred", 9, "a\\x1b[31mred" },            /* ANSI escape */
    { "tab\there", 8, "tab\\there" },
    { "nul\0x", 5, "nul\\x00x" },
    { "bare\rcr", 7, "bare\\rcr" },
    { "\xe4\xb8\xad\xe6\x96\x87", 6, "\xe4\xb8\xad\xe6\x96\x87" }, /* UTF-8 kept */
    { "bad\xff\xfe", 5, "bad\\xff\\xfe" },              /* invalid UTF-8 */
    { "\xc2\x9b" "2J", 4, "\\u{009b}2J" },             /* C1 CSI */
    { "rtl\xe2\x80\xae", 6, "rtl\\u{202e}" },           /* bidi override */
    { "back\\slash", 10, "back\\slash" },              /* IMAP flags: \Seen */
    { "\xe4\xb8", 2, "\\xe4\\xb8" },                    /* cut character */
};

static void test_text(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(text_rows); i++) {
        GString *g = g_string_new(NULL);
        mt_esc_text(g, text_rows[i].in, text_rows[i].n);
        g_assert_cmpstr(g->str, ==, text_rows[i].out);
        g_string_free(g, TRUE);
    }
}

static const struct {
    const char *in;
    size_t n;
    const char *out;
    gboolean clean;
} json_rows[] = {
    { "plain", 5, "\"plain\"", TRUE },
    { "q\"b\\", 4, "\"q\\\"b\\\\\"", TRUE },
    { "c\x01\n", 3, "\"c\\u0001\\n\"", TRUE },
    { "\xe4\xb8\xad", 3, "\"\xe4\xb8\xad\"", TRUE },
    { "x\xffy", 3, "\"x\xef\xbf\xbdy\"", FALSE },
    { "n\0", 2, "\"n\\u0000\"", TRUE },
    { "nel\xc2\x85x", 6, "\"nel\\u0085x\"", TRUE },       /* C1: Python's splitlines splits on it */
};

static void test_json(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(json_rows); i++) {
        GString *g = g_string_new(NULL);
        gboolean clean = mt_esc_json(g, json_rows[i].in, json_rows[i].n);
        g_assert_cmpstr(g->str, ==, json_rows[i].out);
        g_assert_cmpint(clean, ==, json_rows[i].clean);
        g_assert_true(g_utf8_validate(g->str, (gssize)g->len, NULL));
        g_string_free(g, TRUE);
    }
}

static void test_time(void)
{
    GString *g = g_string_new(NULL);
    mt_fmt_time(g, 1700000000123456LL);
    g_assert_cmpstr(g->str, ==, "2023-11-14T22:13:20.123456Z");
    g_string_free(g, TRUE);
}

static void test_redact(void)
{
    char *r = mt_redact_note("authzid=\"\" user=\"al\" password=\"s\\\"ec\" token=\"t\"");
    g_assert_cmpstr(r, ==, "authzid=\"\" user=\"al\" password=\"****\" token=\"****\"");
    g_free(r);
}

static const struct {
    const char *in;
    const char *out;
} name_rows[] = {
    { "report.pdf", "report.pdf" },
    { "../../etc/passwd", "passwd" },
    { "/abs/path/x.txt", "x.txt" },
    { "..\\..\\win.ini", "win.ini" },
    { "..", "unnamed" },
    { ".hidden", "hidden" },
    { "", "unnamed" },
    { "a\x1b[2Jb", "a_[2Jb" },
    { "tab\tname", "tab_name" },
    { "CON", "_CON" },
    { "nul.txt", "_nul.txt" },
    { "what?.txt", "what_.txt" },
    { "\xe6\x8a\xa5\xe5\x91\x8a.docx", "\xe6\x8a\xa5\xe5\x91\x8a.docx" },
    { "bad\xff.bin", "bad_.bin" },
    { "evil\xe2\x80\xaegpj.exe", "evil_gpj.exe" },
};

static void test_names(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(name_rows); i++) {
        char *s = mt_safe_filename(name_rows[i].in);
        g_assert_cmpstr(s, ==, name_rows[i].out);
        g_free(s);
    }
    /* 10,000 characters are capped, at a character boundary */
    GString *big = g_string_new(NULL);
    for (int i = 0; i < 5000; i++)
        g_string_append(big, "\xe4\xb8\xad");
    char *s = mt_safe_filename(big->str);
    g_assert_cmpuint(strlen(s), <=, 200);
    g_assert_true(g_utf8_validate(s, -1, NULL));
    g_free(s);
    g_string_free(big, TRUE);
    s = mt_safe_filename(NULL);
    g_assert_cmpstr(s, ==, "unnamed");
    g_free(s);
}

/* ---- the fast paths against the plain ones they replaced ----
 * ref_esc_text and ref_esc_json are the byte-at-a-time versions that
 * mt_esc_text and mt_esc_json were before they copied runs of safe bytes
 * in bulk: both must give the same bytes for any input. */

static void ref_esc_text(GString *out, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x7f) {
            g_string_append_c(out, (char)c);
            i++;
            continue;
        }
        if (c >= 0x80) {
            const gchar *end;
            size_t rest = n - i;
            size_t k = rest < 4 ? rest : 4;
            if (!g_utf8_validate((const gchar *)p + i, (gssize)MIN(k, (size_t)g_utf8_skip[c]),
                                 &end) ||
                (size_t)(end - (const gchar *)(p + i)) != (size_t)g_utf8_skip[c]) {
                g_string_append_printf(out, "\\x%02x", c);
                i++;
                continue;
            }
            gunichar u = g_utf8_get_char((const gchar *)p + i);
            size_t len = (size_t)g_utf8_skip[c];
            if (!g_unichar_isprint(u) || (u >= 0x80 && u < 0xa0) || u == 0x2028 ||
                u == 0x2029 || (u >= 0x202a && u <= 0x202e) || (u >= 0x2066 && u <= 0x2069))
                g_string_append_printf(out, "\\u{%04x}", u);
            else
                g_string_append_len(out, (const gchar *)p + i, (gssize)len);
            i += len;
            continue;
        }
        switch (c) {
        case '\t': g_string_append(out, "\\t"); break;
        case '\r': g_string_append(out, "\\r"); break;
        case '\n': g_string_append(out, "\\n"); break;
        default: g_string_append_printf(out, "\\x%02x", c); break;
        }
        i++;
    }
}

static gboolean ref_esc_json(GString *out, const uint8_t *p, size_t n)
{
    gboolean clean = TRUE;
    g_string_append_c(out, '"');
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            switch (c) {
            case '"': g_string_append(out, "\\\""); break;
            case '\\': g_string_append(out, "\\\\"); break;
            case '\n': g_string_append(out, "\\n"); break;
            case '\r': g_string_append(out, "\\r"); break;
            case '\t': g_string_append(out, "\\t"); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    g_string_append_printf(out, "\\u%04x", c);
                else
                    g_string_append_c(out, (char)c);
            }
            i++;
            continue;
        }
        size_t len = (size_t)g_utf8_skip[c];
        const gchar *end;
        if (len <= n - i && g_utf8_validate((const gchar *)p + i, (gssize)len, &end) &&
            (size_t)(end - (const gchar *)(p + i)) == len) {
            gunichar u = g_utf8_get_char((const gchar *)p + i);
            if ((u >= 0x80 && u < 0xa0) || u == 0x2028 || u == 0x2029)
                g_string_append_printf(out, "\\u%04x", u);
            else
                g_string_append_len(out, (const gchar *)p + i, (gssize)len);
            i += len;
        } else {
            g_string_append(out, "\xef\xbf\xbd");
            clean = FALSE;
            i++;
        }
    }
    g_string_append_c(out, '"');
    return clean;
}

/* Random network-like bytes: mostly printable ASCII, with quotes,
 * backslashes, controls, DEL, valid and broken UTF-8, C1 controls, line
 * separators, bidi controls, non-characters and planes past the BMP. */
static size_t random_bytes(GRand *r, uint8_t *p, size_t max)
{
    static const char *const pieces[] = {
        "\"", "\\", "\t", "\r", "\n", "\x01", "\x1b[31m", "\x7f", "\0",
        "\xc2\x85", "\xc2\xa0", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xe2\x80\xae", "\xe2\x81\xa6",
        "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xf3\xa0\x80\x81", "\xef\xbf\xbe", "\xed\xa0\x80",
        "\xc0\xaf", "\xe0\x80\xaf", "\xf4\x90\x80\x80", "\xff", "\xfe", "\xf8\x88\x80\x80\x80",
        "\x80", "\xe4\xb8", "\xf0\x9f", "\xc3",
    };
    size_t n = (size_t)g_rand_int_range(r, 0, (gint32)max + 1);
    size_t i = 0;
    while (i < n) {
        int k = g_rand_int_range(r, 0, 100);
        if (k < 80) {
            p[i++] = (uint8_t)g_rand_int_range(r, 0x20, 0x7f);
        } else if (k < 95) {
            const char *s = pieces[g_rand_int_range(r, 0, G_N_ELEMENTS(pieces))];
            size_t len = s[0] ? strlen(s) : 1;
            for (size_t j = 0; j < len && i < n; j++)
                p[i++] = (uint8_t)s[j];
        } else {
            p[i++] = (uint8_t)g_rand_int_range(r, 0, 256);
        }
    }
    return n;
}

static void test_escape_same(void)
{
    GRand *r = g_rand_new_with_seed(20261127);
    uint8_t in[600];
    for (int round = 0; round < 20000; round++) {
        size_t n = random_bytes(r, in, round % 10 ? 40 : sizeof(in));
        /* a string already partly full, so that escapes cross a growth */
        size_t pre = (size_t)g_rand_int_range(r, 0, 70);
        GString *a = g_string_sized_new((gsize)g_rand_int_range(r, 1, 64));
        GString *b = g_string_new(NULL);
        for (size_t j = 0; j < pre; j++) {
            g_string_append_c(a, 'p');
            g_string_append_c(b, 'p');
        }
        mt_esc_text(a, in, n);
        ref_esc_text(b, in, n);
        g_assert_cmpuint(a->len, ==, b->len);
        g_assert_true(memcmp(a->str, b->str, a->len) == 0);
        g_assert_cmpint(a->str[a->len], ==, 0);
        g_string_truncate(a, pre);
        g_string_truncate(b, pre);
        gboolean ca = mt_esc_json(a, in, n), cb = ref_esc_json(b, in, n);
        g_assert_cmpint(ca, ==, cb);
        g_assert_cmpuint(a->len, ==, b->len);
        g_assert_true(memcmp(a->str, b->str, a->len) == 0);
        g_assert_cmpint(a->str[a->len], ==, 0);
        g_assert_true(g_utf8_validate(a->str, (gssize)a->len, NULL));
        g_string_free(a, TRUE);
        g_string_free(b, TRUE);
    }
    g_rand_free(r);
}

static void test_numbers_same(void)
{
    static const uint64_t fixed[] = { 0, 1, 9, 10, 99, 100, 65535, 4294967295u,
                                      4294967296u, UINT64_MAX / 10, UINT64_MAX };
    GRand *r = g_rand_new_with_seed(7);
    GString *g = g_string_new(NULL);
    for (int i = 0; i < 20000; i++) {
        uint64_t v = i < (int)G_N_ELEMENTS(fixed)
                         ? fixed[i]
                         : ((uint64_t)g_rand_int(r) << 32 | g_rand_int(r)) >> g_rand_int_range(r, 0, 64);
        char want[32];
        g_snprintf(want, sizeof(want), "%" G_GUINT64_FORMAT, v);
        g_string_truncate(g, 0);
        mt_append_u64(g, v);
        g_assert_cmpstr(g->str, ==, want);
        uint32_t h = (uint32_t)v;
        int min = g_rand_int_range(r, 1, 5);
        g_snprintf(want, sizeof(want), "%0*x", min, h);
        char got[16];
        *mt_put_hex(got, h, min) = '\0';
        g_assert_cmpstr(got, ==, want);
    }
    /* IPv4 by hand, IPv6 through mt_endpoint_ip */
    struct mt_endpoint e = { .family = 4, .addr = { 10, 0, 255, 7 } };
    g_string_truncate(g, 0);
    mt_append_ip(g, &e);
    g_assert_cmpstr(g->str, ==, "10.0.255.7");
    struct mt_endpoint e6 = { .family = 6, .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };
    g_string_truncate(g, 0);
    mt_append_ip(g, &e6);
    g_assert_cmpstr(g->str, ==, "2001:db8::1");
    g_string_free(g, TRUE);
    g_rand_free(r);
}

/* The cache gives what a fresh format gives, whatever the order of times
 * (back, forth, the same second, out of range). */
static void test_time_cache(void)
{
    GRand *r = g_rand_new_with_seed(3);
    struct mt_time_cache c = { .valid = false };
    GString *a = g_string_new(NULL), *b = g_string_new(NULL);
    int64_t t = 1700000000123456LL;
    for (int i = 0; i < 20000; i++) {
        if (t > INT64_MAX / 2 || t < INT64_MIN / 2)
            t = 0; /* room for the steps below */
        switch (g_rand_int_range(r, 0, 6)) {
        case 0: t += g_rand_int_range(r, 0, 2000); break;            /* same second, mostly */
        case 1: t += g_rand_int_range(r, 0, 3000000); break;          /* next seconds */
        case 2: t -= g_rand_int_range(r, 0, 3000000); break;          /* back */
        case 3: t = (int64_t)g_rand_int(r) * 1000000 - 999999; break; /* anywhere, + and - */
        case 4: t = g_rand_boolean(r) ? INT64_MIN + g_rand_int_range(r, 0, 5)
                                      : INT64_MAX - g_rand_int_range(r, 0, 5);
                break;
        default: t = 253402300799999999LL + g_rand_int_range(r, -2, 3); break; /* year 9999 */
        }
        g_string_truncate(a, 0);
        g_string_truncate(b, 0);
        mt_fmt_time_cached(a, &c, t);
        mt_fmt_time(b, t);
        g_assert_cmpstr(a->str, ==, b->str);
    }
    g_string_truncate(b, 0);
    mt_fmt_time(b, -1);
    g_assert_cmpstr(b->str, ==, "1969-12-31T23:59:59.999999Z");
    g_string_free(a, TRUE);
    g_string_free(b, TRUE);
    g_rand_free(r);
}

/* ESMTP parameters as a JSON object: each keyword once, upper-cased, the
 * first value kept (smtp-large's client sends "size=N SIZE=N"). */
static void test_esmtp_params(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { NULL, "{}" },
        { "", "{}" },
        { "   ", "{}" },
        { "SIZE=454 BODY=8BITMIME SMTPUTF8", "{\"SIZE\":\"454\",\"BODY\":\"8BITMIME\",\"SMTPUTF8\":null}" },
        { "size=5309661 SIZE=5309661", "{\"SIZE\":\"5309661\"}" },
        { "SIZE=1 body=7BIT Size=2 BODY=8BITMIME size", "{\"SIZE\":\"1\",\"BODY\":\"7BIT\"}" },
        { "A B a b C=", "{\"A\":null,\"B\":null,\"C\":\"\"}" },
        { "  X=1   Y=\"q\"  ", "{\"X\":\"1\",\"Y\":\"\\\"q\\\"\"}" },
        { "=v =w", "{\"\":\"v\"}" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        GString *b = g_string_new(NULL);
        mt_json_esmtp_params(b, cases[i].in);
        g_assert_cmpstr(b->str, ==, cases[i].out);
        g_string_free(b, TRUE);
    }
    /* many keywords, all distinct and each repeated: no name twice */
    GString *in = g_string_new(NULL);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 300; i++)
            g_string_append_printf(in, "%s%d=%d ", r ? "k" : "K", i, r);
    GString *b = g_string_new(NULL);
    mt_json_esmtp_params(b, in->str);
    g_assert_nonnull(strstr(b->str, "\"K299\":\"0\""));
    g_assert_null(strstr(b->str, ":\"1\""));
    g_string_free(b, TRUE);
    g_string_free(in, TRUE);
}

/* ---- commands and replies as records (mt_output_opts.handoff_records) ---- */

#define B(s) ((struct mt_bytes){ (const uint8_t *)(s), sizeof(s) - 1 })

static void collect(void *ud, const char *p, size_t n)
{
    g_string_append_len(ud, p, (gssize)n);
}

/* The events of the round trip: commands and replies with what the
 * network can put in them (NUL, invalid UTF-8, controls, empty fields),
 * notes and secrets, and other events between them, printed as they are
 * (SESSION_START prints nothing in JSON: an empty frame). */
static void record_events(struct mt_event *evs, size_t *n, const struct mt_session_info *si)
{
    static const struct mt_bytes lines1[] = { B("250-mail.example.test"), B("250-AUTH PLAIN"),
                                              B("250 8BITMIME") };
    static const struct mt_bytes lines2[] = { B("* OK [UIDNEXT 2] \xff\xfe bad\0nul") };
    static const struct mt_bytes lines3[] = { B("") };
    size_t k = 0;
    evs[k++] = (struct mt_event){ .type = MT_EV_SESSION_START };
    evs[k++] = (struct mt_event){ .type = MT_EV_COMMAND,
                                  .u.cmd = { .verb = B("EHLO"), .arg = B("client"),
                                             .line = B("EHLO client") } };
    evs[k++] = (struct mt_event){ .type = MT_EV_REPLY,
                                  .u.reply = { .code = "250", .lines = lines1, .nlines = 3,
                                               .cmd_pkt = 4, .cmd_verb = B("EHLO") } };
    evs[k++] = (struct mt_event){ .type = MT_EV_COMMAND,
                                  .u.cmd = { .tag = B("a1"), .verb = B("LOGIN"),
                                             .arg = B("bob \"p\\\"w\x01\""),
                                             .line = B("a1 LOGIN bob \"p\\\"w\x01\""),
                                             .note = "user=\"bob\" password=\"p\\\"w\"",
                                             .secret = true } };
    evs[k++] = (struct mt_event){ .type = MT_EV_COMMAND,
                                  .u.cmd = { .arg = B("dXNlcgBwYXNz\0x"),
                                             .line = B("dXNlcgBwYXNz\0x"),
                                             .note = "\xe4\xb8\xad password=\"x\"",
                                             .auth_data = true } };
    evs[k++] = (struct mt_event){ .type = MT_EV_ANOMALY,
                                  .u.anomaly = { .kind = MT_AN_IMAP_SYNTAX, .dir = MT_S2C,
                                                 .detail = "quoted string not closed" } };
    evs[k++] = (struct mt_event){ .type = MT_EV_REPLY,
                                  .u.reply = { .tag = B("*"), .code = "OK", .lines = lines2,
                                               .nlines = 1, .note = "a note" } };
    evs[k++] = (struct mt_event){ .type = MT_EV_REPLY,
                                  .u.reply = { .code = NULL, .lines = lines3, .nlines = 1 } };
    evs[k++] = (struct mt_event){ .type = MT_EV_REPLY, .u.reply = { .code = "+" } };
    evs[k++] = (struct mt_event){ .type = MT_EV_COMMAND };
    evs[k++] = (struct mt_event){ .type = MT_EV_TLS };
    for (size_t i = 0; i < k; i++) {
        evs[i].sess = si;
        evs[i].proto = i % 2 ? MT_PROTO_IMAP : MT_PROTO_SMTP;
        evs[i].ts_us = 1700000000123456LL + (int64_t)i * 999999;
        evs[i].pkt = 3 + i;
    }
    *n = k;
}

/* The record frames (kind C or R) in a hand-over: a frame is a kind byte,
 * its payload's length (4 bytes, this machine's order) and the payload. */
static unsigned record_frames(const GString *h)
{
    unsigned n = 0;
    for (size_t at = 0; at + 5 <= h->len;) {
        uint32_t len;
        memcpy(&len, h->str + at + 1, sizeof len);
        n += h->str[at] == 'C' || h->str[at] == 'R';
        at += 5 + len;
    }
    return n;
}

/* How print_events prints: all on one output; on a front that hands
 * commands and replies off as records; the same, with the front printing
 * them itself for a stretch (mt_output_print_here), as the reading thread
 * does while the message thread is behind. */
enum how { DIRECT, RECORDS, RECORDS_SOMETIMES };

static char *print_events(const struct mt_output_opts *base, struct mt_event *evs, size_t n,
                          enum how how)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    struct mt_output_opts oo = *base;
    oo.out = f;
    char err[128];
    struct mt_output *back = mt_output_new(&oo, err, sizeof(err));
    g_assert_nonnull(back);
    if (how == DIRECT) {
        for (size_t i = 0; i < n; i++)
            mt_output_event(back, &evs[i]);
    } else {
        GString *handed = g_string_new(NULL);
        struct mt_output_opts fo = *base;
        fo.handoff = collect;
        fo.handoff_ud = handed;
        fo.handoff_records = true;
        struct mt_output *front = mt_output_new(&fo, err, sizeof(err));
        for (size_t i = 0; i < n; i++) {
            /* printed here from the first command up to the second, and
             * from the second-last reply on (and so the command without
             * fields): 5 of the 8 commands and replies */
            if (how == RECORDS_SOMETIMES && (i == 1 || i == 3 || i == 7))
                mt_output_print_here(front, i != 3);
            mt_output_event(front, &evs[i]);
            if (i % 3 == 2) /* several hand-overs, as before each message */
                mt_output_flush(front);
        }
        mt_output_flush(front);
        /* the commands and replies go as records, but for those printed on
         * this side while it was asked to */
        g_assert_cmpuint(record_frames(handed), ==, how == RECORDS_SOMETIMES ? 3 : 8);
        g_assert_true(mt_output_frames(back, handed->str, handed->len));
        /* a cut or damaged hand-over is refused, not read past its end (on
         * an output of its own: the frames before the damage are printed) */
        char *scratch = NULL;
        size_t scratch_len = 0;
        FILE *sf = open_memstream(&scratch, &scratch_len);
        oo.out = sf;
        struct mt_output *other = mt_output_new(&oo, err, sizeof(err));
        g_assert_false(mt_output_frames(other, handed->str, handed->len - 1));
        g_assert_false(mt_output_frames(other, handed->str, 3));
        GString *bad = g_string_new_len(handed->str, (gssize)handed->len);
        bad->str[0] = 'X'; /* no such kind */
        g_assert_false(mt_output_frames(other, bad->str, bad->len));
        g_string_free(bad, TRUE);
        mt_output_free(other);
        fclose(sf);
        g_free(scratch);
        mt_output_free(front);
        g_string_free(handed, TRUE);
    }
    mt_output_free(back);
    fclose(f);
    return text;
}

/* What an output prints of events handed to it as records is what it
 * prints of the events themselves, byte for byte, in JSON and in text,
 * redacted or not. */
static void test_records(void)
{
    struct mt_session_info si = { .id = 3, .proto = MT_PROTO_SMTP,
                                  .client = { .family = 4, .addr = { 192, 0, 2, 1 }, .port = 40000 },
                                  .server = { .family = 4, .addr = { 192, 0, 2, 25 }, .port = 25 } };
    struct mt_event evs[16];
    size_t n;
    record_events(evs, &n, &si);
    for (int fmt = 0; fmt < 2; fmt++)
        for (int redact = 0; redact < 2; redact++) {
            struct mt_output_opts oo = { .format = fmt ? MT_FMT_JSON : MT_FMT_TEXT,
                                         .redact = redact };
            char *direct = print_events(&oo, evs, n, DIRECT);
            char *frames = print_events(&oo, evs, n, RECORDS);
            char *mixed = print_events(&oo, evs, n, RECORDS_SOMETIMES);
            g_assert_cmpstr(frames, ==, direct);
            g_assert_cmpstr(mixed, ==, direct);
            g_assert_cmpuint(strlen(direct), >, 200);
            g_free(direct);
            g_free(frames);
            g_free(mixed);
        }
}

/* mt_utf8_cut: at most max bytes, never ending inside a UTF-8 character,
 * and never backing off more than a character's three continuation bytes
 * (on bytes that are not UTF-8, it cuts at max less at most 3). */
static void test_utf8_cut(void)
{
    static const struct {
        const char *p;
        size_t max, want;
    } rows[] = {
        { "abc", 5, 3 },                       /* shorter: all of it */
        { "abc", 3, 3 },
        { "abcdef", 4, 4 },
        { "ab\xc3\xa9", 3, 2 },                /* inside a 2-byte character */
        { "ab\xc3\xa9", 4, 4 },
        { "ab\xc3\xa9z", 4, 4 },               /* right after one */
        { "a\xe2\x82\xac", 2, 1 },             /* inside a 3-byte one */
        { "a\xe2\x82\xac", 3, 1 },
        { "a\xf0\x9f\x93\xa7", 4, 1 },         /* inside a 4-byte one */
        { "a\xf0\x9f\x93\xa7", 5, 5 },
        { "\x80\x80\x80\x80\x80\x80", 5, 2 }, /* not UTF-8: 3 back at most */
        { "\xa9\xa9", 1, 0 },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        size_t n = strlen(rows[i].p);
        size_t got = mt_utf8_cut(rows[i].p, n, rows[i].max);
        if (got != rows[i].want)
            g_error("row %zu: %zu bytes kept of %zu (max %zu), expected %zu", i, got, n,
                    rows[i].max, rows[i].want);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/output/text-escape", test_text);
    g_test_add_func("/output/utf8-cut", test_utf8_cut);
    g_test_add_func("/output/json-escape", test_json);
    g_test_add_func("/output/time", test_time);
    g_test_add_func("/output/redact", test_redact);
    g_test_add_func("/output/safe-names", test_names);
    g_test_add_func("/output/escape-same-as-plain", test_escape_same);
    g_test_add_func("/output/numbers-same-as-printf", test_numbers_same);
    g_test_add_func("/output/time-cache", test_time_cache);
    g_test_add_func("/output/records-same-as-printed", test_records);
    g_test_add_func("/output/esmtp-params", test_esmtp_params);
    return g_test_run();
}
