/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: signed email link tokens (email/token.h), which arrive in the
 * query of public confirm and unsubscribe URLs. Three ways in:
 *  1. the input as a token: anything that verifies must be exactly the token
 *     tc_email_token_make writes for its claims (one text per token);
 *  2. the input as a payload, signed here with the key (OpenSSL, not
 *     token.c), so the fuzzer reaches the payload parser behind the MAC: the
 *     claims of an authentic payload are valid and make the same token;
 *  3. claims from the input ("address\nid\nexpiry"): make → verify returns
 *     them, for its purpose only, and a changed byte never verifies.
 */
#include "email/token.h"
#include "fuzz.h"

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define NOW 1700000000

static const unsigned char key[32] = "tocsin fuzz key, not a secret!!";

static const enum tc_email_token_purpose purposes[] = {TC_EMAIL_TOKEN_CONFIRM,
                                                       TC_EMAIL_TOKEN_UNSUBSCRIBE};

/* Unpadded base64url through OpenSSL's standard base64. @returns chars. */
static size_t
b64url(const unsigned char *in, size_t n, char *out)
{
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    FUZZ_CHECK(len >= 0);
    while (len > 0 && out[len - 1] == '=') {
        len--;
    }
    for (int i = 0; i < len; i++) {
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[len] = '\0';
    return (size_t)len;
}

/* A verified token: valid claims, and exactly what make writes for them. */
static void
check_verified(enum tc_email_token_purpose p, const char *token,
               const struct tc_email_token_claims *c, int rc)
{
    char again[TC_EMAIL_TOKEN_MAX];
    struct tc_error err = {{0}};

    FUZZ_CHECK(c->purpose == p);
    FUZZ_CHECK(tc_email_address_check(c->address, NULL) == TC_OK);
    FUZZ_CHECKF(fuzz_is_id(c->subscriber_id, 1, TC_EMAIL_SUBSCRIBER_ID_MAX), "id \"%s\"",
                c->subscriber_id);
    FUZZ_CHECK(c->expires_at >= 0);
    FUZZ_CHECK((rc == TC_ETIMEDOUT) == (c->expires_at != 0 && NOW >= c->expires_at));
    FUZZ_CHECKF(tc_email_token_make(key, sizeof(key), p, c->address, c->subscriber_id,
                                    c->expires_at, again, sizeof(again), &err) == TC_OK,
                "%s", err.text);
    FUZZ_CHECKF(strcmp(again, token) == 0, "verified %s but make writes %s", token, again);
}

static void
verify_text(const char *token)
{
    for (size_t i = 0; i < TC_ARRAY_SIZE(purposes); i++) {
        struct tc_email_token_claims c;
        struct tc_error err = {{0}};
        int rc = tc_email_token_verify(key, sizeof(key), purposes[i], token, NOW, &c, &err);
        if (rc == TC_OK || rc == TC_ETIMEDOUT) {
            check_verified(purposes[i], token, &c, rc);
        } else {
            static const struct tc_email_token_claims zero;
            FUZZ_CHECK(rc == TC_EINVAL && err.text[0] != '\0');
            FUZZ_CHECK(memcmp(&c, &zero, sizeof(c)) == 0);
        }
    }
}

/* 2: sign the input as a payload, as token.c's MAC is specified. */
static void
sign_payload(const uint8_t *data, size_t size)
{
    unsigned char input[16 + TC_EMAIL_TOKEN_PAYLOAD_MAX], mac[EVP_MAX_MD_SIZE];
    char token[TC_EMAIL_TOKEN_MAX + 8];
    unsigned maclen = 0;

    if (size == 0 || size > TC_EMAIL_TOKEN_PAYLOAD_MAX) {
        return;
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(purposes); i++) {
        const char *name = tc_email_token_purpose_name(purposes[i]);
        size_t nlen = strlen(name);
        memcpy(input, name, nlen);
        input[nlen] = '\n';
        memcpy(input + nlen + 1, data, size);
        FUZZ_CHECK(HMAC(EVP_sha256(), key, sizeof(key), input, nlen + 1 + size, mac, &maclen) !=
                   NULL);
        size_t o = b64url(data, size, token);
        token[o++] = '.';
        b64url(mac, maclen, token + o);
        verify_text(token);
    }
}

/* 3: make from claims the input chose, then verify. */
static void
make_and_verify(const char *text)
{
    char address[512], id[128], token[TC_EMAIL_TOKEN_MAX];
    long long expires = 0;

    if (sscanf(text, "%511[^\n]\n%127[^\n]\n%lld", address, id, &expires) < 2) {
        return;
    }
    for (size_t i = 0; i < TC_ARRAY_SIZE(purposes); i++) {
        struct tc_email_token_claims c;
        struct tc_error err = {{0}};
        int rc = tc_email_token_make(key, sizeof(key), purposes[i], address, id, expires, token,
                                     sizeof(token), &err);
        if (rc != TC_OK) {
            FUZZ_CHECK(rc == TC_EINVAL && token[0] == '\0' && err.text[0] != '\0');
            FUZZ_CHECK(tc_email_address_check(address, NULL) != TC_OK ||
                       !fuzz_is_id(id, 1, TC_EMAIL_SUBSCRIBER_ID_MAX) || expires < 0);
            continue;
        }
        FUZZ_CHECK(strlen(token) < TC_EMAIL_TOKEN_MAX);
        rc = tc_email_token_verify(key, sizeof(key), purposes[i], token, NOW, &c, &err);
        FUZZ_CHECKF(rc == TC_OK || rc == TC_ETIMEDOUT, "%s: %s", token, err.text);
        FUZZ_CHECK(strcmp(c.address, address) == 0 && strcmp(c.subscriber_id, id) == 0 &&
                   c.expires_at == expires);
        check_verified(purposes[i], token, &c, rc);
        /* Not for the other purpose, nor with any byte changed. */
        FUZZ_CHECK(tc_email_token_verify(key, sizeof(key), purposes[1 - i], token, NOW, &c, NULL) ==
                   TC_EINVAL);
        size_t pos = (size_t)expires % strlen(token);
        token[pos] = token[pos] == 'A' ? 'B' : 'A';
        FUZZ_CHECK(tc_email_token_verify(key, sizeof(key), purposes[i], token, NOW, &c, NULL) ==
                   TC_EINVAL);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);

    verify_text(text);
    sign_payload(data, size);
    make_and_verify(text);
    free(text);
    return 0;
}
