/* MIME decoding of a complete message through GMime 3. */
#ifndef MT_MIME_H
#define MT_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anomaly.h"
#include "event.h"
#include "caps.h"

struct mt_mime_result {
    struct mt_mime_headers headers;
    struct mt_mime_part *parts; /* pre-order walk of the MIME tree, root first */
    size_t nparts;
};

/* Once per process, before any parse (calls g_mime_init). Idempotent. */
void mt_mime_global_init(void);

/* Parses data[0..len) (a whole RFC 5322 message, CRLF or LF).  Decodes the
 * headers From/To/Cc/Subject/Date/Message-ID to UTF-8 (RFC 2047, any
 * charset iconv knows, GBK/GB2312/GB18030/Big5 included), walks the tree
 * (multipart, message/rfc822) within lim->mime_depth_max and
 * lim->mime_parts_max, and for each leaf decodes the body (base64, qp,
 * 7bit, 8bit, binary), hashes it and keeps the bytes.  File names come
 * from Content-Disposition or Content-Type name, RFC 2231 included.
 * Problems are reported through cb (mime_depth, mime_parts,
 * mime_no_boundary, mime_bad_base64, header_too_large) and parsing goes
 * on.  Always fills out (possibly with no parts). */
void mt_mime_parse(const uint8_t *data, size_t len, const struct mt_limits *lim,
                   struct mt_mime_result *out, mt_anomaly_cb cb, void *ud);
/* As mt_mime_parse, and writes the SHA-256 of data[0..len) to msg_sha256
 * (65 bytes) when it is not NULL: hashed beside the parts' own digests,
 * two at a time (hash.h). */
void mt_mime_parse_hashed(const uint8_t *data, size_t len, const struct mt_limits *lim,
                          struct mt_mime_result *out, mt_anomaly_cb cb, void *ud,
                          char *msg_sha256);

/* Tests only: the fast path alone (mime_fast.c).  Returns false, with out
 * empty and nothing raised, when the message needs GMime's full parse. */
bool mt_mime_parse_fast(const uint8_t *data, size_t len, const struct mt_limits *lim,
                        struct mt_mime_result *out, mt_anomaly_cb cb, void *ud);

/* Tests only: true makes every message take GMime's full parse rather
 * than the fast path of mime_fast.c, so that the two can be compared. */
extern bool mt_mime_force_gmime;

void mt_mime_result_clear(struct mt_mime_result *r);

/* Frees the strings of one part (not the struct). */
void mt_mime_part_clear(struct mt_mime_part *p);
void mt_mime_headers_clear(struct mt_mime_headers *h);

#endif
