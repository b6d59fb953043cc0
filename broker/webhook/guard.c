/* tocsin — SPDX-License-Identifier: MIT
 *
 * Address classification for the webhook guard (see guard.h). Tables of
 * prefixes, most specific first; IPv6 forms that carry an IPv4 address are
 * unwrapped so ::ffff:127.0.0.1 or 64:ff9b::a00:1 cannot slip past the IPv4
 * rules. Owns no state; callable from any thread.
 */
#include "webhook/guard.h"

#include "util/util.h"

#include <stdint.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

struct v4_rule {
    uint32_t net;
    int len;
    enum tc_addr_class cls;
};

struct v6_rule {
    uint8_t net[16];
    int len;
    enum tc_addr_class cls;
};

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

/* First match wins, so a host rule sits before the network that holds it. */
static const struct v4_rule v4_rules[] = {
    {V4(0, 0, 0, 0), 32, TC_ADDR_UNSPECIFIED},
    /* "This network": Linux connects 0.x.y.z to the local host. */
    {V4(0, 0, 0, 0), 8, TC_ADDR_RESERVED},
    {V4(10, 0, 0, 0), 8, TC_ADDR_PRIVATE},
    {V4(100, 64, 0, 0), 10, TC_ADDR_CGNAT},
    {V4(127, 0, 0, 0), 8, TC_ADDR_LOOPBACK},
    {V4(169, 254, 169, 254), 32, TC_ADDR_METADATA},
    {V4(169, 254, 0, 0), 16, TC_ADDR_LINK_LOCAL},
    {V4(172, 16, 0, 0), 12, TC_ADDR_PRIVATE},
    {V4(192, 0, 0, 0), 24, TC_ADDR_RESERVED}, /* IETF protocol assignments */
    {V4(192, 0, 2, 0), 24, TC_ADDR_RESERVED}, /* TEST-NET-1 */
    {V4(192, 168, 0, 0), 16, TC_ADDR_PRIVATE},
    /* Benchmarking space, used on private networks (and by fake-IP DNS), so
     * it is private rather than reserved: allow_private can reach it. */
    {V4(198, 18, 0, 0), 15, TC_ADDR_PRIVATE},
    {V4(198, 51, 100, 0), 24, TC_ADDR_RESERVED}, /* TEST-NET-2 */
    {V4(203, 0, 113, 0), 24, TC_ADDR_RESERVED},  /* TEST-NET-3 */
    {V4(224, 0, 0, 0), 4, TC_ADDR_MULTICAST},
    {V4(255, 255, 255, 255), 32, TC_ADDR_RESERVED}, /* limited broadcast */
    {V4(240, 0, 0, 0), 4, TC_ADDR_RESERVED},
};

/* Rules for IPv6 space that does not embed an IPv4 address. */
static const struct v6_rule v6_rules[] = {
    {{0}, 128, TC_ADDR_UNSPECIFIED},
    {{[15] = 1}, 128, TC_ADDR_LOOPBACK},
    {{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54}, 128, TC_ADDR_METADATA}, /* fd00:ec2::254 */
    {{0xfe, 0x80}, 10, TC_ADDR_LINK_LOCAL},
    {{0xfe, 0xc0}, 10, TC_ADDR_PRIVATE}, /* deprecated site-local */
    {{0xfc}, 7, TC_ADDR_PRIVATE},        /* unique local */
    {{0xff}, 8, TC_ADDR_MULTICAST},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, TC_ADDR_RESERVED}, /* documentation */
    {{0x20, 0x01}, 32, TC_ADDR_RESERVED},             /* Teredo: tunnels to anywhere */
    {{0x01}, 64, TC_ADDR_RESERVED},                   /* 100::/64 discard-only */
};

static const uint8_t v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
static const uint8_t v4_compat[12] = {0};
static const uint8_t nat64_wkp[12] = {0x00, 0x64, 0xff, 0x9b};
static const uint8_t nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};

static bool
prefix_match(const uint8_t *addr, const uint8_t *net, int len)
{
    int full = len / 8, rest = len % 8;

    if (memcmp(addr, net, (size_t)full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (addr[full] & mask) == (net[full] & mask);
}

static uint32_t
load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static enum tc_addr_class
classify_v4(uint32_t a)
{
    for (size_t i = 0; i < TC_ARRAY_SIZE(v4_rules); i++) {
        uint32_t mask = v4_rules[i].len == 0 ? 0 : UINT32_MAX << (32 - v4_rules[i].len);
        if ((a & mask) == v4_rules[i].net) {
            return v4_rules[i].cls;
        }
    }
    return TC_ADDR_PUBLIC;
}

static enum tc_addr_class
classify_v6(const uint8_t b[16])
{
    /* :: and ::1 are themselves, not IPv4-compatible 0.0.0.0 and 0.0.0.1. */
    for (size_t i = 0; i < 2; i++) {
        if (prefix_match(b, v6_rules[i].net, v6_rules[i].len)) {
            return v6_rules[i].cls;
        }
    }
    if (memcmp(b, v4_mapped, 12) == 0 || memcmp(b, v4_compat, 12) == 0 ||
        memcmp(b, nat64_wkp, 12) == 0) {
        return classify_v4(load_be32(b + 12));
    }
    if (memcmp(b, nat64_local, 6) == 0) {
        /* 64:ff9b:1::/48 may be cut into /96 translators (IPv4 in the last 32
         * bits) or used whole (RFC 6052 /48: bits 48-63 and 72-87, zero
         * suffix). When both readings hold an address, both must be public. */
        uint8_t v4[4] = {b[6], b[7], b[9], b[10]};
        uint32_t low = load_be32(b + 12), mid = load_be32(v4);
        enum tc_addr_class cls = classify_v4(low != 0 ? low : mid);
        return cls != TC_ADDR_PUBLIC || low == 0 || mid == 0 ? cls : classify_v4(mid);
    }
    if (b[0] == 0x20 && b[1] == 0x02) {
        return classify_v4(load_be32(b + 2)); /* 6to4 2002:AABB:CCDD::/48 */
    }
    for (size_t i = 2; i < TC_ARRAY_SIZE(v6_rules); i++) {
        if (prefix_match(b, v6_rules[i].net, v6_rules[i].len)) {
            return v6_rules[i].cls;
        }
    }
    /* Only 2000::/3 is allocated for global unicast; the rest is not a place
     * a webhook can legitimately live. */
    if ((b[0] & 0xe0) != 0x20) {
        return TC_ADDR_RESERVED;
    }
    return TC_ADDR_PUBLIC;
}

const char *
tc_addr_class_name(enum tc_addr_class cls)
{
    switch (cls) {
    case TC_ADDR_PUBLIC:
        return "public";
    case TC_ADDR_LOOPBACK:
        return "loopback";
    case TC_ADDR_PRIVATE:
        return "private";
    case TC_ADDR_LINK_LOCAL:
        return "link_local";
    case TC_ADDR_CGNAT:
        return "cgnat";
    case TC_ADDR_MULTICAST:
        return "multicast";
    case TC_ADDR_METADATA:
        return "metadata";
    case TC_ADDR_UNSPECIFIED:
        return "unspecified";
    case TC_ADDR_RESERVED:
        return "reserved";
    }
    return "unknown";
}

enum tc_addr_class
tc_addr_classify(const struct sockaddr *sa)
{
    if (sa == NULL) {
        return TC_ADDR_RESERVED;
    }
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin)); /* sa may be a less-aligned buffer */
        return classify_v4(ntohl(sin.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        return classify_v6(sin6.sin6_addr.s6_addr);
    }
    return TC_ADDR_RESERVED;
}

bool
tc_addr_allowed(const struct sockaddr *sa, bool allow_private)
{
    switch (tc_addr_classify(sa)) {
    case TC_ADDR_PUBLIC:
        return true;
    case TC_ADDR_LOOPBACK:
    case TC_ADDR_PRIVATE:
    case TC_ADDR_LINK_LOCAL:
    case TC_ADDR_CGNAT:
    case TC_ADDR_METADATA:
        return allow_private;
    case TC_ADDR_MULTICAST:
    case TC_ADDR_UNSPECIFIED:
    case TC_ADDR_RESERVED:
        return false;
    }
    return false;
}
