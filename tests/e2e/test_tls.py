# tocsin — SPDX-License-Identifier: MIT
#
# The TLS listener (http.tls_cert, http.tls_key): with a self-signed
# certificate made here by the openssl CLI, tocsind speaks TLS only —
# /healthz, a wss:// session receiving an update end to end, SSE — and a
# plain HTTP request on its port fails without harming it. Bad TLS settings
# are configuration errors (exit 2), with --check-config too.

import json
import socket
import subprocess

import pytest

from clients import Sse, Ws, in_thread, query, run
from helpers import event, run_tocsind, uid


def make_cert(directory, name):
    """A self-signed EC certificate for 127.0.0.1 → (cert path, key path)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


@pytest.fixture
def certs(tmp_path):
    return make_cert(tmp_path, "a"), make_cert(tmp_path, "b")


def test_tls_listener_serves_healthz_wss_and_sse(tocsind_factory, kafka, certs):
    (cert, key), _ = certs
    t = tocsind_factory(env={"TOCSIN_HTTP_TLS_CERT": cert, "TOCSIN_HTTP_TLS_KEY": key})
    assert t.url.startswith("https://")
    st, _, body = t.get("/healthz")
    assert st == 200 and json.loads(body) == {"status": "ok"}

    async def session():
        ws = await Ws.connect(t.ws_url, query(components=["playback"]), ssl=t.tls_context)
        await ws.expect("snapshot")
        iid = uid("inc")
        await in_thread(kafka.produce, event(iid, 1))
        up = (await ws.updates(1))[0]
        assert up["incident"]["incident_id"] == iid
        await ws.close()

    run(session())
    s = Sse(t.url, query(components=["playback"]), context=t.tls_context)
    try:
        assert s.status == 200 and s.next()["event"] == "snapshot"
        iid = uid("inc")
        kafka.produce(event(iid, 1))
        assert s.next()["data"]["incident"]["incident_id"] == iid
    finally:
        s.close()

    # Plain HTTP on the TLS port: no HTTP answer, the connection just ends.
    with socket.create_connection(("127.0.0.1", t.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert b"200" not in got and b'"ok"' not in got, got[:200]
    # And tocsind goes on serving.
    assert t.alive() and t.get("/readyz")[0] == 200


def check_config(env):
    r = run_tocsind(["--check-config"], env=env)
    return r.returncode, r.stderr.decode()


def test_bad_tls_settings_are_configuration_errors(tmp_path, certs):
    (cert, key), (_, other_key) = certs
    rc, err = check_config({"TOCSIN_HTTP_TLS_CERT": cert, "TOCSIN_HTTP_TLS_KEY": key})
    assert rc == 0, err
    cases = [
        ({"TOCSIN_HTTP_TLS_CERT": cert}, "set both or neither"),
        ({"TOCSIN_HTTP_TLS_KEY": key}, "set both or neither"),
        ({"TOCSIN_HTTP_TLS_CERT": str(tmp_path / "nope.crt"), "TOCSIN_HTTP_TLS_KEY": key},
         "nope.crt: No such file"),
        ({"TOCSIN_HTTP_TLS_CERT": key, "TOCSIN_HTTP_TLS_KEY": key}, "not a PEM certificate"),
        ({"TOCSIN_HTTP_TLS_CERT": cert, "TOCSIN_HTTP_TLS_KEY": cert}, "not a PEM private key"),
        ({"TOCSIN_HTTP_TLS_CERT": cert, "TOCSIN_HTTP_TLS_KEY": other_key},
         "does not match the certificate"),
    ]
    for env, why in cases:
        rc, err = check_config(env)
        assert rc == 2 and why in err, (env, rc, err)
    # The same refusal when starting, not only with --check-config.
    r = run_tocsind([], env={"TOCSIN_HTTP_TLS_CERT": cert, "TOCSIN_HTTP_TLS_KEY": other_key})
    assert r.returncode == 2 and b"does not match" in r.stderr, r.stderr
