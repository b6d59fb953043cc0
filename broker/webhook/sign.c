/* tocsin — SPDX-License-Identifier: MIT
 *
 * Standard Webhooks secrets and signatures (see sign.h). The HMAC is streamed
 * through EVP_MAC so a large body is never copied to build the signed string.
 * Does not send anything and does not know about endpoints or Redis.
 */
#include "webhook/sign.h"

#include "util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define SECRET_PREFIX     "whsec_"
#define SECRET_PREFIX_LEN (sizeof(SECRET_PREFIX) - 1)
#define SIG_PREFIX        "v1,"
#define SHA256_LEN        32
/* Base64 text of the longest key (88 characters) and the bytes it decodes to,
 * padding counted (EVP_DecodeBlock writes 3 bytes per 4 characters). */
#define KEY_B64_MAX     (4 * ((TC_WEBHOOK_KEY_MAX + 2) / 3))
#define KEY_DECODED_MAX (3 * (KEY_B64_MAX / 4))

/* Base64 text length for n bytes, padding included. */
static size_t
b64_len(size_t n)
{
    return 4 * ((n + 2) / 3);
}

static bool
is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int
tc_webhook_secret_new(char *out, size_t outlen)
{
    unsigned char key[TC_WEBHOOK_KEY_NEW];
    int rc = TC_OK;

    if (out == NULL || outlen < SECRET_PREFIX_LEN + b64_len(sizeof(key)) + 1) {
        rc = TC_ETOOBIG;
        goto out;
    }
    if (tc_random_bytes(key, sizeof(key)) != TC_OK) {
        rc = TC_EIO;
        goto out;
    }
    memcpy(out, SECRET_PREFIX, SECRET_PREFIX_LEN);
    /* EVP_EncodeBlock writes the NUL terminator itself. */
    EVP_EncodeBlock((unsigned char *)out + SECRET_PREFIX_LEN, key, (int)sizeof(key));
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int
tc_webhook_secret_decode(const char *secret, unsigned char *key, size_t *keylen)
{
    unsigned char buf[KEY_DECODED_MAX], again[KEY_B64_MAX + 1];
    const char *b64;
    size_t len, pad = 0;
    int n, rc = TC_EINVAL;

    if (secret == NULL || key == NULL || keylen == NULL ||
        strncmp(secret, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0) {
        goto out;
    }
    b64 = secret + SECRET_PREFIX_LEN;
    /* Bound the text before decoding: over 88 characters is over 64 bytes. */
    len = strnlen(b64, KEY_B64_MAX + 1);
    if (len == 0 || len % 4 != 0 || len > KEY_B64_MAX) {
        goto out;
    }
    /* EVP_DecodeBlock skips whitespace and tolerates odd padding, so the
     * alphabet and the position of '=' are checked here first. */
    while (pad < 2 && b64[len - 1 - pad] == '=') {
        pad++;
    }
    for (size_t i = 0; i < len - pad; i++) {
        if (!is_b64_char(b64[i])) {
            goto out;
        }
    }
    n = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len);
    if (n < 0 || (size_t)n < pad) {
        goto out;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes; drop them. */
    n -= (int)pad;
    if (n < TC_WEBHOOK_KEY_MIN || n > TC_WEBHOOK_KEY_MAX) {
        goto out;
    }
    /* Canonical only: EVP_DecodeBlock ignores the bits after the last byte,
     * so "...F7=" and "...F4=" would name one key. Encoding the key again
     * must give the text back. */
    EVP_EncodeBlock(again, buf, n);
    if (CRYPTO_memcmp(again, b64, len) != 0) {
        goto out;
    }
    memcpy(key, buf, (size_t)n);
    *keylen = (size_t)n;
    rc = TC_OK;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(again, sizeof(again));
    return rc;
}

/* HMAC-SHA256 over id "." timestamp "." body, streamed. Returns 0 or TC_EIO. */
static int
hmac_sha256(const unsigned char *key, size_t keylen, const char *msg_id, int64_t timestamp,
            const char *body, size_t body_len, unsigned char mac[SHA256_LEN])
{
    EVP_MAC *alg = NULL;
    EVP_MAC_CTX *ctx = NULL;
    char ts[32];
    char digest[] = "SHA256";
    OSSL_PARAM params[2];
    size_t maclen = 0;
    int rc = TC_EIO;

    snprintf(ts, sizeof(ts), ".%" PRId64 ".", timestamp);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (alg == NULL) {
        goto out;
    }
    ctx = EVP_MAC_CTX_new(alg);
    if (ctx == NULL || !EVP_MAC_init(ctx, key, keylen, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts))) {
        goto out;
    }
    if (body_len > 0 && !EVP_MAC_update(ctx, (const unsigned char *)body, body_len)) {
        goto out;
    }
    if (!EVP_MAC_final(ctx, mac, &maclen, SHA256_LEN) || maclen != SHA256_LEN) {
        goto out;
    }
    rc = TC_OK;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(alg);
    return rc;
}

int
tc_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                size_t body_len, char *out, size_t outlen)
{
    unsigned char key[TC_WEBHOOK_KEY_MAX];
    unsigned char mac[SHA256_LEN];
    size_t keylen = 0;
    int rc;

    if (out == NULL || outlen < sizeof(SIG_PREFIX) - 1 + b64_len(SHA256_LEN) + 1) {
        rc = TC_ETOOBIG;
        goto out;
    }
    out[0] = '\0';
    if (msg_id == NULL || msg_id[0] == '\0' || (body == NULL && body_len > 0)) {
        rc = TC_EINVAL;
        goto out;
    }
    rc = tc_webhook_secret_decode(secret, key, &keylen);
    if (rc != TC_OK) {
        goto out;
    }
    rc = hmac_sha256(key, keylen, msg_id, timestamp, body, body_len, mac);
    if (rc != TC_OK) {
        goto out;
    }
    memcpy(out, SIG_PREFIX, sizeof(SIG_PREFIX) - 1);
    EVP_EncodeBlock((unsigned char *)out + sizeof(SIG_PREFIX) - 1, mac, SHA256_LEN);
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

int
tc_webhook_signature_header(const char *const *secrets, size_t n, const char *msg_id,
                            int64_t timestamp, const char *body, size_t body_len, char *out,
                            size_t outlen)
{
    size_t used = 0;
    int rc = TC_OK;

    if (out == NULL || outlen == 0) {
        return TC_ETOOBIG;
    }
    out[0] = '\0';
    if (secrets == NULL || n == 0) {
        rc = TC_EINVAL;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char sig[TC_WEBHOOK_SIGNATURE_MAX];
        size_t siglen;

        rc = tc_webhook_sign(secrets[i], msg_id, timestamp, body, body_len, sig, sizeof(sig));
        if (rc != TC_OK) {
            goto out;
        }
        siglen = strlen(sig);
        /* At the bound the whole header is refused rather than cut, so a
         * receiver never sees a truncated signature. */
        if (used + (i > 0) + siglen + 1 > outlen) {
            rc = TC_ETOOBIG;
            goto out;
        }
        if (i > 0) {
            out[used++] = ' ';
        }
        memcpy(out + used, sig, siglen + 1);
        used += siglen;
    }
out:
    if (rc != TC_OK) {
        out[0] = '\0';
    }
    return rc;
}
