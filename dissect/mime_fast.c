/* The fast path of MIME decoding: well-formed messages without GMime's
 * object tree.
 *
 * GMime's full parse builds a GObject per part, header, header list,
 * content type, parameter list, data wrapper and substream, and frees them
 * all again: for the small messages that make most of the mail on a link
 * that costs far more than reading the message.  This file walks the
 * message itself (header blocks, multipart delimiter lines, content
 * ranges) and calls GMime only for what is not structure and where its
 * exact behaviour matters: RFC 2047 header decoding, address lists,
 * Content-Type and Content-Disposition parameters (RFC 2231), the
 * transfer-encoding names and quoted-printable decoding.  Base64 uses
 * the same decoder as the full parse.
 *
 * It must give exactly what the full parse gives, so it takes only the
 * messages whose structure it knows GMime reads the same way, and gives
 * up (returns false, having raised nothing) on anything else: 8-bit or
 * control bytes in a header block, a header line that is not
 * "name: value", a header block without its empty line, a repeated
 * header that matters, a part header block near header_max, message/...
 * parts, multipart/digest, a multipart without boundary or whose
 * delimiters are missing, out of order or ambiguous (one boundary a
 * prefix of another), uuencode, parts or depth past the caps.  Those
 * messages, which include every malformed and hostile one, take GMime's
 * full parse with its anomalies.  tests/unit/test_mime.c checks both paths
 * against each other on every fixture and sample message.
 *
 * Where content ends (RFC 2046 5.1.1): the line break before a delimiter
 * line belongs to the delimiter, so a part's content stops before it; the
 * content of a message that is not multipart runs to its last byte.  A
 * line is a delimiter when it starts with "--" and the boundary and the
 * rest of it is white space (GMime's is_boundary), a close delimiter when
 * "--" follows the boundary. */
#include "mime_int.h"

#include <string.h>

#include "ascii.h"
#include "b64.h"
#include "caps.h"

/* Parts the result array has room for before it grows (see mime_fast_parse). */
#define FAST_PARTS_RESERVE 16u

/* The header fields of one entity that the outputs need: raw values
 * (everything after the colon up to the field's last line break, as GMime
 * keeps them). */
enum { FH_CT, FH_CTE, FH_CD, FH_FROM, FH_TO, FH_CC, FH_SUBJECT, FH_DATE, FH_MSGID, FH_N };

static const char *const fast_names[FH_N] = {
    "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "From", "To", "Cc",
    "Subject", "Date", "Message-ID",
};

struct fast_entity {
    const char *raw[FH_N];
    size_t rawlen[FH_N];
    size_t body; /* offset of the first byte after the empty line */
};

struct fast {
    struct mime_ctx *c;
    const char *d;
    GArray *parts;                       /* struct mt_mime_part */
    const char *bnd[MT_CAP_MIME_FAST_DEPTH + 1]; /* boundaries of the open multiparts */
    size_t bndlen[MT_CAP_MIME_FAST_DEPTH + 1];
    unsigned nbnd;
    bool crlf;              /* the message's first line ends with CRLF */
    struct fast_entity top; /* the message's own header fields */
    GArray *bad;            /* indexes in parts of leaves with invalid base64 */
};

static bool fast_is_lwsp(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Parses the header block of the entity at d[pos..end).  top: the
 * message's own block (address and subject fields count).  crlf: the
 * message's kind of line break, which every line here must have (GMime
 * reads some fields of blocks that mix them differently). */
static bool fast_headers(const char *d, size_t pos, size_t end, bool top, bool crlf,
                         struct fast_entity *e)
{
    size_t i = pos;

    memset(e, 0, sizeof *e);
    for (;;) {
        size_t ns, nlen, vs;
        const char *lf;
        unsigned h;

        if (i >= end) {
            if (!top)
                return false; /* no empty line */
            /* the message ends in its header block (a header-only or
             * partial FETCH, a cut message): GMime reads it to the end,
             * and the body is empty */
            e->body = end;
            break;
        }
        if (d[i] == '\n' && !crlf) {
            e->body = i + 1;
            break;
        }
        if (d[i] == '\r' && crlf) {
            if (i + 1 < end && d[i + 1] == '\n') {
                e->body = i + 2;
                break;
            }
            return false;
        }
        ns = i;
        while (i < end && d[i] != ':') {
            unsigned char ch = (unsigned char)d[i];
            if (ch <= ' ' || ch >= 0x7f)
                return false; /* not a field name (RFC 5322 2.2) */
            i++;
        }
        if (i >= end || i == ns)
            return false;
        nlen = i - ns;
        vs = ++i;
        for (;;) { /* the value, with its continuation lines */
            lf = memchr(d + i, '\n', end - i);
            if (!lf && !top)
                return false;
            /* the message's last line may be cut before its line break */
            const char *le = lf ? lf : d + end;
            if (lf && (lf > d + i && lf[-1] == '\r') != crlf)
                return false; /* line breaks of both kinds: GMime's parse */
            for (const char *q = d + i; q < le; q++) {
                unsigned char ch = (unsigned char)*q;
                if (ch >= 0x7f || (ch < ' ' && ch != '\t' && !(ch == '\r' && lf && q + 1 == lf)))
                    return false;
            }
            if (!lf) {
                i = end;
                break;
            }
            i = (size_t)(lf - d) + 1;
            if (i < end && (d[i] == ' ' || d[i] == '\t'))
                continue;
            break;
        }
        for (h = 0; h < (top ? FH_N : FH_FROM); h++)
            if (mt_eq_ci(d + ns, nlen, fast_names[h]))
                break;
        if (h < (top ? FH_N : FH_FROM)) {
            if (e->raw[h])
                return false; /* repeated: GMime merges or picks; leave it to GMime */
            e->raw[h] = d + vs;
            e->rawlen[h] = i - vs;
        }
    }
    return true;
}

/* A raw header value unfolded (RFC 5322 2.2.3), trimmed. */
static char *fast_unfold(const char *raw, size_t n)
{
    char *r = g_strndup(raw, n);
    char *u = g_mime_utils_header_unfold(r);

    g_free(r);
    return u;
}

/* The decoded value of a raw header value, as g_mime_header_get_value
 * gives it: unfolded, RFC 2047 decoded.  GMime parses Content-Type and
 * Content-Disposition from this value too (encoded words decoded before
 * the parameters are split), so the fast path does the same. */
static char *fast_value(const char *raw, size_t n)
{
    /* One line with no encoded word (most values): GMime's unfolding is
     * then trimming the spaces and tabs at both ends and the line break,
     * and its decoding gives the text back (checked on millions of random
     * printable strings; the headers here hold nothing else, fast_headers) */
    size_t m = n;
    if (m && raw[m - 1] == '\n')
        m--;
    if (m && raw[m - 1] == '\r')
        m--;
    if (!memchr(raw, '\n', m) && !memchr(raw, '\r', m)) {
        size_t b = 0;
        while (b < m && (raw[b] == ' ' || raw[b] == '\t'))
            b++;
        while (m > b && (raw[m - 1] == ' ' || raw[m - 1] == '\t'))
            m--;
        if (!memmem(raw + b, m - b, "=?", 2))
            return g_strndup(raw + b, m - b);
    }
    char *u = fast_unfold(raw, n);
    char *j = mime_2047_join(u, strlen(u));
    char *v = g_mime_utils_header_decode_text(mime_fast_options(), j ? j : u);

    g_free(j);
    g_free(u);
    return v;
}

/* Whether a decoded parameter value has sections out of the order GMime
 * needs (mime_2231_sorted): mime.c mends the file name only, so such a
 * part takes the full parse. */
static bool fast_2231_unsorted(const char *v)
{
    char *s = mime_2231_sorted(v);

    g_free(s);
    return s != NULL;
}

/* Whether a raw value holds encoded words that mime_2047_join would join. */
static bool fast_2047_ragged(const char *raw, size_t n)
{
    char *j;

    if (!memmem(raw, n, "=?", 2))
        return false;
    j = mime_2047_join(raw, n);
    g_free(j);
    return j != NULL;
}

static char *fast_header_text(const struct fast_entity *e, unsigned h, size_t cap)
{
    char *v, *out;

    if (!e->raw[h])
        return NULL;
    v = fast_value(e->raw[h], e->rawlen[h]);
    out = mime_utf8_dup(v, -1, cap);
    g_free(v);
    return out;
}

/* RFC 5322 atext, and the characters of a domain name. */
static bool fast_atext(char ch)
{
    return g_ascii_isalnum(ch) || (ch && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL);
}

/* A dot-atom addr-spec "local@domain" in p[0..n): atext runs joined by
 * single dots, one '@', a domain of letters, digits, '-' and dots, not an
 * IDNA name (GMime would decode those).  What GMime's parser gives back
 * unchanged as the mailbox address. */
static bool fast_addr_spec(const char *p, size_t n)
{
    const char *at = memchr(p, '@', n);
    size_t l, i;

    if (!at || at == p || at == p + n - 1)
        return false;
    l = (size_t)(at - p);
    for (i = 0; i < n; i++) {
        char ch = p[i];
        bool dot_ok = i > 0 && i + 1 < n && i != l - 1 && i != l + 1 && p[i - 1] != '.';
        if (i == l)
            continue;
        if (ch == '.') {
            if (!dot_ok)
                return false;
        } else if (i < l ? !fast_atext(ch) : !(g_ascii_isalnum(ch) || ch == '-')) {
            return false;
        }
    }
    for (i = l + 1; i + 4 <= n; i++)
        if (mt_prefix_ci(p + i, n - i, "xn--"))
            return false;
    return true;
}

/* The common address lists without GMime: elements "addr-spec" or
 * "Atom Atom <addr-spec>" (words of atext separated by single spaces)
 * separated by commas, on one line, no encoded word.  Appends their display form (as
 * mime_append_list writes GMime's list: such names need no quoting) and
 * returns true; false for anything else (quotes, comments, groups,
 * encoded words, folding, 8-bit): GMime's parser then decides. */
static bool fast_simple_addresses(const char *raw, size_t n, GString *out)
{
    const char *p = raw, *end = raw + n;

    while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p == end)
        return false;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end, *lt, *q;

        while (p < e && *p == ' ')
            p++;
        while (e > p && e[-1] == ' ')
            e--;
        if (p == e)
            return false; /* an empty element */
        if (out->len)
            g_string_append(out, ", ");
        lt = memchr(p, '<', (size_t)(e - p));
        if (!lt) {
            if (!fast_addr_spec(p, (size_t)(e - p)))
                return false;
            g_string_append_len(out, p, e - p);
        } else {
            if (lt == p || e[-1] != '>' || lt[-1] != ' ' ||
                !fast_addr_spec(lt + 1, (size_t)(e - 1 - (lt + 1))))
                return false;
            for (q = p; q < lt - 1; q++) /* the name: atext words, single spaces */
                if (!(fast_atext(*q) || (*q == ' ' && q > p && q[-1] != ' ')))
                    return false;
            if ((lt - 1 > p && lt[-2] == ' ') || memmem(p, (size_t)(lt - p), "=?", 2))
                return false; /* double space; an RFC 2047 encoded word */
            g_string_append_len(out, p, e - p);
        }
        p = comma ? comma + 1 : end;
        if (comma && p == end)
            return false; /* a trailing comma */
    }
    return true;
}

/* An address header as mime_address_header gives it from GMime's
 * message.  Returns false when GMime's public list parser finds no
 * address: the message's own (internal) parser keeps what it can of a
 * list that fails part way, the public one gives up, so only the full
 * parse knows the answer. */
static bool fast_address(const struct fast_entity *e, unsigned h, size_t cap, char **out)
{
    InternetAddressList *list;
    GString *s;
    size_t k;
    char *r;

    *out = NULL;
    if (!e->raw[h])
        return true;
    for (k = 0; k < e->rawlen[h] && strchr(" \t\r\n", e->raw[h][k]); k++)
        ;
    if (k == e->rawlen[h]) { /* empty: no list, so the (empty) text */
        *out = fast_header_text(e, h, cap);
        return true;
    }
    s = g_string_new(NULL);
    if (!fast_simple_addresses(e->raw[h], e->rawlen[h], s)) {
        g_string_truncate(s, 0);
        r = mime_2047_join(e->raw[h], e->rawlen[h]); /* as mime.c parses it */
        if (!r)
            r = g_strndup(e->raw[h], e->rawlen[h]);
        list = internet_address_list_parse(mime_fast_options(), r);
        g_free(r);
        if (list && internet_address_list_length(list) > 0)
            mime_append_list(s, list);
        if (list)
            g_object_unref(list);
        if (s->len == 0) {
            g_string_free(s, TRUE);
            return false;
        }
    }
    *out = mime_utf8_dup(s->str, (gssize)s->len, cap);
    g_string_free(s, TRUE);
    return true;
}

/* The line at d[pos..end) (pos at a line start): 0 if not a delimiter of
 * the open multiparts, else 1 + the index of the boundary, and *closing. */
static unsigned fast_delim(const struct fast *f, size_t pos, size_t end, bool *closing)
{
    const char *d = f->d, *lf;
    size_t le;

    if (end - pos < 2 || d[pos] != '-' || d[pos + 1] != '-')
        return 0;
    lf = memchr(d + pos, '\n', end - pos);
    le = lf ? (size_t)(lf - d) : end;
    for (unsigned k = f->nbnd; k-- > 0;) {
        size_t bl = f->bndlen[k], q = pos + 2 + bl;
        if (q > le || memcmp(d + pos + 2, f->bnd[k], bl) != 0)
            continue;
        *closing = false;
        if (le - q >= 2 && d[q] == '-' && d[q + 1] == '-') {
            *closing = true;
            q += 2;
        }
        while (q < le && fast_is_lwsp(d[q]))
            q++;
        if (q == le)
            return k + 1;
    }
    return 0;
}

/* Whether the line break whose LF is at d[lf] is of the message's kind
 * (CRLF or bare LF).  GMime decides how much of the line break before a
 * delimiter to drop by the message's kind, not by the break itself, so a
 * message that mixes them around a delimiter takes the full parse. */
static bool fast_eol_ok(const struct fast *f, size_t lf)
{
    bool cr = lf > 0 && f->d[lf - 1] == '\r';

    return cr == f->crlf;
}

/* The start of the next delimiter line of the open multiparts at or after
 * the line start pos, or end; *which and *closing say whose and which. */
static size_t fast_next_delim(const struct fast *f, size_t pos, size_t end, unsigned *which,
                              bool *closing)
{
    const char *d = f->d;

    *which = 0;
    while ((pos = mime_dash_line(d, pos, end)) < end) {
        const char *lf;
        if ((*which = fast_delim(f, pos, end, closing)) != 0)
            return pos;
        lf = memchr(d + pos, '\n', end - pos);
        if (!lf)
            break;
        pos = (size_t)(lf - d) + 1;
    }
    *which = 0;
    return end;
}

/* Decodes a leaf's content d[cs..ce) into p (data, size; its sha256 is
 * computed at the parse's end, hash_due). */
static void fast_leaf_data(struct fast *f, GMimeContentEncoding enc, size_t cs, size_t ce,
                           struct mt_mime_part *p, bool *bad_b64)
{
    const char *src = f->d + cs;
    size_t n = ce - cs;

    *bad_b64 = false;
    if (enc == GMIME_CONTENT_ENCODING_BASE64) {
        size_t bad = 0;
        mt_mime_data_alloc(p, MT_B64_DECODED_MAX(n));
        p->data_len = mt_b64_decode_lenient(src, n, p->data, &bad);
        *bad_b64 = bad != 0;
    } else if (enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        GMimeEncoding st;
        g_mime_encoding_init_decode(&st, enc);
        mt_mime_data_alloc(p, g_mime_encoding_outlen(&st, n) + 16);
        p->data_len = g_mime_encoding_step(&st, src, n, (char *)p->data);
        p->data_len += g_mime_encoding_flush(&st, "", 0, (char *)p->data + p->data_len);
    } else if (n > 0) {
        mt_mime_data_alloc(p, n);
        memcpy(p->data, src, n);
        p->data_len = n;
    }
    if (p->data_len == 0)
        mt_mime_data_release(p);
    p->size = p->data_len;
    p->hash_due = true;
}

/* A Content-Type or Content-Disposition value of the plain shape that
 * GMime's parser reads back unchanged: a token, or "type/subtype" for a
 * Content-Type, then "; name=value" pairs whose names are tokens and whose
 * values are tokens or quoted strings with no backslash, each name once,
 * at most MT_CAP_MIME_FAST_PARAMS of them, nothing but printable ASCII, no
 * comment, no encoded word, no RFC 2231 parameter.  Nearly every value is
 * of this shape; GMime building and freeing an object for each was a sixth
 * of the fast path's instructions.
 * Any other value goes to GMime's parser (test_mime_fast compares both
 * paths on the samples, the corpus and the cases written for these). */

struct fast_params {
    char *buf;                      /* the value, cut into the strings below */
    const char *type;               /* "type/subtype", or the disposition */
    const char *name[MT_CAP_MIME_FAST_PARAMS], *val[MT_CAP_MIME_FAST_PARAMS];
    unsigned n;
};

static const char *fast_param(const struct fast_params *fp, const char *name)
{
    for (unsigned i = 0; i < fp->n; i++)
        if (g_ascii_strcasecmp(fp->name[i], name) == 0)
            return fp->val[i];
    return NULL;
}

/* Fills fp from a copy of v; false (fp empty) when v is not of the plain
 * shape.  slash: a Content-Type ("type/subtype"). */
static bool fast_params_parse(const char *v, bool slash, struct fast_params *fp)
{
    memset(fp, 0, sizeof *fp);
    if (strstr(v, "=?"))
        return false;
    char *p = fp->buf = g_strdup(v);
    fp->type = p;
    while (mime_token_char(*p))
        p++;
    if (p == fp->type)
        goto no;
    if (slash) {
        if (*p != '/')
            goto no;
        char *sub = ++p;
        while (mime_token_char(*p))
            p++;
        if (p == sub)
            goto no;
    }
    while (*p) {
        if (*p != ';')
            goto no;
        *p++ = '\0'; /* ends the type or the previous value */
        while (*p == ' ')
            p++;
        char *name = p;
        while (mime_token_char(*p) && *p != '*')
            p++;
        if (p == name || *p != '=' || fp->n == MT_CAP_MIME_FAST_PARAMS)
            goto no;
        *p++ = '\0';
        char *val = p;
        if (*p == '"') {
            val = ++p;
            while (*p && *p != '"' && *p != '\\' && *p >= ' ' && *p < 0x7f)
                p++;
            if (*p != '"' || p == val)
                goto no;
            *p++ = '\0';
        } else {
            while (mime_token_char(*p))
                p++;
            if (p == val)
                goto no;
        }
        if (fast_param(fp, name))
            goto no; /* a name twice: GMime picks */
        fp->name[fp->n] = name;
        fp->val[fp->n] = val;
        fp->n++;
        if (*p == ' ') /* trailing spaces were trimmed: only "; " may follow */
            goto no;
    }
    return true;
no:
    g_free(fp->buf);
    memset(fp, 0, sizeof *fp);
    return false;
}

/* A Content-Type parameter from GMime's object, or from the plain value. */
static const char *ct_param(GMimeContentType *ct, const struct fast_params *fp, const char *name)
{
    return ct ? g_mime_content_type_get_parameter(ct, name) : fast_param(fp, name);
}

static bool fast_entity(struct fast *f, size_t start, size_t end, bool top, size_t content_end,
                        char *path, unsigned depth);

/* The children of a multipart whose body is d[body..end). */
static bool fast_multipart(struct fast *f, size_t body, size_t end, const char *path,
                           unsigned depth)
{
    unsigned which, nchild = 0;
    bool closing = false;
    size_t k = fast_next_delim(f, body, end, &which, &closing);

    if (which == 0 && f->nbnd == 1) {
        /* the message's multipart without any delimiter line: with no body
         * but white space (a header-only FETCH, a cut message), GMime keeps
         * the container with no parts, and nothing is missing
         * (mime_boundaryless); a prologue is left to the full parse */
        for (size_t i = body; i < end; i++)
            if (!g_ascii_isspace(f->d[i]))
                return false;
        return true;
    }
    if (which != f->nbnd || closing)
        return false; /* no first delimiter, or another's (GMime: prologue) */
    for (;;) {
        const char *lf = memchr(f->d + k, '\n', end - k);
        size_t cstart, n, cend;
        char *cpath;

        if (!lf)
            return false;
        cstart = (size_t)(lf - f->d) + 1;
        n = fast_next_delim(f, cstart, end, &which, &closing);
        if (which == 0 && f->nbnd == 1) {
            /* the message's last part with no delimiter after it (a
             * partial FETCH, a cut message): GMime gives it the rest of
             * the input, line break included, and raises nothing */
            cpath = g_strdup_printf("%s.%u", path, ++nchild);
            return fast_entity(f, cstart, end, false, end, cpath, depth + 1);
        }
        if (which != f->nbnd)
            return false; /* unterminated, or a parent's delimiter inside */
        /* the line break before the delimiter line is the delimiter's;
         * both it and the delimiter line's own must be the message's kind */
        lf = n < end ? memchr(f->d + n, '\n', end - n) : NULL;
        if (n == cstart || !fast_eol_ok(f, n - 1) || !lf || !fast_eol_ok(f, (size_t)(lf - f->d)))
            return false;
        cend = n - (f->crlf ? 2 : 1);
        cpath = g_strdup_printf("%s.%u", path, ++nchild);
        if (!fast_entity(f, cstart, n, false, cend, cpath, depth + 1))
            return false;
        if (closing)
            return true;
        k = n;
    }
}

/* One entity at d[start..end): its headers, then its content, which ends
 * at content_end (the line break before the parent's next delimiter
 * excluded; for the message itself, its end).  Appends its part (and its children's) to f->parts;
 * takes path. */
static bool fast_entity(struct fast *f, size_t start, size_t end, bool top, size_t content_end,
                        char *path, unsigned depth)
{
    const struct mt_limits *lim = f->c->lim;
    struct fast_entity e;
    struct mt_mime_part part;
    GMimeContentType *ct = NULL; /* GMime's objects, when the values are */
    GMimeContentDisposition *cd = NULL; /* not of the plain shape */
    struct fast_params ctp = { 0 }, cdp = { 0 };
    GMimeContentEncoding enc = GMIME_CONTENT_ENCODING_DEFAULT;
    const char *mtype, *fn;
    char *mt = NULL;
    bool ok = false, worded_type = false;

    memset(&part, 0, sizeof part);
    part.path = path;
    part.depth = depth;
    if (depth > lim->mime_depth_max || f->parts->len >= lim->mime_parts_max)
        goto out; /* the full parse raises the cap's anomaly */
    if (!fast_headers(f->d, start, end, top, f->crlf, &e) || e.body > content_end)
        goto out; /* no content line at all before the delimiter */
    if (top)
        f->top = e; /* for the address, subject, date and id fields */
    if (e.body - start > lim->header_max / 2)
        goto out; /* near header_too_large: the full parse measures it */
    if ((e.raw[FH_CT] && fast_2047_ragged(e.raw[FH_CT], e.rawlen[FH_CT])) ||
        (e.raw[FH_CD] && fast_2047_ragged(e.raw[FH_CD], e.rawlen[FH_CD])) ||
        (e.raw[FH_CTE] && fast_2047_ragged(e.raw[FH_CTE], e.rawlen[FH_CTE])))
        goto out; /* padded words to join: mime.c mends the file name only */
    if (e.raw[FH_CT]) {
        /* GMime's parser takes the type from the value as it stands (its
         * part object from the decoded one): an encoded word before the
         * first ';' (`=?us-ascii?Q?multipart/mixed;...?=`) may make it a
         * single part where the decoded type says multipart (below) */
        const char *semi = memchr(e.raw[FH_CT], ';', e.rawlen[FH_CT]);
        size_t tlen = semi ? (size_t)(semi - e.raw[FH_CT]) : e.rawlen[FH_CT];
        worded_type = memmem(e.raw[FH_CT], tlen, "=?", 2) != NULL;
        char *r = fast_value(e.raw[FH_CT], e.rawlen[FH_CT]);
        if (fast_2231_unsorted(r)) {
            g_free(r);
            goto out;
        }
        if (fast_params_parse(r, true, &ctp)) {
            mt = g_strdup(ctp.type);
        } else {
            ct = g_mime_content_type_parse(mime_fast_options(), r);
            if (ct)
                mt = g_mime_content_type_get_mime_type(ct);
        }
        g_free(r);
        if (!mt)
            goto out;
    } else { /* RFC 2045 5.2 (in a digest it would differ: refused below) */
        mt = g_strdup("text/plain");
    }
    mtype = mt;
    if (!mtype || g_ascii_strncasecmp(mtype, "message/", 8) == 0)
        goto out; /* embedded messages: the full parse */
    if (worded_type && g_ascii_strncasecmp(mtype, "multipart/", 10) == 0)
        goto out; /* multipart or not as GMime's parser reads it: the full parse */
    if (g_ascii_strcasecmp(mtype, "multipart/digest") == 0)
        goto out; /* children default to message/rfc822 */
    if (e.raw[FH_CD]) {
        char *r = fast_value(e.raw[FH_CD], e.rawlen[FH_CD]);
        if (fast_2231_unsorted(r)) {
            g_free(r);
            goto out;
        }
        if (!fast_params_parse(r, false, &cdp))
            cd = g_mime_content_disposition_parse(mime_fast_options(), r);
        g_free(r);
    }
    part.content_type = mime_lower_dup(mtype);
    part.charset = mime_lower_dup(ct_param(ct, &ctp, "charset"));
    if (e.raw[FH_CTE]) {
        char *v = fast_value(e.raw[FH_CTE], e.rawlen[FH_CTE]);
        enc = g_mime_content_encoding_from_string(v);
        part.encoding = mime_lower_dup(v);
        g_free(v);
    }
    if (!part.encoding)
        part.encoding = g_strdup("7bit");
    part.disposition = mime_lower_dup(cd ? g_mime_content_disposition_get_disposition(cd) : cdp.type);
    fn = cd ? g_mime_content_disposition_get_parameter(cd, "filename") : fast_param(&cdp, "filename");
    if (!fn) /* g_mime_part_get_filename's order */
        fn = ct_param(ct, &ctp, "name");
    part.filename = mime_utf8_dup(fn, -1, SIZE_MAX);

    if (g_ascii_strncasecmp(mtype, "multipart/", 10) == 0) {
        const char *b = ct_param(ct, &ctp, "boundary");
        size_t bl = b ? strlen(b) : 0;

        /* a boundary longer than GMime finds is left to GMime (which
         * raises mime_no_boundary) */
        if (bl == 0 || bl > MT_CAP_GMIME_BOUNDARY || f->nbnd >= MT_CAP_MIME_FAST_DEPTH)
            goto out;
        for (unsigned k = 0; k < f->nbnd; k++) {
            size_t m = MIN(bl, f->bndlen[k]);
            if (memcmp(b, f->bnd[k], m) == 0)
                goto out; /* one boundary a prefix of another: ambiguous lines */
        }
        part.is_multipart = true;
        g_array_append_val(f->parts, part);
        memset(&part, 0, sizeof part); /* owned by f->parts now */
        path = NULL;
        f->bnd[f->nbnd] = b;
        f->bndlen[f->nbnd] = bl;
        f->nbnd++;
        ok = fast_multipart(f, e.body, end,
                            g_array_index(f->parts, struct mt_mime_part, f->parts->len - 1).path,
                            depth);
        /* the boundary string lives in ct or ctp: pop before they go */
        f->nbnd--;
        goto out;
    }
    if (enc == GMIME_CONTENT_ENCODING_UUENCODE)
        goto out;
    {
        bool bad = false;

        fast_leaf_data(f, enc, e.body, content_end, &part, &bad);
        if (part.content_type && g_str_has_prefix(part.content_type, "text/"))
            part.text_utf8 = mime_text_utf8(part.data, part.data_len, part.charset);
        g_array_append_val(f->parts, part);
        if (bad) { /* raised once the whole message is known to take this path */
            guint idx = f->parts->len - 1;
            g_array_append_val(f->bad, idx);
        }
        memset(&part, 0, sizeof part);
        path = NULL;
        ok = true;
    }
out:
    if (path || part.content_type || part.encoding) {
        part.path = path;
        mt_mime_part_clear(&part);
    }
    if (ct)
        g_object_unref(ct);
    if (cd)
        g_object_unref(cd);
    g_free(ctp.buf);
    g_free(cdp.buf);
    g_free(mt);
    return ok;
}

bool mime_fast_parse(struct mime_ctx *c, const uint8_t *data, size_t len,
                     struct mt_mime_result *out)
{
    struct fast f = {.c = c, .d = (const char *)data};
    const struct fast_entity *e = &f.top;
    size_t cap = c->lim->header_max;
    bool ok;

    {
        const char *lf = memchr(data, '\n', len);
        f.crlf = lf && lf > f.d && lf[-1] == '\r';
    }
    /* Room for the parts of nearly every message from the start: growing
     * the array by realloc kept it in whichever malloc arena its first
     * buffer came from, which through the thread cache was often the
     * reading thread's, so each growth took that arena's lock (a tenth of
     * the message thread's time on the benchmark, and the reading thread
     * waiting).  One allocation of this size comes from the thread's own. */
    f.parts = g_array_sized_new(FALSE, FALSE, sizeof(struct mt_mime_part), FAST_PARTS_RESERVE);
    f.bad = g_array_new(FALSE, FALSE, sizeof(guint));
    ok = fast_entity(&f, 0, len, true, len, g_strdup("1"), 0) &&
         fast_address(e, FH_FROM, cap, &out->headers.from) &&
         fast_address(e, FH_TO, cap, &out->headers.to) &&
         fast_address(e, FH_CC, cap, &out->headers.cc);
    if (!ok) {
        mt_mime_headers_clear(&out->headers);
        for (guint i = 0; i < f.parts->len; i++)
            mt_mime_part_clear(&g_array_index(f.parts, struct mt_mime_part, i));
        g_array_free(f.parts, TRUE);
        g_array_free(f.bad, TRUE);
        return false;
    }
    out->headers.subject = fast_header_text(e, FH_SUBJECT, cap);
    out->headers.date = fast_header_text(e, FH_DATE, cap);
    out->headers.message_id = fast_header_text(e, FH_MSGID, cap);
    for (guint i = 0; i < f.bad->len; i++) {
        const struct mt_mime_part *p =
            &g_array_index(f.parts, struct mt_mime_part, g_array_index(f.bad, guint, i));
        g_snprintf(c->detail, sizeof c->detail, "part %s", p->path);
        mime_anomaly(c, MT_AN_MIME_BAD_BASE64, c->detail);
    }
    g_array_free(f.bad, TRUE);
    out->nparts = f.parts->len;
    out->parts = (struct mt_mime_part *)g_array_free(f.parts, out->nparts == 0);
    if (out->nparts == 0)
        out->parts = NULL;
    return true;
}
