/* The reading thread and the message thread; see pipeline.h.
 *
 * One queue carries, in order, the front output's printed bytes and the
 * handed-over messages.  Before a message goes in, the front output hands
 * over what it printed so far, so the message thread writes both exactly
 * in the order one thread would have.
 *
 * Memory is allocated and freed by the same thread: the message thread
 * returns what it is done with on a second list, and the reading thread
 * frees it (or keeps message buffers for its next messages).  A free from
 * the other thread would go to the reading thread's malloc arena, and
 * contend with it, at every message. */
#include "pipeline.h"

#include <pthread.h>
#include <string.h>

#include <glib.h>

#include "heap.h"
#include "message.h"

/* A sleeping message thread is woken when this much waits for it (or
 * when the reading thread must wait, or at the end): waking it at every
 * item costs two context switches an item, and waking it late leaves it
 * idle while work waits (64 KiB against 256 KiB: 2.7 s against 2.9 s on
 * mixed-1G, in one comparison). */
#define WAKE_BYTES (64u * 1024)
#define WAKE_ITEMS 16
/* The message thread takes the whole queue at once (back_main): half the
 * budget waits in the queue, half may be in the batch it runs. */
#define QUEUE_BYTES (MT_PIPELINE_BYTES / 2)
/* When this much waits, the message thread is the slower one, and the
 * reading thread takes over the hashing of the messages' bytes. */
#define BEHIND_BYTES (QUEUE_BYTES / 2)

struct item {
    struct item *next;
    struct mt_deferred *d; /* a message or session end to run, or NULL: bytes */
    size_t bytes;          /* counted against MT_PIPELINE_BYTES */
    size_t len;
    char data[];           /* printed events (d NULL) */
};

struct mt_pipeline {
    GThread *thread;
    struct mt_output *front, *back;
    struct mt_defer_state *st;
    /* pthread's, not GLib's: ThreadSanitizer sees these (tests/cli/tsan.supp) */
    pthread_mutex_t lock;
    pthread_cond_t ready, room;   /* an item is queued; there is room for one */
    struct item *head, **tail;    /* to run, in order */
    struct item *done;            /* run, to be freed by the reading thread */
    size_t inflight;              /* bytes of the items to run */
    unsigned queued;              /* items to run */
    bool finished;                /* no more items will come */
    bool back_waits, front_waits; /* someone to wake: a signal only then */
    /* The reading thread's own: while handing over a message, the printed
     * bytes before it, pushed with it. */
    bool holding;
    struct item *held;
    bool behind; /* the queue was fuller than BEHIND_BYTES at the last push */
    bool records; /* the front hands off frames (mt_output_opts.handoff_records) */
    /* The reading thread's own: the engine's pool (mt_defer_fn), where the
     * buffers of messages run go once the message thread is done with them;
     * NULL until the first message, when they are freed. */
    struct mt_bufpool *pool;
};

/* An item list was written by the other thread, on the other core, and
 * walking it stalled at each item in turn.  While one item is run (or
 * freed), the next one's message record (d) and the lines of the item
 * after that are asked for: each is read only once an earlier ask has
 * had an item's work to arrive.  prefetch_start asks for the second
 * item before the walk. */
static void prefetch_lines(const struct item *it)
{
    if (it) {
        __builtin_prefetch(it);
        __builtin_prefetch((const char *)it + 64);
    }
}

static void prefetch_start(const struct item *it)
{
    if (it)
        prefetch_lines(it->next);
}

static void prefetch_ahead(const struct item *it)
{
    const struct item *next = it->next;
    if (!next)
        return;
    if (next->d)
        mt_deferred_prefetch(next->d);
    prefetch_lines(next->next);
}

/* Reading thread: frees what the message thread is done with, small
 * message buffers straight into the engine's pool (a large one is freed,
 * and only its huge-page extents are kept for the next large buffers:
 * kept whole and idle, it was a whole message more in peak RSS,
 * message.h). */
static void reclaim(struct mt_pipeline *p, struct item *it)
{
    prefetch_start(it);
    while (it) {
        struct item *next = it->next;
        prefetch_ahead(it);
        if (it->d) {
            size_t cap;
            uint8_t *b = mt_deferred_take_buffer(it->d, &cap);
            if (b && p->pool)
                mt_bufpool_put(p->pool, b, cap);
            else
                mt_buf_free(b, cap);
            mt_deferred_free(it->d);
        }
        g_free(it);
        it = next;
    }
}

/* Reading thread: queues the chain first..last (n items, bytes in all)
 * after what was done is reclaimed. */
static void push(struct mt_pipeline *p, struct item *first, struct item *last, unsigned n,
                 size_t bytes)
{
    last->next = NULL;
    bool waited = false;
    pthread_mutex_lock(&p->lock);
    while (p->inflight > 0 && p->inflight + bytes > QUEUE_BYTES) {
        if (p->back_waits)
            pthread_cond_signal(&p->ready);
        p->front_waits = true;
        waited = true;
        pthread_cond_wait(&p->room, &p->lock);
    }
    bool idle = p->back_waits;
    p->front_waits = false;
    p->inflight += bytes;
    p->queued += n;
    p->behind = p->inflight >= BEHIND_BYTES;
    *p->tail = first;
    p->tail = &last->next;
    if (p->back_waits && (p->inflight >= WAKE_BYTES || p->queued >= WAKE_ITEMS))
        pthread_cond_signal(&p->ready);
    struct item *done = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->lock);
    /* Who prints the commands and replies follows who has time: this
     * thread once it had to wait for room, the message thread again once
     * it was found waiting for work. */
    if (p->records && (waited || idle))
        mt_output_print_here(p->front, waited);
    reclaim(p, done);
}

/* The message thread takes everything queued at once, runs it without the
 * lock, and gives it back with the next take: one lock a batch, not two an
 * item, which the two threads otherwise contend for (35,000 futex wakes on
 * mixed-250M). */
static gpointer back_main(gpointer ud)
{
    struct mt_pipeline *p = ud;
    mt_heap_huge_pages();
    /* Read once: they never change, and p's lines are written by the
     * reading thread (the lock, the queue, held and holding); read from p
     * at each item, they missed the cache at each item. */
    struct mt_output *const back = p->back;
    struct mt_defer_state *const st = p->st;
    const bool records = p->records;
    struct item *ran = NULL, **ran_tail = &ran;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (ran) {
            *ran_tail = p->done;
            p->done = ran;
            ran = NULL;
            ran_tail = &ran;
        }
        while (!p->head && !p->finished) {
            p->back_waits = true;
            pthread_cond_wait(&p->ready, &p->lock);
        }
        p->back_waits = false;
        struct item *it = p->head;
        if (!it)
            break; /* finished, and nothing left */
        p->head = NULL;
        p->tail = &p->head;
        p->queued = 0;
        /* the room counts what waits, not the batch being run */
        p->inflight = 0;
        if (p->front_waits)
            pthread_cond_signal(&p->room);
        pthread_mutex_unlock(&p->lock);
        prefetch_start(it);
        for (; it; it = it->next) {
            prefetch_ahead(it);
            if (it->d)
                mt_deferred_run(st, it->d, mt_output_event, back);
            else if (!records)
                mt_output_raw(back, it->data, it->len);
            else if (!mt_output_frames(back, it->data, it->len))
                g_critical("mailtap: a hand-over between the threads was malformed "
                           "(%zu bytes); the events in it were lost", it->len);
            *ran_tail = it;
            ran_tail = &it->next;
        }
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static struct item *bytes_item(const char *p, size_t n)
{
    struct item *it = g_malloc(sizeof(*it) + n);
    it->next = NULL;
    it->d = NULL;
    it->len = n;
    it->bytes = sizeof(*it) + n;
    memcpy(it->data, p, n);
    return it;
}

/* The front output's mt_output_opts.handoff: its printed events and
 * records (handoff_records), copied into the queue, or held for the
 * message they precede (mt_pipeline_defer). */
static void handoff(void *ud, const char *data, size_t n)
{
    struct mt_pipeline *p = ud;
    struct item *it = bytes_item(data, n);
    if (!p->holding) {
        push(p, it, it, 1, it->bytes);
        return;
    }
    if (p->held) /* the output handed over more than once: keep the order */
        push(p, p->held, p->held, 1, p->held->bytes);
    p->held = it;
}

struct mt_pipeline *mt_pipeline_new(struct mt_output *back, const struct mt_output_opts *oo,
                                    char *err, size_t errlen)
{
    struct mt_pipeline *p = g_new0(struct mt_pipeline, 1);
    struct mt_output_opts fo = *oo;
    fo.extract_dir = NULL; /* messages, and so extraction, are the back's */
    fo.tee = NULL;
    fo.tee_ud = NULL;
    fo.flush_each = false;
    fo.handoff = handoff;
    fo.handoff_ud = p;
    /* JSON: commands and replies are printed by the message thread while
     * it has time to spare, by this one while it is behind (push; which
     * thread is the slower one depends on the host, bench/README.md).
     * Not text: a transcript line costs little more to print than to copy
     * as a record. */
    fo.handoff_records = oo->format == MT_FMT_JSON;
    p->records = fo.handoff_records;
    p->front = mt_output_new(&fo, err, errlen);
    if (!p->front) {
        g_free(p);
        return NULL;
    }
    p->back = back;
    p->st = mt_defer_state_new();
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->ready, NULL);
    pthread_cond_init(&p->room, NULL);
    p->tail = &p->head;
    p->thread = g_thread_new("mailtap-msg", back_main, p);
    return p;
}

struct mt_output *mt_pipeline_front(struct mt_pipeline *p)
{
    return p->front;
}

void mt_pipeline_defer(void *ud, struct mt_deferred *d, struct mt_bufpool *pool)
{
    struct mt_pipeline *p = ud;
    p->pool = pool;
    /* what was printed before the message goes first, in the same push */
    p->holding = true;
    mt_output_flush(p->front);
    p->holding = false;
    /* the message thread is behind: this one hashes the message */
    if (p->behind)
        mt_deferred_hash_now(d);
    struct item *it = g_malloc(sizeof(*it));
    it->d = d;
    it->len = 0;
    it->bytes = sizeof(*it) + mt_deferred_bytes(d);
    struct item *first = it;
    unsigned n = 1;
    size_t bytes = it->bytes;
    if (p->held) {
        first = p->held;
        first->next = it;
        n++;
        bytes += first->bytes;
        p->held = NULL;
    }
    push(p, first, it, n, bytes);
}

void mt_pipeline_finish(struct mt_pipeline *p)
{
    if (!p || !p->thread)
        return;
    mt_output_flush(p->front);
    pthread_mutex_lock(&p->lock);
    p->finished = true;
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
    g_thread_join(p->thread);
    p->thread = NULL;
    reclaim(p, p->done);
    p->done = NULL;
    mt_summary_merge(mt_output_summary(p->back), mt_output_summary(p->front));
}

void mt_pipeline_free(struct mt_pipeline *p)
{
    if (!p)
        return;
    mt_pipeline_finish(p);
    mt_output_free(p->front);
    mt_defer_state_free(p->st);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->ready);
    pthread_cond_destroy(&p->room);
    g_free(p);
}
