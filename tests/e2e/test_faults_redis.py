# tocsin — SPDX-License-Identifier: MIT
#
# Redis faults (DESIGN §8.1, 8.2, 8.4) on a redis-server of the test's own:
# frozen with SIGSTOP for 10 s while events flow (commands time out, ingest
# pauses, WebSocket and SSE sessions stay open with their heartbeats, then
# nothing is lost or doubled); FLUSHALL under connected clients (a new epoch:
# reset snapshots, old-epoch resumes reset, new events delivered; the webhook
# endpoints and jobs stored in Redis are gone with the flush, which is
# accepted: Redis lost its data); SCRIPT FLUSH (NOSCRIPT, the script is sent
# again, the event applied once). Kill and AOF restart: test_durability.py.

import asyncio
import json
import time

import pytest

from clients import Sse, Ws, check_seq_run, in_thread, query, run, ws_streaming
from helpers import pairs, stream, wait_until
from webhook_receiver import AUTH, create, start


def _sse_read(sse, duration):
    """Every SSE event of the next `duration` seconds (heartbeats too). The
    heartbeat interval must be well under 5 s: a read that times out
    breaks the stream (http.client), and a missing heartbeat fails."""
    got = []
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        got.append(sse.next(timeout=5))
    return got


def _sse_updates(sse, n, timeout=30):
    """The next n SSE events that are not heartbeats; each must be an update."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        ev = sse.next(timeout=max(0.1, deadline - time.monotonic()))
        if ev["event"] == "heartbeat":
            continue
        assert ev["event"] == "update", ev
        got.append(ev)
    return got


def _sse_next_data(sse, timeout=30):
    """The next SSE event that is not a heartbeat."""
    deadline = time.monotonic() + timeout
    while True:
        ev = sse.next(timeout=max(0.1, deadline - time.monotonic()))
        if ev["event"] != "heartbeat":
            return ev


@pytest.mark.timeout(120)
def test_redis_frozen_10s_pauses_ingest_and_sessions_stay(tocsind_factory, own_redis, kafka,
                                                          receivers):
    # webhook.timeout 10s: a lease (below) lasts 40 s, far past the bound.
    t = start(lambda env: tocsind_factory(redis=own_redis, env=env),
              TOCSIN_REDIS_TIMEOUT="1s", TOCSIN_WS_HEARTBEAT="1s", TOCSIN_WEBHOOK_TIMEOUT="10s")
    r = receivers()
    create(t, r.url)
    # r2 fails its first attempt: its retry (1 s later) is due when Redis
    # freezes, so the first claim sent in the freeze leases it.
    r2 = receivers(script=[500])
    ep2 = create(t, r2.url)
    before, during = stream(2, 2), stream(2, 3)
    total = len(before) + len(during)
    resumed = []
    db = own_redis.client()

    def retry_due():
        """The due time (wall ms) of r2's retry once it is recorded: the
        one member of ep2 due within seconds (a lease is 40 s)."""
        now = time.time() * 1000
        for member, score in db.zrange(f"{t.prefix}wh:due", 0, -1, withscores=True):
            if member.decode().startswith(ep2["id"] + "|") and now < score < now + 5000:
                return score
        return None

    async def body():
        ws = await Ws.connect(t.ws_url)
        snap = await ws.expect("snapshot")
        sse = await in_thread(Sse, t.url)
        assert (await in_thread(_sse_next_data, sse))["event"] == "snapshot"
        await in_thread(kafka.produce_all, before)
        ups = await ws.updates(len(before))
        sse_ups = await in_thread(_sse_updates, sse, len(before))
        await in_thread(wait_until, lambda: len(r.got) >= len(before), 30, 0.1, "webhooks")
        due = await in_thread(wait_until, retry_due, 30, 0.01, "r2's retry recorded")
        beats0 = len(ws.heartbeats)
        # Frozen just after the retry is due: the claims before it could not
        # take it, the next one (sent within 100 ms) does when Redis wakes.
        await asyncio.sleep(max(0.0, due / 1000 + 0.001 - time.time()))
        own_redis.pause()
        try:
            await in_thread(kafka.produce_all, during, 0.1)
            # Redis hangs for 10 s: nothing is stored or delivered, commands
            # time out, but both sessions stay open with their heartbeats
            # and HTTP answers.
            sse_read = asyncio.ensure_future(in_thread(_sse_read, sse, 10.0))
            await ws.quiet(10.0)
            sse_frozen = await sse_read
            m = await in_thread(t.metrics)
            status = (await in_thread(t.get, "/healthz"))[0]
        finally:
            own_redis.resume()
            resumed.append(time.monotonic())
        assert status == 200, f"/healthz answered {status} while Redis hung"
        assert m.get("tocsin_redis_timeouts_total", 0) >= 1, m
        assert m.get("tocsin_ingest_paused") == 1 and m.get("tocsin_ingest_pauses_total") >= 1, m
        assert len(ws.heartbeats) - beats0 >= 3, f"{len(ws.heartbeats) - beats0} ws heartbeats in 10 s"
        kinds = [ev["event"] for ev in sse_frozen]
        assert kinds and set(kinds) == {"heartbeat"}, f"SSE while Redis hung: {kinds}"
        ups += await ws.updates(len(during), timeout=45)
        sse_ups += await in_thread(_sse_updates, sse, len(during), 45)
        await ws.quiet(1.0)
        await ws.close()
        await in_thread(sse.close)
        return snap, ups, sse_ups

    snap, ups, sse_ups = run(body(), timeout=110)
    check_seq_run(ups, snap["seq"])
    check_seq_run([ev["data"] for ev in sse_ups], snap["seq"])
    assert [ev["id"] for ev in sse_ups] == [f"{snap['epoch']}:{u['seq']}" for u in ups]
    assert pairs(u["incident"] for u in ups) == pairs(before + during)
    log = t.log_text()
    assert 'reason="command timed out"' in log and 'msg="pausing ingest (store unavailable)"' in log
    # Scripts that timed out still ran once Redis woke up (they were in its
    # socket buffer); their retries are then duplicates, and the history has
    # each once. Never more accepted than produced.
    m = t.metrics()
    accepted = m.get('tocsin_events_total{result="accepted"}')
    assert accepted <= total, m
    assert accepted + m.get('tocsin_events_total{result="duplicate"}', 0) >= total, m
    assert m.get("tocsin_ingest_paused") == 0, m
    # Commands sent in the freeze still run when Redis wakes up (they sat
    # in its socket buffers): the webhook claim that timed out leased r2's
    # retry (and maybe jobs that scripts sent before it enqueued). Its
    # reply was lost, so the node releases them with its next claims
    # (store/lease.c): they are sent soon after Redis wakes, not when the
    # lease ends 40 s on; never lost, never twice.
    bound = 15.0
    wait_until(lambda: len(r.got) >= total and len(r2.got) >= total + 1,
               max(0.1, resumed[0] + bound - time.monotonic()),
               what=f"every webhook within {bound} s of Redis waking up")
    print(f"every webhook within {time.monotonic() - resumed[0]:.1f} s of Redis waking up; "
          f"released: {'released jobs of a claim whose reply was lost' in t.log_text()}")
    time.sleep(1.0)
    ids = [h["webhook-id"] for h, _ in r.got]
    assert len(ids) == total == len(set(ids)), ids
    ids2 = [h["webhook-id"] for h, _ in r2.got]
    assert len(ids2) == total + 1 and len(set(ids2)) == total, ids2  # one retry


@pytest.mark.timeout(120)
def test_flushall_starts_a_new_epoch(tocsind_factory, own_redis, kafka, receivers):
    t = start(lambda env: tocsind_factory(redis=own_redis, env=env), TOCSIN_REDIS_TIMEOUT="1s")
    old_hook, new_hook = receivers(), receivers()
    create(t, old_hook.url)
    before, after = stream(2, 2), stream(2, 2)

    async def body():
        ws = await Ws.connect(t.ws_url)
        await ws.expect("snapshot")
        sse = await in_thread(Sse, t.url)
        assert (await in_thread(_sse_next_data, sse))["event"] == "snapshot"
        await in_thread(kafka.produce_all, before)
        ups = await ws.updates(len(before))
        await in_thread(_sse_updates, sse, len(before))
        old_epoch, old_seq = ws.epoch, ups[-1]["seq"]
        await in_thread(wait_until, lambda: len(old_hook.got) >= len(before), 30, 0.1, "webhooks")

        await in_thread(own_redis.client().flushall)
        # Every connected client gets a reset snapshot of the new epoch,
        # with nothing active (Redis lost it all).
        reset = await ws.expect("snapshot", timeout=30)
        sse_reset = await in_thread(_sse_next_data, sse)
        new_epoch = reset["epoch"]
        assert reset.get("reset") is True and new_epoch != old_epoch, reset
        assert reset["incidents"] == [] and reset["seq"] == 0, reset
        assert sse_reset["event"] == "snapshot" and sse_reset["id"] == f"{new_epoch}:0", sse_reset
        assert sse_reset["data"].get("reset") is True, sse_reset

        # A client resuming in the old epoch cannot be served exactly.
        late = await Ws.connect(t.ws_url, query(since=old_seq, epoch=old_epoch))
        late_snap = await late.expect("snapshot")
        assert late.epoch == new_epoch and late_snap.get("reset") is True, late_snap

        # The endpoints lived in Redis too: they are gone; a new one works.
        _, _, text = await in_thread(t.request, "GET", "/v1/webhooks", None, AUTH)
        assert json.loads(text)["webhooks"] == [], text
        await in_thread(create, t, new_hook.url)
        await in_thread(kafka.produce_all, after)
        new_ups = await ws.updates(len(after), timeout=30)
        late_ups = await late.updates(len(after), timeout=30)
        sse_ups = await in_thread(_sse_updates, sse, len(after))
        for u in new_ups + late_ups:
            assert u["epoch"] == new_epoch, u
        await ws.quiet(1.0)
        await ws.close()
        await late.close()
        await in_thread(sse.close)
        return new_ups, late_ups, sse_ups

    new_ups, late_ups, sse_ups = run(body(), timeout=110)
    check_seq_run(new_ups, 0)
    assert [u["seq"] for u in late_ups] == [u["seq"] for u in new_ups]
    check_seq_run([ev["data"] for ev in sse_ups], 0)
    assert pairs(u["incident"] for u in new_ups) == pairs(after)
    wait_until(lambda: len(new_hook.got) >= len(after), 30, what="webhooks after the flush")
    time.sleep(1.0)
    assert len(new_hook.got) == len(after), [h["webhook-id"] for h, _ in new_hook.got]
    assert len(old_hook.got) == len(before), "the flushed endpoint got more"
    assert t.alive() and t.get("/readyz")[0] == 200
    assert 'msg="epoch changed, loading again"' in t.log_text()


@pytest.mark.timeout(90)
def test_script_flush_reloads_the_script_and_applies_once(tocsind_factory, own_redis, kafka):
    t = tocsind_factory(redis=own_redis)
    before, after = stream(2, 1), stream(2, 2)

    async def body():
        ws, snap, ups = await ws_streaming(t.ws_url, kafka, before)
        assert "script not cached" not in t.log_text()
        await in_thread(own_redis.client().script_flush)
        await in_thread(kafka.produce_all, after)
        ups += await ws.updates(len(after), timeout=30)
        await ws.quiet(1.0)
        await ws.close()
        return snap, ups

    snap, ups = run(body(), timeout=80)
    check_seq_run(ups, snap["seq"])
    assert pairs(u["incident"] for u in ups) == pairs(before + after)
    assert 'msg="script not cached, sent EVAL"' in t.log_text()
    m = t.metrics()
    total = len(before) + len(after)
    assert m['tocsin_events_total{result="accepted"}'] == total, m
    assert m['tocsin_events_total{result="duplicate"}'] == 0, m
    assert m.get("tocsin_redis_errors_total", 0) == 0, "NOSCRIPT must be answered, not dropped"
    # Redis cached the script again: the next event needs no reload.
    n_reloads = t.log_text().count("script not cached")
    kafka.produce_all(stream(1, 1))
    t.wait_metric('tocsin_events_total{result="accepted"}', total + 1)
    assert t.log_text().count("script not cached") == n_reloads
