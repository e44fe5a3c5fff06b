/* The floor of the benchmark: a bare libpcap loop that reads every packet of
 * a capture and touches every byte of it, and nothing else.  No tool that
 * reads the capture through libpcap can be faster than this.
 *
 * Build: gcc -O2 -o floor floor.c -lpcap
 * Usage: floor FILE   (prints packets, bytes and a checksum of the bytes,
 *                      so the compiler cannot drop the loop)
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Sums the bytes eight at a time (memcpy: no alignment assumption). */
static uint64_t floor_touch(const u_char *p, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, sizeof w);
        acc += w;
    }
    for (; i < n; i++)
        acc += p[i];
    return acc;
}

int main(int argc, char **argv)
{
    char errbuf[PCAP_ERRBUF_SIZE];
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 1;
    }
    pcap_t *pc = pcap_open_offline(argv[1], errbuf);
    if (pc == NULL) {
        fprintf(stderr, "floor: %s\n", errbuf);
        return 2;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t packets = 0, bytes = 0, sum = 0;
    int rc;
    while ((rc = pcap_next_ex(pc, &h, &data)) == 1) {
        packets++;
        bytes += h->caplen;
        sum += floor_touch(data, h->caplen);
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "floor: %s\n", pcap_geterr(pc));
        pcap_close(pc);
        return 2;
    }
    pcap_close(pc);
    printf("packets %llu bytes %llu sum %016llx\n", (unsigned long long)packets,
           (unsigned long long)bytes, (unsigned long long)sum);
    return 0;
}
