#ifndef MT_OUTPUT_INT_H
#define MT_OUTPUT_INT_H

#include "buf.h"
#include "output.h"

struct mt_output {
    struct mt_output_opts o;
    struct mt_extractor *x;
    GString *buf;     /* events printed but not yet written to o.out */
    bool direct;      /* write each event at once (live capture, a terminal) */
    struct mt_time_cache tc;
    GPtrArray *creds; /* rows for --credentials: char*[7] */
    struct mt_summary *summary;
};

void mt_json_event(struct mt_output *o, const struct mt_event *ev);
void mt_text_event(struct mt_output *o, const struct mt_event *ev);

#endif
