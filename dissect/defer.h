/* Handing finished messages over to another thread, in order.
 *
 * With a defer function set (mt_engine_set_defer), the engine does not
 * analyze a finished message itself: it hands over the message's bytes and
 * a copy of what its event needs, and goes on with the next packets.  The
 * other side runs each handed-over item (mt_deferred_run) in the order it
 * was given, between the events the engine emitted before and after it,
 * and so produces the same events, in the same order, as the engine alone.
 * MIME parsing and hashing, a third of the work on a typical capture,
 * then run beside capture, reassembly and the protocol dissectors.
 *
 * A session with a handed-over message also hands over its end: the
 * session record counts the anomalies found in its messages, which only
 * the other side knows.  Those anomalies (MIME, message_truncated) are
 * raised only there, so each side keeps its own "already reported" marks. */
#ifndef MT_DEFER_H
#define MT_DEFER_H

#include <stddef.h>
#include <stdint.h>

#include "caps.h"
#include "event.h"

struct mt_engine;
struct mt_deferred; /* a finished message, or a session's end */

struct mt_bufpool;

/* fn takes ownership of d.  pool is the engine's pool of message buffers
 * (message.h), on the calling thread: fn may put the buffers of messages
 * it is done with there, at this call or a later one on the same thread,
 * so that the engine's next messages do not grow new ones, and no more
 * than the pool keeps stays idle. */
typedef void (*mt_defer_fn)(void *ud, struct mt_deferred *d, struct mt_bufpool *pool);

/* From now on, finished messages go to fn
 * (which takes ownership of d).  fn must keep them in order with the
 * engine's other events. */
void mt_engine_set_defer(struct mt_engine *e, mt_defer_fn fn, void *ud);

/* Bytes of memory d holds, for back-pressure: the message's bytes and d
 * itself (a buffer's pages beyond the bytes are in only as far as
 * MT_BUF_AHEAD and the last huge page, message.h). */
size_t mt_deferred_bytes(const struct mt_deferred *d);
/* Hashes a message's bytes now, on the handing thread, so that the
 * receiving one does not: a way to move work from one to the other. */
void mt_deferred_hash_now(struct mt_deferred *d);
/* Asks the CPU for d's memory ahead of mt_deferred_run on another thread. */
void mt_deferred_prefetch(const struct mt_deferred *d);
void mt_deferred_free(struct mt_deferred *d);

/* The receiving side's memory of the sessions whose items it runs. */
struct mt_defer_state;
struct mt_defer_state *mt_defer_state_new(void);
void mt_defer_state_free(struct mt_defer_state *st);

/* Analyzes d (MIME, hashes) and sends its events to sink; d is then only
 * to be freed, or its buffer taken first. */
void mt_deferred_run(struct mt_defer_state *st, struct mt_deferred *d, mt_sink_fn sink,
                     void *ud);
/* The message's buffer (NULL if none), which d no longer owns; *cap its size. */
uint8_t *mt_deferred_take_buffer(struct mt_deferred *d, size_t *cap);

#endif
