/* SASL mechanisms as seen from the wire, for SMTP AUTH, POP3 AUTH and IMAP
 * AUTHENTICATE alike: the protocol dissector hands each Base64 step here
 * and gets back what it decoded; at the end it collects a credential. */
#ifndef MT_SASL_H
#define MT_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "anomaly.h"
#include "event.h"

struct mt_sasl;

/* mech as sent by the client ("plain", "LOGIN", "X-UNKNOWN" ...). */
struct mt_sasl *mt_sasl_new(const char *mech, size_t mech_len);

/* One step of the exchange, in wire order.  dir is MT_C2S for a client
 * response (including an initial response, where "=" means empty) and
 * MT_S2C for a server challenge (the text after "334 " or "+ ").  b64 is
 * the Base64 text without CRLF.  Returns a printable description of what
 * was decoded ("authzid=\"\" user=\"alice\" password=\"secret\"", "Username:",
 * "NTLM type 3: user=...") to show beside the Base64 line (g_free it), or
 * NULL.  Base64 that does not decode raises b64_invalid; a decoded message
 * that does not parse raises sasl_invalid.  Never reads outside b64[0..n). */
char *mt_sasl_step(struct mt_sasl *s, enum mt_dir dir, const char *b64, size_t n,
                   mt_anomaly_cb cb, void *ud);

/* The client cancelled with "*". */
void mt_sasl_cancel(struct mt_sasl *s);

/* Number of steps so far (both directions). */
unsigned mt_sasl_steps(const struct mt_sasl *s);

/* Fills out (which must be zeroed or cleared) with what was learnt:
 * mechanism (upper case), username, password, authzid, token, hash,
 * challenge, response, domain, workstation.  result is left to the
 * caller.  For an unknown mechanism the raw steps are kept in `response`
 * as "C:<b64> S:<b64> ...". */
void mt_sasl_finish(struct mt_sasl *s, struct mt_credential *out);

void mt_sasl_free(struct mt_sasl *s);

/* APOP (RFC 1939 7): the crackable line for hashcat mode 20,
 * md5($salt.$pass): "<digest>:<timestamp>".  g_free the result. */
char *mt_apop_hash(const char *timestamp, const char *digest);

#endif
