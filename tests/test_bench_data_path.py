"""A short run of bench/bench_data_path.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert result["items_made_in"] == "Python"  # the checkout is not compiled
    assert result["records_decoded_in"] == "Python"
    per_record = result["microseconds_per_record"]
    assert set(per_record) == {
        "whole",
        "decode",
        "items",
        "naming",
        "json_line",
        "per_packet_share",
    }
    assert all(
        value > 0 for key, value in per_record.items() if key != "per_packet_share"
    )
    # What the whole costs beyond decoding and the items (naming and the JSON
    # lines are parts of the items): the timings of a short run are noisy,
    # so only how the share is made is checked.
    steps = per_record["decode"] + per_record["items"]
    assert per_record["per_packet_share"] == pytest.approx(per_record["whole"] - steps)
