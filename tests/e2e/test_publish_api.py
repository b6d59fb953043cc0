# tocsin — SPDX-License-Identifier: MIT
#
# The publishing API (issue 5): POST /v1/incidents and
# POST /v1/incidents/{id}/updates through Kafka and the store, with answers
# that tell the truth: 202 with the seq the store gave, 400 naming the field,
# 401, 404, 409 (already open, version conflict, version race: never a silent
# loss) and 503 when Kafka is away.

import json
import threading

from helpers import uid, wait_until

TOKEN = "publish-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def start(factory):
    return factory(env={"TOCSIN_ADMIN_TOKEN": TOKEN})


def post(t, path, body, headers=AUTH, timeout=10):
    status, _, text = t.request("POST", path, body=body, headers=headers, timeout=timeout)
    return status, json.loads(text) if text else None


def incident(t, iid):
    status, _, text = t.get(f"/v1/incidents/{iid}")
    assert status == 200, text
    return json.loads(text)["incident"]


def test_open_update_resolve(tocsind_factory):
    t = start(tocsind_factory)
    iid = uid("inc")
    status, doc = post(t, "/v1/incidents", {"incident_id": iid, "title": "Playback fails",
                                            "impact": "major", "components": ["playback"],
                                            "message": "Songs do not start"})
    assert status == 202, doc
    ev = doc["event"]
    assert doc["applied"] is True and doc["seq"] >= 1
    assert ev["incident_id"] == iid and ev["version"] == 1
    assert ev["status"] == "investigating" and len(ev["event_id"]) == 36
    assert ev["occurred_at"].endswith("Z")
    assert incident(t, iid)["title"] == "Playback fails"

    status, doc = post(t, f"/v1/incidents/{iid}/updates", {"status": "identified"})
    assert status == 202, doc
    assert doc["event"]["version"] == 2 and doc["applied"] is True
    state = incident(t, iid)
    # An update changes what it names and keeps the rest.
    assert (state["status"], state["title"], state["impact"]) == \
        ("identified", "Playback fails", "major")

    status, doc = post(t, f"/v1/incidents/{iid}/updates",
                       {"status": "resolved", "message": "Fixed", "version": 3})
    assert status == 202, doc
    assert incident(t, iid)["status"] == "resolved"
    status, _, text = t.get("/v1/incidents")
    assert iid.encode() not in text


def test_generated_id_and_maintenance_default(tocsind_factory):
    t = start(tocsind_factory)
    status, doc = post(t, "/v1/incidents", {"kind": "maintenance", "title": "DB upgrade",
                                            "impact": "none", "components": ["db"]})
    assert status == 202, doc
    assert doc["event"]["incident_id"].startswith("inc-")
    assert doc["event"]["status"] == "scheduled"


def test_errors_name_the_problem(tocsind_factory):
    t = start(tocsind_factory)
    iid = uid("inc")
    base = {"incident_id": iid, "title": "x", "impact": "minor", "components": ["api"]}
    cases = [
        (dict(base, impact="huge"), "impact"),
        ({k: v for k, v in base.items() if k != "title"}, "title"),
        (dict(base, event_id="mine"), "event_id"),
        (dict(base, occurred_at="2026-01-01T00:00:00Z"), "occurred_at"),
        (dict(base, version="2"), "version"),
        (dict(base, components=["Bad Id"]), "components"),
    ]
    for body, field in cases:
        status, doc = post(t, "/v1/incidents", body)
        assert status == 400, (body, doc)
        assert doc["message"].startswith(field), (field, doc)
    status, doc = post(t, "/v1/incidents", base, headers={"Content-Type": "application/json"})
    assert status == 401
    status, doc = post(t, "/v1/incidents/nope-404/updates", {"status": "identified"})
    assert status == 404, doc
    # Nothing of the refused requests was published.
    status, _, _ = t.get(f"/v1/incidents/{iid}")
    assert status == 404


def test_conflicts(tocsind_factory):
    t = start(tocsind_factory)
    iid = uid("inc")
    body = {"incident_id": iid, "title": "x", "impact": "minor", "components": ["api"]}
    assert post(t, "/v1/incidents", body)[0] == 202
    status, doc = post(t, "/v1/incidents", body)
    assert status == 409 and doc["error"] == "already_open", doc
    status, doc = post(t, f"/v1/incidents/{iid}/updates", {"status": "identified", "version": 5})
    assert status == 409 and doc["error"] == "version_conflict", doc
    assert "version 1" in doc["message"]


def test_racing_updates_are_never_lost_silently(tocsind_factory):
    t = start(tocsind_factory)
    iid = uid("inc")
    assert post(t, "/v1/incidents", {"incident_id": iid, "title": "x", "impact": "minor",
                                     "components": ["api"]})[0] == 202
    answers = []
    lock = threading.Lock()

    def update(i):
        a = post(t, f"/v1/incidents/{iid}/updates", {"message": f"update {i}"})
        with lock:
            answers.append(a)

    threads = [threading.Thread(target=update, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert len(answers) == 6
    accepted = [d for s, d in answers if s == 202]
    races = [d for s, d in answers if s == 409]
    assert len(accepted) + len(races) == 6, answers
    assert all(d["error"] == "version_race" for d in races), races
    assert all(d["applied"] for d in accepted)
    # Every 202 is in the incident's history: nothing accepted was dropped.
    assert incident(t, iid)["version"] == 1 + len(accepted)
    assert len(races) >= 1, "six simultaneous updates should race at least once"


def test_kafka_unreachable_is_503(tocsind_factory, kafka):
    t = start(tocsind_factory)
    iid = uid("inc")
    assert post(t, "/v1/incidents", {"incident_id": iid, "title": "x", "impact": "minor",
                                     "components": ["api"]})[0] == 202
    kafka.stop()
    status, doc = post(t, f"/v1/incidents/{iid}/updates", {"status": "identified"}, timeout=20)
    assert status == 503 and doc["error"] == "kafka_unavailable", doc
    wait_until(lambda: t.alive(), 1, what="tocsind still running")
