"""A short run of bench/bench_data_path.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_data_path.py"


def test_the_cpu_per_record_is_reported_whole_and_by_step() -> None:
    finished = subprocess.run(
        [sys.executable, str(BENCH), "--packets", "50", "--rounds", "1", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(BENCH.parent.parent)},
        timeout=120,
        check=False,
    )

    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    per_record = result["microseconds_per_record"]
    assert set(per_record) == {
        "whole",
        "decode",
        "items",
        "naming",
        "json_line",
        "per_packet_share",
    }
    steps = sum(
        v for k, v in per_record.items() if k not in ("whole", "per_packet_share")
    )
    assert 0 < steps < per_record["whole"]
