/* Fuzz harness: a whole capture file (pcap or pcapng, any link type),
 * read as the command reads it (mt_source_open_file, mt_source_run: a
 * classic pcap file through its window, with the engine told of the
 * window so that the retransmission check refers to the mapped bytes) and
 * run through the engine to a sink that writes nothing.  The input goes to
 * a memfd so the file front end (magic sniffing, record offsets, error
 * messages) is the one the command uses. */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine.h"
#include "mime.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz_capture", MFD_CLOEXEC);
    if (fd < 0 || write_all(fd, data, size) < 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

    struct mt_limits lim;
    mt_limits_default(&lim);
    mt_mime_global_init();
    struct mt_engine *e = mt_engine_new(&lim, fz_sink, NULL);
    struct mt_decoder *d = mt_decoder_new(&lim);
    uint64_t num = 0;
    char err[512] = "";
    struct mt_source *src = NULL;
    if (mt_source_open_file(&src, path, err, sizeof(err)) == MT_CAP_OK) {
        mt_source_set_window_cb(src, mt_engine_window, e);
        (void)mt_source_run(src, d, &num, 0, mt_engine_packet, e, NULL, NULL, err, sizeof(err));
        mt_source_close(src);
    }
    fz_touch_str(err);
    mt_engine_finish(e);
    mt_decoder_free(d);
    mt_engine_free(e);
    close(fd);
    return 0;
}
