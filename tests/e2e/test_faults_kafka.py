# tocsin — SPDX-License-Identifier: MIT
#
# Kafka faults through tocsin-devkafka's fault injection (kafka.inject):
# the only broker down then up while events are produced; one partition
# leader down while the consumer moves on with the others; errors on Fetch
# (including an offset reset that replays a partition); errors on
# OffsetCommit, then tocsind killed so everything uncommitted is redelivered;
# errors on JoinGroup at start and during a rebalance. In each, a WebSocket
# client and a webhook receiver see every update exactly once and in order
# (DESIGN §8.1, §8.2), tocsind stays up, and its log says what happened
# where it can see the fault.

import json
import time

import pytest

from clients import Ws, check_seq_run, in_thread, query, run, ws_streaming
from helpers import HarnessError, event, pairs, stream, uid, wait_until
from webhook_receiver import create, start


def _setup(factory, receivers, **env):
    """A tocsind delivering every update to one webhook receiver."""
    t = start(factory, **env)
    r = receivers()
    create(t, r.url)
    return t, r


def _check_once(t, ups, start_seq, evs, r):
    """Every produced event reached the WebSocket client and the webhook
    receiver exactly once, in seq order, each event_id once."""
    check_seq_run(ups, start_seq)
    assert pairs(u["incident"] for u in ups) == pairs(evs)
    assert sorted(u["incident"]["event_id"] for u in ups) == sorted(e["event_id"] for e in evs)
    n = len(evs)
    wait_until(lambda: len(r.got) >= n, 60, interval=0.1, what=f"{n} webhook messages")
    time.sleep(1.0)  # a duplicate would come now
    docs = [json.loads(body) for _, body in r.got]
    ids = [h["webhook-id"] for h, _ in r.got]
    assert len(ids) == n and len(set(ids)) == n, f"{len(ids)} webhook messages, {len(set(ids))} ids, want {n}"
    assert sorted(d["seq"] for d in docs) == [u["seq"] for u in ups]
    last = {}
    for d in docs:  # per endpoint and incident, in order (DESIGN §8.3)
        iid, ver = d["incident"]["incident_id"], d["incident"]["version"]
        assert ver > last.get(iid, 0), f"webhook: {iid} version {ver} after {last.get(iid)}"
        last[iid] = ver
    assert t.alive(), "tocsind died"


def _wait_log(t, text, timeout=30):
    return wait_until(lambda: text in t.log_text(), timeout, interval=0.2, what=f"log line {text!r}")


@pytest.mark.timeout(150)
def test_broker_down_then_up_while_producing(tocsind_factory, kafka, receivers):
    t, r = _setup(tocsind_factory, receivers)
    before, during, after = stream(2, 2), stream(3, 3), stream(2, 1)

    async def body():
        ws, snap, ups = await ws_streaming(t.ws_url, kafka, before)
        await in_thread(kafka.inject, "broker-down 1")
        try:
            # The producer queues them: the only broker refuses connections.
            await in_thread(kafka.produce_all, during, 0.05, False)
            await in_thread(_wait_log, t, 'msg="all kafka brokers down"')
            await ws.quiet(2.0)
            assert (await in_thread(t.get, "/healthz"))[0] == 200
        finally:
            await in_thread(kafka.inject, "broker-up 1")
        await in_thread(kafka.flush, 60)
        # librdkafka reconnects with a backoff of up to 10 s.
        ups += await ws.updates(len(during), timeout=60)
        await in_thread(kafka.produce_all, after)
        ups += await ws.updates(len(after), timeout=30)
        await ws.quiet(1.0)
        await ws.close()
        return snap, ups

    snap, ups = run(body(), timeout=140)
    _check_once(t, ups, snap["seq"], before + during + after, r)


@pytest.mark.timeout(150)
@pytest.mark.kafka_brokers(3)
def test_partition_leader_down_others_move_on(tocsind_factory, kafka, receivers):
    # Partition 0 is led by broker 3, the others and the group's coordinator
    # by broker 2: with broker 3 down, only partition 0 stalls.
    group = uid("e2e-group")
    for cmd in ("leader 0 3", "leader 1 2", "leader 2 2", "leader 3 2", f"coordinator {group} 2"):
        kafka.inject(cmd)
    t, r = _setup(tocsind_factory, receivers, TOCSIN_KAFKA_GROUP=group)
    a, b = uid("inc"), uid("inc")  # a on partition 0 (stalls), b on partition 1
    first = [event(a, 1), event(b, 1)]
    stalled = [event(a, v) for v in range(2, 6)]
    moving = [event(b, v) for v in range(2, 6)]

    async def body():
        ws = await Ws.connect(t.ws_url)
        snap = await ws.expect("snapshot")
        await in_thread(kafka.produce, first[0], partition=0)
        await in_thread(kafka.produce, first[1], partition=1)
        ups = await ws.updates(2, timeout=30)
        await in_thread(kafka.inject, "broker-down 3")
        try:
            # No flush: it would wait for partition 0's messages too.
            await in_thread(kafka.produce_all, stalled, 0.0, False, 0)
            await in_thread(kafka.produce_all, moving, 0.0, False, 1)
            kafka.producer().poll(0)
            # The consumer moves on: partition 1's updates arrive while
            # partition 0's leader is down.
            mid = await ws.updates(len(moving), timeout=30)
            assert [u["incident"]["incident_id"] for u in mid] == [b] * len(moving), mid
            ups += mid
            await in_thread(_wait_log, t, "kafka consumer error")
            await ws.quiet(1.0)  # partition 0 really stalls
        finally:
            await in_thread(kafka.inject, "broker-up 3")
        await in_thread(kafka.flush, 60)
        ups += await ws.updates(len(stalled), timeout=60)
        await ws.quiet(1.0)
        await ws.close()
        return snap, ups

    snap, ups = run(body(), timeout=140)
    _check_once(t, ups, snap["seq"], first + moving + stalled, r)


@pytest.mark.timeout(120)
def test_fetch_errors_and_offset_reset_replay_nothing(tocsind_factory, kafka, receivers):
    t, r = _setup(tocsind_factory, receivers)
    before, during, replayed = stream(2, 2), stream(2, 3), stream(2, 2)

    async def body():
        ws, snap, ups = await ws_streaming(t.ws_url, kafka, before)
        # Leadership errors: the consumer refreshes its metadata and fetches
        # again from where it was.
        await in_thread(kafka.inject, "errors Fetch 10 NOT_LEADER_FOR_PARTITION")
        await in_thread(kafka.produce_all, during)
        ups += await ws.updates(len(during), timeout=30)
        # An offset out of range resets to the beginning (auto.offset.reset
        # earliest): every message is consumed again, and the store's dedup
        # absorbs them.
        await in_thread(kafka.inject, "errors Fetch 3 OFFSET_OUT_OF_RANGE")
        await in_thread(kafka.produce_all, replayed)
        ups += await ws.updates(len(replayed), timeout=30)
        await ws.quiet(2.0)
        await ws.close()
        return snap, ups

    snap, ups = run(body(), timeout=110)
    evs = before + during + replayed
    _check_once(t, ups, snap["seq"], evs, r)
    _wait_log(t, "Offset out of range")
    m = t.metrics()
    assert m['tocsin_events_total{result="accepted"}'] == len(evs), m
    assert m['tocsin_events_total{result="duplicate"}'] >= 1, "the reset replayed nothing?"


@pytest.mark.timeout(150)
def test_offset_commit_errors_then_kill9_redelivers_without_duplicates(tocsind_factory, kafka,
                                                                       receivers):
    t, r = _setup(tocsind_factory, receivers)
    before, during, after = stream(2, 1), stream(3, 2), stream(2, 1)

    async def body():
        ws, snap, ups = await ws_streaming(t.ws_url, kafka, before)
        epoch = ws.epoch
        # More failed commits than the test lasts (one per second).
        await in_thread(kafka.inject, "errors OffsetCommit 1000 REQUEST_TIMED_OUT")
        await in_thread(kafka.produce_all, during)
        ups += await ws.updates(len(during), timeout=30)
        await in_thread(_wait_log, t, "Offset commit (cgrp auto commit timer) failed")
        # Nothing of `during` was committed: the next consumer gets it all again.
        await in_thread(t.kill9)
        await ws.closed(10)
        await in_thread(kafka.inject, "clear OffsetCommit")
        await in_thread(t.restart)
        back = await Ws.connect(t.ws_url, query(since=ups[-1]["seq"], epoch=epoch))
        assert back.epoch == epoch
        await in_thread(t.wait_metric, 'tocsin_events_total{result="duplicate"}', len(during), 60)
        await back.quiet(1.0)  # the redelivered events notified nobody
        await in_thread(kafka.produce_all, after)
        ups += await back.updates(len(after), timeout=30)
        await back.quiet(1.0)
        await back.close()
        return snap, ups

    snap, ups = run(body(), timeout=140)
    _check_once(t, ups, snap["seq"], before + during + after, r)
    assert t.metric('tocsin_events_total{result="accepted"}') == len(after)


@pytest.mark.timeout(150)
def test_join_group_errors_at_start_and_in_a_rebalance(tocsind_factory, kafka, receivers):
    from confluent_kafka import Consumer

    before, during = stream(2, 2), stream(3, 2)
    # Queued in Kafka before tocsind exists; its first joins fail.
    kafka.produce_all(before)
    kafka.inject("errors JoinGroup 3 COORDINATOR_NOT_AVAILABLE")
    group = uid("e2e-group")
    t, r = _setup(tocsind_factory, receivers, TOCSIN_KAFKA_GROUP=group)

    def intruder():
        """A second member joins the group (tocsind must rejoin, and its
        JoinGroup fails a few times), reads without committing, and leaves:
        the partitions come back to tocsind with nothing lost."""
        c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group,
                      "enable.auto.commit": False, "auto.offset.reset": "earliest",
                      "session.timeout.ms": 10000})
        try:
            c.subscribe(["tocsin.incidents"])
            deadline = time.monotonic() + 30
            while not c.assignment() and time.monotonic() < deadline:
                c.poll(0.2)
            if not c.assignment():
                raise HarnessError("the second member got no partition in 30 s")
            kafka.produce_all(during)
            end = time.monotonic() + 2
            while time.monotonic() < end:
                c.poll(0.2)
        finally:
            c.close()

    async def body():
        hello = await Ws.connect(t.ws_url)
        await hello.close()
        # Replays from seq 1, whatever was applied before we connected.
        ws = await Ws.connect(t.ws_url, query(since=0, epoch=hello.epoch))
        ups = await ws.updates(len(before), timeout=60)
        await in_thread(kafka.inject, "errors JoinGroup 3 COORDINATOR_NOT_AVAILABLE")
        await in_thread(intruder)
        ups += await ws.updates(len(during), timeout=60)
        await ws.quiet(1.0)
        await ws.close()
        return ups

    ups = run(body(), timeout=140)
    _check_once(t, ups, 0, before + during, r)
    log = t.log_text()
    assert log.count('msg="partition revoked"') >= 1, "the second member caused no rebalance"
    assert t.metric('tocsin_events_total{result="accepted"}') == len(before + during)
