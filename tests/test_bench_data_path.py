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
    steps = per_record["decode"] + per_record["naming"] + per_record["items"]
    assert 0 < steps < per_record["whole"]
    assert 0 < per_record["json_line"] < per_record["items"]  # a part of the items
