"""Durable throughput against the yardstick server, in one run.

It starts, each on a free loopback port and afresh for every run, the
yardstick server (``../shared/bench/yardserver.py``: plain asyncio, records
appended to a JSON Lines file with an fsync per packet, then the ACK) and
the gateway (``python -m twisted teltonika`` with ``--sink file:``), and
drives each in turn with ``teltotwist load --codec 8E`` in a subprocess:
stop-and-wait trackers sending FMB920 IO, 1,065 bytes a 10-record packet.
Before them, the same load drives ``ackonly.py`` (beside this file: asyncio
that ACKs every frame at once and stores nothing): its figures are the
floor under the others', what the load generator and the loopback
connections take by themselves. Then it drives the same server on Twisted's
reactor (``ackonly.py --twisted``, the ``ackonly-tw`` rows): the floor of
any Twisted server, the gateway included; and ``recordsfloor.py`` (the
``records-tw`` rows), a Twisted server that files the gateway's own records
and nothing else: what the records cost before the gateway's plumbing.
``--workers N`` runs the gateway with ``--workers N`` and the records floor
in as many processes. The scenarios:

flat
    100 trackers flat out: each sends its next packet as soon as the
    previous one is ACKed (``--flat-out``); 10-record packets; 15 s.
burst10
    1,000 trackers, a 10-record packet each a second, all at the same
    instant (``--burst``); 20 s.
burst1
    The same with 1-record packets.

Runs alternate between the five servers, scenario by scenario, for
``--repeat`` rounds. Each run of the three servers that file checks that the
records the load ACKed are the lines the server's file holds. The report
gives, per scenario and server, the median records/s ACKed (and the
range), the median ACK latency percentiles, the server's CPU time per
record ACKed (user and system, its worker processes' included, read from
``/proc`` before and after the load) and the errors, and the ratio
teltotwist / yardstick of the median records/s; the ``ackonly`` and
``records-tw`` rows are the floors. Targets (issue 11): flat at least 2.5x
the yardstick's records/s; burst10 p99 under 50 ms for teltotwist; every
run's records check out. Exit status 0 when all are met, 1 when not (a
target whose scenario did not run is not met), 2 on error.

Run from a checkout::

    python bench/bench_durable.py                  # one round, all scenarios
    python bench/bench_durable.py --repeat 3 --json
    python bench/bench_durable.py --scenarios burst10 --repeat 3 --workers 2
    python bench/bench_durable.py --scenarios flat --flat-duration 5 \\
        --profile /tmp/profiles                    # py-spy on the gateway

Every process it starts is ended on the way out, error or not, and its
temporary files are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from itertools import product
from pathlib import Path
from typing import Any, TypeVar

from harness import (
    BenchError,
    child_environment,
    child_setup,
    ensure_descriptors,
    free_port,
    global_timeout,
    start_logged,
    terminate,
    tree_cpu_seconds,
    worker_file,
)

from teltotwist.cli.arguments import positive

HOST = "127.0.0.1"
CHECKOUT = Path(__file__).resolve().parent.parent
DEFAULT_YARDSERVER = CHECKOUT.parent / "shared" / "bench" / "yardserver.py"
ACKONLY = Path(__file__).resolve().parent / "ackonly.py"
RECORDSFLOOR = Path(__file__).resolve().parent / "recordsfloor.py"
FLOOR = "ackonly"
"""The server that ACKs and stores nothing: the load generator's floor."""
TWISTED_FLOOR = "ackonly-tw"
"""The same server on Twisted's reactor: the floor of a Twisted server."""
FLOORS = {FLOOR: (), TWISTED_FLOOR: ("--twisted",)}
"""Each floor server and its ``ackonly.py`` options."""
RECORDS_FLOOR = "records-tw"
"""The Twisted server that files the gateway's records and does nothing else."""
SERVERS = (FLOOR, TWISTED_FLOOR, RECORDS_FLOOR, "yardserver", "teltotwist")
"""In the order of each scenario's runs."""
RATIO_TARGET = 2.5
"""flat: teltotwist's records/s over the yardstick's, at least."""
P99_TARGET_MS = 50.0
"""burst10: teltotwist's ACK latency p99 below this."""
ACK_TIMEOUT = 10.0
"""The load's --ack-timeout: also its longest wait for the last ACKs."""
SPARE_DESCRIPTORS = 256
PROFILE_SUFFIXES = {"speedscope": "speedscope.json", "raw": "txt"}
"""py-spy's output formats, and the file name suffix of each."""


@dataclass(frozen=True)
class Scenario:
    """A load: how many trackers, for how long, paced how."""

    name: str
    devices: int
    duration: float
    pace: tuple[str, ...]
    """``teltotwist load`` options besides the server, trackers, duration."""


SCENARIOS = {
    scenario.name: scenario
    for scenario in [
        Scenario("flat", 100, 15.0, ("--flat-out", "--records-per-packet", "10")),
        Scenario(
            "burst10",
            1000,
            20.0,
            ("--burst", "--interval", "1", "--records-per-packet", "10"),
        ),
        Scenario(
            "burst1",
            1000,
            20.0,
            ("--burst", "--interval", "1", "--records-per-packet", "1"),
        ),
    ]
}


# Processes ---------------------------------------------------------------------


class Server:
    """One server process, listening on a free port, filing records in
    *records* (one JSON line each; None: it files none)."""

    def __init__(self, command: Sequence[str], records: Path | None, log: Path) -> None:
        self.records = records
        self.log = log
        self.process = start_logged(command, log)

    def wait_until_listening(self, port: int, deadline: float) -> None:
        """Connect until the port answers; fail if the server exits."""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"the server exited with {self.process.returncode} before "
                    f"listening:\n{self.log.read_text(errors='replace')[-2000:]}"
                )
            try:
                socket.create_connection((HOST, port), timeout=1).close()
            except OSError:
                time.sleep(0.1)
            else:
                return
        raise BenchError(f"the server did not listen on port {port} in time")

    def stop(self) -> None:
        """SIGTERM (the gateway drains and closes its sinks), then SIGKILL."""
        terminate(self.process, grace=15)

    def lines(self) -> int | None:
        """The lines of its records file, or of its workers' files (with
        ``--workers``); None if it files no records."""
        if self.records is None:
            return None
        return sum(_lines(path) for path in _record_files(self.records))

    def remove_records(self) -> None:
        """Delete its records file, or its workers' files."""
        if self.records is not None:
            for path in _record_files(self.records):
                path.unlink()


def _record_files(records: Path) -> list[Path]:
    """*records*, and each worker's own file beside it, as far as they exist."""
    files = [records] if records.exists() else []
    number = 1
    while (path := worker_file(records, number)).exists():
        files.append(path)
        number += 1
    return files


def _lines(path: Path) -> int:
    count = 0
    with path.open("rb") as records:
        while chunk := records.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def ackonly_command(port: int, options: Sequence[str] = ()) -> list[str]:
    return [sys.executable, str(ACKONLY), *options, str(port)]


def yardserver_command(path: Path, port: int, records: Path) -> list[str]:
    return [sys.executable, str(path), str(port), str(records)]


def records_floor_command(port: int, records: Path, processes: int) -> list[str]:
    return [
        sys.executable,
        str(RECORDSFLOOR),
        f"--processes={processes}",
        str(port),
        str(records),
    ]


def gateway_command(
    options: Sequence[str],
    port: int,
    records: Path,
    twist_options: Sequence[str] = (),
) -> list[str]:
    """The gateway on *port*, filing into *records*, with *options* (and
    *twist_options* for ``twist`` itself)."""
    return [
        sys.executable,
        "-m",
        "twisted",
        *twist_options,
        "teltonika",
        "--port",
        f"tcp:{port}:interface={HOST}",
        "--sink",
        f"file:{records}",
        "--api",
        "none",
        *options,
    ]


def load_command(scenario: Scenario, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "teltotwist",
        "load",
        "--server",
        f"tcp:{HOST}:{port}",
        "--devices",
        str(scenario.devices),
        "--duration",
        f"{scenario.duration:g}",
        "--ack-timeout",
        f"{ACK_TIMEOUT:g}",
        "--codec",
        "8E",
        *scenario.pace,
        "--json",
    ]


def run_load(scenario: Scenario, port: int, deadline: float) -> dict[str, Any]:
    """Drive the server on *port*; the load's JSON summary."""
    timeout = min(deadline - time.monotonic(), scenario.duration + ACK_TIMEOUT + 60)
    try:
        finished = subprocess.run(
            load_command(scenario, port),
            capture_output=True,
            env=child_environment(),
            timeout=max(timeout, 1.0),
            check=False,
            preexec_fn=child_setup,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"the {scenario.name} load did not end in time") from None
    if finished.returncode not in (0, 1) or not finished.stdout.strip():
        errors = finished.stderr.decode(errors="replace")[-2000:]
        raise BenchError(
            f"the {scenario.name} load exited with {finished.returncode}:\n{errors}"
        )
    summary: dict[str, Any] = json.loads(finished.stdout)
    return summary


class Profiler:
    """``py-spy record`` of one process until stopped, into *output*."""

    def __init__(self, executable: str, pid: int, output: Path, form: str) -> None:
        self.output = output
        self.log = output.with_suffix(".log")
        with self.log.open("wb") as log:
            command = [executable, "record", "-p", str(pid), "-f", form]
            self.process = subprocess.Popen(
                [*command, "-o", str(output)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=child_setup,  # noqa: PLW1509
            )

    def stop(self) -> None:
        """Stop sampling (SIGINT: py-spy then writes its file)."""
        terminate(self.process, grace=15, signal_number=signal.SIGINT)
        if not self.output.exists():
            text = self.log.read_text(errors="replace").strip()
            raise BenchError(f"py-spy wrote no profile:\n{text}")
        self.log.unlink()


def find_py_spy() -> str:
    """py-spy beside this Python, or on the PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    found = shutil.which("py-spy", path=path)
    if found is None:
        raise BenchError("--profile needs py-spy: pip install py-spy")
    return found


# Runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """What one load against one fresh server measured."""

    scenario: str
    round: int
    records_acked: int
    file_lines: int | None
    """None: the server files no records (the floor)."""
    records_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    cpu_us_per_record: float
    """The server's CPU time (its workers' included) during the load, per
    record ACKed, in microseconds."""

    @property
    def consistent(self) -> bool:
        """The records ACKed are the records the server filed (if it files)."""
        return self.file_lines is None or self.records_acked == self.file_lines

    def describe(self, server: str, floor: str) -> str:
        """One line: the round, scenario, *server* (a column) and figures;
        *floor* says that the server files nothing."""
        if self.file_lines is None:
            check = floor
        elif self.consistent:
            check = "records ok"
        else:
            check = f"{self.file_lines:,} lines filed"
        return (
            f"round {self.round} {self.scenario:<8} {server} "
            f"{self.records_per_second:>9,.0f} records/s  p50 {self.p50_ms:,.1f} ms  "
            f"p99 {self.p99_ms:,.1f} ms  CPU {self.cpu_us_per_record:,.1f} µs/record  "
            f"errors {self.errors}  {check}"
        )


def drive(
    server: Server, scenario: Scenario, port: int, deadline: float
) -> tuple[dict[str, Any], float]:
    """Drive *server* with *scenario*: the load's JSON summary, and the CPU
    seconds the server, with its workers, spent meanwhile."""
    pid = server.process.pid
    before = tree_cpu_seconds(pid)
    summary = run_load(scenario, port, deadline)
    return summary, tree_cpu_seconds(pid) - before


def measured(
    scenario: Scenario,
    round_: int,
    file_lines: int | None,
    load: tuple[dict[str, Any], float],
) -> dict[str, Any]:
    """The :class:`Measured` fields of a load of *scenario*, from what
    :func:`drive` gave."""
    summary, cpu_seconds = load
    latency = summary["latency_ms"]
    return {
        "scenario": scenario.name,
        "round": round_,
        "file_lines": file_lines,
        "records_acked": summary["records_acked"],
        "records_per_second": summary["records_per_second"],
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "errors": sum(summary["errors"].values()),
        "cpu_us_per_record": cpu_seconds / max(summary["records_acked"], 1) * 1e6,
    }


@dataclass(frozen=True)
class Run(Measured):
    """One load against one fresh server of :data:`SERVERS`."""

    server: str
    unacked: int
    resends: int
    profile: str | None = None


@dataclass(frozen=True)
class Settings:
    """What the runs share."""

    workdir: Path
    yardserver: Path
    gateway_options: tuple[str, ...]
    workers: int
    """The gateway's ``--workers``, and the records floor's processes."""
    profile: Path | None
    profile_format: str
    py_spy: str | None


def run_once(
    scenario: Scenario, server: str, round_: int, deadline: float, settings: Settings
) -> Run:
    """Start *server* afresh, drive it with *scenario*, count its lines."""
    port = free_port()
    name = f"{scenario.name}-{server}-{round_}"
    records = settings.workdir / f"{name}.jsonl"
    if server in FLOORS:
        command = ackonly_command(port, FLOORS[server])
    elif server == RECORDS_FLOOR:
        command = records_floor_command(port, records, settings.workers)
    elif server == "yardserver":
        command = yardserver_command(settings.yardserver, port, records)
    else:
        options = (f"--workers={settings.workers}", *settings.gateway_options)
        command = gateway_command(options, port, records)
    filing = None if server in FLOORS else records
    process = Server(command, filing, settings.workdir / f"{name}.log")
    profiler: Profiler | None = None
    try:
        process.wait_until_listening(port, min(deadline, time.monotonic() + 60))
        if settings.py_spy is not None and server == "teltotwist":
            assert settings.profile is not None
            suffix = PROFILE_SUFFIXES[settings.profile_format]
            output = settings.profile / f"{name}.{suffix}"
            profiler = Profiler(
                settings.py_spy, process.process.pid, output, settings.profile_format
            )
        load = drive(process, scenario, port, deadline)
        if profiler is not None:
            profiler.stop()
        process.stop()
        lines = process.lines()
    finally:
        if profiler is not None:
            terminate(profiler.process, grace=15, signal_number=signal.SIGINT)
        process.stop()
        process.remove_records()
    return Run(
        **measured(scenario, round_, lines, load),
        server=server,
        unacked=load[0]["unacked"],
        resends=load[0]["resends"],
        profile=None if profiler is None else str(profiler.output),
    )


KindOfServer = TypeVar("KindOfServer")
SomeRun = TypeVar("SomeRun", bound=Measured)


def run_rounds(
    repeat: int,
    scenarios: Sequence[Scenario],
    servers: Sequence[KindOfServer],
    *,
    timeout: float,
    run_once: Callable[[Scenario, KindOfServer, int, float], SomeRun],
    describe: Callable[[SomeRun], str],
) -> list[SomeRun]:
    """Each ``run_once(scenario, server, round, deadline)`` within *timeout*
    seconds: *servers* alternate, scenario by scenario, for *repeat* rounds.
    Each run is described on stderr as it ends."""
    ensure_descriptors(
        SPARE_DESCRIPTORS + max(scenario.devices for scenario in scenarios)
    )
    runs: list[SomeRun] = []
    with global_timeout(timeout, grace=60) as deadline:
        rounds = range(1, repeat + 1)
        for round_, scenario, server in product(rounds, scenarios, servers):
            run = run_once(scenario, server, round_, deadline)
            print(describe(run), file=sys.stderr, flush=True)
            runs.append(run)
    return runs


# The report --------------------------------------------------------------------


@dataclass(frozen=True)
class Medians:
    """One server's runs of one scenario, summed up."""

    runs: int
    records_per_second: float
    records_per_second_min: float
    records_per_second_max: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_us_per_record: float
    errors: int
    inconsistent_runs: int

    def columns(self) -> str:
        """Records/s, their range, the latencies, the server's CPU per record
        and the errors: :data:`COLUMNS`."""
        low, high = self.records_per_second_min, self.records_per_second_max
        span = f"({low:,.0f}-{high:,.0f})"
        return (
            f"{self.records_per_second:>10,.0f} {span:>17} {self.p50_ms:>8,.1f} "
            f"{self.p99_ms:>8,.1f} {self.max_ms:>8,.1f} "
            f"{self.cpu_us_per_record:>10,.1f} {self.errors:>6}"
        )


COLUMNS = (
    f"{'records/s':>10} {'range':>17} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
    f"{'CPU µs/rec':>10} {'errors':>6}"
)
"""The headings of :meth:`Medians.columns`."""


def medians(runs: Sequence[Measured]) -> Medians:
    rates = [run.records_per_second for run in runs]
    return Medians(
        runs=len(runs),
        records_per_second=statistics.median(rates),
        records_per_second_min=min(rates),
        records_per_second_max=max(rates),
        p50_ms=statistics.median(run.p50_ms for run in runs),
        p99_ms=statistics.median(run.p99_ms for run in runs),
        max_ms=statistics.median(run.max_ms for run in runs),
        cpu_us_per_record=statistics.median(run.cpu_us_per_record for run in runs),
        errors=sum(run.errors for run in runs),
        inconsistent_runs=sum(not run.consistent for run in runs),
    )


@dataclass(frozen=True)
class Report:
    """Every run, and what they say about the targets."""

    runs: list[Run]
    scenarios: list[Scenario]

    def medians(self) -> dict[str, dict[str, Medians]]:
        """Per scenario, per server."""
        return {
            scenario.name: {
                server: medians(
                    [
                        run
                        for run in self.runs
                        if (run.scenario, run.server) == (scenario.name, server)
                    ]
                )
                for server in SERVERS
            }
            for scenario in self.scenarios
        }

    def ratios(self) -> dict[str, float]:
        """teltotwist's median records/s over the yardstick's, per scenario."""
        return {
            name: servers["teltotwist"].records_per_second
            / servers["yardserver"].records_per_second
            for name, servers in self.medians().items()
            if servers["yardserver"].records_per_second
        }

    def targets(self) -> dict[str, bool]:
        """Each target: met or not (not measured counts as not met)."""
        medians, ratios = self.medians(), self.ratios()
        burst10 = medians.get("burst10", {}).get("teltotwist")
        return {
            "flat_ratio": ratios.get("flat", 0.0) >= RATIO_TARGET,
            "burst10_p99": burst10 is not None and burst10.p99_ms < P99_TARGET_MS,
            "records_check": all(run.consistent for run in self.runs),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": {
                "flat_ratio_at_least": RATIO_TARGET,
                "burst10_p99_ms_below": P99_TARGET_MS,
                "met": self.targets(),
            },
            "scenarios": [asdict(scenario) for scenario in self.scenarios],
            "runs": [
                {**asdict(run), "consistent": run.consistent} for run in self.runs
            ],
            "medians": {
                name: {server: asdict(figures) for server, figures in servers.items()}
                for name, servers in self.medians().items()
            },
            "ratios": {name: round(ratio, 3) for name, ratio in self.ratios().items()},
        }

    def table(self) -> str:
        rounds = max((run.round for run in self.runs), default=0)
        lines = [
            f"Medians of {rounds} round(s); records/s: median (range). Targets: "
            f"flat >= {RATIO_TARGET:g}x the yardstick's records/s; burst10 p99 < "
            f"{P99_TARGET_MS:g} ms for teltotwist; records ACKed = lines filed. "
            f"{FLOOR}: the floor (the load generator with a server that only ACKs); "
            f"{TWISTED_FLOOR}: the same server on Twisted; {RECORDS_FLOOR}: a "
            "Twisted server that files the gateway's records and does nothing else.",
            "",
            f"{'scenario':<9} {'server':<11} {COLUMNS}  records",
        ]
        ratios = self.ratios()
        for name, servers in self.medians().items():
            for server, each in servers.items():
                if server in FLOORS:
                    check = "floor: files nothing"
                elif each.inconsistent_runs:
                    check = f"{each.inconsistent_runs} run(s) differ"
                else:
                    check = "ok"
                lines.append(f"{name:<9} {server:<11} {each.columns()}  {check}")
            if name in ratios:
                lines.append(f"{name:<9} {'ratio':<11} {ratios[name]:>9.2f}x")
        met = self.targets()
        lines += [
            "",
            "targets: "
            + ", ".join(
                f"{target} {'met' if ok else 'NOT met'}" for target, ok in met.items()
            ),
        ]
        return "\n".join(lines)


# The command line ------------------------------------------------------------------


def add_scenario_options(parser: argparse.ArgumentParser, names: list[str]) -> None:
    """``--scenarios``, some of *names*, and each one's ``--NAME-devices``
    and ``--NAME-duration``: see :func:`chosen_scenarios`."""

    def scenario_names(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        if not chosen or set(chosen) - set(names):
            raise argparse.ArgumentTypeError(
                f"scenarios are some of {','.join(names)}, not {text!r}"
            )
        return chosen

    parser.add_argument(
        "--scenarios",
        type=scenario_names,
        default=names,
        help=f"comma-separated, of {','.join(names)} (default: all)",
    )
    for scenario in (SCENARIOS[name] for name in names):
        parser.add_argument(
            f"--{scenario.name}-devices",
            type=positive(int),
            default=scenario.devices,
            metavar="N",
            help=f"trackers in {scenario.name} (default {scenario.devices:,})",
        )
        parser.add_argument(
            f"--{scenario.name}-duration",
            type=positive(float),
            default=scenario.duration,
            metavar="SECONDS",
            help=f"seconds of {scenario.name} (default {scenario.duration:g})",
        )


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_scenario_options(parser, list(SCENARIOS))
    parser.add_argument(
        "--repeat", type=positive(int), default=1, metavar="N", help="rounds"
    )
    parser.add_argument(
        "--yardserver",
        type=Path,
        default=DEFAULT_YARDSERVER,
        metavar="PATH",
        help="the yardstick server (default: ../shared/bench/yardserver.py)",
    )
    parser.add_argument(
        "--workers",
        type=positive(int),
        default=1,
        metavar="N",
        help="the gateway's --workers, and the records floor's processes (default 1)",
    )
    parser.add_argument(
        "--gateway-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="one more argument for the gateway, e.g. --gateway-option=--sink=log",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record the gateway with py-spy during each of its runs, into DIR",
    )
    parser.add_argument(
        "--profile-format",
        choices=list(PROFILE_SUFFIXES),
        default="speedscope",
        help="py-spy's output format (default speedscope)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    parser.add_argument(
        "--timeout",
        type=positive(float),
        metavar="SECONDS",
        help="for the whole run (default: twice the time the runs should take)",
    )
    arguments = parser.parse_args(argv)
    if any(option.startswith("--workers") for option in arguments.gateway_option):
        parser.error(
            "give the gateway's workers with --workers N, which runs the records "
            "floor in as many processes, not with --gateway-option"
        )
    return arguments


def chosen_scenarios(arguments: argparse.Namespace) -> list[Scenario]:
    """The scenarios to run, with the devices and durations asked for."""
    return [
        Scenario(
            name,
            getattr(arguments, f"{name}_devices"),
            getattr(arguments, f"{name}_duration"),
            SCENARIOS[name].pace,
        )
        for name in arguments.scenarios
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds; 0 if every target is met, 1 if not, 2 on error."""
    arguments = parse_arguments(argv)
    scenarios = chosen_scenarios(arguments)
    expected = arguments.repeat * sum(
        len(SERVERS) * (scenario.duration + ACK_TIMEOUT + 10) for scenario in scenarios
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-durable-"))
    try:
        if not arguments.yardserver.is_file():
            raise BenchError(
                f"no yardstick server at {arguments.yardserver}: "
                "give its path with --yardserver PATH"
            )
        py_spy = None
        if arguments.profile is not None:
            py_spy = find_py_spy()
            arguments.profile.mkdir(parents=True, exist_ok=True)
        settings = Settings(
            workdir=workdir,
            yardserver=arguments.yardserver.resolve(),
            gateway_options=tuple(arguments.gateway_option),
            workers=arguments.workers,
            profile=arguments.profile,
            profile_format=arguments.profile_format,
            py_spy=py_spy,
        )
        runs = run_rounds(
            arguments.repeat,
            scenarios,
            SERVERS,
            timeout=arguments.timeout or 2 * expected,
            run_once=partial(run_once, settings=settings),
            describe=lambda run: run.describe(f"{run.server:<10}", "files nothing"),
        )
    except (BenchError, OSError) as error:
        print(f"bench_durable: {error}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = Report(runs, scenarios)
    print(json.dumps(report.to_json(), indent=2) if arguments.json else report.table())
    return 0 if all(report.targets().values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
