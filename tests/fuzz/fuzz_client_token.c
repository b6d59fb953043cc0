/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: client tokens (http/client_token.h), which arrive from anyone
 * in ?token= or Authorization: Bearer. Three ways in:
 *  1. the input as a token: refused with a reason and nothing owned, or
 *     accepted with sane claims (and then its header says alg HS256);
 *  2. the input as the claims, signed here (OpenSSL, not client_token.c)
 *     under an HS256 header, so the fuzzer reaches the claim parser: what
 *     it accepts has exp in range, valid components, and make → verify of
 *     those claims gives them back;
 *  3. the input as the header, with good claims signed here: it is
 *     accepted only when its alg is exactly "HS256".
 */
#include "fuzz.h"
#include "http/client_token.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define NOW 1700000000

static const unsigned char key[32] = "tocsin fuzz key, not a secret!!";

static void
check_claims(const struct tc_client_token *t)
{
    FUZZ_CHECK(t->exp >= 0 && NOW <= t->exp + TC_CLIENT_TOKEN_LEEWAY_S);
    FUZZ_CHECK(t->nbf >= 0 && t->nbf <= NOW + TC_CLIENT_TOKEN_LEEWAY_S);
    FUZZ_CHECK((t->components == NULL) == (t->ncomponents == 0));
    FUZZ_CHECK(t->ncomponents <= TC_FILTER_MAX_ITEMS);
    for (size_t i = 0; i < t->ncomponents; i++) {
        FUZZ_CHECKF(tc_is_component_id(t->components[i]), "component \"%s\"", t->components[i]);
    }
}

/* 1: verify, with the invariants of either outcome. @returns the code. */
static int
verify(const char *token, struct tc_client_token *t)
{
    struct tc_error err = {{0}};
    int rc = tc_client_token_verify(key, sizeof(key), token, NOW, t, &err);
    if (rc == TC_OK) {
        check_claims(t);
        /* An accepted token names HS256: decode its header here. */
        const char *dot = strchr(token, '.');
        unsigned char *h = tc_xmalloc(strlen(token));
        long n = tc_b64url_decode(token, (size_t)(dot - token), h);
        FUZZ_CHECK(n > 0);
        json_t *o = json_loadb((const char *)h, (size_t)n, 0, NULL);
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(o, "alg")), "HS256") == 0);
        json_decref(o);
        free(h);
    } else {
        FUZZ_CHECK(rc == TC_EINVAL || rc == TC_ETIMEDOUT || rc == TC_ETOOBIG);
        FUZZ_CHECK(err.text[0] != '\0' && t->components == NULL && t->ncomponents == 0);
    }
    return rc;
}

/* header.payload signed here with HS256. @returns new. */
static char *
sign(const char *header, size_t hlen, const char *payload, size_t plen)
{
    char *out = tc_xmalloc(TC_B64URL_LEN(hlen) + TC_B64URL_LEN(plen) + 48);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    size_t o = tc_b64url_encode((const unsigned char *)header, hlen, out);
    out[o++] = '.';
    o += tc_b64url_encode((const unsigned char *)payload, plen, out + o);
    FUZZ_CHECK(HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)out, o, mac, &n) !=
               NULL);
    out[o++] = '.';
    o += tc_b64url_encode(mac, n, out + o);
    out[o] = '\0';
    return out;
}

/* 2: the input as claims; what is accepted makes the same claims again. */
static void
as_claims(const uint8_t *data, size_t size)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    struct tc_client_token t, again;
    char *tok = sign(header, sizeof(header) - 1, (const char *)data, size);
    if (verify(tok, &t) == TC_OK) {
        char *made = tc_xmalloc(TC_CLIENT_TOKEN_MAX + 1);
        int rc =
            tc_client_token_make(key, sizeof(key), (const char *const *)t.components, t.ncomponents,
                                 NOW, t.exp, made, TC_CLIENT_TOKEN_MAX + 1, NULL);
        FUZZ_CHECK(rc == TC_OK);
        FUZZ_CHECK(verify(made, &again) == TC_OK);
        FUZZ_CHECK(again.exp == t.exp && again.ncomponents == t.ncomponents);
        for (size_t i = 0; i < t.ncomponents; i++) {
            FUZZ_CHECK(strcmp(again.components[i], t.components[i]) == 0);
        }
        tc_client_token_fini(&again);
        free(made);
    }
    tc_client_token_fini(&t);
    free(tok);
}

/* 3: the input as the header of good claims. */
static void
as_header(const uint8_t *data, size_t size)
{
    static const char claims[] = "{\"exp\":1700000600,\"components\":[\"playback\"]}";
    struct tc_client_token t;
    char *tok = sign((const char *)data, size, claims, sizeof(claims) - 1);
    json_t *h = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    const char *alg = json_string_value(json_object_get(h, "alg"));
    if (verify(tok, &t) == TC_OK) {
        FUZZ_CHECK(alg != NULL && strcmp(alg, "HS256") == 0);
        FUZZ_CHECK(t.ncomponents == 1 && strcmp(t.components[0], "playback") == 0);
    }
    json_decref(h);
    tc_client_token_fini(&t);
    free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tc_client_token t;
    char *text = fuzz_cstr(data, size);
    verify(text, &t);
    tc_client_token_fini(&t);
    if (size <= TC_CLIENT_TOKEN_MAX / 2) {
        as_claims(data, size);
        as_header(data, size);
    }
    free(text);
    return 0;
}
