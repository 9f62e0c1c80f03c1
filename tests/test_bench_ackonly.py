"""bench/ackonly.py, the benchmarks' floor, over a real socket, on asyncio and
on Twisted: it accepts the login and ACKs each frame with its record count,
however the bytes are cut."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from teltotwist.codec import encode_login, login_reply, tcp_ack
from tests.vectors import by_id

SERVER = Path(__file__).resolve().parent.parent / "bench" / "ackonly.py"


@pytest.fixture(params=[[], ["--twisted"]], ids=["asyncio", "twisted"])
def tracker(request: pytest.FixtureRequest) -> Iterator[socket.socket]:
    """A connection to a fresh ackonly.py, on each event loop."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(SERVER), *request.param, str(port)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                connection = socket.create_connection(("127.0.0.1", port), 1)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        connection.settimeout(5)
        with connection:
            yield connection
    finally:
        server.terminate()
        server.wait(10)


def read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data


def test_frames_are_acked_with_their_record_counts(tracker: socket.socket) -> None:
    one = by_id("wiki-c8-tcp-1").data  # 1 record
    two = by_id("wiki-c8-tcp-3").data  # 2 records
    login = encode_login("356307042441013")

    tracker.sendall(login[:5])
    time.sleep(0.05)
    tracker.sendall(login[5:] + b"\xff" + one + two[:20])
    assert read(tracker, 5) == login_reply(True) + tcp_ack(1)
    time.sleep(0.05)
    tracker.sendall(two[20:] + b"\xff" + one)

    assert read(tracker, 8) == tcp_ack(2) + tcp_ack(1)
