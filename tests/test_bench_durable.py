"""bench/bench_durable.py end to end at a tiny scale, with a second gateway
standing in for the yardstick server (the tests do not read ../shared), its
ACK-only floors and its records floor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_durable.py"
STAND_IN = """\
import os, sys
port, records = sys.argv[1:]
os.execv(sys.executable, [
    sys.executable, "-m", "twisted", "teltonika", "--api", "none",
    "--port", f"tcp:{port}:interface=127.0.0.1", "--sink", f"file:{records}",
])
"""


def run_bench(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    checkout = str(BENCH.parent.parent)
    environment = {**os.environ, "PYTHONPATH": checkout, "TMPDIR": str(scratch)}
    return subprocess.run(
        [sys.executable, str(BENCH), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_each_server_is_driven_and_its_records_checked(tmp_path: Path) -> None:
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(STAND_IN)

    finished = run_bench(
        tmp_path,
        *("--yardserver", str(stand_in), "--scenarios", "flat"),
        *("--flat-devices", "5", "--flat-duration", "1.5", "--json"),
    )

    # Two gateways are as fast as each other: the 2.5x target is not met.
    assert finished.returncode == 1, finished.stderr
    report = json.loads(finished.stdout)
    floor, twisted_floor, *servers = report["runs"]
    assert [floor["server"], twisted_floor["server"]] == ["ackonly", "ackonly-tw"]
    for run in (floor, twisted_floor):
        assert run["records_acked"] > 0
        assert run["file_lines"] is None
    assert [run["server"] for run in servers] == [
        "records-tw",
        "yardserver",
        "teltotwist",
    ]
    for run in servers:
        assert run["records_acked"] == run["file_lines"] > 0
    for run in report["runs"]:
        assert run["consistent"]
        assert run["errors"] == 0
        assert run["cpu_us_per_record"] > 0  # the server's, read from /proc
    assert report["targets"]["met"] == {
        "flat_ratio": False,
        "burst10_p99": False,
        "records_check": True,
    }
    assert 0.2 < report["ratios"]["flat"] < 5
    assert list((tmp_path / "scratch").iterdir()) == []


def test_a_missing_yardstick_server_is_a_clear_error(tmp_path: Path) -> None:
    finished = run_bench(tmp_path, "--yardserver", str(tmp_path / "missing.py"))

    assert finished.returncode == 2
    assert f"no yardstick server at {tmp_path / 'missing.py'}" in finished.stderr


def test_workers_have_the_records_of_every_worker_checked(
    tmp_path: Path,
) -> None:
    stand_in = tmp_path / "stand_in.py"
    stand_in.write_text(STAND_IN)

    finished = run_bench(
        tmp_path,
        *("--yardserver", str(stand_in), "--scenarios", "flat"),
        *("--flat-devices", "8", "--flat-duration", "1.5", "--json"),
        *("--workers", "2"),
    )

    report = json.loads(finished.stdout)
    records_floor, gateway = report["runs"][2], report["runs"][-1]
    assert [records_floor["server"], gateway["server"]] == ["records-tw", "teltotwist"]
    for run in (records_floor, gateway):
        assert run["records_acked"] == run["file_lines"] > 0
    # The workers' CPU counts: the parent alone spends next to none a record.
    assert gateway["cpu_us_per_record"] > 3
    assert report["targets"]["met"]["records_check"] is True


def test_workers_are_not_a_gateway_option(tmp_path: Path) -> None:
    finished = run_bench(tmp_path, "--gateway-option=--workers=2")

    assert finished.returncode == 2
    assert "give the gateway's workers with --workers N" in finished.stderr
