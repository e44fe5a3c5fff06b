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
    struct mt_bytes *rec_lines; /* a reply record's lines, read (mt_output_frames) */
    size_t rec_lines_cap;
    bool print_here;  /* handoff_records: commands and replies printed here too */
};

void mt_json_event(struct mt_output *o, const struct mt_event *ev);
void mt_text_event(struct mt_output *o, const struct mt_event *ev);

/* records.c: the frames of mt_output_opts.handoff_records.  A frame is a
 * kind byte, a 4-byte length, and that many bytes. */
#define MT_FRAME_HEAD 5
#define MT_FRAME_TEXT 'T'
#define MT_FRAME_COMMAND 'C'
#define MT_FRAME_REPLY 'R'
/* Starts a frame of kind at the end of b; returns where it starts. */
size_t mt_frame_open(GString *b, char kind);
/* Ends the frame begun at at (one left empty is taken back out). */
void mt_frame_close(GString *b, size_t at);
/* The frame at the start of p[0..n): its kind, payload and length; returns
 * its whole size, or 0 if p does not start with a whole frame. */
size_t mt_frame_next(const char *p, size_t n, char *kind, const char **payload, uint32_t *len);
/* Appends a command or reply event as a record frame. */
void mt_rec_put(GString *b, const struct mt_event *ev);
/* The event of a record's payload p[0..n), pointing into p; its session
 * is si, holding only the id.  A reply's lines go to *lines (grown to
 * *lines_cap as needed).  False if the payload is not one mt_rec_put
 * wrote. */
bool mt_rec_get(char kind, const char *p, size_t n, struct mt_event *ev,
                struct mt_session_info *si, struct mt_bytes **lines, size_t *lines_cap);

#endif
