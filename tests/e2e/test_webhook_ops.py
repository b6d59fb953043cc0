# tocsin — SPDX-License-Identifier: MIT
#
# Operating webhook endpoints (DESIGN §5, §7): the signed test message, an
# endpoint disabled after failing longer than webhook.disable_after and
# enabled again, replay that never sends an older update after a newer one
# (§8.3), and the queue-depth gauges. Receivers are real HTTP servers on
# 127.0.0.1 (webhook_receiver.py).

import json
import threading
import time

from helpers import event, uid, wait_until
from webhook_receiver import AUTH, create, start, verify


def call(t, method, path):
    status, _, text = t.request(method, path, headers=AUTH)
    return status, json.loads(text) if text else None


def endpoint(t, ep_id):
    status, doc = call(t, "GET", f"/v1/webhooks/{ep_id}")
    assert status == 200, doc
    return doc


def test_test_message_is_signed_and_reports_the_answer(tocsind_factory, receivers):
    t = start(tocsind_factory)
    ok, gone = receivers(), receivers(script=[503])
    ep = create(t, ok.url)
    status, doc = call(t, "POST", f"/v1/webhooks/{ep['id']}/test")
    assert status == 200, doc
    assert doc["delivered"] is True and doc["status"] == 200 and doc["error"] is None
    assert doc["webhook_id"].startswith("test_")
    assert len(ok.got) == 1
    headers, body = ok.got[0]
    assert verify(ep["secret"], headers, body)
    assert headers["webhook-id"] == doc["webhook_id"]
    msg = json.loads(body)
    assert msg["type"] == "webhook.test" and msg["endpoint_id"] == ep["id"]

    # A failing receiver: the answer says so, nothing is queued or retried.
    ep2 = create(t, gone.url)
    status, doc = call(t, "POST", f"/v1/webhooks/{ep2['id']}/test")
    assert status == 200
    assert doc["delivered"] is False and doc["status"] == 503 and doc["error"]
    time.sleep(1.5)
    assert len(gone.got) == 1
    shown = endpoint(t, ep2["id"])
    assert shown["pending"] == 0 and shown["dead"] == 0 and shown["attempts"] == []

    assert call(t, "POST", "/v1/webhooks/wh_nope/test")[0] == 404


def test_test_message_respects_the_address_guard(tocsind_factory, receivers):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_ALLOW_PRIVATE="false")
    r = receivers()
    ep = create(t, r.url)
    status, doc = call(t, "POST", f"/v1/webhooks/{ep['id']}/test")
    assert status == 200
    assert doc["delivered"] is False and doc["error"] == "address refused"
    assert r.got == []


def test_endpoint_failing_too_long_is_disabled_then_enabled(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE="500ms,500ms,500ms,500ms,500ms,500ms",
              TOCSIN_WEBHOOK_DISABLE_AFTER="1s")
    r = receivers(script=[500] * 20)
    ep = create(t, r.url)
    kafka.produce(event(uid("inc"), 1))
    wait_until(lambda: endpoint(t, ep["id"])["endpoint"]["disabled"], 20,
               what="the endpoint disabled for failing longer than 1 s")
    shown = endpoint(t, ep["id"])["endpoint"]
    assert "webhook.disable_after" in shown["disabled_reason"]
    assert isinstance(shown["failing_since"], int)
    assert t.metric("tocsin_webhook_endpoints_disabled_total") == 1
    # Its queued job went to the dead list; new events enqueue nothing.
    wait_until(lambda: endpoint(t, ep["id"])["dead"] == 1, 10, what="the job dead-lettered")
    n = len(r.got)
    kafka.produce(event(uid("inc"), 1))
    time.sleep(1.5)
    assert len(r.got) == n and endpoint(t, ep["id"])["pending"] == 0
    # Replay into a disabled endpoint is refused with the reason.
    status, doc = call(t, "POST", f"/v1/webhooks/{ep['id']}/replay")
    assert status == 409 and "enable" in doc["message"]
    # Enabled (the receiver works again): replay delivers the dead job.
    r.script = []
    status, doc = call(t, "POST", f"/v1/webhooks/{ep['id']}/enable")
    assert status == 200 and doc["disabled"] is False and doc["failing_since"] is None
    assert "secret" not in doc and "secrets" not in doc
    status, doc = call(t, "POST", f"/v1/webhooks/{ep['id']}/replay")
    assert (status, doc) == (200, {"replayed": 1, "superseded": 0})
    wait_until(lambda: len(r.got) == n + 1, 10, what="the replayed message")
    assert json.loads(r.got[-1][1])["type"] == "incident.updated"


def test_replay_never_sends_an_older_update_after_a_newer_one(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE="300ms")
    # v1 fails twice: dead. v2 then succeeds.
    r = receivers(script=[500, 500])
    ep = create(t, r.url)
    iid = uid("inc")
    kafka.produce(event(iid, 1))
    wait_until(lambda: endpoint(t, ep["id"])["dead"] == 1, 15, what="v1 dead-lettered")
    kafka.produce(event(iid, 2))
    wait_until(lambda: len(r.got) == 3, 15, what="v2 delivered")
    status, doc = call(t, "POST", f"/v1/webhooks/{ep['id']}/replay")
    assert (status, doc) == (200, {"replayed": 0, "superseded": 1})
    time.sleep(1.0)
    versions = [json.loads(b)["incident"]["version"] for _, b in r.got]
    assert versions == [1, 1, 2], versions
    assert endpoint(t, ep["id"])["dead"] == 0


def test_queue_depth_gauges(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE="1h")
    r = receivers(script=[500] * 10)
    create(t, r.url)
    iid = uid("inc")
    # One incident: v1 fails and waits an hour; v2 and v3 wait behind it.
    kafka.produce_all([event(iid, 1), event(iid, 2), event(iid, 3),
                       event(uid("inc"), 1)])
    wait_until(lambda: len(r.got) == 2, 15, what="both incidents' first attempts")
    wait_until(lambda: t.metric("tocsin_webhook_queue_depth") == 4, 10,
               what="4 jobs queued in the gauge")
    assert t.metric("tocsin_webhook_queue_due") == 0  # both heads wait for their retry


def test_sigterm_during_a_test_message(tocsind_factory, receivers):
    t = start(tocsind_factory)
    r = receivers(script=[(5, 200)])
    ep = create(t, r.url)

    def ask():
        try:
            t.request("POST", f"/v1/webhooks/{ep['id']}/test", headers=AUTH, timeout=10)
        except OSError:
            pass  # the connection may close without an answer

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    wait_until(lambda: len(r.got) == 1, 10, what="the test message in flight")
    assert t.stop() == 0  # the sanitizer pass checks nothing is used after free
    thread.join(10)
