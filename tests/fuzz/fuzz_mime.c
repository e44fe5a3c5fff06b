/* Fuzz harness: mt_mime_parse on a whole message (RFC 5322, CRLF or LF),
 * under the default caps, then every field of the result is read.  Then
 * the fast path (mime_fast.c) against GMime's full parse: where the fast
 * path takes the message, any difference is a crash.  And what GMime is
 * handed, with the header fields past the caps left out, must pass the
 * same guard as it stands (mime_guard_selfcheck). */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include "mime.h"
#include "mime_int.h"
#include "fuzz_common.h"
#include "../unit/mime_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_anomaly(void *ud, enum mt_anomaly a, const char *detail)
{
    (void)ud;
    fz_touch_str(mt_anomaly_name(a));
    fz_touch_str(detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mt_limits lim;
    mt_limits_default(&lim);
    mt_mime_global_init();
    struct mt_mime_result r;
    memset(&r, 0, sizeof(r));
    mt_mime_parse(data, size, &lim, &r, on_anomaly, NULL);
    fz_touch_headers(&r.headers);
    for (size_t i = 0; i < r.nparts; i++)
        fz_touch_part(&r.parts[i]);
    mt_mime_result_clear(&r);

    GString *why = g_string_new(NULL);
    if (mime_diff(data, size, &lim, why) == 1) {
        fprintf(stderr, "fast MIME path differs from GMime: %s\n", why->str);
        abort();
    }
    g_string_free(why, TRUE);

    uint64_t left_out;
    if (!mime_guard_selfcheck(data, size, &left_out)) {
        fprintf(stderr, "GMime handed fields the guard refuses after %" PRIu64 " left out\n",
                left_out);
        abort();
    }
    return 0;
}
