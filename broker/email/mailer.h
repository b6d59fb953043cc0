/* tocsin — SPDX-License-Identifier: MIT
 *
 * The mailer (DESIGN §6): claims due mails from the store under a lease,
 * builds each (a confirmation, or a digest of the updates coalesced for one
 * subscriber) from the templates with its signed link, sends it through the
 * SMTP sending thread, and records the outcome: delivered, retry at the next
 * step of email.retry_schedule, or failed. It also holds the key that signs
 * confirm and unsubscribe links, shared by every node through Redis.
 * @loop main: every function here, and every callback it makes.
 */
#ifndef TC_EMAIL_MAILER_H
#define TC_EMAIL_MAILER_H

#include "config/config.h"
#include "store/emails.h"
#include "util/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct tc_mailer;

/* @borrows loop, cfg and store, which must outlive the mailer. Nothing runs
 * until tc_mailer_start. */
struct tc_mailer *tc_mailer_new(uv_loop_t *loop, const struct tc_config *cfg,
                                struct tc_store *store);

/* Loads the templates (email.templates_dir, else the built-ins), checks
 * smtp.from and email.link_secret, starts the SMTP sending thread when
 * smtp.url is set, and the timer that claims due mails and samples the
 * queue gauges. Start-up errors name the key or the file:
 * "smtp.from: local part is empty", "email.templates_dir:
 * /etc/tocsin/mail/digest.html:3: ...". Returns 0, or TC_EINVAL / TC_ETOOBIG
 * / TC_EIO with err filled; then call tc_mailer_close.
 *
 * The link key: email.link_secret when set (its bytes are the key; Redis is
 * not asked); otherwise, once the store is ready, 32 random bytes in base64
 * are offered to Redis (tc_store_em_link_key): the first node's offer is
 * kept and every node uses the text Redis answers as the key. With smtp.url
 * empty nothing is sent, but the key is still learnt, so that unsubscribe
 * links in mails sent earlier keep working. */
int tc_mailer_start(struct tc_mailer *m, struct tc_error *err);

/* The key that signs and verifies link tokens (email/token.h). false (and
 * *key NULL) until it is known; the key is borrowed until tc_mailer_close. */
bool tc_mailer_link_key(const struct tc_mailer *m, const unsigned char **key, size_t *len);

/* Stops claiming and abandons mails in flight (their leases run out and a
 * node sends them again: at-least-once); waits for store requests still
 * unanswered. Memory is released before close_cb (may be NULL) runs. Valid
 * after a failed start or none. */
void tc_mailer_close(struct tc_mailer *m, void (*close_cb)(void *arg), void *arg);

#endif
