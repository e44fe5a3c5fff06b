/* What the dissectors find, as events handed to an output sink.
 * Byte strings from the network keep their length (they may hold NUL or
 * invalid UTF-8); printers escape them.  Everything an event points at is
 * valid only during the sink callback. */
#ifndef MT_EVENT_H
#define MT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomaly.h"
#include "caps.h"

enum mt_dir { MT_C2S = 0, MT_S2C = 1 };

enum mt_proto {
    MT_PROTO_UNKNOWN = 0, /* not (yet) recognised: plain TCP session */
    MT_PROTO_SMTP,
    MT_PROTO_POP3,
    MT_PROTO_IMAP,
    MT_PROTO_TLS,         /* implicit TLS (465, 993, 995) or TLS recognised by content */
};
const char *mt_proto_name(enum mt_proto p);

struct mt_endpoint {
    uint8_t family;       /* 4 or 6 */
    uint8_t addr[16];     /* IPv4 in the first 4 bytes */
    uint16_t port;
};
/* Writes the address as text ("192.0.2.1", "2001:db8::1"); buf >= 46 bytes. */
const char *mt_endpoint_ip(const struct mt_endpoint *e, char *buf, size_t len);
/* p[0..n) as a C string (g_malloc), each NUL byte as U+FFFD: a name or
 * address from the network that holds a NUL keeps what follows it (the
 * command event has the bytes as they are). */
char *mt_strndup_text(const void *p, size_t n);
/* How many of p's n bytes to keep to have at most max: max, less the
 * bytes of a UTF-8 character that would be cut (a lead byte and up to
 * three continuation bytes), or n if n <= max. */
size_t mt_utf8_cut(const void *p, size_t n, size_t max);

struct mt_gap {
    enum mt_dir dir;
    uint64_t offset; /* stream offset of the first missing byte */
    uint64_t len;
};

struct mt_session_info {
    uint64_t id;               /* number of the packet that opened the session */
    struct mt_endpoint client, server;
    enum mt_proto proto;
    int64_t start_us, end_us;  /* microseconds since the epoch */
    uint64_t bytes[2];         /* payload bytes delivered, by enum mt_dir */
    uint64_t packets;
    bool handshake;            /* SYN seen: roles known from it */
    bool complete;             /* handshake or mid-stream pick-up ended by FIN/RST, no gaps */
    bool starttls;             /* STARTTLS/STLS accepted: the rest is TLS */
    bool closed;               /* FIN or RST seen */
    uint32_t ngaps;
    uint64_t gap_bytes;
    struct mt_gap *gaps;       /* the first MT_CAP_GAPS_KEPT, allocated at the first gap */
    uint32_t anomalies[MT_AN__COUNT];
    char *client_name;         /* SMTP HELO/EHLO argument, or NULL */
    char **capabilities;       /* EHLO / CAPA / CAPABILITY list (NULL-terminated, one
                                * allocation: mt_caps_finish), or NULL */
};

enum mt_auth_result { MT_AUTH_UNKNOWN = 0, MT_AUTH_SUCCESS, MT_AUTH_FAILURE };
const char *mt_auth_result_name(enum mt_auth_result r);

/* A credential: from SASL (AUTH / AUTHENTICATE) or plain protocol commands
 * (USER/PASS, APOP, IMAP LOGIN).  Strings are NUL-terminated UTF-8-or-bytes
 * (printers escape), NULL when absent. */
struct mt_credential {
    char *mechanism;           /* "PLAIN", "LOGIN", "CRAM-MD5", "NTLM", "USER", "APOP", ... */
    char *username;
    char *password;
    char *authzid;
    char *token;               /* XOAUTH2 / OAUTHBEARER bearer token */
    char *hash;                /* crackable line (hashcat format) */
    char *challenge;           /* CRAM-MD5 / APOP challenge, as text */
    char *response;            /* CRAM-MD5 digest hex, NTLM NT response hex */
    char *domain;              /* NTLM */
    char *workstation;         /* NTLM */
    enum mt_auth_result result;
};
void mt_credential_clear(struct mt_credential *c);

struct mt_mime_part {
    char *path;                /* "1", "1.2", ... position in the tree */
    unsigned depth;
    char *content_type;        /* "text/plain" (lower case) */
    char *charset;
    char *encoding;            /* "base64", "quoted-printable", "7bit", ... */
    char *filename;            /* decoded (RFC 2047 / RFC 2231), UTF-8 */
    char *disposition;         /* "attachment", "inline" or NULL */
    bool is_multipart;
    uint64_t size;             /* decoded bytes (0 for multipart containers) */
    char sha256[65];           /* of the decoded bytes, "" for containers */
    bool hash_due;             /* mime.c: sha256 to compute at the parse's end */
    uint8_t *data;             /* decoded bytes (leaves only) for extraction */
    size_t data_len;
    size_t data_cap;           /* data is from mt_buf_alloc with this capacity,
                                * or (0) g_malloc'd */
    char *text_utf8;           /* leaves of type text/..., converted to UTF-8, capped */
    char *file;                /* set by the extractor */
};

struct mt_mime_headers {
    char *from, *to, *cc, *subject, *date, *message_id; /* decoded to UTF-8 */
};

enum mt_msg_source {
    MT_SRC_DATA = 0, MT_SRC_BDAT, MT_SRC_RETR, MT_SRC_TOP, MT_SRC_FETCH, MT_SRC_APPEND
};
const char *mt_msg_source_name(enum mt_msg_source s);

struct mt_message {
    uint64_t index;            /* 1, 2, ... within the session */
    enum mt_msg_source source;
    const char *mail_from;     /* SMTP envelope, NULL elsewhere */
    const char *mail_params;   /* ESMTP parameters of MAIL FROM ("SIZE=454 BODY=8BITMIME") */
    const char *const *rcpt_to;
    const char *const *rcpt_params; /* parallel to rcpt_to; entries may be NULL */
    size_t nrcpt;
    const char *mailbox;       /* IMAP */
    const char *uid;           /* IMAP UID or POP3 message number */
    const char *flags;         /* IMAP APPEND flags */
    const char *section;       /* IMAP FETCH section, e.g. "BODY[]" */
    uint64_t size;             /* bytes of the message (all of them, also past the cap) */
    char sha256[65];           /* of all its bytes */
    bool complete;             /* whole message seen (no gap, not TOP, not partial) */
    bool truncated;            /* more than the in-memory cap: raw holds a prefix */
    const uint8_t *raw;        /* the exact bytes (after dot-unstuffing), capped */
    size_t raw_len;
    struct mt_mime_headers headers;
    struct mt_mime_part *parts;
    size_t nparts;
    char *file;                /* .eml path, set by the extractor */
};

enum mt_event_type {
    MT_EV_SESSION_START = 0, /* protocol recognised (or session first seen) */
    MT_EV_COMMAND,
    MT_EV_REPLY,
    MT_EV_CREDENTIAL,
    MT_EV_MESSAGE,
    MT_EV_ANOMALY,
    MT_EV_TLS,               /* the session turned to TLS (STARTTLS, STLS) */
    MT_EV_SESSION_END,
};

/* A byte string from the network. */
struct mt_bytes {
    const uint8_t *p;
    size_t n;
};

struct mt_event {
    enum mt_event_type type;
    const struct mt_session_info *sess;
    enum mt_proto proto;
    int64_t ts_us;            /* timestamp of the packet that completed the event */
    uint64_t pkt;             /* number (1-based) of that packet in the input */
    union {
        struct {
            struct mt_bytes tag;   /* IMAP tag, empty elsewhere */
            struct mt_bytes verb;  /* as sent (case kept) */
            struct mt_bytes arg;   /* the rest of the line after one space */
            struct mt_bytes line;  /* the whole line without CRLF */
            const char *note;      /* decoded AUTH value or other annotation, or NULL */
            bool auth_data;        /* a SASL continuation line from the client */
            bool secret;           /* arg holds a password or token (masked by --redact) */
        } cmd;
        struct {
            struct mt_bytes tag;   /* IMAP tag, "*" or "+"; empty elsewhere */
            const char *code;      /* "250", "+OK", "-ERR", "OK", "NO", "BAD", "+", "*" */
            const struct mt_bytes *lines; /* each line without CRLF */
            size_t nlines;
            const char *note;
            uint64_t cmd_pkt;      /* packet of the command it answers, 0 if none */
            struct mt_bytes cmd_verb; /* verb of that command, empty if none */
        } reply;
        const struct mt_credential *cred;
        struct mt_message *msg;    /* the sink's extractor may set file fields */
        struct {
            enum mt_anomaly kind;
            enum mt_dir dir;
            const char *detail;    /* may be NULL */
        } anomaly;
    } u;
};

/* An output: receives every event in order. */
typedef void (*mt_sink_fn)(void *ud, struct mt_event *ev);

#endif
