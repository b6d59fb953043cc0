# tocsin — SPDX-License-Identifier: MIT
#
# Hostile HTTP clients (DESIGN §7, §8.5) over raw sockets: slow and idle
# connections are dropped within the bounds broker/http/server.c gives lws,
# oversized or malformed request heads and bodies get their exact answer
# (or, where lws 4.1.6 gives none, a closed connection), request framing is
# strict, bad upgrades are refused, and every admin route refuses missing,
# malformed and oversized bodies and wrong tokens. Run it under the ASan
# build too: lws 4.1.6 has a known use-after-free on a bad Upgrade, and the
# module fixture fails on tocsind's sanitizer report. One address may hold
# only so many connections (http.max_pending_per_ip before a whole request
# head, http.max_connections_per_ip in all), and a request body must arrive
# whole within http.body_timeout.

import json
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import assert_loop_idle, event, uid, wait_until
from rawws import ControlSession, accept_key, shared_tocsind, upgrade_request

TOKEN = "k" * 31 + "A"
# The bounds broker/http/server.c sets (info.timeout_secs_ah_idle,
# info.keepalive_timeout); what a slow client meets.
HEAD_TIMEOUT_S = 10
KEEPALIVE_TIMEOUT_S = 5
SLACK_S = 2.5  # lws checks its timeouts once a second; ASan is slower
# What the fixture sets: the default pending cap, a low total cap (the
# default is 1024) and a short body deadline (the default is 10 s), so that
# the tests reach each bound quickly.
PENDING_PER_IP = 32
CONNECTIONS_PER_IP = 64
BODY_TIMEOUT_S = 4

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def node(tmp_path_factory, redis_server):
    env = {"TOCSIN_ADMIN_TOKEN": TOKEN,
           "TOCSIN_HTTP_MAX_PENDING_PER_IP": str(PENDING_PER_IP),
           "TOCSIN_HTTP_MAX_CONNECTIONS_PER_IP": str(CONNECTIONS_PER_IP),
           "TOCSIN_HTTP_BODY_TIMEOUT": f"{BODY_TIMEOUT_S}s"}
    yield from shared_tocsind(tmp_path_factory, redis_server, env=env, name="hostile-http")


@pytest.fixture(autouse=True)
def still_serving(node):
    yield
    t = node[0]
    assert t.alive(), f"tocsind died:\n{t.log_tail(30)}"
    assert t.get("/healthz")[0] == 200
    assert t.sanitizer_report() is None, t.sanitizer_report()


# ------------------------------------------------------------ raw requests


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Response({self.status}, {self.body[:120]!r})"


class Exchange:
    """What came back for some bytes: the responses in order, whether the
    server closed the connection within the wait, and when."""

    def __init__(self, responses, closed, rest):
        self.responses, self.closed, self.rest = responses, closed, rest

    @property
    def statuses(self):
        return [r.status for r in self.responses]

    def __repr__(self):
        return f"Exchange({self.responses}, closed={self.closed}, rest={self.rest[:80]!r})"


def _parse(buf):
    """Complete responses at the front of buf (every answer here has a
    Content-Length); returns (responses, rest)."""
    out = []
    while b"\r\n\r\n" in buf:
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        n = int(headers.get("content-length", "0"))
        if len(body) < n:
            break
        out.append(Response(int(parts[1]), headers, body[:n]))
        buf = body[n:]
    return out, buf


def exchange(port, data, wait=3.0, want=None, src="127.0.0.1"):
    """Sends data on a new connection and reads until the server closes it,
    `want` responses came (then a short look for a close), or wait passed."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.settimeout(wait)
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered and closed before reading all: read what it said
        buf, closed = b"", False
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if want is not None and len(_parse(buf)[0]) >= want:
                # Enough answers: a short look for the close that may follow.
                deadline = min(deadline, time.monotonic() + 0.15)
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except (socket.timeout, TimeoutError):
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
        responses, rest = _parse(buf)
        return Exchange(responses, closed, rest)
    finally:
        s.close()


def in_turn(port, requests, wait=3.0):
    """Sends requests one after another on one keep-alive connection, each
    after the answer to the one before (not pipelined); returns the
    answers, stopping at the first that does not come."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        buf = b""
        for data in requests:
            s.sendall(data)
            deadline = time.monotonic() + wait
            while True:
                got, rest = _parse(buf)
                if got:
                    out += got
                    buf = rest
                    break
                if time.monotonic() > deadline:
                    return out
                chunk = s.recv(65536)
                if not chunk:
                    return out
                buf += chunk
    return out


def request(method, path, headers=(), body=b"", version="HTTP/1.1"):
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


AUTH = f"Authorization: Bearer {TOKEN}"


def error_of(resp):
    doc = resp.json()
    assert set(doc) == {"error", "message"}, doc
    return doc["error"]


# ------------------------------------------------- slow and idle clients


class Slow(threading.Thread):
    """A connection that sends `head` (all at once, or trickled at `every`
    seconds a byte after its first `burst` bytes) and records when the
    server closes it and what it answered."""

    def __init__(self, port, head, every=None, stop_after=40, burst=0):
        super().__init__(daemon=True)
        self.port, self.head, self.every, self.stop_after = port, head, every, stop_after
        self.burst = len(head) if every is None else burst
        self.closed_at = None
        self.answered_at = None
        self.data = b""

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        t0 = time.monotonic()
        s.sendall(self.head[:self.burst])
        sent = self.burst
        try:
            while time.monotonic() - t0 < self.stop_after:
                if self.every is not None and sent < len(self.head):
                    try:
                        s.send(self.head[sent:sent + 1])
                    except OSError:
                        self.closed_at = time.monotonic() - t0
                        return
                    sent += 1
                s.settimeout(self.every or 1.0)
                try:
                    chunk = s.recv(4096)
                except (socket.timeout, TimeoutError):
                    continue
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    self.closed_at = time.monotonic() - t0
                    return
                if not self.data:
                    self.answered_at = time.monotonic() - t0
                self.data += chunk
        finally:
            s.close()


def test_slow_and_idle_connections_are_dropped_within_bounds(node):
    """Slowloris: a request head trickled at 1 byte/s is dropped when
    timeout_secs_ah_idle (10 s) has passed since the connection opened: lws
    does not re-arm that timeout per byte. A connection that says nothing,
    and heads lws stops parsing (a NUL, an obsolete folded line), meet the
    same bound; an idle keep-alive connection is closed keepalive_timeout
    (5 s) after its answer. Meanwhile new clients are answered at once and
    a WebSocket session gets its update."""
    t, kafka = node
    head = request("GET", "/healthz", ["X-Pad: " + "p" * 100])[:-2]  # never complete
    stalled = {
        "slowloris": Slow(t.port, head, every=1.0),
        "silent": Slow(t.port, b""),
        "nul-in-header": Slow(t.port, request("GET", "/healthz", ["X-A: a\x00b"])),
        "folded-header": Slow(t.port, request("GET", "/healthz", ["X-A: a", " b"])),
    }
    keepalive = Slow(t.port, request("GET", "/healthz"))
    control = ControlSession(t.port)
    for s in (*stalled.values(), keepalive):
        s.start()
    iid = uid("meanwhile")
    latencies = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < HEAD_TIMEOUT_S + SLACK_S:
        if len(latencies) == 4:  # a second or so in, with all of them stalled
            kafka.produce(event(iid, 1))
        t1 = time.monotonic()
        status = t.get("/healthz", timeout=2)[0]
        latencies.append(time.monotonic() - t1)
        assert status == 200
        if all(s.closed_at is not None for s in (*stalled.values(), keepalive)):
            break
        time.sleep(0.25)
    for s in (*stalled.values(), keepalive):
        s.join(HEAD_TIMEOUT_S + SLACK_S)
    up = control.wait_for(iid, timeout=10)
    control.close()
    for name, s in stalled.items():
        assert s.closed_at is not None, f"{name}: still open after {HEAD_TIMEOUT_S + SLACK_S} s"
        assert HEAD_TIMEOUT_S - 1 <= s.closed_at <= HEAD_TIMEOUT_S + SLACK_S, (name, s.closed_at)
        assert s.data == b"", (name, s.data[:80])
    assert keepalive.data.startswith(b"HTTP/1.1 200"), keepalive.data[:80]
    idle = keepalive.closed_at - keepalive.answered_at
    assert KEEPALIVE_TIMEOUT_S - 1 <= idle <= KEEPALIVE_TIMEOUT_S + SLACK_S, idle
    assert max(latencies) < 1.0, f"a client waited {max(latencies):.2f} s meanwhile"
    assert up["incident"]["incident_id"] == iid


# The head whole, then the body a byte every 1.5 s. lws re-arms its own
# body timeout (timeout_secs, 30 s) at every piece, so without
# http.body_timeout such a client would hold the connection and its buffer
# for as long as it liked. (id, path, headers)
SLOW_BODIES = [
    ("admin-route", "/v1/webhooks", [AUTH, "Content-Type: application/json"]),
    ("public-route", "/v1/subscribe", ["Content-Type: application/json"]),
]


@pytest.mark.parametrize("path,headers", [c[1:] for c in SLOW_BODIES],
                         ids=[c[0] for c in SLOW_BODIES])
def test_slow_body_is_cut_at_body_timeout(node, path, headers):
    body = b'{"url": "https://example.com/' + b"a" * 60 + b'"}'
    data = request("POST", path, headers + [f"Content-Length: {len(body)}"], body)
    slow = Slow(node[0].port, data, every=1.5, burst=len(data) - len(body),
                stop_after=BODY_TIMEOUT_S + 10)
    slow.start()
    slow.join(BODY_TIMEOUT_S + 12)
    assert slow.closed_at is not None, f"still open after {BODY_TIMEOUT_S + 10} s"
    assert BODY_TIMEOUT_S - 1 <= slow.closed_at <= BODY_TIMEOUT_S + SLACK_S, slow.closed_at
    responses, _ = _parse(slow.data)
    assert [r.status for r in responses] == [408], slow.data[:200]
    assert error_of(responses[0]) == "request_timeout"


@pytest.mark.parametrize("path,headers", [c[1:] for c in SLOW_BODIES],
                         ids=[c[0] for c in SLOW_BODIES])
def test_body_in_pieces_within_body_timeout_is_read(node, path, headers):
    """The boundary of the test above: a body that comes in pieces a second
    apart but whole within http.body_timeout gets the route's own answer,
    the same as when it comes at once."""
    body = b"{ }"
    data = request("POST", path, headers + [f"Content-Length: {len(body)}"], body)
    at_once = exchange(node[0].port, data, want=1)
    slow = Slow(node[0].port, data, every=1.0, burst=len(data) - len(body),
                stop_after=BODY_TIMEOUT_S + 2)
    slow.start()
    slow.join(BODY_TIMEOUT_S + 4)
    responses, _ = _parse(slow.data)
    assert len(at_once.statuses) == 1 and at_once.statuses[0] != 408, at_once
    assert [r.status for r in responses] == at_once.statuses, slow.data[:200]
    assert slow.answered_at < BODY_TIMEOUT_S, slow.answered_at


# ------------------------------------------------------ oversized heads

# (id, request, status or None: lws closes without an answer). lws keeps a
# request head in one header table of max_http_header_data (4096) bytes;
# past it, or past its fragment count, it logs "Ran out of header data
# space" and closes. RFC 9110 would have 414 / 431; a close is what the
# brief allows, and lws 4.1.6 gives tocsin no hook before it.
OVERSIZED_HEADS = [
    ("path-300-bytes", request("GET", "/" + "a" * 300), 414),
    ("query-3000-bytes", request("GET", "/v1/incidents?components=" + "a" * 3000), 414),
    ("uri-5000-bytes", request("GET", "/healthz?" + "a" * 5000), None),
    ("header-3-KiB", request("GET", "/healthz", ["X-Big: " + "a" * 3000]), 200),
    ("header-8-KiB", request("GET", "/healthz", ["X-Big: " + "a" * 8000]), None),
    ("100-headers", request("GET", "/healthz", [f"X-H{i}: v" for i in range(100)]), 200),
    ("500-headers", request("GET", "/healthz", [f"X-H{i}: v" for i in range(500)]), None),
    ("one-header-300-times", request("GET", "/healthz", ["Accept: a"] * 300), None),
]


@pytest.mark.parametrize("data,status", [c[1:] for c in OVERSIZED_HEADS],
                         ids=[c[0] for c in OVERSIZED_HEADS])
def test_oversized_request_head(node, data, status):
    ex = exchange(node[0].port, data, want=1)
    if status is None:
        assert ex.responses == [] and ex.closed, ex
    else:
        assert ex.statuses == [status], ex
    if status == 414:
        assert error_of(ex.responses[0]) == "uri_too_long"


# (id, request, statuses, closed after).
NOT_QUITE_HTTP = [
    # HTTP/1.0 is answered as 1.0 and closed, unless it asks for keep-alive.
    ("http-1.0", request("GET", "/healthz", version="HTTP/1.0"), [200], True),
    ("http-1.0-keep-alive",
     request("GET", "/healthz", ["Connection: keep-alive"], version="HTTP/1.0"), [200], False),
    # A request line without a version: lws answers it as HTTP/1.0.
    ("no-version", b"GET /healthz\r\n\r\n", [200], True),
    # HEAD used to get 414 "the path is too long" (server.c fixed).
    ("head", request("HEAD", "/healthz"), [405], True),
    ("options-not-cors", request("OPTIONS", "/healthz"), [405], True),
    ("unknown-method", request("BREW", "/healthz"), [403], True),
    ("absolute-uri", request("GET", "http://127.0.0.1/healthz"), [403], True),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [403], True),
    ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100,
     [403], True),
    ("path-traversal", request("GET", "/../../etc/passwd"), [404], False),
]


@pytest.mark.parametrize("data,statuses,closed", [c[1:] for c in NOT_QUITE_HTTP],
                         ids=[c[0] for c in NOT_QUITE_HTTP])
def test_unusual_requests(node, data, statuses, closed):
    ex = exchange(node[0].port, data, want=len(statuses), wait=2)
    assert ex.statuses == statuses and ex.closed == closed, ex


def test_http_1_0_answer_says_1_0(node):
    s = socket.create_connection(("127.0.0.1", node[0].port), timeout=5)
    s.sendall(request("GET", "/healthz", version="HTTP/1.0"))
    head = s.recv(4096)
    s.close()
    assert head.startswith(b"HTTP/1.0 200"), head[:40]


# ------------------------------------------------------------ pipelining

PIPELINES = [
    ("three-gets", request("GET", "/healthz") * 3, [200, 200, 200], False),
    ("last-asks-close", request("GET", "/healthz") * 2 + request("GET", "/healthz",
                                                                 ["Connection: close"]),
     [200, 200, 200], True),
    ("mixed-routes", request("GET", "/healthz") + request("GET", "/no-such")
     + request("GET", "/v1/incidents"), [200, 404, 200], False),
    ("admin-gets", request("GET", "/v1/webhooks", [AUTH]) * 2, [200, 200], False),
    ("bad-post-then-get",
     request("POST", "/v1/webhooks", [AUTH, "Content-Length: 5"], b"{bad}")
     + request("GET", "/healthz"), [400, 200], False),
    # A request with a body pipelined behind another: lws 4.1.6 looped on
    # its body without end and tocsind hung (100 % CPU, no client served);
    # server.c now closes such a pipeline after the answers before it.
    ("get-then-post", request("GET", "/healthz")
     + request("POST", "/v1/webhooks", [AUTH, "Content-Length: 2"], b"{}"), [200], True),
    ("post-then-post", request("POST", "/v1/webhooks", [AUTH, "Content-Length: 4"], b"{bad") * 2,
     [400], True),
    ("post-then-head-of-post", request("POST", "/v1/webhooks", [AUTH, "Content-Length: 4"], b"{bad")
     + request("POST", "/v1/subscribe", ["Content-Length: 2"]), [400], True),
    ("get-then-public-post", request("GET", "/healthz")
     + request("POST", "/v1/subscribe", ["Content-Length: 2"], b"{}"), [200], True),
    # An answer that closes (405 on a body nobody reads) ends the pipeline.
    ("405-ends-pipeline", request("POST", "/healthz", ["Content-Length: 2"], b"{}")
     + request("GET", "/healthz"), [405], True),
    # So does a 401: the admin front door closes after it (a body may follow).
    ("wrong-token-ends-pipeline", request("GET", "/v1/webhooks", ["Authorization: Bearer x"])
     + request("GET", "/healthz"), [401], True),
]


@pytest.mark.parametrize("data,statuses,closed", [c[1:] for c in PIPELINES],
                         ids=[c[0] for c in PIPELINES])
def test_pipelined_requests_are_answered_in_order(node, data, statuses, closed):
    ex = exchange(node[0].port, data, want=len(statuses), wait=3)
    assert ex.statuses == statuses, ex
    assert ex.closed == closed, ex


# --------------------------------------------------- answers that wait


@pytest.mark.timeout(120)
def test_client_leaving_a_request_that_waits_is_seen_at_once(tocsind_factory, own_redis):
    """Regression: lws 4.1.6 reads nothing from a connection while its
    answer is awaited, so a client that left GET /v1/incidents/{id} waiting
    for a hung Redis was not seen until the answer came (redis.timeout, 20 s
    here), and the event loop spun on its unread FIN meanwhile. Now such
    connections close at once and the loop stays idle; a client that stays
    gets its answer, then the one to the request it sent meanwhile."""
    t = tocsind_factory(redis=own_redis, env={"TOCSIN_REDIS_TIMEOUT": "20s"})
    own_redis.pause()
    try:
        left = [socket.create_connection(("127.0.0.1", t.port), timeout=5) for _ in range(5)]
        for s in left:
            s.sendall(request("GET", "/v1/incidents/waits-for-redis"))
        wait_until(lambda: t.metric("tocsin_http_connections") >= 6, 10, interval=0.1,
                   what="5 requests waiting for Redis")
        for s in left:
            s.close()
        wait_until(lambda: t.metric("tocsin_http_connections") <= 1, 3, interval=0.1,
                   what="the connections whose client left closed")
        assert_loop_idle(t)
        stays = socket.create_connection(("127.0.0.1", t.port), timeout=10)
        stays.sendall(request("GET", "/v1/incidents/waits-too"))
        time.sleep(0.3)
        stays.sendall(request("GET", "/healthz"))
    finally:
        own_redis.resume()
    try:
        buf, deadline = b"", time.monotonic() + 10
        while len(_parse(buf)[0]) < 2 and time.monotonic() < deadline:
            chunk = stays.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        stays.close()
    assert [r.status for r in _parse(buf)[0]] == [404, 200], buf[:300]


# ------------------------------------------------------------- framing


def post_webhooks(headers, body=b""):
    return request("POST", "/v1/webhooks", [AUTH, "Content-Type: application/json"] + headers, body)


# (id, request, status, error code). Every framing error closes the
# connection: what follows cannot be trusted to start a request.
FRAMING = [
    ("cl-negative", post_webhooks(["Content-Length: -1"]), 400, "bad_request"),
    ("cl-not-numeric", post_webhooks(["Content-Length: abc"]), 400, "bad_request"),
    ("cl-exponent", post_webhooks(["Content-Length: 1e3"]), 400, "bad_request"),
    ("cl-hex", post_webhooks(["Content-Length: 0x10"]), 400, "bad_request"),
    # "+2" used to be read as 2 (strtoull); RFC 9112: 1*DIGIT.
    ("cl-plus-sign", post_webhooks(["Content-Length: +2"], b"{}"), 400, "bad_request"),
    ("cl-trailing-junk", post_webhooks(["Content-Length: 2;x"], b"{}"), 400, "bad_request"),
    ("cl-duplicate-same", post_webhooks(["Content-Length: 2", "Content-Length: 2"], b"{}"),
     400, "bad_request"),
    ("cl-duplicate-different", post_webhooks(["Content-Length: 2", "Content-Length: 40"], b"{}"),
     400, "bad_request"),
    ("cl-list", post_webhooks(["Content-Length: 2, 40"], b"{}"), 400, "bad_request"),
    ("cl-absurd", post_webhooks(["Content-Length: 99999999999999999999999999"]), 413,
     "body_too_large"),
    ("cl-2^64+1", post_webhooks(["Content-Length: 18446744073709551617"]), 413, "body_too_large"),
    # 33 digits worth 2: admin.c could not copy it and read it as no body.
    ("cl-zero-padded", post_webhooks(["Content-Length: " + "0" * 32 + "2"], b"{}"), 413,
     "body_too_large"),
    ("cl-over-max-body", post_webhooks([f"Content-Length: {2 << 20}"]), 413, "body_too_large"),
    # Chunked bodies are not read: send Content-Length (411), and never both
    # (RFC 9112 §6.1: a server must close after such a request).
    ("te-chunked", post_webhooks(["Transfer-Encoding: chunked"], b"2\r\n{}\r\n0\r\n\r\n"), 411,
     "length_required"),
    ("te-chunked-and-cl",
     post_webhooks(["Transfer-Encoding: chunked", "Content-Length: 2"], b"2\r\n{}\r\n0\r\n\r\n"),
     400, "bad_request"),
    ("te-identity", post_webhooks(["Transfer-Encoding: identity"], b"{}"), 411, "length_required"),
]


@pytest.mark.parametrize("data,status,code", [c[1:] for c in FRAMING],
                         ids=[c[0] for c in FRAMING])
def test_request_framing(node, data, status, code):
    # The request head alone: an error must come before any body is read.
    ex = exchange(node[0].port, data, want=1, wait=3)
    assert ex.statuses == [status], ex
    assert error_of(ex.responses[0]) == code
    assert ex.closed, "a framing error must close the connection"


def test_body_longer_than_content_length(node):
    """The bytes past Content-Length are the next request: here not one, so
    lws answers it 403 and the connection ends."""
    ex = exchange(node[0].port, post_webhooks(["Content-Length: 2"], b"{}GARBAGE-AFTER"), want=2)
    assert ex.statuses == [400, 403] and ex.closed, ex
    assert ex.responses[0].json()["message"].startswith("url:"), ex


def test_413_comes_before_the_body_is_sent(node):
    """http.max_body is checked on the head: the client gets 413 without
    sending one byte of its 2 MiB."""
    t0 = time.monotonic()
    ex = exchange(node[0].port, post_webhooks([f"Content-Length: {2 << 20}"]), want=1, wait=5)
    assert ex.statuses == [413] and ex.closed, ex
    assert time.monotonic() - t0 < 2


# -------------------------------------------------------------- upgrades

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgrade(path="/v1/ws", headers=None, drop=(), port=0):
    return upgrade_request(port, path, dict({"Sec-WebSocket-Key": KEY}, **(headers or {})), drop)


# (id, request, status, closed after). A bad Upgrade is where lws 4.1.6
# has a known use-after-free: under ASan, the fixture reports it. Refused
# handshakes close; a 426 from the /v1/ws route (no Upgrade at all) is an
# ordinary answer on a keep-alive connection.
UPGRADES = [
    ("upgrade-foo-on-healthz", upgrade("/healthz", {"Upgrade": "foo"}), 403, True),
    ("upgrade-foo-on-ws", upgrade(headers={"Upgrade": "foo"}), 403, True),
    ("upgrade-h2c", upgrade("/healthz", {"Upgrade": "h2c",
                                         "Connection": "Upgrade, HTTP2-Settings",
                                         "HTTP2-Settings": "AAMAAABkAAQCAAAAAAIAAAAA"}), 404, True),
    ("upgrade-empty", upgrade(headers={"Upgrade": ""}), 426, False),
    ("websocket-on-healthz", upgrade("/healthz"), 404, True),
    ("websocket-by-post", upgrade(headers={"Content-Length": "0"}).replace(b"GET ", b"POST ", 1),
     404, True),
    # Connection: upgrade with no Upgrade field: a plain GET of /v1/ws.
    ("connection-upgrade-only", request("GET", "/v1/ws", ["Connection: upgrade"]), 426, False),
    ("connection-upgrade-with-key",
     request("GET", "/v1/ws", ["Connection: upgrade", f"Sec-WebSocket-Key: {KEY}",
                               "Sec-WebSocket-Version: 13"]), 426, False),
    # lws closed these without a word, or upgraded them (server.c fixed).
    ("no-key", upgrade(drop=("Sec-WebSocket-Key",)), 400, True),
    ("short-key", upgrade(headers={"Sec-WebSocket-Key": "abc"}), 400, True),
    ("version-8", upgrade(headers={"Sec-WebSocket-Version": "8"}), 426, True),
    ("version-99", upgrade(headers={"Sec-WebSocket-Version": "99"}), 426, True),
    ("version-text", upgrade(headers={"Sec-WebSocket-Version": "thirteen"}), 426, True),
    ("no-version", upgrade(drop=("Sec-WebSocket-Version",)), 426, True),
    ("unknown-subprotocol", upgrade(headers={"Sec-WebSocket-Protocol": "chat"}), 400, True),
    ("no-subprotocol", upgrade(drop=("Sec-WebSocket-Protocol",)), 400, True),
]


@pytest.mark.parametrize("data,status,closed", [c[1:] for c in UPGRADES],
                         ids=[c[0] for c in UPGRADES])
def test_bad_upgrade_is_refused(node, data, status, closed):
    ex = exchange(node[0].port, data, want=1, wait=3)
    assert ex.statuses == [status] and ex.closed == closed, ex
    if b"Sec-WebSocket-Version: 13" not in data and b"Upgrade: websocket" in data:
        # RFC 6455 §4.2.2: tell the client which version we speak.
        assert ex.responses[0].headers.get("sec-websocket-version") == "13", ex.responses[0].headers


@pytest.mark.parametrize("protocols", ["tocsin.v1", "chat, tocsin.v1", "tocsin.v1,chat"])
def test_good_upgrade_still_works(node, protocols):
    """The boundary of the checks above: a correct handshake, also with the
    subprotocol inside a list, gets 101 and the welcome."""
    data = upgrade(headers={"Sec-WebSocket-Protocol": protocols})
    s = socket.create_connection(("127.0.0.1", node[0].port), timeout=5)
    s.sendall(data)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    s.close()
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    assert f"Sec-WebSocket-Accept: {accept_key(KEY)}".encode() in head
    assert b"Sec-WebSocket-Protocol: tocsin.v1" in head


def test_http_1_0_upgrade_is_accepted(node):
    """RFC 6455 §4.1 asks for HTTP/1.1 or higher; lws 4.1.6 upgrades an
    HTTP/1.0 request that has a Host field (without one it closes), and
    exposes no request version for server.c to check. Accepted: the
    handshake is otherwise whole and the session is a normal one."""
    data = upgrade().replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    ex = exchange(node[0].port, data, want=1, wait=2)
    assert ex.statuses == [101] and ex.rest.startswith(b"\x81"), ex


# ------------------------------------------------------------ admin API

# Every route registered with tc_server_admin_route / tc_server_public_route:
# (method, pattern, public, answer to a POST without a body). "{}" becomes
# an id that does not exist. test_route_table_is_complete holds this list
# against the sources, so a new route cannot be left out.
ROUTES = [
    ("POST", "/v1/webhooks", False, (400, "bad_request")),
    ("GET", "/v1/webhooks", False, None),
    ("GET", "/v1/webhooks/{}", False, None),
    ("DELETE", "/v1/webhooks/{}", False, None),
    ("POST", "/v1/webhooks/{}/replay", False, (404, "not_found")),
    ("POST", "/v1/webhooks/{}/rotate-secret", False, (404, "not_found")),
    ("POST", "/v1/webhooks/{}/enable", False, (404, "not_found")),
    ("POST", "/v1/webhooks/{}/test", False, (404, "not_found")),
    ("POST", "/v1/email-subscribers", False, (503, "email_disabled")),
    ("GET", "/v1/email-subscribers", False, None),
    ("GET", "/v1/email-subscribers/{}", False, None),
    ("DELETE", "/v1/email-subscribers/{}", False, None),
    ("POST", "/v1/subscribe", True, (503, "email_disabled")),
    ("GET", "/v1/confirm", True, None),
    ("GET", "/v1/unsubscribe", True, None),
    ("POST", "/v1/unsubscribe", True, (400, None)),  # an HTML page for people
    ("POST", "/v1/incidents", False, (400, "bad_request")),
    ("POST", "/v1/incidents/{}/updates", False, (400, "bad_request")),
]
ADMIN = [r for r in ROUTES if not r[2]]
POSTS = [r for r in ROUTES if r[0] == "POST"]


def route_id(r):
    return f"{r[0]} {r[1]}"


def path_of(pattern):
    return pattern.replace("{}", "no-such-id")


def test_route_table_is_complete():
    found = set()
    call = re.compile(r'tc_server_(admin|public)_route\(\s*[^,]+,\s*TC_HTTP_(\w+),\s*"([^"]+)"')
    row = re.compile(r'\{\s*(true|false),\s*TC_HTTP_(\w+),\s*"(/[^"]*)"')
    for folder, _, files in os.walk(os.path.join(ROOT, "broker")):
        for name in files:
            if not name.endswith(".c"):
                continue
            with open(os.path.join(folder, name)) as f:
                text = f.read()
            found |= {(m, p, kind == "public") for kind, m, p in call.findall(text)}
            found |= {(m, p, public == "true") for public, m, p in row.findall(text)}
    assert found, "no routes found in broker/: has registration changed shape?"
    assert found == {r[:3] for r in ROUTES}, (
        f"routes in broker/ but not in ROUTES: {sorted(found - {r[:3] for r in ROUTES})}; "
        f"in ROUTES but not in broker/: {sorted({r[:3] for r in ROUTES} - found)}")


def tokens():
    """Tokens that must all be refused: missing, wrong of the right length,
    differing only in the last byte, the right one with junk after it, an
    empty one, and another scheme."""
    return {
        "missing": None,
        "wrong-same-length": "z" * len(TOKEN),
        "last-byte-differs": TOKEN[:-1] + "B",
        "first-byte-differs": "j" + TOKEN[1:],
        "prefix": TOKEN[:-1],
        "extra-byte": TOKEN + "A",
        "empty": "",
    }


@pytest.mark.parametrize("route", ADMIN, ids=[route_id(r) for r in ADMIN])
def test_admin_route_refuses_wrong_tokens(node, route):
    method, pattern = route[0], path_of(route[1])
    body = b"{}" if method == "POST" else b""
    for name, tok in tokens().items():
        headers = ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        if tok is not None:
            headers.append(f"Authorization: Bearer {tok}")
        ex = exchange(node[0].port, request(method, pattern, headers, body), want=1)
        assert ex.statuses == [401], (name, ex)
        assert error_of(ex.responses[0]) == "unauthorized", name
    basic = ["Authorization: Basic " + TOKEN, f"Content-Length: {len(body)}"]
    ex = exchange(node[0].port, request(method, pattern, basic, body), want=1)
    assert ex.statuses == [401], ex


@pytest.mark.parametrize("route", POSTS, ids=[route_id(r) for r in POSTS])
def test_post_route_refuses_bad_bodies(node, route):
    port, path, (status, code) = node[0].port, path_of(route[1]), route[3]
    auth = [AUTH, "Content-Type: application/json"]
    # No body at all: the handler's own answer (a route that takes none
    # gets to say the id is unknown).
    ex = exchange(port, request("POST", path, auth), want=1)
    assert ex.statuses == [status], ex
    if code is not None:
        assert error_of(ex.responses[0]) == code
    # Malformed or not an object: 400 bad_json from the front door, one
    # after another on a keep-alive connection (each body was read whole).
    bodies = (b"{bad", b"{", b"[1,2]", b'"text"', b"null", b"12", b"true", b'{"a":1,"a":2}',
              b"{}x", b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000)
    answers = in_turn(port, [request("POST", path, auth + [f"Content-Length: {len(b)}"], b)
                             for b in bodies])
    assert [r.status for r in answers] == [400] * len(bodies), answers
    assert [error_of(r) for r in answers] == ["bad_json"] * len(bodies), answers
    # 2 MiB: 413 on the head, nothing of it read.
    ex = exchange(port, request("POST", path, auth + [f"Content-Length: {2 << 20}"]), want=1)
    assert ex.statuses == [413] and ex.closed, ex
    assert error_of(ex.responses[0]) == "body_too_large"


@pytest.mark.parametrize("route", POSTS, ids=[route_id(r) for r in POSTS])
def test_post_route_2_mib_body_sent_whole(node, route):
    """A client that sends its 2 MiB anyway gets the 413 and a closed
    connection, not a server reading megabytes it will drop."""
    path = path_of(route[1])
    body = b"{" + b" " * ((2 << 20) - 2) + b"}"
    ex = exchange(node[0].port, request("POST", path, [AUTH, f"Content-Length: {len(body)}"],
                                        body), want=1, wait=5)
    assert ex.statuses == [413] and ex.closed, ex


# ------------------------------------------------- many connections, one IP


def _open_count(socks):
    """How many of socks the server has not closed."""
    n = 0
    for s in socks:
        s.setblocking(False)  # with a timeout set, Python would wait on EAGAIN
        try:
            if s.recv(1, socket.MSG_PEEK) != b"":
                n += 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def _connect(port, src, data=b""):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    if data:
        s.sendall(data)
    return s


def _settled(t, timeout=20):
    """Waits until tocsind has closed every client connection but the one
    asking (closes reach it a loop turn after the client's)."""
    def released():
        try:
            return t.metric("tocsin_http_connections") <= 1
        except OSError:
            return False  # refused: the address is still over its cap

    wait_until(released, timeout, interval=0.1, what="every client connection released")


def _silent_cap_holds(t, src):
    """src may open exactly PENDING_PER_IP connections that send nothing:
    all stay open, and one more is closed at accept."""
    socks = []
    try:
        for _ in range(PENDING_PER_IP):
            socks.append(_connect(t.port, src))
        time.sleep(0.5)
        assert _open_count(socks) == PENDING_PER_IP, "a connection under the cap was closed"
        extra = _connect(t.port, src)
        socks.append(extra)
        time.sleep(0.5)
        assert _open_count([extra]) == 0, "the connection over the cap was kept"
    finally:
        for s in socks:
            s.close()
        _settled(t)


def _session_cap_holds(t, src):
    """src may open exactly CONNECTIONS_PER_IP WebSocket sessions; one more
    is closed at accept, without a byte of answer."""
    socks = []
    try:
        for _ in range(CONNECTIONS_PER_IP):
            socks.append(_connect(t.port, src, upgrade(port=t.port)))
            assert socks[-1].recv(12) == b"HTTP/1.1 101", "a session under the cap was refused"
        extra = exchange(t.port, upgrade(port=t.port), wait=2, src=src)
        assert extra.responses == [] and extra.rest == b"" and extra.closed, extra
    finally:
        for s in socks:
            s.close()
        _settled(t)


@pytest.mark.timeout(60)
def test_connections_without_a_request_are_capped_per_ip(node):
    """One address may hold at most http.max_pending_per_ip (32)
    connections that have not yet sent a whole request head. Each such
    connection holds one of lws's 256 header tables (max_http_header_pool):
    without the cap, 256 silent sockets from one host took them all, and
    every other client, HTTP and WebSocket alike, waited up to
    timeout_secs_ah_idle (10 s) for one: a slowloris that needs no
    bandwidth at all. Past the cap the new connection is closed at accept,
    in LWS_CALLBACK_FILTER_NETWORK_CONNECTION (DESIGN §10), and counted."""
    t = node[0]
    _settled(t)
    refused_before = t.metric('tocsin_http_refused_total{reason="per_ip"}')
    socks = []
    try:
        for _ in range(300):
            socks.append(socket.create_connection(("127.0.0.1", t.port), timeout=5))
        time.sleep(0.5)
        assert _open_count(socks) == PENDING_PER_IP, "the cap did not hold"
        t0 = time.monotonic()
        ex = exchange(t.port, request("GET", "/healthz"), want=1, wait=2, src="127.0.0.2")
        assert ex.statuses == [200] and time.monotonic() - t0 < 1.0, ex
        # A request head makes a connection an established one: the pending
        # slots free up for more while the first ones stay. (One fewer than
        # the cap: 32 + 32 would meet http.max_connections_per_ip exactly,
        # with no room for a close tocsind has not seen yet.)
        for s in [s for s in socks if _open_count([s]) == 1]:
            s.settimeout(5)
            s.sendall(request("GET", "/healthz"))
            assert s.recv(12) == b"HTTP/1.1 200"
        more = [_connect(t.port, "127.0.0.1") for _ in range(PENDING_PER_IP - 1)]
        socks += more
        time.sleep(0.5)
        assert _open_count(more) == PENDING_PER_IP - 1, "pending slots were not given back"
    finally:
        for s in socks:
            s.close()
    _settled(t)
    # Asked from 127.0.0.1 now that it may connect again (above, this very
    # request would have been refused with the others).
    refused = t.metric('tocsin_http_refused_total{reason="per_ip"}') - refused_before
    assert refused == 300 - PENDING_PER_IP, refused
    with open(t.log_path, errors="replace") as f:
        lines = [line for line in f if "over http.max_pending_per_ip" in line]
    # 268 refusals within a second or two: a line a second, not one each.
    assert 1 <= len(lines) <= 4, lines
    assert "addr=127.0.0.1" in lines[0] and "refused=1" in lines[0], lines[0]


@pytest.mark.timeout(60)
def test_sessions_are_capped_per_ip(node):
    """One address may hold at most http.max_connections_per_ip (default
    1024, here 64) connections in all, WebSocket and SSE sessions included,
    so no single host can take the process's file descriptors (20,000 on
    the test machines) from everyone else. Past it the connection is closed
    at accept; a client reconnects with backoff and jitter (DESIGN §4).
    Other addresses are not affected."""
    t = node[0]
    _settled(t)
    socks = []
    try:
        for _ in range(CONNECTIONS_PER_IP):
            s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
            s.sendall(upgrade(port=t.port))
            assert s.recv(12) == b"HTTP/1.1 101", "a session under the cap was refused"
            socks.append(s)
        extra = exchange(t.port, upgrade(port=t.port), wait=2)
        assert extra.responses == [] and extra.rest == b"" and extra.closed, extra
        sse = exchange(t.port, request("GET", "/v1/events"), wait=2)
        assert sse.responses == [] and sse.closed, sse
        other = exchange(t.port, upgrade(port=t.port), want=1, wait=2, src="127.0.0.2")
        assert other.statuses == [101], other
    finally:
        for s in socks:
            s.close()
    _settled(t)
    # Closed sessions give their places back.
    _session_cap_holds(t, "127.0.0.1")


# Every way a connection can end, for the churn below: (id, bytes sent,
# wait for an answer before closing).
ENDINGS = [
    ("silent", b"", False),
    ("half-head", b"GET /healthz HTTP/1.1\r\nHost: 12", False),
    ("answered-keep-alive", request("GET", "/healthz"), True),
    ("answered-then-closed-by-server", request("HEAD", "/healthz"), True),
    ("refused-by-lws", request("BREW", "/healthz"), True),
    ("half-body", request("POST", "/v1/webhooks", [AUTH, "Content-Length: 10"], b"{}"), False),
    ("413-on-head", request("POST", "/v1/webhooks", [AUTH, f"Content-Length: {2 << 20}"]), True),
    ("websocket-session", upgrade(), True),
    ("refused-upgrade", upgrade(headers={"Sec-WebSocket-Version": "8"}), True),
    ("sse-stream", request("GET", "/v1/events"), True),
]


@pytest.mark.timeout(120)
def test_connection_churn_leaves_counts_balanced(node):
    """Thousands of connections from one address, ended every way a
    connection ends (by the client before a byte, mid-head, mid-body, after
    an answer, by the server after an answer, refused by lws, as a
    WebSocket or SSE session), release their places: afterwards the address
    still gets exactly its caps, no fewer."""
    t, src = node[0], "127.0.0.3"
    port = t.port
    _settled(t)

    def one(i):
        _, data, answered = ENDINGS[i % len(ENDINGS)]
        s = _connect(port, src, data)
        try:
            if answered:
                s.recv(4096)
        except OSError:
            pass  # reset by the server: as good an end as any
        finally:
            s.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(3000)))
    # Every close is seen at once, SSE streams' too (broker/http/hangup.c),
    # not at their next heartbeat (ws.heartbeat, 25 s) as before.
    _settled(t, timeout=10)
    _silent_cap_holds(t, src)
    _session_cap_holds(t, src)
