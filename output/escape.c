/* Escaping of network bytes for terminals and for JSON. */
#include <glib.h>
#include <string.h>

#include "output.h"

void mt_esc_text(GString *out, const void *vp, size_t n)
{
    const uint8_t *p = vp;
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x7f) {
            /* a backslash stays as sent (IMAP's \Seen): escapes are only
             * for what could not be shown, never to make text safe */
            g_string_append_c(out, (char)c);
            i++;
            continue;
        }
        if (c >= 0x80) {
            const gchar *end;
            size_t rest = n - i;
            size_t k = rest < 4 ? rest : 4;
            /* one valid, printable UTF-8 character? */
            if (!g_utf8_validate((const gchar *)p + i, (gssize)MIN(k, (size_t)g_utf8_skip[c]),
                                 &end) ||
                (size_t)(end - (const gchar *)(p + i)) != (size_t)g_utf8_skip[c]) {
                g_string_append_printf(out, "\\x%02x", c);
                i++;
                continue;
            }
            gunichar u = g_utf8_get_char((const gchar *)p + i);
            size_t len = (size_t)g_utf8_skip[c];
            if (!g_unichar_isprint(u) || (u >= 0x80 && u < 0xa0) || u == 0x2028 ||
                u == 0x2029 || (u >= 0x202a && u <= 0x202e) || (u >= 0x2066 && u <= 0x2069))
                g_string_append_printf(out, "\\u{%04x}", u);
            else
                g_string_append_len(out, (const gchar *)p + i, (gssize)len);
            i += len;
            continue;
        }
        switch (c) {
        case '\t': g_string_append(out, "\\t"); break;
        case '\r': g_string_append(out, "\\r"); break;
        case '\n': g_string_append(out, "\\n"); break;
        default: g_string_append_printf(out, "\\x%02x", c); break;
        }
        i++;
    }
}

bool mt_esc_json(GString *out, const void *vp, size_t n)
{
    const uint8_t *p = vp;
    bool clean = true;
    g_string_append_c(out, '"');
    size_t i = 0;
    while (i < n) {
        /* the common case in bulk: printable ASCII that needs no escape */
        size_t j = i;
        while (j < n && p[j] >= 0x20 && p[j] < 0x7f && p[j] != '"' && p[j] != '\\')
            j++;
        if (j > i) {
            g_string_append_len(out, (const gchar *)p + i, (gssize)(j - i));
            i = j;
            if (i == n)
                break;
        }
        uint8_t c = p[i];
        if (c < 0x80) {
            switch (c) {
            case '"': g_string_append(out, "\\\""); break;
            case '\\': g_string_append(out, "\\\\"); break;
            case '\n': g_string_append(out, "\\n"); break;
            case '\r': g_string_append(out, "\\r"); break;
            case '\t': g_string_append(out, "\\t"); break;
            default:
                if (c < 0x20 || c == 0x7f)
                    g_string_append_printf(out, "\\u%04x", c);
                else
                    g_string_append_c(out, (char)c);
            }
            i++;
            continue;
        }
        size_t len = (size_t)g_utf8_skip[c];
        const gchar *end;
        if (len <= n - i && g_utf8_validate((const gchar *)p + i, (gssize)len, &end) &&
            (size_t)(end - (const gchar *)(p + i)) == len) {
            gunichar u = g_utf8_get_char((const gchar *)p + i);
            /* C1 controls and the Unicode line separators: escaped, so that
             * no reader splits a JSON line on them (Python's splitlines
             * does on U+0085) and no terminal acts on them */
            if ((u >= 0x80 && u < 0xa0) || u == 0x2028 || u == 0x2029)
                g_string_append_printf(out, "\\u%04x", u);
            else
                g_string_append_len(out, (const gchar *)p + i, (gssize)len);
            i += len;
        } else {
            g_string_append(out, "\xef\xbf\xbd"); /* U+FFFD */
            clean = false;
            i++;
        }
    }
    g_string_append_c(out, '"');
    return clean;
}

void mt_append_u64(GString *out, uint64_t v)
{
    char buf[24];
    int i = (int)sizeof(buf);
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    g_string_append_len(out, buf + i, (gssize)sizeof(buf) - i);
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

void mt_fmt_time(GString *out, int64_t us)
{
    int64_t sec = us / 1000000;
    int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        sec--;
    }
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    civil(days, &y, &mo, &d);
    if (y < 0 || y > 9999) {
        g_string_append(out, "1970-01-01T00:00:00.000000Z");
        return;
    }
    char b[28] = "0000-00-00T00:00:00.000000Z";
    put2(b, (unsigned)(y / 100));
    put2(b + 2, (unsigned)(y % 100));
    put2(b + 5, mo);
    put2(b + 8, d);
    put2(b + 11, (unsigned)(rem / 3600));
    put2(b + 14, (unsigned)(rem / 60 % 60));
    put2(b + 17, (unsigned)(rem % 60));
    put2(b + 20, (unsigned)(frac / 10000));
    put2(b + 22, (unsigned)(frac / 100 % 100));
    put2(b + 24, (unsigned)(frac % 100));
    g_string_append_len(out, b, 27);
}

void mt_json_anomaly_counts(GString *b, const uint32_t *counts)
{
    g_string_append_c(b, '{');
    bool first = true;
    for (int a = 0; a < MT_AN__COUNT; a++)
        if (counts[a]) {
            g_string_append_printf(b, "%s\"%s\":%u", first ? "" : ",",
                                   mt_anomaly_name((enum mt_anomaly)a), counts[a]);
            first = false;
        }
    g_string_append_c(b, '}');
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
