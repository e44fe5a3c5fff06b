/* POP3 through the whole engine: scripted conversations are played as TCP
 * segments (whole, then one byte per segment) and the events are written
 * as text lines:
 *   C <verb> <arg>            command (S: secret, D: SASL data)
 *   R <code> <line>|<line>    reply
 *   K <mech> <user> <password> <hash> <result>
 *   M <source> <uid> <size> <complete> <sha256 prefix>
 *   A <anomaly> */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "engine.h"
#include "synth.h"
#include "session.h"

struct out {
    GString *s;
};

/* The bytes as they are, a NUL as "\\0" (the transcript is one C string). */
static void put_bytes(GString *g, struct mt_bytes b)
{
    for (size_t i = 0; i < b.n; i++) {
        if (b.p[i])
            g_string_append_c(g, (char)b.p[i]);
        else
            g_string_append(g, "\\0");
    }
}

static void sink(void *ud, struct mt_event *ev)
{
    GString *g = ((struct out *)ud)->s;
    switch (ev->type) {
    case MT_EV_COMMAND:
        g_string_append(g, ev->u.cmd.auth_data ? "D " : ev->u.cmd.secret ? "S " : "C ");
        put_bytes(g, ev->u.cmd.verb);
        g_string_append_c(g, ' ');
        put_bytes(g, ev->u.cmd.arg);
        break;
    case MT_EV_REPLY:
        g_string_append_printf(g, "R %s ", ev->u.reply.code);
        for (size_t i = 0; i < ev->u.reply.nlines; i++) {
            if (i)
                g_string_append_c(g, '|');
            put_bytes(g, ev->u.reply.lines[i]);
        }
        break;
    case MT_EV_CREDENTIAL: {
        const struct mt_credential *c = ev->u.cred;
        g_string_append_printf(g, "K %s %s %s %s %s", c->mechanism,
                               c->username ? c->username : "-", c->password ? c->password : "-",
                               c->hash ? c->hash : "-", mt_auth_result_name(c->result));
        break;
    }
    case MT_EV_MESSAGE: {
        const struct mt_message *m = ev->u.msg;
        g_string_append_printf(g, "M %s %s %llu %s %.12s", mt_msg_source_name(m->source),
                               m->uid ? m->uid : "-", (unsigned long long)m->size,
                               m->complete ? "complete" : "partial", m->sha256);
        break;
    }
    case MT_EV_ANOMALY:
        if (ev->u.anomaly.kind == MT_AN_GAP)
            return;
        g_string_append_printf(g, "A %s", mt_anomaly_name(ev->u.anomaly.kind));
        break;
    default:
        return;
    }
    g_string_append_c(g, '\n');
}

/* One side's turn: the client (c) or the server (s) sends text. */
struct turn {
    char who;
    const char *text;
    size_t len; /* 0: strlen(text) */
};

/* Plays the turns, each cut into segments of at most seg bytes. */
static char *play(const struct turn *t, size_t nt, size_t seg, uint16_t port)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    struct out o = { g_string_new(NULL) };
    struct synth c = { .e = mt_engine_new(&lim, sink, &o), .seq = { 1000, 5000 },
                       .server_port = 110 };
    (void)port;
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
    return g_string_free(o.s, FALSE);
}

static void check(const struct turn *t, size_t nt, const char *want)
{
    static const size_t segs[] = { 65536, 7, 1 };
    for (size_t i = 0; i < G_N_ELEMENTS(segs); i++) {
        char *got = play(t, nt, segs[i], 110);
        if (strcmp(got, want) != 0)
            g_error("segments of %zu bytes:\n--- got\n%s--- want\n%s", segs[i], got, want);
        g_free(got);
    }
}

/* RFC 2449 PIPELINING: every command in one segment; replies in one
 * segment, the RETR body starting right after its +OK and dot-stuffed. */
static void test_pipelining(void)
{
    static const struct turn t[] = {
        { 's', "+OK POP3 ready\r\n", 0 },
        { 'c', "CAPA\r\nUSER alice\r\nPASS s3cret\r\nLIST\r\nRETR 1\r\nLIST 1\r\nQUIT\r\n", 0 },
        { 's', "+OK\r\nUSER\r\nPIPELINING\r\n.\r\n+OK\r\n+OK logged in\r\n+OK 1 messages\r\n"
               "1 40\r\n.\r\n+OK 40 octets\r\nSubject: x\r\n\r\n..dot\r\n.\r\n"
               "+OK 1 40\r\n+OK bye\r\n", 0 },
    };
    check(t, G_N_ELEMENTS(t),
          "R +OK +OK POP3 ready\n"
          "C CAPA \n"
          "C USER alice\n"
          "S PASS s3cret\n"
          "C LIST \n"
          "C RETR 1\n"
          "C LIST 1\n"
          "C QUIT \n"
          "R +OK +OK|USER|PIPELINING\n"
          "R +OK +OK\n"
          "R +OK +OK logged in\n"
          "K USER alice s3cret - success\n"
          "R +OK +OK 1 messages|1 40\n"
          "R +OK +OK 40 octets\n"
          "M RETR 1 20 complete 1709c07f8334\n"
          "R +OK +OK 1 40\n"
          "R +OK +OK bye\n");
}

/* APOP: the banner's timestamp is the salt of the crackable line. */
static void test_apop(void)
{
    static const struct turn t[] = {
        { 's', "+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n", 0 },
        { 'c', "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n", 0 },
        { 's', "-ERR permission denied\r\n", 0 },
        { 'c', "TOP 2 0\r\n", 0 },
        { 's', "+OK\r\nFrom: a\r\n\r\n.\r\n", 0 },
    };
    check(t, G_N_ELEMENTS(t),
          "R +OK +OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\n"
          "S APOP mrose c4c9334bac560ecc979e58001b3e22fb\n"
          "R -ERR -ERR permission denied\n"
          "K APOP mrose - c4c9334bac560ecc979e58001b3e22fb:<1896.697170952@dbc.mtview.ca.us> "
          "failure\n"
          "C TOP 2 0\n"
          "R +OK +OK\n"
          "M TOP 2 11 partial d08a6ec8c4ff\n");
}

/* USER and PASS holding a NUL: the credential keeps the whole name and
 * password, each NUL as U+FFFD (they were cut at it). */
static void test_user_nul(void)
{
    static const char user[] = "USER b\0b\r\n", pass[] = "PASS p\0w\r\n";
    static const struct turn t[] = {
        { 's', "+OK ready\r\n", 0 },
        { 'c', user, sizeof user - 1 },
        { 's', "+OK\r\n", 0 },
        { 'c', pass, sizeof pass - 1 },
        { 's', "+OK in\r\n", 0 },
    };
    check(t, G_N_ELEMENTS(t),
          "R +OK +OK ready\n"
          "A nul_byte\n"
          "C USER b\\0b\n"
          "R +OK +OK\n"
          "S PASS p\\0w\n"
          "R +OK +OK in\n"
          "K USER b\xef\xbf\xbd" "b p\xef\xbf\xbdw - success\n");
}

/* AUTH with continuations, a cancelled exchange, and STLS. */
static void test_auth_stls(void)
{
    static const struct turn t[] = {
        { 's', "+OK ready\r\n", 0 },
        { 'c', "AUTH LOGIN\r\n", 0 },
        { 's', "+ VXNlcm5hbWU6\r\n", 0 },
        { 'c', "*\r\n", 0 },
        { 's', "-ERR cancelled\r\n", 0 },
        { 'c', "AUTH PLAIN\r\n", 0 },
        { 's', "+ \r\n", 0 },
        { 'c', "AGJvYgBodW50ZXIy\r\n", 0 },
        { 's', "+OK welcome\r\n", 0 },
        { 'c', "STLS\r\n", 0 },
        { 's', "+OK begin TLS\r\n\x16\x03\x01\x00\x05hello", 0 },
        { 'c', "\x16\x03\x01\x00\x05hello", 0 },
    };
    check(t, G_N_ELEMENTS(t),
          "R +OK +OK ready\n"
          "C AUTH LOGIN\n"
          "R + + VXNlcm5hbWU6\n"
          "D  *\n"
          "R -ERR -ERR cancelled\n"
          "K LOGIN - - - failure\n"
          "C AUTH PLAIN\n"
          "R + + \n"
          "D  AGJvYgBodW50ZXIy\n"
          "R +OK +OK welcome\n"
          "K PLAIN bob hunter2 - success\n"
          "C STLS \n"
          "R +OK +OK begin TLS\n");
}

/* A server that never ends the body: the message is reported as partial
 * when the session closes, and the password without a reply as unknown. */
static void test_cut(void)
{
    static const struct turn t[] = {
        { 's', "+OK ready\r\n", 0 },
        { 'c', "USER u\r\nPASS p\r\nRETR 9\r\n", 0 },
        { 's', "+OK\r\n", 0 },
    };
    check(t, G_N_ELEMENTS(t),
          "R +OK +OK ready\n"
          "C USER u\n"
          "S PASS p\n"
          "C RETR 9\n"
          "R +OK +OK\n"
          "K USER u p - unknown\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* referenced so that the linker takes pop3.o from the engine archive
     * (session.c only holds a weak reference to it) */
    g_assert_cmpstr(mt_pop3_dissector.name, ==, "pop3");
    g_test_add_func("/pop3/pipelining", test_pipelining);
    g_test_add_func("/pop3/apop_top", test_apop);
    g_test_add_func("/pop3/user_nul", test_user_nul);
    g_test_add_func("/pop3/auth_stls", test_auth_stls);
    g_test_add_func("/pop3/cut", test_cut);
    return g_test_run();
}
