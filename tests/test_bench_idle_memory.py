"""A short run of bench/bench_idle_memory.py against the real gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_idle_memory.py"


def test_trackers_held_by_several_workers_are_measured_and_a_probe_is_acked() -> None:
    checkout = str(BENCH.parent.parent)
    environment = {**os.environ, "PYTHONPATH": checkout}
    arguments = ["--connections", "300", "--per-worker", "120", "--checkpoints", "100"]
    arguments += ["--settle", "0.2", "--probe-packets", "3", "--probe-interval", "0"]
    finished = subprocess.run(
        [sys.executable, str(BENCH), *arguments, "--json"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )

    assert finished.returncode in (0, 1), finished.stderr
    report = json.loads(finished.stdout)
    assert (report["connections"], report["workers"]) == (300, 3)
    assert [sample["connections"] for sample in report["samples"]] == [100, 300]
    assert len(report["ack_latencies"]) == 3
    assert report["targets"] == {"bytes_per_tracker": 4096, "ack_seconds": 0.01}
    assert "300 connected and logged in" in finished.stderr
