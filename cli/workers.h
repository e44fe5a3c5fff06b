/* --workers N: flows sharded by a symmetric hash of their addresses and
 * ports over N threads, each with its own engine and output. */
#ifndef MT_WORKERS_H
#define MT_WORKERS_H

#include "capture.h"
#include "engine.h"
#include "output.h"

struct mt_workers;

/* Capture files that every worker reads for itself (regular files only:
 * each opens them again), with the reading thread's -f and -c. */
struct mt_workers_files {
    const char *const *paths;
    const uint64_t *upto; /* each file is read no further (mt_source_open_file_upto) */
    unsigned n;
    const char *filter;   /* NULL: none */
    uint64_t count;       /* 0: every record */
};

/* Creates n workers, each with an engine over lim and an output made from
 * oo (all writing to the same stream, one whole event per write).  With
 * files, workers 1 to n-1 read them at once, each keeping its own shard's
 * packets; without, they take the packets the reading thread copies into
 * their rings. */
struct mt_workers *mt_workers_new(unsigned n, const struct mt_limits *lim,
                                  const struct mt_output_opts *oo,
                                  const struct mt_workers_files *files, char *err, size_t errlen);
/* An mt_packet_cb for the reading thread: analyzes the packet if its flow
 * is shard 0's, else copies it to its flow's worker (with files: drops it,
 * its worker reads it too). */
void mt_workers_packet(void *workers, const struct mt_packet *pk);
/* With files: shard 0's engine, for the reading thread's window
 * (mt_source_set_window_cb); NULL with rings (the packets are copies). */
struct mt_engine *mt_workers_reader_engine(struct mt_workers *w);
/* Async-signal-safe: the workers reading files stop soon (SIGINT). */
void mt_workers_stop(struct mt_workers *w);
/* End of input: every worker flushes its sessions; their outputs are
 * merged into the first one, which is returned (owned by the pool). */
struct mt_output *mt_workers_finish(struct mt_workers *w);
void mt_workers_free(struct mt_workers *w);

#endif
