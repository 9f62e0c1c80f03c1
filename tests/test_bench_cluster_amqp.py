"""bench/bench_cluster_amqp.py end to end at a tiny scale, on the real
RabbitMQ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.services import RABBITMQ, require

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_cluster_amqp.py"


def test_the_bench_reports_each_figure() -> None:
    host, port = require("RabbitMQ", RABBITMQ)
    checkout = str(BENCH.parent.parent)
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--url",
            f"amqp://{host}:{port}/",
            "--trackers",
            "20",
            "--in-flight",
            "50",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": checkout},
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["trackers"] == 20
    for name in (
        "binds_per_s",
        "send_one_ms",
        "send_many_per_s",
        "collect_none_per_s",
        "rebind_s",
    ):
        assert figures[name] > 0, name
