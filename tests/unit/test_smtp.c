/* SMTP dissector: table-driven dialogues, each run whole, with every client
 * step cut at every byte position, and in 1-byte segments; the messages,
 * envelopes, credentials and anomalies must come out the same each time. */
#include <stdio.h>

#include "synth.h"

#define C(x) { MT_C2S, x, 0 }
#define S(x) { MT_S2C, x, 0 }
#define END { MT_C2S, NULL, 0 }
/* a client step with a NUL in it */
#define CN(x) { MT_C2S, x, sizeof(x) - 1 }

struct smtp_case {
    const char *name;
    struct step steps[24];
    const char *msgs[4];      /* expected raw bytes of each message */
    const char *meta[4];      /* expected summaries */
    const char *creds[3];
    const char *anomaly;      /* a name that must be reported, or NULL */
    bool no_anomaly;          /* no anomaly at all */
    int tls;
};

static const struct smtp_case cases[] = {
    /* a NUL in an address or a parameter: U+FFFD in the envelope, what
     * follows it kept (it was cut there until 2026-12-06) */
    { "nul-in-envelope",
      { S("220 mx ESMTP\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"),
        CN("MAIL FROM:<a\0z@x> SIZE=1\0\r\n"), S("250 ok\r\n"), CN("RCPT TO:<b\0c@y>\r\n"),
        S("250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"), C("x\r\n.\r\n"), S("250 queued\r\n"),
        C("QUIT\r\n"), S("221 bye\r\n"), END },
      { "x\r\n" },
      { "source=DATA from=<a\xef\xbf\xbdz@x> rcpt=<b\xef\xbf\xbd" "c@y> complete=1" }, { NULL },
      NULL, false, 0 },
    { "dot-unstuffing",
      { S("220 mx ESMTP\r\n"), C("EHLO c\r\n"), S("250-mx\r\n250 PIPELINING\r\n"),
        C("MAIL FROM:<a@x> SIZE=100\r\n"), S("250 ok\r\n"), C("RCPT TO:<b@y>\r\n"),
        S("250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"),
        C("Subject: t\r\n\r\n..leading dot\r\n..\r\n...\r\nx.\r\n.\r\n"), S("250 queued\r\n"),
        C("QUIT\r\n"), S("221 bye\r\n"), END },
      { "Subject: t\r\n\r\n.leading dot\r\n.\r\n..\r\nx.\r\n" },
      { "source=DATA from=<a@x> rcpt=<b@y> complete=1" }, { NULL }, NULL, true, 0 },
    { "pipelined envelope with a rejected recipient",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"),
        C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<bad@y>\r\nRCPT TO:<c@y>\r\nDATA\r\n"),
        S("250 ok\r\n250 ok\r\n550 no such user\r\n250 ok\r\n354 go\r\n"),
        C("hello\r\n.\r\n"), S("250 ok\r\n"), END },
      { "hello\r\n" }, { "source=DATA from=<a@x> rcpt=<b@y>,<c@y> complete=1" }, { NULL },
      NULL, true, 0 },
    { "rejected DATA is not a message",
      { S("220 mx\r\n"), C("HELO c\r\n"), S("250 mx\r\n"), C("MAIL FROM:<a@x>\r\n"),
        S("250 ok\r\n"), C("RCPT TO:<b@y>\r\n"), S("250 ok\r\n"), C("DATA\r\n"),
        S("554 no valid recipients\r\n"), C("MAIL FROM:<c@x>\r\n"), S("250 ok\r\n"),
        C("RCPT TO:<d@y>\r\n"), S("250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"),
        C("second\r\n.\r\n"), S("250 ok\r\n"), END },
      { "second\r\n" }, { "source=DATA from=<c@x> rcpt=<d@y> complete=1" }, { NULL }, NULL,
      true, 0 },
    { "rejected MAIL does not leak into the next transaction",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"), C("MAIL FROM:<spam@x>\r\n"),
        S("550 rejected\r\n"), C("RSET\r\n"), S("250 ok\r\n"), C("MAIL FROM:<a@x>\r\n"),
        S("250 ok\r\n"), C("RCPT TO:<b@y>\r\n"), S("250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"),
        C("x\r\n.\r\n"), S("250 ok\r\n"), END },
      { "x\r\n" }, { "source=DATA from=<a@x> rcpt=<b@y> complete=1" }, { NULL }, NULL, true, 0 },
    { "BDAT chunks, LAST, and a pipelined next transaction",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250-mx\r\n250 CHUNKING\r\n"),
        C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 10\r\n0123456789BDAT 5 LAST\r\nabcde"
          "MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 0 LAST\r\n"),
        S("250 ok\r\n250 ok\r\n250 10 octets\r\n250 message ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n"),
        END },
      { "0123456789abcde", "" },
      { "source=BDAT from=<a@x> rcpt=<b@y> complete=1",
        "source=BDAT from=<c@x> rcpt=<d@y> complete=1" },
      { NULL }, NULL, true, 0 },
    { "pipelined BDAT LAST: a recipient rejected after the chunk ended",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250-mx\r\n250 CHUNKING\r\n"),
        C("MAIL FROM:<a@x>\r\nRCPT TO:<good@y>\r\nRCPT TO:<bad@y>\r\nBDAT 5 LAST\r\nhello"),
        S("250 ok\r\n250 ok\r\n550 no such user\r\n250 message ok\r\n"), C("QUIT\r\n"),
        S("221 bye\r\n"), END },
      { "hello" }, { "source=BDAT from=<a@x> rcpt=<good@y> complete=1" }, { NULL }, NULL, true,
      0 },
    { "two pipelined BDAT transactions, each with a rejected recipient",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250-mx\r\n250 CHUNKING\r\n"),
        C("MAIL FROM:<a@x>\r\nRCPT TO:<no1@y>\r\nRCPT TO:<b@y>\r\nBDAT 3 LAST\r\none"
          "MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nRCPT TO:<no2@y>\r\nBDAT 0 LAST\r\n"),
        S("250 ok\r\n550 no\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n550 no\r\n"
          "250 ok\r\n"),
        END },
      { "one", "" },
      { "source=BDAT from=<a@x> rcpt=<b@y> complete=1",
        "source=BDAT from=<c@x> rcpt=<d@y> complete=1" },
      { NULL }, NULL, true, 0 },
    { "pipelined BDAT LAST without the server's replies: taken as accepted",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250-mx\r\n250 CHUNKING\r\n"),
        C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2 LAST\r\nhi"), END },
      { "hi" }, { "source=BDAT from=<a@x> rcpt=<b@y> complete=1" }, { NULL }, NULL, true, 0 },
    { "SMTP smuggling: a bare-LF dot line does not end DATA",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"), C("MAIL FROM:<a@x>\r\n"),
        S("250 ok\r\n"), C("RCPT TO:<b@y>\r\n"), S("250 ok\r\n"), C("DATA\r\n"),
        S("354 go\r\n"),
        C("one\n.\nMAIL FROM:<admin@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nforged\r\n.\r\n"),
        S("250 queued\r\n"), C("QUIT\r\n"), S("221 bye\r\n"), END },
      { "one\n.\nMAIL FROM:<admin@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nforged\r\n" },
      { "source=DATA from=<a@x> rcpt=<b@y> complete=1" }, { NULL }, "bare_lf_dot", false, 0 },
    { "BDAT chunk holding CRLF.CRLF and command-like lines",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"), C("MAIL FROM:<a@x>\r\n"),
        S("250 ok\r\n"), C("RCPT TO:<b@y>\r\n"), S("250 ok\r\n"),
        C("BDAT 20 LAST\r\nQUIT\r\n.\r\nRSET\r\n.\r\n\r\n"), S("250 ok\r\n"), END },
      { "QUIT\r\n.\r\nRSET\r\n.\r\n\r\n" }, { "source=BDAT from=<a@x> rcpt=<b@y> complete=1" },
      { NULL }, NULL, true, 0 },
    { "invalid BDAT size",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"), C("BDAT -5 LAST\r\n"),
        S("501 syntax\r\n"), C("QUIT\r\n"), S("221 bye\r\n"), END },
      { NULL }, { NULL }, { NULL }, "bdat_invalid", false, 0 },
    /* the largest size a 64-bit count holds is valid (the chunk is then
     * cut short by the end of the session); one more is not */
    { "BDAT size of 2^64 - 1",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"), C("MAIL FROM:<a@x>\r\n"),
        S("250 ok\r\n"), C("RCPT TO:<b@y>\r\n"), S("250 ok\r\n"),
        C("BDAT 18446744073709551615 LAST\r\nabc"), END },
      { "abc" }, { "source=BDAT from=<a@x> rcpt=<b@y> complete=0" }, { NULL }, NULL, false, 0 },
    { "BDAT size of 2^64",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"),
        C("BDAT 18446744073709551616 LAST\r\n"), S("501 syntax\r\n"), C("QUIT\r\n"),
        S("221 bye\r\n"), END },
      { NULL }, { NULL }, { NULL }, "bdat_invalid", false, 0 },
    { "AUTH LOGIN prompt flow",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 AUTH LOGIN\r\n"), C("AUTH LOGIN\r\n"),
        S("334 VXNlcm5hbWU6\r\n"), C("YWxpY2U=\r\n"), S("334 UGFzc3dvcmQ6\r\n"),
        C("czNjcjN0\r\n"), S("235 ok\r\n"), C("QUIT\r\n"), S("221 bye\r\n"), END },
      { NULL }, { NULL }, { "LOGIN user=alice pass=s3cr3t result=success" }, NULL, true, 0 },
    { "AUTH PLAIN after an empty challenge, failed",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 AUTH PLAIN\r\n"), C("AUTH PLAIN\r\n"),
        S("334 \r\n"), C("AGJvYgB3cm9uZw==\r\n"), S("535 5.7.8 bad credentials\r\n"), END },
      { NULL }, { NULL }, { "PLAIN user=bob pass=wrong result=failure" }, NULL, true, 0 },
    { "AUTH left unanswered: QUIT ends it, the result is unknown",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 AUTH LOGIN\r\n"), C("AUTH LOGIN\r\n"),
        S("334 VXNlcm5hbWU6\r\n"), C("YWxpY2U=\r\n"), S("334 UGFzc3dvcmQ6\r\n"),
        C("czNjcjN0\r\n"), C("QUIT\r\n"), S("221 bye\r\n"), END },
      { NULL }, { NULL }, { "LOGIN user=alice pass=s3cr3t result=unknown" }, NULL, true, 0 },
    { "STARTTLS accepted: nothing after it is parsed",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 STARTTLS\r\n"), C("STARTTLS\r\n"),
        S("220 go ahead\r\n"), C("\x16\x03\x01\x00\x05hello"), S("\x16\x03\x03\x00\x02hi"),
        END },
      { NULL }, { NULL }, { NULL }, NULL, true, 1 },
    { "STARTTLS refused: parsing goes on",
      { S("220 mx\r\n"), C("EHLO c\r\n"), S("250 mx\r\n"), C("STARTTLS\r\n"),
        S("454 TLS not available\r\n"), C("MAIL FROM:<a@x>\r\n"), S("250 ok\r\n"),
        C("RCPT TO:<b@y>\r\n"), S("250 ok\r\n"), C("DATA\r\n"), S("354 go\r\n"),
        C("m\r\n.\r\n"), S("250 ok\r\n"), END },
      { "m\r\n" }, { "source=DATA from=<a@x> rcpt=<b@y> complete=1" }, { NULL }, NULL, true,
      0 },
    { "picked up mid-stream at AUTH: the reply code tells SMTP",
      { C("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"), S("235 2.7.0 ok\r\n"),
        C("MAIL FROM:<a@x>\r\n"), S("250 ok\r\n"), C("RCPT TO:<b@y>\r\n"), S("250 ok\r\n"),
        C("DATA\r\n"), S("354 go\r\n"), C("z\r\n.\r\n"), S("250 ok\r\n"), END },
      { "z\r\n" }, { "source=DATA from=<a@x> rcpt=<b@y> complete=1" },
      { "PLAIN user=alice pass=secret result=success" }, NULL, true, 0 },
    { "no banner captured: client commands still detect SMTP",
      { C("MAIL FROM:<a@x>\r\n"), S("250 ok\r\n"), C("RCPT TO:<b@y>\r\n"), S("250 ok\r\n"),
        C("DATA\r\n"), S("354 go\r\n"), C("z\r\n.\r\n"), S("250 ok\r\n"), END },
      { "z\r\n" }, { "source=DATA from=<a@x> rcpt=<b@y> complete=1" }, { NULL }, NULL, true,
      0 },
};

/* 250 bytes of a HELO name */
#define H10 "hhhhhhhhhh"
#define H50 H10 H10 H10 H10 H10
#define H250 H50 H50 H50 H50 H50

/* The client name is kept to 255 bytes, cut before a character that
 * would not fit whole (until 2026-12-06 it was cut inside one, which
 * printed as U+FFFD). */
static const struct helo_case {
    const char *name;
    struct step steps[8];
    const char *helo; /* the session's client name at its end */
} helo_cases[] = {
    { "cut before a character",
      { S("220 mx\r\n"), C("EHLO " H250 "hhhh\xc3\xa9z\r\n"), S("250 mx\r\n"), C("QUIT\r\n"),
        S("221 bye\r\n"), END },
      H250 "hhhh" },
    { "cut after a whole character",
      { S("220 mx\r\n"), C("EHLO " H250 "hhh\xc3\xa9z\r\n"), S("250 mx\r\n"), C("QUIT\r\n"),
        S("221 bye\r\n"), END },
      H250 "hhh\xc3\xa9" },
    { "cut before a 4-byte character",
      { S("220 mx\r\n"), C("HELO " H250 "hh\xf0\x9f\x93\xa7\r\n"), S("250 mx\r\n"), END },
      H250 "hh" },
    { "not cut at 255 bytes",
      { S("220 mx\r\n"), C("EHLO " H250 "hh\xc3\xa9\r\n"), S("250 mx\r\n"), END },
      H250 "hh\xc3\xa9" },
};

static void test_helo(gconstpointer data)
{
    const struct helo_case *c = data;
    for (size_t seg = 0; seg <= 1; seg++) { /* whole, then 1-byte segments */
        struct rec r;
        rec_init(&r);
        synth_run(&r, c->steps, -1, 0, seg);
        g_assert_cmpstr(r.helo, ==, c->helo);
        rec_free(&r);
    }
}

static void check(const struct smtp_case *c, struct rec *r, const char *how)
{
    size_t nm = 0;
    while (nm < 4 && c->msgs[nm])
        nm++;
    if (r->msgs->len != nm)
        g_error("%s (%s): %u messages, expected %zu", c->name, how, r->msgs->len, nm);
    for (size_t i = 0; i < nm; i++) {
        GBytes *b = g_ptr_array_index(r->msgs, i);
        gsize n;
        const char *d = g_bytes_get_data(b, &n);
        if (n != strlen(c->msgs[i]) || (n && memcmp(d, c->msgs[i], n) != 0))
            g_error("%s (%s): message %zu is \"%.*s\"", c->name, how, i, (int)n, d);
        g_assert_cmpstr(g_ptr_array_index(r->msg_meta, i), ==, c->meta[i]);
    }
    size_t nc = 0;
    while (nc < 3 && c->creds[nc])
        nc++;
    if (r->creds->len != nc)
        g_error("%s (%s): %u credentials, expected %zu", c->name, how, r->creds->len, nc);
    for (size_t i = 0; i < nc; i++)
        g_assert_cmpstr(g_ptr_array_index(r->creds, i), ==, c->creds[i]);
    if (c->anomaly && !strstr(r->anomalies->str, c->anomaly))
        g_error("%s (%s): anomaly %s missing (got: %s)", c->name, how, c->anomaly,
                r->anomalies->str);
    if (c->no_anomaly && r->anomalies->len)
        g_error("%s (%s): unexpected anomalies: %s", c->name, how, r->anomalies->str);
    g_assert_cmpint(r->tls, ==, c->tls);
}

static void test_case(gconstpointer data)
{
    const struct smtp_case *c = data;
    struct rec r;
    rec_init(&r);
    synth_run(&r, c->steps, -1, 0, 0);
    check(c, &r, "whole");
    /* the same lines must come out however the bytes are cut */
    GString *ref = g_string_new(NULL);
    for (guint i = 0; i < r.lines->len; i++)
        g_string_append_printf(ref, "%s\n", (char *)g_ptr_array_index(r.lines, i));
    rec_free(&r);

    for (int st = 0; c->steps[st].data; st++) {
        size_t n = step_len(&c->steps[st]);
        for (size_t cut = 1; cut < n; cut++) {
            rec_init(&r);
            synth_run(&r, c->steps, st, cut, 0);
            char how[64];
            snprintf(how, sizeof(how), "step %d cut at %zu", st, cut);
            check(c, &r, how);
            GString *got = g_string_new(NULL);
            for (guint i = 0; i < r.lines->len; i++)
                g_string_append_printf(got, "%s\n", (char *)g_ptr_array_index(r.lines, i));
            if (strcmp(got->str, ref->str) != 0)
                g_error("%s (%s): events differ:\n%s\nvs\n%s", c->name, how, got->str, ref->str);
            g_string_free(got, TRUE);
            rec_free(&r);
        }
    }
    rec_init(&r);
    synth_run(&r, c->steps, -1, 0, 1);
    check(c, &r, "1-byte segments");
    rec_free(&r);
    g_string_free(ref, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *path = g_strdup_printf("/smtp/%s", cases[i].name);
        g_test_add_data_func(path, &cases[i], test_case);
        g_free(path);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(helo_cases); i++) {
        char *path = g_strdup_printf("/smtp/helo/%s", helo_cases[i].name);
        g_test_add_data_func(path, &helo_cases[i], test_helo);
        g_free(path);
    }
    return g_test_run();
}
