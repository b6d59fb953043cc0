# tocsin — SPDX-License-Identifier: MIT
#
# Poison messages (DESIGN §2, §8.5): every kind of bad Kafka value goes to
# tocsin.incidents.dlq unchanged, with an `error` header, is counted, and
# does not block its partition: a good event produced after them on the same
# key (so the same partition) is still delivered.

import json

from clients import Ws, in_thread, run
from helpers import DLQ_TOPIC, event, uid


def _bad_messages(key):
    big = event(key, 1)
    big["padding"] = "x" * (70 * 1024)  # valid JSON, valid fields, > 64 KiB
    return {
        "not-json": b"{this is not json",
        "not-utf8": b'{"event_id": "\xff\xfe"}',
        "oversized": json.dumps(big).encode(),
        "no-title": json.dumps({k: v for k, v in event(key, 1).items() if k != "title"}).encode(),
        "bad-version": json.dumps(event(key, 0)).encode(),
        "bad-status": json.dumps(event(key, 1, status="on-fire")).encode(),
        "bad-component": json.dumps(event(key, 1, components=["Play Back"])).encode(),
        "not-object": b'["an", "array"]',
    }


def test_bad_messages_go_to_dlq_unchanged_and_good_event_follows(tocsind, kafka):
    key = uid("poison")
    bad = _bad_messages(key)
    good = event(key, 1, title="the good one")

    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        await ws.expect("snapshot")
        for value in bad.values():
            await in_thread(kafka.produce, value, key=key, flush=False)
        await in_thread(kafka.produce, good)
        (up,) = await ws.updates(1, timeout=20)
        await ws.quiet(0.5)
        await ws.close()
        return up

    up = run(body())
    assert up["incident"]["title"] == "the good one"

    msgs = kafka.consume_all(DLQ_TOPIC, len(bad), timeout=20)
    by_value = {m.value(): m for m in msgs}
    for name, value in bad.items():
        assert value in by_value, f"{name} not in the DLQ unchanged ({len(msgs)} DLQ messages)"
        m = by_value[value]
        headers = dict(m.headers() or [])
        assert headers.get("error"), f"{name}: no error header in {headers}"
        assert m.key() == key.encode(), f"{name}: key changed to {m.key()!r}"
    assert len(msgs) == len(bad), "more DLQ messages than bad inputs"

    m = tocsind.metrics()
    assert m.get('tocsin_dlq_messages_total{result="produced"}') == len(bad), m
    assert m.get('tocsin_events_total{result="invalid"}') == len(bad), m
    assert m.get('tocsin_events_total{result="accepted"}') == 1, m


def test_dlq_error_header_names_the_field(tocsind, kafka):
    key = uid("poison")
    value = json.dumps(event(key, 1, impact="apocalyptic")).encode()
    kafka.produce(value, key=key)
    (m,) = kafka.consume_all(DLQ_TOPIC, 1, timeout=20)
    assert m.value() == value
    assert b"impact" in dict(m.headers())["error"]
