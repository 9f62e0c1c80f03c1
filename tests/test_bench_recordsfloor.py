"""bench/recordsfloor.py, the floor that files the gateway's records, over
real sockets: each frame ACKed with its record count once its records are
in the file, as the gateway's JSON lines; with --processes, every process
serves and files, and all stop with the first."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from teltotwist.catalogue import load_catalogue
from teltotwist.codec import AvlPacket, decode_frame, encode_login, login_reply, tcp_ack
from teltotwist.gateway.items import tracker_records
from tests.bench_servers import bench_server, connect, read_exactly
from tests.vectors import by_id

IMEI = "356307042441013"


def without_time(line: str) -> dict[str, object]:
    """A JSON line's fields but the time the server received the record."""
    fields: dict[str, object] = json.loads(line)
    del fields["received_at"]
    return fields


def test_frames_are_acked_once_their_records_are_filed_as_the_gateway_files_them(
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    one = by_id("wiki-c8-tcp-1").data  # 1 record
    two = by_id("wiki-c8-tcp-3").data  # 2 records
    login = encode_login(IMEI)

    with (
        bench_server("recordsfloor.py", after_port=[str(records)]) as (server, port),
        connect(server, port) as tracker,
    ):
        tracker.sendall(login[:5])
        time.sleep(0.05)
        tracker.sendall(login[5:] + b"\xff" + one + two[:20])
        assert read_exactly(tracker, 5) == login_reply(True) + tcp_ack(1)
        assert len(records.read_text().splitlines()) == 1
        tracker.sendall(two[20:])
        assert read_exactly(tracker, 4) == tcp_ack(2)

    naming = load_catalogue().naming(None)
    expected = []
    for frame in (one, two):
        packet = decode_frame(frame)
        assert isinstance(packet, AvlPacket)
        for item in tracker_records(IMEI, packet, 0, naming):
            expected.append(without_time(item.line.decode()))
    lines = records.read_text().splitlines()
    assert [without_time(line) for line in lines] == expected


def test_processes_share_the_port_and_stop_with_the_first(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    frame = by_id("wiki-c8-tcp-1").data

    with bench_server(
        "recordsfloor.py", "--processes", "2", after_port=[str(records)]
    ) as (server, port):
        trackers = [connect(server, port) for _ in range(16)]
        for number, tracker in enumerate(trackers):
            tracker.sendall(encode_login(str(350000000000000 + number)) + frame)
        for tracker in trackers:
            assert read_exactly(tracker, 5) == login_reply(True) + tcp_ack(1)
            tracker.close()
        task = Path(f"/proc/{server.pid}/task/{server.pid}")
        children = (task / "children").read_text().split()
        assert len(children) == 1

    files = [records.with_name(f"records.w{number}.jsonl") for number in (1, 2)]
    assert not records.exists()
    assert sum(len(path.read_text().splitlines()) for path in files) == 16
    with pytest.raises(ProcessLookupError):
        os.kill(int(children[0]), 0)
