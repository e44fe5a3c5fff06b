/* Digests through Nettle, which picks the CPU's SHA extensions at run
 * time; batches of SHA-256 digests two at a time through those extensions
 * directly (Nettle hashes one message at a time). */
#include "hash.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>
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

/* ---- two digests side by side (mt_sha256_hex_batch) ---- */

bool mt_sha256_batch_portable;

/* Without the SHA extensions: one job after the other, through Nettle. */
static void batch_one_by_one(struct mt_hash_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mt_sha256_hex(jobs[i].p, jobs[i].n, jobs[i].hex);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>

#define SHA_NI_FN __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

/* The SHA instructions keep the eight words as ABEF and CDGH. */
SHA_NI_FN static void ni_load(const uint32_t st[8], __m128i *abef, __m128i *cdgh)
{
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)st), 0xB1);
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(st + 4)), 0x1B);
    *abef = _mm_alignr_epi8(dcba, hgfe, 8);
    *cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);
}

SHA_NI_FN static void ni_store(uint32_t st[8], __m128i abef, __m128i cdgh)
{
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)st, _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)(st + 4), _mm_alignr_epi8(dchg, feba, 8));
}

/* Rounds 4g to 4g+3 of one block at p: w[g & 3] holds the message words
 * of these rounds; the schedule for later rounds is computed alongside
 * (the words of group g+1 finished, those of group g+3 begun). */
#define NI_GROUP(S0, S1, w, g, p)                                                            \
    do {                                                                                     \
        if ((g) < 4)                                                                         \
            w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 16 * (g))), bswap); \
        __m128i k_ = _mm_add_epi32(w[(g) & 3], _mm_loadu_si128((const __m128i *)&sha_k[4 * (g)])); \
        S1 = _mm_sha256rnds2_epu32(S1, S0, k_);                                              \
        if ((g) >= 3 && (g) < 15) {                                                          \
            __m128i t_ = _mm_alignr_epi8(w[(g) & 3], w[((g) - 1) & 3], 4);                   \
            w[((g) + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(w[((g) + 1) & 3], t_),     \
                                                    w[(g) & 3]);                             \
        }                                                                                    \
        S0 = _mm_sha256rnds2_epu32(S0, S1, _mm_shuffle_epi32(k_, 0x0E));                     \
        if ((g) >= 1 && (g) < 13)                                                            \
            w[((g) - 1) & 3] = _mm_sha256msg1_epu32(w[((g) - 1) & 3], w[(g) & 3]);           \
    } while (0)

/* nblocks blocks of 64 bytes into one state. */
SHA_NI_FN static void ni_blocks1(uint32_t st[8], const uint8_t *p, size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i s0, s1;

    ni_load(st, &s0, &s1);
    for (; nblocks; nblocks--, p += 64) {
        __m128i a0 = s0, a1 = s1, w[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++)
            NI_GROUP(s0, s1, w, g, p);
        s0 = _mm_add_epi32(s0, a0);
        s1 = _mm_add_epi32(s1, a1);
    }
    ni_store(st, s0, s1);
}

/* nblocks blocks into each of two states, the two chains interleaved. */
SHA_NI_FN static void ni_blocks2(uint32_t sa[8], const uint8_t *pa, uint32_t sb[8],
                                 const uint8_t *pb, size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i s0, s1, t0, t1;

    ni_load(sa, &s0, &s1);
    ni_load(sb, &t0, &t1);
    for (; nblocks; nblocks--, pa += 64, pb += 64) {
        __m128i a0 = s0, a1 = s1, b0 = t0, b1 = t1, w[4], v[4];
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            NI_GROUP(s0, s1, w, g, pa);
            NI_GROUP(t0, t1, v, g, pb);
        }
        s0 = _mm_add_epi32(s0, a0);
        s1 = _mm_add_epi32(s1, a1);
        t0 = _mm_add_epi32(t0, b0);
        t1 = _mm_add_epi32(t1, b1);
    }
    ni_store(sa, s0, s1);
    ni_store(sb, t0, t1);
}

static bool have_sha_ni(void)
{
    unsigned a, b, c, d;

    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return false;
    if (__get_cpuid_max(0, NULL) < 7)
        return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & bit_SHA) != 0;
}

/* One job on its way through a lane. */
struct lane {
    struct mt_hash_job *job;
    const uint8_t *p;
    size_t blocks; /* whole blocks left */
    uint32_t st[8];
};

static void lane_start(struct lane *l, struct mt_hash_job *j)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    l->job = j;
    l->p = j->p;
    l->blocks = j->n / 64;
    memcpy(l->st, iv, sizeof iv);
}

/* The last partial block, the padding and the length (FIPS 180-4 5.1.1),
 * then the digest in hex. */
static void lane_finish(struct lane *l)
{
    uint8_t tail[128] = {0}, d[32];
    size_t r = l->job->n % 64;
    size_t nb = r < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)l->job->n * 8;

    if (r)
        memcpy(tail, l->p, r);
    tail[r] = 0x80;
    for (int i = 0; i < 8; i++)
        tail[nb * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    ni_blocks1(l->st, tail, nb);
    for (int i = 0; i < 8; i++) {
        d[4 * i] = (uint8_t)(l->st[i] >> 24);
        d[4 * i + 1] = (uint8_t)(l->st[i] >> 16);
        d[4 * i + 2] = (uint8_t)(l->st[i] >> 8);
        d[4 * i + 3] = (uint8_t)l->st[i];
    }
    hash_hex(d, sizeof d, l->job->hex);
    l->job = NULL;
}

static void lane_advance(struct lane *l, size_t k)
{
    l->p += 64 * k;
    l->blocks -= k;
}

static int longer_first(const void *a, const void *b)
{
    size_t na = (*(struct mt_hash_job *const *)a)->n, nb = (*(struct mt_hash_job *const *)b)->n;
    return na < nb ? 1 : na > nb ? -1 : 0;
}

/* Longest first, each to the lane that frees up first: the two lanes then
 * end close together (a message beside its attachment, for one). */
static void batch_ni(struct mt_hash_job *jobs, size_t n)
{
    struct mt_hash_job *stack[16], **order = n <= 16 ? stack : g_new(struct mt_hash_job *, n);
    struct lane ln[2] = {{0}};
    size_t next = 0;

    for (size_t i = 0; i < n; i++)
        order[i] = &jobs[i];
    qsort(order, n, sizeof *order, longer_first); /* n is up to mime_parts_max + 1 */
    for (;;) {
        for (int i = 0; i < 2; i++)
            if (!ln[i].job && next < n)
                lane_start(&ln[i], order[next++]);
        if (!ln[0].job && !ln[1].job)
            break;
        if (ln[0].job && ln[1].job) {
            size_t k = MIN(ln[0].blocks, ln[1].blocks);
            if (k) {
                ni_blocks2(ln[0].st, ln[0].p, ln[1].st, ln[1].p, k);
                lane_advance(&ln[0], k);
                lane_advance(&ln[1], k);
            }
        } else {
            struct lane *l = ln[0].job ? &ln[0] : &ln[1];
            if (l->blocks) {
                ni_blocks1(l->st, l->p, l->blocks);
                lane_advance(l, l->blocks);
            }
        }
        for (int i = 0; i < 2; i++)
            if (ln[i].job && ln[i].blocks == 0)
                lane_finish(&ln[i]);
    }
    if (order != stack)
        g_free(order);
}

void mt_sha256_hex_batch(struct mt_hash_job *jobs, size_t n)
{
    static int ni = -1; /* not known yet; the same answer from any thread */
    int have = __atomic_load_n(&ni, __ATOMIC_RELAXED);

    if (have < 0) {
        have = have_sha_ni();
        __atomic_store_n(&ni, have, __ATOMIC_RELAXED);
    }
    if (have && !mt_sha256_batch_portable)
        batch_ni(jobs, n);
    else
        batch_one_by_one(jobs, n);
}

#else /* no SHA extensions to use */

void mt_sha256_hex_batch(struct mt_hash_job *jobs, size_t n)
{
    batch_one_by_one(jobs, n);
}

#endif
