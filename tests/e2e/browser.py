# tocsin — SPDX-License-Identifier: MIT
#
# Browser harness of test_browser.py: a small site on a free loopback port
# that serves clients/js and a test page, and forwards /v1/* to a tocsind (a
# stand-in for the reverse proxy a same-origin deployment has; the upstream
# can be moved after a restart), plus a headless Chromium driven by
# Debian's chromium-driver and python3-selenium. Every wait is bounded.

import importlib.util
import json
import os
import selectors
import shutil
import socket
import tempfile
import threading
import time
import urllib.parse

from helpers import HarnessError, wait_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
JS_DIR = os.path.join(ROOT, "clients", "js")
CHROMIUM = os.environ.get("TOCSIN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TOCSIN_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1000,700")
MAX_HEAD = 64 * 1024  # a request head past this is refused, not buffered on

# The test page: a <tocsin-banner> configured from ?cfg=<json>
# ({src, components, regions, min_impact, transports, options}), a log of the
# client's events in window.__log and the banner's rendering in bannerState().
PAGE = """<!doctype html>
<html lang="en-US">
<head><meta charset="utf-8"><title>tocsin banner test</title><link rel="icon" href="data:,">
<style>body { margin: 0; font: 16px/1.4 sans-serif; } main { padding: 1rem; }</style></head>
<body>
<main><h1>Example app</h1><p>The banner above shows the worst matching incident.</p></main>
<script type="module">
import '/js/banner.js';
const cfg = JSON.parse(new URLSearchParams(location.search).get('cfg') || '{}');
const b = document.createElement('tocsin-banner');
for (const [attr, key] of [['src', 'src'], ['components', 'components'], ['regions', 'regions'],
                           ['min-impact', 'min_impact'], ['transports', 'transports']]) {
    if (cfg[key]) b.setAttribute(attr, cfg[key]);
}
b.clientOptions = cfg.options || {};
window.__log = [];
window.__mutations = 0;
document.body.prepend(b);
new MutationObserver((list) => { window.__mutations += list.length; })
    .observe(b.shadowRoot, {subtree: true, childList: true, characterData: true, attributes: true});
for (const type of ['state', 'snapshot', 'update', 'change', 'error']) {
    b.client.addEventListener(type, (e) => {
        const d = e.detail;
        window.__log.push({type, t: Date.now(), state: d.state, transport: d.transport,
                           seq: d.seq, epoch: d.epoch, reset: d.reset, code: d.code,
                           incident: d.incident && d.incident.incident_id,
                           version: d.incident && d.incident.version,
                           status: d.incident && d.incident.status,
                           count: d.incidents && d.incidents.length});
    });
}
window.bannerState = () => {
    const q = (s) => b.shadowRoot.querySelector(s);
    const box = q('[part~=banner]');
    return {
        visible: box.dataset.state === 'shown' && box.getBoundingClientRect().height > 0,
        height: box.getBoundingClientRect().height,
        impact: q('[part~=impact]').textContent,
        title: q('[part~=title]').textContent,
        status: q('[part~=status]').textContent,
        message: q('[part~=message]').textContent,
        started: q('[part~=started]').textContent,
        started_iso: q('[part~=started]').dateTime,
        link: q('[part~=link]').getAttribute('href'),
        role: q('[part~=body]').getAttribute('role'),
        live: q('[part~=body]').getAttribute('aria-live'),
        atomic: q('[part~=body]').getAttribute('aria-atomic'),
        dismiss_in_region: q('[part~=body]').contains(q('[part~=dismiss]')),
        part: q('[part~=banner]').getAttribute('part'),
        dismiss_label: q('[part~=dismiss]').getAttribute('aria-label'),
        incident: b.incident && b.incident.incident_id,
        version: b.incident && b.incident.version,
        state: b.client && b.client.state,
        transport: b.client && b.client.transport,
    };
};
window.__ready = true;
</script>
</body>
</html>
"""

_TYPES = {".js": "text/javascript", ".html": "text/html", ".json": "application/json",
          ".md": "text/markdown"}


class Site:
    """http://127.0.0.1:<port>: /page.html (the test page), /js/* (clients/js)
    and /v1/* forwarded byte for byte to 127.0.0.1:<upstream_port> (502 when
    it is None or refuses). requests keeps (method, target, head) of each."""

    def __init__(self, upstream_port=None):
        self.upstream_port = upstream_port
        self.requests = []
        self._lock = threading.Lock()
        self._socks = set()
        self._closed = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        # accept() wakes up now and then, so close() need not rely on
        # closing a socket another thread is blocked on.
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="site-accept", daemon=True)
        self._thread.start()

    @property
    def origin(self):
        return f"http://127.0.0.1:{self.port}"

    def page_url(self, **cfg):
        return f"{self.origin}/page.html?" + urllib.parse.urlencode({"cfg": json.dumps(cfg)})

    def requested(self, prefix):
        """Targets of the requests whose path starts with prefix."""
        with self._lock:
            return [t for _, t, _ in self.requests if t.startswith(prefix)]

    def heads(self, prefix):
        with self._lock:
            return [h for _, t, h in self.requests if t.startswith(prefix)]

    def close(self):
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            _close_quietly(s)
        self._thread.join(timeout=5)

    # ---- internals

    def _track(self, s):
        with self._lock:
            self._socks.add(s)

    def _untrack(self, s):
        with self._lock:
            self._socks.discard(s)
        _close_quietly(s)

    def _accept_loop(self):
        while not self._closed:
            try:
                c, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            self._track(c)
            threading.Thread(target=self._serve, args=(c,), name="site-conn", daemon=True).start()

    def _serve(self, c):
        try:
            c.settimeout(10)
            buf = b""
            while b"\r\n\r\n" not in buf:
                if len(buf) > MAX_HEAD:
                    return
                chunk = c.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            method, target = (head.split("\r\n", 1)[0].split(" ") + ["", ""])[:2]
            with self._lock:
                self.requests.append((method, target, head))
            path = urllib.parse.urlsplit(target).path
            if path.startswith("/v1/"):
                self._proxy(c, buf)
            elif path == "/page.html":
                self._respond(c, 200, "text/html; charset=utf-8", PAGE.encode())
            elif path.startswith("/js/"):
                self._static(c, path[len("/js/"):])
            else:
                self._respond(c, 404, "text/plain", b"not found\n")
        except OSError:
            pass
        finally:
            self._untrack(c)

    def _note_request(self, data):
        """Logs a later request on a kept-alive proxied connection (its head
        comes in one read: it is small and sent at once)."""
        if not data[:8].split(b" ")[0] in (b"GET", b"HEAD", b"POST", b"OPTIONS"):
            return
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        method, target = (head.split("\r\n", 1)[0].split(" ") + ["", ""])[:2]
        with self._lock:
            self.requests.append((method, target, head))

    def _static(self, c, rel):
        full = os.path.realpath(os.path.join(JS_DIR, rel))
        if not full.startswith(JS_DIR + os.sep) or not os.path.isfile(full):
            self._respond(c, 404, "text/plain", b"not found\n")
            return
        with open(full, "rb") as f:
            body = f.read()
        ctype = _TYPES.get(os.path.splitext(full)[1], "application/octet-stream")
        self._respond(c, 200, ctype, body)

    @staticmethod
    def _respond(c, status, ctype, body):
        reason = {200: "OK", 404: "Not Found", 502: "Bad Gateway"}.get(status, "")
        c.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                  f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                  f"Connection: close\r\n\r\n".encode() + body)

    def _proxy(self, c, first):
        port = self.upstream_port
        if port is None:
            self._respond(c, 502, "text/plain", b"no upstream\n")
            return
        try:
            u = socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            self._respond(c, 502, "text/plain", b"upstream refused\n")
            return
        self._track(u)
        try:
            u.sendall(first)
            c.settimeout(None)
            u.settimeout(None)
            sel = selectors.DefaultSelector()
            sel.register(c, selectors.EVENT_READ, u)
            sel.register(u, selectors.EVENT_READ, c)
            while not self._closed:
                for key, _ in sel.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    if key.fileobj is c:
                        self._note_request(data)
                    key.data.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            self._untrack(u)


def _close_quietly(s):
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def browser_missing():
    """Why a headless Chromium cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found (apt-get install chromium chromium-driver)"
    if importlib.util.find_spec("selenium") is None:
        return "python3-selenium is not installed"
    return None


class Browser:
    """One headless Chromium (with its chromedriver) for a test module."""

    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="tocsin-e2e-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in CHROMIUM_ARGS:
            opts.add_argument(a)
        opts.add_argument(f"--user-data-dir={self.profile}")
        self.log_path = os.path.join(self.profile, "chromedriver.log")
        service = Service(CHROMEDRIVER, log_path=self.log_path)
        try:
            self.driver = webdriver.Chrome(service=service, options=opts)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_script_timeout(10)
        self.driver.set_page_load_timeout(15)

    def open(self, url, timezone=None, reduced_motion=False):
        """Loads url in a fresh document; timezone (IANA) is the one the page
        sees, reduced_motion its prefers-reduced-motion (the emulation of
        one test does not leak into the next)."""
        self.driver.get("about:blank")
        self.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": timezone or ""})
        self.emulate_reduced_motion(reduced_motion)
        self.driver.get(url)
        self.wait(lambda: self.js("return window.__ready === true"), 10, "test page ready")

    def emulate_reduced_motion(self, on):
        features = [{"name": "prefers-reduced-motion", "value": "reduce" if on else "no-preference"}]
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def state(self):
        return self.js("return window.bannerState()")

    def log(self):
        return self.js("return window.__log")

    def wait(self, pred, timeout, what):
        try:
            return wait_until(pred, timeout, interval=0.02, what=what)
        except HarnessError as e:
            raise HarnessError(f"{e}\nbanner: {self._safe(self.state)}\n"
                               f"client log tail: {self._safe(lambda: self.log()[-12:])}") from None

    def wait_banner(self, pred, timeout, what):
        """Waits until pred(bannerState()) holds; returns that state."""
        box = {}

        def check():
            box["s"] = self.state()
            return pred(box["s"])

        self.wait(check, timeout, what)
        return box["s"]

    def screenshot(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.driver.save_screenshot(path)

    def console(self):
        try:
            return self.driver.get_log("browser")
        except Exception:
            return []

    @staticmethod
    def _safe(fn):
        try:
            return fn()
        except Exception as e:  # the page may be gone: report, do not mask
            return f"<{type(e).__name__}>"

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def timed(fn):
    """(result, seconds) of fn()."""
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0
