/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/webhook/guard: a table of IPv4 and IPv6 addresses
 * covering every refused range and its boundaries, the IPv6 forms that embed
 * an IPv4 address (mapped, compatible, NAT64, 6to4), and the allow_private
 * switch. Nothing here opens a socket.
 */
#include "util/util.h"
#include "webhook/guard.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

struct addr_case {
    const char *addr;
    enum tc_addr_class cls;
};

#define PUB  TC_ADDR_PUBLIC
#define LOOP TC_ADDR_LOOPBACK
#define PRIV TC_ADDR_PRIVATE
#define LINK TC_ADDR_LINK_LOCAL
#define CGN  TC_ADDR_CGNAT
#define MC   TC_ADDR_MULTICAST
#define META TC_ADDR_METADATA
#define UNSP TC_ADDR_UNSPECIFIED
#define RES  TC_ADDR_RESERVED

/* clang-format off */
static const struct addr_case cases[] = {
    /* IPv4 public, including neighbours of every refused range. */
    {"1.1.1.1", PUB},
    {"8.8.8.8", PUB},
    {"93.184.216.34", PUB},
    {"1.0.0.0", PUB},
    {"9.255.255.255", PUB},
    {"11.0.0.0", PUB},
    {"100.63.255.255", PUB},
    {"100.128.0.0", PUB},
    {"126.255.255.255", PUB},
    {"128.0.0.0", PUB},
    {"169.253.255.255", PUB},
    {"169.255.0.0", PUB},
    {"172.15.255.255", PUB},
    {"172.32.0.0", PUB},
    {"192.0.1.0", PUB},
    {"192.0.3.0", PUB},
    {"192.167.255.255", PUB},
    {"192.169.0.0", PUB},
    {"198.17.255.255", PUB},
    {"198.20.0.0", PUB},
    {"198.51.99.255", PUB},
    {"198.51.101.0", PUB},
    {"203.0.112.255", PUB},
    {"203.0.114.0", PUB},
    {"223.255.255.255", PUB},
    /* IPv4 refused ranges, first and last address where it matters. */
    {"0.0.0.0", UNSP},
    {"0.0.0.1", RES},
    {"0.255.255.255", RES},
    {"10.0.0.0", PRIV},
    {"10.255.255.255", PRIV},
    {"100.64.0.0", CGN},
    {"100.127.255.255", CGN},
    {"127.0.0.1", LOOP},
    {"127.0.0.0", LOOP},
    {"127.255.255.255", LOOP},
    {"169.254.0.0", LINK},
    {"169.254.169.253", LINK},
    {"169.254.169.254", META},
    {"169.254.169.255", LINK},
    {"169.254.255.255", LINK},
    {"172.16.0.0", PRIV},
    {"172.31.255.255", PRIV},
    {"192.0.0.0", RES},
    {"192.0.0.255", RES},
    {"192.0.2.1", RES},
    {"192.168.0.0", PRIV},
    {"192.168.255.255", PRIV},
    {"198.18.0.0", PRIV},
    {"198.19.255.255", PRIV},
    {"198.51.100.7", RES},
    {"203.0.113.255", RES},
    {"224.0.0.0", MC},
    {"224.0.0.251", MC},
    {"239.255.255.255", MC},
    {"240.0.0.0", RES},
    {"254.255.255.255", RES},
    {"255.255.255.255", RES},
    /* IPv6 native. */
    {"::", UNSP},
    {"::1", LOOP},
    {"::2", RES},                 /* IPv4-compatible 0.0.0.2 */
    {"fe80::1", LINK},
    {"febf:ffff::1", LINK},
    {"fec0::1", PRIV},
    {"fc00::1", PRIV},
    {"fdff:ffff::1", PRIV},
    {"fd00:ec2::254", META},
    {"fd00:ec2::253", PRIV},
    {"fbff:ffff::1", RES},        /* outside 2000::/3, just below fc00::/7 */
    {"ff02::1", MC},
    {"ff0e::101", MC},
    {"2001:db8::1", RES},
    {"2001:db8:ffff:ffff::1", RES},
    {"2001:db9::1", PUB},
    {"2001:0:4136:e378:8000:63bf:3fff:fdd2", RES}, /* Teredo */
    {"2001:1::1", PUB},
    {"2606:4700:4700::1111", PUB},
    {"2a00:1450:4001:80b::200e", PUB},
    {"3fff:ffff::1", PUB},
    {"4000::1", RES},
    {"100::1", RES},
    {"1fff::1", RES},
    /* IPv4-mapped. */
    {"::ffff:127.0.0.1", LOOP},
    {"::ffff:10.1.2.3", PRIV},
    {"::ffff:192.168.1.1", PRIV},
    {"::ffff:169.254.169.254", META},
    {"::ffff:100.64.0.1", CGN},
    {"::ffff:0.0.0.0", UNSP},
    {"::ffff:224.0.0.1", MC},
    {"::ffff:8.8.8.8", PUB},
    /* IPv4-compatible (deprecated). */
    {"::127.0.0.1", LOOP},
    {"::10.0.0.1", PRIV},
    {"::8.8.8.8", PUB},
    /* NAT64 well-known prefix and local-use prefix. */
    {"64:ff9b::127.0.0.1", LOOP},
    {"64:ff9b::10.0.0.1", PRIV},
    {"64:ff9b::169.254.169.254", META},
    {"64:ff9b::8.8.8.8", PUB},
    {"64:ff9b:1::127.0.0.1", LOOP},      /* /96 layout */
    {"64:ff9b:1::192.168.0.1", PRIV},
    {"64:ff9b:1:7f00:1::", LOOP},        /* RFC 6052 /48 layout of 127.0.0.1 */
    {"64:ff9b:1::8.8.8.8", PUB},
    {"64:ff9b:1:808:8:800::", PUB},      /* /48 layout of 8.8.8.8 */
    {"64:ff9b:1:a00:1:100::", PRIV},     /* /48 layout of 10.0.1.1 */
    {"64:ff9b:1:a00:0:1:808:808", PRIV}, /* /48 reads 10.0.0.0, /96 reads 8.8.8.8 */
    {"64:ff9b:2::8.8.8.8", RES},         /* outside both NAT64 prefixes */
    /* 6to4: the IPv4 address is bits 16-48. */
    {"2002:7f00:1::1", LOOP},
    {"2002:a00:1::", PRIV},
    {"2002:c0a8:101::1", PRIV},
    {"2002:a9fe:a9fe::1", META},
    {"2002:6440:1::1", CGN},
    {"2002:808:808::1", PUB},
};
/* clang-format on */

static socklen_t
parse_addr(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(443);
        return sizeof(*sin);
    }
    if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(443);
        return sizeof(*sin6);
    }
    fail_msg("test table: %s is not an address", text);
    return 0;
}

static void
test_table(void **state)
{
    size_t v4 = 0, v6 = 0;
    (void)state;

    for (size_t i = 0; i < TC_ARRAY_SIZE(cases); i++) {
        struct sockaddr_storage ss;
        const struct sockaddr *sa = (const struct sockaddr *)&ss;
        parse_addr(cases[i].addr, &ss);
        ss.ss_family == AF_INET ? v4++ : v6++;

        enum tc_addr_class got = tc_addr_classify(sa);
        if (got != cases[i].cls) {
            fail_msg("%s: want %s, got %s", cases[i].addr, tc_addr_class_name(cases[i].cls),
                     tc_addr_class_name(got));
        }

        bool pub = cases[i].cls == TC_ADDR_PUBLIC;
        bool never = cases[i].cls == TC_ADDR_UNSPECIFIED || cases[i].cls == TC_ADDR_RESERVED ||
                     cases[i].cls == TC_ADDR_MULTICAST;
        if (tc_addr_allowed(sa, false) != pub) {
            fail_msg("%s: allowed(allow_private=false) should be %d", cases[i].addr, pub);
        }
        if (tc_addr_allowed(sa, true) != !never) {
            fail_msg("%s: allowed(allow_private=true) should be %d", cases[i].addr, !never);
        }
    }
    assert_true(v4 >= 40);
    assert_true(v6 >= 40);
}

static void
test_allowed_by_class(void **state)
{
    struct sockaddr_storage ss;
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    (void)state;

    /* The e2e test relies on loopback passing only with allow_private. */
    parse_addr("127.0.0.1", &ss);
    assert_false(tc_addr_allowed(sa, false));
    assert_true(tc_addr_allowed(sa, true));
    parse_addr("::1", &ss);
    assert_false(tc_addr_allowed(sa, false));
    assert_true(tc_addr_allowed(sa, true));
    parse_addr("169.254.169.254", &ss);
    assert_false(tc_addr_allowed(sa, false));
    assert_true(tc_addr_allowed(sa, true));
    parse_addr("0.0.0.0", &ss);
    assert_false(tc_addr_allowed(sa, true));
    parse_addr("ff02::1", &ss);
    assert_false(tc_addr_allowed(sa, true));
    parse_addr("8.8.8.8", &ss);
    assert_true(tc_addr_allowed(sa, false));
}

static void
test_other_families(void **state)
{
    struct sockaddr_un sun;
    (void)state;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    assert_int_equal(tc_addr_classify((const struct sockaddr *)&sun), TC_ADDR_RESERVED);
    assert_false(tc_addr_allowed((const struct sockaddr *)&sun, true));
    assert_int_equal(tc_addr_classify(NULL), TC_ADDR_RESERVED);
    assert_false(tc_addr_allowed(NULL, true));
}

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(tc_addr_class_name(TC_ADDR_PUBLIC), "public");
    assert_string_equal(tc_addr_class_name(TC_ADDR_LOOPBACK), "loopback");
    assert_string_equal(tc_addr_class_name(TC_ADDR_METADATA), "metadata");
    assert_string_equal(tc_addr_class_name(TC_ADDR_RESERVED), "reserved");
    assert_string_equal(tc_addr_class_name((enum tc_addr_class)99), "unknown");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_allowed_by_class),
        cmocka_unit_test(test_other_families),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
