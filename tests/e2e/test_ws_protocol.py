# tocsin — SPDX-License-Identifier: MIT
#
# The WebSocket session contract under hostile or unlucky clients (DESIGN
# §4, §8.5): an oversized client message closes with 1009, a malformed one
# gets an error (and 1008 only if fatal), a reader that cannot keep up is
# closed with 1013 while a normal one keeps everything, and SIGTERM closes
# every session with 1001 and exits 0.

import asyncio
import signal

import pytest

from clients import RawWs, Ws, check_seq_run, in_thread, run
from helpers import event, uid, wait_until


def test_client_message_over_64k_closes_1009(tocsind):
    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        await ws.expect("snapshot")
        big = '{"type":"subscribe","id":"x","filter":{},"pad":"' + "a" * (65 * 1024) + '"}'
        await ws.send(big)
        return await ws.closed(10)

    assert run(body()) == 1009
    assert tocsind.metric('tocsin_ws_closed_total{code="1009"}') == 1


@pytest.mark.parametrize("bad", [
    "this is not json",
    '["not", "an", "object"]',
    '{"type": "no-such-type"}',
    '{"type": "subscribe", "id": "s", "filter": {"min_impact": "apocalyptic"}}',
    '{"type": "subscribe", "id": "s", "filter": {"components": "not-a-list"}}',
    '{"type": "unsubscribe"}',
])
def test_malformed_client_message_gets_error(tocsind, kafka, bad):
    iid = uid("inc")

    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        await ws.expect("snapshot")
        await ws.send(bad)
        err = await ws.expect("error")
        assert isinstance(err.get("code"), str) and err["code"], err
        assert isinstance(err.get("message"), str), err
        # Either the session survives and still delivers, or the error was
        # fatal and the close code says policy (1008).
        try:
            await in_thread(kafka.produce, event(iid, 1))
            (up,) = await ws.updates(1)
            assert up["incident"]["incident_id"] == iid
            await ws.close()
            return None
        except AssertionError:
            if ws.conn.close_code is None:
                raise
            return ws.conn.close_code

    code = run(body())
    assert code in (None, 1008), f"closed with {code}, want 1008 or open"


def test_bad_message_does_not_disturb_other_sessions(tocsind, kafka):
    iid = uid("inc")

    async def body():
        good = await Ws.connect(tocsind.ws_url)
        bad = await Ws.connect(tocsind.ws_url)
        await good.expect("snapshot")
        await bad.expect("snapshot")
        await bad.send(b"\x00\x01binary junk")
        await bad.send("{" * 5000)
        await in_thread(kafka.produce_all, [event(iid, 1), event(iid, 2)])
        ups = await good.updates(2)
        await good.close()
        await bad.close()
        return ups

    assert [u["incident"]["version"] for u in run(body())] == [1, 2]


def test_slow_reader_closed_1013_normal_reader_gets_everything(tocsind_factory, kafka):
    t = tocsind_factory(env={"TOCSIN_WS_SEND_QUEUE": "16"})
    n = 150
    # 12 incidents spread the load over the 4 partitions: the mock cluster
    # keeps only about 5 MB per partition and silently drops older messages.
    incidents = [uid("big") for _ in range(12)]
    # ~60 KB per update (unknown fields pass through): 9 MB in all, more than
    # the kernel's autotuned send buffer (tcp_wmem max 4 MB) can hide.
    evs = [event(incidents[i % 12], i // 12 + 1, pad="p" * 60000) for i in range(n)]

    async def body():
        normal = await Ws.connect(t.ws_url)
        snap = await normal.expect("snapshot")
        stuck = await in_thread(RawWs, t.port)
        # One update per 20 ms (the normal reader keeps up even under ASan): the stuck socket's window and send buffer
        # fill, its queue passes 16 frames; the normal reader keeps up.
        producing = asyncio.ensure_future(in_thread(kafka.produce_all, evs, 0.02))
        try:
            ups = await normal.updates(n, timeout=30)
        except AssertionError as e:
            m = await in_thread(t.metrics)
            raise AssertionError(f"{e}\nproducer done: {producing.done()}; metrics: "
                                 f"{ {k: v for k, v in m.items() if 'events' in k or 'ingest' in k} }")
        await producing
        await in_thread(t.wait_metric, 'tocsin_ws_closed_total{code="1013"}', 1, 20)
        closed, code, frames = await in_thread(stuck.drain, 20)
        stuck.close()
        await normal.quiet(0.5)
        await normal.close()
        return snap, ups, closed, code, frames

    snap, ups, closed, code, frames = run(body(), timeout=120)
    check_seq_run(ups, snap["seq"])
    assert closed, "the slow reader's connection was not closed"
    assert code in (None, 1013), f"slow reader closed with {code}"
    assert frames < n, "the slow reader received every update: it was not slow"
    assert t.metric('tocsin_ws_closed_total{code="1013"}') == 1


def test_sigterm_closes_sessions_1001_and_exits_0(tocsind, kafka):
    async def body():
        a = await Ws.connect(tocsind.ws_url)
        b = await Ws.connect(tocsind.ws_url, "components=playback")
        await a.expect("snapshot")
        await b.expect("snapshot")
        tocsind.proc.send_signal(signal.SIGTERM)
        return await a.closed(10), await b.closed(10)

    assert run(body()) == (1001, 1001)
    assert tocsind.wait_exit(15) == 0
    assert "Sanitizer" not in tocsind.log_text()


def test_sigterm_ends_sse_streams_and_exits_0(tocsind):
    from clients import Sse

    s = Sse(tocsind.url)
    s.next()
    tocsind.proc.send_signal(signal.SIGTERM)
    assert tocsind.wait_exit(15) == 0
    with pytest.raises(AssertionError):
        s.next(timeout=3)  # the stream ended (or the socket is gone)
    s.close()


def test_welcome_and_subprotocol(tocsind):
    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        proto = ws.conn.subprotocol
        await ws.close()
        return proto, ws.welcome

    proto, welcome = run(body())
    assert proto == "tocsin.v1"
    assert isinstance(welcome.get("heartbeat_s"), int) and welcome["heartbeat_s"] > 0
    wait_until(lambda: tocsind.metric('tocsin_sessions{channel="ws"}') == 0, 5,
               what="ws session gauge back to 0")
