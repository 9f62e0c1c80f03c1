"""Short runs of bench/bench_gc_pauses.py against the real gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_gc_pauses.py"


def bench(*arguments: str) -> Any:
    checkout = str(BENCH.parent.parent)
    finished = subprocess.run(
        [sys.executable, str(BENCH), *arguments, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": checkout},
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


def test_the_collections_under_load_are_timed_beside_the_ack_latency() -> None:
    [run] = bench("--devices", "10", "--duration", "2")

    assert run["load"]["records_acked"] == run["stored"] > 0
    assert set(run["gc"]["generations"]) == {"0", "1", "2"}


def test_idle_trackers_are_counted_in_the_objects_a_full_collection_walks() -> None:
    run = bench("--idle-trackers", "100")

    assert run["trackers"] == 100
    assert run["after"]["tracked"] >= run["before"]["tracked"] + 100
    assert run["after"]["full_collection_cpu_ms"] > 0
