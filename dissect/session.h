/* A TCP session as the dissectors see it: the protocol is chosen here by
 * content, and the chosen dissector is fed both directions' bytes in
 * order, gaps included.  Dissectors report through the functions below;
 * they never touch the sink or the flow table themselves. */
#ifndef MT_SESSION_H
#define MT_SESSION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "caps.h"
#include "message.h"

struct mt_sess;

/* A protocol dissector (smtp.c, pop3.c, imap.c).  Suricata's contract: it
 * is fed whatever bytes arrived, consumes them all (keeping what it needs
 * through a framer) and never keeps pointers into them. */
struct mt_dissector {
    const char *name;
    enum mt_proto proto;
    void *(*create)(struct mt_sess *s);
    void (*data)(void *st, struct mt_sess *s, enum mt_dir dir, const uint8_t *p, size_t n);
    /* len bytes are missing at this point of direction dir: resynchronise. */
    void (*gap)(void *st, struct mt_sess *s, enum mt_dir dir, uint64_t len);
    /* The session ends: report what is pending (messages as incomplete,
     * credentials with result "unknown"). */
    void (*end)(void *st, struct mt_sess *s);
    void (*destroy)(void *st);
};

extern const struct mt_dissector mt_smtp_dissector;
extern const struct mt_dissector mt_pop3_dissector;
extern const struct mt_dissector mt_imap_dissector;

const struct mt_limits *mt_sess_limits(const struct mt_sess *s);
/* The engine's pool of message buffers (message.h), for mt_msgbuf_init. */
struct mt_bufpool *mt_sess_msgpool(struct mt_sess *s);
/* A place among the engine's sessions that inflate a compressed stream
 * (zlib's state and 32 KiB window each way, about 78 KiB): false when
 * inflate_max of them are taken.  Given back by mt_sess_inflate_give. */
bool mt_sess_inflate_take(struct mt_sess *s);
void mt_sess_inflate_give(struct mt_sess *s);
const struct mt_session_info *mt_sess_info(const struct mt_sess *s);

/* Sends ev to the outputs; fills in sess, proto, ts_us and pkt from the
 * packet being processed. */
void mt_sess_emit(struct mt_sess *s, struct mt_event *ev);

/* Packet number and timestamp of the bytes being processed now. */
uint64_t mt_sess_pkt(const struct mt_sess *s);
int64_t mt_sess_ts(const struct mt_sess *s);

/* Counts a named anomaly on the session and emits an anomaly event (the
 * event once per kind and direction, the count every time). */
void mt_sess_anomaly(struct mt_sess *s, enum mt_dir dir, enum mt_anomaly a,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* An mt_anomaly_cb for the pure decoders; ud is the struct mt_sess, and
 * the direction is the one of the bytes being processed. */
void mt_sess_anomaly_cb(void *ud, enum mt_anomaly a, const char *detail);

/* The anomalies a framed line carries (line_too_long, nul_byte, bare_cr,
 * bare_lf), from its MT_LINE_* flags. */
void mt_sess_line_anomalies(struct mt_sess *s, enum mt_dir dir, unsigned flags);

/* Emits a command event for the client line p[0..n): verb and argument
 * split at the first space, or, for a SASL response line (auth_data), all
 * of it as the argument.  note: what was decoded from it; secret: the
 * argument holds a password or token. */
void mt_sess_command(struct mt_sess *s, const uint8_t *p, size_t n, const char *note,
                     bool auth_data, bool secret);

/* STARTTLS/STLS accepted: emits MT_EV_TLS; the rest of both directions is
 * counted but no longer handed to the dissector. */
void mt_sess_start_tls(struct mt_sess *s);

/* Session attributes shown in the session record (copied). */
void mt_sess_set_client_name(struct mt_sess *s, const uint8_t *p, size_t n);
/* Takes ownership of caps, a list from mt_caps_finish. */
void mt_sess_set_capabilities(struct mt_sess *s, char **caps);

/* A capability list (EHLO, CAPA, CAPABILITY) built word by word into one
 * buffer, then packed into one allocation: a NULL-terminated array whose
 * strings follow the pointers, freed with a single g_free.  A g_strndup
 * for each word was 3 % of the reading thread's instructions on the
 * benchmark's capture (bench/README.md). */
struct mt_caps_builder {
    char *w;    /* the words so far, each with its NUL; NULL before the first */
    size_t len, cap;
    size_t n;   /* words in w */
};
/* Adds p[0..n) up to its first NUL, as g_strndup would keep it. */
void mt_caps_add(struct mt_caps_builder *b, const void *p, size_t n);
/* The list of the words added (possibly none); b is empty again. */
char **mt_caps_finish(struct mt_caps_builder *b);
/* Drops the words added; b is empty again. */
void mt_caps_discard(struct mt_caps_builder *b);

/* An empty string for a dissector's state, taken from those that closed
 * sessions gave back (an IMAP session holds 16 and most sessions are
 * short: new ones cost a slice and a buffer each); mt_sess_string_give
 * gives it back, or frees it. */
GString *mt_sess_string(struct mt_sess *s);
void mt_sess_string_give(struct mt_sess *s, GString *g);

/* Emits a credential event (the dissector keeps ownership of c). */
void mt_sess_credential(struct mt_sess *s, const struct mt_credential *c);

/* Runs a finished message through MIME and emits it as a message event;
 * meta holds the envelope and source; its raw/size/sha256/complete/
 * truncated fields and headers/parts are filled here from mb.  mb is
 * reset afterwards. */
void mt_sess_message(struct mt_sess *s, struct mt_msgbuf *mb, struct mt_message *meta);

#endif
