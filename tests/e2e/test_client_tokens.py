# tocsin — SPDX-License-Identifier: MIT
#
# Client tokens (DESIGN §7; broker/http/client_token.h): with
# auth.client_secret set, WebSocket, SSE and the incident reads need an HS256
# JWT in ?token= or Authorization: Bearer. Missing, bad, expired or alg-none
# tokens get 401 before any upgrade; a filter outside the token's components
# gets 403; a good token gets the usual welcome, snapshot and live updates;
# a subscribe message outside the token gets an error and the session goes
# on. Without the secret nothing changes (every other e2e file runs so).

import asyncio
import json
import os
import socket
import subprocess
import time

import pytest
import websockets

from clients import Sse, Ws, in_thread, query, run
from helpers import binary, client_token, event, uid
from rawws import upgrade_request

SECRET = "e2e client-token secret, 32+ bytes long"


@pytest.fixture
def secured(tocsind_factory):
    return tocsind_factory(env={"TOCSIN_AUTH_CLIENT_SECRET": SECRET})


def ws_answer(port, qs="", headers=None, timeout=10):
    """A raw WebSocket handshake → (status, lower-case headers, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(upgrade_request(port, "/v1/ws" + (f"?{qs}" if qs else ""), headers))
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and b" 101 " in head.split(b"\r\n")[0]:
                break
            hdrs = dict(l.split(b": ", 1) for l in head.split(b"\r\n")[1:] if b": " in l)
            if sep and len(body) >= int(hdrs.get(b"content-length", b"-1")) >= 0:
                break
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1."), f"not an HTTP answer: {data[:200]!r}"
    hdrs = {k.lower(): v for k, _, v in (l.partition(": ") for l in lines[1:])}
    return int(lines[0].split(" ")[1]), hdrs, body


def error_code(body):
    doc = json.loads(body)
    assert isinstance(doc.get("message"), str) and doc["message"], doc
    return doc["error"]


def refused_everywhere(t, qs, headers, status, code):
    """The same verdict on every protected route: WebSocket, SSE, the
    incident list, one incident, history."""
    st, hdrs, body = ws_answer(t.port, qs, headers)
    assert (st, error_code(body)) == (status, code), (st, body)
    if status == 401:
        assert hdrs.get("www-authenticate", "").startswith("Bearer"), hdrs
    for path in ("/v1/events", "/v1/incidents", "/v1/history"):
        st, hdrs, body = t.get(path + (f"?{qs}" if qs else ""), headers=headers)
        assert (st, error_code(body)) == (status, code), (path, st, body)
        if status == 401:
            assert hdrs.get("www-authenticate", "").startswith("Bearer"), (path, hdrs)


def test_missing_bad_expired_and_alg_none_tokens_get_401(secured):
    refused_everywhere(secured, "", None, 401, "token_required")
    bad = {
        "invalid_token": [
            client_token(SECRET, key="another secret of at least 32 bytes!!"),
            client_token(SECRET, alg="none"),
            client_token(SECRET, alg="HS512"),
            client_token(SECRET, exp=None),  # no exp
            client_token(SECRET, nbf=int(time.time()) + 3600),
            client_token(SECRET)[:-3],  # a cut signature
            "not.a.jwt",
        ],
        "token_expired": [client_token(SECRET, ttl=-120)],
    }
    for code, tokens in bad.items():
        for tok in tokens:
            refused_everywhere(secured, f"token={tok}", None, 401, code)
    # The bearer header is read like the query.
    refused_everywhere(secured, "", {"Authorization": "Bearer " + client_token(SECRET, ttl=-120)},
                       401, "token_expired")
    refused_everywhere(secured, "", {"Authorization": "Basic dTpw"}, 401, "invalid_token")
    refused_everywhere(secured, "", {"Authorization": "Bearer " + "x" * 3000}, 401,
                       "invalid_token")
    # A query too long for a filter and a token is refused as too long.
    st, _, body = secured.get("/v1/incidents?token=" + "x" * 2100)
    assert (st, error_code(body)) == (414, "uri_too_long")
    st, _, body = secured.get(f"/v1/incidents/{uid('inc')}")
    assert (st, error_code(body)) == (401, "token_required")
    # Open routes stay open; and the refusals were counted.
    assert secured.get("/healthz")[0] == 200
    assert secured.get("/readyz")[0] == 200
    assert secured.metric("tocsin_client_tokens_refused_total") >= 40


def test_components_outside_the_token_get_403(secured, kafka):
    tok = client_token(SECRET, components=["playback"])
    for qs in (query(token=tok), query(components=["search"], token=tok),
               query(components=["playback", "search"], token=tok)):
        refused_everywhere(secured, qs, None, 403, "component_not_allowed")
    # One incident: readable when it shares a component with the token.
    mine, other = uid("inc"), uid("inc")
    kafka.produce_all([event(mine, 1, components=["playback", "cdn"]),
                       event(other, 1, components=["search"])])
    secured.wait_metric('tocsin_events_total{result="accepted"}', 2)
    bearer = {"Authorization": f"Bearer {tok}"}
    st, _, body = secured.get(f"/v1/incidents/{mine}", headers=bearer)
    assert st == 200 and json.loads(body)["incident"]["incident_id"] == mine
    st, _, body = secured.get(f"/v1/incidents/{other}", headers=bearer)
    assert (st, error_code(body)) == (403, "component_not_allowed")
    # A token for any component reads both.
    anyone = {"Authorization": f"Bearer {client_token(SECRET)}"}
    assert secured.get(f"/v1/incidents/{other}", headers=anyone)[0] == 200


def test_good_token_gets_welcome_snapshot_and_live_updates(secured, kafka):
    tok = client_token(SECRET, components=["playback", "search"])
    before = uid("inc")
    kafka.produce(event(before, 1, components=["playback"]))
    secured.wait_metric('tocsin_events_total{result="accepted"}', 1)

    async def body():
        ws = await Ws.connect(secured.ws_url, query(components=["playback"], token=tok))
        snap = await ws.expect("snapshot")
        assert [i["incident_id"] for i in snap["incidents"]] == [before]
        iid = uid("inc")
        await in_thread(kafka.produce, event(iid, 1, components=["playback"]))
        up = (await ws.updates(1))[0]
        assert up["incident"]["incident_id"] == iid and up["sub"] == "default"
        await ws.close()
        return iid

    iid = run(body())
    # SSE with the token in the query; polling with the bearer header.
    s = Sse(secured.url, query(components=["search"], token=tok))
    try:
        assert s.status == 200
        assert s.next()["event"] == "snapshot"
        other = uid("inc")
        kafka.produce(event(other, 1, components=["search"]))
        up = s.next()
        assert up["event"] == "update" and up["data"]["incident"]["incident_id"] == other
    finally:
        s.close()
    st, _, raw = secured.get("/v1/incidents?components=playback",
                             headers={"Authorization": f"Bearer {tok}"})
    assert st == 200
    assert {i["incident_id"] for i in json.loads(raw)["incidents"]} >= {before, iid}


def test_subscribe_outside_the_token_is_refused_and_the_session_goes_on(secured, kafka):
    tok = client_token(SECRET, components=["playback", "search"])

    async def body():
        ws = await Ws.connect(secured.ws_url, query(components=["playback"], token=tok))
        await ws.expect("snapshot")
        for flt in ({"components": ["cdn"]}, {}, {"components": ["search", "cdn"]}):
            await ws.send({"type": "subscribe", "id": "more", "filter": flt})
            err = await ws.expect("error")
            assert err["code"] == "component_not_allowed", err
        # Allowed: a second subscription within the token.
        await ws.send({"type": "subscribe", "id": "search", "filter": {"components": ["search"]}})
        assert (await ws.expect("snapshot"))["sub"] == "search"
        iid = uid("inc")
        await in_thread(kafka.produce, event(iid, 1, components=["search"]))
        up = (await ws.updates(1))[0]
        assert (up["sub"], up["incident"]["incident_id"]) == ("search", iid)
        await ws.close()

    run(body())


@pytest.mark.timeout(120)
def test_session_whose_token_expired_is_closed_1008_at_its_next_subscribe(secured):
    # exp 20 s ago is within the 30 s leeway: the handshake passes, and 10 s
    # later a subscribe finds the token expired.
    tok = client_token(SECRET, ttl=-20)

    async def body():
        ws = await Ws.connect(secured.ws_url, query(token=tok))
        await ws.expect("snapshot")
        await asyncio.sleep(12)
        await ws.send({"type": "subscribe", "id": "late", "filter": {}})
        code = await ws.closed(timeout=15)
        assert code == 1008, code
        errs = [m for m in ws.messages if m.get("type") == "error"]
        assert errs and errs[-1]["code"] == "token_expired", ws.messages

    run(body())


def tocsinctl(*args, env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    full.update(env)
    return subprocess.run([binary("tocsinctl"), *args], env=full, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_tocsinctl_mints_tokens_the_server_takes(secured, kafka):
    r = tocsinctl("token", "--components", "playback", "--ttl", "10m",
                  env={"TOCSIN_AUTH_CLIENT_SECRET": SECRET})
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    bearer = {"Authorization": f"Bearer {tok}"}
    assert secured.get("/v1/incidents?components=playback", headers=bearer)[0] == 200
    st, _, body = secured.get("/v1/incidents?components=search", headers=bearer)
    assert (st, error_code(body)) == (403, "component_not_allowed")
    # Signed with another secret, or without one: refused or not made.
    r = tocsinctl("token", env={"TOCSIN_AUTH_CLIENT_SECRET": "x" * 40})
    assert r.returncode == 0
    st, _, body = secured.get("/v1/incidents", headers={"Authorization": "Bearer " + r.stdout.strip()})
    assert (st, error_code(body)) == (401, "invalid_token")
    assert tocsinctl("token", env={}).returncode == 2
    assert tocsinctl("token", env={"TOCSIN_AUTH_CLIENT_SECRET": "short"}).returncode == 2
    # tocsinctl's own reads send $TOCSIN_CLIENT_TOKEN (and still the admin
    # token in Authorization: the query's token wins).
    iid = uid("inc")
    kafka.produce(event(iid, 1, components=["playback"]))
    secured.wait_metric('tocsin_events_total{result="accepted"}', 1)
    env = {"TOCSIN_URL": secured.url, "TOCSIN_ADMIN_TOKEN": "an admin token"}
    assert tocsinctl("incidents", "--components", "playback", env=env).returncode == 1
    env["TOCSIN_CLIENT_TOKEN"] = tok
    r = tocsinctl("incidents", "--components", "playback", env=env)
    assert r.returncode == 0 and iid in r.stdout, (r.stdout, r.stderr)
    r = tocsinctl("show", iid, env=env)
    assert r.returncode == 0 and iid in r.stdout, (r.stdout, r.stderr)


def test_websocket_takes_the_bearer_header_too(secured):
    tok = client_token(SECRET, components=["playback"])

    async def body():
        conn = await websockets.connect(f"{secured.ws_url}/v1/ws?components=playback",
                                        subprotocols=["tocsin.v1"], compression=None,
                                        extra_headers={"Authorization": f"Bearer {tok}"},
                                        open_timeout=10, ping_interval=None, close_timeout=3)
        ws = Ws(conn)
        ws.welcome = await ws.expect("welcome")
        await ws.expect("snapshot")
        # The session keeps the header's claims for its subscribe messages.
        await ws.send({"type": "subscribe", "id": "x", "filter": {"components": ["search"]}})
        assert (await ws.expect("error"))["code"] == "component_not_allowed"
        await ws.send({"type": "subscribe", "id": "y", "filter": {"components": ["playback"]}})
        assert (await ws.expect("snapshot"))["sub"] == "y"
        await ws.close()

    run(body())


def test_without_the_secret_tokens_are_neither_needed_nor_read(tocsind):
    assert tocsind.get("/v1/incidents")[0] == 200
    # A token, even a bad one, is ignored: nothing is checked.
    assert tocsind.get("/v1/incidents?token=garbage")[0] == 200
    assert tocsind.get("/v1/history", headers={"Authorization": "Bearer garbage"})[0] == 200

    async def body():
        ws = await Ws.connect(tocsind.ws_url, query(token="garbage", components=["search"]))
        await ws.expect("snapshot")
        await ws.send({"type": "subscribe", "id": "all", "filter": {}})
        assert (await ws.expect("snapshot"))["sub"] == "all"
        await ws.close()

    run(body())
    assert tocsind.metric("tocsin_client_tokens_refused_total") == 0
