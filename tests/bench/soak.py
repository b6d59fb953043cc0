#!/usr/bin/python3
# tocsin — SPDX-License-Identifier: MIT
#
# The soak test (issue 7): --minutes at --rate events/s to --sessions
# WebSocket sessions with mixed filters, while --churn percent of them per
# minute drop and resume with since + epoch. Every 10 s it samples tocsind's
# RSS, open files and sessions; at the end every session must have got every
# matching update once, in order, without a gap (tocsin-wsload --check), and
# tocsind's log must hold no warn or error line. Prints the samples, the
# figures and a verdict; exits 1 on a failure. Starts its own redis-server,
# tocsin-devkafka and tocsind (benchlib.Stack) and stops them on the way out.
# Run with Debian's /usr/bin/python3.

import argparse
import json
import os
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402  (also puts tests/e2e on sys.path)
from benchlib import (DEFAULT_BUILD_DIR, Generators, Plan, Stack,  # noqa: E402
                      checked_bad, find_wsload, fmt, md_table, pct, proc_fds,
                      guarded, proc_status, raise_nofile, warm_up)
from helpers import HarnessError, uid  # noqa: E402

# Samples printed at most: a longer run prints every k-th (the verdict uses all).
MAX_ROWS = 60


def log(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def log_problems(path):
    """warn and error lines of tocsind's log (logfmt level=...)."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if "level=warn" in line or "level=error" in line:
                    out.append(line.rstrip())
    except OSError:
        pass
    return out


class Sampler(threading.Thread):
    """Every interval: elapsed s, tocsind RSS (kB), open files, sessions and
    hub seq from /metrics, warn/error lines so far."""

    def __init__(self, stack, interval):
        super().__init__(daemon=True)
        self.stack = stack
        self.interval = interval
        self.halt = threading.Event()
        self.rows = []
        self.t0 = time.monotonic()

    def sample(self):
        pid = self.stack.tocsind.pid
        try:
            mt = self.stack.metrics()
        except Exception:  # tocsind not answering is what the row shows
            mt = {}
        row = {"t": time.monotonic() - self.t0, "rss_kb": proc_status(pid, "VmRSS"),
               "fds": proc_fds(pid), "sessions": mt.get('tocsin_sessions{channel="ws"}'),
               "seq": mt.get("tocsin_hub_seq"),
               "problems": len(log_problems(self.stack.tocsind_log))}
        self.rows.append(row)
        return row

    def run(self):
        while not self.halt.wait(self.interval):
            self.sample()


def verdict(a, m, expect, rows, problems, alive):
    """problems: warn/error lines logged after the sessions were ready (a
    line from start-up, such as ingest pausing until Redis answers, is not
    the soak's)."""
    checks = []
    checks.append(("tocsind alive to the end", alive, "" if alive else "it exited"))
    checks.append(("every session got every matching update",
                   m["sessions_done"] == a.sessions and m["updates"] == expect,
                   f"{m['sessions_done']} of {a.sessions} sessions complete, "
                   f"{m['updates']} of {expect} deliveries"))
    bad = checked_bad({k: v for k, v in m.items() if k != "server_closes"})
    checks.append(("no gap, duplicate, foreign incident, reset or error", not bad,
                   bad or "none"))
    checks.append(("no warn or error line in tocsind's log during the soak", not problems,
                   f"{len(problems)}" + (f", first: {problems[0][:200]}" if problems else "")))
    live = [r for r in rows if r["rss_kb"]]
    if len(live) >= 4:
        # The reference is a quarter into the run: sessions, buffers and the
        # replay ring are warm by then. Growth beyond it is what a leak does.
        ref = live[len(live) // 4]
        last = live[-1]
        limit = ref["rss_kb"] * (1 + a.max_rss_growth / 100) + 4096
        checks.append(("RSS steady after the first quarter", last["rss_kb"] <= limit,
                       f"{ref['rss_kb']} kB at {ref['t']:.0f}s -> {last['rss_kb']} kB at "
                       f"{last['t']:.0f}s (limit {limit:.0f} kB)"))
        fd_limit = ref["fds"] + a.sessions // 100 + 20
        checks.append(("open files steady (no fd leak)", last["fds"] <= fd_limit,
                       f"{ref['fds']} -> {last['fds']} (limit {fd_limit})"))
    else:
        checks.append(("RSS and open files sampled", False,
                       f"only {len(live)} samples: run longer than 4 sample intervals"))
    return all(ok for _, ok, _ in checks), checks


def run(a):
    n_events = int(a.rate * a.minutes * 60)
    stack = Stack(a.build_dir, tmp=a.top, log=log)
    gens = sampler = None
    try:
        stack.start_servers(a.sessions)
        _, pub = warm_up(stack)
        filters = os.path.join(a.top, "filters")
        plan = Plan(uid("soak"), a.groups)
        plan.write_filters(filters, n_events)
        bound = a.sessions / a.connect_rate + 30
        gens = Generators(a.wsload, stack.ws_url(), a.top, a.sessions, a.connect_rate,
                          bound + a.minutes * 60 + a.deliver_timeout + 60, procs=a.procs,
                          extra=["--filters", filters, "--check", "--churn", f"{a.churn:g}",
                                 "--resume-on-close"])
        r = gens.wait_ready()
        expect = plan.expected_deliveries(gens, n_events)
        log(f"{r['ready']} sessions ready ({r['failed']} failed); {n_events} events at "
            f"{a.rate:g}/s for {a.minutes:g} min, churn {a.churn:g} %/min; "
            f"{expect} deliveries expected")
        sampler = Sampler(stack, a.sample_every)
        startup_lines = len(log_problems(stack.tocsind_log))
        sampler.sample()
        sampler.start()
        stopping = threading.Event()
        took = pub.paced(plan, n_events, a.rate, stop_flag=stopping.is_set)
        pub.flush()
        log(f"published {pub.sent - 1} events in {took:.1f}s")
        try:
            gens.wait_done(a.deliver_timeout)
        except (HarnessError, RuntimeError) as e:
            log(f"not every session got every update: {e}")
        sampler.halt.set()
        sampler.join(10)
        sampler.sample()
        alive = stack.tocsind.poll() is None
        # Before the shutdown's own lines; after start-up's.
        problems = log_problems(stack.tocsind_log)[startup_lines:]
        m = benchlib.merge(gens.collect())
        lat = gens.samples()
        m["p50_ms"], m["p99_ms"] = pct(lat, 0.5) / 1000.0, pct(lat, 0.99) / 1000.0
        ok, checks = verdict(a, m, expect, sampler.rows, problems, alive)
        return {"ok": ok, "checks": checks, "rows": sampler.rows, "merged": m,
                "expect": expect, "events": n_events, "ready": r["ready"],
                "filters": len(plan.filters)}
    finally:
        if sampler is not None:
            sampler.halt.set()
        if gens is not None:
            gens.stop()
        stack.stop_servers()


def print_report(a, res):
    rows = res["rows"]
    step = max(1, -(-len(rows) // MAX_ROWS))
    shown = rows[::step] + ([rows[-1]] if (len(rows) - 1) % step else [])
    print(md_table(["t (s)", "tocsind RSS (kB)", "open files", "sessions", "hub seq",
                    "warn/error lines (with start-up's)"],
                   [[f"{r['t']:.0f}", fmt(r["rss_kb"]), fmt(r["fds"]),
                     fmt(int(r["sessions"])) if r["sessions"] is not None else "n/a",
                     fmt(int(r["seq"])) if r["seq"] is not None else "n/a", r["problems"]]
                    for r in shown]))
    print()
    m = res["merged"]
    print(md_table(["figure", "value"], [
        ("sessions (ready) / filters", f"{fmt(a.sessions)} ({fmt(res['ready'])}) / {res['filters']}"),
        ("events (rate × minutes)", f"{fmt(res['events'])} ({a.rate:g}/s × {a.minutes:g})"),
        ("deliveries / expected", f"{fmt(m['updates'])} / {fmt(res['expect'])}"),
        ("resumes by churn / after a server close", f"{fmt(m['reconnects'] - m['resumed_closes'])}"
                                                     f" / {fmt(m['resumed_closes'])}"),
        ("latency p50 / p99 / max (ms; a resumed session's replay counts from the publish)",
         f"{fmt(m['p50_ms'])} / {fmt(m['p99_ms'])} / {fmt(m['max_ms'])}"),
    ]))
    print()
    print(md_table(["check", "result", "detail"],
                   [[c, "pass" if ok else "**FAIL**", d] for c, ok, d in res["checks"]]))
    print()
    print(f"**verdict: {'PASS' if res['ok'] else 'FAIL'}**")


def main():
    ap = argparse.ArgumentParser(description="tocsin soak test (issue 7)")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=200, help="events per second")
    ap.add_argument("--churn", type=float, default=5,
                    help="percent of the sessions that drop and resume with since per minute")
    ap.add_argument("--groups", type=int, default=16,
                    help="copies of the 16 incidents and filters on their own components "
                         "(1 to 16): each session gets about 1 event in 7 × groups")
    ap.add_argument("--sample-every", type=float, default=10, help="seconds between samples")
    ap.add_argument("--max-rss-growth", type=float, default=25,
                    help="percent (+ 4 MB) RSS may grow after the first quarter of the run")
    ap.add_argument("--procs", type=int, default=0)
    ap.add_argument("--connect-rate", type=float, default=2000)
    ap.add_argument("--deliver-timeout", type=float, default=120,
                    help="seconds after the last publish for every session to catch up")
    ap.add_argument("--build-dir", default=DEFAULT_BUILD_DIR)
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    a = ap.parse_args()
    if (a.minutes <= 0 or a.sessions < 1 or a.rate <= 0 or a.churn < 0 or a.sample_every <= 0
            or a.connect_rate <= 0 or not 1 <= a.groups <= 16):
        ap.error("--minutes, --sessions, --rate, --sample-every, --connect-rate must be > 0, "
                 "--groups 1 to 16")
    a.build_dir = os.path.abspath(a.build_dir)
    soft, hard = raise_nofile()
    log(f"RLIMIT_NOFILE {soft}/{hard}")
    a.wsload = find_wsload(a.build_dir)
    a.top = tempfile.mkdtemp(prefix="tocsin-soak-")

    def body():
        res = run(a)
        print_report(a, res)
        if a.json:
            print(json.dumps({k: v for k, v in res.items() if k != "checks"}
                             | {"checks": [list(c) for c in res["checks"]]}))
        return res["ok"]

    return guarded(log, a.top, a.keep, body)


if __name__ == "__main__":
    sys.exit(main())
