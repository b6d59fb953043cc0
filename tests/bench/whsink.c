/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsin-whsink: the webhook receiver of the delivery benchmark
 * (tests/bench/webhooks.py). It listens on N loopback ports, answers every
 * keep-alive HTTP/1.1 POST with 204 (pipelined and partial requests are fine),
 * counts deliveries per port, remembers each webhook-id to find duplicates,
 * times each delivery from the body's "bench_ts_us" and prints one JSON line
 * at the end. One epoll loop, no threads, libc only. It checks no signature:
 * --log hands headers and bodies to a script that does.
 */
#define _GNU_SOURCE /* memmem, accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Ports one process listens on. */
#define MAX_PORTS 1024
/* Open connections; one more is accepted and closed at once, and counted. */
#define MAX_CONNS 8192
/* The request line and headers must end within this many bytes, else the
 * answer is 431 and the connection is closed. */
#define HDR_MAX (16 * 1024)
/* A larger Content-Length is answered 413 and the connection closed. */
#define BODY_MAX (1024 * 1024)
/* A read buffer starts here and doubles, up to HDR_MAX + BODY_MAX, only while
 * one request does not fit; a connection keeps its largest buffer. */
#define RBUF_INIT (16 * 1024)
/* Answers not written yet. With less than RESP_MAX free, parsing stops until
 * the peer reads (pipelined requests wait in the read buffer, and the read
 * buffer is not read into while it is full). */
#define WBUF_SIZE 4096
#define RESP_MAX  128
/* A longer webhook-id is counted in bad_ids and not remembered. */
#define ID_MAX 256
/* webhook-ids remembered and latency samples kept (--max-ids); past the bound
 * they are counted in ids_dropped / lat_dropped, not kept. */
#define DEFAULT_ID_CAP (4u << 20)
#define LISTEN_BACKLOG 1024

static volatile sig_atomic_t g_stop;

/* epoll hands back a pointer to a struct port or a struct conn: both start
 * with the kind. */
enum kind { K_PORT = 1, K_CONN };

struct port {
    enum kind kind;
    int fd;
    uint16_t port;
    uint64_t requests;
    uint64_t deliveries; /* requests answered 2xx */
};

struct conn {
    enum kind kind;
    int fd;
    struct conn *prev, *next; /* open connections, so exit frees them */
    struct port *port;
    /* [roff, rlen) of rbuf is read but not parsed yet. */
    char *rbuf;
    size_t rlen, roff, rcap;
    char wbuf[WBUF_SIZE];
    size_t wlen, woff;
    uint32_t armed; /* epoll events asked for */
    bool closing;   /* an answer with Connection: close is queued: read no more */
};

/* One parsed request; the pointers borrow the read buffer. */
struct req {
    size_t total; /* bytes of the request: head and body */
    const char *body, *id, *ts, *sig;
    size_t body_len, id_len, ts_len, sig_len;
    bool post;
    bool keep_alive;
    bool http10;
};

struct idslot {
    uint64_t hash; /* 0: empty */
    uint32_t off;  /* into the arena */
    uint16_t len;
    uint8_t delivered; /* answered 2xx once */
};

/* An open-addressing set of webhook-ids, at most half full. */
struct idtab {
    struct idslot *slots;
    size_t cap, used, max;
    char *arena;
    size_t arena_len, arena_cap;
};

struct sink {
    int epfd;
    struct port *ports;
    size_t nports;
    struct conn *conns; /* list head */
    size_t nconns;
    struct idtab ids;
    int status, fail_status;
    uint64_t fail_every;
    uint64_t expect;
    FILE *log;
    bool verbose;

    uint64_t requests;         /* complete requests parsed */
    uint64_t deliveries;       /* POSTs answered 2xx */
    uint64_t failed_answers;   /* POSTs answered otherwise (--status, --fail-every) */
    uint64_t bad_requests;     /* answered 4xx/5xx for their form, connection closed */
    uint64_t not_post;         /* other methods, answered 405 */
    uint64_t partial_at_close; /* connections closed with half a request read */
    uint64_t duplicates;       /* a webhook-id already answered 2xx came again */
    uint64_t retries;          /* a webhook-id answered only with failures came again */
    uint64_t no_id, bad_ids, ids_dropped;
    uint64_t connections, conns_refused;
    uint64_t close_requests; /* asked for Connection: close (or HTTP/1.0 without keep-alive) */
    uint64_t first_rx_us, last_rx_us; /* wall clock of the first and last delivery */
    uint64_t min_ts_us;               /* smallest bench_ts_us seen */
    uint32_t *lat;                    /* microseconds, receive time - bench_ts_us */
    size_t lat_len, lat_cap;
    uint64_t lat_dropped, lat_max_us;
};

struct opts {
    const char *ports;
    const char *host;
    const char *ready;
    const char *log;
    long base_port;
    long count;
    double linger_s;
    double duration_s;
    long long expect;
    long long fail_every;
    long long max_ids;
    int status;
    int fail_status;
};

static uint64_t
wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);

    if (q == NULL) {
        fprintf(stderr, "tocsin-whsink: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        fprintf(stderr, "tocsin-whsink: out of memory (%zu x %zu bytes)\n", n, size);
        abort();
    }
    return p;
}

static void
on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ---- HTTP/1.1 request parsing: pure, so --selftest can drive it ---- */

static bool
name_is(const char *p, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

/* Does the comma-separated list [p, p + n) hold token (case-insensitive)? */
static bool
has_token(const char *p, size_t n, const char *token)
{
    const char *end = p + n, *e;
    size_t tl = strlen(token);

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }
        for (e = p; e < end && *e != ','; e++) {
        }
        n = (size_t)(e - p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
            n--;
        }
        if (n == tl && strncasecmp(p, token, tl) == 0) {
            return true;
        }
        p = e;
    }
    return false;
}

/* Parses one request at buf. Returns 1 when it is complete (r describes it),
 * 0 when more bytes are needed, or minus the HTTP status to answer before
 * closing: 400 malformed, 413 body over BODY_MAX, 431 head over HDR_MAX,
 * 501 Transfer-Encoding (curl sends Content-Length for a POST body), 505
 * not HTTP/1.x. */
static int
parse_request(const char *buf, size_t len, struct req *r)
{
    const char *head_end, *p, *eol, *sp1, *sp2, *colon, *v, *ve;
    long long clen = -1, val;
    size_t n;

    memset(r, 0, sizeof(*r));
    head_end = memmem(buf, len < HDR_MAX ? len : HDR_MAX, "\r\n\r\n", 4);
    if (head_end == NULL) {
        return len >= HDR_MAX ? -431 : 0;
    }
    /* Request line: METHOD SP target SP HTTP/1.x */
    eol = memmem(buf, (size_t)(head_end + 2 - buf), "\r\n", 2);
    sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp1 == buf || sp2 == NULL || sp2 == sp1 + 1) {
        return -400;
    }
    if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1')) {
        return -505;
    }
    r->http10 = sp2[8] == '0';
    r->keep_alive = !r->http10;
    r->post = sp1 - buf == 4 && memcmp(buf, "POST", 4) == 0;
    for (p = eol + 2; p < head_end + 2; p = eol + 2) {
        eol = memmem(p, (size_t)(head_end + 2 - p), "\r\n", 2);
        colon = memchr(p, ':', (size_t)(eol - p));
        /* No name, no colon, or obsolete line folding: not ours to guess. */
        if (colon == NULL || colon == p || *p == ' ' || *p == '\t') {
            return -400;
        }
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++) {
        }
        for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) {
        }
        n = (size_t)(colon - p);
        if (name_is(p, n, "content-length")) {
            if (v == ve) {
                return -400;
            }
            for (val = 0; v < ve; v++) {
                if (*v < '0' || *v > '9') {
                    return -400;
                }
                val = val > BODY_MAX ? val : val * 10 + (*v - '0'); /* saturates */
            }
            if (clen >= 0 && clen != val) {
                return -400;
            }
            clen = val;
        } else if (name_is(p, n, "transfer-encoding")) {
            return -501;
        } else if (name_is(p, n, "connection")) {
            if (has_token(v, (size_t)(ve - v), "close")) {
                r->keep_alive = false;
            } else if (has_token(v, (size_t)(ve - v), "keep-alive")) {
                r->keep_alive = true;
            }
        } else if (name_is(p, n, "webhook-id")) {
            r->id = v;
            r->id_len = (size_t)(ve - v);
        } else if (name_is(p, n, "webhook-timestamp")) {
            r->ts = v;
            r->ts_len = (size_t)(ve - v);
        } else if (name_is(p, n, "webhook-signature")) {
            r->sig = v;
            r->sig_len = (size_t)(ve - v);
        }
    }
    if (clen > BODY_MAX) {
        return -413;
    }
    /* Neither Content-Length nor Transfer-Encoding: no body (RFC 9112 6.3). */
    r->body_len = clen < 0 ? 0 : (size_t)clen;
    r->body = head_end + 4;
    r->total = (size_t)(head_end + 4 - buf) + r->body_len;
    return len >= r->total ? 1 : 0;
}

/* The integer after the first "bench_ts_us": in a body, or 0. A plain byte
 * search, not a JSON parse: tocsind serialises the incident with this key
 * once, and a string holding the same text would only skew one sample. */
static uint64_t
scan_bench_ts(const char *body, size_t len)
{
    static const char key[] = "\"bench_ts_us\"";
    const char *p = memmem(body, len, key, sizeof(key) - 1), *end = body + len;
    uint64_t v = 0;

    if (p == NULL) {
        return 0;
    }
    for (p += sizeof(key) - 1; p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r');
         p++) {
    }
    if (p == end || *p != ':') {
        return 0;
    }
    for (p++; p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'); p++) {
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10) {
            return 0; /* not a microsecond timestamp */
        }
        v = v * 10 + (uint64_t)(*p - '0');
    }
    return v;
}

/* ---- webhook-ids ---- */

static uint64_t
fnv1a(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
    }
    return h ? h : 1; /* 0 marks an empty slot */
}

static void
idtab_grow(struct idtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024, i, j;
    struct idslot *slots = xcalloc(cap, sizeof(*slots));

    for (i = 0; i < t->cap; i++) {
        if (t->slots[i].hash == 0) {
            continue;
        }
        for (j = t->slots[i].hash & (cap - 1); slots[j].hash != 0; j = (j + 1) & (cap - 1)) {
        }
        slots[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
}

/* The slot of id, added if new (*found false). NULL when id is new and the
 * set is at its bound (t->max ids). */
static struct idslot *
idtab_get(struct idtab *t, const char *id, size_t len, bool *found)
{
    uint64_t h = fnv1a(id, len);
    struct idslot *s;
    size_t i;

    if (t->cap == 0) {
        idtab_grow(t);
    }
    for (i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        s = &t->slots[i];
        if (s->hash == 0) {
            break;
        }
        if (s->hash == h && s->len == len && memcmp(t->arena + s->off, id, len) == 0) {
            *found = true;
            return s;
        }
    }
    *found = false;
    /* The arena is addressed by 32-bit offsets: past 4 GiB of ids, none is kept. */
    if (t->used >= t->max || t->arena_len + len > UINT32_MAX) {
        return NULL;
    }
    if ((t->used + 1) * 2 > t->cap) {
        idtab_grow(t);
        for (i = h & (t->cap - 1); t->slots[i].hash != 0; i = (i + 1) & (t->cap - 1)) {
        }
        s = &t->slots[i];
    }
    if (t->arena_len + len > t->arena_cap) {
        t->arena_cap = t->arena_cap ? t->arena_cap * 2 : 64 * 1024;
        t->arena_cap = t->arena_cap < t->arena_len + len ? t->arena_len + len : t->arena_cap;
        t->arena = xrealloc(t->arena, t->arena_cap);
    }
    memcpy(t->arena + t->arena_len, id, len);
    s->hash = h;
    s->off = (uint32_t)t->arena_len;
    s->len = (uint16_t)len;
    s->delivered = 0;
    t->arena_len += len;
    t->used++;
    return s;
}

/* ---- output ---- */

/* Writes [p, p + n) as a JSON string. Every byte >= 0x80 becomes \u00XX, so
 * the line is ASCII whatever the body holds, and a reader gets the exact
 * bytes back with .encode("latin-1"). */
static void
json_str(FILE *f, const char *p, size_t n)
{
    size_t i;
    unsigned char ch;

    fputc('"', f);
    for (i = 0; i < n; i++) {
        ch = (unsigned char)p[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
        } else if (ch < 0x20 || ch >= 0x7f) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void
log_request(struct sink *s, const struct port *pt, const struct req *r, int status, uint64_t now)
{
    fprintf(s->log, "{\"port\":%u,\"status\":%d,\"rx_us\":%llu,\"id\":", pt->port, status,
            (unsigned long long)now);
    json_str(s->log, r->id ? r->id : "", r->id_len);
    fputs(",\"timestamp\":", s->log);
    json_str(s->log, r->ts ? r->ts : "", r->ts_len);
    fputs(",\"signature\":", s->log);
    json_str(s->log, r->sig ? r->sig : "", r->sig_len);
    fputs(",\"body\":", s->log);
    json_str(s->log, r->body, r->body_len);
    fputs("}\n", s->log);
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static void
print_ms(const char *key, bool have, double ms)
{
    if (have) {
        printf(",\"%s\":%.3f", key, ms);
    } else {
        printf(",\"%s\":null", key);
    }
}

static void
report(struct sink *s, bool timed_out)
{
    size_t n = s->lat_len, i;
    bool have = n > 0;
    struct rusage ru = {0};

    if (have) {
        qsort(s->lat, n, sizeof(*s->lat), cmp_u32);
    }
    printf("{\"requests\":%llu,\"deliveries\":%llu,\"expect\":%llu,\"done\":%s,\"timed_out\":%s",
           (unsigned long long)s->requests, (unsigned long long)s->deliveries,
           (unsigned long long)s->expect,
           s->expect > 0 && s->deliveries >= s->expect ? "true" : "false",
           timed_out ? "true" : "false");
    printf(",\"failed_answers\":%llu,\"bad_requests\":%llu,\"not_post\":%llu"
           ",\"partial_at_close\":%llu,\"unique_ids\":%zu,\"duplicates\":%llu,\"retries\":%llu"
           ",\"no_id\":%llu,\"bad_ids\":%llu,\"ids_dropped\":%llu,\"connections\":%llu"
           ",\"conns_refused\":%llu,\"close_requests\":%llu",
           (unsigned long long)s->failed_answers, (unsigned long long)s->bad_requests,
           (unsigned long long)s->not_post, (unsigned long long)s->partial_at_close, s->ids.used,
           (unsigned long long)s->duplicates, (unsigned long long)s->retries,
           (unsigned long long)s->no_id, (unsigned long long)s->bad_ids,
           (unsigned long long)s->ids_dropped, (unsigned long long)s->connections,
           (unsigned long long)s->conns_refused, (unsigned long long)s->close_requests);
    printf(",\"first_rx_us\":%llu,\"last_rx_us\":%llu,\"min_ts_us\":%llu,\"lat_samples\":%zu"
           ",\"lat_dropped\":%llu",
           (unsigned long long)s->first_rx_us, (unsigned long long)s->last_rx_us,
           (unsigned long long)s->min_ts_us, n, (unsigned long long)s->lat_dropped);
    print_ms("p50_ms", have, have ? s->lat[(n - 1) / 2] / 1000.0 : 0);
    print_ms("p99_ms", have, have ? s->lat[(size_t)((double)(n - 1) * 0.99)] / 1000.0 : 0);
    print_ms("max_ms", have, (double)s->lat_max_us / 1000.0);
    /* Its own CPU, so the benchmark can tell whether the sink kept up. */
    (void)getrusage(RUSAGE_SELF, &ru);
    printf(",\"cpu_s\":%.3f", (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    printf(",\"per_port\":{");
    for (i = 0; i < s->nports; i++) {
        printf("%s\"%u\":%llu", i ? "," : "", s->ports[i].port,
               (unsigned long long)s->ports[i].deliveries);
    }
    printf("}}\n");
    fflush(stdout);
}

static int
write_ready(const struct sink *s, const char *path)
{
    char tmp[4096];
    FILE *f;
    size_t i;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    fputs("{\"ports\":[", f);
    for (i = 0; i < s->nports; i++) {
        fprintf(f, "%s%u", i ? "," : "", s->ports[i].port);
    }
    fputs("]}\n", f);
    /* rename() makes the file appear whole, so the reader never sees half. */
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        return -1;
    }
    return 0;
}

/* ---- connections ---- */

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 405:
        return "Method Not Allowed";
    case 410:
        return "Gone";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Status";
    }
}

/* Queues one answer; the caller made sure RESP_MAX bytes are free. */
static void
queue_answer(struct conn *c, int status, bool keep_alive, bool http10)
{
    int n;

    n = snprintf(c->wbuf + c->wlen, WBUF_SIZE - c->wlen, "HTTP/1.1 %d %s\r\n%s%s\r\n", status,
                 reason(status), status == 204 ? "" : "Content-Length: 0\r\n",
                 !keep_alive ? "Connection: close\r\n"
                 : http10    ? "Connection: keep-alive\r\n"
                             : "");
    if (n > 0 && (size_t)n < WBUF_SIZE - c->wlen) {
        c->wlen += (size_t)n;
    }
    if (!keep_alive) {
        c->closing = true;
    }
}

static void
conn_close(struct sink *s, struct conn *c)
{
    if (c->rlen > c->roff && !c->closing) {
        s->partial_at_close++;
    }
    close(c->fd); /* also leaves the epoll set */
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c->rbuf);
    free(c);
    s->nconns--;
}

static void
conn_arm(struct sink *s, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};

    if (events != c->armed && epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        c->armed = events;
    }
}

/* Counts and answers one complete request. */
static void
handle(struct sink *s, struct conn *c, const struct req *r)
{
    struct port *pt = c->port;
    uint64_t now = wall_us(), ts, lat;
    struct idslot *slot = NULL;
    bool found = false, ok;
    int status;

    s->requests++;
    pt->requests++;
    if (!r->post) {
        status = 405;
        s->not_post++;
    } else if (s->fail_every > 0 && s->requests % s->fail_every == 0) {
        status = s->fail_status;
    } else {
        status = s->status;
    }
    ok = r->post && status >= 200 && status < 300;
    if (r->post && r->id_len == 0) {
        s->no_id++;
    } else if (r->post && r->id_len > ID_MAX) {
        s->bad_ids++;
    } else if (r->post) {
        slot = idtab_get(&s->ids, r->id, r->id_len, &found);
        if (slot == NULL) {
            s->ids_dropped++;
        } else if (found && slot->delivered) {
            s->duplicates++;
        } else if (found) {
            s->retries++;
        }
        if (slot != NULL && ok) {
            slot->delivered = 1;
        }
    }
    if (ok) {
        s->deliveries++;
        pt->deliveries++;
        s->first_rx_us = s->first_rx_us ? s->first_rx_us : now;
        s->last_rx_us = now;
        ts = scan_bench_ts(r->body, r->body_len);
        if (ts > 0) {
            s->min_ts_us = s->min_ts_us == 0 || ts < s->min_ts_us ? ts : s->min_ts_us;
            lat = now > ts ? now - ts : 0;
            lat = lat > UINT32_MAX ? UINT32_MAX : lat;
            s->lat_max_us = lat > s->lat_max_us ? lat : s->lat_max_us;
            if (s->lat_len < s->lat_cap) {
                s->lat[s->lat_len++] = (uint32_t)lat;
            } else {
                s->lat_dropped++;
            }
        }
    } else if (r->post) {
        s->failed_answers++;
    }
    if (s->log != NULL) {
        log_request(s, pt, r, status, now);
    }
    s->close_requests += !r->keep_alive;
    queue_answer(c, status, r->keep_alive, r->http10);
}

/* Parses and answers what the read buffer holds. Returns true when it
 * stopped for want of room in the write buffer. */
static bool
process(struct sink *s, struct conn *c)
{
    struct req r;
    int rc;

    while (!c->closing) {
        if (WBUF_SIZE - c->wlen < RESP_MAX) {
            return true;
        }
        rc = parse_request(c->rbuf + c->roff, c->rlen - c->roff, &r);
        if (rc == 0) {
            break;
        }
        if (rc < 0) {
            s->bad_requests++;
            if (s->verbose) {
                fprintf(stderr, "tocsin-whsink: port %u: answered %d\n", c->port->port, -rc);
            }
            queue_answer(c, -rc, false, false);
            break;
        }
        handle(s, c, &r);
        c->roff += r.total;
    }
    if (c->roff == c->rlen) {
        c->roff = c->rlen = 0;
    } else if (c->roff > 0 && c->rlen == c->rcap) {
        /* Only a full buffer is compacted: a request split over reads keeps
         * its place, and a burst of pipelined ones costs one move. */
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    if (c->rlen == c->rcap && c->rcap < HDR_MAX + BODY_MAX && !c->closing) {
        c->rcap = c->rcap * 2 < HDR_MAX + BODY_MAX ? c->rcap * 2 : HDR_MAX + BODY_MAX;
        c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    return false;
}

/* Writes queued answers. Returns -1 when the connection was closed. */
static int
flush(struct sink *s, struct conn *c)
{
    ssize_t n;

    while (c->woff < c->wlen) {
        n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        if (n <= 0) {
            conn_close(s, c);
            return -1;
        }
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
    if (c->closing) {
        conn_close(s, c);
        return -1;
    }
    return 0;
}

/* Answers what can be answered, writes, and arms epoll for what is next. */
static void
service(struct sink *s, struct conn *c)
{
    bool stalled;

    do {
        stalled = process(s, c);
        if (flush(s, c) < 0) {
            return;
        }
        /* Answers went out whole: go on with pipelined requests already read. */
    } while (stalled && c->wlen == 0);
    conn_arm(s, c,
             (c->wlen > 0 ? EPOLLOUT : 0) |
                 (!c->closing && !stalled && c->rlen < c->rcap ? EPOLLIN : 0));
}

static void
conn_event(struct sink *s, struct conn *c, uint32_t events)
{
    ssize_t n;

    if (events & EPOLLOUT) {
        if (flush(s, c) < 0) {
            return;
        }
    }
    /* A full read buffer is not read into: service() makes room first. */
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->rlen < c->rcap) {
        n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            conn_close(s, c);
            return;
        }
        if (n > 0) {
            c->rlen += (size_t)n;
        }
    }
    service(s, c);
}

static void
accept_all(struct sink *s, struct port *pt)
{
    struct epoll_event ev;
    struct conn *c;
    int fd, one = 1;

    for (;;) {
        fd = accept4(pt->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                perror("tocsin-whsink: accept4");
            }
            return;
        }
        if (s->nconns >= MAX_CONNS) {
            s->conns_refused++;
            close(fd);
            continue;
        }
        /* Answers are small and follow each other: never wait for an ACK. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = xcalloc(1, sizeof(*c));
        c->kind = K_CONN;
        c->fd = fd;
        c->port = pt;
        c->rcap = RBUF_INIT;
        c->rbuf = xrealloc(NULL, c->rcap);
        c->armed = EPOLLIN;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            perror("tocsin-whsink: epoll_ctl");
            free(c->rbuf);
            free(c);
            close(fd);
            continue;
        }
        c->next = s->conns;
        if (c->next != NULL) {
            c->next->prev = c;
        }
        s->conns = c;
        s->nconns++;
        s->connections++;
    }
}

/* ---- set-up ---- */

/* "40000-40099", "40000,40002" or a mix: appends to ports[]. */
static int
parse_ports(const char *spec, uint16_t *ports, size_t *n)
{
    const char *p = spec;
    char *end;
    long lo, hi, i;

    while (*p) {
        lo = strtol(p, &end, 10);
        hi = lo;
        if (end == p) {
            return -1;
        }
        if (*end == '-') {
            p = end + 1;
            hi = strtol(p, &end, 10);
            if (end == p) {
                return -1;
            }
        }
        if (lo < 1 || hi > 65535 || hi < lo || (size_t)(hi - lo + 1) > MAX_PORTS - *n) {
            return -1;
        }
        for (i = lo; i <= hi; i++) {
            ports[(*n)++] = (uint16_t)i;
        }
        if (*end == ',') {
            end++;
        } else if (*end != '\0') {
            return -1;
        }
        p = end;
    }
    return *n > 0 ? 0 : -1;
}

static int
listen_all(struct sink *s, const char *host, const uint16_t *want, size_t n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct epoll_event ev;
    socklen_t sl;
    size_t i;
    int one = 1;

    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "tocsin-whsink: bad --host %s (want an IPv4 address)\n", host);
        return -1;
    }
    s->ports = xcalloc(n, sizeof(*s->ports));
    for (i = 0; i < n; i++) {
        struct port *pt = &s->ports[s->nports];

        pt->kind = K_PORT;
        pt->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (pt->fd < 0) {
            perror("tocsin-whsink: socket");
            return -1;
        }
        s->nports++;
        setsockopt(pt->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        sa.sin_port = htons(want[i]);
        sl = sizeof(sa);
        if (bind(pt->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
            listen(pt->fd, LISTEN_BACKLOG) != 0 ||
            getsockname(pt->fd, (struct sockaddr *)&sa, &sl) != 0) {
            fprintf(stderr, "tocsin-whsink: cannot listen on %s:%u: %s\n", host, want[i],
                    strerror(errno));
            return -1;
        }
        pt->port = ntohs(sa.sin_port);
        ev.events = EPOLLIN;
        ev.data.ptr = pt;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, pt->fd, &ev) != 0) {
            perror("tocsin-whsink: epoll_ctl");
            return -1;
        }
    }
    return 0;
}

static void
usage(void)
{
    fputs("usage: tocsin-whsink (--ports LIST | --count N [--base-port P]) [options]\n"
          "  --ports LIST       ports to listen on: 40000-40099 or 40000,40005 or a mix\n"
          "  --count N          N ports from --base-port P on, or N ports the kernel picks\n"
          "  --host A           IPv4 address to listen on (default 127.0.0.1)\n"
          "  --ready FILE       write {\"ports\":[...]} to FILE once listening\n"
          "  --expect N         stop once N requests were answered 2xx (after --linger)\n"
          "  --linger S         seconds to go on after --expect, to catch late duplicates\n"
          "  --duration S       stop after S seconds in any case (default: no bound)\n"
          "  --status CODE      answer every POST with CODE (default 204)\n"
          "  --fail-every K     answer every K-th request with --fail-status instead\n"
          "  --fail-status CODE the failure answer of --fail-every (default 500)\n"
          "  --log FILE         one JSON line per request: port, status, rx_us, id,\n"
          "                     timestamp, signature, body (bytes >= 0x80 as \\u00XX)\n"
          "  --max-ids N        webhook-ids and latency samples kept (default 4194304)\n"
          "  --selftest         check the request parser, then exit\n"
          "  --verbose          log each malformed request to stderr\n"
          "Prints one JSON summary line on SIGTERM/SIGINT, --expect or --duration; exits 0\n"
          "when nothing was malformed or duplicated and --expect (if given) was reached.\n",
          stderr);
}

static int
parse_opts(int argc, char **argv, struct opts *o, bool *verbose, bool *selftest)
{
    static const struct option longopts[] = {
        {"ports", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'n'},
        {"base-port", required_argument, NULL, 'b'},
        {"host", required_argument, NULL, 'H'},
        {"ready", required_argument, NULL, 'r'},
        {"expect", required_argument, NULL, 'e'},
        {"linger", required_argument, NULL, 'l'},
        {"duration", required_argument, NULL, 'd'},
        {"status", required_argument, NULL, 's'},
        {"fail-every", required_argument, NULL, 'f'},
        {"fail-status", required_argument, NULL, 'F'},
        {"log", required_argument, NULL, 'L'},
        {"max-ids", required_argument, NULL, 'm'},
        {"selftest", no_argument, NULL, 'X'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    o->host = "127.0.0.1";
    o->status = 204;
    o->fail_status = 500;
    o->max_ids = DEFAULT_ID_CAP;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            o->ports = optarg;
            break;
        case 'n':
            o->count = strtol(optarg, NULL, 10);
            break;
        case 'b':
            o->base_port = strtol(optarg, NULL, 10);
            break;
        case 'H':
            o->host = optarg;
            break;
        case 'r':
            o->ready = optarg;
            break;
        case 'e':
            o->expect = strtoll(optarg, NULL, 10);
            break;
        case 'l':
            o->linger_s = strtod(optarg, NULL);
            break;
        case 'd':
            o->duration_s = strtod(optarg, NULL);
            break;
        case 's':
            o->status = (int)strtol(optarg, NULL, 10);
            break;
        case 'f':
            o->fail_every = strtoll(optarg, NULL, 10);
            break;
        case 'F':
            o->fail_status = (int)strtol(optarg, NULL, 10);
            break;
        case 'L':
            o->log = optarg;
            break;
        case 'm':
            o->max_ids = strtoll(optarg, NULL, 10);
            break;
        case 'X':
            *selftest = true;
            break;
        case 'v':
            *verbose = true;
            break;
        default:
            usage();
            return -1;
        }
    }
    if (*selftest) {
        return 0;
    }
    if ((o->ports == NULL) == (o->count <= 0) || o->count > MAX_PORTS || o->base_port < 0 ||
        o->base_port + o->count - 1 > 65535 || o->expect < 0 || o->linger_s < 0 ||
        o->duration_s < 0 || o->status < 100 || o->status > 599 || o->fail_status < 100 ||
        o->fail_status > 599 || o->fail_every < 0 || o->max_ids < 1 || o->max_ids > (1ll << 26) ||
        optind != argc) {
        usage();
        return -1;
    }
    return 0;
}

static void
raise_nofile(rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The loop: until a signal, --duration, or --expect plus --linger. Returns
 * true when --duration ended it. */
static bool
run(struct sink *s, const struct opts *o)
{
    struct epoll_event evs[256];
    uint64_t start = mono_us(), now, done_at = 0;
    int nev, i;

    while (!g_stop) {
        now = mono_us();
        if (o->duration_s > 0 && now - start >= (uint64_t)(o->duration_s * 1e6)) {
            return true;
        }
        if (s->expect > 0 && s->deliveries >= s->expect) {
            done_at = done_at ? done_at : now;
            if (now - done_at >= (uint64_t)(o->linger_s * 1e6)) {
                break;
            }
        }
        nev = epoll_wait(s->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 50);
        if (nev < 0 && errno != EINTR) {
            perror("tocsin-whsink: epoll_wait");
            break;
        }
        for (i = 0; i < nev; i++) {
            if (*(enum kind *)evs[i].data.ptr == K_PORT) {
                accept_all(s, evs[i].data.ptr);
            } else {
                conn_event(s, evs[i].data.ptr, evs[i].events);
            }
        }
    }
    return false;
}

/* ---- self-test ---- */

struct parse_case {
    const char *name; /* the rule the row covers */
    const char *text;
    int want; /* parse_request's result on the whole text; 1: total = strlen(text) */
    const char *want_id;
    bool keep_alive;
};

static int
selftest(void)
{
    static const struct parse_case cases[] = {
        {"plain POST",
         "POST /hook HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nwebhook-id: 7-x\r\n\r\n{}", 1,
         "7-x", true},
        {"header names are case-insensitive, values trimmed",
         "POST / HTTP/1.1\r\nCONTENT-LENGTH:  1 \r\nWebHook-Id:\tab \r\n\r\nz", 1, "ab", true},
        {"no Content-Length: no body", "POST / HTTP/1.1\r\n\r\n", 1, "", true},
        {"Connection: close", "POST / HTTP/1.1\r\nConnection: Close\r\n\r\n", 1, "", false},
        {"HTTP/1.0 closes by default", "POST / HTTP/1.0\r\n\r\n", 1, "", false},
        {"HTTP/1.0 keep-alive", "POST / HTTP/1.0\r\nConnection: x, keep-alive\r\n\r\n", 1, "",
         true},
        {"GET parses (answered 405)", "GET / HTTP/1.1\r\n\r\n", 1, "", true},
        {"body still missing", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 0, NULL, false},
        {"head still missing", "POST / HTTP/1.1\r\nContent-Le", 0, NULL, false},
        {"body of exactly 1 MB is allowed (still arriving)",
         "POST / HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n", 0, NULL, false},
        {"body of 1 MB + 1", "POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n", -413, NULL,
         false},
        {"huge Content-Length saturates, no overflow",
         "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", -413, NULL, false},
        {"two different Content-Lengths",
         "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", -400, NULL, false},
        {"Content-Length not a number", "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", -400, NULL,
         false},
        {"empty Content-Length", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", -400, NULL, false},
        {"chunked is not spoken", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", -501,
         NULL, false},
        {"header without colon", "POST / HTTP/1.1\r\nbroken\r\n\r\n", -400, NULL, false},
        {"obsolete line folding", "POST / HTTP/1.1\r\na: b\r\n c\r\n\r\n", -400, NULL, false},
        {"request line without target", "POST HTTP/1.1\r\n\r\n", -400, NULL, false},
        {"HTTP/2 request line", "POST / HTTP/2.0\r\n\r\n", -505, NULL, false},
    };
    static const char first[] = "POST /a HTTP/1.1\r\nContent-Length: 3\r\nwebhook-id: 1\r\n\r\nabc";
    static const char second[] = "POST /b HTTP/1.1\r\nContent-Length: 0\r\nwebhook-id: 2\r\n\r\n";
    char two[sizeof(first) + sizeof(second)];
    char *big;
    uint16_t ports[MAX_PORTS];
    size_t i, n, off, k;
    struct req r;
    struct idtab t = {.max = 2};
    struct idslot *slot;
    bool found;
    int fails = 0, total = 0, rc;

#define CHECK(cond, ...)                               \
    do {                                               \
        total++;                                       \
        if (!(cond)) {                                 \
            fails++;                                   \
            fprintf(stderr, "selftest: " __VA_ARGS__); \
            fputc('\n', stderr);                       \
        }                                              \
    } while (0)

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct parse_case *pc = &cases[i];

        rc = parse_request(pc->text, strlen(pc->text), &r);
        CHECK(rc == pc->want, "%s: got %d, want %d", pc->name, rc, pc->want);
        if (rc == 1 && pc->want == 1) {
            CHECK(r.total == strlen(pc->text), "%s: total %zu", pc->name, r.total);
            CHECK(r.id_len == strlen(pc->want_id) &&
                      (r.id_len == 0 || memcmp(r.id, pc->want_id, r.id_len) == 0),
                  "%s: webhook-id", pc->name);
            CHECK(r.keep_alive == pc->keep_alive, "%s: keep-alive", pc->name);
        }
    }

    /* Pipelining and partial reads: every prefix of two requests parses as
     * "need more" until the first is whole; then the rest parses alone. */
    snprintf(two, sizeof(two), "%s%s", first, second);
    n = strlen(two);
    for (k = 0; k < n; k++) {
        rc = parse_request(two, k, &r);
        if (k < sizeof(first) - 1) {
            CHECK(rc == 0, "pipelined prefix %zu: got %d", k, rc);
        } else {
            CHECK(rc == 1 && r.total == sizeof(first) - 1 && r.body_len == 3 &&
                      memcmp(r.body, "abc", 3) == 0,
                  "pipelined prefix %zu: got %d total %zu", k, rc, r.total);
        }
    }
    for (off = 0, k = 0; off < n; off += r.total, k++) {
        rc = parse_request(two + off, n - off, &r);
        CHECK(rc == 1 && r.id_len == 1 && r.id[0] == (char)('1' + k), "pipelined request %zu", k);
        if (rc != 1) {
            break;
        }
    }
    CHECK(k == 2, "pipelined: %zu requests, want 2", k);

    /* A head that does not end within HDR_MAX. */
    big = xcalloc(1, HDR_MAX + 1);
    memcpy(big, "POST / HTTP/1.1\r\nx: ", 20);
    memset(big + 20, 'a', HDR_MAX - 20);
    CHECK(parse_request(big, HDR_MAX - 1, &r) == 0, "head of HDR_MAX - 1 bytes: need more");
    CHECK(parse_request(big, HDR_MAX, &r) == -431, "head of HDR_MAX bytes: 431");
    free(big);

    CHECK(scan_bench_ts("{\"a\":1,\"bench_ts_us\" : 1700000000123456}", 39) == 1700000000123456ull,
          "bench_ts_us scan");
    CHECK(scan_bench_ts("{\"bench_ts_us\":\"x\"}", 19) == 0, "bench_ts_us not a number");
    CHECK(scan_bench_ts("{\"bench_ts\":5}", 14) == 0, "bench_ts_us absent");

    n = 0;
    CHECK(parse_ports("40000-40002,40010", ports, &n) == 0 && n == 4 && ports[3] == 40010,
          "ports list");
    n = 0;
    CHECK(parse_ports("40002-40000", ports, &n) != 0, "reversed range refused");
    n = 0;
    CHECK(parse_ports("1-2000", ports, &n) != 0, "more than MAX_PORTS refused");
    n = 0;
    CHECK(parse_ports("40000,", ports, &n) == 0 && n == 1, "trailing comma");
    n = 0;
    CHECK(parse_ports("4x", ports, &n) != 0, "junk refused");

    slot = idtab_get(&t, "1-a", 3, &found);
    CHECK(slot != NULL && !found, "first id is new");
    slot->delivered = 1;
    slot = idtab_get(&t, "1-a", 3, &found);
    CHECK(slot != NULL && found && slot->delivered, "same id found again");
    CHECK(idtab_get(&t, "1-b", 3, &found) != NULL && !found, "second id");
    CHECK(idtab_get(&t, "1-c", 3, &found) == NULL && !found, "past --max-ids: not kept");
    CHECK(idtab_get(&t, "1-b", 3, &found) != NULL && found, "kept ids still found at the bound");
    free(t.slots);
    free(t.arena);
#undef CHECK

    printf("%d passed, %d failed\n", total - fails, fails);
    return fails ? 1 : 0;
}

int
main(int argc, char **argv)
{
    struct opts o = {0};
    struct sink s = {.epfd = -1};
    struct sigaction sa = {0};
    uint16_t want[MAX_PORTS];
    size_t nwant = 0, i;
    bool selftest_only = false, timed_out;
    int rc = 2;

    if (parse_opts(argc, argv, &o, &s.verbose, &selftest_only) != 0) {
        return 2;
    }
    if (selftest_only) {
        return selftest();
    }
    if (o.ports != NULL && parse_ports(o.ports, want, &nwant) != 0) {
        fprintf(stderr, "tocsin-whsink: bad --ports %s (at most %d ports)\n", o.ports, MAX_PORTS);
        return 2;
    }
    for (i = 0; o.ports == NULL && i < (size_t)o.count; i++) {
        /* Without --base-port, port 0: the kernel picks a free one each. */
        want[nwant++] = o.base_port > 0 ? (uint16_t)(o.base_port + (long)i) : 0;
    }
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(MAX_CONNS + MAX_PORTS + 64);
    s.status = o.status;
    s.fail_status = o.fail_status;
    s.fail_every = (uint64_t)o.fail_every;
    s.expect = (uint64_t)o.expect;
    s.ids.max = (size_t)o.max_ids;
    s.lat_cap = (size_t)o.max_ids;
    s.lat = xcalloc(s.lat_cap, sizeof(*s.lat));
    if (o.log != NULL) {
        s.log = fopen(o.log, "w");
        if (s.log == NULL) {
            fprintf(stderr, "tocsin-whsink: cannot write %s: %s\n", o.log, strerror(errno));
            goto out;
        }
        setvbuf(s.log, NULL, _IOFBF, 1 << 16);
    }
    s.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s.epfd < 0) {
        perror("tocsin-whsink: epoll_create1");
        goto out;
    }
    if (listen_all(&s, o.host, want, nwant) != 0) {
        goto out;
    }
    if (o.ready != NULL && write_ready(&s, o.ready) != 0) {
        fprintf(stderr, "tocsin-whsink: cannot write %s\n", o.ready);
        goto out;
    }
    timed_out = run(&s, &o);
    if (s.log != NULL && fflush(s.log) != 0) {
        fprintf(stderr, "tocsin-whsink: cannot write %s\n", o.log);
    }
    report(&s, timed_out);
    rc = s.bad_requests == 0 && s.duplicates == 0 && (s.expect == 0 || s.deliveries >= s.expect)
             ? 0
             : 1;
out:
    while (s.conns != NULL) {
        s.conns->closing = true; /* half a request at exit is not the peer's fault */
        conn_close(&s, s.conns);
    }
    for (i = 0; i < s.nports; i++) {
        close(s.ports[i].fd);
    }
    free(s.ports);
    free(s.ids.slots);
    free(s.ids.arena);
    free(s.lat);
    if (s.log != NULL) {
        fclose(s.log);
    }
    if (s.epfd >= 0) {
        close(s.epfd);
    }
    return rc;
}
