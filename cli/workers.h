/* --workers N: flows sharded by a symmetric hash of their addresses and
 * ports over N threads, each with its own engine and output. */
#ifndef MT_WORKERS_H
#define MT_WORKERS_H

#include "capture.h"
#include "engine.h"
#include "output.h"

struct mt_workers;

/* Creates n workers, each with an engine over lim and an output made from
 * oo (all writing to the same stream, one whole event per write). */
struct mt_workers *mt_workers_new(unsigned n, const struct mt_limits *lim,
                                  const struct mt_output_opts *oo, char *err, size_t errlen);
/* An mt_packet_cb: copies the packet to its flow's worker. */
void mt_workers_packet(void *workers, const struct mt_packet *pk);
/* End of input: every worker flushes its sessions; their outputs are
 * merged into the first one, which is returned (owned by the pool). */
struct mt_output *mt_workers_finish(struct mt_workers *w);
void mt_workers_free(struct mt_workers *w);

#endif
