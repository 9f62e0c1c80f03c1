"""The gateway's memory with many idle, logged-in trackers, and whether a
tracker among them is still answered fast (issues 5 and 11).

Starts a real ``twistd -n teltonika`` on a loopback port, with its open-file
limit raised to its hard limit, and measures its resident memory once idle.
Then worker processes of this benchmark (each holding at most
``--per-worker`` connections: one process's open-file limit cannot hold them
all) open ``--connections`` TCP connections to it, each logging in with its
own 15-digit IMEI and checking the ``01`` reply. ``--connections max`` (the
default) fills the gateway to its open-file limit, less the descriptors it
holds idle and a margin. At a few checkpoints, and at the end, it lets the
server settle and measures again.

With every tracker logged in, a probe tracker, from a process of its own,
logs in and sends ``--probe-packets`` real Codec 8 packets, one at a time,
timing each from its last byte sent to its ACK.

Targets: under 4 KiB of server memory per idle tracker, and every packet of
the probe ACKed within 10 ms. The exit status is 0 when both are met, 1 when
one is not, 2 when the benchmark could not run.

Resident memory is VmRSS from ``/proc/PID/status`` and, where the kernel has
it, PSS from ``/proc/PID/smaps_rollup``. Sockets are kernel memory, not part
of either figure: the growth of the kernel's slab memory (system-wide, both
ends of every loopback connection) is reported beside them.

Run from the repository root:

    python bench/bench_idle_memory.py                       # fill the gateway
    python bench/bench_idle_memory.py --connections 10000 --json

Everything started is stopped on the way out, error or not.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import (
    BenchError,
    all_descriptors,
    die_with_parent,
    global_timeout,
    logged_port,
    receive_exactly,
    start_logged,
    terminate,
    tracker_frame,
)

from teltotwist.codec import (
    encode_login,
    tcp_ack,
)
from teltotwist.tap import LISTEN_BACKLOG

TARGET_BYTES = 4 * 1024
"""Issue 11: under 4 KiB of server memory per idle tracker (issue 5's was 30 KB)."""
TARGET_ACK_SECONDS = 0.010
"""Issue 11: a tracker among them still ACKed within 10 ms."""
FIRST_IMEI = 356_307_040_000_000
PROBE_IMEI = "356307049999999"
PROBE_SOURCE = "127.0.0.2"
"""The probe connects from its own address, as a tracker of its own."""
GATEWAY_HOST = "127.0.0.1"
LOGIN_ACCEPTED = b"\x01"
GATEWAY_MARGIN = 32
"""Descriptors ``--connections max`` leaves free in the gateway, besides
those it holds idle and the probe's."""
WORKER_SPARE = 64
"""Descriptors a worker keeps for itself besides its connections."""


@dataclass(frozen=True)
class Memory:
    """A process's resident memory, in bytes."""

    rss: int
    pss: int | None


@dataclass(frozen=True)
class Sample:
    """The server's memory with *connections* idle trackers connected."""

    connections: int
    memory: Memory


def login(number: int) -> bytes:
    """The 17-byte IMEI login of the *number*-th tracker."""
    return encode_login(str(FIRST_IMEI + number))


def read_memory(pid: int) -> Memory:
    """VmRSS and (if available) PSS of process *pid*."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    if found is None:
        raise BenchError(f"no VmRSS for process {pid}")
    pss = None
    rollup = Path(f"/proc/{pid}/smaps_rollup")
    if rollup.exists():
        match = re.search(
            r"^Pss:\s+(\d+) kB", rollup.read_text(encoding="ascii"), re.MULTILINE
        )
        pss = int(match.group(1)) * 1024 if match else None
    return Memory(int(found.group(1)) * 1024, pss)


def settled_memory(pid: int, settle: float, deadline: float) -> Memory:
    """The memory of *pid* after *settle* seconds, once two readings agree."""
    time.sleep(settle)
    previous = read_memory(pid)
    for _ in range(20):
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
        current = read_memory(pid)
        if current.rss == previous.rss:
            return current
        previous = current
    return previous


def kernel_slab() -> int:
    """The kernel's slab memory, system-wide (``Slab`` in ``/proc/meminfo``),
    in bytes: where socket structures live, outside any process's RSS."""
    meminfo = Path("/proc/meminfo").read_text(encoding="ascii")
    found = re.search(r"^Slab:\s+(\d+) kB", meminfo, re.MULTILINE)
    if found is None:
        raise BenchError("no Slab in /proc/meminfo")
    return int(found.group(1)) * 1024


def descriptor_limit(pid: int) -> int:
    """The soft open-file limit of process *pid*."""
    limits = Path(f"/proc/{pid}/limits").read_text(encoding="ascii")
    found = re.search(r"^Max open files\s+(\d+)", limits, re.MULTILINE)
    if found is None:
        raise BenchError(f"no open-file limit for process {pid}")
    return int(found.group(1))


def open_descriptors(pid: int) -> int:
    """How many files process *pid* has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class Server:
    """A ``twistd -n teltonika`` subprocess logging to a file, with all the
    descriptors its hard limit allows."""

    def __init__(self, twistd: Path, workdir: Path, max_connections: int) -> None:
        self.log_path = workdir / "twistd.log"
        command = [
            str(twistd),
            "-n",
            "--pidfile=",
            "teltonika",
            "--port",
            f"tcp:0:interface={GATEWAY_HOST}:backlog={LISTEN_BACKLOG}",
            "--sink",
            f"file:{workdir / 'r.jsonl'}",
            "--api",
            "none",
            "--idle-timeout",
            "3600",
            "--max-connections",
            str(max_connections),
        ]
        self.command = command
        self.process = start_logged(command, self.log_path)
        self.pid = self.process.pid

    def wait_for_port(self, deadline: float) -> int:
        """The port from the log line ``TeltonikaTcpFactory starting on N``."""
        return logged_port(self.process, self.log_path, deadline, "twistd")

    def check_running(self) -> None:
        """Fail if the server has exited."""
        if self.process.poll() is not None:
            raise BenchError(f"twistd exited with {self.process.returncode}")

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL."""
        terminate(self.process, grace=30)


class Trackers:
    """Idle logged-in client connections, opened from this process."""

    def __init__(self, port: int, sources: Sequence[str]) -> None:
        self.port = port
        self.sources = sources
        self.sockets: list[socket.socket] = []

    def open(self, numbers: range, window: int, deadline: float) -> None:
        """Open a connection for each tracker of *numbers*, at most *window*
        logging in at once.

        Each sends its login and must get ``01`` back before it counts.
        """
        selector = selectors.DefaultSelector()
        pending: dict[socket.socket, int] = {}
        todo = iter(numbers)
        try:
            exhausted = False
            while pending or not exhausted:
                while not exhausted and len(pending) < window:
                    number = next(todo, None)
                    if number is None:
                        exhausted = True
                        break
                    pending[self._connect(number, selector)] = number
                if not pending:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise BenchError(
                        f"timed out with {len(pending)} connections logging in"
                    )
                for key, events in selector.select(timeout=min(remaining, 1.0)):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if self._advance(sock, events, pending[sock], selector):
                        del pending[sock]
                        self.sockets.append(sock)
        finally:
            for sock in pending:
                sock.close()
            selector.close()

    def _connect(self, number: int, selector: selectors.BaseSelector) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            source = self.sources[number % len(self.sources)]
            if source != GATEWAY_HOST:
                sock.bind((source, 0))
            code = sock.connect_ex((GATEWAY_HOST, self.port))
            if code not in (0, errno.EINPROGRESS):
                raise BenchError(f"connect #{number}: {os.strerror(code)}")
            selector.register(sock, selectors.EVENT_WRITE)
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    def _advance(
        sock: socket.socket,
        events: int,
        number: int,
        selector: selectors.BaseSelector,
    ) -> bool:
        """Move *sock* on: connected -> login sent -> ``01`` read (True)."""
        if events & selectors.EVENT_WRITE:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise BenchError(f"connect #{number}: {os.strerror(code)}")
            data = login(number)
            if sock.send(data) != len(data):
                raise BenchError(f"login #{number} was not sent in one piece")
            selector.modify(sock, selectors.EVENT_READ)
            return False
        reply = sock.recv(16)
        if reply != LOGIN_ACCEPTED:
            raise BenchError(f"login #{number} got {reply!r}, not 01")
        selector.unregister(sock)
        return True

    def count_open(self) -> int:
        """How many connections the server has not closed (nor written to)."""
        selector = selectors.DefaultSelector()
        try:
            for sock in self.sockets:
                selector.register(sock, selectors.EVENT_READ)
            readable = selector.select(timeout=0)
        finally:
            selector.close()
        return len(self.sockets) - len(readable)

    def close(self) -> None:
        """Close every connection."""
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()


# Worker processes: each holds a share of the trackers. ------------------------


def _serve_requests(
    port: int, sources: Sequence[str], window: int, parent: Any
) -> None:
    """A worker's life: open, count and finally close its trackers, as the
    benchmark asks through *parent* (a pipe); every answer is a pair
    ``("ok", value)`` or ``("error", message)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()
    all_descriptors()
    trackers = Trackers(port, sources)
    try:
        while True:
            request, *arguments = parent.recv()
            if request == "close":
                return
            try:
                if request == "open":
                    numbers, deadline = arguments
                    trackers.open(numbers, window, deadline)
                    parent.send(("ok", len(trackers.sockets)))
                else:
                    parent.send(("ok", trackers.count_open()))
            except (BenchError, OSError) as error:
                parent.send(("error", str(error)))
    finally:
        trackers.close()


class TrackerWorkers:
    """Worker processes of this benchmark holding the idle trackers, at most
    *per_worker* each."""

    def __init__(
        self,
        port: int,
        sources: Sequence[str],
        total: int,
        per_worker: int,
        window: int,
    ) -> None:
        count = max(1, math.ceil(total / per_worker))
        self.held = [0] * count
        self._next_number = 0
        context = multiprocessing.get_context("fork")
        self._pipes: list[multiprocessing.connection.Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for number in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve_requests,
                args=(port, sources, window, theirs),
                name=f"trackers-{number}",
                daemon=True,
            )
            process.start()
            theirs.close()
            self._pipes.append(ours)
            self._processes.append(process)

    @property
    def count(self) -> int:
        """How many worker processes there are."""
        return len(self._processes)

    def open(self, more: int, deadline: float) -> None:
        """Log in *more* trackers; the workers then hold as many each, give
        or take one."""
        after = sum(self.held) + more
        for index, held in enumerate(self.held):
            share = after // self.count + (index < after % self.count) - held
            numbers = range(self._next_number, self._next_number + share)
            self._next_number += share
            self._pipes[index].send(("open", numbers, deadline))
        self.held = list(self._answers(deadline))

    def count_open(self, deadline: float) -> int:
        """How many of the trackers' connections are still open."""
        for pipe in self._pipes:
            pipe.send(("count",))
        return sum(self._answers(deadline))

    def _answers(self, deadline: float) -> Iterator[int]:
        for index, pipe in enumerate(self._pipes):
            if not pipe.poll(max(0.0, deadline - time.monotonic()) + 5):
                raise BenchError(f"worker {index} did not answer in time")
            outcome, value = pipe.recv()
            if outcome != "ok":
                raise BenchError(f"worker {index}: {value}")
            yield value

    def close(self) -> None:
        """Close every connection and stop the workers."""
        for pipe in self._pipes:
            with contextlib.suppress(OSError):  # the worker is gone already
                pipe.send(("close",))
        for process in self._processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self._pipes:
            pipe.close()


# The probe tracker. -----------------------------------------------------------


def _probe_visit(
    port: int, packets: int, interval: float, timeout: float, parent: Any
) -> None:
    """In the probe's process: log in, send *packets* packets one at a time,
    send their ACK latencies (seconds) or what went wrong to *parent*."""
    die_with_parent()
    latencies: list[float] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((PROBE_SOURCE, 0))
            sock.connect((GATEWAY_HOST, port))
            sock.sendall(encode_login(PROBE_IMEI))
            reply = receive_exactly(sock, 1)
            if reply != LOGIN_ACCEPTED:
                raise ConnectionError(f"login answered {reply.hex()}")
            for number in range(packets):
                frame = tracker_frame(number)
                sock.sendall(frame)
                sent = time.perf_counter()
                ack = receive_exactly(sock, 4)
                latencies.append(time.perf_counter() - sent)
                if ack != tcp_ack(1):
                    raise ConnectionError(f"ACK {ack.hex()}, not {tcp_ack(1).hex()}")
                time.sleep(interval)
        parent.send(("ok", latencies))
    except OSError as error:
        parent.send(("error", f"after {len(latencies)} ACKs: {error!r}"))


def probe(port: int, packets: int, interval: float, timeout: float) -> list[float]:
    """The ACK latencies of a tracker visiting from a process of its own, as a
    device of its own would, not delayed by this process."""
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_probe_visit,
        args=(port, packets, interval, timeout, theirs),
        name="probe",
        daemon=True,
    )
    process.start()
    theirs.close()
    try:
        if not ours.poll(packets * (interval + timeout) + timeout):
            raise BenchError("the probe tracker did not finish in time")
        outcome, value = ours.recv()
    finally:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        ours.close()
    if outcome != "ok":
        raise BenchError(f"the probe tracker failed {value}")
    latencies: list[float] = value
    return latencies


# The benchmark. ---------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one run measured."""

    connections: int
    workers: int
    gateway_descriptor_limit: int
    baseline: Memory
    samples: list[Sample]
    ack_latencies: list[float]
    kernel_slab_growth: int
    """Bytes of kernel slab memory the trackers added (system-wide: both ends
    of each loopback connection, and whatever else ran meanwhile)."""

    @property
    def bytes_per_tracker(self) -> float:
        last = self.samples[-1]
        return (last.memory.rss - self.baseline.rss) / last.connections

    @property
    def memory_met(self) -> bool:
        return self.bytes_per_tracker < TARGET_BYTES

    @property
    def ack_met(self) -> bool:
        return max(self.ack_latencies) <= TARGET_ACK_SECONDS


def checkpoints(total: int, requested: Sequence[int]) -> list[int]:
    """The connection counts to measure at: those requested up to *total*."""
    return sorted({n for n in requested if 0 < n < total} | {total})


def fill_count(limit: int, held: int) -> int:
    """The trackers ``--connections max`` logs in: the gateway's open-file
    *limit*, less the *held* descriptors it has idle, the probe's and a
    margin."""
    return limit - held - 1 - GATEWAY_MARGIN


def _kib(size: int | None) -> str:
    return "-" if size is None else f"{size / 1024:,.0f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def report_table(outcome: Outcome) -> str:
    """The human-readable report."""
    baseline = outcome.baseline
    lines = [
        "",
        f"{outcome.connections:,} trackers held by {outcome.workers} worker "
        f"processes; gateway open-file limit {outcome.gateway_descriptor_limit:,}",
        f"baseline RSS {_kib(baseline.rss)} KiB, PSS {_kib(baseline.pss)} KiB",
        f"{'connections':>11}  {'RSS KiB':>9}  {'PSS KiB':>9}  "
        f"{'RSS B/conn':>10}  {'PSS B/conn':>10}",
    ]
    for sample in outcome.samples:
        memory, count = sample.memory, sample.connections
        per_pss = (
            "-"
            if memory.pss is None or baseline.pss is None
            else f"{(memory.pss - baseline.pss) / count:,.0f}"
        )
        lines.append(
            f"{count:>11,}  {_kib(memory.rss):>9}  {_kib(memory.pss):>9}  "
            f"{(memory.rss - baseline.rss) / count:>10,.0f}  {per_pss:>10}"
        )
    last = outcome.samples[-1]
    per_tracker = outcome.bytes_per_tracker
    latencies = outcome.ack_latencies
    lines += [
        "",
        f"{last.connections:,} idle trackers: "
        f"{(last.memory.rss - baseline.rss) / 1024 / 1024:,.1f} MiB more RSS, "
        f"{per_tracker:,.0f} bytes ({per_tracker / 1024:.2f} KiB) per tracker; "
        f"target < {TARGET_BYTES // 1024} KiB: "
        f"{'MET' if outcome.memory_met else 'NOT MET'}",
        f"kernel slab memory, system-wide, both ends of each connection: "
        f"{outcome.kernel_slab_growth / 1024 / 1024:+,.1f} MiB, "
        f"{outcome.kernel_slab_growth / last.connections:,.0f} bytes per connection",
        f"a tracker among them: {len(latencies)} packets ACKed, median "
        f"{_ms(statistics.median(latencies))}, max {_ms(max(latencies))}; "
        f"target every ACK within {_ms(TARGET_ACK_SECONDS)}: "
        f"{'MET' if outcome.ack_met else 'NOT MET'}",
    ]
    return "\n".join(lines)


def report_json(outcome: Outcome) -> str:
    """The report as one JSON object."""
    return json.dumps(
        {
            **asdict(outcome),
            "bytes_per_tracker": outcome.bytes_per_tracker,
            "ack_median": statistics.median(outcome.ack_latencies),
            "ack_max": max(outcome.ack_latencies),
            "targets": {
                "bytes_per_tracker": TARGET_BYTES,
                "ack_seconds": TARGET_ACK_SECONDS,
            },
            "met": outcome.memory_met and outcome.ack_met,
        }
    )


def run(arguments: argparse.Namespace, say: Any) -> Outcome:
    """The benchmark; *say* prints its progress."""
    sources = [f"127.0.0.{n}" for n in range(1, arguments.sources + 1)]
    with global_timeout(arguments.timeout, grace=30) as deadline:
        workdir = Path(tempfile.mkdtemp(prefix="bench-idle-memory-"))
        server: Server | None = None
        workers: TrackerWorkers | None = None
        try:
            max_connections = arguments.max_connections
            server = Server(arguments.twistd, workdir, max_connections)
            say("server:", " ".join(server.command))
            port = server.wait_for_port(deadline)
            baseline = settled_memory(server.pid, arguments.settle, deadline)
            slab = kernel_slab()
            limit = descriptor_limit(server.pid)
            held = open_descriptors(server.pid)
            total = arguments.connections or fill_count(limit, held)
            if total + 1 > max_connections:
                raise BenchError(f"--max-connections {max_connections} < {total} + 1")
            say(
                f"pid {server.pid} listening on {GATEWAY_HOST}:{port}, open-file "
                f"limit {limit:,}, {held} open idle; baseline RSS "
                f"{_kib(baseline.rss)} KiB; {total:,} trackers to log in"
            )
            workers = TrackerWorkers(
                port, sources, total, arguments.per_worker, arguments.window
            )
            samples = []
            for point in checkpoints(total, arguments.checkpoints):
                started = time.monotonic()
                workers.open(point - sum(workers.held), deadline)
                took = time.monotonic() - started
                memory = settled_memory(server.pid, arguments.settle, deadline)
                server.check_running()
                still_open = workers.count_open(deadline)
                if still_open != point:
                    raise BenchError(f"only {still_open} of {point} are still open")
                say(
                    f"{point:,} connected and logged in ({took:.1f} s), "
                    f"all still open; RSS {_kib(memory.rss)} KiB"
                )
                samples.append(Sample(point, memory))
            slab_growth = kernel_slab() - slab
            latencies = probe(
                port,
                arguments.probe_packets,
                arguments.probe_interval,
                arguments.probe_timeout,
            )
            server.check_running()
            return Outcome(
                total, workers.count, limit, baseline, samples, latencies, slab_growth
            )
        finally:
            if workers is not None:
                workers.close()
            if server is not None:
                server.stop()
                if arguments.keep_log:
                    shutil.copy(server.log_path, arguments.keep_log)
            shutil.rmtree(workdir, ignore_errors=True)


def _connections(text: str) -> int:
    """``max`` (0: fill the gateway) or a positive count."""
    if text == "max":
        return 0
    count = int(text)
    if count <= 0:
        raise ValueError(f"{text} is not a positive number")
    return count


def _per_worker() -> int:
    """Connections a worker can hold: this process's hard limit, less spares,
    and at most 15,000."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(15_000, hard - WORKER_SPARE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--connections",
        type=_connections,
        default=0,
        help="idle trackers to log in, or max (the default): the gateway's "
        "open-file limit less what it holds idle and a margin",
    )
    parser.add_argument(
        "--checkpoints",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[1_000, 5_000, 10_000],
        help="comma-separated counts to measure at on the way "
        "(default 1000,5000,10000)",
    )
    parser.add_argument(
        "--per-worker",
        type=int,
        default=_per_worker(),
        help="most connections one worker process holds (default: its "
        "open-file hard limit less spares, at most 15000)",
    )
    parser.add_argument(
        "--window", type=int, default=100, help="most logins at once per worker"
    )
    parser.add_argument(
        "--sources",
        type=int,
        default=1,
        help="spread connections over 127.0.0.1..127.0.0.N (for > 28k ports)",
    )
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds before each measurement"
    )
    parser.add_argument(
        "--probe-packets", type=int, default=20, help="packets the probe sends"
    )
    parser.add_argument(
        "--probe-interval",
        type=float,
        default=0.25,
        help="seconds between the probe's packets",
    )
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=5.0,
        help="seconds the probe waits for a reply before failing",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="global limit")
    parser.add_argument("--max-connections", type=int, default=100_000)
    parser.add_argument(
        "--twistd", type=Path, default=Path(sys.executable).with_name("twistd")
    )
    parser.add_argument("--keep-log", type=Path, help="copy the server's log here")
    parser.add_argument(
        "--json", action="store_true", help="print the report as one JSON object"
    )
    arguments = parser.parse_args(argv)
    if arguments.per_worker <= 0 or arguments.probe_packets <= 0:
        parser.error("--per-worker and --probe-packets must be positive")

    def say(*words: object) -> None:
        print(*words, file=sys.stderr if arguments.json else sys.stdout, flush=True)

    try:
        outcome = run(arguments, say)
    except (BenchError, OSError) as error:
        print(f"bench_idle_memory: {error}", file=sys.stderr)
        return 2
    print(report_json(outcome) if arguments.json else report_table(outcome))
    return 0 if outcome.memory_met and outcome.ack_met else 1


if __name__ == "__main__":
    raise SystemExit(main())
