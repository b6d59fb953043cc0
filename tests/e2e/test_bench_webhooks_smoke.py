# tocsin — SPDX-License-Identifier: MIT
#
# Smoke test of the webhook benchmark's receiver (tests/bench/whsink.c, driven
# the way tests/bench/webhooks.py drives it) against a real tocsind: 5
# endpoints on 5 sink ports, 20 events over 4 incidents. Every one of the 100
# deliveries must arrive exactly once, signed, in order per endpoint and
# incident, and timed from its bench_ts_us. Keeps the benchmark honest as the
# deliverer changes.

import json
import os
import sys
import time

import pytest

from helpers import binary, event, uid
from webhook_receiver import create, start, verify

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from benchlib import stop  # noqa: E402
from webhooks import sink_result, start_sink  # noqa: E402

ENDPOINTS = 5
EVENTS = 20
INCIDENTS = 4


@pytest.mark.timeout(30)
def test_bench_sink_gets_every_delivery_once(tocsind_factory, kafka, tmp_path):
    sink = binary(os.path.join("tests", "bench", "tocsin-whsink"))
    t = start(tocsind_factory)
    log_file = tmp_path / "requests.jsonl"
    expect = ENDPOINTS * EVENTS
    proc, ports = start_sink(sink, str(tmp_path), ENDPOINTS, expect, linger=0.5, duration=30,
                             log_file=str(log_file))
    try:
        assert len(ports) == ENDPOINTS and all(p > 0 for p in ports), ports
        endpoints = {p: create(t, f"http://127.0.0.1:{p}/hook", filter={}) for p in ports}
        incidents = [uid("inc-whbench") for _ in range(INCIDENTS)]
        published = []
        for i in range(EVENTS):
            published.append(event(incidents[i % INCIDENTS], i // INCIDENTS + 1,
                                   bench_ts_us=int(time.time() * 1e6)))
        kafka.produce_all(published)
        r = sink_result(proc, 20)
    finally:
        stop(proc)
    err = (tmp_path / "whsink.log").read_text(errors="replace")
    diag = f"{r} / sink stderr: {err[-2000:]}"
    assert proc.returncode == 0, diag
    assert r["done"] and r["deliveries"] == expect and r["requests"] == expect, diag
    assert r["duplicates"] == 0 and r["retries"] == 0 and r["bad_requests"] == 0, diag
    assert r["no_id"] == 0 and r["partial_at_close"] == 0, diag
    assert r["per_port"] == {str(p): EVENTS for p in ports}, diag
    # Every delivery was timed from a bench_ts_us that went through tocsind.
    assert r["lat_samples"] == expect, diag
    assert r["min_ts_us"] == published[0]["bench_ts_us"], diag
    assert 0 <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"] < 30000, diag
    assert r["last_rx_us"] >= published[-1]["bench_ts_us"], diag

    # The request log: each (endpoint, event) once, signed with that
    # endpoint's secret, its webhook-id "<seq>-<endpoint id>", and per
    # endpoint and incident in version order.
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert len(lines) == expect
    seen = set()
    last_version = {}
    for rec in lines:
        ep = endpoints[rec["port"]]
        body = rec["body"].encode("latin-1")  # whsink escapes every byte >= 0x80 as \u00XX
        headers = {"webhook-id": rec["id"], "webhook-timestamp": rec["timestamp"],
                   "webhook-signature": rec["signature"]}
        assert verify(ep["secret"], headers, body), rec
        doc = json.loads(body)
        inc = doc["incident"]
        assert rec["id"] == f"{doc['seq']}-{ep['id']}", rec
        key = (rec["port"], inc["incident_id"], inc["version"])
        assert key not in seen, f"delivered twice: {key}"
        seen.add(key)
        assert inc["version"] > last_version.get(key[:2], 0), f"out of order: {key}"
        last_version[key[:2]] = inc["version"]
    want = {(p, ev["incident_id"], ev["version"]) for p in ports for ev in published}
    assert seen == want
