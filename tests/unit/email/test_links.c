/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/email/links: the link shape for both purposes, the
 * trailing '/' of public_url, public_url and token characters refused on a
 * table, the length bound (exactly TC_EMAIL_LINK_MAX and one more), and a
 * made link whose token verifies.
 */
#include "email/links.h"
#include "email/token.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef";

static void
test_shape(void **state)
{
    static const struct {
        const char *rule, *base;
        enum tc_email_token_purpose purpose;
        const char *want;
    } cases[] = {
        {"confirm path", "https://s.example", TC_EMAIL_TOKEN_CONFIRM,
         "https://s.example/v1/confirm?token=abc.DEF-_9"},
        {"unsubscribe path", "https://s.example", TC_EMAIL_TOKEN_UNSUBSCRIBE,
         "https://s.example/v1/unsubscribe?token=abc.DEF-_9"},
        {"trailing slash dropped", "https://s.example/", TC_EMAIL_TOKEN_CONFIRM,
         "https://s.example/v1/confirm?token=abc.DEF-_9"},
        {"every trailing slash", "http://s.example:8080//", TC_EMAIL_TOKEN_CONFIRM,
         "http://s.example:8080/v1/confirm?token=abc.DEF-_9"},
        {"a path prefix is kept", "https://example.com/status/", TC_EMAIL_TOKEN_UNSUBSCRIBE,
         "https://example.com/status/v1/unsubscribe?token=abc.DEF-_9"},
    };
    (void)state;

    for (size_t i = 0; i < TC_ARRAY_SIZE(cases); i++) {
        char *url = NULL;
        struct tc_error err;
        if (tc_email_link_url(cases[i].base, cases[i].purpose, "abc.DEF-_9", &url, &err) != 0) {
            fail_msg("%s: %s", cases[i].rule, err.text);
        }
        if (strcmp(url, cases[i].want) != 0) {
            fail_msg("%s: %s", cases[i].rule, url);
        }
        free(url);
    }
    assert_string_equal(tc_email_link_path(TC_EMAIL_TOKEN_CONFIRM), TC_EMAIL_LINK_CONFIRM_PATH);
    assert_null(tc_email_link_path((enum tc_email_token_purpose)9));
}

static void
test_refused(void **state)
{
    static const struct {
        const char *rule, *base, *token;
        int want;
    } cases[] = {
        {"not http(s)", "ftp://s.example", "abc", TC_EINVAL},
        {"no scheme", "s.example", "abc", TC_EINVAL},
        {"NULL base", NULL, "abc", TC_EINVAL},
        {"space in base", "https://s.example/a b", "abc", TC_EINVAL},
        {"quote in base", "https://s.example/\"x", "abc", TC_EINVAL},
        {"angle bracket in base", "https://s.example/>", "abc", TC_EINVAL},
        {"CR in base", "https://s.example\r\nX: y", "abc", TC_EINVAL},
        {"query in base", "https://s.example/?a=1", "abc", TC_EINVAL},
        {"fragment in base", "https://s.example/#x", "abc", TC_EINVAL},
        {"non-ASCII in base", "https://s\xc3\xa9.example", "abc", TC_EINVAL},
        {"empty token", "https://s.example", "", TC_EINVAL},
        {"NULL token", "https://s.example", NULL, TC_EINVAL},
        {"'&' in token", "https://s.example", "a&b", TC_EINVAL},
        {"'=' in token (padding)", "https://s.example", "abc=", TC_EINVAL},
        {"'+' in token (not url-safe)", "https://s.example", "a+b", TC_EINVAL},
        {"LF in token", "https://s.example", "a\nb", TC_EINVAL},
    };
    (void)state;

    for (size_t i = 0; i < TC_ARRAY_SIZE(cases); i++) {
        char *url = (char *)&url; /* any non-NULL: must become NULL */
        struct tc_error err = {{0}};
        int rc =
            tc_email_link_url(cases[i].base, TC_EMAIL_TOKEN_CONFIRM, cases[i].token, &url, &err);
        if (rc != cases[i].want || url != NULL || err.text[0] == '\0') {
            fail_msg("%s: rc %d", cases[i].rule, rc);
        }
    }
    char *url;
    assert_int_equal(
        tc_email_link_url("https://s.example", (enum tc_email_token_purpose)0, "abc", &url, NULL),
        TC_EINVAL);
}

/* The bound is the List-Unsubscribe URL bound of mime.h. */
static void
test_bound(void **state)
{
    const char *prefix = "https://s.example/v1/confirm?token=";
    size_t room = TC_EMAIL_LINK_MAX - strlen(prefix);
    char *token = tc_xmalloc(room + 2);
    char *url = NULL;
    (void)state;

    memset(token, 'a', room + 1);
    token[room] = '\0';
    assert_int_equal(
        tc_email_link_url("https://s.example", TC_EMAIL_TOKEN_CONFIRM, token, &url, NULL), 0);
    assert_int_equal(strlen(url), TC_EMAIL_LINK_MAX);
    free(url);
    token[room] = 'a';
    token[room + 1] = '\0';
    assert_int_equal(
        tc_email_link_url("https://s.example", TC_EMAIL_TOKEN_CONFIRM, token, &url, NULL),
        TC_ETOOBIG);
    assert_null(url);
    free(token);
}

static void
test_make_verifies(void **state)
{
    char *url = NULL;
    struct tc_email_token_claims claims;
    struct tc_error err;
    (void)state;

    assert_int_equal(tc_email_link_make(KEY, 32, "https://s.example/", TC_EMAIL_TOKEN_UNSUBSCRIBE,
                                        "a@example.com", "es_1", 0, &url, &err),
                     0);
    const char *tok = strstr(url, "?token=");
    assert_non_null(tok);
    assert_int_equal(tok - url, strlen("https://s.example/v1/unsubscribe"));
    assert_int_equal(tc_email_token_verify(KEY, 32, TC_EMAIL_TOKEN_UNSUBSCRIBE, tok + 7, 1795621829,
                                           &claims, &err),
                     0);
    assert_string_equal(claims.address, "a@example.com");
    assert_string_equal(claims.subscriber_id, "es_1");
    free(url);

    /* Token errors come through: a bad address makes no link. */
    assert_int_equal(tc_email_link_make(KEY, 32, "https://s.example", TC_EMAIL_TOKEN_CONFIRM,
                                        "not an address", "es_1", 0, &url, &err),
                     TC_EINVAL);
    assert_null(url);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_make_verifies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
