"""bench/bench_failover.py end to end at a tiny scale, on the real RabbitMQ
and HAProxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.services import RABBITMQ, require, require_program

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_failover.py"


def test_every_tracker_of_the_killed_instance_comes_back() -> None:
    require("RabbitMQ", RABBITMQ)
    require_program("HAProxy", Path("/usr/sbin/haproxy"), "haproxy")
    checkout = str(BENCH.parent.parent)
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--devices",
            "12",
            "--duration",
            "8",
            "--kill-at",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": checkout},
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["came_back"] == report["killed_trackers"] > 0
    assert report["failover_p50_s"] <= report["failover_max_s"]
    assert report["records_filed"] >= report["records_acked"] > 0
