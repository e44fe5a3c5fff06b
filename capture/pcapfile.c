/* Reading capture files through libpcap: pcap and pcapng, "-" for stdin. */
#include "capture.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <pcap/pcap.h>

int mt_capture_read_file(const char *path, struct mt_decoder *d, uint64_t *num_base,
                         mt_packet_cb cb, void *ud, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE] = "";
    FILE *fp;
    bool is_stdin = strcmp(path, "-") == 0;

    if (is_stdin) {
        fp = stdin;
    } else {
        fp = fopen(path, "rb");
        if (!fp) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return MT_CAP_ERR_OPEN;
        }
    }
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_MICRO, ebuf);
    if (!p) {
        if (!is_stdin)
            fclose(fp);
        snprintf(err, errlen, "%s: not a capture file libpcap can read (%s)",
                 is_stdin ? "<stdin>" : path, ebuf);
        return MT_CAP_ERR_OPEN;
    }
    int dlt = pcap_datalink(p);
    if (!mt_decoder_supports(dlt)) {
        snprintf(err, errlen, "%s: link type %s (%d) is not supported",
                 is_stdin ? "<stdin>" : path,
                 pcap_datalink_val_to_name(dlt) ? pcap_datalink_val_to_name(dlt) : "?", dlt);
        pcap_close(p);
        return MT_CAP_ERR_OPEN;
    }

    int rc = MT_CAP_OK;
    for (;;) {
        struct pcap_pkthdr *h;
        const u_char *data;
        long off = is_stdin ? -1 : ftell(fp);
        int r = pcap_next_ex(p, &h, &data);
        if (r == 1) {
            (*num_base)++;
            int64_t ts = (int64_t)h->ts.tv_sec * 1000000 + h->ts.tv_usec;
            mt_decoder_packet(d, dlt, ts, *num_base, data, h->caplen, h->len, cb, ud);
            continue;
        }
        if (r == PCAP_ERROR_BREAK)
            break;
        /* r == PCAP_ERROR: damaged part-way; what came before was handed on */
        if (off >= 0)
            snprintf(err, errlen, "%s: damaged at byte offset %ld, after %llu records: %s", path,
                     off, (unsigned long long)*num_base, pcap_geterr(p));
        else
            snprintf(err, errlen, "<stdin>: damaged after %llu records: %s",
                     (unsigned long long)*num_base, pcap_geterr(p));
        rc = MT_CAP_ERR_READ;
        break;
    }
    pcap_close(p); /* closes fp too */
    return rc;
}
