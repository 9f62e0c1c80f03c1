"""A short run of bench/bench_hostile.py against the real gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_hostile.py"


def test_a_small_udp_flood_is_measured_while_the_tracker_gets_in() -> None:
    checkout = str(BENCH.parent.parent)
    environment = {**os.environ, "PYTHONPATH": checkout}
    arguments = ["--attacks", "a", "--duration", "2", "--settle", "0.5"]
    arguments += ["--udp-datagrams", "100", "--json"]
    finished = subprocess.run(
        [sys.executable, str(BENCH), *arguments],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )

    assert finished.returncode in (0, 1), finished.stderr
    report = json.loads(finished.stdout)
    [outcome] = report["attacks"]
    assert outcome["attack"] == "a"
    assert outcome["load"].startswith("100 datagrams")
    assert 0 < outcome["rss_before"] <= outcome["rss_peak"]
    assert outcome["rss_growth"] == outcome["rss_peak"] - outcome["rss_before"]
    assert outcome["tracker_tries"] >= 2
    assert outcome["tracker_failures"] == 0, outcome["tracker_failure_reasons"]
    assert report["targets"] == {
        "rss_growth_bytes": 50 * 1024 * 1024,
        "tracker_ack_seconds": 2.0,
    }
