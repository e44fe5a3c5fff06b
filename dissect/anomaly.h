#ifndef MT_ANOMALY_H
#define MT_ANOMALY_H

enum mt_anomaly {
#define MT_ANOMALY(e, name, desc) MT_AN_##e,
#include "anomaly.def"
#undef MT_ANOMALY
    MT_AN__COUNT
};

const char *mt_anomaly_name(enum mt_anomaly a);
const char *mt_anomaly_desc(enum mt_anomaly a);

/* How pure decoders (SASL, MIME, tokenizers) report what they find wrong.
 * detail may be NULL; it is copied if kept. */
typedef void (*mt_anomaly_cb)(void *ud, enum mt_anomaly a, const char *detail);

#endif
