# tocsin — SPDX-License-Identifier: MIT
#
# Webhook delivery against real HTTP receivers on loopback (DESIGN §5): the
# Standard Webhooks headers, checked with an independent HMAC
# (webhook_receiver.verify);
# retries with the same webhook-id; 410 disables the endpoint; order per
# endpoint and incident under retries; loopback refused without
# webhook.allow_private. No traffic leaves 127.0.0.0/8.

import json
import time

from helpers import event, uid, wait_until
from webhook_receiver import AUTH, create, start, verify


def test_delivery_is_signed(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory)
    r = receivers()
    ep = create(t, r.url, filter={"components": ["playback"]})
    iid = uid("inc")
    kafka.produce(event(iid, 1, components=["playback"]))
    wait_until(lambda: len(r.got) == 1, 15, what="the webhook")
    headers, body = r.got[0]
    assert verify(ep["secret"], headers, body)
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    doc = json.loads(body)
    assert doc["type"] == "incident.updated"
    assert doc["incident"]["incident_id"] == iid
    assert headers["webhook-id"] == f"{doc['seq']}-{ep['id']}"
    assert headers["content-type"] == "application/json"


def test_retry_after_500_keeps_the_webhook_id(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory)
    r = receivers(script=[500, 500])
    create(t, r.url)
    kafka.produce(event(uid("inc"), 1))
    wait_until(lambda: len(r.got) == 3, 20, what="two failures and a success")
    ids = {h["webhook-id"] for h, _ in r.got}
    assert len(ids) == 1, ids
    t.wait_metric("tocsin_webhook_deliveries_total", 1)
    assert t.metric('tocsin_webhook_failures_total{reason="http"}') == 2


def test_retry_after_header_is_honoured(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE="1h")
    r = receivers(script=[503])
    create(t, r.url)
    kafka.produce(event(uid("inc"), 1))
    # The schedule says an hour; Retry-After: 1 says a second.
    wait_until(lambda: len(r.got) == 2, 15, what="the retry Retry-After asked for")


def test_410_disables_the_endpoint(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory)
    r = receivers(script=[410])
    ep = create(t, r.url)
    kafka.produce(event(uid("inc"), 1))
    wait_until(lambda: len(r.got) == 1, 15, what="the attempt")

    def disabled():
        _, _, text = t.request("GET", f"/v1/webhooks/{ep['id']}", headers=AUTH)
        return json.loads(text)["endpoint"]["disabled"]

    wait_until(disabled, 10, what="the endpoint disabled")
    kafka.produce(event(uid("inc"), 1))
    time.sleep(1.5)
    assert len(r.got) == 1, "a disabled endpoint got another message"


def test_order_per_incident_under_retries(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory)
    r = receivers(script=[500, 500])
    create(t, r.url)
    iid = uid("inc")
    kafka.produce_all([event(iid, 1), event(iid, 2), event(iid, 3)])
    wait_until(lambda: len(r.got) == 5, 20, what="three deliveries after two failures")
    versions = [json.loads(b)["incident"]["version"] for _, b in r.got]
    assert versions == [1, 1, 1, 2, 3], versions


def test_loopback_refused_without_allow_private(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_ALLOW_PRIVATE="false")
    r = receivers()
    create(t, r.url)
    kafka.produce(event(uid("inc"), 1))
    t.wait_metric('tocsin_webhook_failures_total{reason="address_refused"}', 1)
    assert r.got == [], "a refused address was reached"


def test_filters_choose_the_endpoints(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory)
    play, search = receivers(), receivers()
    create(t, play.url, filter={"components": ["playback"]})
    create(t, search.url, filter={"components": ["search"], "min_impact": "major"})
    kafka.produce_all([event(uid("inc"), 1, components=["playback"]),
                       event(uid("inc"), 1, components=["search"], impact="minor"),
                       event(uid("inc"), 1, components=["search"], impact="critical")])
    wait_until(lambda: len(play.got) == 1 and len(search.got) == 1, 15, what="one each")
    time.sleep(0.5)
    assert len(play.got) == 1 and len(search.got) == 1
    assert json.loads(search.got[0][1])["incident"]["impact"] == "critical"
