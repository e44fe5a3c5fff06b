/* SPDX-License-Identifier: GPL-2.0-or-later
 *
 * mailtap as a Wireshark 4.0 postdissector: the engine the CLI uses
 * (capture -> reassembly -> dissect), fed with Wireshark's frames.
 *
 * Why a postdissector: it sees every frame after Wireshark's own
 * dissectors ran, so the built-in SMTP, POP, IMAP and IMF dissectors keep
 * their ports and fields, and mail on any port is still found (the engine
 * recognises the protocol by content).
 *
 * Two phases, so that the tree never depends on the order frames are
 * looked at (tshark -2, the GUI's random access, refiltering):
 *  1. On the first, sequential pass (!PINFO_FD_VISITED) each frame's raw
 *     bytes go to the engine with the frame's pcap link type.  Each event
 *     the engine reports is copied into file-scoped records, filed under
 *     the number of the frame that completed it.
 *  2. On every pass the "mailtap" subtree of a frame is built from the
 *     records of that frame only.
 * A command learns the frame of its reply when the reply is recorded
 * (back-patched), so single-pass tshark shows it only with -2.
 *
 * Flows still open at the end of the file are not flushed: Wireshark has
 * no "end of the first pass" hook for dissectors, so what the CLI reports
 * only at the end of its input (a message cut off by the end of the
 * capture, a session without FIN) is missing here.  See README.md.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <wireshark.h>
#include <epan/packet.h>
#include <epan/expert.h>
#include <epan/proto.h>
#include <wiretap/wtap.h>
#include <wiretap/pcap-encap.h>

#include "capture.h"
#include "caps.h"
#include "engine.h"
#include "event.h"
#include "mime.h"

/* ------------------------------------------------------------------ fields */

static int proto_mailtap = -1;

static int hf_session = -1;
static int hf_proto = -1;

static int hf_command = -1;
static int hf_command_tag = -1;
static int hf_command_verb = -1;
static int hf_command_arg = -1;
static int hf_command_decoded = -1;
static int hf_command_auth_data = -1;
static int hf_command_response_frame = -1;

static int hf_reply = -1;
static int hf_reply_tag = -1;
static int hf_reply_code = -1;
static int hf_reply_line = -1;
static int hf_reply_decoded = -1;
static int hf_reply_request_frame = -1;
static int hf_reply_request_verb = -1;

static int hf_auth = -1;
static int hf_auth_mechanism = -1;
static int hf_auth_username = -1;
static int hf_auth_password = -1;
static int hf_auth_authzid = -1;
static int hf_auth_token = -1;
static int hf_auth_hash = -1;
static int hf_auth_challenge = -1;
static int hf_auth_response = -1;
static int hf_auth_domain = -1;
static int hf_auth_workstation = -1;
static int hf_auth_result = -1;

static int hf_message = -1;
static int hf_message_index = -1;
static int hf_message_source = -1;
static int hf_message_mail_from = -1;
static int hf_message_rcpt_to = -1;
static int hf_message_mailbox = -1;
static int hf_message_uid = -1;
static int hf_message_flags = -1;
static int hf_message_section = -1;
static int hf_message_from = -1;
static int hf_message_to = -1;
static int hf_message_cc = -1;
static int hf_message_subject = -1;
static int hf_message_date = -1;
static int hf_message_message_id = -1;
static int hf_message_size = -1;
static int hf_message_sha256 = -1;
static int hf_message_complete = -1;
static int hf_message_truncated = -1;

static int hf_part = -1;
static int hf_part_path = -1;
static int hf_part_content_type = -1;
static int hf_part_charset = -1;
static int hf_part_encoding = -1;
static int hf_part_filename = -1;
static int hf_part_disposition = -1;
static int hf_part_size = -1;
static int hf_part_sha256 = -1;

static int hf_anomaly = -1;
static int hf_anomaly_detail = -1;
static int hf_starttls = -1;

static gint ett_mailtap = -1;
static gint ett_command = -1;
static gint ett_reply = -1;
static gint ett_auth = -1;
static gint ett_message = -1;
static gint ett_part = -1;
static gint ett_anomaly = -1;

/* One expert field per named anomaly (anomaly.def), then our own. */
static expert_field ei_anomaly[MT_AN__COUNT];
static expert_field ei_cleartext = EI_INIT;
static expert_field ei_hash = EI_INIT;
static expert_field ei_starttls = EI_INIT;

/* ----------------------------------------------------- copied event records */

struct mtp_part {
    const char *path, *content_type, *charset, *encoding, *filename, *disposition;
    unsigned depth;
    bool multipart;
    uint64_t size;
    const char *sha256;
};

/* What one engine event left behind: strings are valid UTF-8 in
 * wmem_file_scope(), NULL where the event had none. */
struct mtp_rec {
    struct mtp_rec *next;
    enum mt_event_type type;
    enum mt_proto proto;
    uint32_t session; /* number of the frame that opened the session, 0 if none */
    union {
        struct {
            const char *tag, *verb, *arg, *note;
            bool auth_data;
            uint32_t response_frame; /* back-patched by the reply */
        } cmd;
        struct {
            const char *tag, *code, *note, *cmd_verb;
            const char **lines;
            size_t nlines, nlines_total;
            uint32_t request_frame;
        } reply;
        struct {
            const char *mechanism, *username, *password, *authzid, *token, *hash, *challenge,
                *response, *domain, *workstation;
            enum mt_auth_result result;
        } cred;
        struct {
            uint64_t index, size;
            enum mt_msg_source source;
            const char *mail_from, *mailbox, *uid, *flags, *section, *sha256;
            const char **rcpt_to;
            size_t nrcpt;
            const char *from, *to, *cc, *subject, *date, *message_id;
            bool complete, truncated;
            struct mtp_part *parts;
            size_t nparts;
        } msg;
        struct {
            enum mt_anomaly kind;
            enum mt_dir dir;
            const char *detail;
        } an;
    } u;
};

struct mtp_frame {
    struct mtp_rec *head, *tail;
};

/* Per capture file: created by the init routine, destroyed by cleanup. */
struct mtp_state {
    struct mt_limits lim;
    struct mt_engine *eng;
    struct mt_decoder *dec;
    wmem_map_t *frames; /* frame number -> struct mtp_frame */
    uint32_t cur_frame; /* frame being fed to the engine */
    bool closing;       /* cleanup: events from the final flush are dropped */
    int last_encap, last_dlt;
    uint64_t unsupported; /* frames of a link type the engine does not decode */
};

static struct mtp_state mtp;

/* Valid UTF-8 copy in file scope of at most cap bytes (U+FFFD for bad
 * sequences and NUL). */
static const char *mtp_copy(const void *p, size_t n, size_t cap)
{
    if (!p)
        return NULL;
    if (n > cap)
        n = cap;
    if (n == 0)
        return wmem_strdup(wmem_file_scope(), "");
    gchar *v = g_utf8_make_valid(p, (gssize)n);
    char *r = wmem_strdup(wmem_file_scope(), v);
    g_free(v);
    return r;
}

static const char *mtp_str(const char *s)
{
    return s ? mtp_copy(s, strlen(s), G_MAXSIZE) : NULL;
}

static const char *mtp_bytes(const struct mt_bytes *b)
{
    return mtp_copy(b->p ? (const void *)b->p : "", b->n, MT_CAP_PLUGIN_LINE);
}

static struct mtp_frame *mtp_frame_get(uint32_t num, bool create)
{
    struct mtp_frame *f = wmem_map_lookup(mtp.frames, GUINT_TO_POINTER(num));
    if (!f && create) {
        f = wmem_new0(wmem_file_scope(), struct mtp_frame);
        wmem_map_insert(mtp.frames, GUINT_TO_POINTER(num), f);
    }
    return f;
}

/* The reply at frame reply_num answers the command at r->request_frame:
 * tell the first unanswered command of that session and verb. */
static void mtp_backpatch(const struct mtp_rec *r, uint32_t reply_num)
{
    struct mtp_frame *f = mtp_frame_get(r->u.reply.request_frame, false);
    if (!f)
        return;
    for (struct mtp_rec *c = f->head; c; c = c->next) {
        if (c->type != MT_EV_COMMAND || c->session != r->session || c->u.cmd.response_frame)
            continue;
        if (r->u.reply.cmd_verb && *r->u.reply.cmd_verb &&
            g_ascii_strcasecmp(c->u.cmd.verb, r->u.reply.cmd_verb) != 0)
            continue;
        c->u.cmd.response_frame = reply_num;
        return;
    }
}

static void mtp_copy_message(struct mtp_rec *r, const struct mt_message *m)
{
    r->u.msg.index = m->index;
    r->u.msg.size = m->size;
    r->u.msg.source = m->source;
    r->u.msg.mail_from = mtp_str(m->mail_from);
    r->u.msg.nrcpt = m->nrcpt;
    r->u.msg.rcpt_to = wmem_alloc0(wmem_file_scope(), (m->nrcpt + 1) * sizeof(char *));
    for (size_t i = 0; i < m->nrcpt; i++)
        r->u.msg.rcpt_to[i] = mtp_str(m->rcpt_to[i]);
    r->u.msg.mailbox = mtp_str(m->mailbox);
    r->u.msg.uid = mtp_str(m->uid);
    r->u.msg.flags = mtp_str(m->flags);
    r->u.msg.section = mtp_str(m->section);
    r->u.msg.sha256 = mtp_str(m->sha256);
    r->u.msg.complete = m->complete;
    r->u.msg.truncated = m->truncated;
    r->u.msg.from = mtp_str(m->headers.from);
    r->u.msg.to = mtp_str(m->headers.to);
    r->u.msg.cc = mtp_str(m->headers.cc);
    r->u.msg.subject = mtp_str(m->headers.subject);
    r->u.msg.date = mtp_str(m->headers.date);
    r->u.msg.message_id = mtp_str(m->headers.message_id);
    r->u.msg.nparts = m->nparts;
    r->u.msg.parts = wmem_alloc0(wmem_file_scope(), (m->nparts + 1) * sizeof(struct mtp_part));
    for (size_t i = 0; i < m->nparts; i++) {
        const struct mt_mime_part *s = &m->parts[i];
        struct mtp_part *d = &r->u.msg.parts[i];
        d->path = mtp_str(s->path);
        d->depth = s->depth;
        d->content_type = mtp_str(s->content_type);
        d->charset = mtp_str(s->charset);
        d->encoding = mtp_str(s->encoding);
        d->filename = mtp_str(s->filename);
        d->disposition = mtp_str(s->disposition);
        d->multipart = s->is_multipart;
        d->size = s->size;
        d->sha256 = s->is_multipart ? NULL : mtp_str(s->sha256);
    }
}

/* The engine's sink: copy what the tree needs, file it under ev->pkt. */
static void mtp_sink(void *ud, struct mt_event *ev)
{
    (void)ud;
    if (mtp.closing)
        return;
    switch (ev->type) {
    case MT_EV_COMMAND:
    case MT_EV_REPLY:
    case MT_EV_CREDENTIAL:
    case MT_EV_MESSAGE:
    case MT_EV_ANOMALY:
    case MT_EV_TLS: break;
    default: return; /* session start and end: nothing per frame */
    }
    uint32_t num = ev->pkt && ev->pkt <= G_MAXUINT32 ? (uint32_t)ev->pkt : mtp.cur_frame;
    struct mtp_rec *r = wmem_new0(wmem_file_scope(), struct mtp_rec);
    r->type = ev->type;
    r->proto = ev->proto;
    r->session = ev->sess && ev->sess->id <= G_MAXUINT32 ? (uint32_t)ev->sess->id : 0;

    switch (ev->type) {
    case MT_EV_COMMAND:
        r->u.cmd.tag = ev->u.cmd.tag.n ? mtp_bytes(&ev->u.cmd.tag) : NULL;
        r->u.cmd.verb = mtp_bytes(&ev->u.cmd.verb);
        r->u.cmd.arg = mtp_bytes(&ev->u.cmd.arg);
        r->u.cmd.note = mtp_str(ev->u.cmd.note);
        r->u.cmd.auth_data = ev->u.cmd.auth_data;
        break;
    case MT_EV_REPLY: {
        r->u.reply.tag = ev->u.reply.tag.n ? mtp_bytes(&ev->u.reply.tag) : NULL;
        r->u.reply.code = mtp_str(ev->u.reply.code);
        r->u.reply.note = mtp_str(ev->u.reply.note);
        r->u.reply.cmd_verb = ev->u.reply.cmd_verb.n ? mtp_bytes(&ev->u.reply.cmd_verb) : NULL;
        size_t n = MIN(ev->u.reply.nlines, MT_CAP_PLUGIN_LINES);
        r->u.reply.lines = wmem_alloc0(wmem_file_scope(), (n + 1) * sizeof(char *));
        for (size_t i = 0; i < n; i++)
            r->u.reply.lines[i] = mtp_bytes(&ev->u.reply.lines[i]);
        r->u.reply.nlines = n;
        r->u.reply.nlines_total = ev->u.reply.nlines;
        r->u.reply.request_frame =
            ev->u.reply.cmd_pkt <= G_MAXUINT32 ? (uint32_t)ev->u.reply.cmd_pkt : 0;
        if (r->u.reply.request_frame)
            mtp_backpatch(r, num);
        break;
    }
    case MT_EV_CREDENTIAL: {
        const struct mt_credential *c = ev->u.cred;
        r->u.cred.mechanism = mtp_str(c->mechanism);
        r->u.cred.username = mtp_str(c->username);
        r->u.cred.password = mtp_str(c->password);
        r->u.cred.authzid = mtp_str(c->authzid);
        r->u.cred.token = mtp_str(c->token);
        r->u.cred.hash = mtp_str(c->hash);
        r->u.cred.challenge = mtp_str(c->challenge);
        r->u.cred.response = mtp_str(c->response);
        r->u.cred.domain = mtp_str(c->domain);
        r->u.cred.workstation = mtp_str(c->workstation);
        r->u.cred.result = c->result;
        break;
    }
    case MT_EV_MESSAGE: mtp_copy_message(r, ev->u.msg); break;
    case MT_EV_ANOMALY:
        r->u.an.kind = ev->u.anomaly.kind;
        r->u.an.dir = ev->u.anomaly.dir;
        r->u.an.detail = mtp_str(ev->u.anomaly.detail);
        break;
    default: break;
    }

    struct mtp_frame *f = mtp_frame_get(num, true);
    if (f->tail)
        f->tail->next = r;
    else
        f->head = r;
    f->tail = r;
}

/* ------------------------------------------------------- feeding the engine */

/* The pcap link type of a Wireshark encapsulation that the engine's decoder
 * understands, or -1.  libwiretap exports only the pcap -> wtap direction,
 * so search the (few) link types the decoder knows. */
static int mtp_dlt_for_encap(int encap)
{
    if (encap == mtp.last_encap)
        return mtp.last_dlt;
    int found = -1;
    for (int dlt = 0; dlt < 512 && found < 0; dlt++)
        if (mt_decoder_supports(dlt) && wtap_pcap_encap_to_wtap_encap(dlt) == encap)
            found = dlt;
    mtp.last_encap = encap;
    mtp.last_dlt = found;
    return found;
}

static void mtp_feed(tvbuff_t *tvb, packet_info *pinfo)
{
    if (!mtp.eng || !pinfo->rec || pinfo->rec->rec_type != REC_TYPE_PACKET)
        return;
    int dlt = mtp_dlt_for_encap(pinfo->rec->rec_header.packet_header.pkt_encap);
    if (dlt < 0) {
        mtp.unsupported++;
        return;
    }
    guint caplen = tvb_captured_length(tvb);
    guint wirelen = tvb_reported_length(tvb);
    const guint8 *data = caplen ? tvb_get_ptr(tvb, 0, caplen) : NULL;
    if (!data)
        return;
    int64_t ts_us = (int64_t)pinfo->abs_ts.secs * 1000000 + pinfo->abs_ts.nsecs / 1000;
    mtp.cur_frame = pinfo->num;
    mt_decoder_packet(mtp.dec, dlt, ts_us, pinfo->num, data, caplen, wirelen, mt_engine_packet,
                      mtp.eng);
}

static void mtp_init(void)
{
    memset(&mtp, 0, sizeof(mtp));
    mtp.last_encap = G_MININT;
    mt_limits_default(&mtp.lim);
    mtp.frames = wmem_map_new(wmem_file_scope(), g_direct_hash, g_direct_equal);
    mtp.eng = mt_engine_new(&mtp.lim, mtp_sink, NULL);
    mtp.dec = mt_decoder_new(&mtp.lim);
}

static void mtp_cleanup(void)
{
    /* finish frees every session; its events are not wanted any more */
    mtp.closing = true;
    if (mtp.eng) {
        mt_decoder_flush(mtp.dec);
        mt_engine_finish(mtp.eng);
    }
    mt_engine_free(mtp.eng);
    mt_decoder_free(mtp.dec);
    memset(&mtp, 0, sizeof(mtp));
}

/* ------------------------------------------------------------ the tree */

static void mtp_add_str(proto_tree *t, int hf, tvbuff_t *tvb, const char *s)
{
    if (s)
        proto_tree_add_string(t, hf, tvb, 0, 0, s);
}

static bool mtp_has_mail_dissector(packet_info *pinfo)
{
    return proto_is_frame_protocol(pinfo->layers, "smtp") ||
           proto_is_frame_protocol(pinfo->layers, "pop") ||
           proto_is_frame_protocol(pinfo->layers, "imap");
}

static void mtp_info(wmem_strbuf_t *info, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void mtp_info(wmem_strbuf_t *info, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gchar *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (wmem_strbuf_get_len(info))
        wmem_strbuf_append(info, "; ");
    if (g_utf8_strlen(s, -1) > MT_CAP_PLUGIN_INFO) {
        gchar *end = g_utf8_offset_to_pointer(s, MT_CAP_PLUGIN_INFO);
        *end = '\0';
        wmem_strbuf_append_printf(info, "%s\xe2\x80\xa6", s);
    } else {
        wmem_strbuf_append(info, s);
    }
    g_free(s);
}

static void mtp_tree_command(proto_tree *t, tvbuff_t *tvb, packet_info *pinfo,
                             const struct mtp_rec *r, wmem_strbuf_t *info, bool info_cmds)
{
    proto_item *ti = proto_tree_add_none_format(
        t, hf_command, tvb, 0, 0, "Command: %s%s%s%s%s", r->u.cmd.tag ? r->u.cmd.tag : "",
        r->u.cmd.tag ? " " : "", r->u.cmd.auth_data ? "(SASL data)" : r->u.cmd.verb,
        *r->u.cmd.arg ? " " : "", r->u.cmd.arg);
    proto_tree *st = proto_item_add_subtree(ti, ett_command);
    mtp_add_str(st, hf_command_tag, tvb, r->u.cmd.tag);
    if (!r->u.cmd.auth_data)
        mtp_add_str(st, hf_command_verb, tvb, r->u.cmd.verb);
    mtp_add_str(st, hf_command_arg, tvb, r->u.cmd.arg);
    if (r->u.cmd.auth_data)
        proto_tree_add_boolean(st, hf_command_auth_data, tvb, 0, 0, TRUE);
    mtp_add_str(st, hf_command_decoded, tvb, r->u.cmd.note);
    if (r->u.cmd.response_frame) {
        proto_item *fi =
            proto_tree_add_uint(st, hf_command_response_frame, tvb, 0, 0, r->u.cmd.response_frame);
        proto_item_set_generated(fi);
    }
    (void)pinfo;
    if (info_cmds)
        mtp_info(info, "%s%s%s", r->u.cmd.auth_data ? "(SASL data)" : r->u.cmd.verb,
                 *r->u.cmd.arg ? " " : "", r->u.cmd.arg);
}

static void mtp_tree_reply(proto_tree *t, tvbuff_t *tvb, const struct mtp_rec *r,
                           wmem_strbuf_t *info, bool info_cmds)
{
    const char *first = r->u.reply.nlines ? r->u.reply.lines[0] : r->u.reply.code;
    proto_item *ti = proto_tree_add_none_format(t, hf_reply, tvb, 0, 0, "Reply: %s%s", first,
                                                r->u.reply.nlines_total > 1 ? " ..." : "");
    proto_tree *st = proto_item_add_subtree(ti, ett_reply);
    mtp_add_str(st, hf_reply_tag, tvb, r->u.reply.tag);
    mtp_add_str(st, hf_reply_code, tvb, r->u.reply.code);
    for (size_t i = 0; i < r->u.reply.nlines; i++)
        mtp_add_str(st, hf_reply_line, tvb, r->u.reply.lines[i]);
    if (r->u.reply.nlines_total > r->u.reply.nlines)
        proto_tree_add_none_format(st, hf_reply_line, tvb, 0, 0, "[%zu more lines]",
                                   r->u.reply.nlines_total - r->u.reply.nlines);
    mtp_add_str(st, hf_reply_decoded, tvb, r->u.reply.note);
    if (r->u.reply.request_frame) {
        proto_item *fi =
            proto_tree_add_uint(st, hf_reply_request_frame, tvb, 0, 0, r->u.reply.request_frame);
        proto_item_set_generated(fi);
    }
    if (r->u.reply.cmd_verb) {
        proto_item *fi =
            proto_tree_add_string(st, hf_reply_request_verb, tvb, 0, 0, r->u.reply.cmd_verb);
        proto_item_set_generated(fi);
    }
    if (info_cmds)
        mtp_info(info, "%s", first);
}

static void mtp_tree_cred(proto_tree *t, tvbuff_t *tvb, packet_info *pinfo, const struct mtp_rec *r,
                          wmem_strbuf_t *info)
{
    const char *mech = r->u.cred.mechanism ? r->u.cred.mechanism : "?";
    const char *user = r->u.cred.username ? r->u.cred.username : "";
    const char *result = mt_auth_result_name(r->u.cred.result);
    proto_item *ti = proto_tree_add_none_format(t, hf_auth, tvb, 0, 0, "Credentials: %s %s (%s)",
                                                mech, user, result);
    proto_tree *st = proto_item_add_subtree(ti, ett_auth);
    mtp_add_str(st, hf_auth_mechanism, tvb, r->u.cred.mechanism);
    mtp_add_str(st, hf_auth_username, tvb, r->u.cred.username);
    mtp_add_str(st, hf_auth_password, tvb, r->u.cred.password);
    mtp_add_str(st, hf_auth_authzid, tvb, r->u.cred.authzid);
    mtp_add_str(st, hf_auth_token, tvb, r->u.cred.token);
    mtp_add_str(st, hf_auth_hash, tvb, r->u.cred.hash);
    mtp_add_str(st, hf_auth_challenge, tvb, r->u.cred.challenge);
    mtp_add_str(st, hf_auth_response, tvb, r->u.cred.response);
    mtp_add_str(st, hf_auth_domain, tvb, r->u.cred.domain);
    mtp_add_str(st, hf_auth_workstation, tvb, r->u.cred.workstation);
    proto_tree_add_string(st, hf_auth_result, tvb, 0, 0, result);
    if (r->u.cred.password || r->u.cred.token)
        expert_add_info_format(pinfo, ti, &ei_cleartext, "Cleartext credentials: %s %s (%s)", mech,
                               user, result);
    else if (r->u.cred.hash)
        expert_add_info_format(pinfo, ti, &ei_hash, "Crackable %s response of %s", mech, user);
    mtp_info(info, "AUTH %s %s %s", mech, user, result);
}

static void mtp_tree_message(proto_tree *t, tvbuff_t *tvb, const struct mtp_rec *r,
                             wmem_strbuf_t *info)
{
    const char *src = mt_msg_source_name(r->u.msg.source);
    proto_item *ti = proto_tree_add_none_format(
        t, hf_message, tvb, 0, 0, "Message %" PRIu64 " (%s): \"%s\", %" PRIu64 " bytes, %zu part%s",
        r->u.msg.index, src, r->u.msg.subject ? r->u.msg.subject : "", r->u.msg.size,
        r->u.msg.nparts, r->u.msg.nparts == 1 ? "" : "s");
    proto_tree *st = proto_item_add_subtree(ti, ett_message);
    proto_tree_add_uint64(st, hf_message_index, tvb, 0, 0, r->u.msg.index);
    proto_tree_add_string(st, hf_message_source, tvb, 0, 0, src);
    mtp_add_str(st, hf_message_mail_from, tvb, r->u.msg.mail_from);
    for (size_t i = 0; i < r->u.msg.nrcpt; i++)
        mtp_add_str(st, hf_message_rcpt_to, tvb, r->u.msg.rcpt_to[i]);
    mtp_add_str(st, hf_message_mailbox, tvb, r->u.msg.mailbox);
    mtp_add_str(st, hf_message_uid, tvb, r->u.msg.uid);
    mtp_add_str(st, hf_message_flags, tvb, r->u.msg.flags);
    mtp_add_str(st, hf_message_section, tvb, r->u.msg.section);
    mtp_add_str(st, hf_message_from, tvb, r->u.msg.from);
    mtp_add_str(st, hf_message_to, tvb, r->u.msg.to);
    mtp_add_str(st, hf_message_cc, tvb, r->u.msg.cc);
    mtp_add_str(st, hf_message_subject, tvb, r->u.msg.subject);
    mtp_add_str(st, hf_message_date, tvb, r->u.msg.date);
    mtp_add_str(st, hf_message_message_id, tvb, r->u.msg.message_id);
    proto_tree_add_uint64(st, hf_message_size, tvb, 0, 0, r->u.msg.size);
    mtp_add_str(st, hf_message_sha256, tvb, r->u.msg.sha256);
    proto_tree_add_boolean(st, hf_message_complete, tvb, 0, 0, r->u.msg.complete);
    proto_tree_add_boolean(st, hf_message_truncated, tvb, 0, 0, r->u.msg.truncated);
    for (size_t i = 0; i < r->u.msg.nparts; i++) {
        const struct mtp_part *p = &r->u.msg.parts[i];
        proto_item *pi;
        if (p->multipart)
            pi = proto_tree_add_none_format(st, hf_part, tvb, 0, 0, "Part %s: %s", p->path,
                                            p->content_type ? p->content_type : "");
        else
            pi = proto_tree_add_none_format(
                st, hf_part, tvb, 0, 0, "Part %s: %s%s%s, %" PRIu64 " bytes", p->path,
                p->content_type ? p->content_type : "", p->filename ? " " : "",
                p->filename ? p->filename : "", p->size);
        proto_tree *pt = proto_item_add_subtree(pi, ett_part);
        mtp_add_str(pt, hf_part_path, tvb, p->path);
        mtp_add_str(pt, hf_part_content_type, tvb, p->content_type);
        mtp_add_str(pt, hf_part_charset, tvb, p->charset);
        mtp_add_str(pt, hf_part_encoding, tvb, p->encoding);
        mtp_add_str(pt, hf_part_filename, tvb, p->filename);
        mtp_add_str(pt, hf_part_disposition, tvb, p->disposition);
        if (!p->multipart) {
            proto_tree_add_uint64(pt, hf_part_size, tvb, 0, 0, p->size);
            mtp_add_str(pt, hf_part_sha256, tvb, p->sha256);
        }
    }
    mtp_info(info, "message \"%s\" %" PRIu64 " bytes", r->u.msg.subject ? r->u.msg.subject : "",
             r->u.msg.size);
}

static void mtp_tree_anomaly(proto_tree *t, tvbuff_t *tvb, packet_info *pinfo,
                             const struct mtp_rec *r, wmem_strbuf_t *info)
{
    const char *name = mt_anomaly_name(r->u.an.kind);
    proto_item *ti = proto_tree_add_string_format(
        t, hf_anomaly, tvb, 0, 0, name, "Anomaly: %s (%s)%s%s", name,
        r->u.an.dir == MT_C2S ? "client to server" : "server to client", r->u.an.detail ? ": " : "",
        r->u.an.detail ? r->u.an.detail : "");
    proto_tree *st = proto_item_add_subtree(ti, ett_anomaly);
    mtp_add_str(st, hf_anomaly_detail, tvb, r->u.an.detail);
    if ((unsigned)r->u.an.kind < MT_AN__COUNT)
        expert_add_info_format(pinfo, ti, &ei_anomaly[r->u.an.kind], "%s%s%s",
                               mt_anomaly_desc(r->u.an.kind), r->u.an.detail ? ": " : "",
                               r->u.an.detail ? r->u.an.detail : "");
    mtp_info(info, "anomaly %s", name);
}

/* One "mailtap" item per session with records in this frame. */
static void mtp_tree_frame(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree,
                           const struct mtp_frame *f)
{
    bool info_cmds = !mtp_has_mail_dissector(pinfo);
    wmem_strbuf_t *info = wmem_strbuf_new(pinfo->pool, "");
    uint32_t done[8];
    size_t ndone = 0;

    for (const struct mtp_rec *s = f->head; s; s = s->next) {
        bool seen = false;
        for (size_t i = 0; i < ndone; i++)
            seen = seen || done[i] == s->session;
        if (seen)
            continue;
        if (ndone < G_N_ELEMENTS(done))
            done[ndone++] = s->session;

        proto_item *ti = proto_tree_add_item(tree, proto_mailtap, tvb, 0, 0, ENC_NA);
        proto_tree *t = proto_item_add_subtree(ti, ett_mailtap);
        if (s->session) {
            proto_item_append_text(ti, ", %s session %u", mt_proto_name(s->proto), s->session);
            proto_item *si = proto_tree_add_uint(t, hf_session, tvb, 0, 0, s->session);
            proto_item_set_generated(si);
        }
        proto_tree_add_string(t, hf_proto, tvb, 0, 0, mt_proto_name(s->proto));

        for (const struct mtp_rec *r = s; r; r = r->next) {
            if (r->session != s->session)
                continue;
            switch (r->type) {
            case MT_EV_COMMAND: mtp_tree_command(t, tvb, pinfo, r, info, info_cmds); break;
            case MT_EV_REPLY: mtp_tree_reply(t, tvb, r, info, info_cmds); break;
            case MT_EV_CREDENTIAL: mtp_tree_cred(t, tvb, pinfo, r, info); break;
            case MT_EV_MESSAGE: mtp_tree_message(t, tvb, r, info); break;
            case MT_EV_ANOMALY: mtp_tree_anomaly(t, tvb, pinfo, r, info); break;
            case MT_EV_TLS: {
                proto_item *xi = proto_tree_add_none_format(
                    t, hf_starttls, tvb, 0, 0, "STARTTLS accepted: the rest of the session is TLS");
                expert_add_info(pinfo, xi, &ei_starttls);
                mtp_info(info, "STARTTLS");
                break;
            }
            default: break;
            }
        }
    }
    if (wmem_strbuf_get_len(info))
        col_append_fstr(pinfo->cinfo, COL_INFO, " [mailtap: %s]", wmem_strbuf_get_str(info));
}

static int dissect_mailtap(tvbuff_t *tvb, packet_info *pinfo, proto_tree *tree, void *data)
{
    (void)data;
    if (!PINFO_FD_VISITED(pinfo))
        mtp_feed(tvb, pinfo);
    const struct mtp_frame *f = mtp.frames ? mtp_frame_get(pinfo->num, false) : NULL;
    if (!f || !f->head)
        return 0;
    mtp_tree_frame(tvb, pinfo, tree, f);
    return tvb_captured_length(tvb);
}

/* -------------------------------------------------------------- registration */

#define STR(id, name, abbrev, blurb)                                                               \
    {                                                                                              \
        &id,                                                                                       \
        {                                                                                          \
            name, abbrev, FT_STRING, BASE_NONE, NULL, 0x0, blurb, HFILL                            \
        }                                                                                          \
    }
#define NONE(id, name, abbrev, blurb)                                                              \
    {                                                                                              \
        &id,                                                                                       \
        {                                                                                          \
            name, abbrev, FT_NONE, BASE_NONE, NULL, 0x0, blurb, HFILL                              \
        }                                                                                          \
    }
#define U64(id, name, abbrev, blurb)                                                               \
    {                                                                                              \
        &id,                                                                                       \
        {                                                                                          \
            name, abbrev, FT_UINT64, BASE_DEC, NULL, 0x0, blurb, HFILL                             \
        }                                                                                          \
    }
#define BOOL(id, name, abbrev, blurb)                                                              \
    {                                                                                              \
        &id,                                                                                       \
        {                                                                                          \
            name, abbrev, FT_BOOLEAN, BASE_NONE, NULL, 0x0, blurb, HFILL                           \
        }                                                                                          \
    }

static void mtp_expert_for(enum mt_anomaly a, int *group, int *severity)
{
    *group = PI_PROTOCOL;
    *severity = PI_WARN;
    switch (a) {
    case MT_AN_BAD_PACKET:
        *group = PI_MALFORMED;
        *severity = PI_ERROR;
        break;
    case MT_AN_B64_INVALID:
    case MT_AN_SASL_INVALID:
    case MT_AN_BDAT_INVALID:
    case MT_AN_MIME_NO_BOUNDARY:
    case MT_AN_MIME_BAD_BASE64:
    case MT_AN_IMAP_SYNTAX:
    case MT_AN_DECOMPRESS_ERROR:
    case MT_AN_NUL_BYTE:
    case MT_AN_BARE_CR:
    case MT_AN_BARE_LF:
    case MT_AN_BARE_LF_DOT: *group = PI_MALFORMED; break;
    case MT_AN_GAP:
    case MT_AN_OVERLAP_CONFLICT:
    case MT_AN_OOO_OVERFLOW:
    case MT_AN_UNMATCHED_REPLY:
    case MT_AN_IPFRAG_INCOMPLETE: *group = PI_SEQUENCE; break;
    case MT_AN_SNAPLEN_TRUNCATED:
    case MT_AN_MESSAGE_INCOMPLETE: *group = PI_UNDECODED; break;
    case MT_AN_FLOW_EVICTED:
    case MT_AN_FLOW_IDLE:
        *group = PI_PROTOCOL;
        *severity = PI_NOTE;
        break;
    default: break;
    }
}

static void proto_register_mailtap(void)
{
    static hf_register_info hf[] = {
        {&hf_session,
         {"Session", "mailtap.session", FT_FRAMENUM, BASE_NONE, NULL, 0x0,
          "Session id: the frame that opened the TCP session", HFILL}},
        STR(hf_proto, "Protocol", "mailtap.proto", "smtp, pop3, imap, tls or unknown"),

        NONE(hf_command, "Command", "mailtap.command", NULL),
        STR(hf_command_tag, "Tag", "mailtap.command.tag", "IMAP tag"),
        STR(hf_command_verb, "Verb", "mailtap.command.verb", "Command verb as sent"),
        STR(hf_command_arg, "Argument", "mailtap.command.arg", "The rest of the line"),
        STR(hf_command_decoded, "Decoded", "mailtap.command.decoded",
            "Decoded AUTH value or other annotation"),
        BOOL(hf_command_auth_data, "SASL data", "mailtap.command.auth_data",
             "A SASL continuation line from the client"),
        {&hf_command_response_frame,
         {"Response in", "mailtap.command.response_frame", FT_FRAMENUM, BASE_NONE,
          FRAMENUM_TYPE(FT_FRAMENUM_RESPONSE), 0x0, "Frame of the first reply", HFILL}},

        NONE(hf_reply, "Reply", "mailtap.reply", NULL),
        STR(hf_reply_tag, "Tag", "mailtap.reply.tag", "IMAP tag, * or +"),
        STR(hf_reply_code, "Code", "mailtap.reply.code", "250, +OK, -ERR, OK, NO, BAD, +, *"),
        STR(hf_reply_line, "Line", "mailtap.reply.line", NULL),
        STR(hf_reply_decoded, "Decoded", "mailtap.reply.decoded", NULL),
        {&hf_reply_request_frame,
         {"Request in", "mailtap.reply.request_frame", FT_FRAMENUM, BASE_NONE,
          FRAMENUM_TYPE(FT_FRAMENUM_REQUEST), 0x0, "Frame of the command answered", HFILL}},
        STR(hf_reply_request_verb, "Request verb", "mailtap.reply.request_verb", NULL),

        NONE(hf_auth, "Credentials", "mailtap.auth", NULL),
        STR(hf_auth_mechanism, "Mechanism", "mailtap.auth.mechanism",
            "PLAIN, LOGIN, CRAM-MD5, NTLM, XOAUTH2, OAUTHBEARER, USER, APOP, LOGIN command..."),
        STR(hf_auth_username, "Username", "mailtap.auth.username", NULL),
        STR(hf_auth_password, "Password", "mailtap.auth.password", NULL),
        STR(hf_auth_authzid, "Authorization id", "mailtap.auth.authzid", NULL),
        STR(hf_auth_token, "Bearer token", "mailtap.auth.token", NULL),
        STR(hf_auth_hash, "Hash", "mailtap.auth.hash", "Crackable line (hashcat format)"),
        STR(hf_auth_challenge, "Challenge", "mailtap.auth.challenge", NULL),
        STR(hf_auth_response, "Response", "mailtap.auth.response", NULL),
        STR(hf_auth_domain, "Domain", "mailtap.auth.domain", NULL),
        STR(hf_auth_workstation, "Workstation", "mailtap.auth.workstation", NULL),
        STR(hf_auth_result, "Result", "mailtap.auth.result", "success, failure or unknown"),

        NONE(hf_message, "Message", "mailtap.message", NULL),
        U64(hf_message_index, "Index", "mailtap.message.index", "1, 2, ... within the session"),
        STR(hf_message_source, "Source", "mailtap.message.source",
            "DATA, BDAT, RETR, TOP, FETCH or APPEND"),
        STR(hf_message_mail_from, "MAIL FROM", "mailtap.message.mail_from", NULL),
        STR(hf_message_rcpt_to, "RCPT TO", "mailtap.message.rcpt_to", NULL),
        STR(hf_message_mailbox, "Mailbox", "mailtap.message.mailbox", NULL),
        STR(hf_message_uid, "UID", "mailtap.message.uid", "IMAP UID or POP3 message number"),
        STR(hf_message_flags, "Flags", "mailtap.message.flags", NULL),
        STR(hf_message_section, "Section", "mailtap.message.section", NULL),
        STR(hf_message_from, "From", "mailtap.message.from", NULL),
        STR(hf_message_to, "To", "mailtap.message.to", NULL),
        STR(hf_message_cc, "Cc", "mailtap.message.cc", NULL),
        STR(hf_message_subject, "Subject", "mailtap.message.subject", NULL),
        STR(hf_message_date, "Date", "mailtap.message.date", NULL),
        STR(hf_message_message_id, "Message-ID", "mailtap.message.message_id", NULL),
        U64(hf_message_size, "Size", "mailtap.message.size", "Bytes of the message"),
        STR(hf_message_sha256, "SHA-256", "mailtap.message.sha256", NULL),
        BOOL(hf_message_complete, "Complete", "mailtap.message.complete", NULL),
        BOOL(hf_message_truncated, "Truncated", "mailtap.message.truncated", NULL),

        NONE(hf_part, "MIME part", "mailtap.part", NULL),
        STR(hf_part_path, "Path", "mailtap.part.path", NULL),
        STR(hf_part_content_type, "Content type", "mailtap.part.content_type", NULL),
        STR(hf_part_charset, "Charset", "mailtap.part.charset", NULL),
        STR(hf_part_encoding, "Encoding", "mailtap.part.encoding", NULL),
        STR(hf_part_filename, "File name", "mailtap.part.filename", NULL),
        STR(hf_part_disposition, "Disposition", "mailtap.part.disposition", NULL),
        U64(hf_part_size, "Size", "mailtap.part.size", "Decoded bytes"),
        STR(hf_part_sha256, "SHA-256", "mailtap.part.sha256", "Of the decoded bytes"),

        STR(hf_anomaly, "Anomaly", "mailtap.anomaly", NULL),
        STR(hf_anomaly_detail, "Detail", "mailtap.anomaly.detail", NULL),
        NONE(hf_starttls, "STARTTLS", "mailtap.starttls", NULL),
    };
    static gint *ett[] = {
        &ett_mailtap, &ett_command, &ett_reply, &ett_auth, &ett_message, &ett_part, &ett_anomaly,
    };
    /* Registered once per process and kept: Wireshark holds the pointers. */
    ei_register_info *ei = g_new0(ei_register_info, MT_AN__COUNT + 3);
    for (int a = 0; a < MT_AN__COUNT; a++) {
        int group, severity;
        mtp_expert_for((enum mt_anomaly)a, &group, &severity);
        ei_anomaly[a] = (expert_field)EI_INIT;
        ei[a] = (ei_register_info){
            &ei_anomaly[a],
            {g_strdup_printf("mailtap.expert.%s", mt_anomaly_name((enum mt_anomaly)a)), group,
             severity, mt_anomaly_desc((enum mt_anomaly)a), EXPFILL}};
    }
    ei[MT_AN__COUNT] = (ei_register_info){&ei_cleartext,
                                          {"mailtap.expert.cleartext_credentials", PI_SECURITY,
                                           PI_WARN, "Cleartext credentials", EXPFILL}};
    ei[MT_AN__COUNT + 1] =
        (ei_register_info){&ei_hash,
                           {"mailtap.expert.crackable_hash", PI_SECURITY, PI_NOTE,
                            "Challenge-response that can be cracked offline", EXPFILL}};
    ei[MT_AN__COUNT + 2] =
        (ei_register_info){&ei_starttls,
                           {"mailtap.expert.starttls", PI_SECURITY, PI_CHAT,
                            "STARTTLS: the rest of the session is encrypted", EXPFILL}};

    proto_mailtap = proto_register_protocol("mailtap mail traffic analyzer", "mailtap", "mailtap");
    proto_register_field_array(proto_mailtap, hf, array_length(hf));
    proto_register_subtree_array(ett, array_length(ett));
    expert_module_t *em = expert_register_protocol(proto_mailtap);
    expert_register_field_array(em, ei, MT_AN__COUNT + 3);

    register_init_routine(mtp_init);
    register_cleanup_routine(mtp_cleanup);
}

static void proto_reg_handoff_mailtap(void)
{
    mt_mime_global_init();
    dissector_handle_t h = create_dissector_handle(dissect_mailtap, proto_mailtap);
    register_postdissector(h);
}

/* ------------------------------------------------- the four exported symbols */

WS_DLL_PUBLIC_DEF const gchar plugin_version[] = MAILTAP_VERSION;
WS_DLL_PUBLIC_DEF const int plugin_want_major = 4;
WS_DLL_PUBLIC_DEF const int plugin_want_minor = 0;

WS_DLL_PUBLIC void plugin_register(void);

void plugin_register(void)
{
    static proto_plugin plug;
    plug.register_protoinfo = proto_register_mailtap;
    plug.register_handoff = proto_reg_handoff_mailtap;
    proto_register_plugin(&plug);
}
