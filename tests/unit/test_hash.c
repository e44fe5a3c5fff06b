/* SHA-256 in batches (mt_sha256_hex_batch): the FIPS 180-2 examples, and
 * every length around the padding's edges against Nettle one at a time,
 * through the two-lane path and through the portable one. */
#include <stdbool.h>
#include <string.h>

#include <glib.h>

#include "hash.h"

static const struct {
    const char *in;
    size_t repeat; /* in, this many times */
    const char *sha256;
} vectors[] = {
    {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    /* 56 bytes: the length no longer fits the last block, two padding blocks */
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
};

static void run_vectors(bool portable)
{
    size_t n = G_N_ELEMENTS(vectors);
    struct mt_hash_job jobs[G_N_ELEMENTS(vectors)];
    char hex[G_N_ELEMENTS(vectors)][65];
    GString *bufs[G_N_ELEMENTS(vectors)];

    for (size_t i = 0; i < n; i++) {
        bufs[i] = g_string_new(NULL);
        for (size_t r = 0; r < vectors[i].repeat; r++)
            g_string_append(bufs[i], vectors[i].in);
        jobs[i] = (struct mt_hash_job){(const uint8_t *)bufs[i]->str, bufs[i]->len, hex[i]};
    }
    mt_sha256_batch_portable = portable;
    mt_sha256_hex_batch(jobs, n);
    mt_sha256_batch_portable = false;
    for (size_t i = 0; i < n; i++) {
        g_assert_cmpstr(hex[i], ==, vectors[i].sha256);
        g_string_free(bufs[i], TRUE);
    }
}

static void test_vectors(void)
{
    run_vectors(false);
}

static void test_vectors_portable(void)
{
    run_vectors(true);
}

/* Batches of 1 to 40 jobs (past the 16 sorted on the stack), each of a
 * length from 0 to 300 or a large one, from a fixed seed: every digest as
 * Nettle gives it for that job alone, whatever the lane it went through
 * and whatever ran beside it. */
static void test_against_nettle(void)
{
    GRand *rnd = g_rand_new_with_seed(7);
    size_t big = 1u << 20;
    uint8_t *data = g_malloc(big + 64);

    for (size_t i = 0; i < big + 64; i++)
        data[i] = (uint8_t)g_rand_int(rnd);
    for (unsigned round = 0; round < 300; round++) {
        size_t n = 1 + (size_t)g_rand_int_range(rnd, 0, 40);
        struct mt_hash_job *jobs = g_new0(struct mt_hash_job, n);
        char (*got)[65] = g_malloc0(n * sizeof *got);
        for (size_t i = 0; i < n; i++) {
            size_t len = g_rand_int_range(rnd, 0, 8) == 0 ? (size_t)g_rand_int_range(rnd, 0, (gint32)big)
                                                         : (size_t)g_rand_int_range(rnd, 0, 301);
            size_t off = (size_t)g_rand_int_range(rnd, 0, 64); /* any alignment */
            jobs[i] = (struct mt_hash_job){len ? data + off : NULL, len, got[i]};
        }
        mt_sha256_hex_batch(jobs, n);
        for (size_t i = 0; i < n; i++) {
            char want[65];
            mt_sha256_hex(jobs[i].p, jobs[i].n, want);
            g_assert_cmpstr(got[i], ==, want);
        }
        g_free(got);
        g_free(jobs);
    }
    /* every length from 0 to 300, all in one batch, shortest first */
    struct mt_hash_job jobs[301];
    char got[301][65];
    for (size_t i = 0; i <= 300; i++)
        jobs[i] = (struct mt_hash_job){data, i, got[i]};
    mt_sha256_hex_batch(jobs, G_N_ELEMENTS(jobs));
    for (size_t i = 0; i <= 300; i++) {
        char want[65];
        mt_sha256_hex(data, i, want);
        g_assert_cmpstr(got[i], ==, want);
    }
    g_free(data);
    g_rand_free(rnd);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hash/vectors", test_vectors);
    g_test_add_func("/hash/vectors_portable", test_vectors_portable);
    g_test_add_func("/hash/against_nettle", test_against_nettle);
    return g_test_run();
}
