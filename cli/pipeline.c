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

#include "message.h"

/* A sleeping message thread is woken when this much waits for it (or
 * when the reading thread must wait, or at the end): waking it at every
 * item costs two context switches an item. */
#define WAKE_BYTES (256u * 1024)
#define WAKE_ITEMS 64

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
    /* pthread's, not GLib's: ThreadSanitizer sees these (tests/README.md) */
    pthread_mutex_t lock;
    pthread_cond_t ready, room;   /* an item is queued; there is room for one */
    struct item *head, **tail;    /* to run, in order */
    struct item *done;            /* run, to be freed by the reading thread */
    size_t inflight;              /* bytes of the items to run */
    unsigned queued;              /* items to run */
    bool finished;                /* no more items will come */
    bool back_waits, front_waits; /* someone to wake: a signal only then */
    /* The reading thread's own: message buffers back from the message
     * thread, kept as the engine's pool keeps them, for its next messages. */
    struct mt_bufpool spare;
};

/* Reading thread: frees what the message thread is done with, keeping
 * message buffers for reuse. */
static void reclaim(struct mt_pipeline *p, struct item *it)
{
    while (it) {
        struct item *next = it->next;
        if (it->d) {
            size_t cap;
            uint8_t *b = mt_deferred_take_buffer(it->d, &cap);
            if (b)
                mt_bufpool_put(&p->spare, b, cap);
            mt_deferred_free(it->d);
        }
        g_free(it);
        it = next;
    }
}

/* Reading thread: queues it after what was done is reclaimed. */
static void push(struct mt_pipeline *p, struct item *it)
{
    it->next = NULL;
    pthread_mutex_lock(&p->lock);
    while (p->inflight > 0 && p->inflight + it->bytes > MT_PIPELINE_BYTES) {
        if (p->back_waits)
            pthread_cond_signal(&p->ready);
        p->front_waits = true;
        pthread_cond_wait(&p->room, &p->lock);
    }
    p->front_waits = false;
    p->inflight += it->bytes;
    p->queued++;
    *p->tail = it;
    p->tail = &it->next;
    if (p->back_waits && (p->inflight >= WAKE_BYTES || p->queued >= WAKE_ITEMS))
        pthread_cond_signal(&p->ready);
    struct item *done = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->lock);
    reclaim(p, done);
}

static gpointer back_main(gpointer ud)
{
    struct mt_pipeline *p = ud;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->finished) {
            p->back_waits = true;
            pthread_cond_wait(&p->ready, &p->lock);
        }
        p->back_waits = false;
        struct item *it = p->head;
        if (!it)
            break; /* finished, and nothing left */
        p->head = it->next;
        if (!p->head)
            p->tail = &p->head;
        p->queued--;
        /* the room counts what waits, not the item being run; the
         * reading thread is woken once half the room is free, not at
         * every item */
        p->inflight -= it->bytes;
        if (p->front_waits && p->inflight <= MT_PIPELINE_BYTES / 2)
            pthread_cond_signal(&p->room);
        pthread_mutex_unlock(&p->lock);
        if (it->d)
            mt_deferred_run(p->st, it->d, mt_output_event, p->back);
        else
            mt_output_raw(p->back, it->data, it->len);
        pthread_mutex_lock(&p->lock);
        it->next = p->done;
        p->done = it;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* The front output's mt_output_opts.handoff: its printed events, copied
 * into the queue. */
static void handoff(void *ud, const char *p, size_t n)
{
    struct item *it = g_malloc(sizeof(*it) + n);
    it->d = NULL;
    it->len = n;
    it->bytes = sizeof(*it) + n;
    memcpy(it->data, p, n);
    push(ud, it);
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

void mt_pipeline_defer(void *ud, struct mt_deferred *d, uint8_t **spare, size_t *spare_cap)
{
    struct mt_pipeline *p = ud;
    mt_output_flush(p->front); /* what was printed before the message goes first */
    struct item *it = g_malloc(sizeof(*it));
    it->d = d;
    it->len = 0;
    it->bytes = sizeof(*it) + mt_deferred_bytes(d);
    push(p, it);
    /* a buffer back for the engine's next messages (a large one to the
     * engine's pool, see mt_defer_fn) */
    *spare = mt_bufpool_pop(&p->spare, spare_cap);
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
    mt_bufpool_free(&p->spare);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->ready);
    pthread_cond_destroy(&p->room);
    g_free(p);
}
