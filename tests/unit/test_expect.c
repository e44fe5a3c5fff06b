/* The dissectors pass on the size a message announces (mt_msgbuf_expect):
 * SMTP's SIZE= on MAIL FROM (RFC 1870), POP3's "+OK n octets" before a
 * RETR body, and the IMAP literal of a FETCH body or an APPEND.  Seen in
 * the capacity of the finished message's buffer, as handed over
 * (mt_engine_set_defer): made at the announced size at once, where an
 * unannounced message doubles its way up (290,000 bytes: 512 KiB). */
#include <string.h>

#include <glib.h>

#include "message.h"
#include "synth.h"

#define BODY_LEN 290000u
#define DOUBLED (512u * 1024)
#define MESSAGE_MAX SIZE_MAX /* in caps: the default limits' message_max */

/* A message of BODY_LEN bytes: a header, then lines of 'm' (nothing to
 * unstuff). */
static char *body(void)
{
    GString *s = g_string_new("Subject: big\r\n\r\n");
    while (s->len + 100 <= BODY_LEN)
        g_string_append(s, "mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm"
                           "mmmmmmmmmmmmmmmmmmmmmmmmmm\r\n");
    while (s->len + 2 < BODY_LEN)
        g_string_append_c(s, 'm');
    g_string_append(s, "\r\n");
    g_assert_cmpuint(s->len, ==, BODY_LEN);
    return g_string_free(s, FALSE);
}

/* The defer function: the capacity of each message's buffer. */
static void take(void *ud, struct mt_deferred *d, struct mt_bufpool *pool)
{
    (void)pool;
    GArray *caps = ud;
    size_t cap = 0;
    uint8_t *b = mt_deferred_take_buffer(d, &cap);
    if (b) {
        g_array_append_val(caps, cap);
        mt_buf_free(b, cap);
    }
    mt_deferred_free(d);
}

/* s, freed with own */
static const char *keep(GPtrArray *own, char *s)
{
    g_ptr_array_add(own, s);
    return s;
}

enum proto { SMTP, POP3, IMAP };

static const struct expect_case {
    const char *name;
    enum proto proto;
    const char *announce; /* SMTP: MAIL FROM's parameters; POP3: RETR's +OK; IMAP: unused */
    const char *cmd;      /* POP3: RETR or TOP */
    size_t caps[2];       /* the buffers' capacities, in order (0 ends) */
} cases[] = {
    { "smtp SIZE", SMTP, " SIZE=300000", NULL, { 300000 } },
    { "smtp size among others, any case", SMTP, " BODY=8BITMIME size=300000", NULL, { 300000 } },
    { "smtp no SIZE", SMTP, "", NULL, { DOUBLED } },
    { "smtp SIZE not a number", SMTP, " SIZE=3e5", NULL, { DOUBLED } },
    { "smtp SIZE past the cap", SMTP, " SIZE=99999999999", NULL, { MESSAGE_MAX } },
    { "smtp SIZE past 64 bits", SMTP, " SIZE=99999999999999999999999", NULL, { DOUBLED } },
    { "pop3 octets", POP3, "+OK 300000 octets", "RETR 1", { 300000 } },
    { "pop3 no octets", POP3, "+OK message follows", "RETR 1", { DOUBLED } },
    { "pop3 TOP: the whole message's octets", POP3, "+OK 300000 octets", "TOP 1 9999",
      { DOUBLED } },
    { "imap FETCH literal and APPEND literal", IMAP, NULL, NULL, { BODY_LEN, BODY_LEN } },
};

static void test_case(gconstpointer data)
{
    const struct expect_case *c = data;
    if (!mt_buf_mapped(MT_BUF_MAP_MIN + 1)) {
        g_test_skip("message buffers are plain heap memory under the sanitizers");
        return;
    }
    char *msg = body();
    GPtrArray *own = g_ptr_array_new_with_free_func(g_free);
    GArray *steps = g_array_new(TRUE, TRUE, sizeof(struct step));
#define S(d) g_array_append_val(steps, ((struct step){ MT_S2C, (d), 0 }))
#define C(d) g_array_append_val(steps, ((struct step){ MT_C2S, (d), 0 }))
#define F(...) keep(own, g_strdup_printf(__VA_ARGS__))
    switch (c->proto) {
    case SMTP:
        S("220 mx.example.test ESMTP\r\n");
        C("EHLO client.example.test\r\n");
        S("250-mx.example.test\r\n250 SIZE 104857600\r\n");
        C(F("MAIL FROM:<a@example.test>%s\r\n", c->announce));
        S("250 OK\r\n");
        C("RCPT TO:<b@example.test>\r\n");
        S("250 OK\r\n");
        C("DATA\r\n");
        S("354 go on\r\n");
        C(msg);
        C(".\r\n");
        S("250 OK queued\r\n");
        C("QUIT\r\n");
        S("221 bye\r\n");
        break;
    case POP3:
        S("+OK POP3 ready\r\n");
        C("USER alice\r\n");
        S("+OK\r\n");
        C("PASS secret\r\n");
        S("+OK logged in\r\n");
        C(F("%s\r\n", c->cmd));
        S(F("%s\r\n", c->announce));
        S(msg);
        S(".\r\n");
        C("QUIT\r\n");
        S("+OK bye\r\n");
        break;
    case IMAP:
        S("* OK IMAP4rev1 ready\r\n");
        C("a1 LOGIN alice secret\r\n");
        S("a1 OK done\r\n");
        C("a2 SELECT INBOX\r\n");
        S("a2 OK [READ-WRITE] done\r\n");
        C("a3 FETCH 1 BODY[]\r\n");
        S(F("* 1 FETCH (BODY[] {%u}\r\n", BODY_LEN));
        S(msg);
        S(")\r\na3 OK done\r\n");
        C(F("a4 APPEND INBOX {%u}\r\n", BODY_LEN));
        S("+ go on\r\n");
        C(msg);
        C("\r\n");
        S("a4 OK done\r\n");
        break;
    }
#undef S
#undef C
#undef F
    GArray *caps = g_array_new(FALSE, TRUE, sizeof(size_t));
    struct rec r;
    rec_init(&r);
    synth_run_defer(&r, (const struct step *)(void *)steps->data, -1, 0, 1448, take, caps);
    size_t want = 0;
    while (want < G_N_ELEMENTS(c->caps) && c->caps[want])
        want++;
    struct mt_limits lim;
    mt_limits_default(&lim);
    g_assert_cmpuint(caps->len, ==, want);
    for (size_t i = 0; i < want; i++)
        g_assert_cmpuint(g_array_index(caps, size_t, i), ==,
                         c->caps[i] == MESSAGE_MAX ? lim.message_max : c->caps[i]);
    rec_free(&r);
    g_array_free(caps, TRUE);
    g_array_free(steps, TRUE);
    g_ptr_array_free(own, TRUE);
    g_free(msg);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *path = g_strdup_printf("/expect/%s", cases[i].name);
        g_test_add_data_func(path, &cases[i], test_case);
        g_free(path);
    }
    return g_test_run();
}
