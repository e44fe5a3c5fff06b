/* Unit tests for dissect/mime.c: header decoding in the charsets mail
 * really uses, RFC 2231 file names, the MIME tree and its paths, decoded
 * bodies and their hashes, and the caps (depth, parts, header size) with
 * generated bombs.  Fixtures are text files in data/mime/. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "mime.h"
#include "mime_int.h"
#include "smaps.h"
#include "traps.h"

struct seen {
    unsigned n[MT_AN__COUNT];
    char last[MT_AN__COUNT][MT_CAP_ANOMALY_DETAIL]; /* detail of the last one */
};

static void on_anomaly(void *ud, enum mt_anomaly a, const char *detail)
{
    struct seen *s = ud;

    g_assert_cmpint(a, <, MT_AN__COUNT);
    s->n[a]++;
    g_strlcpy(s->last[a], detail ? detail : "", sizeof s->last[a]);
    if (g_test_verbose())
        g_test_message("anomaly %d: %s", (int)a, detail ? detail : "(none)");
}

static struct mt_limits default_limits(void)
{
    struct mt_limits l;

    memset(&l, 0, sizeof l);
    mt_limits_default(&l);
    return l;
}

static gchar *load(const char *name, gsize *len)
{
    gchar *path = g_test_build_filename(G_TEST_DIST, "data", "mime", name, NULL);
    gchar *data = NULL;
    GError *err = NULL;

    g_file_get_contents(path, &data, len, &err);
    g_assert_no_error(err);
    g_free(path);
    return data;
}

/* The same bytes with every LF turned into CRLF, as sent on the wire. */
static gchar *to_crlf(const gchar *s, gsize len, gsize *out_len)
{
    GString *g = g_string_sized_new(len + len / 16);

    for (gsize i = 0; i < len; i++) {
        if (s[i] == '\n')
            g_string_append_c(g, '\r');
        g_string_append_c(g, s[i]);
    }
    *out_len = g->len;
    return g_string_free(g, FALSE);
}

static void parse_with(const void *data, gsize len, const struct mt_limits *lim,
                       struct mt_mime_result *r, struct seen *s)
{
    memset(s, 0, sizeof *s);
    mt_mime_parse(data, len, lim, r, on_anomaly, s);
}

static void parse_file(const char *name, gboolean crlf, struct mt_mime_result *r, struct seen *s)
{
    struct mt_limits lim = default_limits();
    gsize len, clen;
    gchar *data = load(name, &len);

    if (crlf) {
        gchar *c = to_crlf(data, len, &clen);
        g_free(data);
        data = c;
        len = clen;
    }
    parse_with(data, len, &lim, r, s);
    g_free(data);
}

static unsigned total_anomalies(const struct seen *s)
{
    unsigned t = 0;

    for (int i = 0; i < MT_AN__COUNT; i++)
        t += s->n[i];
    return t;
}

/* Text without the line end GMime may leave before a boundary. */
static gchar *chomp_dup(const char *s)
{
    gchar *v = g_strdup(s);
    gsize n = strlen(v);

    while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r'))
        v[--n] = '\0';
    return v;
}

static void assert_text(const char *got, const char *want)
{
    gchar *g = chomp_dup(got);

    g_assert_cmpstr(g, ==, want);
    g_free(g);
}

/* ---- headers ---------------------------------------------------------- */

struct header_case {
    const char *file;
    const char *subject;
    const char *from;
};

static const struct header_case header_cases[] = {
    { "subject-gbk.eml", "中文邮件测试", "张三 <zhang@example.cn>" },
    { "subject-gb2312.eml", "简体中文主题", "张三 <zhang@example.cn>" },
    /* U+20000 exists only in GB18030 (four-byte sequence), not in GBK */
    { "subject-gb18030.eml", "汉字\xf0\xa0\x80\x80扩展", "张三 <zhang@example.cn>" },
    { "subject-big5.eml", "繁體中文測試", "陳大文 <chan@example.tw>" },
    { "subject-latin1-qp.eml", "Café crème brûlée", "José Müller <jose@example.es>" },
    { "subject-utf8.eml", "Grüße 👋 привет", "Zoë <zoe@example.org>" },
};

static void test_headers_charsets(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(header_cases); i++) {
        const struct header_case *hc = &header_cases[i];
        struct mt_mime_result r;
        struct seen s;
        gchar *mid;

        g_test_message("%s", hc->file);
        parse_file(hc->file, i % 2 == 1, &r, &s);
        g_assert_cmpstr(r.headers.subject, ==, hc->subject);
        g_assert_cmpstr(r.headers.from, ==, hc->from);
        g_assert_cmpstr(r.headers.to, ==, "Li Si <lisi@example.cn>, wang@example.cn");
        g_assert_cmpstr(r.headers.cc, ==, "赵六 <zhao@example.cn>");
        g_assert_cmpstr(r.headers.date, ==, "Tue, 05 Mar 2024 10:00:00 +0800");
        mid = g_strdup_printf("<%s@example.cn>", hc->file);
        g_assert_cmpstr(r.headers.message_id, ==, mid);
        g_free(mid);
        g_assert_cmpuint(r.nparts, ==, 1);
        g_assert_cmpstr(r.parts[0].content_type, ==, "text/plain");
        assert_text(r.parts[0].text_utf8, "Body.");
        g_assert_cmpuint(total_anomalies(&s), ==, 0);
        mt_mime_result_clear(&r);
    }
}

struct raw_case {
    const char *subject_bytes; /* undeclared 8-bit header value */
    const char *want;
};

static const struct raw_case raw_cases[] = {
    /* UTF-8 as sent by SMTPUTF8 clients */
    { "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln", "Grüße aus Köln" },
    /* GBK bytes of 中文邮件 with no charset anywhere: GB18030 fallback */
    { "\xd6\xd0\xce\xc4\xd3\xca\xbc\xfe", "中文邮件" },
    /* Latin-1: neither UTF-8 nor GB18030 ("\xe9 " is no GB18030 pair) */
    { "caf\xe9 au lait", "café au lait" },
};

static void test_headers_raw_8bit(void)
{
    struct mt_limits lim = default_limits();

    for (gsize i = 0; i < G_N_ELEMENTS(raw_cases); i++) {
        gchar *msg = g_strdup_printf("From: a@example.org\nSubject: %s\n\nbody\n",
                                     raw_cases[i].subject_bytes);
        struct mt_mime_result r;
        struct seen s;

        parse_with(msg, strlen(msg), &lim, &r, &s);
        g_assert_cmpstr(r.headers.subject, ==, raw_cases[i].want);
        g_assert_cmpstr(r.headers.from, ==, "a@example.org");
        g_assert_null(r.headers.to);
        g_assert_null(r.headers.cc);
        mt_mime_result_clear(&r);
        g_free(msg);
    }
}

/* Padded Base64 words of one charset side by side, each of whole
 * characters or cutting one in two (RFC 2047 section 5 forbids that; some
 * mailers do it).  GMime alone dropped what followed the first padding:
 * "café" for the first subject, "你?" for the second, nothing at all for
 * the GBK ones.  Each row runs through the fast path and GMime's full
 * parse (mt_mime_force_gmime). */
struct header_row {
    const char *header; /* one or more header lines, LF-terminated */
    const char *subject, *from, *filename;
};

static const struct header_row split_words[] = {
    /* whole characters in each padded word, as RFC 2047 wants: GMime alone
     * gave "café" (the second word lost) */
    { "Subject: =?ISO-8859-1?B?Y2Fm6Q==?= =?ISO-8859-1?B?IGNy6G1l?=\n", "café crème", NULL,
      NULL },
    { "Subject: =?UTF-8?B?5L2g5Q==?= =?UTF-8?B?pb3kuJbnlYw=?=\n", "你好世界", NULL, NULL },
    /* folded, GBK, the first word one byte */
    { "Subject: =?GBK?B?1g==?=\n =?GBK?B?0M7E08q8/g==?=\n", "中文邮件", NULL, NULL },
    /* three words, the charset spelled two ways, text around them */
    { "Subject: Re: =?UTF-8?B?5L0=?= =?utf-8?B?oOWlveQ=?=\t=?UTF-8?B?uJbnlYw=?= !\n",
      "Re: 你好世界 !", NULL, NULL },
    /* not joined: two charsets; whole groups (GMime already right) */
    { "Subject: =?UTF-8?B?5L2g?= =?GBK?B?1tDOxA==?=\n", "你中文", NULL, NULL },
    { "Subject: =?GBK?B?uL28?= =?GBK?B?/i50eHQ=?=\n", "附件.txt", NULL, NULL },
    /* a display name */
    { "From: =?GBK?B?1Q==?= =?GBK?B?xcj9?= <zhang@example.cn>\n", NULL,
      "张三 <zhang@example.cn>", NULL },
    /* an attachment's name, in the disposition and in the type */
    { "Content-Type: application/pdf\n"
      "Content-Disposition: attachment;\n"
      " filename=\"=?UTF-8?B?5oql5ZE=?= =?UTF-8?B?iuS5pi5wZGY=?=\"\n",
      NULL, NULL, "报告书.pdf" },
    { "Content-Type: application/pdf;\n name=\"=?UTF-8?B?5oql5ZE=?= =?UTF-8?B?iuS5pi5wZGY=?=\"\n",
      NULL, NULL, "报告书.pdf" },
    /* Base64 and Q words of one charset, a character cut between them:
     * GMime alone converted each encoding's words apart, "??" for é and
     * 形挠始 (the rest read out of step) for 中文邮件 */
    { "Subject: =?UTF-8?Q?caf=C3?= =?UTF-8?B?qSBjcsOobWU=?=\n", "café crème", NULL, NULL },
    { "Subject: =?GBK?Q?=D6?= =?GBK?B?0M7E08q8/g==?=\n", "中文邮件", NULL, NULL },
    { "Subject: =?GBK?B?1tA=?= =?gbk?Q?=CE?=\n =?GBK?Q?=C4_?= =?GBK?B?08q8/g==?=\n",
      "中文 邮件", NULL, NULL },
    /* an escape cut between two Q words, '=' not before two hex digits,
     * then a Base64 word: as GMime reads the Q words */
    { "Subject: =?UTF-8?Q?a=4?= =?UTF-8?Q?1=ZZ_=C3?= =?UTF-8?B?qQ==?=\n", "aA=ZZ é", NULL,
      NULL },
    { "From: =?GBK?Q?=D5?= =?GBK?B?xcj9?= <zhang@example.cn>\n", NULL,
      "张三 <zhang@example.cn>", NULL },
    { "Content-Disposition: attachment;\n"
      " filename=\"=?UTF-8?B?5oql?= =?UTF-8?Q?=E5=91=8A.pdf?=\"\n",
      NULL, NULL, "报告.pdf" },
    /* Q words alone: GMime reads them as one already, nothing changed */
    { "Subject: =?UTF-8?Q?caf=C3?= =?UTF-8?Q?=A9?=\n", "café", NULL, NULL },
};

/* RFC 2231 sections in any order (section 3 allows it); GMime alone kept
 * "UTF-8''" in the name when section 0 was not first. */
static const struct header_row sections[] = {
    { "Content-Disposition: attachment;\n filename*1*=%E5%91%8A.pdf;\n"
      " filename*0*=UTF-8''%E6%8A%A5\n", NULL, NULL, "报告.pdf" },
    { "Content-Type: text/plain; name*2=.txt; name*1*=%BC%FE;\n"
      " name*0*=gbk'zh'%B8%BD; charset=us-ascii\n", NULL, NULL, "附件.txt" },
    /* in order, or without a charset: GMime was right already */
    { "Content-Disposition: attachment; filename*0*=UTF-8''%E6%8A%A5;\n"
      " filename*1*=%E5%91%8A.pdf\n", NULL, NULL, "报告.pdf" },
    { "Content-Disposition: attachment; filename*1=b.pdf; filename*0=a\n", NULL, NULL,
      "ab.pdf" },
};

static void check_header_rows(const struct header_row *rows, gsize n)
{
    struct mt_limits lim = default_limits();

    for (gsize i = 0; i < n; i++) {
        for (int gmime = 0; gmime < 2; gmime++) {
            gchar *msg = g_strdup_printf("%s\nbody\n", rows[i].header);
            struct mt_mime_result r;
            struct seen s;

            g_test_message("row %u, %s", (unsigned)i, gmime ? "GMime" : "fast path");
            mt_mime_force_gmime = gmime;
            parse_with(msg, strlen(msg), &lim, &r, &s);
            mt_mime_force_gmime = false;
            g_assert_cmpstr(r.headers.subject, ==, rows[i].subject);
            g_assert_cmpstr(r.headers.from, ==, rows[i].from);
            g_assert_cmpuint(r.nparts, ==, 1);
            g_assert_cmpstr(r.parts[0].filename, ==, rows[i].filename);
            mt_mime_result_clear(&r);
            g_free(msg);
        }
    }
}

static void test_headers_split_words(void)
{
    check_header_rows(split_words, G_N_ELEMENTS(split_words));
}

static void test_rfc2231_out_of_order(void)
{
    check_header_rows(sections, G_N_ELEMENTS(sections));
}

/* Encoded-word starts that never close: GMime's decoder looks for each
 * one's "?=" to the end of the field, so its time grows with the square of
 * the field (this 140 KB Subject: about 2 s, and a 2 MB one minutes).  The
 * field and what follows are not handed to GMime (MT_CAP_EWORD_STEPS), and
 * header_too_large says so; fields before it are kept, and closed words,
 * however many, are decoded. */
static void test_headers_eword_bomb(void)
{
    struct mt_limits lim = default_limits();
    GString *m = g_string_new("From: a@example.org\r\nSubject: ");
    struct mt_mime_result r;
    struct seen s;

    for (int i = 0; i < 20000; i++)
        g_string_append(m, "=?c?B?A");
    g_string_append(m, "\r\nTo: b@example.org\r\n\r\nbody\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_HEADER_TOO_LARGE], ==, 1);
    g_assert_nonnull(strstr(s.last[MT_AN_HEADER_TOO_LARGE], "unclosed encoded words"));
    g_assert_cmpstr(r.headers.from, ==, "a@example.org");
    g_assert_null(r.headers.subject);
    mt_mime_result_clear(&r);

    /* the same in a part's header block: the parts before it are kept */
    g_string_assign(m, "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                       "--b\r\n\r\nfirst\r\n--b\r\nContent-Type: text/plain; name=\"");
    for (int i = 0; i < 20000; i++)
        g_string_append(m, "=?c?B?A");
    g_string_append(m, "\"\r\n\r\nsecond\r\n--b--\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_HEADER_TOO_LARGE], ==, 1);
    g_assert_nonnull(strstr(s.last[MT_AN_HEADER_TOO_LARGE], "unclosed encoded words"));
    g_assert_cmpuint(r.nparts, >=, 2);
    assert_text(r.parts[1].text_utf8, "first");
    mt_mime_result_clear(&r);

    /* 15,000 closed words (210 KB, under header_max): decoded whole, no anomaly */
    g_string_assign(m, "From: a@example.org\r\nSubject: ");
    for (int i = 0; i < 15000; i++)
        g_string_append(m, "=?utf-8?q?a?= ");
    g_string_append(m, "\r\n\r\nbody\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    g_assert_cmpuint(strlen(r.headers.subject), ==, 15000);
    mt_mime_result_clear(&r);
    g_string_free(m, TRUE);
}

/* Header shapes GMime cannot take (mime_gmime_feed, caps.h): each row's
 * field, built by repeating `unit` `n` times between `pre` and `post`,
 * is not handed to GMime; header_too_large names why, and the fields and
 * parts around it are kept (the Cc after it, in the message's own block,
 * and the body), but for the rows marked: past MT_CAP_GMIME_FIELDS every
 * later field is left out (the Cc), and a line starting with "--" ends
 * the input (GMime may read it as a boundary).  Before the guard, GMime
 * crashed on the first two (at larger sizes), took seconds to minutes on
 * the next ones (growing with the square of the field), dropped the whole
 * message for the long name, and the embedded message's words bypassed
 * the existing cut; before fields were left out one by one, the input was
 * cut at the first (no Cc, no body). */
enum guard_keeps { KEEP_ALL, KEEP_BODY, KEEP_INNER, KEEP_CUT };
static const struct guard_row {
    const char *pre, *unit, *post;
    int n;
    const char *why;
    int inner;         /* set: each unit is a field, unit + inner * word */
    const char *word;
    enum guard_keeps keeps; /* KEEP_INNER: the Cc is the embedded message's */
} guard_rows[] = {
    { "To: ", "g:", "", 1100, "colons", 0, NULL, KEEP_ALL },
    { "Subject: =?", "x", "?B?YQ==?=", 1100000, "bytes (more than 1048576)", 0, NULL, KEEP_ALL },
    { "To: ", "a, ", "x@y", 4000, "items without an address", 0, NULL, KEEP_ALL },
    /* many short address fields (bounded by commas x length) */
    { "", "To:", "To: x@y", 300, "items without an address", 127, "aaaa,", KEEP_ALL },
    /* an '@' or '<' in a comment is no address */
    { "Cc: ", "(x@y) a, ", "x@y", 2000, "items without an address", 0, NULL, KEEP_ALL },
    { "Content-Type: text/plain", "; p=v", "", 6000, "too many parameters", 0, NULL, KEEP_ALL },
    { "Content-Disposition: attachment", "; f*1=a", "", 6000, "too many parameters", 0, NULL, KEEP_ALL },
    { "", "X", ": v", 4224, "field name of 4224 bytes", 0, NULL, KEEP_ALL },
    { "Date: ", "1 ", "", 2100, "Date field", 0, NULL, KEEP_ALL },
    { "", "X-H: v\r\n", "X-H: v", 16384, "more than 16384 header fields", 0, NULL, KEEP_BODY },
    { "X-Note:", " =?a?Q?x?= =?b?Q?x?=", "", 520, "changing charset", 0, NULL, KEEP_ALL },
    /* fields of 2000 unclosed starts each (14 M steps, under
     * MT_CAP_EWORD_STEPS): the tenth passes MT_CAP_EWORD_TOTAL */
    { "", "X-E:", "X-E: v", 11, "in all", 2000, " =?c?B?A", KEEP_ALL },
    /* where GMime's error recovery reads quotes, comments and brackets
     * otherwise than a plain walk would (found by a second audit) */
    { "To: x\", ", "a a, ", "x@y", 3000, "items without an address", 0, NULL, KEEP_ALL },
    { "To: ", "a@[(], a a, ", "x@y", 2000, "items without an address", 0, NULL, KEEP_ALL },
    { "To: x\", ", "g:", "", 1100, "colons", 0, NULL, KEEP_ALL },
    { "Content-Type: text/plain (\")", "; p=v", "", 6000, "too many parameters", 0, NULL, KEEP_ALL },
    { "Content-Type: text/plain; a=x\"", "; p=v", "", 6000, "too many parameters", 0, NULL, KEEP_ALL },
    /* encoded-word starts GMime looks for the end of, charset or not */
    { "Subject: ", "=?\xe9?B?A", "", 20000, "unclosed encoded words", 0, NULL, KEEP_ALL },
    { "Subject: ", "=??B?A", "", 20000, "unclosed encoded words", 0, NULL, KEEP_ALL },
    /* embedded header blocks: a digest's part without a Content-Type, a
     * type GMime reads past a comment */
    { "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nTo: ", "a a, ", "x@y",
      3000, "items without an address", 0, NULL, KEEP_INNER },
    { "Content-Type: (c) message/rfc822\r\n\r\nSubject: ", "=?c?B?A", "", 20000,
      "unclosed encoded words", 0, NULL, KEEP_INNER },
    /* a third audit: GMime ends a part's block at a boundary line, takes
     * a digest part with a type it cannot parse for message/rfc822 */
    { "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\nContent-Type: text/plain\r\n"
      "--d\r\n\r\nTo: ", "a a, ", "x@y", 3000, "items without an address", 0, NULL, KEEP_INNER },
    { "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\nContent-Type: ;\r\n\r\n"
      "To: ", "a a, ", "x@y", 3000, "items without an address", 0, NULL, KEEP_INNER },
    /* a fourth audit: a field named "--x", a quote after a word, a quote
     * after "==" in a parameter list */
    { "--x: ", "=?c?B?A", "", 20000, "unclosed encoded words", 0, NULL, KEEP_CUT },
    { "To: x \"", "a a, ", "\" <x@y>", 3000, "items without an address", 0, NULL, KEEP_ALL },
    { "To: x \", ", "g:", "\" <x@y>", 1100, "colons", 0, NULL, KEEP_ALL },
    { "Content-Type: text/plain; a==\"", "; p=v", "\"", 6000, "too many parameters", 0, NULL, KEEP_ALL },
    /* a fifth: a quote after a colon that opens no group ("<:") */
    { "To: <:\"", "a a, ", "\"", 3000, "items without an address", 0, NULL, KEEP_ALL },
    /* a sixth: short address fields of groups, each under the caps above
     * (GMime kept 500 bytes per group: 3.9 GB for 16 MB) */
    { "", "To:", "To: x@y", 40, "group colons in all", 512, "g:", KEEP_ALL },
    /* and of many real addresses, of many parameters (GMime kept 300 and
     * 340 bytes for each: 930 MB for 15 MB of addresses) */
    { "", "To:", "To: x@y", 70, "items in all", 1000, " a@b,", KEEP_ALL },
    { "", "Content-Type: text/plain", "X: v", 1100, "parameters in all", 64, "; p=v", KEEP_ALL },
    /* an eighth: parameters hidden in a Base64 word (GMime reads them
     * after decoding: 75,000 took it 71 s), and RFC 2231 values cycling
     * charsets (a converter opened for each) */
    { "Content-Type: text/plain =?us-ascii?B?", "OyBwPXY7IHA9djsgcD12", "?=", 6000, "parameters in all", 0, NULL,
      KEEP_ALL },
    { "Content-Disposition: attachment", "; a*=koi8-r''%E1; b*=big5''%E1", "", 600,
      "parameter values changing charset", 0, NULL, KEEP_ALL },
    /* an embedded message's header block */
    { "Content-Type: message/rfc822\r\n\r\nSubject: ", "=?c?B?A", "", 20000,
      "unclosed encoded words", 0, NULL, KEEP_INNER },
};

static void test_headers_gmime_guard(void)
{
    struct mt_limits lim = default_limits();

    for (gsize i = 0; i < G_N_ELEMENTS(guard_rows); i++) {
        const struct guard_row *g = &guard_rows[i];
        GString *m = g_string_new("From: a@example.org\r\nSubject: kept\r\n");
        struct mt_mime_result r;
        struct seen s;

        g_string_append(m, g->pre);
        for (int k = 0; k < g->n; k++) {
            g_string_append(m, g->unit);
            for (int w = 0; w < g->inner; w++)
                g_string_append(m, g->word);
            if (g->inner)
                g_string_append(m, "\r\n");
        }
        g_string_append(m, g->post);
        g_string_append(m, "\r\nCc: after@example.org\r\n\r\nbody\r\n");
        g_test_message("row %u (%s)", (unsigned)i, g->why);
        parse_with(m->str, m->len, &lim, &r, &s);
        g_assert_cmpuint(s.n[MT_AN_HEADER_TOO_LARGE], ==, 1);
        g_assert_nonnull(strstr(s.last[MT_AN_HEADER_TOO_LARGE], g->why));
        g_assert_nonnull(strstr(s.last[MT_AN_HEADER_TOO_LARGE],
                                g->keeps == KEEP_CUT ? "input cut at byte"
                                                     : "header field(s) left out, the first at"));
        g_assert_cmpstr(r.headers.from, ==, "a@example.org");
        g_assert_cmpstr(r.headers.subject, ==, "kept");
        g_assert_cmpstr(r.headers.cc, ==, g->keeps == KEEP_ALL ? "after@example.org" : NULL);
        bool body = false;
        for (size_t k = 0; k < r.nparts; k++)
            body |= r.parts[k].text_utf8 && strcmp(r.parts[k].text_utf8, "body\r\n") == 0;
        g_assert_true(body == (g->keeps != KEEP_CUT));
        /* what GMime was handed passes the guard as it stands */
        uint64_t left_out = 0;
        g_assert_true(mime_guard_selfcheck((const uint8_t *)m->str, m->len, &left_out));
        g_assert_cmpuint(left_out, >=, g->keeps == KEEP_CUT ? 0 : 1);
        mt_mime_result_clear(&r);
        g_string_free(m, TRUE);
    }
}

/* Embedded messages sent in base64 are parsed again from their decoded
 * bytes: each such parse spends the same budgets as the message, not new
 * ones (three parts whose To costs about half of MT_CAP_ADDR_STEPS each:
 * the second passes it, so does the third; each of their bodies is
 * kept).  Each used to start afresh, so a message of many
 * such parts cost GMime 15 s for 4 MB. */
static void test_headers_gmime_guard_embedded(void)
{
    struct mt_limits lim = default_limits();
    GString *inner = g_string_new("To: ");
    GString *m = g_string_new("From: a@example.org\r\nContent-Type: multipart/mixed; "
                              "boundary=b\r\n\r\n");
    struct mt_mime_result r;
    struct seen s;

    for (int k = 0; k < 2400; k++)
        g_string_append(inner, "a, ");
    g_string_append(inner, "x@y\r\n\r\nbody\r\n");
    gchar *b64 = g_base64_encode((const guchar *)inner->str, inner->len);
    for (int k = 0; k < 3; k++)
        g_string_append_printf(m, "--b\r\nContent-Type: message/rfc822\r\n"
                                  "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n", b64);
    g_string_append(m, "--b--\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_HEADER_TOO_LARGE], ==, 1);
    g_assert_nonnull(strstr(s.last[MT_AN_HEADER_TOO_LARGE], "an embedded message: address"));
    g_assert_nonnull(strstr(s.last[MT_AN_HEADER_TOO_LARGE], "1 header field(s) left out"));
    /* the To fields are left out, the bodies after them kept */
    unsigned bodies = 0;
    for (size_t k = 0; k < r.nparts; k++)
        bodies += r.parts[k].text_utf8 && strcmp(r.parts[k].text_utf8, "body\r\n") == 0;
    g_assert_cmpuint(bodies, ==, 3);
    mt_mime_result_clear(&r);
    g_free(b64);
    g_string_free(inner, TRUE);
    g_string_free(m, TRUE);
}

/* Caps over all of GMime's parses of one message (a seventh audit).
 * Lines starting with "--": three quoted-printable embedded messages of
 * 500 digest parts each, under the cap one by one (8 x 10 + 1024 with
 * mime_parts_max 10), over it together; each parse counted on its own
 * (20 such messages of 9,000 parts, below the depth walked: 817 MB).  Embedded messages: a digest
 * of 5,000 empty parts, each one for GMime (241 MB for 1.5 MB of such). */
static void test_gmime_message_caps(void)
{
    struct mt_limits lim = default_limits();
    struct mt_mime_result r;
    struct seen s;
    GString *m = g_string_new("From: a@example.org\r\nContent-Type: multipart/mixed; "
                              "boundary=s\r\n\r\n--s\r\n\r\nbody\r\n");

    lim.mime_parts_max = 10;
    lim.mime_depth_max = 2; /* the digests' parts are not walked, as at depth 31 */
    for (int k = 0; k < 3; k++) {
        g_string_append(m, "--s\r\nContent-Type: message/rfc822\r\n"
                           "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
                           "From: b@example.org\r\nContent-Type: multipart/digest; "
                           "boundary=d\r\n\r\n");
        for (int i = 0; i < 500; i++)
            g_string_append(m, "=2D-d\r\n\r\nx\r\n");
        g_string_append(m, "=2D-d--\r\n");
    }
    g_string_append(m, "--s--\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_MIME_PARTS], ==, 1);
    g_assert_nonnull(strstr(s.last[MT_AN_MIME_PARTS], "an embedded message: more than 1104 "
                                                      "boundary lines in the message"));
    g_assert_cmpuint(r.nparts, >=, 2);
    assert_text(r.parts[1].text_utf8, "body");
    mt_mime_result_clear(&r);

    lim = default_limits();
    g_string_assign(m, "From: a@example.org\r\nContent-Type: multipart/digest; "
                       "boundary=d\r\n\r\n--d\r\nContent-Type: text/plain\r\n\r\n"
                       "body\r\n");
    for (int i = 0; i < 5000; i++)
        g_string_append(m, "--d\r\n\r\nx\r\n");
    g_string_append(m, "--d--\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_HEADER_TOO_LARGE], ==, 1);
    g_assert_nonnull(strstr(s.last[MT_AN_HEADER_TOO_LARGE], "more than 1024 embedded messages, "
                                                            "input cut at byte"));
    g_assert_cmpuint(r.nparts, >=, 2);
    assert_text(r.parts[1].text_utf8, "body");
    mt_mime_result_clear(&r);
    g_string_free(m, TRUE);
}

/* What the guard lets through: a long list of real addresses, a few
 * parameters, closed words in a few charsets, an embedded message. */
static void test_headers_gmime_guard_legit(void)
{
    struct mt_limits lim = default_limits();
    GString *m = g_string_new("From: a@example.org\r\nTo: ");
    struct mt_mime_result r;
    struct seen s;

    for (int k = 0; k < 3000; k++)
        g_string_append_printf(m, "%s\"User: No. %d\" <user%d@example.org>", k ? ", " : "", k, k);
    g_string_append(m, "\r\nSubject:");
    for (int k = 0; k < 500; k++)
        g_string_append(m, k % 2 ? " =?utf-8?Q?b?=" : " =?iso-8859-1?Q?a?=");
    g_string_append(m, "\r\nContent-Type: message/rfc822; a=1; b=2; c=3; d=4; e=5; f=6; g=7;"
                       " h=8; i=9; j=10\r\n\r\nFrom: inner@example.org\r\nSubject: "
                       "=?utf-8?B?5Lit5paH?=\r\n\r\ninner body\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    g_assert_nonnull(r.headers.to);
    g_assert_nonnull(strstr(r.headers.to, "user2999@example.org"));
    g_assert_cmpuint(strlen(r.headers.subject), ==, 500);
    g_assert_cmpuint(r.nparts, ==, 2);
    mt_mime_result_clear(&r);

    /* an embedded message sent in base64 (RFC 2045 forbids it; mailers do
     * it): its body is no header block for GMime, and its 61,000 lines
     * (more than MT_CAP_GMIME_FIELDS) and a line of 1.5 MB after them
     * are no fields */
    g_string_assign(m, "From: a@example.org\r\nContent-Type: message/rfc822\r\n"
                       "Content-Transfer-Encoding: base64\r\n\r\n");
    g_string_append(m, "U3ViamVjdDogaW5uZXINCg0K\r\n"); /* "Subject: inner\r\n\r\n" */
    for (int k = 0; k < 61000; k++)
        g_string_append(m, "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4\r\n");
    for (int k = 0; k < 1500000 / 4; k++)
        g_string_append(m, "eHh4");
    g_string_append(m, "\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    g_assert_cmpuint(r.nparts, ==, 2);
    g_assert_cmpuint(r.parts[1].data_len, >, 4000000); /* nothing cut */
    mt_mime_result_clear(&r);
    g_string_free(m, TRUE);
}

/* A boundary longer than GMime finds (4223 bytes or more): both paths
 * leave the body whole (mime_no_boundary), the fast path by leaving any
 * longer than MT_CAP_GMIME_BOUNDARY to GMime; at the cap, both split it.
 * The fast path used to split the longer one too. */
static void test_boundary_gmime_max(void)
{
    struct mt_limits lim = default_limits();

    for (int extra = 0; extra < 2; extra++) {
        for (int gmime = 0; gmime < 2; gmime++) {
            GString *b = g_string_new(NULL), *m = g_string_new(NULL);
            struct mt_mime_result r;
            struct seen s;

            unsigned bl = extra ? 4300 : MT_CAP_GMIME_BOUNDARY;
            for (unsigned k = 0; k < bl; k++)
                g_string_append_c(b, 'B');
            g_string_printf(m, "From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: "
                               "multipart/mixed; boundary=\"%s\"\r\n\r\n--%s\r\n\r\nx\r\n--%s\r\n"
                               "\r\ny\r\n--%s--\r\n", b->str, b->str, b->str, b->str);
            mt_mime_force_gmime = gmime;
            parse_with(m->str, m->len, &lim, &r, &s);
            mt_mime_force_gmime = false;
            g_test_message("boundary of %u bytes, %s", bl, gmime ? "GMime" : "fast path");
            g_assert_cmpuint(s.n[MT_AN_MIME_NO_BOUNDARY], ==, (unsigned)extra);
            g_assert_cmpuint(r.nparts, ==, extra ? 1 : 3);
            mt_mime_result_clear(&r);
            g_string_free(b, TRUE);
            g_string_free(m, TRUE);
        }
    }
}

/* message/rfc822 nested 12 deep around a 4 MB text: each level wrote its
 * message out again (12 copies); past MT_CAP_MIME_EMBEDDED times the
 * message's bytes and MT_CAP_MIME_EMBEDDED_FLOOR the deeper levels keep no
 * bytes (message_truncated), and the innermost text part is still there. */
static void test_embedded_budget(void)
{
    struct mt_limits lim = default_limits();
    GString *m = g_string_new("From: a@example.org\r\n");
    struct mt_mime_result r;
    struct seen s;
    size_t copies = 0, kept = 0;

    for (int k = 0; k < 12; k++)
        g_string_append_printf(m, "Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n", k);
    g_string_append(m, "Subject: inner\r\nContent-Type: text/plain\r\n\r\n");
    for (int k = 0; k < 80000; k++)
        g_string_append(m, "innermost text of fifty bytes in each line here..\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    for (size_t i = 0; i < r.nparts; i++) {
        if (g_strcmp0(r.parts[i].content_type, "message/rfc822") != 0)
            continue;
        copies += r.parts[i].data_len;
        kept += r.parts[i].data_len > 0;
    }
    /* 4 MB each: 2 x 4 MB + 16 MiB holds seven of the twelve */
    g_assert_cmpuint(r.nparts, ==, 13);
    g_assert_cmpuint(kept, ==, 7);
    g_assert_cmpuint(copies, <=, (MT_CAP_MIME_EMBEDDED + 1) * m->len + MT_CAP_MIME_EMBEDDED_FLOOR);
    g_assert_cmpuint(s.n[MT_AN_MESSAGE_TRUNCATED], ==, 5);
    g_assert_nonnull(strstr(s.last[MT_AN_MESSAGE_TRUNCATED], "embedded messages"));
    g_assert_cmpstr(r.parts[12].content_type, ==, "text/plain");
    g_assert_cmpuint(r.parts[12].data_len, ==, 80000 * 51);
    mt_mime_result_clear(&r);

    /* the same nesting labelled base64 but not base64: each level's bytes
     * were parsed again (40 levels of a 16 MB message: 1 GB); past the
     * budget the deeper ones are not */
    g_string_assign(m, "From: a@example.org\r\nContent-Type: message/rfc822\r\n"
                       "Content-Transfer-Encoding: base64\r\n\r\n");
    for (int k = 0; k < 12; k++)
        g_string_append(m, "X-J: !\r\nContent-Type: message/rfc822\r\n"
                           "Content-Transfer-Encoding: base64\r\n\r\n");
    g_string_append(m, "Subject: inner\r\n\r\n");
    for (int k = 0; k < 80000; k++)
        g_string_append(m, "innermost text of fifty bytes in each line here..\r\n");
    parse_with(m->str, m->len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_MESSAGE_TRUNCATED], ==, 1);
    g_assert_nonnull(strstr(s.last[MT_AN_MESSAGE_TRUNCATED], "not parsed"));
    g_assert_cmpuint(r.nparts, ==, 8); /* the root and the seven levels parsed */
    mt_mime_result_clear(&r);
    g_string_free(m, TRUE);
}

/* ---- parts ------------------------------------------------------------- */

static void test_rfc2231_filenames(void)
{
    static const struct {
        const char *filename;
        const char *data;
    } want[] = {
        { NULL, NULL },                     /* 1: multipart/mixed */
        { NULL, "Four attachments follow." }, /* 1.1 */
        /* charset and language: filename*=iso-8859-1'fr'... */
        { "café crème.txt", "one" },
        /* *0* / *1* encoded continuations and a plain *2* one */
        { "年度报告-final.pdf", "two" },
        /* plain continuations in Content-Type name */
        { "a very long name that was split in two.doc", "three" },
        /* RFC 2047 inside a quoted filename: not standard, but common */
        { "中文.txt", "four" },
    };
    struct mt_mime_result r;
    struct seen s;

    parse_file("rfc2231.eml", FALSE, &r, &s);
    g_assert_cmpuint(r.nparts, ==, G_N_ELEMENTS(want));
    for (gsize i = 0; i < r.nparts; i++) {
        g_assert_cmpstr(r.parts[i].filename, ==, want[i].filename);
        if (want[i].data && i > 1) {
            g_assert_cmpmem(r.parts[i].data, r.parts[i].data_len, want[i].data,
                            strlen(want[i].data));
        }
    }
    assert_text(r.parts[1].text_utf8, want[1].data);
    g_assert_cmpstr(r.parts[2].disposition, ==, "attachment");
    g_assert_null(r.parts[4].disposition);
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    mt_mime_result_clear(&r);
}

/* The attachment in nested.eml, decoded by Python's base64 module and
 * hashed by sha256sum. */
#define NESTED_ATTACHMENT_SHA256 "d6bce300b78fa0abdc35293f5bdee362de62346c2f4421e142acd4bedd879cf3"

static void check_nested(gboolean crlf)
{
    static const struct {
        const char *path;
        unsigned depth;
        const char *type;
        bool multipart;
    } tree[] = {
        { "1", 0, "multipart/mixed", true },
        { "1.1", 1, "multipart/alternative", true },
        { "1.1.1", 2, "text/plain", false },
        { "1.1.2", 2, "text/html", false },
        { "1.2", 1, "application/octet-stream", false },
    };
    /* Big5, which the GB18030 fallback would misread: the declared charset counts */
    static const char big5_html[] = "<p>\xa7\x41\xa6\x6e\xa1\x41\xa5\x40\xac\xc9</p>\n";
    struct mt_mime_result r;
    struct seen s;
    struct mt_mime_part *p;

    parse_file("nested.eml", crlf, &r, &s);
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    g_assert_cmpstr(r.headers.subject, ==, "nested multipart");
    g_assert_cmpuint(r.nparts, ==, G_N_ELEMENTS(tree));
    for (gsize i = 0; i < r.nparts; i++) {
        p = &r.parts[i];
        g_assert_cmpstr(p->path, ==, tree[i].path);
        g_assert_cmpuint(p->depth, ==, tree[i].depth);
        g_assert_cmpstr(p->content_type, ==, tree[i].type);
        g_assert_true(p->is_multipart == tree[i].multipart);
        if (tree[i].multipart) {
            g_assert_null(p->data);
            g_assert_cmpuint(p->size, ==, 0);
            g_assert_cmpstr(p->sha256, ==, "");
            g_assert_null(p->text_utf8);
        } else {
            g_assert_cmpuint(strlen(p->sha256), ==, 64);
        }
    }

    p = &r.parts[2]; /* quoted-printable UTF-8 with a soft line break */
    g_assert_cmpstr(p->charset, ==, "utf-8");
    g_assert_cmpstr(p->encoding, ==, "quoted-printable");
    assert_text(p->text_utf8, "Grüße aus Köln, this line is long enough that it is wrapped "
                              "by a soft line break.");

    p = &r.parts[3]; /* base64 Big5 HTML: bytes kept, text converted */
    g_assert_cmpstr(p->charset, ==, "big5");
    g_assert_cmpstr(p->encoding, ==, "base64");
    g_assert_cmpmem(p->data, p->data_len, big5_html, sizeof big5_html - 1);
    g_assert_cmpstr(p->text_utf8, ==, "<p>你好，世界</p>\n");

    p = &r.parts[4]; /* binary attachment */
    g_assert_cmpstr(p->encoding, ==, "base64");
    g_assert_cmpstr(p->filename, ==, "data.bin");
    g_assert_cmpstr(p->disposition, ==, "attachment");
    g_assert_cmpuint(p->size, ==, 3000);
    g_assert_cmpuint(p->data_len, ==, 3000);
    g_assert_cmpuint(p->data[0], ==, 0x00);
    g_assert_cmpuint(p->data[1], ==, 37);
    g_assert_cmpstr(p->sha256, ==, NESTED_ATTACHMENT_SHA256);
    g_assert_null(p->text_utf8);
    mt_mime_result_clear(&r);
}

static void test_nested_lf(void) { check_nested(FALSE); }
static void test_nested_crlf(void) { check_nested(TRUE); }

static void test_message_rfc822(void)
{
    static const struct {
        const char *path;
        unsigned depth;
        const char *type;
        const char *text;
    } tree[] = {
        { "1", 0, "multipart/mixed", NULL },
        { "1.1", 1, "text/plain", "See the message below." },
        { "1.2", 1, "message/rfc822", NULL },
        { "1.2.1", 2, "multipart/alternative", NULL },
        { "1.2.1.1", 3, "text/plain", "Original plain text." },
        { "1.2.1.2", 3, "text/html", "<p>Original HTML.</p>" },
        { "1.3", 1, "text/plain", "After the forwarded message." },
    };
    struct mt_mime_result r;
    struct seen s;

    parse_file("rfc822.eml", FALSE, &r, &s);
    g_assert_cmpstr(r.headers.subject, ==, "Fwd: the original"); /* outer, not inner */
    g_assert_cmpuint(r.nparts, ==, G_N_ELEMENTS(tree));
    for (gsize i = 0; i < r.nparts; i++) {
        g_assert_cmpstr(r.parts[i].path, ==, tree[i].path);
        g_assert_cmpuint(r.parts[i].depth, ==, tree[i].depth);
        g_assert_cmpstr(r.parts[i].content_type, ==, tree[i].type);
        if (tree[i].text)
            assert_text(r.parts[i].text_utf8, tree[i].text);
        else if (strcmp(tree[i].type, "message/rfc822") == 0)
            g_assert_nonnull(r.parts[i].data); /* the embedded message, for extraction */
        else
            g_assert_null(r.parts[i].data);
    }
    g_assert_cmpstr(r.parts[2].disposition, ==, "inline");
    g_assert_false(r.parts[2].is_multipart);
    /* the embedded message's bytes start with its own headers */
    g_assert_cmpuint(r.parts[2].size, ==, r.parts[2].data_len);
    g_assert_true(g_strstr_len((const char *)r.parts[2].data, (gssize)r.parts[2].data_len,
                               "Subject: the original") != NULL);
    g_assert_cmpstr(r.parts[6].filename, ==, "after.txt");
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    mt_mime_result_clear(&r);
}

/* An attached message's bytes (its size, hash and extracted .eml) are the
 * bytes it came in, with their line ends: from its first header to the
 * line end that belongs to the next boundary. */
static void check_rfc822_bytes(gboolean crlf)
{
    struct mt_limits lim = default_limits();
    struct mt_mime_result r;
    struct seen s;
    gsize len;
    gchar *data = load("rfc822.eml", &len);
    if (crlf) {
        gchar *c = to_crlf(data, len, &len);
        g_free(data);
        data = c;
    }
    const char *eol = crlf ? "\r\n" : "\n";
    const char *from = g_strstr_len(data, (gssize)len, "From: Original");
    gchar *delim = g_strconcat(eol, "--fwd", NULL);
    const char *to = g_strstr_len(from, (gssize)(data + len - from), delim);
    g_assert_nonnull(from);
    g_assert_nonnull(to);
    parse_with(data, len, &lim, &r, &s);
    g_assert_cmpstr(r.parts[2].content_type, ==, "message/rfc822");
    g_assert_cmpmem(r.parts[2].data, r.parts[2].data_len, from, (gsize)(to - from));
    g_assert_cmpuint(r.parts[2].size, ==, (guint64)(to - from));
    mt_mime_result_clear(&r);
    g_free(delim);
    g_free(data);
}

static void test_message_rfc822_bytes_lf(void) { check_rfc822_bytes(FALSE); }
static void test_message_rfc822_bytes_crlf(void) { check_rfc822_bytes(TRUE); }

static void test_quoted_printable(void)
{
    static const char latin1[] = "Caf\xe9 cr\xe8me, soft break, equals = sign.";
    struct mt_mime_result r;
    struct seen s;

    parse_file("quoted-printable.eml", FALSE, &r, &s);
    g_assert_cmpuint(r.nparts, ==, 1);
    g_assert_cmpstr(r.parts[0].encoding, ==, "quoted-printable");
    g_assert_cmpstr(r.parts[0].charset, ==, "iso-8859-1");
    g_assert_cmpuint(r.parts[0].data_len, >=, sizeof latin1 - 1);
    g_assert_cmpmem(r.parts[0].data, sizeof latin1 - 1, latin1, sizeof latin1 - 1);
    assert_text(r.parts[0].text_utf8, "Café crème, soft break, equals = sign.");
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    mt_mime_result_clear(&r);
}

static void test_no_boundary(void)
{
    struct mt_mime_result r;
    struct seen s;

    parse_file("no-boundary.eml", FALSE, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_MIME_NO_BOUNDARY], ==, 1);
    g_assert_cmpuint(total_anomalies(&s), ==, 1);
    g_assert_cmpuint(r.nparts, ==, 1);
    g_assert_cmpstr(r.parts[0].content_type, ==, "multipart/mixed");
    g_assert_true(r.parts[0].is_multipart);
    /* the body is kept, as GMime gives it, rather than lost */
    g_assert_nonnull(r.parts[0].data);
    g_assert_nonnull(g_strstr_len((const char *)r.parts[0].data, (gssize)r.parts[0].data_len,
                                  "Text that a reader still wants to see."));
    g_assert_cmpuint(r.parts[0].size, ==, r.parts[0].data_len);
    g_assert_cmpuint(strlen(r.parts[0].sha256), ==, 64);
    mt_mime_result_clear(&r);
}

static void test_bad_base64(void)
{
    struct mt_mime_result r;
    struct seen s;

    parse_file("bad-base64.eml", TRUE, &r, &s);
    g_assert_cmpuint(r.nparts, ==, 3);
    /* the good body (folded, white space, lone '=') raises nothing */
    g_assert_cmpmem(r.parts[1].data, r.parts[1].data_len, "Good body follows.", 18);
    /* the bad one is reported once and decoded as well as it can be */
    g_assert_cmpuint(s.n[MT_AN_MIME_BAD_BASE64], ==, 1);
    g_assert_cmpuint(total_anomalies(&s), ==, 1);
    g_assert_cmpmem(r.parts[2].data, r.parts[2].data_len, "Bad body", 8);
    mt_mime_result_clear(&r);
}

static void test_headers_only(void)
{
    struct mt_mime_result r;
    struct seen s;

    parse_file("headers-only.eml", FALSE, &r, &s);
    g_assert_cmpstr(r.headers.from, ==, "only@example.org");
    g_assert_cmpstr(r.headers.subject, ==, "headers only, no body");
    g_assert_cmpstr(r.headers.message_id, ==, "<only@example.org>");
    g_assert_null(r.headers.date);
    g_assert_cmpuint(r.nparts, ==, 1);
    g_assert_cmpstr(r.parts[0].content_type, ==, "text/plain");
    g_assert_cmpstr(r.parts[0].encoding, ==, "7bit");
    g_assert_cmpuint(r.parts[0].size, ==, 0);
    g_assert_null(r.parts[0].data);
    /* SHA-256 of nothing */
    g_assert_cmpstr(r.parts[0].sha256, ==,
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    g_assert_cmpstr(r.parts[0].text_utf8, ==, "");
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    mt_mime_result_clear(&r);
}

static void test_empty(void)
{
    struct mt_limits lim = default_limits();
    struct mt_mime_result r;
    struct seen s;

    memset(&r, 0xa5, sizeof r); /* must be filled even when there is nothing */
    parse_with("", 0, &lim, &r, &s);
    g_assert_cmpuint(r.nparts, ==, 0);
    g_assert_null(r.parts);
    g_assert_null(r.headers.from);
    g_assert_null(r.headers.subject);
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    mt_mime_result_clear(&r);
    mt_mime_result_clear(&r); /* clearing twice is harmless */
}

/* ---- caps -------------------------------------------------------------- */

static void test_cap_depth(void)
{
    struct mt_limits lim = default_limits();
    struct mt_mime_result r;
    struct seen s;
    gsize len;
    gchar *data = load("nested.eml", &len);

    lim.mime_depth_max = 1; /* keeps 1, 1.1 and 1.2 but not 1.1.x */
    parse_with(data, len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_MIME_DEPTH], ==, 1);
    g_assert_cmpuint(r.nparts, ==, 3);
    g_assert_cmpstr(r.parts[1].path, ==, "1.1");
    g_assert_cmpstr(r.parts[2].path, ==, "1.2");
    g_assert_cmpstr(r.parts[2].sha256, ==, NESTED_ATTACHMENT_SHA256);
    mt_mime_result_clear(&r);
    g_free(data);
}

static void test_cap_parts(void)
{
    struct mt_limits lim = default_limits();
    struct mt_mime_result r;
    struct seen s;
    gsize len;
    gchar *data = load("nested.eml", &len);

    lim.mime_parts_max = 3; /* 1, 1.1, 1.1.1 */
    parse_with(data, len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_MIME_PARTS], ==, 1);
    g_assert_cmpuint(r.nparts, ==, 3);
    g_assert_cmpstr(r.parts[2].path, ==, "1.1.1");
    mt_mime_result_clear(&r);
    g_free(data);
}

static void test_cap_header(void)
{
    struct mt_limits lim = default_limits();
    struct mt_mime_result r;
    struct seen s;
    gsize len;
    gchar *data = load("nested.eml", &len);
    GString *g;

    /* a body larger than the cap is not a header block larger than it */
    lim.header_max = 1024;
    g_assert_cmpuint(len, >, 2 * lim.header_max);
    parse_with(data, len, &lim, &r, &s);
    g_assert_cmpuint(total_anomalies(&s), ==, 0);
    mt_mime_result_clear(&r);
    g_free(data);

    /* 100 three-byte characters against a cap of 64 bytes */
    g = g_string_new("Subject: ");
    for (int i = 0; i < 100; i++)
        g_string_append(g, "中");
    g_string_append(g, "\n\nbody\n");
    lim.header_max = 64;
    parse_with(g->str, g->len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_HEADER_TOO_LARGE], ==, 1);
    g_assert_cmpuint(total_anomalies(&s), ==, 1);
    /* decoded header values are cut to the cap, on a character boundary */
    g_assert_cmpuint(strlen(r.headers.subject), ==, 63);
    g_assert_true(g_utf8_validate(r.headers.subject, -1, NULL));
    g_assert_cmpuint(r.nparts, ==, 1);
    assert_text(r.parts[0].text_utf8, "body");
    mt_mime_result_clear(&r);
    g_string_free(g, TRUE);

    /* a large header inside a part counts as well */
    lim.header_max = 4096;
    g = g_string_new("Subject: s\nContent-Type: multipart/mixed; boundary=b\n\n--b\nX-Filler: ");
    for (int i = 0; i < 500; i++)
        g_string_append(g, "0123456789");
    g_string_append(g, "\n\nbody\n--b--\n");
    parse_with(g->str, g->len, &lim, &r, &s);
    g_assert_cmpuint(s.n[MT_AN_HEADER_TOO_LARGE], ==, 1);
    g_assert_cmpuint(total_anomalies(&s), ==, 1);
    g_assert_cmpuint(r.nparts, ==, 2);
    mt_mime_result_clear(&r);
    g_string_free(g, TRUE);
}

/* ---- bombs ------------------------------------------------------------- */

#define BOMB_DEPTH 10000
#define BOMB_PARTS 100000

static GString *depth_bomb_multipart(unsigned n)
{
    GString *g = g_string_new("Subject: depth bomb\n");

    for (unsigned i = 0; i < n; i++)
        g_string_append_printf(g, "Content-Type: multipart/mixed; boundary=\"b%u\"\n\n--b%u\n", i,
                               i);
    g_string_append(g, "Content-Type: text/plain\n\ndeep\n");
    for (unsigned i = n; i-- > 0;)
        g_string_append_printf(g, "--b%u--\n", i);
    return g;
}

static GString *depth_bomb_rfc822(unsigned n)
{
    GString *g = g_string_new("Subject: depth bomb\n");

    for (unsigned i = 0; i < n; i++)
        g_string_append(g, "Content-Type: message/rfc822\n\nSubject: inner\n");
    g_string_append(g, "Content-Type: text/plain\n\ndeep\n");
    return g;
}

struct bomb_job {
    GString *msg;
    struct mt_limits lim;
    struct mt_mime_result r;
    struct seen s;
};

static void *bomb_thread(void *arg)
{
    struct bomb_job *j = arg;

    parse_with(j->msg->str, j->msg->len, &j->lim, &j->r, &j->s);
    return NULL;
}

/* Parses in a thread with a small stack (1 MiB, an eighth of the usual
 * main-thread stack): a parser that recursed once per level of the input
 * would overflow it and crash the test. */
static void parse_small_stack(struct bomb_job *j)
{
    pthread_attr_t attr;
    pthread_t th;

    g_assert_cmpint(pthread_attr_init(&attr), ==, 0);
    g_assert_cmpint(pthread_attr_setstacksize(&attr, 1024 * 1024), ==, 0);
    g_assert_cmpint(pthread_create(&th, &attr, bomb_thread, j), ==, 0);
    g_assert_cmpint(pthread_join(th, NULL), ==, 0);
    pthread_attr_destroy(&attr);
}

static void check_depth_bomb(GString *msg, uint32_t parts_max)
{
    struct bomb_job j = { .msg = msg, .lim = default_limits() };

    j.lim.mime_parts_max = parts_max;
    parse_small_stack(&j);
    g_assert_cmpuint(j.s.n[MT_AN_MIME_DEPTH], ==, 1);
    /* kept: depths 0..mime_depth_max, one node each */
    g_assert_cmpuint(j.r.nparts, ==, MT_DEF_MIME_DEPTH_MAX + 1);
    for (size_t i = 0; i < j.r.nparts; i++)
        g_assert_cmpuint(j.r.parts[i].depth, ==, i);
    g_assert_cmpstr(j.r.headers.subject, ==, "depth bomb");
    mt_mime_result_clear(&j.r);
}

static void test_bomb_depth_multipart(void)
{
    GString *msg = depth_bomb_multipart(BOMB_DEPTH);

    /* default caps: cut before GMime by the boundary-line count */
    check_depth_bomb(msg, MT_DEF_MIME_PARTS_MAX);
    /* all of it handed to GMime, which stops at its own nesting limit */
    check_depth_bomb(msg, BOMB_PARTS * 10);
    g_string_free(msg, TRUE);
}

static void test_bomb_depth_rfc822(void)
{
    /* no boundary lines at all: only GMime's nesting limit protects it */
    GString *msg = depth_bomb_rfc822(BOMB_DEPTH);

    check_depth_bomb(msg, MT_DEF_MIME_PARTS_MAX);
    g_string_free(msg, TRUE);
}

/* Where the boundary-line search stops: a '-' beginning a line, the
 * starting position counting as a line's beginning. */
static const struct {
    const char *d;
    size_t pos, want; /* want: SIZE_MAX for the end */
} dash_lines[] = {
    { "--b", 0, 0 },
    { "x-y\n--b", 0, 4 },
    { "a\n-b", 0, 2 },
    { "a-b-c", 0, SIZE_MAX },
    { "", 0, SIZE_MAX },
    { "ab\r\n-", 0, 4 },
    { "a\n-b\n-c", 3, 5 },  /* from inside a line: its later '-' do not count... */
    { "xx-y", 2, 2 },         /* ...but a '-' at pos does */
    { "QUJD\nREVG\n", 0, SIZE_MAX },
    { "a\n\n-", 0, 3 },
};

static void test_dash_line(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(dash_lines); i++) {
        const char *d = dash_lines[i].d;
        size_t n = strlen(d), want = dash_lines[i].want == SIZE_MAX ? n : dash_lines[i].want;
        g_test_message("%zu: %s from %zu", i, d, dash_lines[i].pos);
        g_assert_cmpuint(mime_dash_line(d, dash_lines[i].pos, n), ==, want);
    }
}

static void test_bomb_parts(void)
{
    GString *g = g_string_new("Subject: parts bomb\nContent-Type: multipart/mixed; boundary=b\n\n");
    struct bomb_job j = { .lim = default_limits() };
    gint64 t0;

    for (unsigned i = 0; i < BOMB_PARTS; i++)
        g_string_append(g, "--b\n\nx\n");
    g_string_append(g, "--b--\n");
    j.msg = g;
    t0 = g_get_monotonic_time();
    parse_small_stack(&j);
    g_test_message("100,000-part message parsed in %.3f s",
                   (double)(g_get_monotonic_time() - t0) / 1e6);
    g_assert_cmpuint(j.s.n[MT_AN_MIME_PARTS], ==, 1);
    g_assert_cmpuint(total_anomalies(&j.s), ==, 1);
    /* GMime was not handed the 100,000 parts (hundreds of bytes of
     * objects each) but the input up to the boundary-line cap */
    g_assert_nonnull(strstr(j.s.last[MT_AN_MIME_PARTS], "input cut at byte"));
    /* exactly before the boundary line past the cap (8 per allowed part
     * and 1,024 more: mime.c), each part being 7 bytes */
    size_t hlen = strlen("Subject: parts bomb\nContent-Type: multipart/mixed; boundary=b\n\n");
    char *at = g_strdup_printf("input cut at byte %zu",
                               hlen + (MT_DEF_MIME_PARTS_MAX * 8u + 1024u) * 7u);
    g_assert_nonnull(strstr(j.s.last[MT_AN_MIME_PARTS], at));
    g_free(at);
    g_assert_cmpuint(j.r.nparts, ==, MT_DEF_MIME_PARTS_MAX);
    g_assert_cmpstr(j.r.parts[0].path, ==, "1");
    g_assert_cmpstr(j.r.parts[1].path, ==, "1.1");
    g_assert_cmpstr(j.r.parts[j.r.nparts - 1].path, ==, "1.999");
    g_assert_cmpmem(j.r.parts[1].data, j.r.parts[1].data_len, "x", 1);
    mt_mime_result_clear(&j.r);
    g_string_free(g, TRUE);
}

/* A large part's data buffer is kept by its thread for the next large
 * part (its pages already in); another thread has its own. */
static gpointer spare_in_thread(gpointer data)
{
    (void)data;
    struct mt_mime_part p;
    memset(&p, 0, sizeof(p));
    mt_mime_data_alloc(&p, 3 * MT_MIME_BIG_DATA);
    uint8_t *kept = p.data;
    mt_mime_part_clear(&p);
    /* the thread's own spare is left behind: freed when the thread ends
     * (LeakSanitizer checks it in the sanitizer build) */
    return kept;
}

static void test_data_spare(void)
{
    struct mt_mime_part p, q;
    memset(&p, 0, sizeof(p));
    memset(&q, 0, sizeof(q));
    mt_mime_data_alloc(&p, 3 * MT_MIME_BIG_DATA);
    uint8_t *first = p.data;
    g_assert_cmpuint(p.data_cap, ==, 3 * MT_MIME_BIG_DATA);
    memset(first, 0xab, 3 * MT_MIME_BIG_DATA);
    mt_mime_part_clear(&p);
    g_assert_null(p.data);
    g_assert_cmpuint(p.data_cap, ==, 0);

    /* the next large part, no larger: the same buffer, with its capacity */
    mt_mime_data_alloc(&p, 2 * MT_MIME_BIG_DATA);
    g_assert_true(p.data == first);
    g_assert_cmpuint(p.data_cap, ==, 3 * MT_MIME_BIG_DATA);
    /* while it is in use, another large part gets a new one */
    mt_mime_data_alloc(&q, 2 * MT_MIME_BIG_DATA);
    g_assert_true(q.data != first);
    mt_buf_free(q.data, q.data_cap);
    memset(&q, 0, sizeof(q));

    /* a larger part than the spare: a new buffer, and the spare stays */
    mt_mime_part_clear(&p); /* first is the spare again */
    mt_mime_data_alloc(&p, 8 * MT_MIME_BIG_DATA);
    uint8_t *bigger = p.data;
    g_assert_true(bigger != first);
    mt_mime_data_alloc(&q, MT_MIME_BIG_DATA + 1);
    g_assert_true(q.data == first);
    mt_buf_free(q.data, q.data_cap);
    memset(&q, 0, sizeof(q));

    mt_mime_part_clear(&p); /* the spare becomes bigger */
    mt_mime_data_alloc(&p, 4 * MT_MIME_BIG_DATA);
    g_assert_true(p.data == bigger);
    uint8_t *big2 = p.data;
    size_t big2_cap = p.data_cap;

    /* a small part's buffer is freed, not kept; one from GMime (no
     * capacity: g_malloc'd) is freed with g_free (ASan: no mismatch) */
    mt_mime_data_alloc(&q, 100);
    g_assert_cmpuint(q.data_cap, ==, 100);
    mt_mime_part_clear(&q);
    q.data = g_malloc(2 * MT_MIME_BIG_DATA);
    mt_mime_part_clear(&q);
    mt_mime_data_alloc(&q, MT_MIME_BIG_DATA + 1);
    g_assert_true(q.data != big2); /* big2 is in use, no spare */
    mt_buf_free(q.data, q.data_cap);

    /* each thread has its own */
    GThread *t = g_thread_new("spare", spare_in_thread, NULL);
    uint8_t *theirs = g_thread_join(t);
    g_assert_true(theirs != big2);
    mt_buf_free(big2, big2_cap);
}

/* A mapped part buffer comes with its pages in: the decoder writes it
 * whole, and 256 KiB trapped a page at a time is 64 traps (on a virtual
 * machine, dear ones). */
static void test_data_pages(void)
{
    const size_t n = 256 * 1024;
    if (!mt_buf_mapped(n)) {
        g_test_skip("part buffers are plain heap memory under the sanitizers");
        return;
    }
    int fd = traps_open();
    if (fd < 0) {
        g_test_skip("no page-faults counter here (perf_event_paranoid)");
        return;
    }
    struct mt_mime_part p;
    memset(&p, 0, sizeof(p));
    mt_mime_data_alloc(&p, n);
    uint64_t t0 = traps_read(fd);
    memset(p.data, 'd', n);
    uint64_t t1 = traps_read(fd);
    g_assert_cmpuint(t1 - t0, <=, 2);
    mt_mime_part_clear(&p);
    close(fd);

    /* a large one (larger than any spare kept): only its first
     * MT_BUF_HUGE_MIN is asked for, since lenient Base64 may decode a
     * hostile part to far less than its n */
    const size_t big = 16 * 1024 * 1024 + 1, from = MT_BUF_HUGE_MIN;
    mt_buf_drop_kept();
    mt_mime_data_alloc(&p, big);
    size_t at = 0;
    if (some_page(p.data + from, big - from, true, &at))
        g_error("the page at %zu of a fresh %zu-byte part buffer is in", from + at, big);
    mt_mime_part_clear(&p);

    /* the extents kept from freed buffers (MT_BUF_POOL_EXTENTS), pages
     * already in memory, come in, for the first MT_BUF_HUGE_MIN and
     * beyond: two here, and no more */
    mt_buf_drop_kept();
    const size_t two = 2 * MT_BUF_HUGE_MIN;
    uint8_t *b = mt_buf_alloc(two);
    (void)mt_buf_populate(b, two, 0, two);
    mt_buf_free(b, two);
    g_assert_cmpuint(mt_buf_kept(), ==, 2);
    mt_mime_data_alloc(&p, big + MT_BUF_HUGE_MIN); /* larger than the spare */
    g_assert_cmpuint(mt_buf_kept(), ==, 0);
    if (some_page(p.data, two, false, &at))
        g_error("the page at %zu of a part buffer is not in", at);
    if (some_page(p.data + two, big - two, true, &at))
        g_error("the page at %zu of a part buffer is in", two + at);
    mt_mime_part_clear(&p);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    mt_mime_global_init();
    mt_mime_global_init(); /* idempotent */

    g_test_add_func("/mime/headers/charsets", test_headers_charsets);
    g_test_add_func("/mime/headers/raw-8bit", test_headers_raw_8bit);
    g_test_add_func("/mime/headers/split-words", test_headers_split_words);
    g_test_add_func("/mime/headers/eword-bomb", test_headers_eword_bomb);
    g_test_add_func("/mime/headers/gmime-guard", test_headers_gmime_guard);
    g_test_add_func("/mime/headers/gmime-guard-legit", test_headers_gmime_guard_legit);
    g_test_add_func("/mime/headers/gmime-guard-embedded", test_headers_gmime_guard_embedded);
    g_test_add_func("/mime/headers/gmime-message-caps", test_gmime_message_caps);
    g_test_add_func("/mime/boundary-gmime-max", test_boundary_gmime_max);
    g_test_add_func("/mime/embedded-budget", test_embedded_budget);
    g_test_add_func("/mime/headers/only", test_headers_only);
    g_test_add_func("/mime/parts/rfc2231-filenames", test_rfc2231_filenames);
    g_test_add_func("/mime/parts/rfc2231-out-of-order", test_rfc2231_out_of_order);
    g_test_add_func("/mime/parts/nested-lf", test_nested_lf);
    g_test_add_func("/mime/parts/nested-crlf", test_nested_crlf);
    g_test_add_func("/mime/parts/message-rfc822", test_message_rfc822);
    g_test_add_func("/mime/parts/message-rfc822-bytes-lf", test_message_rfc822_bytes_lf);
    g_test_add_func("/mime/parts/message-rfc822-bytes-crlf", test_message_rfc822_bytes_crlf);
    g_test_add_func("/mime/parts/quoted-printable", test_quoted_printable);
    g_test_add_func("/mime/broken/no-boundary", test_no_boundary);
    g_test_add_func("/mime/broken/bad-base64", test_bad_base64);
    g_test_add_func("/mime/broken/empty", test_empty);
    g_test_add_func("/mime/caps/depth", test_cap_depth);
    g_test_add_func("/mime/caps/parts", test_cap_parts);
    g_test_add_func("/mime/caps/header", test_cap_header);
    g_test_add_func("/mime/bombs/depth-multipart", test_bomb_depth_multipart);
    g_test_add_func("/mime/bombs/depth-rfc822", test_bomb_depth_rfc822);
    g_test_add_func("/mime/bombs/parts", test_bomb_parts);
    g_test_add_func("/mime/dash-line", test_dash_line);
    g_test_add_func("/mime/data-spare", test_data_spare);
    g_test_add_func("/mime/data-pages", test_data_pages);
    return g_test_run();
}
