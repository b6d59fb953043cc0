/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/webhook/retry: the default schedule loaded through the
 * real config loader (order, jitter bounds at rnd 0 and UINT32_MAX,
 * exhaustion), a schedule from the environment, and Retry-After in its
 * delta-seconds and HTTP-date forms, capped, and garbage.
 */
#include "config/config.h"
#include "util/util.h"
#include "net/retry.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define S_MS (1000ull)
#define M_MS (60 * S_MS)
#define H_MS (60 * M_MS)

static void
test_default_schedule(void **state)
{
    static const uint64_t want[] = {5 * S_MS, 5 * M_MS,  30 * M_MS, 2 * H_MS,
                                    5 * H_MS, 10 * H_MS, 10 * H_MS};
    struct tc_config cfg;
    struct tc_error err = {{0}};
    char *envp[] = {NULL};
    (void)state;

    assert_int_equal(tc_config_load(&cfg, NULL, envp, &err), TC_OK);
    assert_int_equal(cfg.webhook_retry.count, (int)TC_ARRAY_SIZE(want));

    uint64_t prev_hi = 0;
    for (int a = 1; a <= cfg.webhook_retry.count; a++) {
        uint64_t base = want[a - 1];
        uint64_t lo = tc_retry_delay_ms(&cfg.webhook_retry, a, 0);
        uint64_t mid = tc_retry_delay_ms(&cfg.webhook_retry, a, UINT32_MAX / 2);
        uint64_t hi = tc_retry_delay_ms(&cfg.webhook_retry, a, UINT32_MAX);

        /* rnd 0 is exactly -20 %, UINT32_MAX exactly +20 %, half is the base. */
        assert_int_equal(lo, base * 8 / 10);
        assert_int_equal(hi, base * 12 / 10);
        assert_true(mid >= base - 1 && mid <= base);
        /* Schedule order: each step's lowest delay is not below the previous
         * distinct step's (equal steps, like 10h,10h, may overlap). */
        if (a > 1 && base > want[a - 2]) {
            assert_true(lo > tc_retry_delay_ms(&cfg.webhook_retry, a - 1, 0));
        }
        assert_true(hi >= prev_hi);
        prev_hi = hi;

        /* Any rnd stays inside [0.8, 1.2] of the base. */
        for (uint32_t r = 1; r != 0 && r < UINT32_MAX / 2; r *= 7) {
            uint64_t d = tc_retry_delay_ms(&cfg.webhook_retry, a, r);
            assert_true(d >= lo && d <= hi);
        }
    }
    /* Exhausted: the caller dead-letters. */
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, cfg.webhook_retry.count + 1, 0), 0);
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 1000, UINT32_MAX), 0);
    /* attempt below 1 counts as the first retry. */
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 0, 0), 4 * S_MS);
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, -3, 0), 4 * S_MS);
    assert_int_equal(tc_retry_delay_ms(NULL, 1, 0), 0);
    tc_config_fini(&cfg);
}

static void
test_env_schedule(void **state)
{
    struct tc_config cfg;
    struct tc_error err = {{0}};
    char var[] = "TOCSIN_WEBHOOK_RETRY_SCHEDULE=0s,250ms,1d";
    char *envp[] = {var, NULL};
    (void)state;

    assert_int_equal(tc_config_load(&cfg, NULL, envp, &err), TC_OK);
    assert_int_equal(cfg.webhook_retry.count, 3);
    /* A "0s" step still schedules (1 ms), so 0 keeps meaning "exhausted". */
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 1, 0), 1);
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 1, UINT32_MAX), 1);
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 2, 0), 200);
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 2, UINT32_MAX), 300);
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 3, 0), 24 * H_MS * 8 / 10);
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 3, UINT32_MAX), 24 * H_MS * 12 / 10);
    assert_int_equal(tc_retry_delay_ms(&cfg.webhook_retry, 4, 0), 0);
    tc_config_fini(&cfg);
}

struct ra_case {
    const char *value;
    int rc;
    uint64_t ms;
};

/* "Wed, 21 Oct 2015 07:28:00 GMT" is 1445412480. */
#define NOW 1445412480

/* clang-format off */
static const struct ra_case ra_cases[] = {
    {"0", TC_OK, 0},
    {"1", TC_OK, 1000},
    {"120", TC_OK, 120000},
    {" 120 ", TC_OK, 120000},
    {"86399", TC_OK, 86399000},
    {"86400", TC_OK, 24 * H_MS},
    {"86401", TC_OK, 24 * H_MS},
    {"99999999999999999999999999", TC_OK, 24 * H_MS},
    {"Wed, 21 Oct 2015 07:28:00 GMT", TC_OK, 0},
    {"Wed, 21 Oct 2015 07:30:00 GMT", TC_OK, 120000},
    {"Wed, 21 Oct 2015 07:27:00 GMT", TC_OK, 0},       /* past */
    {"Thu, 22 Oct 2015 07:28:00 GMT", TC_OK, 24 * H_MS},
    {"Fri, 23 Oct 2015 07:28:00 GMT", TC_OK, 24 * H_MS}, /* capped */
    {"Wednesday, 21-Oct-15 07:29:00 GMT", TC_OK, 60000}, /* RFC 850 */
    {"Wed Oct 21 07:29:30 2015", TC_OK, 90000},          /* asctime */
    {"", TC_EINVAL, 0},
    {"   ", TC_EINVAL, 0},
    {"-5", TC_EINVAL, 0},
    {"+5", TC_EINVAL, 0},
    {"1.5", TC_EINVAL, 0},
    {"5s", TC_EINVAL, 0},
    {"0x10", TC_EINVAL, 0},
    {"12 34", TC_EINVAL, 0},
    {"soon", TC_EINVAL, 0},
    {"Wed, 21 Oct 2015 07:28:00", TC_EINVAL, 0},         /* no zone */
    {"Wed, 21 Oct 2015 07:28:00 UTC", TC_EINVAL, 0},
    {"Wed, 21 Oct 2015 07:28:00 GMT junk", TC_EINVAL, 0},
    {"Wed, 32 Oct 2015 07:28:00 GMT", TC_EINVAL, 0},
    {"Wed, 21 Foo 2015 07:28:00 GMT", TC_EINVAL, 0},
    {"Wed, 21 Oct 2015 25:28:00 GMT", TC_EINVAL, 0},
    {"2015-10-21T07:28:00Z", TC_EINVAL, 0},
};
/* clang-format on */

static void
test_retry_after(void **state)
{
    (void)state;
    for (size_t i = 0; i < TC_ARRAY_SIZE(ra_cases); i++) {
        const struct ra_case *c = &ra_cases[i];
        uint64_t ms = 777;
        int rc = tc_retry_after_parse(c->value, NOW, &ms);

        if (rc != c->rc || (rc == TC_OK && ms != c->ms) || (rc != TC_OK && ms != 777)) {
            fail_msg("'%s': rc %d ms %llu, want rc %d ms %llu", c->value, rc,
                     (unsigned long long)ms, c->rc, (unsigned long long)c->ms);
        }
    }
    /* Over the 64-character bound is refused without being looked at. */
    char longv[80];
    memset(longv, '1', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    uint64_t ms = 0;
    assert_int_equal(tc_retry_after_parse(longv, NOW, &ms), TC_EINVAL);
    assert_int_equal(tc_retry_after_parse(NULL, NOW, &ms), TC_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_schedule),
        cmocka_unit_test(test_env_schedule),
        cmocka_unit_test(test_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
