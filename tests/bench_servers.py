"""The benchmarks' own servers (``bench/*.py``) as processes on a free
loopback port, and blocking tracker connections to them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.services import free_port

BENCH = Path(__file__).resolve().parent.parent / "bench"


@contextmanager
def bench_server(
    script: str, *options: str, after_port: Sequence[str] = ()
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``bench/SCRIPT OPTIONS PORT AFTER_PORT`` on a free port: the process
    and the port; terminated on the way out."""
    port = free_port()
    command = [sys.executable, str(BENCH / script), *options, str(port), *after_port]
    process = subprocess.Popen(command)
    try:
        yield process, port
    finally:
        process.terminate()
        process.wait(10)


def connect(server: subprocess.Popen[bytes], port: int) -> socket.socket:
    """A connection to *server* on *port* once it listens (at most 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            connection = socket.create_connection(("127.0.0.1", port), 1)
        except OSError:
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server does not listen"
            time.sleep(0.05)
        else:
            connection.settimeout(5)
            return connection


def read_exactly(connection: socket.socket, size: int) -> bytes:
    """The next *size* bytes from *connection*; fails if it closes first."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data
