/* The IMAP tokenizer: each case is fed whole, split at every byte
 * position, split at every pair of positions and one byte at a time; the
 * tokens must be the same every time.  Tokens are written as text:
 *   A<index>.<depth>:<atom>   Q..:<unescaped quoted>   T..:<resp-text>
 *   (i.d  )i.d  (parentheses)   L<index>.<depth>{<size>[+][~]}  (literal)
 *   E<index>.<depth>:<the literal's bytes as handed out>   EOL   EOL!gap */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "imap_tok.h"

struct run {
    GString *out;
    GString *lit;
    unsigned anomalies[MT_AN__COUNT];
};

/* Token bytes, with control bytes other than CR, LF and tab as \xNN. */
static void esc(GString *o, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x20 && p[i] != '\r' && p[i] != '\n' && p[i] != '\t')
            g_string_append_printf(o, "\\x%02x", p[i]);
        else
            g_string_append_c(o, (char)p[i]);
    }
}

static void on_token(void *ud, const struct imap_token *t)
{
    struct run *r = ud;
    GString *o = r->out;
    if (t->type != IMAP_TOK_LITERAL_DATA && o->len)
        g_string_append(o, " | ");
    switch (t->type) {
    case IMAP_TOK_ATOM:
        g_string_append_printf(o, "A%u.%u:", t->index, t->depth);
        esc(o, t->p, t->n);
        break;
    case IMAP_TOK_QUOTED:
        g_string_append_printf(o, "Q%u.%u:", t->index, t->depth);
        esc(o, t->p, t->n);
        break;
    case IMAP_TOK_TEXT:
        g_string_append_printf(o, "T%u.%u:", t->index, t->depth);
        esc(o, t->p, t->n);
        break;
    case IMAP_TOK_LPAREN:
        g_string_append_printf(o, "(%u.%u", t->index, t->depth);
        break;
    case IMAP_TOK_RPAREN:
        g_string_append_printf(o, ")%u.%u", t->index, t->depth);
        break;
    case IMAP_TOK_LITERAL:
        g_string_append_printf(o, "L%u.%u{%llu%s%s}", t->index, t->depth,
                               (unsigned long long)t->size,
                               (t->flags & IMAP_TOK_NONSYNC) ? "+" : "",
                               (t->flags & IMAP_TOK_BINARY) ? "~" : "");
        g_string_truncate(r->lit, 0);
        break;
    case IMAP_TOK_LITERAL_DATA:
        g_string_append_len(r->lit, (const char *)t->p, (gssize)t->n);
        break;
    case IMAP_TOK_LITERAL_END:
        g_string_append_printf(o, "E%u.%u:", t->index, t->depth);
        esc(o, (const uint8_t *)r->lit->str, r->lit->len);
        if (t->flags & IMAP_TOK_GAP)
            g_string_append(o, "!gap");
        break;
    case IMAP_TOK_EOL:
        g_string_append(o, (t->flags & IMAP_TOK_GAP) ? "EOL!gap" : "EOL");
        break;
    }
}

static void on_anomaly(void *ud, enum mt_anomaly a, const char *detail)
{
    struct run *r = ud;
    r->anomalies[a]++;
}

struct tcase {
    const char *name;
    bool server;
    uint64_t literal_max;
    uint32_t nest_max;
    const char *in;
    const char *want;
    enum mt_anomaly anomaly; /* expected at least once, or MT_AN__COUNT for none */
};

static const struct tcase cases[] = {
    { "login-literal-quoted", false, 1024, 8,
      "a1 LOGIN {5}\r\nalice \"pa ss\\\"wo\\\\rd\"\r\n",
      "A0.0:a1 | A1.0:LOGIN | L2.0{5} | E2.0:alice | Q3.0:pa ss\"wo\\rd | EOL",
      MT_AN__COUNT },
    { "fetch-two-literals", true, 1024, 8,
      "* 12 FETCH (UID 34 BODY[HEADER.FIELDS (SUBJECT)] {20}\r\n"
      "Subject: a \"b\" (c)\r\n BODY[]<0> {7+}\r\nx {3}\r\n FLAGS (\\Seen))\r\n",
      "A0.0:* | A1.0:12 | A2.0:FETCH | (3.1 | A3.1:UID | A3.1:34 | "
      "A3.1:BODY[HEADER.FIELDS (SUBJECT)] | L3.1{20} | E3.1:Subject: a \"b\" (c)\r\n | "
      "A3.1:BODY[]<0> | L3.1{7+} | E3.1:x {3}\r\n | A3.1:FLAGS | (3.2 | A3.2:\\Seen | "
      ")3.2 | )3.1 | EOL",
      MT_AN__COUNT },
    { "tagged-status-text", true, 1024, 8,
      "a1 OK [CAPABILITY IMAP4rev1 (X)] Logged \"in\" {5}\r\n",
      "A0.0:a1 | A1.0:OK | T2.0:[CAPABILITY IMAP4rev1 (X)] Logged \"in\" {5} | EOL",
      MT_AN__COUNT },
    { "continuation", true, 1024, 8, "+ Ready for (literal\r\n+\r\n",
      "A0.0:+ | T1.0:Ready for (literal | EOL | A0.0:+ | EOL", MT_AN__COUNT },
    { "append-literal-plus", false, 1024, 8,
      "A3 APPEND INBOX (\\Seen) \"7-Feb-1994 21:52:25 -0800\" {12+}\r\nHello\r\nWorld\r\n"
      "A4 NOOP\r\n",
      "A0.0:A3 | A1.0:APPEND | A2.0:INBOX | (3.1 | A3.1:\\Seen | )3.1 | "
      "Q4.0:7-Feb-1994 21:52:25 -0800 | L5.0{12+} | E5.0:Hello\r\nWorld | EOL | "
      "A0.0:A4 | A1.0:NOOP | EOL",
      MT_AN__COUNT },
    { "binary-and-empty-literal", false, 1024, 8, "b1 X ~{3}\r\n\0\1\2 {0}\r\n\r\n",
      "A0.0:b1 | A1.0:X | L2.0{3~} | E2.0:\\x00\\x01\\x02 | L3.0{0} | E3.0: | EOL", MT_AN__COUNT },
    { "nesting-capped", true, 1024, 2, "* X (((a) b) c) d\r\n",
      "A0.0:* | A1.0:X | (2.1 | (2.2 | A2.2:b | )2.2 | A2.1:c | )2.1 | A3.0:d | EOL", MT_AN_IMAP_NESTING },
    { "literal-capped", true, 4, 8, "* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n",
      "A0.0:* | A1.0:1 | A2.0:FETCH | (3.1 | A3.1:BODY[] | L3.1{10} | E3.1:0123 | )3.1 | EOL",
      MT_AN_LITERAL_TOO_LARGE },
    { "not-a-literal", false, 1024, 8, "c1 SEARCH SUBJECT {x} {5}x\r\n",
      "A0.0:c1 | A1.0:SEARCH | A2.0:SUBJECT | A3.0:{x} | A4.0:{5}x | EOL", MT_AN__COUNT },
    { "unbalanced", true, 1024, 8, "* LIST (\\Noselect \"/\" x\r\n",
      "A0.0:* | A1.0:LIST | (2.1 | A2.1:\\Noselect | Q2.1:/ | A2.1:x | EOL",
      MT_AN_IMAP_SYNTAX },
};

static struct imap_tok *make(const struct tcase *c, struct run *r)
{
    struct imap_tok_cfg cfg = {
        .server = c->server, .line_max = 8192, .literal_max = c->literal_max,
        .nest_max = c->nest_max, .display_max = 8192, .cb = on_token, .ud = r,
        .anomaly = on_anomaly, .anomaly_ud = r,
    };
    memset(r, 0, sizeof(*r));
    r->out = g_string_new(NULL);
    r->lit = g_string_new(NULL);
    return imap_tok_new(&cfg);
}

static void finish(struct imap_tok *t, struct run *r, const struct tcase *c, const char *how)
{
    if (strcmp(r->out->str, c->want) != 0)
        g_error("%s (%s):\n got: %s\nwant: %s", c->name, how, r->out->str, c->want);
    if (c->anomaly != MT_AN__COUNT)
        g_assert_cmpuint(r->anomalies[c->anomaly], >, 0);
    else
        for (int a = 0; a < MT_AN__COUNT; a++)
            g_assert_cmpuint(r->anomalies[a], ==, 0);
    imap_tok_free(t);
    g_string_free(r->out, TRUE);
    g_string_free(r->lit, TRUE);
}

static size_t case_len(const struct tcase *c)
{
    /* the binary case holds a NUL: its length is known from the text */
    if (strcmp(c->name, "binary-and-empty-literal") == 0)
        return strlen("b1 X ~{3}\r\n") + 3 + strlen(" {0}\r\n\r\n");
    return strlen(c->in);
}

static void feed_all(struct imap_tok *t, const uint8_t *p, size_t n)
{
    g_assert_cmpuint(imap_tok_feed(t, p, n), ==, n);
}

static void test_splits(void)
{
    for (size_t ci = 0; ci < G_N_ELEMENTS(cases); ci++) {
        const struct tcase *c = &cases[ci];
        const uint8_t *p = (const uint8_t *)c->in;
        size_t n = case_len(c);
        struct run r;
        struct imap_tok *t;

        t = make(c, &r);
        feed_all(t, p, n);
        finish(t, &r, c, "whole");

        for (size_t k = 0; k <= n; k++) {
            t = make(c, &r);
            feed_all(t, p, k);
            feed_all(t, p + k, n - k);
            finish(t, &r, c, "one split");
        }
        for (size_t i = 0; i <= n; i++)
            for (size_t j = i; j <= n; j++) {
                t = make(c, &r);
                feed_all(t, p, i);
                feed_all(t, p + i, j - i);
                feed_all(t, p + j, n - j);
                finish(t, &r, c, "two splits");
            }
        t = make(c, &r);
        for (size_t k = 0; k < n; k++)
            feed_all(t, p + k, 1);
        finish(t, &r, c, "bytewise");
    }
}

/* A 4 GB literal: skipped by count, never stored; a gap ends it. */
static void test_huge_literal(void)
{
    struct tcase c = { "huge", false, 16, 8, NULL, NULL, MT_AN__COUNT };
    struct run r;
    struct imap_tok *t = make(&c, &r);
    const char *head = "a1 APPEND INBOX {4294967296}\r\n";
    feed_all(t, (const uint8_t *)head, strlen(head));
    g_assert_true(imap_tok_awaiting_literal(t));
    uint8_t junk[4096];
    memset(junk, 'x', sizeof(junk));
    memcpy(junk, "a2 NOOP\r\n", 9); /* inside the literal: not a command */
    feed_all(t, junk, sizeof(junk));
    g_assert_true(imap_tok_in_line(t));
    g_assert_true(imap_tok_gap(t, 4294967296ull - sizeof(junk)));
    const char *tail = "\r\na3 NOOP\r\n";
    feed_all(t, (const uint8_t *)tail, strlen(tail));
    g_assert_cmpstr(r.out->str, ==,
                    "A0.0:a1 | A1.0:APPEND | A2.0:INBOX | L3.0{4294967296} | "
                    "E3.0:a2 NOOP\r\nxxxxxxx!gap | EOL | A0.0:a3 | A1.0:NOOP | EOL");
    g_assert_cmpuint(r.anomalies[MT_AN_LITERAL_TOO_LARGE], ==, 1);
    imap_tok_free(t);
    g_string_free(r.out, TRUE);
    g_string_free(r.lit, TRUE);
}

/* A refused synchronising literal: the next line is a command again. */
static void test_cancel_literal(void)
{
    struct tcase c = { "cancel", false, 1024, 8, NULL, NULL, MT_AN__COUNT };
    struct run r;
    struct imap_tok *t = make(&c, &r);
    const char *a = "a1 APPEND INBOX {100}\r\n";
    feed_all(t, (const uint8_t *)a, strlen(a));
    g_assert_true(imap_tok_awaiting_literal(t));
    imap_tok_cancel_literal(t);
    const char *b = "a2 NOOP\r\n";
    feed_all(t, (const uint8_t *)b, strlen(b));
    g_assert_cmpstr(r.out->str, ==,
                    "A0.0:a1 | A1.0:APPEND | A2.0:INBOX | L3.0{100} | E3.0: | EOL | "
                    "A0.0:a2 | A1.0:NOOP | EOL");
    imap_tok_free(t);
    g_string_free(r.out, TRUE);
    g_string_free(r.lit, TRUE);
}

/* The display copy keeps short printable literals and drops the rest. */
static struct run *pause_run;
static struct imap_tok *pause_tok;

static void on_token_pause(void *ud, const struct imap_token *t)
{
    on_token(ud, t);
    if (t->type == IMAP_TOK_EOL)
        imap_tok_pause(pause_tok);
}

static void test_display_and_pause(void)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    r.out = g_string_new(NULL);
    r.lit = g_string_new(NULL);
    pause_run = &r;
    struct imap_tok_cfg cfg = {
        .server = false, .line_max = 8192, .literal_max = 1024, .nest_max = 8,
        .display_max = 8192, .cb = on_token_pause, .ud = &r,
    };
    struct imap_tok *t = pause_tok = imap_tok_new(&cfg);
    const char *in = "a1 LOGIN {5}\r\nalice {3}\r\n\x01\x02\x03\r\nCOMPRESSED";
    size_t used = imap_tok_feed(t, (const uint8_t *)in, strlen(in));
    g_assert_cmpuint(used, ==, strlen(in) - strlen("COMPRESSED"));
    (void)imap_tok_display(t, &used); /* cleared after EOL */
    g_assert_cmpuint(used, ==, 0);
    imap_tok_free(t);

    cfg.cb = on_token;
    t = imap_tok_new(&cfg);
    const char *part = "a1 LOGIN {5}\r\nalice {3}\r\n\x01\x02\x03";
    feed_all(t, (const uint8_t *)part, strlen(part));
    size_t dn;
    const uint8_t *d = imap_tok_display(t, &dn);
    g_assert_cmpmem(d, dn, "a1 LOGIN {5}\r\nalice {3}", strlen("a1 LOGIN {5}\r\nalice {3}"));
    imap_tok_free(t);
    g_string_free(r.out, TRUE);
    g_string_free(r.lit, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/imap_tok/splits", test_splits);
    g_test_add_func("/imap_tok/huge_literal", test_huge_literal);
    g_test_add_func("/imap_tok/cancel_literal", test_cancel_literal);
    g_test_add_func("/imap_tok/display_and_pause", test_display_and_pause);
    return g_test_run();
}
