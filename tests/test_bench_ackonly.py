"""bench/ackonly.py, the benchmarks' floor, over a real socket, on asyncio and
on Twisted: it accepts the login and ACKs each frame with its record count,
however the bytes are cut."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from teltotwist.codec import encode_login, login_reply, tcp_ack
from tests.bench_servers import bench_server, connect, read_exactly
from tests.vectors import by_id


@pytest.fixture(params=[[], ["--twisted"]], ids=["asyncio", "twisted"])
def tracker(request: pytest.FixtureRequest) -> Iterator[socket.socket]:
    """A connection to a fresh ackonly.py, on each event loop."""
    with (
        bench_server("ackonly.py", *request.param) as (server, port),
        connect(server, port) as connection,
    ):
        yield connection


def test_frames_are_acked_with_their_record_counts(tracker: socket.socket) -> None:
    one = by_id("wiki-c8-tcp-1").data  # 1 record
    two = by_id("wiki-c8-tcp-3").data  # 2 records
    login = encode_login("356307042441013")

    tracker.sendall(login[:5])
    time.sleep(0.05)
    tracker.sendall(login[5:] + b"\xff" + one + two[:20])
    assert read_exactly(tracker, 5) == login_reply(True) + tcp_ack(1)
    time.sleep(0.05)
    tracker.sendall(two[20:] + b"\xff" + one)

    assert read_exactly(tracker, 8) == tcp_ack(2) + tcp_ack(1)
