/* Case-insensitive comparisons of protocol words (RFC 5321 2.4, RFC 1939
 * 3, RFC 9051 9: commands, status words and keywords are ASCII and
 * case-insensitive), inline: the dissectors compare every command and
 * status word against short tables, and a g_ascii_strncasecmp call per
 * candidate was 2 % of the reading thread's instructions on the
 * benchmark's capture.  Only A-Z fold, as in g_ascii_strncasecmp; bytes
 * are compared as they are, a NUL included. */
#ifndef MT_ASCII_H
#define MT_ASCII_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline char mt_ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* Whether p[0..n) is the word s, in any case. */
static inline bool mt_eq_ci(const void *p, size_t n, const char *s)
{
    const char *a = p;
    size_t i = 0;
    for (; i < n; i++)
        if (!s[i] || mt_ascii_lower(a[i]) != mt_ascii_lower(s[i]))
            return false;
    return s[i] == '\0';
}

/* Whether p[0..n) starts with pre, in any case. */
static inline bool mt_prefix_ci(const void *p, size_t n, const char *pre)
{
    const char *a = p;
    for (size_t i = 0; pre[i]; i++)
        if (i >= n || mt_ascii_lower(a[i]) != mt_ascii_lower(pre[i]))
            return false;
    return true;
}

/* The decimal number at the start of p[0..n) (a size the protocol gives:
 * an IMAP literal, SMTP's SIZE=, POP3's octets): returns how many digits
 * it has (0: none), all of them consumed; *v is its value, and *overflow
 * tells whether it is past UINT64_MAX (*v is then not it). */
static inline size_t mt_ascii_u64(const void *p, size_t n, uint64_t *v, bool *overflow)
{
    const unsigned char *a = p;
    size_t i = 0;
    *v = 0;
    *overflow = false;
    for (; i < n && a[i] >= '0' && a[i] <= '9'; i++) {
        unsigned d = (unsigned)(a[i] - '0');
        if (*v > (UINT64_MAX - d) / 10)
            *overflow = true;
        *v = *v * 10 + d;
    }
    return i;
}

#endif
