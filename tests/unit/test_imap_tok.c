/* The IMAP tokenizer: each case is fed whole, split at every byte
 * position, split at every pair of positions and one byte at a time; the
 * tokens must be the same every time.  Tokens are written as text:
 *   A<index>.<depth>:<atom>   Q..:<unescaped quoted>   T..:<resp-text>
 *   (i.d  )i.d  (parentheses)   L<index>.<depth>{<size>[+][~]}  (literal)
 *   E<index>.<depth>:<the literal's bytes as handed out>   EOL   EOL!gap
 * The /imap/ cases play IMAP conversations through the whole engine
 * (imap.c on top of the tokenizer), whole and one byte per segment. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include <zlib.h>

#include "engine.h"
#include "synth.h"
#include "imap_tok.h"
#include "session.h"

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
    /* a size past 64 bits is no literal, and is told (mt_ascii_u64), also
     * when a non-digit follows its digits */
    { "literal-size-overflows", false, 1024, 8, "c1 X {99999999999999999999999}\r\n",
      "A0.0:c1 | A1.0:X | A2.0:{99999999999999999999999} | EOL", MT_AN_IMAP_SYNTAX },
    { "literal-size-overflows-then-junk", false, 1024, 8,
      "c1 X {18446744073709551616x}\r\n",
      "A0.0:c1 | A1.0:X | A2.0:{18446744073709551616x} | EOL", MT_AN_IMAP_SYNTAX },
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


/* ---- imap.c through the engine ---- */

static void put_bytes(GString *g, struct mt_bytes b)
{
    g_string_append_len(g, (const char *)b.p, (gssize)b.n);
}

/* Whether sink writes the session's capabilities at its end. */
static bool show_caps;

/* C tag verb arg | D arg (SASL) | R tag code line | K mech user pass result |
 * M source mailbox uid section flags size complete | A anomaly |
 * P capability,... (at the session's end, when show_caps) */
static void sink(void *ud, struct mt_event *ev)
{
    GString *g = ud;
    switch (ev->type) {
    case MT_EV_COMMAND:
        if (ev->u.cmd.auth_data) {
            g_string_append(g, "D ");
            put_bytes(g, ev->u.cmd.arg);
            break;
        }
        g_string_append(g, ev->u.cmd.secret ? "S " : "C ");
        put_bytes(g, ev->u.cmd.tag);
        g_string_append_c(g, ' ');
        put_bytes(g, ev->u.cmd.verb);
        g_string_append_c(g, ' ');
        put_bytes(g, ev->u.cmd.arg);
        break;
    case MT_EV_REPLY:
        g_string_append(g, "R ");
        put_bytes(g, ev->u.reply.tag);
        g_string_append_printf(g, " %s ", ev->u.reply.code);
        if (ev->u.reply.nlines)
            put_bytes(g, ev->u.reply.lines[0]);
        break;
    case MT_EV_CREDENTIAL: {
        const struct mt_credential *c = ev->u.cred;
        g_string_append_printf(g, "K %s %s %s %s", c->mechanism,
                               c->username ? c->username : "-", c->password ? c->password : "-",
                               mt_auth_result_name(c->result));
        break;
    }
    case MT_EV_MESSAGE: {
        const struct mt_message *m = ev->u.msg;
        g_string_append_printf(g, "M %s %s %s %s %s %llu %s", mt_msg_source_name(m->source),
                               m->mailbox ? m->mailbox : "-", m->uid ? m->uid : "-",
                               m->section ? m->section : "-", m->flags ? m->flags : "-",
                               (unsigned long long)m->size, m->complete ? "complete" : "partial");
        break;
    }
    case MT_EV_ANOMALY:
        if (ev->u.anomaly.kind == MT_AN_GAP)
            return;
        g_string_append_printf(g, "A %s", mt_anomaly_name(ev->u.anomaly.kind));
        break;
    case MT_EV_TLS:
        g_string_append(g, "TLS");
        break;
    case MT_EV_SESSION_END: {
        char **caps = ev->sess ? ev->sess->capabilities : NULL;
        if (!show_caps || !caps)
            return;
        g_string_append(g, "P ");
        for (size_t i = 0; caps[i]; i++)
            g_string_append_printf(g, "%s%s", i ? "," : "", caps[i]);
        break;
    }
    default:
        return;
    }
    g_string_append_c(g, '\n');
}

struct turn {
    char who;        /* 'c' client, 's' server */
    const char *text;
    size_t len;      /* 0: strlen(text) */
};

static char *play(const struct turn *t, size_t nt, size_t seg)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    lim.literal_max = 4096;
    GString *o = g_string_new(NULL);
    struct synth c = { .e = mt_engine_new(&lim, sink, o), .seq = { 1000, 5000 },
                       .server_port = 143 };
    synth_pkt(&c, MT_C2S, MT_TH_SYN, NULL, 0);
    synth_pkt(&c, MT_S2C, MT_TH_SYN | MT_TH_ACK, NULL, 0);
    synth_pkt(&c, MT_C2S, MT_TH_ACK, NULL, 0);
    for (size_t i = 0; i < nt; i++) {
        int dir = t[i].who == 'c' ? MT_C2S : MT_S2C;
        const uint8_t *p = (const uint8_t *)t[i].text;
        size_t n = t[i].len ? t[i].len : strlen(t[i].text);
        for (size_t off = 0; off < n; off += seg)
            synth_pkt(&c, (enum mt_dir)dir, MT_TH_PSH | MT_TH_ACK, p + off,
                      (uint32_t)MIN(seg, n - off));
    }
    synth_pkt(&c, MT_C2S, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    synth_pkt(&c, MT_S2C, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    mt_engine_finish(c.e);
    mt_engine_free(c.e);
    return g_string_free(o, FALSE);
}

static void check_conv(const struct turn *t, size_t nt, const char *want)
{
    static const size_t segs[] = { 65536, 5, 1 };
    for (size_t i = 0; i < G_N_ELEMENTS(segs); i++) {
        char *got = play(t, nt, segs[i]);
        if (strcmp(got, want) != 0)
            g_error("segments of %zu bytes:\n--- got\n%s--- want\n%s", segs[i], got, want);
        g_free(got);
    }
}

/* The server's words (status codes, CAPABILITY, EXISTS, FETCH, UID,
 * BODY[]) are case-insensitive (RFC 9051 4.1): the same dialogue with
 * them in upper and in lower case gives the same events, but for the
 * lines, the section and the capabilities, shown as sent. */
static void test_imap_server_words(void)
{
    static const struct turn upper[] = {
        { 's', "* OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS AUTH=PLAIN] ready\r\n", 0 },
        { 'c', "a1 LOGIN alice s3cret\r\n", 0 },
        { 's', "a1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] logged in\r\n", 0 },
        { 'c', "a2 CAPABILITY\r\n", 0 },
        { 's', "* CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS\r\na2 OK done\r\n", 0 },
        { 'c', "a3 SELECT INBOX\r\n", 0 },
        { 's', "* 1 EXISTS\r\na3 OK [READ-WRITE] selected\r\n", 0 },
        { 'c', "a4 UID FETCH 7 (BODY.PEEK[])\r\n", 0 },
        { 's', "* 1 FETCH (UID 7 BODY[] {21}\r\nSubject: x\r\n\r\nhello\r\n)\r\n"
               "a4 OK fetched\r\n", 0 },
    };
    static const struct turn lower[] = {
        { 's', "* ok [capability imap4rev1 login-referrals auth=plain] ready\r\n", 0 },
        { 'c', "a1 LOGIN alice s3cret\r\n", 0 },
        { 's', "a1 ok [capability imap4rev1 idle move] logged in\r\n", 0 },
        { 'c', "a2 CAPABILITY\r\n", 0 },
        { 's', "* capability imap4rev1 idle move uidplus\r\na2 ok done\r\n", 0 },
        { 'c', "a3 SELECT INBOX\r\n", 0 },
        { 's', "* 1 exists\r\na3 ok [read-write] selected\r\n", 0 },
        { 'c', "a4 UID FETCH 7 (BODY.PEEK[])\r\n", 0 },
        { 's', "* 1 fetch (uid 7 body[] {21}\r\nSubject: x\r\n\r\nhello\r\n)\r\n"
               "a4 ok fetched\r\n", 0 },
    };
    show_caps = true;
    check_conv(upper, G_N_ELEMENTS(upper),
               "R * OK * OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS AUTH=PLAIN] ready\n"
               "S a1 LOGIN alice s3cret\n"
               "R a1 OK a1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] logged in\n"
               "K IMAP LOGIN alice s3cret success\n"
               "C a2 CAPABILITY \n"
               "R * * * CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS\n"
               "R a2 OK a2 OK done\n"
               "C a3 SELECT INBOX\n"
               "R * * * 1 EXISTS\n"
               "R a3 OK a3 OK [READ-WRITE] selected\n"
               "C a4 UID FETCH 7 (BODY.PEEK[])\n"
               "R * * * 1 FETCH (UID 7 BODY[] {21})\n"
               "M FETCH INBOX 7 BODY[] - 21 complete\n"
               "R a4 OK a4 OK fetched\n"
               "P IMAP4rev1,IDLE,MOVE,UIDPLUS\n");
    check_conv(lower, G_N_ELEMENTS(lower),
               "R * OK * ok [capability imap4rev1 login-referrals auth=plain] ready\n"
               "S a1 LOGIN alice s3cret\n"
               "R a1 OK a1 ok [capability imap4rev1 idle move] logged in\n"
               "K IMAP LOGIN alice s3cret success\n"
               "C a2 CAPABILITY \n"
               "R * * * capability imap4rev1 idle move uidplus\n"
               "R a2 OK a2 ok done\n"
               "C a3 SELECT INBOX\n"
               "R * * * 1 exists\n"
               "R a3 OK a3 ok [read-write] selected\n"
               "C a4 UID FETCH 7 (BODY.PEEK[])\n"
               "R * * * 1 fetch (uid 7 body[] {21})\n"
               "M FETCH INBOX 7 body[] - 21 complete\n"
               "R a4 OK a4 ok fetched\n"
               "P imap4rev1,idle,move,uidplus\n");
    show_caps = false;
}

/* LOGIN with a synchronising literal and a quoted password, pipelined
 * commands, FETCH with the UID after the bodies and two sections. */
static void test_imap_login_fetch(void)
{
    static const struct turn t[] = {
        { 's', "* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n", 0 },
        { 'c', "a1 LOGIN {5}\r\n", 0 },
        { 's', "+ go ahead\r\n", 0 },
        { 'c', "alice \"pa ss\\\"wo\\\\rd\"\r\na2 SELECT \"Sent Items\"\r\n"
               "a3 UID FETCH 7 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])\r\na4 FETCH 1 BODY[]<0.4>\r\n", 0 },
        { 's', "a1 OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n* 2 EXISTS\r\n"
               "a2 OK [READ-WRITE] done\r\n"
               "* 1 FETCH (BODY[HEADER] {11}\r\nSubject: x\n BODY[TEXT] {3}\r\nhi\n UID 7)\r\n"
               "a3 OK done\r\n* 1 FETCH (BODY[]<0> {4}\r\nSubj)\r\na4 OK done\r\n", 0 },
    };
    check_conv(t, G_N_ELEMENTS(t),
               "R * OK * OK [CAPABILITY IMAP4rev1 LITERAL+] ready\n"
               "R + + + go ahead\n"
               "S a1 LOGIN {5}\r\nalice \"pa ss\\\"wo\\\\rd\"\n"
               "C a2 SELECT \"Sent Items\"\n"
               "C a3 UID FETCH 7 (BODY.PEEK[HEADER] BODY.PEEK[TEXT])\n"
               "C a4 FETCH 1 BODY[]<0.4>\n"
               "R a1 OK a1 OK [CAPABILITY IMAP4rev1 IDLE] logged in\n"
               "K IMAP LOGIN alice pa ss\"wo\\rd success\n"
               "R * * * 2 EXISTS\n"
               "R a2 OK a2 OK [READ-WRITE] done\n"
               "R * * * 1 FETCH (BODY[HEADER] {11} BODY[TEXT] {3} UID 7)\n"
               "M FETCH Sent Items 7 BODY[HEADER] - 11 partial\n"
               "M FETCH Sent Items 7 BODY[TEXT] - 3 partial\n"
               "R a3 OK a3 OK done\n"
               "R * * * 1 FETCH (BODY[]<0> {4}\r\nSubj)\n"
               "M FETCH Sent Items - BODY[]<0> - 4 partial\n"
               "R a4 OK a4 OK done\n");
}

/* LOGIN with literals that hold a NUL: the credential keeps the whole
 * name and password, each NUL as U+FFFD (they were cut at it). */
static void test_imap_login_nul(void)
{
    static const char login[] = "a1 LOGIN {3+}\r\nb\0b {3+}\r\np\0w\r\n";
    static const struct turn t[] = {
        { 's', "* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n", 0 },
        { 'c', login, sizeof login - 1 },
        { 's', "a1 OK logged in\r\n", 0 },
    };
    check_conv(t, G_N_ELEMENTS(t),
               "R * OK * OK [CAPABILITY IMAP4rev1 LITERAL+] ready\n"
               "S a1 LOGIN {3+} {3+}\n" /* literals with a NUL are not displayed */
               "R a1 OK a1 OK logged in\n"
               "K IMAP LOGIN b\xef\xbf\xbd" "b p\xef\xbf\xbdw success\n");
}

/* AUTHENTICATE with continuations, a refused synchronising literal,
 * APPEND with LITERAL+, IDLE ... DONE and STARTTLS. */
static void test_imap_auth_append(void)
{
    static const struct turn t[] = {
        { 's', "* OK ready\r\n", 0 },
        { 'c', "b1 AUTHENTICATE PLAIN\r\n", 0 },
        { 's', "+ \r\n", 0 },
        { 'c', "AGJvYgBodW50ZXIy\r\n", 0 },
        { 's', "b1 OK done\r\n", 0 },
        { 'c', "b2 APPEND INBOX {100}\r\n", 0 },
        { 's', "b2 NO [OVERQUOTA] too big\r\n", 0 },
        { 'c', "b3 APPEND Drafts (\\Seen) {9+}\r\nFrom: a\r\n\r\n", 0 },
        { 's', "b3 OK [APPENDUID 1 2] done\r\n", 0 },
        { 'c', "b4 IDLE\r\n", 0 },
        { 's', "+ idling\r\n* 3 EXISTS\r\n", 0 },
        { 'c', "DONE\r\n", 0 },
        { 's', "b4 OK idle done\r\n", 0 },
        { 'c', "b5 STARTTLS\r\n", 0 },
        { 's', "b5 OK go\r\n\x16\x03\x01", 0 },
    };
    check_conv(t, G_N_ELEMENTS(t),
               "R * OK * OK ready\n"
               "C b1 AUTHENTICATE PLAIN\n"
               "R + + + \n"
               "D AGJvYgBodW50ZXIy\n"
               "R b1 OK b1 OK done\n"
               "K PLAIN bob hunter2 success\n"
               "C b2 APPEND INBOX {100}\n"
               "R b2 NO b2 NO [OVERQUOTA] too big\n"
               "C b3 APPEND Drafts (\\Seen) {9+}\n"
               "M APPEND Drafts - - \\Seen 9 complete\n"
               "R b3 OK b3 OK [APPENDUID 1 2] done\n"
               "C b4 IDLE \n"
               "R + + + idling\n"
               "R * * * 3 EXISTS\n"
               "C  DONE \n"
               "R b4 OK b4 OK idle done\n"
               "C b5 STARTTLS \n"
               "R b5 OK b5 OK go\n"
               "TLS\n");
}

/* COMPRESS=DEFLATE: both directions inflated after the tagged OK; then a
 * stream that does not inflate stops the session with decompress_error. */
static void deflate_into(z_stream *z, const char *in, GByteArray *out)
{
    uint8_t buf[4096];
    z->next_in = (Bytef *)(uintptr_t)in;
    z->avail_in = (uInt)strlen(in);
    do {
        z->next_out = buf;
        z->avail_out = sizeof(buf);
        g_assert_cmpint(deflate(z, Z_SYNC_FLUSH), ==, Z_OK);
        g_byte_array_append(out, buf, (guint)(sizeof(buf) - z->avail_out));
    } while (z->avail_out == 0);
}

static void test_imap_compress(void)
{
    z_stream zc, zs;
    memset(&zc, 0, sizeof(zc));
    memset(&zs, 0, sizeof(zs));
    g_assert_cmpint(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
    g_assert_cmpint(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
    GByteArray *s1 = g_byte_array_new(), *c1 = g_byte_array_new(), *s2 = g_byte_array_new();
    const char *ok = "c1 OK DEFLATE active\r\n";
    g_byte_array_append(s1, (const uint8_t *)ok, (guint)strlen(ok));
    deflate_into(&zs, "* CAPABILITY IMAP4rev1 X-AFTER\r\n", s1); /* same segment as the OK */
    deflate_into(&zc, "c2 FETCH 1 RFC822\r\n", c1);
    deflate_into(&zs, "* 1 FETCH (RFC822 {8}\r\nA: b\r\n\r\n)\r\nc2 OK done\r\n", s2);
    g_byte_array_append(s2, (const uint8_t *)"\xff\xff\xff\xff", 4); /* not deflate */
    deflateEnd(&zc);
    deflateEnd(&zs);
    struct turn t[] = {
        { 's', "* OK ready\r\n", 0 },
        { 'c', "c1 COMPRESS DEFLATE\r\n", 0 },
        { 's', (const char *)s1->data, s1->len },
        { 'c', (const char *)c1->data, c1->len },
        { 's', (const char *)s2->data, s2->len },
        { 'c', "c3 LOGOUT\r\n", 0 },
    };
    check_conv(t, G_N_ELEMENTS(t),
               "R * OK * OK ready\n"
               "C c1 COMPRESS DEFLATE\n"
               "R c1 OK c1 OK DEFLATE active\n"
               "R * * * CAPABILITY IMAP4rev1 X-AFTER\n"
               "C c2 FETCH 1 RFC822\n"
               "R * * * 1 FETCH (RFC822 {8})\n"
               "M FETCH - - RFC822 - 8 complete\n"
               "R c2 OK c2 OK done\n"
               "A decompress_error\n");
    g_byte_array_free(s1, TRUE);
    g_byte_array_free(c1, TRUE);
    g_byte_array_free(s2, TRUE);
}

/* A deflate stream that ends (Z_FINISH) with bytes after it: RFC 4978 has
 * no way back to plain text, so they are not read, and that is said with
 * decompress_error, whether they share the stream's segment or come later. */
static void check_compress_end(bool same_segment)
{
    z_stream zc;
    memset(&zc, 0, sizeof(zc));
    g_assert_cmpint(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
    const char *cmd = "c2 NOOP\r\n", *plain = "c3 LOGIN alice secret\r\n";
    uint8_t buf[256];
    zc.next_in = (Bytef *)(uintptr_t)cmd;
    zc.avail_in = (uInt)strlen(cmd);
    zc.next_out = buf;
    zc.avail_out = sizeof(buf);
    g_assert_cmpint(deflate(&zc, Z_FINISH), ==, Z_STREAM_END);
    GByteArray *c1 = g_byte_array_new();
    g_byte_array_append(c1, buf, (guint)(sizeof(buf) - zc.avail_out));
    deflateEnd(&zc);
    if (same_segment)
        g_byte_array_append(c1, (const uint8_t *)plain, (guint)strlen(plain));
    struct turn t[] = {
        { 's', "* OK ready\r\n", 0 },
        { 'c', "c1 COMPRESS DEFLATE\r\n", 0 },
        { 's', "c1 OK DEFLATE active\r\n", 0 },
        { 'c', (const char *)c1->data, c1->len },
        { 'c', plain, 0 },
    };
    check_conv(t, G_N_ELEMENTS(t) - (same_segment ? 1 : 0),
               "R * OK * OK ready\n"
               "C c1 COMPRESS DEFLATE\n"
               "R c1 OK c1 OK DEFLATE active\n"
               "C c2 NOOP \n"
               "A decompress_error\n");
    g_byte_array_free(c1, TRUE);
}

static void test_imap_compress_end_same(void) { check_compress_end(true); }
static void test_imap_compress_end_later(void) { check_compress_end(false); }

/* inflate_max: with one place, a second session that turns COMPRESS on
 * while the first is inflating raises compress_limit and is not decoded
 * further; once the first has ended, a third one inflates again. */
struct zsess {
    struct synth c;
    z_stream zc, zs;
};

static void zs_open(struct zsess *z, struct mt_engine *e, uint16_t port)
{
    memset(z, 0, sizeof(*z));
    z->c = (struct synth){ .e = e, .seq = { 1000, 5000 }, .server_port = 143, .client_port = port };
    g_assert_cmpint(deflateInit2(&z->zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
    g_assert_cmpint(deflateInit2(&z->zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), ==, Z_OK);
    synth_pkt(&z->c, MT_C2S, MT_TH_SYN, NULL, 0);
    synth_pkt(&z->c, MT_S2C, MT_TH_SYN | MT_TH_ACK, NULL, 0);
    synth_pkt(&z->c, MT_C2S, MT_TH_ACK, NULL, 0);
}

static void zs_say(struct zsess *z, enum mt_dir dir, const char *text, bool deflated)
{
    GByteArray *b = g_byte_array_new();
    if (deflated)
        deflate_into(dir == MT_C2S ? &z->zc : &z->zs, text, b);
    else
        g_byte_array_append(b, (const uint8_t *)text, (guint)strlen(text));
    synth_pkt(&z->c, dir, MT_TH_PSH | MT_TH_ACK, b->data, b->len);
    g_byte_array_free(b, TRUE);
}

static void zs_close(struct zsess *z)
{
    synth_pkt(&z->c, MT_C2S, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    synth_pkt(&z->c, MT_S2C, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    synth_pkt(&z->c, MT_C2S, MT_TH_ACK, NULL, 0);
    deflateEnd(&z->zc);
    deflateEnd(&z->zs);
}

static void zs_compress_on(struct zsess *z)
{
    zs_say(z, MT_S2C, "* OK ready\r\n", false);
    zs_say(z, MT_C2S, "c1 COMPRESS DEFLATE\r\n", false);
    zs_say(z, MT_S2C, "c1 OK DEFLATE active\r\n", false);
}

static void test_imap_inflate_max(void)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    lim.inflate_max = 1;
    GString *o = g_string_new(NULL);
    struct mt_engine *e = mt_engine_new(&lim, sink, o);
    struct zsess a, b, c;
    zs_open(&a, e, 40001);
    zs_compress_on(&a);
    zs_open(&b, e, 40002);
    zs_compress_on(&b); /* the one place is a's */
    zs_say(&a, MT_C2S, "c2 NOOP\r\n", true);
    zs_say(&b, MT_C2S, "c2 NOOP\r\n", true);
    zs_say(&a, MT_S2C, "c2 OK a\r\n", true);
    zs_say(&b, MT_S2C, "c2 OK b\r\n", true);
    zs_close(&a); /* gives the place back */
    zs_close(&b);
    zs_open(&c, e, 40003);
    zs_compress_on(&c);
    zs_say(&c, MT_C2S, "c2 NOOP\r\n", true);
    zs_say(&c, MT_S2C, "c2 OK c\r\n", true);
    zs_close(&c);
    mt_engine_finish(e);
    mt_engine_free(e);
    /* a and c decode every line after COMPRESS; b none, with the anomaly */
    const char *want_a[] = { "C c2 NOOP", "R c2 OK c2 OK a" };
    const char *want_c[] = { "C c2 NOOP", "R c2 OK c2 OK c" };
    for (size_t i = 0; i < G_N_ELEMENTS(want_a); i++) {
        if (!strstr(o->str, want_a[i]) || !strstr(o->str, want_c[i]))
            g_error("missing %s / %s in\n%s", want_a[i], want_c[i], o->str);
    }
    if (strstr(o->str, "R c2 OK c2 OK b"))
        g_error("the session over the cap was decoded:\n%s", o->str);
    const char *an = strstr(o->str, "A compress_limit");
    if (!an || strstr(an + 1, "A compress_limit"))
        g_error("want exactly one compress_limit:\n%s", o->str);
    g_string_free(o, TRUE);
}

/* Hostile sizes: a 4 GB literal is skipped by count (the session ends
 * inside it), deep nesting is capped, a literal over literal_max keeps
 * its first bytes. */
static void test_imap_hostile(void)
{
    GString *deep = g_string_new("* 1 FETCH (X ");
    for (int i = 0; i < 200; i++)
        g_string_append_c(deep, '(');
    for (int i = 0; i < 200; i++)
        g_string_append_c(deep, ')');
    g_string_append(deep, ")\r\n");
    GString *big = g_string_new("* 2 FETCH (BODY[] {5000}\r\n");
    for (int i = 0; i < 5000; i++)
        g_string_append_c(big, 'x');
    g_string_append(big, " UID 9)\r\nd1 OK done\r\n");
    struct turn t[] = {
        { 's', "* OK ready\r\n", 0 },
        { 'c', "d1 FETCH 1:2 ALL\r\n", 0 },
        { 's', deep->str, 0 },
        { 's', big->str, 0 },
        { 'c', "d2 APPEND INBOX {4294967296+}\r\nd3 LOGOUT\r\n", 0 },
    };
    GString *want = g_string_new("R * OK * OK ready\nC d1 FETCH 1:2 ALL\nA imap_nesting\nR * * ");
    g_string_append_len(want, deep->str, (gssize)deep->len - 2); /* shown as sent */
    g_string_append(want, "\n"
                          "A literal_too_large\n"
                          "R * * * 2 FETCH (BODY[] {5000} UID 9)\n"
                          "A message_truncated\n"
                          "M FETCH - 9 BODY[] - 4096 partial\n"
                          "R d1 OK d1 OK done\n"
                          "A literal_too_large\n"
                          "C d2 APPEND INBOX {4294967296+}\n"
                          "A message_truncated\n"
                          "M APPEND INBOX - - - 11 partial\n");
    check_conv(t, G_N_ELEMENTS(t), want->str);
    g_string_free(want, TRUE);
    g_string_free(deep, TRUE);
    g_string_free(big, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/imap_tok/splits", test_splits);
    g_test_add_func("/imap_tok/huge_literal", test_huge_literal);
    g_test_add_func("/imap_tok/cancel_literal", test_cancel_literal);
    g_test_add_func("/imap_tok/display_and_pause", test_display_and_pause);
    /* referenced so that the linker takes imap.o from the engine archive
     * (session.c only holds a weak reference to it) */
    g_assert_cmpstr(mt_imap_dissector.name, ==, "imap");
    g_test_add_func("/imap/login_fetch", test_imap_login_fetch);
    g_test_add_func("/imap/login_nul", test_imap_login_nul);
    g_test_add_func("/imap/server_words", test_imap_server_words);
    g_test_add_func("/imap/auth_append_idle_starttls", test_imap_auth_append);
    g_test_add_func("/imap/compress", test_imap_compress);
    g_test_add_func("/imap/compress-end-same-segment", test_imap_compress_end_same);
    g_test_add_func("/imap/compress-end-later", test_imap_compress_end_later);
    g_test_add_func("/imap/inflate_max", test_imap_inflate_max);
    g_test_add_func("/imap/hostile", test_imap_hostile);
    return g_test_run();
}
