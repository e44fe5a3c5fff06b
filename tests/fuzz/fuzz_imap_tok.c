/* Fuzz harness: the IMAP tokenizer (dissect/imap_tok.h) on one direction.
 *
 * Input: byte 0 configures the run, the rest is the byte stream.
 *   bit 0     server side (responses: resp-text is TEXT)
 *   bit 1     tight caps: line_max 64, literal_max 32, nest_max 4, display_max 128
 *             (else the defaults of caps.h, display_max 4096)
 *   bit 2     the callback calls imap_tok_pause() at every LITERAL token; the
 *             harness feeds the rest again, as the dissector does for COMPRESS
 *   bit 3     after every third piece, a 5-byte gap (imap_tok_gap), and a
 *             waiting synchronising literal is refused (imap_tok_cancel_literal)
 *   bits 4-7  k: the stream is fed in pieces of k*k bytes (k = 0: all at once)
 * Every token's bytes, and the display copy at each EOL, are read. */
#include <stdint.h>
#include <string.h>

#include "imap_tok.h"
#include "caps.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    struct imap_tok *t;
    bool pause_literals;
    unsigned tokens;
};

static void on_token(void *ud, const struct imap_token *tk)
{
    struct run *r = ud;
    r->tokens++;
    fz_touch(tk->p, tk->n);
    fz_touch(&tk->size, sizeof(tk->size));
    if (tk->type == IMAP_TOK_EOL) {
        size_t n = 0;
        const uint8_t *d = imap_tok_display(r->t, &n);
        fz_touch(d, n);
    }
    if (tk->type == IMAP_TOK_LITERAL && r->pause_literals)
        imap_tok_pause(r->t);
}

static void on_anomaly(void *ud, enum mt_anomaly a, const char *detail)
{
    (void)ud;
    fz_touch_str(mt_anomaly_name(a));
    fz_touch_str(detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t cfgb = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    struct run r = {.pause_literals = (cfgb & 4) != 0};
    struct imap_tok_cfg cfg = {
        .server = (cfgb & 1) != 0,
        .line_max = MT_DEF_LINE_MAX,
        .literal_max = MT_DEF_LITERAL_MAX,
        .nest_max = MT_DEF_IMAP_NEST_MAX,
        .display_max = 4096,
        .cb = on_token,
        .ud = &r,
        .anomaly = on_anomaly,
    };
    if (cfgb & 2) {
        cfg.line_max = 64;
        cfg.literal_max = 32;
        cfg.nest_max = 4;
        cfg.display_max = 128;
    }
    r.t = imap_tok_new(&cfg);
    size_t k = cfgb >> 4;
    size_t piece = k ? k * k : n;
    unsigned pieces = 0;
    while (n > 0) {
        size_t m = piece < n ? piece : n;
        /* a pause leaves bytes unconsumed: feed them again (a pause that
         * consumes nothing would loop: then drop the piece, as a caller
         * switching to TLS would) */
        size_t off = 0;
        while (off < m) {
            size_t used = imap_tok_feed(r.t, p + off, m - off);
            if (used == 0)
                break;
            off += used;
        }
        p += m;
        n -= m;
        if ((cfgb & 8) && ++pieces % 3 == 0) {
            if (imap_tok_awaiting_literal(r.t))
                imap_tok_cancel_literal(r.t);
            else
                (void)imap_tok_gap(r.t, 5);
        }
        fz_touch(&(bool){imap_tok_in_line(r.t)}, sizeof(bool));
    }
    imap_tok_free(r.t);
    return 0;
}
