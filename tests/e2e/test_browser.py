# tocsin — SPDX-License-Identifier: MIT
#
# The browser client (clients/js) in a real headless Chromium against a real
# tocsind: <tocsin-banner> appears within 2 s of a publish, follows updates,
# renders accessibly in the user's time zone, honours dismissal per version
# and disappears on resolve; it resumes after a tocsind restart with since
# (missing nothing published meanwhile); and it falls back to SSE, then to
# polling, when the better transport is unavailable. One Chromium serves the
# module; the page comes from browser.Site, which also forwards /v1/* to
# tocsind for the same-origin cases.

import datetime
import os
import time
import zoneinfo

import pytest

from browser import Browser, Site, browser_missing, timed
from helpers import event, uid

ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")  # as conftest.ARTIFACTS

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")

DELIVERY_BOUND_S = 2.0
# Fast retries, so the fallback tests take seconds, not minutes.
QUICK = {"backoff": {"baseMs": 100, "capMs": 500}}


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.quit()


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


def _warm_up(tocsind, kafka):
    """One accepted event nobody here matches: the consumer has its
    partitions, so the next publish measures delivery, not a group join."""
    kafka.produce(event(uid("warm"), 1, components=["warm-up"]))
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', 1, timeout=30)


def _open_same_origin(browser, site, tocsind, kafka, comp, options):
    """The page with the banner pointed at the site itself, which forwards
    /v1/* to tocsind (as a same-origin deployment behind a proxy)."""
    _warm_up(tocsind, kafka)
    site.upstream_port = tocsind.port
    browser.open(site.page_url(src=site.origin, components=comp, options=options))


def _publish_and_wait(browser, kafka, ev, pred, what, bound=DELIVERY_BOUND_S):
    def go():
        kafka.produce(ev)
        return browser.wait_banner(pred, bound, what)

    state, took = timed(go)
    assert took <= bound, f"{what}: {took:.2f}s"
    return state


@pytest.mark.timeout(60)
def test_banner_live_updates_dismiss_resolve(browser, site, tocsind, kafka):
    comp = uid("web")
    inc = uid("inc")
    _warm_up(tocsind, kafka)
    # Cross-origin: the page is on the site's origin, tocsind on its own port.
    browser.open(site.page_url(src=tocsind.url, components=comp, min_impact="minor"),
                 timezone="Asia/Tokyo")
    browser.wait_banner(lambda s: s["state"] == "open" and s["transport"] == "ws", 10,
                        "WebSocket open")
    s = browser.state()
    assert not s["visible"] and s["height"] == 0, s
    assert s["role"] == "status" and s["live"], "the live region exists before content"

    v1 = event(inc, 1, impact="major", components=[comp], title="Playback fails",
               message="Some songs do not start.",
               links={"status_page": "https://status.example.com/incidents/1"})
    s = _publish_and_wait(browser, kafka, v1, lambda s: s["visible"], "banner shown")
    assert s["title"] == "Playback fails"
    assert s["status"] == "Investigating"
    assert s["impact"] == "Major outage"
    assert s["message"] == "Some songs do not start."
    assert s["link"] == "https://status.example.com/incidents/1"
    assert (s["role"], s["live"], s["atomic"]) == ("alert", "assertive", "true")
    assert s["dismiss_label"] and not s["dismiss_in_region"]
    # started_at (v1's occurred_at) is shown in the user's local time: Tokyo's here.
    started = datetime.datetime.fromisoformat(v1["occurred_at"].replace("Z", "+00:00"))
    assert s["started_iso"] == started.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    local = started.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    want = f"{local:%b} {local.day}, {local.year}, {local.hour % 12 or 12}:{local:%M}\u202f{local:%p}"
    assert s["started"].replace(" ", "\u202f").endswith(want.replace(" ", "\u202f")), (s["started"], want)
    # It slides in, unless the user asked for reduced motion.
    animation = ("return getComputedStyle(document.querySelector('tocsin-banner').shadowRoot"
                 ".querySelector('[part~=banner]')).animationName")
    assert browser.js(animation) == "tocsin-banner-in"
    time.sleep(0.3)  # the picture after the entrance
    browser.screenshot(os.path.join(ARTIFACTS, "browser-banner-major.png"))
    browser.emulate_reduced_motion(True)
    assert browser.js(animation) == "none"

    # A less severe incident does not take the banner over.
    minor = uid("inc")
    kafka.produce(event(minor, 1, impact="minor", components=[comp], title="Slow search"))
    browser.wait(lambda: any(e["type"] == "update" and e["incident"] == minor
                             for e in browser.log()), 5, "minor update received")
    assert browser.state()["incident"] == inc

    s = _publish_and_wait(browser, kafka, event(inc, 2, status="identified", impact="major",
                                                components=[comp], title="Playback fails",
                                                message="A bad deploy; rolling back."),
                          lambda s: s["status"] == "Identified", "new status shown")
    assert s["message"] == "A bad deploy; rolling back."

    # A version that changes nothing visible leaves the live region alone,
    # so screen readers do not announce the same text again.
    before = browser.js("return window.__mutations")
    kafka.produce(event(inc, 3, status="identified", impact="major", components=[comp],
                        title="Playback fails", message="A bad deploy; rolling back.",
                        affected_users=1234))
    browser.wait(lambda: any(e["type"] == "update" and e["version"] == 3 for e in browser.log()),
                 5, "v3 received")
    assert browser.state()["version"] == 3
    assert browser.js("return window.__mutations") == before

    # Dismissed per version: the minor incident shows instead, then v4 of
    # the major one comes back.
    browser.js("window.document.querySelector('tocsin-banner').shadowRoot"
               ".querySelector('[part~=dismiss]').click()")
    s = browser.wait_banner(lambda s: s["incident"] == minor, 2, "next incident after dismiss")
    assert (s["role"], s["live"]) == ("status", "polite")
    assert browser.js("return sessionStorage.getItem('tocsin-banner:dismissed')") is not None
    _publish_and_wait(browser, kafka, event(inc, 4, status="monitoring", impact="critical",
                                            components=[comp], title="Playback fails"),
                      lambda s: s["incident"] == inc and s["status"] == "Monitoring",
                      "newer version shown again")
    assert "banner-critical" in browser.state()["part"]
    browser.screenshot(os.path.join(ARTIFACTS, "browser-banner-critical.png"))

    # Attributes are live: another filter resubscribes (nothing matches),
    # the old one brings the incident back by snapshot.
    banner = "document.querySelector('tocsin-banner')"
    browser.js(f"{banner}.setAttribute('components', 'nothing-here')")
    browser.wait_banner(lambda s: not s["visible"] and s["state"] == "open", 5, "new filter")
    browser.js(f"{banner}.setAttribute('components', arguments[0])", comp)
    browser.wait_banner(lambda s: s["incident"] == inc and s["status"] == "Monitoring", 5,
                        "old filter again")

    kafka.produce(event(minor, 2, status="resolved", impact="minor", components=[comp]))
    _publish_and_wait(browser, kafka, event(inc, 5, status="resolved", impact="critical",
                                            components=[comp], title="Playback fails"),
                      lambda s: not s["visible"], "banner gone on resolve")
    assert browser.state()["height"] == 0
    errors = [e for e in browser.console() if e.get("level") == "SEVERE"]
    assert not errors, errors


@pytest.mark.timeout(60)
def test_banner_resumes_after_restart(browser, site, tocsind, kafka):
    comp = uid("web")
    inc = uid("inc")
    # fallbackAfter: stay on WebSocket for this one.
    _open_same_origin(browser, site, tocsind, kafka, comp, dict(QUICK, fallbackAfter=1000))
    _publish_and_wait(browser, kafka, event(inc, 1, impact="major", components=[comp]),
                      lambda s: s["visible"] and s["status"] == "Investigating", "banner shown")
    seen = len(browser.log())

    tocsind.stop()
    # The proxy keeps the client away until the update is stored, so it can
    # only arrive as the replay of a resume with since.
    site.upstream_port = None
    browser.wait_banner(lambda s: s["state"] == "reconnecting", 5, "client noticed the restart")
    kafka.produce(event(inc, 2, status="identified", impact="major", components=[comp]))
    tocsind.start()
    tocsind.wait_metric('tocsin_events_total{result="accepted"}', 1, timeout=20)
    site.upstream_port = tocsind.port
    s = browser.wait_banner(lambda s: s["status"] == "Identified" and s["state"] == "open", 5,
                            "update published while down")
    assert s["visible"] and s["transport"] == "ws"

    after = browser.log()[seen:]
    got = [e for e in after if e["type"] == "update" and e["incident"] == inc]
    assert [e["version"] for e in got] == [2], after
    assert not any(e["type"] == "snapshot" and e["reset"] for e in after), \
        f"resume was not exact: {after}"
    resumed = [t for t in site.requested("/v1/ws") if "since=" in t]
    assert resumed, site.requested("/v1/ws")
    assert "epoch=" in resumed[-1]


@pytest.mark.timeout(60)
def test_falls_back_to_sse_then_polling(browser, site, tocsind, kafka):
    comp = uid("web")
    inc = uid("inc")
    # The test hook: WebSocket at a path that does not exist (404), as
    # behind a proxy that does not pass upgrades.
    _open_same_origin(browser, site, tocsind, kafka, comp,
                      dict(QUICK, fallbackAfter=2, paths={"ws": "/v1/no-websocket-here"}))
    browser.wait_banner(lambda s: s["state"] == "open" and s["transport"] == "sse", 10,
                        "fallen back to SSE")
    assert len(site.requested("/v1/no-websocket-here")) >= 2
    _publish_and_wait(browser, kafka, event(inc, 1, impact="minor", components=[comp]),
                      lambda s: s["visible"], "banner shown over SSE")
    assert any(e["type"] == "update" and e["transport"] == "sse" for e in browser.log())
    _publish_and_wait(browser, kafka, event(inc, 2, status="resolved", components=[comp]),
                      lambda s: not s["visible"], "resolved over SSE")

    # SSE unavailable too: polling GET /v1/incidents, conditional on ETag.
    inc2 = uid("inc")
    opts = dict(QUICK, fallbackAfter=2, pollIntervalMs=300,
                paths={"ws": "/v1/no-websocket-here", "events": "/v1/no-events-here"})
    browser.open(site.page_url(src=site.origin, components=comp, options=opts))
    browser.wait_banner(lambda s: s["state"] == "open" and s["transport"] == "poll", 10,
                        "fallen back to polling")
    _publish_and_wait(browser, kafka, event(inc2, 1, impact="major", components=[comp]),
                      lambda s: s["visible"] and s["incident"] == inc2, "banner shown by polling")
    heads = site.heads("/v1/incidents")
    assert any("if-none-match:" in h.lower() for h in heads), heads[-3:]


@pytest.mark.timeout(30)
def test_cross_origin_sse(browser, site, tocsind):
    comp = uid("web")
    browser.open(site.page_url(src=tocsind.url, components=comp, transports="sse",
                               options=QUICK))
    browser.wait_banner(lambda s: s["state"] == "open" and s["transport"] == "sse", 3,
                        "cross-origin SSE open")
