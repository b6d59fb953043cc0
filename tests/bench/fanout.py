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
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402  (also puts tests/e2e on sys.path)
from benchlib import (MAX_PER_PROC, Generators, Stack, find_wsload,  # noqa: E402,F401
                      proc_cpu_s, proc_status, raise_nofile)
from helpers import HarnessError, event, uid  # noqa: E402


def log(msg):
    print(f"fanout: {msg}", file=sys.stderr, flush=True)


class Bench(Stack):
    """The fan-out run on benchlib's stack (peers.py runs tocsind through it)."""

    def __init__(self, args):
        super().__init__(os.path.abspath(args.build_dir), log=log,
                         nodes=getattr(args, "nodes", 1))
        self.args = args
        self.gens = None
        self.pub = None

    def start_servers(self):
        super().start_servers(self.args.sessions)

    def warm_up(self):
        """Waits for the consumer group to settle and for one warm-up event
        (benchlib.warm_up); its producer publishes the timed updates too: a
        new librdkafka producer's first message waited ~1 s now and then
        against tocsin-devkafka, which would be timed as the fan-out's."""
        _, self.pub = benchlib.warm_up(self)

    def publish(self):
        incident = uid("bench")
        for v in range(1, self.args.updates + 1):
            ev = event(incident, v, impact="major", components=(self.args.component,),
                       title=f"bench update {v}")
            ev["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            self.pub.send(ev)  # stamps bench_ts_us just before its produce
        self.pub.flush(10)

    def run(self):
        a = self.args
        soft, hard = raise_nofile()
        log(f"own RLIMIT_NOFILE {soft}/{hard}")
        wsload = find_wsload(a.build_dir)
        self.start_servers()
        self.warm_up()
        rss0 = proc_status(self.tocsind.pid, "VmRSS")
        t0 = time.monotonic()
        connect_bound = a.sessions / a.connect_rate + 30
        self.gens = Generators(wsload, self.ws_url(f"components={a.component}"), self.tmp,
                               a.sessions, a.connect_rate,
                               connect_bound + a.deliver_timeout + 30, expect=a.updates,
                               procs=a.procs)
        log(f"{len(self.gens.per)} generator process(es): {self.gens.per} sessions, "
            f"{a.connect_rate}/s in all")
        r = self.gens.wait_ready()
        ready, failed = r["ready"], r["failed"]
        connect_s = time.monotonic() - t0
        time.sleep(a.settle)
        rss1 = proc_status(self.tocsind.pid, "VmRSS")
        log(f"{ready} sessions ready ({failed} failed) in {connect_s:.1f}s; "
            f"tocsind RSS {rss0} kB -> {rss1} kB")
        perf = self.start_perf()
        cpu0 = proc_cpu_s(self.tocsind.pid)
        self.publish()
        try:
            self.gens.wait_done(a.deliver_timeout)
        except (HarnessError, RuntimeError) as e:
            log(f"not every session got every update: {e}")
        cpu1 = proc_cpu_s(self.tocsind.pid)
        results = self.gens.collect()
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
        lat = self.gens.samples()

        def pct(q):
            return benchlib.pct(lat, q) / 1000.0

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
        if b.gens is not None:
            b.gens.stop()
        b.stop_servers()
        if args.keep or rc != 0:
            log(f"logs and samples kept in {b.tmp}")
        else:
            shutil.rmtree(b.tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
