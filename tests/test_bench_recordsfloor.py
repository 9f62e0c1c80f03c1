"""bench/recordsfloor.py, the floor that files the gateway's records, over
real sockets: each frame ACKed with its record count once its records are
in the file, as the gateway's JSON lines; with --processes, every process
serves and files, and all stop with the first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from teltotwist.catalogue import load_catalogue
from teltotwist.codec import AvlPacket, decode_frame, encode_login, login_reply, tcp_ack
from teltotwist.gateway.items import tracker_records
from tests.vectors import by_id

SERVER = Path(__file__).resolve().parent.parent / "bench" / "recordsfloor.py"
IMEI = "356307042441013"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def connect(port: int, server: subprocess.Popen[bytes]) -> socket.socket:
    deadline = time.monotonic() + 15
    while True:
        try:
            connection = socket.create_connection(("127.0.0.1", port), 1)
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        else:
            connection.settimeout(5)
            return connection


def start(port: int, records: Path, *options: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(SERVER), *options, str(port), str(records)]
    )


@pytest.fixture
def records(tmp_path: Path) -> Path:
    return tmp_path / "records.jsonl"


@pytest.fixture
def server(records: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    process = start(port, records)
    try:
        yield process, port
    finally:
        process.terminate()
        process.wait(10)


def read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data


def without_time(line: str) -> dict[str, object]:
    """A JSON line's fields but the time the server received the record."""
    fields: dict[str, object] = json.loads(line)
    del fields["received_at"]
    return fields


def test_frames_are_acked_once_their_records_are_filed_as_the_gateway_files_them(
    server: tuple[subprocess.Popen[bytes], int], records: Path
) -> None:
    process, port = server
    one = by_id("wiki-c8-tcp-1").data  # 1 record
    two = by_id("wiki-c8-tcp-3").data  # 2 records
    login = encode_login(IMEI)

    with connect(port, process) as tracker:
        tracker.sendall(login[:5])
        time.sleep(0.05)
        tracker.sendall(login[5:] + b"\xff" + one + two[:20])
        assert read(tracker, 5) == login_reply(True) + tcp_ack(1)
        assert len(records.read_text().splitlines()) == 1
        tracker.sendall(two[20:])
        assert read(tracker, 4) == tcp_ack(2)

    naming = load_catalogue().naming(None)
    expected = []
    for frame in (one, two):
        packet = decode_frame(frame)
        assert isinstance(packet, AvlPacket)
        for item in tracker_records(IMEI, packet, 0, naming):
            expected.append(without_time(item.line.decode()))
    lines = records.read_text().splitlines()
    assert [without_time(line) for line in lines] == expected


def test_processes_share_the_port_and_stop_with_the_first(records: Path) -> None:
    port = free_port()
    process = start(port, records, "--processes", "2")
    try:
        frame = by_id("wiki-c8-tcp-1").data
        trackers = [connect(port, process) for _ in range(16)]
        for number, tracker in enumerate(trackers):
            tracker.sendall(encode_login(str(350000000000000 + number)) + frame)
        for tracker in trackers:
            assert read(tracker, 5) == login_reply(True) + tcp_ack(1)
            tracker.close()
        children = (
            Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        )
        assert len(children) == 1
    finally:
        process.terminate()
        process.wait(10)

    files = [records.with_name(f"records.w{number}.jsonl") for number in (1, 2)]
    assert not records.exists()
    assert sum(len(path.read_text().splitlines()) for path in files) == 16
    with pytest.raises(ProcessLookupError):
        os.kill(int(children[0]), 0)
