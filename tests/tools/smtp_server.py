#!/usr/bin/python3
# tocsin — SPDX-License-Identifier: MIT
#
# A scriptable SMTP sink for tests (unit tests of broker/email/smtp.c and the
# e2e suite): Debian's aiosmtpd on 127.0.0.1, storing every mail it accepts
# as files, and answering failures, AUTH and STARTTLS as told on the command
# line. It never relays anything anywhere.
#
#   /usr/bin/python3 tests/tools/smtp_server.py --dir DIR [options]
#
#   --host HOST          address to listen on (default 127.0.0.1)
#   --port PORT          port to listen on; 0 (default) picks a free one
#   --dir DIR            where mails go (created if missing): each accepted
#                        mail is DIR/<n>.eml, the message bytes exactly as
#                        the client sent them (SMTP dot-stuffing undone), and
#                        DIR/<n>.json, the envelope:
#                          {"n":1,"mail_from":"a@x","rcpt_tos":["b@y"],
#                           "peer":["127.0.0.1",40312],"connection":1,
#                           "tls":false,"auth":"user" or null,"size":1234}
#                        where "connection" numbers the TCP connections this
#                        server accepted (two mails with the same number came
#                        over one reused connection). n counts from 1; the
#                        .json is written before the .eml and both appear by
#                        rename, so a reader that sees n.eml sees whole files.
#   --fail-rcpt CODE[=ADDR]  answer CODE (e.g. 451, 550) to RCPT TO, for
#                        every recipient or only ADDR; repeatable
#   --fail-data CODE     answer CODE to the end of DATA (nothing is stored)
#   --delay-rcpt SECONDS wait this long before answering RCPT TO
#   --delay-data SECONDS wait this long before answering the end of DATA
#                        (slow servers, client timeouts); a line on stdout
#                        says when such a wait starts
#   --auth USER:PASS     require AUTH (PLAIN or LOGIN) with these credentials
#                        before MAIL; allowed without TLS, since tests run on
#                        loopback
#   --tls-cert FILE, --tls-key FILE
#                        offer STARTTLS with this certificate (PEM)
#   --require-tls        refuse MAIL before STARTTLS (needs --tls-cert)
#   --ready-file FILE    once listening, write the port number to FILE (by
#                        rename, so its content is whole when it appears)
#
# SIGTERM or SIGINT stops it. Exit status 0, or 2 for bad arguments.

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

HOSTNAME = "tocsin-test-smtp"  # no getfqdn(): it may wait on DNS


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Handler:
    def __init__(self, args):
        self.dir = args.dir
        self.fail_rcpt = {}  # address (or None = any) -> code
        for spec in args.fail_rcpt:
            code, _, addr = spec.partition("=")
            self.fail_rcpt[addr.lower() or None] = int(code)
        self.fail_data = args.fail_data
        self.delay_rcpt = args.delay_rcpt
        self.delay_data = args.delay_data
        self.count = 0
        self.connections = {}  # peer -> connection number

    def connection_of(self, session):
        if session.peer not in self.connections:
            self.connections[session.peer] = len(self.connections) + 1
        return self.connections[session.peer]

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.connection_of(session)
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.delay_rcpt:
            await asyncio.sleep(self.delay_rcpt)
        code = self.fail_rcpt.get(address.lower(), self.fail_rcpt.get(None))
        if code is not None:
            return f"{code} {'4.2.0 mailbox busy, try later' if code < 500 else '5.1.1 no such user'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay_data:
            # Said on stdout (the log), so a test knows the client is now
            # waiting for this reply.
            print(f"end of DATA from {session.peer[1]}: answering in {self.delay_data:g} s",
                  flush=True)
            await asyncio.sleep(self.delay_data)
        if self.fail_data is not None:
            code = self.fail_data
            return f"{code} {'4.3.0 try again later' if code < 500 else '5.6.0 message refused'}"
        self.count += 1
        n = self.count
        auth = session.auth_data
        meta = {
            "n": n,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "peer": list(session.peer[:2]),
            "connection": self.connection_of(session),
            "tls": session.ssl is not None,
            "auth": auth.login.decode() if isinstance(auth, LoginPassword) else None,
            "size": len(envelope.original_content),
        }
        write_atomic(os.path.join(self.dir, f"{n}.json"), json.dumps(meta).encode())
        write_atomic(os.path.join(self.dir, f"{n}.eml"), envelope.original_content)
        return "250 2.0.0 OK queued as %d" % n


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        # handled=False: aiosmtpd answers 535 itself on a failure.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticator


def parse_args(argv):
    p = argparse.ArgumentParser(description="Scriptable SMTP sink for tocsin tests.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", required=True)
    p.add_argument("--fail-rcpt", action="append", default=[], metavar="CODE[=ADDR]")
    p.add_argument("--fail-data", type=int, metavar="CODE")
    p.add_argument("--delay-rcpt", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--delay-data", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--auth", metavar="USER:PASS")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--ready-file")
    args = p.parse_args(argv)
    for spec in args.fail_rcpt:
        code = spec.partition("=")[0]
        if not code.isdigit() or not 400 <= int(code) <= 599:
            p.error(f"--fail-rcpt: {spec!r} is not CODE[=ADDR] with a 4xx or 5xx code")
    if args.fail_data is not None and not 400 <= args.fail_data <= 599:
        p.error("--fail-data: not a 4xx or 5xx code")
    if args.auth is not None and ":" not in args.auth:
        p.error("--auth: expected USER:PASS")
    if (args.tls_cert is None) != (args.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if args.require_tls and args.tls_cert is None:
        p.error("--require-tls needs --tls-cert")
    return args


async def serve(args):
    os.makedirs(args.dir, exist_ok=True)
    handler = Handler(args)
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    kw = {"hostname": HOSTNAME, "tls_context": tls, "require_starttls": args.require_tls}
    if args.auth:
        user, _, password = args.auth.partition(":")
        kw.update(
            authenticator=make_authenticator(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kw), args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    if args.ready_file:
        write_atomic(args.ready_file, f"{port}\n".encode())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    await server.wait_closed()


def main(argv):
    args = parse_args(argv)
    # aiosmtpd warns that AUTH without TLS is unsafe: on loopback it is the point.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
