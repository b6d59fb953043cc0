/* tocsin — SPDX-License-Identifier: MIT
 *
 * broker/ingest against a real Kafka protocol endpoint: the embedded mock
 * cluster (tc_kafka_embedded), fed and read by plain librdkafka clients.
 * Covers apply order per partition, the dead-letter path, pause on a failed
 * apply and resume in order, committed offsets across a restart, and the
 * tocsin-devkafka binary.
 */
#include "ingest/ingest.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "util/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define TOPIC "t.incidents"
#define DLQ   "t.incidents.dlq"
#define MAXA  64

/* ---- helpers: events, producing, the loop ---- */

static char *
event_json(const char *event_id, const char *incident, int version)
{
    return tc_xasprintf("{\"event_id\":\"%s\",\"incident_id\":\"%s\",\"version\":%d,"
                        "\"status\":\"investigating\",\"impact\":\"major\",\"title\":\"Playback "
                        "errors\",\"components\":[\"playback\"],"
                        "\"occurred_at\":\"2026-11-25T12:00:00Z\"}",
                        event_id, incident, version);
}

static rd_kafka_t *
producer_new(const char *bootstrap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    rd_kafka_t *rk;

    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    return rk;
}

static void
produce(rd_kafka_t *p, int32_t partition, const char *key, const char *value, size_t len)
{
    assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(partition),
                                       RD_KAFKA_V_KEY((void *)(uintptr_t)key, strlen(key)),
                                       RD_KAFKA_V_VALUE((void *)(uintptr_t)value, len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void
produce_event(rd_kafka_t *p, int32_t partition, const char *event_id, int version)
{
    char *v = event_json(event_id, "inc-1", version);

    produce(p, partition, "inc-1", v, strlen(v));
    free(v);
}

static void
tick_cb(uv_timer_t *t)
{
    TC_UNUSED(t);
}

/* Runs the loop until cond holds or timeout_ms passes. */
static bool
run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg, uint64_t timeout_ms)
{
    uint64_t deadline = tc_now_ms() + timeout_ms;
    uv_timer_t tick;
    bool ok;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 10, 10);
    while (!(ok = cond(arg)) && tc_now_ms() < deadline) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

static bool
never(void *arg)
{
    TC_UNUSED(arg);
    return false;
}

/* ---- the hook: a fake store that records applies ---- */

struct rec {
    struct tc_ingest *in;
    char ids[MAXA][32];
    int n;
    /* Failure simulation: the first apply of fail_id fails; with down set
     * (Redis down) every apply fails until the test clears it. */
    char fail_id[32];
    bool failed_once;
    bool down_after_fail;
    bool down;
    /* Async mode: done is called from a timer, as a real store would. */
    bool async;
    bool hold; /* async: keep dones pending until cleared */
    void *pending[MAXA];
    const char *pending_id[MAXA];
    int npending;
    uv_timer_t timer;
    bool closed;
};

static int
decide(struct rec *r, const char *id)
{
    if (r->fail_id[0] != '\0' && !r->failed_once && strcmp(id, r->fail_id) == 0) {
        r->failed_once = true;
        r->down = r->down_after_fail;
        return TC_EIO;
    }
    return r->down ? TC_EIO : 0;
}

static void
apply(void *arg, const struct tc_event *ev, void *token)
{
    struct rec *r = arg;

    assert_true(r->n < MAXA);
    snprintf(r->ids[r->n++], sizeof(r->ids[0]), "%s", ev->event_id);
    if (r->async) {
        assert_true(r->npending < MAXA);
        r->pending_id[r->npending] = ev->event_id;
        r->pending[r->npending++] = token;
        return;
    }
    tc_ingest_done(r->in, token, decide(r, ev->event_id));
}

static void
async_cb(uv_timer_t *t)
{
    struct rec *r = t->data;
    int n = r->npending;

    if (r->hold) {
        return;
    }
    /* Completed in order, like replies on one Redis connection. */
    r->npending = 0;
    for (int i = 0; i < n; i++) {
        tc_ingest_done(r->in, r->pending[i], decide(r, r->pending_id[i]));
    }
}

static void
on_closed(void *arg)
{
    ((struct rec *)arg)->closed = true;
}

static bool
is_closed(void *arg)
{
    return ((struct rec *)arg)->closed;
}

struct wait_n {
    struct rec *r;
    int n;
};

static bool
have_n(void *arg)
{
    struct wait_n *w = arg;
    return w->r->n >= w->n;
}

static struct tc_ingest *
ingest_start(uv_loop_t *loop, const char *bootstrap, const char *group, struct rec *r)
{
    struct tc_config cfg = {0};
    struct tc_ingest_hooks hooks = {.apply = apply, .arg = r};
    struct tc_error err = {{0}};

    cfg.kafka_brokers = (char *)(uintptr_t) "";
    cfg.kafka_topic = (char *)(uintptr_t)TOPIC;
    cfg.kafka_dlq_topic = (char *)(uintptr_t)DLQ;
    cfg.kafka_group = (char *)(uintptr_t)group;
    r->in = tc_ingest_new(loop, &cfg, bootstrap, &hooks, &err);
    assert_non_null(r->in);
    assert_int_equal(tc_ingest_start(r->in), 0);
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    if (r->async) {
        uv_timer_start(&r->timer, async_cb, 5, 5);
    }
    return r->in;
}

static void
ingest_close(uv_loop_t *loop, struct rec *r)
{
    tc_ingest_close(r->in, 5000, on_closed, r);
    assert_true(run_until(loop, is_closed, r, 30000));
    uv_close((uv_handle_t *)&r->timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

/* The committed offset of TOPIC/partition for group, read by a new consumer. */
static int64_t
committed(const char *bootstrap, const char *group, int32_t partition)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    char errstr[256];
    rd_kafka_t *c;
    int64_t off;

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(c);
    rd_kafka_topic_partition_list_add(l, TOPIC, partition);
    assert_int_equal(rd_kafka_committed(c, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return off;
}

static int
index_of(const struct rec *r, const char *id, int from)
{
    for (int i = from; i < r->n; i++) {
        if (strcmp(r->ids[i], id) == 0) {
            return i;
        }
    }
    return -1;
}

/* Reads n messages of the DLQ topic from the start. @returns new messages
 * and in *cp the consumer, destroyed by the caller after the messages. */
static int
read_dlq(const char *bootstrap, rd_kafka_message_t **out, int n, rd_kafka_t **cp)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    uint64_t deadline = tc_now_ms() + 15000;
    char errstr[256];
    rd_kafka_t *c;
    int got = 0;

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "dlq-reader", errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(c);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_add(l, DLQ, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    while (got < n && tc_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (m == NULL) {
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(m);
            continue;
        }
        out[got++] = m;
    }
    /* A fourth message would be a bug: wait a little for one. */
    rd_kafka_message_t *extra = rd_kafka_consumer_poll(c, 500);
    if (extra != NULL) {
        if (extra->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            got++;
        }
        rd_kafka_message_destroy(extra);
    }
    *cp = c;
    return got;
}

static const char *
header(const rd_kafka_message_t *m, const char *name, char *buf, size_t cap)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t len = 0;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR || v == NULL ||
        len >= cap) {
        return NULL;
    }
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

static bool
ingest_ready(void *arg)
{
    return tc_ingest_ready(arg);
}

/* Valid events are applied in partition order, the three bad ones are
 * dead-lettered unchanged with an error header, offsets are committed after
 * close, and a restarted consumer in the group sees only new messages. */
static void
test_apply_dlq_offsets(void **state)
{
    struct tc_error err = {{0}};
    struct tc_kafka_embedded *k = tc_kafka_embedded_new(TOPIC, DLQ, 2, &err);
    uv_loop_t loop;
    struct rec r = {0};
    rd_kafka_t *p;
    char *big, *bad_rule;
    const char *notjson = "this is { not json";
    uint64_t invalid0 = tc_metrics_get(TC_M_EVENTS_INVALID);
    uint64_t dlq0 = tc_metrics_get(TC_M_DLQ_PRODUCED);

    TC_UNUSED(state);
    assert_non_null(k);
    assert_int_equal(strncmp(tc_kafka_embedded_bootstrap(k), "127.0.0.1:", 10), 0);
    uv_loop_init(&loop);

    /* Partition 0: e0, non-JSON, e1, oversized, e2. Partition 1: e3, a rule
     * break (version 0), e4. */
    big = tc_xmalloc(TC_EVENT_MAX_BYTES + 100);
    memset(big, 'x', TC_EVENT_MAX_BYTES + 100);
    memcpy(big, "{\"pad\":\"", 8);
    memcpy(big + TC_EVENT_MAX_BYTES + 98, "\"}", 2);
    bad_rule = event_json("bad", "inc-1", 0);
    p = producer_new(tc_kafka_embedded_bootstrap(k));
    produce_event(p, 0, "e0", 1);
    produce(p, 0, "k-notjson", notjson, strlen(notjson));
    produce_event(p, 0, "e1", 2);
    produce(p, 0, "k-big", big, TC_EVENT_MAX_BYTES + 100);
    produce_event(p, 0, "e2", 3);
    produce_event(p, 1, "e3", 4);
    produce(p, 1, "k-rule", bad_rule, strlen(bad_rule));
    produce_event(p, 1, "e4", 5);
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

    ingest_start(&loop, tc_kafka_embedded_bootstrap(k), "g1", &r);
    assert_true(run_until(&loop, ingest_ready, r.in, 20000));
    struct wait_n w = {&r, 5};
    assert_true(run_until(&loop, have_n, &w, 20000));
    run_until(&loop, never, NULL, 1500); /* nothing more may come */
    assert_int_equal(r.n, 5);
    assert_true(index_of(&r, "e0", 0) < index_of(&r, "e1", 0));
    assert_true(index_of(&r, "e1", 0) < index_of(&r, "e2", 0));
    assert_true(index_of(&r, "e3", 0) < index_of(&r, "e4", 0));
    assert_true(index_of(&r, "e0", 0) >= 0 && index_of(&r, "e3", 0) >= 0);
    assert_int_equal(tc_metrics_get(TC_M_EVENTS_INVALID) - invalid0, 3);
    assert_int_equal(tc_metrics_get(TC_M_DLQ_PRODUCED) - dlq0, 3);
    ingest_close(&loop, &r);

    /* The DLQ holds the three, unchanged, with error and source headers. */
    rd_kafka_message_t *m[4] = {0};
    rd_kafka_t *reader = NULL;
    assert_int_equal(read_dlq(tc_kafka_embedded_bootstrap(k), m, 3, &reader), 3);
    int seen_big = 0, seen_notjson = 0, seen_rule = 0;
    for (int i = 0; i < 3; i++) {
        char eb[256], sb[256];
        const char *e = header(m[i], "error", eb, sizeof(eb));
        const char *s = header(m[i], "source", sb, sizeof(sb));
        assert_non_null(e);
        assert_non_null(s);
        if (m[i]->key_len == 5 && memcmp(m[i]->key, "k-big", 5) == 0) {
            assert_int_equal(m[i]->len, TC_EVENT_MAX_BYTES + 100);
            assert_memory_equal(m[i]->payload, big, m[i]->len);
            assert_string_equal(s, TOPIC "/0/3");
            seen_big++;
        } else if (m[i]->key_len == 9 && memcmp(m[i]->key, "k-notjson", 9) == 0) {
            assert_int_equal(m[i]->len, strlen(notjson));
            assert_memory_equal(m[i]->payload, notjson, m[i]->len);
            assert_non_null(strstr(e, "not valid JSON"));
            assert_string_equal(s, TOPIC "/0/1");
            seen_notjson++;
        } else {
            assert_int_equal(m[i]->len, strlen(bad_rule));
            assert_memory_equal(m[i]->payload, bad_rule, m[i]->len);
            assert_non_null(strstr(e, "version"));
            assert_string_equal(s, TOPIC "/1/1");
            seen_rule++;
        }
        rd_kafka_message_destroy(m[i]);
    }
    assert_int_equal(seen_big + seen_notjson + seen_rule, 3);
    assert_int_equal(seen_big * seen_notjson * seen_rule, 1);
    rd_kafka_consumer_close(reader);
    rd_kafka_destroy(reader);

    /* Offsets committed at close: the next offset of each partition. */
    assert_int_equal(committed(tc_kafka_embedded_bootstrap(k), "g1", 0), 5);
    assert_int_equal(committed(tc_kafka_embedded_bootstrap(k), "g1", 1), 3);

    /* A restarted ingest in the same group applies only the new message. */
    struct rec r2 = {0};
    produce_event(p, 1, "e5", 6);
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ingest_start(&loop, tc_kafka_embedded_bootstrap(k), "g1", &r2);
    struct wait_n w2 = {&r2, 1};
    uint64_t t0 = tc_now_ms();
    assert_true(run_until(&loop, have_n, &w2, 40000));
    print_message("restarted consumer got its first message after %llu ms\n",
                  (unsigned long long)(tc_now_ms() - t0));
    run_until(&loop, never, NULL, 1000);
    assert_int_equal(r2.n, 1);
    assert_string_equal(r2.ids[0], "e5");
    ingest_close(&loop, &r2);
    assert_int_equal(committed(tc_kafka_embedded_bootstrap(k), "g1", 1), 4);

    rd_kafka_destroy(p);
    free(big);
    free(bad_rule);
    assert_int_equal(uv_loop_close(&loop), 0);
    tc_kafka_embedded_free(k);
    assert_int_equal(rd_kafka_wait_destroyed(10000), 0);
}

static bool
is_paused(void *arg)
{
    TC_UNUSED(arg);
    return tc_metrics_gauge_get(TC_G_INGEST_PAUSED) == 1;
}

/* done(TC_EIO) pauses; after set_paused(false) the failed event and those
 * after it are applied again in order. Run with done inline (sync) and from
 * a timer with everything after the failure failing too (async, Redis down),
 * which also exercises "wait until no apply is in flight". */
static void
run_pause_resume(bool async)
{
    struct tc_error err = {{0}};
    struct tc_kafka_embedded *k = tc_kafka_embedded_new(TOPIC, DLQ, 1, &err);
    uv_loop_t loop;
    struct rec r = {0};
    rd_kafka_t *p;
    char id[8];
    uint64_t pauses0 = tc_metrics_get(TC_M_INGEST_PAUSES);

    assert_non_null(k);
    uv_loop_init(&loop);
    p = producer_new(tc_kafka_embedded_bootstrap(k));
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "e%d", i);
        produce_event(p, 0, id, i + 1);
    }
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

    snprintf(r.fail_id, sizeof(r.fail_id), "e2");
    r.async = async;
    r.down_after_fail = async;
    ingest_start(&loop, tc_kafka_embedded_bootstrap(k), "g2", &r);
    struct wait_n w = {&r, async ? 5 : 3};
    assert_true(run_until(&loop, have_n, &w, 20000));
    assert_true(run_until(&loop, is_paused, NULL, 5000));
    run_until(&loop, never, NULL, 1000); /* paused: nothing is applied again */
    assert_int_equal(r.n, async ? 5 : 3);
    assert_int_equal(tc_metrics_get(TC_M_INGEST_PAUSES) - pauses0, 1);
    assert_int_equal(committed(tc_kafka_embedded_bootstrap(k), "g2", 0), 2);

    r.down = false;
    w.n = r.n + 3; /* sync: applied inside set_paused already */
    tc_ingest_set_paused(r.in, false);
    assert_true(run_until(&loop, have_n, &w, 10000));
    run_until(&loop, never, NULL, 500);
    assert_int_equal(r.n, w.n);
    const char *want_sync[] = {"e0", "e1", "e2", "e2", "e3", "e4"};
    const char *want_async[] = {"e0", "e1", "e2", "e3", "e4", "e2", "e3", "e4"};
    for (int i = 0; i < r.n; i++) {
        assert_string_equal(r.ids[i], async ? want_async[i] : want_sync[i]);
    }
    assert_int_equal(tc_metrics_gauge_get(TC_G_INGEST_PAUSED), 0);

    /* Store down (set_paused(true)): nothing is applied until it returns. */
    tc_ingest_set_paused(r.in, true);
    produce_event(p, 0, "e5", 6);
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    run_until(&loop, never, NULL, 1500);
    assert_int_equal(r.n, w.n);
    w.n++;
    tc_ingest_set_paused(r.in, false);
    assert_true(run_until(&loop, have_n, &w, 10000));
    assert_string_equal(r.ids[r.n - 1], "e5");

    ingest_close(&loop, &r);
    assert_int_equal(committed(tc_kafka_embedded_bootstrap(k), "g2", 0), 6);
    rd_kafka_destroy(p);
    assert_int_equal(uv_loop_close(&loop), 0);
    tc_kafka_embedded_free(k);
    assert_int_equal(rd_kafka_wait_destroyed(10000), 0);
}

static void
test_pause_resume_sync(void **state)
{
    TC_UNUSED(state);
    run_pause_resume(false);
}

static void
test_pause_resume_async(void **state)
{
    TC_UNUSED(state);
    run_pause_resume(true);
}

/* The built tocsin-devkafka: $TOCSIN_DEVKAFKA, else next to the build's
 * tests/ directory (ctest runs test binaries from build/tests/). */
static char *
devkafka_path(void)
{
    char self[PATH_MAX];
    const char *env = getenv("TOCSIN_DEVKAFKA");
    ssize_t n;

    if (env != NULL && *env != '\0') {
        return tc_xstrdup(env);
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    return tc_xasprintf("%s/../tocsin-devkafka", self);
}

static pid_t
spawn(const char *path, char *const argv[], int *out_fd)
{
    posix_spawn_file_actions_t fa;
    int fds[2];
    pid_t pid;

    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    assert_int_equal(posix_spawn(&pid, path, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    *out_fd = fds[0];
    return pid;
}

/* Waits for pid at most timeout_ms; kills it past that. @returns status. */
static int
wait_exit(pid_t pid, uint64_t timeout_ms)
{
    uint64_t deadline = tc_now_ms() + timeout_ms;
    int st = 0;

    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (tc_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        usleep(20000);
    }
    return st;
}

static void
test_devkafka_binary(void **state)
{
    char *path = devkafka_path();
    char line[256] = {0};
    size_t len = 0;
    int fd, st;
    pid_t pid;

    TC_UNUSED(state);
    if (access(path, X_OK) != 0) {
        fail_msg("tocsin-devkafka not found at %s (set TOCSIN_DEVKAFKA)", path);
    }

    /* A bad flag: exit 2. */
    char *bad[] = {path, (char *)(uintptr_t) "--partitions", (char *)(uintptr_t) "0", NULL};
    pid = spawn(path, bad, &fd);
    st = wait_exit(pid, 10000);
    close(fd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);

    char *good[] = {path,
                    (char *)(uintptr_t) "--partitions",
                    (char *)(uintptr_t) "2",
                    (char *)(uintptr_t) "--topic",
                    (char *)(uintptr_t)TOPIC,
                    NULL};
    pid = spawn(path, good, &fd);
    uint64_t deadline = tc_now_ms() + 10000;
    while (strchr(line, '\n') == NULL && len < sizeof(line) - 1 && tc_now_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0) {
            continue;
        }
        ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    assert_non_null(strchr(line, '\n'));
    *strchr(line, '\n') = '\0';
    assert_int_equal(strncmp(line, "bootstrap=127.0.0.1:", 20), 0);

    /* It speaks Kafka: the topic exists with two partitions. */
    rd_kafka_t *p = producer_new(line + 10);
    rd_kafka_topic_t *t = rd_kafka_topic_new(p, TOPIC, NULL);
    const struct rd_kafka_metadata *md = NULL;
    assert_int_equal(rd_kafka_metadata(p, 0, t, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(md->topic_cnt, 1);
    assert_int_equal(md->topics[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(md->topics[0].partition_cnt, 2);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(p);

    assert_int_equal(kill(pid, SIGTERM), 0);
    st = wait_exit(pid, 10000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    free(path);
    assert_int_equal(rd_kafka_wait_destroyed(10000), 0);
}

/* The fault-injection commands of tocsin-devkafka's control channel: each
 * row names the rule it covers; a refused command changes nothing. */
static void
test_embedded_control(void **state)
{
    static const struct {
        const char *line;
        int rc;
        const char *rule;
    } rows[] = {
        {"ping", 0, "ping answers"},
        {"broker-down 2", 0, "a broker of the cluster goes down"},
        {"broker-up 2", 0, "and up again"},
        {"broker-down 4", TC_EIO, "broker ids are 1..brokers"},
        {"broker-down 0", TC_EINVAL, "broker ids start at 1"},
        {"broker-down", TC_EINVAL, "the id is required"},
        {"broker-down 1 2", TC_EINVAL, "one id only"},
        {"rtt 1 200", 0, "round-trip time set"},
        {"rtt 1 -5", TC_EINVAL, "a negative delay"},
        {"errors Fetch 5 NOT_LEADER_FOR_PARTITION", 0, "errors pushed by API and name"},
        {"errors OffsetCommit 3 REQUEST_TIMED_OUT", 0, "OffsetCommit"},
        {"errors JoinGroup 3 COORDINATOR_NOT_AVAILABLE", 0, "JoinGroup"},
        {"errors Fetch 0 REQUEST_TIMED_OUT", TC_EINVAL, "a count of at least 1"},
        {"errors Fetch 1001 REQUEST_TIMED_OUT", TC_EINVAL, "at most 1000 errors a command"},
        {"errors Fetch 1 _ALL_BROKERS_DOWN", TC_EINVAL, "client-side codes are not broker errors"},
        {"errors Fetch 1 NO_SUCH_ERROR", TC_EINVAL, "an unknown error name"},
        {"errors fetch 1 REQUEST_TIMED_OUT", TC_EINVAL, "API names are case-sensitive"},
        {"clear Fetch", 0, "pushed errors dropped"},
        {"leader 1 3", 0, "a partition moved"},
        {"leader 7 1", TC_EIO, "a partition the topic lacks"},
        {"coordinator some-group 2", 0, "a coordinator set"},
        {"", TC_EINVAL, "an empty line"},
        {"   \t ", TC_EINVAL, "blanks only"},
        {"reboot", TC_EINVAL, "an unknown command"},
    };
    struct tc_error err = {{0}};
    struct tc_kafka_embedded *k = tc_kafka_embedded_new_brokers(TOPIC, DLQ, 2, 3, &err);
    char *long_line = tc_xmalloc(TC_KAFKA_CONTROL_MAX + 2);

    TC_UNUSED(state);
    assert_non_null(k);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        err.text[0] = '\0';
        int rc = tc_kafka_embedded_control(k, rows[i].line, &err);
        if (rc != rows[i].rc) {
            fail_msg("'%s' (%s): got %d (%s), want %d", rows[i].line, rows[i].rule, rc, err.text,
                     rows[i].rc);
        }
        if (rc != 0 && err.text[0] == '\0') {
            fail_msg("'%s' (%s): refused without a reason", rows[i].line, rows[i].rule);
        }
    }
    memset(long_line, 'x', TC_KAFKA_CONTROL_MAX + 1);
    long_line[TC_KAFKA_CONTROL_MAX + 1] = '\0';
    assert_int_equal(tc_kafka_embedded_control(k, long_line, &err), TC_ETOOBIG);
    assert_null(tc_kafka_embedded_new_brokers(TOPIC, DLQ, 2, 0, &err));
    assert_null(tc_kafka_embedded_new_brokers(TOPIC, DLQ, 2, 10, &err));
    free(long_line);
    tc_kafka_embedded_free(k);
}

static bool
both_have_one(void *arg)
{
    struct rec **rs = arg;
    return rs[0]->n >= 3 && rs[1]->n >= 1;
}

/* A rebalance while applies are in flight: the revoked entries are orphaned,
 * redelivered to the new owner, and their late done calls are safe; a close
 * that times out abandons what is still in flight, and a done after it is
 * safe too (ASan would see a use after free). */
static void
test_rebalance_orphans_and_close_timeout(void **state)
{
    struct tc_error err = {{0}};
    struct tc_kafka_embedded *k = tc_kafka_embedded_new(TOPIC, DLQ, 2, &err);
    struct rec a = {.async = true, .hold = true}, b = {0};
    struct rec *both[2] = {&a, &b};
    uv_loop_t loop;
    rd_kafka_t *p;

    TC_UNUSED(state);
    assert_non_null(k);
    uv_loop_init(&loop);
    p = producer_new(tc_kafka_embedded_bootstrap(k));
    produce_event(p, 0, "p0", 1);
    produce_event(p, 1, "p1", 2);
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

    ingest_start(&loop, tc_kafka_embedded_bootstrap(k), "g3", &a);
    struct wait_n w = {&a, 2};
    assert_true(run_until(&loop, have_n, &w, 20000));
    assert_int_equal(a.npending, 2); /* both held in flight */

    /* B joins: A loses everything (eager protocol), gets one partition back
     * and consumes it again from the start; B gets the other. */
    ingest_start(&loop, tc_kafka_embedded_bootstrap(k), "g3", &b);
    assert_true(run_until(&loop, both_have_one, both, 40000));
    assert_int_equal(b.n, 1);
    /* A gets its partition again once per rebalance that hands it back:
     * once, or twice when the mock group rebalanced again while B joined
     * (seen under ASan: A read p0 p1 p0 p0, B p1). */
    assert_true(a.n >= 3);
    assert_string_not_equal(a.ids[a.n - 1], b.ids[0]);

    /* The orphans (every delivery but the last) complete late (one fails:
     * nothing must happen); the last re-delivered one stays held. */
    assert_int_equal(a.npending, a.n);
    for (int i = 0; i < a.npending - 1; i++) {
        tc_ingest_done(a.in, a.pending[i], i == 1 ? TC_EIO : 0);
    }
    a.pending[0] = a.pending[a.npending - 1];
    a.npending = 1;
    assert_int_equal(tc_metrics_gauge_get(TC_G_INGEST_PAUSED), 0);

    /* Close A with its apply still held: abandoned at the timeout. */
    tc_ingest_close(a.in, 300, on_closed, &a);
    assert_true(run_until(&loop, is_closed, &a, 30000));
    a.hold = false;
    tc_ingest_done(NULL, a.pending[0], 0); /* after close: frees the entry only */
    a.npending = 0;
    uv_close((uv_handle_t *)&a.timer, NULL);
    ingest_close(&loop, &b);

    rd_kafka_destroy(p);
    assert_int_equal(uv_loop_close(&loop), 0);
    tc_kafka_embedded_free(k);
    assert_int_equal(rd_kafka_wait_destroyed(10000), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause_resume_sync),
        cmocka_unit_test(test_apply_dlq_offsets),
        cmocka_unit_test(test_pause_resume_async),
        cmocka_unit_test(test_rebalance_orphans_and_close_timeout),
        cmocka_unit_test(test_devkafka_binary),
        cmocka_unit_test(test_embedded_control),
    };

    /* librdkafka's own lines only at warn and above, to keep output short. */
    tc_log_set_level(getenv("TOCSIN_TEST_DEBUG") != NULL ? TC_LOG_DEBUG : TC_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
