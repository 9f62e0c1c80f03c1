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
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_durable import (
    ACK_TIMEOUT,
    HOST,
    SCENARIOS,
    SPARE_DESCRIPTORS,
    Scenario,
    Server,
    ackonly_command,
    free_port,
    run_load,
)
from harness import BenchError, ensure_descriptors, global_timeout

WORKER_COUNTS = (0, 1, 2)
"""0: the floor, ``ackonly.py``."""
CHOSEN = ("flat", "burst10")


@dataclass(frozen=True)
class Run:
    """One load against one fresh gateway."""

    scenario: str
    workers: int
    round: int
    records_acked: int
    file_lines: int | None
    """None: the floor files nothing."""
    records_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    @property
    def consistent(self) -> bool:
        return self.file_lines is None or self.records_acked == self.file_lines


def gateway_command(workers: int, port: int, records: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "twisted",
        "--log-format=text",
        "teltonika",
        "--port",
        f"tcp:{port}:interface={HOST}",
        "--sink",
        f"file:{records}",
        "--api",
        "none",
        "--workers",
        str(workers),
    ]


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
    scenario: Scenario, workers: int, round_: int, workdir: Path, deadline: float
) -> Run:
    port = free_port()
    name = f"{scenario.name}-{workers}-{round_}"
    records = workdir / f"{name}.jsonl"
    command = (
        gateway_command(workers, port, records) if workers else ackonly_command(port)
    )
    server = Server(command, records if workers else None, workdir / f"{name}.log")
    try:
        if workers:
            wait_for_workers(server, workers, min(deadline, time.monotonic() + 60))
        else:
            server.wait_until_listening(port, min(deadline, time.monotonic() + 60))
        summary = run_load(scenario, port, deadline)
        server.stop()
        lines = server.lines()
    finally:
        server.stop()
        server.remove_records()
    latency = summary["latency_ms"]
    return Run(
        scenario=scenario.name,
        workers=workers,
        round=round_,
        records_acked=summary["records_acked"],
        file_lines=lines,
        records_per_second=summary["records_per_second"],
        p50_ms=latency["p50"],
        p99_ms=latency["p99"],
        max_ms=latency["max"],
        errors=sum(summary["errors"].values()),
    )


def describe(run: Run) -> str:
    if run.file_lines is None:
        check = "the floor: files nothing"
    elif run.consistent:
        check = "records ok"
    else:
        check = f"{run.file_lines:,} lines filed"
    return (
        f"round {run.round} {run.scenario:<8} "
        f"{f'{run.workers} worker(s)' if run.workers else 'floor':<11} "
        f"{run.records_per_second:>9,.0f} records/s  p50 {run.p50_ms:,.1f} ms  "
        f"p99 {run.p99_ms:,.1f} ms  errors {run.errors}  {check}"
    )


def summed_up(runs: Sequence[Run]) -> dict[str, Any]:
    rates = [run.records_per_second for run in runs]
    return {
        "runs": len(runs),
        "records_per_second": statistics.median(rates),
        "records_per_second_min": min(rates),
        "records_per_second_max": max(rates),
        "p50_ms": statistics.median(run.p50_ms for run in runs),
        "p99_ms": statistics.median(run.p99_ms for run in runs),
        "max_ms": statistics.median(run.max_ms for run in runs),
        "errors": sum(run.errors for run in runs),
        "inconsistent_runs": sum(not run.consistent for run in runs),
    }


def report(runs: Sequence[Run], scenarios: Sequence[Scenario]) -> dict[str, Any]:
    return {
        "scenarios": [asdict(scenario) for scenario in scenarios],
        "runs": [{**asdict(run), "consistent": run.consistent} for run in runs],
        "medians": {
            scenario.name: {
                str(workers): summed_up(
                    [
                        run
                        for run in runs
                        if (run.scenario, run.workers) == (scenario.name, workers)
                    ]
                )
                for workers in WORKER_COUNTS
            }
            for scenario in scenarios
        },
    }


def table(figures: dict[str, Any]) -> str:
    lines = [
        f"{'scenario':<9} {'workers':>7} {'records/s':>10} {'range':>17} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}  records"
    ]
    for name, by_workers in figures["medians"].items():
        for workers, each in by_workers.items():
            low, high = each["records_per_second_min"], each["records_per_second_max"]
            check = (
                f"{each['inconsistent_runs']} run(s) differ"
                if each["inconsistent_runs"]
                else "ok"
            )
            lines.append(
                f"{name:<9} {'floor' if workers == '0' else workers:>7} "
                f"{each['records_per_second']:>10,.0f} "
                f"{f'({low:,.0f}-{high:,.0f})':>17} {each['p50_ms']:>8,.1f} "
                f"{each['p99_ms']:>8,.1f} {each['max_ms']:>8,.1f} "
                f"{each['errors']:>6}  {check}"
            )
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--scenarios",
        default=",".join(CHOSEN),
        help=f"comma-separated, of {','.join(CHOSEN)} (default: both)",
    )
    for name in CHOSEN:
        parser.add_argument(f"--{name}-devices", type=int, metavar="N")
        parser.add_argument(f"--{name}-duration", type=float, metavar="SECONDS")
    parser.add_argument("--repeat", type=int, default=1, metavar="N", help="rounds")
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    arguments = parser.parse_args(argv)
    names = [name for name in arguments.scenarios.split(",") if name]
    if not names or set(names) - set(CHOSEN):
        parser.error(f"scenarios are some of {','.join(CHOSEN)}")
    arguments.chosen = [
        Scenario(
            name,
            getattr(arguments, f"{name}_devices") or SCENARIOS[name].devices,
            getattr(arguments, f"{name}_duration") or SCENARIOS[name].duration,
            SCENARIOS[name].pace,
        )
        for name in names
    ]
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds; 0 if every run's records check out, 1 if not, 2 on
    error."""
    arguments = parse_arguments(argv)
    scenarios: list[Scenario] = arguments.chosen
    expected = arguments.repeat * sum(
        len(WORKER_COUNTS) * (scenario.duration + ACK_TIMEOUT + 15)
        for scenario in scenarios
    )
    runs: list[Run] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    try:
        ensure_descriptors(
            SPARE_DESCRIPTORS + max(scenario.devices for scenario in scenarios)
        )
        with global_timeout(2 * expected, grace=60) as deadline:
            for round_ in range(1, arguments.repeat + 1):
                for scenario in scenarios:
                    for workers in WORKER_COUNTS:
                        run = run_once(scenario, workers, round_, workdir, deadline)
                        print(describe(run), file=sys.stderr, flush=True)
                        runs.append(run)
    except (BenchError, OSError) as error:
        print(f"bench_workers: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = report(runs, scenarios)
    print(json.dumps(figures, indent=2) if arguments.json else table(figures))
    return 0 if all(run.consistent for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
