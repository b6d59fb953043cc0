# tocsin — SPDX-License-Identifier: MIT
#
# Live delivery over WebSocket (DESIGN §3, §4, §8.2-3): who receives what
# (filters, global incidents, matched-once-keeps-matching), dedup and version
# order, seq order over a stream, and resolution leaving the active set.
# Each test ends its stream with a sentinel event every subscriber matches,
# produced once the others are stored (events of different incidents may sit
# on different partitions, so production order alone says nothing): delivery
# is in seq order, so once the sentinel arrived nothing earlier can.

import asyncio

from clients import Ws, check_seq_run, in_thread, query, run
from helpers import event, uid

ALL_COMPONENTS = ["playback", "search", "billing"]


def _sentinel():
    return event(uid("sentinel"), 1, impact="critical", components=ALL_COMPONENTS)


def _produce_then_sentinel(tocsind, kafka, evs, accepted, sentinel):
    kafka.produce_all(evs)
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', accepted)
    kafka.produce(sentinel)


async def _until_sentinel(ws, sentinel_id, timeout=20):
    msgs = await ws.until(lambda m: m.get("type") == "update"
                          and m["incident"]["incident_id"] == sentinel_id, timeout, what="sentinel")
    for m in msgs:
        assert m["type"] == "update", f"unexpected {m}"
    return [m["incident"]["incident_id"] for m in msgs[:-1]]


def test_only_matching_subscribers_receive(tocsind, kafka):
    pb_eu = uid("pb-eu")        # playback, eu-west, minor
    search_us = uid("search-us")  # search, us-east, critical
    billing_eu = uid("bill-eu")   # billing, eu-west, none
    evs = [event(pb_eu, 1, components=["playback"], regions=["eu-west"], impact="minor"),
           event(search_us, 1, components=["search"], regions=["us-east"], impact="critical"),
           event(billing_eu, 1, components=["billing"], regions=["eu-west"], impact="none")]
    sentinel = _sentinel()

    async def body():
        subs = {
            "components=playback": await Ws.connect(tocsind.ws_url, query(components=["playback"])),
            "components=search,billing": await Ws.connect(tocsind.ws_url, query(components=["search", "billing"])),
            "regions=eu-west": await Ws.connect(tocsind.ws_url, query(regions=["eu-west"])),
            "min_impact=major": await Ws.connect(tocsind.ws_url, query(min_impact="major")),
            "all three": await Ws.connect(tocsind.ws_url, query(components=["playback"], regions=["eu-west"],
                                                                 min_impact="minor")),
        }
        for ws in subs.values():
            snap = await ws.expect("snapshot")
            assert snap["sub"] == "default" and snap["incidents"] == [] and not snap.get("reset")
        await in_thread(_produce_then_sentinel, tocsind, kafka, evs, 3, sentinel)
        got = {name: sorted(await _until_sentinel(ws, sentinel["incident_id"]))
               for name, ws in subs.items()}
        for ws in subs.values():
            await ws.close()
        return got

    got = run(body())
    assert got["components=playback"] == [pb_eu]
    assert got["components=search,billing"] == sorted([search_us, billing_eu])
    assert got["regions=eu-west"] == sorted([pb_eu, billing_eu])
    assert got["min_impact=major"] == [search_us]
    assert got["all three"] == [pb_eu]


def test_global_incident_reaches_region_subscribers(tocsind, kafka):
    glob, other = uid("global"), uid("ap")
    sentinel = _sentinel()

    async def body():
        eu = await Ws.connect(tocsind.ws_url, query(regions=["eu-west"]))
        await eu.expect("snapshot")
        await in_thread(_produce_then_sentinel, tocsind, kafka,
                        [event(other, 1, regions=["ap-south"]), event(glob, 1, regions=[])], 2,
                        sentinel)
        got = await _until_sentinel(eu, sentinel["incident_id"])
        await eu.close()
        return got

    assert run(body()) == [glob]


def test_matched_once_keeps_matching_until_resolved(tocsind, kafka):
    iid = uid("inc")
    sentinel = _sentinel()

    async def body():
        ws = await Ws.connect(tocsind.ws_url, query(min_impact="major"))
        await ws.expect("snapshot")
        await in_thread(_produce_then_sentinel, tocsind, kafka, [
            event(iid, 1, impact="major"),
            event(iid, 2, impact="minor", status="identified"),  # below the filter: still sent
            event(iid, 3, impact="minor", status="resolved"),
            event(iid, 4, impact="minor", status="investigating"),  # reopened below the filter
        ], 4, sentinel)
        msgs = await ws.until(lambda m: m.get("type") == "update"
                              and m["incident"]["incident_id"] == sentinel["incident_id"], 20)
        await ws.close()
        return [(m["incident"]["incident_id"], m["incident"]["version"]) for m in msgs[:-1]]

    assert run(body()) == [(iid, 1), (iid, 2), (iid, 3)]


def test_duplicate_and_stale_events_dropped(tocsind, kafka):
    iid = uid("inc")
    v1 = event(iid, 1)
    v2 = event(iid, 2, status="identified")
    stale = event(iid, 1, title="stale replay of v1")       # new event_id, old version
    same = event(iid, 2, title="same version, new event")   # equal version is stale too
    v3 = event(iid, 3, status="monitoring")

    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        snap = await ws.expect("snapshot")
        await in_thread(kafka.produce_all, [v1, v1, v2, stale, v2, same, v3])
        ups = await ws.updates(3)
        await ws.quiet(1.0)
        await ws.close()
        return snap, ups

    snap, ups = run(body())
    assert [u["incident"]["version"] for u in ups] == [1, 2, 3]
    assert [u["incident"]["title"] for u in ups] == [v1["title"], v2["title"], v3["title"]]
    check_seq_run(ups, snap["seq"])
    m = tocsind.metrics()
    assert m.get('tocsin_events_total{result="accepted"}') == 3, m
    assert m.get('tocsin_events_total{result="duplicate"}', 0) >= 2, m
    assert m.get('tocsin_events_total{result="stale"}', 0) >= 2, m


def test_seq_order_over_stream_of_50(tocsind, kafka):
    incidents = [uid("inc") for _ in range(5)]
    evs = []
    for version in range(1, 11):  # interleaved: i1v1 i2v1 ... i5v10
        for iid in incidents:
            evs.append(event(iid, version, impact=["minor", "major"][version % 2]))

    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        snap = await ws.expect("snapshot")
        await in_thread(kafka.produce_all, evs)
        ups = await ws.updates(50, timeout=30)
        await ws.quiet(0.5)
        await ws.close()
        return snap, ups

    snap, ups = run(body())
    check_seq_run(ups, snap["seq"])
    for u in ups:
        assert u["epoch"] == snap["epoch"] and u["sub"] == "default"
    got = sorted((u["incident"]["incident_id"], u["incident"]["version"]) for u in ups)
    assert got == sorted((e["incident_id"], e["version"]) for e in evs)


def test_resolved_leaves_active_set_but_subscriber_sees_it(tocsind, kafka):
    gone, stays = uid("gone"), uid("stays")

    async def body():
        ws = await Ws.connect(tocsind.ws_url, query(components=["playback"]))
        await ws.expect("snapshot")
        await in_thread(kafka.produce_all, [event(gone, 1), event(stays, 1)])
        await ws.updates(2)
        await in_thread(kafka.produce, event(gone, 2, status="resolved"))
        (res,) = await ws.updates(1)
        fresh = await Ws.connect(tocsind.ws_url, query(components=["playback"]))
        snap = await fresh.expect("snapshot")
        await ws.close()
        await fresh.close()
        return res, snap

    res, snap = run(body())
    assert res["incident"]["incident_id"] == gone and res["incident"]["status"] == "resolved"
    assert [i["incident_id"] for i in snap["incidents"]] == [stays]
    listed, _ = tocsind.get_json("/v1/incidents")
    assert [i["incident_id"] for i in listed["incidents"]] == [stays]
    hist, _ = tocsind.get_json(f"/v1/incidents/{gone}")
    assert hist["incident"]["status"] == "resolved"
    assert sorted(u["incident"]["version"] for u in hist["updates"]) == [1, 2]


def test_subscribe_message_adds_named_subscription(tocsind, kafka):
    iid = uid("inc")

    async def body():
        ws = await Ws.connect(tocsind.ws_url, query(components=["billing"]))
        await ws.expect("snapshot")
        await ws.send({"type": "subscribe", "id": "pb", "filter": {"components": ["playback"]}})
        snap = await ws.expect("snapshot")
        assert snap["sub"] == "pb"
        await in_thread(kafka.produce, event(iid, 1, components=["playback"]))
        (up,) = await ws.updates(1, sub="pb")
        await ws.send({"type": "unsubscribe", "id": "pb"})
        await asyncio.sleep(0.5)
        await in_thread(kafka.produce, event(iid, 2, components=["playback"]))
        await ws.quiet(1.5)
        await ws.close()
        return up

    assert run(body())["incident"]["incident_id"] == iid


def test_sixteen_subscriptions_each_delivered_seventeenth_refused(tocsind, kafka):
    # A session's subscription table grows by doubling up to ws.max_subscriptions
    # (16): every one of the 16 still gets its update across the regrowths,
    # the 17th is refused, and a freed slot can be used again.
    iid = uid("inc")

    async def body():
        ws = await Ws.connect(tocsind.ws_url, query(components=["playback"]))
        await ws.expect("snapshot")
        for i in range(15):
            await ws.send({"type": "subscribe", "id": f"s{i}", "filter": {"components": ["playback"]}})
            assert (await ws.expect("snapshot"))["sub"] == f"s{i}"
        await ws.send({"type": "subscribe", "id": "s15", "filter": {}})
        refused = await ws.expect("error")
        await ws.send({"type": "unsubscribe", "id": "s3"})
        await ws.send({"type": "subscribe", "id": "again", "filter": {"components": ["playback"]}})
        assert (await ws.expect("snapshot"))["sub"] == "again"
        await in_thread(kafka.produce, event(iid, 1, components=["playback"]))
        ups = await ws.updates(16)
        await ws.quiet(0.5)
        await ws.close()
        return refused, ups

    refused, ups = run(body())
    assert refused["code"] == "too_many_subscriptions"
    subs = sorted(u["sub"] for u in ups)
    assert subs == sorted(["default", "again"] + [f"s{i}" for i in range(15) if i != 3])
    assert {u["incident"]["incident_id"] for u in ups} == {iid}
