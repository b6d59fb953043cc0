#!/usr/bin/python3
# tocsin — SPDX-License-Identifier: MIT
#
# The scenarios of issue 6, one subcommand each, each printing one Markdown
# table: fanout (one update at a time to 5k / 10k / 19k sessions, repeated),
# idle (tocsind RSS per idle session), burst (a paced stream of events to
# sessions with mixed filters, every delivery checked), storm (every session
# drops and resumes with since + epoch at once) and ingest (Kafka -> Redis
# script -> history, no sessions). Each run starts its own redis-server,
# tocsin-devkafka and tocsind (benchlib.Stack) and stops them on the way out;
# every wait is bounded. Run with Debian's /usr/bin/python3.

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import benchlib  # noqa: E402  (also puts tests/e2e on sys.path)
from benchlib import (DEFAULT_BUILD_DIR, Generators, Plan, Stack,  # noqa: E402
                      checked_bad, cpu_precise_s, find_wsload, fmt, md_table, pct, proc_status,
                      guarded, raise_nofile, warm_up)
from helpers import HarnessError, event, uid  # noqa: E402

def log(msg):
    print(f"scenarios: {msg}", file=sys.stderr, flush=True)


def ms(us):
    return us / 1000.0


def sizes(text):
    out = [int(x) for x in text.split(",") if x.strip()]
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError("want a comma-separated list of positive integers")
    return out


def lat_figures(lat):
    return {"p50_ms": ms(pct(lat, 0.5)), "p99_ms": ms(pct(lat, 0.99)),
            "max_ms": ms(lat[-1]) if lat else float("nan")}


class Run:
    """One scenario run: a stack in its own temp dir, generators, cleanup."""

    def __init__(self, a, name, fsync="always"):
        self.a = a
        self.tmp = os.path.join(a.top, name)
        os.makedirs(self.tmp, exist_ok=True)
        self.stack = Stack(a.build_dir, tmp=self.tmp, log=log, fsync=fsync,
                           nodes=getattr(a, "nodes", 1))
        self.gens = None

    def __enter__(self):
        self.stack.start_servers(getattr(self.a, "sessions_max", 0))
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            tail = self.stack.log_tail(20)
            if tail:
                log(f"tocsind log tail:\n{tail}")
        if self.gens is not None:
            self.gens.stop()
        self.stack.stop_servers()
        return False

    def generators(self, sessions, query="", extra=(), expect=0, idle=False, hold_s=0):
        a = self.a
        bound = sessions / a.connect_rate + 30
        extra = list(extra) + (["--idle"] if idle else [])
        self.gens = Generators(a.wsload, self.stack.ws_url(query), self.tmp, sessions,
                               a.connect_rate, bound + a.deliver_timeout + hold_s + 60,
                               expect=expect, procs=a.procs, extra=extra)
        t0 = time.monotonic()
        r = self.gens.wait_ready()
        connect_s = time.monotonic() - t0
        log(f"{r['ready']} sessions ready ({r['failed']} failed) in {connect_s:.1f}s "
            f"over {len(self.gens.per)} process(es)")
        return r["ready"], connect_s

    def tocsind_cpu(self):
        return sum(cpu_precise_s(p) for p in self.stack.pids())

    def gens_cpu(self):
        return sum(cpu_precise_s(p) for p in self.gens.pids())

    def redis_cpu(self):
        return cpu_precise_s(self.stack.redis.proc.pid)

    def rss_kb(self):
        return sum(proc_status(p, "VmRSS") for p in self.stack.pids())


# -------------------------------------------------------------------- fanout


def fanout_one(a, sessions):
    with Run(a, f"fanout-{sessions}") as run:
        _, pub = warm_up(run.stack)
        time.sleep(a.settle)
        rss0 = run.rss_kb()
        ready, connect_s = run.generators(sessions, "components=bench", expect=a.trials)
        time.sleep(a.settle)
        rss1 = run.rss_kb()
        cpu0 = run.tocsind_cpu()
        incident = uid("fanout")
        t0 = time.monotonic()
        for v in range(1, a.trials + 1):
            delay = t0 + (v - 1) * a.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pub.send(event(incident, v, impact="major", components=("bench",)))
            pub.p.flush(5)
        pub.flush()
        run.gens.wait_done(a.deliver_timeout)
        cpu1 = run.tocsind_cpu()
        m = benchlib.merge(run.gens.collect())
        lat = run.gens.samples()
    per = m["per_update"][:a.trials]
    last = sorted(ms(p[2] - p[0]) for p in per)
    spread = sorted(ms(p[2] - p[1]) for p in per)
    r = {"sessions": sessions, "ready": ready, "trials": a.trials, "updates": m["updates"],
         "sessions_done": m["sessions_done"], "bad": checked_bad(m),
         "last_p50_ms": pct(last, 0.5), "last_p99_ms": pct(last, 0.99),
         "last_max_ms": last[-1] if last else float("nan"),
         "spread_p50_ms": pct(spread, 0.5), "spread_p99_ms": pct(spread, 0.99),
         "spread_deliveries_per_s": ready / (pct(spread, 0.5) / 1000.0) if spread else 0,
         "cpu_us_per_delivery": (cpu1 - cpu0) * 1e6 / m["updates"] if m["updates"] else 0,
         "rss_per_session_kb": (rss1 - rss0) / ready if ready else float("nan"),
         "connect_rate": ready / connect_s if connect_s else 0}
    r.update(lat_figures(lat))
    r["ok"] = not r["bad"] and m["sessions_done"] == sessions and len(per) == a.trials
    return r


def cmd_fanout(a):
    rows, out = [], []
    for n in a.sessions:
        log(f"fanout: {n} sessions, {a.trials} single updates {a.interval}s apart")
        r = fanout_one(a, n)
        out.append(r)
        rows.append([f"{fmt(n)} ({fmt(r['ready'])})", r["trials"],
                     f"{fmt(r['last_p50_ms'])} / {fmt(r['last_p99_ms'])} / "
                     f"{fmt(r['last_max_ms'])}",
                     f"{fmt(r['spread_p50_ms'])} / {fmt(r['spread_p99_ms'])}",
                     f"{fmt(r['p50_ms'])} / {fmt(r['p99_ms'])}",
                     fmt(r["spread_deliveries_per_s"], 0), fmt(r["cpu_us_per_delivery"], 2),
                     fmt(r["rss_per_session_kb"], 2), r["bad"] or "none"])
    print(md_table(["sessions (ready)", "updates", "time to last delivery p50 / p99 / max (ms)",
                    "fan-out spread p50 / p99 (ms)", "delivery latency p50 / p99 (ms)",
                    "deliveries/s within the spread (p50)", "tocsind µs CPU / delivery",
                    "RSS KB / idle session", "errors"], rows))
    return out


# ---------------------------------------------------------------------- idle


def cmd_idle(a):
    rows, out = [], []
    for n in a.sessions:
        with Run(a, f"idle-{n}") as run:
            warm_up(run.stack)
            time.sleep(a.settle)
            rss0 = run.rss_kb()
            ready, connect_s = run.generators(n, "components=bench", idle=True)
            time.sleep(a.settle)
            rss1 = run.rss_kb()
            fds = benchlib.proc_fds(run.stack.tocsind.pid)
            m = benchlib.merge(run.gens.collect())
        r = {"sessions": n, "ready": ready, "rss0_kb": rss0, "rss1_kb": rss1, "fds": fds,
             "rss_per_session_kb": (rss1 - rss0) / ready if ready else float("nan"),
             "connect_rate": ready / connect_s if connect_s else 0, "bad": checked_bad(m)}
        r["ok"] = ready == n and not r["bad"]
        out.append(r)
        rows.append([f"{fmt(n)} ({fmt(ready)})", fmt(rss0), fmt(rss1),
                     fmt(r["rss_per_session_kb"], 2), fmt(fds), fmt(r["connect_rate"], 0),
                     r["bad"] or "none"])
    print(md_table(["sessions (ready)", "tocsind RSS before (kB)", "with every session idle (kB)",
                    "KB / idle session", "tocsind open files", "connects/s", "errors"], rows))
    return out


# --------------------------------------------------------------------- burst


def cmd_burst(a):
    n_events = int(a.rate * a.seconds)
    with Run(a, "burst") as run:
        _, pub = warm_up(run.stack)
        filters = os.path.join(run.tmp, "filters")
        plan = Plan(uid("burst"), a.groups)
        plan.write_filters(filters, n_events)
        ready, _ = run.generators(a.sessions, extra=["--filters", filters, "--check"],
                                  hold_s=a.seconds)
        expect = plan.expected_deliveries(run.gens, n_events)
        log(f"burst: {n_events} events at {a.rate}/s over {len(plan.filters)} filters; "
            f"{expect} deliveries expected")
        cpu0, rcpu0, t0 = run.tocsind_cpu(), run.redis_cpu(), time.monotonic()
        gcpu0 = run.gens_cpu()
        pub.paced(plan, n_events, a.rate)
        pub.flush()
        try:
            run.gens.wait_done(a.deliver_timeout)
        except (HarnessError, RuntimeError) as e:
            log(f"burst: not every session got every update: {e}")
        wall = time.monotonic() - t0
        cpu1, rcpu1, gcpu1 = run.tocsind_cpu(), run.redis_cpu(), run.gens_cpu()
        m = benchlib.merge(run.gens.collect())
        lat = run.gens.samples()
    span_s = (m["last_rx_us"] - m["first_ts_us"]) / 1e6 if m["first_ts_us"] else float("nan")
    r = {"sessions": a.sessions, "ready": ready, "events": n_events, "rate": a.rate,
         "expected": expect, "deliveries": m["updates"], "sessions_done": m["sessions_done"],
         "deliveries_per_s": m["updates"] / span_s if span_s > 0 else float("nan"),
         "tocsind_cpu_s": cpu1 - cpu0, "tocsind_cpu_pct": 100 * (cpu1 - cpu0) / wall,
         "redis_cpu_s": rcpu1 - rcpu0, "span_s": span_s, "bad": checked_bad(m),
         "generator_cpu_pct": 100 * (gcpu1 - gcpu0) / wall / len(run.gens.per),
         "samples_dropped": m["samples_dropped"]}
    r.update(lat_figures(lat))
    r["ok"] = not r["bad"] and m["updates"] == expect and m["sessions_done"] == a.sessions
    print(md_table(["figure", "value"], [
        ("sessions (ready) / filters", f"{fmt(a.sessions)} ({fmt(ready)}) / {len(plan.filters)}"),
        ("events (rate × seconds)", f"{fmt(n_events)} ({a.rate:g}/s × {a.seconds:g} s)"),
        ("deliveries / expected (sessions with all)",
         f"{fmt(m['updates'])} / {fmt(expect)} ({fmt(m['sessions_done'])})"),
        ("latency p50 / p99 / max (ms)",
         f"{fmt(r['p50_ms'])} / {fmt(r['p99_ms'])} / {fmt(r['max_ms'])}"),
        ("deliveries/s (first publish → last delivery)", fmt(r["deliveries_per_s"], 0)),
        ("first publish → last delivery (s)", fmt(span_s, 2)),
        ("errors, gaps, duplicates, foreign, 1013 closes", r["bad"] or "none"),
        ("tocsind CPU (s, % of one core)",
         f"{fmt(r['tocsind_cpu_s'], 2)} ({fmt(r['tocsind_cpu_pct'], 0)} %)"),
        ("redis-server CPU (s)", fmt(r["redis_cpu_s"], 2)),
        ("generator busy (% of one core per process)", fmt(r["generator_cpu_pct"], 0)),
    ]))
    return [r]


# --------------------------------------------------------------------- storm


class RedisSampler(threading.Thread):
    """INFO every interval: peak connected clients and ops/s while it runs."""

    def __init__(self, client, interval=0.05):
        super().__init__(daemon=True)
        self.client = client
        self.interval = interval
        self.halt = threading.Event()
        self.peak_clients = 0
        self.peak_ops = 0

    def run(self):
        while not self.halt.is_set():
            try:
                info = self.client.info()
                self.peak_clients = max(self.peak_clients, info["connected_clients"])
                self.peak_ops = max(self.peak_ops, info["instantaneous_ops_per_sec"])
            except Exception:  # a sample lost is not a failure of the storm
                pass
            self.halt.wait(self.interval)


def commandstats(client):
    return {k.replace("cmdstat_", ""): v["calls"]
            for k, v in client.info("commandstats").items()}


def cmd_storm(a):
    n_before, n_during = a.before, a.during
    with Run(a, "storm") as run:
        seq0, pub = warm_up(run.stack)
        filters = os.path.join(run.tmp, "filters")
        plan = Plan(uid("storm"), a.groups)
        plan.write_filters(filters, n_before + n_during)
        ready, _ = run.generators(a.sessions, extra=["--filters", filters, "--check",
                                                     "--drop-after", "1"])
        for _ in range(n_before):
            pub.send(plan.next_event())
        pub.flush()
        run.gens.wait_dropped(a.deliver_timeout)
        log(f"storm: {ready} sessions dropped; {n_during} events published in the gap")
        for _ in range(n_during):
            pub.send(plan.next_event())
        pub.flush()
        run.stack.wait_seq(seq0 + n_before + n_during, a.deliver_timeout)
        time.sleep(a.settle)  # tocsind has seen every close
        rc = run.stack.redis.client()
        info0, cs0 = rc.info(), commandstats(rc)
        sampler = RedisSampler(run.stack.redis.client())
        sampler.start()
        cpu0 = run.tocsind_cpu()
        t0 = time.time()
        run.gens.signal(signal.SIGUSR1)
        try:
            run.gens.wait_done(a.deliver_timeout)
        except (HarnessError, RuntimeError) as e:
            log(f"storm: not every session caught up: {e}")
        t_done = time.time()
        cpu1 = run.tocsind_cpu()
        sampler.halt.set()
        sampler.join(5)
        info1, cs1 = rc.info(), commandstats(rc)
        m = benchlib.merge(run.gens.collect())
        expect = plan.expected_deliveries(run.gens, n_before + n_during)
    trigger_us = m["trigger_us"] or int(t0 * 1e6)
    caught_ms = ms(m["caught_up_us"] - int(t0 * 1e6)) if m["caught_up_us"] else float("nan")
    welcome_ms = ms(m["rewelcome_us"] - int(t0 * 1e6)) if m["rewelcome_us"] else float("nan")
    cmds = int(info1["total_commands_processed"] - info0["total_commands_processed"])
    # The sampler's own INFO calls are in the count: leave them out.
    deltas = {k: v - cs0.get(k, 0) for k, v in cs1.items() if v - cs0.get(k, 0) > 0}
    deltas.pop("info", None)
    top = ", ".join(f"{k} {v}" for k, v in sorted(deltas.items(), key=lambda x: -x[1])[:6])
    window = t_done - t0
    edges = [f"≤{e:,}" for e in benchlib.CATCHUP_EDGES_MS] + ["later"]
    catchup = ", ".join(f"{e}: {fmt(n)}" for e, n in zip(edges, m["catchup_hist"]) if n)
    r = {"sessions": a.sessions, "ready": ready, "before": n_before, "during": n_during,
         "expected": expect, "deliveries": m["updates"], "reconnects": m["reconnects"],
         "rewelcomed": m["rewelcomed"], "sessions_done": m["sessions_done"],
         "signal_skew_ms": ms(trigger_us - int(t0 * 1e6)), "welcome_ms": welcome_ms,
         "caught_up_ms": caught_ms, "bad": checked_bad(m), "redis_commands": cmds,
         "redis_commands_no_info": sum(deltas.values()), "redis_top": top or "none",
         "redis_peak_clients": sampler.peak_clients, "redis_peak_ops": sampler.peak_ops,
         "tocsind_cpu_s": cpu1 - cpu0, "window_s": window, "catchup": catchup,
         "catchup_hist": m["catchup_hist"]}
    r["ok"] = (not r["bad"] and m["sessions_done"] == a.sessions and m["updates"] == expect
               and m["rewelcomed"] == a.sessions)
    print(md_table(["figure", "value"], [
        ("sessions (ready) / filters", f"{fmt(a.sessions)} ({fmt(ready)}) / {len(plan.filters)}"),
        ("events before the drop / in the gap", f"{n_before} / {n_during}"),
        ("reconnects (welcomed again)", f"{fmt(m['reconnects'])} ({fmt(m['rewelcomed'])})"),
        ("deliveries / expected (sessions caught up)",
         f"{fmt(m['updates'])} / {fmt(expect)} ({fmt(m['sessions_done'])})"),
        ("signal → every session welcomed again (ms)", fmt(welcome_ms)),
        ("**signal → every session caught up (ms)**", f"**{fmt(caught_ms)}**"),
        ("sessions caught up within … ms of the signal", r["catchup"]),
        ("errors, gaps, duplicates, foreign, resets", r["bad"] or "none"),
        ("tocsind CPU during the storm (s)", fmt(r["tocsind_cpu_s"], 2)),
        ("Redis commands during the storm (without our INFO)",
         f"{fmt(cmds)} ({fmt(r['redis_commands_no_info'])}): {r['redis_top']}"),
        ("Redis peak connected clients / ops/s", f"{sampler.peak_clients} / "
                                                  f"{fmt(sampler.peak_ops)}"),
    ]))
    return [r]


# -------------------------------------------------------------------- ingest


def ingest_one(a, fsync):
    with Run(a, f"ingest-{fsync}", fsync=fsync) as run:
        seq0, pub = warm_up(run.stack)
        tag = uid("ingest")
        evs = []
        for k in range(a.events):
            evs.append(event(f"{tag}-{k % a.incidents}", k // a.incidents + 1,
                             components=("ingest",), title=f"ingest {k}"))
        cpu0, rcpu0 = run.tocsind_cpu(), run.redis_cpu()
        t0 = time.monotonic()
        for ev in evs:
            while True:
                try:
                    pub.send(ev)
                    break
                except BufferError:  # the producer's queue is full: let it drain
                    pub.p.poll(0.05)
        pub.flush(60)
        t_produced = time.monotonic()
        t_end = run.stack.wait_seq(seq0 + a.events, a.deliver_timeout, interval=0.01)
        cpu1, rcpu1 = run.tocsind_cpu(), run.redis_cpu()
        time.sleep(a.settle)  # a late retry would show as one more seq
        mt = run.stack.metrics()
        seq1 = run.stack.hub_seq()
    wall = t_end - t0

    def metric(name):
        return int(mt.get(name, 0))

    r = {"fsync": fsync, "events": a.events, "incidents": a.incidents, "seqs": seq1 - seq0,
         # An event whose script timed out on tocsind's side but ran in Redis
         # comes back as a duplicate on the retry: stored once, as it must.
         "accepted": metric('tocsin_events_total{result="accepted"}') - 1,  # the warm-up
         "duplicates": metric('tocsin_events_total{result="duplicate"}'),
         "redis_timeouts": metric("tocsin_redis_timeouts_total"),
         "pauses": metric("tocsin_ingest_pauses_total"),
         "produce_s": t_produced - t0, "wall_s": wall, "events_per_s": a.events / wall,
         "tocsind_cpu_us": (cpu1 - cpu0) * 1e6 / a.events,
         "redis_cpu_us": (rcpu1 - rcpu0) * 1e6 / a.events}
    # Exactly one seq per event: none lost, none stored twice.
    r["ok"] = r["seqs"] == a.events
    return r


def cmd_ingest(a):
    out = [ingest_one(a, f) for f in a.fsync]
    base = out[0]["events_per_s"]
    rows = [[f"`{r['fsync']}`", fmt(r["events"]), fmt(r["seqs"]),
             f"{fmt(r['accepted'])} / {fmt(r['duplicates'])}",
             f"{fmt(r['redis_timeouts'])} / {fmt(r['pauses'])}", fmt(r["produce_s"], 2),
             fmt(r["wall_s"], 2), f"{fmt(r['events_per_s'], 0)} "
             f"({r['events_per_s'] / base:.2f}×)", fmt(r["tocsind_cpu_us"], 1),
             fmt(r["redis_cpu_us"], 1)] for r in out]
    print(md_table(["appendfsync", "events", "seqs assigned", "accepted / duplicate (retried)",
                    "Redis timeouts / ingest pauses", "produced in (s)",
                    "first produce → hub seq at the end (s)", "events/s (ratio to the first)",
                    "tocsind µs CPU / event", "Redis µs CPU / event"], rows))
    return out


# ---------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description="tocsin benchmark scenarios (issue 6)")
    ap.add_argument("--build-dir", default=DEFAULT_BUILD_DIR)
    ap.add_argument("--procs", type=int, default=0,
                    help="generator processes (default: sessions / 19,000, rounded up)")
    ap.add_argument("--connect-rate", type=float, default=2000, help="new sessions/s in all")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before memory readings")
    ap.add_argument("--deliver-timeout", type=float, default=120,
                    help="seconds the updates have to reach every session")
    ap.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, samples)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fanout", help="single updates to N sessions, repeated")
    p.add_argument("--sessions", type=sizes, default=sizes("5000,10000,19000"))
    p.add_argument("--trials", type=int, default=20, help="single updates, one at a time")
    p.add_argument("--interval", type=float, default=0.3, help="seconds between two updates")
    p.add_argument("--nodes", type=int, default=1,
                   help="tocsind processes sharing the port (http.reuse_port); CPU and RSS "
                        "are their sums")
    p = sub.add_parser("idle", help="tocsind RSS per idle session")
    p.add_argument("--sessions", type=sizes, default=sizes("10000,19000"))
    p = sub.add_parser("burst", help="paced events to sessions with mixed filters")
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--rate", type=float, default=100, help="events per second")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--groups", type=int, default=1,
                   help="copies of the 16 incidents and filters on their own components: "
                        "each session gets 1/groups of the events")
    p = sub.add_parser("storm", help="every session drops and resumes with since at once")
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--before", type=int, default=16, help="events before the drop")
    p.add_argument("--during", type=int, default=64, help="events while the sessions are away")
    p.add_argument("--groups", type=int, default=1, help="as for burst")
    p = sub.add_parser("ingest", help="events/s through Kafka -> Redis -> history, no sessions")
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--incidents", type=int, default=100)
    p.add_argument("--fsync", type=lambda s: s.split(","), default=["always", "everysec"],
                   help="Redis appendfsync settings, one row each (always,everysec)")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    sess = a.sessions if isinstance(getattr(a, "sessions", 0), list) else [getattr(a, "sessions", 0)]
    a.sessions_max = max(sess)
    if getattr(a, "trials", 1) < 1 or getattr(a, "events", 1) < 1 or a.connect_rate <= 0:
        ap.error("--trials, --events and --connect-rate must be positive")
    if a.cmd in ("burst", "storm") and not 1 <= a.groups <= 16:
        ap.error("--groups: 1 to 16")
    if a.cmd == "storm" and a.before < 16 * a.groups:
        ap.error(f"--before must be at least {16 * a.groups}: every filter gets one update")
    if a.cmd == "burst" and (a.rate <= 0 or a.seconds <= 0):
        ap.error("--rate and --seconds must be positive")
    soft, hard = raise_nofile()  # the servers and generators inherit it
    log(f"RLIMIT_NOFILE {soft}/{hard}")
    a.wsload = find_wsload(a.build_dir) if a.cmd != "ingest" else None
    a.top = tempfile.mkdtemp(prefix=f"tocsin-{a.cmd}-")

    def body():
        rows = {"fanout": cmd_fanout, "idle": cmd_idle, "burst": cmd_burst, "storm": cmd_storm,
                "ingest": cmd_ingest}[a.cmd](a)
        if a.json:
            print(json.dumps(rows))
        return all(r["ok"] for r in rows)

    return guarded(log, a.top, a.keep, body)


if __name__ == "__main__":
    sys.exit(main())
