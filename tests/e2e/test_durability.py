# tocsin — SPDX-License-Identifier: MIT
#
# Nothing accepted is lost, nothing is notified twice (DESIGN §8.1, 8.2,
# 8.4): tocsind killed with SIGKILL in the middle of a stream and restarted;
# Redis killed and restarted from its AOF. In each, a client resuming with
# `since` sees every seq exactly once and every (incident, version)
# produced. Redis frozen, flushed or without its scripts:
# test_faults_redis.py; Kafka faults: test_faults_kafka.py.

import asyncio
import signal

import pytest

from clients import Ws, check_seq_run, in_thread, query, run
from helpers import pairs, stream, wait_until


@pytest.mark.timeout(240)
def test_kill9_mid_stream_loses_nothing(tocsind, kafka):
    evs = stream(10, 20)  # 200 events
    n = len(evs)

    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        snap = await ws.expect("snapshot")
        epoch = ws.epoch
        producing = asyncio.ensure_future(in_thread(kafka.produce_all, evs, 0.01))
        first = await ws.updates(50, timeout=30)
        await in_thread(tocsind.kill9)
        code = await ws.closed(10)
        assert code != 1000, "a SIGKILLed server cannot close cleanly"
        await in_thread(tocsind.restart)
        await producing
        back = await Ws.connect(tocsind.ws_url, query(since=first[-1]["seq"], epoch=epoch))
        assert back.epoch == epoch, "Redis kept its history: the epoch must not change"
        # A consumer-group rebalance after the kill may take a while.
        rest = await back.updates(n - len(first), timeout=120)
        await back.quiet(1.0)
        await back.close()
        return snap, first, rest

    snap, first, rest = run(body(), timeout=220)
    ups = first + rest
    check_seq_run(ups, snap["seq"])
    assert pairs(u["incident"] for u in ups) == pairs(evs)
    # Redelivered events are duplicates: they may be counted, never accepted twice.
    assert tocsind.metric('tocsin_events_total{result="accepted"}') <= n


@pytest.mark.timeout(120)
def test_redis_restart_from_aof_resumes(tocsind_factory, own_redis, kafka):
    t = tocsind_factory(redis=own_redis, env={"TOCSIN_REDIS_TIMEOUT": "1s"})
    before, during = stream(1, 3), stream(2, 2)

    async def body():
        ws = await Ws.connect(t.ws_url)
        snap = await ws.expect("snapshot")
        await in_thread(kafka.produce_all, before)
        ups = await ws.updates(len(before))
        own_redis.proc.send_signal(signal.SIGKILL)  # appendfsync always: nothing lost
        await in_thread(own_redis.proc.wait, 5)
        await in_thread(kafka.produce_all, during)
        await in_thread(wait_until, lambda: t.get("/readyz")[0] != 200, 10, 0.1, "readyz to fail")
        await asyncio.sleep(1.0)
        await in_thread(own_redis.start)
        ups += await ws.updates(len(during), timeout=30)
        await in_thread(wait_until, lambda: t.get("/readyz")[0] == 200, 10, 0.1, "readyz back")
        again = await Ws.connect(t.ws_url)
        await again.close()
        await ws.close()
        return snap, ups, again.epoch

    snap, ups, epoch_after = run(body(), timeout=100)
    check_seq_run(ups, snap["seq"])
    assert epoch_after == snap["epoch"], "the AOF kept the history: same epoch"
    assert pairs(u["incident"] for u in ups) == pairs(before + during)
