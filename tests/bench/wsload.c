/* tocsin — SPDX-License-Identifier: MIT
 *
 * tocsin-wsload: options, the epoll loop, the connect pacing, the ready file
 * and the one JSON result line. N sessions per process (one process may open
 * at most 20,000 files, so fanout.py runs several). Sessions live in
 * wsload_ws.c. No threads; no library but libc and libcrypto (SHA-1, base64).
 * --peer raw times a plain pub/sub server (nchan, node ws) the same way.
 * --filters, --check, --drop-after, SIGUSR1 and --churn serve the burst,
 * reconnect storm and soak scenarios.
 */
#include "wsload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* A process holds at most this many sessions: the fd limit of the test
 * machines is 20,000 and a few fds are the loop's own. */
#define MAX_SESSIONS 19900
/* Source addresses given with --source-ips; more are ignored. */
#define MAX_SRCS 64
/* Error reasons printed to stderr without --verbose; later ones are only counted. */
#define MAX_QUIET_LOGS 20
/* Latency samples kept without --expect (with it: sessions * expect). */
#define DEFAULT_LAT_CAP (4u << 20)

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_reconnect;
static unsigned g_logged;

struct opts {
    const char *url;
    const char *ready_file;
    const char *done_file;
    const char *samples_file;
    const char *filters_file;
    const char *dropped_file;
    char *source_ips;
    long sessions;
    double connect_rate;
    double duration_s;
    double connect_timeout_s;
    long expect;
    long drop_after;
    double churn_pct;
    enum wl_peer peer;
    bool idle;
};

uint64_t
wl_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
wl_wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void *
wl_xmalloc(size_t n)
{
    void *p = calloc(1, n);

    if (p == NULL) {
        fprintf(stderr, "tocsin-wsload: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void
wl_log(struct wl_ctx *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->verbose && g_logged >= MAX_QUIET_LOGS) {
        return;
    }
    g_logged++;
    fputs("tocsin-wsload: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
on_signal(int sig)
{
    if (sig == SIGUSR1) {
        g_reconnect = 1;
    } else {
        g_stop = 1;
    }
}

static void
usage(void)
{
    fputs("usage: tocsin-wsload --url ws://HOST:PORT/PATH?QUERY [options]\n"
          "  --sessions N         sessions in this process (default 100, at most 19900)\n"
          "  --source-ips A,B,..  bind each socket to these source addresses, rotating\n"
          "  --connect-rate R     new connections per second (default 2000)\n"
          "  --connect-timeout S  seconds a session has to get its 101 (default 20)\n"
          "  --expect K           stop when every session got K updates\n"
          "  --duration S         stop after S seconds in any case (default 60)\n"
          "  --ready-file F       write F once every session got welcome + snapshot\n"
          "  --done-file F        with --expect: write F once every session got K updates\n"
          "                       (or ended), then hold the sessions until a signal or\n"
          "                       --duration, so the server's CPU can be read before\n"
          "                       the sessions close\n"
          "  --samples-file F     write every latency sample (microseconds, one a line)\n"
          "  --idle               only hold the sessions (ignore --expect) until a signal\n"
          "                       or --duration\n"
          "  --peer tocsin|raw    tocsin (default): subprotocol tocsin.v1, ready after\n"
          "                       welcome + snapshot; raw: no subprotocol, ready on the\n"
          "                       101, every text message is an update (nchan, node ws)\n"
          "  --filters F          one session class a line, \"EXPECT QUERY\": session i\n"
          "                       takes line i mod lines, adds QUERY to the URL's and must\n"
          "                       get EXPECT updates (0: none due)\n"
          "  --check              check incident.bench_c of every update: per incident\n"
          "                       slot (\"i\") its filter's counter is 1 first, then +1\n"
          "                       (else gaps, duplicates); absent: a foreign incident\n"
          "  --drop-after N       once every session got N updates, drop them all (no\n"
          "                       close frame), write --dropped-file and wait for SIGUSR1\n"
          "  --dropped-file F     written when --drop-after dropped the sessions\n"
          "                       SIGUSR1: reconnect every dropped session at once with\n"
          "                       since + epoch (or drop and reconnect every open one)\n"
          "  --churn PCT          resume PCT percent of the sessions per minute with since\n"
          "  --resume-on-close    a server close resumes with since (not an error)\n"
          "  --selftest           check the JSON scan and the accept key, then exit\n"
          "  --verbose            log every session error\n",
          stderr);
}

static int
parse_opts(int argc, char **argv, struct opts *o, struct wl_ctx *c, bool *selftest)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"sessions", required_argument, NULL, 'n'},
        {"source-ips", required_argument, NULL, 's'},
        {"connect-rate", required_argument, NULL, 'r'},
        {"connect-timeout", required_argument, NULL, 'T'},
        {"expect", required_argument, NULL, 'k'},
        {"duration", required_argument, NULL, 'd'},
        {"ready-file", required_argument, NULL, 'f'},
        {"done-file", required_argument, NULL, 'D'},
        {"samples-file", required_argument, NULL, 'S'},
        {"idle", no_argument, NULL, 'i'},
        {"peer", required_argument, NULL, 'p'},
        {"filters", required_argument, NULL, 'F'},
        {"check", no_argument, NULL, 'C'},
        {"drop-after", required_argument, NULL, 'A'},
        {"dropped-file", required_argument, NULL, 'P'},
        {"churn", required_argument, NULL, 'c'},
        {"resume-on-close", no_argument, NULL, 'R'},
        {"selftest", no_argument, NULL, 'X'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    o->sessions = 100;
    o->connect_rate = 2000;
    o->duration_s = 60;
    o->connect_timeout_s = 20;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o->url = optarg;
            break;
        case 'n':
            o->sessions = strtol(optarg, NULL, 10);
            break;
        case 's':
            o->source_ips = optarg;
            break;
        case 'r':
            o->connect_rate = strtod(optarg, NULL);
            break;
        case 'T':
            o->connect_timeout_s = strtod(optarg, NULL);
            break;
        case 'k':
            o->expect = strtol(optarg, NULL, 10);
            break;
        case 'd':
            o->duration_s = strtod(optarg, NULL);
            break;
        case 'f':
            o->ready_file = optarg;
            break;
        case 'D':
            o->done_file = optarg;
            break;
        case 'S':
            o->samples_file = optarg;
            break;
        case 'i':
            o->idle = true;
            break;
        case 'p':
            if (strcmp(optarg, "tocsin") == 0) {
                o->peer = WL_PEER_TOCSIN;
            } else if (strcmp(optarg, "raw") == 0) {
                o->peer = WL_PEER_RAW;
            } else {
                usage();
                return -1;
            }
            break;
        case 'F':
            o->filters_file = optarg;
            break;
        case 'C':
            c->check = true;
            break;
        case 'A':
            o->drop_after = strtol(optarg, NULL, 10);
            break;
        case 'P':
            o->dropped_file = optarg;
            break;
        case 'c':
            o->churn_pct = strtod(optarg, NULL);
            break;
        case 'R':
            c->resume_on_close = true;
            break;
        case 'X':
            *selftest = true;
            break;
        case 'v':
            c->verbose = true;
            break;
        default:
            usage();
            return -1;
        }
    }
    if (*selftest) {
        return 0;
    }
    if (o->url == NULL || o->sessions < 1 || o->sessions > MAX_SESSIONS || o->connect_rate <= 0 ||
        o->duration_s <= 0 || o->expect < 0 || o->expect > 1000000 || o->connect_timeout_s <= 0 ||
        o->drop_after < 0 || o->churn_pct < 0 || o->churn_pct > 6000 ||
        (o->done_file != NULL && ((o->expect == 0 && o->filters_file == NULL) || o->idle))) {
        usage();
        return -1;
    }
    return 0;
}

/* ws://HOST:PORT/PATH -> c->dst, c->host, c->path. Only IPv4 literals. */
static int
parse_url(struct wl_ctx *c, const char *url)
{
    const char *hp, *slash, *colon;
    char host[64];
    long port = 80;
    size_t hl;

    if (strncmp(url, "ws://", 5) != 0) {
        return -1;
    }
    hp = url + 5;
    slash = strchr(hp, '/');
    slash = slash ? slash : hp + strlen(hp);
    colon = memchr(hp, ':', (size_t)(slash - hp));
    hl = (size_t)((colon ? colon : slash) - hp);
    if (hl == 0 || hl >= sizeof(host) || (size_t)(slash - hp) >= sizeof(c->host)) {
        return -1;
    }
    memcpy(host, hp, hl);
    host[hl] = '\0';
    if (colon) {
        port = strtol(colon + 1, NULL, 10);
    }
    c->dst.sin_family = AF_INET;
    c->dst.sin_port = htons((uint16_t)port);
    if (port < 1 || port > 65535 || inet_pton(AF_INET, host, &c->dst.sin_addr) != 1) {
        return -1;
    }
    memcpy(c->host, hp, (size_t)(slash - hp));
    c->host[slash - hp] = '\0';
    snprintf(c->path, sizeof(c->path), "%s", *slash ? slash : "/");
    return 0;
}

static int
parse_srcs(struct wl_ctx *c, char *list)
{
    char *tok, *save = NULL;

    c->srcs = wl_xmalloc(MAX_SRCS * sizeof(*c->srcs));
    for (tok = strtok_r(list, ",", &save); tok && c->nsrcs < MAX_SRCS;
         tok = strtok_r(NULL, ",", &save)) {
        if (inet_pton(AF_INET, tok, &c->srcs[c->nsrcs]) != 1) {
            fprintf(stderr, "tocsin-wsload: bad source address %s\n", tok);
            return -1;
        }
        c->nsrcs++;
    }
    return 0;
}

/* --filters: one "EXPECT QUERY" a line; blank lines and # comments skipped. */
static int
parse_filters(struct wl_ctx *c, const char *path)
{
    char line[1024], *q, *end;
    unsigned long expect;
    FILE *f = fopen(path, "r");
    int rc = -1;

    if (f == NULL) {
        fprintf(stderr, "tocsin-wsload: cannot read %s\n", path);
        return -1;
    }
    c->filters = wl_xmalloc(WL_MAX_FILTERS * sizeof(*c->filters));
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#') {
            continue;
        }
        expect = strtoul(line, &end, 10);
        q = end + strspn(end, " \t");
        if (end == line || expect > 1000000 || strlen(q) >= sizeof(c->filters[0].query) ||
            c->nfilters == WL_MAX_FILTERS) {
            fprintf(stderr, "tocsin-wsload: %s: bad line (want \"EXPECT QUERY\", at most %d)\n",
                    path, WL_MAX_FILTERS);
            goto out;
        }
        c->filters[c->nfilters].expect = (uint32_t)expect;
        snprintf(c->filters[c->nfilters].query, sizeof(c->filters[0].query), "%s", q);
        c->nfilters++;
    }
    rc = c->nfilters > 0 ? 0 : -1;
    if (rc != 0) {
        fprintf(stderr, "tocsin-wsload: %s has no filter\n", path);
    }
out:
    fclose(f);
    return rc;
}

static void
raise_nofile(long want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)want) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)want ? rl.rlim_max : (rlim_t)want;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Writes {"<key>":n,"failed":failed} to path (the ready and done files). */
static void
write_counts(struct wl_ctx *c, const char *path, const char *key, uint64_t n, uint64_t failed)
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        wl_log(c, "cannot write %s", tmp);
        return;
    }
    fprintf(f, "{\"%s\":%llu,\"failed\":%llu}\n", key, (unsigned long long)n,
            (unsigned long long)failed);
    /* rename() makes the file appear whole, so the reader never sees half. */
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        wl_log(c, "cannot write %s", path);
    }
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
report(struct wl_ctx *c, const struct opts *o, uint64_t start_us, const char *samples_file)
{
    size_t n = c->lat_len, i;
    bool have = n > 0;
    double p50 = 0, p99 = 0;
    FILE *f;

    if (have) {
        qsort(c->lat, n, sizeof(*c->lat), cmp_u32);
        p50 = c->lat[(n - 1) / 2] / 1000.0;
        p99 = c->lat[(size_t)((double)(n - 1) * 0.99)] / 1000.0;
    }
    if (samples_file != NULL && (f = fopen(samples_file, "w")) != NULL) {
        for (i = 0; i < n; i++) {
            fprintf(f, "%u\n", c->lat[i]);
        }
        fclose(f);
    }
    printf("{\"sessions\":%ld,\"connected\":%llu,\"ready\":%llu", o->sessions,
           (unsigned long long)c->connected, (unsigned long long)c->ready);
    print_ms("connect_s", c->last_ready_us > 0, (double)(c->last_ready_us - start_us) / 1e6);
    printf(",\"updates\":%llu", (unsigned long long)c->updates);
    print_ms("p50_ms", have, p50);
    print_ms("p99_ms", have, p99);
    print_ms("max_ms", have, (double)c->lat_max_us / 1000.0);
    print_ms("last_ms", have, (double)(c->last_rx_us - c->first_ts_us) / 1000.0);
    printf(",\"errors\":%llu,\"server_closes\":%llu,\"sessions_done\":%llu,\"samples_dropped\":%llu"
           ",\"first_ts_us\":%llu,\"first_rx_us\":%llu,\"last_rx_us\":%llu",
           (unsigned long long)c->errors, (unsigned long long)c->server_closes,
           (unsigned long long)c->sessions_done, (unsigned long long)c->lat_dropped,
           (unsigned long long)c->first_ts_us, (unsigned long long)c->first_rx_us,
           (unsigned long long)c->last_rx_us);
    printf(",\"gaps\":%llu,\"dups\":%llu,\"foreign\":%llu,\"unchecked\":%llu,\"resets\":%llu"
           ",\"epoch_changes\":%llu,\"reconnects\":%llu,\"rewelcomed\":%llu"
           ",\"resumed_closes\":%llu,\"trigger_us\":%llu,\"rewelcome_us\":%llu"
           ",\"caught_up_us\":%llu",
           (unsigned long long)c->gaps, (unsigned long long)c->dups, (unsigned long long)c->foreign,
           (unsigned long long)c->unchecked, (unsigned long long)c->resets,
           (unsigned long long)c->epoch_changes, (unsigned long long)c->reconnects,
           (unsigned long long)c->rewelcomed, (unsigned long long)c->resumed_closes,
           (unsigned long long)c->trigger_us, (unsigned long long)c->rewelcome_us,
           (unsigned long long)c->caught_up_us);
    printf(",\"catchup_hist\":[");
    for (i = 0; i < WL_CATCHUP_BUCKETS; i++) {
        printf("%s%llu", i ? "," : "", (unsigned long long)c->catchup_hist[i]);
    }
    printf("]");
    /* [bench_ts_us, first receive, last receive] of each session's k-th update. */
    printf(",\"per_update\":[");
    for (i = 0; i < c->upd_tracked && c->upd_ts[i] != 0; i++) {
        printf("%s[%llu,%llu,%llu]", i ? "," : "", (unsigned long long)c->upd_ts[i],
               (unsigned long long)c->upd_first[i], (unsigned long long)c->upd_last[i]);
    }
    printf("]}\n");
    fflush(stdout);
}

/* Closes sessions whose connect or handshake takes longer than allowed. */
static void
reap_slow(struct wl_ctx *c, struct wl_session *ss, long n, uint64_t now)
{
    long i;

    for (i = 0; i < n; i++) {
        if ((ss[i].state == WL_CONNECTING || ss[i].state == WL_HANDSHAKE) &&
            now > ss[i].started_us && now - ss[i].started_us > c->connect_timeout_us) {
            wl_session_close(c, &ss[i], true, "connect/handshake timed out");
        }
    }
}

/* Sessions that got at least n updates, or ended. */
static long
count_at(const struct wl_session *ss, long n, uint32_t k)
{
    long i, got = 0;

    for (i = 0; i < n; i++) {
        got += ss[i].updates >= k || ss[i].state == WL_DEAD;
    }
    return got;
}

static void
drop_all(struct wl_ctx *c, struct wl_session *ss, long n)
{
    long i;

    for (i = 0; i < n; i++) {
        wl_session_drop(c, &ss[i]);
    }
}

/* SIGUSR1: every session not open is started again (with since once it had
 * a welcome); an open one is dropped first. All at once: that is the storm. */
static void
reconnect_all(struct wl_ctx *c, struct wl_session *ss, long n)
{
    long i;

    c->trigger_us = wl_wall_us();
    for (i = 0; i < n; i++) {
        if (ss[i].state == WL_OPEN) {
            wl_session_resume(c, &ss[i]);
        } else if (ss[i].state == WL_IDLE) {
            c->reconnects++;
            (void)wl_session_start(c, &ss[i]);
        }
    }
}

/* --churn: resumes the next open, ready session in turn. */
static void
churn_one(struct wl_ctx *c, struct wl_session *ss, long n, long *next)
{
    long tried;

    for (tried = 0; tried < n; tried++) {
        struct wl_session *s = &ss[(*next)++ % n];

        if (s->state == WL_OPEN && s->ready_counted && s->welcomed) {
            wl_session_resume(c, s);
            return;
        }
    }
}

static void
run(struct wl_ctx *c, const struct opts *o, struct wl_session *ss)
{
    struct epoll_event evs[512];
    uint64_t start = wl_mono_us(), now, due, last_reap = start, last_drop_check = 0;
    uint64_t ready_at = 0, churned = 0;
    long next = 0, churn_next = 0, i;
    int nev, timeout_ms;
    bool ready_written = false, done_written = false, dropped = false;

    for (;;) {
        now = wl_mono_us();
        /* Pacing: by now, (elapsed * rate) + 1 connections may have started. */
        due = (uint64_t)((double)(now - start) / 1e6 * o->connect_rate) + 1;
        while (next < o->sessions && (uint64_t)next < due) {
            (void)wl_session_start(c, &ss[next++]);
        }
        if (now - last_reap > 100000) {
            reap_slow(c, ss, next, now);
            last_reap = now;
        }
        if (g_reconnect) {
            g_reconnect = 0;
            reconnect_all(c, ss, next);
        }
        if (o->drop_after > 0 && !dropped && ready_written && now - last_drop_check > 5000) {
            last_drop_check = now;
            if (count_at(ss, o->sessions, (uint32_t)o->drop_after) >= o->sessions) {
                drop_all(c, ss, o->sessions);
                dropped = true;
                if (o->dropped_file) {
                    write_counts(c, o->dropped_file, "dropped", (uint64_t)o->sessions, c->dead);
                }
            }
        }
        if (ready_written && o->churn_pct > 0) {
            /* Paced like the connects: sessions * pct / 100 per minute. */
            due = (uint64_t)((double)(now - ready_at) / 60e6 * o->churn_pct / 100.0 *
                             (double)o->sessions);
            while (churned < due) {
                churn_one(c, ss, o->sessions, &churn_next);
                churned++;
            }
        }
        if (next == o->sessions && c->ready + c->dead_unready >= (uint64_t)o->sessions) {
            if (!ready_written && o->ready_file) {
                write_counts(c, o->ready_file, "ready", c->ready, c->dead_unready);
            }
            if (!ready_written) {
                ready_at = now;
            }
            ready_written = true;
            if (!o->idle && (o->expect > 0 || c->nfilters > 0) &&
                c->sessions_done + c->dead_undone >= (uint64_t)o->sessions) {
                if (o->done_file == NULL) {
                    break;
                }
                /* Hold the sessions: closing them now would make the server
                 * spend CPU on the closes inside the window being measured. */
                if (!done_written) {
                    write_counts(c, o->done_file, "done", c->sessions_done, c->dead_undone);
                    done_written = true;
                }
            }
        }
        if (g_stop || now - start >= (uint64_t)(o->duration_s * 1e6)) {
            break;
        }
        if (c->dead >= (uint64_t)o->sessions) {
            break; /* nothing left to wait for */
        }
        timeout_ms = next < o->sessions ? 1 : o->churn_pct > 0 ? 10 : 50;
        nev = epoll_wait(c->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout_ms);
        if (nev < 0 && errno != EINTR) {
            perror("tocsin-wsload: epoll_wait");
            break;
        }
        for (i = 0; i < nev; i++) {
            wl_session_event(c, evs[i].data.ptr, evs[i].events);
        }
    }
    report(c, o, start, o->samples_file);
}

static int
selftest(void)
{
    static const char *msg =
        "{\"type\" : \"update\",\"sub\":\"default\",\"epoch\":\"e-1\",\"seq\":3,\"incident\":"
        "{\"title\":\"a \\\"}\\\" b\",\"path\":\"c:\\\\\",\"components\":[\"x\",{\"y\":[1,2]}],"
        "\"bench_ts_us\":"
        "1700000000123456,\"bench_c\":{\"0\":7,\"i\":5,\"12\":41},\"z\":null}}";
    struct wl_scan m = {0};
    char acc[32];
    int fails = 0, checks = 7;

    m.ctr_key = "12";
    if (wl_json_scan(msg, strlen(msg), &m) != 0 || strcmp(m.type, "update") != 0 ||
        m.ts != 1700000000123456ull || m.seq != 3 || strcmp(m.epoch, "e-1") != 0 || !m.has_ctrs ||
        m.ctr != 41 || m.reset) {
        fprintf(stderr, "selftest: update scan failed (type=%s ts=%llu ctr=%ld)\n", m.type,
                (unsigned long long)m.ts, m.ctr);
        fails++;
    }
    /* A filter index the incident does not carry: it did not match. */
    m.ctr_key = "1";
    if (wl_json_scan(msg, strlen(msg), &m) != 0 || !m.has_ctrs || m.ctr != -1) {
        fprintf(stderr, "selftest: absent counter not reported\n");
        fails++;
    }
    m.ctr_key = NULL;
    if (wl_json_scan("{\"type\":\"welcome\"}", 18, &m) != 0 || strcmp(m.type, "welcome") != 0 ||
        m.ts != 0 || m.seq != 0 || m.has_ctrs) {
        fprintf(stderr, "selftest: welcome scan failed\n");
        fails++;
    }
    if (wl_json_scan("{\"type\":\"snapshot\",\"seq\":9,\"reset\":true}", 40, &m) != 0 || !m.reset ||
        m.seq != 9) {
        fprintf(stderr, "selftest: snapshot reset not seen\n");
        fails++;
    }
    if (wl_json_scan("[1]", 3, &m) == 0 || wl_json_scan("{\"type\":\"upd", 12, &m) == 0) {
        fprintf(stderr, "selftest: malformed input accepted\n");
        fails++;
    }
    /* RFC 6455 section 1.3 example. */
    wl_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
    if (strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0) {
        fprintf(stderr, "selftest: accept key %s\n", acc);
        fails++;
    }
    /* tocsin.v1 counts only "update" as an update; a raw peer counts every
     * JSON object, and still refuses what is not one. */
    if (wl_classify(WL_PEER_TOCSIN, "{\"type\":\"welcome\"}", 18, &m) != WL_MSG_WELCOME ||
        wl_classify(WL_PEER_TOCSIN, msg, strlen(msg), &m) != WL_MSG_UPDATE ||
        wl_classify(WL_PEER_TOCSIN, "{\"type\":\"pong\"}", 15, &m) != WL_MSG_OTHER ||
        wl_classify(WL_PEER_RAW, "{\"type\":\"welcome\"}", 18, &m) != WL_MSG_UPDATE ||
        wl_classify(WL_PEER_RAW, msg, strlen(msg), &m) != WL_MSG_UPDATE ||
        m.ts != 1700000000123456ull || wl_classify(WL_PEER_RAW, "bench", 5, &m) != -1) {
        fprintf(stderr, "selftest: classify by peer failed\n");
        fails++;
    }
    printf("%d passed, %d failed\n", checks - fails, fails);
    return fails ? 1 : 0;
}

int
main(int argc, char **argv)
{
    struct opts o = {0};
    struct wl_ctx c = {0};
    struct wl_session *ss = NULL;
    struct sigaction sa = {0};
    bool selftest_only = false;
    int rc = 2;
    long i;

    if (parse_opts(argc, argv, &o, &c, &selftest_only) != 0) {
        return 2;
    }
    if (selftest_only) {
        return selftest();
    }
    if (parse_url(&c, o.url) != 0) {
        fprintf(stderr, "tocsin-wsload: bad --url %s (want ws://IPV4:PORT/PATH)\n", o.url);
        return 2;
    }
    if (o.source_ips && parse_srcs(&c, o.source_ips) != 0) {
        goto out;
    }
    if (o.filters_file && parse_filters(&c, o.filters_file) != 0) {
        goto out;
    }
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(o.sessions + 64);
    c.connect_timeout_us = (uint64_t)(o.connect_timeout_s * 1e6);
    c.peer = o.peer;
    c.expect = (uint32_t)o.expect;
    c.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (c.epfd < 0) {
        perror("tocsin-wsload: epoll_create1");
        goto out;
    }
    for (i = 0; i < (long)c.nfilters; i++) {
        o.expect = c.filters[i].expect > o.expect ? c.filters[i].expect : o.expect;
    }
    c.lat_cap = o.expect > 0 ? (size_t)o.sessions * (size_t)o.expect : DEFAULT_LAT_CAP;
    c.lat_cap = c.lat_cap > DEFAULT_LAT_CAP ? DEFAULT_LAT_CAP : c.lat_cap;
    c.lat = wl_xmalloc(c.lat_cap * sizeof(*c.lat));
    c.lat_stride = 1;
    c.upd_tracked = WL_MAX_TRACKED_UPDATES;
    c.upd_ts = wl_xmalloc(c.upd_tracked * sizeof(*c.upd_ts));
    c.upd_first = wl_xmalloc(c.upd_tracked * sizeof(*c.upd_first));
    c.upd_last = wl_xmalloc(c.upd_tracked * sizeof(*c.upd_last));
    ss = wl_xmalloc((size_t)o.sessions * sizeof(*ss));
    for (i = 0; i < o.sessions; i++) {
        ss[i].fd = -1;
        ss[i].filter = c.nfilters > 0 ? (uint16_t)(i % (long)c.nfilters) : 0;
        /* Pages of untouched buffers are not resident until a message lands there. */
        ss[i].rbuf = malloc(WL_RBUF_SIZE);
        if (ss[i].rbuf == NULL) {
            fprintf(stderr, "tocsin-wsload: out of memory\n");
            abort();
        }
    }
    run(&c, &o, ss);
    rc = c.errors + c.gaps + c.dups + c.foreign + c.unchecked + c.resets + c.epoch_changes == 0 ? 0
                                                                                                : 1;
out:
    if (ss != NULL) {
        for (i = 0; i < o.sessions; i++) {
            if (ss[i].fd >= 0) {
                close(ss[i].fd);
            }
            free(ss[i].rbuf);
        }
    }
    free(ss);
    free(c.lat);
    free(c.upd_ts);
    free(c.upd_first);
    free(c.upd_last);
    free(c.filters);
    free(c.srcs);
    if (c.epfd > 0) {
        close(c.epfd);
    }
    return rc;
}
