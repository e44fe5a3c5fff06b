/* How far a byte buffer grows: the one doubling rule of the framer's
 * partial line, the reply's lines, the message buffer, the IMAP
 * tokenizer's scratch and the capability lists' words.  Pure, inline (it
 * sits on hot append paths). */
#ifndef MT_GROW_H
#define MT_GROW_H

#include <stddef.h>
#include <stdint.h>

/* The capacity for at least `need` bytes: `cap` (or `first` when the
 * buffer has none yet) doubled until it holds them, never past `max`.
 * A `need` past `max` gets `max`: the callers cut their input to their cap
 * before growing.  Doubling never wraps: past SIZE_MAX / 2 it gives `need`. */
static inline size_t mt_grow_cap(size_t cap, size_t first, size_t need, size_t max)
{
    size_t c = cap ? cap : first;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : c * 2;
    return c > max ? max : c;
}

#endif
