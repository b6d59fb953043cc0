# tocsin — SPDX-License-Identifier: MIT
#
# The JSON Schemas in schemas/ held to the code. Without a server: every
# schema is a valid Draft 2020-12 schema whose $refs resolve, its examples
# pass, hand-made bad messages fail (so no schema is vacuous), and the error
# codes the C code can send are exactly the ones the schemas list. With a
# real tocsind: every kind of message it sends (WebSocket welcome, snapshot,
# reset snapshot, update, error, heartbeat; SSE events; /v1/incidents
# bodies; HTTP error bodies; webhook deliveries and test messages with their
# headers, caught by a real receiver; every webhook admin answer) is
# captured and validated, and for client messages and webhook create
# requests the server's verdict must equal the schema's.
#
# jsonschema is Debian 12's 4.10.3: no `referencing` package yet, so the
# $refs between files are resolved by a RefResolver over a store of every
# schema keyed by its $id.

import asyncio
import functools
import glob
import json
import os
import re
import time
import urllib.parse

import pytest
from jsonschema import Draft202012Validator, RefResolver
from jsonschema.exceptions import best_match

from clients import Sse, Ws, in_thread, query, run
from helpers import event, http_request, uid, wait_until
from webhook_receiver import AUTH, start, verify

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_DIR = os.path.join(REPO, "schemas")
BASE = "https://tocsin.dev/schemas/"
# The files this test owns the contract of (config and incident-event have
# their own tests: test_cli.py / test_schema_diff.py).
MESSAGE_SCHEMAS = [
    "filter.schema.json",
    "incident-state.schema.json",
    "ws-server-message.schema.json",
    "ws-client-message.schema.json",
    "sse-event.schema.json",
    "incidents-response.schema.json",
    "error-response.schema.json",
    "webhook-message.schema.json",
    "webhook-endpoint.schema.json",
]


def _load_schemas():
    out = {}
    for path in sorted(glob.glob(os.path.join(SCHEMA_DIR, "*.schema.json"))):
        with open(path, encoding="utf-8") as f:
            out[os.path.basename(path)] = json.load(f)
    return out


SCHEMAS = _load_schemas()
STORE = {s["$id"]: s for s in SCHEMAS.values() if "$id" in s}


@functools.lru_cache(maxsize=None)
def validator(name, part=None):
    """A validator of schemas/<name>, or of its $defs/<part>."""
    schema = SCHEMAS[name]
    resolver = RefResolver(base_uri=schema["$id"], referrer=schema, store=STORE)
    target = schema if part is None else {"$ref": f"{schema['$id']}#/$defs/{part}"}
    return Draft202012Validator(target, resolver=resolver)


def kind_part(name, doc):
    """The $defs entry of doc's kind ("type": "update" → $defs/update) in
    a schema that is a oneOf of kinds, else None."""
    defs = SCHEMAS[name].get("$defs", {})
    kind = doc.get("type") if isinstance(doc, dict) else None
    return kind if "oneOf" in SCHEMAS[name] and isinstance(kind, str) and kind in defs else None


def check(name, doc, part=None):
    """Asserts doc is valid, with the most specific reason if not (for a
    oneOf of kinds, the reason its own kind refuses it)."""
    errors = list(validator(name, part).iter_errors(doc))
    if errors:
        if part is None and kind_part(name, doc):
            part = kind_part(name, doc)
            errors = list(validator(name, part).iter_errors(doc)) or errors
        err = best_match(errors)
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        raise AssertionError(f"{name}{'#' + part if part else ''} refuses a real message at "
                             f"{where}: {err.message}\n{json.dumps(doc)[:800]}")


def valid(name, doc, part=None):
    return validator(name, part).is_valid(doc)


# ------------------------------------------------------------ the schemas


def _refs(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield path, v
            else:
                yield from _refs(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _refs(v, f"{path}/{i}")


@pytest.mark.parametrize("name", MESSAGE_SCHEMAS)
def test_schema_is_valid_and_its_refs_resolve(name):
    assert name in SCHEMAS, f"schemas/{name} is missing"
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema"
    assert schema.get("$id") == BASE + name, "a relative $ref between files needs this $id"
    assert schema.get("title") and len(schema.get("description", "")) > 40
    resolver = RefResolver(base_uri=schema["$id"], referrer=schema, store=STORE)
    for path, ref in _refs(schema):
        url = urllib.parse.urljoin(schema["$id"], ref)
        try:
            resolver.resolve(url)
        except Exception as e:  # noqa: BLE001 — any failure is the finding
            raise AssertionError(f"{name}{path}: $ref {ref!r} does not resolve: {e}") from None


def test_readme_lists_every_schema():
    with open(os.path.join(SCHEMA_DIR, "README.md"), encoding="utf-8") as f:
        text = f.read()
    missing = [n for n in SCHEMAS if f"`{n}`" not in text]
    assert not missing, f"schemas/README.md has no line for {missing}"


def _examples(schema, path=()):
    if isinstance(schema, dict):
        for ex in schema.get("examples", []):
            yield path, ex
        for name, sub in schema.get("$defs", {}).items():
            yield from _examples(sub, path + (name,))


@pytest.mark.parametrize("name", MESSAGE_SCHEMAS)
def test_examples_in_the_schema_are_valid(name):
    for path, ex in _examples(SCHEMAS[name]):
        check(name, ex, path[-1] if path else None)


# Real messages, as captured from tocsind, that the bad ones below are
# mutations of: each mutation must break exactly what its label says.
STATE = {"event_id": "ev-1", "incident_id": "inc-1", "version": 2, "status": "identified",
         "impact": "major", "title": "Playback fails", "message": "A bad deploy.",
         "components": ["playback"], "occurred_at": "2026-11-25T12:00:02Z",
         "regions": ["eu-west"], "pad": {"any": "thing"}, "kind": "incident",
         "updated_at": "2026-11-25T12:00:02Z", "started_at": "2026-11-25T12:00:01Z"}
EPOCH = "134b14c874af51372eeee99644de2bb7"
UPDATE = {"type": "update", "sub": "default", "epoch": EPOCH, "seq": 7, "incident": STATE}
SNAPSHOT = {"type": "snapshot", "sub": "default", "epoch": EPOCH, "seq": 7, "incidents": [STATE]}
WELCOME = {"type": "welcome", "epoch": EPOCH, "seq": 7, "heartbeat_s": 25}
ERROR = {"type": "error", "code": "bad_message", "message": "id: must be ...", "epoch": EPOCH}
HEARTBEAT = {"type": "heartbeat", "epoch": EPOCH, "seq": 7}
SUBSCRIBE = {"type": "subscribe", "id": "s2", "filter": {"components": ["playback"]},
             "since": 3, "epoch": EPOCH}
SSE = {"id": f"{EPOCH}:7", "event": "update", "data": UPDATE}
LIST = {"epoch": EPOCH, "seq": 7, "incidents": [STATE]}
DETAIL = {"incident": STATE, "updates": [{"seq": 7, "incident": STATE}]}
HTTP_ERROR = {"error": "bad_filter", "message": "min_impact: must be ..."}
WH_UPDATE = {"type": "incident.updated", "seq": 7, "incident": STATE}
WH_TEST = {"type": "webhook.test", "webhook_id": "test_60ce3dbd010399b51c3bb90f",
           "endpoint_id": "wh_571a3561f26493a3", "sent_at": "2026-11-25T16:03:35.752Z"}
WH_HEADERS = {"webhook-id": "7-wh_571a3561f26493a3", "webhook-timestamp": "1795622612",
              "webhook-signature": "v1,1WN/jdWjI7fyC23uludRW95W+xYaFSw8lpiHIWLdwqM=",
              "content-type": "application/json", "user-agent": "tocsin/0.1.0"}
ENDPOINT = {"id": "wh_571a3561f26493a3", "url": "http://127.0.0.1:34637/hook",
            "filter": {"components": [], "regions": [], "min_impact": "none"},
            "description": "d", "old_secret_until": None, "created_at": 1795622611,
            "disabled": False, "disabled_reason": None, "failing_since": None}
SECRET = "whsec_khS3WP7ydmLylhYfMu4W7e8diOqtdLdD1w/SMQceFtU="
ATTEMPT = {"webhook_id": "7-wh_571a3561f26493a3", "attempt": 1, "at": "2026-11-25T16:03:32.776Z",
           "status": 500, "error": "not a 2xx answer", "duration_ms": 2}
TEST_RESULT = {"webhook_id": "test_60ce3dbd010399b51c3bb90f", "delivered": True, "status": 200,
               "error": None, "duration_ms": 0}


def _with(base, **changes):
    """A copy of base with keys changed; a value of ... deletes the key."""
    out = json.loads(json.dumps(base))
    for k, v in changes.items():
        if v is ...:
            out.pop(k, None)
        else:
            out[k] = v
    return out


GOOD = [
    ("ws-server-message.schema.json", None, UPDATE),
    ("ws-server-message.schema.json", None, SNAPSHOT),
    ("ws-server-message.schema.json", None, _with(SNAPSHOT, reset=True, incidents=[])),
    ("ws-server-message.schema.json", None, WELCOME),
    ("ws-server-message.schema.json", None, ERROR),
    ("ws-server-message.schema.json", None, HEARTBEAT),
    ("ws-client-message.schema.json", None, SUBSCRIBE),
    ("ws-client-message.schema.json", None, {"type": "unsubscribe", "id": "default"}),
    ("sse-event.schema.json", None, UPDATE),
    ("sse-event.schema.json", "event", SSE),
    ("incidents-response.schema.json", None, LIST),
    ("incidents-response.schema.json", None, DETAIL),
    ("error-response.schema.json", None, HTTP_ERROR),
    ("webhook-message.schema.json", None, WH_UPDATE),
    ("webhook-message.schema.json", None, WH_TEST),
    ("webhook-message.schema.json", "headers", WH_HEADERS),
    ("webhook-endpoint.schema.json", "endpoint-with-secret", _with(ENDPOINT, secret=SECRET)),
    ("webhook-endpoint.schema.json", "endpoint-shown", ENDPOINT),
    ("webhook-endpoint.schema.json", "show",
     {"endpoint": ENDPOINT, "attempts": [ATTEMPT], "pending": 0, "dead": 1,
      "dead_messages": [{"webhook_id": "7-wh_0123456789abcdef", "seq": 7, "incident_id": "inc-1",
                         "attempts": 3, "created_at_ms": 1764072000000, "last_status": 500,
                         "last_error": "not a 2xx answer"}]}),
    ("webhook-endpoint.schema.json", "test-result", TEST_RESULT),
    ("incident-state.schema.json", None, STATE),
    ("filter.schema.json", None, {}),
]

BAD = [
    # WebSocket, server → client
    ("update without seq", "ws-server-message.schema.json", None, _with(UPDATE, seq=...)),
    ("update with seq 0", "ws-server-message.schema.json", None, _with(UPDATE, seq=0)),
    ("update with a string seq", "ws-server-message.schema.json", None, _with(UPDATE, seq="7")),
    ("update without sub", "ws-server-message.schema.json", None, _with(UPDATE, sub=...)),
    ("update without epoch", "ws-server-message.schema.json", None, _with(UPDATE, epoch=...)),
    ("update with an undocumented field", "ws-server-message.schema.json", None,
     _with(UPDATE, extra=1)),
    ("update whose incident has no started_at", "ws-server-message.schema.json", None,
     _with(UPDATE, incident=_with(STATE, started_at=...))),
    ("update whose incident has no updated_at", "ws-server-message.schema.json", None,
     _with(UPDATE, incident=_with(STATE, updated_at=...))),
    ("update whose incident has no kind", "ws-server-message.schema.json", None,
     _with(UPDATE, incident=_with(STATE, kind=...))),
    ("update whose incident has a maintenance status", "ws-server-message.schema.json", None,
     _with(UPDATE, incident=_with(STATE, status="scheduled"))),
    ("update whose incident has no components", "ws-server-message.schema.json", None,
     _with(UPDATE, incident=_with(STATE, components=[]))),
    ("update whose started_at is not RFC 3339 UTC", "ws-server-message.schema.json", None,
     _with(UPDATE, incident=_with(STATE, started_at="2026-11-25 12:00:01"))),
    ("snapshot with reset false", "ws-server-message.schema.json", None,
     _with(SNAPSHOT, reset=False)),
    ("snapshot without incidents", "ws-server-message.schema.json", None,
     _with(SNAPSHOT, incidents=...)),
    ("welcome without heartbeat_s", "ws-server-message.schema.json", None,
     _with(WELCOME, heartbeat_s=...)),
    ("welcome with heartbeat_s 0", "ws-server-message.schema.json", None,
     _with(WELCOME, heartbeat_s=0)),
    ("error with an unknown code", "ws-server-message.schema.json", None,
     _with(ERROR, code="oops")),
    ("error without message", "ws-server-message.schema.json", None, _with(ERROR, message=...)),
    ("heartbeat without seq", "ws-server-message.schema.json", None, _with(HEARTBEAT, seq=...)),
    ("an unknown message type", "ws-server-message.schema.json", None,
     _with(HEARTBEAT, type="hello")),
    ("a sub id with a space", "ws-server-message.schema.json", None, _with(UPDATE, sub="a b")),
    # WebSocket, client → server
    ("subscribe without id", "ws-client-message.schema.json", None, _with(SUBSCRIBE, id=...)),
    ("subscribe with a 65-character id", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, id="a" * 65)),
    ("subscribe with since -1", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, since=-1)),
    ("subscribe with since as a string", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, since="3")),
    ("subscribe with a 64-character epoch", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, epoch="e" * 64)),
    ("subscribe with an unknown filter key", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, filter={"component": ["playback"]})),
    ("subscribe with min_impact apocalyptic", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, filter={"min_impact": "apocalyptic"})),
    ("subscribe with components not a list", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, filter={"components": "playback"})),
    ("subscribe with 65 components", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, filter={"components": ["a"] * 65})),
    ("subscribe with an upper-case component", "ws-client-message.schema.json", None,
     _with(SUBSCRIBE, filter={"components": ["Playback"]})),
    ("unsubscribe without id", "ws-client-message.schema.json", None, {"type": "unsubscribe"}),
    ("an unknown client message type", "ws-client-message.schema.json", None,
     {"type": "resubscribe", "id": "a"}),
    # SSE
    ("SSE event named snapshot carrying an update", "sse-event.schema.json", "event",
     _with(SSE, event="snapshot")),
    ("SSE id without seq", "sse-event.schema.json", "event", _with(SSE, id=EPOCH)),
    ("SSE data that is a welcome", "sse-event.schema.json", None, WELCOME),
    # HTTP
    ("incidents list without epoch", "incidents-response.schema.json", None,
     _with(LIST, epoch=...)),
    ("incident detail with 101 updates", "incidents-response.schema.json", None,
     _with(DETAIL, updates=DETAIL["updates"] * 101)),
    ("incident detail update without seq", "incidents-response.schema.json", None,
     _with(DETAIL, updates=[{"incident": STATE}])),
    ("HTTP error with an unknown code", "error-response.schema.json", None,
     _with(HTTP_ERROR, error="oops")),
    ("HTTP error without message", "error-response.schema.json", None,
     _with(HTTP_ERROR, message=...)),
    ("HTTP error with an extra field", "error-response.schema.json", None,
     _with(HTTP_ERROR, status=400)),
    # Webhooks
    ("incident.updated without seq", "webhook-message.schema.json", None,
     _with(WH_UPDATE, seq=...)),
    ("incident.updated with an epoch field", "webhook-message.schema.json", None,
     _with(WH_UPDATE, epoch=EPOCH)),
    ("webhook.test with a seq-like id", "webhook-message.schema.json", None,
     _with(WH_TEST, webhook_id="7-wh_571a3561f26493a3")),
    ("a signature that is not v1,<base64>", "webhook-message.schema.json", "headers",
     _with(WH_HEADERS, **{"webhook-signature": "v2,abc"})),
    ("headers without webhook-timestamp", "webhook-message.schema.json", "headers",
     _with(WH_HEADERS, **{"webhook-timestamp": ...})),
    ("create with an ftp url", "webhook-endpoint.schema.json", "create-request",
     {"url": "ftp://example.com/x"}),
    ("create with a space in the url", "webhook-endpoint.schema.json", "create-request",
     {"url": "http://example.com/a b"}),
    ("create with a filter that is not an object", "webhook-endpoint.schema.json",
     "create-request", {"url": "https://example.com/", "filter": ["playback"]}),
    ("create with an unknown field", "webhook-endpoint.schema.json", "create-request",
     {"url": "https://example.com/", "secret": SECRET}),
    ("create without url", "webhook-endpoint.schema.json", "create-request", {"description": "x"}),
    ("endpoint shown with its secret", "webhook-endpoint.schema.json", "endpoint-shown",
     _with(ENDPOINT, secret=SECRET)),
    ("endpoint shown with its secrets list", "webhook-endpoint.schema.json", "endpoint-shown",
     _with(ENDPOINT, secrets=[SECRET])),
    ("created endpoint without its secret", "webhook-endpoint.schema.json",
     "endpoint-with-secret", ENDPOINT),
    ("a secret without whsec_", "webhook-endpoint.schema.json", "endpoint-with-secret",
     _with(ENDPOINT, secret=SECRET[6:])),
    ("endpoint whose filter lacks min_impact", "webhook-endpoint.schema.json", "endpoint-shown",
     _with(ENDPOINT, filter={"components": [], "regions": []})),
    ("attempt with attempt 0", "webhook-endpoint.schema.json", "show",
     {"endpoint": ENDPOINT, "attempts": [_with(ATTEMPT, attempt=0)], "pending": 0, "dead": 0,
      "dead_messages": []}),
    ("show without dead", "webhook-endpoint.schema.json", "show",
     {"endpoint": ENDPOINT, "attempts": [], "pending": 0}),
    ("test result delivered with an error", "webhook-endpoint.schema.json", "test-result",
     _with(TEST_RESULT, error="not a 2xx answer")),
    ("test result delivered with status 500", "webhook-endpoint.schema.json", "test-result",
     _with(TEST_RESULT, status=500)),
    ("test result failed without an error", "webhook-endpoint.schema.json", "test-result",
     _with(TEST_RESULT, delivered=False)),
    ("replay result without superseded", "webhook-endpoint.schema.json", "replay-result",
     {"replayed": 1}),
    ("delete answer of 0", "webhook-endpoint.schema.json", "deleted", {"deleted": 0}),
]


@pytest.mark.parametrize("name,part,doc", GOOD,
                         ids=[f"{n}#{p or ''}:{d.get('type', '')}" for n, p, d in GOOD])
def test_known_good_messages_pass(name, part, doc):
    check(name, doc, part)


@pytest.mark.parametrize("label,name,part,doc", BAD, ids=[b[0] for b in BAD])
def test_known_bad_messages_are_refused(label, name, part, doc):
    assert not valid(name, doc, part), f"{name} accepts {label}: {json.dumps(doc)[:300]}"
    # Refused by its own kind too, not only because no other kind fits.
    if part is None and kind_part(name, doc):
        assert not valid(name, doc, kind_part(name, doc)), f"$defs/{doc['type']} accepts {label}"


def _codes_sent(pattern, paths):
    codes = set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            codes |= set(re.findall(pattern, f.read()))
    return codes


def test_error_codes_in_the_code_are_the_schemas_codes():
    """The code's error codes, scanned from its sources, equal the enums."""
    broker = os.path.join(REPO, "broker")
    ws_sent = _codes_sent(r'send_error\(\s*s,\s*"([a-z_]+)"',
                          glob.glob(os.path.join(broker, "ws", "*.c")))
    # The client-token verdicts (http/client_auth.c) are answered over HTTP
    # and, at a session's start, forwarded by ws.c as they are.
    token_codes = _codes_sent(r'refuse\(\s*v,\s*[0-9]{3},\s*"([a-z_]+)"',
                              [os.path.join(broker, "http", "client_auth.c")])
    assert token_codes, "found no client-token refusals: the scan is out of date"
    ws_sent |= token_codes
    ws_enum = set(SCHEMAS["ws-server-message.schema.json"]["$defs"]["error"]["properties"]
                  ["code"]["enum"])
    assert ws_sent, "found no send_error calls: the scan is out of date"
    assert ws_sent == ws_enum, (f"WebSocket error codes: sent but not in the schema "
                                f"{sorted(ws_sent - ws_enum)}, in the schema but never sent "
                                f"{sorted(ws_enum - ws_sent)}")
    http_sent = _codes_sent(
        r'(?:respond_error|reply_error|tc_admin_reply_error)\([^;"]*?,\s*[0-9]{3},\s*"([a-z_]+)"',
        [p for p in glob.glob(os.path.join(broker, "**", "*.c"), recursive=True)
         if os.sep + "ws" + os.sep not in p])
    http_sent |= token_codes
    http_enum = set(SCHEMAS["error-response.schema.json"]["properties"]["error"]["enum"])
    assert http_sent, "found no respond_error calls: the scan is out of date"
    assert http_sent == http_enum, (f"HTTP error codes: sent but not in the schema "
                                    f"{sorted(http_sent - http_enum)}, in the schema but never "
                                    f"sent {sorted(http_enum - http_sent)}")


# ------------------------------------------------------------- WebSocket


async def _until_heartbeat(ws, timeout=8):
    """Reads raw frames until a heartbeat; the others go to ws.messages."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no heartbeat within {timeout}s; last: {ws.tail()}"
        try:
            raw = await asyncio.wait_for(ws.conn.recv(), left)
        except asyncio.TimeoutError:
            continue
        msg = json.loads(raw)
        if msg.get("type") == "heartbeat":
            ws.heartbeats.append(msg)
            return msg
        ws.messages.append(msg)


def _check_state(state, first_occurred_at):
    assert state["updated_at"] == state["occurred_at"], state
    assert state["started_at"] == first_occurred_at, state


def test_websocket_messages_match_the_schema(tocsind_factory, kafka):
    t = tocsind_factory(env={"TOCSIN_WS_HEARTBEAT": "1s", "TOCSIN_WS_MAX_SUBSCRIPTIONS": "2"})
    iid, mid = uid("inc"), uid("mnt")
    v1 = event(iid, 1, regions=["eu-west"], links={"status": "https://status.example/1"},
               component_status={"playback": "partial_outage"}, affected_users=1200)
    v2 = event(iid, 2, status="identified", impact="major", extra={"kept": [1, 2]})
    mnt = event(mid, 1, kind="maintenance", status="scheduled", impact="none")
    sessions = []

    async def body():
        ws = await Ws.connect(t.ws_url, query(components=["playback"]))
        sessions.append(ws)
        await ws.expect("snapshot")
        await in_thread(kafka.produce_all, [v1, v2])
        ups = await ws.updates(2)
        await in_thread(kafka.produce, mnt)
        ups += await ws.updates(1)
        await ws.send({"type": "unsubscribe", "id": "nope"})
        await ws.expect("error")
        await ws.send({"type": "subscribe", "id": "default"})
        await ws.expect("error")
        await ws.send({"type": "subscribe", "id": "second", "filter": {"min_impact": "major"}})
        snap2 = await ws.expect("snapshot")
        await ws.send({"type": "subscribe", "id": "third"})
        await ws.expect("error")
        await ws.send('{"type": "subscribe", "id": "x", "since": -1}')
        await ws.expect("error")
        await _until_heartbeat(ws)
        await ws.close()

        # A resume that cannot be served exactly: a snapshot with reset.
        back = await Ws.connect(t.ws_url, query(since=1, epoch="not-the-epoch"))
        sessions.append(back)
        reset = await back.expect("snapshot")
        await back.close()

        # Fatal errors of the query string: error, then 1008.
        codes = []
        for qs in ("min_impact=apocalyptic", "since=abc"):
            bad = await Ws.connect(t.ws_url, qs)
            sessions.append(bad)
            await bad.expect("error")
            codes.append(await bad.closed(10))
        return ups, snap2, reset, codes

    ups, snap2, reset, codes = run(body())
    seen = []
    for ws in sessions:
        for msg in [ws.welcome] + ws.messages + ws.heartbeats:
            check("ws-server-message.schema.json", msg)
            seen.append(msg)
    kinds = {m["type"] for m in seen}
    assert kinds == {"welcome", "snapshot", "update", "error", "heartbeat"}, kinds
    errors = {m["code"] for m in seen if m["type"] == "error"}
    assert errors == {"unknown_subscription", "duplicate_subscription", "too_many_subscriptions",
                      "bad_message", "bad_filter", "bad_request"}, errors
    assert codes == [1008, 1008]
    assert reset.get("reset") is True and reset["sub"] == "default"
    assert snap2["sub"] == "second" and [i["incident_id"] for i in snap2["incidents"]] == [iid]
    # What the schema's descriptions promise about the state.
    assert [u["incident"]["incident_id"] for u in ups] == [iid, iid, mid]
    _check_state(ups[0]["incident"], v1["occurred_at"])
    _check_state(ups[1]["incident"], v1["occurred_at"])
    _check_state(ups[2]["incident"], mnt["occurred_at"])
    assert ups[0]["incident"]["kind"] == "incident" and "kind" not in v1
    assert ups[1]["incident"]["extra"] == {"kept": [1, 2]}


# Client messages: (raw text). Each goes to a live session; the server's
# verdict (an error with code bad_message, or not) must equal the schema's.
CLIENT_MESSAGES = [
    '{"type":"subscribe","id":"c"}',
    '{"type":"subscribe","id":"c","filter":{}}',
    '{"type":"subscribe","id":"c","filter":null,"since":null,"epoch":null}',
    '{"type":"subscribe","id":"A.b_c:d-9","filter":{"components":["playback","search"],'
    '"regions":["eu-west"],"min_impact":"critical"}}',
    '{"type":"subscribe","id":"c","since":0,"epoch":"e"}',
    '{"type":"subscribe","id":"c","since":12345678901}',
    '{"type":"subscribe","id":"c","extra":"ignored"}',
    '{"type":"subscribe","id":"' + "x" * 64 + '"}',
    '{"type":"subscribe","id":"c","filter":{"components":[]}}',
    '{"type":"subscribe","id":"c","filter":{"components":[' + ",".join(['"a"'] * 64) + ']}}',
    '{"type":"subscribe","id":"c","epoch":"' + "e" * 63 + '"}',
    '{"type":"unsubscribe","id":"c"}',
    '{"type":"unsubscribe","id":"c","filter":"ignored"}',
    'this is not json',
    '[]',
    '"subscribe"',
    '{}',
    '{"type":"subscribe"}',
    '{"id":"c"}',
    '{"type":"hello","id":"c"}',
    '{"type":"SUBSCRIBE","id":"c"}',
    '{"type":"subscribe","id":""}',
    '{"type":"subscribe","id":"' + "x" * 65 + '"}',
    '{"type":"subscribe","id":"a b"}',
    '{"type":"subscribe","id":5}',
    '{"type":"subscribe","id":"c","since":-1}',
    '{"type":"subscribe","id":"c","since":"5"}',
    '{"type":"subscribe","id":"c","since":true}',
    '{"type":"subscribe","id":"c","epoch":5}',
    '{"type":"subscribe","id":"c","epoch":"' + "e" * 64 + '"}',
    '{"type":"subscribe","id":"c","filter":[]}',
    '{"type":"subscribe","id":"c","filter":"components=playback"}',
    '{"type":"subscribe","id":"c","filter":{"component":["playback"]}}',
    '{"type":"subscribe","id":"c","filter":{"min_impact":"huge"}}',
    '{"type":"subscribe","id":"c","filter":{"min_impact":null}}',
    '{"type":"subscribe","id":"c","filter":{"components":"playback"}}',
    '{"type":"subscribe","id":"c","filter":{"components":["Playback"]}}',
    '{"type":"subscribe","id":"c","filter":{"components":[' + ",".join(['"a"'] * 65) + ']}}',
    '{"type":"subscribe","id":"c","filter":{"regions":[""]}}',
    '{"type":"subscribe","id":"c","filter":{"regions":[1]}}',
    '{"type":"unsubscribe"}',
    '{"type":"unsubscribe","id":"a b"}',
]


def _schema_verdict(text):
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return valid("ws-client-message.schema.json", doc)


def test_client_message_verdicts_of_server_and_schema_agree(tocsind):
    async def body():
        ws = await Ws.connect(tocsind.ws_url)
        await ws.expect("snapshot")
        verdicts = []
        for i, text in enumerate(CLIENT_MESSAGES):
            probe = f"probe-{i}"
            await ws.send(text)
            # A subscription with a fresh id marks the end of the answer.
            await ws.send({"type": "subscribe", "id": probe})
            seen = await ws.until(lambda m: m.get("type") == "snapshot" and m.get("sub") == probe,
                                  timeout=10, what=f"the probe after {text[:60]}")
            refused = any(m.get("type") == "error" and m.get("code") == "bad_message"
                          for m in seen)
            for m in seen:
                if m.get("type") == "snapshot" and m["sub"] != probe:
                    await ws.send({"type": "unsubscribe", "id": m["sub"]})
            await ws.send({"type": "unsubscribe", "id": probe})
            verdicts.append((text, not refused, [m for m in seen if m.get("type") == "error"]))
        await ws.close()
        return verdicts, ws.messages

    verdicts, messages = run(body(), timeout=120)
    for msg in messages:
        check("ws-server-message.schema.json", msg)
    wrong = [f"{'accepted' if ok else 'refused'} by the server, "
             f"{'accepted' if _schema_verdict(text) else 'refused'} by the schema: {text[:120]}"
             f" {errs[:1]}"
             for text, ok, errs in verdicts if ok != _schema_verdict(text)]
    assert not wrong, "\n".join(wrong)
    assert sum(ok for _, ok, _ in verdicts) >= 10 and sum(not ok for _, ok, _ in verdicts) >= 20


# -------------------------------------------------------------------- SSE


def test_sse_events_match_the_schema(tocsind, kafka):
    iid = uid("inc")
    s = Sse(tocsind.url, query(components=["playback"]))
    try:
        assert s.status == 200
        snap = s.next()
        kafka.produce_all([event(iid, 1), event(iid, 2, status="resolved")])
        ups = [s.next(), s.next()]
    finally:
        s.close()
    back = Sse(tocsind.url, last_event_id="another-epoch:1")
    try:
        reset = back.next()
    finally:
        back.close()
    evs = [snap] + ups + [reset]
    for ev in evs:
        check("sse-event.schema.json", ev, "event")
        check("sse-event.schema.json", ev["data"])
        assert ev["id"] == f"{ev['data']['epoch']}:{ev['data']['seq']}", ev
    assert [e["event"] for e in evs] == ["snapshot", "update", "update", "snapshot"]
    assert reset["data"].get("reset") is True
    assert ups[1]["data"]["incident"]["status"] == "resolved"


# ------------------------------------------------------------------- HTTP


def _error_body(status, body, want_status, want_code):
    assert status == want_status, (status, body[:300])
    doc = json.loads(body)
    check("error-response.schema.json", doc)
    assert doc["error"] == want_code, doc
    return doc


def test_incidents_answers_and_error_bodies_match_the_schema(tocsind_factory, kafka):
    t = tocsind_factory(env={"TOCSIN_WS_ALLOWED_ORIGINS": "https://app.example"})
    empty, _ = t.get_json("/v1/incidents")
    check("incidents-response.schema.json", empty, "list")
    a, b = uid("inc"), uid("inc")
    va1 = event(a, 1, components=["search"])
    kafka.produce_all([va1, event(a, 2, status="monitoring", components=["search", "playback"]),
                       event(b, 1), event(b, 2, status="resolved")])
    t.wait_metric('tocsin_events_total{result="accepted"}', 4)
    wait_until(lambda: t.get_json("/v1/incidents")[0]["seq"] >= empty["seq"] + 4, 15,
               what="the hub at the last update")
    listed, headers = t.get_json("/v1/incidents")
    check("incidents-response.schema.json", listed)
    check("incidents-response.schema.json", listed, "list")
    assert [i["incident_id"] for i in listed["incidents"]] == [a]
    assert headers["etag"] == f'"{listed["epoch"]}:{listed["seq"]}"'
    filtered, _ = t.get_json("/v1/incidents?" + query(components=["playback"], min_impact="none"))
    check("incidents-response.schema.json", filtered, "list")
    for iid, n in ((a, 2), (b, 2)):
        detail, _ = t.get_json(f"/v1/incidents/{iid}")
        check("incidents-response.schema.json", detail)
        check("incidents-response.schema.json", detail, "detail")
        assert len(detail["updates"]) == n
        assert detail["updates"][0]["incident"] == detail["incident"], "newest first"
        assert detail["updates"][0]["seq"] > detail["updates"][1]["seq"]
        for u in detail["updates"]:
            assert u["incident"]["started_at"] == detail["updates"][-1]["incident"]["occurred_at"]
    assert json.loads(t.get(f"/v1/incidents/{b}")[2])["incident"]["status"] == "resolved"

    codes = set()
    for path, status, code in [
        ("/v1/incidents?min_impact=apocalyptic", 400, "bad_filter"),
        ("/v1/incidents?components=Bad", 400, "bad_filter"),
        ("/v1/events?regions=a,,b", 400, "bad_filter"),
        ("/v1/incidents/" + uid("never"), 404, "not_found"),
        ("/v1/incidents/not%20an%20id", 404, "not_found"),
        ("/v1/no-such-route", 404, "not_found"),
        ("/v1/ws", 426, "upgrade_required"),
        ("/v1/webhooks", 404, "admin_disabled"),
        ("/v1/incidents?components=search&" + "&".join(f"x{i}=" + "a" * 500 for i in range(5)),
         414, "uri_too_long"),
    ]:
        st, _, body = t.get(path)
        codes.add(_error_body(st, body, status, code)["error"])
    st, _, body = t.get("/v1/events", headers={"Origin": "https://evil.example"})
    codes.add(_error_body(st, body, 403, "origin_not_allowed")["error"])
    st, _, body = t.request("POST", "/healthz", body="{}")
    codes.add(_error_body(st, body, 405, "method_not_allowed")["error"])
    st, _, body = t.request("POST", "/v1/incidents", body="{}")
    codes.add(_error_body(st, body, 404, "admin_disabled")["error"])
    assert len(codes) == 7


# A query parameter over 1023 bytes once dropped the rest of the filter
# without a word (lws_hdr_copy_fragment fails a fragment that does not fit).
def test_a_long_query_fragment_is_an_error_not_an_ignored_filter(tocsind, kafka):
    kafka.produce_all([event(uid("inc"), 1, components=["search"]),
                       event(uid("inc"), 1, components=["playback"])])
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', 2)
    wait_until(lambda: len(tocsind.get_json("/v1/incidents")[0]["incidents"]) == 2, 10,
               what="both incidents active")
    st, _, body = tocsind.get("/v1/incidents?pad=" + "a" * 1100 + "&components=search")
    if st == 200:
        got = [i["components"] for i in json.loads(body)["incidents"]]
        assert got == [["search"]], f"the filter components=search was ignored: {got}"
    else:
        _error_body(st, body, st, "uri_too_long")
    # Past the bound the answer is 414, never a partial filter.
    st, _, body = tocsind.get("/v1/incidents?pad=" + "a" * 3000 + "&components=search")
    _error_body(st, body, 414, "uri_too_long")


# --------------------------------------------------------------- webhooks


def _admin(t, method, path, body=None, headers=AUTH):
    status, _, text = t.request(method, path, body=body, headers=headers)
    return status, json.loads(text) if text else None


def test_webhook_messages_and_admin_answers_match_the_schema(tocsind_factory, kafka, receivers):
    t = start(tocsind_factory, TOCSIN_WEBHOOK_RETRY_SCHEDULE="200ms")
    ok, failing = receivers(), receivers(script=[500] * 50)
    E = "webhook-endpoint.schema.json"

    req = {"url": ok.url, "description": "schemas test", "filter": {"components": ["playback"]}}
    check(E, req, "create-request")
    status, ep = _admin(t, "POST", "/v1/webhooks", req)
    assert status == 201, ep
    check(E, ep, "endpoint-with-secret")
    check(E, ep)
    assert ep["filter"] == {"components": ["playback"], "regions": [], "min_impact": "none"}
    bad_req = {"url": failing.url}
    check(E, bad_req, "create-request")
    status, ep_bad = _admin(t, "POST", "/v1/webhooks", bad_req)
    assert status == 201, ep_bad
    check(E, ep_bad, "endpoint-with-secret")
    assert ep_bad["description"] == ""

    # A delivery of each kind, caught by real receivers.
    iid = uid("inc")
    v1 = event(iid, 1)
    kafka.produce(v1)
    wait_until(lambda: ok.got, 15, what="the delivery")
    status, tested = _admin(t, "POST", f"/v1/webhooks/{ep['id']}/test")
    assert status == 200
    check(E, tested, "test-result")
    assert tested["delivered"] is True
    assert len(ok.got) == 2
    for headers, body in ok.got:
        msg = json.loads(body)
        check("webhook-message.schema.json", msg)
        check("webhook-message.schema.json", headers, "headers")
        assert verify(ep["secret"], headers, body)
    upd, test_msg = json.loads(ok.got[0][1]), json.loads(ok.got[1][1])
    check("webhook-message.schema.json", upd, "incident.updated")
    check("webhook-message.schema.json", test_msg, "webhook.test")
    assert ok.got[0][0]["webhook-id"] == f"{upd['seq']}-{ep['id']}"
    assert ok.got[1][0]["webhook-id"] == test_msg["webhook_id"] == tested["webhook_id"]
    assert test_msg["endpoint_id"] == ep["id"]
    _check_state(upd["incident"], v1["occurred_at"])

    # The failing endpoint: attempts with errors, then the dead list.
    wait_until(lambda: _admin(t, "GET", f"/v1/webhooks/{ep_bad['id']}")[1]["dead"] == 1, 15,
               what="the failing delivery dead-lettered")
    status, shown = _admin(t, "GET", f"/v1/webhooks/{ep_bad['id']}")
    assert status == 200
    check(E, shown, "show")
    check(E, shown)
    assert [a["attempt"] for a in shown["attempts"]] == [2, 1], "newest first"
    assert all(a["status"] == 500 and a["error"] for a in shown["attempts"])
    assert [d["attempts"] for d in shown["dead_messages"]] == [2]
    assert shown["dead_messages"][0]["webhook_id"].endswith(ep_bad["id"])
    status, tested_bad = _admin(t, "POST", f"/v1/webhooks/{ep_bad['id']}/test")
    check(E, tested_bad, "test-result")
    assert tested_bad["delivered"] is False and tested_bad["status"] == 500
    status, replayed = _admin(t, "POST", f"/v1/webhooks/{ep_bad['id']}/replay")
    assert status == 200
    check(E, replayed, "replay-result")
    assert replayed == {"replayed": 1, "superseded": 0}

    status, shown_ok = _admin(t, "GET", f"/v1/webhooks/{ep['id']}")
    check(E, shown_ok, "show")
    assert shown_ok["attempts"][0]["error"] is None and shown_ok["attempts"][0]["status"] == 200

    # Rotation: two signatures until the old secret expires.
    status, rotated = _admin(t, "POST", f"/v1/webhooks/{ep['id']}/rotate-secret")
    assert status == 200
    check(E, rotated, "endpoint-with-secret")
    assert rotated["secret"] != ep["secret"] and isinstance(rotated["old_secret_until"], int)
    kafka.produce(event(iid, 2, status="resolved"))
    wait_until(lambda: len(ok.got) == 3, 15, what="the delivery after the rotation")
    headers, body = ok.got[2]
    check("webhook-message.schema.json", json.loads(body))
    check("webhook-message.schema.json", headers, "headers")
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify(rotated["secret"], headers, body) and verify(ep["secret"], headers, body)

    status, listed = _admin(t, "GET", "/v1/webhooks")
    assert status == 200
    check(E, listed, "list")
    assert sorted(e["id"] for e in listed["webhooks"]) == sorted([ep["id"], ep_bad["id"]])
    status, enabled = _admin(t, "POST", f"/v1/webhooks/{ep['id']}/enable")
    assert status == 200
    check(E, enabled, "endpoint-shown")
    status, deleted = _admin(t, "DELETE", f"/v1/webhooks/{ep_bad['id']}")
    assert status == 200
    check(E, deleted, "deleted")

    # Admin error bodies.
    codes = set()
    for method, path, body, headers, want, code in [
        ("GET", "/v1/webhooks", None, {}, 401, "unauthorized"),
        ("GET", "/v1/webhooks", None, {"Authorization": "Bearer wrong"}, 401, "unauthorized"),
        ("POST", "/v1/webhooks", "{not json", AUTH, 400, "bad_json"),
        ("POST", "/v1/webhooks", {"url": ok.url, "secret": "x"}, AUTH, 400, "bad_request"),
        ("GET", "/v1/webhooks/wh_0000000000000000", None, AUTH, 404, "not_found"),
        ("POST", "/v1/webhooks/wh_0000000000000000/test", None, AUTH, 404, "not_found"),
        ("GET", "/v1/webhooks/x/y/z", None, AUTH, 404, "not_found"),
        ("DELETE", "/v1/webhooks", None, AUTH, 405, "method_not_allowed"),
    ]:
        st, _, text = t.request(method, path, body=body, headers=headers)
        codes.add(_error_body(st, text, want, code)["error"])
    st, _, text = http_request("POST", t.url + "/v1/webhooks", body=b"x" * 70000,
                               headers=AUTH, timeout=10)
    codes.add(_error_body(st, text, 413, "body_too_large")["error"])
    assert len(codes) == 6


# Create requests: the server's verdict (201 or 400) must equal the schema's.
URL = "https://hooks.example/x"
CREATE_REQUESTS = [
    {"url": URL},
    {"url": "http://hooks.example/x", "description": "d" * 1024},
    {"url": URL, "filter": {}},
    {"url": URL, "filter": {"components": ["playback"], "regions": ["eu-west"],
                            "min_impact": "critical"}},
    {"url": "https://" + "a" * 2040},
    {"url": "http://"},
    {"url": URL, "description": ""},
    {},
    {"url": 5},
    {"url": "ftp://hooks.example/x"},
    {"url": "HTTPS://hooks.example/x"},
    {"url": "https://hooks.example/a b"},
    {"url": "https://hooks.example/a\tb"},
    {"url": "https://" + "a" * 2041},
    {"url": URL, "filter": None},
    {"url": URL, "filter": []},
    {"url": URL, "filter": {"min_impact": "huge"}},
    {"url": URL, "filter": {"components": ["Playback"]}},
    {"url": URL, "filter": {"colour": "red"}},
    {"url": URL, "description": 5},
    {"url": URL, "description": None},
    {"url": URL, "description": "d" * 1025},
    {"url": URL, "secret": "whsec_x"},
    {"url": URL, "id": "wh_0000000000000000"},
]


def test_create_request_verdicts_of_server_and_schema_agree(tocsind_factory):
    t = start(tocsind_factory)
    wrong = []
    for req in CREATE_REQUESTS:
        status, doc = _admin(t, "POST", "/v1/webhooks", req)
        assert status in (201, 400), (status, doc)
        if status == 201:
            check("webhook-endpoint.schema.json", doc, "endpoint-with-secret")
            assert _admin(t, "DELETE", f"/v1/webhooks/{doc['id']}")[0] == 200
        else:
            check("error-response.schema.json", doc)
        if (status == 201) != valid("webhook-endpoint.schema.json", req, "create-request"):
            verdict = "accepts" if status != 201 else "refuses"
            wrong.append(f"server {status}, schema {verdict}: {json.dumps(req)[:120]} {doc}")
    assert not wrong, "\n".join(wrong)
