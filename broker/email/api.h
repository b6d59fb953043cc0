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
#include "email/address.h"
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

/* The body check of POST /v1/email-subscribers and POST /v1/subscribe,
 * pure (no store, no reply), so it can be fuzzed: body must be an object
 * with only "address" (required, tc_email_address_check) and "filter" (an
 * optional filter object, or null). Returns 0 with the normalised address
 * in address[] and a new compact filter JSON in *filter_json (caller
 * frees; the empty filter for none), or TC_EINVAL with *filter_json NULL and err
 * naming the field ("address: ...", "filter.components[0]: ...",
 * "x: unknown field"). */
int tc_email_api_read_subscription(const json_t *body, char address[TC_EMAIL_ADDRESS_MAX + 1],
                                   char **filter_json, struct tc_error *err);

#endif
