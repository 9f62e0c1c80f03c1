"""Records/s and burst latency of one gateway with 1 and with 2 worker
processes (``--workers``), with the file sink.

For each run it starts the gateway (``python -m twisted teltonika
--workers N --sink file:...``) afresh on a free loopback port, waits for its
N workers to listen, and drives it with ``teltotwist load --codec 8E`` in a
subprocess, the scenarios of ``bench_durable.py``:

flat
    100 trackers flat out (``--flat-out``), 10-record packets, 15 s.
burst10
    1,000 trackers, a 10-record packet each a second, all at the same
    instant (``--burst``), 20 s.

Before them, the same load drives ``ackonly.py`` (beside this file: it
ACKs every frame at once and stores nothing), reported as 0 workers: the
floor under the others, what the load generator and the machine give by
themselves at the time. Runs alternate between the floor, 1 and 2 workers,
scenario by scenario, for ``--repeat`` rounds; each gateway run checks that
the records the load ACKed are the lines the workers' files hold
(``records.w1.jsonl``, ``records.w2.jsonl``). The report gives, per
scenario and worker count, the median records/s (and the range), the
median ACK latency percentiles and the errors. Exit status 0 when every
run's records check out, 1 when not, 2 on error.

Run from a checkout::

    python bench/bench_workers.py --repeat 3
    python bench/bench_workers.py --scenarios flat --flat-duration 5 --json

The load generator runs on the same machine: on a machine with few cores
it competes with the workers, so the figures say what this machine gives,
not what N cores would.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench_durable import (
    ACK_TIMEOUT,
    COLUMNS,
    Measured,
    Medians,
    Scenario,
    Server,
    ackonly_command,
    add_scenario_options,
    chosen_scenarios,
    drive,
    gateway_command,
    measured,
    medians,
    run_rounds,
)
from harness import BenchError, free_port

from teltotwist.cli.arguments import positive

WORKER_COUNTS = (0, 1, 2)
"""0: the floor, ``ackonly.py``."""
CHOSEN = ["flat", "burst10"]


@dataclass(frozen=True)
class Run(Measured):
    """One load against one fresh gateway of *workers* workers (0: the
    floor, which files nothing)."""

    workers: int


def wait_for_workers(server: Server, workers: int, deadline: float) -> None:
    """Until *workers* processes log that they listen."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(
                f"the gateway exited with {server.process.returncode}:\n"
                + server.log.read_text(errors="replace")[-2000:]
            )
        if (
            server.log.read_text(errors="replace").count(
                "Listening for trackers on tcp"
            )
            >= workers
        ):
            return
        time.sleep(0.1)
    raise BenchError(f"{workers} workers did not listen in time")


def run_once(
    scenario: Scenario, workers: int, round_: int, deadline: float, workdir: Path
) -> Run:
    port = free_port()
    name = f"{scenario.name}-{workers}-{round_}"
    records = workdir / f"{name}.jsonl"
    command = (
        gateway_command(
            ("--workers", str(workers)), port, records, ("--log-format=text",)
        )
        if workers
        else ackonly_command(port)
    )
    server = Server(command, records if workers else None, workdir / f"{name}.log")
    try:
        if workers:
            wait_for_workers(server, workers, min(deadline, time.monotonic() + 60))
        else:
            server.wait_until_listening(port, min(deadline, time.monotonic() + 60))
        load = drive(server, scenario, port, deadline)
        server.stop()
        lines = server.lines()
    finally:
        server.stop()
        server.remove_records()
    return Run(**measured(scenario, round_, lines, load), workers=workers)


def describe(run: Run) -> str:
    who = f"{run.workers} worker(s)" if run.workers else "floor"
    return run.describe(f"{who:<11}", "the floor: files nothing")


def by_workers(
    runs: Sequence[Run], scenarios: Sequence[Scenario]
) -> dict[str, dict[int, Medians]]:
    """Per scenario, per worker count."""
    return {
        scenario.name: {
            workers: medians(
                [
                    run
                    for run in runs
                    if (run.scenario, run.workers) == (scenario.name, workers)
                ]
            )
            for workers in WORKER_COUNTS
        }
        for scenario in scenarios
    }


def report(runs: Sequence[Run], scenarios: Sequence[Scenario]) -> dict[str, Any]:
    return {
        "scenarios": [asdict(scenario) for scenario in scenarios],
        "runs": [{**asdict(run), "consistent": run.consistent} for run in runs],
        "medians": {
            name: {str(workers): asdict(each) for workers, each in counts.items()}
            for name, counts in by_workers(runs, scenarios).items()
        },
    }


def table(runs: Sequence[Run], scenarios: Sequence[Scenario]) -> str:
    lines = [f"{'scenario':<9} {'workers':>7} {COLUMNS}  records"]
    for name, counts in by_workers(runs, scenarios).items():
        for workers, each in counts.items():
            check = (
                f"{each.inconsistent_runs} run(s) differ"
                if each.inconsistent_runs
                else "ok"
            )
            lines.append(f"{name:<9} {workers or 'floor':>7} {each.columns()}  {check}")
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_scenario_options(parser, CHOSEN)
    parser.add_argument(
        "--repeat", type=positive(int), default=1, metavar="N", help="rounds"
    )
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds; 0 if every run's records check out, 1 if not, 2 on
    error."""
    arguments = parse_arguments(argv)
    scenarios = chosen_scenarios(arguments)
    expected = arguments.repeat * sum(
        len(WORKER_COUNTS) * (scenario.duration + ACK_TIMEOUT + 15)
        for scenario in scenarios
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        runs = run_rounds(
            arguments.repeat,
            scenarios,
            WORKER_COUNTS,
            timeout=2 * expected,
            run_once=partial(run_once, workdir=workdir),
            describe=describe,
        )
    except (BenchError, OSError) as error:
        print(f"bench_workers: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        json.dumps(report(runs, scenarios), indent=2)
        if arguments.json
        else table(runs, scenarios)
    )
    return 0 if all(run.consistent for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
