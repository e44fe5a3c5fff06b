/* IMAP through the whole engine: scripted conversations are played as TCP
 * segments (whole, then 7 bytes, then one byte per segment) and the events
 * are written as text lines:
 *   C <tag> <verb> <arg>          command (S: secret)
 *   R <code> <tag> <first line>   response
 *   K <mech> <user> <password> <result>
 *   M <source> <uid> <size> <complete> <sha256 prefix>
 *   P <capability>,...            the session's capabilities, at its end
 *   A <anomaly>
 * The server's words (status codes, CAPABILITY, FETCH, UID, BODY[]) are
 * case-insensitive (RFC 9051 4.1): each case is played as sent and with
 * those words in lower case, and must give the same events. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "engine.h"
#include "session.h"
#include "synth.h"

static void put_bytes(GString *g, struct mt_bytes b)
{
    g_string_append_len(g, (const char *)b.p, (gssize)b.n);
}

static void sink(void *ud, struct mt_event *ev)
{
    GString *g = ud;
    switch (ev->type) {
    case MT_EV_COMMAND:
        g_string_append(g, ev->u.cmd.secret ? "S " : "C ");
        put_bytes(g, ev->u.cmd.tag);
        g_string_append_c(g, ' ');
        put_bytes(g, ev->u.cmd.verb);
        g_string_append_c(g, ' ');
        put_bytes(g, ev->u.cmd.arg);
        break;
    case MT_EV_REPLY:
        g_string_append_printf(g, "R %s ", ev->u.reply.code);
        put_bytes(g, ev->u.reply.tag);
        g_string_append_c(g, ' ');
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
        g_string_append_printf(g, "M %s %s %llu %s %.12s", mt_msg_source_name(m->source),
                               m->uid ? m->uid : "-", (unsigned long long)m->size,
                               m->complete ? "complete" : "partial", m->sha256);
        break;
    }
    case MT_EV_SESSION_END: {
        char **caps = ev->sess ? ev->sess->capabilities : NULL;
        if (!caps)
            return;
        g_string_append(g, "P ");
        for (size_t i = 0; caps[i]; i++)
            g_string_append_printf(g, "%s%s", i ? "," : "", caps[i]);
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

struct turn {
    char who; /* 'c' client, 's' server */
    const char *text;
};

/* Plays the turns on port 143, each cut into segments of at most seg
 * bytes; lower: the server's text in lower case (message bodies and
 * literals included: what is compared is the events, not the bytes). */
static char *play(const struct turn *t, size_t nt, size_t seg)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    GString *o = g_string_new(NULL);
    struct synth c = { .e = mt_engine_new(&lim, sink, o), .seq = { 1000, 5000 },
                       .server_port = 143 };
    synth_pkt(&c, MT_C2S, MT_TH_SYN, NULL, 0);
    synth_pkt(&c, MT_S2C, MT_TH_SYN | MT_TH_ACK, NULL, 0);
    synth_pkt(&c, MT_C2S, MT_TH_ACK, NULL, 0);
    for (size_t i = 0; i < nt; i++) {
        enum mt_dir dir = t[i].who == 'c' ? MT_C2S : MT_S2C;
        const uint8_t *p = (const uint8_t *)t[i].text;
        size_t n = strlen(t[i].text);
        for (size_t off = 0; off < n; off += seg)
            synth_pkt(&c, dir, MT_TH_PSH | MT_TH_ACK, p + off, (uint32_t)MIN(seg, n - off));
    }
    synth_pkt(&c, MT_C2S, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    synth_pkt(&c, MT_S2C, MT_TH_FIN | MT_TH_ACK, NULL, 0);
    mt_engine_finish(c.e);
    mt_engine_free(c.e);
    return g_string_free(o, FALSE);
}

static void check(const struct turn *t, size_t nt, const char *want)
{
    static const size_t segs[] = { 65536, 7, 1 };
    for (size_t i = 0; i < G_N_ELEMENTS(segs); i++) {
        char *got = play(t, nt, segs[i]);
        if (strcmp(got, want) != 0)
            g_error("segments of %zu bytes:\n--- got\n%s--- want\n%s", segs[i], got, want);
        g_free(got);
    }
}

/* The server's words in upper case, then in lower case: the same events
 * but for the words themselves where a line is shown as sent. */
static const struct turn upper[] = {
    { 's', "* OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS AUTH=PLAIN] ready\r\n" },
    { 'c', "a1 LOGIN alice s3cret\r\n" },
    { 's', "a1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] logged in\r\n" },
    { 'c', "a2 CAPABILITY\r\n" },
    { 's', "* CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS\r\na2 OK done\r\n" },
    { 'c', "a3 SELECT INBOX\r\n" },
    { 's', "* 1 EXISTS\r\na3 OK [READ-WRITE] selected\r\n" },
    { 'c', "a4 UID FETCH 7 (BODY.PEEK[])\r\n" },
    { 's', "* 1 FETCH (UID 7 BODY[] {21}\r\nSubject: x\r\n\r\nhello\r\n)\r\n"
           "a4 OK fetched\r\n" },
};

static const struct turn lower[] = {
    { 's', "* ok [capability imap4rev1 login-referrals auth=plain] ready\r\n" },
    { 'c', "a1 LOGIN alice s3cret\r\n" },
    { 's', "a1 ok [capability imap4rev1 idle move] logged in\r\n" },
    { 'c', "a2 CAPABILITY\r\n" },
    { 's', "* capability imap4rev1 idle move uidplus\r\na2 ok done\r\n" },
    { 'c', "a3 SELECT INBOX\r\n" },
    { 's', "* 1 exists\r\na3 ok [read-write] selected\r\n" },
    { 'c', "a4 UID FETCH 7 (BODY.PEEK[])\r\n" },
    { 's', "* 1 fetch (uid 7 body[] {21}\r\nSubject: x\r\n\r\nhello\r\n)\r\n"
           "a4 ok fetched\r\n" },
};

static void test_case_upper(void)
{
    check(upper, G_N_ELEMENTS(upper),
          "R OK * * OK [CAPABILITY IMAP4rev1 LOGIN-REFERRALS AUTH=PLAIN] ready\n"
          "S a1 LOGIN alice s3cret\n"
          "R OK a1 a1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] logged in\n"
          "K IMAP LOGIN alice s3cret success\n"
          "C a2 CAPABILITY \n"
          "R * * * CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS\n"
          "R OK a2 a2 OK done\n"
          "C a3 SELECT INBOX\n"
          "R * * * 1 EXISTS\n"
          "R OK a3 a3 OK [READ-WRITE] selected\n"
          "C a4 UID FETCH 7 (BODY.PEEK[])\n"
          "R * * * 1 FETCH (UID 7 BODY[] {21})\n"
          "M FETCH 7 21 complete 090bcbd4edc4\n"
          "R OK a4 a4 OK fetched\n"
          "P IMAP4rev1,IDLE,MOVE,UIDPLUS\n");
}

static void test_case_lower(void)
{
    check(lower, G_N_ELEMENTS(lower),
          "R OK * * ok [capability imap4rev1 login-referrals auth=plain] ready\n"
          "S a1 LOGIN alice s3cret\n"
          "R OK a1 a1 ok [capability imap4rev1 idle move] logged in\n"
          "K IMAP LOGIN alice s3cret success\n"
          "C a2 CAPABILITY \n"
          "R * * * capability imap4rev1 idle move uidplus\n"
          "R OK a2 a2 ok done\n"
          "C a3 SELECT INBOX\n"
          "R * * * 1 exists\n"
          "R OK a3 a3 ok [read-write] selected\n"
          "C a4 UID FETCH 7 (BODY.PEEK[])\n"
          "R * * * 1 fetch (uid 7 body[] {21})\n"
          "M FETCH 7 21 complete 090bcbd4edc4\n"
          "R OK a4 a4 ok fetched\n"
          "P imap4rev1,idle,move,uidplus\n");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* referenced so that the linker takes imap.o from the engine archive */
    g_assert_cmpstr(mt_imap_dissector.name, ==, "imap");
    g_test_add_func("/imap/words/upper", test_case_upper);
    g_test_add_func("/imap/words/lower", test_case_lower);
    return g_test_run();
}
