/* The fast MIME path (dissect/mime_fast.c) must give exactly what GMime's
 * full parse gives, field for field and byte for byte, on every message it
 * takes, and must leave to GMime the messages it does not understand.
 *
 * Cases: every fixture of data/mime/ (LF and CRLF), a table of messages
 * written for the edges of the structure (delimiters with white space,
 * prologues and epilogues, nested boundaries that share a prefix,
 * encodings, parameters, header folding), and, with --dir DIR, every file
 * under DIR (the test suite runs it on the messages extracted from all the
 * sample captures, and from the conformance corpus when it is there). */
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "mime.h"
#include "mime_diff.h"

static const char *dir_arg;

/* LF to CRLF, as on the wire. */
static GString *crlf(const char *s, size_t n)
{
    GString *g = g_string_sized_new(n + n / 16);

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            g_string_append_c(g, '\r');
        g_string_append_c(g, s[i]);
    }
    return g;
}

/* Both paths on data, as LF and as CRLF; returns whether the fast path
 * took it (the same for both line ends, or the test fails). */
static gboolean check_both(const char *name, const char *data, size_t len)
{
    struct mt_limits lim;
    GString *why = g_string_new(NULL), *c = crlf(data, len);
    int lf_rc, crlf_rc;

    mt_limits_default(&lim);
    lf_rc = mime_diff((const uint8_t *)data, len, &lim, why);
    if (lf_rc == 1)
        g_error("%s (LF): %s", name, why->str);
    crlf_rc = mime_diff((const uint8_t *)c->str, c->len, &lim, why);
    if (crlf_rc == 1)
        g_error("%s (CRLF): %s", name, why->str);
    g_string_free(why, TRUE);
    g_string_free(c, TRUE);
    g_assert_cmpint(lf_rc, ==, crlf_rc);
    return lf_rc == 0;
}

static void test_fixtures(void)
{
    /* the well-formed fixtures must take the fast path (else it would
     * silently never run); the others must agree whichever path they take */
    static const struct {
        const char *file;
        gboolean fast;
    } fx[] = {
        {"nested.eml", TRUE},        {"quoted-printable.eml", TRUE},  {"rfc2231.eml", TRUE},
        {"subject-big5.eml", TRUE},  {"subject-gb18030.eml", TRUE},   {"subject-gb2312.eml", TRUE},
        {"subject-gbk.eml", TRUE},   {"subject-latin1-qp.eml", TRUE}, {"subject-utf8.eml", TRUE},
        {"bad-base64.eml", TRUE},    {"rfc822.eml", FALSE},           {"no-boundary.eml", FALSE},
        {"headers-only.eml", TRUE},
    };

    for (size_t i = 0; i < G_N_ELEMENTS(fx); i++) {
        gchar *path = g_test_build_filename(G_TEST_DIST, "data", "mime", fx[i].file, NULL);
        gchar *data;
        gsize len;

        g_assert_true(g_file_get_contents(path, &data, &len, NULL));
        g_assert_cmpint(check_both(fx[i].file, data, len), ==, fx[i].fast);
        g_free(data);
        g_free(path);
    }
}

/* Messages for the edges.  fast: whether the fast path must take it. */
static const struct {
    const char *name;
    gboolean fast;
    const char *msg;
} cases[] = {
    {"plain, no Content-Type", TRUE, "From: a@example.test\nSubject: hi\n\nbody line\nlast"},
    {"empty body", TRUE, "Subject: x\n\n"},
    {"empty header values", TRUE, "Subject:\nX-A:\nTo:\n\nb\n"},
    {"folded subject with encoded words", TRUE,
     "Subject: =?utf-8?q?caf=C3=A9?= au\n =?utf-8?b?bGFpdA==?=  x\n\tend\n\nb\n"},
    {"addresses: encoded names, groups, specials", TRUE,
     "From: =?utf-8?q?Ren=C3=A9?= <rene@example.test>\n"
     "To: \"Doe, John\" <j@example.test>, x@example.test,\n Team: a@b.test, c@d.test;\n"
     "Cc: undisclosed-recipients:;\n\nb\n"},
    {"unparsable address list", FALSE, "From: not an address at all\n\nb\n"},
    /* encoded words that cut a character (mime_2047_join): the subject and
     * the addresses are joined alike on both paths; a Content-Type or
     * Content-Disposition with such words goes to GMime's parse */
    {"subject and name with words cut mid-character", TRUE,
     "From: =?GBK?B?1Q==?= =?GBK?B?xcj9?= <zhang@example.cn>\n"
     "To: =?UTF-8?B?5L0=?=\n =?UTF-8?B?oA==?= <a@b.test>, c@d.test\n"
     "Subject: x =?UTF-8?B?5L2g5Q==?= =?UTF-8?B?pb3kuJbnlYw=?= y\n\nb\n"},
    {"file name in sections out of order", FALSE,
     "Content-Type: text/plain\nContent-Disposition: attachment; "
     "filename*1*=%E5%91%8A.pdf; filename*0*=UTF-8''%E6%8A%A5\n\nb\n"},
    {"file name in sections in order", TRUE,
     "Content-Type: text/plain\nContent-Disposition: attachment; "
     "filename*0*=UTF-8''%E6%8A%A5; filename*1*=%E5%91%8A.pdf\n\nb\n"},
    {"file name with words cut mid-character", FALSE,
     "Content-Type: text/plain\nContent-Disposition: attachment; "
     "filename=\"=?UTF-8?B?5oql5ZE=?= =?UTF-8?B?iuS5pi5wZGY=?=\"\n\nb\n"},
    /* an encoded word in the type: GMime's parser takes the type from the
     * value as it stands and keeps one part, where the decoded value says
     * multipart (an eighth audit: the fast path split it into three, so an
     * attachment came and went with one more header line) */
    {"type in a Q word", FALSE,
     "Content-Type: =?us-ascii?Q?multipart/mixed;_boundary=3DBB?=\n\n--BB\n"
     "Content-Type: text/plain\n\nhello\n--BB\nContent-Type: application/octet-stream\n\n"
     "evil\n--BB--\n"},
    {"subtype in a Q word", FALSE,
     "Content-Type: multipart/=?us-ascii?Q?mixed?=; boundary=BB\n\n--BB\n\nhello\n"
     "--BB\n\nevil\n--BB--\n"},
    /* simple address lists are formatted without GMime's parser: each
     * shape here must come out as GMime's parse gives it */
    {"simple addresses", TRUE,
     "From: Alice Example <alice@example.test>\nTo: bob@example.test , c.d+e@sub.example.test\n"
     "Cc: John O'Neil <j@b.test>,x@y.test\n\nb\n"},
    {"addresses GMime must parse", TRUE,
     "From: Alice  Example <a@b.test>\nTo: a..b@c.test, <x@y.test>, A.B <a@b.test>\n"
     "Cc: a@xn--bcher-kva.example, Name <a@b.test> (comment), x@[192.0.2.1],\n\nb\n"},
    {"addresses with odd spacing", TRUE,
     "From:a@b.test\nTo: \t Name <a@b.test>  \nCc: Name<a@b.test>, Name <a@b.test >, "
     ".a@b.test\n\nb\n"},
    {"delimiters with trailing white space", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b \t\n\none\n--b\n\ntwo\n--b--  \n"},
    {"prologue and epilogue", TRUE,
     "Content-Type: multipart/mixed; boundary=\"b\"\n\nThis is MIME.\n--b\n"
     "Content-Type: text/plain\n\none\n--b--\nepilogue\n--b\nnot a part\n"},
    {"nested multiparts", TRUE,
     "Content-Type: multipart/mixed; boundary=outer\n\n--outer\n"
     "Content-Type: multipart/alternative; boundary=inner\n\n--inner\n"
     "Content-Type: text/plain; charset=utf-8\n\nplain\n--inner\n"
     "Content-Type: text/html\n\n<p>x</p>\n--inner--\n\n--outer\n"
     "Content-Type: application/octet-stream; name=a.bin\n"
     "Content-Transfer-Encoding: base64\n\nAAECAwQ=\n--outer--\n"},
    {"not a delimiter: boundary followed by text", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nline\n--bx\n--b-x\n--b\n\ntwo\n--b--\n"},
    {"empty part content", TRUE, "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n\n--b--\n"},
    {"part without headers", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nno headers\n--b--\n"},
    {"quoted-printable, soft breaks, trailing =", TRUE,
     "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: Quoted-Printable\n\n"
     "caf=E9 =3D soft=\nbreak=\n"},
    {"base64 with junk", TRUE,
     "Content-Type: application/x\nContent-Transfer-Encoding: BASE64 \n\nAA*ECAw!Q=\n"},
    {"unknown transfer encoding", TRUE, "Content-Transfer-Encoding: x-custom\n\nraw bytes\n"},
    {"RFC 2231 and RFC 2047 file names", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
     "Content-Type: application/pdf;\n name*0*=utf-8''%E6%96%87;\n name*1=\".pdf\"\n"
     "Content-Disposition: ATTACHMENT; filename=\"=?utf-8?b?5paH5Lu2?=.pdf\"\n\n%PDF\n--b\n"
     "Content-Type: text/plain; name=\"a b.txt\"\nContent-Disposition: inline\n\nx\n--b--\n"},
    {"encoded words in Content-Type and Content-Disposition values", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
     "Content-Disposition: att=\"=?gbk?b?1tDOxA==?=.txt\"\n\nx\n--b\n"
     "Content-Type: =?utf-8?q?text/plain?=; name==?utf-8?q?a=C3=A9.txt?=\n\ny\n--b--\n"},
    {"text in GBK", TRUE,
     "Content-Type: text/plain; charset=gbk\nContent-Transfer-Encoding: base64\n\n1tDOxA==\n"},
    {"Content-Type without subtype", TRUE, "Content-Type: text\n\nx\n"},
    {"Content-Type in upper case", TRUE, "Content-Type: TEXT/HTML; CHARSET=UTF-8\n\n<b>x</b>\n"},
    /* Content-Type and Content-Disposition values: the plain shapes read
     * without GMime's objects, and the others, which go to them */
    {"parameter values: plain shapes", TRUE,
     "Content-Type: multipart/mixed;boundary=\"a b\";  CHARSET=UTF-8\n\n--a b\n"
     "Content-Type: Text/Plain; Name=x.txt; format=flowed\n"
     "Content-Disposition: ATTACHMENT; FILENAME=\"r e.txt\"\n\nx\n--a b\n"
     "Content-Type: application/octet-stream; name=\"b.bin\"\n"
     "Content-Disposition: inline\n\ny\n--a b--\n"},
    {"parameter values: shapes left to GMime", TRUE,
     "Content-Type: multipart/mixed; boundary=----=_Part_1\n\n------=_Part_1\n"
     "Content-Type: text/plain; charset=\"utf-8\" ; format=flowed\n"
     "Content-Disposition: attachment; filename=\"a\\\"b.txt\"; filename=c.txt\n\nx\n"
     "------=_Part_1\n"
     "Content-Type: text/plain; charset=us-ascii (comment)\n"
     "Content-Disposition: attachment;\tfilename*=utf-8''%41.txt; size=\"\"\n\ny\n"
     "------=_Part_1\n"
     "Content-Type: text/plain; name=\"=?utf-8?q?a=C3=A9?=.txt\"; x=\n"
     "Content-Disposition: attachment; filename\n\nz\n------=_Part_1--\n"},
    /* header-only and partial fetches (BODY[HEADER], BODY[]<0.100>), cut
     * messages: a tenth of the benchmark's messages, which the full parse
     * took before */
    {"multipart, header block only", TRUE,
     "Subject: x\nContent-Type: multipart/alternative; boundary=\"alt-7\"\n\n"},
    {"multipart, white space for body", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n \n\t\n\n"},
    {"multipart, header block not ended", TRUE,
     "Subject: x\nContent-Type: multipart/mixed; boundary=b\n"},
    {"header cut inside a line", TRUE, "From: a@b.test\nSubject: =?GBK"},
    {"header cut inside an encoded word, folded", TRUE, "Subject: a\n =?utf-8?b?YW"},
    {"header cut after a field name", TRUE, "From: a@b.test\nDate:"},
    {"header cut inside a field name", FALSE, "From: a@b.test\nDat"},
    {"header cut after a CR", FALSE, "From: a@b.test\r\nSubject: x\r"},
    /* the last part of a cut message (no delimiter after it) */
    {"last part cut: text", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n"},
    {"last part cut: no line break", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo"},
    {"last part cut: empty line", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n\n"},
    {"last part cut: in its header", FALSE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/pl"},
    {"last part cut: after its header", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"},
    {"last part cut: inside base64", TRUE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\n"
     "QUJD\nRE"},
    /* left to GMime */
    {"last part cut inside a nested multipart", FALSE,
     "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
     "Content-Type: multipart/alternative; boundary=i\n\n--i\n\nx\n"},
    {"no boundary parameter", FALSE, "Content-Type: multipart/mixed\n\n--b\n\none\n--b--\n"},
    {"boundary never occurs", FALSE, "Content-Type: multipart/mixed; boundary=b\n\ntext\n"},
    {"boundaries sharing a prefix", FALSE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
     "Content-Type: multipart/alternative; boundary=b2\n\n--b2\n\nx\n--b2--\n--b--\n"},
    {"message/rfc822", FALSE, "Content-Type: message/rfc822\n\nSubject: inner\n\nbody\n"},
    {"multipart/digest", FALSE,
     "Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: x\n\ny\n--b--\n"},
    {"uuencode", FALSE, "Content-Transfer-Encoding: x-uuencode\n\nbegin 644 a\n`\nend\n"},
    {"8-bit header", FALSE, "Subject: caf\xc3\xa9\n\nb\n"},
    {"header line without colon", FALSE, "Subject: x\nnot a header\n\nb\n"},
    {"no empty line", TRUE, "Subject: x\nFrom: a@b.test\n"},
    {"repeated Content-Type", FALSE, "Content-Type: text/plain\nContent-Type: text/html\n\nb\n"},
    {"header block right before the delimiter", FALSE,
     "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n--b--\n"},
    {"header block with both kinds of line break", FALSE,
     "From: a@b.test\r\nTo: c@d.test\nSubject: x\r\n\r\nb\r\n"},
    {"address list that fails part way", FALSE,
     "From: x@example.test: multipart/mixed;(unclosed=\"b\"\n\nb\n"},
    {"parent delimiter inside a child", FALSE,
     "Content-Type: multipart/mixed; boundary=outer\n\n--outer\n"
     "Content-Type: multipart/alternative; boundary=inner\n\n--inner\n\nx\n--outer--\n"},
};

static void test_cases(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        gboolean fast = check_both(cases[i].name, cases[i].msg, strlen(cases[i].msg));
        if (fast != cases[i].fast)
            g_error("%s: fast path %s, expected %s", cases[i].name, fast ? "took it" : "declined",
                    cases[i].fast ? "to take it" : "to decline");
    }
}

/* Every .eml file under dir (recursively): both paths agree. */
static void diff_tree(const char *dir, unsigned *fast, unsigned *all)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d)) != NULL) {
        gchar *path = g_build_filename(dir, name, NULL);
        gchar *data;
        gsize len;

        if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
            diff_tree(path, fast, all);
        } else if (g_str_has_suffix(name, ".eml") && g_file_get_contents(path, &data, &len, NULL)) {
            struct mt_limits lim;
            GString *why = g_string_new(NULL);
            int rc;

            mt_limits_default(&lim);
            rc = mime_diff((const uint8_t *)data, len, &lim, why);
            if (rc == 1)
                g_error("%s: %s", path, why->str);
            *fast += rc == 0;
            (*all)++;
            g_string_free(why, TRUE);
            g_free(data);
        }
        g_free(path);
    }
    g_dir_close(d);
}

/* Every message under dir_arg; at least one takes the fast path. */
static void test_dir(void)
{
    unsigned fast = 0, all = 0;

    diff_tree(dir_arg, &fast, &all);
    g_test_message("%u of %u messages took the fast path", fast, all);
    g_assert_cmpuint(all, >, 0);
    g_assert_cmpuint(fast, >, 0);
}

int main(int argc, char **argv)
{
    /* --dir DIR is ours; the rest is GLib's */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0) {
            dir_arg = argv[i + 1];
            memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 1) * sizeof *argv);
            argc -= 2;
            break;
        }
    }
    g_test_init(&argc, &argv, NULL);
    mt_mime_global_init();
    if (dir_arg) {
        g_test_add_func("/mime-fast/dir", test_dir);
    } else {
        g_test_add_func("/mime-fast/fixtures", test_fixtures);
        g_test_add_func("/mime-fast/cases", test_cases);
    }
    return g_test_run();
}
