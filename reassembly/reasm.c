/* TCP flow table and stream reassembly; see reasm.h.
 *
 * Each direction keeps the next sequence number it expects, a sorted list
 * of out-of-order segments (first copy wins, capped), and the bytes it
 * delivered that the peer has not acknowledged yet, so that a
 * retransmission carrying different bytes is caught (overlap_conflict).
 * Sequence numbers are compared modulo 2^32 (RFC 9293 3.4). */
#include "reasm.h"

#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "caps.h"

#define SEQ_DIFF(a, b) ((int32_t)((uint32_t)(a) - (uint32_t)(b)))
/* An acknowledgement further ahead than this is not believed. */
#define ACK_SANITY (1u << 30)

struct seg {
    uint32_t seq;
    uint32_t len;
    bool hole;        /* bytes cut by the snap length: known missing */
    uint8_t data[];
};

struct stream {
    bool init;        /* next is known */
    bool fin;         /* FIN seen at fin_seq */
    bool done;        /* everything up to the FIN delivered */
    bool ack_valid;   /* peer_ack holds the peer's highest acknowledgement */
    bool overflowed;  /* ooo_overflow raised */
    uint32_t next;
    uint32_t fin_seq;
    uint32_t peer_ack;
    uint64_t off;     /* stream offset of next */
    /* out-of-order segments, sorted by seq and not overlapping, all after
     * next: ooo_v[ooo_h .. ooo_h + ooo_n) of an array of ooo_cap, so that
     * an insert finds its place by binary search and the front drains
     * without moving the rest */
    struct seg **ooo_v;
    uint32_t ooo_h, ooo_n, ooo_cap;
    uint64_t ooo_bytes;           /* payload (or hole) bytes + MT_OOO_SEG_COST each */
    /* delivered, not yet acknowledged: [hist_seq, next), the oldest
     * hist_len bytes copied into a ring of hist_cap bytes whose oldest byte
     * is at hist[hist_head], then ref_len bytes still in the window of the
     * capture, a list of references (ref_head..ref_tail, 1-based indices
     * into mt_reasm.refs, 0: none) */
    uint8_t *hist;
    uint32_t hist_len, hist_cap;
    uint32_t hist_head;
    uint32_t hist_seq;
    uint32_t ref_head, ref_tail, ref_len;
};

struct flowkey {
    uint8_t family;
    uint8_t a[16], b[16];
    uint16_t pa, pb;
    uint16_t zero; /* 40 bytes: hashed a word at a time */
};

struct flow {
    struct mt_flow pub;
    struct flowkey key;
    uint64_t hash;       /* of key */
    struct stream st[2]; /* data sent by the client, by the server */
    struct flow *prev, *next; /* LRU: head is the least recently seen */
    int64_t seen_us;     /* the capture clock at its last packet (reasm_clock) */
    uint32_t pin;        /* 1-based index in mt_reasm.pinned, 0: holds no reference */
};

/* Bytes of a stream's history still in the capture's window. */
struct href {
    const uint8_t *p;
    uint32_t n;
    uint32_t next; /* the same stream's next reference (1-based), 0: none */
};

/* A flow closed by FIN or RST, remembered for a while (TIME-WAIT, RFC 9293
 * 3.6.1) so that its late retransmissions do not open a new session. */
struct closed {
    struct flowkey key;
    int64_t closed_us;
    struct mt_endpoint client;
    uint32_t end[2];  /* next sequence number of each side at the close */
    struct closed *prev, *next; /* the order of closing, oldest first */
};

/* A drained history larger than this is given back (idle dialogues must
 * stay small), into a cache of at most MT_CAP_HIST_CACHE buffers that growing
 * histories take from: a bulk transfer drains and regrows its history at
 * every acknowledgement that catches up, and malloc, free and fresh pages
 * each time cost more than the copying. */
#define HIST_KEEP 256

/* Closed flows are remembered this long (MT_CAP_CLOSED_SECONDS), at most
 * MT_CAP_CLOSED_FLOWS of them. */
#define CLOSED_KEEP_US ((int64_t)MT_CAP_CLOSED_SECONDS * G_USEC_PER_SEC)

/* The live flows by key: open addressing, linear probing, at most half
 * full; a slot holds the key's hash and the flow (NULL: empty), and a
 * removal moves the slots after it back (no tombstones).  GLib's table,
 * with a call through a pointer for the hash and another for each key
 * compared, and keys, values and hashes in three arrays, was 3.6 % of all
 * samples on mixed-250M: one lookup for nearly every packet. */
struct fslot {
    uint64_t hash;
    struct flow *f;
};
struct ftab {
    struct fslot *s;
    size_t mask; /* slots - 1 (a power of two) */
    size_t n;
};
#define FTAB_MIN 64

struct mt_reasm {
    struct mt_limits lim;
    struct mt_reasm_ops ops;
    void *ud;
    struct ftab flows;
    struct flow *last;    /* the flow of the previous packet: segments come in bursts */
    GHashTable *closed;   /* flowkey -> struct closed (owned) */
    /* the same, oldest first: a list through the entries themselves, so
     * that a replaced one leaves it at once (a GQueue was searched from
     * its head, and took a node of its own per entry) */
    struct closed *closed_head, *closed_tail;
    unsigned nclosed;
    struct flow *lru_head, *lru_tail;
    struct mt_reasm_stats st;
    /* history buffers given back by drained or closed streams, for reuse */
    struct { uint8_t *p; uint32_t cap; } hcache[MT_CAP_HIST_CACHE];
    unsigned nhcache;
    /* mt_reasm_pin: bytes in [pin_lo, pin_hi) stay readable until the next
     * call, so a history refers to them instead of copying them; refs and
     * the flows holding some (pinned) last until then */
    uintptr_t pin_lo, pin_hi;
    struct href *refs;
    uint32_t nrefs, refs_cap;
    struct flow **pinned;
    uint32_t npinned, pinned_cap;
    /* the capture's clock for idle expiry (reasm_clock): never backwards,
     * and a leap past the idle timeout only once a second packet confirms */
    int64_t clock_us;
    bool clock_set;
    bool leap_seen;
};

/* Mixed into every key's hash, drawn once a process: which addresses and
 * ports land in the same slots cannot be worked out from the capture alone
 * (a capture of flows chosen to collide would make each lookup walk a long
 * run of slots).  Nothing printed depends on it. */
static uint64_t hash_seed;

static uint64_t key_hash64(const struct flowkey *fk)
{
    /* 64 bits at a time, multiply-xorshift mixed: the key is hashed for
     * every packet (FNV byte by byte cost 3% of the run) */
    G_STATIC_ASSERT(sizeof(struct flowkey) == 40);
    uint64_t h = 0x9e3779b97f4a7c15ull ^ hash_seed, w;
    const uint8_t *p = (const uint8_t *)fk;
    for (size_t i = 0; i < sizeof(*fk); i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    h ^= h >> 29;
    return h;
}

static guint key_hash(gconstpointer k)
{
    return (guint)key_hash64(k);
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(struct flowkey)) == 0;
}

/* ---- the live flows' table ---- */

static void ftab_init(struct ftab *t, size_t slots)
{
    t->s = g_new0(struct fslot, slots);
    t->mask = slots - 1;
    t->n = 0;
}

static struct flow *ftab_find(const struct ftab *t, const struct flowkey *k, uint64_t h)
{
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        struct flow *f = t->s[i].f;
        if (!f)
            return NULL;
        if (t->s[i].hash == h && key_equal(&f->key, k))
            return f;
    }
}

static void ftab_place(struct ftab *t, struct flow *f)
{
    size_t i = f->hash & t->mask;
    while (t->s[i].f)
        i = (i + 1) & t->mask;
    t->s[i].hash = f->hash;
    t->s[i].f = f;
    t->n++;
}

static void ftab_resize(struct ftab *t, size_t slots)
{
    struct fslot *old = t->s;
    size_t n = t->mask + 1;
    ftab_init(t, slots);
    for (size_t i = 0; i < n; i++)
        if (old[i].f)
            ftab_place(t, old[i].f);
    g_free(old);
}

static void ftab_insert(struct ftab *t, struct flow *f)
{
    if ((t->n + 1) * 2 > t->mask + 1)
        ftab_resize(t, (t->mask + 1) * 2);
    ftab_place(t, f);
}

static void ftab_remove(struct ftab *t, struct flow *f)
{
    size_t i = f->hash & t->mask;
    while (t->s[i].f != f) {
        g_assert(t->s[i].f);
        i = (i + 1) & t->mask;
    }
    /* move back each following slot whose home is not between the hole and it */
    for (size_t j = (i + 1) & t->mask; t->s[j].f; j = (j + 1) & t->mask) {
        size_t home = t->s[j].hash & t->mask;
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->s[i] = t->s[j];
            i = j;
        }
    }
    t->s[i].f = NULL;
    t->n--;
    /* given back after a burst of flows: at most an eighth full */
    if (t->mask + 1 > FTAB_MIN && t->n * 8 < t->mask + 1)
        ftab_resize(t, (t->mask + 1) / 2);
}

static void make_key(struct flowkey *k, const struct mt_packet *pk)
{
    memset(k, 0, sizeof(*k));
    k->family = pk->src.family;
    int c = memcmp(pk->src.addr, pk->dst.addr, 16);
    if (c < 0 || (c == 0 && pk->src.port <= pk->dst.port)) {
        memcpy(k->a, pk->src.addr, 16);
        memcpy(k->b, pk->dst.addr, 16);
        k->pa = pk->src.port;
        k->pb = pk->dst.port;
    } else {
        memcpy(k->a, pk->dst.addr, 16);
        memcpy(k->b, pk->src.addr, 16);
        k->pa = pk->dst.port;
        k->pb = pk->src.port;
    }
}

struct mt_reasm *mt_reasm_new(const struct mt_limits *lim, const struct mt_reasm_ops *ops,
                              void *ud)
{
    static gsize seeded;
    if (g_once_init_enter(&seeded)) {
        hash_seed = (uint64_t)g_random_int() << 32 | g_random_int();
        g_once_init_leave(&seeded, 1);
    }
    struct mt_reasm *r = g_new0(struct mt_reasm, 1);
    r->lim = *lim;
    r->ops = *ops;
    r->ud = ud;
    ftab_init(&r->flows, FTAB_MIN);
    r->closed = g_hash_table_new_full(key_hash, key_equal, NULL, g_free);
    return r;
}

const struct mt_reasm_stats *mt_reasm_stats(const struct mt_reasm *r)
{
    return &r->st;
}

/* Mail servers listen on these; the other end is the client. */
static bool port_is_server(uint16_t p)
{
    switch (p) {
    case 25: case 110: case 143: case 465: case 587: case 993: case 995: case 2525:
        return true;
    default:
        return false;
    }
}

/* Without a handshake: is the packet's source the client? */
static bool src_is_client(const struct mt_packet *pk)
{
    bool ss = port_is_server(pk->src.port), ds = port_is_server(pk->dst.port);
    if (ss != ds)
        return ds;
    if ((pk->src.port < 1024) != (pk->dst.port < 1024))
        return pk->dst.port < 1024;
    return pk->src.port >= pk->dst.port; /* ephemeral ports are the high ones */
}

/* ---- LRU ---- */

static void lru_unlink(struct mt_reasm *r, struct flow *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        r->lru_head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        r->lru_tail = f->prev;
    f->prev = f->next = NULL;
}

static void lru_append(struct mt_reasm *r, struct flow *f)
{
    f->prev = r->lru_tail;
    f->next = NULL;
    if (r->lru_tail)
        r->lru_tail->next = f;
    else
        r->lru_head = f;
    r->lru_tail = f;
}

/* ---- history of unacknowledged bytes ----
 *
 * A ring buffer: appending past the cap overwrites the oldest bytes and an
 * acknowledgement only moves the head, so no byte is moved once stored
 * (sliding a linear window by memmove cost 12% of all instructions on a
 * capture whose acknowledgements lag 256 KiB behind).  The ring grows
 * geometrically up to the cap; growing is the only time it is copied.
 *
 * Bytes delivered from the capture's window (mt_reasm_pin) are not
 * copied at all while the window stays: the history refers to them, and
 * most are acknowledged before the window moves.  What is still
 * unacknowledged then is copied into the ring (refs_settle), as is
 * everything before a retransmission is compared with it.  Copying every
 * delivered byte was the first touch of each packet's payload and about
 * 4 % of the reading thread's time (bench/README.md). */

/* Copies n bytes into the ring at logical position pos (from the head). */
static void hist_put(struct stream *s, uint32_t pos, const uint8_t *p, uint32_t n)
{
    uint32_t at = s->hist_head + pos;
    if (at >= s->hist_cap)
        at -= s->hist_cap;
    uint32_t k = MIN(n, s->hist_cap - at);
    memcpy(s->hist + at, p, k);
    if (n > k)
        memcpy(s->hist, p + k, n - k);
}

/* Compares n bytes of the ring at logical position pos with p. */
static bool hist_equal(const struct stream *s, uint32_t pos, const uint8_t *p, uint32_t n)
{
    uint32_t at = s->hist_head + pos;
    if (at >= s->hist_cap)
        at -= s->hist_cap;
    uint32_t k = MIN(n, s->hist_cap - at);
    if (memcmp(s->hist + at, p, k) != 0)
        return false;
    return n == k || memcmp(s->hist, p + k, n - k) == 0;
}

/* Advances the head past the k oldest bytes (k <= hist_len). */
static void hist_drop(struct stream *s, uint32_t k)
{
    s->hist_head += k;
    if (s->hist_head >= s->hist_cap)
        s->hist_head -= s->hist_cap;
    s->hist_len -= k;
}

/* Gives a history buffer back: into the cache if it is worth keeping. */
static void hist_release(struct mt_reasm *r, uint8_t *p, uint32_t cap)
{
    if (!p)
        return;
    if (cap > HIST_KEEP) {
        if (r->nhcache < MT_CAP_HIST_CACHE) {
            r->hcache[r->nhcache].p = p;
            r->hcache[r->nhcache].cap = cap;
            r->nhcache++;
            return;
        }
        for (unsigned i = 0; i < MT_CAP_HIST_CACHE; i++) { /* keep the larger ones */
            if (r->hcache[i].cap < cap) {
                uint8_t *old = r->hcache[i].p;
                r->hcache[i].p = p;
                r->hcache[i].cap = cap;
                p = old;
                break;
            }
        }
    }
    g_free(p);
}

/* A buffer of at least want bytes (and at most the largest size a history
 * may have): the smallest cached one that fits, or a new one of want. */
static uint8_t *hist_obtain(struct mt_reasm *r, uint32_t want, uint32_t *got)
{
    unsigned best = MT_CAP_HIST_CACHE;
    if (want > HIST_KEEP)
        for (unsigned i = 0; i < r->nhcache; i++)
            if (r->hcache[i].cap >= want &&
                (best == MT_CAP_HIST_CACHE || r->hcache[i].cap < r->hcache[best].cap))
                best = i;
    if (best == MT_CAP_HIST_CACHE) {
        *got = want;
        return g_malloc(want);
    }
    uint8_t *p = r->hcache[best].p;
    *got = r->hcache[best].cap;
    r->hcache[best] = r->hcache[--r->nhcache];
    return p;
}

/* The most a history holds. */
static uint32_t hist_max(const struct mt_reasm *r)
{
    return (uint32_t)MIN(r->lim.unacked_max, (uint64_t)UINT32_MAX / 2);
}

/* The ring emptied: a large one is given back (idle dialogues must stay
 * small, docs/caps.md). */
static void ring_empty(struct mt_reasm *r, struct stream *s)
{
    s->hist_len = 0;
    s->hist_head = 0;
    if (s->hist_cap > HIST_KEEP) {
        r->st.hist_held -= s->hist_cap;
        hist_release(r, s->hist, s->hist_cap);
        s->hist = NULL;
        s->hist_cap = 0;
    }
}

/* Copies n bytes after the ring's newest (the stream holds no references:
 * they would be older); past cap the oldest are forgotten. */
static void ring_push(struct mt_reasm *r, struct stream *s, const uint8_t *p, uint32_t n,
                      uint32_t cap)
{
    if (n >= cap) {
        p += n - cap;
        n = cap;
        s->hist_len = 0;
        s->hist_head = 0;
    }
    if (n > s->hist_cap - s->hist_len && s->hist_cap < cap) {
        /* start small: most flows are idle command dialogues, and 100,000
         * of them must fit (docs/caps.md) */
        uint32_t nc = MIN(s->hist_cap ? s->hist_cap : 64, cap);
        while (nc - s->hist_len < n && nc < cap)
            nc = nc > cap / 2 ? cap : nc * 2;
        uint8_t *nb = hist_obtain(r, nc, &nc); /* a cached one may be larger */
        if (s->hist_len) { /* straighten the ring into the new buffer */
            uint32_t k = MIN(s->hist_len, s->hist_cap - s->hist_head);
            memcpy(nb, s->hist + s->hist_head, k);
            memcpy(nb + k, s->hist, s->hist_len - k);
        }
        r->st.hist_held += nc - s->hist_cap;
        hist_release(r, s->hist, s->hist_cap);
        s->hist = nb;
        s->hist_cap = nc;
        s->hist_head = 0;
    }
    if (n > s->hist_cap - s->hist_len) /* full at the cap: forget the oldest */
        hist_drop(s, n - (s->hist_cap - s->hist_len));
    hist_put(s, s->hist_len, p, n);
    s->hist_len += n;
    r->st.hist_copied += n;
}

static void refs_forget(struct stream *s)
{
    s->ref_head = s->ref_tail = s->ref_len = 0;
}

/* Copies the stream's referenced bytes into its ring, oldest first. */
static void refs_settle(struct mt_reasm *r, struct stream *s)
{
    uint32_t cap = hist_max(r);
    for (uint32_t i = s->ref_head; i; i = r->refs[i - 1].next)
        ring_push(r, s, r->refs[i - 1].p, r->refs[i - 1].n, cap);
    refs_forget(s);
}

/* Both directions of f settled, and f out of the pinned list. */
static void flow_unpin(struct mt_reasm *r, struct flow *f, bool settle)
{
    if (!f->pin)
        return;
    if (settle) {
        refs_settle(r, &f->st[0]);
        refs_settle(r, &f->st[1]);
    }
    struct flow *last = r->pinned[--r->npinned];
    r->pinned[f->pin - 1] = last;
    last->pin = f->pin;
    f->pin = 0;
}

/* Every reference copied: the window is about to go. */
static void refs_settle_all(struct mt_reasm *r)
{
    while (r->npinned)
        flow_unpin(r, r->pinned[r->npinned - 1], true);
    r->nrefs = 0;
}

/* Refers to p[0..n) after the stream's history; false if it cannot (the
 * bytes are not in the pinned window). */
static bool refs_add(struct mt_reasm *r, struct flow *f, struct stream *s, const uint8_t *p,
                     uint32_t n)
{
    uintptr_t a = (uintptr_t)p;
    if (a < r->pin_lo || a >= r->pin_hi || n > r->pin_hi - a)
        return false;
    if (r->nrefs == r->refs_cap) {
        if (r->refs_cap == MT_CAP_HIST_REFS) {
            refs_settle_all(r); /* copied early, once per so many packets */
        } else {
            r->refs_cap = r->refs_cap ? MIN(r->refs_cap * 2, MT_CAP_HIST_REFS) : 256;
            r->refs = g_renew(struct href, r->refs, r->refs_cap);
        }
    }
    if (!f->pin) {
        if (r->npinned == r->pinned_cap) {
            r->pinned_cap = r->pinned_cap ? r->pinned_cap * 2 : 64;
            r->pinned = g_renew(struct flow *, r->pinned, r->pinned_cap);
        }
        r->pinned[r->npinned++] = f;
        f->pin = r->npinned;
    }
    struct href *h = &r->refs[r->nrefs++];
    h->p = p;
    h->n = n;
    h->next = 0;
    if (s->ref_tail)
        r->refs[s->ref_tail - 1].next = r->nrefs;
    else
        s->ref_head = r->nrefs;
    s->ref_tail = r->nrefs;
    s->ref_len += n;
    return true;
}

/* Forgets the k oldest bytes of the history (k <= hist_len + ref_len). */
static void hist_forget(struct mt_reasm *r, struct stream *s, uint32_t k)
{
    uint32_t a = MIN(k, s->hist_len);
    hist_drop(s, a); /* an emptied ring is kept: referenced bytes follow */
    k -= a;
    while (k) {
        struct href *h = &r->refs[s->ref_head - 1];
        if (h->n > k) {
            h->p += k;
            h->n -= k;
            s->ref_len -= k;
            break;
        }
        k -= h->n;
        s->ref_len -= h->n;
        s->ref_head = h->next;
    }
    if (!s->ref_head)
        refs_forget(s);
}

/* Remembers p[0..n), just delivered (s->next is already past it). */
static void hist_append(struct mt_reasm *r, struct flow *f, struct stream *s, const uint8_t *p,
                        uint32_t n)
{
    uint32_t cap = hist_max(r);
    if (cap == 0)
        return;
    if (!refs_add(r, f, s, p, n)) {
        if (s->ref_len) /* keep the order: older referenced bytes first */
            refs_settle(r, s);
        ring_push(r, s, p, n, cap);
    }
    uint32_t len = s->hist_len + s->ref_len;
    if (len > cap) {
        hist_forget(r, s, len - cap);
        len = cap;
    }
    /* the history ends at next (a run longer than the cap keeps only its
     * last cap bytes) */
    s->hist_seq = s->next - len;
}

static void hist_ack(struct mt_reasm *r, struct stream *s, uint32_t ack)
{
    int32_t k = SEQ_DIFF(ack, s->hist_seq);
    uint32_t len = s->hist_len + s->ref_len;
    if (k <= 0 || len == 0)
        return;
    if ((uint32_t)k >= len) {
        ring_empty(r, s); /* give back a large window once drained */
        refs_forget(s);
        return;
    }
    hist_forget(r, s, (uint32_t)k);
    s->hist_seq = ack;
}

void mt_reasm_pin(struct mt_reasm *r, const uint8_t *lo, const uint8_t *hi)
{
    refs_settle_all(r);
    bool some = lo && hi > lo;
    r->pin_lo = some ? (uintptr_t)lo : 0;
    r->pin_hi = some ? (uintptr_t)hi : 0;
}

/* ---- delivery ---- */

static void deliver(struct mt_reasm *r, struct flow *f, int side, const uint8_t *p, uint32_t n,
                    const struct mt_packet *pk)
{
    struct stream *s = &f->st[side];
    if (n == 0)
        return;
    s->next += n;
    s->off += n;
    hist_append(r, f, s, p, n);
    r->ops.data(r->ud, &f->pub, (enum mt_dir)side, p, n, pk);
}

static void deliver_gap(struct mt_reasm *r, struct flow *f, int side, uint32_t n,
                        const struct mt_packet *pk)
{
    struct stream *s = &f->st[side];
    if (n == 0)
        return;
    r->st.gaps++;
    r->st.gap_bytes += n;
    r->ops.gap(r->ud, &f->pub, (enum mt_dir)side, s->off, n, pk);
    s->next += n;
    s->off += n;
    ring_empty(r, s); /* nothing before the gap can be compared any more */
    refs_forget(s);
}

static void anomaly(struct mt_reasm *r, struct flow *f, int side, enum mt_anomaly a,
                    const struct mt_packet *pk, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void anomaly(struct mt_reasm *r, struct flow *f, int side, enum mt_anomaly a,
                    const struct mt_packet *pk, const char *fmt, ...)
{
    char buf[MT_CAP_ANOMALY_DETAIL];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    r->ops.anomaly(r->ud, &f->pub, (enum mt_dir)side, a, buf, pk);
}

static inline struct seg *ooo_first(const struct stream *s)
{
    return s->ooo_n ? s->ooo_v[s->ooo_h] : NULL;
}

static inline uint32_t seg_end(const struct seg *g)
{
    return g->seq + g->len;
}

/* Frees the array once it is empty, and halves it when a quarter full, so
 * that what a flow keeps follows what it buffers now, not its peak. */
static void ooo_shrink(struct stream *s)
{
    if (!s->ooo_n) {
        g_free(s->ooo_v);
        s->ooo_v = NULL;
        s->ooo_h = s->ooo_cap = 0;
    } else if (s->ooo_cap > 64 && s->ooo_n < s->ooo_cap / 4) {
        memmove(s->ooo_v, s->ooo_v + s->ooo_h, s->ooo_n * sizeof(*s->ooo_v));
        s->ooo_h = 0;
        s->ooo_cap /= 2;
        s->ooo_v = g_renew(struct seg *, s->ooo_v, s->ooo_cap);
    }
}

/* Takes the first segment off (the caller frees it). */
static struct seg *ooo_pop(struct stream *s)
{
    struct seg *g = s->ooo_v[s->ooo_h++];
    s->ooo_n--;
    s->ooo_bytes -= g->len + MT_OOO_SEG_COST;
    return g;
}

/* Hands out the out-of-order segments that now continue the stream. */
static void drain(struct mt_reasm *r, struct flow *f, int side, const struct mt_packet *pk)
{
    struct stream *s = &f->st[side];
    bool popped = false;
    struct seg *g;
    while ((g = ooo_first(s)) && SEQ_DIFF(g->seq, s->next) <= 0) {
        ooo_pop(s);
        popped = true;
        uint32_t skip = s->next - g->seq; /* modulo 2^32: no signed negation */
        if (skip < g->len) {
            if (g->hole)
                deliver_gap(r, f, side, g->len - skip, pk);
            else
                deliver(r, f, side, g->data + skip, g->len - skip, pk);
        }
        g_free(g);
    }
    if (popped)
        ooo_shrink(s);
    if (s->fin && !s->done && SEQ_DIFF(s->next, s->fin_seq) >= 0)
        s->done = true;
}

/* Declares the bytes up to the first buffered segment lost, and drains. */
static void skip_to_first(struct mt_reasm *r, struct flow *f, int side,
                          const struct mt_packet *pk)
{
    struct stream *s = &f->st[side];
    int32_t d = SEQ_DIFF(ooo_first(s)->seq, s->next);
    if (d > 0)
        deliver_gap(r, f, side, (uint32_t)d, pk);
    drain(r, f, side, pk);
}

static struct seg *seg_new(uint32_t seq, const uint8_t *p, uint32_t n, bool hole)
{
    struct seg *g = g_malloc(sizeof(*g) + (hole ? 0 : n));
    g->seq = seq;
    g->len = n;
    g->hole = hole;
    if (!hole)
        memcpy(g->data, p, n);
    return g;
}

/* Makes room for k more entries at the back of the array. */
static void ooo_reserve(struct stream *s, uint32_t k)
{
    if (s->ooo_h + s->ooo_n + k <= s->ooo_cap)
        return;
    if (s->ooo_h) {
        memmove(s->ooo_v, s->ooo_v + s->ooo_h, s->ooo_n * sizeof(*s->ooo_v));
        s->ooo_h = 0;
    }
    if (s->ooo_n + k > s->ooo_cap) {
        uint32_t cap = s->ooo_cap ? s->ooo_cap * 2 : 8;
        if (cap < s->ooo_n + k)
            cap = s->ooo_n + k;
        s->ooo_v = g_renew(struct seg *, s->ooo_v, cap);
        s->ooo_cap = cap;
    }
}

/* A new segment of the bytes [from, to) of the packet's [seq, ...) at p (or
 * of a hole), counted against ooo_max; the caller places it. */
static struct seg *ooo_piece(struct stream *s, uint32_t from, uint32_t to, uint32_t seq,
                             const uint8_t *p, bool hole)
{
    struct seg *ng = seg_new(from, hole ? NULL : p + (from - seq), to - from, hole);
    s->ooo_bytes += ng->len + MT_OOO_SEG_COST;
    return ng;
}

/* Inserts [seq, seq+n) among the out-of-order segments, keeping bytes
 * already buffered (first copy wins) and comparing the overlap.  The first
 * segment that ends after seq is found by binary search (or is the end, for
 * the usual append); the new bytes become one piece in each hole between
 * the segments they overlap, and all the pieces go in with one move of what
 * follows, so that no insert costs more than one pass over the array. */
static void ooo_insert(struct mt_reasm *r, struct flow *f, int side, uint32_t seq,
                       const uint8_t *p, uint32_t n, bool hole, const struct mt_packet *pk)
{
    struct stream *s = &f->st[side];
    uint32_t end = seq + n;
    uint32_t lo = 0, hi = s->ooo_n;
    struct seg **v = hi ? s->ooo_v + s->ooo_h : NULL; /* none: no array (NULL + 0 is undefined) */
    if (hi && SEQ_DIFF(seq, seg_end(v[hi - 1])) >= 0) {
        lo = hi; /* after everything buffered */
    } else {
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (SEQ_DIFF(seg_end(v[mid]), seq) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    /* first pass: the segments [i0, i1) that overlap, the k holes among
     * them that the new bytes fill, and whether the overlaps agree */
    uint32_t i0 = lo, i1 = lo, k = 0, cur = seq;
    bool conflict = false;
    while (i1 < s->ooo_n && SEQ_DIFF(v[i1]->seq, end) < 0) {
        struct seg *g = v[i1++];
        if (SEQ_DIFF(g->seq, cur) > 0) {
            k++;
            cur = g->seq;
        }
        uint32_t oend = SEQ_DIFF(seg_end(g), end) < 0 ? seg_end(g) : end;
        if (!hole && !g->hole &&
            memcmp(g->data + (cur - g->seq), p + (cur - seq), oend - cur) != 0)
            conflict = true;
        cur = oend;
    }
    if (SEQ_DIFF(cur, end) < 0)
        k++;
    if (k) {
        ooo_reserve(s, k);
        v = s->ooo_v + s->ooo_h;
        memmove(v + i1 + k, v + i1, (s->ooo_n - i1) * sizeof(*v));
        s->ooo_n += k;
        /* second pass, from the back: each segment, and the piece after it */
        uint32_t w = i1 + k, j = i1, upto = end;
        while (j > i0) {
            struct seg *g = v[--j];
            if (SEQ_DIFF(seg_end(g), upto) < 0)
                v[--w] = ooo_piece(s, seg_end(g), upto, seq, p, hole);
            v[--w] = g;
            upto = g->seq;
        }
        if (SEQ_DIFF(seq, upto) < 0)
            v[--w] = ooo_piece(s, seq, upto, seq, p, hole);
    }
    if (conflict) {
        r->st.conflicts++;
        anomaly(r, f, side, MT_AN_OVERLAP_CONFLICT, pk,
                "retransmission at stream offset %llu differs; first copy kept",
                (unsigned long long)(s->off + (uint32_t)SEQ_DIFF(seq, s->next)));
    }
}

/* A segment's payload (captured bytes p[0..len), then missing bytes). */
static void stream_data(struct mt_reasm *r, struct flow *f, int side, uint32_t seq,
                        const uint8_t *p, uint32_t len, uint32_t missing,
                        const struct mt_packet *pk)
{
    struct stream *s = &f->st[side];
    if (!s->init) { /* picked up mid-stream */
        s->init = true;
        s->next = seq;
        s->hist_seq = seq;
    }
    uint32_t total = len + missing;
    if (missing)
        anomaly(r, f, side, MT_AN_SNAPLEN_TRUNCATED, pk,
                "%u payload bytes cut by the snap length", missing);
    int32_t d = SEQ_DIFF(seq, s->next);
    if (d < 0) {
        uint32_t old = 0u - (uint32_t)d; /* d may be INT32_MIN: negate unsigned */
        /* a keep-alive: one byte (or none) just before next */
        if (old == 1 && total <= 1)
            return;
        /* compare what was delivered and is still remembered */
        if (s->ref_len)
            refs_settle(r, s);
        int32_t hd = SEQ_DIFF(seq, s->hist_seq);
        uint32_t hoff = hd > 0 ? (uint32_t)hd : 0;
        uint32_t poff = hd < 0 ? 0u - (uint32_t)hd : 0;
        uint32_t m = MIN(old, len);
        if (poff < m && hoff < s->hist_len) {
            uint32_t cmp = MIN(m - poff, s->hist_len - hoff);
            if (!hist_equal(s, hoff, p + poff, cmp)) {
                r->st.conflicts++;
                anomaly(r, f, side, MT_AN_OVERLAP_CONFLICT, pk,
                        "retransmission at stream offset %llu differs; first copy kept",
                        (unsigned long long)(s->off - old + poff));
            }
        }
        if (old >= total)
            return;
        seq += old;
        if (old >= len) {
            missing -= old - len;
            p += len;
            len = 0;
        } else {
            p += old;
            len -= old;
        }
    }
    if (s->done)
        return; /* data past the FIN */
    if (!s->ooo_n && seq == s->next) { /* the common case: no copy */
        deliver(r, f, side, p, len, pk);
        deliver_gap(r, f, side, missing, pk);
        if (s->fin && SEQ_DIFF(s->next, s->fin_seq) >= 0)
            s->done = true;
        return;
    }
    if (len)
        ooo_insert(r, f, side, seq, p, len, false, pk);
    if (missing)
        ooo_insert(r, f, side, seq + len, NULL, missing, true, pk);
    drain(r, f, side, pk);
    if (s->ooo_bytes > r->lim.ooo_max || s->ooo_n > MT_CAP_OOO_SEGS) {
        if (!s->overflowed) {
            s->overflowed = true;
            r->st.ooo_overflows++;
            if (s->ooo_n > MT_CAP_OOO_SEGS)
                anomaly(r, f, side, MT_AN_OOO_OVERFLOW, pk,
                        "more than %u out-of-order segments buffered", MT_CAP_OOO_SEGS);
            else
                anomaly(r, f, side, MT_AN_OOO_OVERFLOW, pk,
                        "more than %llu out-of-order bytes buffered",
                        (unsigned long long)r->lim.ooo_max);
        }
        while (s->ooo_n && (s->ooo_bytes > r->lim.ooo_max / 2 || s->ooo_n > MT_CAP_OOO_SEGS / 2))
            skip_to_first(r, f, side, pk);
    }
}

/* The peer acknowledged up to ack: forget remembered bytes, and if it
 * acknowledged bytes we never saw while later ones wait, they are lost. */
static void stream_acked(struct mt_reasm *r, struct flow *f, int side, uint32_t ack,
                         const struct mt_packet *pk)
{
    struct stream *s = &f->st[side];
    if (!s->init)
        return;
    if (!s->ack_valid || SEQ_DIFF(ack, s->peer_ack) > 0) {
        if (SEQ_DIFF(ack, s->next) > (int32_t)ACK_SANITY)
            return;
        s->peer_ack = ack;
        s->ack_valid = true;
    }
    hist_ack(r, s, ack);
    while (s->ooo_n && SEQ_DIFF(ack, s->next) > 0) {
        int32_t first = SEQ_DIFF(ooo_first(s)->seq, s->next);
        int32_t upto = SEQ_DIFF(ack, s->next);
        deliver_gap(r, f, side, (uint32_t)MIN(first, upto), pk);
        drain(r, f, side, pk);
    }
}

/* Delivers everything a direction holds, gaps included. */
static void stream_flush(struct mt_reasm *r, struct flow *f, int side, const struct mt_packet *pk)
{
    struct stream *s = &f->st[side];
    while (s->ooo_n)
        skip_to_first(r, f, side, pk);
    /* bytes the peer acknowledged but we never saw, at the end */
    if (s->init && s->ack_valid) {
        int32_t d = SEQ_DIFF(s->peer_ack, s->next);
        if (d > 0 && s->fin && SEQ_DIFF(s->peer_ack, s->fin_seq) > 0)
            d--; /* the FIN takes one sequence number */
        if (d > 0 && (uint32_t)d < ACK_SANITY)
            deliver_gap(r, f, side, (uint32_t)d, pk);
    }
}

static void stream_free(struct mt_reasm *r, struct stream *s)
{
    while (s->ooo_n)
        g_free(ooo_pop(s));
    ooo_shrink(s);
    r->st.hist_held -= s->hist_cap;
    hist_release(r, s->hist, s->hist_cap);
}

/* Takes c out of the order of closing (it stays in the table). */
static void closed_unlink(struct mt_reasm *r, struct closed *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        r->closed_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        r->closed_tail = c->prev;
    c->prev = c->next = NULL;
    r->nclosed--;
}

static void closed_expire(struct mt_reasm *r, int64_t now)
{
    struct closed *c;
    while ((c = r->closed_head) &&
           (now - c->closed_us > CLOSED_KEEP_US || r->nclosed > MT_CAP_CLOSED_FLOWS)) {
        closed_unlink(r, c);
        g_hash_table_remove(r->closed, &c->key); /* frees c */
    }
}

static void closed_remember(struct mt_reasm *r, struct flow *f)
{
    struct closed *c = g_hash_table_lookup(r->closed, &f->key);
    if (c) { /* replaced: drop the old entry from the order too */
        closed_unlink(r, c);
        g_hash_table_remove(r->closed, &f->key);
    }
    c = g_new0(struct closed, 1);
    c->key = f->key;
    c->closed_us = f->seen_us;
    c->client = f->pub.ep[0];
    c->end[0] = f->st[0].fin ? f->st[0].fin_seq : f->st[0].next;
    c->end[1] = f->st[1].fin ? f->st[1].fin_seq : f->st[1].next;
    g_hash_table_insert(r->closed, &c->key, c);
    c->prev = r->closed_tail;
    if (r->closed_tail)
        r->closed_tail->next = c;
    else
        r->closed_head = c;
    r->closed_tail = c;
    r->nclosed++;
    closed_expire(r, f->seen_us);
}

static bool ep_equal(const struct mt_endpoint *a, const struct mt_endpoint *b);

/* A segment of a flow that was closed a moment ago, not past its end. */
static bool late_segment(struct mt_reasm *r, const struct flowkey *k, const struct mt_packet *pk)
{
    struct closed *c = g_hash_table_lookup(r->closed, k);
    if (!c || r->clock_us - c->closed_us > CLOSED_KEEP_US)
        return false;
    int side = ep_equal(&pk->src, &c->client) ? 0 : 1;
    uint32_t end = pk->seq + pk->len + pk->missing;
    return SEQ_DIFF(end, c->end[side]) <= 0 || (pk->flags & MT_TH_RST);
}

static void flow_close(struct mt_reasm *r, struct flow *f, enum mt_close_reason why,
                       const struct mt_packet *pk)
{
    stream_flush(r, f, 0, pk);
    stream_flush(r, f, 1, pk);
    f->pub.closed = why == MT_CLOSE_FIN || why == MT_CLOSE_RST;
    if (f->pub.closed && f->st[0].init && f->st[1].init)
        closed_remember(r, f);
    r->ops.close(r->ud, &f->pub, why, pk);
    ftab_remove(&r->flows, f);
    if (r->last == f)
        r->last = NULL;
    lru_unlink(r, f);
    r->st.live--;
    flow_unpin(r, f, false);
    stream_free(r, &f->st[0]);
    stream_free(r, &f->st[1]);
    g_free(f);
}

void mt_reasm_swap(struct mt_reasm *r, struct mt_flow *pub)
{
    struct flow *f = (struct flow *)pub;
    struct mt_endpoint e = f->pub.ep[0];
    f->pub.ep[0] = f->pub.ep[1];
    f->pub.ep[1] = e;
    struct stream s = f->st[0];
    f->st[0] = f->st[1];
    f->st[1] = s;
}

/* The time idle expiry goes by, from packet timestamps: the latest seen,
 * never going back (a record stamped in the past expires nothing and ages
 * nothing), and not leaping forward more than the idle timeout on one
 * packet's word: a leap is taken when the next packet confirms it (a
 * capture merged from two periods), not when it comes back to the old
 * time (one record with a damaged timestamp would otherwise close every
 * open session, and only in the shard of --workers that saw it).
 * *leapt: this packet confirmed a leap (the previous one's flow, stamped
 * with the old time, belongs to the new period). */
static int64_t reasm_clock(struct mt_reasm *r, int64_t ts, bool *leapt)
{
    int64_t limit = (int64_t)r->lim.idle_timeout * G_USEC_PER_SEC;
    *leapt = false;
    if (!r->clock_set) {
        r->clock_set = true;
        r->clock_us = ts;
    } else if (ts > r->clock_us && (ts - r->clock_us <= limit || r->leap_seen)) {
        *leapt = ts - r->clock_us > limit;
        r->clock_us = ts;
        r->leap_seen = false;
    } else {
        r->leap_seen = ts > r->clock_us; /* a leap: believed if the next packet leaps too */
    }
    return r->clock_us;
}

void mt_reasm_expire(struct mt_reasm *r, int64_t now_us)
{
    int64_t limit = (int64_t)r->lim.idle_timeout * G_USEC_PER_SEC;
    while (r->lru_head && now_us - r->lru_head->seen_us > limit) {
        struct flow *f = r->lru_head;
        r->st.idled++;
        anomaly(r, f, 0, MT_AN_FLOW_IDLE, NULL, "idle for more than %u s", r->lim.idle_timeout);
        flow_close(r, f, MT_CLOSE_IDLE, NULL);
    }
}

static struct flow *flow_new(struct mt_reasm *r, const struct flowkey *k, uint64_t hash,
                             const struct mt_packet *pk)
{
    if (r->st.live >= r->lim.flows_max && r->lru_head) {
        struct flow *old = r->lru_head;
        r->st.evicted++;
        anomaly(r, old, 0, MT_AN_FLOW_EVICTED, pk, "flow table full (%u flows)",
                r->lim.flows_max);
        flow_close(r, old, MT_CLOSE_EVICT, NULL);
    }
    struct flow *f = g_new0(struct flow, 1);
    f->key = *k;
    f->hash = hash;
    f->pub.id = pk->num; /* the packet that opened it: unique, and the same however flows are sharded */
    bool client;
    if ((pk->flags & (MT_TH_SYN | MT_TH_ACK)) == MT_TH_SYN)
        client = true;
    else if ((pk->flags & (MT_TH_SYN | MT_TH_ACK)) == (MT_TH_SYN | MT_TH_ACK))
        client = false;
    else
        client = src_is_client(pk);
    f->pub.ep[client ? 0 : 1] = pk->src;
    f->pub.ep[client ? 1 : 0] = pk->dst;
    f->pub.first_us = f->pub.last_us = pk->ts_us;
    ftab_insert(&r->flows, f);
    lru_append(r, f);
    r->st.flows++;
    r->st.live++;
    if (r->st.live > r->st.live_max)
        r->st.live_max = r->st.live;
    r->ops.open(r->ud, &f->pub, pk);
    return f;
}

static bool ep_equal(const struct mt_endpoint *a, const struct mt_endpoint *b)
{
    return a->port == b->port && a->family == b->family && !memcmp(a->addr, b->addr, 16);
}

/* A packet's time: the clock moves (reasm_clock) and the flows idle by it
 * close.  Returns the clock. */
static int64_t clock_step(struct mt_reasm *r, int64_t ts_us)
{
    bool leapt;
    int64_t now = reasm_clock(r, ts_us, &leapt);
    if (leapt && r->last)
        r->last->seen_us = now; /* the leap's first packet was its */
    mt_reasm_expire(r, now);
    return now;
}

void mt_reasm_clock(struct mt_reasm *r, int64_t ts_us)
{
    clock_step(r, ts_us);
    r->last = NULL; /* the last packet is another shard's */
}

void mt_reasm_packet(struct mt_reasm *r, const struct mt_packet *pk)
{
    struct flowkey k;
    make_key(&k, pk);
    int64_t now = clock_step(r, pk->ts_us);
    struct flow *f = r->last && key_equal(&r->last->key, &k) ? r->last : NULL;
    uint64_t hash = f ? f->hash : key_hash64(&k);
    if (!f)
        f = ftab_find(&r->flows, &k, hash);
    bool syn_only = (pk->flags & (MT_TH_SYN | MT_TH_ACK)) == MT_TH_SYN;

    if (f && syn_only) {
        /* a new connection on the same ports, or a retransmitted SYN */
        struct stream *cs = ep_equal(&pk->src, &f->pub.ep[0]) ? &f->st[0] : &f->st[1];
        if (!cs->init || cs->next != pk->seq + 1 || cs->off > 0 || f->pub.closed) {
            flow_close(r, f, MT_CLOSE_REUSE, NULL);
            f = NULL;
        }
    }
    if (!f) {
        /* Ignored: a bare ACK of no flow, or a retransmission after the
         * close.  It leaves no flow as the last one (r->last), as a packet
         * of another shard does (mt_reasm_clock): the flow a leap in time
         * refreshes is then the same however flows are sharded. */
        if (!(pk->flags & MT_TH_SYN) &&
            ((pk->len == 0 && pk->missing == 0) || late_segment(r, &k, pk))) {
            r->st.ignored++;
            r->last = NULL;
            return;
        }
        f = flow_new(r, &k, hash, pk);
    }
    r->last = f;
    if (r->lru_tail != f) { /* to the most recent end */
        lru_unlink(r, f);
        lru_append(r, f);
    }
    f->pub.last_us = pk->ts_us;
    f->seen_us = now;
    f->pub.packets++;

    int side = ep_equal(&pk->src, &f->pub.ep[0]) ? 0 : 1;
    struct stream *s = &f->st[side];

    if (pk->flags & MT_TH_SYN) {
        f->pub.handshake = true;
        if (!s->init) {
            s->init = true;
            s->next = pk->seq + 1;
            s->hist_seq = s->next;
        }
    }
    if (pk->flags & MT_TH_ACK)
        stream_acked(r, f, !side, pk->ack, pk);
    uint32_t dseq = pk->seq + ((pk->flags & MT_TH_SYN) ? 1 : 0);
    if (pk->len || pk->missing)
        stream_data(r, f, side, dseq, pk->payload, pk->len, pk->missing, pk);
    if ((pk->flags & MT_TH_FIN) && !s->fin) {
        if (!s->init) {
            s->init = true;
            s->next = dseq + pk->len + pk->missing;
        }
        s->fin = true;
        s->fin_seq = dseq + pk->len + pk->missing;
        if (!s->ooo_n && SEQ_DIFF(s->next, s->fin_seq) >= 0)
            s->done = true;
    }
    if (pk->flags & MT_TH_RST) {
        flow_close(r, f, MT_CLOSE_RST, pk);
        return;
    }
    if (f->st[0].done && f->st[1].done)
        flow_close(r, f, MT_CLOSE_FIN, pk);
}

void mt_reasm_flush(struct mt_reasm *r)
{
    while (r->lru_head)
        flow_close(r, r->lru_head, MT_CLOSE_END, NULL);
}

void mt_reasm_free(struct mt_reasm *r)
{
    if (!r)
        return;
    while (r->lru_head) {
        struct flow *f = r->lru_head;
        lru_unlink(r, f);
        stream_free(r, &f->st[0]);
        stream_free(r, &f->st[1]);
        g_free(f);
    }
    for (unsigned i = 0; i < r->nhcache; i++)
        g_free(r->hcache[i].p);
    g_free(r->refs);
    g_free(r->pinned);
    g_free(r->flows.s);
    g_hash_table_destroy(r->closed);
    g_free(r);
}
