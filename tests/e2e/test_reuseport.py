# tocsin — SPDX-License-Identifier: MIT
#
# http.reuse_port (issue 6: one loop per core): two tocsind on one host
# bind the same port with SO_REUSEPORT, each a full node (one Redis prefix,
# one Kafka group). The kernel spreads the connections over both, and every
# client gets every update once and in order whichever process took it.
# Without the option, a second process on a taken port fails to start and
# says so.

import pytest

from clients import Ws, in_thread, query, run
from helpers import free_port, http_get_from, pairs, parse_metrics, stream, uid, wait_until

CLIENTS = 40


def _shared_env(reuse=True):
    return {"TOCSIN_REDIS_PREFIX": f"{uid('rp')}:", "TOCSIN_KAFKA_GROUP": uid("group"),
            "TOCSIN_HTTP_REUSE_PORT": "true" if reuse else "false"}


def _get(t, port, path):
    """GET from this process: the shared port's answer may come from either."""
    return http_get_from(t.proc.pid, port, path)


def _ready(t, port):
    if not t.alive():
        return "exited"
    try:
        return _get(t, port, "/readyz")[0] == 200
    except OSError:
        return False  # not listening yet


def _ws_sessions(t, port):
    status, body = _get(t, port, "/metrics")
    assert status == 200
    return parse_metrics(body.decode()).get('tocsin_sessions{channel="ws"}', 0)


@pytest.mark.timeout(180)
def test_two_processes_share_the_port_and_every_client_gets_every_update(tocsind_factory,
                                                                         kafka):
    port, env = free_port(), _shared_env()
    nodes = [tocsind_factory(env=env, port=port, wait_ready=False) for _ in range(2)]
    for t in nodes:
        assert wait_until(lambda: _ready(t, port), 30, what="each node ready") is True, \
            f"tocsind exited {t.proc.returncode}:\n{t.log_tail()}"
    evs = stream(5, 8, components=["playback"])  # 40 events
    other = stream(2, 3, components=["search"])

    async def body():
        clients = [await Ws.connect(nodes[0].ws_url, query(components="playback"))
                   for _ in range(CLIENTS)]
        snaps = [await c.expect("snapshot") for c in clients]
        held = [await in_thread(_ws_sessions, t, port) for t in nodes]
        await in_thread(kafka.produce_all, evs + other, 0.002)
        got = [await c.updates(len(evs), timeout=60) for c in clients]
        for c in clients:
            await c.quiet(0.2)
            await c.close()
        return clients, snaps, held, got

    clients, snaps, held, got = run(body(), timeout=150)
    # Both processes took connections: the kernel spread them (with 40,
    # one process taking all has odds of 2^-39).
    assert all(n > 0 for n in held), f"sessions per process: {held}"
    assert sum(held) == CLIENTS, f"sessions per process: {held} for {CLIENTS} clients"
    assert len({c.epoch for c in clients}) == 1, "one Redis, one epoch"
    for snap, ups in zip(snaps, got):
        seqs = [u["seq"] for u in ups]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "in order, once"
        assert all(s > snap["seq"] for s in seqs)
        assert pairs(u["incident"] for u in ups) == pairs(evs), "every playback update"
    assert len({tuple(u["seq"] for u in ups) for ups in got}) == 1, "the same seqs everywhere"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("first_reuses,second_reuses", [(False, False), (False, True), (True, False)],
                         ids=["plain-plain", "plain-shared", "shared-plain"])
def test_second_process_fails_on_a_port_it_cannot_share(tocsind_factory, first_reuses,
                                                        second_reuses):
    """Sharing needs both to ask. The process that cannot bind exits 1 (the
    start-up failure convention of main.c) and names the port. plain-plain
    is a regression: lws 4.1.6 on our libuv loop answered its failed bind
    with a context it was destroying, and tocsind ran on, listening nowhere."""
    port = free_port()
    first = tocsind_factory(env=_shared_env(first_reuses), port=port)
    second = tocsind_factory(env=_shared_env(second_reuses), port=port, wait_ready=False)
    assert second.wait_exit(timeout=30) == 1, second.log_tail()
    log = second.log_text()
    assert f"cannot start the HTTP server on 127.0.0.1:{port} (is the port in use" in log, \
        log[-2000:]
    assert first.alive()
    assert first.get("/readyz")[0] == 200, "the first process still serves"
