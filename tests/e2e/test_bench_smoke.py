# tocsin — SPDX-License-Identifier: MIT
#
# Smoke test of the fan-out benchmark's generator (tests/bench/wsload.c)
# against a real tocsind: 50 sessions from two source addresses, 5 events,
# every session must get all 5 updates with their bench_ts_us timed, and no
# session may fail. Keeps the benchmark honest as tocsind changes.

import json
import os
import signal
import subprocess
import time

import pytest

from helpers import binary, event, uid, wait_until

SESSIONS = 50
UPDATES = 5


@pytest.mark.timeout(120)
def test_bench_generator_gets_every_update(tocsind, kafka, tmp_path):
    wsload = binary(os.path.join("tests", "bench", "tocsin-wsload"))
    component = uid("bench")
    incident = uid("inc-bench")
    ready = tmp_path / "ready"
    samples = tmp_path / "samples"
    proc = subprocess.Popen(
        [wsload, "--url", f"{tocsind.ws_url}/v1/ws?components={component}",
         "--sessions", str(SESSIONS), "--expect", str(UPDATES), "--duration", "60",
         "--connect-rate", "500", "--source-ips", "127.0.0.2,127.0.0.3",
         "--ready-file", str(ready), "--samples-file", str(samples)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: ready.exists() or proc.poll() is not None, 30,
                   what="the generator's ready file")
        assert ready.exists(), f"generator exited {proc.returncode} before ready"
        assert json.loads(ready.read_text()) == {"ready": SESSIONS, "failed": 0}

        published = []
        for v in range(1, UPDATES + 1):
            ts = int(time.time() * 1e6)
            published.append(ts)
            kafka.produce(event(incident, v, components=(component,), bench_ts_us=ts), flush=False)
        kafka.flush()

        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)

    lines = out.decode().strip().splitlines()
    assert lines, f"generator printed nothing; stderr: {err.decode()[-2000:]}"
    r = json.loads(lines[-1])
    diag = f"{r} / stderr: {err.decode()[-2000:]}"
    assert proc.returncode == 0, diag
    assert r["connected"] == SESSIONS and r["ready"] == SESSIONS, diag
    assert r["updates"] == SESSIONS * UPDATES, diag
    assert r["sessions_done"] == SESSIONS, diag
    assert r["errors"] == 0 and r["server_closes"] == 0, diag
    # Every delivery was timed from a bench_ts_us that went through tocsind.
    lat = [int(x) for x in samples.read_text().split()]
    assert len(lat) == SESSIONS * UPDATES, diag
    assert r["first_ts_us"] == published[0], diag
    assert 0 <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] < 30000, diag
    assert r["last_rx_us"] >= published[-1], diag
