# tocsin — SPDX-License-Identifier: MIT
#
# schemas/asyncapi.yaml held to the JSON Schemas beside it and to the code,
# without a server: the document is AsyncAPI 3.0.0 in the parts it uses
# (required fields, operations that pick messages of their own channel),
# every $ref resolves to a file and JSON pointer, every payload is a $ref
# into the schemas (no copies), every message kind of a channel schema is
# carried by a message of its channel in the right direction (a kind added
# to a schema without a channel fails here), the examples validate, and the
# names the document states (topics, paths, subprotocol, query keys, Kafka
# headers and client ids) are the ones the C code and the config use.
#
# The official AsyncAPI JSON Schema is not needed (no network, no npm). When
# TOCSIN_ASYNCAPI_SPEC names its file (the npm package @asyncapi/specs,
# schemas/3.0.0-without-$id.json), the document is validated against it too.

import functools
import glob
import json
import os
import re
import urllib.parse

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator, RefResolver

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_DIR = os.path.join(REPO, "schemas")
DOC_PATH = os.path.join(SCHEMA_DIR, "asyncapi.yaml")
BASE = "https://tocsin.dev/schemas/"
# The document's place among the schemas' $ids, so that its relative $refs
# ("./filter.schema.json#...") resolve to them.
DOC_URI = BASE + "asyncapi.yaml"

# Which channel (and direction, seen from tocsind) carries the message kinds
# of each schema file. Kinds are a file's oneOf targets and its $defs with a
# `type` const, or the whole file when it has neither.
CHANNEL_SCHEMAS = {
    "incident-event.schema.json": [("incidents", "receive"), ("incidents", "send")],
    "ws-server-message.schema.json": [("ws", "send")],
    "ws-client-message.schema.json": [("ws", "receive")],
    "sse-event.schema.json": [("events", "send")],
    "webhook-message.schema.json": [("webhooks", "send")],
}
# Schema files that are not channel messages, and why; a new file must be
# added to one of the two maps.
NOT_CHANNEL_MESSAGES = {
    "config.schema.json": "the tocsind -c file",
    "filter.schema.json": "part of messages and of the query strings",
    "incident-state.schema.json": "part of messages",
    "incidents-response.schema.json": "GET /v1/incidents answers (request/response)",
    "error-response.schema.json": "HTTP error bodies (request/response)",
    "webhook-endpoint.schema.json": "the webhook admin API (request/response)",
    "email-subscriber.schema.json": "the email subscriber API (request/response; mail is SMTP)",
}
JSON_TYPES = ("application/json",)


def _load_doc():
    with open(DOC_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _load_schemas():
    out = {}
    for path in sorted(glob.glob(os.path.join(SCHEMA_DIR, "*.schema.json"))):
        with open(path, encoding="utf-8") as f:
            out[os.path.basename(path)] = json.load(f)
    return out


DOC = _load_doc()
SCHEMAS = _load_schemas()
STORE = {s["$id"]: s for s in SCHEMAS.values() if "$id" in s}
STORE[DOC_URI] = DOC


def source(rel):
    with open(os.path.join(REPO, rel), encoding="utf-8") as f:
        return f.read()


# ---- references ----


def unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def pointer_get(doc, pointer):
    """The value at an RFC 6901 JSON pointer ("" or "/a/b"); KeyError when
    there is none."""
    node = doc
    if pointer in ("", "/"):
        return node
    if not pointer.startswith("/"):
        raise KeyError(f"not a JSON pointer: {pointer!r}")
    for token in pointer[1:].split("/"):
        token = unescape(token)
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise KeyError(f"{pointer}: no {token!r}")
    return node


def refs(node, path=""):
    """Every (JSON pointer of the holder, $ref value) under node."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield path, node["$ref"]
        for k, v in node.items():
            yield from refs(v, f"{path}/{k.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from refs(v, f"{path}/{i}")


def target(ref, in_file=None):
    """(file, pointer) that ref names: file None for the AsyncAPI document,
    else a schema file's name. in_file is the schema file holding ref."""
    file, _, fragment = ref.partition("#")
    pointer = urllib.parse.unquote(fragment)
    if file == "":
        return in_file, pointer
    return os.path.basename(os.path.normpath(file)), pointer


def resolve(ref, in_file=None):
    file, pointer = target(ref, in_file)
    return pointer_get(DOC if file is None else SCHEMAS[file], pointer)


def deref(node):
    """node, or what its internal $ref ("#/...") names, followed to the end."""
    seen = set()
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#"):
        assert node["$ref"] not in seen, f"$ref loop at {node['$ref']}"
        seen.add(node["$ref"])
        node = resolve(node["$ref"])
    return node


# ---- the document's parts ----


def channel_messages(channel_id):
    """{message key: Message Object} of a channel."""
    msgs = DOC["channels"][channel_id].get("messages") or {}
    return {k: deref(v) for k, v in msgs.items()}


def message_actions(channel_id, key):
    """The actions of the operations that pick channels/<id>/messages/<key>."""
    want = f"#/channels/{channel_id}/messages/{key}"
    return {op["action"] for op in DOC["operations"].values()
            if any(m.get("$ref") == want for m in op.get("messages") or [])}


def payload_target(msg):
    return target(msg["payload"]["$ref"])


def kinds(name):
    """The message kinds of schemas/<name>, as (file, pointer) pairs."""
    schema = SCHEMAS[name]
    out = set()
    for alt in schema.get("oneOf", []):
        if "$ref" in alt:
            out.add(target(alt["$ref"], name))
    for key, d in schema.get("$defs", {}).items():
        if isinstance(d.get("properties", {}).get("type", {}).get("const"), str):
            out.add((name, "/$defs/" + key.replace("~", "~0").replace("/", "~1")))
    return out or {(name, "")}


def type_const(file, pointer):
    schema = pointer_get(SCHEMAS[file], pointer)
    return schema.get("properties", {}).get("type", {}).get("const")


@functools.lru_cache(maxsize=None)
def validator(pointer):
    """A validator of the schema at pointer in the document; its $refs
    resolve in the document and, relative to it, in schemas/."""
    resolver = RefResolver(base_uri=DOC_URI, referrer=DOC, store=STORE)
    return Draft202012Validator({"$ref": DOC_URI + "#" + pointer}, resolver=resolver)


def errors(pointer, instance):
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator(pointer).iter_errors(instance)]


def message_pointer(channel_id, key):
    """The pointer of a channel message's Message Object in the document."""
    ref = DOC["channels"][channel_id]["messages"][key]
    pointer = f"/channels/{channel_id}/messages/{key}"
    while isinstance(ref, dict) and "$ref" in ref:
        pointer = target(ref["$ref"])[1]
        ref = pointer_get(DOC, pointer)
    return pointer


ALL_MESSAGES = [(c, k) for c in DOC["channels"] for k in channel_messages(c)]


# ---- structure ----


def test_document_is_asyncapi_3():
    assert DOC["asyncapi"] == "3.0.0"
    extra = {k for k in DOC if not k.startswith("x-")} - {
        "asyncapi", "id", "info", "servers", "defaultContentType", "channels",
        "operations", "components"}
    assert not extra, f"not AsyncAPI 3.0 fields: {extra}"
    info = DOC["info"]
    for field in ("title", "version"):
        assert isinstance(info.get(field), str) and info[field], f"info.{field} required"
    release = re.search(r"project\(tocsin VERSION ([0-9.]+)", source("CMakeLists.txt"))
    assert info["version"] == release.group(1), "info.version is the release (CMakeLists.txt)"
    assert DOC["defaultContentType"] == "application/json"
    assert DOC["channels"] and DOC["operations"]


@pytest.mark.parametrize("server_id", sorted(DOC["servers"]))
def test_server(server_id):
    srv = DOC["servers"][server_id]
    assert isinstance(srv.get("host"), str) and isinstance(srv.get("protocol"), str)
    variables = srv.get("variables") or {}
    for var in re.findall(r"\{([^}]*)\}", srv["host"] + srv.get("pathname", "")):
        assert "default" in variables.get(var, {}), f"{server_id}: {{{var}}} has no default"


def test_tocsind_servers_use_the_default_listener():
    listen = SCHEMAS["config.schema.json"]["properties"]["http"]["properties"]["listen"]
    port = listen["default"].rsplit(":", 1)[1]
    for server_id in ("tocsind", "tocsind-http"):
        assert DOC["servers"][server_id]["variables"]["port"]["default"] == port


@pytest.mark.parametrize("channel_id", sorted(DOC["channels"]))
def test_channel(channel_id):
    ch = DOC["channels"][channel_id]
    assert "address" in ch and (ch["address"] is None or isinstance(ch["address"], str))
    assert ch.get("messages"), f"{channel_id}: no messages"
    for s in ch.get("servers") or []:
        assert s["$ref"].startswith("#/servers/"), f"{channel_id}: server {s} is not a $ref"
        resolve(s["$ref"])
    names = [m.get("name") for m in channel_messages(channel_id).values()]
    assert len(names) == len(set(names)), f"{channel_id}: message names repeat: {names}"
    for key, msg in channel_messages(channel_id).items():
        assert msg.get("name"), f"{channel_id}/{key}: no name"
        assert "payload" in msg, f"{channel_id}/{key}: no payload"
        assert message_actions(channel_id, key), f"{channel_id}/{key}: no operation uses it"


@pytest.mark.parametrize("op_id", sorted(DOC["operations"]))
def test_operation(op_id):
    """An operation names its channel by $ref and picks messages of that
    channel only (AsyncAPI 3.0 §Operation Object); so does its reply."""
    op = DOC["operations"][op_id]
    assert op["action"] in ("send", "receive")

    def check(part, what):
        ch_ref = part["channel"]["$ref"]
        m = re.fullmatch(r"#/channels/([^/]+)", ch_ref)
        assert m and m.group(1) in DOC["channels"], f"{op_id}{what}: channel {ch_ref}"
        assert part.get("messages"), f"{op_id}{what}: no messages"
        for msg in part["messages"]:
            prefix = f"{ch_ref}/messages/"
            assert msg["$ref"].startswith(prefix), f"{op_id}{what}: {msg['$ref']} not in {ch_ref}"
            assert msg["$ref"][len(prefix):] in DOC["channels"][m.group(1)]["messages"]

    check(op, "")
    if "reply" in op:
        check(op["reply"], ".reply")


# ---- references and payloads ----


def test_every_ref_resolves():
    found = list(refs(DOC))
    assert found
    for where, ref in found:
        file, _, _ = ref.partition("#")
        assert not urllib.parse.urlsplit(ref).scheme, f"{where}: {ref} is not relative"
        if file:
            path = os.path.normpath(os.path.join(SCHEMA_DIR, file))
            assert os.path.dirname(path) == SCHEMA_DIR, f"{where}: {ref} leaves schemas/"
            assert os.path.isfile(path), f"{where}: {ref}: no file {file}"
            assert os.path.basename(path) in SCHEMAS, f"{where}: {ref} is not a *.schema.json"
        try:
            got = resolve(ref)
        except KeyError as e:
            pytest.fail(f"{where}: {ref} does not resolve: {e}")
        assert isinstance(got, (dict, bool)), f"{where}: {ref} names a {type(got).__name__}"


@pytest.mark.parametrize("channel_id,key", ALL_MESSAGES)
def test_payload_is_a_ref(channel_id, key):
    """Payloads are $refs, not copies: JSON ones into the schema files."""
    msg = channel_messages(channel_id)[key]
    assert list(msg["payload"]) == ["$ref"], f"{channel_id}/{key}: payload is not a bare $ref"
    file, _ = payload_target(msg)
    if msg.get("contentType", DOC["defaultContentType"]) in JSON_TYPES:
        assert file in SCHEMAS, f"{channel_id}/{key}: JSON payload not from schemas/*.schema.json"


@pytest.mark.parametrize("name", sorted(CHANNEL_SCHEMAS))
def test_every_kind_has_a_channel_message(name):
    """A message kind added to a schema fails here until a message of its
    channel, in its direction, carries it."""
    for channel_id, action in CHANNEL_SCHEMAS[name]:
        carried = {payload_target(msg) for key, msg in channel_messages(channel_id).items()
                   if action in message_actions(channel_id, key)}
        missing = sorted(kinds(name) - carried)
        assert not missing, f"{name}: kinds {missing} not sent/received ({action}) on {channel_id}"


def test_every_schema_file_is_classified():
    unknown = set(SCHEMAS) - set(CHANNEL_SCHEMAS) - set(NOT_CHANNEL_MESSAGES)
    assert not unknown, f"add {sorted(unknown)} to CHANNEL_SCHEMAS or NOT_CHANNEL_MESSAGES"
    gone = (set(CHANNEL_SCHEMAS) | set(NOT_CHANNEL_MESSAGES)) - set(SCHEMAS)
    assert not gone, f"no such schema files: {sorted(gone)}"


@pytest.mark.parametrize("channel_id,key", ALL_MESSAGES)
def test_message_is_a_kind_of_its_channel(channel_id, key):
    """The reverse: a JSON message of a channel carries a kind of a schema
    mapped to that channel, in that direction, and is named after it."""
    msg = channel_messages(channel_id)[key]
    if msg.get("contentType", DOC["defaultContentType"]) not in JSON_TYPES:
        return
    got = payload_target(msg)
    for action in message_actions(channel_id, key):
        allowed = set()
        for name, places in CHANNEL_SCHEMAS.items():
            if (channel_id, action) in places:
                allowed |= kinds(name)
        assert got in allowed, f"{channel_id}/{key} ({action}): {got} is not a kind of it"
    const = type_const(*got)
    if const is not None:
        assert msg["name"] == const, f"{channel_id}/{key}: named {msg['name']}, type {const}"


# ---- examples ----


@pytest.mark.parametrize("channel_id,key", ALL_MESSAGES)
def test_message_examples_validate(channel_id, key):
    msg = channel_messages(channel_id)[key]
    pointer = message_pointer(channel_id, key)
    examples = msg.get("examples") or []
    assert examples, f"{channel_id}/{key}: no example"
    for i, ex in enumerate(examples):
        label = f"{channel_id}/{key} example {ex.get('name', i)}"
        assert "payload" in ex, f"{label}: no payload"
        problems = errors(pointer + "/payload", ex["payload"])
        assert not problems, f"{label}: payload: {problems}"
        # A message with headers shows them in every example.
        assert ("headers" in ex) == ("headers" in msg), f"{label}: headers of the example"
        if "headers" in ex:
            problems = errors(pointer + "/headers", ex["headers"])
            assert not problems, f"{label}: headers: {problems}"


def inline_schemas_with_examples(node=DOC, path=""):
    """(pointer, schema) of every schema in the document (components,
    bindings) that lists `examples`; message examples are tested above."""
    if isinstance(node, dict):
        is_schema = any(k in node for k in ("type", "properties", "allOf", "$ref"))
        if is_schema and isinstance(node.get("examples"), list):
            yield path, node
        for k, v in node.items():
            if path.startswith("/components/messages") or (path == "" and k == "info"):
                continue
            yield from inline_schemas_with_examples(
                v, f"{path}/{k.replace('~', '~0').replace('/', '~1')}")


SCHEMA_EXAMPLES = list(inline_schemas_with_examples())


@pytest.mark.parametrize("pointer", [p for p, _ in SCHEMA_EXAMPLES])
def test_schema_examples_validate(pointer):
    schema = pointer_get(DOC, pointer)
    for ex in schema["examples"]:
        problems = errors(pointer, ex)
        assert not problems, f"{pointer}: example {ex!r}: {problems}"


def test_schema_examples_are_found():
    found = {p for p, _ in SCHEMA_EXAMPLES}
    assert "/channels/ws/bindings/ws/query" in found, found
    assert "/channels/ws/bindings/ws/headers" in found, found


# ---- the names the code uses ----


def test_kafka_topics_are_the_config_defaults():
    kafka = SCHEMAS["config.schema.json"]["properties"]["kafka"]["properties"]
    for channel_id, key in (("incidents", "topic"), ("incidentsDlq", "dlq_topic")):
        ch = DOC["channels"][channel_id]
        assert ch["address"] == kafka[key]["default"]
        assert ch["bindings"]["kafka"]["topic"] == kafka[key]["default"]
    group = DOC["operations"]["consumeIncidentEvents"]["bindings"]["kafka"]["groupId"]
    assert group["default"] == kafka["group"]["default"]


@pytest.mark.parametrize("op_id,path", [
    ("consumeIncidentEvents", "broker/ingest/consumer.c"),
    ("publishIncidentEvent", "broker/ingest/producer.c"),
    ("deadLetter", "broker/ingest/dlq.c"),
])
def test_kafka_client_ids(op_id, path):
    want = DOC["operations"][op_id]["bindings"]["kafka"]["clientId"]["const"]
    assert re.findall(r'"client\.id",\s*"([^"]*)"', source(path)) == [want]


def test_dlq_headers_are_the_ones_dlq_c_adds():
    added = re.findall(r'rd_kafka_header_add\(\s*hdrs,\s*"([^"]+)"', source("broker/ingest/dlq.c"))
    headers = deref(channel_messages("incidentsDlq")["deadLetter"]["headers"])
    assert sorted(added) == sorted(headers["required"]) == sorted(headers["properties"])


def test_paths_are_the_routes():
    routes = source("broker/http/routes.c") + source("broker/http/server.c")
    for channel_id in ("ws", "events"):
        address = DOC["channels"][channel_id]["address"]
        assert f'strcmp(path, "{address}")' in routes, f"{address} is not routed"


def test_subprotocol_is_the_one_ws_c_registers():
    names = re.findall(r'protocol\.name\s*=\s*"([^"]+)"', source("broker/ws/ws.c"))
    assert names == ["tocsin.v1"]
    headers = DOC["channels"]["ws"]["bindings"]["ws"]["headers"]
    assert "Sec-WebSocket-Protocol" in headers["required"]
    assert not errors("/channels/ws/bindings/ws/headers", {"Sec-WebSocket-Protocol": names[0]})
    assert errors("/channels/ws/bindings/ws/headers", {"Sec-WebSocket-Protocol": "tocsin.v2"})


def test_query_keys_are_the_ones_the_code_reads():
    """The query schema lists every key the C code reads from the query
    string of /v1/ws and /v1/events (filter keys included), and each key of
    the filter object."""
    code = (source("broker/ws/ws.c") + source("broker/http/sse.c") +
            source("broker/model/filter.c") + source("broker/http/client_auth.c"))
    read = set(re.findall(r'(?:tc_query_get|query_value)\(\s*qs,\s*"([^"]+)"', code))
    assert {"since", "epoch", "components"} <= read, read
    ws_query = DOC["channels"]["ws"]["bindings"]["ws"]["query"]
    documented = set(ws_query["properties"])
    assert read == documented, f"read by the code {sorted(read)}, documented {sorted(documented)}"
    assert set(SCHEMAS["filter.schema.json"]["properties"]) <= documented
    sse_query = DOC["operations"]["sseSend"]["bindings"]["http"]["query"]
    assert resolve(sse_query["$ref"]) is ws_query


def test_last_event_id_is_read_by_sse_c():
    assert '"last-event-id:"' in source("broker/http/sse.c")
    headers = deref(DOC["operations"]["sseSend"]["bindings"]["http"]["x-request-headers"])
    assert "Last-Event-ID" in headers["properties"]
    assert not errors("/components/schemas/sseRequestHeaders", {"Last-Event-ID": "e:41"})
    assert errors("/components/schemas/sseRequestHeaders", {"Last-Event-ID": "41"})


# ---- the official schema, when it is at hand ----


def test_official_asyncapi_schema():
    spec_path = os.environ.get("TOCSIN_ASYNCAPI_SPEC")
    if not spec_path:
        pytest.skip("set TOCSIN_ASYNCAPI_SPEC to @asyncapi/specs' schemas/3.0.0-without-$id.json")
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    # Behind a $ref from a store: jsonschema 4.10 searches the referrer for
    # `$id` subschemas and trips over the spec's property named `$id`.
    uri = "https://asyncapi.com/definitions/3.0.0/all.json"
    wrapper = {"$ref": uri}
    resolver = RefResolver(base_uri="", referrer=wrapper, store={uri: spec})
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
                for e in Draft7Validator(wrapper, resolver=resolver).iter_errors(DOC)]
    assert not problems, problems
