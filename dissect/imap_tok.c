/* The IMAP tokenizer; see imap_tok.h.
 *
 * Lines come from the shared framer and are tokenized whole (a quoted
 * string cannot span lines, RFC 9051 4.3); a line ending in a literal
 * marker puts the framer in raw mode for exactly the declared count, and
 * the line after the literal continues the same logical line.  State that
 * spans lines is therefore only: parenthesis depth, the top-level index,
 * whether the rest of the line is resp-text, and the literal in progress. */
#include "imap_tok.h"

#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "ascii.h"
#include "caps.h"
#include "framer.h"
#include "grow.h"

/* A byte buffer appended to a few times a line: inline, where GByteArray
 * costs a library call per append and per emptying (set_size(0) goes
 * through g_array_remove_range), about 2 % of the reading thread on
 * IMAP-heavy captures. */
struct tbuf {
    uint8_t *p;
    size_t n, cap;
};

static void tbuf_grow(struct tbuf *b, size_t need)
{
    b->cap = mt_grow_cap(b->cap, 128, need, SIZE_MAX);
    b->p = g_realloc(b->p, b->cap);
}

static inline void tbuf_add(struct tbuf *b, const uint8_t *p, size_t n)
{
    if (G_UNLIKELY(b->cap - b->n < n))
        tbuf_grow(b, b->n + n);
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

struct imap_tok {
    struct imap_tok_cfg cfg;
    struct mt_framer fr;
    bool paused;
    /* the logical line */
    bool in_line;
    bool text_next;         /* server: the rest of this line is resp-text */
    bool nest_reported;
    unsigned index;         /* next top-level index */
    uint64_t depth;
    struct tbuf disp;       /* display copy, capped at cfg.display_max */
    struct tbuf scratch;    /* an unescaped quoted string */
    /* the literal in progress */
    bool in_lit;
    unsigned lit_flags;
    uint64_t lit_size, lit_seen;
    /* its first bytes: a literal this short and printable is shown in the
     * display copy */
    uint8_t lit_show[MT_CAP_IMAP_LITERAL_SHOWN];
    size_t lit_show_n;
};

static void tok_anomaly(struct imap_tok *t, enum mt_anomaly a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void tok_anomaly(struct imap_tok *t, enum mt_anomaly a, const char *fmt, ...)
{
    if (!t->cfg.anomaly)
        return;
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    t->cfg.anomaly(t->cfg.anomaly_ud, a, buf);
}

struct imap_tok *imap_tok_new(const struct imap_tok_cfg *cfg)
{
    struct imap_tok *t = g_new0(struct imap_tok, 1);
    t->cfg = *cfg;
    if (t->cfg.nest_max == 0)
        t->cfg.nest_max = 1;
    mt_framer_init(&t->fr, cfg->line_max);
    return t;
}

void imap_tok_free(struct imap_tok *t)
{
    if (!t)
        return;
    mt_framer_free(&t->fr);
    g_free(t->disp.p);
    g_free(t->scratch.p);
    g_free(t);
}

void imap_tok_pause(struct imap_tok *t)
{
    t->paused = true;
}

bool imap_tok_in_line(const struct imap_tok *t)
{
    return t->in_line;
}

const uint8_t *imap_tok_display(const struct imap_tok *t, size_t *n)
{
    *n = t->disp.n;
    return t->disp.p;
}

bool imap_tok_awaiting_literal(const struct imap_tok *t)
{
    return t->in_lit && t->lit_seen == 0 && t->lit_size > 0 &&
           !(t->lit_flags & IMAP_TOK_NONSYNC);
}

static void disp_add(struct imap_tok *t, const uint8_t *p, size_t n)
{
    size_t max = t->cfg.display_max;
    if (t->disp.n >= max)
        return;
    if (n > max - t->disp.n)
        n = max - t->disp.n;
    tbuf_add(&t->disp, p, n);
}

/* Hands a token out, unless it lies deeper than the nesting cap. */
static void emit(struct imap_tok *t, enum imap_tok_type type, const uint8_t *p, size_t n,
                 uint64_t depth, uint64_t size, unsigned flags)
{
    if (depth > t->cfg.nest_max)
        return;
    struct imap_token tk = {
        .type = type, .p = p, .n = n, .index = t->index, .depth = (unsigned)depth,
        .size = size, .flags = flags,
    };
    t->cfg.cb(t->cfg.ud, &tk);
}

static void line_reset(struct imap_tok *t)
{
    t->in_line = false;
    t->text_next = false;
    t->nest_reported = false;
    t->index = 0;
    t->depth = 0;
    t->disp.n = 0;
}

static void eol(struct imap_tok *t, unsigned flags)
{
    if (t->depth != 0 && !(flags & IMAP_TOK_GAP))
        tok_anomaly(t, MT_AN_IMAP_SYNTAX, "%llu parentheses left open",
                    (unsigned long long)t->depth);
    uint64_t d = t->depth;
    t->depth = 0; /* EOL itself is always handed out */
    emit(t, IMAP_TOK_EOL, NULL, 0, 0, 0, flags);
    t->depth = d;
    line_reset(t);
}

/* A top-level item is complete. */
static void item_done(struct imap_tok *t)
{
    if (t->depth == 0)
        t->index++;
}

static bool is_status(const uint8_t *p, size_t n)
{
    static const char *const words[] = { "OK", "NO", "BAD", "PREAUTH", "BYE", NULL };
    for (int i = 0; words[i]; i++)
        if (mt_eq_ci(p, n, words[i]))
            return true;
    return false;
}

static void emit_atom(struct imap_tok *t, const uint8_t *p, size_t n)
{
    emit(t, IMAP_TOK_ATOM, p, n, t->depth, 0, 0);
    /* resp-text follows "+" and a status word (RFC 9051 7.1, 7.5) */
    if (t->cfg.server && t->depth == 0 &&
        ((t->index == 0 && n == 1 && p[0] == '+') || (t->index == 1 && is_status(p, n))))
        t->text_next = true;
    item_done(t);
}

/* ~{n}, {n}, {n+} or {n-} filling p[0..n) exactly (the end of the line). */
static bool parse_literal(struct imap_tok *t, const uint8_t *p, size_t n, uint64_t *size,
                          unsigned *flags)
{
    size_t i = 0;
    *flags = 0;
    if (i < n && p[i] == '~') {
        *flags |= IMAP_TOK_BINARY;
        i++;
    }
    if (i >= n || p[i] != '{' || p[n - 1] != '}')
        return false;
    i++;
    size_t end = n - 1;
    if (end > i && (p[end - 1] == '+' || p[end - 1] == '-')) {
        *flags |= IMAP_TOK_NONSYNC;
        end--;
    }
    if (end == i)
        return false;
    uint64_t v;
    bool overflow;
    size_t digits = mt_ascii_u64(p + i, end - i, &v, &overflow);
    /* an overflow is told even when a non-digit follows the digits */
    if (overflow) {
        tok_anomaly(t, MT_AN_IMAP_SYNTAX, "literal size overflows");
        return false;
    }
    if (digits != end - i)
        return false;
    *size = v;
    return true;
}

static void literal_end(struct imap_tok *t, unsigned gapflag)
{
    unsigned fl = (t->lit_flags & (IMAP_TOK_NONSYNC | IMAP_TOK_BINARY | IMAP_TOK_CAPPED |
                                   IMAP_TOK_GAP)) |
                  gapflag;
    emit(t, IMAP_TOK_LITERAL_END, NULL, 0, t->depth, t->lit_seen, fl);
    if (!(fl & IMAP_TOK_GAP) && t->lit_size <= MT_CAP_IMAP_LITERAL_SHOWN) {
        bool printable = true;
        for (size_t i = 0; i < t->lit_show_n && printable; i++)
            if ((t->lit_show[i] < 0x20 && t->lit_show[i] != '\t') || t->lit_show[i] == 0x7f)
                printable = false;
        if (printable) {
            disp_add(t, (const uint8_t *)"\r\n", 2);
            disp_add(t, t->lit_show, t->lit_show_n);
        }
    }
    t->in_lit = false;
    item_done(t);
}

static void literal_begin(struct imap_tok *t, uint64_t size, unsigned flags)
{
    t->in_lit = true;
    t->lit_size = size;
    t->lit_seen = 0;
    t->lit_show_n = 0;
    if (size > t->cfg.literal_max) {
        flags |= IMAP_TOK_CAPPED;
        tok_anomaly(t, MT_AN_LITERAL_TOO_LARGE, "literal of %llu bytes, %llu kept",
                    (unsigned long long)size, (unsigned long long)t->cfg.literal_max);
    }
    t->lit_flags = flags;
    emit(t, IMAP_TOK_LITERAL, NULL, 0, t->depth, size, flags);
    if (size == 0)
        literal_end(t, 0);
    else
        mt_framer_raw(&t->fr, size);
}

static void raw_item(struct imap_tok *t, const struct mt_item *it)
{
    if (!t->in_lit)
        return;
    const uint8_t *p = it->p;
    size_t n = it->n;
    if (t->lit_seen < MT_CAP_IMAP_LITERAL_SHOWN) {
        size_t k = MIN(n, (size_t)(MT_CAP_IMAP_LITERAL_SHOWN - t->lit_seen));
        memcpy(t->lit_show + t->lit_show_n, p, k);
        t->lit_show_n += k;
    }
    /* only the first literal_max bytes are handed out */
    if (t->lit_seen < t->cfg.literal_max) {
        uint64_t room = t->cfg.literal_max - t->lit_seen;
        size_t k = (uint64_t)n > room ? (size_t)room : n;
        emit(t, IMAP_TOK_LITERAL_DATA, p, k, t->depth, t->lit_size, t->lit_flags);
    }
    t->lit_seen += n;
    if (t->fr.raw_left == 0)
        literal_end(t, 0);
}

static void line_anomalies(struct imap_tok *t, const struct mt_item *it)
{
    if (it->flags & MT_LINE_TRUNCATED)
        tok_anomaly(t, MT_AN_LINE_TOO_LONG, "line longer than %u bytes", t->cfg.line_max);
    if (it->flags & MT_LINE_NUL)
        tok_anomaly(t, MT_AN_NUL_BYTE, "NUL in a line");
    if (it->flags & MT_LINE_BARE_CR)
        tok_anomaly(t, MT_AN_BARE_CR, "CR inside a line");
    if (it->flags & MT_LINE_BARE_LF)
        tok_anomaly(t, MT_AN_BARE_LF, "line ended by LF alone");
}

static void open_paren(struct imap_tok *t)
{
    t->depth++;
    if (t->depth > t->cfg.nest_max && !t->nest_reported) {
        t->nest_reported = true;
        tok_anomaly(t, MT_AN_IMAP_NESTING, "lists nested deeper than %u", t->cfg.nest_max);
    }
    emit(t, IMAP_TOK_LPAREN, (const uint8_t *)"(", 1, t->depth, 0, 0);
}

static void close_paren(struct imap_tok *t)
{
    if (t->depth == 0) {
        tok_anomaly(t, MT_AN_IMAP_SYNTAX, "')' without '('");
        return;
    }
    emit(t, IMAP_TOK_RPAREN, (const uint8_t *)")", 1, t->depth, 0, 0);
    t->depth--;
    item_done(t);
}

/* A quoted string from p[i] == '"'; returns the index after it. */
static size_t quoted(struct imap_tok *t, const uint8_t *p, size_t n, size_t i)
{
    size_t j = i + 1;
    bool closed = false;
    t->scratch.n = 0;
    while (j < n) {
        /* the run of plain bytes up to the next quote or backslash, at once */
        size_t k = j;
        while (k < n && p[k] != '"' && p[k] != '\\')
            k++;
        if (k > j)
            tbuf_add(&t->scratch, p + j, k - j);
        j = k;
        if (j >= n)
            break;
        if (p[j] == '"') {
            closed = true;
            j++;
            break;
        }
        if (j + 1 < n) { /* quoted-specials (RFC 9051 9) */
            tbuf_add(&t->scratch, p + j + 1, 1);
            j += 2;
        } else { /* a backslash ending the line is kept */
            tbuf_add(&t->scratch, p + j, 1);
            j++;
        }
    }
    if (!closed)
        tok_anomaly(t, MT_AN_IMAP_SYNTAX, "quoted string not closed");
    emit(t, IMAP_TOK_QUOTED, t->scratch.p, t->scratch.n, t->depth, 0,
         closed ? 0 : IMAP_TOK_UNCLOSED);
    item_done(t);
    return j;
}

/* An atom from p[i]; "[...]" inside it may hold spaces and parentheses
 * (BODY[HEADER.FIELDS (From)]<0>).  Returns the index after it. */
static size_t atom_end(const uint8_t *p, size_t n, size_t i)
{
    size_t j = i;
    while (j < n) {
        uint8_t c = p[j];
        if (c == ' ' || c == '(' || c == ')' || c == '"')
            break;
        if (c == '[') {
            const uint8_t *rb = memchr(p + j, ']', n - j);
            j = rb ? (size_t)(rb - p) + 1 : n;
            continue;
        }
        j++;
    }
    return j;
}

static void line_item(struct imap_tok *t, const struct mt_item *it)
{
    const uint8_t *p = it->p;
    size_t n = it->n;
    line_anomalies(t, it);
    disp_add(t, p, n);
    t->in_line = true;

    size_t i = 0;
    while (i < n) {
        if (t->text_next) {
            if (p[i] == ' ')
                i++;
            if (i < n)
                emit(t, IMAP_TOK_TEXT, p + i, n - i, t->depth, 0, 0);
            t->text_next = false;
            i = n;
            break;
        }
        uint8_t c = p[i];
        if (c == ' ') {
            i++;
            continue;
        }
        if (c == '(') {
            open_paren(t);
            i++;
            continue;
        }
        if (c == ')') {
            close_paren(t);
            i++;
            continue;
        }
        if (c == '"') {
            i = quoted(t, p, n, i);
            continue;
        }
        size_t j = atom_end(p, n, i);
        uint64_t size;
        unsigned fl;
        if (j == n && (c == '{' || c == '~') && !(it->flags & MT_LINE_TRUNCATED) &&
            parse_literal(t, p + i, n - i, &size, &fl)) {
            /* the line goes on after the literal's bytes */
            literal_begin(t, size, fl);
            return;
        }
        emit_atom(t, p + i, j - i);
        i = j;
    }
    eol(t, 0);
}

size_t imap_tok_feed(struct imap_tok *t, const uint8_t *p, size_t n)
{
    struct mt_item it;
    t->paused = false;
    mt_framer_input(&t->fr, p, n);
    while (!t->paused && mt_framer_next(&t->fr, &it)) {
        if (it.kind == MT_ITEM_RAW)
            raw_item(t, &it);
        else
            line_item(t, &it);
    }
    if (t->paused) {
        t->paused = false;
        return t->fr.in_off;
    }
    return n;
}

bool imap_tok_gap(struct imap_tok *t, uint64_t len)
{
    if (t->in_lit) {
        uint64_t left = t->fr.raw_left;
        if (len < left) {
            t->fr.raw_left -= len;
            t->lit_seen += len;
            t->lit_flags |= IMAP_TOK_GAP;
            return true;
        }
        t->fr.raw_left = 0;
        t->lit_seen += left;
        literal_end(t, IMAP_TOK_GAP);
        if (len == left)
            return true; /* the line after the literal is intact */
        eol(t, IMAP_TOK_GAP);
        mt_framer_reset(&t->fr);
        t->fr.skipping = true;
        return true;
    }
    mt_framer_reset(&t->fr);
    t->fr.skipping = true;
    if (t->in_line)
        eol(t, IMAP_TOK_GAP);
    return false;
}

void imap_tok_cancel_literal(struct imap_tok *t)
{
    if (!imap_tok_awaiting_literal(t))
        return;
    t->fr.raw_left = 0;
    t->in_lit = false;
    emit(t, IMAP_TOK_LITERAL_END, NULL, 0, t->depth, 0, t->lit_flags | IMAP_TOK_REFUSED);
    item_done(t);
    eol(t, 0);
}
