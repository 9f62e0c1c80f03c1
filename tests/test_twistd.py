"""The real ``twistd -n teltonika`` in a subprocess, fed real frames."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from teltotwist.codec import tcp_ack
from tests.vectors import by_id

TWISTD = Path(sys.executable).with_name("twistd")
FRAMES = [
    by_id("wiki-c8-tcp-1").data,
    by_id("traccar-26-avl").data,
    by_id("wiki-c8e-tcp-2018-vin").data,
    by_id("traccar-08-avl").data,
]
RECORDS = [1, 14, 1, 4]
IMEI = "356307042441013"


class Twistd:
    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.log: list[str] = []


@pytest.fixture
def twistd(tmp_path: Path) -> Iterator[Twistd]:
    records = tmp_path / "records.jsonl"
    process = subprocess.Popen(
        [
            str(TWISTD),
            "--nodaemon",
            "--pidfile=",
            "teltonika",
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--sink",
            f"file:{records}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    log = []
    deadline = time.monotonic() + 30
    port = None
    while port is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.append(line)
        found = re.search(r"TeltonikaFactory starting on (\d+)", line)
        port = int(found.group(1)) if found else None
    if port is None:
        process.kill()
        pytest.fail("twistd did not start listening:\n" + "".join(log))
    running = Twistd(process, port)
    running.log = log
    yield running
    if process.poll() is None:
        process.kill()
        process.wait()


def exchange(connection: socket.socket, data: bytes, reply_size: int) -> bytes:
    connection.sendall(data)
    reply = b""
    while len(reply) < reply_size:
        chunk = connection.recv(reply_size - len(reply))
        if not chunk:
            break
        reply += chunk
    return reply


def test_twistd_acks_real_frames_and_files_their_records(
    twistd: Twistd, tmp_path: Path
) -> None:
    with socket.create_connection(("127.0.0.1", twistd.port), timeout=10) as tracker:
        assert exchange(tracker, b"\x00\x0f" + IMEI.encode(), 1) == b"\x01"
        for frame, count in zip(FRAMES, RECORDS, strict=True):
            assert exchange(tracker, frame, 4) == tcp_ack(count)

    twistd.process.send_signal(signal.SIGTERM)
    output, _ = twistd.process.communicate(timeout=30)

    # twistd shuts down cleanly, then re-raises the signal that stopped it.
    assert twistd.process.returncode == -signal.SIGTERM, "".join(twistd.log) + output
    assert "Server Shut Down." in output
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == sum(RECORDS)
    assert {record["imei"] for record in records} == {IMEI}
    assert [record["codec"] for record in records[:16]] == ["8"] * 15 + ["8E"]
    assert records[15]["io"]["256"] == "00" * 17
    assert all(record["generation_type"] == 7 for record in records[16:])
    assert len({record["id"] for record in records}) == len(records)
