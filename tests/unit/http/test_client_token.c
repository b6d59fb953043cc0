/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/http/client_token: HS256 JWT verification on a table
 * of tokens signed here (OpenSSL directly, not client_token.c's code), each
 * row naming the rule it covers: good tokens, bad signatures, alg none and
 * HS512, exp and nbf with their leeway, malformed parts and base64url, the
 * length bound, the components claim; the subset rule; make → verify.
 */
#include "http/client_token.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char KEY2[32] = "0123456789abcdef0123456789abcdeF";

#define NOW   1795000000 /* 2026-11-18 */
#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* header.payload signed with md and key (NULL md: sig is used as it is). */
static char *
sign(const char *header, const char *payload, const EVP_MD *md, const unsigned char *key,
     const char *sig)
{
    size_t hl = strlen(header), pl = strlen(payload);
    char *out = tc_xmalloc(TC_B64URL_LEN(hl) + TC_B64URL_LEN(pl) + 200 + (sig ? strlen(sig) : 0));
    size_t o = tc_b64url_encode((const unsigned char *)header, hl, out);
    out[o++] = '.';
    o += tc_b64url_encode((const unsigned char *)payload, pl, out + o);
    out[o] = '\0';
    if (md == NULL) {
        sprintf(out + o, ".%s", sig);
        return out;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    assert_non_null(HMAC(md, key, 32, (const unsigned char *)out, o, mac, &n));
    out[o++] = '.';
    o += tc_b64url_encode(mac, n, out + o);
    out[o] = '\0';
    return out;
}

static int
verify(const char *token, struct tc_client_token *t, struct tc_error *err)
{
    return tc_client_token_verify(KEY, sizeof(KEY), token, NOW, t, err);
}

struct row {
    const char *rule;
    const char *header;
    const char *payload;
    int want;
    const char *why; /* a part of err->text, for refusals */
};

static void
test_table(void **state)
{
    (void)state;
    static const struct row rows[] = {
        {"good, any component", HS256, "{\"exp\":1795000600}", TC_OK, NULL},
        {"good without typ", "{\"alg\":\"HS256\"}", "{\"exp\":1795000600}", TC_OK, NULL},
        {"good, fractional exp", HS256, "{\"exp\":1795000600.5}", TC_OK, NULL},
        {"good, other claims ignored", HS256, "{\"exp\":1795000600,\"sub\":\"u1\",\"x\":[1]}",
         TC_OK, NULL},
        {"alg none", "{\"alg\":\"none\"}", "{\"exp\":1795000600}", TC_EINVAL, "only HS256"},
        {"alg HS512", "{\"alg\":\"HS512\"}", "{\"exp\":1795000600}", TC_EINVAL, "only HS256"},
        {"alg hs256 (case)", "{\"alg\":\"hs256\"}", "{\"exp\":1795000600}", TC_EINVAL, "HS256"},
        {"alg missing", "{\"typ\":\"JWT\"}", "{\"exp\":1795000600}", TC_EINVAL, "no alg"},
        {"alg not a string", "{\"alg\":256}", "{\"exp\":1795000600}", TC_EINVAL, "no alg"},
        {"typ not JWT", "{\"alg\":\"HS256\",\"typ\":\"JWE\"}", "{\"exp\":1795000600}", TC_EINVAL,
         "typ"},
        {"crit", "{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "{\"exp\":1795000600}", TC_EINVAL,
         "crit"},
        {"header not an object", "[1]", "{\"exp\":1795000600}", TC_EINVAL, "header"},
        {"duplicate alg", "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"exp\":1795000600}", TC_EINVAL,
         "header"},
        {"exp missing", HS256, "{\"nbf\":1}", TC_EINVAL, "no exp"},
        {"exp a string", HS256, "{\"exp\":\"1795000600\"}", TC_EINVAL, "exp"},
        {"exp negative", HS256, "{\"exp\":-1}", TC_EINVAL, "exp"},
        {"exp huge", HS256, "{\"exp\":1e300}", TC_EINVAL, "exp"},
        {"expired past the leeway", HS256, "{\"exp\":1794999969}", TC_ETIMEDOUT, "expired"},
        {"expired within the leeway", HS256, "{\"exp\":1794999970}", TC_OK, NULL},
        {"nbf ahead past the leeway", HS256, "{\"exp\":1795000600,\"nbf\":1795000031}", TC_EINVAL,
         "nbf"},
        {"nbf ahead within the leeway", HS256, "{\"exp\":1795000600,\"nbf\":1795000030}", TC_OK,
         NULL},
        {"nbf a string", HS256, "{\"exp\":1795000600,\"nbf\":\"x\"}", TC_EINVAL, "nbf"},
        {"payload not an object", HS256, "1795000600", TC_EINVAL, "payload"},
        {"payload not JSON", HS256, "{exp:1}", TC_EINVAL, "payload"},
        {"duplicate exp", HS256, "{\"exp\":1,\"exp\":1795000600}", TC_EINVAL, "payload"},
        {"components good", HS256, "{\"exp\":1795000600,\"components\":[\"playback\",\"search\"]}",
         TC_OK, NULL},
        {"components empty", HS256, "{\"exp\":1795000600,\"components\":[]}", TC_EINVAL,
         "components"},
        {"components a string", HS256, "{\"exp\":1795000600,\"components\":\"playback\"}",
         TC_EINVAL, "components"},
        {"components upper case", HS256, "{\"exp\":1795000600,\"components\":[\"Playback\"]}",
         TC_EINVAL, "components[0]"},
        {"components not strings", HS256, "{\"exp\":1795000600,\"components\":[\"a\",1]}",
         TC_EINVAL, "components[1]"},
        {"components with NUL", HS256, "{\"exp\":1795000600,\"components\":[\"a\\u0000b\"]}",
         TC_EINVAL, "payload"},
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(rows); i++) {
        const struct row *r = &rows[i];
        char *tok = sign(r->header, r->payload, EVP_sha256(), KEY, NULL);
        if (strstr(r->header, "HS512") != NULL) {
            free(tok);
            tok = sign(r->header, r->payload, EVP_sha512(), KEY, NULL);
        }
        struct tc_client_token t;
        struct tc_error err = {{0}};
        int rc = verify(tok, &t, &err);
        if (rc != r->want || (r->why != NULL && strstr(err.text, r->why) == NULL)) {
            fail_msg("%s: got %d \"%s\", want %d \"%s\"", r->rule, rc, err.text, r->want,
                     r->why ? r->why : "");
        }
        if (rc != TC_OK) {
            assert_null(t.components); /* nothing is left to free */
        }
        tc_client_token_fini(&t);
        free(tok);
    }
}

static void
test_claims(void **state)
{
    (void)state;
    struct tc_client_token t;
    char *tok =
        sign(HS256, "{\"exp\":1795000600,\"nbf\":1794999000,\"components\":[\"cdn\",\"api\"]}",
             EVP_sha256(), KEY, NULL);
    assert_int_equal(verify(tok, &t, NULL), TC_OK);
    assert_int_equal(t.exp, 1795000600);
    assert_int_equal(t.nbf, 1794999000);
    assert_int_equal(t.ncomponents, 2);
    assert_string_equal(t.components[0], "cdn");
    assert_string_equal(t.components[1], "api");
    tc_client_token_fini(&t);
    assert_null(t.components);
    free(tok);
}

static void
test_signature(void **state)
{
    (void)state;
    struct tc_client_token t;
    struct tc_error err;
    const char *claims = "{\"exp\":1795000600}";

    char *tok = sign(HS256, claims, EVP_sha256(), KEY2, NULL);
    assert_int_equal(verify(tok, &t, &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "signature is wrong"));
    free(tok);

    /* alg none with an empty signature: refused for its alg, before the
     * signature is looked at. */
    tok = sign("{\"alg\":\"none\"}", claims, NULL, NULL, "");
    assert_int_equal(verify(tok, &t, &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "only HS256"));
    free(tok);

    /* Every byte changed in turn: never valid. */
    tok = sign(HS256, claims, EVP_sha256(), KEY, NULL);
    assert_int_equal(verify(tok, &t, NULL), TC_OK);
    for (size_t i = 0; tok[i] != '\0'; i++) {
        char was = tok[i];
        tok[i] = was == 'A' ? 'B' : 'A';
        assert_int_not_equal(verify(tok, &t, NULL), TC_OK);
        tok[i] = was;
    }
    /* A second signature part, or a missing one. */
    char *longer = tc_xasprintf("%s.%s", tok, strrchr(tok, '.') + 1);
    assert_int_equal(verify(longer, &t, &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "three parts"));
    *strrchr(tok, '.') = '\0';
    assert_int_equal(verify(tok, &t, &err), TC_EINVAL);
    assert_non_null(strstr(err.text, "three parts"));
    free(longer);
    free(tok);

    /* A key under 32 bytes is refused, even with a matching signature. */
    tok = sign(HS256, claims, EVP_sha256(), KEY, NULL);
    assert_int_equal(tc_client_token_verify(KEY, 31, tok, NOW, &t, &err), TC_EINVAL);
    free(tok);
}

static void
test_malformed(void **state)
{
    (void)state;
    struct tc_client_token t;
    struct tc_error err;
    static const char *const bad[] = {
        "",
        ".",
        "..",
        "a.b.c",
        /* padding, the standard alphabet, a space, a leftover bit pattern */
        "eyJhbGciOiJIUzI1NiJ9=.eyJleHAiOjF9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9+.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "eyJhbGciOiJIUzI1NiJ9 .eyJleHAiOjF9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
        "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.AAAA",
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(bad); i++) {
        err.text[0] = '\0';
        if (verify(bad[i], &t, &err) != TC_EINVAL || err.text[0] == '\0') {
            fail_msg("bad[%zu] \"%s\" was not refused with a reason", i, bad[i]);
        }
    }
    assert_int_equal(verify(NULL, &t, &err), TC_EINVAL);

    /* The length bound: one byte over is refused unread; at the bound the
     * token is parsed (and is malformed). */
    char *big = tc_xmalloc(TC_CLIENT_TOKEN_MAX + 2);
    memset(big, 'A', TC_CLIENT_TOKEN_MAX + 1);
    big[TC_CLIENT_TOKEN_MAX + 1] = '\0';
    assert_int_equal(verify(big, &t, &err), TC_ETOOBIG);
    big[TC_CLIENT_TOKEN_MAX] = '\0';
    assert_int_equal(verify(big, &t, &err), TC_EINVAL);
    free(big);
}

static void
filter_of(struct tc_filter *f, const char *qs)
{
    assert_int_equal(tc_filter_from_query(qs, f, NULL), TC_OK);
}

static void
test_allows(void **state)
{
    (void)state;
    static const struct {
        const char *rule;
        const char *payload;
        const char *query;
        bool want;
    } rows[] = {
        {"any component: everything", "{\"exp\":1795000600}", "", true},
        {"any component: one", "{\"exp\":1795000600}", "components=search", true},
        {"narrow token: everything refused", "{\"exp\":1795000600,\"components\":[\"playback\"]}",
         "", false},
        {"narrow token: its component", "{\"exp\":1795000600,\"components\":[\"playback\"]}",
         "components=playback", true},
        {"narrow token: another", "{\"exp\":1795000600,\"components\":[\"playback\"]}",
         "components=search", false},
        {"narrow token: a superset", "{\"exp\":1795000600,\"components\":[\"playback\"]}",
         "components=playback,search", false},
        {"two: a subset", "{\"exp\":1795000600,\"components\":[\"playback\",\"search\"]}",
         "components=search&regions=eu", true},
        {"two: both", "{\"exp\":1795000600,\"components\":[\"playback\",\"search\"]}",
         "components=search,playback", true},
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(rows); i++) {
        char *tok = sign(HS256, rows[i].payload, EVP_sha256(), KEY, NULL);
        struct tc_client_token t;
        struct tc_filter f;
        assert_int_equal(verify(tok, &t, NULL), TC_OK);
        filter_of(&f, rows[i].query);
        if (tc_client_token_allows(&t, &f) != rows[i].want) {
            fail_msg("%s: allows is %d", rows[i].rule, !rows[i].want);
        }
        tc_filter_fini(&f);
        tc_client_token_fini(&t);
        free(tok);
    }
}

static void
test_make(void **state)
{
    (void)state;
    char tok[TC_CLIENT_TOKEN_MAX + 1];
    struct tc_client_token t;
    struct tc_error err = {{0}};
    const char *comps[] = {"playback", "search"};

    assert_int_equal(
        tc_client_token_make(KEY, sizeof(KEY), comps, 2, NOW, NOW + 3600, tok, sizeof(tok), &err),
        TC_OK);
    assert_int_equal(
        strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
        strlen(tok));
    assert_int_equal(verify(tok, &t, &err), TC_OK);
    assert_int_equal(t.exp, NOW + 3600);
    assert_int_equal(t.ncomponents, 2);
    assert_string_equal(t.components[1], "search");
    tc_client_token_fini(&t);
    /* Signed with another key: refused. */
    assert_int_equal(tc_client_token_verify(KEY2, sizeof(KEY2), tok, NOW, &t, NULL), TC_EINVAL);

    assert_int_equal(
        tc_client_token_make(KEY, sizeof(KEY), NULL, 0, NOW, NOW + 60, tok, sizeof(tok), &err),
        TC_OK);
    assert_int_equal(verify(tok, &t, &err), TC_OK);
    assert_null(t.components);
    tc_client_token_fini(&t);

    /* Bounds: the output, a bad component id, a short key. */
    assert_int_equal(tc_client_token_make(KEY, sizeof(KEY), comps, 2, NOW, NOW + 60, tok, 40, &err),
                     TC_ETOOBIG);
    assert_string_equal(tok, "");
    const char *bad[] = {"Playback"};
    assert_int_equal(
        tc_client_token_make(KEY, sizeof(KEY), bad, 1, NOW, NOW + 60, tok, sizeof(tok), &err),
        TC_EINVAL);
    assert_int_equal(tc_client_token_make(KEY, 16, NULL, 0, NOW, NOW + 60, tok, sizeof(tok), &err),
                     TC_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),     cmocka_unit_test(test_claims),
        cmocka_unit_test(test_signature), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_allows),    cmocka_unit_test(test_make),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
