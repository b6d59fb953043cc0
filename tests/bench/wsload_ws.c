/* tocsin — SPDX-License-Identifier: MIT
 *
 * One tocsin-wsload session: non-blocking connect from a rotating source
 * address, the RFC 6455 handshake (101, accept key, subprotocol tocsin.v1 or,
 * for a raw peer, none), server frames (text, ping -> pong, close, fragments)
 * and the latency of every update from its incident.bench_ts_us. Runs on the
 * one epoll loop of wsload.c; it never sends data frames, only pong and close.
 */
#define _GNU_SOURCE /* memmem */
#include "wsload.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Nesting deeper than this is not a tocsin message: the scan gives up. */
#define JSON_MAX_DEPTH 32

/* ---- JSON scan: only what the benchmark needs, no allocation ---- */

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* p at the opening quote; returns the byte after the closing quote or NULL.
 * The raw contents (escapes not decoded) are [*s, *s + *n). memchr finds the
 * candidate quotes: most of an update is string bytes, and a byte-by-byte
 * walk of them was the generator's largest cost after the kernel's. */
static const char *
scan_string(const char *p, const char *end, const char **s, size_t *n)
{
    const char *q;

    if (p >= end || *p != '"') {
        return NULL;
    }
    for (q = p + 1; (q = memchr(q, '"', (size_t)(end - q))) != NULL; q++) {
        /* Escaped when an odd run of backslashes precedes it. */
        const char *b = q;
        while (b > p + 1 && b[-1] == '\\') {
            b--;
        }
        if ((q - b) % 2 == 0) {
            *s = p + 1;
            *n = (size_t)(q - p - 1);
            return q + 1;
        }
    }
    return NULL;
}

/* Called with each member's key and value start; returns the end of the
 * value (skip_value when it wants nothing from it) or NULL if malformed. */
typedef const char *(*member_fn)(void *arg, const char *k, size_t kn, const char *v,
                                 const char *end, int depth);

static const char *scan_object(const char *p, const char *end, member_fn on_member, void *arg,
                               int depth);

static const char *skip_member(void *arg, const char *k, size_t kn, const char *v, const char *end,
                               int depth);

static const char *
skip_value(const char *p, const char *end, int depth)
{
    const char *s;
    size_t n;

    p = skip_ws(p, end);
    if (p >= end || depth > JSON_MAX_DEPTH) {
        return NULL;
    }
    if (*p == '"') {
        return scan_string(p, end, &s, &n);
    }
    if (*p == '{') {
        return scan_object(p, end, skip_member, NULL, depth);
    }
    if (*p != '[') {
        /* number, true, false, null */
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
               *p != '\r' && *p != '\t') {
            p++;
        }
        return p;
    }
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') {
        return p + 1;
    }
    for (;;) {
        p = skip_value(p, end, depth + 1);
        p = p ? skip_ws(p, end) : NULL;
        if (p == NULL || p >= end) {
            return NULL;
        }
        if (*p == ']') {
            return p + 1;
        }
        if (*p != ',') {
            return NULL;
        }
        p++;
    }
}

static const char *
skip_member(void *arg, const char *k, size_t kn, const char *v, const char *end, int depth)
{
    (void)arg;
    (void)k;
    (void)kn;
    return skip_value(v, end, depth + 1);
}

/* Walks the object at p once, handing each member to on_member (at nesting
 * depth). Returns the byte after its '}' or NULL if it is not well formed. */
static const char *
scan_object(const char *p, const char *end, member_fn on_member, void *arg, int depth)
{
    const char *k;
    size_t kn;

    p = skip_ws(p, end);
    if (p >= end || *p != '{' || depth > JSON_MAX_DEPTH) {
        return NULL;
    }
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        return p + 1;
    }
    for (;;) {
        p = scan_string(skip_ws(p, end), end, &k, &kn);
        p = p ? skip_ws(p, end) : NULL;
        if (p == NULL || p >= end || *p != ':') {
            return NULL;
        }
        p = on_member(arg, k, kn, skip_ws(p + 1, end), end, depth);
        p = p ? skip_ws(p, end) : NULL;
        if (p == NULL || p >= end) {
            return NULL;
        }
        if (*p == '}') {
            return p + 1;
        }
        if (*p != ',') {
            return NULL;
        }
        p++;
    }
}

static bool
key_is(const char *k, size_t kn, const char *want)
{
    return kn == strlen(want) && memcmp(k, want, kn) == 0;
}

/* An integer; a fraction or exponent (not what the publisher sends) stops
 * the digits, which is close enough for a timestamp or a counter. */
static uint64_t
scan_uint(const char *v, const char *vend)
{
    uint64_t x = 0;

    for (; v < vend && *v >= '0' && *v <= '9'; v++) {
        x = x * 10 + (uint64_t)(*v - '0');
    }
    return x;
}

static const char *
on_ctr_member(void *arg, const char *k, size_t kn, const char *v, const char *end, int depth)
{
    struct wl_scan *o = arg;
    const char *vend = skip_value(v, end, depth + 1);

    if (vend == NULL || *v < '0' || *v > '9') {
        return vend;
    }
    if (key_is(k, kn, "i")) {
        o->slot = (long)scan_uint(v, vend);
    } else if (key_is(k, kn, o->ctr_key)) {
        o->ctr = (long)scan_uint(v, vend);
    }
    return vend;
}

static const char *
on_incident_member(void *arg, const char *k, size_t kn, const char *v, const char *end, int depth)
{
    struct wl_scan *o = arg;

    if (o->ctr_key != NULL && key_is(k, kn, "bench_c") && v < end && *v == '{') {
        o->has_ctrs = true;
        return scan_object(v, end, on_ctr_member, o, depth + 1);
    }
    const char *vend = skip_value(v, end, depth + 1);
    if (vend != NULL && key_is(k, kn, "bench_ts_us")) {
        o->ts = scan_uint(v, vend);
    }
    return vend;
}

/* Copies the string at v into dst (raw, escapes not decoded, maybe truncated). */
static void
copy_string(const char *v, const char *vend, char *dst, size_t size)
{
    const char *s;
    size_t n;

    if (scan_string(v, vend, &s, &n) != NULL) {
        n = n < size - 1 ? n : size - 1;
        memcpy(dst, s, n);
        dst[n] = '\0';
    }
}

static const char *
on_top_member(void *arg, const char *k, size_t kn, const char *v, const char *end, int depth)
{
    struct wl_scan *o = arg;

    if (key_is(k, kn, "incident") && v < end && *v == '{') {
        return scan_object(v, end, on_incident_member, o, depth + 1);
    }
    const char *vend = skip_value(v, end, depth + 1);
    if (vend == NULL) {
        return NULL;
    }
    if (key_is(k, kn, "type")) {
        copy_string(v, vend, o->type, sizeof(o->type));
    } else if (key_is(k, kn, "epoch")) {
        copy_string(v, vend, o->epoch, sizeof(o->epoch));
    } else if (key_is(k, kn, "seq")) {
        o->seq = scan_uint(v, vend);
    } else if (key_is(k, kn, "reset")) {
        o->reset = vend - v == 4 && memcmp(v, "true", 4) == 0;
    }
    return vend;
}

int
wl_json_scan(const char *p, size_t n, struct wl_scan *out)
{
    const char *key = out->ctr_key;

    memset(out, 0, sizeof(*out));
    out->ctr_key = key;
    out->ctr = -1;
    out->slot = -1;
    return scan_object(p, p + n, on_top_member, out, 0) != NULL ? 0 : -1;
}

int
wl_classify(enum wl_peer peer, const char *p, size_t n, struct wl_scan *out)
{
    if (wl_json_scan(p, n, out) != 0) {
        return -1;
    }
    if (peer == WL_PEER_RAW || strcmp(out->type, "update") == 0) {
        return WL_MSG_UPDATE;
    }
    if (strcmp(out->type, "welcome") == 0) {
        return WL_MSG_WELCOME;
    }
    if (strcmp(out->type, "snapshot") == 0) {
        return WL_MSG_SNAPSHOT;
    }
    return strcmp(out->type, "error") == 0 ? WL_MSG_ERROR : WL_MSG_OTHER;
}

/* ---- output: handshake request and control frames ---- */

static void
set_events(struct wl_ctx *c, struct wl_session *s, bool want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = s};

    if (want_out != s->want_out) {
        s->want_out = want_out;
        (void)epoll_ctl(c->epfd, EPOLL_CTL_MOD, s->fd, &ev);
    }
}

/* Writes what is queued; arms EPOLLOUT while something is left. Returns -1
 * when the socket failed (the session is then closed). */
static int
flush(struct wl_ctx *c, struct wl_session *s)
{
    ssize_t w;

    while (s->woff < s->wlen) {
        w = send(s->fd, s->wbuf + s->woff, s->wlen - s->woff, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, s, true);
            return 0;
        }
        if (w < 0) {
            wl_session_close(c, s, true, "send failed");
            return -1;
        }
        s->woff += (size_t)w;
    }
    s->woff = s->wlen = 0;
    set_events(c, s, false);
    return 0;
}

/* Queues a masked client frame; a control frame that does not fit in wbuf
 * (the peer is not reading) is dropped and counted as an error. */
static void
queue_frame(struct wl_ctx *c, struct wl_session *s, int opcode, const uint8_t *p, size_t n)
{
    uint8_t mask[4];
    uint8_t *f;
    size_t i;

    if (n > 125 || s->wlen + 6 + n > sizeof(s->wbuf)) {
        c->errors++;
        return;
    }
    if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask)) {
        memset(mask, 0x5a, sizeof(mask));
    }
    f = s->wbuf + s->wlen;
    f[0] = (uint8_t)(0x80 | opcode);
    f[1] = (uint8_t)(0x80 | n);
    memcpy(f + 2, mask, 4);
    for (i = 0; i < n; i++) {
        f[6 + i] = p[i] ^ mask[i & 3];
    }
    s->wlen += 6 + n;
}

static void
b64(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

void
wl_accept_key(const char *key, char out[32])
{
    char buf[128];
    uint8_t md[SHA_DIGEST_LENGTH];

    snprintf(buf, sizeof(buf), "%s" WS_GUID, key);
    SHA1((const unsigned char *)buf, strlen(buf), md);
    b64(md, sizeof(md), out);
}

int
wl_session_start(struct wl_ctx *c, struct wl_session *s)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
    struct sockaddr_in src;
    uint8_t nonce[16];
    int one = 1;

    s->started_us = wl_mono_us();
    s->state = WL_CONNECTING;
    s->want_out = true;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        wl_session_close(c, s, true, "socket failed (fd limit?)");
        return -1;
    }
    if (c->nsrcs > 0) {
        /* Let connect() pick the port, so each source address offers the whole
         * ephemeral range per destination instead of one shared range. */
        (void)setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr = c->srcs[c->next_src++ % c->nsrcs];
        if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            wl_session_close(c, s, true, "bind to source address failed");
            return -1;
        }
    }
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s->fd, (struct sockaddr *)&c->dst, sizeof(c->dst)) != 0 && errno != EINPROGRESS) {
        wl_session_close(c, s, true, "connect failed");
        return -1;
    }
    if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, s->fd, &ev) != 0) {
        wl_session_close(c, s, true, "epoll_ctl failed");
        return -1;
    }
    if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce)) {
        wl_session_close(c, s, true, "getrandom failed");
        return -1;
    }
    b64(nonce, sizeof(nonce), s->key);
    return 0;
}

/* Appends to the request target at *n: "?" or "&", then what. */
static void
append_query(char *dst, size_t size, size_t *n, const char *what)
{
    int w = snprintf(dst + *n, size - *n, "%c%s", memchr(dst, '?', *n) ? '&' : '?', what);

    *n = w < 0 ? size : *n + (size_t)w;
}

/* The request target: the URL's path and query, the session's filter, and
 * since + epoch when it resumes. Returns its length, >= size if it did not fit. */
static size_t
request_target(struct wl_ctx *c, struct wl_session *s, char *dst, size_t size)
{
    char resume[64 + 3 * WL_EPOCH_MAX], *q;
    size_t n = (size_t)snprintf(dst, size, "%s", c->path);
    const char *e;

    if (n < size && c->nfilters > 0 && c->filters[s->filter].query[0] != '\0') {
        append_query(dst, size, &n, c->filters[s->filter].query);
    }
    if (n < size && s->resuming) {
        q = resume +
            snprintf(resume, sizeof(resume), "since=%llu&epoch=", (unsigned long long)s->last_seq);
        /* Percent-encode the epoch: it is the server's opaque string. */
        for (e = c->epoch; *e; e++) {
            if ((*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z') || (*e >= '0' && *e <= '9') ||
                strchr("-._~", *e)) {
                *q++ = *e;
            } else {
                q += sprintf(q, "%%%02X", (unsigned char)*e);
            }
        }
        *q = '\0';
        append_query(dst, size, &n, resume);
    }
    return n;
}

static void
send_request(struct wl_ctx *c, struct wl_session *s)
{
    char target[WL_WBUF_SIZE];
    int n;

    if (request_target(c, s, target, sizeof(target)) >= sizeof(target)) {
        wl_session_close(c, s, true, "request target too long");
        return;
    }
    /* A raw peer is asked for no subprotocol: the servers compared with
     * tocsind do not speak tocsin.v1, and each treats an unknown one its own way. */
    n = snprintf((char *)s->wbuf, sizeof(s->wbuf),
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                 target, c->host, s->key,
                 c->peer == WL_PEER_RAW ? "" : "Sec-WebSocket-Protocol: tocsin.v1\r\n");
    if (n < 0 || (size_t)n >= sizeof(s->wbuf)) {
        wl_session_close(c, s, true, "request too long");
        return;
    }
    s->wlen = (size_t)n;
    s->woff = 0;
    s->state = WL_HANDSHAKE;
    (void)flush(c, s);
}

/* Value of header name in [hdr, end), trimmed; NULL if absent. */
static const char *
find_header(const char *hdr, const char *end, const char *name, size_t *vn)
{
    size_t nl = strlen(name);
    const char *line = hdr, *eol, *v;

    while (line < end) {
        eol = memchr(line, '\n', (size_t)(end - line));
        eol = eol ? eol : end;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }
            *vn = (size_t)(eol - v);
            while (*vn > 0 && (v[*vn - 1] == '\r' || v[*vn - 1] == ' ')) {
                (*vn)--;
            }
            return v;
        }
        line = eol + 1;
    }
    return NULL;
}

/* Returns the header length when the full 101 response is in rbuf and valid,
 * 0 if more bytes are needed, -1 (session closed) when it is wrong. */
static long
parse_response(struct wl_ctx *c, struct wl_session *s)
{
    const char *h = (const char *)s->rbuf, *end, *v;
    char want[32];
    size_t vn;

    end = memmem(h, s->rlen, "\r\n\r\n", 4);
    if (end == NULL) {
        if (s->rlen >= WL_HDR_MAX) {
            wl_session_close(c, s, true, "handshake response header too long");
            return -1;
        }
        return 0;
    }
    end += 4;
    if (s->rlen < 12 || memcmp(h, "HTTP/1.1 101", 12) != 0) {
        v = memchr(h, '\r', s->rlen);
        wl_log(c, "handshake answer: %.*s", (int)(v - h), h);
        wl_session_close(c, s, true, "handshake: not 101");
        return -1;
    }
    wl_accept_key(s->key, want);
    v = find_header(h, end, "Sec-WebSocket-Accept", &vn);
    if (v == NULL || vn != strlen(want) || memcmp(v, want, vn) != 0) {
        wl_session_close(c, s, true, "handshake: bad Sec-WebSocket-Accept");
        return -1;
    }
    v = find_header(h, end, "Sec-WebSocket-Protocol", &vn);
    if (c->peer == WL_PEER_TOCSIN && (v == NULL || vn != 9 || memcmp(v, "tocsin.v1", 9) != 0)) {
        wl_session_close(c, s, true, "handshake: subprotocol is not tocsin.v1");
        return -1;
    }
    return end - h;
}

uint32_t
wl_session_expect(const struct wl_ctx *c, const struct wl_session *s)
{
    return c->nfilters > 0 ? c->filters[s->filter].expect : c->expect;
}

/* Whether sessions wait for a count at all: a --filters line always gives
 * one (0: nothing is due, done once ready), else --expect > 0. */
static bool
has_expect(const struct wl_ctx *c)
{
    return c->nfilters > 0 || c->expect > 0;
}

static void count_catchup(struct wl_ctx *c, uint64_t now);

/* Counts s done once it got its expect (and is ready). */
static void
count_done(struct wl_ctx *c, struct wl_session *s)
{
    uint64_t now;

    if (s->done_counted || !s->ready_counted || !has_expect(c) ||
        s->updates < wl_session_expect(c, s)) {
        return;
    }
    now = wl_wall_us();
    s->done_counted = true;
    c->sessions_done++;
    c->caught_up_us = now;
    count_catchup(c, now);
}

/* Counts s as ready once it got welcome and snapshot (a raw peer's session
 * is ready on its 101: both are set then). */
static void
count_ready(struct wl_ctx *c, struct wl_session *s)
{
    if (s->welcomed && s->snapshotted && !s->ready_counted) {
        s->ready_counted = true;
        c->ready++;
        c->last_ready_us = wl_mono_us();
    }
    count_done(c, s);
}

/* Keeps one latency sample; past the cap, thins the kept ones to every other
 * and samples every 2nd (then 4th, ...) delivery, so the percentiles still
 * cover the whole run. */
static void
keep_sample(struct wl_ctx *c, uint64_t lat)
{
    size_t i;

    if (c->lat_seen++ % c->lat_stride != 0) {
        return;
    }
    if (c->lat_len == c->lat_cap) {
        for (i = 0; i < c->lat_len / 2; i++) {
            c->lat[i] = c->lat[2 * i];
        }
        c->lat_dropped += c->lat_len - c->lat_len / 2;
        c->lat_len /= 2;
        c->lat_stride *= 2;
    }
    c->lat[c->lat_len++] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
}

/* With --check: the update's bench_c counter for s's filter must be the last
 * one of its incident + 1 (the first is 1); its seq must be past the last one. */
static void
check_update(struct wl_ctx *c, struct wl_session *s, const struct wl_scan *m)
{
    uint32_t *last;

    if (m->seq != 0 && m->seq <= s->last_seq) {
        c->dups++;
        wl_log(c, "update seq %llu after %llu", (unsigned long long)m->seq,
               (unsigned long long)s->last_seq);
        return;
    }
    s->last_seq = m->seq ? m->seq : s->last_seq;
    if (!c->check) {
        return;
    }
    if (!m->has_ctrs || m->slot < 0 || m->slot >= WL_MAX_INCIDENTS) {
        c->unchecked++;
        return;
    }
    last = &s->last_ctr[m->slot];
    if (m->ctr < 0) {
        c->foreign++;
        wl_log(c, "incident slot %ld arrived, filter %u does not match it", m->slot,
               (unsigned)s->filter);
    } else if ((uint64_t)m->ctr <= *last) {
        c->dups++;
        wl_log(c, "filter %u, incident slot %ld: counter %ld after %u", (unsigned)s->filter,
               m->slot, m->ctr, *last);
    } else {
        if ((uint64_t)m->ctr > (uint64_t)*last + 1) {
            c->gaps += (uint64_t)m->ctr - *last - 1;
            wl_log(c, "filter %u, incident slot %ld: counter %ld after %u (gap)",
                   (unsigned)s->filter, m->slot, m->ctr, *last);
        }
        *last = (uint32_t)m->ctr;
    }
}

/* Per update number k: when it was published and first and last received. */
static void
track_update(struct wl_ctx *c, uint32_t k, uint64_t ts, uint64_t now)
{
    if (k >= c->upd_tracked) {
        return;
    }
    if (c->upd_ts[k] == 0 || ts < c->upd_ts[k]) {
        c->upd_ts[k] = ts;
    }
    if (c->upd_first[k] == 0) {
        c->upd_first[k] = now;
    }
    c->upd_last[k] = now;
}

const unsigned wl_catchup_edges_ms[WL_CATCHUP_BUCKETS - 1] = {250,  500,  1000, 1500,
                                                              2000, 2500, 3000, 5000};

/* A session caught up at now: into its bucket of time since the trigger. */
static void
count_catchup(struct wl_ctx *c, uint64_t now)
{
    uint64_t ms;
    size_t i = 0;

    if (c->trigger_us == 0 || now < c->trigger_us) {
        return;
    }
    ms = (now - c->trigger_us) / 1000;
    while (i < WL_CATCHUP_BUCKETS - 1 && ms > wl_catchup_edges_ms[i]) {
        i++;
    }
    c->catchup_hist[i]++;
}

static void
on_update(struct wl_ctx *c, struct wl_session *s, const struct wl_scan *m)
{
    uint64_t now = wl_wall_us(), lat;

    check_update(c, s, m);
    s->updates++;
    c->updates++;
    count_done(c, s);
    if (m->ts == 0) {
        c->errors++; /* an update without bench_ts_us cannot be timed */
        return;
    }
    track_update(c, s->updates - 1, m->ts, now);
    lat = now > m->ts ? now - m->ts : 0;
    c->last_rx_us = now;
    if (c->first_rx_us == 0) {
        c->first_rx_us = now;
    }
    if (c->first_ts_us == 0 || m->ts < c->first_ts_us) {
        c->first_ts_us = m->ts;
    }
    c->lat_max_us = lat > c->lat_max_us ? lat : c->lat_max_us;
    keep_sample(c, lat);
}

static void
on_welcome(struct wl_ctx *c, struct wl_session *s, const struct wl_scan *m)
{
    s->welcomed = true;
    if (s->resuming) {
        /* A resume served exactly sends no snapshot: the replay follows. */
        s->snapshotted = true;
        c->rewelcomed++;
        c->rewelcome_us = wl_wall_us();
    } else if (m->seq > s->last_seq) {
        /* Updates after the welcome are past its seq: the since of a resume
         * before the first update. */
        s->last_seq = m->seq;
    }
    if (c->epoch[0] == '\0') {
        snprintf(c->epoch, sizeof(c->epoch), "%s", m->epoch);
    }
}

static void
on_message(struct wl_ctx *c, struct wl_session *s, const uint8_t *p, size_t n)
{
    struct wl_scan m;
    char key[16];
    int kind;

    snprintf(key, sizeof(key), "%u", (unsigned)s->filter);
    m.ctr_key = c->check ? key : NULL;
    kind = wl_classify(c->peer, (const char *)p, n, &m);
    if (kind < 0) {
        wl_session_close(c, s, true, "message is not a JSON object");
        return;
    }
    if (c->peer == WL_PEER_TOCSIN && c->epoch[0] != '\0' && m.epoch[0] != '\0' &&
        strcmp(m.epoch, c->epoch) != 0) {
        c->epoch_changes++;
    }
    if (kind == WL_MSG_WELCOME) {
        on_welcome(c, s, &m);
    } else if (kind == WL_MSG_SNAPSHOT) {
        s->snapshotted = true;
        s->last_seq = m.seq > s->last_seq ? m.seq : s->last_seq;
        if (m.reset) {
            c->resets++;
            wl_log(c, "snapshot with reset: a resume was not served exactly");
        }
    } else if (kind == WL_MSG_UPDATE) {
        on_update(c, s, &m);
        return;
    } else if (kind == WL_MSG_ERROR) {
        wl_log(c, "server error message: %.*s", (int)(n < 200 ? n : 200), (const char *)p);
        c->errors++;
    }
    count_ready(c, s);
}

/* The server ended an open session: with --resume-on-close it resumes with
 * since (what a client does after 1013), else it is an error. */
static void
server_closed(struct wl_ctx *c, struct wl_session *s, const char *why)
{
    if (c->resume_on_close && s->state == WL_OPEN && s->welcomed) {
        c->resumed_closes++;
        wl_log(c, "%s: resuming with since", why);
        wl_session_resume(c, s);
        return;
    }
    wl_session_close(c, s, true, why);
}

static void
on_control(struct wl_ctx *c, struct wl_session *s, int op, const uint8_t *p, size_t n)
{
    if (op == 0x9) {
        queue_frame(c, s, 0xA, p, n);
        (void)flush(c, s);
    } else if (op == 0x8) {
        c->server_closes++;
        if (n >= 2) {
            wl_log(c, "server closed with %u: %.*s", (unsigned)(p[0] << 8 | p[1]), (int)(n - 2),
                   (const char *)p + 2);
        }
        queue_frame(c, s, 0x8, p, n >= 2 ? 2 : 0);
        (void)flush(c, s);
        if (s->state != WL_DEAD) {
            server_closed(c, s, "server closed the session");
        }
    }
}

/* Parses every complete frame in rbuf (see struct wl_session for the layout). */
static void
parse_frames(struct wl_ctx *c, struct wl_session *s)
{
    size_t pos = s->msg_len, hdr, plen, avail, i;
    uint8_t *f;
    int op, fin;

    while (s->state == WL_OPEN && s->rlen - pos >= 2) {
        f = s->rbuf + pos;
        avail = s->rlen - pos;
        fin = f[0] & 0x80;
        op = f[0] & 0x0f;
        plen = f[1] & 0x7f;
        hdr = 2;
        if ((f[0] & 0x70) != 0 || (f[1] & 0x80) != 0) {
            wl_session_close(c, s, true, "protocol: RSV bits or masked server frame");
            return;
        }
        if (plen == 126) {
            if (avail < 4) {
                break;
            }
            plen = (size_t)f[2] << 8 | f[3];
            hdr = 4;
        } else if (plen == 127) {
            if (avail < 10) {
                break;
            }
            for (plen = 0, i = 2; i < 10; i++) {
                plen = plen << 8 | f[i];
            }
            hdr = 10;
        }
        if (op >= 8 ? (!fin || plen > 125) : (s->msg_len + plen > WL_MSG_MAX)) {
            wl_session_close(
                c, s, true, op >= 8 ? "protocol: bad control frame" : "message larger than 64 KiB");
            return;
        }
        if (avail < hdr + plen) {
            break;
        }
        if (op >= 8) {
            on_control(c, s, op, f + hdr, plen);
        } else if ((op == 0) != (s->msg_opcode != 0)) {
            wl_session_close(c, s, true, "protocol: bad continuation");
            return;
        } else if (fin && s->msg_opcode == 0) {
            if (op == 1) {
                on_message(c, s, f + hdr, plen);
            }
        } else {
            /* A fragment: move its payload behind the ones before it. */
            memmove(s->rbuf + s->msg_len, f + hdr, plen);
            s->msg_len += plen;
            s->msg_opcode = op ? op : s->msg_opcode;
            if (fin) {
                if (s->msg_opcode == 1) {
                    on_message(c, s, s->rbuf, s->msg_len);
                }
                s->msg_len = 0;
                s->msg_opcode = 0;
            }
        }
        pos += hdr + plen;
    }
    if (s->state == WL_DEAD) {
        return;
    }
    memmove(s->rbuf + s->msg_len, s->rbuf + pos, s->rlen - pos);
    s->rlen = s->msg_len + (s->rlen - pos);
}

static void
on_readable(struct wl_ctx *c, struct wl_session *s)
{
    ssize_t r;
    long hl;

    if (s->rlen == WL_RBUF_SIZE) {
        wl_session_close(c, s, true, "read buffer full");
        return;
    }
    r = recv(s->fd, s->rbuf + s->rlen, WL_RBUF_SIZE - s->rlen, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return;
    }
    if (r <= 0) {
        server_closed(c, s, r == 0 ? "server closed the connection" : "recv failed");
        return;
    }
    s->rlen += (size_t)r;
    if (s->state == WL_HANDSHAKE) {
        hl = parse_response(c, s);
        if (hl <= 0) {
            return;
        }
        memmove(s->rbuf, s->rbuf + hl, s->rlen - (size_t)hl);
        s->rlen -= (size_t)hl;
        s->state = WL_OPEN;
        c->connected++;
        if (c->peer == WL_PEER_RAW) {
            s->welcomed = s->snapshotted = true;
            count_ready(c, s);
        }
    }
    parse_frames(c, s);
}

void
wl_session_event(struct wl_ctx *c, struct wl_session *s, uint32_t events)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (s->state == WL_CONNECTING) {
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            errno = err;
            wl_log(c, "connect: %s", strerror(err));
            wl_session_close(c, s, true, "connect failed");
            return;
        }
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        send_request(c, s);
        return;
    }
    if ((events & EPOLLOUT) && s->state != WL_DEAD) {
        if (flush(c, s) != 0) {
            return;
        }
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && s->state != WL_DEAD) {
        on_readable(c, s);
    }
}

void
wl_session_close(struct wl_ctx *c, struct wl_session *s, bool is_error, const char *why)
{
    if (s->state == WL_DEAD) {
        return;
    }
    if (is_error) {
        c->errors++;
        wl_log(c, "session closed: %s", why);
    }
    if (s->fd >= 0) {
        close(s->fd); /* also removes it from the epoll set */
        s->fd = -1;
    }
    s->state = WL_DEAD;
    c->dead++;
    if (!s->ready_counted) {
        c->dead_unready++;
    }
    if (has_expect(c) && !s->done_counted) {
        c->dead_undone++;
    }
}

void
wl_session_drop(struct wl_ctx *c, struct wl_session *s)
{
    (void)c; /* the drop is counted by the caller: a churn, storm or server close */
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (s->state == WL_DEAD) {
        return;
    }
    s->state = WL_IDLE;
    s->resuming = s->welcomed || s->resuming;
    s->welcomed = false;
    s->snapshotted = false;
    s->rlen = s->msg_len = 0;
    s->msg_opcode = 0;
    s->wlen = s->woff = 0;
}

void
wl_session_resume(struct wl_ctx *c, struct wl_session *s)
{
    wl_session_drop(c, s);
    if (s->state == WL_IDLE) {
        c->reconnects++;
        (void)wl_session_start(c, s);
    }
}
