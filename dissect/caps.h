/* Every input-driven size, count and depth in mailtap has its cap here.
 * The table in docs/caps.md mirrors this file; each cap names the anomaly
 * raised when it is hit.  Caps that a user may change are fields of
 * struct mt_limits (set from the command line), the rest are constants. */
#ifndef MT_CAPS_H
#define MT_CAPS_H

#include <stddef.h>
#include <stdint.h>

/* Defaults for struct mt_limits. */
#define MT_DEF_LINE_MAX          8192u              /* line_too_long */
#define MT_DEF_REPLY_LINES_MAX   1024u              /* reply_too_long */
#define MT_DEF_PENDING_MAX       128u               /* pending_overflow */
#define MT_DEF_LITERAL_MAX       (64u * 1024u * 1024u) /* literal_too_large */
#define MT_DEF_MESSAGE_MAX       (64u * 1024u * 1024u) /* message_truncated */
#define MT_DEF_MIME_DEPTH_MAX    32u                /* mime_depth */
#define MT_DEF_MIME_PARTS_MAX    1000u              /* mime_parts */
#define MT_DEF_HEADER_MAX        (256u * 1024u)     /* header_too_large */
#define MT_DEF_OOO_MAX           (1024u * 1024u)    /* ooo_overflow */
#define MT_DEF_FLOWS_MAX         200000u            /* flow_evicted */
#define MT_DEF_IDLE_TIMEOUT      600u               /* flow_idle (seconds) */
#define MT_DEF_RCPT_MAX          1000u              /* rcpt_overflow */
#define MT_DEF_IMAP_NEST_MAX     64u                /* imap_nesting */
#define MT_DEF_AUTH_STEPS_MAX    16u                /* auth_too_long */
#define MT_DEF_UNACKED_MAX       (256u * 1024u)     /* (retransmission check window) */
#define MT_DEF_IPFRAG_MAX        4096u              /* ipfrag_overflow: datagrams in reassembly */
#define MT_DEF_INFLATE_MAX       4096u              /* compress_limit: sessions inflating at once */

/* Fixed caps. */
#define MT_CAP_DETECT_BYTES      1024u  /* bytes buffered per direction before a protocol is chosen */
#define MT_CAP_IPFRAG_BYTES      65535u /* an IPv4 datagram cannot be larger */
#define MT_CAP_FILENAME          200u   /* bytes in an extracted file name */
#define MT_CAP_ANOMALY_DETAIL    200u   /* bytes of context kept with an anomaly */

/* Capture and reassembly. */
/* one capture record (libpcap's MAXIMUM_SNAPLEN): a larger one is a damaged file */
#define MT_CAP_RECORD_BYTES      262144u
/* stacked VLAN tags before the IP header: with more, the packet is skipped */
#define MT_CAP_VLAN_TAGS         8u
/* out-of-order segments buffered per flow direction (besides ooo_max's
 * bytes, which count MT_OOO_SEG_COST for each): a hostile stream of tiny
 * segments cannot make the sorted array, which an insert may move, long */
#define MT_CAP_OOO_SEGS          4096u
#define MT_OOO_SEG_COST          64u     /* bytes counted per buffered segment: header, array slot, allocator */
#define MT_CAP_IPFRAG_SECONDS    60u     /* a fragment set not completed in this time is dropped */
/* closed flows remembered, so that late retransmissions open no session */
#define MT_CAP_CLOSED_FLOWS      65536u
#define MT_CAP_CLOSED_SECONDS    120u    /* ... for at most this long (capture time) */
#define MT_CAP_HIST_CACHE        16u     /* drained retransmission-check buffers kept for reuse */
/* references from retransmission-check histories into a capture file's
 * window, all flows together; past it they are copied early */
#define MT_CAP_HIST_REFS         16384u
/* empty strings (of at most 256 bytes' room) that closed sessions leave
 * for the next ones, per engine */
#define MT_CAP_STRING_POOL       256u

/* Dissectors. */
/* SMTP client bytes held while the reply to DATA is awaited */
#define MT_CAP_SMTP_HELD_BYTES   (64u * 1024u)
#define MT_CAP_SMTP_HELD_MSGS    2u      /* pipelined BDAT messages awaiting their envelope's replies */
#define MT_CAP_GAPS_KEPT         16u     /* gaps listed per session; more are counted only */
#define MT_CAP_IMAP_TAG          64u     /* bytes of an IMAP tag, with its NUL */
#define MT_CAP_IMAP_ARGS         8u      /* arguments kept of one IMAP command for decoding */
#define MT_CAP_IMAP_ARG_BYTES    1024u   /* bytes kept of each (mailbox, user, password ...) */
#define MT_CAP_IMAP_HELD         8u      /* FETCH bodies held until their response ends */
#define MT_CAP_IMAP_CAPS         256u    /* capability names kept per session */
#define MT_CAP_IMAP_INFLATE_RATIO 1032u  /* COMPRESS=DEFLATE expansion; deflate cannot do more */
#define MT_CAP_IMAP_LITERAL_SHOWN 256u   /* a literal up to this size is shown in the command */
#define MT_CAP_SASL_MECH_NAME    64u     /* bytes of a SASL mechanism name (RFC 4422: 20) */
#define MT_CAP_SASL_RAW          4096u   /* unknown mechanism: bytes of its exchange kept */
#define MT_CAP_SASL_NOTE         512u    /* unknown mechanism: decoded bytes in a step's note */
#define MT_CAP_SASL_DETAIL_B64   48u     /* characters of undecodable Base64 quoted in an anomaly */

/* MIME. */
#define MT_CAP_MIME_TEXT         (1024u * 1024u) /* bytes of a text part converted to UTF-8 */
/* Boundary-like lines ("--" at the start of a line) handed to GMime, which
 * has no part cap of its own: eight per allowed part leaves room for closing
 * delimiters and "-- " signatures, and a fixed allowance for bodies that
 * happen to hold such lines.  Past this the rest of the input cannot add
 * parts that would be kept anyway. */
#define MT_CAP_MIME_DELIM_LINES(parts) ((uint64_t)(parts) * 8u + 1024u)
/* steps GMime's RFC 2047 decoder may take on one header field: it looks
 * for the "?=" closing each "=?charset?B?" from that point on, to the end
 * of the field if there is none, so a field of many unclosed word starts
 * costs the square of its length (a 280 KB Subject: 8 s).  A field past
 * this (counted the same way) is left out of what GMime is handed. */
#define MT_CAP_EWORD_STEPS       16777216u
/* What else GMime is not handed (dissect/mime.c mime_gmime_feed: each
 * header field past one of these is left out of its input, in the
 * message's header block, those after "--" lines and those of embedded
 * messages; a "--" line past one ends the input).
 * GMime's parser and decoders have no limits of their own: measured on
 * GMime 3.2 (docs/caps.md). */
#define MT_CAP_EWORD_TOTAL       134217728u /* the same steps, all fields of a message */
#define MT_CAP_EWORD_CHARSETS    1024u   /* changes of charset between encoded words (iconv_open each) */
#define MT_CAP_GMIME_FIELD       1048576u /* bytes of one header field (GMime copies names on the stack) */
#define MT_CAP_GMIME_NAME        4223u   /* bytes of a field name: a longer one makes GMime drop the message */
#define MT_CAP_GMIME_FIELDS      16384u  /* header fields of a message (GMime: about 700 bytes each) */
#define MT_CAP_GMIME_DATE        4096u   /* bytes of a Date field (GMime: about 80 bytes per token) */
#define MT_CAP_ADDR_GROUPS       1024u    /* colons in one address field: GMime nests a group at each */
/* colons in all the address fields of a message: GMime keeps about 500
 * bytes of objects per group (16,000 fields of 512 "g:": 3.9 GB, 14 s) */
#define MT_CAP_ADDR_GROUPS_TOTAL 16384u
/* items (commas + 1) of all the address fields of a message: GMime keeps
 * about 300 bytes per address (15 MB of "a@b, ": 930 MB, 5.6 s) */
#define MT_CAP_ADDR_ITEMS        65536u
/* parameters of all the Content-Type and -Disposition fields of a message:
 * GMime keeps about 340 bytes per parameter (8,000 parts of 64: 174 MB) */
#define MT_CAP_PARAMS            16384u
/* steps of GMime's address parser, all address fields of a message: an
 * item with no '@' or '<' costs the rest of its field */
#define MT_CAP_ADDR_STEPS        16777216u
/* steps of GMime's parameter parser, all Content-Type and -Disposition
 * fields of a message: n parameters cost n * n / 2 (a search by name each) */
#define MT_CAP_PARAM_STEPS       16777216u
/* GMime finds no boundary of 4223 bytes or more (its scan buffer is 4096 +
 * 128 bytes): the fast path leaves boundaries longer than this to GMime */
#define MT_CAP_GMIME_BOUNDARY    4219u
/* bytes of embedded messages (message/rfc822 parts) written out for their
 * size, hash and file, as a multiple of the message's own: each level of
 * nesting writes its message again (31 levels of a 16 MB message: 550 MB) */
#define MT_CAP_MIME_EMBEDDED     2u
#define MT_CAP_MIME_EMBEDDED_FLOOR (16u * 1024u * 1024u) /* ... plus this, for small messages */
/* embedded messages' header blocks handed to GMime in one message (and
 * those parsed again from it): GMime keeps 2 to 4.5 KB of objects for
 * each, and a 1.5 MB message of empty ones took 241 MB */
#define MT_CAP_MIME_EMBEDDED_BLOCKS 1024u
#define MT_CAP_MIME_FAST_DEPTH   16u     /* nesting the fast path follows; deeper: full parse */
#define MT_CAP_MIME_FAST_PARAMS  8u      /* parameters of a value the fast path reads; more: GMime */

/* The HTML report (--html): what the page shows; the other outputs are
 * not affected, and the page says how much was left out. */
#define MT_CAP_HTML_DIALOGUE     2000u   /* dialogue lines per session */
#define MT_CAP_HTML_LINE         2048u   /* bytes shown of one line or note */
#define MT_CAP_HTML_REPLY_LINES  200u    /* lines shown of one reply */
#define MT_CAP_HTML_MSGS         1000u   /* messages shown per session */
#define MT_CAP_HTML_PARTS        256u    /* MIME parts listed per message */
#define MT_CAP_HTML_RCPT         100u    /* envelope recipients listed per message */
#define MT_CAP_HTML_BODY         (64u * 1024u)          /* text shown of one message's bodies */
#define MT_CAP_HTML_BODY_TOTAL   (256u * 1024u * 1024u) /* text shown of all bodies together */
#define MT_CAP_HTML_INDEX_ITEMS  8u      /* credentials and subjects in the index */
#define MT_CAP_HTML_INDEX_STR    256u    /* bytes of one index string */
#define MT_CAP_HTML_CAPS         64u     /* capabilities listed per session */

/* The Wireshark plugin's tree and Info column. */
#define MT_CAP_PLUGIN_LINE       4096u   /* bytes of one command argument or reply line */
#define MT_CAP_PLUGIN_LINES      64u     /* lines shown of one reply */
#define MT_CAP_PLUGIN_INFO       60u     /* characters of one event in the Info column */

struct mt_limits {
    uint32_t line_max;
    uint32_t reply_lines_max;
    uint32_t pending_max;
    uint64_t literal_max;
    uint64_t message_max;
    uint32_t mime_depth_max;
    uint32_t mime_parts_max;
    uint32_t header_max;
    uint64_t ooo_max;
    uint32_t flows_max;
    uint32_t idle_timeout;
    uint32_t rcpt_max;
    uint32_t imap_nest_max;
    uint32_t auth_steps_max;
    uint64_t unacked_max;
    uint32_t ipfrag_max;
    uint32_t inflate_max;
};

void mt_limits_default(struct mt_limits *l);

#endif
