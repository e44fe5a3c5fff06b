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

/* Fixed caps. */
#define MT_CAP_DETECT_BYTES      1024u  /* bytes buffered per direction before a protocol is chosen */
#define MT_CAP_IPFRAG_BYTES      65535u /* an IPv4 datagram cannot be larger */
#define MT_CAP_FILENAME          200u   /* bytes in an extracted file name */
#define MT_CAP_ANOMALY_DETAIL    200u   /* bytes of context kept with an anomaly */

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
};

void mt_limits_default(struct mt_limits *l);

#endif
