/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/util: the duration parser (table of good, bad and
 * overflowing inputs), constant-time string comparison, the RFC 3339 clock
 * format, tc_xasprintf and the small error helpers.
 */
#define _GNU_SOURCE /* strptime, timegm */
#include "util/util.h"

#include <regex.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

struct duration_case {
    const char *rule;
    const char *text;
    int rc;
    uint64_t ms;
};

#define DAY_MS  (86400ull * 1000)
#define YEAR_MS (366ull * DAY_MS) /* the longest duration the parser accepts */

/* clang-format off */
static const struct duration_case duration_cases[] = {
    {"milliseconds", "250ms", TC_OK, 250},
    {"seconds", "10s", TC_OK, 10000},
    {"minutes", "5m", TC_OK, 300000},
    {"hours", "2h", TC_OK, 7200000},
    {"days", "7d", TC_OK, 7 * DAY_MS},
    {"bare number is seconds", "10", TC_OK, 10000},
    {"zero", "0", TC_OK, 0},
    {"zero ms", "0ms", TC_OK, 0},
    {"leading zeros", "007s", TC_OK, 7000},
    {"a year in days", "366d", TC_OK, YEAR_MS},
    {"a year in ms", "31622400000ms", TC_OK, YEAR_MS},
    {"a year in s", "31622400", TC_OK, YEAR_MS},
    {"a year in h", "8784h", TC_OK, YEAR_MS},
    {"over a year in days", "367d", TC_EINVAL, 0},
    {"over a year in ms", "31622400001ms", TC_EINVAL, 0},
    {"over a year in s", "31622401s", TC_EINVAL, 0},
    {"over a year in m", "527041m", TC_EINVAL, 0},
    {"over a year in h", "8785h", TC_EINVAL, 0},
    {"uint64 max", "18446744073709551615ms", TC_EINVAL, 0},
    {"past uint64 (ERANGE)", "99999999999999999999", TC_EINVAL, 0},
    {"multiplication would wrap", "18446744073709552d", TC_EINVAL, 0},
    {"empty", "", TC_EINVAL, 0},
    {"suffix only", "ms", TC_EINVAL, 0},
    {"upper-case suffix", "10S", TC_EINVAL, 0},
    {"long suffix", "10sec", TC_EINVAL, 0},
    {"weeks", "1w", TC_EINVAL, 0},
    {"microseconds", "5us", TC_EINVAL, 0},
    {"two suffixes", "1h30m", TC_EINVAL, 0},
    {"fraction", "1.5s", TC_EINVAL, 0},
    {"negative", "-1s", TC_EINVAL, 0},
    {"plus sign", "+1s", TC_EINVAL, 0},
    {"leading space", " 1s", TC_EINVAL, 0},
    {"trailing space", "1s ", TC_EINVAL, 0},
    {"space before suffix", "1 s", TC_EINVAL, 0},
    {"hex", "0x10", TC_EINVAL, 0},
    {"exponent", "1e3", TC_EINVAL, 0},
};
/* clang-format on */

static void
test_durations(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(duration_cases); i++) {
        const struct duration_case *c = &duration_cases[i];
        uint64_t ms = 12345;
        int rc = tc_parse_duration_ms(c->text, &ms);
        if (rc != c->rc) {
            fail_msg("%s: \"%s\" gave %d, wanted %d", c->rule, c->text, rc, c->rc);
        }
        /* On failure the output is left alone. */
        uint64_t want = c->rc == TC_OK ? c->ms : 12345;
        if (ms != want) {
            fail_msg("%s: \"%s\" gave %llu ms, wanted %llu", c->rule, c->text,
                     (unsigned long long)ms, (unsigned long long)want);
        }
    }
    uint64_t ms;
    assert_int_equal(tc_parse_duration_ms(NULL, &ms), TC_EINVAL);
}

static void
test_str_equal_ct(void **state)
{
    (void)state;
    assert_true(tc_str_equal_ct("", ""));
    assert_true(tc_str_equal_ct("s3cret-token", "s3cret-token"));
    assert_false(tc_str_equal_ct("s3cret-token", "s3cret-tokeN"));
    assert_false(tc_str_equal_ct("S3cret-token", "s3cret-token"));
    assert_false(tc_str_equal_ct("abc", "abcd"));
    assert_false(tc_str_equal_ct("abcd", "abc"));
    assert_false(tc_str_equal_ct("", "a"));
    assert_false(tc_str_equal_ct("a", ""));
    /* Bytes that differ only in the high bit, or only in the low bit. */
    assert_false(tc_str_equal_ct("\x81", "\x01"));
    assert_false(tc_str_equal_ct("b", "c"));
    assert_true(tc_str_equal_ct("\xff\xfe", "\xff\xfe"));
}

static void
test_rfc3339_now(void **state)
{
    (void)state;
    char buf[32];
    memset(buf, 'X', sizeof(buf));
    time_t before = time(NULL);
    tc_rfc3339_now(buf);
    time_t after = time(NULL);
    assert_int_equal(strlen(buf), 24);
    regex_t re;
    assert_int_equal(
        regcomp(&re,
                "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):"
                "[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z$",
                REG_EXTENDED | REG_NOSUB),
        0);
    if (regexec(&re, buf, 0, NULL, 0) != 0) {
        fail_msg("\"%s\" is not RFC 3339 UTC with milliseconds", buf);
    }
    regfree(&re);
    /* It is now, in UTC. */
    struct tm tm = {0};
    const char *rest = strptime(buf, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    assert_string_equal(rest + 4, "Z");
    time_t t = timegm(&tm);
    assert_true(t >= before && t <= after);
    /* The wall clock in microseconds agrees to the second. */
    uint64_t us = tc_wall_us();
    assert_true(us / 1000000u >= (uint64_t)before && us / 1000000u <= (uint64_t)after + 1);
}

static void
test_xasprintf(void **state)
{
    (void)state;
    char *s = tc_xasprintf("%s-%d-%05.1f-%c", "seq", 42, 3.25, 'x');
    assert_string_equal(s, "seq-42-003.2-x");
    free(s);
    s = tc_xasprintf("%s", "");
    assert_string_equal(s, "");
    free(s);
    /* Longer than any stack buffer a naive version would use. */
    char *big = tc_xmalloc(100001);
    memset(big, 'z', 100000);
    big[100000] = '\0';
    s = tc_xasprintf("<%s>", big);
    assert_int_equal(strlen(s), 100002);
    assert_int_equal(s[0], '<');
    assert_int_equal(s[100001], '>');
    assert_memory_equal(s + 1, big, 100000);
    free(s);
    free(big);
    s = tc_xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
}

static void
test_errors_and_random(void **state)
{
    (void)state;
    struct tc_error err;
    assert_int_equal(tc_error_set(&err, TC_EINVAL, "key %s: %d", "x", 5), TC_EINVAL);
    assert_string_equal(err.text, "key x: 5");
    assert_int_equal(tc_error_set(NULL, TC_EIO, "ignored"), TC_EIO);
    /* A long detail is cut to the buffer, NUL-terminated. */
    char *big = tc_xmalloc(1001);
    memset(big, 'e', 1000);
    big[1000] = '\0';
    tc_error_set(&err, TC_EINVAL, "%s", big);
    assert_int_equal(strlen(err.text), sizeof(err.text) - 1);
    free(big);
    assert_string_equal(tc_strerror(TC_OK), "ok");
    assert_string_equal(tc_strerror(TC_ETIMEDOUT), "timed out");
    assert_string_equal(tc_strerror(-99), "unknown error");

    unsigned char a[32] = {0}, b[32] = {0};
    assert_int_equal(tc_random_bytes(a, sizeof(a)), TC_OK);
    assert_int_equal(tc_random_bytes(b, sizeof(b)), TC_OK);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(tc_random_bytes(a, 0), TC_OK);
    uint64_t t0 = tc_now_ms();
    assert_true(tc_now_ms() >= t0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),         cmocka_unit_test(test_str_equal_ct),
        cmocka_unit_test(test_rfc3339_now),       cmocka_unit_test(test_xasprintf),
        cmocka_unit_test(test_errors_and_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
