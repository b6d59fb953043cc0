/* tocsin — SPDX-License-Identifier: MIT
 *
 * One mail over SMTP (DESIGN §6): an easy handle on the loop's curl driver
 * (net/curl_uv.h, whose pool keeps SMTP connections open between mails) that
 * sends a built message to one recipient as smtp.* configures, and the
 * outcome sorted into sent / try again / give up. It neither builds messages
 * (mime.h) nor decides retries (the mailer does).
 * @loop the curl driver's loop.
 */
#ifndef TC_EMAIL_SMTP_H
#define TC_EMAIL_SMTP_H

#include "config/config.h"
#include "net/curl_uv.h"
#include "util/util.h"

#include <stddef.h>
#include <stdint.h>

enum tc_smtp_class {
    TC_SMTP_SENT,      /* the server accepted the message (250 after DATA) */
    TC_SMTP_TRANSIENT, /* 4xx, no connection, timeout, TLS failure, AUTH refused */
    TC_SMTP_PERMANENT, /* any other 5xx: retrying would not help */
};

/* How one send ended. Strings are borrowed for the callback. */
struct tc_smtp_result {
    enum tc_smtp_class cls;
    long code;         /* the server's last reply code (CURLINFO_RESPONSE_CODE); 0 = none */
    const char *error; /* NULL when sent; else curl's detail ("RCPT failed: 550") */
    uint64_t duration_ms;
};

typedef void (*tc_smtp_done_fn)(void *arg, const struct tc_smtp_result *r);

struct tc_smtp_send;

/* Lowercase name of a class ("sent", "transient", "permanent"). */
const char *tc_smtp_class_name(enum tc_smtp_class cls);

/* Sends msg[0..len) (a whole RFC 5322 message with CRLF line ends, e.g. from
 * tc_email_mime_build) from cfg->smtp_from to `to` through cfg->smtp_url:
 * STARTTLS required when smtp.starttls (smtps:// is TLS from the start),
 * certificates checked against smtp.ca_file when set, AUTH when
 * smtp.username is set, the whole exchange bounded by smtp.timeout. Both
 * addresses are checked again here (tc_email_address_check), because libcurl
 * copies CR/LF in them straight into SMTP commands.
 * @takes msg (freed when the send ends or is abandoned, and on failure);
 * @borrows curl, cfg and `to`; cfg must outlive the send.
 * Returns 0, *out set (may be NULL when the caller never abandons), and cb
 * runs exactly once, never before this returns; or TC_EINVAL (an address
 * fails its check, or smtp.url is empty; err says which) and cb never runs. */
int tc_smtp_send(struct tc_curl_uv *curl, const struct tc_config *cfg, const char *to, char *msg,
                 size_t len, tc_smtp_done_fn cb, void *arg, struct tc_smtp_send **out,
                 struct tc_error *err);

/* Abandons a send in flight (shutdown): the transfer leaves the curl driver,
 * the connection is dropped, memory is freed, cb never runs. The server may
 * or may not have taken the message: at-least-once. */
void tc_smtp_abandon(struct tc_smtp_send *s);

#endif
