/* tocsin — SPDX-License-Identifier: MIT
 *
 * Fuzz target: the webhook address guard (webhook/guard.h) on arbitrary
 * socket address bytes, as curl's open-socket callback hands them over. The
 * first byte picks the shape: raw bytes as a sockaddr, or an AF_INET /
 * AF_INET6 address from the next bytes. Invariants: allowed() follows the
 * class exactly as guard.h states; an IPv6 form that embeds an IPv4 address
 * (mapped, compatible, NAT64, 6to4) is never more allowed than that IPv4
 * address; well-known private IPv4 space is never public.
 */
#include "fuzz.h"
#include "webhook/guard.h"

#include <stdbool.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static enum tc_addr_class
classify_v4(const uint8_t a[4])
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    memcpy(&sin.sin_addr, a, 4);
    return tc_addr_classify((const struct sockaddr *)&sin);
}

static bool
nonzero(const uint8_t a[4])
{
    return (a[0] | a[1] | a[2] | a[3]) != 0;
}

/* Space no webhook may reach without allow_private, by first octets. */
static bool
obviously_private_v4(const uint8_t a[4])
{
    return a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 || (a[0] == 169 && a[1] == 254) ||
           (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
           (a[0] == 100 && (a[1] & 0xc0) == 64);
}

static void
check_rules(const struct sockaddr *sa)
{
    enum tc_addr_class cls = tc_addr_classify(sa);
    bool strict = tc_addr_allowed(sa, false), lax = tc_addr_allowed(sa, true);

    FUZZ_CHECK(cls >= TC_ADDR_PUBLIC && cls <= TC_ADDR_RESERVED);
    FUZZ_CHECK(strcmp(tc_addr_class_name(cls), "unknown") != 0);
    FUZZ_CHECK(strict == (cls == TC_ADDR_PUBLIC));
    FUZZ_CHECK(lax ==
               (cls != TC_ADDR_UNSPECIFIED && cls != TC_ADDR_MULTICAST && cls != TC_ADDR_RESERVED));
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
        FUZZ_CHECK(cls == TC_ADDR_RESERVED);
    }
}

static void
check_v4(const uint8_t a[4])
{
    if (obviously_private_v4(a)) {
        FUZZ_CHECKF(classify_v4(a) != TC_ADDR_PUBLIC, "%u.%u.%u.%u is public", a[0], a[1], a[2],
                    a[3]);
    }
}

/* An embedded IPv4 address makes the IPv6 one at most as allowed. */
static void
check_embedded(enum tc_addr_class v6, const uint8_t v4[4], const char *form)
{
    enum tc_addr_class inner = classify_v4(v4);
    FUZZ_CHECKF(inner == TC_ADDR_PUBLIC || v6 != TC_ADDR_PUBLIC, "%s of %u.%u.%u.%u (%s) is public",
                form, v4[0], v4[1], v4[2], v4[3], tc_addr_class_name(inner));
}

static void
check_v6(const uint8_t b[16])
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    static const uint8_t zero[12] = {0};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b};
    static const uint8_t nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
    struct sockaddr_in6 sin6;

    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    memcpy(&sin6.sin6_addr, b, 16);
    enum tc_addr_class cls = tc_addr_classify((const struct sockaddr *)&sin6);
    check_rules((const struct sockaddr *)&sin6);

    if (memcmp(b, mapped, 12) == 0) {
        /* ::ffff:a.b.c.d connects to a.b.c.d itself: same class. */
        FUZZ_CHECK(cls == classify_v4(b + 12));
    }
    if (memcmp(b, zero, 12) == 0 && (b[12] | b[13] | b[14]) != 0) {
        FUZZ_CHECK(cls == classify_v4(b + 12)); /* compatible, not :: or ::1 */
    }
    if (memcmp(b, nat64, 12) == 0) {
        check_embedded(cls, b + 12, "64:ff9b::/96");
    }
    if (memcmp(b, nat64_local, 6) == 0) {
        const uint8_t mid[4] = {b[6], b[7], b[9], b[10]};
        if (nonzero(b + 12)) {
            check_embedded(cls, b + 12, "64:ff9b:1::/96");
        }
        if (nonzero(mid)) {
            check_embedded(cls, mid, "64:ff9b:1::/48");
        }
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        check_embedded(cls, b + 2, "6to4");
    }
    /* Link-local, unique local and multicast are never public; :: and ::1
     * are themselves, not IPv4-compatible 0.0.0.0 and 0.0.0.1. */
    if ((b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || (b[0] & 0xfe) == 0xfc || b[0] == 0xff) {
        FUZZ_CHECK(cls != TC_ADDR_PUBLIC);
    }
    if (memcmp(b, zero, 12) == 0 && (b[12] | b[13] | b[14]) == 0 && b[15] <= 1) {
        FUZZ_CHECK(cls == (b[15] == 0 ? TC_ADDR_UNSPECIFIED : TC_ADDR_LOOPBACK));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_storage ss;

    if (size == 0) {
        return 0;
    }
    memset(&ss, 0, sizeof(ss));
    switch (data[0] % 3) {
    case 0:
        /* Any bytes: family and all. sockaddr_storage is as large as any. */
        memcpy(&ss, data + 1, size - 1 < sizeof(ss) ? size - 1 : sizeof(ss));
        check_rules((const struct sockaddr *)&ss);
        break;
    case 1: {
        uint8_t a[4] = {0};
        memcpy(a, data + 1, size - 1 < 4 ? size - 1 : 4);
        check_v4(a);
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, a, 4);
        check_rules((const struct sockaddr *)&sin);
        /* Each of its IPv6 disguises. */
        uint8_t b[16] = {[10] = 0xff, [11] = 0xff};
        memcpy(b + 12, a, 4);
        check_v6(b);
        memset(b, 0, 12);
        check_v6(b);
        memcpy(b, (const uint8_t[4]){0x00, 0x64, 0xff, 0x9b}, 4);
        check_v6(b);
        memset(b, 0, 16);
        b[0] = 0x20;
        b[1] = 0x02;
        memcpy(b + 2, a, 4);
        check_v6(b);
        break;
    }
    default: {
        uint8_t b[16] = {0};
        memcpy(b, data + 1, size - 1 < 16 ? size - 1 : 16);
        check_v6(b);
        break;
    }
    }
    return 0;
}
