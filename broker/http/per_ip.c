/* tocsin — SPDX-License-Identifier: MIT
 *
 * Per-address connection counts for http.max_pending_per_ip and
 * http.max_connections_per_ip, and the process total for its cap
 * (http.max_connections within the fd limit): a hash table keyed by the client's IP
 * address bytes, one entry per address with an open connection, removed at
 * zero, so it never holds more entries than there are connections; and
 * the lws callbacks that refuse, count and release connections with it
 * (server.c's protocol callback hands them over). The table itself does no
 * I/O, for the unit tests. @loop main.
 */
#include "http/http_internal.h"
#include "log/log.h"
#include "metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct entry {
    struct entry *next; /* in its bucket */
    struct tc_http__per_ip *table;
    struct tc_http__addr addr;
    int64_t open, pending;
    uint64_t warned_ms; /* the last refusal logged */
    uint64_t unlogged;  /* refusals since then */
};

/* One connection's share of its address (lws's opaque user data). */
struct tc_http__per_ip_conn {
    struct entry *e;
    bool pending;
};

struct tc_http__per_ip {
    int64_t max_pending, max_open;
    uint64_t max_total;       /* connections of the process; 0 = no cap */
    uint64_t total_warned_ms; /* the last refusal at max_total logged */
    uint64_t total_unlogged;  /* refusals at max_total since then */
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t nentries;
    size_t nconns;
    uint64_t seed;
    bool orphaned; /* the server is gone: the last close frees the table */
};

#define BUCKETS_MIN 64

int
tc_http__addr_of_fd(int fd, struct tc_http__addr *addr)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(addr, 0, sizeof(*addr));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        return TC_EIO;
    }
    if (ss.ss_family == AF_INET) {
        /* As its IPv4-mapped IPv6 form, so one address has one key whether
         * it came over an IPv4 or a dual-stack listener. */
        addr->b[10] = addr->b[11] = 0xff;
        memcpy(addr->b + 12, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return TC_OK;
    }
    if (ss.ss_family == AF_INET6) {
        memcpy(addr->b, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        return TC_OK;
    }
    return TC_EINVAL; /* not an IP socket: no per-address limit applies */
}

void
tc_http__addr_text(const struct tc_http__addr *addr, char *buf, size_t len)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(addr->b, v4mapped, sizeof(v4mapped)) == 0) {
        inet_ntop(AF_INET, addr->b + 12, buf, (socklen_t)len);
    } else {
        inet_ntop(AF_INET6, addr->b, buf, (socklen_t)len);
    }
}

struct tc_http__per_ip *
tc_http__per_ip_new(int64_t max_pending, int64_t max_open, uint64_t max_total)
{
    struct tc_http__per_ip *t = tc_xcalloc(1, sizeof(*t));
    t->max_pending = max_pending;
    t->max_open = max_open;
    t->max_total = max_total;
    t->nbuckets = BUCKETS_MIN;
    t->buckets = tc_xcalloc(t->nbuckets, sizeof(*t->buckets));
    /* A secret seed: a client choosing its addresses (an IPv6 /64 has
     * plenty) cannot aim them all at one bucket. Without randomness the
     * table still works, only less evenly under such an attack. */
    if (tc_random_bytes(&t->seed, sizeof(t->seed)) != TC_OK) {
        t->seed = (uint64_t)(uintptr_t)t ^ tc_now_ms();
    }
    return t;
}

static void
table_free(struct tc_http__per_ip *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct entry *e = t->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(t->buckets);
    free(t);
}

void
tc_http__per_ip_free(struct tc_http__per_ip *t)
{
    if (t == NULL) {
        return;
    }
    /* lws may destroy the last connections after the server is freed (on
     * libuv their handles close later): those still release their share. */
    if (t->nconns > 0) {
        t->orphaned = true;
        return;
    }
    table_free(t);
}

/* FNV-1a from a secret basis, then a 64-bit finalizer (splitmix64). */
static size_t
bucket_of(const struct tc_http__per_ip *t, const struct tc_http__addr *addr)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ t->seed;
    for (size_t i = 0; i < sizeof(addr->b); i++) {
        h = (h ^ addr->b[i]) * 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return (size_t)(h & (t->nbuckets - 1));
}

static struct entry **
find(struct tc_http__per_ip *t, const struct tc_http__addr *addr)
{
    struct entry **p = &t->buckets[bucket_of(t, addr)];
    while (*p != NULL && memcmp((*p)->addr.b, addr->b, sizeof(addr->b)) != 0) {
        p = &(*p)->next;
    }
    return p;
}

/* Doubles the buckets when entries outnumber them two to one: chains stay
 * short, and the table grows with the number of addresses connected at
 * once (it does not shrink: its peak is bounded by the connections). */
static void
grow(struct tc_http__per_ip *t)
{
    size_t old_n = t->nbuckets;
    struct entry **old = t->buckets;
    t->nbuckets = old_n * 2;
    t->buckets = tc_xcalloc(t->nbuckets, sizeof(*t->buckets));
    for (size_t i = 0; i < old_n; i++) {
        for (struct entry *e = old[i], *next; e != NULL; e = next) {
            next = e->next;
            struct entry **head = &t->buckets[bucket_of(t, &e->addr)];
            e->next = *head;
            *head = e;
        }
    }
    free(old);
}

/* A refusing client may retry in a tight loop: one line a second, saying
 * how many were refused, rather than one per connection. @returns the
 * refusals to report now, or 0. */
static uint64_t
refusal(uint64_t *warned_ms, uint64_t *unlogged, uint64_t now_ms)
{
    (*unlogged)++;
    if (*warned_ms != 0 && now_ms - *warned_ms < 1000) {
        return 0;
    }
    uint64_t n = *unlogged;
    *unlogged = 0;
    *warned_ms = now_ms;
    return n;
}

enum tc_http__per_ip_verdict
tc_http__per_ip_admit(struct tc_http__per_ip *t, const struct tc_http__addr *addr, uint64_t now_ms,
                      uint64_t *log_refused)
{
    *log_refused = 0;
    /* First, so a flood from many addresses cannot take the process past
     * its fd budget, whatever each address's share. */
    if (t->max_total > 0 && t->nconns >= t->max_total) {
        *log_refused = refusal(&t->total_warned_ms, &t->total_unlogged, now_ms);
        return TC_PER_IP_OVER_TOTAL;
    }
    struct entry *e = *find(t, addr);
    enum tc_http__per_ip_verdict v = TC_PER_IP_ADMIT;
    if (e == NULL) {
        return v; /* nothing open from there yet; every limit is at least 1 */
    }
    if (t->max_open > 0 && e->open >= t->max_open) {
        v = TC_PER_IP_OVER_OPEN;
    } else if (t->max_pending > 0 && e->pending >= t->max_pending) {
        v = TC_PER_IP_OVER_PENDING;
    } else {
        return v;
    }
    *log_refused = refusal(&e->warned_ms, &e->unlogged, now_ms);
    return v;
}

struct tc_http__per_ip_conn *
tc_http__per_ip_open(struct tc_http__per_ip *t, const struct tc_http__addr *addr)
{
    struct entry **p = find(t, addr);
    if (*p == NULL) {
        struct entry *e = tc_xcalloc(1, sizeof(*e));
        e->table = t;
        e->addr = *addr;
        *p = e;
        if (++t->nentries > 2 * t->nbuckets) {
            grow(t);
        }
        p = find(t, addr);
    }
    struct tc_http__per_ip_conn *c = tc_xmalloc(sizeof(*c));
    c->e = *p;
    c->pending = true;
    c->e->open++;
    c->e->pending++;
    t->nconns++;
    return c;
}

void
tc_http__per_ip_established(struct tc_http__per_ip_conn *c)
{
    if (c != NULL && c->pending) {
        c->pending = false;
        c->e->pending--;
    }
}

void
tc_http__per_ip_close(struct tc_http__per_ip_conn *c)
{
    if (c == NULL) {
        return;
    }
    struct entry *e = c->e;
    struct tc_http__per_ip *t = e->table;
    tc_http__per_ip_established(c);
    free(c);
    t->nconns--;
    if (--e->open == 0) {
        struct entry **p = find(t, &e->addr);
        *p = e->next;
        free(e);
        t->nentries--;
    }
    if (t->orphaned && t->nconns == 0) {
        table_free(t);
    }
}

void
tc_http__per_ip_counts(struct tc_http__per_ip *t, const struct tc_http__addr *addr, int64_t *open,
                       int64_t *pending)
{
    struct entry *e = *find(t, addr);
    *open = e ? e->open : 0;
    *pending = e ? e->pending : 0;
}

size_t
tc_http__per_ip_addresses(const struct tc_http__per_ip *t)
{
    return t->nentries;
}

size_t
tc_http__per_ip_total(const struct tc_http__per_ip *t)
{
    return t->nconns;
}

/* The table at the three points lws 4.1.6 gives, all on protocols[0]:
 * FILTER_NETWORK_CONNECTION has the accepted socket in `in` (no wsi of its
 * own yet: wsi is the listener, user NULL) and refuses;
 * SERVER_NEW_CLIENT_INSTANTIATED counts the new wsi; WSI_DESTROY, the last
 * word on every wsi whatever its protocol by then (user is that protocol's
 * data: not ours), releases it. Counting at instantiation rather than at
 * the filter keeps the books balanced: a socket lws drops in between never
 * gets a wsi to destroy. The share rides on the wsi's opaque user data,
 * and releasing needs nothing else (the server may be gone). */
int
tc_http__per_ip_callback(struct lws *wsi, enum lws_callback_reasons reason, void *in)
{
    if (reason == LWS_CALLBACK_WSI_DESTROY) {
        struct tc_http__per_ip_conn *share = lws_get_opaque_user_data(wsi);
        if (share != NULL) {
            tc_http__per_ip_close(share);
            lws_set_opaque_user_data(wsi, NULL);
            tc_metrics_gauge_add(TC_G_HTTP_CONNECTIONS, -1);
        }
        return 0;
    }
    struct tc_server *srv = lws_context_user(lws_get_context(wsi));
    if (reason == LWS_CALLBACK_FILTER_NETWORK_CONNECTION) {
        return tc_http__per_ip_filter(srv, (int)(intptr_t)in);
    }
    struct tc_http__addr addr;
    int rc = tc_http__addr_of_fd((int)lws_get_socket_fd(wsi), &addr);
    if (srv == NULL || srv->per_ip == NULL || rc != TC_OK) {
        return 0; /* not an IP socket, or the peer is gone: lws closes it at its first read */
    }
    lws_set_opaque_user_data(wsi, tc_http__per_ip_open(srv->per_ip, &addr));
    tc_metrics_gauge_add(TC_G_HTTP_CONNECTIONS, 1);
    return 0;
}

int
tc_http__per_ip_filter(struct tc_server *srv, int fd)
{
    struct tc_http__addr addr;
    int rc = tc_http__addr_of_fd(fd, &addr);
    if (srv == NULL || srv->per_ip == NULL || rc == TC_EINVAL) {
        return 0; /* not an IP socket: no limit applies */
    }
    if (rc != TC_OK) {
        /* getpeername failed: the peer is gone already. Refused, it cannot
         * slip past the caps uncounted. */
        return 1;
    }
    uint64_t report;
    enum tc_http__per_ip_verdict v =
        tc_http__per_ip_admit(srv->per_ip, &addr, tc_now_ms(), &report);
    if (v == TC_PER_IP_ADMIT) {
        return 0;
    }
    if (v == TC_PER_IP_OVER_TOTAL) {
        /* Refused once accepted: the listener is drained, not left
         * readable as it would be were accept to fail with EMFILE. */
        tc_metrics_inc(TC_M_HTTP_REFUSED_MAX_CONN);
        if (report > 0) {
            tc_warn("http", "over http.max_connections: connections closed at accept",
                    TC_U("max_connections", srv->per_ip->max_total), TC_U("refused", report));
        }
        return 1;
    }
    tc_metrics_inc(TC_M_HTTP_REFUSED_PER_IP);
    if (report > 0) {
        char text[INET6_ADDRSTRLEN];
        tc_http__addr_text(&addr, text, sizeof(text));
        tc_warn("http",
                v == TC_PER_IP_OVER_PENDING
                    ? "over http.max_pending_per_ip: connections closed"
                    : "over http.max_connections_per_ip: connections closed",
                TC_S("addr", text), TC_U("refused", report));
    }
    return 1; /* the caller closes the socket */
}
