/* mailtap's outputs: the text transcript, JSON Lines and file extraction.
 * mt_output_event is an mt_sink_fn. */
#ifndef MT_OUTPUT_H
#define MT_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

#include <glib.h>

#include "event.h"

enum mt_format { MT_FMT_TEXT = 0, MT_FMT_JSON, MT_FMT_CREDENTIALS };

struct mt_output_opts {
    enum mt_format format;
    bool redact;             /* mask passwords, tokens and hashes */
    bool flush_each;         /* flush after every event (live capture) */
    const char *extract_dir; /* NULL: no extraction */
    FILE *out;
    mt_sink_fn tee;          /* also gets every event, after extraction (--html) */
    void *tee_ud;
    /* Set: the printed events go to handoff instead of out, n bytes of
     * whole events at a time (p is valid during the call only). */
    void (*handoff)(void *ud, const char *p, size_t n);
    void *handoff_ud;
    /* With handoff: commands and replies are handed off as records of
     * their fields, unprinted, and the printed events around them in
     * frames; the output that receives them prints the records
     * (mt_output_frames).  Printing then happens on the receiver's thread.
     * Both formats print records the same as events (unit-tested); the
     * message thread (cli/pipeline.c) sets it for JSON only, where it
     * takes work off the reading thread while the message thread has time
     * to spare (mt_output_print_here). */
    bool handoff_records;
};

struct mt_output;

/* NULL with a message in err when the extraction directory is unusable. */
struct mt_output *mt_output_new(const struct mt_output_opts *o, char *err, size_t errlen);
void mt_output_event(void *output, struct mt_event *ev);
/* Writes (or hands off) what is printed so far, now. */
void mt_output_flush(struct mt_output *o);
/* Appends bytes printed elsewhere (another output's handoff buffer) as
 * they are, in order with this output's own events. */
void mt_output_raw(struct mt_output *o, const char *p, size_t n);
/* The same for what an output with handoff_records handed off (whole
 * frames): printed events as they are, records printed here.  False if
 * p[0..n) is not such frames (nothing more of it is printed). */
bool mt_output_frames(struct mt_output *o, const char *p, size_t n);
/* With handoff_records: true prints the commands and replies here too, in
 * text frames like the other events; false (the default) hands them off
 * as records.  The bytes finally written are the same either way; only
 * the thread that prints them changes (cli/pipeline.c: the one that has
 * time to spare). */
void mt_output_print_here(struct mt_output *o, bool here);
/* End of run: the credentials table (--credentials). */
void mt_output_finish(struct mt_output *o);
void mt_output_free(struct mt_output *o);

/* ---- the closing summary (summary.c) ---- */
struct mt_run_stats {
    uint64_t packets, bytes, tcp, bad;
    uint64_t frag_incomplete, frag_overflow; /* capture-level anomalies */
    bool live;
    uint64_t recv, drop, ifdrop;  /* pcap_stats, live only */
};
struct mt_summary;
struct mt_summary *mt_summary_new(void);
void mt_summary_free(struct mt_summary *s);
void mt_summary_event(struct mt_summary *s, const struct mt_event *ev);
void mt_summary_print(const struct mt_summary *s, const struct mt_run_stats *rs, bool json,
                      FILE *out);
/* The output's own summary. */
struct mt_summary *mt_output_summary(struct mt_output *o);
/* Adds what src counted (summary, credential rows) to dst: the
 * outputs of several workers become one. */
void mt_output_merge(struct mt_output *dst, struct mt_output *src);
void mt_summary_merge(struct mt_summary *dst, const struct mt_summary *src);

/* ---- helpers shared by the printers (escape.c) ---- */

/* Appends p[0..n) for a terminal: printable UTF-8 as is, everything else
 * (control characters, escape sequences, invalid UTF-8) as \xNN, \t, \r. */
void mt_esc_text(GString *out, const void *p, size_t n);
/* Appends a JSON string literal (with quotes).  Invalid UTF-8 bytes become
 * U+FFFD; returns false if any did (the caller may add the raw bytes). */
bool mt_esc_json(GString *out, const void *p, size_t n);
/* Decimal digits of v. */
void mt_append_u64(GString *out, uint64_t v);
/* ESMTP parameters ("SIZE=454 BODY=8BITMIME") as a JSON object, keywords
 * upper-cased, each once (the first value of one given again). */
void mt_json_esmtp_params(GString *out, const char *params);
/* A session's anomaly counts as a JSON object {"name": count, ...}. */
void mt_json_anomaly_counts(GString *out, const uint32_t *counts);
/* RFC 3339 UTC with microseconds. */
void mt_fmt_time(GString *out, int64_t us);
/* Masks the values of password="...", token="..." and hash="..." in a note. */
char *mt_redact_note(const char *note);

/* ---- extraction (extract.c) ---- */
struct mt_extractor;
struct mt_extractor *mt_extractor_new(const char *dir, char *err, size_t errlen);
void mt_extractor_free(struct mt_extractor *x);
/* Writes the message (.eml) and its leaf parts with a file name or a
 * non-text type; sets msg->file and parts[i].file (paths under dir). */
void mt_extract_message(struct mt_extractor *x, const struct mt_session_info *s,
                        struct mt_message *msg);
/* A name safe to create in one directory: no separators, no control
 * characters, no leading dot, not a reserved device name, at most
 * MT_CAP_FILENAME bytes, valid UTF-8.  g_free the result. */
char *mt_safe_filename(const char *name);

#endif
