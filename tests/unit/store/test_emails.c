/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of the email queue and subscriber registry (store/emails.c and
 * the per-event script's em_enqueue) against a real redis-server: which
 * subscribers get an update, one stored update per event with its reference
 * count, the coalescing window, the confirmation mail, leases, retry, the
 * window after a delivery, delete leaving no key behind, the address's
 * uniqueness, rate limits, the link key and the queue gauges.
 */
#include "store/emails.h"
#include "store/store_internal.h"
#include "store_fixture.h"

#include <inttypes.h>
#include <math.h>

#define MAX_JOBS 8

struct em_res {
    bool done;
    int status;
    char json[8192];
    uint64_t n, n2;
    size_t njobs;
    struct {
        char id[128];
        char sub[2048];
        enum tc_store_em_kind kind;
        char updates[8192];
        size_t updates_len, nitems;
        uint64_t attempts, first, lease_ms;
        char lease[TC_STORE_LEASE_MAX];
    } jobs[MAX_JOBS];
};

static struct em_res *cur_res;

static bool
res_done(struct fx *fx)
{
    (void)fx;
    return cur_res->done;
}

static void
wait_res(struct fx *fx, struct em_res *r)
{
    cur_res = r;
    assert_true(run_until(fx, res_done, 5000));
}

static void
on_json(void *arg, int status, const char *json, size_t len)
{
    struct em_res *r = arg;

    assert_false(r->done); /* exactly once */
    r->done = true;
    r->status = status;
    if (status == 0) {
        assert_non_null(json);
        assert_true(len < sizeof(r->json));
        memcpy(r->json, json, len);
        r->json[len] = '\0';
    } else {
        assert_null(json);
    }
}

static void
on_count(void *arg, int status, uint64_t n)
{
    struct em_res *r = arg;

    assert_false(r->done);
    r->done = true;
    r->status = status;
    r->n = n;
}

static void
on_stats(void *arg, int status, uint64_t queued, uint64_t due)
{
    struct em_res *r = arg;

    assert_false(r->done);
    r->done = true;
    r->status = status;
    r->n = queued;
    r->n2 = due;
}

static void
on_claim(void *arg, int status, const struct tc_store_em_job *jobs, size_t n)
{
    struct em_res *r = arg;

    assert_false(r->done);
    r->done = true;
    r->status = status;
    assert_true(n <= MAX_JOBS);
    r->njobs = n;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(strlen(jobs[i].subscriber), jobs[i].subscriber_len);
        snprintf(r->jobs[i].id, sizeof(r->jobs[i].id), "%s", jobs[i].subscriber_id);
        snprintf(r->jobs[i].sub, sizeof(r->jobs[i].sub), "%s", jobs[i].subscriber);
        /* A long backlog is kept only as its length. */
        r->jobs[i].updates_len = jobs[i].updates_len;
        if (jobs[i].updates_len < sizeof(r->jobs[i].updates)) {
            memcpy(r->jobs[i].updates, jobs[i].updates, jobs[i].updates_len);
            r->jobs[i].updates[jobs[i].updates_len] = '\0';
        }
        r->jobs[i].kind = jobs[i].kind;
        r->jobs[i].nitems = jobs[i].nitems;
        r->jobs[i].attempts = jobs[i].attempts;
        r->jobs[i].first = jobs[i].first_queued_ms;
        r->jobs[i].lease_ms = jobs[i].lease_until_ms;
        assert_true(strlen(jobs[i].lease) < sizeof(r->jobs[i].lease));
        snprintf(r->jobs[i].lease, sizeof(r->jobs[i].lease), "%s", jobs[i].lease);
    }
}

static uint64_t
wall_ms(void)
{
    return tc_wall_us() / 1000;
}

/* Creates a subscriber; r gets the answer. @returns the status. */
static int
create(struct fx *fx, const char *id, const char *address, const char *filter, bool confirmed,
       struct em_res *r)
{
    memset(r, 0, sizeof(*r));
    tc_store_em_create(fx->s, id, address, filter, confirmed, confirmed ? "admin" : "self-service",
                       on_json, r);
    wait_res(fx, r);
    return r->status;
}

/* An admin subscriber id@example.test with filter. */
static void
create_ok(struct fx *fx, const char *id, const char *filter)
{
    struct em_res r;
    char addr[128];

    snprintf(addr, sizeof(addr), "%s@example.test", id);
    assert_int_equal(create(fx, id, addr, filter, true, &r), 0);
    assert_non_null(strstr(r.json, "\"created\":true"));
}

static size_t
claim(struct fx *fx, uint64_t now, uint64_t lease, struct em_res *r)
{
    memset(r, 0, sizeof(*r));
    tc_store_em_claim(fx->s, now, lease, MAX_JOBS, on_claim, r);
    wait_res(fx, r);
    assert_int_equal(r->status, 0);
    return r->njobs;
}

static uint64_t
complete(struct fx *fx, const char *id, const char *lease, size_t nitems,
         enum tc_store_em_outcome o, uint64_t next)
{
    struct em_res r = {0};

    tc_store_em_complete(fx->s, id, lease, nitems, o, next, "{\"status\":250}", on_count, &r);
    wait_res(fx, &r);
    assert_int_equal(r.status, 0);
    return r.n;
}

static int
count_call(struct fx *fx, void (*fn)(struct tc_store *, const char *, tc_store_em_count_cb, void *),
           const char *id, uint64_t *n)
{
    struct em_res r = {0};

    fn(fx->s, id, on_count, &r);
    wait_res(fx, &r);
    if (n != NULL) {
        *n = r.n;
    }
    return r.status;
}

static int
json_call(struct fx *fx, void (*fn)(struct tc_store *, const char *, tc_store_em_json_cb, void *),
          const char *id, struct em_res *r)
{
    memset(r, 0, sizeof(*r));
    fn(fx->s, id, on_json, r);
    wait_res(fx, r);
    return r->status;
}

static uint64_t
resend(struct fx *fx, const char *id)
{
    uint64_t n = 99;

    assert_int_equal(count_call(fx, tc_store_em_resend_confirm, id, &n), 0);
    return n;
}

/* Applies an accepted event with impact; returns its seq. regions NULL is
 * a global incident. */
static uint64_t
apply_im(struct fx *fx, const char *event_id, const char *incident, int version, const char *impact,
         const char *components, const char *regions)
{
    struct tc_event ev;
    struct tc_store_result res;

    make_event(&ev, event_id, incident, version, "investigating", impact, components, regions, T1);
    assert_int_equal(apply_ev(fx, &ev, &res), 0);
    assert_int_equal(res.outcome, TC_STORE_ACCEPTED);
    tc_event_fini(&ev);
    return res.seq;
}

static long long
llen(struct fx *fx, const char *id)
{
    char k[96];

    snprintf(k, sizeof(k), "em:q:%s", id);
    return redis_int("LLEN %s", key(fx, k));
}

/* The queue of id as "s1,s2,c" (seqs by number). */
static void
queue_text(struct fx *fx, const char *id, char *out, size_t outlen)
{
    char k[96];
    redisReply *r;
    size_t used = 0;

    snprintf(k, sizeof(k), "em:q:%s", id);
    r = redis_cmd("LRANGE %s 0 -1", key(fx, k));
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    out[0] = '\0';
    for (size_t i = 0; i < r->elements; i++) {
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", i > 0 ? "," : "",
                                 r->element[i]->str);
        assert_true(used < outlen);
    }
    freeReplyObject(r);
}

/* Score of id in em:due, or -1. */
static long long
due_of(struct fx *fx, const char *id)
{
    redisReply *r = redis_cmd("ZSCORE %s %s", key(fx, "em:due"), id);
    /* A lease end lies a fraction of a ms below the ms it is over at. */
    long long v = r->type == REDIS_REPLY_STRING ? (long long)ceil(strtod(r->str, NULL)) : -1;

    freeReplyObject(r);
    return v;
}

static long long
hget_int(struct fx *fx, const char *hash, const char *field)
{
    redisReply *r = redis_cmd("HGET %s %s", key(fx, hash), field);
    /* A lease end lies a fraction of a ms below the ms it is over at. */
    long long v = r->type == REDIS_REPLY_STRING ? (long long)ceil(strtod(r->str, NULL)) : -1;

    freeReplyObject(r);
    return v;
}

static long long
refs(struct fx *fx, uint64_t seq)
{
    char f[32];

    snprintf(f, sizeof(f), "%" PRIu64, seq);
    return hget_int(fx, "em:refs", f);
}

static long long
upd_exists(struct fx *fx, uint64_t seq)
{
    char k[64];

    snprintf(k, sizeof(k), "em:upd:%" PRIu64, seq);
    return redis_int("EXISTS %s", key(fx, k));
}

/* Lists the keys of this test's prefix that match suffix_pattern, joined by
 * spaces into out. @returns their number. */
static size_t
scan_keys(struct fx *fx, const char *suffix_pattern, char *out, size_t outlen)
{
    char cursor[32] = "0";
    size_t n = 0, used = 0;

    out[0] = '\0';
    do {
        redisReply *r =
            redis_cmd("SCAN %s MATCH %s%s COUNT 1000", cursor, fx->prefix, suffix_pattern);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str + strlen(fx->prefix);
            used += (size_t)snprintf(out + used, outlen > used ? outlen - used : 0, "%s ", k);
            n++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    assert_true(used < outlen);
    return n;
}

/* The seqs of a claimed digest's updates, checked for shape. */
static size_t
update_seqs(const char *updates, uint64_t *seqs, size_t max)
{
    json_t *a = json_loads(updates, 0, NULL);
    size_t n;

    assert_true(json_is_array(a));
    n = json_array_size(a);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++) {
        json_t *u = json_array_get(a, i);
        json_t *inc = json_object_get(u, "incident");
        assert_true(json_is_integer(json_object_get(u, "seq")));
        assert_true(json_is_object(inc));
        assert_non_null(json_string_value(json_object_get(inc, "incident_id")));
        /* The state is passed through by string surgery: big integers stay. */
        assert_int_equal(json_integer_value(json_object_get(inc, "affected_users")),
                         9007199254740991LL);
        seqs[i] = (uint64_t)json_integer_value(json_object_get(u, "seq"));
    }
    json_decref(a);
    return n;
}

/* ---- enqueue ---- */

/* Which confirmed subscribers get an update (filter semantics as webhooks:
 * components intersect, a global incident reaches every region, min_impact),
 * and that the update is stored once with one reference per queue. */
static void
test_enqueue_filters(void **state)
{
    static const struct {
        const char *id, *filter;
        const char *want; /* queue after e1..e4: "1" is s1, and so on */
    } subs[] = {
        {"api", "{\"components\":[\"api\"]}", "1,4"}, /* inc1 keeps matching after its change */
        {"db", "{\"components\":[\"db\"]}", "2"},
        {"eu", "{\"regions\":[\"eu\"]}", "1,3,4"}, /* global inc1 reaches eu; inc2 is us only */
        {"crit", "{\"min_impact\":\"critical\"}", "2"},
        {"all", "{}", "1,2,3,4"},
    };
    struct fx fx;
    struct em_res r;
    uint64_t s[5];
    char got[128], want[128];

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    for (size_t i = 0; i < TC_ARRAY_SIZE(subs); i++) {
        create_ok(&fx, subs[i].id, subs[i].filter);
    }
    assert_int_equal(create(&fx, "self", "self@example.test", "{}", false, &r), 0);
    s[1] = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    s[2] = apply_im(&fx, "e2", "inc2", 1, "critical", "[\"db\"]", "[\"us\"]");
    s[3] = apply_im(&fx, "e3", "inc3", 1, "minor", "[\"web\"]", "[\"eu\"]");
    /* inc1 moves to web: it matched "api" once, so it still does. */
    s[4] = apply_im(&fx, "e4", "inc1", 2, "minor", "[\"web\"]", NULL);
    for (size_t i = 0; i < TC_ARRAY_SIZE(subs); i++) {
        size_t used = 0;
        const char *w = subs[i].want;

        want[0] = '\0';
        for (; *w != '\0'; w++) {
            if (*w == ',') {
                continue;
            }
            used += (size_t)snprintf(want + used, sizeof(want) - used, "%s%" PRIu64,
                                     used > 0 ? "," : "", s[*w - '0']);
        }
        queue_text(&fx, subs[i].id, got, sizeof(got));
        if (strcmp(got, want) != 0) {
            fail_msg("subscriber %s: queue %s, want %s", subs[i].id, got, want);
        }
    }
    /* The unconfirmed subscriber has its confirmation mail only. */
    queue_text(&fx, "self", got, sizeof(got));
    assert_string_equal(got, "c");
    /* One stored update per event, one reference per queue holding it. */
    assert_int_equal(scan_keys(&fx, "em:upd:*", got, sizeof(got)), 4);
    assert_int_equal(refs(&fx, s[1]), 3);
    assert_int_equal(refs(&fx, s[2]), 3);
    assert_int_equal(refs(&fx, s[3]), 2);
    assert_int_equal(refs(&fx, s[4]), 3);
    /* Duplicates and stale events queue nothing. */
    {
        struct tc_event ev;
        struct tc_store_result res;
        make_event(&ev, "e1", "inc1", 1, "investigating", "major", "[\"api\"]", NULL, T1);
        assert_int_equal(apply_ev(&fx, &ev, &res), 0);
        assert_int_equal(res.outcome, TC_STORE_DUPLICATE);
        tc_event_fini(&ev);
    }
    assert_int_equal(llen(&fx, "all"), 4);
    fx_fini(&fx);
}

/* No confirmed subscriber: an event writes no email key at all. */
static void
test_enqueue_nobody(void **state)
{
    struct fx fx;
    struct em_res r;
    char keys[512];

    (void)state;
    fx_init(&fx, "2s");
    apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    assert_int_equal(scan_keys(&fx, "em:*", keys, sizeof(keys)), 0);
    /* An unconfirmed subscriber gets nothing but its confirmation mail. */
    assert_int_equal(create(&fx, "self", "self@example.test", "{}", false, &r), 0);
    apply_im(&fx, "e2", "inc1", 2, "major", "[\"api\"]", NULL);
    assert_int_equal(scan_keys(&fx, "em:upd:*", keys, sizeof(keys)), 0);
    assert_int_equal(scan_keys(&fx, "em:refs", keys, sizeof(keys)), 0);
    assert_int_equal(llen(&fx, "self"), 1);
    fx_fini(&fx);
}

/* One em:upd per event however many subscribers; it goes when the last
 * queue holding it has mailed it. */
static void
test_update_refs(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t s1, now;
    char keys[256];

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    create_ok(&fx, "a", "{}");
    create_ok(&fx, "b", "{}");
    create_ok(&fx, "c", "{\"components\":[\"api\"]}");
    s1 = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    assert_int_equal(scan_keys(&fx, "em:upd:*", keys, sizeof(keys)), 1);
    assert_int_equal(refs(&fx, s1), 3);
    now = wall_ms() + 10;
    assert_int_equal(claim(&fx, now, 60000, &r), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(r.jobs[i].kind, TC_STORE_EM_DIGEST);
        assert_int_equal(r.jobs[i].nitems, 1);
    }
    assert_int_equal(complete(&fx, r.jobs[0].id, r.jobs[0].lease, 1, TC_STORE_EM_DELIVERED, 0), 1);
    assert_int_equal(complete(&fx, r.jobs[1].id, r.jobs[1].lease, 1, TC_STORE_EM_FAILED, 0), 1);
    assert_int_equal(refs(&fx, s1), 1);
    assert_int_equal(upd_exists(&fx, s1), 1);
    assert_int_equal(complete(&fx, r.jobs[2].id, r.jobs[2].lease, 1, TC_STORE_EM_DELIVERED, 0), 1);
    assert_int_equal(refs(&fx, s1), -1);
    assert_int_equal(upd_exists(&fx, s1), 0);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "em:refs")), 0);
    assert_int_equal(redis_int("ZCARD %s", key(&fx, "em:due")), 0);
    assert_int_equal(redis_int("HLEN %s", key(&fx, "em:first")), 0);
    fx_fini(&fx);
}

/* Three updates within the window become one mail, in seq order, due only
 * when the window closes. */
static void
test_coalesce(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t s[3], got[4], t0, t1, due;

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 60000;
    create_ok(&fx, "a", "{}");
    t0 = wall_ms();
    s[0] = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    due = (uint64_t)due_of(&fx, "a");
    run_until(&fx, never, 5); /* later updates come at a later ms */
    s[1] = apply_im(&fx, "e2", "inc2", 1, "major", "[\"api\"]", NULL);
    s[2] = apply_im(&fx, "e3", "inc1", 2, "major", "[\"api\"]", NULL);
    t1 = wall_ms();
    /* The first update opened the window; later ones do not move it. */
    assert_true(due >= t0 + 60000 && due <= t1 + 60000);
    assert_int_equal(due_of(&fx, "a"), (long long)due);
    assert_int_equal(claim(&fx, t1 + 10, 30000, &r), 0);
    assert_int_equal(claim(&fx, due - 1, 30000, &r), 0);
    assert_int_equal(claim(&fx, due, 30000, &r), 1);
    assert_string_equal(r.jobs[0].id, "a");
    assert_non_null(strstr(r.jobs[0].sub, "\"address\":\"a@example.test\""));
    assert_int_equal(r.jobs[0].kind, TC_STORE_EM_DIGEST);
    assert_int_equal(r.jobs[0].nitems, 3);
    assert_int_equal(r.jobs[0].attempts, 0);
    assert_true(r.jobs[0].first >= t0 && r.jobs[0].first <= t1);
    assert_int_equal(r.jobs[0].lease_ms, due + 30000);
    assert_int_equal(due_of(&fx, "a"), (long long)(due + 30000));
    assert_int_equal(update_seqs(r.jobs[0].updates, got, 4), 3);
    assert_true(s[0] < s[1] && s[1] < s[2]);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(got[i], s[i]);
    }
    assert_int_equal(complete(&fx, "a", r.jobs[0].lease, 3, TC_STORE_EM_DELIVERED, 0), 1);
    assert_int_equal(llen(&fx, "a"), 0);
    assert_int_equal(due_of(&fx, "a"), -1);
    assert_int_equal(hget_int(&fx, "em:first", "a"), -1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(upd_exists(&fx, s[i]), 0);
    }
    fx_fini(&fx);
}

/* A mail carries at most TC_STORE_EM_MAIL_UPDATES_MAX updates; the rest
 * wait for the next one. */
static void
test_mail_updates_max(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t s1;
    char k[96];
    redisContext *c;

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    create_ok(&fx, "a", "{}");
    s1 = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    /* 250 queued items of one update: a backlog without 250 events. */
    c = rc_connect();
    assert_non_null(c);
    snprintf(k, sizeof(k), "%sem:q:a", fx.prefix);
    for (int i = 1; i < 250; i++) {
        freeReplyObject(redisCommand(c, "RPUSH %s %" PRIu64, k, s1));
    }
    freeReplyObject(redisCommand(c, "HSET %s %" PRIu64 " 250", key(&fx, "em:refs"), s1));
    redisFree(c);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_int_equal(r.jobs[0].nitems, TC_STORE_EM_MAIL_UPDATES_MAX);
    assert_true(r.jobs[0].updates_len > TC_STORE_EM_MAIL_UPDATES_MAX * 100);
    assert_int_equal(
        complete(&fx, "a", r.jobs[0].lease, r.jobs[0].nitems, TC_STORE_EM_DELIVERED, 0), 1);
    assert_int_equal(llen(&fx, "a"), 250 - TC_STORE_EM_MAIL_UPDATES_MAX);
    assert_int_equal(refs(&fx, s1), 250 - TC_STORE_EM_MAIL_UPDATES_MAX);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_int_equal(r.jobs[0].nitems, 250 - TC_STORE_EM_MAIL_UPDATES_MAX);
    /* More than a mail carries is refused: it would drop unsent updates. */
    {
        struct em_res e = {0};
        tc_store_em_complete(fx.s, "a", r.jobs[0].lease, TC_STORE_EM_MAIL_UPDATES_MAX + 1,
                             TC_STORE_EM_DELIVERED, 0, NULL, on_count, &e);
        wait_res(&fx, &e);
        assert_int_equal(e.status, TC_EINVAL);
    }
    assert_int_equal(llen(&fx, "a"), 250 - TC_STORE_EM_MAIL_UPDATES_MAX);
    fx_fini(&fx);
}

/* ---- the confirmation mail ---- */

static void
test_confirm_flow(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t s1, now;
    json_t *j;
    redisReply *rr;
    char q[64];

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    assert_int_equal(create(&fx, "s", "s@example.test",
                            "{\"components\":[\"api\"],\"regions\":[],\"min_impact\":\"none\"}",
                            false, &r),
                     0);
    j = json_loads(r.json, 0, NULL);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "created")));
    assert_true(json_is_false(json_object_get(json_object_get(j, "subscriber"), "confirmed")));
    assert_true(json_is_null(json_object_get(json_object_get(j, "subscriber"), "confirmed_at")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "subscriber"), "source")),
        "self-service");
    json_decref(j);
    /* Due at once; an update for it is not queued while unconfirmed. */
    apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    assert_int_equal(llen(&fx, "s"), 1);
    assert_int_equal(resend(&fx, "s"), 0); /* already queued */
    now = wall_ms() + 10;
    assert_int_equal(claim(&fx, now, 60000, &r), 1);
    assert_int_equal(r.jobs[0].kind, TC_STORE_EM_CONFIRM);
    assert_int_equal(r.jobs[0].nitems, 1);
    assert_string_equal(r.jobs[0].updates, "[]");
    assert_int_equal(complete(&fx, "s", r.jobs[0].lease, 1, TC_STORE_EM_DELIVERED, 0), 1);
    assert_int_equal(llen(&fx, "s"), 0);
    assert_int_equal(due_of(&fx, "s"), -1);
    /* Resend queues it again, once. */
    assert_int_equal(resend(&fx, "s"), 1);
    assert_int_equal(resend(&fx, "s"), 0);
    assert_true(due_of(&fx, "s") > 0 && (uint64_t)due_of(&fx, "s") <= wall_ms());
    /* Confirming drops the queued confirmation mail and starts delivery. */
    assert_int_equal(json_call(&fx, tc_store_em_confirm, "s", &r), 0);
    assert_non_null(strstr(r.json, "\"confirmed\":true,"));
    assert_null(strstr(r.json, "\"confirmed_at\":null"));
    assert_non_null(strstr(r.json, "\"components\":[\"api\"],\"regions\":[]"));
    assert_int_equal(llen(&fx, "s"), 0);
    assert_int_equal(due_of(&fx, "s"), -1);
    rr = redis_cmd("HGET %s s", key(&fx, "em:confirmed"));
    assert_int_equal(rr->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(rr->str, "\"regions\":[]")); /* not {} */
    assert_non_null(strstr(rr->str, "\"components\":[\"api\"]"));
    freeReplyObject(rr);
    /* Idempotent: the same subscriber, confirmed_at unchanged. */
    snprintf(q, sizeof(q), "%s", strstr(r.json, "\"confirmed_at\":"));
    assert_int_equal(json_call(&fx, tc_store_em_confirm, "s", &r), 0);
    assert_non_null(strstr(r.json, q));
    assert_int_equal(resend(&fx, "s"), 0); /* confirmed */
    s1 = apply_im(&fx, "e2", "inc1", 2, "major", "[\"api\"]", NULL);
    queue_text(&fx, "s", q, sizeof(q));
    {
        char want[32];
        snprintf(want, sizeof(want), "%" PRIu64, s1);
        assert_string_equal(q, want);
    }
    assert_int_equal(json_call(&fx, tc_store_em_confirm, "nope", &r), TC_ENOENT);
    assert_int_equal(count_call(&fx, tc_store_em_resend_confirm, "nope", NULL), TC_ENOENT);
    fx_fini(&fx);
}

/* A "c" at the head is a mail of its own; a digest stops before a "c". */
static void
test_confirm_item_alone(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t s1, now;
    redisReply *rr;

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    create_ok(&fx, "a", "{}");
    assert_int_equal(create(&fx, "s", "s@example.test", "{}", false, &r), 0);
    s1 = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    /* Queue [c, s1] for s, by hand (the store never builds it). */
    rr = redis_cmd("RPUSH %s %" PRIu64, key(&fx, "em:q:s"), s1);
    freeReplyObject(rr);
    rr = redis_cmd("HINCRBY %s %" PRIu64 " 1", key(&fx, "em:refs"), s1);
    freeReplyObject(rr);
    now = wall_ms() + 10;
    assert_int_equal(claim(&fx, now, 60000, &r), 2);
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(r.jobs[i].id, "s") == 0) {
            assert_int_equal(r.jobs[i].kind, TC_STORE_EM_CONFIRM);
            assert_int_equal(r.jobs[i].nitems, 1);
            assert_int_equal(complete(&fx, "s", r.jobs[i].lease, 1, TC_STORE_EM_DELIVERED, 0), 1);
        }
    }
    assert_int_equal(llen(&fx, "s"), 1);
    assert_int_equal(refs(&fx, s1), 2);
    /* Now [s1, c]: the digest takes s1 only. */
    rr = redis_cmd("RPUSH %s c", key(&fx, "em:q:s"));
    freeReplyObject(rr);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].id, "s");
    assert_int_equal(r.jobs[0].kind, TC_STORE_EM_DIGEST);
    assert_int_equal(r.jobs[0].nitems, 1);
    fx_fini(&fx);
}

/* ---- leases, retry, the window after a mail ---- */

static void
test_lease(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t now;
    char l1[TC_STORE_LEASE_MAX], l2[TC_STORE_LEASE_MAX], whole[24];

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    create_ok(&fx, "a", "{}");
    apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    now = wall_ms() + 10;
    assert_int_equal(claim(&fx, now, 1000, &r), 1);
    snprintf(l1, sizeof(l1), "%s", r.jobs[0].lease);
    assert_int_equal(r.jobs[0].lease_ms, now + 1000);
    /* Leased: nobody else gets it within the lease. */
    assert_int_equal(claim(&fx, now + 999, 1000, &r), 0);
    /* A wrong lease (even its whole ms) changes nothing but the attempt
     * record. */
    snprintf(whole, sizeof(whole), "%" PRIu64, now + 1000);
    assert_int_equal(complete(&fx, "a", whole, 1, TC_STORE_EM_DELIVERED, 0), 0);
    assert_int_equal(llen(&fx, "a"), 1);
    assert_int_equal(due_of(&fx, "a"), (long long)(now + 1000));
    assert_int_equal(json_call(&fx, tc_store_em_get, "a", &r), 0);
    assert_non_null(strstr(r.json, "\"pending\":1,\"delivered\":0,\"failed\":0,"
                                   "\"attempts\":[{\"status\":250}]}"));
    /* After the lease another claim takes it; the old lease is void. */
    assert_int_equal(claim(&fx, now + 1000, 1000, &r), 1);
    snprintf(l2, sizeof(l2), "%s", r.jobs[0].lease);
    assert_int_equal(r.jobs[0].lease_ms, now + 2000);
    assert_int_equal(complete(&fx, "a", l1, 1, TC_STORE_EM_DELIVERED, 0), 0);
    assert_int_equal(llen(&fx, "a"), 1);
    assert_int_equal(complete(&fx, "a", l2, 1, TC_STORE_EM_DELIVERED, 0), 1);
    assert_int_equal(llen(&fx, "a"), 0);
    assert_int_equal(complete(&fx, "a", l2, 1, TC_STORE_EM_DELIVERED, 0), 0);
    /* An unknown subscriber: 0, and no attempt list appears. */
    assert_int_equal(complete(&fx, "nope", l2, 1, TC_STORE_EM_DELIVERED, 0), 0);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "em:att:nope")), 0);
    fx_fini(&fx);
}

/* Regression (Redis faults, SIGSTOP): a claim whose reply was lost held
 * its subscriber for the whole lease. Its unique lease end is remembered
 * and the next claim round makes the subscriber due again. */
static void
test_lost_claim_released(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t now;
    char lease_end[TC_STORE_LEASE_MAX], due[256];
    const struct tc_store__lost *lost;

    (void)state;
    fx_init(&fx, "300ms");
    fx.cfg.email_coalesce_ms = 0;
    lost = &fx.s->lost[TC_STORE__Q_EM];
    snprintf(due, sizeof(due), "%s", key(&fx, "em:due"));
    create_ok(&fx, "a", "{}");
    create_ok(&fx, "b", "{}");
    apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    /* b is leased by a claim that got its reply (a's claim is not
     * answered, so it is taken out of the way by hand). */
    freeReplyObject(redis_cmd("ZADD %s 99999999999999 a", due));
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].id, "b");
    freeReplyObject(redis_cmd("ZADD %s 1 a", due));
    redis_freeze();
    memset(&r, 0, sizeof(r));
    now = wall_ms() + 10;
    tc_store_em_claim(fx.s, now, 60000, MAX_JOBS, on_claim, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, TC_ETIMEDOUT);
    lost_claim_check(&fx, TC_STORE__Q_EM, now, 60000, due, "a", lease_end);
    /* Due again at once (not after 60 s); b stays leased. */
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].id, "a");
    assert_int_equal(r.jobs[0].nitems, 1);
    assert_string_not_equal(r.jobs[0].lease, lease_end);
    assert_int_equal(complete(&fx, "a", r.jobs[0].lease, 1, TC_STORE_EM_DELIVERED, 0), 1);
    assert_int_equal(llen(&fx, "a"), 0);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 0);
    /* Forgotten once its lease is over. */
    assert_int_equal(claim(&fx, now + 60000, 60000, &r), 1);
    assert_string_equal(r.jobs[0].id, "b");
    assert_int_equal(lost->n, 0);
    fx_fini(&fx);
}

static void
test_retry(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t now, next, s1;

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    create_ok(&fx, "a", "{}");
    s1 = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    now = wall_ms() + 10;
    next = now + 5000;
    assert_int_equal(claim(&fx, now, 60000, &r), 1);
    assert_int_equal(complete(&fx, "a", r.jobs[0].lease, 1, TC_STORE_EM_RETRY, next), 1);
    /* Items kept, due at next, one attempt counted. */
    assert_int_equal(llen(&fx, "a"), 1);
    assert_int_equal(upd_exists(&fx, s1), 1);
    assert_int_equal(due_of(&fx, "a"), (long long)next);
    assert_int_equal(hget_int(&fx, "em:tries", "a"), 1);
    assert_int_equal(claim(&fx, next - 1, 60000, &r), 0);
    assert_int_equal(claim(&fx, next, 60000, &r), 1);
    assert_int_equal(r.jobs[0].attempts, 1);
    assert_int_equal(r.jobs[0].nitems, 1);
    assert_int_equal(complete(&fx, "a", r.jobs[0].lease, 1, TC_STORE_EM_DELIVERED, 0), 1);
    assert_int_equal(hget_int(&fx, "em:tries", "a"), -1);
    assert_int_equal(json_call(&fx, tc_store_em_get, "a", &r), 0);
    assert_non_null(strstr(r.json, "\"pending\":0,\"delivered\":1,\"failed\":0,"));
    assert_non_null(strstr(r.json, "\"attempts\":[{\"status\":250},{\"status\":250}]"));
    fx_fini(&fx);
}

/* Updates queued while a mail is out wait a new window from its end. */
static void
test_delivered_then_window(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t s1, s2, due, got[2], t0, t1;
    char lease[TC_STORE_LEASE_MAX];

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 60000;
    create_ok(&fx, "a", "{}");
    s1 = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    due = (uint64_t)due_of(&fx, "a");
    assert_int_equal(claim(&fx, due, 30000, &r), 1);
    snprintf(lease, sizeof(lease), "%s", r.jobs[0].lease);
    s2 = apply_im(&fx, "e2", "inc1", 2, "major", "[\"api\"]", NULL);
    assert_int_equal(due_of(&fx, "a"), (long long)r.jobs[0].lease_ms); /* the lease holds */
    t0 = wall_ms();
    assert_int_equal(complete(&fx, "a", lease, 1, TC_STORE_EM_DELIVERED, 0), 1);
    t1 = wall_ms();
    assert_int_equal(llen(&fx, "a"), 1);
    assert_true((uint64_t)due_of(&fx, "a") >= t0 + 60000 &&
                (uint64_t)due_of(&fx, "a") <= t1 + 60000);
    assert_true((uint64_t)hget_int(&fx, "em:first", "a") >= t0 &&
                (uint64_t)hget_int(&fx, "em:first", "a") <= t1);
    assert_int_equal(upd_exists(&fx, s1), 0);
    assert_int_equal(claim(&fx, t1 + 10, 30000, &r), 0);
    assert_int_equal(claim(&fx, t1 + 60000, 30000, &r), 1);
    assert_int_equal(r.jobs[0].nitems, 1);
    assert_int_equal(update_seqs(r.jobs[0].updates, got, 2), 1);
    assert_int_equal(got[0], s2);
    /* Failed drops the items too, and is counted. */
    assert_int_equal(complete(&fx, "a", r.jobs[0].lease, 1, TC_STORE_EM_FAILED, 0), 1);
    assert_int_equal(llen(&fx, "a"), 0);
    assert_int_equal(due_of(&fx, "a"), -1);
    assert_int_equal(json_call(&fx, tc_store_em_get, "a", &r), 0);
    assert_non_null(strstr(r.json, "\"pending\":0,\"delivered\":1,\"failed\":1,"));
    fx_fini(&fx);
}

/* ---- registry ---- */

static void
test_delete_cleans(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t s1, s2, s3, n;
    char keys[1024], want[512];

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    create_ok(&fx, "a", "{}");
    create_ok(&fx, "b", "{\"components\":[\"api\"]}");
    /* a: one mail delivered (counters), then a retry (tries, attempts) and
     * two queued updates that only it holds; b holds s1. */
    s1 = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 2);
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(r.jobs[i].id, "a") == 0) {
            assert_int_equal(complete(&fx, "a", r.jobs[i].lease, 1, TC_STORE_EM_DELIVERED, 0), 1);
        }
    }
    s2 = apply_im(&fx, "e2", "inc2", 1, "major", "[\"db\"]", NULL);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].id, "a");
    assert_int_equal(complete(&fx, "a", r.jobs[0].lease, 1, TC_STORE_EM_RETRY, 0), 1);
    s3 = apply_im(&fx, "e3", "inc3", 1, "major", "[\"db\"]", NULL);
    assert_int_equal(hget_int(&fx, "em:tries", "a"), 1);
    assert_int_equal(llen(&fx, "a"), 2);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "em:cnt:a")), 1);
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "em:att:a")), 1);
    assert_int_equal(refs(&fx, s1), 1);
    assert_int_equal(count_call(&fx, tc_store_em_delete, "a", &n), 0);
    assert_int_equal(n, 1);
    /* Only b's keys and the update b still holds remain. */
    scan_keys(&fx, "em:*", keys, sizeof(keys));
    snprintf(want, sizeof(want), "em:upd:%" PRIu64 " ", s1);
    assert_non_null(strstr(keys, want));
    assert_null(strstr(keys, "em:q:a "));
    assert_null(strstr(keys, "em:att:a "));
    assert_null(strstr(keys, "em:cnt:a "));
    assert_int_equal(upd_exists(&fx, s2), 0);
    assert_int_equal(upd_exists(&fx, s3), 0);
    assert_int_equal(refs(&fx, s1), 1);
    assert_int_equal(scan_keys(&fx, "em:upd:*", keys, sizeof(keys)), 1);
    assert_int_equal(hget_int(&fx, "em:tries", "a"), -1);
    assert_int_equal(hget_int(&fx, "em:first", "a"), -1);
    assert_int_equal(due_of(&fx, "a"), -1);
    assert_int_equal(redis_int("HEXISTS %s a", key(&fx, "em:confirmed")), 0);
    assert_int_equal(redis_int("HLEN %s", key(&fx, "em:addr")), 1);
    assert_int_equal(json_call(&fx, tc_store_em_get, "a", &r), TC_ENOENT);
    assert_int_equal(count_call(&fx, tc_store_em_delete, "a", NULL), TC_ENOENT);
    /* With b gone too, not one email key is left. */
    assert_int_equal(count_call(&fx, tc_store_em_delete, "b", &n), 0);
    if (scan_keys(&fx, "em:*", keys, sizeof(keys)) != 0) {
        fail_msg("keys left after deleting every subscriber: %s", keys);
    }
    /* The address is free again. */
    assert_int_equal(create(&fx, "a2", "a@example.test", "{}", true, &r), 0);
    assert_non_null(strstr(r.json, "\"created\":true"));
    fx_fini(&fx);
}

/* A subscriber deleted behind the store's back: claim cleans its queue. */
static void
test_claim_drops_orphan(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t s1;
    redisReply *rr;

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 0;
    create_ok(&fx, "a", "{}");
    create_ok(&fx, "b", "{}");
    s1 = apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    rr = redis_cmd("HDEL %s a", key(&fx, "em:subs"));
    freeReplyObject(rr);
    assert_int_equal(claim(&fx, wall_ms() + 10, 60000, &r), 1);
    assert_string_equal(r.jobs[0].id, "b");
    assert_int_equal(llen(&fx, "a"), 0);
    assert_int_equal(due_of(&fx, "a"), -1);
    assert_int_equal(refs(&fx, s1), 1);
    /* An update gone missing is skipped; with none left the items go. */
    {
        char k[64];
        snprintf(k, sizeof(k), "em:upd:%" PRIu64, s1);
        rr = redis_cmd("DEL %s", key(&fx, k));
        freeReplyObject(rr);
    }
    assert_int_equal(claim(&fx, r.jobs[0].lease_ms, 60000, &r), 0);
    assert_int_equal(llen(&fx, "b"), 0);
    assert_int_equal(due_of(&fx, "b"), -1);
    assert_int_equal(refs(&fx, s1), -1);
    fx_fini(&fx);
}

static void
test_create_twice(void **state)
{
    struct fx fx;
    struct em_res r;
    json_t *j;

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(create(&fx, "a", "user@example.test", "{\"min_impact\":\"major\"}", true, &r),
                     0);
    j = json_loads(r.json, 0, NULL);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "created")));
    {
        json_t *sub = json_object_get(j, "subscriber");
        static const char *const keys[] = {"id",     "address",    "filter",      "confirmed",
                                           "source", "created_at", "confirmed_at"};
        for (size_t i = 0; i < TC_ARRAY_SIZE(keys); i++) {
            assert_non_null(json_object_get(sub, keys[i]));
        }
        assert_true(json_is_true(json_object_get(sub, "confirmed")));
        assert_true(json_is_integer(json_object_get(sub, "confirmed_at")));
        assert_string_equal(json_string_value(json_object_get(sub, "source")), "admin");
    }
    json_decref(j);
    /* An admin subscriber queues nothing. */
    assert_int_equal(llen(&fx, "a"), 0);
    assert_int_equal(redis_int("ZCARD %s", key(&fx, "em:due")), 0);
    /* The same address again: the existing one, nothing written. */
    assert_int_equal(create(&fx, "b", "user@example.test", "{}", false, &r), 0);
    assert_non_null(strstr(r.json, "\"created\":false"));
    assert_non_null(strstr(r.json, "\"id\":\"a\""));
    assert_int_equal(redis_int("HLEN %s", key(&fx, "em:subs")), 1);
    assert_int_equal(llen(&fx, "b"), 0);
    /* The same id with another address is refused. */
    assert_int_equal(create(&fx, "a", "other@example.test", "{}", true, &r), TC_ESTATE);
    assert_int_equal(redis_int("HLEN %s", key(&fx, "em:addr")), 1);
    /* Bad input writes nothing. */
    assert_int_equal(create(&fx, "c", "c@example.test", "[1]", true, &r), TC_EINVAL);
    assert_int_equal(create(&fx, "c", "c@example.test", "{", true, &r), TC_EINVAL);
    assert_int_equal(create(&fx, "", "c@example.test", "{}", true, &r), TC_EINVAL);
    assert_int_equal(create(&fx, "c", "", "{}", true, &r), TC_EINVAL);
    assert_int_equal(redis_int("HLEN %s", key(&fx, "em:subs")), 1);
    create_ok(&fx, "d", "{}");
    memset(&r, 0, sizeof(r));
    tc_store_em_list(fx.s, on_json, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, 0);
    j = json_loads(r.json, 0, NULL);
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 2);
    json_decref(j);
    fx_fini(&fx);
}

/* ---- rate limits, link key, gauges ---- */

static uint64_t
rate_hit(struct fx *fx, const char *bucket, uint64_t window_s)
{
    struct em_res r = {0};

    tc_store_em_rate_hit(fx->s, bucket, window_s, on_count, &r);
    wait_res(fx, &r);
    assert_int_equal(r.status, 0);
    return r.n;
}

/* Waits until the wall clock enters a new second (at most 1.1 s). */
static void
next_second(struct fx *fx)
{
    uint64_t s = tc_wall_us() / 1000000;

    while (tc_wall_us() / 1000000 == s) {
        run_until(fx, never, 20);
    }
}

static void
test_rate_hit(void **state)
{
    struct fx fx;
    struct em_res r = {0};
    char keys[512];
    redisReply *rr;

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(rate_hit(&fx, "ip:192.0.2.1", 3600), 1);
    assert_int_equal(rate_hit(&fx, "ip:192.0.2.1", 3600), 2);
    assert_int_equal(rate_hit(&fx, "ip:192.0.2.1", 3600), 3);
    assert_int_equal(rate_hit(&fx, "ip:192.0.2.2", 3600), 1);
    assert_int_equal(scan_keys(&fx, "em:rate:ip:192.0.2.1:*", keys, sizeof(keys)), 1);
    keys[strlen(keys) - 1] = '\0';
    rr = redis_cmd("TTL %s%s", fx.prefix, keys);
    assert_int_equal(rr->type, REDIS_REPLY_INTEGER);
    assert_true(rr->integer > 0 && rr->integer <= 3600);
    freeReplyObject(rr);
    /* A new window counts from 1 again. */
    next_second(&fx);
    assert_int_equal(rate_hit(&fx, "addr:a@example.test", 1), 1);
    assert_int_equal(rate_hit(&fx, "addr:a@example.test", 1), 2);
    next_second(&fx);
    assert_int_equal(rate_hit(&fx, "addr:a@example.test", 1), 1);
    tc_store_em_rate_hit(fx.s, "x", 0, on_count, &r);
    wait_res(&fx, &r);
    assert_int_equal(r.status, TC_EINVAL);
    fx_fini(&fx);
}

static void
test_link_key(void **state)
{
    struct fx fx;
    struct em_res r;

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(json_call(&fx, tc_store_em_link_key, "a2V5LW9uZQ==", &r), 0);
    assert_string_equal(r.json, "a2V5LW9uZQ==");
    /* The first writer wins: a second node gets the first key. */
    assert_int_equal(json_call(&fx, tc_store_em_link_key, "a2V5LXR3bw==", &r), 0);
    assert_string_equal(r.json, "a2V5LW9uZQ==");
    assert_int_equal(json_call(&fx, tc_store_em_link_key, "", &r), TC_EINVAL);
    fx_fini(&fx);
}

static void
stats(struct fx *fx, uint64_t now, uint64_t *queued, uint64_t *due)
{
    struct em_res r = {0};

    tc_store_em_stats(fx->s, now, on_stats, &r);
    wait_res(fx, &r);
    assert_int_equal(r.status, 0);
    *queued = r.n;
    *due = r.n2;
}

static void
test_stats(void **state)
{
    struct fx fx;
    struct em_res r;
    uint64_t queued, due, now;

    (void)state;
    fx_init(&fx, "2s");
    fx.cfg.email_coalesce_ms = 60000;
    stats(&fx, wall_ms(), &queued, &due);
    assert_int_equal(queued, 0);
    assert_int_equal(due, 0);
    create_ok(&fx, "a", "{}");
    apply_im(&fx, "e1", "inc1", 1, "major", "[\"api\"]", NULL);
    assert_int_equal(create(&fx, "s", "s@example.test", "{}", false, &r), 0);
    now = wall_ms() + 10;
    stats(&fx, now, &queued, &due);
    assert_int_equal(queued, 2);
    assert_int_equal(due, 1); /* s's confirmation; a waits for its window */
    assert_int_equal(claim(&fx, now, 120000, &r), 1);
    stats(&fx, now, &queued, &due);
    assert_int_equal(queued, 2);
    assert_int_equal(due, 0); /* leased */
    stats(&fx, now + 61000, &queued, &due);
    assert_int_equal(due, 1); /* a's window is over, s is still leased */
    fx_fini(&fx);
}

/* Nothing is sent while the store is down: every call answers at once. */
static void
test_not_ready(void **state)
{
    struct fx fx;
    struct em_res r = {0};

    (void)state;
    fx_init_at(&fx, "200ms", free_port(), false);
    tc_store_em_claim(fx.s, 0, 1000, 8, on_claim, &r);
    assert_true(r.done);
    assert_int_equal(r.status, TC_EIO);
    memset(&r, 0, sizeof(r));
    tc_store_em_get(fx.s, "a", on_json, &r);
    assert_true(r.done);
    assert_int_equal(r.status, TC_EIO);
    memset(&r, 0, sizeof(r));
    tc_store_em_delete(fx.s, "a", on_count, &r);
    assert_true(r.done);
    assert_int_equal(r.status, TC_EIO);
    memset(&r, 0, sizeof(r));
    tc_store_em_stats(fx.s, 0, on_stats, &r);
    assert_true(r.done);
    assert_int_equal(r.status, TC_EIO);
    fx_fini(&fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enqueue_filters),
        cmocka_unit_test(test_enqueue_nobody),
        cmocka_unit_test(test_update_refs),
        cmocka_unit_test(test_coalesce),
        cmocka_unit_test(test_mail_updates_max),
        cmocka_unit_test(test_confirm_flow),
        cmocka_unit_test(test_confirm_item_alone),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_lost_claim_released),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_delivered_then_window),
        cmocka_unit_test(test_delete_cleans),
        cmocka_unit_test(test_claim_drops_orphan),
        cmocka_unit_test(test_create_twice),
        cmocka_unit_test(test_rate_hit),
        cmocka_unit_test(test_link_key),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_not_ready),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
