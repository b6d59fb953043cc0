/* tocsin — SPDX-License-Identifier: MIT
 *
 * Unit tests of broker/store's follower and connection handling against a
 * real redis-server: load then entries in order, a new epoch after FLUSHALL,
 * a gap in the stream, reconnect after the server drops us (continuing from
 * the last seq), and a hung Redis (SIGSTOP) with timeouts and recovery.
 */
#include "store_fixture.h"

#include "metrics/metrics.h"

/* Rule: the follower loads the picture (history capped at its argument,
 * oldest first, ending at seq), then gets every later update in order. */
static void
test_follower(void **state)
{
    struct fx fx;

    (void)state;
    fx_init(&fx, "2s");
    for (int i = 1; i <= 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "f%d", i);
        apply(&fx, id, i == 5 ? "inc-f2" : "inc-f", i, i == 4 ? "resolved" : "investigating",
              "[\"x\"]", NULL, T1, NULL);
    }
    fx_follow(&fx);
    assert_true(run_until(&fx, loaded_once, 5000));
    assert_int_equal(fx.load_seq, 5);
    assert_int_equal(fx.load_nactive, 1); /* inc-f resolved, inc-f2 active */
    assert_int_equal(fx.load_nhistory, 3);
    assert_int_equal(fx.load_first, 3);
    assert_int_equal(fx.load_last, 5);
    for (int i = 6; i <= 8; i++) {
        char id[16];
        snprintf(id, sizeof(id), "f%d", i);
        apply(&fx, id, "inc-f2", i, "identified", "[\"x\"]", NULL, T2, NULL);
    }
    assert_true(run_until(&fx, seen_three, 5000));
    assert_int_equal(fx.seen[0], 6);
    assert_int_equal(fx.seen[2], 8);
    assert_true(fx.order_ok);
    assert_int_equal(fx.loads, 1);
    fx_fini(&fx);
}

/* Rule: when Redis loses its data the epoch changes and the follower loads
 * the new picture; seq starts again at 1. */
static void
test_flushall_new_epoch(void **state)
{
    struct fx fx;
    struct tc_event ev;
    struct tc_store_result res;
    char old[TC_EPOCH_MAX];
    redisReply *r;

    (void)state;
    fx_init(&fx, "2s");
    apply(&fx, "x1", "inc-x", 1, "investigating", "[\"x\"]", NULL, T1, NULL);
    fx_follow(&fx);
    assert_true(run_until(&fx, loaded_once, 5000));
    snprintf(old, sizeof(old), "%s", fx.load_epoch);
    r = redis_cmd("FLUSHALL");
    freeReplyObject(r);
    assert_true(run_until(&fx, loaded_twice, 5000));
    assert_string_not_equal(fx.load_epoch, old);
    assert_int_equal(fx.load_seq, 0);
    assert_int_equal(fx.load_nactive, 0);
    make_event(&ev, "x2", "inc-x", 2, "identified", "major", "[\"x\"]", NULL, T2);
    assert_int_equal(apply_ev(&fx, &ev, &res), 0);
    tc_event_fini(&ev);
    assert_int_equal(res.outcome, TC_STORE_ACCEPTED);
    assert_int_equal(res.seq, 1);
    assert_string_equal(res.epoch, fx.load_epoch);
    assert_true(run_until(&fx, seen_one, 5000));
    assert_int_equal(fx.seen[0], 1);
    assert_true(fx.order_ok);
    fx_fini(&fx);
}

static bool
seen_two(struct fx *fx)
{
    return fx->nseen >= 2;
}

/* Rule: when Redis drops the connections, the store reconnects by itself and
 * the follower continues from its last seq without loading again. */
static void
test_reconnect_continues(void **state)
{
    struct fx fx;
    redisReply *r;
    uint64_t seq = 0;

    (void)state;
    fx_init(&fx, "2s");
    fx_follow(&fx);
    assert_true(run_until(&fx, loaded_once, 5000));
    apply(&fx, "ck1", "inc-ck", 1, "investigating", "[\"x\"]", NULL, T1, NULL);
    assert_true(run_until(&fx, seen_one, 5000));
    r = redis_cmd("CLIENT KILL TYPE normal");
    assert_true(r->type == REDIS_REPLY_INTEGER && r->integer >= 2);
    freeReplyObject(r);
    assert_true(run_until(&fx, ready_again, 5000));
    assert_int_equal(fx.ready_false, 1);
    apply(&fx, "ck2", "inc-ck", 2, "identified", "[\"x\"]", NULL, T2, &seq);
    assert_int_equal(seq, 2);
    assert_true(run_until(&fx, seen_two, 5000));
    assert_int_equal(fx.seen[1], 2);
    assert_int_equal(fx.loads, 1);
    assert_true(fx.order_ok);
    fx_fini(&fx);
}

/* Rule: a seq missing from the stream (here: skipped on purpose, as when
 * the stream was trimmed past the follower) makes the follower load again. */
static void
test_gap_reloads(void **state)
{
    struct fx fx;
    redisReply *r;
    uint64_t seq = 0;

    (void)state;
    fx_init(&fx, "2s");
    apply(&fx, "gp1", "inc-gp", 1, "investigating", "[\"x\"]", NULL, T1, NULL);
    fx_follow(&fx);
    assert_true(run_until(&fx, loaded_once, 5000));
    assert_int_equal(fx.load_seq, 1);
    r = redis_cmd("INCR %s", key(&fx, "seq"));
    freeReplyObject(r);
    apply(&fx, "gp2", "inc-gp", 2, "identified", "[\"x\"]", NULL, T2, &seq);
    assert_int_equal(seq, 3);
    assert_true(run_until(&fx, loaded_twice, 5000));
    assert_int_equal(fx.load_seq, 3);
    assert_int_equal(fx.nseen, 0); /* seq 3 came in the load, not as an entry */
    fx_fini(&fx);
}

static bool
two_done(struct fx *fx)
{
    (void)fx;
    return cur_pending[0].done && cur_pending[1].done;
}

/* Rule: a hung Redis makes commands time out (TC_ETIMEDOUT), fails every
 * pending one, reports not ready, and recovers by itself when it returns. */
static void
test_hung_redis(void **state)
{
    struct fx fx;
    struct tc_event e1, e2;
    struct pending p[2] = {{0}, {0}};
    struct pending p3 = {0};
    uint64_t t0, seq = 0;

    (void)state;
    fx_init(&fx, "500ms");
    fx_follow(&fx);
    assert_true(run_until(&fx, loaded_once, 5000));
    make_event(&e1, "k1", "inc-k", 1, "investigating", "major", "[\"x\"]", NULL, T1);
    make_event(&e2, "k2", "inc-k", 2, "identified", "major", "[\"x\"]", NULL, T2);
    assert_int_equal(kill(redis_pid, SIGSTOP), 0);
    t0 = tc_now_ms();
    cur_pending = p;
    tc_store_apply(fx.s, &e1, on_applied, &p[0]);
    tc_store_apply(fx.s, &e2, on_applied, &p[1]);
    assert_true(run_until(&fx, two_done, 3000));
    assert_int_equal(p[0].status, TC_ETIMEDOUT);
    assert_true(p[1].status == TC_ETIMEDOUT || p[1].status == TC_EIO);
    assert_true(tc_now_ms() - t0 >= 450);
    assert_int_equal(fx.ready_false, 1);
    assert_false(tc_store_ready(fx.s));
    /* Not ready: fails at once. */
    tc_store_apply(fx.s, &e1, on_applied, &p3);
    assert_true(p3.done);
    assert_int_equal(p3.status, TC_EIO);
    if (tc_now_ms() - t0 < 3000) {
        run_until(&fx, never, 3000 - (tc_now_ms() - t0));
    }
    assert_false(tc_store_ready(fx.s));
    assert_int_equal(kill(redis_pid, SIGCONT), 0);
    assert_true(run_until(&fx, ready_again, 10000));
    assert_int_equal(fx.ready_false, 1);
    /* k1/k2 may have run once Redis woke up (at-least-once); k3 is new. */
    assert_int_equal(apply(&fx, "k3", "inc-k", 3, "monitoring", "[\"x\"]", NULL, T3, &seq),
                     TC_STORE_ACCEPTED);
    assert_true(seq >= 1);
    assert_true(tc_store_reachable(fx.s));
    tc_event_fini(&e1);
    tc_event_fini(&e2);
    fx_fini(&fx);
}

/* Rule: with no Redis at all, the store keeps retrying with backoff, is
 * neither ready nor reachable, fails commands at once, and closes cleanly. */
static void
test_unreachable(void **state)
{
    struct fx fx;
    struct tc_event ev;
    struct pending p = {0};
    uint64_t reconnects = tc_metrics_get(TC_M_REDIS_RECONNECTS);

    (void)state;
    fx_init_at(&fx, "200ms", free_port(), false);
    fx_follow(&fx);
    run_until(&fx, never, 800);
    assert_false(tc_store_ready(fx.s));
    assert_false(tc_store_reachable(fx.s));
    /* Two connections, each retried after a 200 ms timeout and a 100, 200,
     * 400 ms backoff: 4 in 800 ms, at least 2 on a slow machine. */
    assert_true(tc_metrics_get(TC_M_REDIS_RECONNECTS) - reconnects >= 2);
    assert_true(tc_metrics_get(TC_M_REDIS_RECONNECTS) - reconnects <= 8);
    make_event(&ev, "u1", "inc-u", 1, "investigating", "major", "[\"x\"]", NULL, T1);
    tc_store_apply(fx.s, &ev, on_applied, &p);
    tc_event_fini(&ev);
    assert_true(p.done);
    assert_int_equal(p.status, TC_EIO);
    assert_int_equal(fx.ready_true + fx.ready_false + fx.loads, 0);
    fx_fini(&fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follower),
        cmocka_unit_test(test_flushall_new_epoch),
        cmocka_unit_test(test_reconnect_continues),
        cmocka_unit_test(test_gap_reloads),
        cmocka_unit_test(test_hung_redis),
        cmocka_unit_test(test_unreachable),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
