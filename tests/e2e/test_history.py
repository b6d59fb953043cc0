# tocsin — SPDX-License-Identifier: MIT
#
# GET /v1/history: the last ended incidents that match a filter, the last
# ended first — what a status page shows as recent history to a visitor who
# was not watching when they ended. A reopened incident leaves it.

import json
import os

import jsonschema

from helpers import event, uid, wait_until

SCHEMAS = os.path.join(os.path.dirname(__file__), "..", "..", "schemas")


def check_history_schema(doc):
    """The answer against schemas/incidents-response.schema.json#/$defs/history."""
    store = {}
    for name in os.listdir(SCHEMAS):
        if name.endswith(".schema.json"):
            with open(os.path.join(SCHEMAS, name)) as f:
                s = json.load(f)
            store[s["$id"]] = s
    root = store["https://tocsin.dev/schemas/incidents-response.schema.json"]
    resolver = jsonschema.RefResolver(root["$id"], root, store=store)
    jsonschema.Draft202012Validator(root["$defs"]["history"], resolver=resolver).validate(doc)


def history(t, qs=""):
    status, headers, body = t.get("/v1/history" + (f"?{qs}" if qs else ""))
    assert status == 200, body
    doc = json.loads(body)
    check_history_schema(doc)
    return [i["incident_id"] for i in doc["incidents"]], headers


def test_history_lists_ended_incidents_newest_first(tocsind, kafka):
    a, b, c, live = (uid("inc") for _ in range(4))
    kafka.produce_all([
        event(a, 1, components=["playback"]), event(b, 1, components=["search"]),
        event(c, 1, components=["playback"], regions=["eu"]),
        event(live, 1, components=["playback"]),
    ])
    # One at a time: incidents live on different partitions, so only waiting
    # makes the order they end in certain.
    for n, ev in enumerate([event(a, 2, status="resolved", components=["playback"]),
                            event(b, 2, status="resolved", components=["search"]),
                            event(c, 2, status="resolved", components=["playback"],
                                  regions=["eu"])], 1):
        kafka.produce(ev)
        wait_until(lambda: len(history(tocsind)[0]) == n, 15, what=f"{n} ended incidents")
    ids, headers = history(tocsind)
    assert ids == [c, b, a] and live not in ids
    assert headers.get("etag")
    assert history(tocsind, "components=playback")[0] == [c, a]
    assert history(tocsind, "regions=us")[0] == [b, a], "c is eu only; global ones reach us"
    assert history(tocsind, "limit=1")[0] == [c]
    # A reopened incident is active again, not history.
    kafka.produce(event(a, 3, status="investigating", components=["playback"]))
    wait_until(lambda: a not in history(tocsind)[0], 15, what="the reopened incident gone")


def test_history_bad_input(tocsind):
    for qs in ("limit=0", "limit=101", "limit=x", "min_impact=huge"):
        status, _, body = tocsind.get(f"/v1/history?{qs}")
        assert status == 400, (qs, body)
