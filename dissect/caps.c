#include "caps.h"

void mt_limits_default(struct mt_limits *l)
{
    l->line_max = MT_DEF_LINE_MAX;
    l->reply_lines_max = MT_DEF_REPLY_LINES_MAX;
    l->pending_max = MT_DEF_PENDING_MAX;
    l->literal_max = MT_DEF_LITERAL_MAX;
    l->message_max = MT_DEF_MESSAGE_MAX;
    l->mime_depth_max = MT_DEF_MIME_DEPTH_MAX;
    l->mime_parts_max = MT_DEF_MIME_PARTS_MAX;
    l->header_max = MT_DEF_HEADER_MAX;
    l->ooo_max = MT_DEF_OOO_MAX;
    l->flows_max = MT_DEF_FLOWS_MAX;
    l->idle_timeout = MT_DEF_IDLE_TIMEOUT;
    l->rcpt_max = MT_DEF_RCPT_MAX;
    l->imap_nest_max = MT_DEF_IMAP_NEST_MAX;
    l->auth_steps_max = MT_DEF_AUTH_STEPS_MAX;
    l->unacked_max = MT_DEF_UNACKED_MAX;
    l->ipfrag_max = MT_DEF_IPFRAG_MAX;
    l->inflate_max = MT_DEF_INFLATE_MAX;
}
