/* The mailtap command: options, wiring of the pipeline, exit codes. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>
#ifdef MAILTAP_MIMALLOC
#include <mimalloc.h>
#endif

#include "capture.h"
#include "engine.h"
#include "heap.h"
#include "html.h"
#include "message.h"
#include "mime.h"
#include "output.h"
#include "pipeline.h"
#include "workers.h"

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_INPUT = 2 };

/* The version, and the malloc it runs on (for bug reports and bench/). */
static void print_version(void)
{
    printf("mailtap %s\n", MAILTAP_VERSION);
#ifdef MAILTAP_MIMALLOC
    int v = mi_version();
    printf("malloc: mimalloc %d.%d.%d\n", v / 100, v / 10 % 10, v % 10);
#else
    printf("malloc: glibc\n");
#endif
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mailtap -r FILE [-r FILE ...] [options]\n"
            "       mailtap -i IFACE [-f FILTER] [-w FILE] [options]\n"
            "Passive SMTP, POP3 and IMAP analyzer: reassembles TCP streams from packet\n"
            "captures and shows every command, reply, credential and message.\n"
            "\n"
            "Input (one of):\n"
            "  -r, --read FILE        read a pcap or pcapng file ('-' for standard input);\n"
            "                         may be given several times\n"
            "  -i, --interface IFACE  capture live on IFACE ('any' for all); see -D\n"
            "  -D, --list-interfaces  list the interfaces that can be captured on\n"
            "Capture:\n"
            "  -f, --filter EXPR      BPF filter (tcpdump syntax), also applied to files\n"
            "  -p, --no-promiscuous   do not put the interface into promiscuous mode\n"
            "  -s, --snaplen N        bytes captured per packet (default 262144: never cuts mail)\n"
            "  -c, --count N          stop after N packets\n"
            "      --duration SEC     stop a live capture after SEC seconds\n"
            "  -w, --write FILE       also write the raw packets to a pcap file\n"
            "  -Z, --user USER        drop root privileges to USER after opening the interface\n"
            "Output (default: readable transcript on standard output):\n"
            "  -j, --json             JSON Lines, one object per event\n"
            "      --credentials      only a table of the credentials found\n"
            "      --redact           mask passwords, tokens and hashes in every output\n"
            "  -x, --extract DIR      save each message (.eml) and attachment under DIR\n"
            "      --html FILE        also write a self-contained HTML report (sessions,\n"
            "                         ladder diagrams, messages)\n"
            "      --write-streams DIR  save each session's reassembled byte streams\n"
            "                         (DIR/<session>-c2s.bin, DIR/<session>-s2c.bin)\n"
            "Limits (see docs/caps.md):\n"
            "      --cap NAME=VALUE   change a cap, e.g. --cap line_max=16384\n"
            "      --list-caps        print every cap with its value and exit\n"
            "Other:\n"
            "      --workers N        analyze capture files with N threads (flows sharded by\n"
            "                         address; events of different sessions interleave);\n"
            "                         --workers 1: one thread, without the message thread\n"
            "      --no-pipeline      analyze messages on the reading thread (by default,\n"
            "                         on a second one when reading files on several cores)\n"
            "      --no-summary       no closing summary\n"
            "  -q, --quiet            no progress or warnings on standard error\n"
            "  -h, --help             this help\n"
            "  -V, --version          print the version and the malloc it runs on\n"
            "\n"
            "Exit status: 0 success, 1 usage error, 2 input error (partial results printed).\n");
}

struct cap_def {
    const char *name;
    size_t off;
    bool is64;
    const char *desc;
};

#define CAP32(n, d) { #n, offsetof(struct mt_limits, n), false, d }
#define CAP64(n, d) { #n, offsetof(struct mt_limits, n), true, d }
static const struct cap_def cap_defs[] = {
    CAP32(line_max, "bytes in one command or reply line"),
    CAP32(reply_lines_max, "lines in one multi-line reply"),
    CAP32(pending_max, "commands awaiting a reply"),
    CAP64(literal_max, "bytes of one IMAP literal kept"),
    CAP64(message_max, "bytes of one message kept in memory"),
    CAP32(mime_depth_max, "MIME nesting depth"),
    CAP32(mime_parts_max, "MIME parts per message"),
    CAP32(header_max, "bytes of a message's header block"),
    CAP64(ooo_max, "out-of-order bytes buffered per flow direction"),
    CAP32(flows_max, "live TCP flows"),
    CAP32(idle_timeout, "seconds before an idle flow is closed"),
    CAP32(rcpt_max, "recipients per SMTP transaction"),
    CAP32(imap_nest_max, "nesting of IMAP parenthesised lists"),
    CAP32(auth_steps_max, "steps of one SASL exchange"),
    CAP64(unacked_max, "delivered bytes remembered to check retransmissions"),
    CAP32(ipfrag_max, "IPv4 datagrams in fragment reassembly"),
    CAP32(inflate_max, "IMAP sessions inflating COMPRESS=DEFLATE at once"),
    { NULL, 0, false, NULL },
};

static bool set_cap(struct mt_limits *lim, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq)
        return false;
    for (int i = 0; cap_defs[i].name; i++) {
        if (strlen(cap_defs[i].name) != (size_t)(eq - spec) ||
            strncmp(cap_defs[i].name, spec, (size_t)(eq - spec)) != 0)
            continue;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(eq + 1, &end, 10);
        if (errno || *end || end == eq + 1 || v == 0 || eq[1] == '-')
            return false;
        if (cap_defs[i].is64) {
            *(uint64_t *)((char *)lim + cap_defs[i].off) = v;
        } else {
            if (v > UINT32_MAX)
                return false;
            *(uint32_t *)((char *)lim + cap_defs[i].off) = (uint32_t)v;
        }
        return true;
    }
    return false;
}

static void list_caps(const struct mt_limits *lim)
{
    for (int i = 0; cap_defs[i].name; i++) {
        unsigned long long v = cap_defs[i].is64
                                   ? *(const uint64_t *)((const char *)lim + cap_defs[i].off)
                                   : *(const uint32_t *)((const char *)lim + cap_defs[i].off);
        printf("%-16s %12llu  %s\n", cap_defs[i].name, v, cap_defs[i].desc);
    }
}

/* --write-streams: one file per session and direction. */
struct streams {
    char *dir;
    GHashTable *files; /* "id-dir" -> FILE* */
    bool failed;
};

static void stream_write(void *ud, const struct mt_session_info *s, enum mt_dir dir,
                         const uint8_t *p, size_t n)
{
    struct streams *st = ud;
    char key[64];
    snprintf(key, sizeof(key), "%llu-%s.bin", (unsigned long long)s->id,
             dir == MT_C2S ? "c2s" : "s2c");
    FILE *f = g_hash_table_lookup(st->files, key);
    if (!f) {
        char *path = g_build_filename(st->dir, key, NULL);
        f = fopen(path, "wb");
        g_free(path);
        if (!f) {
            if (!st->failed)
                fprintf(stderr, "mailtap: %s/%s: %s\n", st->dir, key, strerror(errno));
            st->failed = true;
            return;
        }
        g_hash_table_insert(st->files, g_strdup(key), f);
    }
    fwrite(p, 1, n, f);
}

static void close_file(gpointer p)
{
    fclose(p);
}

/* The running capture, for the signal handler (the only process-wide
 * state, and it lives in the command, not in the engine). */
static struct mt_source *volatile running_source;
static struct mt_workers *volatile running_pool; /* workers reading files too */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (running_pool)
        mt_workers_stop(running_pool);
    if (running_source)
        mt_source_stop(running_source);
}

static void html_tee(void *ud, struct mt_event *ev)
{
    mt_html_event(ud, ev);
}

struct run {
    struct mt_engine *eng;
    struct mt_source *src;
    struct mt_decoder *dec;
    bool live, progress;
    int64_t deadline_us;   /* --duration, 0: none */
    int64_t started_us, last_progress_us;
    uint64_t done_bytes, total_bytes;
    uint64_t sessions_seen;
    bool workers;          /* --workers: the sessions are the workers' */
};

static void progress_line(struct run *r, bool final)
{
    int64_t now = g_get_real_time();
    if (!final && now - r->last_progress_us < 250000)
        return;
    r->last_progress_us = now;
    uint64_t pos = 0, size = 0;
    if (r->src)
        mt_source_position(r->src, &pos, &size);
    const struct mt_capture_stats *cs = mt_decoder_stats(r->dec);
    const struct mt_reasm_stats *rs = mt_engine_reasm_stats(r->eng);
    double secs = (double)(now - r->started_us) / 1e6;
    double mb = (double)cs->bytes / 1e6;
    fprintf(stderr, "\r\033[K");
    if (final)
        return;
    if (size)
        fprintf(stderr, "%5.1f%% %.0f/%.0f MB, ", 100.0 * (double)pos / (double)size,
                (double)pos / 1e6, (double)size / 1e6);
    if (r->workers) /* each worker counts its own sessions, in its own thread */
        fprintf(stderr, "%llu packets, %.1f MB/s", (unsigned long long)cs->packets,
                secs > 0 ? mb / secs : 0.0);
    else
        fprintf(stderr, "%llu packets, %llu sessions (%llu open), %.1f MB/s",
                (unsigned long long)cs->packets, (unsigned long long)rs->flows,
                (unsigned long long)rs->live, secs > 0 ? mb / secs : 0.0);
    fflush(stderr);
}

static void on_tick(void *ud, int64_t now_us)
{
    struct run *r = ud;
    if (r->live) {
        /* idle flows expire on a timer even when no packets arrive */
        mt_engine_expire(r->eng, now_us);
        if (r->deadline_us && now_us >= r->deadline_us)
            mt_source_stop(r->src);
    }
    if (r->progress)
        progress_line(r, false);
}

static bool drop_privileges(const char *user)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        fprintf(stderr, "mailtap: -Z %s: no such user\n", user);
        return false;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "mailtap: -Z %s: cannot drop privileges: %s\n", user, strerror(errno));
        return false;
    }
    if (setuid(0) == 0) { /* must not be able to get root back */
        fprintf(stderr, "mailtap: -Z %s: privileges were not dropped\n", user);
        return false;
    }
    return true;
}

static bool parse_count(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    enum { O_CRED = 256, O_REDACT, O_STREAMS, O_CAP, O_LISTCAPS, O_DURATION, O_NOSUMMARY,
           O_WORKERS, O_HTML, O_NOPIPELINE };
    static const struct option longopts[] = {
        { "read", required_argument, NULL, 'r' },
        { "interface", required_argument, NULL, 'i' },
        { "list-interfaces", no_argument, NULL, 'D' },
        { "filter", required_argument, NULL, 'f' },
        { "no-promiscuous", no_argument, NULL, 'p' },
        { "snaplen", required_argument, NULL, 's' },
        { "count", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, O_DURATION },
        { "write", required_argument, NULL, 'w' },
        { "user", required_argument, NULL, 'Z' },
        { "json", no_argument, NULL, 'j' },
        { "extract", required_argument, NULL, 'x' },
        { "credentials", no_argument, NULL, O_CRED },
        { "redact", no_argument, NULL, O_REDACT },
        { "write-streams", required_argument, NULL, O_STREAMS },
        { "cap", required_argument, NULL, O_CAP },
        { "list-caps", no_argument, NULL, O_LISTCAPS },
        { "no-summary", no_argument, NULL, O_NOSUMMARY },
        { "workers", required_argument, NULL, O_WORKERS },
        { "no-pipeline", no_argument, NULL, O_NOPIPELINE },
        { "html", required_argument, NULL, O_HTML },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct mt_limits lim;
    mt_limits_default(&lim);
    struct mt_output_opts oo = { 0 };
    GPtrArray *inputs = g_ptr_array_new();
    const char *streams_dir = NULL, *iface = NULL, *filter = NULL, *wfile = NULL,
               *user = NULL, *html_path = NULL;
    bool quiet = false, listcaps = false, promisc = true, summary = true, pipeline = true;
    bool workers_given = false;
    uint64_t snaplen = 0, count = 0, duration = 0, nworkers = 1;
    int c;

    while ((c = getopt_long(argc, argv, "r:i:Df:ps:c:w:Z:jx:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': g_ptr_array_add(inputs, optarg); break;
        case 'i': iface = optarg; break;
        case 'D': {
            char err[256];
            if (mt_list_devices(stdout, err, sizeof(err)) != MT_CAP_OK) {
                fprintf(stderr, "mailtap: %s\n", err);
                return EXIT_INPUT;
            }
            return EXIT_OK;
        }
        case 'f': filter = optarg; break;
        case 'p': promisc = false; break;
        case 's':
            if (!parse_count(optarg, &snaplen) || snaplen > 262144) {
                fprintf(stderr, "mailtap: bad snap length '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'c':
            if (!parse_count(optarg, &count) || count == 0) {
                fprintf(stderr, "mailtap: bad count '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_DURATION:
            if (!parse_count(optarg, &duration) || duration == 0) {
                fprintf(stderr, "mailtap: bad duration '%s'\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'w': wfile = optarg; break;
        case 'Z': user = optarg; break;
        case 'j': oo.format = MT_FMT_JSON; break;
        case 'x': oo.extract_dir = optarg; break;
        case O_CRED: oo.format = MT_FMT_CREDENTIALS; break;
        case O_REDACT: oo.redact = true; break;
        case O_STREAMS: streams_dir = optarg; break;
        case O_CAP:
            if (!set_cap(&lim, optarg)) {
                fprintf(stderr, "mailtap: bad --cap '%s' (see --list-caps)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_LISTCAPS: listcaps = true; break;
        case O_NOSUMMARY: summary = false; break;
        case O_HTML: html_path = optarg; break;
        case O_WORKERS:
            workers_given = true;
            if (!parse_count(optarg, &nworkers) || nworkers == 0 || nworkers > 64) {
                fprintf(stderr, "mailtap: bad --workers '%s' (1 to 64)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case O_NOPIPELINE: pipeline = false; break;
        case 'q': quiet = true; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': print_version(); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (listcaps) {
        list_caps(&lim);
        return EXIT_OK;
    }
    if (optind < argc) {
        fprintf(stderr, "mailtap: unexpected argument '%s' (input files are given with -r)\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (inputs->len == 0 && !iface) {
        fprintf(stderr, "mailtap: no input: give a capture file with -r FILE or an interface "
                        "with -i IFACE\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (inputs->len > 0 && iface) {
        fprintf(stderr, "mailtap: -r and -i cannot be used together\n");
        return EXIT_USAGE;
    }
    if (nworkers > 1 && (iface || streams_dir)) {
        fprintf(stderr, "mailtap: --workers is for capture files, without --write-streams\n");
        return EXIT_USAGE;
    }
    if (wfile && inputs->len > 1) {
        fprintf(stderr, "mailtap: -w takes one input\n");
        return EXIT_USAGE;
    }

    char err[1024];
    struct run r = { 0 };
    r.live = iface != NULL;
    r.progress = !quiet && isatty(STDERR_FILENO);
    r.started_us = g_get_real_time();
    if (iface) {
        /* open the interface first: -Z drops root right after */
        int rc = mt_source_open_live(&r.src, iface, (int)snaplen, promisc, err, sizeof(err));
        if (rc == MT_CAP_OK && filter)
            rc = mt_source_set_filter(r.src, filter, err, sizeof(err));
        if (rc == MT_CAP_OK && wfile)
            rc = mt_source_dump_to(r.src, wfile, err, sizeof(err));
        if (rc != MT_CAP_OK) {
            fprintf(stderr, "mailtap: %s\n", err);
            mt_source_close(r.src);
            return rc == MT_CAP_ERR_FILTER ? EXIT_USAGE : EXIT_INPUT;
        }
        if (!quiet)
            fprintf(stderr, "mailtap: capturing on %s%s%s\n", iface, filter ? ", filter " : "",
                    filter ? filter : "");
        oo.flush_each = true; /* show each event as it happens */
    }
    if (user && oo.extract_dir && getuid() == 0) {
        /* -x under -Z: make the directory the user's before root is gone */
        struct passwd *pw = getpwnam(user);
        if (pw && mkdir(oo.extract_dir, 0755) == 0 &&
            chown(oo.extract_dir, pw->pw_uid, pw->pw_gid) != 0)
            fprintf(stderr, "mailtap: %s: %s\n", oo.extract_dir, strerror(errno));
    }
    if (user && !drop_privileges(user)) {
        mt_source_close(r.src);
        return EXIT_USAGE;
    }

    mt_heap_setup();
#ifndef MAILTAP_MIMALLOC
    /* With glibc's malloc: buffers over 1 MiB (GMime's, besides the
     * message buffers mapped by mt_buf_alloc) are mapped and unmapped,
     * never kept in a heap: glibc otherwise raises this threshold as they
     * are freed, and each thread's heap then keeps its high-water mark of
     * them (with the message thread, two heaps). */
    mallopt(M_MMAP_THRESHOLD, MT_MSGBUF_KEEP);
#endif
    mt_mime_global_init();
    struct mt_html *html = NULL;
    if (html_path) {
        html = mt_html_new(html_path, oo.extract_dir, oo.redact, err, sizeof(err));
        if (!html) {
            fprintf(stderr, "mailtap: --html: %s\n", err);
            mt_source_close(r.src);
            return EXIT_USAGE;
        }
        oo.tee = html_tee;
        oo.tee_ud = html;
    }
    struct mt_output *out = mt_output_new(&oo, err, sizeof(err));
    if (!out) {
        fprintf(stderr, "mailtap: cannot extract: %s\n", err);
        mt_source_close(r.src);
        return EXIT_USAGE;
    }
    struct streams st = { 0 };
    struct mt_workers *pool = NULL;
    uint64_t *upto = NULL; /* --workers on regular files: how far each is read */
    mt_packet_cb packet_cb = mt_engine_packet;
    void *packet_ud;
    /* Messages on a second thread (pipeline.h): same output, in the same
     * order.  Not for live capture, a terminal or --html, which want each
     * event at once or in the reading thread, nor for --credentials, which
     * gains nothing from it; --workers N asks for N threads exactly. */
    struct mt_pipeline *pipe = NULL;
    if (pipeline && !r.live && !workers_given && !html && oo.format != MT_FMT_CREDENTIALS &&
        !isatty(STDOUT_FILENO) && g_get_num_processors() > 1) {
        pipe = mt_pipeline_new(out, &oo, err, sizeof(err));
        if (!pipe) {
            fprintf(stderr, "mailtap: %s\n", err);
            return EXIT_USAGE;
        }
    }
    r.eng = mt_engine_new(&lim, mt_output_event, pipe ? mt_pipeline_front(pipe) : out);
    if (pipe)
        mt_engine_set_defer(r.eng, mt_pipeline_defer, pipe);
    packet_ud = r.eng;
    if (nworkers > 1) {
        /* every worker reads the files itself when they are regular files
         * (workers.c); standard input and pipes go through the rings, and
         * so does anything with MAILTAP_WORKERS_RING=1 (for comparing) */
        const char *ring = getenv("MAILTAP_WORKERS_RING");
        bool own = !(ring && *ring && strcmp(ring, "0") != 0);
        /* each file's size now: no thread reads further, so that all stop
         * at the same record of a file another program is still writing */
        upto = g_new0(uint64_t, inputs->len);
        for (guint i = 0; i < inputs->len && own; i++) {
            struct stat sb;
            own = stat(g_ptr_array_index(inputs, i), &sb) == 0 && S_ISREG(sb.st_mode);
            if (own)
                upto[i] = (uint64_t)sb.st_size;
        }
        if (!own) {
            g_free(upto);
            upto = NULL;
        }
        struct mt_workers_files files = { .paths = (const char *const *)inputs->pdata,
                                          .upto = upto, .n = inputs->len, .filter = filter,
                                          .count = count };
        pool = mt_workers_new((unsigned)nworkers, &lim, &oo, own ? &files : NULL, err,
                              sizeof(err));
        if (!pool) {
            fprintf(stderr, "mailtap: cannot extract: %s\n", err);
            return EXIT_USAGE;
        }
        packet_cb = mt_workers_packet;
        packet_ud = pool;
        r.workers = true;
        running_pool = pool;
        if (stop_requested)
            mt_workers_stop(pool);
    }
    if (streams_dir) {
        if (mkdir(streams_dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "mailtap: %s: %s\n", streams_dir, strerror(errno));
            return EXIT_USAGE;
        }
        st.dir = (char *)streams_dir;
        st.files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, close_file);
        mt_engine_set_stream_hook(r.eng, stream_write, &st);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = EXIT_OK;
    uint64_t num = 0;
    r.dec = mt_decoder_new(&lim);
    if (r.live) {
        if (duration)
            r.deadline_us = g_get_real_time() + (int64_t)duration * G_USEC_PER_SEC;
        running_source = r.src;
        if (mt_source_run(r.src, r.dec, &num, count, mt_engine_packet, r.eng, on_tick, &r, err,
                          sizeof(err)) != MT_CAP_OK) {
            fprintf(stderr, "mailtap: %s\n", err);
            rc = EXIT_INPUT;
        }
        running_source = NULL;
    } else {
        for (guint i = 0; i < inputs->len && !stop_requested; i++) {
            const char *path = g_ptr_array_index(inputs, i);
            int orc = mt_source_open_filtered(&r.src, path, upto ? upto[i] : MT_SOURCE_WHOLE,
                                              filter, err, sizeof(err));
            if (orc == MT_CAP_OK && wfile)
                orc = mt_source_dump_to(r.src, wfile, err, sizeof(err));
            /* the engine that reads these packets where they lie: not the
             * workers' ring copies */
            void *window_eng = packet_cb == mt_engine_packet ? packet_ud
                                                             : mt_workers_reader_engine(pool);
            if (orc == MT_CAP_OK && window_eng)
                mt_source_set_window_cb(r.src, mt_engine_window, window_eng);
            if (orc == MT_CAP_OK) {
                running_source = r.src;
                orc = mt_source_run(r.src, r.dec, &num, count, packet_cb, packet_ud, on_tick, &r,
                                    err, sizeof(err));
                running_source = NULL;
            }
            if (orc != MT_CAP_OK) {
                if (r.progress)
                    progress_line(&r, true);
                fprintf(stderr, "mailtap: %s\n", err);
                rc = orc == MT_CAP_ERR_FILTER ? EXIT_USAGE : EXIT_INPUT;
            }
            if (r.src && i + 1 < inputs->len) {
                mt_source_close(r.src);
                r.src = NULL;
            }
            if (rc == EXIT_USAGE)
                break;
        }
    }
    if (r.progress)
        progress_line(&r, true);

    /* flush every open session: nothing read is lost */
    mt_decoder_flush(r.dec);
    mt_engine_finish(r.eng);
    mt_pipeline_finish(pipe);
    if (pool)
        mt_output_merge(out, mt_workers_finish(pool));
    mt_output_finish(out);
    if (html && !mt_html_finish(html, err, sizeof(err))) {
        fprintf(stderr, "mailtap: --html: %s\n", err);
        rc = rc ? rc : EXIT_INPUT;
    }

    const struct mt_capture_stats *cs = mt_decoder_stats(r.dec);
    struct mt_run_stats rst = { .packets = cs->packets, .bytes = cs->bytes, .tcp = cs->tcp,
                                .bad = cs->bad, .frag_incomplete = cs->frag_incomplete,
                                .frag_overflow = cs->frag_overflow, .live = r.live };
    if (r.live && r.src)
        mt_source_stats(r.src, &rst.recv, &rst.drop, &rst.ifdrop);
    if (summary && oo.format != MT_FMT_CREDENTIALS)
        mt_summary_print(mt_output_summary(out), &rst, oo.format == MT_FMT_JSON, stdout);
    else if (summary && r.live && !quiet)
        mt_summary_print(mt_output_summary(out), &rst, false, stderr);
    fflush(stdout);
    if (!quiet && (cs->bad || cs->frag_incomplete || cs->unsupported_link))
        fprintf(stderr,
                "mailtap: %llu malformed packets, %llu incomplete IPv4 fragment sets, "
                "%llu records of an unsupported link type\n",
                (unsigned long long)cs->bad, (unsigned long long)cs->frag_incomplete,
                (unsigned long long)cs->unsupported_link);
    mt_source_close(r.src);
    mt_decoder_free(r.dec);
    mt_engine_free(r.eng);
    mt_pipeline_free(pipe);
    running_pool = NULL;
    mt_workers_free(pool);
    g_free(upto);
    mt_output_free(out);
    mt_html_free(html);
    if (st.files)
        g_hash_table_destroy(st.files);
    g_ptr_array_free(inputs, TRUE);
    return rc;
}
