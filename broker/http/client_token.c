/* tocsin — SPDX-License-Identifier: MIT
 *
 * Client tokens (see client_token.h): the HS256 JWT check and its maker.
 * Pure: OpenSSL HMAC and jansson only, base64url from util. The header is
 * read before the signature only to refuse every alg but HS256 (the "none"
 * and algorithm-confusion attacks); the claims are read only once the
 * signature is proven. Does not know where a token comes from (client_auth.c).
 */
#include "http/client_token.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAC_LEN     32
#define MAC_B64_LEN 43 /* TC_B64URL_LEN(32) */
/* Bytes any part of a token decodes to, at most. */
#define DECODED_MAX (TC_CLIENT_TOKEN_MAX * 3 / 4 + 1)
/* NumericDate bounds: after 1970 and before the year 33658, so a double
 * holds it exactly and int64 arithmetic with the leeway cannot overflow. */
#define DATE_MAX 1e12

static const char header_hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

void
tc_client_token_fini(struct tc_client_token *t)
{
    if (t != NULL) {
        tc_free_strings(t->components, t->ncomponents);
        memset(t, 0, sizeof(*t));
    }
}

/* Decodes one base64url part and parses it as a JSON object. @returns new
 * or NULL with err set (what names the part). */
static json_t *
decode_object(const char *b64, size_t n, const char *what, unsigned char *buf, struct tc_error *err)
{
    json_error_t jerr;
    long len = n > 0 ? tc_b64url_decode(b64, n, buf) : -1;
    if (len <= 0) {
        tc_error_set(err, TC_EINVAL, "token %s is not base64url", what);
        return NULL;
    }
    json_t *o = json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        tc_error_set(err, TC_EINVAL, "token %s is not a JSON object", what);
        return NULL;
    }
    return o;
}

/* Only HS256 is ever accepted: a token naming "none" or another algorithm
 * is refused before its signature is looked at. */
static int
check_header(const json_t *h, struct tc_error *err)
{
    const char *alg = json_string_value(json_object_get(h, "alg"));
    const json_t *typ = json_object_get(h, "typ");
    if (alg == NULL) {
        return tc_error_set(err, TC_EINVAL, "token header has no alg");
    }
    if (strcmp(alg, "HS256") != 0) {
        return tc_error_set(err, TC_EINVAL, "token alg \"%.16s\" is refused: only HS256", alg);
    }
    if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)) {
        return tc_error_set(err, TC_EINVAL, "token typ must be JWT");
    }
    if (json_object_get(h, "crit") != NULL) {
        /* RFC 7515 §4.1.11: extensions we do not know must fail. */
        return tc_error_set(err, TC_EINVAL, "token header has crit extensions");
    }
    return TC_OK;
}

/* A NumericDate claim: a number of seconds, fractions cut. @returns 0,
 * TC_ENOENT (absent) or TC_EINVAL. */
static int
claim_date(const json_t *claims, const char *name, int64_t *out, struct tc_error *err)
{
    const json_t *v = json_object_get(claims, name);
    if (v == NULL) {
        return TC_ENOENT;
    }
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (!(d >= 0 && d < DATE_MAX)) {
        return tc_error_set(err, TC_EINVAL, "token %s must be a number of seconds", name);
    }
    *out = (int64_t)floor(d);
    return TC_OK;
}

static int
claim_components(const json_t *claims, struct tc_client_token *out, struct tc_error *err)
{
    const json_t *v = json_object_get(claims, "components"), *item;
    size_t i;
    if (v == NULL) {
        return TC_OK;
    }
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > TC_FILTER_MAX_ITEMS) {
        return tc_error_set(err, TC_EINVAL, "token components must list 1-%d component ids",
                            TC_FILTER_MAX_ITEMS);
    }
    out->components = tc_xcalloc(json_array_size(v), sizeof(char *));
    json_array_foreach(v, i, item)
    {
        const char *s = json_string_value(item);
        if (s == NULL || strlen(s) != json_string_length(item) || !tc_is_component_id(s)) {
            return tc_error_set(err, TC_EINVAL, "token components[%zu] is not a component id", i);
        }
        out->components[out->ncomponents++] = tc_xstrdup(s);
    }
    return TC_OK;
}

static int
read_claims(const json_t *claims, int64_t now, struct tc_client_token *out, struct tc_error *err)
{
    int rc = claim_date(claims, "exp", &out->exp, err);
    if (rc == TC_ENOENT) {
        return tc_error_set(err, TC_EINVAL, "token has no exp");
    }
    if (rc != TC_OK) {
        return rc;
    }
    rc = claim_date(claims, "nbf", &out->nbf, err);
    if (rc != TC_OK && rc != TC_ENOENT) {
        return rc;
    }
    if ((rc = claim_components(claims, out, err)) != TC_OK) {
        return rc;
    }
    if (now > out->exp + TC_CLIENT_TOKEN_LEEWAY_S) {
        return tc_error_set(err, TC_ETIMEDOUT, "token expired");
    }
    if (out->nbf > now + TC_CLIENT_TOKEN_LEEWAY_S) {
        return tc_error_set(err, TC_EINVAL, "token is not valid yet (nbf)");
    }
    return TC_OK;
}

static int
mac(const unsigned char *key, size_t keylen, const char *data, size_t len,
    unsigned char out[MAC_LEN])
{
    unsigned n = 0;
    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)data, len, out, &n) == NULL ||
        n != MAC_LEN) {
        return TC_EIO;
    }
    return TC_OK;
}

int
tc_client_token_verify(const unsigned char *key, size_t keylen, const char *token, int64_t now,
                       struct tc_client_token *out, struct tc_error *err)
{
    unsigned char *buf = NULL, sig[MAC_LEN], want[MAC_LEN];
    json_t *header = NULL, *claims = NULL;
    int rc = TC_EINVAL;

    memset(out, 0, sizeof(*out));
    if (key == NULL || keylen < TC_CLIENT_TOKEN_KEY_MIN || keylen > INT32_MAX) {
        tc_error_set(err, rc, "the key must be at least %d bytes", TC_CLIENT_TOKEN_KEY_MIN);
        goto out;
    }
    size_t n = token != NULL ? strnlen(token, TC_CLIENT_TOKEN_MAX + 1) : 0;
    if (n == 0) {
        tc_error_set(err, rc, "token is empty");
        goto out;
    }
    if (n > TC_CLIENT_TOKEN_MAX) {
        rc = tc_error_set(err, TC_ETOOBIG, "token is over %d bytes", TC_CLIENT_TOKEN_MAX);
        goto out;
    }
    const char *d1 = memchr(token, '.', n);
    const char *d2 = d1 != NULL ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)) != NULL) {
        tc_error_set(err, rc, "token must have three parts");
        goto out;
    }
    buf = tc_xmalloc(DECODED_MAX);
    if ((header = decode_object(token, (size_t)(d1 - token), "header", buf, err)) == NULL ||
        check_header(header, err) != TC_OK) {
        goto out;
    }
    if ((size_t)(token + n - (d2 + 1)) != MAC_B64_LEN ||
        tc_b64url_decode(d2 + 1, MAC_B64_LEN, sig) != MAC_LEN) {
        tc_error_set(err, rc, "token signature is malformed");
        goto out;
    }
    if (mac(key, keylen, token, (size_t)(d2 - token), want) != TC_OK) {
        rc = tc_error_set(err, TC_EIO, "HMAC failed");
        goto out;
    }
    if (CRYPTO_memcmp(sig, want, MAC_LEN) != 0) {
        tc_error_set(err, rc, "token signature is wrong");
        goto out;
    }
    if ((claims = decode_object(d1 + 1, (size_t)(d2 - d1 - 1), "payload", buf, err)) == NULL) {
        goto out;
    }
    rc = read_claims(claims, now, out, err);
out:
    if (rc != TC_OK) {
        tc_client_token_fini(out);
    }
    json_decref(header);
    json_decref(claims);
    free(buf);
    OPENSSL_cleanse(want, sizeof(want));
    return rc;
}

bool
tc_client_token_allows(const struct tc_client_token *t, const struct tc_filter *filter)
{
    if (t->components == NULL) {
        return true;
    }
    if (filter->ncomponents == 0) {
        return false;
    }
    for (size_t i = 0; i < filter->ncomponents; i++) {
        bool found = false;
        for (size_t j = 0; j < t->ncomponents && !found; j++) {
            found = strcmp(filter->components[i], t->components[j]) == 0;
        }
        if (!found) {
            return false;
        }
    }
    return true;
}

int
tc_client_token_make(const unsigned char *key, size_t keylen, const char *const *components,
                     size_t n, int64_t now, int64_t exp, char *out, size_t outlen,
                     struct tc_error *err)
{
    unsigned char sig[MAC_LEN];
    json_t *claims = json_pack("{s:I,s:I}", "iat", (json_int_t)now, "exp", (json_int_t)exp);
    char *payload = NULL;
    int rc = TC_EINVAL;

    if (out != NULL && outlen > 0) {
        out[0] = '\0';
    }
    if (key == NULL || keylen < TC_CLIENT_TOKEN_KEY_MIN || keylen > INT32_MAX) {
        tc_error_set(err, rc, "the key must be at least %d bytes", TC_CLIENT_TOKEN_KEY_MIN);
        goto out;
    }
    if (n > TC_FILTER_MAX_ITEMS || now < 0 || exp < 0 || exp >= (int64_t)DATE_MAX) {
        tc_error_set(err, rc, "at most %d components, and times in range", TC_FILTER_MAX_ITEMS);
        goto out;
    }
    if (n > 0) {
        json_t *list = json_array();
        json_object_set_new(claims, "components", list);
        for (size_t i = 0; i < n; i++) {
            if (!tc_is_component_id(components[i])) {
                tc_error_set(err, rc, "\"%.64s\" is not a component id", components[i]);
                goto out;
            }
            json_array_append_new(list, json_string(components[i]));
        }
    }
    payload = json_dumps(claims, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t hlen = TC_B64URL_LEN(sizeof(header_hs256) - 1), plen = TC_B64URL_LEN(strlen(payload));
    size_t need = hlen + 1 + plen + 1 + MAC_B64_LEN + 1;
    if (out == NULL || outlen < need || need - 1 > TC_CLIENT_TOKEN_MAX) {
        rc = tc_error_set(err, TC_ETOOBIG, "the token needs %zu bytes", need);
        goto out;
    }
    size_t o = tc_b64url_encode((const unsigned char *)header_hs256, sizeof(header_hs256) - 1, out);
    out[o++] = '.';
    o += tc_b64url_encode((const unsigned char *)payload, strlen(payload), out + o);
    if ((rc = mac(key, keylen, out, o, sig)) != TC_OK) {
        tc_error_set(err, rc, "HMAC failed");
        out[0] = '\0';
        goto out;
    }
    out[o++] = '.';
    o += tc_b64url_encode(sig, MAC_LEN, out + o);
    out[o] = '\0';
out:
    free(payload);
    json_decref(claims);
    OPENSSL_cleanse(sig, sizeof(sig));
    return rc;
}
