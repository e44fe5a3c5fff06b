/* Packet sources through libpcap: capture files (pcap, pcapng, "-") and
 * live interfaces, with an optional BPF filter and -w copy. */
#include "capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <pcap/pcap.h>

#include "caps.h"

#define MT_DEFAULT_SNAPLEN 262144
#define LIVE_TIMEOUT_MS 100
#define FILE_TICK_RECORDS 4096
#define FILE_IOBUF (256 * 1024)
/* Window reading of classic pcap files (see win_next): how much of the
 * file is read into the window buffer at a time. */
#define WINDOW_BYTES (1u * 1024 * 1024)

struct mt_source {
    pcap_t *p;
    FILE *fp;             /* files: ours, closed by pcap_close */
    int rfd;              /* files: fp's descriptor, which the window reads */
    char *iobuf;          /* fp's stdio buffer, freed after fp is closed */
    char *name;           /* for messages */
    bool live, is_stdin;
    bool classic;         /* classic pcap: record offsets are computed, not asked */
    int dlt;
    uint64_t size;
    uint8_t head[24];     /* files: the first 24 bytes, when head_read */
    bool head_read;
    pcap_dumper_t *dump;
    volatile sig_atomic_t stop;
    int fd;               /* live: selectable descriptor, -1 if none */
    /* Window reading (classic pcap in this machine's byte order, a
     * regular file): records are taken from a window of the file read
     * into one reused buffer with pread, in place of libpcap's copy of
     * each record, with libpcap's checks.  (The file was mapped before:
     * on a host where page faults are dear that was 20 % slower,
     * bench/README.md.) */
    bool windowed;
    bool nsec;            /* nanosecond time stamps */
    uint32_t snapshot;    /* libpcap's snapshot length for the file */
    uint64_t moff;        /* the next record's offset */
    const uint8_t *win;   /* the window: file bytes [wbase, wbase + wlen), in wbuf */
    uint64_t wbase;
    size_t wlen;
    bool has_prog;        /* the -f filter, which libpcap would apply */
    struct bpf_program prog;
    char merr[PCAP_ERRBUF_SIZE]; /* why win_next failed (libpcap's words) */
    uint8_t *wbuf;        /* the window's buffer, reused */
    size_t wcap;
    mt_window_cb wcb;     /* mt_source_set_window_cb */
    void *wud;
    bool wpinned;         /* wcb was told of the window and not yet of its end */
};

static struct mt_source *source_new(const char *name)
{
    struct mt_source *s = g_new0(struct mt_source, 1);
    s->name = g_strdup(name);
    s->fd = -1;
    s->rfd = -1;
    return s;
}

static int check_link(struct mt_source *s, char *err, size_t errlen)
{
    s->dlt = pcap_datalink(s->p);
    if (mt_decoder_supports(s->dlt))
        return MT_CAP_OK;
    const char *n = pcap_datalink_val_to_name(s->dlt);
    snprintf(err, errlen, "%s: link type %s (%d) is not supported", s->name, n ? n : "?",
             s->dlt);
    return MT_CAP_ERR_OPEN;
}

/* Whether the file is one for the window, as far as its kept header
 * (head) and the environment say. */
static bool win_wanted(const struct mt_source *s)
{
    const char *no = getenv("MAILTAP_NO_MMAP");
    if (!s->head_read || !s->classic || s->is_stdin || (no && *no && strcmp(no, "0") != 0))
        return false;
    uint32_t magic;
    uint16_t major, minor;
    memcpy(&magic, s->head, 4);
    memcpy(&major, s->head + 4, 2);
    memcpy(&minor, s->head + 6, 2);
    return (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) && major == 2 && minor == 4;
}

/* Classic pcap files written in this machine's byte order, version 2.4,
 * are read through a window (win_need): libpcap has checked the file
 * header and tells the link type and snapshot length; records are then
 * taken from the window with libpcap's own checks (pcap_next_packet in
 * sf-pcap.c).
 * Anything else (pcapng, other byte order or version, stdin) stays with
 * libpcap. */
static void win_setup(struct mt_source *s)
{
    if (!win_wanted(s) || pcap_is_swapped(s->p))
        return;
    uint32_t magic;
    memcpy(&magic, s->head, 4);
    int snap = pcap_snapshot(s->p);
    if (snap <= 0)
        return;
    s->nsec = magic == 0xa1b23c4d;
    s->snapshot = (uint32_t)snap;
    s->moff = 24;
    s->windowed = true;
}

/* Tells the window callback that the window's bytes go away. */
static void win_unpin(struct mt_source *s)
{
    if (s->wpinned) {
        s->wpinned = false;
        s->wcb(s->wud, NULL, NULL);
    }
}

static void win_drop(struct mt_source *s)
{
    win_unpin(s);
    s->win = NULL;
    s->wlen = 0;
}

/* Makes file bytes [off, off + n) readable in the window: 1, or 0 past
 * the end of the file, or -1 (merr set) if reading fails.  The window
 * callback hears of the old window's end before its buffer is refilled. */
static int win_need(struct mt_source *s, uint64_t off, uint64_t n)
{
    if (s->win && off >= s->wbase && off + n <= s->wbase + s->wlen)
        return 1;
    if (off + n > s->size)
        return 0;
    win_drop(s);
    uint64_t base = off;
    uint64_t len = MAX((uint64_t)WINDOW_BYTES, n);
    if (base + len > s->size)
        len = s->size - base;
    if (s->wcap < len) {
        /* once, at the window's size and a largest record's (the window
         * is larger only for a record beyond that) */
        g_free(s->wbuf);
        s->wcap = (size_t)MAX(len, (uint64_t)WINDOW_BYTES + MT_CAP_RECORD_BYTES + 16);
        s->wbuf = g_malloc(s->wcap);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(s->rfd, s->wbuf + got, (size_t)len - got, (off_t)(base + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            snprintf(s->merr, sizeof s->merr, "cannot read the file at byte offset %llu: %s",
                     (unsigned long long)(base + got), strerror(errno));
            return -1;
        }
        if (k == 0) {
            snprintf(s->merr, sizeof s->merr,
                     "the file shrank while it was being read (it had %llu bytes; byte offset "
                     "%llu is past its end now)",
                     (unsigned long long)s->size, (unsigned long long)(base + got));
            return -1;
        }
        got += (size_t)k;
    }
    s->win = s->wbuf;
    s->wbase = base;
    s->wlen = (size_t)len;
    if (s->wcb) {
        s->wpinned = true;
        s->wcb(s->wud, s->win, s->win + s->wlen);
    }
    return 1;
}

/* The next record of a file read through the window: 1 with h and data, 0
 * at the end of the file, -1 with merr (a damaged record; libpcap's checks
 * and words). */
static int win_next(struct mt_source *s, struct pcap_pkthdr *h, const u_char **data)
{
    uint64_t off = s->moff;
    if (off >= s->size)
        return 0;
    int m = win_need(s, off, 16);
    if (m <= 0) {
        if (m == 0)
            snprintf(s->merr, sizeof s->merr,
                     "truncated dump file; tried to read 16 header bytes, only got %llu",
                     (unsigned long long)(s->size - off));
        return -1;
    }
    const uint8_t *r = s->win + (off - s->wbase);
    int32_t sec, frac;
    uint32_t caplen, len;
    memcpy(&sec, r, 4);
    memcpy(&frac, r + 4, 4);
    memcpy(&caplen, r + 8, 4);
    memcpy(&len, r + 12, 4);
    if (caplen > MT_CAP_RECORD_BYTES) {
        snprintf(s->merr, sizeof s->merr,
                 "invalid packet capture length %u, bigger than %s of %u", caplen,
                 caplen > s->snapshot ? "snaplen" : "maximum",
                 caplen > s->snapshot ? s->snapshot : MT_CAP_RECORD_BYTES);
        return -1;
    }
    m = win_need(s, off + 16, caplen);
    if (m <= 0) {
        /* libpcap first reads the snapshot length's bytes of a longer
         * record, and names that count if even they are not there */
        uint64_t avail = s->size - off - 16;
        uint32_t want = caplen > s->snapshot && avail < s->snapshot ? s->snapshot : caplen;
        if (m == 0)
            snprintf(s->merr, sizeof s->merr,
                     "truncated dump file; tried to read %u captured bytes, only got %llu", want,
                     (unsigned long long)avail);
        return -1;
    }
    h->ts.tv_sec = sec;
    h->ts.tv_usec = s->nsec ? frac / 1000 : frac;
    /* a record longer than the snapshot length is cut to it (libpcap) */
    h->caplen = caplen > s->snapshot ? s->snapshot : caplen;
    h->len = len;
    *data = s->win + (off + 16 - s->wbase);
    s->moff = off + 16 + caplen;
    return 1;
}

/* A file read no further than a given size (mt_source_open_file_upto),
 * as a stdio stream for libpcap: past it, the end of the file. */
struct upto_file {
    int fd;
    uint64_t pos, end;
};

static ssize_t upto_read(void *cookie, char *buf, size_t n)
{
    struct upto_file *f = cookie;
    if (f->pos >= f->end)
        return 0;
    if (n > f->end - f->pos)
        n = (size_t)(f->end - f->pos);
    ssize_t k;
    do
        k = pread(f->fd, buf, n, (off_t)f->pos);
    while (k < 0 && errno == EINTR);
    if (k > 0)
        f->pos += (uint64_t)k;
    return k;
}

/* ftell's, for the offsets in error messages (libpcap itself never seeks) */
static int upto_seek(void *cookie, off64_t *off, int whence)
{
    struct upto_file *f = cookie;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)f->pos
                                                                : (int64_t)f->end;
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) {
        errno = EINVAL;
        return -1;
    }
    if (*off < -base) {
        errno = EINVAL;
        return -1;
    }
    f->pos = (uint64_t)(base + *off);
    *off = (off64_t)f->pos;
    return 0;
}

static int upto_close(void *cookie)
{
    struct upto_file *f = cookie;
    int rc = close(f->fd);
    g_free(f);
    return rc;
}

/* fd as a stream: a pipe or a device as it is, a regular file no further
 * than end (s->size, where the window reader stops too); NULL if stdio
 * refuses. */
static FILE *stream_of(int fd, bool regular, uint64_t end)
{
    if (!regular)
        return fdopen(fd, "rb");
    struct upto_file *f = g_new0(struct upto_file, 1);
    f->fd = fd;
    f->end = end;
    static const cookie_io_functions_t fns = { .read = upto_read, .seek = upto_seek,
                                               .close = upto_close };
    FILE *fp = fopencookie(f, "rb", fns);
    if (!fp)
        g_free(f);
    return fp;
}

int mt_source_open_file(struct mt_source **out, const char *path, char *err, size_t errlen)
{
    return mt_source_open_file_upto(out, path, MT_SOURCE_WHOLE, err, errlen);
}

int mt_source_open_file_upto(struct mt_source **out, const char *path, uint64_t upto, char *err,
                             size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    bool is_stdin = strcmp(path, "-") == 0;
    struct mt_source *s = source_new(is_stdin ? "<stdin>" : path);
    s->is_stdin = is_stdin;
    *out = NULL;
    if (is_stdin) {
        s->fp = stdin;
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) != 0) {
            close(fd);
            fd = -1;
        }
        bool regular = fd >= 0 && S_ISREG(st.st_mode);
        if (regular) /* how far it is read, whichever way */
            s->size = MIN((uint64_t)st.st_size, upto);
        s->fp = fd >= 0 ? stream_of(fd, regular, s->size) : NULL;
        if (!s->fp) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            mt_source_close(s);
            return MT_CAP_ERR_OPEN;
        }
        s->rfd = fd;
        /* peeked at with pread: no stdio I/O before setvbuf; kept for
         * win_setup */
        uint8_t *h = s->head;
        size_t got = s->size >= 4 ? (size_t)MIN(s->size, sizeof s->head) : 0;
        if (got && pread(s->rfd, h, got, 0) != (ssize_t)got)
            got = 0;
        s->head_read = got == sizeof s->head;
        if (got) {
            uint32_t le = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 |
                          (uint32_t)h[3] << 24;
            s->classic = le == 0xa1b2c3d4 || le == 0xd4c3b2a1 || le == 0xa1b23c4d ||
                         le == 0x4d3cb2a1;
        }
        /* libpcap reads each record with fread: a large stdio buffer means
         * one read(2) per 256 KiB instead of per 4 KiB (glibc ignores the
         * size unless given the buffer).  A file read through the window
         * (win_setup) has only its 24-byte header read by libpcap, so it
         * gets none. */
        if (!win_wanted(s)) {
            s->iobuf = g_malloc(FILE_IOBUF);
            setvbuf(s->fp, s->iobuf, _IOFBF, FILE_IOBUF);
        }
    }
    s->p = pcap_fopen_offline_with_tstamp_precision(s->fp, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
    if (!s->p) {
        if (!is_stdin)
            fclose(s->fp);
        s->fp = NULL;
        snprintf(err, errlen, "%s: not a capture file libpcap can read (%s)", s->name, ebuf);
        mt_source_close(s);
        return MT_CAP_ERR_OPEN;
    }
    if (is_stdin) /* the magic was not peeked at: libpcap reports pcapng as version 1 */
        s->classic = pcap_major_version(s->p) == 2;
    int rc = check_link(s, err, errlen);
    if (rc != MT_CAP_OK) {
        mt_source_close(s);
        return rc;
    }
    win_setup(s);
    *out = s;
    return MT_CAP_OK;
}

int mt_source_open_live(struct mt_source **out, const char *iface, int snaplen, bool promisc,
                        char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    struct mt_source *s = source_new(iface);
    s->live = true;
    *out = NULL;
    s->p = pcap_create(iface, ebuf);
    if (!s->p) {
        snprintf(err, errlen, "%s: %s", iface, ebuf);
        mt_source_close(s);
        return MT_CAP_ERR_OPEN;
    }
    pcap_set_snaplen(s->p, snaplen > 0 ? snaplen : MT_DEFAULT_SNAPLEN);
    pcap_set_promisc(s->p, promisc ? 1 : 0);
    pcap_set_timeout(s->p, LIVE_TIMEOUT_MS);
    pcap_set_immediate_mode(s->p, 1); /* show the dialogue as it happens */
    pcap_set_buffer_size(s->p, 16 * 1024 * 1024);
    int r = pcap_activate(s->p);
    if (r == PCAP_ERROR_PERM_DENIED || r == PCAP_ERROR_PROMISC_PERM_DENIED ||
        (r < 0 && strstr(pcap_geterr(s->p), "ermission"))) {
        snprintf(err, errlen,
                 "%s: not permitted to capture (%s). Capturing needs the CAP_NET_RAW and "
                 "CAP_NET_ADMIN capabilities: run as root, or grant them to the binary with "
                 "'sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v mailtap)\"'",
                 iface, pcap_geterr(s->p));
        mt_source_close(s);
        return MT_CAP_ERR_PERM;
    }
    if (r < 0) {
        snprintf(err, errlen, "%s: %s", iface,
                 r == PCAP_ERROR_NO_SUCH_DEVICE ? "no such interface (see mailtap -D)"
                                                : pcap_geterr(s->p));
        mt_source_close(s);
        return MT_CAP_ERR_OPEN;
    }
    r = check_link(s, err, errlen);
    if (r != MT_CAP_OK) {
        mt_source_close(s);
        return r;
    }
    /* In immediate mode Linux libpcap waits for a packet with no timeout:
     * wait on the descriptor ourselves, so that timers (--duration, idle
     * expiry, -w flushes) run on a quiet link too. */
    s->fd = pcap_get_selectable_fd(s->p);
    if (s->fd >= 0)
        pcap_setnonblock(s->p, 1, ebuf);
    *out = s;
    return MT_CAP_OK;
}

int mt_source_set_filter(struct mt_source *s, const char *bpf, char *err, size_t errlen)
{
    struct bpf_program prog;
    if (pcap_compile(s->p, &prog, bpf, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, errlen, "bad filter '%s': %s", bpf, pcap_geterr(s->p));
        return MT_CAP_ERR_FILTER;
    }
    int r = pcap_setfilter(s->p, &prog);
    if (r != 0) {
        pcap_freecode(&prog);
        snprintf(err, errlen, "cannot set filter '%s': %s", bpf, pcap_geterr(s->p));
        return MT_CAP_ERR_FILTER;
    }
    if (s->windowed) { /* libpcap does not see these records: the filter is ours to apply */
        if (s->has_prog)
            pcap_freecode(&s->prog);
        s->prog = prog;
        s->has_prog = true;
    } else {
        pcap_freecode(&prog);
    }
    return MT_CAP_OK;
}

int mt_source_open_filtered(struct mt_source **out, const char *path, uint64_t upto,
                            const char *bpf, char *err, size_t errlen)
{
    int rc = mt_source_open_file_upto(out, path, upto, err, errlen);
    if (rc == MT_CAP_OK && bpf)
        rc = mt_source_set_filter(*out, bpf, err, errlen);
    return rc;
}

int mt_source_dump_to(struct mt_source *s, const char *path, char *err, size_t errlen)
{
    s->dump = pcap_dump_open(s->p, path);
    if (!s->dump) {
        snprintf(err, errlen, "%s: %s", path, pcap_geterr(s->p));
        return MT_CAP_ERR_OPEN;
    }
    return MT_CAP_OK;
}

void mt_source_stop(struct mt_source *s)
{
    s->stop = 1;
    if (s->p)
        pcap_breakloop(s->p);
}

void mt_source_position(const struct mt_source *s, uint64_t *pos, uint64_t *size)
{
    *pos = 0;
    *size = s->size;
    if (s->windowed) {
        *pos = s->moff;
    } else if (s->fp && !s->is_stdin && !s->live) {
        long o = ftell(s->fp);
        *pos = o > 0 ? (uint64_t)o : 0;
    }
}

/* A record's time in microseconds; a pcapng timestamp can be anything, so
 * it is clamped to +-2^40 s (about 35,000 years): the products and the
 * differences the engine takes of times (idle expiry) cannot overflow. */
static int64_t ts_us(const struct timeval *tv)
{
    const int64_t max_sec = (int64_t)1 << 40;
    int64_t sec = (int64_t)tv->tv_sec;
    if (sec > max_sec)
        sec = max_sec;
    if (sec < -max_sec)
        sec = -max_sec;
    int64_t usec = tv->tv_usec >= 0 && tv->tv_usec < 1000000 ? tv->tv_usec : 0;
    return sec * 1000000 + usec;
}

static int64_t wall_us(void)
{
    return g_get_real_time();
}

/* mt_source_run's loop; off: where the first record starts (classic pcap),
 * or -1. */
static int run_loop(struct mt_source *s, struct mt_decoder *d, uint64_t *num,
                    uint64_t limit, mt_packet_cb cb, void *ud, mt_tick_cb tick,
                    void *tick_ud, char *err, size_t errlen, long off)
{
    uint64_t file_records = 0;
    int64_t last_ts = 0, last_tick = wall_us();
    while (!s->stop) {
        struct pcap_pkthdr *h, mh;
        const u_char *data;
        if (!s->classic && s->fp && !s->is_stdin && !s->live && file_records == 0)
            off = ftell(s->fp);
        int r;
        if (s->live && s->fd >= 0) {
            struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
            int pr = poll(&pfd, 1, LIVE_TIMEOUT_MS);
            r = pr > 0 ? pcap_next_ex(s->p, &h, &data) : 0; /* 0: nothing yet */
            if (pr < 0 && errno != EINTR) {
                snprintf(err, errlen, "%s: %s", s->name, strerror(errno));
                return MT_CAP_ERR_READ;
            }
        } else if (s->windowed) {
            off = (long)s->moff;
            r = win_next(s, &mh, &data); /* -1: reported below, as libpcap's errors */
            if (r == 1 && s->has_prog && !pcap_offline_filter(&s->prog, &mh, data))
                continue; /* filtered out, as libpcap would */
            if (r == 0)
                break; /* end of file */
            h = &mh;
        } else {
            r = pcap_next_ex(s->p, &h, &data);
        }
        if (r == 1) {
            /* (window: off is taken from the window before each record) */
            if (s->classic && !s->windowed && h->caplen >= (bpf_u_int32)pcap_snapshot(s->p))
                off = ftell(s->fp); /* maybe cut to the snapshot length: the
                                       record's own length is not known */
            else if (s->classic && !s->windowed)
                off += 16 + (long)h->caplen;
            (*num)++;
            file_records++;
            last_ts = ts_us(&h->ts);
            if (s->dump)
                pcap_dump((u_char *)s->dump, h, data);
            mt_decoder_packet(d, s->dlt, last_ts, *num, data, h->caplen, h->len, cb, ud);
            if (limit && *num >= limit)
                break;
            if (!s->live && tick && file_records % FILE_TICK_RECORDS == 0)
                tick(tick_ud, last_ts);
        } else if (r == 0) {
            /* live timeout: nothing arrived */
        } else if (r == PCAP_ERROR_BREAK) {
            break; /* end of file, or mt_source_stop */
        } else {
            if (!s->classic && s->fp && !s->is_stdin && !s->live)
                off = ftell(s->fp); /* pcapng: where reading stopped */
            const char *why = s->windowed ? s->merr : pcap_geterr(s->p);
            if (s->live)
                snprintf(err, errlen, "%s: %s", s->name, why);
            else if (strstr(why, "different from the type of the first interface"))
                /* not damage: libpcap reads one link type per pcapng section */
                snprintf(err, errlen,
                         "%s: not supported, after %llu records: interfaces with different "
                         "link types in one section (%s); split the file by interface, e.g. "
                         "with tshark -r FILE -Y frame.interface_id==N -w OUT",
                         s->name, (unsigned long long)file_records, why);
            else if (off >= 0)
                snprintf(err, errlen, "%s: damaged at byte offset %ld, after %llu records: %s",
                         s->name, off, (unsigned long long)file_records, why);
            else
                snprintf(err, errlen, "%s: damaged after %llu records: %s", s->name,
                         (unsigned long long)file_records, why);
            return MT_CAP_ERR_READ;
        }
        if (s->live && tick) {
            int64_t now = wall_us();
            if (now - last_tick >= LIVE_TIMEOUT_MS * 1000) {
                last_tick = now;
                if (s->dump)
                    pcap_dump_flush(s->dump);
                tick(tick_ud, now);
            }
        }
    }
    (void)last_ts;
    return MT_CAP_OK;
}

int mt_source_run(struct mt_source *s, struct mt_decoder *d, uint64_t *num, uint64_t limit,
                  mt_packet_cb cb, void *ud, mt_tick_cb tick, void *tick_ud, char *err,
                  size_t errlen)
{
    if (limit && *num >= limit)
        return MT_CAP_OK; /* -c reached in an earlier file */
    /* where the next record starts: computed for classic pcap (24-byte file
     * header, 16-byte record headers) rather than asked of the stream,
     * which costs a system call per packet */
    long off = s->classic ? 24 : -1;
    int rc = run_loop(s, d, num, limit, cb, ud, tick, tick_ud, err, errlen, off);
    if (s->windowed)
        win_unpin(s);
    return rc;
}

void mt_source_set_window_cb(struct mt_source *s, mt_window_cb cb, void *ud)
{
    win_unpin(s);
    s->wcb = cb;
    s->wud = ud;
}

bool mt_source_stats(struct mt_source *s, uint64_t *recv, uint64_t *drop, uint64_t *ifdrop)
{
    struct pcap_stat st;
    if (!s->live || pcap_stats(s->p, &st) != 0)
        return false;
    *recv = st.ps_recv;
    *drop = st.ps_drop;
    *ifdrop = st.ps_ifdrop;
    return true;
}

void mt_source_close(struct mt_source *s)
{
    if (!s)
        return;
    if (s->dump) {
        pcap_dump_flush(s->dump);
        pcap_dump_close(s->dump);
    }
    win_drop(s);
    if (s->has_prog)
        pcap_freecode(&s->prog);
    if (s->p)
        pcap_close(s->p); /* closes fp too */
    else if (s->fp && !s->is_stdin)
        fclose(s->fp);
    g_free(s->iobuf);
    g_free(s->wbuf);
    g_free(s->name);
    g_free(s);
}

int mt_list_devices(FILE *out, char *err, size_t errlen)
{
    pcap_if_t *all;
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    if (pcap_findalldevs(&all, ebuf) != 0) {
        snprintf(err, errlen, "cannot list interfaces: %s", ebuf);
        return MT_CAP_ERR_OPEN;
    }
    int i = 0;
    for (pcap_if_t *d = all; d; d = d->next)
        fprintf(out, "%d.%s%s%s%s\n", ++i, d->name, d->description ? " (" : "",
                d->description ? d->description : "", d->description ? ")" : "");
    pcap_freealldevs(all);
    return MT_CAP_OK;
}

int mt_capture_read_file(const char *path, struct mt_decoder *d, uint64_t *num_base,
                         mt_packet_cb cb, void *ud, char *err, size_t errlen)
{
    struct mt_source *s;
    int rc = mt_source_open_file(&s, path, err, errlen);
    if (rc != MT_CAP_OK)
        return rc;
    rc = mt_source_run(s, d, num_base, 0, cb, ud, NULL, NULL, err, errlen);
    mt_source_close(s);
    return rc;
}
