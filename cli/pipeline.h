/* Two threads, one output in order: the reading thread captures,
 * reassembles and dissects, and prints every event except messages; the
 * second thread analyzes the finished messages (MIME, hashes, extraction),
 * prints them, and writes everything, in the order of the events. */
#ifndef MT_PIPELINE_H
#define MT_PIPELINE_H

#include "defer.h"
#include "engine.h"
#include "output.h"

/* At most this many bytes (messages and printed events) are between the
 * two threads: half waits in the queue, half is in the batch the message
 * thread is running.  The reading thread waits for the other beyond that.
 * A message counts its bytes (a buffer's pages beyond them are in only
 * as far as MT_BUF_AHEAD and the last huge page, dissect/message.h).  One
 * message larger than half still goes through alone.  8 MiB until the
 * capture was read with pread (2e86916): with the reading thread faster,
 * finished messages wait for the message thread more often, and 4 MiB
 * kept the worst peak RSS of ten runs on mixed-1G at 61 MiB rather than
 * 64 (bench/README.md). */
#define MT_PIPELINE_BYTES (4u * 1024 * 1024)

struct mt_pipeline;

/* back: the output that gets the messages and writes everything (made
 * from oo, which the engine's own output is also made from, without
 * extraction or tee); it belongs to the second thread until
 * mt_pipeline_finish.  NULL with err on failure. */
struct mt_pipeline *mt_pipeline_new(struct mt_output *back, const struct mt_output_opts *oo,
                                    char *err, size_t errlen);
/* The output for the engine's sink (mt_output_event). */
struct mt_output *mt_pipeline_front(struct mt_pipeline *p);
/* The engine's mt_defer_fn. */
void mt_pipeline_defer(void *p, struct mt_deferred *d, struct mt_bufpool *pool);
/* After the engine's last event: waits for the second thread to write
 * everything, and adds the front output's counts to back's summary. */
void mt_pipeline_finish(struct mt_pipeline *p);
void mt_pipeline_free(struct mt_pipeline *p);

#endif
