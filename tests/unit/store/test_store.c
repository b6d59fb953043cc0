/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/store's scripts against a real redis-server: seq
 * assignment, dedup, version order, the active set, the history cap,
 * started_at, the match union, NOSCRIPT recovery, incident reads and close
 * with commands pending. The follower has its own file (test_follow.c).
 */
#include "model/filter.h"
#include "store_fixture.h"

/* The JSON of field f of the incident hash. @returns new json. */
static json_t *
hash_json(struct fx *fx, const char *incident, const char *field)
{
    char k[128];
    redisReply *r;
    json_t *j;

    snprintf(k, sizeof(k), "%sinc:%s", fx->prefix, incident);
    r = redis_cmd("HGET %s %s", k, field);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    j = json_loads(r->str, 0, NULL);
    if (j == NULL) {
        fail_msg("not JSON: %s", r->str);
    }
    freeReplyObject(r);
    return j;
}

/* The match field of the newest history entry. @returns new json. */
static json_t *
last_match(struct fx *fx)
{
    redisReply *r = redis_cmd("XREVRANGE %s + - COUNT 1", key(fx, "history"));
    const redisReply *fields;
    json_t *j = NULL;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    fields = r->element[0]->element[1];
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (strcmp(fields->element[i]->str, "m") == 0) {
            j = json_loads(fields->element[i + 1]->str, 0, NULL);
        }
    }
    freeReplyObject(r);
    assert_non_null(j);
    return j;
}

/* ---- tests ---- */

/* Rule: every accepted event gets the next seq, contiguous from 1. */
static void
test_accepted_seq_contiguous(void **state)
{
    struct fx fx;
    struct tc_store_result r1, r2;
    struct tc_event ev;
    uint64_t seq;

    (void)state;
    fx_init(&fx, "2s");
    make_event(&ev, "a1", "inc-a", 1, "investigating", "major", "[\"playback\"]", NULL, T1);
    assert_int_equal(apply_ev(&fx, &ev, &r1), 0);
    tc_event_fini(&ev);
    assert_int_equal(r1.outcome, TC_STORE_ACCEPTED);
    assert_int_equal(r1.seq, 1);
    assert_int_equal(strlen(r1.epoch), 32);
    make_event(&ev, "b1", "inc-b", 1, "investigating", "minor", "[\"search\"]", NULL, T1);
    assert_int_equal(apply_ev(&fx, &ev, &r2), 0);
    tc_event_fini(&ev);
    assert_int_equal(r2.seq, 2);
    assert_string_equal(r1.epoch, r2.epoch);
    assert_int_equal(apply(&fx, "a2", "inc-a", 2, "identified", "[\"playback\"]", NULL, T2, &seq),
                     TC_STORE_ACCEPTED);
    assert_int_equal(seq, 3);
    assert_int_equal(redis_int("XLEN %s", key(&fx, "history")), 3);
    fx_fini(&fx);
}

/* Rule: an event_id seen before changes nothing and uses no seq. */
static void
test_duplicate(void **state)
{
    struct fx fx;
    uint64_t seq = 0;

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(apply(&fx, "d1", "inc-d", 1, "investigating", "[\"x\"]", NULL, T1, &seq),
                     TC_STORE_ACCEPTED);
    assert_int_equal(seq, 1);
    /* Same event_id, even with a higher version: still a duplicate. */
    assert_int_equal(apply(&fx, "d1", "inc-d", 2, "identified", "[\"x\"]", NULL, T2, NULL),
                     TC_STORE_DUPLICATE);
    assert_int_equal(redis_int("GET %s", key(&fx, "seq")), 1);
    assert_true(redis_int("TTL %s", key(&fx, "dedup:d1")) > 86400);
    assert_int_equal(apply(&fx, "d2", "inc-d", 2, "identified", "[\"x\"]", NULL, T2, &seq),
                     TC_STORE_ACCEPTED);
    assert_int_equal(seq, 2);
    fx_fini(&fx);
}

/* Rule: a version <= the incident's current one is stale: nothing changes. */
static void
test_stale(void **state)
{
    struct fx fx;
    uint64_t seq = 0;
    json_t *st;

    (void)state;
    fx_init(&fx, "2s");
    assert_int_equal(apply(&fx, "s5", "inc-s", 5, "identified", "[\"x\"]", NULL, T1, &seq),
                     TC_STORE_ACCEPTED);
    assert_int_equal(apply(&fx, "s4", "inc-s", 4, "investigating", "[\"x\"]", NULL, T2, NULL),
                     TC_STORE_STALE);
    assert_int_equal(apply(&fx, "s5b", "inc-s", 5, "monitoring", "[\"x\"]", NULL, T2, NULL),
                     TC_STORE_STALE);
    /* Version 10 > 9 although "10" < "9" as text. */
    assert_int_equal(apply(&fx, "s9", "inc-s", 9, "monitoring", "[\"x\"]", NULL, T2, NULL),
                     TC_STORE_ACCEPTED);
    assert_int_equal(apply(&fx, "s10", "inc-s", 10, "monitoring", "[\"x\"]", NULL, T3, &seq),
                     TC_STORE_ACCEPTED);
    assert_int_equal(seq, 3);
    assert_int_equal(redis_int("GET %s", key(&fx, "seq")), 3);
    st = hash_json(&fx, "inc-s", "state");
    assert_int_equal(json_integer_value(json_object_get(st, "version")), 10);
    json_decref(st);
    /* A stale event_id is remembered too. */
    assert_int_equal(redis_int("EXISTS %s", key(&fx, "dedup:s4")), 1);
    fx_fini(&fx);
}

/* Rule: resolved leaves the active set but keeps the incident. */
static void
test_resolve_leaves_active(void **state)
{
    struct fx fx;
    redisReply *r;

    (void)state;
    fx_init(&fx, "2s");
    apply(&fx, "r1", "inc-r", 1, "investigating", "[\"x\"]", NULL, T1, NULL);
    apply(&fx, "q1", "inc-q", 1, "investigating", "[\"x\"]", NULL, T1, NULL);
    r = redis_cmd("SISMEMBER %s inc-r", key(&fx, "active"));
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    apply(&fx, "r2", "inc-r", 2, "resolved", "[\"x\"]", NULL, T2, NULL);
    r = redis_cmd("SMEMBERS %s", key(&fx, "active"));
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, "inc-q");
    freeReplyObject(r);
    r = redis_cmd("HGET %sinc:inc-r ends", fx.prefix);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
    fx_fini(&fx);
}

/* Rule: the history stream holds at most history.max_updates entries. */
static void
test_history_capped(void **state)
{
    struct fx fx;
    char id[32];
    redisReply *r;
    uint64_t seq = 0;

    (void)state;
    fx_init(&fx, "2s");
    for (int i = 1; i <= 105; i++) {
        snprintf(id, sizeof(id), "h%d", i);
        apply(&fx, id, "inc-h", i, "investigating", "[\"x\"]", NULL, T1, &seq);
        assert_int_equal(seq, i);
    }
    assert_int_equal(redis_int("XLEN %s", key(&fx, "history")), 100);
    r = redis_cmd("XRANGE %s - + COUNT 1", key(&fx, "history"));
    assert_string_equal(r->element[0]->element[0]->str, "6-0");
    freeReplyObject(r);
    /* The per-incident log keeps the newest 100. */
    assert_int_equal(redis_int("LLEN %s", key(&fx, "inc:inc-h:log")), 100);
    fx_fini(&fx);
}

/* Rule: started_at stays across updates and restarts when an ended incident
 * reopens; the state keeps key order and big integers (no cjson round trip). */
static void
test_started_at(void **state)
{
    struct fx fx;
    json_t *st;
    redisReply *r;

    (void)state;
    fx_init(&fx, "2s");
    apply(&fx, "t1", "inc-t", 1, "investigating", "[\"x\"]", NULL, T1, NULL);
    apply(&fx, "t2", "inc-t", 2, "identified", "[\"x\"]", NULL, T2, NULL);
    st = hash_json(&fx, "inc-t", "state");
    assert_string_equal(json_string_value(json_object_get(st, "started_at")), T1);
    assert_string_equal(json_string_value(json_object_get(st, "updated_at")), T2);
    assert_string_equal(json_string_value(json_object_get(st, "status")), "identified");
    json_decref(st);
    r = redis_cmd("HGET %sinc:inc-t state", fx.prefix);
    assert_non_null(strstr(r->str, "\"affected_users\":9007199254740991"));
    assert_true(strstr(r->str, "\"event_id\"") < strstr(r->str, "\"incident_id\""));
    assert_non_null(strstr(r->str, ",\"started_at\":\"" T1 "\"}"));
    freeReplyObject(r);
    apply(&fx, "t3", "inc-t", 3, "resolved", "[\"x\"]", NULL, T3, NULL);
    apply(&fx, "t4", "inc-t", 4, "investigating", "[\"x\"]", NULL, T4, NULL);
    st = hash_json(&fx, "inc-t", "state");
    assert_string_equal(json_string_value(json_object_get(st, "started_at")), T4);
    json_decref(st);
    fx_fini(&fx);
}

/* Rule: the match view is the union over versions since the incident
 * started; global once any version had no regions; the highest impact. */
static void
test_match_union(void **state)
{
    struct fx fx;
    struct tc_event ev;
    struct tc_store_result res;
    json_t *m;
    char *text;
    struct tc_match *mp;

    (void)state;
    fx_init(&fx, "2s");
    make_event(&ev, "m1", "inc-m", 1, "investigating", "critical", "[\"playback\"]",
               "[\"eu-west\"]", T1);
    assert_int_equal(apply_ev(&fx, &ev, &res), 0);
    tc_event_fini(&ev);
    m = last_match(&fx);
    text = json_dumps(m, JSON_COMPACT);
    assert_string_equal(text, "{\"components\":[\"playback\"],\"regions\":[\"eu-west\"],"
                              "\"global\":false,\"impact\":\"critical\"}");
    free(text);
    json_decref(m);
    make_event(&ev, "m2", "inc-m", 2, "identified", "minor", "[\"search\",\"playback\"]",
               "[\"us-east\"]", T2);
    assert_int_equal(apply_ev(&fx, &ev, &res), 0);
    tc_event_fini(&ev);
    make_event(&ev, "m3", "inc-m", 3, "monitoring", "minor", "[\"search\"]", "[]", T3);
    assert_int_equal(apply_ev(&fx, &ev, &res), 0);
    tc_event_fini(&ev);
    m = last_match(&fx);
    text = json_dumps(m, JSON_COMPACT);
    assert_string_equal(text, "{\"components\":[\"playback\",\"search\"],"
                              "\"regions\":[\"eu-west\",\"us-east\"],\"global\":true,"
                              "\"impact\":\"critical\"}");
    /* The model's parser reads what the script wrote. */
    mp = tc_match_parse(text, strlen(text));
    assert_non_null(mp);
    assert_int_equal(tc_match_view(mp)->ncomponents, 2);
    assert_int_equal(tc_match_view(mp)->nregions, 2);
    assert_true(tc_match_view(mp)->global);
    assert_int_equal(tc_match_view(mp)->impact, TC_IMPACT_CRITICAL);
    tc_match_free(mp);
    free(text);
    json_decref(m);
    /* A global incident from the start: regions is [] (not {}). */
    apply(&fx, "g1", "inc-g", 1, "investigating", "[\"x\"]", NULL, T1, NULL);
    m = last_match(&fx);
    assert_true(json_is_array(json_object_get(m, "regions")));
    assert_int_equal(json_array_size(json_object_get(m, "regions")), 0);
    assert_true(json_is_true(json_object_get(m, "global")));
    json_decref(m);
    fx_fini(&fx);
}

/* Rule: after SCRIPT FLUSH the EVALSHA gets NOSCRIPT and EVAL carries on. */
static void
test_noscript(void **state)
{
    struct fx fx;
    uint64_t seq = 0;
    redisReply *r;

    (void)state;
    fx_init(&fx, "2s");
    apply(&fx, "n1", "inc-n", 1, "investigating", "[\"x\"]", NULL, T1, &seq);
    assert_int_equal(seq, 1);
    r = redis_cmd("SCRIPT FLUSH");
    freeReplyObject(r);
    assert_int_equal(apply(&fx, "n2", "inc-n", 2, "identified", "[\"x\"]", NULL, T2, &seq),
                     TC_STORE_ACCEPTED);
    assert_int_equal(seq, 2);
    assert_true(tc_store_ready(fx.s));
    assert_int_equal(fx.ready_false, 0);
    fx_fini(&fx);
}

static void
block_once(uv_check_t *h)
{
    usleep(400 * 1000);
    uv_check_stop(h);
}

/* Rule: a reply that arrived while the loop was busy longer than
 * redis.timeout is read, not taken for a timeout. The check handle blocks
 * the loop after the poll that sent the command, so at the next turn the
 * command's timer is due before the reply is polled. */
static void
test_busy_loop_is_not_a_timeout(void **state)
{
    struct fx fx;
    uint64_t seq = 0;
    uv_check_t busy;

    (void)state;
    fx_init(&fx, "100ms");
    uv_check_init(&fx.loop, &busy);
    uv_check_start(&busy, block_once);
    assert_int_equal(apply(&fx, "b1", "inc-b", 1, "investigating", "[\"x\"]", NULL, T1, &seq),
                     TC_STORE_ACCEPTED);
    assert_int_equal(seq, 1);
    assert_true(tc_store_ready(fx.s));
    assert_int_equal(fx.ready_false, 0);
    uv_close((uv_handle_t *)&busy, NULL);
    fx_fini(&fx);
}

struct got {
    bool done;
    int status;
    json_t *json;
};

static void
on_incident(void *arg, int status, const char *json, size_t len)
{
    struct got *g = arg;
    g->done = true;
    g->status = status;
    if (status == 0) {
        g->json = json_loadb(json, len, 0, NULL);
    }
}

static struct got *cur_got;

static bool
got_done(struct fx *fx)
{
    (void)fx;
    return cur_got->done;
}

static void
get(struct fx *fx, const char *id, struct got *g)
{
    memset(g, 0, sizeof(*g));
    cur_got = g;
    tc_store_get_incident(fx->s, id, on_incident, g);
    assert_true(run_until(fx, got_done, 5000));
}

/* Rule: GET /v1/incidents/{id} gets the state and its updates, newest first. */
static void
test_get_incident(void **state)
{
    struct fx fx;
    struct got g;
    json_t *u;
    redisReply *r;

    (void)state;
    fx_init(&fx, "2s");
    apply(&fx, "i1", "inc-i", 1, "investigating", "[\"x\"]", NULL, T1, NULL);
    apply(&fx, "i2", "inc-i", 2, "identified", "[\"x\"]", NULL, T2, NULL);
    get(&fx, "inc-i", &g);
    assert_int_equal(g.status, 0);
    assert_non_null(g.json);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(g.json, "incident"), "version")), 2);
    u = json_object_get(g.json, "updates");
    assert_int_equal(json_array_size(u), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(u, 0), "seq")), 2);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(u, 1), "incident"), "version")),
                     1);
    json_decref(g.json);
    get(&fx, "nope", &g);
    assert_int_equal(g.status, TC_ENOENT);
    /* NOSCRIPT path of the read script too. */
    r = redis_cmd("SCRIPT FLUSH");
    freeReplyObject(r);
    get(&fx, "inc-i", &g);
    assert_int_equal(g.status, 0);
    json_decref(g.json);
    fx_fini(&fx);
}

/* Rule: close runs every pending callback once with TC_EIO, then close_cb. */
static void
test_close_with_pending(void **state)
{
    struct fx fx;
    struct tc_event ev;
    struct pending p = {0};
    struct got g = {0};

    (void)state;
    fx_init(&fx, "2s");
    fx_follow(&fx);
    make_event(&ev, "c1", "inc-c", 1, "investigating", "major", "[\"x\"]", NULL, T1);
    tc_store_apply(fx.s, &ev, on_applied, &p);
    tc_store_get_incident(fx.s, "inc-c", on_incident, &g);
    tc_event_fini(&ev);
    tc_store_close(fx.s, on_closed, &fx);
    assert_true(run_until(&fx, is_closed, 5000));
    assert_true(p.done);
    assert_int_equal(p.status, TC_EIO);
    assert_true(g.done);
    assert_int_equal(g.status, TC_EIO);
    uv_close((uv_handle_t *)&fx.tick, NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx.loop), 0);
    tc_config_fini(&fx.cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_seq_contiguous),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_resolve_leaves_active),
        cmocka_unit_test(test_history_capped),
        cmocka_unit_test(test_started_at),
        cmocka_unit_test(test_match_union),
        cmocka_unit_test(test_noscript),
        cmocka_unit_test(test_busy_loop_is_not_a_timeout),
        cmocka_unit_test(test_get_incident),
        cmocka_unit_test(test_close_with_pending),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
