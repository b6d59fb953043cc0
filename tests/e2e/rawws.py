# tocsin — SPDX-License-Identifier: MIT
#
# Hand-made WebSocket frames for the hostile-input suites (test_hostile_*.py):
# a frame builder that can break every rule of RFC 6455 on purpose (unmasked,
# reserved bits, reserved opcodes, lying lengths), a blocking socket client
# that speaks frames and reports how the server ended the connection, a
# background "control" session that must keep receiving updates meanwhile,
# and one tocsind shared by a test module. Every read has a deadline.

import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import threading
import time

from helpers import DevKafka, HarnessError, Tocsind

SUBPROTOCOL = "tocsin.v1"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA

# What a client sees when the TCP connection ends without a close frame
# (RFC 6455 §7.1.5: "the WebSocket Connection Close Code is considered to be
# 1006"); browsers and the websockets library report the same.
ABNORMAL = 1006


def frame(opcode, payload=b"", fin=True, rsv=0, masked=True, length=None, form=None, key=None):
    """One client frame. rsv is the 3 reserved bits (0-7). length, when
    given, is the announced payload length (a lying header); form forces the
    length encoding: 7, 16 or 64 bits (default: the shortest)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    if form is None:
        form = 7 if n < 126 else 16 if n < 65536 else 64
    head = bytes([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0x0F)])
    mbit = 0x80 if masked else 0
    if form == 7:
        head += bytes([mbit | n])
    elif form == 16:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    key = key if key is not None else os.urandom(4)
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


def close_payload(code=None, reason=b""):
    """The body of a close frame: nothing, or a 2-byte code and a reason."""
    if code is None:
        return b""
    return struct.pack(">H", code) + (reason.encode() if isinstance(reason, str) else reason)


def upgrade_request(port, path="/v1/ws", headers=None, drop=()):
    """A WebSocket opening handshake; headers add or replace fields (a value
    of None removes one), drop names fields to leave out."""
    fields = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": SUBPROTOCOL,
    }
    for k, v in (headers or {}).items():
        fields[k] = v
    lines = [f"GET {path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in fields.items() if v is not None and k not in drop]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "payload")

    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def __repr__(self):
        return f"Frame(op={self.opcode:#x}, fin={self.fin}, {self.payload[:60]!r})"


class Closed:
    """How the server ended a session: code (ABNORMAL when no close frame
    came before the TCP end), reason, and whether TCP ended within the wait."""

    def __init__(self, code, reason, tcp_closed, frames):
        self.code, self.reason, self.tcp_closed, self.frames = code, reason, tcp_closed, frames

    def __repr__(self):
        return f"Closed(code={self.code}, reason={self.reason!r}, tcp_closed={self.tcp_closed})"


class RawWs:
    """A WebSocket session on a plain blocking socket: the test writes
    whatever bytes it likes and reads server frames one by one."""

    def __init__(self, port, qs="", timeout=10, rcvbuf=None):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.texts = []  # every text message received, parsed
        req = upgrade_request(port, "/v1/ws" + (f"?{qs}" if qs else ""))
        key = req.split(b"Sec-WebSocket-Key: ", 1)[1].split(b"\r\n", 1)[0].decode()
        self.sock.sendall(req)
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise HarnessError(f"raw ws: closed during the handshake: {self.buf[:300]!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise HarnessError(f"raw ws: handshake refused: {head[:300]!r}")
        if accept_key(key).encode() not in head:
            raise HarnessError(f"raw ws: wrong Sec-WebSocket-Accept: {head[:300]!r}")

    def _fill(self, deadline):
        """Reads more bytes; False on EOF, HarnessError past deadline."""
        late = f"raw ws: nothing within the deadline; buffered {self.buf[:120]!r}"
        left = deadline - time.monotonic()
        if left <= 0:
            raise HarnessError(late)
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise HarnessError(late) from None
        except (ConnectionResetError, BrokenPipeError):
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def send(self, data):
        """Writes raw bytes; False if the server already closed."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_frame(self, opcode, payload=b"", **kw):
        return self.send(frame(opcode, payload, **kw))

    def send_json(self, obj):
        return self.send_frame(OP_TEXT, json.dumps(obj))

    def recv_frame(self, timeout=10):
        """The next server frame, or None when TCP ended first."""
        deadline = time.monotonic() + timeout
        while True:
            f, used = _parse_frame(self.buf)
            if f is not None:
                self.buf = self.buf[used:]
                if f.opcode == OP_TEXT and f.fin:
                    self.texts.append(json.loads(f.payload))
                return f
            if not self._fill(deadline):
                return None

    def recv_json(self, timeout=10, skip_heartbeats=True):
        """The next text message (heartbeats skipped); HarnessError if a
        control frame or the end comes instead."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if f is None or f.opcode != OP_TEXT:
                raise HarnessError(f"raw ws: wanted a text message, got {f!r}")
            msg = json.loads(f.payload)
            if skip_heartbeats and msg.get("type") == "heartbeat":
                continue
            return msg

    def expect(self, mtype, timeout=10):
        msg = self.recv_json(timeout)
        assert msg.get("type") == mtype, f"expected {mtype}, got {msg}"
        return msg

    def wait_close(self, timeout=10, linger=3.0):
        """Reads until the server's close frame and then the TCP end
        (answering the close as RFC 6455 §5.5.1 asks), at most linger
        seconds after the close frame; returns Closed."""
        deadline = time.monotonic() + timeout
        code, reason, frames = None, b"", []
        while time.monotonic() < deadline:
            try:
                f = self.recv_frame(deadline - time.monotonic())
            except HarnessError:
                break
            if f is None:
                return Closed(code if code is not None else ABNORMAL, reason, True, frames)
            frames.append(f)
            if f.opcode == OP_CLOSE and code is None:
                code = struct.unpack(">H", f.payload[:2])[0] if len(f.payload) >= 2 else 1005
                reason = f.payload[2:]
                self.send_frame(OP_CLOSE, f.payload[:2])
                deadline = min(deadline, time.monotonic() + linger)
        return Closed(code, reason, False, frames)

    def replies(self, timeout=10):
        """The next text message that is not a heartbeat or an update (the
        control traffic a session may also get)."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv_json(max(0.01, deadline - time.monotonic()))
            if msg.get("type") != "update":
                return msg

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _parse_frame(data):
    """(Frame, bytes used) from the front of data, or (None, 0) when more
    bytes are needed. Server frames are unmasked (RFC 6455 §5.1)."""
    if len(data) < 2:
        return None, 0
    b0, b1 = data[0], data[1]
    n, i = b1 & 0x7F, 2
    if n == 126:
        if len(data) < 4:
            return None, 0
        n, i = struct.unpack(">H", data[2:4])[0], 4
    elif n == 127:
        if len(data) < 10:
            return None, 0
        n, i = struct.unpack(">Q", data[2:10])[0], 10
    if b1 & 0x80:
        raise HarnessError("raw ws: the server sent a masked frame")
    if len(data) < i + n:
        return None, 0
    return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, data[i:i + n]), i + n


class ControlSession:
    """A well-behaved session read by a background thread: it must go on
    receiving every update while hostile clients do their worst. wait_for
    returns the update of one incident; updates() checks seq has no gap."""

    def __init__(self, port, timeout=10):
        self.ws = RawWs(port, timeout=timeout)
        self.welcome = self.ws.expect("welcome")
        self.snapshot = self.ws.expect("snapshot")
        self.cond = threading.Condition()
        self.msgs = []
        self.error = None
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="control-session", daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stopping:
                try:
                    f = self.ws.recv_frame(1.0)
                except HarnessError:
                    continue  # idle: heartbeats come every ws.heartbeat
                if f is None:
                    raise HarnessError("control session: the server closed it")
                if f.opcode == OP_CLOSE:
                    raise HarnessError(f"control session: closed by the server: {f!r}")
                if f.opcode == OP_TEXT:
                    with self.cond:
                        self.msgs.append(json.loads(f.payload))
                        self.cond.notify_all()
        except Exception as e:  # noqa: BLE001 - reported by wait_for
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def wait_for(self, incident_id, timeout=15):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                if self.error is not None:
                    raise HarnessError(f"control session broke: {self.error}")
                for m in self.msgs:
                    if m.get("type") == "update" and m["incident"]["incident_id"] == incident_id:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError(f"control session: no update of {incident_id} in "
                                       f"{timeout}s; last: {self.msgs[-3:]}")
                self.cond.wait(left)

    def updates(self):
        """Every update so far; asserts seq runs on from the snapshot with no
        gap or repeat."""
        with self.cond:
            ups = [m for m in self.msgs if m.get("type") == "update"]
        seqs = [u["seq"] for u in ups]
        start = self.snapshot["seq"]
        assert seqs == list(range(start + 1, start + 1 + len(ups))), f"seq run broken: {seqs}"
        return ups

    def close(self):
        self.stopping = True
        self.thread.join(3)
        self.ws.close()


def rss_kib(pid):
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise HarnessError(f"no VmRSS for pid {pid}")


def shared_tocsind(tmp_path_factory, redis_server, env=None, name="hostile"):
    """A generator for a module-scoped fixture: one Kafka and one tocsind for
    every test of a module (starting them per case would cost more than the
    cases). At teardown it stops tocsind with SIGTERM (so a sanitizer build
    runs its leak check) and raises on a sanitizer report, like conftest's
    per-test factory."""
    kafka = DevKafka(partitions=4).start()
    workdir = tmp_path_factory.mktemp(name)
    t = Tocsind(str(workdir), redis_server, kafka, env=env)
    try:
        t.start()
        yield t, kafka
    finally:
        t.cleanup()
        kafka.stop()
        report = t.sanitizer_report()
        if report:
            arts = os.path.join(os.path.dirname(__file__), "artifacts")
            os.makedirs(arts, exist_ok=True)
            shutil.copy(t.log_path, os.path.join(arts, f"{name}-tocsind.log"))
            raise HarnessError(f"tocsind sanitizer report:\n{report}")
