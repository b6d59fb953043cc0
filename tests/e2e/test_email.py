# tocsin — SPDX-License-Identifier: MIT
#
# The email gateway end to end (DESIGN §6, §8; issue 4): tocsind sends to a
# real SMTP server (tests/tools/smtp_server.py, Debian's aiosmtpd) on
# loopback, and every mail is read back with Python's `email` package, not
# tocsin's MIME code. Covered: delivery and MIME structure; headers (Date,
# Message-ID, From, To, an RFC 2047 subject, RFC 8058 List-Unsubscribe);
# coalescing; double opt-in with its expired and altered links; unsubscribe
# by the page's form and by one-click POST; an SMTP server that is away, then
# back; pending mail across a SIGTERM and a kill -9 of tocsind, and a SIGTERM
# while the server holds its reply to the end of DATA; 4xx (retried)
# against 5xx (failed); malformed addresses and bodies; rate limits; email
# disabled. Every JSON answer is held to schemas/email-subscriber.schema.json
# or schemas/error-response.schema.json.
#
# public_url is the tocsind's own URL (its port is chosen here and kept over
# restarts), so the links in mails are followed as a reader would.

import base64
import datetime
import functools
import hashlib
import hmac
import html
import json
import os
import re
import signal
import time
import urllib.parse

import pytest
from jsonschema import Draft202012Validator, RefResolver
from jsonschema.exceptions import best_match

from helpers import event, free_port, uid, wait_until
from smtp import SmtpServer

TOKEN = "email-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
FROM = "status@status.example.test"
LINK_SECRET = "e2e-link-secret-0123456789abcdef"
# Twelve quick retries: a test sees several, and the mail is never failed
# for running out of them.
RETRY_FAST = ",".join(["1s"] * 12)
TRANSIENT = 'tocsin_email_failures_total{reason="transient"}'
PERMANENT = 'tocsin_email_failures_total{reason="permanent"}'
REFUSED = "tocsin_email_subscribe_refused_total"

# ------------------------------------------------------------------ schemas

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_DIR = os.path.join(REPO, "schemas")


@functools.lru_cache(maxsize=None)
def _store():
    out = {}
    for name in os.listdir(SCHEMA_DIR):
        if name.endswith(".schema.json"):
            with open(os.path.join(SCHEMA_DIR, name), encoding="utf-8") as f:
                doc = json.load(f)
            out[doc["$id"]] = doc
    return out


@functools.lru_cache(maxsize=None)
def validator(name, part=None):
    """A validator of schemas/<name> or its $defs/<part> (jsonschema 4.10:
    RefResolver over every schema, keyed by $id)."""
    schema = _store()[f"https://tocsin.dev/schemas/{name}"]
    resolver = RefResolver(base_uri=schema["$id"], referrer=schema, store=_store())
    target = schema if part is None else {"$ref": f"{schema['$id']}#/$defs/{part}"}
    return Draft202012Validator(target, resolver=resolver)


def check(part, doc, name="email-subscriber.schema.json"):
    errors = list(validator(name, part).iter_errors(doc))
    if errors:
        err = best_match(errors)
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        raise AssertionError(f"{name}#{part} refuses a real answer at {where}: {err.message}\n"
                             f"{json.dumps(doc)[:800]}")


def check_error(doc, code=None):
    check(None, doc, name="error-response.schema.json")
    if code is not None:
        assert doc["error"] == code, doc


# ------------------------------------------------------------------ helpers


@pytest.fixture
def smtp_servers():
    """make(args=(), start=True) → an SmtpServer; all are stopped at teardown."""
    made = []

    def make(args=(), start=True):
        s = SmtpServer(args)
        made.append(s)
        return s.start() if start else s

    yield make
    for s in made:
        s.cleanup()


def start(factory, smtp=None, public_path="", **env):
    """A tocsind with the admin API, fast coalescing and retries, whose
    public_url is its own address (a port chosen here, kept over restarts)
    followed by public_path."""
    port = free_port()
    full = {
        "TOCSIN_ADMIN_TOKEN": TOKEN,
        "TOCSIN_HTTP_LISTEN": f"127.0.0.1:{port}",
        "TOCSIN_PUBLIC_URL": f"http://127.0.0.1:{port}{public_path}",
        "TOCSIN_SMTP_FROM": FROM,
        "TOCSIN_EMAIL_COALESCE": "1s",
        "TOCSIN_EMAIL_RETRY_SCHEDULE": RETRY_FAST,
        "TOCSIN_EMAIL_RATE_PER_IP": "1000",
        "TOCSIN_EMAIL_RATE_PER_ADDRESS": "100",
    }
    if smtp is not None:
        full["TOCSIN_SMTP_URL"] = smtp.url
    full.update(env)
    t = factory(env=full, wait_ready=False)
    t.port = port
    t.wait_ready()
    return t


def restart(t, sig):
    """Stops t with sig (SIGTERM waits for the exit; SIGKILL is kill -9)
    and starts it again on the same port."""
    port = t.port
    rc = t.stop(sig)
    if sig == signal.SIGTERM:
        assert rc == 0, f"tocsind exited {rc} on SIGTERM"
    t.start(wait_ready=False)
    t.port = port
    t.wait_ready()


def call(t, method, path, body=None, headers=AUTH):
    status, hdrs, text = t.request(method, path, body=body, headers=headers)
    doc = json.loads(text) if text and hdrs.get("content-type", "").startswith(
        "application/json") else text
    return status, doc


def create(t, address, filter=None):
    body = {"address": address}
    if filter is not None:
        body["filter"] = filter
    check("create-request", body)
    status, doc = call(t, "POST", "/v1/email-subscribers", body)
    assert status == 201, doc
    check("subscriber", doc)
    assert doc["confirmed"] is True and doc["source"] == "admin", doc
    return doc


def show(t, sid):
    status, doc = call(t, "GET", f"/v1/email-subscribers/{sid}")
    assert status == 200, doc
    check("show", doc)
    return doc


def subscribe(t, address, **extra):
    body = {"address": address, **extra}
    return t.request("POST", "/v1/subscribe", body=body, headers=JSON)


def addr(name="user"):
    return f"{uid(name)}@mail.example.test"


def page(t, url, method="GET", body=None, headers=None):
    """Follows a link of a mail (or a form action) on t: (status, headers,
    HTML text)."""
    assert url.startswith(t.url + "/"), f"link {url} does not point at this tocsind ({t.url})"
    status, hdrs, text = t.request(method, url[len(t.url):], body=body, headers=headers or {})
    return status, hdrs, text.decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(purpose, expires_at, sid, address, key=LINK_SECRET):
    """A link token made as broker/email/token.h says, independently of it."""
    payload = f"{purpose}|{expires_at}|{sid}|{address}".encode()
    mac = hmac.new(key.encode(), purpose.encode() + b"\n" + payload, hashlib.sha256).digest()
    return f"{b64url(payload)}.{b64url(mac)}"


def token_of(url):
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]


# ---------------------------------------------------------- the schema itself


def test_schema_is_valid_and_its_examples_pass():
    schema = _store()["https://tocsin.dev/schemas/email-subscriber.schema.json"]
    Draft202012Validator.check_schema(schema)
    for part, sub in schema["$defs"].items():
        for ex in sub.get("examples", []):
            check(part, ex)
    # Not vacuous: what the server refuses, the schema refuses too.
    assert not validator("email-subscriber.schema.json", "create-request").is_valid(
        {"address": "a@b.test", "colour": "red"})
    assert not validator("email-subscriber.schema.json", "subscriber").is_valid(
        {"id": "em_1", "address": "a@b.test", "filter": {}, "confirmed": True, "source": "admin",
         "created_at": 1, "confirmed_at": None})


# ------------------------------------------------------------------ delivery


def test_delivery_mime_and_headers(tocsind_factory, kafka, smtp_servers):
    """One update → one multipart/alternative mail whose parts and headers a
    standard parser reads back as sent."""
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp)
    to = addr("mime")
    sub = create(t, to)
    inc = uid("inc")
    title = "Wiedergabe gestört ⚠"
    before = datetime.datetime.now(datetime.timezone.utc)
    kafka.produce(event(inc, 1, title=title, impact="major",
                        message="Fehler <b>&</b> beim Abspielen"))
    (mail,) = smtp.wait_mails(1, rcpt=to)
    msg = mail.msg

    # Envelope and address headers.
    assert mail.meta["mail_from"] == FROM and mail.rcpt == [to]
    assert [a.addr_spec for a in msg["From"].addresses] == [FROM]
    assert [a.addr_spec for a in msg["To"].addresses] == [to]
    assert msg["X-Tocsin-Subscriber"] == sub["id"]
    # Subject: RFC 2047 on the wire, decoded exactly.
    assert mail.subject == f"[Investigating] {title}"
    raw_subject = re.search(rb"^Subject:(.*(?:\r\n[ \t].*)*)\r\n", mail.raw, re.M).group(1)
    assert b"=?UTF-8?B?" in raw_subject and "ö".encode() not in raw_subject
    # Date: RFC 5322, now; Message-ID on the sender's domain.
    date = msg["Date"].datetime
    assert date.tzinfo is not None
    assert before - datetime.timedelta(seconds=5) <= date <= \
        datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5), date
    assert re.fullmatch(r"<[0-9A-Fa-f]{32}@status\.example\.test>", msg["Message-ID"]), \
        msg["Message-ID"]
    assert msg["MIME-Version"] == "1.0"
    # RFC 8058 one-click unsubscribe.
    lu = msg["List-Unsubscribe"]
    m = re.fullmatch(r"<(https?://[^>\s]+/v1/unsubscribe\?token=[A-Za-z0-9._-]+)>", lu)
    assert m, lu
    assert m.group(1).startswith(t.url + "/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The wire format: 7-bit, CRLF line ends, no line over 998 bytes.
    assert all(b < 0x80 for b in mail.raw)
    assert b"\n" not in mail.raw.replace(b"\r\n", b"")
    assert max(len(line) for line in mail.raw.split(b"\r\n")) <= 998

    # MIME: multipart/alternative of text/plain then text/html, UTF-8 in QP.
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for p in parts:
        assert p.get_content_charset() == "utf-8"
        assert p["Content-Transfer-Encoding"] == "quoted-printable"
    text, body = mail.text, mail.html
    assert title in text and "Investigating" in text and "Major" in text
    assert "Fehler <b>&</b> beim Abspielen" in text
    assert title in body and "Investigating" in body
    assert "Fehler &lt;b&gt;&amp;&lt;/b&gt; beim Abspielen" in body, "HTML part not escaped"
    assert "<b>&</b>" not in body
    assert mail.links("unsubscribe") == [m.group(1)]
    assert f'href="{m.group(1)}"' in body

    shown = show(t, sub["id"])
    assert shown["delivered"] == 1 and shown["pending"] == 0 and shown["failed"] == 0
    att = shown["attempts"][0]
    assert att["kind"] == "digest" and att["status"] == 250 and att["error"] is None
    assert att["updates"] == 1
    assert t.metric("tocsin_email_sent_total") >= 1
    assert t.metric("tocsin_email_updates_total") >= 1

    # A hostile title cannot add a header, a long one is cut on a character
    # boundary; long lines, dots and "From " survive quoted-printable.
    title = "Ausfall\r\nBcc: evil@evil.test " + "Störung ⚠ " * 15
    message = "\n".join(["ö" * 100, ".", ".leading dot", "From the operator", "trailing   ",
                         "tab\there", "⚠" * 40 + "=", "x" * 300])
    kafka.produce(event(uid("inc"), 1, title=title, message=message))
    mail = smtp.wait_mails(2, rcpt=to)[1]
    assert mail.rcpt == [to] and mail.msg["Bcc"] is None
    head = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"^Bcc:", head, re.M | re.I), head
    for part in mail.msg.iter_parts():
        assert [k.lower() for k in part.keys()] == ["content-type", "content-transfer-encoding"]
    want = ("[Investigating] " + title.replace("\r", " ").replace("\n", " ")).encode()
    cut = 147
    while want[cut] & 0xC0 == 0x80:
        cut -= 1
    # Cut at 150 bytes by the digest, then made one line (runs of white
    # space become one space) by the subject template.
    want = re.sub(" +", " ", want[:cut].rstrip(b" ,").decode() + "…")
    assert mail.subject == want, (mail.subject, head)
    assert message in mail.text.replace("\r\n", "\n"), mail.text
    assert html.escape(message, quote=False) in mail.html.replace("\r\n", "\n")
    # Quoted-printable lines stay within 76 characters (headers may be
    # longer: a List-Unsubscribe URL is not folded).
    body_lines = mail.raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert max(len(line) for line in body_lines) <= 76


def test_coalescing(tocsind_factory, kafka, smtp_servers):
    """Three quick updates of one incident → one mail with the latest state
    and every transition; then updates of two incidents → one mail."""
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp, TOCSIN_EMAIL_COALESCE="2s")
    to = addr("coalesce")
    sub = create(t, to)
    inc = uid("inc")
    title = "Playback degraded"
    kafka.produce_all([
        event(inc, 1, "investigating", title=title),
        event(inc, 2, "identified", title=title),
        event(inc, 3, "monitoring", title=title),
    ])
    sent_at = time.monotonic()
    (mail,) = smtp.wait_mails(1, rcpt=to)
    assert time.monotonic() - sent_at >= 1.5, "the mail did not wait for the window"
    smtp.expect_quiet(2.2, 1, rcpt=to)
    assert mail.subject == f"[Monitoring] {title}"
    text = mail.text
    assert "Status:     Monitoring" in text
    assert "state monitoring at version 3" in text
    assert "version 1" not in text and "version 2" not in text, "an old state was shown"
    lines = text.splitlines()
    want = [r"  - Investigating( at .*)?", r"  - Investigating → Identified( at .*)?",
            r"  - Identified → Monitoring( at .*)?"]
    found = [next((i for i, line in enumerate(lines) if re.fullmatch(w, line)), None)
             for w in want]
    assert None not in found and found == sorted(found), f"transitions {found} in:\n{text}"
    assert "Identified &rarr; " in mail.html and "Monitoring" in mail.html
    shown = show(t, sub["id"])
    assert shown["delivered"] == 1 and shown["attempts"][0]["updates"] == 3

    # Two incidents within one window: one mail, both in it, in order.
    a, b = uid("inc-a"), uid("inc-b")
    kafka.produce_all([
        event(a, 1, "investigating", title="Search slow"),
        event(b, 1, "identified", title="Login failing", components=("auth",)),
        event(a, 2, "resolved", title="Search slow"),
    ])
    mails = smtp.wait_mails(2, rcpt=to)
    smtp.expect_quiet(2.2, 2, rcpt=to)
    second = mails[1]
    # Incidents in the order of their first seq (which two partitions decide).
    assert second.subject in ("2 incident updates: Search slow, Login failing",
                              "2 incident updates: Login failing, Search slow"), second.subject
    text = second.text
    first_title = second.subject.split(": ", 1)[1].split(", ")[0]
    other = "Login failing" if first_title == "Search slow" else "Search slow"
    assert text.index(first_title) < text.index(other)
    assert "Status:     Resolved" in text and "Status:     Identified" in text
    assert re.search(r"^  - Investigating → Resolved( at .*)?$", text, re.M), text
    shown = show(t, sub["id"])
    assert shown["delivered"] == 2 and shown["attempts"][0]["updates"] == 3


def test_filter_and_sticky_match(tocsind_factory, kafka, smtp_servers):
    """A subscriber's filter (DESIGN §3) picks the incidents it is mailed
    about, and an incident that matched once keeps matching until it ends."""
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp)
    everything, picky = addr("all"), addr("picky")
    create(t, everything)
    create(t, picky, {"components": ["search"], "min_impact": "major"})
    other, minor, hit = uid("inc-other"), uid("inc-minor"), uid("inc-hit")
    kafka.produce_all([
        event(other, 1, impact="critical", components=("playback",), title="Playback down"),
        event(minor, 1, impact="minor", components=("search",), title="Search hiccup"),
        event(hit, 1, impact="major", components=("search", "api"), title="Search down"),
    ])
    (mail,) = smtp.wait_mails(1, rcpt=picky)
    assert mail.subject == "[Investigating] Search down", mail.subject
    assert "Playback down" not in mail.text and "Search hiccup" not in mail.text
    assert smtp.wait_mails(1, rcpt=everything)[0].subject.startswith("3 incident updates: ")
    # Down to minor impact, then resolved: still mailed (it matched once).
    kafka.produce(event(hit, 2, "monitoring", impact="minor", components=("search",),
                        title="Search down"))
    kafka.produce(event(minor, 2, "identified", impact="minor", components=("search",),
                        title="Search hiccup"))
    mail = smtp.wait_mails(2, rcpt=picky)[1]
    assert mail.subject == "[Monitoring] Search down", mail.subject
    smtp.wait_mails(2, rcpt=everything)
    smtp.expect_quiet(0.5, 2, rcpt=picky)


# ------------------------------------------------------------ double opt-in


def test_double_opt_in(tocsind_factory, kafka, smtp_servers):
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp, TOCSIN_EMAIL_LINK_SECRET=LINK_SECRET)
    control = addr("control")
    create(t, control)
    me = addr("optin")

    status, hdrs, accepted = subscribe(t, me)
    assert status == 202, accepted
    check("subscribe-accepted", json.loads(accepted))
    (confirm_mail,) = smtp.wait_mails(1, rcpt=me)
    assert confirm_mail.subject == "Confirm your subscription to status updates"
    assert confirm_mail.msg["List-Unsubscribe"] is None, "a confirmation is no list mail"
    assert confirm_mail.msg.get_content_type() == "multipart/alternative"
    (link,) = confirm_mail.links("confirm")
    assert link.startswith(t.url + "/v1/confirm?token=")
    assert f'href="{link}"' in confirm_mail.html

    listed = call(t, "GET", "/v1/email-subscribers")[1]
    check("list", listed)
    (mine,) = [s for s in listed["subscribers"] if s["address"] == me]
    assert mine["confirmed"] is False and mine["source"] == "self"
    assert mine["confirmed_at"] is None

    # Unconfirmed: an update reaches the control subscriber, not me.
    inc = uid("inc")
    kafka.produce(event(inc, 1, title="Before confirming"))
    smtp.wait_mails(1, rcpt=control)
    smtp.expect_quiet(1.0, 1, rcpt=me)

    # The same answer whatever the address's state: pending, and admin-made.
    for address in (me, control):
        status, _, again = subscribe(t, address)
        assert (status, again) == (202, accepted)
    assert len(smtp.wait_mails(2, rcpt=me)) == 2, "pending: the confirmation is sent again"

    # Bad links, made with the configured key independently of the C code.
    # First prove the maker: it rebuilds the real link's token exactly.
    real = token_of(link)
    payload = base64.urlsafe_b64decode(real.split(".")[0] + "==").decode()
    purpose, expires, sid, address = payload.split("|", 3)
    assert (purpose, sid, address) == ("confirm", mine["id"], me)
    assert int(expires) > time.time() + 6 * 86400, "confirm_ttl is 7 days"
    assert make_token("confirm", int(expires), sid, address) == real
    expired = make_token("confirm", int(time.time()) - 10, sid, address)
    status, _, text = page(t, f"{t.url}/v1/confirm?token={expired}")
    assert status == 410 and "expired" in text.lower(), (status, text)
    mac = real.split(".")[1]
    tampered = real.split(".")[0] + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    other = make_token("confirm", int(expires), sid, control)  # another address, same id
    wrong_purpose = make_token("unsubscribe", 0, sid, address)
    for bad in (tampered, wrong_purpose, real[:-3], ""):
        status, hdrs, text = page(t, f"{t.url}/v1/confirm?token={bad}")
        assert status == 400, (bad, status, text)
        assert hdrs["content-type"].startswith("text/html")
    status, _, text = page(t, f"{t.url}/v1/confirm?token={other}")
    assert status == 404, (status, text)
    assert show(t, mine["id"])["subscriber"]["confirmed"] is False, "a bad link confirmed"

    # The real link confirms (twice is fine), and updates now arrive.
    status, hdrs, text = page(t, link)
    assert status == 200 and "Subscription confirmed" in text, (status, text)
    assert hdrs["content-type"].startswith("text/html")
    assert page(t, link)[0] == 200
    shown = show(t, mine["id"])
    assert shown["subscriber"]["confirmed"] is True
    assert isinstance(shown["subscriber"]["confirmed_at"], int)
    status, _, again = subscribe(t, me)
    assert (status, again) == (202, accepted), "a confirmed address answers the same"

    kafka.produce(event(inc, 2, "identified", title="After confirming"))
    mails = smtp.wait_mails(3, rcpt=me)
    assert mails[2].subject == "[Identified] After confirming", mails
    assert mails[2].msg["List-Unsubscribe"] is not None
    smtp.expect_quiet(1.5, 3, rcpt=me)  # no confirmation mail after "confirmed"


# --------------------------------------------------------------- unsubscribe


def test_unsubscribe_by_page_and_one_click(tocsind_factory, kafka, smtp_servers):
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp)
    control, by_form, one_click = addr("control"), addr("form"), addr("oneclick")
    subs = {a: create(t, a) for a in (control, by_form, one_click)}
    inc = uid("inc")
    kafka.produce(event(inc, 1, title="Checkout errors"))
    links = {}
    for a in (by_form, one_click):
        (mail,) = smtp.wait_mails(1, rcpt=a)
        links[a] = mail.msg["List-Unsubscribe"].strip("<>")
        assert mail.links("unsubscribe") == [links[a]]

    # GET (what a link scanner does): a page with a form; nothing changes.
    for a in (by_form, one_click):
        status, hdrs, text = page(t, links[a])
        assert status == 200 and hdrs["content-type"].startswith("text/html"), (status, text)
        assert '<form method="post"' in text and 'value="One-Click"' in text
        assert a in html.unescape(text)
        assert show(t, subs[a]["id"])["subscriber"]["address"] == a, "GET unsubscribed"
    # ... and a second update still reaches both.
    kafka.produce(event(inc, 2, "identified", title="Checkout errors"))
    for a in (control, by_form, one_click):
        smtp.wait_mails(2, rcpt=a)

    # The page's own form, as a browser submits it.
    _, _, text = page(t, links[by_form])
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', text).group(1))
    target = urllib.parse.urljoin(links[by_form], action)  # as a browser resolves it
    status, _, text = page(t, target, "POST", b"List-Unsubscribe=One-Click", FORM)
    assert status == 200 and "unsubscribed" in text.lower(), (status, text)
    # RFC 8058 one-click, as a mail client sends it.
    status, _, text = page(t, links[one_click], "POST", b"List-Unsubscribe=One-Click", FORM)
    assert status == 200 and "unsubscribed" in text.lower(), (status, text)
    for a in (by_form, one_click):
        status, doc = call(t, "GET", f"/v1/email-subscribers/{subs[a]['id']}")
        assert status == 404, doc
        check_error(doc, "not_found")
        # Twice (mail clients retry): still 200.
        assert page(t, links[a], "POST", b"List-Unsubscribe=One-Click", FORM)[0] == 200
        assert page(t, links[a])[0] == 200, "the page of a gone subscriber"
    listed = call(t, "GET", "/v1/email-subscribers")[1]
    check("list", listed)
    assert {s["address"] for s in listed["subscribers"]} == {control}

    # Later updates go to the control subscriber only.
    kafka.produce(event(inc, 3, "monitoring", title="Checkout errors"))
    smtp.wait_mails(3, rcpt=control)
    for a in (by_form, one_click):
        smtp.expect_quiet(0.5, 2, rcpt=a)
    # An altered unsubscribe token is refused.
    tok = token_of(links[by_form])
    bad = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    status, _, _ = page(t, f"{t.url}/v1/unsubscribe?token={bad}", "POST",
                        b"List-Unsubscribe=One-Click", FORM)
    assert status == 400


def test_unsubscribe_page_behind_a_path_prefix(tocsind_factory, smtp_servers):
    """public_url may carry a path (a reverse proxy serving tocsind under
    /status): the page's form must post back under it, to the link itself,
    not to the host's /v1/unsubscribe. Tokens are made with the configured
    key, so no mail is needed."""
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp, public_path="/status",
              TOCSIN_EMAIL_LINK_SECRET=LINK_SECRET)
    sub = create(t, addr("prefix"))
    token = make_token("unsubscribe", 0, sub["id"], sub["address"])
    public_link = f"{t.url}/status/v1/unsubscribe?token={token}"
    # The proxy strips /status before tocsind sees the request.
    status, _, text = page(t, f"{t.url}/v1/unsubscribe?token={token}")
    assert status == 200, text
    action = html.unescape(re.search(r'<form method="post" action="([^"]*)"', text).group(1))
    target = urllib.parse.urljoin(public_link, action)
    assert target == public_link, f"the form posts to {target}, not to {public_link}"
    status, _, text = page(t, f"{t.url}/v1/unsubscribe?token={token}", "POST",
                           b"List-Unsubscribe=One-Click", FORM)
    assert status == 200, text
    assert call(t, "GET", f"/v1/email-subscribers/{sub['id']}")[0] == 404


# -------------------------------------------------------- failures and retries


def test_smtp_down_then_back(tocsind_factory, kafka, smtp_servers):
    """No SMTP server: retried along the schedule (transient failures);
    started on the same port, it gets the mail, once."""
    smtp = smtp_servers(start=False)
    t = start(tocsind_factory, smtp)
    to = addr("down")
    sub = create(t, to)
    kafka.produce(event(uid("inc"), 1, title="Mail outage"))
    t.wait_metric(TRANSIENT, 2, timeout=20)
    shown = show(t, sub["id"])
    assert shown["pending"] == 1 and shown["delivered"] == 0 and shown["failed"] == 0
    assert len(shown["attempts"]) >= 2
    for att in shown["attempts"]:
        assert att["status"] == 0 and att["error"], att
    assert [a["attempt"] for a in shown["attempts"]] == \
        list(range(len(shown["attempts"]), 0, -1)), "attempts are numbered"

    smtp.start()
    (mail,) = smtp.wait_mails(1, rcpt=to, timeout=15)
    assert mail.subject == "[Investigating] Mail outage"
    smtp.expect_quiet(1.5, 1)
    shown = show(t, sub["id"])
    assert shown["delivered"] == 1 and shown["pending"] == 0
    assert shown["attempts"][0]["status"] == 250 and shown["attempts"][0]["error"] is None
    assert t.metric("tocsin_email_gave_up_total") == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill9"])
def test_pending_mail_survives_restart(tocsind_factory, kafka, smtp_servers, sig):
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp, TOCSIN_EMAIL_COALESCE="3s")
    to = addr("restart")
    sub = create(t, to)
    kafka.produce(event(uid("inc"), 1, title="Across a restart"))
    queued_at = time.monotonic()
    wait_until(lambda: show(t, sub["id"])["pending"] == 1, 10, what="the update queued")
    key_before = t.redis.client().get(t.prefix + "em:key").decode()
    assert smtp.mails() == [], "mailed before the window closed"
    # Stopped inside the window: the old process never sent this mail.
    restart_at = time.monotonic()
    restart(t, sig)
    assert restart_at - queued_at < 2.5, "stopped after the window closed: test too slow"
    (mail,) = smtp.wait_mails(1, rcpt=to, timeout=20)
    assert mail.subject == "[Investigating] Across a restart"
    smtp.expect_quiet(1.0, 1)
    shown = show(t, sub["id"])
    assert shown["delivered"] == 1 and shown["pending"] == 0
    # The link key is kept in Redis: a link signed before the restart (with
    # the key the first process used) still works after it.
    link = mail.msg["List-Unsubscribe"].strip("<>")
    assert token_of(link) == make_token("unsubscribe", 0, sub["id"], to, key=key_before), \
        "the link key changed over the restart"
    assert page(t, link, "POST", b"List-Unsubscribe=One-Click", FORM)[0] == 200
    assert call(t, "GET", f"/v1/email-subscribers/{sub['id']}")[0] == 404


def test_sigterm_while_server_delays_end_of_data(tocsind_factory, kafka, smtp_servers):
    """Regression (issue 7, SMTP shutdown stall): SIGTERM while the SMTP
    server holds its reply to the end of DATA. libcurl waits for that reply,
    blocking the sending thread, and used to pool the connection and then
    wait for QUIT's reply in curl_multi_cleanup, so tocsind hit
    shutdown.timeout and exited 1. Now it exits 0 within a few seconds, and
    the mail, abandoned unanswered, is sent after the restart (DESIGN §8.1)."""
    smtp = smtp_servers(["--delay-data", "300"])
    # Without the fix the stall lasts smtp.timeout (60 s here), past
    # shutdown.timeout (30 s): exit 1 after 30 s.
    t = start(tocsind_factory, smtp, TOCSIN_SMTP_TIMEOUT="60s", TOCSIN_SHUTDOWN_TIMEOUT="30s")
    to = addr("stall")
    sub = create(t, to)
    kafka.produce(event(uid("inc"), 1, title="Stalled at DATA"))
    wait_until(lambda: "end of DATA from" in smtp.log_tail(), 30,
               what="the mail's end of DATA at the delaying server")
    stop_at = time.monotonic()
    rc = t.stop(signal.SIGTERM, timeout=60)
    took = time.monotonic() - stop_at
    assert rc == 0, f"tocsind exited {rc} after {took:.1f}s\n{t.log_tail()}"
    assert took < 15, f"SIGTERM took {took:.1f}s"
    assert smtp.mails(rcpt=to) == [], "the delaying server stored the mail"

    smtp.restart([])  # a prompt server on the same port
    port = t.port
    t.start(wait_ready=False)
    t.port = port
    t.wait_ready()
    (mail,) = smtp.wait_mails(1, rcpt=to, timeout=30)
    assert mail.subject == "[Investigating] Stalled at DATA"
    smtp.expect_quiet(1.0, 1)
    shown = show(t, sub["id"])
    assert shown["delivered"] == 1 and shown["pending"] == 0, shown
    # The abandoned attempt is on record, without a reply code.
    assert [a["status"] for a in shown["attempts"]] == [250, 0], shown["attempts"]
    assert "abandoned" in shown["attempts"][1]["error"], shown["attempts"]


def test_three_nodes_send_each_mail_once(tocsind_factory, kafka, smtp_servers):
    """Three tocsind nodes on one Redis prefix and consumer group (issue 7):
    every subscriber gets exactly one mail per window, whichever node took
    the event and whichever claimed the job (DESIGN §8.2, §9)."""
    smtp = smtp_servers()
    a = start(tocsind_factory, smtp, TOCSIN_SMTP_MAX_CONNECTIONS="2")
    nodes = [a] + [start(tocsind_factory, smtp, TOCSIN_SMTP_MAX_CONNECTIONS="2",
                         TOCSIN_REDIS_PREFIX=a.prefix, TOCSIN_KAFKA_GROUP=a.group)
                   for _ in range(2)]
    tos = [addr(f"node-{i}") for i in range(12)]
    for i, to in enumerate(tos):
        create(nodes[i % 3], to)
    inc = uid("inc")
    kafka.produce_all([event(inc, 1, title="All nodes"), event(inc, 2, "identified",
                                                                title="All nodes")])
    wait_until(lambda: len(smtp.mails()) >= len(tos), 20, what="a mail to every subscriber")
    smtp.expect_quiet(2.0, len(tos))
    assert sorted(m.rcpt[0] for m in smtp.mails()) == sorted(tos)
    for m in smtp.mails():
        assert m.subject == "[Identified] All nodes", m
    sent = sum(t.metric("tocsin_email_sent_total") for t in nodes)
    assert sent == len(tos)


def test_4xx_retried_5xx_failed(tocsind_factory, kafka, smtp_servers):
    busy, gone = addr("busy"), addr("gone")
    smtp = smtp_servers(["--fail-rcpt", f"451={busy}", "--fail-rcpt", f"550={gone}"])
    t = start(tocsind_factory, smtp)
    sb, sg = create(t, busy), create(t, gone)
    kafka.produce(event(uid("inc"), 1, title="Refused"))

    wait_until(lambda: len(show(t, sb["id"])["attempts"]) >= 2, 20, what="451 retried")
    wait_until(lambda: show(t, sg["id"])["failed"] == 1, 10, what="550 failed")
    assert t.metric(TRANSIENT) >= 2 and t.metric(PERMANENT) >= 1
    time.sleep(2.5)  # two retry periods: the 5xx mail must not come back
    g = show(t, sg["id"])
    assert len(g["attempts"]) == 1, g["attempts"]
    assert g["attempts"][0]["status"] == 550 and g["attempts"][0]["error"]
    assert g["failed"] == 1 and g["pending"] == 0 and g["delivered"] == 0
    b = show(t, sb["id"])
    assert b["failed"] == 0 and b["pending"] == 1
    assert all(a["status"] == 451 and a["error"] for a in b["attempts"]), b["attempts"]

    # The server takes mail again: the 4xx mail is delivered, the 5xx not.
    smtp.restart([])
    (mail,) = smtp.wait_mails(1, rcpt=busy, timeout=15)
    assert mail.subject == "[Investigating] Refused"
    smtp.expect_quiet(1.0, 0, rcpt=gone)
    b = show(t, sb["id"])
    assert b["delivered"] == 1 and b["pending"] == 0 and b["attempts"][0]["status"] == 250
    assert show(t, sg["id"])["attempts"][0]["status"] == 550


# ------------------------------------------------------------------ bad input


def _long_address(n):
    local = "a" * 64
    domain = "b" * 63 + "." + "c" * 63 + "."
    domain += "d" * (n - len(local) - 1 - len(domain) - len(".test")) + ".test"
    out = f"{local}@{domain}"
    assert len(out) == n
    return out


BAD_BODIES = [
    ({"address": "a@b.test\r\nRCPT TO:<x@y.test>"}, "address"),
    ({"address": "a@b.test\nBcc: x@y.test"}, "address"),
    ({"address": "a@b@c.test"}, "address"),
    ({"address": "nobody@"}, "address"),
    ({"address": "nobody"}, "address"),
    ({"address": "a@localhost.", }, "address"),
    ({"address": "Name <a@b.test>"}, "address"),
    ({"address": _long_address(255)}, "address"),
    ({"address": 42}, "address"),
    ({}, "address"),
    ({"address": "a@b.test", "colour": "red"}, "colour"),
    ({"address": "a@b.test", "filter": ["playback"]}, "filter"),
    ({"address": "a@b.test", "filter": "playback"}, "filter"),
    ({"address": "a@b.test", "filter": {"component": ["playback"]}}, "filter"),
]


def test_bad_addresses_and_bodies_are_400(tocsind_factory, smtp_servers):
    """Every malformed body is 400 naming the field, on the admin and the
    public route, and the schema refuses it too; nothing is stored or sent."""
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp)
    for body, field in BAD_BODIES:
        assert not validator("email-subscriber.schema.json", "create-request").is_valid(body), \
            f"the schema takes what tocsind refuses: {body}"
        for path, headers in (("/v1/email-subscribers", AUTH), ("/v1/subscribe", JSON)):
            status, doc = call(t, "POST", path, body, headers)
            assert status == 400, (path, body, doc)
            check_error(doc, "bad_request")
            assert doc["message"].startswith(field), (path, body, doc["message"])
    status, doc = call(t, "POST", "/v1/subscribe", b"not json", JSON)
    assert status == 400, doc
    check_error(doc)
    listed = call(t, "GET", "/v1/email-subscribers")[1]
    check("list", listed)
    assert listed["subscribers"] == [], "a refused subscriber was stored"

    # The bound itself is fine; the domain is lower-cased, and the same
    # address in other case is a conflict that shows the subscriber.
    longest = create(t, _long_address(254))
    status, doc = call(t, "DELETE", f"/v1/email-subscribers/{longest['id']}")
    assert status == 200, doc
    check("deleted", doc)
    sub = create(t, "Ops.Team@Example.TEST", {"components": ["playback"]})
    assert sub["address"] == "Ops.Team@example.test"
    assert sub["filter"] == {"components": ["playback"], "regions": [], "min_impact": "none"}
    status, doc = call(t, "POST", "/v1/email-subscribers", {"address": "Ops.Team@EXAMPLE.test"})
    assert status == 409, doc
    check("conflict", doc)
    assert doc["subscriber"]["id"] == sub["id"]
    status, doc = call(t, "GET", "/v1/email-subscribers/em_0000000000000000")
    assert status == 404
    check_error(doc, "not_found")
    smtp.expect_quiet(1.0, 0)


def test_rate_limits(tocsind_factory, smtp_servers):
    smtp = smtp_servers()
    t = start(tocsind_factory, smtp, TOCSIN_EMAIL_RATE_PER_IP="2",
              TOCSIN_EMAIL_RATE_PER_ADDRESS="1")
    a, b = addr("rate-a"), addr("rate-b")
    status, _, body = subscribe(t, a)
    assert status == 202, body
    smtp.wait_mails(1, rcpt=a)
    # The second confirmation for one address in a day: refused.
    status, _, body = subscribe(t, a)
    assert status == 429, body
    doc = json.loads(body)
    check_error(doc, "rate_limited")
    assert "address" in doc["message"], doc
    # The third request from one IP in an hour: refused, whatever the address.
    status, _, body = subscribe(t, b)
    assert status == 429, body
    doc = json.loads(body)
    check_error(doc, "rate_limited")
    assert "network" in doc["message"], doc
    assert t.metric(REFUSED) == 2
    smtp.expect_quiet(1.5, 1)
    listed = call(t, "GET", "/v1/email-subscribers")[1]
    assert [s["address"] for s in listed["subscribers"]] == [a]
    # The admin API is not rate-limited.
    for i in range(3):
        create(t, addr(f"admin-{i}"))


def test_email_disabled(tocsind_factory):
    t = start(tocsind_factory, None)
    status, doc = call(t, "POST", "/v1/email-subscribers", {"address": addr()})
    assert status == 503, doc
    check_error(doc, "email_disabled")
    status, _, body = subscribe(t, addr())
    assert status == 503, body
    check_error(json.loads(body), "email_disabled")
    listed = call(t, "GET", "/v1/email-subscribers")[1]
    check("list", listed)
    assert listed["subscribers"] == []
