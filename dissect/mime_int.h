/* What mime.c (GMime's full parse) and mime_fast.c (the fast path for
 * well-formed messages) share.  Internal to dissect/. */
#ifndef MT_MIME_INT_H
#define MT_MIME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <gmime/gmime.h>

#include "message.h"
#include "mime.h"

/* What the header fields handed to GMime cost it so far, in one message
 * and the embedded ones parsed again from it (mime.c, mime_gmime_feed). */
/* The last charset GMime opened a converter for, in one sequence of
 * conversions (mime.c, mime_guard_charset). */
struct mime_charset_seen {
    uint64_t hash; /* of the name, case folded */
    bool seen;
};

struct mime_guard_totals {
    uint64_t esteps, asteps, psteps; /* decoder, address and parameter steps */
    uint64_t fields;
    uint64_t groups;                 /* colons of address fields */
    uint64_t items;                  /* address items (commas + 1 a field) */
    uint64_t params;                 /* Content-Type and -Disposition parameters */
    uint64_t delims;                 /* lines starting with "--" (mime_bomb_cut) */
    uint64_t embedded;               /* embedded messages' header blocks */
    uint32_t switches;               /* changes of charset between encoded words */
    bool digest;                     /* a Content-Type holding "digest" was seen */
    struct mime_charset_seen p2231;  /* the last RFC 2231 value's charset */
};

struct mime_ctx {
    const struct mt_limits *lim;
    mt_anomaly_cb cb;
    void *ud;
    GArray *parts;     /* struct mt_mime_part */
    unsigned reported; /* bit per once-per-message anomaly */
    bool crlf;         /* the message's first line ends in CRLF */
    size_t embedded;   /* bytes of embedded messages written out so far, */
    size_t embed_max;  /* and at most (MT_CAP_MIME_EMBEDDED x the message) */
    struct mime_guard_totals gt;
    char detail[MT_CAP_ANOMALY_DETAIL];
};

/* Charsets tried, in order, for 8-bit text that declares none. */
extern const char *mime_fallback_charsets[];

void mime_anomaly(struct mime_ctx *c, enum mt_anomaly a, const char *detail);
/* Valid UTF-8 copy of s (n bytes, or up to NUL when n < 0), at most cap bytes. */
char *mime_utf8_dup(const char *s, gssize n, size_t cap);
/* Lower-case, trimmed copy; NULL for NULL or blank. */
char *mime_lower_dup(const char *s);
/* A text/... body to UTF-8 (declared charset, else the fallbacks), capped. */
char *mime_text_utf8(const uint8_t *data, size_t len, const char *charset);
/* An address list as display text, decoded. */
void mime_append_list(GString *out, InternetAddressList *list);

/* GMime decodes adjacent Base64 encoded words of one charset as one Base64
 * text, and the padding of a word inside it spoils the rest: "café crème"
 * in two padded words, each of whole characters as RFC 2047 section 5
 * wants, decodes to "café"; and words that some mailers cut at any byte
 * ("=?GBK?B?1g==?= =?GBK?B?0M7E08q8/g==?=" for 中文邮件) to nothing.  And
 * where Base64 and Q words of one charset follow each other, GMime
 * converts each encoding's words to UTF-8 apart, so a character cut
 * between them is lost and the rest of a GBK run is read out of step
 * ("=?GBK?Q?=D6?= =?GBK?B?0M7E08q8/g==?=" gave 形挠始).  Returns v[0..n)
 * with each such run (words of one charset with only white space between
 * them, a Base64 one before the last padded or not a whole number of
 * groups, or both encodings in the run) replaced by one Base64 word
 * holding the same bytes, which GMime decodes whole; NULL when v has no
 * such run. */
char *mime_2047_join(const char *v, size_t n);

/* RFC 2231 lets a parameter's sections come in any order, but GMime takes
 * the charset of "name*0*=charset'lang'..." only when section 0 comes
 * first, and otherwise keeps "charset''" in the value.  Returns the value
 * (a Content-Type or Content-Disposition, decoded) with the sections of
 * each such name in order; NULL when it has none. */
char *mime_2231_sorted(const char *v);

/* Parser options of the fast path: those of the full parse, without the
 * warning callback (read-only once made, shared by all threads). */
GMimeParserOptions *mime_fast_options(void);

/* The fast path: parses data[0..len) without building GMime's object
 * tree, for messages whose structure it fully understands (see
 * mime_fast.c).  Returns false, having changed nothing and raised
 * nothing, for anything else: the caller then takes GMime's full parse. */
bool mime_fast_parse(struct mime_ctx *c, const uint8_t *data, size_t len,
                     struct mt_mime_result *out);

/* Sets p->data (and data_cap) to a buffer of at least n bytes for the
 * part's decoded data (from mt_buf_alloc: mapped if large), freed by
 * mt_mime_part_clear: one of more than MT_MIME_BIG_DATA bytes may be the
 * thread's spare, kept from the last large part. */
#define MT_MIME_BIG_DATA MT_MSGBUF_KEEP
void mt_mime_data_alloc(struct mt_mime_part *p, size_t n);
/* Frees p->data however it was allocated, or keeps it as the thread's
 * spare if large; p->data is then NULL. */
void mt_mime_data_release(struct mt_mime_part *p);

/* The first '-' at or after pos that begins a line of d[0..end) (pos
 * begins one), or end.  Boundary lines are looked for this way: memchr for
 * '-' skips a base64 body whole (no '-' in its alphabet), where looking at
 * every line start stops every 76 bytes. */
size_t mime_dash_line(const char *d, size_t pos, size_t end);

/* For the tests and the fuzz harness: whether what mime.c hands GMime of
 * data[0..len) (its fields past the caps left out) is taken as it stands
 * by the same guard with fresh totals: the walk left out only whole
 * fields and kept the block structure it checked.  *left_out is set to
 * the number of fields left out. */
bool mime_guard_selfcheck(const uint8_t *data, size_t len, uint64_t *left_out);

/* A byte of an RFC 2045 token: printable ASCII, not a tspecial (NUL is
 * not one either, so a walk over a C string stops at its end). */
static inline bool mime_token_char(char ch)
{
    return ch > ' ' && ch < 0x7f && !strchr("()<>@,;:\\\"/[]?=", ch);
}

#endif
