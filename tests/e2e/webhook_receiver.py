# tocsin — SPDX-License-Identifier: MIT
#
# The webhook side of the e2e suite: a scripted HTTP receiver on 127.0.0.1
# that records every POST, and the helpers the webhook tests share (start a
# tocsind that may deliver to loopback, create an endpoint through the admin
# API, check a Standard Webhooks signature independently of tocsin's C code).
# The `receivers` fixture that makes and closes Receivers is in conftest.py.
# No traffic leaves 127.0.0.0/8.

import base64
import hashlib
import hmac
import http.server
import json
import sys
import threading
import time

from helpers import free_port

TOKEN = "wh-delivery-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that went away (a timed-out attempt, a cut link) is
        part of the fault tests, not a receiver error worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers with
    the next status of `script` (then 200)."""

    def __init__(self, script=()):
        self.script = list(script)
        self.got = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.got.append((dict((k.lower(), v) for k, v in self.headers.items()), body))
                    status = outer.script.pop(0) if outer.script else 200
                if isinstance(status, tuple):  # (seconds to stall, then status)
                    time.sleep(status[0])
                    status = status[1]
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = _Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def start(factory, **env):
    base = {"TOCSIN_ADMIN_TOKEN": TOKEN, "TOCSIN_WEBHOOK_ALLOW_PRIVATE": "true",
            "TOCSIN_WEBHOOK_RETRY_SCHEDULE": "1s,1s,1s"}
    base.update(env)
    return factory(env=base)


def create(t, url, **extra):
    status, _, text = t.request("POST", "/v1/webhooks", body=dict(url=url, **extra), headers=AUTH)
    assert status == 201, text
    return json.loads(text)


def verify(secret, headers, body):
    """Standard Webhooks, written independently of tocsin's C code."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")]
    return want in given
