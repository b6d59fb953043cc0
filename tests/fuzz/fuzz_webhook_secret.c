/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: webhook endpoint secrets (tc_webhook_secret_decode and the
 * signing on top of it, webhook/sign.h). An accepted secret decodes to 24-64
 * bytes and is canonical: "whsec_" and OpenSSL's base64 of those bytes give
 * back exactly the input, so one key has one text. Signing the input as a
 * body with it matches an HMAC-SHA256 computed here with OpenSSL directly,
 * and the rotation header repeats it; a refused secret cannot sign.
 */
#include "fuzz.h"
#include "webhook/sign.h"

#include <inttypes.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MSG_ID "msg_2bHk0rKyXYGmwYpOJKtQyB8pBfH"
#define TS     1700000000

/* v1,<base64 HMAC-SHA256(key, id.ts.body)>, without sign.c. */
static void
reference_signature(const unsigned char *key, size_t keylen, const uint8_t *body, size_t n,
                    char *out)
{
    unsigned char *msg = tc_xmalloc(64 + n), mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    int plen = snprintf((char *)msg, 64, "%s.%" PRId64 ".", MSG_ID, (int64_t)TS);

    memcpy(msg + plen, body, n);
    FUZZ_CHECK(HMAC(EVP_sha256(), key, (int)keylen, msg, (size_t)plen + n, mac, &maclen) != NULL);
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
    free(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *secret = fuzz_cstr(data, size);
    unsigned char key[TC_WEBHOOK_KEY_MAX];
    size_t keylen = 0;
    char sig[TC_WEBHOOK_SIGNATURE_MAX], want[TC_WEBHOOK_SIGNATURE_MAX + 8];
    char header[2 * TC_WEBHOOK_SIGNATURE_MAX];

    int rc = tc_webhook_secret_decode(secret, key, &keylen);
    int rc_sign = tc_webhook_sign(secret, MSG_ID, TS, (const char *)data, size, sig, sizeof(sig));
    if (rc != TC_OK) {
        FUZZ_CHECK(rc == TC_EINVAL && rc_sign == TC_EINVAL);
        free(secret);
        return 0;
    }
    FUZZ_CHECKF(keylen >= TC_WEBHOOK_KEY_MIN && keylen <= TC_WEBHOOK_KEY_MAX, "%zu bytes", keylen);

    /* Canonical: the key's only text. */
    char text[6 + 4 * ((TC_WEBHOOK_KEY_MAX + 2) / 3) + 1];
    memcpy(text, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)text + 6, key, (int)keylen);
    FUZZ_CHECKF(strcmp(text, secret) == 0, "\"%s\" decodes to the key of \"%s\"", secret, text);

    FUZZ_CHECK(rc_sign == TC_OK);
    reference_signature(key, keylen, data, size, want);
    FUZZ_CHECKF(strcmp(sig, want) == 0, "%s, want %s", sig, want);

    const char *const both[] = {secret, secret};
    FUZZ_CHECK(tc_webhook_signature_header(both, 2, MSG_ID, TS, (const char *)data, size, header,
                                           sizeof(header)) == TC_OK);
    FUZZ_CHECK(strlen(header) == 2 * strlen(sig) + 1 && header[strlen(sig)] == ' ');
    FUZZ_CHECK(strncmp(header, sig, strlen(sig)) == 0 &&
               strcmp(header + strlen(sig) + 1, sig) == 0);
    free(secret);
    return 0;
}
