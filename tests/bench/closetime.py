#!/usr/bin/python3
# tocsin — SPDX-License-Identifier: MIT
#
# What closing sessions costs tocsind's loop against the size of lws's fd
# table (lws 4.1.6, as Debian builds it, scans the whole table, sized by the
# soft RLIMIT_NOFILE at start, at every close). Starts its own redis-server,
# tocsin-devkafka and one tocsind per http.max_connections asked (tocsind
# sets its soft limit to that plus its reserve), opens N WebSocket sessions
# from this process, closes them all at once and reads the CPU tocsind's
# main thread spent until every close was seen. Every wait is bounded and
# every process it started is stopped on the way out.

import argparse
import os
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

import helpers  # noqa: E402
from benchlib import proc_nofile  # noqa: E402
from helpers import DevKafka, RedisServer, Tocsind, main_thread_cpu_s, wait_until  # noqa: E402
from rawws import upgrade_request  # noqa: E402


def log(msg):
    print(f"closetime: {msg}", file=sys.stderr, flush=True)


def open_sessions(port, n):
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"127.0.0.{2 + i % 8}", 0))
        s.settimeout(20)
        s.connect(("127.0.0.1", port))
        s.sendall(upgrade_request(port))
        socks.append(s)
    for s in socks:
        if s.recv(12) != b"HTTP/1.1 101":
            raise RuntimeError("a session was refused")
    return socks


def one(redis, kafka, tmp, cap, sessions):
    t = Tocsind(tmp, redis, kafka, env={
        "TOCSIN_LOG_LEVEL": "warn",
        "TOCSIN_HTTP_MAX_CONNECTIONS": str(cap),
        "TOCSIN_HTTP_MAX_PENDING_PER_IP": "0",
        "TOCSIN_HTTP_MAX_CONNECTIONS_PER_IP": "0",
        "TOCSIN_WEBHOOK_MAX_CONNECTIONS": "256",
    })
    try:
        t.start()
        soft, hard = proc_nofile(t.proc.pid)
        socks = open_sessions(t.port, sessions)
        wait_until(lambda: t.metric("tocsin_http_connections") >= sessions, 60, interval=0.2,
                   what="every session counted")
        time.sleep(1)
        cpu0 = main_thread_cpu_s(t.proc.pid)
        t0 = time.monotonic()
        for s in socks:
            s.close()
        wait_until(lambda: t.metric("tocsin_http_connections") <= 1, 120, interval=0.05,
                   what="every close seen")
        wall = time.monotonic() - t0
        cpu = main_thread_cpu_s(t.proc.pid) - cpu0
        return soft, hard, cpu, wall
    finally:
        t.cleanup()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--caps", default="0,10000",
                   help="http.max_connections values, one tocsind each (0 = the hard limit's)")
    p.add_argument("--build-dir", default=os.environ.get("TOCSIN_BUILD_DIR", "build"))
    a = p.parse_args()
    helpers.BUILD_DIR = os.path.abspath(a.build_dir)
    redis = RedisServer().start()
    kafka = None
    try:
        kafka = DevKafka(partitions=4).start()
        print("| http.max_connections | soft / hard RLIMIT_NOFILE | sessions closed "
              "| loop CPU (s) | per close (µs) | wall (s) |")
        print("|---|---|---|---|---|---|")
        for cap in (int(c) for c in a.caps.split(",")):
            soft, hard, cpu, wall = one(redis, kafka, tempfile.mkdtemp(prefix="tocsin-close-"),
                                        cap, a.sessions)
            print(f"| {cap} | {soft} / {hard} | {a.sessions:,} | {cpu:.2f} "
                  f"| {cpu / a.sessions * 1e6:.0f} | {wall:.2f} |", flush=True)
    finally:
        if kafka is not None:
            kafka.stop()
        redis.cleanup()


if __name__ == "__main__":
    main()
