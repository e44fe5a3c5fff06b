/* SHA-256 through Nettle, which uses the CPU's SHA extensions (see
 * ../shared/PERFORMANCE.md: about 3.5x GLib's GChecksum here). */
#ifndef MT_HASH_H
#define MT_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nettle/sha2.h>

struct mt_sha256 {
    struct sha256_ctx ctx;
};

void mt_sha256_init(struct mt_sha256 *h);
void mt_sha256_update(struct mt_sha256 *h, const void *p, size_t n);
/* Writes 64 hex digits and a NUL. */
void mt_sha256_final_hex(struct mt_sha256 *h, char out[65]);
void mt_sha256_hex(const void *p, size_t n, char out[65]);

/* Several digests at once: each job's 64 hex digits and a NUL go to its
 * hex.  With the CPU's SHA extensions, two jobs are hashed side by side:
 * one SHA-256 is a chain of dependent rounds that leaves the SHA unit
 * idle half the time, and a second, independent chain fills it (about
 * 3.2 GB/s for two against 1.6 GB/s for one, here).  A message and its
 * decoded parts are hashed this way (mime.c). */
struct mt_hash_job {
    const uint8_t *p; /* may be NULL when n is 0 */
    size_t n;
    char *hex;        /* 65 bytes */
};
void mt_sha256_hex_batch(struct mt_hash_job *jobs, size_t n);

/* Tests only: true makes mt_sha256_hex_batch hash one job after the other
 * through Nettle, as on a CPU without SHA extensions. */
extern bool mt_sha256_batch_portable;

/* MD5 hex of p (used to check CRAM-MD5/APOP-style digests in tests). */
void mt_md5_hex(const void *p, size_t n, char out[33]);

#endif
