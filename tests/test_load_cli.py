"""``teltotwist load`` as a user runs it: a subprocess against ``twistd``."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.task import Clock

from teltotwist.load import Fleet, LoadPlan
from teltotwist.load.progress import Progress
from tests.conftest import Twistd

LOAD = [sys.executable, "-m", "teltotwist", "load"]


@pytest.mark.parametrize("processes", ["1", "2"])
def test_the_records_acked_are_the_records_twistd_stored(
    twistd: Twistd, tmp_path: Path, processes: str
) -> None:
    finished = subprocess.run(
        [
            *LOAD,
            "--server",
            f"tcp:127.0.0.1:{twistd.port}",
            "--devices",
            "20",
            "--duration",
            "3",
            "--interval",
            "0.5",
            "--processes",
            processes,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    twistd.process.terminate()
    twistd.process.communicate(timeout=30)
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert summary["records_acked"] == len(lines) > 0
    assert summary["records_acked"] == 10 * summary["packets_acked"]
    assert summary["devices"] == 20
    assert len({json.loads(line)["imei"] for line in lines}) == 20
    assert summary["errors"] == {}
    assert summary["unacked"] == summary["resends"] == 0
    latency = summary["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert 3 <= summary["duration"] < 5


def bursts(lines: list[str], gap: float) -> list[list[tuple[float, str]]]:
    """The packets the gateway filed, as (time received, IMEI), in groups
    separated by more than *gap* seconds."""
    packets = set()
    for line in lines:
        record = json.loads(line)
        received = datetime.fromisoformat(record["received_at"]).timestamp()
        packets.add((received, record["imei"]))
    groups: list[list[tuple[float, str]]] = []
    for packet in sorted(packets):
        if not groups or packet[0] - groups[-1][-1][0] > gap:
            groups.append([])
        groups[-1].append(packet)
    return groups


@pytest.mark.parametrize("processes", ["1", "2"])
def test_in_bursts_every_tracker_reaches_the_gateway_at_once(
    twistd: Twistd, tmp_path: Path, processes: str
) -> None:
    # Started over one interval, the trackers would send spread over it;
    # in bursts they send at 2 s and 3 s after the first start.
    finished = subprocess.run(
        [
            *LOAD,
            "--server",
            f"tcp:127.0.0.1:{twistd.port}",
            "--devices",
            "20",
            "--ramp-up",
            "1",
            "--duration",
            "3.5",
            "--burst",
            "--processes",
            processes,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    twistd.process.terminate()
    twistd.process.communicate(timeout=30)
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert summary["records_acked"] == len(lines) == 2 * 20 * 10
    groups = bursts(lines, gap=0.5)
    assert [len({imei for _, imei in group}) for group in groups] == [20, 20]
    for group in groups:
        assert group[-1][0] - group[0][0] < 0.25


def test_without_a_server_it_counts_the_failures_and_exits_1() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = f"tcp:127.0.0.1:{port}"
    finished = subprocess.run(
        [*LOAD, "--server", server, "--devices", "3", "--duration", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert finished.returncode == 1
    assert "records ACKed    0\n" in finished.stdout
    assert "errors           6 (connect failed 6)\n" in finished.stdout
    assert "reconnects       6\n" in finished.stdout


def test_without_a_terminal_progress_is_a_line_every_5_seconds() -> None:
    clock = Clock()
    endpoint = TCP4ClientEndpoint(clock, "127.0.0.1", 1)
    fleet = Fleet(LoadPlan(devices=3, duration=60), endpoint, clock)
    stream = io.StringIO()
    progress = Progress(fleet.snapshot, clock, stream)
    progress.start()
    clock.advance(4)
    fleet.summary.records_acked = 500
    clock.advance(1)

    assert stream.getvalue() == (
        "    5 s  connected 0/3  ACKed 500 records  100 records/s  "
        "reconnects 0  errors 0\n"
    )
