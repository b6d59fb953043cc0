# tocsin — SPDX-License-Identifier: MIT
#
# Smoke test of the side-by-side fan-out benchmark (tests/bench/peers.py): 50
# sessions and 3 updates against tocsind (one process, and two sharing the
# port) and every peer installed here (nginx + nchan with 1 and 2 workers,
# Node.js + ws). One peers.py run, bounded to 50 s, serves every case; a peer whose package is absent is skipped with the
# reason peers.py gives. Keeps the comparison runnable as tocsind changes.

import json
import os
import subprocess
import sys
import time

import pytest

from helpers import BUILD_DIR

# As the rows name them (--peers tocsind-x2 is "tocsind ×2 (reuse_port)").
PEERS = ("tocsind", "tocsind ×2 (reuse_port)", "nchan-1w", "nchan-2w", "node")
SESSIONS = 50
UPDATES = 3
BOUND_S = 50
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "peers.py")


@pytest.fixture(scope="module")
def peers_run():
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, SCRIPT, "--build-dir", BUILD_DIR, "--sessions", str(SESSIONS),
         "--updates", str(UPDATES), "--settle", "0.3", "--pause", "0.3",
         "--deliver-timeout", "15", "--json"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=BOUND_S + 30)
    elapsed = time.monotonic() - t0
    out, err = r.stdout.decode(), r.stderr.decode()
    lines = out.strip().splitlines()
    assert lines, f"peers.py printed nothing (exit {r.returncode}); stderr: {err[-3000:]}"
    runs = {x["peer"]: x for x in json.loads(lines[-1])}
    return {"rc": r.returncode, "elapsed": elapsed, "runs": runs, "out": out, "err": err}


def _diag(run):
    return f"exit {run['rc']}, {run['elapsed']:.1f}s\n{run['out']}\nstderr: {run['err'][-3000:]}"


@pytest.mark.timeout(120)
def test_peers_run_is_bounded_and_prints_one_table(peers_run):
    diag = _diag(peers_run)
    assert peers_run["rc"] == 0, diag
    assert peers_run["elapsed"] < BOUND_S, diag
    assert set(peers_run["runs"]) == set(PEERS), diag
    table = [ln for ln in peers_run["out"].splitlines() if ln.startswith("| ")]
    assert table[0].startswith("| peer |") and len(table) == 1 + len(PEERS), diag
    ran = [p for p in PEERS if peers_run["runs"][p]["status"] == "ran"]
    if "tocsind" in ran and len(ran) > 1:
        # Every other system's figures carry their ratio to tocsind's.
        rows = {ln.split("|")[1].strip(): ln for ln in table[1:]}
        for p in ran:
            assert ("×" in rows[p]) == (p != "tocsind"), diag


@pytest.mark.timeout(120)
@pytest.mark.parametrize("peer", PEERS)
def test_peer_gets_every_update(peers_run, peer):
    r = peers_run["runs"][peer]
    if r["status"] == "skipped":
        pytest.skip(f"{peer}: {r['reason']}")
    diag = f"{r}\n{_diag(peers_run)}"
    assert r["status"] == "ran", diag
    assert r["ready"] == SESSIONS and r["complete"] == SESSIONS, diag
    assert r["deliveries"] == SESSIONS * UPDATES and r["errors"] == 0, diag
    assert 0 <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] < 15000, diag
    assert 0 <= r["spread_ms"] <= r["last_ms"] < 15000, diag
    assert r["deliveries_per_s"] > 0 and r["cpu_us_per_delivery"] >= 0, diag
    assert r["kb_per_session"] is not None, diag
    assert r["ok"], diag


@pytest.mark.timeout(120)
def test_rounds_interleave_systems_and_compare_them_round_by_round():
    """--rounds 2: every system twice, the second round starting one system
    later; one median row per system, a row per round, and for each tocsind
    row its ratio over each peer in every round where both ran."""
    r = subprocess.run(
        [sys.executable, SCRIPT, "--build-dir", BUILD_DIR, "--sessions", "20", "--updates", "1",
         "--peers", "tocsind,nchan-1w", "--rounds", "2", "--settle", "0.2", "--pause", "0.2",
         "--deliver-timeout", "15", "--json"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=100)
    out, err = r.stdout.decode(), r.stderr.decode()
    diag = f"exit {r.returncode}\n{out}\nstderr: {err[-3000:]}"
    assert r.returncode == 0, diag
    runs = json.loads(out.strip().splitlines()[-1])
    order = [(x["round"], x["peer"]) for x in runs]
    assert order == [(1, "tocsind"), (1, "nchan-1w"), (2, "nchan-1w"), (2, "tocsind")], diag
    tables = [ln for ln in out.splitlines() if ln.startswith("| ")]
    assert [ln.split("|")[1].strip() for ln in tables] == [
        "peer", "tocsind", "nchan-1w", "round", "1", "2"], diag
    if all(x["status"] == "ran" for x in runs):
        line = next(ln for ln in out.splitlines() if ln.startswith("- tocsind over nchan-1w"))
        per_round = line.split("round by round: ")[1].split("; median")[0].split(", ")
        assert len(per_round) == 2 and "of 2 rounds" in line, diag
        assert all(float(x.rstrip("×")) > 0 for x in per_round), diag
    else:
        assert any(x["status"] == "skipped" and x["peer"] == "nchan-1w" for x in runs), diag
