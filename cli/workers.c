/* Sharding flows over worker threads; see workers.h.
 *
 * Capture files (regular files, mt_workers_files): every thread reads the
 * files itself, each with its own source and decoder, and analyzes the
 * packets of its own shard, dropping the others.  Nothing passes between
 * the threads until their outputs are merged at the end: reading and
 * decoding every packet costs each thread about 5 % of one thread's run,
 * where copying the other shards' packets into rings cost the reading
 * thread about three times that, and the worker the cache misses of
 * reading what another core wrote (bench/README.md, "Workers that read
 * the file themselves").  Each engine also keeps references into its own
 * source's window instead of copies (mt_engine_window).
 *
 * Anything else (standard input, a pipe; or MAILTAP_WORKERS_RING=1):
 * the reading thread decodes packets and analyzes the flows of shard 0
 * itself (no copy, no hand-over: reading is a worker's share of the work,
 * so N threads keep N cores busy); each packet of another shard is copied
 * into the ring of the worker thread its flow hashes to.
 *
 * A ring is two circular arrays, of packets and of their bytes, filled by
 * the reading thread and emptied in order by its worker.  Every byte of it
 * can hold a waiting packet, whatever the packets' sizes.  So a worker busy
 * with a few multi-megabyte messages in a row can fall behind by up to
 * RING_BYTES while the reading thread goes on; and while the reading
 * thread analyzes a large message of its own shard, the worker has that
 * much queued to go on with.  Memory stays bounded by the ring, and a
 * worker further behind makes the reading thread wait.
 *
 * The reading thread publishes what it wrote in steps of PUBLISH_PACKETS
 * or PUBLISH_BYTES (one lock each), and the worker gives room back in the
 * same steps.  pthread's lock, not GLib's: ThreadSanitizer sees it
 * (tests/cli/tsan.supp). */
#include "workers.h"

#include <pthread.h>
#include <string.h>

#include <glib.h>

#include "heap.h"
#include "message.h"

/* How far a worker may fall behind (see bench/README.md for the
 * measurements): on mixed-250M with two workers, fixed batches (512
 * packets or 1 MiB, 12 a worker, until 7296423) gave 0.47 s; this ring
 * 0.43 s, and 0.45 s with 16384 packets or with 6 MiB.  Peak RSS 58 MiB
 * at 250 MB and 62 to 64 MiB at 1 GB: every page of the ring is touched
 * once it has gone round (8 MiB, and 3.3 MiB of packets). */
#ifndef RING_BYTES
#define RING_BYTES (8u * 1024 * 1024)
#endif
#ifndef RING_PACKETS
#define RING_PACKETS 32768u
#endif
/* One lock and at most one wake-up a step: 512 packets or 256 KiB gave
 * three times the context switches, and was slower. */
#define PUBLISH_PACKETS 1024u
#define PUBLISH_BYTES (512u * 1024)
/* The reading thread's shard is this much smaller than an even share
 * (bench/README.md): 35 gives it 32.5 % of the slots with two workers.
 * Since message buffers ask for their pages ahead (a9abfbd), a flow's own
 * work shrank and reading and handing out every packet weigh more: on
 * mixed-250M, mixed-1G and large-250M, 35 took 5 to 11 % off the wall
 * time of 10 (45 %), and 25 about half of that. */
#ifndef READER_SHARE_PCT
#define READER_SHARE_PCT 35
#endif

/* A packet bigger than this has a copy of its own, made once the worker
 * has caught up, so at most one such copy exists.  With the default sizes
 * no packet from a capture file is (libpcap's and capture/source.c's
 * largest record is 256 KiB); MAILTAP_SMALL_RING builds (tests) send
 * every full-sized segment this way. */
#define RING_BIG (RING_BYTES / 4)

struct slot {
    struct mt_packet pk;
    uint64_t end; /* the ring's byte count after this packet */
    bool own;     /* pk.payload is a copy the worker frees */
    bool clock;   /* another shard's packet: only its time (mt_engine_clock) */
};
/* The slots' mapping: mt_buf_free wants the size it was allocated with. */
#define RING_SLOTS_BYTES (sizeof(struct slot) * RING_PACKETS)

struct mt_workers;

struct worker {
    GThread *thread;
    struct mt_engine *eng;
    struct mt_output *out;
    /* files: this worker's reading */
    struct mt_workers *ws;
    unsigned idx;
    struct mt_source *src;  /* the one being read, for mt_workers_stop */
    struct slot *slots;    /* RING_PACKETS */
    uint8_t *data;         /* RING_BYTES */
    /* the reading thread's own */
    uint64_t wpk, wbytes;  /* packets and bytes written */
    uint64_t rpub_pk, rpub_bytes; /* written, as last published */
    uint64_t room_pk, room_bytes; /* freed, as last seen */
    /* under lock */
    pthread_mutex_t lock;
    pthread_cond_t ready, room;
    uint64_t pub_pk;       /* packets published to the worker */
    uint64_t free_pk, free_bytes; /* packets and bytes the worker is done with */
    bool end;              /* no more packets */
    bool w_waits, r_waits; /* someone to wake */
};

struct mt_workers {
    unsigned n;
    struct worker *w;
    /* files: every thread reads them (NULL: the rings) */
    char **paths;
    uint64_t *upto;       /* how far each file is read (mt_workers_files) */
    char *filter;
    uint64_t count;
    struct mt_limits lim;
    gint stop;             /* mt_workers_stop */
};

/* A flow's hash picks one of SHARD_SLOTS slots, and the slot its shard.
 * With rings, the reading thread's own shard is smaller by
 * READER_SHARE_PCT: it also reads, decodes and hands out every packet.
 * When every thread reads the files, the shards are even (share 0). */
#define SHARD_SLOTS 1000u

static unsigned shard_of_slot(const struct mt_workers *ws, uint32_t slot)
{
    unsigned n = ws->n, share_pct = ws->paths ? 0 : READER_SHARE_PCT;
    uint32_t first = SHARD_SLOTS * (100 - share_pct) / 100 / n;
    if (n == 1 || slot < first)
        return 0;
    return 1 + (slot - first) % (n - 1);
}

/* A worker's part of a cap that bounds the whole run (flows_max,
 * inflate_max): its share of the slots, rounded down, at least 1, so that
 * N workers hold no more than one. */
static uint32_t shard_part(uint32_t whole, uint32_t slots)
{
    return (uint32_t)MAX(1, (uint64_t)whole * slots / SHARD_SLOTS);
}

/* Worker w's engine gets the packet whole when its flow is w's (mine),
 * else only its time, so that w's flows expire idle as in one engine. */
static void take(struct worker *w, const struct mt_packet *pk, bool mine)
{
    if (mine)
        mt_engine_packet(w->eng, pk);
    else
        mt_engine_clock(w->eng, pk);
}

static gpointer worker_main(gpointer ud)
{
    struct worker *w = ud;
    mt_heap_huge_pages();
    uint64_t done = 0;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->pub_pk == done && !w->end) {
            w->w_waits = true;
            pthread_cond_wait(&w->ready, &w->lock);
        }
        w->w_waits = false;
        uint64_t upto = w->pub_pk;
        if (upto == done) { /* the end, all done */
            pthread_mutex_unlock(&w->lock);
            mt_engine_finish(w->eng);
            return NULL;
        }
        pthread_mutex_unlock(&w->lock);
        /* room back in steps, not only after all that was published */
        uint64_t stop = MIN(upto, done + PUBLISH_PACKETS);
        uint64_t end = 0;
        for (; done < stop; done++) {
            struct slot *s = &w->slots[done % RING_PACKETS];
            take(w, &s->pk, !s->clock);
            if (s->own)
                g_free((void *)s->pk.payload);
            end = s->end;
        }
        pthread_mutex_lock(&w->lock);
        w->free_pk = done;
        w->free_bytes = end;
        if (w->r_waits)
            pthread_cond_signal(&w->room);
    }
}

static unsigned shard(const struct mt_packet *pk, const struct mt_workers *ws);

/* files: a packet read by worker w (the reading thread is worker 0) */
static void reader_packet(void *ud, const struct mt_packet *pk)
{
    struct worker *w = ud;
    take(w, pk, shard(pk, w->ws) == w->idx);
}

static void reader_tick(void *ud, int64_t now_us)
{
    struct worker *w = ud;
    (void)now_us;
    if (g_atomic_int_get(&w->ws->stop))
        mt_source_stop(w->src);
}

/* files: worker w reads every file as the reading thread does (main.c),
 * with its own decoder, so that its packets have the same numbers.  What
 * goes wrong is the reading thread's to report: it reads the same bytes
 * and meets the same damage at the same place; w stops where it does. */
static gpointer reader_main(gpointer ud)
{
    struct worker *w = ud;
    struct mt_workers *ws = w->ws;
    mt_heap_huge_pages();
    struct mt_decoder *dec = mt_decoder_new(&ws->lim);
    uint64_t num = 0;
    char err[512];
    for (char **p = ws->paths; *p && !g_atomic_int_get(&ws->stop); p++) {
        struct mt_source *src = NULL;
        uint64_t upto = ws->upto ? ws->upto[p - ws->paths] : MT_SOURCE_WHOLE;
        int rc = mt_source_open_filtered(&src, *p, upto, ws->filter, err, sizeof(err));
        if (rc == MT_CAP_OK) {
            mt_source_set_window_cb(src, mt_engine_window, w->eng);
            w->src = src;
            rc = mt_source_run(src, dec, &num, ws->count, reader_packet, w, reader_tick, w, err,
                               sizeof(err));
            w->src = NULL;
        }
        mt_source_close(src);
        if (rc == MT_CAP_ERR_FILTER)
            break;
    }
    mt_decoder_flush(dec);
    mt_decoder_free(dec);
    mt_engine_finish(w->eng);
    return NULL;
}

struct mt_workers *mt_workers_new(unsigned n, const struct mt_limits *lim,
                                  const struct mt_output_opts *oo,
                                  const struct mt_workers_files *files, char *err, size_t errlen)
{
    struct mt_workers *ws = g_new0(struct mt_workers, 1);
    ws->n = n;
    ws->w = g_new0(struct worker, n);
    ws->lim = *lim;
    if (files) {
        ws->paths = g_new0(char *, files->n + 1);
        for (unsigned i = 0; i < files->n; i++)
            ws->paths[i] = g_strdup(files->paths[i]);
        if (files->upto)
            ws->upto = g_memdup2(files->upto, files->n * sizeof(uint64_t));
        ws->filter = g_strdup(files->filter);
        ws->count = files->count;
    }
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &ws->w[i];
        w->out = mt_output_new(oo, err, errlen);
        if (!w->out) {
            ws->n = i;
            mt_workers_free(ws);
            return NULL;
        }
        /* flows_max (live flows) and inflate_max (sessions inflating at
         * once) bound the whole run: each worker gets its shard's part */
        struct mt_limits l = *lim;
        uint32_t slots = 0;
        for (uint32_t k = 0; k < SHARD_SLOTS; k++)
            slots += shard_of_slot(ws, k) == i;
        l.flows_max = shard_part(lim->flows_max, slots);
        l.inflate_max = shard_part(lim->inflate_max, slots);
        w->eng = mt_engine_new(&l, mt_output_event, w->out);
        w->ws = ws;
        w->idx = i;
        if (i == 0)
            continue; /* shard 0 runs in the reading thread */
        char name[16];
        if (ws->paths) {
            g_snprintf(name, sizeof(name), "mailtap-r%u", i);
            w->thread = g_thread_new(name, reader_main, w);
            continue;
        }
        /* mapped, in huge pages where the kernel allows (mt_buf_alloc):
         * every page of the ring is touched once it has gone round, and
         * 4 KiB pages cost 2,000 faults more a run (on mixed-250M, task
         * clock 0.89 -> 0.86 s; bench/README.md) */
        w->slots = (struct slot *)mt_buf_alloc(RING_SLOTS_BYTES);
        w->data = mt_buf_alloc(RING_BYTES);
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->ready, NULL);
        pthread_cond_init(&w->room, NULL);
        g_snprintf(name, sizeof(name), "mailtap-w%u", i);
        w->thread = g_thread_new(name, worker_main, w);
    }
    return ws;
}

/* The same worker for both directions of a flow: the addresses and ports
 * enter by XOR, so swapping source and destination gives the same hash.
 * 64-bit words rather than bytes: the reader hashes every packet. */
static unsigned shard(const struct mt_packet *pk, const struct mt_workers *ws)
{
    uint64_t a[2], b[2];
    memcpy(a, pk->src.addr, sizeof a);
    memcpy(b, pk->dst.addr, sizeof b);
    uint64_t h = (a[0] ^ b[0]) * 0x9e3779b97f4a7c15u;
    h ^= (a[1] ^ b[1]) + (h >> 29);
    h *= 0xbf58476d1ce4e5b9u;
    h ^= (uint64_t)(pk->src.port ^ pk->dst.port) + (h >> 31);
    h *= 0x94d049bb133111ebu;
    h ^= h >> 32;
    return shard_of_slot(ws, (uint32_t)(h % SHARD_SLOTS));
}

/* Reading thread: hands what it wrote to the worker, and sees the room
 * the worker gave back.  wait: until the worker has freed need_pk packets
 * and need_bytes bytes. */
static void publish(struct worker *w, uint64_t need_pk, uint64_t need_bytes)
{
    w->rpub_pk = w->wpk;
    w->rpub_bytes = w->wbytes;
    pthread_mutex_lock(&w->lock);
    w->pub_pk = w->wpk;
    if (w->w_waits)
        pthread_cond_signal(&w->ready);
    while (w->free_pk < need_pk || w->free_bytes < need_bytes) {
        w->r_waits = true;
        pthread_cond_wait(&w->room, &w->lock);
    }
    w->r_waits = false;
    w->room_pk = w->free_pk;
    w->room_bytes = w->free_bytes;
    pthread_mutex_unlock(&w->lock);
}

/* Reading thread: the packet into worker w's ring; with clock, only its
 * time (a slot of no bytes, for mt_engine_clock). */
static void ring_push(struct worker *w, const struct mt_packet *pk, bool clock)
{
    uint32_t len = clock ? 0 : pk->len;
    if (len > RING_BIG) {
        publish(w, w->wpk, w->wbytes); /* the worker has caught up */
        struct slot *s = &w->slots[w->wpk % RING_PACKETS];
        s->pk = *pk;
        s->pk.payload = g_memdup2(pk->payload, len);
        s->end = w->wbytes;
        s->own = true;
        s->clock = false;
        w->wpk++;
        publish(w, 0, 0);
        return;
    }
    /* a packet's bytes are contiguous: one that would cross the ring's end
     * starts at its beginning, and the bytes skipped count as used */
    uint64_t at = w->wbytes % RING_BYTES;
    uint64_t start = at + len > RING_BYTES ? w->wbytes + (RING_BYTES - at) : w->wbytes;
    uint64_t end = start + len;
    if (w->wpk - w->room_pk >= RING_PACKETS || end - w->room_bytes > RING_BYTES)
        publish(w, w->wpk + 1 > RING_PACKETS ? w->wpk + 1 - RING_PACKETS : 0,
                end > RING_BYTES ? end - RING_BYTES : 0);
    struct slot *s = &w->slots[w->wpk % RING_PACKETS];
    s->pk = *pk;
    s->pk.payload = clock ? NULL : w->data + start % RING_BYTES;
    s->pk.len = len;
    s->end = end;
    s->own = false;
    s->clock = clock;
    if (len)
        memcpy(w->data + start % RING_BYTES, pk->payload, len);
    w->wpk++;
    w->wbytes = end;
    if (w->wpk - w->rpub_pk >= PUBLISH_PACKETS || w->wbytes - w->rpub_bytes >= PUBLISH_BYTES)
        publish(w, 0, 0);
}

void mt_workers_packet(void *workers, const struct mt_packet *pk)
{
    struct mt_workers *ws = workers;
    if (ws->paths) { /* every worker reads the files: here only shard 0's */
        reader_packet(&ws->w[0], pk);
        return;
    }
    unsigned k = shard(pk, ws);
    for (unsigned i = 1; i < ws->n; i++) /* its worker the packet, the others its time */
        ring_push(&ws->w[i], pk, i != k);
    take(&ws->w[0], pk, k == 0);
}

/* Reading thread: publishes everything written and tells the worker that
 * nothing more comes; it runs the rest and stops. */
static void worker_end(struct worker *w)
{
    if (w->ws->paths)
        return; /* it reads to the end by itself */
    pthread_mutex_lock(&w->lock);
    w->pub_pk = w->wpk;
    w->end = true;
    pthread_cond_signal(&w->ready);
    pthread_mutex_unlock(&w->lock);
}

struct mt_output *mt_workers_finish(struct mt_workers *ws)
{
    for (unsigned i = 1; i < ws->n; i++)
        worker_end(&ws->w[i]);
    if (ws->n)
        mt_engine_finish(ws->w[0].eng);
    for (unsigned i = 1; i < ws->n; i++) {
        g_thread_join(ws->w[i].thread);
        ws->w[i].thread = NULL;
    }
    for (unsigned i = 1; i < ws->n; i++)
        mt_output_merge(ws->w[0].out, ws->w[i].out);
    return ws->n ? ws->w[0].out : NULL;
}

struct mt_engine *mt_workers_reader_engine(struct mt_workers *ws)
{
    return ws && ws->paths && ws->n ? ws->w[0].eng : NULL;
}

void mt_workers_stop(struct mt_workers *ws)
{
    g_atomic_int_set(&ws->stop, 1);
}

void mt_workers_free(struct mt_workers *ws)
{
    if (!ws)
        return;
    g_atomic_int_set(&ws->stop, 1); /* a reader still running stops soon */
    for (unsigned i = 0; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (w->thread) { /* only when mt_workers_new failed half-way */
            worker_end(w); /* runs whatever was written, copies freed */
            g_thread_join(w->thread);
        }
        mt_engine_free(w->eng);
        mt_output_free(w->out);
        if (w->slots) {
            mt_buf_free((uint8_t *)w->slots, RING_SLOTS_BYTES);
            mt_buf_free(w->data, RING_BYTES);
            pthread_mutex_destroy(&w->lock);
            pthread_cond_destroy(&w->ready);
            pthread_cond_destroy(&w->room);
        }
    }
    g_free(ws->w);
    g_strfreev(ws->paths);
    g_free(ws->upto);
    g_free(ws->filter);
    g_free(ws);
}
