/* Commands and replies as records, for an output that hands its events to
 * another thread (mt_output_opts.handoff_records).  The reading thread
 * then copies each command's and reply's fields instead of printing them,
 * and the thread that writes prints them: the printing was about a tenth
 * of the reading thread's time, and the message thread had that to spare
 * (bench/README.md).
 *
 * What is handed off is a run of frames: a kind byte, the payload's length
 * (4 bytes, this machine's order: the frames never leave the process), the
 * payload.  A text frame holds printed events; a record the fields of one
 * event, numbers first, then each string as its length and its bytes.  C
 * strings (the reply's code, the notes) keep their NUL, so that the reader
 * can point at them. */
#include <string.h>

#include "output_int.h"

enum { REC_NOTE = 1, REC_AUTH_DATA = 2, REC_SECRET = 4, REC_CODE = 8 };

struct rec_head {
    uint64_t sess, pkt;
    int64_t ts;
    uint32_t proto, flags;
};

/* Writes v at d (this machine's order); returns its end. */
static inline char *w_u32(char *d, uint32_t v)
{
    memcpy(d, &v, sizeof v);
    return d + sizeof v;
}

/* Writes a frame's head at d (MT_FRAME_HEAD bytes); returns where its
 * payload of len bytes starts. */
static inline char *w_head(char *d, char kind, uint32_t len)
{
    d[0] = kind;
    return w_u32(d + 1, len);
}

/* Writes n bytes after their length at d; returns their end. */
static inline char *w_bytes(char *d, const void *p, size_t n)
{
    d = w_u32(d, (uint32_t)n);
    if (n)
        memcpy(d, p, n);
    return d + n;
}

size_t mt_frame_open(GString *b, char kind)
{
    size_t at = b->len;
    mt_buf_end(b, w_head(mt_buf_room(b, MT_FRAME_HEAD), kind, 0));
    return at;
}

void mt_frame_close(GString *b, size_t at)
{
    size_t n = b->len - at - MT_FRAME_HEAD;
    if (n == 0) { /* nothing printed: no frame */
        g_string_truncate(b, at);
        return;
    }
    w_head(b->str + at, b->str[at], (uint32_t)n);
}

size_t mt_frame_next(const char *p, size_t n, char *kind, const char **payload, uint32_t *len)
{
    if (n < MT_FRAME_HEAD)
        return 0;
    memcpy(len, p + 1, sizeof *len);
    if (*len > n - MT_FRAME_HEAD)
        return 0;
    *kind = p[0];
    *payload = p + MT_FRAME_HEAD;
    return MT_FRAME_HEAD + (size_t)*len;
}

/* The record is measured first and written into room made once: a room
 * check, a length patch and a NUL per field cost more than the fields'
 * bytes (most are a few bytes long). */
void mt_rec_put(GString *b, const struct mt_event *ev)
{
    bool reply = ev->type == MT_EV_REPLY;
    struct rec_head h = {
        .sess = ev->sess->id, .pkt = ev->pkt, .ts = ev->ts_us, .proto = (uint32_t)ev->proto,
    };
    const size_t L = sizeof(uint32_t);
    size_t need = sizeof h, code_n = 0, note_n = 0;
    const char *code = NULL, *note;
    if (!reply) {
        note = ev->u.cmd.note;
        h.flags = (note ? REC_NOTE : 0) | (ev->u.cmd.auth_data ? REC_AUTH_DATA : 0) |
                  (ev->u.cmd.secret ? REC_SECRET : 0);
        need += 4 * L + ev->u.cmd.tag.n + ev->u.cmd.verb.n + ev->u.cmd.arg.n + ev->u.cmd.line.n;
    } else {
        note = ev->u.reply.note;
        code = ev->u.reply.code;
        h.flags = (note ? REC_NOTE : 0) | (code ? REC_CODE : 0);
        need += sizeof ev->u.reply.cmd_pkt + 3 * L + ev->u.reply.tag.n +
                ev->u.reply.cmd_verb.n;
        if (code) /* C strings keep their NUL */
            need += L + (code_n = strlen(code) + 1);
        for (size_t i = 0; i < ev->u.reply.nlines; i++)
            need += L + ev->u.reply.lines[i].n;
    }
    if (note)
        need += L + (note_n = strlen(note) + 1);
    char *d = w_head(mt_buf_room(b, MT_FRAME_HEAD + need),
                     reply ? MT_FRAME_REPLY : MT_FRAME_COMMAND, (uint32_t)need);
    memcpy(d, &h, sizeof h);
    d += sizeof h;
    if (!reply) {
        d = w_bytes(d, ev->u.cmd.tag.p, ev->u.cmd.tag.n);
        d = w_bytes(d, ev->u.cmd.verb.p, ev->u.cmd.verb.n);
        d = w_bytes(d, ev->u.cmd.arg.p, ev->u.cmd.arg.n);
        d = w_bytes(d, ev->u.cmd.line.p, ev->u.cmd.line.n);
        if (note)
            d = w_bytes(d, note, note_n);
    } else {
        memcpy(d, &ev->u.reply.cmd_pkt, sizeof ev->u.reply.cmd_pkt);
        d += sizeof ev->u.reply.cmd_pkt;
        d = w_bytes(d, ev->u.reply.tag.p, ev->u.reply.tag.n);
        d = w_bytes(d, ev->u.reply.cmd_verb.p, ev->u.reply.cmd_verb.n);
        if (code)
            d = w_bytes(d, code, code_n);
        if (note)
            d = w_bytes(d, note, note_n);
        d = w_u32(d, (uint32_t)ev->u.reply.nlines);
        for (size_t i = 0; i < ev->u.reply.nlines; i++)
            d = w_bytes(d, ev->u.reply.lines[i].p, ev->u.reply.lines[i].n);
    }
    mt_buf_end(b, d);
}

/* Reading a payload that this process wrote: the lengths are checked all
 * the same, so that a bug shows as a failed read, not as a wild one. */
struct rd {
    const char *p;
    size_t n;
    bool ok;
};

static void get(struct rd *r, void *v, size_t n)
{
    if (r->n < n) {
        r->ok = false;
        memset(v, 0, n);
        return;
    }
    memcpy(v, r->p, n);
    r->p += n;
    r->n -= n;
}

static struct mt_bytes get_bytes(struct rd *r)
{
    uint32_t len;
    get(r, &len, sizeof len);
    if (!r->ok || r->n < len) {
        r->ok = false;
        return (struct mt_bytes){ (const uint8_t *)"", 0 };
    }
    struct mt_bytes v = { (const uint8_t *)r->p, len };
    r->p += len;
    r->n -= len;
    return v;
}

static const char *get_cstr(struct rd *r)
{
    struct mt_bytes v = get_bytes(r);
    if (!r->ok || v.n == 0 || v.p[v.n - 1] != '\0') {
        r->ok = false;
        return "";
    }
    return (const char *)v.p;
}

bool mt_rec_get(char kind, const char *p, size_t n, struct mt_event *ev,
                struct mt_session_info *si, struct mt_bytes **lines, size_t *lines_cap)
{
    struct rd r = { p, n, true };
    struct rec_head h;
    get(&r, &h, sizeof h);
    memset(ev, 0, sizeof(*ev));
    memset(si, 0, sizeof(*si));
    si->id = h.sess;
    ev->sess = si;
    ev->proto = (enum mt_proto)h.proto;
    ev->ts_us = h.ts;
    ev->pkt = h.pkt;
    if (kind == MT_FRAME_COMMAND) {
        ev->type = MT_EV_COMMAND;
        ev->u.cmd.tag = get_bytes(&r);
        ev->u.cmd.verb = get_bytes(&r);
        ev->u.cmd.arg = get_bytes(&r);
        ev->u.cmd.line = get_bytes(&r);
        if (h.flags & REC_NOTE)
            ev->u.cmd.note = get_cstr(&r);
        ev->u.cmd.auth_data = h.flags & REC_AUTH_DATA;
        ev->u.cmd.secret = h.flags & REC_SECRET;
        return r.ok && r.n == 0;
    }
    ev->type = MT_EV_REPLY;
    get(&r, &ev->u.reply.cmd_pkt, sizeof ev->u.reply.cmd_pkt);
    ev->u.reply.tag = get_bytes(&r);
    ev->u.reply.cmd_verb = get_bytes(&r);
    if (h.flags & REC_CODE)
        ev->u.reply.code = get_cstr(&r);
    if (h.flags & REC_NOTE)
        ev->u.reply.note = get_cstr(&r);
    uint32_t nl;
    get(&r, &nl, sizeof nl);
    /* each line takes at least its length's 4 bytes */
    if (!r.ok || nl > r.n / sizeof(uint32_t))
        return false;
    if (nl > *lines_cap) {
        *lines_cap = MAX((size_t)nl, 2 * *lines_cap);
        *lines = g_renew(struct mt_bytes, *lines, *lines_cap);
    }
    for (uint32_t i = 0; i < nl; i++)
        (*lines)[i] = get_bytes(&r);
    ev->u.reply.lines = *lines;
    ev->u.reply.nlines = nl;
    return r.ok && r.n == 0;
}
