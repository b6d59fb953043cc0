# tocsin — SPDX-License-Identifier: MIT
#
# End-to-end harness, client side: a WebSocket client (websockets 10.4,
# asyncio) that collects tocsin.v1 messages with timeouts, an SSE reader, and
# a raw WebSocket socket that never reads (the slow reader). Every read has a
# deadline; running past it fails the test with what had arrived so far.

import asyncio
import base64
import json
import os
import socket
import struct
import time
import urllib.parse
import http.client

import websockets
import websockets.exceptions

from helpers import HarnessError

SUBPROTOCOL = "tocsin.v1"


def run(coro, timeout=90):
    """Runs an async test body with an overall bound."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def in_thread(fn, *args, **kwargs):
    """Runs a blocking call (Kafka produce, HTTP) without stalling the loop,
    so WebSocket clients keep reading meanwhile."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def query(**params):
    """Query string from keyword args; lists become comma-separated, None is
    left out."""
    out = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = ",".join(v) if isinstance(v, (list, tuple)) else str(v)
    return urllib.parse.urlencode(out, safe=",:")


class Ws:
    """One tocsin.v1 WebSocket session; .messages keeps everything received."""

    def __init__(self, conn):
        self.conn = conn
        self.messages = []
        self.heartbeats = []
        self.welcome = None

    @classmethod
    async def connect(cls, base_url, qs="", origin=None, timeout=10, expect_welcome=True,
                      subprotocols=(SUBPROTOCOL,), ssl=None):
        url = f"{base_url}/v1/ws" + (f"?{qs}" if qs else "")
        conn = await websockets.connect(url, subprotocols=list(subprotocols) or None, origin=origin,
                                        ssl=ssl,
                                        compression=None, open_timeout=timeout, ping_interval=None,
                                        close_timeout=3, max_size=16 << 20, max_queue=None)
        ws = cls(conn)
        if expect_welcome:
            ws.welcome = await ws.expect("welcome")
            assert isinstance(ws.welcome.get("epoch"), str) and ws.welcome["epoch"], ws.welcome
            assert isinstance(ws.welcome.get("seq"), int), ws.welcome
        return ws

    @property
    def epoch(self):
        return self.welcome["epoch"]

    async def recv(self, timeout=10):
        """Next message as a dict; HarnessError on timeout or close.
        Heartbeats (announced by welcome's heartbeat_s, not part of the
        stream) are kept apart and do not extend the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise asyncio.TimeoutError
                raw = await asyncio.wait_for(self.conn.recv(), left)
            except asyncio.TimeoutError:
                raise HarnessError(f"no message within {timeout}s; last ones: {self.tail()}; "
                                   f"heartbeats: {len(self.heartbeats)}") from None
            except websockets.exceptions.ConnectionClosed as e:
                raise HarnessError(f"connection closed ({self.conn.close_code} {self.conn.close_reason!r}) "
                                   f"while waiting; last ones: {self.tail()}") from e
            assert isinstance(raw, str), f"binary frame from server: {raw[:80]!r}"
            msg = json.loads(raw)
            if msg.get("type") == "heartbeat":
                self.heartbeats.append(msg)
                continue
            self.messages.append(msg)
            return msg

    def tail(self, n=5):
        return [_short(m) for m in self.messages[-n:]]

    async def expect(self, mtype, timeout=10):
        """The next message must be of type mtype."""
        msg = await self.recv(timeout)
        assert msg.get("type") == mtype, f"expected {mtype}, got {_short(msg)}"
        return msg

    async def updates(self, n, timeout=20, sub=None):
        """Collects the next n messages, each of which must be an update."""
        deadline = time.monotonic() + timeout
        got = []
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"got {len(got)}/{n} updates in {timeout}s; last: {self.tail()}")
            msg = await self.recv(left)
            assert msg.get("type") == "update", f"expected update #{len(got) + 1}, got {_short(msg)}"
            if sub is not None:
                assert msg.get("sub") == sub, _short(msg)
            got.append(msg)
        return got

    async def until(self, pred, timeout=20, what="message"):
        """Reads until pred(msg) holds; returns every message read, the
        matching one last."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"no {what} in {timeout}s; last: {self.tail()}")
            msg = await self.recv(left)
            seen.append(msg)
            if pred(msg):
                return seen

    async def quiet(self, duration):
        """Asserts that nothing but heartbeats (kept) arrives for duration
        seconds."""
        deadline = time.monotonic() + duration
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                raw = await asyncio.wait_for(self.conn.recv(), left)
            except asyncio.TimeoutError:
                return
            except websockets.exceptions.ConnectionClosed:
                raise HarnessError(f"closed ({self.conn.close_code}) while expected quiet") from None
            if isinstance(raw, str) and json.loads(raw).get("type") == "heartbeat":
                self.heartbeats.append(json.loads(raw))
                continue
            raise AssertionError(f"expected no message, got {raw[:300]}")

    async def send(self, obj):
        await self.conn.send(obj if isinstance(obj, (str, bytes)) else json.dumps(obj))

    async def closed(self, timeout=10):
        """Reads (keeping messages) until the server closes; returns the close code."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"still open after {timeout}s; last: {self.tail()}")
            try:
                raw = await asyncio.wait_for(self.conn.recv(), left)
            except asyncio.TimeoutError:
                continue
            except websockets.exceptions.ConnectionClosed:
                return self.conn.close_code
            if isinstance(raw, str):
                self.messages.append(json.loads(raw))

    async def close(self):
        try:
            await asyncio.wait_for(self.conn.close(), 5)
        except (asyncio.TimeoutError, OSError):
            pass


async def ws_streaming(base_url, kafka, events, timeout=30):
    """A session that got its snapshot, then the updates of `events`
    (produced now to kafka, a helpers.DevKafka): (ws, snapshot, updates)."""
    ws = await Ws.connect(base_url)
    snap = await ws.expect("snapshot")
    await in_thread(kafka.produce_all, events)
    return ws, snap, await ws.updates(len(events), timeout=timeout)


def _short(msg):
    text = json.dumps(msg)
    return text if len(text) < 300 else text[:300] + "..."


def check_seq_run(updates, start_after):
    """Asserts the updates' seq are start_after+1, +2, ... with no gap or
    repeat, and that per incident the version only increases."""
    seqs = [u["seq"] for u in updates]
    want = list(range(start_after + 1, start_after + 1 + len(updates)))
    assert seqs == want, f"seq run broken: got {seqs}, want {want}"
    last = {}
    for u in updates:
        inc = u["incident"]
        iid, ver = inc["incident_id"], inc["version"]
        assert ver > last.get(iid, 0), f"{iid}: version {ver} after {last.get(iid)}"
        last[iid] = ver


# ------------------------------------------------------------------------ SSE


class Sse:
    """A Server-Sent Events stream over http.client, read line by line."""

    def __init__(self, base_url, qs="", last_event_id=None, origin=None, timeout=10, context=None):
        u = urllib.parse.urlparse(base_url)
        if u.scheme == "https":
            self.conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                                    context=context)
        else:
            self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        if origin is not None:
            headers["Origin"] = origin
        self.conn.request("GET", "/v1/events" + (f"?{qs}" if qs else ""), headers=headers)
        # Keep the socket: http.client hands it to the response (and drops
        # its own reference) when the stream has no length.
        self.sock = self.conn.sock
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.events = []

    def next(self, timeout=10):
        """Next event as {'id','event','data'(parsed JSON)}; comments
        (heartbeats) are skipped."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        ev = {"id": None, "event": "message", "data": []}
        while True:
            if time.monotonic() > deadline:
                raise HarnessError(f"no SSE event within {timeout}s")
            try:
                line = self.resp.readline()
            except (socket.timeout, TimeoutError):
                raise HarnessError(f"no SSE event within {timeout}s") from None
            except (OSError, http.client.HTTPException) as e:
                raise HarnessError(f"SSE stream broke: {e!r}") from None
            if not line:
                raise HarnessError("SSE stream ended")
            line = line.decode().rstrip("\r\n")
            if line == "":
                if ev["data"]:
                    ev["data"] = json.loads("\n".join(ev["data"]))
                    self.events.append(ev)
                    return ev
                ev = {"id": None, "event": "message", "data": []}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                ev["data"].append(value)
            elif field in ("id", "event"):
                ev[field] = value

    def close(self):
        self.resp.close()
        self.conn.close()


# --------------------------------------------------------------- raw socket


def ws_handshake_status(port, origin=None, qs="", timeout=5):
    """Sends a WebSocket upgrade request; returns (status, head bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_upgrade_request(port, "/v1/ws" + (f"?{qs}" if qs else ""), origin))
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    parts = head.split(b" ", 2)
    assert len(parts) >= 2 and parts[0].startswith(b"HTTP/1."), f"not an HTTP answer: {head[:200]!r}"
    return int(parts[1]), head


def _upgrade_request(port, path, origin=None):
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"Origin: {origin}\r\n" if origin else ""
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n{extra}"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n").encode()


class RawWs:
    """A WebSocket client on a plain socket with a tiny receive buffer that
    never reads after the handshake: the slow reader."""

    def __init__(self, port, qs="", rcvbuf=4096, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(_upgrade_request(port, "/v1/ws" + (f"?{qs}" if qs else "")))
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(1024)
            if not chunk:
                raise HarnessError(f"raw ws: closed during handshake: {self.buf!r}")
            self.buf += chunk
        head = self.buf.split(b"\r\n\r\n", 1)[0]
        assert head.startswith(b"HTTP/1.1 101"), head
        self.buf = self.buf.split(b"\r\n\r\n", 1)[1]

    def drain(self, timeout=15):
        """Reads everything until the server closes the TCP connection;
        returns (closed, close_code or None, frames seen)."""
        self.sock.settimeout(1)
        deadline = time.monotonic() + timeout
        data = self.buf
        closed = False
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
        code, frames = _parse_frames(data)
        return closed, code, frames

    def close(self):
        self.sock.close()


def _parse_frames(data):
    """Walks server frames (unmasked); returns (close code or None, count)."""
    i, frames, code = 0, 0, None
    while i + 2 <= len(data):
        op, ln = data[i] & 0x0F, data[i + 1] & 0x7F
        j = i + 2
        if ln == 126:
            if j + 2 > len(data):
                break
            ln = struct.unpack(">H", data[j:j + 2])[0]
            j += 2
        elif ln == 127:
            if j + 8 > len(data):
                break
            ln = struct.unpack(">Q", data[j:j + 8])[0]
            j += 8
        if j + ln > len(data):
            break
        if op == 0x8 and ln >= 2:
            code = struct.unpack(">H", data[j:j + 2])[0]
        frames += 1
        i = j + ln
    return code, frames
