# tocsin — SPDX-License-Identifier: MIT
#
# The webhook admin API (DESIGN §5): endpoints are created with a generated id
# and whsec_ secret (shown on create and rotate only), listed, shown with
# their pending jobs, replayed, rotated and deleted; each accepted event
# enqueues one job per matching endpoint. Delivery itself is not here yet.

import base64
import json

import pytest

from helpers import event, uid, wait_until

TOKEN = "wh-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def admin(tocsind_factory):
    return tocsind_factory(env={"TOCSIN_ADMIN_TOKEN": TOKEN})


def call(t, method, path, body=None):
    status, _, text = t.request(method, path, body=body, headers=AUTH)
    return status, json.loads(text) if text else None


def create(t, **body):
    status, doc = call(t, "POST", "/v1/webhooks", body)
    assert status == 201, doc
    return doc


def test_create_returns_id_and_secret(admin):
    doc = create(admin, url="http://127.0.0.1:9/hook", filter={"components": ["playback"]},
                 description="billing")
    assert doc["id"].startswith("wh_")
    assert doc["url"] == "http://127.0.0.1:9/hook"
    assert doc["description"] == "billing"
    assert doc["filter"]["components"] == ["playback"]
    secret = doc["secret"]
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret[6:])) <= 64
    assert "secrets" not in doc


def test_list_and_get_hide_secrets(admin):
    a = create(admin, url="http://127.0.0.1:9/a")
    b = create(admin, url="http://127.0.0.1:9/b")
    status, doc = call(admin, "GET", "/v1/webhooks")
    assert status == 200
    ids = {e["id"] for e in doc["webhooks"]}
    assert {a["id"], b["id"]} <= ids
    for e in doc["webhooks"]:
        assert "secret" not in e and "secrets" not in e
    status, one = call(admin, "GET", f"/v1/webhooks/{a['id']}")
    assert status == 200
    assert one["endpoint"]["id"] == a["id"]
    assert "secret" not in one["endpoint"] and "secrets" not in one["endpoint"]
    assert one["pending"] == 0 and one["dead"] == 0


@pytest.mark.parametrize("body, field", [
    ({}, "url"),
    ({"url": 5}, "url"),
    ({"url": "ftp://127.0.0.1/x"}, "url"),
    ({"url": "http://127.0.0.1/x", "filter": {"components": ["Bad Id"]}}, "filter.components"),
    ({"url": "http://127.0.0.1/x", "filter": {"colour": "red"}}, "filter.colour"),
    ({"url": "http://127.0.0.1/x", "filter": []}, "filter"),
    ({"url": "http://127.0.0.1/x", "description": 7}, "description"),
    ({"url": "http://127.0.0.1/x", "secret": "mine"}, "secret"),
])
def test_bad_bodies_are_400_naming_the_field(admin, body, field):
    status, doc = call(admin, "POST", "/v1/webhooks", body)
    assert status == 400, doc
    assert doc["error"] == "bad_request"
    assert doc["message"].startswith(field), doc["message"]
    status, listed = call(admin, "GET", "/v1/webhooks")
    assert listed["webhooks"] == [], "a refused endpoint was stored"


def test_matching_events_enqueue_one_job_per_endpoint(admin, kafka):
    play = create(admin, url="http://127.0.0.1:9/play", filter={"components": ["playback"]})
    search = create(admin, url="http://127.0.0.1:9/search", filter={"components": ["search"]})
    iid = uid("inc")
    kafka.produce_all([event(iid, 1, components=["playback"]),
                       event(iid, 1, components=["playback"])])  # the second is stale
    admin.wait_metric('tocsin_events_total{result="accepted"}', 1)

    def pending(e):
        return call(admin, "GET", f"/v1/webhooks/{e['id']}")[1]["pending"]

    wait_until(lambda: pending(play) == 1, 10, what="job for the matching endpoint")
    assert pending(search) == 0


def test_rotate_replay_delete(admin):
    e = create(admin, url="http://127.0.0.1:9/r")
    status, rotated = call(admin, "POST", f"/v1/webhooks/{e['id']}/rotate-secret")
    assert status == 200, rotated
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != e["secret"]
    status, doc = call(admin, "POST", f"/v1/webhooks/{e['id']}/replay")
    assert (status, doc) == (200, {"replayed": 0, "superseded": 0})
    status, doc = call(admin, "DELETE", f"/v1/webhooks/{e['id']}")
    assert (status, doc) == (200, {"deleted": 1})
    for method, path in (("GET", f"/v1/webhooks/{e['id']}"),
                         ("DELETE", f"/v1/webhooks/{e['id']}"),
                         ("POST", f"/v1/webhooks/{e['id']}/replay")):
        status, doc = call(admin, method, path)
        assert status == 404, (method, path, doc)


def test_wrong_method_on_a_known_route_is_405(admin):
    status, doc = call(admin, "PUT", "/v1/webhooks", {"url": "http://127.0.0.1/x"})
    assert status == 405
    status, doc = call(admin, "GET", "/v1/webhooks/not%20an%20id")
    assert status == 404
