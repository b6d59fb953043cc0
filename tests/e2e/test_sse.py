# tocsin — SPDX-License-Identifier: MIT
#
# Server-Sent Events (DESIGN §4): a snapshot then updates with
# `id: <epoch>:<seq>`, the filter applied, and Last-Event-ID resuming with
# no gap and no duplicate.

from clients import Sse, query
from helpers import event, uid


def test_sse_snapshot_then_updates_with_ids(tocsind, kafka):
    iid, other = uid("inc"), uid("other")
    s = Sse(tocsind.url, query(components=["playback"]))
    try:
        assert s.status == 200
        assert s.headers.get("content-type", "").startswith("text/event-stream"), s.headers
        snap = s.next()
        assert snap["event"] == "snapshot"
        epoch, seq0 = snap["data"]["epoch"], snap["data"]["seq"]
        assert snap["data"]["incidents"] == []
        # The filtered-out event first, stored before the others: it takes
        # seq0+1 (events of different incidents may be on different partitions).
        kafka.produce(event(other, 1, components=["search"]))
        tocsind.wait_metric('tocsin_events_total{result="accepted"}', 1)
        kafka.produce_all([event(iid, 1), event(iid, 2)])
        ups = [s.next(), s.next()]
    finally:
        s.close()
    assert [u["event"] for u in ups] == ["update", "update"]
    assert [u["data"]["incident"]["version"] for u in ups] == [1, 2]
    assert [u["data"]["incident"]["incident_id"] for u in ups] == [iid, iid]
    # The search event took seq0+1 but is filtered out.
    assert [u["id"] for u in ups] == [f"{epoch}:{seq0 + 2}", f"{epoch}:{seq0 + 3}"]
    assert [u["data"]["seq"] for u in ups] == [seq0 + 2, seq0 + 3]


def test_sse_resume_with_last_event_id(tocsind, kafka):
    iid = uid("inc")
    s = Sse(tocsind.url)
    snap = s.next()
    kafka.produce_all([event(iid, 1), event(iid, 2)])
    first = [s.next(), s.next()]
    s.close()
    kafka.produce_all([event(iid, 3), event(iid, 4), event(iid, 5)])
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', 5)

    back = Sse(tocsind.url, last_event_id=first[-1]["id"])
    try:
        assert back.status == 200
        replayed = [back.next(), back.next(), back.next()]
        kafka.produce(event(iid, 6))
        live = back.next()
    finally:
        back.close()
    evs = first + replayed + [live]
    assert [e["event"] for e in evs] == ["update"] * 6, [e["event"] for e in evs]
    assert [e["data"]["incident"]["version"] for e in evs] == [1, 2, 3, 4, 5, 6]
    seq0 = snap["data"]["seq"]
    epoch = snap["data"]["epoch"]
    assert [e["id"] for e in evs] == [f"{epoch}:{seq0 + i}" for i in range(1, 7)]


def test_sse_foreign_last_event_id_gets_reset_snapshot(tocsind, kafka):
    iid = uid("inc")
    kafka.produce(event(iid, 1))
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', 1)
    s = Sse(tocsind.url, last_event_id="some-other-epoch:1")
    try:
        ev = s.next()
    finally:
        s.close()
    assert ev["event"] == "snapshot"
    assert ev["data"].get("reset") is True, ev
    assert [i["incident_id"] for i in ev["data"]["incidents"]] == [iid]
