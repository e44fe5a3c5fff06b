/* --html FILE: one self-contained HTML page of the whole run (html.c). */
#ifndef MT_HTML_H
#define MT_HTML_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"

struct mt_html;

/* Opens path for writing (fails with a message in err).  extract_dir is
 * the -x directory or NULL: attachments saved there are linked.  redact:
 * passwords, tokens and hashes are masked as in the other outputs. */
struct mt_html *mt_html_new(const char *path, const char *extract_dir, bool redact, char *err,
                            size_t errlen);
/* Records what the page needs from one event (copies: events are only
 * valid during the call).  Called after the extractor, so file fields are
 * set. */
void mt_html_event(struct mt_html *h, const struct mt_event *ev);
/* Writes the page and closes the file; false on a write error. */
bool mt_html_finish(struct mt_html *h, char *err, size_t errlen);
void mt_html_free(struct mt_html *h);

#endif
