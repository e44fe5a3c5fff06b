/* Packet sources through libpcap: capture files (pcap, pcapng, "-") and
 * live interfaces, with an optional BPF filter and -w copy. */
#include "capture.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <stdint.h>
#include <time.h>

#include <glib.h>
#include <pcap/pcap.h>

#define MT_DEFAULT_SNAPLEN 262144
#define LIVE_TIMEOUT_MS 100
#define FILE_TICK_RECORDS 4096
#define FILE_IOBUF (256 * 1024)

struct mt_source {
    pcap_t *p;
    FILE *fp;             /* files: ours, closed by pcap_close */
    char *iobuf;          /* fp's stdio buffer, freed after fp is closed */
    char *name;           /* for messages */
    bool live, is_stdin;
    bool classic;         /* classic pcap: record offsets are computed, not asked */
    int dlt;
    uint64_t size;
    pcap_dumper_t *dump;
    volatile sig_atomic_t stop;
    int fd;               /* live: selectable descriptor, -1 if none */
};

static struct mt_source *source_new(const char *name)
{
    struct mt_source *s = g_new0(struct mt_source, 1);
    s->name = g_strdup(name);
    s->fd = -1;
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

int mt_source_open_file(struct mt_source **out, const char *path, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    bool is_stdin = strcmp(path, "-") == 0;
    struct mt_source *s = source_new(is_stdin ? "<stdin>" : path);
    s->is_stdin = is_stdin;
    *out = NULL;
    if (is_stdin) {
        s->fp = stdin;
    } else {
        s->fp = fopen(path, "rb");
        if (!s->fp) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            mt_source_close(s);
            return MT_CAP_ERR_OPEN;
        }
        /* libpcap reads each record with fread: a large stdio buffer means
         * one read(2) per 256 KiB instead of per 4 KiB (glibc ignores the
         * size unless given the buffer) */
        s->iobuf = g_malloc(FILE_IOBUF);
        setvbuf(s->fp, s->iobuf, _IOFBF, FILE_IOBUF);
        struct stat st;
        if (fstat(fileno(s->fp), &st) == 0 && S_ISREG(st.st_mode))
            s->size = (uint64_t)st.st_size;
        uint8_t m[4];
        if (s->size >= 4 && fread(m, 1, 4, s->fp) == 4) {
            uint32_t le = (uint32_t)m[0] | (uint32_t)m[1] << 8 | (uint32_t)m[2] << 16 |
                          (uint32_t)m[3] << 24;
            s->classic = le == 0xa1b2c3d4 || le == 0xd4c3b2a1 || le == 0xa1b23c4d ||
                         le == 0x4d3cb2a1;
        }
        rewind(s->fp);
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
    int rc = check_link(s, err, errlen);
    if (rc != MT_CAP_OK) {
        mt_source_close(s);
        return rc;
    }
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
    pcap_freecode(&prog);
    if (r != 0) {
        snprintf(err, errlen, "cannot set filter '%s': %s", bpf, pcap_geterr(s->p));
        return MT_CAP_ERR_FILTER;
    }
    return MT_CAP_OK;
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
    if (s->fp && !s->is_stdin && !s->live) {
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

int mt_source_run(struct mt_source *s, struct mt_decoder *d, uint64_t *num, uint64_t max_packets,
                  mt_packet_cb cb, void *ud, mt_tick_cb tick, void *tick_ud, char *err,
                  size_t errlen)
{
    uint64_t count = 0, file_records = 0;
    int64_t last_ts = 0, last_tick = wall_us();
    /* where the next record starts: computed for classic pcap (24-byte file
     * header, 16-byte record headers) rather than asked of the stream,
     * which costs a system call per packet */
    long off = s->classic ? 24 : -1;
    while (!s->stop) {
        struct pcap_pkthdr *h;
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
        } else {
            r = pcap_next_ex(s->p, &h, &data);
        }
        if (r == 1) {
            if (s->classic)
                off += 16 + (long)h->caplen;
            (*num)++;
            count++;
            file_records++;
            last_ts = ts_us(&h->ts);
            if (s->dump)
                pcap_dump((u_char *)s->dump, h, data);
            mt_decoder_packet(d, s->dlt, last_ts, *num, data, h->caplen, h->len, cb, ud);
            if (max_packets && count >= max_packets)
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
            if (s->live)
                snprintf(err, errlen, "%s: %s", s->name, pcap_geterr(s->p));
            else if (off >= 0)
                snprintf(err, errlen, "%s: damaged at byte offset %ld, after %llu records: %s",
                         s->name, off, (unsigned long long)file_records, pcap_geterr(s->p));
            else
                snprintf(err, errlen, "%s: damaged after %llu records: %s", s->name,
                         (unsigned long long)file_records, pcap_geterr(s->p));
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
    if (s->p)
        pcap_close(s->p); /* closes fp too */
    else if (s->fp && !s->is_stdin)
        fclose(s->fp);
    g_free(s->iobuf);
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
