#!/usr/bin/python3
# tocsin — SPDX-License-Identifier: MIT
#
# The fan-out benchmark: starts its own redis-server, tocsin-devkafka and
# tocsind, connects N WebSocket sessions with tocsin-wsload processes (at most
# 19,000 each: a process may open at most 20,000 files), measures tocsind's
# RSS per idle session, publishes K events to Kafka and prints how fast the
# updates reached every session. Every wait is bounded and every process it
# started is stopped on the way out. Run with Debian's /usr/bin/python3.

import argparse
import json
import math
import os
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
from helpers import DevKafka, RedisServer, event, free_port, http_get, uid, wait_until  # noqa: E402

# One generator process holds at most this many sessions (fd limit 20,000).
MAX_PER_PROC = 19000
SOURCE_IPS = ",".join(f"127.0.0.{i}" for i in range(2, 10))


def log(msg):
    print(f"fanout: {msg}", file=sys.stderr, flush=True)


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


def proc_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return line.split()[3], line.split()[4]
    return None, None


def find_wsload(build_dir):
    for d in (build_dir, os.path.join(HERE, "..", "..", "build-bench")):
        p = os.path.join(d, "tests", "bench", "tocsin-wsload")
        if os.access(p, os.X_OK):
            return p
    sys.exit(f"fanout: tocsin-wsload is not built under {build_dir}/tests/bench")


def stop(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="tocsin-bench-")
        self.redis = None
        self.kafka = None
        self.tocsind = None
        self.gens = []
        self.port = None

    def start_servers(self):
        build = self.args.build_dir
        self.redis = RedisServer().start()
        self.kafka = DevKafka(partitions=4).start()
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        env.update({
            "TOCSIN_HTTP_LISTEN": f"127.0.0.1:{self.port}",
            "TOCSIN_KAFKA_BROKERS": self.kafka.bootstrap,
            "TOCSIN_REDIS_URL": self.redis.url,
            "TOCSIN_LOG_LEVEL": "warn",
        })
        self.tocsind_log = os.path.join(self.tmp, "tocsind.log")
        with open(self.tocsind_log, "wb") as logf:
            # preexec_fn: tocsind needs one fd per session, so it gets the
            # hard limit as its soft limit (the machine's is 20,000).
            self.tocsind = subprocess.Popen([os.path.join(build, "tocsind")], env=env,
                                            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                            preexec_fn=raise_nofile)

        def ready():
            if self.tocsind.poll() is not None:
                return "exited"
            try:
                return http_get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)[0] == 200
            except OSError:
                return False

        if wait_until(ready, 60, interval=0.2, what="tocsind /readyz") == "exited":
            raise RuntimeError(f"tocsind exited {self.tocsind.returncode}: {self.log_tail()}")
        soft, hard = proc_nofile(self.tocsind.pid)
        log(f"tocsind pid {self.tocsind.pid} on port {self.port}, RLIMIT_NOFILE {soft}/{hard}")
        if soft.isdigit() and int(soft) < self.args.sessions + 100:
            log(f"warning: tocsind may open only {soft} files, fewer than the sessions asked")

    def log_tail(self, n=30):
        try:
            with open(self.tocsind_log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start_generators(self, wsload):
        a = self.args
        procs = a.procs or max(1, math.ceil(a.sessions / MAX_PER_PROC))
        per = [a.sessions // procs + (1 if i < a.sessions % procs else 0) for i in range(procs)]
        if max(per) > MAX_PER_PROC:
            raise SystemExit(f"fanout: {max(per)} sessions per process is over {MAX_PER_PROC}")
        self.connect_bound = a.sessions / a.connect_rate + 30
        duration = self.connect_bound + a.deliver_timeout + 30
        url = f"ws://127.0.0.1:{self.port}/v1/ws?components={a.component}"
        for i, n in enumerate(per):
            ready = os.path.join(self.tmp, f"ready.{i}")
            samples = os.path.join(self.tmp, f"samples.{i}")
            cmd = [wsload, "--url", url, "--sessions", str(n), "--source-ips", SOURCE_IPS,
                   "--connect-rate", f"{a.connect_rate / procs:.1f}", "--expect", str(a.updates),
                   "--duration", f"{duration:.0f}", "--ready-file", ready,
                   "--samples-file", samples]
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=open(os.path.join(self.tmp, f"wsload.{i}.log"), "wb"))
            self.gens.append({"proc": p, "n": n, "ready": ready, "samples": samples})
        log(f"{procs} generator process(es): {per} sessions, {a.connect_rate}/s in all")

    def wait_ready(self):
        def all_ready():
            for g in self.gens:
                if g["proc"].poll() is not None and not os.path.exists(g["ready"]):
                    return "exited"
            return all(os.path.exists(g["ready"]) for g in self.gens)

        if wait_until(all_ready, self.connect_bound, interval=0.1,
                      what="generators' ready files") == "exited":
            raise RuntimeError("a generator exited before its sessions were ready")
        ready = failed = 0
        for g in self.gens:
            with open(g["ready"]) as f:
                r = json.load(f)
            ready += r["ready"]
            failed += r["failed"]
        return ready, failed

    def publish(self):
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": self.kafka.bootstrap, "linger.ms": 0, "acks": "all"})
        incident = uid("bench")
        errors = []

        def on_delivery(err, _msg):
            if err is not None:
                errors.append(err)

        for v in range(1, self.args.updates + 1):
            ev = event(incident, v, impact="major", components=(self.args.component,),
                       title=f"bench update {v}")
            ev["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            ev["bench_ts_us"] = int(time.time() * 1e6)
            p.produce("tocsin.incidents", key=incident.encode(), value=json.dumps(ev).encode(),
                      on_delivery=on_delivery)
            p.poll(0)
        left = p.flush(10)
        if left or errors:
            raise RuntimeError(f"produce failed: {left} unsent, errors {errors}")

    def collect(self):
        results = []
        deadline = time.monotonic() + self.args.deliver_timeout + 30
        for g in self.gens:
            try:
                out, _ = g["proc"].communicate(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                g["proc"].send_signal(signal.SIGTERM)  # it prints its result on SIGTERM
                out, _ = g["proc"].communicate(timeout=10)
            line = out.decode().strip().splitlines()
            if not line:
                raise RuntimeError(f"a generator printed nothing (exit {g['proc'].returncode})")
            results.append(json.loads(line[-1]))
        return results

    def run(self):
        a = self.args
        soft, hard = raise_nofile()
        log(f"own RLIMIT_NOFILE {soft}/{hard}")
        wsload = find_wsload(a.build_dir)
        self.start_servers()
        time.sleep(1)  # let the consumer join its group before we measure
        rss0 = proc_status(self.tocsind.pid, "VmRSS")
        t0 = time.monotonic()
        self.start_generators(wsload)
        ready, failed = self.wait_ready()
        connect_s = time.monotonic() - t0
        time.sleep(a.settle)
        rss1 = proc_status(self.tocsind.pid, "VmRSS")
        log(f"{ready} sessions ready ({failed} failed) in {connect_s:.1f}s; "
            f"tocsind RSS {rss0} kB -> {rss1} kB")
        perf = self.start_perf()
        cpu0 = proc_cpu_s(self.tocsind.pid)
        self.publish()
        results = self.collect()
        cpu1 = proc_cpu_s(self.tocsind.pid)
        self.stop_perf(perf)
        return self.summarize(results, ready, connect_s, rss0, rss1, cpu1 - cpu0)

    def start_perf(self):
        """perf record -g on tocsind over the delivery phase only (--perf)."""
        if not self.args.perf:
            return None
        out = os.path.join(self.tmp, "perf.data")
        perf = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "4999", "-o", out,
                                 "-p", str(self.tocsind.pid)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        time.sleep(1)  # perf needs a moment to attach before the publish
        log(f"perf recording tocsind into {out}")
        return perf

    def stop_perf(self, perf):
        if perf is None:
            return
        perf.send_signal(signal.SIGINT)  # perf writes its file on SIGINT
        try:
            perf.wait(timeout=30)
        except subprocess.TimeoutExpired:
            perf.kill()
            perf.wait(timeout=5)

    def summarize(self, results, ready, connect_s, rss0, rss1, cpu_s):
        a = self.args
        lat = []
        for g in self.gens:
            with open(g["samples"]) as f:
                lat.extend(int(x) for x in f if x.strip())
        lat.sort()

        def pct(q):
            return lat[int((len(lat) - 1) * q)] / 1000.0 if lat else float("nan")

        firsts = [r["first_ts_us"] for r in results if r["first_ts_us"]]
        lasts = [r["last_rx_us"] for r in results if r["last_rx_us"]]
        frx = [r["first_rx_us"] for r in results if r.get("first_rx_us")]
        last_ms = (max(lasts) - min(firsts)) / 1000.0 if firsts and lasts else float("nan")
        first_ms = (min(frx) - min(firsts)) / 1000.0 if firsts and frx else float("nan")
        # From the first session's first update to the last session's last:
        # tocsind's fan-out alone, without the publish -> ingest latency.
        spread_ms = (max(lasts) - min(frx)) / 1000.0 if frx and lasts else float("nan")
        updates = sum(r["updates"] for r in results)
        s = {
            "sessions": a.sessions,
            "ready": ready,
            "updates_per_session": a.updates,
            "deliveries": updates,
            "complete": sum(r["sessions_done"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "last_ms": last_ms,
            "first_ms": first_ms,
            "spread_ms": spread_ms,
            "spread_deliveries_per_s": updates / (spread_ms / 1000.0) if spread_ms > 0 else float("nan"),
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
            "max_ms": lat[-1] / 1000.0 if lat else float("nan"),
            "deliveries_per_s": updates / (last_ms / 1000.0) if last_ms > 0 else float("nan"),
            "rss_idle_kb": rss1 - rss0 if rss0 and rss1 else None,
            "rss_per_session_kb": (rss1 - rss0) / ready if ready and rss0 and rss1 else None,
            "connect_rate": ready / connect_s if connect_s > 0 else float("nan"),
            "tocsind_cpu_s": cpu_s,
        }
        return s


def table(s):
    def f(x, d=1):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"

    rows = [
        ("sessions (ready)", f"{s['sessions']} ({s['ready']})"),
        ("updates per session", str(s["updates_per_session"])),
        ("deliveries (sessions with all)", f"{s['deliveries']} ({s['complete']})"),
        ("errors", str(s["errors"])),
        ("time to first client (ms)", f(s["first_ms"])),
        ("time to last client (ms)", f(s["last_ms"])),
        ("fan-out spread, first to last client (ms)", f(s["spread_ms"])),
        ("latency p50 / p99 / max (ms)", f"{f(s['p50_ms'])} / {f(s['p99_ms'])} / {f(s['max_ms'])}"),
        ("deliveries/s (sessions / time to last client)", f(s["deliveries_per_s"], 0)),
        ("deliveries/s within the spread", f(s["spread_deliveries_per_s"], 0)),
        ("tocsind CPU during delivery (s)", f(s["tocsind_cpu_s"], 2)),
        ("RSS per idle session (KB)", f(s["rss_per_session_kb"], 2)),
        ("connect rate (sessions/s)", f(s["connect_rate"], 0)),
    ]
    out = ["| figure | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="tocsin WebSocket fan-out benchmark")
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--procs", type=int, default=0,
                    help=f"generator processes (default: sessions / {MAX_PER_PROC}, rounded up)")
    ap.add_argument("--updates", type=int, default=1, help="events published one after another")
    ap.add_argument("--connect-rate", type=float, default=2000, help="new sessions per second, in all")
    ap.add_argument("--component", default="bench")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds between all sessions ready and the RSS reading + publish")
    ap.add_argument("--deliver-timeout", type=float, default=60,
                    help="seconds the updates have to reach every session")
    ap.add_argument("--build-dir", default=os.environ.get("TOCSIN_BUILD_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")))
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, samples)")
    ap.add_argument("--perf", action="store_true",
                    help="perf record -g tocsind during the delivery phase (implies --keep)")
    args = ap.parse_args()
    args.keep = args.keep or args.perf
    helpers.BUILD_DIR = args.build_dir  # DevKafka finds tocsin-devkafka there
    if args.sessions < 1 or args.updates < 1 or args.connect_rate <= 0:
        ap.error("--sessions, --updates and --connect-rate must be positive")

    b = Bench(args)
    rc = 1
    try:
        s = b.run()
        print(table(s))
        if args.json:
            print(json.dumps(s))
        rc = 0 if s["errors"] == 0 and s["complete"] == args.sessions else 1
    except Exception as e:  # report, then clean up below
        log(f"failed: {e}")
        if b.tocsind is not None:
            log("tocsind log tail:\n" + b.log_tail())
    finally:
        for g in b.gens:
            stop(g["proc"])
        stop(b.tocsind, timeout=15)
        if b.kafka is not None:
            b.kafka.stop()
        if b.redis is not None:
            b.redis.cleanup()
        if args.keep or rc != 0:
            log(f"logs and samples kept in {b.tmp}")
        else:
            shutil.rmtree(b.tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
