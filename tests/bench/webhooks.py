#!/usr/bin/python3
# tocsin — SPDX-License-Identifier: MIT
#
# The webhook delivery benchmark: starts its own redis-server (AOF,
# appendfsync always), tocsin-devkafka and tocsind, one tocsin-whsink
# listening on N loopback ports, creates one webhook endpoint per port, then
# publishes K events over M incidents and measures how fast the K x N
# deliveries arrive, their latency, and the CPU tocsind and Redis spent per
# delivery. Every wait is bounded and every process it started is stopped on
# the way out. Run with Debian's /usr/bin/python3.

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import helpers  # noqa: E402
from benchlib import find_bench_binary, proc_cpu_s, stop  # noqa: E402
from helpers import DevKafka, RedisServer, Tocsind, event, uid, wait_until  # noqa: E402
from webhook_receiver import TOKEN, create  # noqa: E402


def log(msg):
    print(f"webhooks: {msg}", file=sys.stderr, flush=True)


def find_sink(build_dir):
    return find_bench_binary(build_dir, "tocsin-whsink")


def start_sink(sink, workdir, endpoints, expect, linger=0.5, duration=0, log_file=None, extra=()):
    """Starts tocsin-whsink on `endpoints` ports the kernel picks; returns
    (process, ports) once it listens. stdout is a pipe: its last line is the
    summary."""
    ready = os.path.join(workdir, "whsink.ready")
    cmd = [sink, "--count", str(endpoints), "--ready", ready, "--expect", str(expect),
           "--linger", str(linger)]
    if duration:
        cmd += ["--duration", f"{duration:.0f}"]
    if log_file:
        cmd += ["--log", log_file]
    cmd += list(extra)
    with open(os.path.join(workdir, "whsink.log"), "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
    try:
        wait_until(lambda: os.path.exists(ready) or proc.poll() is not None, 10,
                   what="tocsin-whsink's ready file")
        if not os.path.exists(ready):
            raise RuntimeError(f"tocsin-whsink exited {proc.returncode} before it listened")
    except BaseException:
        stop(proc)
        raise
    with open(ready) as f:
        return proc, json.load(f)["ports"]


def sink_result(proc, timeout):
    """Waits up to timeout for the sink to reach --expect, else stops it
    (it prints its summary on SIGTERM too); returns the summary."""
    try:
        out, _ = proc.communicate(timeout=max(1, timeout))
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    lines = out.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(f"tocsin-whsink printed nothing (exit {proc.returncode})")
    return json.loads(lines[-1])


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="tocsin-whbench-")
        self.redis = None
        self.kafka = None
        self.tocsind = None
        self.sink = None

    def start_servers(self):
        # Each is assigned before its start(), so the cleanup also stops one
        # that never got ready.
        self.redis = RedisServer()
        self.redis.start()
        self.kafka = DevKafka(partitions=4).start()  # it stops itself if it fails
        self.tocsind = Tocsind(self.tmp, self.redis, self.kafka, env={
            "TOCSIN_LOG_LEVEL": "warn",
            "TOCSIN_ADMIN_TOKEN": TOKEN,
            # The receivers are on loopback, which the address guard refuses otherwise.
            "TOCSIN_WEBHOOK_ALLOW_PRIVATE": "true",
        })
        self.tocsind.start()
        log(f"tocsind pid {self.tocsind.proc.pid} on port {self.tocsind.port}, redis-server pid "
            f"{self.redis.proc.pid}")

    def publish(self):
        """Event i goes to incident i % incidents (its next version), so
        each (endpoint, incident) queue, which is served in order, gets
        events / incidents jobs. Returns the first event's bench_ts_us."""
        from confluent_kafka import Producer

        a = self.args
        p = Producer({"bootstrap.servers": self.kafka.bootstrap, "linger.ms": 0, "acks": "all"})
        incidents = [uid("whbench") for _ in range(a.incidents)]
        errors = []
        first = None

        def on_delivery(err, _msg):
            if err is not None:
                errors.append(err)

        occurred = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for i in range(a.events):
            inc = incidents[i % a.incidents]
            version = i // a.incidents + 1
            ev = event(inc, version, impact="major", components=("bench",),
                       title=f"bench event {i}", occurred_at=occurred)
            ev["bench_ts_us"] = int(time.time() * 1e6)
            first = first or ev["bench_ts_us"]
            p.produce("tocsin.incidents", key=inc.encode(), value=json.dumps(ev).encode(),
                      on_delivery=on_delivery)
            p.poll(0)
        left = p.flush(30)
        if left or errors:
            raise RuntimeError(f"produce failed: {left} unsent, errors {errors[:5]}")
        return first

    def webhook_failures(self):
        """tocsind's tocsin_webhook_failures_total, summed over reasons."""
        return int(sum(v for k, v in self.tocsind.metrics().items()
                       if k.startswith("tocsin_webhook_failures_total")))

    def run(self):
        a = self.args
        sink = find_sink(a.build_dir)
        self.start_servers()
        expect = a.events * a.endpoints
        bound = a.deliver_timeout + 60
        self.sink, ports = start_sink(sink, self.tmp, a.endpoints, expect, linger=a.linger,
                                      duration=bound)
        # One event before any endpoint exists: once it is stored, the
        # consumer has joined its group and Redis has its script, so neither
        # is timed below.
        self.kafka.produce(event(uid("whbench-warm"), 1, components=("warm",)))
        self.tocsind.wait_metric('tocsin_events_total{result="accepted"}', 1, timeout=60)
        for p in ports:
            create(self.tocsind, f"http://127.0.0.1:{p}/hook", filter={}, description="bench")
        log(f"{len(ports)} endpoints, one port each; publishing {a.events} "
            f"events over {a.incidents} incidents = {expect} deliveries")
        pids = {"tocsind": self.tocsind.proc.pid, "redis": self.redis.proc.pid}
        cpu0 = {k: proc_cpu_s(p) for k, p in pids.items()}
        first_ts = self.publish()
        r = sink_result(self.sink, a.deliver_timeout)
        cpu1 = {k: proc_cpu_s(p) for k, p in pids.items()}
        self.sink = None
        return self.summarize(r, first_ts, expect,
                              {k: cpu1[k] - cpu0[k] for k in pids}, self.webhook_failures())

    def summarize(self, r, first_ts, expect, cpu, failures):
        a = self.args
        d = r["deliveries"]

        def ms(x, y):
            return (x - y) / 1000.0 if x and y else float("nan")

        last_ms = ms(r["last_rx_us"], first_ts)
        spread_ms = ms(r["last_rx_us"], r["first_rx_us"])
        per_port = list(r["per_port"].values())
        return {
            "endpoints": a.endpoints,
            "events": a.events,
            "incidents": a.incidents,
            "expected": expect,
            "deliveries": d,
            "endpoints_complete": sum(1 for n in per_port if n == a.events),
            "duplicates": r["duplicates"],
            "retries": r["retries"],
            "failed_answers": r["failed_answers"],
            "bad_requests": r["bad_requests"],
            "tocsind_failures": failures,
            "connections": r["connections"],
            "close_requests": r["close_requests"],
            "first_ms": ms(r["first_rx_us"], first_ts),
            "last_ms": last_ms,
            "spread_ms": spread_ms,
            "deliveries_per_s": d / (last_ms / 1000.0) if last_ms > 0 else float("nan"),
            "spread_deliveries_per_s": d / (spread_ms / 1000.0) if spread_ms > 0 else float("nan"),
            "p50_ms": r["p50_ms"],
            "p99_ms": r["p99_ms"],
            "max_ms": r["max_ms"],
            "tocsind_cpu_s": cpu["tocsind"],
            "tocsind_cpu_us_per_delivery": cpu["tocsind"] * 1e6 / d if d else float("nan"),
            "redis_cpu_s": cpu["redis"],
            "redis_cpu_us_per_delivery": cpu["redis"] * 1e6 / d if d else float("nan"),
            "sink_cpu_s": r["cpu_s"],
            "sink_timed_out": not r["done"],
        }


def table(s):
    def f(x, d=1):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{d}f}"

    rows = [
        ("endpoints x events (incidents)", f"{s['endpoints']} x {s['events']} ({s['incidents']})"),
        ("deliveries (expected)", f"{s['deliveries']} ({s['expected']})"),
        ("endpoints that got every event", f"{s['endpoints_complete']}"),
        ("duplicates / bad requests", f"{s['duplicates']} / {s['bad_requests']}"),
        ("tocsind webhook failures (metrics)", str(s["tocsind_failures"])),
        ("connections opened to the sink / requests with Connection: close",
         f"{s['connections']} / {s['close_requests']}"),
        ("time to first delivery (ms)", f(s["first_ms"])),
        ("time to last delivery (ms)", f(s["last_ms"])),
        ("delivery spread, first to last (ms)", f(s["spread_ms"])),
        ("deliveries/s (first publish to last delivery)", f(s["deliveries_per_s"], 0)),
        ("deliveries/s within the spread", f(s["spread_deliveries_per_s"], 0)),
        ("latency p50 / p99 / max (ms)", f"{f(s['p50_ms'])} / {f(s['p99_ms'])} / {f(s['max_ms'])}"),
        ("tocsind CPU (s) / per delivery (us)",
         f"{f(s['tocsind_cpu_s'], 2)} / {f(s['tocsind_cpu_us_per_delivery'])}"),
        ("redis-server CPU (s) / per delivery (us)",
         f"{f(s['redis_cpu_s'], 2)} / {f(s['redis_cpu_us_per_delivery'])}"),
        ("tocsin-whsink CPU (s)", f(s["sink_cpu_s"], 2)),
    ]
    out = ["| figure | value |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out)


def main():
    default_build = os.path.join(HERE, "..", "..", "build")
    ap = argparse.ArgumentParser(description="tocsin webhook delivery benchmark")
    ap.add_argument("--endpoints", type=int, default=100, help="webhook endpoints, one port each")
    ap.add_argument("--events", type=int, default=100, help="events published, each to every endpoint")
    ap.add_argument("--incidents", type=int, default=20,
                    help="incidents the events are spread over, round-robin (per endpoint and "
                         "incident deliveries are serial)")
    ap.add_argument("--deliver-timeout", type=float, default=120,
                    help="seconds every delivery has to arrive")
    ap.add_argument("--linger", type=float, default=0.5,
                    help="seconds the sink waits after the last delivery for late duplicates")
    ap.add_argument("--build-dir", default=os.environ.get("TOCSIN_BUILD_DIR", default_build))
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    helpers.BUILD_DIR = args.build_dir  # DevKafka finds tocsin-devkafka there
    if min(args.endpoints, args.events, args.incidents) < 1 or args.endpoints > 1024:
        ap.error("--endpoints (at most 1024), --events and --incidents must be positive")

    # SIGTERM unwinds like Ctrl-C, through the finally below that stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = Bench(args)
    rc = 1
    try:
        s = b.run()
        print(table(s))
        if args.json:
            print(json.dumps(s))
        ok = (s["deliveries"] == s["expected"] and s["duplicates"] == 0 and
              s["bad_requests"] == 0 and s["endpoints_complete"] == args.endpoints)
        rc = 0 if ok else 1
    except Exception as e:  # report, then clean up below
        log(f"failed: {e}")
        if b.tocsind is not None:
            log("tocsind log tail:\n" + b.tocsind.log_tail(30))
    finally:
        stop(b.sink)
        if b.tocsind is not None:
            b.tocsind.cleanup()
        if b.kafka is not None:
            b.kafka.stop()
        if b.redis is not None:
            b.redis.cleanup()
        if args.keep or rc != 0:
            log(f"logs kept in {b.tmp}")
        else:
            shutil.rmtree(b.tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
