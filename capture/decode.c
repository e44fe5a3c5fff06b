/* Link layers, IPv4 (fragments reassembled), IPv6 (extension headers) and
 * TCP, read through a checked cursor: nothing is read past caplen. */
#include "capture.h"
#include "caps.h"

#include <string.h>

#include <glib.h>

/* Link types as they appear in capture files (LINKTYPE_*) and as libpcap
 * reports them (DLT_*); both spellings are accepted. */
enum {
    LT_NULL = 0,
    LT_EN10MB = 1,
    LT_RAW_BSD = 12,     /* DLT_RAW on most systems */
    LT_RAW_OPENBSD = 14, /* DLT_RAW on OpenBSD */
    LT_RAW = 101,        /* LINKTYPE_RAW */
    LT_LOOP = 108,
    LT_LINUX_SLL = 113,
    LT_IPV4 = 228,
    LT_IPV6 = 229,
    LT_LINUX_SLL2 = 276,
};

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86dd
#define ETH_VLAN 0x8100
#define ETH_QINQ 0x88a8
#define ETH_QINQ_OLD 0x9100

#define FRAG_TIMEOUT_US ((int64_t)MT_CAP_IPFRAG_SECONDS * G_USEC_PER_SEC)

/* The checked cursor. */
struct cur {
    const uint8_t *p;
    uint32_t len;
};

static bool cur_has(const struct cur *c, uint32_t off, uint32_t n)
{
    return off <= c->len && n <= c->len - off;
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

struct frag {
    uint8_t src[4], dst[4];
    uint16_t id;
    uint8_t proto;
    int64_t first_us;
    uint32_t total;      /* 0 until the last fragment is seen */
    uint8_t *data;       /* MT_CAP_IPFRAG_BYTES */
    uint8_t hdr[60];     /* header of the first fragment */
    uint32_t hdr_len;
    uint8_t *seen;       /* one bit per payload byte already filled */
    uint32_t covered;    /* bits set in seen */
    struct frag *next;
};

struct mt_decoder {
    struct mt_limits lim;
    struct mt_capture_stats st;
    struct frag *frags;
    uint32_t nfrags;
};

struct mt_decoder *mt_decoder_new(const struct mt_limits *lim)
{
    struct mt_decoder *d = g_new0(struct mt_decoder, 1);
    d->lim = *lim;
    return d;
}

static void frag_free(struct frag *f)
{
    g_free(f->data);
    g_free(f->seen);
    g_free(f);
}

void mt_decoder_flush(struct mt_decoder *d)
{
    while (d->frags) {
        struct frag *f = d->frags;
        d->frags = f->next;
        d->st.frag_incomplete++;
        frag_free(f);
    }
    d->nfrags = 0;
}

void mt_decoder_free(struct mt_decoder *d)
{
    if (!d)
        return;
    mt_decoder_flush(d);
    g_free(d);
}

const struct mt_capture_stats *mt_decoder_stats(const struct mt_decoder *d)
{
    return &d->st;
}

bool mt_decoder_supports(int dlt)
{
    switch (dlt) {
    case LT_NULL: case LT_EN10MB: case LT_RAW_BSD: case LT_RAW_OPENBSD: case LT_RAW:
    case LT_LOOP: case LT_LINUX_SLL: case LT_IPV4: case LT_IPV6: case LT_LINUX_SLL2:
        return true;
    default:
        return false;
    }
}

struct pktctx {
    int64_t ts_us;
    uint64_t num;
    mt_packet_cb cb;
    void *ud;
};

/* TCP segment inside an IP payload.  avail: captured bytes of the IP
 * payload; declared: its length according to the IP header. */
static void decode_tcp(struct mt_decoder *d, const struct pktctx *x, struct mt_packet *pk,
                       const uint8_t *p, uint32_t avail, uint32_t declared)
{
    if (avail < 20 || declared < 20) {
        d->st.bad++;
        return;
    }
    uint32_t hl = (uint32_t)(p[12] >> 4) * 4;
    if (hl < 20 || hl > declared) {
        d->st.bad++;
        return;
    }
    pk->src.port = get16(p);
    pk->dst.port = get16(p + 2);
    pk->seq = get32(p + 4);
    pk->ack = get32(p + 8);
    pk->flags = p[13] & 0x3f;
    pk->win = get16(p + 14);
    uint32_t plen = declared - hl;
    if (avail >= hl) {
        uint32_t cap = avail - hl;
        pk->payload = p + hl;
        pk->len = cap < plen ? cap : plen;
    } else {
        pk->payload = p + avail;
        pk->len = 0;
    }
    pk->missing = plen - pk->len;
    if (pk->missing)
        d->st.truncated++;
    pk->num = x->num;
    pk->ts_us = x->ts_us;
    d->st.tcp++;
    x->cb(x->ud, pk);
}

static void frag_expire(struct mt_decoder *d, int64_t now)
{
    struct frag **pp = &d->frags;
    while (*pp) {
        struct frag *f = *pp;
        if (now - f->first_us > FRAG_TIMEOUT_US) {
            *pp = f->next;
            d->nfrags--;
            d->st.frag_incomplete++;
            frag_free(f);
        } else {
            pp = &f->next;
        }
    }
}

static void decode_ipv4(struct mt_decoder *d, const struct pktctx *x, const uint8_t *p,
                        uint32_t caplen);

/* An IPv4 fragment: store it; when the datagram is whole, decode it. */
static void ipv4_fragment(struct mt_decoder *d, const struct pktctx *x, const uint8_t *p,
                          uint32_t ihl, uint32_t total, uint32_t caplen)
{
    uint16_t fo = get16(p + 6);
    uint32_t off = (uint32_t)(fo & 0x1fff) * 8;
    bool more = (fo & 0x2000) != 0;
    uint32_t len = total - ihl;
    frag_expire(d, x->ts_us);
    if (caplen < total) { /* a cut fragment cannot be reassembled */
        d->st.frag_incomplete++;
        return;
    }
    if (off + len > MT_CAP_IPFRAG_BYTES - 60 || (more && len % 8)) {
        d->st.bad++;
        return;
    }
    struct frag *f;
    for (f = d->frags; f; f = f->next)
        if (f->id == get16(p + 4) && f->proto == p[9] && !memcmp(f->src, p + 12, 4) &&
            !memcmp(f->dst, p + 16, 4))
            break;
    if (!f) {
        if (d->nfrags >= d->lim.ipfrag_max) {
            d->st.frag_overflow++;
            return;
        }
        f = g_new0(struct frag, 1);
        memcpy(f->src, p + 12, 4);
        memcpy(f->dst, p + 16, 4);
        f->id = get16(p + 4);
        f->proto = p[9];
        f->first_us = x->ts_us;
        f->data = g_malloc(MT_CAP_IPFRAG_BYTES);
        f->seen = g_malloc0(MT_CAP_IPFRAG_BYTES / 8 + 1);
        f->next = d->frags;
        d->frags = f;
        d->nfrags++;
    }
    if (off == 0) {
        memcpy(f->hdr, p, ihl);
        f->hdr_len = ihl;
    }
    if (!more)
        f->total = off + len;
    /* first copy wins: only fill bytes no earlier piece covered */
    for (uint32_t i = off; i < off + len; i++) {
        if (f->seen[i >> 3] & (1u << (i & 7)))
            continue;
        f->seen[i >> 3] |= (uint8_t)(1u << (i & 7));
        f->covered++;
        f->data[60 + i] = p[ihl + i - off];
    }
    if (!f->hdr_len || f->total == 0 || f->covered < f->total)
        return;
    for (uint32_t i = 0; i < f->total; i++) /* bytes past the end may have counted */
        if (!(f->seen[i >> 3] & (1u << (i & 7))))
            return;
    /* rebuild one datagram: first fragment's header, then the payload */
    uint32_t hl = f->hdr_len;
    uint8_t *dg = f->data + 60 - hl;
    memcpy(dg, f->hdr, hl);
    uint32_t dtotal = hl + f->total;
    dg[2] = (uint8_t)(dtotal >> 8);
    dg[3] = (uint8_t)dtotal;
    dg[6] = 0;
    dg[7] = 0;
    /* unlink before decoding */
    struct frag **pp = &d->frags;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    d->nfrags--;
    d->st.frag_reassembled++;
    decode_ipv4(d, x, dg, dtotal);
    frag_free(f);
}

static void decode_ipv4(struct mt_decoder *d, const struct pktctx *x, const uint8_t *p,
                        uint32_t caplen)
{
    if (caplen < 20 || (p[0] >> 4) != 4) {
        d->st.bad++;
        return;
    }
    uint32_t ihl = (uint32_t)(p[0] & 0x0f) * 4;
    uint32_t total = get16(p + 2);
    if (ihl < 20 || total < ihl || caplen < ihl) {
        d->st.bad++;
        return;
    }
    if (get16(p + 6) & 0x3fff) { /* MF set or offset non-zero */
        if (p[9] != 6) {
            d->st.non_tcp++;
            return;
        }
        ipv4_fragment(d, x, p, ihl, total, caplen);
        return;
    }
    if (p[9] != 6) {
        d->st.non_tcp++;
        return;
    }
    struct mt_packet pk;
    memset(&pk, 0, sizeof(pk));
    pk.src.family = pk.dst.family = 4;
    memcpy(pk.src.addr, p + 12, 4);
    memcpy(pk.dst.addr, p + 16, 4);
    uint32_t avail = (caplen < total ? caplen : total) - ihl;
    decode_tcp(d, x, &pk, p + ihl, avail, total - ihl);
}

static void decode_ipv6(struct mt_decoder *d, const struct pktctx *x, const uint8_t *p,
                        uint32_t caplen)
{
    struct cur c = { p, caplen };
    if (!cur_has(&c, 0, 40) || (p[0] >> 4) != 6) {
        d->st.bad++;
        return;
    }
    uint32_t declared = get16(p + 4); /* payload length, extension headers included */
    uint8_t nh = p[6];
    uint32_t off = 40;
    /* walk the extension headers (RFC 8200 4) */
    for (int guard = 0; guard < 16; guard++) {
        if (nh == 6)
            break;
        if (nh == 0 || nh == 43 || nh == 60 || nh == 135 || nh == 139 || nh == 140) {
            if (!cur_has(&c, off, 8)) {
                d->st.bad++;
                return;
            }
            uint32_t hl = ((uint32_t)p[off + 1] + 1) * 8;
            nh = p[off];
            off += hl;
        } else if (nh == 44) { /* fragment header */
            if (!cur_has(&c, off, 8)) {
                d->st.bad++;
                return;
            }
            uint16_t fo = get16(p + off + 2);
            if ((fo & 0xfff9) != 0) { /* a real fragment: not reassembled for IPv6 */
                d->st.frag_incomplete++;
                return;
            }
            nh = p[off];
            off += 8;
        } else if (nh == 51) { /* AH */
            if (!cur_has(&c, off, 8)) {
                d->st.bad++;
                return;
            }
            uint32_t hl = ((uint32_t)p[off + 1] + 2) * 4;
            nh = p[off];
            off += hl;
        } else {
            d->st.non_tcp++;
            return;
        }
    }
    if (nh != 6 || off > 40 + declared || off > caplen) {
        if (nh != 6)
            d->st.non_tcp++;
        else
            d->st.bad++;
        return;
    }
    struct mt_packet pk;
    memset(&pk, 0, sizeof(pk));
    pk.src.family = pk.dst.family = 6;
    memcpy(pk.src.addr, p + 8, 16);
    memcpy(pk.dst.addr, p + 24, 16);
    uint32_t end = 40 + declared;
    uint32_t avail = (caplen < end ? caplen : end) - off;
    decode_tcp(d, x, &pk, p + off, avail, end - off);
}

static void decode_by_version(struct mt_decoder *d, const struct pktctx *x, const uint8_t *p,
                              uint32_t caplen)
{
    if (caplen < 1) {
        d->st.bad++;
        return;
    }
    if ((p[0] >> 4) == 4)
        decode_ipv4(d, x, p, caplen);
    else if ((p[0] >> 4) == 6)
        decode_ipv6(d, x, p, caplen);
    else
        d->st.non_tcp++;
}

static void decode_ethertype(struct mt_decoder *d, const struct pktctx *x, uint16_t type,
                             const uint8_t *p, uint32_t caplen)
{
    struct cur c = { p, caplen };
    uint32_t off = 0;
    for (unsigned tags = 0; type == ETH_VLAN || type == ETH_QINQ || type == ETH_QINQ_OLD; tags++) {
        if (tags >= MT_CAP_VLAN_TAGS || !cur_has(&c, off, 4)) {
            d->st.bad++;
            return;
        }
        type = get16(p + off + 2);
        off += 4;
    }
    if (type == ETH_IPV4)
        decode_ipv4(d, x, p + off, caplen - off);
    else if (type == ETH_IPV6)
        decode_ipv6(d, x, p + off, caplen - off);
    else
        d->st.non_tcp++;
}

void mt_decoder_packet(struct mt_decoder *d, int dlt, int64_t ts_us, uint64_t num,
                       const uint8_t *data, uint32_t caplen, uint32_t wirelen,
                       mt_packet_cb cb, void *ud)
{
    struct pktctx x = { ts_us, num, cb, ud };
    struct cur c = { data, caplen };
    d->st.packets++;
    d->st.bytes += caplen;
    switch (dlt) {
    case LT_EN10MB:
        if (!cur_has(&c, 0, 14)) {
            d->st.bad++;
            return;
        }
        decode_ethertype(d, &x, get16(data + 12), data + 14, caplen - 14);
        return;
    case LT_LINUX_SLL:
        if (!cur_has(&c, 0, 16)) {
            d->st.bad++;
            return;
        }
        decode_ethertype(d, &x, get16(data + 14), data + 16, caplen - 16);
        return;
    case LT_LINUX_SLL2:
        if (!cur_has(&c, 0, 20)) {
            d->st.bad++;
            return;
        }
        decode_ethertype(d, &x, get16(data), data + 20, caplen - 20);
        return;
    case LT_NULL:
    case LT_LOOP: {
        if (!cur_has(&c, 0, 4)) {
            d->st.bad++;
            return;
        }
        /* the address family, in the capturing host's byte order for
         * DLT_NULL; the version nibble of the IP header decides anyway */
        decode_by_version(d, &x, data + 4, caplen - 4);
        return;
    }
    case LT_RAW_BSD:
    case LT_RAW_OPENBSD:
    case LT_RAW:
    case LT_IPV4:
    case LT_IPV6:
        decode_by_version(d, &x, data, caplen);
        return;
    default:
        d->st.unsupported_link++;
        return;
    }
}
