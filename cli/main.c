/* The mailtap command: options, wiring of the pipeline, exit codes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "capture.h"
#include "engine.h"
#include "mime.h"
#include "output.h"

enum { EXIT_OK = 0, EXIT_USAGE = 1, EXIT_INPUT = 2 };

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: mailtap -r FILE [-r FILE ...] [options]\n"
            "Passive SMTP, POP3 and IMAP analyzer: reassembles TCP streams from packet\n"
            "captures and shows every command, reply, credential and message.\n"
            "\n"
            "Input:\n"
            "  -r, --read FILE        read a pcap or pcapng file ('-' for standard input);\n"
            "                         may be given several times\n"
            "Output (default: readable transcript on standard output):\n"
            "  -j, --json             JSON Lines, one object per event\n"
            "      --credentials      only a table of the credentials found\n"
            "      --redact           mask passwords, tokens and hashes in every output\n"
            "  -x, --extract DIR      save each message (.eml) and attachment under DIR\n"
            "      --write-streams DIR  save each session's reassembled byte streams\n"
            "                         (DIR/<session>-c2s.bin, DIR/<session>-s2c.bin)\n"
            "Limits (see docs/caps.md):\n"
            "      --cap NAME=VALUE   change a cap, e.g. --cap line_max=16384\n"
            "      --list-caps        print every cap with its value and exit\n"
            "Other:\n"
            "  -q, --quiet            no warnings on standard error\n"
            "  -h, --help             this help\n"
            "  -V, --version          print the version\n"
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

struct run {
    struct mt_engine *engine;
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "read", required_argument, NULL, 'r' },
        { "json", no_argument, NULL, 'j' },
        { "extract", required_argument, NULL, 'x' },
        { "credentials", no_argument, NULL, 'C' },
        { "redact", no_argument, NULL, 'R' },
        { "write-streams", required_argument, NULL, 'W' },
        { "cap", required_argument, NULL, 'K' },
        { "list-caps", no_argument, NULL, 'L' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    struct mt_limits lim;
    mt_limits_default(&lim);
    struct mt_output_opts oo = { 0 };
    GPtrArray *inputs = g_ptr_array_new();
    const char *streams_dir = NULL;
    bool quiet = false, listcaps = false;
    int c;

    while ((c = getopt_long(argc, argv, "r:jx:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'r': g_ptr_array_add(inputs, optarg); break;
        case 'j': oo.format = MT_FMT_JSON; break;
        case 'x': oo.extract_dir = optarg; break;
        case 'C': oo.format = MT_FMT_CREDENTIALS; break;
        case 'R': oo.redact = true; break;
        case 'W': streams_dir = optarg; break;
        case 'K':
            if (!set_cap(&lim, optarg)) {
                fprintf(stderr, "mailtap: bad --cap '%s' (see --list-caps)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'L': listcaps = true; break;
        case 'q': quiet = true; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("mailtap %s\n", MAILTAP_VERSION); return EXIT_OK;
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
    if (inputs->len == 0) {
        fprintf(stderr, "mailtap: no input: give a capture file with -r FILE\n");
        usage(stderr);
        return EXIT_USAGE;
    }

    mt_mime_global_init();
    char err[512];
    struct mt_output *out = mt_output_new(&oo, err, sizeof(err));
    if (!out) {
        fprintf(stderr, "mailtap: cannot extract: %s\n", err);
        return EXIT_USAGE;
    }
    struct streams st = { 0 };
    struct mt_engine *eng = mt_engine_new(&lim, mt_output_event, out);
    if (streams_dir) {
        if (mkdir(streams_dir, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "mailtap: %s: %s\n", streams_dir, strerror(errno));
            return EXIT_USAGE;
        }
        st.dir = (char *)streams_dir;
        st.files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, close_file);
        mt_engine_set_stream_hook(eng, stream_write, &st);
    }

    int rc = EXIT_OK;
    uint64_t num = 0;
    struct mt_decoder *dec = mt_decoder_new(&lim);
    for (guint i = 0; i < inputs->len; i++) {
        const char *path = g_ptr_array_index(inputs, i);
        int r = mt_capture_read_file(path, dec, &num, mt_engine_packet, eng, err, sizeof(err));
        if (r != MT_CAP_OK) {
            fprintf(stderr, "mailtap: %s\n", err);
            rc = EXIT_INPUT;
        }
    }
    mt_engine_finish(eng);
    mt_output_finish(out);
    fflush(stdout);

    const struct mt_capture_stats *cs = mt_decoder_stats(dec);
    if (!quiet && (cs->bad || cs->frag_incomplete || cs->unsupported_link))
        fprintf(stderr,
                "mailtap: %llu malformed packets, %llu incomplete IPv4 fragment sets, "
                "%llu records of an unsupported link type\n",
                (unsigned long long)cs->bad, (unsigned long long)cs->frag_incomplete,
                (unsigned long long)cs->unsupported_link);
    mt_decoder_free(dec);
    mt_engine_free(eng);
    mt_output_free(out);
    if (st.files)
        g_hash_table_destroy(st.files);
    g_ptr_array_free(inputs, TRUE);
    return rc;
}
