"""The gateway's memory with many idle, logged-in trackers (issue 5).

Starts a real ``twistd -n teltonika`` on a loopback port, measures its resident
memory once idle, then opens ``--connections`` TCP connections to it from this
process, each logging in with its own 15-digit IMEI and checking the ``01``
reply. At a few checkpoints, and at the end, it lets the server settle and
measures again, printing the memory per connection against the 30 KB target.

Resident memory is VmRSS from ``/proc/PID/status`` and, where the kernel has
it, PSS from ``/proc/PID/smaps_rollup``. Socket buffers are kernel memory and
are not part of either figure.

Run from the repository root:

    python bench/bench_idle_memory.py --connections 10000

Both this process and the server need a file descriptor per connection (see
``ulimit -n``). Everything started is stopped on the way out, error or not.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import BenchError, ensure_descriptors, global_timeout

from teltotwist.codec import encode_login

TARGET_BYTES = 30 * 1024
"""The goal of issue 5: under 30 KB of server memory per idle connection."""
FIRST_IMEI = 356_307_040_000_000
LOGIN_ACCEPTED = b"\x01"
SPARE_DESCRIPTORS = 64
_PR_SET_PDEATHSIG = 1


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


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the benchmark dies without cleaning up."""
    name = ctypes.util.find_library("c")
    if name is not None:
        ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Server:
    """A ``twistd -n teltonika`` subprocess logging to a file."""

    def __init__(self, twistd: Path, workdir: Path, max_connections: int) -> None:
        self.log_path = workdir / "twistd.log"
        command = [
            str(twistd),
            "-n",
            "--pidfile=",
            "teltonika",
            "--port",
            "tcp:0:interface=127.0.0.1",
            "--sink",
            f"file:{workdir / 'r.jsonl'}",
            "--idle-timeout",
            "3600",
            "--max-connections",
            str(max_connections),
        ]
        self.command = command
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
            )
        self.pid = self.process.pid

    def wait_for_port(self, deadline: float) -> int:
        """The port from the log line ``TeltonikaTcpFactory starting on N``."""
        while time.monotonic() < deadline:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"TeltonikaTcpFactory starting on (\d+)", text)
            if found:
                return int(found.group(1))
            if self.process.poll() is not None:
                raise BenchError(f"twistd exited before listening:\n{text}")
            time.sleep(0.1)
        raise BenchError("twistd did not start listening in time")

    def check_running(self) -> None:
        """Fail if the server has exited."""
        if self.process.poll() is not None:
            raise BenchError(f"twistd exited with {self.process.returncode}")

    def stop(self) -> None:
        """SIGTERM, a grace period, then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Trackers:
    """Idle logged-in client connections, opened from this process."""

    def __init__(self, port: int, sources: Sequence[str]) -> None:
        self.port = port
        self.sources = sources
        self.sockets: list[socket.socket] = []

    def open(self, count: int, window: int, deadline: float) -> None:
        """Open *count* more connections, at most *window* logging in at once.

        Each sends its login and must get ``01`` back before it counts.
        """
        selector = selectors.DefaultSelector()
        pending: dict[socket.socket, int] = {}
        first = len(self.sockets)
        todo = iter(range(first, first + count))
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
            if source != "127.0.0.1":
                sock.bind((source, 0))
            code = sock.connect_ex(("127.0.0.1", self.port))
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


def checkpoints(total: int, requested: Sequence[int]) -> list[int]:
    """The connection counts to measure at: those requested up to *total*."""
    return sorted({n for n in requested if 0 < n < total} | {total})


def _kib(size: int | None) -> str:
    return "-" if size is None else f"{size / 1024:,.0f}"


def report(baseline: Memory, samples: Sequence[Sample]) -> bool:
    """Print the table; True if the last sample meets the target."""
    print()
    print(f"baseline RSS {_kib(baseline.rss)} KiB, PSS {_kib(baseline.pss)} KiB")
    print(
        f"{'connections':>11}  {'RSS KiB':>9}  {'PSS KiB':>9}  "
        f"{'RSS B/conn':>10}  {'PSS B/conn':>10}"
    )
    for sample in samples:
        memory, count = sample.memory, sample.connections
        per_pss = (
            "-"
            if memory.pss is None or baseline.pss is None
            else f"{(memory.pss - baseline.pss) / count:,.0f}"
        )
        print(
            f"{count:>11,}  {_kib(memory.rss):>9}  {_kib(memory.pss):>9}  "
            f"{(memory.rss - baseline.rss) / count:>10,.0f}  {per_pss:>10}"
        )
    last = samples[-1]
    per_connection = (last.memory.rss - baseline.rss) / last.connections
    met = per_connection < TARGET_BYTES
    print()
    print(
        f"{last.connections:,} idle connections: "
        f"{(last.memory.rss - baseline.rss) / 1024 / 1024:,.1f} MiB more RSS, "
        f"{per_connection:,.0f} bytes ({per_connection / 1024:.1f} KiB) per "
        f"connection; target < {TARGET_BYTES // 1024} KiB: "
        f"{'MET' if met else 'NOT MET'}"
    )
    return met


def run(arguments: argparse.Namespace) -> bool:
    """The benchmark; True if the target is met."""
    total: int = arguments.connections
    sources = [f"127.0.0.{n}" for n in range(1, arguments.sources + 1)]
    ensure_descriptors(total + SPARE_DESCRIPTORS)
    with global_timeout(arguments.timeout, grace=30) as deadline:
        workdir = Path(tempfile.mkdtemp(prefix="bench-idle-memory-"))
        server: Server | None = None
        trackers: Trackers | None = None
        try:
            server = Server(arguments.twistd, workdir, arguments.max_connections)
            print("server:", " ".join(server.command))
            port = server.wait_for_port(deadline)
            baseline = settled_memory(server.pid, arguments.settle, deadline)
            print(f"pid {server.pid} listening on 127.0.0.1:{port}")
            print(f"baseline: RSS {_kib(baseline.rss)} KiB")
            trackers = Trackers(port, sources)
            samples = []
            for point in checkpoints(total, arguments.checkpoints):
                started = time.monotonic()
                trackers.open(point - len(trackers.sockets), arguments.window, deadline)
                took = time.monotonic() - started
                memory = settled_memory(server.pid, arguments.settle, deadline)
                server.check_running()
                still_open = trackers.count_open()
                if still_open != point:
                    raise BenchError(f"only {still_open} of {point} are still open")
                print(
                    f"{point:,} connected and logged in ({took:.1f} s), "
                    f"all still open; RSS {_kib(memory.rss)} KiB"
                )
                samples.append(Sample(point, memory))
            return report(baseline, samples)
        finally:
            if trackers is not None:
                trackers.close()
            if server is not None:
                server.stop()
                if arguments.keep_log:
                    shutil.copy(server.log_path, arguments.keep_log)
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument(
        "--checkpoints",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[1_000, 5_000],
        help="comma-separated counts to measure at on the way (default 1000,5000)",
    )
    parser.add_argument(
        "--window", type=int, default=100, help="most connections logging in at once"
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
    parser.add_argument("--timeout", type=float, default=600.0, help="global limit")
    parser.add_argument("--max-connections", type=int, default=20_000)
    parser.add_argument(
        "--twistd", type=Path, default=Path(sys.executable).with_name("twistd")
    )
    parser.add_argument("--keep-log", type=Path, help="copy the server's log here")
    arguments = parser.parse_args(argv)
    if arguments.connections <= 0:
        parser.error("--connections must be positive")
    try:
        return 0 if run(arguments) else 1
    except (BenchError, OSError) as error:
        print(f"bench_idle_memory: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
