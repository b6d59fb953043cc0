/* tocsin — SPDX-License-Identifier: MIT
 *
 * Standard Webhooks signing: endpoint secrets (`whsec_<base64>`), the
 * `v1,<base64 HMAC-SHA256>` signature over `id.timestamp.body`, and the
 * space-separated `webhook-signature` header used during secret rotation.
 * Pure functions (OpenSSL only, no I/O, no loop); safe on any thread.
 */
#ifndef TC_WEBHOOK_SIGN_H
#define TC_WEBHOOK_SIGN_H

#include <stddef.h>
#include <stdint.h>

/* Decoded secret length bounds (DESIGN §5: 24–64 bytes). */
#define TC_WEBHOOK_KEY_MIN 24
#define TC_WEBHOOK_KEY_MAX 64
/* Bytes tocsin generates for a new secret. */
#define TC_WEBHOOK_KEY_NEW 32
/* "whsec_" + base64 of 64 bytes (88) + NUL: holds any valid secret. */
#define TC_WEBHOOK_SECRET_MAX (6 + 88 + 1)
/* "v1," + base64 of a SHA-256 (44) + NUL: holds one signature. */
#define TC_WEBHOOK_SIGNATURE_MAX (3 + 44 + 1)

/* Writes a new secret `whsec_` + base64 of 32 random bytes into out.
 * Returns 0, TC_ETOOBIG if out is too small (51 bytes are needed;
 * TC_WEBHOOK_SECRET_MAX is plenty), or TC_EIO if the kernel gave no randomness. */
int tc_webhook_secret_new(char *out, size_t outlen);

/* Decodes `whsec_<base64>` into key, which must hold TC_WEBHOOK_KEY_MAX bytes;
 * *keylen receives the decoded length. Returns 0 or TC_EINVAL (no prefix,
 * not canonical base64, or a decoded length outside 24–64). */
int tc_webhook_secret_decode(const char *secret, unsigned char *key, size_t *keylen);

/* Writes `v1,<base64 HMAC-SHA256(key, msg_id "." timestamp "." body)>` into
 * out (TC_WEBHOOK_SIGNATURE_MAX bytes suffice). @borrows every argument.
 * Returns 0, TC_EINVAL (bad secret or empty msg_id) or TC_ETOOBIG (out). */
int tc_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                    size_t body_len, char *out, size_t outlen);

/* Writes the `webhook-signature` header value: one signature per secret,
 * separated by single spaces, so receivers holding either the old or the new
 * secret verify during rotation. n must be at least 1. Returns 0, TC_EINVAL
 * (n == 0 or a bad secret) or TC_ETOOBIG (out too small; out is then ""). */
int tc_webhook_signature_header(const char *const *secrets, size_t n, const char *msg_id,
                                int64_t timestamp, const char *body, size_t body_len, char *out,
                                size_t outlen);

#endif
