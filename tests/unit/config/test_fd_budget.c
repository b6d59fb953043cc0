/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of tc_config_fd_budget: the reserve follows the pools of the
 * configuration, and the client cap and soft limit it derives from
 * http.max_connections and the hard RLIMIT_NOFILE, one table row per rule.
 */
#include "config/config.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Only the keys the budget reads; the rest stay zero. */
static struct tc_config
config(int64_t max_connections, int64_t webhook_conns, int64_t smtp_conns)
{
    struct tc_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.http_max_connections = max_connections;
    cfg.webhook_max_connections = webhook_conns;
    cfg.smtp_max_connections = smtp_conns;
    return cfg;
}

static void
test_reserve_follows_the_pools(void **state)
{
    (void)state;
    struct tc_fd_budget a, b, c;
    struct tc_config cfg = config(1000, 1024, 4);
    tc_config_fd_budget(&cfg, 1 << 20, &a);
    cfg = config(1000, 256, 4);
    tc_config_fd_budget(&cfg, 1 << 20, &b);
    cfg = config(1000, 256, 64);
    tc_config_fd_budget(&cfg, 1 << 20, &c);
    /* Each webhook connection is one fd; each SMTP one, its socket and
     * (while resolving) a socket pair. */
    assert_int_equal(a.reserve - b.reserve, 1024 - 256);
    assert_int_equal(c.reserve - b.reserve, 2 * (64 - 4));
    /* The webhook in-flight attempts' resolver pairs are in it too. */
    assert_true(b.reserve > 256 + TC_WEBHOOK_MAX_INFLIGHT + 2 * 4);
    /* The bench holds 19,000 sessions under the machine's hard limit of
     * 20,000 with webhook.max_connections at 256 (benchlib.py). */
    assert_true(b.reserve <= 1000);
}

static void
test_cap_and_soft_limit(void **state)
{
    (void)state;
    struct tc_config probe = config(0, 1024, 4);
    struct tc_fd_budget p;
    tc_config_fd_budget(&probe, 1 << 20, &p);
    const uint64_t r = p.reserve;
    static const uint64_t big = (uint64_t)1 << 40;
    const struct {
        int64_t want;
        uint64_t hard;
        uint64_t cap, soft;
        bool lowered;
        const char *rule;
    } rows[] = {
        {60000, 1048576, 60000, 60000 + r, false,
         "the default under systemd's LimitNOFILE: the soft limit is cap + reserve"},
        {60000, 60000 + r, 60000, 60000 + r, false, "a hard limit exactly cap + reserve"},
        {60000, 60000 + r - 1, 60000 - 1, 60000 + r - 1, true,
         "one fd less: the cap is lowered by one"},
        {60000, 20000, 20000 - r, 20000, true, "a hard limit of 20,000: hard - reserve"},
        {40, 20000, 40, 40 + r, false, "a small cap: a small soft limit, lws's table with it"},
        {0, 20000, 20000 - r, 20000, false, "0: whatever the hard limit leaves"},
        {0, 1048576, 1048576 - r, 1048576, false, "0 under a high limit"},
        {1000000, 256, 128, 256, true,
         "a hard limit under the reserve: half of it for clients, not nothing"},
        {100, 256, 100, 256, false, "a cap under that half is kept, the soft limit is the hard"},
        {0, 256, 128, 256, false, "0 with a hard limit under the reserve: half"},
        {60000, big, 60000, 60000 + r, false, "RLIM_INFINITY and the like: the asked cap"},
        {0, big, ((uint64_t)1 << 30) - r, (uint64_t)1 << 30, false,
         "0 with no real limit: bounded, not 2^64"},
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(rows); i++) {
        struct tc_config cfg = config(rows[i].want, 1024, 4);
        struct tc_fd_budget b;
        tc_config_fd_budget(&cfg, rows[i].hard, &b);
        if (b.reserve != r || b.cap != rows[i].cap || b.soft != rows[i].soft ||
            b.lowered != rows[i].lowered) {
            fail_msg("%s: cap %llu soft %llu lowered %d, want %llu %llu %d", rows[i].rule,
                     (unsigned long long)b.cap, (unsigned long long)b.soft, b.lowered,
                     (unsigned long long)rows[i].cap, (unsigned long long)rows[i].soft,
                     rows[i].lowered);
        }
        /* Clients and the reserve fit under a hard limit of at least
         * twice the reserve (below, clients get half: see config.c). */
        if (rows[i].hard >= 2 * r && rows[i].hard < big) {
            assert_true(b.cap + b.reserve <= rows[i].hard);
        }
        assert_true(b.soft <= rows[i].hard);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_follows_the_pools),
        cmocka_unit_test(test_cap_and_soft_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
