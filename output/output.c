/* The sink: extraction first (it sets the file fields), then a printer.
 * The printers append to o->buf; it goes to the output in writes of about
 * OUT_CHUNK bytes (a few hundred bytes an event otherwise make as many
 * stdio calls and, past stdio's buffer, write calls), or after each event
 * when someone watches: live capture, or a terminal. */
#include "output_int.h"

#include <string.h>
#include <unistd.h>

#define OUT_CHUNK (64 * 1024)

static void cred_row_free(gpointer p)
{
    g_strfreev(p);
}

struct mt_output *mt_output_new(const struct mt_output_opts *opts, char *err, size_t errlen)
{
    struct mt_output *o = g_new0(struct mt_output, 1);
    o->o = *opts;
    if (!o->o.out)
        o->o.out = stdout;
    if (opts->extract_dir) {
        o->x = mt_extractor_new(opts->extract_dir, err, errlen);
        if (!o->x) {
            g_free(o);
            return NULL;
        }
    }
    o->buf = g_string_sized_new(2 * OUT_CHUNK);
    int fd = fileno(o->o.out);
    o->direct = o->o.flush_each || (fd >= 0 && isatty(fd));
    o->creds = g_ptr_array_new_with_free_func(cred_row_free);
    o->summary = mt_summary_new();
    return o;
}

/* Writes what the printers left in o->buf: whole events only, so that the
 * outputs of several workers on one stream never mix within a line. */
static void write_out(struct mt_output *o)
{
    if (!o->buf->len)
        return;
    if (o->o.handoff)
        o->o.handoff(o->o.handoff_ud, o->buf->str, o->buf->len);
    else
        fwrite(o->buf->str, 1, o->buf->len, o->o.out);
    g_string_truncate(o->buf, 0);
}

void mt_output_flush(struct mt_output *o)
{
    write_out(o);
}

void mt_output_raw(struct mt_output *o, const char *p, size_t n)
{
    g_string_append_len(o->buf, p, (gssize)n);
    if (o->direct || o->buf->len >= OUT_CHUNK)
        write_out(o);
}

void mt_output_free(struct mt_output *o)
{
    if (!o)
        return;
    write_out(o);
    g_free(o->rec_lines);
    mt_extractor_free(o->x);
    g_string_free(o->buf, TRUE);
    g_ptr_array_free(o->creds, TRUE);
    mt_summary_free(o->summary);
    g_free(o);
}

struct mt_summary *mt_output_summary(struct mt_output *o)
{
    return o->summary;
}

static char *esc_cell(const char *s)
{
    GString *g = g_string_new(NULL);
    if (s)
        mt_esc_text(g, s, strlen(s));
    else
        g_string_append(g, "-");
    return g_string_free(g, FALSE);
}

static void remember_credential(struct mt_output *o, const struct mt_event *ev)
{
    const struct mt_credential *c = ev->u.cred;
    char ip[64];
    char **row = g_new0(char *, 8);
    row[0] = g_strdup_printf("%llu", (unsigned long long)ev->sess->id);
    row[1] = g_strdup(mt_proto_name(ev->proto));
    row[2] = g_strdup_printf("%s:%u", mt_endpoint_ip(&ev->sess->server, ip, sizeof(ip)),
                             ev->sess->server.port);
    row[3] = esc_cell(c->mechanism);
    row[4] = esc_cell(c->username);
    const char *secret = c->password ? c->password : c->token ? c->token : c->hash;
    row[5] = o->o.redact && secret ? g_strdup("****") : esc_cell(secret);
    row[6] = g_strdup(mt_auth_result_name(c->result));
    g_ptr_array_add(o->creds, row);
}

/* Prints ev in o's format (no extraction, summary or tee). */
static void print(struct mt_output *o, const struct mt_event *ev)
{
    switch (o->o.format) {
    case MT_FMT_JSON:
        mt_json_event(o, ev);
        break;
    case MT_FMT_TEXT:
        mt_text_event(o, ev);
        break;
    case MT_FMT_CREDENTIALS:
        if (ev->type == MT_EV_CREDENTIAL)
            remember_credential(o, ev);
        break;
    }
}

bool mt_output_frames(struct mt_output *o, const char *p, size_t n)
{
    size_t i = 0;
    bool ok = true;
    while (i < n) {
        char kind;
        const char *pl;
        uint32_t len;
        size_t step = mt_frame_next(p + i, n - i, &kind, &pl, &len);
        if (step == 0) {
            ok = false;
            break;
        }
        if (kind == MT_FRAME_TEXT) {
            mt_buf_put(o->buf, pl, len);
        } else if (kind != MT_FRAME_COMMAND && kind != MT_FRAME_REPLY) {
            ok = false;
            break;
        } else {
            struct mt_event ev;
            struct mt_session_info si;
            if (!mt_rec_get(kind, pl, len, &ev, &si, &o->rec_lines, &o->rec_lines_cap)) {
                ok = false;
                break;
            }
            print(o, &ev);
        }
        i += step;
        if (o->buf->len >= OUT_CHUNK)
            write_out(o);
    }
    if (o->direct)
        write_out(o);
    return ok;
}

void mt_output_event(void *output, struct mt_event *ev)
{
    struct mt_output *o = output;
    if (ev->type == MT_EV_MESSAGE && o->x)
        mt_extract_message(o->x, ev->sess, ev->u.msg);
    mt_summary_event(o->summary, ev);
    if (!o->o.handoff_records) {
        print(o, ev);
    } else if ((ev->type == MT_EV_COMMAND || ev->type == MT_EV_REPLY) && !o->print_here) {
        mt_rec_put(o->buf, ev);
    } else {
        size_t at = mt_frame_open(o->buf, MT_FRAME_TEXT);
        print(o, ev);
        mt_frame_close(o->buf, at);
    }
    if (o->direct || o->buf->len >= OUT_CHUNK)
        write_out(o);
    if (o->o.tee)
        o->o.tee(o->o.tee_ud, ev);
    if (o->o.flush_each)
        fflush(o->o.out);
}

void mt_output_print_here(struct mt_output *o, bool here)
{
    o->print_here = here;
}

/* Credential rows in session order (several workers add them in any order). */
static gint cmp_rows(gconstpointer a, gconstpointer b)
{
    char **ra = *(char ***)a, **rb = *(char ***)b;
    unsigned long long sa = g_ascii_strtoull(ra[0], NULL, 10), sb = g_ascii_strtoull(rb[0], NULL, 10);
    return sa < sb ? -1 : sa > sb;
}

void mt_output_finish(struct mt_output *o)
{
    write_out(o); /* before the summary or anything else on o.out */
    if (o->o.format != MT_FMT_CREDENTIALS)
        return;
    g_ptr_array_sort(o->creds, cmp_rows);
    static const char *const head[] = { "SESSION", "PROTO",    "SERVER", "MECHANISM",
                                        "USERNAME", "PASSWORD/TOKEN/HASH", "RESULT" };
    size_t w[7];
    for (int i = 0; i < 7; i++)
        w[i] = strlen(head[i]);
    for (guint r = 0; r < o->creds->len; r++) {
        char **row = g_ptr_array_index(o->creds, r);
        for (int i = 0; i < 7; i++)
            w[i] = MAX(w[i], (size_t)g_utf8_strlen(row[i], -1));
    }
    for (int i = 0; i < 7; i++)
        fprintf(o->o.out, i < 6 ? "%-*s  " : "%.*s\n", (int)w[i], head[i]);
    for (guint r = 0; r < o->creds->len; r++) {
        char **row = g_ptr_array_index(o->creds, r);
        for (int i = 0; i < 7; i++) {
            size_t pad = w[i] - (size_t)g_utf8_strlen(row[i], -1);
            if (i < 6)
                fprintf(o->o.out, "%s%*s  ", row[i], (int)pad, "");
            else
                fprintf(o->o.out, "%s\n", row[i]);
        }
    }
    fflush(o->o.out);
}

void mt_output_merge(struct mt_output *dst, struct mt_output *src)
{
    /* src is done (its worker finished): its events go out before the
     * summary of both */
    write_out(dst);
    write_out(src);
    mt_summary_merge(dst->summary, src->summary);
    while (src->creds->len)
        g_ptr_array_add(dst->creds, g_ptr_array_steal_index(src->creds, 0));
}
