/* MIME decoding of a complete message through GMime 3.
 *
 * GMime does all the MIME parsing (RFC 2045-2049, RFC 2047 encoded-words,
 * RFC 2231 parameters); this file only drives it, walks the tree it
 * builds, applies mailtap's caps and copies out what the events need.
 *
 * Part paths.  Every node of the tree gets a path, close to IMAP section
 * numbers (RFC 3501 6.4.5) but with one number per node so that every
 * node, containers included, is named:
 *   - the root part of the message is "1";
 *   - the i-th child (from 1) of a multipart at path P is "P.i";
 *   - a message/rfc822 part at path P has one child, the root part of the
 *     embedded message, at "P.1"; that root's children are "P.1.1", ...
 * So "multipart/mixed { text/plain, message/rfc822 { multipart/alternative
 * { text/plain, text/html } } }" gives 1, 1.1, 1.2, 1.2.1, 1.2.1.1,
 * 1.2.1.2.  depth is the number of dots (the root has depth 0).
 *
 * Containers (multipart/..., and message/rfc822 parts that GMime parsed into
 * an embedded message) carry no data and an empty sha256, with one
 * exception: a multipart whose boundary is missing or never occurs keeps
 * what GMime put into its prologue (the whole body) as its data, so that
 * nothing of the message is lost (mime_no_boundary).
 *
 * Depth and part-count bombs.  GMime's parser recurses once per nesting
 * level but stops at its own MAX_LEVEL (1024 in gmime-parser.c, reported
 * as GMIME_CRIT_NESTING_OVERFLOW), so its stack use is bounded; the walk
 * below is iterative and stops at lim->mime_depth_max.  GMime has no cap
 * on the number of parts, though, and allocates a few hundred bytes of
 * objects per part, a part costing as few as 8 bytes of input.  Every
 * part but the root needs a line starting with "--" (its boundary line),
 * so mime_bomb_cut() counts such lines first and hands GMime only the
 * input before the line that passes MT_CAP_MIME_DELIM_LINES(parts cap),
 * counted over all of GMime's parses of the message (the embedded messages
 * parsed again from their decoded bytes included). */
#include "mime.h"
#include "mime_int.h"
#include "b64.h"

#include <stdarg.h>
#include <string.h>

#include <gmime/gmime.h>

#include "caps.h"
#include "hash.h"

/* Charsets tried, in order, for 8-bit text that declares none (raw header
 * bytes, parameters, text bodies without charset=).  UTF-8 first since it
 * validates strictly; GB18030 is a superset of GB2312 and GBK and rejects
 * most Latin-1 text; ISO-8859-1 accepts any byte and ends the list. */
const char *mime_fallback_charsets[] = { "UTF-8", "GB18030", "ISO-8859-1", NULL };

void mime_anomaly(struct mime_ctx *c, enum mt_anomaly a, const char *detail)
{
    if (c->cb)
        c->cb(c->ud, a, detail);
}

/* Anomalies about the message as a whole are raised once per message. */
static void mime_anomaly_once(struct mime_ctx *c, enum mt_anomaly a, const char *detail)
{
    unsigned bit;

    switch (a) {
    case MT_AN_MIME_DEPTH: bit = 1u; break;
    case MT_AN_MIME_PARTS: bit = 2u; break;
    case MT_AN_HEADER_TOO_LARGE: bit = 4u; break;
    default: bit = 0u; break;
    }
    if (bit && (c->reported & bit))
        return;
    c->reported |= bit;
    mime_anomaly(c, a, detail);
}

static void mime_parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
                                gpointer user_data)
{
    struct mime_ctx *c = user_data;

    (void)item;
    if (code == GMIME_CRIT_NESTING_OVERFLOW) {
        g_snprintf(c->detail, sizeof c->detail,
                   "GMime stopped nesting at byte %" G_GINT64_FORMAT, offset);
        mime_anomaly_once(c, MT_AN_MIME_DEPTH, c->detail);
    }
}

/* 1 for the bytes a base64 body may hold: the alphabet and padding of
 * RFC 2045 6.8 and the white space of line folding. */
static uint8_t mime_b64_ok[256];

static void mime_b64_table_init(void)
{
    const char *ok = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n";

    for (; *ok; ok++)
        mime_b64_ok[(guchar)*ok] = 1;
}

static GMimeParserOptions *mime_options_new(void)
{
    GMimeParserOptions *opts = g_mime_parser_options_new();

    g_mime_parser_options_set_fallback_charsets(opts, mime_fallback_charsets);
    g_mime_parser_options_set_rfc2047_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(opts, GMIME_RFC_COMPLIANCE_LOOSE);
    return opts;
}

static GMimeParserOptions *mime_fast_opts;

/* GMime's classes that parsing and writing messages may make objects of.
 * GLib makes a class the first time an object of it is made, under its
 * own locks; with --workers two threads may be the first at once.  Made
 * here, while one thread runs (mt_mime_global_init is called before any
 * other thread starts), they are ready before anyone needs them.  This
 * also keeps ThreadSanitizer, which does not see GLib's locks in an
 * uninstrumented libglib, from taking the class's first use in another
 * thread for a race. */
static GType (*const mime_class_types[])(void) = {
    g_mime_application_pkcs7_mime_get_type, g_mime_content_disposition_get_type,
    g_mime_content_type_get_type, g_mime_data_wrapper_get_type, g_mime_filter_basic_get_type,
    g_mime_filter_best_get_type, g_mime_filter_charset_get_type, g_mime_filter_checksum_get_type,
    g_mime_filter_dos2unix_get_type, g_mime_filter_unix2dos_get_type,
    g_mime_header_list_get_type, g_mime_message_get_type, g_mime_message_part_get_type,
    g_mime_message_partial_get_type, g_mime_multipart_get_type,
    g_mime_multipart_encrypted_get_type, g_mime_multipart_signed_get_type,
    g_mime_param_list_get_type, g_mime_parser_get_type, g_mime_part_get_type,
    g_mime_stream_buffer_get_type, g_mime_stream_cat_get_type, g_mime_stream_filter_get_type,
    g_mime_stream_mem_get_type, g_mime_stream_null_get_type, g_mime_text_part_get_type,
    internet_address_group_get_type, internet_address_list_get_type,
    internet_address_mailbox_get_type,
};

static gpointer mime_init_once(gpointer arg)
{
    (void)arg;
    g_mime_init();
    for (size_t i = 0; i < G_N_ELEMENTS(mime_class_types); i++) {
        GType t = mime_class_types[i]();
        if (G_TYPE_IS_CLASSED(t))
            (void)g_type_class_ref(t); /* kept for the whole run */
    }
    mime_b64_table_init();
    mime_fast_opts = mime_options_new();
    return NULL;
}

GMimeParserOptions *mime_fast_options(void)
{
    return mime_fast_opts;
}

void mt_mime_global_init(void)
{
    static GOnce once = G_ONCE_INIT;

    g_once(&once, mime_init_once, NULL);
}

/* Valid UTF-8 copy of s, at most cap bytes, cut at a character boundary. */
char *mime_utf8_dup(const char *s, gssize n, size_t cap)
{
    char *v, *end;
    size_t len;

    if (!s)
        return NULL;
    v = g_utf8_make_valid(s, n);
    len = strlen(v);
    if (len > cap) {
        end = g_utf8_find_prev_char(v, v + cap + 1);
        *(end ? end : v) = '\0';
    }
    return v;
}

char *mime_lower_dup(const char *s)
{
    char *v;

    if (!s)
        return NULL;
    v = g_strstrip(g_ascii_strdown(s, -1));
    if (!*v) {
        g_free(v);
        return NULL;
    }
    return v;
}

/* Length of the header block: up to the first empty line (RFC 5322 2.1),
 * or all of the input if there is none. */
static size_t mime_header_len(const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *end = data + len, *nl;

    for (;;) {
        if (end - p >= 1 && p[0] == '\n')
            return (size_t)(p - data);
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
            return (size_t)(p - data);
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return len;
        p = nl + 1;
    }
}

/* Documented in mime_int.h. */
size_t mime_dash_line(const char *d, size_t pos, size_t end)
{
    size_t start = pos;
    while (pos < end) {
        const char *q = memchr(d + pos, '-', end - pos);
        if (!q)
            break;
        size_t i = (size_t)(q - d);
        if (i == start || d[i - 1] == '\n')
            return i;
        pos = i + 1;
    }
    return end;
}

/* Where to cut the input so that GMime sees at most MT_CAP_MIME_DELIM_LINES
 * lines starting with "--" (see the comment at the top) in all its parses
 * of one message: *n counts those already handed to it (the message's,
 * then those of the embedded messages parsed again from its parts). */
static size_t mime_bomb_cut(const uint8_t *data, size_t len, uint32_t parts_max, uint64_t *n)
{
    const uint64_t max = MT_CAP_MIME_DELIM_LINES(parts_max);
    const char *d = (const char *)data;
    size_t pos = 0;

    while ((pos = mime_dash_line(d, pos, len)) < len) {
        if (len - pos >= 2 && d[pos + 1] == '-' && ++*n > max) {
            *n = max; /* what stays handed */
            return pos;
        }
        const char *nl = memchr(d + pos, '\n', len - pos);
        if (!nl)
            break;
        pos = (size_t)(nl - d) + 1;
    }
    return len;
}

/* The length of the encoded word's start "=?charset?E?" at d[i] (d[i] is
 * '=' and d[i+1] '?'), or 0. */
static size_t mime_eword_start(const char *d, size_t i, size_t end)
{
    size_t j = i + 2;

    while (j < end && d[j] != '?' && d[j] > ' ' && d[j] < 0x7f)
        j++;
    if (j == i + 2 || j + 2 >= end || d[j] != '?' || d[j + 2] != '?')
        return 0;
    char enc = g_ascii_toupper(d[j + 1]);
    return enc == 'B' || enc == 'Q' ? j + 3 - i : 0;
}

/* GMime's steps for the field d[a..b): from each "=?" to the first "?="
 * after it, or to the end of the field.  Every "=?" counts, a word start
 * or not: GMime looks for the end of those with an empty, 8-bit or
 * control-character charset too. */
static uint64_t mime_eword_steps(const char *d, size_t a, size_t b)
{
    uint64_t steps = 0;
    size_t close = b; /* the first "?=" at or after i + 2 */

    for (size_t i = b; i-- > a;) {
        if (i + 3 < b && d[i + 2] == '?' && d[i + 3] == '=')
            close = i + 2;
        if (d[i] == '=' && i + 1 < b && d[i + 1] == '?')
            steps += close - i;
    }
    return steps;
}

/* ---- what GMime is not handed (caps.h, docs/caps.md) -------------------- */

struct mime_eword;
static bool mime_eword_at(const char *v, size_t n, size_t i, struct mime_eword *w);
static void mime_q_bytes(const char *t, size_t n, GByteArray *out, unsigned *state);
static GByteArray *mime_unworded(const char *v, size_t n);

/* White space between encoded words, and around parameters (not NUL, which
 * strchr would match). */
static inline bool mime_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The walk over one input's header blocks. */
struct mime_guard {
    struct mime_guard_totals *t;     /* the message's totals */
    struct mime_charset_seen word;   /* the last encoded word's charset */
    bool nested;                     /* the block's Content-Type may be message/... */
    bool ctype;                      /* the block has a Content-Type, */
    bool ctype_other;                /* each a plain type/subtype, not message */
    char *why;                       /* set at the first field refused */
    size_t whylen;
    bool dry;                        /* stop at the first field refused */
    GByteArray *out;                 /* else the input without the refused */
    size_t copied;                   /* fields: what is before this is in out */
    uint64_t dropped;                /* fields left out of out */
    size_t first;                    /* where the first of them starts */
};

/* The header fields the guard looks into beyond their size. */
enum mime_field_kind { MF_OTHER, MF_ADDRESS, MF_CTYPE, MF_CDISP, MF_DATE };

/* Which of them the name n[0..len) is: one comparison at most (the guard
 * runs on every field of every message). */
static enum mime_field_kind mime_field_kind(const char *n, size_t len)
{
    const char *want;
    enum mime_field_kind kind;

    switch (len) {
    case 2: want = g_ascii_tolower(n[0]) == 't' ? "to" : "cc"; kind = MF_ADDRESS; break;
    case 3: want = "bcc"; kind = MF_ADDRESS; break;
    case 4:
        if (g_ascii_tolower(n[0]) == 'f')
            want = "from", kind = MF_ADDRESS;
        else
            want = "date", kind = MF_DATE;
        break;
    case 6: want = "sender"; kind = MF_ADDRESS; break;
    case 8: want = "reply-to"; kind = MF_ADDRESS; break;
    case 11: want = "resent-date"; kind = MF_DATE; break;
    case 12: want = "content-type"; kind = MF_CTYPE; break;
    case 19: want = "content-disposition"; kind = MF_CDISP; break;
    default: return MF_OTHER;
    }
    return g_ascii_strncasecmp(n, want, len) == 0 ? kind : MF_OTHER;
}

/* Whether a Content-Type value is plainly "type/subtype" (tokens, then
 * the end, white space or ';') of a type other than message: one GMime
 * parses as it stands, never taken for message/rfc822 in a digest. */
static bool mime_ctype_other(const char *v, size_t n)
{
    size_t i = 0, t0, t1;

    while (i < n && mime_ws(v[i]))
        i++;
    for (t0 = i; i < n && mime_token_char(v[i]); i++)
        ;
    t1 = i;
    if (t1 == t0 || i >= n || v[i] != '/')
        return false;
    size_t s0 = ++i;
    while (i < n && mime_token_char(v[i]))
        i++;
    if (i == s0 || (i < n && !mime_ws(v[i]) && v[i] != ';'))
        return false;
    return !(t1 - t0 == 7 && g_ascii_strncasecmp(v + t0, "message", 7) == 0);
}

/* Whether d[a..b) holds "=?" (cheaper than memmem: '?' is rare in headers). */
static bool mime_has_eword(const char *d, size_t a, size_t b)
{
    for (size_t i = a + 1; i < b;) {
        const char *q = memchr(d + i, '?', b - i);
        if (!q)
            return false;
        if (q[-1] == '=')
            return true;
        i = (size_t)(q - d) + 1;
    }
    return false;
}

/* One byte v[*i] inside a quoted string or a comment: a backslash takes
 * the next byte with it, '"' ends the string, '(' and ')' nest the
 * comment. */
static void mime_inside_step(const char *v, size_t n, size_t *i, bool *quoted, size_t *depth)
{
    char ch = v[*i];

    if (ch == '\\' && *i + 1 < n)
        (*i)++;
    else if (*quoted && ch == '"')
        *quoted = false;
    else if (*depth && ch == '(')
        (*depth)++;
    else if (*depth && ch == ')')
        (*depth)--;
}

/* Whether v[i] (a '"') opens a parameter's value as GMime reads it: after
 * "; name =" with white space anywhere between ("a==\"..." and
 * "text/plain =\"..." are not: GMime splits inside those quotes). */
static bool mime_param_quote(const char *v, size_t i)
{
    size_t j = i, t;

    while (j > 0 && mime_ws(v[j - 1]))
        j--;
    if (j == 0 || v[--j] != '=')
        return false;
    while (j > 0 && mime_ws(v[j - 1]))
        j--;
    for (t = j; t > 0 && mime_token_char(v[t - 1]);)
        t--;
    if (t == j)
        return false;
    while (t > 0 && mime_ws(v[t - 1]))
        t--;
    return t > 0 && v[t - 1] == ';';
}

/* Whether quoted strings and comments in v[0..n) are as GMime reads them
 * for sure, else the guard counts every comma, colon or semicolon (where
 * GMime's error recovery may take another turn than its walk: "x\", a a,
 * ...", "x \"a a, a a\"" and "a@[(], a a, ..." cost GMime the square of
 * their length).  Each '"' opens where GMime starts a quoted word: in an
 * address field at an item's start (after ',' or the field's
 * start, white space aside), in a parameter list right after "; name =";
 * each closes, each comment closes (where comment_ok), and no '[' or
 * backslash stands outside them. */
static bool mime_quotes_plain(const char *v, size_t n, bool comment_ok, bool eq)
{
    size_t depth = 0;
    bool quoted = false;
    char prev = ','; /* the last byte that is not white space */

    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        if (quoted || depth) {
            mime_inside_step(v, n, &i, &quoted, &depth);
            prev = ')';
            continue;
        }
        if (ch == '"') {
            if (eq ? !mime_param_quote(v, i) : prev != ',')
                return false;
            quoted = true;
        } else if (ch == '(') {
            if (!comment_ok)
                return false;
            depth = 1;
        } else if (ch == '[' || ch == '\\') {
            return false;
        }
        if (!mime_ws(ch))
            prev = ch;
    }
    return !quoted && depth == 0;
}

/* What GMime's address parser spends on the field v[0..n): items are split
 * at commas; one with no '@' or '<' costs the rest of the field, the
 * others their length.  Quoted strings and comments hide commas, '@' and
 * '<' only where mime_quotes_plain says GMime reads them so; otherwise
 * every comma splits and every '@' or '<' counts. */
static uint64_t mime_addr_steps(const char *v, size_t n)
{
    uint64_t steps = 0;
    size_t item = 0, comment = 0;
    bool plain = mime_quotes_plain(v, n, true, false);
    bool quoted = false, addr = false, blank = true;

    for (size_t i = 0; i <= n; i++) {
        char ch = i < n ? v[i] : ',';
        if (i == n)
            quoted = false, comment = 0; /* the field's end ends the last item */
        if (quoted || comment) {
            mime_inside_step(v, n, &i, &quoted, &comment);
            blank = false;
            continue;
        }
        if (ch == ',') {
            steps += blank ? 0 : addr ? i - item : n - item;
            item = i + 1;
            addr = false;
            blank = true;
            continue;
        }
        if (plain && ch == '"')
            quoted = true;
        else if (plain && ch == '(')
            comment = 1;
        else if (ch == '@' || ch == '<')
            addr = true;
        if (!mime_ws(ch))
            blank = false;
    }
    return steps;
}

/* Bytes ch in v[0..n). */
static uint64_t mime_count(const char *v, size_t n, char ch)
{
    uint64_t k = 0;

    for (const char *q = v; (q = memchr(q, ch, (size_t)(v + n - q))); q++)
        k++;
    return k;
}

/* Bytes ch in v[0..n) outside quoted strings and comments. */
static uint64_t mime_count_unquoted(const char *v, size_t n, char ch)
{
    uint64_t k = 0;
    size_t depth = 0;
    bool quoted = false;

    for (size_t i = 0; i < n; i++) {
        if (quoted || depth)
            mime_inside_step(v, n, &i, &quoted, &depth);
        else if (v[i] == '"')
            quoted = true;
        else if (v[i] == '(')
            depth = 1;
        else if (v[i] == ch)
            k++;
    }
    return k;
}

/* The colons of an address field v[0..n) that may open a group: those
 * outside quoted strings and comments where mime_quotes_plain says GMime
 * reads them so ("Sales: EMEA" <a@b> has none), else every one. */
static uint64_t mime_addr_colons(const char *v, size_t n)
{
    uint64_t k = mime_count(v, n, ':');

    if (k <= MT_CAP_ADDR_GROUPS || !mime_quotes_plain(v, n, true, false))
        return k;
    return mime_count_unquoted(v, n, ':');
}

/* The parameters of v[0..n): semicolons outside quoted strings where
 * mime_quotes_plain says GMime reads them so (a '"' right after "; name =",
 * no comment), else every semicolon. */
static uint64_t mime_param_count(const char *v, size_t n)
{
    uint64_t k = mime_count(v, n, ';');

    /* few: every semicolon counted costs next to nothing */
    if (k <= 64 || !mime_quotes_plain(v, n, false, true))
        return k;
    return mime_count_unquoted(v, n, ';');
}

/* Sets g->why, when it is wanted: a message of millions of fields left
 * out would otherwise spend its time formatting reasons nobody reads. */
static void mime_guard_why(struct mime_guard *g, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void mime_guard_why(struct mime_guard *g, const char *fmt, ...)
{
    va_list ap;

    if (g->whylen == 0)
        return;
    va_start(ap, fmt);
    g_vsnprintf(g->why, (gulong)g->whylen, fmt, ap);
    va_end(ap);
}

/* The charset cs[0..len) opened after the one last seen: a change counts
 * toward MT_CAP_EWORD_CHARSETS (GMime opens an iconv converter at each);
 * false past it, with why naming what changes ("encoded words",
 * "parameter values"). */
static bool mime_guard_charset(struct mime_guard *g, struct mime_charset_seen *last,
                               const char *cs, size_t len, const char *what)
{
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */

    for (size_t i = 0; i < len; i++)
        h = (h ^ (guint8)g_ascii_tolower(cs[i])) * UINT64_C(1099511628211);
    h ^= len;
    if (last->seen && last->hash == h)
        return true;
    if (last->seen && ++g->t->switches > MT_CAP_EWORD_CHARSETS) {
        mime_guard_why(g, "%s changing charset more than %u times", what,
                       MT_CAP_EWORD_CHARSETS);
        return false;
    }
    last->hash = h;
    last->seen = true;
    return true;
}

/* Encoded words of the field d[a..b): the decoder's steps (per field and
 * in all), and the changes of charset from one word to the next. */
static bool mime_guard_ewords(struct mime_guard *g, const char *d, size_t a, size_t b)
{
    uint64_t steps = mime_eword_steps(d, a, b);

    if (steps > MT_CAP_EWORD_STEPS) {
        mime_guard_why(g, "a header field of unclosed encoded words (more than %u "
                       "decoding steps)", MT_CAP_EWORD_STEPS);
        return false;
    }
    g->t->esteps += steps;
    if (g->t->esteps > MT_CAP_EWORD_TOTAL) {
        mime_guard_why(g, "encoded words of more than %u decoding steps in all",
                       MT_CAP_EWORD_TOTAL);
        return false;
    }
    for (size_t i = a; i + 1 < b;) {
        const char *q = memmem(d + i, b - i, "=?", 2);
        if (!q)
            break;
        i = (size_t)(q - d);
        size_t w = mime_eword_start(d, i, b);
        if (!w) {
            i += 2;
            continue;
        }
        if (!mime_guard_charset(g, &g->word, d + i + 2, w - 5, "encoded words"))
            return false;
        i += w;
    }
    return true;
}

/* RFC 2231 values with a charset ("name*=charset'lang'..." or
 * "name*0*=charset'..."): GMime opens a converter for each, so a change of
 * charset from one to the next counts as one between encoded words does
 * (16 fields of 1,000 parameters cycling through 12 charsets: 1.5 s). */
static bool mime_guard_2231(struct mime_guard *g, const char *v, size_t n)
{
    for (const char *q = v; (q = memchr(q, '*', (size_t)(v + n - q))); q++) {
        const char *c = q + 1;
        if (c >= v + n || *c != '=')
            continue;
        c++;
        while (c < v + n && (*c == ' ' || *c == '\t' || *c == '"'))
            c++;
        const char *cs = c;
        while (c < v + n && mime_token_char(*c) && *c != '\'')
            c++;
        if (c >= v + n || *c != '\'' || c == cs)
            continue;
        if (!mime_guard_charset(g, &g->t->p2231, cs, (size_t)(c - cs), "parameter values"))
            return false;
    }
    return true;
}

/* Whether GMime may be handed the header field d[a..b); if not, g->why
 * says why. */
static bool mime_guard_field(struct mime_guard *g, const char *d, size_t a, size_t b)
{
    size_t len = b - a;
    const char *nl = memchr(d + a, '\n', len);
    size_t line = nl ? (size_t)(nl - (d + a)) : len;
    const char *colon = memchr(d + a, ':', line);
    size_t nlen = colon ? (size_t)(colon - (d + a)) : line;

    if (!colon) /* not a field: GMime skips the line */
        return true;
    if (++g->t->fields > MT_CAP_GMIME_FIELDS) {
        mime_guard_why(g, "more than %u header fields", MT_CAP_GMIME_FIELDS);
        return false;
    }
    if (len > MT_CAP_GMIME_FIELD) {
        mime_guard_why(g, "a header field of %zu bytes (more than %u)", len,
                       MT_CAP_GMIME_FIELD);
        return false;
    }
    if (nlen > MT_CAP_GMIME_NAME) {
        mime_guard_why(g, "a header field name of %zu bytes (more than %u)", nlen,
                       MT_CAP_GMIME_NAME);
        return false;
    }
    bool worded = mime_has_eword(d, a, b);
    if (worded && !mime_guard_ewords(g, d, a, b))
        return false;
    const char *n = d + a, *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (nlen > 0 && (n[nlen - 1] == ' ' || n[nlen - 1] == '\t'))
        nlen--;
    enum mime_field_kind kind = mime_field_kind(n, nlen);
    if (kind == MF_ADDRESS) {
        /* colons outside quoted strings and comments where plainly
         * formed, else every one (GMime may take any for a group's) */
        uint64_t steps = 1, colons = mime_addr_colons(v, vlen);
        if (colons > MT_CAP_ADDR_GROUPS) {
            mime_guard_why(g, "an address field of %" G_GUINT64_FORMAT " colons (groups; more "
                           "than %u)", colons, MT_CAP_ADDR_GROUPS);
            return false;
        }
        g->t->groups += colons;
        if (g->t->groups > MT_CAP_ADDR_GROUPS_TOTAL) {
            mime_guard_why(g, "address fields of more than %u group colons in all",
                           MT_CAP_ADDR_GROUPS_TOTAL);
            return false;
        }
        /* items: every comma splits, quoted or not */
        uint64_t items = mime_count(v, vlen, ',') + 1;
        g->t->items += items;
        if (g->t->items > MT_CAP_ADDR_ITEMS) {
            mime_guard_why(g, "address fields of more than %u items in all",
                           MT_CAP_ADDR_ITEMS);
            return false;
        }
        if (vlen <= MT_CAP_ADDR_GROUPS) {
            /* short: (items) x (length) bounds the steps, found faster
             * than walking quotes and comments */
            steps = items * vlen;
        } else {
            steps = mime_addr_steps(v, vlen);
        }
        g->t->asteps += steps;
        if (g->t->asteps > MT_CAP_ADDR_STEPS) {
            mime_guard_why(g, "address fields of items without an address (more "
                           "than %u parsing steps in all)", MT_CAP_ADDR_STEPS);
            return false;
        }
    } else if (kind == MF_CTYPE || kind == MF_CDISP) {
        /* GMime reads the parameters of the value with its encoded words
         * decoded: a Base64 word may hide any number of them */
        GByteArray *dec = worded ? mime_unworded(v, vlen) : NULL;
        const char *pv = dec ? (const char *)dec->data : v;
        size_t pn = dec ? dec->len : vlen;
        uint64_t k = mime_param_count(pv, pn);
        bool cs_ok = mime_guard_2231(g, pv, pn);
        if (dec)
            g_byte_array_unref(dec);
        if (!cs_ok)
            return false;
        g->t->params += k;
        if (g->t->params > MT_CAP_PARAMS) {
            mime_guard_why(g, "Content-Type or -Disposition fields of more than %u "
                           "parameters in all", MT_CAP_PARAMS);
            return false;
        }
        g->t->psteps += k * k / 2;
        if (g->t->psteps > MT_CAP_PARAM_STEPS) {
            mime_guard_why(g, "Content-Type or -Disposition fields of too many "
                           "parameters (%" G_GUINT64_FORMAT " in one; more than %u parsing steps "
                           "in all)", k, MT_CAP_PARAM_STEPS);
            return false;
        }
        /* an embedded message's header block follows: "message" anywhere
         * in the value (GMime skips comments, "(c) message/rfc822", and
         * reads "message /rfc822") */
        if (kind == MF_CTYPE) {
            g->ctype_other = (g->ctype_other || !g->ctype) && mime_ctype_other(v, vlen);
            g->ctype = true;
            for (size_t i = 0; i + 6 <= vlen; i++) {
                if ((v[i] | 0x20) == 'm' && i + 7 <= vlen &&
                    g_ascii_strncasecmp(v + i, "message", 7) == 0)
                    g->nested = true;
                /* a digest, whose parts are messages by default */
                if ((v[i] | 0x20) == 'd' && g_ascii_strncasecmp(v + i, "digest", 6) == 0)
                    g->t->digest = true;
            }
        }
    } else if (kind == MF_DATE && len > MT_CAP_GMIME_DATE) {
        mime_guard_why(g, "a Date field of %zu bytes (more than %u)", len,
                       MT_CAP_GMIME_DATE);
        return false;
    }
    return true;
}

/* Checks the field d[a..b) (mime_guard_field): whether the walk goes on.
 * A field refused is dropped from g->out, as if it were not there: the
 * totals and the block's state are as before it, and only the first
 * refusal's why is kept.  A dry walk stops at it instead. */
static bool mime_guard_take(struct mime_guard *g, const char *d, size_t a, size_t b, size_t len)
{
    struct mime_guard_totals t = *g->t;
    struct mime_charset_seen word = g->word;
    bool nested = g->nested, ctype = g->ctype, ctype_other = g->ctype_other;

    if (mime_guard_field(g, d, a, b))
        return true;
    if (g->dry)
        return false;
    *g->t = t;
    g->word = word;
    g->nested = nested;
    g->ctype = ctype;
    g->ctype_other = ctype_other;
    if (!g->out)
        g->out = g_byte_array_sized_new((guint)MIN(len, (size_t)UINT32_MAX));
    g_byte_array_append(g->out, (const guint8 *)d + g->copied, (guint)(a - g->copied));
    g->copied = b;
    if (g->dropped++ == 0) {
        g->first = a;
        g->whylen = 0; /* the first why stays */
    }
    return true;
}

/* Scans the header block at d[pos..) (to its empty line, or len): the
 * start of the first field that stops the walk (a "--" line refused, or
 * any field refused in a dry walk), or len; *next is set past the
 * block. */
static size_t mime_guard_block(struct mime_guard *g, const char *d, size_t pos, size_t len,
                               size_t *next)
{
    size_t field = SIZE_MAX;

    while (pos < len) {
        const char *nl = memchr(d + pos, '\n', len - pos);
        size_t after = nl ? (size_t)(nl - d) + 1 : len;
        bool blank = d[pos] == '\n' || (after - pos == 2 && d[pos] == '\r');
        /* GMime ends a part's block at a boundary line too */
        bool dash = after - pos >= 2 && d[pos] == '-' && d[pos + 1] == '-';
        bool cont = !blank && (d[pos] == ' ' || d[pos] == '\t');
        if (field != SIZE_MAX && !cont) { /* the field before ends here */
            if (!mime_guard_take(g, d, field, pos, len))
                return field;
            field = SIZE_MAX;
        }
        if (dash) {
            /* GMime may also take it for a field ("--x: ..."): checked as
             * one, with its continuation lines, before the caller reads
             * it as a boundary line; refused, it is not dropped (GMime
             * might read it as a boundary: a boundary may hold ':') but
             * ends the input */
            size_t end = after;
            while (end < len && (d[end] == ' ' || d[end] == '\t')) {
                const char *nl2 = memchr(d + end, '\n', len - end);
                end = nl2 ? (size_t)(nl2 - d) + 1 : len;
            }
            if (!mime_guard_field(g, d, pos, end))
                return pos;
        }
        if (blank || dash) {
            *next = blank ? after : pos; /* the "--" line is the caller's */
            return len;
        }
        if (!cont)
            field = pos;
        pos = after;
    }
    *next = len;
    if (field != SIZE_MAX && !mime_guard_take(g, d, field, len, len))
        return field;
    return len;
}

/* The walk over the header blocks GMime would parse in d[0..len), each
 * field checked (mime_guard_take): where it stops (mime_guard_block), or
 * len.  The header blocks looked at are the message's own, those after
 * each line starting with "--" (a delimiter, or taken for one) and an
 * embedded message's (see below); a block ends at its blank line or at a
 * line starting with "--"; bodies are skipped as mime_bomb_cut skips them,
 * by memchr for '-'. */
static size_t mime_guard_walk(struct mime_guard *g, const char *d, size_t len)
{
    size_t pos = 0;

    for (bool part = false;;) {
        g->nested = g->ctype = g->ctype_other = false;
        size_t cut = mime_guard_block(g, d, pos, len, &pos);
        if (cut < len)
            return cut;
        /* the embedded message's own header block: after a message/...
         * type, and after a part's block unless its Content-Type is plainly
         * another type (in a multipart/digest a part without one, or with
         * one GMime cannot parse, is message/rfc822) */
        bool embedded = g->nested || (part && !g->ctype_other);
        part = false;
        if (embedded && pos < len) {
            /* GMime keeps 2 to 4.5 KB of objects for each embedded
             * message, and a field or an empty digest part makes one:
             * past the cap the input ends where the message would start.
             * A part's block without a plain type counts once a digest
             * has been seen (elsewhere it is text/plain to GMime, whatever
             * the walk above supposes) */
            if ((g->nested || g->t->digest) &&
                ++g->t->embedded > MT_CAP_MIME_EMBEDDED_BLOCKS) {
                mime_guard_why(g, "more than %u embedded messages", MT_CAP_MIME_EMBEDDED_BLOCKS);
                return pos;
            }
            continue;
        }
        pos = mime_dash_line(d, pos, len);
        if (pos >= len)
            return len;
        const char *nl = memchr(d + pos, '\n', len - pos);
        if (!nl)
            return len;
        pos = (size_t)(nl - d) + 1; /* the block after the "--" line */
        part = true;
    }
}

/* Whether GMime would be handed data[0..len) as it stands: no header
 * field in it past the caps above (caps.h); t holds the message's
 * totals. */
static bool mime_gmime_takes(const uint8_t *data, size_t len, struct mime_guard_totals *t)
{
    struct mime_guard g = { .t = t, .dry = true };

    return mime_guard_walk(&g, (const char *)data, len) == len;
}

/* What GMime is handed of a message's bytes (mime_gmime_feed). */
struct mime_feed {
    const uint8_t *p;  /* the bytes: the message's own, or copy's */
    size_t len;
    GByteArray *copy;  /* the message without the fields refused, or NULL */
    size_t cut;        /* where the input ends: a "--" line refused, or len */
    uint64_t dropped;  /* fields refused, left out */
    size_t first;      /* where the first of them starts */
};

/* What GMime is handed of data[0..len): the header fields past the caps
 * above (caps.h) left out, each on its own, so that GMime has every field
 * and part around them; a line starting with "--" past them ends the
 * input instead.  why is set to the first refusal's reason; t holds the
 * message's totals.  f->copy is freed by mime_feed_clear. */
static void mime_gmime_feed(const uint8_t *data, size_t len, struct mime_guard_totals *t,
                            char *why, size_t whylen, struct mime_feed *f)
{
    const char *d = (const char *)data;
    struct mime_guard g = { .t = t, .why = why, .whylen = whylen };

    if (whylen)
        why[0] = '\0';
    memset(f, 0, sizeof *f);
    f->cut = mime_guard_walk(&g, d, len);
    f->dropped = g.dropped;
    f->first = g.first;
    f->p = data;
    f->len = f->cut;
    if (g.out) {
        g_byte_array_append(g.out, data + g.copied, (guint)(f->cut - g.copied));
        f->copy = g.out;
        f->p = g.out->data;
        f->len = g.out->len;
    }
}

static void mime_feed_clear(struct mime_feed *f)
{
    if (f->copy)
        g_byte_array_unref(f->copy);
    f->copy = NULL;
}

/* Documented in mime_int.h. */
bool mime_guard_selfcheck(const uint8_t *data, size_t len, uint64_t *left_out)
{
    struct mime_guard_totals t = { 0 }, fresh = { 0 };
    struct mime_feed f;
    bool ok;

    mime_gmime_feed(data, len, &t, NULL, 0, &f);
    *left_out = f.dropped;
    ok = mime_gmime_takes(f.p, f.len, &fresh);
    mime_feed_clear(&f);
    return ok;
}

/* The anomaly's detail for what mime_gmime_feed left out (why: its
 * reason), after prefix; false when it left out nothing. */
static bool mime_feed_detail(char *out, size_t outlen, const char *prefix,
                             const struct mime_feed *f, size_t len, const char *why)
{
    if (f->dropped && f->cut < len)
        g_snprintf(out, outlen, "%s%s; %" G_GUINT64_FORMAT " header field(s) left out, the "
                   "first at byte %zu; input cut at byte %zu", prefix, why, f->dropped,
                   f->first, f->cut);
    else if (f->dropped)
        g_snprintf(out, outlen, "%s%s; %" G_GUINT64_FORMAT " header field(s) left out, the "
                   "first at byte %zu", prefix, why, f->dropped, f->first);
    else if (f->cut < len)
        g_snprintf(out, outlen, "%s%s, input cut at byte %zu", prefix, why, f->cut);
    else
        return false;
    return true;
}

/* ---- RFC 2047 words GMime cannot join ----------------------------------- */

struct mime_eword {
    size_t start, end;      /* "=?" .. "?=" inclusive */
    size_t cs, cslen;       /* the charset (with any *language) */
    size_t text, textlen;   /* the encoded text */
    bool b64;
};

/* The encoded word at v[i] ("=?"), or false. */
static bool mime_eword_at(const char *v, size_t n, size_t i, struct mime_eword *w)
{
    size_t pw = mime_eword_start(v, i, n), k; /* "=?charset?E?" */

    if (!pw)
        return false;
    for (k = i + pw; k + 1 < n && !(v[k] == '?' && v[k + 1] == '='); k++)
        if ((unsigned char)v[k] <= ' ')
            return false;
    if (k + 1 >= n)
        return false;
    w->start = i;
    w->end = k + 2;
    w->cs = i + 2;
    w->cslen = pw - 5;
    w->text = i + pw;
    w->textlen = k - (i + pw);
    w->b64 = g_ascii_toupper(v[i + pw - 2]) == 'B';
    return true;
}

/* Whether b continues a's run: one charset, only white space between
 * them (either encoding). */
static bool mime_eword_joins(const char *v, const struct mime_eword *a,
                             const struct mime_eword *b)
{
    if (a->cslen != b->cslen || g_ascii_strncasecmp(v + a->cs, v + b->cs, a->cslen) != 0)
        return false;
    for (size_t i = a->end; i < b->start; i++)
        if (!mime_ws(v[i]))
            return false;
    return true;
}

/* A Base64 word that does not end on a whole group: padded, or cut. */
static bool mime_eword_ragged(const char *v, const struct mime_eword *w)
{
    return w->textlen % 4 != 0 || memchr(v + w->text, '=', w->textlen) != NULL;
}

/* Appends the bytes of the Q-encoded text t[0..n) to out, as GMime reads
 * it: '_' is a space, "=XX" a byte, an '=' not followed by two hex digits
 * is kept as it is; *state (0, or 1 after '=', or 0x100 | the hex digit
 * after "=X") carries an escape cut at the word's end into the next Q
 * word, and an escape still open when the run's Q words end is dropped. */
static void mime_q_bytes(const char *t, size_t n, GByteArray *out, unsigned *state)
{
    for (size_t i = 0; i < n; i++) {
        guint8 c = (guint8)t[i];
        if (*state) {
            int hi = *state > 1 ? g_ascii_xdigit_value((char)(*state & 0xff)) : -1;
            int lo = g_ascii_xdigit_value((char)c);
            if (lo >= 0 && *state == 1) {
                *state = 0x100 | c;
                continue;
            }
            if (lo >= 0) {
                guint8 byte = (guint8)(hi << 4 | lo);
                g_byte_array_append(out, &byte, 1);
                *state = 0;
                continue;
            }
            /* not an escape: the '=' (and its digit) as they were */
            g_byte_array_append(out, (const guint8 *)"=", 1);
            if (hi >= 0) {
                guint8 d = (guint8)(*state & 0xff);
                g_byte_array_append(out, &d, 1);
            }
            *state = 0;
        }
        if (c == '=')
            *state = 1;
        else {
            guint8 byte = c == '_' ? ' ' : c;
            g_byte_array_append(out, &byte, 1);
        }
    }
}

/* The next encoded word of v[0..n) at or after *i: true with w set and
 * *i at its start, or false. */
static bool mime_eword_next(const char *v, size_t n, size_t *i, struct mime_eword *w)
{
    while (*i + 1 < n) {
        const char *q = memmem(v + *i, n - *i, "=?", 2);
        if (!q)
            return false;
        *i = (size_t)(q - v);
        if (mime_eword_at(v, n, *i, w))
            return true;
        *i += 2;
    }
    return false;
}

/* Appends the bytes of the word w of v to out: a Base64 word's on their
 * own, a Q word's as mime_q_bytes reads them (with *qstate, which a
 * Base64 word resets). */
static void mime_eword_bytes(const char *v, const struct mime_eword *w, GByteArray *out,
                             unsigned *qstate)
{
    if (w->b64) {
        gint state = 0;
        guint save = 0, len = out->len;
        *qstate = 0;
        g_byte_array_set_size(out, len + (guint)(w->textlen / 4 * 3 + 3));
        gsize got = g_base64_decode_step(v + w->text, w->textlen, out->data + len, &state,
                                         &save);
        g_byte_array_set_size(out, len + (guint)got);
    } else {
        mime_q_bytes(v + w->text, w->textlen, out, qstate);
    }
}

/* v[0..n) with each encoded word replaced by its bytes, as GMime decodes
 * a value before it reads its parameters (the guard counts them there). */
static GByteArray *mime_unworded(const char *v, size_t n)
{
    GByteArray *out = g_byte_array_sized_new((guint)n);
    size_t copied = 0, i = 0;
    struct mime_eword w;

    while (mime_eword_next(v, n, &i, &w)) {
        unsigned qstate = 0;
        g_byte_array_append(out, (const guint8 *)v + copied, (guint)(i - copied));
        mime_eword_bytes(v, &w, out, &qstate);
        i = copied = w.end;
    }
    g_byte_array_append(out, (const guint8 *)v + copied, (guint)(n - copied));
    return out;
}

char *mime_2047_join(const char *v, size_t n)
{
    GString *out = NULL;
    size_t copied = 0, i = 0;
    struct mime_eword a, b;

    while (mime_eword_next(v, n, &i, &a)) {
        /* the run of words joining a; ragged: a Base64 word before the
         * last is; mixed: Base64 and Q words, which GMime converts to UTF-8
         * apart (a character cut between them is lost) */
        struct mime_eword first = a;
        bool ragged = false, has_b = a.b64, has_q = !a.b64;
        size_t words = 1;
        for (;;) {
            size_t s = a.end;
            while (s < n && mime_ws(v[s]))
                s++;
            if (s + 1 >= n || v[s] != '=' || v[s + 1] != '?' || !mime_eword_at(v, n, s, &b) ||
                !mime_eword_joins(v, &a, &b))
                break;
            ragged |= a.b64 && mime_eword_ragged(v, &a);
            has_b |= b.b64;
            has_q |= !b.b64;
            words++;
            a = b;
        }
        if (words > 1 && (ragged || (has_b && has_q))) {
            /* each Base64 word's bytes on their own, a row of Q words' as
             * GMime reads them, then all of them as one word */
            GByteArray *bytes = g_byte_array_new();
            size_t at = first.start;
            unsigned qstate = 0;
            struct mime_eword w;
            while (at < a.end && mime_eword_at(v, n, at, &w)) {
                mime_eword_bytes(v, &w, bytes, &qstate);
                at = w.end;
                while (at < a.end && v[at] != '=')
                    at++;
            }
            if (!out)
                out = g_string_sized_new(n + 16);
            g_string_append_len(out, v + copied, (gssize)(first.start - copied));
            g_string_append(out, "=?");
            g_string_append_len(out, v + first.cs, (gssize)first.cslen);
            g_string_append(out, "?B?");
            gchar *enc = g_base64_encode(bytes->data, bytes->len);
            g_string_append(out, enc);
            g_free(enc);
            g_string_append(out, "?=");
            g_byte_array_free(bytes, TRUE);
            copied = a.end;
        }
        i = a.end;
    }
    if (!out)
        return NULL;
    g_string_append_len(out, v + copied, (gssize)(n - copied));
    return g_string_free(out, FALSE);
}

/* ---- RFC 2231 continuations out of order -------------------------------- */

struct mime_param_seg {
    size_t start, len;  /* "name=value", trimmed */
    unsigned group;     /* index of the first parameter of its name */
    unsigned long sec;  /* the section number (0 for a parameter not sorted) */
    unsigned idx;
};

static int mime_param_seg_cmp(const void *a, const void *b)
{
    const struct mime_param_seg *x = a, *y = b;

    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->sec != y->sec)
        return x->sec < y->sec ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The length of the name of "name*N" or "name*N*" in p[0..n) (the part
 * before '='), and N; 0 if it is not a section. */
static size_t mime_param_section(const char *p, size_t n, unsigned long *sec)
{
    size_t e = n, d;

    while (e > 0 && (p[e - 1] == ' ' || p[e - 1] == '\t'))
        e--;
    if (e > 0 && p[e - 1] == '*')
        e--;
    for (d = e; d > 0 && g_ascii_isdigit(p[d - 1]); d--)
        ;
    if (d == e || d < 2 || p[d - 1] != '*' || e - d > 6)
        return 0;
    *sec = strtoul(p + d, NULL, 10);
    return d - 1;
}

char *mime_2231_sorted(const char *v)
{
    GArray *segs;
    GHashTable *first;
    GHashTable *has_zero, *first_not_zero;
    size_t n = strlen(v), i = 0, head = 0;
    bool quoted = false, any = false;
    char *out = NULL;

    const char *star = v;
    while ((star = strchr(star, '*')) && !g_ascii_isdigit(star[1]))
        star++;
    if (!star)
        return NULL; /* no "name*N": no sections */
    segs = g_array_new(FALSE, FALSE, sizeof(struct mime_param_seg));
    /* split at the semicolons outside quoted strings; v[0..head) the type */
    for (size_t s = 0;; i++) {
        if (i < n && quoted && v[i] == '\\' && i + 1 < n) {
            i++;
            continue;
        }
        if (i < n && v[i] == '"')
            quoted = !quoted;
        if (i < n && (v[i] != ';' || quoted))
            continue;
        if (!any) {
            head = i;
            any = true;
        } else {
            size_t a = s, b = i;
            while (a < b && mime_ws(v[a]))
                a++;
            while (b > a && mime_ws(v[b - 1]))
                b--;
            if (b > a) {
                struct mime_param_seg g = { a, b - a, segs->len, 0, segs->len };
                g_array_append_val(segs, g);
            }
        }
        if (i >= n)
            break;
        s = i + 1;
    }
    /* a name whose first section is not 0 while a section 0 follows: GMime
     * then takes the charset of "name*0*=charset''..." as text */
    first = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    has_zero = g_hash_table_new(g_direct_hash, g_direct_equal);
    first_not_zero = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (unsigned k = 0; k < segs->len; k++) {
        struct mime_param_seg *g = &g_array_index(segs, struct mime_param_seg, k);
        const char *eq = memchr(v + g->start, '=', g->len);
        unsigned long sec;
        size_t nl = eq ? mime_param_section(v + g->start, (size_t)(eq - (v + g->start)), &sec) : 0;
        if (!nl)
            continue;
        char *name = g_ascii_strdown(v + g->start, (gssize)nl);
        gpointer at;
        if (g_hash_table_lookup_extended(first, name, NULL, &at)) {
            g_free(name);
            g->group = GPOINTER_TO_UINT(at);
        } else {
            g_hash_table_insert(first, name, GUINT_TO_POINTER(k));
            if (sec != 0)
                g_hash_table_add(first_not_zero, GUINT_TO_POINTER(k));
        }
        if (sec == 0)
            g_hash_table_add(has_zero, GUINT_TO_POINTER(g->group));
        g->sec = sec;
    }
    any = false;
    for (unsigned k = 0; k < segs->len; k++) {
        struct mime_param_seg *g = &g_array_index(segs, struct mime_param_seg, k);
        bool sort = g_hash_table_contains(first_not_zero, GUINT_TO_POINTER(g->group)) &&
                    g_hash_table_contains(has_zero, GUINT_TO_POINTER(g->group));
        if (!sort) { /* keeps its place */
            g->group = g->idx;
            g->sec = 0;
        }
        any |= sort;
    }
    if (any) {
        GString *o = g_string_sized_new(n + 8);
        g_array_sort(segs, mime_param_seg_cmp);
        g_string_append_len(o, v, (gssize)head);
        for (unsigned k = 0; k < segs->len; k++) {
            struct mime_param_seg *g = &g_array_index(segs, struct mime_param_seg, k);
            g_string_append(o, "; ");
            g_string_append_len(o, v + g->start, (gssize)g->len);
        }
        out = g_string_free(o, FALSE);
    }
    g_hash_table_destroy(first);
    g_hash_table_destroy(has_zero);
    g_hash_table_destroy(first_not_zero);
    g_array_free(segs, TRUE);
    return out;
}

/* The header of obj called name, the first (or the last, as GMime keeps
 * the Subject and Content-Disposition it parsed), at or after *from when
 * from is given (then past it on return); NULL if none. */
static GMimeHeader *mime_find_header(GMimeObject *obj, const char *name, bool last, int *from)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    int n = hl ? g_mime_header_list_get_count(hl) : 0;
    GMimeHeader *found = NULL;

    for (int i = from ? *from : 0; i < n; i++) {
        GMimeHeader *hd = g_mime_header_list_get_header_at(hl, i);
        const char *hn = g_mime_header_get_name(hd);
        if (hn && g_ascii_strcasecmp(hn, name) == 0) {
            found = hd;
            if (from)
                *from = i + 1;
            if (!last)
                break;
        }
    }
    return found;
}

/* A raw header value with the padded Base64 words joined
 * (mime_2047_join), still encoded; NULL when it has none. */
static char *mime_raw_joined(GMimeHeader *hd)
{
    const char *raw = hd ? g_mime_header_get_raw_value(hd) : NULL;

    if (!raw || !strstr(raw, "=?"))
        return NULL;
    return mime_2047_join(raw, strlen(raw));
}

/* hd's value, unfolded and decoded as GMime decodes it, but with the words
 * joined first (mime_2047_join): the value the fast path gives
 * (mime_fast.c, fast_value); NULL when hd has no such words, and GMime's
 * own value stands. */
static char *mime_header_joined(GMimeHeader *hd)
{
    char *j = mime_raw_joined(hd), *u, *v;

    if (!j)
        return NULL;
    u = g_mime_utils_header_unfold(j);
    v = g_mime_utils_header_decode_text(mime_fast_options(), u);
    g_free(u);
    g_free(j);
    return v;
}

static char *mime_decoded_header(GMimeMessage *msg, const char *name, size_t cap)
{
    char *j = mime_header_joined(mime_find_header(GMIME_OBJECT(msg), name, false, NULL));
    char *v = mime_utf8_dup(j ? j : g_mime_object_get_header(GMIME_OBJECT(msg), name), -1, cap);

    g_free(j);
    return v;
}

/* The subject, from the last Subject header as GMime's is. */
static char *mime_subject(GMimeMessage *msg, size_t cap)
{
    char *j = mime_header_joined(mime_find_header(GMIME_OBJECT(msg), "Subject", true, NULL));
    char *v = mime_utf8_dup(j ? j : g_mime_message_get_subject(msg), -1, cap);

    g_free(j);
    return v;
}

/* Quotes a display name the way RFC 5322 3.2.4 requires when it holds
 * specials. */
static void mime_append_name(GString *out, const char *name)
{
    if (!strpbrk(name, "()<>[]:;@\\,.\"")) {
        g_string_append(out, name);
        return;
    }
    g_string_append_c(out, '"');
    for (const char *p = name; *p; p++) {
        if (*p == '"' || *p == '\\')
            g_string_append_c(out, '\\');
        g_string_append_c(out, *p);
    }
    g_string_append_c(out, '"');
}

static void mime_append_address(GString *out, InternetAddress *ia)
{
    const char *name = internet_address_get_name(ia);
    if (INTERNET_ADDRESS_IS_GROUP(ia)) {
        mime_append_name(out, name ? name : "");
        g_string_append(out, ": ");
        mime_append_list(out, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)));
        g_string_append_c(out, ';');
        return;
    }
    const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
    if (name && *name) {
        mime_append_name(out, name);
        g_string_append(out, " <");
        g_string_append(out, addr ? addr : "");
        g_string_append_c(out, '>');
    } else {
        g_string_append(out, addr ? addr : "");
    }
}

void mime_append_list(GString *out, InternetAddressList *list)
{
    int n = list ? internet_address_list_length(list) : 0;
    for (int i = 0; i < n; i++) {
        if (i)
            g_string_append(out, ", ");
        mime_append_address(out, internet_address_list_get_address(list, i));
    }
}

/* An address list as display text, decoded (not re-encoded); the header's
 * decoded text when GMime could not parse any address out of it.  Written
 * here rather than with internet_address_list_to_string, which converts
 * every domain to IDNA on the way (a tenth of the time of a small
 * message) and is not what the recipient's client shows anyway. */
static char *mime_address_header(GMimeMessage *msg, GMimeAddressType type, const char *name,
                                 size_t cap)
{
    InternetAddressList *list = g_mime_message_get_addresses(msg, type);
    InternetAddressList *joined = NULL;
    GMimeHeader *hd;
    int at = 0;

    /* GMime's list, of every header called name, decodes names cut
     * mid-character wrongly: when one is, all are parsed again, joined,
     * with the public parser the fast path uses */
    while ((hd = mime_find_header(GMIME_OBJECT(msg), name, false, &at))) {
        char *j = mime_raw_joined(hd);
        if (j) {
            joined = internet_address_list_new();
            g_free(j);
            break;
        }
    }
    if (joined) {
        at = 0;
        while ((hd = mime_find_header(GMIME_OBJECT(msg), name, false, &at))) {
            char *j = mime_raw_joined(hd);
            InternetAddressList *l = internet_address_list_parse(
                mime_fast_options(), j ? j : g_mime_header_get_raw_value(hd));
            if (l) {
                internet_address_list_append(joined, l);
                g_object_unref(l);
            }
            g_free(j);
        }
        if (internet_address_list_length(joined) > 0)
            list = joined;
    }

    if (list && internet_address_list_length(list) > 0) {
        GString *s = g_string_new(NULL);
        mime_append_list(s, list);
        char *v = mime_utf8_dup(s->str, (gssize)s->len, cap);
        g_string_free(s, TRUE);
        if (joined)
            g_object_unref(joined);
        return v;
    }
    if (joined)
        g_object_unref(joined);
    return mime_decoded_header(msg, name, cap);
}

static void mime_headers(GMimeMessage *msg, const struct mt_limits *lim,
                         struct mt_mime_headers *h)
{
    size_t cap = lim->header_max;

    h->from = mime_address_header(msg, GMIME_ADDRESS_TYPE_FROM, "From", cap);
    h->to = mime_address_header(msg, GMIME_ADDRESS_TYPE_TO, "To", cap);
    h->cc = mime_address_header(msg, GMIME_ADDRESS_TYPE_CC, "Cc", cap);
    h->subject = mime_subject(msg, cap);
    h->date = mime_decoded_header(msg, "Date", cap);
    h->message_id = mime_decoded_header(msg, "Message-ID", cap);
}

/* Raw size of a part's own header fields. */
static size_t mime_object_header_bytes(GMimeObject *obj)
{
    GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
    int i, n = hl ? g_mime_header_list_get_count(hl) : 0;
    size_t total = 0;

    for (i = 0; i < n; i++) {
        GMimeHeader *hd = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(hd);
        const char *raw = g_mime_header_get_raw_value(hd);

        total += (name ? strlen(name) : 0) + (raw ? strlen(raw) : 0) + 2;
    }
    return total;
}

static gboolean mime_b64_junk_in(const guchar *p, size_t n)
{
    unsigned ok = 1;

    for (size_t i = 0; i < n; i++)
        ok &= mime_b64_ok[p[i]];
    return !ok;
}

/* True if the still-encoded content holds a character that is neither in
 * the base64 alphabet nor padding nor white space.  The content is
 * normally a substream of the message's memory stream: read in place. */
static gboolean mime_b64_has_junk(GMimeStream *raw)
{
    guchar buf[4096];
    gssize n;

    if (!raw)
        return FALSE;
    if (GMIME_IS_STREAM_MEM(raw)) {
        GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(raw));
        gint64 start = raw->bound_start, end = raw->bound_end;

        if (!ba)
            return FALSE;
        if (end < 0 || end > (gint64)ba->len)
            end = ba->len;
        if (start < 0 || start > end)
            start = end;
        return mime_b64_junk_in(ba->data + start, (size_t)(end - start));
    }
    if (g_mime_stream_reset(raw) < 0)
        return FALSE;
    while ((n = g_mime_stream_read(raw, (char *)buf, sizeof buf)) > 0)
        if (mime_b64_junk_in(buf, (size_t)n))
            return TRUE;
    return FALSE;
}

/* Writes through GMime into a byte array we keep (no copy at the end). */
static uint8_t *mime_stream_take(GMimeStream *mem, GByteArray *ba, size_t *len)
{
    uint8_t *p;

    g_object_unref(mem);
    *len = ba->len;
    p = g_byte_array_free(ba, *len == 0);
    return *len ? p : NULL;
}

static void mime_leaf_data(struct mime_ctx *c, GMimePart *part, struct mt_mime_part *p)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    GMimeStream *raw, *mem;
    GByteArray *ba;
    gint64 rawlen;
    guint hint;

    if (!w)
        return;
    raw = g_mime_data_wrapper_get_stream(w);
    if (g_mime_data_wrapper_get_encoding(w) == GMIME_CONTENT_ENCODING_BASE64 && raw &&
        GMIME_IS_STREAM_MEM(raw)) {
        /* The encoded bytes are a window on the message we hold: decode
         * them in place with our own decoder (about twice GMime's speed,
         * and it counts invalid characters in the same pass). */
        GByteArray *src = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(raw));
        gint64 start = raw->bound_start, end = raw->bound_end;
        if (src && start >= 0 && (end < 0 || end > (gint64)src->len))
            end = (gint64)src->len;
        if (src && start >= 0 && start <= end) {
            size_t n = (size_t)(end - start), bad = 0;
            if (n == 0) { /* an empty array may have no storage at all */
                p->hash_due = true;
                return;
            }
            mt_mime_data_alloc(p, MT_B64_DECODED_MAX(n));
            p->data_len = mt_b64_decode_lenient((const char *)src->data + start, n, p->data,
                                                &bad);
            if (bad) {
                g_snprintf(c->detail, sizeof c->detail, "part %s", p->path);
                mime_anomaly(c, MT_AN_MIME_BAD_BASE64, c->detail);
            }
            if (p->data_len == 0)
                mt_mime_data_release(p);
            p->size = p->data_len;
            p->hash_due = true;
            return;
        }
    }
    if (g_mime_data_wrapper_get_encoding(w) == GMIME_CONTENT_ENCODING_BASE64 &&
        mime_b64_has_junk(raw)) {
        g_snprintf(c->detail, sizeof c->detail, "part %s", p->path);
        mime_anomaly(c, MT_AN_MIME_BAD_BASE64, c->detail);
    }
    rawlen = raw ? g_mime_stream_length(raw) : 0;
    hint = rawlen > 0 && rawlen < UINT32_MAX ? (guint)rawlen : 0;
    ba = g_byte_array_sized_new(hint);
    mem = g_mime_stream_mem_new_with_byte_array(ba);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    g_mime_data_wrapper_write_to_stream(w, mem);
    p->data = mime_stream_take(mem, ba, &p->data_len);
    p->size = p->data_len;
    p->hash_due = true;
}

/* Converts with GMime's lenient charset filter (skips invalid input). */
static char *mime_convert_filter(const uint8_t *data, size_t len, const char *charset)
{
    GMimeFilter *f = g_mime_filter_charset_new(charset, "UTF-8");
    GMimeStream *mem, *fs;
    GByteArray *ba;
    char *out;

    if (!f)
        return NULL;
    ba = g_byte_array_sized_new((guint)len + 16u);
    mem = g_mime_stream_mem_new_with_byte_array(ba);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    fs = g_mime_stream_filter_new(mem);
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(fs), f);
    g_object_unref(f);
    g_mime_stream_write(fs, (const char *)data, len);
    g_mime_stream_flush(fs);
    g_object_unref(fs);
    g_object_unref(mem);
    g_byte_array_append(ba, (const guint8 *)"", 1);
    out = (char *)g_byte_array_free(ba, FALSE);
    return out;
}

/* A text/... body to UTF-8: from the declared charset, else the first of the
 * fallback charsets that converts cleanly.  Capped at MT_CAP_MIME_TEXT. */
char *mime_text_utf8(const uint8_t *data, size_t len, const char *charset)
{
    const gchar *cs = charset ? g_mime_charset_canon_name(charset) : NULL;
    char *conv = NULL, *v;

    if (len > MT_CAP_MIME_TEXT)
        len = MT_CAP_MIME_TEXT;
    if (!data)
        return g_strdup("");
    if (cs && g_ascii_strcasecmp(cs, "utf-8") != 0 && g_ascii_strcasecmp(cs, "us-ascii") != 0)
        conv = mime_convert_filter(data, len, cs);
    if (!conv && !g_utf8_validate((const char *)data, (gssize)len, NULL)) {
        for (size_t i = 1; !conv && mime_fallback_charsets[i]; i++)
            conv = g_convert((const char *)data, (gssize)len, "UTF-8", mime_fallback_charsets[i],
                             NULL, NULL, NULL);
    }
    v = mime_utf8_dup(conv ? conv : (const char *)data, conv ? -1 : (gssize)len, MT_CAP_MIME_TEXT);
    g_free(conv);
    return v;
}

static void mime_boundaryless(struct mime_ctx *c, GMimeMultipart *mp, struct mt_mime_part *p)
{
    const char *pro = g_mime_multipart_get_prologue(mp);
    const char *q = pro;

    while (q && g_ascii_isspace(*q))
        q++;
    if ((!q || !*q) && g_mime_multipart_get_count(mp) == 0)
        return; /* no body at all (an IMAP BODY[HEADER] fetch): nothing is missing */
    g_snprintf(c->detail, sizeof c->detail, "part %s", p->path);
    mime_anomaly(c, MT_AN_MIME_NO_BOUNDARY, c->detail);
    if (pro && *pro) {
        p->data_len = strlen(pro);
        p->data = g_memdup2(pro, p->data_len);
        p->size = p->data_len;
        p->hash_due = true;
    }
}

/* An embedded message GMime left as a leaf (message/rfc822 sent in base64
 * or quoted-printable, which RFC 2045 6.4 forbids and evasions use): its
 * decoded bytes parsed as a message of their own.  GMime copies what it
 * keeps (no persisted stream), so data may go away afterwards. */
static GMimeMessage *mime_parse_inner(struct mime_ctx *c, const uint8_t *data, size_t len)
{
    GMimeParserOptions *opts = g_mime_parser_options_new();
    g_mime_parser_options_set_fallback_charsets(opts, mime_fallback_charsets);
    g_mime_parser_options_set_warning_callback(opts, mime_parser_warning, c);
    /* the same totals as the message it came in: each such parse may not
     * spend the budgets anew */
    char why[160];
    struct mime_feed f;
    size_t bomb = mime_bomb_cut(data, len, c->lim->mime_parts_max, &c->gt.delims);
    if (bomb < len) {
        g_snprintf(c->detail, sizeof c->detail, "an embedded message: more than %" G_GUINT64_FORMAT
                   " boundary lines in the message, its input cut at byte %zu",
                   MT_CAP_MIME_DELIM_LINES(c->lim->mime_parts_max), bomb);
        mime_anomaly_once(c, MT_AN_MIME_PARTS, c->detail);
    }
    mime_gmime_feed(data, bomb, &c->gt, why, sizeof why, &f);
    if (mime_feed_detail(c->detail, sizeof c->detail, "an embedded message: ", &f, bomb, why))
        mime_anomaly_once(c, MT_AN_HEADER_TOO_LARGE, c->detail);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)f.p, f.len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_persist_stream(parser, FALSE);
    GMimeMessage *m = g_mime_parser_construct_message(parser, opts);
    g_object_unref(parser);
    g_object_unref(stream);
    g_mime_parser_options_free(opts);
    mime_feed_clear(&f);
    return m;
}

/* The bytes of an embedded message, for its size, hash and extraction,
 * written out by GMime with the line ends of the message it came in
 * (GMime's default is LF; mail on the wire and mailtap's .eml files use
 * CRLF). */
static void mime_message_data(const struct mime_ctx *c, GMimeMessage *m, struct mt_mime_part *p)
{
    GByteArray *ba = g_byte_array_new();
    GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(ba);
    GMimeFormatOptions *fo = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(fo, c->crlf ? GMIME_NEWLINE_FORMAT_DOS
                                                         : GMIME_NEWLINE_FORMAT_UNIX);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    g_mime_object_write_to_stream(GMIME_OBJECT(m), fo, mem);
    g_mime_format_options_free(fo);
    p->data = mime_stream_take(mem, ba, &p->data_len);
    p->size = p->data_len;
    p->hash_due = true;
}

/* hd's value (a Content-Type or Content-Disposition) mended for GMime's
 * parameter parser: padded Base64 words joined
 * (mime_header_joined), continuations put in order (mime_2231_sorted);
 * NULL when it needs neither. */
static char *mime_param_value(GMimeHeader *hd)
{
    char *j = mime_header_joined(hd), *s;
    const char *v = j ? j : hd ? g_mime_header_get_value(hd) : NULL;

    if (!v)
        return NULL;
    s = mime_2231_sorted(v);
    if (s) {
        g_free(j);
        return s;
    }
    return j;
}

/* The file name when the Content-Disposition or Content-Type value needs
 * mending (mime_param_value): the mended values parsed, in
 * g_mime_part_get_filename's order, as the fast path would; NULL otherwise,
 * and GMime's own stands. */
static char *mime_mended_filename(GMimeObject *obj)
{
    char *cdv = mime_param_value(mime_find_header(obj, "Content-Disposition", true, NULL));
    char *ctv = mime_param_value(mime_find_header(obj, "Content-Type", true, NULL));
    GMimeContentDisposition *cd = NULL;
    GMimeContentType *ct = NULL;
    const char *fn = NULL;
    char *out;

    if (!cdv && !ctv)
        return NULL;
    if (cdv && (cd = g_mime_content_disposition_parse(mime_fast_options(), cdv)))
        fn = g_mime_content_disposition_get_parameter(cd, "filename");
    else if (!cdv)
        fn = g_mime_object_get_content_disposition_parameter(obj, "filename");
    if (!fn) {
        if (ctv && (ct = g_mime_content_type_parse(mime_fast_options(), ctv)))
            fn = g_mime_content_type_get_parameter(ct, "name");
        else if (!ctv)
            fn = g_mime_object_get_content_type_parameter(obj, "name");
    }
    out = mime_utf8_dup(fn, -1, SIZE_MAX);
    if (cd)
        g_object_unref(cd);
    if (ct)
        g_object_unref(ct);
    g_free(cdv);
    g_free(ctv);
    return out;
}

/* Fills one node; returns how many children it has to walk. */
static int mime_node(struct mime_ctx *c, GMimeObject *obj, char *path, unsigned depth,
                     struct mt_mime_part *p)
{
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *cte, *fn;
    int nchild = 0;

    memset(p, 0, sizeof *p);
    p->path = path;
    p->depth = depth;
    if (ct) {
        char *mt = g_mime_content_type_get_mime_type(ct);
        p->content_type = mime_lower_dup(mt);
        g_free(mt);
    }
    p->charset = mime_lower_dup(g_mime_object_get_content_type_parameter(obj, "charset"));
    cte = g_mime_object_get_header(obj, "Content-Transfer-Encoding");
    p->encoding = mime_lower_dup(cte);
    if (!p->encoding)
        p->encoding = g_strdup("7bit");
    p->disposition = mime_lower_dup(g_mime_object_get_disposition(obj));
    if (!(p->filename = mime_mended_filename(obj))) {
        if (GMIME_IS_PART(obj))
            fn = g_mime_part_get_filename(GMIME_PART(obj));
        else if (!(fn = g_mime_object_get_content_disposition_parameter(obj, "filename")))
            fn = g_mime_object_get_content_type_parameter(obj, "name");
        p->filename = mime_utf8_dup(fn, -1, SIZE_MAX);
    }

    if (mime_object_header_bytes(obj) > c->lim->header_max) {
        g_snprintf(c->detail, sizeof c->detail, "part %s", p->path);
        mime_anomaly_once(c, MT_AN_HEADER_TOO_LARGE, c->detail);
    }

    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        const char *b = g_mime_object_get_content_type_parameter(obj, "boundary");

        p->is_multipart = true;
        nchild = g_mime_multipart_get_count(mp);
        /* No boundary, an empty one, or one that never occurs (RFC 2046
         * 5.1.1 requires at least one body part): GMime then put the
         * whole body into the prologue. */
        if (!b || !*b || nchild == 0)
            mime_boundaryless(c, mp, p);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));

        nchild = m && g_mime_message_get_mime_part(m) ? 1 : 0;
        /* each level of embedding writes out its message again: past
         * MT_CAP_MIME_EMBEDDED times the message's bytes, the deeper ones
         * keep no bytes (no size, hash or file; their parts are still
         * walked) */
        if (m && c->embedded >= c->embed_max) {
            g_snprintf(c->detail, sizeof c->detail, "part %s: embedded messages of more than "
                       "%u times the message's bytes and 16 MiB, its bytes not kept", p->path,
                       MT_CAP_MIME_EMBEDDED);
            mime_anomaly(c, MT_AN_MESSAGE_TRUNCATED, c->detail);
        } else if (m) {
            mime_message_data(c, m, p);
            c->embedded += p->data_len;
        }
    } else if (GMIME_IS_PART(obj)) {
        mime_leaf_data(c, GMIME_PART(obj), p);
        if (p->content_type && g_str_has_prefix(p->content_type, "text/"))
            p->text_utf8 = mime_text_utf8(p->data, p->data_len, p->charset);
        bool embedded = p->content_type && strcmp(p->content_type, "message/rfc822") == 0 &&
                        p->data_len && depth < c->lim->mime_depth_max;
        if (embedded && c->embedded >= c->embed_max) {
            /* each level parsed holds its bytes and GMime's copy of them
             * (MT_CAP_MIME_EMBEDDED, as for the written-out ones above) */
            g_snprintf(c->detail, sizeof c->detail, "part %s: embedded messages of more than "
                       "%u times the message's bytes and 16 MiB, not parsed", p->path,
                       MT_CAP_MIME_EMBEDDED);
            mime_anomaly(c, MT_AN_MESSAGE_TRUNCATED, c->detail);
            embedded = false;
        }
        if (embedded) {
            /* labelled base64 but not base64 at all: what a receiving
             * client that ignores the (forbidden) encoding would show */
            GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
            GMimeStream *raw = w ? g_mime_data_wrapper_get_stream(w) : NULL;
            GMimeMessage *inner = NULL;
            if (raw && g_mime_data_wrapper_get_encoding(w) == GMIME_CONTENT_ENCODING_BASE64 &&
                mime_b64_has_junk(raw)) {
                GByteArray *ba = g_byte_array_new();
                GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(ba);
                g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
                g_mime_stream_reset(raw);
                g_mime_stream_write_to_stream(raw, mem);
                size_t rl = 0;
                uint8_t *rb = mime_stream_take(mem, ba, &rl);
                if (rb)
                    inner = mime_parse_inner(c, rb, rl);
                g_free(rb);
                c->embedded += rl;
            } else {
                inner = mime_parse_inner(c, p->data, p->data_len);
                c->embedded += p->data_len;
            }
            if (inner && g_mime_message_get_mime_part(inner)) {
                g_object_set_data_full(G_OBJECT(obj), "mt-inner", inner, g_object_unref);
                nchild = 1;
            } else if (inner) {
                g_object_unref(inner);
            }
        }
    }
    return nchild;
}

static GMimeObject *mime_child(GMimeObject *obj, int i)
{
    if (GMIME_IS_MULTIPART(obj))
        return g_mime_multipart_get_part(GMIME_MULTIPART(obj), i);
    if (GMIME_IS_PART(obj)) { /* an encoded message/rfc822, parsed by mime_node */
        GMimeMessage *inner = g_object_get_data(G_OBJECT(obj), "mt-inner");
        return inner ? g_mime_message_get_mime_part(inner) : NULL;
    }
    return g_mime_message_get_mime_part(g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj)));
}

struct mime_frame {
    GMimeObject *obj;
    const char *path; /* owned by the node in ctx->parts */
    unsigned depth;
    int next, count;
};

/* Adds obj as a node; pushes it on the walk stack if it has children we
 * may visit.  Returns false once the part cap is reached. */
static bool mime_visit(struct mime_ctx *c, GArray *stack, GMimeObject *obj, char *path,
                       unsigned depth)
{
    struct mt_mime_part part;
    struct mime_frame fr;
    int nchild;

    if (c->parts->len >= c->lim->mime_parts_max) {
        g_snprintf(c->detail, sizeof c->detail, "more than %u parts, first dropped: %s",
                   c->lim->mime_parts_max, path);
        mime_anomaly_once(c, MT_AN_MIME_PARTS, c->detail);
        g_free(path);
        return false;
    }
    nchild = mime_node(c, obj, path, depth, &part);
    g_array_append_val(c->parts, part);
    if (nchild <= 0)
        return true;
    if (depth >= c->lim->mime_depth_max) {
        g_snprintf(c->detail, sizeof c->detail, "deeper than %u below part %s",
                   c->lim->mime_depth_max, path);
        mime_anomaly_once(c, MT_AN_MIME_DEPTH, c->detail);
        return true;
    }
    fr = (struct mime_frame){ obj, path, depth, 0, nchild };
    g_array_append_val(stack, fr);
    return true;
}

/* Pre-order walk with an explicit stack (no recursion on input depth). */
static void mime_walk(struct mime_ctx *c, GMimeObject *root)
{
    GArray *stack = g_array_new(FALSE, FALSE, sizeof(struct mime_frame));
    bool more = mime_visit(c, stack, root, g_strdup("1"), 0);

    while (more && stack->len > 0) {
        struct mime_frame *top = &g_array_index(stack, struct mime_frame, stack->len - 1);
        GMimeObject *child;
        char *path;
        unsigned depth;

        if (top->next >= top->count) {
            g_array_set_size(stack, stack->len - 1);
            continue;
        }
        child = mime_child(top->obj, top->next++);
        if (!child)
            continue;
        path = g_strdup_printf("%s.%d", top->path, top->next);
        depth = top->depth + 1;
        more = mime_visit(c, stack, child, path, depth); /* may move top */
    }
    g_array_free(stack, TRUE);
}

bool mt_mime_force_gmime;

/* Whether a message may try the fast path: nothing cut off by the part
 * cap and a header block far from header_max (the full parse raises those
 * anomalies). */
static bool mime_fast_fits(const struct mt_limits *lim, size_t len, size_t hlen, size_t feed)
{
    return feed == len && hlen <= lim->header_max / 2;
}

/* The digests of the parts marked hash_due, and of the whole message when
 * msg_sha256 is not NULL, in one batch: two side by side (hash.h), so that
 * a message and its attachment cost about the time of the longer. */
static void mime_hash(struct mt_mime_result *out, const uint8_t *data, size_t len,
                      char *msg_sha256)
{
    struct mt_hash_job stack[16], *jobs = stack;
    size_t n = 0, want = msg_sha256 != NULL;

    for (size_t i = 0; i < out->nparts; i++)
        want += out->parts[i].hash_due;
    if (want == 0)
        return;
    if (want > G_N_ELEMENTS(stack))
        jobs = g_new(struct mt_hash_job, want);
    if (msg_sha256)
        jobs[n++] = (struct mt_hash_job){data, data ? len : 0, msg_sha256};
    for (size_t i = 0; i < out->nparts; i++) {
        struct mt_mime_part *p = &out->parts[i];
        if (!p->hash_due)
            continue;
        p->hash_due = false;
        jobs[n++] = (struct mt_hash_job){p->data, p->data ? p->data_len : 0, p->sha256};
    }
    mt_sha256_hex_batch(jobs, n);
    if (jobs != stack)
        g_free(jobs);
}

bool mt_mime_parse_fast(const uint8_t *data, size_t len, const struct mt_limits *lim,
                        struct mt_mime_result *out, mt_anomaly_cb cb, void *ud)
{
    struct mime_ctx c = { .lim = lim, .cb = cb, .ud = ud };

    memset(out, 0, sizeof *out);
    if (!data || len == 0)
        return false;
    mt_mime_global_init();
    size_t feed = mime_bomb_cut(data, len, lim->mime_parts_max, &c.gt.delims);
    if (!mime_fast_fits(lim, len, mime_header_len(data, len),
                        mime_gmime_takes(data, feed, &c.gt) ? feed : 0))
        return false;
    if (!mime_fast_parse(&c, data, len, out))
        return false;
    mime_hash(out, data, len, NULL);
    return true;
}

static void mime_parse_tree(const uint8_t *data, size_t len, const struct mt_limits *lim,
                            struct mt_mime_result *out, mt_anomaly_cb cb, void *ud)
{
    struct mime_ctx c = { .lim = lim, .cb = cb, .ud = ud,
                          .embed_max = len > SIZE_MAX / (MT_CAP_MIME_EMBEDDED + 1)
                                           ? SIZE_MAX
                                           : len * MT_CAP_MIME_EMBEDDED +
                                                 MT_CAP_MIME_EMBEDDED_FLOOR };
    GMimeParserOptions *opts;
    GMimeParser *parser;
    GMimeStream *stream;
    GMimeMessage *msg;
    GByteArray *ba;
    struct mime_feed gf;
    size_t hlen, feed;

    memset(out, 0, sizeof *out);
    if (!data || len == 0)
        return;
    mt_mime_global_init();

    hlen = mime_header_len(data, len);
    {
        const uint8_t *nl = memchr(data, '\n', len);
        c.crlf = nl && nl > data && nl[-1] == '\r';
    }
    feed = mime_bomb_cut(data, len, lim->mime_parts_max, &c.gt.delims);
    {
        /* fields GMime is not handed (mime_gmime_feed) are told with the
         * block's size: the anomaly is raised once per message */
        char why[160], prefix[64] = "";
        if (hlen > lim->header_max)
            g_snprintf(prefix, sizeof prefix, "message header block of %zu bytes; ", hlen);
        mime_gmime_feed(data, feed, &c.gt, why, sizeof why, &gf);
        bool left_out = mime_feed_detail(c.detail, sizeof c.detail, prefix, &gf, feed, why);
        if (!left_out && hlen > lim->header_max)
            g_snprintf(c.detail, sizeof c.detail, "message header block of %zu bytes", hlen);
        if (left_out || hlen > lim->header_max)
            mime_anomaly_once(&c, MT_AN_HEADER_TOO_LARGE, c.detail);
        if (feed < len) {
            g_snprintf(c.detail, sizeof c.detail,
                       "more than %" G_GUINT64_FORMAT " boundary lines, input cut at byte %zu",
                       MT_CAP_MIME_DELIM_LINES(lim->mime_parts_max), feed);
            mime_anomaly_once(&c, MT_AN_MIME_PARTS, c.detail);
        }
    }
    feed = gf.len; /* what is left of data, or the copy without the fields refused */
    if (feed > UINT32_MAX) /* GByteArray lengths are guint */
        feed = UINT32_MAX;

    if (!mt_mime_force_gmime && !gf.copy && mime_fast_fits(lim, len, hlen, feed) &&
        mime_fast_parse(&c, data, len, out))
        return; /* well-formed: no object tree needed (mime_fast.c) */

    opts = mime_options_new();
    g_mime_parser_options_set_warning_callback(opts, mime_parser_warning, &c);

    /* GMime reads the caller's bytes in place: the array borrows data
     * (stolen back below, never freed or written by GMime since the
     * stream does not own it and the parser only reads), and with a
     * seekable stream the parts' contents are substreams of it. */
    ba = g_byte_array_new_take((guint8 *)(uintptr_t)gf.p, feed);
    stream = g_mime_stream_mem_new_with_byte_array(ba);
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
    parser = g_mime_parser_new_with_stream(stream);
    g_mime_parser_set_persist_stream(parser, TRUE);
    msg = g_mime_parser_construct_message(parser, opts);
    g_object_unref(parser);

    c.parts = g_array_new(FALSE, FALSE, sizeof(struct mt_mime_part));
    if (msg) {
        mime_headers(msg, lim, &out->headers);
        if (g_mime_message_get_mime_part(msg))
            mime_walk(&c, g_mime_message_get_mime_part(msg));
        g_object_unref(msg);
    }
    out->nparts = c.parts->len;
    out->parts = (struct mt_mime_part *)g_array_free(c.parts, out->nparts == 0);
    if (out->nparts == 0)
        out->parts = NULL;

    g_object_unref(stream);
    g_byte_array_steal(ba, NULL);
    g_byte_array_unref(ba);
    g_mime_parser_options_free(opts);
    mime_feed_clear(&gf);
}

void mt_mime_parse_hashed(const uint8_t *data, size_t len, const struct mt_limits *lim,
                          struct mt_mime_result *out, mt_anomaly_cb cb, void *ud,
                          char *msg_sha256)
{
    mime_parse_tree(data, len, lim, out, cb, ud);
    mime_hash(out, data, len, msg_sha256);
}

void mt_mime_parse(const uint8_t *data, size_t len, const struct mt_limits *lim,
                   struct mt_mime_result *out, mt_anomaly_cb cb, void *ud)
{
    mt_mime_parse_hashed(data, len, lim, out, cb, ud, NULL);
}

/* One large decoded-part buffer kept per thread for the next large part:
 * a multi-megabyte attachment's pages are then not faulted in anew for
 * every message (mt_buf_alloc maps and unmaps such buffers). */
struct big_spare {
    uint8_t *p;
    size_t cap;
};

static void big_spare_free(gpointer data)
{
    struct big_spare *b = data;
    mt_buf_free(b->p, b->cap);
    g_free(b);
}

static GPrivate big_spare_key = G_PRIVATE_INIT(big_spare_free);

static struct big_spare *big_spare_get(void)
{
    struct big_spare *b = g_private_get(&big_spare_key);
    if (!b) {
        b = g_new0(struct big_spare, 1);
        g_private_set(&big_spare_key, b);
    }
    return b;
}

void mt_mime_data_alloc(struct mt_mime_part *p, size_t n)
{
    if (n > MT_MIME_BIG_DATA) {
        struct big_spare *b = big_spare_get();
        if (b->p && b->cap >= n) {
            p->data = b->p;
            p->data_cap = b->cap;
            b->p = NULL;
            b->cap = 0;
            return;
        }
    }
    p->data = mt_buf_alloc(n);
    p->data_cap = n;
    /* a mapped one is about to be written, usually whole, by the decoder:
     * its pages in one call rather than a trap each (message.h).  Only the
     * first MT_BUF_HUGE_MIN: beyond, the buffer is in huge pages, a trap
     * each 2 MiB; and lenient Base64 skips junk, so a hostile part may be
     * far shorter decoded than n, which should not be in memory for it. */
    (void)mt_buf_populate(p->data, n, 0, MIN(n, (size_t)MT_BUF_HUGE_MIN));
    /* beyond, extents already in memory, kept from freed buffers: pages
     * the kernel need not clear, and that a new page would have been
     * taken beside */
    if (n > MT_BUF_HUGE_MIN)
        (void)mt_buf_take_kept(p->data, n, MT_BUF_HUGE_MIN);
}

void mt_mime_data_release(struct mt_mime_part *p)
{
    uint8_t *d = p->data;
    size_t cap = p->data_cap;
    p->data = NULL;
    p->data_cap = 0;
    if (cap == 0) { /* GMime's output, g_malloc'd */
        g_free(d);
        return;
    }
    if (cap > MT_MIME_BIG_DATA) {
        struct big_spare *b = big_spare_get();
        if (cap > b->cap) {
            mt_buf_free(b->p, b->cap);
            b->p = d;
            b->cap = cap;
            return;
        }
    }
    mt_buf_free(d, cap);
}

void mt_mime_part_clear(struct mt_mime_part *p)
{
    g_free(p->path);
    g_free(p->content_type);
    g_free(p->charset);
    g_free(p->encoding);
    g_free(p->filename);
    g_free(p->disposition);
    mt_mime_data_release(p);
    g_free(p->text_utf8);
    g_free(p->file);
    memset(p, 0, sizeof *p);
}

void mt_mime_headers_clear(struct mt_mime_headers *h)
{
    g_free(h->from);
    g_free(h->to);
    g_free(h->cc);
    g_free(h->subject);
    g_free(h->date);
    g_free(h->message_id);
    memset(h, 0, sizeof *h);
}

void mt_mime_result_clear(struct mt_mime_result *r)
{
    for (size_t i = 0; i < r->nparts; i++)
        mt_mime_part_clear(&r->parts[i]);
    g_free(r->parts);
    mt_mime_headers_clear(&r->headers);
    memset(r, 0, sizeof *r);
}
