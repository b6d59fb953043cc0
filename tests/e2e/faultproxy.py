# tocsin — SPDX-License-Identifier: MIT
#
# A TCP fault proxy for the network-fault tests (issue 7): it listens on a
# free loopback port and forwards every connection to a target (redis-server,
# a webhook receiver), and the test can delay each chunk, stall all
# forwarding, cut every connection (FIN or RST) or refuse new ones. It runs
# an asyncio loop on a thread of its own; every control call waits until the
# loop has acted on it. It does not parse what it carries.

import asyncio
import socket
import struct
import threading

CHUNK = 65536
CONTROL_TIMEOUT = 10  # a control call that takes longer means the loop is stuck


class FaultProxy:
    """proxy = FaultProxy(target_port); point the client at proxy.port."""

    def __init__(self, target_port, target_host="127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = 0  # the first listen picks a free one, later ones reuse it
        self.accepted = 0  # connections accepted since start
        self.cuts = 0  # connections closed by cut()
        self._delay = 0.0
        self._conns = {}  # serving task of each open connection → cut with RST?
        self._server = None
        self._loop = asyncio.new_event_loop()
        self._flowing = None  # asyncio.Event, made on the loop
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultproxy",
                                        daemon=True)
        self._thread.start()
        self._call(self._setup())

    @property
    def url_host_port(self):
        return f"127.0.0.1:{self.port}"

    @property
    def open(self):
        """Connections open now."""
        return self._call(self._count())

    def delay(self, ms):
        """Every chunk, in each direction, is forwarded ms later than it was
        read (a latency, not a rate limit: chunks keep their order)."""
        self._delay = ms / 1000.0

    def stall(self):
        """Stops forwarding in both directions; connections stay open, and
        new ones are accepted and connected but carry nothing."""
        self._call(self._set_flowing(False))

    def resume(self):
        self._call(self._set_flowing(True))

    def cut(self, rst=True):
        """Closes every current connection on both sides, at once, with RST
        (SO_LINGER 0) or FIN; data not yet forwarded is lost. @returns how
        many were cut."""
        return self._call(self._cut(rst))

    def refuse(self, on=True):
        """Closes the listening socket (new connections are refused) or
        opens it again on the same port; open connections are untouched."""
        self._call(self._refuse(on))

    def close(self):
        """Cuts everything, stops the loop and joins its thread."""
        if self._loop.is_closed():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT)
        self._loop.close()

    # ---- on the loop ----

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CONTROL_TIMEOUT)

    async def _setup(self):
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._refuse(False)

    async def _count(self):
        return len(self._conns)

    async def _set_flowing(self, on):
        (self._flowing.set if on else self._flowing.clear)()

    async def _refuse(self, on):
        if on and self._server is not None:
            self._server.close()  # the listener only; connections stay
            self._server = None
        elif not on and self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                      reuse_address=True)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self, rst):
        tasks = list(self._conns)
        for task in tasks:
            self._conns[task] = rst
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.cuts += len(tasks)
        return len(tasks)

    async def _shutdown(self):
        await self._refuse(True)
        await self._cut(True)

    async def _serve(self, creader, cwriter):
        task = asyncio.current_task()
        self.accepted += 1
        self._conns[task] = False
        uwriter = None
        try:
            ureader, uwriter = await asyncio.open_connection(*self.target)
            # Either direction ending (EOF or error) ends the connection.
            up = asyncio.ensure_future(self._pipe(creader, uwriter))
            down = asyncio.ensure_future(self._pipe(ureader, cwriter))
            try:
                await asyncio.wait([up, down], return_when=asyncio.FIRST_COMPLETED)
            finally:
                up.cancel()
                down.cancel()
                await asyncio.gather(up, down, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            rst = self._conns.pop(task)
            for w in (cwriter, uwriter):
                if w is not None:
                    _close(w, rst)

    async def _pipe(self, reader, writer):
        """Reads chunks and hands them, stamped with when they are due, to a
        writer task, so a delay holds each chunk without slowing the rest."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def send():
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                await self._flowing.wait()
                if not data:
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while not sender.done():
                await self._flowing.wait()
                data = await reader.read(CHUNK)
                queue.put_nowait((loop.time() + self._delay, data))
                if not data:
                    break
            await sender  # what was read still goes out, then the EOF ends it
        finally:
            sender.cancel()


def _close(writer, rst):
    if rst:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()
    else:
        writer.close()
