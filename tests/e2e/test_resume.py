# tocsin — SPDX-License-Identifier: MIT
#
# Resuming a WebSocket stream (DESIGN §4): `since` + `epoch` replays the
# missed updates exactly (no gap, no duplicate, then live ones), and every
# resume that cannot be served exactly gets a `reset` snapshot instead:
# a foreign epoch, a `since` ahead of the server, or further behind than the
# replay cap.

from clients import Ws, check_seq_run, in_thread, query, run
from helpers import event, uid


def _events(n, iid=None):
    iid = iid or uid("inc")
    return [event(iid, v) for v in range(1, n + 1)]


def test_resume_replays_without_gap_or_duplicate(tocsind, kafka):
    first, missed, live = _events(6), _events(5), _events(3)

    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        snap = await ws.expect("snapshot")
        await in_thread(kafka.produce_all, first)
        seen = await ws.updates(6)
        await ws.close()
        await in_thread(kafka.produce_all, missed)
        # The missed events must be stored before the resume, or they would
        # arrive live and not test the replay.
        await in_thread(tocsind.wait_metric, 'tocsin_events_total{result="accepted"}', 11)
        back = await Ws.connect(tocsind.ws_url, query(since=seen[-1]["seq"], epoch=ws.epoch))
        replayed = await back.updates(5)
        await in_thread(kafka.produce_all, live)
        live_ups = await back.updates(3)
        await back.quiet(0.5)
        await back.close()
        return snap, seen, replayed, live_ups

    snap, seen, replayed, live_ups = run(body())
    check_seq_run(seen + replayed + live_ups, snap["seq"])
    assert [u["incident"]["version"] for u in replayed] == [1, 2, 3, 4, 5]
    assert all(u["epoch"] == snap["epoch"] for u in replayed + live_ups)


def test_resume_with_filter_replays_only_matching(tocsind, kafka):
    pb, se = uid("pb"), uid("se")

    async def body():
        ws = await Ws.connect(tocsind.ws_url, query(components=["search"]))
        await ws.expect("snapshot")
        await ws.close()
        await in_thread(kafka.produce_all, [event(pb, 1, components=["playback"]),
                                            event(se, 1, components=["search"]),
                                            event(pb, 2, components=["playback"])])
        await in_thread(tocsind.wait_metric, 'tocsin_events_total{result="accepted"}', 3)
        back = await Ws.connect(tocsind.ws_url, query(components=["search"], since=ws.welcome["seq"],
                                                      epoch=ws.epoch))
        (up,) = await back.updates(1)
        await back.quiet(0.5)
        await back.close()
        return up

    up = run(body())
    assert up["incident"]["incident_id"] == se


def test_replay_is_written_coalesced(tocsind, kafka):
    """The welcome and a replay of 40 updates are queued in one loop turn and
    go out in one or two writes (several frames in one write, each still a
    frame of its own), complete and in order."""
    async def connect_and_leave():
        ws = await Ws.connect(tocsind.ws_url)
        snap = await ws.expect("snapshot")
        await ws.close()
        return ws, snap

    ws, snap = run(connect_and_leave())
    _seed(tocsind, kafka, 40)
    writes = tocsind.metric("tocsin_ws_writes_total")

    async def resume():
        back = await Ws.connect(tocsind.ws_url, query(since=snap["seq"], epoch=ws.epoch))
        replayed = await back.updates(40)
        await back.quiet(0.3)
        await back.close()
        return replayed

    replayed = run(resume())
    check_seq_run(replayed, snap["seq"])
    assert [u["incident"]["version"] for u in replayed] == list(range(1, 41))
    used = tocsind.metric("tocsin_ws_writes_total") - writes
    assert 1 <= used <= 2, f"41 frames took {used} writes"


async def _reset_snapshot(tocsind, since, epoch):
    ws = await Ws.connect(tocsind.ws_url, query(since=since, epoch=epoch))
    snap = await ws.expect("snapshot")
    await ws.close()
    return ws, snap


def _seed(tocsind, kafka, n):
    evs = _events(n)
    kafka.produce_all(evs)
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', n)
    return evs


def test_reset_on_foreign_epoch(tocsind, kafka):
    evs = _seed(tocsind, kafka, 3)
    ws, snap = run(_reset_snapshot(tocsind, 1, "not-this-epoch"))
    assert snap.get("reset") is True, snap
    assert snap["epoch"] == ws.epoch != "not-this-epoch"
    assert [i["incident_id"] for i in snap["incidents"]] == [evs[0]["incident_id"]]
    assert snap["incidents"][0]["version"] == 3


def test_reset_when_since_ahead_of_server(tocsind, kafka):
    _seed(tocsind, kafka, 2)
    body, _ = tocsind.get_json("/v1/incidents")
    ws, snap = run(_reset_snapshot(tocsind, body["seq"] + 100, body["epoch"]))
    assert snap.get("reset") is True, snap
    assert snap["seq"] == body["seq"]


def test_reset_past_replay_cap(tocsind_factory, kafka):
    t = tocsind_factory(env={"TOCSIN_WS_REPLAY_CAP": "5"})
    evs = _seed(t, kafka, 12)
    body, _ = t.get_json("/v1/incidents")

    async def both():
        _, far = await _reset_snapshot(t, body["seq"] - 10, body["epoch"])
        near = await Ws.connect(t.ws_url, query(since=body["seq"] - 4, epoch=body["epoch"]))
        ups = await near.updates(4)
        await near.quiet(0.5)
        await near.close()
        return far, ups

    far, ups = run(both())
    assert far.get("reset") is True, far
    assert far["incidents"][0]["version"] == 12
    assert [u["incident"]["version"] for u in ups] == [9, 10, 11, 12]
    assert len(evs) == 12
    assert t.metric('tocsin_resumes_total{result="reset"}') >= 1
    assert t.metric('tocsin_resumes_total{result="exact"}') >= 1


def test_resume_through_subscribe_message(tocsind, kafka):
    evs = _events(4)

    async def body():
        ws = await Ws.connect(tocsind.ws_url, query(components=["none-such"]))
        await ws.expect("snapshot")
        start = ws.welcome["seq"]
        await in_thread(kafka.produce_all, evs)
        await in_thread(tocsind.wait_metric, 'tocsin_events_total{result="accepted"}', 4)
        await ws.send({"type": "subscribe", "id": "again", "filter": {}, "since": start + 1,
                       "epoch": ws.epoch})
        ups = await ws.updates(3, sub="again")
        await ws.close()
        return start, ups

    start, ups = run(body())
    check_seq_run(ups, start + 1)
