# tocsin — SPDX-License-Identifier: MIT
#
# The email side of the e2e suite: a real SMTP server (tests/tools/smtp_server.py,
# Debian's aiosmtpd) on a loopback port that stays the same across stop() and
# start(), so a test can take the server away and bring it back where tocsind
# looks for it; and the stored mails parsed with Python's `email` package
# (policy=default), independently of tocsin's own MIME code. Each start()
# writes into a directory of its own (the server numbers mails from 1 per
# process), and mails() reads them all in arrival order. No traffic leaves
# 127.0.0.0/8.

import email
import email.policy
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from helpers import HarnessError, free_port, wait_until

SERVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools",
                      "smtp_server.py")
LINK_RE = re.compile(r"https?://[^\s<>\"]+/v1/(?:confirm|unsubscribe)\?token=[A-Za-z0-9._-]+")


class Mail:
    """One stored mail: the envelope (smtp_server.py's .json) and the message
    parsed with policy=default (headers decoded, parts as str)."""

    def __init__(self, meta, raw):
        self.meta = meta
        self.raw = raw
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)

    @property
    def rcpt(self):
        return self.meta["rcpt_tos"]

    @property
    def to(self):
        return str(self.msg["To"])

    @property
    def subject(self):
        return str(self.msg["Subject"])

    def part(self, subtype):
        """The decoded text/<subtype> part (str), or None."""
        p = self.msg.get_body(preferencelist=(subtype,))
        if p is None or p.get_content_type() != f"text/{subtype}":
            return None
        return p.get_content()

    @property
    def text(self):
        return self.part("plain")

    @property
    def html(self):
        return self.part("html")

    def links(self, kind):
        """The confirm or unsubscribe links in the text part, in order."""
        return [u for u in LINK_RE.findall(self.text or "") if f"/v1/{kind}?" in u]

    def __repr__(self):
        return f"<Mail to={self.rcpt} subject={self.subject!r}>"


class SmtpServer:
    """smtp_server.py on 127.0.0.1:<port>, a port chosen once. args are the
    server's options (--fail-rcpt 451, ...), replaced by start(args)."""

    def __init__(self, args=(), port=None):
        self.port = port or free_port()
        self.root = tempfile.mkdtemp(prefix="tocsin-e2e-smtp-")
        self.args = list(args)
        self.proc = None
        self.runs = 0

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self, args=None, timeout=10):
        if self.proc is not None:
            raise HarnessError("smtp_server.py is already running")
        if args is not None:
            self.args = list(args)
        self.runs += 1
        run_dir = os.path.join(self.root, f"run-{self.runs:02d}")
        ready = os.path.join(self.root, f"ready-{self.runs:02d}")
        log = open(os.path.join(self.root, f"server-{self.runs:02d}.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--port", str(self.port), "--dir", run_dir, "--ready-file",
             ready] + self.args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        try:
            wait_until(lambda: self.proc.poll() is not None or os.path.exists(ready), timeout,
                       what=f"smtp_server.py on port {self.port}")
        except HarnessError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            self.proc = None
            raise HarnessError(f"smtp_server.py exited {rc}: {self.log_tail()}")
        return self

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def restart(self, args=None):
        self.stop()
        return self.start(args)

    def log_tail(self, n=20):
        text = ""
        for path in sorted(glob.glob(os.path.join(self.root, "server-*.log"))):
            with open(path, errors="replace") as f:
                text += f.read()
        return "\n".join(text.splitlines()[-n:])

    def mails(self, rcpt=None):
        """Every mail stored so far, in arrival order (by run, then number);
        only those to rcpt when given."""
        out = []
        for run_dir in sorted(glob.glob(os.path.join(self.root, "run-*"))):
            names = [f for f in os.listdir(run_dir) if re.fullmatch(r"[0-9]+\.eml", f)]
            for name in sorted(names, key=lambda f: int(f.split(".")[0])):
                base = os.path.join(run_dir, name[:-4])
                with open(base + ".json") as f:
                    meta = json.load(f)
                with open(base + ".eml", "rb") as f:
                    raw = f.read()
                out.append(Mail(meta, raw))
        if rcpt is not None:
            out = [m for m in out if rcpt in m.rcpt]
        return out

    def wait_mails(self, n, rcpt=None, timeout=15):
        """Waits until at least n mails (to rcpt) arrived; returns them all."""
        wait_until(lambda: len(self.mails(rcpt)) >= n, timeout, interval=0.05,
                   what=f"{n} mail(s){' to ' + rcpt if rcpt else ''} (have "
                        f"{len(self.mails(rcpt))})")
        return self.mails(rcpt)

    def expect_quiet(self, seconds, n, rcpt=None):
        """Watches for `seconds` that the count of mails (to rcpt) stays n."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = self.mails(rcpt)
            assert len(got) == n, f"expected {n} mail(s){' to ' + rcpt if rcpt else ''}, got {got}"
            time.sleep(0.1)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
