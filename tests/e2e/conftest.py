# tocsin — SPDX-License-Identifier: MIT
#
# Fixtures of the end-to-end suite: a session redis-server, a tocsin-devkafka
# per test (a fresh topic, so seq runs and DLQ contents are the test's own),
# and tocsind processes that are always stopped at teardown, with their log
# printed and saved when the test fails and checked for sanitizer reports.
# A per-test SIGALRM bound (TOCSIN_E2E_TIMEOUT, default 150 s, or the
# `timeout` marker) makes sure no test hangs.
# `receivers` makes scripted webhook receivers (webhook_receiver.py) and
# closes them at teardown; `proxies` makes TCP fault proxies (faultproxy.py)
# and closes them.

import os
import shutil
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from faultproxy import FaultProxy  # noqa: E402
from helpers import DevKafka, RedisServer, Tocsind  # noqa: E402
from webhook_receiver import Receiver  # noqa: E402

ARTIFACTS = os.path.join(os.path.dirname(__file__), "artifacts")
DEFAULT_TIMEOUT = int(os.environ.get("TOCSIN_E2E_TIMEOUT", "150"))


class TestTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so `except Exception` in a test
    or a library does not swallow it."""


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test bound (SIGALRM)")
    config.addinivalue_line("markers", "kafka_brokers(n): brokers of the test's tocsin-devkafka")


def _on_alarm(signum, frame):
    raise TestTimeout("test ran past its time bound (tests/e2e/conftest.py)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Arms one alarm over setup, call and teardown of each test."""
    marker = item.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker and marker.args else DEFAULT_TIMEOUT
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item, so fixtures know at teardown
    whether the test failed."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    return any(getattr(getattr(request.node, "rep_" + w, None), "failed", False)
               for w in ("setup", "call"))


@pytest.fixture(scope="session")
def redis_server():
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


@pytest.fixture
def own_redis():
    """A redis-server of the test's own, which it may stop, pause or restart."""
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


@pytest.fixture
def kafka(request):
    """A tocsin-devkafka of the test's own; `@pytest.mark.kafka_brokers(n)`
    asks for n brokers (fault tests take one down while others serve)."""
    marker = request.node.get_closest_marker("kafka_brokers")
    brokers = int(marker.args[0]) if marker and marker.args else 1
    k = DevKafka(partitions=4, brokers=brokers).start()
    yield k
    k.stop()


@pytest.fixture
def tocsind_factory(request, tmp_path, redis_server, kafka):
    """start(env=None, config=None, redis=None, wait_ready=True,
    preexec_fn=None, port=None) → Tocsind."""
    procs = []

    def start(env=None, config=None, redis=None, wait_ready=True, preexec_fn=None, port=None):
        workdir = tmp_path / f"tocsind-{len(procs)}"
        workdir.mkdir()
        t = Tocsind(str(workdir), redis or redis_server, kafka, env=env, config=config,
                    preexec_fn=preexec_fn, port=port)
        procs.append(t)
        return t.start(wait_ready=wait_ready)

    yield start

    problems = []
    for i, t in enumerate(procs):
        t.cleanup()
        report = t.sanitizer_report()
        if report:
            problems.append(f"tocsind #{i} sanitizer report:\n{report}")
        if _failed(request) or report:
            os.makedirs(ARTIFACTS, exist_ok=True)
            name = f"{request.node.name}-tocsind{i}.log".replace("/", "_")
            shutil.copy(t.log_path, os.path.join(ARTIFACTS, name))
            print(f"\n--- tocsind #{i} log tail (full: tests/e2e/artifacts/{name}) ---")
            print(t.log_tail(80))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def tocsind(tocsind_factory):
    return tocsind_factory()


@pytest.fixture
def receivers():
    """make(script=()) → a webhook_receiver.Receiver on 127.0.0.1; every
    one made is closed at teardown."""
    made = []

    def make(script=()):
        r = Receiver(script)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


@pytest.fixture
def proxies():
    """make(target_port) → a faultproxy.FaultProxy on 127.0.0.1 forwarding
    to it; every one made is closed at teardown."""
    made = []

    def make(target_port):
        p = FaultProxy(target_port)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
