# tocsin — SPDX-License-Identifier: MIT
#
# The status page's files over HTTP (broker/http/static.c): GET / and
# GET /static/<name> from the copies built into tocsind, with their content
# types, ETag and 304 and Cache-Control: no-cache; traversal attempts and
# unknown files are 404; http.static_dir replaces files of the same name
# (read per request, so an edit shows at once) up to 1 MiB and no more; a
# bad http.static_dir stops the start with exit 2, naming the key.

import http.client
import os
import re

from helpers import run_tocsind

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAX = 1024 * 1024  # TC_HTTP_STATIC_MAX


def raw_get(port, target, headers=None):
    """GET with the target sent exactly as given (no client-side
    normalisation of .. or %2e). Returns (status, headers, body), or
    (None, {}, b"") when the server closed without an answer."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.putrequest("GET", target, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None, {}, b""
    finally:
        c.close()


def source(*parts):
    with open(os.path.join(ROOT, *parts), "rb") as f:
        return f.read()


def test_builtin_files_types_and_cache_headers(tocsind):
    cases = [
        ("/", "text/html; charset=utf-8", source("clients", "status", "index.html")),
        ("/static/index.html", "text/html; charset=utf-8", source("clients", "status", "index.html")),
        ("/static/status.js", "text/javascript; charset=utf-8", source("clients", "status", "status.js")),
        ("/static/status.css", "text/css; charset=utf-8", source("clients", "status", "status.css")),
        ("/static/favicon.svg", "image/svg+xml", source("clients", "status", "favicon.svg")),
        ("/static/tocsin.js", "text/javascript; charset=utf-8", source("clients", "js", "tocsin.js")),
        ("/static/banner.js", "text/javascript; charset=utf-8", source("clients", "js", "banner.js")),
        ("/?components=playback", "text/html; charset=utf-8", source("clients", "status", "index.html")),
    ]
    for target, ctype, body in cases:
        status, h, got = raw_get(tocsind.port, target)
        assert status == 200, (target, status, got[:200])
        assert h["content-type"] == ctype, (target, h)
        assert got == body, f"{target}: not the file of the source tree"
        assert h["cache-control"] == "no-cache", (target, h)
        assert re.fullmatch(r'"[0-9a-f]{16}"', h["etag"]), (target, h)
        # tocsind's CSP: the page works under it (test_status_page.py checks
        # the browser logs no violation).
        assert "script-src 'self'" in h.get("content-security-policy", ""), h


def test_etag_and_304(tocsind):
    _, h, body = raw_get(tocsind.port, "/static/status.js")
    etag = h["etag"]
    _, h2, _ = raw_get(tocsind.port, "/static/status.css")
    assert h2["etag"] != etag, "another content, another ETag"
    for inm in (etag, "W/" + etag, f'"0000000000000000", {etag}', "*"):
        status, h3, got = raw_get(tocsind.port, "/static/status.js", {"If-None-Match": inm})
        assert status == 304 and got == b"", (inm, status, got[:100])
        assert h3["etag"] == etag
    status, _, got = raw_get(tocsind.port, "/static/status.js",
                             {"If-None-Match": '"0000000000000000"'})
    assert status == 200 and got == body


def test_traversal_and_unknown_names_are_404(tocsind):
    # lws resolves ".." (plain or %2e) and "//" before routing, so
    # "/static/.." is "/" (the page); static.c then takes one path segment
    # of [A-Za-z0-9._-] (no leading dot, no ".."). Nothing outside the
    # served set comes back.
    outside = source("CMakeLists.txt")
    index = source("clients", "status", "index.html")
    for target in ("/static/../CMakeLists.txt", "/static/%2e%2e/CMakeLists.txt",
                   "/static/%2e%2e%2f%2e%2e%2fCMakeLists.txt", "/static/..%2fCMakeLists.txt",
                   "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
                   "/static/..", "/static/%2e%2e", "/static/.", "/static/", "/static",
                   "/static/.hidden.js", "/static/a..b.js", "/static/sub/status.js",
                   "/static/status.js/", "/static/nope.js", "/static/CMakeLists.txt",
                   "/static/README.md", "/static/status.js%20", "/static/%73tatus.jsx",
                   "/index.html", "/static/" + "a" * 200 + ".js"):
        status, h, got = raw_get(tocsind.port, target)
        assert status in (404, None) or (status == 200 and got == index), (target, status)
        assert outside not in got and b"root:" not in got, target
        if status == 404:
            assert h["content-type"] == "application/json", (target, h)
    # A NUL is refused by lws before any route.
    assert raw_get(tocsind.port, "/static/status.js%00.png")[0] in (None, 400, 403, 404)


def test_static_dir_overrides_and_bounds(tocsind_factory, tmp_path):
    d = tmp_path / "www"
    d.mkdir()
    (d / "index.html").write_bytes(b"<!doctype html><title>Our status</title>")
    (d / "extra.json").write_bytes(b'{"ok":true}')
    (d / "notes.txt").write_bytes(b"not a served type")
    (d / "exact.js").write_bytes(b"/" * MAX)
    (d / "big.js").write_bytes(b"/" * (MAX + 1))
    (d / "dir.css").mkdir()
    t = tocsind_factory(env={"TOCSIN_HTTP_STATIC_DIR": str(d)})

    status, h, got = raw_get(t.port, "/")
    assert (status, got) == (200, b"<!doctype html><title>Our status</title>")
    etag = h["etag"]
    # Files the directory lacks still come built in.
    status, _, got = raw_get(t.port, "/static/tocsin.js")
    assert status == 200 and got == source("clients", "js", "tocsin.js")
    status, h, got = raw_get(t.port, "/static/extra.json")
    assert (status, h["content-type"], got) == (200, "application/json", b'{"ok":true}')
    assert raw_get(t.port, "/static/notes.txt")[0] == 404, "only known types are served"
    status, _, got = raw_get(t.port, "/static/exact.js")
    assert status == 200 and len(got) == MAX, "exactly the bound is served"
    assert raw_get(t.port, "/static/big.js")[0] == 404, "past the bound is not"
    assert raw_get(t.port, "/static/dir.css")[0] == 500
    log = t.log_text()
    assert 'msg="static file not served" file=big.js' in log, log[-2000:]
    assert "file=dir.css" in log

    # Read per request: an edit shows at once, with a new ETag.
    (d / "index.html").write_bytes(b"<!doctype html><title>Edited</title>")
    status, h, got = raw_get(t.port, "/", {"If-None-Match": etag})
    assert (status, got) == (200, b"<!doctype html><title>Edited</title>")
    assert h["etag"] != etag


def test_bad_static_dir_exits_2_naming_the_key(tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    for value, why in ((str(tmp_path / "absent"), "No such file or directory"),
                       (str(f), "not a directory")):
        p = run_tocsind(["--check-config"], env={"TOCSIN_HTTP_STATIC_DIR": value})
        err = p.stderr.decode(errors="replace")
        assert p.returncode == 2, err
        assert f"http.static_dir: {value}: {why}" in err, err
    p = run_tocsind(["--check-config"], env={"TOCSIN_HTTP_STATIC_DIR": str(tmp_path)})
    assert p.returncode == 0, p.stderr
