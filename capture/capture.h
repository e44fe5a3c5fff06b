/* The libpcap front end: capture files (pcap, pcapng, "-" for stdin) and,
 * later, live interfaces; link layers, IPv4 (with fragment reassembly),
 * IPv6 (with extension headers) and TCP, down to one struct mt_packet per
 * TCP segment. */
#ifndef MT_CAPTURE_H
#define MT_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
/* Also usable on a bare IPv4 or IPv6 datagram (the Wireshark plugin). */
void mt_decoder_ip(struct mt_decoder *d, int64_t ts_us, uint64_t num, const uint8_t *data,
                   uint32_t caplen, uint32_t wirelen, mt_packet_cb cb, void *ud);
const struct mt_capture_stats *mt_decoder_stats(const struct mt_decoder *d);
/* Whether dlt is a link type the decoder understands. */
bool mt_decoder_supports(int dlt);

/* Reading capture files. */
enum mt_capture_err {
    MT_CAP_OK = 0,
    MT_CAP_ERR_OPEN = -1,     /* missing, unreadable, not a capture */
    MT_CAP_ERR_READ = -2,     /* damaged part-way: what came before was handed on */
};

/* Reads every record of path ("-": standard input) and hands each TCP
 * segment to cb.  num_base is the number of records read from earlier
 * files.  On error, err holds a message naming the file (and the byte
 * offset where known).  Records read before damage are handed on. */
int mt_capture_read_file(const char *path, struct mt_decoder *d, uint64_t *num_base,
                         mt_packet_cb cb, void *ud, char *err, size_t errlen);

#endif
