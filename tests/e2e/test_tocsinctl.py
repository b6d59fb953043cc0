# tocsin — SPDX-License-Identifier: MIT
#
# tocsinctl, the operator CLI (DESIGN §7), against a real tocsind, Redis and
# the devkafka broker: --help on every command, usage errors (exit 2, naming
# the flag, nothing sent), no token (exit 1, 401), unreachable server or
# Kafka (exit 3), 404 (exit 4), --json shapes, publish --kafka then
# incidents/show, webhooks end to end, and tail (live updates, Ctrl-C exit 0).
# A scripted RFC 6455 server (FakeWs) checks what a real one will not do on
# cue: fragments, pings, 64-bit lengths, close 1013 then resume with
# since/epoch, close 1008. The publishing API and the email subscriber routes
# are tested when the server has them, and skipped (with the reason) when
# not.

import base64
import hashlib
import http.server
import json
import os
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from helpers import SANITIZER_MARKERS, binary, event, free_port, uid, wait_until
from webhook_receiver import Receiver

TOKEN = "ctl-admin-token"
SUPP = os.path.join(os.path.dirname(__file__), "..", "lsan.supp")


# ------------------------------------------------------------------ running it


def _env(url=None, token=TOKEN, extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.setdefault("LSAN_OPTIONS", f"suppressions={os.path.abspath(SUPP)}:print_suppressions=0")
    if url is not None:
        env["TOCSIN_URL"] = url
    if token is not None:
        env["TOCSIN_ADMIN_TOKEN"] = token
    env.update(extra or {})
    return env


def _check_sanitizer(text):
    for marker in SANITIZER_MARKERS:
        if marker in text:
            pytest.fail(f"tocsinctl sanitizer report:\n{text[-4000:]}", pytrace=False)


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout.decode(errors="replace")
        self.err = proc.stderr.decode(errors="replace")
        _check_sanitizer(self.err)

    def json(self):
        assert self.rc == 0, self
        return json.loads(self.out)

    def __repr__(self):
        return f"<rc={self.rc} out={self.out[-1500:]!r} err={self.err[-1500:]!r}>"


def ctl(*args, url=None, token=TOKEN, env=None, timeout=60):
    """Runs tocsinctl to completion; never hangs."""
    p = subprocess.run([binary("tocsinctl")] + [str(a) for a in args], env=_env(url, token, env),
                       capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return Result(p)


def closed_url():
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def server(tocsind_factory):
    # A closed SMTP port: subscribers can be created; nothing is mailed here.
    return tocsind_factory(env={"TOCSIN_ADMIN_TOKEN": TOKEN,
                                "TOCSIN_WEBHOOK_ALLOW_PRIVATE": "true",
                                "TOCSIN_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"})


def publish_kafka(kafka, iid, *extra, version=None):
    args = ["publish", "--kafka", kafka.bootstrap, "--id", iid, "--json"] + list(extra)
    if version is not None:
        args += ["--version", version]
    if "--title" not in extra:
        args += ["--title", f"Incident {iid}"]
    if "--components" not in extra:
        args += ["--components", "playback"]
    return ctl(*args)


def listed(server, iid, *flags):
    r = ctl("incidents", "--json", *flags, url=server.url)
    return iid in [i["incident_id"] for i in r.json()["incidents"]]


# ------------------------------------------------------------------ help, usage

COMMANDS = {
    ("publish",): ["--title", "--components", "--impact", "--status", "--message", "--regions",
                   "--id", "--kind", "--link", "--kafka", "--topic", "--version"],
    ("update",): ["--status", "--impact", "--message", "--title", "--version"],
    ("resolve",): ["--message"],
    ("incidents",): ["--components", "--regions", "--min-impact"],
    ("show",): [],
    ("tail",): ["--components", "--since", "--epoch"],
    ("webhooks",): ["list", "add", "show", "rm", "replay", "rotate-secret", "enable", "test"],
    ("webhooks", "list"): [],
    ("webhooks", "add"): ["--filter-components", "--description"],
    ("webhooks", "show"): [],
    ("webhooks", "rm"): [],
    ("webhooks", "replay"): [],
    ("webhooks", "rotate-secret"): [],
    ("webhooks", "enable"): [],
    ("webhooks", "test"): [],
    ("subscribers",): ["list", "add", "show", "rm"],
    ("subscribers", "list"): [],
    ("subscribers", "add"): ["--components", "--regions", "--min-impact"],
    ("subscribers", "show"): [],
    ("subscribers", "rm"): [],
}


@pytest.mark.parametrize("cmd", sorted(COMMANDS), ids=" ".join)
def test_help_on_every_command(cmd):
    r = ctl(*cmd, "--help", url=closed_url())
    assert r.rc == 0, r
    assert r.out.startswith("usage: tocsinctl " + " ".join(cmd)), r
    for needle in COMMANDS[cmd] + ["exit codes"]:
        assert needle in r.out, f"{needle} missing from {' '.join(cmd)} --help"
    if len(cmd) == 2 or cmd[0] not in ("webhooks", "subscribers"):
        for g in ("--url", "--json", "--timeout", "--token-file"):
            assert g in r.out, f"global {g} missing from {' '.join(cmd)} --help"


def test_top_level_help_lists_commands_and_exit_codes():
    r = ctl("--help")
    assert r.rc == 0, r
    for needle in ("publish", "update", "resolve", "incidents", "show", "tail", "webhooks",
                   "subscribers", "exit codes", "not found"):
        assert needle in r.out
    assert ctl("--version").out.strip() == "tocsinctl 0.1.0"


@pytest.mark.parametrize("args, needle", [
    (["publish", "--bogus"], "--bogus"),
    (["publish", "--title"], "--title"),
    (["incidents", "--colour", "red"], "--colour"),
    (["incidents", "--title", "x"], "--title"),  # a flag of another command
    (["show", "inc-1", "--json=yes"], "--json"),
    (["webhooks", "add", "http://127.0.0.1:9/x", "--nope"], "--nope"),
    (["subscribers", "list", "-x"], "-x"),
    (["tail", "--since"], "--since"),
    (["--bogus-global", "incidents"], "--bogus-global"),
])
def test_bad_flag_exits_2_naming_it(args, needle):
    r = ctl(*args, url=closed_url())
    assert r.rc == 2, r
    assert needle in r.err, r
    assert r.err.startswith("tocsinctl: ") and r.err.count("\n") == 1, r
    assert r.out == ""


@pytest.mark.parametrize("args, needle", [
    (["publish", "--components", "playback"], "--title: required"),
    (["publish", "--title", "t"], "--components: required"),
    (["publish", "--title", "t", "--components", "Bad Id"], "--components"),
    (["publish", "--title", "t", "--components", "a", "--impact", "huge"], "--impact"),
    (["publish", "--title", "t", "--components", "a", "--kind", "outage"], "--kind"),
    (["publish", "--title", "t", "--components", "a", "--status", "resolving"], "status"),
    (["publish", "--title", "x" * 201, "--components", "a"], "title"),
    (["publish", "--title", "t", "--components", "a", "--link", "status"], "--link"),
    (["publish", "--title", "t", "--components", "a", "--link", "s=http://x"], "links.s"),
    (["publish", "--title", "t", "--components", "a", "--version", "2"], "--version"),
    (["publish", "--title", "t", "--components", "a", "--id", "no spaces"], "--id"),
    (["publish", "--kafka", "127.0.0.1:1", "--title", "t", "--components", "a", "--version",
      "0"], "--version"),
    (["update", "inc-1"], "nothing to change"),
    (["update", "inc-1", "--impact", "meh"], "--impact"),
    (["resolve"], "ID: required"),
    (["show", "a/b"], "ID"),
    (["show", "a", "b"], "unexpected argument 'b'"),
    (["incidents", "--min-impact", "apocalyptic"], "--min-impact"),
    (["incidents", "--timeout", "soon"], "--timeout"),
    (["incidents", "--url", "ftp://127.0.0.1/"], "--url"),
    (["incidents", "--token-file", "/nonexistent/token"], "--token-file"),
    (["tail", "--since", "5"], "--epoch"),
    (["tail", "--since", "-1", "--epoch", "e"], "--since"),
    (["webhooks", "frob", "x"], "frob"),
    (["webhooks"], "which one"),
    (["frobnicate"], "frobnicate"),
    ([], "which command"),
])
def test_usage_errors_exit_2_before_sending(args, needle):
    # The URL is a closed port: exit 2 (not 3) proves nothing was sent.
    r = ctl(*args, url=closed_url())
    assert r.rc == 2, r
    assert needle in r.err, r
    assert r.err.startswith("tocsinctl: ") and r.err.count("\n") == 1, r


@pytest.mark.parametrize("args", [
    ["incidents"], ["show", "inc-1"], ["webhooks", "list"], ["subscribers", "list"],
    ["publish", "--title", "t", "--components", "a"], ["update", "inc-1", "--status", "identified"],
    ["resolve", "inc-1"], ["tail"], ["webhooks", "test", "wh_1"],
])
def test_unreachable_server_exits_3(args):
    url = closed_url()
    r = ctl(*args, url=url, timeout=30)
    assert r.rc == 3, r
    assert "cannot reach" in r.err and url in r.err, r


def test_unreachable_kafka_exits_3():
    port = free_port()
    r = ctl("publish", "--kafka", f"127.0.0.1:{port}", "--title", "t", "--components", "a",
            "--timeout", "2s", url=closed_url(), timeout=30)
    assert r.rc == 3, r
    assert "--kafka" in r.err and "Kafka" in r.err, r


def test_timeout_bounds_a_silent_server():
    # A listener that never answers: --timeout ends the wait with exit 3.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        t0 = time.monotonic()
        r = ctl("incidents", "--timeout", "1s", url=url)
        assert r.rc == 3, r
        assert time.monotonic() - t0 < 10
        r = ctl("tail", "--timeout", "1s", url=url)
        assert r.rc == 3, r


# ------------------------------------------------------------------ with tocsind


def test_no_token_is_401_exit_1(server):
    for token in (None, "wrong-token"):
        r = ctl("webhooks", "list", url=server.url, token=token)
        assert r.rc == 1, r
        assert "401" in r.err, r
        assert ("TOCSIN_ADMIN_TOKEN" if token is None else "refused") in r.err, r
    r = ctl("webhooks", "list", "--json", url=server.url, token=None)
    assert r.rc == 1 and r.out == "", r


def test_token_file(server, tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    r = ctl("webhooks", "list", "--json", "--token-file", path, url=server.url, token=None)
    assert r.json() == {"webhooks": []}
    path.write_text("wrong\n")
    assert ctl("webhooks", "list", "--token-file", path, url=server.url).rc == 1


def test_publish_kafka_then_incidents_and_show(server, kafka):
    iid = uid("inc")
    doc = publish_kafka(kafka, iid, "--title", "Playback errors", "--components",
                        "playback,search", "--impact", "major", "--message", "Videos fail",
                        "--regions", "eu-west", "--link", "status=https://status.example.com/x",
                        "--component-status", "playback=partial_outage",
                        "--affected-users", "1200").json()
    ev = doc["event"]
    assert doc["topic"] == "tocsin.incidents" and doc["offset"] >= 0 and doc["partition"] >= 0
    assert ev["incident_id"] == iid and ev["version"] == 1 and ev["event_id"].startswith("ctl-")
    assert ev["status"] == "investigating" and ev["impact"] == "major"
    assert ev["components"] == ["playback", "search"] and ev["regions"] == ["eu-west"]
    assert ev["links"] == {"status": "https://status.example.com/x"}
    assert ev["component_status"] == {"playback": "partial_outage"}
    assert ev["affected_users"] == 1200 and ev["occurred_at"].endswith("Z")
    wait_until(lambda: listed(server, iid), 15, what="incident listed")

    r = ctl("incidents", url=server.url)
    assert r.rc == 0, r
    header, *rows = r.out.splitlines()
    assert header.split() == ["ID", "IMPACT", "STATUS", "TITLE", "UPDATED"]
    row = next(line for line in rows if line.startswith(iid))
    assert "major" in row and "investigating" in row and "Playback errors" in row

    # Filters go to the server; the table and --json agree.
    assert listed(server, iid, "--components", "search")
    assert not listed(server, iid, "--components", "billing")
    assert listed(server, iid, "--regions", "eu-west")
    assert not listed(server, iid, "--regions", "us-east")
    assert not listed(server, iid, "--min-impact", "critical")
    assert iid not in ctl("incidents", "--min-impact", "critical", url=server.url).out

    r = ctl("show", iid, url=server.url)
    assert r.rc == 0, r
    for needle in (iid, "Playback errors", "investigating", "playback: partial_outage",
                   "status: https://status.example.com/x", "Videos fail", "eu-west", "1200",
                   "playback, search"):
        assert needle in r.out, f"{needle} missing from show:\n{r.out}"

    # A later state, straight to Kafka with the next version (the whole state).
    doc = publish_kafka(kafka, iid, "--title", "Playback errors", "--components", "playback",
                        "--impact", "major", "--status", "identified", "--message", "Cause found",
                        version=2).json()
    assert doc["event"]["version"] == 2
    wait_until(lambda: ctl("show", iid, "--json", url=server.url).json()["incident"]["version"]
               == 2, 15, what="version 2 stored")

    shown = ctl("show", iid, "--json", url=server.url).json()
    assert shown["incident"]["status"] == "identified"
    assert sorted(u["incident"]["version"] for u in shown["updates"]) == [1, 2]
    r = ctl("show", iid, url=server.url)
    assert r.rc == 0, r
    for needle in ("identified", "version 2", "timeline", "Videos fail", "Cause found"):
        assert needle in r.out, f"{needle} missing from show:\n{r.out}"
    assert "partial_outage" not in r.out  # v2 has no component states
    timeline = r.out.split("timeline", 1)[1]
    assert timeline.index("v1") < timeline.index("v2")


def test_publish_kafka_maintenance_defaults(server, kafka):
    iid = uid("mnt")
    ev = publish_kafka(kafka, iid, "--kind", "maintenance", "--title", "DB upgrade").json()["event"]
    assert ev["kind"] == "maintenance" and ev["status"] == "scheduled" and ev["impact"] == "none"
    wait_until(lambda: listed(server, iid), 15, what="maintenance listed")


def test_publish_kafka_text_output_and_unknown_topic(server, kafka):
    iid = uid("inc")
    r = ctl("publish", "--kafka", kafka.bootstrap, "--id", iid, "--title", "t", "--components",
            "playback")
    assert r.rc == 0, r
    assert r.out.startswith(f"published {iid} version 1 to Kafka (topic tocsin.incidents"), r


def test_show_and_update_unknown_are_404_exit_4(server):
    r = ctl("show", uid("nope"), url=server.url)
    assert r.rc == 4, r
    assert "404" in r.err and r.out == ""
    r = ctl("show", uid("nope"), "--json", url=server.url)
    assert r.rc == 4 and r.out == "", r
    assert ctl("resolve", uid("nope"), url=server.url).rc == 4


def test_incidents_json_shape_when_empty(server):
    doc = ctl("incidents", "--json", url=server.url).json()
    assert set(doc) >= {"epoch", "seq", "incidents"} and doc["incidents"] == []
    # Global flags before the command, --url over $TOCSIN_URL.
    doc = ctl("--json", "--url", server.url, "--timeout", "5s", "incidents",
              url=closed_url()).json()
    assert doc["incidents"] == []
    r = ctl("incidents", url=server.url)
    assert r.rc == 0 and "no active incidents" in r.out, r


def test_terminal_control_characters_are_cleaned(server, kafka):
    iid = uid("inc")
    ev = event(iid, 1, title="evil \x1b[2J title", message="line\nbreak")
    kafka.produce(ev)
    wait_until(lambda: listed(server, iid), 15, what="incident listed")
    out = ctl("incidents", url=server.url).out + ctl("show", iid, url=server.url).out
    assert "\x1b" not in out and "evil ?[2J title" in out
    assert "line?break" in out
    # --json keeps the data exact.
    shown = ctl("show", iid, "--json", url=server.url).json()
    assert shown["incident"]["title"] == "evil \x1b[2J title"


# ------------------------------------------------------------------ webhooks


def test_webhooks_end_to_end(server):
    ok, failing = Receiver(), Receiver(script=[503])
    try:
        r = ctl("webhooks", "add", ok.url, "--filter-components", "playback", "--description",
                "billing", "--json", url=server.url)
        ep = r.json()
        assert ep["id"].startswith("wh_") and ep["secret"].startswith("whsec_")
        assert ep["filter"]["components"] == ["playback"] and ep["description"] == "billing"

        listing = ctl("webhooks", "list", "--json", url=server.url).json()
        assert [e["id"] for e in listing["webhooks"]] == [ep["id"]]
        assert "secret" not in listing["webhooks"][0]
        r = ctl("webhooks", "list", url=server.url)
        assert ep["id"] in r.out and ok.url in r.out and "components=playback" in r.out, r

        shown = ctl("webhooks", "show", ep["id"], "--json", url=server.url).json()
        assert shown["endpoint"]["id"] == ep["id"] and shown["pending"] == 0
        r = ctl("webhooks", "show", ep["id"], url=server.url)
        assert "pending" in r.out and ok.url in r.out and "whsec_" not in r.out, r

        r = ctl("webhooks", "test", ep["id"], url=server.url)
        assert r.rc == 0 and "delivered" in r.out, r
        assert len(ok.got) == 1
        assert json.loads(ok.got[0][1])["type"] == "webhook.test"

        rotated = ctl("webhooks", "rotate-secret", ep["id"], "--json", url=server.url).json()
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != ep["secret"]
        r = ctl("webhooks", "rotate-secret", ep["id"], url=server.url)
        assert "whsec_" in r.out and "valid until" in r.out, r

        assert ctl("webhooks", "replay", ep["id"], "--json", url=server.url).json() == {
            "replayed": 0, "superseded": 0}
        enabled = ctl("webhooks", "enable", ep["id"], "--json", url=server.url).json()
        assert enabled["id"] == ep["id"] and enabled["disabled"] is False
        r = ctl("webhooks", "enable", ep["id"], url=server.url)
        assert r.rc == 0 and "enabled" in r.out, r

        # A receiver that refuses the test message: exit 1, in text and --json.
        bad = ctl("webhooks", "add", failing.url, "--json", url=server.url).json()
        r = ctl("webhooks", "test", bad["id"], url=server.url)
        assert r.rc == 1 and "503" in r.err, r
        failing.script.append(503)
        r = ctl("webhooks", "test", bad["id"], "--json", url=server.url)
        assert r.rc == 1 and json.loads(r.out)["delivered"] is False, r

        assert ctl("webhooks", "rm", ep["id"], "--json", url=server.url).json() == {"deleted": 1}
        r = ctl("webhooks", "rm", bad["id"], url=server.url)
        assert r.rc == 0 and "deleted" in r.out, r
        for sub in ("show", "rm", "replay", "rotate-secret", "enable", "test"):
            r = ctl("webhooks", sub, ep["id"], url=server.url)
            assert r.rc == 4, (sub, r)
    finally:
        ok.close()
        failing.close()


def test_webhooks_add_refused_names_the_field(server):
    r = ctl("webhooks", "add", "ftp://127.0.0.1/x", url=server.url)
    assert r.rc == 1, r
    assert "400" in r.err and "url" in r.err, r
    r = ctl("webhooks", "add", "http://127.0.0.1:9/x", "--filter-components", "Bad Id",
            url=server.url)
    assert r.rc == 2 and "--components" in r.err, r


# ------------------------------------------------------------------ subscribers


def _subscribers_served(server):
    status, _, body = server.request("GET", "/v1/email-subscribers",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    return status != 404


def test_subscribers_end_to_end(server):
    if not _subscribers_served(server):
        pytest.skip("this tocsind does not serve /v1/email-subscribers yet (main.c wiring)")
    addr = f"{uid('ops')}@example.com"
    sub = ctl("subscribers", "add", addr, "--components", "playback", "--min-impact", "major",
              "--json", url=server.url).json()
    assert sub["address"] == addr and sub["confirmed"] is True
    assert sub["filter"]["components"] == ["playback"] and sub["filter"]["min_impact"] == "major"
    r = ctl("subscribers", "add", addr, url=server.url)
    assert r.rc == 1 and "409" in r.err, r
    listing = ctl("subscribers", "list", "--json", url=server.url).json()
    assert sub["id"] in [s["id"] for s in listing["subscribers"]]
    r = ctl("subscribers", "list", url=server.url)
    assert addr in r.out and "components=playback" in r.out, r
    shown = ctl("subscribers", "show", sub["id"], "--json", url=server.url).json()
    assert shown["subscriber"]["id"] == sub["id"]
    r = ctl("subscribers", "show", sub["id"], url=server.url)
    assert r.rc == 0 and addr in r.out, r
    r = ctl("subscribers", "add", "not an address", url=server.url)
    assert r.rc == 1 and "address" in r.err, r
    assert ctl("subscribers", "rm", sub["id"], "--json", url=server.url).json() == {"deleted": 1}
    assert ctl("subscribers", "show", sub["id"], url=server.url).rc == 4
    assert ctl("subscribers", "rm", sub["id"], url=server.url).rc == 4


# ------------------------------------------------------------------ publishing API


def _publish_api_served(server):
    status, _, _ = server.request("POST", "/v1/incidents", body={},
                                  headers={"Authorization": f"Bearer {TOKEN}",
                                           "Content-Type": "application/json"})
    return status not in (404, 405)


@pytest.fixture
def api_server(server):
    if not _publish_api_served(server):
        pytest.skip("this tocsind does not serve POST /v1/incidents yet (publishing API)")
    return server


def test_api_publish_update_resolve(api_server):
    s = api_server
    iid = uid("inc")
    doc = ctl("publish", "--id", iid, "--title", "Checkout down", "--components", "checkout",
              "--impact", "critical", "--message", "Payments fail", "--json", url=s.url).json()
    ev = doc["event"]
    assert ev["incident_id"] == iid and ev["version"] == 1 and ev["impact"] == "critical"
    assert ev["status"] == "investigating" and ev["event_id"] and ev["occurred_at"]
    wait_until(lambda: listed(s, iid), 15, what="incident listed")

    r = ctl("publish", "--id", iid, "--title", "again", "--components", "checkout", url=s.url)
    assert r.rc == 1 and "409" in r.err, r

    r = ctl("update", iid, "--status", "identified", "--message", "Cause found", url=s.url)
    assert r.rc == 0 and iid in r.out and "version 2" in r.out, r
    doc = ctl("update", iid, "--impact", "major", "--version", "3", "--json", url=s.url).json()
    assert doc["event"]["version"] == 3 and doc["event"]["impact"] == "major"
    r = ctl("update", iid, "--message", "stale", "--version", "3", url=s.url)
    assert r.rc == 1 and "409" in r.err, r

    r = ctl("resolve", iid, "--message", "Fixed", url=s.url)
    assert r.rc == 0 and "resolved" in r.out, r
    wait_until(lambda: not listed(s, iid), 15, what="incident left the active set")
    shown = ctl("show", iid, "--json", url=s.url).json()
    assert shown["incident"]["status"] == "resolved" and shown["incident"]["message"] == "Fixed"
    r = ctl("resolve", iid, url=s.url)
    assert r.rc == 0 and "already resolved" in r.out, r

    r = ctl("update", uid("nope"), "--status", "identified", url=s.url)
    assert r.rc == 4, r


def test_api_publish_generates_id_and_needs_token(api_server):
    s = api_server
    doc = ctl("publish", "--title", "Generated", "--components", "search", "--json",
              url=s.url).json()
    assert doc["event"]["incident_id"]
    r = ctl("publish", "--title", "t", "--components", "search", url=s.url, token=None)
    assert r.rc == 1 and "401" in r.err, r


def test_api_resolve_maintenance_completes(api_server):
    s = api_server
    iid = uid("mnt")
    r = ctl("publish", "--id", iid, "--kind", "maintenance", "--title", "DB", "--components",
            "db", url=s.url)
    assert r.rc == 0, r
    wait_until(lambda: listed(s, iid), 15, what="maintenance listed")
    doc = ctl("resolve", iid, "--json", url=s.url).json()
    assert doc["event"]["status"] == "completed"


class StubApi:
    """An HTTP server on 127.0.0.1 that records each request (method, path,
    headers, JSON body) and answers from `answers`: {(method, path): (status,
    doc)}; anything else is 404. It holds tocsinctl to the request shapes of
    the contracts whose server side is not in this tocsind yet."""

    def __init__(self, answers):
        self.answers = answers
        self.got = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self):
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n) if n else b""
                outer.got.append((self.command, self.path,
                                  {k.lower(): v for k, v in self.headers.items()},
                                  json.loads(raw) if raw else None))
                status, doc = outer.answers.get((self.command, self.path),
                                                (404, {"error": "not_found",
                                                       "message": "no incident with this id"}))
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _event(iid, version, **fields):
    ev = {"event_id": f"ev-{version}", "incident_id": iid, "version": version,
          "kind": "incident", "status": "investigating", "impact": "minor", "title": "T",
          "components": ["checkout"], "occurred_at": "2026-11-25T08:00:00Z"}
    ev.update(fields)
    return {"event": ev}


def test_api_request_shapes_against_a_stub():
    stub = StubApi({
        ("POST", "/v1/incidents"): (202, _event("inc-9", 1, impact="critical")),
        ("POST", "/v1/incidents/inc-9/updates"): (202, _event("inc-9", 2, status="identified")),
        ("GET", "/v1/incidents/inc-9"): (200, {"incident": {"incident_id": "inc-9",
                                                            "kind": "maintenance",
                                                            "status": "in_progress"},
                                               "updates": []}),
        ("POST", "/v1/incidents/busy/updates"): (503, {"error": "unavailable",
                                                       "message": "Kafka is unreachable"}),
        ("POST", "/v1/incidents/stale/updates"): (409, {"error": "conflict",
                                                        "message": "version: the incident is "
                                                                   "at version 4"}),
        ("POST", "/v1/incidents/bad/updates"): (400, {"error": "bad_request",
                                                      "message": "status: must be ..."}),
    })
    try:
        r = ctl("publish", "--id", "inc-9", "--title", "Checkout down", "--components",
                "checkout", "--impact", "critical", "--link", "pm=https://x.example/pm",
                url=stub.url)
        assert r.rc == 0 and r.out.startswith("opened inc-9: version 1"), r
        method, path, headers, body = stub.got[-1]
        assert (method, path) == ("POST", "/v1/incidents")
        assert headers["authorization"] == f"Bearer {TOKEN}"
        assert headers["content-type"] == "application/json"
        assert body == {"incident_id": "inc-9", "kind": "incident", "status": "investigating",
                        "impact": "critical", "title": "Checkout down",
                        "components": ["checkout"], "links": {"pm": "https://x.example/pm"}}

        doc = ctl("update", "inc-9", "--status", "identified", "--version", "2", "--json",
                  url=stub.url).json()
        assert doc["event"]["version"] == 2
        assert stub.got[-1][3] == {"status": "identified", "version": 2}

        r = ctl("resolve", "inc-9", "--message", "done", url=stub.url)
        assert r.rc == 0, r
        assert [g[:2] for g in stub.got[-2:]] == [("GET", "/v1/incidents/inc-9"),
                                                  ("POST", "/v1/incidents/inc-9/updates")]
        assert stub.got[-1][3] == {"status": "completed", "message": "done"}

        r = ctl("update", "busy", "--message", "m", url=stub.url)
        assert r.rc == 3 and "503 unavailable: Kafka is unreachable" in r.err, r
        r = ctl("update", "stale", "--message", "m", "--version", "4", url=stub.url)
        assert r.rc == 1 and "409 conflict: version" in r.err, r
        r = ctl("update", "bad", "--status", "x", url=stub.url)
        assert r.rc == 1 and "400 bad_request: status" in r.err, r
        r = ctl("update", "gone", "--status", "x", url=stub.url)
        assert r.rc == 4, r
    finally:
        stub.close()


def test_subscriber_request_shapes_against_a_stub():
    sub = {"id": "em_1", "address": "ops@example.com", "confirmed": True,
           "filter": {"components": ["playback"], "regions": [], "min_impact": "major"},
           "source": "admin", "created_at": 1795608000}
    stub = StubApi({
        ("POST", "/v1/email-subscribers"): (201, sub),
        ("GET", "/v1/email-subscribers"): (200, {"subscribers": [sub]}),
        ("GET", "/v1/email-subscribers/em_1"): (200, {"subscriber": sub, "pending": 2,
                                                       "delivered": 1, "failed": 0,
                                                       "attempts": []}),
        ("DELETE", "/v1/email-subscribers/em_1"): (200, {"deleted": 1}),
    })
    try:
        r = ctl("subscribers", "add", "ops@example.com", "--components", "playback",
                "--min-impact", "major", url=stub.url)
        assert r.rc == 0 and "em_1" in r.out, r
        assert stub.got[-1][3] == {"address": "ops@example.com",
                                   "filter": {"components": ["playback"], "min_impact": "major"}}
        r = ctl("subscribers", "list", url=stub.url)
        assert "ops@example.com" in r.out and "components=playback min_impact=major" in r.out, r
        r = ctl("subscribers", "show", "em_1", url=stub.url)
        assert "pending" in r.out and "2026-11-25T12:00:00Z" in r.out, r
        r = ctl("subscribers", "rm", "em_1", url=stub.url)
        assert r.rc == 0 and "deleted em_1" in r.out, r
        assert ctl("subscribers", "rm", "em_2", url=stub.url).rc == 4
    finally:
        stub.close()


# ------------------------------------------------------------------ tail, real server


class Tail:
    """tocsinctl tail as a subprocess with line reads bounded in time."""

    def __init__(self, *args, url, env=None):
        self.proc = subprocess.Popen([binary("tocsinctl"), "tail"] + [str(a) for a in args],
                                     env=_env(url, None, env), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.buf = {"out": b"", "err": b""}
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ, "out")
        self.sel.register(self.proc.stderr, selectors.EVENT_READ, "err")

    def _pump(self, timeout):
        for key, _ in self.sel.select(timeout):
            chunk = os.read(key.fileobj.fileno(), 65536)
            if not chunk:
                self.sel.unregister(key.fileobj)
            self.buf[key.data] += chunk

    def line(self, stream="out", timeout=20):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf[stream]:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.get_map():
                raise AssertionError(f"no line on {stream} in {timeout}s: {self.buf!r}")
            self._pump(left)
        line, self.buf[stream] = self.buf[stream].split(b"\n", 1)
        return line.decode()

    def wait_err(self, needle, timeout=20):
        deadline = time.monotonic() + timeout
        while needle.encode() not in self.buf["err"]:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.get_map():
                raise AssertionError(f"no {needle!r} on stderr in {timeout}s: {self.buf!r}")
            self._pump(left)

    def stop(self, sig=signal.SIGINT, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        while self.sel.get_map():
            self._pump(1)
        self.proc.stdout.close()
        self.proc.stderr.close()
        _check_sanitizer(self.buf["err"].decode(errors="replace"))
        return rc


def test_tail_prints_updates_published_meanwhile(server, kafka):
    iid, other = uid("inc"), uid("inc")
    t = Tail("--json", "--components", "playback", url=server.url)
    try:
        t.wait_err("connected")
        kafka.produce(event(other, 1, components=["search"]))  # filtered out
        publish_kafka(kafka, iid, "--components", "playback", "--impact", "major")
        msg = json.loads(t.line())
        assert msg["type"] == "update" and msg["incident"]["incident_id"] == iid
        assert msg["incident"]["impact"] == "major" and isinstance(msg["seq"], int)
        assert msg["epoch"]
    finally:
        rc = t.stop(signal.SIGINT)
    assert rc == 0, t.buf


def test_tail_text_lines_and_snapshot(server, kafka):
    before, iid = uid("inc"), uid("inc")
    kafka.produce(event(before, 1, title="Already open"))
    wait_until(lambda: listed(server, before), 15, what="incident listed")
    t = Tail("--snapshot", url=server.url)
    try:
        line = t.line()
        assert before in line and "Already open" in line
        t.wait_err("connected")
        kafka.produce(event(iid, 1, status="identified", impact="critical", title="Live one",
                            message="now"))
        line = t.line()
        assert iid in line and "v1" in line and "critical" in line and "identified" in line
        assert "Live one: now" in line
    finally:
        rc = t.stop(signal.SIGTERM)
    assert rc == 0, t.buf


# ------------------------------------------------------------------ tail, scripted server

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FakeWs:
    """A scripted RFC 6455 server on 127.0.0.1: connection i runs
    scripts[i](self, conn); the request paths are kept in self.paths and
    what the client sent in self.frames."""

    def __init__(self, scripts):
        self.scripts = list(scripts)
        self.paths = []
        self.frames = []
        self.errors = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for script in self.scripts:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(20)
                try:
                    script(self, conn)
                except Exception as e:  # noqa: BLE001 - reported by the test
                    self.errors.append(repr(e))

    def close(self):
        self.sock.close()

    def handshake(self, conn, status="101 Switching Protocols", protocol="tocsin.v1"):
        req = b""
        while b"\r\n\r\n" not in req:
            chunk = conn.recv(4096)
            if not chunk:
                raise AssertionError("client left before the upgrade")
            req += chunk
        head = req.decode()
        self.paths.append(head.split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)}
        assert headers["sec-websocket-protocol"] == "tocsin.v1"
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + WS_GUID)
                                               .encode()).digest()).decode()
        if not status.startswith("101"):
            conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
            return
        conn.sendall((f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}"
                      "\r\n\r\n").encode())

    @staticmethod
    def frame(op, payload, fin=True):
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | op])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        return head + payload

    def send_json(self, conn, doc, pieces=1):
        data = json.dumps(doc).encode()
        step = max(1, len(data) // pieces)
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        out = b""
        for i, c in enumerate(chunks):
            out += self.frame(0x1 if i == 0 else 0x0, c, fin=i == len(chunks) - 1)
            if i == 0 and len(chunks) > 1:
                out += self.frame(0x9, b"are you there")  # a ping between fragments
        conn.sendall(out)

    def read_frame(self, conn):
        def exact(n):
            buf = b""
            while len(buf) < n:
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    raise AssertionError("client closed the socket")
                buf += chunk
            return buf

        b0, b1 = exact(2)
        assert b1 & 0x80, "client frames must be masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", exact(8))[0]
        mask = exact(4)
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(exact(n)))
        self.frames.append((b0 & 0x0F, payload))
        return b0 & 0x0F, payload


def _welcome(seq, epoch="E1"):
    return {"type": "welcome", "epoch": epoch, "seq": seq, "heartbeat_s": 25}


def _update(seq, iid, epoch="E1", **extra):
    inc = {"incident_id": iid, "version": 1, "status": "investigating", "impact": "minor",
           "title": f"Title {iid}", "components": ["playback"],
           "updated_at": "2026-11-25T08:00:00Z"}
    inc.update(extra)
    return {"type": "update", "sub": "default", "epoch": epoch, "seq": seq, "incident": inc}


def test_tail_fragments_pings_big_frames_and_resume_after_1013():
    def first(fake, conn):
        fake.handshake(conn)
        fake.send_json(conn, _welcome(5))
        fake.send_json(conn, _update(6, "frag"), pieces=3)
        op, payload = fake.read_frame(conn)
        assert (op, payload) == (0xA, b"are you there"), (op, payload)
        conn.sendall(fake.frame(0x8, struct.pack(">H", 1013) + b"too slow, resume with since"))
        fake.read_frame(conn)  # the client's close answer

    def second(fake, conn):
        fake.handshake(conn)
        fake.send_json(conn, _welcome(6))
        fake.send_json(conn, _update(7, "big", message="x" * 70000))  # a 64-bit length
        op, payload = fake.read_frame(conn)  # SIGINT: the client closes with 1000
        assert op == 0x8 and struct.unpack(">H", payload[:2])[0] == 1000, (op, payload)

    fake = FakeWs([first, second])
    t = Tail("--json", "--components", "playback", url=fake.url)
    try:
        a = json.loads(t.line())
        assert (a["seq"], a["incident"]["incident_id"]) == (6, "frag")
        b = json.loads(t.line())
        assert (b["seq"], b["incident"]["incident_id"]) == (7, "big")
        assert len(b["incident"]["message"]) == 70000
        t.wait_err("reconnected")
    finally:
        rc = t.stop(signal.SIGINT)
        fake.close()
    assert rc == 0, t.buf
    assert "1013" in t.buf["err"].decode(), t.buf
    assert fake.paths[0] == "/v1/ws?components=playback"
    assert fake.paths[1] == "/v1/ws?components=playback&since=6&epoch=E1"
    fake.thread.join(5)
    assert fake.errors == [], fake.errors


def test_tail_resumes_from_flags_and_reports_reset():
    def only(fake, conn):
        fake.handshake(conn)
        fake.send_json(conn, _welcome(40, epoch="E2"))
        fake.send_json(conn, {"type": "snapshot", "sub": "default", "epoch": "E2", "seq": 40,
                              "reset": True, "incidents": [_update(40, "still-open")["incident"]]})
        fake.read_frame(conn)

    fake = FakeWs([only])
    t = Tail("--since", "12", "--epoch", "E1", url=fake.url + "/")
    try:
        line = t.line()
        assert "still-open" in line
        t.wait_err("could not resume exactly")
    finally:
        rc = t.stop(signal.SIGINT)
        fake.close()
    assert rc == 0
    assert fake.paths == ["/v1/ws?since=12&epoch=E1"]


def test_tail_policy_close_exits_1_with_the_servers_error():
    def only(fake, conn):
        fake.handshake(conn)
        fake.send_json(conn, _welcome(1))
        fake.send_json(conn, {"type": "error", "code": "bad_filter", "message": "nope"})
        conn.sendall(fake.frame(0x8, struct.pack(">H", 1008)))
        fake.read_frame(conn)

    fake = FakeWs([only])
    t = Tail(url=fake.url)
    try:
        rc = t.proc.wait(timeout=20)
    finally:
        t.stop()
        fake.close()
    assert rc == 1, t.buf
    assert b"bad_filter" in t.buf["err"] and b"1008" in t.buf["err"], t.buf


@pytest.mark.parametrize("status, protocol, code", [
    ("403 Forbidden", "tocsin.v1", 1),
    ("101 Switching Protocols", "other.v9", 3),
])
def test_tail_refused_upgrade(status, protocol, code):
    fake = FakeWs([lambda f, c: f.handshake(c, status=status, protocol=protocol)])
    r = ctl("tail", url=fake.url)
    fake.close()
    assert r.rc == code, r
    assert ("403" if code == 1 else "subprotocol") in r.err, r
