# tocsin — SPDX-License-Identifier: MIT
#
# The status page tocsind serves at / (clients/status, built into the binary)
# in a real headless Chromium, same origin: it shows an incident published
# through Kafka within 2 s (title, status, the affected components' state
# from component_status or the impact), follows updates with their timeline,
# moves the incident to history on resolve (and still shows it there after a
# reload), and its subscribe form reports the server's answer: 503
# email_disabled without smtp.url, 202 and 400 with an SMTP server. The
# page's CSP (sent by tocsind) must hold: no console errors. Screenshots go
# to tests/e2e/artifacts/status-page-*.png.

import base64
import datetime
import os
import zoneinfo

import pytest

from browser import Browser, browser_missing, timed
from helpers import HarnessError, event, uid, wait_until
from smtp import SmtpServer
from test_browser import _warm_up  # the consumer has its partitions before a timed publish

ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")  # as conftest.ARTIFACTS
DELIVERY_BOUND_S = 2.0

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")

# What the page shows, read from its DOM (no test hooks in the page itself).
PAGE_STATE = """
const q = (s, root = document) => [...root.querySelectorAll(s)];
const text = (e) => (e ? e.textContent.trim() : null);
const card = (a) => ({
    id: a.dataset.id,
    impact: a.dataset.impact,
    title: text(a.querySelector('h3')),
    status: text(a.querySelector('.status')),
    impact_label: text(a.querySelector('.impact')),
    message: text(a.querySelector('.message')),
    started: text(a.querySelector('.meta time')),
    started_iso: a.querySelector('.meta time') && a.querySelector('.meta time').dateTime,
    timeline: q('.timeline li', a).map((li) => text(li.querySelector('strong'))),
});
const result = document.getElementById('subscribe-result');
return {
    live: document.getElementById('live').dataset.state,
    live_text: text(document.getElementById('live')),
    overall: text(document.getElementById('overall-text')),
    level: document.getElementById('overall').dataset.level,
    components: Object.fromEntries(q('#components li').map((li) =>
        [li.dataset.component, [li.dataset.state, text(li.querySelector('.state'))]])),
    active: q('#active article').map(card),
    history: q('#history article').map(card),
    announced: text(document.getElementById('announcer')),
    result: text(result),
    result_status: result.dataset.status || null,
    result_outcome: result.dataset.outcome || null,
    choices: q('#subscribe-choices input').map((i) => [i.value, i.checked]),
};
"""


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.quit()


def state(browser):
    return browser.js(PAGE_STATE)


def wait_page(browser, pred, timeout, what):
    """Waits until pred(page state) holds; returns that state."""
    box = {}

    def check():
        box["s"] = state(browser)
        return pred(box["s"])

    try:
        wait_until(check, timeout, interval=0.02, what=what)
    except HarnessError as e:
        raise HarnessError(f"{e}\npage: {box.get('s')}") from None
    return box["s"]


def open_page(browser, url, timezone=None):
    """Loads the page in a fresh document and waits for its live connection."""
    d = browser.driver
    d.get("about:blank")
    browser.console()  # the last page's log (its reconnects to a stopped tocsind)
    d.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": timezone or ""})
    browser.emulate_reduced_motion(False)
    d.get(url)
    return wait_page(browser, lambda s: s["live"] == "open" and s["level"] != "unknown", 10,
                     "page live")


def publish_and_wait(browser, kafka, ev, pred, what, bound=DELIVERY_BOUND_S):
    def go():
        kafka.produce(ev)
        return wait_page(browser, pred, bound, what)

    s, took = timed(go)
    assert took <= bound, f"{what}: {took:.2f}s"
    return s


def no_console_errors(browser):
    """A CSP violation (an inline script or style) or a script error is
    logged as SEVERE; so is every non-2xx answer to a fetch, which for
    POST /v1/subscribe is what the form test asks for."""
    errors = [e for e in browser.console() if e.get("level") == "SEVERE" and not (
        e.get("source") == "network" and "/v1/subscribe " in e.get("message", ""))]
    assert not errors, errors


def shot(browser, name):
    """The whole page, not just the window (the form is below the fold)."""
    w, h = browser.js("const e = document.documentElement; return [e.scrollWidth, e.scrollHeight]")
    png = browser.driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, f"status-page-{name}.png"), "wb") as f:
        f.write(base64.b64decode(png["data"]))


def local_time(iso, tz):
    """The text formatStarted gives in en-US for an RFC 3339 time in zone tz."""
    t = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(
        zoneinfo.ZoneInfo(tz))
    return f"{t:%b} {t.day}, {t.year}, {t.hour % 12 or 12}:{t:%M}\u202f{t:%p}"


@pytest.mark.timeout(90)
def test_page_renders_incident_live_and_moves_it_to_history(browser, tocsind, kafka):
    a, b = uid("web"), uid("api")
    inc = uid("inc")
    _warm_up(tocsind, kafka)
    s = open_page(browser, f"{tocsind.url}/?components={a},{b}", timezone="Asia/Tokyo")
    assert s["live_text"] == "Live (WebSocket)"
    assert s["overall"] == "All systems operational" and s["level"] == "operational"
    # The filter's components are listed even before anything happened.
    assert s["components"] == {a: ["operational", "Operational"],
                               b: ["operational", "Operational"]}, s
    assert s["active"] == [] and s["history"] == []
    # Landmarks and headings a screen reader navigates by.
    marks = browser.js("return [...document.querySelectorAll('header, main, footer, h1, h2')]"
                       ".map((e) => e.tagName + ':' + e.textContent.trim())")
    assert marks[:3] == ["HEADER:" + marks[0].split(":", 1)[1], "H1:Service status",
                         "MAIN:" + marks[2].split(":", 1)[1]]
    assert [m for m in marks if m.startswith("H2:")] == [
        "H2:Overall status", "H2:Components", "H2:Active incidents", "H2:Recent history",
        "H2:Get updates by email"]
    assert marks[-1].startswith("FOOTER:")
    live = browser.js("const e = document.getElementById('announcer');"
                      "return [e.getAttribute('role'), e.getAttribute('aria-live')]")
    assert live == ["status", "polite"]

    # v1: major on both; b's own state from component_status, a's from the impact.
    v1 = event(inc, 1, impact="major", components=[a, b], title="Checkout fails",
               message="Payments time out.", component_status={b: "degraded_performance"},
               links={"status_page": "https://status.example.com/incidents/1"})
    s = publish_and_wait(browser, kafka, v1, lambda s: len(s["active"]) == 1, "incident shown")
    card = s["active"][0]
    assert (card["id"], card["title"], card["status"]) == (inc, "Checkout fails", "Investigating")
    assert card["impact_label"] == "Major outage" and card["message"] == "Payments time out."
    assert s["overall"] == "Major outage" and s["level"] == "major"
    assert s["components"][a] == ["partial_outage", "Partial outage"]
    assert s["components"][b] == ["degraded_performance", "Degraded performance"]
    assert "Checkout fails" in s["announced"]
    # started_at in the reader's time zone (Tokyo here), with the exact instant.
    assert card["started_iso"] == datetime.datetime.fromisoformat(
        v1["occurred_at"].replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert card["started"].replace(" ", "\u202f") == \
        local_time(v1["occurred_at"], "Asia/Tokyo").replace(" ", "\u202f"), card["started"]
    s = wait_page(browser, lambda s: s["active"][0]["timeline"] == ["Investigating"], 5,
                  "timeline of v1")
    shot(browser, "incident")

    # v2: a new status, live, with the timeline from GET /v1/incidents/{id}.
    v2 = event(inc, 2, status="identified", impact="major", components=[a, b],
               title="Checkout fails", message="A bad deploy; rolling back.",
               component_status={b: "major_outage"})
    s = publish_and_wait(browser, kafka, v2,
                         lambda s: s["active"] and s["active"][0]["status"] == "Identified",
                         "update shown")
    assert s["components"][b] == ["major_outage", "Major outage"]
    assert "Identified" in s["announced"]
    wait_page(browser, lambda s: s["active"][0]["timeline"] == ["Identified", "Investigating"], 5,
              "timeline of v2")

    # A second, critical incident takes the headline; an unrelated one is
    # filtered out by ?components=.
    other = uid("inc")
    kafka.produce(event(uid("inc"), 1, impact="critical", components=[uid("elsewhere")]))
    s = publish_and_wait(browser, kafka, event(other, 1, impact="critical", components=[a],
                                               title="Site down"),
                         lambda s: len(s["active"]) == 2, "second incident")
    assert s["overall"] == "Critical outage" and s["active"][0]["id"] == other
    assert s["components"][a] == ["major_outage", "Major outage"]
    assert set(s["components"]) == {a, b}
    kafka.produce(event(other, 2, status="resolved", impact="critical", components=[a],
                        title="Site down"))

    # Resolved: out of the active list, into history, everything operational.
    v3 = event(inc, 3, status="resolved", impact="major", components=[a, b],
               title="Checkout fails", message="Fixed.")
    s = publish_and_wait(browser, kafka, v3,
                         lambda s: not s["active"] and inc in [h["id"] for h in s["history"]],
                         "moved to history")
    assert s["overall"] == "All systems operational"
    assert all(v == ["operational", "Operational"] for v in s["components"].values()), s
    s = wait_page(browser, lambda s: any(h["id"] == inc and h["timeline"] == [
        "Resolved", "Identified", "Investigating"] for h in s["history"]), 5, "history timeline")
    past = {h["id"]: h for h in s["history"]}
    assert past[inc]["status"] == "Resolved" and past[other]["status"] == "Resolved"
    browser.js("document.querySelectorAll('#history details').forEach((d) => { d.open = true; })")
    shot(browser, "resolved")

    # History outlives the page: ids in localStorage, states from
    # GET /v1/incidents/{id} (tocsind has no list of ended incidents).
    s = open_page(browser, f"{tocsind.url}/?components={a},{b}", timezone="Asia/Tokyo")
    s = wait_page(browser, lambda s: {inc, other} <= {h["id"] for h in s["history"]}, 5,
                  "history after reload")
    assert s["active"] == []
    no_console_errors(browser)


@pytest.mark.timeout(60)
def test_subscribe_form_email_disabled(browser, tocsind, kafka):
    comp = uid("web")
    open_page(browser, f"{tocsind.url}/?components={comp}")
    s = state(browser)
    assert s["choices"] == [[comp, True]], "the filter's components are pre-checked"
    # The browser's own validation first: nothing is sent for an empty address.
    browser.js("document.querySelector('#subscribe button').click()")
    assert browser.js("return document.getElementById('subscribe-address')"
                      ".getAttribute('aria-invalid')") == "true"
    assert state(browser)["result"] == ""
    _subscribe(browser, "reader@example.com")
    s = wait_page(browser, lambda s: s["result_status"] == "503", 5, "503 shown")
    assert s["result"] == "Error: email updates are not available on this server."
    assert s["result_outcome"] == "error"
    shot(browser, "subscribe-503")
    no_console_errors(browser)


@pytest.mark.timeout(60)
def test_subscribe_form_accepted_and_refused(browser, tocsind_factory):
    smtp = SmtpServer().start()
    try:
        t = tocsind_factory(env={"TOCSIN_SMTP_URL": smtp.url,
                                 "TOCSIN_EMAIL_RATE_PER_IP": "1000"})
        comp = uid("web")
        open_page(browser, f"{t.url}/?components={comp}")
        _subscribe(browser, f"{uid('reader')}@example.com")
        s = wait_page(browser, lambda s: s["result_status"] == "202", 5, "202 shown")
        assert s["result"].startswith("Almost done") and s["result_outcome"] == "ok"
        shot(browser, "subscribe-202")
        mail = wait_until(lambda: smtp.mails(), 10, what="confirmation mail")[0]
        assert mail.links("confirm"), mail.text
        # An address the browser lets through but tocsind refuses (a local
        # part over 64 bytes): 400, with the server's reason.
        _subscribe(browser, "x" * 65 + "@example.com")
        s = wait_page(browser, lambda s: s["result_status"] == "400", 5, "400 shown")
        assert s["result"].startswith("Error: please check the form. address:"), s["result"]
        assert browser.js("return document.activeElement.id") == "subscribe-address"
        no_console_errors(browser)
    finally:
        smtp.cleanup()


def _subscribe(browser, address):
    browser.js("const i = document.getElementById('subscribe-address'); i.value = arguments[0];"
               "document.querySelector('#subscribe button').click()", address)
