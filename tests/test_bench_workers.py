"""bench/bench_workers.py end to end at a tiny scale: the floor, then the
gateway with 1 and with 2 workers, each gateway run's records checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_workers.py"


def test_both_worker_counts_are_driven_and_their_records_checked(
    tmp_path: Path,
) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": str(BENCH.parent.parent),
        "TMPDIR": str(tmp_path),
    }
    finished = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            *("--scenarios", "flat", "--flat-devices", "4", "--flat-duration", "1.5"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    floor, *gateways = report["runs"]
    assert (floor["workers"], floor["file_lines"]) == (0, None)
    assert floor["records_acked"] > 0
    assert [run["workers"] for run in gateways] == [1, 2]
    for run in gateways:
        assert run["records_acked"] == run["file_lines"] > 0
    assert set(report["medians"]["flat"]) == {"0", "1", "2"}
    assert list(tmp_path.iterdir()) == []  # its scratch files removed
