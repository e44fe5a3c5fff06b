/* Escaping of network bytes for terminals and for JSON. */
#include <glib.h>
#include <string.h>

#include "buf.h"
#include "output.h"

/* What may be copied as it is: SAFE_TEXT for mt_esc_text (printable
 * ASCII), SAFE_JSON for mt_esc_json (the same but " and \). */
enum { SAFE_TEXT = 1, SAFE_JSON = 2 };
static const uint8_t safe[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    3, 3, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* " */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 3, 3, 3, /* \ */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, /* DEL */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Eight bytes at a time (SWAR): whether any byte of x is outside printable
 * ASCII, or equal to b.  Each test only tells whether some byte matched
 * (never which), which is all the bulk copy needs: a word with a hit goes
 * byte by byte through the table above. */
#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t word_unprintable(uint64_t x)
{
    /* a byte < 0x20 borrows into its high bit; one >= 0x80 has it set; 0x7f
     * gets it by adding 1 (a carry out of 0xff only adds to that hit) */
    return (((x - ONES * 0x20) & ~x) | x | (x + ONES)) & HIGHS;
}

static inline uint64_t word_has(uint64_t x, uint8_t b)
{
    uint64_t y = x ^ (ONES * b);
    return (y - ONES) & ~y & HIGHS;
}

static inline uint64_t load8(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

void mt_buf_grow(GString *g, size_t n)
{
    gsize len = g->len;
    g_string_set_size(g, len + n); /* grows to a power of two past len + n */
    g->len = len;
    g->str[len] = '\0';
}

/* Room for n more bytes from d on, d being where the string ends while an
 * escape function writes (g->len is only set at the end). */
static inline char *reserve(GString *g, char *d, size_t n)
{
    size_t used = (size_t)(d - g->str);
    if (G_UNLIKELY(g->allocated_len - used <= n)) {
        g->len = used;
        mt_buf_grow(g, n);
    }
    return g->str + used;
}

static inline bool word_safe(uint64_t x, bool json)
{
    if (json)
        return !(word_unprintable(x) | word_has(x, '"') | word_has(x, '\\'));
    return !word_unprintable(x);
}

/* The bulk copy both escapers share: from p[*i] on, the bytes that need
 * nothing, eight at a time while word_safe says so, then one at a time
 * through the table, up to the first byte that needs care (or the end);
 * moves *i and *d past them.  As p[run..*i) went out as it is, to drun on,
 * the last bytes can go as one word overlapping the ones already copied.
 * Always inlined, with json a constant: a call per run costs more than
 * most runs. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void bulk_copy(const uint8_t *p, size_t n, size_t *ip, char **dp, size_t run,
                             char *drun, bool json)
{
    size_t i = *ip;
    char *d = *dp;
    while (n - i >= 8) {
        uint64_t x = load8(p + i);
        if (!word_safe(x, json))
            break;
        memcpy(d, &x, 8);
        d += 8;
        i += 8;
    }
    if (n - i < 8 && n - run >= 8) {
        uint64_t x = load8(p + n - 8);
        if (word_safe(x, json)) {
            memcpy(drun + (n - 8 - run), &x, 8);
            d = drun + (n - run);
            i = n;
        }
    }
    uint8_t flag = json ? SAFE_JSON : SAFE_TEXT;
    while (i < n && (safe[p[i]] & flag))
        *d++ = (char)p[i++];
    *ip = i;
    *dp = d;
}

void mt_esc_text(GString *out, const void *vp, size_t n)
{
    const uint8_t *p = vp;
    size_t i = 0;
    /* room for all of p as it is; each escape below asks for more.  Always
     * at least n - i bytes free from d on. */
    char *d = mt_buf_room(out, n);
    size_t run = 0; /* p[run..i) went out as it is, */
    char *drun = d; /* to drun on */
    for (;;) {
        /* the common case in bulk: printable ASCII, copied as it is */
        bulk_copy(p, n, &i, &d, run, drun, false);
        if (i == n)
            break;
        /* a backslash stays as sent (IMAP's \Seen): escapes are only for
         * what could not be shown, never to make text safe.  The longest
         * escape, "\u{10ffff}", is 10 bytes for at least one byte in. */
        d = reserve(out, d, n - i + 10);
        uint8_t c = p[i];
        if (c >= 0x80) {
            const gchar *end;
            size_t rest = n - i;
            size_t k = rest < 4 ? rest : 4;
            size_t len = (size_t)g_utf8_skip[c];
            /* one valid, printable UTF-8 character? */
            if (!g_utf8_validate((const gchar *)p + i, (gssize)MIN(k, len), &end) ||
                (size_t)(end - (const gchar *)(p + i)) != len) {
                *d++ = '\\';
                *d++ = 'x';
                d = mt_put_hex(d, c, 2);
                i++;
            } else {
                gunichar u = g_utf8_get_char((const gchar *)p + i);
                if (!g_unichar_isprint(u) || (u >= 0x80 && u < 0xa0) || u == 0x2028 ||
                    u == 0x2029 || (u >= 0x202a && u <= 0x202e) || (u >= 0x2066 && u <= 0x2069)) {
                    memcpy(d, "\\u{", 3);
                    d = mt_put_hex(d + 3, u, 4);
                    *d++ = '}';
                } else {
                    memcpy(d, p + i, len);
                    d += len;
                }
                i += len;
            }
        } else {
            *d++ = '\\';
            switch (c) {
            case '\t': *d++ = 't'; break;
            case '\r': *d++ = 'r'; break;
            case '\n': *d++ = 'n'; break;
            default:
                *d++ = 'x';
                d = mt_put_hex(d, c, 2);
                break;
            }
            i++;
        }
        run = i;
        drun = d;
    }
    mt_buf_end(out, d);
}

bool mt_esc_json(GString *out, const void *vp, size_t n)
{
    const uint8_t *p = vp;
    bool clean = true;
    /* room for the quotes and all of p as it is; each escape below asks for
     * more.  Always at least n - i + 1 bytes free from d on. */
    char *d = mt_buf_room(out, n + 2);
    *d++ = '"';
    size_t i = 0;
    size_t run = 0; /* p[run..i) went out as it is, */
    char *drun = d; /* to drun on */
    for (;;) {
        /* the common case in bulk: printable ASCII that needs no escape */
        bulk_copy(p, n, &i, &d, run, drun, true);
        if (i == n)
            break;
        /* the longest escape, "\u0085", is 6 bytes for at least one byte in */
        d = reserve(out, d, n - i + 6 + 1);
        uint8_t c = p[i];
        size_t len = (size_t)g_utf8_skip[c];
        const gchar *end;
        if (c < 0x80) {
            *d++ = '\\';
            switch (c) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '\n': *d++ = 'n'; break;
            case '\r': *d++ = 'r'; break;
            case '\t': *d++ = 't'; break;
            default: /* the other controls and DEL */
                *d++ = 'u';
                d = mt_put_hex(d, c, 4);
            }
            i++;
        } else if (len <= n - i && g_utf8_validate((const gchar *)p + i, (gssize)len, &end) &&
                   (size_t)(end - (const gchar *)(p + i)) == len) {
            gunichar u = g_utf8_get_char((const gchar *)p + i);
            /* C1 controls and the Unicode line separators: escaped, so that
             * no reader splits a JSON line on them (Python's splitlines
             * does on U+0085) and no terminal acts on them */
            if ((u >= 0x80 && u < 0xa0) || u == 0x2028 || u == 0x2029) {
                memcpy(d, "\\u", 2);
                d = mt_put_hex(d + 2, u, 4);
            } else {
                memcpy(d, p + i, len);
                d += len;
            }
            i += len;
        } else {
            memcpy(d, "\xef\xbf\xbd", 3); /* U+FFFD */
            d += 3;
            clean = false;
            i++;
        }
        run = i;
        drun = d;
    }
    *d++ = '"';
    mt_buf_end(out, d);
    return clean;
}

void mt_append_u64(GString *out, uint64_t v)
{
    mt_buf_u64(out, v);
}

void mt_append_ip(GString *out, const struct mt_endpoint *e)
{
    if (e->family == 4) { /* as inet_ntop writes it: no leading zeros */
        char *d = mt_buf_room(out, 15);
        for (int k = 0; k < 4; k++) {
            if (k)
                *d++ = '.';
            d = mt_put_u64(d, e->addr[k]);
        }
        mt_buf_end(out, d);
        return;
    }
    char ip[64];
    mt_buf_str(out, mt_endpoint_ip(e, ip, sizeof(ip)));
}

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm), so that
 * formatting a timestamp needs no allocation and no time zone lookup. */
static void civil(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    unsigned doe = (unsigned)(days - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
}

/* "YYYY-MM-DDTHH:MM:SS." of second sec into b[20]; false if the year has
 * not four digits. */
static bool fmt_head(char *b, int64_t sec)
{
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    civil(days, &y, &mo, &d);
    if (y < 0 || y > 9999)
        return false;
    memcpy(b, "0000-00-00T00:00:00.", 20);
    put2(b, (unsigned)(y / 100));
    put2(b + 2, (unsigned)(y % 100));
    put2(b + 5, mo);
    put2(b + 8, d);
    put2(b + 11, (unsigned)(rem / 3600));
    put2(b + 14, (unsigned)(rem / 60 % 60));
    put2(b + 17, (unsigned)(rem % 60));
    return true;
}

void mt_fmt_time_cached(GString *out, struct mt_time_cache *c, int64_t us)
{
    int64_t sec = us / 1000000;
    int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    if (!c->valid || c->sec != sec) {
        c->valid = fmt_head(c->head, sec);
        c->sec = sec;
        if (!c->valid) {
            mt_buf_lit(out, "1970-01-01T00:00:00.000000Z");
            return;
        }
    }
    char *b = mt_buf_room(out, 27);
    memcpy(b, c->head, 20);
    put2(b + 20, (unsigned)(frac / 10000));
    put2(b + 22, (unsigned)(frac / 100 % 100));
    put2(b + 24, (unsigned)(frac % 100));
    b[26] = 'Z';
    mt_buf_end(out, b + 27);
}

void mt_fmt_time(GString *out, int64_t us)
{
    struct mt_time_cache c = { .valid = false };
    mt_fmt_time_cached(out, &c, us);
}

void mt_json_anomaly_counts(GString *b, const uint32_t *counts)
{
    mt_buf_putc(b, '{');
    bool first = true;
    for (int a = 0; a < MT_AN__COUNT; a++)
        if (counts[a]) {
            if (!first)
                mt_buf_putc(b, ',');
            mt_buf_putc(b, '"');
            mt_buf_str(b, mt_anomaly_name((enum mt_anomaly)a));
            mt_buf_lit(b, "\":");
            mt_buf_u64(b, counts[a]);
            first = false;
        }
    mt_buf_putc(b, '}');
}

char *mt_redact_note(const char *note)
{
    static const char *const keys[] = { "password=\"", "token=\"", "hash=\"", "response=\"",
                                        NULL };
    GString *o = g_string_new(NULL);
    const char *p = note;
    while (*p) {
        bool hit = false;
        for (int k = 0; keys[k]; k++) {
            size_t kl = strlen(keys[k]);
            if (strncmp(p, keys[k], kl) == 0 && (p == note || p[-1] == ' ')) {
                g_string_append_len(o, p, (gssize)kl);
                p += kl;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1])
                        p++;
                    p++;
                }
                g_string_append(o, "****");
                hit = true;
                break;
            }
        }
        if (!hit)
            g_string_append_c(o, *p++);
    }
    return g_string_free(o, FALSE);
}
