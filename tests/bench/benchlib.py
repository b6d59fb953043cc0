# tocsin — SPDX-License-Identifier: MIT
#
# What every benchmark script here shares: reading /proc (RSS, CPU, open
# files), the stack under test (its own redis-server, tocsin-devkafka and
# tocsind, started and stopped together), groups of tocsin-wsload processes
# (ready, done and dropped files, signals, one JSON line each), percentiles
# and Markdown tables. It measures nothing by itself and prints no figures.

import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import helpers  # noqa: E402
from helpers import (DevKafka, RedisServer, free_port, http_get, parse_metrics,  # noqa: E402
                     tail_file, wait_until)

# tocsin-wsload's catch-up histogram: bucket upper edges in ms (the last: later).
CATCHUP_EDGES_MS = (250, 500, 1000, 1500, 2000, 2500, 3000, 5000)
# One generator process holds at most this many sessions (fd limit 20,000).
MAX_PER_PROC = 19000
SOURCE_IPS = ",".join(f"127.0.0.{i}" for i in range(2, 10))
DEFAULT_BUILD_DIR = os.environ.get("TOCSIN_BUILD_DIR", os.path.join(HERE, "..", "..", "build"))


def raise_nofile():
    """Soft RLIMIT_NOFILE up to the hard limit; returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def proc_status(pid, key):
    """A field of /proc/PID/status in kB (VmRSS, VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_s(pid):
    """User + system CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_precise_s(pid):
    """CPU seconds of every live thread of pid, from the scheduler's
    nanosecond run time (user + system); /proc/PID/stat's 10 ms ticks are too
    coarse for one update to a few thousand sessions."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        return proc_cpu_s(pid)
    return total / 1e9


def proc_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3], line.split()[4]
    return None, None


def proc_fds(pid):
    """Open files of pid (entries of /proc/PID/fd), or None once it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def find_bench_binary(build_dir, name):
    """tests/bench/<name> under build_dir, else under build-bench/; exits if
    neither has it."""
    for d in (build_dir, os.path.join(HERE, "..", "..", "build-bench")):
        p = os.path.join(d, "tests", "bench", name)
        if os.access(p, os.X_OK):
            return p
    sys.exit(f"bench: {name} is not built under {build_dir}/tests/bench")


def find_wsload(build_dir):
    return find_bench_binary(build_dir, "tocsin-wsload")


def stop(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def pct(sorted_values, q):
    """The q-quantile of an already sorted list (nearest rank below), or NaN."""
    if not sorted_values:
        return float("nan")
    return sorted_values[int((len(sorted_values) - 1) * q)]


def fmt(x, d=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:,.{d}f}"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def split_sessions(sessions, procs=0):
    """Sessions per generator process: procs, or as few as the fd limit allows."""
    procs = procs or max(1, math.ceil(sessions / MAX_PER_PROC))
    per = [sessions // procs + (1 if i < sessions % procs else 0) for i in range(procs)]
    if max(per) > MAX_PER_PROC:
        raise SystemExit(f"bench: {max(per)} sessions per process is over {MAX_PER_PROC}")
    return per


class Stack:
    """redis-server (AOF; appendfsync as asked, production's `always` by
    default), tocsin-devkafka and tocsind with TOCSIN_LOG_LEVEL=warn and its
    soft RLIMIT_NOFILE raised to the hard limit (one fd per session), in
    tmp. With nodes > 1, that many tocsind share the port (http.reuse_port),
    each a node of one Redis prefix and Kafka group: one loop per core.
    log(msg) reports what it did."""

    PARTITIONS = 4  # of the incident topic

    def __init__(self, build_dir, tmp=None, log=None, fsync="always", env=None, nodes=1):
        self.build_dir = build_dir
        self.tmp = tmp or tempfile.mkdtemp(prefix="tocsin-bench-")
        self.log = log or (lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True))
        self.fsync = fsync
        self.extra_env = dict(env or {})
        self.nodes = nodes
        self.redis = None
        self.kafka = None
        self.tocsind = None  # the first node
        self.tocsinds = []
        self.port = None
        helpers.BUILD_DIR = build_dir  # DevKafka finds tocsin-devkafka there

    def start_servers(self, sessions=0):
        self.redis = RedisServer().start()
        if self.fsync != "always":
            self.redis.client().config_set("appendfsync", self.fsync)
        self.kafka = DevKafka(partitions=self.PARTITIONS).start()
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        env.update({
            "TOCSIN_HTTP_LISTEN": f"127.0.0.1:{self.port}",
            "TOCSIN_KAFKA_BROKERS": self.kafka.bootstrap,
            "TOCSIN_REDIS_URL": self.redis.url,
            "TOCSIN_LOG_LEVEL": "warn",
            # Thousands of sessions from each of 8 loopback addresses, opened
            # in bursts: no per-IP cap may refuse the load generator.
            "TOCSIN_HTTP_MAX_PENDING_PER_IP": "0",
            "TOCSIN_HTTP_MAX_CONNECTIONS_PER_IP": "0",
            # Every session the hard fd limit allows (tocsind sets its soft
            # limit itself), with the smallest webhook pool: no webhooks
            # here, and its reserve then leaves 19,000 sessions room under
            # the machine's 20,000.
            "TOCSIN_HTTP_MAX_CONNECTIONS": "0",
            "TOCSIN_WEBHOOK_MAX_CONNECTIONS": "256",
            "TOCSIN_HTTP_REUSE_PORT": "true" if self.nodes > 1 else "false",
            # A real broker answers a waiting fetch as soon as an event
            # arrives; tocsin-devkafka (librdkafka's mock) holds it for the
            # whole fetch wait, which at the default 50 ms added 0-50 ms to
            # every publish -> delivery figure that a real broker would not.
            # 5 ms leaves at most 5 ms of it, at 200 fetches/s when idle.
            "TOCSIN_KAFKA_FETCH_WAIT": "5ms",
        })
        env.update(self.extra_env)
        cap = self.session_cap(env)
        for i in range(self.nodes):
            with open(self.node_log(i), "wb") as logf:
                # preexec_fn: the hard limit as the soft one, as before tocsind
                # set its own (it now sets the soft limit to cap + reserve).
                self.tocsinds.append(subprocess.Popen(
                    [os.path.join(self.build_dir, "tocsind")], env=env,
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, preexec_fn=raise_nofile))
        self.tocsind = self.tocsinds[0]

        def ready(proc):
            if proc.poll() is not None:
                return "exited"
            try:
                return self.get("/readyz", proc.pid, timeout=1)[0] == 200
            except OSError:
                return False

        for proc in self.tocsinds:
            if wait_until(lambda: ready(proc), 60, interval=0.2,
                          what="tocsind /readyz") == "exited":
                raise RuntimeError(f"tocsind exited {proc.returncode}: {self.log_tail()}")
        soft, hard = proc_nofile(self.tocsind.pid)
        self.log(f"tocsind pid(s) {self.pids()} on port {self.port}, RLIMIT_NOFILE {soft}/{hard}"
                 f", up to {cap} client connections each")
        if cap is not None and cap < sessions + 10:
            self.log(f"warning: tocsind holds only {cap} connections, fewer than the sessions asked")

    def session_cap(self, env):
        """The client connections tocsind will hold (its --check-config
        says, for the fd limit it gets), or None."""
        p = subprocess.run([os.path.join(self.build_dir, "tocsind"), "--check-config"], env=env,
                           capture_output=True, timeout=30, preexec_fn=raise_nofile)
        m = re.search(rb"up to (\d+) client connections", p.stderr)
        return int(m.group(1)) if m else None

    def pids(self):
        return [p.pid for p in self.tocsinds]

    def get(self, path, pid=None, timeout=5):
        """GET path: (status, headers, body); from node pid when the port is
        shared (the kernel picks a node per connection)."""
        if pid is None or self.nodes == 1:
            return http_get(f"{self.url}{path}", timeout=timeout)
        status, body = helpers.http_get_from(pid, self.port, path, timeout=timeout)
        return status, {}, body

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def node_log(self, i):
        return os.path.join(self.tmp, "tocsind.log" if i == 0 else f"tocsind.{i}.log")

    @property
    def tocsind_log(self):
        return self.node_log(0)

    def ws_url(self, query=""):
        return f"ws://127.0.0.1:{self.port}/v1/ws" + (f"?{query}" if query else "")

    def log_tail(self, n=30):
        return "\n".join(tail_file(self.node_log(i), n) for i in range(max(1, len(self.tocsinds))))

    def metrics(self, pid=None):
        """/metrics as {'name{labels}': value} (of node pid, if given)."""
        status, _, body = self.get("/metrics", pid)
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return parse_metrics(body.decode())

    def hub_seq(self):
        """The last seq every node delivered from the history stream."""
        return min(int(self.metrics(pid).get("tocsin_hub_seq", 0)) for pid in self.pids())

    def wait_seq(self, seq, timeout, interval=0.02):
        """Until every node's hub reached seq (every event up to it stored and
        tailed); returns the monotonic time it was seen."""
        wait_until(lambda: self.hub_seq() >= seq, timeout, interval=interval,
                   what=f"tocsin_hub_seq >= {seq}")
        return time.monotonic()

    def wait_assigned(self, timeout):
        """Until the consumer group is settled: every partition assigned,
        each node holding its share. A node that joins late makes the group
        rebalance, which stops ingest for seconds: it must not happen inside
        a measured window."""
        share = self.PARTITIONS // len(self.tocsinds)

        def settled():
            counts = [int(self.metrics(pid).get("tocsin_ingest_partitions", 0))
                      for pid in self.pids()]
            return sum(counts) == self.PARTITIONS and min(counts) >= share

        wait_until(settled, timeout, interval=0.1, what="every Kafka partition assigned")

    def producer(self):
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.kafka.bootstrap, "linger.ms": 0,
                         "acks": "all"})

    def stop_servers(self):
        for proc in self.tocsinds:
            stop(proc, timeout=15)
        if self.kafka is not None:
            self.kafka.stop()
        if self.redis is not None:
            self.redis.cleanup()


class Generators:
    """tocsin-wsload processes started together, sessions split over them
    (at most MAX_PER_PROC each). Each writes a ready file, a done file once
    its sessions got every update (then holds them until SIGTERM), a dropped
    file with --drop-after, and prints one JSON line and a samples file.
    extra: more tocsin-wsload options, the same for every process."""

    def __init__(self, wsload, url, tmp, sessions, connect_rate, duration, expect=0,
                 procs=0, peer_mode="tocsin", extra=(), name="wsload"):
        self.tmp = tmp
        self.per = split_sessions(sessions, procs)
        self.connect_bound = sessions / connect_rate + 30
        self.gens = []
        n_procs = len(self.per)
        for i, n in enumerate(self.per):
            f = {k: os.path.join(tmp, f"{name}.{k}.{i}")
                 for k in ("ready", "done", "dropped", "samples", "log")}
            cmd = [wsload, "--url", url, "--peer", peer_mode, "--sessions", str(n),
                   "--source-ips", SOURCE_IPS, "--connect-rate", f"{connect_rate / n_procs:.1f}",
                   "--duration", f"{duration:.0f}", "--ready-file", f["ready"],
                   "--samples-file", f["samples"]]
            if expect:
                cmd += ["--expect", str(expect)]
            if expect or "--filters" in extra:
                cmd += ["--done-file", f["done"]]
            if "--drop-after" in extra:
                cmd += ["--dropped-file", f["dropped"]]
            cmd += list(extra)
            with open(f["log"], "wb") as err:
                f["proc"] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.PIPE, stderr=err)
            f["n"] = n
            self.gens.append(f)

    def _wait_files(self, key, timeout, what, interval=0.01):
        def all_there():
            for g in self.gens:
                if g["proc"].poll() is not None and not os.path.exists(g[key]):
                    return "exited"
            return all(os.path.exists(g[key]) for g in self.gens)

        if wait_until(all_there, timeout, interval=interval, what=what) == "exited":
            raise RuntimeError(f"a generator exited before its {key} file (logs: {self.tmp})")
        total = {}
        for g in self.gens:
            with open(g[key]) as f:
                for k, v in json.load(f).items():
                    total[k] = total.get(k, 0) + v
        return total

    def wait_ready(self):
        """{'ready': n, 'failed': n} once every session got welcome + snapshot."""
        return self._wait_files("ready", self.connect_bound, "generators' ready files", 0.05)

    def wait_done(self, timeout):
        """{'done': n, 'failed': n} once every session got every update."""
        return self._wait_files("done", timeout, "generators' done files", 0.002)

    def wait_dropped(self, timeout):
        return self._wait_files("dropped", timeout, "generators' dropped files")

    def signal(self, sig):
        for g in self.gens:
            if g["proc"].poll() is None:
                g["proc"].send_signal(sig)

    def pids(self):
        return [g["proc"].pid for g in self.gens]

    def collect(self, timeout=15):
        """SIGTERM (a generator prints its result then), one JSON line each."""
        results = []
        self.signal(signal.SIGTERM)
        for g in self.gens:
            try:
                out, _ = g["proc"].communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                g["proc"].kill()
                out, _ = g["proc"].communicate(timeout=5)
            lines = out.decode().strip().splitlines()
            rc = g["proc"].returncode
            # 0: no error, 1: errors it counted; anything else (a sanitizer's
            # exit code, a signal) is the generator's own failure.
            if not lines or rc not in (0, 1):
                raise RuntimeError(f"a generator exited {rc} (log: {g['log']})")
            results.append(json.loads(lines[-1]))
        return results

    def samples(self):
        """Every kept latency sample of every process, in microseconds, sorted."""
        lat = []
        for g in self.gens:
            try:
                with open(g["samples"]) as f:
                    lat.extend(int(x) for x in f if x.strip())
            except OSError:
                pass
        lat.sort()
        return lat

    def stop(self):
        for g in self.gens:
            stop(g["proc"])


def merge(results):
    """Sums the generators' counters; first/last times as min/max."""
    keys = ("sessions", "connected", "ready", "updates", "errors", "server_closes",
            "sessions_done", "samples_dropped", "gaps", "dups", "foreign", "unchecked",
            "resets", "epoch_changes", "reconnects", "rewelcomed", "resumed_closes")
    m = {k: sum(r.get(k, 0) for r in results) for k in keys}

    def pick(key, fn):
        vals = [r[key] for r in results if r.get(key)]
        return fn(vals) if vals else 0

    m["first_ts_us"] = pick("first_ts_us", min)
    m["first_rx_us"] = pick("first_rx_us", min)
    m["last_rx_us"] = pick("last_rx_us", max)
    m["trigger_us"] = pick("trigger_us", min)
    m["rewelcome_us"] = pick("rewelcome_us", max)
    m["caught_up_us"] = pick("caught_up_us", max)
    m["max_ms"] = pick("max_ms", max)
    # Per update k: published at the smallest ts, last received at the max.
    per = {}
    for r in results:
        for k, (ts, first, last) in enumerate(r.get("per_update", [])):
            p = per.setdefault(k, [ts, first, last])
            p[0], p[1], p[2] = min(p[0], ts), min(p[1], first), max(p[2], last)
    m["per_update"] = [per[k] for k in sorted(per)]
    hists = [r["catchup_hist"] for r in results if r.get("catchup_hist")]
    m["catchup_hist"] = [sum(h) for h in zip(*hists)] if hists else []
    m["verified_bad"] = (m["errors"] + m["gaps"] + m["dups"] + m["foreign"] + m["unchecked"]
                         + m["resets"] + m["epoch_changes"])
    return m


# ------------------------------------------------------- mixed-filter plan
#
# The burst, storm and soak scenarios publish to a fixed set of incidents,
# each with its own components, regions and impact (none ends, so what matches
# stays fixed), and spread their sessions over a fixed set of filters. Each
# event carries incident.bench_c: its incident's slot "i" and, per filter that
# matches it, how many events of this incident matched that filter so far.
# tocsin-wsload --check then finds gaps, duplicates and foreign incidents per
# session without knowing the filter rules; the plan's counts are its expects.

IMPACTS = ("none", "minor", "major", "critical")
# 16 incidents over 8 components and 3 regions (every 4th global); 16 filters:
# one component each, half of them also a region, every 4th min_impact=major.
# A filter matches 1 to 4 incidents, about 1 in 7 on average: each session
# gets about a seventh of the events, as users who follow a few components.
INCIDENTS = (  # (components, regions, impact)
    (("c0",), ("eu",), "minor"),
    (("c1", "c4"), ("us",), "minor"),
    (("c2",), ("ap",), "minor"),
    (("c3", "c6"), (), "minor"),
    (("c4",), ("eu",), "major"),
    (("c5", "c0"), ("us",), "major"),
    (("c6",), ("ap",), "major"),
    (("c7", "c2"), (), "major"),
    (("c0",), ("eu",), "critical"),
    (("c1", "c4"), ("us",), "critical"),
    (("c2",), ("ap",), "critical"),
    (("c3", "c6"), (), "critical"),
    (("c4",), ("eu",), "minor"),
    (("c5", "c0"), ("us",), "minor"),
    (("c6",), ("ap",), "minor"),
    (("c7", "c2"), (), "minor"),
)
FILTERS = (
    {"components": ("c0",)},
    {"components": ("c1",)},
    {"components": ("c2",)},
    {"components": ("c3",), "min_impact": "major"},
    {"components": ("c4",)},
    {"components": ("c5",)},
    {"components": ("c6",)},
    {"components": ("c7",), "min_impact": "major"},
    {"components": ("c0",), "regions": ("us",)},
    {"components": ("c1",), "regions": ("ap", "us")},
    {"components": ("c2",), "regions": ("ap",)},
    {"components": ("c3",), "regions": ("eu",), "min_impact": "major"},
    {"components": ("c4",), "regions": ("us",)},
    {"components": ("c5",), "regions": ("us",)},
    {"components": ("c6",), "regions": ("ap",)},
    {"components": ("c7",), "regions": ("eu",), "min_impact": "major"},
)


def matches(flt, incident):
    """DESIGN §3 for an incident that has not ended."""
    comps, regions, impact = incident
    if flt.get("components") and not set(flt["components"]) & set(comps):
        return False
    if flt.get("regions") and regions and not set(flt["regions"]) & set(regions):
        return False
    return IMPACTS.index(impact) >= IMPACTS.index(flt.get("min_impact", "none"))


def filter_query(flt):
    parts = [f"{k}={','.join(v)}" for k, v in flt.items() if k != "min_impact"]
    if "min_impact" in flt:
        parts.append(f"min_impact={flt['min_impact']}")
    return "&".join(parts)


def tables(groups=1):
    """(incidents, filters) for groups copies of INCIDENTS and FILTERS, each
    copy on its own components (c0-g1, ...): a session then gets 1/groups of
    what it gets with one group, at the same event rate."""
    if groups == 1:
        return list(INCIDENTS), list(FILTERS)

    def comps(cs, g):
        return tuple(f"{c}-g{g}" for c in cs)

    incidents = [(comps(c, g), r, i) for g in range(groups) for c, r, i in INCIDENTS]
    filters = [dict(f, components=comps(f["components"], g))
               for g in range(groups) for f in FILTERS]
    return incidents, filters


class Plan:
    """The events of one run, in publish order: event k belongs to incident
    k mod the incidents. tag makes the incident ids unique to the run."""

    def __init__(self, tag, groups=1):
        self.incidents, self.filters = tables(groups)
        self.ids = [f"{tag}-{i}" for i in range(len(self.incidents))]
        self.versions = [0] * len(self.incidents)
        self.ctr = [[0] * len(self.filters) for _ in self.incidents]  # [incident][filter]
        self.match = [[f for f, flt in enumerate(self.filters) if matches(flt, inc)]
                      for inc in self.incidents]
        self.published = 0

    def expected(self, n_events):
        """Updates a session of each filter gets from the first n events."""
        out = [0] * len(self.filters)
        rounds, rest = divmod(n_events, len(self.incidents))
        for i, fs in enumerate(self.match):
            for f in fs:
                out[f] += rounds + (i < rest)
        return out

    def write_filters(self, path, n_events):
        """tocsin-wsload's --filters file: "EXPECT QUERY" per filter."""
        with open(path, "w") as f:
            for flt, n in zip(self.filters, self.expected(n_events)):
                f.write(f"{n} {filter_query(flt)}\n")

    def expected_deliveries(self, gens, n_events):
        """Updates the sessions of gens must get from the first n events:
        tocsin-wsload gives session i of a process filter line i mod lines."""
        exp = self.expected(n_events)
        return sum(exp[i % len(exp)] for n in gens.per for i in range(n))

    def next_event(self):
        """The next event (bench_ts_us is set by the publisher)."""
        i = self.published % len(self.incidents)
        self.published += 1
        comps, regions, impact = self.incidents[i]
        self.versions[i] += 1
        ctrs = {"i": i}
        for f in self.match[i]:
            self.ctr[i][f] += 1
            ctrs[str(f)] = self.ctr[i][f]
        ev = helpers.event(self.ids[i], self.versions[i], impact=impact, components=comps,
                           regions=regions, title=f"bench {self.ids[i]} v{self.versions[i]}")
        ev["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ev["bench_c"] = ctrs
        return ev


class Publisher:
    """Produces events to tocsin.incidents (key = incident_id), each stamped
    with bench_ts_us just before its produce; counts delivery errors."""

    def __init__(self, stack):
        self.p = stack.producer()
        self.errors = []
        self.sent = 0

    def _on_delivery(self, err, _msg):
        if err is not None:
            self.errors.append(str(err))

    def send(self, ev):
        ev["bench_ts_us"] = int(time.time() * 1e6)
        self.p.produce(helpers.TOPIC, key=ev["incident_id"].encode(),
                       value=json.dumps(ev).encode(), on_delivery=self._on_delivery)
        self.p.poll(0)
        self.sent += 1

    def paced(self, plan, n, rate, stop_flag=None):
        """n events of plan at rate per second (sleeping to the schedule, so
        a late one does not shift the rest). Returns the seconds it took."""
        t0 = time.monotonic()
        for k in range(n):
            delay = t0 + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if stop_flag is not None and stop_flag():
                break
            self.send(plan.next_event())
        return time.monotonic() - t0

    def flush(self, timeout=30):
        left = self.p.flush(timeout)
        if left or self.errors:
            raise RuntimeError(f"produce failed: {left} unsent, errors {self.errors[:5]}")


def warm_up(stack):
    """Once the consumer group has settled, one event on a component no
    session follows, and wait until tocsind delivered it: the consumer has
    joined its group and the producer is connected, so neither is timed.
    Returns (the hub's seq, the publisher)."""
    stack.wait_assigned(60)
    pub = Publisher(stack)
    pub.send(helpers.event(helpers.uid("warmup"), 1, components=("warmup",), title="warm-up"))
    pub.flush()
    stack.wait_seq(1, 60)
    return stack.hub_seq(), pub


def checked_bad(m):
    """What tocsin-wsload found wrong in merged results, as a short text
    ("" when nothing)."""
    keys = ("errors", "gaps", "dups", "foreign", "unchecked", "resets", "epoch_changes",
            "server_closes")
    return ", ".join(f"{k} {m[k]}" for k in keys if m.get(k))


def guarded(log, top, keep, body):
    """Runs body() -> ok, with SIGTERM unwinding like Ctrl-C (through every
    finally, so the servers stop); a failure is logged, not raised. The temp
    dir top is kept (logs, samples) when asked or after a failure. Returns
    the exit status."""

    def on_term(_sig, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        ok = body()
    except KeyboardInterrupt:
        log("interrupted: every process started was stopped")
    except Exception as e:  # report, then clean up below
        log(f"failed: {e}")
    if keep or not ok:
        log(f"logs kept in {top}")
    else:
        shutil.rmtree(top, ignore_errors=True)
    return 0 if ok else 1
