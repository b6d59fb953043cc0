# tocsin — SPDX-License-Identifier: MIT
#
# Hostile WebSocket clients (DESIGN §4, §8.5), in the spirit of the Autobahn
# fuzzing-server cases, with frames written by hand (rawws.py): every
# protocol violation gets its exact close code, oversized and malformed
# messages their documented answer, and none of it touches anyone else: a
# control session on the same tocsind receives an update produced during
# every case, with no gap in seq, and tocsind answers /healthz after each.
# Where lws 4.1.6 answers otherwise than RFC 6455 asks, the case says so and
# why the difference is accepted.

import json
import threading
import time

import pytest

from helpers import HarnessError, event, uid
from rawws import (ABNORMAL, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                   ControlSession, RawWs, close_payload, frame, rss_kib, shared_tocsind)

# Hostile sessions subscribe to a component no event has, so the control
# traffic never reaches them and every frame they read is an answer.
NO_MATCH = "components=hostile-none"
MAX_MESSAGE = 64 * 1024  # ws.max_message's default (DESIGN §4)
SUBSCRIBE = json.dumps({"type": "subscribe", "id": "s2", "filter": {"components": ["none"]}})


@pytest.fixture(scope="module")
def node(tmp_path_factory, redis_server):
    yield from shared_tocsind(tmp_path_factory, redis_server, name="hostile-ws")


@pytest.fixture(scope="module")
def control(node):
    c = ControlSession(node[0].port)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def others_unaffected(node, control):
    """Around every case: an update produced while it runs reaches the
    control session, seq stays gapless, and tocsind still answers."""
    t, kafka = node
    iid = uid("ctl")
    kafka.produce(event(iid, 1))
    yield
    assert t.alive(), f"tocsind died:\n{t.log_tail(30)}"
    control.wait_for(iid)
    control.updates()
    assert t.get("/healthz")[0] == 200
    assert t.sanitizer_report() is None, t.sanitizer_report()


def session(t):
    ws = RawWs(t.port, NO_MATCH)
    ws.expect("welcome")
    ws.expect("snapshot")
    return ws


def valid_close(code, reason=b""):
    return frame(OP_CLOSE, close_payload(code, reason))


# (id, bytes sent after the handshake, close code, reason lws gives or None).
# lws 4.1.6 (lib/roles/ws/ops-ws.c, lws_ws_rx_sm) fails these itself.
PROTOCOL_ERRORS = [
    # RFC 6455 §5.2: nonzero reserved bits without a negotiated extension.
    ("rsv1", frame(OP_TEXT, SUBSCRIBE, rsv=4), 1002, b"rsv bits"),
    ("rsv2", frame(OP_TEXT, SUBSCRIBE, rsv=2), 1002, b"rsv bits"),
    ("rsv3", frame(OP_TEXT, SUBSCRIBE, rsv=1), 1002, b"rsv bits"),
    ("rsv-all-on-ping", frame(OP_PING, b"p", rsv=7), 1002, b"rsv bits"),
    # §5.2: opcodes 3-7 and 0xB-0xF are reserved.
    *[(f"opcode-{op:#x}", frame(op, b"x"), 1002, b"bad opc")
      for op in (0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF)],
    # §5.5: control frames must not be fragmented.
    ("ping-fragmented", frame(OP_PING, b"p", fin=False), 1002, b"frag ctl"),
    ("pong-fragmented", frame(OP_PONG, b"p", fin=False), 1002, b"frag ctl"),
    ("close-fragmented", frame(OP_CLOSE, close_payload(1000), fin=False), 1002, b"frag ctl"),
    # §5.4: a continuation needs a message to continue, and a new data frame
    # must not start inside a fragmented one.
    ("continuation-without-start", frame(OP_CONT, b"x"), 1002, b"bad cont"),
    ("text-inside-fragmented-text",
     frame(OP_TEXT, b'{"type":', fin=False) + frame(OP_TEXT, b"{}"), 1002, b"bad cont"),
    ("binary-inside-fragmented-text",
     frame(OP_TEXT, b'{"type":', fin=False) + frame(OP_BINARY, b"{}"), 1002, b"bad cont"),
    ("text-inside-fragmented-binary",
     frame(OP_BINARY, b"ab", fin=False) + frame(OP_TEXT, b"{}"), 1002, b"bad cont"),
    # §8.1: a text message must be valid UTF-8 (1007), also when the bad
    # sequence is cut across fragments; overlong forms and surrogates too.
    ("utf8-invalid-byte", frame(OP_TEXT, b'{"type":"\xff"}'), 1007, b"bad utf8"),
    ("utf8-overlong-nul", frame(OP_TEXT, b'{"a":"\xc0\x80"}'), 1007, b"bad utf8"),
    ("utf8-surrogate", frame(OP_TEXT, b'{"a":"\xed\xa0\x80"}'), 1007, b"bad utf8"),
    ("utf8-invalid-across-fragments",
     frame(OP_TEXT, b'{"a":"\xe2\x82', fin=False) + frame(OP_CONT, b'\x28"}'), 1007, b"bad utf8"),
    ("utf8-truncated-at-end", frame(OP_TEXT, b'{"a":"\xe2\x82'), 1007, b"partial utf8"),
    # §5.5.1, §7.4: close codes that must not be sent on the wire.
    *[(f"close-code-{code}", valid_close(code), 1002, None)
      for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535)],
    # A 1-byte close body cannot hold a code; lws echoed it as it came and
    # ws.c now answers 1002 itself (lws then waits for the peer to hang up).
    ("close-1-byte-body", frame(OP_CLOSE, b"\x03"), 1002, b"invalid close frame"),
]

# lws 4.1.6 fails these by dropping TCP without a close frame (the client
# sees 1006). RFC 6455 §7.1.7 says an endpoint SHOULD send a close frame
# before it fails the connection: a SHOULD, in lws code we cannot reach
# (lws_ws_rx_sm closes without lws_close_reason), and the connection does
# end at once, which is what matters. Accepted.
DROPPED = [
    # §5.5: control frames carry at most 125 bytes ("Control frame with
    # xtended length is illegal").
    ("ping-126-bytes", frame(OP_PING, b"p" * 126)),
    ("close-126-bytes", frame(OP_CLOSE, close_payload(1000, b"r" * 124))),
    ("pong-126-bytes", frame(OP_PONG, b"p" * 126)),
    # §5.2: the most significant bit of a 64-bit length must be 0.
    ("length-bit-63", frame(OP_TEXT, b"", length=1 << 63, form=64)),
    # §5.5.1: a close reason is UTF-8; lws checks it before ws.c sees it.
    ("close-reason-invalid-utf8", valid_close(1000, b"\xff\xfe")),
]


@pytest.mark.parametrize("data,code,reason", [c[1:] for c in PROTOCOL_ERRORS],
                         ids=[c[0] for c in PROTOCOL_ERRORS])
def test_protocol_error_closes_with_code(node, data, code, reason):
    ws = session(node[0])
    ws.send(data)
    # Whether lws reads the echo of its close depends on where its parser
    # stopped in the bad frame; it ends the connection within 5 s anyway.
    closed = ws.wait_close(10, linger=0.5)
    ws.close()
    assert closed.code == code, closed
    if reason is not None:
        assert closed.reason == reason, closed


@pytest.mark.parametrize("data", [c[1] for c in DROPPED], ids=[c[0] for c in DROPPED])
def test_protocol_error_lws_drops_connection(node, data):
    ws = session(node[0])
    ws.send(data)
    closed = ws.wait_close(10)
    ws.close()
    assert closed.tcp_closed and closed.code == ABNORMAL, closed


@pytest.mark.parametrize("code", [1000, 1001, 1011, 3000, 4000, 4999])
def test_valid_close_code_is_echoed(node, code):
    """The boundary of the close-code cases: valid codes come back as sent,
    and the connection ends."""
    ws = session(node[0])
    ws.send(valid_close(code, "bye"))
    closed = ws.wait_close(10)
    ws.close()
    assert closed.code == code and closed.tcp_closed, closed


def test_close_without_body_is_echoed_without_body(node):
    ws = session(node[0])
    ws.send(frame(OP_CLOSE))
    f = ws.recv_frame(10)
    assert f is not None and f.opcode == OP_CLOSE and f.payload == b"", f
    assert ws.recv_frame(10) is None, "the server kept the connection after the close"
    ws.close()


def test_unmasked_client_frame_is_read_like_a_masked_one(node):
    """RFC 6455 §5.1: a server MUST fail a connection on an unmasked client
    frame. lws 4.1.6 does not check the mask bit (later lws closes with
    1002 "client unmasked"), and ws.c cannot see it. Accepted: masking
    guards proxies against script in browsers, which always mask; a client
    that does not mask hurts only itself. The frame is read as sent; when
    lws is upgraded, this case turns into a 1002 in PROTOCOL_ERRORS."""
    ws = session(node[0])
    ws.send(frame(OP_TEXT, SUBSCRIBE, masked=False))
    snap = ws.replies()
    ws.close()
    assert snap["type"] == "snapshot" and snap["sub"] == "s2", snap


@pytest.mark.parametrize("data", [
    # A 64-bit length far past ws.max_message, followed by a few bytes: refused
    # at the header's word, not after 64 KiB arrived.
    frame(OP_TEXT, b"x" * 100, length=1 << 40, form=64)[:14 + 100],
    frame(OP_TEXT, b"x" * 10, length=MAX_MESSAGE + 1, form=64)[:14 + 10],
    frame(OP_BINARY, b"x" * 10, length=1 << 62, form=64)[:14 + 10],
    # Whole messages one byte over the bound, in one frame and in fragments.
    frame(OP_TEXT, b"x" * (MAX_MESSAGE + 1)),
    frame(OP_TEXT, b"x" * 40000, fin=False) + frame(OP_CONT, b"x" * (MAX_MESSAGE + 1 - 40000)),
    frame(OP_BINARY, b"x" * (MAX_MESSAGE + 1)),
], ids=["len64-1TiB", "len64-max+1", "binary-len64-2^62", "max+1", "max+1-fragmented",
        "binary-max+1"])
def test_message_over_max_message_closes_1009(node, data):
    t = node[0]
    before = t.metric('tocsin_ws_closed_total{code="1009"}')
    ws = session(t)
    ws.send(data)
    # The echo of the close may go into the payload lws still expects.
    closed = ws.wait_close(10, linger=0.5)
    ws.close()
    assert closed.code == 1009 and closed.reason == b"message too big", closed
    assert t.metric('tocsin_ws_closed_total{code="1009"}') == before + 1


def test_message_of_exactly_max_message_is_read(node):
    """The bound itself is allowed: 64 KiB of JSON (valid, with a padding
    field) is parsed and answered, in fragments too."""
    ws = session(node[0])
    msg = {"type": "subscribe", "id": "big", "filter": {"components": ["none"]}, "pad": ""}
    msg["pad"] = "p" * (MAX_MESSAGE - len(json.dumps(msg)))
    text = json.dumps(msg).encode()
    assert len(text) == MAX_MESSAGE
    ws.send(frame(OP_TEXT, text[:1000], fin=False) + frame(OP_CONT, text[1000:]))
    snap = ws.replies()
    ws.close()
    assert snap["type"] == "snapshot" and snap["sub"] == "big", snap


def test_utf8_character_split_across_fragments_is_valid(node):
    """The boundary of the UTF-8 cases: a character cut between fragments is
    fine (the check carries its state across them)."""
    ws = session(node[0])
    ws.send(frame(OP_TEXT, b'{"type":"unsubscribe","id":"\xe2\x82', fin=False)
            + frame(OP_CONT, b'\xac"}'))
    err = ws.replies()
    ws.close()
    # The message arrived whole and was judged by tocsin, not by lws.
    assert err["type"] == "error" and err["code"] == "bad_message", err
    assert err["message"].startswith("id:"), err


def test_ping_payload_is_echoed_in_pong(node):
    ws = session(node[0])
    for payload in (b"", b"hello", b"\x00\xff" * 10, b"p" * 125):
        ws.send(frame(OP_PING, payload))
        f = ws.recv_frame(10)
        assert f is not None and f.opcode == OP_PONG and f.payload == payload, f
    # A ping between the fragments of a message is answered at once and the
    # message still arrives whole (§5.4: control frames may be injected).
    ws.send(frame(OP_TEXT, b'{"type":"unsub', fin=False) + frame(OP_PING, b"mid")
            + frame(OP_CONT, b'scribe","id":"nope"}'))
    got = [ws.recv_frame(10) for _ in range(2)]
    ws.close()
    assert sorted(f.opcode for f in got) == [OP_TEXT, OP_PONG], got
    pong = next(f for f in got if f.opcode == OP_PONG)
    err = json.loads(next(f for f in got if f.opcode == OP_TEXT).payload)
    assert pong.payload == b"mid"
    assert err["code"] == "unknown_subscription", err


def test_unsolicited_pong_is_ignored(node):
    ws = session(node[0])
    ws.send(frame(OP_PONG, b"unasked") + frame(OP_TEXT, '{"type":"unsubscribe","id":"nope"}'))
    err = ws.replies()
    ws.close()
    assert err["code"] == "unknown_subscription", err


def test_many_pings_do_not_grow_memory(node):
    """50,000 pings sent without reading a single pong: lws keeps one pending
    pong per session (RFC 6455 §5.5.3 allows answering only the latest), so
    tocsind's memory does not grow with the count; the session then still
    answers a ping and a message. lws 4.1.6 may leave the last few pings of
    such a burst unanswered (the pong for the latest one is sent when the
    next frame arrives): harmless, and the final ping below is answered."""
    t = node[0]
    ws = session(t)
    rss0 = rss_kib(t.proc.pid)
    n, size = 50000, 120
    burst = b"".join(frame(OP_PING, b"%06d" % i + b"p" * (size - 6)) for i in range(n))
    sender = threading.Thread(target=ws.send, args=(burst,), daemon=True)
    sender.start()
    sender.join(30)
    assert not sender.is_alive(), "tocsind stopped reading pings"
    time.sleep(0.5)
    grown = rss_kib(t.proc.pid) - rss0
    pongs = []
    while True:
        try:
            f = ws.recv_frame(1.0)
        except HarnessError:
            break  # nothing more within a second: the burst is answered
        assert f is not None and f.opcode == OP_PONG, f
        pongs.append(int(f.payload[:6]))
    ws.send(frame(OP_PING, b"final") + frame(OP_TEXT, '{"type":"unsubscribe","id":"nope"}'))
    # A pong held back from the burst may come first (see above).
    final, err = None, None
    while final is None or err is None:
        f = ws.recv_frame(10)
        assert f is not None and f.opcode in (OP_PONG, OP_TEXT), f
        if f.opcode == OP_TEXT:
            err = json.loads(f.payload)
        elif f.payload == b"final":
            final = f
        else:
            pongs.append(int(f.payload[:6]))
    ws.close()
    # Far less than the 6 MB of pings: nothing was kept per ping.
    assert grown < 4096, f"RSS grew {grown} KiB over {n} pings"
    assert 0 < len(pongs) < n and pongs == sorted(pongs), pongs[:20]
    assert err["code"] == "unknown_subscription", err


@pytest.mark.parametrize("data", [
    frame(OP_BINARY, SUBSCRIBE),
    frame(OP_BINARY, b"\x00\x01binary junk"),
    frame(OP_BINARY, b"a" * 100, fin=False) + frame(OP_CONT, b"b" * 100, fin=False)
    + frame(OP_CONT, b"c"),
], ids=["json", "junk", "fragmented"])
def test_binary_message_gets_error_and_session_goes_on(node, data):
    """DESIGN §4: client messages are JSON text frames. A binary message is
    answered once with bad_message (not fatal, like any bad message), even a
    valid subscribe in binary (lws used to hand it over as text), and the
    session goes on."""
    t = node[0]
    before = t.metric("tocsin_ws_bad_messages_total")
    ws = session(t)
    ws.send(data)
    err = ws.replies()
    ws.send(frame(OP_TEXT, SUBSCRIBE))
    snap = ws.replies()
    ws.close()
    assert err["type"] == "error" and err["code"] == "bad_message", err
    assert "binary" in err["message"], err
    assert snap["type"] == "snapshot" and snap["sub"] == "s2", snap
    assert t.metric("tocsin_ws_bad_messages_total") == before + 1


@pytest.mark.parametrize("text", [
    "[" * 30000 + "]" * 30000,
    '{"a":' * 10000 + "1" + "}" * 10000,
    '{"type":"subscribe","id":"x","filter":' + '{"components":' * 3500 + "[]" + "}" * 3501,
    "[" * (MAX_MESSAGE - 2) + "]]",
], ids=["arrays", "objects", "in-filter", "max-message-of-brackets"])
def test_json_bomb_gets_error(node, text):
    """Deep nesting within 64 KiB: jansson stops at its depth limit (2048),
    so the answer is a bad_message error, the session stays open, and
    tocsind's stack is untouched."""
    ws = session(node[0])
    ws.send(frame(OP_TEXT, text))
    err = ws.replies()
    ws.send(frame(OP_TEXT, SUBSCRIBE))
    snap = ws.replies()
    ws.close()
    assert err["type"] == "error" and err["code"] == "bad_message", err
    assert snap["type"] == "snapshot", snap


def test_many_hostile_sessions_at_once(node):
    """Forty sessions each break a different rule at the same moment; each
    gets its own answer, and the control session (checked by the fixture)
    still receives its update."""
    t = node[0]
    cases = [c for c in PROTOCOL_ERRORS if c[3] is not None][:40]
    sessions = [session(t) for _ in cases]
    for ws, case in zip(sessions, cases):
        ws.send(case[1])
    results = [ws.wait_close(10, linger=0.5) for ws in sessions]
    for ws in sessions:
        ws.close()
    for case, closed in zip(cases, results):
        assert (closed.code, closed.reason) == (case[2], case[3]), (case[0], closed)


def test_length_header_alone_holds_no_memory(node):
    """A 64-bit length with no payload yet: nothing is allocated for it (the
    1009 comes with its first byte, above); the session is merely idle."""
    t = node[0]
    socks = [session(t) for _ in range(20)]
    rss0 = rss_kib(t.proc.pid)
    zero = bytes(4)  # a zero mask key, so the lone payload byte goes as it is
    for ws in socks:
        ws.send(frame(OP_TEXT, b"", length=1 << 40, form=64, key=zero))
    time.sleep(0.3)
    grown = rss_kib(t.proc.pid) - rss0
    for ws in socks:
        ws.send(b"x")
    codes = [ws.wait_close(10).code for ws in socks]
    for ws in socks:
        ws.close()
    assert grown < 2048, f"RSS grew {grown} KiB for 20 announced 1 TiB frames"
    assert codes == [1009] * 20, codes


def test_data_after_close_is_not_read(node):
    """§5.5.1: after its close frame an endpoint sends no more data; a
    subscribe that follows is not acted on, the close is echoed."""
    ws = session(node[0])
    ws.send(valid_close(1000) + frame(OP_TEXT, SUBSCRIBE))
    closed = ws.wait_close(10)
    ws.close()
    assert closed.code == 1000 and closed.tcp_closed, closed
    assert [f.opcode for f in closed.frames] == [OP_CLOSE], closed.frames


def test_garbage_after_close_ends_connection(node):
    """Bytes that are not even a frame after a close: lws fails the
    connection on them, before or after its echo (both are fine: the
    client broke the protocol twice); the connection ends at once."""
    ws = session(node[0])
    ws.send(valid_close(1000) + b"\xff" * 64)
    closed = ws.wait_close(10)
    ws.close()
    assert closed.tcp_closed and closed.code in (1000, ABNORMAL), closed
    assert all(f.opcode == OP_CLOSE for f in closed.frames), closed.frames


def test_partial_frame_then_hang_up(node):
    """A client that vanishes mid-frame or mid-message leaves nothing
    behind: the session gauge returns to what it was."""
    t = node[0]
    gauge = 'tocsin_sessions{channel="ws"}'
    base = t.metric(gauge)
    for data in (frame(OP_TEXT, SUBSCRIBE)[:5],
                 frame(OP_TEXT, b'{"type":', fin=False),
                 frame(OP_TEXT, b"x" * 5000, length=60000, form=16)[:5004]):
        ws = session(t)
        ws.send(data)
        ws.close()
    deadline = time.monotonic() + 10
    while t.metric(gauge) != base and time.monotonic() < deadline:
        time.sleep(0.05)
    assert t.metric(gauge) == base
