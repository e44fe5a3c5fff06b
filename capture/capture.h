/* The libpcap front end: capture files (pcap, pcapng, "-" for stdin) and,
 * later, live interfaces; link layers, IPv4 (with fragment reassembly),
 * IPv6 (with extension headers) and TCP, down to one struct mt_packet per
 * TCP segment. */
#ifndef MT_CAPTURE_H
#define MT_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event.h"
#include "caps.h"

#define MT_TH_FIN 0x01
#define MT_TH_SYN 0x02
#define MT_TH_RST 0x04
#define MT_TH_PSH 0x08
#define MT_TH_ACK 0x10

struct mt_packet {
    uint64_t num;             /* 1-based, across all inputs */
    int64_t ts_us;
    struct mt_endpoint src, dst;
    uint32_t seq, ack;
    uint8_t flags;            /* MT_TH_* */
    uint16_t win;
    const uint8_t *payload;   /* captured payload bytes */
    uint32_t len;
    uint32_t missing;         /* payload bytes the snap length cut off */
};

typedef void (*mt_packet_cb)(void *ud, const struct mt_packet *p);

/* Counters of what the front end saw. */
struct mt_capture_stats {
    uint64_t packets;         /* records read */
    uint64_t bytes;           /* captured bytes read */
    uint64_t tcp;             /* TCP segments handed on */
    uint64_t non_tcp;         /* other IP protocols, ARP ... */
    uint64_t bad;             /* malformed headers (bad_packet) */
    uint64_t truncated;       /* TCP segments cut by the snap length */
    uint64_t unsupported_link;/* records of a link type we do not decode */
    uint64_t frag_reassembled;/* IPv4 datagrams rebuilt from fragments */
    uint64_t frag_incomplete; /* IPv4 datagrams whose fragments never completed */
    uint64_t frag_overflow;   /* fragments dropped: too many datagrams pending */
};

/* The link-layer and IP decoder, with its IPv4 fragment table.  No global
 * state: one per input stream of packets. */
struct mt_decoder;

struct mt_decoder *mt_decoder_new(const struct mt_limits *lim);
void mt_decoder_free(struct mt_decoder *d);
/* Decodes one record of link type dlt (DLT_* / LINKTYPE_* values). */
void mt_decoder_packet(struct mt_decoder *d, int dlt, int64_t ts_us, uint64_t num,
                       const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                       mt_packet_cb cb, void *ud);
const struct mt_capture_stats *mt_decoder_stats(const struct mt_decoder *d);
/* End of input: IPv4 fragment sets still waiting are counted incomplete. */
void mt_decoder_flush(struct mt_decoder *d);
/* Whether dlt is a link type the decoder understands. */
bool mt_decoder_supports(int dlt);

/* Reading capture files. */
enum mt_capture_err {
    MT_CAP_OK = 0,
    MT_CAP_ERR_OPEN = -1,     /* missing, unreadable, not a capture */
    MT_CAP_ERR_READ = -2,     /* damaged part-way: what came before was handed on */
    MT_CAP_ERR_PERM = -3,     /* not allowed to capture on the interface */
    MT_CAP_ERR_FILTER = -4,   /* the BPF filter does not compile */
};

/* A source of packets: a capture file or a live interface (source.c). */
struct mt_source;

/* A regular file is read as far as it went when opened, whatever another
 * program writing it adds later, in either format and whichever way it is
 * read (a record cut there is a truncated file, as one cut at the end);
 * "-", pipes and devices to their end. */
int mt_source_open_file(struct mt_source **out, const char *path, char *err, size_t errlen);
/* As mt_source_open_file, but a regular file is read no further than its
 * first upto bytes either: the threads of --workers, each opening the same
 * file at its own time, are given its size at the start and so all stop
 * at the same record.  MT_SOURCE_WHOLE: its size when opened. */
#define MT_SOURCE_WHOLE UINT64_MAX
int mt_source_open_file_upto(struct mt_source **out, const char *path, uint64_t upto, char *err,
                             size_t errlen);
/* snaplen 0: the default (262144, never truncates mail). */
int mt_source_open_live(struct mt_source **out, const char *iface, int snaplen, bool promisc,
                        char *err, size_t errlen);
int mt_source_set_filter(struct mt_source *s, const char *bpf, char *err, size_t errlen);
/* mt_source_open_file_upto, then mt_source_set_filter when bpf is not
 * NULL: each file of a run, as the command and each --workers thread open
 * it.  On a bad filter (MT_CAP_ERR_FILTER) *out is open, for the caller to
 * close. */
int mt_source_open_filtered(struct mt_source **out, const char *path, uint64_t upto,
                            const char *bpf, char *err, size_t errlen);
/* Also writes every packet that passes the filter to a pcap file (-w). */
int mt_source_dump_to(struct mt_source *s, const char *path, char *err, size_t errlen);

/* Called between packets: at least every 100 ms on a live interface, every
 * few thousand records on a file.  now_us: wall clock (live) or the last
 * packet's time (file). */
typedef void (*mt_tick_cb)(void *ud, int64_t now_us);

/* A capture file read through a window (classic pcap) tells cb of each
 * window: the packets' bytes in [lo, hi) stay as they are until the next
 * call, which is (NULL, NULL) before the window's buffer is refilled, at
 * the latest when mt_source_run returns.  (A file cut short by another
 * program while it is read is reported as damaged, see source.c.)  Other
 * sources never call it. */
typedef void (*mt_window_cb)(void *ud, const uint8_t *lo, const uint8_t *hi);
void mt_source_set_window_cb(struct mt_source *s, mt_window_cb cb, void *ud);

/* Reads until the end of the file, until *num (the records read so far,
 * counted across the files of a run) reaches limit (-c; 0: no limit), or
 * until mt_source_stop.  Returns MT_CAP_OK or MT_CAP_ERR_READ (err names
 * the file and offset; what came before was handed on). */
int mt_source_run(struct mt_source *s, struct mt_decoder *d, uint64_t *num, uint64_t limit,
                  mt_packet_cb cb, void *ud, mt_tick_cb tick, void *tick_ud, char *err,
                  size_t errlen);
/* Async-signal-safe: makes mt_source_run return soon. */
void mt_source_stop(struct mt_source *s);
/* Bytes read so far and the file's size (0 when unknown: stdin, live). */
void mt_source_position(const struct mt_source *s, uint64_t *pos, uint64_t *size);
/* Kernel counters of a live capture (pcap_stats); false if unavailable. */
bool mt_source_stats(struct mt_source *s, uint64_t *recv, uint64_t *drop, uint64_t *ifdrop);
void mt_source_close(struct mt_source *s);

/* Prints the interfaces libpcap can capture on (-D). */
int mt_list_devices(FILE *out, char *err, size_t errlen);

/* Reads every record of path ("-": standard input) and hands each TCP
 * segment to cb.  num_base is the number of records read from earlier
 * files.  On error, err holds a message naming the file (and the byte
 * offset where known).  Records read before damage are handed on. */
int mt_capture_read_file(const char *path, struct mt_decoder *d, uint64_t *num_base,
                         mt_packet_cb cb, void *ud, char *err, size_t errlen);

#endif
