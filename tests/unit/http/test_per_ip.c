/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/http/per_ip.c without a server: each cap exactly at
 * its bound and one past it, 0 as no limit, pending handed back when a head
 * is whole, addresses independent (IPv4 and IPv6 keys), entries removed at
 * zero after thousands of addresses came and went (the table grew on the
 * way), one log report a second per refusing address, a table outliving its
 * server, and addresses read from real sockets.
 */
#include "http/http_internal.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "socket_fixture.h"

static struct tc_http__addr
v4(uint32_t host_order)
{
    struct tc_http__addr a;
    memset(&a, 0, sizeof(a));
    a.b[10] = a.b[11] = 0xff;
    uint32_t n = htonl(host_order);
    memcpy(a.b + 12, &n, 4);
    return a;
}

static struct tc_http__addr
v6(const char *text)
{
    struct tc_http__addr a;
    assert_int_equal(inet_pton(AF_INET6, text, a.b), 1);
    return a;
}

static enum tc_http__per_ip_verdict
admit(struct tc_http__per_ip *t, const struct tc_http__addr *a)
{
    uint64_t report;
    return tc_http__per_ip_admit(t, a, 1000000, &report);
}

/* Opens n connections from a, each admitted first. */
static void
open_n(struct tc_http__per_ip *t, const struct tc_http__addr *a, int n,
       struct tc_http__per_ip_conn **out)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(admit(t, a), TC_PER_IP_ADMIT);
        out[i] = tc_http__per_ip_open(t, a);
    }
}

static void
close_n(struct tc_http__per_ip_conn **c, int n)
{
    for (int i = 0; i < n; i++) {
        tc_http__per_ip_close(c[i]);
    }
}

static void
test_pending_cap(void **state)
{
    (void)state;
    struct tc_http__per_ip *t = tc_http__per_ip_new(3, 0, 0);
    struct tc_http__addr a = v4(0x7f000001), b = v4(0x7f000002);
    struct tc_http__per_ip_conn *c[6];
    open_n(t, &a, 3, c); /* exactly the cap */
    assert_int_equal(admit(t, &a), TC_PER_IP_OVER_PENDING);
    assert_int_equal(admit(t, &b), TC_PER_IP_ADMIT); /* another address */
    /* A whole head hands the pending place back; twice is once. */
    tc_http__per_ip_established(c[0]);
    tc_http__per_ip_established(c[0]);
    int64_t open, pending;
    tc_http__per_ip_counts(t, &a, &open, &pending);
    assert_int_equal(open, 3);
    assert_int_equal(pending, 2);
    open_n(t, &a, 1, c + 3);
    assert_int_equal(admit(t, &a), TC_PER_IP_OVER_PENDING);
    /* 0 is no limit on the total. */
    for (int i = 1; i < 4; i++) {
        tc_http__per_ip_established(c[i]);
    }
    open_n(t, &a, 2, c + 4);
    tc_http__per_ip_counts(t, &a, &open, &pending);
    assert_int_equal(open, 6);
    assert_int_equal(pending, 2);
    close_n(c, 6);
    assert_int_equal(tc_http__per_ip_addresses(t), 0);
    tc_http__per_ip_free(t);
}

static void
test_open_cap_counts_established(void **state)
{
    (void)state;
    struct tc_http__per_ip *t = tc_http__per_ip_new(0, 4, 0);
    struct tc_http__addr a = v6("2001:db8::1"), same_64 = v6("2001:db8::2");
    struct tc_http__per_ip_conn *c[4];
    open_n(t, &a, 4, c);
    for (int i = 0; i < 4; i++) {
        tc_http__per_ip_established(c[i]); /* sessions count as much as pending ones */
    }
    assert_int_equal(admit(t, &a), TC_PER_IP_OVER_OPEN);
    assert_int_equal(admit(t, &same_64), TC_PER_IP_ADMIT); /* the whole address is the key */
    tc_http__per_ip_close(c[3]);
    assert_int_equal(admit(t, &a), TC_PER_IP_ADMIT); /* a close gives the place back */
    c[3] = tc_http__per_ip_open(t, &a);
    assert_int_equal(admit(t, &a), TC_PER_IP_OVER_OPEN);
    close_n(c, 4);
    tc_http__per_ip_free(t);
}

static void
test_v4_and_v6_keys_differ(void **state)
{
    (void)state;
    struct tc_http__per_ip *t = tc_http__per_ip_new(1, 0, 0);
    struct tc_http__addr a = v4(0x0a000001), mapped = v6("::ffff:10.0.0.1"),
                         compat = v6("::10.0.0.1");
    struct tc_http__per_ip_conn *c = tc_http__per_ip_open(t, &a);
    /* An IPv4 client over a dual-stack listener is the same address. */
    assert_int_equal(admit(t, &mapped), TC_PER_IP_OVER_PENDING);
    assert_int_equal(admit(t, &compat), TC_PER_IP_ADMIT);
    tc_http__per_ip_close(c);
    tc_http__per_ip_free(t);
}

/* Many addresses at once grow the table; all closed, it is empty. */
static void
test_entries_removed_at_zero(void **state)
{
    (void)state;
    enum { N = 5000 };
    struct tc_http__per_ip *t = tc_http__per_ip_new(2, 3, 0);
    struct tc_http__per_ip_conn **c = tc_xcalloc(2 * N, sizeof(*c));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            struct tc_http__addr a = v4(0x0a000000u + (uint32_t)i);
            open_n(t, &a, 2, c + 2 * i);
        }
        assert_int_equal(tc_http__per_ip_addresses(t), N);
        for (int i = 0; i < N; i++) {
            struct tc_http__addr a = v4(0x0a000000u + (uint32_t)i);
            assert_int_equal(admit(t, &a), TC_PER_IP_OVER_PENDING);
            tc_http__per_ip_established(c[2 * i]);
            assert_int_equal(admit(t, &a), TC_PER_IP_ADMIT);
        }
        /* Close in another order than opened. */
        for (int i = 2 * N - 1; i >= 0; i -= 2) {
            tc_http__per_ip_close(c[i]);
        }
        for (int i = 0; i < 2 * N; i += 2) {
            tc_http__per_ip_close(c[i]);
        }
        assert_int_equal(tc_http__per_ip_addresses(t), 0);
    }
    free(c);
    tc_http__per_ip_free(t);
}

static void
test_refusals_reported_once_a_second(void **state)
{
    (void)state;
    struct tc_http__per_ip *t = tc_http__per_ip_new(1, 0, 0);
    struct tc_http__addr a = v4(0xc0000201);
    struct tc_http__per_ip_conn *c = tc_http__per_ip_open(t, &a);
    uint64_t report;
    static const struct {
        uint64_t now_ms;
        uint64_t report;
        const char *rule;
    } rows[] = {
        {5000, 1, "the first refusal is reported"},
        {5001, 0, "then quiet"},
        {5999, 0, "quiet up to a second"},
        {6000, 3, "a second later: this and the two held back"},
        {6500, 0, "quiet again"},
        {9000, 2, "long after: the one held back and this"},
    };
    for (size_t i = 0; i < TC_ARRAY_SIZE(rows); i++) {
        assert_int_equal(tc_http__per_ip_admit(t, &a, rows[i].now_ms, &report),
                         TC_PER_IP_OVER_PENDING);
        if (report != rows[i].report) {
            fail_msg("%s: report %llu, want %llu", rows[i].rule, (unsigned long long)report,
                     (unsigned long long)rows[i].report);
        }
    }
    struct tc_http__addr other = v4(0xc0000202);
    assert_int_equal(tc_http__per_ip_admit(t, &other, 9001, &report), TC_PER_IP_ADMIT);
    assert_int_equal(report, 0);
    tc_http__per_ip_close(c);
    tc_http__per_ip_free(t);
}

/* The process's cap (http.max_connections) counts every address, comes
 * before the per-address limits, frees room as connections close, and is
 * reported once a second in all, not per address. */
static void
test_total_cap(void **state)
{
    (void)state;
    struct tc_http__per_ip *t = tc_http__per_ip_new(2, 0, 3);
    struct tc_http__addr a = v4(0xc0000201), b = v4(0xc0000202), c = v6("2001:db8::1");
    struct tc_http__per_ip_conn *conns[3];
    open_n(t, &a, 1, conns);
    open_n(t, &b, 1, conns + 1);
    open_n(t, &c, 1, conns + 2);
    assert_int_equal(tc_http__per_ip_total(t), 3);
    uint64_t report;
    struct tc_http__addr d = v4(0xc0000203);
    assert_int_equal(tc_http__per_ip_admit(t, &d, 5000, &report), TC_PER_IP_OVER_TOTAL);
    assert_int_equal(report, 1);
    /* Another address within the second: refused, held back. */
    assert_int_equal(tc_http__per_ip_admit(t, &a, 5200, &report), TC_PER_IP_OVER_TOTAL);
    assert_int_equal(report, 0);
    assert_int_equal(tc_http__per_ip_admit(t, &b, 6000, &report), TC_PER_IP_OVER_TOTAL);
    assert_int_equal(report, 2);
    /* A close makes room for exactly one. */
    tc_http__per_ip_close(conns[1]);
    assert_int_equal(tc_http__per_ip_total(t), 2);
    assert_int_equal(tc_http__per_ip_admit(t, &d, 6100, &report), TC_PER_IP_ADMIT);
    conns[1] = tc_http__per_ip_open(t, &d);
    assert_int_equal(tc_http__per_ip_admit(t, &d, 6200, &report), TC_PER_IP_OVER_TOTAL);
    close_n(conns, 3);
    assert_int_equal(tc_http__per_ip_total(t), 0);
    assert_int_equal(admit(t, &a), TC_PER_IP_ADMIT);
    tc_http__per_ip_free(t);
}

/* lws may destroy connections after the server freed the table: it is
 * freed by the last of them (ASan and LSan check both halves). */
static void
test_table_outlives_server(void **state)
{
    (void)state;
    struct tc_http__per_ip *t = tc_http__per_ip_new(8, 8, 0);
    struct tc_http__addr a = v4(0x7f000001), b = v6("::1");
    struct tc_http__per_ip_conn *c1 = tc_http__per_ip_open(t, &a);
    struct tc_http__per_ip_conn *c2 = tc_http__per_ip_open(t, &b);
    tc_http__per_ip_free(t);
    tc_http__per_ip_close(c1);
    tc_http__per_ip_close(c2);
    tc_http__per_ip_close(NULL);
    tc_http__per_ip_established(NULL);
    tc_http__per_ip_free(NULL);
}

static void
test_addr_of_fd(void **state)
{
    (void)state;
    struct tc_http__addr a;
    char text[INET6_ADDRSTRLEN];
    int afd, cfd;
    sock_tcp_pair(&afd, &cfd);
    assert_int_equal(tc_http__addr_of_fd(afd, &a), TC_OK);
    tc_http__addr_text(&a, text, sizeof(text));
    assert_string_equal(text, "127.0.0.1");
    struct tc_http__addr want = v4(0x7f000001);
    assert_memory_equal(a.b, want.b, sizeof(a.b));
    close(afd);
    close(cfd);

    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    assert_int_equal(tc_http__addr_of_fd(pair[0], &a), TC_EINVAL); /* no IP: no limit */
    close(pair[0]);
    close(pair[1]);
    assert_int_equal(tc_http__addr_of_fd(-1, &a), TC_EIO);

    struct tc_http__addr six = v6("2001:db8::7");
    tc_http__addr_text(&six, text, sizeof(text));
    assert_string_equal(text, "2001:db8::7");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_cap),
        cmocka_unit_test(test_open_cap_counts_established),
        cmocka_unit_test(test_v4_and_v6_keys_differ),
        cmocka_unit_test(test_entries_removed_at_zero),
        cmocka_unit_test(test_refusals_reported_once_a_second),
        cmocka_unit_test(test_total_cap),
        cmocka_unit_test(test_table_outlives_server),
        cmocka_unit_test(test_addr_of_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
