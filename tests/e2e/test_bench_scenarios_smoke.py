# tocsin — SPDX-License-Identifier: MIT
#
# Smoke tests of the issue 6 scenarios (tests/bench/scenarios.py) and the
# soak test (tests/bench/soak.py) on tiny sizes, each against its own real
# redis-server, tocsin-devkafka and tocsind: every scenario runs, prints its
# table and checks what it claims (every delivery counted, no gap). And the
# generator's checks themselves: a gap, a duplicate and a foreign incident
# published on purpose are each reported, so a clean run means something.

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import BUILD_DIR, binary, event, uid, wait_until

BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench")


def run_script(name, args, bound):
    """Runs a bench script with --json; returns (exit code, its JSON, diag)."""
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, os.path.join(BENCH, name), "--build-dir", BUILD_DIR]
                       + args, stdin=subprocess.DEVNULL, capture_output=True, timeout=bound + 60)
    elapsed = time.monotonic() - t0
    out, err = r.stdout.decode(), r.stderr.decode()
    diag = f"exit {r.returncode} after {elapsed:.1f}s\n{out}\nstderr: {err[-3000:]}"
    lines = [ln for ln in out.splitlines() if ln.startswith(("[", "{"))]
    assert lines, diag
    assert elapsed < bound, diag
    assert any(ln.startswith("| ") for ln in out.splitlines()), diag  # the Markdown table
    return r.returncode, json.loads(lines[-1]), diag


@pytest.mark.timeout(150)
def test_burst_checks_every_delivery():
    rc, rows, diag = run_script("scenarios.py", ["--json", "burst", "--sessions", "48",
                                                 "--rate", "20", "--seconds", "2"], 60)
    assert rc == 0, diag
    (r,) = rows
    assert r["ok"] and r["bad"] == "", diag
    # 40 events over 16 incidents: every filter matched some, none matched all.
    assert 0 < r["expected"] < 48 * 40 and r["deliveries"] == r["expected"], diag
    assert r["sessions_done"] == 48, diag
    assert 0 <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] < 30000, diag


@pytest.mark.timeout(150)
def test_storm_resumes_every_session_with_since():
    rc, rows, diag = run_script("scenarios.py", ["--json", "--settle", "0.3", "storm",
                                                 "--sessions", "50", "--during", "32"], 60)
    assert rc == 0, diag
    (r,) = rows
    assert r["reconnects"] == 50 and r["rewelcomed"] == 50, diag
    assert r["deliveries"] == r["expected"] and r["sessions_done"] == 50, diag
    assert r["bad"] == "", diag
    assert 0 < r["caught_up_ms"] < 30000, diag
    assert sum(r["catchup_hist"]) == 50, diag  # every session timed from the signal


@pytest.mark.timeout(150)
def test_fanout_rows_per_size_with_repeated_updates():
    rc, rows, diag = run_script("scenarios.py", ["--json", "--settle", "0.3", "fanout",
                                                 "--sessions", "20,40", "--trials", "3",
                                                 "--interval", "0.1"], 60)
    assert rc == 0, diag
    assert [r["sessions"] for r in rows] == [20, 40], diag
    for r in rows:
        assert r["ok"] and r["updates"] == r["sessions"] * 3, diag
        assert 0 < r["last_p50_ms"] <= r["last_p99_ms"] <= r["last_max_ms"] < 30000, diag
        # 20-40 sessions of ~2 KB each are within RSS's page-sized noise:
        # only that the figure is there (test_idle_memory_row checks it).
        assert r["rss_per_session_kb"] >= 0, diag


@pytest.mark.timeout(150)
def test_idle_memory_row():
    rc, rows, diag = run_script("scenarios.py", ["--json", "--settle", "0.5", "idle",
                                                 "--sessions", "60"], 60)
    assert rc == 0, diag
    (r,) = rows
    assert r["ready"] == 60 and r["rss1_kb"] > r["rss0_kb"] > 0, diag
    assert r["fds"] >= 60, diag


@pytest.mark.timeout(150)
def test_ingest_rows_for_both_fsync_settings():
    rc, rows, diag = run_script("scenarios.py", ["--json", "ingest", "--events", "300",
                                                 "--incidents", "10"], 90)
    assert rc == 0, diag
    assert [r["fsync"] for r in rows] == ["always", "everysec"], diag
    for r in rows:
        assert r["seqs"] == 300 and r["events_per_s"] > 0, diag
        assert r["accepted"] + r["duplicates"] >= 300, diag


@pytest.mark.timeout(200)
def test_soak_short_run_passes_with_churn():
    rc, res, diag = run_script("soak.py", ["--json", "--minutes", "0.15", "--sessions", "60",
                                           "--rate", "20", "--churn", "100", "--groups", "1",
                                           "--sample-every", "1"], 90)
    assert rc == 0, diag
    assert res["ok"] and "**verdict: PASS**" in diag, diag
    m = res["merged"]
    # 100 % per minute of 60 sessions for 9 s: some resumed with since.
    assert m["reconnects"] > 0 and m["updates"] == res["expect"], diag
    assert len(res["rows"]) >= 4, diag


@pytest.mark.timeout(120)
def test_generator_reports_gap_duplicate_and_foreign(tocsind, kafka, tmp_path):
    """One session, filter components=X; bench_c counters 1, 3 (gap), a
    missing key (foreign), 3 again (duplicate)."""
    wsload = binary(os.path.join("tests", "bench", "tocsin-wsload"))
    comp = uid("chk")
    incident = uid("inc-chk")
    filters = tmp_path / "filters"
    filters.write_text(f"4 components={comp}\n")
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [wsload, "--url", f"{tocsind.ws_url}/v1/ws", "--sessions", "1", "--filters",
         str(filters), "--check", "--duration", "60", "--ready-file", str(ready)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: ready.exists() or proc.poll() is not None, 30, what="ready file")
        assert ready.exists(), f"generator exited {proc.returncode}"
        for v, ctrs in enumerate(({"i": 0, "0": 1}, {"i": 0, "0": 3}, {"i": 0, "7": 1},
                                  {"i": 0, "0": 3}), start=1):
            kafka.produce(event(incident, v, components=(comp,), bench_c=ctrs,
                                bench_ts_us=int(time.time() * 1e6)), flush=False)
        kafka.flush()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)
    r = json.loads(out.decode().strip().splitlines()[-1])
    diag = f"{r} / stderr: {err.decode()[-2000:]}"
    assert r["updates"] == 4 and r["sessions_done"] == 1, diag
    assert (r["gaps"], r["foreign"], r["dups"]) == (1, 1, 1), diag
    assert proc.returncode == 1, diag  # what it found is a failure
