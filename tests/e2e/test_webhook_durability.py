# tocsin — SPDX-License-Identifier: MIT
#
# Webhook delivery when things go wrong, and filters across endpoints
# (DESIGN §3, §5, §8.1, §8.2): an answer slower than webhook.timeout is
# retried with the same webhook-id; a pending retry survives a tocsind
# restart (SIGTERM and SIGKILL) and a Redis restart from its AOF; a claimed
# job whose node died is claimed again once its lease is over; each endpoint
# gets exactly the updates its filter selects. Every message is checked
# against the endpoint's secret with an independent HMAC, and every test
# ends with a quiet period, so a duplicate would be seen.

import functools
import json
import signal
import time

import pytest

from helpers import event, uid, wait_until
from webhook_receiver import AUTH, create, start, verify

# Long enough for a stray duplicate to arrive: claims run every 100 ms.
QUIET_S = 1.5


def show(t, ep_id):
    """GET /v1/webhooks/{id}: the endpoint, its recorded attempts (newest
    first), and its pending and dead job counts."""
    status, _, text = t.request("GET", f"/v1/webhooks/{ep_id}", headers=AUTH)
    assert status == 200, text
    return json.loads(text)


def wait_recorded(t, ep_id, attempts, pending, timeout=10):
    """Waits until the endpoint shows `attempts` recorded attempts and
    `pending` jobs; returns its document."""
    seen = {}

    def check():
        seen["doc"] = show(t, ep_id)
        return len(seen["doc"]["attempts"]) == attempts and seen["doc"]["pending"] == pending

    try:
        wait_until(check, timeout, interval=0.1,
                   what=f"{attempts} recorded attempts and {pending} pending")
    except AssertionError as e:
        raise AssertionError(f"{e}; last document: {seen.get('doc')}") from None
    return seen["doc"]


def one_message(r, secret, n):
    """Checks that r got exactly n requests, all the same message (one
    webhook-id, one body), each validly signed with secret; returns the id."""
    assert len(r.got) == n, [h["webhook-id"] for h, _ in r.got]
    ids = {h["webhook-id"] for h, _ in r.got}
    assert len(ids) == 1, ids
    assert len({b for _, b in r.got}) == 1, "a retry changed the body"
    for h, b in r.got:
        assert verify(secret, h, b), f"bad signature on attempt {h}"
    return ids.pop()


def test_timeout_is_retried_with_the_same_id(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_TIMEOUT="1s")
    r = receivers(script=[(3, 200)])  # stalls 3 s on the first request, then 200s
    ep = create(t, r.url)
    kafka.produce(event(uid("inc"), 1))
    wait_until(lambda: len(r.got) == 2, 20, what="the retry after the timeout")
    doc = wait_recorded(t, ep["id"], attempts=2, pending=0)
    time.sleep(QUIET_S)
    wid = one_message(r, ep["secret"], 2)
    assert t.metric("tocsin_webhook_deliveries_total") == 1
    assert t.metric('tocsin_webhook_failures_total{reason="network"}') == 1
    second, first = doc["attempts"]
    assert first["webhook_id"] == second["webhook_id"] == wid
    assert first["attempt"] == 1 and first["status"] == 0, first
    assert "timed out" in first["error"].lower(), first
    # Cut at the 1 s timeout, not answered after the 3 s stall.
    assert first["duration_ms"] < 2500, first
    assert second["attempt"] == 2 and second["status"] == 200, second
    assert second.get("error") is None, second


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_pending_retry_survives_a_tocsind_restart(tocsind_factory, kafka, receivers, how):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE="5s,5s")
    r = receivers(script=[500])
    ep = create(t, r.url)
    kafka.produce(event(uid("inc"), 1))
    wait_until(lambda: len(r.got) == 1, 15, what="the first attempt")
    doc = wait_recorded(t, ep["id"], attempts=1, pending=1)
    assert doc["attempts"][0]["status"] == 500, doc
    if how == "sigkill":
        assert t.kill9() == -signal.SIGKILL
    else:
        assert t.stop(signal.SIGTERM) == 0, "tocsind did not exit cleanly on SIGTERM"
    # The retry is due 4-6 s after the first attempt: still pending here.
    assert len(r.got) == 1, "the retry came before tocsind stopped"
    t.restart()
    wait_until(lambda: len(r.got) == 2, 15, what="the retry from the restarted tocsind")
    wait_recorded(t, ep["id"], attempts=2, pending=0)
    time.sleep(QUIET_S)
    # After SIGKILL the event may be consumed again: a duplicate, no new job.
    one_message(r, ep["secret"], 2)
    assert t.metric("tocsin_webhook_deliveries_total") == 1


@pytest.mark.timeout(90)
def test_pending_retry_survives_a_redis_restart(tocsind_factory, own_redis, kafka, receivers):
    factory = functools.partial(tocsind_factory, redis=own_redis)
    t = start(factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE="5s,5s", TOCSIN_REDIS_TIMEOUT="1s")
    r = receivers(script=[500])
    ep = create(t, r.url)
    kafka.produce(event(uid("inc"), 1))
    wait_until(lambda: len(r.got) == 1, 15, what="the first attempt")
    wait_recorded(t, ep["id"], attempts=1, pending=1)
    # appendfsync always (as in production): a SIGKILL loses nothing acknowledged.
    own_redis.proc.send_signal(signal.SIGKILL)
    own_redis.proc.wait(5)
    wait_until(lambda: t.get("/readyz")[0] != 200, 10, interval=0.1, what="readyz to fail")
    assert len(r.got) == 1, "the retry came before Redis went away"
    own_redis.start()  # same port and dir: replays the AOF
    wait_until(lambda: t.get("/readyz")[0] == 200, 15, interval=0.1, what="readyz back")
    wait_until(lambda: len(r.got) == 2, 15, what="the retry after Redis came back")
    wait_recorded(t, ep["id"], attempts=2, pending=0)
    time.sleep(QUIET_S)
    one_message(r, ep["secret"], 2)
    assert t.metric("tocsin_webhook_deliveries_total") == 1


def test_filters_across_two_endpoints(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory)
    a, b = receivers(), receivers()
    ep_a = create(t, a.url, filter={"components": ["playback"]})
    ep_b = create(t, b.url, filter={"regions": ["eu"]})
    evs = {
        "playback/us": event(uid("inc"), 1, components=["playback"], regions=["us"]),
        "search/eu": event(uid("inc"), 1, components=["search"], regions=["eu"]),
        "playback/eu": event(uid("inc"), 1, components=["playback"], regions=["eu"]),
        # No regions: a global incident reaches every region's subscribers (§3).
        "search/global": event(uid("inc"), 1, components=["search"]),
        "search/us": event(uid("inc"), 1, components=["search"], regions=["us"]),
    }
    kafka.produce_all(list(evs.values()))
    name = {ev["incident_id"]: n for n, ev in evs.items()}
    # Jobs are enqueued when an event is accepted: once all are accepted and
    # nothing is pending, nothing more can come.
    t.wait_metric('tocsin_events_total{result="accepted"}', len(evs))
    wait_recorded(t, ep_a["id"], attempts=2, pending=0)
    wait_recorded(t, ep_b["id"], attempts=3, pending=0)
    time.sleep(QUIET_S)

    def got(r, ep):
        for h, body in r.got:
            assert verify(ep["secret"], h, body), "signed with another endpoint's secret?"
            assert h["webhook-id"].endswith("-" + ep["id"]), h["webhook-id"]
        return sorted(name[json.loads(body)["incident"]["incident_id"]] for _, body in r.got)

    assert got(a, ep_a) == ["playback/eu", "playback/us"]
    assert got(b, ep_b) == ["playback/eu", "search/eu", "search/global"]


def test_claimed_job_of_a_dead_node_is_claimed_again(tocsind_factory, kafka, receivers):
    """The lease is webhook.timeout + 30 s (LEASE_EXTRA_MS in deliver.c), too
    long to wait for here: the test checks the lease a claim sets, that a new
    node leaves the job alone while it runs, then ends it early by moving the
    job's due time (P wh:due, store/webhooks.c) to now, as time would."""
    t = start(tocsind_factory, TOCSIN_WEBHOOK_TIMEOUT="10s")
    r = receivers(script=[(10, 200)])  # the first request hangs past the kill
    ep = create(t, r.url)
    iid = uid("inc")
    kafka.produce(event(iid, 1))
    wait_until(lambda: len(r.got) == 1, 15, what="the first attempt")
    db = t.redis.client()
    due, member = f"{t.prefix}wh:due", f"{ep['id']}|{iid}"
    lease_end = db.zscore(due, member)
    assert lease_end is not None, f"{member!r} not in {due}: has the store's key layout changed?"
    assert lease_end > time.time() * 1000 + 30000, "the lease is shorter than timeout + 30 s"
    assert t.kill9() == -signal.SIGKILL  # mid-request: nothing is recorded
    t.restart()
    time.sleep(QUIET_S)
    assert len(r.got) == 1, "claimed again while the dead node's lease ran"
    assert show(t, ep["id"])["pending"] == 1
    assert db.zadd(due, {member: int(time.time() * 1000)}, xx=True, ch=True) == 1
    wait_until(lambda: len(r.got) == 2, 10, what="the job claimed again")
    # The dead node never recorded its attempt: the one recorded is the retry's.
    doc = wait_recorded(t, ep["id"], attempts=1, pending=0)
    assert doc["attempts"][0]["status"] == 200, doc
    time.sleep(QUIET_S)
    one_message(r, ep["secret"], 2)
    assert t.metric("tocsin_webhook_deliveries_total") == 1
