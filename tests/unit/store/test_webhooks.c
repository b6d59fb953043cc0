/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of the webhook queue and endpoint registry (store/webhooks.c and
 * the per-event script's enqueue_jobs) against a real redis-server: which
 * endpoints get jobs, per-(endpoint, incident) order, leases, retry, dead
 * letters and replay, delete, secret rotation, and the Lua filter matcher
 * checked against tc_filter_match on a table.
 */
#include "model/filter.h"
#include "store/store_internal.h"
#include "store/webhooks.h"
#include "store_fixture.h"

#include <inttypes.h>

#define MAX_JOBS 8

struct wh_res {
    bool done;
    int status;
    char json[8192];
    uint64_t n;
    size_t njobs;
    struct {
        char job_id[128];
        char member[128];
        char endpoint[2048];
        char body[2048];
        uint64_t attempts, seq;
    } jobs[MAX_JOBS];
};

static struct wh_res *cur_res;

static bool
res_done(struct fx *fx)
{
    (void)fx;
    return cur_res->done;
}

static void
on_json(void *arg, int status, const char *json, size_t len)
{
    struct wh_res *r = arg;

    assert_false(r->done); /* exactly once */
    r->done = true;
    r->status = status;
    if (status == 0) {
        assert_non_null(json);
        assert_true(len < sizeof(r->json));
        memcpy(r->json, json, len);
        r->json[len] = '\0';
    }
}

static void
on_count(void *arg, int status, uint64_t n)
{
    struct wh_res *r = arg;

    assert_false(r->done);
    r->done = true;
    r->status = status;
    r->n = n;
}

static void
on_claim(void *arg, int status, const struct tc_store_wh_job *jobs, size_t n)
{
    struct wh_res *r = arg;

    assert_false(r->done);
    r->done = true;
    r->status = status;
    assert_true(n <= MAX_JOBS);
    r->njobs = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(r->jobs[i].job_id, sizeof(r->jobs[i].job_id), "%s", jobs[i].job_id);
        snprintf(r->jobs[i].member, sizeof(r->jobs[i].member), "%s", jobs[i].member);
        snprintf(r->jobs[i].endpoint, sizeof(r->jobs[i].endpoint), "%s", jobs[i].endpoint);
        snprintf(r->jobs[i].body, sizeof(r->jobs[i].body), "%s", jobs[i].body);
        r->jobs[i].attempts = jobs[i].attempts;
        r->jobs[i].seq = jobs[i].seq;
    }
}

static void
wait_res(struct fx *fx, struct wh_res *r)
{
    cur_res = r;
    assert_true(run_until(fx, res_done, 5000));
}

static int
create(struct fx *fx, const char *id, const char *req)
{
    struct wh_res r = {0};
    char secret[64];

    snprintf(secret, sizeof(secret), "whsec_%s_1", id);
    tc_store_wh_create(fx->s, id, req, secret, on_json, &r);
    wait_res(fx, &r);
    return r.status;
}

static size_t
claim(struct fx *fx, uint64_t now, uint64_t lease, struct wh_res *r)
{
    memset(r, 0, sizeof(*r));
    tc_store_wh_claim(fx->s, now, lease, MAX_JOBS, on_claim, r);
    wait_res(fx, r);
    assert_int_equal(r->status, 0);
    return r->njobs;
}

static uint64_t
complete(struct fx *fx, const char *job, enum tc_store_wh_outcome o, uint64_t next,
         const char *attempt)
{
    struct wh_res r = {0};

    tc_store_wh_complete(fx->s, job, o, next, attempt, on_count, &r);
    wait_res(fx, &r);
    assert_int_equal(r.status, 0);
    return r.n;
}

static int
count_call(struct fx *fx, void (*fn)(struct tc_store *, const char *, tc_store_wh_count_cb, void *),
           const char *id, uint64_t *n)
{
    struct wh_res r = {0};

    fn(fx->s, id, on_count, &r);
    wait_res(fx, &r);
    if (n != NULL) {
        *n = r.n;
    }
    return r.status;
}

static void
on_stats(void *arg, int status, uint64_t queued, uint64_t due)
{
    struct wh_res *r = arg;

    assert_false(r->done);
    r->done = true;
    r->status = status;
    r->n = queued;
    r->njobs = (size_t)due;
}

/* The queue gauges' sample: jobs queued, heads due now. */
static void
stats(struct fx *fx, uint64_t now, uint64_t *queued, uint64_t *due)
{
    struct wh_res r = {0};

    tc_store_wh_stats(fx->s, now, on_stats, &r);
    wait_res(fx, &r);
    assert_int_equal(r.status, 0);
    *queued = r.n;
    *due = r.njobs;
}

/* A store call that answers a JSON text about one endpoint. */
static int
json_call(struct fx *fx, void (*fn)(struct tc_store *, const char *, tc_store_wh_json_cb, void *),
          const char *id, struct wh_res *r)
{
    memset(r, 0, sizeof(*r));
    fn(fx->s, id, on_json, r);
    wait_res(fx, r);
    return r->status;
}

static int
get(struct fx *fx, const char *id, struct wh_res *r)
{
    return json_call(fx, tc_store_wh_get, id, r);
}

static int
replay(struct fx *fx, const char *id, struct wh_res *r)
{
    return json_call(fx, tc_store_wh_replay, id, r);
}

static uint64_t
wall_ms(void)
{
    return tc_wall_us() / 1000;
}

static long long
llen(struct fx *fx, const char *suffix)
{
    return redis_int("LLEN %s", key(fx, suffix));
}

/* Endpoints a (filter: component api) and b (component db). */
static void
create_api_db(struct fx *fx)
{
    assert_int_equal(
        create(fx, "a", "{\"url\":\"https://a.example/h\",\"filter\":{\"components\":[\"api\"]}}"),
        0);
    assert_int_equal(
        create(fx, "b", "{\"url\":\"https://b.example/h\",\"filter\":{\"components\":[\"db\"]}}"),
        0);
}

static void
test_enqueue_filters(void **state)
{
    struct fx fx;
    struct wh_res r = {0};
    uint64_t seq;
    char k[64];

    (void)state;
    fx_init(&fx, "2s");
    create_api_db(&fx);
    assert_int_equal(create(&fx, "c", "{\"url\":\"https://c.example/h\"}"), 0);
    /* Bad requests and duplicate ids change nothing. */
    assert_int_equal(create(&fx, "d", "{\"url\":\"ftp://x\"}"), TC_EINVAL);
    assert_int_equal(create(&fx, "d", "{\"url\":\"https://x\",\"filter\":{\"bogus\":1}}"),
                     TC_EINVAL);
    assert_int_equal(create(&fx, "a", "{\"url\":\"https://x\"}"), TC_ESTATE);
    assert_int_equal(redis_int("HLEN %s", key(&fx, "wh:endpoints")), 3);
    tc_store_wh_disable(fx.s, "c", "gone", on_json, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.json, "\"disabled\":true"));
    assert_non_null(strstr(r.json, "\"components\":[]")); /* not {} */

    assert_int_equal(apply(&fx, "e1", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, &seq),
                     TC_STORE_ACCEPTED);
    snprintf(k, sizeof(k), "wh:job:%" PRIu64 "-a", seq);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, k)), 1);
    assert_int_equal(llen(&fx, "wh:q:a:inc1"), 1);
    assert_int_equal(llen(&fx, "wh:q:b:inc1"), 0);
    assert_int_equal(llen(&fx, "wh:q:c:inc1"), 0); /* disabled */
    assert_int_equal(redis_int("ZCARD %s", key(&fx, "wh:due")), 1);
    {
        redisReply *rr = redis_cmd("HGET %s body", key(&fx, k));
        char want[64];
        assert_int_equal(rr->type, REDIS_REPLY_STRING);
        snprintf(want, sizeof(want), "{\"type\":\"incident.updated\",\"seq\":%" PRIu64 ",", seq);
        assert_memory_equal(rr->str, want, strlen(want));
        freeReplyObject(rr);
    }
    /* Duplicate and stale events make no job. */
    assert_int_equal(apply(&fx, "e1", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, NULL),
                     TC_STORE_DUPLICATE);
    assert_int_equal(apply(&fx, "e0", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, NULL),
                     TC_STORE_STALE);
    assert_int_equal(llen(&fx, "wh:q:a:inc1"), 1);
    /* A db incident reaches b only. */
    assert_int_equal(apply(&fx, "e2", "inc2", 1, "investigating", "[\"db\"]", NULL, T1, NULL),
                     TC_STORE_ACCEPTED);
    assert_int_equal(llen(&fx, "wh:q:a:inc2"), 0);
    assert_int_equal(llen(&fx, "wh:q:b:inc2"), 1);
    fx_fini(&fx);
}

static void
test_order_and_lease(void **state)
{
    struct fx fx;
    struct wh_res r;
    uint64_t s1, s2, now;
    char j1[64], j2[64];

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(create(&fx, "a", "{\"url\":\"https://a.example/h\",\"filter\":{}}"), 0);
    apply(&fx, "e1", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, &s1);
    apply(&fx, "e2", "inc1", 2, "identified", "[\"api\"]", NULL, T2, &s2);
    snprintf(j1, sizeof(j1), "%" PRIu64 "-a", s1);
    snprintf(j2, sizeof(j2), "%" PRIu64 "-a", s2);
    now = wall_ms() + 10;
    /* Only the head of the FIFO is due. */
    assert_int_equal(claim(&fx, now, 1000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, j1);
    assert_string_equal(r.jobs[0].member, "a|inc1");
    assert_int_equal(r.jobs[0].seq, s1);
    assert_int_equal(r.jobs[0].attempts, 0);
    assert_non_null(strstr(r.jobs[0].endpoint, "whsec_a_1"));
    /* Leased: nothing before the lease ends, the same job after. */
    assert_int_equal(claim(&fx, now + 999, 1000, &r), 0);
    assert_int_equal(claim(&fx, now + 1000, 1000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, j1);
    /* A completion for a job that is not the head is a no-op. */
    assert_int_equal(complete(&fx, j2, TC_STORE_WH_DELIVERED, 0, "{\"status\":200}"), 0);
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_DELIVERED, 0, "{\"status\":200}"), 1);
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_DELIVERED, 0, "{\"status\":200}"), 0);
    assert_int_equal(claim(&fx, wall_ms() + 10, 1000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, j2);
    assert_int_equal(complete(&fx, j2, TC_STORE_WH_DELIVERED, 0, "{\"status\":204}"), 1);
    assert_int_equal(redis_int("ZCARD %s", key(&fx, "wh:due")), 0);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "wh:q:a:inc1")), 0);
    assert_int_equal(claim(&fx, wall_ms() + 100000, 1000, &r), 0);
    fx_fini(&fx);
}

/* Regression (Redis faults, SIGSTOP): a claim whose reply was lost ran
 * when Redis woke up and held its job for the whole lease. Now its lease
 * end is unique and remembered: the next claim round makes exactly its
 * jobs due again (not another claim's), also when the lost claim runs late,
 * until its lease is over. */
static void
test_lost_claim_released(void **state)
{
    struct fx fx;
    struct wh_res r;
    uint64_t sa, sb, now;
    char ja[64], jb[64], lease_end[TC_STORE_LEASE_MAX];
    const struct tc_store__lost *lost;
    char due[256];

    (void)state;
    fx_init(&fx, "300ms");
    lost = &fx.s->lost[TC_STORE__Q_WH];
    snprintf(due, sizeof(due), "%s", key(&fx, "wh:due"));
    create_api_db(&fx);
    /* b's job is leased by a claim that got its reply. */
    apply(&fx, "e1", "inc1", 1, "investigating", "[\"db\"]", NULL, T1, &sb);
    snprintf(jb, sizeof(jb), "%" PRIu64 "-b", sb);
    now = wall_ms() + 10;
    assert_int_equal(claim(&fx, now, 60000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, jb);
    assert_int_equal(lost->n, 0);
    /* a's claim is sent to a frozen Redis: no reply within redis.timeout. */
    apply(&fx, "e2", "inc2", 1, "investigating", "[\"api\"]", NULL, T1, &sa);
    snprintf(ja, sizeof(ja), "%" PRIu64 "-a", sa);
    redis_freeze();
    memset(&r, 0, sizeof(r));
    now = wall_ms() + 10;
    tc_store_wh_claim(fx.s, now, 60000, MAX_JOBS, on_claim, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, TC_ETIMEDOUT);
    lost_claim_check(&fx, TC_STORE__Q_WH, now, 60000, due, "a|inc2", lease_end);
    /* The next round takes a's job at once, not after 60 s; b's stays
     * leased. */
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, ja);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 0);
    /* The lost claim may run after the first release (Redis serves the old
     * and the new connection in any order): it is still remembered. */
    assert_int_equal(complete(&fx, ja, TC_STORE_WH_RETRY, 0, "{\"status\":500}"), 1);
    freeReplyObject(redis_cmd("ZADD %s %s a|inc2", due, lease_end));
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, ja);
    assert_int_equal(r.jobs[0].attempts, 1);
    /* Forgotten once its lease is over; b's job is due then too. */
    assert_int_equal(claim(&fx, now + 60000, 60000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, jb);
    assert_int_equal(lost->n, 0);
    fx_fini(&fx);
}

static void
test_retry_dead_replay(void **state)
{
    struct fx fx;
    struct wh_res r;
    uint64_t s1, s2, s3, s4, now, queued, due;
    char j1[64], j2[64], j3[64], j4[64], jk[96];
    redisReply *rr;

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(create(&fx, "a", "{\"url\":\"https://a.example/h\"}"), 0);
    apply(&fx, "e1", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, &s1);
    apply(&fx, "e2", "inc1", 2, "identified", "[\"api\"]", NULL, T2, &s2);
    snprintf(j1, sizeof(j1), "%" PRIu64 "-a", s1);
    snprintf(j2, sizeof(j2), "%" PRIu64 "-a", s2);
    now = wall_ms() + 10;
    assert_int_equal(claim(&fx, now, 60000, &r), 1);
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_RETRY, now + 5000,
                              "{\"status\":503,\"error\":\"unavailable\"}"),
                     1);
    assert_int_equal(claim(&fx, now + 4999, 60000, &r), 0);
    assert_int_equal(claim(&fx, now + 5000, 60000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, j1);
    assert_int_equal(r.jobs[0].attempts, 1);
    snprintf(jk, sizeof(jk), "wh:job:%s", j1);
    rr = redis_cmd("HGET %s last_status", key(&fx, jk));
    assert_string_equal(rr->str, "503");
    freeReplyObject(rr);
    /* Dead: to the dead list, and the next update becomes due. */
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_DEAD, 0, "{\"status\":500}"), 1);
    assert_int_equal(llen(&fx, "wh:dead:a"), 1);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, j2);
    assert_int_equal(get(&fx, "a", &r), 0);
    assert_non_null(strstr(r.json, "\"pending\":1,\"dead\":1,\"dead_messages\":[{"));
    assert_non_null(strstr(r.json, "\"last_status\":500"));
    assert_non_null(strstr(r.json, "\"attempts\":[{\"status\":500},{\"status\":503,"));
    /* Replay while j2 waits in the FIFO: j1 is superseded (sending it after
     * j2 would show an older state after a newer one), not re-queued. */
    assert_int_equal(replay(&fx, "a", &r), 0);
    assert_string_equal(r.json, "{\"replayed\":0,\"superseded\":1}");
    assert_int_equal(llen(&fx, "wh:dead:a"), 0);
    assert_int_equal(llen(&fx, "wh:q:a:inc1"), 1);
    snprintf(jk, sizeof(jk), "wh:job:%s", j1);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, jk)), 0);
    /* j2 dead, then a newer j3 delivered: j2 is superseded too. */
    assert_int_equal(complete(&fx, j2, TC_STORE_WH_DEAD, 0, "{\"status\":500}"), 1);
    apply(&fx, "e3", "inc1", 3, "monitoring", "[\"api\"]", NULL, T2, &s3);
    snprintf(j3, sizeof(j3), "%" PRIu64 "-a", s3);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, j3);
    assert_int_equal(complete(&fx, j3, TC_STORE_WH_DELIVERED, 0, "{\"status\":200}"), 1);
    assert_int_equal(replay(&fx, "a", &r), 0);
    assert_string_equal(r.json, "{\"replayed\":0,\"superseded\":1}");
    /* A dead job with nothing newer goes back with attempts 0. */
    apply(&fx, "e4", "inc2", 1, "investigating", "[\"api\"]", NULL, T1, &s4);
    snprintf(j4, sizeof(j4), "%" PRIu64 "-a", s4);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_int_equal(complete(&fx, j4, TC_STORE_WH_DEAD, 0, "{\"status\":500}"), 1);
    stats(&fx, wall_ms() + 10, &queued, &due);
    assert_int_equal(queued, 0);
    assert_int_equal(replay(&fx, "a", &r), 0);
    assert_string_equal(r.json, "{\"replayed\":1,\"superseded\":0}");
    stats(&fx, wall_ms() + 10, &queued, &due);
    assert_int_equal(queued, 1);
    assert_int_equal(due, 1);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].job_id, j4);
    assert_int_equal(r.jobs[0].attempts, 0);
    stats(&fx, wall_ms() + 10, &queued, &due);
    assert_int_equal(queued, 1);
    assert_int_equal(due, 0); /* leased */
    assert_int_equal(replay(&fx, "nope", &r), TC_ENOENT);
    fx_fini(&fx);
}

static void
test_delete_drops_jobs(void **state)
{
    struct fx fx;
    struct wh_res r;
    uint64_t s1, n;
    char jk[96];

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(create(&fx, "a", "{\"url\":\"https://a.example/h\"}"), 0);
    assert_int_equal(create(&fx, "b", "{\"url\":\"https://b.example/h\"}"), 0);
    apply(&fx, "e1", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, &s1);
    apply(&fx, "e2", "inc2", 1, "investigating", "[\"api\"]", NULL, T1, NULL);
    assert_int_equal(redis_int("ZCARD %s", key(&fx, "wh:due")), 4);
    assert_int_equal(count_call(&fx, tc_store_wh_delete, "a", &n), 0);
    assert_int_equal(n, 1);
    snprintf(jk, sizeof(jk), "wh:job:%" PRIu64 "-a", s1);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, jk)), 0);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "wh:q:a:inc1")), 0);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "wh:qs:a")), 0);
    assert_int_equal(redis_int("ZCARD %s", key(&fx, "wh:due")), 2); /* b's remain */
    assert_int_equal(get(&fx, "a", &r), TC_ENOENT);
    assert_int_equal(count_call(&fx, tc_store_wh_delete, "a", NULL), TC_ENOENT);
    /* b's jobs are untouched and the list shows only b. */
    assert_int_equal(claim(&fx, wall_ms() + 10, 1000, &r), 2);
    memset(&r, 0, sizeof(r));
    tc_store_wh_list(fx.s, on_json, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.json[0], '[');
    assert_non_null(strstr(r.json, "\"id\":\"b\""));
    assert_null(strstr(r.json, "\"id\":\"a\""));
    fx_fini(&fx);
}

static void
test_rotate(void **state)
{
    struct fx fx;
    struct wh_res r = {0};
    json_t *ep, *secrets;
    json_int_t until;
    redisReply *rr;

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(create(&fx, "a", "{\"url\":\"https://a.example/h\"}"), 0);
    tc_store_wh_rotate(fx.s, "a", "whsec_two", on_json, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, 0);
    ep = json_loads(r.json, 0, NULL);
    assert_non_null(ep);
    secrets = json_object_get(ep, "secrets");
    assert_int_equal(json_array_size(secrets), 2);
    assert_string_equal(json_string_value(json_array_get(secrets, 0)), "whsec_two");
    assert_string_equal(json_string_value(json_array_get(secrets, 1)), "whsec_a_1");
    until = json_integer_value(json_object_get(ep, "old_secret_until"));
    assert_true(until >= (json_int_t)(tc_wall_us() / 1000000) + 86400 - 5);
    assert_true(json_is_array(json_object_get(json_object_get(ep, "filter"), "regions")));
    json_decref(ep);
    /* A second rotation keeps only the new and the previous secret. */
    memset(&r, 0, sizeof(r));
    tc_store_wh_rotate(fx.s, "a", "whsec_three", on_json, &r);
    wait_res(&fx, &r);
    assert_non_null(strstr(r.json, "\"secrets\":[\"whsec_three\",\"whsec_two\"]"));
    /* An expired previous secret is dropped when a job is claimed. */
    rr = redis_cmd("HSET %s a %s", key(&fx, "wh:endpoints"),
                   "{\"id\":\"a\",\"url\":\"https://a.example/h\",\"filter\":{\"components\":[],"
                   "\"regions\":[],\"min_impact\":\"none\"},\"secrets\":[\"s2\",\"s1\"],"
                   "\"old_secret_until\":1,\"disabled\":false}");
    freeReplyObject(rr);
    apply(&fx, "e1", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, NULL);
    assert_int_equal(claim(&fx, wall_ms() + 10, 1000, &r), 1);
    assert_non_null(strstr(r.jobs[0].endpoint, "\"secrets\":[\"s2\"]"));
    assert_non_null(strstr(r.jobs[0].endpoint, "\"old_secret_until\":null"));
    memset(&r, 0, sizeof(r));
    tc_store_wh_rotate(fx.s, "nope", "x", on_json, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, TC_ENOENT);
    fx_fini(&fx);
}

/* A disabled endpoint's queued jobs go to its dead list when claimed. */
static void
test_disabled_jobs_dead(void **state)
{
    struct fx fx;
    struct wh_res r = {0};

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(create(&fx, "a", "{\"url\":\"https://a.example/h\"}"), 0);
    apply(&fx, "e1", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, NULL);
    apply(&fx, "e2", "inc1", 2, "identified", "[\"api\"]", NULL, T2, NULL);
    tc_store_wh_disable(fx.s, "a", "410 Gone", on_json, &r);
    wait_res(&fx, &r);
    assert_int_equal(claim(&fx, wall_ms() + 10, 1000, &r), 0);
    assert_int_equal(llen(&fx, "wh:dead:a"), 2);
    assert_int_equal(redis_int("ZCARD %s", key(&fx, "wh:due")), 0);
    assert_int_equal(redis_int("GET %s", key(&fx, "wh:pending")), 0);
    /* No replay into a disabled endpoint; enabled again, it replays. */
    assert_int_equal(replay(&fx, "a", &r), TC_ESTATE);
    memset(&r, 0, sizeof(r));
    tc_store_wh_disable(fx.s, "a", NULL, on_json, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.json, "\"disabled\":false"));
    assert_int_equal(replay(&fx, "a", &r), 0);
    assert_string_equal(r.json, "{\"replayed\":2,\"superseded\":0}");
    assert_int_equal(claim(&fx, wall_ms() + 10, 1000, &r), 1);
    fx_fini(&fx);
}

/* webhook.disable_after: a failing streak longer than it disables the
 * endpoint; a delivery ends the streak. */
static void
test_failing_too_long_disables(void **state)
{
    struct fx fx;
    struct wh_res r = {0};
    uint64_t s1, s2;
    char j1[64], j2[64];

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.webhook_disable_after_ms = 60000;
    assert_int_equal(create(&fx, "a", "{\"url\":\"https://a.example/h\"}"), 0);
    apply(&fx, "e1", "inc1", 1, "investigating", "[\"api\"]", NULL, T1, &s1);
    apply(&fx, "e2", "inc2", 1, "investigating", "[\"api\"]", NULL, T1, &s2);
    snprintf(j1, sizeof(j1), "%" PRIu64 "-a", s1);
    snprintf(j2, sizeof(j2), "%" PRIu64 "-a", s2);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 2);
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_RETRY, 0, "{\"status\":500}"), 1);
    assert_int_equal(get(&fx, "a", &r), 0);
    assert_null(strstr(r.json, "\"failing_since\":null"));
    /* A delivery ends the streak. */
    assert_int_equal(complete(&fx, j2, TC_STORE_WH_DELIVERED, 0, "{\"status\":200}"), 1);
    assert_int_equal(get(&fx, "a", &r), 0);
    assert_non_null(strstr(r.json, "\"failing_since\":null"));
    /* A new streak that began over a minute ago: the next failure disables. */
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_RETRY, 0, "{\"status\":500}"), 1);
    redisReply *rr = redis_cmd("HSET %s a %llu", key(&fx, "wh:failing"),
                               (unsigned long long)(wall_ms() - 61000));
    freeReplyObject(rr);
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_RETRY, 0, "{\"status\":500}"), 2);
    assert_int_equal(get(&fx, "a", &r), 0);
    assert_non_null(strstr(r.json, "\"disabled\":true"));
    assert_non_null(strstr(r.json, "webhook.disable_after"));
    /* Already disabled: later failures say 1, not 2 again. */
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_RETRY, 0, "{\"status\":500}"), 1);
    /* 0 = never. */
    fx.cfg.webhook_disable_after_ms = 0;
    memset(&r, 0, sizeof(r));
    tc_store_wh_disable(fx.s, "a", NULL, on_json, &r);
    wait_res(&fx, &r);
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_RETRY, 0, "{\"status\":500}"), 1);
    rr = redis_cmd("HSET %s a 1", key(&fx, "wh:failing"));
    freeReplyObject(rr);
    assert_int_equal(complete(&fx, j1, TC_STORE_WH_RETRY, 0, "{\"status\":500}"), 1);
    fx_fini(&fx);
}

static const struct {
    const char *filter, *view;
    bool want;
} match_cases[] = {
    {"{}", "{\"components\":[\"api\"],\"regions\":[],\"global\":true,\"impact\":\"none\"}", true},
    {"{\"components\":[\"api\"]}",
     "{\"components\":[\"api\",\"db\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"minor\"}",
     true},
    {"{\"components\":[\"web\"]}",
     "{\"components\":[\"api\",\"db\"],\"regions\":[\"eu\"],\"global\":false,\"impact\":\"minor\"}",
     false},
    {"{\"components\":[\"api\"]}",
     "{\"components\":[],\"regions\":[],\"global\":true,\"impact\":\"major\"}", false},
    {"{\"regions\":[\"eu\"]}",
     "{\"components\":[\"api\"],\"regions\":[\"eu\",\"us\"],\"global\":false,\"impact\":\"minor\"}",
     true},
    {"{\"regions\":[\"ap\"]}",
     "{\"components\":[\"api\"],\"regions\":[\"eu\",\"us\"],\"global\":false,\"impact\":\"minor\"}",
     false},
    {"{\"regions\":[\"ap\"]}",
     "{\"components\":[\"api\"],\"regions\":[\"eu\"],\"global\":true,\"impact\":\"minor\"}", true},
    {"{\"regions\":[\"ap\"]}",
     "{\"components\":[\"api\"],\"regions\":[],\"global\":false,\"impact\":\"minor\"}", true},
    {"{\"min_impact\":\"major\"}",
     "{\"components\":[\"api\"],\"regions\":[],\"global\":true,\"impact\":\"minor\"}", false},
    {"{\"min_impact\":\"major\"}",
     "{\"components\":[\"api\"],\"regions\":[],\"global\":true,\"impact\":\"major\"}", true},
    {"{\"min_impact\":\"major\"}",
     "{\"components\":[\"api\"],\"regions\":[],\"global\":true,\"impact\":\"critical\"}", true},
    {"{\"components\":[\"api\"],\"regions\":[\"eu\"],\"min_impact\":\"minor\"}",
     "{\"components\":[\"api\"],\"regions\":[\"us\"],\"global\":false,\"impact\":\"critical\"}",
     false},
    {"{\"components\":[\"api\"],\"regions\":[\"eu\"],\"min_impact\":\"minor\"}",
     "{\"components\":[\"db\",\"api\"],\"regions\":[\"us\",\"eu\"],\"global\":false,"
     "\"impact\":\"minor\"}",
     true},
    {"{\"components\":[],\"regions\":[],\"min_impact\":\"none\"}",
     "{\"components\":[],\"regions\":[],\"global\":false,\"impact\":\"none\"}", true},
    {"{\"min_impact\":\"critical\"}",
     "{\"components\":[],\"regions\":[],\"global\":false,\"impact\":\"none\"}", false},
};

static void
test_lua_matches_c(void **state)
{
    static const char lua[] = TC_STORE__WH_MATCH_LUA
        "return wh_match(cjson.decode(ARGV[1]), cjson.decode(ARGV[2])) and 1 or 0\n";

    (void)state;
    assert_true(TC_ARRAY_SIZE(match_cases) >= 12);
    for (size_t i = 0; i < TC_ARRAY_SIZE(match_cases); i++) {
        struct tc_filter f = {0};
        struct tc_error err;
        json_t *fj = json_loads(match_cases[i].filter, 0, NULL);
        struct tc_match *m = tc_match_parse(match_cases[i].view, strlen(match_cases[i].view));
        redisReply *rr;
        bool c_says, lua_says;

        assert_non_null(fj);
        assert_non_null(m);
        assert_int_equal(tc_filter_from_json(fj, &f, &err), 0);
        c_says = tc_filter_match(&f, tc_match_view(m));
        rr = redis_cmd("EVAL %s 0 %s %s", lua, match_cases[i].filter, match_cases[i].view);
        assert_int_equal(rr->type, REDIS_REPLY_INTEGER);
        lua_says = rr->integer == 1;
        freeReplyObject(rr);
        if (c_says != match_cases[i].want || lua_says != match_cases[i].want) {
            fail_msg("case %zu: want %d, C %d, Lua %d", i, match_cases[i].want, c_says, lua_says);
        }
        tc_filter_fini(&f);
        tc_match_free(m);
        json_decref(fj);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enqueue_filters),
        cmocka_unit_test(test_order_and_lease),
        cmocka_unit_test(test_lost_claim_released),
        cmocka_unit_test(test_retry_dead_replay),
        cmocka_unit_test(test_delete_drops_jobs),
        cmocka_unit_test(test_rotate),
        cmocka_unit_test(test_disabled_jobs_dead),
        cmocka_unit_test(test_failing_too_long_disables),
        cmocka_unit_test(test_lua_matches_c),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
