#ifndef MT_OUTPUT_INT_H
#define MT_OUTPUT_INT_H

#include "output.h"

struct mt_output {
    struct mt_output_opts o;
    struct mt_extractor *x;
    GString *buf;
    GPtrArray *creds; /* rows for --credentials: char*[7] */
    struct mt_summary *summary;
};

void mt_json_event(struct mt_output *o, const struct mt_event *ev);
void mt_text_event(struct mt_output *o, const struct mt_event *ev);

#endif
