/* Digests through Nettle, which picks the CPU's SHA extensions at run time. */
#include "hash.h"

#include <nettle/md5.h>

static void hash_hex(const uint8_t *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void mt_sha256_init(struct mt_sha256 *h)
{
    sha256_init(&h->ctx);
}

void mt_sha256_update(struct mt_sha256 *h, const void *p, size_t n)
{
    if (n) /* p may be NULL when n is 0 */
        sha256_update(&h->ctx, n, p);
}

void mt_sha256_final_hex(struct mt_sha256 *h, char out[65])
{
    uint8_t d[SHA256_DIGEST_SIZE];

    sha256_digest(&h->ctx, sizeof d, d);
    hash_hex(d, sizeof d, out);
}

void mt_sha256_hex(const void *p, size_t n, char out[65])
{
    struct mt_sha256 h;

    mt_sha256_init(&h);
    mt_sha256_update(&h, p, n);
    mt_sha256_final_hex(&h, out);
}

void mt_md5_hex(const void *p, size_t n, char out[33])
{
    struct md5_ctx ctx;
    uint8_t d[MD5_DIGEST_SIZE];

    md5_init(&ctx);
    md5_update(&ctx, n, p);
    md5_digest(&ctx, sizeof d, d);
    hash_hex(d, sizeof d, out);
}
