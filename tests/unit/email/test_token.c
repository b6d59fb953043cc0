/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/email/token: make/verify roundtrip for both purposes,
 * an address holding '|', tampering with every byte, a wrong key, purpose
 * mismatch, expiry (and 0 = never), malformed tokens, the output bound and
 * argument checks.
 */
#include "email/token.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const unsigned char KEY[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char KEY2[32] = "0123456789abcdef0123456789abcdeF";

#define NOW 1795000000 /* 2026-11-18 */

static void
make_ok(enum tc_email_token_purpose p, const char *addr, const char *id, int64_t exp, char *out)
{
    struct tc_error err = {{0}};
    int rc = tc_email_token_make(KEY, sizeof(KEY), p, addr, id, exp, out, TC_EMAIL_TOKEN_MAX, &err);
    if (rc != TC_OK) {
        fail_msg("make %s: %d %s", addr, rc, err.text);
    }
}

static void
test_roundtrip(void **state)
{
    char tok[TC_EMAIL_TOKEN_MAX];
    struct tc_email_token_claims c;
    struct tc_error err = {{0}};
    (void)state;

    make_ok(TC_EMAIL_TOKEN_CONFIRM, "user@example.test", "es_0123abcd", NOW + 3600, tok);
    /* URL-safe: only the base64url alphabet and one '.'. */
    assert_int_equal(
        strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
        strlen(tok));
    assert_non_null(strchr(tok, '.'));
    assert_ptr_equal(strchr(tok, '.'), strrchr(tok, '.'));

    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, tok, NOW, &c, &err), TC_OK);
    assert_int_equal(c.purpose, TC_EMAIL_TOKEN_CONFIRM);
    assert_string_equal(c.address, "user@example.test");
    assert_string_equal(c.subscriber_id, "es_0123abcd");
    assert_int_equal(c.expires_at, NOW + 3600);

    /* An address with '|' (legal atext) cannot shift the fields. */
    make_ok(TC_EMAIL_TOKEN_UNSUBSCRIBE, "a|99|x|b@example.test", "es:1", 0, tok);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, tok, NOW, &c, &err),
        TC_OK);
    assert_string_equal(c.address, "a|99|x|b@example.test");
    assert_string_equal(c.subscriber_id, "es:1");
    assert_int_equal(c.expires_at, 0);

    /* Deterministic: the same claims give the same token. */
    char again[TC_EMAIL_TOKEN_MAX];
    make_ok(TC_EMAIL_TOKEN_UNSUBSCRIBE, "a|99|x|b@example.test", "es:1", 0, again);
    assert_string_equal(tok, again);
}

static void
test_tamper(void **state)
{
    char tok[TC_EMAIL_TOKEN_MAX], bad[TC_EMAIL_TOKEN_MAX];
    struct tc_email_token_claims c;
    struct tc_error err;
    (void)state;

    make_ok(TC_EMAIL_TOKEN_UNSUBSCRIBE, "user@example.test", "es_1", 0, tok);
    size_t n = strlen(tok);
    /* Change every character to another of the alphabet: never accepted. */
    for (size_t i = 0; i < n; i++) {
        strcpy(bad, tok);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        if (bad[i] == tok[i]) {
            continue;
        }
        int rc =
            tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, bad, NOW, &c, &err);
        if (rc != TC_EINVAL) {
            fail_msg("byte %zu changed: rc %d", i, rc);
        }
        assert_string_equal(c.address, "");
    }
    /* Truncated, extended, empty, no dot, two dots, padding. */
    const char *const shapes[] = {"", ".", "abc", "abc.def", "..", "x.y.z"};
    for (size_t i = 0; i < TC_ARRAY_SIZE(shapes); i++) {
        assert_int_equal(tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE,
                                               shapes[i], NOW, &c, &err),
                         TC_EINVAL);
    }
    strcpy(bad, tok);
    bad[n - 1] = '\0';
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, bad, NOW, &c, &err),
        TC_EINVAL);
    snprintf(bad, sizeof(bad), "%sA", tok);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, bad, NOW, &c, &err),
        TC_EINVAL);
    snprintf(bad, sizeof(bad), "%s=", tok);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, bad, NOW, &c, &err),
        TC_EINVAL);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, NULL, NOW, &c, &err),
        TC_EINVAL);

    /* Another key. */
    assert_int_equal(
        tc_email_token_verify(KEY2, sizeof(KEY2), TC_EMAIL_TOKEN_UNSUBSCRIBE, tok, NOW, &c, &err),
        TC_EINVAL);
    assert_non_null(strstr(err.text, "signature"));

    /* An over-long token is refused unread. */
    char big[TC_EMAIL_TOKEN_MAX + 10];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, big, NOW, &c, &err),
        TC_EINVAL);
    assert_non_null(strstr(err.text, "too long"));
}

static void
test_purpose_mismatch(void **state)
{
    char tok[TC_EMAIL_TOKEN_MAX];
    struct tc_email_token_claims c;
    struct tc_error err;
    (void)state;

    make_ok(TC_EMAIL_TOKEN_CONFIRM, "user@example.test", "es_1", NOW + 60, tok);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, tok, NOW, &c, &err),
        TC_EINVAL);
    assert_non_null(strstr(err.text, "another purpose"));
    make_ok(TC_EMAIL_TOKEN_UNSUBSCRIBE, "user@example.test", "es_1", 0, tok);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, tok, NOW, &c, &err),
        TC_EINVAL);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), (enum tc_email_token_purpose)7, tok, NOW, &c, &err),
        TC_EINVAL);
}

static void
test_expiry(void **state)
{
    char tok[TC_EMAIL_TOKEN_MAX];
    struct tc_email_token_claims c;
    struct tc_error err;
    (void)state;

    make_ok(TC_EMAIL_TOKEN_CONFIRM, "user@example.test", "es_1", NOW, tok);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, tok, NOW - 1, &c, &err),
        TC_OK);
    /* At the expiry second the token is already expired; claims are filled. */
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, tok, NOW, &c, &err),
        TC_ETIMEDOUT);
    assert_string_equal(c.address, "user@example.test");
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, tok, NOW + 86400, &c, &err),
        TC_ETIMEDOUT);

    /* 0 never expires. */
    make_ok(TC_EMAIL_TOKEN_UNSUBSCRIBE, "user@example.test", "es_1", 0, tok);
    assert_int_equal(tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, tok,
                                           INT64_MAX, &c, &err),
                     TC_OK);
}

static void
test_make_bounds(void **state)
{
    char tok[TC_EMAIL_TOKEN_MAX];
    char local[65], label[64], addr[300], id[70];
    struct tc_email_token_claims c;
    struct tc_error err;
    (void)state;

    /* The longest claims fit TC_EMAIL_TOKEN_MAX exactly... */
    memset(local, 'l', 64);
    local[64] = '\0';
    memset(label, 'd', 63);
    label[63] = '\0';
    snprintf(addr, sizeof(addr), "%s@%s.%s.%.61s", local, label, label, label);
    assert_int_equal(strlen(addr), TC_EMAIL_ADDRESS_MAX);
    memset(id, 'i', 64);
    id[64] = '\0';
    assert_int_equal(tc_email_token_make(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, addr, id,
                                         INT64_MAX, tok, sizeof(tok), &err),
                     TC_OK);
    assert_true(strlen(tok) + 1 <= TC_EMAIL_TOKEN_MAX);
    assert_int_equal(
        tc_email_token_verify(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, tok, NOW, &c, &err),
        TC_OK);
    assert_string_equal(c.address, addr);
    assert_int_equal(c.expires_at, INT64_MAX);

    /* ...and one byte less than needed is TC_ETOOBIG with "" out. */
    size_t need = strlen(tok) + 1;
    assert_int_equal(tc_email_token_make(KEY, sizeof(KEY), TC_EMAIL_TOKEN_UNSUBSCRIBE, addr, id,
                                         INT64_MAX, tok, need - 1, &err),
                     TC_ETOOBIG);
    assert_string_equal(tok, "");

    /* Argument checks. */
    assert_int_equal(tc_email_token_make(KEY, 15, TC_EMAIL_TOKEN_CONFIRM, "u@example.test", "1", 0,
                                         tok, sizeof(tok), &err),
                     TC_EINVAL);
    assert_int_equal(tc_email_token_make(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM,
                                         "u@example.test\r\n", "1", 0, tok, sizeof(tok), &err),
                     TC_EINVAL);
    assert_int_equal(tc_email_token_make(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, "u@example.test",
                                         "a|b", 0, tok, sizeof(tok), &err),
                     TC_EINVAL);
    assert_int_equal(tc_email_token_make(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, "u@example.test",
                                         "", 0, tok, sizeof(tok), &err),
                     TC_EINVAL);
    id[64] = 'i';
    id[65] = '\0';
    assert_int_equal(tc_email_token_make(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, "u@example.test",
                                         id, 0, tok, sizeof(tok), &err),
                     TC_EINVAL);
    assert_int_equal(tc_email_token_make(KEY, sizeof(KEY), TC_EMAIL_TOKEN_CONFIRM, "u@example.test",
                                         "1", -1, tok, sizeof(tok), &err),
                     TC_EINVAL);
    assert_int_equal(tc_email_token_make(KEY, sizeof(KEY), (enum tc_email_token_purpose)0,
                                         "u@example.test", "1", 0, tok, sizeof(tok), &err),
                     TC_EINVAL);
    assert_int_equal(tc_email_token_verify(KEY, 8, TC_EMAIL_TOKEN_CONFIRM, "a.b", NOW, &c, &err),
                     TC_EINVAL);
    assert_string_equal(tc_email_token_purpose_name(TC_EMAIL_TOKEN_CONFIRM), "confirm");
    assert_string_equal(tc_email_token_purpose_name(TC_EMAIL_TOKEN_UNSUBSCRIBE), "unsubscribe");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_purpose_mismatch), cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_make_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
