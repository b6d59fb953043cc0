# tocsin — SPDX-License-Identifier: MIT
#
# The admin API's front door (DESIGN §7): the bearer token, compared in
# constant time; bodies bounded by http.max_body; malformed bodies answered
# 400; other routes refuse methods they do not take. The routes behind the
# door (webhooks, email subscribers, publishing) have their own tests.

import json
import socket

import pytest

TOKEN = "t0ken-for-tests"


@pytest.fixture
def admin(tocsind_factory):
    return tocsind_factory(env={"TOCSIN_ADMIN_TOKEN": TOKEN, "TOCSIN_HTTP_MAX_BODY": "4096"})


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def error_of(body):
    doc = json.loads(body)
    assert set(doc) == {"error", "message"}, doc
    return doc["error"]


def test_admin_disabled_without_a_token(tocsind):
    status, _, body = tocsind.request("GET", "/v1/webhooks", headers=auth())
    assert status == 404
    assert error_of(body) == "admin_disabled"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": f"Bearer {TOKEN}x"},
                                     {"Authorization": "Bearer "}])
def test_missing_or_wrong_token_is_401(admin, headers):
    for method, body in (("GET", None), ("POST", {"url": "http://127.0.0.1:1/"}),
                         ("DELETE", None)):
        status, _, text = admin.request(method, "/v1/webhooks", body=body, headers=headers)
        assert status == 401, (method, headers, status)
        assert error_of(text) == "unauthorized"


def test_body_over_max_body_is_413(admin):
    status, _, body = admin.request("POST", "/v1/webhooks", body="x" * 5000, headers=auth())
    assert status == 413
    assert error_of(body) == "body_too_large"


def test_absurd_content_length_is_413_without_reading(admin):
    with socket.create_connection(("127.0.0.1", admin.port), timeout=5) as s:
        s.sendall(b"POST /v1/webhooks HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                  b"Content-Length: 99999999999999999999\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]


@pytest.mark.parametrize("body", ["{bad", "[1,2]", '"text"', '{"a":1,"a":2}'])
def test_malformed_body_is_400(admin, body):
    status, _, text = admin.request("POST", "/v1/webhooks", body=body, headers=auth())
    assert status == 400
    assert error_of(text) == "bad_json"


def test_public_routes_refuse_other_methods(admin):
    for path in ("/v1/events", "/healthz", "/metrics"):
        status, _, text = admin.request("POST", path, body="{}", headers=auth())
        assert status == 405, path
        assert error_of(text) == "method_not_allowed"


def test_server_keeps_serving_after_bad_admin_requests(admin):
    for _ in range(3):
        admin.request("POST", "/v1/webhooks", body="{bad", headers=auth())
        admin.request("GET", "/v1/webhooks", headers=auth("nope"))
    assert admin.get("/healthz")[0] == 200
