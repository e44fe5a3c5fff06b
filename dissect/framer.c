/* Line and raw-run framer shared by the text protocols; see framer.h. */
#include "framer.h"

#include <string.h>

#include <glib.h>

#include "grow.h"

void mt_framer_init(struct mt_framer *f, uint32_t line_max)
{
    memset(f, 0, sizeof(*f));
    f->line_max = line_max ? line_max : 1;
}

void mt_framer_free(struct mt_framer *f)
{
    g_free(f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
}

void mt_framer_input(struct mt_framer *f, const uint8_t *p, size_t n)
{
    f->in = p;
    f->in_len = n;
    f->in_off = 0;
}

void mt_framer_raw(struct mt_framer *f, uint64_t n)
{
    f->raw_left = n;
}

void mt_framer_reset(struct mt_framer *f)
{
    f->len = 0;
    f->raw_left = 0;
    f->skipping = false;
}

/* Keeps p[0..n) for a line that goes on in the next input, never more than
 * line_max bytes in all. */
static void keep(struct mt_framer *f, const uint8_t *p, size_t n)
{
    size_t room = f->line_max > f->len ? f->line_max - f->len : 0;
    if (n > room)
        n = room;
    if (n == 0)
        return;
    if (n > f->cap - f->len) {
        size_t cap = mt_grow_cap(f->cap, 256, f->len + n, f->line_max);
        f->buf = g_realloc(f->buf, cap);
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
}

static unsigned scan_flags(const uint8_t *p, size_t n)
{
    unsigned fl = 0;
    if (memchr(p, 0, n))
        fl |= MT_LINE_NUL;
    const uint8_t *cr = memchr(p, '\r', n);
    if (cr)
        fl |= MT_LINE_BARE_CR; /* the line's own CR was stripped already */
    return fl;
}

static const uint8_t crlf[2] = { '\r', '\n' };

/* Fills it with a complete line p[0..n) (n excludes LF). */
static void make_line(struct mt_item *it, const uint8_t *p, size_t n, unsigned extra)
{
    it->kind = MT_ITEM_LINE;
    it->flags = extra;
    if (n > 0 && p[n - 1] == '\r') {
        n--;
        it->eol = crlf;
        it->eol_len = 2;
    } else {
        it->eol = crlf + 1;
        it->eol_len = 1;
        it->flags |= MT_LINE_BARE_LF;
    }
    it->p = p;
    it->n = n;
    it->flags |= scan_flags(p, n);
}

bool mt_framer_next(struct mt_framer *f, struct mt_item *it)
{
    for (;;) {
        size_t avail = f->in_len - f->in_off;
        const uint8_t *p = f->in + f->in_off;

        if (f->raw_left > 0) {
            if (avail == 0)
                return false;
            size_t n = avail;
            if ((uint64_t)n > f->raw_left)
                n = (size_t)f->raw_left;
            f->raw_left -= n;
            f->in_off += n;
            it->kind = MT_ITEM_RAW;
            it->p = p;
            it->n = n;
            it->eol = NULL;
            it->eol_len = 0;
            it->flags = 0;
            return true;
        }
        if (avail == 0)
            return false;

        const uint8_t *lf = memchr(p, '\n', avail);
        if (f->skipping) {
            if (!lf) {
                f->in_off = f->in_len;
                return false;
            }
            f->in_off += (size_t)(lf - p) + 1;
            f->skipping = false;
            continue;
        }
        if (lf) {
            size_t n = (size_t)(lf - p);
            f->in_off += n + 1;
            if (f->len == 0) {
                if (n <= f->line_max || f->chunked) {
                    if (n > f->line_max) {
                        /* chunked: hand out line_max bytes, the rest follows */
                        f->in_off -= n + 1 - f->line_max;
                        it->kind = MT_ITEM_LINE;
                        it->p = p;
                        it->n = f->line_max;
                        it->eol = NULL;
                        it->eol_len = 0;
                        it->flags = MT_LINE_PARTIAL | scan_flags(p, f->line_max);
                        return true;
                    }
                    make_line(it, p, n, 0);
                    return true;
                }
                make_line(it, p, f->line_max, MT_LINE_TRUNCATED);
                it->flags &= ~MT_LINE_BARE_LF;
                it->eol = crlf;
                it->eol_len = 2;
                return true;
            }
            /* completes a line begun in an earlier input */
            size_t before = f->len;
            keep(f, p, n);
            unsigned extra = 0;
            if (before + n > f->line_max) {
                if (f->chunked) {
                    /* hand out what is kept as a piece; re-read the rest */
                    size_t used = f->len - before;
                    f->in_off -= n + 1 - used;
                    f->len = 0;
                    it->kind = MT_ITEM_LINE;
                    it->p = f->buf;
                    it->n = f->line_max;
                    it->eol = NULL;
                    it->eol_len = 0;
                    it->flags = MT_LINE_PARTIAL | scan_flags(f->buf, f->line_max);
                    return true;
                }
                extra = MT_LINE_TRUNCATED;
            }
            size_t len = f->len;
            f->len = 0;
            make_line(it, f->buf, len, extra);
            return true;
        }
        /* no LF: keep the partial line */
        if (f->len + avail > f->line_max) {
            size_t used = f->line_max - f->len;
            keep(f, p, used);
            f->in_off += used;
            size_t len = f->len;
            f->len = 0;
            it->kind = MT_ITEM_LINE;
            it->p = f->buf;
            it->n = len;
            it->eol = f->chunked ? NULL : crlf;
            it->eol_len = f->chunked ? 0 : 2;
            it->flags = scan_flags(f->buf, len) |
                        (f->chunked ? MT_LINE_PARTIAL : MT_LINE_TRUNCATED);
            if (!f->chunked)
                f->skipping = true;
            return true;
        }
        keep(f, p, avail);
        f->in_off = f->in_len;
        return false;
    }
}

void mt_lines_init(struct mt_lines *l, uint32_t max)
{
    memset(l, 0, sizeof(*l));
    l->max = max ? max : 1;
}

void mt_lines_free(struct mt_lines *l)
{
    g_free(l->buf);
    g_free(l->v);
    g_free(l->off);
    memset(l, 0, sizeof(*l));
}

void mt_lines_clear(struct mt_lines *l)
{
    l->len = 0;
    l->n = 0;
    l->dropped = 0;
}

bool mt_lines_add(struct mt_lines *l, const uint8_t *p, size_t n)
{
    if (l->n >= l->max) {
        l->dropped++;
        return false;
    }
    if (l->n == l->vcap) {
        l->vcap = l->vcap ? l->vcap * 2 : 2; /* most replies are one line */
        l->v = g_renew(struct mt_bytes, l->v, l->vcap);
        l->off = g_renew(size_t, l->off, l->vcap);
    }
    if (n > l->cap - l->len) {
        size_t cap = mt_grow_cap(l->cap, 64, l->len + n, SIZE_MAX);
        l->buf = g_realloc(l->buf, cap);
        l->cap = cap;
    }
    if (n)
        memcpy(l->buf + l->len, p, n);
    l->off[l->n] = l->len;
    l->v[l->n].n = n;
    l->len += n;
    l->n++;
    return true;
}

const struct mt_bytes *mt_lines_view(struct mt_lines *l)
{
    static const uint8_t empty[1];
    for (size_t i = 0; i < l->n; i++) /* only empty lines so far: no buffer */
        l->v[i].p = l->buf ? l->buf + l->off[i] : empty;
    return l->v;
}
