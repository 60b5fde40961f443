"""The test link itself: it must limit the rate and add the round trip, or the real-link tests prove nothing.

Only lower bounds on time are checked: a loaded machine can make the link slower, never faster.
"""

from __future__ import annotations

import socket
import threading
import time

from throttle import MiB, ThrottledLink


def _sink_server():
    """A TCP server that answers each 1-byte ping with a pong, and a 'B'+size request by reading size bytes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def handle(conn):
        with conn:
            while True:
                head = conn.recv(1)
                if not head:
                    return
                if head == b"p":
                    conn.sendall(b"P")
                    continue
                size = int.from_bytes(conn.recv(8, socket.MSG_WAITALL), "big")
                got = 0
                while got < size:
                    got += len(conn.recv(min(65536, size - got)))
                conn.sendall(b"OK")

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return srv


def test_the_uplink_is_limited_and_counted():
    srv = _sink_server()
    try:
        with ThrottledLink(srv.getsockname()[1], up=2 * MiB, down=8 * MiB) as link:
            with socket.create_connection(("127.0.0.1", link.port)) as conn:
                started = time.monotonic()
                conn.sendall(b"B" + MiB.to_bytes(8, "big") + b"x" * MiB)
                assert conn.recv(2, socket.MSG_WAITALL) == b"OK"
                elapsed = time.monotonic() - started
            assert elapsed >= 0.4, f"1 MiB crossed a 2 MiB/s uplink in {elapsed:.2f} s"
            assert link.bytes_up == 1 + 8 + MiB
            assert link.bytes_down == 2
    finally:
        srv.close()


def test_two_connections_share_one_uplink():
    srv = _sink_server()
    try:
        with ThrottledLink(srv.getsockname()[1], up=2 * MiB) as link:
            def send():
                with socket.create_connection(("127.0.0.1", link.port)) as conn:
                    conn.sendall(b"B" + MiB.to_bytes(8, "big") + b"x" * MiB)
                    assert conn.recv(2, socket.MSG_WAITALL) == b"OK"
            started = time.monotonic()
            threads = [threading.Thread(target=send) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            assert elapsed >= 0.85, f"2 x 1 MiB crossed one 2 MiB/s uplink in {elapsed:.2f} s"
    finally:
        srv.close()


def test_the_round_trip_time_is_added():
    srv = _sink_server()
    try:
        with ThrottledLink(srv.getsockname()[1], rtt=0.05) as link:
            with socket.create_connection(("127.0.0.1", link.port)) as conn:
                started = time.monotonic()
                for _ in range(10):
                    conn.sendall(b"p")
                    assert conn.recv(1) == b"P"
                elapsed = time.monotonic() - started
            assert elapsed >= 0.45, f"10 round trips at 50 ms took {elapsed:.2f} s"
    finally:
        srv.close()
