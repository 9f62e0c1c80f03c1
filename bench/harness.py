"""What the benchmarks share: their error, a time limit, file descriptors,
child processes, a typical tracker's packets."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import teltotwist
from teltotwist.cluster.worker import worker_sink_spec
from teltotwist.codec import (
    AvlPacket,
    AvlRecord,
    Codec,
    IoLayout,
    IoValue,
    encode_frame,
    io_elements,
)

BASE_TIME_MS = 1_795_251_600_000
_PR_SET_PDEATHSIG = 1


class BenchError(Exception):
    """The benchmark could not run as asked."""


def worker_file(records: Path, number: int) -> Path:
    """Where worker *number* of a gateway whose file sink is *records*
    files (``--workers``: one file each)."""
    return Path(worker_sink_spec(f"file:{records}", number).removeprefix("file:"))


@contextmanager
def global_timeout(seconds: float, grace: float) -> Iterator[float]:
    """Yield a monotonic deadline; SIGALRM *grace* seconds after it as a
    backstop. SIGTERM and SIGINT raise too, so that the cleanup runs when
    interrupted."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"the benchmark ran longer than {seconds:g} s")

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise BenchError(f"interrupted by {signal.Signals(signum).name}")

    previous = {
        signal.SIGALRM: signal.signal(signal.SIGALRM, expired),
        signal.SIGTERM: signal.signal(signal.SIGTERM, interrupted),
        signal.SIGINT: signal.signal(signal.SIGINT, interrupted),
    }
    signal.alarm(int(seconds + grace))
    try:
        yield time.monotonic() + seconds
    finally:
        signal.alarm(0)
        for number, handler in previous.items():
            signal.signal(number, handler)


def ensure_descriptors(needed: int) -> None:
    """Raise this process's open-file limit (which children inherit) to
    *needed*, if the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise BenchError(
                f"{needed} file descriptors needed, the hard limit is {hard}"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def child_environment() -> dict[str, str]:
    """This process's environment, with which a child process imports the
    same teltotwist as this one."""
    source = str(Path(teltotwist.__file__).resolve().parent.parent)
    path = [source, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def terminate(
    process: subprocess.Popen[bytes],
    grace: float,
    signal_number: int = signal.SIGTERM,
) -> None:
    """End *process*: *signal_number*, up to *grace* seconds to exit, then
    SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal_number)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def tree_cpu_seconds(pid: int) -> float:
    """The user and system CPU time of process *pid* and of its descendants
    alive now (a gateway's workers), in seconds, as ``/proc`` tells."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended meanwhile
            continue
        # The fields after the command name, which is in parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, waiting = 0.0, [pid]
    while waiting:
        each = waiting.pop()
        total += times.get(each, 0.0)
        waiting.extend(children.get(each, ()))
    return total


def all_descriptors() -> None:
    """Raise this process's open-file soft limit to its hard limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def die_with_parent() -> None:
    """In a child: get SIGTERM if the benchmark dies without cleaning up."""
    name = ctypes.util.find_library("c")
    if name is not None:
        ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_setup() -> None:
    """In a child (``preexec_fn``): all the descriptors allowed, and SIGTERM
    if we die."""
    all_descriptors()
    die_with_parent()


def start_logged(command: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    """Start *command* in *log*'s folder, its output into *log*, with the
    :func:`child_environment` and :func:`child_setup`."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            env=child_environment(),
            preexec_fn=child_setup,  # noqa: PLW1509
        )


def logged_port(
    process: subprocess.Popen[bytes],
    log: Path,
    deadline: float,
    name: str,
    ready: str = "",
) -> int:
    """The port of the gateway's log line ``TeltonikaTcpFactory starting on
    N``, once its *log* also holds *ready*; fail if *process* (*name*)
    exits first."""
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"TeltonikaTcpFactory starting on (\d+)", text)
        if found and ready in text:
            return int(found.group(1))
        if process.poll() is not None:
            raise BenchError(f"{name} exited before listening:\n{text}")
        time.sleep(0.1)
    raise BenchError(f"{name} did not start listening in time")


def fix_record(
    timestamp_ms: int, io: dict[int, IoValue], layout: IoLayout
) -> AvlRecord:
    """A record of one fix, moving, with *io*."""
    return AvlRecord(
        timestamp_ms=timestamp_ms,
        priority=1,
        longitude=25.2562916,
        latitude=54.6676016,
        altitude=138,
        angle=90,
        satellites=9,
        speed=42,
        event_id=0,
        io=io,
        io_layout=layout,
    )


def tracker_record(number: int) -> AvlRecord:
    """A real tracker's *number*-th record: a typical FMB fix."""
    io, layout = io_elements(
        io1={21: 3, 1: 0, 239: 1}, io2={66: 24079, 24: 42}, io4={241: 24602}
    )
    return fix_record(BASE_TIME_MS + number * 1000, io, layout)


def tracker_frame(number: int) -> bytes:
    """A real tracker's *number*-th packet: one Codec 8 record."""
    return encode_frame(AvlPacket(Codec.CODEC8, (tracker_record(number),)))


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    """*size* bytes from *sock*; ConnectionError if it closes first."""
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed by the gateway")
        data += chunk
    return data
