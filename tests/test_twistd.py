"""The real ``twistd -n teltonika`` in a subprocess, fed real frames."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

from teltotwist.codec import tcp_ack
from tests.conftest import TWISTD, Twistd
from tests.net import receive_exactly
from tests.vectors import by_id

FRAMES = [
    by_id("wiki-c8-tcp-1").data,
    by_id("traccar-26-avl").data,
    by_id("wiki-c8e-tcp-2018-vin").data,
    by_id("traccar-08-avl").data,
]
RECORDS = [1, 14, 1, 4]
IMEI = "356307042441013"


def exchange(connection: socket.socket, data: bytes, reply_size: int) -> bytes:
    connection.sendall(data)
    return receive_exactly(connection, reply_size)


def test_twistd_says_where_it_listens_and_which_sinks_are_on(
    twistd: Twistd, tmp_path: Path
) -> None:
    assert twistd.process.stdout is not None
    line = twistd.process.stdout.readline()  # the one after "starting on PORT"

    assert line.endswith(
        f"Listening for trackers on tcp:127.0.0.1:{twistd.port}; "
        f"sinks: file:{tmp_path / 'records.jsonl'}\n"
    )


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


def test_an_occupied_port_is_one_clear_line_and_exit_status_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                str(TWISTD),
                "--nodaemon",
                "--pidfile=",
                "teltonika",
                "--port",
                f"tcp:{port}:interface=127.0.0.1",
                "--sink",
                f"file:{tmp_path / 'records.jsonl'}",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert (
        f"cannot listen on tcp:{port}:interface=127.0.0.1: address already in use\n"
    ) in output
    assert "Traceback" not in output
