# tocsin — SPDX-License-Identifier: MIT
#
# The plain HTTP surface (DESIGN §4, §7): health and readiness, Prometheus
# metrics, the incidents API with ETag / If-None-Match, and the Origin check
# of WebSocket and SSE sessions.

import json

import pytest

from clients import Sse, Ws, run, ws_handshake_status
from helpers import event, uid, wait_until


def test_healthz_and_readyz(tocsind):
    assert tocsind.get("/healthz")[0] == 200
    assert tocsind.get("/readyz")[0] == 200


def test_unknown_path_is_404(tocsind):
    assert tocsind.get("/v1/no-such-thing")[0] == 404


def test_metrics_prometheus_text(tocsind):
    status, headers, body = tocsind.get("/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain"), headers
    text = body.decode()
    for name in ('tocsin_events_total{result="accepted"}', 'tocsin_events_total{result="duplicate"}',
                 'tocsin_dlq_messages_total', "# TYPE tocsin_events_total counter"):
        assert name in text, f"{name} missing from /metrics"


def test_metrics_count_accepted_events(tocsind, kafka):
    iid = uid("inc")
    kafka.produce_all([event(iid, 1), event(iid, 2)])
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', 2)
    assert tocsind.metric('tocsin_events_total{result="accepted"}') == 2


def _etag_of(epoch, seq):
    return f'"{epoch}:{seq}"'


def test_incidents_list_etag_and_304(tocsind, kafka):
    iid = uid("inc")
    kafka.produce(event(iid, 1, components=["search"]))
    wait_until(lambda: tocsind.get_json("/v1/incidents")[0]["incidents"], 15, what="incident listed")
    body, headers = tocsind.get_json("/v1/incidents")
    assert [i["incident_id"] for i in body["incidents"]] == [iid]
    etag = headers["etag"]
    assert etag == _etag_of(body["epoch"], body["seq"]), (etag, body["epoch"], body["seq"])

    status, headers2, raw = tocsind.get("/v1/incidents", headers={"If-None-Match": etag})
    assert status == 304 and raw == b"", (status, raw[:200])
    assert headers2.get("etag") == etag

    kafka.produce(event(iid, 2, components=["search"]))
    wait_until(lambda: tocsind.get("/v1/incidents", headers={"If-None-Match": etag})[0] == 200, 15,
               what="a new ETag after an update")
    body3, headers3 = tocsind.get_json("/v1/incidents")
    assert headers3["etag"] != etag
    assert body3["seq"] == body["seq"] + 1
    assert body3["incidents"][0]["version"] == 2


def test_incidents_list_filters(tocsind, kafka):
    a, b = uid("inc"), uid("inc")
    kafka.produce_all([event(a, 1, components=["search"], impact="minor"),
                       event(b, 1, components=["playback"], impact="critical")])
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', 2)
    ids = lambda qs: sorted(i["incident_id"] for i in tocsind.get_json("/v1/incidents?" + qs)[0]["incidents"])
    assert ids("components=search") == [a]
    assert ids("min_impact=major") == [b]
    assert ids("components=search,playback") == sorted([a, b])


def test_incident_by_id_with_updates_and_304(tocsind, kafka):
    iid = uid("inc")
    kafka.produce_all([event(iid, 1), event(iid, 2, status="identified")])
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', 2)
    body, headers = tocsind.get_json(f"/v1/incidents/{iid}")
    assert body["incident"]["incident_id"] == iid
    assert body["incident"]["version"] == 2 and body["incident"]["status"] == "identified"
    assert "started_at" in body["incident"] and "updated_at" in body["incident"]
    # The order of "updates" is not part of the contract; seq and version
    # must agree.
    ups = sorted(body["updates"], key=lambda u: u["seq"])
    assert [u["incident"]["version"] for u in ups] == [1, 2]
    assert len({u["seq"] for u in ups}) == 2
    status, _, raw = tocsind.get(f"/v1/incidents/{iid}", headers={"If-None-Match": headers["etag"]})
    assert status == 304 and raw == b""


def test_unknown_incident_is_404(tocsind):
    assert tocsind.get(f"/v1/incidents/{uid('nope')}")[0] == 404


ALLOWED = "https://status.example.com"


@pytest.fixture
def origin_tocsind(tocsind_factory):
    return tocsind_factory(env={"TOCSIN_WS_ALLOWED_ORIGINS": ALLOWED + ",https://app.example.com"})


def test_ws_foreign_origin_refused_403(origin_tocsind):
    # A raw handshake: the refusal's status line may be HTTP/1.0 (lws), which
    # the websockets client will not parse.
    status, _ = ws_handshake_status(origin_tocsind.port, "https://evil.example.net")
    assert status == 403
    status, _ = ws_handshake_status(origin_tocsind.port, ALLOWED)
    assert status == 101

    async def body():
        ws = await Ws.connect(origin_tocsind.ws_url, origin=ALLOWED)
        await ws.expect("snapshot")
        await ws.close()

    run(body())
    assert origin_tocsind.metric("tocsin_origin_refused_total") >= 1


def test_sse_foreign_origin_refused_403(origin_tocsind):
    bad = Sse(origin_tocsind.url, origin="https://evil.example.net")
    assert bad.status == 403
    bad.close()
    good = Sse(origin_tocsind.url, origin="https://app.example.com")
    assert good.status == 200
    assert good.headers.get("content-type", "").startswith("text/event-stream")
    assert good.next()["event"] == "snapshot"
    good.close()


def test_incidents_json_shape(tocsind):
    status, headers, raw = tocsind.get("/v1/incidents")
    assert status == 200
    assert headers.get("content-type", "").startswith("application/json")
    body = json.loads(raw)
    assert set(body) >= {"epoch", "seq", "incidents"}
    assert body["incidents"] == [] and isinstance(body["seq"], int)
