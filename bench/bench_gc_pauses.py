"""How long the garbage collector stops the gateway (issue 11).

Runs ``python -m twisted teltonika`` (a file sink, no API) in a process that
times every collection with ``gc.callbacks``: wall time, and the CPU time of
the reactor's thread (which a busy machine does not inflate). Collections
from one second after the reactor starts count; the startup's do not. It
drives the gateway with ``teltotwist load`` (by default 1,000 trackers, each
sending a 10-record packet every second, for 20 s; with ``--burst``, all
at the same instant, in Codec 8E, as in ``bench_durable.py``'s ``burst10``)
and reports, per run, the collections of each generation, the longest
pauses and the load's ACK latency; runs are repeated ``--runs`` times.

With ``--idle-trackers N`` there is no load: N trackers log in and stay idle
(from worker processes, as in ``bench_idle_memory.py``), and the gateway
counts the objects its collector tracks and times one full collection (CPU,
best of five), before and after they log in.

Run from the repository root; to compare two versions of the code, run it
with each on ``PYTHONPATH``:

    python bench/bench_gc_pauses.py --runs 3
    python bench/bench_gc_pauses.py --runs 3 --burst
    python bench/bench_gc_pauses.py --idle-trackers 19000
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench_idle_memory import GATEWAY_HOST, TrackerWorkers
from harness import (
    BenchError,
    global_timeout,
    logged_port,
    start_logged,
    terminate,
)

from teltotwist.tap import LISTEN_BACKLOG

SERVE = "--serve"
"""Internal: run the gateway, timing its collections (see :func:`serve`)."""
SKIPPED_AT_START = 1.0
"""Seconds after the reactor starts whose collections do not count."""
SETTLE = 1.5
"""Seconds between the gateway listening and the load starting."""
BURST10 = ["--burst", "--interval", "1", "--records-per-packet", "10", "--codec", "8E"]
"""``--burst``: the load of ``bench_durable.py``'s ``burst10`` scenario."""


# In the gateway's process. ----------------------------------------------------


class CollectionTimes:
    """The pauses of every collection, by generation, in seconds."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[tuple[float, float]]] = {0: [], 1: [], 2: []}
        self._started = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        """A ``gc.callbacks`` entry."""
        if phase == "start":
            self._started = (time.perf_counter(), time.thread_time())
            return
        wall, cpu = self._started
        pause = (time.perf_counter() - wall, time.thread_time() - cpu)
        self.pauses[info["generation"]].append(pause)

    def forget(self) -> None:
        """Count from now on."""
        for pauses in self.pauses.values():
            pauses.clear()

    def to_json(self) -> dict[str, dict[str, float]]:
        return {
            str(generation): {
                "count": len(pauses),
                "max_wall_ms": 1000 * max((wall for wall, _ in pauses), default=0),
                "max_cpu_ms": 1000 * max((cpu for _, cpu in pauses), default=0),
                "cpu_ms": 1000 * sum(cpu for _, cpu in pauses),
            }
            for generation, pauses in self.pauses.items()
        }


def _full_collection_cpu_ms() -> float:
    """The CPU time of one full collection, best of five."""
    times = []
    for _ in range(5):
        started = time.thread_time()
        gc.collect()
        times.append(time.thread_time() - started)
    return 1000 * min(times)


def serve(stats: Path, arguments: list[str]) -> None:
    """Run ``twist ARGUMENTS`` timing its collections. On SIGUSR1, and when
    the reactor stops, write the times to *stats* (JSON); on SIGUSR1 also
    time a full collection and count the objects tracked."""
    from twisted.application.twist._twist import Twist  # noqa: PLC0415
    from twisted.internet import reactor  # noqa: PLC0415

    times = CollectionTimes()
    gc.callbacks.append(times)
    measured: dict[str, float] = {}

    def write() -> None:
        report = {"generations": times.to_json(), "frozen": gc.get_freeze_count()}
        stats.write_text(json.dumps({**report, **measured}), encoding="utf-8")

    def measure() -> None:
        measured["full_collection_cpu_ms"] = _full_collection_cpu_ms()
        measured["tracked"] = len(gc.get_objects())
        write()

    signal.signal(
        signal.SIGUSR1,
        lambda *_: reactor.callFromThread(measure),  # type: ignore[attr-defined]
    )
    reactor.callWhenRunning(reactor.callLater, SKIPPED_AT_START, times.forget)
    reactor.addSystemEventTrigger("before", "shutdown", write)
    Twist.main(["twist", *arguments])


# In the benchmark's process. --------------------------------------------------


class TimedGateway:
    """The gateway in a process of its own, timing its collections."""

    def __init__(self, workdir: Path, *options: str) -> None:
        self.stats = workdir / "gc.json"
        self.sink = workdir / "records.jsonl"
        self.log_path = workdir / "gateway.log"
        self.command = [
            sys.executable,
            str(Path(__file__).resolve()),
            SERVE,
            str(self.stats),
            "--log-format=text",
            "teltonika",
            "--port",
            f"tcp:0:interface={GATEWAY_HOST}:backlog={LISTEN_BACKLOG}",
            "--sink",
            f"file:{self.sink}",
            "--api",
            "none",
            "--state-dir",
            str(workdir / "state"),
            *options,
        ]
        self.process = start_logged(self.command, self.log_path)

    def wait_until_listening(self, deadline: float) -> int:
        """The port, once the gateway says it listens."""
        return logged_port(
            self.process,
            self.log_path,
            deadline,
            "the gateway",
            "Listening for trackers",
        )

    def measure(self, deadline: float) -> dict[str, Any]:
        """Its collection times, a full collection timed and the objects
        tracked, now."""
        self.stats.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        while not self.stats.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise BenchError("the gateway did not measure its collections")
            time.sleep(0.1)
        time.sleep(0.1)  # written in one go, but let it finish
        stats: dict[str, Any] = json.loads(self.stats.read_text(encoding="utf-8"))
        return stats

    def stop(self) -> dict[str, Any] | None:
        """SIGTERM (SIGKILL after a grace period); its collection times, if
        it wrote them."""
        terminate(self.process, grace=30)
        if not self.stats.exists():
            return None
        stats: dict[str, Any] = json.loads(self.stats.read_text(encoding="utf-8"))
        return stats


def load_run(arguments: argparse.Namespace, deadline: float) -> dict[str, Any]:
    """One gateway under the load: its collections, the load's summary."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-gc-pauses-"))
    gateway = TimedGateway(workdir)
    try:
        port = gateway.wait_until_listening(deadline)
        time.sleep(SETTLE)
        command = [sys.executable, "-m", "teltotwist", "load", "--json"]
        command += ["--server", f"tcp:{GATEWAY_HOST}:{port}"]
        command += ["--devices", str(arguments.devices)]
        command += ["--duration", str(arguments.duration)]
        if arguments.burst:
            command += BURST10
        load = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=max(1.0, deadline - time.monotonic()),
            check=False,
        )
        if load.returncode != 0:
            raise BenchError(f"teltotwist load failed:\n{load.stderr}")
        stats = gateway.stop()
        if stats is None:
            raise BenchError("the gateway wrote no collection times")
        with gateway.sink.open("rb") as stored:
            lines = sum(1 for _ in stored)
        return {"gc": stats, "load": json.loads(load.stdout), "stored": lines}
    finally:
        gateway.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def idle_run(arguments: argparse.Namespace, deadline: float) -> dict[str, Any]:
    """The objects tracked and a full collection, without and with idle
    trackers."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-gc-pauses-"))
    count = arguments.idle_trackers
    gateway = TimedGateway(
        workdir, "--idle-timeout", "3600", "--max-connections", str(count + 1)
    )
    workers: TrackerWorkers | None = None
    try:
        port = gateway.wait_until_listening(deadline)
        before = gateway.measure(deadline)
        workers = TrackerWorkers(port, [GATEWAY_HOST], count, 15_000, 100)
        workers.open(count, deadline)
        time.sleep(SETTLE)
        after = gateway.measure(deadline)
        return {"trackers": count, "before": before, "after": after}
    finally:
        if workers is not None:
            workers.close()
        gateway.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _load_line(number: int, run: dict[str, Any]) -> str:
    generations = run["gc"]["generations"]
    load = run["load"]
    latency = load["latency_ms"]
    intact = (
        run["stored"] == load["records_acked"]
        and not load["errors"]
        and not load["resends"]
        and not load["unacked"]
    )
    longest = max(generation["max_wall_ms"] for generation in generations.values())
    full = generations["2"]
    return (
        f"{number:>3}  "
        + "  ".join(f"{generations[g]['count']:>5}" for g in "012")
        + f"  {full['max_wall_ms']:>6.1f} {full['max_cpu_ms']:>6.1f}"
        + f"  {longest:>6.1f}"
        + f"  {sum(g['cpu_ms'] for g in generations.values()):>6.0f}"
        + f"  {latency['p50']:>6.1f} {latency['p99']:>7.1f} {latency['max']:>7.1f}"
        + f"  {load['records_per_second']:>9,.0f}  {'yes' if intact else 'NO'}"
    )


def report_load(runs: Sequence[dict[str, Any]]) -> str:
    """The load runs as a table."""
    return "\n".join(
        [
            "                 collections   full (ms)   any ms  GC CPU  ACK latency, ms"
            "           records  all ACKed",
            "run   gen0  gen1  gen2    wall    cpu    wall      ms     p50     p99"
            "     max    ACKed/s  stored",
            *(_load_line(number, run) for number, run in enumerate(runs, 1)),
        ]
    )


def report_idle(run: dict[str, Any]) -> str:
    """The idle run in two lines."""
    before, after, count = run["before"], run["after"], run["trackers"]
    per_tracker = (after["tracked"] - before["tracked"]) / count
    return (
        f"objects the collector tracks: {before['tracked']:,} idle, "
        f"{after['tracked']:,} with {count:,} trackers ({per_tracker:.1f} each); "
        f"{before['frozen']:,} frozen\n"
        f"a full collection: {before['full_collection_cpu_ms']:.2f} ms CPU idle, "
        f"{after['full_collection_cpu_ms']:.2f} ms with {count:,} trackers"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [SERVE]:
        serve(Path(argv[1]), argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--burst",
        action="store_true",
        help="each tracker a 10-record packet a second, all at the same instant",
    )
    parser.add_argument(
        "--idle-trackers",
        type=int,
        help="no load: count and time the collector with this many idle trackers",
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="global limit")
    parser.add_argument("--json", action="store_true", help="print JSON")
    arguments = parser.parse_args(argv)
    show: Callable[[Any], str]
    try:
        with global_timeout(arguments.timeout, grace=30) as deadline:
            if arguments.idle_trackers:
                result: Any = idle_run(arguments, deadline)
                show = report_idle
            else:
                result = [load_run(arguments, deadline) for _ in range(arguments.runs)]
                show = report_load
    except (BenchError, OSError, subprocess.TimeoutExpired) as error:
        print(f"bench_gc_pauses: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result) if arguments.json else show(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
