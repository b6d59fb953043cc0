/* tocsin — SPDX-License-Identifier: MIT
 *
 * The links in emails (DESIGN §6): <public_url>/v1/confirm?token=... and
 * <public_url>/v1/unsubscribe?token=..., with the signed tokens of token.h.
 * The public HTTP routes that answer these links use the same paths.
 * Pure (no I/O, no loop); any thread.
 */
#ifndef TC_EMAIL_LINKS_H
#define TC_EMAIL_LINKS_H

#include "email/mime.h"
#include "email/token.h"
#include "util/util.h"

#include <stddef.h>
#include <stdint.h>

#define TC_EMAIL_LINK_CONFIRM_PATH     "/v1/confirm"
#define TC_EMAIL_LINK_UNSUBSCRIBE_PATH "/v1/unsubscribe"
/* Longest link: what a List-Unsubscribe header holds (TC_EMAIL_URL_MAX). */
#define TC_EMAIL_LINK_MAX TC_EMAIL_URL_MAX

/* Path of the route that answers a purpose's links; NULL if unknown. */
const char *tc_email_link_path(enum tc_email_token_purpose purpose);

/* Writes "<public_url><path>?token=<token>" into a new *out (caller frees).
 * Trailing '/' of public_url are dropped, so "https://s.example/" and
 * "https://s.example" give the same link. public_url must be an http(s)
 * URL of printable ASCII without spaces, quotes, angle brackets, '\', '?'
 * or '#' (it may hold a path: "https://example.com/status"); token must be
 * non-empty base64url text and '.' (what tc_email_token_make writes), so it
 * needs no escaping. @borrows public_url and token.
 * Returns 0; TC_EINVAL (err says which input); TC_ETOOBIG over
 * TC_EMAIL_LINK_MAX bytes. On failure *out is NULL. */
int tc_email_link_url(const char *public_url, enum tc_email_token_purpose purpose,
                      const char *token, char **out, struct tc_error *err);

/* Makes the token (tc_email_token_make with these arguments) and its link
 * (tc_email_link_url) in one step. Same returns as both. */
int tc_email_link_make(const unsigned char *key, size_t keylen, const char *public_url,
                       enum tc_email_token_purpose purpose, const char *address,
                       const char *subscriber_id, int64_t expires_at, char **out,
                       struct tc_error *err);

#endif
