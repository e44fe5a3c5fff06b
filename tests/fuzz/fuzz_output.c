/* Fuzz harness: the outputs.  One session in fuzz_dissect.c's input format
 * (fuzz_session.h) runs through the engine once, and every event goes to
 * the outputs the command's options make:
 *
 *   JSON Lines with extraction (-j -x DIR), the HTML report (--html) as
 *   its tee, as mailtap sets them up; the text transcript (the default);
 *   the credentials table with --redact; JSON Lines with --redact; each
 *   with its closing summary.
 *
 * What they write is checked, and the harness aborts on:
 *   - JSON: a line that is not one JSON object (the validator below),
 *     invalid UTF-8;
 *   - text, credentials: invalid UTF-8, a control character other than
 *     LF, a C1 control, U+2028/U+2029, a bidirectional embedding, override
 *     or isolate, an unprintable character (what mt_esc_text promises a
 *     terminal never gets from the network);
 *   - HTML: invalid UTF-8, a data block (<script type="application/json">)
 *     that is not JSON or holds a raw < > or &, a "</script" that closes
 *     no block of ours;
 *   - extraction: anything created outside DIR, a symbolic link, a file
 *     name with a control character or invalid UTF-8, a message's or
 *     part's `file` not under DIR.
 *
 * Files go under $TMPDIR (/dev/shm when it exists and TMPDIR is unset),
 * in one directory per process, emptied after each input. */

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>

#include "html.h"
#include "output.h"
#include "fuzz_common.h"
#include "fuzz_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, showing the text around byte at (escaped: it may be what a
 * terminal must not get). */
static void fail(const char *what, const char *text, size_t at)
{
    size_t from = at > 60 ? at - 60 : 0;
    size_t n = strnlen(text + from, 120);
    GString *ctx = g_string_new(NULL);
    mt_esc_text(ctx, text + from, n);
    fprintf(stderr, "fuzz_output: %s at byte %zu: ...%s\n", what, at, ctx->str);
    abort();
}

/* ---- a JSON validator (RFC 8259), depth-capped ---- */

struct jp {
    const char *p, *end;
    int depth;
};

static void j_ws(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\r' || *j->p == '\n'))
        j->p++;
}

static bool j_lit(struct jp *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0)
        return false;
    j->p += n;
    return true;
}

static bool j_string(struct jp *j)
{
    if (j->p >= j->end || *j->p != '"')
        return false;
    j->p++;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (j->p >= j->end)
            return false;
        c = (unsigned char)*j->p++;
        if (c == 'u') {
            for (int k = 0; k < 4; k++)
                if (j->p >= j->end || !g_ascii_isxdigit(*j->p++))
                    return false;
        } else if (!strchr("\"\\/bfnrt", c) || c == 0) {
            return false;
        }
    }
    return false;
}

static bool j_digits(struct jp *j)
{
    const char *s = j->p;
    while (j->p < j->end && g_ascii_isdigit(*j->p))
        j->p++;
    return j->p > s;
}

static bool j_number(struct jp *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (!j_digits(j))
        return false;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!j_digits(j))
            return false;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!j_digits(j))
            return false;
    }
    return true;
}

static bool j_value(struct jp *j);

static bool j_seq(struct jp *j, char close, bool members)
{
    if (++j->depth > 64)
        return false;
    j->p++;
    j_ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return true;
    }
    for (;;) {
        j_ws(j);
        if (members) {
            if (!j_string(j))
                return false;
            j_ws(j);
            if (j->p >= j->end || *j->p++ != ':')
                return false;
            j_ws(j);
        }
        if (!j_value(j))
            return false;
        j_ws(j);
        if (j->p >= j->end)
            return false;
        char c = *j->p++;
        if (c == close) {
            j->depth--;
            return true;
        }
        if (c != ',')
            return false;
    }
}

static bool j_value(struct jp *j)
{
    if (j->p >= j->end)
        return false;
    switch (*j->p) {
    case '{': return j_seq(j, '}', true);
    case '[': return j_seq(j, ']', false);
    case '"': return j_string(j);
    case 't': return j_lit(j, "true");
    case 'f': return j_lit(j, "false");
    case 'n': return j_lit(j, "null");
    default: return j_number(j);
    }
}

/* p[0..n) is exactly one JSON value (an object when object is set). */
static bool json_valid(const char *p, size_t n, bool object)
{
    struct jp j = { p, p + n, 0 };
    j_ws(&j);
    if (object && (j.p >= j.end || *j.p != '{'))
        return false;
    if (!j_value(&j))
        return false;
    j_ws(&j);
    return j.p == j.end;
}

/* ---- what each output may hold ---- */

static void check_utf8(const char *what, const char *s, size_t n)
{
    const gchar *bad;
    if (!g_utf8_validate_len(s, n, &bad))
        fail(what, s, (size_t)(bad - s));
}

static void check_json_lines(const char *what, const char *s, size_t n)
{
    check_utf8(what, s, n);
    size_t at = 0;
    while (at < n) {
        const char *nl = memchr(s + at, '\n', n - at);
        size_t end = nl ? (size_t)(nl - s) : n;
        if (!json_valid(s + at, end - at, true))
            fail("a JSON line that is not one JSON object", s, at);
        at = end + 1;
    }
}

/* What mt_esc_text never lets through from the network. */
static bool unsafe_char(gunichar u)
{
    if (u == '\n')
        return false;
    return u < 0x20 || u == 0x7f || (u >= 0x80 && u < 0xa0) || u == 0x2028 || u == 0x2029 ||
           (u >= 0x202a && u <= 0x202e) || (u >= 0x2066 && u <= 0x2069) || !g_unichar_isprint(u);
}

static void check_terminal_text(const char *what, const char *s, size_t n)
{
    check_utf8(what, s, n);
    for (const char *p = s; p < s + n; p = g_utf8_next_char(p))
        if (unsafe_char(g_utf8_get_char(p))) {
            char m[160];
            snprintf(m, sizeof(m), "%s: U+%04X reaches the terminal", what,
                     (unsigned)g_utf8_get_char(p));
            fail(m, s, (size_t)(p - s));
        }
}

static const char *find_ci(const char *s, size_t n, const char *w)
{
    size_t k = strlen(w);
    for (size_t i = 0; i + k <= n; i++)
        if (g_ascii_strncasecmp(s + i, w, k) == 0)
            return s + i;
    return NULL;
}

static void check_html(const char *s, size_t n)
{
    static const char open[] = "<script type=\"application/json\" id=\"";
    size_t at = 0, blocks = 0, closes = 0;

    check_utf8("HTML", s, n);
    for (const char *c = s; (c = find_ci(c, n - (size_t)(c - s), "</script")); c++)
        closes++;
    /* the page's own scripts: the last one and its style have no network
     * bytes; every data block is JSON without < > & */
    for (;;) {
        const char *b = memmem(s + at, n - at, open, sizeof(open) - 1);
        if (!b)
            break;
        const char *gt = memchr(b, '>', n - (size_t)(b - s));
        if (!gt)
            fail("HTML: a data block's tag is not closed", s, (size_t)(b - s));
        const char *e = find_ci(gt + 1, n - (size_t)(gt + 1 - s), "</script");
        if (!e)
            fail("HTML: a data block is not closed", s, (size_t)(b - s));
        for (const char *q = gt + 1; q < e; q++)
            if (*q == '<' || *q == '>' || *q == '&')
                fail("HTML: a raw < > & in a data block", s, (size_t)(q - s));
        if (!json_valid(gt + 1, (size_t)(e - gt - 1), false))
            fail("HTML: a data block that is not JSON", s, (size_t)(gt + 1 - s));
        blocks++;
        at = (size_t)(e - s) + 8;
    }
    if (closes != blocks + 1) /* + the page script */
        fail("HTML: a </script> that closes no block of ours", s, 0);
}

/* ---- the extraction directory ---- */

static char *base_dir, *x_dir, *html_path;
static size_t x_len;

static void rm_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char *c = g_build_filename(path, de->d_name, NULL);
            rm_tree(c);
            g_free(c);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Everything under dir: no links, names safe to show. */
static void check_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *c = g_build_filename(dir, de->d_name, NULL);
        struct stat st;
        if (lstat(c, &st) != 0 || S_ISLNK(st.st_mode))
            fail("extraction: a symbolic link (or a vanished file)", c, 0);
        size_t nl = strlen(de->d_name);
        check_terminal_text("extraction: a file name", de->d_name, nl);
        if (S_ISDIR(st.st_mode))
            check_tree(c);
        g_free(c);
    }
    closedir(d);
}

static void check_base(void)
{
    DIR *d = opendir(base_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !strcmp(de->d_name, "x") ||
            !strcmp(de->d_name, "report.html"))
            continue;
        fail("extraction: a file written beside DIR", de->d_name, 0);
    }
    if (d)
        closedir(d);
    check_tree(x_dir);
}

static void check_under_x(const char *path)
{
    if (!path)
        return;
    if (strncmp(path, x_dir, x_len) != 0 || path[x_len] != '/' || strstr(path, "/../") ||
        strstr(path, "/./"))
        fail("extraction: a file outside DIR", path, 0);
}

static void cleanup(void)
{
    rm_tree(base_dir);
}

static void setup(void)
{
    if (base_dir)
        return;
    const char *tmp = g_getenv("TMPDIR");
    if (!tmp)
        tmp = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) ? "/dev/shm" : "/tmp";
    char *tmpl = g_build_filename(tmp, "mailtap-fuzz-output.XXXXXX", NULL);
    if (!g_mkdtemp(tmpl)) {
        fprintf(stderr, "fuzz_output: cannot create %s: %s\n", tmpl, strerror(errno));
        abort();
    }
    base_dir = tmpl;
    x_dir = g_build_filename(base_dir, "x", NULL);
    x_len = strlen(x_dir);
    html_path = g_build_filename(base_dir, "report.html", NULL);
    atexit(cleanup);
}

/* ---- the outputs ---- */

enum { O_JSON_X, O_TEXT, O_CREDS, O_JSON_REDACT, O__N };

struct outs {
    struct mt_output *o[O__N];
    FILE *f[O__N];
    char *buf[O__N];
    size_t len[O__N];
    struct mt_html *html;
};

static void html_tee(void *ud, struct mt_event *ev)
{
    mt_html_event(ud, ev);
}

static void sink_all(void *ud, struct mt_event *ev)
{
    struct outs *w = ud;
    fz_sink(NULL, ev);
    for (int i = 0; i < O__N; i++)
        mt_output_event(w->o[i], ev);
    if (ev->type == MT_EV_MESSAGE) {
        check_under_x(ev->u.msg->file);
        for (size_t i = 0; i < ev->u.msg->nparts; i++)
            check_under_x(ev->u.msg->parts[i].file);
    }
}

static char *read_file(const char *path, size_t *n)
{
    gchar *s = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &s, &len, NULL)) {
        fprintf(stderr, "fuzz_output: %s not written\n", path);
        abort();
    }
    *n = len;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    setup();
    rm_tree(x_dir);
    unlink(html_path);

    struct outs w;
    memset(&w, 0, sizeof(w));
    char err[256];
    w.html = mt_html_new(html_path, x_dir, false, err, sizeof(err));
    if (!w.html) {
        fprintf(stderr, "fuzz_output: %s\n", err);
        abort();
    }
    for (int i = 0; i < O__N; i++) {
        struct mt_output_opts oo;
        memset(&oo, 0, sizeof(oo));
        w.f[i] = open_memstream(&w.buf[i], &w.len[i]);
        oo.out = w.f[i];
        oo.format = i == O_TEXT ? MT_FMT_TEXT : i == O_CREDS ? MT_FMT_CREDENTIALS : MT_FMT_JSON;
        oo.redact = i == O_CREDS || i == O_JSON_REDACT;
        if (i == O_JSON_X) {
            oo.extract_dir = x_dir;
            oo.tee = html_tee;
            oo.tee_ud = w.html;
        }
        w.o[i] = mt_output_new(&oo, err, sizeof(err));
        if (!w.o[i]) {
            fprintf(stderr, "fuzz_output: %s\n", err);
            abort();
        }
    }

    fz_session_run(data, size, sink_all, &w, NULL, NULL, NULL);

    struct mt_run_stats rs = { .packets = 10, .bytes = size, .tcp = 10 };
    for (int i = 0; i < O__N; i++) {
        mt_output_finish(w.o[i]);
        if (i != O_CREDS)
            mt_summary_print(mt_output_summary(w.o[i]), &rs, i != O_TEXT, w.f[i]);
        mt_output_free(w.o[i]);
        fclose(w.f[i]);
    }
    if (!mt_html_finish(w.html, err, sizeof(err))) {
        fprintf(stderr, "fuzz_output: %s\n", err);
        abort();
    }
    mt_html_free(w.html);

    check_json_lines("JSON", w.buf[O_JSON_X], w.len[O_JSON_X]);
    check_json_lines("JSON --redact", w.buf[O_JSON_REDACT], w.len[O_JSON_REDACT]);
    check_terminal_text("text", w.buf[O_TEXT], w.len[O_TEXT]);
    check_terminal_text("credentials", w.buf[O_CREDS], w.len[O_CREDS]);
    size_t hn;
    char *h = read_file(html_path, &hn);
    check_html(h, hn);
    g_free(h);
    check_base();

    for (int i = 0; i < O__N; i++)
        free(w.buf[i]);
    rm_tree(x_dir);
    unlink(html_path);
    return 0;
}
