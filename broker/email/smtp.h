/* tocsin — SPDX-License-Identifier: MIT
 *
 * Sending mail over SMTP (DESIGN §6): one send is an easy handle on a curl
 * driver (net/curl_uv.h, whose pool keeps SMTP connections open between
 * mails) that hands a built message to one recipient as smtp.* configures,
 * with the outcome sorted into sent / try again / give up. The sending
 * thread runs such sends on a loop of its own for a home loop: libcurl's
 * SMTP waits, blocking, for the reply to the end of DATA (and for QUIT's),
 * up to smtp.timeout (curl issue #8555), which must never stall the main
 * loop. Neither builds messages (mime.h) nor decides retries (the mailer).
 */
#ifndef TC_EMAIL_SMTP_H
#define TC_EMAIL_SMTP_H

#include "config/config.h"
#include "net/curl_uv.h"
#include "util/util.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

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

/* Sends msg[0..len) on the curl driver's loop, which it may block for up
 * to smtp.timeout (see above: use it on a loop of its own, as the sending
 * thread does; tests call it directly). Sends msg[0..len) (a whole RFC 5322 message with CRLF line
 * ends, e.g. from tc_email_mime_build) from cfg->smtp_from to `to` through cfg->smtp_url: STARTTLS
 * required when smtp.starttls (smtps:// is TLS from the start), certificates checked against
 * smtp.ca_file when set, AUTH when smtp.username is set, the whole exchange bounded by
 * smtp.timeout. Both addresses are checked again here (tc_email_address_check), because libcurl
 * copies CR/LF in them straight into SMTP commands.
 * @takes msg (freed when the send ends or is abandoned, and on failure);
 * @borrows curl, cfg and `to`; cfg must outlive the send.
 * Returns 0 and cb runs exactly once, never before this returns; *out (out
 * may be NULL) is the send until cb runs, for tc_smtp_abandon. Or TC_EINVAL
 * (an address fails its check, or smtp.url is empty; err says which) and cb
 * never runs. */
int tc_smtp_send(struct tc_curl_uv *curl, const struct tc_config *cfg, const char *to, char *msg,
                 size_t len, tc_smtp_done_fn cb, void *arg, struct tc_smtp_send **out,
                 struct tc_error *err);

/* Abandons a send in flight (shutdown): the transfer leaves the curl driver,
 * the connection is dropped, memory is freed, cb never runs. The server may
 * or may not have taken the message: at-least-once. */
void tc_smtp_abandon(struct tc_smtp_send *s);

/* ---- the sending thread ---- */

struct tc_smtp_thread;

/* Starts a thread with its own uv loop and curl driver (at most
 * smtp.max_connections connections, kept open between mails). @borrows cfg,
 * which must outlive the thread. @loop home: the loop that calls the
 * functions below and on which every callback runs.
 * Returns 0 and *out, or TC_EIO (the thread could not start; err says why). */
int tc_smtp_thread_new(uv_loop_t *home, const struct tc_config *cfg, struct tc_smtp_thread **out,
                       struct tc_error *err);

/* Hands one send to the thread: as tc_smtp_send (addresses checked here,
 * before anything is queued), but cb runs on the home loop, exactly once,
 * never before this returns, and not at all once close was called.
 * @takes msg (also on failure). @borrows `to` for the call only.
 * Returns 0; TC_EINVAL (as tc_smtp_send) or TC_ESTATE (closing). */
int tc_smtp_thread_send(struct tc_smtp_thread *t, const char *to, char *msg, size_t len,
                        tc_smtp_done_fn cb, void *arg, struct tc_error *err);

/* Abandons queued and in-flight sends (their callbacks never run; the
 * server may or may not have taken those mails: at-least-once), closes the
 * pooled connections and ends the thread. A send curl is blocked in (the
 * reply to the end of DATA) ends within about 2 s and its connection is
 * dropped, not pooled, so a server that holds its reply cannot stall it. Memory is released before
 * close_cb (may be NULL) runs on the home loop. */
void tc_smtp_thread_close(struct tc_smtp_thread *t, void (*close_cb)(void *arg), void *arg);

#endif
