/* Fuzz harness: one SASL exchange through mt_sasl_*.
 *
 * Input: byte 0 chooses the mechanism (mechs[] below, modulo its size);
 * the rest is split at '\n' into steps.  A step starting with 'S' is a
 * server challenge (the rest of the line is the Base64 text), a step that
 * is exactly "*" cancels, anything else is a client response with the
 * whole line as Base64.  Each step is copied into a buffer of exactly its
 * length, so a read past b64[n) is caught.  The "APOP" entry instead runs
 * mt_apop_hash on the first two lines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "sasl.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const mechs[] = {
    "PLAIN",    "LOGIN", "CRAM-MD5",   "XOAUTH2",     "OAUTHBEARER", "NTLM",      "plain", "login",
    "cram-md5", "ntlm",  "DIGEST-MD5", "SCRAM-SHA-1", "GSSAPI",      "X-UNKNOWN", "",      "APOP",
};
#define NMECHS (sizeof(mechs) / sizeof(mechs[0]))
#define MAX_STEPS 64

static void on_anomaly(void *ud, enum mt_anomaly a, const char *detail)
{
    (void)ud;
    fz_touch_str(mt_anomaly_name(a));
    fz_touch_str(detail);
}

static void run_apop(const uint8_t *p, size_t n)
{
    const uint8_t *lf = memchr(p, '\n', n);
    size_t k = lf ? (size_t)(lf - p) : n;
    char *ts = g_strndup((const char *)p, k);
    char *dg = lf ? g_strndup((const char *)lf + 1, n - k - 1) : g_strdup("");
    char *h = mt_apop_hash(ts, dg);
    fz_touch_str(h);
    g_free(h);
    g_free(ts);
    g_free(dg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *mech = mechs[data[0] % NMECHS];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (strcmp(mech, "APOP") == 0) {
        run_apop(p, n);
        return 0;
    }

    /* the mechanism name itself, exactly sized too */
    size_t ml = strlen(mech);
    char *mbuf = malloc(ml ? ml : 1);
    memcpy(mbuf, mech, ml);
    struct mt_sasl *s = mt_sasl_new(mbuf, ml);
    free(mbuf);

    for (int steps = 0; n > 0 && steps < MAX_STEPS; steps++) {
        const uint8_t *lf = memchr(p, '\n', n);
        size_t k = lf ? (size_t)(lf - p) : n;
        enum mt_dir dir = MT_C2S;
        const uint8_t *b = p;
        size_t bn = k;
        if (k == 1 && p[0] == '*') {
            mt_sasl_cancel(s);
        } else {
            if (k > 0 && p[0] == 'S') {
                dir = MT_S2C;
                b++;
                bn--;
            }
            char *buf = malloc(bn ? bn : 1);
            memcpy(buf, b, bn);
            char *note = mt_sasl_step(s, dir, buf, bn, on_anomaly, NULL);
            fz_touch_str(note);
            g_free(note);
            free(buf);
        }
        fz_touch(&(unsigned){mt_sasl_steps(s)}, sizeof(unsigned));
        if (!lf)
            break;
        p += k + 1;
        n -= k + 1;
    }

    struct mt_credential c;
    memset(&c, 0, sizeof(c));
    mt_sasl_finish(s, &c);
    fz_touch_cred(&c);
    mt_credential_clear(&c);
    mt_sasl_free(s);
    return 0;
}
