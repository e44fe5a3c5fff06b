/* Appending to a GString without a library call per piece: the printers
 * build each event from many small pieces, and g_string_append (a strlen
 * and an insert) or g_string_append_printf (a vasprintf) per piece cost
 * more than the bytes themselves.  Private to output/.
 *
 * The pattern: d = mt_buf_room(g, n) gives room for n more bytes (and the
 * NUL a GString keeps after them); write at most n bytes from d on; then
 * mt_buf_end(g, d + written). */
#ifndef MT_BUF_H
#define MT_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "event.h"

/* Grows g so that n more bytes and the terminating NUL fit (escape.c). */
void mt_buf_grow(GString *g, size_t n);

/* Room for n more bytes after g->len; returns where they go. */
static inline char *mt_buf_room(GString *g, size_t n)
{
    if (G_UNLIKELY(g->allocated_len - g->len <= n))
        mt_buf_grow(g, n);
    return g->str + g->len;
}

/* Ends an append begun with mt_buf_room: the string now ends at end. */
static inline void mt_buf_end(GString *g, char *end)
{
    g->len = (gsize)(end - g->str);
    *end = '\0';
}

static inline void mt_buf_put(GString *g, const void *p, size_t n)
{
    char *d = mt_buf_room(g, n);
    memcpy(d, p, n);
    mt_buf_end(g, d + n);
}

static inline void mt_buf_putc(GString *g, char c)
{
    char *d = mt_buf_room(g, 1);
    *d = c;
    mt_buf_end(g, d + 1);
}

static inline void mt_buf_str(GString *g, const char *s)
{
    mt_buf_put(g, s, strlen(s));
}

/* A string literal: its length is known when compiling. */
#define mt_buf_lit(g, s) mt_buf_put((g), "" s, sizeof(s) - 1)

static inline void mt_buf_bool(GString *g, bool v)
{
    if (v)
        mt_buf_lit(g, "true");
    else
        mt_buf_lit(g, "false");
}

#define MT_U64_DIGITS 20 /* most decimal digits of a uint64_t */

/* Writes the decimal digits of v at d (at most MT_U64_DIGITS); returns
 * their end.  Two digits a step, from the end. */
static inline char *mt_put_u64(char *d, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    int n = 1;
    for (uint64_t p = 10; n < MT_U64_DIGITS && v >= p; p *= 10)
        n++;
    char *e = d + n;
    while (v >= 100) {
        e -= 2;
        memcpy(e, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10)
        memcpy(e - 2, pairs + 2 * v, 2);
    else
        e[-1] = (char)('0' + v);
    return d + n;
}

/* Writes v in lower-case hex, at least min digits (as printf's "%0<min>x"
 * does, min <= 8); returns the end. */
static inline char *mt_put_hex(char *d, uint32_t v, int min)
{
    static const char hex[] = "0123456789abcdef";
    int n = 1;
    for (uint32_t t = v >> 4; t; t >>= 4)
        n++;
    if (n < min)
        n = min;
    for (int i = n - 1; i >= 0; i--, v >>= 4)
        d[i] = hex[v & 15];
    return d + n;
}

static inline void mt_buf_u64(GString *g, uint64_t v)
{
    char *d = mt_buf_room(g, MT_U64_DIGITS);
    mt_buf_end(g, mt_put_u64(d, v));
}

/* The last second mt_fmt_time_cached formatted: the first 20 characters
 * of a timestamp ("2026-01-01T00:00:00.") only change with the second, and
 * the events of a capture mostly come many to a second. */
struct mt_time_cache {
    bool valid;
    int64_t sec;
    char head[20];
};

/* Same output as mt_fmt_time. */
void mt_fmt_time_cached(GString *out, struct mt_time_cache *c, int64_t us);
/* The address of e as mt_endpoint_ip writes it, without its buffer. */
void mt_append_ip(GString *out, const struct mt_endpoint *e);

#endif
