/* Sharding flows over worker threads; see workers.h.
 *
 * The reading thread decodes packets and analyzes the flows of shard 0
 * itself (no copy, no hand-over: reading is a worker's share of the work,
 * so N threads keep N cores busy); each packet of another shard is copied
 * into a batch for the worker thread its flow hashes to.  Batches travel through two queues per worker
 * (work and free), so at most BATCHES_PER_WORKER batches exist per worker:
 * memory stays bounded and a slow worker slows the reader down. */
#include "workers.h"

#include <string.h>

#include <glib.h>

#define BATCH_PACKETS 512
#define BATCH_BYTES (1024 * 1024)
/* A worker may fall behind for a while (a few multi-megabyte messages in a
 * row in its shard) while the reader's own shard has little to do: the
 * reader goes on until this many batches wait.  12 rather than 8: 0.519 s
 * against 0.550 s on mixed-250M with two workers (2.13 s against 2.25 s
 * on mixed-1G), for 2 MiB more peak RSS; 16 and more gained nothing
 * further that runs could tell apart from noise, for more memory
 * (measured with glibc's malloc, at bfcf26d; with mimalloc 16 was within
 * noise of 12 too). */
#define BATCHES_PER_WORKER 12
#ifndef READER_SHARE_PCT
#define READER_SHARE_PCT 10
#endif

struct batch {
    bool end;
    size_t n, used;
    struct mt_packet pk[BATCH_PACKETS];
    uint8_t data[BATCH_BYTES];
};

struct worker {
    GThread *thread;
    struct mt_engine *eng;
    struct mt_output *out;
    GAsyncQueue *work, *free;
    struct batch *cur; /* being filled by the reader */
};

struct mt_workers {
    unsigned n;
    struct worker *w;
};

static gpointer worker_main(gpointer ud)
{
    struct worker *w = ud;
    for (;;) {
        struct batch *b = g_async_queue_pop(w->work);
        if (b->end) {
            mt_engine_finish(w->eng);
            g_async_queue_push(w->free, b);
            return NULL;
        }
        size_t off = 0;
        for (size_t i = 0; i < b->n; i++) {
            struct mt_packet *pk = &b->pk[i];
            pk->payload = b->data + off;
            off += pk->len;
            mt_engine_packet(w->eng, pk);
        }
        b->n = b->used = 0;
        g_async_queue_push(w->free, b);
    }
}

struct mt_workers *mt_workers_new(unsigned n, const struct mt_limits *lim,
                                  const struct mt_output_opts *oo, char *err, size_t errlen)
{
    struct mt_workers *ws = g_new0(struct mt_workers, 1);
    ws->n = n;
    ws->w = g_new0(struct worker, n);
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &ws->w[i];
        w->out = mt_output_new(oo, err, errlen);
        if (!w->out) {
            ws->n = i;
            mt_workers_free(ws);
            return NULL;
        }
        w->eng = mt_engine_new(lim, mt_output_event, w->out);
        if (i == 0)
            continue; /* shard 0 runs in the reading thread */
        w->work = g_async_queue_new();
        w->free = g_async_queue_new();
        for (int k = 0; k < BATCHES_PER_WORKER; k++) {
            /* not zeroed: an allocator that clears reused memory would
             * touch every page of every batch up front (12 MiB of RSS a
             * worker); the pages are touched as packets fill them */
            struct batch *b = g_malloc(sizeof(*b));
            b->end = false;
            b->n = b->used = 0;
            g_async_queue_push(w->free, b);
        }
        char name[16];
        g_snprintf(name, sizeof(name), "mailtap-w%u", i);
        w->thread = g_thread_new(name, worker_main, w);
    }
    return ws;
}

/* The same worker for both directions of a flow: the addresses and ports
 * enter by XOR, so swapping source and destination gives the same hash.
 * 64-bit words rather than bytes: the reader hashes every packet. */
static unsigned shard(const struct mt_packet *pk, unsigned n)
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
    /* the reading thread's own shard is smaller by READER_SHARE_PCT: it
     * also reads and decodes every packet */
    uint32_t slot = (uint32_t)(h % 1000);
    uint32_t first = 1000 * (100 - READER_SHARE_PCT) / 100 / n;
    if (slot < first)
        return 0;
    return 1 + (slot - first) % (n - 1);
}

static void send_batch(struct worker *w)
{
    g_async_queue_push(w->work, w->cur);
    w->cur = NULL;
}

void mt_workers_packet(void *workers, const struct mt_packet *pk)
{
    struct mt_workers *ws = workers;
    unsigned k = shard(pk, ws->n);
    if (k == 0) {
        mt_engine_packet(ws->w[0].eng, pk);
        return;
    }
    struct worker *w = &ws->w[k];
    if (w->cur && (w->cur->n == BATCH_PACKETS || pk->len > BATCH_BYTES - w->cur->used))
        send_batch(w);
    if (!w->cur)
        w->cur = g_async_queue_pop(w->free); /* waits for the worker if it is behind */
    struct batch *b = w->cur;
    b->pk[b->n] = *pk;
    memcpy(b->data + b->used, pk->payload, pk->len);
    b->used += pk->len;
    b->n++;
}

struct mt_output *mt_workers_finish(struct mt_workers *ws)
{
    for (unsigned i = 1; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (w->cur && w->cur->n)
            send_batch(w);
        if (!w->cur)
            w->cur = g_async_queue_pop(w->free);
        w->cur->end = true;
        send_batch(w);
    }
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

void mt_workers_free(struct mt_workers *ws)
{
    if (!ws)
        return;
    for (unsigned i = 0; i < ws->n; i++) {
        struct worker *w = &ws->w[i];
        if (w->thread)
            g_thread_join(w->thread); /* not reached after mt_workers_finish */
        mt_engine_free(w->eng);
        mt_output_free(w->out);
        struct batch *b;
        while (w->free && (b = g_async_queue_try_pop(w->free)))
            g_free(b);
        while (w->work && (b = g_async_queue_try_pop(w->work)))
            g_free(b);
        g_free(w->cur);
        if (w->work)
            g_async_queue_unref(w->work);
        if (w->free)
            g_async_queue_unref(w->free);
    }
    g_free(ws->w);
    g_free(ws);
}
