/* Extraction: each message as .eml, each attachment decoded, under names
 * that are safe and unique inside one directory.  Files are created with
 * openat(O_CREAT | O_EXCL | O_NOFOLLOW) relative to the directory, so no
 * name can leave it, follow a link or overwrite anything. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ascii.h"
#include "caps.h"
#include "output_int.h"

struct mt_extractor {
    char *dir;
    int dirfd;
};

struct mt_extractor *mt_extractor_new(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    struct mt_extractor *x = g_new0(struct mt_extractor, 1);
    x->dir = g_strdup(dir);
    x->dirfd = fd;
    return x;
}

void mt_extractor_free(struct mt_extractor *x)
{
    if (!x)
        return;
    close(x->dirfd);
    g_free(x->dir);
    g_free(x);
}

static bool reserved_name(const char *s)
{
    /* Windows device names, in case the directory is shared */
    static const char *const dev[] = { "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3",
                                       "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1",
                                       "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8",
                                       "LPT9", NULL };
    size_t stem = strcspn(s, ".");
    for (int i = 0; dev[i]; i++)
        if (mt_eq_ci(s, stem, dev[i]))
            return true;
    return false;
}

char *mt_safe_filename(const char *name)
{
    if (!name)
        return g_strdup("unnamed");
    /* only the last path component counts */
    const char *base = name;
    for (const char *p = name; *p; p++)
        if (*p == '/' || *p == '\\')
            base = p + 1;
    GString *o = g_string_new(NULL);
    const char *p = base;
    while (*p) {
        gunichar u = g_utf8_get_char_validated(p, -1);
        if (u == (gunichar)-1 || u == (gunichar)-2) {
            g_string_append_c(o, '_');
            p++;
            continue;
        }
        const char *next = g_utf8_next_char(p);
        bool ok = g_unichar_isprint(u) && !strchr("/\\:*?\"<>|", (int)(u < 128 ? u : 'a')) &&
                  !(u >= 0x202a && u <= 0x202e) && !(u >= 0x2066 && u <= 0x2069);
        if (ok && o->len + (size_t)(next - p) <= MT_CAP_FILENAME)
            g_string_append_len(o, p, next - p);
        else if (!ok && o->len < MT_CAP_FILENAME)
            g_string_append_c(o, '_');
        p = next;
    }
    /* no leading dots or spaces (hidden files, "..") and no trailing ones */
    size_t lead = 0;
    while (lead < o->len && (o->str[lead] == '.' || o->str[lead] == ' '))
        lead++;
    g_string_erase(o, 0, (gssize)lead);
    while (o->len && (o->str[o->len - 1] == '.' || o->str[o->len - 1] == ' '))
        g_string_truncate(o, o->len - 1);
    if (o->len == 0)
        g_string_assign(o, "unnamed");
    if (reserved_name(o->str))
        g_string_prepend_c(o, '_');
    return g_string_free(o, FALSE);
}

/* Creates a new file named stem (+ "-N" before the extension if taken) and
 * writes data; returns the path under the directory, or NULL. */
static char *write_unique(struct mt_extractor *x, const char *stem, const uint8_t *data,
                          size_t len)
{
    const char *dot = strrchr(stem, '.');
    size_t base_len = dot && dot != stem ? (size_t)(dot - stem) : strlen(stem);
    for (unsigned n = 0; n < 100000; n++) {
        char *name = n == 0 ? g_strdup(stem)
                            : g_strdup_printf("%.*s-%u%s", (int)base_len, stem, n,
                                              stem + base_len);
        int fd = openat(x->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0644);
        if (fd < 0) {
            g_free(name);
            if (errno == EEXIST)
                continue;
            return NULL;
        }
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(fd, data + off, len - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            off += (size_t)w;
        }
        close(fd);
        char *path = g_build_filename(x->dir, name, NULL);
        g_free(name);
        return path;
    }
    return NULL;
}

void mt_extract_message(struct mt_extractor *x, const struct mt_session_info *s,
                        struct mt_message *msg)
{
    char *stem = g_strdup_printf("s%llu-m%llu.eml", (unsigned long long)s->id,
                                 (unsigned long long)msg->index);
    msg->file = write_unique(x, stem, msg->raw, msg->raw_len);
    g_free(stem);
    for (size_t i = 0; i < msg->nparts; i++) {
        struct mt_mime_part *p = &msg->parts[i];
        if (p->is_multipart || !p->data)
            continue; /* containers; a message/rfc822 node carries its message */
        bool text = p->content_type && g_str_has_prefix(p->content_type, "text/") &&
                    !p->filename && (!p->disposition || strcmp(p->disposition, "attachment"));
        if (text)
            continue;
        bool eml = p->content_type && strcmp(p->content_type, "message/rfc822") == 0;
        char *safe = mt_safe_filename(p->filename ? p->filename
                                                  : eml ? "attached.eml" : "part.bin");
        char *name = g_strdup_printf("s%llu-m%llu-p%s-%s", (unsigned long long)s->id,
                                     (unsigned long long)msg->index, p->path ? p->path : "0",
                                     safe);
        char *capped = mt_safe_filename(name); /* applies the length cap to the whole name */
        p->file = write_unique(x, capped, p->data, p->data_len);
        g_free(capped);
        g_free(name);
        g_free(safe);
    }
}
