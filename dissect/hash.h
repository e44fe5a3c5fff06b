/* SHA-256 through Nettle, which uses the CPU's SHA extensions (see
 * ../shared/PERFORMANCE.md: about 3.5x GLib's GChecksum here). */
#ifndef MT_HASH_H
#define MT_HASH_H

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

/* MD5 hex of p (used to check CRAM-MD5/APOP-style digests in tests). */
void mt_md5_hex(const void *p, size_t n, char out[33]);

#endif
