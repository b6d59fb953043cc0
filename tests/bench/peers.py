#!/usr/bin/python3
# tocsin — SPDX-License-Identifier: MIT
#
# Fan-out side by side (issue 6): the same N WebSocket sessions and K updates
# against tocsind (one process, and two sharing the port with
# http.reuse_port), nginx + nchan (1 and 2 workers) and a Node.js `ws`
# broadcaster, one after another in one invocation, timed by the same
# generator (tocsin-wsload; --peer raw for the others), and one Markdown table
# with each figure's ratio to tocsind's. It does not tune or change tocsind:
# it starts what fanout.py starts (redis-server, tocsin-devkafka, tocsind) and
# the peers from temp dirs, and stops every process it started on the way
# out. Every wait is bounded. Run with Debian's /usr/bin/python3.

import argparse
import grp
import importlib.util
import json
import math
import os
import pwd
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402  (also puts tests/e2e on sys.path)
import fanout  # noqa: E402
import helpers  # noqa: E402
from benchlib import (MAX_PER_PROC, Generators, cpu_precise_s, proc_status, raise_nofile,  # noqa: E402
                      stop)
from helpers import HarnessError, event, free_port, uid, wait_until  # noqa: E402

PEERS = ("tocsind", "tocsind-x2", "nchan-1w", "nchan-2w", "node")
NODE_DIR = os.path.join(HERE, "peers", "node")
NCHAN_MODULE = "/usr/lib/nginx/modules/ngx_nchan_module.so"
# Once nchan is loaded, Debian's nginx creates (or, unprivileged, checks) its
# compiled-in client body path at start-up, even though every path is set in
# our configuration and no request body goes there.
NGINX_BODY_DIR = "/var/lib/nginx/body"
# The incident's component for the timed updates (the warm-up event is on
# another, so the sessions' snapshot stays empty).
COMPONENT = "bench"
# A published body is small (about 600 bytes); the POST answer is bounded too.
MAX_ANSWER = 64 * 1024
# Where nchan and node take a published update (HTTP POST).
PUB_PATH = "/pub"
# POSTs to a raw peer written before their answers are read: a burst of up
# to this many updates leaves at once, like the Kafka producer's.
PIPELINE = 100


class Skip(Exception):
    """A peer that cannot run here; the message says why and how to fix it."""


def log(msg):
    print(f"peers: {msg}", file=sys.stderr, flush=True)


def proc_pss_kb(pid):
    """Proportional set size in kB (shared pages split among the processes
    that map them, so nginx's master and workers are not counted twice);
    VmRSS where smaps_rollup is missing."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return proc_status(pid, "VmRSS") or 0


def gens_cpu_s(gens):
    return sum(cpu_precise_s(p) for p in gens.pids())


def children(pid):
    """PIDs whose parent is pid (nginx's workers)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d))
        except (OSError, ValueError, IndexError):
            continue
    return out


def socket_fds(pid):
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                continue
    except OSError:
        pass
    return n


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def update_body(epoch, seq, version, incident, ts_us):
    """The JSON text a raw peer sends to its sessions: tocsind's update
    message (DESIGN §4) for the same event fanout.py publishes, with the
    incident state tocsind would hold (its fields, then kind, updated_at and
    started_at). Same shape and size as tocsind's frame, so the generator's
    scan and the bytes on the wire cost the same everywhere."""
    ev = event(incident, version, impact="major", components=(COMPONENT,),
               title=f"bench update {version}")
    ev["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ev["bench_ts_us"] = ts_us
    ev["kind"] = "incident"
    ev["updated_at"] = ev["occurred_at"]
    ev["started_at"] = ev["occurred_at"]
    msg = {"type": "update", "sub": "default", "epoch": epoch, "seq": seq, "incident": ev}
    return json.dumps(msg, separators=(",", ":")).encode()


def read_response(rf):
    """One HTTP/1.1 response from a buffered socket file: (status, body).
    Content-Length and chunked bodies; anything else is an error."""
    line = rf.readline(MAX_ANSWER)
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise RuntimeError(f"bad HTTP status line {line[:100]!r}")
    status, length, chunked = int(parts[1]), 0, False
    for _ in range(100):
        h = rf.readline(MAX_ANSWER)
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, val = h.partition(b":")
        k, val = k.strip().lower(), val.strip()
        if k == b"content-length":
            length = int(val)
        elif k == b"transfer-encoding" and val.lower() == b"chunked":
            chunked = True
    else:
        raise RuntimeError("HTTP answer with over 100 header lines")
    if not chunked:
        if length > MAX_ANSWER:
            raise RuntimeError(f"HTTP answer of {length} bytes")
        return status, rf.read(length)
    body = b""
    while True:
        size = int(rf.readline(64).split(b";")[0], 16)
        if size > MAX_ANSWER or len(body) + size > MAX_ANSWER:
            raise RuntimeError("chunked HTTP answer too large")
        body += rf.read(size)
        rf.readline(64)  # the CRLF after the chunk (or the empty trailer)
        if size == 0:
            return status, body


# ----------------------------------------------------------------- generators


# ---------------------------------------------------------------------- peers


class Peer:
    """One system under test. Subclasses start it, name its processes and
    publish to it; run() is the same scenario for all."""

    name = "?"
    peer_mode = "raw"

    def __init__(self, a, wsload, tmp):
        self.a = a
        self.wsload = wsload
        self.tmp = tmp
        self.notes = {}

    def check(self):
        """Raises Skip when the peer is not installed here."""

    def start(self):
        raise NotImplementedError

    def pids(self):
        """The server's processes (CPU and memory are summed over them)."""
        raise NotImplementedError

    def ws_url(self):
        raise NotImplementedError

    def warm_up(self):
        """Runs once the server is up, before the baseline memory reading."""

    def after_delivery(self):
        """Runs right after the last delivery (or the delivery bound)."""

    def publish(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def diag(self):
        """A few lines of the server's own log, for a failure report."""
        return ""

    def mem_kb(self):
        return sum(proc_pss_kb(p) for p in self.pids())

    def cpu_s(self):
        return sum(cpu_precise_s(p) for p in self.pids())

    def run(self):
        a = self.a
        gens = None
        try:
            self.start()
            self.warm_up()
            time.sleep(a.settle)
            mem0 = self.mem_kb()
            t0 = time.monotonic()
            connect_bound = a.sessions / a.connect_rate + 30
            gens = Generators(self.wsload, self.ws_url(), self.tmp, a.sessions, a.connect_rate,
                              connect_bound + a.deliver_timeout + 30, expect=a.updates,
                              procs=a.procs, peer_mode=self.peer_mode)
            ready = gens.wait_ready()["ready"]
            connect_s = time.monotonic() - t0
            time.sleep(a.settle)
            mem1 = self.mem_kb()
            log(f"{self.name}: {ready} sessions ready in {connect_s:.1f}s; "
                f"server PSS {mem0} kB -> {mem1} kB")
            gen0, cpu0 = gens_cpu_s(gens), self.cpu_s()
            self.publish()
            try:
                gens.wait_done(a.deliver_timeout)
            except (HarnessError, RuntimeError) as e:
                log(f"{self.name}: not every session got every update: {e}")
            # Read while the sessions are still open: their closes are not
            # part of the delivery's cost.
            cpu1, gen1 = self.cpu_s(), gens_cpu_s(gens)
            self.after_delivery()
            self.notes["generator_cpu_s"] = gen1 - gen0
            self.notes["generator_procs"] = len(gens.gens)
            results = gens.collect()
            return summarize(self.name, a, results, gens.samples(), ready, connect_s,
                             mem0, mem1, cpu1 - cpu0, self.notes)
        except Exception:
            tail = self.diag()
            if tail:
                log(f"{self.name} log tail:\n{tail}")
            raise
        finally:
            if gens is not None:
                gens.stop()
            self.stop()


class TocsindPeer(Peer):
    """tocsind as fanout.py runs it: its own redis-server (AOF, fsync always),
    tocsin-devkafka and tocsind; updates are produced to Kafka. With nodes
    > 1, that many tocsind share the port (http.reuse_port), each a node:
    one loop per core; CPU and memory are their sums."""

    peer_mode = "tocsin"

    def __init__(self, a, wsload, tmp, nodes=1):
        super().__init__(a, wsload, tmp)
        self.nodes = nodes
        self.name = "tocsind" if nodes == 1 else f"tocsind ×{nodes} (reuse_port)"
        ns = argparse.Namespace(build_dir=a.build_dir, sessions=a.sessions, updates=a.updates,
                                component=COMPONENT, nodes=nodes)
        self.bench = fanout.Bench(ns)
        shutil.rmtree(self.bench.tmp, ignore_errors=True)
        self.bench.tmp = tmp
        self.aux_cpu0 = None

    def check(self):
        for b in ("tocsind", "tocsin-devkafka"):
            if not os.access(os.path.join(self.a.build_dir, b), os.X_OK):
                raise Skip(f"{b} is not built under {self.a.build_dir}")
        if shutil.which("redis-server") is None:
            raise Skip("redis-server is not installed (apt-get install redis-server)")
        if importlib.util.find_spec("confluent_kafka") is None:
            raise Skip("python3-confluent-kafka is not installed")

    def start(self):
        self.bench.start_servers()

    def pids(self):
        return self.bench.pids()

    def aux_pids(self):
        return [p.pid for p in (self.bench.redis.proc, self.bench.kafka.proc) if p is not None]

    def ws_url(self):
        return f"ws://127.0.0.1:{self.bench.port}/v1/ws?components={COMPONENT}"

    def warm_up(self):
        """Once the consumer group has settled (a late join rebalances it,
        which stalls ingest for a second or more), one event on another
        component through the producer that publishes the timed update, and
        wait until every tocsind served it: neither the join nor the
        producer's first message is timed."""
        self.bench.warm_up()

    def publish(self):
        if self.nodes > 1:
            # How the kernel spread the sessions over the processes.
            self.notes["sessions_per_worker"] = [
                int(self.bench.metrics(pid).get('tocsin_sessions{channel="ws"}', 0))
                for pid in self.pids()]
        self.aux_cpu0 = sum(cpu_precise_s(p) for p in self.aux_pids())
        self.bench.publish()

    def after_delivery(self):
        # Redis and the Kafka mock over the same window as tocsind's CPU.
        aux = sum(cpu_precise_s(p) for p in self.aux_pids()) - self.aux_cpu0
        self.notes["redis_kafka_cpu_s"] = aux

    def stop(self):
        self.bench.stop_servers()

    def diag(self):
        return self.bench.log_tail(20) if self.bench.tocsind is not None else ""


class RawPeer(Peer):
    """A pub/sub server that takes an update as an HTTP POST to /pub and
    sends the body to every session as one text message."""

    def __init__(self, a, wsload, tmp):
        super().__init__(a, wsload, tmp)
        self.port = None
        self.proc = None

    def publish(self):
        """One POST per update, pipelined on one connection in windows of
        PIPELINE requests: each body's bench_ts_us is taken just before its
        request is written, and no request waits for the answer to the one
        before (within a window), as fanout.py produces its burst to Kafka
        without waiting. Waiting for each answer would pace the publisher by
        the server's fan-out and make later updates look faster."""
        epoch = secrets.token_hex(16)
        incident = uid("bench")
        path = PUB_PATH
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rf = sock.makefile("rb")
            v = 0
            while v < self.a.updates:
                window = min(PIPELINE, self.a.updates - v)
                for _ in range(window):
                    v += 1
                    body = update_body(epoch, v, v, incident, int(time.time() * 1e6))
                    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                            f"Content-Type: application/json\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n")
                    sock.sendall(head.encode() + body)
                for _ in range(window):
                    status, answer = read_response(rf)
                    if not 200 <= status < 300:
                        raise RuntimeError(f"{self.name}: POST {path} answered "
                                           f"{status}: {answer[:200]!r}")

    def wait_listening(self, what):
        def up():
            if self.proc.poll() is not None:
                return "exited"
            return port_open(self.port)

        if wait_until(up, 15, interval=0.05, what=what) == "exited":
            raise RuntimeError(f"{self.name} exited {self.proc.returncode}: {self.diag()}")

    def stop(self):
        stop(self.proc)


class NchanPeer(RawPeer):
    """nginx + nchan from a temp dir: subscribers on /sub (WebSocket), the
    publisher on /pub, one channel. As root, nginx runs as nobody."""

    def __init__(self, a, wsload, tmp, workers):
        super().__init__(a, wsload, tmp)
        self.workers = workers
        self.name = f"nchan-{workers}w"
        self.master = None
        self.base_fds = {}

    def check(self):
        if shutil.which("nginx") is None:
            raise Skip("nginx is not installed (apt-get install nginx-light libnginx-mod-nchan)")
        if not os.path.exists(NCHAN_MODULE):
            raise Skip(f"{NCHAN_MODULE} is missing (apt-get install libnginx-mod-nchan)")
        if not os.path.isdir(NGINX_BODY_DIR):
            if os.geteuid() != 0:
                raise Skip(f"{NGINX_BODY_DIR} is missing and only root can create it "
                           f"(install -d -m 0700 {NGINX_BODY_DIR}); nginx checks it once "
                           f"nchan is loaded")
            os.makedirs(NGINX_BODY_DIR, mode=0o700, exist_ok=True)
            log(f"created {NGINX_BODY_DIR}, which nginx checks once nchan is loaded")

    def conf(self, nofile):
        d = self.tmp
        # One worker must be able to hold every session, and nginx counts the
        # listener and the publisher's connection too.
        conns = max(1024, min(nofile - 64, 65535))
        # With 2 workers, reuseport lets the kernel spread the sessions evenly
        # (without it one worker may accept most of them).
        reuse = " reuseport" if self.workers > 1 else ""
        return f"""load_module {NCHAN_MODULE};
daemon off;
master_process on;
worker_processes {self.workers};
worker_rlimit_nofile {nofile};
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{
    use epoll;
    worker_connections {conns};
    multi_accept on;
}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    nchan_shared_memory_size 128m;
    server {{
        listen 127.0.0.1:{self.port} backlog=4096{reuse};
        location = /sub {{
            nchan_subscriber websocket;
            nchan_channel_id bench;
        }}
        location = /pub {{
            nchan_publisher http;
            nchan_channel_id bench;
        }}
    }}
}}
"""

    def start(self):
        nofile = raise_nofile()[1]
        self.port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self.conf(nofile))
        kw = {}
        if os.geteuid() == 0:
            # Unprivileged like a real deployment's workers, master included:
            # nothing here needs root (the port is above 1024).
            nobody = pwd.getpwnam("nobody")
            try:
                gid = grp.getgrnam("nogroup").gr_gid
            except KeyError:
                gid = nobody.pw_gid
            os.chown(self.tmp, nobody.pw_uid, gid)
            kw = {"user": nobody.pw_uid, "group": gid, "extra_groups": []}
        with open(os.path.join(self.tmp, "nginx.out"), "wb") as out:
            self.proc = subprocess.Popen(["nginx", "-p", self.tmp, "-c", conf],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out, **kw)
        self.master = self.proc.pid
        self.wait_listening(f"nginx on port {self.port}")
        wait_until(lambda: len(children(self.master)) >= self.workers, 10, interval=0.05,
                   what=f"{self.workers} nginx worker(s)")
        log(f"{self.name}: nginx pid {self.master}, workers {children(self.master)}, "
            f"port {self.port}, worker_rlimit_nofile {nofile}")

    def pids(self):
        return [self.master] + children(self.master)

    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/sub"

    def warm_up(self):
        # Sockets a worker holds before any session (listener, channels to
        # the master), so the sessions per worker can be told apart later.
        self.base_fds = {p: socket_fds(p) for p in children(self.master)}

    def publish(self):
        # How the sessions landed on the workers (reuseport hashes them).
        self.notes["sessions_per_worker"] = [socket_fds(p) - self.base_fds.get(p, 0)
                                             for p in children(self.master)]
        super().publish()

    def diag(self):
        out = []
        for name in ("nginx.out", "error.log"):
            try:
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    out.extend(f.readlines()[-10:])
            except OSError:
                pass
        return "".join(out)


class NodePeer(RawPeer):
    """tests/bench/peers/node/server.js: Node.js + ws, one process."""

    name = "node"

    def check(self):
        node = shutil.which("node") or shutil.which("nodejs")
        if node is None:
            raise Skip("Node.js is not installed (apt-get install nodejs npm)")
        self.node = node
        if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
            return
        npm = shutil.which("npm")
        if npm is None:
            raise Skip(f"ws is not installed in {NODE_DIR} and npm is missing "
                       f"(apt-get install npm; npm ci --prefix {NODE_DIR})")
        log(f"installing ws from package-lock.json: npm ci --prefix {NODE_DIR}")
        try:
            r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", NODE_DIR],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise Skip(f"npm ci in {NODE_DIR} took over 120 s") from None
        if r.returncode != 0:
            raise Skip(f"npm ci in {NODE_DIR} failed: {r.stderr.decode()[-300:]}")

    def start(self):
        self.port = free_port()
        with open(os.path.join(self.tmp, "node.log"), "wb") as out:
            self.proc = subprocess.Popen([self.node, os.path.join(NODE_DIR, "server.js"),
                                          "--port", str(self.port)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.wait_listening(f"node on port {self.port}")
        log(f"node: pid {self.proc.pid}, port {self.port}")

    def pids(self):
        return [self.proc.pid]

    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}/"

    def diag(self):
        try:
            with open(os.path.join(self.tmp, "node.log"), errors="replace") as f:
                return "".join(f.readlines()[-10:])
        except OSError:
            return ""


def make_peer(name, a, wsload, tmp):
    if name == "tocsind":
        return TocsindPeer(a, wsload, tmp)
    if name == "tocsind-x2":
        return TocsindPeer(a, wsload, tmp, nodes=2)
    if name.startswith("nchan-"):
        return NchanPeer(a, wsload, tmp, int(name[len("nchan-"):-1]))
    return NodePeer(a, wsload, tmp)


# -------------------------------------------------------------------- figures


def summarize(name, a, results, lat, ready, connect_s, mem0, mem1, cpu_s, notes):
    def pct(q):
        return lat[int((len(lat) - 1) * q)] / 1000.0 if lat else None

    firsts = [r["first_ts_us"] for r in results if r["first_ts_us"]]
    lasts = [r["last_rx_us"] for r in results if r["last_rx_us"]]
    frx = [r["first_rx_us"] for r in results if r["first_rx_us"]]
    last_ms = (max(lasts) - min(firsts)) / 1000.0 if firsts and lasts else None
    # First session's first update to the last session's last: the fan-out
    # alone, without the path from the publisher into the server.
    spread_ms = (max(lasts) - min(frx)) / 1000.0 if frx and lasts else None
    deliveries = sum(r["updates"] for r in results)
    s = {
        "peer": name,
        "status": "ran",
        "sessions": a.sessions,
        "ready": ready,
        "updates_per_session": a.updates,
        "deliveries": deliveries,
        "complete": sum(r["sessions_done"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "first_ms": (min(frx) - min(firsts)) / 1000.0 if firsts and frx else None,
        "last_ms": last_ms,
        "spread_ms": spread_ms,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "max_ms": lat[-1] / 1000.0 if lat else None,
        "deliveries_per_s": deliveries / (last_ms / 1000.0) if last_ms else None,
        "spread_deliveries_per_s": deliveries / (spread_ms / 1000.0) if spread_ms else None,
        "cpu_s": cpu_s,
        "cpu_us_per_delivery": cpu_s * 1e6 / deliveries if deliveries else None,
        "mem_idle_kb": mem1 - mem0,
        "kb_per_session": (mem1 - mem0) / ready if ready else None,
        "connect_rate": ready / connect_s if connect_s > 0 else None,
    }
    s.update(notes)
    if "redis_kafka_cpu_s" in notes and deliveries:
        s["redis_kafka_cpu_us_per_delivery"] = notes["redis_kafka_cpu_s"] * 1e6 / deliveries
    s["ok"] = s["errors"] == 0 and s["complete"] == a.sessions
    return s


def by_peer(runs):
    """{peer: [its runs, in round order]}, peers in the order they first ran."""
    out = {}
    for r in runs:
        out.setdefault(r["peer"], []).append(r)
    return out


def median_runs(runs):
    """Each system's median run by deliveries/s (of two, the slower), so a
    row's figures all come from one real run; a system that never ran keeps
    its first skip or failure."""
    out = []
    for peer, rs in by_peer(runs).items():
        ran = sorted((r for r in rs if r["status"] == "ran"),
                     key=lambda r: r["deliveries_per_s"] or 0, reverse=True)
        out.append(dict(ran[len(ran) // 2]) if ran else dict(rs[0]))
    return out


def ratios(runs, peer, other):
    """Per round where both ran: (deliveries/s of peer / other's, peer's p99
    < other's)."""
    rounds = {}
    for r in runs:
        if r["status"] == "ran" and r["peer"] in (peer, other):
            rounds.setdefault(r["round"], {})[r["peer"]] = r
    out = []
    for _, rr in sorted(rounds.items()):
        if peer in rr and other in rr and rr[other]["deliveries_per_s"]:
            a, b = rr[peer], rr[other]
            out.append((a["deliveries_per_s"] / b["deliveries_per_s"], a["p99_ms"] < b["p99_ms"]))
    return out


def rounds_table(runs, medians):
    """Every round's time to last delivery and p99 per system, then for each
    tocsind row its deliveries/s over each peer's, round by round."""
    peers = [m["peer"] for m in medians]
    out = ["| round | " + " | ".join(f"{p}: time to last / p99 (ms)" for p in peers) + " |",
           "|---|" + "---|" * len(peers)]
    grouped = by_peer(runs)
    nrounds = max(r["round"] for r in runs)
    for rnd in range(1, nrounds + 1):
        cells = []
        for p in peers:
            r = next((x for x in grouped[p] if x["round"] == rnd), None)
            if r is None or r["status"] != "ran":
                cells.append(r["status"] if r is not None else "")
            else:
                cells.append(f"{fmt(r['last_ms'])} / {fmt(r['p99_ms'])}")
        out.append(f"| {rnd} | " + " | ".join(cells) + " |")
    out.append("")
    for mine in (p for p in peers if p.startswith("tocsind")):
        for other in (p for p in peers if not p.startswith("tocsind")):
            rs = ratios(runs, mine, other)
            if not rs:
                continue
            xs = [x for x, _ in rs]
            out.append(f"- {mine} over {other}, deliveries/s round by round: "
                       + ", ".join(f"{x:.2f}×" for x, _ in rs)
                       + f"; median {statistics.median(xs):.2f}×, lowest {min(xs):.2f}×; lower p99 in "
                       f"{sum(lower for _, lower in rs)} of {len(rs)} rounds.")
    return "\n".join(out)


def fmt(x, d=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{d}f}"


def ratio(x, base):
    if x is None or base is None or base == 0:
        return ""
    return f" ({x / base:.2f}×)"


def table(runs):
    """One row per peer; each figure with its ratio to tocsind's."""
    base = next((r for r in runs if r["peer"] == "tocsind" and r["status"] == "ran"), None)
    head = ("| peer | sessions ready | errors | time to last delivery (ms) | fan-out spread "
            "(ms) | latency p50 / p99 / max (ms) | deliveries/s | deliveries/s within the "
            "spread | server CPU per delivery (µs) | server memory per idle session (KB) |")
    out = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        if r["status"] != "ran":
            why = " ".join(r["reason"].replace("|", "/").split())  # one table cell
            out.append(f"| {r['peer']} | {r['status']}: {why} |" + " |" * 8)
            continue

        def cell(key, d=1):
            b = base.get(key) if base is not None and r is not base else None
            return fmt(r[key], d) + ratio(r[key], b)

        out.append(" | ".join([
            f"| {r['peer']}",
            f"{r['ready']:,} / {r['sessions']:,}",
            str(r["errors"]),
            cell("last_ms"),
            cell("spread_ms"),
            f"{fmt(r['p50_ms'])} / {fmt(r['p99_ms'])} / {fmt(r['max_ms'])}",
            cell("deliveries_per_s", 0),
            cell("spread_deliveries_per_s", 0),
            cell("cpu_us_per_delivery", 2),
            cell("kb_per_session", 2) + " |",
        ]))
    return "\n".join(out)


def notes(runs, a):
    lines = [
        "",
        f"{a.sessions:,} sessions, {a.updates} update(s) each, the systems one after another "
        "on this machine, with the same generator (tocsin-wsload). (×) is the ratio to "
        "tocsind's figure in this run: the machine is shared and noisy, so compare ratios "
        "measured together, not figures from different runs.",
        "- Time to last delivery: from the first update's `bench_ts_us` (taken just before it "
        "is published) to the last session's last update. For tocsind that path is publish "
        "→ Kafka (tocsin-devkafka: up to one fetch wait, 5 ms here) → ingest → Redis script (AOF, "
        "fsync always) → history → fan-out; for nchan and node it is one HTTP POST on "
        "loopback. **Compare the fan-out spread** (first session's first update → last "
        "session's last) for the fan-out itself.",
        "- Latency: per delivery, receive time − that update's `bench_ts_us`. "
        "Deliveries/s: deliveries / time to last delivery, and / fan-out spread.",
        "- Server CPU: run time of every thread of the server's processes (tocsind alone, "
        "or both processes of tocsind ×2; nginx master + workers; node), from the scheduler's nanosecond counters, from just "
        "before the first publish to the last delivery, / deliveries.",
        "- Server memory per idle session: (PSS with every session open and idle − PSS "
        "before any connected) / ready sessions, summed over the server's processes.",
        "- nchan and node get tocsind's update message for the same event "
        "(`{\"type\":\"update\",...,\"incident\":{...,\"bench_ts_us\":N}}`), so every "
        "system sends the same bytes. Neither speaks a subprotocol or filters; node keeps "
        "nothing, nchan its default message buffer.",
        "- tocsind ×2: two tocsind sharing the port with `http.reuse_port` (SO_REUSEPORT), "
        "each a full node on the same Redis and Kafka group; one of them ingests the update, "
        "both deliver it from the Redis history to their own sessions (one loop per core, "
        "as nchan-2w has one worker per core).",
    ]
    if a.rounds > 1:
        lines.append(f"- {a.rounds} rounds: every system ran {a.rounds} times, interleaved "
                     "(round r starts at the r-th system). The first table gives each "
                     "system's median run by deliveries/s (of an even count, the slower of "
                     "the two middle runs) and its (×) compares those runs; the round table "
                     "compares systems within one round, the fairest ratio on a noisy machine.")
    busy = []
    for r in runs:
        if r["status"] == "ran" and r.get("spread_ms"):
            share = r["generator_cpu_s"] / (r["spread_ms"] / 1000.0) / r["generator_procs"]
            busy.append(f"{r['peer']} {share:.0%}")
    if busy:
        lines.append("- Generator busy (its CPU from the publish to the last delivery / fan-out "
                     "spread, per process): " + ", ".join(busy) + ". Near 100 % the "
                     "generator, not the server, set the pace of the spread: servers and "
                     "generators share this machine's cores.")
    for r in runs:
        if r["status"] != "ran":
            continue
        if "redis_kafka_cpu_s" in r:
            lines.append(f"- {r['peer']}: its Redis + Kafka mock used "
                         f"{fmt(r['redis_kafka_cpu_s'], 3)} s CPU over the same window "
                         f"({fmt(r.get('redis_kafka_cpu_us_per_delivery'), 2)} µs per "
                         "delivery), not in the table.")
        if "sessions_per_worker" in r:
            lines.append(f"- {r['peer']}: sessions per process {r['sessions_per_worker']}.")
    return "\n".join(lines)


def run_one(name, a, wsload, top, rnd, pause):
    """One system, one round: its figures, or status skipped/failed and why."""
    tmp = os.path.join(top, f"{name}-{rnd + 1}")
    os.mkdir(tmp)
    peer = make_peer(name, a, wsload, tmp)
    try:
        peer.check()
    except Skip as e:
        log(f"{name}: skipped: {e}")
        return {"peer": peer.name, "status": "skipped", "reason": str(e)}
    if pause:
        time.sleep(a.pause)  # let the last system's sockets and CPU settle
    what = f" (round {rnd + 1} of {a.rounds})" if a.rounds > 1 else ""
    log(f"{name}: {a.sessions} sessions, {a.updates} update(s){what}")
    try:
        return peer.run()
    except Exception as e:  # report it, go on with the next system
        log(f"{name}: failed: {e}")
        return {"peer": peer.name, "status": "failed", "reason": str(e)[:300]}


def main():
    ap = argparse.ArgumentParser(
        description="tocsind vs nginx + nchan vs node ws: WebSocket fan-out side by side")
    ap.add_argument("--sessions", type=int, default=5000)
    ap.add_argument("--updates", type=int, default=1,
                    help="updates per session, published as one burst")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help=f"comma-separated, in order (default {','.join(PEERS)})")
    ap.add_argument("--procs", type=int, default=0,
                    help=f"generator processes (default: sessions / {MAX_PER_PROC}, rounded up)")
    ap.add_argument("--connect-rate", type=float, default=2000,
                    help="new sessions per second, in all")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds before each memory reading (server up; all sessions ready)")
    ap.add_argument("--pause", type=float, default=2.0, help="seconds between two systems")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every system this many times, interleaved (round r starts "
                    "at the r-th system); the table gives each system's median run and "
                    "the ratios of every round")
    ap.add_argument("--deliver-timeout", type=float, default=60,
                    help="seconds the updates have to reach every session")
    ap.add_argument("--build-dir", default=os.environ.get(
        "TOCSIN_BUILD_DIR", os.path.join(HERE, "..", "..", "build")))
    ap.add_argument("--json", action="store_true", help="also print every run as one JSON line")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, samples, confs)")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    helpers.BUILD_DIR = a.build_dir  # DevKafka finds tocsin-devkafka there
    names = [p.strip() for p in a.peers.split(",") if p.strip()]
    bad = [p for p in names if p not in PEERS]
    if bad or not names:
        ap.error(f"--peers: unknown {bad}; choose from {','.join(PEERS)}")
    if a.sessions < 1 or a.updates < 1 or a.connect_rate <= 0 or a.rounds < 1:
        ap.error("--sessions, --updates, --connect-rate and --rounds must be positive")

    soft, hard = raise_nofile()  # the servers and generators inherit it
    log(f"RLIMIT_NOFILE {soft}/{hard}")
    wsload = benchlib.find_wsload(a.build_dir)
    top = tempfile.mkdtemp(prefix="tocsin-peers-")
    os.chmod(top, 0o755)  # nginx runs as nobody in a subdirectory
    runs = []
    failed = False

    def on_term(_sig, _frame):
        raise KeyboardInterrupt  # unwinds through every finally: servers stop

    signal.signal(signal.SIGTERM, on_term)
    try:
        for rnd in range(a.rounds):
            # Each round starts one system later: no system always runs first
            # (or right after the same neighbour).
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for i, name in enumerate(order):
                r = run_one(name, a, wsload, top, rnd, pause=rnd > 0 or i > 0)
                r["round"] = rnd + 1
                runs.append(r)
                failed |= r["status"] == "failed" or (r["status"] == "ran" and not r["ok"])
    except KeyboardInterrupt:
        log("interrupted: every process started was stopped; figures so far follow")
        failed = True
    if not any(r["status"] == "ran" for r in runs):
        log("no system ran: nothing to compare")
        failed = True
    medians = median_runs(runs)
    print(table(medians))
    if a.rounds > 1:
        print()
        print(rounds_table(runs, medians))
    print(notes(medians, a))
    if a.json:
        print(json.dumps(runs))
    if a.keep or (failed and any(r["status"] != "skipped" for r in runs)):
        log(f"logs and samples kept in {top}")
    else:
        shutil.rmtree(top, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
