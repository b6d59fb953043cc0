/* tocsin — SPDX-License-Identifier: MIT
 *
 * Signed tokens for the links in emails (DESIGN §6): confirm a self-service
 * subscription, unsubscribe in one click. A token is
 *   base64url(payload) "." base64url(HMAC-SHA256(key, purpose "\n" payload))
 * with unpadded base64url (RFC 4648 §5), so it goes into a URL as is, and
 *   payload = "<purpose>|<expires_at>|<subscriber id>|<address>"
 * The address comes last because it is the only field that may hold '|' (it
 * is RFC 5322 atext); the fields before it never do, so a payload splits one
 * way only. The purpose is both in the payload and in the MAC input, so a
 * token made for one purpose never verifies for the other.
 * Pure (OpenSSL HMAC only, no I/O, no loop); safe on any thread.
 */
#ifndef TC_EMAIL_TOKEN_H
#define TC_EMAIL_TOKEN_H

#include "email/address.h"
#include "util/util.h"

#include <stddef.h>
#include <stdint.h>

enum tc_email_token_purpose {
    TC_EMAIL_TOKEN_CONFIRM = 1,
    TC_EMAIL_TOKEN_UNSUBSCRIBE = 2,
};

/* Shortest key accepted: a shorter one is a configuration mistake. */
#define TC_EMAIL_TOKEN_KEY_MIN 16
/* Subscriber ids: 1..64 of [A-Za-z0-9._:-] (never '|'). */
#define TC_EMAIL_SUBSCRIBER_ID_MAX 64
/* Longest payload: "unsubscribe" | 19 digits | id | address. */
#define TC_EMAIL_TOKEN_PAYLOAD_MAX \
    (11 + 1 + 19 + 1 + TC_EMAIL_SUBSCRIBER_ID_MAX + 1 + TC_EMAIL_ADDRESS_MAX)
/* Bytes that hold any token and its NUL: unpadded base64url of the longest
 * payload, '.', 43 characters of MAC. Longer input is refused unread. */
#define TC_EMAIL_TOKEN_MAX ((TC_EMAIL_TOKEN_PAYLOAD_MAX * 4 + 2) / 3 + 1 + 43 + 1)

/* What a valid token says. */
struct tc_email_token_claims {
    enum tc_email_token_purpose purpose;
    char address[TC_EMAIL_ADDRESS_MAX + 1];
    char subscriber_id[TC_EMAIL_SUBSCRIBER_ID_MAX + 1];
    int64_t expires_at; /* unix seconds; 0 = never expires */
};

/* Lower-case name of a purpose ("confirm", "unsubscribe"); NULL if unknown. */
const char *tc_email_token_purpose_name(enum tc_email_token_purpose purpose);

/* Writes a token for (purpose, address, subscriber_id, expires_at) into out.
 * expires_at is unix seconds, or 0 for a token that never expires (meant for
 * unsubscribe links, which must keep working in old mails). address must pass
 * tc_email_address_check; the key is at least TC_EMAIL_TOKEN_KEY_MIN bytes.
 * @borrows every argument. Returns 0, TC_EINVAL (bad argument; err says which)
 * or TC_ETOOBIG (outlen too small; TC_EMAIL_TOKEN_MAX always suffices). On
 * failure out is "" when outlen > 0. err may be NULL. */
int tc_email_token_make(const unsigned char *key, size_t keylen,
                        enum tc_email_token_purpose purpose, const char *address,
                        const char *subscriber_id, int64_t expires_at, char *out, size_t outlen,
                        struct tc_error *err);

/* Verifies a token for the expected purpose at time now (unix seconds), with
 * a constant-time MAC comparison made before any field is parsed.
 * Returns 0 and fills *claims; TC_ETIMEDOUT when the token is authentic but
 * now >= expires_at (claims are filled then too, so a caller can offer a new
 * link); TC_EINVAL for anything else: malformed, too long, bad MAC, wrong
 * purpose, a key that is too short. err->text says which, and is safe to log
 * (it never holds the token). @borrows every argument; err may be NULL. */
int tc_email_token_verify(const unsigned char *key, size_t keylen,
                          enum tc_email_token_purpose purpose, const char *token, int64_t now,
                          struct tc_email_token_claims *claims, struct tc_error *err);

#endif
