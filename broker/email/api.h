/* tocsin — SPDX-License-Identifier: MIT
 *
 * The email gateway's HTTP API (DESIGN §6, §7). Admin (bearer token):
 * POST/GET/DELETE /v1/email-subscribers (confirmed at once). Public:
 * POST /v1/subscribe (double opt-in: a confirmation mail with a signed link;
 * rate-limited per client IP and per address), GET /v1/confirm?token=,
 * GET /v1/unsubscribe?token= (a page with a button) and
 * POST /v1/unsubscribe?token= (RFC 8058 one-click).
 * @loop main.
 */
#ifndef TC_EMAIL_API_H
#define TC_EMAIL_API_H

#include "config/config.h"
#include "http/server.h"
#include "store/emails.h"

#include <stdbool.h>
#include <stddef.h>

struct tc_email_api_deps {
    const struct tc_config *cfg;
    struct tc_store *store;
    /* The key that signs links; false until the mailer has it from Redis. */
    bool (*link_key)(void *arg, const unsigned char **key, size_t *len);
    void *link_key_arg;
};

struct tc_email_api;

/* Registers the routes on srv. With smtp.url empty the routes still exist
 * and answer 503 "email_disabled", so a client learns why. @borrows deps
 * (copied). @returns the API (free it after the server), or NULL when the
 * route table is full. */
struct tc_email_api *tc_email_api_new(struct tc_server *srv, const struct tc_email_api_deps *deps);
void tc_email_api_free(struct tc_email_api *api);

#endif
