"""A residential link in front of a local server: a TCP proxy on 127.0.0.1 with one token bucket per direction.

Every connection through the proxy shares the same two buckets, as every upload of a home computer shares its
one uplink: two parallel uploads get half the rate each, and a small request waits behind a large one unless
the client itself lets it pass (that is what the tests look at). Each direction can also hold every chunk for
a fixed one-way delay, which gives the link a round-trip time without lowering its throughput. Bytes are
counted per direction.

"Up" is client -> server (what a node uploads), "down" is server -> client.

    with ThrottledLink(target_port, up=2 * MiB, down=8 * MiB, rtt=0.06) as link:
        endpoint = link.url        # http://127.0.0.1:PORT
        ...
        link.bytes_up              # what crossed the uplink so far
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

MiB = 1024 * 1024
CHUNK = 16 * 1024  # the bucket's granularity: a small request is never stuck behind one huge write


class TokenBucket:
    """`rate` bytes per second with a burst of a few chunks; None is an unlimited link."""

    def __init__(self, rate: float | None, burst: int = 4 * CHUNK):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.lock = asyncio.Lock()  # FIFO: connections take turns, as packets of one uplink do

    async def take(self, n: int) -> None:
        if self.rate is None:
            return
        async with self.lock:
            if self.rate is None:  # unthrottled while this one waited for its turn
                return
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens < n:
                await asyncio.sleep((n - self.tokens) / self.rate)
                self.last = time.monotonic()
                self.tokens = 0.0
            else:
                self.tokens -= n


# The link's own buffering, as a home link's: an Ethernet-sized segment, and a receive buffer of a few hundred ms
# at these rates. Loopback's defaults (64 KiB segments, buffers autotuned to several MB) let a client hand the
# link ~8 MB that it then still delivered after the client had stopped the transfer: a stopped upload of a
# 8 MiB file cost its whole size, which no real uplink buffers.
SEGMENT = 1448
RECEIVE_BUFFER = 64 * 1024  # the kernel doubles it


def edge_socket(*, listen: bool = True) -> socket.socket:
    """A TCP socket on 127.0.0.1 with the link's segment and buffer (a listener's connections inherit them)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SEGMENT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    if listen:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
    return sock


class ThrottledLink:
    def __init__(self, target_port: int, *, up: float | None = None, down: float | None = None,
                 rtt: float = 0.0, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.rates = (up, down)
        self.one_way = rtt / 2
        self.bytes_up = 0
        self.bytes_down = 0
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def unthrottle(self) -> None:
        """From now on, bytes cross at loopback speed (the round trip stays): once a test has acted while a
        transfer was slow, the rest need not take the link's time."""
        self._up.rate = self._down.rate = None

    # -- lifetime ---------------------------------------------------------------------------------------

    def start(self) -> ThrottledLink:
        self._thread = threading.Thread(target=self._run, name="throttled-link", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the throttled link did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ThrottledLink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        self._up = TokenBucket(self.rates[0])
        self._down = TokenBucket(self.rates[1])
        server = await asyncio.start_server(self._serve, sock=edge_socket())
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopped.wait()
        server.close()
        # Connections still open (a client that keeps its connection alive) end with the link.
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the pipes --------------------------------------------------------------------------------------

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            sock = edge_socket(listen=False)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, self.target)
            server_r, server_w = await asyncio.open_connection(sock=sock)
        except OSError:
            client_w.close()
            return
        pipes = [asyncio.ensure_future(self._pipe(client_r, server_w, self._up, "up")),
                 asyncio.ensure_future(self._pipe(server_r, client_w, self._down, "down"))]
        try:
            await asyncio.wait(pipes)
        except asyncio.CancelledError:
            pass  # the link stops with this connection still open: it ends here (asyncio would log a cancel)
        for pipe in pipes:
            pipe.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _pipe(self, reader, writer, bucket: TokenBucket, direction: str) -> None:
        """Read, pay the bucket, then deliver after the one-way delay, in order (a queue keeps the throughput)."""
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if chunk is None:
                    break
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        cancelled = False
        try:
            while True:
                chunk = await reader.read(CHUNK)
                if not chunk:
                    break
                await bucket.take(len(chunk))
                if direction == "up":
                    self.bytes_up += len(chunk)
                else:
                    self.bytes_down += len(chunk)
                await queue.put((time.monotonic() + self.one_way, chunk))
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            cancelled = True
        if cancelled:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        else:
            await queue.put((0.0, None))
            try:
                await sender
                writer.write_eof() if writer.can_write_eof() else None
            except (ConnectionError, OSError):
                pass
        writer.close()
