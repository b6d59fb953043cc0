/* tocsin — SPDX-License-Identifier: MIT
 *
 * Signed link tokens (see token.h): strict unpadded base64url, the payload
 * layout, HMAC-SHA256 through OpenSSL; base64url is util's (client tokens
 * share it). Knows nothing of URLs, Redis or subscribers beyond their id.
 */
#include "email/token.h"

#include "email/address.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAC_LEN     32
#define MAC_B64_LEN 43 /* unpadded base64url of 32 bytes */
/* Unpadded base64url text of the longest payload. */
#define PAYLOAD_B64_MAX ((TC_EMAIL_TOKEN_PAYLOAD_MAX * 4 + 2) / 3)
/* "unsubscribe" "\n" payload: the MAC input. */
#define MAC_INPUT_MAX (11 + 1 + TC_EMAIL_TOKEN_PAYLOAD_MAX)

const char *
tc_email_token_purpose_name(enum tc_email_token_purpose purpose)
{
    switch (purpose) {
    case TC_EMAIL_TOKEN_CONFIRM:
        return "confirm";
    case TC_EMAIL_TOKEN_UNSUBSCRIBE:
        return "unsubscribe";
    }
    return NULL;
}

static bool
subscriber_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > TC_EMAIL_SUBSCRIBER_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* HMAC-SHA256(key, purpose "\n" payload). Returns 0 or TC_EIO. */
static int
token_mac(const unsigned char *key, size_t keylen, const char *purpose, const char *payload,
          size_t len, unsigned char mac[MAC_LEN])
{
    unsigned char input[MAC_INPUT_MAX];
    size_t plen = strlen(purpose);
    unsigned maclen = 0;

    memcpy(input, purpose, plen);
    input[plen] = '\n';
    memcpy(input + plen + 1, payload, len);
    if (HMAC(EVP_sha256(), key, (int)keylen, input, plen + 1 + len, mac, &maclen) == NULL ||
        maclen != MAC_LEN) {
        return TC_EIO;
    }
    return TC_OK;
}

int
tc_email_token_make(const unsigned char *key, size_t keylen, enum tc_email_token_purpose purpose,
                    const char *address, const char *subscriber_id, int64_t expires_at, char *out,
                    size_t outlen, struct tc_error *err)
{
    char payload[TC_EMAIL_TOKEN_PAYLOAD_MAX + 1];
    unsigned char mac[MAC_LEN];
    const char *pname = tc_email_token_purpose_name(purpose);
    size_t len, need;
    int n, rc = TC_EINVAL;

    if (out != NULL && outlen > 0) {
        out[0] = '\0';
    }
    if (key == NULL || keylen < TC_EMAIL_TOKEN_KEY_MIN || keylen > INT32_MAX) {
        tc_error_set(err, rc, "key must be at least %d bytes", TC_EMAIL_TOKEN_KEY_MIN);
        goto out;
    }
    if (pname == NULL) {
        tc_error_set(err, rc, "unknown token purpose %d", (int)purpose);
        goto out;
    }
    if (subscriber_id == NULL ||
        !subscriber_id_ok(subscriber_id, strnlen(subscriber_id, TC_EMAIL_SUBSCRIBER_ID_MAX + 1))) {
        tc_error_set(err, rc, "subscriber id must be 1-%d of [A-Za-z0-9._:-]",
                     TC_EMAIL_SUBSCRIBER_ID_MAX);
        goto out;
    }
    if (expires_at < 0) {
        tc_error_set(err, rc, "expires_at is negative");
        goto out;
    }
    if ((rc = tc_email_address_check(address, err)) != TC_OK) {
        goto out;
    }
    n = snprintf(payload, sizeof(payload), "%s|%" PRId64 "|%s|%s", pname, expires_at, subscriber_id,
                 address);
    if (n < 0 || (size_t)n >= sizeof(payload)) {
        /* Unreachable: every field was bounded above. */
        rc = tc_error_set(err, TC_EINVAL, "payload too long");
        goto out;
    }
    len = (size_t)n;
    need = (len * 4 + 2) / 3 + 1 + MAC_B64_LEN + 1;
    if (out == NULL || outlen < need) {
        rc = tc_error_set(err, TC_ETOOBIG, "token needs %zu bytes", need);
        goto out;
    }
    if ((rc = token_mac(key, keylen, pname, payload, len, mac)) != TC_OK) {
        tc_error_set(err, rc, "HMAC failed");
        goto out;
    }
    size_t o = tc_b64url_encode((const unsigned char *)payload, len, out);
    out[o++] = '.';
    o += tc_b64url_encode(mac, MAC_LEN, out + o);
    out[o] = '\0';
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    return rc;
}

/* Parses a decimal 0..INT64_MAX without sign or leading zeros. */
static bool
parse_expiry(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;

    if (n == 0 || n > 19 || (n > 1 && s[0] == '0')) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Splits an authentic payload into claims. Fields are bounded by the
 * payload's own length (it is binary until proven otherwise). */
static int
parse_payload(const char *p, size_t n, const char *pname, struct tc_email_token_claims *c,
              struct tc_error *err)
{
    const char *f[4];
    size_t flen[4];
    size_t start = 0;

    for (int i = 0; i < 3; i++) {
        const char *bar = memchr(p + start, '|', n - start);
        if (bar == NULL) {
            return tc_error_set(err, TC_EINVAL, "token payload has too few fields");
        }
        f[i] = p + start;
        flen[i] = (size_t)(bar - f[i]);
        start += flen[i] + 1;
    }
    /* The address is the rest, '|' included. */
    f[3] = p + start;
    flen[3] = n - start;
    if (flen[0] != strlen(pname) || memcmp(f[0], pname, flen[0]) != 0) {
        return tc_error_set(err, TC_EINVAL, "token purpose does not match");
    }
    if (!parse_expiry(f[1], flen[1], &c->expires_at)) {
        return tc_error_set(err, TC_EINVAL, "token expiry is not a number");
    }
    if (!subscriber_id_ok(f[2], flen[2])) {
        return tc_error_set(err, TC_EINVAL, "token subscriber id is malformed");
    }
    if (flen[3] > TC_EMAIL_ADDRESS_MAX || memchr(f[3], '\0', flen[3]) != NULL) {
        return tc_error_set(err, TC_EINVAL, "token address is malformed");
    }
    memcpy(c->subscriber_id, f[2], flen[2]);
    c->subscriber_id[flen[2]] = '\0';
    memcpy(c->address, f[3], flen[3]);
    c->address[flen[3]] = '\0';
    return tc_email_address_check(c->address, err);
}

int
tc_email_token_verify(const unsigned char *key, size_t keylen, enum tc_email_token_purpose purpose,
                      const char *token, int64_t now, struct tc_email_token_claims *claims,
                      struct tc_error *err)
{
    unsigned char payload[PAYLOAD_B64_MAX * 3 / 4 + 1];
    unsigned char mac[MAC_LEN], want[MAC_LEN];
    const char *pname = tc_email_token_purpose_name(purpose);
    const char *dot;
    size_t n, b64len;
    long plen;
    int rc = TC_EINVAL;

    if (claims == NULL) {
        return tc_error_set(err, TC_EINVAL, "no claims to fill");
    }
    memset(claims, 0, sizeof(*claims));
    if (key == NULL || keylen < TC_EMAIL_TOKEN_KEY_MIN || keylen > INT32_MAX) {
        tc_error_set(err, rc, "key must be at least %d bytes", TC_EMAIL_TOKEN_KEY_MIN);
        goto out;
    }
    if (pname == NULL) {
        tc_error_set(err, rc, "unknown token purpose %d", (int)purpose);
        goto out;
    }
    if (token == NULL) {
        tc_error_set(err, rc, "token is missing");
        goto out;
    }
    n = strnlen(token, TC_EMAIL_TOKEN_MAX);
    if (n >= TC_EMAIL_TOKEN_MAX) {
        tc_error_set(err, rc, "token is too long");
        goto out;
    }
    dot = memchr(token, '.', n);
    b64len = dot != NULL ? (size_t)(dot - token) : 0;
    if (dot == NULL || n - b64len - 1 != MAC_B64_LEN || b64len > PAYLOAD_B64_MAX ||
        tc_b64url_decode(dot + 1, MAC_B64_LEN, mac) != MAC_LEN) {
        tc_error_set(err, rc, "token is malformed");
        goto out;
    }
    plen = tc_b64url_decode(token, b64len, payload);
    if (plen <= 0) {
        tc_error_set(err, rc, "token is malformed");
        goto out;
    }
    if (token_mac(key, keylen, pname, (const char *)payload, (size_t)plen, want) != TC_OK) {
        rc = tc_error_set(err, TC_EINVAL, "HMAC failed");
        goto out;
    }
    if (CRYPTO_memcmp(mac, want, MAC_LEN) != 0) {
        /* The payload is untrusted here; it only chooses the wording. */
        const char *other = tc_email_token_purpose_name(purpose == TC_EMAIL_TOKEN_CONFIRM
                                                            ? TC_EMAIL_TOKEN_UNSUBSCRIBE
                                                            : TC_EMAIL_TOKEN_CONFIRM);
        size_t olen = strlen(other);
        bool mismatch =
            (size_t)plen > olen && memcmp(payload, other, olen) == 0 && payload[olen] == '|';
        tc_error_set(err, rc,
                     mismatch ? "token is for another purpose" : "token signature is wrong");
        goto out;
    }
    rc = parse_payload((const char *)payload, (size_t)plen, pname, claims, err);
    if (rc != TC_OK) {
        goto out;
    }
    claims->purpose = purpose;
    if (claims->expires_at != 0 && now >= claims->expires_at) {
        rc = tc_error_set(err, TC_ETIMEDOUT, "token expired");
    }
out:
    if (rc != TC_OK && rc != TC_ETIMEDOUT) {
        memset(claims, 0, sizeof(*claims));
    }
    OPENSSL_cleanse(want, sizeof(want));
    return rc;
}
