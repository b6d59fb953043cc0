/* tocsin — SPDX-License-Identifier: MIT
 *
 * The webhook address guard: classifies the address curl is about to connect
 * to (after DNS, from CURLOPT_OPENSOCKETFUNCTION) and says whether delivery
 * may go there. Pure: no sockets, no DNS, no configuration lookups.
 */
#ifndef TC_WEBHOOK_GUARD_H
#define TC_WEBHOOK_GUARD_H

#include <stdbool.h>

struct sockaddr;

enum tc_addr_class {
    TC_ADDR_PUBLIC,
    TC_ADDR_LOOPBACK,
    TC_ADDR_PRIVATE,
    TC_ADDR_LINK_LOCAL,
    TC_ADDR_CGNAT,
    TC_ADDR_MULTICAST,
    TC_ADDR_METADATA,
    TC_ADDR_UNSPECIFIED,
    TC_ADDR_RESERVED,
};

/* Lower-case name for logs and metrics labels ("loopback"); never NULL. */
const char *tc_addr_class_name(enum tc_addr_class cls);

/* Classifies an AF_INET or AF_INET6 address. IPv6 forms that embed an IPv4
 * address (mapped, compatible, NAT64, 6to4) are classified by the embedded
 * address; Teredo, documentation and non-unicast space are RESERVED. Any other
 * family, or NULL, is RESERVED. @borrows sa. */
enum tc_addr_class tc_addr_classify(const struct sockaddr *sa);

/* True when delivery to sa is allowed: PUBLIC always; loopback, private,
 * link-local, CGNAT and metadata only when allow_private is set; unspecified,
 * multicast and reserved never. */
bool tc_addr_allowed(const struct sockaddr *sa, bool allow_private);

#endif
