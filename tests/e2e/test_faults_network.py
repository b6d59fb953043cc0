# tocsin — SPDX-License-Identifier: MIT
#
# Network faults (issue 7, DESIGN §8): a TCP fault proxy (faultproxy.py)
# between tocsind and redis-server, and between tocsind and a webhook
# receiver, delays, stalls and cuts the traffic. Through all of it nothing
# accepted is lost, nothing is notified twice and no incident goes back a
# version; a Redis hang pauses ingest while sessions stay open, and a webhook
# attempt that times out or is cut is retried with the same webhook-id.

import asyncio
import json
import time
import types

import pytest

from clients import Ws, check_seq_run, in_thread, run
from helpers import event, pairs, stream, uid, wait_until
from webhook_receiver import create, start


def _redis_behind_proxy(proxies, redis_server):
    """A proxy in front of the session redis-server, and what tocsind_factory
    takes as its `redis` (only the URL is read)."""
    p = proxies(redis_server.port)
    return p, types.SimpleNamespace(url=f"redis://127.0.0.1:{p.port}/0")


def _ready(t):
    return t.get("/readyz", timeout=2)[0] == 200


def _check_counts(t, produced):
    """A script whose reply was lost (timed out, or cut) may still have run;
    its retry is then a duplicate. Never more accepted than produced, and
    none missing."""
    m = t.metrics()
    accepted = m.get('tocsin_events_total{result="accepted"}', 0)
    assert accepted <= produced, m
    assert accepted + m.get('tocsin_events_total{result="duplicate"}', 0) >= produced, m


def _histogram_mean(t, name):
    m = t.metrics()
    return m.get(f"{name}_sum", 0.0) / max(m.get(f"{name}_count", 0.0), 1.0)


# ---------------------------------------------------------------- Redis link


@pytest.mark.timeout(90)
def test_redis_link_delayed_200ms_delivers_in_order_once(tocsind_factory, proxies, redis_server,
                                                        kafka):
    proxy, redis = _redis_behind_proxy(proxies, redis_server)
    proxy.delay(200)  # each way, so every Redis round trip takes 400 ms or more
    # A timeout well above the round trip: the delay alone must not drop
    # a connection, even on a loaded machine.
    t = tocsind_factory(redis=redis, env={"TOCSIN_REDIS_TIMEOUT": "5s"})
    evs = stream(3, 4)

    async def body():
        ws = await Ws.connect(t.ws_url)
        snap = await ws.expect("snapshot")
        await in_thread(kafka.produce_all, evs)
        ups = await ws.updates(len(evs), timeout=45)
        await ws.quiet(1.0)
        await ws.close()
        return snap, ups

    snap, ups = run(body(), timeout=70)
    check_seq_run(ups, snap["seq"])
    assert pairs(u["incident"] for u in ups) == pairs(evs)
    m = t.metrics()
    assert m.get('tocsin_events_total{result="accepted"}') == len(evs), m
    assert m.get("tocsin_redis_timeouts_total", 0) == 0, m
    # The proxy really held every round trip.
    assert _histogram_mean(t, "tocsin_store_seconds") >= 0.4, m


@pytest.mark.timeout(90)
def test_redis_link_stalled_pauses_ingest_and_keeps_sessions(tocsind_factory, proxies,
                                                             redis_server, kafka):
    proxy, redis = _redis_behind_proxy(proxies, redis_server)
    t = tocsind_factory(redis=redis, env={"TOCSIN_REDIS_TIMEOUT": "1s"})
    before, during = stream(2, 2), stream(2, 3)

    async def body():
        ws = await Ws.connect(t.ws_url)
        snap = await ws.expect("snapshot")
        await in_thread(kafka.produce_all, before)
        ups = await ws.updates(len(before))
        stalled_at = time.monotonic()
        proxy.stall()
        try:
            await in_thread(kafka.produce_all, during)
            # Every command now hangs: its timer fires, the connection is
            # dropped, ingest pauses and /readyz says so, while the session
            # stays open with nothing to say.
            await in_thread(wait_until, lambda: not _ready(t), 20, 0.2, "/readyz to fail")
            await in_thread(t.wait_metric, "tocsin_redis_timeouts_total", 1)
            await in_thread(t.wait_metric, "tocsin_ingest_paused", 1)
            assert t.metric("tocsin_redis_connected") == 0
            await ws.quiet(max(0.5, 6.0 - (time.monotonic() - stalled_at)))
            assert (await in_thread(t.get, "/healthz"))[0] == 200
        finally:
            proxy.resume()
        ups += await ws.updates(len(during), timeout=40)
        await ws.quiet(1.0)
        await ws.close()
        return snap, ups

    snap, ups = run(body(), timeout=80)
    check_seq_run(ups, snap["seq"])
    assert pairs(u["incident"] for u in ups) == pairs(before + during)
    wait_until(lambda: _ready(t), 15, 0.2, "/readyz back")
    assert t.metric("tocsin_ingest_paused") == 0
    assert "command timed out" in t.log_text()
    _check_counts(t, len(before) + len(during))


@pytest.mark.timeout(90)
def test_redis_link_cut_mid_stream_reconnects(tocsind_factory, proxies, redis_server, kafka):
    proxy, redis = _redis_behind_proxy(proxies, redis_server)
    t = tocsind_factory(redis=redis, env={"TOCSIN_REDIS_TIMEOUT": "1s"})
    evs = stream(4, 15)  # 60 events over about 3 s
    cuts = []

    def cut_three_times():
        for rst in (True, False, True):
            time.sleep(0.6)
            # Both connections (commands, history follower) are up again
            # before each cut, so every cut hits a live link.
            wait_until(lambda: proxy.open >= 2 and _ready(t), 20, 0.05, "both Redis links")
            cuts.append(proxy.cut(rst=rst))

    async def body():
        ws = await Ws.connect(t.ws_url)
        snap = await ws.expect("snapshot")
        producing = in_thread(kafka.produce_all, evs, 0.05)
        await asyncio.gather(producing, in_thread(cut_three_times))
        ups = await ws.updates(len(evs), timeout=40)
        await ws.quiet(1.0)
        await ws.close()
        return snap, ups

    snap, ups = run(body(), timeout=80)
    assert len(cuts) == 3 and min(cuts) >= 2, cuts
    check_seq_run(ups, snap["seq"])
    assert pairs(u["incident"] for u in ups) == pairs(evs)
    wait_until(lambda: _ready(t), 15, 0.2, "/readyz back")
    assert t.metric("tocsin_redis_reconnects_total") >= 3
    _check_counts(t, len(evs))


@pytest.mark.timeout(60)
def test_redis_link_reset_while_idle_is_seen_at_once(tocsind_factory, proxies, redis_server,
                                                     kafka):
    """Regression: hiredis 0.14's libuv adapter dropped uv_poll errors, so a
    reset (RST) link, or a refused reconnect, was only noticed when a command
    timed out. With a 30 s redis.timeout, recovery must not wait for it."""
    proxy, redis = _redis_behind_proxy(proxies, redis_server)
    t = tocsind_factory(redis=redis, env={"TOCSIN_REDIS_TIMEOUT": "30s"})
    iid = uid("inc")

    async def body():
        ws = await Ws.connect(t.ws_url)
        snap = await ws.expect("snapshot")
        await in_thread(kafka.produce, event(iid, 1))
        ups = await ws.updates(1)
        await asyncio.sleep(0.5)  # the follower is in its XREAD BLOCK
        proxy.refuse(True)
        assert proxy.cut(rst=True) == 2
        await in_thread(wait_until, lambda: t.metric("tocsin_redis_connected") == 0, 10, 0.1,
                        "the reset seen")
        await asyncio.sleep(1.0)  # reconnects are refused meanwhile
        proxy.refuse(False)
        await in_thread(kafka.produce, event(iid, 2))
        ups += await ws.updates(1, timeout=15)
        await ws.close()
        return snap, ups

    snap, ups = run(body(), timeout=50)
    check_seq_run(ups, snap["seq"])
    assert [u["incident"]["version"] for u in ups] == [1, 2]
    assert t.metric("tocsin_redis_timeouts_total") == 0
    assert "Connection refused" in t.log_text()


# ------------------------------------------------------------- webhook link

LONG_RETRIES = ",".join(["1s"] * 10)  # enough attempts to outlast any fault here


def _receiver_behind_proxy(receivers, proxies, script=()):
    r = receivers(script)
    p = proxies(r.port)
    return r, p, f"http://127.0.0.1:{p.port}/hook"


def _by_message(got):
    """The receiver's POSTs grouped by webhook-id, in the order each id
    first arrived: [(webhook-id, [bodies])]."""
    out = {}
    for headers, body in got:
        out.setdefault(headers["webhook-id"], []).append(body)
    return list(out.items())


def _check_messages(got, versions):
    """One webhook-id per update, first seen in version order; every attempt
    of a message carries the same body."""
    msgs = _by_message(got)
    assert [json.loads(bodies[0])["incident"]["version"] for _, bodies in msgs] == versions, msgs
    for wid, bodies in msgs:
        assert len(set(bodies)) == 1, f"{wid}: attempts differ: {bodies}"
    return msgs


@pytest.mark.timeout(60)
def test_webhook_link_delayed_below_timeout_delivers_once(tocsind_factory, kafka, receivers,
                                                         proxies):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_TIMEOUT="5s")
    r, proxy, url = _receiver_behind_proxy(receivers, proxies)
    proxy.delay(300)  # 600 ms or more per attempt, well below the timeout
    create(t, url)
    iid = uid("inc")
    kafka.produce_all([event(iid, 1), event(iid, 2), event(iid, 3)])
    wait_until(lambda: t.metric("tocsin_webhook_deliveries_total") >= 3, 30, 0.2, "3 deliveries")
    time.sleep(1.0)
    assert len(r.got) == 3, r.got
    _check_messages(r.got, [1, 2, 3])
    m = t.metrics()
    assert m.get("tocsin_webhook_deliveries_total") == 3, m
    assert not any(v for k, v in m.items() if k.startswith("tocsin_webhook_failures_total")), m
    assert _histogram_mean(t, "tocsin_webhook_seconds") >= 0.6, m


@pytest.mark.timeout(60)
def test_webhook_link_stalled_past_timeout_retries_same_id(tocsind_factory, kafka, receivers,
                                                          proxies):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_TIMEOUT="2s",
              TOCSIN_WEBHOOK_RETRY_SCHEDULE=LONG_RETRIES)
    r, proxy, url = _receiver_behind_proxy(receivers, proxies)
    create(t, url)
    proxy.stall()
    iid = uid("inc")
    kafka.produce_all([event(iid, 1), event(iid, 2), event(iid, 3)])
    # Two attempts of the first update time out; the later updates wait.
    t.wait_metric('tocsin_webhook_failures_total{reason="network"}', 2, timeout=30)
    assert r.got == [], "the stalled link carried a request"
    assert t.metric("tocsin_webhook_deliveries_total") == 0
    proxy.resume()
    wait_until(lambda: t.metric("tocsin_webhook_deliveries_total") >= 3, 30, 0.2, "3 deliveries")
    time.sleep(1.0)
    # The timed-out attempts were held by the proxy and may still reach the
    # receiver (at-least-once): each with the first update's webhook-id.
    msgs = _check_messages(r.got, [1, 2, 3])
    assert [len(bodies) for _, bodies in msgs[1:]] == [1, 1], msgs
    m = t.metrics()
    assert m.get("tocsin_webhook_deliveries_total") == 3, m
    assert m.get("tocsin_webhook_dead_total", 0) == 0, m
    assert "Timeout was reached" in t.log_text() or "timed out" in t.log_text()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rst", [True, False], ids=["rst", "fin"])
def test_webhook_link_cut_mid_request_retries(tocsind_factory, kafka, receivers, proxies, rst):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE=LONG_RETRIES)
    # The first POST is answered only after 8 s: the cut comes long before.
    r, proxy, url = _receiver_behind_proxy(receivers, proxies, script=[(8, 200)])
    create(t, url)
    iid = uid("inc")
    kafka.produce_all([event(iid, 1), event(iid, 2)])
    wait_until(lambda: len(r.got) == 1, 20, 0.05, "the first POST")
    assert proxy.cut(rst=rst) == 1
    wait_until(lambda: t.metric("tocsin_webhook_deliveries_total") >= 2, 30, 0.2, "2 deliveries")
    time.sleep(1.0)
    msgs = _check_messages(r.got, [1, 2])
    assert [len(bodies) for _, bodies in msgs] == [2, 1], msgs
    m = t.metrics()
    assert m.get('tocsin_webhook_failures_total{reason="network"}') == 1, m
    assert m.get("tocsin_webhook_deliveries_total") == 2, m


@pytest.mark.timeout(60)
def test_webhook_link_refused_then_idle_connection_cut(tocsind_factory, kafka, receivers,
                                                       proxies):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE=LONG_RETRIES)
    r, proxy, url = _receiver_behind_proxy(receivers, proxies)
    create(t, url)
    iid = uid("inc")
    proxy.refuse(True)
    kafka.produce(event(iid, 1))
    t.wait_metric('tocsin_webhook_failures_total{reason="network"}', 2, timeout=20)
    proxy.refuse(False)
    wait_until(lambda: t.metric("tocsin_webhook_deliveries_total") >= 1, 20, 0.2, "delivered")
    # The kept-alive connection of that delivery is reset while idle: the
    # next message goes out on a new one, at its first attempt.
    wait_until(lambda: proxy.open == 1, 10, 0.05, "the pooled connection")
    failures = t.metric('tocsin_webhook_failures_total{reason="network"}')
    assert proxy.cut(rst=True) == 1
    kafka.produce(event(iid, 2))
    wait_until(lambda: t.metric("tocsin_webhook_deliveries_total") >= 2, 20, 0.2, "2 deliveries")
    time.sleep(0.5)
    _check_messages(r.got, [1, 2])
    assert len(r.got) == 2, r.got
    assert t.metric('tocsin_webhook_failures_total{reason="network"}') == failures
    assert proxy.accepted == 2
