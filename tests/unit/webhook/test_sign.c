/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/webhook/sign: the official Standard Webhooks test
 * vector, the rotation header with two secrets, new secrets, secret decoding
 * bounds (23/24/64/65 bytes, bad base64) and output-buffer bounds.
 */
#include "util/util.h"
#include "webhook/sign.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* https://github.com/standard-webhooks/standard-webhooks (libraries' tests). */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS     1614265330
#define VEC_BODY   "{\"test\": 2432232314}"
#define VEC_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

static void
test_official_vector(void **state)
{
    char sig[TC_WEBHOOK_SIGNATURE_MAX];
    (void)state;

    assert_int_equal(
        tc_webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig, sizeof(sig)),
        TC_OK);
    assert_string_equal(sig, VEC_SIG);

    /* Each signed part matters: id, timestamp, body (one byte, and its length). */
    char other[TC_WEBHOOK_SIGNATURE_MAX];
    assert_int_equal(tc_webhook_sign(VEC_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJeK", VEC_TS, VEC_BODY,
                                     strlen(VEC_BODY), other, sizeof(other)),
                     TC_OK);
    assert_string_not_equal(other, VEC_SIG);
    assert_int_equal(tc_webhook_sign(VEC_SECRET, VEC_ID, VEC_TS + 1, VEC_BODY, strlen(VEC_BODY),
                                     other, sizeof(other)),
                     TC_OK);
    assert_string_not_equal(other, VEC_SIG);
    assert_int_equal(tc_webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY) - 1,
                                     other, sizeof(other)),
                     TC_OK);
    assert_string_not_equal(other, VEC_SIG);

    /* An empty body is legal and signs "id.ts." */
    assert_int_equal(tc_webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, NULL, 0, other, sizeof(other)),
                     TC_OK);
    assert_int_equal(strlen(other), strlen(VEC_SIG));
    assert_string_not_equal(other, VEC_SIG);

    /* The output bound: exactly 48 bytes fit, 47 do not and leave "". */
    assert_int_equal(tc_webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), other,
                                     strlen(VEC_SIG) + 1),
                     TC_OK);
    assert_string_equal(other, VEC_SIG);
    assert_int_equal(tc_webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), other,
                                     strlen(VEC_SIG)),
                     TC_ETOOBIG);
    assert_int_equal(
        tc_webhook_sign(VEC_SECRET, "", VEC_TS, VEC_BODY, strlen(VEC_BODY), other, sizeof(other)),
        TC_EINVAL);
    assert_int_equal(tc_webhook_sign(VEC_SECRET, VEC_ID, VEC_TS, NULL, 3, other, sizeof(other)),
                     TC_EINVAL);
}

static void
test_rotation_header(void **state)
{
    char fresh[TC_WEBHOOK_SECRET_MAX];
    char sig2[TC_WEBHOOK_SIGNATURE_MAX];
    char header[2 * TC_WEBHOOK_SIGNATURE_MAX];
    char expect[2 * TC_WEBHOOK_SIGNATURE_MAX];
    (void)state;

    assert_int_equal(tc_webhook_secret_new(fresh, sizeof(fresh)), TC_OK);
    const char *const secrets[] = {VEC_SECRET, fresh};
    assert_int_equal(
        tc_webhook_sign(fresh, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig2, sizeof(sig2)),
        TC_OK);
    assert_string_not_equal(sig2, VEC_SIG);
    snprintf(expect, sizeof(expect), "%s %s", VEC_SIG, sig2);

    assert_int_equal(tc_webhook_signature_header(secrets, 2, VEC_ID, VEC_TS, VEC_BODY,
                                                 strlen(VEC_BODY), header, sizeof(header)),
                     TC_OK);
    assert_string_equal(header, expect);

    /* One secret: the header is exactly that signature. */
    assert_int_equal(tc_webhook_signature_header(secrets, 1, VEC_ID, VEC_TS, VEC_BODY,
                                                 strlen(VEC_BODY), header, sizeof(header)),
                     TC_OK);
    assert_string_equal(header, VEC_SIG);

    /* Exact fit works; one byte less refuses the whole header. */
    assert_int_equal(tc_webhook_signature_header(secrets, 2, VEC_ID, VEC_TS, VEC_BODY,
                                                 strlen(VEC_BODY), header, strlen(expect) + 1),
                     TC_OK);
    assert_string_equal(header, expect);
    assert_int_equal(tc_webhook_signature_header(secrets, 2, VEC_ID, VEC_TS, VEC_BODY,
                                                 strlen(VEC_BODY), header, strlen(expect)),
                     TC_ETOOBIG);
    assert_string_equal(header, "");

    /* No secrets, or one bad secret among good ones, is an error. */
    assert_int_equal(tc_webhook_signature_header(secrets, 0, VEC_ID, VEC_TS, VEC_BODY,
                                                 strlen(VEC_BODY), header, sizeof(header)),
                     TC_EINVAL);
    const char *const bad[] = {VEC_SECRET, "whsec_nope"};
    assert_int_equal(tc_webhook_signature_header(bad, 2, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY),
                                                 header, sizeof(header)),
                     TC_EINVAL);
    assert_string_equal(header, "");
}

static void
test_secret_new(void **state)
{
    char a[TC_WEBHOOK_SECRET_MAX], b[TC_WEBHOOK_SECRET_MAX];
    unsigned char key[TC_WEBHOOK_KEY_MAX];
    size_t keylen = 0;
    (void)state;

    assert_int_equal(tc_webhook_secret_new(a, sizeof(a)), TC_OK);
    assert_int_equal(tc_webhook_secret_new(b, sizeof(b)), TC_OK);
    assert_int_equal(strncmp(a, "whsec_", 6), 0);
    assert_int_equal(strlen(a), 6 + 44);
    assert_string_not_equal(a, b);
    assert_int_equal(tc_webhook_secret_decode(a, key, &keylen), TC_OK);
    assert_int_equal(keylen, TC_WEBHOOK_KEY_NEW);

    assert_int_equal(tc_webhook_secret_new(a, 6 + 44 + 1), TC_OK);
    assert_int_equal(tc_webhook_secret_new(a, 6 + 44), TC_ETOOBIG);
}

struct secret_case {
    const char *rule;
    const char *secret;
    int rc;
    size_t keylen;
};

/* clang-format off */
static const struct secret_case secret_cases[] = {
    {"official vector, 24 bytes", VEC_SECRET, TC_OK, 24},
    {"23 bytes", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", TC_EINVAL, 0},
    {"25 bytes, two pad", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", TC_OK, 25},
    /* Found by fuzzing: spare bits after the last byte must be zero, or two
     * texts would name one key (base64 must be canonical). */
    {"25 bytes, spare bits set", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB==", TC_EINVAL, 0},
    {"64 bytes", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", TC_OK, 64},
    {"65 bytes", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", TC_EINVAL, 0},
    {"92 characters (69 bytes)", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", TC_EINVAL, 0},
    {"66 bytes", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", TC_EINVAL, 0},
    {"no prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", TC_EINVAL, 0},
    {"wrong prefix", "whsek_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", TC_EINVAL, 0},
    {"upper-case prefix", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", TC_EINVAL, 0},
    {"prefix only", "whsec_", TC_EINVAL, 0},
    {"empty", "", TC_EINVAL, 0},
    {"length not a multiple of 4", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", TC_EINVAL, 0},
    {"url-safe alphabet", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", TC_EINVAL, 0},
    {"space inside", "whsec_MfKQ9r8GKYqrTwjU D8ILPZIo2LaLaSw", TC_EINVAL, 0},
    {"trailing newline", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS\n", TC_EINVAL, 0},
    {"pad in the middle", "whsec_MfKQ9r8GKYqr=wjUPD8ILPZIo2LaLaSw", TC_EINVAL, 0},
    {"three pads", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA===", TC_EINVAL, 0},
};
/* clang-format on */

static void
test_secret_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(secret_cases); i++) {
        const struct secret_case *c = &secret_cases[i];
        unsigned char key[TC_WEBHOOK_KEY_MAX];
        size_t keylen = 0;
        char sig[TC_WEBHOOK_SIGNATURE_MAX] = "x";
        int rc = tc_webhook_secret_decode(c->secret, key, &keylen);

        if (rc != c->rc || (rc == TC_OK && keylen != c->keylen)) {
            fail_msg("%s: %s gave rc %d keylen %zu", c->rule, c->secret, rc, keylen);
        }
        /* Signing agrees with decoding and leaves "" on failure. */
        rc = tc_webhook_sign(c->secret, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig,
                             sizeof(sig));
        assert_int_equal(rc, c->rc);
        if (rc != TC_OK) {
            assert_string_equal(sig, "");
        }
    }
    unsigned char key[TC_WEBHOOK_KEY_MAX];
    size_t keylen = 0;
    assert_int_equal(tc_webhook_secret_decode(NULL, key, &keylen), TC_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_official_vector),
        cmocka_unit_test(test_rotation_header),
        cmocka_unit_test(test_secret_new),
        cmocka_unit_test(test_secret_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
