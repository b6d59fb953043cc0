# tocsin — SPDX-License-Identifier: MIT
#
# End-to-end harness, process side: free ports, unique ids, a real
# redis-server, a real tocsin-devkafka (librdkafka mock cluster), the tocsind
# daemon under test, and event production/consumption with confluent_kafka.
# Every wait here is bounded; a bound that passes raises HarnessError with
# what was seen, so no test can hang on a missing server.

import http.client
import json
import os
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

BUILD_DIR = os.path.abspath(os.environ.get("TOCSIN_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build")))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")
# One random tag per pytest run, so ids never collide with an earlier run
# against the same Redis or Kafka.
RUN_TAG = secrets.token_hex(3)
_counter = 0


class HarnessError(AssertionError):
    """A bounded wait ran out, or a helper process misbehaved."""


def uid(prefix="x"):
    """Unique id, `[A-Za-z0-9._:-]` and `[a-z0-9._-]` safe (lower case)."""
    global _counter
    _counter += 1
    return f"{prefix}-{RUN_TAG}-{_counter}"


def free_port():
    """Asks the kernel for a free loopback port (bind :0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name):
    path = os.path.join(BUILD_DIR, name)
    if not os.access(path, os.X_OK):
        raise HarnessError(f"{path} is not built (set TOCSIN_BUILD_DIR)")
    return path


def tail_file(path, n):
    """The last n lines of a log file ("" if it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def parse_metrics(text):
    """Prometheus text format into {'name{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value; raises after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def _tcp_sockets(port, remote=False):
    """(state, inode) of every socket on local port, from /proc/net/tcp and
    tcp6 (state in hex: 01 ESTABLISHED, 08 CLOSE_WAIT, 0A LISTEN); with
    remote, (state, inode, remote address as the table spells it)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[1].rsplit(":", 1)[1], 16) == port:
                if remote:
                    yield cols[3], cols[9], cols[2]
                else:
                    yield cols[3], cols[9]


def close_wait_sockets(port):
    """Sockets on local port in CLOSE_WAIT (the client closed its end, the
    server has not)."""
    return sum(1 for state, _ in _tcp_sockets(port) if state == "08")


def _socket_inodes(pid):
    """Inodes of the sockets process pid holds."""
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def proc_net_addr(ip, port):
    """An IPv4 endpoint as /proc/net/tcp spells it: the address's four bytes
    as the host reads them, then the port, in hex ("0100007F:1F90")."""
    return f"{struct.unpack('=I', socket.inet_aton(ip))[0]:08X}:{port:04X}"


def connection_to(pid, port, timeout=10):
    """A connected socket to 127.0.0.1:port that process pid accepted. On a
    port several processes share (http.reuse_port) the kernel picks one per
    connection; this connects again until it picks pid, so /metrics or
    /readyz of one process can be read."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        # The server side's row has our address and port as its remote end
        # (the port alone is not enough: a benchmark's sessions come from
        # other 127.0.0.x addresses with any port); its inode is 0 until
        # accepted.
        mine = proc_net_addr(*s.getsockname())
        for _ in range(100):
            inode = next((i for _, i, remote in _tcp_sockets(port, remote=True)
                          if remote == mine and i != "0"), None)
            if inode is not None:
                break
            time.sleep(0.01)
        if inode is not None and inode in _socket_inodes(pid):
            return s
        s.close()
    raise HarnessError(f"no connection to port {port} reached pid {pid} within {timeout}s")


def http_get_from(pid, port, path, timeout=5):
    """GET path from process pid on a shared port: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.sock = connection_to(pid, port)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def main_thread_cpu_s(pid):
    """CPU seconds (user + system) the process's main thread (tocsind's
    event loop) has used, from /proc."""
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def assert_loop_idle(t, seconds=2.0, bound=0.5):
    """tocsind's event loop is not spinning: its thread used under `bound`
    of the wall time (an idle loop uses about 1 %; one spinning on an unread
    socket took all the CPU it was given)."""
    before = main_thread_cpu_s(t.proc.pid)
    time.sleep(seconds)
    used = main_thread_cpu_s(t.proc.pid) - before
    assert used < bound * seconds, f"event loop busy: {used:.2f} s of CPU in {seconds} s"


def _stop_process(proc, sig=signal.SIGTERM, timeout=5.0):
    """Sends sig, waits, then SIGKILLs: returns the exit code, never hangs."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=5)


# --------------------------------------------------------------------- redis


class RedisServer:
    """A redis-server on a free loopback port, durable like production (AOF,
    appendfsync always), in its own temp dir. stop()/start() keep the AOF."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tocsin-e2e-redis-")
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, "redis.log")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=10):
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
                "--save", "", "--daemonize", "no", "--logfile", self.log_path]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_until(lambda: self.proc.poll() is not None or self.ping(), timeout,
                   what=f"redis-server on port {self.port}")
        if self.proc.poll() is not None:
            raise HarnessError(f"redis-server exited {self.proc.returncode}: {self.log_tail()}")
        return self

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def client(self):
        import redis  # Debian's python3-redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self):
        if self.proc is not None:
            _stop_process(self.proc, signal.SIGTERM, timeout=10)
            self.proc = None

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def log_tail(self, n=20):
        return tail_file(self.log_path, n)

    def cleanup(self):
        if self.proc is not None:
            self.resume()  # a stopped process cannot act on SIGTERM
            _stop_process(self.proc, signal.SIGTERM, timeout=10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------- kafka

TOPIC = "tocsin.incidents"
DLQ_TOPIC = "tocsin.incidents.dlq"


class DevKafka:
    """tocsin-devkafka: a librdkafka mock cluster with the two topics, and
    its stdin control channel for fault injection (inject)."""

    def __init__(self, partitions=4, brokers=1):
        self.partitions = partitions
        self.brokers = brokers
        self.proc = None
        self.bootstrap = None
        self._producer = None
        self._lock = threading.Lock()

    def start(self, timeout=15):
        self.proc = subprocess.Popen([binary("tocsin-devkafka"), "--partitions", str(self.partitions),
                                      "--brokers", str(self.brokers)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        try:
            text = self._read_line(timeout, "a bootstrap line")
        except HarnessError:
            self.stop()
            raise
        if not text.startswith("bootstrap="):
            self.stop()
            raise HarnessError(f"tocsin-devkafka printed {text!r}, not bootstrap=HOST:PORT")
        self.bootstrap = text.split("=", 1)[1]
        return self

    def _read_line(self, timeout, what):
        """One line of stdout, read byte by byte so nothing is buffered
        past it; HarnessError after timeout or at the process's end."""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            deadline = time.monotonic() + timeout
            line = b""
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise HarnessError(f"tocsin-devkafka printed no {what} in {timeout}s")
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    raise HarnessError(f"tocsin-devkafka exited ({self.proc.poll()}) "
                                       f"before printing {what}")
                line += chunk
        return line.decode().strip()

    def inject(self, command, timeout=10):
        """Sends one fault command (see tocsin-devkafka --help), e.g.
        "broker-down 1" or "errors Fetch 5 NOT_LEADER_FOR_PARTITION"; raises
        HarnessError unless it answers ok."""
        with self._lock:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
            answer = self._read_line(timeout, f"answer to {command!r}")
        if answer != "ok":
            raise HarnessError(f"tocsin-devkafka refused {command!r}: {answer}")

    def stop(self):
        if self._producer is not None:
            self._producer.flush(2)
            self._producer = None
        rc = None
        if self.proc is not None:
            rc = _stop_process(self.proc, signal.SIGTERM, timeout=5)
            self.proc.stdout.close()
            self.proc.stdin.close()
            self.proc = None
        return rc

    def producer(self):
        from confluent_kafka import Producer

        if self._producer is None:
            self._producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 2,
                                       "message.max.bytes": 1048576, "acks": "all"})
        return self._producer

    def produce(self, value, key=None, topic=TOPIC, flush=True, headers=None, partition=None):
        """Produces one message: value is a dict (JSON-encoded, key = its
        incident_id unless given) or raw bytes; to the partition the key
        hashes to unless one is given."""
        if isinstance(value, dict):
            if key is None:
                key = value.get("incident_id")
            value = json.dumps(value).encode()
        p = self.producer()
        errors = []

        def on_delivery(err, _msg):
            if err is not None:
                errors.append(err)

        extra = {} if partition is None else {"partition": partition}
        p.produce(topic, value=value, key=key.encode() if isinstance(key, str) else key,
                  headers=headers, on_delivery=on_delivery, **extra)
        p.poll(0)
        if flush:
            self.flush()
        if errors:
            raise HarnessError(f"produce failed: {errors}")

    def produce_all(self, events, pace=0.0, flush=True, partition=None):
        """Produces events in order; pace seconds between them (0: a burst).
        flush=False leaves them queued in the producer (a broker may be down)."""
        for ev in events:
            self.produce(ev, flush=False, partition=partition)
            if pace:
                self.producer().poll(0)
                time.sleep(pace)
        if flush:
            self.flush()

    def flush(self, timeout=10):
        left = self.producer().flush(timeout)
        if left:
            raise HarnessError(f"{left} Kafka messages still unsent after {timeout}s")

    def consume_all(self, topic, want, timeout=15):
        """Reads topic from the beginning of every partition (no consumer
        group, so no rebalance wait) until `want` messages arrived; returns
        the confluent_kafka messages."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": uid("e2e-reader"),
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        got = []
        try:
            md = c.list_topics(topic, timeout=5)
            parts = md.topics[topic].partitions
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
            deadline = time.monotonic() + timeout
            while len(got) < want and time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is None or m.error():
                    continue
                got.append(m)
        finally:
            c.close()
        return got


# ------------------------------------------------------------------- events

_BASE_TS = 1795608000  # 2026-11-25T08:00:00Z


def ts(offset_s=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_BASE_TS + offset_s))


def event(incident_id, version, status="investigating", impact="minor", components=("playback",),
          regions=None, title=None, event_id=None, **extra):
    """One valid incident event (DESIGN §2)."""
    ev = {
        "event_id": event_id or uid("ev"),
        "incident_id": incident_id,
        "version": version,
        "status": status,
        "impact": impact,
        "title": title or f"Incident {incident_id} v{version}",
        "message": extra.pop("message", f"state {status} at version {version}"),
        "components": list(components),
        "occurred_at": ts(version),
    }
    if regions is not None:
        ev["regions"] = list(regions)
    ev.update(extra)
    return ev


def stream(n_incidents, n_versions, **kw):
    """Versions 1..n_versions of n_incidents new incidents, version by
    version (so incidents interleave); kw goes to event()."""
    ids = [uid("inc") for _ in range(n_incidents)]
    return [event(iid, v, **kw) for v in range(1, n_versions + 1) for iid in ids]


def pairs(items):
    """Sorted (incident_id, version) of incident states or events: equal for
    two lists when each holds the same states, each once."""
    return sorted((i["incident_id"], i["version"]) for i in items)


def client_token(secret, components=None, ttl=600, alg="HS256", header=None, key=None, **claims):
    """A client token (HS256 JWT, broker/http/client_token.h) for
    auth.client_secret = secret: exp = now + ttl, components if given, other
    claims as given (None drops one). alg names the header's alg and, for
    HS256/HS512, the HMAC; "none" leaves the signature empty. key signs
    instead of secret (a wrong signature)."""
    import base64
    import hashlib
    import hmac

    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    body = {"iat": int(time.time()), "exp": int(time.time()) + ttl}
    if components is not None:
        body["components"] = list(components)
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    head = header if header is not None else {"alg": alg, "typ": "JWT"}
    signed = b64(json.dumps(head).encode()) + "." + b64(json.dumps(body).encode())
    if alg == "none":
        return signed + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    mac = hmac.new((key or secret).encode(), signed.encode(), digest).digest()
    return signed + "." + b64(mac)


# ------------------------------------------------------------------- tocsind


def http_get(url, headers=None, timeout=5, context=None):
    """GET → (status, headers dict with lower-case names, body bytes); HTTP
    errors are returned, not raised."""
    return http_request("GET", url, headers=headers, timeout=timeout, context=context)


def http_request(method, url, body=None, headers=None, timeout=5, context=None):
    """Any method; body is bytes, str or a dict (sent as JSON). Returns
    (status, headers dict with lower-case names, body bytes). context: the
    ssl.SSLContext of an https URL."""
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        body = e.read() if e.fp is not None else b""
        return e.code, {k.lower(): v for k, v in e.headers.items()}, body


def run_tocsind(args, env=None, timeout=10):
    """Runs tocsind to completion (CLI and config checks); never hangs."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    full.update(env or {})
    try:
        return subprocess.run([binary("tocsind")] + list(args), env=full, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"tocsind {args} still running after {timeout}s "
                           f"(stderr: {(e.stderr or b'')[-2000:]!r})")


# TOCSIN_E2E_REUSE_PORT=1: every tocsind runs with http.reuse_port (unless a
# test sets it), so the suite runs on our listener (broker/http/listen.c)
# instead of lws's.
REUSE_PORT = os.environ.get("TOCSIN_E2E_REUSE_PORT") == "1"


class Tocsind:
    """One tocsind process. env overrides are added to a clean environment
    (no TOCSIN_* from the caller); config, if given, is written to a file and
    passed with -c; preexec_fn, if given, runs in the child before exec
    (e.g. to set its resource limits)."""

    READY_TIMEOUT = float(os.environ.get("TOCSIN_E2E_READY_TIMEOUT", "30"))

    def __init__(self, workdir, redis, kafka, env=None, config=None, preexec_fn=None, port=None):
        self.workdir = workdir
        self.preexec_fn = preexec_fn
        self.fixed_port = port  # None: a free port at each start
        self.redis = redis
        self.kafka = kafka
        self.prefix = uid("e2e") + ":"
        self.group = uid("e2e-group")
        self.extra_env = dict(env or {})
        self.config = config
        self.proc = None
        self.port = None
        self.starts = 0
        self.log_path = os.path.join(workdir, "tocsind.log")
        self.exit_codes = []

    @property
    def tls_context(self):
        """An ssl.SSLContext trusting http.tls_cert when tocsind speaks TLS
        (set by env TOCSIN_HTTP_TLS_CERT), else None."""
        cert = self.extra_env.get("TOCSIN_HTTP_TLS_CERT")
        if not cert:
            return None
        import ssl
        return ssl.create_default_context(cafile=cert)

    @property
    def url(self):
        return f"{'https' if self.tls_context else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self):
        return f"{'wss' if self.tls_context else 'ws'}://127.0.0.1:{self.port}"

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        env.update({
            "TOCSIN_HTTP_LISTEN": f"127.0.0.1:{self.port}",
            "TOCSIN_KAFKA_BROKERS": self.kafka.bootstrap,
            "TOCSIN_REDIS_URL": self.redis.url,
            "TOCSIN_REDIS_PREFIX": self.prefix,
            "TOCSIN_KAFKA_GROUP": self.group,
            "TOCSIN_LOG_LEVEL": "info",
            "TOCSIN_SHUTDOWN_TIMEOUT": "3s",
        })
        if REUSE_PORT:
            env["TOCSIN_HTTP_REUSE_PORT"] = "true"
        env.update(self.extra_env)
        return env

    def start(self, wait_ready=True):
        self.port = self.fixed_port or free_port()
        self.starts += 1
        args = [binary("tocsind")]
        if self.config is not None:
            path = os.path.join(self.workdir, "tocsin.json")
            with open(path, "w") as f:
                json.dump(self.config, f)
            args += ["-c", path]
        log = open(self.log_path, "ab")
        log.write(f"---- start #{self.starts} port={self.port} prefix={self.prefix}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(args, env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, preexec_fn=self.preexec_fn)
        log.close()
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=None):
        timeout = timeout or self.READY_TIMEOUT

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            try:
                return http_get(self.url + "/readyz", timeout=1, context=self.tls_context)[0] == 200
            except OSError:
                return False

        try:
            state = wait_until(ready, timeout, interval=0.1, what="tocsind /readyz")
        except HarnessError as e:
            raise HarnessError(f"{e}\n--- tocsind log tail ---\n{self.log_tail()}") from None
        if state == "exited":
            raise HarnessError(f"tocsind exited {self.proc.returncode} before ready\n"
                               f"--- tocsind log tail ---\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Sends sig and waits for the exit; returns the exit code (SIGKILL
        after timeout, and then the code is negative)."""
        if self.proc is None:
            return None
        rc = _stop_process(self.proc, sig, timeout)
        self.exit_codes.append(rc)
        self.proc = None
        return rc

    def wait_exit(self, timeout=15):
        rc = self.proc.wait(timeout=timeout)
        self.exit_codes.append(rc)
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL, timeout=5)

    def restart(self, wait_ready=True):
        """Starts again with the same prefix, group and settings (on a new
        port, so a lingering socket cannot make the bind fail)."""
        if self.alive():
            self.stop()
        return self.start(wait_ready=wait_ready)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def sanitizer_report(self):
        text = self.log_text()
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i >= 0:
                return text[max(0, i - 200):i + 4000]
        return None

    def get(self, path, headers=None, timeout=5):
        return http_get(self.url + path, headers=headers, timeout=timeout, context=self.tls_context)

    def request(self, method, path, body=None, headers=None, timeout=5):
        return http_request(method, self.url + path, body=body, headers=headers, timeout=timeout,
                            context=self.tls_context)

    def get_json(self, path, headers=None):
        status, hdrs, body = self.get(path, headers)
        assert status == 200, f"GET {path}: {status} {body[:300]!r}"
        return json.loads(body), hdrs

    def metrics(self):
        """Parses /metrics into {'name{labels}': value}."""
        status, _, body = self.get("/metrics")
        assert status == 200, f"/metrics answered {status}"
        return parse_metrics(body.decode())

    def metric(self, name, default=0.0):
        return self.metrics().get(name, default)

    def wait_metric(self, name, at_least, timeout=15):
        return wait_until(lambda: self.metric(name) >= at_least, timeout, interval=0.1,
                          what=f"{name} >= {at_least}")

    def cleanup(self):
        """SIGTERM first, so a sanitizer build runs its leak check; SIGKILL
        if it does not exit in time."""
        if self.proc is not None:
            self.stop(signal.SIGTERM, timeout=10)
