/* tocsin — SPDX-License-Identifier: MIT
 *
 * Shared fixture of the store tests: a real redis-server on a free loopback
 * port (started once per test group, stopped and its dir removed at the end),
 * a uv loop with a tc_config and a store per test (own key prefix, db 3),
 * helpers that apply events and wait, and follower callbacks that check
 * order. Functions are static inline so each test file uses what it needs.
 */
#ifndef TC_TEST_STORE_FIXTURE_H
#define TC_TEST_STORE_FIXTURE_H

#include "config/config.h"
#include "model/incident.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "util/util.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static pid_t redis_pid;
static int redis_port;
static char tmpdir[64];
static int prefix_seq;

/* ---- the redis-server ---- */

static inline int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static inline redisContext *
rc_connect(void)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);

    redisReply *r;

    if (c != NULL && c->err != 0) {
        redisFree(c);
        return NULL;
    }
    /* The store is configured with db 3: its keys must be there. */
    r = c != NULL ? redisCommand(c, "SELECT 3") : NULL;
    freeReplyObject(r);
    return c;
}

static inline int
group_setup(void **state)
{
    char port[16];

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/tocsin-test-store-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    redis_port = free_port();
    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    if (redis_pid == 0) {
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--dir", tmpdir, "--loglevel", "warning",
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        redisContext *c = rc_connect();
        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok) {
                return 0;
            }
        }
        usleep(50 * 1000);
    }
    return -1;
}

static inline int
group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    if (redis_pid > 0) {
        kill(redis_pid, SIGCONT);
        kill(redis_pid, SIGTERM);
        waitpid(redis_pid, NULL, 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs one command on a fresh blocking connection. @returns new reply. */
static inline redisReply *
redis_cmd(const char *fmt, ...)
{
    redisContext *c = rc_connect();
    redisReply *r;
    va_list ap;

    assert_non_null(c);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    assert_non_null(r);
    return r;
}

static inline long long
redis_int(const char *fmt, const char *key)
{
    redisReply *r = redis_cmd(fmt, key);
    long long v = r->type == REDIS_REPLY_INTEGER  ? r->integer
                  : r->type == REDIS_REPLY_STRING ? atoll(r->str)
                                                  : -1;
    freeReplyObject(r);
    return v;
}

/* ---- the fixture: a loop, a config, a store ---- */

#define MAX_SEEN 256

struct fx {
    uv_loop_t loop;
    uv_timer_t tick;
    struct tc_config cfg;
    struct tc_store *s;
    char prefix[64];
    int ready_true, ready_false;
    bool closed;
    /* follower */
    int loads;
    char load_epoch[TC_EPOCH_MAX];
    uint64_t load_seq;
    size_t load_nactive, load_nhistory;
    uint64_t load_first, load_last;
    uint64_t seen[MAX_SEEN];
    size_t nseen;
    bool order_ok;
};

static inline void
on_ready(void *arg, bool ready)
{
    struct fx *fx = arg;
    if (ready) {
        fx->ready_true++;
    } else {
        fx->ready_false++;
    }
}

static inline void
on_tick(uv_timer_t *t)
{
    (void)t;
}

static inline bool
run_until(struct fx *fx, bool (*cond)(struct fx *), uint64_t timeout_ms)
{
    uint64_t deadline = tc_now_ms() + timeout_ms;
    bool ok;

    uv_timer_start(&fx->tick, on_tick, 10, 10);
    while (!(ok = cond(fx)) && tc_now_ms() < deadline) {
        uv_run(&fx->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&fx->tick);
    return ok;
}

static inline bool
never(struct fx *fx)
{
    (void)fx;
    return false;
}

static inline bool
is_ready(struct fx *fx)
{
    return tc_store_ready(fx->s);
}

/* A store on port (the test's redis-server, or a dead one), started; with
 * wait, the test waits until it is ready. */
static inline void
fx_init_at(struct fx *fx, const char *timeout, int port, bool wait)
{
    char url[64], prefix_env[96], timeout_env[64], history_env[] = "TOCSIN_HISTORY_MAX_UPDATES=100";
    char *envp[] = {url, prefix_env, timeout_env, history_env, NULL};
    struct tc_error err;

    memset(fx, 0, sizeof(*fx));
    fx->order_ok = true;
    snprintf(fx->prefix, sizeof(fx->prefix), "t%d:%d:", (int)getpid(), ++prefix_seq);
    snprintf(url, sizeof(url), "TOCSIN_REDIS_URL=redis://127.0.0.1:%d/3", port);
    snprintf(prefix_env, sizeof(prefix_env), "TOCSIN_REDIS_PREFIX=%s", fx->prefix);
    snprintf(timeout_env, sizeof(timeout_env), "TOCSIN_REDIS_TIMEOUT=%s", timeout);
    assert_int_equal(tc_config_load(&fx->cfg, NULL, envp, &err), 0);
    assert_int_equal(fx->cfg.redis_db, 3);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->tick);
    fx->s = tc_store_new(&fx->loop, &fx->cfg, on_ready, fx);
    assert_false(tc_store_ready(fx->s));
    assert_int_equal(tc_store_start(fx->s), 0);
    if (wait) {
        assert_true(run_until(fx, is_ready, 5000));
        assert_int_equal(fx->ready_true, 1);
        assert_true(tc_store_reachable(fx->s));
    }
}

static inline void
fx_init(struct fx *fx, const char *timeout)
{
    fx_init_at(fx, timeout, redis_port, true);
}

static inline void
on_closed(void *arg)
{
    ((struct fx *)arg)->closed = true;
}

static inline bool
is_closed(struct fx *fx)
{
    return fx->closed;
}

static inline void
fx_fini(struct fx *fx)
{
    tc_store_close(fx->s, on_closed, fx);
    assert_true(run_until(fx, is_closed, 5000));
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* hiredis' poll handles close here */
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    tc_config_fini(&fx->cfg);
}

/* ---- applying events ---- */

struct pending {
    bool done;
    int status;
    struct tc_store_result res;
};

static inline void
on_applied(void *arg, int status, const struct tc_store_result *res)
{
    struct pending *p = arg;
    assert_false(p->done); /* exactly once */
    p->done = true;
    p->status = status;
    if (res != NULL) {
        assert_int_equal(status, 0);
        p->res = *res;
    } else {
        assert_int_not_equal(status, 0);
    }
}

static struct pending *cur_pending;

static inline bool
pending_done(struct fx *fx)
{
    (void)fx;
    return cur_pending->done;
}

/* Builds an event. regions may be NULL (absent: global). */
static inline void
make_event(struct tc_event *ev, const char *event_id, const char *incident, int version,
           const char *status, const char *impact, const char *components, const char *regions,
           const char *at)
{
    char buf[1024];
    char reg[256] = "";
    struct tc_error err;

    if (regions != NULL) {
        snprintf(reg, sizeof(reg), "\"regions\":%s,", regions);
    }
    snprintf(buf, sizeof(buf),
             "{\"event_id\":\"%s\",\"incident_id\":\"%s\",\"version\":%d,\"status\":\"%s\","
             "\"impact\":\"%s\",\"title\":\"Playback errors\",\"components\":%s,%s"
             "\"occurred_at\":\"%s\",\"affected_users\":9007199254740991}",
             event_id, incident, version, status, impact, components, reg, at);
    if (tc_event_parse(buf, strlen(buf), ev, &err) != 0) {
        fail_msg("event does not parse: %s (%s)", err.text, buf);
    }
}

static inline int
apply_ev(struct fx *fx, const struct tc_event *ev, struct tc_store_result *out)
{
    struct pending p = {0};

    cur_pending = &p;
    tc_store_apply(fx->s, ev, on_applied, &p);
    assert_true(run_until(fx, pending_done, 5000));
    if (out != NULL) {
        *out = p.res;
    }
    return p.status;
}

/* Applies one event; returns its outcome (status must be 0) and seq. */
static inline enum tc_store_outcome
apply(struct fx *fx, const char *event_id, const char *incident, int version, const char *status,
      const char *components, const char *regions, const char *at, uint64_t *seq)
{
    struct tc_event ev;
    struct tc_store_result res;

    make_event(&ev, event_id, incident, version, status, "major", components, regions, at);
    assert_int_equal(apply_ev(fx, &ev, &res), 0);
    tc_event_fini(&ev);
    if (seq != NULL) {
        *seq = res.seq;
    }
    return res.outcome;
}

#define T1 "2026-01-01T10:00:00Z"
#define T2 "2026-01-01T11:00:00Z"
#define T3 "2026-01-01T12:00:00Z"
#define T4 "2026-01-01T13:00:00Z"

static inline char *
key(const struct fx *fx, const char *suffix)
{
    static char buf[256];
    snprintf(buf, sizeof(buf), "%s%s", fx->prefix, suffix);
    return buf;
}

/* ---- lost replies ---- */

/* The store went down once and is ready again. */
static inline bool
ready_again(struct fx *fx)
{
    return fx->ready_true >= 2;
}

/* Freezes the redis-server (SIGSTOP): commands sent now time out. */
static inline void
redis_freeze(void)
{
    assert_int_equal(kill(redis_pid, SIGSTOP), 0);
}

/* Wakes it and waits until the store has reconnected. */
static inline void
redis_thaw(struct fx *fx)
{
    assert_int_equal(kill(redis_pid, SIGCONT), 0);
    assert_true(run_until(fx, ready_again, 10000));
}

/* After a claim whose reply was lost: waits (5 s at most) until Redis has
 * run it on the dropped connection, that is, until member's score in zset
 * is the claim's lease end. Should Redis have discarded it unrun, the test
 * writes that score as the claim would have, so the rest holds either way.
 * @returns true when the claim itself ran. */
static inline bool
lost_claim_ran(const char *zset, const char *member, const char *lease_end)
{
    uint64_t deadline = tc_now_ms() + 5000;
    bool ran = false;

    while (!ran && tc_now_ms() < deadline) {
        redisReply *r = redis_cmd("ZSCORE %s %s", zset, member);
        ran = r->type == REDIS_REPLY_STRING && strtod(r->str, NULL) == strtod(lease_end, NULL);
        freeReplyObject(r);
        if (!ran) {
            usleep(20 * 1000);
        }
    }
    if (!ran) {
        freeReplyObject(redis_cmd("ZADD %s %s %s", zset, lease_end, member));
    }
    return ran;
}

/* A claim of queue, sent at now for lease_ms to a frozen Redis, has just
 * timed out: checks that its lease end (written to out) is unique and
 * remembered until the lease ends, wakes Redis and waits until the claim
 * has leased member of zset. */
static inline void
lost_claim_check(struct fx *fx, int queue, uint64_t now, uint64_t lease_ms, const char *zset,
                 const char *member, char out[TC_STORE_LEASE_MAX])
{
    const struct tc_store__lost *lost = &fx->s->lost[queue];

    assert_int_equal(lost->n, 1);
    snprintf(out, TC_STORE_LEASE_MAX, "%s", lost->e[0].score);
    /* Unique: a fraction of a ms, just under now + lease. */
    assert_non_null(strchr(out, '.'));
    assert_true(strtod(out, NULL) > (double)(now + lease_ms - 1));
    assert_true(strtod(out, NULL) < (double)(now + lease_ms));
    assert_int_equal(lost->e[0].until_ms, now + lease_ms);
    redis_thaw(fx);
    lost_claim_ran(zset, member, out);
}

/* ---- follower ---- */

static inline void
on_load(void *arg, const char *epoch, uint64_t seq, const struct tc_active_incident *active,
        size_t nactive, const struct tc_history_entry *history, size_t nhistory)
{
    struct fx *fx = arg;

    fx->loads++;
    snprintf(fx->load_epoch, sizeof(fx->load_epoch), "%s", epoch);
    fx->load_seq = seq;
    fx->load_nactive = nactive;
    fx->load_nhistory = nhistory;
    fx->load_first = nhistory > 0 ? history[0].seq : 0;
    fx->load_last = nhistory > 0 ? history[nhistory - 1].seq : 0;
    for (size_t i = 0; i < nactive; i++) {
        json_t *m = json_loadb(active[i].match, active[i].match_len, 0, NULL);
        assert_non_null(m);
        json_decref(m);
        assert_int_equal(active[i].state[active[i].state_len - 1], '}');
    }
    for (size_t i = 1; i < nhistory; i++) {
        if (history[i].seq != history[i - 1].seq + 1) {
            fx->order_ok = false;
        }
    }
    fx->nseen = 0;
}

static inline void
on_entries(void *arg, const struct tc_history_entry *e, size_t n)
{
    struct fx *fx = arg;

    for (size_t i = 0; i < n; i++) {
        uint64_t prev = fx->nseen > 0 ? fx->seen[fx->nseen - 1] : fx->load_seq;
        if (e[i].seq != prev + 1 || e[i].state == NULL || e[i].match == NULL) {
            fx->order_ok = false;
        }
        if (fx->nseen < MAX_SEEN) {
            fx->seen[fx->nseen++] = e[i].seq;
        }
    }
}

static inline void
fx_follow(struct fx *fx)
{
    struct tc_store_follow_cbs cbs = {.load = on_load, .entries = on_entries, .arg = fx};
    tc_store_follow(fx->s, &cbs, 3);
}

static inline bool
loaded_once(struct fx *fx)
{
    return fx->loads >= 1;
}

static inline bool
seen_three(struct fx *fx)
{
    return fx->nseen >= 3;
}

static inline bool
loaded_twice(struct fx *fx)
{
    return fx->loads >= 2;
}

static inline bool
seen_one(struct fx *fx)
{
    return fx->nseen >= 1;
}

#endif
