# tocsin — SPDX-License-Identifier: MIT
#
# Server-Sent Events (DESIGN §4): a snapshot then updates with
# `id: <epoch>:<seq>`, the filter applied, and Last-Event-ID resuming with
# no gap and no duplicate. A client that leaves is seen at once.

import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from clients import Sse, query
from helpers import (HarnessError, assert_loop_idle, close_wait_sockets, event, uid,
                     wait_until)

SSE_SESSIONS = 'tocsin_sessions{channel="sse"}'
SSE_OPENED = 'tocsin_sessions_opened_total{channel="sse"}'
STREAM_REQUEST = b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"


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


def _read_past(sock, data, marker, after=0):
    """Reads sock until data holds marker at or after offset `after`;
    returns data and the offset just past the marker."""
    while data.find(marker, after) < 0:
        chunk = sock.recv(4096)
        if not chunk:
            raise HarnessError(f"stream ended before {marker!r}: {data[:200]!r}")
        data += chunk
    return data, data.find(marker, after) + len(marker)


def _raw_stream(port, headers=b"", extra=b""):
    """GET /v1/events on a raw socket. @returns the socket, what it read and
    the offset where the body starts (just past the response head)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(STREAM_REQUEST + headers + b"\r\n" + extra)
    data, body = _read_past(s, b"", b"\r\n\r\n")
    return s, data, body


@pytest.mark.timeout(120)
def test_sse_client_hangup_after_the_head_is_seen_at_once(tocsind):
    """Regression: lws 4.1.6 reads nothing from a connection whose response
    is open, so when an SSE client closed its socket right after the head,
    tocsind did not see it (the socket sat in CLOSE_WAIT, the session and
    its per-IP place stayed counted, and the event loop spun on the unread
    FIN) until a heartbeat write failed 25-30 s later. Now 100 such streams
    are all gone within 3 s, and the loop is idle."""
    before, opened = tocsind.metric(SSE_SESSIONS), tocsind.metric(SSE_OPENED)

    def one(i):
        s, data, body = _raw_stream(tocsind.port)
        try:
            assert data.startswith(b"HTTP/1.1 200"), data[:80]
            if i % 2:
                # The snapshot too: with nothing unread, the close is a
                # plain FIN (the case that was missed); unread bytes make
                # it a reset, which lws did see.
                _read_past(s, data, b"\n\n", body)
        finally:
            s.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(100)))
    assert tocsind.metric(SSE_OPENED) == opened + 100
    wait_until(lambda: tocsind.metric(SSE_SESSIONS) == before, 3, interval=0.1,
               what="every closed SSE stream gone from the sessions gauge")
    wait_until(lambda: close_wait_sockets(tocsind.port) == 0, 3, interval=0.1,
               what="no server socket left in CLOSE_WAIT")
    assert_loop_idle(tocsind)


def test_sse_bytes_after_the_request_close_the_stream(tocsind, kafka):
    """A stream never ends, so whatever a client sends behind its request
    (here a pipelined request) would never be read: lws left it unread and
    spun on it. Now the stream is closed at once (the client may resume
    with Last-Event-ID) and a stream beside it carries on."""
    bystander = Sse(tocsind.url)
    try:
        assert bystander.next()["event"] == "snapshot"
        s, data, body = _raw_stream(tocsind.port)
        try:
            _read_past(s, data, b"\n\n", body)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass  # whatever was on its way before the close
            except TimeoutError:
                pytest.fail("the stream was not closed within 10 s")
        finally:
            s.close()
        wait_until(lambda: tocsind.metric(SSE_SESSIONS) == 1, 5, interval=0.1,
                   what="only the bystander stream left")
        assert_loop_idle(tocsind)
        iid = uid("inc")
        kafka.produce(event(iid, 1))
        up = bystander.next()
        assert up["event"] == "update" and up["data"]["incident"]["incident_id"] == iid
    finally:
        bystander.close()


def test_sse_request_with_a_body_is_refused(tocsind):
    """A stream request's body would never be read: 400 and a close, while
    Content-Length: 0 is no body and gets its stream."""
    s, data, body = _raw_stream(tocsind.port, b"Content-Length: 5\r\n", b"hello")
    try:
        assert data.startswith(b"HTTP/1.1 400"), data[:80]
        data, _ = _read_past(s, data, b"}", body)
        assert b'"error":"bad_request"' in data[body:], data[body:]
        s.settimeout(5)
        assert s.recv(4096) == b"", "connection left open after the 400"
    finally:
        s.close()
    s, data, body = _raw_stream(tocsind.port, b"Content-Length: 0\r\n")
    try:
        assert data.startswith(b"HTTP/1.1 200"), data[:80]
        data, _ = _read_past(s, data, b"\n\n", body)
        assert b"event: snapshot" in data[body:], data[body:]
    finally:
        s.close()
