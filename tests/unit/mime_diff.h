/* The fast MIME path (dissect/mime_fast.c) against GMime's full parse on
 * one message: shared by tests/unit/test_mime_fast.c and the MIME fuzz
 * harness.  Header-only; no GLib test macros, so a fuzzer can use it. */
#ifndef MT_TEST_MIME_DIFF_H
#define MT_TEST_MIME_DIFF_H

#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "mime.h"

static void md_on_anomaly(void *ud, enum mt_anomaly a, const char *detail)
{
    g_string_append_printf((GString *)ud, "%s(%s) ", mt_anomaly_name(a), detail ? detail : "");
}

static void md_field(GString *why, const char *what, const char *a, const char *b)
{
    if (g_strcmp0(a, b) != 0 && why->len == 0)
        g_string_printf(why, "%s: fast \"%s\", gmime \"%s\"", what, a ? a : "(null)",
                        b ? b : "(null)");
}

/* Compares both paths on data.  Returns -1 when the fast path declined the
 * message, 0 when it took it and agreed with GMime in every field, 1 when
 * they differ (why says where). */
static int mime_diff(const uint8_t *data, size_t len, const struct mt_limits *lim, GString *why)
{
    struct mt_mime_result f, g;
    GString *fa = g_string_new(NULL), *ga = g_string_new(NULL);
    int rc = 0;

    g_string_truncate(why, 0);
    if (!mt_mime_parse_fast(data, len, lim, &f, md_on_anomaly, fa)) {
        g_string_free(fa, TRUE);
        g_string_free(ga, TRUE);
        return -1;
    }
    mt_mime_force_gmime = true;
    mt_mime_parse(data, len, lim, &g, md_on_anomaly, ga);
    mt_mime_force_gmime = false;

    md_field(why, "from", f.headers.from, g.headers.from);
    md_field(why, "to", f.headers.to, g.headers.to);
    md_field(why, "cc", f.headers.cc, g.headers.cc);
    md_field(why, "subject", f.headers.subject, g.headers.subject);
    md_field(why, "date", f.headers.date, g.headers.date);
    md_field(why, "message_id", f.headers.message_id, g.headers.message_id);
    md_field(why, "anomalies", fa->str, ga->str);
    if (why->len == 0 && f.nparts != g.nparts)
        g_string_printf(why, "parts: fast %zu, gmime %zu", f.nparts, g.nparts);
    for (size_t i = 0; why->len == 0 && i < f.nparts; i++) {
        const struct mt_mime_part *a = &f.parts[i], *b = &g.parts[i];
        char what[64];

#define MD_STR(field)                                                                              \
    do {                                                                                           \
        snprintf(what, sizeof what, "part %zu " #field, i);                                        \
        md_field(why, what, a->field, b->field);                                                   \
    } while (0)
        MD_STR(path);
        MD_STR(content_type);
        MD_STR(charset);
        MD_STR(encoding);
        MD_STR(filename);
        MD_STR(disposition);
        MD_STR(text_utf8);
#undef MD_STR
        snprintf(what, sizeof what, "part %zu sha256", i);
        md_field(why, what, a->sha256, b->sha256);
        if (why->len == 0 && (a->depth != b->depth || a->is_multipart != b->is_multipart ||
                              a->size != b->size || a->data_len != b->data_len ||
                              (a->data_len && memcmp(a->data, b->data, a->data_len) != 0)))
            g_string_printf(why, "part %zu: depth %u/%u multipart %d/%d size %llu/%llu", i,
                            a->depth, b->depth, a->is_multipart, b->is_multipart,
                            (unsigned long long)a->size, (unsigned long long)b->size);
    }
    rc = why->len ? 1 : 0;
    mt_mime_result_clear(&f);
    mt_mime_result_clear(&g);
    g_string_free(fa, TRUE);
    g_string_free(ga, TRUE);
    return rc;
}

#endif
